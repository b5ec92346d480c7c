/* Opaque tokens: generation from OpenSSL's CSPRNG, SHA-256 for storage and
 * a constant-time comparison. A 256-bit random token needs no slow hash:
 * guessing it is hopeless, so a fast digest is enough to make a leaked
 * database useless for logging in. */
#include "token.h"

#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "base64.h"
#include "util.h"

static bool prefix_ok(const char *p)
{
    size_t n = strlen(p);
    if (n > WD_TOKEN_PREFIX_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

wd_status wd_token_new(const char *prefix, char *out, size_t outlen)
{
    uint8_t raw[WD_TOKEN_RANDOM_BYTES];
    wd_status st = WD_OK;
    if (!prefix)
        prefix = "";
    if (!out || !prefix_ok(prefix))
        return WD_ERR(WD_ERR_INVALID, "token: prefix must be at most %d of [A-Za-z0-9_-]",
                      WD_TOKEN_PREFIX_MAX);
    size_t plen = strlen(prefix);
    if (outlen < plen + WD_TOKEN_BODY_LEN + 1)
        return WD_ERR(WD_ERR_INVALID, "token: buffer of %zu bytes too small (need %zu)", outlen,
                      plen + WD_TOKEN_BODY_LEN + 1);
    if (RAND_bytes(raw, sizeof raw) != 1) {
        st = WD_ERR(WD_ERR_INTERNAL, "token: RAND_bytes failed");
        goto out;
    }
    memcpy(out, prefix, plen);
    st = wd_base64_url_encode(raw, sizeof raw, out + plen, outlen - plen);
out:
    OPENSSL_cleanse(raw, sizeof raw);
    return st;
}

wd_status wd_token_hash(const char *token, char hex[WD_TOKEN_HASH_HEX_LEN + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!token || !hex)
        return WD_ERR(WD_ERR_INVALID, "token hash: NULL argument");
    if (EVP_Digest(token, strlen(token), md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
        return WD_ERR(WD_ERR_INTERNAL, "token hash: SHA-256 failed");
    wd_hex(md, mdlen, hex);
    return WD_OK;
}

bool wd_token_equal_ct(const char *a, const char *b)
{
    if (!a || !b)
        return false;
    size_t la = strlen(a), lb = strlen(b);
    /* Walk all of a; read b only within bounds, without branching on data. */
    volatile unsigned char diff = (unsigned char)(la != lb);
    for (size_t i = 0; i < la; i++) {
        unsigned char cb = i < lb ? (unsigned char)b[i] : 0;
        diff |= (unsigned char)a[i] ^ cb;
    }
    return diff == 0;
}
