/* The game sandbox: the argv that runs a game (or an install script) under
 * bubblewrap with only its own directory writable.
 *
 * Inside the sandbox: /usr read-only (with the usual /bin, /lib symlinks),
 * a few read-only files from /etc (TLS roots, resolver, passwd, alternatives),
 * a private /proc, /dev and /tmp, new PID/IPC/UTS namespaces, and the
 * server's directory bound read-write at /home/container (its HOME and
 * working directory). Nothing else of the host is visible: no other server,
 * no agent data. The sandbox dies with its shim (--die-with-parent).
 *
 * Without bubblewrap (isolation off) the same argv runs directly in the
 * server directory. Pure functions; thread-safe. */
#ifndef WD_SANDBOX_H
#define WD_SANDBOX_H

#include <stdbool.h>

#include "status.h"

#define WD_SANDBOX_HOME "/home/container"
#define WD_SANDBOX_INSTALL_SCRIPT "/warden/install.sh"

typedef struct {
    bool isolate;            /* use bubblewrap */
    const char *bwrap_path;  /* default /usr/bin/bwrap */
    const char *server_dir;  /* host path of the server's directory */
    const char *install_script; /* host path, bound read-only at
                                   WD_SANDBOX_INSTALL_SCRIPT; NULL for games */
    const char *hostname;    /* default "warden" */
} wd_sandbox_cfg;

/* Builds the full argv: sandbox prefix + cmd. *out is a NULL-terminated heap
 * array of heap strings (free with wd_argv_free from template.h). */
wd_status wd_sandbox_argv(const wd_sandbox_cfg *cfg, char *const *cmd, char ***out);

/* The directory the game sees as its own: WD_SANDBOX_HOME when isolated,
 * server_dir otherwise. */
const char *wd_sandbox_home(const wd_sandbox_cfg *cfg);

/* Checks that bubblewrap can run a trivial command as uid/gid (or as the
 * current user when uid < 0). On failure notes says why. */
bool wd_sandbox_probe(const char *bwrap_path, int uid, int gid, char *notes, size_t notes_len);

#endif
