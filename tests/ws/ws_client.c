/* A small blocking WebSocket client for tests (see ws_client.h). */
#include "ws_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

struct wsc {
    int fd;
    unsigned char *buf; /* received, not yet parsed */
    size_t len, cap;
    char *msg; /* message being assembled from fragments */
    size_t msglen;
    json_t **msgs;
    bool *taken;
    size_t n, ncap;
    bool closed;
    int close_code;
    char close_reason[128];
};

int wsc_rcvbuf;

static bool write_all(int fd, const void *p, size_t n)
{
    const char *b = p;
    while (n) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        if (w <= 0)
            return false;
        b += w;
        n -= (size_t)w;
    }
    return true;
}

wsc *wsc_connect(int port, const char *path, const char *origin, int *http_status)
{
    if (http_status)
        *http_status = 0;
    /* CLOEXEC: processes the tests start must not inherit (and hold open) a
     * client's connection. */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return NULL;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (wsc_rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &wsc_rcvbuf, sizeof wsc_rcvbuf);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return NULL;
    }
    char req[1024], org[300] = "";
    if (origin)
        snprintf(org, sizeof org, "Origin: %s\r\n", origin);
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n%s\r\n",
                     path ? path : "/ws", port, org);
    if (!write_all(fd, req, (size_t)n)) {
        close(fd);
        return NULL;
    }
    wsc *c = calloc(1, sizeof *c);
    c->fd = fd;
    c->cap = 65536;
    c->buf = malloc(c->cap);
    /* Response headers. */
    int64_t deadline = wd_mono_ms() + 5000;
    char *end = NULL;
    while (!end) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int left = (int)(deadline - wd_mono_ms());
        if (left <= 0 || poll(&p, 1, left) <= 0)
            goto fail;
        ssize_t r = recv(fd, c->buf + c->len, c->cap - c->len - 1, 0);
        if (r <= 0)
            goto fail;
        c->len += (size_t)r;
        c->buf[c->len] = '\0';
        end = strstr((char *)c->buf, "\r\n\r\n");
        if (!end && c->len + 1 >= c->cap)
            goto fail;
    }
    int status = 0;
    sscanf((char *)c->buf, "HTTP/1.1 %d", &status);
    if (http_status)
        *http_status = status;
    if (status != 101)
        goto fail;
    size_t hl = (size_t)(end + 4 - (char *)c->buf);
    memmove(c->buf, c->buf + hl, c->len - hl);
    c->len -= hl;
    return c;
fail:
    wsc_free(c);
    return NULL;
}

void wsc_free(wsc *c)
{
    if (!c)
        return;
    if (c->fd >= 0)
        close(c->fd);
    for (size_t i = 0; i < c->n; i++)
        json_decref(c->msgs[i]);
    free(c->msgs);
    free(c->taken);
    free(c->buf);
    free(c->msg);
    free(c);
}

size_t wsc_frame_head(unsigned char hdr[14], int opcode, bool fin, size_t len,
                      const unsigned char mask[4])
{
    size_t h = 0;
    hdr[h++] = (unsigned char)((fin ? 0x80 : 0) | (opcode & 0x0f));
    if (len < 126) {
        hdr[h++] = (unsigned char)(0x80 | len);
    } else if (len < 65536) {
        hdr[h++] = 0x80 | 126;
        hdr[h++] = (unsigned char)(len >> 8);
        hdr[h++] = (unsigned char)len;
    } else {
        hdr[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            hdr[h++] = (unsigned char)((uint64_t)len >> (8 * i));
    }
    memcpy(hdr + h, mask, 4);
    return h + 4;
}

size_t wsc_frame_peek(const unsigned char *b, size_t len, int *op, bool *fin, uint64_t *plen)
{
    if (len < 2)
        return 0;
    *op = b[0] & 0x0f;
    *fin = b[0] & 0x80;
    *plen = b[1] & 0x7f;
    size_t h = 2;
    if (*plen == 126) {
        if (len < 4)
            return 0;
        *plen = (uint64_t)b[2] << 8 | b[3];
        h = 4;
    } else if (*plen == 127) {
        if (len < 10)
            return 0;
        *plen = 0;
        for (int i = 0; i < 8; i++)
            *plen = *plen << 8 | b[2 + i];
        h = 10;
    }
    return len < h + *plen ? 0 : h;
}

bool wsc_send_frame(wsc *c, int opcode, const void *data, size_t len, bool fin)
{
    unsigned char hdr[14], mask[4] = {0x12, 0x34, 0x56, 0x78};
    size_t h = wsc_frame_head(hdr, opcode, fin, len, mask);
    unsigned char *body = malloc(len ? len : 1);
    for (size_t i = 0; i < len; i++)
        body[i] = ((const unsigned char *)data)[i] ^ mask[i % 4];
    bool ok = write_all(c->fd, hdr, h) && write_all(c->fd, body, len);
    free(body);
    return ok;
}

bool wsc_send_text(wsc *c, const char *text)
{
    return wsc_send_frame(c, 1, text, strlen(text), true);
}

bool wsc_send_event(wsc *c, const char *event, const char *arg)
{
    json_t *o = arg ? json_pack("{s:s, s:[s]}", "event", event, "args", arg)
                    : json_pack("{s:s, s:[]}", "event", event, "args");
    char *s = json_dumps(o, JSON_COMPACT);
    bool ok = wsc_send_text(c, s);
    free(s);
    json_decref(o);
    return ok;
}

static void add_msg(wsc *c, const char *data, size_t len)
{
    json_error_t err;
    json_t *v = json_loadb(data, len, 0, &err);
    if (!v)
        v = json_pack("{s:s, s:s#}", "event", "<unparsable>", "raw", data, (int)len);
    if (c->n == c->ncap) {
        c->ncap = c->ncap ? c->ncap * 2 : 64;
        c->msgs = realloc(c->msgs, c->ncap * sizeof *c->msgs);
        c->taken = realloc(c->taken, c->ncap * sizeof *c->taken);
    }
    c->taken[c->n] = false;
    c->msgs[c->n++] = v;
}

/* Parses complete frames in buf. */
static void parse(wsc *c)
{
    size_t off = 0; /* consumed; moved out once at the end */
    for (;;) {
        unsigned char *b = c->buf + off;
        int op;
        bool fin;
        uint64_t plen;
        size_t h = wsc_frame_peek(b, c->len - off, &op, &fin, &plen);
        if (h == 0)
            break;
        const unsigned char *p = b + h;
        switch (op) {
        case 0: /* continuation */
        case 1:
        case 2:
            c->msg = realloc(c->msg, c->msglen + plen + 1);
            memcpy(c->msg + c->msglen, p, plen);
            c->msglen += plen;
            if (fin) {
                add_msg(c, c->msg, c->msglen);
                c->msglen = 0;
            }
            break;
        case 8: /* close */
            c->close_code = plen >= 2 ? (p[0] << 8 | p[1]) : 1005;
            snprintf(c->close_reason, sizeof c->close_reason, "%.*s", plen > 2 ? (int)plen - 2 : 0,
                     (const char *)p + 2);
            if (!c->closed)
                wsc_send_frame(c, 8, p, plen >= 2 ? 2 : 0, true);
            c->closed = true;
            break;
        case 9: /* ping */
            wsc_send_frame(c, 10, p, plen, true);
            break;
        default:
            break;
        }
        off += h + plen;
    }
    if (off) {
        memmove(c->buf, c->buf + off, c->len - off);
        c->len -= off;
    }
}

/* Reads once (up to ms); false when closed. */
static bool read_some(wsc *c, int ms)
{
    if (c->closed)
        return false;
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    if (poll(&p, 1, ms < 0 ? 0 : ms) <= 0)
        return true;
    if (c->cap - c->len < 65536) {
        c->cap *= 2;
        c->buf = realloc(c->buf, c->cap);
    }
    ssize_t r = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
    if (r <= 0) {
        if (!c->closed) {
            c->closed = true;
            if (!c->close_code)
                c->close_code = 1006;
        }
        return false;
    }
    c->len += (size_t)r;
    parse(c);
    return true;
}

void wsc_pump(wsc *c, int ms)
{
    int64_t deadline = wd_mono_ms() + ms;
    while (!c->closed) {
        int left = (int)(deadline - wd_mono_ms());
        if (left <= 0)
            break;
        read_some(c, left);
    }
}

static bool matches(json_t *m, const char *event, const char *contains)
{
    json_t *ev = json_object_get(m, "event");
    if (!json_is_string(ev) || strcmp(json_string_value(ev), event) != 0)
        return false;
    if (!contains)
        return true;
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(m, "args"), i, a)
    {
        if (json_is_string(a) && strstr(json_string_value(a), contains))
            return true;
    }
    return false;
}

static json_t *find(wsc *c, const char *event, const char *contains, int timeout_ms, bool take)
{
    int64_t deadline = wd_mono_ms() + timeout_ms;
    size_t from = 0;
    for (;;) {
        for (size_t i = from; i < c->n; i++)
            if (!c->taken[i] && matches(c->msgs[i], event, contains)) {
                if (take)
                    c->taken[i] = true;
                return c->msgs[i];
            }
        from = c->n; /* next time only what arrives meanwhile */
        int left = (int)(deadline - wd_mono_ms());
        if (left <= 0 || c->closed)
            return NULL;
        read_some(c, left > 50 ? 50 : left);
    }
}

json_t *wsc_wait(wsc *c, const char *event, const char *contains, int timeout_ms)
{
    return find(c, event, contains, timeout_ms, true);
}

json_t *wsc_peek(wsc *c, const char *event, const char *contains, int timeout_ms)
{
    return find(c, event, contains, timeout_ms, false);
}

int wsc_wait_close(wsc *c, int timeout_ms, char *reason, size_t n)
{
    int64_t deadline = wd_mono_ms() + timeout_ms;
    while (!c->closed) {
        int left = (int)(deadline - wd_mono_ms());
        if (left <= 0)
            return -1;
        read_some(c, left);
    }
    if (reason)
        snprintf(reason, n, "%s", c->close_reason);
    return c->close_code;
}

bool wsc_closed(wsc *c)
{
    return c->closed;
}

size_t wsc_unread_bytes(wsc *c)
{
    int n = 0;
    if (ioctl(c->fd, FIONREAD, &n) != 0)
        return 0;
    return (size_t)n;
}

size_t wsc_count(wsc *c)
{
    return c->n;
}

json_t *wsc_msg(wsc *c, size_t i)
{
    return i < c->n ? c->msgs[i] : NULL;
}

long wsc_index(wsc *c, const char *event, const char *contains)
{
    for (size_t i = 0; i < c->n; i++)
        if (matches(c->msgs[i], event, contains))
            return (long)i;
    return -1;
}
