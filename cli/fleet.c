/* Fleet-wide commands in bus mode (see fleet.h). */
#include "fleet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bulk.h"
#include "ctl.h"
#include "js.h"
#include "subject.h"
#include "util.h"
#include "warden/v1/backup.pb-c.h"
#include "warden/v1/console.pb-c.h"
#include "warden/v1/node.pb-c.h"
#include "warden/v1/server.pb-c.h"

/* A node is online while its last heartbeat is younger than this (the
 * panel's rule too: docs/api.md). Agents beat every 5 s by default. */
#define ONLINE_MS 15000
/* How long `servers` listens for stats of running servers (agents publish
 * every 2 s by default). */
#define STATS_WAIT_MS 2500

typedef struct {
    /* id and node are subject tokens: up to 64 bytes (wd_subj_token_ok). */
    char id[65], node[65], name[128], template_id[72], last_error[256];
    int state; /* ServerState; -1 when unreachable (err says why) */
    bool installed;
    uint32_t pid;
    uint64_t uptime_ms;
    char err[256]; /* why the info request failed */
    bool has_stats;
    double cpu;
    uint64_t mem, mem_limit;
} server;

typedef struct {
    server *v;
    size_t n;
} fleet;

typedef struct {
    char id[65];
    Warden__V1__NodeHeartbeat *hb; /* NULL: registered servers but no heartbeat */
    size_t registered;             /* servers in warden_servers on this node */
} node;

/* ---- loading -------------------------------------------------------------- */

static void info_one(size_t i, void *ud)
{
    server *s = &((fleet *)ud)->v[i];
    if (s->node[0] == '\0')
        return; /* the registry look-up failed: s->err says why */
    Warden__V1__InfoRequest req = WARDEN__V1__INFO_REQUEST__INIT;
    ProtobufCMessage *reply = NULL;
    wd_status st = wd_ctl_request(s->id, s->node, "info", &req.base,
                                  &warden__v1__info_reply__descriptor, 0, &reply);
    if (st == WD_OK)
        st = wd_ctl_reply_status(reply);
    if (st == WD_OK) {
        const Warden__V1__ServerInfo *in = ((Warden__V1__InfoReply *)reply)->info;
        if (in) {
            s->state = in->state;
            s->installed = in->installed;
            s->pid = in->pid;
            s->uptime_ms = in->uptime_ms;
            snprintf(s->name, sizeof s->name, "%s", in->name ? in->name : "");
            snprintf(s->template_id, sizeof s->template_id, "%s",
                     in->template_id ? in->template_id : "");
            snprintf(s->last_error, sizeof s->last_error, "%s",
                     in->last_error ? in->last_error : "");
        }
    } else {
        snprintf(s->err, sizeof s->err, "%s", wd_err_msg());
    }
    if (reply)
        protobuf_c_message_free_unpacked(reply, NULL);
}

/* Reads the server registry; with info, asks every server for its state.
 * Returns 0, or the exit code after printing why. */
static int fleet_load(fleet *fl, bool info, int parallel)
{
    memset(fl, 0, sizeof *fl);
    kvStore *kv = NULL;
    if (js_KeyValue(&kv, wd_bus_js(wd_ctl_bus), WD_KV_SERVERS) != NATS_OK)
        return wd_ctl_fail("no server registry on this NATS: no agent has connected yet");
    kvKeysList keys = {0};
    natsStatus s = kvStore_Keys(&keys, kv, NULL);
    if (s != NATS_OK && s != NATS_NOT_FOUND) {
        kvStore_Destroy(kv);
        return wd_ctl_fail("listing servers: %s", natsStatus_GetText(s));
    }
    fl->v = calloc(keys.Count > 0 ? (size_t)keys.Count : 1, sizeof *fl->v);
    for (int i = 0; fl->v && i < keys.Count; i++) {
        server *sv = &fl->v[fl->n];
        if (!wd_subj_token_ok(keys.Keys[i]))
            continue;
        kvEntry *e = NULL;
        s = kvStore_Get(&e, kv, keys.Keys[i]);
        if (s == NATS_NOT_FOUND)
            continue; /* deleted since it was listed */
        snprintf(sv->id, sizeof sv->id, "%s", keys.Keys[i]);
        sv->state = -1;
        if (s == NATS_OK) {
            snprintf(sv->node, sizeof sv->node, "%s", kvEntry_ValueString(e));
            snprintf(sv->err, sizeof sv->err, "%s",
                     sv->node[0] ? "not asked" : "server registry: no node recorded");
        } else {
            /* Kept, not dropped: a server that vanishes from a listing (or
             * a bulk command's report) because the registry hiccupped is
             * worse than one shown unreachable, saying why. No node: it is
             * not asked for its info. */
            snprintf(sv->err, sizeof sv->err, "server registry: %s", natsStatus_GetText(s));
        }
        kvEntry_Destroy(e);
        fl->n++;
    }
    kvKeysList_Destroy(&keys);
    kvStore_Destroy(kv);
    if (fl->v == NULL)
        return wd_ctl_fail("out of memory");
    /* Sorted by node, then id: stable output, and one node's servers together. */
    for (size_t i = 1; i < fl->n; i++) {
        for (size_t k = i; k > 0; k--) {
            server *a = &fl->v[k - 1], *b = &fl->v[k];
            int c = strcmp(a->node, b->node);
            if (c < 0 || (c == 0 && strcmp(a->id, b->id) <= 0))
                break;
            server t = *a;
            *a = *b;
            *b = t;
        }
    }
    if (info) {
        for (size_t i = 0; i < fl->n; i++)
            if (fl->v[i].node[0])
                fl->v[i].err[0] = '\0';
        wd_bulk_parallel(fl->n, parallel, info_one, fl);
    }
    return 0;
}

static void fleet_free(fleet *fl)
{
    free(fl->v);
    fl->v = NULL;
    fl->n = 0;
}

static const char *server_state(const server *s)
{
    return s->state < 0 ? "unreachable" : wd_ctl_state_str(s->state);
}

/* The indices of the selected servers. Returns 0, 2 for a usage error. */
static int fleet_select(const fleet *fl, const wd_fleet_select *sel, bool empty_is_all,
                        size_t **out, size_t *n)
{
    wd_filter f;
    *out = NULL;
    *n = 0;
    if (wd_filter_parse(sel->filter, &f) != WD_OK) {
        fprintf(stderr, "wardenctl: --filter: %s\n", wd_err_msg());
        return 2;
    }
    if (f.n == 0 && !sel->all && !empty_is_all) {
        fprintf(stderr, "wardenctl: refusing to act on every server without --all: give "
                        "--filter EXPR (e.g. state=running,node=NODE) or --all\n");
        return 2;
    }
    *out = calloc(fl->n ? fl->n : 1, sizeof **out);
    if (*out == NULL)
        return wd_ctl_fail("out of memory");
    for (size_t i = 0; i < fl->n; i++) {
        const server *s = &fl->v[i];
        wd_filter_subject sub = {.id = s->id,
                                 .name = s->name,
                                 .node = s->node,
                                 .template_id = s->template_id,
                                 .state = s->state < 0 ? "unknown" : wd_ctl_state_str(s->state)};
        if (wd_filter_match(&f, &sub))
            (*out)[(*n)++] = i;
    }
    return 0;
}

/* Node heartbeats from KV warden_nodes, plus the nodes the server registry
 * names that have none (offline for longer than the KV keeps entries). */
static void nodes_load(node **out, size_t *n, const fleet *fl)
{
    *out = NULL;
    *n = 0;
    kvStore *kv = NULL;
    kvKeysList keys = {0};
    size_t cap = fl->n + 1;
    if (js_KeyValue(&kv, wd_bus_js(wd_ctl_bus), WD_KV_NODES) == NATS_OK &&
        kvStore_Keys(&keys, kv, NULL) == NATS_OK)
        cap += (size_t)keys.Count;
    node *v = calloc(cap, sizeof *v);
    if (v == NULL)
        goto out;
    for (int i = 0; i < keys.Count; i++) {
        kvEntry *e = NULL;
        if (kvStore_Get(&e, kv, keys.Keys[i]) != NATS_OK)
            continue;
        Warden__V1__NodeHeartbeat *hb = warden__v1__node_heartbeat__unpack(
            NULL, (size_t)kvEntry_ValueLen(e), (const uint8_t *)kvEntry_Value(e));
        kvEntry_Destroy(e);
        if (hb == NULL)
            continue;
        snprintf(v[*n].id, sizeof v[*n].id, "%s", keys.Keys[i]);
        v[(*n)++].hb = hb;
    }
    for (size_t i = 0; i < fl->n; i++) {
        if (fl->v[i].node[0] == '\0')
            continue; /* its registry entry could not be read */
        size_t k = 0;
        while (k < *n && strcmp(v[k].id, fl->v[i].node) != 0)
            k++;
        if (k == *n) {
            snprintf(v[k].id, sizeof v[k].id, "%s", fl->v[i].node);
            (*n)++;
        }
        v[k].registered++;
    }
    *out = v;
out:
    kvKeysList_Destroy(&keys);
    kvStore_Destroy(kv);
}

static void nodes_free(node *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        if (v[i].hb)
            protobuf_c_message_free_unpacked(&v[i].hb->base, NULL);
    free(v);
}

static const char *node_name(const node *v, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].id, id) == 0 && v[i].hb && v[i].hb->name && *v[i].hb->name)
            return v[i].hb->name;
    return "";
}

/* ---- nodes ---------------------------------------------------------------- */

static void fmt_age(char *buf, size_t n, int64_t ms)
{
    if (ms < 0)
        ms = 0;
    if (ms < 120000)
        snprintf(buf, n, "%llds", (long long)(ms / 1000));
    else if (ms < 7200000)
        snprintf(buf, n, "%lldm", (long long)(ms / 60000));
    else
        snprintf(buf, n, "%lldh", (long long)(ms / 3600000));
}

int wd_fleet_nodes(bool ids_only)
{
    fleet fl;
    memset(&fl, 0, sizeof fl);
    /* The server registry may be missing on a bus where no agent ever ran;
     * nodes are still worth listing then. */
    kvStore *probe = NULL;
    if (js_KeyValue(&probe, wd_bus_js(wd_ctl_bus), WD_KV_SERVERS) == NATS_OK) {
        kvStore_Destroy(probe);
        if (fleet_load(&fl, false, 1) != 0)
            return 1;
    }
    node *v = NULL;
    size_t n = 0;
    nodes_load(&v, &n, &fl);
    int64_t now = wd_unix_ms();
    if (ids_only) {
        for (size_t i = 0; i < n; i++)
            printf("%s\n", v[i].id);
        nodes_free(v, n);
        fleet_free(&fl);
        return 0;
    }
    if (wd_ctl_json)
        printf("[");
    else
        printf("%-36s  %-16s %-7s %5s %6s %19s %10s %8s\n", "NODE", "NAME", "STATUS", "SEEN",
               "CPU%", "MEM USED/TOTAL", "DISK USED", "SERVERS");
    for (size_t i = 0; i < n; i++) {
        const Warden__V1__NodeHeartbeat *hb = v[i].hb;
        int64_t age = hb ? now - hb->time_unix_ms : -1;
        bool online = hb && age < ONLINE_MS;
        if (wd_ctl_json) {
            printf("%s{\"id\":", i ? "," : "");
            wd_ctl_json_str(stdout, v[i].id);
            printf(",\"name\":");
            wd_ctl_json_str(stdout, hb ? hb->name : "");
            printf(",\"online\":%s,\"registered_servers\":%zu", online ? "true" : "false",
                   v[i].registered);
            if (hb) {
                printf(",\"version\":");
                wd_ctl_json_str(stdout, hb->version);
                printf(",\"heartbeat_age_ms\":%lld,\"cpu_percent\":%.1f,\"cpu_count\":%u,"
                       "\"memory_total_bytes\":%llu,\"memory_used_bytes\":%llu,"
                       "\"disk_total_bytes\":%llu,\"disk_used_bytes\":%llu,\"servers\":%u,"
                       "\"running\":%u,\"uptime_ms\":%llu,\"last_seen_unix_ms\":%lld,"
                       "\"isolation\":%s,\"cgroups\":%s",
                       (long long)age, hb->cpu_percent, hb->cpu_count,
                       (unsigned long long)hb->memory_total_bytes,
                       (unsigned long long)hb->memory_used_bytes,
                       (unsigned long long)hb->disk_total_bytes,
                       (unsigned long long)hb->disk_used_bytes, hb->server_count, hb->running_count,
                       (unsigned long long)hb->uptime_ms, (long long)hb->time_unix_ms,
                       hb->capabilities && hb->capabilities->isolation ? "true" : "false",
                       hb->capabilities && hb->capabilities->cgroups ? "true" : "false");
            }
            printf("}");
        } else if (hb) {
            char seen[32], mem[64];
            fmt_age(seen, sizeof seen, age);
            snprintf(mem, sizeof mem, "%llu/%llu MB",
                     (unsigned long long)(hb->memory_used_bytes >> 20),
                     (unsigned long long)(hb->memory_total_bytes >> 20));
            printf("%-36s  %-16.16s %-7s %5s %6.1f %19s %7llu MB %4u/%-3u\n", v[i].id, hb->name,
                   online ? "online" : "stale", seen, hb->cpu_percent, mem,
                   (unsigned long long)(hb->disk_used_bytes >> 20), hb->running_count,
                   hb->server_count);
        } else {
            printf("%-36s  %-16s %-7s %5s %6s %19s %10s %4s/%-3zu\n", v[i].id, "", "offline", "-",
                   "-", "-", "-", "?", v[i].registered);
        }
    }
    if (wd_ctl_json)
        printf("]\n");
    else if (n == 0)
        printf("(no nodes)\n");
    nodes_free(v, n);
    fleet_free(&fl);
    return 0;
}

/* ---- servers -------------------------------------------------------------- */

/* Collects ServerStats of running servers from sub until every running
 * (or starting) server has one or the time is up. */
static void collect_stats(natsSubscription *sub, fleet *fl, int64_t deadline)
{
    for (;;) {
        size_t waiting = 0;
        for (size_t i = 0; i < fl->n; i++)
            waiting += !fl->v[i].has_stats &&
                       (fl->v[i].state == WARDEN__V1__SERVER_STATE__SERVER_STATE_RUNNING ||
                        fl->v[i].state == WARDEN__V1__SERVER_STATE__SERVER_STATE_STARTING);
        int64_t left = deadline - wd_mono_ms();
        if (waiting == 0 || left <= 0 || wd_ctl_interrupted)
            return;
        natsMsg *m = NULL;
        natsStatus s = natsSubscription_NextMsg(&m, sub, left < 200 ? left : 200);
        if (s == NATS_TIMEOUT)
            continue;
        if (s != NATS_OK)
            return;
        Warden__V1__ServerStats *st =
            (Warden__V1__ServerStats *)wd_bus_decode(&warden__v1__server_stats__descriptor, m);
        natsMsg_Destroy(m);
        if (st == NULL)
            continue;
        for (size_t i = 0; i < fl->n; i++) {
            server *sv = &fl->v[i];
            if (st->server_id && strcmp(sv->id, st->server_id) == 0) {
                sv->has_stats = true;
                sv->cpu = st->cpu_percent;
                sv->mem = st->memory_bytes;
                sv->mem_limit = st->memory_limit_bytes;
            }
        }
        protobuf_c_message_free_unpacked(&st->base, NULL);
    }
}

static void fmt_uptime(char *buf, size_t n, uint64_t ms)
{
    uint64_t s = ms / 1000;
    if (s >= 86400)
        snprintf(buf, n, "%llud%lluh", (unsigned long long)(s / 86400),
                 (unsigned long long)(s % 86400 / 3600));
    else if (s >= 3600)
        snprintf(buf, n, "%lluh%02llum", (unsigned long long)(s / 3600),
                 (unsigned long long)(s % 3600 / 60));
    else if (s >= 60)
        snprintf(buf, n, "%llum%02llus", (unsigned long long)(s / 60),
                 (unsigned long long)(s % 60));
    else
        snprintf(buf, n, "%llus", (unsigned long long)s);
}

int wd_fleet_servers(bool ids_only, bool with_stats)
{
    fleet fl;
    if (ids_only) {
        if (fleet_load(&fl, false, 1) != 0)
            return 1;
        for (size_t i = 0; i < fl.n; i++)
            printf("%s\n", fl.v[i].id);
        fleet_free(&fl);
        return 0;
    }
    /* Subscribe before asking, so no sample published meanwhile is lost. */
    natsSubscription *sub = NULL;
    int64_t deadline =
        wd_mono_ms() + (wd_ctl_timeout_ms < STATS_WAIT_MS ? wd_ctl_timeout_ms : STATS_WAIT_MS);
    if (with_stats &&
        natsConnection_SubscribeSync(&sub, wd_bus_nats(wd_ctl_bus), WD_SUBJ_STATS_ALL) == NATS_OK)
        natsConnection_Flush(wd_bus_nats(wd_ctl_bus));
    if (fleet_load(&fl, true, 16) != 0) {
        natsSubscription_Destroy(sub);
        return 1;
    }
    if (sub)
        collect_stats(sub, &fl, deadline);
    natsSubscription_Destroy(sub);
    node *nodes = NULL;
    size_t nn = 0;
    nodes_load(&nodes, &nn, &fl);
    if (wd_ctl_json)
        printf("[");
    else
        printf("%-36s  %-16s %-11s %-14s %-10s %7s %6s %9s\n", "SERVER", "NAME", "STATE", "NODE",
               "TEMPLATE", "UPTIME", "CPU%", "MEMORY");
    for (size_t i = 0; i < fl.n; i++) {
        const server *s = &fl.v[i];
        const char *nname = node_name(nodes, nn, s->node);
        bool up = s->state == WARDEN__V1__SERVER_STATE__SERVER_STATE_RUNNING ||
                  s->state == WARDEN__V1__SERVER_STATE__SERVER_STATE_STARTING ||
                  s->state == WARDEN__V1__SERVER_STATE__SERVER_STATE_STOPPING;
        if (wd_ctl_json) {
            printf("%s{\"id\":", i ? "," : "");
            wd_ctl_json_str(stdout, s->id);
            printf(",\"name\":");
            wd_ctl_json_str(stdout, s->name);
            printf(",\"node\":");
            wd_ctl_json_str(stdout, s->node);
            printf(",\"node_name\":");
            wd_ctl_json_str(stdout, nname);
            printf(",\"state\":\"%s\",\"installed\":%s,\"template\":", server_state(s),
                   s->installed ? "true" : "false");
            wd_ctl_json_str(stdout, s->template_id);
            printf(",\"pid\":%u,\"uptime_ms\":%llu", s->pid, (unsigned long long)s->uptime_ms);
            if (s->has_stats)
                printf(",\"cpu_percent\":%.2f,\"memory_bytes\":%llu,\"memory_limit_bytes\":%llu",
                       s->cpu, (unsigned long long)s->mem, (unsigned long long)s->mem_limit);
            else
                printf(",\"cpu_percent\":null,\"memory_bytes\":null,\"memory_limit_bytes\":null");
            printf(",\"last_error\":");
            wd_ctl_json_str(stdout, s->last_error);
            if (s->state < 0) {
                printf(",\"error\":");
                wd_ctl_json_str(stdout, s->err);
            }
            printf("}");
        } else {
            char uptime[48] = "-", cpu[32] = "-", mem[48] = "-", nodecol[130];
            if (up && s->uptime_ms)
                fmt_uptime(uptime, sizeof uptime, s->uptime_ms);
            if (s->has_stats) {
                snprintf(cpu, sizeof cpu, "%.1f", s->cpu);
                snprintf(mem, sizeof mem, "%.1f MB", (double)s->mem / 1048576.0);
            }
            snprintf(nodecol, sizeof nodecol, "%s", *nname ? nname : s->node);
            printf("%-36s  %-16.16s %-11s %-14.14s %-10.10s %7s %6s %9s\n", s->id,
                   s->name[0] ? s->name : "-", server_state(s), nodecol,
                   s->template_id[0] ? s->template_id : "-", uptime, cpu, mem);
        }
    }
    if (wd_ctl_json)
        printf("]\n");
    else if (fl.n == 0)
        printf("(no servers)\n");
    nodes_free(nodes, nn);
    fleet_free(&fl);
    return 0;
}

/* ---- bulk ------------------------------------------------------------------- */

typedef struct {
    fleet *fl;
    const size_t *sel;
    wd_bulk *b;
    /* power */
    int action;
    const char *verb;
    bool wait;
    int wait_ms;
    /* backup */
    const char *const *ignore;
    size_t n_ignore;
    int timeout_ms;
    /* broadcast */
    const char *message, *fmt;
} job;

/* Polls the server's info until the power action has settled (see
 * wd_fleet_power). Returns WD_OK with the final state in *state. */
static wd_status power_wait(const server *s, int action, int wait_ms, int *state)
{
    bool want_running = action == WARDEN__V1__POWER_REQUEST__ACTION__START ||
                        action == WARDEN__V1__POWER_REQUEST__ACTION__RESTART;
    int64_t deadline = wd_mono_ms() + wait_ms;
    bool left_running = false;
    while (!wd_ctl_interrupted) {
        Warden__V1__InfoRequest req = WARDEN__V1__INFO_REQUEST__INIT;
        ProtobufCMessage *reply = NULL;
        wd_status st = wd_ctl_request(s->id, s->node, "info", &req.base,
                                      &warden__v1__info_reply__descriptor, 0, &reply);
        if (st == WD_OK)
            st = wd_ctl_reply_status(reply);
        const Warden__V1__ServerInfo *in =
            st == WD_OK ? ((Warden__V1__InfoReply *)reply)->info : NULL;
        int now = in ? (int)in->state : -1;
        uint32_t pid = in ? in->pid : 0;
        char err[256];
        snprintf(err, sizeof err, "%s", in && in->last_error ? in->last_error : "");
        if (reply)
            protobuf_c_message_free_unpacked(reply, NULL);
        if (st != WD_OK)
            return st;
        *state = now;
        /* A restart has settled once the old process is gone and a new
         * one runs: a running state with the old pid is not it yet. */
        left_running |=
            now != WARDEN__V1__SERVER_STATE__SERVER_STATE_RUNNING || (pid && pid != s->pid);
        if (want_running) {
            if (now == WARDEN__V1__SERVER_STATE__SERVER_STATE_RUNNING &&
                (action != WARDEN__V1__POWER_REQUEST__ACTION__RESTART || left_running))
                return WD_OK;
            if (now == WARDEN__V1__SERVER_STATE__SERVER_STATE_CRASHED ||
                (now == WARDEN__V1__SERVER_STATE__SERVER_STATE_OFFLINE && left_running &&
                 action == WARDEN__V1__POWER_REQUEST__ACTION__START))
                return WD_ERR(WD_ERR_STATE, "server went %s%s%s", wd_ctl_state_str(now),
                              *err ? ": " : "", err);
        } else if (now == WARDEN__V1__SERVER_STATE__SERVER_STATE_OFFLINE ||
                   now == WARDEN__V1__SERVER_STATE__SERVER_STATE_CRASHED) {
            return WD_OK;
        }
        if (wd_mono_ms() > deadline)
            return WD_ERR(WD_ERR_TIMEOUT, "timed out waiting for it to settle (%s)",
                          wd_ctl_state_str(now));
        usleep(200000);
    }
    return WD_ERR(WD_ERR_CLOSED, "interrupted");
}

static void power_one(size_t k, void *ud)
{
    job *j = ud;
    const server *s = &j->fl->v[j->sel[k]];
    int st_ = s->state;
    if (st_ < 0) {
        wd_bulk_report(j->b, s->id, s->name, WD_BULK_FAILED, s->err);
        return;
    }
    const char *skip = wd_bulk_power_skip(j->verb, wd_ctl_state_str(st_));
    if (skip) {
        wd_bulk_report(j->b, s->id, s->name, WD_BULK_SKIPPED, skip);
        return;
    }
    Warden__V1__PowerRequest req = WARDEN__V1__POWER_REQUEST__INIT;
    req.action = j->action;
    ProtobufCMessage *reply = NULL;
    wd_status st = wd_ctl_request(s->id, s->node, "power", &req.base,
                                  &warden__v1__power_reply__descriptor, 0, &reply);
    if (st == WD_OK)
        st = wd_ctl_reply_status(reply);
    int state = st == WD_OK ? (int)((Warden__V1__PowerReply *)reply)->state : -1;
    if (st == WD_OK && j->wait)
        st = power_wait(s, j->action, j->wait_ms, &state);
    if (st == WD_OK)
        wd_bulk_report(j->b, s->id, s->name, WD_BULK_OK, wd_ctl_state_str(state));
    else
        wd_bulk_report(j->b, s->id, s->name, WD_BULK_FAILED, wd_err_msg());
    if (reply)
        protobuf_c_message_free_unpacked(reply, NULL);
}

/* A bulk command needs a valid filter, or --all to mean every server. */
static bool selection_ok(const wd_fleet_select *sel, const char *verb, const char *example)
{
    wd_filter f;
    if (wd_filter_parse(sel->filter, &f) != WD_OK) {
        fprintf(stderr, "wardenctl: --filter: %s\n", wd_err_msg());
        return false;
    }
    if (f.n == 0 && !sel->all) {
        fprintf(stderr,
                "wardenctl: refusing to %s every server without --all: give --filter EXPR "
                "(e.g. %s) or --all\n",
                verb, example);
        return false;
    }
    return true;
}

/* Loads the fleet, selects (every server when the filter is empty and
 * empty_is_all), runs one(k, j) for each with bounded parallelism and
 * prints the summary. j->fl, j->sel and j->b are filled in here. */
static int run_bulk(const wd_fleet_select *sel, bool empty_is_all, const char *verb,
                    const char *ok_word, job *j, void (*one)(size_t, void *))
{
    fleet fl;
    if (fleet_load(&fl, true, sel->parallel) != 0)
        return 1;
    size_t *idx = NULL, n = 0;
    int rc = fleet_select(&fl, sel, empty_is_all, &idx, &n);
    if (rc == 0) {
        wd_bulk b;
        wd_bulk_begin(&b, verb, n, wd_ctl_json);
        if (ok_word)
            b.ok_word = ok_word;
        if (n == 0 && !wd_ctl_json)
            printf("no server matches the filter\n");
        j->fl = &fl;
        j->sel = idx;
        j->b = &b;
        wd_bulk_parallel(n, sel->parallel, one, j);
        rc = wd_bulk_end(&b);
    }
    free(idx);
    fleet_free(&fl);
    return rc;
}

int wd_fleet_power(const char *action, const wd_fleet_select *sel)
{
    job j = {.verb = action,
             .wait = sel->wait,
             .wait_ms = sel->wait_ms > 0 ? sel->wait_ms : WD_FLEET_WAIT_MS};
    if (strcmp(action, "start") == 0)
        j.action = WARDEN__V1__POWER_REQUEST__ACTION__START;
    else if (strcmp(action, "stop") == 0)
        j.action = WARDEN__V1__POWER_REQUEST__ACTION__STOP;
    else if (strcmp(action, "restart") == 0)
        j.action = WARDEN__V1__POWER_REQUEST__ACTION__RESTART;
    else if (strcmp(action, "kill") == 0)
        j.action = WARDEN__V1__POWER_REQUEST__ACTION__KILL;
    else {
        fprintf(stderr, "wardenctl: power takes start, stop, restart or kill\n");
        return 2;
    }
    /* Check the filter before touching the bus: a typo fails fast. */
    if (!selection_ok(sel, "act on", "state=running,node=NODE"))
        return 2;
    char verb[32];
    snprintf(verb, sizeof verb, "power %s", action);
    return run_bulk(sel, false, verb, NULL, &j, power_one);
}

static void backup_one(size_t k, void *ud)
{
    job *j = ud;
    const server *s = &j->fl->v[j->sel[k]];
    if (s->state < 0) {
        wd_bulk_report(j->b, s->id, s->name, WD_BULK_FAILED, s->err);
        return;
    }
    char backup_id[WD_UUID_LEN + 1];
    wd_uuid_new(backup_id);
    Warden__V1__BackupCreateRequest req = WARDEN__V1__BACKUP_CREATE_REQUEST__INIT;
    req.backup_id = backup_id;
    req.n_ignore = j->n_ignore;
    req.ignore = (char **)j->ignore;
    ProtobufCMessage *reply = NULL;
    wd_status st =
        wd_ctl_request(s->id, s->node, "backup.create", &req.base,
                       &warden__v1__backup_create_reply__descriptor, j->timeout_ms, &reply);
    if (st == WD_OK)
        st = wd_ctl_reply_status(reply);
    if (st == WD_OK) {
        const Warden__V1__BackupCreateReply *r = (const Warden__V1__BackupCreateReply *)reply;
        char detail[256];
        snprintf(detail, sizeof detail, "backup %s, %llu bytes, sha256 %.64s", backup_id,
                 (unsigned long long)r->size_bytes, r->sha256 ? r->sha256 : "");
        wd_bulk_report(j->b, s->id, s->name, WD_BULK_OK, detail);
    } else if (st == WD_ERR_UNSUPPORTED) {
        char detail[600];
        snprintf(detail, sizeof detail, "this agent does not do backups yet (%s)", wd_err_msg());
        wd_bulk_report(j->b, s->id, s->name, WD_BULK_FAILED, detail);
    } else {
        wd_bulk_report(j->b, s->id, s->name, WD_BULK_FAILED, wd_err_msg());
    }
    if (reply)
        protobuf_c_message_free_unpacked(reply, NULL);
}

int wd_fleet_backup(const wd_fleet_select *sel, const char *const *ignore, size_t n_ignore,
                    int timeout_ms)
{
    if (!selection_ok(sel, "back up", "node=NODE"))
        return 2;
    job j = {.ignore = ignore, .n_ignore = n_ignore, .timeout_ms = timeout_ms};
    return run_bulk(sel, false, "backup", NULL, &j, backup_one);
}

static void broadcast_one(size_t k, void *ud)
{
    job *j = ud;
    const server *s = &j->fl->v[j->sel[k]];
    char line[4200], why[64];
    if (s->state < 0) {
        wd_bulk_report(j->b, s->id, s->name, WD_BULK_FAILED, s->err);
        return;
    }
    if (s->state != WARDEN__V1__SERVER_STATE__SERVER_STATE_RUNNING) {
        snprintf(why, sizeof why, "not running (%s)", wd_ctl_state_str(s->state));
        wd_bulk_report(j->b, s->id, s->name, WD_BULK_SKIPPED, why);
        return;
    }
    wd_status st = wd_bulk_broadcast_line(s->template_id, j->fmt, j->message, line, sizeof line);
    if (st != WD_OK) {
        wd_bulk_report(j->b, s->id, s->name,
                       st == WD_ERR_UNSUPPORTED ? WD_BULK_SKIPPED : WD_BULK_FAILED, wd_err_msg());
        return;
    }
    Warden__V1__ConsoleInput in = WARDEN__V1__CONSOLE_INPUT__INIT;
    in.line = line;
    ProtobufCMessage *reply = NULL;
    st = wd_ctl_request(s->id, s->node, "console.in", &in.base, &warden__v1__ack__descriptor, 0,
                        &reply);
    if (st == WD_OK)
        st = wd_ctl_reply_status(reply);
    wd_bulk_report(j->b, s->id, s->name, st == WD_OK ? WD_BULK_OK : WD_BULK_FAILED,
                   st == WD_OK ? line : wd_err_msg());
    if (reply)
        protobuf_c_message_free_unpacked(reply, NULL);
}

int wd_fleet_broadcast(const char *message, const char *fmt, const wd_fleet_select *sel)
{
    char line[4200];
    wd_status st = wd_bulk_message_ok(message);
    if (st == WD_OK && fmt)
        st = wd_bulk_broadcast_line("", fmt, message, line, sizeof line);
    if (st != WD_OK) {
        fprintf(stderr, "wardenctl: broadcast: %s\n", wd_err_msg());
        return 2;
    }
    wd_filter f;
    if (wd_filter_parse(sel->filter, &f) != WD_OK) {
        fprintf(stderr, "wardenctl: --filter: %s\n", wd_err_msg());
        return 2;
    }
    job j = {.message = message, .fmt = fmt};
    return run_bulk(sel, true, "broadcast", "sent", &j, broadcast_one);
}
