/* Starting the game on a pseudo-terminal (see game.h).
 *
 * The pty slave is opened in the shim before the fork so the window size and
 * termios are set before the game can look at them; the shim closes its copy
 * right after, so the master reads EIO once the last game process is gone.
 * The shim is single-threaded, so the child may use stdio and malloc between
 * fork and exec. */
#include "game.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <termios.h>
#include <unistd.h>

/* In the child: tell the console what went wrong, then give up. */
__attribute__((format(printf, 2, 3), noreturn)) static void child_fail(int code, const char *fmt,
                                                                        ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n > 0) {
        size_t len = (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1;
        ssize_t w = write(2, "warden-shim: ", 13);
        if (w > 0)
            w = write(2, msg, len);
        if (w > 0)
            w = write(2, "\n", 1);
        (void)w;
    }
    _exit(code);
}

static void close_from(int lowfd)
{
    if (close_range((unsigned)lowfd, ~0u, 0) == 0)
        return;
    long max = sysconf(_SC_OPEN_MAX);
    if (max < 0 || max > 65536)
        max = 65536;
    for (int fd = lowfd; fd < max; fd++)
        close(fd);
}

static void join_cgroups(const wd_game_cfg *cfg)
{
    char line[32];
    int n = snprintf(line, sizeof line, "%d\n", (int)getpid());
    for (size_t i = 0; i < cfg->n_cgroup_procs; i++) {
        const char *path = cfg->cgroup_procs[i];
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
            child_fail(126, "cannot join cgroup: open %s: %s", path, strerror(errno));
        ssize_t w = write(fd, line, (size_t)n);
        int e = errno;
        close(fd);
        if (w != n)
            child_fail(126, "cannot join cgroup: write %s: %s", path,
                       w < 0 ? strerror(e) : "short write");
    }
}

/* Drops root for good: supplementary groups, gid, then uid, and checks that
 * neither the uid nor the effective uid can be taken back. */
static void drop_ids(const wd_game_cfg *cfg)
{
    if (setgroups(0, NULL) != 0)
        child_fail(126, "setgroups: %s", strerror(errno));
    if (setresgid(cfg->gid, cfg->gid, cfg->gid) != 0)
        child_fail(126, "setgid %u: %s", (unsigned)cfg->gid, strerror(errno));
    if (setresuid(cfg->uid, cfg->uid, cfg->uid) != 0)
        child_fail(126, "setuid %u: %s", (unsigned)cfg->uid, strerror(errno));
    uid_t r, e, s;
    gid_t rg, eg, sg;
    if (getresuid(&r, &e, &s) != 0 || r != cfg->uid || e != cfg->uid || s != cfg->uid ||
        getresgid(&rg, &eg, &sg) != 0 || rg != cfg->gid || eg != cfg->gid || sg != cfg->gid)
        child_fail(126, "uid/gid did not change to %u/%u", (unsigned)cfg->uid,
                   (unsigned)cfg->gid);
    if (cfg->uid != 0 && (setuid(0) == 0 || seteuid(0) == 0))
        child_fail(126, "could regain root after dropping to uid %u", (unsigned)cfg->uid);
    if (cfg->gid != 0 && cfg->uid != 0 && setgid(0) == 0)
        child_fail(126, "could regain gid 0 after dropping to gid %u", (unsigned)cfg->gid);
}

__attribute__((noreturn)) static void run_child(const wd_game_cfg *cfg, int slave, pid_t shim)
{
    /* The shim blocks and ignores signals for its own loop; both survive
     * exec, so give the game a clean slate. */
    for (int sig = 1; sig < NSIG; sig++)
        signal(sig, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    if (setsid() < 0)
        _exit(126);
    if (ioctl(slave, TIOCSCTTY, 0) != 0)
        _exit(126);
    for (int fd = 0; fd < 3; fd++)
        if (dup2(slave, fd) < 0)
            _exit(126);
    close_from(3);

    join_cgroups(cfg);
    if (cfg->set_ids)
        drop_ids(cfg);
    /* Die with the shim: a game nobody supervises has no console and no
     * exit status anyone can collect. Set after the uid change, which clears
     * it, and re-check the parent to close the race with the shim dying. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != shim)
        child_fail(126, "the shim is gone");
    if (clearenv() != 0)
        child_fail(126, "clearenv failed");
    for (size_t i = 0; i < cfg->n_env; i++)
        if (putenv(cfg->env[i]) != 0)
            child_fail(126, "putenv: %s", strerror(errno));
    if (chdir(cfg->cwd) != 0)
        child_fail(126, "chdir %s: %s", cfg->cwd, strerror(errno));
    execvp(cfg->argv[0], cfg->argv);
    int e = errno;
    child_fail(e == ENOENT ? 127 : 126, "cannot execute %s: %s", cfg->argv[0], strerror(e));
}

wd_status wd_game_start(const wd_game_cfg *cfg, int *master_out, pid_t *pid_out)
{
    wd_status st = WD_OK;
    int master = -1, slave = -1;
    char name[128];

    master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0) {
        st = WD_ERR(WD_ERR_IO, "posix_openpt: %s", strerror(errno));
        goto out;
    }
    if (grantpt(master) != 0 || unlockpt(master) != 0 ||
        ptsname_r(master, name, sizeof name) != 0) {
        st = WD_ERR(WD_ERR_IO, "pty setup: %s", strerror(errno));
        goto out;
    }
    slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (slave < 0) {
        st = WD_ERR(WD_ERR_IO, "open %s: %s", name, strerror(errno));
        goto out;
    }
    struct winsize ws = {.ws_row = cfg->rows, .ws_col = cfg->cols};
    if (ioctl(master, TIOCSWINSZ, &ws) != 0) {
        st = WD_ERR(WD_ERR_IO, "TIOCSWINSZ: %s", strerror(errno));
        goto out;
    }
    /* Let the line discipline erase whole UTF-8 characters. */
    struct termios tio;
    if (tcgetattr(slave, &tio) == 0) {
        tio.c_iflag |= IUTF8;
        tcsetattr(slave, TCSANOW, &tio);
    }
    int fl = fcntl(master, F_GETFL);
    if (fl < 0 || fcntl(master, F_SETFL, fl | O_NONBLOCK) != 0) {
        st = WD_ERR(WD_ERR_IO, "pty O_NONBLOCK: %s", strerror(errno));
        goto out;
    }

    pid_t shim = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        st = WD_ERR(WD_ERR_IO, "fork: %s", strerror(errno));
        goto out;
    }
    if (pid == 0)
        run_child(cfg, slave, shim);
    *master_out = master;
    *pid_out = pid;
    master = -1;
out:
    if (slave >= 0)
        close(slave);
    if (master >= 0)
        close(master);
    return st;
}
