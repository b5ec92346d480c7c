/* Integration tests of warden-ws with a real nats-server, a real
 * warden-agent running the test game (templates/testgame.json) and real
 * gateway processes: authentication, history then live console, commands
 * and power with and without permission, bad input of every kind, token
 * expiry and in-band re-auth, revocation from the bus, fan-out through one
 * subscription, a slow client, and two gateways side by side. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "subject.h"
#include "util.h"
#include "warden/v1/events.pb-c.h"
#include "lws_client.h"
#include "ws_fixture.h"

#define ACT(x) WARDEN__V1__POWER_REQUEST__ACTION__##x
#define ST(x) WARDEN__V1__SERVER_STATE__SERVER_STATE_##x

static wd_fx fx;
static wd_gx gw;
static char server_id[37];
static wd_watch *watch;

static const char *const all_perms[] = {"websocket.connect", "control.*", NULL};
static const char *const console_only[] = {"websocket.connect", "control.console", NULL};

static int suite_init(void)
{
    if (!wd_gx_keys() || !wd_fx_start(&fx))
        return 1;
    const char *extra[] = {"--expiry-warning=2", "--rate=20",
                           "--rate-burst=20",    "--send-queue-bytes=2097152",
                           "--max-message=4096", "--socket-sndbuf=65536",
                           "--auth-timeout=3",   NULL};
    if (!wd_gx_start(&gw, &fx, extra))
        return 1;
    const char *vars[] = {"READY_DELAY_MS=0", NULL};
    if (wd_fx_create(&fx, wd_fx_template("testgame"), vars, server_id) != WD_OK)
        return 1;
    watch = wd_watch_start(&fx, server_id);
    Warden__V1__InstallRequest ir = WARDEN__V1__INSTALL_REQUEST__INIT;
    if (wd_fx_request(&fx, server_id, "install", &ir.base, &warden__v1__ack__descriptor, NULL) !=
            WD_OK ||
        !wd_watch_wait_state(watch, ST(OFFLINE), 20000))
        return 1;
    if (wd_fx_power(&fx, server_id, ACT(START)) != WD_OK ||
        !wd_watch_wait_state(watch, ST(RUNNING), 10000))
        return 1;
    return 0;
}

static int suite_clean(void)
{
    wd_gx_stop(&gw);
    wd_watch_free(watch);
    wd_fx_stop(&fx);
    return 0;
}

static wsc *client(const char *user, const char *sid, const char *const *perms, int ttl)
{
    char *t = wd_gx_token(&fx, server_id, user, sid, perms, ttl);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    wsc *c = wd_gx_client(&gw, t);
    free(t);
    return c;
}

static const char *err_code(json_t *m)
{
    json_t *a = json_array_get(json_object_get(m, "args"), 0);
    return json_is_string(a) ? json_string_value(a) : "";
}

/* Waits until the gateway has no connection left (the previous test's
 * clients are gone) so that counts are exact. */
static void wait_idle(wd_gx *g)
{
    bool idle = WD_H_WAIT(wd_gx_metric(g, "warden_ws_connections") == 0, 5000);
    CU_ASSERT(idle);
    if (!idle)
        fprintf(stderr, "gateway not idle: connections=%ld, see %s\n",
                wd_gx_metric(g, "warden_ws_connections"), g->log);
}

static void test_history_then_live(void)
{
    wsc *c = client("user-1", "s1", all_perms, 600);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    /* The current state comes right after auth. */
    json_t *st = wsc_wait(c, "status", NULL, 5000);
    CU_ASSERT_PTR_NOT_NULL(st);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(json_object_get(st, "args"), 0)),
                           "running");
    /* History: the game's start-up lines, numbered. */
    wsc_send_event(c, "send logs", NULL);
    json_t *h = wsc_wait(c, "console output", "Ready:", 5000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    CU_ASSERT(json_integer_value(json_object_get(h, "seq")) > 0);
    CU_ASSERT(wsc_index(c, "console output", "Greeting: hello") >= 0);
    /* Live: a command and its effect, after the history. */
    wsc_send_event(c, "send command", "echo live-line-1");
    CU_ASSERT_PTR_NOT_NULL(wsc_wait(c, "console output", "live-line-1", 5000));
    CU_ASSERT(wsc_index(c, "console output", "Ready:") <
              wsc_index(c, "console output", "live-line-1"));
    CU_ASSERT(wd_watch_wait_line(watch, "live-line-1", 2000));
    /* History again: now it holds the live line too, once. */
    wsc_send_event(c, "send logs", NULL);
    CU_ASSERT_PTR_NOT_NULL(wsc_wait(c, "console output", "live-line-1", 5000));
    /* Stats arrive live, and on demand. */
    CU_ASSERT_PTR_NOT_NULL(wsc_wait(c, "stats", NULL, 5000));
    wsc_send_event(c, "send stats", NULL);
    json_t *s = wsc_wait(c, "stats", NULL, 3000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    json_t *o = json_array_get(json_object_get(s, "args"), 0);
    CU_ASSERT(json_is_object(o));
    CU_ASSERT(json_integer_value(json_object_get(o, "memory_bytes")) > 0);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(o, "state")), "running");
    wsc_free(c);
}

static void test_permissions(void)
{
    wsc *c = client("user-2", "s2", console_only, 600);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    const char *acts[] = {"stop", "kill", "restart", "start", NULL};
    for (int i = 0; acts[i]; i++) {
        wsc_send_event(c, "set state", acts[i]);
        json_t *e = wsc_wait(c, "error", NULL, 3000);
        CU_ASSERT_PTR_NOT_NULL_FATAL(e);
        CU_ASSERT_STRING_EQUAL(err_code(e), "permission_denied");
    }
    /* Nothing happened to the game. */
    wsc_send_event(c, "send command", "echo still-up");
    CU_ASSERT_PTR_NOT_NULL(wsc_wait(c, "console output", "still-up", 5000));
    wsc_free(c);

    /* Without control.console, commands are refused; watching is allowed. */
    const char *watch_only[] = {"websocket.connect", NULL};
    c = client("user-2", "s2", watch_only, 600);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    wsc_send_event(c, "send command", "echo must-not-run");
    json_t *e = wsc_wait(c, "error", NULL, 3000);
    CU_ASSERT_PTR_NOT_NULL(e);
    CU_ASSERT_STRING_EQUAL(err_code(e), "permission_denied");
    wsc_free(c);
    usleep(300000);
    CU_ASSERT(!wd_watch_wait_line(watch, "must-not-run", 300));

    /* Without websocket.connect there is no socket at all. */
    const char *none[] = {"control.console", NULL};
    char *t = wd_gx_token(&fx, server_id, "user-2", "s2", none, 600);
    c = wsc_connect(gw.port, NULL, NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    wsc_send_event(c, "auth", t);
    e = wsc_wait(c, "error", NULL, 3000);
    CU_ASSERT_PTR_NOT_NULL(e);
    CU_ASSERT_STRING_EQUAL(err_code(e), "auth_failed");
    free(t);
    wsc_free(c);
}

static void test_agent_errors(void)
{
    wsc *c = client("user-3", "s3", all_perms, 600);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    /* start while running: the agent's FAILED_PRECONDITION reaches the user. */
    wsc_send_event(c, "set state", "start");
    json_t *e = wsc_wait(c, "error", NULL, 5000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    CU_ASSERT_STRING_EQUAL(err_code(e), "failed_precondition");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(json_object_get(e, "args"), 2)),
                           "set state");
    /* Bad arguments are ours to refuse. */
    wsc_send_event(c, "set state", "explode");
    e = wsc_wait(c, "error", NULL, 3000);
    CU_ASSERT_STRING_EQUAL(err_code(e), "bad_args");
    wsc_send_event(c, "send command", "");
    e = wsc_wait(c, "error", NULL, 3000);
    CU_ASSERT_STRING_EQUAL(err_code(e), "bad_args");
    wsc_send_text(c, "{\"event\":\"send command\",\"args\":[\"echo a\\necho b\"]}");
    e = wsc_wait(c, "error", NULL, 3000);
    CU_ASSERT_STRING_EQUAL(err_code(e), "bad_args");
    wsc_free(c);

    /* A server the agent does not know: its NOT_FOUND reaches the user. */
    char other[37];
    wd_uuid_new(other);
    wd_wstoken_claims cl;
    memset(&cl, 0, sizeof cl);
    char *t = wd_gx_token(&fx, other, "user-3", "s3", all_perms, 600);
    c = wd_gx_client(&gw, t);
    free(t);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    wsc_send_event(c, "send command", "echo x");
    e = wsc_wait(c, "error", NULL, 5000);
    CU_ASSERT_PTR_NOT_NULL(e);
    CU_ASSERT_STRING_EQUAL(err_code(e), "not_found");
    wsc_free(c);
}

static void test_other_server_token(void)
{
    char other[37], path[64];
    wd_uuid_new(other);
    char *t_other = wd_gx_token(&fx, other, "user-4", "s4", all_perms, 600);
    char *t_mine = wd_gx_token(&fx, server_id, "user-4", "s4", all_perms, 600);
    /* The URL names our server; a token for another is refused. */
    snprintf(path, sizeof path, "/ws/%s", server_id);
    wsc *c = wsc_connect(gw.port, path, NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    wsc_send_event(c, "auth", t_other);
    json_t *e = wsc_wait(c, "error", NULL, 3000);
    CU_ASSERT_PTR_NOT_NULL(e);
    CU_ASSERT_STRING_EQUAL(err_code(e), "auth_failed");
    wsc_send_event(c, "send command", "echo nope");
    e = wsc_wait(c, "error", NULL, 3000);
    CU_ASSERT_STRING_EQUAL(err_code(e), "auth_required");
    /* The right one works on the same socket. */
    wsc_send_event(c, "auth", t_mine);
    CU_ASSERT_PTR_NOT_NULL(wsc_wait(c, "auth success", NULL, 3000));
    /* Re-auth may not switch servers. */
    wsc_send_event(c, "auth", t_other);
    e = wsc_wait(c, "error", NULL, 3000);
    CU_ASSERT_PTR_NOT_NULL(e);
    CU_ASSERT_STRING_EQUAL(err_code(e), "auth_failed");
    wsc_free(c);
    /* Without a server in the URL: re-auth for another server is a mismatch. */
    c = wd_gx_client(&gw, t_mine);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    wsc_send_event(c, "auth", t_other);
    e = wsc_wait(c, "error", NULL, 3000);
    CU_ASSERT_PTR_NOT_NULL(e);
    CU_ASSERT_STRING_EQUAL(err_code(e), "token_mismatch");
    /* ...and the socket still serves its own server. */
    wsc_send_event(c, "send command", "echo after-mismatch");
    CU_ASSERT_PTR_NOT_NULL(wsc_wait(c, "console output", "after-mismatch", 5000));
    wsc_free(c);
    free(t_other);
    free(t_mine);
}

/* Every kind of bad input, while an observer keeps working. */
static void test_bad_input(void)
{
    wsc *obs = client("observer", "so", all_perms, 600);
    CU_ASSERT_PTR_NOT_NULL_FATAL(obs);
    char reason[128];

    /* Before auth: commands refused, garbage answered. */
    wsc *c = wsc_connect(gw.port, NULL, NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    wsc_send_event(c, "send command", "echo pre-auth");
    CU_ASSERT_STRING_EQUAL(err_code(wsc_wait(c, "error", NULL, 3000)), "auth_required");
    wsc_send_event(c, "set state", "kill");
    CU_ASSERT_STRING_EQUAL(err_code(wsc_wait(c, "error", NULL, 3000)), "auth_required");
    wsc_send_text(c, "this is not json");
    CU_ASSERT_STRING_EQUAL(err_code(wsc_wait(c, "error", NULL, 3000)), "bad_json");
    wsc_send_text(c, "[1,2,3]");
    CU_ASSERT_STRING_EQUAL(err_code(wsc_wait(c, "error", NULL, 3000)), "bad_json");
    wsc_send_text(c, "{\"event\":42}");
    CU_ASSERT_STRING_EQUAL(err_code(wsc_wait(c, "error", NULL, 3000)), "bad_json");
    wsc_send_text(c, "{\"event\":\"send logs\",\"args\":\"x\"}");
    CU_ASSERT_STRING_EQUAL(err_code(wsc_wait(c, "error", NULL, 3000)), "bad_json");
    wsc_send_event(c, "make coffee", NULL);
    CU_ASSERT_STRING_EQUAL(err_code(wsc_wait(c, "error", NULL, 3000)), "unknown_event");
    /* Fragmented but valid: one message in three frames. */
    wsc_send_frame(c, 1, "{\"event\":", 9, false);
    wsc_send_frame(c, 0, "\"make ", 6, false);
    wsc_send_frame(c, 0, "tea\"}", 5, true);
    CU_ASSERT_STRING_EQUAL(err_code(wsc_wait(c, "error", NULL, 3000)), "unknown_event");
    /* Garbage tokens: three strikes and out. */
    wsc_send_event(c, "auth", "garbage");
    CU_ASSERT_STRING_EQUAL(err_code(wsc_wait(c, "error", NULL, 3000)), "auth_failed");
    wsc_send_text(c, "{\"event\":\"auth\",\"args\":[42]}");
    CU_ASSERT_STRING_EQUAL(err_code(wsc_wait(c, "error", NULL, 3000)), "auth_failed");
    char *expired = wd_gx_token(&fx, server_id, "u", "s", all_perms, -10);
    wsc_send_event(c, "auth", expired);
    CU_ASSERT_STRING_EQUAL(err_code(wsc_wait(c, "error", NULL, 3000)), "token_expired");
    free(expired);
    CU_ASSERT_EQUAL(wsc_wait_close(c, 3000, reason, sizeof reason), 4001);
    wsc_free(c);

    /* Binary frame: close 1003. */
    c = wsc_connect(gw.port, NULL, NULL, NULL);
    wsc_send_frame(c, 2, "\x01\x02\x03", 3, true);
    CU_ASSERT_EQUAL(wsc_wait_close(c, 3000, NULL, 0), 1003);
    wsc_free(c);

    /* Oversized message (limit 4096 here): close 1009, one frame or many. */
    char *big = malloc(10000);
    memset(big, 'a', 10000);
    c = wsc_connect(gw.port, NULL, NULL, NULL);
    wsc_send_frame(c, 1, big, 10000, true);
    CU_ASSERT_EQUAL(wsc_wait_close(c, 3000, NULL, 0), 1009);
    wsc_free(c);
    c = wsc_connect(gw.port, NULL, NULL, NULL);
    for (int i = 0; i < 5; i++)
        wsc_send_frame(c, i ? 0 : 1, big, 1000, false);
    CU_ASSERT_EQUAL(wsc_wait_close(c, 3000, NULL, 0), 1009);
    wsc_free(c);
    free(big);

    /* Invalid UTF-8 in a text frame: close 1007. */
    c = wsc_connect(gw.port, NULL, NULL, NULL);
    wsc_send_frame(c, 1, "{\"event\":\"\xff\xfe\"}", 14, true);
    int code = wsc_wait_close(c, 3000, NULL, 0);
    CU_ASSERT(code == 1007 || code == 1002);
    wsc_free(c);

    /* Silence: closed after the auth timeout (3 s here). */
    c = wsc_connect(gw.port, NULL, NULL, NULL);
    CU_ASSERT_EQUAL(wsc_wait_close(c, 6000, reason, sizeof reason), 4001);
    CU_ASSERT_STRING_EQUAL(reason, "authentication timeout");
    wsc_free(c);

    /* Plain HTTP on the same port still answers, unknown paths 404. */
    CU_ASSERT_EQUAL(wd_h_http(gw.port, "GET", "/healthz", NULL, NULL, NULL, NULL), 200);
    CU_ASSERT_EQUAL(wd_h_http(gw.port, "GET", "/nope", NULL, NULL, NULL, NULL), 404);

    /* The observer never noticed. */
    CU_ASSERT(!wsc_closed(obs));
    wsc_send_event(obs, "send command", "echo observer-fine");
    CU_ASSERT_PTR_NOT_NULL(wsc_wait(obs, "console output", "observer-fine", 5000));
    CU_ASSERT_EQUAL(wsc_peek(obs, "error", NULL, 0), NULL);
    wsc_free(obs);
}

static void test_rate_limit(void)
{
    wsc *c = client("flooder", "sf", all_perms, 600);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    /* Burst 20 at 20/s: a flood gets "rate_limited", then a close (4029). */
    /* 20 pass, 41 refusals close: send a few more, not hundreds, so that
     * the gateway has read everything when it closes (unread input makes
     * the kernel answer with a reset that can overtake the close frame). */
    for (int i = 0; i < 70; i++) {
        char cmd[32];
        snprintf(cmd, sizeof cmd, "echo flood-cmd-%d", i);
        if (!wsc_send_event(c, "send command", cmd))
            break;
    }
    CU_ASSERT_PTR_NOT_NULL(wsc_wait(c, "error", "rate_limited", 5000));
    char reason[128] = "";
    int code = wsc_wait_close(c, 5000, reason, sizeof reason);
    CU_ASSERT_EQUAL(code, 4029);
    if (code != 4029)
        fprintf(stderr, "flooder closed with %d \"%s\" after %zu messages\n", code, reason,
                wsc_count(c));
    wsc_free(c);
    /* Far fewer than 70 commands reached the game. */
    usleep(500000);
    CU_ASSERT(wd_watch_count_prefix(watch, "flood-cmd-") <= 30);
    CU_ASSERT(wd_watch_count_prefix(watch, "flood-cmd-") >= 8); /* the in-flight limit */
}

static void test_expiry_and_reauth(void)
{
    /* expiry warning is 2 s here: a 4 s token warns, then a re-auth keeps
     * the socket open past the first token's exp. */
    wsc *a = client("user-5", "s5", all_perms, 4);
    wsc *b = client("user-6", "s6", all_perms, 3);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_PTR_NOT_NULL(wsc_wait(a, "token expiring", NULL, 5000));
    char *t = wd_gx_token(&fx, server_id, "user-5", "s5", all_perms, 600);
    wsc_send_event(a, "auth", t);
    free(t);
    CU_ASSERT_PTR_NOT_NULL(wsc_wait(a, "auth success", NULL, 3000));
    /* b did not renew: warned, expired, closed 4004. */
    CU_ASSERT_PTR_NOT_NULL(wsc_wait(b, "token expiring", NULL, 5000));
    CU_ASSERT_PTR_NOT_NULL(wsc_wait(b, "token expired", NULL, 5000));
    CU_ASSERT_EQUAL(wsc_wait_close(b, 3000, NULL, 0), 4004);
    wsc_free(b);
    /* a outlives its first token. */
    wsc_pump(a, 2500);
    CU_ASSERT(!wsc_closed(a));
    CU_ASSERT_EQUAL(wsc_peek(a, "token expired", NULL, 0), NULL);
    wsc_send_event(a, "send command", "echo renewed");
    CU_ASSERT_PTR_NOT_NULL(wsc_wait(a, "console output", "renewed", 5000));
    wsc_free(a);
}

static void publish_revoke(int kind, const char *user, const char *key, const char *value)
{
    Warden__V1__PanelEvent ev = WARDEN__V1__PANEL_EVENT__INIT;
    ev.kind = kind;
    ev.actor = (char *)"test";
    ev.action = (char *)(kind == WARDEN__V1__PANEL_EVENT__KIND__SESSION_REVOKED ? "session.revoke"
                                                                                : "subuser.delete");
    ev.subject_id = (char *)user;
    ev.time_unix_ms = wd_unix_ms();
    Warden__V1__PanelEvent__DetailsEntry d = WARDEN__V1__PANEL_EVENT__DETAILS_ENTRY__INIT;
    Warden__V1__PanelEvent__DetailsEntry *dp = &d;
    if (key) {
        d.key = (char *)key;
        d.value = (char *)value;
        ev.n_details = 1;
        ev.details = &dp;
    }
    CU_ASSERT_EQUAL(wd_bus_publish(fx.bus, "warden.panel.events.auth", &ev.base, NULL), WD_OK);
}

static void test_revocation(void)
{
    wsc *s1 = client("user-7", "sess-1", all_perms, 600);
    wsc *s2 = client("user-7", "sess-2", all_perms, 600);
    wsc *other = client("user-8", "sess-1", all_perms, 600);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(other);
    char reason[128];
    /* One session revoked: only its socket closes, within a second. */
    int64_t t0 = wd_mono_ms();
    publish_revoke(WARDEN__V1__PANEL_EVENT__KIND__SESSION_REVOKED, "user-7", "sid", "sess-1");
    CU_ASSERT_EQUAL(wsc_wait_close(s1, 1000, reason, sizeof reason), 4005);
    CU_ASSERT(wd_mono_ms() - t0 < 1000);
    CU_ASSERT_STRING_EQUAL(reason, "session revoked");
    wsc_pump(s2, 300);
    CU_ASSERT(!wsc_closed(s2));
    /* A token of the revoked session issued before the revocation cannot
     * come back on a new socket; another session can. */
    wd_wstoken_claims cl;
    memset(&cl, 0, sizeof cl);
    snprintf(cl.sub, sizeof cl.sub, "user-7");
    snprintf(cl.sid, sizeof cl.sid, "sess-1");
    snprintf(cl.srv, sizeof cl.srv, "%s", server_id);
    snprintf(cl.node, sizeof cl.node, "%s", fx.node_id);
    snprintf(cl.perms[0], sizeof cl.perms[0], "websocket.connect");
    cl.nperms = 1;
    cl.iat = time(NULL) - 5;
    cl.exp = time(NULL) + 600;
    char *old = NULL;
    CU_ASSERT_EQUAL_FATAL(wd_wstoken_issue(wd_gx_issuer, &cl, &old), WD_OK);
    wsc *again = wsc_connect(gw.port, NULL, NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(again);
    wsc_send_event(again, "auth", old);
    json_t *e = wsc_wait(again, "error", NULL, 3000);
    CU_ASSERT_PTR_NOT_NULL(e);
    CU_ASSERT_STRING_EQUAL(err_code(e), "auth_failed");
    free(old);
    wsc_free(again);
    snprintf(cl.sid, sizeof cl.sid, "sess-3");
    CU_ASSERT_EQUAL_FATAL(wd_wstoken_issue(wd_gx_issuer, &cl, &old), WD_OK);
    again = wd_gx_client(&gw, old);
    CU_ASSERT_PTR_NOT_NULL(again);
    free(old);
    /* The subuser removed from this server: the rest of user-7 goes. */
    publish_revoke(WARDEN__V1__PANEL_EVENT__KIND__SUBUSER_REMOVED, "user-7", "server_id",
                   server_id);
    CU_ASSERT_EQUAL(wsc_wait_close(s2, 1000, NULL, 0), 4005);
    if (again)
        CU_ASSERT_EQUAL(wsc_wait_close(again, 1000, NULL, 0), 4005);
    wsc_free(again);
    /* Removal from another server does not touch user-8 here; all of
     * user-8's sessions revoked (no sid) does. */
    publish_revoke(WARDEN__V1__PANEL_EVENT__KIND__SUBUSER_REMOVED, "user-8", "server_id",
                   "00000000-0000-0000-0000-000000000000");
    wsc_pump(other, 300);
    CU_ASSERT(!wsc_closed(other));
    publish_revoke(WARDEN__V1__PANEL_EVENT__KIND__SESSION_REVOKED, "user-8", NULL, NULL);
    CU_ASSERT_EQUAL(wsc_wait_close(other, 1000, NULL, 0), 4005);
    wsc_free(s1);
    wsc_free(s2);
    wsc_free(other);
}

static void test_one_subscription(void)
{
    wait_idle(&gw);
    CU_ASSERT_EQUAL(wd_gx_metric(&gw, "warden_ws_subscriptions"), 0);
    wsc *c[10];
    for (int i = 0; i < 10; i++) {
        c[i] = client("fan", "sfan", all_perms, 600);
        CU_ASSERT_PTR_NOT_NULL_FATAL(c[i]);
    }
    CU_ASSERT_EQUAL(wd_gx_metric(&gw, "warden_ws_connections"), 10);
    CU_ASSERT_EQUAL(wd_gx_metric(&gw, "warden_ws_subscriptions"), 1);
    wsc_send_event(c[0], "send command", "echo fan-out");
    for (int i = 0; i < 10; i++)
        CU_ASSERT_PTR_NOT_NULL(wsc_wait(c[i], "console output", "fan-out", 5000));
    for (int i = 0; i < 9; i++)
        wsc_free(c[i]);
    CU_ASSERT(WD_H_WAIT(wd_gx_metric(&gw, "warden_ws_connections") == 1, 3000));
    CU_ASSERT_EQUAL(wd_gx_metric(&gw, "warden_ws_subscriptions"), 1);
    wsc_free(c[9]);
    CU_ASSERT(WD_H_WAIT(wd_gx_metric(&gw, "warden_ws_subscriptions") == 0, 3000));
    CU_ASSERT(wd_gx_metric(&gw, "warden_ws_messages_out_total") > 0);
    CU_ASSERT(wd_gx_metric(&gw, "warden_ws_bus_messages_total") > 0);
}

static void test_origin(void)
{
    const char *extra[] = {"--origins=https://panel.example, http://localhost:8080", NULL};
    wd_gx g2;
    CU_ASSERT_FATAL(wd_gx_start(&g2, &fx, extra));
    int status = 0;
    wsc *c = wsc_connect(g2.port, NULL, "https://evil.example", &status);
    CU_ASSERT_PTR_NULL(c);
    CU_ASSERT_NOT_EQUAL(status, 101);
    wsc_free(c);
    c = wsc_connect(g2.port, NULL, "https://panel.example", &status);
    CU_ASSERT_PTR_NOT_NULL(c);
    CU_ASSERT_EQUAL(status, 101);
    wsc_free(c);
    c = wsc_connect(g2.port, NULL, "http://localhost:8080", &status);
    CU_ASSERT_PTR_NOT_NULL(c);
    wsc_free(c);
    CU_ASSERT(wd_gx_metric(&g2, "warden_ws_rejected_total{reason=\"origin\"}") == 1);
    CU_ASSERT(wd_gx_stop(&g2));
}

/* The same session through a standard client stack (libwebsockets). */
static void test_lws_client(void)
{
    char *t = wd_gx_token(&fx, server_id, "user-11", "s11", all_perms, 600);
    wd_lwsc_result r;
    bool ok = wd_lwsc_session(gw.port, t, "Ready:", "echo via-libwebsockets", "via-libwebsockets",
                              10000, &r);
    free(t);
    CU_ASSERT(ok);
    CU_ASSERT(r.authed);
    CU_ASSERT(r.history_seen);
    CU_ASSERT(r.effect_seen);
    CU_ASSERT(r.history_before_live);
    CU_ASSERT(r.status_events >= 1);
}

/* The same session through the npm `ws` client under Node.js. */
static void test_node_client(void)
{
    char *t = wd_gx_token(&fx, server_id, "user-12", "s12", all_perms, 600);
    char url[64], script[600], mods[600], env[620], log[600];
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/ws/%s", gw.port, server_id);
    snprintf(script, sizeof script, "%s/tests/ws/node_client.mjs", WARDEN_SOURCE_DIR);
    snprintf(mods, sizeof mods, "%s/tools/openapi/node_modules", WARDEN_SOURCE_DIR);
    snprintf(env, sizeof env, "WARDEN_NODE_MODULES=%s", mods);
    snprintf(log, sizeof log, "%s/node.log", wd_h_tmpdir("ws-node"));
    const char *argv[] = {"node",        script, url, t, "Ready:", "echo via-node-ws",
                          "via-node-ws", NULL};
    const char *envp[] = {env, NULL};
    pid_t pid = wd_h_spawn(argv, envp, log);
    CU_ASSERT_FATAL(pid > 0);
    int status = wd_h_wait_exit(pid, 20000);
    free(t);
    /* 77: no ws module. scripts/bootstrap installs it (tools/openapi's
     * package.json pins it), so a missing one is a failure, not a skip. */
    if (WIFEXITED(status) && WEXITSTATUS(status) == 77)
        fprintf(stderr, "test_node_client: no ws module under %s: run scripts/bootstrap\n", mods);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0))
        fprintf(stderr, "node client failed (status %d); see %s\n", status, log);
}

/* Two gateways, no shared state but NATS, serve the same server. */
static void test_two_gateways(void)
{
    wd_gx g2;
    CU_ASSERT_FATAL(wd_gx_start(&g2, &fx, NULL));
    char *t = wd_gx_token(&fx, server_id, "user-9", "s9", all_perms, 600);
    wsc *a = wd_gx_client(&gw, t);
    wsc *b = wd_gx_client(&g2, t);
    free(t);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    wsc_send_event(a, "send command", "echo from-gateway-1");
    wsc_send_event(b, "send command", "echo from-gateway-2");
    /* Peek: both lines may come in one message. */
    CU_ASSERT_PTR_NOT_NULL(wsc_peek(a, "console output", "from-gateway-1", 5000));
    CU_ASSERT_PTR_NOT_NULL(wsc_peek(a, "console output", "from-gateway-2", 5000));
    CU_ASSERT_PTR_NOT_NULL(wsc_peek(b, "console output", "from-gateway-1", 5000));
    CU_ASSERT_PTR_NOT_NULL(wsc_peek(b, "console output", "from-gateway-2", 5000));
    CU_ASSERT_EQUAL(wd_gx_metric(&g2, "warden_ws_subscriptions"), 1);
    /* Revocation reaches both. */
    publish_revoke(WARDEN__V1__PANEL_EVENT__KIND__SESSION_REVOKED, "user-9", "sid", "s9");
    CU_ASSERT_EQUAL(wsc_wait_close(a, 1000, NULL, 0), 4005);
    CU_ASSERT_EQUAL(wsc_wait_close(b, 1000, NULL, 0), 4005);
    wsc_free(a);
    wsc_free(b);
    CU_ASSERT(wd_gx_stop(&g2));
}

/* A client that stops reading is closed (4008) and nobody else suffers. */
static void test_slow_client(void)
{
    wsc_rcvbuf = 4096;
    wsc *slow = client("slow", "ss", all_perms, 600);
    wsc_rcvbuf = 0;
    wsc *obs = client("observer", "so", all_perms, 600);
    CU_ASSERT_PTR_NOT_NULL_FATAL(slow);
    CU_ASSERT_PTR_NOT_NULL_FATAL(obs);
    /* The observer reads everything; slow reads nothing meanwhile. Lines
     * beyond the agent's rate limit are dropped, so the end of a flood is
     * found by echoing until an echo comes back. Flood until the gateway
     * gives up on the slow client (a few MiB queued). */
    bool slow_closed = false;
    for (int round = 0; round < 20 && !slow_closed; round++) {
        wsc_send_event(obs, "send command", "flood 50000");
        CU_ASSERT_PTR_NOT_NULL(wsc_wait(obs, "console output", "flood line", 10000));
        bool done = false;
        for (int i = 0; i < 30 && !done; i++) {
            char cmd[40];
            snprintf(cmd, sizeof cmd, "echo flood-done-%d-%d", round, i);
            wsc_send_event(obs, "send command", cmd);
            done = wsc_wait(obs, "console output", cmd + 5, 1000) != NULL;
        }
        CU_ASSERT(done);
        CU_ASSERT_FATAL(!wsc_closed(obs));
        slow_closed = wd_gx_metric(&gw, "warden_ws_closed_total{reason=\"slow_client\"}") >= 1;
    }
    CU_ASSERT(slow_closed);
    int code = wsc_wait_close(slow, 10000, NULL, 0);
    CU_ASSERT(code == 4008 || code == 1006);
    wsc_free(slow);
    /* The observer still works. (The agent's console rate limit may still
     * be dropping lines right after a flood: try a few times.) */
    json_t *after = NULL;
    for (int i = 0; i < 5 && !after; i++) {
        char cmd[40];
        snprintf(cmd, sizeof cmd, "echo after-the-flood-%d", i);
        wsc_send_event(obs, "send command", cmd);
        after = wsc_wait(obs, "console output", cmd + 5, 3000);
    }
    CU_ASSERT_PTR_NOT_NULL(after);
    if (!after) {
        fprintf(stderr, "observer closed=%d code=%d, bus saw it: %d; last messages:\n",
                wsc_closed(obs), wsc_wait_close(obs, 0, NULL, 0),
                wd_watch_wait_line(watch, "after-the-flood", 100));
        for (size_t i = wsc_count(obs) > 5 ? wsc_count(obs) - 5 : 0; i < wsc_count(obs); i++) {
            char *d = json_dumps(wsc_msg(obs, i), JSON_COMPACT);
            fprintf(stderr, "  %.300s\n", d);
            free(d);
        }
    }
    wsc_free(obs);
}

/* A second server whose install script talks: a watcher sees "install
 * output", the state going installing → offline, then the game's start. */
static void test_install_output(void)
{
    json_error_t err;
    json_t *tpl = json_load_file(wd_fx_template("testgame"), 0, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tpl);
    json_t *inst = json_object_get(tpl, "install");
    char *script = NULL;
    CU_ASSERT_FATAL(asprintf(&script, "echo install-step-one\necho install-step-two\n%s",
                             json_string_value(json_object_get(inst, "script"))) > 0);
    json_object_set_new(inst, "script", json_string(script));
    free(script);
    json_object_set_new(tpl, "id", json_string("testgame-talky"));
    char *text = json_dumps(tpl, JSON_INDENT(1));
    json_decref(tpl);
    char path[600];
    snprintf(path, sizeof path, "%s", wd_h_write_tmp("talky.json", text));
    free(text);
    char id[37];
    const char *vars[] = {"READY_DELAY_MS=0", NULL};
    CU_ASSERT_EQUAL_FATAL(wd_fx_create(&fx, path, vars, id), WD_OK);

    char *t = wd_gx_token(&fx, id, "user-10", "s10", all_perms, 600);
    wsc *c = wd_gx_client(&gw, t);
    free(t);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    while (wsc_wait(c, "status", NULL, 500)) /* the state before the install */
        ;
    Warden__V1__InstallRequest ir = WARDEN__V1__INSTALL_REQUEST__INIT;
    CU_ASSERT_EQUAL(wd_fx_request(&fx, id, "install", &ir.base, &warden__v1__ack__descriptor, NULL),
                    WD_OK);
    CU_ASSERT_PTR_NOT_NULL(wsc_wait(c, "status", "installing", 10000));
    CU_ASSERT_PTR_NOT_NULL(wsc_wait(c, "install output", "install-step-one", 10000));
    /* Both lines, in order (the second may come in the same event). */
    for (int i = 0; i < 100 && wsc_index(c, "install output", "install-step-two") < 0; i++)
        wsc_pump(c, 100);
    CU_ASSERT(wsc_index(c, "install output", "install-step-two") >=
              wsc_index(c, "install output", "install-step-one"));
    CU_ASSERT_PTR_NOT_NULL(wsc_wait(c, "status", "offline", 20000));
    /* Power through the socket, seen through the socket. */
    wsc_send_event(c, "set state", "start");
    CU_ASSERT_PTR_NOT_NULL(wsc_wait(c, "status", "running", 10000));
    CU_ASSERT_PTR_NOT_NULL(wsc_wait(c, "console output", "Ready:", 5000));
    wsc_send_event(c, "set state", "kill");
    CU_ASSERT_PTR_NOT_NULL(wsc_wait(c, "status", "stopping", 10000));
    CU_ASSERT_PTR_NOT_NULL(wsc_wait(c, "status", "offline", 10000));
    /* Console input while offline: the agent's refusal reaches the user. */
    wsc_send_event(c, "send command", "echo nobody-home");
    json_t *e = wsc_wait(c, "error", NULL, 5000);
    CU_ASSERT_PTR_NOT_NULL(e);
    CU_ASSERT_STRING_EQUAL(err_code(e), "failed_precondition");
    if (!e)
        for (size_t i = wsc_count(c) > 6 ? wsc_count(c) - 6 : 0; i < wsc_count(c); i++) {
            char *d = json_dumps(wsc_msg(c, i), JSON_COMPACT);
            fprintf(stderr, "  %.200s\n", d);
            free(d);
        }
    wsc_free(c);
}

/* NATS restarts under the gateway: /healthz says so, requests fail with an
 * error event, sockets stay open, and the subscription comes back. */
static void test_nats_outage(void)
{
    wsc *c = client("user-13", "s13", all_perms, 600);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    wd_h_nats_stop(&fx.nats);
    CU_ASSERT(
        WD_H_WAIT(wd_h_http(gw.port, "GET", "/healthz", NULL, NULL, NULL, NULL) == 503, 5000));
    wsc_send_event(c, "send command", "echo during-outage");
    json_t *e = wsc_wait(c, "error", NULL, 10000);
    CU_ASSERT_PTR_NOT_NULL(e);
    CU_ASSERT_FATAL(wd_h_nats_start(&fx.nats));
    CU_ASSERT(
        WD_H_WAIT(wd_h_http(gw.port, "GET", "/healthz", NULL, NULL, NULL, NULL) == 200, 10000));
    /* The agent reconnects too; then live lines flow again. */
    bool seen = false;
    for (int i = 0; i < 20 && !seen; i++) {
        char cmd[40];
        snprintf(cmd, sizeof cmd, "echo after-outage-%d", i);
        wsc_send_event(c, "send command", cmd);
        seen = wsc_peek(c, "console output", "after-outage-", 1000) != NULL;
    }
    CU_ASSERT(seen);
    CU_ASSERT(!wsc_closed(c));
    wsc_free(c);
}

static void test_clean_exit(void)
{
    wait_idle(&gw);
    CU_ASSERT(wd_gx_stop(&gw));
    CU_ASSERT(wd_fx_agent_clean_exit(&fx));
}

int main(void)
{
    static const wd_h_case cases[] = {
        {"auth, status, history then live lines, a command's effect, stats",
         test_history_then_live},
        {"actions without their permission are refused; the game is untouched", test_permissions},
        {"agent errors reach the user as error events", test_agent_errors},
        {"a token for another server is refused", test_other_server_token},
        {"bad input of every kind: errors or closes; an observer is unharmed", test_bad_input},
        {"a command flood is rate limited, then closed", test_rate_limit},
        {"token expiring, in-band re-auth, token expired closes 4004", test_expiry_and_reauth},
        {"revoked sessions and removed subusers are closed within a second", test_revocation},
        {"ten watchers, one NATS subscription, gone with the last", test_one_subscription},
        {"Origin check", test_origin},
        {"a libwebsockets client: auth, history, command, effect", test_lws_client},
        {"a Node.js client (npm ws): auth, history, command, effect", test_node_client},
        {"two gateways serve the same server", test_two_gateways},
        {"install output, status transitions, power from the socket", test_install_output},
        {"a slow client is closed 4008; the others keep up", test_slow_client},
        {"NATS restarts: errors meanwhile, sockets stay, live lines resume", test_nats_outage},
        {"the gateway exits cleanly", test_clean_exit},
        {NULL, NULL}};
    wd_h_suite("ws", suite_init, suite_clean, cases);
    return wd_h_run();
}
