/* warden-api against a real PostgreSQL: login, the
 * caller's account, refresh rotation and reuse detection, logout, the
 * login back-off, hostile input, the route table walk (every route that
 * needs a permission answers 401 without credentials), the OpenAPI document
 * against the router, operations endpoints, and templates. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api_fixture.h"
#include <libpq-fe.h>

const wd_route *wd_api_routes(size_t *n);

static wd_api_fx fx;
#define api (fx.api)
#define port (fx.port)

static int suite_init(void)
{
    if (!wd_api_fx_start(&fx, "api", false))
        return 1;
    return wd_api_create_user(api, "Alice", "alice@example.com", "admin", "correct horse 1",
                              NULL, 0, NULL) == WD_OK
               ? 0
               : 1;
}

static int suite_clean(void)
{
    wd_api_fx_stop(&fx);
    return 0;
}

/* One request; returns the status and the parsed body (caller decrefs). */
static int call(const char *method, const char *path, const char *token, const char *body,
                json_t **out, char **headers)
{
    return wd_api_fx_call(&fx, method, path, token, body, out, headers);
}

static const char *err_code(json_t *j)
{
    const char *c = wd_api_fx_err_code(j);
    return *c ? c : NULL;
}

static char *field(json_t *j, const char *name)
{
    const char *s = json_string_value(json_object_get(j, name));
    return s ? strdup(s) : NULL;
}

static void login(const char *body, char **access, char **refresh)
{
    json_t *j = NULL;
    CU_ASSERT_EQUAL_FATAL(call("POST", "/api/v1/auth/login", NULL, body, &j, NULL), 200);
    *access = field(j, "access_token");
    *refresh = field(j, "refresh_token");
    CU_ASSERT_PTR_NOT_NULL(*access);
    CU_ASSERT_PTR_NOT_NULL(*refresh);
    json_decref(j);
}

static void test_login_me_logout(void)
{
    char *access, *refresh;
    login("{\"username\":\"ALICE\",\"password\":\"correct horse 1\"}", &access, &refresh);
    json_t *j = NULL;
    CU_ASSERT_EQUAL(call("GET", "/api/v1/me", access, NULL, &j, NULL), 200);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "username")), "alice");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "role")), "admin");
    json_decref(j);
    /* by email too */
    char *a2, *r2;
    login("{\"email\":\"Alice@Example.com\",\"password\":\"correct horse 1\"}", &a2, &r2);
    CU_ASSERT_EQUAL(call("POST", "/api/v1/auth/logout", access, "{}", NULL, NULL), 204);
    CU_ASSERT_EQUAL(call("GET", "/api/v1/me", access, NULL, &j, NULL), 401);
    json_decref(j);
    CU_ASSERT_EQUAL(call("GET", "/api/v1/me", a2, NULL, NULL, NULL), 200); /* other session */
    free(access);
    free(refresh);
    free(a2);
    free(r2);
}

static void test_refresh_rotation_and_reuse(void)
{
    char *access, *refresh;
    login("{\"username\":\"alice\",\"password\":\"correct horse 1\"}", &access, &refresh);
    char body[256];
    snprintf(body, sizeof body, "{\"refresh_token\":\"%s\"}", refresh);
    json_t *j = NULL;
    CU_ASSERT_EQUAL_FATAL(call("POST", "/api/v1/auth/refresh", NULL, body, &j, NULL), 200);
    char *access2 = field(j, "access_token"), *refresh2 = field(j, "refresh_token");
    json_decref(j);
    CU_ASSERT_STRING_NOT_EQUAL(refresh, refresh2);
    CU_ASSERT_EQUAL(call("GET", "/api/v1/me", access2, NULL, NULL, NULL), 200);
    /* The old token again: reuse, the family dies, every token of it too. */
    CU_ASSERT_EQUAL(call("POST", "/api/v1/auth/refresh", NULL, body, &j, NULL), 401);
    CU_ASSERT_STRING_EQUAL(err_code(j), "token_reused");
    json_decref(j);
    snprintf(body, sizeof body, "{\"refresh_token\":\"%s\"}", refresh2);
    CU_ASSERT_EQUAL(call("POST", "/api/v1/auth/refresh", NULL, body, NULL, NULL), 401);
    CU_ASSERT_EQUAL(call("GET", "/api/v1/me", access2, NULL, NULL, NULL), 401);
    CU_ASSERT_EQUAL(call("GET", "/api/v1/me", access, NULL, NULL, NULL), 401);
    CU_ASSERT_EQUAL(call("POST", "/api/v1/auth/refresh", NULL, "{\"refresh_token\":\"wdr_nope\"}",
                         NULL, NULL),
                    401);
    free(access);
    free(refresh);
    free(access2);
    free(refresh2);
}

static void test_bad_tokens(void)
{
    char *access, *refresh;
    login("{\"username\":\"alice\",\"password\":\"correct horse 1\"}", &access, &refresh);
    /* Tampered payload, alg:none, garbage, wrong scheme. */
    char tampered[4096];
    snprintf(tampered, sizeof tampered, "%s", access);
    char *dot = strchr(tampered, '.');
    dot[3] = dot[3] == 'A' ? 'B' : 'A';
    CU_ASSERT_EQUAL(call("GET", "/api/v1/me", tampered, NULL, NULL, NULL), 401);
    char none[4096];
    const char *payload = strchr(access, '.') + 1;
    size_t plen = (size_t)(strchr(payload, '.') - payload);
    snprintf(none, sizeof none, "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.%.*s.", (int)plen, payload);
    CU_ASSERT_EQUAL(call("GET", "/api/v1/me", none, NULL, NULL, NULL), 401);
    CU_ASSERT_EQUAL(call("GET", "/api/v1/me", "garbage", NULL, NULL, NULL), 401);
    char *hdr = NULL;
    CU_ASSERT_EQUAL(wd_h_http(port, "GET", "/api/v1/me", "Authorization: Basic YTpi\r\n", NULL,
                              &hdr, NULL),
                    401);
    CU_ASSERT_PTR_NOT_NULL(strstr(hdr, "WWW-Authenticate: Bearer"));
    free(hdr);
    free(access);
    free(refresh);
}

static void test_bad_logins(void)
{
    json_t *j = NULL;
    const char *bad_bodies[] = {
        "{", "[]", "{\"username\":\"alice\"}", "{\"password\":\"x\"}",
        "{\"username\":\"alice\",\"email\":\"a@b.c\",\"password\":\"x\"}",
        "{\"username\":\"alice\",\"password\":\"x\",\"admin\":true}",
        "{\"username\":123,\"password\":\"x\"}", NULL};
    for (int i = 0; bad_bodies[i]; i++) {
        CU_ASSERT_EQUAL(call("POST", "/api/v1/auth/login", NULL, bad_bodies[i], &j, NULL), 400);
        CU_ASSERT_PTR_NOT_NULL(err_code(j));
        json_decref(j);
    }
    /* SQL metacharacters are data, not code. */
    CU_ASSERT_EQUAL(call("POST", "/api/v1/auth/login", NULL,
                         "{\"username\":\"x' OR '1'='1\",\"password\":\"' OR 1=1 --\"}", &j, NULL),
                    401);
    CU_ASSERT_STRING_EQUAL(err_code(j), "invalid_credentials");
    json_decref(j);
    /* Back-off: five free failures per account, then 429 with Retry-After. */
    int last = 0;
    for (int i = 0; i < 7; i++)
        last = call("POST", "/api/v1/auth/login", NULL,
                    "{\"username\":\"bob\",\"password\":\"wrong\"}", NULL, NULL);
    char *hdr = NULL;
    CU_ASSERT_EQUAL(last, 429);
    CU_ASSERT_EQUAL(wd_h_http(port, "POST", "/api/v1/auth/login", NULL,
                              "{\"username\":\"bob\",\"password\":\"wrong\"}", &hdr, NULL),
                    429);
    CU_ASSERT_PTR_NOT_NULL(strstr(hdr, "Retry-After: "));
    free(hdr);
    /* Alice is not affected by bob's lock. */
    char *a, *r;
    login("{\"username\":\"alice\",\"password\":\"correct horse 1\"}", &a, &r);
    free(a);
    free(r);
}

static void test_route_walk(void)
{
    size_t n = 0;
    const wd_route *routes = wd_api_routes(&n);
    CU_ASSERT(n > 0);
    for (size_t i = 0; i < n; i++) {
        if (routes[i].permission == NULL)
            continue;
        char path[256];
        snprintf(path, sizeof path, "%s", routes[i].pattern);
        /* Fill {params} with a UUID. */
        char *open;
        while ((open = strchr(path, '{')) != NULL) {
            char *close = strchr(open, '}');
            char rest[256];
            snprintf(rest, sizeof rest, "%s", close + 1);
            snprintf(open, sizeof path - (size_t)(open - path),
                     "6b1d1f3e-0000-4000-8000-000000000000%s", rest);
        }
        json_t *j = NULL;
        int st = call(routes[i].method, path, NULL, "{}", &j, NULL);
        if (st != 401)
            fprintf(stderr, "%s %s answered %d without credentials\n", routes[i].method, path,
                    st);
        CU_ASSERT_EQUAL(st, 401);
        CU_ASSERT_STRING_EQUAL(err_code(j) ? err_code(j) : "", "unauthenticated");
        json_decref(j);
    }
}

/* The second walk: a logged-in user without the needed role or permission
 * gets 403 on every admin route and every server-permission route (as a
 * subuser holding no permission of a server that exists). */
static void test_route_walk_forbidden(void)
{
    PGconn *c = PQconnectdb(fx.pg.conninfo);
    PGresult *res = PQexec(
        c, "WITH n AS (INSERT INTO nodes (name, fqdn, memory_mb, disk_mb) "
           "VALUES ('walk', 'walk', 1, 1) RETURNING id), "
           "t AS (INSERT INTO templates (slug, name, body) VALUES ('walk', 'walk', '{}') "
           "RETURNING id), "
           "a AS (INSERT INTO allocations (node_id, ip, port) SELECT id, '127.0.0.1', 9 FROM n "
           "RETURNING id, node_id), "
           "s AS (INSERT INTO servers (name, owner_id, node_id, template_id, allocation_id) "
           "SELECT 'walk', (SELECT id FROM users WHERE username = 'alice'), a.node_id, t.id, a.id "
           "FROM a, t RETURNING id) SELECT id FROM s");
    CU_ASSERT_EQUAL_FATAL(PQresultStatus(res), PGRES_TUPLES_OK);
    char sid[40];
    snprintf(sid, sizeof sid, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    CU_ASSERT_EQUAL_FATAL(wd_api_create_user(api, "erin", "erin@example.com", "user",
                                             "erin password 1", NULL, 0, NULL),
                          WD_OK);
    const char *params[] = {sid};
    res = PQexecParams(c,
                       "INSERT INTO subusers (server_id, user_id, permissions) SELECT $1, id, "
                       "'{}' FROM users WHERE username = 'erin'",
                       1, NULL, params, NULL, NULL, 0);
    CU_ASSERT_EQUAL(PQresultStatus(res), PGRES_COMMAND_OK);
    PQclear(res);
    PQfinish(c);
    char *access, *refresh;
    login("{\"username\":\"erin\",\"password\":\"erin password 1\"}", &access, &refresh);

    size_t n = 0;
    const wd_route *routes = wd_api_routes(&n);
    int checked = 0;
    for (size_t i = 0; i < n; i++) {
        const char *perm = routes[i].permission;
        if (perm == NULL || strcmp(perm, "user") == 0 || strcmp(perm, "server") == 0)
            continue;
        char path[256];
        snprintf(path, sizeof path, "%s", routes[i].pattern);
        char *open;
        while ((open = strchr(path, '{')) != NULL) {
            char *close = strchr(open, '}');
            bool is_id = strncmp(open, "{id}", 4) == 0;
            char rest[256];
            snprintf(rest, sizeof rest, "%s", close + 1);
            snprintf(open, sizeof path - (size_t)(open - path), "%s%s",
                     is_id ? sid : "6b1d1f3e-0000-4000-8000-000000000000", rest);
        }
        json_t *j = NULL;
        int st = call(routes[i].method, path, access, "{}", &j, NULL);
        if (st != 403)
            fprintf(stderr, "%s %s (%s) answered %d without the permission\n", routes[i].method,
                    path, perm, st);
        CU_ASSERT_EQUAL(st, 403);
        CU_ASSERT_STRING_EQUAL(err_code(j) ? err_code(j) : "", "forbidden");
        json_decref(j);
        checked++;
    }
    CU_ASSERT(checked > 10);
    free(access);
    free(refresh);
}

static void test_openapi_matches_routes(void)
{
    json_t *spec = NULL;
    CU_ASSERT_EQUAL_FATAL(call("GET", "/api/v1/openapi.json", NULL, NULL, &spec, NULL), 200);
    CU_ASSERT_PTR_NOT_NULL_FATAL(spec);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(spec, "openapi")), "3.1.0");
    json_t *paths = json_object_get(spec, "paths");
    size_t n = 0, in_spec = 0;
    const wd_route *routes = wd_api_routes(&n);
    for (size_t i = 0; i < n; i++) {
        char method[16];
        snprintf(method, sizeof method, "%s", routes[i].method);
        for (char *c = method; *c; c++)
            *c = (char)(*c + 32 * (*c >= 'A' && *c <= 'Z'));
        json_t *op = json_object_get(json_object_get(paths, routes[i].pattern), method);
        if (op == NULL)
            fprintf(stderr, "route %s %s is not in openapi.json\n", routes[i].method,
                    routes[i].pattern);
        CU_ASSERT_PTR_NOT_NULL(op);
        /* A public route says so in the spec; a protected one does not. */
        json_t *sec = json_object_get(op, "security");
        CU_ASSERT_EQUAL(routes[i].permission == NULL, sec && json_array_size(sec) == 0);
    }
    const char *path;
    json_t *item;
    json_object_foreach(paths, path, item)
    {
        const char *m;
        json_t *op;
        json_object_foreach(item, m, op)
        {
            static const char *const methods[] = {"get", "put", "post", "delete", "patch", NULL};
            bool is_method = false;
            for (int k = 0; methods[k]; k++)
                is_method |= strcmp(methods[k], m) == 0;
            if (!is_method)
                continue; /* "parameters" and friends */
            in_spec++;
            bool found = false;
            for (size_t i = 0; i < n && !found; i++)
                found = strcmp(routes[i].pattern, path) == 0 && strcasecmp(routes[i].method, m) == 0;
            if (!found)
                fprintf(stderr, "openapi.json has %s %s, the router does not\n", m, path);
            CU_ASSERT(found);
        }
    }
    CU_ASSERT_EQUAL(in_spec, n);
    json_decref(spec);
}

static void test_ops(void)
{
    json_t *j = NULL;
    CU_ASSERT_EQUAL(call("GET", "/healthz", NULL, NULL, &j, NULL), 200);
    json_decref(j);
    CU_ASSERT_EQUAL(call("GET", "/readyz", NULL, NULL, &j, NULL), 200);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "database")), "ok");
    json_decref(j);
    char *body = NULL;
    CU_ASSERT_EQUAL(wd_h_http(port, "GET", "/metrics", NULL, NULL, NULL, &body), 200);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(body, "warden_http_requests_total{route=\"/api/v1/auth/login\",method=\"POST\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(body, "warden_http_request_duration_seconds_bucket{"));
    CU_ASSERT_PTR_NOT_NULL(strstr(body, "warden_db_pool_size 4"));
    free(body);
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strdup(buf);
}

static void test_templates(void)
{
    char *admin, *r1;
    login("{\"username\":\"alice\",\"password\":\"correct horse 1\"}", &admin, &r1);
    CU_ASSERT_EQUAL_FATAL(wd_api_create_user(api, "carol", "carol@example.com", "user",
                                             "carol pass 12", NULL, 0, NULL),
                          WD_OK);
    char *user, *r2;
    login("{\"username\":\"carol\",\"password\":\"carol pass 12\"}", &user, &r2);

    char path[512];
    snprintf(path, sizeof path, "%s/templates/testgame.json", WARDEN_SOURCE_DIR);
    char *tpl = read_text(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tpl);
    json_t *j = NULL;
    /* Users read, admins write. */
    CU_ASSERT_EQUAL(call("POST", "/api/v1/templates", user, tpl, &j, NULL), 403);
    json_decref(j);
    CU_ASSERT_EQUAL_FATAL(call("POST", "/api/v1/templates", admin, tpl, &j, NULL), 201);
    char *id = field(j, "id");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "slug")), "testgame");
    json_decref(j);
    CU_ASSERT_EQUAL(call("POST", "/api/v1/templates", admin, tpl, &j, NULL), 409);
    CU_ASSERT_STRING_EQUAL(err_code(j), "conflict");
    json_decref(j);
    /* A Pterodactyl egg: imported, with notes. */
    snprintf(path, sizeof path, "%s/tests/common/fixtures/egg_relay.json", WARDEN_SOURCE_DIR);
    char *egg = read_text(path);
    CU_ASSERT_EQUAL(call("POST", "/api/v1/templates", admin, egg, &j, NULL), 201);
    CU_ASSERT(json_array_size(json_object_get(j, "import_notes")) > 0);
    json_decref(j);
    /* Bad templates change nothing. */
    const char *bad[] = {"{", "{\"format\":\"warden/v1\"}",
                         "{\"format\":\"warden/v1\",\"id\":\"x\",\"startup\":\"a\","
                         "\"config_files\":[{\"path\":\"../x\",\"content\":\"\"}]}",
                         NULL};
    for (int i = 0; bad[i]; i++) {
        CU_ASSERT_EQUAL(call("POST", "/api/v1/templates", admin, bad[i], &j, NULL), 400);
        json_decref(j);
    }
    CU_ASSERT_EQUAL(call("GET", "/api/v1/templates?sort=-name&per_page=1", user, NULL, &j, NULL),
                    200);
    CU_ASSERT_EQUAL(json_array_size(json_object_get(j, "data")), 1);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(json_object_get(j, "pagination"), "total")),
                    2);
    json_decref(j);
    CU_ASSERT_EQUAL(call("GET", "/api/v1/templates?search=test", user, NULL, &j, NULL), 200);
    CU_ASSERT_EQUAL(json_array_size(json_object_get(j, "data")), 1);
    json_decref(j);
    const char *bad_lists[] = {"/api/v1/templates?per_page=0", "/api/v1/templates?page=x",
                               "/api/v1/templates?sort=id;drop", NULL};
    for (int i = 0; bad_lists[i]; i++)
        CU_ASSERT_EQUAL(call("GET", bad_lists[i], user, NULL, NULL, NULL), 400);
    char url[128];
    snprintf(url, sizeof url, "/api/v1/templates/%s", id);
    CU_ASSERT_EQUAL(call("GET", url, user, NULL, &j, NULL), 200);
    CU_ASSERT_STRING_EQUAL(
        json_string_value(json_object_get(json_object_get(j, "template"), "id")), "testgame");
    json_decref(j);
    CU_ASSERT_EQUAL(call("GET", "/api/v1/templates/not-a-uuid", user, NULL, NULL, NULL), 400);
    CU_ASSERT_EQUAL(
        call("GET", "/api/v1/templates/6b1d1f3e-0000-4000-8000-000000000000", user, NULL, NULL, NULL),
        404);
    CU_ASSERT_EQUAL(call("PUT", url, admin, tpl, NULL, NULL), 200);
    CU_ASSERT_EQUAL(call("DELETE", url, user, NULL, NULL, NULL), 403);
    CU_ASSERT_EQUAL(call("DELETE", url, admin, NULL, NULL, NULL), 204);
    CU_ASSERT_EQUAL(call("GET", url, user, NULL, NULL, NULL), 404);
    /* Every write left an audit row. */
    PGconn *c = PQconnectdb(fx.pg.conninfo);
    PGresult *res = PQexec(c, "SELECT count(*) FROM audit_log WHERE action LIKE 'template.%'");
    CU_ASSERT_STRING_EQUAL(PQgetvalue(res, 0, 0), "4");
    PQclear(res);
    PQfinish(c);
    free(id);
    free(tpl);
    free(egg);
    free(admin);
    free(r1);
    free(user);
    free(r2);
}

int main(void)
{
    static const wd_h_case cases[] = {
        {"login by username or email, me, logout ends only that session", test_login_me_logout},
        {"refresh rotates; reusing a rotated token revokes the family", test_refresh_rotation_and_reuse},
        {"tampered, alg:none, garbage tokens and other schemes are 401", test_bad_tokens},
        {"bad login bodies are 400; SQL is data; failures back off with 429", test_bad_logins},
        {"every route that needs a permission answers 401 without credentials", test_route_walk},
        {"the router's routes and openapi.json's operations are the same set",
         test_openapi_matches_routes},
        {"healthz, readyz and metrics", test_ops},
        {"templates: admins write (ours or eggs), users read, lists page and sort",
         test_templates},
        {"every admin or server-permission route answers 403 without the permission",
         test_route_walk_forbidden},
        {NULL, NULL}};
    wd_h_suite("api-auth", suite_init, suite_clean, cases);
    return wd_h_run();
}
