/* The game's process tree, as seen from the shim through /proc.
 *
 * The shim is a child subreaper, so every process the game starts stays its
 * descendant even when its parent dies (double forks, daemons). These
 * helpers find that tree, find the real game process below bubblewrap, and
 * signal the whole tree plus anything the game's cgroups hold.
 *
 * All of it is a snapshot of a moving target: a process may fork while the
 * tree is walked. Callers that must leave nothing (SIGKILL on exit) repeat
 * until a walk finds nothing. Not thread-safe (the shim is single-threaded). */
#ifndef WD_SHIM_PROCTREE_H
#define WD_SHIM_PROCTREE_H

#include <stddef.h>
#include <sys/types.h>

#include "status.h"

/* Every live descendant of root (not root itself), zombies excluded, in a
 * heap array the caller frees. *n == 0 and *out == NULL when none. */
wd_status wd_proctree_descendants(pid_t root, pid_t **out, size_t *n);

/* The process that is "the game" for graceful signals: child itself, or,
 * when child is bubblewrap (which does not forward signals), the first
 * process below the chain of bwrap processes. Returns child when the chain
 * cannot be followed (e.g. bwrap has not started its child yet). */
pid_t wd_proctree_game_pid(pid_t child);

/* Sends sig once to every descendant of root and every pid listed in the
 * cgroup.procs files (root itself is never signalled); for SIGKILL also to
 * the process group pgid (when > 0). Returns how many processes were
 * signalled. */
size_t wd_proctree_signal_tree(pid_t root, pid_t pgid, char *const *cgroup_procs, size_t n_procs,
                               int sig);

#endif
