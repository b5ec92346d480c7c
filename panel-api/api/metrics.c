/* Metrics (see metrics.h). Routes are known up front, so each has a fixed
 * slot: a histogram and a short list of (status, count) pairs. */
#include "metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NBUCKETS 10
#define MAX_STATUSES 12

static const double bucket_s[NBUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01,
                                          0.025,  0.05,  0.1,    0.5,   1.0};

typedef struct {
    uint64_t buckets[NBUCKETS];
    uint64_t count;
    double sum_s;
    int status[MAX_STATUSES];
    uint64_t status_count[MAX_STATUSES];
    int nstatus;
} slot;

struct wd_metrics {
    pthread_mutex_t mu;
    const wd_route *routes;
    size_t nroutes;
    slot *slots; /* nroutes + 1: the last is "unmatched" */
};

wd_status wd_metrics_create(wd_metrics **out, const wd_route *routes, size_t nroutes)
{
    wd_metrics *m = calloc(1, sizeof *m);
    if (m == NULL || (m->slots = calloc(nroutes + 1, sizeof *m->slots)) == NULL) {
        free(m);
        return WD_ERR(WD_ERR_NOMEM, "out of memory");
    }
    m->routes = routes;
    m->nroutes = nroutes;
    pthread_mutex_init(&m->mu, NULL);
    *out = m;
    return WD_OK;
}

void wd_metrics_destroy(wd_metrics **pm)
{
    if (pm == NULL || *pm == NULL)
        return;
    pthread_mutex_destroy(&(*pm)->mu);
    free((*pm)->slots);
    free(*pm);
    *pm = NULL;
}

void wd_metrics_observe(wd_metrics *m, const wd_route *route, int status, int64_t usec)
{
    size_t i = m->nroutes;
    if (route && route >= m->routes && route < m->routes + m->nroutes)
        i = (size_t)(route - m->routes);
    double s = (double)usec / 1e6;
    pthread_mutex_lock(&m->mu);
    slot *sl = &m->slots[i];
    sl->count++;
    sl->sum_s += s;
    for (int b = 0; b < NBUCKETS; b++)
        if (s <= bucket_s[b])
            sl->buckets[b]++;
    int k = 0;
    while (k < sl->nstatus && sl->status[k] != status)
        k++;
    if (k == sl->nstatus && k < MAX_STATUSES) {
        sl->status[k] = status;
        sl->nstatus++;
    }
    if (k < MAX_STATUSES)
        sl->status_count[k]++;
    pthread_mutex_unlock(&m->mu);
}

typedef struct {
    char *p;
    size_t len, cap;
} buf;

static void put(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(buf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if (b->p && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->len + (size_t)n + 1)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (np == NULL)
            return;
        b->p = np;
        b->cap = cap;
    }
}

char *wd_metrics_render(wd_metrics *m, const char *extra)
{
    buf b = {0};
    put(&b, "# HELP warden_http_requests_total HTTP requests by route, method and status.\n"
            "# TYPE warden_http_requests_total counter\n");
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i <= m->nroutes; i++) {
        const char *route = i < m->nroutes ? m->routes[i].pattern : "unmatched";
        const char *method = i < m->nroutes ? m->routes[i].method : "any";
        slot *sl = &m->slots[i];
        for (int k = 0; k < sl->nstatus; k++)
            put(&b, "warden_http_requests_total{route=\"%s\",method=\"%s\",status=\"%d\"} %llu\n",
                route, method, sl->status[k], (unsigned long long)sl->status_count[k]);
    }
    put(&b, "# HELP warden_http_request_duration_seconds Time from request to response.\n"
            "# TYPE warden_http_request_duration_seconds histogram\n");
    for (size_t i = 0; i <= m->nroutes; i++) {
        slot *sl = &m->slots[i];
        if (sl->count == 0)
            continue;
        const char *route = i < m->nroutes ? m->routes[i].pattern : "unmatched";
        const char *method = i < m->nroutes ? m->routes[i].method : "any";
        for (int k = 0; k < NBUCKETS; k++)
            put(&b,
                "warden_http_request_duration_seconds_bucket{route=\"%s\",method=\"%s\","
                "le=\"%g\"} %llu\n",
                route, method, bucket_s[k], (unsigned long long)sl->buckets[k]);
        put(&b,
            "warden_http_request_duration_seconds_bucket{route=\"%s\",method=\"%s\",le=\"+Inf\"} "
            "%llu\n",
            route, method, (unsigned long long)sl->count);
        put(&b, "warden_http_request_duration_seconds_sum{route=\"%s\",method=\"%s\"} %.6f\n",
            route, method, sl->sum_s);
        put(&b, "warden_http_request_duration_seconds_count{route=\"%s\",method=\"%s\"} %llu\n",
            route, method, (unsigned long long)sl->count);
    }
    pthread_mutex_unlock(&m->mu);
    if (extra)
        put(&b, "%s", extra);
    return b.p;
}
