/* Request input validation: every class of bad field is refused and named. */
#include <string.h>

#include "harness.h"
#include "input.h"

static const wd_field spec[] = {
    {.name = "name", .type = WD_F_STRING, .required = true, .max_len = 16},
    {.name = "email", .type = WD_F_EMAIL},
    {.name = "memory_mb", .type = WD_F_INT, .min = 64, .max = 65536},
    {.name = "public", .type = WD_F_BOOL},
    {.name = "node_id", .type = WD_F_UUID},
    {.name = "notes", .type = WD_F_TEXT, .max_len = 100, .nullable = true},
    {.name = "perms", .type = WD_F_STRING_ARRAY, .max_len = 3},
};
#define N (sizeof spec / sizeof spec[0])

static const char *why(const char *json, const char *field)
{
    static char buf[128];
    json_t *obj = json_loads(json, JSON_ALLOW_NUL, NULL);
    json_t *details = NULL;
    wd_status st = wd_input_check(obj, spec, N, &details);
    buf[0] = '\0';
    if (st == WD_ERR_INVALID) {
        const char *s = json_string_value(json_object_get(details, field));
        snprintf(buf, sizeof buf, "%s", s ? s : "(other field)");
    }
    json_decref(details);
    json_decref(obj);
    return buf;
}

static void test_fields(void)
{
    CU_ASSERT_STRING_EQUAL(why("{\"name\":\"ok\",\"memory_mb\":128,\"public\":true,"
                               "\"node_id\":\"6b1d1f3e-0000-4000-8000-000000000000\","
                               "\"notes\":\"line1\\nline2\",\"perms\":[\"a\"],"
                               "\"email\":\"a@b.io\"}",
                               "name"),
                           "");
    CU_ASSERT_STRING_EQUAL(why("{}", "name"), "is required");
    CU_ASSERT_STRING_EQUAL(why("{\"name\":\"\"}", "name"), "must not be empty");
    CU_ASSERT_STRING_EQUAL(why("{\"name\":\"x\",\"nmae\":1}", "nmae"), "is not a known field");
    CU_ASSERT_STRING_EQUAL(why("{\"name\":1}", "name"), "must be a string");
    CU_ASSERT_STRING_EQUAL(why("{\"name\":\"01234567890123456\"}", "name"), "is too long");
    CU_ASSERT_STRING_EQUAL(why("{\"name\":\"a\\u0000b\"}", "name"),
                           "must not contain NUL characters");
    CU_ASSERT_STRING_EQUAL(why("{\"name\":\"a\\nb\"}", "name"),
                           "must not contain control characters");
    CU_ASSERT_STRING_EQUAL(why("{\"name\":\"x\",\"memory_mb\":1}", "memory_mb"),
                           "is out of range");
    CU_ASSERT_STRING_EQUAL(why("{\"name\":\"x\",\"memory_mb\":\"128\"}", "memory_mb"),
                           "must be an integer");
    CU_ASSERT_STRING_EQUAL(why("{\"name\":\"x\",\"memory_mb\":1.5}", "memory_mb"),
                           "must be an integer");
    CU_ASSERT_STRING_EQUAL(why("{\"name\":\"x\",\"public\":\"yes\"}", "public"),
                           "must be true or false");
    CU_ASSERT_STRING_EQUAL(why("{\"name\":\"x\",\"node_id\":\"42\"}", "node_id"),
                           "must be a UUID");
    CU_ASSERT_STRING_EQUAL(why("{\"name\":\"x\",\"email\":\"nope\"}", "email"),
                           "must be an email address");
    CU_ASSERT_STRING_EQUAL(why("{\"name\":\"x\",\"email\":null}", "email"), "must not be null");
    CU_ASSERT_STRING_EQUAL(why("{\"name\":\"x\",\"notes\":null}", "notes"), "");
    CU_ASSERT_STRING_EQUAL(why("{\"name\":\"x\",\"perms\":[\"a\",\"b\",\"c\",\"d\"]}", "perms"),
                           "has too many items");
    CU_ASSERT_STRING_EQUAL(why("{\"name\":\"x\",\"perms\":[1]}", "perms"),
                           "must be an array of short strings");
    /* SQL metacharacters are just text here: they pass validation and are
     * later bound as parameters, never spliced into SQL. */
    CU_ASSERT_STRING_EQUAL(why("{\"name\":\"'; DROP--\"}", "name"), "");
}

static void test_page(void)
{
    const char *allowed[] = {"name", "created_at", NULL};
    wd_page p;
    CU_ASSERT_EQUAL(wd_input_page(NULL, NULL, NULL, allowed, &p), WD_OK);
    CU_ASSERT_EQUAL(p.limit, 25);
    CU_ASSERT_EQUAL(p.page, 1);
    CU_ASSERT_STRING_EQUAL(p.sort, "name");
    CU_ASSERT_EQUAL(wd_input_page("50", "3", "-created_at", allowed, &p), WD_OK);
    CU_ASSERT_EQUAL(p.limit, 50);
    CU_ASSERT_EQUAL(p.page, 3);
    CU_ASSERT_STRING_EQUAL(p.sort, "created_at");
    CU_ASSERT(p.desc);
    const char *bad[][3] = {{"0", NULL, NULL},  {"101", NULL, NULL}, {"x", NULL, NULL},
                            {NULL, "0", NULL},  {NULL, "-1", NULL},  {NULL, "1e3", NULL},
                            {NULL, NULL, "id;"}, {NULL, NULL, "-"},  {"", NULL, NULL}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CU_ASSERT_EQUAL(wd_input_page(bad[i][0], bad[i][1], bad[i][2], allowed, &p),
                        WD_ERR_INVALID);
}

int main(void)
{
    static const wd_h_case cases[] = {{"every kind of bad field is named", test_fields},
                                      {"pagination and sort values", test_page},
                                      {NULL, NULL}};
    wd_h_suite("input", NULL, NULL, cases);
    return wd_h_run();
}
