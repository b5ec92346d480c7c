/* Test harness (see harness.h). */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#define MAX_PIDS 256
#define MAX_DIRS 64
#define MAX_CLEANUPS 32

static pid_t pids[MAX_PIDS];
static char *dirs[MAX_DIRS];
static int ndirs;
static struct {
    void (*fn)(void *);
    void *arg;
} cleanups[MAX_CLEANUPS];
static int ncleanups;
static bool installed;

static void on_signal(int sig)
{
    wd_h_stop_all();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void install_once(void)
{
    if (installed)
        return;
    installed = true;
    atexit(wd_h_stop_all);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGABRT, on_signal);
    signal(SIGPIPE, SIG_IGN);
}

const char *wd_h_tmpdir(const char *tag)
{
    install_once();
    const char *base = getenv("TMPDIR");
    char tmpl[512];
    snprintf(tmpl, sizeof tmpl, "%s/warden-%s-XXXXXX", base && *base ? base : "/tmp", tag);
    if (mkdtemp(tmpl) == NULL)
        return NULL;
    chmod(tmpl, 0755);
    char *d = strdup(tmpl);
    if (ndirs < MAX_DIRS)
        dirs[ndirs++] = d;
    return d;
}

const char *wd_h_write_tmp(const char *name, const char *text)
{
    static char path[4][600];
    static int k;
    char *p = path[k++ % 4];
    const char *dir = wd_h_tmpdir("file");
    snprintf(p, sizeof path[0], "%s/%s", dir ? dir : "/tmp", name);
    FILE *f = fopen(p, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    return p;
}

int wd_h_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

bool wd_h_wait_port(int port, int timeout_ms)
{
    for (int t = 0; t <= timeout_ms; t += 10) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
        close(fd);
        if (ok)
            return true;
        usleep(10000);
    }
    return false;
}

bool wd_h_wait_file(const char *path, int timeout_ms)
{
    return WD_H_WAIT(access(path, F_OK) == 0, timeout_ms);
}

int wd_h_read_port_file(const char *path, int timeout_ms)
{
    long port = 0;
    for (int t = 0; t <= timeout_ms && port == 0; t += 20) {
        char *text = NULL;
        if (wd_read_file(path, 64, &text, NULL) == WD_OK) {
            text[strcspn(text, "\n")] = '\0';
            if (!wd_parse_long(text, 1, 65535, &port))
                port = 0;
            free(text);
        }
        if (port == 0)
            usleep(20000);
    }
    return (int)port;
}

static void track(pid_t pid)
{
    for (int i = 0; i < MAX_PIDS; i++)
        if (pids[i] == 0) {
            pids[i] = pid;
            return;
        }
}

static void untrack(pid_t pid)
{
    for (int i = 0; i < MAX_PIDS; i++)
        if (pids[i] == pid)
            pids[i] = 0;
}

pid_t wd_h_spawn(const char *const argv[], const char *const envp[], const char *log)
{
    install_once();
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        setpgid(0, 0);
        if (log) {
            int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
            if (fd >= 0) {
                dup2(fd, 1);
                dup2(fd, 2);
                close(fd);
            }
        }
        int nullfd = open("/dev/null", O_RDONLY);
        if (nullfd >= 0) {
            dup2(nullfd, 0);
            close(nullfd);
        }
        for (int i = 0; envp && envp[i]; i++)
            putenv((char *)envp[i]);
        signal(SIGPIPE, SIG_DFL);
        execvp(argv[0], (char *const *)argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    track(pid);
    return pid;
}

int wd_h_wait_exit(pid_t pid, int timeout_ms)
{
    int status;
    for (int t = 0; t <= timeout_ms; t += 5) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            untrack(pid);
            return status;
        }
        if (r < 0)
            return -1;
        usleep(5000);
    }
    return -1;
}

int wd_h_stop(pid_t pid, int sig, int timeout_ms)
{
    if (pid <= 0)
        return -1;
    kill(pid, sig);
    int st = wd_h_wait_exit(pid, timeout_ms);
    if (st == -1) {
        kill(pid, SIGKILL);
        kill(-pid, SIGKILL);
        waitpid(pid, &st, 0);
        untrack(pid);
    }
    return st;
}

void wd_h_at_cleanup(void (*fn)(void *), void *arg)
{
    if (ncleanups < MAX_CLEANUPS) {
        cleanups[ncleanups].fn = fn;
        cleanups[ncleanups].arg = arg;
        ncleanups++;
    }
}

void wd_h_stop_all(void)
{
    for (int i = ncleanups - 1; i >= 0; i--)
        cleanups[i].fn(cleanups[i].arg);
    ncleanups = 0;
    for (int i = 0; i < MAX_PIDS; i++)
        if (pids[i] > 0)
            wd_h_stop(pids[i], SIGTERM, 2000);
    if (getenv("WARDEN_KEEP_TMP") == NULL) {
        for (int i = 0; i < ndirs; i++) {
            wd_remove_tree(dirs[i]);
            free(dirs[i]);
        }
        ndirs = 0;
    }
}

bool wd_h_nats_start(wd_h_nats *n)
{
    if (n->port == 0) {
        const char *d = wd_h_tmpdir("nats");
        if (d == NULL)
            return false;
        snprintf(n->dir, sizeof n->dir, "%s", d);
        snprintf(n->log, sizeof n->log, "%s/nats.log", d);
        n->port = wd_h_free_port();
        snprintf(n->url, sizeof n->url, "nats://127.0.0.1:%d", n->port);
    }
    char sd[600], conf[600];
    snprintf(sd, sizeof sd, "%s/js", n->dir);
    snprintf(conf, sizeof conf, "%s/nats.conf", n->dir);
    const char *argv[] = {"nats-server", "-c", conf, NULL};
    char *auth = NULL;
    if (n->auth_conf[0] && wd_read_file(n->auth_conf, 1 << 20, &auth, NULL) != WD_OK)
        return false;
    FILE *f = fopen(conf, "w");
    if (f == NULL) {
        free(auth);
        return false;
    }
    fprintf(f, "listen: \"127.0.0.1:%d\"\njetstream: { store_dir: \"%s\" }\n%s\n", n->port, sd,
            auth ? auth : "");
    free(auth);
    if (n->tls_dir[0])
        fprintf(f, "tls { cert_file: \"%s/server.pem\", key_file: \"%s/server-key.pem\", "
                   "timeout: 5 }\n",
                n->tls_dir, n->tls_dir);
    if (n->name[0])
        fprintf(f, "server_name: \"%s\"\n", n->name);
    if (n->http_port)
        fprintf(f, "http: \"127.0.0.1:%d\"\n", n->http_port);
    if (n->cluster_port)
        fprintf(f, "cluster { name: \"warden\", listen: \"127.0.0.1:%d\", routes: [%s] }\n",
                n->cluster_port, n->routes);
    if (fclose(f) != 0)
        return false;
    n->pid = wd_h_spawn(argv, NULL, n->log);
    if (n->pid < 0)
        return false;
    if (!wd_h_wait_port(n->port, 5000)) {
        wd_h_nats_stop(n);
        return false;
    }
    /* Something answers on the port: make sure it is ours (a server that
     * lost the race for a "free" port to another process exits at once). */
    if (wd_h_wait_exit(n->pid, 50) != -1) { /* reaped and untracked */
        fprintf(stderr, "nats-server exited at start (port %d taken?); see %s\n", n->port, n->log);
        n->pid = 0;
        return false;
    }
    return true;
}

void wd_h_nats_stop(wd_h_nats *n)
{
    if (n->pid > 0)
        wd_h_stop(n->pid, SIGINT, 5000);
    n->pid = 0;
}

bool wd_h_nats_cluster(wd_h_nats *n, int count)
{
    for (int i = 0; i < count; i++) {
        const char *d = wd_h_tmpdir("nats");
        if (d == NULL)
            return false;
        snprintf(n[i].dir, sizeof n[i].dir, "%s", d);
        snprintf(n[i].log, sizeof n[i].log, "%s/nats.log", d);
        snprintf(n[i].name, sizeof n[i].name, "n%d", i + 1);
        n[i].port = wd_h_free_port();
        n[i].cluster_port = wd_h_free_port();
        n[i].http_port = wd_h_free_port();
        snprintf(n[i].url, sizeof n[i].url, "nats://127.0.0.1:%d", n[i].port);
        if (i > 0) {
            memcpy(n[i].auth_conf, n[0].auth_conf, sizeof n[i].auth_conf);
            memcpy(n[i].tls_dir, n[0].tls_dir, sizeof n[i].tls_dir);
        }
    }
    for (int i = 0; i < count; i++) {
        size_t len = 0;
        n[i].routes[0] = '\0';
        for (int j = 0; j < count; j++)
            if (j != i && len < sizeof n[i].routes)
                len += (size_t)snprintf(n[i].routes + len, sizeof n[i].routes - len,
                                        "%s\"nats-route://127.0.0.1:%d\"", len ? ", " : "",
                                        n[j].cluster_port);
    }
    for (int i = 0; i < count; i++)
        if (!wd_h_nats_start(&n[i]))
            return false;
    /* /healthz answers 200 once JetStream is up and the meta group has a
     * leader; stream creation fails before that. */
    for (int i = 0; i < count; i++)
        if (!WD_H_WAIT(wd_h_http(n[i].http_port, "GET", "/healthz", NULL, NULL, NULL, NULL) ==
                           200,
                       20000)) {
            fprintf(stderr, "NATS cluster member %s not healthy; see %s\n", n[i].name, n[i].log);
            return false;
        }
    return true;
}

const char *wd_h_nats_urls(const wd_h_nats *n, int count)
{
    static char buf[512];
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < count && len < sizeof buf; i++)
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s", i ? "," : "", n[i].url);
    return buf;
}

const char *wd_h_tls_certs(void)
{
    const char *d = wd_h_tmpdir("tls");
    if (d == NULL)
        return NULL;
    char script[1024], log[700];
    snprintf(script, sizeof script, "%s/deploy/tls/warden-nats-certs", WARDEN_SOURCE_DIR);
    snprintf(log, sizeof log, "%s/certs.log", d);
    const char *argv[] = {script, d, "localhost", "127.0.0.1", NULL};
    pid_t pid = wd_h_spawn(argv, NULL, log);
    if (pid < 0)
        return NULL;
    int ws = wd_h_wait_exit(pid, 20000);
    if (ws == -1 || !WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
        if (ws == -1)
            wd_h_stop(pid, SIGKILL, 1000);
        fprintf(stderr, "warden-nats-certs failed; see %s\n", log);
        return NULL;
    }
    return d;
}

const char *wd_h_bin(const char *rel)
{
    static _Thread_local char buf[4][1024];
    static _Thread_local int k;
    char *b = buf[k++ % 4];
    snprintf(b, sizeof buf[0], "%s/%s", WARDEN_BIN_DIR, rel);
    return b;
}

void wd_h_suite(const char *name, int (*init)(void), int (*clean)(void), const wd_h_case *cases)
{
    if (CU_get_registry() == NULL && CU_initialize_registry() != CUE_SUCCESS)
        abort();
    CU_pSuite s = CU_add_suite(name, init, clean);
    for (int i = 0; cases[i].name; i++)
        CU_add_test(s, cases[i].name, cases[i].fn);
}

int wd_h_run(void)
{
    install_once();
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_suites_failed() +
                      CU_get_number_of_tests_failed();
    unsigned ran = CU_get_number_of_tests_run();
    CU_cleanup_registry();
    wd_h_stop_all();
    if (ran == 0) {
        fprintf(stderr, "no test ran\n");
        return 1;
    }
    return failed ? 1 : 0;
}

int wd_h_http(int port, const char *method, const char *path, const char *headers,
              const char *body, char **resp_headers, char **resp_body)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    size_t blen = body ? strlen(body) : 0;
    size_t cap = strlen(path) + (headers ? strlen(headers) : 0) + blen + 256;
    char *req = malloc(cap);
    int n = snprintf(req, cap,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s"
                     "Content-Length: %zu\r\n\r\n",
                     method, path, headers ? headers : "", blen);
    size_t len = (size_t)n;
    if (blen) {
        memcpy(req + len, body, blen);
        len += blen;
    }
    for (size_t off = 0; off < len;) {
        ssize_t w = write(fd, req + off, len - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    free(req);
    size_t rcap = 8192, rlen = 0;
    char *resp = malloc(rcap + 1);
    for (;;) {
        if (rlen == rcap) {
            rcap *= 2;
            resp = realloc(resp, rcap + 1);
        }
        ssize_t r = read(fd, resp + rlen, rcap - rlen);
        if (r <= 0)
            break;
        rlen += (size_t)r;
    }
    close(fd);
    resp[rlen] = '\0';
    int status = -1;
    if (sscanf(resp, "HTTP/1.%*d %d", &status) != 1)
        status = -1;
    char *sep = strstr(resp, "\r\n\r\n");
    if (resp_headers)
        *resp_headers = sep ? strndup(resp, (size_t)(sep - resp)) : strdup(resp);
    if (resp_body) {
        *resp_body = strdup(sep ? sep + 4 : "");
        /* Go servers (nats-server's monitoring) send big answers chunked. */
        if (sep && *resp_body && (strstr(resp, "Transfer-Encoding: chunked") ||
                                  strstr(resp, "transfer-encoding: chunked"))) {
            char *in = sep + 4, *out = *resp_body;
            size_t used = 0;
            for (;;) {
                char *end = NULL;
                unsigned long chunk = strtoul(in, &end, 16);
                char *data = end ? strstr(end, "\r\n") : NULL;
                if (chunk == 0 || data == NULL || strlen(data + 2) < chunk)
                    break;
                memmove(out + used, data + 2, chunk);
                used += chunk;
                in = data + 2 + chunk + 2;
            }
            out[used] = '\0';
        }
    }
    free(resp);
    return status;
}
