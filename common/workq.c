/* Work queue (see workq.h): a ring of jobs under one mutex and condvar. */
#include "workq.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

typedef struct {
    void (*fn)(void *);
    void *arg;
} job;

struct wd_workq {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    job *ring;
    size_t cap, head, count;
    bool closing;
    int nthreads;
    pthread_t *threads;
};

static void *worker(void *p)
{
    wd_workq *q = p;
    for (;;) {
        pthread_mutex_lock(&q->mu);
        while (q->count == 0 && !q->closing)
            pthread_cond_wait(&q->cv, &q->mu);
        if (q->count == 0) {
            pthread_mutex_unlock(&q->mu);
            return NULL;
        }
        job j = q->ring[q->head];
        q->head = (q->head + 1) % q->cap;
        q->count--;
        pthread_mutex_unlock(&q->mu);
        j.fn(j.arg);
    }
}

wd_status wd_workq_create(wd_workq **out, int threads, size_t capacity)
{
    if (threads < 1 || capacity < 1)
        return WD_ERR(WD_ERR_INVALID, "work queue needs at least one thread and one slot");
    wd_workq *q = calloc(1, sizeof *q);
    if (q == NULL)
        return WD_ERR(WD_ERR_NOMEM, "out of memory");
    q->ring = calloc(capacity, sizeof *q->ring);
    q->threads = calloc((size_t)threads, sizeof *q->threads);
    if (q->ring == NULL || q->threads == NULL) {
        free(q->ring);
        free(q->threads);
        free(q);
        return WD_ERR(WD_ERR_NOMEM, "out of memory");
    }
    q->cap = capacity;
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
    for (int i = 0; i < threads; i++)
        if (pthread_create(&q->threads[i], NULL, worker, q) == 0)
            q->nthreads++;
    *out = q;
    return WD_OK;
}

wd_status wd_workq_post(wd_workq *q, void (*fn)(void *), void *arg)
{
    pthread_mutex_lock(&q->mu);
    if (q->closing || q->count == q->cap) {
        bool closing = q->closing;
        pthread_mutex_unlock(&q->mu);
        return closing ? WD_ERR_CLOSED : WD_ERR_FULL;
    }
    q->ring[(q->head + q->count) % q->cap] = (job){fn, arg};
    q->count++;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
    return WD_OK;
}

size_t wd_workq_pending(wd_workq *q)
{
    pthread_mutex_lock(&q->mu);
    size_t n = q->count;
    pthread_mutex_unlock(&q->mu);
    return n;
}

void wd_workq_destroy(wd_workq **pq)
{
    if (pq == NULL || *pq == NULL)
        return;
    wd_workq *q = *pq;
    *pq = NULL;
    pthread_mutex_lock(&q->mu);
    q->closing = true;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
    for (int i = 0; i < q->nthreads; i++)
        pthread_join(q->threads[i], NULL);
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cv);
    free(q->threads);
    free(q->ring);
    free(q);
}
