/* Server routes: create (validated against the template before anything is
 * written, then synced to the node's agent inside the same transaction),
 * list, read, delete, install, power, console command, resources.
 *
 * The panel is the system of record; the agent holds a copy of each spec.
 * Commands go to the agent as bus requests: a node that is down answers at
 * once ("no responders") and the client gets 503 node_unavailable. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app_int.h"
#include "wstoken.h"
#include "input.h"
#include "log.h"
#include "perms.h"
#include "subject.h"
#include "template.h"
#include "util.h"
#include "warden/v1/console.pb-c.h"
#include "warden/v1/server.pb-c.h"

#define BUS_TIMEOUT_MS 5000

#define SERVER_COLS                                                                            \
    "s.id, s.name, s.description, s.owner_id, s.node_id, s.template_id, s.allocation_id, "      \
    "host(a.ip), a.port, s.memory_mb, s.disk_mb, s.cpu_pct, s.pids, s.state, s.installed, "     \
    "s.suspended, to_char(s.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
#define SERVER_FROM " FROM servers s JOIN allocations a ON a.id = s.allocation_id"
#define SERVER_STATE_COL 13 /* s.state in SERVER_COLS */

static json_t *server_json(PGresult *res, int i)
{
    return json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s, s:i}, s:{s:I, s:I, s:i, s:i}, s:s, s:b, "
        "s:b, s:s}",
        "id", PQgetvalue(res, i, 0), "name", PQgetvalue(res, i, 1), "description",
        PQgetvalue(res, i, 2), "owner_id", PQgetvalue(res, i, 3), "node_id",
        PQgetvalue(res, i, 4), "template_id", PQgetvalue(res, i, 5), "allocation", "id",
        PQgetvalue(res, i, 6), "ip", PQgetvalue(res, i, 7), "port", atoi(PQgetvalue(res, i, 8)),
        "limits", "memory_mb", (json_int_t)strtoll(PQgetvalue(res, i, 9), NULL, 10), "disk_mb",
        (json_int_t)strtoll(PQgetvalue(res, i, 10), NULL, 10), "cpu_pct",
        atoi(PQgetvalue(res, i, 11)), "pids", atoi(PQgetvalue(res, i, 12)), "state",
        PQgetvalue(res, i, 13), "installed", *PQgetvalue(res, i, 14) == 't', "suspended",
        *PQgetvalue(res, i, 15) == 't', "created_at", PQgetvalue(res, i, 16));
}

/* Replies with the server's row (status 200 or 201), or 404. */
static void reply_server(wd_http_req *r, PGconn *c, const char *id, int status)
{
    const char *params[] = {id};
    PGresult *res = NULL;
    wd_status st = wd_db_exec(c, "SELECT " SERVER_COLS SERVER_FROM " WHERE s.id = $1", 1, params,
                              &res);
    if (st == WD_OK && PQntuples(res) == 0)
        st = WD_ERR(WD_ERR_NOT_FOUND, "server %s not found", id);
    if (st == WD_OK)
        wd_http_reply_json(r, status, server_json(res, 0));
    else
        wd_http_reply_status(r, st);
    PQclear(res);
}

/* ---- the spec an agent holds -------------------------------------------- */

/* Builds the ServerSpec of server_id from the database (template, variables
 * with secrets decrypted, limits). Free with protobuf_c_message_free_unpacked. */
wd_status wd_server_spec_build(wd_api *api, PGconn *c, const char *server_id,
                               Warden__V1__ServerSpec **out, char *node_id, size_t node_len);
wd_status wd_server_spec_build(wd_api *api, PGconn *c, const char *server_id,
                               Warden__V1__ServerSpec **out, char *node_id, size_t node_len)
{
    const char *params[] = {server_id};
    PGresult *res = NULL, *vars = NULL;
    Warden__V1__ServerSpec *spec = NULL;
    wd_status st = wd_db_exec(c,
                              "SELECT s.name, t.body::text, s.memory_mb, s.pids, s.cpu_pct, "
                              "s.disk_mb, s.revision, s.node_id FROM servers s "
                              "JOIN templates t ON t.id = s.template_id WHERE s.id = $1",
                              1, params, &res);
    if (st == WD_OK && PQntuples(res) == 0)
        st = WD_ERR(WD_ERR_NOT_FOUND, "server %s not found", server_id);
    if (st == WD_OK)
        st = wd_db_exec(c,
                        "SELECT name, value, value_enc FROM server_variables "
                        "WHERE server_id = $1 ORDER BY name",
                        1, params, &vars);
    if (st != WD_OK)
        goto out;
    spec = calloc(1, sizeof *spec);
    if (spec == NULL) {
        st = WD_ERR(WD_ERR_NOMEM, "out of memory");
        goto out;
    }
    warden__v1__server_spec__init(spec);
    spec->id = strdup(server_id);
    spec->name = strdup(PQgetvalue(res, 0, 0));
    const char *body = PQgetvalue(res, 0, 1);
    if ((st = wd_template_parse_json(body, strlen(body), &spec->template_)) != WD_OK)
        goto out;
    spec->limits = calloc(1, sizeof *spec->limits);
    warden__v1__limits__init(spec->limits);
    spec->limits->memory_bytes = (uint64_t)strtoull(PQgetvalue(res, 0, 2), NULL, 10) << 20;
    spec->limits->pids = (uint32_t)strtoul(PQgetvalue(res, 0, 3), NULL, 10);
    spec->limits->cpu_percent = (uint32_t)strtoul(PQgetvalue(res, 0, 4), NULL, 10);
    spec->limits->disk_bytes = (uint64_t)strtoull(PQgetvalue(res, 0, 5), NULL, 10) << 20;
    spec->revision = strtoull(PQgetvalue(res, 0, 6), NULL, 10);
    if (node_id)
        snprintf(node_id, node_len, "%s", PQgetvalue(res, 0, 7));
    int n = PQntuples(vars);
    spec->variables = calloc((size_t)(n ? n : 1), sizeof *spec->variables);
    for (int i = 0; i < n; i++) {
        Warden__V1__ServerSpec__VariablesEntry *e = calloc(1, sizeof *e);
        warden__v1__server_spec__variables_entry__init(e);
        e->key = strdup(PQgetvalue(vars, i, 0));
        if (!PQgetisnull(vars, i, 2)) {
            char aad[128];
            snprintf(aad, sizeof aad, "%s:%s", server_id, e->key);
            void *plain = NULL;
            size_t plen = 0;
            if ((st = wd_secretbox_open(api->box, PQgetvalue(vars, i, 2), aad, &plain, &plen)) !=
                WD_OK) {
                free(e->key);
                free(e);
                goto out;
            }
            e->value = plain; /* NUL-terminated by secretbox */
        } else {
            e->value = strdup(PQgetvalue(vars, i, 1));
        }
        spec->variables[spec->n_variables++] = e;
    }
    *out = spec;
    spec = NULL;
out:
    if (spec)
        protobuf_c_message_free_unpacked(&spec->base, NULL);
    PQclear(res);
    PQclear(vars);
    return st;
}

/* Sends the spec to the node's agent. */
static wd_status sync_spec(wd_api *api, const char *node_id, Warden__V1__ServerSpec *spec,
                           wd_http_req *r)
{
    if (api->bus == NULL)
        return WD_ERR(WD_ERR_UNAVAILABLE, "the API is not connected to NATS");
    char subj[WD_SUBJECT_MAX];
    wd_status st = wd_subj_agent_server(subj, sizeof subj, node_id, spec->id, "sync");
    if (st != WD_OK)
        return st;
    Warden__V1__SyncRequest req = WARDEN__V1__SYNC_REQUEST__INIT;
    req.spec = spec;
    wd_hdrs h = {.trace = r ? wd_http_request_id(r) : NULL};
    ProtobufCMessage *reply = NULL;
    st = wd_bus_request(api->bus, subj, &req.base, &warden__v1__sync_reply__descriptor,
                        BUS_TIMEOUT_MS, &h, &reply);
    if (st == WD_OK)
        st = wd_status_check(((Warden__V1__SyncReply *)reply)->status);
    if (reply)
        protobuf_c_message_free_unpacked(reply, NULL);
    if (st == WD_ERR_NO_RESPONDERS)
        return WD_ERR(st, "node %s is offline (its agent does not answer)", node_id);
    return st;
}

/* ---- create ---------------------------------------------------------------- */

static const wd_field create_fields[] = {
    {.name = "name", .type = WD_F_STRING, .required = true, .max_len = 191},
    {.name = "description", .type = WD_F_TEXT, .max_len = 2000},
    {.name = "owner_id", .type = WD_F_UUID},
    {.name = "node_id", .type = WD_F_UUID, .required = true},
    {.name = "template_id", .type = WD_F_UUID, .required = true},
    {.name = "allocation_id", .type = WD_F_UUID},
    {.name = "limits", .type = WD_F_OBJECT},
    {.name = "variables", .type = WD_F_OBJECT},
};

static const wd_field limit_fields[] = {
    {.name = "memory_mb", .type = WD_F_INT, .min = 0, .max = 1LL << 30},
    {.name = "disk_mb", .type = WD_F_INT, .min = 0, .max = 1LL << 30},
    {.name = "cpu_pct", .type = WD_F_INT, .min = 0, .max = 100000},
    {.name = "pids", .type = WD_F_INT, .min = 0, .max = 1000000},
};

static long long limit_of(json_t *limits, const char *k)
{
    json_t *v = json_object_get(limits, k);
    return v ? (long long)json_integer_value(v) : 0;
}

/* Checks variable values against the template; fills *vars (resolved) or
 * replies 400. Injects the allocation as SERVER_PORT / SERVER_IP /
 * BIND_ADDRESS when the template declares them. */
static bool resolve_variables(wd_http_req *r, const Warden__V1__Template *t, json_t *given,
                              const char *ip, const char *port, wd_kv **vars, size_t *nvars)
{
    wd_kv in[WD_TEMPLATE_MAX_VARS + 4];
    size_t n = 0;
    const char *k;
    json_t *v;
    json_object_foreach(given, k, v)
    {
        if (!json_is_string(v) || n >= WD_TEMPLATE_MAX_VARS) {
            wd_http_reply_error(r, 400, "invalid_argument",
                                "variables must be an object of string values", NULL);
            return false;
        }
        in[n].key = (char *)k;
        in[n].value = (char *)json_string_value(v);
        n++;
    }
    static const char *const port_vars[] = {"SERVER_PORT", NULL};
    static const char *const ip_vars[] = {"SERVER_IP", "BIND_ADDRESS", NULL};
    for (size_t i = 0; i < t->n_variables; i++) {
        const char *name = t->variables[i]->name;
        const char *val = NULL;
        for (int k2 = 0; port_vars[k2]; k2++)
            if (strcmp(name, port_vars[k2]) == 0)
                val = port;
        for (int k2 = 0; ip_vars[k2]; k2++)
            if (strcmp(name, ip_vars[k2]) == 0)
                val = ip;
        if (val == NULL)
            continue;
        bool replaced = false;
        for (size_t j = 0; j < n; j++)
            if (strcmp(in[j].key, name) == 0) {
                in[j].value = (char *)val; /* the allocation is authoritative */
                replaced = true;
            }
        if (!replaced) {
            in[n].key = (char *)name;
            in[n].value = (char *)val;
            n++;
        }
    }
    if (wd_template_resolve(t, in, n, vars, nvars) != WD_OK) {
        wd_http_reply_error(r, 400, "invalid_variables", wd_err_msg(), NULL);
        return false;
    }
    return true;
}

/* Writes resolved variables (inserting or replacing); secret ones are
 * sealed with the API's secrets key, bound to server and name. */
static wd_status store_variables(wd_api *api, PGconn *c, const char *server_id,
                                 const Warden__V1__Template *t, const wd_kv *vars, size_t nvars)
{
    wd_status st = WD_OK;
    for (size_t i = 0; st == WD_OK && i < nvars; i++) {
        bool secret = false;
        for (size_t k = 0; k < t->n_variables; k++)
            if (strcmp(t->variables[k]->name, vars[i].key) == 0)
                secret = t->variables[k]->secret;
        char *sealed = NULL;
        if (secret) {
            char aad[128];
            snprintf(aad, sizeof aad, "%s:%s", server_id, vars[i].key);
            st = wd_secretbox_seal(api->box, vars[i].value, strlen(vars[i].value), aad, &sealed);
        }
        const char *vp[] = {server_id, vars[i].key, secret ? NULL : vars[i].value, sealed};
        if (st == WD_OK)
            st = wd_db_exec(c,
                            "INSERT INTO server_variables (server_id, name, value, value_enc) "
                            "VALUES ($1, $2, $3, $4) ON CONFLICT (server_id, name) DO UPDATE "
                            "SET value = EXCLUDED.value, value_enc = EXCLUDED.value_enc",
                            4, vp, NULL);
        free(sealed);
    }
    return st;
}

void wd_servers_create(wd_http_req *r, void *ud)
{
    wd_api *api = ud;
    const wd_principal *me = wd_api_principal(r);
    json_t *in = wd_http_json_body(r);
    if (in == NULL)
        return;
    json_t *details = NULL;
    json_t *limits = json_object_get(in, "limits");
    if (wd_input_check(in, create_fields, sizeof create_fields / sizeof create_fields[0],
                       &details) != WD_OK ||
        (limits && wd_input_check(limits, limit_fields, 4, &details) != WD_OK)) {
        wd_http_reply_error(r, 400, "invalid_argument", wd_err_msg(), details);
        json_decref(in);
        return;
    }
    const char *node = json_string_value(json_object_get(in, "node_id"));
    const char *tpl_id = json_string_value(json_object_get(in, "template_id"));
    const char *alloc = json_string_value(json_object_get(in, "allocation_id"));
    const char *owner = json_string_value(json_object_get(in, "owner_id"));
    if (owner == NULL)
        owner = me->user_id;
    char mem[24], disk[24], cpu[24], pids[24];
    snprintf(mem, sizeof mem, "%lld", limit_of(limits, "memory_mb"));
    snprintf(disk, sizeof disk, "%lld", limit_of(limits, "disk_mb"));
    snprintf(cpu, sizeof cpu, "%lld", limit_of(limits, "cpu_pct"));
    snprintf(pids, sizeof pids, "%lld", limit_of(limits, "pids"));

    PGconn *c = wd_api_db(api, r);
    if (c == NULL) {
        json_decref(in);
        return;
    }
    PGresult *res = NULL;
    Warden__V1__Template *t = NULL;
    Warden__V1__ServerSpec *spec = NULL;
    wd_kv *vars = NULL;
    size_t nvars = 0;
    bool replied = false;
    char server_id[40] = "", alloc_id[40] = "", ip[64] = "", port[16] = "";
    wd_status st = wd_db_begin(c);

    /* The node: exists, not in maintenance, room left (with overallocation). */
    const char *np[] = {node, mem, disk};
    if (st == WD_OK)
        st = wd_db_exec(c,
                        "SELECT n.maintenance, "
                        " n.memory_mb * (100 + n.memory_overalloc_pct) / 100 >= "
                        "  coalesce((SELECT sum(memory_mb) FROM servers WHERE node_id = n.id), 0) "
                        "  + $2::bigint, "
                        " n.disk_mb * (100 + n.disk_overalloc_pct) / 100 >= "
                        "  coalesce((SELECT sum(disk_mb) FROM servers WHERE node_id = n.id), 0) "
                        "  + $3::bigint "
                        "FROM nodes n WHERE n.id = $1 FOR UPDATE",
                        3, np, &res);
    if (st == WD_OK && PQntuples(res) == 0)
        st = WD_ERR(WD_ERR_NOT_FOUND, "node %s not found", node);
    else if (st == WD_OK && *PQgetvalue(res, 0, 0) == 't')
        st = WD_ERR(WD_ERR_STATE, "the node is in maintenance mode");
    else if (st == WD_OK && (*PQgetvalue(res, 0, 1) != 't' || *PQgetvalue(res, 0, 2) != 't'))
        st = WD_ERR(WD_ERR_STATE, "the node has no room for this server's memory or disk "
                    "(raise its overallocation or pick another node)");
    PQclear(res);
    res = NULL;

    /* The allocation: the one asked for, or the first free one. */
    const char *ap[] = {node, alloc};
    if (st == WD_OK)
        st = wd_db_exec(c,
                        alloc ? "SELECT a.id, host(a.ip), a.port FROM allocations a WHERE "
                                "a.node_id = $1 AND a.id = $2 AND a.server_id IS NULL AND NOT "
                                "EXISTS (SELECT 1 FROM servers WHERE allocation_id = a.id) "
                                "FOR UPDATE"
                              : "SELECT a.id, host(a.ip), a.port FROM allocations a WHERE "
                                "a.node_id = $1 AND a.server_id IS NULL AND NOT EXISTS "
                                "(SELECT 1 FROM servers WHERE allocation_id = a.id) "
                                "ORDER BY a.ip, a.port LIMIT 1 FOR UPDATE SKIP LOCKED",
                        alloc ? 2 : 1, ap, &res);
    if (st == WD_OK && PQntuples(res) == 0)
        st = WD_ERR(WD_ERR_STATE, alloc ? "that allocation is not free on this node"
                                        : "the node has no free allocation: add ports first");
    if (st == WD_OK) {
        snprintf(alloc_id, sizeof alloc_id, "%s", PQgetvalue(res, 0, 0));
        snprintf(ip, sizeof ip, "%s", PQgetvalue(res, 0, 1));
        snprintf(port, sizeof port, "%s", PQgetvalue(res, 0, 2));
    }
    PQclear(res);
    res = NULL;

    /* The template and the variables against its rules. */
    const char *tp[] = {tpl_id};
    if (st == WD_OK)
        st = wd_db_exec(c, "SELECT body::text FROM templates WHERE id = $1", 1, tp, &res);
    if (st == WD_OK && PQntuples(res) == 0)
        st = WD_ERR(WD_ERR_NOT_FOUND, "template %s not found", tpl_id);
    if (st == WD_OK)
        st = wd_template_parse_json(PQgetvalue(res, 0, 0), strlen(PQgetvalue(res, 0, 0)), &t);
    PQclear(res);
    res = NULL;
    if (st == WD_OK && !resolve_variables(r, t, json_object_get(in, "variables"), ip, port, &vars,
                                          &nvars)) {
        replied = true;
        st = WD_ERR_INVALID;
    }

    /* Rows. */
    const char *sp[] = {json_string_value(json_object_get(in, "name")),
                        json_string_value(json_object_get(in, "description"))
                            ? json_string_value(json_object_get(in, "description"))
                            : "",
                        owner, node, tpl_id, alloc_id, mem, disk, cpu, pids};
    if (st == WD_OK)
        st = wd_db_exec(c,
                        "INSERT INTO servers (name, description, owner_id, node_id, template_id, "
                        "allocation_id, memory_mb, disk_mb, cpu_pct, pids, revision) "
                        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 1) RETURNING id",
                        10, sp, &res);
    if (st == WD_ERR_NOT_FOUND)
        st = WD_ERR(WD_ERR_NOT_FOUND, "owner %s not found", owner);
    if (st == WD_OK)
        snprintf(server_id, sizeof server_id, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    res = NULL;
    if (st == WD_OK)
        st = store_variables(api, c, server_id, t, vars, nvars);
    const char *up[] = {alloc_id, server_id};
    if (st == WD_OK)
        st = wd_db_exec(c, "UPDATE allocations SET server_id = $2 WHERE id = $1", 2, up, NULL);

    /* The agent gets the spec before we commit: nothing half-created. */
    char spec_node[40];
    if (st == WD_OK)
        st = wd_server_spec_build(api, c, server_id, &spec, spec_node, sizeof spec_node);
    if (st == WD_OK)
        st = sync_spec(api, spec_node, spec, r);
    if (st == WD_OK) {
        json_t *meta = json_pack("{s:s, s:s, s:s}", "name", sp[0], "node_id", node,
                                 "template_id", tpl_id);
        wd_api_audit(api, c, r, "server.create", "server", server_id, meta);
        st = wd_db_commit(c);
    }
    if (st != WD_OK) {
        wd_db_rollback(c);
        if (!replied)
            wd_http_reply_status(r, st);
    } else {
        reply_server(r, c, server_id, 201);
    }
    wd_api_db_release(api, c);
    if (spec)
        protobuf_c_message_free_unpacked(&spec->base, NULL);
    wd_kv_free(vars, nvars);
    wd_template_free(&t);
    json_decref(in);
}

/* ---- read ------------------------------------------------------------------ */

/* The list's rows carry the latest resource figures from the bus (no
 * database row per sample) so a client draws the whole list, bars and all,
 * from one request. wd_api_list's row callback has no context: the API of
 * the request being listed is kept per thread for it. */
static _Thread_local wd_api *list_api;

static json_t *server_list_json(PGresult *res, int i)
{
    json_t *j = server_json(res, i);
    uint8_t buf[512];
    size_t len = 0;
    int64_t age = 0;
    Warden__V1__ServerStats *st = NULL;
    if (j && list_api && strcmp(PQgetvalue(res, i, SERVER_STATE_COL), "running") == 0 &&
        wd_fleet_latest_stats(list_api, PQgetvalue(res, i, 0), buf, sizeof buf, &len, &age) &&
        age < 10000 && (st = warden__v1__server_stats__unpack(NULL, len, buf)) != NULL) {
        json_object_set_new(j, "resources",
                            json_pack("{s:f, s:I, s:I, s:I}", "cpu_percent", st->cpu_percent,
                                      "memory_bytes", (json_int_t)st->memory_bytes,
                                      "memory_limit_bytes", (json_int_t)st->memory_limit_bytes,
                                      "age_ms", (json_int_t)age));
        protobuf_c_message_free_unpacked(&st->base, NULL);
    } else if (j) {
        json_object_set_new(j, "resources", json_null());
    }
    return j;
}

void wd_servers_list(wd_http_req *r, void *ud)
{
    wd_api *api = ud;
    const wd_principal *me = wd_api_principal(r);
    static const char *const sortable[] = {"name", "created_at", "state", NULL};
    wd_page pg;
    char limit[16], offset[24], sql[2048];
    if (!wd_api_page(r, sortable, &pg, limit, offset))
        return;
    const char *node = wd_http_query(r, "node_id");
    if (node && !wd_uuid_valid(node)) {
        wd_http_reply_error(r, 400, "invalid_argument", "node_id must be a UUID", NULL);
        return;
    }
    snprintf(sql, sizeof sql,
             "SELECT " SERVER_COLS ", count(*) OVER ()" SERVER_FROM
             " WHERE ($1::boolean OR s.owner_id = $2 OR EXISTS (SELECT 1 FROM subusers u "
             "WHERE u.server_id = s.id AND u.user_id = $2)) AND ($3::uuid IS NULL OR "
             "s.node_id = $3) ORDER BY s.%s %s, s.id LIMIT $4 OFFSET $5",
             strcmp(pg.sort, "created_at") == 0 ? "created_at"
             : strcmp(pg.sort, "state") == 0    ? "state"
                                                : "name",
             pg.desc ? "DESC" : "ASC");
    const char *params[] = {strcmp(me->role, "admin") == 0 ? "true" : "false", me->user_id, node,
                            limit, offset};
    list_api = api;
    wd_api_list(api, r, sql, 5, params, pg.page, pg.limit, server_list_json);
    list_api = NULL;
}

/* One server, with "permissions": what the caller may do on it (so a
 * client can show what is possible, and why not, before trying). */
void wd_servers_get(wd_http_req *r, void *ud)
{
    wd_api *api = ud;
    const char *id = wd_http_param(r, "id");
    const char *perms[64];
    size_t n = 0;
    char node[40];
    wd_status st = wd_api_server_perms(api, r, id, perms, 64, &n, node);
    if (st != WD_OK) {
        wd_http_reply_status(r, st);
        return;
    }
    PGconn *c = wd_api_db(api, r);
    if (c == NULL)
        return;
    const char *params[] = {id};
    PGresult *res = NULL;
    st = wd_db_exec(c, "SELECT " SERVER_COLS SERVER_FROM " WHERE s.id = $1", 1, params, &res);
    if (st == WD_OK && PQntuples(res) == 0)
        st = WD_ERR(WD_ERR_NOT_FOUND, "server %s not found", id);
    if (st == WD_OK) {
        json_t *j = server_json(res, 0), *granted = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(granted, json_string(perms[i]));
        json_object_set_new(j, "permissions", granted);
        wd_http_reply_json(r, 200, j);
    } else {
        wd_http_reply_status(r, st);
    }
    PQclear(res);
    wd_api_db_release(api, c);
}

/* ---- commands to the agent --------------------------------------------------- */

/* A pooled connection for best-effort work (audit after a command), or NULL. */
static PGconn *db_try(wd_api *api)
{
    PGconn *c = NULL;
    return wd_db_acquire(api->db, &c) == WD_OK ? c : NULL;
}

static wd_status node_of(wd_api *api, const char *server_id, char *node, size_t n)
{
    PGconn *c = NULL;
    wd_status st = wd_db_acquire(api->db, &c);
    if (st != WD_OK)
        return st;
    const char *params[] = {server_id};
    PGresult *res = NULL;
    st = wd_db_exec(c, "SELECT node_id, suspended FROM servers WHERE id = $1", 1, params, &res);
    wd_db_release(api->db, c);
    if (st == WD_OK && PQntuples(res) == 0)
        st = WD_ERR(WD_ERR_NOT_FOUND, "server %s not found", server_id);
    else if (st == WD_OK && *PQgetvalue(res, 0, 1) == 't')
        st = WD_ERR(WD_ERR_STATE, "the server is suspended");
    if (st == WD_OK)
        snprintf(node, n, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return st;
}

/* One request to the server's agent; the reply's status decides. */
static wd_status agent_request(wd_api *api, wd_http_req *r, const char *server_id,
                               const char *op, const ProtobufCMessage *req,
                               const ProtobufCMessageDescriptor *desc, ProtobufCMessage **reply)
{
    char node[40], subj[WD_SUBJECT_MAX];
    wd_status st = node_of(api, server_id, node, sizeof node);
    if (st != WD_OK)
        return st;
    if (api->bus == NULL)
        return WD_ERR(WD_ERR_UNAVAILABLE, "the API is not connected to NATS");
    if ((st = wd_subj_agent_server(subj, sizeof subj, node, server_id, op)) != WD_OK)
        return st;
    const wd_principal *me = wd_api_principal(r);
    wd_hdrs h = {.trace = wd_http_request_id(r), .actor = me ? me->username : NULL};
    ProtobufCMessage *rep = NULL;
    st = wd_bus_request(api->bus, subj, req, desc, BUS_TIMEOUT_MS, &h, &rep);
    if (st == WD_ERR_NO_RESPONDERS)
        st = WD_ERR(st, "the server's node is offline (its agent does not answer)");
    else if (st == WD_OK)
        st = wd_status_check(((Warden__V1__Ack *)rep)->status);
    if (st == WD_OK && reply)
        *reply = rep;
    else if (rep)
        protobuf_c_message_free_unpacked(rep, NULL);
    return st;
}

void wd_servers_power(wd_http_req *r, void *ud)
{
    wd_api *api = ud;
    const char *id = wd_http_param(r, "id");
    static const wd_field spec[] = {
        {.name = "action", .type = WD_F_STRING, .required = true, .max_len = 16}};
    json_t *in = wd_api_input(r, spec, 1, false);
    if (in == NULL)
        return;
    static const struct {
        const char *name;
        int action;
        const char *perm;
    } actions[] = {
        {"start", WARDEN__V1__POWER_REQUEST__ACTION__START, "control.start"},
        {"stop", WARDEN__V1__POWER_REQUEST__ACTION__STOP, "control.stop"},
        {"restart", WARDEN__V1__POWER_REQUEST__ACTION__RESTART, "control.restart"},
        {"kill", WARDEN__V1__POWER_REQUEST__ACTION__KILL, "control.kill"},
    };
    const char *want = json_string_value(json_object_get(in, "action"));
    int k = -1;
    for (int i = 0; i < 4; i++)
        if (strcmp(actions[i].name, want) == 0)
            k = i;
    char action_name[16];
    snprintf(action_name, sizeof action_name, "%s", want);
    json_decref(in);
    if (k < 0) {
        wd_http_reply_error(r, 400, "invalid_argument",
                            "action must be start, stop, restart or kill", NULL);
        return;
    }
    wd_status st = wd_api_server_access(api, r, id, actions[k].perm);
    if (st != WD_OK) {
        wd_http_reply_status(r, st);
        return;
    }
    Warden__V1__PowerRequest req = WARDEN__V1__POWER_REQUEST__INIT;
    req.action = actions[k].action;
    ProtobufCMessage *rep = NULL;
    st = agent_request(api, r, id, "power", &req.base, &warden__v1__power_reply__descriptor, &rep);
    PGconn *c = db_try(api);
    if (c) {
        json_t *meta = json_pack("{s:s, s:s}", "action", action_name, "result",
                                 st == WD_OK ? "ok" : wd_status_str(st));
        char action[48];
        snprintf(action, sizeof action, "server.power.%s", action_name);
        wd_api_audit(api, c, r, action, "server", id, meta);
        wd_db_release(api->db, c);
    }
    if (st != WD_OK) {
        wd_http_reply_status(r, st);
        return;
    }
    static const char *const states[] = {"unknown", "offline", "installing", "starting",
                                         "running", "stopping", "crashed"};
    int s = ((Warden__V1__PowerReply *)rep)->state;
    protobuf_c_message_free_unpacked(rep, NULL);
    wd_http_reply_json(r, 202, json_pack("{s:s}", "state", s >= 0 && s <= 6 ? states[s] : "unknown"));
}

void wd_servers_command(wd_http_req *r, void *ud)
{
    wd_api *api = ud;
    const char *id = wd_http_param(r, "id");
    static const wd_field spec[] = {
        {.name = "command", .type = WD_F_STRING, .required = true, .max_len = 4096}};
    json_t *in = wd_api_input(r, spec, 1, false);
    if (in == NULL)
        return;
    Warden__V1__ConsoleInput ci = WARDEN__V1__CONSOLE_INPUT__INIT;
    ci.line = (char *)json_string_value(json_object_get(in, "command"));
    wd_status st =
        agent_request(api, r, id, "console.in", &ci.base, &warden__v1__ack__descriptor, NULL);
    PGconn *c = db_try(api);
    if (c) {
        json_t *meta = json_pack("{s:s}", "command", ci.line);
        wd_api_audit(api, c, r, "server.console.command", "server", id, meta);
        wd_db_release(api->db, c);
    }
    json_decref(in);
    if (st != WD_OK)
        wd_http_reply_status(r, st);
    else
        wd_http_reply_json(r, 204, NULL);
}

void wd_servers_install(wd_http_req *r, void *ud)
{
    wd_api *api = ud;
    const char *id = wd_http_param(r, "id");
    Warden__V1__InstallRequest req = WARDEN__V1__INSTALL_REQUEST__INIT;
    req.reinstall = true;
    wd_status st = agent_request(api, r, id, "install", &req.base, &warden__v1__ack__descriptor,
                                 NULL);
    PGconn *c = db_try(api);
    if (c) {
        wd_api_audit(api, c, r, "server.install", "server", id,
                     json_pack("{s:s}", "result", st == WD_OK ? "ok" : wd_status_str(st)));
        wd_db_release(api->db, c);
    }
    if (st != WD_OK)
        wd_http_reply_status(r, st);
    else
        wd_http_reply_json(r, 202, json_pack("{s:s}", "state", "installing"));
}

void wd_servers_resources(wd_http_req *r, void *ud)
{
    wd_api *api = ud;
    const char *id = wd_http_param(r, "id");
    uint8_t buf[512];
    size_t len = 0;
    int64_t age = 0;
    if (!wd_fleet_latest_stats(api, id, buf, sizeof buf, &len, &age)) {
        wd_http_reply_json(r, 200, json_pack("{s:s, s:n}", "state", "offline", "stats"));
        return;
    }
    Warden__V1__ServerStats *s = warden__v1__server_stats__unpack(NULL, len, buf);
    if (s == NULL) {
        wd_http_reply_error(r, 500, "internal", "stats could not be read", NULL);
        return;
    }
    static const char *const states[] = {"unknown", "offline", "installing", "starting",
                                         "running", "stopping", "crashed"};
    json_t *j = json_pack("{s:s, s:{s:f, s:I, s:I, s:I, s:I, s:I}}", "state",
                          s->state <= 6 ? states[s->state] : "unknown", "stats", "cpu_percent",
                          s->cpu_percent, "memory_bytes", (json_int_t)s->memory_bytes,
                          "memory_limit_bytes", (json_int_t)s->memory_limit_bytes, "disk_bytes",
                          (json_int_t)s->disk_bytes, "uptime_ms", (json_int_t)s->uptime_ms,
                          "age_ms", (json_int_t)age);
    protobuf_c_message_free_unpacked(&s->base, NULL);
    wd_http_reply_json(r, 200, j);
}

/* A short-lived gateway token for this user and server, carrying exactly
 * the permissions the caller holds on it (docs/websocket.md). */
void wd_servers_websocket(wd_http_req *r, void *ud)
{
    wd_api *api = ud;
    const char *id = wd_http_param(r, "id");
    const wd_principal *p = wd_api_principal(r);
    const char *perms[WD_WSTOKEN_MAX_PERMS];
    size_t n = 0;
    char node[40];
    wd_status st = wd_api_server_perms(api, r, id, perms, WD_WSTOKEN_MAX_PERMS, &n, node);
    if (st != WD_OK) {
        wd_http_reply_status(r, st);
        return;
    }
    wd_wstoken_claims c;
    memset(&c, 0, sizeof c);
    snprintf(c.sub, sizeof c.sub, "%s", p->user_id);
    snprintf(c.sid, sizeof c.sid, "%s", p->sid);
    snprintf(c.srv, sizeof c.srv, "%s", id);
    snprintf(c.node, sizeof c.node, "%s", node);
    for (size_t i = 0; i < n; i++)
        snprintf(c.perms[c.nperms++], WD_WSTOKEN_PERM_MAX, "%s", perms[i]);
    c.iat = (int64_t)time(NULL);
    long ttl = api->cfg.ws_token_ttl_s > 0 ? api->cfg.ws_token_ttl_s : WD_WSTOKEN_TTL_DEFAULT;
    c.exp = c.iat + ttl;
    char *token = NULL;
    if ((st = wd_wstoken_issue(api->ws_keys, &c, &token)) != WD_OK) {
        wd_http_reply_status(r, st);
        return;
    }
    const char *base = api->cfg.ws_url && *api->cfg.ws_url ? api->cfg.ws_url
                                                             : "ws://127.0.0.1:8081/ws";
    char url[600];
    snprintf(url, sizeof url, "%s%s%s", base, base[strlen(base) - 1] == '/' ? "" : "/", id);
    json_t *granted = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(granted, json_string(perms[i]));
    wd_http_reply_json(r, 200,
                       json_pack("{s:s, s:s, s:I, s:o}", "token", token, "url", url,
                                 "expires_at", (json_int_t)c.exp, "permissions", granted));
    free(token);
}

void wd_servers_delete(wd_http_req *r, void *ud)
{
    wd_api *api = ud;
    const char *id = wd_http_param(r, "id");
    if (!wd_uuid_valid(id)) {
        wd_http_reply_error(r, 400, "invalid_argument", "server id must be a UUID", NULL);
        return;
    }
    const char *force = wd_http_query(r, "force");
    bool forced = force && strcmp(force, "true") == 0;
    Warden__V1__DeleteRequest req = WARDEN__V1__DELETE_REQUEST__INIT;
    req.force = true; /* a running game is killed: deleting is deliberate */
    wd_status st = agent_request(api, r, id, "delete", &req.base, &warden__v1__ack__descriptor,
                                 NULL);
    /* The agent no longer has it (or never had): fine. Unreachable: only
     * with ?force=true, and the agent drops it when it says hello. */
    if (st == WD_ERR_NOT_FOUND && strstr(wd_err_msg(), "is not on node") != NULL)
        st = WD_OK;
    if ((st == WD_ERR_NO_RESPONDERS || st == WD_ERR_TIMEOUT) && forced)
        st = WD_OK;
    if (st != WD_OK) {
        wd_http_reply_status(r, st);
        return;
    }
    PGconn *c = wd_api_db(api, r);
    if (c == NULL)
        return;
    const char *params[] = {id};
    st = wd_db_exec(c, "DELETE FROM servers WHERE id = $1", 1, params, NULL);
    if (st == WD_OK)
        wd_api_audit(api, c, r, "server.delete", "server", id, NULL);
    wd_api_db_release(api, c);
    if (st != WD_OK)
        wd_http_reply_status(r, st);
    else
        wd_http_reply_json(r, 204, NULL);
}

/* ---- update ----------------------------------------------------------------- */

/* PATCH /api/v1/servers/{id} (admin): name, description, limits, variables
 * (checked against the template), suspended. The new spec goes to the agent
 * inside the transaction; suspending also kills a running game. */
static void do_update(wd_http_req *r, wd_api *api, const char *id, json_t *in);

void wd_servers_update(wd_http_req *r, void *ud)
{
    json_t *in = wd_http_json_body(r);
    if (in)
        do_update(r, ud, wd_http_param(r, "id"), in);
}

/* Applies a validated-or-not update body (ownership of in taken). */
static void do_update(wd_http_req *r, wd_api *api, const char *id, json_t *in)
{
    static const wd_field fields[] = {
        {.name = "name", .type = WD_F_STRING, .max_len = 191},
        {.name = "description", .type = WD_F_TEXT, .max_len = 2000},
        {.name = "limits", .type = WD_F_OBJECT},
        {.name = "variables", .type = WD_F_OBJECT},
        {.name = "suspended", .type = WD_F_BOOL},
    };
    json_t *details = NULL;
    json_t *limits = json_object_get(in, "limits");
    if (wd_input_check(in, fields, sizeof fields / sizeof fields[0], &details) != WD_OK ||
        (limits && wd_input_check(limits, limit_fields, 4, &details) != WD_OK)) {
        wd_http_reply_error(r, 400, "invalid_argument", wd_err_msg(), details);
        json_decref(in);
        return;
    }
    PGconn *c = wd_api_db(api, r);
    if (c == NULL) {
        json_decref(in);
        return;
    }
    PGresult *res = NULL;
    Warden__V1__Template *t = NULL;
    Warden__V1__ServerSpec *spec = NULL;
    wd_kv *vars = NULL;
    size_t nvars = 0;
    bool replied = false, suspend_now = false;
    char node[40] = "";
    const char *params[] = {id};
    wd_status st = wd_db_begin(c);
    if (st == WD_OK)
        st = wd_db_exec(c,
                        "SELECT t.body::text, host(a.ip), a.port, s.suspended FROM servers s "
                        "JOIN templates t ON t.id = s.template_id "
                        "JOIN allocations a ON a.id = s.allocation_id WHERE s.id = $1 "
                        "FOR UPDATE OF s",
                        1, params, &res);
    if (st == WD_OK && PQntuples(res) == 0)
        st = WD_ERR(WD_ERR_NOT_FOUND, "server %s not found", id);
    if (st == WD_OK) {
        bool was = *PQgetvalue(res, 0, 3) == 't';
        json_t *sv = json_object_get(in, "suspended");
        suspend_now = sv && json_is_true(sv) && !was;
        st = wd_template_parse_json(PQgetvalue(res, 0, 0), strlen(PQgetvalue(res, 0, 0)), &t);
    }
    json_t *given = json_object_get(in, "variables");
    if (st == WD_OK && given) {
        /* Unchanged variables keep their stored values: merge, then check. */
        char ip[64], port[16];
        snprintf(ip, sizeof ip, "%s", PQgetvalue(res, 0, 1));
        snprintf(port, sizeof port, "%s", PQgetvalue(res, 0, 2));
        Warden__V1__ServerSpec *old = NULL;
        st = wd_server_spec_build(api, c, id, &old, NULL, 0);
        json_t *merged = json_object();
        for (size_t i = 0; st == WD_OK && i < old->n_variables; i++)
            json_object_set_new(merged, old->variables[i]->key,
                                json_string(old->variables[i]->value));
        if (old)
            protobuf_c_message_free_unpacked(&old->base, NULL);
        json_object_update(merged, given);
        if (st == WD_OK && !resolve_variables(r, t, merged, ip, port, &vars, &nvars)) {
            replied = true;
            st = WD_ERR_INVALID;
        }
        json_decref(merged);
    }
    PQclear(res);
    res = NULL;
    char mem[24], disk[24], cpu[24], pids[24];
    snprintf(mem, sizeof mem, "%lld", limit_of(limits, "memory_mb"));
    snprintf(disk, sizeof disk, "%lld", limit_of(limits, "disk_mb"));
    snprintf(cpu, sizeof cpu, "%lld", limit_of(limits, "cpu_pct"));
    snprintf(pids, sizeof pids, "%lld", limit_of(limits, "pids"));
    json_t *sv = json_object_get(in, "suspended");
    const char *up[] = {id,
                        json_string_value(json_object_get(in, "name")),
                        json_string_value(json_object_get(in, "description")),
                        limits ? "true" : "false",
                        mem, disk, cpu, pids,
                        sv ? (json_is_true(sv) ? "true" : "false") : NULL};
    if (st == WD_OK)
        st = wd_db_exec(c,
                        "UPDATE servers SET name = coalesce($2, name), "
                        "description = coalesce($3, description), "
                        "memory_mb = CASE WHEN $4::boolean THEN $5::bigint ELSE memory_mb END, "
                        "disk_mb = CASE WHEN $4::boolean THEN $6::bigint ELSE disk_mb END, "
                        "cpu_pct = CASE WHEN $4::boolean THEN $7::int ELSE cpu_pct END, "
                        "pids = CASE WHEN $4::boolean THEN $8::int ELSE pids END, "
                        "suspended = coalesce($9::boolean, suspended), revision = revision + 1 "
                        "WHERE id = $1",
                        9, up, NULL);
    if (st == WD_OK && given)
        st = store_variables(api, c, id, t, vars, nvars);
    if (st == WD_OK)
        st = wd_server_spec_build(api, c, id, &spec, node, sizeof node);
    if (st == WD_OK)
        st = sync_spec(api, node, spec, r);
    if (st == WD_OK) {
        /* What changed, without values: secrets never reach the audit log. */
        json_t *meta = json_pack("{s:b, s:b, s:b}", "variables", given != NULL, "limits",
                                 limits != NULL, "suspended", sv && json_is_true(sv));
        wd_api_audit(api, c, r, "server.update", "server", id, meta);
        st = wd_db_commit(c);
    }
    if (st != WD_OK) {
        wd_db_rollback(c);
        if (!replied)
            wd_http_reply_status(r, st);
    } else {
        if (suspend_now) {
            /* Best effort: the agent refuses nothing; a stopped game stays so. */
            Warden__V1__PowerRequest kill = WARDEN__V1__POWER_REQUEST__INIT;
            kill.action = WARDEN__V1__POWER_REQUEST__ACTION__KILL;
            char subj[WD_SUBJECT_MAX];
            ProtobufCMessage *rep = NULL;
            if (wd_subj_agent_server(subj, sizeof subj, node, id, "power") == WD_OK &&
                wd_bus_request(api->bus, subj, &kill.base, &warden__v1__power_reply__descriptor,
                               BUS_TIMEOUT_MS, NULL, &rep) == WD_OK)
                protobuf_c_message_free_unpacked(rep, NULL);
        }
        reply_server(r, c, id, 200);
    }
    wd_api_db_release(api, c);
    if (spec)
        protobuf_c_message_free_unpacked(&spec->base, NULL);
    wd_kv_free(vars, nvars);
    wd_template_free(&t);
    json_decref(in);
}

/* ---- startup variables (for owners and subusers) --------------------------- */

/* GET /api/v1/servers/{id}/startup (startup.read): the template's variables
 * with their current values. Secret values are never shown; variables the
 * template hides from users are listed only for admins. */
void wd_servers_startup_get(wd_http_req *r, void *ud)
{
    wd_api *api = ud;
    const char *id = wd_http_param(r, "id");
    const wd_principal *me = wd_api_principal(r);
    bool admin = strcmp(me->role, "admin") == 0;
    PGconn *c = wd_api_db(api, r);
    if (c == NULL)
        return;
    Warden__V1__ServerSpec *spec = NULL;
    wd_status st = wd_server_spec_build(api, c, id, &spec, NULL, 0);
    wd_api_db_release(api, c);
    if (st != WD_OK) {
        wd_http_reply_status(r, st);
        return;
    }
    static const char *const types[] = {"string", "integer", "boolean", "enum"};
    json_t *items = json_array();
    const Warden__V1__Template *t = spec->template_;
    for (size_t i = 0; i < t->n_variables; i++) {
        const Warden__V1__TemplateVariable *v = t->variables[i];
        if (!v->user_viewable && !admin)
            continue;
        const char *value = v->default_value ? v->default_value : "";
        for (size_t k = 0; k < spec->n_variables; k++)
            if (strcmp(spec->variables[k]->key, v->name) == 0)
                value = spec->variables[k]->value;
        json_t *item = json_pack("{s:s, s:s, s:s, s:b, s:b, s:b, s:s}", "name", v->name,
                                 "description", v->description ? v->description : "", "type",
                                 v->type <= 3 ? types[v->type] : "string", "required",
                                 (int)v->required, "user_editable", (int)v->user_editable,
                                 "secret", (int)v->secret, "value", v->secret ? "" : value);
        if (v->n_options) {
            json_t *opts = json_array();
            for (size_t k = 0; k < v->n_options; k++)
                json_array_append_new(opts, json_string(v->options[k]));
            json_object_set_new(item, "options", opts);
        }
        json_array_append_new(items, item);
    }
    json_t *body = json_pack("{s:s, s:o}", "startup", t->startup ? t->startup : "", "variables",
                             items);
    protobuf_c_message_free_unpacked(&spec->base, NULL);
    wd_http_reply_json(r, 200, body);
}

/* PATCH /api/v1/servers/{id}/startup (startup.update) {"variables":{...}}:
 * non-admins may change only the variables the template marks
 * user_editable; values are checked against the template's rules and the
 * node gets the new spec. */
void wd_servers_startup_update(wd_http_req *r, void *ud)
{
    wd_api *api = ud;
    const char *id = wd_http_param(r, "id");
    const wd_principal *me = wd_api_principal(r);
    static const wd_field spec_fields[] = {
        {.name = "variables", .type = WD_F_OBJECT, .required = true}};
    json_t *in = wd_api_input(r, spec_fields, 1, false);
    if (in == NULL)
        return;
    if (strcmp(me->role, "admin") != 0) {
        PGconn *c = wd_api_db(api, r);
        if (c == NULL) {
            json_decref(in);
            return;
        }
        Warden__V1__ServerSpec *spec = NULL;
        wd_status st = wd_server_spec_build(api, c, id, &spec, NULL, 0);
        wd_api_db_release(api, c);
        if (st != WD_OK) {
            wd_http_reply_status(r, st);
            json_decref(in);
            return;
        }
        const char *k;
        json_t *v;
        const char *locked = NULL;
        json_object_foreach(json_object_get(in, "variables"), k, v)
        {
            bool editable = false;
            for (size_t i = 0; i < spec->template_->n_variables; i++)
                if (strcmp(spec->template_->variables[i]->name, k) == 0)
                    editable = spec->template_->variables[i]->user_editable;
            if (!editable && locked == NULL)
                locked = k;
        }
        char name[80];
        snprintf(name, sizeof name, "%s", locked ? locked : "");
        protobuf_c_message_free_unpacked(&spec->base, NULL);
        if (locked) {
            json_decref(in);
            char msg[160];
            snprintf(msg, sizeof msg, "%s is not a variable you may change", name);
            wd_http_reply_error(r, 403, "forbidden", msg, NULL);
            return;
        }
    }
    do_update(r, api, id, in);
}
