/* warden-api's application context: configuration, the database pool, the
 * bus, the token keyring, limiters, and the HTTP server with its routes.
 *
 * main.c parses settings into wd_api_cfg and calls wd_api_create/start;
 * tests do the same with a throwaway PostgreSQL and nats-server. Handlers
 * (auth.c, ...) get the context as their ud. Lifecycle functions are called
 * from one thread; everything else is thread-safe. */
#ifndef WD_APP_H
#define WD_APP_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>

#include "http.h"
#include "status.h"

typedef struct {
    char *listen;        /* address, default 127.0.0.1 */
    long port;           /* 0: any free port */
    char *database_url;  /* libpq conninfo or URI */
    char *nats_url;      /* NULL: run without the bus (auth-only tests) */
    char *nats_creds;    /* the API's own NATS .creds (NULL: none) */
    char *nats_tls_ca;   /* TLS to NATS: CA that signed the servers' certificates */
    char *nats_tls_cert, *nats_tls_key; /* client certificate, if NATS asks for one */
    long js_replicas;    /* replicas of Warden's streams and buckets (1, or 3 on a cluster) */
    char *nats_account;  /* with nats_signing_key: mint node credentials */
    char *nats_signing_key; /* file holding the account signing key seed */
    char *ws_key_file;   /* gateway token key (EC P-256 PEM); default DATA_DIR/ws.key */
    char *ws_url;        /* the gateway's public URL, e.g. wss://panel.example/ws */
    long ws_token_ttl_s; /* gateway token lifetime */
    char *web_dir;       /* the web panel's built files, served at / (NULL: none) */
    char *data_dir;      /* keys live here unless given explicitly */
    char *jwt_key_file;  /* "kid:base64secret" lines; created if missing */
    char *issuer;        /* JWT iss and aud */
    long access_ttl_s;
    long refresh_ttl_s;
    long bcrypt_cost;
    long workers;
    long db_pool;
    long api_rate;       /* requests per second per principal */
    long api_burst;
} wd_api_cfg;

typedef struct wd_api wd_api;

/* The authenticated caller, attached to the request by the authorize hook. */
typedef struct {
    char user_id[64];
    char username[72];
    char role[32]; /* "admin" or "user" */
    char sid[64];  /* refresh family of the session ("" for API keys) */
    char key_id[40];   /* the API key used, "" for sessions */
    char scopes[512];  /* the key's scopes, space-separated; "" = all the user's rights */
} wd_principal;

wd_status wd_api_create(wd_api **out, const wd_api_cfg *cfg);
/* Connects, migrates the schema, listens. */
wd_status wd_api_start(wd_api *api);
int wd_api_port(const wd_api *api);
void wd_api_destroy(wd_api **api);

/* Creates a user (role admin or user). password NULL: a random one is
 * generated and returned in generated (>= 25 bytes), to be shown once. */
wd_status wd_api_create_user(wd_api *api, const char *username, const char *email,
                             const char *role, const char *password, char *generated,
                             size_t generated_len, char *id_out);

/* Creates the first admin unless an admin exists already (then id_out is
 * left empty and WD_OK returned). */
wd_status wd_api_bootstrap_admin(wd_api *api, const char *username, const char *email,
                                 const char *password, char *generated, size_t generated_len,
                                 char *id_out);

/* Creates a node (and allocations ip:port_lo..port_hi when ip is given)
 * and its one-time join token (*token_out, heap), for `warden-api node
 * create`. */
wd_status wd_api_create_node(wd_api *api, const char *name, const char *fqdn, long memory_mb,
                             long disk_mb, const char *ip, int port_lo, int port_hi, char *id_out,
                             char **token_out);

/* Imports a template (Warden JSON or a Pterodactyl egg) unless one with
 * its slug exists (then *created is false and nothing changes), for
 * `warden-api template import`. */
wd_status wd_api_import_template(wd_api *api, const char *json, size_t len, char *slug_out,
                                 size_t slug_len, bool *created);

/* ---- for handlers ---- */
const wd_api_cfg *wd_api_config(const wd_api *api);
/* A pooled connection; release it with wd_api_db_release. Replies 503 on
 * failure and returns NULL. */
PGconn *wd_api_db(wd_api *api, wd_http_req *r);
void wd_api_db_release(wd_api *api, PGconn *c);
/* Writes one audit row (best effort: a failure is logged, not fatal). */
void wd_api_audit(wd_api *api, PGconn *c, wd_http_req *r, const char *action,
                  const char *target_type, const char *target_id, json_t *metadata);
const wd_principal *wd_api_principal(wd_http_req *r);

/* Lists: parses page/per_page/sort of r against the sortable columns
 * (replying 400 and returning false on bad values) and gives LIMIT and
 * OFFSET as text parameters. */
bool wd_api_page(wd_http_req *r, const char *const *sortable, void *page_out, char limit[16],
                 char offset[24]);
/* The "search" query value as an ILIKE pattern ("%text%", with % _ \
 * taken literally) into out, or NULL when absent. Replies 400 and returns
 * false when it is longer than 100 bytes. */
bool wd_api_search(wd_http_req *r, char *out, size_t n, const char **pattern);
/* Runs sql, whose last column must be count(*) OVER (), turns each row
 * into JSON with row_fn and replies {"data":[...],"pagination":{...}}. */
void wd_api_list(wd_api *api, wd_http_req *r, const char *sql, int nparams,
                 const char *const *params, int page, int per_page,
                 json_t *(*row_fn)(PGresult *res, int row));

/* Route handlers (app.c: operations). */
void wd_api_readyz(wd_http_req *r, void *ud);
void wd_api_metrics(wd_http_req *r, void *ud);
void wd_api_openapi(wd_http_req *r, void *ud);

/* Route handlers (servers.c). */
void wd_servers_list(wd_http_req *r, void *ud);
void wd_servers_create(wd_http_req *r, void *ud);
void wd_servers_get(wd_http_req *r, void *ud);
void wd_servers_delete(wd_http_req *r, void *ud);
void wd_servers_update(wd_http_req *r, void *ud);
void wd_servers_startup_get(wd_http_req *r, void *ud);
void wd_servers_startup_update(wd_http_req *r, void *ud);
void wd_servers_install(wd_http_req *r, void *ud);
void wd_servers_power(wd_http_req *r, void *ud);
void wd_servers_command(wd_http_req *r, void *ud);
void wd_servers_resources(wd_http_req *r, void *ud);
void wd_servers_websocket(wd_http_req *r, void *ud);

/* Route handlers (templates.c). */
void wd_templates_list(wd_http_req *r, void *ud);
void wd_templates_get(wd_http_req *r, void *ud);
void wd_templates_create(wd_http_req *r, void *ud);
void wd_templates_replace(wd_http_req *r, void *ud);
void wd_templates_delete(wd_http_req *r, void *ud);

/* Route handlers (nodes.c). */
void wd_nodes_list(wd_http_req *r, void *ud);
void wd_nodes_create(wd_http_req *r, void *ud);
void wd_nodes_get(wd_http_req *r, void *ud);
void wd_nodes_update(wd_http_req *r, void *ud);
void wd_nodes_delete(wd_http_req *r, void *ud);
void wd_nodes_join_token(wd_http_req *r, void *ud);
void wd_allocations_create(wd_http_req *r, void *ud);
void wd_allocations_list(wd_http_req *r, void *ud);
void wd_allocations_delete(wd_http_req *r, void *ud);

/* Route handlers (auth.c). */
void wd_auth_login(wd_http_req *r, void *ud);
void wd_auth_refresh(wd_http_req *r, void *ud);
void wd_auth_logout(wd_http_req *r, void *ud);
void wd_auth_me(wd_http_req *r, void *ud);

#endif
