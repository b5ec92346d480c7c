/* Internals of warden-ws shared by its modules (not a public contract):
 *
 *   gateway.c   the lws loop: connections, client events, inbox, tick
 *   fanout.c    the watch table (one NATS subscription per watched server)
 *               and the nats.c callbacks
 *   requests.c  bus requests on the worker pool (console, power, history)
 *   metrics.c   GET /healthz and /metrics
 *
 * Threads and ownership:
 *   loop     lws_service(): connections, watch table, counters, send queues.
 *   nats.c   on_server_msg / wd_fanout_on_panel_event: decode, build frames,
 *            post.
 *   workers  run_job(): blocking bus requests, then post the outcome.
 * wd_gw_post() is the only way into the loop; everything it carries owns
 * its payload until the loop takes it. Functions below run on the loop
 * thread unless they say otherwise. */
#ifndef WD_GATEWAY_INT_H
#define WD_GATEWAY_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <libwebsockets.h>

#include "gateway.h"
#include "workq.h"
#include "ws_events.h"

#define ID_MAX 65
#define WATCH_BUCKETS 256
#define INBOX_MAX 100000
#define INBOX_BATCH 32
#define INFLIGHT_MAX 8 /* bus requests per connection at once */
#define REVOKED_MAX 4096
#define REVOKED_KEEP_S 3600 /* longer than any gateway token lives */
#define AUTH_FAILURES_MAX 3
#define SUBJ_PANEL_EVENTS "warden.panel.events.>"

/* Close codes (docs/websocket.md). */
enum {
    CLOSE_NORMAL = 1000,
    CLOSE_GOING_AWAY = 1001,
    CLOSE_UNSUPPORTED = 1003,
    CLOSE_TOO_BIG = 1009,
    CLOSE_AUTH = 4001,
    CLOSE_EXPIRED = 4004,
    CLOSE_REVOKED = 4005,
    CLOSE_SLOW = 4008,
    CLOSE_RATE = 4029,
};

typedef struct {
    wd_ws_frame **v;
    size_t cap, head, len, bytes;
} fq;

typedef struct conn conn;
typedef struct watch watch;

struct watch {
    watch *next; /* hash chain */
    char server[ID_MAX];
    natsSubscription *sub;
    conn *conns; /* watchers, through conn->wnext/wprev */
    int refs;
    wd_ws_frame *last_stats, *last_status;
    uint64_t console_seq; /* last console line sent live: an agent's retried
                             chunk (same lines again) is not sent twice */
};

struct conn {
    conn *next, *prev;   /* all connections */
    conn *wnext, *wprev; /* watchers of the same server */
    uint64_t id;
    struct lws *wsi;
    char peer[64];
    char path_srv[ID_MAX]; /* server named by the URL (/ws/<id>), or "" */
    int64_t opened_ms;
    /* authentication */
    bool authed, warned;
    int auth_failures;
    wd_wstoken_claims claims;
    watch *w;
    bool live_status; /* a live status reached this socket */
    /* outgoing */
    fq q, parked;
    bool history_pending;
    /* incoming message assembly */
    char *rx;
    size_t rxlen;
    int inflight; /* console/power requests not answered yet */
    /* rate limit (token bucket) */
    double tokens;
    int64_t refill_ms;
    int strikes;
    /* closing */
    uint64_t written; /* frames written */
    int close_code;
    char close_reason[96];
    bool drain; /* send what is queued first */
};

typedef struct {
    conn *c;
    unsigned char *body; /* HTTP: LWS_PRE + body_len */
    size_t body_len;
} pss;

typedef enum { IN_FRAME, IN_CONN_FRAME, IN_HISTORY, IN_REVOKE, IN_JOB_DONE } in_kind;

typedef struct inbox_item {
    struct inbox_item *next;
    in_kind kind;
    char server[ID_MAX];
    uint64_t conn_id;
    wd_ws_frame *f;
    wd_ws_frame **hist;
    size_t nhist;
    uint64_t hist_last_seq;
    char user[ID_MAX], sid[ID_MAX];
    int revoke_kind;
} inbox_item;

/* A revocation remembered so that tokens issued before it, still within
 * their lifetime, cannot authenticate again on any socket. */
typedef struct {
    int kind;
    char user[ID_MAX], sid[ID_MAX], server[ID_MAX];
    int64_t at; /* Unix seconds when the gateway learnt it */
} revocation;

typedef enum { JOB_CONSOLE, JOB_POWER, JOB_HISTORY, JOB_STATE } job_kind;

typedef struct {
    wd_gw *gw;
    job_kind kind;
    uint64_t conn_id;
    char server[ID_MAX], node[ID_MAX], actor[ID_MAX];
    int action;
    char *line;
    const char *cause;
} job;

struct wd_gw {
    wd_gw_cfg cfg;
    char *host, *origins;
    struct lws_context *ctx;
    lws_retry_bo_t retry;
    struct lws_protocols protocols[2];
    lws_sorted_usec_list_t tick;
    int port;
    atomic_bool stop;
    bool shut;

    /* inbox: any thread → loop */
    pthread_mutex_t mu;
    inbox_item *in_head, *in_tail;
    size_t in_len;
    bool ctx_alive;

    wd_workq *workq;
    natsSubscription *events_sub;

    /* loop-owned */
    conn *conns;
    uint64_t next_id;
    watch *buckets[WATCH_BUCKETS];
    size_t nwatches, nconns, nauthed;
    revocation revoked[REVOKED_MAX]; /* ring */
    size_t nrevoked;
    struct {
        uint64_t msgs_in, msgs_out, slow_closes, dropped_slow, auth_failures, commands, power,
            rejected_origin, rejected_limit, errors, revoked, expired;
    } m;
    atomic_uint_fast64_t bus_in, inbox_dropped, jobs_failed;
};

/* gateway.c */
/* Any thread: hands it to the loop (freed when refused); never blocks. */
void wd_gw_post(wd_gw *gw, inbox_item *it);
/* Any thread: f (taken) for one connection. */
void wd_gw_post_frame(wd_gw *gw, uint64_t conn_id, wd_ws_frame *f);

/* fanout.c */
watch *wd_fanout_find(wd_gw *gw, const char *server);
/* The server's watch, subscribing on first use; one reference per call. */
wd_status wd_fanout_acquire(wd_gw *gw, const char *server, watch **out);
/* Drops a reference; unsubscribes and frees with the last. */
void wd_fanout_release(wd_gw *gw, watch *w);
void wd_fanout_add_conn(watch *w, conn *c);
void wd_fanout_remove_conn(watch *w, conn *c);
/* nats.c thread: warden.panel.events.> (revocations). */
void wd_fanout_on_panel_event(natsConnection *nc, natsSubscription *sub, natsMsg *msg,
                              void *closure);

/* requests.c */
/* Queues a bus request for connection c; WD_ERR_FULL when the pool's
 * queue is full or c has INFLIGHT_MAX console/power requests pending. */
wd_status wd_requests_submit(wd_gw *gw, conn *c, job_kind kind, int action, const char *line,
                             const char *cause);

/* metrics.c */
/* Answers an HTTP request (LWS_CALLBACK_HTTP). */
int wd_gw_http_serve(wd_gw *gw, struct lws *wsi, pss *p, const char *uri);

#endif
