/* Starting the game process on a fresh pseudo-terminal.
 *
 * The child becomes a session leader with the pty slave as its controlling
 * terminal and stdin/stdout/stderr, closes every other descriptor, joins the
 * game's cgroups, drops to the game's uid/gid (for good), gets exactly the
 * configured environment and working directory, and execs the program
 * (usually bubblewrap with the agent's sandbox arguments). A setup failure
 * before exec is reported on the pty, so it shows up as console output, and
 * as exit status 126 (127 when the program cannot be executed).
 *
 * Called once, from the shim's single thread. */
#ifndef WD_SHIM_GAME_H
#define WD_SHIM_GAME_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "status.h"

typedef struct {
    const char *cwd;
    bool set_ids; /* drop to uid/gid before exec */
    uid_t uid;
    gid_t gid;
    char *const *cgroup_procs; /* cgroup.procs files the child writes its pid to */
    size_t n_cgroup_procs;
    char *const *env; /* K=V entries: the game's entire environment */
    size_t n_env;
    unsigned short rows, cols;
    char *const *argv; /* program and arguments, NULL-terminated */
} wd_game_cfg;

/* Opens the pty and forks the game. On success *master is the pty master
 * (non-blocking, close-on-exec; the caller owns it) and *pid the child,
 * whose process group id is also *pid. */
wd_status wd_game_start(const wd_game_cfg *cfg, int *master, pid_t *pid);

#endif
