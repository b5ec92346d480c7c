/* Route handlers for API keys (apikeys.c), user administration (users.c),
 * subusers of a server (subusers.c) and the audit log (audit.c), plus the
 * API-key authenticator the authorize hook calls for "wdk_" bearer tokens.
 *
 * Handlers run on HTTP worker threads (they block on PostgreSQL) and get the
 * wd_api context as ud; each replies exactly once. */
#ifndef WD_ADMIN_ROUTES_H
#define WD_ADMIN_ROUTES_H

#include <jansson.h>
#include <libpq-fe.h>

#include "app.h"

/* Authenticates an API key ("wdk_..."): its hash is known, it is not
 * revoked or expired, and its owner is not disabled. Fills p (sid ""; role
 * "admin" only when the owner is an admin AND the key has the "admin"
 * scope). Touches last_used_at at most once a minute. WD_ERR_DENIED for any
 * key that does not authenticate; WD_ERR_UNAVAILABLE/TIMEOUT when the
 * database cannot be asked. Thread-safe; blocks on the database. */
wd_status wd_apikey_authenticate(wd_api *api, const char *key, wd_principal *p);

/* An audit row that names the server it concerns (so it appears in that
 * server's activity). Best effort, like wd_api_audit; takes metadata. */
void wd_audit_server(wd_api *api, PGconn *c, wd_http_req *r, const char *action,
                     const char *target_type, const char *target_id, const char *server_id,
                     json_t *metadata);

/* apikeys.c: the caller's own keys. */
void wd_apikeys_create(wd_http_req *r, void *ud);
void wd_apikeys_list(wd_http_req *r, void *ud);
void wd_apikeys_delete(wd_http_req *r, void *ud);

/* users.c (admin). */
void wd_users_list(wd_http_req *r, void *ud);
void wd_users_create(wd_http_req *r, void *ud);
void wd_users_get(wd_http_req *r, void *ud);
void wd_users_update(wd_http_req *r, void *ud);
void wd_users_delete(wd_http_req *r, void *ud);

/* subusers.c: /servers/{id}/users. */
void wd_subusers_list(wd_http_req *r, void *ud);
void wd_subusers_create(wd_http_req *r, void *ud);
void wd_subusers_update(wd_http_req *r, void *ud);
void wd_subusers_delete(wd_http_req *r, void *ud);

/* audit.c. */
void wd_audit_list(wd_http_req *r, void *ud);
void wd_audit_server_activity(wd_http_req *r, void *ud);

/* Timestamps in responses: ISO 8601 UTC, seconds. */
#define WD_SQL_TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

#endif
