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

#include "bulk.h"
#include "filter.h"
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
static json_t *authed(session *s, const char *method, const char *path, json_t *body, long *status,
                      char *err, size_t errlen)
{
    const char *tok = getenv("WARDEN_TOKEN");
    bool env_token = tok && *tok;
    json_t *j =
        request(s->url, method, path, env_token ? tok : s->access, body, status, err, errlen);
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

/* Every server the caller can see, all pages; *out a JSON array. */
static int list_servers(session *s, json_t **out)
{
    long st = 0;
    char err[512] = "", path[128];
    json_t *all = json_array();
    for (int page = 1; page <= 1000; page++) {
        snprintf(path, sizeof path, "/api/v1/servers?per_page=100&page=%d", page);
        json_t *r = authed(s, "GET", path, NULL, &st, err, sizeof err);
        if (st != 200) {
            json_decref(r);
            json_decref(all);
            return fail(err[0] ? err : "listing servers failed");
        }
        json_t *data = json_object_get(r, "data");
        size_t got = json_array_size(data);
        json_array_extend(all, data);
        json_int_t total =
            json_integer_value(json_object_get(json_object_get(r, "pagination"), "total"));
        json_decref(r);
        if (got == 0 || (json_int_t)json_array_size(all) >= total)
            break;
    }
    *out = all;
    return 0;
}

static int cmd_servers(session *s, bool json, bool ids)
{
    json_t *data = NULL;
    if (list_servers(s, &data) != 0)
        return 1;
    if (ids) {
        size_t i;
        json_t *sv;
        json_array_foreach(data, i, sv)
            printf("%s\n", json_string_value(json_object_get(sv, "id")) ?: "");
    } else if (json) {
        char *t = json_dumps(data, JSON_COMPACT);
        printf("%s\n", t ? t : "[]");
        free(t);
    } else {
        printf("%-36s  %-10s %-21s %6s %9s  %s\n", "SERVER", "STATE", "ADDRESS", "CPU%", "MEMORY",
               "NAME");
        size_t i;
        json_t *sv;
        json_array_foreach(data, i, sv)
        {
            json_t *a = json_object_get(sv, "allocation");
            json_t *res = json_object_get(sv, "resources");
            char addr[64], cpu[16] = "-", mem[32] = "-";
            snprintf(addr, sizeof addr, "%s:%lld",
                     json_string_value(json_object_get(a, "ip")) ?: "",
                     (long long)json_integer_value(json_object_get(a, "port")));
            if (json_is_object(res)) {
                snprintf(cpu, sizeof cpu, "%.1f",
                         json_number_value(json_object_get(res, "cpu_percent")));
                snprintf(mem, sizeof mem, "%.1f MB",
                         (double)json_integer_value(json_object_get(res, "memory_bytes")) /
                             1048576.0);
            }
            printf("%-36s  %-10s %-21s %6s %9s  %s\n",
                   json_string_value(json_object_get(sv, "id")) ?: "",
                   json_string_value(json_object_get(sv, "state")) ?: "", addr, cpu, mem,
                   json_string_value(json_object_get(sv, "name")) ?: "");
        }
    }
    json_decref(data);
    return 0;
}

/* ---- bulk: power and broadcast through the API -------------------------- */

/* Template ids in server rows are database ids; filters and the broadcast
 * table use the template's slug. Looked up once per template. */
typedef struct {
    char id[64], slug[128];
} slug_cache;

static const char *template_slug(session *s, const char *tpl_id, slug_cache *c, size_t cap,
                                 size_t *n)
{
    if (tpl_id == NULL || !wd_uuid_valid(tpl_id))
        return "";
    for (size_t i = 0; i < *n; i++)
        if (strcmp(c[i].id, tpl_id) == 0)
            return c[i].slug;
    if (*n == cap)
        return "";
    char path[128], err[512];
    long st = 0;
    snprintf(path, sizeof path, "/api/v1/templates/%s", tpl_id);
    json_t *r = authed(s, "GET", path, NULL, &st, err, sizeof err);
    snprintf(c[*n].id, sizeof c[*n].id, "%s", tpl_id);
    snprintf(c[*n].slug, sizeof c[*n].slug, "%s",
             st == 200 ? json_string_value(json_object_get(r, "slug")) ?: "" : "");
    json_decref(r);
    return c[(*n)++].slug;
}

/* Does the caller hold perm on server id? GET /servers/{id} lists what the
 * caller may do, admins included. 1: yes. 0: the API said no (the list
 * lacks perm, or 403), why in err. -1: no answer (unreachable, 404, 429,
 * 5xx, a reply without the list), the error in err. Only a definite no
 * may become a "skipped": anything else is a failure the operator must
 * see, not a server quietly left out. */
static int holds(session *s, const char *id, const char *perm, char *err, size_t errlen)
{
    char path[128], why[512] = "";
    long st = 0;
    snprintf(path, sizeof path, "/api/v1/servers/%s", id);
    json_t *r = authed(s, "GET", path, NULL, &st, why, sizeof why);
    json_t *perms = json_object_get(r, "permissions");
    int rc = -1;
    if (st == 200 && json_is_array(perms)) {
        size_t i;
        json_t *p;
        rc = 0;
        json_array_foreach(perms, i, p)
        {
            if (json_is_string(p) && strcmp(json_string_value(p), perm) == 0)
                rc = 1;
        }
        if (rc == 0)
            snprintf(err, errlen, "you do not hold %s on it", perm);
    } else if (st == 403) {
        rc = 0;
        snprintf(err, errlen, "you do not hold %s on it: %s", perm, why);
    } else if (st == 200) {
        snprintf(err, errlen, "checking your permissions: the API listed none");
    } else {
        snprintf(err, errlen, "checking your permissions: %s", why[0] ? why : "the request failed");
    }
    json_decref(r);
    return rc;
}

typedef struct {
    const char *filter, *format, *message, *action;
    bool all;
} bulk_args;

/* power ACTION (--filter|--all) and broadcast MESSAGE [--filter] [--format].
 * Sequential: one HTTP request at a time keeps the API's rate limits happy
 * and the order of the report stable. */
static int cmd_bulk(session *s, bool json, const bulk_args *a)
{
    bool broadcast = a->message != NULL;
    wd_filter f;
    if (wd_filter_parse(a->filter, &f) != WD_OK) {
        fprintf(stderr, "wardenctl: --filter: %s\n", wd_err_msg());
        return 2;
    }
    if (!broadcast && f.n == 0 && !a->all) {
        fprintf(stderr, "wardenctl: refusing to act on every server without --all: give "
                        "--filter EXPR (e.g. state=running,node=NODE) or --all\n");
        return 2;
    }
    char line[4200];
    wd_status vst = WD_OK;
    if (broadcast) {
        vst = wd_bulk_message_ok(a->message);
        if (vst == WD_OK && a->format)
            vst = wd_bulk_broadcast_line("", a->format, a->message, line, sizeof line);
    }
    if (vst != WD_OK) {
        fprintf(stderr, "wardenctl: broadcast: %s\n", wd_err_msg());
        return 2;
    }
    json_t *data = NULL;
    if (list_servers(s, &data) != 0)
        return 1;
    slug_cache cache[64];
    size_t ncache = 0;
    json_t **sel = calloc(json_array_size(data) + 1, sizeof *sel);
    size_t n = 0, i;
    json_t *sv;
    json_array_foreach(data, i, sv)
    {
        const char *slug = template_slug(s, json_string_value(json_object_get(sv, "template_id")),
                                         cache, 64, &ncache);
        json_object_set_new(sv, "template_slug", json_string(slug));
        wd_filter_subject sub = {.id = json_string_value(json_object_get(sv, "id")),
                                 .name = json_string_value(json_object_get(sv, "name")),
                                 .node = json_string_value(json_object_get(sv, "node_id")),
                                 .template_id = slug,
                                 .state = json_string_value(json_object_get(sv, "state"))};
        if (sel && wd_filter_match(&f, &sub))
            sel[n++] = sv;
    }
    char verb[32];
    snprintf(verb, sizeof verb, broadcast ? "broadcast" : "power %s", a->action);
    wd_bulk b;
    wd_bulk_begin(&b, verb, n, json);
    if (broadcast)
        b.ok_word = "sent";
    for (size_t k = 0; k < n; k++) {
        const char *id = json_string_value(json_object_get(sel[k], "id")) ?: "";
        const char *name = json_string_value(json_object_get(sel[k], "name")) ?: "";
        const char *state = json_string_value(json_object_get(sel[k], "state")) ?: "";
        char path[128], err[512] = "", why[128], perm[64];
        long st = 0;
        if (!wd_uuid_valid(id)) {
            wd_bulk_report(&b, id, name, WD_BULK_FAILED, "the API returned a bad id");
            continue;
        }
        json_t *body;
        if (broadcast) {
            if (strcmp(state, "running") != 0) {
                snprintf(why, sizeof why, "not running (%s)", state);
                wd_bulk_report(&b, id, name, WD_BULK_SKIPPED, why);
                continue;
            }
            wd_status lst =
                wd_bulk_broadcast_line(json_string_value(json_object_get(sel[k], "template_slug")),
                                       a->format, a->message, line, sizeof line);
            if (lst != WD_OK) {
                wd_bulk_report(&b, id, name,
                               lst == WD_ERR_UNSUPPORTED ? WD_BULK_SKIPPED : WD_BULK_FAILED,
                               wd_err_msg());
                continue;
            }
            snprintf(perm, sizeof perm, "control.console");
            snprintf(path, sizeof path, "/api/v1/servers/%s/command", id);
            body = json_pack("{s:s}", "command", line);
        } else {
            /* Nothing to do is a skip, not a failure (the API would say 409). */
            const char *skip = wd_bulk_power_skip(a->action, state);
            if (skip) {
                wd_bulk_report(&b, id, name, WD_BULK_SKIPPED, skip);
                continue;
            }
            snprintf(perm, sizeof perm, "control.%s", a->action);
            snprintf(path, sizeof path, "/api/v1/servers/%s/power", id);
            body = json_pack("{s:s}", "action", a->action);
        }
        int held = holds(s, id, perm, err, sizeof err);
        if (held != 1) {
            wd_bulk_report(&b, id, name, held == 0 ? WD_BULK_SKIPPED : WD_BULK_FAILED, err);
            json_decref(body);
            continue;
        }
        err[0] = '\0';
        json_t *r = authed(s, "POST", path, body, &st, err, sizeof err);
        json_decref(body);
        if (st >= 200 && st < 300)
            wd_bulk_report(&b, id, name, WD_BULK_OK,
                           broadcast ? line : json_string_value(json_object_get(r, "state")));
        else if (st == 403)
            wd_bulk_report(&b, id, name, WD_BULK_SKIPPED, err);
        else
            wd_bulk_report(&b, id, name, WD_BULK_FAILED, err[0] ? err : "request failed");
        json_decref(r);
    }
    free(sel);
    json_decref(data);
    return wd_bulk_end(&b);
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
    /* --json and the bulk flags may follow the command. */
    int k = 0;
    bool ids = false;
    bulk_args ba = {0};
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (strcmp(argv[i], "--ids") == 0)
            ids = true;
        else if (strcmp(argv[i], "--all") == 0)
            ba.all = true;
        else if (strcmp(argv[i], "--filter") == 0 && i + 1 < argc)
            ba.filter = argv[++i];
        else if (strcmp(argv[i], "--format") == 0 && i + 1 < argc)
            ba.format = argv[++i];
        else if (strcmp(argv[i], "--no-stats") == 0 || strcmp(argv[i], "--parallel") == 0) {
            i += argv[i][2] == 'p'; /* bus-mode tuning: nothing to do here */
        } else
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
        rc = cmd_servers(&s, json, ids);
    } else if (strcmp(cmd, "power") == 0 && argc == 2) {
        ba.action = argv[1];
        rc = strcmp(ba.action, "start") == 0 || strcmp(ba.action, "stop") == 0 ||
                     strcmp(ba.action, "restart") == 0 || strcmp(ba.action, "kill") == 0
                 ? cmd_bulk(&s, json, &ba)
                 : (fprintf(stderr, "wardenctl: power takes start, stop, restart or kill\n"), 2);
    } else if (strcmp(cmd, "broadcast") == 0 && argc == 2) {
        ba.message = argv[1];
        rc = cmd_bulk(&s, json, &ba);
    } else if (strcmp(cmd, "power") == 0 && argc == 3 && wd_uuid_valid(argv[1])) {
        snprintf(path, sizeof path, "/api/v1/servers/%s/power", argv[1]);
        rc = simple_post(&s, path, json_pack("{s:s}", "action", argv[2]), json, argv[2]);
    } else if (strcmp(cmd, "send") == 0 && argc == 3 && wd_uuid_valid(argv[1])) {
        snprintf(path, sizeof path, "/api/v1/servers/%s/command", argv[1]);
        rc = simple_post(&s, path, json_pack("{s:s}", "command", argv[2]), json, "sent");
    } else {
        fprintf(stderr, "wardenctl: REST mode commands: login --username NAME | servers [--ids] | "
                        "power SERVER_ID start|stop|restart|kill | power ACTION (--filter EXPR "
                        "| --all) | send SERVER_ID COMMAND | broadcast MESSAGE [--filter EXPR] "
                        "[--format FMT]\n");
        rc = 2;
    }
    curl_global_cleanup();
    return rc;
}
