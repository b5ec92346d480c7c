/* User administration (admin role): list, create (with a one-time password
 * when none is given), read, change email/role/disabled, delete.
 *
 * Disabling a user ends every session of theirs at once (their refresh
 * families are revoked, and an access token is checked against its family on
 * each request); their API keys stop working because authentication checks
 * the owner's disabled flag. An admin cannot disable, demote or delete
 * themselves, so the panel never loses its last way in by accident. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_routes.h"
#include "app_int.h"
#include "input.h"
#include "util.h"

#define USER_COLS                                                                                  \
    "id, username, email, role, disabled, totp_enabled, " WD_SQL_TS("created_at") ", " WD_SQL_TS(  \
        "updated_at") ", (SELECT count(*) FROM servers s WHERE s.owner_id = users.id)"

static json_t *user_json(PGresult *res, int i)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:b, s:b, s:s, s:s, s:I}", "id", PQgetvalue(res, i, 0),
                     "username", PQgetvalue(res, i, 1), "email", PQgetvalue(res, i, 2), "role",
                     PQgetvalue(res, i, 3), "disabled", *PQgetvalue(res, i, 4) == 't',
                     "totp_enabled", *PQgetvalue(res, i, 5) == 't', "created_at",
                     PQgetvalue(res, i, 6), "updated_at", PQgetvalue(res, i, 7), "servers",
                     (json_int_t)strtoll(PQgetvalue(res, i, 8), NULL, 10));
}

static bool role_ok(wd_http_req *r, json_t *in)
{
    const char *role = json_string_value(json_object_get(in, "role"));
    if (role == NULL || strcmp(role, "admin") == 0 || strcmp(role, "user") == 0)
        return true;
    wd_http_reply_error(r, 400, "invalid_argument", "invalid fields: role",
                        json_pack("{s:s}", "role", "must be admin or user"));
    return false;
}

void wd_users_list(wd_http_req *r, void *ud)
{
    wd_api *api = ud;
    static const char *const sortable[] = {"name", "created_at", NULL};
    wd_page pg;
    char limit[16], offset[24], buf[256], sql[1024];
    const char *pattern = NULL;
    if (!wd_api_page(r, sortable, &pg, limit, offset) ||
        !wd_api_search(r, buf, sizeof buf, &pattern))
        return;
    /* The sort column comes from the fixed list above, never from input. */
    snprintf(sql, sizeof sql,
             "SELECT " USER_COLS ", count(*) OVER () FROM users "
             "WHERE ($1::text IS NULL OR username ILIKE $1 OR email ILIKE $1) "
             "ORDER BY %s %s, id LIMIT $2 OFFSET $3",
             strcmp(pg.sort, "created_at") == 0 ? "created_at" : "username",
             pg.desc ? "DESC" : "ASC");
    const char *params[] = {pattern, limit, offset};
    wd_api_list(api, r, sql, 3, params, pg.page, pg.limit, user_json);
}

static wd_status fetch(PGconn *c, const char *id, PGresult **res)
{
    const char *params[] = {id};
    wd_status st = wd_db_exec(c, "SELECT " USER_COLS " FROM users WHERE id = $1", 1, params, res);
    if (st == WD_OK && PQntuples(*res) == 0)
        st = WD_ERR(WD_ERR_NOT_FOUND, "user %s not found", id);
    return st;
}

static const wd_field create_fields[] = {
    {.name = "username", .type = WD_F_STRING, .required = true, .max_len = 64},
    {.name = "email", .type = WD_F_EMAIL, .required = true, .max_len = 254},
    {.name = "role", .type = WD_F_STRING, .required = true, .max_len = 16},
    {.name = "password", .type = WD_F_STRING, .max_len = 72},
};

void wd_users_create(wd_http_req *r, void *ud)
{
    wd_api *api = ud;
    json_t *in =
        wd_api_input(r, create_fields, sizeof create_fields / sizeof create_fields[0], false);
    if (in == NULL)
        return;
    if (!role_ok(r, in)) {
        json_decref(in);
        return;
    }
    const char *password = json_string_value(json_object_get(in, "password"));
    if (password && strlen(password) < 8) {
        wd_http_reply_error(r, 400, "invalid_argument", "invalid fields: password",
                            json_pack("{s:s}", "password", "must be at least 8 characters"));
        json_decref(in);
        return;
    }
    char generated[64] = "", id[40] = "";
    /* wd_api_create_user hashes (bcrypt) and writes the user.create audit row. */
    wd_status st = wd_api_create_user(api, json_string_value(json_object_get(in, "username")),
                                      json_string_value(json_object_get(in, "email")),
                                      json_string_value(json_object_get(in, "role")), password,
                                      generated, sizeof generated, id);
    json_decref(in);
    if (st != WD_OK) {
        wd_http_reply_status(r, st);
        return;
    }
    PGconn *c = wd_api_db(api, r);
    if (c == NULL)
        return;
    PGresult *res = NULL;
    st = fetch(c, id, &res);
    wd_api_db_release(api, c);
    if (st == WD_OK) {
        json_t *out = json_pack("{s:o}", "user", user_json(res, 0));
        if (password == NULL)
            json_object_set_new(out, "one_time_password", json_string(generated));
        wd_http_reply_json(r, 201, out);
    } else {
        wd_http_reply_status(r, st);
    }
    PQclear(res);
}

void wd_users_get(wd_http_req *r, void *ud)
{
    wd_api *api = ud;
    const char *id;
    if (!wd_api_uuid_param(r, "id", "user id", &id))
        return;
    PGconn *c = wd_api_db(api, r);
    if (c == NULL)
        return;
    PGresult *res = NULL;
    wd_status st = fetch(c, id, &res);
    wd_api_db_release(api, c);
    if (st == WD_OK)
        wd_http_reply_json(r, 200, user_json(res, 0));
    else
        wd_http_reply_status(r, st);
    PQclear(res);
}

static const wd_field update_fields[] = {
    {.name = "email", .type = WD_F_EMAIL, .max_len = 254},
    {.name = "role", .type = WD_F_STRING, .max_len = 16},
    {.name = "disabled", .type = WD_F_BOOL},
};

void wd_users_update(wd_http_req *r, void *ud)
{
    wd_api *api = ud;
    const wd_principal *me = wd_api_principal(r);
    const char *id;
    if (!wd_api_uuid_param(r, "id", "user id", &id))
        return;
    json_t *in =
        wd_api_input(r, update_fields, sizeof update_fields / sizeof update_fields[0], false);
    if (in == NULL)
        return;
    if (!role_ok(r, in)) {
        json_decref(in);
        return;
    }
    const char *email = json_string_value(json_object_get(in, "email"));
    const char *role = json_string_value(json_object_get(in, "role"));
    json_t *dis = json_object_get(in, "disabled");
    if (strcmp(id, me->user_id) == 0 &&
        ((role && strcmp(role, "admin") != 0) || (dis && json_is_true(dis)))) {
        wd_http_reply_error(r, 409, "failed_precondition", "you cannot disable or demote yourself",
                            NULL);
        json_decref(in);
        return;
    }
    const char *params[] = {id, email, role, dis ? (json_is_true(dis) ? "true" : "false") : NULL};
    PGconn *c = wd_api_db(api, r);
    if (c == NULL) {
        json_decref(in);
        return;
    }
    PGresult *res = NULL;
    wd_status st = wd_db_begin(c);
    if (st == WD_OK)
        st = wd_db_exec(c,
                        "UPDATE users SET email = coalesce(lower($2), email), "
                        "role = coalesce($3, role), disabled = coalesce($4::boolean, disabled) "
                        "WHERE id = $1 RETURNING id",
                        4, params, NULL);
    if (st == WD_OK)
        st = fetch(c, id, &res);
    if (st == WD_OK && dis && json_is_true(dis))
        st = wd_db_exec(c,
                        "UPDATE refresh_families SET revoked_at = now(), "
                        "revoked_reason = 'user disabled' "
                        "WHERE user_id = $1 AND revoked_at IS NULL",
                        1, params, NULL);
    if (st == WD_OK) {
        wd_api_audit(api, c, r, "user.update", "user", id, json_deep_copy(in));
        st = wd_db_commit(c);
        if (st == WD_OK && dis && json_is_true(dis))
            wd_api_announce_revoked(api, id, NULL);
    }
    if (st != WD_OK) {
        wd_db_rollback(c);
        if (st == WD_ERR_EXISTS)
            st = WD_ERR(WD_ERR_EXISTS, "a user with that email exists already");
        wd_http_reply_status(r, st);
    } else {
        wd_http_reply_json(r, 200, user_json(res, 0));
    }
    wd_api_db_release(api, c);
    PQclear(res);
    json_decref(in);
}

void wd_users_delete(wd_http_req *r, void *ud)
{
    wd_api *api = ud;
    const wd_principal *me = wd_api_principal(r);
    const char *id;
    if (!wd_api_uuid_param(r, "id", "user id", &id))
        return;
    if (strcmp(id, me->user_id) == 0) {
        wd_http_reply_error(r, 409, "failed_precondition", "you cannot delete yourself", NULL);
        return;
    }
    PGconn *c = wd_api_db(api, r);
    if (c == NULL)
        return;
    const char *params[] = {id};
    PGresult *res = NULL;
    wd_status st = wd_db_begin(c);
    if (st == WD_OK)
        st = wd_db_exec(c,
                        "SELECT username, (SELECT count(*) FROM servers WHERE owner_id = u.id) "
                        "FROM users u WHERE id = $1 FOR UPDATE",
                        1, params, &res);
    if (st == WD_OK && PQntuples(res) == 0)
        st = WD_ERR(WD_ERR_NOT_FOUND, "user %s not found", id);
    if (st == WD_OK && strcmp(PQgetvalue(res, 0, 1), "0") != 0)
        st = WD_ERR(WD_ERR_STATE, "the user owns %s server(s): delete or transfer them first",
                    PQgetvalue(res, 0, 1));
    if (st == WD_OK) {
        st = wd_db_exec(c, "DELETE FROM users WHERE id = $1", 1, params, NULL);
        /* A server created meanwhile: the foreign key refuses. */
        if (st == WD_ERR_NOT_FOUND)
            st = WD_ERR(WD_ERR_STATE, "the user owns servers: delete or transfer them first");
    }
    if (st == WD_OK) {
        wd_api_audit(api, c, r, "user.delete", "user", id,
                     json_pack("{s:s}", "username", PQgetvalue(res, 0, 0)));
        st = wd_db_commit(c);
        if (st == WD_OK)
            wd_api_announce_revoked(api, id, NULL);
    }
    if (st != WD_OK) {
        wd_db_rollback(c);
        wd_http_reply_status(r, st);
    } else {
        wd_http_reply_json(r, 204, NULL);
    }
    wd_api_db_release(api, c);
    PQclear(res);
}
