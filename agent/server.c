/* The server actor: one per game server, owner of everything about it.
 *
 * It holds the spec (template + variables + limits), the state machine of
 * docs/architecture.md, the connection to the game's warden-shim, console
 * publishing (rate limit, drop accounting, done-pattern detection), stats,
 * the crash/restart policy and persistence. Requests arrive as SRV_REQUEST
 * messages carrying the natsMsg; timers and the shim socket's readiness
 * arrive as messages too, so nothing here needs a lock.
 *
 * A game or an install script runs under a shim ("proc" below); at most one
 * at a time. Console sequence numbers are per server and never go back:
 * each proc's line n is published as seq_base + n, where seq_base is the last
 * sequence published before the proc started (persisted, so a restarted
 * agent continues the numbering and asks the shim for exactly the lines it
 * has not published yet).
 *
 * Backups (backup.c does the file work) run on the agent's job queue, at
 * most one per server; the actor checks requests and state and hears back
 * when a job is done (see "backups" below). */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent_int.h"
#include "backup.h"
#include "cgroup.h"
#include "js.h"
#include "log.h"
#include "procstat.h"
#include "sandbox.h"
#include "shim_client.h"
#include "shim_proto.h"
#include "subject.h"
#include "template.h"
#include "warden/v1/backup.pb-c.h"
#include "warden/v1/console.pb-c.h"

#define ST(x) WARDEN__V1__SERVER_STATE__SERVER_STATE_##x
#define CONSOLE_MAX_INPUT 4096
#define KILL_WAIT_MS 10000
#define SEND_TIMEOUT_MS 2000

enum {
    T_GRACE = 100, /* stop command sent, grace over: SIGTERM */
    T_KILL,        /* SIGTERM sent, still alive: SIGKILL the tree */
    T_RESTART,     /* crash back-off over: start again */
    T_STATS,
    T_SHIM_IO,     /* shim socket readable */
    T_RETRY_STATE, /* retry publishing state events NATS did not take */
    T_JOB_DONE,    /* a backup job finished (a due-now timer: never refused) */
};

typedef enum { INTENT_NONE, INTENT_STOP, INTENT_RESTART, INTENT_KILL, INTENT_DELETE } intent_t;

typedef enum { JOB_CREATE, JOB_RESTORE } job_kind;

/* A backup create or restore running on the agent's job queue. Shared by
 * the actor and the worker (refs); the worker answers the request itself,
 * sets done, then nudges the actor. Until done only the worker writes it;
 * the actor reads the results after done. */
typedef struct {
    atomic_int refs;
    atomic_bool done;
    atomic_bool cancel; /* the server is being deleted */
    job_kind kind;
    wd_agent *ag;
    wd_actor *actor; /* reference */
    natsMsg *m;      /* the request */
    char server_id[WD_UUID_LEN + 1];
    char backup_id[WD_UUID_LEN + 1];
    char server_dir[1100];
    char backup_dir[1100];
    char **ignore;
    size_t n_ignore;
    bool truncate;
    int uid, gid;
    uint64_t max_bytes;
    char trace[64];
    /* results */
    wd_status st;
    char msg[512];
    uint64_t size;
    char sha256[65];
    size_t skipped;
} backup_job;

typedef struct {
    bool active;
    bool install;
    int fd;
    uint64_t watch;
    wd_shim_reader *rd;
    pid_t shim_pid, child_pid;
    uint64_t seq_base;
    int64_t started_mono_ms;
    int64_t started_unix_ms;
    char run_dir[1100];
} proc_t;

typedef struct pending_event {
    struct pending_event *next;
    uint8_t *buf;
    size_t len;
    char msg_id[96];
    char trace[64]; /* of the request that caused it, "" if none */
} pending_event;

typedef struct {
    wd_agent *ag;
    wd_actor *self;
    wd_server_ref *ref;
    char id[WD_UUID_LEN + 1];
    char dir[1100];      /* the game's files */
    char meta_dir[1100]; /* spec.pb, state */
    Warden__V1__ServerSpec *spec;
    bool configured;     /* a valid spec was synced */

    Warden__V1__ServerState state;
    bool installed;
    char last_error[256];
    proc_t p;
    intent_t intent;
    natsMsg *delete_reply;
    uint64_t grace_timer, kill_timer, restart_timer, stats_timer, retry_timer;

    /* console */
    uint8_t *pack_buf;
    size_t pack_cap;
    uint64_t last_seq;        /* last sequence number published */
    uint64_t dropped_total;
    uint64_t pending_dropped; /* to report in the next chunk */
    double tokens;
    int64_t tokens_at_us;
    int64_t drop_notice_ms;

    /* crash policy */
    int64_t restarts_at[32];
    int nrestarts;
    uint32_t backoff_ms;

    /* stats */
    uint64_t prev_ticks;
    int64_t prev_ticks_ms;
    uint64_t disk_bytes;
    int64_t disk_at_ms;

    pending_event *pending_head, *pending_tail;
    uint64_t events; /* state events made by this actor: unique Nats-Msg-Ids */

    backup_job *job;       /* the create/restore running for this server, or NULL */
    bool delete_after_job; /* a delete waits for it (the job was cancelled) */
} server;

/* ---- small helpers ----------------------------------------------------- */

static bool restore_running(server *s);
static bool job_busy(server *s, wd_status *st);

static const char *state_name(Warden__V1__ServerState s)
{
    switch (s) {
    case ST(OFFLINE):
        return "offline";
    case ST(INSTALLING):
        return "installing";
    case ST(STARTING):
        return "starting";
    case ST(RUNNING):
        return "running";
    case ST(STOPPING):
        return "stopping";
    case ST(CRASHED):
        return "crashed";
    default:
        return "unknown";
    }
}

static bool proc_alive_state(Warden__V1__ServerState s)
{
    return s == ST(STARTING) || s == ST(RUNNING) || s == ST(STOPPING);
}

static void cancel_timer(server *s, uint64_t *t)
{
    if (*t) {
        wd_actor_timer_cancel(s->ag->rt, *t);
        *t = 0;
    }
}

static void reply_ack(server *s, natsMsg *m, wd_status st, const char *msg)
{
    wd_bus_respond_status(s->ag->bus, m, st, msg);
}

/* ---- persistence ------------------------------------------------------- */

static void save_state(server *s)
{
    char path[1200], text[512];
    snprintf(path, sizeof path, "%s/state", s->meta_dir);
    int n = snprintf(text, sizeof text,
                     "state=%d\ninstalled=%d\nlast_seq=%llu\nproc=%s\nseq_base=%llu\n"
                     "started_unix_ms=%lld\n",
                     (int)s->state, s->installed ? 1 : 0, (unsigned long long)s->last_seq,
                     !s->p.active ? "none" : s->p.install ? "install" : "game",
                     (unsigned long long)s->p.seq_base, (long long)s->p.started_unix_ms);
    if (wd_write_file_atomic(path, text, (size_t)n, 0600) != WD_OK)
        wd_error("server %s: cannot save state: %s", s->id, wd_err_msg());
}

typedef struct {
    int state;
    bool installed;
    uint64_t last_seq;
    char proc[16];
    uint64_t seq_base;
    int64_t started_unix_ms;
} saved_state;

static bool load_state(server *s, saved_state *out)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/state", s->meta_dir);
    char *text = NULL;
    if (wd_read_file(path, 4096, &text, NULL) != WD_OK)
        return false;
    memset(out, 0, sizeof *out);
    snprintf(out->proc, sizeof out->proc, "none");
    for (char *line = text; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        char *eq = strchr(line, '=');
        if (eq) {
            *eq = '\0';
            const char *k = line, *v = eq + 1;
            long long num = strtoll(v, NULL, 10);
            if (strcmp(k, "state") == 0)
                out->state = (int)num;
            else if (strcmp(k, "installed") == 0)
                out->installed = num != 0;
            else if (strcmp(k, "last_seq") == 0)
                out->last_seq = (uint64_t)num;
            else if (strcmp(k, "proc") == 0)
                snprintf(out->proc, sizeof out->proc, "%s", v);
            else if (strcmp(k, "seq_base") == 0)
                out->seq_base = (uint64_t)num;
            else if (strcmp(k, "started_unix_ms") == 0)
                out->started_unix_ms = num;
        }
        line = nl ? nl + 1 : NULL;
    }
    free(text);
    return true;
}

static wd_status save_spec(server *s)
{
    size_t len = protobuf_c_message_get_packed_size(&s->spec->base);
    uint8_t *buf = malloc(len ? len : 1);
    if (buf == NULL)
        return WD_ERR(WD_ERR_NOMEM, "out of memory");
    protobuf_c_message_pack(&s->spec->base, buf);
    char path[1200];
    snprintf(path, sizeof path, "%s/spec.pb", s->meta_dir);
    wd_status st = wd_write_file_atomic(path, buf, len, 0600);
    free(buf);
    return st;
}

/* ---- state events ------------------------------------------------------ */

/* Publishes queued state events in order, each stored by JetStream before
 * the next; stops at the first failure and retries from a timer. */
static void flush_pending(server *s)
{
    char subj[WD_SUBJECT_MAX];
    if (wd_subj_server_event(subj, sizeof subj, s->id, "state") != WD_OK)
        return;
    while (s->pending_head) {
        pending_event *e = s->pending_head;
        natsMsg *m = NULL;
        if (natsMsg_Create(&m, subj, NULL, (const char *)e->buf, (int)e->len) != NATS_OK)
            break;
        natsMsgHeader_Set(m, WD_HDR_MSG_ID, e->msg_id);
        if (e->trace[0])
            natsMsgHeader_Set(m, WD_HDR_TRACE, e->trace);
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MaxWait = 1000;
        jsPubAck *pa = NULL;
        natsStatus ns = js_PublishMsg(&pa, wd_bus_js(s->ag->bus), m, &po, NULL);
        jsPubAck_Destroy(pa);
        natsMsg_Destroy(m);
        if (ns != NATS_OK) {
            /* The retry carries the same Nats-Msg-Id: the stream keeps one
             * copy even if this one was stored and only its ack was lost. */
            if (s->retry_timer == 0) {
                /* Once per outage; the retries are quiet. */
                const char *why = nats_GetLastError(NULL);
                wd_warn("server %s: JetStream did not store a state event (%s%s%s); holding "
                        "it and what follows, retrying every second",
                        s->id, natsStatus_GetText(ns), why ? ": " : "", why ? why : "");
                wd_actor_timer(s->self, 1000, 1000, T_RETRY_STATE, &s->retry_timer);
            }
            return;
        }
        s->pending_head = e->next;
        if (s->pending_head == NULL)
            s->pending_tail = NULL;
        free(e->buf);
        free(e);
    }
    cancel_timer(s, &s->retry_timer);
}

/* Queues e and publishes what can be published now. While a retry is
 * pending, new events wait for the timer (in order) instead of blocking the
 * actor on every one. */
static void enqueue_pending(server *s, pending_event *e)
{
    if (s->pending_tail)
        s->pending_tail->next = e;
    else
        s->pending_head = e;
    s->pending_tail = e;
    if (s->retry_timer == 0)
        flush_pending(s);
}

static void set_state(server *s, Warden__V1__ServerState to, const char *reason, int exit_code,
                      int sig)
{
    Warden__V1__ServerState from = s->state;
    s->state = to;
    atomic_store(&s->ref->state, (int)to);
    save_state(s);
    wd_info("server %s: %s -> %s (%s)", s->id, state_name(from), state_name(to), reason);

    Warden__V1__ServerStateEvent ev = WARDEN__V1__SERVER_STATE_EVENT__INIT;
    ev.server_id = s->id;
    ev.node_id = s->ag->node_id;
    ev.state = to;
    ev.previous = from;
    ev.reason = (char *)reason;
    ev.time_unix_ms = wd_unix_ms();
    ev.exit_code = exit_code;
    ev.signal = sig;
    ev.installed = s->installed;
    ev.restarts = (uint32_t)s->nrestarts;
    pending_event *e = calloc(1, sizeof *e);
    if (e == NULL)
        return;
    e->len = protobuf_c_message_get_packed_size(&ev.base);
    e->buf = malloc(e->len ? e->len : 1);
    if (e->buf == NULL) {
        free(e);
        return;
    }
    protobuf_c_message_pack(&ev.base, e->buf);
    snprintf(e->msg_id, sizeof e->msg_id, "%s:state:%lld:%llu", s->id, (long long)s->ag->boot_ms,
             (unsigned long long)++s->events);
    /* The request being handled (if any) caused this: keep its trace. */
    const char *trace = wd_log_trace();
    snprintf(e->trace, sizeof e->trace, "%s", trace ? trace : "");
    enqueue_pending(s, e);
}

/* ---- console ----------------------------------------------------------- */

/* Publishes one chunk (lines point into the shim frame). It goes out at
 * once, to live watchers too, as a JetStream publish whose acknowledgement
 * is not awaited here: a chunk the stream did not store (a NATS server
 * died and the stream is electing a new leader, which drops plain
 * publishes without a word) is sent again by the bus with the same
 * Nats-Msg-Id (bus.h, wd_bus_cfg.js_resend), so the history has no holes
 * and the console no extra latency. */
static void publish_chunk(server *s, uint64_t first_seq, ProtobufCBinaryData *lines, size_t n,
                          uint64_t dropped, Warden__V1__ConsoleSource src, uint32_t truncated)
{
    Warden__V1__ConsoleChunk c = WARDEN__V1__CONSOLE_CHUNK__INIT;
    ProtobufCBinaryData *ptrs = lines;
    c.server_id = s->id;
    c.first_seq = first_seq;
    c.lines = ptrs;
    c.n_lines = n;
    c.dropped = dropped;
    c.source = src;
    c.time_unix_ms = wd_unix_ms();
    c.truncated = truncated;
    size_t len = protobuf_c_message_get_packed_size(&c.base);
    if (len > s->pack_cap) {
        uint8_t *nb = realloc(s->pack_buf, len);
        if (nb == NULL)
            return;
        s->pack_buf = nb;
        s->pack_cap = len;
    }
    protobuf_c_message_pack(&c.base, s->pack_buf);
    char subj[WD_SUBJECT_MAX], msg_id[96];
    if (wd_subj_server_event(subj, sizeof subj, s->id, "console") != WD_OK)
        return;
    if (first_seq)
        snprintf(msg_id, sizeof msg_id, "%s:%llu", s->id, (unsigned long long)first_seq);
    else
        snprintf(msg_id, sizeof msg_id, "%s:sys:%lld", s->id, (long long)wd_mono_us());
    natsMsg *m = NULL;
    if (natsMsg_Create(&m, subj, NULL, (const char *)s->pack_buf, (int)len) != NATS_OK)
        return;
    natsMsgHeader_Set(m, WD_HDR_MSG_ID, msg_id);
    wd_status st = wd_bus_publish_stored(s->ag->bus, &m);
    if (st != WD_OK)
        wd_debug("server %s: console publish: %s", s->id, wd_err_msg());
    natsMsg_Destroy(m);
}

/* A notice from the agent itself, shown in the console ("[Warden] ..."). */
static void system_line(server *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void system_line(server *s, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    ProtobufCBinaryData line = {.len = (size_t)(n < (int)sizeof text ? n : (int)sizeof text - 1),
                                .data = (uint8_t *)text};
    publish_chunk(s, 0, &line, 1, 0, WARDEN__V1__CONSOLE_SOURCE__CONSOLE_SYSTEM, 0);
}

static uint32_t console_rate(server *s)
{
    if (s->spec && s->spec->limits && s->spec->limits->console_lines_per_second)
        return s->spec->limits->console_lines_per_second;
    return (uint32_t)s->ag->cfg->console_rate;
}

static void check_done_pattern(server *s, const uint8_t *data, size_t len)
{
    if (s->state != ST(STARTING) || s->p.install)
        return;
    const char *pat = s->spec->template_->done_pattern;
    if (pat == NULL || *pat == '\0')
        return;
    if (memmem(data, len, pat, strlen(pat)) != NULL) {
        s->backoff_ms = 0;
        set_state(s, ST(RUNNING), "done pattern seen", 0, 0);
    }
}

/* Handles one LINES frame: done pattern, rate limit, publish. */
static void on_lines(server *s, const wd_shim_frame *f)
{
    wd_shim_lines it;
    if (wd_shim_lines_begin(f, &it) != WD_OK || it.count == 0)
        return;
    size_t n = it.count;
    ProtobufCBinaryData *lines = calloc(n, sizeof *lines);
    if (lines == NULL)
        return;
    uint32_t truncated = 0;
    wd_shim_line line;
    size_t k = 0;
    while (k < n && wd_shim_lines_next(&it, &line)) {
        lines[k].data = (uint8_t *)line.data;
        lines[k].len = line.len;
        truncated += (line.flags & WD_SHIM_LINE_CUT) != 0;
        check_done_pattern(s, line.data, line.len);
        k++;
    }
    n = k;

    /* Token bucket: rate lines/s, burst of one second's worth. */
    uint32_t rate = console_rate(s);
    int64_t now = wd_mono_us();
    if (s->tokens_at_us == 0)
        s->tokens = rate;
    else
        s->tokens += (double)(now - s->tokens_at_us) * rate / 1e6;
    if (s->tokens > rate)
        s->tokens = rate;
    s->tokens_at_us = now;
    size_t keep = n;
    if (s->tokens < (double)n)
        keep = s->tokens > 0 ? (size_t)s->tokens : 0;
    s->tokens -= (double)keep;

    uint64_t first = s->p.seq_base + it.first_seq;
    uint64_t dropped = s->pending_dropped + it.dropped;
    if (keep > 0) {
        s->pending_dropped = 0; /* reported by this chunk */
        publish_chunk(s, first, lines, keep, dropped,
                      s->p.install ? WARDEN__V1__CONSOLE_SOURCE__CONSOLE_INSTALL
                                   : WARDEN__V1__CONSOLE_SOURCE__CONSOLE_GAME,
                      truncated);
    } else {
        s->pending_dropped = dropped;
    }
    if (keep < n) {
        s->pending_dropped += n - keep;
        s->dropped_total += n - keep;
        int64_t ms = wd_mono_ms();
        if (ms - s->drop_notice_ms >= 1000) {
            s->drop_notice_ms = ms;
            system_line(s, "[Warden] console output over %u lines/s: lines are being dropped "
                        "(%llu so far)", rate, (unsigned long long)s->dropped_total);
        }
    }
    s->dropped_total += it.dropped;
    s->last_seq = first + n - 1;
    free(lines);
}

/* ---- process control --------------------------------------------------- */

static void close_proc(server *s)
{
    if (s->p.watch) {
        wd_actor_unwatch_fd(s->ag->rt, s->p.watch);
        s->p.watch = 0;
    }
    if (s->p.fd >= 0) {
        close(s->p.fd);
        s->p.fd = -1;
    }
    wd_shim_reader_destroy(&s->p.rd);
    s->p.active = false;
    cancel_timer(s, &s->stats_timer);
}

static wd_status attach_proc(server *s, uint64_t from_seq)
{
    wd_status st = wd_shim_connect(s->p.run_dir, &s->p.fd);
    if (st != WD_OK)
        return st;
    if ((st = wd_shim_reader_create(&s->p.rd)) != WD_OK ||
        (st = wd_shim_send_attach(s->p.fd, from_seq, SEND_TIMEOUT_MS)) != WD_OK ||
        (st = wd_actor_watch_fd(s->self, s->p.fd, EPOLLIN, T_SHIM_IO, &s->p.watch)) != WD_OK) {
        close_proc(s);
        return st;
    }
    s->p.active = true;
    if (s->stats_timer == 0)
        wd_actor_timer(s->self, s->ag->cfg->stats_interval_ms, s->ag->cfg->stats_interval_ms,
                       T_STATS, &s->stats_timer);
    return WD_OK;
}

/* Resolved variables plus the built-ins SERVER_ID, SERVER_NAME, SERVER_DIR. */
static wd_status resolve_vars(server *s, const Warden__V1__ServerSpec *spec, bool isolated,
                              wd_kv **out, size_t *n_out)
{
    size_t ng = spec->n_variables;
    wd_kv *given = calloc(ng ? ng : 1, sizeof *given);
    if (given == NULL)
        return WD_ERR(WD_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < ng; i++) {
        given[i].key = spec->variables[i]->key;
        given[i].value = spec->variables[i]->value;
    }
    wd_kv *vars = NULL;
    size_t nv = 0;
    wd_status st = wd_template_resolve(spec->template_, given, ng, &vars, &nv);
    free(given);
    if (st != WD_OK)
        return st;
    wd_kv *all = realloc(vars, (nv + 3) * sizeof *all);
    if (all == NULL) {
        wd_kv_free(vars, nv);
        return WD_ERR(WD_ERR_NOMEM, "out of memory");
    }
    all[nv].key = strdup("SERVER_ID");
    all[nv].value = strdup(s->id);
    all[nv + 1].key = strdup("SERVER_NAME");
    all[nv + 1].value = strdup(spec->name ? spec->name : "");
    all[nv + 2].key = strdup("SERVER_DIR");
    all[nv + 2].value = strdup(isolated ? WD_SANDBOX_HOME : s->dir);
    *out = all;
    *n_out = nv + 3;
    return WD_OK;
}

typedef struct {
    char **v;
    size_t n, cap;
} strvec;

static void sv_add(strvec *sv, const char *k, const char *v)
{
    if (sv->n + 2 > sv->cap) {
        size_t ncap = sv->cap ? sv->cap * 2 : 32;
        char **nv = realloc(sv->v, ncap * sizeof *nv);
        if (nv == NULL)
            return;
        sv->v = nv;
        sv->cap = ncap;
    }
    size_t len = strlen(k) + strlen(v) + 2;
    char *e = malloc(len);
    if (e == NULL)
        return;
    snprintf(e, len, "%s=%s", k, v);
    sv->v[sv->n++] = e;
    sv->v[sv->n] = NULL;
}

/* The game's environment: basics, every variable, template environment. */
static wd_status build_env(server *s, const wd_kv *vars, size_t nv, const char *home, char ***out)
{
    strvec env = {0};
    sv_add(&env, "PATH", "/usr/local/bin:/usr/bin:/bin:/usr/local/games:/usr/games");
    sv_add(&env, "HOME", home);
    sv_add(&env, "USER", "container");
    sv_add(&env, "LANG", "C.UTF-8");
    sv_add(&env, "TERM", "dumb");
    for (size_t i = 0; i < nv; i++)
        sv_add(&env, vars[i].key, vars[i].value);
    const Warden__V1__Template *t = s->spec->template_;
    for (size_t i = 0; i < t->n_environment; i++) {
        char *val = NULL;
        wd_status st = wd_template_render(t->environment[i]->value, vars, nv, &val);
        if (st != WD_OK) {
            wd_argv_free(env.v);
            return st;
        }
        sv_add(&env, t->environment[i]->key, val);
        free(val);
    }
    *out = env.v;
    return env.v ? WD_OK : WD_ERR(WD_ERR_NOMEM, "out of memory");
}

static wd_status prepare_dir(server *s)
{
    wd_status st = wd_mkdir_p(s->dir, 0700);
    if (st != WD_OK)
        return st;
    if (s->ag->drop_privs && chown(s->dir, (uid_t)s->ag->game_uid, (gid_t)s->ag->game_gid) != 0)
        return WD_ERR(WD_ERR_IO, "chown %s: %s", s->dir, strerror(errno));
    return WD_OK;
}

/* Writes the template's config files (rendered) into the server dir. */
static wd_status write_config_files(server *s, const wd_kv *vars, size_t nv)
{
    const Warden__V1__Template *t = s->spec->template_;
    for (size_t i = 0; i < t->n_config_files; i++) {
        const Warden__V1__ConfigFile *cf = t->config_files[i];
        char *text = NULL;
        wd_status st = wd_template_render(cf->content ? cf->content : "", vars, nv, &text);
        if (st != WD_OK)
            return st;
        st = wd_path_write_confined(s->dir, cf->path, text, strlen(text),
                                    cf->mode ? cf->mode : 0644);
        free(text);
        if (st != WD_OK)
            return st;
        if (s->ag->drop_privs) {
            char full[2200];
            snprintf(full, sizeof full, "%s/%s", s->dir, cf->path);
            if (lchown(full, (uid_t)s->ag->game_uid, (gid_t)s->ag->game_gid) != 0)
                wd_warn("server %s: chown %s: %s", s->id, cf->path, strerror(errno));
        }
    }
    return WD_OK;
}

/* Starts the game (install=false) or the install script under a shim. */
static wd_status spawn_proc(server *s, bool install)
{
    wd_agent *ag = s->ag;
    wd_status st;
    wd_kv *vars = NULL;
    size_t nv = 0;
    char **cmd = NULL, **argv = NULL, **env = NULL;
    char script[1200] = "";
    wd_cgroup_procs cg = {0};
    const char *cg_paths[WD_CGROUP_MAX];
    size_t n_cg = 0;
    char cg_notes[256] = "";

    if ((st = prepare_dir(s)) != WD_OK)
        goto out;
    if ((st = resolve_vars(s, s->spec, ag->isolate, &vars, &nv)) != WD_OK)
        goto out;
    wd_sandbox_cfg sb = {.isolate = ag->isolate,
                         .bwrap_path = ag->cfg->bwrap_path,
                         .server_dir = s->dir};
    const Warden__V1__Template *t = s->spec->template_;
    if (install) {
        /* The script lives outside the server dir, readable by the game
         * user, and is bound read-only into the sandbox. */
        char idir[1100];
        snprintf(idir, sizeof idir, "%s/../install", ag->servers_dir);
        if ((st = wd_mkdir_p(idir, 0711)) != WD_OK)
            goto out;
        snprintf(script, sizeof script, "%s/%s.sh", idir, s->id);
        const char *body = t->install_script ? t->install_script : "";
        if ((st = wd_write_file_atomic(script, body, strlen(body), 0644)) != WD_OK)
            goto out;
        sb.install_script = script;
        const char *interp = t->install_interpreter && *t->install_interpreter
                                 ? t->install_interpreter
                                 : "/bin/sh";
        cmd = calloc(3, sizeof *cmd);
        if (cmd == NULL) {
            st = WD_ERR(WD_ERR_NOMEM, "out of memory");
            goto out;
        }
        cmd[0] = strdup(interp);
        cmd[1] = strdup(ag->isolate ? WD_SANDBOX_INSTALL_SCRIPT : script);
    } else {
        if ((st = write_config_files(s, vars, nv)) != WD_OK)
            goto out;
        int argc = 0;
        if ((st = wd_template_build_argv(t->startup, vars, nv, &cmd, &argc)) != WD_OK)
            goto out;
    }
    if ((st = wd_sandbox_argv(&sb, cmd, &argv)) != WD_OK)
        goto out;
    if ((st = build_env(s, vars, nv, wd_sandbox_home(&sb), &env)) != WD_OK)
        goto out;

    if (ag->cgroups && s->spec->limits &&
        (s->spec->limits->memory_bytes || s->spec->limits->pids || s->spec->limits->cpu_percent)) {
        if (wd_cgroup_setup(s->id, s->spec->limits->memory_bytes, s->spec->limits->pids,
                            s->spec->limits->cpu_percent, &cg, cg_notes,
                            sizeof cg_notes) != WD_OK) {
            wd_warn("server %s: limits not enforced: %s", s->id, cg_notes);
            system_line(s, "[Warden] resource limits are not enforced on this node: %s", cg_notes);
        } else {
            for (n_cg = 0; n_cg < cg.count; n_cg++)
                cg_paths[n_cg] = cg.path[n_cg];
        }
    }

    snprintf(s->p.run_dir, sizeof s->p.run_dir, "%s/%s/%s", ag->run_dir, s->id,
             install ? "install" : "game");
    wd_remove_tree(s->p.run_dir);
    if ((st = wd_mkdir_p(s->p.run_dir, 0700)) != WD_OK)
        goto out;

    wd_shim_spawn_cfg sc = wd_shim_spawn_cfg_defaults();
    sc.shim_path = ag->shim_path;
    sc.server_id = s->id;
    sc.run_dir = s->p.run_dir;
    sc.cwd = ag->isolate ? "/" : s->dir; /* bwrap --chdir does the rest */
    sc.set_ids = ag->drop_privs;
    sc.uid = (uid_t)ag->game_uid;
    sc.gid = (gid_t)ag->game_gid;
    sc.cgroup_procs = cg_paths;
    sc.n_cgroup_procs = n_cg;
    sc.env = (const char *const *)env;
    for (sc.n_env = 0; env[sc.n_env]; sc.n_env++)
        ;
    sc.argv = (const char *const *)argv;
    char shim_log[1200];
    snprintf(shim_log, sizeof shim_log, "%s/shim.log", s->p.run_dir);
    sc.log_path = shim_log;
    sc.ring_bytes = (size_t)ag->cfg->ring_bytes;
    sc.max_line = (size_t)ag->cfg->max_line;
    s->p.seq_base = s->last_seq;
    s->p.install = install;
    if ((st = wd_shim_spawn(&sc, &s->p.shim_pid, &s->p.child_pid)) != WD_OK)
        goto out;
    s->p.started_mono_ms = wd_mono_ms();
    s->p.started_unix_ms = wd_unix_ms();
    s->prev_ticks = 0;
    s->prev_ticks_ms = 0;
    if ((st = attach_proc(s, 1)) != WD_OK) {
        kill(s->p.shim_pid, SIGKILL);
        goto out;
    }
out:
    wd_kv_free(vars, nv);
    wd_argv_free(cmd);
    wd_argv_free(argv);
    wd_argv_free(env);
    return st;
}

static void signal_proc(server *s, int sig, bool tree)
{
    if (s->p.active && wd_shim_send_signal(s->p.fd, sig, tree ? WD_SHIM_SCOPE_TREE : WD_SHIM_SCOPE_GAME, SEND_TIMEOUT_MS) != WD_OK)
        wd_warn("server %s: signal %d: %s", s->id, sig, wd_err_msg());
}

static wd_status do_start(server *s, const char *reason)
{
    const Warden__V1__Template *t = s->spec->template_;
    if (restore_running(s))
        return WD_ERR(WD_ERR_STATE, "a restore of backup %s is running: start the server when "
                      "it has finished", s->job->backup_id);
    if (t->install_script && *t->install_script && !s->installed)
        return WD_ERR(WD_ERR_STATE, "server is not installed yet: run install first");
    cancel_timer(s, &s->restart_timer);
    s->intent = INTENT_NONE;
    set_state(s, ST(STARTING), reason, 0, 0);
    system_line(s, "[Warden] starting server");
    wd_status st = spawn_proc(s, false);
    if (st != WD_OK) {
        snprintf(s->last_error, sizeof s->last_error, "%s", wd_err_msg());
        system_line(s, "[Warden] start failed: %s", s->last_error);
        set_state(s, ST(OFFLINE), s->last_error, 0, 0);
        return WD_ERR(st, "%s", s->last_error);
    }
    if (t->done_pattern == NULL || *t->done_pattern == '\0')
        set_state(s, ST(RUNNING), "no done pattern: running once spawned", 0, 0);
    return WD_OK;
}

static void do_stop(server *s)
{
    const Warden__V1__Template *t = s->spec->template_;
    set_state(s, ST(STOPPING), "stop requested", 0, 0);
    const char *cmd = t->stop_command;
    if (cmd == NULL || *cmd == '\0' || strcmp(cmd, "^C") == 0) {
        signal_proc(s, SIGINT, false);
    } else {
        char line[CONSOLE_MAX_INPUT + 2];
        int n = snprintf(line, sizeof line, "%s\n", cmd);
        if (wd_shim_send_input(s->p.fd, line, (size_t)n, SEND_TIMEOUT_MS) != WD_OK)
            signal_proc(s, SIGTERM, false);
    }
    uint32_t grace = t->stop_grace_seconds ? t->stop_grace_seconds : 30;
    cancel_timer(s, &s->grace_timer);
    wd_actor_timer(s->self, (int64_t)grace * 1000, 0, T_GRACE, &s->grace_timer);
}

static void do_kill(server *s)
{
    signal_proc(s, SIGKILL, true);
    cancel_timer(s, &s->grace_timer);
}

/* ---- exit handling ----------------------------------------------------- */

static bool crash_budget_left(server *s)
{
    const Warden__V1__RestartPolicy *rp = s->spec->restart;
    uint32_t max = rp && rp->max_restarts ? rp->max_restarts : 5;
    uint32_t window = rp && rp->window_seconds ? rp->window_seconds : 300;
    int64_t now = wd_mono_ms();
    int k = 0;
    for (int i = 0; i < s->nrestarts; i++)
        if (now - s->restarts_at[i] < (int64_t)window * 1000)
            s->restarts_at[k++] = s->restarts_at[i];
    s->nrestarts = k;
    return (uint32_t)k < max && k < 32;
}

static void finish_delete(server *s);

static void on_exit_status(server *s, int code, int sig)
{
    /* bubblewrap's init reports a signalled game as exit code 128 + signal. */
    if (s->ag->isolate && sig == 0 && code > 128 && code < 128 + 65) {
        sig = code - 128;
        code = -1;
    }
    bool was_install = s->p.install;
    close_proc(s);
    cancel_timer(s, &s->grace_timer);
    cancel_timer(s, &s->kill_timer);
    char reason[128];
    if (sig)
        snprintf(reason, sizeof reason, "killed by signal %d", sig);
    else
        snprintf(reason, sizeof reason, "exited with code %d", code);

    if (was_install) {
        bool ok = sig == 0 && code == 0;
        if (ok)
            s->installed = true;
        else
            snprintf(s->last_error, sizeof s->last_error, "install failed: %s", reason);
        system_line(s, "[Warden] install %s (%s)", ok ? "finished" : "failed", reason);
        set_state(s, ST(OFFLINE), ok ? "install finished" : s->last_error, code, sig);
        if (s->intent == INTENT_DELETE)
            finish_delete(s);
        return;
    }
    intent_t intent = s->intent;
    s->intent = INTENT_NONE;
    if (intent == INTENT_DELETE) {
        set_state(s, ST(OFFLINE), reason, code, sig);
        finish_delete(s);
        return;
    }
    if (intent == INTENT_STOP || intent == INTENT_KILL || intent == INTENT_RESTART) {
        system_line(s, "[Warden] server stopped (%s)", reason);
        set_state(s, ST(OFFLINE), intent == INTENT_KILL ? "killed" : reason, code, sig);
        if (intent == INTENT_RESTART)
            do_start(s, "restart");
        return;
    }
    /* Nobody asked for this exit. */
    const Warden__V1__RestartPolicy *rp = s->spec->restart;
    int mode = rp ? (int)rp->mode : 0;
    bool crashed = sig != 0 || code != 0;
    if (!crashed && mode != WARDEN__V1__RESTART_POLICY__MODE__ALWAYS) {
        system_line(s, "[Warden] server exited by itself (%s)", reason);
        set_state(s, ST(OFFLINE), reason, code, sig);
        return;
    }
    snprintf(s->last_error, sizeof s->last_error, "unexpected exit: %s", reason);
    system_line(s, "[Warden] server crashed (%s)", reason);
    set_state(s, ST(CRASHED), s->last_error, code, sig);
    if (mode == WARDEN__V1__RESTART_POLICY__MODE__NEVER)
        return;
    if (!crash_budget_left(s)) {
        uint32_t window = rp && rp->window_seconds ? rp->window_seconds : 300;
        snprintf(s->last_error, sizeof s->last_error,
                 "crash loop: %d restarts within %u s; not restarting (start it by hand)",
                 s->nrestarts, window);
        system_line(s, "[Warden] %s", s->last_error);
        set_state(s, ST(CRASHED), s->last_error, code, sig);
        return;
    }
    uint32_t init = rp && rp->backoff_initial_ms ? rp->backoff_initial_ms : 1000;
    uint32_t maxb = rp && rp->backoff_max_ms ? rp->backoff_max_ms : 60000;
    s->backoff_ms = s->backoff_ms ? s->backoff_ms * 2 : init;
    if (s->backoff_ms > maxb)
        s->backoff_ms = maxb;
    system_line(s, "[Warden] restarting in %u ms", s->backoff_ms);
    wd_actor_timer(s->self, s->backoff_ms, 0, T_RESTART, &s->restart_timer);
}

/* Drains the shim socket: lines, exit. Bounded per call so one chatty game
 * cannot hold a worker: the watch is re-armed and fires again at once. */
static void on_shim_io(server *s)
{
    if (!s->p.active)
        return;
    for (int round = 0; round < 64; round++) {
        wd_status st = wd_shim_reader_feed(s->p.rd, s->p.fd);
        wd_shim_frame f;
        wd_status fs;
        while ((fs = wd_shim_reader_next(s->p.rd, &f)) == WD_OK) {
            if (f.type == WD_SHIM_HELLO) {
                wd_shim_hello h;
                if (wd_shim_decode_hello(&f, &h) == WD_OK) {
                    s->p.shim_pid = h.shim_pid;
                    s->p.child_pid = h.child_pid;
                }
            } else if (f.type == WD_SHIM_LINES) {
                on_lines(s, &f);
            } else if (f.type == WD_SHIM_EXIT) {
                wd_shim_exit ex;
                if (wd_shim_decode_exit(&f, &ex) == WD_OK) {
                    wd_shim_send_exit_ack(s->p.fd, SEND_TIMEOUT_MS);
                    on_exit_status(s, ex.exit_code, ex.signal);
                    return;
                }
            }
        }
        if (fs == WD_ERR_PROTO)
            st = WD_ERR_PROTO;
        if (st == WD_OK || st == WD_ERR_FULL)
            continue;
        if (st == WD_ERR_AGAIN)
            break;
        /* The shim went away without an EXIT (killed), or spoke garbage. */
        wd_shim_exit ex = {.exit_code = -1, .signal = SIGKILL};
        if (wd_shim_read_exit_file(s->p.run_dir, &ex) != WD_OK)
            wd_warn("server %s: lost warden-shim without an exit status (%s)", s->id,
                    wd_status_str(st));
        on_exit_status(s, ex.exit_code, ex.signal);
        return;
    }
    if (s->p.active && s->p.watch)
        wd_actor_rearm_fd(s->ag->rt, s->p.watch);
}

/* ---- stats ------------------------------------------------------------- */

static void publish_stats(server *s)
{
    if (!s->p.active)
        return;
    Warden__V1__ServerStats st = WARDEN__V1__SERVER_STATS__INIT;
    st.server_id = s->id;
    st.state = s->state;
    wd_tree_usage u;
    int64_t now = wd_mono_ms();
    if (wd_proc_tree_usage(s->p.child_pid, &u) == WD_OK) {
        if (s->prev_ticks_ms && now > s->prev_ticks_ms && u.cpu_ticks >= s->prev_ticks)
            st.cpu_percent = 100.0 * (double)(u.cpu_ticks - s->prev_ticks) /
                             (double)wd_proc_hz() / ((double)(now - s->prev_ticks_ms) / 1000.0);
        s->prev_ticks = u.cpu_ticks;
        s->prev_ticks_ms = now;
        st.memory_bytes = u.rss_bytes;
    }
    if (s->spec->limits)
        st.memory_limit_bytes = s->spec->limits->memory_bytes;
    /* The directory walk is the costly part: refresh it every 10 s. */
    if (now - s->disk_at_ms >= 10000) {
        uint64_t b = 0;
        if (wd_dir_usage(s->dir, &b) == WD_OK)
            s->disk_bytes = b;
        s->disk_at_ms = now;
    }
    st.disk_bytes = s->disk_bytes;
    st.uptime_ms = (uint64_t)(wd_unix_ms() - s->p.started_unix_ms);
    st.time_unix_ms = wd_unix_ms();
    char subj[WD_SUBJECT_MAX];
    if (wd_subj_server_event(subj, sizeof subj, s->id, "stats") == WD_OK)
        wd_bus_publish(s->ag->bus, subj, &st.base, NULL);
}

/* ---- requests ---------------------------------------------------------- */

static void fill_info(server *s, Warden__V1__ServerInfo *info)
{
    warden__v1__server_info__init(info);
    info->id = s->id;
    info->name = s->spec->name ? s->spec->name : (char *)"";
    info->node_id = s->ag->node_id;
    info->state = s->state;
    info->installed = s->installed;
    info->pid = s->p.active && !s->p.install ? (uint32_t)s->p.child_pid : 0;
    info->uptime_ms =
        s->p.active && !s->p.install ? (uint64_t)(wd_unix_ms() - s->p.started_unix_ms) : 0;
    info->restarts = (uint32_t)s->nrestarts;
    info->template_id =
        s->spec->template_ && s->spec->template_->id ? s->spec->template_->id : (char *)"";
    info->last_error = s->last_error;
    info->console_seq = s->last_seq;
    info->console_dropped = s->dropped_total;
    info->isolated = s->ag->isolate;
    info->cgroup_limits = s->ag->cgroups;
}

/* Validates a spec fully: template, variables. Records the error. */
static wd_status validate_spec(server *s, const Warden__V1__ServerSpec *spec)
{
    if (spec->template_ == NULL)
        return WD_ERR(WD_ERR_INVALID, "spec.template_ is required");
    wd_status st = wd_template_validate(spec->template_);
    if (st != WD_OK)
        return st;
    wd_kv *vars = NULL;
    size_t nv = 0;
    if ((st = resolve_vars(s, spec, s->ag->isolate, &vars, &nv)) != WD_OK)
        return st;
    int argc = 0;
    char **argv = NULL;
    st = wd_template_build_argv(spec->template_->startup, vars, nv, &argv, &argc);
    if (st == WD_OK && argc == 0)
        st = WD_ERR(WD_ERR_INVALID, "the startup command is empty");
    wd_argv_free(argv);
    wd_kv_free(vars, nv);
    if (spec->name && strlen(spec->name) > 200)
        return WD_ERR(WD_ERR_INVALID, "name is longer than 200 bytes");
    return st;
}

static void handle_sync(server *s, natsMsg *m)
{
    Warden__V1__SyncRequest *req =
        (Warden__V1__SyncRequest *)wd_bus_decode(&warden__v1__sync_request__descriptor, m);
    bool created = !s->configured;
    wd_status st;
    if (req == NULL) {
        st = WD_ERR(WD_ERR_INVALID, "sync: body is not a valid warden.v1.SyncRequest");
    } else if (req->spec == NULL || req->spec->id == NULL || strcmp(req->spec->id, s->id) != 0) {
        st = WD_ERR(WD_ERR_INVALID, "sync: spec.id must equal the server id in the subject");
    } else {
        st = validate_spec(s, req->spec);
    }
    if (st != WD_OK) {
        reply_ack(s, m, st, wd_err_msg());
        if (req)
            protobuf_c_message_free_unpacked(&req->base, NULL);
        if (created) {
            /* A create that failed leaves nothing behind. */
            wd_agent_unregister(s->ag, s->id);
            wd_actor_stop(s->self);
        }
        return;
    }
    /* Take the spec out of the request. */
    Warden__V1__ServerSpec *old = s->spec;
    s->spec = req->spec;
    req->spec = NULL;
    protobuf_c_message_free_unpacked(&req->base, NULL);
    if ((st = wd_mkdir_p(s->meta_dir, 0700)) == WD_OK)
        st = save_spec(s);
    if (st == WD_OK && created)
        st = prepare_dir(s);
    if (st != WD_OK) {
        char msg[300];
        snprintf(msg, sizeof msg, "cannot persist the server: %s", wd_err_msg());
        protobuf_c_message_free_unpacked(&s->spec->base, NULL);
        s->spec = old;
        reply_ack(s, m, st, msg);
        if (created) {
            wd_remove_tree(s->meta_dir);
            wd_agent_unregister(s->ag, s->id);
            wd_actor_stop(s->self);
        }
        return;
    }
    if (old)
        protobuf_c_message_free_unpacked(&old->base, NULL);
    s->configured = true;
    kvStore *kv = atomic_load(&s->ag->kv_servers);
    if (kv)
        kvStore_PutString(NULL, kv, s->id, s->ag->node_id);
    if (created) {
        set_state(s, ST(OFFLINE), "created", 0, 0);
        wd_info("server %s created from template %s", s->id, s->spec->template_->id);
    }

    Warden__V1__Status status;
    wd_status_fill(&status, WD_OK, created ? "created" : "updated");
    Warden__V1__ServerInfo info;
    fill_info(s, &info);
    Warden__V1__SyncReply rep = WARDEN__V1__SYNC_REPLY__INIT;
    rep.status = &status;
    rep.created = created;
    rep.info = &info;
    wd_bus_respond(s->ag->bus, m, &rep.base);
}

static wd_status handle_install(server *s, natsMsg *m)
{
    Warden__V1__InstallRequest *req =
        (Warden__V1__InstallRequest *)wd_bus_decode(&warden__v1__install_request__descriptor, m);
    if (req == NULL)
        return WD_ERR(WD_ERR_INVALID, "install: body is not a valid warden.v1.InstallRequest");
    bool reinstall = req->reinstall;
    protobuf_c_message_free_unpacked(&req->base, NULL);
    if (s->state != ST(OFFLINE) && s->state != ST(CRASHED))
        return WD_ERR(WD_ERR_STATE, "cannot install while the server is %s; stop it first",
                      state_name(s->state));
    wd_status busy;
    if (job_busy(s, &busy))
        return busy;
    cancel_timer(s, &s->restart_timer);
    const Warden__V1__Template *t = s->spec->template_;
    if (t->install_script == NULL || *t->install_script == '\0') {
        s->installed = true;
        save_state(s);
        system_line(s, "[Warden] template has no install script: nothing to install");
        return WD_OK;
    }
    if (s->installed && !reinstall)
        system_line(s, "[Warden] reinstalling");
    s->installed = false;
    set_state(s, ST(INSTALLING), "install requested", 0, 0);
    system_line(s, "[Warden] running the install script");
    wd_status st = spawn_proc(s, true);
    if (st != WD_OK) {
        snprintf(s->last_error, sizeof s->last_error, "install failed to start: %s", wd_err_msg());
        set_state(s, ST(OFFLINE), s->last_error, 0, 0);
        return WD_ERR(st, "%s", s->last_error);
    }
    return WD_OK;
}

static wd_status handle_power(server *s, natsMsg *m)
{
    Warden__V1__PowerRequest *req =
        (Warden__V1__PowerRequest *)wd_bus_decode(&warden__v1__power_request__descriptor, m);
    if (req == NULL)
        return WD_ERR(WD_ERR_INVALID, "power: body is not a valid warden.v1.PowerRequest");
    int action = req->action;
    protobuf_c_message_free_unpacked(&req->base, NULL);
    Warden__V1__ServerState cur = s->state;
    switch (action) {
    case WARDEN__V1__POWER_REQUEST__ACTION__START:
        if (cur != ST(OFFLINE) && cur != ST(CRASHED))
            return WD_ERR(WD_ERR_STATE, "cannot start: server is %s", state_name(cur));
        s->nrestarts = 0;
        s->backoff_ms = 0;
        return do_start(s, "start requested");
    case WARDEN__V1__POWER_REQUEST__ACTION__STOP:
        if (cur == ST(STOPPING))
            return WD_OK; /* already on its way */
        if (cur == ST(CRASHED) && s->restart_timer) {
            cancel_timer(s, &s->restart_timer);
            set_state(s, ST(OFFLINE), "stop requested: pending restart cancelled", 0, 0);
            return WD_OK;
        }
        if (cur != ST(STARTING) && cur != ST(RUNNING))
            return WD_ERR(WD_ERR_STATE, "cannot stop: server is %s", state_name(cur));
        s->intent = INTENT_STOP;
        do_stop(s);
        return WD_OK;
    case WARDEN__V1__POWER_REQUEST__ACTION__RESTART:
        if (cur == ST(OFFLINE) || cur == ST(CRASHED)) {
            s->nrestarts = 0;
            return do_start(s, "restart requested");
        }
        if (cur != ST(STARTING) && cur != ST(RUNNING))
            return WD_ERR(WD_ERR_STATE, "cannot restart: server is %s", state_name(cur));
        s->intent = INTENT_RESTART;
        do_stop(s);
        return WD_OK;
    case WARDEN__V1__POWER_REQUEST__ACTION__KILL:
        if (!s->p.active || s->p.install) {
            if (cur == ST(CRASHED) && s->restart_timer) {
                cancel_timer(s, &s->restart_timer);
                set_state(s, ST(OFFLINE), "kill requested: pending restart cancelled", 0, 0);
                return WD_OK;
            }
            return WD_ERR(WD_ERR_STATE, "cannot kill: server is %s", state_name(cur));
        }
        s->intent = INTENT_KILL;
        if (cur != ST(STOPPING))
            set_state(s, ST(STOPPING), "kill requested", 0, 0);
        do_kill(s);
        return WD_OK;
    default:
        return WD_ERR(WD_ERR_INVALID, "power: action must be start, stop, restart or kill");
    }
}

static wd_status handle_console_in(server *s, natsMsg *m)
{
    Warden__V1__ConsoleInput *in =
        (Warden__V1__ConsoleInput *)wd_bus_decode(&warden__v1__console_input__descriptor, m);
    if (in == NULL)
        return WD_ERR(WD_ERR_INVALID, "console.in: body is not a valid warden.v1.ConsoleInput");
    wd_status st = WD_OK;
    size_t len = in->line ? strlen(in->line) : 0;
    if (len > CONSOLE_MAX_INPUT) {
        st = WD_ERR(WD_ERR_INVALID, "console line is longer than %d bytes", CONSOLE_MAX_INPUT);
    } else if (in->line && strpbrk(in->line, "\r\n") != NULL) {
        st = WD_ERR(WD_ERR_INVALID, "console line must not contain a line break: send one "
                    "command per request");
    } else if (!s->p.active || s->p.install || !proc_alive_state(s->state)) {
        st = WD_ERR(WD_ERR_STATE, "server is %s: the console takes commands only while it runs",
                    state_name(s->state));
    } else {
        char buf[CONSOLE_MAX_INPUT + 2];
        if (len)
            memcpy(buf, in->line, len);
        buf[len] = '\n';
        st = wd_shim_send_input(s->p.fd, buf, len + 1, SEND_TIMEOUT_MS);
    }
    protobuf_c_message_free_unpacked(&in->base, NULL);
    return st;
}

/* ---- backups ----------------------------------------------------------- */

/* Backups live in <data>/backups/<server>/ (docs/backups.md). Create and
 * restore are blocking disk work: they run on the agent's job queue, one
 * per server at a time, and answer their request from there; this actor
 * only checks the request and the server's state, and hears back through
 * T_JOB_DONE. List and delete are a directory read and two unlinks: done
 * here. */

static void backup_dir_of(server *s, char *out, size_t n)
{
    snprintf(out, n, "%s/%s", s->ag->backups_dir, s->id);
}

static void job_unref(backup_job *j)
{
    if (j == NULL || atomic_fetch_sub(&j->refs, 1) != 1)
        return;
    if (j->m)
        natsMsg_Destroy(j->m);
    wd_actor_unref(&j->actor);
    for (size_t i = 0; i < j->n_ignore; i++)
        free(j->ignore[i]);
    free(j->ignore);
    free(j);
}

static const char *job_what(const backup_job *j)
{
    return j->kind == JOB_CREATE ? "backup" : "restore";
}

/* Runs on a job-queue thread; touches the job only, never the server. */
static void run_job(void *arg)
{
    backup_job *j = arg;
    wd_log_set_trace(j->trace[0] ? j->trace : NULL);
    wd_status st;
    if (atomic_load(&j->ag->stopping)) {
        st = WD_ERR(WD_ERR_UNAVAILABLE, "the agent is shutting down; try again");
    } else if (atomic_load(&j->cancel)) {
        st = WD_ERR(WD_ERR_CLOSED, "cancelled: the server is being deleted");
    } else if (j->kind == JOB_CREATE) {
        wd_backup_create_cfg c = {.server_dir = j->server_dir,
                                  .backup_dir = j->backup_dir,
                                  .backup_id = j->backup_id,
                                  .ignore = j->ignore,
                                  .n_ignore = j->n_ignore,
                                  .cancel = &j->cancel,
                                  .cancel2 = &j->ag->stopping};
        int64_t t0 = wd_mono_ms();
        st = wd_backup_create(&c, &j->size, j->sha256);
        if (st == WD_OK)
            wd_info("server %s: backup %s created: %llu bytes in %lld ms, sha256 %s",
                    j->server_id, j->backup_id, (unsigned long long)j->size,
                    (long long)(wd_mono_ms() - t0), j->sha256);
    } else {
        wd_backup_restore_cfg c = {.server_dir = j->server_dir,
                                   .backup_dir = j->backup_dir,
                                   .backup_id = j->backup_id,
                                   .truncate = j->truncate,
                                   .uid = j->uid,
                                   .gid = j->gid,
                                   .max_bytes = j->max_bytes};
        int64_t t0 = wd_mono_ms();
        st = wd_backup_restore(&c, &j->skipped);
        if (st == WD_OK)
            wd_info("server %s: backup %s restored in %lld ms%s", j->server_id, j->backup_id,
                    (long long)(wd_mono_ms() - t0), j->truncate ? " (after emptying the dir)" : "");
    }
    j->st = st;
    if (st != WD_OK) {
        snprintf(j->msg, sizeof j->msg, "%s", wd_err_msg());
        wd_warn("server %s: %s of %s failed: %s", j->server_id, job_what(j), j->backup_id,
                j->msg);
    } else if (j->kind == JOB_RESTORE && j->skipped) {
        snprintf(j->msg, sizeof j->msg, "restored; %zu entries of other types than file, "
                 "directory and symlink were left out", j->skipped);
    }
    /* Done before the reply: a client that has it may send the next request
     * at once and must not find the server busy. */
    wd_actor *a = wd_actor_ref(j->actor);
    atomic_store(&j->done, true);
    Warden__V1__Status status;
    wd_status_fill(&status, st, j->msg[0] ? j->msg : NULL);
    if (j->kind == JOB_CREATE) {
        Warden__V1__BackupCreateReply rep = WARDEN__V1__BACKUP_CREATE_REPLY__INIT;
        rep.status = &status;
        if (st == WD_OK) {
            rep.size_bytes = j->size;
            rep.sha256 = j->sha256;
        }
        wd_bus_respond(j->ag->bus, j->m, &rep.base);
    } else {
        Warden__V1__Ack rep = WARDEN__V1__ACK__INIT;
        rep.status = &status;
        wd_bus_respond(j->ag->bus, j->m, &rep.base);
    }
    wd_actor_timer(a, 0, 0, T_JOB_DONE, NULL);
    wd_actor_unref(&a);
    wd_log_set_trace(NULL);
    job_unref(j);
}

/* Forgets the job once it is done; tells the console how it went. */
static void reap_job(server *s)
{
    backup_job *j = s->job;
    if (j == NULL || !atomic_load(&j->done))
        return;
    s->job = NULL;
    if (j->st == WD_OK && j->kind == JOB_CREATE)
        system_line(s, "[Warden] backup %s created (%llu bytes)", j->backup_id,
                    (unsigned long long)j->size);
    else if (j->st == WD_OK)
        system_line(s, "[Warden] backup %s restored", j->backup_id);
    else if (j->st != WD_ERR_CLOSED)
        system_line(s, "[Warden] %s of %s failed: %s", job_what(j), j->backup_id, j->msg);
    job_unref(j);
}

static bool restore_running(server *s)
{
    reap_job(s);
    return s->job && s->job->kind == JOB_RESTORE;
}

static bool job_busy(server *s, wd_status *st)
{
    reap_job(s);
    if (s->job == NULL)
        return false;
    *st = WD_ERR(WD_ERR_UNAVAILABLE, "server %s is busy: a %s of backup %s is running; try again "
                 "when it has finished", s->id, job_what(s->job), s->job->backup_id);
    return true;
}

static backup_job *job_new(server *s, job_kind kind, const char *backup_id)
{
    backup_job *j = calloc(1, sizeof *j);
    if (j == NULL)
        return NULL;
    atomic_init(&j->refs, 2); /* the actor's and the worker's */
    atomic_init(&j->done, false);
    atomic_init(&j->cancel, false);
    j->kind = kind;
    j->ag = s->ag;
    j->actor = wd_actor_ref(s->self);
    snprintf(j->server_id, sizeof j->server_id, "%s", s->id);
    snprintf(j->backup_id, sizeof j->backup_id, "%s", backup_id);
    snprintf(j->server_dir, sizeof j->server_dir, "%s", s->dir);
    backup_dir_of(s, j->backup_dir, sizeof j->backup_dir);
    j->uid = s->ag->drop_privs ? s->ag->game_uid : -1;
    j->gid = s->ag->drop_privs ? s->ag->game_gid : -1;
    const char *trace = wd_log_trace();
    snprintf(j->trace, sizeof j->trace, "%s", trace ? trace : "");
    return j;
}

/* Hands m to the job and the job to the queue. */
static wd_status post_job(server *s, backup_job *j, natsMsg *m)
{
    j->m = m;
    if (wd_workq_post(s->ag->jobs, run_job, j) != WD_OK) {
        j->m = NULL;
        atomic_store(&j->refs, 1);
        job_unref(j);
        return WD_ERR(WD_ERR_FULL, "too many backup jobs are queued on this node; try again");
    }
    s->job = j;
    return WD_OK;
}

static wd_status backup_id_arg(const char *op, const char *given, char id[37])
{
    if (!wd_backup_id_norm(given, id))
        return WD_ERR(WD_ERR_INVALID, "%s: backup_id must be a UUID (got '%.64s')", op,
                      given ? given : "");
    return WD_OK;
}

static bool backup_exists(server *s, const char *id)
{
    char dir[1100];
    backup_dir_of(s, dir, sizeof dir);
    return wd_backup_exists(dir, id);
}

/* Returns true if the job took m (it answers); else *st is the answer. */
static bool backup_create(server *s, natsMsg *m, wd_status *st)
{
    Warden__V1__BackupCreateRequest *req = (Warden__V1__BackupCreateRequest *)wd_bus_decode(
        &warden__v1__backup_create_request__descriptor, m);
    if (req == NULL) {
        *st = WD_ERR(WD_ERR_INVALID,
                     "backup.create: body is not a valid warden.v1.BackupCreateRequest");
        return false;
    }
    char id[37];
    backup_job *j = NULL;
    bool taken = false;
    if ((*st = backup_id_arg("backup.create", req->backup_id, id)) != WD_OK)
        goto out;
    if (req->n_ignore > WD_BACKUP_MAX_IGNORE) {
        *st = WD_ERR(WD_ERR_INVALID, "backup.create: at most %d ignore patterns",
                     WD_BACKUP_MAX_IGNORE);
        goto out;
    }
    for (size_t i = 0; i < req->n_ignore; i++) {
        if (strlen(req->ignore[i]) > WD_BACKUP_MAX_PATTERN) {
            *st = WD_ERR(WD_ERR_INVALID, "backup.create: ignore patterns are at most %d bytes",
                         WD_BACKUP_MAX_PATTERN);
            goto out;
        }
    }
    if (job_busy(s, st))
        goto out;
    if (backup_exists(s, id)) {
        *st = WD_ERR(WD_ERR_EXISTS, "backup %s exists already", id);
        goto out;
    }
    if ((j = job_new(s, JOB_CREATE, id)) == NULL ||
        (req->n_ignore && (j->ignore = calloc(req->n_ignore, sizeof *j->ignore)) == NULL)) {
        *st = WD_ERR(WD_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (; j->n_ignore < req->n_ignore; j->n_ignore++) {
        if ((j->ignore[j->n_ignore] = strdup(req->ignore[j->n_ignore])) == NULL) {
            *st = WD_ERR(WD_ERR_NOMEM, "out of memory");
            goto out;
        }
    }
    if ((*st = post_job(s, j, m)) == WD_OK) {
        taken = true;
        wd_info("server %s: backup %s started", s->id, id);
    }
    j = NULL; /* post_job freed it on failure */
out:
    if (j) {
        atomic_store(&j->refs, 1);
        job_unref(j);
    }
    protobuf_c_message_free_unpacked(&req->base, NULL);
    return taken;
}

static bool backup_restore(server *s, natsMsg *m, wd_status *st)
{
    Warden__V1__BackupRestoreRequest *req = (Warden__V1__BackupRestoreRequest *)wd_bus_decode(
        &warden__v1__backup_restore_request__descriptor, m);
    if (req == NULL) {
        *st = WD_ERR(WD_ERR_INVALID,
                     "backup.restore: body is not a valid warden.v1.BackupRestoreRequest");
        return false;
    }
    char id[37];
    bool truncate = req->truncate;
    *st = backup_id_arg("backup.restore", req->backup_id, id);
    protobuf_c_message_free_unpacked(&req->base, NULL);
    if (*st != WD_OK || job_busy(s, st))
        return false;
    if (s->p.active || (s->state != ST(OFFLINE) && s->state != ST(CRASHED))) {
        *st = WD_ERR(WD_ERR_STATE, "cannot restore while the server is %s: stop it first",
                     state_name(s->state));
        return false;
    }
    if (!backup_exists(s, id)) {
        *st = WD_ERR(WD_ERR_NOT_FOUND, "no backup %s for server %s", id, s->id);
        return false;
    }
    if ((*st = prepare_dir(s)) != WD_OK)
        return false;
    backup_job *j = job_new(s, JOB_RESTORE, id);
    if (j == NULL) {
        *st = WD_ERR(WD_ERR_NOMEM, "out of memory");
        return false;
    }
    j->truncate = truncate;
    j->max_bytes = s->spec->limits ? s->spec->limits->disk_bytes : 0;
    if ((*st = post_job(s, j, m)) != WD_OK)
        return false;
    /* An automatic restart must not start the game on half its files. */
    if (s->restart_timer) {
        cancel_timer(s, &s->restart_timer);
        set_state(s, ST(OFFLINE), "restore requested: pending restart cancelled", 0, 0);
    }
    system_line(s, "[Warden] restoring backup %s%s", id,
                truncate ? " (current files are deleted first)" : "");
    return true;
}

static wd_status backup_delete(server *s, natsMsg *m)
{
    Warden__V1__BackupDeleteRequest *req = (Warden__V1__BackupDeleteRequest *)wd_bus_decode(
        &warden__v1__backup_delete_request__descriptor, m);
    if (req == NULL)
        return WD_ERR(WD_ERR_INVALID,
                      "backup.delete: body is not a valid warden.v1.BackupDeleteRequest");
    char id[37], dir[1100];
    wd_status st = backup_id_arg("backup.delete", req->backup_id, id);
    protobuf_c_message_free_unpacked(&req->base, NULL);
    if (st != WD_OK)
        return st;
    reap_job(s);
    if (s->job && strcmp(s->job->backup_id, id) == 0)
        return WD_ERR(WD_ERR_UNAVAILABLE, "backup %s is busy: a %s of it is running; try again "
                      "when it has finished", id, job_what(s->job));
    backup_dir_of(s, dir, sizeof dir);
    if ((st = wd_backup_delete(dir, id)) == WD_OK)
        wd_info("server %s: backup %s deleted", s->id, id);
    return st;
}

/* Answers m itself. */
static void backup_list(server *s, natsMsg *m)
{
    Warden__V1__BackupListRequest *req = (Warden__V1__BackupListRequest *)wd_bus_decode(
        &warden__v1__backup_list_request__descriptor, m);
    if (req == NULL) {
        reply_ack(s, m, WD_ERR_INVALID,
                  "backup.list: body is not a valid warden.v1.BackupListRequest");
        return;
    }
    protobuf_c_message_free_unpacked(&req->base, NULL);
    char dir[1100];
    backup_dir_of(s, dir, sizeof dir);
    wd_backup_info *v = NULL;
    size_t n = 0;
    wd_status st = wd_backup_list(dir, &v, &n);
    Warden__V1__BackupInfo *infos = n ? calloc(n, sizeof *infos) : NULL;
    Warden__V1__BackupInfo **ptrs = n ? calloc(n, sizeof *ptrs) : NULL;
    if (st == WD_OK && n && (infos == NULL || ptrs == NULL))
        st = WD_ERR(WD_ERR_NOMEM, "out of memory");
    if (st != WD_OK) {
        reply_ack(s, m, st, wd_err_msg());
    } else {
        for (size_t i = 0; i < n; i++) {
            warden__v1__backup_info__init(&infos[i]);
            infos[i].backup_id = v[i].id;
            infos[i].size_bytes = v[i].size;
            infos[i].sha256 = v[i].sha256;
            infos[i].created_unix = v[i].created_unix;
            ptrs[i] = &infos[i];
        }
        Warden__V1__Status status;
        wd_status_fill(&status, WD_OK, "");
        Warden__V1__BackupListReply rep = WARDEN__V1__BACKUP_LIST_REPLY__INIT;
        rep.status = &status;
        rep.n_backups = n;
        rep.backups = ptrs;
        wd_bus_respond(s->ag->bus, m, &rep.base);
    }
    free(ptrs);
    free(infos);
    free(v);
}

/* backup.<op>. Returns true if m is no longer the caller's (answered, or
 * taken by a job); else *st is to be answered. */
static bool handle_backup(server *s, natsMsg *m, const char *op, wd_status *st)
{
    if (strcmp(op, "create") == 0)
        return backup_create(s, m, st);
    if (strcmp(op, "restore") == 0)
        return backup_restore(s, m, st);
    if (strcmp(op, "delete") == 0) {
        *st = backup_delete(s, m);
        return false;
    }
    if (strcmp(op, "list") == 0) {
        backup_list(s, m);
        natsMsg_Destroy(m);
        return true;
    }
    *st = WD_ERR(WD_ERR_UNSUPPORTED, "operation 'backup.%s' is not supported by this agent "
                 "(create, restore, delete, list)", op);
    return false;
}

static void finish_delete(server *s)
{
    wd_agent *ag = s->ag;
    /* A backup job still reads or writes the dirs: cancel it and finish
     * when it reports back (T_JOB_DONE). */
    reap_job(s);
    if (s->job) {
        atomic_store(&s->job->cancel, true);
        s->delete_after_job = true;
        return;
    }
    s->delete_after_job = false;
    wd_status st = wd_remove_tree(s->dir);
    if (st == WD_OK)
        st = wd_remove_tree(s->meta_dir);
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", ag->run_dir, s->id);
    wd_remove_tree(path);
    /* The server's backups go with it (docs/backups.md). */
    backup_dir_of(s, path, sizeof path);
    if (st == WD_OK)
        st = wd_remove_tree(path);
    snprintf(path, sizeof path, "%s/../install/%s.sh", ag->servers_dir, s->id);
    unlink(path);
    if (ag->cgroups)
        wd_cgroup_remove(s->id);
    kvStore *kv = atomic_load(&ag->kv_servers);
    if (kv)
        kvStore_Delete(kv, s->id);
    /* Out of the registry before the answer: whoever got "deleted" must
     * not find it any more. */
    char msg[512];
    snprintf(msg, sizeof msg, "%s", st == WD_OK ? "deleted" : wd_err_msg());
    wd_agent_unregister(ag, s->id);
    if (s->delete_reply) {
        reply_ack(s, s->delete_reply, st, msg);
        natsMsg_Destroy(s->delete_reply);
        s->delete_reply = NULL;
    }
    wd_info("server %s deleted", s->id);
    wd_actor_stop(s->self);
}

/* Returns true if the reply is deferred (the message is kept). */
static bool handle_delete(server *s, natsMsg *m, wd_status *st)
{
    Warden__V1__DeleteRequest *req =
        (Warden__V1__DeleteRequest *)wd_bus_decode(&warden__v1__delete_request__descriptor, m);
    if (req == NULL) {
        *st = WD_ERR(WD_ERR_INVALID, "delete: body is not a valid warden.v1.DeleteRequest");
        return false;
    }
    bool force = req->force;
    protobuf_c_message_free_unpacked(&req->base, NULL);
    if (s->delete_reply) {
        *st = WD_ERR(WD_ERR_STATE, "a delete is already in progress");
        return false;
    }
    if (!force && job_busy(s, st)) {
        char why[400];
        snprintf(why, sizeof why, "%s", wd_err_msg());
        *st = WD_ERR(*st, "%s; or delete with force (cancels it)", why);
        return false;
    }
    cancel_timer(s, &s->restart_timer);
    if (s->p.active) {
        if (!force) {
            *st = WD_ERR(WD_ERR_STATE, "server is %s: stop it first, or delete with force",
                         state_name(s->state));
            return false;
        }
        s->intent = INTENT_DELETE;
        s->delete_reply = m;
        do_kill(s);
        return true;
    }
    s->delete_reply = m;
    finish_delete(s);
    return true;
}

static void handle_request(server *s, natsMsg *m)
{
    char node[64], sid[64];
    const char *op = NULL;
    wd_log_set_trace(wd_bus_header(m, WD_HDR_TRACE));
    wd_subj_parse_agent(natsMsg_GetSubject(m), node, sizeof node, sid, sizeof sid, &op);
    wd_status st = WD_OK;
    if (strcmp(op, "sync") == 0) {
        handle_sync(s, m);
        goto done;
    }
    if (!s->configured) {
        st = WD_ERR(WD_ERR_NOT_FOUND, "server %s is not configured on this node", s->id);
    } else if (strcmp(op, "power") == 0) {
        st = handle_power(s, m);
        Warden__V1__Status status;
        wd_status_fill(&status, st, st == WD_OK ? "" : wd_err_msg());
        Warden__V1__PowerReply rep = WARDEN__V1__POWER_REPLY__INIT;
        rep.status = &status;
        rep.state = s->state;
        wd_bus_respond(s->ag->bus, m, &rep.base);
        goto done;
    } else if (strcmp(op, "info") == 0) {
        Warden__V1__Status status;
        wd_status_fill(&status, WD_OK, "");
        Warden__V1__ServerInfo info;
        fill_info(s, &info);
        Warden__V1__InfoReply rep = WARDEN__V1__INFO_REPLY__INIT;
        rep.status = &status;
        rep.info = &info;
        wd_bus_respond(s->ag->bus, m, &rep.base);
        goto done;
    } else if (strcmp(op, "console.in") == 0) {
        st = handle_console_in(s, m);
    } else if (strcmp(op, "install") == 0) {
        st = handle_install(s, m);
    } else if (strcmp(op, "delete") == 0) {
        if (handle_delete(s, m, &st)) {
            wd_log_set_trace(NULL);
            return; /* answered when the deletion completes */
        }
    } else if (strncmp(op, "backup.", 7) == 0) {
        if (handle_backup(s, m, op + 7, &st)) {
            wd_log_set_trace(NULL);
            return; /* answered, or the job answers */
        }
    } else {
        st = WD_ERR(WD_ERR_UNSUPPORTED, "operation '%s' is not supported by this agent", op);
    }
    reply_ack(s, m, st, st == WD_OK ? "" : wd_err_msg());
done:
    natsMsg_Destroy(m);
    wd_log_set_trace(NULL);
}

/* ---- boot: re-attach after an agent restart ---------------------------- */

/* The last console sequence number stored in JetStream for this server. */
static bool last_published_seq(server *s, uint64_t *seq)
{
    char subj[WD_SUBJECT_MAX];
    if (s->ag->restricted_bus ||
        wd_subj_server_event(subj, sizeof subj, s->id, "console") != WD_OK)
        return false;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 2000;
    natsMsg *m = NULL;
    jsErrCode jerr = 0;
    /* System notices carry seq 0: look back until a numbered chunk shows up
     * is not possible with GetLastMsg, so they are counted as unknown and we
     * fall back on the persisted value. */
    if (js_GetLastMsg(&m, wd_bus_js(s->ag->bus), WD_STREAM_CONSOLE, subj, &jo, &jerr) != NATS_OK)
        return false;
    Warden__V1__ConsoleChunk *c =
        (Warden__V1__ConsoleChunk *)wd_bus_decode(&warden__v1__console_chunk__descriptor, m);
    bool ok = false;
    if (c && c->first_seq > 0) {
        *seq = c->first_seq + c->n_lines - 1;
        ok = true;
    }
    if (c)
        protobuf_c_message_free_unpacked(&c->base, NULL);
    natsMsg_Destroy(m);
    return ok;
}

static void boot(server *s)
{
    saved_state ss;
    if (!load_state(s, &ss)) {
        set_state(s, ST(OFFLINE), "loaded", 0, 0);
        return;
    }
    s->installed = ss.installed;
    s->last_seq = ss.last_seq;
    s->state = (Warden__V1__ServerState)ss.state;
    atomic_store(&s->ref->state, ss.state);
    bool install = strcmp(ss.proc, "install") == 0;
    if (strcmp(ss.proc, "none") == 0) {
        if (s->state != ST(OFFLINE) && s->state != ST(CRASHED))
            set_state(s, ST(OFFLINE), "agent restarted", 0, 0);
        return;
    }
    snprintf(s->p.run_dir, sizeof s->p.run_dir, "%s/%s/%s", s->ag->run_dir, s->id,
             install ? "install" : "game");
    s->p.install = install;
    s->p.seq_base = ss.seq_base;
    s->p.started_unix_ms = ss.started_unix_ms;
    uint64_t published = 0;
    if (last_published_seq(s, &published) && published > s->last_seq)
        s->last_seq = published;
    uint64_t from = s->last_seq >= s->p.seq_base ? s->last_seq - s->p.seq_base + 1 : 1;
    s->p.fd = -1;
    wd_status st = attach_proc(s, from);
    if (st == WD_OK) {
        wd_info("server %s: re-attached to its running %s, console from #%llu", s->id,
                install ? "install" : "game",
                (unsigned long long)(from + s->p.seq_base));
        system_line(s, "[Warden] agent restarted and re-attached");
        if (s->state == ST(STOPPING)) {
            /* We died mid-stop: the stop command went out already; give the
             * game a fresh grace period, then escalate as usual. */
            s->intent = INTENT_STOP;
            uint32_t grace = s->spec->template_->stop_grace_seconds;
            wd_actor_timer(s->self, (int64_t)(grace ? grace : 30) * 1000, 0, T_GRACE,
                           &s->grace_timer);
        }
        /* Anything buffered (lines, or an EXIT that happened meanwhile). */
        on_shim_io(s);
        return;
    }
    /* No shim: did the game exit while we were away? */
    wd_shim_exit ex;
    s->p.active = true; /* so on_exit_status runs its normal path */
    if (wd_shim_read_exit_file(s->p.run_dir, &ex) == WD_OK) {
        on_exit_status(s, ex.exit_code, ex.signal);
    } else {
        wd_warn("server %s: its game is gone (host restarted?)", s->id);
        on_exit_status(s, -1, SIGKILL);
    }
}

/* ---- the actor --------------------------------------------------------- */

static void server_handler(wd_actor *self, void *state, wd_msg *msg)
{
    server *s = state;
    switch (msg->type) {
    case SRV_REQUEST:
        handle_request(s, msg->data);
        msg->data = NULL;
        break;
    case SRV_BOOT:
        boot(s);
        break;
    case SRV_SHUTDOWN:
        if (s->p.active && !s->p.install && proc_alive_state(s->state) &&
            s->state != ST(STOPPING)) {
            s->intent = INTENT_STOP;
            do_stop(s);
        }
        break;
    case T_SHIM_IO:
        on_shim_io(s);
        break;
    case T_GRACE:
        if (msg->arg != s->grace_timer)
            break;
        s->grace_timer = 0;
        if (s->p.active) {
            system_line(s, "[Warden] stop grace period over: sending SIGTERM");
            signal_proc(s, SIGTERM, false);
            wd_actor_timer(s->self, KILL_WAIT_MS, 0, T_KILL, &s->kill_timer);
        }
        break;
    case T_KILL:
        if (msg->arg != s->kill_timer)
            break;
        s->kill_timer = 0;
        if (s->p.active) {
            system_line(s, "[Warden] still running after SIGTERM: killing it");
            do_kill(s);
        }
        break;
    case T_RESTART:
        if (msg->arg != s->restart_timer)
            break;
        s->restart_timer = 0;
        if (s->state == ST(CRASHED)) {
            s->restarts_at[s->nrestarts++ % 32] = wd_mono_ms();
            do_start(s, "automatic restart after a crash");
        }
        break;
    case T_STATS:
        publish_stats(s);
        break;
    case T_RETRY_STATE:
        flush_pending(s);
        break;
    case T_JOB_DONE:
        reap_job(s);
        if (s->delete_after_job && s->job == NULL && !s->p.active)
            finish_delete(s);
        break;
    case WD_MSG_STOP:
        /* Agent shutdown or deletion: the game keeps running under its
         * shim; we only let go of the socket. */
        flush_pending(s);
        close_proc(s);
        cancel_timer(s, &s->grace_timer);
        cancel_timer(s, &s->kill_timer);
        cancel_timer(s, &s->restart_timer);
        cancel_timer(s, &s->retry_timer);
        if (s->delete_reply) {
            reply_ack(s, s->delete_reply, WD_ERR_UNAVAILABLE, "agent is shutting down");
            natsMsg_Destroy(s->delete_reply);
            s->delete_reply = NULL;
        }
        break;
    default:
        break;
    }
}

static void free_server(void *p)
{
    server *s = p;
    job_unref(s->job); /* a running job keeps its own reference */
    if (s->spec)
        protobuf_c_message_free_unpacked(&s->spec->base, NULL);
    while (s->pending_head) {
        pending_event *e = s->pending_head;
        s->pending_head = e->next;
        free(e->buf);
        free(e);
    }
    free(s->pack_buf);
    free(s);
}

wd_status wd_server_create(wd_agent *ag, Warden__V1__ServerSpec *spec, wd_server_ref **out)
{
    server *s = calloc(1, sizeof *s);
    wd_server_ref *ref = calloc(1, sizeof *ref);
    if (s == NULL || ref == NULL) {
        free(s);
        free(ref);
        protobuf_c_message_free_unpacked(&spec->base, NULL);
        return WD_ERR(WD_ERR_NOMEM, "out of memory");
    }
    s->ag = ag;
    s->spec = spec;
    s->configured = spec->template_ != NULL;
    s->state = ST(OFFLINE);
    s->p.fd = -1;
    snprintf(s->id, sizeof s->id, "%s", spec->id);
    snprintf(s->dir, sizeof s->dir, "%s/%s", ag->volumes_dir, s->id);
    snprintf(s->meta_dir, sizeof s->meta_dir, "%s/%s", ag->servers_dir, s->id);
    snprintf(ref->id, sizeof ref->id, "%s", s->id);
    atomic_init(&ref->state, ST(OFFLINE));
    s->ref = ref;

    pthread_rwlock_wrlock(&ag->reg_mu);
    for (int i = 0; i < ag->nservers; i++) {
        if (strcmp(ag->servers[i]->id, s->id) == 0) {
            pthread_rwlock_unlock(&ag->reg_mu);
            free(ref);
            free_server(s);
            return WD_ERR_EXISTS;
        }
    }
    if (ag->nservers >= WD_AGENT_MAX_SERVERS) {
        pthread_rwlock_unlock(&ag->reg_mu);
        free(ref);
        free_server(s);
        return WD_ERR(WD_ERR_FULL, "this node holds %d servers already", WD_AGENT_MAX_SERVERS);
    }
    char name[64];
    snprintf(name, sizeof name, "server-%.8s", s->id);
    wd_actor_cfg cfg = wd_actor_cfg_defaults();
    cfg.name = name;
    cfg.handler = server_handler;
    cfg.state = s;
    cfg.free_state = free_server;
    cfg.mailbox_cap = 4096;
    wd_status st = wd_actor_spawn(ag->rt, &cfg, &ref->actor);
    if (st != WD_OK) {
        pthread_rwlock_unlock(&ag->reg_mu);
        free(ref);
        free_server(s);
        return st;
    }
    s->self = ref->actor;
    ag->servers[ag->nservers++] = ref;
    pthread_rwlock_unlock(&ag->reg_mu);
    if (out)
        *out = ref;
    return WD_OK;
}

wd_status wd_server_load_all(wd_agent *ag)
{
    DIR *d = opendir(ag->servers_dir);
    if (d == NULL)
        return WD_ERR(WD_ERR_IO, "open %s: %s", ag->servers_dir, strerror(errno));
    struct dirent *e;
    int loaded = 0;
    while ((e = readdir(d)) != NULL) {
        if (!wd_uuid_valid(e->d_name))
            continue;
        char path[1400];
        snprintf(path, sizeof path, "%s/%s/spec.pb", ag->servers_dir, e->d_name);
        char *buf = NULL;
        size_t len = 0;
        if (wd_read_file(path, 16 * 1024 * 1024, &buf, &len) != WD_OK) {
            wd_warn("skipping server %s: %s", e->d_name, wd_err_msg());
            continue;
        }
        Warden__V1__ServerSpec *spec =
            warden__v1__server_spec__unpack(NULL, len, (const uint8_t *)buf);
        free(buf);
        if (spec == NULL || spec->id == NULL || strcmp(spec->id, e->d_name) != 0 ||
            spec->template_ == NULL) {
            wd_error("skipping server %s: %s is corrupt", e->d_name, path);
            if (spec)
                protobuf_c_message_free_unpacked(&spec->base, NULL);
            continue;
        }
        wd_server_ref *ref = NULL;
        if (wd_server_create(ag, spec, &ref) == WD_OK) {
            wd_actor_send_arg(ref->actor, SRV_BOOT, 0);
            loaded++;
        }
    }
    closedir(d);
    if (loaded)
        wd_info("loaded %d server(s) from %s", loaded, ag->servers_dir);
    return WD_OK;
}
