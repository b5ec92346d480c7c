/* Template routes: list, read, create (Warden JSON or a Pterodactyl egg),
 * replace, delete. Templates are validated by common/template.c before
 * anything is stored; what an egg import could not carry over is returned
 * as import_notes. Reading is open to every user (they pick one for a
 * server); writing is admin-only. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app_int.h"
#include "input.h"
#include "template.h"
#include "util.h"

/* Parses the request body as a template; replies 400 on failure. */
static Warden__V1__Template *parse_body(wd_http_req *r)
{
    size_t len = 0;
    const char *body = wd_http_body(r, &len);
    if (len == 0) {
        wd_http_reply_error(r, 400, "invalid_json", "the body must be a template (JSON)", NULL);
        return NULL;
    }
    Warden__V1__Template *t = NULL;
    if (wd_template_parse_json(body, len, &t) != WD_OK) {
        wd_http_reply_error(r, 400, "invalid_template", wd_err_msg(), NULL);
        return NULL;
    }
    return t;
}

/* The stored slug: the template id, lower-case, '_' as '-'. */
static void slug_of(const Warden__V1__Template *t, char *out, size_t n)
{
    snprintf(out, n, "%s", t->id ? t->id : "");
    for (char *c = out; *c; c++)
        *c = *c == '_' ? '-' : (char)tolower((unsigned char)*c);
}

static json_t *row_json(PGresult *res, int i, bool with_body)
{
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "id", PQgetvalue(res, i, 0),
                          "slug", PQgetvalue(res, i, 1), "name", PQgetvalue(res, i, 2),
                          "description", PQgetvalue(res, i, 3), "author", PQgetvalue(res, i, 4),
                          "created_at", PQgetvalue(res, i, 5), "updated_at",
                          PQgetvalue(res, i, 6));
    if (with_body && PQnfields(res) > 7) {
        json_t *body = json_loads(PQgetvalue(res, i, 7), 0, NULL);
        if (body)
            json_object_set_new(j, "template", body);
    }
    return j;
}

#define COLS                                                                                   \
    "id, slug, name, description, author, "                                                    \
    "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "                 \
    "to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

static json_t *summary_json(PGresult *res, int i)
{
    return row_json(res, i, false);
}

void wd_templates_list(wd_http_req *r, void *ud)
{
    wd_api *api = ud;
    static const char *const sortable[] = {"name", "slug", "created_at", NULL};
    wd_page pg;
    char limit[16], offset[24];
    if (!wd_api_page(r, sortable, &pg, limit, offset))
        return;
    char buf[256];
    const char *pattern = NULL;
    if (!wd_api_search(r, buf, sizeof buf, &pattern))
        return;
    /* The sort column comes from the fixed list above, never from input. */
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT " COLS ", count(*) OVER () FROM templates "
             "WHERE ($1::text IS NULL OR name ILIKE $1 OR slug ILIKE $1) "
             "ORDER BY %s %s, id LIMIT $2 OFFSET $3",
             strcmp(pg.sort, "slug") == 0 ? "slug" : strcmp(pg.sort, "created_at") == 0 ? "created_at" : "name",
             pg.desc ? "DESC" : "ASC");
    const char *params[] = {pattern, limit, offset};
    wd_api_list(api, r, sql, 3, params, pg.page, pg.limit, summary_json);
}

void wd_templates_get(wd_http_req *r, void *ud)
{
    wd_api *api = ud;
    const char *id;
    if (!wd_api_uuid_param(r, "id", "template id", &id))
        return;
    PGconn *c = wd_api_db(api, r);
    if (c == NULL)
        return;
    const char *params[] = {id};
    PGresult *res = NULL;
    wd_status st = wd_db_exec(c, "SELECT " COLS ", body::text FROM templates WHERE id = $1", 1,
                              params, &res);
    wd_api_db_release(api, c);
    if (st == WD_OK && PQntuples(res) == 0)
        st = WD_ERR(WD_ERR_NOT_FOUND, "template %s not found", id);
    if (st != WD_OK) {
        PQclear(res);
        wd_http_reply_status(r, st);
        return;
    }
    json_t *j = row_json(res, 0, true);
    PQclear(res);
    wd_http_reply_json(r, 200, j);
}

/* Shared by create and replace. id NULL: create. */
static void store(wd_http_req *r, wd_api *api, const char *id)
{
    if (id && !wd_uuid_valid(id)) {
        wd_http_reply_error(r, 400, "invalid_argument", "template id must be a UUID", NULL);
        return;
    }
    Warden__V1__Template *t = parse_body(r);
    if (t == NULL)
        return;
    char *text = NULL, slug[80];
    slug_of(t, slug, sizeof slug);
    wd_status st = wd_template_to_json(t, &text);
    json_t *notes = json_array();
    for (size_t i = 0; i < t->n_import_notes; i++)
        json_array_append_new(notes, json_string(t->import_notes[i]));
    PGconn *c = st == WD_OK ? wd_api_db(api, r) : NULL;
    if (st != WD_OK || c == NULL) {
        if (st != WD_OK)
            wd_http_reply_status(r, st);
        json_decref(notes);
        free(text);
        wd_template_free(&t);
        return;
    }
    const char *name = t->name && *t->name ? t->name : slug;
    const char *params[] = {slug, name, t->description ? t->description : "",
                            t->author ? t->author : "", text, id};
    PGresult *res = NULL;
    st = wd_db_exec(c,
                    id ? "UPDATE templates SET slug = $1, name = $2, description = $3, "
                         "author = $4, body = $5::jsonb WHERE id = $6 RETURNING " COLS
                       : "INSERT INTO templates (slug, name, description, author, body) "
                         "VALUES ($1, $2, $3, $4, $5::jsonb) RETURNING " COLS,
                    id ? 6 : 5, params, &res);
    if (st == WD_OK && PQntuples(res) == 0)
        st = WD_ERR(WD_ERR_NOT_FOUND, "template %s not found", id);
    else if (st == WD_ERR_EXISTS)
        st = WD_ERR(WD_ERR_EXISTS, "a template with the slug '%s' exists already", slug);
    else if (st == WD_ERR_INVALID)
        st = WD_ERR(WD_ERR_INVALID, "template id '%s' cannot be a slug (a-z, 0-9, -; up to 64)",
                    slug);
    if (st == WD_OK) {
        json_t *meta = json_pack("{s:s, s:s}", "slug", slug, "name", name);
        wd_api_audit(api, c, r, id ? "template.update" : "template.create", "template",
                     PQgetvalue(res, 0, 0), meta);
        json_t *j = row_json(res, 0, false);
        json_object_set_new(j, "import_notes", notes);
        notes = NULL;
        wd_http_reply_json(r, id ? 200 : 201, j);
    } else {
        wd_http_reply_status(r, st);
    }
    PQclear(res);
    wd_api_db_release(api, c);
    json_decref(notes);
    free(text);
    wd_template_free(&t);
}

void wd_templates_create(wd_http_req *r, void *ud)
{
    store(r, ud, NULL);
}

void wd_templates_replace(wd_http_req *r, void *ud)
{
    store(r, ud, wd_http_param(r, "id"));
}

void wd_templates_delete(wd_http_req *r, void *ud)
{
    const char *id;
    if (!wd_api_uuid_param(r, "id", "template id", &id))
        return;
    wd_api_delete_unused(ud, r, "templates", "template_id", "template", id, "template.delete");
}

/* ---- for the command line (warden-api template import) ------------------ */

wd_status wd_api_import_template(wd_api *api, const char *json, size_t len, char *slug_out,
                                 size_t slug_len, bool *created)
{
    Warden__V1__Template *t = NULL;
    char *text = NULL, slug[80];
    PGconn *c = NULL;
    PGresult *res = NULL;
    *created = false;
    wd_status st = wd_template_parse_json(json, len, &t);
    if (st != WD_OK)
        return st;
    slug_of(t, slug, sizeof slug);
    snprintf(slug_out, slug_len, "%s", slug);
    if ((st = wd_template_to_json(t, &text)) == WD_OK &&
        (st = wd_db_acquire(api->db, &c)) == WD_OK) {
        const char *name = t->name && *t->name ? t->name : slug;
        const char *params[] = {slug, name, t->description ? t->description : "",
                                t->author ? t->author : "", text};
        /* An existing template of that slug is the operator's: kept. */
        st = wd_db_exec(c,
                        "INSERT INTO templates (slug, name, description, author, body) "
                        "VALUES ($1, $2, $3, $4, $5::jsonb) ON CONFLICT (slug) DO NOTHING "
                        "RETURNING id",
                        5, params, &res);
        if (st == WD_OK && PQntuples(res) == 1) {
            *created = true;
            json_t *meta = json_pack("{s:s, s:s}", "slug", slug, "name", name);
            wd_api_audit(api, c, NULL, "template.create", "template", PQgetvalue(res, 0, 0),
                         meta);
        }
        PQclear(res);
        wd_db_release(api->db, c);
    }
    free(text);
    wd_template_free(&t);
    return st;
}
