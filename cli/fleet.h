/* wardenctl's fleet-wide commands in bus mode: the live `nodes` and
 * `servers` tables, and the bulk `power`, `backup` and `broadcast`.
 *
 * The fleet is read from the registries the agents maintain (KV
 * warden_servers: server → node; KV warden_nodes: node → last heartbeat),
 * then every server is asked for its info in parallel; `servers` also
 * listens to warden.server.*.stats for the CPU and memory of running ones.
 *
 * Each command returns the process exit code and prints its own errors.
 * They need wd_ctl_bus connected; called from main's thread. */
#ifndef WD_FLEET_H
#define WD_FLEET_H

#include <stdbool.h>
#include <stddef.h>

#include "filter.h"

typedef struct {
    const char *filter; /* filter expression (filter.h); NULL = none */
    bool all;           /* --all: an empty filter selects everything */
    int parallel;       /* concurrent requests, 1..64 */
    bool wait;          /* power: wait until each server has settled */
    int wait_ms;        /* power --wait: at most this long per server, ms;
                           0 = WD_FLEET_WAIT_MS (main passes --timeout if given) */
} wd_fleet_select;

/* How long --wait waits for a server to settle when --timeout is not given:
 * installs and first starts of big games take minutes. */
#define WD_FLEET_WAIT_MS 600000

/* ids_only: just the node ids, one per line (for shell completion). */
int wd_fleet_nodes(bool ids_only);
/* ids_only: just the server ids, one per line (for shell completion). */
int wd_fleet_servers(bool ids_only, bool with_stats);
/* action: start, stop, restart or kill. With sel->wait, a server counts
 * as ok once it is running (start, restart: with a new process) or
 * offline (stop, kill); crashing or timing out on the way is a failure. */
int wd_fleet_power(const char *action, const wd_fleet_select *sel);
/* ignore: glob patterns relative to the server directory. */
int wd_fleet_backup(const wd_fleet_select *sel, const char *const *ignore, size_t n_ignore,
                    int timeout_ms);
/* fmt: --format or NULL; an empty selection (no filter) means every server. */
int wd_fleet_broadcast(const char *message, const char *fmt, const wd_fleet_select *sel);

#endif
