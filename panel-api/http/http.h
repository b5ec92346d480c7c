/* The REST API's HTTP server: libmicrohttpd with an epoll thread pool for
 * I/O, and a separate worker pool for handlers.
 *
 * MHD's threads never run handler code: once a request's body is complete
 * the connection is suspended and the request is posted to the worker pool;
 * the handler may block (libpq, bcrypt, bus requests) and replies; the
 * connection is then resumed and MHD sends the response. So an event loop
 * never blocks, whatever a handler does.
 *
 * Routes come from one table (method, path pattern with {params},
 * permission, handler). Unknown paths answer 404, wrong methods 405 with
 * Allow, bodies over the limit 413, a full worker queue 503: always the one
 * error body shape
 *   {"error":{"code":"...","message":"...","details":{...}}}
 * Every response carries X-Request-Id (the client's if it sent a sane one,
 * else a new one) and every request is logged once with it. */
#ifndef WD_HTTP_H
#define WD_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

typedef struct wd_http wd_http;
typedef struct wd_http_req wd_http_req;

/* Runs on a worker thread; must call one of the wd_http_reply_* exactly once
 * (a handler that forgets gets a 500). */
typedef void (*wd_http_handler)(wd_http_req *req, void *ud);

typedef struct {
    const char *method;     /* "GET", "POST", ... */
    const char *pattern;    /* "/api/v1/servers/{id}/power" */
    const char *permission; /* NULL: public; otherwise checked by the authorize hook */
    wd_http_handler fn;
} wd_route;

typedef struct {
    const char *bind;    /* address to listen on; default 127.0.0.1 */
    int port;            /* 0: any free port (see wd_http_port) */
    int io_threads;      /* MHD epoll threads; default 2 */
    int workers;         /* handler threads; default 8 */
    size_t queue;        /* queued requests before 503; default 1024 */
    size_t max_body;     /* bytes; default 1 MiB */
    int idle_timeout_s;  /* default 30 */
    const wd_route *routes;
    size_t nroutes;
    /* A directory of static files (the web panel's build) served for GET
     * and HEAD requests no route matches, outside /api/: an existing file
     * as itself, any other path without an extension as index.html (the
     * single-page app routes it). NULL: none. */
    const char *static_dir;
    void *ud; /* passed to handlers and hooks */
    /* Before a handler of a route (on the worker): return true to go on;
     * false after replying (401/403/429). NULL: everything allowed. */
    bool (*authorize)(wd_http_req *req, const wd_route *route, void *ud);
    /* After the response is queued (on an MHD thread): metrics. The route
     * is NULL for requests that matched none. */
    void (*completed)(const wd_route *route, const char *method, int status, int64_t usec,
                      void *ud);
} wd_http_cfg;

wd_http_cfg wd_http_cfg_defaults(void);
wd_status wd_http_start(wd_http **out, const wd_http_cfg *cfg);
int wd_http_port(const wd_http *h);
/* Stops accepting, lets requests in flight finish, stops. NULL-safe. */
void wd_http_stop(wd_http **h);

/* ---- the request (valid until the reply is sent) ---- */
const char *wd_http_method(const wd_http_req *r);
const char *wd_http_path(const wd_http_req *r);
const char *wd_http_param(const wd_http_req *r, const char *name); /* {name} in the pattern */
const char *wd_http_query(wd_http_req *r, const char *name);
const char *wd_http_header(wd_http_req *r, const char *name);
const char *wd_http_body(const wd_http_req *r, size_t *len);
const char *wd_http_remote_ip(const wd_http_req *r);
const char *wd_http_request_id(const wd_http_req *r);
const wd_route *wd_http_route(const wd_http_req *r);
/* Per-request slot for the API layer (the authenticated principal). */
void wd_http_set_user(wd_http_req *r, void *p, void (*free_fn)(void *));
void *wd_http_user(const wd_http_req *r);

/* Parses the body as a JSON object; on failure replies 400 and returns
 * NULL. The caller owns the result. */
json_t *wd_http_json_body(wd_http_req *r);

/* ---- replies ---- */
void wd_http_set_header(wd_http_req *r, const char *name, const char *value);
/* Takes ownership of body (may be NULL for an empty body). */
void wd_http_reply_json(wd_http_req *r, int status, json_t *body);
/* details may be NULL; ownership taken. */
void wd_http_reply_error(wd_http_req *r, int status, const char *code, const char *message,
                         json_t *details);
void wd_http_reply_raw(wd_http_req *r, int status, const char *content_type, const void *data,
                       size_t len);
/* Maps a wd_status to an HTTP status and error code: the one place. */
int wd_http_status_for(wd_status st, const char **code);
/* Replies with the error for st and this thread's last error message. */
void wd_http_reply_status(wd_http_req *r, wd_status st);

#endif
