/* The API context (see app.h): start-up (keys, pool, migrations, bus, HTTP),
 * the authorize hook that every route goes through, audit rows. */
#include "app_int.h"
#include "natsauth.h"
#include "wstoken.h"
#include "warden/v1/events.pb-c.h"
#include "admin_routes.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "base64.h"
#include "log.h"
#include "migrate.h"
#include "password.h"
#include "input.h"
#include "perms.h"
#include "token.h"
#include "util.h"

const wd_route *wd_api_routes(size_t *n); /* routes.c */

/* ---- keys ----------------------------------------------------------------- */

/* Loads "kid:base64secret" lines (first = active); creates the file with a
 * fresh key when it does not exist. */
static wd_status load_jwt_keys(wd_api *api)
{
    char path[1100];
    if (api->cfg.jwt_key_file && *api->cfg.jwt_key_file)
        snprintf(path, sizeof path, "%s", api->cfg.jwt_key_file);
    else
        snprintf(path, sizeof path, "%s/jwt.key", api->cfg.data_dir ? api->cfg.data_dir : ".");
    char *text = NULL;
    wd_status st = wd_read_file(path, 65536, &text, NULL);
    if (st == WD_ERR_NOT_FOUND) {
        unsigned char secret[48];
        char kid[40], b64[128], line[200];
        char rnd[33];
        wd_trace_new(rnd);
        snprintf(kid, sizeof kid, "k%.12s", rnd);
        FILE *ur = fopen("/dev/urandom", "re");
        if (ur == NULL || fread(secret, 1, sizeof secret, ur) != sizeof secret) {
            if (ur)
                fclose(ur);
            return WD_ERR(WD_ERR_IO, "cannot read /dev/urandom");
        }
        fclose(ur);
        wd_base64_url_encode(secret, sizeof secret, b64, sizeof b64);
        int n = snprintf(line, sizeof line, "%s:%s\n", kid, b64);
        if (api->cfg.data_dir && (st = wd_mkdir_p(api->cfg.data_dir, 0700)) != WD_OK)
            return st;
        if ((st = wd_write_file_atomic(path, line, (size_t)n, 0600)) != WD_OK)
            return st;
        wd_info("created a new token signing key in %s", path);
        text = strdup(line);
    } else if (st != WD_OK) {
        return st;
    }
    if ((st = wd_jwt_keyring_create(&api->keys)) != WD_OK) {
        free(text);
        return st;
    }
    int nkeys = 0;
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        if (*line == '#' || *line == '\0')
            continue;
        char *colon = strchr(line, ':');
        if (colon == NULL) {
            st = WD_ERR(WD_ERR_INVALID, "%s: expected KID:BASE64 lines", path);
            break;
        }
        *colon = '\0';
        unsigned char secret[WD_JWT_SECRET_MAX];
        size_t len = 0;
        if (wd_base64_url_decode(colon + 1, strlen(colon + 1), secret, sizeof secret, &len) !=
                WD_OK ||
            (st = wd_jwt_keyring_add(api->keys, line, secret, len)) != WD_OK) {
            st = WD_ERR(WD_ERR_INVALID, "%s: key %s: %s", path, line, wd_err_msg());
            break;
        }
        if (nkeys++ == 0)
            wd_jwt_keyring_set_active(api->keys, line);
    }
    free(text);
    if (st == WD_OK && nkeys == 0)
        st = WD_ERR(WD_ERR_INVALID, "%s holds no key", path);
    return st;
}

/* The secrets key file: "KID:BASE64" lines, first active; created with a
 * fresh key when missing. */
static wd_status load_secretbox(wd_api *api)
{
    const char *env = getenv("WARDEN_SECRETS_KEY");
    if (env && *env) { /* "KID:BASE64" lines, as in the file */
        wd_status st = wd_secretbox_load(env, &api->box);
        return st == WD_OK ? WD_OK : WD_ERR(st, "WARDEN_SECRETS_KEY: %s", wd_err_msg());
    }
    char path[1100];
    snprintf(path, sizeof path, "%s/secrets.key", api->cfg.data_dir ? api->cfg.data_dir : ".");
    char *text = NULL;
    wd_status st = wd_read_file(path, 65536, &text, NULL);
    if (st == WD_ERR_NOT_FOUND) {
        char kid[24], line[200], rnd[33];
        wd_trace_new(rnd);
        snprintf(kid, sizeof kid, "s%.12s", rnd);
        if ((st = wd_secretbox_generate_key_line(kid, line, sizeof line)) != WD_OK)
            return st;
        size_t n = strlen(line);
        if (n + 1 < sizeof line && line[n - 1] != '\n') {
            line[n++] = '\n';
            line[n] = '\0';
        }
        if ((st = wd_write_file_atomic(path, line, n, 0600)) != WD_OK)
            return st;
        wd_info("created a new secrets key in %s (keep it: secret values need it)", path);
        text = strdup(line);
    } else if (st != WD_OK) {
        return st;
    }
    st = wd_secretbox_load(text, &api->box);
    free(text);
    if (st != WD_OK)
        return WD_ERR(st, "%s: %s", path, wd_err_msg());
    return WD_OK;
}

/* The gateway token key: DATA_DIR/ws.key unless given; created on first
 * start together with ws.pub, the public half every warden-ws needs. */
static wd_status load_ws_key(wd_api *api)
{
    char path[1100], pub_path[1100];
    const char *dir = api->cfg.data_dir ? api->cfg.data_dir : ".";
    if (api->cfg.ws_key_file && *api->cfg.ws_key_file)
        snprintf(path, sizeof path, "%s", api->cfg.ws_key_file);
    else
        snprintf(path, sizeof path, "%s/ws.key", dir);
    if (access(path, F_OK) != 0 && errno == ENOENT) {
        char *priv = NULL, *pub = NULL;
        wd_status st = wd_wstoken_keygen(&priv, &pub);
        snprintf(pub_path, sizeof pub_path, "%s/ws.pub", dir);
        if (st == WD_OK)
            st = wd_write_file_atomic(path, priv, strlen(priv), 0600);
        if (st == WD_OK)
            st = wd_write_file_atomic(pub_path, pub, strlen(pub), 0644);
        if (priv)
            OPENSSL_cleanse(priv, strlen(priv));
        free(priv);
        free(pub);
        if (st != WD_OK)
            return st;
        wd_info("created the gateway token key %s; give %s to every warden-ws "
                "(--token-pubkey)", path, pub_path);
    }
    wd_status st = wd_wstoken_keys_load(&api->ws_keys, path, NULL);
    return st == WD_OK ? WD_OK : WD_ERR(st, "gateway token key %s: %s", path, wd_err_msg());
}

static void announce(wd_api *api, Warden__V1__PanelEvent__Kind kind, const char *what,
                     const char *user_id, const char *key, const char *value)
{
    if (!api->bus)
        return;
    Warden__V1__PanelEvent ev = WARDEN__V1__PANEL_EVENT__INIT;
    Warden__V1__PanelEvent__DetailsEntry entry = WARDEN__V1__PANEL_EVENT__DETAILS_ENTRY__INIT;
    Warden__V1__PanelEvent__DetailsEntry *entries[] = {&entry};
    ev.kind = kind;
    ev.actor = (char *)"warden-api";
    ev.action = (char *)what;
    ev.subject_id = (char *)user_id;
    ev.time_unix_ms = wd_unix_ms();
    if (value && *value) {
        entry.key = (char *)key;
        entry.value = (char *)value;
        ev.details = entries;
        ev.n_details = 1;
    }
    char subj[128];
    snprintf(subj, sizeof subj, "warden.panel.events.%s", what);
    if (wd_bus_publish(api->bus, subj, &ev.base, NULL) != WD_OK)
        wd_warn("announcing %s for user %s: %s", what, user_id, wd_err_msg());
}

void wd_api_announce_revoked(wd_api *api, const char *user_id, const char *sid)
{
    announce(api, WARDEN__V1__PANEL_EVENT__KIND__SESSION_REVOKED, "session.revoked", user_id,
             "sid", sid);
}

void wd_api_announce_subuser_removed(wd_api *api, const char *user_id, const char *server_id)
{
    announce(api, WARDEN__V1__PANEL_EVENT__KIND__SUBUSER_REMOVED, "subuser.removed", user_id,
             "server_id", server_id);
}

wd_status wd_api_issue_access(wd_api *api, const char *user_id, const char *role,
                              const char *sid, char **token)
{
    wd_jwt_claims c;
    memset(&c, 0, sizeof c);
    snprintf(c.sub, sizeof c.sub, "%s", user_id);
    snprintf(c.sid, sizeof c.sid, "%s", sid ? sid : "");
    snprintf(c.role, sizeof c.role, "%s", role);
    snprintf(c.iss, sizeof c.iss, "%s", api->cfg.issuer);
    snprintf(c.aud, sizeof c.aud, "%s", api->cfg.issuer);
    c.iat = (int64_t)time(NULL);
    c.nbf = c.iat;
    c.exp = c.iat + api->cfg.access_ttl_s;
    return wd_jwt_issue(api->keys, &c, token);
}

/* ---- database helpers --------------------------------------------------- */

PGconn *wd_api_db(wd_api *api, wd_http_req *r)
{
    PGconn *c = NULL;
    wd_status st = wd_db_acquire(api->db, &c);
    if (st != WD_OK) {
        wd_error("database: %s", wd_err_msg());
        wd_http_set_header(r, "Retry-After", "1");
        wd_http_reply_error(r, 503, "database_unavailable",
                            "the database is not available; retry shortly", NULL);
        return NULL;
    }
    return c;
}

void wd_api_db_release(wd_api *api, PGconn *c)
{
    if (c)
        wd_db_release(api->db, c);
}

void wd_api_audit(wd_api *api, PGconn *c, wd_http_req *r, const char *action,
                  const char *target_type, const char *target_id, json_t *metadata)
{
    const wd_principal *p = r ? wd_api_principal(r) : NULL;
    char *meta = metadata ? json_dumps(metadata, JSON_COMPACT) : NULL;
    json_decref(metadata);
    const char *ip = r ? wd_http_remote_ip(r) : NULL;
    const char *params[] = {
        p && p->user_id[0] ? p->user_id : NULL,
        p ? p->username : (r ? "anonymous" : "system"),
        p && p->key_id[0] ? p->key_id : NULL,
        ip && *ip ? ip : NULL,
        action,
        target_type,
        target_id,
        meta ? meta : "{}",
        r ? wd_http_request_id(r) : NULL,
    };
    wd_status st = wd_db_exec(c,
                              "INSERT INTO audit_log (actor_user_id, actor_label, "
                              "actor_api_key_id, ip, action, target_type, target_id, metadata, "
                              "request_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9)",
                              9, params, NULL);
    if (st != WD_OK)
        wd_error("audit %s: %s", action, wd_err_msg());
    free(meta);
}

/* ---- lists ----------------------------------------------------------------- */

bool wd_api_page(wd_http_req *r, const char *const *sortable, void *page_out, char limit[16],
                 char offset[24])
{
    wd_page *pg = page_out;
    if (wd_input_page(wd_http_query(r, "per_page"), wd_http_query(r, "page"),
                      wd_http_query(r, "sort"), sortable, pg) != WD_OK) {
        wd_http_reply_status(r, WD_ERR_INVALID);
        return false;
    }
    snprintf(limit, 16, "%d", pg->limit);
    snprintf(offset, 24, "%lld", (long long)(pg->page - 1) * pg->limit);
    return true;
}

bool wd_api_search(wd_http_req *r, char *out, size_t n, const char **pattern)
{
    const char *q = wd_http_query(r, "search");
    *pattern = NULL;
    if (q == NULL)
        return true;
    if (strlen(q) > 100) {
        wd_http_reply_error(r, 400, "invalid_argument", "search is longer than 100 bytes", NULL);
        return false;
    }
    size_t k = 0;
    out[k++] = '%';
    for (const char *c = q; *c && k < n - 3; c++) {
        if (*c == '%' || *c == '_' || *c == '\\')
            out[k++] = '\\';
        out[k++] = *c;
    }
    out[k++] = '%';
    out[k] = '\0';
    *pattern = out;
    return true;
}

void wd_api_list(wd_api *api, wd_http_req *r, const char *sql, int nparams,
                 const char *const *params, int page, int per_page,
                 json_t *(*row_fn)(PGresult *res, int row))
{
    PGconn *c = wd_api_db(api, r);
    if (c == NULL)
        return;
    PGresult *res = NULL;
    wd_status st = wd_db_exec(c, sql, nparams, params, &res);
    wd_api_db_release(api, c);
    if (st != WD_OK) {
        wd_http_reply_status(r, st);
        return;
    }
    json_t *items = json_array();
    int n = PQntuples(res);
    for (int i = 0; i < n; i++)
        json_array_append_new(items, row_fn(res, i));
    long long total = n ? strtoll(PQgetvalue(res, 0, PQnfields(res) - 1), NULL, 10) : 0;
    PQclear(res);
    wd_http_reply_json(r, 200,
                       json_pack("{s:o, s:{s:i, s:i, s:I}}", "data", items, "pagination", "page",
                                 page, "per_page", per_page, "total", (json_int_t)total));
}

/* ---- authentication and authorization ----------------------------------- */

static void free_principal(void *p)
{
    free(p);
}

const wd_principal *wd_api_principal(wd_http_req *r)
{
    return wd_http_user(r);
}

static bool unauthenticated(wd_http_req *r, const char *msg)
{
    wd_http_set_header(r, "WWW-Authenticate", "Bearer");
    wd_http_reply_error(r, 401, "unauthenticated", msg, NULL);
    return false;
}

/* Bearer JWT: signature, claims, then the session must still be live. */
static bool authenticate(wd_api *api, wd_http_req *r, wd_principal *p)
{
    const char *auth = wd_http_header(r, "Authorization");
    if (auth == NULL)
        return unauthenticated(r, "authentication required: send Authorization: Bearer <token>");
    if (strncmp(auth, "Bearer ", 7) != 0)
        return unauthenticated(r, "the Authorization header must be 'Bearer <token>'");
    if (strncmp(auth + 7, "wdk_", 4) == 0) { /* an API key */
        wd_status kst = wd_apikey_authenticate(api, auth + 7, p);
        if (kst == WD_ERR_DENIED)
            return unauthenticated(r, wd_err_msg());
        if (kst != WD_OK)
            wd_http_reply_status(r, kst);
        return kst == WD_OK;
    }
    wd_jwt_claims c;
    if (wd_jwt_verify(api->keys, auth + 7, time(NULL), api->cfg.issuer, api->cfg.issuer, &c) !=
        WD_OK)
        return unauthenticated(r, wd_err_msg());
    PGconn *db = wd_api_db(api, r);
    if (db == NULL)
        return false;
    const char *params[] = {c.sub, c.sid};
    PGresult *res = NULL;
    wd_status st = wd_db_exec(db,
                              "SELECT u.username, u.role FROM users u "
                              "JOIN refresh_families f ON f.user_id = u.id "
                              "WHERE u.id = $1 AND f.id = $2 AND NOT u.disabled "
                              "AND f.revoked_at IS NULL",
                              2, params, &res);
    wd_api_db_release(api, db);
    if (st != WD_OK || PQntuples(res) != 1) {
        PQclear(res);
        if (st != WD_OK && st != WD_ERR_INVALID) {
            wd_http_reply_status(r, st);
            return false;
        }
        return unauthenticated(r, "the session has ended: log in again");
    }
    snprintf(p->user_id, sizeof p->user_id, "%s", c.sub);
    snprintf(p->sid, sizeof p->sid, "%s", c.sid);
    snprintf(p->username, sizeof p->username, "%s", PQgetvalue(res, 0, 0));
    snprintf(p->role, sizeof p->role, "%s", PQgetvalue(res, 0, 1));
    PQclear(res);
    return true;
}

/* What the caller holds on one server: the role, ownership, a subuser's
 * grants and an API key's scopes, from one query. */
typedef struct {
    bool admin, owner;
    char grants_text[2048];
    const char *grants[64];
    size_t n;
    char scopes_text[512];
    const char *scopes[64];
    size_t ns;
    bool restricted; /* the key's scopes name server permissions */
    char node_id[40];
} access_ctx;

static size_t split_words(char *text, const char **out, size_t max)
{
    size_t n = 0;
    for (char *g = text, *next; g && *g && n < max; g = next) {
        next = strchr(g, ' ');
        if (next)
            *next++ = '\0';
        out[n++] = g;
    }
    return n;
}

static wd_status load_access(wd_api *api, wd_http_req *r, const char *server_id, access_ctx *a)
{
    const wd_principal *p = wd_api_principal(r);
    memset(a, 0, sizeof *a);
    if (!wd_uuid_valid(server_id))
        return WD_ERR(WD_ERR_INVALID, "server id must be a UUID");
    PGconn *c = NULL;
    wd_status st = wd_db_acquire(api->db, &c);
    if (st != WD_OK)
        return st;
    const char *params[] = {server_id, p->user_id};
    PGresult *res = NULL;
    st = wd_db_exec(c,
                    "SELECT s.owner_id = $2, "
                    "(SELECT array_to_string(permissions, ' ') FROM subusers "
                    " WHERE server_id = s.id AND user_id = $2), s.node_id "
                    "FROM servers s WHERE s.id = $1",
                    2, params, &res);
    wd_db_release(api->db, c);
    if (st != WD_OK) {
        PQclear(res);
        return st;
    }
    a->admin = strcmp(p->role, "admin") == 0;
    bool exists = PQntuples(res) == 1;
    a->owner = exists && *PQgetvalue(res, 0, 0) == 't';
    bool subuser = exists && !PQgetisnull(res, 0, 1);
    if (!exists || !(a->admin || a->owner || subuser)) {
        PQclear(res);
        /* Servers you cannot see do not exist, as far as you can tell. */
        return WD_ERR(WD_ERR_NOT_FOUND, "server %s not found", server_id);
    }
    snprintf(a->node_id, sizeof a->node_id, "%s", PQgetvalue(res, 0, 2));
    if (subuser) {
        snprintf(a->grants_text, sizeof a->grants_text, "%s", PQgetvalue(res, 0, 1));
        a->n = split_words(a->grants_text, a->grants, 64);
    }
    PQclear(res);
    /* An API key whose scopes name server permissions may use only those,
     * whatever its owner could do. */
    if (p->key_id[0] && p->scopes[0]) {
        snprintf(a->scopes_text, sizeof a->scopes_text, "%s", p->scopes);
        a->ns = split_words(a->scopes_text, a->scopes, 64);
        for (size_t i = 0; i < a->ns; i++)
            a->restricted |= wd_perm_valid(a->scopes[i]);
    }
    return WD_OK;
}

/* WD_OK when the context grants perm, else WD_ERR_DENIED saying why. */
static wd_status access_allows(const access_ctx *a, const char *perm)
{
    if (a->restricted && !wd_perm_granted(a->scopes, a->ns, perm))
        return WD_ERR(WD_ERR_DENIED, "this API key's scopes do not include %s", perm);
    if (a->admin || a->owner || wd_perm_granted(a->grants, a->n, perm))
        return WD_OK;
    return WD_ERR(WD_ERR_DENIED, "you need the %s permission on this server", perm);
}

wd_status wd_api_server_access(wd_api *api, wd_http_req *r, const char *server_id,
                               const char *perm)
{
    access_ctx a;
    wd_status st = load_access(api, r, server_id, &a);
    if (st != WD_OK || perm == NULL)
        return st;
    return access_allows(&a, perm);
}

wd_status wd_api_server_perms(wd_api *api, wd_http_req *r, const char *server_id,
                              const char **perms, size_t cap, size_t *n, char node_id[40])
{
    access_ctx a;
    *n = 0;
    wd_status st = load_access(api, r, server_id, &a);
    if (st != WD_OK)
        return st;
    snprintf(node_id, 40, "%s", a.node_id);
    for (const wd_perm_info *pi = wd_perm_all(); pi->name && *n < cap; pi++)
        if (access_allows(&a, pi->name) == WD_OK)
            perms[(*n)++] = pi->name;
    return WD_OK;
}

/* Permissions of a route: NULL public, "user" any authenticated caller,
 * "admin" the admin role, "server" any access to the server named by the
 * {id} parameter, or a server permission string ("control.console"). */
static bool authorize(wd_http_req *r, const wd_route *route, void *ud)
{
    wd_api *api = ud;
    if (route->permission == NULL)
        return true;
    wd_principal *p = calloc(1, sizeof *p);
    if (p == NULL) {
        wd_http_reply_error(r, 500, "internal", "out of memory", NULL);
        return false;
    }
    if (!authenticate(api, r, p)) {
        free(p);
        return false;
    }
    wd_http_set_user(r, p, free_principal);
    int retry = 1;
    if (!wd_limiter_take(api->api_limit, p->user_id, wd_mono_ms(), &retry)) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", retry);
        wd_http_set_header(r, "Retry-After", ra);
        wd_http_reply_error(r, 429, "rate_limited", "too many requests; slow down", NULL);
        return false;
    }
    if (strcmp(route->permission, "admin") == 0 && strcmp(p->role, "admin") != 0) {
        wd_http_reply_error(r, 403, "forbidden", "this needs the admin role", NULL);
        return false;
    }
    if (strcmp(route->permission, "server") == 0 || wd_perm_valid(route->permission)) {
        const char *perm = strcmp(route->permission, "server") == 0 ? NULL : route->permission;
        wd_status st = wd_api_server_access(api, r, wd_http_param(r, "id"), perm);
        if (st != WD_OK) {
            wd_http_reply_status(r, st);
            return false;
        }
    }
    return true;
}

json_t *wd_api_input(wd_http_req *r, const wd_field *fields, size_t n, bool allow_empty)
{
    size_t len = 0;
    wd_http_body(r, &len);
    if (len == 0 && allow_empty)
        return json_object();
    json_t *in = wd_http_json_body(r);
    if (in == NULL)
        return NULL;
    json_t *details = NULL;
    if (wd_input_check(in, fields, n, &details) != WD_OK) {
        wd_http_reply_error(r, 400, "invalid_argument", wd_err_msg(), details);
        json_decref(in);
        return NULL;
    }
    return in;
}

bool wd_api_uuid_param(wd_http_req *r, const char *name, const char *what, const char **out)
{
    *out = wd_http_param(r, name);
    if (wd_uuid_valid(*out))
        return true;
    char msg[96];
    snprintf(msg, sizeof msg, "%s must be a UUID", what);
    wd_http_reply_error(r, 400, "invalid_argument", msg, NULL);
    return false;
}

void wd_api_delete_unused(wd_api *api, wd_http_req *r, const char *table, const char *column,
                          const char *what, const char *id, const char *action)
{
    char check[256], del[128];
    snprintf(check, sizeof check,
             "SELECT (SELECT count(*) FROM servers WHERE %s = $1), "
             "EXISTS (SELECT 1 FROM %s WHERE id = $1)",
             column, table);
    snprintf(del, sizeof del, "DELETE FROM %s WHERE id = $1", table);
    PGconn *c = wd_api_db(api, r);
    if (c == NULL)
        return;
    const char *params[] = {id};
    PGresult *res = NULL;
    wd_status st = wd_db_exec(c, check, 1, params, &res);
    if (st == WD_OK && *PQgetvalue(res, 0, 1) != 't')
        st = WD_ERR(WD_ERR_NOT_FOUND, "%s %s not found", what, id);
    else if (st == WD_OK && strcmp(PQgetvalue(res, 0, 0), "0") != 0)
        st = WD_ERR(WD_ERR_STATE, "%s is used by %s server(s): move or delete them first", what,
                    PQgetvalue(res, 0, 0));
    PQclear(res);
    if (st == WD_OK)
        st = wd_db_exec(c, del, 1, params, NULL);
    if (st == WD_OK)
        wd_api_audit(api, c, r, action, what, id, NULL);
    wd_api_db_release(api, c);
    if (st != WD_OK)
        wd_http_reply_status(r, st);
    else
        wd_http_reply_json(r, 204, NULL);
}

/* ---- operations --------------------------------------------------------- */

extern const char wd_openapi_json[];
extern const size_t wd_openapi_json_len;

void wd_api_readyz(wd_http_req *r, void *ud)
{
    wd_api *api = ud;
    bool db_ok = wd_db_ping(api->db) == WD_OK;
    const char *nats = api->bus == NULL ? "not configured"
                       : wd_bus_connected(api->bus) ? "ok"
                                                    : "unreachable";
    bool ok = db_ok && strcmp(nats, "unreachable") != 0;
    wd_http_reply_json(r, ok ? 200 : 503,
                       json_pack("{s:s, s:s, s:s}", "status", ok ? "ready" : "not_ready",
                                 "database", db_ok ? "ok" : "unreachable", "nats", nats));
}

void wd_api_metrics(wd_http_req *r, void *ud)
{
    wd_api *api = ud;
    wd_db_stats ds;
    wd_db_stats_get(api->db, &ds);
    char extra[1024];
    snprintf(extra, sizeof extra,
             "# TYPE warden_db_pool_size gauge\nwarden_db_pool_size %d\n"
             "# TYPE warden_db_pool_in_use gauge\nwarden_db_pool_in_use %d\n"
             "# TYPE warden_db_pool_open gauge\nwarden_db_pool_open %d\n"
             "# TYPE warden_db_acquires_total counter\nwarden_db_acquires_total %llu\n"
             "# TYPE warden_db_acquire_waits_total counter\nwarden_db_acquire_waits_total %llu\n"
             "# TYPE warden_db_acquire_timeouts_total counter\n"
             "warden_db_acquire_timeouts_total %llu\n"
             "# TYPE warden_db_reconnects_total counter\nwarden_db_reconnects_total %llu\n"
             "# TYPE warden_nats_connected gauge\nwarden_nats_connected %d\n",
             ds.size, ds.in_use, ds.open, (unsigned long long)ds.acquires,
             (unsigned long long)ds.waits, (unsigned long long)ds.timeouts,
             (unsigned long long)ds.reconnects, api->bus && wd_bus_connected(api->bus) ? 1 : 0);
    char *text = wd_metrics_render(api->metrics, extra);
    if (text == NULL) {
        wd_http_reply_error(r, 500, "internal", "out of memory", NULL);
        return;
    }
    wd_http_reply_raw(r, 200, "text/plain; version=0.0.4", text, strlen(text));
    free(text);
}

void wd_api_openapi(wd_http_req *r, void *ud)
{
    wd_http_reply_raw(r, 200, "application/json", wd_openapi_json, wd_openapi_json_len);
}

static void on_completed(const wd_route *route, const char *method, int status, int64_t usec,
                         void *ud)
{
    wd_api *api = ud;
    wd_metrics_observe(api->metrics, route, status, usec);
}

/* ---- users --------------------------------------------------------------- */

wd_status wd_api_create_user(wd_api *api, const char *username, const char *email,
                             const char *role, const char *password, char *generated,
                             size_t generated_len, char *id_out)
{
    char pw[64];
    if (password == NULL) {
        /* 24 random characters, shown once. */
        char tok[64];
        wd_status st = wd_token_new("", tok, sizeof tok);
        if (st != WD_OK)
            return st;
        snprintf(pw, sizeof pw, "%.24s", tok);
        password = pw;
        if (generated)
            snprintf(generated, generated_len, "%s", pw);
    }
    char hash[128];
    wd_status st = wd_password_hash(password, (int)api->cfg.bcrypt_cost, hash, sizeof hash);
    if (st != WD_OK)
        return st;
    char user[72], mail[256];
    snprintf(user, sizeof user, "%s", username);
    snprintf(mail, sizeof mail, "%s", email);
    for (char *c = user; *c; c++)
        *c = (char)((*c >= 'A' && *c <= 'Z') ? *c + 32 : *c);
    for (char *c = mail; *c; c++)
        *c = (char)((*c >= 'A' && *c <= 'Z') ? *c + 32 : *c);
    PGconn *c = NULL;
    if ((st = wd_db_acquire(api->db, &c)) != WD_OK)
        return st;
    const char *params[] = {user, mail, hash, role};
    PGresult *res = NULL;
    st = wd_db_exec(c,
                    "INSERT INTO users (username, email, password_hash, role) "
                    "VALUES ($1, $2, $3, $4) RETURNING id",
                    4, params, &res);
    if (st == WD_OK) {
        if (id_out)
            snprintf(id_out, 40, "%s", PQgetvalue(res, 0, 0));
        json_t *meta = json_pack("{s:s, s:s}", "username", user, "role", role);
        wd_api_audit(api, c, NULL, "user.create", "user", PQgetvalue(res, 0, 0), meta);
    } else if (st == WD_ERR_EXISTS) {
        st = WD_ERR(WD_ERR_EXISTS, "a user with that username or email exists already");
    } else if (st == WD_ERR_INVALID) {
        st = WD_ERR(WD_ERR_INVALID, "invalid username (a-z, 0-9, _ . -; up to 64) or email");
    }
    PQclear(res);
    wd_db_release(api->db, c);
    return st;
}

wd_status wd_api_bootstrap_admin(wd_api *api, const char *username, const char *email,
                                 const char *password, char *generated, size_t generated_len,
                                 char *id_out)
{
    id_out[0] = '\0';
    PGconn *c = NULL;
    wd_status st = wd_db_acquire(api->db, &c);
    if (st != WD_OK)
        return st;
    PGresult *res = NULL;
    st = wd_db_exec(c, "SELECT count(*) FROM users WHERE role = 'admin'", 0, NULL, &res);
    bool none = st == WD_OK && strcmp(PQgetvalue(res, 0, 0), "0") == 0;
    PQclear(res);
    wd_db_release(api->db, c);
    if (st != WD_OK || !none)
        return st;
    return wd_api_create_user(api, username, email, "admin", password, generated, generated_len,
                              id_out);
}

/* ---- lifecycle ------------------------------------------------------------ */

wd_status wd_api_create(wd_api **out, const wd_api_cfg *cfg)
{
    wd_api *api = calloc(1, sizeof *api);
    if (api == NULL)
        return WD_ERR(WD_ERR_NOMEM, "out of memory");
    api->cfg = *cfg;
    if (api->cfg.issuer == NULL)
        api->cfg.issuer = (char *)"warden";
    wd_status st;
    wd_db_cfg dc = wd_db_cfg_defaults();
    dc.conninfo = cfg->database_url;
    dc.size = (int)(cfg->db_pool > 0 ? cfg->db_pool : 8);
    if ((st = load_jwt_keys(api)) != WD_OK || (st = load_secretbox(api)) != WD_OK ||
        (st = load_ws_key(api)) != WD_OK ||
        (st = wd_db_create(&api->db, &dc)) != WD_OK ||
        (st = wd_limiter_create(&api->api_limit, (double)(cfg->api_rate > 0 ? cfg->api_rate : 50),
                                (double)(cfg->api_burst > 0 ? cfg->api_burst : 100), 65536)) !=
            WD_OK ||
        (st = wd_backoff_create(&api->login_user, 5, 1, 900, 65536)) != WD_OK ||
        (st = wd_backoff_create(&api->login_ip, 20, 1, 900, 65536)) != WD_OK) {
        wd_api_destroy(&api);
        return st;
    }
    /* Node credentials: both settings or neither. */
    bool acct = cfg->nats_account && *cfg->nats_account;
    bool skey = cfg->nats_signing_key && *cfg->nats_signing_key;
    if (acct != skey) {
        wd_api_destroy(&api);
        return WD_ERR(WD_ERR_INVALID, "set both --nats-account and --nats-signing-key (see "
                      "api.env from `warden-api nats init`), or neither for an open bus");
    }
    if (acct && (st = wd_natsauth_load(cfg->nats_account, cfg->nats_signing_key,
                                       &api->nauth)) != WD_OK) {
        wd_api_destroy(&api);
        return st;
    }
    *out = api;
    return WD_OK;
}

wd_status wd_api_start(wd_api *api)
{
    PGconn *c = NULL;
    wd_status st = wd_db_acquire(api->db, &c);
    if (st != WD_OK)
        return WD_ERR(st, "cannot reach the database: %s (check WARDEN_DATABASE_URL)",
                      wd_err_msg());
    int applied = 0;
    st = wd_migrate(c, &applied);
    wd_db_release(api->db, c);
    if (st != WD_OK)
        return st;
    if (applied)
        wd_info("database schema: applied %d migration(s), now at version %d", applied,
                wd_migrate_latest());
    if (api->cfg.nats_url && *api->cfg.nats_url) {
        wd_bus_cfg bc = wd_bus_cfg_defaults();
        bc.servers = api->cfg.nats_url;
        bc.name = "warden-api";
        bc.creds_file = api->cfg.nats_creds && *api->cfg.nats_creds ? api->cfg.nats_creds : NULL;
        bc.tls_ca = api->cfg.nats_tls_ca && *api->cfg.nats_tls_ca ? api->cfg.nats_tls_ca : NULL;
        bc.tls_cert =
            api->cfg.nats_tls_cert && *api->cfg.nats_tls_cert ? api->cfg.nats_tls_cert : NULL;
        bc.tls_key = api->cfg.nats_tls_key && *api->cfg.nats_tls_key ? api->cfg.nats_tls_key : NULL;
        bc.wait_for_server = true;
        if ((st = wd_bus_connect(&api->bus, &bc)) != WD_OK)
            return st;
        if ((st = wd_fleet_start(api)) != WD_OK)
            return st;
    }
    size_t nroutes = 0;
    wd_http_cfg hc = wd_http_cfg_defaults();
    hc.bind = api->cfg.listen ? api->cfg.listen : "127.0.0.1";
    hc.port = (int)api->cfg.port;
    hc.workers = (int)(api->cfg.workers > 0 ? api->cfg.workers : 16);
    hc.routes = wd_api_routes(&nroutes);
    hc.static_dir = api->cfg.web_dir && *api->cfg.web_dir ? api->cfg.web_dir : NULL;
    if (hc.static_dir && access(hc.static_dir, R_OK | X_OK) != 0)
        wd_warn("--web-dir %s: %s: the web panel is not served (build it with make, or "
                "npm run build in web/)",
                hc.static_dir, strerror(errno));
    hc.nroutes = nroutes;
    hc.ud = api;
    hc.authorize = authorize;
    hc.completed = on_completed;
    if ((st = wd_metrics_create(&api->metrics, hc.routes, nroutes)) != WD_OK)
        return st;
    if ((st = wd_http_start(&api->http, &hc)) != WD_OK)
        return st;
    wd_info("warden-api listening on http://%s:%d/api/v1/", hc.bind, wd_http_port(api->http));
    return WD_OK;
}

int wd_api_port(const wd_api *api)
{
    return api->http ? wd_http_port(api->http) : 0;
}

const wd_api_cfg *wd_api_config(const wd_api *api)
{
    return &api->cfg;
}

void wd_api_destroy(wd_api **pa)
{
    if (pa == NULL || *pa == NULL)
        return;
    wd_api *api = *pa;
    *pa = NULL;
    wd_http_stop(&api->http);
    wd_fleet_stop(api);
    wd_bus_destroy(&api->bus);
    wd_db_destroy(&api->db);
    wd_jwt_keyring_destroy(&api->keys);
    wd_limiter_destroy(&api->api_limit);
    wd_backoff_destroy(&api->login_user);
    wd_backoff_destroy(&api->login_ip);
    wd_metrics_destroy(&api->metrics);
    wd_secretbox_destroy(&api->box);
    wd_natsauth_free(&api->nauth);
    wd_wstoken_keys_destroy(&api->ws_keys);
    free(api);
}
