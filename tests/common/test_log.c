/* Tests of common/log.c: one event is one parseable line, in logfmt and in
 * JSON lines, whatever the message holds. */
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "log.h"
#include "util.h"

/* Runs fn with stderr sent to a file; returns what it wrote (heap). */
static char *capture(void (*fn)(void))
{
    const char *path = wd_h_write_tmp("log.txt", "");
    int fd = open(path, O_WRONLY | O_TRUNC);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    fn();
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(fd);
    char *text = NULL;
    return wd_read_file(path, 1 << 20, &text, NULL) == WD_OK ? text : NULL;
}

static const char *const NASTY = "say \"hi\" \\ path\nsecond line\tand a tab";

static void log_nasty(void)
{
    wd_log_set_trace("abc123");
    wd_info("%s", NASTY);
    wd_log_set_trace(NULL);
    wd_warn("plain");
}

static void test_logfmt(void)
{
    wd_log_set_json(false);
    char *out = capture(log_nasty);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    CU_ASSERT(strstr(out, "level=info comp=test trace=abc123 msg=\"say \\\"hi\\\" \\\\ path second "
                          "line and a tab\"\n") != NULL);
    CU_ASSERT(strstr(out, "level=warn comp=test msg=\"plain\"\n") != NULL);
    /* Two events, two lines. */
    int lines = 0;
    for (char *p = out; *p; p++)
        lines += *p == '\n';
    CU_ASSERT_EQUAL(lines, 2);
    free(out);
}

static void test_json(void)
{
    wd_log_set_json(true);
    char *out = capture(log_nasty);
    wd_log_set_json(false);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    char *second = strchr(out, '\n');
    CU_ASSERT_PTR_NOT_NULL_FATAL(second);
    *second++ = '\0';
    json_error_t err;
    json_t *a = json_loads(out, 0, &err), *b = json_loads(second, 0, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(a, "level")), "info");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(a, "comp")), "test");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(a, "trace")), "abc123");
    /* Quotes and backslashes survive; control characters become spaces. */
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(a, "msg")),
                           "say \"hi\" \\ path second line and a tab");
    CU_ASSERT(strlen(json_string_value(json_object_get(a, "ts"))) == 24);
    CU_ASSERT_PTR_NULL(json_object_get(b, "trace"));
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(b, "msg")), "plain");
    json_decref(a);
    json_decref(b);
    free(out);
}

int main(void)
{
    wd_log_set_component("test");
    static const wd_h_case cases[] = {{"logfmt: one escaped line per event", test_logfmt},
                                      {"JSON lines: parseable, fields, escaping", test_json},
                                      {NULL, NULL}};
    wd_h_suite("log", NULL, NULL, cases);
    return wd_h_run();
}
