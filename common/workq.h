/* A bounded work queue served by a fixed pool of threads, for blocking
 * work (libpq, bcrypt, bus requests) that must stay off event loops.
 *
 * Jobs run in FIFO order on any worker. A post to a full queue fails with
 * WD_ERR_FULL at once (the caller answers "busy"), never blocks. Destroy
 * runs every job already queued, then joins the threads. Thread-safe. */
#ifndef WD_WORKQ_H
#define WD_WORKQ_H

#include <stddef.h>

#include "status.h"

typedef struct wd_workq wd_workq;

wd_status wd_workq_create(wd_workq **out, int threads, size_t capacity);
/* fn(arg) runs later on a worker; on failure nothing runs and arg stays the
 * caller's. */
wd_status wd_workq_post(wd_workq *q, void (*fn)(void *), void *arg);
size_t wd_workq_pending(wd_workq *q);
/* Drains, joins, frees, nulls *q. NULL-safe. */
void wd_workq_destroy(wd_workq **q);

#endif
