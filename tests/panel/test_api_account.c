/* warden-api's account security routes against a real PostgreSQL: TOTP
 * enrolment and confirmation, logins with a TOTP or a recovery code (each
 * accepted once), turning 2FA off, and password change ending every
 * session. TOTP codes are computed here with liboath from the secret the
 * API returns, as an authenticator app would. */
#include <jansson.h>
#include <liboath/oath.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api_fixture.h"
#include <libpq-fe.h>

static wd_api_fx fx;
#define api (fx.api)

static int suite_init(void)
{
    if (oath_init() != OATH_OK || !wd_api_fx_start(&fx, "api-account", false))
        return 1;
    return wd_api_create_user(api, "carol", "carol@example.com", "user", "carol password 1", NULL,
                              0, NULL) == WD_OK &&
                   wd_api_create_user(api, "dave", "dave@example.com", "user", "dave password 1",
                                      NULL, 0, NULL) == WD_OK
               ? 0
               : 1;
}

static int suite_clean(void)
{
    wd_api_fx_stop(&fx);
    oath_done();
    return 0;
}

/* One request; returns the status and the parsed body (caller decrefs). */
static int call(const char *method, const char *path, const char *token, const char *body,
                json_t **out)
{
    return wd_api_fx_call(&fx, method, path, token, body, out, NULL);
}

static const char *err_code(json_t *j)
{
    return wd_api_fx_err_code(j);
}

static char *field(json_t *j, const char *name)
{
    const char *s = json_string_value(json_object_get(j, name));
    return s ? strdup(s) : NULL;
}

/* A login attempt: the status, the error code (into code) and, on 200, the
 * tokens (caller frees; access/refresh may be NULL). */
static int try_login(const char *user, const char *pw, const char *totp, char *code, size_t codelen,
                     char **access, char **refresh)
{
    char body[512];
    if (totp)
        snprintf(body, sizeof body, "{\"username\":\"%s\",\"password\":\"%s\",\"totp\":\"%s\"}",
                 user, pw, totp);
    else
        snprintf(body, sizeof body, "{\"username\":\"%s\",\"password\":\"%s\"}", user, pw);
    json_t *j = NULL;
    int st = call("POST", "/api/v1/auth/login", NULL, body, &j);
    if (code)
        snprintf(code, codelen, "%s", err_code(j));
    if (access)
        *access = st == 200 ? field(j, "access_token") : NULL;
    if (refresh)
        *refresh = st == 200 ? field(j, "refresh_token") : NULL;
    json_decref(j);
    return st;
}

/* The code an authenticator shows for step (time / 30). */
static void totp_at(const char *b32, long long step, char out[7])
{
    char *bin = NULL;
    size_t len = 0;
    CU_ASSERT_EQUAL_FATAL(oath_base32_decode(b32, strlen(b32), &bin, &len), OATH_OK);
    CU_ASSERT_EQUAL(oath_totp_generate(bin, len, (time_t)(step * 30), 30, 0, 6, out), OATH_OK);
    free(bin);
}

/* Waits until the current 30 s step has at least a few seconds left, so a
 * code for step s-1..s+1 is still inside the server's window of one step. */
static long long safe_step(void)
{
    while (time(NULL) % 30 > 24 || time(NULL) % 30 < 1)
        sleep(1);
    return (long long)(time(NULL) / 30);
}

static char *sql1(const char *query, const char *param)
{
    PGconn *c = PQconnectdb(fx.pg.conninfo);
    const char *params[] = {param};
    PGresult *res = PQexecParams(c, query, param ? 1 : 0, NULL, params, NULL, NULL, 0);
    char *v =
        PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0)
            ? strdup(PQgetvalue(res, 0, 0))
            : NULL;
    PQclear(res);
    PQfinish(c);
    return v;
}

static bool sql_is(const char *query, const char *param, const char *want)
{
    char *v = sql1(query, param);
    bool ok = v ? strcmp(v, want) == 0 : want == NULL;
    if (!ok)
        fprintf(stderr, "%s: got %s, want %s\n", query, v ? v : "NULL", want ? want : "NULL");
    free(v);
    return ok;
}

static void test_totp_lifecycle(void)
{
    char *access = NULL, *refresh = NULL, code[64];
    CU_ASSERT_EQUAL_FATAL(
        try_login("carol", "carol password 1", NULL, code, sizeof code, &access, &refresh), 200);
    free(refresh);
    json_t *j = NULL;

    /* Not enrolled yet: nothing to confirm or disable. */
    CU_ASSERT_EQUAL(call("POST", "/api/v1/me/totp/confirm", access, "{\"code\":\"123456\"}", &j),
                    409);
    json_decref(j);
    /* Unknown fields are refused everywhere. */
    CU_ASSERT_EQUAL(call("POST", "/api/v1/me/totp", access, "{\"secret\":\"AAAA\"}", &j), 400);
    CU_ASSERT_STRING_EQUAL(err_code(j), "invalid_argument");
    json_decref(j);
    CU_ASSERT_EQUAL(
        call("POST", "/api/v1/me/totp/confirm", access, "{\"code\":\"123456\",\"x\":1}", &j), 400);
    json_decref(j);
    CU_ASSERT_EQUAL(call("POST", "/api/v1/me/totp/confirm", access, "{}", &j), 400);
    json_decref(j);

    /* Enrol twice: the second secret replaces the first. */
    CU_ASSERT_EQUAL_FATAL(call("POST", "/api/v1/me/totp", access, NULL, &j), 200);
    char *old_secret = field(j, "secret");
    json_decref(j);
    CU_ASSERT_EQUAL_FATAL(call("POST", "/api/v1/me/totp", access, "{}", &j), 200);
    char *secret = field(j, "secret");
    const char *uri = json_string_value(json_object_get(j, "otpauth_uri"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(secret);
    CU_ASSERT_PTR_NOT_NULL_FATAL(uri);
    CU_ASSERT_EQUAL(strlen(secret), 32);
    CU_ASSERT_STRING_NOT_EQUAL(secret, old_secret);
    CU_ASSERT(strncmp(uri, "otpauth://totp/", 15) == 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(uri, secret));
    json_decref(j);
    /* Sealed at rest, not yet enabled. */
    char *enc = sql1("SELECT totp_secret_enc FROM users WHERE username = $1", "carol");
    CU_ASSERT_PTR_NOT_NULL_FATAL(enc);
    CU_ASSERT(strncmp(enc, "wdsb1.", 6) == 0);
    CU_ASSERT_PTR_NULL(strstr(enc, secret));
    free(enc);
    CU_ASSERT(sql_is("SELECT totp_enabled FROM users WHERE username = $1", "carol", "f"));
    /* Still a plain login while unconfirmed. */
    CU_ASSERT_EQUAL(try_login("carol", "carol password 1", NULL, NULL, 0, NULL, NULL), 200);

    long long s = safe_step();
    char prev[7], cur[7], next[7], stale[7], wrong[7] = "000000", body[256];
    totp_at(secret, s - 1, prev);
    totp_at(secret, s, cur);
    totp_at(secret, s + 1, next);
    totp_at(old_secret, s, stale);
    while (!strcmp(wrong, prev) || !strcmp(wrong, cur) || !strcmp(wrong, next))
        wrong[0]++;

    /* Confirm: a code of the replaced secret or a wrong one fails. */
    if (strcmp(stale, prev) && strcmp(stale, cur) && strcmp(stale, next)) {
        snprintf(body, sizeof body, "{\"code\":\"%s\"}", stale);
        CU_ASSERT_EQUAL(call("POST", "/api/v1/me/totp/confirm", access, body, &j), 401);
        CU_ASSERT_STRING_EQUAL(err_code(j), "invalid_totp");
        json_decref(j);
    }
    snprintf(body, sizeof body, "{\"code\":\"%s\"}", prev);
    CU_ASSERT_EQUAL_FATAL(call("POST", "/api/v1/me/totp/confirm", access, body, &j), 200);
    json_t *codes = json_object_get(j, "recovery_codes");
    CU_ASSERT_EQUAL_FATAL(json_array_size(codes), 10);
    char rc0[32], rc1[32];
    snprintf(rc0, sizeof rc0, "%s", json_string_value(json_array_get(codes, 0)));
    snprintf(rc1, sizeof rc1, "%s", json_string_value(json_array_get(codes, 1)));
    CU_ASSERT_EQUAL(strlen(rc0), 9);
    json_decref(j);
    CU_ASSERT(sql_is("SELECT totp_enabled FROM users WHERE username = $1", "carol", "t"));
    CU_ASSERT(sql_is("SELECT count(*) FROM recovery_codes r JOIN users u ON u.id = r.user_id "
                     "WHERE u.username = $1",
                     "carol", "10"));
    /* Only hashes are stored. */
    CU_ASSERT(sql_is("SELECT count(*) FROM recovery_codes WHERE code_hash = $1", rc0, "0"));
    /* Confirming again, or enrolling again, conflicts. */
    CU_ASSERT_EQUAL(call("POST", "/api/v1/me/totp/confirm", access, body, &j), 409);
    json_decref(j);
    CU_ASSERT_EQUAL(call("POST", "/api/v1/me/totp", access, NULL, &j), 409);
    CU_ASSERT_STRING_EQUAL(err_code(j), "conflict");
    json_decref(j);
    CU_ASSERT_EQUAL(call("GET", "/api/v1/me", access, NULL, &j), 200);
    CU_ASSERT(json_is_true(json_object_get(j, "totp_enabled")));
    json_decref(j);

    /* Logins now need the second factor. */
    CU_ASSERT_EQUAL(try_login("carol", "carol password 1", NULL, code, sizeof code, NULL, NULL),
                    401);
    CU_ASSERT_STRING_EQUAL(code, "totp_required");
    CU_ASSERT_EQUAL(try_login("carol", "carol password 1", wrong, code, sizeof code, NULL, NULL),
                    401);
    CU_ASSERT_STRING_EQUAL(code, "invalid_totp");
    /* A wrong password with a right code is still a wrong password. */
    CU_ASSERT_EQUAL(try_login("carol", "nope", cur, code, sizeof code, NULL, NULL), 401);
    CU_ASSERT_STRING_EQUAL(code, "invalid_credentials");
    /* The confirm code's step is used up. */
    CU_ASSERT_EQUAL(try_login("carol", "carol password 1", prev, code, sizeof code, NULL, NULL),
                    401);
    char *a2 = NULL;
    CU_ASSERT_EQUAL(try_login("carol", "carol password 1", cur, code, sizeof code, &a2, NULL), 200);
    CU_ASSERT_EQUAL(call("GET", "/api/v1/me", a2, NULL, NULL), 200);
    free(a2);
    /* The same code again: a replay. */
    CU_ASSERT_EQUAL(try_login("carol", "carol password 1", cur, code, sizeof code, NULL, NULL),
                    401);
    CU_ASSERT_STRING_EQUAL(code, "invalid_totp");

    /* Recovery codes: once each, typed in any case and spacing. */
    CU_ASSERT_EQUAL(try_login("carol", "carol password 1", rc0, code, sizeof code, NULL, NULL),
                    200);
    CU_ASSERT_EQUAL(try_login("carol", "carol password 1", rc0, code, sizeof code, NULL, NULL),
                    401);
    CU_ASSERT_STRING_EQUAL(code, "invalid_totp");
    char typed[32];
    snprintf(typed, sizeof typed, "%.4s %s", rc1, rc1 + 5);
    for (char *c = typed; *c; c++)
        if (*c >= 'a' && *c <= 'z')
            *c = (char)(*c - 32);
    CU_ASSERT_EQUAL(try_login("carol", "carol password 1", typed, code, sizeof code, NULL, NULL),
                    200);
    CU_ASSERT(sql_is("SELECT count(*) FROM recovery_codes r JOIN users u ON u.id = r.user_id "
                     "WHERE u.username = $1 AND used_at IS NOT NULL",
                     "carol", "2"));

    /* Disable: needs the password and a valid second factor. */
    snprintf(body, sizeof body, "{\"password\":\"carol password 1\"}");
    CU_ASSERT_EQUAL(call("DELETE", "/api/v1/me/totp", access, body, &j), 400);
    json_decref(j);
    snprintf(body, sizeof body, "{\"password\":\"wrong password\",\"code\":\"%s\"}", next);
    CU_ASSERT_EQUAL(call("DELETE", "/api/v1/me/totp", access, body, &j), 401);
    CU_ASSERT_STRING_EQUAL(err_code(j), "invalid_credentials");
    json_decref(j);
    snprintf(body, sizeof body, "{\"password\":\"carol password 1\",\"code\":\"%s\"}", cur);
    CU_ASSERT_EQUAL(call("DELETE", "/api/v1/me/totp", access, body, &j), 401);
    CU_ASSERT_STRING_EQUAL(err_code(j), "invalid_totp");
    json_decref(j);
    snprintf(body, sizeof body, "{\"password\":\"carol password 1\",\"code\":\"%s\"}", rc0);
    CU_ASSERT_EQUAL(call("DELETE", "/api/v1/me/totp", access, body, &j), 401);
    json_decref(j);
    CU_ASSERT(sql_is("SELECT totp_enabled FROM users WHERE username = $1", "carol", "t"));
    snprintf(body, sizeof body, "{\"password\":\"carol password 1\",\"code\":\"%s\"}", next);
    CU_ASSERT_EQUAL(call("DELETE", "/api/v1/me/totp", access, body, &j), 204);
    json_decref(j);
    CU_ASSERT(sql_is("SELECT totp_enabled FROM users WHERE username = $1", "carol", "f"));
    CU_ASSERT(sql_is("SELECT totp_secret_enc FROM users WHERE username = $1", "carol", NULL));
    CU_ASSERT(sql_is("SELECT count(*) FROM recovery_codes r JOIN users u ON u.id = r.user_id "
                     "WHERE u.username = $1",
                     "carol", "0"));
    CU_ASSERT_EQUAL(call("DELETE", "/api/v1/me/totp", access, body, &j), 409);
    json_decref(j);
    CU_ASSERT_EQUAL(try_login("carol", "carol password 1", NULL, NULL, 0, NULL, NULL), 200);

    /* Every change left an audit row. */
    CU_ASSERT(sql_is("SELECT count(*) FROM audit_log WHERE action = $1", "auth.totp_enrol", "2"));
    CU_ASSERT(sql_is("SELECT count(*) FROM audit_log WHERE action = $1", "auth.totp_enable", "1"));
    CU_ASSERT(sql_is("SELECT count(*) FROM audit_log WHERE action = $1", "auth.totp_disable", "1"));
    CU_ASSERT(sql_is("SELECT count(*) FROM audit_log WHERE action = $1", "auth.totp_disable_failed",
                     "3"));
    free(secret);
    free(old_secret);
    free(access);
}

static void test_password_change(void)
{
    char *a1 = NULL, *r1 = NULL, *a2 = NULL, *r2 = NULL, code[64];
    CU_ASSERT_EQUAL_FATAL(try_login("dave", "dave password 1", NULL, NULL, 0, &a1, &r1), 200);
    CU_ASSERT_EQUAL_FATAL(try_login("dave", "dave password 1", NULL, NULL, 0, &a2, &r2), 200);
    json_t *j = NULL;
    const char *bad[] = {
        "{\"current_password\":\"dave password 1\",\"new_password\":\"short\"}",
        "{\"current_password\":\"dave password 1\",\"new_password\":\"dave password 1\"}",
        "{\"current_password\":\"dave password 1\"}",
        "{\"current_password\":\"dave password 1\",\"new_password\":\"a long new one 1\","
        "\"logout\":false}",
        "{\"current_password\":\"dave password 1\",\"new_password\":"
        "\"0123456789012345678901234567890123456789012345678901234567890123456789xyz\"}",
        "[]",
        NULL};
    for (int i = 0; bad[i]; i++) {
        int st = call("POST", "/api/v1/me/password", a1, bad[i], &j);
        if (st != 400)
            fprintf(stderr, "%s: %d\n", bad[i], st);
        CU_ASSERT_EQUAL(st, 400);
        json_decref(j);
    }
    CU_ASSERT_EQUAL(call("POST", "/api/v1/me/password", a1,
                         "{\"current_password\":\"not it\",\"new_password\":\"a long new one 1\"}",
                         &j),
                    401);
    CU_ASSERT_STRING_EQUAL(err_code(j), "invalid_credentials");
    json_decref(j);
    /* Nothing changed so far. */
    CU_ASSERT_EQUAL(call("GET", "/api/v1/me", a1, NULL, NULL), 200);

    CU_ASSERT_EQUAL(call("POST", "/api/v1/me/password", a1,
                         "{\"current_password\":\"dave password 1\","
                         "\"new_password\":\"a long new one 1\"}",
                         &j),
                    204);
    json_decref(j);
    /* Every session ended, the caller's too. */
    CU_ASSERT_EQUAL(call("GET", "/api/v1/me", a1, NULL, NULL), 401);
    CU_ASSERT_EQUAL(call("GET", "/api/v1/me", a2, NULL, NULL), 401);
    char body[256];
    snprintf(body, sizeof body, "{\"refresh_token\":\"%s\"}", r1);
    CU_ASSERT_EQUAL(call("POST", "/api/v1/auth/refresh", NULL, body, NULL), 401);
    snprintf(body, sizeof body, "{\"refresh_token\":\"%s\"}", r2);
    CU_ASSERT_EQUAL(call("POST", "/api/v1/auth/refresh", NULL, body, NULL), 401);
    CU_ASSERT(sql_is("SELECT count(*) FROM refresh_families f JOIN users u ON u.id = f.user_id "
                     "WHERE u.username = $1 AND f.revoked_reason = 'password changed'",
                     "dave", "2"));
    /* The old password is gone, the new one works. */
    CU_ASSERT_EQUAL(try_login("dave", "dave password 1", NULL, code, sizeof code, NULL, NULL), 401);
    CU_ASSERT_STRING_EQUAL(code, "invalid_credentials");
    char *a3 = NULL;
    CU_ASSERT_EQUAL(try_login("dave", "a long new one 1", NULL, NULL, 0, &a3, NULL), 200);
    CU_ASSERT_EQUAL(call("GET", "/api/v1/me", a3, NULL, NULL), 200);
    CU_ASSERT(
        sql_is("SELECT count(*) FROM audit_log WHERE action = $1", "auth.password_change", "1"));
    CU_ASSERT(sql_is("SELECT count(*) FROM audit_log WHERE action = $1",
                     "auth.password_change_failed", "1"));
    free(a1);
    free(r1);
    free(a2);
    free(r2);
    free(a3);
}

static void test_account_routes_need_a_session(void)
{
    const char *routes[][2] = {{"POST", "/api/v1/me/totp"},
                               {"POST", "/api/v1/me/totp/confirm"},
                               {"DELETE", "/api/v1/me/totp"},
                               {"POST", "/api/v1/me/password"}};
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        json_t *j = NULL;
        CU_ASSERT_EQUAL(call(routes[i][0], routes[i][1], NULL, "{}", &j), 401);
        CU_ASSERT_STRING_EQUAL(err_code(j), "unauthenticated");
        json_decref(j);
    }
}

int main(void)
{
    static const wd_h_case cases[] = {
        {"account routes answer 401 without a session", test_account_routes_need_a_session},
        {"TOTP: enrol, confirm, login with codes and recovery codes once each, disable",
         test_totp_lifecycle},
        {"password change: checks, ends every session, new password works", test_password_change},
        {NULL, NULL}};
    wd_h_suite("api-account", suite_init, suite_clean, cases);
    return wd_h_run();
}
