/* NATS connection and protobuf messaging (see bus.h). */
#include "bus.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "log.h"
#include "util.h"

/* nats.c (3.4) frees OpenSSL's compression-method stack in nats_Close()
 * without telling OpenSSL (nats-io/nats.c#904); OpenSSL's own exit handler
 * then frees it again and the process crashes on its way out after any TLS
 * connection to NATS. Initialising OpenSSL without that exit handler, before
 * anything else touches it, avoids the double free; the OS reclaims the
 * memory at exit. */
__attribute__((constructor)) static void openssl_without_atexit(void)
{
    OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, NULL);
}

struct wd_bus {
    natsConnection *nc;
    jsCtx *js;
    natsOptions *opts;
    wd_bus_cfg cfg;
    int reconnect_min_ms, reconnect_max_ms;
    atomic_bool closing; /* our own close: not worth a warning */
    atomic_bool closed;  /* the closed callback has run: nats.c is done with us */
    _Atomic int64_t resend_at; /* wd_bus_publish_stored: next re-send not before (mono ms) */
};

wd_bus_cfg wd_bus_cfg_defaults(void)
{
    return (wd_bus_cfg){.servers = "nats://127.0.0.1:4222",
                        .name = "warden",
                        .connect_timeout_ms = 2000,
                        .reconnect_min_ms = 250,
                        .reconnect_max_ms = 5000};
}

wd_status wd_bus_status(natsStatus s, const char *what)
{
    switch (s) {
    case NATS_OK:
        return WD_OK;
    case NATS_TIMEOUT:
        return WD_ERR(WD_ERR_TIMEOUT, "%s: timed out", what);
    case NATS_NO_RESPONDERS:
        return WD_ERR(WD_ERR_NO_RESPONDERS, "%s: no responders (is the agent running?)", what);
    case NATS_NO_MEMORY:
        return WD_ERR(WD_ERR_NOMEM, "%s: out of memory", what);
    case NATS_NOT_FOUND:
        return WD_ERR(WD_ERR_NOT_FOUND, "%s: not found", what);
    case NATS_CONNECTION_CLOSED:
    case NATS_CONNECTION_DISCONNECTED:
    case NATS_NO_SERVER:
        return WD_ERR(WD_ERR_UNAVAILABLE, "%s: not connected to NATS (%s)", what,
                      natsStatus_GetText(s));
    case NATS_NOT_PERMITTED:
        return WD_ERR(WD_ERR_DENIED, "%s: not permitted", what);
    default: {
        const char *last = nats_GetLastError(NULL);
        return WD_ERR(WD_ERR_BUS, "%s: %s%s%s", what, natsStatus_GetText(s), last ? ": " : "",
                      last ? last : "");
    }
    }
}

static void on_disconnected(natsConnection *nc, void *ud)
{
    wd_bus *b = ud;
    if (atomic_load(&b->closing))
        return;
    wd_warn("nats: disconnected, reconnecting");
    if (b->cfg.on_event)
        b->cfg.on_event(WD_BUS_DISCONNECTED, b->cfg.ud);
}

static void on_reconnected(natsConnection *nc, void *ud)
{
    wd_bus *b = ud;
    char url[256] = "";
    natsConnection_GetConnectedUrl(nc, url, sizeof url);
    wd_info("nats: reconnected to %s", url);
    if (b->cfg.on_event)
        b->cfg.on_event(WD_BUS_RECONNECTED, b->cfg.ud);
}

static void on_closed(natsConnection *nc, void *ud)
{
    wd_bus *b = ud;
    if (!atomic_load(&b->closing)) {
        /* nats.c gave up by itself: say why (a TLS handshake that failed
         * is the usual cause; it is not retried). */
        const char *err = NULL;
        natsStatus s = natsConnection_GetLastError(nc, &err);
        bool tls = b->cfg.tls || b->cfg.tls_ca || b->cfg.tls_cert ||
                   (err && (strstr(err, "SSL") || strstr(err, "certificate")));
        wd_error("nats: connection closed and not retried: %s%s", err ? err : natsStatus_GetText(s),
                 tls ? " (with TLS, a failed handshake ends here: check that --nats-tls-ca "
                       "holds the CA that signed the NATS servers' certificates, and that "
                       "they are valid for the host names in --nats-url)"
                     : "");
    }
    if (b->cfg.on_event)
        b->cfg.on_event(WD_BUS_CLOSED, b->cfg.ud);
    atomic_store(&b->closed, true); /* last touch of b */
}

/* wd_bus_publish_stored: a message JetStream did not store (an error, or
 * no acknowledgement within the wait: the stream is electing a new leader
 * after a server died, or NATS is away) is sent again after a pause, for
 * up to WD_STORE_GIVE_UP_MS after its first failure. Runs on a nats.c
 * thread. */
#define WD_STORE_GIVE_UP_MS 60000
#define WD_HDR_FIRST_FAIL "Warden-First-Failure"

static void on_stored_publish_failed(jsCtx *js, jsPubAckErr *pae, void *closure)
{
    wd_bus *b = closure;
    if (pae->Msg == NULL || atomic_load(&b->closing))
        return;
    int64_t now = wd_mono_ms();
    const char *v = NULL;
    long since = 0;
    if (natsMsgHeader_Get(pae->Msg, WD_HDR_FIRST_FAIL, &v) != NATS_OK || v == NULL ||
        !wd_parse_long(v, 0, INT64_MAX, &since)) {
        char buf[24];
        snprintf(buf, sizeof buf, "%lld", (long long)now);
        natsMsgHeader_Set(pae->Msg, WD_HDR_FIRST_FAIL, buf);
        since = (long)now;
    }
    const char *why = pae->ErrText ? pae->ErrText : natsStatus_GetText(pae->Err);
    if (now - since > WD_STORE_GIVE_UP_MS) {
        wd_warn("JetStream did not store a message on %s for %d s (%s): given up",
                natsMsg_GetSubject(pae->Msg), WD_STORE_GIVE_UP_MS / 1000, why);
        return;
    }
    /* One warning per outage, not one per message. */
    static _Atomic int64_t warned_ms;
    if (now - atomic_load(&warned_ms) > 10000) {
        atomic_store(&warned_ms, now);
        wd_warn("JetStream did not store a message on %s (%s): sending it again (and any "
                "other that fails, for a while)",
                natsMsg_GetSubject(pae->Msg), why);
    }
    /* A leader election takes seconds: pause from 0.25 s, doubling with the
     * time the message has been failing, up to 2 s. One pause per burst:
     * messages that fail together wait for the same moment and go out
     * together. This thread only delivers publish acknowledgements, which
     * are late anyway while the stream is away. */
    int64_t failing = now - since;
    int64_t delay = failing < 250 ? 250 : failing < 1000 ? 500 : failing < 3000 ? 1000 : 2000;
    int64_t until = atomic_load(&b->resend_at);
    if (until <= now) {
        until = now + delay;
        atomic_store(&b->resend_at, until);
    }
    usleep((useconds_t)((until - now) * 1000));
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 2000;
    js_PublishMsgAsync(js, &pae->Msg, &po); /* takes the message, or leaves it to nats.c */
}

wd_status wd_bus_publish_stored(wd_bus *b, natsMsg **m)
{
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 2000; /* without it a lost acknowledgement is never noticed */
    natsStatus s = js_PublishMsgAsync(b->js, m, &po);
    if (s != NATS_OK)
        return wd_bus_status(s, "JetStream publish");
    return WD_OK;
}

static void on_connected(natsConnection *nc, void *ud)
{
    /* Only called when the first connect succeeded in the background. */
    wd_bus *b = ud;
    wd_info("nats: connected");
    if (b->cfg.on_event)
        b->cfg.on_event(WD_BUS_CONNECTED, b->cfg.ud);
}

/* Exponential back-off with a cap, plus jitter from nats.c is not applied to
 * custom delays, so add a little of our own. */
static int64_t reconnect_delay(natsConnection *nc, int attempts, void *ud)
{
    wd_bus *b = ud;
    int64_t d = b->reconnect_min_ms;
    for (int i = 1; i < attempts && d < b->reconnect_max_ms; i++)
        d *= 2;
    if (d > b->reconnect_max_ms)
        d = b->reconnect_max_ms;
    return d + (wd_mono_us() % (d / 4 + 1));
}

/* Splits the comma-separated server list into an array for nats.c. */
static wd_status split_servers(const char *list, char ***out, int *n)
{
    char *copy = strdup(list);
    if (copy == NULL)
        return WD_ERR(WD_ERR_NOMEM, "out of memory");
    int cap = 1;
    for (const char *p = list; *p; p++)
        cap += *p == ',';
    char **arr = calloc((size_t)cap + 1, sizeof *arr);
    if (arr == NULL) {
        free(copy);
        return WD_ERR(WD_ERR_NOMEM, "out of memory");
    }
    int k = 0;
    char *p = copy;
    while (p) {
        char *comma = strchr(p, ',');
        if (comma)
            *comma = '\0';
        while (*p == ' ')
            p++;
        if (*p)
            arr[k++] = strdup(p);
        p = comma ? comma + 1 : NULL;
    }
    free(copy);
    if (k == 0) {
        free(arr);
        return WD_ERR(WD_ERR_INVALID, "empty NATS server list");
    }
    *out = arr;
    *n = k;
    return WD_OK;
}

wd_status wd_bus_connect(wd_bus **out, const wd_bus_cfg *cfg)
{
    wd_status st = WD_OK;
    natsStatus s = NATS_OK;
    char **servers = NULL;
    int nservers = 0;
    wd_bus *b = calloc(1, sizeof *b);
    if (b == NULL)
        return WD_ERR(WD_ERR_NOMEM, "out of memory");
    b->cfg = *cfg;
    b->reconnect_min_ms = cfg->reconnect_min_ms > 0 ? cfg->reconnect_min_ms : 250;
    b->reconnect_max_ms = cfg->reconnect_max_ms > 0 ? cfg->reconnect_max_ms : 5000;
    if ((st = split_servers(cfg->servers ? cfg->servers : "nats://127.0.0.1:4222", &servers,
                            &nservers)) != WD_OK)
        goto out;

    if ((s = natsOptions_Create(&b->opts)) != NATS_OK)
        goto nats_fail;
    s = natsOptions_SetServers(b->opts, (const char **)servers, nservers);
    if (s == NATS_OK)
        s = natsOptions_SetNoRandomize(b->opts, nservers == 1);
    if (s == NATS_OK && cfg->name)
        s = natsOptions_SetName(b->opts, cfg->name);
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(b->opts, cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms
                                                                        : 2000);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(b->opts, -1); /* forever */
    if (s == NATS_OK)
        s = natsOptions_SetCustomReconnectDelay(b->opts, reconnect_delay, b);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectBufSize(b->opts, 8 * 1024 * 1024);
    if (s == NATS_OK)
        s = natsOptions_SetDisconnectedCB(b->opts, on_disconnected, b);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectedCB(b->opts, on_reconnected, b);
    if (s == NATS_OK)
        s = natsOptions_SetClosedCB(b->opts, on_closed, b);
    if (s == NATS_OK && cfg->send_asap)
        s = natsOptions_SetSendAsap(b->opts, true);
    if (s == NATS_OK && cfg->shared_delivery)
        s = natsOptions_UseGlobalMessageDelivery(b->opts, true);
    if (s == NATS_OK && cfg->wait_for_server)
        s = natsOptions_SetRetryOnFailedConnect(b->opts, true, on_connected, b);
    if (s == NATS_OK && cfg->creds_file)
        s = natsOptions_SetUserCredentialsFromFiles(b->opts, cfg->creds_file, NULL);
    if (s == NATS_OK && cfg->inbox_prefix && *cfg->inbox_prefix)
        s = natsOptions_SetCustomInboxPrefix(b->opts, cfg->inbox_prefix);
    if (s == NATS_OK && cfg->user)
        s = natsOptions_SetUserInfo(b->opts, cfg->user, cfg->password ? cfg->password : "");
    if (s == NATS_OK && cfg->token)
        s = natsOptions_SetToken(b->opts, cfg->token);
    if (s == NATS_OK && (cfg->tls || cfg->tls_ca || cfg->tls_cert))
        s = natsOptions_SetSecure(b->opts, true);
    if (s == NATS_OK && cfg->tls_ca)
        s = natsOptions_LoadCATrustedCertificates(b->opts, cfg->tls_ca);
    if (s == NATS_OK && cfg->tls_cert)
        s = natsOptions_LoadCertificatesChain(b->opts, cfg->tls_cert,
                                              cfg->tls_key ? cfg->tls_key : cfg->tls_cert);
    if (s != NATS_OK)
        goto nats_fail;

    s = natsConnection_Connect(&b->nc, b->opts);
    if (s == NATS_NOT_YET_CONNECTED)
        s = NATS_OK; /* wait_for_server: connecting in the background */
    if (s == NATS_CONNECTION_AUTH_FAILED || s == NATS_NOT_PERMITTED) {
        st = WD_ERR(WD_ERR_DENIED, "NATS at %s refused our credentials: check the user, password, "
                    "token or creds file",
                    cfg->servers ? cfg->servers : "nats://127.0.0.1:4222");
        goto out;
    }
    if (s != NATS_OK) {
        st = WD_ERR(WD_ERR_UNAVAILABLE, "cannot connect to NATS at %s: %s (is nats-server running?)",
                    cfg->servers ? cfg->servers : "nats://127.0.0.1:4222", natsStatus_GetText(s));
        goto out;
    }
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.ErrHandler = on_stored_publish_failed;
    jo.PublishAsync.ErrHandlerClosure = b;
    if ((s = natsConnection_JetStream(&b->js, b->nc, &jo)) != NATS_OK)
        goto nats_fail;
    *out = b;
    b = NULL;
    goto out;

nats_fail:
    st = wd_bus_status(s, "nats options");
out:
    for (int i = 0; i < nservers; i++)
        free(servers[i]);
    free(servers);
    if (b)
        wd_bus_destroy(&b);
    return st;
}

void wd_bus_destroy(wd_bus **pb)
{
    if (pb == NULL || *pb == NULL)
        return;
    wd_bus *b = *pb;
    *pb = NULL;
    atomic_store(&b->closing, true);
    jsCtx_Destroy(b->js);
    bool wait_closed = b->nc != NULL;
    if (b->nc) {
        natsConnection_Close(b->nc);
        natsConnection_Destroy(b->nc);
    }
    natsOptions_Destroy(b->opts);
    /* nats.c runs the closed callback on its own thread after Close returns:
     * b must outlive it. If it never comes, leaking b beats a use after free. */
    if (wait_closed) {
        for (int i = 0; i < 500 && !atomic_load(&b->closed); i++)
            usleep(2000);
        if (!atomic_load(&b->closed))
            return;
    }
    free(b);
}

natsConnection *wd_bus_nats(wd_bus *b)
{
    return b->nc;
}

jsCtx *wd_bus_js(wd_bus *b)
{
    return b->js;
}

bool wd_bus_connected(wd_bus *b)
{
    return natsConnection_Status(b->nc) == NATS_CONN_STATUS_CONNECTED;
}

/* Packs msg into a new natsMsg with headers. */
static wd_status build_msg(natsMsg **out, const char *subject, const char *reply,
                           const ProtobufCMessage *msg, const wd_hdrs *h)
{
    size_t len = msg ? protobuf_c_message_get_packed_size(msg) : 0;
    uint8_t stackbuf[4096];
    uint8_t *buf = len <= sizeof stackbuf ? stackbuf : malloc(len);
    if (buf == NULL)
        return WD_ERR(WD_ERR_NOMEM, "out of memory packing %zu bytes", len);
    if (msg)
        protobuf_c_message_pack(msg, buf);
    natsStatus s = natsMsg_Create(out, subject, reply, len ? (const char *)buf : NULL, (int)len);
    if (buf != stackbuf)
        free(buf);
    if (s == NATS_OK && h && h->trace)
        s = natsMsgHeader_Set(*out, WD_HDR_TRACE, h->trace);
    if (s == NATS_OK && h && h->actor)
        s = natsMsgHeader_Set(*out, WD_HDR_ACTOR, h->actor);
    if (s == NATS_OK && h && h->msg_id)
        s = natsMsgHeader_Set(*out, WD_HDR_MSG_ID, h->msg_id);
    if (s != NATS_OK) {
        natsMsg_Destroy(*out);
        *out = NULL;
        return wd_bus_status(s, subject);
    }
    return WD_OK;
}

wd_status wd_bus_publish(wd_bus *b, const char *subject, const ProtobufCMessage *msg,
                         const wd_hdrs *h)
{
    natsMsg *m = NULL;
    wd_status st = build_msg(&m, subject, NULL, msg, h);
    if (st != WD_OK)
        return st;
    natsStatus s = natsConnection_PublishMsg(b->nc, m);
    natsMsg_Destroy(m);
    return wd_bus_status(s, subject);
}

wd_status wd_bus_request(wd_bus *b, const char *subject, const ProtobufCMessage *req,
                         const ProtobufCMessageDescriptor *reply_desc, int timeout_ms,
                         const wd_hdrs *h, ProtobufCMessage **reply)
{
    natsMsg *m = NULL, *r = NULL;
    wd_status st = build_msg(&m, subject, NULL, req, h);
    if (st != WD_OK)
        return st;
    natsStatus s = natsConnection_RequestMsg(&r, b->nc, m, timeout_ms);
    natsMsg_Destroy(m);
    if (s != NATS_OK)
        return wd_bus_status(s, subject);
    *reply = wd_bus_decode(reply_desc, r);
    st = *reply ? WD_OK : WD_ERR(WD_ERR_PROTO, "%s: reply is not a valid %s", subject,
                                 reply_desc->name);
    natsMsg_Destroy(r);
    return st;
}

wd_status wd_bus_respond(wd_bus *b, natsMsg *req, const ProtobufCMessage *msg)
{
    const char *reply = natsMsg_GetReply(req);
    if (reply == NULL || *reply == '\0')
        return WD_OK;
    wd_hdrs h = {.trace = wd_bus_header(req, WD_HDR_TRACE)};
    natsMsg *m = NULL;
    wd_status st = build_msg(&m, reply, NULL, msg, &h);
    if (st != WD_OK)
        return st;
    natsStatus s = natsConnection_PublishMsg(b->nc, m);
    natsMsg_Destroy(m);
    return wd_bus_status(s, "reply");
}

wd_status wd_bus_respond_status(wd_bus *b, natsMsg *req, wd_status st, const char *message)
{
    Warden__V1__Status s;
    Warden__V1__Ack ack = WARDEN__V1__ACK__INIT;
    wd_status_fill(&s, st, message);
    ack.status = &s;
    return wd_bus_respond(b, req, &ack.base);
}

ProtobufCMessage *wd_bus_decode(const ProtobufCMessageDescriptor *desc, natsMsg *m)
{
    ProtobufCMessage *msg = protobuf_c_message_unpack(
        desc, NULL, (size_t)natsMsg_GetDataLength(m), (const uint8_t *)natsMsg_GetData(m));
    if (msg == NULL)
        WD_ERR(WD_ERR_PROTO, "%s: body is not a valid %s", natsMsg_GetSubject(m), desc->name);
    return msg;
}

const char *wd_bus_header(natsMsg *m, const char *key)
{
    const char *v = NULL;
    if (natsMsgHeader_Get(m, key, &v) != NATS_OK)
        return NULL;
    return v;
}

/* The one table between wd_status and the bus's StatusCode. */
Warden__V1__StatusCode wd_status_to_code(wd_status st)
{
    switch (st) {
    case WD_OK:
        return WARDEN__V1__STATUS_CODE__STATUS_OK;
    case WD_ERR_INVALID:
    case WD_ERR_PROTO:
        return WARDEN__V1__STATUS_CODE__STATUS_INVALID_ARGUMENT;
    case WD_ERR_NOT_FOUND:
        return WARDEN__V1__STATUS_CODE__STATUS_NOT_FOUND;
    case WD_ERR_EXISTS:
        return WARDEN__V1__STATUS_CODE__STATUS_ALREADY_EXISTS;
    case WD_ERR_STATE:
        return WARDEN__V1__STATUS_CODE__STATUS_FAILED_PRECONDITION;
    case WD_ERR_DENIED:
        return WARDEN__V1__STATUS_CODE__STATUS_PERMISSION_DENIED;
    case WD_ERR_UNAVAILABLE:
    case WD_ERR_NO_RESPONDERS:
    case WD_ERR_AGAIN:
    case WD_ERR_CLOSED:
        return WARDEN__V1__STATUS_CODE__STATUS_UNAVAILABLE;
    case WD_ERR_TIMEOUT:
        return WARDEN__V1__STATUS_CODE__STATUS_TIMEOUT;
    case WD_ERR_UNSUPPORTED:
        return WARDEN__V1__STATUS_CODE__STATUS_UNIMPLEMENTED;
    case WD_ERR_FULL:
    case WD_ERR_NOMEM:
        return WARDEN__V1__STATUS_CODE__STATUS_RESOURCE_EXHAUSTED;
    default:
        return WARDEN__V1__STATUS_CODE__STATUS_INTERNAL;
    }
}

wd_status wd_status_from_code(Warden__V1__StatusCode c)
{
    switch (c) {
    case WARDEN__V1__STATUS_CODE__STATUS_OK:
        return WD_OK;
    case WARDEN__V1__STATUS_CODE__STATUS_INVALID_ARGUMENT:
        return WD_ERR_INVALID;
    case WARDEN__V1__STATUS_CODE__STATUS_NOT_FOUND:
        return WD_ERR_NOT_FOUND;
    case WARDEN__V1__STATUS_CODE__STATUS_ALREADY_EXISTS:
        return WD_ERR_EXISTS;
    case WARDEN__V1__STATUS_CODE__STATUS_FAILED_PRECONDITION:
        return WD_ERR_STATE;
    case WARDEN__V1__STATUS_CODE__STATUS_PERMISSION_DENIED:
        return WD_ERR_DENIED;
    case WARDEN__V1__STATUS_CODE__STATUS_UNAVAILABLE:
        return WD_ERR_UNAVAILABLE;
    case WARDEN__V1__STATUS_CODE__STATUS_TIMEOUT:
        return WD_ERR_TIMEOUT;
    case WARDEN__V1__STATUS_CODE__STATUS_UNIMPLEMENTED:
        return WD_ERR_UNSUPPORTED;
    case WARDEN__V1__STATUS_CODE__STATUS_RESOURCE_EXHAUSTED:
        return WD_ERR_FULL;
    default:
        return WD_ERR_INTERNAL;
    }
}

void wd_status_fill(Warden__V1__Status *out, wd_status st, const char *message)
{
    warden__v1__status__init(out);
    out->code = wd_status_to_code(st);
    out->message = (char *)(message ? message : (st == WD_OK ? "" : wd_status_str(st)));
}

wd_status wd_status_check(const Warden__V1__Status *s)
{
    if (s == NULL || s->code == WARDEN__V1__STATUS_CODE__STATUS_OK)
        return WD_OK;
    wd_status st = wd_status_from_code(s->code);
    return WD_ERR(st, "%s", s->message && *s->message ? s->message : wd_status_str(st));
}
