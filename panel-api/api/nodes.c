/* Node routes (admin): create a node and get its one-time join token,
 * list, read, update (maintenance, capacity), delete, and issue a new join
 * token. Liveness (online, last_seen_at) comes from heartbeats (fleet.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app_int.h"
#include "input.h"
#include "natsauth.h"
#include "token.h"
#include "util.h"

#define JOIN_PREFIX "wdj_"
#define JOIN_TTL "24 hours"
#define JOIN_TTL_S (24 * 3600)

#define NODE_COLS                                                                              \
    "id, name, fqdn, public, memory_mb, memory_overalloc_pct, disk_mb, disk_overalloc_pct, "    \
    "maintenance, online, coalesce(version, ''), "                                             \
    "coalesce(to_char(last_seen_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), ''), " \
    "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "                 \
    "(SELECT count(*) FROM servers s WHERE s.node_id = nodes.id)"

static json_t *node_json(PGresult *res, int i)
{
    const char *seen = PQgetvalue(res, i, 11);
    return json_pack("{s:s, s:s, s:s, s:b, s:I, s:i, s:I, s:i, s:b, s:b, s:s, s:o, s:s, s:I}",
                     "id", PQgetvalue(res, i, 0), "name", PQgetvalue(res, i, 1), "fqdn",
                     PQgetvalue(res, i, 2), "public", *PQgetvalue(res, i, 3) == 't',
                     "memory_mb", (json_int_t)strtoll(PQgetvalue(res, i, 4), NULL, 10),
                     "memory_overalloc_pct", atoi(PQgetvalue(res, i, 5)), "disk_mb",
                     (json_int_t)strtoll(PQgetvalue(res, i, 6), NULL, 10),
                     "disk_overalloc_pct", atoi(PQgetvalue(res, i, 7)), "maintenance",
                     *PQgetvalue(res, i, 8) == 't', "online", *PQgetvalue(res, i, 9) == 't',
                     "version", PQgetvalue(res, i, 10), "last_seen_at",
                     *seen ? json_string(seen) : json_null(), "created_at",
                     PQgetvalue(res, i, 12), "servers",
                     (json_int_t)strtoll(PQgetvalue(res, i, 13), NULL, 10));
}

static const wd_field node_fields[] = {
    {.name = "name", .type = WD_F_STRING, .required = true, .max_len = 100},
    {.name = "fqdn", .type = WD_F_STRING, .required = true, .max_len = 253},
    {.name = "public", .type = WD_F_BOOL},
    {.name = "memory_mb", .type = WD_F_INT, .required = true, .min = 1, .max = 1LL << 40},
    {.name = "memory_overalloc_pct", .type = WD_F_INT, .min = 0, .max = 1000},
    {.name = "disk_mb", .type = WD_F_INT, .required = true, .min = 1, .max = 1LL << 40},
    {.name = "disk_overalloc_pct", .type = WD_F_INT, .min = 0, .max = 1000},
    {.name = "maintenance", .type = WD_F_BOOL},
};
#define NFIELDS (sizeof node_fields / sizeof node_fields[0])

/* Issues a join token for node id inside the caller's transaction: a
 * secret stored hashed, and, when the bus has credentials, the join user
 * that lets a new agent reach warden.discovery.join (natsauth.h). *token is
 * heap memory the caller frees. */
static wd_status new_join_token(wd_api *api, PGconn *c, const char *id, char **token)
{
    char secret[128], hash[WD_TOKEN_HASH_HEX_LEN + 1];
    *token = NULL;
    wd_status st = wd_token_new(JOIN_PREFIX, secret, sizeof secret);
    if (st == WD_OK)
        st = wd_token_hash(secret, hash);
    const char *params[] = {id, hash};
    /* Older unused tokens of this node stop working. */
    if (st == WD_OK)
        st = wd_db_exec(c,
                        "UPDATE node_join_tokens SET used_at = now() "
                        "WHERE node_id = $1 AND used_at IS NULL",
                        1, params, NULL);
    if (st == WD_OK)
        st = wd_db_exec(c,
                        "INSERT INTO node_join_tokens (node_id, token_hash, expires_at) "
                        "VALUES ($1, $2, now() + interval '" JOIN_TTL "')",
                        2, params, NULL);
    if (st == WD_OK && api->nauth)
        st = wd_natsauth_join_token(api->nauth, secret, (int64_t)time(NULL) + JOIN_TTL_S + 60,
                                    token);
    else if (st == WD_OK && !(*token = strdup(secret)))
        st = WD_ERR(WD_ERR_NOMEM, "out of memory");
    return st;
}

static char *num(json_t *in, const char *k, const char *def, char *buf, size_t n)
{
    json_t *v = json_object_get(in, k);
    if (v == NULL)
        return (char *)def;
    if (json_is_boolean(v))
        snprintf(buf, n, "%s", json_is_true(v) ? "true" : "false");
    else
        snprintf(buf, n, "%lld", (long long)json_integer_value(v));
    return buf;
}

void wd_nodes_create(wd_http_req *r, void *ud)
{
    wd_api *api = ud;
    json_t *in = wd_api_input(r, node_fields, NFIELDS, false);
    if (in == NULL)
        return;
    char b1[24], b2[24], b3[24], b4[24], b5[8], b6[8];
    const char *params[] = {
        json_string_value(json_object_get(in, "name")),
        json_string_value(json_object_get(in, "fqdn")),
        num(in, "public", "true", b5, sizeof b5),
        num(in, "memory_mb", "0", b1, sizeof b1),
        num(in, "memory_overalloc_pct", "0", b2, sizeof b2),
        num(in, "disk_mb", "0", b3, sizeof b3),
        num(in, "disk_overalloc_pct", "0", b4, sizeof b4),
        num(in, "maintenance", "false", b6, sizeof b6),
    };
    PGconn *c = wd_api_db(api, r);
    if (c == NULL) {
        json_decref(in);
        return;
    }
    PGresult *res = NULL;
    char *token = NULL;
    wd_status st = wd_db_begin(c);
    if (st == WD_OK)
        st = wd_db_exec(c,
                        "INSERT INTO nodes (name, fqdn, public, memory_mb, memory_overalloc_pct, "
                        "disk_mb, disk_overalloc_pct, maintenance) "
                        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING " NODE_COLS,
                        8, params, &res);
    if (st == WD_OK)
        st = new_join_token(api, c, PQgetvalue(res, 0, 0), &token);
    if (st == WD_OK) {
        json_t *meta = json_pack("{s:s}", "name", params[0]);
        wd_api_audit(api, c, r, "node.create", "node", PQgetvalue(res, 0, 0), meta);
        st = wd_db_commit(c);
    }
    if (st != WD_OK) {
        wd_db_rollback(c);
        if (st == WD_ERR_EXISTS)
            st = WD_ERR(WD_ERR_EXISTS, "a node named '%s' exists already", params[0]);
        wd_http_reply_status(r, st);
    } else {
        json_t *node = node_json(res, 0);
        wd_http_reply_json(r, 201,
                           json_pack("{s:o, s:s, s:s}", "node", node, "join_token", token,
                                     "join_hint",
                                     "start the agent once with --join TOKEN (or "
                                     "WARDEN_JOIN_TOKEN); the token works once, for 24 hours"));
    }
    free(token);
    PQclear(res);
    wd_api_db_release(api, c);
    json_decref(in);
}

void wd_nodes_list(wd_http_req *r, void *ud)
{
    wd_api *api = ud;
    static const char *const sortable[] = {"name", "created_at", NULL};
    wd_page pg;
    char limit[16], offset[24], sql[1024];
    if (!wd_api_page(r, sortable, &pg, limit, offset))
        return;
    snprintf(sql, sizeof sql,
             "SELECT " NODE_COLS ", count(*) OVER () FROM nodes ORDER BY %s %s, id "
             "LIMIT $1 OFFSET $2",
             strcmp(pg.sort, "created_at") == 0 ? "created_at" : "name", pg.desc ? "DESC" : "ASC");
    const char *params[] = {limit, offset};
    wd_api_list(api, r, sql, 2, params, pg.page, pg.limit, node_json);
}

void wd_nodes_get(wd_http_req *r, void *ud)
{
    wd_api *api = ud;
    const char *id;
    if (!wd_api_uuid_param(r, "id", "node id", &id))
        return;
    PGconn *c = wd_api_db(api, r);
    if (c == NULL)
        return;
    const char *params[] = {id};
    PGresult *res = NULL;
    wd_status st = wd_db_exec(c, "SELECT " NODE_COLS " FROM nodes WHERE id = $1", 1, params, &res);
    wd_api_db_release(api, c);
    if (st == WD_OK && PQntuples(res) == 0)
        st = WD_ERR(WD_ERR_NOT_FOUND, "node %s not found", id);
    if (st == WD_OK)
        wd_http_reply_json(r, 200, node_json(res, 0));
    else
        wd_http_reply_status(r, st);
    PQclear(res);
}

void wd_nodes_update(wd_http_req *r, void *ud)
{
    wd_api *api = ud;
    const char *id;
    if (!wd_api_uuid_param(r, "id", "node id", &id))
        return;
    json_t *in = wd_http_json_body(r);
    if (in == NULL)
        return;
    /* The same fields as create, none required. */
    wd_field fields[NFIELDS];
    memcpy(fields, node_fields, sizeof fields);
    for (size_t i = 0; i < NFIELDS; i++)
        fields[i].required = false;
    json_t *details = NULL;
    if (wd_input_check(in, fields, NFIELDS, &details) != WD_OK) {
        wd_http_reply_error(r, 400, "invalid_argument", wd_err_msg(), details);
        json_decref(in);
        return;
    }
    char b1[24], b2[24], b3[24], b4[24], b5[8], b6[8];
    const char *params[] = {
        id,
        json_string_value(json_object_get(in, "name")),
        json_string_value(json_object_get(in, "fqdn")),
        num(in, "public", NULL, b5, sizeof b5),
        num(in, "memory_mb", NULL, b1, sizeof b1),
        num(in, "memory_overalloc_pct", NULL, b2, sizeof b2),
        num(in, "disk_mb", NULL, b3, sizeof b3),
        num(in, "disk_overalloc_pct", NULL, b4, sizeof b4),
        num(in, "maintenance", NULL, b6, sizeof b6),
    };
    PGconn *c = wd_api_db(api, r);
    if (c == NULL) {
        json_decref(in);
        return;
    }
    PGresult *res = NULL;
    wd_status st = wd_db_exec(
        c,
        "UPDATE nodes SET name = coalesce($2, name), fqdn = coalesce($3, fqdn), "
        "public = coalesce($4::boolean, public), memory_mb = coalesce($5::bigint, memory_mb), "
        "memory_overalloc_pct = coalesce($6::int, memory_overalloc_pct), "
        "disk_mb = coalesce($7::bigint, disk_mb), "
        "disk_overalloc_pct = coalesce($8::int, disk_overalloc_pct), "
        "maintenance = coalesce($9::boolean, maintenance) WHERE id = $1 RETURNING " NODE_COLS,
        9, params, &res);
    if (st == WD_OK && PQntuples(res) == 0)
        st = WD_ERR(WD_ERR_NOT_FOUND, "node %s not found", id);
    if (st == WD_OK) {
        char *changes = json_dumps(in, JSON_COMPACT);
        json_t *meta = json_pack("{s:s}", "changes", changes ? changes : "");
        free(changes);
        wd_api_audit(api, c, r, "node.update", "node", id, meta);
        wd_http_reply_json(r, 200, node_json(res, 0));
    } else {
        wd_http_reply_status(r, st);
    }
    PQclear(res);
    wd_api_db_release(api, c);
    json_decref(in);
}

void wd_nodes_delete(wd_http_req *r, void *ud)
{
    const char *id;
    if (wd_api_uuid_param(r, "id", "node id", &id))
        wd_api_delete_unused(ud, r, "nodes", "node_id", "node", id, "node.delete");
}

void wd_nodes_join_token(wd_http_req *r, void *ud)
{
    wd_api *api = ud;
    const char *id;
    if (!wd_api_uuid_param(r, "id", "node id", &id))
        return;
    PGconn *c = wd_api_db(api, r);
    if (c == NULL)
        return;
    char *token = NULL;
    const char *params[] = {id};
    PGresult *res = NULL;
    wd_status st = wd_db_begin(c);
    if (st == WD_OK)
        st = wd_db_exec(c, "SELECT 1 FROM nodes WHERE id = $1 FOR UPDATE", 1, params, &res);
    if (st == WD_OK && PQntuples(res) == 0)
        st = WD_ERR(WD_ERR_NOT_FOUND, "node %s not found", id);
    PQclear(res);
    if (st == WD_OK)
        st = new_join_token(api, c, id, &token);
    if (st == WD_OK) {
        wd_api_audit(api, c, r, "node.join_token", "node", id, NULL);
        st = wd_db_commit(c);
    }
    if (st != WD_OK) {
        wd_db_rollback(c);
        wd_http_reply_status(r, st);
    } else {
        wd_http_reply_json(r, 201, json_pack("{s:s}", "join_token", token));
    }
    free(token);
    wd_api_db_release(api, c);
}

/* ---- allocations ------------------------------------------------------- */

/* POST /api/v1/nodes/{id}/allocations {"ip":"203.0.113.7","ports":[25565,"27015-27020"]} */
void wd_allocations_create(wd_http_req *r, void *ud)
{
    wd_api *api = ud;
    const char *id;
    if (!wd_api_uuid_param(r, "id", "node id", &id))
        return;
    static const wd_field spec[] = {
        {.name = "ip", .type = WD_F_STRING, .required = true, .max_len = 45},
        {.name = "ports", .type = WD_F_ARRAY, .required = true, .max_len = 100},
    };
    json_t *in = wd_api_input(r, spec, 2, false);
    if (in == NULL)
        return;
    /* Expand the ports: numbers and "A-B" ranges, at most 1000 in all. */
    int ports[1000];
    size_t n = 0, i;
    json_t *p;
    const char *bad = NULL;
    json_array_foreach(json_object_get(in, "ports"), i, p)
    {
        long lo, hi;
        if (json_is_integer(p)) {
            lo = hi = (long)json_integer_value(p);
        } else if (json_is_string(p)) {
            char a[16], b[16];
            const char *s = json_string_value(p);
            const char *dash = strchr(s, '-');
            if (dash == NULL || (size_t)(dash - s) >= sizeof a || strlen(dash + 1) >= sizeof b) {
                bad = "port ranges look like \"27015-27020\"";
                break;
            }
            snprintf(a, sizeof a, "%.*s", (int)(dash - s), s);
            snprintf(b, sizeof b, "%s", dash + 1);
            if (!wd_parse_long(a, 1, 65535, &lo) || !wd_parse_long(b, 1, 65535, &hi)) {
                bad = "ports must be 1-65535";
                break;
            }
        } else {
            bad = "ports are numbers or \"A-B\" ranges";
            break;
        }
        if (lo < 1 || hi > 65535 || lo > hi) {
            bad = "ports must be 1-65535, ranges low-high";
            break;
        }
        for (long k = lo; k <= hi; k++) {
            if (n == sizeof ports / sizeof ports[0]) {
                bad = "at most 1000 ports per request";
                break;
            }
            ports[n++] = (int)k;
        }
        if (bad)
            break;
    }
    if (bad || n == 0) {
        wd_http_reply_error(r, 400, "invalid_argument", bad ? bad : "no ports given", NULL);
        json_decref(in);
        return;
    }
    /* One statement with an int[] parameter: all or nothing. */
    size_t cap = n * 7 + 3;
    char *arr = malloc(cap);
    size_t used = 0;
    arr[used++] = '{';
    for (size_t k = 0; k < n; k++)
        used += (size_t)snprintf(arr + used, cap - used, "%s%d", k ? "," : "", ports[k]);
    snprintf(arr + used, cap - used, "}");
    const char *params[] = {id, json_string_value(json_object_get(in, "ip")), arr};
    PGconn *c = wd_api_db(api, r);
    if (c == NULL) {
        free(arr);
        json_decref(in);
        return;
    }
    PGresult *res = NULL;
    wd_status st = wd_db_exec(c,
                              "INSERT INTO allocations (node_id, ip, port) "
                              "SELECT $1, $2::inet, unnest($3::int[]) RETURNING id",
                              3, params, &res);
    if (st == WD_ERR_EXISTS)
        st = WD_ERR(WD_ERR_EXISTS, "some of these ports are allocated already on that address");
    else if (st == WD_ERR_NOT_FOUND)
        st = WD_ERR(WD_ERR_NOT_FOUND, "node %s not found", id);
    else if (st == WD_ERR_INVALID)
        st = WD_ERR(WD_ERR_INVALID, "ip must be an IPv4 or IPv6 address");
    if (st == WD_OK) {
        json_t *meta = json_pack("{s:s, s:i}", "ip", params[1], "count", (int)n);
        wd_api_audit(api, c, r, "allocation.create", "node", id, meta);
        wd_http_reply_json(r, 201, json_pack("{s:i}", "created", PQntuples(res)));
    } else {
        wd_http_reply_status(r, st);
    }
    PQclear(res);
    wd_api_db_release(api, c);
    free(arr);
    json_decref(in);
}

void wd_allocations_list(wd_http_req *r, void *ud)
{
    wd_api *api = ud;
    const char *id;
    if (!wd_api_uuid_param(r, "id", "node id", &id))
        return;
    PGconn *c = wd_api_db(api, r);
    if (c == NULL)
        return;
    const char *params[] = {id};
    PGresult *res = NULL;
    wd_status st = wd_db_exec(c,
                              "SELECT id, host(ip), port, coalesce(server_id::text, '') "
                              "FROM allocations WHERE node_id = $1 ORDER BY ip, port",
                              1, params, &res);
    wd_api_db_release(api, c);
    if (st != WD_OK) {
        wd_http_reply_status(r, st);
        return;
    }
    json_t *items = json_array();
    for (int i = 0; i < PQntuples(res); i++) {
        const char *sid = PQgetvalue(res, i, 3);
        json_array_append_new(items,
                              json_pack("{s:s, s:s, s:i, s:o}", "id", PQgetvalue(res, i, 0), "ip",
                                        PQgetvalue(res, i, 1), "port", atoi(PQgetvalue(res, i, 2)),
                                        "server_id", *sid ? json_string(sid) : json_null()));
    }
    PQclear(res);
    wd_http_reply_json(r, 200, json_pack("{s:o}", "data", items));
}

void wd_allocations_delete(wd_http_req *r, void *ud)
{
    wd_api *api = ud;
    const char *id, *alloc = wd_http_param(r, "alloc");
    if (!wd_api_uuid_param(r, "id", "node id", &id))
        return;
    if (!wd_uuid_valid(alloc)) {
        wd_http_reply_error(r, 400, "invalid_argument", "allocation id must be a UUID", NULL);
        return;
    }
    PGconn *c = wd_api_db(api, r);
    if (c == NULL)
        return;
    const char *params[] = {alloc, id};
    PGresult *res = NULL;
    wd_status st = wd_db_exec(c,
                              "DELETE FROM allocations WHERE id = $1 AND node_id = $2 "
                              "AND server_id IS NULL AND NOT EXISTS "
                              "(SELECT 1 FROM servers WHERE allocation_id = $1) RETURNING id",
                              2, params, &res);
    if (st == WD_OK && PQntuples(res) == 0)
        st = WD_ERR(WD_ERR_STATE, "allocation not found on this node, or used by a server");
    if (st == WD_OK)
        wd_api_audit(api, c, r, "allocation.delete", "allocation", alloc, NULL);
    PQclear(res);
    wd_api_db_release(api, c);
    if (st != WD_OK)
        wd_http_reply_status(r, st);
    else
        wd_http_reply_json(r, 204, NULL);
}

/* ---- for the command line (warden-api node create) -------------------- */

wd_status wd_api_create_node(wd_api *api, const char *name, const char *fqdn, long memory_mb,
                             long disk_mb, const char *ip, int port_lo, int port_hi, char *id_out,
                             char **token_out)
{
    *token_out = NULL;
    PGconn *c = NULL;
    wd_status st = wd_db_acquire(api->db, &c);
    if (st != WD_OK)
        return st;
    char mem[24], disk[24], lo[16], hi[16];
    snprintf(mem, sizeof mem, "%ld", memory_mb);
    snprintf(disk, sizeof disk, "%ld", disk_mb);
    snprintf(lo, sizeof lo, "%d", port_lo);
    snprintf(hi, sizeof hi, "%d", port_hi);
    const char *params[] = {name, fqdn, mem, disk};
    PGresult *res = NULL;
    if ((st = wd_db_begin(c)) == WD_OK)
        st = wd_db_exec(c,
                        "INSERT INTO nodes (name, fqdn, memory_mb, disk_mb) "
                        "VALUES ($1, $2, $3, $4) RETURNING id",
                        4, params, &res);
    if (st == WD_OK)
        snprintf(id_out, 40, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    if (st == WD_OK && ip && port_lo > 0) {
        const char *ap[] = {id_out, ip, lo, hi};
        st = wd_db_exec(c,
                        "INSERT INTO allocations (node_id, ip, port) "
                        "SELECT $1, $2::inet, generate_series($3::int, $4::int)",
                        4, ap, NULL);
    }
    if (st == WD_OK)
        st = new_join_token(api, c, id_out, token_out);
    if (st == WD_OK) {
        json_t *meta = json_pack("{s:s}", "name", name);
        wd_api_audit(api, c, NULL, "node.create", "node", id_out, meta);
        st = wd_db_commit(c);
    }
    if (st != WD_OK) {
        wd_db_rollback(c);
        if (st == WD_ERR_EXISTS)
            st = WD_ERR(WD_ERR_EXISTS, "a node named '%s' exists already", name);
        free(*token_out);
        *token_out = NULL;
    }
    wd_db_release(api->db, c);
    return st;
}
