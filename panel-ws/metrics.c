/* Plain HTTP on the gateway's port: GET /healthz and GET /metrics
 * (Prometheus text). Loop thread (see gateway_int.h). */
#include "gateway_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* HTTP: /healthz, /metrics                                                 */
/* ------------------------------------------------------------------------ */

static char *metrics_text(wd_gw *gw, size_t *len)
{
    size_t depth = 0, depth_max = 0;
    for (conn *c = gw->conns; c; c = c->next) {
        size_t d = c->q.len + c->parked.len;
        depth += d;
        if (d > depth_max)
            depth_max = d;
    }
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f)
        return NULL;
    fprintf(f,
            "# HELP warden_ws_connections Open WebSocket connections.\n"
            "# TYPE warden_ws_connections gauge\nwarden_ws_connections %zu\n",
            gw->nconns);
    fprintf(f,
            "# HELP warden_ws_connections_authenticated Authenticated connections.\n"
            "# TYPE warden_ws_connections_authenticated gauge\n"
            "warden_ws_connections_authenticated %zu\n",
            gw->nauthed);
    fprintf(f,
            "# HELP warden_ws_subscriptions NATS subscriptions, one per watched server.\n"
            "# TYPE warden_ws_subscriptions gauge\nwarden_ws_subscriptions %zu\n",
            gw->nwatches);
    fprintf(f,
            "# HELP warden_ws_messages_in_total Messages received from clients.\n"
            "# TYPE warden_ws_messages_in_total counter\nwarden_ws_messages_in_total %llu\n",
            (unsigned long long)gw->m.msgs_in);
    fprintf(f,
            "# HELP warden_ws_messages_out_total Messages written to clients.\n"
            "# TYPE warden_ws_messages_out_total counter\nwarden_ws_messages_out_total %llu\n",
            (unsigned long long)gw->m.msgs_out);
    fprintf(f,
            "# HELP warden_ws_bus_messages_total Messages received from NATS.\n"
            "# TYPE warden_ws_bus_messages_total counter\nwarden_ws_bus_messages_total %llu\n",
            (unsigned long long)atomic_load(&gw->bus_in));
    fprintf(f,
            "# HELP warden_ws_dropped_total Messages dropped.\n"
            "# TYPE warden_ws_dropped_total counter\n"
            "warden_ws_dropped_total{reason=\"slow_client\"} %llu\n"
            "warden_ws_dropped_total{reason=\"inbox_full\"} %llu\n",
            (unsigned long long)gw->m.dropped_slow,
            (unsigned long long)atomic_load(&gw->inbox_dropped));
    fprintf(f,
            "# HELP warden_ws_closed_total Connections closed by the gateway.\n"
            "# TYPE warden_ws_closed_total counter\n"
            "warden_ws_closed_total{reason=\"slow_client\"} %llu\n"
            "warden_ws_closed_total{reason=\"revoked\"} %llu\n"
            "warden_ws_closed_total{reason=\"expired\"} %llu\n",
            (unsigned long long)gw->m.slow_closes, (unsigned long long)gw->m.revoked,
            (unsigned long long)gw->m.expired);
    fprintf(f,
            "# HELP warden_ws_rejected_total Handshakes refused.\n"
            "# TYPE warden_ws_rejected_total counter\n"
            "warden_ws_rejected_total{reason=\"origin\"} %llu\n"
            "warden_ws_rejected_total{reason=\"limit\"} %llu\n",
            (unsigned long long)gw->m.rejected_origin, (unsigned long long)gw->m.rejected_limit);
    fprintf(f,
            "# HELP warden_ws_send_queue_depth Frames queued for clients.\n"
            "# TYPE warden_ws_send_queue_depth gauge\nwarden_ws_send_queue_depth %zu\n"
            "# HELP warden_ws_send_queue_depth_max Deepest single send queue.\n"
            "# TYPE warden_ws_send_queue_depth_max gauge\n"
            "warden_ws_send_queue_depth_max %zu\n",
            depth, depth_max);
    fprintf(f,
            "# HELP warden_ws_auth_failures_total Refused auth events.\n"
            "# TYPE warden_ws_auth_failures_total counter\n"
            "warden_ws_auth_failures_total %llu\n",
            (unsigned long long)gw->m.auth_failures);
    fprintf(f,
            "# HELP warden_ws_requests_total Requests sent to agents.\n"
            "# TYPE warden_ws_requests_total counter\n"
            "warden_ws_requests_total{op=\"console\"} %llu\n"
            "warden_ws_requests_total{op=\"power\"} %llu\n"
            "# HELP warden_ws_request_failures_total Bus requests that failed.\n"
            "# TYPE warden_ws_request_failures_total counter\n"
            "warden_ws_request_failures_total %llu\n",
            (unsigned long long)gw->m.commands, (unsigned long long)gw->m.power,
            (unsigned long long)atomic_load(&gw->jobs_failed));
    fprintf(f,
            "# HELP warden_ws_errors_total Error events sent to clients.\n"
            "# TYPE warden_ws_errors_total counter\nwarden_ws_errors_total %llu\n",
            (unsigned long long)gw->m.errors);
    fprintf(f,
            "# HELP warden_ws_nats_connected 1 while connected to NATS.\n"
            "# TYPE warden_ws_nats_connected gauge\nwarden_ws_nats_connected %d\n",
            wd_bus_connected(gw->cfg.bus) ? 1 : 0);
    fclose(f);
    *len = n;
    return buf;
}

int wd_gw_http_serve(wd_gw *gw, struct lws *wsi, pss *p, const char *uri)
{
    char *text = NULL;
    size_t len = 0;
    unsigned status = HTTP_STATUS_OK;
    const char *type = "text/plain; charset=utf-8";
    if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) <= 0) /* GET only */
        goto notfound;
    if (strcmp(uri, "/healthz") == 0) {
        bool ok = wd_bus_connected(gw->cfg.bus);
        status = ok ? HTTP_STATUS_OK : HTTP_STATUS_SERVICE_UNAVAILABLE;
        text = strdup(ok ? "ok\n" : "nats disconnected\n");
        len = text ? strlen(text) : 0;
    } else if (strcmp(uri, "/metrics") == 0) {
        text = metrics_text(gw, &len);
        type = "text/plain; version=0.0.4";
    } else {
        goto notfound;
    }
    if (!text)
        return -1;
    p->body = malloc(LWS_PRE + len + 1);
    if (!p->body) {
        free(text);
        return -1;
    }
    memcpy(p->body + LWS_PRE, text, len);
    p->body_len = len;
    free(text);
    unsigned char hdr[LWS_PRE + 512], *start = hdr + LWS_PRE, *pos = start,
                                      *end = hdr + sizeof hdr - 1;
    if (lws_add_http_common_headers(wsi, status, type, len, &pos, end) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
                                    (const unsigned char *)"no-store", 8, &pos, end) ||
        lws_finalize_write_http_header(wsi, start, &pos, end))
        return 1;
    lws_callback_on_writable(wsi);
    return 0;
notfound:
    if (lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, NULL))
        return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}
