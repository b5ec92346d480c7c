/* The WebSocket gateway's loop (see gateway.h, gateway_int.h and
 * docs/websocket.md): connections, client events, the inbox, the tick. */
#include "gateway_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "log.h"
#include "subject.h"
#include "util.h"
#include "warden/v1/events.pb-c.h"

/* ------------------------------------------------------------------------ */
/* Frame queues                                                             */
/* ------------------------------------------------------------------------ */

static bool fq_push(fq *q, wd_ws_frame *f, size_t max)
{
    if (q->len == q->cap) {
        if (q->cap >= max)
            return false;
        size_t ncap = q->cap ? q->cap * 2 : 8;
        if (ncap > max)
            ncap = max;
        wd_ws_frame **v = malloc(ncap * sizeof *v);
        if (!v)
            return false;
        for (size_t i = 0; i < q->len; i++)
            v[i] = q->v[(q->head + i) % q->cap];
        free(q->v);
        q->v = v;
        q->cap = ncap;
        q->head = 0;
    }
    q->v[(q->head + q->len) % q->cap] = f;
    q->len++;
    q->bytes += f->len;
    return true;
}

static wd_ws_frame *fq_pop(fq *q)
{
    if (!q->len)
        return NULL;
    wd_ws_frame *f = q->v[q->head];
    q->head = (q->head + 1) % q->cap;
    q->len--;
    q->bytes -= f->len;
    return f;
}

static void fq_clear(fq *q)
{
    wd_ws_frame *f;
    while ((f = fq_pop(q)))
        wd_ws_frame_unref(f);
}

static void fq_free(fq *q)
{
    fq_clear(q);
    free(q->v);
    memset(q, 0, sizeof *q);
}

/* ------------------------------------------------------------------------ */
/* Inbox                                                                    */
/* ------------------------------------------------------------------------ */

static void item_free(inbox_item *it)
{
    if (!it)
        return;
    wd_ws_frame_unref(it->f);
    for (size_t i = 0; i < it->nhist; i++)
        wd_ws_frame_unref(it->hist[i]);
    free(it->hist);
    free(it);
}

/* Any thread. Takes it (freed when refused). Never blocks on the loop. */
void wd_gw_post(wd_gw *gw, inbox_item *it)
{
    pthread_mutex_lock(&gw->mu);
    if (!gw->ctx_alive || gw->in_len >= INBOX_MAX) {
        bool full = gw->ctx_alive;
        pthread_mutex_unlock(&gw->mu);
        if (full) {
            uint64_t n = atomic_fetch_add(&gw->inbox_dropped, 1);
            if (n % 1000 == 0)
                wd_warn("gateway inbox full: dropping: queued=%d dropped=%llu", INBOX_MAX,
                        (unsigned long long)n + 1);
        }
        item_free(it);
        return;
    }
    it->next = NULL;
    if (gw->in_tail)
        gw->in_tail->next = it;
    else
        gw->in_head = it;
    gw->in_tail = it;
    gw->in_len++;
    lws_cancel_service(gw->ctx);
    pthread_mutex_unlock(&gw->mu);
}

void wd_gw_post_frame(wd_gw *gw, uint64_t conn_id, wd_ws_frame *f)
{
    inbox_item *it = calloc(1, sizeof *it);
    if (!it || !f) {
        free(it);
        wd_ws_frame_unref(f);
        return;
    }
    it->kind = IN_CONN_FRAME;
    it->conn_id = conn_id;
    it->f = f;
    wd_gw_post(gw, it);
}

/* ------------------------------------------------------------------------ */
/* Connections: sending and closing (loop thread)                           */
/* ------------------------------------------------------------------------ */

static void conn_close(conn *c, int code, const char *reason, bool drain)
{
    if (c->close_code)
        return;
    c->close_code = code;
    c->drain = drain;
    snprintf(c->close_reason, sizeof c->close_reason, "%s", reason);
    if (!drain) {
        fq_clear(&c->q);
        fq_clear(&c->parked);
    }
    lws_callback_on_writable(c->wsi);
    /* A client that stopped reading never becomes writable: give it two
     * seconds to take the close frame, then drop the TCP connection. */
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND, 2);
}

static void conn_overflow(wd_gw *gw, conn *c)
{
    gw->m.slow_closes++;
    gw->m.dropped_slow += c->q.len + c->parked.len;
    wd_warn("slow client: send queue full, closing: conn=%llu peer=%s queued=%zu "
            "bytes=%zu written=%llu",
            (unsigned long long)c->id, c->peer, c->q.len + c->parked.len,
            c->q.bytes + c->parked.bytes, (unsigned long long)c->written);
    conn_close(c, CLOSE_SLOW, "send queue full: client too slow", false);
}

/* Queues a reference to f (taking the caller's reference). */
static void conn_send(wd_gw *gw, conn *c, wd_ws_frame *f, bool park)
{
    if (!f)
        return;
    if (c->close_code) {
        wd_ws_frame_unref(f);
        return;
    }
    fq *q = park ? &c->parked : &c->q;
    size_t frames = c->q.len + c->parked.len, bytes = c->q.bytes + c->parked.bytes;
    if (frames >= gw->cfg.send_queue_frames || bytes + f->len > gw->cfg.send_queue_bytes ||
        !fq_push(q, f, gw->cfg.send_queue_frames)) {
        wd_ws_frame_unref(f);
        gw->m.dropped_slow++;
        conn_overflow(gw, c);
        return;
    }
    if (!park)
        lws_callback_on_writable(c->wsi);
}

static void send_error(wd_gw *gw, conn *c, const char *code, const char *msg, const char *cause)
{
    gw->m.errors++;
    conn_send(gw, c, wd_ws_event_error(code, msg, cause), false);
}

static conn *conn_find(wd_gw *gw, uint64_t id)
{
    for (conn *c = gw->conns; c; c = c->next)
        if (c->id == id)
            return c;
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Client events (loop thread)                                              */
/* ------------------------------------------------------------------------ */

static bool rate_take(wd_gw *gw, conn *c)
{
    int64_t now = wd_mono_ms();
    c->tokens += (double)(now - c->refill_ms) * gw->cfg.rate_per_second / 1000.0;
    if (c->tokens > gw->cfg.rate_burst)
        c->tokens = gw->cfg.rate_burst;
    c->refill_ms = now;
    if (c->tokens < 1.0)
        return false;
    c->tokens -= 1.0;
    return true;
}

/* True if a revocation covers these claims (user, session, server). */
static bool revocation_covers(const revocation *r, const wd_wstoken_claims *cl)
{
    if (strcmp(r->user, cl->sub) != 0)
        return false;
    if (r->kind == WARDEN__V1__PANEL_EVENT__KIND__SESSION_REVOKED)
        return !r->sid[0] || strcmp(r->sid, cl->sid) == 0;
    return !r->server[0] || strcmp(r->server, cl->srv) == 0;
}

/* A token issued (iat) before a revocation that covers it is refused. */
static bool token_revoked(wd_gw *gw, const wd_wstoken_claims *cl)
{
    int64_t now = (int64_t)time(NULL);
    size_t n = gw->nrevoked < REVOKED_MAX ? gw->nrevoked : REVOKED_MAX;
    for (size_t i = 0; i < n; i++) {
        const revocation *r = &gw->revoked[i];
        if (now - r->at > REVOKED_KEEP_S)
            continue;
        if ((cl->iat == 0 || cl->iat < r->at) && revocation_covers(r, cl))
            return true;
    }
    return false;
}

static void handle_auth(wd_gw *gw, conn *c, json_t *args)
{
    json_t *tok = json_array_get(args, 0);
    wd_wstoken_claims cl;
    wd_status st = json_is_string(tok)
                       ? wd_wstoken_verify(gw->cfg.keys, json_string_value(tok), time(NULL), &cl)
                       : WD_ERR(WD_ERR_DENIED, "invalid token: args[0] must be the token");
    if (st == WD_OK && !wd_wstoken_allows(&cl, "websocket.connect"))
        st = WD_ERR(WD_ERR_DENIED, "invalid token: no websocket.connect permission");
    if (st == WD_OK && (!wd_subj_token_ok(cl.srv) || !wd_subj_token_ok(cl.node)))
        st = WD_ERR(WD_ERR_DENIED, "invalid token: malformed server or node id");
    if (st == WD_OK && token_revoked(gw, &cl))
        st = WD_ERR(WD_ERR_DENIED, "invalid token: its session or access was revoked");
    if (st == WD_OK && c->path_srv[0] && strcmp(cl.srv, c->path_srv) != 0)
        st = WD_ERR(WD_ERR_DENIED, "invalid token: it is for another server than the URL's");
    if (st == WD_OK && c->authed &&
        (strcmp(cl.srv, c->claims.srv) != 0 || strcmp(cl.sub, c->claims.sub) != 0)) {
        send_error(gw, c, "token_mismatch",
                   "a new token must be for the same user and server as the first", "auth");
        return;
    }
    if (st != WD_OK) {
        gw->m.auth_failures++;
        bool expired = strcmp(wd_err_msg(), "token expired") == 0;
        wd_info("auth refused: conn=%llu peer=%s reason=\"%s\"", (unsigned long long)c->id, c->peer,
                wd_err_msg());
        send_error(gw, c, expired ? "token_expired" : "auth_failed", wd_err_msg(), "auth");
        if (!c->authed && ++c->auth_failures >= AUTH_FAILURES_MAX)
            conn_close(c, CLOSE_AUTH, "authentication failed", true);
        return;
    }
    if (c->authed) { /* in-band re-auth: new permissions and expiry */
        c->claims = cl;
        c->warned = false;
        conn_send(gw, c, wd_ws_event_simple("auth success", NULL), false);
        wd_info("re-authenticated: conn=%llu user=%s server=%s exp=%lld", (unsigned long long)c->id,
                cl.sub, cl.srv, (long long)cl.exp);
        return;
    }
    watch *w = NULL;
    if ((st = wd_fanout_acquire(gw, cl.srv, &w)) != WD_OK) {
        send_error(gw, c, wd_ws_error_code(st), wd_err_msg(), "auth");
        return;
    }
    c->claims = cl;
    c->authed = true;
    c->w = w;
    wd_fanout_add_conn(w, c);
    gw->nauthed++;
    wd_info("authenticated: conn=%llu peer=%s user=%s sid=%s server=%s exp=%lld",
            (unsigned long long)c->id, c->peer, cl.sub, cl.sid, cl.srv, (long long)cl.exp);
    conn_send(gw, c, wd_ws_event_simple("auth success", NULL), false);
    if (w->last_status) {
        c->live_status = true;
        conn_send(gw, c, wd_ws_frame_ref(w->last_status), false);
    } else {
        wd_requests_submit(gw, c, JOB_STATE, 0, NULL, NULL);
    }
}

static void handle_command(wd_gw *gw, conn *c, json_t *args)
{
    json_t *a = json_array_get(args, 0);
    if (!wd_wstoken_allows(&c->claims, "control.console")) {
        send_error(gw, c, "permission_denied", "sending commands needs control.console",
                   "send command");
        return;
    }
    if (json_array_size(args) != 1 || !json_is_string(a) || json_string_length(a) == 0 ||
        json_string_length(a) > 4096 || strlen(json_string_value(a)) != json_string_length(a) ||
        strpbrk(json_string_value(a), "\r\n")) {
        send_error(gw, c, "bad_args", "args must be one command line (1-4096 bytes, no newline)",
                   "send command");
        return;
    }
    gw->m.commands++;
    wd_status st = wd_requests_submit(gw, c, JOB_CONSOLE, 0, json_string_value(a), "send command");
    if (st != WD_OK)
        send_error(gw, c, wd_ws_error_code(st), "the gateway is busy: try again", "send command");
}

static void handle_power(wd_gw *gw, conn *c, json_t *args)
{
    static const struct {
        const char *name, *perm;
        int action;
    } acts[] = {
        {"start", "control.start", WARDEN__V1__POWER_REQUEST__ACTION__START},
        {"stop", "control.stop", WARDEN__V1__POWER_REQUEST__ACTION__STOP},
        {"restart", "control.restart", WARDEN__V1__POWER_REQUEST__ACTION__RESTART},
        {"kill", "control.kill", WARDEN__V1__POWER_REQUEST__ACTION__KILL},
    };
    json_t *a = json_array_get(args, 0);
    const char *name = json_is_string(a) ? json_string_value(a) : "";
    for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++) {
        if (strcmp(name, acts[i].name) != 0)
            continue;
        if (!wd_wstoken_allows(&c->claims, acts[i].perm)) {
            char msg[96];
            snprintf(msg, sizeof msg, "%s needs %s", acts[i].name, acts[i].perm);
            send_error(gw, c, "permission_denied", msg, "set state");
            return;
        }
        gw->m.power++;
        wd_status st = wd_requests_submit(gw, c, JOB_POWER, acts[i].action, NULL, "set state");
        if (st != WD_OK)
            send_error(gw, c, wd_ws_error_code(st), "the gateway is busy: try again", "set state");
        return;
    }
    send_error(gw, c, "bad_args", "args[0] must be start, stop, restart or kill", "set state");
}

static void handle_logs(wd_gw *gw, conn *c)
{
    if (c->history_pending)
        return; /* one history at a time; the pending one answers */
    wd_status st = wd_requests_submit(gw, c, JOB_HISTORY, 0, NULL, "send logs");
    if (st != WD_OK) {
        send_error(gw, c, wd_ws_error_code(st), "the gateway is busy: try again", "send logs");
        return;
    }
    c->history_pending = true;
}

static void handle_message(wd_gw *gw, conn *c, const char *data, size_t len)
{
    gw->m.msgs_in++;
    if (!rate_take(gw, c)) {
        if (++c->strikes > 2 * gw->cfg.rate_burst)
            conn_close(c, CLOSE_RATE, "too many messages", true);
        else if (c->strikes == 1)
            send_error(gw, c, "rate_limited", "too many messages: slow down", NULL);
        return;
    }
    c->strikes = 0;
    json_error_t err;
    json_t *msg = json_loadb(data, len, JSON_REJECT_DUPLICATES, &err);
    json_t *ev = json_object_get(msg, "event"), *args = json_object_get(msg, "args");
    if (!json_is_object(msg) || !json_is_string(ev) || (args && !json_is_array(args))) {
        send_error(gw, c, "bad_json",
                   "messages are JSON objects {\"event\": string, \"args\": [...]}", NULL);
        goto out;
    }
    const char *name = json_string_value(ev);
    if (strcmp(name, "auth") == 0) {
        handle_auth(gw, c, args);
        goto out;
    }
    bool known = strcmp(name, "send command") == 0 || strcmp(name, "set state") == 0 ||
                 strcmp(name, "send logs") == 0 || strcmp(name, "send stats") == 0;
    if (!known) {
        send_error(gw, c, "unknown_event", "unknown event", name);
        goto out;
    }
    if (!c->authed) {
        send_error(gw, c, "auth_required", "send auth with a token first", name);
        goto out;
    }
    if (strcmp(name, "send command") == 0)
        handle_command(gw, c, args);
    else if (strcmp(name, "set state") == 0)
        handle_power(gw, c, args);
    else if (strcmp(name, "send logs") == 0)
        handle_logs(gw, c);
    else if (c->w->last_stats)
        conn_send(gw, c, wd_ws_frame_ref(c->w->last_stats), false);
out:
    json_decref(msg);
}

/* ------------------------------------------------------------------------ */
/* Inbox processing, tick (loop thread)                                     */
/* ------------------------------------------------------------------------ */

static void deliver_history(wd_gw *gw, inbox_item *it)
{
    conn *c = conn_find(gw, it->conn_id);
    if (!c)
        return;
    for (size_t i = 0; i < it->nhist; i++) {
        conn_send(gw, c, it->hist[i], false);
        it->hist[i] = NULL;
    }
    /* Live output that arrived meanwhile, minus what history already had. */
    wd_ws_frame *f;
    while ((f = fq_pop(&c->parked))) {
        if (f->seq_last && f->seq_last <= it->hist_last_seq)
            wd_ws_frame_unref(f);
        else
            conn_send(gw, c, f, false);
    }
    c->history_pending = false;
}

static void revoke_access(wd_gw *gw, inbox_item *it)
{
    bool session = it->revoke_kind == WARDEN__V1__PANEL_EVENT__KIND__SESSION_REVOKED;
    revocation *r = &gw->revoked[gw->nrevoked++ % REVOKED_MAX];
    r->kind = it->revoke_kind;
    r->at = (int64_t)time(NULL);
    snprintf(r->user, sizeof r->user, "%s", it->user);
    snprintf(r->sid, sizeof r->sid, "%s", it->sid);
    snprintf(r->server, sizeof r->server, "%s", it->server);
    for (conn *c = gw->conns; c; c = c->next) {
        if (!c->authed || !revocation_covers(r, &c->claims))
            continue;
        gw->m.revoked++;
        wd_info("access revoked: closing: conn=%llu user=%s sid=%s server=%s",
                (unsigned long long)c->id, c->claims.sub, c->claims.sid, c->claims.srv);
        conn_close(c, CLOSE_REVOKED, session ? "session revoked" : "access to the server removed",
                   false);
    }
}

static void drain_inbox(wd_gw *gw)
{
    /* A batch at a time, so that sockets get written between batches: a
     * burst that arrived while the loop was descheduled must not land in
     * the send queues all at once. */
    pthread_mutex_lock(&gw->mu);
    inbox_item *it = gw->in_head, *last = NULL;
    size_t n = 0;
    for (inbox_item *p = it; p && n < INBOX_BATCH; p = p->next, n++)
        last = p;
    if (last) {
        gw->in_head = last->next;
        if (!gw->in_head)
            gw->in_tail = NULL;
        last->next = NULL;
        gw->in_len -= n;
        if (gw->in_head)
            lws_cancel_service(gw->ctx); /* come back for the rest */
    }
    pthread_mutex_unlock(&gw->mu);
    while (it) {
        inbox_item *next = it->next;
        switch (it->kind) {
        case IN_FRAME: {
            watch *w = wd_fanout_find(gw, it->server);
            if (!w)
                break;
            wd_ws_frame *f = it->f;
            if (f->kind == WD_WS_FRAME_CONSOLE && f->seq_last) {
                if (f->seq_last <= w->console_seq)
                    break; /* seen: the agent published it again after a NATS failure */
                w->console_seq = f->seq_last;
            }
            if (f->kind == WD_WS_FRAME_STATS) {
                wd_ws_frame_unref(w->last_stats);
                w->last_stats = wd_ws_frame_ref(f);
            } else if (f->kind == WD_WS_FRAME_STATUS) {
                wd_ws_frame_unref(w->last_status);
                w->last_status = wd_ws_frame_ref(f);
            }
            for (conn *c = w->conns; c; c = c->wnext) {
                if (f->kind == WD_WS_FRAME_STATUS)
                    c->live_status = true;
                conn_send(gw, c, wd_ws_frame_ref(f),
                          c->history_pending && f->kind == WD_WS_FRAME_CONSOLE);
            }
            break;
        }
        case IN_CONN_FRAME: {
            conn *c = conn_find(gw, it->conn_id);
            /* A stored state must not overwrite a newer live one. */
            if (c && !(it->f->kind == WD_WS_FRAME_STATUS && c->live_status)) {
                conn_send(gw, c, it->f, false);
                it->f = NULL;
            }
            break;
        }
        case IN_HISTORY:
            deliver_history(gw, it);
            break;
        case IN_REVOKE:
            revoke_access(gw, it);
            break;
        case IN_JOB_DONE: {
            conn *c = conn_find(gw, it->conn_id);
            if (c && c->inflight > 0)
                c->inflight--;
            break;
        }
        }
        item_free(it);
        it = next;
    }
}

static void on_tick(lws_sorted_usec_list_t *sul)
{
    wd_gw *gw = lws_container_of(sul, wd_gw, tick);
    int64_t now = (int64_t)time(NULL), mono = wd_mono_ms();
    for (conn *c = gw->conns; c; c = c->next) {
        if (c->close_code)
            continue;
        if (!c->authed) {
            if (mono - c->opened_ms > (int64_t)gw->cfg.auth_timeout_s * 1000)
                conn_close(c, CLOSE_AUTH, "authentication timeout", true);
            continue;
        }
        if (now >= c->claims.exp) {
            gw->m.expired++;
            conn_send(gw, c, wd_ws_event_simple("token expired", NULL), false);
            conn_close(c, CLOSE_EXPIRED, "token expired", true);
        } else if (!c->warned && c->claims.exp - now <= gw->cfg.expiry_warning_s) {
            c->warned = true;
            char left[32];
            snprintf(left, sizeof left, "%lld", (long long)(c->claims.exp - now));
            conn_send(gw, c, wd_ws_event_simple("token expiring", left), false);
        }
    }
    lws_sul_schedule(gw->ctx, 0, &gw->tick, on_tick, 250 * LWS_US_PER_MS);
}

/* ------------------------------------------------------------------------ */
/* The lws callback                                                         */
/* ------------------------------------------------------------------------ */

static bool origin_allowed(wd_gw *gw, struct lws *wsi)
{
    if (!gw->origins || !gw->origins[0])
        return true;
    char origin[256];
    int n = lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN);
    if (n <= 0)
        return true; /* not a browser: browsers always send Origin */
    if (n >= (int)sizeof origin || lws_hdr_copy(wsi, origin, sizeof origin, WSI_TOKEN_ORIGIN) < 0)
        return false;
    size_t ol = strlen(origin);
    for (const char *p = gw->origins; *p;) {
        const char *comma = strchr(p, ',');
        size_t l = comma ? (size_t)(comma - p) : strlen(p);
        while (l && p[0] == ' ')
            p++, l--;
        while (l && p[l - 1] == ' ')
            l--;
        if (l == ol && strncasecmp(p, origin, l) == 0)
            return true;
        if (!comma)
            break;
        p = comma + 1;
    }
    return false;
}

static void conn_free(wd_gw *gw, conn *c)
{
    if (c->w) {
        wd_fanout_remove_conn(c->w, c);
        wd_fanout_release(gw, c->w);
        c->w = NULL;
    }
    if (c->authed)
        gw->nauthed--;
    if (c->prev)
        c->prev->next = c->next;
    else
        gw->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    gw->nconns--;
    fq_free(&c->q);
    fq_free(&c->parked);
    free(c->rx);
    free(c);
}

static int on_writable(wd_gw *gw, struct lws *wsi, conn *c)
{
    if (c->close_code && (!c->drain || !c->q.len)) {
        lws_close_reason(wsi, (enum lws_close_status)c->close_code,
                         (unsigned char *)c->close_reason, strlen(c->close_reason));
        return -1;
    }
    /* Only write into a socket that takes it: lws keeps what the kernel
     * refuses in its own unbounded buffer, which would hide a slow client
     * from the send queue limit. */
    wd_ws_frame *f;
    while (!lws_send_pipe_choked(wsi) && (f = fq_pop(&c->q))) {
        int n = lws_write(wsi, wd_ws_frame_data(f), f->len, LWS_WRITE_TEXT);
        size_t len = f->len;
        wd_ws_frame_unref(f);
        if (n < (int)len)
            return -1;
        gw->m.msgs_out++;
        c->written++;
    }
    if (c->q.len || c->close_code)
        lws_callback_on_writable(wsi);
    return 0;
}

static int on_receive(wd_gw *gw, struct lws *wsi, conn *c, const void *in, size_t len)
{
    if (c->close_code)
        return 0; /* closing: ignore the rest */
    if (lws_frame_is_binary(wsi)) {
        static const char r[] = "binary frames are not supported";
        lws_close_reason(wsi, LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE, (unsigned char *)r,
                         sizeof r - 1);
        return -1;
    }
    size_t remaining = lws_remaining_packet_payload(wsi);
    if (c->rxlen + len + remaining > gw->cfg.max_message) {
        char r[64];
        snprintf(r, sizeof r, "message larger than %zu bytes", gw->cfg.max_message);
        lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, (unsigned char *)r, strlen(r));
        return -1;
    }
    if (!c->rx && !(c->rx = malloc(gw->cfg.max_message)))
        return -1;
    memcpy(c->rx + c->rxlen, in, len);
    c->rxlen += len;
    if (!lws_is_final_fragment(wsi))
        return 0;
    handle_message(gw, c, c->rx, c->rxlen);
    c->rxlen = 0;
    return 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    struct lws_context *ctx = lws_get_context(wsi);
    wd_gw *gw = ctx ? lws_context_user(ctx) : NULL;
    pss *p = user;
    switch (reason) {
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        if (gw)
            drain_inbox(gw);
        return 0;
    case LWS_CALLBACK_HTTP:
        return wd_gw_http_serve(gw, wsi, p, in);
    case LWS_CALLBACK_HTTP_WRITEABLE:
        if (!p || !p->body)
            return -1;
        if (lws_write(wsi, p->body + LWS_PRE, p->body_len, LWS_WRITE_HTTP_FINAL) < (int)p->body_len)
            return -1;
        free(p->body);
        p->body = NULL;
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    case LWS_CALLBACK_CLOSED_HTTP:
        if (p) {
            free(p->body);
            p->body = NULL;
        }
        return 0;
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        if (gw->nconns >= (size_t)gw->cfg.max_connections) {
            gw->m.rejected_limit++;
            wd_warn("connection refused: limit reached: limit=%d", gw->cfg.max_connections);
            return 1;
        }
        if (!origin_allowed(gw, wsi)) {
            gw->m.rejected_origin++;
            wd_info("connection refused: origin not allowed");
            return 1;
        }
        return 0;
    case LWS_CALLBACK_ESTABLISHED: {
        conn *c = calloc(1, sizeof *c);
        if (!c)
            return -1;
        c->id = ++gw->next_id;
        c->wsi = wsi;
        c->opened_ms = c->refill_ms = wd_mono_ms();
        c->tokens = gw->cfg.rate_burst;
        lws_get_peer_simple(wsi, c->peer, sizeof c->peer);
        if (gw->cfg.socket_sndbuf > 0) {
            int sz = gw->cfg.socket_sndbuf;
            setsockopt(lws_get_socket_fd(wsi), SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
        }
        char uri[160];
        if (lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI) > 0 &&
            strncmp(uri, "/ws/", 4) == 0 && strlen(uri + 4) < sizeof c->path_srv)
            snprintf(c->path_srv, sizeof c->path_srv, "%s", uri + 4);
        c->next = gw->conns;
        if (gw->conns)
            gw->conns->prev = c;
        gw->conns = c;
        gw->nconns++;
        p->c = c;
        wd_info("connection opened: conn=%llu peer=%s connections=%zu", (unsigned long long)c->id,
                c->peer, gw->nconns);
        return 0;
    }
    case LWS_CALLBACK_RECEIVE:
        return p->c ? on_receive(gw, wsi, p->c, in, len) : -1;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return p->c ? on_writable(gw, wsi, p->c) : -1;
    case LWS_CALLBACK_CLOSED:
        if (p->c) {
            conn *c = p->c;
            wd_info("connection closed: conn=%llu peer=%s user=%s server=%s code=%d "
                    "reason=\"%s\" written=%llu",
                    (unsigned long long)c->id, c->peer, c->claims.sub, c->claims.srv, c->close_code,
                    c->close_reason, (unsigned long long)c->written);
            conn_free(gw, c);
            p->c = NULL;
        }
        return 0;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

/* ------------------------------------------------------------------------ */
/* Lifecycle                                                                */
/* ------------------------------------------------------------------------ */

static void lws_log(int level, const char *line)
{
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    if (level & LLL_ERR)
        wd_error("lws: %.*s", (int)n, line);
    else
        wd_warn("lws: %.*s", (int)n, line);
}

wd_gw_cfg wd_gw_cfg_defaults(void)
{
    return (wd_gw_cfg){
        .host = "127.0.0.1",
        .port = 8081,
        .max_connections = 10000,
        .max_message = 16384,
        .send_queue_frames = 16384,
        .send_queue_bytes = 4u << 20,
        .rate_per_second = 10,
        .rate_burst = 20,
        .history_lines = 500,
        .ping_interval_s = 30,
        .auth_timeout_s = 10,
        .expiry_warning_s = 60,
        .workers = 4,
        .request_timeout_ms = 5000,
    };
}

wd_status wd_gw_create(wd_gw **out, const wd_gw_cfg *cfg)
{
    wd_status st = WD_OK;
    if (!out || !cfg || !cfg->bus || !cfg->keys)
        return WD_ERR(WD_ERR_INVALID, "gateway: bus and keys are required");
    *out = NULL;
    wd_gw *gw = calloc(1, sizeof *gw);
    if (!gw)
        return WD_ERR(WD_ERR_NOMEM, "out of memory");
    gw->cfg = *cfg;
    if (gw->cfg.max_message < 256)
        gw->cfg.max_message = 256;
    if (gw->cfg.send_queue_frames < 8)
        gw->cfg.send_queue_frames = 8;
    if (gw->cfg.rate_burst < 1)
        gw->cfg.rate_burst = 1;
    gw->host = strdup(cfg->host && cfg->host[0] ? cfg->host : "127.0.0.1");
    gw->origins = cfg->origins ? strdup(cfg->origins) : NULL;
    gw->cfg.host = gw->host;
    gw->cfg.origins = gw->origins;
    pthread_mutex_init(&gw->mu, NULL);
    gw->ctx_alive = false;
    if (!gw->host) {
        st = WD_ERR(WD_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if ((st = wd_workq_create(&gw->workq, cfg->workers > 0 ? cfg->workers : 4, 4096)) != WD_OK)
        goto fail;

    lws_set_log_level(LLL_ERR | LLL_WARN, lws_log);
    gw->protocols[0] = (struct lws_protocols){
        .name = "warden",
        .callback = callback,
        .per_session_data_size = sizeof(pss),
        .rx_buffer_size = 4096,
    };
    gw->retry = (lws_retry_bo_t){
        .secs_since_valid_ping = (uint16_t)cfg->ping_interval_s,
        .secs_since_valid_hangup = (uint16_t)(cfg->ping_interval_s * 2),
    };
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = cfg->port;
    info.iface = gw->host;
    info.protocols = gw->protocols;
    info.user = gw;
    info.retry_and_idle_policy = &gw->retry;
    info.options = LWS_SERVER_OPTION_VALIDATE_UTF8;
    if (strchr(gw->host, ':') == NULL)
        info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    info.vhost_name = "default";
    info.max_http_header_pool = 64;
    info.timeout_secs = 10;
    gw->ctx = lws_create_context(&info);
    if (!gw->ctx) {
        st = WD_ERR(WD_ERR_IO, "gateway: cannot listen on %s:%d", gw->host, cfg->port);
        goto fail;
    }
    pthread_mutex_lock(&gw->mu);
    gw->ctx_alive = true;
    pthread_mutex_unlock(&gw->mu);
    struct lws_vhost *vh = lws_get_vhost_by_name(gw->ctx, "default");
    gw->port = vh ? lws_get_vhost_listen_port(vh) : cfg->port;

    natsStatus s = natsConnection_Subscribe(&gw->events_sub, wd_bus_nats(cfg->bus),
                                            SUBJ_PANEL_EVENTS, wd_fanout_on_panel_event, gw);
    if (s != NATS_OK) {
        st = wd_bus_status(s, "subscribe " SUBJ_PANEL_EVENTS);
        goto fail;
    }
    lws_sul_schedule(gw->ctx, 0, &gw->tick, on_tick, 250 * LWS_US_PER_MS);
    if (!gw->origins || !gw->origins[0])
        wd_warn("no --origins configured: browsers from any origin may connect");
    *out = gw;
    return WD_OK;
fail:
    wd_gw_destroy(&gw);
    return st;
}

int wd_gw_port(const wd_gw *gw)
{
    return gw ? gw->port : -1;
}

wd_status wd_gw_run(wd_gw *gw)
{
    while (!atomic_load(&gw->stop))
        if (lws_service(gw->ctx, 0) < 0)
            return WD_ERR(WD_ERR_IO, "gateway: lws_service failed");
    return WD_OK;
}

void wd_gw_stop(wd_gw *gw)
{
    atomic_store(&gw->stop, true);
    if (gw->ctx)
        lws_cancel_service(gw->ctx);
}

void wd_gw_shutdown(wd_gw *gw)
{
    if (!gw || gw->shut)
        return;
    gw->shut = true;
    if (gw->events_sub) {
        natsSubscription_Unsubscribe(gw->events_sub);
        natsSubscription_Destroy(gw->events_sub);
        gw->events_sub = NULL;
    }
    /* Workers finish what is queued; their outcomes go nowhere after this. */
    wd_workq_destroy(&gw->workq);
    pthread_mutex_lock(&gw->mu);
    gw->ctx_alive = false;
    pthread_mutex_unlock(&gw->mu);
    if (gw->ctx) {
        /* Closes every socket: CLOSED releases the watches (unsubscribes). */
        lws_context_destroy(gw->ctx);
        gw->ctx = NULL;
    }
    inbox_item *it = gw->in_head;
    while (it) {
        inbox_item *next = it->next;
        item_free(it);
        it = next;
    }
    gw->in_head = gw->in_tail = NULL;
}

void wd_gw_destroy(wd_gw **p)
{
    if (!p || !*p)
        return;
    wd_gw *gw = *p;
    wd_gw_shutdown(gw);
    /* Late nats.c callbacks found ctx_alive false; nothing is left to free
     * but the inbox they could not fill. */
    pthread_mutex_destroy(&gw->mu);
    free(gw->host);
    free(gw->origins);
    free(gw);
    *p = NULL;
}
