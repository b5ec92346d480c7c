/* Authentication routes: login, refresh (rotating tokens with reuse
 * detection), logout, the caller's own account, and its security settings
 * (TOTP two-factor authentication, password change; see account.h).
 *
 * A login starts a refresh family; each refresh marks the presented token
 * used and issues the next one in the same family. Presenting a used token
 * again means it was stolen (or replayed): the whole family is revoked, so
 * both the thief's and the victim's sessions end. Access JWTs name their
 * family (sid) and stop working as soon as it is revoked. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "account.h"
#include "app_int.h"
#include "input.h"
#include "log.h"
#include "password.h"
#include "recovery.h"
#include "token.h"
#include "totp.h"
#include "util.h"

#define REFRESH_PREFIX "wdr_"
#define TOTP_ISSUER "Warden"
#define RECOVERY_CODES 10
#define PASSWORD_MIN_BYTES 12

/* Overwrites a secret in memory; the volatile pointer keeps the compiler
 * from dropping stores to a buffer that is about to die. */
static void wipe(void *p, size_t n)
{
    volatile unsigned char *v = p;
    while (n--)
        *v++ = 0;
}

static bool is_totp_code(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (s[n] < '0' || s[n] > '9')
            return false;
    return n == WD_TOTP_DIGITS;
}

/* Rows touched by an UPDATE/DELETE result. */
static long affected(PGresult *res)
{
    long n = 0;
    if (res != NULL)
        wd_parse_long(PQcmdTuples(res), 0, 1L << 40, &n);
    return n;
}

/* Checks a second factor of user uid inside the caller's transaction: a
 * 6-digit TOTP code (each time step is accepted once: the row is locked and
 * totp_last_step only moves forward) or an unused recovery code (used up
 * here). WD_OK when accepted, WD_ERR_DENIED when not; other statuses are
 * database or key trouble. allow_recovery false: TOTP codes only. */
static wd_status check_second_factor(wd_api *api, PGconn *c, const char *uid, const char *code,
                                     bool allow_recovery)
{
    const char *params[] = {uid, NULL};
    PGresult *res = NULL;
    wd_status st;
    if (!is_totp_code(code)) {
        char norm[WD_RECOVERY_CODE_SIZE], hash[WD_TOKEN_HASH_HEX_LEN + 1];
        if (!allow_recovery || wd_recovery_code_normalize(code, norm) != WD_OK)
            return WD_ERR(WD_ERR_DENIED, "wrong two-factor code");
        st = wd_token_hash(norm, hash);
        wipe(norm, sizeof norm);
        if (st != WD_OK)
            return st;
        params[1] = hash;
        st = wd_db_exec(c,
                        "UPDATE recovery_codes SET used_at = now() WHERE user_id = $1 "
                        "AND code_hash = $2 AND used_at IS NULL",
                        2, params, &res);
        long n = affected(res);
        PQclear(res);
        if (st != WD_OK)
            return st;
        return n == 1 ? WD_OK : WD_ERR(WD_ERR_DENIED, "wrong or already used recovery code");
    }
    st = wd_db_exec(c,
                    "SELECT totp_secret_enc, coalesce(totp_last_step, -1) FROM users "
                    "WHERE id = $1 AND totp_secret_enc IS NOT NULL FOR UPDATE",
                    1, params, &res);
    if (st != WD_OK)
        return st;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return WD_ERR(WD_ERR_DENIED, "no TOTP secret");
    }
    long last = -1;
    wd_parse_long(PQgetvalue(res, 0, 1), -1, (long)1 << 62, &last);
    char aad[96];
    snprintf(aad, sizeof aad, "totp:%s", uid);
    void *plain = NULL;
    size_t len = 0;
    st = wd_secretbox_open(api->box, PQgetvalue(res, 0, 0), aad, &plain, &len);
    PQclear(res);
    if (st != WD_OK)
        return WD_ERR(WD_ERR_INTERNAL, "user %s: the TOTP secret does not open: %s", uid,
                      wd_err_msg());
    int64_t step = 0;
    st = wd_totp_verify(plain, code, time(NULL), WD_TOTP_WINDOW_DEFAULT, (int64_t)last, &step);
    wipe(plain, len);
    free(plain);
    if (st != WD_OK)
        return st == WD_ERR_DENIED ? st : WD_ERR(WD_ERR_INTERNAL, "totp: %s", wd_err_msg());
    /* The condition repeats the replay check in SQL, so the step only ever
     * moves forward even without the row lock above. */
    char stext[32];
    snprintf(stext, sizeof stext, "%lld", (long long)step);
    params[1] = stext;
    res = NULL;
    st = wd_db_exec(c,
                    "UPDATE users SET totp_last_step = $2::bigint WHERE id = $1 "
                    "AND (totp_last_step IS NULL OR totp_last_step < $2::bigint)",
                    2, params, &res);
    long n = affected(res);
    PQclear(res);
    if (st != WD_OK)
        return st;
    return n == 1 ? WD_OK : WD_ERR(WD_ERR_DENIED, "this TOTP code was already used");
}

static void lower(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s + 32);
}

/* Issues a new refresh token in family fid (inside the caller's
 * transaction) and the matching access token; replies 200 with both. */
static void issue_session(wd_api *api, PGconn *c, wd_http_req *r, const char *user_id,
                          const char *username, const char *email, const char *role,
                          const char *fid)
{
    char refresh[128], hash[WD_TOKEN_HASH_HEX_LEN + 1], ttl[32];
    char *access = NULL;
    wd_status st = wd_token_new(REFRESH_PREFIX, refresh, sizeof refresh);
    if (st == WD_OK)
        st = wd_token_hash(refresh, hash);
    snprintf(ttl, sizeof ttl, "%ld seconds", api->cfg.refresh_ttl_s);
    const char *params[] = {fid, hash, ttl};
    if (st == WD_OK)
        st = wd_db_exec(c,
                        "INSERT INTO refresh_tokens (family_id, token_hash, expires_at) "
                        "VALUES ($1, $2, now() + $3::interval)",
                        3, params, NULL);
    if (st == WD_OK)
        st = wd_api_issue_access(api, user_id, role, fid, &access);
    if (st == WD_OK)
        st = wd_db_commit(c);
    if (st != WD_OK) {
        wd_db_rollback(c);
        free(access);
        wd_http_reply_status(r, st);
        return;
    }
    json_t *body = json_pack("{s:s, s:s, s:I, s:s, s:{s:s, s:s, s:s, s:s}}", "access_token",
                             access, "token_type", "Bearer", "expires_in",
                             (json_int_t)api->cfg.access_ttl_s, "refresh_token", refresh, "user",
                             "id", user_id, "username", username, "email", email, "role", role);
    free(access);
    wd_http_reply_json(r, 200, body);
}

static void too_many(wd_http_req *r, int retry)
{
    char ra[16];
    snprintf(ra, sizeof ra, "%d", retry > 0 ? retry : 1);
    wd_http_set_header(r, "Retry-After", ra);
    wd_http_reply_error(r, 429, "rate_limited",
                        "too many failed logins; wait before trying again", NULL);
}

void wd_auth_login(wd_http_req *r, void *ud)
{
    wd_api *api = ud;
    static const wd_field spec[] = {
        {.name = "username", .type = WD_F_STRING, .max_len = 64},
        {.name = "email", .type = WD_F_EMAIL},
        {.name = "password", .type = WD_F_STRING, .required = true, .max_len = 72},
        {.name = "totp", .type = WD_F_STRING, .max_len = 32},
    };
    json_t *in = wd_api_input(r, spec, sizeof spec / sizeof spec[0], false);
    if (in == NULL)
        return;
    const char *name = json_string_value(json_object_get(in, "username"));
    const char *mail = json_string_value(json_object_get(in, "email"));
    if ((name == NULL) == (mail == NULL)) {
        json_decref(in);
        wd_http_reply_error(r, 400, "invalid_argument", "send exactly one of username or email",
                            NULL);
        return;
    }
    char who[256];
    snprintf(who, sizeof who, "%s", name ? name : mail);
    lower(who);
    char pw[80], totp[40] = "";
    snprintf(pw, sizeof pw, "%s", json_string_value(json_object_get(in, "password")));
    const char *t = json_string_value(json_object_get(in, "totp"));
    bool has_totp = t != NULL;
    if (t)
        snprintf(totp, sizeof totp, "%s", t);
    json_decref(in);

    int retry = 0;
    int64_t now = wd_mono_ms();
    char ipkey[80];
    snprintf(ipkey, sizeof ipkey, "ip:%s", wd_http_remote_ip(r));
    if (!wd_backoff_allowed(api->login_user, who, now, &retry) ||
        !wd_backoff_allowed(api->login_ip, ipkey, now, &retry)) {
        too_many(r, retry);
        return;
    }
    PGconn *c = wd_api_db(api, r);
    if (c == NULL)
        return;
    const char *params[] = {who};
    PGresult *res = NULL;
    wd_status st = wd_db_exec(c,
                              name ? "SELECT id, username, email, role, password_hash, "
                                     "totp_enabled, disabled FROM users WHERE username = $1"
                                   : "SELECT id, username, email, role, password_hash, "
                                     "totp_enabled, disabled FROM users WHERE email = $1",
                              1, params, &res);
    if (st != WD_OK) {
        wd_api_db_release(api, c);
        wd_http_reply_status(r, st);
        return;
    }
    bool found = PQntuples(res) == 1;
    bool ok = found ? wd_password_verify(pw, PQgetvalue(res, 0, 4))
                    : (wd_password_verify_dummy(pw, (int)api->cfg.bcrypt_cost), false);
    bool disabled = found && strcmp(PQgetvalue(res, 0, 6), "t") == 0;
    if (!ok || disabled) {
        wd_backoff_failure(api->login_user, who, now);
        wd_backoff_failure(api->login_ip, ipkey, now);
        json_t *meta = json_pack("{s:s}", "login", who);
        wd_api_audit(api, c, r, "auth.login_failed", "user", found ? PQgetvalue(res, 0, 0) : NULL,
                     meta);
        PQclear(res);
        wd_api_db_release(api, c);
        wd_http_reply_error(r, 401, "invalid_credentials",
                            disabled ? "this account is disabled"
                                     : "wrong username/email or password",
                            NULL);
        return;
    }
    bool two_factor = strcmp(PQgetvalue(res, 0, 5), "t") == 0;
    wipe(pw, sizeof pw);
    if (two_factor && !has_totp) {
        /* The password was right: not a failure, the client asks for the code. */
        PQclear(res);
        wd_api_db_release(api, c);
        wd_http_reply_error(r, 401, "totp_required", "this account needs a TOTP code", NULL);
        return;
    }
    char uid[40], uname[72], email[256], role[16];
    snprintf(uid, sizeof uid, "%s", PQgetvalue(res, 0, 0));
    snprintf(uname, sizeof uname, "%s", PQgetvalue(res, 0, 1));
    snprintf(email, sizeof email, "%s", PQgetvalue(res, 0, 2));
    snprintf(role, sizeof role, "%s", PQgetvalue(res, 0, 3));
    PQclear(res);

    const char *ua = wd_http_header(r, "User-Agent");
    const char *ip = wd_http_remote_ip(r);
    const char *fparams[] = {uid, ua ? ua : "", ip && *ip ? ip : NULL};
    res = NULL;
    st = wd_db_begin(c);
    /* The second factor is checked (and used up) in the session's
     * transaction: a code is only spent when the session is created. */
    if (st == WD_OK && two_factor) {
        st = check_second_factor(api, c, uid, totp, true);
        wipe(totp, sizeof totp);
        if (st == WD_ERR_DENIED) {
            wd_db_rollback(c);
            wd_backoff_failure(api->login_user, who, now);
            wd_backoff_failure(api->login_ip, ipkey, now);
            json_t *meta = json_pack("{s:s, s:s}", "login", who, "reason", "second factor");
            wd_api_audit(api, c, r, "auth.login_failed", "user", uid, meta);
            wd_api_db_release(api, c);
            wd_http_reply_error(r, 401, "invalid_totp",
                                "wrong, expired or already used two-factor code", NULL);
            return;
        }
    }
    if (st == WD_OK)
        wd_backoff_success(api->login_user, who);
    if (st == WD_OK)
        st = wd_db_exec(c,
                        "INSERT INTO refresh_families (user_id, user_agent, ip) "
                        "VALUES ($1, left($2, 200), $3) RETURNING id",
                        3, fparams, &res);
    if (st != WD_OK) {
        wd_db_rollback(c);
        wd_api_db_release(api, c);
        wd_http_reply_status(r, st);
        return;
    }
    char fid[40];
    snprintf(fid, sizeof fid, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    /* The audit row joins the session's transaction (no principal yet). */
    json_t *meta = json_pack("{s:s}", "session", fid);
    char *mtext = json_dumps(meta, JSON_COMPACT);
    json_decref(meta);
    const char *ap[] = {uid, uname, ip && *ip ? ip : NULL, mtext, wd_http_request_id(r), uid};
    st = wd_db_exec(c,
                    "INSERT INTO audit_log (actor_user_id, actor_label, ip, action, target_type, "
                    "target_id, metadata, request_id) VALUES ($1, $2, $3, 'auth.login', 'user', "
                    "$6, $4::jsonb, $5)",
                    6, ap, NULL);
    free(mtext);
    if (st != WD_OK) {
        wd_db_rollback(c);
        wd_api_db_release(api, c);
        wd_http_reply_status(r, st);
        return;
    }
    issue_session(api, c, r, uid, uname, email, role, fid);
    wd_api_db_release(api, c);
}

void wd_auth_refresh(wd_http_req *r, void *ud)
{
    wd_api *api = ud;
    static const wd_field spec[] = {
        {.name = "refresh_token", .type = WD_F_STRING, .required = true, .max_len = 128},
    };
    json_t *in = wd_api_input(r, spec, 1, false);
    if (in == NULL)
        return;
    char hash[WD_TOKEN_HASH_HEX_LEN + 1];
    wd_token_hash(json_string_value(json_object_get(in, "refresh_token")), hash);
    json_decref(in);
    PGconn *c = wd_api_db(api, r);
    if (c == NULL)
        return;
    const char *params[] = {hash};
    PGresult *res = NULL;
    wd_status st = wd_db_begin(c);
    if (st == WD_OK)
        st = wd_db_exec(c,
                        "SELECT t.id, t.used_at IS NOT NULL, t.expires_at < now(), f.id, "
                        "f.revoked_at IS NOT NULL, u.id, u.username, u.email, u.role, u.disabled "
                        "FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id "
                        "JOIN users u ON u.id = f.user_id WHERE t.token_hash = $1 "
                        "FOR UPDATE OF t, f",
                        1, params, &res);
    if (st != WD_OK) {
        wd_db_rollback(c);
        wd_api_db_release(api, c);
        wd_http_reply_status(r, st);
        return;
    }
    const char *fail = NULL, *code = "invalid_token";
    if (PQntuples(res) != 1) {
        fail = "unknown refresh token: log in again";
    } else if (strcmp(PQgetvalue(res, 0, 4), "t") == 0) {
        fail = "this session was revoked: log in again";
    } else if (strcmp(PQgetvalue(res, 0, 1), "t") == 0) {
        /* Reuse of a rotated token: end the whole family. */
        const char *fp[] = {PQgetvalue(res, 0, 3)};
        wd_db_exec(c,
                   "UPDATE refresh_families SET revoked_at = now(), "
                   "revoked_reason = 'refresh token reused' WHERE id = $1",
                   1, fp, NULL);
        const char *ap[] = {PQgetvalue(res, 0, 5), PQgetvalue(res, 0, 6), PQgetvalue(res, 0, 3),
                            wd_http_request_id(r)};
        /* $3 is only ever text here (target_id); the family id as text. */
        wd_db_exec(c,
                   "INSERT INTO audit_log (actor_user_id, actor_label, action, target_type, "
                   "target_id, request_id) VALUES ($1, $2, 'auth.refresh_reuse', 'session', $3, "
                   "$4)",
                   4, ap, NULL);
        wd_db_commit(c);
        wd_log_set_trace(wd_http_request_id(r));
        wd_warn("refresh token reuse for user %s: session %s revoked", PQgetvalue(res, 0, 6),
                PQgetvalue(res, 0, 3));
        wd_api_announce_revoked(api, PQgetvalue(res, 0, 5), PQgetvalue(res, 0, 3));
        fail = "this refresh token was already used: the session is revoked, log in again";
        code = "token_reused";
    } else if (strcmp(PQgetvalue(res, 0, 2), "t") == 0) {
        fail = "the refresh token has expired: log in again";
    } else if (strcmp(PQgetvalue(res, 0, 9), "t") == 0) {
        fail = "this account is disabled";
    }
    if (fail) {
        if (strcmp(code, "token_reused") != 0)
            wd_db_rollback(c);
        PQclear(res);
        wd_api_db_release(api, c);
        wd_http_reply_error(r, 401, code, fail, NULL);
        return;
    }
    const char *up[] = {PQgetvalue(res, 0, 0)};
    st = wd_db_exec(c, "UPDATE refresh_tokens SET used_at = now() WHERE id = $1", 1, up, NULL);
    if (st != WD_OK) {
        wd_db_rollback(c);
        PQclear(res);
        wd_api_db_release(api, c);
        wd_http_reply_status(r, st == WD_ERR_EXISTS ? WD_ERR_AGAIN : st);
        return;
    }
    char uid[40], uname[72], email[256], role[16], fid[40];
    snprintf(fid, sizeof fid, "%s", PQgetvalue(res, 0, 3));
    snprintf(uid, sizeof uid, "%s", PQgetvalue(res, 0, 5));
    snprintf(uname, sizeof uname, "%s", PQgetvalue(res, 0, 6));
    snprintf(email, sizeof email, "%s", PQgetvalue(res, 0, 7));
    snprintf(role, sizeof role, "%s", PQgetvalue(res, 0, 8));
    PQclear(res);
    issue_session(api, c, r, uid, uname, email, role, fid);
    wd_api_db_release(api, c);
}

void wd_auth_logout(wd_http_req *r, void *ud)
{
    wd_api *api = ud;
    const wd_principal *p = wd_api_principal(r);
    if (p->key_id[0]) {
        wd_http_reply_error(r, 400, "invalid_argument",
                            "an API key has no session to end: revoke the key instead", NULL);
        return;
    }
    PGconn *c = wd_api_db(api, r);
    if (c == NULL)
        return;
    const char *params[] = {p->sid, p->user_id};
    wd_status st = wd_db_exec(c,
                              "UPDATE refresh_families SET revoked_at = now(), "
                              "revoked_reason = 'logout' WHERE id = $1 AND user_id = $2 "
                              "AND revoked_at IS NULL",
                              2, params, NULL);
    if (st == WD_OK) {
        wd_api_audit(api, c, r, "auth.logout", "session", p->sid, NULL);
        wd_api_announce_revoked(api, p->user_id, p->sid);
    }
    wd_api_db_release(api, c);
    if (st != WD_OK)
        wd_http_reply_status(r, st);
    else
        wd_http_reply_json(r, 204, NULL);
}

void wd_auth_me(wd_http_req *r, void *ud)
{
    wd_api *api = ud;
    const wd_principal *p = wd_api_principal(r);
    PGconn *c = wd_api_db(api, r);
    if (c == NULL)
        return;
    const char *params[] = {p->user_id};
    PGresult *res = NULL;
    wd_status st = wd_db_exec(c,
                              "SELECT id, username, email, role, totp_enabled, "
                              "to_char(created_at AT TIME ZONE 'UTC', "
                              "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM users WHERE id = $1",
                              1, params, &res);
    wd_api_db_release(api, c);
    if (st != WD_OK || PQntuples(res) != 1) {
        PQclear(res);
        wd_http_reply_status(r, st != WD_OK ? st : WD_ERR(WD_ERR_NOT_FOUND, "no such user"));
        return;
    }
    json_t *body = json_pack("{s:s, s:s, s:s, s:s, s:b, s:s}", "id", PQgetvalue(res, 0, 0),
                             "username", PQgetvalue(res, 0, 1), "email", PQgetvalue(res, 0, 2),
                             "role", PQgetvalue(res, 0, 3), "totp_enabled",
                             strcmp(PQgetvalue(res, 0, 4), "t") == 0, "created_at",
                             PQgetvalue(res, 0, 5));
    PQclear(res);
    wd_http_reply_json(r, 200, body);
}

/* ---- account security: TOTP two-factor authentication, password --------- */

/* Failed password or code checks on the account routes feed the same
 * back-off as logins, so they are no side door for guessing. Keys as in
 * wd_auth_login (user names are stored lowercase). */
static bool backoff_allowed(wd_api *api, wd_http_req *r, const wd_principal *p, int64_t now)
{
    char ipkey[80];
    int retry = 0;
    snprintf(ipkey, sizeof ipkey, "ip:%s", wd_http_remote_ip(r));
    if (wd_backoff_allowed(api->login_user, p->username, now, &retry) &&
        wd_backoff_allowed(api->login_ip, ipkey, now, &retry))
        return true;
    too_many(r, retry);
    return false;
}

static void backoff_failure(wd_api *api, wd_http_req *r, const wd_principal *p, int64_t now)
{
    char ipkey[80];
    snprintf(ipkey, sizeof ipkey, "ip:%s", wd_http_remote_ip(r));
    wd_backoff_failure(api->login_user, p->username, now);
    wd_backoff_failure(api->login_ip, ipkey, now);
}

/* Ends a request: rolls back an open transaction, releases the connection
 * and replies with st unless a reply was already sent (st == WD_OK). */
static void fail(wd_api *api, PGconn *c, wd_http_req *r, wd_status st)
{
    wd_db_rollback(c);
    wd_api_db_release(api, c);
    if (st != WD_OK)
        wd_http_reply_status(r, st);
}

/* The caller's password hash into hash (a row without locking: bcrypt runs
 * outside any transaction). WD_ERR_NOT_FOUND for a deleted user. */
static wd_status load_password_hash(PGconn *c, const char *uid, char *hash, size_t len)
{
    const char *params[] = {uid};
    PGresult *res = NULL;
    wd_status st = wd_db_exec(c, "SELECT password_hash FROM users WHERE id = $1", 1, params, &res);
    if (st != WD_OK)
        return st;
    if (PQntuples(res) != 1)
        st = WD_ERR(WD_ERR_NOT_FOUND, "no such user");
    else
        snprintf(hash, len, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return st;
}

void wd_account_totp_enrol(wd_http_req *r, void *ud)
{
    wd_api *api = ud;
    const wd_principal *p = wd_api_principal(r);
    json_t *in = wd_api_input(r, NULL, 0, true);
    if (in == NULL)
        return;
    json_decref(in);
    PGconn *c = wd_api_db(api, r);
    if (c == NULL)
        return;
    const char *params[] = {p->user_id, NULL};
    PGresult *res = NULL;
    char secret[WD_TOTP_SECRET_B32_LEN + 1], uri[512];
    char *sealed = NULL;
    wd_status st = wd_db_begin(c);
    if (st == WD_OK)
        st = wd_db_exec(c, "SELECT username, totp_enabled FROM users WHERE id = $1 FOR UPDATE", 1,
                        params, &res);
    if (st == WD_OK && PQntuples(res) != 1)
        st = WD_ERR(WD_ERR_NOT_FOUND, "no such user");
    if (st != WD_OK) {
        PQclear(res);
        fail(api, c, r, st);
        return;
    }
    if (strcmp(PQgetvalue(res, 0, 1), "t") == 0) {
        PQclear(res);
        fail(api, c, r, WD_OK);
        wd_http_reply_error(r, 409, "conflict",
                            "two-factor authentication is already enabled; disable it first", NULL);
        return;
    }
    char aad[96];
    snprintf(aad, sizeof aad, "totp:%s", p->user_id);
    st = wd_totp_secret_new(secret, sizeof secret);
    if (st == WD_OK)
        st = wd_totp_uri(TOTP_ISSUER, PQgetvalue(res, 0, 0), secret, uri, sizeof uri);
    PQclear(res);
    if (st == WD_OK)
        st = wd_secretbox_seal(api->box, secret, strlen(secret), aad, &sealed);
    params[1] = sealed;
    /* A new enrolment replaces an unconfirmed one; the replay guard starts
     * over with the new secret. */
    if (st == WD_OK)
        st = wd_db_exec(c,
                        "UPDATE users SET totp_secret_enc = $2, totp_last_step = NULL "
                        "WHERE id = $1",
                        2, params, NULL);
    free(sealed);
    if (st == WD_OK) {
        wd_api_audit(api, c, r, "auth.totp_enrol", "user", p->user_id, NULL);
        st = wd_db_commit(c);
    }
    if (st != WD_OK) {
        wipe(secret, sizeof secret);
        fail(api, c, r, st);
        return;
    }
    wd_api_db_release(api, c);
    json_t *body = json_pack("{s:s, s:s}", "secret", secret, "otpauth_uri", uri);
    wipe(secret, sizeof secret);
    wipe(uri, sizeof uri);
    wd_http_reply_json(r, 200, body);
}

void wd_account_totp_confirm(wd_http_req *r, void *ud)
{
    wd_api *api = ud;
    const wd_principal *p = wd_api_principal(r);
    static const wd_field spec[] = {
        {.name = "code", .type = WD_F_STRING, .required = true, .max_len = 16},
    };
    json_t *in = wd_api_input(r, spec, sizeof spec / sizeof spec[0], false);
    if (in == NULL)
        return;
    char code[24];
    snprintf(code, sizeof code, "%s", json_string_value(json_object_get(in, "code")));
    json_decref(in);
    PGconn *c = wd_api_db(api, r);
    if (c == NULL)
        return;
    const char *params[] = {p->user_id, NULL};
    PGresult *res = NULL;
    wd_status st = wd_db_begin(c);
    if (st == WD_OK)
        st = wd_db_exec(c,
                        "SELECT totp_enabled, totp_secret_enc IS NOT NULL FROM users "
                        "WHERE id = $1 FOR UPDATE",
                        1, params, &res);
    if (st == WD_OK && PQntuples(res) != 1)
        st = WD_ERR(WD_ERR_NOT_FOUND, "no such user");
    if (st != WD_OK) {
        PQclear(res);
        fail(api, c, r, st);
        return;
    }
    bool enabled = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    bool pending = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
    PQclear(res);
    if (enabled || !pending) {
        fail(api, c, r, WD_OK);
        wd_http_reply_error(r, 409, enabled ? "conflict" : "failed_precondition",
                            enabled ? "two-factor authentication is already enabled"
                                    : "start with POST /api/v1/me/totp",
                            NULL);
        return;
    }
    st = check_second_factor(api, c, p->user_id, code, false);
    if (st == WD_ERR_DENIED) {
        fail(api, c, r, WD_OK);
        wd_http_reply_error(r, 401, "invalid_totp", "wrong, expired or already used TOTP code",
                            NULL);
        return;
    }
    char codes[RECOVERY_CODES][WD_RECOVERY_CODE_SIZE];
    /* "{hash,hash,...}": hex digits need no quoting in an array literal. */
    char arr[RECOVERY_CODES * (WD_TOKEN_HASH_HEX_LEN + 1) + 3];
    size_t off = 0;
    if (st == WD_OK)
        st = wd_recovery_codes_new(RECOVERY_CODES, codes);
    arr[off++] = '{';
    for (size_t i = 0; st == WD_OK && i < RECOVERY_CODES; i++) {
        char norm[WD_RECOVERY_CODE_SIZE];
        if ((st = wd_recovery_code_normalize(codes[i], norm)) == WD_OK &&
            (st = wd_token_hash(norm, arr + off)) == WD_OK) {
            off += WD_TOKEN_HASH_HEX_LEN;
            arr[off++] = i + 1 < RECOVERY_CODES ? ',' : '}';
        }
    }
    arr[off] = '\0';
    params[1] = arr;
    if (st == WD_OK)
        st = wd_db_exec(c, "UPDATE users SET totp_enabled = true WHERE id = $1", 1, params, NULL);
    if (st == WD_OK)
        st = wd_db_exec(c, "DELETE FROM recovery_codes WHERE user_id = $1", 1, params, NULL);
    if (st == WD_OK)
        st = wd_db_exec(c,
                        "INSERT INTO recovery_codes (user_id, code_hash) "
                        "SELECT $1, unnest($2::text[])",
                        2, params, NULL);
    if (st == WD_OK) {
        wd_api_audit(api, c, r, "auth.totp_enable", "user", p->user_id, NULL);
        st = wd_db_commit(c);
    }
    if (st != WD_OK) {
        wipe(codes, sizeof codes);
        fail(api, c, r, st);
        return;
    }
    wd_api_db_release(api, c);
    json_t *list = json_array();
    for (size_t i = 0; i < RECOVERY_CODES; i++)
        json_array_append_new(list, json_string(codes[i]));
    wipe(codes, sizeof codes);
    wd_http_reply_json(r, 200, json_pack("{s:o}", "recovery_codes", list));
}

void wd_account_totp_disable(wd_http_req *r, void *ud)
{
    wd_api *api = ud;
    const wd_principal *p = wd_api_principal(r);
    static const wd_field spec[] = {
        {.name = "password", .type = WD_F_STRING, .required = true, .max_len = 72},
        {.name = "code", .type = WD_F_STRING, .required = true, .max_len = 32},
    };
    json_t *in = wd_api_input(r, spec, sizeof spec / sizeof spec[0], false);
    if (in == NULL)
        return;
    char pw[80], code[40], hash[128];
    snprintf(pw, sizeof pw, "%s", json_string_value(json_object_get(in, "password")));
    snprintf(code, sizeof code, "%s", json_string_value(json_object_get(in, "code")));
    json_decref(in);
    int64_t now = wd_mono_ms();
    if (!backoff_allowed(api, r, p, now))
        goto out;
    PGconn *c = wd_api_db(api, r);
    if (c == NULL)
        goto out;
    wd_status st = load_password_hash(c, p->user_id, hash, sizeof hash);
    if (st != WD_OK) {
        fail(api, c, r, st);
        goto out;
    }
    if (!wd_password_verify(pw, hash)) {
        backoff_failure(api, r, p, now);
        wd_api_audit(api, c, r, "auth.totp_disable_failed", "user", p->user_id,
                     json_pack("{s:s}", "reason", "password"));
        wd_api_db_release(api, c);
        wd_http_reply_error(r, 401, "invalid_credentials", "wrong password", NULL);
        goto out;
    }
    const char *params[] = {p->user_id};
    PGresult *res = NULL;
    if ((st = wd_db_begin(c)) == WD_OK)
        st = wd_db_exec(c, "SELECT totp_enabled FROM users WHERE id = $1 FOR UPDATE", 1, params,
                        &res);
    if (st == WD_OK && PQntuples(res) != 1)
        st = WD_ERR(WD_ERR_NOT_FOUND, "no such user");
    bool enabled = st == WD_OK && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    if (st != WD_OK) {
        fail(api, c, r, st);
        goto out;
    }
    if (!enabled) {
        fail(api, c, r, WD_OK);
        wd_http_reply_error(r, 409, "failed_precondition",
                            "two-factor authentication is not enabled", NULL);
        goto out;
    }
    st = check_second_factor(api, c, p->user_id, code, true);
    if (st == WD_ERR_DENIED) {
        wd_db_rollback(c);
        backoff_failure(api, r, p, now);
        wd_api_audit(api, c, r, "auth.totp_disable_failed", "user", p->user_id,
                     json_pack("{s:s}", "reason", "second factor"));
        wd_api_db_release(api, c);
        wd_http_reply_error(r, 401, "invalid_totp",
                            "wrong, expired or already used two-factor code", NULL);
        goto out;
    }
    if (st == WD_OK)
        st = wd_db_exec(c,
                        "UPDATE users SET totp_enabled = false, totp_secret_enc = NULL, "
                        "totp_last_step = NULL WHERE id = $1",
                        1, params, NULL);
    if (st == WD_OK)
        st = wd_db_exec(c, "DELETE FROM recovery_codes WHERE user_id = $1", 1, params, NULL);
    if (st == WD_OK) {
        wd_api_audit(api, c, r, "auth.totp_disable", "user", p->user_id, NULL);
        st = wd_db_commit(c);
    }
    if (st != WD_OK) {
        fail(api, c, r, st);
        goto out;
    }
    wd_backoff_success(api->login_user, p->username);
    wd_api_db_release(api, c);
    wd_http_reply_json(r, 204, NULL);
out:
    wipe(pw, sizeof pw);
    wipe(code, sizeof code);
}

void wd_account_password_change(wd_http_req *r, void *ud)
{
    wd_api *api = ud;
    const wd_principal *p = wd_api_principal(r);
    static const wd_field spec[] = {
        {.name = "current_password", .type = WD_F_STRING, .required = true, .max_len = 72},
        {.name = "new_password",
         .type = WD_F_STRING,
         .required = true,
         .max_len = WD_PASSWORD_MAX_BYTES},
    };
    json_t *in = wd_api_input(r, spec, sizeof spec / sizeof spec[0], false);
    if (in == NULL)
        return;
    char cur[80], pw[80], hash[128];
    snprintf(cur, sizeof cur, "%s", json_string_value(json_object_get(in, "current_password")));
    snprintf(pw, sizeof pw, "%s", json_string_value(json_object_get(in, "new_password")));
    json_decref(in);
    int64_t now = wd_mono_ms();
    PGconn *c = NULL;
    if (strlen(pw) < PASSWORD_MIN_BYTES) {
        wd_http_reply_error(r, 400, "invalid_argument", "invalid fields: new_password",
                            json_pack("{s:s}", "new_password", "must be 12 to 72 bytes"));
        goto out;
    }
    if (strcmp(pw, cur) == 0) {
        wd_http_reply_error(
            r, 400, "invalid_argument", "invalid fields: new_password",
            json_pack("{s:s}", "new_password", "must differ from the current password"));
        goto out;
    }
    if (!backoff_allowed(api, r, p, now))
        goto out;
    if ((c = wd_api_db(api, r)) == NULL)
        goto out;
    wd_status st = load_password_hash(c, p->user_id, hash, sizeof hash);
    if (st != WD_OK) {
        fail(api, c, r, st);
        goto out;
    }
    if (!wd_password_verify(cur, hash)) {
        backoff_failure(api, r, p, now);
        wd_api_audit(api, c, r, "auth.password_change_failed", "user", p->user_id, NULL);
        wd_api_db_release(api, c);
        wd_http_reply_error(r, 401, "invalid_credentials", "wrong current password", NULL);
        goto out;
    }
    wd_backoff_success(api->login_user, p->username);
    if ((st = wd_password_hash(pw, (int)api->cfg.bcrypt_cost, hash, sizeof hash)) != WD_OK) {
        fail(api, c, r, st);
        goto out;
    }
    /* Every session ends, the current one too: whoever knew the old
     * password may hold one of them. */
    const char *params[] = {p->user_id, hash};
    PGresult *res = NULL;
    if ((st = wd_db_begin(c)) == WD_OK)
        st = wd_db_exec(c, "UPDATE users SET password_hash = $2 WHERE id = $1", 2, params, NULL);
    if (st == WD_OK)
        st = wd_db_exec(c,
                        "UPDATE refresh_families SET revoked_at = now(), "
                        "revoked_reason = 'password changed' WHERE user_id = $1 "
                        "AND revoked_at IS NULL",
                        1, params, &res);
    if (st == WD_OK) {
        wd_api_audit(api, c, r, "auth.password_change", "user", p->user_id,
                     json_pack("{s:I}", "sessions_revoked", (json_int_t)affected(res)));
        st = wd_db_commit(c);
        if (st == WD_OK)
            wd_api_announce_revoked(api, p->user_id, NULL);
    }
    PQclear(res);
    if (st != WD_OK) {
        fail(api, c, r, st);
        goto out;
    }
    wd_api_db_release(api, c);
    wd_http_reply_json(r, 204, NULL);
out:
    wipe(cur, sizeof cur);
    wipe(pw, sizeof pw);
    wipe(hash, sizeof hash);
}
