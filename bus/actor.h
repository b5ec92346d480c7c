/* The actor runtime: mailboxes, a worker pool, timers and fd watches
 * delivered as messages.
 *
 * An actor is private state plus a handler that sees one message at a time.
 * The runtime guarantees that one actor's handler never runs on two threads
 * at once, and that messages from one sender arrive in the order sent, so
 * actor state needs no locks. Anything may send to an actor from any thread
 * (NATS callbacks, other actors, main); the handler runs on a worker.
 *
 * Timers and fd readiness are messages too: the runtime's poller thread turns
 * a due timer or a ready fd into a message in the owning actor's mailbox.
 * Mailboxes are bounded: a send to a full mailbox fails with WD_ERR_FULL and
 * logs the queue length. Timer, fd and stop messages are never refused.
 *
 * Shutdown drains: wd_runtime_shutdown delivers WD_MSG_STOP to every live
 * actor after the messages already queued, waits for all of them, then joins
 * the workers. */
#ifndef WD_ACTOR_H
#define WD_ACTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

typedef struct wd_runtime wd_runtime;
typedef struct wd_actor wd_actor;

/* Message types below zero are the runtime's. */
enum { WD_MSG_STOP = -1 };

typedef struct {
    int type;                /* application-defined, or WD_MSG_STOP */
    void *data;              /* owned by the message */
    void (*free_fn)(void *); /* called on data after the handler returns, unless
                                the handler set data to NULL to keep it */
    uint64_t arg;            /* small inline value: timer id, fd events ... */
} wd_msg;

/* Runs on a worker thread, never concurrently for one actor. */
typedef void (*wd_actor_handler)(wd_actor *self, void *state, wd_msg *msg);

typedef struct {
    int threads; /* worker threads; default 2 */
} wd_runtime_cfg;

wd_runtime_cfg wd_runtime_cfg_defaults(void);
wd_status wd_runtime_create(wd_runtime **out, const wd_runtime_cfg *cfg);
/* Stops every actor (draining its mailbox first), the poller and the
 * workers. Safe to call twice. Must not be called from a handler. */
void wd_runtime_shutdown(wd_runtime *rt);
/* Shuts down if needed, frees, nulls *rt. NULL-safe. */
void wd_runtime_destroy(wd_runtime **rt);

typedef struct {
    const char *name;         /* copied; used in logs */
    size_t mailbox_cap;       /* default 1024 */
    wd_actor_handler handler;
    void *state;              /* owned by the actor: freed by free_state after
                                 WD_MSG_STOP was handled */
    void (*free_state)(void *);
} wd_actor_cfg;

wd_actor_cfg wd_actor_cfg_defaults(void);
/* Starts an actor. *out is a reference the caller owns (wd_actor_unref). */
wd_status wd_actor_spawn(wd_runtime *rt, const wd_actor_cfg *cfg, wd_actor **out);

/* Posts a message. Always consumes data: on failure (WD_ERR_FULL when the
 * mailbox is full, WD_ERR_CLOSED after stop) free_fn(data) is called. */
wd_status wd_actor_send(wd_actor *a, int type, void *data, void (*free_fn)(void *));
wd_status wd_actor_send_arg(wd_actor *a, int type, uint64_t arg);

/* Asks the actor to stop: messages already queued are handled, then
 * WD_MSG_STOP, then its timers and fd watches are dropped and its state
 * freed. Later sends fail with WD_ERR_CLOSED. Idempotent. */
void wd_actor_stop(wd_actor *a);
bool wd_actor_stopped(const wd_actor *a);

wd_actor *wd_actor_ref(wd_actor *a);
void wd_actor_unref(wd_actor **a);
const char *wd_actor_name(const wd_actor *a);
wd_runtime *wd_actor_runtime(const wd_actor *a);
/* Messages waiting in the mailbox right now. */
size_t wd_actor_queued(wd_actor *a);

/* Delivers {type, arg = *timer_id} to the actor after delay_ms, then every
 * period_ms if period_ms > 0. A cancelled timer may still have one message in
 * flight: handlers compare arg with the timer id they expect. */
wd_status wd_actor_timer(wd_actor *a, int64_t delay_ms, int64_t period_ms, int type,
                         uint64_t *timer_id);
void wd_actor_timer_cancel(wd_runtime *rt, uint64_t timer_id);

/* Watches fd (EPOLLIN/EPOLLOUT bits in events) and delivers {type, arg =
 * ready events} once it is ready. One-shot: call wd_actor_rearm_fd after
 * handling to get the next event. The fd stays owned by the caller; call
 * wd_actor_unwatch_fd before closing it. */
wd_status wd_actor_watch_fd(wd_actor *a, int fd, uint32_t events, int type, uint64_t *watch_id);
wd_status wd_actor_rearm_fd(wd_runtime *rt, uint64_t watch_id);
void wd_actor_unwatch_fd(wd_runtime *rt, uint64_t watch_id);

#endif
