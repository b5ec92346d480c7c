/* Tests for warden-shim (agent/shim/) through its agent-side client
 * (agent/shim_client.c), plus agent/cgroup.c where the host allows it.
 *
 * Every test starts real shims with wd_shim_spawn() running /bin/sh -c
 * scripts (one runs inside bubblewrap as nobody) and talks to them over the
 * socket like the agent does. The shims are double-forked, so they are not
 * our children: each one is tracked here, and a harness cleanup SIGKILLs
 * every tracked shim and its whole process tree, so nothing outlives the
 * test even when an assertion aborts it. A test ends its shims itself,
 * normally with EXIT_ACK, and then checks that the shim's log holds no
 * sanitizer report (the shim is built with the same sanitizers). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cgroup.h"
#include "harness.h"
#include "shim_client.h"
#include "util.h"

/* ---- processes ---------------------------------------------------------------- */

/* Gone, or a zombie nobody reaps (double-forked shims end up as children of
 * init, which in some containers never reaps). */
static bool proc_gone(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return true;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return true;
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    return p == NULL || p[1] == '\0' || p[2] == 'Z' || p[2] == 'X';
}

static pid_t proc_ppid(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (p == NULL || strlen(p) < 5 || p[2] == 'Z')
        return -1;
    return (pid_t)strtol(p + 4, NULL, 10);
}

/* Live descendants of root (a simple fixpoint over /proc). */
static size_t descendants(pid_t root, pid_t *out, size_t max)
{
    pid_t pids[4096], ppids[4096];
    size_t n = 0;
    DIR *d = opendir("/proc");
    if (d == NULL)
        return 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL && n < 4096) {
        long v;
        if (!wd_parse_long(de->d_name, 1, 0x7fffffff, &v))
            continue;
        pid_t pp = proc_ppid((pid_t)v);
        if (pp < 0)
            continue;
        pids[n] = (pid_t)v;
        ppids[n++] = pp;
    }
    closedir(d);
    bool in[4096] = {false};
    size_t count = 0;
    for (bool changed = true; changed;) {
        changed = false;
        for (size_t i = 0; i < n; i++) {
            if (in[i])
                continue;
            bool par = ppids[i] == root;
            for (size_t j = 0; !par && j < n; j++)
                par = in[j] && pids[j] == ppids[i];
            if (par) {
                in[i] = true;
                changed = true;
                if (count < max)
                    out[count] = pids[i];
                count++;
            }
        }
    }
    return count < max ? count : max;
}

/* ---- shims under test ---------------------------------------------------------- */

typedef struct {
    char dir[512];
    char run_dir[600];
    char log[600];
    pid_t shim, child;
} tshim;

#define MAX_SHIMS 64
static tshim *tracked[MAX_SHIMS];

static void kill_tree(tshim *t)
{
    if (t->shim <= 0)
        return;
    pid_t d[256];
    size_t n = descendants(t->shim, d, 256);
    kill(t->shim, SIGSTOP); /* no new children while we kill */
    n = descendants(t->shim, d, 256);
    for (size_t i = 0; i < n; i++)
        kill(d[i], SIGKILL);
    if (t->child > 0)
        kill(-t->child, SIGKILL);
    kill(t->shim, SIGKILL);
    WD_H_WAIT(proc_gone(t->shim), 2000);
}

static void untrack(tshim *t)
{
    for (int i = 0; i < MAX_SHIMS; i++)
        if (tracked[i] == t)
            tracked[i] = NULL;
}

static void cleanup_shims(void *arg)
{
    (void)arg;
    for (int i = 0; i < MAX_SHIMS; i++) {
        if (tracked[i] != NULL) {
            kill_tree(tracked[i]);
            free(tracked[i]);
            tracked[i] = NULL;
        }
    }
}

typedef struct {
    const char *script;      /* /bin/sh -c SCRIPT, or */
    const char *const *argv; /* the full command */
    size_t ring_bytes, max_line;
    bool set_ids;
    uid_t uid;
    gid_t gid;
    const char *const *cgroup_procs;
    size_t n_cgroup_procs;
    /* The shim's default 10 ms quiet time before an unterminated line is
     * sent. Other tests use 1 s so that a loaded machine pausing the game
     * mid-line cannot split their lines. */
    bool quick_partial;
} topts;

/* Starts a shim; the returned handle is tracked until shim_end(). */
static tshim *shim_start(const char *tag, const topts *o)
{
    tshim *t = calloc(1, sizeof *t);
    CU_ASSERT_FATAL(t != NULL);
    const char *dir = wd_h_tmpdir(tag);
    CU_ASSERT_FATAL(dir != NULL);
    snprintf(t->dir, sizeof t->dir, "%s", dir);
    snprintf(t->run_dir, sizeof t->run_dir, "%s/run", dir);
    snprintf(t->log, sizeof t->log, "%s/shim.log", dir);
    const char *sh[] = {"/bin/sh", "-c", o->script, NULL};
    const char *env[] = {"PATH=/usr/bin:/bin", "LC_ALL=C.UTF-8", "HOME=/"};
    wd_shim_spawn_cfg cfg = wd_shim_spawn_cfg_defaults();
    cfg.shim_path = wd_h_bin("agent/warden-shim");
    cfg.server_id = tag;
    cfg.run_dir = t->run_dir;
    cfg.cwd = t->dir;
    cfg.env = env;
    cfg.n_env = 3;
    cfg.argv = o->argv ? o->argv : sh;
    cfg.ring_bytes = o->ring_bytes;
    cfg.max_line = o->max_line;
    cfg.set_ids = o->set_ids;
    cfg.uid = o->uid;
    cfg.gid = o->gid;
    cfg.cgroup_procs = o->cgroup_procs;
    cfg.n_cgroup_procs = o->n_cgroup_procs;
    cfg.log_path = t->log;
    cfg.partial_ms = o->quick_partial ? 0 : 1000;
    wd_status st = wd_shim_spawn(&cfg, &t->shim, &t->child);
    if (st != WD_OK)
        fprintf(stderr, "wd_shim_spawn: %s\n", wd_err_msg());
    CU_ASSERT_FATAL(st == WD_OK);
    int i = 0;
    while (i < MAX_SHIMS && tracked[i] != NULL)
        i++;
    CU_ASSERT_FATAL(i < MAX_SHIMS);
    tracked[i] = t;
    return t;
}

static void check_log_clean(const tshim *t)
{
    char *text = NULL;
    if (wd_read_file(t->log, 16u << 20, &text, NULL) != WD_OK)
        return;
    bool dirty = strstr(text, "AddressSanitizer") || strstr(text, "LeakSanitizer") ||
                 strstr(text, "runtime error");
    if (dirty)
        fprintf(stderr, "\n--- %s ---\n%s\n", t->log, text);
    CU_ASSERT(!dirty);
    free(text);
}

/* Ends a shim for good: kills its tree, unless it already exited by itself
 * (after EXIT_ACK), in which case its log is checked. */
static void shim_end(tshim *t)
{
    if (t == NULL)
        return;
    bool exited = WD_H_WAIT(proc_gone(t->shim), 0);
    if (!exited)
        kill_tree(t);
    else
        check_log_clean(t);
    untrack(t);
    free(t);
}

/* ---- a test agent --------------------------------------------------------------- */

typedef struct {
    uint64_t seq;
    uint8_t flags;
    uint32_t len;
    char *text;
} tline;

typedef struct {
    int fd;
    wd_shim_reader *rd;
    bool have_hello;
    wd_shim_hello hello;
    tline *lines;
    size_t n, cap;
    uint64_t expect;   /* next seq expected, 0 when not attached */
    uint64_t dropped;  /* sum of LINES.dropped */
    int frames;        /* LINES frames received */
    bool seq_error;    /* a frame did not continue where the last ended */
    bool got_exit;
    wd_shim_exit ex;
    bool after_exit;   /* anything arrived after EXIT */
    bool closed;
    bool proto_error;
} tclient;

static void tc_frame(tclient *c, const wd_shim_frame *f)
{
    if (c->got_exit)
        c->after_exit = true;
    if (f->type == WD_SHIM_HELLO) {
        c->have_hello = wd_shim_decode_hello(f, &c->hello) == WD_OK;
        c->proto_error |= !c->have_hello;
        return;
    }
    if (f->type == WD_SHIM_EXIT) {
        c->got_exit = wd_shim_decode_exit(f, &c->ex) == WD_OK;
        c->proto_error |= !c->got_exit;
        return;
    }
    wd_shim_lines it;
    if (wd_shim_lines_begin(f, &it) != WD_OK) {
        c->proto_error = true;
        return;
    }
    c->frames++;
    if (c->expect != 0 && it.first_seq - it.dropped != c->expect)
        c->seq_error = true;
    c->expect = it.first_seq + it.count;
    c->dropped += it.dropped;
    wd_shim_line l;
    while (wd_shim_lines_next(&it, &l)) {
        if (c->n == c->cap) {
            c->cap = c->cap ? c->cap * 2 : 256;
            c->lines = realloc(c->lines, c->cap * sizeof *c->lines);
        }
        tline *t = &c->lines[c->n++];
        t->seq = l.seq;
        t->flags = l.flags;
        t->len = l.len;
        t->text = malloc(l.len + 1);
        memcpy(t->text, l.data, l.len);
        t->text[l.len] = '\0';
    }
}

/* Waits up to ms for data, then takes every complete frame. */
static void tc_poll(tclient *c, int ms)
{
    if (c->closed || c->proto_error)
        return;
    struct pollfd pf = {.fd = c->fd, .events = POLLIN};
    if (poll(&pf, 1, ms) <= 0)
        return;
    for (;;) {
        wd_status st = wd_shim_reader_feed(c->rd, c->fd);
        wd_shim_frame f;
        wd_status nst;
        while ((nst = wd_shim_reader_next(c->rd, &f)) == WD_OK)
            tc_frame(c, &f);
        if (nst == WD_ERR_PROTO) {
            c->proto_error = true;
            return;
        }
        if (st == WD_ERR_CLOSED || st == WD_ERR_IO) {
            c->closed = true;
            return;
        }
        if (st == WD_ERR_AGAIN)
            return;
    }
}

#define TC_WAIT(c, cond, ms)                                                   \
    ({                                                                         \
        bool ok_ = false;                                                      \
        int64_t until_ = wd_mono_ms() + (ms);                                  \
        for (;;) {                                                             \
            if (cond) {                                                        \
                ok_ = true;                                                    \
                break;                                                         \
            }                                                                  \
            if (wd_mono_ms() > until_ || (c)->closed || (c)->proto_error)      \
                break;                                                         \
            tc_poll((c), 10);                                                  \
        }                                                                      \
        ok_ || (cond);                                                         \
    })

static void tc_close(tclient *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    for (size_t i = 0; i < c->n; i++)
        free(c->lines[i].text);
    free(c->lines);
    c->lines = NULL;
    c->n = c->cap = 0;
    wd_shim_reader_destroy(&c->rd);
}

/* Connects and waits for HELLO. */
static bool tc_connect(tclient *c, const tshim *t)
{
    memset(c, 0, sizeof *c);
    c->fd = -1;
    if (wd_shim_reader_create(&c->rd) != WD_OK)
        return false;
    if (!WD_H_WAIT(wd_shim_connect(t->run_dir, &c->fd) == WD_OK, 3000))
        return false;
    return TC_WAIT(c, c->have_hello, 3000);
}

static bool tc_attach(tclient *c, uint64_t from)
{
    c->expect = from == WD_SHIM_SEQ_NEW ? 0 : from;
    return wd_shim_send_attach(c->fd, from, 1000) == WD_OK;
}

static bool tc_input(tclient *c, const char *s)
{
    return wd_shim_send_input(c->fd, s, strlen(s), 1000) == WD_OK;
}

static ssize_t tc_find(const tclient *c, const char *text)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->lines[i].text, text) == 0)
            return (ssize_t)i;
    return -1;
}

static ssize_t tc_find_prefix(const tclient *c, const char *prefix)
{
    for (size_t i = 0; i < c->n; i++)
        if (strncmp(c->lines[i].text, prefix, strlen(prefix)) == 0)
            return (ssize_t)i;
    return -1;
}

/* A line ending with suffix (the tty's echo of unread input may precede
 * the game's output on the same line). */
static ssize_t tc_find_suffix(const tclient *c, const char *suffix)
{
    size_t sl = strlen(suffix);
    for (size_t i = 0; i < c->n; i++)
        if (c->lines[i].len >= sl && strcmp(c->lines[i].text + c->lines[i].len - sl, suffix) == 0)
            return (ssize_t)i;
    return -1;
}

/* Acknowledges the exit and checks that the shim leaves as promised. */
static void ack_and_check_gone(tclient *c, tshim *t)
{
    CU_ASSERT(wd_shim_send_exit_ack(c->fd, 1000) == WD_OK);
    CU_ASSERT(TC_WAIT(c, c->closed, 5000));
    CU_ASSERT(WD_H_WAIT(proc_gone(t->shim), 5000));
    char p[700];
    snprintf(p, sizeof p, "%s/shim.sock", t->run_dir);
    CU_ASSERT(access(p, F_OK) != 0);
    snprintf(p, sizeof p, "%s/shim.pid", t->run_dir);
    CU_ASSERT(access(p, F_OK) != 0);
    snprintf(p, sizeof p, "%s/exit", t->run_dir);
    CU_ASSERT(access(p, F_OK) == 0);
}

/* ---- tests ------------------------------------------------------------------------ */

static void test_hello_attach_lines(void)
{
    tshim *t =
        shim_start("shim-hello", &(topts){.script = "printf 'one\\ntwo\\nthree\\n'; read x"});
    char pidpath[700];
    snprintf(pidpath, sizeof pidpath, "%s/shim.pid", t->run_dir);
    pid_t filepid = 0;
    CU_ASSERT(wd_shim_read_pid_file(t->run_dir, &filepid) == WD_OK);
    CU_ASSERT(filepid == t->shim);
    struct stat sb;
    char sock[700];
    snprintf(sock, sizeof sock, "%s/shim.sock", t->run_dir);
    CU_ASSERT(stat(sock, &sb) == 0 && (sb.st_mode & 0777) == 0600);

    tclient c;
    CU_ASSERT_FATAL(tc_connect(&c, t));
    CU_ASSERT(c.hello.version == WD_SHIM_PROTO_VERSION);
    CU_ASSERT(c.hello.shim_pid == t->shim);
    CU_ASSERT(c.hello.child_pid == t->child);
    CU_ASSERT(c.hello.oldest_seq == 1);
    CU_ASSERT(c.hello.started_unix_ms > 0 &&
              c.hello.started_unix_ms <= (uint64_t)wd_unix_ms());
    CU_ASSERT(!c.hello.exited);
    /* Nothing but HELLO before ATTACH, even though the game has talked. */
    TC_WAIT(&c, false, 300);
    CU_ASSERT(c.n == 0 && c.frames == 0);

    CU_ASSERT(tc_attach(&c, 1));
    CU_ASSERT(TC_WAIT(&c, c.n >= 3, 3000));
    CU_ASSERT_FATAL(c.n >= 3);
    CU_ASSERT_STRING_EQUAL(c.lines[0].text, "one");
    CU_ASSERT_STRING_EQUAL(c.lines[1].text, "two");
    CU_ASSERT_STRING_EQUAL(c.lines[2].text, "three");
    for (int i = 0; i < 3; i++) {
        CU_ASSERT(c.lines[i].seq == (uint64_t)i + 1);
        CU_ASSERT(c.lines[i].flags == 0);
    }
    CU_ASSERT(c.dropped == 0 && !c.seq_error);

    /* SIGTERM to the game (sh waiting in read dies of it). */
    CU_ASSERT(wd_shim_send_signal(c.fd, SIGTERM, WD_SHIM_SCOPE_GAME, 1000) == WD_OK);
    CU_ASSERT(TC_WAIT(&c, c.got_exit, 5000));
    CU_ASSERT(c.ex.exit_code == -1 && c.ex.signal == SIGTERM);
    ack_and_check_gone(&c, t);
    tc_close(&c);
    shim_end(t);
}

static void test_input_echo_resize(void)
{
    tshim *t = shim_start("shim-input",
                          &(topts){.script = "stty -echo; while read l; do "
                                             "if [ \"$l\" = size ]; then stty size; "
                                             "else echo \"got:$l\"; fi; done; echo eof"});
    tclient c;
    CU_ASSERT_FATAL(tc_connect(&c, t));
    CU_ASSERT(tc_attach(&c, 1));
    /* The loop may not have started yet; stty -echo may come after our
     * input is echoed, so look for the answers only. */
    CU_ASSERT(tc_input(&c, "hello\n"));
    CU_ASSERT(TC_WAIT(&c, tc_find(&c, "got:hello") >= 0, 3000));
    CU_ASSERT(tc_input(&c, "size\n"));
    CU_ASSERT(TC_WAIT(&c, tc_find(&c, "50 200") >= 0, 3000));
    CU_ASSERT(wd_shim_send_resize(c.fd, 30, 100, 1000) == WD_OK);
    CU_ASSERT(tc_input(&c, "size\n"));
    CU_ASSERT(TC_WAIT(&c, tc_find(&c, "30 100") >= 0, 3000));
    /* Two inputs in one go, then UTF-8. */
    CU_ASSERT(tc_input(&c, "a b\nc\n"));
    CU_ASSERT(TC_WAIT(&c, tc_find(&c, "got:c") >= 0, 3000));
    CU_ASSERT(tc_find(&c, "got:a b") >= 0);
    CU_ASSERT(tc_input(&c, "h\xc3\xa9llo\n"));
    CU_ASSERT(TC_WAIT(&c, tc_find(&c, "got:h\xc3\xa9llo") >= 0, 3000));
    /* ^D at the start of a line: read sees end of file, the game ends. */
    CU_ASSERT(tc_input(&c, "\x04"));
    CU_ASSERT(TC_WAIT(&c, c.got_exit, 5000));
    CU_ASSERT(tc_find(&c, "eof") >= 0);
    CU_ASSERT(c.ex.exit_code == 0 && c.ex.signal == 0);
    CU_ASSERT(!c.seq_error && c.dropped == 0);
    ack_and_check_gone(&c, t);
    tc_close(&c);
    shim_end(t);
}

static void test_many_lines(void)
{
    enum { N = 50000 };
    tshim *t = shim_start("shim-many", &(topts){.script = "read go; seq 1 50000; echo end"});
    tclient c;
    CU_ASSERT_FATAL(tc_connect(&c, t));
    CU_ASSERT(tc_attach(&c, 1));
    int64_t t0 = wd_mono_ms();
    CU_ASSERT(tc_input(&c, "go\n"));
    bool done = TC_WAIT(&c, c.got_exit, 60000);
    if (!done)
        fprintf(stderr, "no EXIT: closed %d proto %d lines %zu: %s\n", c.closed, c.proto_error,
                c.n, wd_err_msg());
    CU_ASSERT(done);
    int64_t ms = wd_mono_ms() - t0;
    ssize_t first = tc_find(&c, "1");
    CU_ASSERT_FATAL(first >= 0);
    CU_ASSERT_FATAL(c.n >= (size_t)first + N + 1);
    bool ordered = true;
    for (size_t i = 0; i < N && ordered; i++) {
        char want[16];
        snprintf(want, sizeof want, "%zu", i + 1);
        const tline *l = &c.lines[(size_t)first + i];
        ordered = strcmp(l->text, want) == 0 && l->flags == 0 &&
                  l->seq == c.lines[first].seq + i;
    }
    CU_ASSERT(ordered);
    CU_ASSERT_STRING_EQUAL(c.lines[(size_t)first + N].text, "end");
    for (size_t i = 1; i < c.n; i++)
        CU_ASSERT_FATAL(c.lines[i].seq == c.lines[i - 1].seq + 1);
    CU_ASSERT(c.lines[0].seq == 1);
    CU_ASSERT(c.dropped == 0 && !c.seq_error && !c.after_exit);
    CU_ASSERT(c.ex.exit_code == 0);
    fprintf(stderr, "[%d lines in %lld ms, %d frames] ", N, (long long)ms, c.frames);
    ack_and_check_gone(&c, t);
    tc_close(&c);
    shim_end(t);
}

/* Nobody connected while the game overflowed the ring. */
static void test_ring_overflow_unread(void)
{
    tshim *t = shim_start("shim-ring",
                          &(topts){.script = "seq 1 5000; echo done; read x", .ring_bytes = 16384});
    tclient c;
    /* Reconnect until the game has printed everything (each connection
     * replaces the previous one). */
    bool all = false;
    for (int i = 0; i < 300 && !all; i++) {
        CU_ASSERT_FATAL(tc_connect(&c, t));
        all = c.hello.next_seq >= 5002;
        if (!all) {
            tc_close(&c);
            usleep(10000);
        }
    }
    CU_ASSERT_FATAL(all);
    CU_ASSERT(c.hello.oldest_seq > 1);
    CU_ASSERT(tc_attach(&c, 1));
    CU_ASSERT(TC_WAIT(&c, tc_find(&c, "done") >= 0, 3000));
    CU_ASSERT_FATAL(c.n > 0);
    CU_ASSERT(c.lines[0].seq == c.hello.oldest_seq);
    CU_ASSERT(c.dropped == c.hello.oldest_seq - 1);
    CU_ASSERT(c.n + c.dropped == 5001);
    CU_ASSERT(!c.seq_error);
    CU_ASSERT_STRING_EQUAL(c.lines[c.n - 2].text, "5000");
    /* Under 16 KiB at 8 + len bytes a line. */
    CU_ASSERT(c.n < 16384 / 8);
    CU_ASSERT(wd_shim_send_signal(c.fd, SIGKILL, WD_SHIM_SCOPE_TREE, 1000) == WD_OK);
    CU_ASSERT(TC_WAIT(&c, c.got_exit, 5000));
    ack_and_check_gone(&c, t);
    tc_close(&c);
    shim_end(t);
}

/* An attached agent that stops reading: the game is not slowed down, the
 * ring keeps what it can, and the gap is reported where it happened. */
static void test_ring_overflow_slow_agent(void)
{
    tshim *t = shim_start("shim-slow",
                          &(topts){.script = "read go; seq 1 200000; echo done; touch flag; read x",
                                   .ring_bytes = 16384});
    tclient c;
    CU_ASSERT_FATAL(tc_connect(&c, t));
    CU_ASSERT(tc_attach(&c, 1));
    CU_ASSERT(tc_input(&c, "go\n"));
    char flag[600];
    snprintf(flag, sizeof flag, "%s/flag", t->dir);
    /* We do not read at all while the game prints 200,000 lines. */
    CU_ASSERT_FATAL(wd_h_wait_file(flag, 30000));
    CU_ASSERT(TC_WAIT(&c, tc_find(&c, "done") >= 0, 10000));
    CU_ASSERT(c.dropped > 0);
    CU_ASSERT(!c.seq_error);
    CU_ASSERT(!c.proto_error && !c.closed);
    /* "go" (the echo) is line 1, so number N is line N + 1. */
    bool match = true;
    for (size_t i = 0; i < c.n; i++) {
        long v;
        if (wd_parse_long(c.lines[i].text, 1, 200000, &v))
            match = match && c.lines[i].seq == (uint64_t)v + 1;
    }
    CU_ASSERT(match);
    ssize_t d = tc_find(&c, "done");
    CU_ASSERT(d >= 0 && c.lines[d].seq == 200002);
    CU_ASSERT(c.n + c.dropped == 200002);
    CU_ASSERT(wd_shim_send_signal(c.fd, SIGKILL, WD_SHIM_SCOPE_TREE, 1000) == WD_OK);
    CU_ASSERT(TC_WAIT(&c, c.got_exit, 5000));
    ack_and_check_gone(&c, t);
    tc_close(&c);
    shim_end(t);
}

static void test_long_line_cut(void)
{
    /* 250 x, then 60 two-byte characters: with max_line 101 the second line
     * must be cut at 100 so no character is split. */
    tshim *t = shim_start(
        "shim-long",
        &(topts){.script = "head -c 250 /dev/zero | tr '\\0' x; echo; "
                           "i=0; while [ $i -lt 60 ]; do printf '\\303\\251'; i=$((i+1)); done; "
                           "echo; echo after",
                 .max_line = 101});
    tclient c;
    CU_ASSERT_FATAL(tc_connect(&c, t));
    CU_ASSERT(tc_attach(&c, 1));
    CU_ASSERT(TC_WAIT(&c, c.got_exit, 5000));
    CU_ASSERT_FATAL(c.n == 6);
    CU_ASSERT(c.lines[0].len == 101 && c.lines[0].flags == WD_SHIM_LINE_CUT);
    CU_ASSERT(c.lines[1].len == 101 && c.lines[1].flags == WD_SHIM_LINE_CUT);
    CU_ASSERT(c.lines[2].len == 48 && c.lines[2].flags == 0);
    CU_ASSERT(strspn(c.lines[0].text, "x") == 101 && strspn(c.lines[2].text, "x") == 48);
    CU_ASSERT(c.lines[3].len == 100 && c.lines[3].flags == WD_SHIM_LINE_CUT);
    CU_ASSERT(c.lines[4].len == 20 && c.lines[4].flags == 0);
    CU_ASSERT(memcmp(c.lines[3].text, "\xc3\xa9", 2) == 0 &&
              memcmp(c.lines[4].text, "\xc3\xa9", 2) == 0);
    CU_ASSERT_STRING_EQUAL(c.lines[5].text, "after");
    ack_and_check_gone(&c, t);
    tc_close(&c);
    shim_end(t);
}

static void test_partial_line(void)
{
    tshim *t = shim_start("shim-partial",
                          &(topts){.script = "printf '> '; read x; echo \"got $x\"; "
                                             "printf 'abc\\r'; sleep 0.3; printf '\\n'; "
                                             "printf 'tail'",
                                   .quick_partial = true});
    tclient c;
    CU_ASSERT_FATAL(tc_connect(&c, t));
    CU_ASSERT(tc_attach(&c, 1));
    CU_ASSERT(TC_WAIT(&c, c.n >= 1, 2000));
    CU_ASSERT_FATAL(c.n >= 1);
    CU_ASSERT_STRING_EQUAL(c.lines[0].text, "> ");
    CU_ASSERT(c.lines[0].flags == WD_SHIM_LINE_PARTIAL);
    CU_ASSERT(tc_input(&c, "cmd\n"));
    CU_ASSERT(TC_WAIT(&c, c.got_exit, 5000));
    /* "cmd" (the echo) completes the prompt's line; "abc\r" is flushed as
     * "abc" while its '\r' waits for the '\n', which then ends an empty
     * line; "tail" is flushed when the game is gone. */
    ssize_t g = tc_find(&c, "got cmd");
    CU_ASSERT_FATAL(g >= 2);
    CU_ASSERT_STRING_EQUAL(c.lines[1].text, "cmd");
    CU_ASSERT_FATAL(c.n == (size_t)g + 4);
    CU_ASSERT_STRING_EQUAL(c.lines[g + 1].text, "abc");
    CU_ASSERT(c.lines[g + 1].flags == WD_SHIM_LINE_PARTIAL);
    CU_ASSERT(c.lines[g + 2].len == 0 && c.lines[g + 2].flags == 0);
    CU_ASSERT_STRING_EQUAL(c.lines[g + 3].text, "tail");
    CU_ASSERT(c.lines[g + 3].flags == WD_SHIM_LINE_PARTIAL);
    ack_and_check_gone(&c, t);
    tc_close(&c);
    shim_end(t);
}

static void test_exit_status_and_file(void)
{
    tshim *t = shim_start("shim-exit", &(topts){.script = "echo a; echo b; exit 7"});
    tclient c;
    CU_ASSERT_FATAL(tc_connect(&c, t));
    CU_ASSERT(tc_attach(&c, 1));
    CU_ASSERT(TC_WAIT(&c, c.got_exit, 5000));
    CU_ASSERT(c.n == 2 && !c.after_exit);
    CU_ASSERT(c.ex.exit_code == 7 && c.ex.signal == 0);
    CU_ASSERT(c.ex.time_unix_ms > 0 && c.ex.time_unix_ms <= (uint64_t)wd_unix_ms());
    wd_shim_exit f;
    CU_ASSERT_FATAL(wd_shim_read_exit_file(t->run_dir, &f) == WD_OK);
    CU_ASSERT(f.exit_code == 7 && f.signal == 0 && f.time_unix_ms == c.ex.time_unix_ms);
    tc_close(&c);

    /* A later agent: HELLO says exited; ATTACH NEW gives just EXIT. */
    CU_ASSERT_FATAL(tc_connect(&c, t));
    CU_ASSERT(c.hello.exited && c.hello.next_seq == 3);
    CU_ASSERT(tc_attach(&c, WD_SHIM_SEQ_NEW));
    CU_ASSERT(TC_WAIT(&c, c.got_exit, 3000));
    CU_ASSERT(c.n == 0 && c.ex.exit_code == 7);
    /* INPUT and SIGNAL after the exit are harmless. */
    CU_ASSERT(tc_input(&c, "late\n"));
    CU_ASSERT(wd_shim_send_signal(c.fd, SIGKILL, WD_SHIM_SCOPE_TREE, 1000) == WD_OK);
    TC_WAIT(&c, false, 100);
    CU_ASSERT(!c.closed && !proc_gone(t->shim));
    ack_and_check_gone(&c, t);
    tc_close(&c);
    CU_ASSERT(wd_shim_connect(t->run_dir, &c.fd) == WD_ERR_NOT_FOUND);
    CU_ASSERT(wd_shim_read_exit_file(t->run_dir, &f) == WD_OK && f.exit_code == 7);
    shim_end(t);

    /* Killed by a signal. */
    t = shim_start("shim-exit-sig", &(topts){.script = "echo x; kill -9 $$"});
    CU_ASSERT_FATAL(tc_connect(&c, t));
    CU_ASSERT(tc_attach(&c, 1));
    CU_ASSERT(TC_WAIT(&c, c.got_exit, 5000));
    CU_ASSERT(c.ex.exit_code == -1 && c.ex.signal == SIGKILL);
    CU_ASSERT(wd_shim_read_exit_file(t->run_dir, &f) == WD_OK && f.exit_code == -1 &&
              f.signal == SIGKILL);
    ack_and_check_gone(&c, t);
    tc_close(&c);
    shim_end(t);
}

static void test_reconnect_replay(void)
{
    tshim *t = shim_start("shim-reconn", &(topts){.script = "stty -echo; echo a; echo b; read x; "
                                                           "echo c; echo d; read y"});
    tclient c;
    CU_ASSERT_FATAL(tc_connect(&c, t));
    CU_ASSERT(tc_attach(&c, 1));
    CU_ASSERT(TC_WAIT(&c, c.n == 2, 3000));
    uint64_t last = c.n ? c.lines[c.n - 1].seq : 0;
    CU_ASSERT(last == 2);
    tc_close(&c); /* the agent goes away */

    /* A new agent makes the game talk without attaching... */
    CU_ASSERT_FATAL(tc_connect(&c, t));
    CU_ASSERT(tc_input(&c, "go\n"));
    CU_ASSERT(WD_H_WAIT(({
                            tc_poll(&c, 0);
                            tclient h;
                            bool ok = tc_connect(&h, t) && h.hello.next_seq == 5;
                            tc_close(&h);
                            ok;
                        }),
                        3000));
    /* ...and was replaced by that probe, which the shim closed it for. */
    CU_ASSERT(TC_WAIT(&c, c.closed, 2000));
    tc_close(&c);
    CU_ASSERT(!proc_gone(t->shim));

    /* Attach from where the first agent stopped: exactly the missed lines. */
    CU_ASSERT_FATAL(tc_connect(&c, t));
    CU_ASSERT(tc_attach(&c, last + 1));
    CU_ASSERT(TC_WAIT(&c, c.n == 2, 3000));
    TC_WAIT(&c, false, 100);
    CU_ASSERT_FATAL(c.n == 2);
    CU_ASSERT(c.lines[0].seq == 3 && strcmp(c.lines[0].text, "c") == 0);
    CU_ASSERT(c.lines[1].seq == 4 && strcmp(c.lines[1].text, "d") == 0);
    CU_ASSERT(c.dropped == 0);
    /* A second ATTACH on the same connection replays from the start. */
    size_t before = c.n;
    CU_ASSERT(tc_attach(&c, 1));
    CU_ASSERT(TC_WAIT(&c, c.n == before + 4, 3000));
    CU_ASSERT(c.n == before + 4 && strcmp(c.lines[before].text, "a") == 0);

    /* A newer connection replaces this one. */
    tclient c2;
    CU_ASSERT_FATAL(tc_connect(&c2, t));
    CU_ASSERT(TC_WAIT(&c, c.closed, 2000));
    CU_ASSERT(tc_attach(&c2, WD_SHIM_SEQ_NEW));
    CU_ASSERT(tc_input(&c2, "end\n"));
    CU_ASSERT(TC_WAIT(&c2, c2.got_exit, 5000));
    CU_ASSERT(c2.n == 0);
    ack_and_check_gone(&c2, t);
    tc_close(&c2);
    tc_close(&c);
    shim_end(t);
}

/* The agent disappears in the middle of a flood; the shim does not care. */
static void test_client_vanishes_mid_stream(void)
{
    tshim *t = shim_start("shim-vanish",
                          &(topts){.script = "read go; seq 1 100000; echo done; read x"});
    tclient c;
    CU_ASSERT_FATAL(tc_connect(&c, t));
    CU_ASSERT(tc_attach(&c, 1));
    CU_ASSERT(tc_input(&c, "go\n"));
    CU_ASSERT(TC_WAIT(&c, c.n > 1000, 5000));
    tc_close(&c);
    CU_ASSERT(WD_H_WAIT(({
                            tclient h;
                            bool ok = tc_connect(&h, t) && h.hello.next_seq >= 100003;
                            tc_close(&h);
                            ok;
                        }),
                        20000));
    CU_ASSERT_FATAL(tc_connect(&c, t));
    CU_ASSERT(tc_attach(&c, 100002));
    CU_ASSERT(TC_WAIT(&c, c.n == 1, 3000));
    CU_ASSERT(c.n == 1 && strcmp(c.lines[0].text, "done") == 0);
    CU_ASSERT(wd_shim_send_signal(c.fd, SIGKILL, WD_SHIM_SCOPE_TREE, 1000) == WD_OK);
    CU_ASSERT(TC_WAIT(&c, c.got_exit, 5000));
    ack_and_check_gone(&c, t);
    tc_close(&c);
    shim_end(t);
}

/* The game sees exactly its --env entries, its cwd, a terminal, and no
 * descriptor but the terminal's. */
static void test_game_environment(void)
{
    setenv("WD_TEST_SECRET", "leak", 1);
    tshim *t = shim_start("shim-env",
                          &(topts){.script = "env; echo \"cwd $(pwd)\"; "
                                             "echo \"fds $(ls /proc/self/fd | tr '\\n' ' ')\"; "
                                             "tty >/dev/null && echo has-tty"});
    unsetenv("WD_TEST_SECRET");
    tclient c;
    CU_ASSERT_FATAL(tc_connect(&c, t));
    CU_ASSERT(tc_attach(&c, 1));
    CU_ASSERT(TC_WAIT(&c, c.got_exit, 5000));
    CU_ASSERT(tc_find(&c, "PATH=/usr/bin:/bin") >= 0);
    CU_ASSERT(tc_find(&c, "HOME=/") >= 0);
    CU_ASSERT(tc_find_prefix(&c, "WD_TEST_SECRET") < 0);
    CU_ASSERT(tc_find_prefix(&c, "ASAN_OPTIONS") < 0);
    char want[600];
    snprintf(want, sizeof want, "cwd %s", t->dir);
    CU_ASSERT(tc_find(&c, want) >= 0);
    /* ls itself holds 3 for the directory it lists. */
    CU_ASSERT(tc_find(&c, "fds 0 1 2 3 ") >= 0);
    CU_ASSERT(tc_find(&c, "has-tty") >= 0);
    ack_and_check_gone(&c, t);
    tc_close(&c);
    shim_end(t);

    /* A program that does not exist: the reason on the console, 127. */
    const char *argv[] = {"/nonexistent/game", "--flag", NULL};
    t = shim_start("shim-noexist", &(topts){.argv = argv});
    CU_ASSERT_FATAL(tc_connect(&c, t));
    CU_ASSERT(tc_attach(&c, 1));
    CU_ASSERT(TC_WAIT(&c, c.got_exit, 5000));
    CU_ASSERT(c.ex.exit_code == 127);
    CU_ASSERT(tc_find_prefix(&c, "warden-shim: cannot execute /nonexistent/game") >= 0);
    ack_and_check_gone(&c, t);
    tc_close(&c);
    shim_end(t);
}

/* A game that never reads its console: input piles up in the shim's
 * bounded buffer (the excess is dropped), nothing blocks, and the shim
 * still obeys. SIGTERM to the shim itself goes to the game. */
static void test_unread_input_and_shim_sigterm(void)
{
    tshim *t = shim_start("shim-unread", &(topts){.script = "trap 'echo got-term; exit 3' TERM; "
                                                           "echo ready; while :; do sleep 0.1; "
                                                           "done"});
    tclient c;
    CU_ASSERT_FATAL(tc_connect(&c, t));
    CU_ASSERT(tc_attach(&c, WD_SHIM_SEQ_NEW));
    static char chunk[60 * 1024];
    for (size_t i = 0; i < sizeof chunk; i++)
        chunk[i] = i % 1000 == 999 || i == sizeof chunk - 1 ? '\n' : 'a';
    int64_t t0 = wd_mono_ms();
    for (int i = 0; i < 20; i++) {
        CU_ASSERT(wd_shim_send_input(c.fd, chunk, sizeof chunk, 2000) == WD_OK);
        tc_poll(&c, 0); /* the tty echoes; keep reading like an agent would */
    }
    CU_ASSERT(wd_mono_ms() - t0 < 5000);
    TC_WAIT(&c, false, 200);
    CU_ASSERT(!c.closed && !c.got_exit);
    CU_ASSERT(kill(t->shim, SIGTERM) == 0);
    CU_ASSERT(TC_WAIT(&c, c.got_exit, 5000));
    CU_ASSERT(tc_find_suffix(&c, "got-term") >= 0);
    CU_ASSERT(c.ex.exit_code == 3);
    CU_ASSERT(!c.seq_error);
    ack_and_check_gone(&c, t);
    tc_close(&c);
    shim_end(t);
}

/* A line longer than a 64 KiB LINES frame travels alone in a bigger one. */
static void test_huge_line(void)
{
    tshim *t = shim_start("shim-huge", &(topts){.script = "head -c 300000 /dev/zero | tr '\\0' y; "
                                                         "echo; echo after",
                                                .max_line = 200000});
    tclient c;
    CU_ASSERT_FATAL(tc_connect(&c, t));
    CU_ASSERT(tc_attach(&c, 1));
    CU_ASSERT(TC_WAIT(&c, c.got_exit, 5000));
    CU_ASSERT_FATAL(c.n == 3);
    CU_ASSERT(c.lines[0].len == 200000 && c.lines[0].flags == WD_SHIM_LINE_CUT);
    CU_ASSERT(c.lines[1].len == 100000 && c.lines[1].flags == 0);
    CU_ASSERT(strspn(c.lines[0].text, "y") == 200000 && strspn(c.lines[1].text, "y") == 100000);
    CU_ASSERT_STRING_EQUAL(c.lines[2].text, "after");
    ack_and_check_gone(&c, t);
    tc_close(&c);
    shim_end(t);
}

static pid_t pid_after(const tclient *c, const char *prefix)
{
    ssize_t i = tc_find_prefix(c, prefix);
    long v = 0;
    if (i < 0 || !wd_parse_long(c->lines[i].text + strlen(prefix), 1, 0x7fffffff, &v))
        return -1;
    return (pid_t)v;
}

static void test_tree_gone_after_exit(void)
{
    tshim *t = shim_start("shim-tree", &(topts){.script = "sleep 1000 & echo \"bg $!\"; "
                                                         "( sleep 1000 & echo \"esc $!\" ); "
                                                         "exit 0"});
    tclient c;
    CU_ASSERT_FATAL(tc_connect(&c, t));
    CU_ASSERT(tc_attach(&c, 1));
    CU_ASSERT(TC_WAIT(&c, c.got_exit, 5000));
    pid_t bg = pid_after(&c, "bg "), esc = pid_after(&c, "esc ");
    CU_ASSERT_FATAL(bg > 0 && esc > 0);
    /* EXIT means the tree is gone already. */
    CU_ASSERT(proc_gone(bg));
    CU_ASSERT(proc_gone(esc));
    CU_ASSERT(c.ex.exit_code == 0);
    pid_t d[16];
    CU_ASSERT(descendants(t->shim, d, 16) == 0);
    ack_and_check_gone(&c, t);
    tc_close(&c);
    shim_end(t);
}

static void test_signal_scopes(void)
{
    /* Scope 0 reaches the game, which handles it. */
    tshim *t = shim_start("shim-sig0",
                          &(topts){.script = "trap 'echo got-term; exit 3' TERM; "
                                             "echo ready; while :; do sleep 0.1; done"});
    tclient c;
    CU_ASSERT_FATAL(tc_connect(&c, t));
    CU_ASSERT(tc_attach(&c, 1));
    CU_ASSERT(TC_WAIT(&c, tc_find(&c, "ready") >= 0, 3000));
    CU_ASSERT(wd_shim_send_signal(c.fd, SIGTERM, WD_SHIM_SCOPE_GAME, 1000) == WD_OK);
    CU_ASSERT(TC_WAIT(&c, c.got_exit, 5000));
    CU_ASSERT(tc_find(&c, "got-term") >= 0);
    CU_ASSERT(c.ex.exit_code == 3 && c.ex.signal == 0);
    ack_and_check_gone(&c, t);
    tc_close(&c);
    shim_end(t);

    /* Scope 1 takes everything, escaped orphans included. */
    t = shim_start("shim-sig1", &(topts){.script = "trap '' TERM; sleep 1000 & echo \"bg $!\"; "
                                                  "( sleep 1000 & echo \"esc $!\" ); "
                                                  "echo ready; while :; do sleep 1; done"});
    CU_ASSERT_FATAL(tc_connect(&c, t));
    CU_ASSERT(tc_attach(&c, 1));
    CU_ASSERT(TC_WAIT(&c, tc_find(&c, "ready") >= 0, 3000));
    pid_t bg = pid_after(&c, "bg "), esc = pid_after(&c, "esc ");
    CU_ASSERT_FATAL(bg > 0 && esc > 0);
    CU_ASSERT(proc_ppid(esc) == t->shim); /* re-parented to the subreaper */
    CU_ASSERT(wd_shim_send_signal(c.fd, SIGKILL, WD_SHIM_SCOPE_TREE, 1000) == WD_OK);
    CU_ASSERT(TC_WAIT(&c, c.got_exit, 5000));
    CU_ASSERT(c.ex.exit_code == -1 && c.ex.signal == SIGKILL);
    CU_ASSERT(proc_gone(bg) && proc_gone(esc) && proc_gone(t->child));
    ack_and_check_gone(&c, t);
    tc_close(&c);
    shim_end(t);
}

static bool wait_closed_raw(int fd, int ms)
{
    char buf[4096];
    int64_t until = wd_mono_ms() + ms;
    while (wd_mono_ms() < until) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        if (poll(&pf, 1, 20) <= 0)
            continue;
        ssize_t n = read(fd, buf, sizeof buf);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            return true;
    }
    return false;
}

static void test_garbage(void)
{
    tshim *t = shim_start("shim-garbage", &(topts){.script = "read x; echo \"got $x\""});
    uint8_t big[4096];
    uint32_t seed = 12345;
    for (size_t i = 0; i < sizeof big; i++) {
        seed = seed * 1103515245u + 12345u;
        big[i] = (uint8_t)(seed >> 16);
    }
    big[0] = 0x7f; /* not a frame type */
    struct {
        const void *data;
        size_t len;
    } cases[] = {
        {"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27},
        {"\x0a\x00\x00\x00\x09\x00\x00\x00" "123456789", 17},         /* ATTACH of 9 bytes */
        {"\x0b\x00\x00\x00\x00\x00\x20\x00", 8},                      /* INPUT of 2 MiB */
        {"\x0c\x00\x00\x00\x05\x00\x00\x00\x0f\x00\x00\x00\x07", 13}, /* SIGNAL scope 7 */
        {"\x0c\x00\x00\x00\x05\x00\x00\x00\x00\x01\x00\x00\x00", 13}, /* SIGNAL 256 */
        {"\x02\x00\x00\x00\x00\x00\x00\x00", 8},                      /* LINES: wrong way */
        {big, sizeof big},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int fd;
        CU_ASSERT_FATAL(wd_shim_connect(t->run_dir, &fd) == WD_OK);
        ssize_t w = send(fd, cases[i].data, cases[i].len, MSG_NOSIGNAL);
        CU_ASSERT(w == (ssize_t)cases[i].len);
        bool closed = wait_closed_raw(fd, 3000);
        if (!closed)
            fprintf(stderr, "garbage case %zu did not close the connection\n", i);
        CU_ASSERT(closed);
        close(fd);
        CU_ASSERT(!proc_gone(t->shim));
    }
    /* A half frame then silence: the connection stays (it may complete). */
    int fd;
    CU_ASSERT_FATAL(wd_shim_connect(t->run_dir, &fd) == WD_OK);
    CU_ASSERT(send(fd, "\x0a\x00\x00", 3, MSG_NOSIGNAL) == 3);
    CU_ASSERT(!wait_closed_raw(fd, 200));
    close(fd);

    tclient c;
    CU_ASSERT_FATAL(tc_connect(&c, t));
    CU_ASSERT(tc_attach(&c, 1));
    CU_ASSERT(tc_input(&c, "fine\n"));
    CU_ASSERT(TC_WAIT(&c, c.got_exit, 5000));
    CU_ASSERT(tc_find(&c, "got fine") >= 0);
    ack_and_check_gone(&c, t);
    tc_close(&c);
    shim_end(t);
}

/* Run directly (not through wd_shim_spawn): no ready fd, and nobody ever
 * acknowledges the exit. */
static void test_ack_timeout(void)
{
    const char *dir = wd_h_tmpdir("shim-acktimeout");
    CU_ASSERT_FATAL(dir != NULL);
    char run[600], log[600];
    snprintf(run, sizeof run, "%s/run", dir);
    snprintf(log, sizeof log, "%s/shim.log", dir);
    const char *argv[] = {wd_h_bin("agent/warden-shim"), "--id", "acktimeout", "--run-dir", run,
                          "--cwd", dir, "--ack-timeout-s", "1", "--", "/bin/true", NULL};
    pid_t pid = wd_h_spawn(argv, NULL, log);
    CU_ASSERT_FATAL(pid > 0);
    int st = wd_h_wait_exit(pid, 10000);
    CU_ASSERT(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    if (st == -1)
        wd_h_stop(pid, SIGKILL, 1000);
    wd_shim_exit ex;
    CU_ASSERT(wd_shim_read_exit_file(run, &ex) == WD_OK && ex.exit_code == 0);
    char p[700];
    snprintf(p, sizeof p, "%s/shim.sock", run);
    CU_ASSERT(access(p, F_OK) != 0);

    /* Usage errors exit 2. */
    const char *bad[] = {wd_h_bin("agent/warden-shim"), "--id", "x", "--run-dir", run, "--cwd",
                         dir, "/bin/true", NULL};
    pid = wd_h_spawn(bad, NULL, log);
    st = wd_h_wait_exit(pid, 5000);
    CU_ASSERT(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 2);
}

static void test_spawn_errors(void)
{
    /* A second shim for the same run dir is refused. */
    tshim *t = shim_start("shim-dup", &(topts){.script = "read x"});
    const char *sh[] = {"/bin/sh", "-c", "true", NULL};
    wd_shim_spawn_cfg cfg = wd_shim_spawn_cfg_defaults();
    cfg.shim_path = wd_h_bin("agent/warden-shim");
    cfg.server_id = "dup";
    cfg.run_dir = t->run_dir;
    cfg.cwd = t->dir;
    cfg.argv = sh;
    pid_t sp = 0, cp = 0;
    CU_ASSERT(wd_shim_spawn(&cfg, &sp, &cp) == WD_ERR_EXISTS);
    CU_ASSERT(strstr(wd_err_msg(), "another warden-shim") != NULL);
    CU_ASSERT(access(t->run_dir, F_OK) == 0);
    tclient c;
    CU_ASSERT_FATAL(tc_connect(&c, t)); /* the first one is untouched */
    CU_ASSERT(c.hello.shim_pid == t->shim);
    CU_ASSERT(wd_shim_send_signal(c.fd, SIGKILL, WD_SHIM_SCOPE_TREE, 1000) == WD_OK);
    CU_ASSERT(tc_attach(&c, WD_SHIM_SEQ_NEW));
    CU_ASSERT(TC_WAIT(&c, c.got_exit, 5000));
    ack_and_check_gone(&c, t);
    tc_close(&c);
    shim_end(t);

    /* A shim binary that does not exist. */
    const char *dir = wd_h_tmpdir("shim-noexec");
    char run[600];
    snprintf(run, sizeof run, "%s/run", dir);
    cfg.shim_path = "/nonexistent/warden-shim";
    cfg.run_dir = run;
    cfg.cwd = dir;
    CU_ASSERT(wd_shim_spawn(&cfg, &sp, &cp) == WD_ERR_IO);
    CU_ASSERT(strstr(wd_err_msg(), "cannot execute") != NULL);

    /* Bad arguments are reported on the ready pipe. */
    cfg.shim_path = wd_h_bin("agent/warden-shim");
    cfg.max_line = 1u << 30;
    CU_ASSERT(wd_shim_spawn(&cfg, &sp, &cp) == WD_ERR_IO);
    CU_ASSERT(strstr(wd_err_msg(), "max-line") != NULL);

    /* Nothing listens. */
    int fd;
    CU_ASSERT(wd_shim_connect(run, &fd) == WD_ERR_NOT_FOUND);
    wd_shim_exit ex;
    CU_ASSERT(wd_shim_read_exit_file(run, &ex) == WD_ERR_NOT_FOUND);
}

/* A cgroup.procs file the game cannot join: it never runs. */
static void test_cgroup_join_failure(void)
{
    const char *procs[] = {"/nonexistent/cgroup.procs"};
    tshim *t = shim_start("shim-cgfail", &(topts){.script = "echo should-not-run",
                                                  .cgroup_procs = procs, .n_cgroup_procs = 1});
    tclient c;
    CU_ASSERT_FATAL(tc_connect(&c, t));
    CU_ASSERT(tc_attach(&c, 1));
    CU_ASSERT(TC_WAIT(&c, c.got_exit, 5000));
    CU_ASSERT(c.ex.exit_code == 126);
    CU_ASSERT(tc_find_prefix(&c, "warden-shim: cannot join cgroup") >= 0);
    CU_ASSERT(tc_find(&c, "should-not-run") < 0);
    ack_and_check_gone(&c, t);
    tc_close(&c);
    shim_end(t);
}

static bool file_has_pid(const char *path, pid_t pid)
{
    char *text = NULL;
    if (wd_read_file(path, 1u << 20, &text, NULL) != WD_OK)
        return false;
    char want[32];
    snprintf(want, sizeof want, "%d", (int)pid);
    bool found = false;
    for (char *p = text; p && *p && !found;) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        found = strcmp(p, want) == 0;
        p = nl ? nl + 1 : NULL;
    }
    free(text);
    return found;
}

static bool file_empty(const char *path)
{
    char *text = NULL;
    size_t len = 1;
    if (wd_read_file(path, 1u << 20, &text, &len) != WD_OK)
        return false;
    free(text);
    return len == 0;
}

static char cg_name[64];

static void remove_test_cgroup(void *arg)
{
    (void)arg;
    if (cg_name[0])
        wd_cgroup_remove(cg_name);
}

static void test_cgroup_limits(void)
{
    char notes[1024] = "";
    if (geteuid() != 0 || wd_cgroup_probe(notes, sizeof notes) != WD_OK) {
        fprintf(stderr, "[cgroups unavailable, skipped: %s] ", notes);
        return;
    }
    snprintf(cg_name, sizeof cg_name, "wdtest-%d", (int)getpid());
    wd_h_at_cleanup(remove_test_cgroup, NULL);
    wd_cgroup_procs procs;
    wd_status st = wd_cgroup_setup(cg_name, 256u << 20, 64, 50, &procs, notes, sizeof notes);
    if (st != WD_OK)
        fprintf(stderr, "wd_cgroup_setup: %s (%s)\n", wd_err_msg(), notes);
    CU_ASSERT_FATAL(st == WD_OK);
    CU_ASSERT_FATAL(procs.count >= 1);
    const char *pp[WD_CGROUP_MAX];
    bool limit_seen = false;
    for (size_t i = 0; i < procs.count; i++) {
        pp[i] = procs.path[i];
        /* The memory limit landed (v1 memory.limit_in_bytes, v2 memory.max). */
        static const char *const files[] = {"memory.limit_in_bytes", "memory.max"};
        for (int f = 0; f < 2; f++) {
            char path[WD_CGROUP_PATH_MAX + 32], *text = NULL;
            snprintf(path, sizeof path, "%.*s%s",
                     (int)(strlen(procs.path[i]) - strlen("cgroup.procs")), procs.path[i],
                     files[f]);
            if (wd_read_file(path, 64, &text, NULL) == WD_OK) {
                CU_ASSERT(strcmp(text, "268435456\n") == 0);
                limit_seen = true;
                free(text);
            }
        }
    }
    CU_ASSERT(limit_seen);

    tshim *t = shim_start("shim-cgroup", &(topts){.script = "sleep 1000 & echo \"bg $!\"; "
                                                           "echo ready; sleep 1000",
                                                  .cgroup_procs = pp,
                                                  .n_cgroup_procs = procs.count});
    tclient c;
    CU_ASSERT_FATAL(tc_connect(&c, t));
    CU_ASSERT(tc_attach(&c, 1));
    CU_ASSERT(TC_WAIT(&c, tc_find(&c, "ready") >= 0, 3000));
    pid_t bg = pid_after(&c, "bg ");
    for (size_t i = 0; i < procs.count; i++) {
        CU_ASSERT(file_has_pid(procs.path[i], t->child));
        CU_ASSERT(file_has_pid(procs.path[i], bg));
        CU_ASSERT(!file_has_pid(procs.path[i], t->shim));
    }
    uint64_t mem = 0, cpu = 0;
    CU_ASSERT(wd_cgroup_stats(cg_name, &mem, &cpu) == WD_OK);
    CU_ASSERT(mem != UINT64_MAX && mem > 0);
    CU_ASSERT(wd_cgroup_remove(cg_name) == WD_ERR_STATE); /* still in use */

    CU_ASSERT(wd_shim_send_signal(c.fd, SIGKILL, WD_SHIM_SCOPE_TREE, 1000) == WD_OK);
    CU_ASSERT(TC_WAIT(&c, c.got_exit, 5000));
    for (size_t i = 0; i < procs.count; i++)
        CU_ASSERT(file_empty(procs.path[i]));
    ack_and_check_gone(&c, t);
    tc_close(&c);
    shim_end(t);
    CU_ASSERT(wd_cgroup_remove(cg_name) == WD_OK);
    for (size_t i = 0; i < procs.count; i++)
        CU_ASSERT(access(procs.path[i], F_OK) != 0);
    CU_ASSERT(wd_cgroup_stats(cg_name, &mem, &cpu) == WD_ERR_NOT_FOUND);
    CU_ASSERT(wd_cgroup_setup("../evil", 0, 0, 0, &procs, NULL, 0) == WD_ERR_INVALID);
    cg_name[0] = '\0';
}

/* The game inside bubblewrap, as nobody: scope 0 must reach the shell
 * below the two bwrap processes (bwrap does not forward signals), and
 * scope 1 must leave nothing. */
static void test_bwrap(void)
{
    if (access("/usr/bin/bwrap", X_OK) != 0 || geteuid() != 0) {
        fprintf(stderr, "[bwrap or root unavailable, skipped] ");
        return;
    }
    for (int round = 0; round < 2; round++) {
        const char *dir = wd_h_tmpdir("shim-bwrap-game");
        CU_ASSERT_FATAL(dir != NULL);
        const char *script =
            round == 0 ? "trap 'echo got-term; exit 3' TERM; echo \"ready $(id -u)\"; "
                         "while :; do sleep 0.1; done"
                       : "trap '' TERM; sleep 1000 & ( sleep 1000 & ); echo \"ready $(id -u)\"; "
                         "while :; do sleep 1; done";
        const char *argv[] = {"/usr/bin/bwrap", "--ro-bind", "/usr", "/usr", "--symlink",
                              "usr/bin", "/bin", "--symlink", "usr/lib", "/lib", "--symlink",
                              "usr/lib64", "/lib64", "--proc", "/proc", "--dev", "/dev", "--bind",
                              dir, dir, "--chdir", dir, "--unshare-pid", "--die-with-parent", "--",
                              "/bin/sh", "-c", script, NULL};
        tshim *t = shim_start("shim-bwrap", &(topts){.argv = argv, .set_ids = true,
                                                     .uid = 65534, .gid = 65534});
        tclient c;
        CU_ASSERT_FATAL(tc_connect(&c, t));
        CU_ASSERT(tc_attach(&c, 1));
        bool ready = TC_WAIT(&c, tc_find_prefix(&c, "ready") >= 0, 5000);
        if (!ready)
            for (size_t i = 0; i < c.n; i++)
                fprintf(stderr, "bwrap game: %s\n", c.lines[i].text);
        CU_ASSERT_FATAL(ready);
        CU_ASSERT(tc_find(&c, "ready 65534") >= 0);
        pid_t tree[64];
        size_t n = descendants(t->shim, tree, 64);
        CU_ASSERT(n >= (round == 0 ? 3u : 5u)); /* bwrap, bwrap (init), sh, ... */
        if (round == 0) {
            CU_ASSERT(wd_shim_send_signal(c.fd, SIGTERM, WD_SHIM_SCOPE_GAME, 1000) == WD_OK);
            CU_ASSERT(TC_WAIT(&c, c.got_exit, 5000));
            CU_ASSERT(tc_find(&c, "got-term") >= 0);
            CU_ASSERT(c.ex.exit_code == 3 && c.ex.signal == 0);
        } else {
            CU_ASSERT(wd_shim_send_signal(c.fd, SIGKILL, WD_SHIM_SCOPE_TREE, 1000) == WD_OK);
            CU_ASSERT(TC_WAIT(&c, c.got_exit, 5000));
            CU_ASSERT(c.ex.exit_code == -1 && c.ex.signal == SIGKILL);
        }
        for (size_t i = 0; i < n; i++)
            CU_ASSERT(proc_gone(tree[i]));
        pid_t left[8];
        CU_ASSERT(descendants(t->shim, left, 8) == 0);
        ack_and_check_gone(&c, t);
        tc_close(&c);
        shim_end(t);
    }
}

/* ---- client-side decoding ------------------------------------------------------ */

static size_t put_frame(uint8_t *b, uint8_t type, const uint8_t *payload, uint32_t len)
{
    b[0] = type;
    b[1] = 0;
    wd_put_u16(b + 2, 0);
    wd_put_u32(b + 4, len);
    memcpy(b + 8, payload, len);
    return 8 + len;
}

static void test_reader_decoders(void)
{
    wd_shim_reader *r = NULL;
    CU_ASSERT_FATAL(wd_shim_reader_create(&r) == WD_OK);
    uint8_t buf[256], pl[128];
    wd_shim_frame f;

    /* LINES with two lines, fed one byte at a time. */
    wd_put_u64(pl, 10);
    wd_put_u32(pl + 8, 2);
    wd_put_u32(pl + 12, 3);
    wd_put_u32(pl + 16, 2);
    pl[20] = 0;
    memcpy(pl + 21, "hi", 2);
    wd_put_u32(pl + 23, 0);
    pl[27] = WD_SHIM_LINE_PARTIAL;
    size_t n = put_frame(buf, WD_SHIM_LINES, pl, 28);
    for (size_t i = 0; i < n; i++) {
        CU_ASSERT(wd_shim_reader_next(r, &f) == WD_ERR_AGAIN);
        CU_ASSERT(wd_shim_reader_push(r, buf + i, 1) == WD_OK);
    }
    CU_ASSERT_FATAL(wd_shim_reader_next(r, &f) == WD_OK);
    wd_shim_lines it;
    CU_ASSERT_FATAL(wd_shim_lines_begin(&f, &it) == WD_OK);
    CU_ASSERT(it.first_seq == 10 && it.count == 2 && it.dropped == 3);
    wd_shim_line l;
    CU_ASSERT(wd_shim_lines_next(&it, &l) && l.seq == 10 && l.len == 2 &&
              memcmp(l.data, "hi", 2) == 0 && l.flags == 0);
    CU_ASSERT(wd_shim_lines_next(&it, &l) && l.seq == 11 && l.len == 0 &&
              l.flags == WD_SHIM_LINE_PARTIAL);
    CU_ASSERT(!wd_shim_lines_next(&it, &l));
    CU_ASSERT(wd_shim_reader_next(r, &f) == WD_ERR_AGAIN);

    /* A line length that overruns the frame, trailing bytes, a count too
     * large: all rejected by the iterator. */
    wd_put_u32(pl + 16, 200);
    f = (wd_shim_frame){.type = WD_SHIM_LINES, .payload = pl, .len = 28};
    CU_ASSERT(wd_shim_lines_begin(&f, &it) == WD_ERR_PROTO);
    wd_put_u32(pl + 16, 2);
    f.len = 29;
    CU_ASSERT(wd_shim_lines_begin(&f, &it) == WD_ERR_PROTO);
    f.len = 28;
    wd_put_u32(pl + 8, 0x40000000u);
    CU_ASSERT(wd_shim_lines_begin(&f, &it) == WD_ERR_PROTO);
    wd_put_u32(pl + 8, 2);
    pl[20] = 0x80;
    CU_ASSERT(wd_shim_lines_begin(&f, &it) == WD_ERR_PROTO);

    /* EXIT and HELLO of the wrong size; decoders check the type. */
    memset(pl, 0, sizeof pl);
    wd_put_u32(pl, (uint32_t)-1);
    wd_put_u32(pl + 4, 9);
    wd_put_u64(pl + 8, 123);
    n = put_frame(buf, WD_SHIM_EXIT, pl, 16);
    CU_ASSERT(wd_shim_reader_push(r, buf, n) == WD_OK);
    CU_ASSERT_FATAL(wd_shim_reader_next(r, &f) == WD_OK);
    wd_shim_exit ex;
    CU_ASSERT(wd_shim_decode_exit(&f, &ex) == WD_OK && ex.exit_code == -1 && ex.signal == 9 &&
              ex.time_unix_ms == 123);
    wd_shim_hello h;
    CU_ASSERT(wd_shim_decode_hello(&f, &h) == WD_ERR_PROTO);
    n = put_frame(buf, WD_SHIM_HELLO, pl, 36);
    CU_ASSERT(wd_shim_reader_push(r, buf, n) == WD_OK);
    CU_ASSERT(wd_shim_reader_next(r, &f) == WD_ERR_PROTO);
    CU_ASSERT(wd_shim_reader_next(r, &f) == WD_ERR_PROTO); /* sticky */
    wd_shim_reader_destroy(&r);
    CU_ASSERT(r == NULL);

    /* Unknown type and oversize length. */
    CU_ASSERT_FATAL(wd_shim_reader_create(&r) == WD_OK);
    n = put_frame(buf, WD_SHIM_ATTACH, pl, 8);
    CU_ASSERT(wd_shim_reader_push(r, buf, n) == WD_OK);
    CU_ASSERT(wd_shim_reader_next(r, &f) == WD_ERR_PROTO);
    wd_shim_reader_destroy(&r);
    CU_ASSERT_FATAL(wd_shim_reader_create(&r) == WD_OK);
    buf[0] = WD_SHIM_LINES;
    wd_put_u32(buf + 4, WD_SHIM_MAX_FRAME + 1);
    CU_ASSERT(wd_shim_reader_push(r, buf, 8) == WD_OK);
    CU_ASSERT(wd_shim_reader_next(r, &f) == WD_ERR_PROTO);
    wd_shim_reader_destroy(&r);
    wd_shim_reader_destroy(&r); /* NULL-safe */

    /* Encoders. */
    CU_ASSERT(wd_shim_encode_attach(buf, 77) == 16 && buf[0] == WD_SHIM_ATTACH &&
              wd_get_u32(buf + 4) == 8 && wd_get_u64(buf + 8) == 77);
    CU_ASSERT(wd_shim_encode_signal(buf, 15, WD_SHIM_SCOPE_TREE) == 13 &&
              wd_get_u32(buf + 8) == 15 && buf[12] == 1);
    CU_ASSERT(wd_shim_encode_exit_ack(buf) == 8 && buf[0] == WD_SHIM_EXIT_ACK);
    CU_ASSERT(wd_shim_encode_resize(buf, 24, 80) == 12 && wd_get_u16(buf + 8) == 24 &&
              wd_get_u16(buf + 10) == 80);

    /* Exit file parsing. */
    const char *dir = wd_h_tmpdir("shim-exitfile");
    char p[600];
    snprintf(p, sizeof p, "%s/exit", dir);
    const char *bad[] = {"", "1 2\n", "x 0 5\n", "1 0 5", "1 0 5\nextra", "300 0 5\n",
                         "1 0 -5\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CU_ASSERT_FATAL(wd_write_file_atomic(p, bad[i], strlen(bad[i]), 0600) == WD_OK);
        CU_ASSERT(wd_shim_read_exit_file(dir, &ex) == WD_ERR_PROTO);
    }
    CU_ASSERT_FATAL(wd_write_file_atomic(p, "-1 15 1700000000000\n", 20, 0600) == WD_OK);
    CU_ASSERT(wd_shim_read_exit_file(dir, &ex) == WD_OK && ex.exit_code == -1 &&
              ex.signal == 15 && ex.time_unix_ms == 1700000000000ull);

    /* A stale socket nobody listens on. */
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s/shim.sock", dir);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    CU_ASSERT_FATAL(bind(s, (struct sockaddr *)&a, sizeof a) == 0);
    close(s);
    int fd = -1;
    CU_ASSERT(wd_shim_connect(dir, &fd) == WD_ERR_NOT_FOUND);
}

static int suite_init(void)
{
    wd_h_at_cleanup(cleanup_shims, NULL);
    return 0;
}

int main(void)
{
    static const wd_h_case client[] = {
        {"reader and decoders", test_reader_decoders},
        {NULL, NULL},
    };
    static const wd_h_case shim[] = {
        {"hello, attach, lines", test_hello_attach_lines},
        {"input, echo, resize", test_input_echo_resize},
        {"50000 lines in order", test_many_lines},
        {"ring overflow, nobody reading", test_ring_overflow_unread},
        {"ring overflow, slow agent", test_ring_overflow_slow_agent},
        {"long line cut", test_long_line_cut},
        {"line bigger than a frame", test_huge_line},
        {"partial line flushed", test_partial_line},
        {"exit status, exit file, EXIT_ACK", test_exit_status_and_file},
        {"reconnect and replay", test_reconnect_replay},
        {"client vanishes mid-stream", test_client_vanishes_mid_stream},
        {"game environment, exec failure", test_game_environment},
        {"unread input, SIGTERM to the shim", test_unread_input_and_shim_sigterm},
        {"tree gone after exit", test_tree_gone_after_exit},
        {"signal scopes", test_signal_scopes},
        {"garbage on the socket", test_garbage},
        {"ack timeout, usage errors", test_ack_timeout},
        {"spawn errors", test_spawn_errors},
        {"cgroup join failure", test_cgroup_join_failure},
        {"cgroup limits", test_cgroup_limits},
        {"bwrap as nobody", test_bwrap},
        {NULL, NULL},
    };
    wd_h_suite("shim_client", NULL, NULL, client);
    wd_h_suite("warden-shim", suite_init, NULL, shim);
    return wd_h_run();
}
