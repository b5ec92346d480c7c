/* warden-agent: parse settings, create the agent, run until SIGINT/SIGTERM.
 * Everything else lives in the agent library (agent.c and friends). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <nats/nats.h>

#include "agent.h"
#include "config.h"
#include "log.h"
#include "metrics.h"

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    stop_signal = sig;
}

int main(int argc, char **argv)
{
    wd_agent_cfg c = {0};
    char *log_level = NULL, *metrics_listen = NULL, *metrics_port_file = NULL;
    wd_cfg_opt opts[] = {
        {"nats-url", "WARDEN_NATS_URL", WD_CFG_STR, "nats://127.0.0.1:4222", 0, 0, &c.nats_url,
         "NATS server URLs, comma-separated"},
        {"nats-creds", "WARDEN_NATS_CREDS", WD_CFG_STR, NULL, 0, 0, &c.nats_creds,
         "NATS credentials file (user JWT + NKey seed)"},
        {"nats-user", "WARDEN_NATS_USER", WD_CFG_STR, NULL, 0, 0, &c.nats_user, "NATS user"},
        {"nats-password", "WARDEN_NATS_PASSWORD", WD_CFG_STR, NULL, 0, 0, &c.nats_password,
         "NATS password"},
        WD_CFG_NATS_TLS(&c.nats_tls_ca, &c.nats_tls_cert, &c.nats_tls_key),
        {"node-id", "WARDEN_NODE_ID", WD_CFG_STR, NULL, 0, 0, &c.node_id,
         "node id (default: generated once and kept in DATA_DIR/node-id)"},
        {"node-name", "WARDEN_NODE_NAME", WD_CFG_STR, NULL, 0, 0, &c.node_name,
         "display name (default: host name)"},
        {"join", "WARDEN_JOIN_TOKEN", WD_CFG_STR, NULL, 0, 0, &c.join_token,
         "one-time join token from the panel (first start only; ignored once joined)"},
        {"data-dir", "WARDEN_DATA_DIR", WD_CFG_STR, "/var/lib/warden", 0, 0, &c.data_dir,
         "where servers, their files and state live"},
        {"shim", "WARDEN_SHIM", WD_CFG_STR, NULL, 0, 0, &c.shim_path,
         "path of warden-shim (default: next to this binary)"},
        {"bwrap", "WARDEN_BWRAP", WD_CFG_STR, "/usr/bin/bwrap", 0, 0, &c.bwrap_path,
         "path of bubblewrap"},
        {"isolation", "WARDEN_ISOLATION", WD_CFG_STR, "auto", 0, 0, &c.isolation,
         "auto (bubblewrap if it works), bwrap (required) or none"},
        {"game-user", "WARDEN_GAME_USER", WD_CFG_STR, "nobody", 0, 0, &c.game_user,
         "unprivileged user games run as when the agent runs as root"},
        {"heartbeat", "WARDEN_HEARTBEAT", WD_CFG_INT, "5", 1, 300, &c.heartbeat_s,
         "seconds between heartbeats"},
        {"stats-interval", "WARDEN_STATS_INTERVAL_MS", WD_CFG_INT, "2000", 100, 60000,
         &c.stats_interval_ms, "milliseconds between server stats"},
        {"console-rate", "WARDEN_CONSOLE_RATE", WD_CFG_INT, "60000", 10, 10000000,
         &c.console_rate, "console lines per second per server before lines are dropped"},
        {"console-ring", "WARDEN_CONSOLE_RING", WD_CFG_INT, "1048576", 65536, 268435456,
         &c.ring_bytes, "bytes of recent console output each shim keeps"},
        {"max-line", "WARDEN_MAX_LINE", WD_CFG_INT, "4096", 80, 65536, &c.max_line,
         "longest console line; longer lines are cut"},
        {"threads", "WARDEN_THREADS", WD_CFG_INT, "2", 1, 64, &c.threads,
         "actor worker threads"},
        {"stop-servers-on-exit", "WARDEN_STOP_SERVERS_ON_EXIT", WD_CFG_BOOL, "false", 0, 0,
         &c.stop_servers_on_exit, "stop every game when the agent exits (default: leave them "
                                  "running; a restarted agent re-attaches)"},
        {"metrics-listen", "WARDEN_AGENT_METRICS_LISTEN", WD_CFG_STR, NULL, 0, 0, &metrics_listen,
         "ADDR:PORT to serve GET /healthz and /metrics on, e.g. 127.0.0.1:9102 (port 0: any; "
         "empty: off)"},
        {"metrics-port-file", "WARDEN_AGENT_METRICS_PORT_FILE", WD_CFG_STR, NULL, 0, 0,
         &metrics_port_file, "write the metrics port to this file once listening"},
        {"log-level", "WARDEN_LOG_LEVEL", WD_CFG_STR, "info", 0, 0, &log_level,
         "debug, info, warn or error"},
    };
    size_t nopts = sizeof opts / sizeof opts[0];
    wd_log_set_component("agent");
    wd_status st = wd_config_parse(opts, nopts, "warden-agent",
                                   "Runs game servers on this host for Warden.", argc, argv, NULL,
                                   NULL);
    if (st == WD_ERR_CLOSED)
        return 0;
    if (st != WD_OK) {
        fprintf(stderr, "warden-agent: %s\n", wd_err_msg());
        return 2;
    }
    wd_log_level lvl;
    if (!wd_log_parse_level(log_level, &lvl)) {
        fprintf(stderr, "warden-agent: --log-level must be debug, info, warn or error\n");
        return 2;
    }
    wd_log_set_level(lvl);

    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    wd_agent *ag = NULL;
    wd_agent_metrics *metrics = NULL;
    wd_agent_metrics_cfg mc = {.listen = metrics_listen, .port_file = metrics_port_file};
    int rc = 0;
    /* The endpoint comes up before the agent connects, so a slow start
     * shows: 503 "starting" while joining, "nats disconnected" until NATS
     * answers. It stops first on the way out. */
    if ((st = wd_agent_create(&ag, &c)) != WD_OK ||
        (metrics_listen && *metrics_listen &&
         (st = wd_agent_metrics_start(&metrics, ag, &mc)) != WD_OK) ||
        (st = wd_agent_start(ag)) != WD_OK) {
        fprintf(stderr, "warden-agent: %s\n", wd_err_msg());
        rc = 1;
        goto out;
    }
    while (!stop_signal)
        pause();
    wd_info("signal %d: shutting down%s", (int)stop_signal,
            c.stop_servers_on_exit ? " and stopping games" : " (games keep running)");
out:
    wd_agent_metrics_stop(&metrics); /* before the agent it reads */
    wd_agent_destroy(&ag);
    wd_config_free(opts, nopts);
    nats_Close();
    return rc;
}
