/* Actor runtime (see actor.h).
 *
 * Scheduling: an actor with mail is "scheduled" — it sits in the run queue
 * or is being run by exactly one worker. A send to an unscheduled actor puts
 * it in the run queue; a worker runs a batch of its messages and puts it back
 * at the tail if mail remains, so a busy actor cannot starve the others. The
 * scheduled flag, guarded by the actor's lock, is what keeps an actor on one
 * thread at a time.
 *
 * The poller thread owns an epoll set with an eventfd (to wake it when the
 * timer list changes) and the watched fds; the next timer deadline is its
 * epoll timeout. Timers are a small array scanned linearly: an agent has a
 * handful per game server. */
#include "actor.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define BATCH 64

struct wd_actor {
    atomic_int refs;
    wd_runtime *rt;
    char *name;
    wd_actor_handler handler;
    void *state;
    void (*free_state)(void *);

    pthread_mutex_t mu;
    wd_msg *ring; /* mailbox: ring buffer, grows for system messages */
    size_t ring_cap, head, count, cap;
    bool scheduled;
    bool stopping; /* WD_MSG_STOP queued; sends refused */
    atomic_bool dead;
    wd_actor *next_run; /* run queue link, guarded by rt->mu */
    wd_actor *next_all; /* list of live actors, guarded by rt->mu */
};

typedef struct {
    uint64_t id;
    wd_actor *actor;
    int64_t due_ms;
    int64_t period_ms;
    int type;
} wd_timer;

typedef struct {
    uint64_t id;
    wd_actor *actor;
    int fd;
    uint32_t events;
    int type;
} wd_watch;

struct wd_runtime {
    pthread_mutex_t mu;
    pthread_cond_t work_cv;   /* workers wait for the run queue */
    pthread_cond_t idle_cv;   /* shutdown waits for actors to die */
    wd_actor *run_head, *run_tail;
    wd_actor *all;
    size_t live;
    bool closing;
    bool shut;
    int nthreads;
    pthread_t *threads;

    /* poller */
    pthread_t poller;
    int epfd, evfd;
    pthread_mutex_t tmu; /* timers and watches */
    wd_timer *timers;
    size_t ntimers, timers_cap;
    wd_watch *watches;
    size_t nwatches, watches_cap;
    atomic_uint_fast64_t next_id;
    atomic_bool poller_stop;
};

/* ---- mailbox ---------------------------------------------------------- */

static bool ring_push(wd_actor *a, const wd_msg *m)
{
    if (a->count == a->ring_cap) {
        size_t ncap = a->ring_cap ? a->ring_cap * 2 : 16;
        wd_msg *nr = malloc(ncap * sizeof *nr);
        if (nr == NULL)
            return false;
        for (size_t i = 0; i < a->count; i++)
            nr[i] = a->ring[(a->head + i) % a->ring_cap];
        free(a->ring);
        a->ring = nr;
        a->ring_cap = ncap;
        a->head = 0;
    }
    a->ring[(a->head + a->count) % a->ring_cap] = *m;
    a->count++;
    return true;
}

static bool ring_pop(wd_actor *a, wd_msg *m)
{
    if (a->count == 0)
        return false;
    *m = a->ring[a->head];
    a->head = (a->head + 1) % a->ring_cap;
    a->count--;
    return true;
}

static void msg_release(wd_msg *m)
{
    if (m->data && m->free_fn)
        m->free_fn(m->data);
    m->data = NULL;
}

/* Puts a scheduled actor at the tail of the run queue. rt->mu held. */
static void runq_push_locked(wd_runtime *rt, wd_actor *a)
{
    a->next_run = NULL;
    if (rt->run_tail)
        rt->run_tail->next_run = a;
    else
        rt->run_head = a;
    rt->run_tail = a;
    pthread_cond_signal(&rt->work_cv);
}

/* system: never refused for capacity (timers, fds, stop). */
static wd_status enqueue(wd_actor *a, const wd_msg *m, bool system)
{
    wd_status st = WD_OK;
    bool wake = false;
    pthread_mutex_lock(&a->mu);
    if (a->stopping) {
        st = WD_ERR_CLOSED; /* also a second stop: it is idempotent */
    } else if (!system && a->count >= a->cap) {
        st = WD_ERR_FULL;
    } else if (!ring_push(a, m)) {
        st = WD_ERR_NOMEM;
    } else {
        if (m->type == WD_MSG_STOP)
            a->stopping = true;
        if (!a->scheduled) {
            a->scheduled = true;
            wake = true;
        }
    }
    size_t queued = a->count;
    pthread_mutex_unlock(&a->mu);
    if (st == WD_ERR_FULL)
        wd_warn("actor %s: mailbox full (%zu queued), message type %d refused", a->name, queued,
                m->type);
    if (wake) {
        pthread_mutex_lock(&a->rt->mu);
        runq_push_locked(a->rt, a);
        pthread_mutex_unlock(&a->rt->mu);
    }
    return st;
}

/* ---- actors ----------------------------------------------------------- */

wd_actor_cfg wd_actor_cfg_defaults(void)
{
    return (wd_actor_cfg){.name = "actor", .mailbox_cap = 1024};
}

wd_status wd_actor_spawn(wd_runtime *rt, const wd_actor_cfg *cfg, wd_actor **out)
{
    if (cfg->handler == NULL)
        return WD_ERR(WD_ERR_INVALID, "actor %s: no handler", cfg->name ? cfg->name : "?");
    wd_actor *a = calloc(1, sizeof *a);
    if (a == NULL)
        return WD_ERR(WD_ERR_NOMEM, "out of memory");
    a->name = strdup(cfg->name ? cfg->name : "actor");
    if (a->name == NULL) {
        free(a);
        return WD_ERR(WD_ERR_NOMEM, "out of memory");
    }
    atomic_init(&a->refs, 2); /* caller + runtime */
    atomic_init(&a->dead, false);
    a->rt = rt;
    a->handler = cfg->handler;
    a->state = cfg->state;
    a->free_state = cfg->free_state;
    a->cap = cfg->mailbox_cap ? cfg->mailbox_cap : 1024;
    pthread_mutex_init(&a->mu, NULL);

    pthread_mutex_lock(&rt->mu);
    if (rt->closing) {
        pthread_mutex_unlock(&rt->mu);
        pthread_mutex_destroy(&a->mu);
        free(a->name);
        free(a);
        return WD_ERR(WD_ERR_CLOSED, "runtime is shutting down");
    }
    a->next_all = rt->all;
    rt->all = a;
    rt->live++;
    pthread_mutex_unlock(&rt->mu);
    *out = a;
    return WD_OK;
}

wd_status wd_actor_send(wd_actor *a, int type, void *data, void (*free_fn)(void *))
{
    wd_msg m = {.type = type, .data = data, .free_fn = free_fn};
    wd_status st = enqueue(a, &m, false);
    if (st != WD_OK)
        msg_release(&m);
    return st;
}

wd_status wd_actor_send_arg(wd_actor *a, int type, uint64_t arg)
{
    wd_msg m = {.type = type, .arg = arg};
    return enqueue(a, &m, false);
}

void wd_actor_stop(wd_actor *a)
{
    wd_msg m = {.type = WD_MSG_STOP};
    enqueue(a, &m, true);
}

bool wd_actor_stopped(const wd_actor *a)
{
    return atomic_load(&((wd_actor *)a)->dead);
}

wd_actor *wd_actor_ref(wd_actor *a)
{
    atomic_fetch_add(&a->refs, 1);
    return a;
}

static void actor_free(wd_actor *a)
{
    wd_msg m;
    while (ring_pop(a, &m))
        msg_release(&m);
    free(a->ring);
    pthread_mutex_destroy(&a->mu);
    free(a->name);
    free(a);
}

void wd_actor_unref(wd_actor **pa)
{
    if (pa == NULL || *pa == NULL)
        return;
    wd_actor *a = *pa;
    *pa = NULL;
    if (atomic_fetch_sub(&a->refs, 1) == 1)
        actor_free(a);
}

const char *wd_actor_name(const wd_actor *a)
{
    return a->name;
}

wd_runtime *wd_actor_runtime(const wd_actor *a)
{
    return a->rt;
}

size_t wd_actor_queued(wd_actor *a)
{
    pthread_mutex_lock(&a->mu);
    size_t n = a->count;
    pthread_mutex_unlock(&a->mu);
    return n;
}

static void drop_actor_events(wd_runtime *rt, wd_actor *a);

/* Called by the worker that handled WD_MSG_STOP. */
static void retire(wd_actor *a)
{
    wd_runtime *rt = a->rt;
    drop_actor_events(rt, a);
    if (a->free_state)
        a->free_state(a->state);
    a->state = NULL;
    atomic_store(&a->dead, true);
    pthread_mutex_lock(&rt->mu);
    for (wd_actor **pp = &rt->all; *pp; pp = &(*pp)->next_all) {
        if (*pp == a) {
            *pp = a->next_all;
            break;
        }
    }
    rt->live--;
    pthread_cond_broadcast(&rt->idle_cv);
    pthread_mutex_unlock(&rt->mu);
    wd_actor_unref(&a); /* the runtime's reference */
}

/* ---- workers ---------------------------------------------------------- */

static void *worker_main(void *arg)
{
    wd_runtime *rt = arg;
    for (;;) {
        pthread_mutex_lock(&rt->mu);
        while (rt->run_head == NULL && !rt->shut)
            pthread_cond_wait(&rt->work_cv, &rt->mu);
        if (rt->run_head == NULL) {
            pthread_mutex_unlock(&rt->mu);
            return NULL;
        }
        wd_actor *a = rt->run_head;
        rt->run_head = a->next_run;
        if (rt->run_head == NULL)
            rt->run_tail = NULL;
        pthread_mutex_unlock(&rt->mu);

        bool retired = false;
        for (int i = 0; i < BATCH; i++) {
            wd_msg m;
            pthread_mutex_lock(&a->mu);
            bool got = ring_pop(a, &m);
            pthread_mutex_unlock(&a->mu);
            if (!got)
                break;
            a->handler(a, a->state, &m);
            msg_release(&m);
            if (m.type == WD_MSG_STOP) {
                retired = true;
                break;
            }
        }
        if (retired) {
            retire(a);
            continue;
        }
        pthread_mutex_lock(&a->mu);
        bool more = a->count > 0;
        if (!more)
            a->scheduled = false;
        pthread_mutex_unlock(&a->mu);
        if (more) {
            pthread_mutex_lock(&rt->mu);
            runq_push_locked(rt, a);
            pthread_mutex_unlock(&rt->mu);
        }
    }
}

/* ---- poller: timers and fds ------------------------------------------- */

static void poller_wake(wd_runtime *rt)
{
    uint64_t one = 1;
    ssize_t w = write(rt->evfd, &one, sizeof one);
    (void)w;
}

wd_status wd_actor_timer(wd_actor *a, int64_t delay_ms, int64_t period_ms, int type,
                         uint64_t *timer_id)
{
    wd_runtime *rt = a->rt;
    pthread_mutex_lock(&rt->tmu);
    if (rt->ntimers == rt->timers_cap) {
        size_t ncap = rt->timers_cap ? rt->timers_cap * 2 : 32;
        wd_timer *nt = realloc(rt->timers, ncap * sizeof *nt);
        if (nt == NULL) {
            pthread_mutex_unlock(&rt->tmu);
            return WD_ERR(WD_ERR_NOMEM, "out of memory");
        }
        rt->timers = nt;
        rt->timers_cap = ncap;
    }
    uint64_t id = atomic_fetch_add(&rt->next_id, 1);
    rt->timers[rt->ntimers++] = (wd_timer){.id = id,
                                           .actor = wd_actor_ref(a),
                                           .due_ms = wd_mono_ms() + (delay_ms > 0 ? delay_ms : 0),
                                           .period_ms = period_ms,
                                           .type = type};
    pthread_mutex_unlock(&rt->tmu);
    if (timer_id)
        *timer_id = id;
    poller_wake(rt);
    return WD_OK;
}

void wd_actor_timer_cancel(wd_runtime *rt, uint64_t timer_id)
{
    wd_actor *drop = NULL;
    pthread_mutex_lock(&rt->tmu);
    for (size_t i = 0; i < rt->ntimers; i++) {
        if (rt->timers[i].id == timer_id) {
            drop = rt->timers[i].actor;
            rt->timers[i] = rt->timers[--rt->ntimers];
            break;
        }
    }
    pthread_mutex_unlock(&rt->tmu);
    wd_actor_unref(&drop);
}

wd_status wd_actor_watch_fd(wd_actor *a, int fd, uint32_t events, int type, uint64_t *watch_id)
{
    wd_runtime *rt = a->rt;
    pthread_mutex_lock(&rt->tmu);
    if (rt->nwatches == rt->watches_cap) {
        size_t ncap = rt->watches_cap ? rt->watches_cap * 2 : 32;
        wd_watch *nw = realloc(rt->watches, ncap * sizeof *nw);
        if (nw == NULL) {
            pthread_mutex_unlock(&rt->tmu);
            return WD_ERR(WD_ERR_NOMEM, "out of memory");
        }
        rt->watches = nw;
        rt->watches_cap = ncap;
    }
    uint64_t id = atomic_fetch_add(&rt->next_id, 1);
    struct epoll_event ev = {.events = events | EPOLLONESHOT, .data.u64 = id};
    if (epoll_ctl(rt->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        int e = errno;
        pthread_mutex_unlock(&rt->tmu);
        return WD_ERR(WD_ERR_IO, "epoll add fd %d: %s", fd, strerror(e));
    }
    rt->watches[rt->nwatches++] =
        (wd_watch){.id = id, .actor = wd_actor_ref(a), .fd = fd, .events = events, .type = type};
    pthread_mutex_unlock(&rt->tmu);
    *watch_id = id;
    return WD_OK;
}

wd_status wd_actor_rearm_fd(wd_runtime *rt, uint64_t watch_id)
{
    wd_status st = WD_ERR_NOT_FOUND;
    pthread_mutex_lock(&rt->tmu);
    for (size_t i = 0; i < rt->nwatches; i++) {
        wd_watch *w = &rt->watches[i];
        if (w->id != watch_id)
            continue;
        struct epoll_event ev = {.events = w->events | EPOLLONESHOT, .data.u64 = w->id};
        st = epoll_ctl(rt->epfd, EPOLL_CTL_MOD, w->fd, &ev) == 0
                 ? WD_OK
                 : WD_ERR(WD_ERR_IO, "epoll mod fd %d: %s", w->fd, strerror(errno));
        break;
    }
    pthread_mutex_unlock(&rt->tmu);
    return st;
}

void wd_actor_unwatch_fd(wd_runtime *rt, uint64_t watch_id)
{
    wd_actor *drop = NULL;
    pthread_mutex_lock(&rt->tmu);
    for (size_t i = 0; i < rt->nwatches; i++) {
        if (rt->watches[i].id == watch_id) {
            epoll_ctl(rt->epfd, EPOLL_CTL_DEL, rt->watches[i].fd, NULL);
            drop = rt->watches[i].actor;
            rt->watches[i] = rt->watches[--rt->nwatches];
            break;
        }
    }
    pthread_mutex_unlock(&rt->tmu);
    wd_actor_unref(&drop);
}

/* Removes every timer and watch of a retiring actor. */
static void drop_actor_events(wd_runtime *rt, wd_actor *a)
{
    pthread_mutex_lock(&rt->tmu);
    size_t n = 0;
    for (size_t i = 0; i < rt->ntimers; i++) {
        if (rt->timers[i].actor == a)
            atomic_fetch_sub(&a->refs, 1); /* never the last: the runtime holds one */
        else
            rt->timers[n++] = rt->timers[i];
    }
    rt->ntimers = n;
    n = 0;
    for (size_t i = 0; i < rt->nwatches; i++) {
        if (rt->watches[i].actor == a) {
            epoll_ctl(rt->epfd, EPOLL_CTL_DEL, rt->watches[i].fd, NULL);
            atomic_fetch_sub(&a->refs, 1);
        } else {
            rt->watches[n++] = rt->watches[i];
        }
    }
    rt->nwatches = n;
    pthread_mutex_unlock(&rt->tmu);
}

/* Fires due timers; returns ms until the next one (-1: none). */
static int fire_timers(wd_runtime *rt)
{
    int64_t now = wd_mono_ms();
    int64_t next = -1;
    pthread_mutex_lock(&rt->tmu);
    for (size_t i = 0; i < rt->ntimers;) {
        wd_timer *t = &rt->timers[i];
        if (t->due_ms <= now) {
            wd_msg m = {.type = t->type, .arg = t->id};
            enqueue(t->actor, &m, true);
            if (t->period_ms > 0) {
                t->due_ms = now + t->period_ms;
            } else {
                wd_actor *a = t->actor;
                rt->timers[i] = rt->timers[--rt->ntimers];
                /* the runtime holds a reference too, so this never frees */
                atomic_fetch_sub(&a->refs, 1);
                continue;
            }
        }
        int64_t wait = t->due_ms - now;
        if (next < 0 || wait < next)
            next = wait;
        i++;
    }
    pthread_mutex_unlock(&rt->tmu);
    return next < 0 ? -1 : (int)(next > 60000 ? 60000 : next);
}

static void *poller_main(void *arg)
{
    wd_runtime *rt = arg;
    struct epoll_event evs[64];
    while (!atomic_load(&rt->poller_stop)) {
        int timeout = fire_timers(rt);
        int n = epoll_wait(rt->epfd, evs, 64, timeout);
        for (int i = 0; i < n; i++) {
            uint64_t id = evs[i].data.u64;
            if (id == 0) {
                uint64_t v;
                ssize_t r = read(rt->evfd, &v, sizeof v);
                (void)r;
                continue;
            }
            pthread_mutex_lock(&rt->tmu);
            for (size_t k = 0; k < rt->nwatches; k++) {
                if (rt->watches[k].id == id) {
                    wd_msg m = {.type = rt->watches[k].type, .arg = evs[i].events};
                    enqueue(rt->watches[k].actor, &m, true);
                    break;
                }
            }
            pthread_mutex_unlock(&rt->tmu);
        }
    }
    return NULL;
}

/* ---- runtime ---------------------------------------------------------- */

wd_runtime_cfg wd_runtime_cfg_defaults(void)
{
    return (wd_runtime_cfg){.threads = 2};
}

wd_status wd_runtime_create(wd_runtime **out, const wd_runtime_cfg *cfg)
{
    wd_runtime *rt = calloc(1, sizeof *rt);
    if (rt == NULL)
        return WD_ERR(WD_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&rt->mu, NULL);
    pthread_mutex_init(&rt->tmu, NULL);
    pthread_cond_init(&rt->work_cv, NULL);
    pthread_cond_init(&rt->idle_cv, NULL);
    atomic_init(&rt->next_id, 1);
    atomic_init(&rt->poller_stop, false);
    rt->nthreads = cfg->threads > 0 ? cfg->threads : 2;
    rt->epfd = epoll_create1(EPOLL_CLOEXEC);
    rt->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0};
    if (rt->epfd < 0 || rt->evfd < 0 || epoll_ctl(rt->epfd, EPOLL_CTL_ADD, rt->evfd, &ev) != 0) {
        wd_status st = WD_ERR(WD_ERR_IO, "epoll/eventfd: %s", strerror(errno));
        if (rt->epfd >= 0)
            close(rt->epfd);
        if (rt->evfd >= 0)
            close(rt->evfd);
        free(rt);
        return st;
    }
    rt->threads = calloc((size_t)rt->nthreads, sizeof *rt->threads);
    for (int i = 0; i < rt->nthreads; i++)
        pthread_create(&rt->threads[i], NULL, worker_main, rt);
    pthread_create(&rt->poller, NULL, poller_main, rt);
    *out = rt;
    return WD_OK;
}

void wd_runtime_shutdown(wd_runtime *rt)
{
    pthread_mutex_lock(&rt->mu);
    if (rt->shut) {
        pthread_mutex_unlock(&rt->mu);
        return;
    }
    rt->closing = true;
    /* Collect references so the actors survive while we post STOP. */
    size_t n = rt->live, k = 0;
    wd_actor **list = calloc(n ? n : 1, sizeof *list);
    for (wd_actor *a = rt->all; a && list && k < n; a = a->next_all)
        list[k++] = wd_actor_ref(a);
    pthread_mutex_unlock(&rt->mu);
    for (size_t i = 0; i < k; i++) {
        wd_actor_stop(list[i]);
        wd_actor_unref(&list[i]);
    }
    free(list);

    pthread_mutex_lock(&rt->mu);
    while (rt->live > 0)
        pthread_cond_wait(&rt->idle_cv, &rt->mu);
    rt->shut = true;
    pthread_cond_broadcast(&rt->work_cv);
    pthread_mutex_unlock(&rt->mu);
    for (int i = 0; i < rt->nthreads; i++)
        pthread_join(rt->threads[i], NULL);
    atomic_store(&rt->poller_stop, true);
    poller_wake(rt);
    pthread_join(rt->poller, NULL);
}

void wd_runtime_destroy(wd_runtime **prt)
{
    if (prt == NULL || *prt == NULL)
        return;
    wd_runtime *rt = *prt;
    *prt = NULL;
    wd_runtime_shutdown(rt);
    free(rt->threads);
    free(rt->timers);
    free(rt->watches);
    close(rt->epfd);
    close(rt->evfd);
    pthread_mutex_destroy(&rt->mu);
    pthread_mutex_destroy(&rt->tmu);
    pthread_cond_destroy(&rt->work_cv);
    pthread_cond_destroy(&rt->idle_cv);
    free(rt);
}
