/* HS256 access tokens on libjwt, hardened against its traps.
 *
 * libjwt 1.10.2 picks the algorithm from the token's own header, skips the
 * signature check when given a NULL key, compares signatures with strcmp
 * and checks no claims. So verification here is layered:
 *   1. size limit, exactly three base64url parts;
 *   2. our own parse of the header (duplicate keys refused, so no parser
 *      disagreement about "alg"): alg must be "HS256", kid must be known;
 *   3. our own HMAC-SHA256 over "header.payload" compared in constant time;
 *   4. libjwt's jwt_decode with the key as a second opinion, and
 *      jwt_get_alg() must say HS256;
 *   5. claims from our own strict parse of the payload: sub, exp, nbf,
 *      iat, iss, aud. */
#include "jwt.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
/* libjwt's <jwt.h>, by full path: see CMakeLists.txt. */
#include WD_LIBJWT_HEADER
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "base64.h"
#include "jwtclaims.h"

typedef struct {
    char kid[WD_JWT_KID_MAX + 1];
    uint8_t secret[WD_JWT_SECRET_MAX];
    size_t len;
} jwt_key;

struct wd_jwt_keyring {
    pthread_rwlock_t lock;
    jwt_key keys[WD_JWT_MAX_KEYS];
    size_t n;
    int active; /* index into keys, -1 when empty */
};

/* Decoded header or payload: a 4096-byte token holds at most 3072 bytes. */

static bool kid_ok(const char *kid)
{
    size_t n = kid ? strnlen(kid, WD_JWT_KID_MAX + 1) : 0;
    if (n == 0 || n > WD_JWT_KID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = kid[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static int find_key(const wd_jwt_keyring *kr, const char *kid)
{
    for (size_t i = 0; i < kr->n; i++)
        if (strcmp(kr->keys[i].kid, kid) == 0)
            return (int)i;
    return -1;
}

wd_status wd_jwt_keyring_create(wd_jwt_keyring **out)
{
    if (!out)
        return WD_ERR(WD_ERR_INVALID, "jwt keyring: NULL out");
    wd_jwt_keyring *kr = calloc(1, sizeof *kr);
    if (!kr)
        return WD_ERR(WD_ERR_NOMEM, "jwt keyring: out of memory");
    if (pthread_rwlock_init(&kr->lock, NULL) != 0) {
        free(kr);
        return WD_ERR(WD_ERR_INTERNAL, "jwt keyring: rwlock init failed");
    }
    kr->active = -1;
    *out = kr;
    return WD_OK;
}

void wd_jwt_keyring_destroy(wd_jwt_keyring **p)
{
    if (!p || !*p)
        return;
    wd_jwt_keyring *kr = *p;
    pthread_rwlock_destroy(&kr->lock);
    OPENSSL_cleanse(kr, sizeof *kr);
    free(kr);
    *p = NULL;
}

wd_status wd_jwt_keyring_add(wd_jwt_keyring *kr, const char *kid, const void *secret, size_t len)
{
    wd_status st = WD_OK;
    if (!kr || !secret || !kid_ok(kid))
        return WD_ERR(WD_ERR_INVALID, "jwt key id must be 1..%d of [A-Za-z0-9._-]", WD_JWT_KID_MAX);
    if (len < WD_JWT_SECRET_MIN || len > WD_JWT_SECRET_MAX)
        return WD_ERR(WD_ERR_INVALID, "jwt key %s: secret must be %d..%d bytes, got %zu", kid,
                      WD_JWT_SECRET_MIN, WD_JWT_SECRET_MAX, len);
    pthread_rwlock_wrlock(&kr->lock);
    if (find_key(kr, kid) >= 0) {
        st = WD_ERR(WD_ERR_EXISTS, "jwt key %s already in the keyring", kid);
        goto out;
    }
    if (kr->n == WD_JWT_MAX_KEYS) {
        st = WD_ERR(WD_ERR_FULL, "jwt keyring full (%d keys)", WD_JWT_MAX_KEYS);
        goto out;
    }
    jwt_key *k = &kr->keys[kr->n];
    snprintf(k->kid, sizeof k->kid, "%s", kid);
    memcpy(k->secret, secret, len);
    k->len = len;
    if (kr->active < 0)
        kr->active = (int)kr->n;
    kr->n++;
out:
    pthread_rwlock_unlock(&kr->lock);
    return st;
}

wd_status wd_jwt_keyring_set_active(wd_jwt_keyring *kr, const char *kid)
{
    if (!kr || !kid)
        return WD_ERR(WD_ERR_INVALID, "jwt keyring: NULL argument");
    wd_status st = WD_OK;
    pthread_rwlock_wrlock(&kr->lock);
    int i = find_key(kr, kid);
    if (i < 0)
        st = WD_ERR(WD_ERR_NOT_FOUND, "jwt key %s not in the keyring", kid);
    else
        kr->active = i;
    pthread_rwlock_unlock(&kr->lock);
    return st;
}

wd_status wd_jwt_keyring_remove(wd_jwt_keyring *kr, const char *kid)
{
    if (!kr || !kid)
        return WD_ERR(WD_ERR_INVALID, "jwt keyring: NULL argument");
    wd_status st = WD_OK;
    pthread_rwlock_wrlock(&kr->lock);
    int i = find_key(kr, kid);
    if (i < 0) {
        st = WD_ERR(WD_ERR_NOT_FOUND, "jwt key %s not in the keyring", kid);
    } else if (i == kr->active) {
        st = WD_ERR(WD_ERR_STATE, "jwt key %s is active; activate another key first", kid);
    } else {
        memmove(&kr->keys[i], &kr->keys[i + 1], (kr->n - (size_t)i - 1) * sizeof kr->keys[0]);
        kr->n--;
        OPENSSL_cleanse(&kr->keys[kr->n], sizeof kr->keys[0]);
        if (kr->active > i)
            kr->active--;
    }
    pthread_rwlock_unlock(&kr->lock);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Issue                                                                    */
/* ------------------------------------------------------------------------ */

static bool field_ok(const char *s, size_t cap)
{
    return strnlen(s, cap) < cap;
}

static int add_str(jwt_t *j, const char *name, const char *v)
{
    return v[0] ? jwt_add_grant(j, name, v) : 0;
}

static int add_int(jwt_t *j, const char *name, int64_t v)
{
    return v ? jwt_add_grant_int(j, name, (long)v) : 0;
}

wd_status wd_jwt_issue(wd_jwt_keyring *kr, const wd_jwt_claims *c, char **token)
{
    wd_status st = WD_OK;
    jwt_t *j = NULL;
    bool locked = false;
    if (!kr || !c || !token)
        return WD_ERR(WD_ERR_INVALID, "jwt issue: NULL argument");
    *token = NULL;
    if (!field_ok(c->sub, sizeof c->sub) || !field_ok(c->sid, sizeof c->sid) ||
        !field_ok(c->role, sizeof c->role) || !field_ok(c->scope, sizeof c->scope) ||
        !field_ok(c->iss, sizeof c->iss) || !field_ok(c->aud, sizeof c->aud))
        return WD_ERR(WD_ERR_INVALID, "jwt issue: unterminated claim string");
    if (!c->sub[0] || c->exp <= 0)
        return WD_ERR(WD_ERR_INVALID, "jwt issue: sub and exp are required");
    if (jwt_new(&j) != 0) {
        st = WD_ERR(WD_ERR_NOMEM, "jwt issue: jwt_new failed");
        goto out;
    }
    pthread_rwlock_rdlock(&kr->lock);
    locked = true;
    if (kr->active < 0) {
        st = WD_ERR(WD_ERR_STATE, "jwt issue: keyring has no active key");
        goto out;
    }
    const jwt_key *k = &kr->keys[kr->active];
    if (jwt_add_header(j, "kid", k->kid) != 0 || add_str(j, "sub", c->sub) != 0 ||
        add_str(j, "sid", c->sid) != 0 || add_str(j, "role", c->role) != 0 ||
        add_str(j, "scope", c->scope) != 0 || add_str(j, "iss", c->iss) != 0 ||
        add_str(j, "aud", c->aud) != 0 || add_int(j, "iat", c->iat) != 0 ||
        add_int(j, "nbf", c->nbf) != 0 || add_int(j, "exp", c->exp) != 0 ||
        jwt_set_alg(j, JWT_ALG_HS256, k->secret, (int)k->len) != 0) {
        st = WD_ERR(WD_ERR_INTERNAL, "jwt issue: building the token failed");
        goto out;
    }
    *token = jwt_encode_str(j);
    if (!*token)
        st = WD_ERR(WD_ERR_NOMEM, "jwt issue: encoding failed");
out:
    if (locked)
        pthread_rwlock_unlock(&kr->lock);
    if (j)
        jwt_free(j);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Verify                                                                   */
/* ------------------------------------------------------------------------ */

#define DENY(...) WD_ERR(WD_ERR_DENIED, __VA_ARGS__)

wd_status wd_jwt_verify(wd_jwt_keyring *kr, const char *token, time_t now, const char *expected_iss,
                        const char *expected_aud, wd_jwt_claims *claims)
{
    wd_status st = WD_OK;
    json_t *hdr = NULL, *pl = NULL;
    jwt_t *j = NULL;
    bool locked = false;
    wd_jwt_claims c;
    memset(&c, 0, sizeof c);
    if (claims)
        memset(claims, 0, sizeof *claims);
    if (!kr || !claims)
        return WD_ERR(WD_ERR_INVALID, "jwt verify: NULL argument");
    if (!token)
        return DENY("invalid token: missing");

    size_t len = strnlen(token, WD_JWT_MAX_TOKEN + 1);
    if (len > WD_JWT_MAX_TOKEN)
        return DENY("invalid token: longer than %d bytes", WD_JWT_MAX_TOKEN);
    const char *d1, *d2;
    if (!wd_jwt_split(token, len, &d1, &d2))
        return DENY("invalid token: not three dot-separated parts");

    /* 2. Header, parsed by us, before any key or libjwt is involved. */
    hdr = wd_jwt_part(token, (size_t)(d1 - token));
    if (!hdr) {
        st = DENY("invalid token: malformed header");
        goto out;
    }
    json_t *kid = json_object_get(hdr, "kid");
    const char *problem = wd_jwt_header_problem(hdr, "HS256");
    if (problem) {
        st = DENY("%s", problem);
        goto out;
    }
    if (!json_is_string(kid) || !kid_ok(json_string_value(kid))) {
        st = DENY("invalid token: missing or malformed kid");
        goto out;
    }

    pthread_rwlock_rdlock(&kr->lock);
    locked = true;
    int ki = find_key(kr, json_string_value(kid));
    if (ki < 0) {
        st = DENY("invalid token: unknown key id");
        goto out;
    }
    const jwt_key *k = &kr->keys[ki];

    /* 3. Our own signature check, constant-time. */
    uint8_t mac[EVP_MAX_MD_SIZE], sig[64];
    unsigned int maclen = 0;
    size_t siglen = 0;
    if (!HMAC(EVP_sha256(), k->secret, (int)k->len, (const unsigned char *)token,
              (size_t)(d2 - token), mac, &maclen) ||
        maclen != 32) {
        st = WD_ERR(WD_ERR_INTERNAL, "jwt verify: HMAC failed");
        goto out;
    }
    if (wd_base64_url_decode(d2 + 1, len - (size_t)(d2 + 1 - token), sig, sizeof sig, &siglen) !=
            WD_OK ||
        siglen != 32 || CRYPTO_memcmp(sig, mac, 32) != 0) {
        st = DENY("invalid token: bad signature");
        goto out;
    }

    /* 4. libjwt as a second opinion, always with the key. */
    if (jwt_decode(&j, token, k->secret, (int)k->len) != 0 || !j ||
        jwt_get_alg(j) != JWT_ALG_HS256) {
        st = DENY("invalid token: rejected by libjwt");
        goto out;
    }
    pthread_rwlock_unlock(&kr->lock);
    locked = false;

    /* 5. Claims. */
    pl = wd_jwt_part(d1 + 1, (size_t)(d2 - d1 - 1));
    if (!pl) {
        st = DENY("invalid token: malformed payload");
        goto out;
    }
    json_t *aud = json_object_get(pl, "aud");
    if (!wd_claim_str(pl, "sub", c.sub, sizeof c.sub, false) ||
        !wd_claim_str(pl, "sid", c.sid, sizeof c.sid, false) ||
        !wd_claim_str(pl, "role", c.role, sizeof c.role, false) ||
        !wd_claim_str(pl, "scope", c.scope, sizeof c.scope, false) ||
        !wd_claim_str(pl, "iss", c.iss, sizeof c.iss, false) || !wd_claim_time(pl, "iat", &c.iat) ||
        !wd_claim_time(pl, "nbf", &c.nbf) || !wd_claim_time(pl, "exp", &c.exp) ||
        (json_is_string(aud) && !wd_claim_str(pl, "aud", c.aud, sizeof c.aud, false))) {
        st = DENY("invalid token: malformed claim");
        goto out;
    }
    if (!c.sub[0] || !c.exp) {
        st = DENY("invalid token: sub and exp are required");
        goto out;
    }
    if (c.exp <= (int64_t)now) {
        st = DENY("token expired");
        goto out;
    }
    if (c.nbf && c.nbf > (int64_t)now + WD_JWT_NBF_SKEW) {
        st = DENY("invalid token: not valid yet (nbf in the future)");
        goto out;
    }
    if (c.iat && c.iat > (int64_t)now + WD_JWT_NBF_SKEW) {
        st = DENY("invalid token: issued in the future");
        goto out;
    }
    if (expected_iss && strcmp(c.iss, expected_iss) != 0) {
        st = DENY("invalid token: wrong issuer");
        goto out;
    }
    if (expected_aud && !wd_claim_aud_matches(aud, expected_aud)) {
        st = DENY("invalid token: wrong audience");
        goto out;
    }
    if (expected_aud && !c.aud[0])
        snprintf(c.aud, sizeof c.aud, "%s", expected_aud);
    *claims = c;
out:
    if (locked)
        pthread_rwlock_unlock(&kr->lock);
    if (j)
        jwt_free(j);
    json_decref(hdr);
    json_decref(pl);
    OPENSSL_cleanse(&c, sizeof c);
    return st;
}
