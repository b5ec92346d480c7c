/* Backups of a server directory (see backup.h and docs/backups.md).
 *
 * The agent runs as root on most hosts while the directory it archives
 * belongs to the game: everything in it is hostile. Hence the walk below is
 * done with file descriptors (openat with O_NOFOLLOW, then fstat of the open
 * file) rather than libarchive's disk reader, so that a file swapped for a
 * symlink between the listing and the open is skipped instead of read; and
 * a restore checks the whole archive before it touches anything. */
#include "backup.h"

#include <archive.h>
#include <archive_entry.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <openssl/evp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "log.h"
#include "procstat.h"
#include "util.h"

#define MAX_DEPTH 128
#define MAX_REL 4000 /* bytes of a path inside the archive */
#define BLOCK (64 * 1024)

bool wd_backup_id_norm(const char *id, char out[37])
{
    if (!wd_uuid_valid(id)) /* (also checks NULL and the length) */
        return false;
    for (size_t i = 0; i < WD_UUID_LEN; i++)
        out[i] = (char)tolower((unsigned char)id[i]);
    out[WD_UUID_LEN] = '\0';
    return true;
}

/* libarchive may have no message to give; never pass NULL to %s. */
static const char *aerr(struct archive *a)
{
    const char *m = archive_error_string(a);
    return m ? m : "unknown error";
}

/* The one place that knows a backup's file names: DIR/<id><ext>, ext being
 * ".tar.gz" or ".sha256". False if the path does not fit in buf. */
static bool backup_path(const char *dir, const char *id, const char *ext, char *buf, size_t n)
{
    int len = snprintf(buf, n, "%s/%s%s", dir, id, ext);
    return len >= 0 && (size_t)len < n;
}

/* The sha256 recorded for a backup into out[65]; false (out = "") if there
 * is none or it is not 64 hex digits. */
static bool read_sum(const char *dir, const char *id, char out[65])
{
    char path[1400], *text = NULL;
    out[0] = '\0';
    if (!backup_path(dir, id, ".sha256", path, sizeof path) ||
        wd_read_file(path, 4096, &text, NULL) != WD_OK)
        return false;
    if (strspn(text, "0123456789abcdef") >= 64) {
        memcpy(out, text, 64);
        out[64] = '\0';
    }
    free(text);
    return out[0] != '\0';
}

bool wd_backup_exists(const char *dir, const char *id)
{
    char path[1400];
    struct stat sb;
    return backup_path(dir, id, ".tar.gz", path, sizeof path) && lstat(path, &sb) == 0;
}

static wd_status fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return WD_ERR(WD_ERR_IO, "open %s: %s", dir, strerror(errno));
    int rc = fsync(fd);
    close(fd);
    return rc == 0 ? WD_OK : WD_ERR(WD_ERR_IO, "fsync %s: %s", dir, strerror(errno));
}

/* ---- create ------------------------------------------------------------ */

/* Where libarchive's output goes: the temp file, hashed and counted. */
typedef struct {
    int fd;
    EVP_MD_CTX *md;
    uint64_t size;
} sink;

static la_ssize_t sink_write(struct archive *a, void *ud, const void *buf, size_t len)
{
    sink *k = ud;
    const char *p = buf;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(k->fd, p, left);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            archive_set_error(a, errno, "write: %s", strerror(errno));
            return -1;
        }
        p += w;
        left -= (size_t)w;
    }
    if (EVP_DigestUpdate(k->md, buf, len) != 1) {
        archive_set_error(a, EIO, "sha256 update failed");
        return -1;
    }
    k->size += len;
    return (la_ssize_t)len;
}

/* An ignore pattern as given, prepared once per create: leading '/'
 * dropped, trailing '/' turned into dir_only. */
typedef struct {
    char *pat;
    bool dir_only, has_slash;
} ignore_pat;

typedef struct {
    const wd_backup_create_cfg *cfg;
    const ignore_pat *ign;
    size_t n_ign;
    struct archive *a;
    struct archive_entry *e;
    char rel[MAX_REL + 256];
    char *buf;
    wd_status st;
} walker;

static bool cancelled(const wd_backup_create_cfg *c)
{
    return (c->cancel && atomic_load(c->cancel)) || (c->cancel2 && atomic_load(c->cancel2));
}

static void free_ignores(ignore_pat *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].pat);
    free(v);
}

/* Prepares c's patterns into *out (free_ignores); empty ones are dropped. */
static wd_status prepare_ignores(const wd_backup_create_cfg *c, ignore_pat **out, size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    if (c->n_ignore == 0)
        return WD_OK;
    ignore_pat *v = calloc(c->n_ignore, sizeof *v);
    if (v == NULL)
        return WD_ERR(WD_ERR_NOMEM, "out of memory");
    size_t n = 0;
    for (size_t i = 0; i < c->n_ignore; i++) {
        const char *p = c->ignore[i];
        while (*p == '/')
            p++;
        size_t len = strnlen(p, WD_BACKUP_MAX_PATTERN);
        bool dir_only = false;
        while (len > 0 && p[len - 1] == '/') {
            len--;
            dir_only = true;
        }
        if (len == 0)
            continue;
        if ((v[n].pat = strndup(p, len)) == NULL) {
            free_ignores(v, n);
            return WD_ERR(WD_ERR_NOMEM, "out of memory");
        }
        v[n].dir_only = dir_only;
        v[n].has_slash = strchr(v[n].pat, '/') != NULL;
        n++;
    }
    *out = v;
    *n_out = n;
    return WD_OK;
}

/* gitignore-like: a pattern without '/' matches a name at any depth, one
 * with '/' matches the path from the server dir; a trailing '/' matches
 * directories only. An ignored directory is not descended into. */
static bool ignored(const walker *w, const char *rel, bool is_dir)
{
    const char *base = strrchr(rel, '/');
    base = base ? base + 1 : rel;
    for (size_t i = 0; i < w->n_ign; i++) {
        const ignore_pat *g = &w->ign[i];
        if (g->dir_only && !is_dir)
            continue;
        if (fnmatch(g->pat, rel, FNM_PATHNAME) == 0)
            return true;
        if (!g->has_slash && fnmatch(g->pat, base, 0) == 0)
            return true;
    }
    return false;
}

static wd_status write_header(walker *w)
{
    int r = archive_write_header(w->a, w->e);
    if (r < ARCHIVE_WARN)
        return WD_ERR(WD_ERR_IO, "archive %s: %s", w->rel, aerr(w->a));
    return WD_OK;
}

static void fill_entry(walker *w, const struct stat *sb, unsigned type)
{
    archive_entry_clear(w->e);
    archive_entry_set_pathname(w->e, w->rel);
    archive_entry_set_filetype(w->e, type);
    archive_entry_set_perm(w->e, sb->st_mode & 07777);
    archive_entry_set_uid(w->e, sb->st_uid);
    archive_entry_set_gid(w->e, sb->st_gid);
    archive_entry_set_mtime(w->e, sb->st_mtim.tv_sec, sb->st_mtim.tv_nsec);
}

static wd_status add_file(walker *w, int dfd, const char *name, const struct stat *listed)
{
    /* O_NONBLOCK: should it have become a FIFO meanwhile, open must not hang. */
    int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ELOOP)
            return WD_OK; /* gone, or swapped for a symlink: skip */
        return WD_ERR(WD_ERR_IO, "open %s: %s", w->rel, strerror(errno));
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_ino != listed->st_ino ||
        sb.st_dev != listed->st_dev) {
        close(fd);
        return WD_OK;
    }
    fill_entry(w, &sb, AE_IFREG);
    archive_entry_set_size(w->e, sb.st_size);
    wd_status st = write_header(w);
    int64_t left = sb.st_size;
    while (st == WD_OK && left > 0) {
        if (cancelled(w->cfg)) {
            st = WD_ERR(WD_ERR_CLOSED, "backup cancelled");
            break;
        }
        ssize_t n = read(fd, w->buf, (size_t)(left < BLOCK ? left : BLOCK));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            st = WD_ERR(WD_ERR_IO, "read %s: %s", w->rel, strerror(errno));
            break;
        }
        if (n == 0)
            break; /* shrank while we read: libarchive pads the entry */
        if (archive_write_data(w->a, w->buf, (size_t)n) < 0)
            st = WD_ERR(WD_ERR_IO, "archive %s: %s", w->rel, aerr(w->a));
        left -= n;
    }
    close(fd);
    return st;
}

static wd_status walk(walker *w, int dfd, size_t rel_len, int depth);

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static wd_status add_one(walker *w, int dfd, const char *name, size_t rel_len, int depth)
{
    int n = snprintf(w->rel + rel_len, sizeof w->rel - rel_len, "%s%s", rel_len ? "/" : "", name);
    if (n < 0 || rel_len + (size_t)n > MAX_REL) {
        w->rel[rel_len] = '\0';
        wd_warn("backup: skipping an entry under '%s': path longer than %d bytes", w->rel, MAX_REL);
        return WD_OK;
    }
    size_t len = rel_len + (size_t)n;
    struct stat sb;
    if (fstatat(dfd, name, &sb, AT_SYMLINK_NOFOLLOW) != 0)
        return errno == ENOENT ? WD_OK : WD_ERR(WD_ERR_IO, "stat %s: %s", w->rel, strerror(errno));
    if (ignored(w, w->rel, S_ISDIR(sb.st_mode)))
        return WD_OK;
    if (S_ISREG(sb.st_mode))
        return add_file(w, dfd, name, &sb);
    if (S_ISLNK(sb.st_mode)) {
        char target[PATH_MAX];
        ssize_t t = readlinkat(dfd, name, target, sizeof target - 1);
        if (t < 0)
            return errno == ENOENT ? WD_OK
                                   : WD_ERR(WD_ERR_IO, "readlink %s: %s", w->rel, strerror(errno));
        target[t] = '\0';
        fill_entry(w, &sb, AE_IFLNK);
        archive_entry_set_symlink(w->e, target);
        return write_header(w);
    }
    if (!S_ISDIR(sb.st_mode))
        return WD_OK; /* sockets, FIFOs, devices: not game data */
    if (depth >= MAX_DEPTH) {
        wd_warn("backup: not descending into %s: deeper than %d levels", w->rel, MAX_DEPTH);
        return WD_OK;
    }
    int sub = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sub < 0)
        return errno == ENOENT || errno == ELOOP || errno == ENOTDIR
                   ? WD_OK
                   : WD_ERR(WD_ERR_IO, "open %s: %s", w->rel, strerror(errno));
    struct stat now;
    if (fstat(sub, &now) != 0 || now.st_ino != sb.st_ino || now.st_dev != sb.st_dev) {
        close(sub);
        return WD_OK;
    }
    fill_entry(w, &now, AE_IFDIR);
    wd_status st = write_header(w);
    if (st != WD_OK) {
        close(sub);
        return st;
    }
    return walk(w, sub, len, depth + 1);
}

/* Archives the directory open at dfd (taken over) whose path in the
 * archive is w->rel[0..rel_len). Names are sorted: same tree, same order. */
static wd_status walk(walker *w, int dfd, size_t rel_len, int depth)
{
    DIR *d = fdopendir(dfd);
    if (d == NULL) {
        close(dfd);
        return WD_ERR(WD_ERR_IO, "list %s: %s", rel_len ? w->rel : ".", strerror(errno));
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    wd_status st = WD_OK;
    struct dirent *de;
    /* readdir returns NULL both at the end and on an error; only errno
     * tells them apart, and a listing cut short must not pass for a
     * complete backup. */
    for (;;) {
        errno = 0;
        if ((de = readdir(d)) == NULL) {
            if (errno != 0)
                st = WD_ERR(WD_ERR_IO, "list %s: %s", rel_len ? w->rel : ".", strerror(errno));
            break;
        }
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nn = realloc(names, cap * sizeof *nn);
            if (nn == NULL) {
                st = WD_ERR(WD_ERR_NOMEM, "out of memory");
                break;
            }
            names = nn;
        }
        if ((names[n] = strdup(de->d_name)) == NULL) {
            st = WD_ERR(WD_ERR_NOMEM, "out of memory");
            break;
        }
        n++;
    }
    if (n > 1)
        qsort(names, n, sizeof *names, cmp_names);
    for (size_t i = 0; i < n && st == WD_OK; i++) {
        if (cancelled(w->cfg))
            st = WD_ERR(WD_ERR_CLOSED, "backup cancelled");
        else
            st = add_one(w, dirfd(d), names[i], rel_len, depth);
        w->rel[rel_len] = '\0';
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    closedir(d);
    return st;
}

/* Leftovers of a create that crashed: never listed, removed on the next.
 * Best effort: a leftover harms nothing but disk space, so failing to list
 * the directory is a warning, not a reason to refuse the backup. */
static void remove_temps(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *de;
    for (;;) {
        errno = 0;
        if ((de = readdir(d)) == NULL) {
            if (errno != 0)
                wd_warn("backup: list %s: %s; leftover temp files not removed", dir,
                        strerror(errno));
            break;
        }
        size_t n = strlen(de->d_name);
        if (de->d_name[0] == '.' && n > 4 && strcmp(de->d_name + n - 4, ".tmp") == 0)
            unlinkat(dirfd(d), de->d_name, 0);
    }
    closedir(d);
}

/* Renames without replacing: an existing backup is never overwritten. */
static int rename_noreplace(const char *from, const char *to)
{
    if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS)
        return -1;
    if (link(from, to) != 0) /* a filesystem without RENAME_NOREPLACE */
        return -1;
    unlink(from);
    return 0;
}

wd_status wd_backup_create(const wd_backup_create_cfg *cfg, uint64_t *size, char sha256[65])
{
    char final[1400], tmp[1400], sum_final[1400];
    wd_status st = WD_OK;
    struct archive *a = NULL;
    sink k = {.fd = -1};
    walker w = {.cfg = cfg};
    ignore_pat *ign = NULL;
    bool written = false;

    int tn = snprintf(tmp, sizeof tmp, "%s/.%s.tar.gz.tmp", cfg->backup_dir, cfg->backup_id);
    if (!backup_path(cfg->backup_dir, cfg->backup_id, ".tar.gz", final, sizeof final) ||
        !backup_path(cfg->backup_dir, cfg->backup_id, ".sha256", sum_final, sizeof sum_final) ||
        tn < 0 || (size_t)tn >= sizeof tmp)
        return WD_ERR(WD_ERR_INVALID, "backup dir path too long: %s", cfg->backup_dir);
    if ((st = wd_mkdir_p(cfg->backup_dir, 0700)) != WD_OK)
        return st;
    remove_temps(cfg->backup_dir);
    /* (An existing backup is refused by rename_noreplace below; the server
     * actor checks first, so that is only reached on a race.) */
    if ((st = prepare_ignores(cfg, &ign, &w.n_ign)) != WD_OK)
        return st;
    w.ign = ign;

    int root = open(cfg->server_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (root < 0) {
        free_ignores(ign, w.n_ign);
        return WD_ERR(errno == ENOENT ? WD_ERR_NOT_FOUND : WD_ERR_IO, "open %s: %s",
                      cfg->server_dir, strerror(errno));
    }
    k.fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (k.fd < 0) {
        close(root);
        free_ignores(ign, w.n_ign);
        return WD_ERR(WD_ERR_IO, "create %s: %s", tmp, strerror(errno));
    }
    k.md = EVP_MD_CTX_new();
    w.buf = malloc(BLOCK);
    w.e = archive_entry_new();
    a = archive_write_new();
    if (k.md == NULL || w.buf == NULL || w.e == NULL || a == NULL ||
        EVP_DigestInit_ex(k.md, EVP_sha256(), NULL) != 1) {
        close(root);
        st = WD_ERR(WD_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (archive_write_add_filter_gzip(a) != ARCHIVE_OK ||
        archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
        archive_write_open2(a, &k, NULL, sink_write, NULL, NULL) != ARCHIVE_OK) {
        close(root);
        st = WD_ERR(WD_ERR_INTERNAL, "libarchive: %s", aerr(a));
        goto out;
    }
    w.a = a;
    w.rel[0] = '\0';
    if ((st = walk(&w, root, 0, 0)) != WD_OK) /* closes root */
        goto out;
    if (archive_write_close(a) != ARCHIVE_OK) {
        st = WD_ERR(WD_ERR_IO, "finish %s: %s", tmp, aerr(a));
        goto out;
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    if (EVP_DigestFinal_ex(k.md, md, &mdlen) != 1) {
        st = WD_ERR(WD_ERR_INTERNAL, "backup %s: sha256 failed", cfg->backup_id);
        goto out;
    }
    wd_hex(md, mdlen, sha256);
    *size = k.size;
    if (fsync(k.fd) != 0) {
        st = WD_ERR(WD_ERR_IO, "fsync %s: %s", tmp, strerror(errno));
        goto out;
    }
    close(k.fd);
    k.fd = -1;
    if (rename_noreplace(tmp, final) != 0) {
        st = errno == EEXIST ? WD_ERR(WD_ERR_EXISTS, "backup %s exists already", cfg->backup_id)
                             : WD_ERR(WD_ERR_IO, "rename %s: %s", tmp, strerror(errno));
        goto out;
    }
    /* Only now that the id is ours may its .sha256 be (re)written: before,
     * a race could replace the checksum of someone else's archive. In
     * sha256sum's format, so `sha256sum -c` checks a backup by hand. A
     * backup without its checksum would restore unverified, so failing to
     * record it fails the create and takes the archive back. */
    char line[200];
    int n = snprintf(line, sizeof line, "%s  %s.tar.gz\n", sha256, cfg->backup_id);
    if ((st = wd_write_file_atomic(sum_final, line, (size_t)n, 0600)) != WD_OK) {
        unlink(final);
        goto out;
    }
    written = true;
    fsync_dir(cfg->backup_dir);
out:
    if (a)
        archive_write_free(a);
    archive_entry_free(w.e);
    free(w.buf);
    EVP_MD_CTX_free(k.md);
    if (k.fd >= 0)
        close(k.fd);
    free_ignores(ign, w.n_ign);
    if (!written)
        unlink(tmp);
    return st;
}

/* ---- restore ----------------------------------------------------------- */

/* Archive input: the backup file, hashed as it is read (first pass). */
typedef struct {
    int fd;
    EVP_MD_CTX *md; /* NULL: no hashing */
    bool md_failed; /* an EVP_DigestUpdate failed: the hash is worthless */
    char *buf;
} source;

static la_ssize_t source_read(struct archive *a, void *ud, const void **out)
{
    source *s = ud;
    for (;;) {
        ssize_t n = read(s->fd, s->buf, BLOCK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            if (a)
                archive_set_error(a, errno, "read: %s", strerror(errno));
            return -1;
        }
        if (s->md && n > 0 && EVP_DigestUpdate(s->md, s->buf, (size_t)n) != 1) {
            s->md_failed = true;
            if (a)
                archive_set_error(a, EIO, "sha256 update failed");
            return -1;
        }
        *out = s->buf;
        return n;
    }
}

enum { ENTRY_OK, ENTRY_SKIP, ENTRY_ROOT, ENTRY_UNSAFE };

/* Classifies an entry and normalizes its path into out ("./a" -> "a"). */
static int check_entry(struct archive_entry *e, char *out, size_t outsz, const char **why)
{
    const char *p = archive_entry_pathname(e);
    if (p == NULL) {
        *why = "a path that cannot be read";
        return ENTRY_UNSAFE;
    }
    if (*p == '/') {
        *why = "an absolute path";
        return ENTRY_UNSAFE;
    }
    while (p[0] == '.' && p[1] == '/')
        for (p += 2; *p == '/'; p++)
            ;
    size_t n = strlen(p);
    while (n > 0 && p[n - 1] == '/')
        n--;
    if (n == 0 || (n == 1 && p[0] == '.'))
        return ENTRY_ROOT;
    if (n >= outsz || n > MAX_REL) {
        *why = "a path that is too long";
        return ENTRY_UNSAFE;
    }
    memcpy(out, p, n);
    out[n] = '\0';
    for (const char *c = out; *c;) {
        size_t len = strcspn(c, "/");
        if (len == 2 && c[0] == '.' && c[1] == '.') {
            *why = "a '..' component";
            return ENTRY_UNSAFE;
        }
        c += len;
        while (*c == '/')
            c++;
    }
    unsigned type = archive_entry_filetype(e);
    if (archive_entry_hardlink(e) != NULL ||
        (type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK))
        return ENTRY_SKIP;
    if (type == AE_IFLNK && archive_entry_symlink(e) == NULL) {
        *why = "a symlink without a target";
        return ENTRY_UNSAFE;
    }
    return ENTRY_OK;
}

static wd_status open_reader(source *src, struct archive **out)
{
    struct archive *r = archive_read_new();
    *out = NULL;
    if (r == NULL)
        return WD_ERR(WD_ERR_NOMEM, "out of memory");
    archive_read_support_filter_gzip(r);
    archive_read_support_format_tar(r);
    if (archive_read_open(r, src, NULL, source_read, NULL) != ARCHIVE_OK) {
        wd_status st = WD_ERR(WD_ERR_INVALID, "the backup is not a .tar.gz archive: %s", aerr(r));
        archive_read_free(r);
        return st;
    }
    *out = r;
    return WD_OK;
}

/* First pass: every entry safe, the archive complete, the checksum right. */
static wd_status check_archive(const wd_backup_restore_cfg *cfg, source *src, uint64_t *total,
                               size_t *skipped)
{
    char expect[65];
    read_sum(cfg->backup_dir, cfg->backup_id, expect); /* "" if none: not checked */
    src->md = EVP_MD_CTX_new();
    if (src->md == NULL || EVP_DigestInit_ex(src->md, EVP_sha256(), NULL) != 1)
        return WD_ERR(WD_ERR_NOMEM, "out of memory");
    struct archive *r;
    wd_status st = open_reader(src, &r);
    if (st != WD_OK)
        return st;
    struct archive_entry *e;
    char rel[MAX_REL + 1];
    for (;;) {
        int rc = archive_read_next_header(r, &e);
        if (rc == ARCHIVE_EOF)
            break;
        if (rc < ARCHIVE_WARN) {
            st = WD_ERR(WD_ERR_INVALID, "backup %s is damaged: %s", cfg->backup_id, aerr(r));
            break;
        }
        const char *why = "";
        int kind = check_entry(e, rel, sizeof rel, &why);
        if (kind == ENTRY_UNSAFE) {
            const char *name = archive_entry_pathname(e);
            st = WD_ERR(WD_ERR_INVALID,
                        "backup %s holds an unsafe entry ('%.200s': %s); "
                        "refused, nothing was changed",
                        cfg->backup_id, name ? name : "?", why);
            break;
        }
        if (kind == ENTRY_SKIP)
            (*skipped)++;
        /* Saturating: a hostile archive may declare (sparse) sizes that
         * would wrap the sum back to something small. */
        if (kind == ENTRY_OK && archive_entry_filetype(e) == AE_IFREG &&
            archive_entry_size(e) > 0 &&
            __builtin_add_overflow(*total, (uint64_t)archive_entry_size(e), total))
            *total = UINT64_MAX;
        if (archive_read_data_skip(r) < ARCHIVE_WARN) {
            st = WD_ERR(WD_ERR_INVALID, "backup %s is damaged: %s", cfg->backup_id, aerr(r));
            break;
        }
    }
    archive_read_free(r);
    if (src->md_failed)
        return WD_ERR(WD_ERR_INTERNAL, "backup %s: sha256 failed", cfg->backup_id);
    if (st != WD_OK || expect[0] == '\0')
        return st;
    /* Hash whatever libarchive did not need to read (end padding). */
    const void *dummy;
    while (source_read(NULL, src, &dummy) > 0)
        ;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    char got[65];
    if (src->md_failed || EVP_DigestFinal_ex(src->md, md, &mdlen) != 1)
        return WD_ERR(WD_ERR_INTERNAL, "backup %s: sha256 failed", cfg->backup_id);
    wd_hex(md, mdlen, got);
    if (strcmp(got, expect) != 0)
        return WD_ERR(WD_ERR_INVALID,
                      "backup %s is corrupt: its sha256 is %s, recorded %s; "
                      "nothing was changed",
                      cfg->backup_id, got, expect);
    return WD_OK;
}

/* Deletes everything inside dfd's directory (path is its name), never
 * following symlinks. */
static wd_status empty_dir(const char *path, int dfd)
{
    int fd = dup(dfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d == NULL) {
        if (fd >= 0)
            close(fd);
        return WD_ERR(WD_ERR_IO, "list %s: %s", path, strerror(errno));
    }
    rewinddir(d);
    wd_status st = WD_OK;
    struct dirent *de;
    while (st == WD_OK) {
        errno = 0;
        if ((de = readdir(d)) == NULL) {
            if (errno != 0) /* else a restore would land on files it was to replace */
                st = WD_ERR(WD_ERR_IO, "list %s: %s", path, strerror(errno));
            break;
        }
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char full[PATH_MAX + 300];
        snprintf(full, sizeof full, "%s/%s", path, de->d_name);
        st = wd_remove_tree(full);
    }
    closedir(d);
    return st;
}

/* Second pass, from inside the server dir (cwd): extract. */
static wd_status extract(const wd_backup_restore_cfg *cfg, source *src)
{
    struct archive *r;
    wd_status st = open_reader(src, &r);
    if (st != WD_OK)
        return st;
    struct archive *w = archive_write_disk_new();
    if (w == NULL) {
        archive_read_free(r);
        return WD_ERR(WD_ERR_NOMEM, "out of memory");
    }
    /* UNLINK: a file or symlink in the way is replaced, never written
     * through (a game may have planted a symlink where a directory was). */
    int flags = ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_UNLINK |
                ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS;
    if (cfg->uid >= 0)
        flags |= ARCHIVE_EXTRACT_OWNER;
    archive_write_disk_set_options(w, flags);
    size_t failed = 0;
    char first[400] = "";
    struct archive_entry *e;
    char rel[MAX_REL + 1];
    for (;;) {
        int rc = archive_read_next_header(r, &e);
        if (rc == ARCHIVE_EOF)
            break;
        if (rc < ARCHIVE_WARN) {
            st = WD_ERR(WD_ERR_IO, "backup %s: %s", cfg->backup_id, aerr(r));
            break;
        }
        const char *why = "";
        if (check_entry(e, rel, sizeof rel, &why) != ENTRY_OK)
            continue; /* (the first pass refused unsafe ones) */
        archive_entry_set_pathname(e, rel);
        /* Owned as the game's other files; no set-id bits from an archive. */
        archive_entry_set_perm(e, archive_entry_perm(e) & 0777);
        if (cfg->uid >= 0) {
            archive_entry_set_uid(e, cfg->uid);
            archive_entry_set_gid(e, cfg->gid);
        }
        archive_entry_set_uname(e, NULL);
        archive_entry_set_gname(e, NULL);
        rc = archive_write_header(w, e);
        if (rc >= ARCHIVE_WARN && archive_entry_size(e) > 0) {
            const void *blk;
            size_t len;
            la_int64_t off;
            int rr;
            while ((rr = archive_read_data_block(r, &blk, &len, &off)) == ARCHIVE_OK) {
                if (archive_write_data_block(w, blk, len, off) < ARCHIVE_WARN) {
                    rc = ARCHIVE_FAILED;
                    break;
                }
            }
            if (rr < ARCHIVE_WARN) {
                st = WD_ERR(WD_ERR_IO, "backup %s: %s", cfg->backup_id, aerr(r));
                break;
            }
        }
        if (archive_write_finish_entry(w) < ARCHIVE_WARN)
            rc = ARCHIVE_FAILED;
        if (rc < ARCHIVE_WARN) {
            if (failed++ == 0)
                snprintf(first, sizeof first, "%.200s: %.180s", rel, aerr(w));
        }
    }
    if (archive_write_close(w) < ARCHIVE_WARN && st == WD_OK && failed == 0)
        st = WD_ERR(WD_ERR_IO, "backup %s: %s", cfg->backup_id, aerr(w));
    archive_write_free(w);
    archive_read_free(r);
    if (st == WD_OK && failed)
        st = WD_ERR(WD_ERR_IO, "restore of %s incomplete: %zu entries failed (first: %s)",
                    cfg->backup_id, failed, first);
    return st;
}

wd_status wd_backup_restore(const wd_backup_restore_cfg *cfg, size_t *skipped)
{
    char path[1400];
    *skipped = 0;
    if (!backup_path(cfg->backup_dir, cfg->backup_id, ".tar.gz", path, sizeof path))
        return WD_ERR(WD_ERR_INVALID, "backup dir path too long: %s", cfg->backup_dir);
    source src = {.fd = -1};
    int dfd = -1;
    wd_status st = WD_OK;
    src.fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (src.fd < 0)
        return errno == ENOENT
                   ? WD_ERR(WD_ERR_NOT_FOUND, "no backup %s for this server", cfg->backup_id)
                   : WD_ERR(WD_ERR_IO, "open %s: %s", path, strerror(errno));
    if ((src.buf = malloc(BLOCK)) == NULL) {
        st = WD_ERR(WD_ERR_NOMEM, "out of memory");
        goto out;
    }
    uint64_t total = 0;
    if ((st = check_archive(cfg, &src, &total, skipped)) != WD_OK)
        goto out;
    EVP_MD_CTX_free(src.md);
    src.md = NULL;

    dfd = open(cfg->server_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0) {
        st = WD_ERR(WD_ERR_IO, "open %s: %s", cfg->server_dir, strerror(errno));
        goto out;
    }
    if (cfg->max_bytes && total > cfg->max_bytes) {
        st = WD_ERR(WD_ERR_FULL,
                    "backup %s expands to %llu bytes, over the server's disk "
                    "limit of %llu; nothing was changed",
                    cfg->backup_id, (unsigned long long)total, (unsigned long long)cfg->max_bytes);
        goto out;
    }
    struct statvfs vfs;
    if (fstatvfs(dfd, &vfs) == 0) {
        uint64_t avail = (uint64_t)vfs.f_bavail * vfs.f_frsize, in_use = 0;
        if (cfg->truncate)
            wd_dir_usage(cfg->server_dir, &in_use);
        if (total > avail + in_use) {
            st = WD_ERR(WD_ERR_FULL,
                        "backup %s expands to %llu bytes; only %llu are free; "
                        "nothing was changed",
                        cfg->backup_id, (unsigned long long)total,
                        (unsigned long long)(avail + in_use));
            goto out;
        }
    }
    /* libarchive resolves entry paths against the working directory, and
     * with SECURE_NOABSOLUTEPATHS they must stay relative: give this thread
     * a working directory of its own (CLONE_FS) and enter the server dir. */
    if (unshare(CLONE_FS) != 0) {
        st = WD_ERR(WD_ERR_UNSUPPORTED, "restore needs unshare(CLONE_FS): %s", strerror(errno));
        goto out;
    }
    if (cfg->truncate && (st = empty_dir(cfg->server_dir, dfd)) != WD_OK)
        goto out;
    if (fchdir(dfd) != 0) {
        st = WD_ERR(WD_ERR_IO, "enter %s: %s", cfg->server_dir, strerror(errno));
        goto out;
    }
    if (lseek(src.fd, 0, SEEK_SET) != 0) {
        st = WD_ERR(WD_ERR_IO, "rewind %s: %s", path, strerror(errno));
    } else {
        st = extract(cfg, &src);
    }
    if (chdir("/") != 0)
        wd_warn("restore: chdir /: %s", strerror(errno));
out:
    if (dfd >= 0)
        close(dfd);
    EVP_MD_CTX_free(src.md);
    free(src.buf);
    close(src.fd);
    return st;
}

/* ---- list, delete ------------------------------------------------------ */

static int cmp_info(const void *a, const void *b)
{
    const wd_backup_info *x = a, *y = b;
    if (x->created_unix != y->created_unix)
        return x->created_unix < y->created_unix ? -1 : 1;
    return strcmp(x->id, y->id);
}

wd_status wd_backup_list(const char *backup_dir, wd_backup_info **out, size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    DIR *d = opendir(backup_dir);
    if (d == NULL)
        return errno == ENOENT ? WD_OK
                               : WD_ERR(WD_ERR_IO, "list %s: %s", backup_dir, strerror(errno));
    wd_backup_info *v = NULL;
    size_t n = 0, cap = 0;
    wd_status st = WD_OK;
    struct dirent *de;
    for (;;) {
        errno = 0;
        if ((de = readdir(d)) == NULL) {
            if (errno != 0) /* a list cut short would pass for the whole */
                st = WD_ERR(WD_ERR_IO, "list %s: %s", backup_dir, strerror(errno));
            break;
        }
        size_t len = strlen(de->d_name);
        char id[37];
        if (len != WD_UUID_LEN + 7 || strcmp(de->d_name + WD_UUID_LEN, ".tar.gz") != 0)
            continue;
        memcpy(id, de->d_name, WD_UUID_LEN);
        id[WD_UUID_LEN] = '\0';
        char norm[37];
        if (!wd_backup_id_norm(id, norm) || strcmp(norm, id) != 0)
            continue;
        struct stat sb;
        if (fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(sb.st_mode))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            wd_backup_info *nv = realloc(v, cap * sizeof *nv);
            if (nv == NULL) {
                st = WD_ERR(WD_ERR_NOMEM, "out of memory");
                break;
            }
            v = nv;
        }
        wd_backup_info *b = &v[n++];
        memset(b, 0, sizeof *b);
        memcpy(b->id, id, sizeof b->id);
        b->size = (uint64_t)sb.st_size;
        b->created_unix = sb.st_mtim.tv_sec;
        read_sum(backup_dir, id, b->sha256);
    }
    closedir(d);
    if (st != WD_OK) {
        free(v);
        return st;
    }
    if (n > 1)
        qsort(v, n, sizeof *v, cmp_info);
    *out = v;
    *n_out = n;
    return WD_OK;
}

wd_status wd_backup_delete(const char *backup_dir, const char *backup_id)
{
    char path[1400];
    if (!backup_path(backup_dir, backup_id, ".tar.gz", path, sizeof path))
        return WD_ERR(WD_ERR_INVALID, "backup dir path too long: %s", backup_dir);
    if (unlink(path) != 0)
        return errno == ENOENT ? WD_ERR(WD_ERR_NOT_FOUND, "no backup %s for this server", backup_id)
                               : WD_ERR(WD_ERR_IO, "delete %s: %s", path, strerror(errno));
    if (backup_path(backup_dir, backup_id, ".sha256", path, sizeof path))
        unlink(path);
    /* No fsync of the directory: this runs on the server actor's thread,
     * and an unlink lost to a crash only brings the backup back, which
     * the user can delete again. */
    return WD_OK;
}
