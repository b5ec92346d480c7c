/* Internals of the API context shared by its modules (app.c, auth.c). */
#ifndef WD_APP_INT_H
#define WD_APP_INT_H

#include "actor.h"
#include "app.h"
#include "input.h"
#include "bus.h"
#include "db.h"
#include "jwt.h"
#include "limiter.h"
#include "metrics.h"
#include "secretbox.h"

struct wd_api {
    wd_api_cfg cfg;
    wd_db *db;
    wd_bus *bus;
    wd_http *http;
    wd_jwt_keyring *keys;
    wd_limiter *api_limit;
    wd_backoff *login_user; /* failed logins per account */
    wd_backoff *login_ip;   /* failed logins per address */
    wd_metrics *metrics;
    /* fleet.c: the node registry actor and its subscriptions */
    wd_runtime *rt;
    wd_actor *fleet;
    natsSubscription *sub_join, *sub_heartbeat, *sub_state, *sub_stats, *sub_hello;
    bool js_ready;
    wd_secretbox *box; /* secrets at rest (secret variables, TOTP seeds) */
    struct stats_cache *stats;
    struct wd_natsauth *nauth; /* NULL: the bus is open (no credentials minted) */
    struct wd_wstoken_keys *ws_keys; /* signs gateway tokens (panel-ws/token.h) */
};

/* Latest ServerStats per server, from the bus (fleet.c). Copies the packed
 * message into buf (up to cap bytes); false when none is known. */
bool wd_fleet_latest_stats(wd_api *api, const char *server_id, uint8_t *buf, size_t cap,
                           size_t *len, int64_t *age_ms);

/* The caller's access to a server: admin, owner, or a subuser's grants.
 * WD_ERR_NOT_FOUND when the server does not exist or is invisible to the
 * caller; WD_ERR_DENIED when visible but `perm` is not granted (perm NULL:
 * any access). */
wd_status wd_api_server_access(wd_api *api, wd_http_req *r, const char *server_id,
                               const char *perm);

/* Every server permission the caller holds on server_id (static strings
 * from the catalogue, at most cap), and the node the server is on. Errors
 * as wd_api_server_access. */
wd_status wd_api_server_perms(wd_api *api, wd_http_req *r, const char *server_id,
                              const char **perms, size_t cap, size_t *n, char node_id[40]);

/* Tells every component on the bus that a user's session(s) ended
 * (sid NULL: all of them) or that a user lost access to a server:
 * PanelEvent SESSION_REVOKED / SUBUSER_REMOVED on warden.panel.events.*,
 * which the gateway acts on at once (closing affected sockets). Best
 * effort: without a bus it does nothing. */
void wd_api_announce_revoked(wd_api *api, const char *user_id, const char *sid);
void wd_api_announce_subuser_removed(wd_api *api, const char *user_id, const char *server_id);

/* The request's JSON body checked against fields (input.h): NULL after a
 * 400 reply with the error shape (malformed JSON, wrong types, unknown
 * fields...). An empty body counts as {} when allow_empty. */
json_t *wd_api_input(wd_http_req *r, const wd_field *fields, size_t n, bool allow_empty);

/* The path parameter `name` when it is a UUID (*out); else false after a
 * 400 reply saying "<what> must be a UUID". */
bool wd_api_uuid_param(wd_http_req *r, const char *name, const char *what, const char **out);

/* DELETE of a row servers refer to (a node, a template): 404 when table
 * has no row id, 409 while servers.<column> = id, else deleted, audited as
 * action, 204. table and column are SQL identifiers from our code. */
void wd_api_delete_unused(wd_api *api, wd_http_req *r, const char *table, const char *column,
                          const char *what, const char *id, const char *action);

wd_status wd_fleet_start(wd_api *api);
void wd_fleet_stop(wd_api *api);

/* Issues an access JWT for a user and session. */
wd_status wd_api_issue_access(wd_api *api, const char *user_id, const char *role,
                              const char *sid, char **token);

#endif
