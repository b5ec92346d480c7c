/* bubblewrap argv builder and capability probe (see sandbox.h). */
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "template.h"

typedef struct {
    char **v;
    size_t n, cap;
    bool oom;
} argv_buf;

static void add(argv_buf *a, const char *s)
{
    if (a->oom)
        return;
    if (a->n + 2 > a->cap) {
        size_t ncap = a->cap ? a->cap * 2 : 64;
        char **nv = realloc(a->v, ncap * sizeof *nv);
        if (nv == NULL) {
            a->oom = true;
            return;
        }
        a->v = nv;
        a->cap = ncap;
    }
    char *c = strdup(s);
    if (c == NULL) {
        a->oom = true;
        return;
    }
    a->v[a->n++] = c;
    a->v[a->n] = NULL;
}

static void add3(argv_buf *a, const char *x, const char *y, const char *z)
{
    add(a, x);
    add(a, y);
    if (z)
        add(a, z);
}

const char *wd_sandbox_home(const wd_sandbox_cfg *cfg)
{
    return cfg->isolate ? WD_SANDBOX_HOME : cfg->server_dir;
}

wd_status wd_sandbox_argv(const wd_sandbox_cfg *cfg, char *const *cmd, char ***out)
{
    argv_buf a = {0};
    if (cfg->isolate) {
        add(&a, cfg->bwrap_path ? cfg->bwrap_path : "/usr/bin/bwrap");
        add(&a, "--die-with-parent");
        add(&a, "--unshare-pid");
        add(&a, "--unshare-ipc");
        add(&a, "--unshare-uts");
        add3(&a, "--hostname", cfg->hostname ? cfg->hostname : "warden", NULL);
        add3(&a, "--ro-bind", "/usr", "/usr");
        add3(&a, "--symlink", "usr/bin", "/bin");
        add3(&a, "--symlink", "usr/sbin", "/sbin");
        add3(&a, "--symlink", "usr/lib", "/lib");
        if (access("/usr/lib64", F_OK) == 0)
            add3(&a, "--symlink", "usr/lib64", "/lib64");
        if (access("/usr/lib32", F_OK) == 0)
            add3(&a, "--symlink", "usr/lib32", "/lib32");
        static const char *const etc[] = {
            "/etc/alternatives", "/etc/ssl",     "/etc/ca-certificates", "/etc/resolv.conf",
            "/etc/hosts",        "/etc/nsswitch.conf", "/etc/passwd",     "/etc/group",
            "/etc/localtime",    "/etc/ld.so.cache",   "/etc/services",   "/etc/protocols",
            NULL};
        for (int i = 0; etc[i]; i++)
            add3(&a, "--ro-bind-try", etc[i], etc[i]);
        add3(&a, "--proc", "/proc", NULL);
        add3(&a, "--dev", "/dev", NULL);
        add3(&a, "--tmpfs", "/tmp", NULL);
        add3(&a, "--bind", cfg->server_dir, WD_SANDBOX_HOME);
        if (cfg->install_script) {
            add3(&a, "--ro-bind", cfg->install_script, WD_SANDBOX_INSTALL_SCRIPT);
            /* Pterodactyl install scripts expect the server at /mnt/server. */
            add3(&a, "--bind", cfg->server_dir, "/mnt/server");
        }
        add3(&a, "--chdir", WD_SANDBOX_HOME, NULL);
        add(&a, "--");
    }
    for (int i = 0; cmd[i]; i++)
        add(&a, cmd[i]);
    if (a.oom || a.v == NULL) {
        wd_argv_free(a.v);
        return WD_ERR(WD_ERR_NOMEM, "out of memory building the sandbox command");
    }
    *out = a.v;
    return WD_OK;
}

bool wd_sandbox_probe(const char *bwrap_path, int uid, int gid, char *notes, size_t notes_len)
{
    const char *bw = bwrap_path ? bwrap_path : "/usr/bin/bwrap";
    if (access(bw, X_OK) != 0) {
        snprintf(notes, notes_len, "bubblewrap not found at %s (apt-get install bubblewrap)", bw);
        return false;
    }
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) != 0) {
        snprintf(notes, notes_len, "pipe: %s", strerror(errno));
        return false;
    }
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pipefd[1], 2);
        dup2(pipefd[1], 1);
        if (uid >= 0) {
            if (setgroups(0, NULL) != 0 || setgid((gid_t)gid) != 0 || setuid((uid_t)uid) != 0)
                _exit(125);
        }
        execl(bw, bw, "--die-with-parent", "--unshare-pid", "--ro-bind", "/usr", "/usr",
              "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib", "--symlink",
              "usr/lib64", "/lib64", "--proc", "/proc", "--dev", "/dev", "--", "/bin/true",
              (char *)NULL);
        _exit(127);
    }
    close(pipefd[1]);
    char out[512] = "";
    ssize_t n = read(pipefd[0], out, sizeof out - 1);
    close(pipefd[0]);
    if (n > 0)
        out[n] = '\0';
    int status = 0;
    waitpid(pid, &status, 0);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return true;
    char *nl = strchr(out, '\n');
    if (nl)
        *nl = '\0';
    snprintf(notes, notes_len, "bubblewrap cannot create a sandbox here (%s); games would run "
             "unisolated",
             out[0] ? out : "exit status");
    return false;
}
