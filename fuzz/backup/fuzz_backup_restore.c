/* libFuzzer driver for the agent's backup restore (agent/backup.c): the
 * input is written as a backup archive (<id>.tar.gz) and restored into a
 * server directory. A backup is the game's own files, so a hostile game
 * (or whoever can write the backups directory) controls every byte.
 *
 * Layout, made once in LLVMFuzzerInitialize under a fresh temp dir ROOT:
 *   ROOT/backups/<id>.tar.gz   the input (and, in some runs, its .sha256)
 *   ROOT/srv/                  the server dir; before each run it holds what
 *                              a game could have planted: planted ->
 *                              ../outside, abs -> ROOT/outside (symlinks),
 *                              keep (a file)
 *   ROOT/outside/sentinel      must never change
 * The run's mode comes from the input size: bit 0 asks for truncate, bit 1
 * writes the archive's correct sha256 next to it (restore then also checks
 * the checksum; without the side file it skips that).
 *
 * Invariants checked after every restore:
 *   - nothing outside ROOT/srv changed: ROOT, ROOT/outside and the sentinel
 *     keep their mtime and ctime (so no entry was created, renamed, chmod'ed,
 *     chown'ed or touched there), the sentinel its contents, and ROOT/backups
 *     holds only what this driver wrote;
 *   - a refused archive (WD_ERR_INVALID: unsafe entry, damage, checksum;
 *     WD_ERR_FULL: too big) changed nothing in ROOT/srv either ("checks the
 *     whole archive first", backup.h).
 * Between runs ROOT/srv is emptied (without following symlinks) and the
 * working directory, which restore changes, is put back. ROOT is removed
 * on a normal exit and kept after a crash. FUZZ_BACKUP_VERBOSE=1 prints
 * each restore's status (to check what a seed exercises).
 *
 * Mutating gzip'd bytes mostly makes bad gzip, so the custom mutator below
 * usually inflates the input, lets libFuzzer mutate the tar inside, fixes
 * up the tar header checksums (most of the time) and deflates it again;
 * now and then it mutates the compressed bytes as they are.
 * Build: clang -fsanitize=fuzzer,address,undefined (see ../CMakeLists.txt). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "backup.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed);

#define ID "0b0e4c52-3c1a-4f0e-9d2a-6f4b1c9e7a10"
#define SENTINEL "do not touch\n"
#define KEEP "the game's file\n"

static char root[64], backups[96], srv[96], outside[96], archive_path[192], sum_path[192];
static char abs_target[96];
static int cwd_fd = -1;
static struct stat root_st, outside_st, sentinel_st;
static bool verbose; /* FUZZ_BACKUP_VERBOSE set: say what each restore did */

static void die(const char *what)
{
    fprintf(stderr, "fuzz_backup_restore: %s: %s\n", what, strerror(errno));
    abort();
}

static void write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, data, len) != (ssize_t)len || close(fd) != 0)
        die(path);
}

static void plant(void)
{
    char p[160];
    snprintf(p, sizeof p, "%s/planted", srv);
    if (symlink("../outside", p) != 0)
        die(p);
    snprintf(p, sizeof p, "%s/abs", srv);
    if (symlink(abs_target, p) != 0)
        die(p);
    snprintf(p, sizeof p, "%s/keep", srv);
    write_file(p, KEEP, strlen(KEEP));
}

/* nftw's removal of srv's contents. As root (the usual fuzzing setup) modes
 * do not matter; otherwise make_writable() runs first. */
static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    if (ftw->level == 0)
        return 0; /* srv itself stays */
    if (remove(path) != 0)
        die(path);
    return 0;
}

static bool again;

static int chmod_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    if (flag == FTW_D || flag == FTW_DNR) {
        if ((sb->st_mode & 0700) != 0700 && chmod(path, 0700) != 0)
            die(path);
        if (flag == FTW_DNR)
            again = true; /* its contents were not seen: walk again */
    }
    return 0;
}

/* An archive may leave directories the agent's user cannot list or write
 * (mode 0 and the like); only root gets past that without a chmod. */
static void make_writable(void)
{
    if (geteuid() == 0)
        return;
    do {
        again = false;
        if (nftw(srv, chmod_one, 16, FTW_PHYS | FTW_MOUNT) != 0)
            die("nftw chmod");
    } while (again);
}

static void empty_srv(void)
{
    make_writable();
    if (nftw(srv, rm_one, 16, FTW_PHYS | FTW_DEPTH | FTW_MOUNT) != 0)
        die("nftw remove");
}

static int rm_any(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    remove(path);
    return 0;
}

/* On a normal exit ROOT goes; after a crash it stays, to be looked at. */
static void remove_root(void)
{
    empty_srv();
    nftw(root, rm_any, 16, FTW_PHYS | FTW_DEPTH | FTW_MOUNT);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(root, sizeof root, "%s/fuzz_backup.XXXXXX", tmp && strlen(tmp) < 32 ? tmp : "/tmp");
    if (mkdtemp(root) == NULL)
        die("mkdtemp");
    snprintf(backups, sizeof backups, "%s/backups", root);
    snprintf(srv, sizeof srv, "%s/srv", root);
    snprintf(outside, sizeof outside, "%s/outside", root);
    snprintf(abs_target, sizeof abs_target, "%s", outside);
    snprintf(archive_path, sizeof archive_path, "%s/%s.tar.gz", backups, ID);
    snprintf(sum_path, sizeof sum_path, "%s/%s.sha256", backups, ID);
    if (mkdir(backups, 0700) != 0 || mkdir(srv, 0700) != 0 || mkdir(outside, 0700) != 0)
        die("mkdir");
    char p[160];
    snprintf(p, sizeof p, "%s/sentinel", outside);
    write_file(p, SENTINEL, strlen(SENTINEL));
    if (stat(root, &root_st) != 0 || stat(outside, &outside_st) != 0 || lstat(p, &sentinel_st) != 0)
        die("stat");
    cwd_fd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (cwd_fd < 0)
        die("open .");
    atexit(remove_root);
    verbose = getenv("FUZZ_BACKUP_VERBOSE") != NULL;
    fprintf(stderr, "fuzz_backup_restore: working in %s\n", root);
    return 0;
}

static bool same_times(const struct stat *a, const struct stat *b)
{
    return a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
           a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec &&
           a->st_mode == b->st_mode && a->st_uid == b->st_uid && a->st_gid == b->st_gid &&
           a->st_ino == b->st_ino && a->st_size == b->st_size && a->st_nlink == b->st_nlink;
}

static void escaped(const char *what)
{
    fprintf(stderr, "fuzz_backup_restore: the restore changed %s\n", what);
    abort();
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* The names in dir (at most max), sorted; returns how many there are. */
static size_t list(const char *dir, char names[][64], size_t max)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        die(dir);
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (n < max)
            snprintf(names[n], 64, "%s", de->d_name);
        n++;
    }
    closedir(d);
    if (n <= max)
        qsort(names, n, sizeof names[0], cmp_name);
    return n;
}

static void check_outside(bool with_sum)
{
    struct stat sb;
    char names[4][64], p[160];
    if (stat(root, &sb) != 0 || !same_times(&sb, &root_st))
        escaped(root);
    if (list(root, names, 4) != 3 || strcmp(names[0], "backups") || strcmp(names[1], "outside") ||
        strcmp(names[2], "srv"))
        escaped("the entries of ROOT");
    if (stat(outside, &sb) != 0 || !same_times(&sb, &outside_st))
        escaped(outside);
    snprintf(p, sizeof p, "%s/sentinel", outside);
    if (lstat(p, &sb) != 0 || !same_times(&sb, &sentinel_st))
        escaped(p);
    char buf[64] = "";
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0)
        close(fd);
    if (n != (ssize_t)strlen(SENTINEL) || memcmp(buf, SENTINEL, (size_t)n) != 0)
        escaped(p);
    size_t k = list(backups, names, 4);
    bool ok = with_sum ? k == 2 && strcmp(names[0], ID ".sha256") == 0 &&
                             strcmp(names[1], ID ".tar.gz") == 0
                       : k == 1 && strcmp(names[0], ID ".tar.gz") == 0;
    if (!ok)
        escaped(backups);
}

/* After a refused restore srv must be as planted. */
static void check_unchanged(void)
{
    char names[4][64], p[160], target[128];
    if (list(srv, names, 4) != 3 || strcmp(names[0], "abs") || strcmp(names[1], "keep") ||
        strcmp(names[2], "planted"))
        escaped("the server dir although it refused the archive");
    snprintf(p, sizeof p, "%s/planted", srv);
    ssize_t n = readlink(p, target, sizeof target - 1);
    if (n != (ssize_t)strlen("../outside") || memcmp(target, "../outside", (size_t)n))
        escaped(p);
    snprintf(p, sizeof p, "%s/abs", srv);
    n = readlink(p, target, sizeof target - 1);
    if (n != (ssize_t)strlen(abs_target) || memcmp(target, abs_target, (size_t)n))
        escaped(p);
    snprintf(p, sizeof p, "%s/keep", srv);
    struct stat sb;
    if (lstat(p, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size != (off_t)strlen(KEEP))
        escaped(p);
}

static void write_sum(const uint8_t *data, size_t size)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    if (EVP_Digest(data, size, md, &mdlen, EVP_sha256(), NULL) != 1)
        abort();
    char line[160];
    int n = 0;
    for (unsigned i = 0; i < mdlen; i++)
        n += snprintf(line + n, sizeof line - (size_t)n, "%02x", md[i]);
    n += snprintf(line + n, sizeof line - (size_t)n, "  %s.tar.gz\n", ID);
    write_file(sum_path, line, (size_t)n);
}

/* ---- mutator: mutate the tar, not the gzip ------------------------------ */

#define TAR_CAP (1u << 20)

/* gunzips in[0..n) into out (at most cap bytes); -1 if it is not gzip. */
static long gunzip(const uint8_t *in, size_t n, uint8_t *out, size_t cap)
{
    z_stream z = {0};
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
        return -1;
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    int rc = inflate(&z, Z_FINISH);
    long got = (long)z.total_out;
    inflateEnd(&z);
    return rc == Z_STREAM_END ? got : -1;
}

/* gzips in[0..n) into out; 0 if it does not fit in cap. */
static size_t gzip(const uint8_t *in, size_t n, uint8_t *out, size_t cap)
{
    z_stream z = {0};
    if (deflateInit2(&z, 1, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return 0;
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    int rc = deflate(&z, Z_FINISH);
    size_t got = z.total_out;
    deflateEnd(&z);
    return rc == Z_STREAM_END ? got : 0;
}

/* Recomputes the checksum of every tar header, walking entry by entry by
 * their (octal) sizes, so that mutated headers get past libarchive's
 * checksum test and reach the code that judges paths and types. */
static void fix_tar_checksums(uint8_t *tar, size_t n)
{
    for (size_t off = 0; off + 512 <= n;) {
        uint8_t *h = tar + off;
        bool zero = true;
        for (size_t i = 0; i < 512 && zero; i++)
            zero = h[i] == 0;
        if (zero) {
            off += 512;
            continue;
        }
        unsigned sum = 0;
        for (size_t i = 0; i < 512; i++)
            sum += i >= 148 && i < 156 ? ' ' : h[i];
        snprintf((char *)h + 148, 8, "%06o", sum & 0777777);
        h[155] = ' ';
        unsigned long long size = 0;
        for (size_t i = 124; i < 136 && h[i] >= '0' && h[i] <= '7'; i++)
            size = size * 8 + (unsigned)(h[i] - '0');
        if (size > n)
            break;
        off += 512 + (size + 511) / 512 * 512;
    }
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
    static uint8_t *tar, *gz;
    if (tar == NULL && ((tar = malloc(TAR_CAP)) == NULL || (gz = malloc(TAR_CAP)) == NULL))
        abort();
    long n = seed % 8 == 0 ? -1 : gunzip(data, size, tar, TAR_CAP / 2);
    if (n < 0)
        return LLVMFuzzerMutate(data, size, max_size);
    size_t m = LLVMFuzzerMutate(tar, (size_t)n, TAR_CAP / 2);
    if (seed % 4 != 1) /* and sometimes a bad checksum, for libarchive */
        fix_tar_checksums(tar, m);
    size_t z = gzip(tar, m, gz, TAR_CAP);
    if (z == 0 || z > max_size)
        return LLVMFuzzerMutate(data, size, max_size);
    memcpy(data, gz, z);
    return z;
}

/* ---- the run ----------------------------------------------------------- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bool truncate = size & 1, with_sum = size & 2;
    write_file(archive_path, data, size);
    if (with_sum)
        write_sum(data, size);
    else
        unlink(sum_path);
    plant();

    wd_backup_restore_cfg cfg = {
        .server_dir = srv,
        .backup_dir = backups,
        .backup_id = ID,
        .truncate = truncate,
        .uid = -1,
        .gid = -1,
        .max_bytes = 64u << 20, /* a gzip bomb would only cost time */
    };
    size_t skipped = 0;
    wd_status st = wd_backup_restore(&cfg, &skipped);
    if (fchdir(cwd_fd) != 0) /* restore leaves the thread in "/" */
        die("fchdir");
    if (st == WD_ERR_UNSUPPORTED)
        die("restore needs unshare(CLONE_FS)");
    if (verbose)
        fprintf(stderr, "restore (truncate %d, sha256 %d): %s, %zu skipped%s%s\n", truncate,
                with_sum, wd_status_str(st), skipped, st ? ": " : "", st ? wd_err_msg() : "");

    check_outside(with_sum);
    if (st == WD_ERR_INVALID || st == WD_ERR_FULL)
        check_unchanged();
    empty_srv();
    return 0;
}
