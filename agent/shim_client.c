/* The agent's side of warden-shim (see shim_client.h).
 *
 * Spawning: the shim is started with a double fork. The intermediate child
 * calls setsid() and forks the shim, passes its pid back on a pipe and exits
 * at once, so the agent reaps it immediately and the shim is re-parented
 * (to init or the nearest subreaper): a shim never becomes a zombie of the
 * agent and survives it. Everything the children need (argv, descriptors,
 * the exec error line) is prepared before the first fork, because the agent
 * is multi-threaded and only async-signal-safe calls are allowed in between;
 * the intermediate uses _Fork(), which runs no atfork handlers. The source
 * descriptors are first moved to numbers >= 10 so that placing them on
 * 0, 1, 2 and 3 in the shim can never clobber one another. */
#include "shim_client.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"

extern char **environ;

#define READY_FD 3
#define READER_MAX (WD_SHIM_HDR + WD_SHIM_MAX_FRAME + 65536u)
#define READER_FEED_MAX (256u * 1024u)

/* ---- spawning --------------------------------------------------------------- */

wd_shim_spawn_cfg wd_shim_spawn_cfg_defaults(void)
{
    return (wd_shim_spawn_cfg){.ready_timeout_ms = 5000};
}

/* The shim's argv: borrowed strings plus the numbers it formats itself. */
typedef struct {
    const char **v;
    size_t n, cap;
    char **owned;
    size_t nowned;
    bool nomem;
} argv_builder;

static void ab_add(argv_builder *b, const char *s)
{
    if (b->nomem)
        return;
    if (b->n + 1 >= b->cap) {
        size_t ncap = b->cap ? b->cap * 2 : 64;
        const char **nv = realloc(b->v, ncap * sizeof *nv);
        if (nv == NULL) {
            b->nomem = true;
            return;
        }
        b->v = nv;
        b->cap = ncap;
    }
    b->v[b->n++] = s;
    b->v[b->n] = NULL;
}

__attribute__((format(printf, 3, 4))) static void ab_addf(argv_builder *b, const char *flag,
                                                          const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    char *s = strdup(tmp);
    char **no = s ? realloc(b->owned, (b->nowned + 1) * sizeof *no) : NULL;
    if (no == NULL) {
        free(s);
        b->nomem = true;
        return;
    }
    b->owned = no;
    b->owned[b->nowned++] = s;
    ab_add(b, flag);
    ab_add(b, s);
}

static void ab_free(argv_builder *b)
{
    for (size_t i = 0; i < b->nowned; i++)
        free(b->owned[i]);
    free(b->owned);
    free(b->v);
}

static wd_status build_argv(const wd_shim_spawn_cfg *cfg, argv_builder *b)
{
    ab_add(b, cfg->shim_path);
    ab_addf(b, "--ready-fd", "%d", READY_FD);
    ab_add(b, "--id");
    ab_add(b, cfg->server_id);
    ab_add(b, "--run-dir");
    ab_add(b, cfg->run_dir);
    ab_add(b, "--cwd");
    ab_add(b, cfg->cwd);
    if (cfg->set_ids) {
        ab_addf(b, "--uid", "%u", (unsigned)cfg->uid);
        ab_addf(b, "--gid", "%u", (unsigned)cfg->gid);
    }
    for (size_t i = 0; i < cfg->n_cgroup_procs; i++) {
        ab_add(b, "--cgroup-procs");
        ab_add(b, cfg->cgroup_procs[i]);
    }
    for (size_t i = 0; i < cfg->n_env; i++) {
        ab_add(b, "--env");
        ab_add(b, cfg->env[i]);
    }
    if (cfg->ring_bytes)
        ab_addf(b, "--ring-bytes", "%zu", cfg->ring_bytes);
    if (cfg->max_line)
        ab_addf(b, "--max-line", "%zu", cfg->max_line);
    if (cfg->rows)
        ab_addf(b, "--rows", "%u", cfg->rows);
    if (cfg->cols)
        ab_addf(b, "--cols", "%u", cfg->cols);
    if (cfg->partial_ms)
        ab_addf(b, "--partial-ms", "%u", cfg->partial_ms);
    ab_add(b, "--");
    for (size_t i = 0; cfg->argv[i] != NULL; i++)
        ab_add(b, cfg->argv[i]);
    return b->nomem ? WD_ERR(WD_ERR_NOMEM, "out of memory building the shim's argv") : WD_OK;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* Reads the shim's "ok ..." / "error ..." line until deadline. */
static wd_status read_ready(int fd, int timeout_ms, char *buf, size_t cap)
{
    int64_t deadline = wd_mono_ms() + timeout_ms;
    size_t len = 0;
    buf[0] = '\0';
    while (len < cap - 1 && memchr(buf, '\n', len) == NULL) {
        int64_t left = deadline - wd_mono_ms();
        if (left <= 0)
            return WD_ERR(WD_ERR_TIMEOUT, "warden-shim did not report readiness within %d ms",
                          timeout_ms);
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        int r = poll(&pf, 1, (int)left);
        if (r < 0 && errno != EINTR)
            return WD_ERR(WD_ERR_IO, "poll: %s", strerror(errno));
        if (r <= 0)
            continue;
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return WD_ERR(WD_ERR_IO, "reading the shim's ready line: %s", strerror(errno));
        if (n == 0)
            break;
        len += (size_t)n;
        buf[len] = '\0';
    }
    if (len == 0)
        return WD_ERR(WD_ERR_IO, "warden-shim exited before reporting readiness (see its log)");
    char *nl = memchr(buf, '\n', len);
    if (nl)
        *nl = '\0';
    return WD_OK;
}

static bool parse_pid_tok(const char **p, pid_t *out)
{
    char *end;
    errno = 0;
    long v = strtol(*p, &end, 10);
    if (errno != 0 || end == *p || v <= 0 || v > INT_MAX)
        return false;
    *out = (pid_t)v;
    *p = end;
    return true;
}

wd_status wd_shim_spawn(const wd_shim_spawn_cfg *cfg, pid_t *shim_pid, pid_t *child_pid)
{
    wd_status st = WD_OK;
    argv_builder ab = {0};
    int rpipe[2] = {-1, -1}, ppipe[2] = {-1, -1};
    int nullfd = -1, logfd = -1, hi_null = -1, hi_log = -1, hi_ready = -1;
    pid_t mid = -1, shim = 0;
    char errline[PATH_MAX + 64];
    char ready[1024];

    if (cfg->shim_path == NULL || cfg->server_id == NULL || cfg->run_dir == NULL ||
        cfg->cwd == NULL || cfg->argv == NULL || cfg->argv[0] == NULL)
        return WD_ERR(WD_ERR_INVALID, "shim spawn: shim_path, server_id, run_dir, cwd and argv "
                                      "are required");
    if ((st = wd_mkdir_p(cfg->run_dir, 0700)) != WD_OK)
        goto out;
    if ((st = build_argv(cfg, &ab)) != WD_OK)
        goto out;
    int n = snprintf(errline, sizeof errline, "error cannot execute %s\n", cfg->shim_path);
    size_t errlen = n > 0 && (size_t)n < sizeof errline ? (size_t)n : 0;

    if (pipe2(rpipe, O_CLOEXEC) != 0 || pipe2(ppipe, O_CLOEXEC) != 0) {
        st = WD_ERR(WD_ERR_IO, "pipe: %s", strerror(errno));
        goto out;
    }
    nullfd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (nullfd < 0) {
        st = WD_ERR(WD_ERR_IO, "open /dev/null: %s", strerror(errno));
        goto out;
    }
    if (cfg->log_path) {
        logfd = open(cfg->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (logfd < 0) {
            st = WD_ERR(WD_ERR_IO, "open %s: %s", cfg->log_path, strerror(errno));
            goto out;
        }
    }
    hi_null = fcntl(nullfd, F_DUPFD_CLOEXEC, 10);
    hi_log = fcntl(logfd >= 0 ? logfd : nullfd, F_DUPFD_CLOEXEC, 10);
    hi_ready = fcntl(rpipe[1], F_DUPFD_CLOEXEC, 10);
    if (hi_null < 0 || hi_log < 0 || hi_ready < 0) {
        st = WD_ERR(WD_ERR_IO, "dup: %s", strerror(errno));
        goto out;
    }
    sigset_t none;
    sigemptyset(&none);

    mid = fork();
    if (mid < 0) {
        st = WD_ERR(WD_ERR_IO, "fork: %s", strerror(errno));
        goto out;
    }
    if (mid == 0) {
        /* Intermediate child: async-signal-safe calls only from here on. */
        setsid();
        pid_t g = _Fork();
        if (g == 0) {
            sigprocmask(SIG_SETMASK, &none, NULL);
            if (dup2(hi_null, 0) < 0 || dup2(hi_log, 1) < 0 || dup2(hi_log, 2) < 0 ||
                dup2(hi_ready, READY_FD) < 0)
                _exit(127);
            execve(cfg->shim_path, (char *const *)ab.v, environ);
            if (errlen > 0 && write(READY_FD, errline, errlen) < 0)
                _exit(127);
            _exit(127);
        }
        if (g < 0) {
            static const char msg[] = "error fork failed\n";
            if (write(hi_ready, msg, sizeof msg - 1) < 0)
                _exit(1);
            _exit(1);
        }
        if (write(ppipe[1], &g, sizeof g) != (ssize_t)sizeof g)
            _exit(1);
        _exit(0);
    }

    /* Only the shim may hold the write end now, so EOF means it is gone. */
    close_fd(&rpipe[1]);
    close_fd(&ppipe[1]);
    close_fd(&hi_ready);
    int wst;
    while (waitpid(mid, &wst, 0) < 0 && errno == EINTR)
        ;
    ssize_t r;
    do {
        r = read(ppipe[0], &shim, sizeof shim);
    } while (r < 0 && errno == EINTR);
    if (r != (ssize_t)sizeof shim)
        shim = 0;

    st = read_ready(rpipe[0], cfg->ready_timeout_ms > 0 ? cfg->ready_timeout_ms : 5000, ready,
                    sizeof ready);
    if (st != WD_OK)
        goto out;
    if (strncmp(ready, "error ", 6) == 0) {
        const char *msg = ready + 6;
        shim = 0; /* it exits by itself */
        st = WD_ERR(strncmp(msg, "another warden-shim", 19) == 0 ? WD_ERR_EXISTS : WD_ERR_IO,
                    "warden-shim %s: %s", cfg->server_id, msg);
        goto out;
    }
    const char *p = ready;
    pid_t sp, cp;
    if (strncmp(p, "ok ", 3) != 0) {
        st = WD_ERR(WD_ERR_PROTO, "warden-shim %s: bad ready line \"%s\"", cfg->server_id, ready);
        goto out;
    }
    p += 3;
    if (!parse_pid_tok(&p, &sp) || *p++ != ' ' || !parse_pid_tok(&p, &cp) || *p != '\0' ||
        (shim > 0 && sp != shim)) {
        st = WD_ERR(WD_ERR_PROTO, "warden-shim %s: bad ready line \"%s\"", cfg->server_id, ready);
        goto out;
    }
    if (shim_pid)
        *shim_pid = sp;
    if (child_pid)
        *child_pid = cp;
    shim = 0;
out:
    /* A shim that did not become ready is not left running (its game dies
     * with it: the game has PR_SET_PDEATHSIG). */
    if (st != WD_OK && shim > 0)
        kill(shim, SIGKILL);
    close_fd(&rpipe[0]);
    close_fd(&rpipe[1]);
    close_fd(&ppipe[0]);
    close_fd(&ppipe[1]);
    close_fd(&nullfd);
    close_fd(&logfd);
    close_fd(&hi_null);
    close_fd(&hi_log);
    close_fd(&hi_ready);
    ab_free(&ab);
    return st;
}

/* ---- connection ----------------------------------------------------------- */

wd_status wd_shim_connect(const char *run_dir, int *out)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    int n = snprintf(a.sun_path, sizeof a.sun_path, "%s/shim.sock", run_dir);
    if (n < 0 || (size_t)n >= sizeof a.sun_path)
        return WD_ERR(WD_ERR_INVALID, "socket path too long: %s/shim.sock", run_dir);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return WD_ERR(WD_ERR_IO, "socket: %s", strerror(errno));
    int rc;
    do {
        rc = connect(fd, (struct sockaddr *)&a, sizeof a);
    } while (rc != 0 && errno == EINTR);
    if (rc != 0) {
        int e = errno;
        close(fd);
        if (e == ENOENT || e == ECONNREFUSED || e == ENOTDIR)
            return WD_ERR(WD_ERR_NOT_FOUND, "no shim listens on %s", a.sun_path);
        if (e == EAGAIN)
            return WD_ERR(WD_ERR_AGAIN, "shim on %s is busy", a.sun_path);
        return WD_ERR(WD_ERR_IO, "connect %s: %s", a.sun_path, strerror(e));
    }
    *out = fd;
    return WD_OK;
}

/* ---- reading frames --------------------------------------------------------- */

struct wd_shim_reader {
    uint8_t *buf;
    size_t start, end, cap;
    bool broken;
};

wd_status wd_shim_reader_create(wd_shim_reader **out)
{
    wd_shim_reader *r = calloc(1, sizeof *r);
    if (r == NULL)
        return WD_ERR(WD_ERR_NOMEM, "out of memory");
    r->cap = 65536;
    r->buf = malloc(r->cap);
    if (r->buf == NULL) {
        free(r);
        return WD_ERR(WD_ERR_NOMEM, "out of memory");
    }
    *out = r;
    return WD_OK;
}

void wd_shim_reader_destroy(wd_shim_reader **p)
{
    if (p == NULL || *p == NULL)
        return;
    free((*p)->buf);
    free(*p);
    *p = NULL;
}

static bool type_from_shim(uint8_t t)
{
    return t == WD_SHIM_HELLO || t == WD_SHIM_LINES || t == WD_SHIM_EXIT;
}

/* Lengths the shim can send for each type: catching impossible ones in the
 * header rejects garbage without buffering up to a megabyte of it. */
static bool len_ok(uint8_t t, uint32_t len)
{
    switch (t) {
    case WD_SHIM_HELLO:
        return len == 37;
    case WD_SHIM_EXIT:
        return len == 16;
    case WD_SHIM_LINES:
        return len >= 16 && len <= WD_SHIM_MAX_FRAME;
    default:
        return false;
    }
}

/* True when a complete frame waits at start. */
static bool frame_ready(const wd_shim_reader *r)
{
    if (r->end - r->start < WD_SHIM_HDR)
        return false;
    return r->end - r->start >= WD_SHIM_HDR + (size_t)wd_get_u32(r->buf + r->start + 4);
}

/* Makes room for `want` more bytes (compacting, then growing up to
 * READER_MAX); returns the room available. */
static size_t make_room(wd_shim_reader *r, size_t want)
{
    if (r->start > 0) {
        memmove(r->buf, r->buf + r->start, r->end - r->start);
        r->end -= r->start;
        r->start = 0;
    }
    if (r->cap - r->end < want && r->cap < READER_MAX) {
        size_t ncap = r->cap;
        while (ncap - r->end < want && ncap < READER_MAX)
            ncap *= 2;
        if (ncap > READER_MAX)
            ncap = READER_MAX;
        uint8_t *nb = realloc(r->buf, ncap);
        if (nb != NULL) {
            r->buf = nb;
            r->cap = ncap;
        }
    }
    return r->cap - r->end;
}

wd_status wd_shim_reader_feed(wd_shim_reader *r, int fd)
{
    if (frame_ready(r))
        return WD_ERR(WD_ERR_FULL, "complete frames wait to be read");
    size_t total = 0;
    for (;;) {
        size_t room = make_room(r, 65536);
        if (room == 0)
            return total ? WD_OK : WD_ERR(WD_ERR_FULL, "reader buffer full");
        ssize_t n = read(fd, r->buf + r->end, room);
        if (n > 0) {
            r->end += (size_t)n;
            total += (size_t)n;
            if (total >= READER_FEED_MAX || frame_ready(r))
                return WD_OK;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (total > 0)
            return WD_OK;
        if (n == 0)
            return WD_ERR(WD_ERR_CLOSED, "the shim closed the connection");
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return WD_ERR_AGAIN;
        return WD_ERR(WD_ERR_IO, "read from shim: %s", strerror(errno));
    }
}

wd_status wd_shim_reader_push(wd_shim_reader *r, const void *data, size_t len)
{
    if (make_room(r, len) < len)
        return WD_ERR(WD_ERR_FULL, "reader buffer full");
    memcpy(r->buf + r->end, data, len);
    r->end += len;
    return WD_OK;
}

wd_status wd_shim_reader_next(wd_shim_reader *r, wd_shim_frame *f)
{
    if (r->broken)
        return WD_ERR(WD_ERR_PROTO, "shim stream is broken");
    if (r->end - r->start < WD_SHIM_HDR)
        return WD_ERR_AGAIN;
    const uint8_t *h = r->buf + r->start;
    uint32_t len = wd_get_u32(h + 4);
    if (!type_from_shim(h[0]) || !len_ok(h[0], len)) {
        r->broken = true;
        return WD_ERR(WD_ERR_PROTO, "bad frame from shim: type %u length %u", h[0], len);
    }
    if (r->end - r->start < WD_SHIM_HDR + (size_t)len)
        return WD_ERR_AGAIN;
    f->type = h[0];
    f->payload = h + WD_SHIM_HDR;
    f->len = len;
    r->start += WD_SHIM_HDR + len;
    return WD_OK;
}

/* ---- decoding ------------------------------------------------------------- */

wd_status wd_shim_decode_hello(const wd_shim_frame *f, wd_shim_hello *out)
{
    if (f->type != WD_SHIM_HELLO || f->len != 37)
        return WD_ERR(WD_ERR_PROTO, "not a HELLO frame (type %u length %u)", f->type, f->len);
    const uint8_t *p = f->payload;
    out->version = wd_get_u32(p);
    out->shim_pid = (pid_t)wd_get_u32(p + 4);
    out->child_pid = (pid_t)wd_get_u32(p + 8);
    out->started_unix_ms = wd_get_u64(p + 12);
    out->oldest_seq = wd_get_u64(p + 20);
    out->next_seq = wd_get_u64(p + 28);
    out->exited = p[36] != 0;
    if (out->oldest_seq < 1 || out->next_seq < out->oldest_seq || p[36] > 1)
        return WD_ERR(WD_ERR_PROTO, "HELLO with inconsistent fields");
    return WD_OK;
}

wd_status wd_shim_decode_exit(const wd_shim_frame *f, wd_shim_exit *out)
{
    if (f->type != WD_SHIM_EXIT || f->len != 16)
        return WD_ERR(WD_ERR_PROTO, "not an EXIT frame (type %u length %u)", f->type, f->len);
    out->exit_code = (int32_t)wd_get_u32(f->payload);
    out->signal = (int32_t)wd_get_u32(f->payload + 4);
    out->time_unix_ms = wd_get_u64(f->payload + 8);
    return WD_OK;
}

wd_status wd_shim_lines_begin(const wd_shim_frame *f, wd_shim_lines *it)
{
    if (f->type != WD_SHIM_LINES || f->len < 16)
        return WD_ERR(WD_ERR_PROTO, "not a LINES frame (type %u length %u)", f->type, f->len);
    const uint8_t *p = f->payload, *end = f->payload + f->len;
    it->first_seq = wd_get_u64(p);
    it->count = wd_get_u32(p + 8);
    it->dropped = wd_get_u32(p + 12);
    if (it->first_seq < 1 || it->first_seq > UINT64_MAX - it->count ||
        it->count > (f->len - 16) / 5)
        return WD_ERR(WD_ERR_PROTO, "LINES header out of range");
    const uint8_t *q = p + 16;
    for (uint32_t i = 0; i < it->count; i++) {
        if ((size_t)(end - q) < 5)
            return WD_ERR(WD_ERR_PROTO, "LINES frame truncated at line %u", i);
        uint32_t len = wd_get_u32(q);
        if (q[4] & ~(WD_SHIM_LINE_CUT | WD_SHIM_LINE_PARTIAL))
            return WD_ERR(WD_ERR_PROTO, "LINES line %u has unknown flags 0x%x", i, q[4]);
        q += 5;
        if ((size_t)(end - q) < len)
            return WD_ERR(WD_ERR_PROTO, "LINES line %u overruns the frame", i);
        q += len;
    }
    if (q != end)
        return WD_ERR(WD_ERR_PROTO, "LINES frame has %zu trailing bytes", (size_t)(end - q));
    it->p = p + 16;
    it->end = end;
    it->i = 0;
    return WD_OK;
}

bool wd_shim_lines_next(wd_shim_lines *it, wd_shim_line *line)
{
    if (it->i >= it->count)
        return false;
    line->seq = it->first_seq + it->i;
    line->len = wd_get_u32(it->p);
    line->flags = it->p[4];
    line->data = it->p + 5;
    it->p += 5 + line->len;
    it->i++;
    return true;
}

/* ---- sending ---------------------------------------------------------------- */

static void put_hdr(uint8_t *b, uint8_t type, uint32_t len)
{
    b[0] = type;
    b[1] = 0;
    wd_put_u16(b + 2, 0);
    wd_put_u32(b + 4, len);
}

size_t wd_shim_encode_attach(uint8_t *buf, uint64_t from_seq)
{
    put_hdr(buf, WD_SHIM_ATTACH, 8);
    wd_put_u64(buf + 8, from_seq);
    return 16;
}

size_t wd_shim_encode_signal(uint8_t *buf, int signo, wd_shim_scope scope)
{
    put_hdr(buf, WD_SHIM_SIGNAL, 5);
    wd_put_u32(buf + 8, (uint32_t)signo);
    buf[12] = (uint8_t)scope;
    return 13;
}

size_t wd_shim_encode_exit_ack(uint8_t *buf)
{
    put_hdr(buf, WD_SHIM_EXIT_ACK, 0);
    return 8;
}

size_t wd_shim_encode_resize(uint8_t *buf, uint16_t rows, uint16_t cols)
{
    put_hdr(buf, WD_SHIM_RESIZE, 4);
    wd_put_u16(buf + 8, rows);
    wd_put_u16(buf + 10, cols);
    return 12;
}

void wd_shim_encode_input_header(uint8_t *buf, uint32_t len)
{
    put_hdr(buf, WD_SHIM_INPUT, len);
}

static wd_status send_all(int fd, struct iovec *iov, int iovcnt, int timeout_ms)
{
    int64_t deadline = timeout_ms >= 0 ? wd_mono_ms() + timeout_ms : -1;
    while (iovcnt > 0) {
        if (iov->iov_len == 0) {
            iov++;
            iovcnt--;
            continue;
        }
        struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)iovcnt};
        ssize_t n = sendmsg(fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            size_t left = (size_t)n;
            while (left > 0) {
                size_t take = left < iov->iov_len ? left : iov->iov_len;
                iov->iov_base = (uint8_t *)iov->iov_base + take;
                iov->iov_len -= take;
                left -= take;
                if (iov->iov_len == 0) {
                    iov++;
                    iovcnt--;
                }
            }
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int wait = -1;
            if (deadline >= 0) {
                int64_t left = deadline - wd_mono_ms();
                if (left <= 0)
                    return WD_ERR(WD_ERR_TIMEOUT, "the shim did not take a frame in %d ms",
                                  timeout_ms);
                wait = left > INT_MAX ? INT_MAX : (int)left;
            }
            struct pollfd pf = {.fd = fd, .events = POLLOUT};
            if (poll(&pf, 1, wait) < 0 && errno != EINTR)
                return WD_ERR(WD_ERR_IO, "poll: %s", strerror(errno));
            continue;
        }
        if (n < 0 && (errno == EPIPE || errno == ECONNRESET || errno == ENOTCONN))
            return WD_ERR(WD_ERR_CLOSED, "the shim closed the connection");
        return WD_ERR(WD_ERR_IO, "send to shim: %s", n < 0 ? strerror(errno) : "sent nothing");
    }
    return WD_OK;
}

static wd_status send_small(int fd, uint8_t *buf, size_t len, int timeout_ms)
{
    struct iovec iov = {.iov_base = buf, .iov_len = len};
    return send_all(fd, &iov, 1, timeout_ms);
}

wd_status wd_shim_send_attach(int fd, uint64_t from_seq, int timeout_ms)
{
    uint8_t b[WD_SHIM_CTRL_MAX];
    return send_small(fd, b, wd_shim_encode_attach(b, from_seq), timeout_ms);
}

wd_status wd_shim_send_input(int fd, const void *data, size_t len, int timeout_ms)
{
    if (len > WD_SHIM_MAX_FRAME)
        return WD_ERR(WD_ERR_INVALID, "input of %zu bytes exceeds a frame", len);
    uint8_t h[WD_SHIM_HDR];
    wd_shim_encode_input_header(h, (uint32_t)len);
    struct iovec iov[2] = {{.iov_base = h, .iov_len = sizeof h},
                           {.iov_base = (void *)data, .iov_len = len}};
    return send_all(fd, iov, 2, timeout_ms);
}

wd_status wd_shim_send_signal(int fd, int signo, wd_shim_scope scope, int timeout_ms)
{
    uint8_t b[WD_SHIM_CTRL_MAX];
    return send_small(fd, b, wd_shim_encode_signal(b, signo, scope), timeout_ms);
}

wd_status wd_shim_send_exit_ack(int fd, int timeout_ms)
{
    uint8_t b[WD_SHIM_CTRL_MAX];
    return send_small(fd, b, wd_shim_encode_exit_ack(b), timeout_ms);
}

wd_status wd_shim_send_resize(int fd, uint16_t rows, uint16_t cols, int timeout_ms)
{
    uint8_t b[WD_SHIM_CTRL_MAX];
    return send_small(fd, b, wd_shim_encode_resize(b, rows, cols), timeout_ms);
}

/* ---- files a shim leaves ------------------------------------------------------ */

static wd_status read_run_file(const char *run_dir, const char *name, char *buf, size_t cap)
{
    char path[PATH_MAX];
    int n = snprintf(path, sizeof path, "%s/%s", run_dir, name);
    if (n < 0 || (size_t)n >= sizeof path)
        return WD_ERR(WD_ERR_INVALID, "path too long: %s/%s", run_dir, name);
    char *text = NULL;
    size_t len = 0;
    wd_status st = wd_read_file(path, cap - 1, &text, &len);
    if (st != WD_OK)
        return st;
    memcpy(buf, text, len + 1);
    free(text);
    return WD_OK;
}

static bool parse_ll(const char **p, long long min, long long max, long long *out)
{
    char *end;
    if (**p != '-' && (**p < '0' || **p > '9'))
        return false;
    errno = 0;
    long long v = strtoll(*p, &end, 10);
    if (errno != 0 || end == *p || v < min || v > max)
        return false;
    *out = v;
    *p = end;
    return true;
}

wd_status wd_shim_read_exit_file(const char *run_dir, wd_shim_exit *out)
{
    char buf[128];
    wd_status st = read_run_file(run_dir, "exit", buf, sizeof buf);
    if (st != WD_OK)
        return st;
    const char *p = buf;
    long long code, sig, ms;
    if (!parse_ll(&p, -1, 255, &code) || *p++ != ' ' || !parse_ll(&p, 0, 128, &sig) ||
        *p++ != ' ' || !parse_ll(&p, 0, LLONG_MAX, &ms) || strcmp(p, "\n") != 0)
        return WD_ERR(WD_ERR_PROTO, "%s/exit is malformed", run_dir);
    out->exit_code = (int32_t)code;
    out->signal = (int32_t)sig;
    out->time_unix_ms = (uint64_t)ms;
    return WD_OK;
}

wd_status wd_shim_read_pid_file(const char *run_dir, pid_t *pid)
{
    char buf[64];
    wd_status st = read_run_file(run_dir, "shim.pid", buf, sizeof buf);
    if (st != WD_OK)
        return st;
    const char *p = buf;
    long long v;
    if (!parse_ll(&p, 1, INT_MAX, &v) || strcmp(p, "\n") != 0)
        return WD_ERR(WD_ERR_PROTO, "%s/shim.pid is malformed", run_dir);
    *pid = (pid_t)v;
    return WD_OK;
}
