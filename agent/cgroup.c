/* Per-game cgroups on v2 and v1 hosts (see cgroup.h).
 *
 * Layout detection: /sys/fs/cgroup/cgroup.controllers exists only when
 * /sys/fs/cgroup itself is the unified (v2) hierarchy; a hybrid host mounts
 * v2 at /sys/fs/cgroup/unified with no controllers and the real controllers
 * as v1 hierarchies, found in /proc/self/mounts by their mount options.
 *
 * v2 places games below the agent's own cgroup (from /proc/self/cgroup) so
 * it works inside a delegated subtree (systemd Delegate=yes). Because a v2
 * cgroup with processes cannot hand controllers to its children, when
 * enabling them fails with EBUSY the processes of the agent's cgroup are
 * moved to a leaf "<agent cgroup>/warden-agent" first (not needed when the
 * agent runs in the root cgroup); an agent found in such a leaf uses its
 * parent as the base, so this happens once.
 *
 * v1 places games at the root of each hierarchy: <mount>/warden/<name>. */
#include "cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

#define CG_ROOT "/sys/fs/cgroup"
#define AGENT_LEAF "warden-agent" /* v2: where the agent's processes move */

enum { C_MEMORY, C_PIDS, C_CPU, C_CPUACCT, C_COUNT };
static const char *const ctl_names[C_COUNT] = {"memory", "pids", "cpu", "cpuacct"};

typedef struct {
    bool v2;
    char base[PATH_MAX];        /* v2: the agent's cgroup directory */
    char v1[C_COUNT][PATH_MAX]; /* v1: mount point per controller, "" if none */
} layout;

__attribute__((format(printf, 3, 4))) static void note(char *notes, size_t cap, const char *fmt,
                                                       ...)
{
    if (notes == NULL || cap == 0)
        return;
    size_t used = strnlen(notes, cap);
    if (used + 3 >= cap)
        return;
    if (used > 0) {
        memcpy(notes + used, "; ", 3);
        used += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(notes + used, cap - used, fmt, ap);
    va_end(ap);
}

static bool valid_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 64 || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '.' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

/* Writes s to an existing control file; 0 or the errno. */
static int write_ctl(const char *path, const char *s)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    size_t len = strlen(s);
    ssize_t n = write(fd, s, len);
    int e = n == (ssize_t)len ? 0 : n < 0 ? errno : EIO;
    if (close(fd) != 0 && e == 0)
        e = errno;
    return e;
}

static bool join_path(char *out, size_t cap, const char *a, const char *b)
{
    int n = snprintf(out, cap, "%s/%s", a, b);
    return n >= 0 && (size_t)n < cap;
}

/* "cpu" must not match "cpuacct" or "cpuset": compare whole items. */
static bool has_item(const char *list, const char *item, char sep)
{
    size_t n = strlen(item);
    for (const char *p = list; p && *p;) {
        const char *e = strchr(p, sep);
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && strncmp(p, item, n) == 0)
            return true;
        p = e ? e + 1 : NULL;
    }
    return false;
}

static wd_status detect(layout *l)
{
    memset(l, 0, sizeof *l);
    if (access(CG_ROOT "/cgroup.controllers", F_OK) == 0) {
        l->v2 = true;
        char *text = NULL;
        wd_status st = wd_read_file("/proc/self/cgroup", 65536, &text, NULL);
        if (st != WD_OK)
            return st;
        const char *rel = NULL;
        for (char *line = text; line && *line;) {
            char *nl = strchr(line, '\n');
            if (nl)
                *nl = '\0';
            if (strncmp(line, "0::", 3) == 0)
                rel = line + 3;
            if (rel)
                break;
            line = nl ? nl + 1 : NULL;
        }
        int n = -1;
        if (rel != NULL)
            n = snprintf(l->base, sizeof l->base, "%s%s", CG_ROOT,
                         strcmp(rel, "/") == 0 ? "" : rel);
        size_t blen = n > 0 ? strlen(l->base) : 0;
        size_t llen = strlen("/" AGENT_LEAF);
        if (blen > llen && strcmp(l->base + blen - llen, "/" AGENT_LEAF) == 0)
            l->base[blen - llen] = '\0';
        free(text);
        if (rel == NULL)
            return WD_ERR(WD_ERR_UNSUPPORTED, "cgroup v2: no unified entry in /proc/self/cgroup");
        if (n < 0 || (size_t)n >= sizeof l->base)
            return WD_ERR(WD_ERR_INVALID, "cgroup v2: own cgroup path too long");
        return WD_OK;
    }
    FILE *f = fopen("/proc/self/mounts", "re");
    if (f == NULL)
        return WD_ERR(WD_ERR_IO, "open /proc/self/mounts: %s", strerror(errno));
    char line[4096];
    while (fgets(line, sizeof line, f) != NULL) {
        char dev[256], mnt[PATH_MAX], type[64], opts[1024];
        if (sscanf(line, "%255s %4095s %63s %1023s", dev, mnt, type, opts) != 4)
            continue;
        if (strcmp(type, "cgroup") != 0 || strchr(mnt, '\\') != NULL)
            continue;
        for (int c = 0; c < C_COUNT; c++)
            if (l->v1[c][0] == '\0' && has_item(opts, ctl_names[c], ','))
                snprintf(l->v1[c], sizeof l->v1[c], "%s", mnt);
    }
    fclose(f);
    return WD_OK;
}

/* ---- v1 ---------------------------------------------------------------------- */

typedef struct {
    char dir[PATH_MAX];
    bool created;
} made_dir;

static int mkdir_ok(const char *path, bool *created)
{
    if (mkdir(path, 0755) == 0) {
        if (created)
            *created = true;
        return 0;
    }
    return errno == EEXIST ? 0 : errno;
}

/* Writes the limit of controller c into dir; 0 or the errno, *file names
 * the file that failed. A zero limit resets a reused cgroup to unlimited. */
static int v1_limit(int c, const char *dir, uint64_t mem, uint32_t pids, uint32_t cpu,
                    char *file, size_t cap)
{
    char path[PATH_MAX + 64], val[32];
    int e = 0;
    switch (c) {
    case C_MEMORY: {
        /* memsw must stay >= the memory limit: lift it, set, then lower. */
        snprintf(path, sizeof path, "%s/memory.memsw.limit_in_bytes", dir);
        bool memsw = access(path, F_OK) == 0;
        if (memsw)
            write_ctl(path, "-1");
        snprintf(path, sizeof path, "%s/memory.limit_in_bytes", dir);
        snprintf(val, sizeof val, mem ? "%llu" : "-1", (unsigned long long)mem);
        if ((e = write_ctl(path, val)) != 0)
            break;
        if (memsw && mem) {
            snprintf(path, sizeof path, "%s/memory.memsw.limit_in_bytes", dir);
            write_ctl(path, val); /* best effort: swap accounting may be off */
        }
        break;
    }
    case C_PIDS:
        snprintf(path, sizeof path, "%s/pids.max", dir);
        snprintf(val, sizeof val, pids ? "%u" : "max", (unsigned)pids);
        e = write_ctl(path, val);
        break;
    case C_CPU:
        snprintf(path, sizeof path, "%s/cpu.cfs_period_us", dir);
        if ((e = write_ctl(path, "100000")) != 0)
            break;
        snprintf(path, sizeof path, "%s/cpu.cfs_quota_us", dir);
        if (cpu)
            snprintf(val, sizeof val, "%llu", (unsigned long long)cpu * 1000ull);
        else
            snprintf(val, sizeof val, "-1");
        e = write_ctl(path, val);
        break;
    default:
        break;
    }
    if (e != 0)
        snprintf(file, cap, "%s", path);
    return e;
}

static wd_status setup_v1(const layout *l, const char *name, uint64_t mem, uint32_t pids,
                          uint32_t cpu, wd_cgroup_procs *out, char *notes, size_t nlen)
{
    wd_status st = WD_OK;
    bool required[C_COUNT] = {mem > 0, pids > 0, cpu > 0, false};
    made_dir made[C_COUNT];
    size_t nmade = 0;
    out->count = 0;

    for (int c = 0; c < C_COUNT; c++) {
        const char *mnt = l->v1[c];
        /* Accounting-only hierarchies are worth having; cpu without a limit
         * is not (cpuacct covers usage). */
        if (c == C_CPU && !required[c])
            continue;
        if (mnt[0] == '\0') {
            if (required[c]) {
                st = WD_ERR(WD_ERR_UNSUPPORTED, "cgroup v1 %s controller not mounted",
                            ctl_names[c]);
                note(notes, nlen, "%s", wd_err_msg());
                goto out;
            }
            note(notes, nlen, "cgroup v1 %s controller not mounted: skipped", ctl_names[c]);
            continue;
        }
        char parent[PATH_MAX], dir[PATH_MAX];
        if (!join_path(parent, sizeof parent, mnt, "warden") ||
            !join_path(dir, sizeof dir, parent, name)) {
            st = WD_ERR(WD_ERR_INVALID, "cgroup path too long under %s", mnt);
            goto out;
        }
        /* cpu and cpuacct are often mounted together: one directory. */
        size_t idx = nmade;
        for (size_t i = 0; i < nmade; i++)
            if (strcmp(made[i].dir, dir) == 0)
                idx = i;
        int e = 0;
        bool fresh = idx == nmade;
        if (fresh) {
            made[nmade].created = false;
            snprintf(made[nmade].dir, sizeof made[nmade].dir, "%s", dir);
            if ((e = mkdir_ok(parent, NULL)) == 0)
                e = mkdir_ok(dir, &made[nmade].created);
            if (e != 0) {
                if (required[c]) {
                    st = WD_ERR(WD_ERR_UNSUPPORTED, "cgroup v1 %s controller not writable: mkdir "
                                                    "%s: %s",
                                ctl_names[c], dir, strerror(e));
                    note(notes, nlen, "%s", wd_err_msg());
                    goto out;
                }
                note(notes, nlen, "cgroup v1 %s controller not writable (mkdir %s: %s): skipped",
                     ctl_names[c], dir, strerror(e));
                continue;
            }
            nmade++;
        }
        char file[PATH_MAX + 64] = "";
        if ((e = v1_limit(c, dir, mem, pids, cpu, file, sizeof file)) != 0) {
            if (required[c]) {
                st = WD_ERR(WD_ERR_UNSUPPORTED, "cgroup v1 %s controller not writable: %s: %s",
                            ctl_names[c], file, strerror(e));
                note(notes, nlen, "%s", wd_err_msg());
                goto out;
            }
            note(notes, nlen, "cgroup v1 %s: %s: %s", ctl_names[c], file, strerror(e));
        }
        if (fresh && out->count < WD_CGROUP_MAX) {
            int n = snprintf(out->path[out->count], WD_CGROUP_PATH_MAX, "%s/cgroup.procs", dir);
            if (n < 0 || n >= WD_CGROUP_PATH_MAX) {
                st = WD_ERR(WD_ERR_INVALID, "cgroup path too long: %s", dir);
                goto out;
            }
            out->count++;
        }
    }
    if (out->count == 0) {
        st = WD_ERR(WD_ERR_UNSUPPORTED, "no usable cgroup v1 hierarchy");
        note(notes, nlen, "%s", wd_err_msg());
    }
out:
    if (st != WD_OK) {
        for (size_t i = 0; i < nmade; i++)
            if (made[i].created)
                rmdir(made[i].dir);
        out->count = 0;
    }
    return st;
}

/* ---- v2 ---------------------------------------------------------------------- */

/* Moves every process of dir into dir/warden-agent, so dir may enable
 * controllers for its children ("no internal processes"). */
static int v2_evacuate(const char *dir)
{
    char leaf[PATH_MAX], from[PATH_MAX + 16], to[PATH_MAX + 16];
    if (!join_path(leaf, sizeof leaf, dir, AGENT_LEAF))
        return ENAMETOOLONG;
    int e = mkdir_ok(leaf, NULL);
    if (e != 0)
        return e;
    snprintf(from, sizeof from, "%s/cgroup.procs", dir);
    snprintf(to, sizeof to, "%s/cgroup.procs", leaf);
    char *text = NULL;
    if (wd_read_file(from, 1u << 20, &text, NULL) != WD_OK)
        return EIO;
    e = 0;
    for (char *p = text; p && *p;) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        if (*p != '\0') {
            int we = write_ctl(to, p);
            if (we != 0 && we != ESRCH)
                e = we;
        }
        p = nl ? nl + 1 : NULL;
    }
    free(text);
    return e;
}

/* Enables controller c for the children of dir. */
static int v2_enable(const char *dir, const char *ctl, bool may_evacuate)
{
    char path[PATH_MAX + 32], val[32];
    snprintf(path, sizeof path, "%s/cgroup.subtree_control", dir);
    snprintf(val, sizeof val, "+%s", ctl);
    int e = write_ctl(path, val);
    if (e == EBUSY && may_evacuate && v2_evacuate(dir) == 0)
        e = write_ctl(path, val);
    return e;
}

static wd_status setup_v2(const layout *l, const char *name, uint64_t mem, uint32_t pids,
                          uint32_t cpu, wd_cgroup_procs *out, char *notes, size_t nlen)
{
    wd_status st = WD_OK;
    char path[PATH_MAX + 64], parent[PATH_MAX], dir[PATH_MAX], val[64];
    char *avail = NULL;
    bool created = false;
    out->count = 0;
    bool required[C_CPUACCT] = {mem > 0, pids > 0, cpu > 0};
    bool use[C_CPUACCT] = {false, false, false};

    snprintf(path, sizeof path, "%s/cgroup.controllers", l->base);
    if ((st = wd_read_file(path, 4096, &avail, NULL)) != WD_OK) {
        st = WD_ERR(WD_ERR_UNSUPPORTED, "cgroup v2: cannot read %s", path);
        note(notes, nlen, "%s", wd_err_msg());
        goto out;
    }
    char *nl = strchr(avail, '\n');
    if (nl)
        *nl = '\0';
    bool at_root = strcmp(l->base, CG_ROOT) == 0;
    for (int c = 0; c < C_CPUACCT; c++) {
        if (!has_item(avail, ctl_names[c], ' ')) {
            if (required[c]) {
                st = WD_ERR(WD_ERR_UNSUPPORTED, "cgroup v2 %s controller not available in %s "
                                                "(cgroup.controllers: \"%s\")",
                            ctl_names[c], l->base, avail);
                note(notes, nlen, "%s", wd_err_msg());
                goto out;
            }
            note(notes, nlen, "cgroup v2 %s controller not available: skipped", ctl_names[c]);
            continue;
        }
        int e = v2_enable(l->base, ctl_names[c], !at_root);
        if (e != 0) {
            if (required[c]) {
                st = WD_ERR(WD_ERR_UNSUPPORTED, "cgroup v2 %s controller not writable: enable in "
                                                "%s: %s",
                            ctl_names[c], l->base, strerror(e));
                note(notes, nlen, "%s", wd_err_msg());
                goto out;
            }
            note(notes, nlen, "cgroup v2 %s: enable in %s: %s", ctl_names[c], l->base,
                 strerror(e));
            continue;
        }
        use[c] = true;
    }
    if (!join_path(parent, sizeof parent, l->base, "warden") ||
        !join_path(dir, sizeof dir, parent, name)) {
        st = WD_ERR(WD_ERR_INVALID, "cgroup path too long under %s", l->base);
        goto out;
    }
    int e = mkdir_ok(parent, NULL);
    if (e != 0) {
        st = WD_ERR(WD_ERR_UNSUPPORTED, "cgroup v2 not writable: mkdir %s: %s", parent,
                    strerror(e));
        note(notes, nlen, "%s", wd_err_msg());
        goto out;
    }
    for (int c = 0; c < C_CPUACCT; c++) {
        if (!use[c])
            continue;
        if ((e = v2_enable(parent, ctl_names[c], false)) != 0) {
            if (required[c]) {
                st = WD_ERR(WD_ERR_UNSUPPORTED, "cgroup v2 %s controller not writable: enable in "
                                                "%s: %s",
                            ctl_names[c], parent, strerror(e));
                note(notes, nlen, "%s", wd_err_msg());
                goto out;
            }
            use[c] = false;
        }
    }
    if ((e = mkdir_ok(dir, &created)) != 0) {
        st = WD_ERR(WD_ERR_UNSUPPORTED, "cgroup v2 not writable: mkdir %s: %s", dir, strerror(e));
        note(notes, nlen, "%s", wd_err_msg());
        goto out;
    }
    struct {
        int c;
        const char *file;
        char val[64];
    } w[4];
    int nw = 0;
    if (use[C_MEMORY]) {
        w[nw].c = C_MEMORY;
        w[nw].file = "memory.max";
        snprintf(w[nw++].val, sizeof w[0].val, mem ? "%llu" : "max", (unsigned long long)mem);
        w[nw].c = -1; /* best effort: no swap beyond the limit */
        w[nw].file = "memory.swap.max";
        snprintf(w[nw++].val, sizeof w[0].val, mem ? "0" : "max");
    }
    if (use[C_PIDS]) {
        w[nw].c = C_PIDS;
        w[nw].file = "pids.max";
        snprintf(w[nw++].val, sizeof w[0].val, pids ? "%u" : "max", (unsigned)pids);
    }
    if (use[C_CPU]) {
        w[nw].c = C_CPU;
        w[nw].file = "cpu.max";
        if (cpu)
            snprintf(w[nw++].val, sizeof w[0].val, "%llu 100000",
                     (unsigned long long)cpu * 1000ull);
        else
            snprintf(w[nw++].val, sizeof w[0].val, "max 100000");
    }
    for (int i = 0; i < nw; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, w[i].file);
        snprintf(val, sizeof val, "%s", w[i].val);
        e = write_ctl(path, val);
        if (e != 0 && w[i].c >= 0 && required[w[i].c]) {
            st = WD_ERR(WD_ERR_UNSUPPORTED, "cgroup v2 %s controller not writable: %s: %s",
                        ctl_names[w[i].c], path, strerror(e));
            note(notes, nlen, "%s", wd_err_msg());
            goto out;
        }
    }
    int n = snprintf(out->path[0], WD_CGROUP_PATH_MAX, "%s/cgroup.procs", dir);
    if (n < 0 || n >= WD_CGROUP_PATH_MAX) {
        st = WD_ERR(WD_ERR_INVALID, "cgroup path too long: %s", dir);
        goto out;
    }
    out->count = 1;
out:
    if (st != WD_OK && created)
        rmdir(dir);
    free(avail);
    return st;
}

/* ---- public ------------------------------------------------------------------ */

wd_status wd_cgroup_setup(const char *name, uint64_t memory_bytes, uint32_t pids,
                          uint32_t cpu_percent, wd_cgroup_procs *out, char *notes,
                          size_t notes_len)
{
    out->count = 0;
    if (notes && notes_len)
        notes[0] = '\0';
    if (!valid_name(name))
        return WD_ERR(WD_ERR_INVALID, "bad cgroup name \"%s\"", name);
    layout l;
    wd_status st = detect(&l);
    if (st != WD_OK) {
        note(notes, notes_len, "%s", wd_err_msg());
        return st;
    }
    if (l.v2)
        return setup_v2(&l, name, memory_bytes, pids, cpu_percent, out, notes, notes_len);
    return setup_v1(&l, name, memory_bytes, pids, cpu_percent, out, notes, notes_len);
}

/* The game's directories: one on v2, one per distinct v1 mount. */
static size_t game_dirs(const layout *l, const char *name, char dirs[C_COUNT][PATH_MAX],
                        int ctl[C_COUNT])
{
    size_t n = 0;
    if (l->v2) {
        int k = snprintf(dirs[0], PATH_MAX, "%s/warden/%s", l->base, name);
        ctl[0] = -1;
        return k >= 0 && k < PATH_MAX ? 1 : 0;
    }
    for (int c = 0; c < C_COUNT; c++) {
        if (l->v1[c][0] == '\0')
            continue;
        char d[PATH_MAX];
        int k = snprintf(d, sizeof d, "%s/warden/%s", l->v1[c], name);
        if (k < 0 || (size_t)k >= sizeof d)
            continue;
        bool dup = false;
        for (size_t i = 0; i < n; i++)
            dup = dup || strcmp(dirs[i], d) == 0;
        if (dup)
            continue;
        memcpy(dirs[n], d, (size_t)k + 1);
        ctl[n++] = c;
    }
    return n;
}

wd_status wd_cgroup_remove(const char *name)
{
    if (!valid_name(name))
        return WD_ERR(WD_ERR_INVALID, "bad cgroup name \"%s\"", name);
    layout l;
    wd_status st = detect(&l);
    if (st != WD_OK)
        return st;
    char dirs[C_COUNT][PATH_MAX];
    int ctl[C_COUNT];
    size_t n = game_dirs(&l, name, dirs, ctl);
    st = WD_OK;
    for (size_t i = 0; i < n; i++) {
        if (rmdir(dirs[i]) == 0 || errno == ENOENT)
            continue;
        if (errno == EBUSY)
            st = WD_ERR(WD_ERR_STATE, "cgroup %s still has processes", dirs[i]);
        else
            st = WD_ERR(WD_ERR_IO, "rmdir %s: %s", dirs[i], strerror(errno));
    }
    return st;
}

wd_status wd_cgroup_probe(char *notes, size_t notes_len)
{
    char name[32];
    snprintf(name, sizeof name, "probe-%d", (int)getpid());
    wd_cgroup_procs procs;
    wd_status st = wd_cgroup_setup(name, 64u << 20, 64, 50, &procs, notes, notes_len);
    if (st != WD_OK)
        return st;
    if (wd_cgroup_remove(name) != WD_OK)
        note(notes, notes_len, "could not remove probe cgroup %s: %s", name, wd_err_msg());
    return WD_OK;
}

/* First number in a control file, or after "key " in a flat keyed file. */
static bool read_u64(const char *path, const char *key, uint64_t *out)
{
    char *text = NULL;
    if (wd_read_file(path, 1u << 20, &text, NULL) != WD_OK)
        return false;
    const char *p = text;
    if (key != NULL) {
        size_t klen = strlen(key);
        p = NULL;
        for (const char *line = text; line && *line;) {
            if (strncmp(line, key, klen) == 0 && line[klen] == ' ') {
                p = line + klen + 1;
                break;
            }
            line = strchr(line, '\n');
            if (line)
                line++;
        }
    }
    bool ok = false;
    if (p != NULL && *p >= '0' && *p <= '9') {
        errno = 0;
        char *end;
        unsigned long long v = strtoull(p, &end, 10);
        ok = errno == 0 && end != p;
        if (ok)
            *out = v;
    }
    free(text);
    return ok;
}

wd_status wd_cgroup_stats(const char *name, uint64_t *mem_bytes, uint64_t *cpu_usec)
{
    *mem_bytes = UINT64_MAX;
    *cpu_usec = UINT64_MAX;
    if (!valid_name(name))
        return WD_ERR(WD_ERR_INVALID, "bad cgroup name \"%s\"", name);
    layout l;
    wd_status st = detect(&l);
    if (st != WD_OK)
        return st;
    char dirs[C_COUNT][PATH_MAX];
    int ctl[C_COUNT];
    size_t n = game_dirs(&l, name, dirs, ctl);
    bool any = false;
    char path[PATH_MAX + 64];
    for (size_t i = 0; i < n; i++) {
        struct stat sb;
        if (stat(dirs[i], &sb) != 0)
            continue;
        any = true;
        uint64_t v;
        if (l.v2) {
            snprintf(path, sizeof path, "%s/memory.current", dirs[i]);
            if (read_u64(path, NULL, &v))
                *mem_bytes = v;
            snprintf(path, sizeof path, "%s/cpu.stat", dirs[i]);
            if (read_u64(path, "usage_usec", &v))
                *cpu_usec = v;
            continue;
        }
        snprintf(path, sizeof path, "%s/memory.usage_in_bytes", dirs[i]);
        if (read_u64(path, NULL, &v))
            *mem_bytes = v;
        snprintf(path, sizeof path, "%s/cpuacct.usage", dirs[i]);
        if (read_u64(path, NULL, &v))
            *cpu_usec = v / 1000;
    }
    if (!any)
        return WD_ERR(WD_ERR_NOT_FOUND, "no cgroup warden/%s", name);
    return WD_OK;
}
