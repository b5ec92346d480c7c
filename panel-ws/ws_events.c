/* Outgoing JSON events as shared, ready-to-write frames (see ws_events.h). */
#include "ws_events.h"

#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>

_Static_assert(WD_WS_PRE >= LWS_PRE, "WD_WS_PRE must cover libwebsockets' LWS_PRE");

wd_ws_frame *wd_ws_frame_new(json_t *obj, wd_ws_frame_kind kind)
{
    if (!obj)
        return NULL;
    size_t n = json_dumpb(obj, NULL, 0, JSON_COMPACT);
    if (n == 0)
        return NULL;
    wd_ws_frame *f = malloc(sizeof *f + WD_WS_PRE + n);
    if (!f)
        return NULL;
    if (json_dumpb(obj, (char *)f->buf + WD_WS_PRE, n, JSON_COMPACT) != n) {
        free(f);
        return NULL;
    }
    atomic_init(&f->refs, 1);
    f->kind = kind;
    f->seq_first = f->seq_last = 0;
    f->len = n;
    return f;
}

wd_ws_frame *wd_ws_frame_ref(wd_ws_frame *f)
{
    if (f)
        atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
    return f;
}

void wd_ws_frame_unref(wd_ws_frame *f)
{
    if (f && atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) == 1)
        free(f);
}

/* Length of a valid UTF-8 sequence at p (1..4), or 0 if invalid. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    if (c < 0x80)
        return 1;
    size_t len;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4, cp = c & 0x07;
    else
        return 0;
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return len;
}

json_t *wd_ws_json_bytes(const void *data, size_t len)
{
    const unsigned char *p = data ? data : (const unsigned char *)"";
    size_t i = 0;
    while (i < len) { /* fast path: already valid */
        size_t k = utf8_seq(p + i, len - i);
        if (!k)
            break;
        i += k;
    }
    if (i == len)
        return json_stringn_nocheck((const char *)p, len);
    /* Each invalid byte becomes U+FFFD (3 bytes). */
    char *buf = malloc(len * 3 + 1);
    if (!buf)
        return NULL;
    size_t o = 0;
    for (i = 0; i < len;) {
        size_t k = utf8_seq(p + i, len - i);
        if (k) {
            memcpy(buf + o, p + i, k);
            o += k;
            i += k;
        } else {
            memcpy(buf + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        }
    }
    json_t *s = json_stringn_nocheck(buf, o);
    free(buf);
    return s;
}

static wd_ws_frame *finish(json_t *o, wd_ws_frame_kind kind)
{
    wd_ws_frame *f = wd_ws_frame_new(o, kind);
    json_decref(o);
    return f;
}

wd_ws_frame *wd_ws_event_simple(const char *name, const char *arg)
{
    json_t *args = json_array();
    if (args && arg)
        json_array_append_new(args, wd_ws_json_bytes(arg, strlen(arg)));
    return finish(json_pack("{s:s, s:o*}", "event", name, "args", args), WD_WS_FRAME_OTHER);
}

wd_ws_frame *wd_ws_event_error(const char *code, const char *message, const char *cause)
{
    json_t *args = json_array();
    if (!args)
        return NULL;
    json_array_append_new(args, json_string(code));
    json_array_append_new(args,
                          wd_ws_json_bytes(message ? message : "", message ? strlen(message) : 0));
    if (cause)
        json_array_append_new(args, wd_ws_json_bytes(cause, strlen(cause)));
    return finish(json_pack("{s:s, s:o}", "event", "error", "args", args), WD_WS_FRAME_OTHER);
}

wd_ws_frame *wd_ws_event_console(const Warden__V1__ConsoleChunk *c, uint64_t min_seq)
{
    bool numbered = c->source != WARDEN__V1__CONSOLE_SOURCE__CONSOLE_SYSTEM && c->first_seq > 0;
    size_t skip = 0;
    if (numbered && min_seq > c->first_seq) {
        if (min_seq - c->first_seq >= c->n_lines)
            return NULL;
        skip = (size_t)(min_seq - c->first_seq);
    }
    json_t *args = json_array();
    if (!args)
        return NULL;
    for (size_t i = skip; i < c->n_lines; i++)
        json_array_append_new(args, wd_ws_json_bytes(c->lines[i].data, c->lines[i].len));
    const char *event = c->source == WARDEN__V1__CONSOLE_SOURCE__CONSOLE_INSTALL ? "install output"
                                                                                 : "console output";
    json_t *o = json_pack("{s:s, s:o}", "event", event, "args", args);
    if (!o)
        return NULL;
    if (numbered) {
        json_object_set_new(o, "seq", json_integer((json_int_t)(c->first_seq + skip)));
        if (c->dropped && !skip)
            json_object_set_new(o, "dropped", json_integer((json_int_t)c->dropped));
    }
    if (c->source == WARDEN__V1__CONSOLE_SOURCE__CONSOLE_SYSTEM)
        json_object_set_new(o, "source", json_string("system"));
    wd_ws_frame *f = finish(o, WD_WS_FRAME_CONSOLE);
    if (f && numbered && c->n_lines > skip) {
        f->seq_first = c->first_seq + skip;
        f->seq_last = c->first_seq + c->n_lines - 1;
    }
    return f;
}

const char *wd_ws_state_name(int state)
{
    switch (state) {
    case WARDEN__V1__SERVER_STATE__SERVER_STATE_OFFLINE:
        return "offline";
    case WARDEN__V1__SERVER_STATE__SERVER_STATE_INSTALLING:
        return "installing";
    case WARDEN__V1__SERVER_STATE__SERVER_STATE_STARTING:
        return "starting";
    case WARDEN__V1__SERVER_STATE__SERVER_STATE_RUNNING:
        return "running";
    case WARDEN__V1__SERVER_STATE__SERVER_STATE_STOPPING:
        return "stopping";
    case WARDEN__V1__SERVER_STATE__SERVER_STATE_CRASHED:
        return "crashed";
    default:
        return "unknown";
    }
}

wd_ws_frame *wd_ws_event_status(const Warden__V1__ServerStateEvent *e)
{
    json_t *o = json_pack("{s:s, s:[s], s:s, s:s, s:b, s:I}", "event", "status", "args",
                          wd_ws_state_name(e->state), "previous", wd_ws_state_name(e->previous),
                          "reason", e->reason ? e->reason : "", "installed", e->installed,
                          "time_unix_ms", (json_int_t)e->time_unix_ms);
    return finish(o, WD_WS_FRAME_STATUS);
}

wd_ws_frame *wd_ws_event_stats(const Warden__V1__ServerStats *s)
{
    json_t *o = json_pack("{s:s, s:[{s:s, s:f, s:I, s:I, s:I, s:I, s:{s:I, s:I}, s:I}]}", "event",
                          "stats", "args", "state", wd_ws_state_name(s->state), "cpu_percent",
                          s->cpu_percent, "memory_bytes", (json_int_t)s->memory_bytes,
                          "memory_limit_bytes", (json_int_t)s->memory_limit_bytes, "disk_bytes",
                          (json_int_t)s->disk_bytes, "uptime_ms", (json_int_t)s->uptime_ms,
                          "network", "rx_bytes", (json_int_t)s->net_rx_bytes, "tx_bytes",
                          (json_int_t)s->net_tx_bytes, "time_unix_ms", (json_int_t)s->time_unix_ms);
    return finish(o, WD_WS_FRAME_STATS);
}

const char *wd_ws_error_code(wd_status st)
{
    switch (st) {
    case WD_OK:
        return "ok";
    case WD_ERR_INVALID:
    case WD_ERR_PROTO:
        return "invalid_argument";
    case WD_ERR_NOT_FOUND:
        return "not_found";
    case WD_ERR_EXISTS:
        return "already_exists";
    case WD_ERR_STATE:
        return "failed_precondition";
    case WD_ERR_DENIED:
        return "permission_denied";
    case WD_ERR_NO_RESPONDERS:
        return "node_unavailable";
    case WD_ERR_TIMEOUT:
        return "timeout";
    case WD_ERR_FULL:
    case WD_ERR_AGAIN:
        return "busy";
    case WD_ERR_UNAVAILABLE:
    case WD_ERR_BUS:
    case WD_ERR_CLOSED:
        return "unavailable";
    case WD_ERR_UNSUPPORTED:
        return "unimplemented";
    default:
        return "internal";
    }
}
