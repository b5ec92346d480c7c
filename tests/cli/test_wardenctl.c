/* wardenctl end to end: the README's walkthrough commands against a real
 * nats-server and agent, their --json output, and the error paths (clear
 * message on stderr, exit 1 for errors from Warden, 2 for usage). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctl_run.h"
#include "agent_fixture.h"
#include "util.h"

static wd_fx fx;

typedef wd_ctl_result result;

/* Runs wardenctl with args (a shell-quoted string) and optional stdin. */
static result *ctl(const char *args, const char *input)
{
    char env[200];
    snprintf(env, sizeof env, "WARDEN_NATS_URL=%s", fx.nats.url);
    return wd_ctl_run(env, args, input);
}

static void test_walkthrough(void)
{
    result *r = ctl("nodes", NULL);
    CU_ASSERT_EQUAL(r->code, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(r->out, fx.node_id));
    r = ctl("nodes --json", NULL);
    CU_ASSERT_EQUAL(r->code, 0);
    CU_ASSERT(r->out[0] == '[' && strstr(r->out, "\"cpu_count\":") != NULL);

    char args[1024], id[64];
    snprintf(args, sizeof args,
             "server create --node %s --template %s --name 'CLI test' --var GREETING=cli-hello",
             fx.node_id, wd_fx_template("testgame"));
    r = ctl(args, NULL);
    CU_ASSERT_EQUAL_FATAL(r->code, 0);
    CU_ASSERT_EQUAL_FATAL(sscanf(r->out, "%36s", id), 1);
    CU_ASSERT(wd_uuid_valid(id));

    snprintf(args, sizeof args, "server install %s --wait", id);
    CU_ASSERT_EQUAL(ctl(args, NULL)->code, 0);
    snprintf(args, sizeof args, "server start %s --wait", id);
    CU_ASSERT_EQUAL(ctl(args, NULL)->code, 0);
    snprintf(args, sizeof args, "send %s 'echo via-wardenctl'", id);
    CU_ASSERT_EQUAL(ctl(args, NULL)->code, 0);
    usleep(300000);
    snprintf(args, sizeof args, "console %s --no-follow --tail 50", id);
    r = ctl(args, NULL);
    CU_ASSERT_EQUAL(r->code, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(r->out, "cli-hello"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r->out, "via-wardenctl"));
    /* --tail cuts the history. */
    snprintf(args, sizeof args, "console %s --no-follow --tail 1", id);
    r = ctl(args, NULL);
    CU_ASSERT_EQUAL(r->code, 0);
    CU_ASSERT_PTR_NULL(strstr(r->out, "cli-hello"));
    /* console follows and sends what is typed on stdin (and stops on
     * SIGTERM: background jobs of a script ignore SIGINT). */
    const char *dir = wd_h_tmpdir("follow");
    char cmd[2048], outp[600];
    snprintf(outp, sizeof outp, "%s/out", dir);
    snprintf(cmd, sizeof cmd,
             "(echo 'echo typed-into-console'; sleep 3) | WARDEN_NATS_URL=%s %s console %s "
             "--tail 0 >%s 2>&1 & pid=$!; sleep 1.5; kill -TERM $pid; wait $pid",
             fx.nats.url, wd_h_bin("cli/wardenctl"), id, outp);
    CU_ASSERT_EQUAL(system(cmd), 0);
    char *text = NULL;
    CU_ASSERT_EQUAL_FATAL(wd_read_file(outp, 1 << 20, &text, NULL), WD_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "typed-into-console"));
    free(text);

    snprintf(args, sizeof args, "server state %s --json", id);
    r = ctl(args, NULL);
    CU_ASSERT_EQUAL(r->code, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(r->out, "\"state\":\"running\""));
    snprintf(args, sizeof args, "stats %s", id);
    r = ctl(args, NULL);
    CU_ASSERT_EQUAL(r->code, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(r->out, "running"));
    r = ctl("servers", NULL);
    CU_ASSERT_EQUAL(r->code, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(r->out, id));

    snprintf(args, sizeof args, "server start %s", id);
    r = ctl(args, NULL); /* already running */
    CU_ASSERT_EQUAL(r->code, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(r->err, "running"));

    snprintf(args, sizeof args, "server stop %s --wait", id);
    CU_ASSERT_EQUAL(ctl(args, NULL)->code, 0);
    snprintf(args, sizeof args, "server delete %s", id);
    CU_ASSERT_EQUAL(ctl(args, NULL)->code, 0);
    snprintf(args, sizeof args, "server state %s", id);
    r = ctl(args, NULL);
    CU_ASSERT_EQUAL(r->code, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(r->err, "not found"));
}

static void test_errors(void)
{
    result *r = ctl("", NULL);
    CU_ASSERT_EQUAL(r->code, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(r->err, "missing command"));
    CU_ASSERT_EQUAL(ctl("frobnicate", NULL)->code, 2);
    CU_ASSERT_EQUAL(ctl("server start", NULL)->code, 2);
    CU_ASSERT_EQUAL(ctl("server create --template x", NULL)->code, 2);
    r = ctl("server start 6b1d1f3e-0000-4000-8000-000000000000", NULL);
    CU_ASSERT_EQUAL(r->code, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(r->err, "not found"));
    r = ctl("server start 'a.b'", NULL);
    CU_ASSERT_EQUAL(r->code, 1);
    char args[1024];
    snprintf(args, sizeof args, "server create --node %s --template /nonexistent.json",
             fx.node_id);
    r = ctl(args, NULL);
    CU_ASSERT_EQUAL(r->code, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(r->err, "/nonexistent.json"));
    snprintf(args, sizeof args, "server create --node %s --template %s --var NOPE=1", fx.node_id,
             wd_fx_template("testgame"));
    r = ctl(args, NULL);
    CU_ASSERT_EQUAL(r->code, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(r->err, "NOPE"));
    snprintf(args, sizeof args, "server create --node 0e0e0e0e-0000-4000-8000-000000000000 "
                                "--template %s",
             wd_fx_template("testgame"));
    r = ctl(args, NULL);
    CU_ASSERT_EQUAL(r->code, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(r->err, "does not answer"));
    /* NATS unreachable: a clear message, fast. */
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s --nats nats://127.0.0.1:%d nodes 2>/dev/null",
             wd_h_bin("cli/wardenctl"), wd_h_free_port());
    int st = system(cmd);
    CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 1);
}

static int suite_init(void)
{
    return wd_fx_start(&fx) ? 0 : 1;
}

static int suite_clean(void)
{
    wd_fx_stop(&fx);
    return 0;
}

int main(void)
{
    static const wd_h_case cases[] = {
        {"the README walkthrough, step by step, with --json", test_walkthrough},
        {"usage errors exit 2, Warden errors exit 1, each with a clear message", test_errors},
        {NULL, NULL}};
    wd_h_suite("wardenctl", suite_init, suite_clean, cases);
    return wd_h_run();
}
