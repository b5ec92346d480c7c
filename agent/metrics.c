/* warden-agent's /healthz and /metrics (see metrics.h).
 *
 * libmicrohttpd with one internal polling thread (epoll or poll, never
 * select: an agent holds many shim sockets, and select breaks past fd 1023).
 * Handlers answer at once from what the agent already keeps: the registry's
 * mirrored states (read lock), the router's counters and the bus status
 * (atomics / nats.c's own locking). Nothing here blocks on the bus or the
 * disk, so a scrape never waits for an actor. */
#include "metrics.h"

#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "agent_int.h"
#include "log.h"
#include "util.h"

struct wd_agent_metrics {
    struct MHD_Daemon *d;
    wd_agent *ag;
    int port;
};

/* Label values of warden_agent_requests_refused_total, by WD_AGENT_REFUSED_*. */
static const char *const refused_reason[WD_AGENT_REFUSED_COUNT] = {
    [WD_AGENT_REFUSED_INVALID] = "invalid",
    [WD_AGENT_REFUSED_NOT_FOUND] = "not_found",
    [WD_AGENT_REFUSED_BUSY] = "busy",
    [WD_AGENT_REFUSED_ERROR] = "error",
};

bool wd_agent_metrics_parse_listen(const char *s, char *host, size_t n, int *port)
{
    /* No implicit "all interfaces": the address is always explicit. */
    return wd_parse_hostport(s, host, n, port) && host[0] != '\0';
}

/* Prometheus label value escaping: backslash, double quote, newline. */
static void put_label(FILE *f, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            fputc('\\', f), fputc(*v, f);
        else if (*v == '\n')
            fputs("\\n", f);
        else
            fputc(*v, f);
    }
}

/* The metrics page; heap text (caller frees) or NULL when out of memory. */
static char *metrics_text(wd_agent *ag, size_t *len)
{
    /* Count servers per state: the states mirrored by the server actors. */
    const ProtobufCEnumDescriptor *sd = &warden__v1__server_state__descriptor;
    int counts[16] = {0}, other = 0, nservers;
    pthread_rwlock_rdlock(&ag->reg_mu);
    nservers = ag->nservers;
    for (int i = 0; i < nservers; i++) {
        int s = atomic_load(&ag->servers[i]->state);
        if (s >= 0 && s < 16)
            counts[s]++;
        else
            other++;
    }
    pthread_rwlock_unlock(&ag->reg_mu);
    bool ready = atomic_load(&ag->bus_ready);
    bool connected = ready && wd_bus_connected(ag->bus);
    int64_t up_ms = wd_mono_ms() - ag->boot_mono_ms;

    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (f == NULL)
        return NULL;
    fprintf(f, "# HELP warden_agent_up 1 while the agent answers.\n"
               "# TYPE warden_agent_up gauge\nwarden_agent_up 1\n");
    fprintf(f, "# HELP warden_agent_info The agent's node id and version.\n"
               "# TYPE warden_agent_info gauge\nwarden_agent_info{node_id=\"");
    if (ready) /* before that, a joining agent has no id yet */
        put_label(f, ag->node_id);
    fprintf(f, "\",version=\"");
    put_label(f, WARDEN_VERSION);
    fprintf(f, "\"} 1\n");
    fprintf(f,
            "# HELP warden_agent_uptime_seconds Seconds since the agent started.\n"
            "# TYPE warden_agent_uptime_seconds gauge\nwarden_agent_uptime_seconds %.3f\n",
            (double)(up_ms > 0 ? up_ms : 0) / 1000.0);
    fprintf(f,
            "# HELP warden_agent_nats_connected 1 while connected to NATS.\n"
            "# TYPE warden_agent_nats_connected gauge\nwarden_agent_nats_connected %d\n",
            connected ? 1 : 0);
    /* Every state, zeros included, so each series exists from the start. */
    fprintf(f, "# HELP warden_agent_servers Game servers on this node by state.\n"
               "# TYPE warden_agent_servers gauge\n");
    for (unsigned i = 0; i < sd->n_values; i++) {
        int v = sd->values[i].value;
        const char *name = sd->values[i].name; /* "SERVER_STATE_RUNNING" */
        if (strncmp(name, "SERVER_STATE_", 13) == 0)
            name += 13;
        fprintf(f, "warden_agent_servers{state=\"");
        for (const char *c = name; *c; c++)
            fputc(*c >= 'A' && *c <= 'Z' ? *c - 'A' + 'a' : *c, f);
        fprintf(f, "\"} %d\n", v >= 0 && v < 16 ? counts[v] : 0);
    }
    if (other)
        fprintf(f, "warden_agent_servers{state=\"other\"} %d\n", other);
    fprintf(f,
            "# HELP warden_agent_requests_total Requests received on warden.agent.<node>.>.\n"
            "# TYPE warden_agent_requests_total counter\nwarden_agent_requests_total %llu\n",
            (unsigned long long)atomic_load(&ag->requests));
    fprintf(f, "# HELP warden_agent_requests_refused_total Requests the router answered "
               "itself, without reaching a server.\n"
               "# TYPE warden_agent_requests_refused_total counter\n");
    for (int i = 0; i < WD_AGENT_REFUSED_COUNT; i++)
        fprintf(f, "warden_agent_requests_refused_total{reason=\"%s\"} %llu\n", refused_reason[i],
                (unsigned long long)atomic_load(&ag->refused[i]));
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

static enum MHD_Result respond(struct MHD_Connection *c, unsigned status, const char *type,
                               char *body, size_t len, const char *allow)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (r == NULL) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (allow)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result respond_text(struct MHD_Connection *c, unsigned status, const char *text,
                                    const char *allow)
{
    char *body = strdup(text);
    if (body == NULL)
        return MHD_NO;
    return respond(c, status, "text/plain; charset=utf-8", body, strlen(body), allow);
}

/* One request; runs on MHD's thread. Bodies are never read: the answer is
 * queued on the first call (MHD discards an upload it was not asked for). */
static enum MHD_Result on_access(void *cls, struct MHD_Connection *c, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **ctx)
{
    (void)version, (void)upload_data, (void)upload_data_size, (void)ctx;
    wd_agent *ag = cls;
    bool health = strcmp(url, "/healthz") == 0, metrics = strcmp(url, "/metrics") == 0;
    if (!health && !metrics)
        return respond_text(c, MHD_HTTP_NOT_FOUND, "not found\n", NULL);
    /* HEAD too: MHD sends GET's headers without the body. */
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return respond_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n", "GET, HEAD");
    if (health) {
        if (!atomic_load(&ag->bus_ready))
            return respond_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, "starting\n", NULL);
        if (!wd_bus_connected(ag->bus))
            return respond_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, "nats disconnected\n", NULL);
        return respond_text(c, MHD_HTTP_OK, "ok\n", NULL);
    }
    size_t len = 0;
    char *text = metrics_text(ag, &len);
    if (text == NULL)
        return MHD_NO;
    return respond(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", text, len, NULL);
}

/* MHD's own complaints (bad requests, accept errors) go to our log. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[256];
    vsnprintf(msg, sizeof msg, fmt, ap);
    msg[strcspn(msg, "\n")] = '\0';
    wd_warn("metrics http: %s", msg);
}

wd_status wd_agent_metrics_start(wd_agent_metrics **out, wd_agent *ag,
                                 const wd_agent_metrics_cfg *cfg)
{
    char host[256];
    int port = 0;
    if (!wd_agent_metrics_parse_listen(cfg->listen, host, sizeof host, &port))
        return WD_ERR(WD_ERR_INVALID,
                      "--metrics-listen must be ADDR:PORT (e.g. 127.0.0.1:9102), "
                      "not '%s'",
                      cfg->listen ? cfg->listen : "");
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV},
                    *ai = NULL;
    char svc[8];
    snprintf(svc, sizeof svc, "%d", port);
    int gai = getaddrinfo(host, svc, &hints, &ai);
    if (gai != 0 || ai == NULL)
        return WD_ERR(WD_ERR_INVALID, "--metrics-listen: address '%s': %s", host,
                      gai ? gai_strerror(gai) : "no address");
    wd_agent_metrics *m = calloc(1, sizeof *m);
    if (m == NULL) {
        freeaddrinfo(ai);
        return WD_ERR(WD_ERR_NOMEM, "out of memory");
    }
    m->ag = ag;
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* A scrape is one short request: few connections, short idle time.
     * The logger goes first, or MHD reports option errors on stderr. */
    m->d = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_access, ag,
                            MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL, MHD_OPTION_SOCK_ADDR,
                            ai->ai_addr, MHD_OPTION_CONNECTION_LIMIT, 32u,
                            MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                            (size_t)32 * 1024, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (m->d == NULL) {
        free(m);
        return WD_ERR(WD_ERR_IO,
                      "metrics: cannot listen on %s (address not local or port in "
                      "use?)",
                      cfg->listen);
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(m->d, MHD_DAEMON_INFO_BIND_PORT);
    m->port = di ? di->port : port;
    wd_info("metrics: serving /healthz and /metrics on %s port %d", host, m->port);
    if (cfg->port_file && *cfg->port_file) {
        char line[16];
        int len = snprintf(line, sizeof line, "%d\n", m->port);
        if (wd_write_file_atomic(cfg->port_file, line, (size_t)len, 0644) != WD_OK)
            wd_warn("metrics: cannot write port file %s: %s", cfg->port_file, wd_err_msg());
    }
    *out = m;
    return WD_OK;
}

int wd_agent_metrics_port(const wd_agent_metrics *m)
{
    return m->port;
}

void wd_agent_metrics_stop(wd_agent_metrics **pm)
{
    if (pm == NULL || *pm == NULL)
        return;
    wd_agent_metrics *m = *pm;
    *pm = NULL;
    MHD_stop_daemon(m->d); /* joins the polling thread: no handler runs after this */
    free(m);
}
