/* Unit tests for panel-ws/ws_events.c: the JSON events the gateway sends,
 * built from bus messages, and the bytes-to-JSON-string rule. */
#include <stdlib.h>
#include <string.h>

#include "ws_events.h"
#include "harness.h"

static json_t *parse(wd_ws_frame *f)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    json_error_t err;
    json_t *v = json_loadb((const char *)wd_ws_frame_data(f), f->len, 0, &err);
    CU_ASSERT_PTR_NOT_NULL(v);
    return v;
}

static const char *event_of(json_t *v)
{
    return json_string_value(json_object_get(v, "event"));
}

static void test_bytes(void)
{
    json_t *s = wd_ws_json_bytes("plain ascii", 11);
    CU_ASSERT_STRING_EQUAL(json_string_value(s), "plain ascii");
    json_decref(s);
    s = wd_ws_json_bytes("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14);
    CU_ASSERT_EQUAL(json_string_length(s), 14);
    json_decref(s);
    /* Invalid bytes, overlong forms, surrogates, truncated sequences. */
    const char *bad[] = {"\xff",     "a\xc0\xafz",       "\xed\xa0\x80",
                         "\xe2\x82", "\xf4\x90\x80\x80", NULL};
    for (int i = 0; bad[i]; i++) {
        s = wd_ws_json_bytes(bad[i], strlen(bad[i]));
        CU_ASSERT_PTR_NOT_NULL_FATAL(s);
        CU_ASSERT(strstr(json_string_value(s), "\xef\xbf\xbd") != NULL);
        char *dump = json_dumps(s, JSON_ENCODE_ANY);
        CU_ASSERT_PTR_NOT_NULL(dump); /* valid JSON text */
        free(dump);
        json_decref(s);
    }
    /* Embedded NUL survives as \u0000. */
    s = wd_ws_json_bytes("a\0b", 3);
    CU_ASSERT_EQUAL(json_string_length(s), 3);
    json_decref(s);
}

static void test_console(void)
{
    ProtobufCBinaryData lines[3] = {
        {5, (uint8_t *)"line1"}, {5, (uint8_t *)"line2"}, {2, (uint8_t *)"\xff!"}};
    Warden__V1__ConsoleChunk c = WARDEN__V1__CONSOLE_CHUNK__INIT;
    c.first_seq = 10;
    c.n_lines = 3;
    c.lines = lines;
    c.dropped = 4;
    wd_ws_frame *f = wd_ws_event_console(&c, 0);
    json_t *v = parse(f);
    CU_ASSERT_STRING_EQUAL(event_of(v), "console output");
    CU_ASSERT_EQUAL(json_array_size(json_object_get(v, "args")), 3);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(v, "seq")), 10);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(v, "dropped")), 4);
    CU_ASSERT_EQUAL(f->kind, WD_WS_FRAME_CONSOLE);
    CU_ASSERT_EQUAL(f->seq_first, 10);
    CU_ASSERT_EQUAL(f->seq_last, 12);
    json_decref(v);
    wd_ws_frame_unref(f);
    /* Cut to lines from 11 on. */
    f = wd_ws_event_console(&c, 11);
    v = parse(f);
    CU_ASSERT_EQUAL(json_array_size(json_object_get(v, "args")), 2);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(v, "seq")), 11);
    CU_ASSERT_PTR_NULL(json_object_get(v, "dropped"));
    json_decref(v);
    wd_ws_frame_unref(f);
    CU_ASSERT_PTR_NULL(wd_ws_event_console(&c, 13));
    /* Install output and system lines. */
    c.source = WARDEN__V1__CONSOLE_SOURCE__CONSOLE_INSTALL;
    f = wd_ws_event_console(&c, 0);
    v = parse(f);
    CU_ASSERT_STRING_EQUAL(event_of(v), "install output");
    json_decref(v);
    wd_ws_frame_unref(f);
    c.source = WARDEN__V1__CONSOLE_SOURCE__CONSOLE_SYSTEM;
    c.first_seq = 0;
    f = wd_ws_event_console(&c, 0);
    v = parse(f);
    CU_ASSERT_STRING_EQUAL(event_of(v), "console output");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(v, "source")), "system");
    CU_ASSERT_PTR_NULL(json_object_get(v, "seq"));
    CU_ASSERT_EQUAL(f->seq_last, 0);
    json_decref(v);
    wd_ws_frame_unref(f);
}

static void test_status_stats_error(void)
{
    Warden__V1__ServerStateEvent e = WARDEN__V1__SERVER_STATE_EVENT__INIT;
    e.state = WARDEN__V1__SERVER_STATE__SERVER_STATE_RUNNING;
    e.previous = WARDEN__V1__SERVER_STATE__SERVER_STATE_STARTING;
    e.reason = (char *)"done pattern seen";
    e.installed = true;
    wd_ws_frame *f = wd_ws_event_status(&e);
    json_t *v = parse(f);
    CU_ASSERT_STRING_EQUAL(event_of(v), "status");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(json_object_get(v, "args"), 0)),
                           "running");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(v, "previous")), "starting");
    CU_ASSERT(json_is_true(json_object_get(v, "installed")));
    CU_ASSERT_EQUAL(f->kind, WD_WS_FRAME_STATUS);
    json_decref(v);
    /* Shared references. */
    wd_ws_frame_ref(f);
    wd_ws_frame_unref(f);
    wd_ws_frame_unref(f);
    wd_ws_frame_unref(NULL);

    Warden__V1__ServerStats s = WARDEN__V1__SERVER_STATS__INIT;
    s.state = WARDEN__V1__SERVER_STATE__SERVER_STATE_RUNNING;
    s.cpu_percent = 12.5;
    s.memory_bytes = 1234;
    f = wd_ws_event_stats(&s);
    v = parse(f);
    json_t *o = json_array_get(json_object_get(v, "args"), 0);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(o, "memory_bytes")), 1234);
    CU_ASSERT(json_real_value(json_object_get(o, "cpu_percent")) == 12.5);
    CU_ASSERT(json_is_object(json_object_get(o, "network")));
    json_decref(v);
    wd_ws_frame_unref(f);

    f = wd_ws_event_error("bad_args", "say \"why\"", "set state");
    v = parse(f);
    json_t *a = json_object_get(v, "args");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(a, 0)), "bad_args");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(a, 1)), "say \"why\"");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(a, 2)), "set state");
    json_decref(v);
    wd_ws_frame_unref(f);

    f = wd_ws_event_simple("auth success", NULL);
    v = parse(f);
    CU_ASSERT_EQUAL(json_array_size(json_object_get(v, "args")), 0);
    json_decref(v);
    wd_ws_frame_unref(f);

    CU_ASSERT_STRING_EQUAL(wd_ws_error_code(WD_ERR_STATE), "failed_precondition");
    CU_ASSERT_STRING_EQUAL(wd_ws_error_code(WD_ERR_NO_RESPONDERS), "node_unavailable");
    CU_ASSERT_STRING_EQUAL(wd_ws_error_code(WD_ERR_FULL), "busy");
    CU_ASSERT_STRING_EQUAL(wd_ws_state_name(99), "unknown");
}

int main(void)
{
    static const wd_h_case cases[] = {
        {"bytes become valid JSON strings", test_bytes},
        {"console and install output, cut by sequence", test_console},
        {"status, stats, errors, simple events", test_status_stats_error},
        {NULL, NULL},
    };
    wd_h_suite("ws_events", NULL, NULL, cases);
    return wd_h_run();
}
