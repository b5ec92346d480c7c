/* cli/filter.c: parsing filter expressions (errors name the bad term) and
 * matching them, terms ANDed, globs where documented. */
#include <string.h>

#include "filter.h"
#include "harness.h"

static void test_parse(void)
{
    wd_filter f;
    CU_ASSERT_EQUAL(wd_filter_parse(NULL, &f), WD_OK);
    CU_ASSERT_EQUAL(f.n, 0);
    CU_ASSERT_EQUAL(wd_filter_parse("", &f), WD_OK);
    CU_ASSERT_EQUAL(f.n, 0);
    CU_ASSERT_EQUAL(wd_filter_parse("node=n1,state=running,template=test*,name=eu-*,id=ab*", &f),
                    WD_OK);
    CU_ASSERT_EQUAL(f.n, 5);
    CU_ASSERT_EQUAL(f.terms[1].key, WD_FK_STATE);
    CU_ASSERT_STRING_EQUAL(f.terms[3].value, "eu-*");
    CU_ASSERT_EQUAL(wd_filter_parse("name=a=b", &f), WD_OK); /* '=' in a value */
    CU_ASSERT_STRING_EQUAL(f.terms[0].value, "a=b");
    CU_ASSERT_EQUAL(wd_filter_parse("state=running,", &f), WD_OK);
    CU_ASSERT_EQUAL(f.n, 1);
    CU_ASSERT_EQUAL(wd_filter_parse("bogus=1", &f), WD_ERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(wd_err_msg(), "bogus"));
    CU_ASSERT_EQUAL(wd_filter_parse("state=runing", &f), WD_ERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(wd_err_msg(), "runing"));
    CU_ASSERT_EQUAL(wd_filter_parse("name", &f), WD_ERR_INVALID);
    CU_ASSERT_EQUAL(wd_filter_parse("name=", &f), WD_ERR_INVALID);
    CU_ASSERT_EQUAL(wd_filter_parse("=x", &f), WD_ERR_INVALID);
    char many[400] = "";
    for (int i = 0; i < 17; i++)
        strcat(many, "name=x,");
    CU_ASSERT_EQUAL(wd_filter_parse(many, &f), WD_ERR_INVALID);
    char big[400] = "name=";
    memset(big + 5, 'x', 300);
    big[305] = '\0';
    CU_ASSERT_EQUAL(wd_filter_parse(big, &f), WD_ERR_INVALID);
}

static void test_match(void)
{
    wd_filter f;
    wd_filter_subject a = {.id = "aaaa-1",
                           .name = "eu-1",
                           .node = "n1",
                           .template_id = "testgame",
                           .state = "running"};
    wd_filter_subject b = {
        .id = "bbbb-2", .name = "us-1", .node = "n2", .template_id = "freeciv", .state = "offline"};
    wd_filter_subject c = {.id = "cccc-3"}; /* unreachable: nothing known */
    wd_filter_parse("", &f);
    CU_ASSERT(wd_filter_match(&f, &a) && wd_filter_match(&f, &c));
    wd_filter_parse("state=running", &f);
    CU_ASSERT(wd_filter_match(&f, &a) && !wd_filter_match(&f, &b) && !wd_filter_match(&f, &c));
    wd_filter_parse("name=eu-*", &f);
    CU_ASSERT(wd_filter_match(&f, &a) && !wd_filter_match(&f, &b));
    wd_filter_parse("node=n2,template=free*", &f);
    CU_ASSERT(!wd_filter_match(&f, &a) && wd_filter_match(&f, &b));
    wd_filter_parse("node=n2,state=running", &f); /* AND */
    CU_ASSERT(!wd_filter_match(&f, &a) && !wd_filter_match(&f, &b));
    wd_filter_parse("id=cccc*", &f);
    CU_ASSERT(wd_filter_match(&f, &c) && !wd_filter_match(&f, &a));
    wd_filter_parse("name=*", &f);
    CU_ASSERT(wd_filter_match(&f, &c)); /* "*" matches the empty name too */
}

int main(void)
{
    static const wd_h_case cases[] = {
        {"filter expressions parse, and bad terms are named", test_parse},
        {"terms are ANDed; node, template, name and id take globs", test_match},
        {NULL, NULL}};
    wd_h_suite("filter", NULL, NULL, cases);
    return wd_h_run();
}
