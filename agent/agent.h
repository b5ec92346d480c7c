/* warden-agent: the node daemon as a library (main.c only wires it up).
 *
 * The agent connects to NATS, loads the servers persisted in its data dir,
 * re-attaches to every live game (each runs under its own warden-shim),
 * serves requests on warden.agent.<node>.>, announces itself and
 * heartbeats. One `node` actor and one actor per game server; see
 * docs/architecture.md. Lifecycle functions are called from one thread. */
#ifndef WD_AGENT_H
#define WD_AGENT_H

#include <stdbool.h>

#include "status.h"

typedef struct {
    char *nats_url;      /* comma-separated server list */
    char *nats_creds, *nats_user, *nats_password, *nats_tls_ca, *nats_tls_cert, *nats_tls_key;
    char *node_id;       /* NULL: generated once, persisted in data_dir/node-id */
    char *node_name;     /* NULL: host name */
    char *join_token;    /* one-time token from the panel: join on first start */
    char *data_dir;
    char *shim_path;     /* NULL: warden-shim next to the agent binary */
    char *bwrap_path;
    char *isolation;     /* auto | bwrap | none */
    char *game_user;     /* user games run as when the agent is root */
    long heartbeat_s;
    long stats_interval_ms;
    long console_rate;   /* default per-server console lines/s before dropping */
    long ring_bytes;     /* shim console ring */
    long max_line;       /* longest console line before it is cut */
    long threads;        /* actor worker threads */
    bool stop_servers_on_exit;
} wd_agent_cfg;

typedef struct wd_agent wd_agent;

/* cfg must outlive the agent (strings are not copied). */
wd_status wd_agent_create(wd_agent **out, const wd_agent_cfg *cfg);
/* Connects, loads and re-attaches servers, subscribes, says hello. */
wd_status wd_agent_start(wd_agent *ag);
/* Stops serving; games keep running unless stop_servers_on_exit. */
void wd_agent_stop(wd_agent *ag);
void wd_agent_destroy(wd_agent **ag);
const char *wd_agent_node_id(const wd_agent *ag);

#endif
