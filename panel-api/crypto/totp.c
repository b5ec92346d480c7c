/* TOTP on liboath. liboath wants oath_init() once per process before use,
 * which pthread_once gives us without a global flag. We generate the code
 * for each step of the window ourselves (oath_totp_generate) rather than
 * call oath_totp_validate, because we need to skip steps already used and
 * compare in constant time. Base32 is done here too: liboath's decoder
 * allocates and accepts padding we never emit. */
#include "totp.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <liboath/oath.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

static const char B32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
#define SECRET_MAX 64 /* longest secret (bytes) we accept from storage */

static pthread_once_t oath_once = PTHREAD_ONCE_INIT;
static int oath_init_rc = OATH_OK;

static void do_oath_init(void)
{
    oath_init_rc = oath_init();
}

static bool oath_ready(void)
{
    pthread_once(&oath_once, do_oath_init);
    return oath_init_rc == OATH_OK;
}

static void b32_encode(const uint8_t *in, size_t n, char *out)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8 | in[i]) & 0xffff;
        bits += 8;
        while (bits >= 5) {
            bits -= 5;
            out[o++] = B32[(acc >> bits) & 31];
        }
    }
    if (bits)
        out[o++] = B32[(acc << (5 - bits)) & 31];
    out[o] = '\0';
}

/* Decodes base32 (either case, spaces ignored, no padding). */
static bool b32_decode(const char *in, uint8_t *out, size_t cap, size_t *outlen)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (const char *p = in; *p; p++) {
        char c = *p;
        int v;
        if (c == ' ')
            continue;
        if (c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        if (c >= 'A' && c <= 'Z')
            v = c - 'A';
        else if (c >= '2' && c <= '7')
            v = c - '2' + 26;
        else
            return false;
        acc = (acc << 5 | (uint32_t)v) & 0xffff;
        bits += 5;
        if (bits >= 8) {
            if (o == cap)
                return false;
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    *outlen = o;
    return o > 0;
}

wd_status wd_totp_secret_new(char *b32, size_t len)
{
    uint8_t raw[WD_TOTP_SECRET_BYTES];
    if (!b32 || len < WD_TOTP_SECRET_B32_LEN + 1)
        return WD_ERR(WD_ERR_INVALID, "totp secret: buffer too small (need %d)",
                      WD_TOTP_SECRET_B32_LEN + 1);
    if (RAND_bytes(raw, sizeof raw) != 1)
        return WD_ERR(WD_ERR_INTERNAL, "totp secret: RAND_bytes failed");
    b32_encode(raw, sizeof raw, b32);
    OPENSSL_cleanse(raw, sizeof raw);
    return WD_OK;
}

/* Appends s percent-encoded (RFC 3986 unreserved characters kept). */
static bool put_enc(char *out, size_t len, size_t *pos, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '.' || c == '_' || c == '~';
        size_t need = keep ? 1 : 3;
        if (*pos + need >= len)
            return false;
        if (keep) {
            out[(*pos)++] = (char)c;
        } else {
            out[(*pos)++] = '%';
            out[(*pos)++] = hex[c >> 4];
            out[(*pos)++] = hex[c & 15];
        }
    }
    out[*pos] = '\0';
    return true;
}

static bool put_raw(char *out, size_t len, size_t *pos, const char *s)
{
    size_t n = strlen(s);
    if (*pos + n >= len)
        return false;
    memcpy(out + *pos, s, n + 1);
    *pos += n;
    return true;
}

wd_status wd_totp_uri(const char *issuer, const char *account, const char *b32, char *out,
                      size_t len)
{
    uint8_t raw[SECRET_MAX];
    size_t rawlen = 0, pos = 0;
    if (!issuer || !*issuer || !account || !*account || !b32 || !out || len == 0)
        return WD_ERR(WD_ERR_INVALID, "totp uri: issuer, account and secret are required");
    bool secret_ok = b32_decode(b32, raw, sizeof raw, &rawlen);
    OPENSSL_cleanse(raw, sizeof raw);
    if (!secret_ok)
        return WD_ERR(WD_ERR_INVALID, "totp uri: secret is not base32");
    out[0] = '\0';
    if (!put_raw(out, len, &pos, "otpauth://totp/") || !put_enc(out, len, &pos, issuer) ||
        !put_raw(out, len, &pos, ":") || !put_enc(out, len, &pos, account) ||
        !put_raw(out, len, &pos, "?secret=") || !put_enc(out, len, &pos, b32) ||
        !put_raw(out, len, &pos, "&issuer=") || !put_enc(out, len, &pos, issuer) ||
        !put_raw(out, len, &pos, "&algorithm=SHA1&digits=6&period=30"))
        return WD_ERR(WD_ERR_INVALID, "totp uri: buffer of %zu bytes too small", len);
    return WD_OK;
}

wd_status wd_totp_verify(const char *b32, const char *code, time_t now, int window,
                         int64_t last_used_step, int64_t *matched_step)
{
    uint8_t secret[SECRET_MAX];
    size_t slen = 0;
    wd_status st = WD_OK;
    if (window < 0 || window > WD_TOTP_WINDOW_MAX)
        return WD_ERR(WD_ERR_INVALID, "totp: window %d outside 0..%d", window, WD_TOTP_WINDOW_MAX);
    if (!code || strlen(code) != WD_TOTP_DIGITS)
        return WD_ERR(WD_ERR_DENIED, "totp: code must be exactly %d digits", WD_TOTP_DIGITS);
    for (int i = 0; i < WD_TOTP_DIGITS; i++)
        if (code[i] < '0' || code[i] > '9')
            return WD_ERR(WD_ERR_DENIED, "totp: code must be exactly %d digits", WD_TOTP_DIGITS);
    if (!b32 || !b32_decode(b32, secret, sizeof secret, &slen)) {
        st = WD_ERR(WD_ERR_INVALID, "totp: stored secret is not base32");
        goto out;
    }
    if (!oath_ready()) {
        st = WD_ERR(WD_ERR_INTERNAL, "totp: oath_init failed");
        goto out;
    }
    if (now < 0) {
        st = WD_ERR(WD_ERR_INVALID, "totp: negative time");
        goto out;
    }
    int64_t t = (int64_t)now / WD_TOTP_STEP;
    int64_t found = -1;
    bool replay = false;
    /* Every step of the window is computed and compared, match or not. */
    for (int64_t s = t - window; s <= t + window; s++) {
        char otp[WD_TOTP_DIGITS + 1];
        if (s < 0)
            continue;
        if (oath_totp_generate((const char *)secret, slen, (time_t)(s * WD_TOTP_STEP), WD_TOTP_STEP,
                               0, WD_TOTP_DIGITS, otp) != OATH_OK) {
            st = WD_ERR(WD_ERR_INTERNAL, "totp: oath_totp_generate failed");
            goto out;
        }
        bool eq = CRYPTO_memcmp(otp, code, WD_TOTP_DIGITS) == 0;
        if (eq && s <= last_used_step)
            replay = true;
        else if (eq && found < 0)
            found = s;
    }
    if (found < 0) {
        st = replay ? WD_ERR(WD_ERR_DENIED, "totp: code already used")
                    : WD_ERR(WD_ERR_DENIED, "totp: wrong code");
        goto out;
    }
    if (matched_step)
        *matched_step = found;
out:
    OPENSSL_cleanse(secret, sizeof secret);
    return st;
}
