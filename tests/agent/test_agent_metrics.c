/* Integration tests of warden-agent's own /healthz and /metrics
 * (agent/metrics.c): a real nats-server and agent, the endpoint on a port
 * the agent picks on 127.0.0.1 and reports in its metrics port file. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent_fixture.h"
#include "util.h"

#define ACT(x) WARDEN__V1__POWER_REQUEST__ACTION__##x
#define ST(x) WARDEN__V1__SERVER_STATE__SERVER_STATE_##x

static wd_fx fx;
static int port;

static int suite_init(void)
{
    static char port_file[600];
    snprintf(port_file, sizeof port_file, "%s/metrics.port", wd_h_tmpdir("agent-metrics"));
    /* wd_fx_start resets the fixture (extra_env included) before it spawns
     * the agent, which inherits this environment. */
    setenv("WARDEN_AGENT_METRICS_LISTEN", "127.0.0.1:0", 1);
    setenv("WARDEN_AGENT_METRICS_PORT_FILE", port_file, 1);
    bool ok = wd_fx_start(&fx);
    unsetenv("WARDEN_AGENT_METRICS_LISTEN");
    unsetenv("WARDEN_AGENT_METRICS_PORT_FILE");
    if (!ok || !wd_h_wait_file(port_file, 5000))
        return 1;
    char *text = NULL;
    long p = 0;
    if (wd_read_file(port_file, 64, &text, NULL) != WD_OK)
        return 1;
    text[strcspn(text, "\r\n")] = '\0';
    ok = wd_parse_long(text, 1, 65535, &p);
    free(text);
    port = (int)p;
    return ok ? 0 : 1;
}

static int suite_clean(void)
{
    wd_fx_stop(&fx);
    return 0;
}

/* GET path; the status, with the body in *body (caller frees) if asked. */
static int get(const char *path, char **body)
{
    return wd_h_http(port, "GET", path, NULL, NULL, NULL, body);
}

/* The value of the sample whose line starts with "series " (e.g.
 * `warden_agent_servers{state="running"}`), or -1 if absent. */
static double sample(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    }
    return -1;
}

static double scrape(const char *series)
{
    char *body = NULL;
    double v = -1;
    if (get("/metrics", &body) == 200 && body)
        v = sample(body, series);
    free(body);
    return v;
}

static void test_healthz(void)
{
    char *body = NULL;
    CU_ASSERT_EQUAL(get("/healthz", &body), 200);
    CU_ASSERT_PTR_NOT_NULL_FATAL(body);
    CU_ASSERT_STRING_EQUAL(body, "ok\n");
    free(body);
}

static void test_metrics_page(void)
{
    char *hdrs = NULL, *body = NULL;
    CU_ASSERT_EQUAL(wd_h_http(port, "GET", "/metrics", NULL, NULL, &hdrs, &body), 200);
    CU_ASSERT_PTR_NOT_NULL_FATAL(hdrs);
    CU_ASSERT_PTR_NOT_NULL_FATAL(body);
    CU_ASSERT_PTR_NOT_NULL(strstr(hdrs, "version=0.0.4"));
    CU_ASSERT_EQUAL(sample(body, "warden_agent_up"), 1);
    CU_ASSERT_EQUAL(sample(body, "warden_agent_nats_connected"), 1);
    CU_ASSERT(sample(body, "warden_agent_uptime_seconds") > 0);
    char info[200];
    snprintf(info, sizeof info, "warden_agent_info{node_id=\"%s\",version=\"%s\"}", fx.node_id,
             WARDEN_VERSION);
    CU_ASSERT_EQUAL(sample(body, info), 1);
    CU_ASSERT_EQUAL(sample(body, "warden_agent_servers{state=\"running\"}"), 0);
    CU_ASSERT_EQUAL(sample(body, "warden_agent_servers{state=\"offline\"}"), 0);
    /* Every metric family has its HELP and TYPE. */
    const char *families[] = {"warden_agent_up",
                              "warden_agent_info",
                              "warden_agent_uptime_seconds",
                              "warden_agent_nats_connected",
                              "warden_agent_servers",
                              "warden_agent_requests_total",
                              "warden_agent_requests_refused_total"};
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++) {
        char line[160];
        snprintf(line, sizeof line, "# HELP %s ", families[i]);
        CU_ASSERT_PTR_NOT_NULL(strstr(body, line));
        snprintf(line, sizeof line, "# TYPE %s ", families[i]);
        CU_ASSERT_PTR_NOT_NULL(strstr(body, line));
    }
    free(hdrs);
    free(body);
}

static void test_servers_and_requests(void)
{
    double before = scrape("warden_agent_requests_total");
    CU_ASSERT(before >= 0);
    char id[37];
    const char *vars[] = {"GREETING=metrics", NULL};
    CU_ASSERT_EQUAL_FATAL(wd_fx_create(&fx, wd_fx_template("testgame"), vars, id), WD_OK);
    wd_watch *w = wd_watch_start(&fx, id);
    Warden__V1__InstallRequest ir = WARDEN__V1__INSTALL_REQUEST__INIT;
    CU_ASSERT_EQUAL_FATAL(
        wd_fx_request(&fx, id, "install", &ir.base, &warden__v1__ack__descriptor, NULL), WD_OK);
    CU_ASSERT_FATAL(wd_watch_wait_state(w, ST(OFFLINE), 20000));
    CU_ASSERT(WD_H_WAIT(scrape("warden_agent_servers{state=\"offline\"}") == 1, 3000));
    CU_ASSERT_EQUAL(wd_fx_power(&fx, id, ACT(START)), WD_OK);
    CU_ASSERT_FATAL(wd_watch_wait_state(w, ST(RUNNING), 10000));
    CU_ASSERT(WD_H_WAIT(scrape("warden_agent_servers{state=\"running\"}") == 1, 3000));
    CU_ASSERT_EQUAL(scrape("warden_agent_servers{state=\"offline\"}"), 0);
    /* sync, install, power: three requests at least. */
    CU_ASSERT(scrape("warden_agent_requests_total") >= before + 3);
    /* A server this node does not have: answered by the router. */
    char other[37];
    wd_uuid_new(other);
    double nf = scrape("warden_agent_requests_refused_total{reason=\"not_found\"}");
    CU_ASSERT_EQUAL(wd_fx_info(&fx, other, NULL, NULL), WD_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(scrape("warden_agent_requests_refused_total{reason=\"not_found\"}"), nf + 1);
    CU_ASSERT_EQUAL(wd_fx_power(&fx, id, ACT(STOP)), WD_OK);
    CU_ASSERT(wd_watch_wait_state(w, ST(OFFLINE), 10000));
    CU_ASSERT(WD_H_WAIT(scrape("warden_agent_servers{state=\"running\"}") == 0, 3000));
    wd_watch_free(w);
}

static void test_not_found_and_method(void)
{
    char *hdrs = NULL;
    CU_ASSERT_EQUAL(get("/nope", NULL), 404);
    CU_ASSERT_EQUAL(get("/", NULL), 404);
    CU_ASSERT_EQUAL(get("/metrics/x", NULL), 404);
    CU_ASSERT_EQUAL(wd_h_http(port, "POST", "/metrics", NULL, "x=1", &hdrs, NULL), 405);
    CU_ASSERT_PTR_NOT_NULL(hdrs);
    if (hdrs)
        CU_ASSERT_PTR_NOT_NULL(strstr(hdrs, "GET"));
    free(hdrs);
    CU_ASSERT_EQUAL(wd_h_http(port, "POST", "/healthz", NULL, NULL, NULL, NULL), 405);
    CU_ASSERT_EQUAL(wd_h_http(port, "DELETE", "/healthz", NULL, NULL, NULL, NULL), 405);
    /* The endpoint still answers afterwards. */
    CU_ASSERT_EQUAL(get("/healthz", NULL), 200);
}

static void test_nats_outage(void)
{
    wd_h_nats_stop(&fx.nats);
    CU_ASSERT(WD_H_WAIT(get("/healthz", NULL) == 503, 5000));
    char *body = NULL;
    CU_ASSERT_EQUAL(get("/healthz", &body), 503);
    if (body)
        CU_ASSERT_STRING_EQUAL(body, "nats disconnected\n");
    free(body);
    CU_ASSERT_EQUAL(scrape("warden_agent_nats_connected"), 0);
    CU_ASSERT_EQUAL(scrape("warden_agent_up"), 1);
    CU_ASSERT_FATAL(wd_h_nats_start(&fx.nats));
    CU_ASSERT(WD_H_WAIT(get("/healthz", NULL) == 200, 15000));
    CU_ASSERT_EQUAL(scrape("warden_agent_nats_connected"), 1);
}

static void test_clean_exit(void)
{
    CU_ASSERT(wd_fx_agent_clean_exit(&fx));
    CU_ASSERT_EQUAL(get("/healthz", NULL), -1); /* the listener is gone */
}

int main(void)
{
    static const wd_h_case cases[] = {
        {"/healthz answers ok while the agent is connected", test_healthz},
        {"/metrics is Prometheus text with the agent's series", test_metrics_page},
        {"server states and request counters follow the registry", test_servers_and_requests},
        {"unknown paths get 404, other methods 405", test_not_found_and_method},
        {"NATS down: /healthz 503 and nats_connected 0; back: 200", test_nats_outage},
        {"the agent exits cleanly with the endpoint on; no sanitizer reports", test_clean_exit},
        {NULL, NULL}};
    wd_h_suite("agent_metrics", suite_init, suite_clean, cases);
    return wd_h_run();
}
