/* Subject builders (see subject.h). */
#include "subject.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

bool wd_subj_token_ok(const char *tok)
{
    if (tok == NULL || *tok == '\0')
        return false;
    size_t n = 0;
    for (const char *p = tok; *p; p++, n++) {
        unsigned char c = (unsigned char)*p;
        if (c <= ' ' || c == '.' || c == '*' || c == '>' || c == 0x7f || n >= 64)
            return false;
    }
    return true;
}

/* op: one or more dot-separated tokens, each valid. */
static bool op_ok(const char *op)
{
    if (op == NULL || *op == '\0' || strlen(op) >= WD_SUBJECT_MAX)
        return false;
    const char *p = op;
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        char tok[65];
        if (len == 0 || len >= sizeof tok)
            return false;
        memcpy(tok, p, len);
        tok[len] = '\0';
        if (!wd_subj_token_ok(tok))
            return false;
        if (dot == NULL)
            return true;
        p = dot + 1;
    }
}

static wd_status fmt(char *buf, size_t n, const char *f, ...) __attribute__((format(printf, 3, 4)));
static wd_status fmt(char *buf, size_t n, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    int r = vsnprintf(buf, n, f, ap);
    va_end(ap);
    if (r < 0 || (size_t)r >= n)
        return WD_ERR(WD_ERR_INVALID, "subject too long");
    return WD_OK;
}

wd_status wd_subj_agent_server(char *buf, size_t n, const char *node, const char *server,
                               const char *op)
{
    if (!wd_subj_token_ok(node) || !wd_subj_token_ok(server) || !op_ok(op))
        return WD_ERR(WD_ERR_INVALID, "invalid subject token (node, server id or operation)");
    return fmt(buf, n, "warden.agent.%s.server.%s.%s", node, server, op);
}

wd_status wd_subj_agent_all(char *buf, size_t n, const char *node)
{
    if (!wd_subj_token_ok(node))
        return WD_ERR(WD_ERR_INVALID, "invalid node id");
    return fmt(buf, n, "warden.agent.%s.>", node);
}

wd_status wd_subj_server_event(char *buf, size_t n, const char *server, const char *kind)
{
    if (!wd_subj_token_ok(server))
        return WD_ERR(WD_ERR_INVALID, "invalid server id");
    if (strcmp(kind, "console") != 0 && strcmp(kind, "state") != 0 &&
        strcmp(kind, "stats") != 0 && strcmp(kind, "*") != 0)
        return WD_ERR(WD_ERR_INVALID, "invalid server event kind %s", kind);
    return fmt(buf, n, "warden.server.%s.%s", server, kind);
}

wd_status wd_subj_node_heartbeat(char *buf, size_t n, const char *node)
{
    if (!wd_subj_token_ok(node))
        return WD_ERR(WD_ERR_INVALID, "invalid node id");
    return fmt(buf, n, "warden.node.%s.heartbeat", node);
}

/* Copies the token starting at *p up to the next '.', advancing *p past it. */
static bool take_token(const char **p, char *out, size_t n)
{
    const char *dot = strchr(*p, '.');
    size_t len = dot ? (size_t)(dot - *p) : strlen(*p);
    if (len == 0 || len >= n)
        return false;
    memcpy(out, *p, len);
    out[len] = '\0';
    *p += len + (dot ? 1 : 0);
    return wd_subj_token_ok(out);
}

wd_status wd_subj_parse_agent(const char *subject, char *node, size_t node_n, char *server,
                              size_t server_n, const char **op)
{
    static const char prefix[] = "warden.agent.";
    if (strncmp(subject, prefix, sizeof prefix - 1) != 0)
        return WD_ERR(WD_ERR_INVALID, "not an agent subject: %s", subject);
    const char *p = subject + sizeof prefix - 1;
    char kind[16];
    if (!take_token(&p, node, node_n) || !take_token(&p, kind, sizeof kind) ||
        strcmp(kind, "server") != 0 || !take_token(&p, server, server_n) || !op_ok(p))
        return WD_ERR(WD_ERR_INVALID, "malformed agent subject: %s", subject);
    *op = p;
    return WD_OK;
}

wd_status wd_subj_inbox_prefix(char out[WD_SUBJ_INBOX_SIZE], const char *identity)
{
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    out[0] = '\0';
    if (!identity || !*identity ||
        EVP_Digest(identity, strlen(identity), md, &mdlen, EVP_sha256(), NULL) != 1)
        return WD_ERR(WD_ERR_INVALID, "inbox prefix: bad identity");
    memcpy(out, "_INBOX.", 7);
    for (int i = 0; i < 12; i++)
        snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
    return WD_OK;
}
