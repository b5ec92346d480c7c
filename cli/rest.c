/* wardenctl REST mode (see rest.h), on libcurl and jansson. */
#include "rest.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

typedef struct {
    char *data;
    size_t len;
} buf;

static size_t collect(char *p, size_t size, size_t n, void *ud)
{
    buf *b = ud;
    size_t add = size * n;
    char *nd = realloc(b->data, b->len + add + 1);
    if (nd == NULL)
        return 0;
    memcpy(nd + b->len, p, add);
    b->data = nd;
    b->len += add;
    b->data[b->len] = '\0';
    return add;
}

typedef struct {
    char url[512];
    char access[4200];
    char refresh[256];
    char path[1024];
} session;

static void session_path(session *s)
{
    const char *env = getenv("WARDEN_SESSION");
    const char *home = getenv("HOME");
    if (env && *env)
        snprintf(s->path, sizeof s->path, "%s", env);
    else
        snprintf(s->path, sizeof s->path, "%s/.config/warden/session.json", home ? home : ".");
}

static bool session_load(session *s)
{
    session_path(s);
    json_t *j = json_load_file(s->path, 0, NULL);
    if (j == NULL)
        return false;
    snprintf(s->url, sizeof s->url, "%s", json_string_value(json_object_get(j, "api")) ?: "");
    snprintf(s->access, sizeof s->access, "%s",
             json_string_value(json_object_get(j, "access_token")) ?: "");
    snprintf(s->refresh, sizeof s->refresh, "%s",
             json_string_value(json_object_get(j, "refresh_token")) ?: "");
    json_decref(j);
    return s->access[0] != '\0';
}

static int session_save(session *s)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", s->path);
    char *slash = strrchr(dir, '/');
    if (slash) {
        *slash = '\0';
        wd_mkdir_p(dir, 0700);
    }
    json_t *j = json_pack("{s:s, s:s, s:s}", "api", s->url, "access_token", s->access,
                          "refresh_token", s->refresh);
    char *text = json_dumps(j, JSON_INDENT(2));
    json_decref(j);
    wd_status st = text ? wd_write_file_atomic(s->path, text, strlen(text), 0600) : WD_ERR_NOMEM;
    free(text);
    return st == WD_OK ? 0 : -1;
}

/* One request; *status the HTTP status (0 when the API was unreachable). */
static json_t *request(const char *url, const char *method, const char *path, const char *token,
                       json_t *body, long *status, char *err, size_t errlen)
{
    CURL *c = curl_easy_init();
    buf out = {0};
    char full[1024], auth[4300];
    snprintf(full, sizeof full, "%s%s", url, path);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    if (token && *token) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
        h = curl_slist_append(h, auth);
    }
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    curl_easy_setopt(c, CURLOPT_URL, full);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "wardenctl/" WARDEN_VERSION);
    if (text)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, text);
    CURLcode rc = curl_easy_perform(c);
    *status = 0;
    if (rc != CURLE_OK)
        snprintf(err, errlen, "cannot reach %.300s: %s", url, curl_easy_strerror(rc));
    else
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    free(text);
    json_t *j = out.data && *out.data ? json_loads(out.data, 0, NULL) : NULL;
    free(out.data);
    if (*status >= 400) {
        const char *msg =
            json_string_value(json_object_get(json_object_get(j, "error"), "message"));
        const char *code = json_string_value(json_object_get(json_object_get(j, "error"), "code"));
        snprintf(err, errlen, "%s (%ld %s)", msg ? msg : "request failed", *status,
                 code ? code : "");
    }
    return j;
}

/* Request with the session's token, refreshing it once on 401. */
static json_t *authed(session *s, const char *method, const char *path, json_t *body,
                      long *status, char *err, size_t errlen)
{
    const char *tok = getenv("WARDEN_TOKEN");
    bool env_token = tok && *tok;
    json_t *j = request(s->url, method, path, env_token ? tok : s->access, body, status, err,
                        errlen);
    if (*status != 401 || env_token || s->refresh[0] == '\0')
        return j;
    json_decref(j);
    json_t *rb = json_pack("{s:s}", "refresh_token", s->refresh);
    long st = 0;
    json_t *r = request(s->url, "POST", "/api/v1/auth/refresh", NULL, rb, &st, err, errlen);
    json_decref(rb);
    if (st != 200) {
        json_decref(r);
        snprintf(err, errlen, "the session has ended: run 'wardenctl --api %.300s login' again",
                 s->url);
        return NULL;
    }
    snprintf(s->access, sizeof s->access, "%s",
             json_string_value(json_object_get(r, "access_token")) ?: "");
    snprintf(s->refresh, sizeof s->refresh, "%s",
             json_string_value(json_object_get(r, "refresh_token")) ?: "");
    json_decref(r);
    session_save(s);
    return request(s->url, method, path, s->access, body, status, err, errlen);
}

static int fail(const char *msg)
{
    fprintf(stderr, "wardenctl: %s\n", msg);
    return 1;
}

static int cmd_login(session *s, int argc, char **argv)
{
    const char *user = NULL, *totp = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--username") == 0 && i + 1 < argc)
            user = argv[++i];
        else if (strcmp(argv[i], "--totp") == 0 && i + 1 < argc)
            totp = argv[++i];
        else {
            fprintf(stderr, "wardenctl: login takes --username NAME [--totp CODE]; the "
                            "password is read from standard input\n");
            return 2;
        }
    }
    if (user == NULL) {
        fprintf(stderr, "wardenctl: login needs --username\n");
        return 2;
    }
    if (isatty(0))
        fprintf(stderr, "password: ");
    char pw[256];
    if (fgets(pw, sizeof pw, stdin) == NULL)
        return fail("no password on standard input");
    pw[strcspn(pw, "\r\n")] = '\0';
    json_t *body = json_pack("{s:s, s:s}", "username", user, "password", pw);
    if (totp)
        json_object_set_new(body, "totp", json_string(totp));
    long st = 0;
    char err[512] = "";
    json_t *r = request(s->url, "POST", "/api/v1/auth/login", NULL, body, &st, err, sizeof err);
    json_decref(body);
    if (st != 200) {
        json_decref(r);
        return fail(err);
    }
    snprintf(s->access, sizeof s->access, "%s",
             json_string_value(json_object_get(r, "access_token")) ?: "");
    snprintf(s->refresh, sizeof s->refresh, "%s",
             json_string_value(json_object_get(r, "refresh_token")) ?: "");
    json_decref(r);
    if (session_save(s) != 0)
        return fail("cannot save the session file");
    printf("logged in as %s (session in %s)\n", user, s->path);
    return 0;
}

static int cmd_servers(session *s, bool json)
{
    long st = 0;
    char err[512] = "";
    json_t *r = authed(s, "GET", "/api/v1/servers?per_page=100", NULL, &st, err, sizeof err);
    if (st != 200) {
        json_decref(r);
        return fail(err);
    }
    json_t *data = json_object_get(r, "data");
    if (json) {
        char *t = json_dumps(data, JSON_COMPACT);
        printf("%s\n", t ? t : "[]");
        free(t);
    } else {
        printf("%-36s  %-10s %-21s %s\n", "SERVER", "STATE", "ADDRESS", "NAME");
        size_t i;
        json_t *sv;
        json_array_foreach(data, i, sv)
        {
            json_t *a = json_object_get(sv, "allocation");
            char addr[64];
            snprintf(addr, sizeof addr, "%s:%lld", json_string_value(json_object_get(a, "ip")) ?: "",
                     (long long)json_integer_value(json_object_get(a, "port")));
            printf("%-36s  %-10s %-21s %s\n", json_string_value(json_object_get(sv, "id")),
                   json_string_value(json_object_get(sv, "state")), addr,
                   json_string_value(json_object_get(sv, "name")));
        }
    }
    json_decref(r);
    return 0;
}

static int simple_post(session *s, const char *path, json_t *body, bool json, const char *done)
{
    long st = 0;
    char err[512] = "";
    json_t *r = authed(s, "POST", path, body, &st, err, sizeof err);
    json_decref(body);
    if (st < 200 || st >= 300) {
        json_decref(r);
        return fail(err[0] ? err : "request failed");
    }
    if (json) {
        char *t = r ? json_dumps(r, JSON_COMPACT) : NULL;
        printf("%s\n", t ? t : "{\"ok\":true}");
        free(t);
    } else {
        const char *state = json_string_value(json_object_get(r, "state"));
        printf("%s%s%s\n", done, state ? ": " : "", state ? state : "");
    }
    json_decref(r);
    return 0;
}

int wd_rest_main(const char *api_url, bool json, int argc, char **argv)
{
    /* --json may also follow the command. */
    int k = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else
            argv[k++] = argv[i];
    }
    argc = k;
    if (argc == 0) {
        fprintf(stderr, "wardenctl: missing command\n");
        return 2;
    }
    session s = {0};
    session_load(&s);
    if (api_url && *api_url)
        snprintf(s.url, sizeof s.url, "%s", api_url);
    session_path(&s);
    if (s.url[0] == '\0') {
        fprintf(stderr, "wardenctl: give the API with --api URL (or WARDEN_API_URL)\n");
        return 2;
    }
    size_t n = strlen(s.url);
    if (n && s.url[n - 1] == '/')
        s.url[n - 1] = '\0';
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc;
    const char *cmd = argv[0];
    char path[256];
    if (strcmp(cmd, "login") == 0) {
        rc = cmd_login(&s, argc, argv);
    } else if (strcmp(cmd, "servers") == 0 && argc == 1) {
        rc = cmd_servers(&s, json);
    } else if (strcmp(cmd, "power") == 0 && argc == 3 && wd_uuid_valid(argv[1])) {
        snprintf(path, sizeof path, "/api/v1/servers/%s/power", argv[1]);
        rc = simple_post(&s, path, json_pack("{s:s}", "action", argv[2]), json, argv[2]);
    } else if (strcmp(cmd, "send") == 0 && argc == 3 && wd_uuid_valid(argv[1])) {
        snprintf(path, sizeof path, "/api/v1/servers/%s/command", argv[1]);
        rc = simple_post(&s, path, json_pack("{s:s}", "command", argv[2]), json, "sent");
    } else {
        fprintf(stderr, "wardenctl: REST mode commands: login --username NAME | servers | "
                        "power SERVER_ID start|stop|restart|kill | send SERVER_ID COMMAND\n");
        rc = 2;
    }
    curl_global_cleanup();
    return rc;
}
