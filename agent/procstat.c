/* /proc readings (see procstat.h). The process-tree walk reads every
 * /proc/<pid>/stat once, records (pid, ppid, ticks, rss), then sums the
 * entries that descend from the root. */
#include "procstat.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

typedef struct {
    pid_t pid, ppid;
    uint64_t ticks, rss_pages;
} pinfo;

static bool read_stat(pid_t pid, pinfo *out)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* comm may contain spaces and parentheses: parse after the last ')'. */
    char *p = strrchr(buf, ')');
    if (p == NULL)
        return false;
    char state;
    int ppid;
    unsigned long utime, stime;
    long rss;
    /* fields after comm: state ppid pgrp session tty tpgid flags minflt cminflt
     * majflt cmajflt utime stime cutime cstime priority nice threads
     * itrealvalue starttime vsize rss */
    if (sscanf(p + 2,
               "%c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d %*d %*d %*d %*d %*u "
               "%*u %ld",
               &state, &ppid, &utime, &stime, &rss) != 5)
        return false;
    out->pid = pid;
    out->ppid = ppid;
    out->ticks = utime + stime;
    out->rss_pages = rss > 0 ? (uint64_t)rss : 0;
    return true;
}

long wd_proc_hz(void)
{
    static long hz;
    if (hz == 0)
        hz = sysconf(_SC_CLK_TCK);
    return hz > 0 ? hz : 100;
}

wd_status wd_proc_tree_usage(pid_t root, wd_tree_usage *out)
{
    memset(out, 0, sizeof *out);
    DIR *d = opendir("/proc");
    if (d == NULL)
        return WD_ERR(WD_ERR_IO, "open /proc: %s", strerror(errno));
    size_t cap = 512, n = 0;
    pinfo *all = malloc(cap * sizeof *all);
    if (all == NULL) {
        closedir(d);
        return WD_ERR(WD_ERR_NOMEM, "out of memory");
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end != '\0' || pid <= 0)
            continue;
        if (n == cap) {
            pinfo *na = realloc(all, cap * 2 * sizeof *all);
            if (na == NULL)
                break;
            all = na;
            cap *= 2;
        }
        if (read_stat((pid_t)pid, &all[n]))
            n++;
    }
    closedir(d);
    /* Mark the root, then repeatedly mark children of marked processes;
     * the number of passes is the tree's depth. */
    bool *in = calloc(n ? n : 1, sizeof *in);
    bool found = false;
    for (size_t i = 0; in && i < n; i++)
        if (all[i].pid == root)
            in[i] = found = true;
    for (bool changed = found; changed;) {
        changed = false;
        for (size_t i = 0; i < n; i++) {
            if (in[i])
                continue;
            for (size_t k = 0; k < n; k++) {
                if (in[k] && all[k].pid == all[i].ppid) {
                    in[i] = changed = true;
                    break;
                }
            }
        }
    }
    long page = sysconf(_SC_PAGESIZE);
    for (size_t i = 0; in && i < n; i++) {
        if (!in[i])
            continue;
        out->cpu_ticks += all[i].ticks;
        out->rss_bytes += all[i].rss_pages * (uint64_t)page;
        out->nprocs++;
    }
    free(in);
    free(all);
    if (!found)
        return WD_ERR(WD_ERR_NOT_FOUND, "process %d is gone", (int)root);
    return WD_OK;
}

wd_status wd_host_cpu(uint64_t *busy, uint64_t *total)
{
    FILE *f = fopen("/proc/stat", "re");
    if (f == NULL)
        return WD_ERR(WD_ERR_IO, "open /proc/stat: %s", strerror(errno));
    unsigned long long v[10] = {0};
    int got = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
                     &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]);
    fclose(f);
    if (got < 4)
        return WD_ERR(WD_ERR_IO, "unexpected /proc/stat format");
    uint64_t t = 0;
    for (int i = 0; i < 8; i++) /* guest time is already in user */
        t += v[i];
    *total = t;
    *busy = t - v[3] - v[4]; /* minus idle and iowait */
    return WD_OK;
}

wd_status wd_host_mem(uint64_t *total_bytes, uint64_t *used_bytes)
{
    FILE *f = fopen("/proc/meminfo", "re");
    if (f == NULL)
        return WD_ERR(WD_ERR_IO, "open /proc/meminfo: %s", strerror(errno));
    char line[256];
    unsigned long long total = 0, avail = 0, v;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "MemTotal: %llu kB", &v) == 1)
            total = v;
        else if (sscanf(line, "MemAvailable: %llu kB", &v) == 1)
            avail = v;
    }
    fclose(f);
    *total_bytes = total * 1024;
    *used_bytes = (total - (avail < total ? avail : total)) * 1024;
    return WD_OK;
}

wd_status wd_fs_usage(const char *path, uint64_t *total_bytes, uint64_t *used_bytes)
{
    struct statvfs sv;
    if (statvfs(path, &sv) != 0)
        return WD_ERR(WD_ERR_IO, "statvfs %s: %s", path, strerror(errno));
    *total_bytes = (uint64_t)sv.f_blocks * sv.f_frsize;
    *used_bytes = (uint64_t)(sv.f_blocks - sv.f_bfree) * sv.f_frsize;
    return WD_OK;
}

static _Thread_local uint64_t du_sum;

static int du_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)p;
    (void)flag;
    (void)ftw;
    du_sum += (uint64_t)sb->st_blocks * 512;
    return 0;
}

wd_status wd_dir_usage(const char *path, uint64_t *bytes)
{
    du_sum = 0;
    if (nftw(path, du_entry, 16, FTW_PHYS | FTW_MOUNT) != 0)
        return WD_ERR(WD_ERR_IO, "walk %s: %s", path, strerror(errno));
    *bytes = du_sum;
    return WD_OK;
}
