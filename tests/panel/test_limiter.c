/* Token buckets and login back-off. */
#include "harness.h"
#include "limiter.h"
#include "perms.h"

static void test_bucket(void)
{
    wd_limiter *l = NULL;
    CU_ASSERT_EQUAL_FATAL(wd_limiter_create(&l, 10, 5, 1024), WD_OK);
    int retry = 0;
    for (int i = 0; i < 5; i++)
        CU_ASSERT(wd_limiter_take(l, "user-a", 1000, &retry));
    CU_ASSERT_FALSE(wd_limiter_take(l, "user-a", 1000, &retry));
    CU_ASSERT(retry >= 1);
    CU_ASSERT(wd_limiter_take(l, "user-b", 1000, &retry)); /* keys are independent */
    CU_ASSERT(wd_limiter_take(l, "user-a", 1100, &retry)); /* 100 ms = 1 token */
    CU_ASSERT_FALSE(wd_limiter_take(l, "user-a", 1100, &retry));
    CU_ASSERT(wd_limiter_take(l, "user-a", 2000, &retry));
    wd_limiter_destroy(&l);
    CU_ASSERT_EQUAL(wd_limiter_create(&l, 0, 5, 10), WD_ERR_INVALID);
}

static void test_bounded(void)
{
    /* Many more keys than capacity: still answers, memory fixed. */
    wd_limiter *l = NULL;
    CU_ASSERT_EQUAL_FATAL(wd_limiter_create(&l, 1, 2, 64), WD_OK);
    char key[32];
    int retry;
    for (int i = 0; i < 10000; i++) {
        snprintf(key, sizeof key, "ip-%d", i);
        CU_ASSERT(wd_limiter_take(l, key, i, &retry));
    }
    wd_limiter_destroy(&l);
}

static void test_backoff(void)
{
    wd_backoff *b = NULL;
    CU_ASSERT_EQUAL_FATAL(wd_backoff_create(&b, 3, 2, 60, 1024), WD_OK);
    int retry = 0;
    for (int i = 0; i < 3; i++) {
        CU_ASSERT(wd_backoff_allowed(b, "alice", 0, &retry));
        wd_backoff_failure(b, "alice", 0);
    }
    CU_ASSERT(wd_backoff_allowed(b, "alice", 0, &retry)); /* 3 free failures */
    wd_backoff_failure(b, "alice", 0);                    /* 4th: 2 s */
    CU_ASSERT_FALSE(wd_backoff_allowed(b, "alice", 1000, &retry));
    CU_ASSERT_EQUAL(retry, 1);
    CU_ASSERT(wd_backoff_allowed(b, "alice", 2000, &retry));
    wd_backoff_failure(b, "alice", 2000); /* 5th: 4 s */
    CU_ASSERT_FALSE(wd_backoff_allowed(b, "alice", 5000, &retry));
    CU_ASSERT(wd_backoff_allowed(b, "alice", 6000, &retry));
    for (int i = 0; i < 20; i++)
        wd_backoff_failure(b, "alice", 6000); /* capped at 60 s */
    CU_ASSERT_FALSE(wd_backoff_allowed(b, "alice", 6000 + 59000, &retry));
    CU_ASSERT(wd_backoff_allowed(b, "alice", 6000 + 60000, &retry));
    CU_ASSERT(wd_backoff_allowed(b, "bob", 6000, &retry));
    wd_backoff_success(b, "alice");
    CU_ASSERT(wd_backoff_allowed(b, "alice", 6000, &retry));
    wd_backoff_destroy(&b);
}

static void test_perms(void)
{
    CU_ASSERT(wd_perm_valid("control.console"));
    CU_ASSERT(wd_perm_valid("backup.*"));
    CU_ASSERT(wd_perm_valid("*"));
    CU_ASSERT_FALSE(wd_perm_valid("control.explode"));
    CU_ASSERT_FALSE(wd_perm_valid("nope.*"));
    CU_ASSERT_FALSE(wd_perm_valid(""));
    CU_ASSERT_FALSE(wd_perm_valid("control."));
    const char *g1[] = {"control.console", "backup.*"};
    CU_ASSERT(wd_perm_granted(g1, 2, "control.console"));
    CU_ASSERT(wd_perm_granted(g1, 2, "backup.restore"));
    CU_ASSERT_FALSE(wd_perm_granted(g1, 2, "control.start"));
    CU_ASSERT_FALSE(wd_perm_granted(g1, 2, "backupx.read"));
    const char *g2[] = {"*"};
    CU_ASSERT(wd_perm_granted(g2, 1, "file.delete"));
    CU_ASSERT_FALSE(wd_perm_granted(NULL, 0, "file.read"));
    for (const wd_perm_info *p = wd_perm_all(); p->name; p++)
        CU_ASSERT(wd_perm_valid(p->name));
}

int main(void)
{
    static const wd_h_case cases[] = {{"token bucket per key", test_bucket},
                                      {"the key table stays bounded", test_bounded},
                                      {"login back-off grows and is capped", test_backoff},
                                      {"permission strings and wildcards", test_perms},
                                      {NULL, NULL}};
    wd_h_suite("limiter", NULL, NULL, cases);
    return wd_h_run();
}
