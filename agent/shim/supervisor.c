/* The shim's event loop (see supervisor.h).
 *
 * One poll(2) loop over at most four descriptors: a signalfd (SIGCHLD,
 * SIGTERM, SIGINT), the listening socket, the pty master and the current
 * agent connection. Everything is non-blocking. The only timers are the
 * partial-line flush (partial_ms after the last pty byte), the 10 ms
 * tick while the game's tree is being killed after its exit, and the
 * EXIT_ACK deadline.
 *
 * Flow control: LINES frames are generated from the ring only while less
 * than PUMP_HIGH bytes wait in the connection's output buffer, so a slow
 * agent costs at most that much memory; the ring keeps everything else and
 * the connection's cursor tells what was sent. The pty is read regardless,
 * so the game never blocks on the agent.
 *
 * Exit: when the direct child is reaped the state goes RUNNING -> REAPING.
 * Every tick SIGKILLs whatever is left of the tree (descendants, cgroup
 * members, the child's process group) and reaps it; once nothing is left the
 * pty is drained until EIO (all slave ends closed), the unterminated line is
 * flushed, RUN_DIR/exit is written and the state becomes EXITED, which lets
 * the connection send EXIT once its cursor has reached the end of the ring. */
#include "supervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "proctree.h"
#include "ring.h"
#include "shim_proto.h"
#include "util.h"

#define PUMP_HIGH (64u * 1024u)        /* queued output that stops LINES generation */
#define LINES_MAX_COUNT 256u           /* lines per LINES frame */
#define LINES_MAX_PAYLOAD (64u * 1024u) /* bytes per LINES frame (one longer line may exceed) */
#define INPUT_MAX (64u * 1024u)        /* agent input waiting for the pty */
#define PTY_CHUNK (64u * 1024u)
#define PTY_READS_PER_TURN 16 /* then serve the agent before reading on */
#define CONN_READ_PER_TURN (256u * 1024u)
#define REAP_TICK_MS 10
#define REAP_GIVE_UP_MS 30000 /* unkillable (D state) leftovers: report the exit anyway */
#define EIO_GRACE_MS 200      /* wait this long for the pty to report all slaves closed */

typedef enum { GAME_RUNNING, GAME_REAPING, GAME_EXITED } game_state;

typedef struct {
    int fd;
    uint8_t *in;
    size_t in_len, in_cap;
    uint8_t *out;
    size_t out_off, out_len, out_cap;
    bool attached;
    bool exit_sent;
    uint64_t cursor; /* next sequence number to send */
} conn;

struct wd_supervisor {
    wd_supervisor_cfg cfg;
    char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    char pid_path[PATH_MAX];
    char exit_path[PATH_MAX];
    bool sock_made, pid_made;
    bool blocked;
    sigset_t old_mask;

    int sigfd, lfd, pty;
    bool pty_eof;
    int64_t pty_last_ms;
    uint8_t *rbuf;
    uint8_t *input;
    size_t input_len;
    size_t input_dropped; /* bytes dropped in the current overload episode */

    pid_t child;
    game_state state;
    int64_t reap_start_ms;
    int64_t tree_gone_ms; /* 0 until the tree is gone */
    int64_t exited_ms;
    int32_t exit_code, exit_signal;
    uint64_t exit_unix_ms;
    uint64_t started_unix_ms;

    wd_ring *ring;
    conn *c;
    bool done;
};

/* ---- connection -------------------------------------------------------- */

static void conn_close(wd_supervisor *s, const char *why)
{
    conn *c = s->c;
    if (c == NULL)
        return;
    if (why)
        wd_info("server %s: agent connection closed: %s", s->cfg.id, why);
    close(c->fd);
    free(c->in);
    free(c->out);
    free(c);
    s->c = NULL;
}

/* Room for n more output bytes; false when memory is short. */
static bool out_reserve(conn *c, size_t n)
{
    if (c->out_cap - c->out_len >= n)
        return true;
    if (c->out_off > 0) {
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
        if (c->out_cap - c->out_len >= n)
            return true;
    }
    size_t ncap = c->out_cap ? c->out_cap : 16384;
    while (ncap - c->out_len < n)
        ncap *= 2;
    uint8_t *nb = realloc(c->out, ncap);
    if (nb == NULL)
        return false;
    c->out = nb;
    c->out_cap = ncap;
    return true;
}

/* Appends a frame header and returns where its payload goes. */
static uint8_t *out_frame(conn *c, uint8_t type, uint32_t len)
{
    if (!out_reserve(c, WD_SHIM_HDR + len))
        return NULL;
    uint8_t *h = c->out + c->out_len;
    h[0] = type;
    h[1] = 0;
    wd_put_u16(h + 2, 0);
    wd_put_u32(h + 4, len);
    c->out_len += WD_SHIM_HDR + len;
    return h + WD_SHIM_HDR;
}

/* Writes what the socket takes. False when the connection was closed. */
static bool conn_flush(wd_supervisor *s)
{
    conn *c = s->c;
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            c->out_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return true;
        conn_close(s, n < 0 ? strerror(errno) : "send returned 0");
        return false;
    }
    c->out_off = c->out_len = 0;
    return true;
}

static bool queue_hello(wd_supervisor *s)
{
    uint8_t *p = out_frame(s->c, WD_SHIM_HELLO, 37);
    if (p == NULL)
        return false;
    wd_put_u32(p, WD_SHIM_PROTO_VERSION);
    wd_put_u32(p + 4, (uint32_t)getpid());
    wd_put_u32(p + 8, (uint32_t)s->child);
    wd_put_u64(p + 12, s->started_unix_ms);
    wd_put_u64(p + 20, wd_ring_oldest(s->ring));
    wd_put_u64(p + 28, wd_ring_next(s->ring));
    p[36] = s->state == GAME_EXITED ? 1 : 0;
    return true;
}

static bool queue_exit(wd_supervisor *s)
{
    uint8_t *p = out_frame(s->c, WD_SHIM_EXIT, 16);
    if (p == NULL)
        return false;
    wd_put_u32(p, (uint32_t)s->exit_code);
    wd_put_u32(p + 4, (uint32_t)s->exit_signal);
    wd_put_u64(p + 8, s->exit_unix_ms);
    return true;
}

/* One LINES frame from the connection's cursor. A cursor that fell behind
 * the ring's oldest line becomes the frame's `dropped` count. */
static bool queue_lines(wd_supervisor *s)
{
    conn *c = s->c;
    uint64_t oldest = wd_ring_oldest(s->ring), next = wd_ring_next(s->ring);
    uint64_t first = c->cursor < oldest ? oldest : c->cursor;
    uint64_t gap = first - c->cursor;
    uint32_t dropped = gap > UINT32_MAX ? UINT32_MAX : (uint32_t)gap;
    uint32_t count = 0;
    size_t payload = 16;
    for (uint64_t seq = first; seq < next && count < LINES_MAX_COUNT; seq++) {
        uint32_t len;
        wd_ring_line(s->ring, seq, &len, NULL, NULL);
        if (count > 0 && payload + 5 + len > LINES_MAX_PAYLOAD)
            break;
        payload += 5 + len;
        count++;
    }
    uint8_t *p = out_frame(c, WD_SHIM_LINES, (uint32_t)payload);
    if (p == NULL)
        return false;
    wd_put_u64(p, first);
    wd_put_u32(p + 8, count);
    wd_put_u32(p + 12, dropped);
    p += 16;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t len;
        uint8_t flags;
        wd_ring_line(s->ring, first + i, &len, &flags, p + 5);
        wd_put_u32(p, len);
        p[4] = flags;
        p += 5 + len;
    }
    c->cursor = first + count;
    return true;
}

static bool pump_has_more(const wd_supervisor *s)
{
    const conn *c = s->c;
    return c->cursor < wd_ring_next(s->ring) || (s->state == GAME_EXITED && !c->exit_sent);
}

/* Sends the attached agent everything it has not seen, as far as the socket
 * takes it, and EXIT once the game is gone and every line went out. Stops
 * only when the socket is full (POLLOUT resumes it) or nothing is left:
 * once the game is gone no new output would call it again. */
static void pump(wd_supervisor *s)
{
    conn *c = s->c;
    if (c == NULL || !c->attached)
        return;
    for (;;) {
        while (c->out_len - c->out_off < PUMP_HIGH && pump_has_more(s)) {
            bool ok;
            if (c->cursor < wd_ring_next(s->ring)) {
                ok = queue_lines(s);
            } else {
                ok = queue_exit(s);
                c->exit_sent = ok;
            }
            if (!ok) {
                conn_close(s, "out of memory");
                return;
            }
        }
        if (!conn_flush(s))
            return; /* closed */
        if (c->out_off < c->out_len || !pump_has_more(s))
            return;
    }
}

/* ---- game control ------------------------------------------------------- */

static void signal_game(wd_supervisor *s, int sig, unsigned scope)
{
    if (s->state != GAME_RUNNING) {
        wd_info("server %s: signal %d ignored: the game has already exited", s->cfg.id, sig);
        return;
    }
    if (scope == 0) {
        pid_t target = wd_proctree_game_pid(s->child);
        if (kill(target, sig) != 0)
            wd_warn("server %s: kill(%d, %d): %s", s->cfg.id, (int)target, sig, strerror(errno));
        else
            wd_info("server %s: signal %d sent to the game (pid %d)", s->cfg.id, sig, (int)target);
        if (sig == SIGINT) {
            /* ^C: like a terminal's Ctrl-C, reach the game's children too
             * (a shell waiting on a child only acts once the child is gone). */
            pid_t *kids = NULL;
            size_t nk = 0;
            if (wd_proctree_descendants(target, &kids, &nk) == WD_OK) {
                for (size_t i = 0; i < nk; i++)
                    kill(kids[i], sig);
                free(kids);
            }
        }
        return;
    }
    size_t n = wd_proctree_signal_tree(getpid(), s->child, s->cfg.game.cgroup_procs,
                                       s->cfg.game.n_cgroup_procs, sig);
    wd_info("server %s: signal %d sent to %zu processes of the game's tree", s->cfg.id, sig, n);
}

static void write_input(wd_supervisor *s)
{
    size_t off = 0;
    while (off < s->input_len) {
        ssize_t n = write(s->pty, s->input + off, s->input_len - off);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        wd_warn("server %s: input of %zu bytes dropped: pty write: %s", s->cfg.id,
                s->input_len - off, n < 0 ? strerror(errno) : "returned 0");
        off = s->input_len;
    }
    memmove(s->input, s->input + off, s->input_len - off);
    s->input_len -= off;
}

static void add_input(wd_supervisor *s, const uint8_t *p, size_t len)
{
    if (s->state != GAME_RUNNING || s->pty_eof) {
        wd_info("server %s: input of %zu bytes dropped: the game's terminal is closed",
                s->cfg.id, len);
        return;
    }
    size_t room = INPUT_MAX - s->input_len;
    if (len > room) {
        /* The game is not reading its console. Blocking the agent (or this
         * loop) would be worse than losing keystrokes nobody reads. One log
         * line per episode, one when it ends. */
        if (s->input_dropped == 0)
            wd_warn("server %s: the game does not read its input: %zu bytes wait, dropping "
                    "more",
                    s->cfg.id, s->input_len);
        s->input_dropped += len - room;
        len = room;
    } else if (s->input_dropped > 0) {
        wd_warn("server %s: the game reads its input again; %zu bytes were dropped", s->cfg.id,
                s->input_dropped);
        s->input_dropped = 0;
    }
    memcpy(s->input + s->input_len, p, len);
    s->input_len += len;
    write_input(s);
}

/* ---- agent frames ----------------------------------------------------------- */

static bool frame_len_ok(uint8_t type, uint32_t len)
{
    switch (type) {
    case WD_SHIM_ATTACH:
        return len == 8;
    case WD_SHIM_INPUT:
        return len <= WD_SHIM_MAX_FRAME;
    case WD_SHIM_SIGNAL:
        return len == 5;
    case WD_SHIM_EXIT_ACK:
        return len == 0;
    case WD_SHIM_RESIZE:
        return len == 4;
    default:
        return false;
    }
}

/* Handles one complete frame. False when the connection must close. */
static bool handle_frame(wd_supervisor *s, uint8_t type, const uint8_t *p, uint32_t len)
{
    conn *c = s->c;
    switch (type) {
    case WD_SHIM_ATTACH: {
        uint64_t from = wd_get_u64(p);
        uint64_t next = wd_ring_next(s->ring);
        if (from == WD_SHIM_SEQ_NEW || from > next)
            from = next;
        if (from < 1)
            from = 1;
        c->cursor = from;
        c->attached = true;
        c->exit_sent = false;
        return true;
    }
    case WD_SHIM_INPUT:
        add_input(s, p, len);
        return true;
    case WD_SHIM_SIGNAL: {
        int32_t sig = (int32_t)wd_get_u32(p);
        uint8_t scope = p[4];
        if (sig < 1 || sig > SIGRTMAX || scope > 1) {
            wd_warn("server %s: bad SIGNAL frame (signal %d, scope %u)", s->cfg.id, (int)sig,
                    (unsigned)scope);
            return false;
        }
        signal_game(s, sig, scope);
        return true;
    }
    case WD_SHIM_EXIT_ACK:
        if (s->state == GAME_EXITED) {
            wd_info("server %s: exit acknowledged", s->cfg.id);
            s->done = true;
        } else {
            wd_warn("server %s: EXIT_ACK before the game exited ignored", s->cfg.id);
        }
        return true;
    case WD_SHIM_RESIZE: {
        struct winsize ws = {.ws_row = wd_get_u16(p), .ws_col = wd_get_u16(p + 2)};
        if (ws.ws_row == 0 || ws.ws_col == 0) {
            wd_warn("server %s: RESIZE to %ux%u ignored", s->cfg.id, ws.ws_row, ws.ws_col);
            return true;
        }
        if (!s->pty_eof && ioctl(s->pty, TIOCSWINSZ, &ws) != 0)
            wd_warn("server %s: TIOCSWINSZ: %s", s->cfg.id, strerror(errno));
        return true;
    }
    default:
        return false;
    }
}

/* Processes every complete frame in the input buffer. */
static void parse_frames(wd_supervisor *s)
{
    conn *c = s->c;
    size_t pos = 0;
    while (c->in_len - pos >= WD_SHIM_HDR) {
        const uint8_t *h = c->in + pos;
        uint32_t len = wd_get_u32(h + 4);
        if (!frame_len_ok(h[0], len)) {
            wd_warn("server %s: malformed frame (type %u, length %u)", s->cfg.id, h[0], len);
            conn_close(s, "protocol error");
            return;
        }
        if (c->in_len - pos < WD_SHIM_HDR + (size_t)len)
            break;
        if (!handle_frame(s, h[0], h + WD_SHIM_HDR, len)) {
            conn_close(s, "protocol error");
            return;
        }
        if (s->c != c)
            return;
        pos += WD_SHIM_HDR + len;
    }
    memmove(c->in, c->in + pos, c->in_len - pos);
    c->in_len -= pos;
}

static void conn_read(wd_supervisor *s)
{
    size_t total = 0;
    while (s->c != NULL && total < CONN_READ_PER_TURN) {
        conn *c = s->c;
        /* Room for at least the frame being received (bounded by the
         * largest legal frame) and a useful read. */
        size_t want = 4096;
        if (c->in_len >= WD_SHIM_HDR) {
            size_t frame = WD_SHIM_HDR + (size_t)wd_get_u32(c->in + 4);
            if (frame > c->in_len && frame - c->in_len > want)
                want = frame - c->in_len;
        }
        if (c->in_cap - c->in_len < want) {
            size_t ncap = c->in_len + want;
            uint8_t *nb = realloc(c->in, ncap);
            if (nb == NULL) {
                conn_close(s, "out of memory");
                return;
            }
            c->in = nb;
            c->in_cap = ncap;
        }
        ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            conn_close(s, n == 0 ? "agent went away" : strerror(errno));
            return;
        }
        c->in_len += (size_t)n;
        total += (size_t)n;
        parse_frames(s);
    }
}

static void accept_conn(wd_supervisor *s)
{
    int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            wd_warn("server %s: accept: %s", s->cfg.id, strerror(errno));
        return;
    }
    struct ucred cred;
    socklen_t clen = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) != 0 || cred.uid != geteuid()) {
        wd_warn("server %s: connection from another user refused", s->cfg.id);
        close(fd);
        return;
    }
    if (s->c != NULL) {
        /* Frames the older agent sent before the newer one connected are
         * still honoured (an INPUT or SIGNAL just before a restart). */
        conn_read(s);
        conn_close(s, "replaced by a newer connection");
    }
    conn *c = calloc(1, sizeof *c);
    if (c == NULL) {
        close(fd);
        return;
    }
    c->fd = fd;
    s->c = c;
    wd_info("server %s: agent connected (pid %d)", s->cfg.id, (int)cred.pid);
    if (!queue_hello(s)) {
        conn_close(s, "out of memory");
        return;
    }
    conn_flush(s);
}

/* ---- pty and exit ------------------------------------------------------- */

/* Reads the pty until it would block (or for a bounded number of reads, so
 * a game that never stops talking cannot starve the agent), then sends the
 * new lines. */
static void read_pty(wd_supervisor *s, int64_t now)
{
    bool got = false;
    for (int i = 0; i < PTY_READS_PER_TURN && !s->pty_eof; i++) {
        ssize_t n = read(s->pty, s->rbuf, PTY_CHUNK);
        if (n > 0) {
            wd_ring_feed(s->ring, s->rbuf, (size_t)n);
            got = true;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        /* EIO: every slave end is closed. Whatever is unterminated now is
         * all there will be. */
        s->pty_eof = true;
        wd_ring_flush_partial(s->ring, true);
        if (s->input_len > 0)
            wd_info("server %s: %zu bytes of input dropped: the terminal closed", s->cfg.id,
                    s->input_len);
        s->input_len = 0;
    }
    if (got)
        s->pty_last_ms = now;
    pump(s);
}

static void finish_exit(wd_supervisor *s, int64_t now)
{
    wd_ring_flush_partial(s->ring, true);
    s->pty_eof = true;
    s->input_len = 0;
    char line[96];
    int n = snprintf(line, sizeof line, "%d %d %llu\n", (int)s->exit_code, (int)s->exit_signal,
                     (unsigned long long)s->exit_unix_ms);
    if (wd_write_file_atomic(s->exit_path, line, (size_t)n, 0600) != WD_OK)
        wd_error("server %s: cannot write the exit file: %s", s->cfg.id, wd_err_msg());
    s->state = GAME_EXITED;
    s->exited_ms = now;
    wd_info("server %s: game exited: code %d signal %d, %llu lines", s->cfg.id,
            (int)s->exit_code, (int)s->exit_signal,
            (unsigned long long)(wd_ring_next(s->ring) - 1));
    pump(s);
}

static void reap_children(wd_supervisor *s, int64_t now)
{
    int status;
    pid_t p;
    while ((p = waitpid(-1, &status, WNOHANG)) > 0) {
        if (p != s->child || s->state != GAME_RUNNING)
            continue;
        if (WIFEXITED(status)) {
            s->exit_code = WEXITSTATUS(status);
            s->exit_signal = 0;
        } else {
            s->exit_code = -1;
            s->exit_signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
        }
        s->exit_unix_ms = (uint64_t)wd_unix_ms();
        s->state = GAME_REAPING;
        s->reap_start_ms = now;
        wd_info("server %s: game process %d ended (code %d signal %d); stopping its tree",
                s->cfg.id, (int)s->child, (int)s->exit_code, (int)s->exit_signal);
    }
}

/* One step of taking the tree down after the direct child exited. */
static void reap_tick(wd_supervisor *s, int64_t now)
{
    reap_children(s, now);
    if (s->tree_gone_ms == 0) {
        size_t left = wd_proctree_signal_tree(getpid(), s->child, s->cfg.game.cgroup_procs,
                                              s->cfg.game.n_cgroup_procs, SIGKILL);
        if (left > 0 && now - s->reap_start_ms < REAP_GIVE_UP_MS)
            return;
        if (left > 0)
            wd_error("server %s: %zu processes of the game survive SIGKILL; reporting the exit "
                     "anyway",
                     s->cfg.id, left);
        s->tree_gone_ms = now;
    }
    if (!s->pty_eof)
        read_pty(s, now);
    if (s->pty_eof || now - s->tree_gone_ms >= EIO_GRACE_MS)
        finish_exit(s, now);
}

static void handle_signals(wd_supervisor *s, int64_t now)
{
    struct signalfd_siginfo si;
    bool chld = false;
    for (;;) {
        ssize_t n = read(s->sigfd, &si, sizeof si);
        if (n != (ssize_t)sizeof si)
            break;
        if (si.ssi_signo == SIGCHLD) {
            chld = true;
        } else {
            wd_info("server %s: got signal %u, forwarding it to the game", s->cfg.id,
                    si.ssi_signo);
            signal_game(s, (int)si.ssi_signo, 0);
        }
    }
    if (chld && s->state != GAME_EXITED)
        reap_children(s, now);
    else if (chld)
        while (waitpid(-1, NULL, WNOHANG) > 0)
            ;
}

/* ---- lifecycle ---------------------------------------------------------- */

static int64_t min_deadline(int64_t a, int64_t b)
{
    if (a < 0)
        return b;
    if (b < 0)
        return a;
    return a < b ? a : b;
}

wd_status wd_supervisor_run(wd_supervisor *s)
{
    wd_status st = WD_OK;
    while (!s->done) {
        int64_t now = wd_mono_ms();
        if (s->state == GAME_EXITED && now - s->exited_ms >= s->cfg.ack_timeout_ms) {
            wd_warn("server %s: no agent acknowledged the exit within %lld ms; leaving",
                    s->cfg.id, (long long)s->cfg.ack_timeout_ms);
            break;
        }
        int64_t deadline = -1;
        if (!s->pty_eof && wd_ring_partial_pending(s->ring))
            deadline = s->pty_last_ms + s->cfg.partial_ms;
        if (s->state == GAME_REAPING)
            deadline = min_deadline(deadline, now + REAP_TICK_MS);
        if (s->state == GAME_EXITED)
            deadline = min_deadline(deadline, s->exited_ms + s->cfg.ack_timeout_ms);
        int timeout = -1;
        if (deadline >= 0 && deadline <= now)
            timeout = 0;
        else if (deadline >= 0)
            timeout = deadline - now > INT_MAX ? INT_MAX : (int)(deadline - now);

        struct pollfd pf[4];
        int npf = 0, isig = -1, ilisten = -1, ipty = -1, iconn = -1;
        pf[isig = npf++] = (struct pollfd){.fd = s->sigfd, .events = POLLIN};
        pf[ilisten = npf++] = (struct pollfd){.fd = s->lfd, .events = POLLIN};
        if (!s->pty_eof) {
            short ev = POLLIN;
            if (s->input_len > 0)
                ev |= POLLOUT;
            pf[ipty = npf++] = (struct pollfd){.fd = s->pty, .events = ev};
        }
        if (s->c != NULL) {
            short ev = POLLIN;
            if (s->c->out_off < s->c->out_len)
                ev |= POLLOUT;
            pf[iconn = npf++] = (struct pollfd){.fd = s->c->fd, .events = ev};
        }
        int n = poll(pf, (nfds_t)npf, timeout);
        if (n < 0 && errno != EINTR) {
            st = WD_ERR(WD_ERR_IO, "poll: %s", strerror(errno));
            break;
        }
        now = wd_mono_ms();
        if (n > 0) {
            if (pf[isig].revents)
                handle_signals(s, now);
            if (ipty >= 0 && pf[ipty].revents && !s->pty_eof) {
                if (pf[ipty].revents & POLLOUT)
                    write_input(s);
                if (pf[ipty].revents & (POLLIN | POLLHUP | POLLERR))
                    read_pty(s, now);
            }
            if (pf[ilisten].revents & POLLIN)
                accept_conn(s);
            /* The connection polled may have been replaced by a new one. */
            if (iconn >= 0 && s->c != NULL && s->c->fd == pf[iconn].fd && pf[iconn].revents) {
                if (pf[iconn].revents & POLLOUT) {
                    if (conn_flush(s))
                        pump(s);
                }
                if (s->c != NULL && (pf[iconn].revents & (POLLIN | POLLHUP | POLLERR)))
                    conn_read(s);
                if (s->c != NULL)
                    pump(s);
            }
        }
        if (!s->pty_eof && wd_ring_partial_pending(s->ring) &&
            now >= s->pty_last_ms + s->cfg.partial_ms) {
            /* Read once more: the deadline may have raced with new bytes. */
            read_pty(s, now);
            if (!s->pty_eof && wd_ring_partial_pending(s->ring) &&
                now >= s->pty_last_ms + s->cfg.partial_ms) {
                wd_ring_flush_partial(s->ring, false);
                pump(s);
            }
        }
        if (s->state == GAME_REAPING)
            reap_tick(s, now);
    }
    return st;
}

pid_t wd_supervisor_child_pid(const wd_supervisor *s)
{
    return s->child;
}

static wd_status make_path(char *buf, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(buf, cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= cap)
        return WD_ERR(WD_ERR_INVALID, "path too long: %s/%s", dir, name);
    return WD_OK;
}

/* True when a shim already answers on the socket path. */
static bool socket_alive(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    memcpy(a.sun_path, path, strlen(path) + 1);
    bool alive = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return alive;
}

static wd_status listen_socket(wd_supervisor *s)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return WD_ERR(WD_ERR_IO, "socket: %s", strerror(errno));
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    memcpy(a.sun_path, s->sock_path, strlen(s->sock_path) + 1);
    mode_t old = umask(0177);
    int rc = bind(fd, (struct sockaddr *)&a, sizeof a);
    int e = errno;
    umask(old);
    if (rc != 0) {
        close(fd);
        return WD_ERR(WD_ERR_IO, "bind %s: %s", s->sock_path, strerror(e));
    }
    s->sock_made = true;
    if (chmod(s->sock_path, 0600) != 0 || listen(fd, 8) != 0) {
        e = errno;
        close(fd);
        return WD_ERR(WD_ERR_IO, "listen %s: %s", s->sock_path, strerror(e));
    }
    s->lfd = fd;
    return WD_OK;
}

wd_status wd_supervisor_create(wd_supervisor **out, const wd_supervisor_cfg *cfg)
{
    wd_status st = WD_OK;
    wd_supervisor *s = calloc(1, sizeof *s);
    if (s == NULL)
        return WD_ERR(WD_ERR_NOMEM, "out of memory");
    s->cfg = *cfg;
    s->sigfd = s->lfd = s->pty = -1;
    s->rbuf = malloc(PTY_CHUNK);
    s->input = malloc(INPUT_MAX);
    if (s->rbuf == NULL || s->input == NULL) {
        st = WD_ERR(WD_ERR_NOMEM, "out of memory");
        goto out;
    }
    if ((st = wd_mkdir_p(cfg->run_dir, 0700)) != WD_OK)
        goto out;
    if ((st = make_path(s->sock_path, sizeof s->sock_path, cfg->run_dir, "shim.sock")) ||
        (st = make_path(s->pid_path, sizeof s->pid_path, cfg->run_dir, "shim.pid")) ||
        (st = make_path(s->exit_path, sizeof s->exit_path, cfg->run_dir, "exit")))
        goto out;
    if (socket_alive(s->sock_path)) {
        st = WD_ERR(WD_ERR_EXISTS, "another warden-shim serves %s", s->sock_path);
        goto out;
    }
    /* A stale socket of a dead shim, and the exit status of a game that
     * ran before in this directory. */
    unlink(s->sock_path);
    unlink(s->exit_path);
    if ((st = wd_ring_create(&s->ring, cfg->ring_bytes, cfg->max_line)) != WD_OK)
        goto out;

    signal(SIGHUP, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    if (sigprocmask(SIG_BLOCK, &mask, &s->old_mask) != 0) {
        st = WD_ERR(WD_ERR_INTERNAL, "sigprocmask: %s", strerror(errno));
        goto out;
    }
    s->blocked = true;
    s->sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (s->sigfd < 0) {
        st = WD_ERR(WD_ERR_INTERNAL, "signalfd: %s", strerror(errno));
        goto out;
    }
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
        st = WD_ERR(WD_ERR_INTERNAL, "PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
        goto out;
    }
    char pidline[32];
    int n = snprintf(pidline, sizeof pidline, "%d\n", (int)getpid());
    if ((st = wd_write_file_atomic(s->pid_path, pidline, (size_t)n, 0600)) != WD_OK)
        goto out;
    s->pid_made = true;
    if ((st = listen_socket(s)) != WD_OK)
        goto out;

    s->started_unix_ms = (uint64_t)wd_unix_ms();
    if ((st = wd_game_start(&cfg->game, &s->pty, &s->child)) != WD_OK)
        goto out;
    s->pty_last_ms = wd_mono_ms();
    wd_info("server %s: game started (pid %d): %s", cfg->id, (int)s->child, cfg->game.argv[0]);
    *out = s;
    s = NULL;
out:
    wd_supervisor_destroy(&s);
    return st;
}

/* Leaves no process behind when the loop ends before the game did. */
static void kill_everything(wd_supervisor *s)
{
    int64_t until = wd_mono_ms() + 5000;
    for (;;) {
        size_t left = wd_proctree_signal_tree(getpid(), s->child, s->cfg.game.cgroup_procs,
                                              s->cfg.game.n_cgroup_procs, SIGKILL);
        while (waitpid(-1, NULL, WNOHANG) > 0)
            ;
        if (left == 0 || wd_mono_ms() > until)
            break;
        usleep(10000);
    }
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
}

void wd_supervisor_destroy(wd_supervisor **p)
{
    if (p == NULL || *p == NULL)
        return;
    wd_supervisor *s = *p;
    if (s->child > 0 && s->state != GAME_EXITED)
        kill_everything(s);
    conn_close(s, NULL);
    if (s->pty >= 0)
        close(s->pty);
    if (s->lfd >= 0)
        close(s->lfd);
    if (s->sigfd >= 0)
        close(s->sigfd);
    if (s->sock_made)
        unlink(s->sock_path);
    if (s->pid_made)
        unlink(s->pid_path);
    if (s->blocked)
        sigprocmask(SIG_SETMASK, &s->old_mask, NULL);
    wd_ring_destroy(&s->ring);
    free(s->rbuf);
    free(s->input);
    free(s);
    *p = NULL;
}
