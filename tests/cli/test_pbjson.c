/* cli/pbjson.c: the subject → type table, the descriptor-walking JSON
 * printer (enums by name, maps, bytes, escaping, redaction), and garbage:
 * random and mutated payloads for every known type must print one line
 * that is valid JSON (checked with jansson) and never crash. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "pbjson.h"
#include "warden/v1/backup.pb-c.h"
#include "warden/v1/console.pb-c.h"
#include "warden/v1/events.pb-c.h"
#include "warden/v1/files.pb-c.h"
#include "warden/v1/node.pb-c.h"
#include "warden/v1/server.pb-c.h"

/* Prints one message into a string (caller frees). */
static char *print(const char *subject, const void *data, size_t len, bool json)
{
    char *out = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&out, &n);
    wd_pbjson_print_msg(f, subject, data, len, 1795650000123, json ? "trace1" : NULL, json);
    fclose(f);
    return out;
}

static char *pack(const ProtobufCMessage *m, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(*len + 1);
    protobuf_c_message_pack(m, buf);
    return (char *)buf;
}

static void test_subjects(void)
{
    static const struct {
        const char *subject;
        const ProtobufCMessageDescriptor *want;
    } cases[] = {
        {"warden.server.S.state", &warden__v1__server_state_event__descriptor},
        {"warden.server.S.console", &warden__v1__console_chunk__descriptor},
        {"warden.server.S.stats", &warden__v1__server_stats__descriptor},
        {"warden.server.S.other", NULL},
        {"warden.node.N.heartbeat", &warden__v1__node_heartbeat__descriptor},
        {"$KV.warden_nodes.N", &warden__v1__node_heartbeat__descriptor},
        {"$KV.warden_servers.S", NULL},
        {"warden.discovery.hello", &warden__v1__discovery_hello__descriptor},
        {"warden.discovery.probe", &warden__v1__discovery_probe__descriptor},
        {"warden.discovery.join", &warden__v1__join_request__descriptor},
        {"warden.panel.events.audit", &warden__v1__panel_event__descriptor},
        {"warden.panel.events.session.revoked", &warden__v1__panel_event__descriptor},
        {"warden.agent.N.server.S.power", &warden__v1__power_request__descriptor},
        {"warden.agent.N.server.S.console.in", &warden__v1__console_input__descriptor},
        {"warden.agent.N.server.S.sync", &warden__v1__sync_request__descriptor},
        {"warden.agent.N.server.S.backup.create", &warden__v1__backup_create_request__descriptor},
        {"warden.agent.N.server.S.files.list", &warden__v1__file_list_request__descriptor},
        {"warden.agent.N.server.S.nope", NULL},
        {"warden.agent.N.server.S.console.in.x", NULL},
        {"warden.agent.N.server.S", NULL},
        {"warden.agent.N", NULL},
        {"_INBOX.abc.1", NULL},
        {"warden", NULL},
        {"", NULL},
        {"....", NULL},
        {"warden.server..state", &warden__v1__server_state_event__descriptor},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const ProtobufCMessageDescriptor *d = wd_pbjson_subject_type(cases[i].subject);
        if (d != cases[i].want)
            fprintf(stderr, "subject %s: got %s\n", cases[i].subject, d ? d->name : "NULL");
        CU_ASSERT_PTR_EQUAL(d, cases[i].want);
    }
    char longsub[600];
    memset(longsub, 'a', sizeof longsub - 1);
    longsub[sizeof longsub - 1] = '\0';
    CU_ASSERT_PTR_NULL(wd_pbjson_subject_type(longsub));
    CU_ASSERT_PTR_NULL(wd_pbjson_subject_type(NULL));
}

static void test_state_event(void)
{
    Warden__V1__ServerStateEvent ev = WARDEN__V1__SERVER_STATE_EVENT__INIT;
    ev.server_id = (char *)"s1";
    ev.state = WARDEN__V1__SERVER_STATE__SERVER_STATE_RUNNING;
    ev.previous = WARDEN__V1__SERVER_STATE__SERVER_STATE_STARTING;
    ev.reason = (char *)"done \"pattern\" seen";
    ev.exit_code = -1;
    ev.time_unix_ms = 1795650000000;
    size_t len;
    char *buf = pack(&ev.base, &len);
    char *out = print("warden.server.s1.state", buf, len, false);
    CU_ASSERT_EQUAL(strncmp(out, "2026-11-25T23:40:00.123Z ", 25), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(
        out, " warden.server.s1.state ServerStateEvent {\"server_id\":\"s1\",\"state\":"
             "\"SERVER_STATE_RUNNING\",\"previous\":\"SERVER_STATE_STARTING\",\"reason\":\"done "
             "\\\"pattern\\\" seen\",\"time_unix_ms\":1795650000000,\"exit_code\":-1}\n"));
    free(out);
    out = print("warden.server.s1.state", buf, len, true);
    json_error_t err;
    json_t *j = json_loads(out, 0, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "type")),
                           "warden.v1.ServerStateEvent");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "trace")), "trace1");
    json_t *m = json_object_get(j, "message");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(m, "state")), "SERVER_STATE_RUNNING");
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(m, "exit_code")), -1);
    CU_ASSERT_PTR_NULL(json_object_get(m, "signal")); /* default: left out */
    json_decref(j);
    free(out);
    free(buf);
}

static void test_nested_bytes_maps(void)
{
    /* Bytes as base64, repeated, an unknown enum value by number. */
    Warden__V1__ConsoleChunk c = WARDEN__V1__CONSOLE_CHUNK__INIT;
    ProtobufCBinaryData lines[2] = {{3, (uint8_t *)"abc"}, {2, (uint8_t *)"\xff\x00"}};
    c.n_lines = 2;
    c.lines = lines;
    c.source = 42;
    size_t len;
    char *buf = pack(&c.base, &len);
    char *out = print("warden.server.x.console", buf, len, false);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "{\"lines\":[\"YWJj\",\"/wA=\"],\"source\":42}"));
    free(out);
    free(buf);

    /* Nested messages, maps, and the redaction of secret variables. */
    Warden__V1__TemplateVariable v1 = WARDEN__V1__TEMPLATE_VARIABLE__INIT, v2 = v1;
    v1.name = (char *)"PORT";
    v2.name = (char *)"RCON";
    v2.secret = true;
    Warden__V1__TemplateVariable *vars[] = {&v1, &v2};
    Warden__V1__Template t = WARDEN__V1__TEMPLATE__INIT;
    t.id = (char *)"game";
    t.n_variables = 2;
    t.variables = vars;
    Warden__V1__ServerSpec__VariablesEntry e1 = WARDEN__V1__SERVER_SPEC__VARIABLES_ENTRY__INIT,
                                           e2 = e1;
    e1.key = (char *)"PORT";
    e1.value = (char *)"27015";
    e2.key = (char *)"RCON";
    e2.value = (char *)"hunter2";
    Warden__V1__ServerSpec__VariablesEntry *ents[] = {&e1, &e2};
    Warden__V1__ServerSpec spec = WARDEN__V1__SERVER_SPEC__INIT;
    spec.id = (char *)"s1";
    spec.template_ = &t;
    spec.n_variables = 2;
    spec.variables = ents;
    Warden__V1__SyncRequest req = WARDEN__V1__SYNC_REQUEST__INIT;
    req.spec = &spec;
    buf = pack(&req.base, &len);
    out = print("warden.agent.n.server.s1.sync", buf, len, true);
    CU_ASSERT_PTR_NULL(strstr(out, "hunter2"));
    json_t *j = json_loads(out, 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    json_t *vs =
        json_object_get(json_object_get(json_object_get(j, "message"), "spec"), "variables");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(vs, "PORT")), "27015");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(vs, "RCON")), "(redacted)");
    json_t *tv = json_object_get(
        json_object_get(json_object_get(json_object_get(j, "message"), "spec"), "template"),
        "variables");
    CU_ASSERT_EQUAL(json_array_size(tv), 2);
    json_decref(j);
    free(out);
    free(buf);
}

static void test_strings_escaped(void)
{
    Warden__V1__ConsoleInput in = WARDEN__V1__CONSOLE_INPUT__INIT;
    in.line = (char *)"a\"b\\c\x01\x1b[31m\xff\xc3\xa9\xed\xa0\x80 \xf0\x9f\x98\x80\n";
    size_t len;
    char *buf = pack(&in.base, &len);
    char *out = print("warden.agent.n.server.s.console.in", buf, len, false);
    /* Quotes, backslash, controls escaped; a lone 0xff and a UTF-16
     * surrogate (ED A0 80) replaced; é and the emoji kept. */
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "{\"line\":\"a\\\"b\\\\c\\u0001\\u001b[31m\\ufffd\xc3\xa9"
                                       "\\ufffd\\ufffd\\ufffd \xf0\x9f\x98\x80\\n\"}"));
    free(out);
    out = print("warden.agent.n.server.s.console.in", buf, len, true);
    json_t *j = json_loads(out, 0, NULL);
    CU_ASSERT_PTR_NOT_NULL(j);
    json_decref(j);
    free(out);
    free(buf);
}

static void test_raw(void)
{
    /* A reply (inbox): size, base64 prefix, and text when it is text. */
    const char *text = "{\"type\":\"io.nats.jetstream.api.v1.stream_info_response\"}";
    char *out = print("_INBOX.x.1", text, strlen(text), true);
    json_t *j = json_loads(out, 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT(json_is_null(json_object_get(j, "type")));
    json_t *raw = json_object_get(j, "raw");
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(raw, "size")), (json_int_t)strlen(text));
    CU_ASSERT(json_is_true(json_object_get(raw, "truncated")));
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(raw, "text")), text);
    json_decref(j);
    free(out);
    /* A known subject with garbage: "undecodable", never a crash. */
    out = print("warden.server.s.state", "\xff\xff\xff", 3, false);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, " warden.server.s.state undecodable {\"size\":3,"));
    free(out);
    out = print("warden.server.s.state", "", 0, false); /* empty = all defaults */
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "ServerStateEvent {}"));
    free(out);
}

/* xorshift: reproducible garbage. */
static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)rng;
}

/* Every known type gets random bytes, protobuf-shaped random fields
 * (valid tags with random wire types and lengths) and mutations of a real
 * message; every line must be one valid JSON object. */
static void test_garbage(void)
{
    static const char *const subjects[] = {"warden.server.s.console",
                                           "warden.server.s.state",
                                           "warden.server.s.stats",
                                           "warden.node.n.heartbeat",
                                           "warden.discovery.hello",
                                           "warden.discovery.probe",
                                           "warden.discovery.join",
                                           "warden.panel.events.audit",
                                           "warden.agent.n.server.s.sync",
                                           "warden.agent.n.server.s.power",
                                           "warden.agent.n.server.s.backup.create",
                                           "warden.agent.n.server.s.files.write",
                                           "_INBOX.x",
                                           "warden.agent.n.server.s.console.in"};
    size_t nsub = sizeof subjects / sizeof subjects[0];
    uint8_t buf[512];
    int decoded = 0, lines = 0, bad = 0;
    /* A real message to mutate. */
    Warden__V1__NodeHeartbeat hb = WARDEN__V1__NODE_HEARTBEAT__INIT;
    Warden__V1__NodeCapabilities caps = WARDEN__V1__NODE_CAPABILITIES__INIT;
    hb.node_id = (char *)"node";
    hb.name = (char *)"name";
    hb.cpu_percent = 12.5;
    hb.capabilities = &caps;
    caps.notes = (char *)"notes";
    size_t seedlen;
    char *seed = pack(&hb.base, &seedlen);
    for (int iter = 0; iter < 30000; iter++) {
        size_t len = rnd() % 200;
        int mode = iter % 3;
        if (mode == 0) {
            for (size_t i = 0; i < len; i++)
                buf[i] = (uint8_t)rnd();
        } else if (mode == 1) {
            /* tag (field 1..16, any wire type), then a varint or length. */
            size_t p = 0;
            while (p + 8 < len) {
                buf[p++] = (uint8_t)(((rnd() % 16 + 1) << 3) | (rnd() % 6));
                uint32_t r = rnd();
                buf[p++] = (uint8_t)(r % 2 ? r % 40 : r);
                for (int k = rnd() % 4; k > 0 && p < len; k--)
                    buf[p++] = (uint8_t)rnd();
            }
            len = p;
        } else {
            len = seedlen;
            memcpy(buf, seed, len);
            for (int k = 1 + rnd() % 3; k > 0; k--)
                buf[rnd() % len] = (uint8_t)rnd();
            if (rnd() % 4 == 0)
                len = rnd() % (len + 1);
        }
        const char *subject = subjects[iter % nsub];
        bool json = iter % 2 == 0;
        char *out = NULL;
        size_t n = 0;
        FILE *f = open_memstream(&out, &n);
        decoded += wd_pbjson_print_msg(f, subject, buf, len, 1795650000123, NULL, json);
        fclose(f);
        lines++;
        /* One line, ending in a newline, nothing else. */
        if (n == 0 || out[n - 1] != '\n' || memchr(out, '\n', n - 1) != NULL)
            bad++;
        if (json) {
            json_error_t err;
            json_t *j = json_loads(out, 0, &err);
            if (j == NULL) {
                if (bad++ < 5)
                    fprintf(stderr, "not JSON (%s): %s", err.text, out);
            }
            json_decref(j);
        }
        free(out);
    }
    free(seed);
    fprintf(stderr, "garbage: %d lines, %d decoded as their type\n", lines, decoded);
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT(decoded > 0); /* the shaped and mutated ones often decode */
}

static void test_every_type_defaults(void)
{
    /* Each known type, packed empty and with all-zero bytes, prints. */
    for (size_t i = 0; wd_pbjson_known_types[i]; i++) {
        ProtobufCMessage *m = calloc(1, wd_pbjson_known_types[i]->sizeof_message);
        protobuf_c_message_init(wd_pbjson_known_types[i], m);
        char *out = NULL;
        size_t n = 0;
        FILE *f = open_memstream(&out, &n);
        wd_pbjson_message(f, m);
        fclose(f);
        CU_ASSERT_STRING_EQUAL(out, "{}");
        free(out);
        free(m);
    }
}

int main(void)
{
    static const wd_h_case cases[] = {
        {"subjects map to their message types; replies and foreign subjects to none",
         test_subjects},
        {"a state event prints as one line, enums by name, and as JSON", test_state_event},
        {"bytes as base64, unknown enums as numbers, maps as objects, secrets redacted",
         test_nested_bytes_maps},
        {"strings are JSON-escaped and invalid UTF-8 replaced", test_strings_escaped},
        {"replies and undecodable payloads print raw", test_raw},
        {"every known type at its defaults prints {}", test_every_type_defaults},
        {"30,000 garbage payloads: one valid JSON line each, no crash", test_garbage},
        {NULL, NULL}};
    wd_h_suite("pbjson", NULL, NULL, cases);
    return wd_h_run();
}
