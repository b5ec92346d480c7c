/* The route table: every endpoint of /api/v1 with the permission it needs.
 * (A test walks this table: every non-public route answers 401 without
 * credentials.) docs/api.md documents each route. */
#include <stddef.h>

#include "account.h"
#include "admin_routes.h"
#include "app.h"

static void healthz(wd_http_req *r, void *ud)
{
    wd_http_reply_json(r, 200, json_pack("{s:s}", "status", "ok"));
}

static const wd_route routes[] = {
    {"GET", "/healthz", NULL, healthz},
    {"GET", "/readyz", NULL, wd_api_readyz},
    {"GET", "/metrics", NULL, wd_api_metrics},
    {"GET", "/api/v1/openapi.json", NULL, wd_api_openapi},
    {"POST", "/api/v1/auth/login", NULL, wd_auth_login},
    {"POST", "/api/v1/auth/refresh", NULL, wd_auth_refresh},
    {"POST", "/api/v1/auth/logout", "user", wd_auth_logout},
    {"GET", "/api/v1/me", "user", wd_auth_me},
    /* --- account security (2FA, password) --- */
    {"POST", "/api/v1/me/totp", "user", wd_account_totp_enrol},
    {"POST", "/api/v1/me/totp/confirm", "user", wd_account_totp_confirm},
    {"DELETE", "/api/v1/me/totp", "user", wd_account_totp_disable},
    {"POST", "/api/v1/me/password", "user", wd_account_password_change},
    /* --- end account security --- */
    /* --- API keys, users, subusers, audit --- */
    {"GET", "/api/v1/me/api-keys", "user", wd_apikeys_list},
    {"POST", "/api/v1/me/api-keys", "user", wd_apikeys_create},
    {"DELETE", "/api/v1/me/api-keys/{id}", "user", wd_apikeys_delete},
    {"GET", "/api/v1/users", "admin", wd_users_list},
    {"POST", "/api/v1/users", "admin", wd_users_create},
    {"GET", "/api/v1/users/{id}", "admin", wd_users_get},
    {"PATCH", "/api/v1/users/{id}", "admin", wd_users_update},
    {"DELETE", "/api/v1/users/{id}", "admin", wd_users_delete},
    {"GET", "/api/v1/servers/{id}/users", "user.read", wd_subusers_list},
    {"POST", "/api/v1/servers/{id}/users", "user.create", wd_subusers_create},
    {"PATCH", "/api/v1/servers/{id}/users/{user}", "user.update", wd_subusers_update},
    {"DELETE", "/api/v1/servers/{id}/users/{user}", "user.delete", wd_subusers_delete},
    {"GET", "/api/v1/audit", "admin", wd_audit_list},
    {"GET", "/api/v1/servers/{id}/activity", "activity.read", wd_audit_server_activity},
    /* --- end API keys, users, subusers, audit --- */
    {"GET", "/api/v1/nodes", "admin", wd_nodes_list},
    {"POST", "/api/v1/nodes", "admin", wd_nodes_create},
    {"GET", "/api/v1/nodes/{id}", "admin", wd_nodes_get},
    {"PATCH", "/api/v1/nodes/{id}", "admin", wd_nodes_update},
    {"DELETE", "/api/v1/nodes/{id}", "admin", wd_nodes_delete},
    {"POST", "/api/v1/nodes/{id}/join-token", "admin", wd_nodes_join_token},
    {"GET", "/api/v1/nodes/{id}/allocations", "admin", wd_allocations_list},
    {"POST", "/api/v1/nodes/{id}/allocations", "admin", wd_allocations_create},
    {"DELETE", "/api/v1/nodes/{id}/allocations/{alloc}", "admin", wd_allocations_delete},
    {"GET", "/api/v1/servers", "user", wd_servers_list},
    {"POST", "/api/v1/servers", "admin", wd_servers_create},
    {"GET", "/api/v1/servers/{id}", "server", wd_servers_get},
    {"PATCH", "/api/v1/servers/{id}", "admin", wd_servers_update},
    {"DELETE", "/api/v1/servers/{id}", "admin", wd_servers_delete},
    {"POST", "/api/v1/servers/{id}/install", "settings.reinstall", wd_servers_install},
    /* power checks the permission of its action (control.start, ...) itself:
     * one access query instead of a visibility check and then another. */
    {"POST", "/api/v1/servers/{id}/power", "user", wd_servers_power},
    {"POST", "/api/v1/servers/{id}/command", "control.console", wd_servers_command},
    {"GET", "/api/v1/servers/{id}/resources", "server", wd_servers_resources},
    {"GET", "/api/v1/servers/{id}/websocket", "websocket.connect", wd_servers_websocket},
    {"GET", "/api/v1/servers/{id}/startup", "startup.read", wd_servers_startup_get},
    {"PATCH", "/api/v1/servers/{id}/startup", "startup.update", wd_servers_startup_update},
    {"GET", "/api/v1/templates", "user", wd_templates_list},
    {"POST", "/api/v1/templates", "admin", wd_templates_create},
    {"GET", "/api/v1/templates/{id}", "user", wd_templates_get},
    {"PUT", "/api/v1/templates/{id}", "admin", wd_templates_replace},
    {"DELETE", "/api/v1/templates/{id}", "admin", wd_templates_delete},
};

const wd_route *wd_api_routes(size_t *n);
const wd_route *wd_api_routes(size_t *n)
{
    *n = sizeof routes / sizeof routes[0];
    return routes;
}
