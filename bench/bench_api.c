/* warden-api benchmarks: a private PostgreSQL, nats-server, warden-api and
 * one warden-agent with a running test game, all on loopback. Prints:
 *
 *   1. GET /api/v1/servers (authenticated, 50 servers) with wrk at 64 and
 *      512 connections: requests/s and latency percentiles
 *   2. login cost (bcrypt at the default cost 12), p50/p99
 *   3. power round trip (API -> NATS -> agent -> back), p50/p99
 *   4. console command round trip through the API, p50/p99
 *
 * Figures, not pass/fail; see docs/benchmarks.md. */
#include <jansson.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app.h"
#include "harness.h"
#include "log.h"
#include "pg.h"
#include "util.h"

static wd_h_pg pg;
static wd_h_nats nats;
static wd_api *api;
static int port;
static char token[4200];

static int call(const char *method, const char *path, const char *body, json_t **out)
{
    char hdr[4300];
    snprintf(hdr, sizeof hdr, "Authorization: Bearer %s\r\n", token);
    char *text = NULL;
    int st = wd_h_http(port, method, path, token[0] ? hdr : NULL, body, NULL, &text);
    if (out)
        *out = text && *text ? json_loads(text, 0, NULL) : NULL;
    free(text);
    return st;
}

static int cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *what, int64_t *us, int n)
{
    qsort(us, (size_t)n, sizeof *us, cmp);
    printf("%-44s n=%-4d p50=%8.1f us  p99=%8.1f us\n", what, n, (double)us[n / 2],
           (double)us[(int)(n * 0.99)]);
}

static void wrk(int conns)
{
    char cmd[6000];
    snprintf(cmd, sizeof cmd,
             "wrk -t2 -c%d -d5s --latency -H 'Authorization: Bearer %s' "
             "http://127.0.0.1:%d/api/v1/servers 2>&1 | grep -E 'Requests/sec|Latency|50%%|99%%|"
             "Non-2xx|Socket errors'",
             conns, token, port);
    printf("GET /api/v1/servers, %d connections (wrk, 5 s):\n", conns);
    fflush(stdout);
    if (system(cmd) != 0)
        printf("  (wrk failed: is it installed?)\n");
}

int main(void)
{
    if (!wd_h_pg_start(&pg) || !wd_h_nats_start(&nats)) {
        fprintf(stderr, "bench: could not start PostgreSQL and nats-server\n");
        return 1;
    }
    wd_log_set_level(WD_LOG_WARN);
    static wd_api_cfg cfg;
    cfg.database_url = pg.conninfo;
    cfg.nats_url = nats.url;
    cfg.data_dir = (char *)wd_h_tmpdir("bench-api");
    cfg.issuer = (char *)"warden";
    cfg.access_ttl_s = 3600;
    cfg.refresh_ttl_s = 3600;
    cfg.bcrypt_cost = 12;
    cfg.workers = 16;
    cfg.db_pool = 8;
    cfg.api_rate = 1000000;
    cfg.api_burst = 1000000;
    if (wd_api_create(&api, &cfg) != WD_OK || wd_api_start(api) != WD_OK ||
        wd_api_create_user(api, "bench", "bench@example.com", "admin", "bench password 1", NULL,
                           0, NULL) != WD_OK) {
        fprintf(stderr, "bench: api: %s\n", wd_err_msg());
        return 1;
    }
    port = wd_api_port(api);
    printf("warden-api benchmarks (loopback, %ld cores)\n", sysconf(_SC_NPROCESSORS_ONLN));

    /* Login cost. */
    enum { NLOGIN = 20 };
    int64_t us[NLOGIN];
    json_t *j = NULL;
    for (int i = 0; i < NLOGIN; i++) {
        int64_t t0 = wd_mono_us();
        call("POST", "/api/v1/auth/login",
             "{\"username\":\"bench\",\"password\":\"bench password 1\"}", &j);
        us[i] = wd_mono_us() - t0;
        if (i == NLOGIN - 1)
            snprintf(token, sizeof token, "%s",
                     json_string_value(json_object_get(j, "access_token")) ?: "");
        json_decref(j);
    }
    report("login (bcrypt cost 12)", us, NLOGIN);

    /* A node with an agent, a template, one running game, 49 more rows. */
    call("POST", "/api/v1/nodes",
         "{\"name\":\"bench\",\"fqdn\":\"127.0.0.1\",\"memory_mb\":100000,\"disk_mb\":100000}", &j);
    char node[40], join[128];
    snprintf(node, sizeof node, "%s",
             json_string_value(json_object_get(json_object_get(j, "node"), "id")) ?: "");
    snprintf(join, sizeof join, "%s", json_string_value(json_object_get(j, "join_token")) ?: "");
    json_decref(j);
    char path[256], body[1024];
    snprintf(path, sizeof path, "/api/v1/nodes/%s/allocations", node);
    call("POST", path, "{\"ip\":\"127.0.0.1\",\"ports\":[\"41000-41099\"]}", NULL);
    const char *dir = wd_h_tmpdir("bench-agent");
    char d[600], n[120], jt[200], log[600];
    snprintf(d, sizeof d, "--data-dir=%s/data", dir);
    snprintf(n, sizeof n, "--nats-url=%s", nats.url);
    snprintf(jt, sizeof jt, "--join=%s", join);
    snprintf(log, sizeof log, "%s/agent.log", dir);
    const char *argv[] = {wd_h_bin("agent/warden-agent"), d, n, jt, NULL};
    pid_t agent = wd_h_spawn(argv, NULL, log);
    snprintf(path, sizeof path, "%s/templates/testgame.json", WARDEN_SOURCE_DIR);
    char *tpl = NULL;
    wd_read_file(path, 1 << 20, &tpl, NULL);
    call("POST", "/api/v1/templates", tpl, &j);
    char tid[40];
    snprintf(tid, sizeof tid, "%s", json_string_value(json_object_get(j, "id")) ?: "");
    json_decref(j);
    free(tpl);
    char sid[40] = "";
    for (int i = 0; i < 50; i++) {
        snprintf(body, sizeof body,
                 "{\"name\":\"bench-%d\",\"node_id\":\"%s\",\"template_id\":\"%s\"}", i, node,
                 tid);
        for (int tries = 0; tries < 50; tries++) {
            int st = call("POST", "/api/v1/servers", body, &j);
            if (st == 201 && i == 0)
                snprintf(sid, sizeof sid, "%s", json_string_value(json_object_get(j, "id")) ?: "");
            json_decref(j);
            if (st != 503)
                break;
            usleep(100000); /* the agent is still joining */
        }
    }
    snprintf(path, sizeof path, "/api/v1/servers/%s/install", sid);
    call("POST", path, NULL, NULL);
    sleep(2);
    snprintf(path, sizeof path, "/api/v1/servers/%s/power", sid);
    call("POST", path, "{\"action\":\"start\"}", NULL);
    sleep(2);

    wrk(64);
    wrk(512);

    /* Power round trip: "start" on a running server is refused by the agent
     * (409): the full path, without changing anything. */
    enum { NRT = 300 };
    int64_t rt[NRT];
    int k = 0;
    for (int i = 0; i < NRT; i++) {
        int64_t t0 = wd_mono_us();
        int st = call("POST", path, "{\"action\":\"start\"}", NULL);
        if (st == 409 || st == 202)
            rt[k++] = wd_mono_us() - t0;
    }
    if (k)
        report("power round trip (API -> agent -> API)", rt, k);
    snprintf(path, sizeof path, "/api/v1/servers/%s/command", sid);
    k = 0;
    for (int i = 0; i < NRT; i++) {
        int64_t t0 = wd_mono_us();
        if (call("POST", path, "{\"command\":\"echo bench\"}", NULL) == 204)
            rt[k++] = wd_mono_us() - t0;
    }
    if (k)
        report("console command through the API", rt, k);

    snprintf(path, sizeof path, "/api/v1/servers/%s/power", sid);
    call("POST", path, "{\"action\":\"kill\"}", NULL);
    sleep(1);
    wd_h_stop(agent, SIGTERM, 5000);
    wd_api_destroy(&api);
    wd_h_nats_stop(&nats);
    wd_h_pg_stop(&pg);
    wd_h_stop_all();
    return 0;
}
