/* Unit tests of the actor runtime: ordering, one thread per actor at a
 * time, timers as messages, fd watches, bounded mailboxes, draining
 * shutdown. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "actor.h"
#include "harness.h"

enum { M_SEQ = 1, M_SLOW, M_TIMER, M_FD, M_BLOCK };

typedef struct {
    atomic_int inside;      /* handlers currently running for this actor */
    atomic_int overlaps;    /* times two ran at once */
    atomic_long handled;
    long expected_next[4];  /* per sender: next sequence number */
    atomic_int order_errors;
    atomic_int timer_fires;
    atomic_int fd_events;
    atomic_bool stopped;
    long handled_at_stop;
    int fd;
    uint64_t watch;
    wd_runtime *rt;
} probe;

static void probe_handler(wd_actor *self, void *state, wd_msg *m)
{
    probe *p = state;
    if (atomic_fetch_add(&p->inside, 1) != 0)
        atomic_fetch_add(&p->overlaps, 1);
    switch (m->type) {
    case M_SEQ: {
        int sender = (int)(m->arg >> 32);
        long seq = (long)(m->arg & 0xffffffff);
        if (p->expected_next[sender] != seq)
            atomic_fetch_add(&p->order_errors, 1);
        p->expected_next[sender] = seq + 1;
        atomic_fetch_add(&p->handled, 1);
        break;
    }
    case M_SLOW:
        usleep(1000);
        atomic_fetch_add(&p->handled, 1);
        break;
    case M_TIMER:
        atomic_fetch_add(&p->timer_fires, 1);
        break;
    case M_FD: {
        char buf[64];
        ssize_t r = read(p->fd, buf, sizeof buf);
        (void)r;
        atomic_fetch_add(&p->fd_events, 1);
        wd_actor_rearm_fd(p->rt, p->watch);
        break;
    }
    case M_BLOCK:
        usleep(200000);
        break;
    case WD_MSG_STOP:
        p->handled_at_stop = atomic_load(&p->handled);
        atomic_store(&p->stopped, true);
        break;
    }
    atomic_fetch_sub(&p->inside, 1);
}

static wd_actor *spawn(wd_runtime *rt, probe *p, size_t cap)
{
    wd_actor_cfg cfg = wd_actor_cfg_defaults();
    cfg.name = "probe";
    cfg.handler = probe_handler;
    cfg.state = p;
    cfg.mailbox_cap = cap;
    p->rt = rt;
    wd_actor *a = NULL;
    CU_ASSERT_EQUAL_FATAL(wd_actor_spawn(rt, &cfg, &a), WD_OK);
    return a;
}

typedef struct {
    wd_actor *a;
    int sender;
    int n;
} sender_arg;

static void *sender_main(void *arg)
{
    sender_arg *s = arg;
    for (int i = 0; i < s->n; i++) {
        uint64_t v = ((uint64_t)s->sender << 32) | (uint64_t)i;
        while (wd_actor_send_arg(s->a, M_SEQ, v) == WD_ERR_FULL)
            usleep(100);
    }
    return NULL;
}

static void test_order_and_exclusion(void)
{
    wd_runtime_cfg rc = wd_runtime_cfg_defaults();
    rc.threads = 4;
    wd_runtime *rt = NULL;
    CU_ASSERT_EQUAL_FATAL(wd_runtime_create(&rt, &rc), WD_OK);
    probe p = {0};
    wd_actor *a = spawn(rt, &p, 256);
    pthread_t th[4];
    sender_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (sender_arg){a, i, 20000};
        pthread_create(&th[i], NULL, sender_main, &args[i]);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    CU_ASSERT(WD_H_WAIT(atomic_load(&p.handled) == 80000, 10000));
    CU_ASSERT_EQUAL(atomic_load(&p.order_errors), 0);
    CU_ASSERT_EQUAL(atomic_load(&p.overlaps), 0);
    wd_actor_unref(&a);
    wd_runtime_destroy(&rt);
    CU_ASSERT(atomic_load(&p.stopped));
}

static void test_many_actors_no_overlap(void)
{
    wd_runtime_cfg rc = wd_runtime_cfg_defaults();
    rc.threads = 4;
    wd_runtime *rt = NULL;
    CU_ASSERT_EQUAL_FATAL(wd_runtime_create(&rt, &rc), WD_OK);
    probe ps[8] = {0};
    wd_actor *as[8];
    for (int i = 0; i < 8; i++)
        as[i] = spawn(rt, &ps[i], 1024);
    for (int k = 0; k < 50; k++)
        for (int i = 0; i < 8; i++)
            CU_ASSERT_EQUAL(wd_actor_send(as[i], M_SLOW, NULL, NULL), WD_OK);
    for (int i = 0; i < 8; i++) {
        CU_ASSERT(WD_H_WAIT(atomic_load(&ps[i].handled) == 50, 10000));
        CU_ASSERT_EQUAL(atomic_load(&ps[i].overlaps), 0);
        wd_actor_unref(&as[i]);
    }
    wd_runtime_destroy(&rt);
}

static void test_mailbox_bound(void)
{
    wd_runtime *rt = NULL;
    wd_runtime_cfg rc = wd_runtime_cfg_defaults();
    CU_ASSERT_EQUAL_FATAL(wd_runtime_create(&rt, &rc), WD_OK);
    probe p = {0};
    wd_actor *a = spawn(rt, &p, 4);
    /* The first message blocks the actor; the mailbox then fills. */
    CU_ASSERT_EQUAL(wd_actor_send(a, M_BLOCK, NULL, NULL), WD_OK);
    usleep(20000);
    int ok = 0, full = 0;
    for (int i = 0; i < 10; i++) {
        int *payload = malloc(sizeof *payload); /* freed by the runtime either way */
        wd_status st = wd_actor_send(a, M_SLOW, payload, free);
        ok += st == WD_OK;
        full += st == WD_ERR_FULL;
    }
    CU_ASSERT_EQUAL(ok, 4);
    CU_ASSERT_EQUAL(full, 6);
    wd_actor_unref(&a);
    wd_runtime_destroy(&rt);
    CU_ASSERT_EQUAL(p.handled_at_stop, 4);
}

static void test_shutdown_drains(void)
{
    wd_runtime *rt = NULL;
    wd_runtime_cfg rc = wd_runtime_cfg_defaults();
    CU_ASSERT_EQUAL_FATAL(wd_runtime_create(&rt, &rc), WD_OK);
    probe p = {0};
    wd_actor *a = spawn(rt, &p, 1024);
    for (int i = 0; i < 200; i++)
        CU_ASSERT_EQUAL(wd_actor_send(a, M_SLOW, NULL, NULL), WD_OK);
    wd_runtime_shutdown(rt);
    /* Everything queued before shutdown was handled, then STOP. */
    CU_ASSERT(atomic_load(&p.stopped));
    CU_ASSERT_EQUAL(p.handled_at_stop, 200);
    CU_ASSERT_EQUAL(wd_actor_send(a, M_SLOW, NULL, NULL), WD_ERR_CLOSED);
    CU_ASSERT(wd_actor_stopped(a));
    wd_actor_unref(&a);
    wd_runtime_destroy(&rt);
}

static void test_timers(void)
{
    wd_runtime *rt = NULL;
    wd_runtime_cfg rc = wd_runtime_cfg_defaults();
    CU_ASSERT_EQUAL_FATAL(wd_runtime_create(&rt, &rc), WD_OK);
    probe p = {0};
    wd_actor *a = spawn(rt, &p, 64);
    uint64_t once = 0, periodic = 0, cancelled = 0;
    CU_ASSERT_EQUAL(wd_actor_timer(a, 30, 0, M_TIMER, &once), WD_OK);
    CU_ASSERT_EQUAL(wd_actor_timer(a, 10, 20, M_TIMER, &periodic), WD_OK);
    CU_ASSERT_EQUAL(wd_actor_timer(a, 50, 0, M_TIMER, &cancelled), WD_OK);
    wd_actor_timer_cancel(rt, cancelled);
    CU_ASSERT(WD_H_WAIT(atomic_load(&p.timer_fires) >= 6, 2000));
    wd_actor_timer_cancel(rt, periodic);
    usleep(60000);
    int fires = atomic_load(&p.timer_fires);
    usleep(100000);
    CU_ASSERT_EQUAL(atomic_load(&p.timer_fires), fires); /* nothing after cancel */
    wd_actor_unref(&a);
    wd_runtime_destroy(&rt);
}

static void test_fd_watch(void)
{
    wd_runtime *rt = NULL;
    wd_runtime_cfg rc = wd_runtime_cfg_defaults();
    CU_ASSERT_EQUAL_FATAL(wd_runtime_create(&rt, &rc), WD_OK);
    probe p = {0};
    int fds[2];
    CU_ASSERT_EQUAL_FATAL(pipe(fds), 0);
    p.fd = fds[0];
    wd_actor *a = spawn(rt, &p, 64);
    CU_ASSERT_EQUAL(wd_actor_watch_fd(a, fds[0], EPOLLIN, M_FD, &p.watch), WD_OK);
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL(write(fds[1], "x", 1), 1);
        CU_ASSERT(WD_H_WAIT(atomic_load(&p.fd_events) == i + 1, 2000));
    }
    wd_actor_unref(&a);
    wd_runtime_destroy(&rt); /* drops the watch */
    close(fds[0]);
    close(fds[1]);
}

static void test_stop_one_actor(void)
{
    wd_runtime *rt = NULL;
    wd_runtime_cfg rc = wd_runtime_cfg_defaults();
    CU_ASSERT_EQUAL_FATAL(wd_runtime_create(&rt, &rc), WD_OK);
    probe p = {0};
    wd_actor *a = spawn(rt, &p, 64);
    uint64_t t;
    CU_ASSERT_EQUAL(wd_actor_timer(a, 10, 10, M_TIMER, &t), WD_OK);
    wd_actor_stop(a);
    wd_actor_stop(a); /* idempotent */
    CU_ASSERT(WD_H_WAIT(wd_actor_stopped(a), 2000));
    CU_ASSERT_EQUAL(wd_actor_send(a, M_SLOW, NULL, NULL), WD_ERR_CLOSED);
    wd_actor_unref(&a);
    wd_runtime_destroy(&rt);
}

int main(void)
{
    static const wd_h_case cases[] = {
        {"messages from each sender keep their order; one thread at a time",
         test_order_and_exclusion},
        {"many actors on a pool never overlap", test_many_actors_no_overlap},
        {"a full mailbox refuses with WD_ERR_FULL and frees the payload", test_mailbox_bound},
        {"shutdown drains mailboxes before stopping", test_shutdown_drains},
        {"timers arrive as messages; cancel stops them", test_timers},
        {"fd readiness arrives as messages (one-shot, rearm)", test_fd_watch},
        {"stopping one actor drops its timers and refuses sends", test_stop_one_actor},
        {NULL, NULL}};
    wd_h_suite("actor", NULL, NULL, cases);
    return wd_h_run();
}
