/* cli/bulk.c: the broadcast line per template (table, --format, refusals),
 * message checks, the bounded worker pool and the summary's exit code. */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bulk.h"
#include "harness.h"

static void test_broadcast_line(void)
{
    char out[4200];
    CU_ASSERT_EQUAL(wd_bulk_broadcast_line("testgame", NULL, "hi all", out, sizeof out), WD_OK);
    CU_ASSERT_STRING_EQUAL(out, "echo hi all");
    CU_ASSERT_EQUAL(wd_bulk_broadcast_line("freeciv", NULL, "turn soon", out, sizeof out), WD_OK);
    CU_ASSERT_STRING_EQUAL(out, "wall turn soon");
    CU_ASSERT_EQUAL(wd_bulk_broadcast_line("paper-1-20", NULL, "x", out, sizeof out), WD_OK);
    CU_ASSERT_STRING_EQUAL(out, "say x");
    CU_ASSERT_EQUAL(wd_bulk_broadcast_line("teeworlds", NULL, "x", out, sizeof out),
                    WD_ERR_UNSUPPORTED);
    CU_ASSERT_PTR_NOT_NULL(strstr(wd_err_msg(), "stdin"));
    /* Unknown game: skipped, never the bare message (it could be a command). */
    CU_ASSERT_EQUAL(wd_bulk_broadcast_line("mygame", NULL, "stop", out, sizeof out),
                    WD_ERR_UNSUPPORTED);
    CU_ASSERT_PTR_NOT_NULL(strstr(wd_err_msg(), "--format"));
    /* --format wins over the table, even for teeworlds. */
    CU_ASSERT_EQUAL(
        wd_bulk_broadcast_line("teeworlds", "broadcast \"{message}\"", "x", out, sizeof out),
        WD_OK);
    CU_ASSERT_STRING_EQUAL(out, "broadcast \"x\"");
    CU_ASSERT_EQUAL(wd_bulk_broadcast_line("x", "{message}", "raw", out, sizeof out), WD_OK);
    CU_ASSERT_STRING_EQUAL(out, "raw");
    CU_ASSERT_EQUAL(wd_bulk_broadcast_line("x", "say", "m", out, sizeof out), WD_ERR_INVALID);
    CU_ASSERT_EQUAL(wd_bulk_broadcast_line("x", "say\n{message}", "m", out, sizeof out),
                    WD_ERR_INVALID);
    /* Source-engine consoles split commands at ';' (and quote with '"'):
     * such a message is refused for those games, --format or not, and
     * still goes to games that do not care. */
    CU_ASSERT_EQUAL(wd_bulk_broadcast_line("counter-strike-2", NULL, "hi; quit", out, sizeof out),
                    WD_ERR_UNSUPPORTED);
    CU_ASSERT_PTR_NOT_NULL(strstr(wd_err_msg(), "';'"));
    CU_ASSERT_EQUAL(wd_bulk_broadcast_line("tf2-srcds", NULL, "say \"x", out, sizeof out),
                    WD_ERR_UNSUPPORTED);
    CU_ASSERT_EQUAL(
        wd_bulk_broadcast_line("garrys-mod", "say \"{message}\"", "a;b", out, sizeof out),
        WD_ERR_UNSUPPORTED);
    CU_ASSERT_EQUAL(wd_bulk_broadcast_line("team-fortress-2", NULL, "back in 5", out, sizeof out),
                    WD_OK);
    CU_ASSERT_STRING_EQUAL(out, "say back in 5");
    CU_ASSERT_EQUAL(wd_bulk_broadcast_line("paper", NULL, "a; b", out, sizeof out), WD_OK);
    /* Messages: one line, not empty, bounded. */
    CU_ASSERT_EQUAL(wd_bulk_broadcast_line("paper", NULL, "a\rstop", out, sizeof out),
                    WD_ERR_INVALID);
    CU_ASSERT_EQUAL(wd_bulk_broadcast_line("testgame", NULL, "a\nstop", out, sizeof out),
                    WD_ERR_INVALID);
    CU_ASSERT_EQUAL(wd_bulk_message_ok(""), WD_ERR_INVALID);
    CU_ASSERT_EQUAL(wd_bulk_message_ok("tab\there"), WD_ERR_INVALID);
    char big[1100];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    CU_ASSERT_EQUAL(wd_bulk_message_ok(big), WD_ERR_INVALID);
    big[1024] = '\0';
    CU_ASSERT_EQUAL(wd_bulk_message_ok(big), WD_OK);
    char small[8];
    CU_ASSERT_EQUAL(wd_bulk_broadcast_line("testgame", NULL, "too long", small, sizeof small),
                    WD_ERR_INVALID);
}

static atomic_int running, peak, total;

static void work(size_t i, void *ud)
{
    (void)ud;
    int now = atomic_fetch_add(&running, 1) + 1;
    int p = atomic_load(&peak);
    while (now > p && !atomic_compare_exchange_weak(&peak, &p, now))
        ;
    usleep(2000);
    atomic_fetch_add(&total, (int)i + 1);
    atomic_fetch_sub(&running, 1);
}

static void test_power_skip(void)
{
    CU_ASSERT_STRING_EQUAL(wd_bulk_power_skip("start", "running"), "already running");
    CU_ASSERT_STRING_EQUAL(wd_bulk_power_skip("start", "starting"), "already running");
    CU_ASSERT_STRING_EQUAL(wd_bulk_power_skip("start", "installing"), "installing");
    CU_ASSERT_PTR_NULL(wd_bulk_power_skip("start", "offline"));
    CU_ASSERT_PTR_NULL(wd_bulk_power_skip("start", "crashed"));
    CU_ASSERT_STRING_EQUAL(wd_bulk_power_skip("stop", "offline"), "already offline");
    CU_ASSERT_STRING_EQUAL(wd_bulk_power_skip("stop", "stopping"), "already stopping");
    CU_ASSERT_PTR_NULL(wd_bulk_power_skip("stop", "running"));
    CU_ASSERT_STRING_EQUAL(wd_bulk_power_skip("kill", "offline"), "already offline");
    CU_ASSERT_PTR_NULL(wd_bulk_power_skip("kill", "stopping")); /* kill ends a slow stop */
    CU_ASSERT_PTR_NULL(wd_bulk_power_skip("restart", "running"));
    CU_ASSERT_PTR_NULL(wd_bulk_power_skip("restart", "offline"));
}

static void test_parallel(void)
{
    atomic_store(&total, 0);
    atomic_store(&peak, 0);
    wd_bulk_parallel(50, 4, work, NULL);
    CU_ASSERT_EQUAL(atomic_load(&total), 50 * 51 / 2); /* each exactly once */
    CU_ASSERT(atomic_load(&peak) <= 4);
    CU_ASSERT(atomic_load(&peak) >= 2);
    atomic_store(&total, 0);
    wd_bulk_parallel(3, 1000, work, NULL); /* clamped */
    CU_ASSERT_EQUAL(atomic_load(&total), 6);
    wd_bulk_parallel(0, 4, work, NULL);
}

static void test_report(void)
{
    /* Output goes to stdout: send it to /dev/null for the test. */
    fflush(stdout);
    FILE *saved = stdout;
    stdout = fopen("/dev/null", "w");
    wd_bulk b;
    wd_bulk_begin(&b, "power start", 3, false);
    wd_bulk_report(&b, "a", "A", WD_BULK_OK, "running");
    wd_bulk_report(&b, "b", "", WD_BULK_SKIPPED, "already running");
    CU_ASSERT_EQUAL(b.done, 2);
    wd_bulk_report(&b, "c", NULL, WD_BULK_FAILED, "node does not answer");
    CU_ASSERT_EQUAL(wd_bulk_end(&b), 1);
    wd_bulk_begin(&b, "backup", 1, true);
    wd_bulk_report(&b, "a", "A", WD_BULK_SKIPPED, NULL);
    CU_ASSERT_EQUAL(wd_bulk_end(&b), 0);
    fclose(stdout);
    stdout = saved;
}

int main(void)
{
    static const wd_h_case cases[] = {
        {"broadcast lines come from --format or the known-games table, else skip",
         test_broadcast_line},
        {"power actions with nothing to do are skipped, the same in both modes",
         test_power_skip},
        {"the worker pool runs each item once with bounded concurrency", test_parallel},
        {"the summary exits non-zero when anything failed", test_report},
        {NULL, NULL}};
    wd_h_suite("bulk", NULL, NULL, cases);
    return wd_h_run();
}
