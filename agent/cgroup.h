/* Resource limits for game servers through cgroups.
 *
 * Each game gets its own cgroup "warden/<name>" in every hierarchy that
 * matters: on cgroup v2 (a unified hierarchy with controllers at
 * /sys/fs/cgroup) one directory below the agent's own cgroup; on cgroup v1
 * (or a hybrid host whose unified hierarchy has no controllers) one
 * directory in each of the memory, pids, cpu and cpuacct hierarchies. The
 * limits are written there, and the game joins through the cgroup.procs
 * files returned: warden-shim writes the game's pid into each of them
 * before exec (--cgroup-procs), so the whole tree is accounted and limited
 * from its first instruction, and the shim can find every member to kill.
 *
 * A limit of 0 means "no limit". A controller a limit needs that the host
 * does not offer (or does not let us write) gives WD_ERR_UNSUPPORTED with a
 * note saying which and why, and nothing is left created; controllers used
 * only for accounting (pids, cpuacct) are skipped with a note when missing.
 *
 * The functions are stateless (they look at /proc/self/mounts and
 * /proc/self/cgroup each time), touch only the filesystem, and may be called
 * from any thread; they do block on filesystem calls, so not from a loop. */
#ifndef WD_CGROUP_H
#define WD_CGROUP_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

#define WD_CGROUP_MAX 4 /* hierarchies: memory, pids, cpu, cpuacct */
#define WD_CGROUP_PATH_MAX 512

/* The cgroup.procs files of one game's cgroup(s). A plain value. */
typedef struct {
    size_t count;
    char path[WD_CGROUP_MAX][WD_CGROUP_PATH_MAX];
} wd_cgroup_procs;

/* Creates (or reuses) warden/<name> and writes the limits: memory_bytes
 * (hard limit; on v1 also for memory+swap when the host accounts swap),
 * pids (max processes and threads), cpu_percent (of one CPU: 200 = two
 * CPUs). name is [A-Za-z0-9_.-], at most 64 characters, not "." or "..".
 * notes (may be NULL) receives what was skipped or why it failed. */
wd_status wd_cgroup_setup(const char *name, uint64_t memory_bytes, uint32_t pids,
                          uint32_t cpu_percent, wd_cgroup_procs *out, char *notes,
                          size_t notes_len);

/* Removes warden/<name> everywhere (rmdir; kills nothing). WD_OK when it
 * does not exist; WD_ERR_STATE when processes are still inside. */
wd_status wd_cgroup_remove(const char *name);

/* Whether memory, pids and cpu limits can be enforced here: creates and
 * removes a throw-away cgroup. WD_OK, or WD_ERR_UNSUPPORTED with notes to
 * log at agent start. */
wd_status wd_cgroup_probe(char *notes, size_t notes_len);

/* Current memory use (bytes) and total CPU time (microseconds) of the game's
 * cgroup. A value the host cannot tell is UINT64_MAX; WD_ERR_NOT_FOUND when
 * the cgroup does not exist anywhere. */
wd_status wd_cgroup_stats(const char *name, uint64_t *mem_bytes, uint64_t *cpu_usec);

#endif
