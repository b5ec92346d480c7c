/* ES256 gateway tokens on libjwt + OpenSSL, hardened against libjwt's traps
 * (see wstoken.h). Verification is layered:
 *   1. size limit, exactly three base64url parts;
 *   2. our own strict parse of the header (duplicate keys refused, so no
 *      parser disagreement about "alg"): alg must be "ES256", no "crit",
 *      kid must name one of our keys;
 *   3. our own ECDSA P-256/SHA-256 check of the 64-byte r||s signature;
 *   4. libjwt's jwt_decode with the public key as a second opinion, and
 *      jwt_get_alg() must say ES256;
 *   5. claims from our own strict parse of the payload. */
#include "wstoken.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#include "base64.h"
#include "jwtclaims.h"
#include "util.h"

#define KID_LEN 16
#define PEM_MAX 16384

typedef struct {
    char kid[KID_LEN + 1];
    EVP_PKEY *pub;
    char *pub_pem;
} pub_key;

struct wd_wstoken_keys {
    char *priv_pem; /* NULL: verify only */
    char priv_kid[KID_LEN + 1];
    pub_key keys[WD_WSTOKEN_MAX_KEYS];
    size_t n;
};

/* ------------------------------------------------------------------------ */
/* Keys                                                                     */
/* ------------------------------------------------------------------------ */

static bool is_p256(EVP_PKEY *k)
{
    char group[64];
    size_t len = 0;
    if (!EVP_PKEY_is_a(k, "EC"))
        return false;
    if (!EVP_PKEY_get_group_name(k, group, sizeof group, &len))
        return false;
    return strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0;
}

/* kid: first 16 hex digits of SHA-256(DER SubjectPublicKeyInfo). */
static bool key_id(EVP_PKEY *k, char kid[KID_LEN + 1])
{
    unsigned char *der = NULL;
    int len = i2d_PUBKEY(k, &der);
    if (len <= 0)
        return false;
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256(der, (size_t)len, md);
    OPENSSL_free(der);
    for (int i = 0; i < KID_LEN / 2; i++)
        snprintf(kid + 2 * i, 3, "%02x", md[i]);
    return true;
}

static char *pem_of_pub(EVP_PKEY *k)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *out = NULL;
    if (b && PEM_write_bio_PUBKEY(b, k)) {
        char *data = NULL;
        long n = BIO_get_mem_data(b, &data);
        if (n > 0 && (out = malloc((size_t)n + 1))) {
            memcpy(out, data, (size_t)n);
            out[n] = '\0';
        }
    }
    BIO_free(b);
    return out;
}

static wd_status add_pub(wd_wstoken_keys *ks, EVP_PKEY *k)
{
    if (!is_p256(k))
        return WD_ERR(WD_ERR_INVALID, "gateway token key: not an EC P-256 key");
    if (ks->n == WD_WSTOKEN_MAX_KEYS)
        return WD_ERR(WD_ERR_FULL, "gateway token keys: at most %d", WD_WSTOKEN_MAX_KEYS);
    pub_key *p = &ks->keys[ks->n];
    if (!key_id(k, p->kid) || !(p->pub_pem = pem_of_pub(k)))
        return WD_ERR(WD_ERR_INTERNAL, "gateway token key: cannot encode public key");
    for (size_t i = 0; i < ks->n; i++)
        if (strcmp(ks->keys[i].kid, p->kid) == 0) { /* the same key twice */
            free(p->pub_pem);
            p->pub_pem = NULL;
            EVP_PKEY_free(k);
            return WD_OK;
        }
    p->pub = k;
    ks->n++;
    return WD_OK;
}

wd_status wd_wstoken_keys_from_pem(wd_wstoken_keys **out, const char *priv_pem,
                                   const char *const *pub_pems, size_t n)
{
    wd_status st = WD_OK;
    if (!out)
        return WD_ERR(WD_ERR_INVALID, "gateway token keys: NULL out");
    *out = NULL;
    wd_wstoken_keys *ks = calloc(1, sizeof *ks);
    if (!ks)
        return WD_ERR(WD_ERR_NOMEM, "gateway token keys: out of memory");
    if (priv_pem) {
        BIO *b = BIO_new_mem_buf(priv_pem, -1);
        EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
        BIO_free(b);
        if (!k) {
            st = WD_ERR(WD_ERR_INVALID, "gateway token private key: not a PEM private key");
            goto out;
        }
        if (!is_p256(k) || !key_id(k, ks->priv_kid) || !(ks->priv_pem = strdup(priv_pem))) {
            EVP_PKEY_free(k);
            st = WD_ERR(WD_ERR_INVALID, "gateway token private key: must be EC P-256");
            goto out;
        }
        /* The private key verifies its own tokens: add its public half. */
        if ((st = add_pub(ks, k)) != WD_OK) {
            EVP_PKEY_free(k);
            goto out;
        }
    }
    for (size_t i = 0; i < n; i++) {
        BIO *b = BIO_new_mem_buf(pub_pems[i], -1);
        EVP_PKEY *k = b ? PEM_read_bio_PUBKEY(b, NULL, NULL, NULL) : NULL;
        BIO_free(b);
        if (!k) {
            st =
                WD_ERR(WD_ERR_INVALID, "gateway token public key %zu: not a PEM public key", i + 1);
            goto out;
        }
        if ((st = add_pub(ks, k)) != WD_OK) {
            EVP_PKEY_free(k);
            goto out;
        }
    }
    if (ks->n == 0)
        st = WD_ERR(WD_ERR_INVALID, "gateway token keys: no key given");
out:
    if (st != WD_OK)
        wd_wstoken_keys_destroy(&ks);
    *out = ks;
    return st;
}

wd_status wd_wstoken_keys_load(wd_wstoken_keys **out, const char *priv_path, const char *pub_paths)
{
    wd_status st = WD_OK;
    char *priv = NULL;
    char *pubs[WD_WSTOKEN_MAX_KEYS] = {0};
    size_t n = 0, len = 0;
    char *list = pub_paths ? strdup(pub_paths) : NULL;
    if (pub_paths && !list)
        return WD_ERR(WD_ERR_NOMEM, "out of memory");
    if (priv_path && priv_path[0] && (st = wd_read_file(priv_path, PEM_MAX, &priv, &len)) != WD_OK)
        goto out;
    for (char *p = list, *next = NULL; p; p = next) {
        char *comma = strchr(p, ',');
        next = comma ? comma + 1 : NULL;
        if (comma)
            *comma = '\0';
        if (!*p)
            continue;
        if (n == WD_WSTOKEN_MAX_KEYS) {
            st = WD_ERR(WD_ERR_INVALID, "gateway token keys: at most %d", WD_WSTOKEN_MAX_KEYS);
            goto out;
        }
        if ((st = wd_read_file(p, PEM_MAX, &pubs[n], &len)) != WD_OK)
            goto out;
        n++;
    }
    st = wd_wstoken_keys_from_pem(out, priv, (const char *const *)pubs, n);
out:
    free(priv);
    for (size_t i = 0; i < n; i++)
        free(pubs[i]);
    free(list);
    return st;
}

void wd_wstoken_keys_destroy(wd_wstoken_keys **p)
{
    if (!p || !*p)
        return;
    wd_wstoken_keys *ks = *p;
    for (size_t i = 0; i < ks->n; i++) {
        EVP_PKEY_free(ks->keys[i].pub);
        free(ks->keys[i].pub_pem);
    }
    if (ks->priv_pem) {
        OPENSSL_cleanse(ks->priv_pem, strlen(ks->priv_pem));
        free(ks->priv_pem);
    }
    free(ks);
    *p = NULL;
}

static char *bio_string(BIO *b)
{
    char *data = NULL;
    long n = BIO_get_mem_data(b, &data);
    char *out = n > 0 ? malloc((size_t)n + 1) : NULL;
    if (out) {
        memcpy(out, data, (size_t)n);
        out[n] = '\0';
    }
    return out;
}

wd_status wd_wstoken_keygen(char **priv_pem, char **pub_pem)
{
    wd_status st = WD_OK;
    EVP_PKEY *k = EVP_EC_gen("P-256");
    BIO *a = BIO_new(BIO_s_mem()), *b = BIO_new(BIO_s_mem());
    *priv_pem = *pub_pem = NULL;
    if (!k || !a || !b || !PEM_write_bio_PrivateKey(a, k, NULL, NULL, 0, NULL, NULL) ||
        !PEM_write_bio_PUBKEY(b, k) || !(*priv_pem = bio_string(a)) ||
        !(*pub_pem = bio_string(b))) {
        free(*priv_pem);
        *priv_pem = NULL;
        st = WD_ERR(WD_ERR_INTERNAL, "gateway token keygen failed");
    }
    BIO_free(a);
    BIO_free(b);
    EVP_PKEY_free(k);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Issue                                                                    */
/* ------------------------------------------------------------------------ */

static bool str_ok(const char *s, size_t cap)
{
    return strnlen(s, cap) < cap;
}

wd_status wd_wstoken_issue(const wd_wstoken_keys *ks, const wd_wstoken_claims *c, char **token)
{
    wd_status st = WD_OK;
    jwt_t *j = NULL;
    json_t *g = NULL, *perms = NULL;
    char *gs = NULL;
    if (!ks || !c || !token)
        return WD_ERR(WD_ERR_INVALID, "gateway token issue: NULL argument");
    *token = NULL;
    if (!ks->priv_pem)
        return WD_ERR(WD_ERR_STATE, "gateway token issue: no private key loaded");
    if (!str_ok(c->sub, sizeof c->sub) || !str_ok(c->sid, sizeof c->sid) ||
        !str_ok(c->srv, sizeof c->srv) || !str_ok(c->node, sizeof c->node) ||
        !str_ok(c->iss, sizeof c->iss) || !str_ok(c->aud, sizeof c->aud) ||
        c->nperms > WD_WSTOKEN_MAX_PERMS)
        return WD_ERR(WD_ERR_INVALID, "gateway token issue: malformed claims");
    if (!c->sub[0] || !c->srv[0] || !c->node[0] || c->exp <= 0)
        return WD_ERR(WD_ERR_INVALID, "gateway token issue: sub, srv, node and exp are required");

    g = json_object();
    perms = json_array();
    if (!g || !perms)
        goto nomem;
    for (size_t i = 0; i < c->nperms; i++) {
        if (!str_ok(c->perms[i], WD_WSTOKEN_PERM_MAX) || !c->perms[i][0]) {
            st = WD_ERR(WD_ERR_INVALID, "gateway token issue: malformed permission");
            goto out;
        }
        if (json_array_append_new(perms, json_string(c->perms[i])) != 0)
            goto nomem;
    }
    if (json_object_set_new(g, "iss", json_string(c->iss[0] ? c->iss : WD_WSTOKEN_ISS)) ||
        json_object_set_new(g, "aud", json_string(c->aud[0] ? c->aud : WD_WSTOKEN_AUD)) ||
        json_object_set_new(g, "sub", json_string(c->sub)) ||
        json_object_set_new(g, "srv", json_string(c->srv)) ||
        json_object_set_new(g, "node", json_string(c->node)) ||
        (c->sid[0] && json_object_set_new(g, "sid", json_string(c->sid))) ||
        json_object_set(g, "perms", perms) ||
        (c->iat && json_object_set_new(g, "iat", json_integer(c->iat))) ||
        (c->nbf && json_object_set_new(g, "nbf", json_integer(c->nbf))) ||
        json_object_set_new(g, "exp", json_integer(c->exp)))
        goto nomem;
    if (!(gs = json_dumps(g, JSON_COMPACT)))
        goto nomem;
    if (jwt_new(&j) != 0 || jwt_add_grants_json(j, gs) != 0 ||
        jwt_add_header(j, "kid", ks->priv_kid) != 0 ||
        jwt_set_alg(j, JWT_ALG_ES256, (const unsigned char *)ks->priv_pem,
                    (int)strlen(ks->priv_pem)) != 0) {
        st = WD_ERR(WD_ERR_INTERNAL, "gateway token issue: building the token failed");
        goto out;
    }
    if (!(*token = jwt_encode_str(j)))
        st = WD_ERR(WD_ERR_INTERNAL, "gateway token issue: signing failed");
    goto out;
nomem:
    st = WD_ERR(WD_ERR_NOMEM, "gateway token issue: out of memory");
out:
    if (j)
        jwt_free(j);
    free(gs);
    json_decref(perms);
    json_decref(g);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Verify                                                                   */
/* ------------------------------------------------------------------------ */

#define DENY(...) WD_ERR(WD_ERR_DENIED, __VA_ARGS__)

static bool ecdsa_ok(EVP_PKEY *k, const char *data, size_t len, const unsigned char sig[64])
{
    bool ok = false;
    unsigned char *der = NULL;
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!es || !r || !s || !md || !ECDSA_SIG_set0(es, r, s))
        goto out;
    r = s = NULL; /* owned by es now */
    int dlen = i2d_ECDSA_SIG(es, &der);
    if (dlen <= 0)
        goto out;
    ok = EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, k) == 1 &&
         EVP_DigestVerify(md, der, (size_t)dlen, (const unsigned char *)data, len) == 1;
out:
    OPENSSL_free(der);
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    EVP_MD_CTX_free(md);
    return ok;
}

wd_status wd_wstoken_verify(const wd_wstoken_keys *ks, const char *token, time_t now,
                            wd_wstoken_claims *claims)
{
    wd_status st = WD_OK;
    json_t *hdr = NULL, *pl = NULL;
    jwt_t *j = NULL;
    wd_wstoken_claims *c = claims;
    if (c)
        memset(c, 0, sizeof *c);
    if (!ks || !c)
        return WD_ERR(WD_ERR_INVALID, "gateway token verify: NULL argument");
    if (!token || !token[0])
        return DENY("invalid token: missing");

    /* 1. Shape. */
    size_t len = strnlen(token, WD_WSTOKEN_MAX + 1);
    if (len > WD_WSTOKEN_MAX)
        return DENY("invalid token: longer than %d bytes", WD_WSTOKEN_MAX);
    const char *d1, *d2;
    if (!wd_jwt_split(token, len, &d1, &d2))
        return DENY("invalid token: not three dot-separated parts");

    /* 2. Header, by us, before any key or libjwt is involved. */
    if (!(hdr = wd_jwt_part(token, (size_t)(d1 - token)))) {
        st = DENY("invalid token: malformed header");
        goto out;
    }
    json_t *kid = json_object_get(hdr, "kid");
    const char *problem = wd_jwt_header_problem(hdr, "ES256");
    if (problem) {
        st = DENY("%s", problem);
        goto out;
    }
    const pub_key *k = NULL;
    if (json_is_string(kid))
        for (size_t i = 0; i < ks->n; i++)
            if (strcmp(ks->keys[i].kid, json_string_value(kid)) == 0)
                k = &ks->keys[i];
    if (!k) {
        st = DENY("invalid token: unknown key id");
        goto out;
    }

    /* 3. Our own signature check. */
    unsigned char sig[80];
    size_t siglen = 0;
    if (wd_base64_url_decode(d2 + 1, len - (size_t)(d2 + 1 - token), sig, sizeof sig,
                             &siglen) != WD_OK ||
        siglen != 64 || !ecdsa_ok(k->pub, token, (size_t)(d2 - token), sig)) {
        st = DENY("invalid token: bad signature");
        goto out;
    }

    /* 4. libjwt as a second opinion, always with the key. */
    if (jwt_decode(&j, token, (const unsigned char *)k->pub_pem, (int)strlen(k->pub_pem)) != 0 ||
        !j || jwt_get_alg(j) != JWT_ALG_ES256) {
        st = DENY("invalid token: rejected by libjwt");
        goto out;
    }

    /* 5. Claims. */
    if (!(pl = wd_jwt_part(d1 + 1, (size_t)(d2 - d1 - 1)))) {
        st = DENY("invalid token: malformed payload");
        goto out;
    }
    if (!wd_claim_str(pl, "sub", c->sub, sizeof c->sub, true) ||
        !wd_claim_str(pl, "sid", c->sid, sizeof c->sid, false) ||
        !wd_claim_str(pl, "srv", c->srv, sizeof c->srv, true) ||
        !wd_claim_str(pl, "node", c->node, sizeof c->node, true) ||
        !wd_claim_str(pl, "iss", c->iss, sizeof c->iss, false) || !wd_claim_time(pl, "iat", &c->iat) ||
        !wd_claim_time(pl, "nbf", &c->nbf) || !wd_claim_time(pl, "exp", &c->exp) || !c->exp) {
        st = DENY("invalid token: missing or malformed claim");
        goto out;
    }
    json_t *perms = json_object_get(pl, "perms");
    if (!json_is_array(perms) || json_array_size(perms) > WD_WSTOKEN_MAX_PERMS) {
        st = DENY("invalid token: perms must be an array of at most %d strings",
                  WD_WSTOKEN_MAX_PERMS);
        goto out;
    }
    size_t i;
    json_t *e;
    json_array_foreach(perms, i, e)
    {
        if (!json_is_string(e) || json_string_length(e) == 0 ||
            json_string_length(e) >= WD_WSTOKEN_PERM_MAX ||
            strlen(json_string_value(e)) != json_string_length(e)) {
            st = DENY("invalid token: malformed permission");
            goto out;
        }
        memcpy(c->perms[i], json_string_value(e), json_string_length(e) + 1);
    }
    c->nperms = json_array_size(perms);
    if (strcmp(c->iss, WD_WSTOKEN_ISS) != 0) {
        st = DENY("invalid token: wrong issuer");
        goto out;
    }
    if (!wd_claim_aud_matches(json_object_get(pl, "aud"), WD_WSTOKEN_AUD)) {
        st = DENY("invalid token: wrong audience");
        goto out;
    }
    snprintf(c->aud, sizeof c->aud, "%s", WD_WSTOKEN_AUD);
    if (c->exp <= (int64_t)now) {
        st = DENY("token expired");
        goto out;
    }
    if ((c->nbf && c->nbf > (int64_t)now + WD_WSTOKEN_SKEW) ||
        (c->iat && c->iat > (int64_t)now + WD_WSTOKEN_SKEW)) {
        st = DENY("invalid token: not valid yet");
        goto out;
    }
out:
    if (j)
        jwt_free(j);
    json_decref(hdr);
    json_decref(pl);
    if (st != WD_OK)
        memset(c, 0, sizeof *c);
    return st;
}

bool wd_wstoken_allows(const wd_wstoken_claims *c, const char *perm)
{
    if (!c || !perm)
        return false;
    const char *dot = strchr(perm, '.');
    size_t glen = dot ? (size_t)(dot - perm) : strlen(perm);
    for (size_t i = 0; i < c->nperms; i++) {
        const char *g = c->perms[i];
        if (strcmp(g, "*") == 0 || strcmp(g, perm) == 0)
            return true;
        size_t n = strlen(g);
        if (dot && n == glen + 2 && strncmp(g, perm, glen) == 0 && g[glen] == '.' &&
            g[glen + 1] == '*')
            return true;
    }
    return false;
}
