/* A scripted libwebsockets client session (see lws_client.h). */
#include "lws_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libwebsockets.h>

#include "util.h"

typedef enum { S_AUTH, S_LOGS, S_COMMAND, S_WAIT_EFFECT, S_CLOSE, S_DONE } step;

typedef struct {
    const char *token, *history_text, *command, *effect_text;
    wd_lwsc_result *res;
    step st;
    bool want_send; /* the message for the current step is due */
    bool failed;
    char *rx;
    size_t rxlen;
    lws_sorted_usec_list_t tick;
    struct lws_context *ctx;
} session;

static bool args_contain(json_t *m, const char *text)
{
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(m, "args"), i, a)
    {
        if (json_is_string(a) && strstr(json_string_value(a), text))
            return true;
    }
    return false;
}

static void on_message(session *s, struct lws *wsi, const char *data, size_t len)
{
    json_error_t err;
    json_t *m = json_loadb(data, len, 0, &err);
    const char *ev = json_string_value(json_object_get(m, "event"));
    if (!ev) {
        s->failed = true;
        goto out;
    }
    if (strcmp(ev, "auth success") == 0 && s->st == S_AUTH) {
        s->res->authed = true;
        s->st = S_LOGS;
        s->want_send = true;
    } else if (strcmp(ev, "status") == 0) {
        s->res->status_events++;
    } else if (strcmp(ev, "console output") == 0) {
        if (s->st == S_COMMAND && args_contain(m, s->history_text)) {
            s->res->history_seen = true;
            s->want_send = true;
        } else if (s->st == S_WAIT_EFFECT && args_contain(m, s->effect_text)) {
            s->res->effect_seen = true;
            s->res->history_before_live = s->res->history_seen;
            s->st = S_CLOSE;
            s->want_send = true;
        }
    } else if (strcmp(ev, "error") == 0) {
        s->failed = true;
    }
    if (s->want_send)
        lws_callback_on_writable(wsi);
out:
    json_decref(m);
}

static int send_text(struct lws *wsi, const char *text)
{
    size_t n = strlen(text);
    unsigned char *buf = malloc(LWS_PRE + n);
    if (!buf)
        return -1;
    memcpy(buf + LWS_PRE, text, n);
    int w = lws_write(wsi, buf + LWS_PRE, n, LWS_WRITE_TEXT);
    free(buf);
    return w < (int)n ? -1 : 0;
}

static int send_event(struct lws *wsi, const char *event, const char *arg)
{
    json_t *o = arg ? json_pack("{s:s, s:[s]}", "event", event, "args", arg)
                    : json_pack("{s:s, s:[]}", "event", event, "args");
    char *t = json_dumps(o, JSON_COMPACT);
    int rc = t ? send_text(wsi, t) : -1;
    free(t);
    json_decref(o);
    return rc;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    struct lws_context *ctx = lws_get_context(wsi);
    session *s = ctx ? lws_context_user(ctx) : NULL;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        s->want_send = true;
        lws_callback_on_writable(wsi);
        break;
    case LWS_CALLBACK_CLIENT_RECEIVE: {
        char *nb = realloc(s->rx, s->rxlen + len);
        if (!nb)
            return -1;
        s->rx = nb;
        memcpy(s->rx + s->rxlen, in, len);
        s->rxlen += len;
        if (lws_is_final_fragment(wsi)) {
            on_message(s, wsi, s->rx, s->rxlen);
            s->rxlen = 0;
        }
        break;
    }
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        if (!s->want_send)
            break;
        s->want_send = false;
        switch (s->st) {
        case S_AUTH:
            return send_event(wsi, "auth", s->token);
        case S_LOGS:
            s->st = S_COMMAND;
            return send_event(wsi, "send logs", NULL);
        case S_COMMAND:
            s->st = S_WAIT_EFFECT;
            return send_event(wsi, "send command", s->command);
        case S_CLOSE:
            s->st = S_DONE;
            lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, (unsigned char *)"bye", 3);
            return -1;
        default:
            break;
        }
        break;
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (len >= 2)
            s->res->close_code =
                ((const unsigned char *)in)[0] << 8 | ((const unsigned char *)in)[1];
        break;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
    case LWS_CALLBACK_CLIENT_CLOSED:
        if (s->st != S_DONE)
            s->failed = true;
        s->st = S_DONE;
        break;
    default:
        break;
    }
    return 0;
}

/* Wakes the service loop regularly so the deadline is checked. */
static void on_tick(lws_sorted_usec_list_t *sul)
{
    session *s = lws_container_of(sul, session, tick);
    lws_sul_schedule(s->ctx, 0, &s->tick, on_tick, 50 * LWS_US_PER_MS);
}

bool wd_lwsc_session(int port, const char *token, const char *history_text, const char *command,
                     const char *effect_text, int timeout_ms, wd_lwsc_result *res)
{
    memset(res, 0, sizeof *res);
    session s = {.token = token,
                 .history_text = history_text,
                 .command = command,
                 .effect_text = effect_text,
                 .res = res,
                 .st = S_AUTH};
    static const struct lws_protocols protocols[] = {
        {"warden-test-client", callback, 0, 65536, 0, NULL, 0}, {NULL, NULL, 0, 0, 0, NULL, 0}};
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.user = &s;
    lws_set_log_level(LLL_ERR, NULL);
    s.ctx = lws_create_context(&info);
    if (!s.ctx)
        return false;
    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof ci);
    ci.context = s.ctx;
    ci.address = "127.0.0.1";
    ci.port = port;
    ci.path = "/ws";
    ci.host = "127.0.0.1";
    ci.origin = "127.0.0.1";
    ci.local_protocol_name = protocols[0].name;
    bool ok = false;
    if (lws_client_connect_via_info(&ci)) {
        lws_sul_schedule(s.ctx, 0, &s.tick, on_tick, 50 * LWS_US_PER_MS);
        int64_t deadline = wd_mono_ms() + timeout_ms;
        while (s.st != S_DONE && !s.failed && wd_mono_ms() < deadline)
            if (lws_service(s.ctx, 0) < 0)
                break;
        ok = s.st == S_DONE && !s.failed && res->effect_seen;
    }
    lws_context_destroy(s.ctx);
    free(s.rx);
    return ok;
}
