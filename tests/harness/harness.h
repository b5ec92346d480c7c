/* Shared test harness: temp dirs, free loopback ports, child processes that
 * never outlive the test, a real nats-server, and the CUnit runner.
 *
 * Every process started through wd_h_spawn is tracked; wd_h_stop_all runs at
 * exit and on SIGINT/SIGTERM/SIGABRT, so nothing survives a failed test. */
#ifndef WD_HARNESS_H
#define WD_HARNESS_H

#include <CUnit/Basic.h>
#include <stdbool.h>
#include <sys/types.h>

/* A fresh directory under $TMPDIR (or /tmp), removed at exit unless
 * WARDEN_KEEP_TMP is set. Returns a static-lifetime string. */
const char *wd_h_tmpdir(const char *tag);
/* Writes text to a new file `name` in a fresh temp dir; returns its path
 * (valid until the 4th next call). */
const char *wd_h_write_tmp(const char *name, const char *text);
/* A TCP port on 127.0.0.1 that was free a moment ago. */
int wd_h_free_port(void);
/* Waits until 127.0.0.1:port accepts connections; false on timeout. */
bool wd_h_wait_port(int port, int timeout_ms);
/* Waits until path exists; false on timeout. */
bool wd_h_wait_file(const char *path, int timeout_ms);
/* Waits for a port file (a decimal port and a newline, as warden-ws
 * --port-file writes it); the port, or 0 on timeout or junk. */
int wd_h_read_port_file(const char *path, int timeout_ms);

/* Starts argv[0] (searched in PATH) with stdout/stderr appended to log (or
 * inherited when NULL) and the extra environment entries envp (K=V, NULL
 * terminated, may be NULL). Returns the pid, or -1. Tracked. */
pid_t wd_h_spawn(const char *const argv[], const char *const envp[], const char *log);
/* Sends sig, waits up to timeout_ms, then SIGKILLs; reaps. Returns the wait
 * status. Untracks the pid. */
int wd_h_stop(pid_t pid, int sig, int timeout_ms);
/* Waits up to timeout_ms for pid to exit by itself; -1 if it did not. */
int wd_h_wait_exit(pid_t pid, int timeout_ms);
void wd_h_stop_all(void);
/* Registers an extra cleanup (e.g. kill shims under a data dir) run by
 * wd_h_stop_all before tracked processes are stopped. */
void wd_h_at_cleanup(void (*fn)(void *), void *arg);

typedef struct {
    pid_t pid;
    int port;
    char url[64];
    char dir[512];
    char log[600];
    /* Set before the first start to run in operator (JWT) mode: the
     * auth.conf `warden-api nats init` wrote, pasted into the config. */
    char auth_conf[600];
    /* Set before the first start to require TLS from clients: a directory
     * with server.pem and server-key.pem (deploy/tls/warden-nats-certs). */
    char tls_dir[600];
    /* Cluster member (filled by wd_h_nats_cluster): server name, route
     * port, routes to the others, monitoring port (/healthz). */
    char name[32];
    int cluster_port;
    int http_port;
    char routes[512];
} wd_h_nats;

/* Starts nats-server with JetStream on a free loopback port, data in a temp
 * dir; waits until it accepts. Restartable on the same port/dir. */
bool wd_h_nats_start(wd_h_nats *n);
void wd_h_nats_stop(wd_h_nats *n);
/* Starts n servers as one cluster ("warden") with JetStream, routes on
 * loopback; auth_conf/tls_dir of n[0] apply to all. Waits until every
 * member reports healthy (JetStream meta leader elected). */
bool wd_h_nats_cluster(wd_h_nats *n, int count);
/* "nats://127.0.0.1:P1,nats://127.0.0.1:P2,..." of a cluster (static). */
const char *wd_h_nats_urls(const wd_h_nats *n, int count);
/* Creates a CA and a server certificate for localhost/127.0.0.1 in a fresh
 * temp dir (deploy/tls/warden-nats-certs); returns the dir or NULL. */
const char *wd_h_tls_certs(void);

/* One HTTP/1.1 request to 127.0.0.1:port (Connection: close). headers are
 * extra "Name: value\r\n" lines (or NULL); body may be NULL. Returns the
 * status code (-1 on a connection error); *resp_headers and *resp_body
 * (either may be NULL) are heap strings the caller frees. */
int wd_h_http(int port, const char *method, const char *path, const char *headers,
              const char *body, char **resp_headers, char **resp_body);

/* Path of a binary of the build tree, e.g. wd_h_bin("agent/warden-agent"). */
const char *wd_h_bin(const char *rel);

/* Runs all registered CUnit suites; returns the process exit code (0 when
 * every test passed). */
int wd_h_run(void);

/* Registers a suite with NULL-terminated {name, fn} pairs. */
typedef struct {
    const char *name;
    void (*fn)(void);
} wd_h_case;
void wd_h_suite(const char *name, int (*init)(void), int (*clean)(void), const wd_h_case *cases);

/* Polls cond every 10 ms for up to timeout_ms. */
#define WD_H_WAIT(cond, timeout_ms)                                            \
    ({                                                                         \
        bool ok__ = false;                                                     \
        for (int t__ = 0; t__ <= (timeout_ms); t__ += 10) {                    \
            if (cond) {                                                        \
                ok__ = true;                                                   \
                break;                                                         \
            }                                                                  \
            usleep(10000);                                                     \
        }                                                                      \
        ok__;                                                                  \
    })

#endif
