/* Unit tests of subject builders: shapes, and refusal of tokens that would
 * widen a subscription or address something else. */
#include <string.h>

#include "harness.h"
#include "subject.h"

static void test_build(void)
{
    char b[WD_SUBJECT_MAX];
    CU_ASSERT_EQUAL(wd_subj_agent_server(b, sizeof b, "n1", "s1", "power"), WD_OK);
    CU_ASSERT_STRING_EQUAL(b, "warden.agent.n1.server.s1.power");
    CU_ASSERT_EQUAL(wd_subj_agent_server(b, sizeof b, "n1", "s1", "console.in"), WD_OK);
    CU_ASSERT_STRING_EQUAL(b, "warden.agent.n1.server.s1.console.in");
    CU_ASSERT_EQUAL(wd_subj_agent_all(b, sizeof b, "n1"), WD_OK);
    CU_ASSERT_STRING_EQUAL(b, "warden.agent.n1.>");
    CU_ASSERT_EQUAL(wd_subj_server_event(b, sizeof b, "s1", "console"), WD_OK);
    CU_ASSERT_STRING_EQUAL(b, "warden.server.s1.console");
    CU_ASSERT_EQUAL(wd_subj_node_heartbeat(b, sizeof b, "n1"), WD_OK);
    CU_ASSERT_STRING_EQUAL(b, "warden.node.n1.heartbeat");
}

static void test_refuse(void)
{
    char b[WD_SUBJECT_MAX];
    const char *bad[] = {"", "a.b", "*", ">", "a b", "a\tb", "x>", NULL};
    for (int i = 0; bad[i]; i++) {
        CU_ASSERT_EQUAL(wd_subj_agent_server(b, sizeof b, bad[i], "s", "power"), WD_ERR_INVALID);
        CU_ASSERT_EQUAL(wd_subj_agent_server(b, sizeof b, "n", bad[i], "power"), WD_ERR_INVALID);
        CU_ASSERT_EQUAL(wd_subj_server_event(b, sizeof b, bad[i], "state"), WD_ERR_INVALID);
    }
    CU_ASSERT_EQUAL(wd_subj_agent_server(b, sizeof b, "n", "s", "files..list"), WD_ERR_INVALID);
    CU_ASSERT_EQUAL(wd_subj_agent_server(b, sizeof b, "n", "s", ".x"), WD_ERR_INVALID);
    CU_ASSERT_EQUAL(wd_subj_agent_server(b, sizeof b, "n", "s", "x."), WD_ERR_INVALID);
    CU_ASSERT_EQUAL(wd_subj_agent_server(b, sizeof b, "n", "s", "files.*"), WD_ERR_INVALID);
    CU_ASSERT_EQUAL(wd_subj_server_event(b, sizeof b, "s", "secrets"), WD_ERR_INVALID);
    char small[10];
    CU_ASSERT_EQUAL(wd_subj_agent_server(small, sizeof small, "n", "s", "power"), WD_ERR_INVALID);
}

static void test_parse(void)
{
    char node[64], server[64];
    const char *op = NULL;
    CU_ASSERT_EQUAL(wd_subj_parse_agent("warden.agent.n1.server.s1.files.list", node, sizeof node,
                                        server, sizeof server, &op),
                    WD_OK);
    CU_ASSERT_STRING_EQUAL(node, "n1");
    CU_ASSERT_STRING_EQUAL(server, "s1");
    CU_ASSERT_STRING_EQUAL(op, "files.list");
    const char *bad[] = {"warden.agent.n1.server.s1", "warden.agent.n1.node.s1.power",
                         "warden.agent..server.s1.power", "warden.other.n1.server.s1.power",
                         "warden.agent.n1.server.s1.", "warden.agent.n1.server.s1.a..b", NULL};
    for (int i = 0; bad[i]; i++)
        CU_ASSERT_EQUAL(
            wd_subj_parse_agent(bad[i], node, sizeof node, server, sizeof server, &op),
            WD_ERR_INVALID);
}

static void test_inbox_prefix(void)
{
    char a[WD_SUBJ_INBOX_SIZE], b[WD_SUBJ_INBOX_SIZE], again[WD_SUBJ_INBOX_SIZE];
    CU_ASSERT_EQUAL(wd_subj_inbox_prefix(a, "0b6c3f1e-2d4a-4c8e-9f10-1234567890ab"), WD_OK);
    CU_ASSERT_EQUAL(wd_subj_inbox_prefix(b, "0b6c3f1e-2d4a-4c8e-9f10-1234567890ac"), WD_OK);
    CU_ASSERT_EQUAL(wd_subj_inbox_prefix(again, "0b6c3f1e-2d4a-4c8e-9f10-1234567890ab"), WD_OK);
    /* Short enough for nats.c 3.4 (<= 32), one per identity, stable. */
    CU_ASSERT_EQUAL(strlen(a), 31);
    CU_ASSERT(strncmp(a, "_INBOX.", 7) == 0);
    CU_ASSERT(wd_subj_token_ok(a + 7));
    CU_ASSERT_STRING_NOT_EQUAL(a, b);
    CU_ASSERT_STRING_EQUAL(a, again);
    /* SHA-256("abc") starts ba7816bf8f01cfea414140de. */
    CU_ASSERT_EQUAL(wd_subj_inbox_prefix(a, "abc"), WD_OK);
    CU_ASSERT_STRING_EQUAL(a, "_INBOX.ba7816bf8f01cfea414140de");
    CU_ASSERT_EQUAL(wd_subj_inbox_prefix(a, ""), WD_ERR_INVALID);
    CU_ASSERT_EQUAL(wd_subj_inbox_prefix(a, NULL), WD_ERR_INVALID);
}

int main(void)
{
    static const wd_h_case cases[] = {{"builders produce the documented shapes", test_build},
                                      {"inbox prefixes: short, distinct, stable", test_inbox_prefix},
                                      {"builders refuse tokens that change the shape", test_refuse},
                                      {"agent subjects parse; malformed ones do not", test_parse},
                                      {NULL, NULL}};
    wd_h_suite("subject", NULL, NULL, cases);
    return wd_h_run();
}
