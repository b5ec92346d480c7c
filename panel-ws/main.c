/* warden-ws: parse settings, connect to NATS, load the token keys, run the
 * gateway until SIGINT/SIGTERM. Everything else lives in gateway.c. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nats/nats.h>

#include "bus.h"
#include "config.h"
#include "subject.h"
#include "gateway.h"
#include "log.h"
#include "wstoken.h"
#include "util.h"

static wd_gw *the_gw;

static void on_signal(int sig)
{
    if (the_gw)
        wd_gw_stop(the_gw);
}

/* host:port, [v6]:port or :port (loopback). */
static bool parse_listen(const char *s, char *host, size_t n, int *port)
{
    if (!wd_parse_hostport(s, host, n, port))
        return false;
    if (host[0] == '\0')
        snprintf(host, n, "127.0.0.1");
    return true;
}

/* warden-ws keygen PRIVATE.pem PUBLIC.pem */
static int keygen(const char *priv_path, const char *pub_path)
{
    char *priv = NULL, *pub = NULL;
    int rc = 0;
    if (wd_wstoken_keygen(&priv, &pub) != WD_OK ||
        wd_write_file_atomic(priv_path, priv, strlen(priv), 0600) != WD_OK ||
        wd_write_file_atomic(pub_path, pub, strlen(pub), 0644) != WD_OK) {
        fprintf(stderr, "warden-ws keygen: %s\n", wd_err_msg());
        rc = 1;
    }
    free(priv);
    free(pub);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "keygen") == 0) {
        if (argc != 4) {
            fprintf(stderr, "usage: warden-ws keygen PRIVATE.pem PUBLIC.pem\n");
            return 2;
        }
        return keygen(argv[2], argv[3]);
    }
    char *listen = NULL, *port_file = NULL, *nats_url = NULL, *nats_creds = NULL, *pubkeys = NULL,
         *origins = NULL, *log_level = NULL, *tls_ca = NULL, *tls_cert = NULL, *tls_key = NULL;
    long max_conns = 0, max_msg = 0, q_frames = 0, q_bytes = 0, rate = 0, burst = 0, history = 0,
         sndbuf = 0, ping = 0, auth_timeout = 0, warn_s = 0, workers = 0, req_timeout = 0;
    wd_cfg_opt opts[] = {
        {"listen", "WARDEN_WS_LISTEN", WD_CFG_STR, "127.0.0.1:8081", 0, 0, &listen,
         "address:port to serve WebSocket, /healthz and /metrics on (port 0: any)"},
        {"port-file", "WARDEN_WS_PORT_FILE", WD_CFG_STR, NULL, 0, 0, &port_file,
         "write the bound port to this file once listening"},
        {"nats-url", "WARDEN_NATS_URL", WD_CFG_STR, "nats://127.0.0.1:4222", 0, 0, &nats_url,
         "NATS server URL(s), comma-separated"},
        {"nats-creds", "WARDEN_NATS_CREDS", WD_CFG_STR, NULL, 0, 0, &nats_creds,
         "NATS credentials file (user JWT + NKey seed)"},
        WD_CFG_NATS_TLS(&tls_ca, &tls_cert, &tls_key),
        {"token-pubkey", "WARDEN_WS_TOKEN_PUBKEY", WD_CFG_STR, NULL, 0, 0, &pubkeys,
         "PEM file(s) of the EC P-256 public key(s) gateway tokens are signed with "
         "(comma-separated for rotation); required"},
        {"origins", "WARDEN_WS_ORIGINS", WD_CFG_STR, NULL, 0, 0, &origins,
         "allowed browser Origin values, comma-separated (empty: any)"},
        {"max-connections", "WARDEN_WS_MAX_CONNECTIONS", WD_CFG_INT, "10000", 1, 1000000,
         &max_conns, "most open WebSocket connections"},
        {"max-message", "WARDEN_WS_MAX_MESSAGE", WD_CFG_INT, "16384", 256, 1048576, &max_msg,
         "largest client message in bytes (bigger: close 1009)"},
        {"send-queue", "WARDEN_WS_SEND_QUEUE", WD_CFG_INT, "16384", 8, 1000000, &q_frames,
         "messages queued per connection before it is closed as too slow (4008)"},
        {"send-queue-bytes", "WARDEN_WS_SEND_QUEUE_BYTES", WD_CFG_INT, "4194304", 4096, 1073741824,
         &q_bytes, "bytes queued per connection before it is closed as too slow"},
        {"socket-sndbuf", "WARDEN_WS_SOCKET_SNDBUF", WD_CFG_INT, "0", 0, 67108864, &sndbuf,
         "kernel send buffer per WebSocket in bytes (0: the kernel's autotuned default); "
         "smaller finds slow clients sooner and bounds kernel memory"},
        {"rate", "WARDEN_WS_RATE", WD_CFG_INT, "10", 1, 100000, &rate,
         "client messages per second per connection"},
        {"rate-burst", "WARDEN_WS_RATE_BURST", WD_CFG_INT, "20", 1, 100000, &burst,
         "client message burst per connection"},
        {"history-lines", "WARDEN_WS_HISTORY_LINES", WD_CFG_INT, "500", 1, 100000, &history,
         "console lines answered to \"send logs\""},
        {"ping-interval", "WARDEN_WS_PING_INTERVAL", WD_CFG_INT, "30", 1, 3600, &ping,
         "seconds of silence before a ping; no answer within twice that: hang up"},
        {"auth-timeout", "WARDEN_WS_AUTH_TIMEOUT", WD_CFG_INT, "10", 1, 3600, &auth_timeout,
         "seconds a socket may stay unauthenticated (then close 4001)"},
        {"expiry-warning", "WARDEN_WS_EXPIRY_WARNING", WD_CFG_INT, "60", 1, 3600, &warn_s,
         "send \"token expiring\" this many seconds before the token expires"},
        {"workers", "WARDEN_WS_WORKERS", WD_CFG_INT, "4", 1, 64, &workers,
         "threads for bus requests (commands, power, history)"},
        {"request-timeout", "WARDEN_WS_REQUEST_TIMEOUT_MS", WD_CFG_INT, "5000", 100, 60000,
         &req_timeout, "bus request timeout in milliseconds"},
        {"log-level", "WARDEN_LOG_LEVEL", WD_CFG_STR, "info", 0, 0, &log_level,
         "debug, info, warn or error"},
    };
    size_t nopts = sizeof opts / sizeof opts[0];
    wd_log_set_component("ws");
    wd_bus *bus = NULL;
    wd_wstoken_keys *keys = NULL;
    wd_gw *gw = NULL;
    int rc = 0;
    wd_status st = wd_config_parse(opts, nopts, "warden-ws",
                                   "Serves live consoles, stats and power controls to browsers.",
                                   argc, argv, NULL, NULL);
    if (st == WD_ERR_CLOSED)
        return 0;
    if (st != WD_OK) {
        fprintf(stderr, "warden-ws: %s\n", wd_err_msg());
        return 2;
    }
    wd_log_level lvl;
    char host[256];
    int port = 0;
    if (!wd_log_parse_level(log_level, &lvl)) {
        fprintf(stderr, "warden-ws: --log-level must be debug, info, warn or error\n");
        rc = 2;
        goto out;
    }
    wd_log_set_level(lvl);
    if (!parse_listen(listen, host, sizeof host, &port)) {
        fprintf(stderr, "warden-ws: --listen must be address:port\n");
        rc = 2;
        goto out;
    }
    if (!pubkeys || !pubkeys[0]) {
        fprintf(stderr, "warden-ws: --token-pubkey is required\n");
        rc = 2;
        goto out;
    }
    if ((st = wd_wstoken_keys_load(&keys, NULL, pubkeys)) != WD_OK) {
        fprintf(stderr, "warden-ws: %s\n", wd_err_msg());
        rc = 2;
        goto out;
    }

    signal(SIGPIPE, SIG_IGN);
    wd_bus_cfg bc = wd_bus_cfg_defaults();
    bc.servers = nats_url;
    bc.name = "warden-ws";
    bc.creds_file = nats_creds;
    bc.tls_ca = tls_ca && *tls_ca ? tls_ca : NULL;
    bc.tls_cert = tls_cert && *tls_cert ? tls_cert : NULL;
    bc.tls_key = tls_key && *tls_key ? tls_key : NULL;
    /* Replies arrive in the gateway's own inboxes: ws.creds (from
     * `warden-api nats init`) may read nothing else. */
    char inbox[WD_SUBJ_INBOX_SIZE];
    wd_subj_inbox_prefix(inbox, "warden-ws");
    bc.inbox_prefix = inbox;
    bc.send_asap = true;
    /* One subscription per watched server: they share two delivery threads
     * (each subscription stays on one, so its messages keep their order)
     * instead of a thread each. */
    bc.shared_delivery = true;
    nats_SetMessageDeliveryPoolSize(2);
    bc.wait_for_server = true;
    if ((st = wd_bus_connect(&bus, &bc)) != WD_OK) {
        fprintf(stderr, "warden-ws: %s\n", wd_err_msg());
        rc = 1;
        goto out;
    }

    wd_gw_cfg gc = wd_gw_cfg_defaults();
    gc.host = host;
    gc.port = port;
    gc.bus = bus;
    gc.keys = keys;
    gc.origins = origins;
    gc.max_connections = (int)max_conns;
    gc.max_message = (size_t)max_msg;
    gc.send_queue_frames = (size_t)q_frames;
    gc.send_queue_bytes = (size_t)q_bytes;
    gc.socket_sndbuf = (int)sndbuf;
    gc.rate_per_second = (double)rate;
    gc.rate_burst = (int)burst;
    gc.history_lines = (int)history;
    gc.ping_interval_s = (int)ping;
    gc.auth_timeout_s = (int)auth_timeout;
    gc.expiry_warning_s = (int)warn_s;
    gc.workers = (int)workers;
    gc.request_timeout_ms = (int)req_timeout;
    if ((st = wd_gw_create(&gw, &gc)) != WD_OK) {
        fprintf(stderr, "warden-ws: %s\n", wd_err_msg());
        rc = 1;
        goto out;
    }
    wd_info("listening: addr=%s port=%d nats=%s", host, wd_gw_port(gw), nats_url);
    if (port_file) {
        char buf[16];
        int n = snprintf(buf, sizeof buf, "%d\n", wd_gw_port(gw));
        if (wd_write_file_atomic(port_file, buf, (size_t)n, 0644) != WD_OK)
            wd_warn("cannot write port file: path=%s err=\"%s\"", port_file, wd_err_msg());
    }
    the_gw = gw;
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    if (wd_gw_run(gw) != WD_OK) {
        wd_error("%s", wd_err_msg());
        rc = 1;
    }
    wd_info("shutting down");
out:
    wd_gw_shutdown(gw);
    wd_bus_destroy(&bus);
    nats_CloseAndWait(2000);
    the_gw = NULL;
    wd_gw_destroy(&gw);
    wd_wstoken_keys_destroy(&keys);
    wd_config_free(opts, nopts);
    return rc;
}
