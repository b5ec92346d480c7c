/* Authentication routes: login, refresh (rotating tokens with reuse
 * detection), logout, and the caller's own account.
 *
 * A login starts a refresh family; each refresh marks the presented token
 * used and issues the next one in the same family. Presenting a used token
 * again means it was stolen (or replayed): the whole family is revoked, so
 * both the thief's and the victim's sessions end. Access JWTs name their
 * family (sid) and stop working as soon as it is revoked. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app_int.h"
#include "input.h"
#include "log.h"
#include "password.h"
#include "token.h"
#include "util.h"

#define REFRESH_PREFIX "wdr_"

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
        {.name = "totp", .type = WD_F_STRING, .max_len = 16},
    };
    json_t *in = wd_http_json_body(r);
    if (in == NULL)
        return;
    json_t *details = NULL;
    if (wd_input_check(in, spec, sizeof spec / sizeof spec[0], &details) != WD_OK) {
        wd_http_reply_error(r, 400, "invalid_argument", wd_err_msg(), details);
        json_decref(in);
        return;
    }
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
    char pw[80];
    snprintf(pw, sizeof pw, "%s", json_string_value(json_object_get(in, "password")));
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
    if (strcmp(PQgetvalue(res, 0, 5), "t") == 0) {
        /* Two-factor accounts: the TOTP check comes with the 2FA routes. */
        PQclear(res);
        wd_api_db_release(api, c);
        wd_http_reply_error(r, 401, "totp_required", "this account needs a TOTP code", NULL);
        return;
    }
    wd_backoff_success(api->login_user, who);
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
    if ((st = wd_db_begin(c)) == WD_OK)
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
    json_t *in = wd_http_json_body(r);
    if (in == NULL)
        return;
    json_t *details = NULL;
    if (wd_input_check(in, spec, 1, &details) != WD_OK) {
        wd_http_reply_error(r, 400, "invalid_argument", wd_err_msg(), details);
        json_decref(in);
        return;
    }
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
    PGconn *c = wd_api_db(api, r);
    if (c == NULL)
        return;
    const char *params[] = {p->sid, p->user_id};
    wd_status st = wd_db_exec(c,
                              "UPDATE refresh_families SET revoked_at = now(), "
                              "revoked_reason = 'logout' WHERE id = $1 AND user_id = $2 "
                              "AND revoked_at IS NULL",
                              2, params, NULL);
    if (st == WD_OK)
        wd_api_audit(api, c, r, "auth.logout", "session", p->sid, NULL);
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
