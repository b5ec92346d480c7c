/* wardenctl: drive Warden from a shell, over the bus (or, with --api, through
 * warden-api; see rest.h).
 *
 *   wardenctl [--nats URL] [--nats-creds FILE] [--json] [--timeout MS] COMMAND ...
 *
 * Every command exits 0 on success; on any error it prints one clear line
 * to stderr and exits non-zero (1 for errors from Warden, 2 for usage).
 * Server commands need only the server id: the node is looked up in the
 * warden_servers KV bucket the agents maintain.
 *
 * This file holds main() and the single-server commands; fleet.c the
 * fleet-wide ones (nodes, servers, bulk power/backup, broadcast), tail.c
 * `bus tail`, completion.c the shell completion scripts. docs/wardenctl.md
 * describes every command. */
#include <errno.h>
#include <stdarg.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bulk.h"
#include "bus.h"
#include "completion.h"
#include "ctl.h"
#include "fleet.h"
#include "js.h"
#include "rest.h"
#include "status.h"
#include "subject.h"
#include "tail.h"
#include "template.h"
#include "util.h"
#include "warden/v1/console.pb-c.h"
#include "warden/v1/node.pb-c.h"
#include "warden/v1/server.pb-c.h"

static const char *nats_url;
static const char *nats_creds; /* NATS .creds (ops.creds from `warden-api nats init`) */
static const char *nats_tls_ca, *nats_tls_cert, *nats_tls_key;
static const char *api_url;

static const char usage[] =
    "usage: wardenctl [OPTIONS] COMMAND ...\n"
    "\n"
    "options (also accepted after the command):\n"
    "  --nats URL            NATS servers (WARDEN_NATS_URL; default nats://127.0.0.1:4222)\n"
    "  --nats-creds FILE     NATS credentials (WARDEN_NATS_CREDS): ops.creds from\n"
    "                        `warden-api nats init` (`make run`: var/nats-auth/ops.creds)\n"
    "  --nats-tls-ca FILE    CA certificate(s) of the NATS servers (WARDEN_NATS_TLS_CA)\n"
    "  --nats-tls-cert FILE  client certificate for NATS TLS (WARDEN_NATS_TLS_CERT)\n"
    "  --nats-tls-key FILE   its private key (WARDEN_NATS_TLS_KEY)\n"
    "  --api URL             REST mode against warden-api (WARDEN_API_URL)\n"
    "  --json                machine-readable output\n"
    "  --timeout MS          per-request timeout (default 5000)\n"
    "\n"
    "fleet:\n"
    "  nodes [--ids]                           nodes: online/offline, heartbeat age, CPU,\n"
    "                                          memory, disk, running/total servers\n"
    "  servers [--ids] [--no-stats]            servers: state, node, template, uptime,\n"
    "                                          CPU%, memory (--ids: ids only)\n"
    "  power start|stop|restart|kill (--filter EXPR | --all) [--parallel N] [--wait]\n"
    "                                          power action on every selected server\n"
    "                                          (--wait: until each has settled)\n"
    "  backup (--filter EXPR | --all) [--ignore GLOB]... [--parallel N]\n"
    "                                          back up every selected server\n"
    "  broadcast MESSAGE [--filter EXPR] [--format 'say {message}'] [--parallel N]\n"
    "                                          write MESSAGE to every running server's\n"
    "                                          console, in its game's broadcast command\n"
    "  bus tail SUBJECT [--count N]            decoded bus messages, one per line\n"
    "  completion bash|zsh                     print a shell completion script\n"
    "\n"
    "  EXPR: KEY=VALUE[,KEY=VALUE...], all must match; keys node, state, template,\n"
    "  name, id (globs allowed), e.g. --filter state=running,name='eu-*'\n"
    "\n"
    "one server:\n"
    "  server create --node NODE --template FILE [--name NAME] [--var K=V]...\n"
    "                                          create a server; prints its id\n"
    "  server install ID [--wait]              run the template's install script\n"
    "  server start|stop|restart ID [--wait]   power actions (--wait: until settled)\n"
    "  server kill ID                          kill the whole process tree now\n"
    "  server delete ID [--force]              delete (force: kill it first)\n"
    "  server state ID                         state, pid, uptime, last error\n"
    "  power ID start|stop|restart|kill [--wait]  the same as server ACTION ID\n"
    "  send ID COMMAND                         type one line into the game's console\n"
    "  console ID [--tail N] [--no-follow]     history, then live output; stdin lines are sent\n"
    "  stats ID [--follow]                     CPU, memory, disk, uptime\n"
    "\n"
    "REST mode (--api URL or WARDEN_API_URL), against warden-api, with your\n"
    "permissions:\n"
    "  login --username NAME [--totp CODE]     password on stdin; keeps a session file\n"
    "  servers [--ids]                         servers you can see\n"
    "  power SERVER_ID start|stop|restart|kill\n"
    "  power start|stop|restart|kill (--filter EXPR | --all)\n"
    "  send SERVER_ID COMMAND\n"
    "  broadcast MESSAGE [--filter EXPR] [--format FMT]\n"
    "                                          only servers where you hold control.console\n"
    "\n"
    "docs/wardenctl.md has every command with an example.\n";

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
    cfg.tls_ca = nats_tls_ca;
    cfg.tls_cert = nats_tls_cert;
    cfg.tls_key = nats_tls_key;
    cfg.name = "wardenctl";
    cfg.connect_timeout_ms = wd_ctl_timeout_ms < 2000 ? wd_ctl_timeout_ms : 2000;
    return wd_bus_connect(&wd_ctl_bus, &cfg);
}

static wd_status server_request(const char *id, const char *op, const ProtobufCMessage *req,
                                const ProtobufCMessageDescriptor *desc, ProtobufCMessage **reply)
{
    return wd_ctl_request(id, NULL, op, req, desc, 0, reply);
}

/* ---- nodes / servers ---- */

static void print_info(const Warden__V1__ServerInfo *in)
{
    if (wd_ctl_json) {
        printf("{\"id\":");
        wd_ctl_json_str(stdout, in->id);
        printf(",\"name\":");
        wd_ctl_json_str(stdout, in->name);
        printf(",\"node\":");
        wd_ctl_json_str(stdout, in->node_id);
        printf(",\"state\":\"%s\",\"installed\":%s,\"pid\":%u,\"uptime_ms\":%llu,"
               "\"restarts\":%u,\"template\":",
               wd_ctl_state_str(in->state), in->installed ? "true" : "false", in->pid,
               (unsigned long long)in->uptime_ms, in->restarts);
        wd_ctl_json_str(stdout, in->template_id);
        printf(",\"last_error\":");
        wd_ctl_json_str(stdout, in->last_error);
        printf(",\"console_seq\":%llu,\"console_dropped\":%llu,\"isolated\":%s}\n",
               (unsigned long long)in->console_seq, (unsigned long long)in->console_dropped,
               in->isolated ? "true" : "false");
        return;
    }
    printf("server    %s (%s)\n", in->id, in->name && *in->name ? in->name : "unnamed");
    printf("node      %s\n", in->node_id);
    printf("template  %s\n", in->template_id);
    printf("state     %s%s\n", wd_ctl_state_str(in->state),
           in->installed ? "" : " (not installed)");
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
    wd_status st =
        server_request(id, "info", &req.base, &warden__v1__info_reply__descriptor, &reply);
    if (st == WD_OK && (st = wd_ctl_reply_status(reply)) == WD_OK)
        print_info(((Warden__V1__InfoReply *)reply)->info);
    if (reply)
        protobuf_c_message_free_unpacked(reply, NULL);
    return st == WD_OK ? 0 : wd_ctl_fail("%s", wd_err_msg());
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
        return wd_ctl_fail("'%s' is not a valid node id", node);
    char *text = NULL;
    size_t len = 0;
    if (wd_read_file(file, WD_TEMPLATE_MAX_JSON, &text, &len) != WD_OK)
        return wd_ctl_fail("template %s: %s", file, wd_err_msg());
    Warden__V1__Template *t = NULL;
    wd_status st = wd_template_parse_json(text, len, &t);
    free(text);
    if (st != WD_OK)
        return wd_ctl_fail("template %s: %s", file, wd_err_msg());
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
    st = wd_bus_request(wd_ctl_bus, subj, &req.base, &warden__v1__sync_reply__descriptor,
                        wd_ctl_timeout_ms, &h, &reply);
    wd_template_free(&t);
    if (st == WD_ERR_NO_RESPONDERS)
        return wd_ctl_fail("node %s does not answer: check the id with 'wardenctl nodes'", node);
    if (st == WD_OK)
        st = wd_ctl_reply_status(reply);
    if (reply)
        protobuf_c_message_free_unpacked(reply, NULL);
    if (st != WD_OK)
        return wd_ctl_fail("create failed: %s", wd_err_msg());
    if (wd_ctl_json)
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
    while (!wd_ctl_interrupted) {
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
        if (!wd_ctl_json)
            fprintf(stderr, "state: %s (%s)\n", wd_ctl_state_str(state), reason);
        if (state == want1 || state == want2)
            return WD_OK;
        if (state == WARDEN__V1__SERVER_STATE__SERVER_STATE_CRASHED ||
            (state == WARDEN__V1__SERVER_STATE__SERVER_STATE_OFFLINE &&
             want1 != WARDEN__V1__SERVER_STATE__SERVER_STATE_OFFLINE))
            return WD_ERR(WD_ERR_STATE, "server went %s: %s", wd_ctl_state_str(state), reason);
    }
    return WD_ERR(WD_ERR_CLOSED, "wd_ctl_interrupted");
}

/* wait_ms: how long --wait follows the state (> 0). */
static int cmd_server_action(const char *verb, const char *id, bool wait, int wait_ms, bool force)
{
    natsSubscription *sub = NULL;
    char subj[WD_SUBJECT_MAX];
    if (wait) {
        if (wd_subj_server_event(subj, sizeof subj, id, "state") != WD_OK)
            return wd_ctl_fail("%s", wd_err_msg());
        natsConnection_SubscribeSync(&sub, wd_bus_nats(wd_ctl_bus), subj);
        natsConnection_Flush(wd_bus_nats(wd_ctl_bus));
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
        st = wd_ctl_reply_status(reply);
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
            wd_ctl_reply_status(info) == WD_OK) {
            Warden__V1__ServerInfo *in = ((Warden__V1__InfoReply *)info)->info;
            done = (int)in->state == want1 || (int)in->state == want2;
        }
        if (info)
            protobuf_c_message_free_unpacked(info, NULL);
        if (!done)
            st = wait_state(sub, want1, want2, wait_ms);
        if (st == WD_OK && strcmp(verb, "install") == 0) {
            /* Installing ends in offline either way: check it worked. */
            info = NULL;
            if (server_request(id, "info", &ir.base, &warden__v1__info_reply__descriptor, &info) ==
                    WD_OK &&
                wd_ctl_reply_status(info) == WD_OK) {
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
        return wd_ctl_fail("%s %s: %s", verb, id, wd_err_msg());
    if (wd_ctl_json)
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
        st = wd_ctl_reply_status(reply);
    if (reply)
        protobuf_c_message_free_unpacked(reply, NULL);
    return st == WD_OK ? 0 : wd_ctl_fail("send: %s", wd_err_msg());
}

/* ---- console ---- */

static void print_chunk(const Warden__V1__ConsoleChunk *c, uint64_t *expect)
{
    if (c->first_seq && *expect && c->first_seq > *expect && !wd_ctl_json)
        printf("[wardenctl] %llu line(s) not shown (dropped or expired)\n",
               (unsigned long long)(c->first_seq - *expect));
    else if (c->dropped && !wd_ctl_json)
        printf("[wardenctl] %llu line(s) dropped by the agent\n", (unsigned long long)c->dropped);
    for (size_t i = 0; i < c->n_lines; i++) {
        if (wd_ctl_json) {
            char *l = c->lines[i].len ? strndup((const char *)c->lines[i].data, c->lines[i].len)
                                      : strdup("");
            printf("{\"seq\":%llu,\"source\":%d,\"line\":",
                   (unsigned long long)(c->first_seq ? c->first_seq + i : 0), c->source);
            wd_ctl_json_str(stdout, l);
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
    wd_status st = wd_ctl_locate(id, node, sizeof node);
    if (st != WD_OK)
        return wd_ctl_fail("%s", wd_err_msg());
    wd_subj_server_event(subj, sizeof subj, id, "console");
    /* An ordered consumer on the console stream delivers the stored history
     * of this server and then follows live, with no gap in between. */
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = WD_STREAM_CONSOLE;
    so.Ordered = true;
    so.Config.DeliverPolicy = js_DeliverAll;
    natsSubscription *sub = NULL;
    natsStatus s = js_SubscribeSync(&sub, wd_bus_js(wd_ctl_bus), subj, NULL, &so, NULL);
    if (s != NATS_OK)
        return wd_ctl_fail("console: %s", natsStatus_GetText(s));

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
        Warden__V1__ConsoleChunk *c =
            (Warden__V1__ConsoleChunk *)wd_bus_decode(&warden__v1__console_chunk__descriptor, m);
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
    while (!wd_ctl_interrupted) {
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
        Warden__V1__ConsoleChunk *c =
            (Warden__V1__ConsoleChunk *)wd_bus_decode(&warden__v1__console_chunk__descriptor, m);
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
        return wd_ctl_fail("%s", wd_err_msg());
    char node[128];
    if (wd_ctl_locate(id, node, sizeof node) != WD_OK)
        return wd_ctl_fail("%s", wd_err_msg());
    natsSubscription *sub = NULL;
    natsConnection_SubscribeSync(&sub, wd_bus_nats(wd_ctl_bus), subj);
    int rc = 0;
    do {
        natsMsg *m = NULL;
        natsStatus s = natsSubscription_NextMsg(&m, sub, 5000);
        if (s != NATS_OK) {
            rc = wd_ctl_fail("no stats from %s within 5 s: is it running?", id);
            break;
        }
        Warden__V1__ServerStats *st =
            (Warden__V1__ServerStats *)wd_bus_decode(&warden__v1__server_stats__descriptor, m);
        natsMsg_Destroy(m);
        if (st == NULL)
            continue;
        if (wd_ctl_json)
            printf("{\"state\":\"%s\",\"cpu_percent\":%.2f,\"memory_bytes\":%llu,"
                   "\"memory_limit_bytes\":%llu,\"disk_bytes\":%llu,\"uptime_ms\":%llu}\n",
                   wd_ctl_state_str(st->state), st->cpu_percent,
                   (unsigned long long)st->memory_bytes, (unsigned long long)st->memory_limit_bytes,
                   (unsigned long long)st->disk_bytes, (unsigned long long)st->uptime_ms);
        else
            printf("%-9s cpu %6.2f%%  mem %8.1f MB  disk %8.1f MB  up %llus\n",
                   wd_ctl_state_str(st->state), st->cpu_percent,
                   (double)st->memory_bytes / 1048576.0, (double)st->disk_bytes / 1048576.0,
                   (unsigned long long)(st->uptime_ms / 1000));
        fflush(stdout);
        protobuf_c_message_free_unpacked(&st->base, NULL);
    } while (follow && !wd_ctl_interrupted);
    natsSubscription_Destroy(sub);
    return rc;
}

static void on_sigint(int sig)
{
    (void)sig;
    atomic_store(&wd_ctl_interrupted, 1); /* lock-free: async-signal-safe */
}

static const char *env_or_null(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* A connection option (before or after the command). Returns 1 if argv[*i]
 * was one (and consumed its value), 0 if not, -1 (usage printed) if bad. */
static int global_option(int argc, char **argv, int *i, int *rc)
{
    const char *a = argv[*i];
    bool has_value = *i + 1 < argc;
    const char **target = NULL;
    if (strcmp(a, "--nats") == 0)
        target = &nats_url;
    else if (strcmp(a, "--nats-creds") == 0)
        target = &nats_creds;
    else if (strcmp(a, "--nats-tls-ca") == 0)
        target = &nats_tls_ca;
    else if (strcmp(a, "--nats-tls-cert") == 0)
        target = &nats_tls_cert;
    else if (strcmp(a, "--nats-tls-key") == 0)
        target = &nats_tls_key;
    else if (strcmp(a, "--api") == 0)
        target = &api_url;
    if (target) {
        if (!has_value) {
            *rc = usage_error("an option needs a value");
            return -1;
        }
        *target = argv[++*i];
        return 1;
    }
    if (strcmp(a, "--json") == 0) {
        wd_ctl_json = true;
        return 1;
    }
    if (strcmp(a, "--timeout") == 0) {
        long v;
        if (!has_value || !wd_parse_long(argv[++*i], 1, 3600000, &v)) {
            *rc = usage_error("--timeout needs milliseconds (1..3600000)");
            return -1;
        }
        wd_ctl_timeout_ms = (int)v;
        return 1;
    }
    return 0;
}

static bool is_power_action(const char *s)
{
    return strcmp(s, "start") == 0 || strcmp(s, "stop") == 0 || strcmp(s, "restart") == 0 ||
           strcmp(s, "kill") == 0;
}

int main(int argc, char **argv)
{
    nats_url = env_or_null("WARDEN_NATS_URL");
    if (nats_url == NULL)
        nats_url = "nats://127.0.0.1:4222";
    nats_creds = env_or_null("WARDEN_NATS_CREDS");
    nats_tls_ca = env_or_null("WARDEN_NATS_TLS_CA");
    nats_tls_cert = env_or_null("WARDEN_NATS_TLS_CERT");
    nats_tls_key = env_or_null("WARDEN_NATS_TLS_KEY");
    int i = 1, rc = 0;
    bool timeout_set = false;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        if (strcmp(argv[i], "--help") == 0) {
            fputs(usage, stdout);
            return 0;
        }
        timeout_set |= strcmp(argv[i], "--timeout") == 0;
        int g = global_option(argc, argv, &i, &rc);
        if (g < 0)
            return rc;
        if (g == 0)
            return usage_error("unknown option");
    }
    if (i >= argc)
        return usage_error("missing command");
    /* --api anywhere selects REST mode. */
    for (int k = i; k + 1 < argc; k++) {
        if (strcmp(argv[k], "--api") == 0) {
            api_url = argv[k + 1];
            memmove(&argv[k], &argv[k + 2], (size_t)(argc - k - 2) * sizeof *argv);
            argc -= 2;
            break;
        }
    }
    if (api_url == NULL)
        api_url = env_or_null("WARDEN_API_URL");
    if (api_url) /* REST mode */
        return wd_rest_main(api_url, wd_ctl_json, argc - i, argv + i);
    const char *cmd = argv[i++];
    int rest = argc - i;
    char **args = argv + i;
    /* Flags may also follow the command. */
    bool wait = false, force = false, follow = true, stats_follow = false, ids = false,
         no_stats = false;
    long tail = 100, count = 0;
    wd_fleet_select sel = {.parallel = 4};
    const char *fmt = NULL;
    const char *ignore[64];
    size_t n_ignore = 0;
    int nargs = 0;
    for (int k = 0; k < rest; k++) {
        const char *a = args[k];
        bool val = k + 1 < rest;
        timeout_set |= strcmp(a, "--timeout") == 0;
        int g = global_option(rest, args, &k, &rc);
        if (g < 0)
            return rc;
        if (g > 0)
            continue;
        if (strcmp(a, "--wait") == 0)
            wait = true;
        else if (strcmp(a, "--force") == 0)
            force = true;
        else if (strcmp(a, "--no-follow") == 0)
            follow = false;
        else if (strcmp(a, "--follow") == 0)
            stats_follow = true;
        else if (strcmp(a, "--ids") == 0)
            ids = true;
        else if (strcmp(a, "--no-stats") == 0)
            no_stats = true;
        else if (strcmp(a, "--all") == 0)
            sel.all = true;
        else if (strcmp(a, "--filter") == 0 && val)
            sel.filter = args[++k];
        else if (strcmp(a, "--format") == 0 && val)
            fmt = args[++k];
        else if (strcmp(a, "--ignore") == 0 && val) {
            if (n_ignore == 64)
                return usage_error("too many --ignore (at most 64)");
            ignore[n_ignore++] = args[++k];
        } else if (strcmp(a, "--parallel") == 0 && val) {
            long v;
            if (!wd_parse_long(args[++k], 1, 64, &v))
                return usage_error("--parallel needs a number from 1 to 64");
            sel.parallel = (int)v;
        } else if (strcmp(a, "--count") == 0 && val) {
            if (!wd_parse_long(args[++k], 1, 1000000000, &count))
                return usage_error("--count needs a positive number");
        } else if (strcmp(a, "--tail") == 0 && val) {
            if (!wd_parse_long(args[++k], 0, 1000000, &tail))
                return usage_error("--tail needs a line count");
        } else
            args[nargs++] = args[k];
    }
    signal(SIGINT, on_sigint);
    signal(SIGTERM, on_sigint);
    signal(SIGPIPE, SIG_IGN);

    if (strcmp(cmd, "completion") == 0) {
        if (nargs != 1)
            return usage_error("completion takes bash or zsh");
        return wd_completion_print(args[0]);
    }
    if (strcmp(cmd, "server") == 0 && nargs >= 1 && strcmp(args[0], "create") == 0) {
        /* create parses its own flags (they were left in args by value). */
        if (connect_bus() != WD_OK)
            return wd_ctl_fail("%s", wd_err_msg());
        rc = cmd_create(nargs - 1, args + 1);
        goto out;
    }
    static const char *const known[] = {"nodes", "servers", "server",    "send", "console", "stats",
                                        "power", "backup",  "broadcast", "bus",  NULL};
    bool is_known = false;
    for (int k = 0; known[k]; k++)
        is_known |= strcmp(cmd, known[k]) == 0;
    if (!is_known)
        return usage_error("unknown command");
    if (strcmp(cmd, "server") == 0 && nargs != 2)
        return usage_error("server commands take a verb and a server id");
    if (strcmp(cmd, "send") == 0 && nargs != 2)
        return usage_error("send takes a server id and one command line");
    if ((strcmp(cmd, "console") == 0 || strcmp(cmd, "stats") == 0) && nargs != 1)
        return usage_error("takes exactly one server id");
    if (strcmp(cmd, "power") == 0 && !(nargs == 1 || nargs == 2))
        return usage_error("power takes an action and --filter EXPR or --all (or a server id "
                           "and an action)");
    if (strcmp(cmd, "power") == 0 && nargs == 1 && !is_power_action(args[0]))
        return usage_error("power takes start, stop, restart or kill");
    if (strcmp(cmd, "backup") == 0 && nargs != 0)
        return usage_error("backup selects servers with --filter EXPR or --all");
    if (strcmp(cmd, "broadcast") == 0 && nargs != 1)
        return usage_error("broadcast takes one message (quote it)");
    if (strcmp(cmd, "bus") == 0 && (nargs != 2 || strcmp(args[0], "tail") != 0))
        return usage_error("bus tail takes one subject, e.g. 'warden.server.*.state'");
    if (connect_bus() != WD_OK)
        return wd_ctl_fail("%s", wd_err_msg());
    /* --wait and backup are bounded by --timeout when it is given, else
     * by the long default (not by the 5 s request timeout). */
    int long_ms = timeout_set ? wd_ctl_timeout_ms : WD_FLEET_WAIT_MS;
    if (strcmp(cmd, "nodes") == 0)
        rc = wd_fleet_nodes(ids);
    else if (strcmp(cmd, "servers") == 0)
        rc = wd_fleet_servers(ids, !no_stats);
    else if (strcmp(cmd, "send") == 0)
        rc = cmd_send(args[0], args[1]);
    else if (strcmp(cmd, "console") == 0)
        rc = cmd_console(args[0], tail, follow);
    else if (strcmp(cmd, "stats") == 0)
        rc = cmd_stats(args[0], stats_follow);
    else if (strcmp(cmd, "bus") == 0)
        rc = wd_tail_run(args[1], count);
    else if (strcmp(cmd, "broadcast") == 0)
        rc = wd_fleet_broadcast(args[0], fmt, &sel);
    else if (strcmp(cmd, "backup") == 0)
        rc = wd_fleet_backup(&sel, ignore, n_ignore, long_ms);
    else if (strcmp(cmd, "power") == 0 && nargs == 1) {
        sel.wait = wait;
        sel.wait_ms = long_ms;
        rc = wd_fleet_power(args[0], &sel);
    } else if (strcmp(cmd, "power") == 0) {
        /* One server: `power ID ACTION` (as in REST mode) or `power ACTION ID`. */
        bool first = is_power_action(args[0]);
        const char *action = first ? args[0] : args[1], *id = first ? args[1] : args[0];
        rc = is_power_action(action) ? cmd_server_action(action, id, wait, long_ms, false)
                                     : usage_error("power takes start, stop, restart or kill");
    } else if (strcmp(args[0], "state") == 0)
        rc = cmd_state(args[1]);
    else
        rc = cmd_server_action(args[0], args[1], wait, long_ms, force);
out:
    wd_bus_destroy(&wd_ctl_bus);
    nats_Close();
    return rc;
}
