/* Integration tests of libwarden_bus against a real nats-server: protobuf
 * request/reply with trace propagation, distinct timeout and no-responders
 * errors, reconnect after a server restart, JetStream setup. */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bus.h"
#include "harness.h"
#include "js.h"
#include "util.h"
#include "warden/v1/console.pb-c.h"

static wd_h_nats nats;
static atomic_int reconnects;

static void on_event(wd_bus_event ev, void *ud)
{
    if (ev == WD_BUS_RECONNECTED)
        atomic_fetch_add(&reconnects, 1);
}

static wd_bus *connect_bus(bool asap)
{
    wd_bus_cfg cfg = wd_bus_cfg_defaults();
    cfg.servers = nats.url;
    cfg.name = "test";
    cfg.send_asap = asap;
    cfg.reconnect_min_ms = 50;
    cfg.reconnect_max_ms = 200;
    cfg.on_event = on_event;
    wd_bus *b = NULL;
    CU_ASSERT_EQUAL_FATAL(wd_bus_connect(&b, &cfg), WD_OK);
    return b;
}

/* Echo responder: replies with an Ack whose message is the input line. */
static void echo_cb(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *ud)
{
    wd_bus *b = ud;
    Warden__V1__ConsoleInput *in =
        (Warden__V1__ConsoleInput *)wd_bus_decode(&warden__v1__console_input__descriptor, m);
    wd_bus_respond_status(b, m, in ? WD_OK : WD_ERR_PROTO, in ? in->line : "garbage");
    if (in)
        protobuf_c_message_free_unpacked(&in->base, NULL);
    natsMsg_Destroy(m);
}

static void test_request_reply_trace(void)
{
    wd_bus *srv = connect_bus(true), *cli = connect_bus(false);
    natsSubscription *sub = NULL;
    CU_ASSERT_EQUAL_FATAL(natsConnection_Subscribe(&sub, wd_bus_nats(srv), "t.echo", echo_cb, srv),
                          NATS_OK);
    natsConnection_Flush(wd_bus_nats(srv));

    Warden__V1__ConsoleInput in = WARDEN__V1__CONSOLE_INPUT__INIT;
    in.line = (char *)"hello";
    /* Trace propagation: request a raw message to see the reply headers. */
    natsMsg *req = NULL, *rep = NULL;
    uint8_t buf[64];
    size_t len = protobuf_c_message_pack(&in.base, buf);
    natsMsg_Create(&req, "t.echo", NULL, (const char *)buf, (int)len);
    natsMsgHeader_Set(req, WD_HDR_TRACE, "trace-123");
    CU_ASSERT_EQUAL(natsConnection_RequestMsg(&rep, wd_bus_nats(cli), req, 2000), NATS_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rep);
    CU_ASSERT_STRING_EQUAL(wd_bus_header(rep, WD_HDR_TRACE), "trace-123");
    natsMsg_Destroy(req);
    natsMsg_Destroy(rep);

    ProtobufCMessage *reply = NULL;
    wd_hdrs h = {.trace = "abc"};
    CU_ASSERT_EQUAL(wd_bus_request(cli, "t.echo", &in.base, &warden__v1__ack__descriptor, 2000,
                                   &h, &reply),
                    WD_OK);
    Warden__V1__Ack *ack = (Warden__V1__Ack *)reply;
    CU_ASSERT_PTR_NOT_NULL_FATAL(ack);
    CU_ASSERT_EQUAL(wd_status_check(ack->status), WD_OK);
    CU_ASSERT_STRING_EQUAL(ack->status->message, "hello");
    protobuf_c_message_free_unpacked(reply, NULL);

    /* Garbage body: the responder answers with an error status. */
    natsMsg *r2 = NULL;
    CU_ASSERT_EQUAL(natsConnection_Request(&r2, wd_bus_nats(cli), "t.echo", "\xff\xff\xff", 3, 2000),
                    NATS_OK);
    ack = (Warden__V1__Ack *)wd_bus_decode(&warden__v1__ack__descriptor, r2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ack);
    CU_ASSERT_EQUAL(wd_status_check(ack->status), WD_ERR_INVALID);
    protobuf_c_message_free_unpacked(&ack->base, NULL);
    natsMsg_Destroy(r2);

    natsSubscription_Destroy(sub);
    wd_bus_destroy(&srv);
    wd_bus_destroy(&cli);
}

static void test_no_responders_vs_timeout(void)
{
    wd_bus *cli = connect_bus(false);
    Warden__V1__ConsoleInput in = WARDEN__V1__CONSOLE_INPUT__INIT;
    in.line = (char *)"x";
    ProtobufCMessage *reply = NULL;
    int64_t t0 = wd_mono_ms();
    CU_ASSERT_EQUAL(wd_bus_request(cli, "t.nobody", &in.base, &warden__v1__ack__descriptor, 5000,
                                   NULL, &reply),
                    WD_ERR_NO_RESPONDERS);
    CU_ASSERT(wd_mono_ms() - t0 < 1000); /* fast, not the 5 s timeout */

    /* A subscriber that never answers: a timeout. */
    natsSubscription *sub = NULL;
    natsConnection_SubscribeSync(&sub, wd_bus_nats(cli), "t.silent");
    natsConnection_Flush(wd_bus_nats(cli));
    CU_ASSERT_EQUAL(wd_bus_request(cli, "t.silent", &in.base, &warden__v1__ack__descriptor, 200,
                                   NULL, &reply),
                    WD_ERR_TIMEOUT);
    natsSubscription_Destroy(sub);
    wd_bus_destroy(&cli);
}

static void test_reconnect(void)
{
    wd_bus *b = connect_bus(false);
    int before = atomic_load(&reconnects);
    wd_h_nats_stop(&nats);
    usleep(300000);
    CU_ASSERT_FALSE(wd_bus_connected(b));
    CU_ASSERT_FATAL(wd_h_nats_start(&nats));
    CU_ASSERT(WD_H_WAIT(wd_bus_connected(b), 5000));
    /* The callback runs on a nats.c thread, after the status changed. */
    CU_ASSERT(WD_H_WAIT(atomic_load(&reconnects) > before, 3000));
    /* And it works again. */
    natsSubscription *sub = NULL;
    natsConnection_SubscribeSync(&sub, wd_bus_nats(b), "t.after");
    Warden__V1__ConsoleInput in = WARDEN__V1__CONSOLE_INPUT__INIT;
    in.line = (char *)"again";
    CU_ASSERT_EQUAL(wd_bus_publish(b, "t.after", &in.base, NULL), WD_OK);
    natsMsg *m = NULL;
    CU_ASSERT_EQUAL(natsSubscription_NextMsg(&m, sub, 2000), NATS_OK);
    natsMsg_Destroy(m);
    natsSubscription_Destroy(sub);
    wd_bus_destroy(&b);
}

static void test_jetstream_setup(void)
{
    wd_bus *b = connect_bus(false);
    CU_ASSERT_EQUAL(wd_js_setup_warden(b), WD_OK);
    CU_ASSERT_EQUAL(wd_js_setup_warden(b), WD_OK); /* idempotent */
    kvStore *kv = NULL;
    CU_ASSERT_EQUAL_FATAL(wd_js_ensure_kv(b, WD_KV_SERVERS, 0, 1, &kv), WD_OK);
    CU_ASSERT_EQUAL(kvStore_PutString(NULL, kv, "s1", "n1"), NATS_OK);
    kvEntry *e = NULL;
    CU_ASSERT_EQUAL(kvStore_Get(&e, kv, "s1"), NATS_OK);
    CU_ASSERT_STRING_EQUAL(kvEntry_ValueString(e), "n1");
    kvEntry_Destroy(e);
    kvStore_Destroy(kv);

    /* A console chunk published with a Nats-Msg-Id is stored once. */
    Warden__V1__ConsoleChunk c = WARDEN__V1__CONSOLE_CHUNK__INIT;
    c.server_id = (char *)"s1";
    c.first_seq = 1;
    wd_hdrs h = {.msg_id = "s1:1"};
    for (int i = 0; i < 3; i++) {
        jsPubAck *pa = NULL;
        natsMsg *m = NULL;
        uint8_t buf[64];
        size_t len = protobuf_c_message_pack(&c.base, buf);
        natsMsg_Create(&m, "warden.server.s1.console", NULL, (const char *)buf, (int)len);
        natsMsgHeader_Set(m, WD_HDR_MSG_ID, h.msg_id);
        CU_ASSERT_EQUAL(js_PublishMsg(&pa, wd_bus_js(b), m, NULL, NULL), NATS_OK);
        jsPubAck_Destroy(pa);
        natsMsg_Destroy(m);
    }
    jsStreamInfo *si = NULL;
    CU_ASSERT_EQUAL(js_GetStreamInfo(&si, wd_bus_js(b), WD_STREAM_CONSOLE, NULL, NULL), NATS_OK);
    CU_ASSERT_EQUAL(si->State.Msgs, 1);
    jsStreamInfo_Destroy(si);
    wd_bus_destroy(&b);
}

static void test_credentials(void)
{
    /* A server that wants a user and password. */
    int port = wd_h_free_port();
    char ports[16], url[64];
    snprintf(ports, sizeof ports, "%d", port);
    snprintf(url, sizeof url, "nats://127.0.0.1:%d", port);
    const char *argv[] = {"nats-server", "-a", "127.0.0.1", "-p", ports, "--user", "warden",
                          "--pass", "s3cret", NULL};
    char log[600];
    snprintf(log, sizeof log, "%s/nats-auth.log", wd_h_tmpdir("nats-auth"));
    pid_t pid = wd_h_spawn(argv, NULL, log);
    CU_ASSERT_FATAL(wd_h_wait_port(port, 5000));
    wd_bus_cfg cfg = wd_bus_cfg_defaults();
    cfg.servers = url;
    cfg.user = "warden";
    cfg.password = "wrong";
    wd_bus *b = NULL;
    CU_ASSERT_EQUAL(wd_bus_connect(&b, &cfg), WD_ERR_DENIED);
    CU_ASSERT_PTR_NOT_NULL(strstr(wd_err_msg(), "credentials"));
    cfg.password = "s3cret";
    CU_ASSERT_EQUAL(wd_bus_connect(&b, &cfg), WD_OK);
    CU_ASSERT(wd_bus_connected(b));
    wd_bus_destroy(&b);
    /* Several servers in the list: the dead one is skipped. */
    char list[160];
    snprintf(list, sizeof list, "nats://127.0.0.1:%d, %s", wd_h_free_port(), url);
    cfg.servers = list;
    CU_ASSERT_EQUAL(wd_bus_connect(&b, &cfg), WD_OK);
    wd_bus_destroy(&b);
    wd_h_stop(pid, SIGINT, 5000);
}

/* A nats-server that requires TLS: clients that trust its CA connect and
 * talk; plain-text clients and clients without the CA are turned away. */
static void test_tls(void)
{
    const char *certs = wd_h_tls_certs();
    CU_ASSERT_PTR_NOT_NULL_FATAL(certs);
    wd_h_nats tn = {0};
    snprintf(tn.tls_dir, sizeof tn.tls_dir, "%s", certs);
    CU_ASSERT_FATAL(wd_h_nats_start(&tn));
    char ca[700], cakey[700];
    snprintf(ca, sizeof ca, "%s/ca.pem", certs);
    snprintf(cakey, sizeof cakey, "%s/ca-key.pem", certs);

    wd_bus_cfg cfg = wd_bus_cfg_defaults();
    cfg.servers = tn.url;
    cfg.name = "test-tls";
    cfg.connect_timeout_ms = 2000;
    wd_bus *b = NULL;
    /* Plain text: the server insists on TLS. */
    CU_ASSERT_NOT_EQUAL(wd_bus_connect(&b, &cfg), WD_OK);
    CU_ASSERT_PTR_NULL(b);
    /* TLS, but trusting only the system CAs: our private CA is unknown. */
    cfg.tls = true;
    CU_ASSERT_NOT_EQUAL(wd_bus_connect(&b, &cfg), WD_OK);
    CU_ASSERT_PTR_NULL(b);
    /* A file that is not a certificate: a clear error, no connection. */
    cfg.tls_ca = cakey;
    CU_ASSERT_NOT_EQUAL(wd_bus_connect(&b, &cfg), WD_OK);
    CU_ASSERT_PTR_NULL(b);
    /* With the CA: request/reply works over TLS. */
    cfg.tls_ca = ca;
    CU_ASSERT_EQUAL_FATAL(wd_bus_connect(&b, &cfg), WD_OK);
    natsSubscription *sub = NULL;
    CU_ASSERT_EQUAL_FATAL(natsConnection_Subscribe(&sub, wd_bus_nats(b), "t.tls", echo_cb, b),
                          NATS_OK);
    natsConnection_Flush(wd_bus_nats(b));
    Warden__V1__ConsoleInput in = WARDEN__V1__CONSOLE_INPUT__INIT;
    in.line = (char *)"over tls";
    Warden__V1__Ack *ack = NULL;
    CU_ASSERT_EQUAL(wd_bus_request(b, "t.tls", &in.base, &warden__v1__ack__descriptor, 2000, NULL,
                                   (ProtobufCMessage **)&ack),
                    WD_OK);
    CU_ASSERT(ack && ack->status && strcmp(ack->status->message, "over tls") == 0);
    if (ack)
        protobuf_c_message_free_unpacked(&ack->base, NULL);
    natsSubscription_Destroy(sub);
    wd_bus_destroy(&b);
    wd_h_nats_stop(&tn);
}

static int suite_init(void)
{
    return wd_h_nats_start(&nats) ? 0 : 1;
}

static int suite_clean(void)
{
    wd_h_nats_stop(&nats);
    return 0;
}

int main(void)
{
    static const wd_h_case cases[] = {
        {"request/reply carries protobuf, status and the trace id", test_request_reply_trace},
        {"no responders fails fast and differs from a timeout", test_no_responders_vs_timeout},
        {"reconnects by itself after nats-server restarts", test_reconnect},
        {"JetStream streams and KV set up idempotently; Nats-Msg-Id dedupes",
         test_jetstream_setup},
        {"credentials: refused clearly when wrong; a server list skips dead servers",
         test_credentials},
        {"TLS: only clients that trust the server's CA get through", test_tls},
        {NULL, NULL}};
    wd_h_suite("bus+nats", suite_init, suite_clean, cases);
    int rc = wd_h_run();
    nats_Close();
    return rc;
}
