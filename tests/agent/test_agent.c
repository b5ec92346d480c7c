/* Integration tests of warden-agent with a real nats-server and the tiny
 * test game (templates/testgame.json): lifecycle, console, bad input,
 * crashes, agent kill -9, NATS outage. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent_fixture.h"
#include "subject.h"
#include "warden/v1/node.pb-c.h"
#include "template.h"
#include "util.h"

#define ACT(x) WARDEN__V1__POWER_REQUEST__ACTION__##x
#define ST(x) WARDEN__V1__SERVER_STATE__SERVER_STATE_##x

static wd_fx fx;

static int suite_init(void)
{
    return wd_fx_start(&fx) ? 0 : 1;
}

static int suite_clean(void)
{
    wd_fx_stop(&fx);
    return 0;
}

/* Creates and installs a test game; returns its watcher. */
static wd_watch *new_game(char id[37], const char *const *vars)
{
    CU_ASSERT_EQUAL_FATAL(wd_fx_create(&fx, wd_fx_template("testgame"), vars, id), WD_OK);
    wd_watch *w = wd_watch_start(&fx, id);
    Warden__V1__InstallRequest ir = WARDEN__V1__INSTALL_REQUEST__INIT;
    CU_ASSERT_EQUAL_FATAL(
        wd_fx_request(&fx, id, "install", &ir.base, &warden__v1__ack__descriptor, NULL), WD_OK);
    CU_ASSERT_FATAL(wd_watch_wait_state(w, ST(OFFLINE), 20000));
    return w;
}

static void start_running(const char *id, wd_watch *w)
{
    CU_ASSERT_EQUAL_FATAL(wd_fx_power(&fx, id, ACT(START)), WD_OK);
    CU_ASSERT_FATAL(wd_watch_wait_state(w, ST(RUNNING), 10000));
}

static void test_lifecycle(void)
{
    char id[37];
    const char *vars[] = {"GREETING=howdy", NULL};
    wd_watch *w = new_game(id, vars);
    Warden__V1__ServerInfo info;
    CU_ASSERT_EQUAL(wd_fx_info(&fx, id, &info, NULL), WD_OK);
    CU_ASSERT(info.installed);
    start_running(id, w);
    CU_ASSERT(wd_watch_wait_line(w, "howdy", 5000)); /* the variable reached the game */
    CU_ASSERT_EQUAL(wd_fx_send(&fx, id, "echo ping-42"), WD_OK);
    CU_ASSERT(wd_watch_wait_line(w, "ping-42", 5000));
    /* Invalid in this state: start while running. */
    CU_ASSERT_EQUAL(wd_fx_power(&fx, id, ACT(START)), WD_ERR_STATE);
    CU_ASSERT_EQUAL(wd_fx_power(&fx, id, ACT(STOP)), WD_OK);
    CU_ASSERT(wd_watch_wait_state(w, ST(OFFLINE), 10000));
    CU_ASSERT(WD_H_WAIT(!wd_fx_server_procs_alive(&fx, id), 3000));
    CU_ASSERT_EQUAL(wd_fx_send(&fx, id, "echo too late"), WD_ERR_STATE);
    CU_ASSERT_EQUAL(wd_fx_power(&fx, id, ACT(STOP)), WD_ERR_STATE);
    /* Restart from offline starts it; kill takes the whole tree. */
    start_running(id, w);
    CU_ASSERT_EQUAL(wd_fx_send(&fx, id, "spawn"), WD_OK);
    usleep(200000);
    CU_ASSERT_EQUAL(wd_fx_power(&fx, id, ACT(KILL)), WD_OK);
    CU_ASSERT(wd_watch_wait_state(w, ST(OFFLINE), 10000));
    CU_ASSERT(WD_H_WAIT(!wd_fx_server_procs_alive(&fx, id), 3000));
    Warden__V1__DeleteRequest dr = WARDEN__V1__DELETE_REQUEST__INIT;
    CU_ASSERT_EQUAL(wd_fx_request(&fx, id, "delete", &dr.base, &warden__v1__ack__descriptor, NULL),
                    WD_OK);
    CU_ASSERT_EQUAL(wd_fx_info(&fx, id, NULL, NULL), WD_ERR_NOT_FOUND);
    wd_watch_free(w);
}

static void test_bad_input(void)
{
    char id[37], unknown[37];
    wd_watch *w = new_game(id, NULL);
    const char garbage[] = "\x0a\xff\xff\xff\xff\x0f";
    const char *ops[] = {"power", "console.in", "install", "sync", "delete", "info", NULL};
    for (int i = 0; ops[i]; i++) {
        wd_status st = wd_fx_raw(&fx, id, ops[i], garbage, sizeof garbage - 1);
        if (strcmp(ops[i], "info") != 0) /* info has no fields to get wrong */
            CU_ASSERT_EQUAL(st, WD_ERR_INVALID);
    }
    /* Truncated protobuf. */
    CU_ASSERT_EQUAL(wd_fx_raw(&fx, id, "console.in", "\x0a\x10", 2), WD_ERR_INVALID);
    /* Unknown server, unknown op. */
    wd_uuid_new(unknown);
    CU_ASSERT_EQUAL(wd_fx_power(&fx, unknown, ACT(START)), WD_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(wd_fx_raw(&fx, id, "files.nope", "", 0), WD_ERR_UNSUPPORTED);
    /* Invalid variable values are refused and nothing is created. */
    char bad_id[37];
    const char *bad[] = {"READY_DELAY_MS=abc", NULL};
    CU_ASSERT_EQUAL(wd_fx_create(&fx, wd_fx_template("testgame"), bad, bad_id), WD_ERR_INVALID);
    CU_ASSERT_EQUAL(wd_fx_info(&fx, bad_id, NULL, NULL), WD_ERR_NOT_FOUND);
    const char *undeclared[] = {"NOPE=1", NULL};
    CU_ASSERT_EQUAL(wd_fx_create(&fx, wd_fx_template("testgame"), undeclared, bad_id),
                    WD_ERR_INVALID);
    /* Console lines with line breaks, or too long. */
    start_running(id, w);
    CU_ASSERT_EQUAL(wd_fx_send(&fx, id, "echo a\necho b"), WD_ERR_INVALID);
    char *big = malloc(5000);
    memset(big, 'x', 4999);
    big[4999] = '\0';
    CU_ASSERT_EQUAL(wd_fx_send(&fx, id, big), WD_ERR_INVALID);
    free(big);
    /* The agent is unharmed. */
    CU_ASSERT_EQUAL(wd_fx_send(&fx, id, "echo still-here"), WD_OK);
    CU_ASSERT(wd_watch_wait_line(w, "still-here", 5000));
    CU_ASSERT_EQUAL(wd_fx_power(&fx, id, ACT(KILL)), WD_OK);
    CU_ASSERT(wd_watch_wait_state(w, ST(OFFLINE), 10000));
    wd_watch_free(w);
}

static void test_console_flood(void)
{
    char id[37];
    wd_watch *w = new_game(id, NULL);
    start_running(id, w);
    CU_ASSERT_EQUAL(wd_fx_send(&fx, id, "flood 50000"), WD_OK);
    CU_ASSERT(WD_H_WAIT(wd_watch_count_prefix(w, "flood line") == 50000, 30000));
    CU_ASSERT_EQUAL(wd_watch_dropped(w), 0);
    CU_ASSERT_EQUAL(wd_watch_gaps(w), 0);
    /* In order. */
    pthread_mutex_lock(&w->mu);
    long expect = 1;
    bool ordered = true;
    for (size_t i = 0; i < w->nlines; i++) {
        long v;
        if (strncmp(w->lines[i], "flood line ", 11) == 0 &&
            wd_parse_long(w->lines[i] + 11, 0, 1000000, &v)) {
            ordered &= v == expect;
            expect = v + 1;
        }
    }
    pthread_mutex_unlock(&w->mu);
    CU_ASSERT(ordered);
    /* An over-long line is cut, not buffered forever. */
    CU_ASSERT_EQUAL(wd_fx_send(&fx, id, "longline 20000"), WD_OK);
    CU_ASSERT(WD_H_WAIT(wd_watch_count_prefix(w, "xxxx") >= 5, 5000));
    pthread_mutex_lock(&w->mu);
    for (size_t i = 0; i < w->nlines; i++)
        CU_ASSERT(strlen(w->lines[i]) <= 4096);
    pthread_mutex_unlock(&w->mu);
    CU_ASSERT_EQUAL(wd_fx_power(&fx, id, ACT(KILL)), WD_OK);
    CU_ASSERT(wd_watch_wait_state(w, ST(OFFLINE), 10000));
    wd_watch_free(w);
}

static void test_console_rate_limit(void)
{
    char id[37];
    Warden__V1__Limits lim = WARDEN__V1__LIMITS__INIT;
    lim.console_lines_per_second = 1000;
    CU_ASSERT_EQUAL_FATAL(wd_fx_create_ex(&fx, wd_fx_template("testgame"), NULL, &lim, id), WD_OK);
    wd_watch *w = wd_watch_start(&fx, id);
    Warden__V1__InstallRequest ir = WARDEN__V1__INSTALL_REQUEST__INIT;
    CU_ASSERT_EQUAL(wd_fx_request(&fx, id, "install", &ir.base, &warden__v1__ack__descriptor, NULL),
                    WD_OK);
    CU_ASSERT_FATAL(wd_watch_wait_state(w, ST(OFFLINE), 20000));
    start_running(id, w);
    CU_ASSERT_EQUAL(wd_fx_send(&fx, id, "flood 20000"), WD_OK);
    CU_ASSERT(wd_watch_wait_line(w, "lines are being dropped", 10000)); /* announced */
    sleep(2); /* refill the bucket so the marker gets through */
    CU_ASSERT_EQUAL(wd_fx_send(&fx, id, "echo marker-after-flood"), WD_OK);
    CU_ASSERT(wd_watch_wait_line(w, "marker-after-flood", 5000));
    /* Every line is either delivered or counted as dropped. */
    size_t got = wd_watch_count_prefix(w, "flood line");
    CU_ASSERT(got < 20000);
    CU_ASSERT(wd_watch_dropped(w) > 0);
    CU_ASSERT_EQUAL(got + wd_watch_dropped(w), 20000);
    CU_ASSERT_EQUAL(wd_watch_gaps(w), 0);
    Warden__V1__ServerInfo info;
    CU_ASSERT_EQUAL(wd_fx_info(&fx, id, &info, NULL), WD_OK);
    CU_ASSERT_EQUAL(info.console_dropped, wd_watch_dropped(w));
    CU_ASSERT_EQUAL(wd_fx_power(&fx, id, ACT(KILL)), WD_OK);
    CU_ASSERT(wd_watch_wait_state(w, ST(OFFLINE), 10000));
    wd_watch_free(w);
}

static void test_crash_restart(void)
{
    char id[37];
    wd_watch *w = new_game(id, NULL);
    start_running(id, w);
    /* The game dies by itself... */
    CU_ASSERT_EQUAL(wd_fx_send(&fx, id, "crash"), WD_OK);
    CU_ASSERT(wd_watch_wait_state(w, ST(CRASHED), 10000));
    CU_ASSERT(wd_watch_wait_state(w, ST(RUNNING), 15000)); /* restarted per policy */
    /* ...or is kill -9'd from outside. */
    uint32_t pid = 0;
    CU_ASSERT_EQUAL(wd_fx_info(&fx, id, NULL, &pid), WD_OK);
    CU_ASSERT(pid > 0);
    pid_t game = wd_fx_find_proc(id, "game.sh");
    CU_ASSERT_FATAL(game > 0);
    CU_ASSERT_EQUAL(kill(game, SIGKILL), 0);
    CU_ASSERT(wd_watch_wait_state(w, ST(CRASHED), 10000));
    CU_ASSERT(wd_watch_wait_state(w, ST(RUNNING), 15000));
    CU_ASSERT_EQUAL(wd_fx_power(&fx, id, ACT(STOP)), WD_OK);
    CU_ASSERT(wd_watch_wait_state(w, ST(OFFLINE), 10000));
    wd_watch_free(w);
}

static void test_crash_loop(void)
{
    /* A game that dies right after it is ready, every time. */
    const char *tpl = wd_h_write_tmp(
        "crasher.json", "{\"format\":\"warden/v1\",\"id\":\"crasher\",\"name\":\"crasher\","
                        "\"startup\":\"/bin/sh -c 'echo Ready; sleep 0.2; exit 3'\","
                        "\"done\":\"Ready\"}");
    Warden__V1__RestartPolicy rp = WARDEN__V1__RESTART_POLICY__INIT;
    rp.max_restarts = 2;
    rp.window_seconds = 60;
    rp.backoff_initial_ms = 100;
    rp.backoff_max_ms = 200;
    char id[37];
    CU_ASSERT_EQUAL_FATAL(wd_fx_create_spec(&fx, tpl, NULL, NULL, &rp, id), WD_OK);
    wd_watch *w = wd_watch_start(&fx, id);
    CU_ASSERT_EQUAL(wd_fx_power(&fx, id, ACT(START)), WD_OK);
    CU_ASSERT(wd_watch_wait_line(w, "crash loop", 15000));
    Warden__V1__ServerInfo info;
    CU_ASSERT_EQUAL(wd_fx_info(&fx, id, &info, NULL), WD_OK);
    CU_ASSERT_EQUAL(info.state, ST(CRASHED));
    CU_ASSERT_EQUAL(info.restarts, 2);
    sleep(1); /* and it stays down */
    CU_ASSERT_EQUAL(wd_fx_info(&fx, id, &info, NULL), WD_OK);
    CU_ASSERT_EQUAL(info.state, ST(CRASHED));
    CU_ASSERT_EQUAL(info.pid, 0);
    /* A start by hand is allowed again. */
    CU_ASSERT_EQUAL(wd_fx_power(&fx, id, ACT(START)), WD_OK);
    CU_ASSERT(wd_watch_wait_state(w, ST(RUNNING), 5000));
    CU_ASSERT_EQUAL(wd_fx_power(&fx, id, ACT(KILL)), WD_OK);
    CU_ASSERT(wd_watch_wait_state(w, ST(OFFLINE), 5000));
    wd_watch_free(w);
}

static void test_agent_kill9(void)
{
    char id[37];
    wd_watch *w = new_game(id, NULL);
    start_running(id, w);
    uint32_t pid = 0;
    CU_ASSERT_EQUAL(wd_fx_info(&fx, id, NULL, &pid), WD_OK);
    CU_ASSERT_EQUAL(wd_fx_send(&fx, id, "echo before-kill"), WD_OK);
    CU_ASSERT(wd_watch_wait_line(w, "before-kill", 5000));
    wd_fx_agent_kill9(&fx);
    CU_ASSERT_EQUAL(kill((pid_t)pid, 0), 0); /* the game keeps running */
    CU_ASSERT_FATAL(wd_fx_agent_start(&fx));
    CU_ASSERT_EQUAL(kill((pid_t)pid, 0), 0);
    Warden__V1__ServerInfo info;
    CU_ASSERT_TRUE(WD_H_WAIT(wd_fx_info(&fx, id, &info, NULL) == WD_OK, 5000));
    CU_ASSERT_EQUAL(info.state, ST(RUNNING));
    CU_ASSERT_EQUAL(wd_fx_send(&fx, id, "echo after-restart"), WD_OK);
    CU_ASSERT(wd_watch_wait_line(w, "after-restart", 5000));
    CU_ASSERT_EQUAL(wd_watch_gaps(w), 0);
    CU_ASSERT_EQUAL(wd_fx_power(&fx, id, ACT(STOP)), WD_OK);
    CU_ASSERT(wd_watch_wait_state(w, ST(OFFLINE), 10000));
    CU_ASSERT(WD_H_WAIT(!wd_fx_server_procs_alive(&fx, id), 3000));
    wd_watch_free(w);
}

static void test_nats_outage(void)
{
    char id[37];
    wd_watch *w = new_game(id, NULL);
    start_running(id, w);
    uint32_t pid = 0;
    CU_ASSERT_EQUAL(wd_fx_info(&fx, id, NULL, &pid), WD_OK);
    wd_h_nats_stop(&fx.nats);
    sleep(10);
    CU_ASSERT_EQUAL(kill((pid_t)pid, 0), 0); /* game kept running */
    CU_ASSERT_FATAL(wd_h_nats_start(&fx.nats));
    /* Client and agent reconnect by themselves. */
    CU_ASSERT(WD_H_WAIT(wd_fx_send(&fx, id, "echo back-online") == WD_OK, 15000));
    CU_ASSERT(wd_watch_wait_line(w, "back-online", 5000));
    CU_ASSERT_EQUAL(wd_fx_power(&fx, id, ACT(STOP)), WD_OK);
    CU_ASSERT(wd_watch_wait_state(w, ST(OFFLINE), 10000));
    wd_watch_free(w);
}

static void test_clean_exit(void)
{
    CU_ASSERT(wd_fx_agent_clean_exit(&fx));
}

static void test_path_tricks(void)
{
    char id[37];
    /* Refused when the server is created: "..", absolute paths. */
    const char *dotdot = wd_h_write_tmp(
        "dotdot.json", "{\"format\":\"warden/v1\",\"id\":\"t\",\"name\":\"t\","
                       "\"startup\":\"/bin/true\",\"config_files\":[{\"path\":\"../escape\","
                       "\"content\":\"x\"}]}");
    CU_ASSERT_EQUAL(wd_fx_create(&fx, dotdot, NULL, id), WD_ERR_INVALID);
    const char *absolute = wd_h_write_tmp(
        "abs.json", "{\"format\":\"warden/v1\",\"id\":\"t\",\"name\":\"t\","
                    "\"startup\":\"/bin/true\",\"config_files\":[{\"path\":\"/etc/escape\","
                    "\"content\":\"x\"}]}");
    CU_ASSERT_EQUAL(wd_fx_create(&fx, absolute, NULL, id), WD_ERR_INVALID);
    /* A symlink the game itself planted: the config write is refused at
     * start, nothing is written outside, the server does not run. */
    char outside[600];
    snprintf(outside, sizeof outside, "%s", wd_h_tmpdir("outside"));
    char tpl[2048];
    snprintf(tpl, sizeof tpl,
             "{\"format\":\"warden/v1\",\"id\":\"t\",\"name\":\"t\","
             "\"startup\":\"/bin/sleep 100\","
             "\"install\":{\"script\":\"ln -s %s evil\"},"
             "\"config_files\":[{\"path\":\"evil/pwned.txt\",\"content\":\"x\"}]}",
             outside);
    const char *symlink_tpl = wd_h_write_tmp("symlink.json", tpl);
    CU_ASSERT_EQUAL_FATAL(wd_fx_create(&fx, symlink_tpl, NULL, id), WD_OK);
    wd_watch *w = wd_watch_start(&fx, id);
    Warden__V1__InstallRequest ir = WARDEN__V1__INSTALL_REQUEST__INIT;
    CU_ASSERT_EQUAL(wd_fx_request(&fx, id, "install", &ir.base, &warden__v1__ack__descriptor, NULL),
                    WD_OK);
    CU_ASSERT(wd_watch_wait_state(w, ST(OFFLINE), 10000));
    CU_ASSERT_EQUAL(wd_fx_power(&fx, id, ACT(START)), WD_ERR_DENIED);
    char pwned[700];
    snprintf(pwned, sizeof pwned, "%s/pwned.txt", outside);
    CU_ASSERT_NOT_EQUAL(access(pwned, F_OK), 0);
    Warden__V1__ServerInfo info;
    CU_ASSERT_EQUAL(wd_fx_info(&fx, id, &info, NULL), WD_OK);
    CU_ASSERT_EQUAL(info.state, ST(OFFLINE));
    wd_watch_free(w);
}

/* A stand-in panel: answers hello with one spec to reconcile. */
typedef struct {
    wd_fx *fx;
    char server_id[37];
    pthread_mutex_t mu; /* hello_node and hellos: written on a nats.c thread */
    char hello_node[64];
    int hellos;
} fake_panel;

static int panel_hellos(fake_panel *p, char *node, size_t n)
{
    pthread_mutex_lock(&p->mu);
    int k = p->hellos;
    snprintf(node, n, "%s", p->hello_node);
    pthread_mutex_unlock(&p->mu);
    return k;
}

static void on_hello(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *ud)
{
    fake_panel *p = ud;
    Warden__V1__DiscoveryHello *h =
        (Warden__V1__DiscoveryHello *)wd_bus_decode(&warden__v1__discovery_hello__descriptor, m);
    Warden__V1__Status st;
    wd_status_fill(&st, WD_OK, "");
    Warden__V1__DiscoveryHelloReply rep = WARDEN__V1__DISCOVERY_HELLO_REPLY__INIT;
    rep.status = &st;
    char *text = NULL;
    size_t len = 0;
    Warden__V1__Template *t = NULL;
    Warden__V1__ServerSpec spec = WARDEN__V1__SERVER_SPEC__INIT;
    Warden__V1__ServerSpec *specs[1] = {&spec};
    if (h && wd_read_file(wd_fx_template("testgame"), 1 << 20, &text, &len) == WD_OK &&
        wd_template_parse_json(text, len, &t) == WD_OK) {
        pthread_mutex_lock(&p->mu);
        snprintf(p->hello_node, sizeof p->hello_node, "%s", h->node_id);
        p->hellos++;
        pthread_mutex_unlock(&p->mu);
        spec.id = p->server_id;
        spec.name = (char *)"from the panel";
        spec.template_ = t;
        rep.n_servers = 1;
        rep.servers = specs;
    }
    wd_bus_respond(p->fx->bus, m, &rep.base);
    free(text);
    wd_template_free(&t);
    if (h)
        protobuf_c_message_free_unpacked(&h->base, NULL);
    natsMsg_Destroy(m);
}

static void test_discovery_and_heartbeat(void)
{
    /* Heartbeats carry the host's figures. */
    char subj[WD_SUBJECT_MAX];
    wd_subj_node_heartbeat(subj, sizeof subj, fx.node_id);
    natsSubscription *hb_sub = NULL;
    natsConnection_SubscribeSync(&hb_sub, wd_bus_nats(fx.bus), subj);
    natsMsg *m = NULL;
    CU_ASSERT_EQUAL_FATAL(natsSubscription_NextMsg(&m, hb_sub, 5000), NATS_OK);
    Warden__V1__NodeHeartbeat *hb =
        (Warden__V1__NodeHeartbeat *)wd_bus_decode(&warden__v1__node_heartbeat__descriptor, m);
    natsMsg_Destroy(m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(hb);
    CU_ASSERT_STRING_EQUAL(hb->node_id, fx.node_id);
    CU_ASSERT(hb->cpu_count > 0);
    CU_ASSERT(hb->memory_total_bytes > 0 && hb->memory_used_bytes > 0);
    CU_ASSERT(hb->disk_total_bytes > 0);
    CU_ASSERT_PTR_NOT_NULL(hb->capabilities);
    protobuf_c_message_free_unpacked(&hb->base, NULL);
    natsSubscription_Destroy(hb_sub);

    /* A probe makes the agent say hello; the panel's reply is reconciled. */
    fake_panel p = {.fx = &fx, .mu = PTHREAD_MUTEX_INITIALIZER};
    char hello_node[64];
    wd_uuid_new(p.server_id);
    natsSubscription *hello_sub = NULL;
    natsConnection_Subscribe(&hello_sub, wd_bus_nats(fx.bus), "warden.discovery.hello", on_hello,
                             &p);
    natsConnection_Flush(wd_bus_nats(fx.bus));
    Warden__V1__DiscoveryProbe probe = WARDEN__V1__DISCOVERY_PROBE__INIT;
    probe.reason = (char *)"test";
    CU_ASSERT_EQUAL(wd_bus_publish(fx.bus, "warden.discovery.probe", &probe.base, NULL), WD_OK);
    CU_ASSERT(WD_H_WAIT(panel_hellos(&p, hello_node, sizeof hello_node) > 0, 5000));
    CU_ASSERT_STRING_EQUAL(hello_node, fx.node_id);
    Warden__V1__ServerInfo info;
    CU_ASSERT(WD_H_WAIT(wd_fx_info(&fx, p.server_id, &info, NULL) == WD_OK, 5000));
    natsSubscription_Unsubscribe(hello_sub);
    natsSubscription_Destroy(hello_sub);
    Warden__V1__DeleteRequest dr = WARDEN__V1__DELETE_REQUEST__INIT;
    CU_ASSERT_EQUAL(
        wd_fx_request(&fx, p.server_id, "delete", &dr.base, &warden__v1__ack__descriptor, NULL),
        WD_OK);
}

static void test_trace_and_stats(void)
{
    char id[37];
    wd_watch *w = new_game(id, NULL);
    char subj[WD_SUBJECT_MAX];
    wd_subj_server_event(subj, sizeof subj, id, "state");
    natsSubscription *st_sub = NULL;
    natsConnection_SubscribeSync(&st_sub, wd_bus_nats(fx.bus), subj);
    wd_subj_server_event(subj, sizeof subj, id, "stats");
    natsSubscription *stats_sub = NULL;
    natsConnection_SubscribeSync(&stats_sub, wd_bus_nats(fx.bus), subj);
    natsConnection_Flush(wd_bus_nats(fx.bus));
    /* The trace of the start request follows into the state events. */
    wd_subj_agent_server(subj, sizeof subj, fx.node_id, id, "power");
    Warden__V1__PowerRequest req = WARDEN__V1__POWER_REQUEST__INIT;
    req.action = ACT(START);
    wd_hdrs h = {.trace = "feedfacefeedfacefeedfacefeedface", .actor = "test"};
    ProtobufCMessage *rep = NULL;
    CU_ASSERT_EQUAL(wd_bus_request(fx.bus, subj, &req.base, &warden__v1__power_reply__descriptor,
                                   5000, &h, &rep),
                    WD_OK);
    if (rep)
        protobuf_c_message_free_unpacked(rep, NULL);
    natsMsg *m = NULL;
    CU_ASSERT_EQUAL_FATAL(natsSubscription_NextMsg(&m, st_sub, 5000), NATS_OK);
    const char *trace = wd_bus_header(m, WD_HDR_TRACE);
    CU_ASSERT(trace && strcmp(trace, h.trace) == 0);
    natsMsg_Destroy(m);
    CU_ASSERT(wd_watch_wait_state(w, ST(RUNNING), 10000));
    /* Stats arrive on their own, about the whole process tree. */
    CU_ASSERT_EQUAL_FATAL(natsSubscription_NextMsg(&m, stats_sub, 5000), NATS_OK);
    Warden__V1__ServerStats *stats =
        (Warden__V1__ServerStats *)wd_bus_decode(&warden__v1__server_stats__descriptor, m);
    natsMsg_Destroy(m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(stats);
    CU_ASSERT(stats->memory_bytes > 0);
    CU_ASSERT(stats->disk_bytes > 0);
    CU_ASSERT(stats->uptime_ms > 0);
    protobuf_c_message_free_unpacked(&stats->base, NULL);
    natsSubscription_Destroy(st_sub);
    natsSubscription_Destroy(stats_sub);
    CU_ASSERT_EQUAL(wd_fx_power(&fx, id, ACT(KILL)), WD_OK);
    CU_ASSERT(wd_watch_wait_state(w, ST(OFFLINE), 10000));
    wd_watch_free(w);
}

static void test_stop_escalation(void)
{
    /* A game that ignores its stop command and SIGTERM: SIGKILL ends it. */
    const char *tpl = wd_h_write_tmp(
        "stubborn.json",
        "{\"format\":\"warden/v1\",\"id\":\"stubborn\",\"name\":\"stubborn\","
        "\"startup\":\"/bin/sh -c 'trap \\\"echo got-term\\\" TERM; echo Ready; "
        "while :; do sleep 0.1; done'\",\"done\":\"Ready\","
        "\"stop\":{\"command\":\"please stop\",\"grace_seconds\":1}}");
    char id[37];
    CU_ASSERT_EQUAL_FATAL(wd_fx_create(&fx, tpl, NULL, id), WD_OK);
    wd_watch *w = wd_watch_start(&fx, id);
    start_running(id, w);
    int64_t t0 = wd_mono_ms();
    CU_ASSERT_EQUAL(wd_fx_power(&fx, id, ACT(STOP)), WD_OK);
    CU_ASSERT(wd_watch_wait_line(w, "got-term", 5000)); /* SIGTERM after the grace */
    CU_ASSERT(wd_watch_wait_state(w, ST(OFFLINE), 20000));
    CU_ASSERT(wd_mono_ms() - t0 >= 1000 + 10000 - 500); /* grace, then SIGTERM's 10 s */
    CU_ASSERT(wd_watch_wait_line(w, "killing it", 1000));
    CU_ASSERT(WD_H_WAIT(!wd_fx_server_procs_alive(&fx, id), 3000));
    wd_watch_free(w);
}

static void test_sandbox(void)
{
    /* What the game can see and do from inside its sandbox. */
    char tpl[2048];
    snprintf(tpl, sizeof tpl,
             "{\"format\":\"warden/v1\",\"id\":\"probe\",\"name\":\"probe\","
             "\"startup\":\"/bin/sh -c 'echo uid=$(id -u); "
             "test -e %s && echo agent-data-visible || echo agent-data-hidden; "
             "touch /usr/x 2>/dev/null && echo usr-writable || echo usr-readonly; "
             "touch ./mine && echo home-writable; echo pwd=$(pwd); echo Ready; sleep 100'\","
             "\"done\":\"Ready\",\"stop\":{\"command\":\"^C\",\"grace_seconds\":2}}",
             fx.data_dir);
    const char *path = wd_h_write_tmp("probe.json", tpl);
    char id[37];
    Warden__V1__Limits lim = WARDEN__V1__LIMITS__INIT;
    lim.memory_bytes = 256u << 20;
    lim.pids = 64;
    CU_ASSERT_EQUAL_FATAL(wd_fx_create_ex(&fx, path, NULL, &lim, id), WD_OK);
    wd_watch *w = wd_watch_start(&fx, id);
    start_running(id, w);
    Warden__V1__ServerInfo info;
    CU_ASSERT_EQUAL(wd_fx_info(&fx, id, &info, NULL), WD_OK);
    if (info.isolated) {
        CU_ASSERT(wd_watch_wait_line(w, "agent-data-hidden", 2000));
        CU_ASSERT(wd_watch_wait_line(w, "usr-readonly", 2000));
        CU_ASSERT(wd_watch_wait_line(w, "pwd=/home/container", 2000));
    } else {
        fprintf(stderr, "(bubblewrap unavailable here: isolation checks skipped)\n");
    }
    CU_ASSERT(wd_watch_wait_line(w, "home-writable", 2000));
    if (geteuid() == 0)
        CU_ASSERT(wd_watch_wait_line(w, "uid=65534", 2000));
    if (info.cgroup_limits) {
        char cg[256];
        snprintf(cg, sizeof cg, "/sys/fs/cgroup/memory/warden/%s/memory.limit_in_bytes", id);
        char *text = NULL;
        if (wd_read_file(cg, 256, &text, NULL) == WD_OK) { /* cgroup v1 */
            CU_ASSERT_EQUAL(strtoull(text, NULL, 10), 256ull << 20);
            free(text);
        } else {
            snprintf(cg, sizeof cg, "/sys/fs/cgroup/pids/warden/%s/pids.max", id);
            CU_ASSERT_EQUAL(access(cg, F_OK), 0);
        }
    }
    CU_ASSERT_EQUAL(wd_fx_power(&fx, id, ACT(STOP)), WD_OK);
    CU_ASSERT(wd_watch_wait_state(w, ST(OFFLINE), 10000));
    wd_watch_free(w);
}

int main(void)
{
    static const wd_h_case cases[] = {
        {"create, install, start to running, console, stop, kill, delete", test_lifecycle},
        {"garbage, unknown ids, invalid values and states get clear errors", test_bad_input},
        {"50,000 lines arrive complete and in order; long lines are cut", test_console_flood},
        {"beyond the per-server rate lines are dropped, counted and announced",
         test_console_rate_limit},
        {"path tricks in template paths are refused (.., absolute, symlinks)", test_path_tricks},
        {"heartbeats carry host figures; a probe brings a hello and reconcile",
         test_discovery_and_heartbeat},
        {"the request's trace follows into state events; stats arrive", test_trace_and_stats},
        {"stop escalates: stop command, SIGTERM after the grace, then SIGKILL",
         test_stop_escalation},
        {"the sandbox: own dir writable, /usr read-only, agent data hidden, limits",
         test_sandbox},
        {"a crash is published and the game restarted per policy", test_crash_restart},
        {"a crash loop stops after the limit and stays crashed", test_crash_loop},
        {"kill -9 of the agent: games keep running, a new agent re-attaches", test_agent_kill9},
        {"NATS down 10 s: games keep running, the agent reconnects", test_nats_outage},
        {"the agent exits cleanly; no sanitizer reports in agent or shim logs",
         test_clean_exit},
        {NULL, NULL}};
    wd_h_suite("agent", suite_init, suite_clean, cases);
    return wd_h_run();
}
