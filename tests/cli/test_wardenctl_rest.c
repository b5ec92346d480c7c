/* wardenctl's bulk commands in REST mode go through warden-api, so the
 * caller's permissions apply: a real PostgreSQL, warden-api, nats-server in
 * operator mode and a joined agent running three test game servers.
 *
 *   r-alice   owned by alice, running
 *   r-shared  owned by the admin, running; alice is a subuser holding only
 *             control.start (no console, no stop)
 *   r-off     owned by alice, offline
 *
 * alice's broadcast reaches r-alice only (r-shared: no control.console,
 * r-off: not running); the admin's reaches both running servers. Bulk power
 * skips what alice may not do. Also: the ops NATS user may not tail a
 * subject outside warden.> / _INBOX.>, and wardenctl says so. */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctl_run.h"
#include "api_fixture.h"
#include "util.h"

static wd_api_fx fx;
static char *admin_token, *alice_token;
static char alice_id[40], sid[3][64];
static pid_t agent;

static int call(const char *token, const char *method, const char *path, const char *body,
                json_t **out)
{
    return wd_api_fx_call(&fx, method, path, token, body, out, NULL);
}

typedef wd_ctl_result result;

/* Runs wardenctl as the holder of token (REST mode; NULL = bus mode with
 * ops.creds), printf-formatted shell-quoted arguments. */
static result *ctl(const char *token, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static result *ctl(const char *token, const char *fmt, ...)
{
    char args[2048], env[6000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    const char *dir = wd_h_tmpdir("rest");
    if (token)
        snprintf(env, sizeof env,
                 "WARDEN_TOKEN='%s' WARDEN_SESSION=%s/none.json "
                 "WARDEN_API_URL=http://127.0.0.1:%d",
                 token, dir, fx.port);
    else
        snprintf(env, sizeof env, "WARDEN_TOKEN='' WARDEN_NATS_URL=%s WARDEN_NATS_CREDS=%s",
                 fx.nats.url, fx.ops_creds);
    return wd_ctl_run(env, args, NULL);
}

static char *login(const char *user, const char *password)
{
    char body[256];
    json_t *j = NULL;
    snprintf(body, sizeof body, "{\"username\":\"%s\",\"password\":\"%s\"}", user, password);
    char *tok = NULL;
    if (call(NULL, "POST", "/api/v1/auth/login", body, &j) == 200)
        tok = strdup(json_string_value(json_object_get(j, "access_token")));
    json_decref(j);
    return tok;
}

static bool wait_server(const char *id, const char *state, int timeout_ms)
{
    char path[128];
    snprintf(path, sizeof path, "/api/v1/servers/%s", id);
    for (int t = 0; t <= timeout_ms; t += 100) {
        json_t *j = NULL;
        bool ok = call(admin_token, "GET", path, NULL, &j) == 200 &&
                  strcmp(json_string_value(json_object_get(j, "state")) ?: "", state) == 0 &&
                  json_is_true(json_object_get(j, "installed"));
        json_decref(j);
        if (ok)
            return true;
        usleep(100000);
    }
    return false;
}

/* The console history of a server, read over the bus with ops.creds. */
static bool console_has(const char *id, const char *text)
{
    result *r = ctl(NULL, "console %s --no-follow --tail 200", id);
    return r->code == 0 && strstr(r->out, text) != NULL;
}

static const char *line_of(const char *out, const char *id)
{
    static char line[1024];
    const char *p = strstr(out, id);
    if (p == NULL)
        return "";
    while (p > out && p[-1] != '\n')
        p--;
    snprintf(line, sizeof line, "%.*s", (int)strcspn(p, "\n"), p);
    return line;
}

static void test_broadcast_permissions(void)
{
    result *r = ctl(alice_token, "broadcast 'rest-hello-1'");
    CU_ASSERT_EQUAL(r->code, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(r->out, "broadcast: 1 sent, 0 failed, 2 skipped (3 selected)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(line_of(r->out, sid[0]), "sent (echo rest-hello-1)"));
    CU_ASSERT_PTR_NOT_NULL(
        strstr(line_of(r->out, sid[1]), "skipped: you do not hold control.console"));
    CU_ASSERT_PTR_NOT_NULL(strstr(line_of(r->out, sid[2]), "skipped: not running (offline)"));
    CU_ASSERT(WD_H_WAIT(console_has(sid[0], "rest-hello-1"), 3000));
    CU_ASSERT(!console_has(sid[1], "rest-hello-1"));

    /* The admin holds every permission: both running servers. */
    r = ctl(admin_token, "broadcast 'rest-hello-2' --json");
    CU_ASSERT_EQUAL(r->code, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(r->out, "\"summary\":{\"action\":\"broadcast\",\"selected\":3,"
                                          "\"ok\":2,\"failed\":0,\"skipped\":1}"));
    CU_ASSERT(WD_H_WAIT(console_has(sid[0], "rest-hello-2"), 3000));
    CU_ASSERT(WD_H_WAIT(console_has(sid[1], "rest-hello-2"), 3000));
    /* A filter on the template's slug. */
    r = ctl(admin_token, "broadcast 'rest-hello-3' --filter template=testgame,name=r-shared");
    CU_ASSERT_EQUAL(r->code, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(r->out, "1 sent, 0 failed, 0 skipped (1 selected)"));
}

static void test_bulk_power_permissions(void)
{
    result *r = ctl(alice_token, "power stop");
    CU_ASSERT_EQUAL(r->code, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(r->err, "--all"));
    r = ctl(alice_token, "power stop --filter 'name=r-*'");
    CU_ASSERT_EQUAL(r->code, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(r->out, "power stop: 1 ok, 0 failed, 2 skipped (3 selected)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(line_of(r->out, sid[0]), ": ok"));
    CU_ASSERT_PTR_NOT_NULL(strstr(line_of(r->out, sid[1]), "you do not hold control.stop"));
    CU_ASSERT_PTR_NOT_NULL(strstr(line_of(r->out, sid[2]), "already offline"));
    CU_ASSERT(wait_server(sid[0], "offline", 10000));
    CU_ASSERT(wait_server(sid[1], "running", 100));
    r = ctl(alice_token, "servers --ids");
    CU_ASSERT_EQUAL(r->code, 0);
    CU_ASSERT(strstr(r->out, sid[0]) && strstr(r->out, sid[1]) && strstr(r->out, sid[2]));
}

static void test_ops_tail_limits(void)
{
    /* ops.creds may watch warden.> but not other subjects. */
    result *r = ctl(NULL, "bus tail 'other.>' --count 1");
    CU_ASSERT_EQUAL(r->code, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(r->err, "not permitted"));
    r = ctl(NULL, "servers --json");
    CU_ASSERT_EQUAL(r->code, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(r->out, sid[1]));
}

static int suite_init(void)
{
    fx.nats_auth = true;
    if (!wd_api_fx_start(&fx, "ctl-rest", true) ||
        wd_api_create_user(fx.api, "root", "root@example.com", "admin", "root password 1", NULL, 0,
                           NULL) != WD_OK ||
        wd_api_create_user(fx.api, "alice", "alice@example.com", "user", "alice password 1", NULL,
                           0, alice_id) != WD_OK)
        return 1;
    admin_token = login("root", "root password 1");
    alice_token = login("alice", "alice password 1");
    if (!admin_token || !alice_token)
        return 1;
    json_t *j = NULL;
    if (call(admin_token, "POST", "/api/v1/nodes",
             "{\"name\":\"game-1\",\"fqdn\":\"127.0.0.1\",\"memory_mb\":4096,\"disk_mb\":10000}",
             &j) != 201)
        return 1;
    char node[64], token[4096];
    snprintf(node, sizeof node, "%s",
             json_string_value(json_object_get(json_object_get(j, "node"), "id")));
    snprintf(token, sizeof token, "%s", json_string_value(json_object_get(j, "join_token")));
    json_decref(j);
    const char *dir = wd_h_tmpdir("rest-agent");
    char d[600], n[256], jt[4200], log[600];
    snprintf(d, sizeof d, "--data-dir=%s/data", dir);
    snprintf(n, sizeof n, "--nats-url=%s", fx.nats.url);
    snprintf(jt, sizeof jt, "--join=%s", token);
    snprintf(log, sizeof log, "%s/agent.log", dir);
    const char *argv[] = {wd_h_bin("agent/warden-agent"), d, n, "--heartbeat=1", jt, NULL};
    agent = wd_h_spawn(argv, NULL, log);
    char path[256], body[1024];
    snprintf(path, sizeof path, "/api/v1/nodes/%s", node);
    bool online = false;
    for (int t = 0; t < 100 && !online; t++) {
        if (call(admin_token, "GET", path, NULL, &j) == 200)
            online = json_is_true(json_object_get(j, "online"));
        json_decref(j);
        j = NULL;
        if (!online)
            usleep(100000);
    }
    if (!online) {
        fprintf(stderr, "node did not come online; see %s\n", log);
        return 1;
    }
    snprintf(path, sizeof path, "/api/v1/nodes/%s/allocations", node);
    int p0 = wd_h_free_port();
    snprintf(body, sizeof body, "{\"ip\":\"127.0.0.1\",\"ports\":[%d,%d,%d]}", p0, p0 + 1, p0 + 2);
    if (call(admin_token, "POST", path, body, NULL) != 201)
        return 1;
    char tpath[512], *tpl = NULL;
    snprintf(tpath, sizeof tpath, "%s/templates/testgame.json", WARDEN_SOURCE_DIR);
    if (wd_read_file(tpath, 1 << 20, &tpl, NULL) != WD_OK)
        return 1;
    int st = call(admin_token, "POST", "/api/v1/templates", tpl, &j);
    free(tpl);
    if (st != 201)
        return 1;
    char tid[64];
    snprintf(tid, sizeof tid, "%s", json_string_value(json_object_get(j, "id")));
    json_decref(j);
    static const char *const names[3] = {"r-alice", "r-shared", "r-off"};
    for (int i = 0; i < 3; i++) {
        char owner[80] = "";
        if (i != 1)
            snprintf(owner, sizeof owner, ",\"owner_id\":\"%s\"", alice_id);
        snprintf(body, sizeof body,
                 "{\"name\":\"%s\",\"node_id\":\"%s\",\"template_id\":\"%s\"%s,"
                 "\"variables\":{\"READY_DELAY_MS\":\"0\"}}",
                 names[i], node, tid, owner);
        if (call(admin_token, "POST", "/api/v1/servers", body, &j) != 201)
            return 1;
        snprintf(sid[i], sizeof sid[i], "%s", json_string_value(json_object_get(j, "id")));
        json_decref(j);
        snprintf(path, sizeof path, "/api/v1/servers/%s/install", sid[i]);
        if (call(admin_token, "POST", path, NULL, NULL) != 202)
            return 1;
    }
    snprintf(path, sizeof path, "/api/v1/servers/%s/users", sid[1]);
    if (call(admin_token, "POST", path,
             "{\"username\":\"alice\",\"permissions\":[\"control.start\"]}", NULL) != 201)
        return 1;
    for (int i = 0; i < 3; i++)
        if (!wait_server(sid[i], "offline", 20000))
            return 1;
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "/api/v1/servers/%s/power", sid[i]);
        if (call(admin_token, "POST", path, "{\"action\":\"start\"}", NULL) != 202 ||
            !wait_server(sid[i], "running", 20000))
            return 1;
    }
    return 0;
}

static int suite_clean(void)
{
    /* Games outlive their agent by design: kill them first. */
    for (int i = 0; admin_token && i < 3; i++) {
        char path[256];
        snprintf(path, sizeof path, "/api/v1/servers/%s/power", sid[i]);
        if (sid[i][0] && call(admin_token, "POST", path, "{\"action\":\"kill\"}", NULL) == 202)
            wait_server(sid[i], "offline", 5000);
    }
    if (agent > 0)
        wd_h_stop(agent, SIGTERM, 5000);
    wd_api_fx_stop(&fx);
    free(admin_token);
    free(alice_token);
    return 0;
}

int main(void)
{
    static const wd_h_case cases[] = {
        {"REST broadcast reaches only servers where the caller holds control.console",
         test_broadcast_permissions},
        {"REST bulk power skips what the caller may not do", test_bulk_power_permissions},
        {"ops.creds: tailing outside warden.> is refused with a clear message",
         test_ops_tail_limits},
        {NULL, NULL}};
    wd_h_suite("wardenctl REST mode", suite_init, suite_clean, cases);
    return wd_h_run();
}
