/* warden-api against a real PostgreSQL: API keys (create, list, revoke, a
 * request authenticated with a key), user administration, subusers of a
 * server (who may grant what), and the audit log with its filters.
 *
 * Servers are written straight into the database (a node, an allocation, a
 * template, a server): creating one through the API needs an agent on the
 * bus, which these routes do not. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "api_fixture.h"
#include "bus.h"
#include "perms.h"
#include "warden/v1/events.pb-c.h"
#include "util.h"
#include "wstoken.h"
#include <libpq-fe.h>

static wd_api_fx fx;
#define api (fx.api)
static char alice_id[40], bob_id[40], carol_id[40], dave_id[40], erin_id[40], server_id[40];
static char *alice, *bob, *carol, *dave, *erin; /* access tokens */

#define MISSING "6b1d1f3e-0000-4000-8000-000000000000"

static int call(const char *method, const char *path, const char *token, const char *body,
                json_t **out)
{
    return wd_api_fx_call(&fx, method, path, token, body, out, NULL);
}

static int call_nobody(const char *method, const char *path, const char *token, const char *body)
{
    return call(method, path, token, body, NULL);
}

static const char *str(json_t *j, const char *name)
{
    return json_string_value(json_object_get(j, name));
}

/* First value of a query against the test database, copied into out. */
static bool sql1(const char *query, const char *param, char *out, size_t n)
{
    PGconn *c = PQconnectdb(fx.pg.conninfo);
    const char *params[] = {param};
    PGresult *res = PQexecParams(c, query, param ? 1 : 0, NULL, params, NULL, NULL, 0);
    bool ok = (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0) ||
              PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok)
        fprintf(stderr, "sql: %s: %s\n", query, PQerrorMessage(c));
    if (out)
        snprintf(out, n, "%s", ok && PQntuples(res) > 0 ? PQgetvalue(res, 0, 0) : "");
    PQclear(res);
    PQfinish(c);
    return ok;
}

static char *login(const char *user, const char *password)
{
    char body[256];
    snprintf(body, sizeof body, "{\"username\":\"%s\",\"password\":\"%s\"}", user, password);
    json_t *j = NULL;
    if (call("POST", "/api/v1/auth/login", NULL, body, &j) != 200) {
        json_decref(j);
        return NULL;
    }
    char *t = strdup(str(j, "access_token"));
    json_decref(j);
    return t;
}

static int suite_init(void)
{
    if (!wd_api_fx_start(&fx, "api-admin", true))
        return 1;
    struct {
        const char *name, *role;
        char *id;
        char **token;
    } users[] = {{"alice", "admin", alice_id, &alice},
                 {"bob", "user", bob_id, &bob},
                 {"carol", "user", carol_id, &carol},
                 {"dave", "user", dave_id, &dave},
                 {"erin", "user", erin_id, &erin}};
    for (size_t i = 0; i < sizeof users / sizeof users[0]; i++) {
        char email[64];
        snprintf(email, sizeof email, "%s@example.com", users[i].name);
        if (wd_api_create_user(api, users[i].name, email, users[i].role, "password 1234", NULL, 0,
                               users[i].id) != WD_OK ||
            (*users[i].token = login(users[i].name, "password 1234")) == NULL) {
            fprintf(stderr, "user %s: %s\n", users[i].name, wd_err_msg());
            return 1;
        }
    }
    char node[40], alloc[40], tpl[40];
    if (!sql1("INSERT INTO nodes (name, fqdn, memory_mb, disk_mb) VALUES ('n1', 'n1.test', "
              "1024, 1024) RETURNING id",
              NULL, node, sizeof node) ||
        !sql1("INSERT INTO allocations (node_id, ip, port) VALUES ($1, '127.0.0.1', 25565) "
              "RETURNING id",
              node, alloc, sizeof alloc) ||
        !sql1("INSERT INTO templates (slug, name, body) VALUES ('t', 't', '{}') RETURNING id", NULL,
              tpl, sizeof tpl))
        return 1;
    char q[512];
    snprintf(q, sizeof q,
             "INSERT INTO servers (name, owner_id, node_id, template_id, allocation_id) "
             "VALUES ('s1', $1, '%s', '%s', '%s') RETURNING id",
             node, tpl, alloc);
    return sql1(q, bob_id, server_id, sizeof server_id) ? 0 : 1;
}

static int suite_clean(void)
{
    free(alice);
    free(bob);
    free(carol);
    free(dave);
    free(erin);
    wd_api_fx_stop(&fx);
    return 0;
}

/* ---- API keys ------------------------------------------------------------ */

static char *make_key(const char *token, const char *body, char *id, size_t n)
{
    json_t *j = NULL;
    int st = call("POST", "/api/v1/me/api-keys", token, body, &j);
    CU_ASSERT_EQUAL(st, 201);
    char *key = NULL;
    if (st == 201) {
        key = strdup(str(j, "key"));
        snprintf(id, n, "%s", str(j, "id"));
    }
    json_decref(j);
    return key;
}

static void test_api_keys(void)
{
    const char *bad[] = {"{}",
                         "{\"name\":\"\"}",
                         "{\"name\":\"k\",\"admin\":true}",
                         "{\"name\":\"k\",\"scopes\":[\"file.nope\"]}",
                         "{\"name\":\"k\",\"scopes\":\"file.read\"}",
                         "{\"name\":\"k\",\"expires_in_days\":0}",
                         "{\"name\":\"k\",\"expires_in_days\":3651}",
                         "[",
                         NULL};
    for (int i = 0; bad[i]; i++)
        CU_ASSERT_EQUAL(call_nobody("POST", "/api/v1/me/api-keys", alice, bad[i]), 400);
    /* Only admins may mint admin keys. */
    CU_ASSERT_EQUAL(
        call_nobody("POST", "/api/v1/me/api-keys", bob, "{\"name\":\"k\",\"scopes\":[\"admin\"]}"),
        403);

    json_t *j = NULL;
    CU_ASSERT_EQUAL_FATAL(call("POST", "/api/v1/me/api-keys", alice,
                               "{\"name\":\"ci\",\"scopes\":[\"admin\"],\"expires_in_days\":30}",
                               &j),
                          201);
    char admin_key[128], admin_key_id[40];
    snprintf(admin_key, sizeof admin_key, "%s", str(j, "key"));
    snprintf(admin_key_id, sizeof admin_key_id, "%s", str(j, "id"));
    CU_ASSERT_EQUAL(strncmp(admin_key, "wdk_", 4), 0);
    CU_ASSERT_EQUAL(strncmp(str(j, "prefix"), admin_key, 12), 0);
    CU_ASSERT_EQUAL(strlen(str(j, "prefix")), 12);
    CU_ASSERT_PTR_NOT_NULL(str(j, "expires_at"));
    CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(json_object_get(j, "scopes"), 0)),
                           "admin");
    json_decref(j);
    /* Only the hash is stored. */
    char n[16];
    sql1("SELECT count(*) FROM api_keys WHERE key_hash = encode(sha256($1::bytea), 'hex')",
         admin_key, n, sizeof n);
    CU_ASSERT_STRING_EQUAL(n, "1");
    sql1("SELECT count(*) FROM api_keys WHERE key_hash = $1 OR prefix = $1", admin_key, n,
         sizeof n);
    CU_ASSERT_STRING_EQUAL(n, "0");

    /* The list never shows a key. */
    CU_ASSERT_EQUAL(call("GET", "/api/v1/me/api-keys", alice, NULL, &j), 200);
    CU_ASSERT_EQUAL(json_array_size(json_object_get(j, "data")), 1);
    json_t *item = json_array_get(json_object_get(j, "data"), 0);
    CU_ASSERT_STRING_EQUAL(str(item, "id"), admin_key_id);
    CU_ASSERT_PTR_NULL(json_object_get(item, "key"));
    CU_ASSERT_PTR_NULL(json_object_get(item, "key_hash"));
    json_decref(j);
    CU_ASSERT_EQUAL(call_nobody("GET", "/api/v1/me/api-keys?per_page=0", alice, NULL), 400);
    CU_ASSERT_EQUAL(call_nobody("GET", "/api/v1/me/api-keys?sort=key_hash", alice, NULL), 400);
    CU_ASSERT_EQUAL(call("GET", "/api/v1/me/api-keys", bob, NULL, &j), 200); /* others' keys: no */
    CU_ASSERT_EQUAL(json_array_size(json_object_get(j, "data")), 0);
    json_decref(j);

    /* Requests with a key (needs authenticate() to hand "wdk_" tokens to
     * wd_apikey_authenticate). */
    int wired = call("GET", "/api/v1/me", admin_key, NULL, &j);
    if (wired != 200)
        fprintf(stderr, "NOTE: API-key authentication is not wired into app.c yet\n");
    CU_ASSERT_EQUAL(wired, 200);
    CU_ASSERT_STRING_EQUAL(str(j, "username") ? str(j, "username") : "", "alice");
    json_decref(j);
    CU_ASSERT_EQUAL(call_nobody("GET", "/api/v1/users", admin_key, NULL), 200);
    sql1("SELECT count(*) FROM api_keys WHERE id = $1 AND last_used_at IS NOT NULL", admin_key_id,
         n, sizeof n);
    CU_ASSERT_STRING_EQUAL(n, "1");
    /* An admin's key without the admin scope acts as a plain user. */
    char plain_id[40], bob_key_id[40];
    char *plain = make_key(alice, "{\"name\":\"read-only\",\"scopes\":[\"file.read\"]}", plain_id,
                           sizeof plain_id);
    char *bobs = make_key(bob, "{\"name\":\"bob's\"}", bob_key_id, sizeof bob_key_id);
    CU_ASSERT_EQUAL(call_nobody("GET", "/api/v1/me", plain, NULL), 200);
    CU_ASSERT_EQUAL(call_nobody("GET", "/api/v1/users", plain, NULL), 403);
    CU_ASSERT_EQUAL(call_nobody("GET", "/api/v1/me", bobs, NULL), 200);
    /* Logging out of sessions does not touch keys; a bad key is 401. */
    CU_ASSERT_EQUAL(
        call_nobody("GET", "/api/v1/me", "wdk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", NULL),
        401);

    /* Revocation: someone else's key is not found; bad ids are 400. */
    char url[128];
    snprintf(url, sizeof url, "/api/v1/me/api-keys/%s", bob_key_id);
    CU_ASSERT_EQUAL(call_nobody("DELETE", url, alice, NULL), 404);
    CU_ASSERT_EQUAL(call_nobody("DELETE", "/api/v1/me/api-keys/nope", alice, NULL), 400);
    CU_ASSERT_EQUAL(call_nobody("DELETE", url, bob, NULL), 204);
    CU_ASSERT_EQUAL(call_nobody("DELETE", url, bob, NULL), 404);
    CU_ASSERT_EQUAL(call_nobody("GET", "/api/v1/me", bobs, NULL), 401);
    /* Expired keys stop working. */
    sql1("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1", plain_id,
         NULL, 0);
    CU_ASSERT_EQUAL(call_nobody("GET", "/api/v1/me", plain, NULL), 401);
    snprintf(url, sizeof url, "/api/v1/me/api-keys/%s", admin_key_id);
    CU_ASSERT_EQUAL(call_nobody("DELETE", url, alice, NULL), 204);
    CU_ASSERT_EQUAL(call_nobody("GET", "/api/v1/me", admin_key, NULL), 401);
    free(plain);
    free(bobs);
}

/* ---- users --------------------------------------------------------------- */

static void test_users(void)
{
    json_t *j = NULL;
    CU_ASSERT_EQUAL(call_nobody("GET", "/api/v1/users", bob, NULL), 403);
    CU_ASSERT_EQUAL(call_nobody("POST", "/api/v1/users", bob,
                                "{\"username\":\"x\",\"email\":\"x@x.x\",\"role\":\"admin\"}"),
                    403);
    CU_ASSERT_EQUAL(call("GET", "/api/v1/users?sort=-name&per_page=2", alice, NULL, &j), 200);
    CU_ASSERT_EQUAL(json_array_size(json_object_get(j, "data")), 2);
    CU_ASSERT_STRING_EQUAL(str(json_array_get(json_object_get(j, "data"), 0), "username"), "erin");
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(json_object_get(j, "pagination"), "total")),
                    5);
    json_decref(j);
    CU_ASSERT_EQUAL(call("GET", "/api/v1/users?search=CAR", alice, NULL, &j), 200);
    CU_ASSERT_EQUAL(json_array_size(json_object_get(j, "data")), 1);
    json_decref(j);
    const char *bad_lists[] = {"/api/v1/users?per_page=0", "/api/v1/users?per_page=101",
                               "/api/v1/users?page=x", "/api/v1/users?sort=password_hash", NULL};
    for (int i = 0; bad_lists[i]; i++)
        CU_ASSERT_EQUAL(call_nobody("GET", bad_lists[i], alice, NULL), 400);

    const char *bad[] = {
        "{\"username\":\"frank\",\"email\":\"f@example.com\"}",
        "{\"username\":\"frank\",\"email\":\"f@example.com\",\"role\":\"root\"}",
        "{\"username\":\"frank\",\"email\":\"nope\",\"role\":\"user\"}",
        "{\"username\":\"frank\",\"email\":\"f@example.com\",\"role\":\"user\",\"x\":1}",
        "{\"username\":\"frank\",\"email\":\"f@example.com\",\"role\":\"user\",\"password\":\"s\"}",
        "{\"username\":\"Frank!\",\"email\":\"f@example.com\",\"role\":\"user\"}",
        NULL};
    for (int i = 0; bad[i]; i++)
        CU_ASSERT_EQUAL(call_nobody("POST", "/api/v1/users", alice, bad[i]), 400);
    CU_ASSERT_EQUAL_FATAL(
        call("POST", "/api/v1/users", alice,
             "{\"username\":\"frank\",\"email\":\"Frank@Example.com\",\"role\":\"user\"}", &j),
        201);
    const char *otp = str(j, "one_time_password");
    CU_ASSERT_PTR_NOT_NULL_FATAL(otp);
    char frank_id[40];
    snprintf(frank_id, sizeof frank_id, "%s", str(json_object_get(j, "user"), "id"));
    CU_ASSERT_STRING_EQUAL(str(json_object_get(j, "user"), "email"), "frank@example.com");
    char *frank = login("frank", otp);
    CU_ASSERT_PTR_NOT_NULL(frank);
    json_decref(j);
    CU_ASSERT_EQUAL(
        call_nobody("POST", "/api/v1/users", alice,
                    "{\"username\":\"frank\",\"email\":\"f2@example.com\",\"role\":\"user\"}"),
        409);
    CU_ASSERT_EQUAL(call("POST", "/api/v1/users", alice,
                         "{\"username\":\"gina\",\"email\":\"gina@example.com\",\"role\":"
                         "\"user\",\"password\":\"gina password\"}",
                         &j),
                    201);
    CU_ASSERT_PTR_NULL(json_object_get(j, "one_time_password"));
    char gina_id[40];
    snprintf(gina_id, sizeof gina_id, "%s", str(json_object_get(j, "user"), "id"));
    json_decref(j);

    char url[128];
    snprintf(url, sizeof url, "/api/v1/users/%s", frank_id);
    CU_ASSERT_EQUAL(call("GET", url, alice, NULL, &j), 200);
    CU_ASSERT_STRING_EQUAL(str(j, "username"), "frank");
    json_decref(j);
    CU_ASSERT_EQUAL(call_nobody("GET", "/api/v1/users/nope", alice, NULL), 400);
    CU_ASSERT_EQUAL(call_nobody("GET", "/api/v1/users/" MISSING, alice, NULL), 404);
    CU_ASSERT_EQUAL(call_nobody("PATCH", url, alice, "{\"role\":\"god\"}"), 400);
    CU_ASSERT_EQUAL(call_nobody("PATCH", url, alice, "{\"username\":\"x\"}"), 400);
    CU_ASSERT_EQUAL(call_nobody("PATCH", url, alice, "{\"disabled\":\"yes\"}"), 400);
    CU_ASSERT_EQUAL(call_nobody("PATCH", url, alice, "{\"email\":\"bob@example.com\"}"), 409);
    CU_ASSERT_EQUAL(call_nobody("PATCH", "/api/v1/users/" MISSING, alice, "{\"role\":\"user\"}"),
                    404);
    CU_ASSERT_EQUAL(
        call("PATCH", url, alice, "{\"email\":\"frank2@example.com\",\"role\":\"admin\"}", &j),
        200);
    CU_ASSERT_STRING_EQUAL(str(j, "role"), "admin");
    CU_ASSERT_STRING_EQUAL(str(j, "email"), "frank2@example.com");
    json_decref(j);
    /* Disabling ends the sessions at once. */
    CU_ASSERT_EQUAL(call_nobody("GET", "/api/v1/me", frank, NULL), 200);
    CU_ASSERT_EQUAL(call("PATCH", url, alice, "{\"disabled\":true}", &j), 200);
    CU_ASSERT(json_is_true(json_object_get(j, "disabled")));
    json_decref(j);
    CU_ASSERT_EQUAL(call_nobody("GET", "/api/v1/me", frank, NULL), 401);
    /* An admin cannot lock themselves out. */
    char self[128];
    snprintf(self, sizeof self, "/api/v1/users/%s", alice_id);
    CU_ASSERT_EQUAL(call_nobody("PATCH", self, alice, "{\"disabled\":true}"), 409);
    CU_ASSERT_EQUAL(call_nobody("PATCH", self, alice, "{\"role\":\"user\"}"), 409);
    CU_ASSERT_EQUAL(call_nobody("DELETE", self, alice, NULL), 409);
    /* Owners of servers stay. */
    char bob_url[128];
    snprintf(bob_url, sizeof bob_url, "/api/v1/users/%s", bob_id);
    CU_ASSERT_EQUAL(call("DELETE", bob_url, alice, NULL, &j), 409);
    CU_ASSERT_STRING_EQUAL(str(json_object_get(j, "error"), "code"), "failed_precondition");
    json_decref(j);
    CU_ASSERT_EQUAL(call_nobody("DELETE", url, bob, NULL), 403);
    CU_ASSERT_EQUAL(call_nobody("DELETE", url, alice, NULL), 204);
    CU_ASSERT_EQUAL(call_nobody("DELETE", url, alice, NULL), 404);
    snprintf(url, sizeof url, "/api/v1/users/%s", gina_id);
    CU_ASSERT_EQUAL(call_nobody("DELETE", url, alice, NULL), 204);
    char n[16];
    sql1("SELECT count(*) FROM audit_log WHERE action IN ('user.update', 'user.delete') "
         "AND actor_user_id = $1",
         alice_id, n, sizeof n);
    CU_ASSERT_STRING_EQUAL(n, "4");
    free(frank);
}

/* ---- subusers ------------------------------------------------------------ */

static void test_subusers(void)
{
    char url[256], body[512];
    json_t *j = NULL;
    snprintf(url, sizeof url, "/api/v1/servers/%s/users", server_id);
    /* Servers you cannot see do not exist. */
    CU_ASSERT_EQUAL(call_nobody("GET", url, dave, NULL), 404);
    CU_ASSERT_EQUAL(call_nobody("GET", "/api/v1/servers/" MISSING "/users", bob, NULL), 404);
    CU_ASSERT_EQUAL(call_nobody("GET", "/api/v1/servers/nope/users", bob, NULL), 400);
    CU_ASSERT_EQUAL(call("GET", url, bob, NULL, &j), 200);
    CU_ASSERT_EQUAL(json_array_size(json_object_get(j, "data")), 0);
    json_decref(j);

    const char *bad[] = {"{\"permissions\":[\"user.read\"]}", /* no user */
                         "{\"user_id\":\"nope\",\"permissions\":[]}",
                         "{\"user_id\":\"%s\",\"email\":\"carol@example.com\",\"permissions\":[]}",
                         "{\"username\":\"carol\",\"email\":\"carol@example.com\",\"permissions\":[]}",
                         "{\"username\":7,\"permissions\":[]}",
                         "{\"user_id\":\"%s\",\"permissions\":[\"file.nope\"]}",
                         "{\"user_id\":\"%s\",\"permissions\":[\"admin\"]}",
                         "{\"user_id\":\"%s\",\"permissions\":\"user.read\"}",
                         "{\"user_id\":\"%s\",\"permissions\":[],\"role\":\"admin\"}",
                         NULL};
    for (int i = 0; bad[i]; i++) {
        snprintf(body, sizeof body, bad[i], carol_id);
        CU_ASSERT_EQUAL(call_nobody("POST", url, bob, body), 400);
    }
    snprintf(body, sizeof body,
             "{\"user_id\":\"%s\",\"permissions\":[\"user.read\",\"user.create\","
             "\"control.console\"]}",
             carol_id);
    CU_ASSERT_EQUAL(call("POST", url, bob, body, &j), 201);
    CU_ASSERT_STRING_EQUAL(str(j, "username"), "carol");
    CU_ASSERT_EQUAL(json_array_size(json_object_get(j, "permissions")), 3);
    json_decref(j);
    CU_ASSERT_EQUAL(call_nobody("POST", url, bob, body), 409); /* already */
    snprintf(body, sizeof body, "{\"user_id\":\"%s\",\"permissions\":[]}", bob_id);
    CU_ASSERT_EQUAL(call_nobody("POST", url, alice, body), 409); /* the owner */
    CU_ASSERT_EQUAL(
        call_nobody("POST", url, bob, "{\"email\":\"nobody@example.com\",\"permissions\":[]}"),
        404);
    /* By username too (any case): "BOB" is found, and is the owner;
     * unknown names are 404. (Neither writes an audit row.) */
    CU_ASSERT_EQUAL(call_nobody("POST", url, alice, "{\"username\":\"BOB\",\"permissions\":[]}"),
                    409);
    CU_ASSERT_EQUAL(
        call_nobody("POST", url, bob, "{\"username\":\"nobody-here\",\"permissions\":[]}"), 404);
    /* Carol (user.create) grants what she holds, not more. */
    CU_ASSERT_EQUAL(call("GET", url, carol, NULL, &j), 200);
    CU_ASSERT_EQUAL(json_array_size(json_object_get(j, "data")), 1);
    json_decref(j);
    CU_ASSERT_EQUAL(call_nobody("POST", url, carol,
                                "{\"email\":\"Erin@example.com\",\"permissions\":"
                                "[\"control.console\",\"control.start\"]}"),
                    403);
    CU_ASSERT_EQUAL(
        call_nobody("POST", url, carol, "{\"email\":\"erin@example.com\",\"permissions\":[\"*\"]}"),
        403);
    CU_ASSERT_EQUAL(call("POST", url, carol,
                         "{\"email\":\"Erin@example.com\",\"permissions\":[\"control.console\"]}",
                         &j),
                    201);
    CU_ASSERT_STRING_EQUAL(str(j, "user_id"), erin_id);
    json_decref(j);
    /* Erin holds no user.create; Dave is no subuser at all. */
    snprintf(body, sizeof body, "{\"user_id\":\"%s\",\"permissions\":[]}", dave_id);
    CU_ASSERT_EQUAL(call_nobody("POST", url, erin, body), 403);
    CU_ASSERT_EQUAL(call_nobody("GET", url, erin, NULL), 403);
    CU_ASSERT_EQUAL(call_nobody("POST", url, dave, body), 404);

    char erin_url[320], carol_url[320];
    snprintf(erin_url, sizeof erin_url, "%s/%s", url, erin_id);
    snprintf(carol_url, sizeof carol_url, "%s/%s", url, carol_id);
    CU_ASSERT_EQUAL(call_nobody("PATCH", erin_url, carol, "{\"permissions\":[]}"), 403);
    CU_ASSERT_EQUAL(call_nobody("PATCH", erin_url, bob, "{\"permissions\":[\"file.nope\"]}"), 400);
    CU_ASSERT_EQUAL(call_nobody("PATCH", erin_url, bob, "{\"perms\":[]}"), 400);
    snprintf(body, sizeof body, "%s/nope", url);
    CU_ASSERT_EQUAL(call_nobody("PATCH", body, bob, "{\"permissions\":[]}"), 400);
    snprintf(body, sizeof body, "%s/%s", url, dave_id);
    CU_ASSERT_EQUAL(call_nobody("PATCH", body, bob, "{\"permissions\":[]}"), 404);
    CU_ASSERT_EQUAL(call("PATCH", erin_url, bob,
                         "{\"permissions\":[\"control.*\",\"activity.read\",\"user.update\"]}", &j),
                    200);
    CU_ASSERT_EQUAL(json_array_size(json_object_get(j, "permissions")), 3);
    json_decref(j);
    /* Erin may update now, but not grant what she lacks, nor edit herself. */
    CU_ASSERT_EQUAL(call_nobody("PATCH", carol_url, erin, "{\"permissions\":[\"user.read\"]}"),
                    403);
    CU_ASSERT_EQUAL(call_nobody("PATCH", carol_url, erin, "{\"permissions\":[\"control.stop\"]}"),
                    200);
    CU_ASSERT_EQUAL(call_nobody("PATCH", erin_url, erin, "{\"permissions\":[\"control.*\"]}"), 403);
    /* user.delete: only the owner here. */
    CU_ASSERT_EQUAL(call_nobody("DELETE", carol_url, erin, NULL), 403);
    CU_ASSERT_EQUAL(call_nobody("DELETE", carol_url, bob, NULL), 204);
    CU_ASSERT_EQUAL(call_nobody("DELETE", carol_url, bob, NULL), 404);
    CU_ASSERT_EQUAL(call_nobody("GET", url, carol, NULL), 404); /* no longer visible */
    char n[16];
    sql1("SELECT count(*) FROM audit_log WHERE action LIKE 'server.subuser.%' AND server_id = $1",
         server_id, n, sizeof n);
    CU_ASSERT_STRING_EQUAL(n, "5");
}

/* ---- audit ----------------------------------------------------------------- */

static int rows(const char *path, const char *token, json_t **out)
{
    json_t *j = NULL;
    int st = call("GET", path, token, NULL, &j);
    CU_ASSERT_EQUAL(st, 200);
    int n = (int)json_array_size(json_object_get(j, "data"));
    if (out)
        *out = j;
    else
        json_decref(j);
    return n;
}

static void test_audit(void)
{
    char path[512];
    json_t *j = NULL;
    CU_ASSERT_EQUAL(call_nobody("GET", "/api/v1/audit", bob, NULL), 403);
    CU_ASSERT(rows("/api/v1/audit?per_page=100", alice, &j) >= 10);
    /* Newest first, every field there. */
    json_t *data = json_object_get(j, "data");
    for (size_t i = 1; i < json_array_size(data); i++)
        CU_ASSERT(json_integer_value(json_object_get(json_array_get(data, i - 1), "id")) >
                  json_integer_value(json_object_get(json_array_get(data, i), "id")));
    json_t *first = json_array_get(data, 0);
    const char *keys[] = {"id",        "at",       "actor_user_id", "actor_label",
                          "ip",        "action",   "target_type",   "target_id",
                          "server_id", "metadata", "request_id",    NULL};
    for (int i = 0; keys[i]; i++)
        CU_ASSERT_PTR_NOT_NULL(json_object_get(first, keys[i]));
    CU_ASSERT(json_is_object(json_object_get(first, "metadata")));
    json_decref(j);

    CU_ASSERT_EQUAL(rows("/api/v1/audit?action=server.subuser", alice, &j), 5);
    CU_ASSERT_STRING_EQUAL(str(json_array_get(json_object_get(j, "data"), 0), "action"),
                           "server.subuser.delete");
    json_decref(j);
    CU_ASSERT_EQUAL(rows("/api/v1/audit?action=server.subuser.create&per_page=1", alice, &j), 1);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(json_object_get(j, "pagination"), "total")),
                    2);
    json_decref(j);
    CU_ASSERT_EQUAL(rows("/api/v1/audit?action=server.subuser%25", alice, NULL), 0); /* literal % */
    snprintf(path, sizeof path, "/api/v1/audit?actor=%s&action=server.", carol_id);
    CU_ASSERT_EQUAL(rows(path, alice, NULL), 1); /* carol added erin */
    snprintf(path, sizeof path, "/api/v1/audit?server_id=%s", server_id);
    CU_ASSERT_EQUAL(rows(path, alice, NULL), 5);
    snprintf(path, sizeof path, "/api/v1/audit?target_id=%s&action=server.subuser", erin_id);
    CU_ASSERT_EQUAL(rows(path, alice, NULL), 2);
    CU_ASSERT(rows("/api/v1/audit?since=2000-01-01T00:00:00Z", alice, NULL) > 0);
    CU_ASSERT_EQUAL(rows("/api/v1/audit?since=2999-01-01T00:00:00Z", alice, NULL), 0);
    CU_ASSERT_EQUAL(rows("/api/v1/audit?until=2000-01-01", alice, NULL), 0);
    CU_ASSERT(rows("/api/v1/audit?until=2999-01-01T00:00:00%2B02:00", alice, NULL) > 0);
    const char *bad[] = {"/api/v1/audit?actor=carol",
                         "/api/v1/audit?server_id=1",
                         "/api/v1/audit?since=yesterday",
                         "/api/v1/audit?since=2026-13-45T00:00:00Z",
                         "/api/v1/audit?until=2026-01-01T00:00:00",
                         "/api/v1/audit?per_page=1000",
                         "/api/v1/audit?page=0",
                         "/api/v1/audit?sort=actor_label",
                         NULL};
    for (int i = 0; bad[i]; i++)
        CU_ASSERT_EQUAL(call_nobody("GET", bad[i], alice, NULL), 400);

    /* A server's activity: its rows only, for activity.read holders. */
    char url[256];
    snprintf(url, sizeof url, "/api/v1/servers/%s/activity", server_id);
    sql1("INSERT INTO audit_log (actor_label, action, target_type, target_id) "
         "VALUES ('system', 'server.power.start', 'server', $1)",
         server_id, NULL, 0);
    sql1("INSERT INTO audit_log (actor_label, action, target_type, target_id) "
         "VALUES ('system', 'server.power.start', 'server', '" MISSING "')",
         NULL, NULL, 0);
    CU_ASSERT_EQUAL(rows(url, bob, &j), 6);
    data = json_object_get(j, "data");
    for (size_t i = 0; i < json_array_size(data); i++) {
        json_t *row = json_array_get(data, i);
        CU_ASSERT(strcmp(str(row, "server_id") ? str(row, "server_id") : "", server_id) == 0 ||
                  strcmp(str(row, "target_id"), server_id) == 0);
    }
    json_decref(j);
    CU_ASSERT_EQUAL(rows(url, erin, NULL), 6); /* erin holds activity.read */
    snprintf(path, sizeof path, "%s?action=server.power", url);
    CU_ASSERT_EQUAL(rows(path, alice, NULL), 1);
    snprintf(path, sizeof path, "%s?since=nope", url);
    CU_ASSERT_EQUAL(call_nobody("GET", path, bob, NULL), 400);
    CU_ASSERT_EQUAL(call_nobody("GET", url, dave, NULL), 404);
}

/* ---- gateway tokens and revocation announcements ------------------------ */

/* The next PanelEvent on sub, decoded (NULL after timeout_ms). */
static Warden__V1__PanelEvent *next_event(natsSubscription *sub, int timeout_ms)
{
    natsMsg *m = NULL;
    if (natsSubscription_NextMsg(&m, sub, timeout_ms) != NATS_OK)
        return NULL;
    Warden__V1__PanelEvent *e = (Warden__V1__PanelEvent *)wd_bus_decode(
        &warden__v1__panel_event__descriptor, m);
    natsMsg_Destroy(m);
    return e;
}

static const char *detail(const Warden__V1__PanelEvent *e, const char *key)
{
    for (size_t i = 0; i < e->n_details; i++)
        if (strcmp(e->details[i]->key, key) == 0)
            return e->details[i]->value;
    return NULL;
}

/* GET .../websocket as token; verifies the answer with the API's public key. */
static bool ws_token(const char *token, wd_wstoken_claims *c)
{
    char url[256], pub[700];
    json_t *j = NULL;
    snprintf(url, sizeof url, "/api/v1/servers/%s/websocket", server_id);
    int st = call("GET", url, token, NULL, &j);
    CU_ASSERT_EQUAL(st, 200);
    if (st != 200) {
        json_decref(j);
        return false;
    }
    CU_ASSERT(strstr(str(j, "url"), server_id) != NULL);
    CU_ASSERT(json_integer_value(json_object_get(j, "expires_at")) > (json_int_t)time(NULL));
    snprintf(pub, sizeof pub, "%s/ws.pub", fx.cfg.data_dir);
    wd_wstoken_keys *keys = NULL;
    CU_ASSERT_EQUAL_FATAL(wd_wstoken_keys_load(&keys, NULL, pub), WD_OK);
    wd_status vst = wd_wstoken_verify(keys, str(j, "token"), time(NULL), c);
    CU_ASSERT_EQUAL(vst, WD_OK);
    CU_ASSERT_EQUAL(json_array_size(json_object_get(j, "permissions")), c->nperms);
    wd_wstoken_keys_destroy(&keys);
    json_decref(j);
    return vst == WD_OK;
}

static void test_websocket_tokens(void)
{
    wd_bus_cfg bc = wd_bus_cfg_defaults();
    bc.servers = fx.nats.url;
    wd_bus *bus = NULL;
    natsSubscription *sub = NULL;
    CU_ASSERT_EQUAL_FATAL(wd_bus_connect(&bus, &bc), WD_OK);
    CU_ASSERT_EQUAL_FATAL(
        natsConnection_SubscribeSync(&sub, wd_bus_nats(bus), "warden.panel.events.>"), NATS_OK);
    natsConnection_Flush(wd_bus_nats(bus));

    /* The owner's token carries every server permission. */
    wd_wstoken_claims c;
    size_t all = 0;
    for (const wd_perm_info *pi = wd_perm_all(); pi->name; pi++)
        all++;
    if (ws_token(bob, &c)) {
        CU_ASSERT_STRING_EQUAL(c.sub, bob_id);
        CU_ASSERT_STRING_EQUAL(c.srv, server_id);
        CU_ASSERT_EQUAL(c.nperms, all);
        CU_ASSERT(wd_wstoken_allows(&c, "control.console"));
    }
    /* A subuser's (erin, from the subusers case) carries exactly the
     * grants; without websocket.connect: 403. */
    char url[256], wurl[256], suburl[300];
    snprintf(url, sizeof url, "/api/v1/servers/%s/users", server_id);
    snprintf(wurl, sizeof wurl, "/api/v1/servers/%s/websocket", server_id);
    snprintf(suburl, sizeof suburl, "%s/%s", url, erin_id);
    CU_ASSERT_EQUAL(call_nobody("PATCH", suburl, bob,
                                "{\"permissions\":[\"websocket.connect\",\"control.console\"]}"),
                    200);
    /* The server itself says what the caller may do on it. */
    char spath[128];
    json_t *sj = NULL;
    snprintf(spath, sizeof spath, "/api/v1/servers/%s", server_id);
    CU_ASSERT_EQUAL(call("GET", spath, erin, NULL, &sj), 200);
    CU_ASSERT_EQUAL(json_array_size(json_object_get(sj, "permissions")), 2);
    json_decref(sj);
    CU_ASSERT_EQUAL(call("GET", spath, bob, NULL, &sj), 200);
    CU_ASSERT_EQUAL(json_array_size(json_object_get(sj, "permissions")), all);
    json_decref(sj);
    if (ws_token(erin, &c)) {
        CU_ASSERT_STRING_EQUAL(c.sub, erin_id);
        CU_ASSERT_EQUAL(c.nperms, 2);
        CU_ASSERT(wd_wstoken_allows(&c, "control.console"));
        CU_ASSERT_FALSE(wd_wstoken_allows(&c, "control.start"));
    }
    CU_ASSERT_EQUAL(call_nobody("PATCH", suburl, bob, "{\"permissions\":[\"control.console\"]}"),
                    200);
    CU_ASSERT_EQUAL(call_nobody("GET", wurl, erin, NULL), 403);
    CU_ASSERT_EQUAL(call_nobody("GET", wurl, dave, NULL), 404);

    /* Each change was announced: sockets with the old grants close. */
    for (int k = 0; k < 3; k++) {
        if (k == 2)
            CU_ASSERT_EQUAL(call_nobody("DELETE", suburl, bob, NULL), 204);
        Warden__V1__PanelEvent *e = next_event(sub, 3000);
        CU_ASSERT_PTR_NOT_NULL(e);
        if (e) {
            CU_ASSERT_EQUAL(e->kind, WARDEN__V1__PANEL_EVENT__KIND__SUBUSER_REMOVED);
            CU_ASSERT_STRING_EQUAL(e->subject_id, erin_id);
            CU_ASSERT(detail(e, "server_id") && strcmp(detail(e, "server_id"), server_id) == 0);
            protobuf_c_message_free_unpacked(&e->base, NULL);
        }
    }

    /* Logging out announces the session's end. */
    char *t = login("erin", "password 1234");
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_EQUAL(call_nobody("POST", "/api/v1/auth/logout", t, NULL), 204);
    Warden__V1__PanelEvent *e = next_event(sub, 3000);
    CU_ASSERT_PTR_NOT_NULL(e);
    if (e) {
        CU_ASSERT_EQUAL(e->kind, WARDEN__V1__PANEL_EVENT__KIND__SESSION_REVOKED);
        CU_ASSERT_STRING_EQUAL(e->subject_id, erin_id);
        CU_ASSERT(detail(e, "sid") && *detail(e, "sid"));
        protobuf_c_message_free_unpacked(&e->base, NULL);
    }
    free(t);
    natsSubscription_Destroy(sub);
    wd_bus_destroy(&bus);
}

/* ---- warden-api template import (the shipped templates at make run) ------ */

static int run_import(const char *files, char *out, size_t n)
{
    const char *dir = wd_h_tmpdir("import");
    char cmd[2400], path[600];
    snprintf(path, sizeof path, "%s/out", dir);
    snprintf(cmd, sizeof cmd,
             "%s template import %s --database-url='%s' --data-dir=%s --log-level=warn >%s 2>&1",
             wd_h_bin("panel-api/warden-api"), files, fx.pg.conninfo, dir, path);
    int st = system(cmd);
    char *text = NULL;
    out[0] = '\0';
    if (wd_read_file(path, 65536, &text, NULL) == WD_OK)
        snprintf(out, n, "%s", text);
    free(text);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_template_import(void)
{
    char files[1400], out[4096];
    snprintf(files, sizeof files, "%s/templates/testgame.json %s/templates/freeciv.json",
             WARDEN_SOURCE_DIR, WARDEN_SOURCE_DIR);
    CU_ASSERT_EQUAL(run_import(files, out, sizeof out), 0);
    CU_ASSERT(strstr(out, "template testgame imported") && strstr(out, "template freeciv imported"));
    /* Again: nothing changes, nothing fails. */
    CU_ASSERT_EQUAL(run_import(files, out, sizeof out), 0);
    CU_ASSERT(strstr(out, "testgame exists already (kept)") != NULL);
    json_t *j = NULL;
    CU_ASSERT_EQUAL(call("GET", "/api/v1/templates?per_page=100", alice, NULL, &j), 200);
    int found = 0;
    size_t k;
    json_t *t;
    json_array_foreach(json_object_get(j, "data"), k, t)
    {
        const char *slug = str(t, "slug");
        found += strcmp(slug, "testgame") == 0 || strcmp(slug, "freeciv") == 0;
    }
    CU_ASSERT_EQUAL(found, 2);
    json_decref(j);
    /* A file that is not a template: a clear message and a failing exit. */
    snprintf(files, sizeof files, "%s", wd_h_write_tmp("bad.json", "{\"format\":\"nope\"}"));
    CU_ASSERT_EQUAL(run_import(files, out, sizeof out), 1);
    CU_ASSERT(strstr(out, "bad.json: ") != NULL);
}

int main(void)
{
    static const wd_h_case cases[] = {
        {"API keys: shown once, stored hashed, listed, used, revoked, expired", test_api_keys},
        {"users: admins list, create, read, update, disable and delete", test_users},
        {"subusers: grant only what you hold; invisible servers are 404", test_subusers},
        {"audit: filters, paging newest first, a server's activity", test_audit},
        {"gateway tokens carry the caller's permissions; revocations are announced",
         test_websocket_tokens},
        {"warden-api template import: new slugs added, existing ones kept", test_template_import},
        {NULL, NULL}};
    wd_h_suite("api-admin", suite_init, suite_clean, cases);
    return wd_h_run();
}
