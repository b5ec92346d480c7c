/* Subusers of a server: other users given a set of permission strings on
 * it (perms.h). The authorize hook has already checked the route's
 * permission (user.read / user.create / user.update / user.delete) for the
 * server in {id}; here a subuser is further held to granting only what they
 * hold themselves (owners and admins hold everything), and may not change
 * their own grants. Every change is audited with the server's id, so it
 * shows in the server's activity. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_routes.h"
#include "app_int.h"
#include "input.h"
#include "perms.h"
#include "util.h"

#define SUB_COLS                                                                                   \
    "s.user_id, u.username, u.email, array_to_json(s.permissions)::text, " WD_SQL_TS("s.created_"  \
                                                                                     "at")

static json_t *sub_json(PGresult *res, int i)
{
    json_t *perms = json_loads(PQgetvalue(res, i, 3), 0, NULL);
    return json_pack("{s:s, s:s, s:s, s:o, s:s}", "user_id", PQgetvalue(res, i, 0), "username",
                     PQgetvalue(res, i, 1), "email", PQgetvalue(res, i, 2), "permissions",
                     perms ? perms : json_array(), "created_at", PQgetvalue(res, i, 4));
}

void wd_subusers_list(wd_http_req *r, void *ud)
{
    wd_api *api = ud;
    static const char *const sortable[] = {"username", "created_at", NULL};
    wd_page pg;
    char limit[16], offset[24];
    if (!wd_api_page(r, sortable, &pg, limit, offset))
        return;
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT " SUB_COLS ", count(*) OVER () FROM subusers s "
             "JOIN users u ON u.id = s.user_id WHERE s.server_id = $1 "
             "ORDER BY %s %s, s.user_id LIMIT $2 OFFSET $3",
             strcmp(pg.sort, "created_at") == 0 ? "s.created_at" : "u.username",
             pg.desc ? "DESC" : "ASC");
    const char *params[] = {wd_http_param(r, "id"), limit, offset};
    wd_api_list(api, r, sql, 3, params, pg.page, pg.limit, sub_json);
}

/* Every grant is a known permission, and one the caller holds on the
 * server. Replies and returns false otherwise. Call it before taking a
 * pooled connection: each check takes one. */
static bool grants_ok(wd_api *api, wd_http_req *r, const char *server_id, json_t *perms)
{
    size_t i;
    json_t *v;
    json_t *bad = json_array();
    json_array_foreach(perms, i, v)
    {
        if (!wd_perm_valid(json_string_value(v)))
            json_array_append(bad, v);
    }
    if (json_array_size(bad) > 0) {
        wd_http_reply_error(
            r, 400, "invalid_argument", "invalid fields: permissions",
            json_pack("{s:s, s:o}", "permissions", "holds unknown permissions", "unknown", bad));
        return false;
    }
    json_decref(bad);
    json_array_foreach(perms, i, v)
    {
        wd_status st = wd_api_server_access(api, r, server_id, json_string_value(v));
        if (st == WD_ERR_DENIED) {
            wd_http_reply_error(r, 403, "forbidden",
                                "you cannot grant a permission you do not hold",
                                json_pack("{s:s}", "permission", json_string_value(v)));
            return false;
        }
        if (st != WD_OK) {
            wd_http_reply_status(r, st);
            return false;
        }
    }
    return true;
}

static const wd_field create_fields[] = {
    {.name = "user_id", .type = WD_F_UUID},
    {.name = "email", .type = WD_F_EMAIL, .max_len = 254},
    {.name = "username", .type = WD_F_STRING, .max_len = 64},
    {.name = "permissions", .type = WD_F_STRING_ARRAY, .required = true, .max_len = 64},
};

void wd_subusers_create(wd_http_req *r, void *ud)
{
    wd_api *api = ud;
    const char *server_id = wd_http_param(r, "id");
    json_t *in =
        wd_api_input(r, create_fields, sizeof create_fields / sizeof create_fields[0], false);
    if (in == NULL)
        return;
    const char *user_id = json_string_value(json_object_get(in, "user_id"));
    const char *email = json_string_value(json_object_get(in, "email"));
    const char *username = json_string_value(json_object_get(in, "username"));
    if ((user_id != NULL) + (email != NULL) + (username != NULL) != 1) {
        wd_http_reply_error(r, 400, "invalid_argument",
                            "give exactly one of user_id, email and username", NULL);
        json_decref(in);
        return;
    }
    json_t *perms = json_object_get(in, "permissions");
    if (!grants_ok(api, r, server_id, perms)) {
        json_decref(in);
        return;
    }
    char *perms_text = json_dumps(perms, JSON_COMPACT);
    PGconn *c = wd_api_db(api, r);
    if (c == NULL) {
        free(perms_text);
        json_decref(in);
        return;
    }
    PGresult *who = NULL, *res = NULL;
    const char *up[] = {user_id, email, server_id, username};
    wd_status st = wd_db_exec(c,
                              "SELECT u.id, u.id = s.owner_id FROM users u, servers s "
                              "WHERE s.id = $3 AND (u.id = $1 OR u.email = lower($2) OR "
                              "u.username = lower($4)) AND NOT u.disabled",
                              4, up, &who);
    if (st == WD_OK && PQntuples(who) != 1)
        st = WD_ERR(WD_ERR_NOT_FOUND, "no such user");
    if (st == WD_OK && *PQgetvalue(who, 0, 1) == 't')
        st = WD_ERR(WD_ERR_STATE, "the owner of a server cannot be its subuser");
    char target[40] = "";
    if (st == WD_OK) {
        snprintf(target, sizeof target, "%s", PQgetvalue(who, 0, 0));
        const char *params[] = {server_id, target, perms_text};
        st = wd_db_exec(
            c,
            "WITH n AS (INSERT INTO subusers (server_id, user_id, permissions) "
            "VALUES ($1, $2, ARRAY(SELECT DISTINCT jsonb_array_elements_text($3::jsonb))) "
            "RETURNING *) SELECT " SUB_COLS " FROM n s JOIN users u ON u.id = s.user_id",
            3, params, &res);
        if (st == WD_ERR_EXISTS)
            st = WD_ERR(WD_ERR_EXISTS, "that user is a subuser of this server already");
    }
    if (st == WD_OK)
        wd_audit_server(api, c, r, "server.subuser.create", "user", target, server_id,
                        json_pack("{s:O}", "permissions", perms));
    wd_api_db_release(api, c);
    if (st == WD_OK)
        wd_http_reply_json(r, 201, sub_json(res, 0));
    else
        wd_http_reply_status(r, st);
    PQclear(who);
    PQclear(res);
    free(perms_text);
    json_decref(in);
}

static bool target_ok(wd_http_req *r, const char **user)
{
    *user = wd_http_param(r, "user");
    if (!wd_uuid_valid(*user)) {
        wd_http_reply_error(r, 400, "invalid_argument", "user id must be a UUID", NULL);
        return false;
    }
    return true;
}

static const wd_field update_fields[] = {
    {.name = "permissions", .type = WD_F_STRING_ARRAY, .required = true, .max_len = 64},
};

void wd_subusers_update(wd_http_req *r, void *ud)
{
    wd_api *api = ud;
    const wd_principal *me = wd_api_principal(r);
    const char *server_id = wd_http_param(r, "id"), *user;
    if (!target_ok(r, &user))
        return;
    json_t *in = wd_api_input(r, update_fields, 1, false);
    if (in == NULL)
        return;
    /* The caller is this subuser (an owner is never one): no self-service. */
    if (strcmp(user, me->user_id) == 0 && strcmp(me->role, "admin") != 0) {
        wd_http_reply_error(r, 403, "forbidden", "you cannot change your own permissions", NULL);
        json_decref(in);
        return;
    }
    json_t *perms = json_object_get(in, "permissions");
    if (!grants_ok(api, r, server_id, perms)) {
        json_decref(in);
        return;
    }
    char *perms_text = json_dumps(perms, JSON_COMPACT);
    PGconn *c = wd_api_db(api, r);
    if (c == NULL) {
        free(perms_text);
        json_decref(in);
        return;
    }
    const char *params[] = {server_id, user, perms_text};
    PGresult *res = NULL;
    wd_status st = wd_db_exec(c,
                              "WITH n AS (UPDATE subusers SET permissions = "
                              "ARRAY(SELECT DISTINCT jsonb_array_elements_text($3::jsonb)) "
                              "WHERE server_id = $1 AND user_id = $2 RETURNING *) "
                              "SELECT " SUB_COLS " FROM n s JOIN users u ON u.id = s.user_id",
                              3, params, &res);
    if (st == WD_OK && PQntuples(res) == 0)
        st = WD_ERR(WD_ERR_NOT_FOUND, "user %s is not a subuser of this server", user);
    if (st == WD_OK) {
        wd_audit_server(api, c, r, "server.subuser.update", "user", user, server_id,
                        json_pack("{s:O}", "permissions", perms));
        /* Open sockets carry the old permissions: they close, and the
         * browser reconnects with a token that has the new ones. */
        wd_api_announce_subuser_removed(api, user, server_id);
    }
    wd_api_db_release(api, c);
    if (st == WD_OK)
        wd_http_reply_json(r, 200, sub_json(res, 0));
    else
        wd_http_reply_status(r, st);
    PQclear(res);
    free(perms_text);
    json_decref(in);
}

void wd_subusers_delete(wd_http_req *r, void *ud)
{
    wd_api *api = ud;
    const char *server_id = wd_http_param(r, "id"), *user;
    if (!target_ok(r, &user))
        return;
    PGconn *c = wd_api_db(api, r);
    if (c == NULL)
        return;
    const char *params[] = {server_id, user};
    PGresult *res = NULL;
    wd_status st = wd_db_exec(c,
                              "DELETE FROM subusers WHERE server_id = $1 AND user_id = $2 "
                              "RETURNING user_id",
                              2, params, &res);
    if (st == WD_OK && PQntuples(res) == 0)
        st = WD_ERR(WD_ERR_NOT_FOUND, "user %s is not a subuser of this server", user);
    if (st == WD_OK) {
        wd_audit_server(api, c, r, "server.subuser.delete", "user", user, server_id, NULL);
        wd_api_announce_subuser_removed(api, user, server_id);
    }
    wd_api_db_release(api, c);
    PQclear(res);
    if (st == WD_OK)
        wd_http_reply_json(r, 204, NULL);
    else
        wd_http_reply_status(r, st);
}
