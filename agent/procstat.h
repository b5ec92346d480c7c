/* Resource readings from /proc and the filesystem: a process tree's CPU time
 * and memory, host CPU and memory, disk usage of a directory. Plain
 * functions, thread-safe, no state: callers keep previous samples to compute
 * rates. A directory walk can take a while on a big tree: call it from an
 * actor, never from an event loop. */
#ifndef WD_PROCSTAT_H
#define WD_PROCSTAT_H

#include <stdint.h>
#include <sys/types.h>

#include "status.h"

typedef struct {
    uint64_t cpu_ticks; /* utime + stime of every process in the tree */
    uint64_t rss_bytes; /* sum of RSS */
    int nprocs;
} wd_tree_usage;

/* Sums root and all its descendants. WD_ERR_NOT_FOUND if root is gone. */
wd_status wd_proc_tree_usage(pid_t root, wd_tree_usage *out);
/* Clock ticks per second (for cpu_ticks). */
long wd_proc_hz(void);

/* Aggregate CPU jiffies from /proc/stat. */
wd_status wd_host_cpu(uint64_t *busy, uint64_t *total);
wd_status wd_host_mem(uint64_t *total_bytes, uint64_t *used_bytes);
/* Filesystem holding path. */
wd_status wd_fs_usage(const char *path, uint64_t *total_bytes, uint64_t *used_bytes);
/* Bytes allocated by the files under path (du -s; symlinks not followed,
 * one filesystem). */
wd_status wd_dir_usage(const char *path, uint64_t *bytes);

#endif
