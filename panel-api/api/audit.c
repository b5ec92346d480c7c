/* The audit log, read side: GET /audit for admins (every row, filtered) and
 * GET /servers/{id}/activity for a server's own rows (activity.read). Also
 * the write helper for rows that name a server (subusers.c), so they show up
 * in that server's activity.
 *
 * A server's activity is the rows whose server_id is that server, plus the
 * rows that target it directly (target_type 'server'), which is how the
 * server routes (power, command, install) record themselves. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_routes.h"
#include "app_int.h"
#include "log.h"
#include "input.h"
#include "util.h"

void wd_audit_server(wd_api *api, PGconn *c, wd_http_req *r, const char *action,
                     const char *target_type, const char *target_id, const char *server_id,
                     json_t *metadata)
{
    const wd_principal *p = r ? wd_api_principal(r) : NULL;
    char *meta = metadata ? json_dumps(metadata, JSON_COMPACT) : NULL;
    json_decref(metadata);
    const char *ip = r ? wd_http_remote_ip(r) : NULL;
    const char *params[] = {
        p && p->user_id[0] ? p->user_id : NULL,
        p ? p->username : (r ? "anonymous" : "system"),
        ip && *ip ? ip : NULL,
        action,
        target_type,
        target_id,
        server_id,
        meta ? meta : "{}",
        r ? wd_http_request_id(r) : NULL,
    };
    if (wd_db_exec(c,
                   "INSERT INTO audit_log (actor_user_id, actor_label, ip, action, target_type, "
                   "target_id, server_id, metadata, request_id) "
                   "VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9)",
                   9, params, NULL) != WD_OK)
        wd_error("audit %s: %s", action, wd_err_msg());
    free(meta);
}

/* "2026-11-25", "2026-11-25T10:00:00Z", "...T10:00:00.123+01:00": the shape
 * is checked here, the calendar by PostgreSQL (a bad date is 400 too). */
static bool iso_time_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 10 || n > 35)
        return false;
    for (size_t i = 0; i < 10; i++)
        if ((i == 4 || i == 7) ? s[i] != '-' : (s[i] < '0' || s[i] > '9'))
            return false;
    if (n == 10)
        return true;
    if (s[10] != 'T' && s[10] != ' ')
        return false;
    for (size_t i = 11; i < n; i++)
        if (!strchr("0123456789:.+-Z", s[i]))
            return false;
    /* A time without a zone would be read in the session's time zone. */
    return s[n - 1] == 'Z' || strchr(s + 11, '+') || strchr(s + 11, '-');
}

static json_t *audit_json(PGresult *res, int i)
{
    json_t *meta = json_loads(PQgetvalue(res, i, 9), 0, NULL);
#define OPT(col) (PQgetisnull(res, i, col) ? json_null() : json_string(PQgetvalue(res, i, col)))
    return json_pack("{s:I, s:s, s:o, s:s, s:o, s:s, s:o, s:o, s:o, s:o, s:o}", "id",
                     (json_int_t)strtoll(PQgetvalue(res, i, 0), NULL, 10), "at",
                     PQgetvalue(res, i, 1), "actor_user_id", OPT(2), "actor_label",
                     PQgetvalue(res, i, 3), "ip", OPT(4), "action", PQgetvalue(res, i, 5),
                     "target_type", OPT(6), "target_id", OPT(7), "server_id", OPT(8), "metadata",
                     meta ? meta : json_object(), "request_id", OPT(10));
#undef OPT
}

static bool bad(wd_http_req *r, const char *field, const char *why)
{
    wd_http_reply_error(r, 400, "invalid_argument", "invalid query parameters",
                        json_pack("{s:s}", field, why));
    return false;
}

/* server_id NULL: the admin view, where server_id is an optional filter. */
static void query(wd_api *api, wd_http_req *r, const char *server_id)
{
    static const char *const sortable[] = {"at", NULL};
    const char *sort = wd_http_query(r, "sort");
    wd_page pg;
    if (wd_input_page(wd_http_query(r, "per_page"), wd_http_query(r, "page"), sort, sortable,
                      &pg) != WD_OK) {
        wd_http_reply_status(r, WD_ERR_INVALID);
        return;
    }
    bool desc = sort == NULL || pg.desc; /* newest first unless asked otherwise */
    const char *actor = wd_http_query(r, "actor");
    const char *action = wd_http_query(r, "action");
    const char *target = server_id ? NULL : wd_http_query(r, "target_id");
    const char *server = server_id ? server_id : wd_http_query(r, "server_id");
    const char *since = wd_http_query(r, "since");
    const char *until = wd_http_query(r, "until");
    if (actor && !wd_uuid_valid(actor) && !bad(r, "actor", "must be a user id (UUID)"))
        return;
    if (action && (strlen(action) > 100 || *action == '\0') &&
        !bad(r, "action", "must be 1 to 100 bytes"))
        return;
    if (target && (strlen(target) > 200 || *target == '\0') &&
        !bad(r, "target_id", "must be 1 to 200 bytes"))
        return;
    if (server && !wd_uuid_valid(server) && !bad(r, "server_id", "must be a UUID"))
        return;
    if (since && !iso_time_ok(since) && !bad(r, "since", "must be an ISO 8601 timestamp"))
        return;
    if (until && !iso_time_ok(until) && !bad(r, "until", "must be an ISO 8601 timestamp"))
        return;
    char pattern[256];
    if (action) {
        /* A prefix: LIKE metacharacters in it are taken literally. */
        size_t k = 0;
        for (const char *c = action; *c && k < sizeof pattern - 3; c++) {
            if (*c == '%' || *c == '_' || *c == '\\')
                pattern[k++] = '\\';
            pattern[k++] = *c;
        }
        pattern[k++] = '%';
        pattern[k] = '\0';
    }
    char sql[1536], limit[16], offset[24];
    snprintf(sql, sizeof sql,
             "SELECT id, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), "
             "actor_user_id, actor_label, host(ip), action, target_type, target_id, server_id, "
             "metadata::text, request_id, count(*) OVER () FROM audit_log "
             "WHERE ($1::uuid IS NULL OR actor_user_id = $1) "
             "AND ($2::text IS NULL OR action LIKE $2) "
             "AND ($3::text IS NULL OR target_id = $3) "
             "AND ($4::uuid IS NULL OR server_id = $4 "
             "     OR (target_type = 'server' AND target_id = $4::text)) "
             "AND ($5::timestamptz IS NULL OR at >= $5) "
             "AND ($6::timestamptz IS NULL OR at < $6) "
             "ORDER BY at %s, id %s LIMIT $7 OFFSET $8",
             desc ? "DESC" : "ASC", desc ? "DESC" : "ASC");
    snprintf(limit, sizeof limit, "%d", pg.limit);
    snprintf(offset, sizeof offset, "%lld", (long long)(pg.page - 1) * pg.limit);
    const char *params[] = {actor, action ? pattern : NULL, target, server, since, until, limit,
                            offset};
    PGconn *c = wd_api_db(api, r);
    if (c == NULL)
        return;
    PGresult *res = NULL;
    wd_status st = wd_db_exec(c, sql, 8, params, &res);
    wd_api_db_release(api, c);
    if (st != WD_OK) {
        if (st == WD_ERR_INVALID)
            st = WD_ERR(WD_ERR_INVALID, "since/until: not a valid timestamp");
        wd_http_reply_status(r, st);
        return;
    }
    json_t *items = json_array();
    for (int i = 0; i < PQntuples(res); i++)
        json_array_append_new(items, audit_json(res, i));
    long long total = PQntuples(res) ? strtoll(PQgetvalue(res, 0, 11), NULL, 10) : 0;
    PQclear(res);
    wd_http_reply_json(r, 200,
                       json_pack("{s:o, s:{s:i, s:i, s:I}}", "data", items, "pagination", "page",
                                 pg.page, "per_page", pg.limit, "total", (json_int_t)total));
}

void wd_audit_list(wd_http_req *r, void *ud)
{
    query(ud, r, NULL);
}

void wd_audit_server_activity(wd_http_req *r, void *ud)
{
    /* The authorize hook has checked activity.read on {id}. */
    query(ud, r, wd_http_param(r, "id"));
}
