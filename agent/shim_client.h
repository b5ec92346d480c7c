/* The agent's side of warden-shim: starting a shim, connecting to it, and
 * the frames of shim_proto.h.
 *
 * A game server runs under its own warden-shim so it survives the agent.
 * wd_shim_spawn() starts one (double-forked into its own session, so it is
 * never the agent's child and never the agent's zombie) and waits for it to
 * report readiness. The agent then connects to RUN_DIR/shim.sock with
 * wd_shim_connect(), reads HELLO, sends ATTACH (from the line after the
 * last one it stored, 1 for everything the ring still holds, or
 * WD_SHIM_SEQ_NEW), and from then on reads LINES and eventually EXIT from
 * its event loop with a wd_shim_reader. Once EXIT is recorded durably it
 * sends EXIT_ACK and the shim goes away. After an agent restart it simply
 * connects again; HELLO's shim_pid and started_unix_ms tell whether it is
 * still the same shim (sequence numbers restart with a new one). A newer
 * connection replaces an older one. When the shim is gone but left
 * RUN_DIR/exit, wd_shim_read_exit_file() tells how the game ended.
 *
 * Threads: every function is reentrant. A wd_shim_reader belongs to one
 * thread at a time. wd_shim_spawn() blocks for up to the ready timeout (5 s
 * by default) and the senders for up to their timeout: call them from a
 * worker or an actor, not from a loop that must never block. Between fork
 * and exec the spawn child only calls async-signal-safe functions, so it is
 * safe in the multi-threaded agent. It waits for its intermediate child with
 * waitpid(pid); an agent must not reap with waitpid(-1) concurrently.
 *
 * Memory: nothing returned needs freeing except the reader (destroy it);
 * frame and line pointers point into the reader and stay valid until the
 * next wd_shim_reader_feed()/wd_shim_reader_next() on it. */
#ifndef WD_SHIM_CLIENT_H
#define WD_SHIM_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "shim_proto.h"
#include "status.h"

/* ---- starting a shim ---------------------------------------------------- */

typedef struct {
    const char *shim_path; /* the warden-shim binary (absolute) */
    const char *server_id;
    const char *run_dir;   /* shim.sock, shim.pid, exit; created 0700 */
    const char *cwd;       /* the game's working directory */
    bool set_ids;          /* run the game as uid/gid */
    uid_t uid;
    gid_t gid;
    const char *const *cgroup_procs; /* cgroup.procs files the game joins */
    size_t n_cgroup_procs;
    const char *const *env; /* K=V: the game's whole environment */
    size_t n_env;
    size_t ring_bytes;       /* 0: the shim's default (1 MiB) */
    size_t max_line;         /* 0: the shim's default (4096) */
    unsigned rows, cols;     /* 0: the shim's default (50 x 200) */
    unsigned partial_ms;     /* 0: the shim's default (10): quiet time before an
                                unterminated line (a prompt) is sent as PARTIAL */
    const char *log_path;    /* the shim's own stderr (appended); NULL: /dev/null */
    const char *const *argv; /* the game: program and arguments, NULL-terminated */
    int ready_timeout_ms;    /* default 5000 */
} wd_shim_spawn_cfg;

wd_shim_spawn_cfg wd_shim_spawn_cfg_defaults(void);

/* Starts a shim for cfg and waits until it reports readiness. On WD_OK the
 * shim listens on RUN_DIR/shim.sock and the game runs: *shim_pid and
 * *child_pid (either may be NULL) are their pids. A shim that reports
 * "error ..." gives WD_ERR_IO with its message (WD_ERR_EXISTS when another
 * shim serves run_dir); no ready line within the timeout gives
 * WD_ERR_TIMEOUT and the shim is killed. */
wd_status wd_shim_spawn(const wd_shim_spawn_cfg *cfg, pid_t *shim_pid, pid_t *child_pid);

/* ---- connection ----------------------------------------------------------- */

/* Connects to RUN_DIR/shim.sock. *fd (caller owns it) is non-blocking and
 * close-on-exec. WD_ERR_NOT_FOUND when no shim listens there (no socket, or
 * a stale one), WD_ERR_AGAIN when the shim's backlog is full. */
wd_status wd_shim_connect(const char *run_dir, int *fd);

/* ---- reading frames -------------------------------------------------------- */

typedef struct wd_shim_reader wd_shim_reader;

/* One received frame: type is HELLO, LINES or EXIT. */
typedef struct {
    uint8_t type;
    const uint8_t *payload;
    uint32_t len;
} wd_shim_frame;

wd_status wd_shim_reader_create(wd_shim_reader **out);
/* NULL-safe; nulls *r. Does not close any fd. */
void wd_shim_reader_destroy(wd_shim_reader **r);
/* Reads what fd has, stopping once a frame is complete (or after 256 KiB).
 * WD_OK when bytes arrived, WD_ERR_AGAIN when none were available,
 * WD_ERR_CLOSED on end of stream, WD_ERR_IO on a socket error, WD_ERR_FULL
 * when complete frames wait: take them with wd_shim_reader_next() first.
 * Typical loop on POLLIN: feed, then next until WD_ERR_AGAIN; with
 * edge-triggered epoll repeat both until feed says WD_ERR_AGAIN. */
wd_status wd_shim_reader_feed(wd_shim_reader *r, int fd);
/* Appends bytes obtained elsewhere (tests, fuzzing); WD_ERR_FULL as above. */
wd_status wd_shim_reader_push(wd_shim_reader *r, const void *data, size_t len);
/* The next complete frame. WD_ERR_AGAIN when it is not complete yet,
 * WD_ERR_PROTO on garbage (unknown type, oversize length); after
 * WD_ERR_PROTO the stream is unusable and the caller closes the fd. */
wd_status wd_shim_reader_next(wd_shim_reader *r, wd_shim_frame *f);

/* ---- decoding -------------------------------------------------------------- */

typedef struct {
    uint32_t version;
    pid_t shim_pid, child_pid;
    uint64_t started_unix_ms;
    uint64_t oldest_seq, next_seq;
    bool exited; /* EXIT follows (after ATTACH and the lines) */
} wd_shim_hello;

typedef struct {
    int32_t exit_code; /* -1 when signalled */
    int32_t signal;    /* 0 when exited */
    uint64_t time_unix_ms;
} wd_shim_exit;

/* WD_ERR_PROTO when f is not a well-formed frame of that type. */
wd_status wd_shim_decode_hello(const wd_shim_frame *f, wd_shim_hello *out);
wd_status wd_shim_decode_exit(const wd_shim_frame *f, wd_shim_exit *out);

typedef struct {
    uint64_t seq;
    uint8_t flags; /* WD_SHIM_LINE_CUT, WD_SHIM_LINE_PARTIAL */
    const uint8_t *data; /* not NUL-terminated; points into the frame */
    uint32_t len;
} wd_shim_line;

/* Iterator over a LINES frame. */
typedef struct {
    uint64_t first_seq;
    uint32_t count;
    uint32_t dropped; /* lines lost just before first_seq */
    /* private */
    const uint8_t *p, *end;
    uint32_t i;
} wd_shim_lines;

/* Validates the whole frame (every line length against the payload, no
 * trailing bytes) and positions the iterator before the first line. */
wd_status wd_shim_lines_begin(const wd_shim_frame *f, wd_shim_lines *it);
/* The next line; false after the last. */
bool wd_shim_lines_next(wd_shim_lines *it, wd_shim_line *line);

/* ---- sending ------------------------------------------------------------------ */

typedef enum {
    WD_SHIM_SCOPE_GAME = 0, /* the game process only (graceful signals) */
    WD_SHIM_SCOPE_TREE = 1, /* every process of the game's tree and cgroup */
} wd_shim_scope;

/* Small control frames, encoded into buf (WD_SHIM_CTRL_MAX bytes); each
 * returns the frame's length. For agents with their own write queue. */
#define WD_SHIM_CTRL_MAX 16u
size_t wd_shim_encode_attach(uint8_t *buf, uint64_t from_seq);
size_t wd_shim_encode_signal(uint8_t *buf, int signo, wd_shim_scope scope);
size_t wd_shim_encode_exit_ack(uint8_t *buf);
size_t wd_shim_encode_resize(uint8_t *buf, uint16_t rows, uint16_t cols);
/* The 8-byte header of an INPUT frame of len bytes. */
void wd_shim_encode_input_header(uint8_t *buf, uint32_t len);

/* Senders for a non-blocking fd: write the whole frame, polling on EAGAIN
 * for at most timeout_ms (< 0: no limit). WD_ERR_CLOSED when the shim went
 * away, WD_ERR_TIMEOUT when it did not take the frame in time; after a
 * timeout part of the frame may have been sent, so close the fd. */
wd_status wd_shim_send_attach(int fd, uint64_t from_seq, int timeout_ms);
/* len <= WD_SHIM_MAX_FRAME. The agent appends the '\n' itself. */
wd_status wd_shim_send_input(int fd, const void *data, size_t len, int timeout_ms);
wd_status wd_shim_send_signal(int fd, int signo, wd_shim_scope scope, int timeout_ms);
wd_status wd_shim_send_exit_ack(int fd, int timeout_ms);
wd_status wd_shim_send_resize(int fd, uint16_t rows, uint16_t cols, int timeout_ms);

/* ---- files a shim leaves ------------------------------------------------------ */

/* RUN_DIR/exit, written when the game's tree was gone: WD_ERR_NOT_FOUND when
 * it does not exist, WD_ERR_PROTO when it is malformed. */
wd_status wd_shim_read_exit_file(const char *run_dir, wd_shim_exit *out);
/* RUN_DIR/shim.pid: WD_ERR_NOT_FOUND when absent. The pid may be stale;
 * wd_shim_connect() is the test of a live shim. */
wd_status wd_shim_read_pid_file(const char *run_dir, pid_t *pid);

#endif
