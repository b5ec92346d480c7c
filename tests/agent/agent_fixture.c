/* Agent integration fixture (see agent_fixture.h). */
#include "agent_fixture.h"

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "subject.h"
#include "template.h"
#include "util.h"

static bool file_contains(const char *path, const char *needle, size_t nlen)
{
    char *buf = NULL;
    size_t len = 0;
    if (wd_read_file(path, 1 << 20, &buf, &len) != WD_OK)
        return false;
    bool found = memmem(buf, len, needle, nlen) != NULL;
    free(buf);
    return found;
}

/* Kills every process whose command line or environment mentions needle. */
int wd_fx_kill_matching(const char *needle, bool do_kill)
{
    int found = 0;
    DIR *d = opendir("/proc");
    if (d == NULL)
        return 0;
    struct dirent *e;
    pid_t self = getpid();
    while ((e = readdir(d)) != NULL) {
        long pid;
        if (!wd_parse_long(e->d_name, 1, 1 << 30, &pid) || pid == self)
            continue;
        char path[64];
        snprintf(path, sizeof path, "/proc/%ld/cmdline", pid);
        bool match = file_contains(path, needle, strlen(needle));
        if (!match) {
            snprintf(path, sizeof path, "/proc/%ld/environ", pid);
            match = file_contains(path, needle, strlen(needle));
        }
        if (!match)
            continue;
        /* Zombies are gone already for our purposes. */
        char stat[64], *text = NULL;
        snprintf(stat, sizeof stat, "/proc/%ld/stat", pid);
        if (wd_read_file(stat, 4096, &text, NULL) == WD_OK) {
            char *p = strrchr(text, ')');
            bool zombie = p && p[1] == ' ' && p[2] == 'Z';
            free(text);
            if (zombie)
                continue;
        }
        found++;
        if (do_kill)
            kill((pid_t)pid, SIGKILL);
    }
    closedir(d);
    return found;
}

static void cleanup_games(void *arg)
{
    wd_fx *fx = arg;
    if (fx->data_dir[0])
        wd_fx_kill_matching(fx->data_dir, true); /* shims: their --run-dir is under it */
}

const char *wd_fx_template(const char *name)
{
    static char buf[4][1024];
    static int k;
    char *b = buf[k++ % 4];
    snprintf(b, sizeof buf[0], "%s/templates/%s.json", WARDEN_SOURCE_DIR, name);
    return b;
}

int wd_fx_stats_interval_ms = 500;

bool wd_fx_agent_start(wd_fx *fx)
{
    char data[600], node[100], nats[100], stats[64];
    snprintf(stats, sizeof stats, "--stats-interval=%d", wd_fx_stats_interval_ms);
    snprintf(data, sizeof data, "--data-dir=%s", fx->data_dir);
    snprintf(node, sizeof node, "--node-id=%s", fx->node_id);
    snprintf(nats, sizeof nats, "--nats-url=%s", fx->nats.url);
    const char *argv[] = {wd_h_bin("agent/warden-agent"), data, node, nats,
                          "--heartbeat=1", stats, NULL};
    fx->agent_pid = wd_h_spawn(argv, fx->extra_env, fx->log);
    if (fx->agent_pid < 0)
        return false;
    /* Ready when the node shows up in the warden_nodes bucket. */
    kvStore *kv = NULL;
    for (int i = 0; i < 500; i++) {
        if (kv == NULL && js_KeyValue(&kv, wd_bus_js(fx->bus), "warden_nodes") != NATS_OK)
            kv = NULL;
        if (kv) {
            kvEntry *e = NULL;
            if (kvStore_Get(&e, kv, fx->node_id) == NATS_OK) {
                int64_t created = kvEntry_Created(e);
                kvEntry_Destroy(e);
                /* A fresh entry (this agent's, not a predecessor's). */
                if (wd_unix_ms() - created / 1000000 < 1500) {
                    kvStore_Destroy(kv);
                    return true;
                }
            }
        }
        if (waitpid(fx->agent_pid, NULL, WNOHANG) == fx->agent_pid) {
            fprintf(stderr, "agent exited early; see %s\n", fx->log);
            fx->agent_pid = 0;
            break;
        }
        usleep(20000);
    }
    kvStore_Destroy(kv);
    return false;
}

bool wd_fx_start(wd_fx *fx)
{
    memset(fx, 0, sizeof *fx);
    if (!wd_h_nats_start(&fx->nats))
        return false;
    const char *d = wd_h_tmpdir("agent");
    snprintf(fx->data_dir, sizeof fx->data_dir, "%s/data", d);
    snprintf(fx->log, sizeof fx->log, "%s/agent.log", d);
    wd_uuid_new(fx->node_id);
    wd_h_at_cleanup(cleanup_games, fx);
    wd_bus_cfg cfg = wd_bus_cfg_defaults();
    cfg.servers = fx->nats.url;
    cfg.name = "test-client";
    cfg.reconnect_min_ms = 50;
    cfg.reconnect_max_ms = 250;
    if (wd_bus_connect(&fx->bus, &cfg) != WD_OK)
        return false;
    return wd_fx_agent_start(fx);
}

void wd_fx_agent_kill9(wd_fx *fx)
{
    if (fx->agent_pid > 0)
        wd_h_stop(fx->agent_pid, SIGKILL, 2000);
    fx->agent_pid = 0;
}

static bool log_clean(const char *path)
{
    char *text = NULL;
    size_t len = 0;
    if (wd_read_file(path, 64 << 20, &text, &len) != WD_OK)
        return true;
    bool bad = memmem(text, len, "Sanitizer", 9) != NULL ||
               memmem(text, len, "runtime error:", 14) != NULL;
    if (bad)
        fprintf(stderr, "sanitizer report in %s\n", path);
    free(text);
    return !bad;
}

bool wd_fx_agent_clean_exit(wd_fx *fx)
{
    int status = -1;
    if (fx->agent_pid > 0)
        status = wd_h_stop(fx->agent_pid, SIGTERM, 10000);
    fx->agent_pid = 0;
    bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (!ok)
        fprintf(stderr, "agent did not exit cleanly (status %d); see %s\n", status, fx->log);
    ok &= log_clean(fx->log);
    char run[700];
    snprintf(run, sizeof run, "%s/run", fx->data_dir);
    DIR *d = opendir(run);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        const char *kinds[] = {"game", "install"};
        for (int k = 0; k < 2; k++) {
            char path[1200];
            snprintf(path, sizeof path, "%s/%s/%s/shim.log", run, e->d_name, kinds[k]);
            ok &= log_clean(path);
        }
    }
    if (d)
        closedir(d);
    return ok;
}

void wd_fx_stop(wd_fx *fx)
{
    if (fx->agent_pid > 0)
        wd_h_stop(fx->agent_pid, SIGTERM, 5000);
    fx->agent_pid = 0;
    cleanup_games(fx);
    wd_bus_destroy(&fx->bus);
    wd_h_nats_stop(&fx->nats);
}

/* ---- watcher ---- */

static void on_state(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *ud)
{
    wd_watch *w = ud;
    Warden__V1__ServerStateEvent *ev = (Warden__V1__ServerStateEvent *)wd_bus_decode(
        &warden__v1__server_state_event__descriptor, m);
    if (ev) {
        pthread_mutex_lock(&w->mu);
        if (w->nstates < 256)
            w->states[w->nstates++] = ev->state;
        pthread_mutex_unlock(&w->mu);
        protobuf_c_message_free_unpacked(&ev->base, NULL);
    }
    natsMsg_Destroy(m);
}

static void on_console(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *ud)
{
    wd_watch *w = ud;
    Warden__V1__ConsoleChunk *c =
        (Warden__V1__ConsoleChunk *)wd_bus_decode(&warden__v1__console_chunk__descriptor, m);
    if (c) {
        pthread_mutex_lock(&w->mu);
        w->dropped += c->dropped;
        if (c->first_seq) {
            if (w->max_seq && c->first_seq > w->max_seq + 1 + c->dropped)
                w->gaps += c->first_seq - (w->max_seq + 1 + c->dropped);
            if (c->first_seq + c->n_lines - 1 > w->max_seq)
                w->max_seq = c->first_seq + c->n_lines - 1;
        }
        for (size_t i = 0; i < c->n_lines; i++) {
            if (w->nlines == w->cap) {
                w->cap = w->cap ? w->cap * 2 : 1024;
                w->lines = realloc(w->lines, w->cap * sizeof *w->lines);
                w->seqs = realloc(w->seqs, w->cap * sizeof *w->seqs);
            }
            w->lines[w->nlines] = c->lines[i].len ? strndup((const char *)c->lines[i].data,
                                                            c->lines[i].len)
                                                  : strdup("");
            w->seqs[w->nlines] = c->first_seq ? c->first_seq + i : 0;
            w->nlines++;
        }
        pthread_mutex_unlock(&w->mu);
        protobuf_c_message_free_unpacked(&c->base, NULL);
    }
    natsMsg_Destroy(m);
}

wd_watch *wd_watch_start(wd_fx *fx, const char *server_id)
{
    wd_watch *w = calloc(1, sizeof *w);
    pthread_mutex_init(&w->mu, NULL);
    char subj[WD_SUBJECT_MAX];
    wd_subj_server_event(subj, sizeof subj, server_id, "state");
    natsConnection_Subscribe(&w->state_sub, wd_bus_nats(fx->bus), subj, on_state, w);
    wd_subj_server_event(subj, sizeof subj, server_id, "console");
    natsConnection_Subscribe(&w->console_sub, wd_bus_nats(fx->bus), subj, on_console, w);
    natsSubscription_SetPendingLimits(w->console_sub, -1, -1);
    natsConnection_Flush(wd_bus_nats(fx->bus));
    return w;
}

void wd_watch_free(wd_watch *w)
{
    if (w == NULL)
        return;
    /* Drain, not unsubscribe: a callback still running on a nats.c thread
     * would otherwise touch w after it is freed. */
    natsSubscription_Drain(w->state_sub);
    natsSubscription_Drain(w->console_sub);
    natsSubscription_WaitForDrainCompletion(w->state_sub, 5000);
    natsSubscription_WaitForDrainCompletion(w->console_sub, 5000);
    natsSubscription_Destroy(w->state_sub);
    natsSubscription_Destroy(w->console_sub);
    for (size_t i = 0; i < w->nlines; i++)
        free(w->lines[i]);
    free(w->lines);
    free(w->seqs);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

bool wd_watch_wait_state(wd_watch *w, int state, int timeout_ms)
{
    for (int t = 0; t <= timeout_ms; t += 10) {
        pthread_mutex_lock(&w->mu);
        bool seen = false;
        for (int i = 0; i < w->nstates; i++)
            seen |= w->states[i] == state;
        if (seen)
            w->nstates = 0; /* consume: later waits see only new events */
        pthread_mutex_unlock(&w->mu);
        if (seen)
            return true;
        usleep(10000);
    }
    return false;
}

bool wd_watch_wait_line(wd_watch *w, const char *text, int timeout_ms)
{
    for (int t = 0;; t += 1) {
        pthread_mutex_lock(&w->mu);
        bool seen = false;
        /* Newest first: callers wait for what they just caused. */
        for (size_t i = w->nlines; i > 0 && !seen; i--)
            seen = strstr(w->lines[i - 1], text) != NULL;
        pthread_mutex_unlock(&w->mu);
        if (seen)
            return true;
        if (t >= timeout_ms)
            return false;
        usleep(1000);
    }
}

size_t wd_watch_count_prefix(wd_watch *w, const char *prefix)
{
    size_t n = 0, plen = strlen(prefix);
    pthread_mutex_lock(&w->mu);
    for (size_t i = 0; i < w->nlines; i++)
        n += strncmp(w->lines[i], prefix, plen) == 0;
    pthread_mutex_unlock(&w->mu);
    return n;
}

uint64_t wd_watch_dropped(wd_watch *w)
{
    pthread_mutex_lock(&w->mu);
    uint64_t v = w->dropped;
    pthread_mutex_unlock(&w->mu);
    return v;
}

uint64_t wd_watch_gaps(wd_watch *w)
{
    pthread_mutex_lock(&w->mu);
    uint64_t v = w->gaps;
    pthread_mutex_unlock(&w->mu);
    return v;
}

/* ---- requests ---- */

wd_status wd_fx_create(wd_fx *fx, const char *template_path, const char *const *vars,
                       char id[37])
{
    return wd_fx_create_ex(fx, template_path, vars, NULL, id);
}

wd_status wd_fx_create_ex(wd_fx *fx, const char *template_path, const char *const *vars,
                          Warden__V1__Limits *limits, char id[37])
{
    return wd_fx_create_spec(fx, template_path, vars, limits, NULL, id);
}

wd_status wd_fx_create_spec(wd_fx *fx, const char *template_path, const char *const *vars,
                            Warden__V1__Limits *limits, Warden__V1__RestartPolicy *restart,
                            char id[37])
{
    char *text = NULL;
    size_t len = 0;
    wd_status st = wd_read_file(template_path, WD_TEMPLATE_MAX_JSON, &text, &len);
    if (st != WD_OK)
        return st;
    Warden__V1__Template *t = NULL;
    st = wd_template_parse_json(text, len, &t);
    free(text);
    if (st != WD_OK)
        return st;
    wd_uuid_new(id);
    Warden__V1__ServerSpec spec = WARDEN__V1__SERVER_SPEC__INIT;
    spec.id = id;
    spec.name = (char *)"test server";
    spec.template_ = t;
    Warden__V1__ServerSpec__VariablesEntry e[16], *ep[16];
    size_t n = 0;
    char keys[16][64];
    for (; vars && vars[n] && n < 16; n++) {
        warden__v1__server_spec__variables_entry__init(&e[n]);
        const char *eq = strchr(vars[n], '=');
        snprintf(keys[n], sizeof keys[n], "%.*s", (int)(eq - vars[n]), vars[n]);
        e[n].key = keys[n];
        e[n].value = (char *)eq + 1;
        ep[n] = &e[n];
    }
    spec.n_variables = n;
    spec.variables = ep;
    spec.limits = limits;
    spec.restart = restart;
    Warden__V1__SyncRequest req = WARDEN__V1__SYNC_REQUEST__INIT;
    req.spec = &spec;
    ProtobufCMessage *reply = NULL;
    st = wd_fx_request(fx, id, "sync", &req.base, &warden__v1__sync_reply__descriptor, &reply);
    if (reply)
        protobuf_c_message_free_unpacked(reply, NULL);
    wd_template_free(&t);
    return st;
}

wd_status wd_fx_request(wd_fx *fx, const char *server_id, const char *op,
                        const ProtobufCMessage *req, const ProtobufCMessageDescriptor *desc,
                        ProtobufCMessage **reply)
{
    char subj[WD_SUBJECT_MAX];
    wd_status st = wd_subj_agent_server(subj, sizeof subj, fx->node_id, server_id, op);
    if (st != WD_OK)
        return st;
    ProtobufCMessage *r = NULL;
    st = wd_bus_request(fx->bus, subj, req, desc, 10000, NULL, &r);
    if (st != WD_OK)
        return st;
    st = wd_status_check(((Warden__V1__Ack *)r)->status);
    if (reply)
        *reply = r;
    else
        protobuf_c_message_free_unpacked(r, NULL);
    return st;
}

wd_status wd_fx_power(wd_fx *fx, const char *server_id, int action)
{
    Warden__V1__PowerRequest req = WARDEN__V1__POWER_REQUEST__INIT;
    req.action = action;
    return wd_fx_request(fx, server_id, "power", &req.base, &warden__v1__power_reply__descriptor,
                         NULL);
}

wd_status wd_fx_send(wd_fx *fx, const char *server_id, const char *line)
{
    Warden__V1__ConsoleInput in = WARDEN__V1__CONSOLE_INPUT__INIT;
    in.line = (char *)line;
    return wd_fx_request(fx, server_id, "console.in", &in.base, &warden__v1__ack__descriptor,
                         NULL);
}

wd_status wd_fx_info(wd_fx *fx, const char *server_id, Warden__V1__ServerInfo *copy,
                     uint32_t *pid)
{
    Warden__V1__InfoRequest req = WARDEN__V1__INFO_REQUEST__INIT;
    ProtobufCMessage *r = NULL;
    wd_status st =
        wd_fx_request(fx, server_id, "info", &req.base, &warden__v1__info_reply__descriptor, &r);
    if (st == WD_OK) {
        Warden__V1__ServerInfo *in = ((Warden__V1__InfoReply *)r)->info;
        if (copy) {
            *copy = *in;
            copy->id = copy->name = copy->node_id = copy->template_id = copy->last_error = NULL;
        }
        if (pid)
            *pid = in->pid;
    }
    if (r)
        protobuf_c_message_free_unpacked(r, NULL);
    return st;
}

wd_status wd_fx_raw(wd_fx *fx, const char *server_id, const char *op, const void *data,
                    size_t len)
{
    char subj[WD_SUBJECT_MAX];
    snprintf(subj, sizeof subj, "warden.agent.%s.server.%s.%s", fx->node_id, server_id, op);
    natsMsg *r = NULL;
    natsStatus s =
        natsConnection_Request(&r, wd_bus_nats(fx->bus), subj, data, (int)len, 5000);
    if (s != NATS_OK)
        return wd_bus_status(s, subj);
    Warden__V1__Ack *ack = (Warden__V1__Ack *)wd_bus_decode(&warden__v1__ack__descriptor, r);
    natsMsg_Destroy(r);
    if (ack == NULL)
        return WD_ERR_PROTO;
    wd_status st = wd_status_check(ack->status);
    protobuf_c_message_free_unpacked(&ack->base, NULL);
    return st;
}

bool wd_fx_server_procs_alive(wd_fx *fx, const char *server_id)
{
    char env[64];
    snprintf(env, sizeof env, "SERVER_ID=%s", server_id);
    return wd_fx_kill_matching(env, false) > 0 || wd_fx_kill_matching(server_id, false) > 0;
}

pid_t wd_fx_find_proc(const char *server_id, const char *cmd)
{
    char env[64];
    snprintf(env, sizeof env, "SERVER_ID=%s", server_id);
    DIR *d = opendir("/proc");
    if (d == NULL)
        return 0;
    struct dirent *e;
    pid_t found = 0;
    while (found == 0 && (e = readdir(d)) != NULL) {
        long pid;
        if (!wd_parse_long(e->d_name, 1, 1 << 30, &pid))
            continue;
        char path[64];
        snprintf(path, sizeof path, "/proc/%ld/environ", pid);
        if (!file_contains(path, env, strlen(env)))
            continue;
        snprintf(path, sizeof path, "/proc/%ld/cmdline", pid);
        if (file_contains(path, cmd, strlen(cmd)))
            found = (pid_t)pid;
    }
    closedir(d);
    return found;
}
