/* Test fixture for agent integration tests: a real nats-server, a real
 * warden-agent process, and a bus client with helpers to create servers,
 * send requests, and watch state and console subjects.
 *
 * Everything started here is stopped at exit, including games left running
 * by a killed agent (their shims are found through the data dir). */
#ifndef WD_AGENT_FIXTURE_H
#define WD_AGENT_FIXTURE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "bus.h"
#include "harness.h"
#include "warden/v1/console.pb-c.h"
#include "warden/v1/server.pb-c.h"

typedef struct {
    wd_h_nats nats;
    char data_dir[512];
    char node_id[64];
    char log[600];
    pid_t agent_pid;
    wd_bus *bus;
    const char *extra_env[8];
} wd_fx;

/* The agent's --stats-interval (tests: 500 ms to be quick). */
extern int wd_fx_stats_interval_ms;

bool wd_fx_start(wd_fx *fx);               /* nats + agent + client */
bool wd_fx_agent_start(wd_fx *fx);         /* (re)start the agent only */
void wd_fx_agent_kill9(wd_fx *fx);
/* Counts (and with do_kill, SIGKILLs) every process whose command line or
 * environment mentions needle, e.g. the shims under an agent's data dir. */
int wd_fx_kill_matching(const char *needle, bool do_kill);
void wd_fx_stop(wd_fx *fx);
/* Stops the agent (SIGTERM, graceful) and reports whether its log and every
 * shim log under the data dir are free of sanitizer reports. */
bool wd_fx_agent_clean_exit(wd_fx *fx);

/* A watcher records every state event and console line of one server. */
typedef struct {
    pthread_mutex_t mu;
    natsSubscription *state_sub, *console_sub;
    int states[256];
    int nstates;
    char **lines;
    uint64_t *seqs;
    size_t nlines, cap;
    uint64_t dropped;
    uint64_t max_seq;
    uint64_t gaps; /* sequence gaps not explained by dropped */
} wd_watch;

wd_watch *wd_watch_start(wd_fx *fx, const char *server_id);
void wd_watch_free(wd_watch *w);
bool wd_watch_wait_state(wd_watch *w, int state, int timeout_ms);
/* True once a console line containing text was seen. */
bool wd_watch_wait_line(wd_watch *w, const char *text, int timeout_ms);
size_t wd_watch_count_prefix(wd_watch *w, const char *prefix);
/* Sum of the chunks' dropped counts; sequence gaps dropped does not explain. */
uint64_t wd_watch_dropped(wd_watch *w);
uint64_t wd_watch_gaps(wd_watch *w);

/* Creates a server from a template file with NULL-terminated K=V vars;
 * returns the status of the sync reply. id receives the new UUID. */
wd_status wd_fx_create(wd_fx *fx, const char *template_path, const char *const *vars,
                       char id[37]);
wd_status wd_fx_create_ex(wd_fx *fx, const char *template_path, const char *const *vars,
                          Warden__V1__Limits *limits, char id[37]);
wd_status wd_fx_create_spec(wd_fx *fx, const char *template_path, const char *const *vars,
                            Warden__V1__Limits *limits, Warden__V1__RestartPolicy *restart,
                            char id[37]);
/* Sends a request and returns the reply status; *reply kept if non-NULL. */
wd_status wd_fx_request(wd_fx *fx, const char *server_id, const char *op,
                        const ProtobufCMessage *req, const ProtobufCMessageDescriptor *desc,
                        ProtobufCMessage **reply);
wd_status wd_fx_power(wd_fx *fx, const char *server_id, int action);
wd_status wd_fx_send(wd_fx *fx, const char *server_id, const char *line);
wd_status wd_fx_info(wd_fx *fx, const char *server_id, Warden__V1__ServerInfo *copy,
                     uint32_t *pid);
/* Raw bytes request (for garbage tests); returns the decoded status. */
wd_status wd_fx_raw(wd_fx *fx, const char *server_id, const char *op, const void *data,
                    size_t len);

/* True if any process's cmdline or cwd mentions the server's directory. */
bool wd_fx_server_procs_alive(wd_fx *fx, const char *server_id);
const char *wd_fx_template(const char *name); /* templates/<name>.json */
/* A process of the server (SERVER_ID in its environment) whose command line
 * contains cmd; 0 if none. */
pid_t wd_fx_find_proc(const char *server_id, const char *cmd);

#endif
