/* warden-api with a real PostgreSQL, nats-server and warden-agent: a node
 * is created over REST, the agent joins with the one-time token, shows up
 * online from its heartbeats, goes offline within 15 s of silence, comes
 * back at its next beat; a used token is refused.
 *
 * NATS runs in operator mode with the chain `warden-api nats init` writes,
 * as `make run` does: the agent joins through the token's throw-away NATS
 * user, receives its own credentials, and nats-server holds it to its own
 * subjects. */
#include <jansson.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "api_fixture.h"
#include "util.h"
#include <libpq-fe.h>
#include "bus.h"
#include "subject.h"
#include "ws_fixture.h"
#include "warden/v1/node.pb-c.h"
#include "warden/v1/console.pb-c.h"

static wd_api_fx fx;
#define api (fx.api)
#define port (fx.port)
#define pg (fx.pg)
#define nats (fx.nats)
static char *admin;

static int call(const char *method, const char *path, const char *body, json_t **out)
{
    return wd_api_fx_call(&fx, method, path, admin, body, out, NULL);
}

static int suite_init(void)
{
    fx.nats_auth = true;
    if (!wd_api_fx_start(&fx, "api-fleet", true) ||
        wd_api_create_user(api, "root", "root@example.com", "admin", "root password 1", NULL, 0,
                           NULL) != WD_OK)
        return 1;
    json_t *j = NULL;
    if (call("POST", "/api/v1/auth/login", "{\"username\":\"root\",\"password\":\"root password 1\"}",
             &j) != 200)
        return 1;
    admin = strdup(json_string_value(json_object_get(j, "access_token")));
    json_decref(j);
    return 0;
}

static int suite_clean(void)
{
    wd_api_fx_stop(&fx);
    free(admin);
    return 0;
}

static pid_t start_agent(const char *data_dir, const char *token, const char *log)
{
    char d[600], n[120], j[2048];
    snprintf(d, sizeof d, "--data-dir=%s", data_dir);
    snprintf(n, sizeof n, "--nats-url=%s", nats.url);
    snprintf(j, sizeof j, "--join=%s", token ? token : "");
    const char *argv[] = {wd_h_bin("agent/warden-agent"), d, n, "--heartbeat=1",
                          token ? j : NULL, NULL};
    return wd_h_spawn(argv, NULL, log);
}

static bool node_online(const char *id, bool want, int timeout_ms)
{
    char path[128];
    snprintf(path, sizeof path, "/api/v1/nodes/%s", id);
    for (int t = 0; t <= timeout_ms; t += 200) {
        json_t *j = NULL;
        if (call("GET", path, NULL, &j) == 200 &&
            json_is_true(json_object_get(j, "online")) == want) {
            json_decref(j);
            return true;
        }
        json_decref(j);
        usleep(200000);
    }
    return false;
}

/* nats.c reports a refused subscription or publish asynchronously. */
static atomic_int denied;
static void on_async_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *ud)
{
    if (err == NATS_NOT_PERMITTED)
        atomic_fetch_add(&denied, 1);
}

/* With the node's own credentials: its subjects work, another node's do
 * not, it cannot send commands to agents, and a hello for another node
 * (whose server specs hold secrets) is refused. Without credentials the
 * bus does not let anyone in. */
static void check_node_confined(const char *data, const char *id)
{
    char creds[700], inbox[WD_SUBJ_INBOX_SIZE], own[128];
    snprintf(creds, sizeof creds, "%s/nats.creds", data);
    CU_ASSERT_EQUAL_FATAL(wd_subj_inbox_prefix(inbox, id), WD_OK);
    snprintf(own, sizeof own, "warden.agent.%s.probe-test", id);

    natsConnection *anon = NULL;
    CU_ASSERT_NOT_EQUAL(natsConnection_ConnectTo(&anon, nats.url), NATS_OK);
    natsConnection_Destroy(anon);

    natsOptions *o = NULL;
    natsConnection *nc = NULL;
    natsOptions_Create(&o);
    natsOptions_SetURL(o, nats.url);
    natsOptions_SetUserCredentialsFromFiles(o, creds, NULL);
    natsOptions_SetCustomInboxPrefix(o, inbox);
    natsOptions_SetErrorHandler(o, on_async_error, NULL);
    CU_ASSERT_EQUAL_FATAL(natsConnection_Connect(&nc, o), NATS_OK);
    natsOptions_Destroy(o);

    natsSubscription *mine = NULL, *theirs = NULL;
    CU_ASSERT_EQUAL(natsConnection_SubscribeSync(&mine, nc, own), NATS_OK);
    CU_ASSERT_EQUAL(natsConnection_Flush(nc), NATS_OK);
    CU_ASSERT_EQUAL(atomic_load(&denied), 0);
    CU_ASSERT_EQUAL(natsConnection_SubscribeSync(&theirs, nc, "warden.agent.someone-else.>"),
                    NATS_OK);
    natsConnection_Flush(nc);
    CU_ASSERT(WD_H_WAIT(atomic_load(&denied) >= 1, 3000));
    int before = atomic_load(&denied);
    natsConnection_PublishString(nc, "warden.agent.someone-else.server.x.power", "forged");
    natsConnection_Flush(nc);
    CU_ASSERT(WD_H_WAIT(atomic_load(&denied) > before, 3000));
    natsSubscription_Destroy(mine);
    natsSubscription_Destroy(theirs);
    natsConnection_Destroy(nc);

    /* hello: for itself answered, for another node refused. */
    wd_bus_cfg bc = wd_bus_cfg_defaults();
    bc.servers = nats.url;
    bc.creds_file = creds;
    bc.inbox_prefix = inbox;
    wd_bus *bus = NULL;
    CU_ASSERT_EQUAL_FATAL(wd_bus_connect(&bus, &bc), WD_OK);
    Warden__V1__DiscoveryHello h = WARDEN__V1__DISCOVERY_HELLO__INIT;
    char other[WD_UUID_LEN + 1];
    wd_uuid_new(other);
    const char *ids[] = {id, other};
    for (int i = 0; i < 2; i++) {
        h.node_id = (char *)ids[i];
        ProtobufCMessage *rep = NULL;
        wd_status st = wd_bus_request(bus, WD_SUBJ_HELLO, &h.base,
                                      &warden__v1__discovery_hello_reply__descriptor, 5000, NULL,
                                      &rep);
        CU_ASSERT_EQUAL(st, WD_OK);
        if (rep) {
            st = wd_status_check(((Warden__V1__DiscoveryHelloReply *)rep)->status);
            CU_ASSERT_EQUAL(st, i == 0 ? WD_OK : WD_ERR_DENIED);
            protobuf_c_message_free_unpacked(rep, NULL);
        }
    }
    wd_bus_destroy(&bus);
}

static void test_join_and_liveness(void)
{
    json_t *j = NULL;
    CU_ASSERT_EQUAL_FATAL(call("POST", "/api/v1/nodes",
                               "{\"name\":\"node-a\",\"fqdn\":\"a.example.com\","
                               "\"memory_mb\":16384,\"disk_mb\":200000}",
                               &j),
                          201);
    char *id = strdup(json_string_value(json_object_get(json_object_get(j, "node"), "id")));
    char *token = strdup(json_string_value(json_object_get(j, "join_token")));
    CU_ASSERT_FALSE(json_is_true(json_object_get(json_object_get(j, "node"), "online")));
    json_decref(j);

    const char *dir = wd_h_tmpdir("agent");
    char data[600], log[600];
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(log, sizeof log, "%s/agent.log", dir);
    pid_t agent = start_agent(data, token, log);
    CU_ASSERT(node_online(id, true, 10000));
    /* The agent now knows who it is. */
    char path[700], *saved = NULL;
    snprintf(path, sizeof path, "%s/node-id", data);
    CU_ASSERT_EQUAL(wd_read_file(path, 256, &saved, NULL), WD_OK);
    CU_ASSERT(saved && strncmp(saved, id, 36) == 0);
    free(saved);
    saved = NULL;
    snprintf(path, sizeof path, "%s/node-name", data); /* kept across restarts */
    CU_ASSERT_EQUAL(wd_read_file(path, 256, &saved, NULL), WD_OK);
    CU_ASSERT(saved && strcmp(saved, "node-a\n") == 0);
    free(saved);

    /* The join is in the audit log (with the host it came from). */
    json_t *aj = NULL;
    CU_ASSERT_EQUAL(call("GET", "/api/v1/audit?action=node.join", NULL, &aj), 200);
    CU_ASSERT(json_array_size(json_object_get(aj, "data")) >= 1);
    json_decref(aj);

    /* Its own NATS user, private to it; the token's join user is gone. */
    struct stat sb;
    snprintf(path, sizeof path, "%s/nats.creds", data);
    CU_ASSERT(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600);
    snprintf(path, sizeof path, "%s/join.creds", data);
    CU_ASSERT(access(path, F_OK) != 0);
    CU_ASSERT_PTR_NOT_NULL(strchr(token, '.')); /* secret.seed.jwt */
    check_node_confined(data, id);

    /* The token worked once. */
    char data2[600], log2[600];
    snprintf(data2, sizeof data2, "%s/data2", dir);
    snprintf(log2, sizeof log2, "%s/agent2.log", dir);
    pid_t second = start_agent(data2, token, log2);
    int status = wd_h_wait_exit(second, 15000);
    CU_ASSERT(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) != 0);
    if (status == -1)
        wd_h_stop(second, SIGKILL, 1000);

    /* Silence: offline within 15 s (plus the 1 s sweep); back at the next beat. */
    int64_t t0 = wd_mono_ms();
    wd_h_stop(agent, SIGTERM, 5000);
    CU_ASSERT(node_online(id, false, 20000));
    CU_ASSERT(wd_mono_ms() - t0 <= 18500); /* 15 s + a heartbeat + the 1 s sweep + slack */
    agent = start_agent(data, NULL, log);
    bool back = node_online(id, true, 20000); /* generous: sanitizers on a busy host */
    CU_ASSERT(back);
    if (!back) {
        char cmd[700];
        snprintf(cmd, sizeof cmd, "tail -n 30 %s >&2", log);
        (void)system(cmd);
    }
    wd_h_stop(agent, SIGTERM, 5000);
    free(id);
    free(token);
}

static void test_node_admin(void)
{
    json_t *j = NULL;
    const char *bad[] = {"{}", "{\"name\":\"x\",\"fqdn\":\"x\",\"memory_mb\":0,\"disk_mb\":1}",
                         "{\"name\":\"x\",\"fqdn\":\"x\",\"memory_mb\":1,\"disk_mb\":1,\"x\":1}",
                         "{\"name\":\"x\\u0007\",\"fqdn\":\"x\",\"memory_mb\":1,\"disk_mb\":1}",
                         NULL};
    for (int i = 0; bad[i]; i++) {
        CU_ASSERT_EQUAL(call("POST", "/api/v1/nodes", bad[i], &j), 400);
        json_decref(j);
    }
    CU_ASSERT_EQUAL(call("POST", "/api/v1/nodes",
                         "{\"name\":\"node-a\",\"fqdn\":\"dup\",\"memory_mb\":1,\"disk_mb\":1}", &j),
                    409);
    json_decref(j);
    CU_ASSERT_EQUAL_FATAL(call("POST", "/api/v1/nodes",
                               "{\"name\":\"node-b\",\"fqdn\":\"b\",\"memory_mb\":1,\"disk_mb\":1}",
                               &j),
                          201);
    char path[128];
    snprintf(path, sizeof path, "/api/v1/nodes/%s",
             json_string_value(json_object_get(json_object_get(j, "node"), "id")));
    json_decref(j);
    CU_ASSERT_EQUAL(call("PATCH", path, "{\"maintenance\":true,\"memory_mb\":2048}", &j), 200);
    CU_ASSERT(json_is_true(json_object_get(j, "maintenance")));
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(j, "memory_mb")), 2048);
    json_decref(j);
    char tok[160];
    snprintf(tok, sizeof tok, "%s/join-token", path);
    CU_ASSERT_EQUAL(call("POST", tok, NULL, &j), 201);
    CU_ASSERT_PTR_NOT_NULL(json_string_value(json_object_get(j, "join_token")));
    json_decref(j);
    CU_ASSERT_EQUAL(call("GET", "/api/v1/nodes?sort=-name", NULL, &j), 200);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(json_object_get(j, "pagination"), "total")),
                    2);
    json_decref(j);
    CU_ASSERT_EQUAL(call("DELETE", path, NULL, NULL), 204);
    CU_ASSERT_EQUAL(call("GET", path, NULL, NULL), 404);
    CU_ASSERT_EQUAL(call("GET", "/api/v1/nodes/nope", NULL, NULL), 400);
}

static char *read_text(const char *path)
{
    char *t = NULL;
    return wd_read_file(path, 1 << 20, &t, NULL) == WD_OK ? t : NULL;
}

static bool wait_server(const char *path, const char *state, bool installed, int timeout_ms)
{
    for (int t = 0; t <= timeout_ms; t += 100) {
        json_t *j = NULL;
        bool ok = call("GET", path, NULL, &j) == 200 &&
                  strcmp(json_string_value(json_object_get(j, "state")), state) == 0 &&
                  json_is_true(json_object_get(j, "installed")) == installed;
        json_decref(j);
        if (ok)
            return true;
        usleep(100000);
    }
    return false;
}

/* Console lines of a server seen on the bus (what a gateway will relay). */
static bool console_has(natsSubscription *sub, const char *text, int timeout_ms)
{
    int64_t end = wd_mono_ms() + timeout_ms;
    while (wd_mono_ms() < end) {
        natsMsg *m = NULL;
        if (natsSubscription_NextMsg(&m, sub, 200) != NATS_OK)
            continue;
        Warden__V1__ConsoleChunk *c = warden__v1__console_chunk__unpack(
            NULL, (size_t)natsMsg_GetDataLength(m), (const uint8_t *)natsMsg_GetData(m));
        natsMsg_Destroy(m);
        bool found = false;
        for (size_t i = 0; c && i < c->n_lines && !found; i++)
            found = c->lines[i].len && memmem(c->lines[i].data, c->lines[i].len, text,
                                              strlen(text)) != NULL;
        if (c)
            protobuf_c_message_free_unpacked(&c->base, NULL);
        if (found)
            return true;
    }
    return false;
}

/* A browser's path, through the real gateway with its own NATS user
 * (ws.creds) and the API's gateway key: token from the API, history then
 * live lines, a command and its effect; logging out closes the socket of
 * that session at once, and only that one. */
#pragma push_macro("nats")
#pragma push_macro("port")
#undef nats
#undef port
static void check_gateway(const char *sid)
{
    static wd_fx gfx; /* the gateway fixture only needs the NATS URL */
    wd_gx g;
    char creds[700], path[128], wspath[128];
    snprintf(gfx.nats.url, sizeof gfx.nats.url, "%s", fx.nats.url);
    snprintf(wd_gx_pub_path, sizeof wd_gx_pub_path, "%s/ws.pub", fx.cfg.data_dir);
    snprintf(creds, sizeof creds, "--nats-creds=%s/ws.creds", fx.nats_dir);
    const char *extra[] = {creds, NULL};
    CU_ASSERT_FATAL(wd_gx_start(&g, &gfx, extra));
    snprintf(path, sizeof path, "/api/v1/servers/%s/websocket", sid);
    snprintf(wspath, sizeof wspath, "/ws/%s", sid);

    json_t *j = NULL;
    CU_ASSERT_EQUAL(call("GET", path, NULL, &j), 200);
    wsc *c = wsc_connect(g.port, wspath, NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    wsc_send_event(c, "auth", json_string_value(json_object_get(j, "token")));
    json_decref(j);
    CU_ASSERT_PTR_NOT_NULL(wsc_wait(c, "auth success", NULL, 5000));
    CU_ASSERT_PTR_NOT_NULL(wsc_wait(c, "status", "running", 5000));
    wsc_send_event(c, "send logs", NULL);
    CU_ASSERT_PTR_NOT_NULL(wsc_wait(c, "console output", "hello-api", 5000));
    wsc_send_event(c, "send command", "echo via-the-gateway");
    CU_ASSERT_PTR_NOT_NULL(wsc_wait(c, "console output", "via-the-gateway", 5000));

    /* A second session of the same user: its logout closes its socket. */
    json_t *lj = NULL;
    CU_ASSERT_EQUAL_FATAL(
        call("POST", "/api/v1/auth/login",
             "{\"username\":\"root\",\"password\":\"root password 1\"}", &lj),
        200);
    const char *t2 = json_string_value(json_object_get(lj, "access_token"));
    CU_ASSERT_EQUAL(wd_api_fx_call(&fx, "GET", path, t2, NULL, &j, NULL), 200);
    wsc *c2 = wsc_connect(g.port, wspath, NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c2);
    wsc_send_event(c2, "auth", json_string_value(json_object_get(j, "token")));
    json_decref(j);
    CU_ASSERT_PTR_NOT_NULL(wsc_wait(c2, "auth success", NULL, 5000));
    int64_t t0 = wd_mono_ms();
    CU_ASSERT_EQUAL(wd_api_fx_call(&fx, "POST", "/api/v1/auth/logout", t2, NULL, NULL, NULL), 204);
    CU_ASSERT_EQUAL(wsc_wait_close(c2, 3000, NULL, 0), 4005);
    CU_ASSERT(wd_mono_ms() - t0 < 1500);
    json_decref(lj);
    wsc_send_event(c, "send command", "echo still-here");
    CU_ASSERT_PTR_NOT_NULL(wsc_wait(c, "console output", "still-here", 5000));
    wsc_free(c2);
    wsc_free(c);
    CU_ASSERT(wd_gx_stop(&g));
}
#pragma pop_macro("port")
#pragma pop_macro("nats")

static void test_server_lifecycle(void)
{
    json_t *j = NULL;
    /* A node with an agent, ports and a template. */
    CU_ASSERT_EQUAL_FATAL(call("POST", "/api/v1/nodes",
                               "{\"name\":\"game-1\",\"fqdn\":\"127.0.0.1\","
                               "\"memory_mb\":4096,\"disk_mb\":10000}",
                               &j),
                          201);
    char *node = strdup(json_string_value(json_object_get(json_object_get(j, "node"), "id")));
    char *token = strdup(json_string_value(json_object_get(j, "join_token")));
    json_decref(j);
    const char *dir = wd_h_tmpdir("game-agent");
    char data[600], log[600];
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(log, sizeof log, "%s/agent.log", dir);
    pid_t agent = start_agent(data, token, log);
    CU_ASSERT_FATAL(node_online(node, true, 10000));
    char path[256], body[1024];
    snprintf(path, sizeof path, "/api/v1/nodes/%s/allocations", node);
    snprintf(body, sizeof body, "{\"ip\":\"127.0.0.1\",\"ports\":[%d, \"%d-%d\"]}",
             wd_h_free_port(), 40000, 40002);
    CU_ASSERT_EQUAL(call("POST", path, body, &j), 201);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(j, "created")), 4);
    json_decref(j);
    CU_ASSERT_EQUAL(call("POST", path, body, NULL), 409); /* same ports again */
    char tpath[512];
    snprintf(tpath, sizeof tpath, "%s/templates/testgame.json", WARDEN_SOURCE_DIR);
    char *tpl = read_text(tpath);
    CU_ASSERT_EQUAL_FATAL(call("POST", "/api/v1/templates", tpl, &j), 201);
    char *tid = strdup(json_string_value(json_object_get(j, "id")));
    json_decref(j);
    free(tpl);

    /* Invalid variables: refused before anything is written. */
    snprintf(body, sizeof body,
             "{\"name\":\"bad\",\"node_id\":\"%s\",\"template_id\":\"%s\","
             "\"variables\":{\"READY_DELAY_MS\":\"soon\"}}",
             node, tid);
    CU_ASSERT_EQUAL(call("POST", "/api/v1/servers", body, &j), 400);
    json_decref(j);
    CU_ASSERT_EQUAL(call("GET", "/api/v1/servers", NULL, &j), 200);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(json_object_get(j, "pagination"), "total")),
                    0);
    json_decref(j);

    snprintf(body, sizeof body,
             "{\"name\":\"Test game\",\"node_id\":\"%s\",\"template_id\":\"%s\","
             "\"limits\":{\"memory_mb\":256,\"pids\":128},"
             "\"variables\":{\"GREETING\":\"hello-api\"}}",
             node, tid);
    CU_ASSERT_EQUAL_FATAL(call("POST", "/api/v1/servers", body, &j), 201);
    char *sid = strdup(json_string_value(json_object_get(j, "id")));
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "state")), "offline");
    json_decref(j);
    char spath[128], act[160];
    snprintf(spath, sizeof spath, "/api/v1/servers/%s", sid);

    wd_bus_cfg bc = wd_bus_cfg_defaults();
    bc.servers = nats.url;
    bc.creds_file = fx.ops_creds;
    wd_bus *bus = NULL;
    CU_ASSERT_EQUAL_FATAL(wd_bus_connect(&bus, &bc), WD_OK);
    char csubj[128];
    snprintf(csubj, sizeof csubj, "warden.server.%s.console", sid);
    natsSubscription *csub = NULL;
    natsConnection_SubscribeSync(&csub, wd_bus_nats(bus), csubj);
    natsConnection_Flush(wd_bus_nats(bus));

    snprintf(act, sizeof act, "%s/install", spath);
    CU_ASSERT_EQUAL(call("POST", act, NULL, NULL), 202);
    CU_ASSERT(wait_server(spath, "offline", true, 20000));
    snprintf(act, sizeof act, "%s/power", spath);
    CU_ASSERT_EQUAL(call("POST", act, "{\"action\":\"start\"}", &j), 202);
    json_decref(j);
    CU_ASSERT(wait_server(spath, "running", true, 20000));
    CU_ASSERT(console_has(csub, "hello-api", 5000));
    CU_ASSERT_EQUAL(call("POST", act, "{\"action\":\"start\"}", &j), 409); /* running */
    json_decref(j);
    CU_ASSERT_EQUAL(call("POST", act, "{\"action\":\"explode\"}", NULL), 400);
    snprintf(act, sizeof act, "%s/command", spath);
    CU_ASSERT_EQUAL(call("POST", act, "{\"command\":\"echo via-the-api\"}", NULL), 204);
    CU_ASSERT(console_has(csub, "via-the-api", 5000));
    snprintf(act, sizeof act, "%s/resources", spath);
    bool have_stats = false;
    for (int t = 0; t < 50 && !have_stats; t++) {
        CU_ASSERT_EQUAL(call("GET", act, NULL, &j), 200);
        have_stats = json_is_object(json_object_get(j, "stats"));
        json_decref(j);
        if (!have_stats)
            usleep(100000);
    }
    CU_ASSERT(have_stats);
    /* The list carries the figures too: one request draws it all. */
    CU_ASSERT_EQUAL(call("GET", "/api/v1/servers", NULL, &j), 200);
    json_t *item = json_array_get(json_object_get(j, "data"), 0);
    CU_ASSERT(json_integer_value(json_object_get(json_object_get(item, "resources"),
                                                 "memory_bytes")) > 0);
    json_decref(j);
    check_gateway(sid);

    /* wardenctl's REST mode does the same from a shell. */
    {
        const char *sess = wd_h_tmpdir("ctl-session");
        char cmd[2048], out[700];
        snprintf(out, sizeof out, "%s/out", sess);
        const char *ctl = wd_h_bin("cli/wardenctl");
        snprintf(cmd, sizeof cmd,
                 "echo 'root password 1' | WARDEN_SESSION=%s/s.json %s --api "
                 "http://127.0.0.1:%d login --username root >%s 2>&1",
                 sess, ctl, port, out);
        CU_ASSERT_EQUAL(system(cmd), 0);
        snprintf(cmd, sizeof cmd, "WARDEN_SESSION=%s/s.json %s --api http://127.0.0.1:%d servers >%s",
                 sess, ctl, port, out);
        CU_ASSERT_EQUAL(system(cmd), 0);
        char *text = read_text(out);
        CU_ASSERT(text && strstr(text, sid) && strstr(text, "running"));
        free(text);
        snprintf(cmd, sizeof cmd,
                 "WARDEN_SESSION=%s/s.json %s --api http://127.0.0.1:%d send %s 'echo via-cli'",
                 sess, ctl, port, sid);
        CU_ASSERT_EQUAL(system(cmd), 0);
        CU_ASSERT(console_has(csub, "via-cli", 5000));
        snprintf(cmd, sizeof cmd,
                 "WARDEN_SESSION=%s/s.json %s --api http://127.0.0.1:%d power %s explode "
                 "2>%s",
                 sess, ctl, port, sid, out);
        int st = system(cmd);
        CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 1);
        text = read_text(out);
        CU_ASSERT(text && strstr(text, "action must be"));
        free(text);
        snprintf(cmd, sizeof cmd, "%s --api http://127.0.0.1:%d bogus 2>/dev/null", ctl, port);
        st = system(cmd);
        CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 2);
    }

    /* An API key scoped to the console: commands yes, power no. */
    CU_ASSERT_EQUAL(call("POST", "/api/v1/me/api-keys",
                         "{\"name\":\"console bot\",\"scopes\":[\"control.console\"]}", &j),
                    201);
    {
        char *saved = admin;
        admin = strdup(json_string_value(json_object_get(j, "key")));
        json_decref(j);
        snprintf(act, sizeof act, "%s/command", spath);
        CU_ASSERT_EQUAL(call("POST", act, "{\"command\":\"echo via-key\"}", NULL), 204);
        CU_ASSERT(console_has(csub, "via-key", 5000));
        snprintf(act, sizeof act, "%s/power", spath);
        CU_ASSERT_EQUAL(call("POST", act, "{\"action\":\"stop\"}", NULL), 403);
        CU_ASSERT_EQUAL(call("GET", "/api/v1/nodes", NULL, NULL), 403); /* no admin scope */
        CU_ASSERT_EQUAL(call("POST", "/api/v1/auth/logout", NULL, NULL), 400);
        free(admin);
        admin = saved;
    }

    /* Another user sees nothing of it; a subuser only what was granted. */
    CU_ASSERT_EQUAL(wd_api_create_user(api, "dave", "dave@example.com", "user", "dave pass 12",
                                       NULL, 0, NULL),
                    WD_OK);
    json_t *lj = NULL;
    CU_ASSERT_EQUAL(call("POST", "/api/v1/auth/login",
                         "{\"username\":\"dave\",\"password\":\"dave pass 12\"}", &lj),
                    200);
    char *saved_admin = admin;
    admin = strdup(json_string_value(json_object_get(lj, "access_token")));
    json_decref(lj);
    CU_ASSERT_EQUAL(call("GET", spath, NULL, NULL), 404);
    snprintf(act, sizeof act, "%s/command", spath);
    CU_ASSERT_EQUAL(call("POST", act, "{\"command\":\"echo x\"}", NULL), 404);
    PGconn *pc = PQconnectdb(pg.conninfo);
    const char *sp[] = {sid};
    PGresult *pr = PQexecParams(pc,
                                "INSERT INTO subusers (server_id, user_id, permissions) SELECT $1, "
                                "id, '{websocket.connect,control.start}' FROM users "
                                "WHERE username = 'dave'",
                                1, NULL, sp, NULL, NULL, 0);
    PQclear(pr);
    CU_ASSERT_EQUAL(call("GET", spath, NULL, NULL), 200);
    CU_ASSERT_EQUAL(call("POST", act, "{\"command\":\"echo x\"}", NULL), 403);
    snprintf(act, sizeof act, "%s/power", spath);
    CU_ASSERT_EQUAL(call("POST", act, "{\"action\":\"stop\"}", NULL), 403);
    /* Startup variables: needs startup.read / startup.update. */
    char stpath[192];
    snprintf(stpath, sizeof stpath, "%s/startup", spath);
    CU_ASSERT_EQUAL(call("GET", stpath, NULL, NULL), 403);
    pr = PQexecParams(pc,
                      "UPDATE subusers SET permissions = '{websocket.connect,control.start,"
                      "startup.read,startup.update}' WHERE server_id = $1",
                      1, NULL, sp, NULL, NULL, 0);
    PQclear(pr);
    CU_ASSERT_EQUAL(call("GET", stpath, NULL, &j), 200);
    CU_ASSERT(json_array_size(json_object_get(j, "variables")) >= 2);
    json_decref(j);
    CU_ASSERT_EQUAL(call("PATCH", stpath, "{\"variables\":{\"GREETING\":\"from-subuser\"}}", &j),
                    200);
    json_decref(j);
    CU_ASSERT_EQUAL(call("PATCH", stpath, "{\"variables\":{\"NOT_A_VAR\":\"x\"}}", NULL), 403);
    CU_ASSERT_EQUAL(call("PATCH", stpath, "{\"variables\":{\"GREETING\":\"\"}}", NULL) / 100, 2);
    CU_ASSERT_EQUAL(call("PATCH", stpath, "{\"vars\":{}}", NULL), 400);
    free(admin);
    admin = saved_admin;
    CU_ASSERT_EQUAL(call("GET", stpath, NULL, &j), 200);
    {
        bool seen = false;
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(j, "variables"), i, v)
        {
            if (strcmp(json_string_value(json_object_get(v, "name")), "GREETING") == 0)
                seen = true;
        }
        CU_ASSERT(seen);
    }
    json_decref(j);
    CU_ASSERT_EQUAL(call("PATCH", stpath, "{\"variables\":{\"GREETING\":\"hello-api\"}}", NULL),
                    200);

    CU_ASSERT_EQUAL(call("POST", act, "{\"action\":\"stop\"}", NULL), 202);
    CU_ASSERT(wait_server(spath, "offline", true, 20000));

    /* Updates go to the agent too; bad values change nothing; suspension. */
    CU_ASSERT_EQUAL(call("PATCH", spath,
                         "{\"name\":\"Renamed\",\"limits\":{\"memory_mb\":512},"
                         "\"variables\":{\"GREETING\":\"second-greeting\"}}",
                         &j),
                    200);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "name")), "Renamed");
    json_decref(j);
    CU_ASSERT_EQUAL(call("PATCH", spath, "{\"variables\":{\"READY_DELAY_MS\":\"-5\"}}", &j),
                    400);
    json_decref(j);
    CU_ASSERT_EQUAL(call("PATCH", spath, "{\"owner\":\"x\"}", NULL), 400);
    CU_ASSERT_EQUAL(call("POST", act, "{\"action\":\"start\"}", NULL), 202);
    CU_ASSERT(wait_server(spath, "running", true, 20000));
    CU_ASSERT(console_has(csub, "second-greeting", 5000)); /* the new value reached the game */
    CU_ASSERT_EQUAL(call("PATCH", spath, "{\"suspended\":true}", &j), 200);
    CU_ASSERT(json_is_true(json_object_get(j, "suspended")));
    json_decref(j);
    CU_ASSERT(wait_server(spath, "offline", true, 20000)); /* suspending killed it */
    CU_ASSERT_EQUAL(call("POST", act, "{\"action\":\"start\"}", &j), 409);
    json_decref(j);
    CU_ASSERT_EQUAL(call("PATCH", spath, "{\"suspended\":false}", NULL), 200);

    /* The node goes down: commands fail fast and clearly. */
    wd_h_stop(agent, SIGTERM, 5000);
    int64_t t0 = wd_mono_ms();
    CU_ASSERT_EQUAL(call("POST", act, "{\"action\":\"start\"}", &j), 503);
    CU_ASSERT(wd_mono_ms() - t0 < 1000);
    CU_ASSERT_STRING_EQUAL(
        json_string_value(json_object_get(json_object_get(j, "error"), "code")),
        "node_unavailable");
    json_decref(j);

    /* The audit trail. */
    pr = PQexecParams(pc,
                      "SELECT string_agg(action, ',' ORDER BY id) FROM audit_log "
                      "WHERE target_id = $1",
                      1, NULL, sp, NULL, NULL, 0);
    const char *trail = PQgetvalue(pr, 0, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(trail, "server.create"));
    CU_ASSERT_PTR_NOT_NULL(strstr(trail, "server.install"));
    CU_ASSERT_PTR_NOT_NULL(strstr(trail, "server.power.start"));
    CU_ASSERT_PTR_NOT_NULL(strstr(trail, "server.console.command"));
    CU_ASSERT_PTR_NOT_NULL(strstr(trail, "server.power.stop"));
    PQclear(pr);
    PQfinish(pc);

    /* Delete while the node is down needs force. */
    CU_ASSERT_EQUAL(call("DELETE", spath, NULL, NULL), 503);
    char fpath[160];
    snprintf(fpath, sizeof fpath, "%s?force=true", spath);
    CU_ASSERT_EQUAL(call("DELETE", fpath, NULL, NULL), 204);
    CU_ASSERT_EQUAL(call("GET", spath, NULL, NULL), 404);

    natsSubscription_Destroy(csub);
    wd_bus_destroy(&bus);
    free(node);
    free(token);
    free(tid);
    free(sid);
}

int main(void)
{
    static const wd_h_case cases[] = {
        {"a node joins with its token, is online from heartbeats, offline on silence",
         test_join_and_liveness},
        {"node admin: validation, conflicts, update, new token, delete", test_node_admin},
        {"a server through the API: create, install, start, command, stop; access; audit",
         test_server_lifecycle},
        {NULL, NULL}};
    wd_h_suite("api-fleet", suite_init, suite_clean, cases);
    return wd_h_run();
}
