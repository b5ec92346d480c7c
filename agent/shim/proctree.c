/* The game's process tree through /proc (see proctree.h).
 *
 * Descendants are found from /proc/PID/stat parent links rather than
 * /proc/PID/task/TID/children, which only lists children of one thread and
 * may be missing from the kernel configuration; the scan costs one small read
 * per process on the host and runs only when signalling or exiting. */
#include "proctree.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

typedef struct {
    pid_t pid, ppid;
    ssize_t parent; /* row of the parent, or -1 */
    bool in;
} proc_row;

static int cmp_row(const void *a, const void *b)
{
    pid_t x = ((const proc_row *)a)->pid, y = ((const proc_row *)b)->pid;
    return (x > y) - (x < y);
}

/* Reads a small /proc file into buf (NUL-terminated); false if it is gone. */
static bool read_small(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n;
    do {
        n = read(fd, buf, cap - 1);
    } while (n < 0 && errno == EINTR);
    close(fd);
    if (n < 0)
        return false;
    buf[n] = '\0';
    return true;
}

/* Parent pid and state from /proc/PID/stat. The command name is in
 * parentheses and may itself contain ')' or spaces, so parse after the last
 * ')'. */
static bool read_stat(pid_t pid, pid_t *ppid, char *state)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if (!read_small(path, buf, sizeof buf))
        return false;
    char *p = strrchr(buf, ')');
    if (p == NULL || p[1] != ' ' || p[2] == '\0' || p[3] != ' ')
        return false;
    *state = p[2];
    long v;
    char *end;
    errno = 0;
    v = strtol(p + 4, &end, 10);
    if (errno != 0 || end == p + 4 || v < 0)
        return false;
    *ppid = (pid_t)v;
    return true;
}

static bool parse_pid(const char *s, pid_t *out)
{
    long v;
    if (!wd_parse_long(s, 1, 0x7fffffffL, &v))
        return false;
    *out = (pid_t)v;
    return true;
}

wd_status wd_proctree_descendants(pid_t root, pid_t **out, size_t *n)
{
    wd_status st = WD_OK;
    proc_row *rows = NULL;
    size_t nrows = 0, cap = 0;
    pid_t *res = NULL;
    *out = NULL;
    *n = 0;
    DIR *d = opendir("/proc");
    if (d == NULL)
        return WD_ERR(WD_ERR_IO, "opendir /proc: %s", strerror(errno));
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        pid_t pid, ppid;
        char state;
        if (!isdigit((unsigned char)de->d_name[0]) || !parse_pid(de->d_name, &pid))
            continue;
        if (!read_stat(pid, &ppid, &state) || state == 'Z' || state == 'X')
            continue;
        if (nrows == cap) {
            size_t ncap = cap ? cap * 2 : 256;
            proc_row *nr = realloc(rows, ncap * sizeof *nr);
            if (nr == NULL) {
                st = WD_ERR(WD_ERR_NOMEM, "out of memory walking /proc");
                goto out;
            }
            rows = nr;
            cap = ncap;
        }
        rows[nrows++] = (proc_row){.pid = pid, .ppid = ppid, .parent = -1, .in = false};
    }
    /* Link each process to its parent's row (rows sorted by pid), then mark
     * until nothing changes: trees are shallow, so this takes a few linear
     * passes however many processes the host runs. */
    if (nrows > 1)
        qsort(rows, nrows, sizeof *rows, cmp_row);
    for (size_t i = 0; i < nrows; i++) {
        proc_row key = {.pid = rows[i].ppid};
        proc_row *par = nrows ? bsearch(&key, rows, nrows, sizeof *rows, cmp_row) : NULL;
        rows[i].parent = par ? (ssize_t)(par - rows) : -1;
    }
    size_t count = 0;
    for (bool changed = true; changed;) {
        changed = false;
        for (size_t i = 0; i < nrows; i++) {
            if (rows[i].in || rows[i].pid == root)
                continue;
            if (rows[i].ppid == root || (rows[i].parent >= 0 && rows[rows[i].parent].in)) {
                rows[i].in = true;
                changed = true;
                count++;
            }
        }
    }
    if (count == 0)
        goto out;
    res = malloc(count * sizeof *res);
    if (res == NULL) {
        st = WD_ERR(WD_ERR_NOMEM, "out of memory walking /proc");
        goto out;
    }
    size_t k = 0;
    for (size_t i = 0; i < nrows; i++)
        if (rows[i].in)
            res[k++] = rows[i].pid;
    *out = res;
    *n = k;
    res = NULL;
out:
    closedir(d);
    free(rows);
    free(res);
    return st;
}

static bool is_bwrap(pid_t pid)
{
    char path[64], buf[64];
    snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
    return read_small(path, buf, sizeof buf) && strcmp(buf, "bwrap\n") == 0;
}

/* First child of a single-threaded process, or 0. */
static pid_t first_child(pid_t pid)
{
    char path[96], buf[256];
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)pid, (int)pid);
    if (!read_small(path, buf, sizeof buf))
        return 0;
    char *sp = strchr(buf, ' ');
    if (sp)
        *sp = '\0';
    pid_t c;
    return parse_pid(buf, &c) ? c : 0;
}

pid_t wd_proctree_game_pid(pid_t child)
{
    pid_t p = child;
    /* bwrap --unshare-pid is two bwrap processes deep (the outer one and
     * the pid namespace's init); a few more levels would be nested sandboxes. */
    for (int depth = 0; depth < 8 && is_bwrap(p); depth++) {
        pid_t c = first_child(p);
        if (c == 0)
            return p;
        p = c;
    }
    return p;
}

static int cmp_pid(const void *a, const void *b)
{
    pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
    return (x > y) - (x < y);
}

/* Appends the pids listed in a cgroup.procs file. */
static void add_cgroup_pids(const char *path, pid_t **arr, size_t *n, size_t *cap)
{
    char *text = NULL;
    if (wd_read_file(path, 1u << 20, &text, NULL) != WD_OK)
        return;
    for (char *p = text; *p;) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p) {
            p++; /* skip a separator or junk */
            continue;
        }
        p = end;
        if (errno != 0 || v <= 0 || v > 0x7fffffffL)
            continue;
        if (*n == *cap) {
            size_t ncap = *cap ? *cap * 2 : 64;
            pid_t *na = realloc(*arr, ncap * sizeof *na);
            if (na == NULL)
                break;
            *arr = na;
            *cap = ncap;
        }
        (*arr)[(*n)++] = (pid_t)v;
    }
    free(text);
}

size_t wd_proctree_signal_tree(pid_t root, pid_t pgid, char *const *cgroup_procs, size_t n_procs,
                               int sig)
{
    pid_t *pids = NULL;
    size_t n = 0;
    if (wd_proctree_descendants(root, &pids, &n) != WD_OK)
        n = 0;
    size_t cap = n;
    for (size_t i = 0; i < n_procs; i++)
        add_cgroup_pids(cgroup_procs[i], &pids, &n, &cap);
    /* A process may be both a descendant and in the cgroup: signal it once,
     * since a second SIGTERM or SIGINT is not harmless. */
    if (n > 1)
        qsort(pids, n, sizeof *pids, cmp_pid);
    size_t sent = 0;
    for (size_t i = 0; i < n; i++) {
        if (pids[i] <= 1 || pids[i] == root || pids[i] == getpid())
            continue;
        if (i > 0 && pids[i] == pids[i - 1])
            continue;
        if (kill(pids[i], sig) == 0)
            sent++;
    }
    if (sig == SIGKILL && pgid > 1 && pgid != getpgrp())
        kill(-pgid, SIGKILL);
    free(pids);
    return sent;
}
