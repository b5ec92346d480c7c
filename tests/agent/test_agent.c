/* Integration tests of warden-agent with a real nats-server and the tiny
 * test game (templates/testgame.json): lifecycle, console, bad input,
 * crashes, agent kill -9, NATS outage. */
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
    CU_ASSERT_EQUAL(w->dropped, 0);
    CU_ASSERT_EQUAL(w->gaps, 0);
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
    CU_ASSERT(w->dropped > 0);
    CU_ASSERT_EQUAL(got + w->dropped, 20000);
    CU_ASSERT_EQUAL(w->gaps, 0);
    Warden__V1__ServerInfo info;
    CU_ASSERT_EQUAL(wd_fx_info(&fx, id, &info, NULL), WD_OK);
    CU_ASSERT_EQUAL(info.console_dropped, w->dropped);
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
    CU_ASSERT_EQUAL(w->gaps, 0);
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

static const char *write_tmp(const char *name, const char *text)
{
    static char path[4][600];
    static int k;
    char *p = path[k++ % 4];
    snprintf(p, sizeof path[0], "%s/%s", wd_h_tmpdir("tpl"), name);
    FILE *f = fopen(p, "w");
    fputs(text, f);
    fclose(f);
    return p;
}

static void test_path_tricks(void)
{
    char id[37];
    /* Refused when the server is created: "..", absolute paths. */
    const char *dotdot = write_tmp(
        "dotdot.json", "{\"format\":\"warden/v1\",\"id\":\"t\",\"name\":\"t\","
                       "\"startup\":\"/bin/true\",\"config_files\":[{\"path\":\"../escape\","
                       "\"content\":\"x\"}]}");
    CU_ASSERT_EQUAL(wd_fx_create(&fx, dotdot, NULL, id), WD_ERR_INVALID);
    const char *absolute = write_tmp(
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
    const char *symlink_tpl = write_tmp("symlink.json", tpl);
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

int main(void)
{
    static const wd_h_case cases[] = {
        {"create, install, start to running, console, stop, kill, delete", test_lifecycle},
        {"garbage, unknown ids, invalid values and states get clear errors", test_bad_input},
        {"50,000 lines arrive complete and in order; long lines are cut", test_console_flood},
        {"beyond the per-server rate lines are dropped, counted and announced",
         test_console_rate_limit},
        {"path tricks in template paths are refused (.., absolute, symlinks)", test_path_tricks},
        {"a crash is published and the game restarted per policy", test_crash_restart},
        {"kill -9 of the agent: games keep running, a new agent re-attaches", test_agent_kill9},
        {"NATS down 10 s: games keep running, the agent reconnects", test_nats_outage},
        {"the agent exits cleanly; no sanitizer reports in agent or shim logs",
         test_clean_exit},
        {NULL, NULL}};
    wd_h_suite("agent", suite_init, suite_clean, cases);
    return wd_h_run();
}
