/* Strict base64 encoders and decoders shared by the crypto modules. The
 * standard library and OpenSSL's EVP_EncodeBlock are lenient (whitespace,
 * optional padding, ignored trailing bits); a token compared byte for byte
 * must not have two spellings, so we decode strictly by hand. */
#include "base64.h"

#include <stdbool.h>
#include <string.h>

static const char URL_ALPHA[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
static const char STD_ALPHA[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static wd_status encode(const char *alpha, bool pad, const void *in, size_t len, char *out,
                        size_t outlen)
{
    const uint8_t *p = in;
    size_t need = pad ? WD_BASE64_STD_LEN(len) : WD_BASE64_URL_LEN(len);
    if (!out || outlen < need + 1)
        return WD_ERR(WD_ERR_INVALID, "base64: output buffer too small (%zu < %zu)", outlen,
                      need + 1);
    size_t o = 0, i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = alpha[v >> 18 & 63];
        out[o++] = alpha[v >> 12 & 63];
        out[o++] = alpha[v >> 6 & 63];
        out[o++] = alpha[v & 63];
    }
    size_t rest = len - i;
    if (rest) {
        uint32_t v = (uint32_t)p[i] << 16 | (rest == 2 ? (uint32_t)p[i + 1] << 8 : 0);
        out[o++] = alpha[v >> 18 & 63];
        out[o++] = alpha[v >> 12 & 63];
        if (rest == 2)
            out[o++] = alpha[v >> 6 & 63];
        else if (pad)
            out[o++] = '=';
        if (pad)
            out[o++] = '=';
    }
    out[o] = '\0';
    return WD_OK;
}

static int value_of(const char *alpha, char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == alpha[62])
        return 62;
    if (c == alpha[63])
        return 63;
    return -1;
}

static wd_status decode(const char *alpha, bool pad, const char *in, size_t inlen, uint8_t *out,
                        size_t outcap, size_t *outlen)
{
    if (!in || !outlen)
        return WD_ERR(WD_ERR_INVALID, "base64: NULL argument");
    if (pad) {
        if (inlen % 4 != 0)
            return WD_ERR(WD_ERR_INVALID, "base64: length %zu is not a multiple of 4", inlen);
        size_t npad = 0;
        while (npad < 2 && npad < inlen && in[inlen - 1 - npad] == '=')
            npad++;
        inlen -= npad;
    }
    if (inlen % 4 == 1)
        return WD_ERR(WD_ERR_INVALID, "base64: impossible length");
    size_t need = inlen / 4 * 3 + (inlen % 4 ? inlen % 4 - 1 : 0);
    if (need > outcap)
        return WD_ERR(WD_ERR_INVALID, "base64: decoded data too long (%zu > %zu bytes)", need,
                      outcap);
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < inlen; i++) {
        int v = value_of(alpha, in[i]);
        if (v < 0)
            return WD_ERR(WD_ERR_INVALID, "base64: invalid character at offset %zu", i);
        acc = (acc << 6 | (uint32_t)v) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    /* Leftover bits must be zero, or two texts would decode to one value. */
    if (bits && (acc & ((1u << bits) - 1)))
        return WD_ERR(WD_ERR_INVALID, "base64: non-canonical trailing bits");
    *outlen = o;
    return WD_OK;
}

wd_status wd_base64_url_encode(const void *in, size_t len, char *out, size_t outlen)
{
    return encode(URL_ALPHA, false, in, len, out, outlen);
}

wd_status wd_base64_std_encode(const void *in, size_t len, char *out, size_t outlen)
{
    return encode(STD_ALPHA, true, in, len, out, outlen);
}

wd_status wd_base64_url_decode(const char *in, size_t inlen, uint8_t *out, size_t outcap,
                               size_t *outlen)
{
    return decode(URL_ALPHA, false, in, inlen, out, outcap, outlen);
}

wd_status wd_base64_std_decode(const char *in, size_t inlen, uint8_t *out, size_t outcap,
                               size_t *outlen)
{
    return decode(STD_ALPHA, true, in, inlen, out, outcap, outlen);
}
