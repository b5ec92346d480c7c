/* WebSocket gateway benchmarks. Starts a private nats-server, warden-agent
 * and warden-ws on loopback (the integration fixtures) and prints:
 *
 *   1. console line latency: the game's own clock at the moment it prints a
 *      line -> a WebSocket client holding the `console output` event, with
 *      1, 100 and 1,000 clients watching the same server
 *   2. gateway memory per idle authenticated connection (5,000 connections)
 *   3. fan-out throughput: one server flooding its console to K clients,
 *      events and lines delivered per second, and the gateway's drop and
 *      send-queue metrics
 *   4. fan-out at steady line rates, stepped up until something drops or
 *      the gateway saturates
 *
 * `bench_ws [latency] [memory] [fanout] [paced]` runs some (default: all).
 * Figures, not pass/fail: see bench/README.md.
 *
 * The clients are written here on plain sockets rather than with
 * tests/ws/ws_client.c: thousands of them are driven from one thread with
 * poll(), and the hot path only finds the numbers in each message. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "agent_fixture.h"
#include "util.h"
#include "ws_fixture.h"

#define ACT(x) WARDEN__V1__POWER_REQUEST__ACTION__##x
#define ST(x) WARDEN__V1__SERVER_STATE__SERVER_STATE_##x

static wd_fx fx;

/* ------------------------------------------------------------------ */
/* A minimal client: blocking connect, handshake and auth, then polled. */

typedef struct {
    int fd;
    unsigned char *buf;
    size_t len, cap;
    char *msg; /* fragments being assembled */
    size_t msglen;
    bool closed;
    int close_code;
    uint64_t events, lines; /* console output events / lines received */
    uint64_t dropped;       /* sum of the events' "dropped" (lost upstream) */
} cl;

typedef void (*on_msg_fn)(cl *c, const char *m, size_t n, int64_t now_ns, void *arg);

static int64_t real_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static bool write_all(int fd, const void *p, size_t n)
{
    const char *b = p;
    while (n) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        b += w;
        n -= (size_t)w;
    }
    return true;
}

static bool send_frame(cl *c, int opcode, const void *data, size_t len)
{
    unsigned char hdr[14], mask[4] = {0x11, 0x22, 0x33, 0x44};
    size_t h = wsc_frame_head(hdr, opcode, true, len, mask);
    unsigned char body[8192];
    if (len > sizeof body)
        return false;
    for (size_t i = 0; i < len; i++)
        body[i] = ((const unsigned char *)data)[i] ^ mask[i % 4];
    return write_all(c->fd, hdr, h) && write_all(c->fd, body, len);
}

static void cl_free(cl *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    free(c->buf);
    free(c->msg);
    c->buf = NULL;
    c->msg = NULL;
}

/* Parses the complete frames in buf, calling on_msg for each text message. */
static void cl_parse(cl *c, int64_t now_ns, on_msg_fn on_msg, void *arg)
{
    size_t off = 0;
    for (;;) {
        unsigned char *b = c->buf + off;
        int op;
        bool fin;
        uint64_t plen;
        size_t h = wsc_frame_peek(b, c->len - off, &op, &fin, &plen);
        if (h == 0)
            break;
        const char *p = (const char *)b + h;
        if (op <= 2) {
            if (fin && c->msglen == 0) {
                on_msg(c, p, plen, now_ns, arg);
            } else {
                c->msg = realloc(c->msg, c->msglen + plen + 1);
                memcpy(c->msg + c->msglen, p, plen);
                c->msglen += plen;
                if (fin) {
                    on_msg(c, c->msg, c->msglen, now_ns, arg);
                    c->msglen = 0;
                }
            }
        } else if (op == 8) {
            c->close_code = plen >= 2 ? ((unsigned char)p[0] << 8 | (unsigned char)p[1]) : 1005;
            c->closed = true;
        } else if (op == 9) {
            send_frame(c, 10, p, plen);
        }
        off += h + plen;
    }
    if (off) {
        memmove(c->buf, c->buf + off, c->len - off);
        c->len -= off;
    }
}

/* One recv; false once the connection is gone. */
static bool cl_read(cl *c, on_msg_fn on_msg, void *arg)
{
    if (c->closed)
        return false;
    if (c->cap - c->len < 16384) {
        c->cap = c->cap ? c->cap * 2 : 32768;
        c->buf = realloc(c->buf, c->cap);
    }
    ssize_t r = recv(c->fd, c->buf + c->len, c->cap - c->len, MSG_DONTWAIT);
    int64_t now = real_ns();
    if (r < 0 && (errno == EAGAIN || errno == EINTR))
        return true;
    if (r <= 0) {
        c->closed = true;
        if (!c->close_code)
            c->close_code = 1006;
        return false;
    }
    c->len += (size_t)r;
    cl_parse(c, now, on_msg, arg);
    return !c->closed;
}

static bool auth_seen;
static void on_auth_msg(cl *c, const char *m, size_t n, int64_t now_ns, void *arg)
{
    (void)c, (void)now_ns, (void)arg;
    if (memmem(m, n, "\"auth success\"", 14))
        auth_seen = true;
}

/* Connects, upgrades and authenticates; *why receives a reason on failure. */
static bool cl_open(cl *c, int port, const char *token, const char **why)
{
    memset(c, 0, sizeof *c);
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        *why = strerror(errno);
        return false;
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (struct sockaddr *)&a, sizeof a) != 0) {
        *why = strerror(errno);
        goto fail;
    }
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     port);
    if (!write_all(c->fd, req, (size_t)n)) {
        *why = "handshake send failed";
        goto fail;
    }
    c->cap = 32768;
    c->buf = malloc(c->cap);
    int64_t deadline = wd_mono_ms() + 10000;
    char *end = NULL;
    while (!end) {
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        int left = (int)(deadline - wd_mono_ms());
        if (left <= 0 || poll(&p, 1, left) <= 0) {
            *why = "handshake timeout";
            goto fail;
        }
        ssize_t r = recv(c->fd, c->buf + c->len, c->cap - c->len - 1, 0);
        if (r <= 0) {
            *why = "connection closed during handshake (refused: --max-connections?)";
            goto fail;
        }
        c->len += (size_t)r;
        c->buf[c->len] = '\0';
        end = strstr((char *)c->buf, "\r\n\r\n");
    }
    if (strncmp((char *)c->buf, "HTTP/1.1 101", 12) != 0) {
        *why = "handshake refused";
        goto fail;
    }
    size_t hl = (size_t)(end + 4 - (char *)c->buf);
    memmove(c->buf, c->buf + hl, c->len - hl);
    c->len -= hl;
    char ev[4096 + 64];
    n = snprintf(ev, sizeof ev, "{\"event\":\"auth\",\"args\":[\"%s\"]}", token);
    if (!send_frame(c, 1, ev, (size_t)n)) {
        *why = "auth send failed";
        goto fail;
    }
    auth_seen = false;
    cl_parse(c, 0, on_auth_msg, NULL);
    while (!auth_seen) {
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        int left = (int)(deadline - wd_mono_ms());
        if (left <= 0 || poll(&p, 1, left) <= 0) {
            *why = "no auth success";
            goto fail;
        }
        if (!cl_read(c, on_auth_msg, NULL) && !auth_seen) {
            *why = "closed before auth success";
            goto fail;
        }
    }
    return true;
fail:
    cl_free(c);
    return false;
}

/* Opens up to n clients; returns how many made it (the reason of the first
 * failure in why). */
static int open_clients(cl *cs, int n, int port, const char *token, const char **why)
{
    for (int i = 0; i < n; i++)
        if (!cl_open(&cs[i], port, token, why))
            return i;
    return n;
}

/* Reads every client for ms milliseconds (or until *stop). */
static void pump(cl *cs, int n, struct pollfd *pfd, int ms, on_msg_fn on_msg, void *arg,
                 const bool *stop)
{
    int64_t deadline = wd_mono_ms() + ms;
    while (!(stop && *stop)) {
        int left = (int)(deadline - wd_mono_ms());
        if (left <= 0)
            break;
        for (int i = 0; i < n; i++) {
            pfd[i].fd = cs[i].closed ? -1 : cs[i].fd;
            pfd[i].events = POLLIN;
            pfd[i].revents = 0;
        }
        int r = poll(pfd, (nfds_t)n, left > 100 ? 100 : left);
        if (r <= 0)
            continue;
        for (int i = 0; i < n; i++)
            if (pfd[i].revents)
                cl_read(&cs[i], on_msg, arg);
    }
}

static void close_clients(cl *cs, int n)
{
    for (int i = 0; i < n; i++)
        cl_free(&cs[i]);
}

/* ------------------------------------------------------------------ */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static long rss_kb(pid_t pid)
{
    char path[64], *text = NULL;
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    if (wd_read_file(path, 65536, &text, NULL) != WD_OK)
        return -1;
    char *p = strstr(text, "VmRSS:");
    long kb = p ? strtol(p + 6, NULL, 10) : -1;
    free(text);
    return kb;
}

static double cpu_seconds(pid_t pid)
{
    char path[64], *text = NULL;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if (wd_read_file(path, 65536, &text, NULL) != WD_OK)
        return 0;
    char *p = strrchr(text, ')');
    unsigned long ut = 0, stt = 0;
    if (p)
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &stt);
    free(text);
    return (double)(ut + stt) / (double)sysconf(_SC_CLK_TCK);
}

static bool start_gateway(wd_gx *g, const char *const *extra)
{
    const char *args[16] = {"--log-level=warn"};
    int n = 1;
    for (int i = 0; extra && extra[i] && n < 15; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    if (!wd_gx_start(g, &fx, args)) {
        printf("could not start warden-ws (see %s)\n", g->log);
        return false;
    }
    return true;
}

static bool create_and_start(const char *tpl, Warden__V1__Limits *limits, char id[37])
{
    if (wd_fx_create_ex(&fx, tpl, NULL, limits, id) != WD_OK)
        return false;
    wd_watch *w = wd_watch_start(&fx, id);
    Warden__V1__InstallRequest ir = WARDEN__V1__INSTALL_REQUEST__INIT;
    wd_fx_request(&fx, id, "install", &ir.base, &warden__v1__ack__descriptor, NULL);
    wd_watch_wait_state(w, ST(OFFLINE), 20000);
    bool ok =
        wd_fx_power(&fx, id, ACT(START)) == WD_OK && wd_watch_wait_state(w, ST(RUNNING), 20000);
    wd_watch_free(w);
    return ok;
}

static void stop_server(const char *id)
{
    wd_watch *w = wd_watch_start(&fx, id);
    wd_fx_power(&fx, id, ACT(KILL));
    wd_watch_wait_state(w, ST(OFFLINE), 10000);
    wd_watch_free(w);
}

static char *token_for(const char *id)
{
    static const char *const perms[] = {"websocket.connect", NULL};
    return wd_gx_token(&fx, id, "bench-user", "bench-session", perms, 3600);
}

/* ------------------------------------------------------------------ */
/* 1. Line latency. */

typedef struct {
    int64_t *us;
    size_t n, cap;
} samples;

/* Finds the timestamps in a console output event without a JSON parser:
 * {"event":"console output","args":["<ns>","<ns>"],"seq":N}. */
static void on_latency_msg(cl *c, const char *m, size_t n, int64_t now_ns, void *arg)
{
    samples *s = arg;
    if (n < 40 || !memmem(m, n < 48 ? n : 48, "console output", 14))
        return;
    c->events++;
    const char *end = m + n;
    const char *p = memmem(m, n, "\"args\":[", 8);
    if (!p)
        return;
    p += 8;
    while (p < end && *p == '"') {
        p++;
        int64_t ns = 0;
        const char *q = p;
        while (q < end && *q >= '0' && *q <= '9')
            ns = ns * 10 + (*q++ - '0');
        while (q < end && *q != '"')
            q++;
        if (q - p >= 19 && ns > 1000000000000000000LL) {
            c->lines++;
            if (s->n == s->cap) {
                s->cap = s->cap ? s->cap * 2 : 65536;
                s->us = realloc(s->us, s->cap * sizeof *s->us);
            }
            s->us[s->n++] = (now_ns - ns) / 1000;
        }
        p = q + 1;
        if (p < end && *p == ',')
            p++;
    }
}

static void bench_latency(const int *counts, int ncounts, int interval_ms, int seconds)
{
    char tpl_text[512];
    snprintf(tpl_text, sizeof tpl_text,
             "{\"format\":\"warden/v1\",\"id\":\"ticker\",\"name\":\"ticker\","
             "\"startup\":\"/bin/sh -c 'echo Ready; while :; do date +%%s%%N; sleep %d.%03d; "
             "done'\",\"done\":\"Ready\",\"stop\":{\"command\":\"^C\"}}",
             interval_ms / 1000, interval_ms % 1000);
    const char *tpl = wd_h_write_tmp("ws-ticker.json", tpl_text);
    char id[37];
    if (!create_and_start(tpl, NULL, id)) {
        printf("line latency: could not start the ticker game: %s\n", wd_err_msg());
        return;
    }
    wd_gx g;
    if (!start_gateway(&g, NULL)) {
        stop_server(id);
        return;
    }
    char *token = token_for(id);
    printf("1. console line latency: the game prints its CLOCK_REALTIME (date +%%s%%N) every "
           "%d ms;\n   each client subtracts it from CLOCK_REALTIME taken right after recv() "
           "of the frame\n   (game stdout -> pty -> shim -> agent -> NATS -> warden-ws -> "
           "client); %d s per row\n",
           interval_ms, seconds);
    for (int k = 0; k < ncounts; k++) {
        int want = counts[k];
        cl *cs = calloc((size_t)want, sizeof *cs);
        struct pollfd *pfd = calloc((size_t)want, sizeof *pfd);
        const char *why = "";
        int n = open_clients(cs, want, g.port, token, &why);
        if (n < want)
            printf("   %d clients wanted, %d connected: %s\n", want, n, why);
        if (n == 0) {
            free(cs);
            free(pfd);
            break;
        }
        samples s = {0};
        pump(cs, n, pfd, 1000, on_latency_msg, &s, NULL); /* settle */
        s.n = 0;
        double c0 = cpu_seconds(g.pid), b0 = cpu_seconds(getpid());
        pump(cs, n, pfd, seconds * 1000, on_latency_msg, &s, NULL);
        double c1 = cpu_seconds(g.pid), b1 = cpu_seconds(getpid());
        int closed = 0;
        for (int i = 0; i < n; i++)
            closed += cs[i].closed;
        if (s.n) {
            qsort(s.us, s.n, sizeof *s.us, cmp_i64);
            printf("   %5d clients  samples=%-7zu p50=%8.0f us  p99=%8.0f us  max=%8.0f us"
                   "  CPU: gateway %3.0f%%, clients %3.0f%%%s\n",
                   n, s.n, (double)s.us[s.n / 2], (double)s.us[(size_t)((double)s.n * 0.99)],
                   (double)s.us[s.n - 1], (c1 - c0) * 100.0 / seconds, (b1 - b0) * 100.0 / seconds,
                   closed ? "  (some clients were closed)" : "");
        } else {
            printf("   %5d clients  no samples\n", n);
        }
        free(s.us);
        close_clients(cs, n);
        free(cs);
        free(pfd);
        usleep(300000);
    }
    free(token);
    wd_gx_stop(&g);
    stop_server(id);
}

/* ------------------------------------------------------------------ */
/* 2. Memory per idle connection. */

static void on_ignore(cl *c, const char *m, size_t n, int64_t now_ns, void *arg)
{
    (void)c, (void)m, (void)n, (void)now_ns, (void)arg;
}

static void bench_memory(int want)
{
    /* An installed server left offline: nothing is sent to idle sockets
     * (a running one would push stats every 2 s to each). */
    char id[37];
    if (wd_fx_create(&fx, wd_fx_template("testgame"), NULL, id) != WD_OK) {
        printf("memory: could not create a server: %s\n", wd_err_msg());
        return;
    }
    char maxc[64];
    snprintf(maxc, sizeof maxc, "--max-connections=%d", want + 100);
    const char *extra[] = {maxc, NULL};
    wd_gx g;
    if (!start_gateway(&g, extra))
        return;
    char *token = token_for(id);
    cl *cs = calloc((size_t)want, sizeof *cs);
    struct pollfd *pfd = calloc((size_t)want, sizeof *pfd);
    /* One connection first so that the first watcher's lazy allocations
     * (subscription, lws per-thread buffers) are in the baseline. */
    const char *why = "";
    cl warm;
    if (!cl_open(&warm, g.port, token, &why)) {
        printf("memory: first connection failed: %s\n", why);
        goto out;
    }
    usleep(500000);
    long before = rss_kb(g.pid);
    int64_t t0 = wd_mono_us();
    int n = open_clients(cs, want, g.port, token, &why);
    double secs = (double)(wd_mono_us() - t0) / 1e6;
    pump(cs, n, pfd, 2000, on_ignore, NULL, NULL);
    long after = rss_kb(g.pid);
    long conns = wd_gx_metric(&g, "warden_ws_connections_authenticated");
    printf("2. gateway memory per idle authenticated connection (warden-ws VmRSS from "
           "/proc/PID/status,\n   after minus before opening the connections, all watching "
           "one offline server)\n");
    if (n < want)
        printf("   %d connections wanted, %d made: %s\n", want, n, why);
    if (n > 0)
        printf("   %d connections (gateway reports %ld authenticated) opened in %.1f s "
               "(%.0f/s, connect+upgrade+auth, one at a time)\n"
               "   RSS %.1f MB before, %.1f MB after: %.1f KB per connection\n",
               n, conns, secs, n / secs, before / 1024.0, after / 1024.0,
               (double)(after - before) / n);
    close_clients(cs, n);
    cl_free(&warm);
out:
    free(cs);
    free(pfd);
    free(token);
    wd_gx_stop(&g);
}

/* ------------------------------------------------------------------ */
/* 3. Fan-out throughput. */

static const char *line_mark = "flood line "; /* what counts as a line */

static void on_flood_msg(cl *c, const char *m, size_t n, int64_t now_ns, void *arg)
{
    (void)now_ns;
    int64_t *last = arg;
    if (n < 40 || !memmem(m, n < 48 ? n : 48, "console output", 14))
        return;
    c->events++;
    const char *p = m, *end = m + n;
    size_t ml = strlen(line_mark);
    while ((p = memmem(p, (size_t)(end - p), line_mark, ml)) != NULL) {
        c->lines++;
        p += ml;
    }
    const char *d = memmem(m, n, "\"dropped\":", 10);
    if (d)
        c->dropped += strtoull(d + 10, NULL, 10);
    *last = wd_mono_us();
}

/* One step of the fan-out benchmarks: a fresh gateway, want clients
 * watching server id, connected, authenticated and past the history. */
typedef struct {
    wd_gx g;
    char *token;
    cl *cs;
    struct pollfd *pfd;
    int n;
} step;

static bool step_open(step *st, const char *id, int want)
{
    memset(st, 0, sizeof *st);
    if (!start_gateway(&st->g, NULL))
        return false;
    st->token = token_for(id);
    st->cs = calloc((size_t)want, sizeof *st->cs);
    st->pfd = calloc((size_t)want, sizeof *st->pfd);
    const char *why = "";
    st->n = open_clients(st->cs, want, st->g.port, st->token, &why);
    if (st->n < want)
        printf("   %d clients wanted, %d connected: %s\n", want, st->n, why);
    int64_t last = 0;
    pump(st->cs, st->n, st->pfd, 500, on_flood_msg, &last, NULL);
    return true;
}

static void step_close(step *st)
{
    close_clients(st->cs, st->n);
    free(st->cs);
    free(st->pfd);
    free(st->token);
    wd_gx_stop(&st->g);
}

static void bench_fanout(const int *counts, int ncounts, long lines)
{
    Warden__V1__Limits unlimited = WARDEN__V1__LIMITS__INIT;
    unlimited.console_lines_per_second = 100000000;
    char id[37];
    if (!create_and_start(wd_fx_template("testgame"), &unlimited, id)) {
        printf("fan-out: could not start the test game: %s\n", wd_err_msg());
        return;
    }
    printf("3. fan-out: the test game prints %ld lines with seq as fast as it can (rate "
           "limit lifted);\n   K clients read everything; delivered = console output events "
           "(and lines) summed over\n   clients, from the command to the last event; "
           "gateway defaults (send queue 16384 msgs / 4 MiB)\n",
           lines);
    /* A first flood with nobody on the gateway: on a fresh server the shim
     * has been seen to drop part of the first flood (reported as "dropped"
     * in the events), which would say nothing about the gateway. */
    wd_watch *w = wd_watch_start(&fx, id);
    char warm[64];
    snprintf(warm, sizeof warm, "flood %ld", lines);
    wd_fx_send(&fx, id, warm);
    size_t seen = 0;
    for (int i = 0; i < 100; i++) {
        usleep(100000);
        size_t now = wd_watch_count_prefix(w, "flood line");
        if (now && now == seen)
            break;
        seen = now;
    }
    printf("   (warm-up flood with no client: %zu of %ld lines reached NATS, %llu dropped "
           "upstream)\n",
           seen, lines, (unsigned long long)wd_watch_dropped(w));
    wd_watch_free(w);
    for (int k = 0; k < ncounts; k++) {
        int want = counts[k];
        step st;
        if (!step_open(&st, id, want))
            break;
        wd_gx g = st.g;
        cl *cs = st.cs;
        struct pollfd *pfd = st.pfd;
        int n = st.n;
        int64_t last = 0;
        for (int i = 0; i < n; i++)
            cs[i].events = cs[i].lines = cs[i].dropped = 0;
        long bus0 = wd_gx_metric(&g, "warden_ws_bus_messages_total");
        long out0 = wd_gx_metric(&g, "warden_ws_messages_out_total");
        char cmd[64];
        snprintf(cmd, sizeof cmd, "flood %ld", lines);
        double c0 = cpu_seconds(g.pid), b0 = cpu_seconds(getpid());
        int64_t t0 = wd_mono_us();
        last = t0;
        wd_fx_send(&fx, id, cmd);
        /* Until every client has every line, or 2 s without anything. */
        int64_t deadline = t0 + 40000000;
        long qmax = 0;
        for (;;) {
            pump(cs, n, pfd, 200, on_flood_msg, &last, NULL);
            long q = wd_gx_metric(&g, "warden_ws_send_queue_depth_max");
            if (q > qmax)
                qmax = q;
            bool all = true;
            for (int i = 0; i < n && all; i++)
                all = cs[i].closed || cs[i].lines >= (uint64_t)lines;
            int64_t now = wd_mono_us();
            if (all || now - last > 2000000 || now > deadline)
                break;
        }
        double c1 = cpu_seconds(g.pid), b1 = cpu_seconds(getpid());
        double secs = (double)(last - t0) / 1e6;
        if (secs < 1e-3)
            secs = 1e-3; /* nothing arrived: print zeros, not NaN */
        uint64_t ev = 0, ln = 0, minl = UINT64_MAX, maxl = 0, updrop = 0;
        int closed = 0, code = 0;
        for (int i = 0; i < n; i++) {
            ev += cs[i].events;
            ln += cs[i].lines;
            if (cs[i].lines < minl)
                minl = cs[i].lines;
            if (cs[i].lines > maxl)
                maxl = cs[i].lines;
            if (cs[i].dropped > updrop)
                updrop = cs[i].dropped;
            if (cs[i].closed) {
                closed++;
                code = cs[i].close_code;
            }
        }
        long bus = wd_gx_metric(&g, "warden_ws_bus_messages_total") - bus0;
        long out = wd_gx_metric(&g, "warden_ws_messages_out_total") - out0;
        printf("   K=%-4d %9llu events in %5.2f s = %8.0f events/s, %9.0f lines/s total; "
               "%5.1f lines/event\n",
               n, (unsigned long long)ev, secs, (double)ev / secs, (double)ln / secs,
               ev ? (double)ln / (double)ev : 0.0);
        printf("          bus chunks in %ld, messages out %ld, CPU: gateway %.0f%%, clients "
               "%.0f%%; lines per client: fewest %llu, most %llu of %ld\n",
               bus, out, secs > 0 ? (c1 - c0) * 100.0 / secs : 0.0,
               secs > 0 ? (b1 - b0) * 100.0 / secs : 0.0, (unsigned long long)(n ? minl : 0),
               (unsigned long long)maxl, lines);
        printf("          lost before the gateway (the events' \"dropped\" count: agent/shim): "
               "%llu\n",
               (unsigned long long)updrop);
        printf("          gateway drops: slow_client %ld, inbox_full %ld; closed as slow (4008) "
               "%ld; clients closed %d (last code %d); deepest send queue seen %ld\n",
               wd_gx_metric(&g, "warden_ws_dropped_total{reason=\"slow_client\"}"),
               wd_gx_metric(&g, "warden_ws_dropped_total{reason=\"inbox_full\"}"),
               wd_gx_metric(&g, "warden_ws_closed_total{reason=\"slow_client\"}"), closed, code,
               qmax);
        step_close(&st);
    }
    stop_server(id);
}

/* A game that prints "tick <i>" lines at a steady rate on request
 * ("pace RATE COUNT"), flushing each: at moderate rates each line is its own
 * console event, so the fan-out load is K x RATE messages per second. */
static const char pacer_tpl[] =
    "{\"format\":\"warden/v1\",\"id\":\"pacer\",\"name\":\"pacer\","
    "\"startup\":\"/usr/bin/perl ./pace.pl\",\"done\":\"Ready\",\"stop\":{\"command\":\"^C\"},"
    "\"install\":{\"interpreter\":\"/bin/sh\",\"script\":\"cat > pace.pl <<'EOF'\\n"
    "use strict; use Time::HiRes qw(time sleep); $| = 1; print qq{Ready\\\\n};\\n"
    "while (my $l = <STDIN>) {\\n"
    "  next unless $l =~ /^pace (\\\\d+) (\\\\d+)/; my ($r, $n) = ($1, $2); my $t0 = time;\\n"
    "  for my $i (1 .. $n) { my $d = $t0 + $i / $r - time; sleep($d) if $d > 0; "
    "print qq{tick $i\\\\n}; }\\n"
    "}\\n"
    "EOF\\n\"}}";

/* For each K: one gateway, K clients, then steps of increasing line rates
 * (each `seconds` long) until the gateway drops or closes a client. */
static void bench_paced(const int *counts, const int *const *rates, int ncounts, int seconds)
{
    Warden__V1__Limits unlimited = WARDEN__V1__LIMITS__INIT;
    unlimited.console_lines_per_second = 100000000;
    char id[37];
    if (!create_and_start(wd_h_write_tmp("ws-pacer.json", pacer_tpl), &unlimited, id)) {
        printf("paced fan-out: could not start the pacing game: %s\n", wd_err_msg());
        return;
    }
    printf("4. fan-out at a steady rate: the game prints R lines/s (one flushed write each) for "
           "%d s to K clients;\n   offered = K x R messages/s; delivered = console output events "
           "summed over clients / time\n   from the request to the last event; steps stop at the "
           "first drop, close or missing line\n",
           seconds);
    line_mark = "tick ";
    for (int k = 0; k < ncounts; k++) {
        int want = counts[k];
        step st;
        if (!step_open(&st, id, want))
            break;
        wd_gx g = st.g;
        cl *cs = st.cs;
        struct pollfd *pfd = st.pfd;
        int n = st.n;
        int64_t last = 0;
        for (int r = 0; rates[k][r] && n > 0; r++) {
            int rate = rates[k][r];
            long count = (long)rate * seconds;
            for (int i = 0; i < n; i++)
                cs[i].events = cs[i].lines = cs[i].dropped = 0;
            char cmd[64];
            snprintf(cmd, sizeof cmd, "pace %d %ld", rate, count);
            double c0 = cpu_seconds(g.pid), b0 = cpu_seconds(getpid());
            int64_t t0 = wd_mono_us();
            last = t0;
            wd_fx_send(&fx, id, cmd);
            long qmax = 0;
            for (;;) {
                pump(cs, n, pfd, 200, on_flood_msg, &last, NULL);
                long q = wd_gx_metric(&g, "warden_ws_send_queue_depth_max");
                if (q > qmax)
                    qmax = q;
                bool all = true;
                for (int i = 0; i < n && all; i++)
                    all = cs[i].closed || cs[i].lines >= (uint64_t)count;
                int64_t now = wd_mono_us();
                if (all || now - last > 2000000 || now - t0 > (int64_t)(seconds + 20) * 1000000)
                    break;
            }
            double c1 = cpu_seconds(g.pid), b1 = cpu_seconds(getpid());
            double secs = (double)(last - t0) / 1e6;
            if (secs < 1e-3)
                secs = 1e-3; /* nothing arrived: print zeros, not NaN */
            uint64_t ev = 0, ln = 0, updrop = 0;
            int closed = 0;
            for (int i = 0; i < n; i++) {
                ev += cs[i].events;
                ln += cs[i].lines;
                closed += cs[i].closed;
                if (cs[i].dropped > updrop)
                    updrop = cs[i].dropped;
            }
            uint64_t missing =
                (uint64_t)count * (uint64_t)n > ln ? (uint64_t)count * (uint64_t)n - ln : 0;
            long sdrop = wd_gx_metric(&g, "warden_ws_dropped_total{reason=\"slow_client\"}");
            long idrop = wd_gx_metric(&g, "warden_ws_dropped_total{reason=\"inbox_full\"}");
            long sclose = wd_gx_metric(&g, "warden_ws_closed_total{reason=\"slow_client\"}");
            printf("   K=%-4d R=%-6d offered %8ld msg/s: delivered %8.0f events/s (%8.0f lines/s "
                   "total, "
                   "%4.1f lines/event), last after %5.2f s\n",
                   n, rate, (long)n * rate, (double)ev / secs, (double)ln / secs,
                   ev ? (double)ln / (double)ev : 0.0, secs);
            printf("          CPU: gateway %3.0f%%, clients %3.0f%%; deepest send queue %ld; "
                   "gateway drops %ld slow + %ld inbox, closed slow %ld, clients closed %d; "
                   "lines missing %llu (of which reported lost upstream %llu)\n",
                   (c1 - c0) * 100.0 / secs, (b1 - b0) * 100.0 / secs, qmax, sdrop, idrop, sclose,
                   closed, (unsigned long long)missing, (unsigned long long)updrop);
            if (sdrop > 0 || idrop > 0 || sclose > 0 || closed > 0 || missing > 0)
                break;
            usleep(500000);
        }
        step_close(&st);
    }
    line_mark = "flood line ";
    stop_server(id);
}

/* ------------------------------------------------------------------ */

static bool wanted(int argc, char **argv, const char *name)
{
    if (argc < 2)
        return true;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return true;
    return false;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "latency") != 0 && strcmp(argv[i], "memory") != 0 &&
            strcmp(argv[i], "fanout") != 0 && strcmp(argv[i], "paced") != 0) {
            fprintf(stderr,
                    "usage: bench_ws [latency] [memory] [fanout] [paced]   (default: all)\n");
            return 2;
        }
    /* 5,000 sockets here and 5,000 in the gateway (which inherits this). */
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rlim_t want = 12000;
    if (rl.rlim_cur < want) {
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            perror("setrlimit(RLIMIT_NOFILE)");
    }
    getrlimit(RLIMIT_NOFILE, &rl);
    long fd_cap = (long)rl.rlim_cur - 64; /* the fixture's own files and sockets */
    wd_fx_stats_interval_ms = 2000;       /* the agent's default */
    if (!wd_fx_start(&fx) || !wd_gx_keys()) {
        fprintf(stderr, "bench: could not start nats-server and the agent\n");
        return 1;
    }
    printf("Warden WebSocket gateway benchmarks (loopback, %ld cores, open files limit %ld)\n",
           sysconf(_SC_NPROCESSORS_ONLN), (long)rl.rlim_cur);
    if (wanted(argc, argv, "latency")) {
        int lat[] = {1, 100, 1000};
        for (int i = 0; i < 3; i++)
            if (lat[i] > fd_cap) {
                printf("(open files limit %ld: %d clients reduced to %ld)\n", (long)rl.rlim_cur,
                       lat[i], fd_cap);
                lat[i] = (int)fd_cap;
            }
        bench_latency(lat, 3, 50, 10);
        printf("\n");
    }
    if (wanted(argc, argv, "memory")) {
        long mem = 5000;
        if (mem > fd_cap) {
            printf("(open files limit %ld: 5000 connections reduced to %ld)\n", (long)rl.rlim_cur,
                   fd_cap);
            mem = fd_cap;
        }
        bench_memory((int)mem);
        printf("\n");
    }
    if (wanted(argc, argv, "fanout")) {
        int fan[] = {10, 100, 1000};
        for (int i = 0; i < 3; i++)
            if (fan[i] > fd_cap)
                fan[i] = (int)fd_cap;
        bench_fanout(fan, 3, 200000);
        printf("\n");
    }
    if (wanted(argc, argv, "paced")) {
        static const int r10[] = {5000, 50000, 0};
        static const int r100[] = {1000, 5000, 20000, 0};
        static const int r1000[] = {100, 500, 1000, 5000, 0};
        const int *rates[] = {r10, r100, r1000};
        int fan[] = {10, 100, 1000};
        for (int i = 0; i < 3; i++)
            if (fan[i] > fd_cap)
                fan[i] = (int)fd_cap;
        bench_paced(fan, rates, 3, 3);
    }
    wd_fx_stop(&fx);
    wd_h_stop_all();
    return 0;
}
