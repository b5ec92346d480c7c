/* The real thing: Debian's freeciv-server, created from templates/freeciv.json,
 * installed, started to running (its ready line), answering a console
 * command, and stopped to offline with no process left. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "agent_fixture.h"

#define ACT(x) WARDEN__V1__POWER_REQUEST__ACTION__##x
#define ST(x) WARDEN__V1__SERVER_STATE__SERVER_STATE_##x

static wd_fx fx;

static int suite_init(void)
{
    if (access("/usr/games/freeciv-server", X_OK) != 0) {
        fprintf(stderr, "freeciv-server is not installed (scripts/bootstrap installs it)\n");
        return 1;
    }
    return wd_fx_start(&fx) ? 0 : 1;
}

static int suite_clean(void)
{
    wd_fx_stop(&fx);
    return 0;
}

static void test_freeciv(void)
{
    char id[37], port[32];
    snprintf(port, sizeof port, "SERVER_PORT=%d", wd_h_free_port());
    const char *vars[] = {port, "BIND_ADDRESS=127.0.0.1", NULL};
    CU_ASSERT_EQUAL_FATAL(wd_fx_create(&fx, wd_fx_template("freeciv"), vars, id), WD_OK);
    wd_watch *w = wd_watch_start(&fx, id);
    Warden__V1__InstallRequest ir = WARDEN__V1__INSTALL_REQUEST__INIT;
    CU_ASSERT_EQUAL_FATAL(
        wd_fx_request(&fx, id, "install", &ir.base, &warden__v1__ack__descriptor, NULL), WD_OK);
    CU_ASSERT_FATAL(wd_watch_wait_state(w, ST(OFFLINE), 60000));
    CU_ASSERT_EQUAL_FATAL(wd_fx_power(&fx, id, ACT(START)), WD_OK);
    CU_ASSERT_FATAL(wd_watch_wait_state(w, ST(RUNNING), 60000));
    CU_ASSERT_EQUAL(wd_fx_send(&fx, id, "list"), WD_OK);
    CU_ASSERT(wd_watch_wait_line(w, "List of players", 10000));
    CU_ASSERT_EQUAL(wd_fx_power(&fx, id, ACT(STOP)), WD_OK);
    CU_ASSERT(wd_watch_wait_state(w, ST(OFFLINE), 40000));
    CU_ASSERT(WD_H_WAIT(!wd_fx_server_procs_alive(&fx, id), 5000));
    CU_ASSERT_EQUAL(wd_fx_find_proc(id, "freeciv-server"), 0);
    wd_watch_free(w);
}

static void test_clean_exit(void)
{
    CU_ASSERT(wd_fx_agent_clean_exit(&fx));
}

int main(void)
{
    static const wd_h_case cases[] = {
        {"freeciv: create, install, running, console command, stop, nothing left", test_freeciv},
        {"the agent exits cleanly; no sanitizer reports in agent or shim logs",
         test_clean_exit},
        {NULL, NULL}};
    wd_h_suite("freeciv", suite_init, suite_clean, cases);
    return wd_h_run();
}
