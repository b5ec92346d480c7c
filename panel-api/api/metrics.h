/* Prometheus metrics of the API: requests by route, method and status, a
 * latency histogram per route, and gauges given by the caller (DB pool,
 * bus). Recording is a short critical section; rendering builds the text
 * exposition format. Thread-safe. */
#ifndef WD_METRICS_H
#define WD_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "http.h"
#include "status.h"

typedef struct wd_metrics wd_metrics;

wd_status wd_metrics_create(wd_metrics **out, const wd_route *routes, size_t nroutes);
void wd_metrics_destroy(wd_metrics **m);
/* route may be NULL (unmatched requests). */
void wd_metrics_observe(wd_metrics *m, const wd_route *route, int status, int64_t usec);
/* Renders everything, then appends extra (already formatted lines, may be
 * NULL). Heap string; caller frees. */
char *wd_metrics_render(wd_metrics *m, const char *extra);

#endif
