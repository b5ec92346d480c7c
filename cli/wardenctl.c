/* wardenctl: drive Warden from a shell, over the bus.
 *
 *   wardenctl [--nats URL] [--json] [--timeout MS] COMMAND ...
 *
 * Every command exits 0 on success; on any error it prints one clear line
 * to stderr and exits non-zero (1 for errors from Warden, 2 for usage).
 * Server commands need only the server id: the node is looked up in the
 * warden_servers KV bucket the agents maintain. */
#include <errno.h>
#include <stdarg.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bus.h"
#include "js.h"
#include "rest.h"
#include "status.h"
#include "subject.h"
#include "template.h"
#include "util.h"
#include "warden/v1/console.pb-c.h"
#include "warden/v1/node.pb-c.h"
#include "warden/v1/server.pb-c.h"

static const char *nats_url;
static const char *nats_creds; /* NATS .creds (ops.creds from `warden-api nats init`) */
static const char *api_url;
static bool json;
static int timeout_ms = 5000;
static wd_bus *bus;
static volatile sig_atomic_t interrupted;

static const char usage[] =
    "usage: wardenctl [--nats URL] [--json] [--timeout MS] COMMAND\n"
    "\n"
    "commands:\n"
    "  nodes                                   list live nodes\n"
    "  servers                                 list servers and their nodes\n"
    "  server create --node NODE --template FILE [--name NAME] [--var K=V]...\n"
    "                                          create a server; prints its id\n"
    "  server install ID [--wait]              run the template's install script\n"
    "  server start|stop|restart ID [--wait]   power actions (--wait: until settled)\n"
    "  server kill ID                          kill the whole process tree now\n"
    "  server delete ID [--force]              delete (force: kill it first)\n"
    "  server state ID                         state, pid, uptime, last error\n"
    "  send ID COMMAND                         type one line into the game's console\n"
    "  console ID [--tail N] [--no-follow]     history, then live output; stdin lines are sent\n"
    "  stats ID [--follow]                     CPU, memory, disk, uptime\n"
    "\n"
    "\n"
    "REST mode (--api URL or WARDEN_API_URL), against warden-api:\n"
    "  login --username NAME [--totp CODE]     password on stdin; keeps a session file\n"
    "  servers                                 servers you can see\n"
    "  power SERVER_ID start|stop|restart|kill\n"
    "  send SERVER_ID COMMAND\n"
    "\n"
    "NATS URL: --nats or WARDEN_NATS_URL (default nats://127.0.0.1:4222)\n"
    "NATS credentials: --nats-creds FILE or WARDEN_NATS_CREDS (ops.creds from\n"
    "`warden-api nats init`; `make run` keeps it in var/nats-auth/ops.creds)\n";

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "wardenctl: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

static int usage_error(const char *what)
{
    fprintf(stderr, "wardenctl: %s\n\n%s", what, usage);
    return 2;
}

static wd_status connect_bus(void)
{
    wd_bus_cfg cfg = wd_bus_cfg_defaults();
    cfg.servers = nats_url;
    cfg.creds_file = nats_creds;
    cfg.name = "wardenctl";
    cfg.connect_timeout_ms = timeout_ms < 2000 ? timeout_ms : 2000;
    return wd_bus_connect(&bus, &cfg);
}

static const char *state_str(int s)
{
    static const char *const names[] = {"unknown", "offline", "installing", "starting",
                                        "running", "stopping", "crashed"};
    return s >= 0 && s <= 6 ? names[s] : "unknown";
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

/* Finds the node holding server id. */
static wd_status locate(const char *id, char *node, size_t n)
{
    if (!wd_subj_token_ok(id))
        return WD_ERR(WD_ERR_INVALID, "'%s' is not a valid server id", id);
    kvStore *kv = NULL;
    natsStatus s = js_KeyValue(&kv, wd_bus_js(bus), WD_KV_SERVERS);
    if (s != NATS_OK)
        return WD_ERR(WD_ERR_NOT_FOUND, "no server registry on this NATS (is an agent running?)");
    kvEntry *e = NULL;
    s = kvStore_Get(&e, kv, id);
    wd_status st = WD_OK;
    if (s == NATS_NOT_FOUND)
        st = WD_ERR(WD_ERR_NOT_FOUND, "server %s not found", id);
    else if (s != NATS_OK)
        st = wd_bus_status(s, "server registry");
    else
        snprintf(node, n, "%s", kvEntry_ValueString(e));
    kvEntry_Destroy(e);
    kvStore_Destroy(kv);
    return st;
}

/* Sends a request for a server op; reply decoded as desc. */
static wd_status server_request(const char *id, const char *op, const ProtobufCMessage *req,
                                const ProtobufCMessageDescriptor *desc, ProtobufCMessage **reply)
{
    char node[128], subj[WD_SUBJECT_MAX], trace[33];
    wd_status st = locate(id, node, sizeof node);
    if (st != WD_OK)
        return st;
    if ((st = wd_subj_agent_server(subj, sizeof subj, node, id, op)) != WD_OK)
        return st;
    wd_trace_new(trace);
    wd_hdrs h = {.trace = trace, .actor = "wardenctl"};
    st = wd_bus_request(bus, subj, req, desc, timeout_ms, &h, reply);
    if (st == WD_ERR_NO_RESPONDERS)
        return WD_ERR(st, "node %s does not answer: is its agent running?", node);
    return st;
}

/* The Status is field 1 of every reply: read it through an Ack view. */
static wd_status reply_status(ProtobufCMessage *reply)
{
    return wd_status_check(((Warden__V1__Ack *)reply)->status);
}

/* ---- nodes / servers ---- */

static int cmd_nodes(void)
{
    kvStore *kv = NULL;
    if (js_KeyValue(&kv, wd_bus_js(bus), WD_KV_NODES) != NATS_OK)
        return fail("no node registry on this NATS: no agent has connected yet");
    kvKeysList keys = {0};
    natsStatus s = kvStore_Keys(&keys, kv, NULL);
    if (s != NATS_OK && s != NATS_NOT_FOUND) {
        kvStore_Destroy(kv);
        return fail("listing nodes: %s", natsStatus_GetText(s));
    }
    if (json)
        printf("[");
    else
        printf("%-36s  %-16s %6s %12s %12s %8s\n", "NODE", "NAME", "CPU%", "MEM USED", "DISK USED",
               "SERVERS");
    for (int i = 0; i < keys.Count; i++) {
        kvEntry *e = NULL;
        if (kvStore_Get(&e, kv, keys.Keys[i]) != NATS_OK)
            continue;
        Warden__V1__NodeHeartbeat *hb = warden__v1__node_heartbeat__unpack(
            NULL, (size_t)kvEntry_ValueLen(e), (const uint8_t *)kvEntry_Value(e));
        kvEntry_Destroy(e);
        if (hb == NULL)
            continue;
        if (json) {
            printf("%s{\"id\":", i ? "," : "");
            json_str(stdout, hb->node_id);
            printf(",\"name\":");
            json_str(stdout, hb->name);
            printf(",\"version\":");
            json_str(stdout, hb->version);
            printf(",\"cpu_percent\":%.1f,\"cpu_count\":%u,\"memory_total_bytes\":%llu,"
                   "\"memory_used_bytes\":%llu,\"disk_total_bytes\":%llu,\"disk_used_bytes\":%llu,"
                   "\"servers\":%u,\"running\":%u,\"last_seen_unix_ms\":%lld,"
                   "\"isolation\":%s,\"cgroups\":%s}",
                   hb->cpu_percent, hb->cpu_count, (unsigned long long)hb->memory_total_bytes,
                   (unsigned long long)hb->memory_used_bytes,
                   (unsigned long long)hb->disk_total_bytes,
                   (unsigned long long)hb->disk_used_bytes, hb->server_count, hb->running_count,
                   (long long)hb->time_unix_ms,
                   hb->capabilities && hb->capabilities->isolation ? "true" : "false",
                   hb->capabilities && hb->capabilities->cgroups ? "true" : "false");
        } else {
            printf("%-36s  %-16.16s %6.1f %9llu MB %9llu MB %4u/%-3u\n", hb->node_id, hb->name,
                   hb->cpu_percent, (unsigned long long)(hb->memory_used_bytes >> 20),
                   (unsigned long long)(hb->disk_used_bytes >> 20), hb->running_count,
                   hb->server_count);
        }
        protobuf_c_message_free_unpacked(&hb->base, NULL);
    }
    if (json)
        printf("]\n");
    else if (keys.Count == 0)
        printf("(no live nodes)\n");
    kvKeysList_Destroy(&keys);
    kvStore_Destroy(kv);
    return 0;
}

static void print_info(const Warden__V1__ServerInfo *in)
{
    if (json) {
        printf("{\"id\":");
        json_str(stdout, in->id);
        printf(",\"name\":");
        json_str(stdout, in->name);
        printf(",\"node\":");
        json_str(stdout, in->node_id);
        printf(",\"state\":\"%s\",\"installed\":%s,\"pid\":%u,\"uptime_ms\":%llu,"
               "\"restarts\":%u,\"template\":",
               state_str(in->state), in->installed ? "true" : "false", in->pid,
               (unsigned long long)in->uptime_ms, in->restarts);
        json_str(stdout, in->template_id);
        printf(",\"last_error\":");
        json_str(stdout, in->last_error);
        printf(",\"console_seq\":%llu,\"console_dropped\":%llu,\"isolated\":%s}\n",
               (unsigned long long)in->console_seq, (unsigned long long)in->console_dropped,
               in->isolated ? "true" : "false");
        return;
    }
    printf("server    %s (%s)\n", in->id, in->name && *in->name ? in->name : "unnamed");
    printf("node      %s\n", in->node_id);
    printf("template  %s\n", in->template_id);
    printf("state     %s%s\n", state_str(in->state), in->installed ? "" : " (not installed)");
    if (in->pid)
        printf("pid       %u, up %llus\n", in->pid, (unsigned long long)(in->uptime_ms / 1000));
    if (in->restarts)
        printf("restarts  %u\n", in->restarts);
    if (in->last_error && *in->last_error)
        printf("error     %s\n", in->last_error);
    printf("sandbox   %s\n", in->isolated ? "bubblewrap" : "none");
}

static int cmd_state(const char *id)
{
    Warden__V1__InfoRequest req = WARDEN__V1__INFO_REQUEST__INIT;
    ProtobufCMessage *reply = NULL;
    wd_status st = server_request(id, "info", &req.base, &warden__v1__info_reply__descriptor, &reply);
    if (st == WD_OK && (st = reply_status(reply)) == WD_OK)
        print_info(((Warden__V1__InfoReply *)reply)->info);
    if (reply)
        protobuf_c_message_free_unpacked(reply, NULL);
    return st == WD_OK ? 0 : fail("%s", wd_err_msg());
}

static int cmd_servers(void)
{
    kvStore *kv = NULL;
    if (js_KeyValue(&kv, wd_bus_js(bus), WD_KV_SERVERS) != NATS_OK)
        return fail("no server registry on this NATS: no agent has connected yet");
    kvKeysList keys = {0};
    natsStatus s = kvStore_Keys(&keys, kv, NULL);
    if (json)
        printf("[");
    else
        printf("%-36s  %-36s  %-10s %s\n", "SERVER", "NODE", "STATE", "NAME");
    for (int i = 0; s == NATS_OK && i < keys.Count; i++) {
        Warden__V1__InfoRequest req = WARDEN__V1__INFO_REQUEST__INIT;
        ProtobufCMessage *reply = NULL;
        const char *state = "unreachable", *name = "";
        char node[128] = "?";
        locate(keys.Keys[i], node, sizeof node);
        Warden__V1__InfoReply *ir = NULL;
        if (server_request(keys.Keys[i], "info", &req.base, &warden__v1__info_reply__descriptor,
                           &reply) == WD_OK &&
            reply_status(reply) == WD_OK) {
            ir = (Warden__V1__InfoReply *)reply;
            state = state_str(ir->info->state);
            name = ir->info->name;
        }
        if (json) {
            printf("%s{\"id\":", i ? "," : "");
            json_str(stdout, keys.Keys[i]);
            printf(",\"node\":");
            json_str(stdout, node);
            printf(",\"state\":\"%s\",\"name\":", state);
            json_str(stdout, name);
            printf("}");
        } else {
            printf("%-36s  %-36s  %-10s %s\n", keys.Keys[i], node, state, name);
        }
        if (reply)
            protobuf_c_message_free_unpacked(reply, NULL);
    }
    if (json)
        printf("]\n");
    kvKeysList_Destroy(&keys);
    kvStore_Destroy(kv);
    return 0;
}

/* ---- create ---- */

static int cmd_create(int argc, char **argv)
{
    const char *node = NULL, *file = NULL, *name = NULL;
    wd_kv vars[64];
    size_t nvars = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--node") == 0 && i + 1 < argc)
            node = argv[++i];
        else if (strcmp(argv[i], "--template") == 0 && i + 1 < argc)
            file = argv[++i];
        else if (strcmp(argv[i], "--name") == 0 && i + 1 < argc)
            name = argv[++i];
        else if (strcmp(argv[i], "--var") == 0 && i + 1 < argc) {
            char *kv = argv[++i];
            char *eq = strchr(kv, '=');
            if (eq == NULL || eq == kv)
                return usage_error("--var needs NAME=VALUE");
            if (nvars == 64)
                return usage_error("too many --var");
            *eq = '\0';
            vars[nvars].key = kv;
            vars[nvars].value = eq + 1;
            nvars++;
        } else {
            return usage_error("server create: unexpected argument");
        }
    }
    if (node == NULL || file == NULL)
        return usage_error("server create needs --node NODE and --template FILE");
    if (!wd_subj_token_ok(node))
        return fail("'%s' is not a valid node id", node);
    char *text = NULL;
    size_t len = 0;
    if (wd_read_file(file, WD_TEMPLATE_MAX_JSON, &text, &len) != WD_OK)
        return fail("template %s: %s", file, wd_err_msg());
    Warden__V1__Template *t = NULL;
    wd_status st = wd_template_parse_json(text, len, &t);
    free(text);
    if (st != WD_OK)
        return fail("template %s: %s", file, wd_err_msg());
    for (size_t i = 0; i < t->n_import_notes; i++)
        fprintf(stderr, "wardenctl: note: %s\n", t->import_notes[i]);

    char id[WD_UUID_LEN + 1];
    wd_uuid_new(id);
    Warden__V1__ServerSpec spec = WARDEN__V1__SERVER_SPEC__INIT;
    spec.id = id;
    spec.name = (char *)(name ? name : t->name);
    spec.template_ = t;
    Warden__V1__ServerSpec__VariablesEntry entries[64], *eptr[64];
    for (size_t i = 0; i < nvars; i++) {
        warden__v1__server_spec__variables_entry__init(&entries[i]);
        entries[i].key = vars[i].key;
        entries[i].value = vars[i].value;
        eptr[i] = &entries[i];
    }
    spec.n_variables = nvars;
    spec.variables = eptr;
    spec.revision = 1;
    Warden__V1__SyncRequest req = WARDEN__V1__SYNC_REQUEST__INIT;
    req.spec = &spec;
    char subj[WD_SUBJECT_MAX], trace[33];
    wd_subj_agent_server(subj, sizeof subj, node, id, "sync");
    wd_trace_new(trace);
    wd_hdrs h = {.trace = trace, .actor = "wardenctl"};
    ProtobufCMessage *reply = NULL;
    st = wd_bus_request(bus, subj, &req.base, &warden__v1__sync_reply__descriptor, timeout_ms, &h,
                        &reply);
    wd_template_free(&t);
    if (st == WD_ERR_NO_RESPONDERS)
        return fail("node %s does not answer: check the id with 'wardenctl nodes'", node);
    if (st == WD_OK)
        st = reply_status(reply);
    if (reply)
        protobuf_c_message_free_unpacked(reply, NULL);
    if (st != WD_OK)
        return fail("create failed: %s", wd_err_msg());
    if (json)
        printf("{\"id\":\"%s\",\"node\":\"%s\"}\n", id, node);
    else
        printf("%s\n", id);
    return 0;
}

/* ---- power, install, delete ---- */

/* Waits on an open state subscription until the server reaches one of the
 * wanted states; fails early on a state that means it will not. */
static wd_status wait_state(natsSubscription *sub, int want1, int want2, int timeout)
{
    int64_t deadline = wd_mono_ms() + timeout;
    while (!interrupted) {
        int64_t left = deadline - wd_mono_ms();
        if (left <= 0)
            return WD_ERR(WD_ERR_TIMEOUT, "timed out waiting for the server to settle");
        natsMsg *m = NULL;
        natsStatus s = natsSubscription_NextMsg(&m, sub, left < 500 ? left : 500);
        if (s == NATS_TIMEOUT)
            continue;
        if (s != NATS_OK)
            return wd_bus_status(s, "state");
        Warden__V1__ServerStateEvent *ev = (Warden__V1__ServerStateEvent *)wd_bus_decode(
            &warden__v1__server_state_event__descriptor, m);
        natsMsg_Destroy(m);
        if (ev == NULL)
            continue;
        int state = ev->state;
        char reason[256];
        snprintf(reason, sizeof reason, "%s", ev->reason ? ev->reason : "");
        protobuf_c_message_free_unpacked(&ev->base, NULL);
        if (!json)
            fprintf(stderr, "state: %s (%s)\n", state_str(state), reason);
        if (state == want1 || state == want2)
            return WD_OK;
        if (state == WARDEN__V1__SERVER_STATE__SERVER_STATE_CRASHED ||
            (state == WARDEN__V1__SERVER_STATE__SERVER_STATE_OFFLINE &&
             want1 != WARDEN__V1__SERVER_STATE__SERVER_STATE_OFFLINE))
            return WD_ERR(WD_ERR_STATE, "server went %s: %s", state_str(state), reason);
    }
    return WD_ERR(WD_ERR_CLOSED, "interrupted");
}

static int cmd_server_action(const char *verb, const char *id, bool wait, bool force)
{
    natsSubscription *sub = NULL;
    char subj[WD_SUBJECT_MAX];
    if (wait) {
        if (wd_subj_server_event(subj, sizeof subj, id, "state") != WD_OK)
            return fail("%s", wd_err_msg());
        natsConnection_SubscribeSync(&sub, wd_bus_nats(bus), subj);
        natsConnection_Flush(wd_bus_nats(bus));
    }
    ProtobufCMessage *reply = NULL;
    wd_status st;
    int want1 = 0, want2 = 0;
    if (strcmp(verb, "install") == 0) {
        Warden__V1__InstallRequest req = WARDEN__V1__INSTALL_REQUEST__INIT;
        req.reinstall = true;
        st = server_request(id, "install", &req.base, &warden__v1__ack__descriptor, &reply);
        want1 = want2 = WARDEN__V1__SERVER_STATE__SERVER_STATE_OFFLINE;
    } else if (strcmp(verb, "delete") == 0) {
        Warden__V1__DeleteRequest req = WARDEN__V1__DELETE_REQUEST__INIT;
        req.force = force;
        st = server_request(id, "delete", &req.base, &warden__v1__ack__descriptor, &reply);
        wait = false;
    } else {
        Warden__V1__PowerRequest req = WARDEN__V1__POWER_REQUEST__INIT;
        if (strcmp(verb, "start") == 0 || strcmp(verb, "restart") == 0) {
            req.action = verb[0] == 's' ? WARDEN__V1__POWER_REQUEST__ACTION__START
                                        : WARDEN__V1__POWER_REQUEST__ACTION__RESTART;
            want1 = want2 = WARDEN__V1__SERVER_STATE__SERVER_STATE_RUNNING;
        } else if (strcmp(verb, "stop") == 0) {
            req.action = WARDEN__V1__POWER_REQUEST__ACTION__STOP;
            want1 = want2 = WARDEN__V1__SERVER_STATE__SERVER_STATE_OFFLINE;
        } else if (strcmp(verb, "kill") == 0) {
            req.action = WARDEN__V1__POWER_REQUEST__ACTION__KILL;
            want1 = want2 = WARDEN__V1__SERVER_STATE__SERVER_STATE_OFFLINE;
        } else {
            natsSubscription_Destroy(sub);
            return usage_error("unknown server command");
        }
        st = server_request(id, "power", &req.base, &warden__v1__power_reply__descriptor, &reply);
    }
    if (st == WD_OK)
        st = reply_status(reply);
    if (reply)
        protobuf_c_message_free_unpacked(reply, NULL);
    if (st == WD_OK && wait) {
        /* Already there (an install with nothing to run, a start with no
         * done pattern)? Otherwise follow the state events. */
        Warden__V1__InfoRequest ir = WARDEN__V1__INFO_REQUEST__INIT;
        ProtobufCMessage *info = NULL;
        bool done = false;
        if (server_request(id, "info", &ir.base, &warden__v1__info_reply__descriptor, &info) ==
                WD_OK &&
            reply_status(info) == WD_OK) {
            Warden__V1__ServerInfo *in = ((Warden__V1__InfoReply *)info)->info;
            done = (int)in->state == want1 || (int)in->state == want2;
        }
        if (info)
            protobuf_c_message_free_unpacked(info, NULL);
        int limit = timeout_ms > 60000 ? timeout_ms : 600000;
        if (!done)
            st = wait_state(sub, want1, want2, limit);
        if (st == WD_OK && strcmp(verb, "install") == 0) {
            /* Installing ends in offline either way: check it worked. */
            info = NULL;
            if (server_request(id, "info", &ir.base, &warden__v1__info_reply__descriptor,
                               &info) == WD_OK &&
                reply_status(info) == WD_OK) {
                Warden__V1__ServerInfo *in = ((Warden__V1__InfoReply *)info)->info;
                if (!in->installed)
                    st = WD_ERR(WD_ERR_STATE, "%s", in->last_error);
            }
            if (info)
                protobuf_c_message_free_unpacked(info, NULL);
        }
    }
    natsSubscription_Destroy(sub);
    if (st != WD_OK)
        return fail("%s %s: %s", verb, id, wd_err_msg());
    if (json)
        printf("{\"ok\":true}\n");
    else
        printf("%s: ok\n", verb);
    return 0;
}

static int cmd_send(const char *id, const char *line)
{
    Warden__V1__ConsoleInput in = WARDEN__V1__CONSOLE_INPUT__INIT;
    in.line = (char *)line;
    ProtobufCMessage *reply = NULL;
    wd_status st = server_request(id, "console.in", &in.base, &warden__v1__ack__descriptor, &reply);
    if (st == WD_OK)
        st = reply_status(reply);
    if (reply)
        protobuf_c_message_free_unpacked(reply, NULL);
    return st == WD_OK ? 0 : fail("send: %s", wd_err_msg());
}

/* ---- console ---- */

static void print_chunk(const Warden__V1__ConsoleChunk *c, uint64_t *expect)
{
    if (c->first_seq && *expect && c->first_seq > *expect && !json)
        printf("[wardenctl] %llu line(s) not shown (dropped or expired)\n",
               (unsigned long long)(c->first_seq - *expect));
    else if (c->dropped && !json)
        printf("[wardenctl] %llu line(s) dropped by the agent\n",
               (unsigned long long)c->dropped);
    for (size_t i = 0; i < c->n_lines; i++) {
        if (json) {
            char *l = c->lines[i].len ? strndup((const char *)c->lines[i].data, c->lines[i].len)
                                      : strdup("");
            printf("{\"seq\":%llu,\"source\":%d,\"line\":",
                   (unsigned long long)(c->first_seq ? c->first_seq + i : 0), c->source);
            json_str(stdout, l);
            printf("}\n");
            free(l);
        } else {
            if (c->lines[i].len)
                fwrite(c->lines[i].data, 1, c->lines[i].len, stdout);
            fputc('\n', stdout);
        }
    }
    if (c->first_seq)
        *expect = c->first_seq + c->n_lines;
    fflush(stdout);
}

static int cmd_console(const char *id, long tail, bool follow)
{
    char node[128], subj[WD_SUBJECT_MAX];
    wd_status st = locate(id, node, sizeof node);
    if (st != WD_OK)
        return fail("%s", wd_err_msg());
    wd_subj_server_event(subj, sizeof subj, id, "console");
    /* An ordered consumer on the console stream delivers the stored history
     * of this server and then follows live, with no gap in between. */
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = WD_STREAM_CONSOLE;
    so.Ordered = true;
    so.Config.DeliverPolicy = js_DeliverAll;
    natsSubscription *sub = NULL;
    natsStatus s = js_SubscribeSync(&sub, wd_bus_js(bus), subj, NULL, &so, NULL);
    if (s != NATS_OK)
        return fail("console: %s", natsStatus_GetText(s));

    /* Collect history first so --tail can cut it. */
    Warden__V1__ConsoleChunk **hist = NULL;
    size_t nh = 0, caph = 0;
    uint64_t pending = 0;
    natsSubscription_GetPending(sub, (int *)&pending, NULL);
    uint64_t expect = 0;
    for (;;) {
        natsMsg *m = NULL;
        if (natsSubscription_NextMsg(&m, sub, 300) != NATS_OK)
            break; /* history drained */
        Warden__V1__ConsoleChunk *c = (Warden__V1__ConsoleChunk *)wd_bus_decode(
            &warden__v1__console_chunk__descriptor, m);
        jsMsgMetaData *meta = NULL;
        uint64_t left = 1;
        if (natsMsg_GetMetaData(&meta, m) == NATS_OK) {
            left = meta->NumPending;
            jsMsgMetaData_Destroy(meta);
        }
        natsMsg_Destroy(m);
        if (c) {
            if (nh == caph) {
                caph = caph ? caph * 2 : 64;
                hist = realloc(hist, caph * sizeof *hist);
            }
            hist[nh++] = c;
        }
        if (left == 0)
            break;
    }
    /* Print the last `tail` lines of history. */
    size_t total = 0, skip = 0;
    for (size_t i = 0; i < nh; i++)
        total += hist[i]->n_lines;
    if (tail >= 0 && (size_t)tail < total)
        skip = total - (size_t)tail;
    for (size_t i = 0; i < nh; i++) {
        Warden__V1__ConsoleChunk *c = hist[i];
        if (skip >= c->n_lines) {
            skip -= c->n_lines;
            if (c->first_seq)
                expect = c->first_seq + c->n_lines;
        } else {
            if (skip) {
                c->lines += skip; /* view only; restored before free */
                c->n_lines -= skip;
                if (c->first_seq)
                    c->first_seq += skip;
                c->dropped = 0;
                uint64_t e2 = c->first_seq;
                print_chunk(c, &e2);
                expect = e2;
                c->lines -= skip;
                c->n_lines += skip;
                skip = 0;
            } else {
                print_chunk(c, &expect);
            }
        }
        protobuf_c_message_free_unpacked(&c->base, NULL);
    }
    free(hist);
    if (!follow) {
        natsSubscription_Destroy(sub);
        return 0;
    }
    /* Follow: stream output; lines typed on stdin are sent to the game. */
    bool stdin_open = true;
    while (!interrupted) {
        if (stdin_open) {
            struct pollfd pfd = {.fd = 0, .events = POLLIN};
            if (poll(&pfd, 1, 0) > 0) {
                char line[4200];
                if (fgets(line, sizeof line, stdin) == NULL) {
                    stdin_open = false;
                } else {
                    line[strcspn(line, "\r\n")] = '\0';
                    if (*line && cmd_send(id, line) != 0)
                        fprintf(stderr, "wardenctl: (command not sent)\n");
                }
            }
        }
        natsMsg *m = NULL;
        s = natsSubscription_NextMsg(&m, sub, 50);
        if (s == NATS_TIMEOUT)
            continue;
        if (s != NATS_OK)
            break;
        Warden__V1__ConsoleChunk *c = (Warden__V1__ConsoleChunk *)wd_bus_decode(
            &warden__v1__console_chunk__descriptor, m);
        natsMsg_Destroy(m);
        if (c) {
            print_chunk(c, &expect);
            protobuf_c_message_free_unpacked(&c->base, NULL);
        }
    }
    natsSubscription_Destroy(sub);
    return 0;
}

static int cmd_stats(const char *id, bool follow)
{
    char subj[WD_SUBJECT_MAX];
    if (wd_subj_server_event(subj, sizeof subj, id, "stats") != WD_OK)
        return fail("%s", wd_err_msg());
    char node[128];
    if (locate(id, node, sizeof node) != WD_OK)
        return fail("%s", wd_err_msg());
    natsSubscription *sub = NULL;
    natsConnection_SubscribeSync(&sub, wd_bus_nats(bus), subj);
    int rc = 0;
    do {
        natsMsg *m = NULL;
        natsStatus s = natsSubscription_NextMsg(&m, sub, 5000);
        if (s != NATS_OK) {
            rc = fail("no stats from %s within 5 s: is it running?", id);
            break;
        }
        Warden__V1__ServerStats *st =
            (Warden__V1__ServerStats *)wd_bus_decode(&warden__v1__server_stats__descriptor, m);
        natsMsg_Destroy(m);
        if (st == NULL)
            continue;
        if (json)
            printf("{\"state\":\"%s\",\"cpu_percent\":%.2f,\"memory_bytes\":%llu,"
                   "\"memory_limit_bytes\":%llu,\"disk_bytes\":%llu,\"uptime_ms\":%llu}\n",
                   state_str(st->state), st->cpu_percent, (unsigned long long)st->memory_bytes,
                   (unsigned long long)st->memory_limit_bytes, (unsigned long long)st->disk_bytes,
                   (unsigned long long)st->uptime_ms);
        else
            printf("%-9s cpu %6.2f%%  mem %8.1f MB  disk %8.1f MB  up %llus\n",
                   state_str(st->state), st->cpu_percent, (double)st->memory_bytes / 1048576.0,
                   (double)st->disk_bytes / 1048576.0, (unsigned long long)(st->uptime_ms / 1000));
        fflush(stdout);
        protobuf_c_message_free_unpacked(&st->base, NULL);
    } while (follow && !interrupted);
    natsSubscription_Destroy(sub);
    return rc;
}

static void on_sigint(int sig)
{
    interrupted = 1;
}

int main(int argc, char **argv)
{
    nats_url = getenv("WARDEN_NATS_URL");
    if (nats_url == NULL || *nats_url == '\0')
        nats_url = "nats://127.0.0.1:4222";
    nats_creds = getenv("WARDEN_NATS_CREDS");
    if (nats_creds && *nats_creds == '\0')
        nats_creds = NULL;
    int i = 1;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        if (strcmp(argv[i], "--nats") == 0 && i + 1 < argc)
            nats_url = argv[++i];
        else if (strcmp(argv[i], "--nats-creds") == 0 && i + 1 < argc)
            nats_creds = argv[++i];
        else if (strcmp(argv[i], "--api") == 0 && i + 1 < argc)
            api_url = argv[++i];
        else if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
            long v;
            if (!wd_parse_long(argv[++i], 1, 3600000, &v))
                return usage_error("--timeout needs milliseconds (1..3600000)");
            timeout_ms = (int)v;
        } else if (strcmp(argv[i], "--help") == 0) {
            fputs(usage, stdout);
            return 0;
        } else
            return usage_error("unknown option");
    }
    if (i >= argc)
        return usage_error("missing command");
    if (api_url == NULL) {
        const char *env = getenv("WARDEN_API_URL");
        api_url = env && *env ? env : NULL;
    }
    if (api_url) /* REST mode */
        return wd_rest_main(api_url, json, argc - i, argv + i);
    const char *cmd = argv[i++];
    int rest = argc - i;
    char **args = argv + i;
    /* Flags may also follow the command. */
    bool wait = false, force = false, follow = true, stats_follow = false;
    long tail = 100;
    int nargs = 0;
    for (int k = 0; k < rest; k++) {
        if (strcmp(args[k], "--json") == 0)
            json = true;
        else if (strcmp(args[k], "--wait") == 0)
            wait = true;
        else if (strcmp(args[k], "--force") == 0)
            force = true;
        else if (strcmp(args[k], "--no-follow") == 0)
            follow = false;
        else if (strcmp(args[k], "--follow") == 0)
            stats_follow = true;
        else if (strcmp(args[k], "--nats") == 0 && k + 1 < rest)
            nats_url = args[++k];
        else if (strcmp(args[k], "--nats-creds") == 0 && k + 1 < rest)
            nats_creds = args[++k];
        else if (strcmp(args[k], "--tail") == 0 && k + 1 < rest) {
            if (!wd_parse_long(args[++k], 0, 1000000, &tail))
                return usage_error("--tail needs a line count");
        } else
            args[nargs++] = args[k];
    }
    signal(SIGINT, on_sigint);
    signal(SIGTERM, on_sigint);
    signal(SIGPIPE, SIG_IGN);

    int rc;
    if (strcmp(cmd, "server") == 0 && nargs >= 1 && strcmp(args[0], "create") == 0) {
        /* create parses its own flags (they were left in args by value). */
        if (connect_bus() != WD_OK)
            return fail("%s", wd_err_msg());
        rc = cmd_create(nargs - 1, args + 1);
    } else {
        bool known = strcmp(cmd, "nodes") == 0 || strcmp(cmd, "servers") == 0 ||
                     strcmp(cmd, "server") == 0 || strcmp(cmd, "send") == 0 ||
                     strcmp(cmd, "console") == 0 || strcmp(cmd, "stats") == 0;
        if (!known)
            return usage_error("unknown command");
        if (strcmp(cmd, "server") == 0 && nargs != 2)
            return usage_error("server commands take a verb and a server id");
        if (strcmp(cmd, "send") == 0 && nargs != 2)
            return usage_error("send takes a server id and one command line");
        if ((strcmp(cmd, "console") == 0 || strcmp(cmd, "stats") == 0) && nargs != 1)
            return usage_error("takes exactly one server id");
        if (connect_bus() != WD_OK)
            return fail("%s", wd_err_msg());
        if (strcmp(cmd, "nodes") == 0)
            rc = cmd_nodes();
        else if (strcmp(cmd, "servers") == 0)
            rc = cmd_servers();
        else if (strcmp(cmd, "send") == 0)
            rc = cmd_send(args[0], args[1]);
        else if (strcmp(cmd, "console") == 0)
            rc = cmd_console(args[0], tail, follow);
        else if (strcmp(cmd, "stats") == 0)
            rc = cmd_stats(args[0], stats_follow);
        else if (strcmp(args[0], "state") == 0)
            rc = cmd_state(args[1]);
        else
            rc = cmd_server_action(args[0], args[1], wait, force);
    }
    wd_bus_destroy(&bus);
    nats_Close();
    return rc;
}
