/* API keys: long-lived bearer tokens ("wdk_...") a user makes for scripts.
 * The key is shown once at creation; only its SHA-256 and a short prefix
 * (to tell keys apart in a list) are stored. Keys are not sessions: logout
 * does not touch them, revocation does. A key acts as its owner; it acts as
 * an admin only when the owner is one AND the key carries the "admin" scope,
 * so an admin can hand out keys that cannot administrate. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_routes.h"
#include "app_int.h"
#include "input.h"
#include "log.h"
#include "perms.h"
#include "token.h"
#include "util.h"

#define KEY_PREFIX "wdk_"
#define SHOWN_PREFIX_LEN 12

#define KEY_COLS                                                                                   \
    "id, name, prefix, array_to_json(scopes)::text, " WD_SQL_TS(                                   \
        "created_at") ", "                                                                         \
                      "coalesce(" WD_SQL_TS("last_used_at") ", ''), coalesce(" WD_SQL_TS(          \
                          "expires_at") ", '')"

static json_t *opt_string(const char *s)
{
    return *s ? json_string(s) : json_null();
}

static json_t *key_json(PGresult *res, int i)
{
    json_t *scopes = json_loads(PQgetvalue(res, i, 3), 0, NULL);
    return json_pack("{s:s, s:s, s:s, s:o, s:s, s:o, s:o}", "id", PQgetvalue(res, i, 0), "name",
                     PQgetvalue(res, i, 1), "prefix", PQgetvalue(res, i, 2), "scopes",
                     scopes ? scopes : json_array(), "created_at", PQgetvalue(res, i, 4),
                     "last_used_at", opt_string(PQgetvalue(res, i, 5)), "expires_at",
                     opt_string(PQgetvalue(res, i, 6)));
}

static const wd_field create_fields[] = {
    {.name = "name", .type = WD_F_STRING, .required = true, .max_len = 100},
    {.name = "scopes", .type = WD_F_STRING_ARRAY, .max_len = 64},
    {.name = "expires_in_days", .type = WD_F_INT, .min = 1, .max = 3650},
};

void wd_apikeys_create(wd_http_req *r, void *ud)
{
    wd_api *api = ud;
    const wd_principal *me = wd_api_principal(r);
    json_t *in =
        wd_api_input(r, create_fields, sizeof create_fields / sizeof create_fields[0], false);
    if (in == NULL)
        return;
    const char *name = json_string_value(json_object_get(in, "name"));
    if (*name == '\0') {
        wd_http_reply_error(r, 400, "invalid_argument", "invalid fields: name",
                            json_pack("{s:s}", "name", "must not be empty"));
        json_decref(in);
        return;
    }
    json_t *scopes = json_object_get(in, "scopes");
    size_t i;
    json_t *s;
    json_array_foreach(scopes, i, s)
    {
        const char *v = json_string_value(s);
        if (strcmp(v, "admin") == 0) {
            if (strcmp(me->role, "admin") != 0) {
                wd_http_reply_error(r, 403, "forbidden",
                                    "only admins may create keys with the admin scope", NULL);
                json_decref(in);
                return;
            }
        } else if (!wd_perm_valid(v)) {
            wd_http_reply_error(r, 400, "invalid_argument", "invalid fields: scopes",
                                json_pack("{s:s}", "scopes", "holds an unknown permission"));
            json_decref(in);
            return;
        }
    }
    char key[64], hash[WD_TOKEN_HASH_HEX_LEN + 1], prefix[SHOWN_PREFIX_LEN + 1], days[16];
    wd_status st = wd_token_new(KEY_PREFIX, key, sizeof key);
    if (st == WD_OK)
        st = wd_token_hash(key, hash);
    if (st != WD_OK) {
        wd_http_reply_status(r, st);
        json_decref(in);
        return;
    }
    snprintf(prefix, sizeof prefix, "%.*s", SHOWN_PREFIX_LEN, key);
    json_t *exp = json_object_get(in, "expires_in_days");
    if (exp)
        snprintf(days, sizeof days, "%lld", (long long)json_integer_value(exp));
    json_t *sc = scopes ? json_incref(scopes) : json_array();
    char *scopes_text = json_dumps(sc, JSON_COMPACT);
    const char *params[] = {me->user_id, name, prefix, hash, scopes_text, exp ? days : NULL};
    PGconn *c = wd_api_db(api, r);
    if (c == NULL) {
        free(scopes_text);
        json_decref(sc);
        json_decref(in);
        return;
    }
    PGresult *res = NULL;
    st = wd_db_exec(
        c,
        "INSERT INTO api_keys (user_id, name, prefix, key_hash, scopes, expires_at) "
        "VALUES ($1, $2, $3, $4, ARRAY(SELECT DISTINCT jsonb_array_elements_text($5::jsonb)), "
        "CASE WHEN $6::int IS NULL THEN NULL "
        "ELSE now() + make_interval(days => $6::int) END) RETURNING " KEY_COLS,
        6, params, &res);
    if (st == WD_OK) {
        json_t *meta = json_pack("{s:s, s:s, s:O}", "name", name, "prefix", prefix, "scopes", sc);
        wd_api_audit(api, c, r, "api_key.create", "api_key", PQgetvalue(res, 0, 0), meta);
    }
    wd_api_db_release(api, c);
    if (st == WD_OK) {
        json_t *out = key_json(res, 0);
        json_object_set_new(out, "key", json_string(key));
        wd_http_reply_json(r, 201, out);
    } else {
        wd_http_reply_status(r, st);
    }
    PQclear(res);
    free(scopes_text);
    json_decref(sc);
    json_decref(in);
}

void wd_apikeys_list(wd_http_req *r, void *ud)
{
    wd_api *api = ud;
    const wd_principal *me = wd_api_principal(r);
    static const char *const sortable[] = {"created_at", "name", "last_used_at", NULL};
    wd_page pg;
    char limit[16], offset[24];
    if (!wd_api_page(r, sortable, &pg, limit, offset))
        return;
    /* The sort column comes from the fixed list above, never from input. */
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT " KEY_COLS ", count(*) OVER () FROM api_keys "
             "WHERE user_id = $1 AND revoked_at IS NULL ORDER BY %s %s NULLS LAST, id "
             "LIMIT $2 OFFSET $3",
             strcmp(pg.sort, "name") == 0           ? "name"
             : strcmp(pg.sort, "last_used_at") == 0 ? "last_used_at"
                                                    : "created_at",
             pg.desc ? "DESC" : "ASC");
    const char *params[] = {me->user_id, limit, offset};
    wd_api_list(api, r, sql, 3, params, pg.page, pg.limit, key_json);
}

void wd_apikeys_delete(wd_http_req *r, void *ud)
{
    wd_api *api = ud;
    const wd_principal *me = wd_api_principal(r);
    const char *id = wd_http_param(r, "id");
    if (!wd_uuid_valid(id)) {
        wd_http_reply_error(r, 400, "invalid_argument", "API key id must be a UUID", NULL);
        return;
    }
    PGconn *c = wd_api_db(api, r);
    if (c == NULL)
        return;
    const char *params[] = {id, me->user_id};
    PGresult *res = NULL;
    wd_status st = wd_db_exec(c,
                              "UPDATE api_keys SET revoked_at = now() WHERE id = $1 "
                              "AND user_id = $2 AND revoked_at IS NULL RETURNING prefix",
                              2, params, &res);
    if (st == WD_OK && PQntuples(res) == 0)
        st = WD_ERR(WD_ERR_NOT_FOUND, "API key %s not found", id);
    if (st == WD_OK)
        wd_api_audit(api, c, r, "api_key.revoke", "api_key", id,
                     json_pack("{s:s}", "prefix", PQgetvalue(res, 0, 0)));
    wd_api_db_release(api, c);
    PQclear(res);
    if (st == WD_OK)
        wd_http_reply_json(r, 204, NULL);
    else
        wd_http_reply_status(r, st);
}

wd_status wd_apikey_authenticate(wd_api *api, const char *key, wd_principal *p)
{
    if (key == NULL || strncmp(key, KEY_PREFIX, strlen(KEY_PREFIX)) != 0 ||
        strlen(key) > WD_TOKEN_PREFIX_MAX + WD_TOKEN_BODY_LEN)
        return WD_ERR(WD_ERR_DENIED, "invalid API key");
    char hash[WD_TOKEN_HASH_HEX_LEN + 1];
    wd_status st = wd_token_hash(key, hash);
    if (st != WD_OK)
        return st;
    PGconn *c = NULL;
    if ((st = wd_db_acquire(api->db, &c)) != WD_OK)
        return st;
    const char *params[] = {hash};
    PGresult *res = NULL;
    st = wd_db_exec(c,
                    "SELECT k.id, u.id, u.username, u.role, 'admin' = ANY (k.scopes), "
                    "k.last_used_at IS NULL OR k.last_used_at < now() - interval '1 minute', "
                    "k.key_hash, array_to_string(k.scopes, ' ') "
                    "FROM api_keys k JOIN users u ON u.id = k.user_id "
                    "WHERE k.key_hash = $1 AND k.revoked_at IS NULL "
                    "AND (k.expires_at IS NULL OR k.expires_at > now()) AND NOT u.disabled",
                    1, params, &res);
    if (st == WD_OK && (PQntuples(res) != 1 || !wd_token_equal_ct(PQgetvalue(res, 0, 6), hash)))
        st = WD_ERR(WD_ERR_DENIED, "the API key is unknown, revoked or expired");
    if (st == WD_OK) {
        memset(p, 0, sizeof *p);
        snprintf(p->user_id, sizeof p->user_id, "%s", PQgetvalue(res, 0, 1));
        snprintf(p->username, sizeof p->username, "%s", PQgetvalue(res, 0, 2));
        bool admin = strcmp(PQgetvalue(res, 0, 3), "admin") == 0 && *PQgetvalue(res, 0, 4) == 't';
        snprintf(p->role, sizeof p->role, "%s", admin ? "admin" : "user");
        snprintf(p->key_id, sizeof p->key_id, "%s", PQgetvalue(res, 0, 0));
        snprintf(p->scopes, sizeof p->scopes, "%s", PQgetvalue(res, 0, 7));
        if (*PQgetvalue(res, 0, 5) == 't') {
            /* Best effort and at most once a minute: a busy key must not turn
             * every read into a write. */
            const char *kp[] = {PQgetvalue(res, 0, 0)};
            if (wd_db_exec(c,
                           "UPDATE api_keys SET last_used_at = now() WHERE id = $1 AND "
                           "(last_used_at IS NULL OR last_used_at < now() - interval '1 minute')",
                           1, kp, NULL) != WD_OK)
                wd_warn("api key %s: last_used_at: %s", kp[0], wd_err_msg());
        }
    } else if (st == WD_ERR_INVALID) {
        st = WD_ERR(WD_ERR_DENIED, "invalid API key");
    }
    PQclear(res);
    wd_db_release(api->db, c);
    return st;
}
