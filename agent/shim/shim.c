/* warden-shim: the per-game supervisor process.
 *
 * The agent starts one shim per game server (double-forked, in its own
 * session), so the game keeps running when the agent restarts or dies. The
 * shim owns the game's pty, keeps its console as numbered lines, and serves
 * the agent over RUN_DIR/shim.sock with the protocol of shim_proto.h. This
 * file only parses the command line, reports readiness on --ready-fd and
 * runs the supervisor (supervisor.c); see there for the behaviour.
 *
 *   warden-shim --id SERVER_ID --run-dir DIR --cwd DIR [--uid N --gid N]
 *               [--cgroup-procs FILE]... [--ring-bytes N] [--max-line N]
 *               [--ready-fd FD] [--env K=V]... [--rows N --cols N]
 *               [--partial-ms N] [--ack-timeout-s N] -- PROGRAM ARGS...
 *
 * Exit status: 0 after the game exited and the agent acknowledged it (or
 * the acknowledgement timed out), 1 when setup failed, 2 on usage errors. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "ring.h"
#include "status.h"
#include "supervisor.h"
#include "util.h"

#define DEFAULT_RING_BYTES (1024L * 1024L)
#define DEFAULT_MAX_LINE 4096L
#define DEFAULT_ACK_TIMEOUT_S (24L * 3600L)

static const char usage_text[] =
    "usage: warden-shim --id SERVER_ID --run-dir DIR --cwd DIR [--uid N --gid N]\n"
    "                   [--cgroup-procs FILE]... [--ring-bytes N] [--max-line N]\n"
    "                   [--ready-fd FD] [--env K=V]... [--rows N --cols N]\n"
    "                   [--partial-ms N] [--ack-timeout-s N] -- PROGRAM ARGS...\n"
    "\n"
    "  --id            server id (logs only)\n"
    "  --run-dir       directory for shim.sock, shim.pid and exit (created 0700)\n"
    "  --cwd           working directory of the game\n"
    "  --uid/--gid     run the game as this user and group (both or neither)\n"
    "  --cgroup-procs  cgroup.procs file the game joins before exec (repeatable)\n"
    "  --ring-bytes    console ring size (default 1048576)\n"
    "  --max-line      longer lines are cut (default 4096)\n"
    "  --ready-fd      write \"ok SHIM_PID CHILD_PID\" or \"error MESSAGE\" here\n"
    "  --env           the game's environment, exactly these entries (repeatable)\n"
    "  --rows/--cols   terminal size (default 50x200)\n"
    "  --partial-ms    an unterminated line is shown after this quiet time\n"
    "                  (default 10)\n"
    "  --ack-timeout-s exit this long after the game did if no agent acknowledges\n"
    "                  (default 86400)\n";

typedef struct {
    const char *id, *run_dir, *cwd;
    long uid, gid;
    long ring_bytes, max_line, ready_fd, rows, cols, partial_ms, ack_timeout_s;
    char **procs;
    size_t nprocs;
    char **env;
    size_t nenv;
    char **argv;
} options;

static bool push(char ***arr, size_t *n, char *v)
{
    char **na = realloc(*arr, (*n + 1) * sizeof *na);
    if (na == NULL)
        return false;
    na[(*n)++] = v;
    *arr = na;
    return true;
}

static wd_status parse_num(const char *flag, const char *v, long min, long max, long *out)
{
    if (!wd_parse_long(v, min, max, out))
        return WD_ERR(WD_ERR_INVALID, "--%s: expected an integer in %ld..%ld, got \"%s\"", flag,
                      min, max, v);
    return WD_OK;
}

static wd_status parse_args(int argc, char **argv, options *o)
{
    enum { O_ID = 1, O_RUN, O_CWD, O_UID, O_GID, O_CG, O_RING, O_MAXLINE, O_READY, O_ENV, O_ROWS,
           O_COLS, O_PARTIAL, O_ACK, O_HELP };
    static const struct option longopts[] = {
        {"id", required_argument, NULL, O_ID},
        {"run-dir", required_argument, NULL, O_RUN},
        {"cwd", required_argument, NULL, O_CWD},
        {"uid", required_argument, NULL, O_UID},
        {"gid", required_argument, NULL, O_GID},
        {"cgroup-procs", required_argument, NULL, O_CG},
        {"ring-bytes", required_argument, NULL, O_RING},
        {"max-line", required_argument, NULL, O_MAXLINE},
        {"ready-fd", required_argument, NULL, O_READY},
        {"env", required_argument, NULL, O_ENV},
        {"rows", required_argument, NULL, O_ROWS},
        {"cols", required_argument, NULL, O_COLS},
        {"partial-ms", required_argument, NULL, O_PARTIAL},
        {"ack-timeout-s", required_argument, NULL, O_ACK},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    wd_status st = WD_OK;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "+", longopts, NULL)) != -1) {
        switch (c) {
        case O_ID:
            o->id = optarg;
            break;
        case O_RUN:
            o->run_dir = optarg;
            break;
        case O_CWD:
            o->cwd = optarg;
            break;
        case O_UID:
            st = parse_num("uid", optarg, 0, 0x7fffffffL, &o->uid);
            break;
        case O_GID:
            st = parse_num("gid", optarg, 0, 0x7fffffffL, &o->gid);
            break;
        case O_CG:
            if (optarg[0] != '/')
                st = WD_ERR(WD_ERR_INVALID, "--cgroup-procs needs an absolute path");
            else if (!push(&o->procs, &o->nprocs, optarg))
                st = WD_ERR(WD_ERR_NOMEM, "out of memory");
            break;
        case O_RING:
            st = parse_num("ring-bytes", optarg, 4096, 1L << 30, &o->ring_bytes);
            break;
        case O_MAXLINE:
            st = parse_num("max-line", optarg, 16, WD_RING_MAX_LINE, &o->max_line);
            break;
        case O_READY:
            st = parse_num("ready-fd", optarg, 0, 1 << 20, &o->ready_fd);
            break;
        case O_ENV: {
            const char *eq = strchr(optarg, '=');
            if (eq == NULL || eq == optarg)
                st = WD_ERR(WD_ERR_INVALID, "--env needs K=V, got \"%s\"", optarg);
            else if (!push(&o->env, &o->nenv, optarg))
                st = WD_ERR(WD_ERR_NOMEM, "out of memory");
            break;
        }
        case O_ROWS:
            st = parse_num("rows", optarg, 1, 65535, &o->rows);
            break;
        case O_COLS:
            st = parse_num("cols", optarg, 1, 65535, &o->cols);
            break;
        case O_PARTIAL:
            st = parse_num("partial-ms", optarg, 1, 60000, &o->partial_ms);
            break;
        case O_ACK:
            st = parse_num("ack-timeout-s", optarg, 0, 365L * 86400L, &o->ack_timeout_s);
            break;
        case O_HELP:
            fputs(usage_text, stdout);
            return WD_ERR(WD_ERR_CLOSED, "help printed");
        default:
            return WD_ERR(WD_ERR_INVALID, "unknown or incomplete option \"%s\"",
                          argv[optind - 1]);
        }
        if (st != WD_OK)
            return st;
    }
    if (optind == 0 || strcmp(argv[optind - 1], "--") != 0)
        return WD_ERR(WD_ERR_INVALID, "the game's command must follow \"--\"");
    if (optind >= argc)
        return WD_ERR(WD_ERR_INVALID, "no program given after \"--\"");
    o->argv = argv + optind;
    if (o->id == NULL || o->run_dir == NULL || o->cwd == NULL)
        return WD_ERR(WD_ERR_INVALID, "--id, --run-dir and --cwd are required");
    if ((o->uid < 0) != (o->gid < 0))
        return WD_ERR(WD_ERR_INVALID, "--uid and --gid go together");
    if ((size_t)o->ring_bytes < 2 * ((size_t)o->max_line + 2 + WD_RING_LINE_COST))
        return WD_ERR(WD_ERR_INVALID, "--ring-bytes %ld cannot hold two lines of --max-line %ld",
                      o->ring_bytes, o->max_line);
    return WD_OK;
}

/* The agent may leak descriptors into us; a shim lives for days, so keep
 * only stdio and the ready pipe. */
static void close_stray_fds(int keep)
{
    if (keep > 3)
        close_range(3, (unsigned)keep - 1, 0);
    close_range((unsigned)(keep >= 3 ? keep + 1 : 3), ~0u, 0);
}

/* Makes sure 0, 1 and 2 are open, so the pty and socket never land there. */
static void ensure_stdio(void)
{
    for (;;) {
        int fd = open("/dev/null", O_RDWR);
        if (fd < 0)
            return;
        if (fd > 2) {
            close(fd);
            return;
        }
    }
}

/* The ready fd when the command line is bad: the error must still reach the
 * agent, even if --ready-fd comes after the flag that failed. */
static int find_ready_fd(int argc, char **argv)
{
    for (int i = 1; i + 1 < argc && strcmp(argv[i], "--") != 0; i++) {
        long fd;
        if (strcmp(argv[i], "--ready-fd") == 0 && wd_parse_long(argv[i + 1], 0, 1 << 20, &fd))
            return (int)fd;
    }
    return -1;
}

static void report_ready(int fd, const char *line)
{
    if (fd < 0)
        return;
    size_t len = strlen(line), off = 0;
    while (off < len) {
        ssize_t n = write(fd, line + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    close(fd);
}

int main(int argc, char **argv)
{
    wd_log_set_component("shim");
    options o = {.uid = -1, .gid = -1, .ring_bytes = DEFAULT_RING_BYTES,
                 .max_line = DEFAULT_MAX_LINE, .ready_fd = -1, .rows = 50, .cols = 200,
                 .partial_ms = WD_SUP_PARTIAL_MS, .ack_timeout_s = DEFAULT_ACK_TIMEOUT_S};
    wd_supervisor *sup = NULL;
    int rc = 1;
    char line[1024];

    wd_status st = parse_args(argc, argv, &o);
    if (st == WD_ERR_CLOSED) {
        rc = 0;
        goto out;
    }
    if (st != WD_OK) {
        fprintf(stderr, "warden-shim: %s\n%s", wd_err_msg(), usage_text);
        snprintf(line, sizeof line, "error %s\n", wd_err_msg());
        report_ready(find_ready_fd(argc, argv), line);
        rc = 2;
        goto out;
    }
    ensure_stdio();
    close_stray_fds((int)o.ready_fd);

    wd_supervisor_cfg cfg = {
        .id = o.id,
        .run_dir = o.run_dir,
        .game = {.cwd = o.cwd,
                 .set_ids = o.uid >= 0,
                 .uid = (uid_t)o.uid,
                 .gid = (gid_t)o.gid,
                 .cgroup_procs = o.procs,
                 .n_cgroup_procs = o.nprocs,
                 .env = o.env,
                 .n_env = o.nenv,
                 .rows = (unsigned short)o.rows,
                 .cols = (unsigned short)o.cols,
                 .argv = o.argv},
        .ring_bytes = (size_t)o.ring_bytes,
        .max_line = (size_t)o.max_line,
        .partial_ms = (int)o.partial_ms,
        .ack_timeout_ms = (int64_t)o.ack_timeout_s * 1000,
    };
    st = wd_supervisor_create(&sup, &cfg);
    if (st != WD_OK) {
        wd_error("server %s: cannot start: %s", o.id, wd_err_msg());
        snprintf(line, sizeof line, "error %s\n", wd_err_msg());
        report_ready((int)o.ready_fd, line);
        goto out;
    }
    snprintf(line, sizeof line, "ok %d %d\n", (int)getpid(), (int)wd_supervisor_child_pid(sup));
    report_ready((int)o.ready_fd, line);
    st = wd_supervisor_run(sup);
    if (st != WD_OK)
        wd_error("server %s: %s", o.id, wd_err_msg());
    rc = st == WD_OK ? 0 : 1;
out:
    wd_supervisor_destroy(&sup);
    free(o.procs);
    free(o.env);
    return rc;
}
