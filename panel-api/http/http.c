/* HTTP server (see http.h).
 *
 * A request moves through MHD's access handler like this:
 *   1st call     allocate the request, check Content-Length against the limit
 *   upload calls append body bytes (413 once over the limit)
 *   last call    match the route, copy headers and query arguments (the
 *                worker must not touch MHD's connection), suspend the
 *                connection, post the request to the worker pool
 *   worker       authorize hook, handler, build the reply, resume
 *   next call    queue the response
 * The completed callback logs the request, reports metrics and frees it. */
#include "http.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "util.h"
#include "workq.h"

#define MAX_PARAMS 8
#define MAX_KV 64
#define MAX_RESP_HEADERS 8

typedef struct {
    char *name, *value;
} kv;

typedef enum { RS_RECEIVING, RS_RUNNING, RS_DONE } req_state;

struct wd_http {
    struct MHD_Daemon *d;
    wd_workq *q;
    wd_http_cfg cfg;
    int port;
    atomic_int inflight; /* suspended connections */
};

struct wd_http_req {
    wd_http *h;
    struct MHD_Connection *conn;
    req_state state;
    char method[16];
    char *path;
    char *body;
    size_t body_len, body_cap;
    bool too_large;
    const wd_route *route;
    kv params[MAX_PARAMS];
    int nparams;
    kv headers[MAX_KV];
    int nheaders;
    kv query[MAX_KV];
    int nquery;
    char request_id[40];
    char remote_ip[64];
    int64_t start_us;
    /* reply */
    bool replied;
    int status;
    char *resp;
    size_t resp_len;
    const char *content_type;
    kv resp_headers[MAX_RESP_HEADERS];
    int nresp_headers;
    void *user;
    void (*user_free)(void *);
};

/* ---- small helpers ---------------------------------------------------- */

static char *dupn(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static void kv_free(kv *a, int n)
{
    for (int i = 0; i < n; i++) {
        free(a[i].name);
        free(a[i].value);
    }
}

static const char *kv_get(const kv *a, int n, const char *name, bool nocase)
{
    for (int i = 0; i < n; i++)
        if (nocase ? strcasecmp(a[i].name, name) == 0 : strcmp(a[i].name, name) == 0)
            return a[i].value;
    return NULL;
}

static void req_free(wd_http_req *r)
{
    if (r == NULL)
        return;
    free(r->path);
    free(r->body);
    free(r->resp);
    kv_free(r->params, r->nparams);
    kv_free(r->headers, r->nheaders);
    kv_free(r->query, r->nquery);
    kv_free(r->resp_headers, r->nresp_headers);
    if (r->user && r->user_free)
        r->user_free(r->user);
    free(r);
}

/* A client-supplied request id is kept only if it is short and tame. */
static void set_request_id(wd_http_req *r, const char *given)
{
    if (given) {
        size_t n = strlen(given);
        bool ok = n > 0 && n < sizeof r->request_id;
        for (size_t i = 0; ok && i < n; i++) {
            char c = given[i];
            ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '_' || c == '.';
        }
        if (ok) {
            memcpy(r->request_id, given, n + 1);
            return;
        }
    }
    char t[33];
    wd_trace_new(t);
    snprintf(r->request_id, sizeof r->request_id, "%.16s", t);
}

/* ---- routing ------------------------------------------------------------ */

/* Matches path against pattern; fills params on success. */
static bool match(const char *pattern, const char *path, wd_http_req *r)
{
    int np = 0;
    kv params[MAX_PARAMS];
    const char *p = pattern, *u = path;
    while (*p && *u) {
        if (*p != '/' || *u != '/')
            goto fail;
        p++;
        u++;
        const char *pe = strchr(p, '/'), *ue = strchr(u, '/');
        size_t pl = pe ? (size_t)(pe - p) : strlen(p);
        size_t ul = ue ? (size_t)(ue - u) : strlen(u);
        if (pl >= 2 && p[0] == '{' && p[pl - 1] == '}') {
            if (ul == 0 || np == MAX_PARAMS)
                goto fail;
            params[np].name = dupn(p + 1, pl - 2);
            params[np].value = dupn(u, ul);
            np++;
        } else if (pl != ul || strncmp(p, u, pl) != 0) {
            goto fail;
        }
        p += pl;
        u += ul;
    }
    if (*p || *u)
        goto fail;
    if (r) {
        memcpy(r->params, params, (size_t)np * sizeof *params);
        r->nparams = np;
    } else {
        kv_free(params, np);
    }
    return true;
fail:
    kv_free(params, np);
    return false;
}

/* The route for r, or NULL with *path_known telling 405 from 404. */
static const wd_route *find_route(wd_http *h, wd_http_req *r, char *allow, size_t allow_len)
{
    allow[0] = '\0';
    for (size_t i = 0; i < h->cfg.nroutes; i++) {
        const wd_route *rt = &h->cfg.routes[i];
        if (!match(rt->pattern, r->path, NULL))
            continue;
        if (strcmp(rt->method, r->method) == 0) {
            match(rt->pattern, r->path, r);
            return rt;
        }
        size_t used = strlen(allow);
        snprintf(allow + used, allow_len - used, "%s%s", used ? ", " : "", rt->method);
    }
    return NULL;
}

/* ---- replies ------------------------------------------------------------- */

void wd_http_set_header(wd_http_req *r, const char *name, const char *value)
{
    if (r->nresp_headers < MAX_RESP_HEADERS) {
        r->resp_headers[r->nresp_headers].name = strdup(name);
        r->resp_headers[r->nresp_headers].value = strdup(value);
        r->nresp_headers++;
    }
}

void wd_http_reply_raw(wd_http_req *r, int status, const char *content_type, const void *data,
                       size_t len)
{
    if (r->replied) {
        wd_error("request %s: second reply ignored", r->request_id);
        return;
    }
    r->replied = true;
    r->status = status;
    r->content_type = content_type;
    r->resp = len ? dupn(data, len) : NULL;
    r->resp_len = r->resp ? len : 0;
}

void wd_http_reply_json(wd_http_req *r, int status, json_t *body)
{
    char *text = body ? json_dumps(body, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    json_decref(body);
    if (text) {
        size_t n = strlen(text);
        wd_http_reply_raw(r, status, "application/json", text, n);
        free(text);
    } else {
        wd_http_reply_raw(r, status, "application/json", NULL, 0);
    }
}

void wd_http_reply_error(wd_http_req *r, int status, const char *code, const char *message,
                         json_t *details)
{
    json_t *err = json_pack("{s:s, s:s}", "code", code, "message", message ? message : "");
    if (err && details)
        json_object_set_new(err, "details", details);
    else
        json_decref(details);
    json_t *body = err ? json_pack("{s:o}", "error", err) : NULL;
    wd_http_reply_json(r, status, body);
}

int wd_http_status_for(wd_status st, const char **code)
{
    static const struct {
        wd_status st;
        int http;
        const char *code;
    } map[] = {
        {WD_OK, 200, "ok"},
        {WD_ERR_INVALID, 400, "invalid_argument"},
        {WD_ERR_PROTO, 400, "invalid_argument"},
        {WD_ERR_DENIED, 403, "forbidden"},
        {WD_ERR_NOT_FOUND, 404, "not_found"},
        {WD_ERR_EXISTS, 409, "conflict"},
        {WD_ERR_STATE, 409, "failed_precondition"},
        {WD_ERR_FULL, 429, "too_many_requests"},
        {WD_ERR_NO_RESPONDERS, 503, "node_unavailable"},
        {WD_ERR_UNAVAILABLE, 503, "unavailable"},
        {WD_ERR_CLOSED, 503, "unavailable"},
        {WD_ERR_AGAIN, 503, "unavailable"},
        {WD_ERR_TIMEOUT, 504, "timeout"},
        {WD_ERR_UNSUPPORTED, 501, "not_implemented"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        if (map[i].st == st) {
            if (code)
                *code = map[i].code;
            return map[i].http;
        }
    }
    if (code)
        *code = "internal";
    return 500;
}

void wd_http_reply_status(wd_http_req *r, wd_status st)
{
    const char *code;
    int http = wd_http_status_for(st, &code);
    const char *msg = wd_err_msg();
    if (http == 500) {
        /* Internal details stay in the log. */
        wd_error("request %s: %s (%s)", r->request_id, msg, wd_err_where());
        msg = "internal error; see the server log for this request id";
    }
    wd_http_reply_error(r, http, code, msg && *msg ? msg : wd_status_str(st), NULL);
}

/* ---- request accessors --------------------------------------------------- */

const char *wd_http_method(const wd_http_req *r)
{
    return r->method;
}
const char *wd_http_path(const wd_http_req *r)
{
    return r->path;
}
const char *wd_http_param(const wd_http_req *r, const char *name)
{
    return kv_get(r->params, r->nparams, name, false);
}
const char *wd_http_query(wd_http_req *r, const char *name)
{
    return kv_get(r->query, r->nquery, name, false);
}
const char *wd_http_header(wd_http_req *r, const char *name)
{
    return kv_get(r->headers, r->nheaders, name, true);
}
const char *wd_http_body(const wd_http_req *r, size_t *len)
{
    if (len)
        *len = r->body_len;
    return r->body ? r->body : "";
}
const char *wd_http_remote_ip(const wd_http_req *r)
{
    return r->remote_ip;
}
const char *wd_http_request_id(const wd_http_req *r)
{
    return r->request_id;
}
const wd_route *wd_http_route(const wd_http_req *r)
{
    return r->route;
}
void wd_http_set_user(wd_http_req *r, void *p, void (*free_fn)(void *))
{
    if (r->user && r->user_free)
        r->user_free(r->user);
    r->user = p;
    r->user_free = free_fn;
}
void *wd_http_user(const wd_http_req *r)
{
    return r->user;
}

json_t *wd_http_json_body(wd_http_req *r)
{
    if (r->body_len == 0) {
        wd_http_reply_error(r, 400, "invalid_json", "a JSON object body is required", NULL);
        return NULL;
    }
    json_error_t err;
    json_t *j = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &err);
    if (j == NULL) {
        char msg[300];
        snprintf(msg, sizeof msg, "malformed JSON at line %d column %d: %s", err.line,
                 err.column, err.text);
        wd_http_reply_error(r, 400, "invalid_json", msg, NULL);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        wd_http_reply_error(r, 400, "invalid_json", "the body must be a JSON object", NULL);
        return NULL;
    }
    return j;
}

/* ---- the worker side ------------------------------------------------------ */

static void run_request(void *arg)
{
    wd_http_req *r = arg;
    wd_http *h = r->h;
    wd_log_set_trace(r->request_id);
    if (h->cfg.authorize == NULL || h->cfg.authorize(r, r->route, h->cfg.ud))
        r->route->fn(r, h->cfg.ud);
    if (!r->replied) {
        wd_error("request %s: handler for %s %s did not reply", r->request_id, r->method,
                 r->route->pattern);
        wd_http_reply_error(r, 500, "internal", "internal error", NULL);
    }
    wd_log_set_trace(NULL);
    r->state = RS_DONE;
    MHD_resume_connection(r->conn);
}

/* ---- MHD callbacks -------------------------------------------------------- */

static enum MHD_Result collect_kv(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    wd_http_req *r = cls;
    kv *a = kind == MHD_HEADER_KIND ? r->headers : r->query;
    int *n = kind == MHD_HEADER_KIND ? &r->nheaders : &r->nquery;
    if (*n < MAX_KV && key) {
        a[*n].name = strdup(key);
        a[*n].value = strdup(value ? value : "");
        (*n)++;
    }
    return MHD_YES;
}

static enum MHD_Result send_reply(wd_http_req *r)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        r->resp_len, r->resp ? r->resp : (void *)"", MHD_RESPMEM_MUST_COPY);
    if (resp == NULL)
        return MHD_NO;
    if (r->content_type)
        MHD_add_response_header(resp, "Content-Type", r->content_type);
    MHD_add_response_header(resp, "X-Request-Id", r->request_id);
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    for (int i = 0; i < r->nresp_headers; i++)
        MHD_add_response_header(resp, r->resp_headers[i].name, r->resp_headers[i].value);
    enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* ---- static files (the web panel) ------------------------------------ */

static const char *mime_of(const char *path)
{
    static const struct {
        const char *ext, *type;
    } types[] = {{".html", "text/html; charset=utf-8"},
                 {".js", "text/javascript; charset=utf-8"},
                 {".mjs", "text/javascript; charset=utf-8"},
                 {".css", "text/css; charset=utf-8"},
                 {".json", "application/json"},
                 {".map", "application/json"},
                 {".svg", "image/svg+xml"},
                 {".png", "image/png"},
                 {".ico", "image/x-icon"},
                 {".webp", "image/webp"},
                 {".woff2", "font/woff2"},
                 {".woff", "font/woff"},
                 {".txt", "text/plain; charset=utf-8"},
                 {".webmanifest", "application/manifest+json"}};
    const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
    if (dot && (!slash || dot > slash))
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
            if (strcmp(dot, types[i].ext) == 0)
                return types[i].type;
    return "application/octet-stream";
}

/* True for a URL path we may map into the static directory: absolute, no
 * "..", "//", backslash, control character or hidden (dot) segment. */
static bool static_path_ok(const char *p)
{
    if (p[0] != '/' || strlen(p) > 512)
        return false;
    for (const char *c = p; *c; c++) {
        if ((unsigned char)*c < 0x20 || *c == 0x7f || *c == '\\')
            return false;
        if (*c == '/' && (c[1] == '/' || c[1] == '.'))
            return false;
    }
    return true;
}

/* Opens dir + path as a regular file inside dir (symbolic links may not
 * lead out of it); -1 when there is none. */
static int open_static(const char *dir, const char *path, struct stat *sb)
{
    char full[1200], real[PATH_MAX], root[PATH_MAX];
    if (snprintf(full, sizeof full, "%s%s", dir, path) >= (int)sizeof full ||
        !realpath(dir, root) || !realpath(full, real))
        return -1;
    size_t n = strlen(root);
    if (strncmp(real, root, n) != 0 || real[n] != '/')
        return -1;
    int fd = open(real, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -1;
    if (fstat(fd, sb) != 0 || !S_ISREG(sb->st_mode)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Serves r from the static directory; false when it does not apply (the
 * caller answers 404). Runs on the MHD thread: an open and a sendfile. */
static bool serve_static(wd_http *h, wd_http_req *r, enum MHD_Result *ret)
{
    const char *dir = h->cfg.static_dir;
    if (!dir || !*dir || (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0) ||
        strncmp(r->path, "/api/", 5) == 0 || !static_path_ok(r->path))
        return false;
    const char *path = strcmp(r->path, "/") == 0 ? "/index.html" : r->path;
    struct stat sb;
    int fd = open_static(dir, path, &sb);
    const char *slash = strrchr(path, '/');
    if (fd < 0 && !strchr(slash ? slash : path, '.')) { /* an app route */
        path = "/index.html";
        fd = open_static(dir, path, &sb);
    }
    if (fd < 0)
        return false;
    struct MHD_Response *resp = MHD_create_response_from_fd((uint64_t)sb.st_size, fd);
    if (resp == NULL) {
        close(fd);
        *ret = MHD_NO;
        return true;
    }
    bool html = strcmp(path, "/index.html") == 0;
    MHD_add_response_header(resp, "Content-Type", mime_of(path));
    MHD_add_response_header(resp, "X-Request-Id", r->request_id);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    /* Vite names assets by content hash: cache them for good; the page
     * itself is checked every time so a new build is picked up. */
    MHD_add_response_header(resp, "Cache-Control",
                            strncmp(path, "/assets/", 8) == 0 ? "public, max-age=31536000, immutable"
                                                              : "no-cache");
    if (html) {
        MHD_add_response_header(resp, "X-Frame-Options", "DENY");
        MHD_add_response_header(resp, "Content-Security-Policy",
                                "default-src 'self'; connect-src 'self' ws: wss:; "
                                "img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
                                "object-src 'none'; base-uri 'none'; frame-ancestors 'none'");
    }
    r->replied = true;
    r->status = 200;
    *ret = MHD_queue_response(r->conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return true;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version,
                                 const char *upload_data, size_t *upload_data_size,
                                 void **con_cls)
{
    wd_http *h = cls;
    wd_http_req *r = *con_cls;
    if (r == NULL) {
        r = calloc(1, sizeof *r);
        if (r == NULL)
            return MHD_NO;
        r->h = h;
        r->conn = conn;
        r->start_us = wd_mono_us();
        snprintf(r->method, sizeof r->method, "%s", method);
        r->path = strdup(url);
        set_request_id(r, MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id"));
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (ci && ci->client_addr && ci->client_addr->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)ci->client_addr)->sin_addr,
                      r->remote_ip, sizeof r->remote_ip);
        else if (ci && ci->client_addr && ci->client_addr->sa_family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ci->client_addr)->sin6_addr,
                      r->remote_ip, sizeof r->remote_ip);
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        long n;
        if (cl && wd_parse_long(cl, 0, (long)1 << 40, &n) && (size_t)n > h->cfg.max_body)
            r->too_large = true;
        *con_cls = r;
        return MHD_YES;
    }
    if (r->state == RS_DONE)
        return send_reply(r);
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (r->too_large || r->body_len + n > h->cfg.max_body) {
            r->too_large = true;
            return MHD_YES; /* keep reading, answer 413 at the end */
        }
        if (r->body_len + n + 1 > r->body_cap) {
            size_t cap = r->body_cap ? r->body_cap : 1024;
            while (cap < r->body_len + n + 1)
                cap *= 2;
            char *nb = realloc(r->body, cap);
            if (nb == NULL)
                return MHD_NO;
            r->body = nb;
            r->body_cap = cap;
        }
        memcpy(r->body + r->body_len, upload_data, n);
        r->body_len += n;
        r->body[r->body_len] = '\0';
        return MHD_YES;
    }
    /* The whole request is here. */
    if (r->too_large) {
        char msg[128];
        snprintf(msg, sizeof msg, "request body is larger than %zu bytes", h->cfg.max_body);
        wd_http_reply_error(r, 413, "payload_too_large", msg, NULL);
        return send_reply(r);
    }
    char allow[128];
    r->route = find_route(h, r, allow, sizeof allow);
    if (r->route == NULL) {
        if (allow[0]) {
            wd_http_set_header(r, "Allow", allow);
            wd_http_reply_error(r, 405, "method_not_allowed",
                                "this path does not take that method", NULL);
        } else {
            enum MHD_Result ret;
            if (serve_static(h, r, &ret))
                return ret;
            wd_http_reply_error(r, 404, "not_found", "no such endpoint", NULL);
        }
        return send_reply(r);
    }
    MHD_get_connection_values(conn, MHD_HEADER_KIND, collect_kv, r);
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_kv, r);
    r->state = RS_RUNNING;
    atomic_fetch_add(&h->inflight, 1);
    MHD_suspend_connection(conn);
    if (wd_workq_post(h->q, run_request, r) != WD_OK) {
        wd_http_set_header(r, "Retry-After", "1");
        wd_http_reply_error(r, 503, "unavailable", "the server is busy; retry shortly", NULL);
        r->state = RS_DONE;
        MHD_resume_connection(conn);
    }
    return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    wd_http *h = cls;
    wd_http_req *r = *con_cls;
    if (r == NULL)
        return;
    int64_t us = wd_mono_us() - r->start_us;
    if (r->state != RS_RECEIVING) /* it was suspended once */
        atomic_fetch_sub(&h->inflight, 1);
    int status = r->replied ? r->status : 0;
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
        wd_info("request %s %s %s aborted (%d) after %lld us", r->request_id, r->method, r->path,
                (int)toe, (long long)us);
    else
        wd_info("%s %s %d %lld us id=%s ip=%s", r->method, r->path, status, (long long)us,
                r->request_id, r->remote_ip);
    if (h->cfg.completed)
        h->cfg.completed(r->route, r->method, status, us, h->cfg.ud);
    req_free(r);
    *con_cls = NULL;
}

/* ---- lifecycle ------------------------------------------------------------ */

wd_http_cfg wd_http_cfg_defaults(void)
{
    return (wd_http_cfg){.bind = "127.0.0.1",
                         .io_threads = 2,
                         .workers = 8,
                         .queue = 1024,
                         .max_body = 1024 * 1024,
                         .idle_timeout_s = 30};
}

wd_status wd_http_start(wd_http **out, const wd_http_cfg *cfg)
{
    wd_http *h = calloc(1, sizeof *h);
    if (h == NULL)
        return WD_ERR(WD_ERR_NOMEM, "out of memory");
    h->cfg = *cfg;
    atomic_init(&h->inflight, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)cfg->port)};
    if (inet_pton(AF_INET, cfg->bind ? cfg->bind : "127.0.0.1", &sa.sin_addr) != 1) {
        free(h);
        return WD_ERR(WD_ERR_INVALID, "listen address '%s' is not an IPv4 address", cfg->bind);
    }
    wd_status st = wd_workq_create(&h->q, cfg->workers > 0 ? cfg->workers : 8,
                                   cfg->queue ? cfg->queue : 1024);
    if (st != WD_OK) {
        free(h);
        return st;
    }
    h->d = MHD_start_daemon(
        MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC | MHD_USE_ERROR_LOG, 0, NULL,
        NULL, on_access, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(cfg->io_threads > 0 ? cfg->io_threads : 2),
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)(cfg->idle_timeout_s > 0 ? cfg->idle_timeout_s : 30),
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)64 * 1024, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, h, MHD_OPTION_END);
    if (h->d == NULL) {
        wd_workq_destroy(&h->q);
        free(h);
        return WD_ERR(WD_ERR_IO, "cannot listen on %s:%d (port in use?)", cfg->bind, cfg->port);
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = di ? di->port : cfg->port;
    *out = h;
    return WD_OK;
}

int wd_http_port(const wd_http *h)
{
    return h->port;
}

void wd_http_stop(wd_http **ph)
{
    if (ph == NULL || *ph == NULL)
        return;
    wd_http *h = *ph;
    *ph = NULL;
    /* MHD aborts if it is stopped with a suspended connection: stop taking
     * new ones, let the workers finish (each resumes its connection), then
     * give MHD a moment to send those responses. */
    MHD_socket ls = MHD_quiesce_daemon(h->d);
    wd_workq_destroy(&h->q);
    for (int i = 0; i < 500 && atomic_load(&h->inflight) > 0; i++)
        usleep(2000);
    MHD_stop_daemon(h->d);
    if (ls != MHD_INVALID_SOCKET)
        close(ls);
    free(h);
}
