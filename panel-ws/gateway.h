/* The WebSocket gateway: browsers ↔ the bus (protocol in docs/websocket.md).
 *
 * One libwebsockets context on one thread (the "loop") owns every
 * connection, the subscription table and the counters. Nothing else touches
 * them: nats.c callbacks decode bus messages into ready frames and post them
 * to the loop's inbox (a locked list + lws_cancel_service()); bus requests
 * (console input, power, history, last state) run on a small worker pool
 * and post their results the same way. The loop never blocks.
 *
 * Fan-out: one NATS subscription (warden.server.<id>.*) per watched server,
 * reference-counted by the connections watching it, removed with the last.
 * Revocation: one subscription on warden.panel.events.> closes sockets of
 * revoked sessions and removed subusers as soon as the event arrives.
 *
 * The same listener answers GET /healthz and GET /metrics (Prometheus). */
#ifndef WD_GATEWAY_H
#define WD_GATEWAY_H

#include <stddef.h>

#include "bus.h"
#include "status.h"
#include "wstoken.h"

typedef struct wd_gw wd_gw;

typedef struct {
    const char *host;            /* listen address; default 127.0.0.1 */
    int port;                    /* 0: any free port (see wd_gw_port) */
    wd_bus *bus;                 /* borrowed; must outlive the gateway's shutdown */
    const wd_wstoken_keys *keys; /* borrowed; verify-only is enough */
    const char *origins;         /* comma-separated allowed Origin values; NULL/"": any */
    int max_connections;         /* default 10000 */
    size_t max_message;          /* bytes of one client message; default 16384 */
    size_t send_queue_frames;    /* per connection; default 16384 */
    size_t send_queue_bytes;     /* per connection; default 4 MiB */
    int socket_sndbuf;           /* kernel send buffer per socket; 0: the kernel's (autotuned) */
    double rate_per_second;      /* client messages per second per connection; default 10 */
    int rate_burst;              /* default 20 */
    int history_lines;           /* most lines answered to "send logs"; default 500 */
    int ping_interval_s;         /* idle ping; hang up after twice that; default 30 */
    int auth_timeout_s;          /* close sockets not authenticated by then; default 10 */
    int expiry_warning_s;        /* "token expiring" this long before exp; default 60 */
    int workers;                 /* bus request threads; default 4 */
    int request_timeout_ms;      /* bus request timeout; default 5000 */
} wd_gw_cfg;

wd_gw_cfg wd_gw_cfg_defaults(void);

/* Creates the context, binds the listener and subscribes to panel events.
 * The config is copied. */
wd_status wd_gw_create(wd_gw **out, const wd_gw_cfg *cfg);
/* The bound TCP port. */
int wd_gw_port(const wd_gw *gw);
/* Runs the loop on the calling thread until wd_gw_stop. */
wd_status wd_gw_run(wd_gw *gw);
/* Asks the loop to return; any thread, and async-signal-safe enough for a
 * signal handler (an atomic store and lws_cancel_service's pipe write). */
void wd_gw_stop(wd_gw *gw);
/* Closes every socket and subscription and joins the workers. Call before
 * destroying the bus; then wd_gw_destroy once nats.c has stopped calling
 * back (after wd_bus_destroy). */
void wd_gw_shutdown(wd_gw *gw);
/* Shuts down if needed, frees, nulls *gw. NULL-safe. */
void wd_gw_destroy(wd_gw **gw);

#endif
