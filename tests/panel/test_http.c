/* The HTTP layer on its own: routing (404, 405 with Allow, path params),
 * body limits (413), JSON errors, the error body shape, request ids,
 * handlers that block without stalling other requests, authorize hook,
 * a clean stop with requests in flight. */
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "http.h"
#include "util.h"

static void h_echo(wd_http_req *r, void *ud)
{
    json_t *j = wd_http_json_body(r);
    if (j == NULL)
        return;
    json_object_set_new(j, "id", json_string(wd_http_param(r, "id")));
    const char *q = wd_http_query(r, "q");
    if (q)
        json_object_set_new(j, "q", json_string(q));
    wd_http_reply_json(r, 200, j);
}

static void h_slow(wd_http_req *r, void *ud)
{
    usleep(500000);
    wd_http_reply_json(r, 200, json_pack("{s:b}", "slow", 1));
}

static void h_fast(wd_http_req *r, void *ud)
{
    wd_http_reply_json(r, 200, json_pack("{s:s}", "ua", wd_http_header(r, "user-agent")
                                                          ? wd_http_header(r, "user-agent")
                                                          : ""));
}

static void h_forgets(wd_http_req *r, void *ud)
{
}

static void h_fails(wd_http_req *r, void *ud)
{
    wd_http_reply_status(r, WD_ERR(WD_ERR_NOT_FOUND, "server 42 not found"));
}

static bool authorize(wd_http_req *r, const wd_route *route, void *ud)
{
    if (route->permission == NULL)
        return true;
    const char *auth = wd_http_header(r, "Authorization");
    if (auth == NULL) {
        wd_http_reply_error(r, 401, "unauthenticated", "log in first", NULL);
        return false;
    }
    if (strcmp(auth, "Bearer good") != 0) {
        wd_http_reply_error(r, 403, "forbidden", "missing permission", NULL);
        return false;
    }
    return true;
}

static const wd_route routes[] = {
    {"POST", "/api/v1/things/{id}/echo", NULL, h_echo},
    {"GET", "/api/v1/slow", NULL, h_slow},
    {"GET", "/api/v1/fast", NULL, h_fast},
    {"GET", "/api/v1/forgets", NULL, h_forgets},
    {"GET", "/api/v1/fails", NULL, h_fails},
    {"GET", "/api/v1/secret", "secret.read", h_fast},
    {"DELETE", "/api/v1/things/{id}/echo", NULL, h_fast},
};

static wd_http *srv;

static int suite_init(void)
{
    wd_http_cfg cfg = wd_http_cfg_defaults();
    cfg.routes = routes;
    cfg.nroutes = sizeof routes / sizeof routes[0];
    cfg.max_body = 4096;
    cfg.authorize = authorize;
    cfg.workers = 4;
    return wd_http_start(&srv, &cfg) == WD_OK ? 0 : 1;
}

static int suite_clean(void)
{
    wd_http_stop(&srv);
    return 0;
}

static json_t *parse(const char *text)
{
    return json_loads(text ? text : "", 0, NULL);
}

static const char *err_code(json_t *j)
{
    return json_string_value(json_object_get(json_object_get(j, "error"), "code"));
}

static void test_routing(void)
{
    int port = wd_http_port(srv);
    char *hdr = NULL, *body = NULL;
    CU_ASSERT_EQUAL(wd_h_http(port, "POST", "/api/v1/things/abc/echo?q=x%20y", NULL,
                              "{\"a\":1}", &hdr, &body),
                    200);
    json_t *j = parse(body);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "id")), "abc");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "q")), "x y");
    CU_ASSERT_PTR_NOT_NULL(strcasestr(hdr, "X-Request-Id: "));
    json_decref(j);
    free(hdr);
    free(body);

    CU_ASSERT_EQUAL(wd_h_http(port, "GET", "/api/v1/nope", NULL, NULL, NULL, &body), 404);
    j = parse(body);
    CU_ASSERT_STRING_EQUAL(err_code(j), "not_found");
    json_decref(j);
    free(body);

    CU_ASSERT_EQUAL(wd_h_http(port, "PUT", "/api/v1/things/abc/echo", NULL, "{}", &hdr, &body),
                    405);
    CU_ASSERT_PTR_NOT_NULL(strcasestr(hdr, "Allow: POST, DELETE"));
    free(hdr);
    free(body);

    /* The client's request id is echoed when it is sane, replaced when not. */
    CU_ASSERT_EQUAL(wd_h_http(port, "GET", "/api/v1/fast", "X-Request-Id: my-id-1\r\n", NULL,
                              &hdr, NULL),
                    200);
    CU_ASSERT_PTR_NOT_NULL(strstr(hdr, "X-Request-Id: my-id-1"));
    free(hdr);
    CU_ASSERT_EQUAL(wd_h_http(port, "GET", "/api/v1/fast", "X-Request-Id: <script>\r\n", NULL,
                              &hdr, NULL),
                    200);
    CU_ASSERT_PTR_NULL(strstr(hdr, "<script>"));
    free(hdr);
}

static void test_bad_bodies(void)
{
    int port = wd_http_port(srv);
    char *body = NULL;
    const char *bad[] = {"{", "[1,2]", "{\"a\":1,\"a\":2}", "nul", "\"str\"", NULL};
    for (int i = 0; bad[i]; i++) {
        CU_ASSERT_EQUAL(
            wd_h_http(port, "POST", "/api/v1/things/x/echo", NULL, bad[i], NULL, &body), 400);
        json_t *j = parse(body);
        CU_ASSERT_STRING_EQUAL(err_code(j), "invalid_json");
        CU_ASSERT_PTR_NOT_NULL(json_object_get(json_object_get(j, "error"), "message"));
        json_decref(j);
        free(body);
    }
    char *huge = malloc(10000);
    memset(huge, ' ', 9999);
    huge[0] = '{';
    huge[9998] = '}';
    huge[9999] = '\0';
    CU_ASSERT_EQUAL(wd_h_http(port, "POST", "/api/v1/things/x/echo", NULL, huge, NULL, &body),
                    413);
    json_t *j = parse(body);
    CU_ASSERT_STRING_EQUAL(err_code(j), "payload_too_large");
    json_decref(j);
    free(body);
    free(huge);
}

static void test_handler_errors(void)
{
    int port = wd_http_port(srv);
    char *body = NULL;
    CU_ASSERT_EQUAL(wd_h_http(port, "GET", "/api/v1/forgets", NULL, NULL, NULL, &body), 500);
    free(body);
    CU_ASSERT_EQUAL(wd_h_http(port, "GET", "/api/v1/fails", NULL, NULL, NULL, &body), 404);
    json_t *j = parse(body);
    CU_ASSERT_STRING_EQUAL(
        json_string_value(json_object_get(json_object_get(j, "error"), "message")),
        "server 42 not found");
    json_decref(j);
    free(body);
    CU_ASSERT_EQUAL(wd_h_http(port, "GET", "/api/v1/secret", NULL, NULL, NULL, NULL), 401);
    CU_ASSERT_EQUAL(
        wd_h_http(port, "GET", "/api/v1/secret", "Authorization: Bearer bad\r\n", NULL, NULL, NULL),
        403);
    CU_ASSERT_EQUAL(wd_h_http(port, "GET", "/api/v1/secret", "Authorization: Bearer good\r\n",
                              NULL, NULL, NULL),
                    200);
}

static void *slow_client(void *arg)
{
    int *status = arg;
    *status = wd_h_http(wd_http_port(srv), "GET", "/api/v1/slow", NULL, NULL, NULL, NULL);
    return NULL;
}

static void test_blocking_handlers(void)
{
    /* Two slow handlers block two workers; fast requests still get through
     * at once: no I/O thread ever waits for a handler. */
    pthread_t t[2];
    int st[2] = {0, 0};
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, slow_client, &st[i]);
    usleep(100000);
    int64_t t0 = wd_mono_ms();
    for (int i = 0; i < 20; i++)
        CU_ASSERT_EQUAL(wd_h_http(wd_http_port(srv), "GET", "/api/v1/fast", NULL, NULL, NULL, NULL),
                        200);
    CU_ASSERT(wd_mono_ms() - t0 < 300);
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
        CU_ASSERT_EQUAL(st[i], 200);
    }
}

static void test_stop_with_inflight(void)
{
    /* A private server stopped while a slow request runs: it answers, then
     * stops (MHD would abort on a suspended connection). */
    wd_http_cfg cfg = wd_http_cfg_defaults();
    cfg.routes = routes;
    cfg.nroutes = sizeof routes / sizeof routes[0];
    wd_http *h = NULL;
    CU_ASSERT_EQUAL_FATAL(wd_http_start(&h, &cfg), WD_OK);
    wd_http *saved = srv;
    srv = h;
    pthread_t t;
    int st = 0;
    pthread_create(&t, NULL, slow_client, &st);
    usleep(100000);
    wd_http_stop(&h);
    pthread_join(t, NULL);
    CU_ASSERT_EQUAL(st, 200);
    srv = saved;
}

static void test_static_files(void)
{
    /* A web build: index.html, a hashed asset, a secret outside it and a
     * symbolic link pointing there. */
    const char *root = wd_h_tmpdir("static");
    char dir[600], path[700];
    snprintf(dir, sizeof dir, "%s/dist", root);
    snprintf(path, sizeof path, "%s/assets", dir);
    CU_ASSERT_EQUAL_FATAL(wd_mkdir_p(path, 0755), WD_OK);
    snprintf(path, sizeof path, "%s/index.html", dir);
    CU_ASSERT_EQUAL(wd_write_file_atomic(path, "<html>panel</html>", 18, 0644), WD_OK);
    snprintf(path, sizeof path, "%s/assets/app-1a2b.js", dir);
    CU_ASSERT_EQUAL(wd_write_file_atomic(path, "console.log(1)", 14, 0644), WD_OK);
    snprintf(path, sizeof path, "%s/secret.txt", root);
    CU_ASSERT_EQUAL(wd_write_file_atomic(path, "top secret", 10, 0644), WD_OK);
    char link[700];
    snprintf(link, sizeof link, "%s/escape", dir);
    CU_ASSERT_EQUAL(symlink(root, link), 0);

    wd_http_cfg cfg = wd_http_cfg_defaults();
    cfg.routes = routes;
    cfg.nroutes = sizeof routes / sizeof routes[0];
    cfg.static_dir = dir;
    wd_http *h = NULL;
    CU_ASSERT_EQUAL_FATAL(wd_http_start(&h, &cfg), WD_OK);
    int port = wd_http_port(h);
    char *hdr = NULL, *body = NULL;

    CU_ASSERT_EQUAL(wd_h_http(port, "GET", "/", NULL, NULL, &hdr, &body), 200);
    CU_ASSERT(body && strcmp(body, "<html>panel</html>") == 0);
    CU_ASSERT(hdr && strcasestr(hdr, "content-security-policy: default-src 'self'"));
    CU_ASSERT(hdr && strcasestr(hdr, "content-type: text/html"));
    free(hdr);
    free(body);
    CU_ASSERT_EQUAL(wd_h_http(port, "GET", "/assets/app-1a2b.js", NULL, NULL, &hdr, &body), 200);
    CU_ASSERT(body && strcmp(body, "console.log(1)") == 0);
    CU_ASSERT(hdr && strcasestr(hdr, "content-type: text/javascript"));
    CU_ASSERT(hdr && strcasestr(hdr, "immutable"));
    free(hdr);
    free(body);
    /* An app route (no extension) is the app; a missing file is not. */
    CU_ASSERT_EQUAL(wd_h_http(port, "GET", "/servers/42", NULL, NULL, NULL, &body), 200);
    CU_ASSERT(body && strcmp(body, "<html>panel</html>") == 0);
    free(body);
    static const char *const refused[] = {"/missing.js", "/../secret.txt", "/assets/../../secret.txt",
                                          "/escape/secret.txt", "/.hidden", "/assets//app-1a2b.js",
                                          "/%2e%2e/secret.txt", "/api/v1/nothing"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        body = NULL;
        int st = wd_h_http(port, "GET", refused[i], NULL, NULL, NULL, &body);
        CU_ASSERT_EQUAL(st, 404);
        CU_ASSERT(body && !strstr(body, "top secret") && strstr(body, "\"not_found\""));
        if (st != 404)
            fprintf(stderr, "static: %s answered %d\n", refused[i], st);
        free(body);
    }
    /* Only GET and HEAD. */
    CU_ASSERT_EQUAL(wd_h_http(port, "POST", "/index.html", NULL, "", NULL, NULL), 404);
    wd_http_stop(&h);
}

int main(void)
{
    static const wd_h_case cases[] = {
        {"routes, path params, query, 404, 405 with Allow, request ids", test_routing},
        {"malformed JSON is 400 and oversize bodies 413, with the error shape", test_bad_bodies},
        {"handler errors map to statuses; authorize hook gives 401/403", test_handler_errors},
        {"blocking handlers never stall other requests", test_blocking_handlers},
        {"stopping with a request in flight answers it first", test_stop_with_inflight},
        {"static files: the app, its assets, app routes; nothing outside the directory",
         test_static_files},
        {NULL, NULL}};
    wd_h_suite("http", suite_init, suite_clean, cases);
    return wd_h_run();
}
