/* Scale-out rehearsal on one machine: what a multi-host install looks like,
 * on loopback, with the real binaries.
 *
 *   - a 3-server NATS cluster (routes, JetStream with 3 replicas), in
 *     operator mode with the chain `warden-api nats init` writes, TLS
 *     between every client and NATS (a private CA from
 *     deploy/tls/warden-nats-certs);
 *   - one PostgreSQL (the system of record);
 *   - two warden-api and two warden-ws processes sharing keys and database;
 *   - three warden-agents, each joined as its own node with its own NATS user.
 *
 * A client sends console commands round-robin through both APIs and watches
 * consoles through both gateways. Mid-way one NATS server, one API and one
 * gateway are killed (SIGKILL: a crash, not a polite stop). The client does
 * what a client behind a load balancer does: a request that got no answer
 * or a 5xx is sent again to a survivor; a closed WebSocket reconnects to a
 * survivor with a fresh token. At the end every command that was
 * acknowledged (HTTP 204) must show up in its server's console history,
 * power actions still work, nodes stay online and sockets on the surviving
 * gateway never noticed. */
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent_fixture.h"
#include "harness.h"
#include "pg.h"
#include "util.h"
#include "ws_client.h"

#define NNATS 3
#define NAPI 2
#define NWS 2
#define NAGENT 3
#define ROUNDS 90
#define KILL_AT 30

static wd_h_pg pg;
static wd_h_nats nats[NNATS];
static char chain[512];  /* `warden-api nats init` output */
static char ca[700];     /* CA of the NATS servers' certificate */
static char api_data[512];

typedef struct {
    pid_t pid;
    int port;
    char log[600];
} proc;

static proc apis[NAPI], gws[NWS], agents[NAGENT];
static char *token;                 /* admin access token (valid on every API) */
static char node_id[NAGENT][40];
static char server_id[NAGENT][40];

/* ---- starting the pieces ------------------------------------------------ */

static bool run_tool(const char *const *argv, const char *log)
{
    pid_t pid = wd_h_spawn(argv, NULL, log);
    int ws = pid > 0 ? wd_h_wait_exit(pid, 30000) : -1;
    if (ws == -1 || !WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
        if (ws == -1 && pid > 0)
            wd_h_stop(pid, SIGKILL, 1000);
        fprintf(stderr, "%s failed; see %s\n", argv[0], log);
        return false;
    }
    return true;
}

/* The NATS URLs starting with member `first`: each process prefers a
 * different server, as spread clients would. */
static const char *urls_from(int first)
{
    static char buf[4][512];
    static int k;
    char *b = buf[k++ % 4];
    size_t len = 0;
    for (int i = 0; i < NNATS; i++)
        len += (size_t)snprintf(b + len, 512 - len, "%s%s", i ? "," : "",
                                nats[(first + i) % NNATS].url);
    return b;
}

static bool start_api(int i)
{
    proc *p = &apis[i];
    const char *d = wd_h_tmpdir("api");
    snprintf(p->log, sizeof p->log, "%s/api.log", d);
    p->port = wd_h_free_port();
    char port[32], db[400], nu[600], creds[700], acct[200], sk[700], tls[720], data[650];
    snprintf(port, sizeof port, "--port=%d", p->port);
    snprintf(db, sizeof db, "--database-url=%s", pg.conninfo);
    snprintf(nu, sizeof nu, "--nats-url=%s", urls_from(i));
    snprintf(creds, sizeof creds, "--nats-creds=%s/api.creds", chain);
    snprintf(sk, sizeof sk, "--nats-signing-key=%s/signing.seed", chain);
    snprintf(tls, sizeof tls, "--nats-tls-ca=%s", ca);
    snprintf(data, sizeof data, "--data-dir=%s", api_data);
    /* The account's public key is in api.env. */
    char envp[700], *text = NULL;
    snprintf(envp, sizeof envp, "%s/api.env", chain);
    if (wd_read_file(envp, 1 << 16, &text, NULL) != WD_OK)
        return false;
    const char *a = strstr(text, "WARDEN_NATS_ACCOUNT=");
    snprintf(acct, sizeof acct, "--nats-account=%.*s", a ? (int)strcspn(a + 20, "\n") : 0,
             a ? a + 20 : "");
    free(text);
    const char *argv[] = {wd_h_bin("panel-api/warden-api"), port, db, nu, creds, acct, sk, tls,
                          data, "--js-replicas=3", "--bcrypt-cost=4", "--api-rate=10000",
                          "--api-burst=10000", "--workers=4", "--db-pool=4", NULL};
    const char *env[] = {"WARDEN_ADMIN_USERNAME=root", "WARDEN_ADMIN_EMAIL=root@example.com",
                         "WARDEN_ADMIN_PASSWORD=rehearsal password 1", NULL};
    p->pid = wd_h_spawn(argv, env, p->log);
    if (p->pid < 0 || !wd_h_wait_port(p->port, 20000))
        return false;
    /* Ready when its bus and database are (readyz). */
    return WD_H_WAIT(wd_h_http(p->port, "GET", "/readyz", NULL, NULL, NULL, NULL) == 200, 20000);
}

static bool start_gateway(int i)
{
    proc *p = &gws[i];
    const char *d = wd_h_tmpdir("ws");
    snprintf(p->log, sizeof p->log, "%s/ws.log", d);
    char pf[620], pfile[600], nu[600], creds[700], key[700], tls[720];
    snprintf(pfile, sizeof pfile, "%s/port", d);
    snprintf(pf, sizeof pf, "--port-file=%s", pfile);
    snprintf(nu, sizeof nu, "--nats-url=%s", urls_from(i + 1));
    snprintf(creds, sizeof creds, "--nats-creds=%s/ws.creds", chain);
    snprintf(key, sizeof key, "--token-pubkey=%s/ws.pub", api_data);
    snprintf(tls, sizeof tls, "--nats-tls-ca=%s", ca);
    const char *argv[] = {wd_h_bin("panel-ws/warden-ws"), "--listen=127.0.0.1:0", pf, nu, creds,
                          key, tls, NULL};
    p->pid = wd_h_spawn(argv, NULL, p->log);
    if (p->pid < 0 || (p->port = wd_h_read_port_file(pfile, 10000)) <= 0)
        return false;
    return WD_H_WAIT(wd_h_http(p->port, "GET", "/healthz", NULL, NULL, NULL, NULL) == 200, 15000);
}

/* Games run under shims that outlive their agent by design: whatever
 * happens to the test, none outlives the test. */
static void kill_games(void *dir)
{
    wd_fx_kill_matching(dir, true);
}

static bool start_agent(int i, const char *join)
{
    proc *p = &agents[i];
    const char *d = wd_h_tmpdir("agent");
    wd_h_at_cleanup(kill_games, (void *)d);
    snprintf(p->log, sizeof p->log, "%s/agent.log", d);
    char data[620], nu[600], tls[720], j[2100];
    snprintf(data, sizeof data, "--data-dir=%s/data", d);
    snprintf(nu, sizeof nu, "--nats-url=%s", urls_from(i));
    snprintf(tls, sizeof tls, "--nats-tls-ca=%s", ca);
    snprintf(j, sizeof j, "--join=%s", join);
    const char *argv[] = {wd_h_bin("agent/warden-agent"), data, nu, tls, j, "--heartbeat=1",
                          "--stop-servers-on-exit", NULL};
    p->pid = wd_h_spawn(argv, NULL, p->log);
    return p->pid > 0;
}

/* ---- REST through whichever API is alive --------------------------------- */

static int alive_api(int prefer)
{
    for (int k = 0; k < NAPI; k++) {
        int i = (prefer + k) % NAPI;
        if (apis[i].pid > 0)
            return i;
    }
    return -1;
}

/* One call to API i (no retry). */
static int call_on(int i, const char *method, const char *path, const char *body, json_t **out)
{
    char hdr[4300] = "", *text = NULL;
    if (token)
        snprintf(hdr, sizeof hdr, "Authorization: Bearer %s\r\n", token);
    int st = wd_h_http(apis[i].port, method, path, hdr, body, NULL, &text);
    if (out)
        *out = text && *text ? json_loads(text, 0, NULL) : NULL;
    free(text);
    return st;
}

/* What a client behind a load balancer sees: no answer or a 5xx is tried
 * again on the next instance, for up to 10 s. Returns the final status. */
static int call(int prefer, const char *method, const char *path, const char *body, json_t **out)
{
    int st = -1;
    int64_t end = wd_mono_ms() + 10000;
    for (int k = 0; wd_mono_ms() < end; k++) {
        int i = alive_api(prefer + k);
        if (i < 0)
            return -1;
        if (out)
            *out = NULL;
        st = call_on(i, method, path, body, out);
        if (st >= 200 && st < 500)
            return st;
        if (out) {
            json_decref(*out);
            *out = NULL;
        }
        usleep(100000);
    }
    return st;
}

static bool wait_state(int s, const char *state, int timeout_ms)
{
    char path[128];
    snprintf(path, sizeof path, "/api/v1/servers/%s", server_id[s]);
    for (int t = 0; t <= timeout_ms; t += 200) {
        json_t *j = NULL;
        bool ok = call(t / 200, "GET", path, NULL, &j) == 200 &&
                  json_is_true(json_object_get(j, "installed")) &&
                  strcmp(json_string_value(json_object_get(j, "state")) ?: "", state) == 0;
        json_decref(j);
        if (ok)
            return true;
        usleep(200000);
    }
    return false;
}

static bool node_online(int n, int timeout_ms)
{
    char path[128];
    snprintf(path, sizeof path, "/api/v1/nodes/%s", node_id[n]);
    for (int t = 0; t <= timeout_ms; t += 200) {
        json_t *j = NULL;
        bool ok = call(0, "GET", path, NULL, &j) == 200 &&
                  json_is_true(json_object_get(j, "online"));
        json_decref(j);
        if (ok)
            return true;
        usleep(200000);
    }
    return false;
}

/* When a state never reaches the database: what the API says now and the
 * last lines of the agent's and the surviving API's logs (the temp dirs
 * are gone after the run). */
static void show_state_trail(int s)
{
    char path[128];
    snprintf(path, sizeof path, "/api/v1/servers/%s", server_id[s]);
    json_t *j = NULL;
    int st = call(1, "GET", path, NULL, &j);
    char *d = j ? json_dumps(j, JSON_COMPACT) : NULL;
    fprintf(stderr, "server %d: GET -> %d %.400s\n", s, st, d ? d : "");
    free(d);
    json_decref(j);
    const char *logs[] = {agents[s].log, apis[1].log};
    for (size_t i = 0; i < 2; i++) {
        char *text = NULL;
        if (wd_read_file(logs[i], 64 << 20, &text, NULL) != WD_OK)
            continue;
        size_t len = strlen(text), from = len > 3000 ? len - 3000 : 0;
        fprintf(stderr, "--- tail of %s\n%s\n", logs[i], text + from);
        free(text);
    }
}

/* ---- WebSocket clients ---------------------------------------------------- */

/* An authenticated console socket on gateway g for server s. */
static wsc *watch(int g, int s)
{
    char path[128], wspath[128];
    snprintf(path, sizeof path, "/api/v1/servers/%s/websocket", server_id[s]);
    snprintf(wspath, sizeof wspath, "/ws/%s", server_id[s]);
    json_t *j = NULL;
    if (call(g, "GET", path, NULL, &j) != 200) {
        json_decref(j);
        return NULL;
    }
    wsc *c = wsc_connect(gws[g].port, wspath, NULL, NULL);
    if (c)
        wsc_send_event(c, "auth", json_string_value(json_object_get(j, "token")));
    json_decref(j);
    if (c && wsc_wait(c, "auth success", NULL, 5000) == NULL) {
        wsc_free(c);
        c = NULL;
    }
    return c;
}

/* The first acknowledged command of server s missing from its console
 * history as the gateway serves it now, or -1 when every one is there. */
static int history_missing(wsc *h, int s, const bool *acked)
{
    wsc_send_event(h, "send logs", NULL);
    for (int k = s; k < ROUNDS; k += NAGENT) {
        char want[64];
        snprintf(want, sizeof want, "rehearsal-line-%d", k);
        if (acked[k] && wsc_peek(h, "console output", want, k == s ? 5000 : 500) == NULL) {
            if (wsc_wait(h, "error", "send logs", 0))
                fprintf(stderr, "rehearsal: console history of server %d not served\n", s);
            return k;
        }
    }
    return -1;
}

/* The history is complete once the agents have re-sent what the stream
 * did not take while it elected a new leader (they back off for up to a
 * minute): ask again, as a client would, until it is, for 90 s. */
static bool history_complete(wsc *h, int s, const bool *acked)
{
    int64_t end = wd_mono_ms() + 90000;
    int missing = -1;
    while ((missing = history_missing(h, s, acked)) >= 0 && wd_mono_ms() < end)
        sleep(2);
    if (missing >= 0) {
        fprintf(stderr, "server %d: acknowledged command %d not in the console history\n", s,
                missing);
        for (size_t i = 0; i < wsc_count(h) && i < 40; i++) {
            char *d = json_dumps(wsc_msg(h, i), JSON_COMPACT);
            fprintf(stderr, "  got: %.300s\n", d ? d : "?");
            free(d);
        }
    }
    return missing < 0;
}

/* ---- suite ----------------------------------------------------------------- */

static int suite_init(void)
{
    const char *d = wd_h_tmpdir("scale");
    char log[700], dir[700];
    snprintf(chain, sizeof chain, "%.480s/chain", d);
    snprintf(api_data, sizeof api_data, "%.480s/api-data", d);
    snprintf(log, sizeof log, "%s/nats-init.log", d);
    snprintf(dir, sizeof dir, "--dir=%s", chain);
    const char *init[] = {wd_h_bin("panel-api/warden-api"), "nats", "init", dir, NULL};
    if (!run_tool(init, log))
        return 1;
    const char *certs = wd_h_tls_certs();
    if (certs == NULL)
        return 1;
    snprintf(ca, sizeof ca, "%s/ca.pem", certs);
    snprintf(nats[0].auth_conf, sizeof nats[0].auth_conf, "%s/auth.conf", chain);
    snprintf(nats[0].tls_dir, sizeof nats[0].tls_dir, "%s", certs);
    if (!wd_h_pg_start(&pg) || !wd_h_nats_cluster(nats, NNATS))
        return 1;
    /* The first API creates the keys (and the first admin); the second
     * one shares its data directory, as replicas share a Secret. */
    if (!start_api(0) || !start_api(1)) {
        fprintf(stderr, "warden-api did not become ready; see %s and %s\n", apis[0].log,
                apis[1].log);
        return 1;
    }
    for (int i = 0; i < NWS; i++)
        if (!start_gateway(i)) {
            fprintf(stderr, "warden-ws did not start; see %s\n", gws[i].log);
            return 1;
        }
    json_t *j = NULL;
    if (call(0, "POST", "/api/v1/auth/login",
             "{\"username\":\"root\",\"password\":\"rehearsal password 1\"}", &j) != 200) {
        json_decref(j);
        return 1;
    }
    token = strdup(json_string_value(json_object_get(j, "access_token")));
    json_decref(j);
    return 0;
}

static int suite_clean(void)
{
    for (int i = 0; i < NAGENT; i++)
        if (agents[i].pid > 0)
            wd_h_stop(agents[i].pid, SIGTERM, 10000);
    for (int i = 0; i < NWS; i++)
        if (gws[i].pid > 0)
            wd_h_stop(gws[i].pid, SIGTERM, 10000);
    for (int i = 0; i < NAPI; i++)
        if (apis[i].pid > 0)
            wd_h_stop(apis[i].pid, SIGTERM, 10000);
    for (int i = 0; i < NNATS; i++)
        wd_h_nats_stop(&nats[i]);
    wd_h_pg_stop(&pg);
    free(token);
    return 0;
}

/* Three nodes join through different APIs and NATS servers; one test game
 * server each, installed and running. */
static void test_fleet_up(void)
{
    char tpath[512], *tpl = NULL;
    snprintf(tpath, sizeof tpath, "%s/templates/testgame.json", WARDEN_SOURCE_DIR);
    CU_ASSERT_EQUAL_FATAL(wd_read_file(tpath, 1 << 20, &tpl, NULL), WD_OK);
    json_t *j = NULL;
    CU_ASSERT_EQUAL_FATAL(call(1, "POST", "/api/v1/templates", tpl, &j), 201);
    char *tid = strdup(json_string_value(json_object_get(j, "id")));
    json_decref(j);
    free(tpl);

    for (int n = 0; n < NAGENT; n++) {
        char body[512], path[160];
        snprintf(body, sizeof body,
                 "{\"name\":\"game-%d\",\"fqdn\":\"127.0.0.1\",\"memory_mb\":4096,"
                 "\"disk_mb\":10000}",
                 n + 1);
        CU_ASSERT_EQUAL_FATAL(call(n, "POST", "/api/v1/nodes", body, &j), 201);
        snprintf(node_id[n], sizeof node_id[n], "%s",
                 json_string_value(json_object_get(json_object_get(j, "node"), "id")));
        CU_ASSERT_FATAL(start_agent(n, json_string_value(json_object_get(j, "join_token"))));
        json_decref(j);
        snprintf(path, sizeof path, "/api/v1/nodes/%s/allocations", node_id[n]);
        snprintf(body, sizeof body, "{\"ip\":\"127.0.0.1\",\"ports\":[%d]}", wd_h_free_port());
        CU_ASSERT_EQUAL(call(n, "POST", path, body, NULL), 201);
    }
    for (int n = 0; n < NAGENT; n++) {
        if (!node_online(n, 20000))
            fprintf(stderr, "node %d never came online; see %s\n", n, agents[n].log);
        CU_ASSERT_FATAL(node_online(n, 100));
    }
    for (int s = 0; s < NAGENT; s++) {
        char body[512], path[200];
        snprintf(body, sizeof body,
                 "{\"name\":\"rehearsal-%d\",\"node_id\":\"%s\",\"template_id\":\"%s\","
                 "\"limits\":{\"memory_mb\":256,\"pids\":128},"
                 "\"variables\":{\"READY_DELAY_MS\":\"0\"}}",
                 s, node_id[s], tid);
        CU_ASSERT_EQUAL_FATAL(call(s, "POST", "/api/v1/servers", body, &j), 201);
        snprintf(server_id[s], sizeof server_id[s], "%s",
                 json_string_value(json_object_get(j, "id")));
        json_decref(j);
        snprintf(path, sizeof path, "/api/v1/servers/%s/install", server_id[s]);
        CU_ASSERT_EQUAL(call(s, "POST", path, NULL, NULL), 202);
    }
    for (int s = 0; s < NAGENT; s++) {
        char path[200];
        CU_ASSERT_FATAL(wait_state(s, "offline", 30000));
        snprintf(path, sizeof path, "/api/v1/servers/%s/power", server_id[s]);
        CU_ASSERT_EQUAL(call(s, "POST", path, "{\"action\":\"start\"}", NULL), 202);
    }
    for (int s = 0; s < NAGENT; s++)
        CU_ASSERT_FATAL(wait_state(s, "running", 30000));
    free(tid);
}

/* The NATS server leading the console stream (its monitoring endpoint
 * says), so that killing it makes the stream elect a new leader: the
 * hardest moment for what is being published. -1 if none is known. */
static int console_leader(void)
{
    for (int i = 0; i < NNATS; i++) {
        char *body = NULL;
        if (wd_h_http(nats[i].http_port, "GET", "/jsz?accounts=true&streams=true", NULL, NULL,
                      NULL, &body) != 200) {
            free(body);
            continue;
        }
        json_error_t jerr;
        /* (its counters include 2^64-1, too big for a json_int_t) */
        json_t *j = json_loads(body, JSON_DECODE_INT_AS_REAL, &jerr), *acct, *st;
        if (j == NULL)
            fprintf(stderr, "jsz of %s: %s (%.80s)\n", nats[i].name, jerr.text, body);
        free(body);
        size_t ai, si;
        const char *leader = NULL;
        json_array_foreach(json_object_get(j, "account_details"), ai, acct)
            json_array_foreach(json_object_get(acct, "stream_detail"), si, st)
                if (strcmp(json_string_value(json_object_get(st, "name")) ?: "",
                           "WARDEN_CONSOLE") == 0)
                    leader = json_string_value(
                        json_object_get(json_object_get(st, "cluster"), "leader"));
        int found = -1;
        for (int k = 0; leader && k < NNATS; k++)
            if (strcmp(nats[k].name, leader) == 0)
                found = k;
        json_decref(j);
        if (found >= 0)
            return found;
    }
    return -1;
}

static int victim; /* the NATS server to kill */

/* Kills one NATS server, one API and one gateway at once, without
 * warning, while the client is in the middle of its requests. */
static void *killer(void *arg)
{
    (void)arg;
    usleep(3000);
    kill(nats[victim].pid, SIGKILL);
    kill(apis[0].pid, SIGKILL);
    kill(gws[0].pid, SIGKILL);
    return NULL;
}

static void test_failover(void)
{
    /* Sockets: server 0 watched through gateway 0 (to be killed) and
     * server 1 through gateway 1 (survives). */
    wsc *w0 = watch(0, 0), *w1 = watch(1, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w1);

    bool acked[ROUNDS] = {false};
    int nacked = 0, retried = 0;
    victim = console_leader();
    CU_ASSERT(victim >= 0);
    if (victim < 0)
        victim = 0;
    fprintf(stderr, "rehearsal: killing %s, the console stream's leader\n", nats[victim].name);
    pthread_t kt;
    for (int k = 0; k < ROUNDS; k++) {
        if (k == KILL_AT)
            CU_ASSERT_EQUAL_FATAL(pthread_create(&kt, NULL, killer, NULL), 0);
        int s = k % NAGENT;
        char path[200], body[128];
        snprintf(path, sizeof path, "/api/v1/servers/%s/command", server_id[s]);
        snprintf(body, sizeof body, "{\"command\":\"echo rehearsal-line-%d\"}", k);
        /* Alternate the APIs as a load balancer would, dead or not; a
         * refused connection or a 5xx is sent again to the other one. */
        int first = k % NAPI;
        int st = call_on(first, "POST", path, body, NULL);
        if (st != 204) {
            retried++;
            st = call(first + 1, "POST", path, body, NULL);
        }
        acked[k] = st == 204;
        nacked += acked[k];
        usleep(30000);
    }
    pthread_join(kt, NULL);
    wd_h_wait_exit(nats[victim].pid, 5000);
    wd_h_wait_exit(apis[0].pid, 5000);
    wd_h_wait_exit(gws[0].pid, 5000);
    nats[victim].pid = apis[0].pid = gws[0].pid = 0;
    fprintf(stderr, "rehearsal: %d of %d commands acknowledged, %d sent again after a failure\n",
            nacked, ROUNDS, retried);
    /* Half the requests went to the dead API after the kill. */
    CU_ASSERT(retried >= (ROUNDS - KILL_AT) / 2 - 1);
    /* Every command is acknowledged in the end: the survivors carry on. */
    CU_ASSERT_EQUAL(nacked, ROUNDS);

    /* The socket on the surviving gateway saw the live lines of its server
     * from both sides of the failure, without a reconnect. */
    CU_ASSERT_FALSE(wsc_closed(w1));
    for (int k = 1; k < ROUNDS; k += NAGENT) {
        char want[64];
        snprintf(want, sizeof want, "rehearsal-line-%d", k);
        if (acked[k] && wsc_wait(w1, "console output", want, 10000) == NULL) {
            fprintf(stderr, "gateway 1 socket: no %s\n", want);
            CU_FAIL("a live line missing on the surviving gateway");
        }
    }
    /* The socket on the dead gateway is gone; the client reconnects to the
     * survivor with a fresh token and gets history then live output. */
    CU_ASSERT_NOT_EQUAL(wsc_wait_close(w0, 5000, NULL, 0), -1);
    wsc_free(w0);
    w0 = watch(1, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w0);

    /* No acknowledged command lost: every one is in its server's console
     * history (JetStream, replicated to the surviving NATS servers). */
    for (int s = 0; s < NAGENT; s++) {
        wsc *h = s == 0 ? w0 : watch(1, s);
        CU_ASSERT_PTR_NOT_NULL_FATAL(h);
        if (!history_complete(h, s, acked))
            CU_FAIL("an acknowledged command is missing from the console history");
        /* Live output keeps coming through the survivor. */
        char path[200];
        snprintf(path, sizeof path, "/api/v1/servers/%s/command", server_id[s]);
        CU_ASSERT_EQUAL(call(1, "POST", path, "{\"command\":\"echo after-the-storm\"}", NULL),
                        204);
        CU_ASSERT_PTR_NOT_NULL(wsc_wait(h, "console output", "after-the-storm", 10000));
        if (h != w0)
            wsc_free(h);
    }

    /* Power still works, and its state change (a JetStream event the
     * surviving API consumes) reaches the database. */
    char path[200];
    snprintf(path, sizeof path, "/api/v1/servers/%s/power", server_id[2]);
    CU_ASSERT_EQUAL(call(1, "POST", path, "{\"action\":\"restart\"}", NULL), 202);
    if (!wait_state(2, "running", 30000)) {
        CU_FAIL("restart did not reach the database");
        show_state_trail(2);
    }
    CU_ASSERT_EQUAL(call(1, "POST", path, "{\"action\":\"stop\"}", NULL), 202);
    if (!wait_state(2, "offline", 30000)) {
        CU_FAIL("stop did not reach the database");
        show_state_trail(2);
    }

    /* Every node is still online (heartbeats through the survivors) and
     * logins work on the surviving API. */
    for (int n = 0; n < NAGENT; n++)
        CU_ASSERT(node_online(n, 5000));
    json_t *j = NULL;
    CU_ASSERT_EQUAL(call(1, "POST", "/api/v1/auth/login",
                         "{\"username\":\"root\",\"password\":\"rehearsal password 1\"}", &j),
                    200);
    json_decref(j);
    wsc_free(w0);
    wsc_free(w1);
}

/* A sanitizer report in a log: "ERROR: AddressSanitizer", "runtime error:". */
static bool log_clean(const char *path)
{
    char *text = NULL;
    if (wd_read_file(path, 64 << 20, &text, NULL) != WD_OK)
        return true; /* never written: nothing to report */
    bool clean = !strstr(text, "ERROR: AddressSanitizer") && !strstr(text, "runtime error:") &&
                 !strstr(text, "ERROR: LeakSanitizer");
    if (!clean)
        fprintf(stderr, "sanitizer report in %s\n", path);
    free(text);
    return clean;
}

/* The survivors stop cleanly (exit 0) and nothing, the killed ones
 * included, left a sanitizer report. */
static void test_clean_exit(void)
{
    proc *all[] = {&agents[0], &agents[1], &agents[2], &gws[1], &apis[1], &gws[0], &apis[0]};
    char data[700];
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        proc *p = all[i];
        if (p->pid > 0) {
            int st = wd_h_stop(p->pid, SIGTERM, 15000);
            p->pid = 0;
            if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
                fprintf(stderr, "%s: not a clean exit (status %d)\n", p->log, st);
            CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        }
        CU_ASSERT(log_clean(p->log));
    }
    /* The agents stopped their games on the way out. */
    for (int i = 0; i < NAGENT; i++) {
        snprintf(data, sizeof data, "%.*s", (int)(strrchr(agents[i].log, '/') - agents[i].log),
                 agents[i].log);
        CU_ASSERT(WD_H_WAIT(wd_fx_kill_matching(data, false) == 0, 5000));
    }
}

int main(void)
{
    static const wd_h_case cases[] = {
        {"3 nodes join through 2 APIs on a 3-server NATS cluster with TLS", test_fleet_up},
        {"one NATS server, one API and one gateway die: nothing acknowledged is lost",
         test_failover},
        {"the survivors exit cleanly; no sanitizer reports", test_clean_exit},
        {NULL, NULL}};
    wd_h_suite("scale-out rehearsal", suite_init, suite_clean, cases);
    return wd_h_run();
}
