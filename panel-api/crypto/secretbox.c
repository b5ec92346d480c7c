/* AES-256-GCM through OpenSSL's EVP interface, one cipher context per call
 * so nothing is shared between threads. The nonce is 96 random bits: with
 * at most a few million values sealed per key the chance of a repeat is
 * negligible, and rotation resets the count.
 *
 * The GCM associated data is "wdsb1.<kid>" NUL <caller aad>, so the
 * version and key id in the text are authenticated as well. */
#include "secretbox.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "base64.h"

#define PREFIX "wdsb1."
#define NONCE_LEN 12
#define TAG_LEN 16

typedef struct {
    char kid[WD_SECRETBOX_KID_MAX + 1];
    uint8_t key[WD_SECRETBOX_KEY_BYTES];
} sb_key;

struct wd_secretbox {
    size_t n;
    sb_key keys[WD_SECRETBOX_MAX_KEYS]; /* keys[0] is active */
};

static bool kid_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

static bool kid_ok(const char *kid, size_t n)
{
    if (n == 0 || n > WD_SECRETBOX_KID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!kid_char(kid[i]))
            return false;
    return true;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

static const sb_key *find_key(const wd_secretbox *box, const char *kid, size_t n)
{
    for (size_t i = 0; i < box->n; i++)
        if (strlen(box->keys[i].kid) == n && memcmp(box->keys[i].kid, kid, n) == 0)
            return &box->keys[i];
    return NULL;
}

wd_status wd_secretbox_load(const char *spec, wd_secretbox **out)
{
    wd_status st = WD_OK;
    wd_secretbox *box = NULL;
    if (!spec || !out)
        return WD_ERR(WD_ERR_INVALID, "secretbox: NULL argument");
    *out = NULL;
    box = calloc(1, sizeof *box);
    if (!box)
        return WD_ERR(WD_ERR_NOMEM, "secretbox: out of memory");
    int lineno = 0;
    for (const char *line = spec; *line;) {
        const char *eol = strchr(line, '\n');
        const char *end = eol ? eol : line + strlen(line);
        const char *next = eol ? eol + 1 : end;
        lineno++;
        const char *hash = memchr(line, '#', (size_t)(end - line));
        if (hash)
            end = hash;
        while (line < end && is_space(*line))
            line++;
        while (end > line && is_space(end[-1]))
            end--;
        if (line == end) {
            line = next;
            continue;
        }
        const char *colon = memchr(line, ':', (size_t)(end - line));
        if (!colon || !kid_ok(line, (size_t)(colon - line))) {
            st =
                WD_ERR(WD_ERR_INVALID,
                       "secretbox key line %d: expected KID:BASE64 with KID of 1..%d [A-Za-z0-9_-]",
                       lineno, WD_SECRETBOX_KID_MAX);
            goto out;
        }
        size_t kidlen = (size_t)(colon - line);
        if (find_key(box, line, kidlen)) {
            st = WD_ERR(WD_ERR_INVALID, "secretbox key line %d: duplicate key id %.*s", lineno,
                        (int)kidlen, line);
            goto out;
        }
        if (box->n == WD_SECRETBOX_MAX_KEYS) {
            st = WD_ERR(WD_ERR_INVALID, "secretbox: more than %d keys", WD_SECRETBOX_MAX_KEYS);
            goto out;
        }
        sb_key *k = &box->keys[box->n];
        size_t klen = 0;
        if (wd_base64_std_decode(colon + 1, (size_t)(end - colon - 1), k->key, sizeof k->key,
                                 &klen) != WD_OK ||
            klen != WD_SECRETBOX_KEY_BYTES) {
            st = WD_ERR(WD_ERR_INVALID, "secretbox key line %d: key must be base64 of %d bytes",
                        lineno, WD_SECRETBOX_KEY_BYTES);
            goto out;
        }
        memcpy(k->kid, line, kidlen);
        k->kid[kidlen] = '\0';
        box->n++;
        line = next;
    }
    if (box->n == 0) {
        st = WD_ERR(WD_ERR_INVALID, "secretbox: no key in the key spec");
        goto out;
    }
    *out = box;
    box = NULL;
out:
    wd_secretbox_destroy(&box);
    return st;
}

void wd_secretbox_destroy(wd_secretbox **p)
{
    if (!p || !*p)
        return;
    OPENSSL_cleanse(*p, sizeof **p);
    free(*p);
    *p = NULL;
}

const char *wd_secretbox_active_kid(const wd_secretbox *box)
{
    return box ? box->keys[0].kid : NULL;
}

/* Feeds the associated data into ctx (encrypt or decrypt). */
static bool feed_aad(EVP_CIPHER_CTX *ctx, bool enc, const char *kid, const char *aad)
{
    char head[sizeof PREFIX + WD_SECRETBOX_KID_MAX + 1];
    int n = snprintf(head, sizeof head, PREFIX "%s", kid);
    int outl = 0;
    int (*update)(EVP_CIPHER_CTX *, unsigned char *, int *, const unsigned char *, int) =
        enc ? EVP_EncryptUpdate : EVP_DecryptUpdate;
    if (n < 0 || (size_t)n >= sizeof head)
        return false;
    /* Include the NUL so kid and aad cannot run into each other. */
    if (update(ctx, NULL, &outl, (const unsigned char *)head, n + 1) != 1)
        return false;
    size_t alen = aad ? strlen(aad) : 0;
    if (alen > INT32_MAX)
        return false;
    return alen == 0 || update(ctx, NULL, &outl, (const unsigned char *)aad, (int)alen) == 1;
}

wd_status wd_secretbox_seal(const wd_secretbox *box, const void *plain, size_t len, const char *aad,
                            char **out)
{
    wd_status st = WD_OK;
    EVP_CIPHER_CTX *ctx = NULL;
    uint8_t *raw = NULL;
    char *text = NULL;
    if (!box || !out || (!plain && len))
        return WD_ERR(WD_ERR_INVALID, "secretbox seal: NULL argument");
    *out = NULL;
    if (len > WD_SECRETBOX_MAX_PLAIN)
        return WD_ERR(WD_ERR_INVALID, "secretbox seal: %zu bytes is over the %u byte limit", len,
                      WD_SECRETBOX_MAX_PLAIN);
    const sb_key *k = &box->keys[0];
    size_t rawlen = NONCE_LEN + len + TAG_LEN;
    raw = malloc(rawlen);
    if (!raw) {
        st = WD_ERR(WD_ERR_NOMEM, "secretbox seal: out of memory");
        goto out;
    }
    int outl = 0, finl = 0;
    if (RAND_bytes(raw, NONCE_LEN) != 1) {
        st = WD_ERR(WD_ERR_INTERNAL, "secretbox seal: RAND_bytes failed");
        goto out;
    }
    ctx = EVP_CIPHER_CTX_new();
    if (!ctx || EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) != 1 ||
        EVP_EncryptInit_ex(ctx, NULL, NULL, k->key, raw) != 1 ||
        !feed_aad(ctx, true, k->kid, aad) ||
        (len && EVP_EncryptUpdate(ctx, raw + NONCE_LEN, &outl, plain, (int)len) != 1) ||
        EVP_EncryptFinal_ex(ctx, raw + NONCE_LEN + outl, &finl) != 1 ||
        (size_t)(outl + finl) != len ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, raw + NONCE_LEN + len) != 1) {
        st = WD_ERR(WD_ERR_INTERNAL, "secretbox seal: AES-256-GCM failed");
        goto out;
    }
    size_t textlen = strlen(PREFIX) + strlen(k->kid) + 1 + WD_BASE64_URL_LEN(rawlen) + 1;
    text = malloc(textlen);
    if (!text) {
        st = WD_ERR(WD_ERR_NOMEM, "secretbox seal: out of memory");
        goto out;
    }
    int hl = snprintf(text, textlen, PREFIX "%s.", k->kid);
    if (hl < 0 ||
        (st = wd_base64_url_encode(raw, rawlen, text + hl, textlen - (size_t)hl)) != WD_OK) {
        st = WD_ERR(WD_ERR_INTERNAL, "secretbox seal: encoding failed");
        goto out;
    }
    *out = text;
    text = NULL;
out:
    EVP_CIPHER_CTX_free(ctx);
    if (raw) {
        OPENSSL_cleanse(raw, rawlen);
        free(raw);
    }
    free(text);
    return st;
}

wd_status wd_secretbox_open(const wd_secretbox *box, const char *sealed, const char *aad,
                            void **plain, size_t *len)
{
    wd_status st = WD_OK;
    EVP_CIPHER_CTX *ctx = NULL;
    uint8_t *raw = NULL, *pt = NULL;
    size_t rawlen = 0, rawcap = 0;
    if (!box || !plain || !len)
        return WD_ERR(WD_ERR_INVALID, "secretbox open: NULL argument");
    *plain = NULL;
    *len = 0;
    if (!sealed || strncmp(sealed, PREFIX, strlen(PREFIX)) != 0)
        return WD_ERR(WD_ERR_DENIED, "secretbox open: not a sealed value");
    const char *kid = sealed + strlen(PREFIX);
    const char *dot = strchr(kid, '.');
    if (!dot || !kid_ok(kid, (size_t)(dot - kid)))
        return WD_ERR(WD_ERR_DENIED, "secretbox open: malformed sealed value");
    const sb_key *k = find_key(box, kid, (size_t)(dot - kid));
    if (!k)
        return WD_ERR(WD_ERR_DENIED, "secretbox open: unknown key id %.*s", (int)(dot - kid), kid);
    const char *b64 = dot + 1;
    size_t b64len = strlen(b64);
    if (b64len > WD_BASE64_URL_LEN(NONCE_LEN + WD_SECRETBOX_MAX_PLAIN + TAG_LEN))
        return WD_ERR(WD_ERR_DENIED, "secretbox open: sealed value too long");
    rawcap = b64len / 4 * 3 + 3;
    raw = malloc(rawcap);
    if (!raw) {
        st = WD_ERR(WD_ERR_NOMEM, "secretbox open: out of memory");
        goto out;
    }
    if (wd_base64_url_decode(b64, b64len, raw, rawcap, &rawlen) != WD_OK ||
        rawlen < NONCE_LEN + TAG_LEN) {
        st = WD_ERR(WD_ERR_DENIED, "secretbox open: malformed sealed value");
        goto out;
    }
    size_t ctlen = rawlen - NONCE_LEN - TAG_LEN;
    pt = malloc(ctlen + 1);
    if (!pt) {
        st = WD_ERR(WD_ERR_NOMEM, "secretbox open: out of memory");
        goto out;
    }
    int outl = 0, finl = 0;
    ctx = EVP_CIPHER_CTX_new();
    if (!ctx || EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) != 1 ||
        EVP_DecryptInit_ex(ctx, NULL, NULL, k->key, raw) != 1 ||
        !feed_aad(ctx, false, k->kid, aad) ||
        (ctlen && EVP_DecryptUpdate(ctx, pt, &outl, raw + NONCE_LEN, (int)ctlen) != 1) ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, raw + NONCE_LEN + ctlen) != 1) {
        st = WD_ERR(WD_ERR_INTERNAL, "secretbox open: AES-256-GCM setup failed");
        goto out;
    }
    if (EVP_DecryptFinal_ex(ctx, pt + outl, &finl) != 1 || (size_t)(outl + finl) != ctlen) {
        st = WD_ERR(WD_ERR_DENIED,
                    "secretbox open: authentication failed (tampered, or a different aad)");
        goto out;
    }
    pt[ctlen] = '\0';
    *plain = pt;
    *len = ctlen;
    pt = NULL;
out:
    EVP_CIPHER_CTX_free(ctx);
    if (pt) {
        OPENSSL_cleanse(pt, ctlen + 1);
        free(pt);
    }
    free(raw);
    return st;
}

wd_status wd_secretbox_generate_key_line(const char *kid, char *out, size_t outlen)
{
    uint8_t key[WD_SECRETBOX_KEY_BYTES];
    char b64[WD_BASE64_STD_LEN(WD_SECRETBOX_KEY_BYTES) + 1];
    wd_status st = WD_OK;
    if (!kid || !kid_ok(kid, strlen(kid)))
        return WD_ERR(WD_ERR_INVALID, "secretbox keygen: key id must be 1..%d of [A-Za-z0-9_-]",
                      WD_SECRETBOX_KID_MAX);
    if (!out || outlen < strlen(kid) + 1 + sizeof b64)
        return WD_ERR(WD_ERR_INVALID, "secretbox keygen: buffer too small");
    if (RAND_bytes(key, sizeof key) != 1) {
        st = WD_ERR(WD_ERR_INTERNAL, "secretbox keygen: RAND_bytes failed");
        goto out;
    }
    if ((st = wd_base64_std_encode(key, sizeof key, b64, sizeof b64)) != WD_OK)
        goto out;
    snprintf(out, outlen, "%s:%s", kid, b64);
out:
    OPENSSL_cleanse(key, sizeof key);
    OPENSSL_cleanse(b64, sizeof b64);
    return st;
}
