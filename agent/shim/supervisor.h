/* The shim's supervisor: one game on a pty, one agent connection, one loop.
 *
 * wd_supervisor_create() prepares RUN_DIR (pid file, listening socket
 * shim.sock), becomes a child subreaper and starts the game; after that the
 * caller reports readiness and calls wd_supervisor_run(), a single-threaded
 * poll loop that:
 *   - drains the pty into the line ring and, whenever a read drains, sends
 *     every new line to the attached agent (no batching timer); a quiet
 *     unterminated line is flushed as PARTIAL after partial_ms;
 *   - never lets the agent slow the game down: socket writes are
 *     non-blocking with a per-connection cursor into the ring, which keeps
 *     the lines a slow agent has not taken (until they are evicted, which
 *     the next LINES frame reports as `dropped`);
 *   - serves the wire protocol of shim_proto.h; a newer connection replaces
 *     the older one, a malformed frame closes only its connection;
 *   - when the game's direct child exits, kills what is left of its tree,
 *     drains the pty, writes RUN_DIR/exit and sends EXIT after the last
 *     LINES; then waits for EXIT_ACK (or ack_timeout_ms) and returns.
 *
 * Signals to the shim itself: SIGHUP and SIGPIPE are ignored; SIGTERM and
 * SIGINT are forwarded to the game (as a SIGNAL scope 0 would be).
 * Not thread-safe: one thread owns a supervisor. */
#ifndef WD_SHIM_SUPERVISOR_H
#define WD_SHIM_SUPERVISOR_H

#include <stdint.h>
#include <sys/types.h>

#include "game.h"
#include "status.h"

#define WD_SUP_PARTIAL_MS 10 /* default quiet time before a partial line is shown */

typedef struct {
    const char *id;      /* server id, for logs */
    const char *run_dir; /* created 0700 if missing */
    wd_game_cfg game;
    size_t ring_bytes;
    size_t max_line;
    int partial_ms;         /* quiet time before an unterminated line is flushed */
    int64_t ack_timeout_ms; /* how long to wait for EXIT_ACK after the exit */
} wd_supervisor_cfg;

typedef struct wd_supervisor wd_supervisor;

/* Sets up RUN_DIR and starts the game. The cfg strings and arrays must stay
 * valid for the supervisor's life. On failure nothing is left behind (no
 * socket, no pid file, no game process). */
wd_status wd_supervisor_create(wd_supervisor **out, const wd_supervisor_cfg *cfg);
/* The game's direct child. */
pid_t wd_supervisor_child_pid(const wd_supervisor *s);
/* Runs until the game has exited and the agent acknowledged it (or the ack
 * timeout passed): WD_OK. Any other status is a fatal loop error. */
wd_status wd_supervisor_run(wd_supervisor *s);
/* Kills the game tree if it still runs, removes shim.sock and shim.pid
 * (RUN_DIR/exit stays), frees everything. NULL-safe; nulls *s. */
void wd_supervisor_destroy(wd_supervisor **s);

#endif
