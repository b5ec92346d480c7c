/* Unit tests for panel-ws/wstoken.c: issue and verify gateway tokens, and
 * refuse every forged, altered, expired or misdirected one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "harness.h"
#include "wstoken.h"

static char *priv1, *pub1, *priv2, *pub2;
static wd_wstoken_keys *issuer, *verifier, *other;

static wd_wstoken_claims sample(time_t now)
{
    wd_wstoken_claims c;
    memset(&c, 0, sizeof c);
    snprintf(c.sub, sizeof c.sub, "user-1");
    snprintf(c.sid, sizeof c.sid, "session-1");
    snprintf(c.srv, sizeof c.srv, "11111111-2222-3333-4444-555555555555");
    snprintf(c.node, sizeof c.node, "node-a");
    snprintf(c.perms[0], sizeof c.perms[0], "control.console");
    snprintf(c.perms[1], sizeof c.perms[1], "control.start");
    c.nperms = 2;
    c.iat = now;
    c.exp = now + 600;
    return c;
}

static int init(void)
{
    if (wd_wstoken_keygen(&priv1, &pub1) != WD_OK || wd_wstoken_keygen(&priv2, &pub2) != WD_OK)
        return 1;
    const char *p1[] = {pub1};
    if (wd_wstoken_keys_from_pem(&issuer, priv1, NULL, 0) != WD_OK ||
        wd_wstoken_keys_from_pem(&verifier, NULL, p1, 1) != WD_OK ||
        wd_wstoken_keys_from_pem(&other, priv2, NULL, 0) != WD_OK)
        return 1;
    return 0;
}

static int clean(void)
{
    wd_wstoken_keys_destroy(&issuer);
    wd_wstoken_keys_destroy(&verifier);
    wd_wstoken_keys_destroy(&other);
    free(priv1), free(pub1), free(priv2), free(pub2);
    return 0;
}

static char *issue(const wd_wstoken_claims *c)
{
    char *t = NULL;
    CU_ASSERT_EQUAL_FATAL(wd_wstoken_issue(issuer, c, &t), WD_OK);
    return t;
}

static void test_roundtrip(void)
{
    time_t now = time(NULL);
    wd_wstoken_claims c = sample(now), out;
    char *t = issue(&c);
    CU_ASSERT_EQUAL(wd_wstoken_verify(verifier, t, now, &out), WD_OK);
    CU_ASSERT_STRING_EQUAL(out.sub, "user-1");
    CU_ASSERT_STRING_EQUAL(out.sid, "session-1");
    CU_ASSERT_STRING_EQUAL(out.srv, c.srv);
    CU_ASSERT_STRING_EQUAL(out.node, "node-a");
    CU_ASSERT_STRING_EQUAL(out.iss, WD_WSTOKEN_ISS);
    CU_ASSERT_STRING_EQUAL(out.aud, WD_WSTOKEN_AUD);
    CU_ASSERT_EQUAL(out.nperms, 2);
    CU_ASSERT_EQUAL(out.exp, c.exp);
    CU_ASSERT(wd_wstoken_allows(&out, "control.console"));
    CU_ASSERT(wd_wstoken_allows(&out, "control.start"));
    CU_ASSERT(!wd_wstoken_allows(&out, "control.stop"));
    /* The issuer's own key set verifies too. */
    CU_ASSERT_EQUAL(wd_wstoken_verify(issuer, t, now, &out), WD_OK);
    /* A verify-only set cannot issue. */
    char *t2 = NULL;
    CU_ASSERT_EQUAL(wd_wstoken_issue(verifier, &c, &t2), WD_ERR_STATE);
    CU_ASSERT_PTR_NULL(t2);
    free(t);
}

static void test_allows_wildcards(void)
{
    wd_wstoken_claims c;
    memset(&c, 0, sizeof c);
    snprintf(c.perms[0], sizeof c.perms[0], "control.*");
    c.nperms = 1;
    CU_ASSERT(wd_wstoken_allows(&c, "control.kill"));
    CU_ASSERT(!wd_wstoken_allows(&c, "file.read"));
    CU_ASSERT(!wd_wstoken_allows(&c, "controlx.kill"));
    snprintf(c.perms[0], sizeof c.perms[0], "*");
    CU_ASSERT(wd_wstoken_allows(&c, "file.read"));
    c.nperms = 0;
    CU_ASSERT(!wd_wstoken_allows(&c, "control.console"));
}

static void test_expired_and_nbf(void)
{
    time_t now = time(NULL);
    wd_wstoken_claims c = sample(now), out;
    c.iat = now - 1000;
    c.exp = now - 1;
    char *t = issue(&c);
    CU_ASSERT_EQUAL(wd_wstoken_verify(verifier, t, now, &out), WD_ERR_DENIED);
    CU_ASSERT_STRING_EQUAL(wd_err_msg(), "token expired");
    CU_ASSERT_STRING_EQUAL(out.sub, ""); /* zeroed on failure */
    /* Exactly at exp is expired. */
    CU_ASSERT_EQUAL(wd_wstoken_verify(verifier, t, now - 1, &out), WD_ERR_DENIED);
    CU_ASSERT_EQUAL(wd_wstoken_verify(verifier, t, now - 2, &out), WD_OK);
    free(t);
    c = sample(now);
    c.nbf = now + 300;
    t = issue(&c);
    CU_ASSERT_EQUAL(wd_wstoken_verify(verifier, t, now, &out), WD_ERR_DENIED);
    CU_ASSERT_EQUAL(wd_wstoken_verify(verifier, t, now + 300, &out), WD_OK);
    free(t);
}

static void test_wrong_aud_iss(void)
{
    time_t now = time(NULL);
    wd_wstoken_claims c = sample(now), out;
    snprintf(c.aud, sizeof c.aud, "warden-api");
    char *t = issue(&c);
    CU_ASSERT_EQUAL(wd_wstoken_verify(verifier, t, now, &out), WD_ERR_DENIED);
    CU_ASSERT(strstr(wd_err_msg(), "audience") != NULL);
    free(t);
    c = sample(now);
    snprintf(c.iss, sizeof c.iss, "someone-else");
    t = issue(&c);
    CU_ASSERT_EQUAL(wd_wstoken_verify(verifier, t, now, &out), WD_ERR_DENIED);
    CU_ASSERT(strstr(wd_err_msg(), "issuer") != NULL);
    free(t);
}

static void test_wrong_key(void)
{
    time_t now = time(NULL);
    wd_wstoken_claims c = sample(now), out;
    char *t = NULL;
    CU_ASSERT_EQUAL_FATAL(wd_wstoken_issue(other, &c, &t), WD_OK);
    /* Unknown kid. */
    CU_ASSERT_EQUAL(wd_wstoken_verify(verifier, t, now, &out), WD_ERR_DENIED);
    /* Same kid as ours but signed by the other key: bad signature. */
    char *d1 = strchr(t, '.');
    char *t2 = NULL;
    CU_ASSERT_EQUAL_FATAL(wd_wstoken_issue(issuer, &c, &t2), WD_OK);
    char *d1b = strchr(t2, '.');
    /* header of t2 (our kid) + payload and signature of t */
    size_t hl = (size_t)(d1b - t2);
    char *mix = malloc(hl + strlen(d1) + 1);
    memcpy(mix, t2, hl);
    strcpy(mix + hl, d1);
    CU_ASSERT_EQUAL(wd_wstoken_verify(verifier, mix, now, &out), WD_ERR_DENIED);
    free(mix);
    free(t);
    free(t2);
    /* Rotation: a verifier holding both public keys accepts both. */
    const char *both[] = {pub1, pub2};
    wd_wstoken_keys *rot = NULL;
    CU_ASSERT_EQUAL_FATAL(wd_wstoken_keys_from_pem(&rot, NULL, both, 2), WD_OK);
    CU_ASSERT_EQUAL_FATAL(wd_wstoken_issue(other, &c, &t), WD_OK);
    CU_ASSERT_EQUAL(wd_wstoken_verify(rot, t, now, &out), WD_OK);
    free(t);
    wd_wstoken_keys_destroy(&rot);
    CU_ASSERT_PTR_NULL(rot);
}

static void test_tampered(void)
{
    time_t now = time(NULL);
    wd_wstoken_claims c = sample(now), out;
    char *t = issue(&c);
    /* Flip one character in each of the three parts. */
    size_t o1 = strcspn(t, "."), o2 = o1 + 1 + strcspn(t + o1 + 1, ".");
    size_t pos[] = {5, o1 + 5, o2 + 5, strlen(t) - 3};
    for (size_t i = 0; i < sizeof pos / sizeof pos[0]; i++) {
        char *m = strdup(t);
        m[pos[i]] = m[pos[i]] == 'A' ? 'B' : 'A';
        CU_ASSERT_EQUAL(wd_wstoken_verify(verifier, m, now, &out), WD_ERR_DENIED);
        free(m);
    }
    /* Payload swapped for one granting everything. */
    const char *evil = "{\"iss\":\"warden-api\",\"aud\":\"warden-ws\",\"sub\":\"user-1\","
                       "\"srv\":\"x\",\"node\":\"n\",\"perms\":[\"*\"],\"exp\":9999999999}";
    char b64[512];
    size_t o = 0;
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t el = strlen(evil);
    for (size_t i = 0; i < el; i += 3) {
        unsigned v = (unsigned char)evil[i] << 16;
        if (i + 1 < el)
            v |= (unsigned char)evil[i + 1] << 8;
        if (i + 2 < el)
            v |= (unsigned char)evil[i + 2];
        b64[o++] = tbl[(v >> 18) & 63];
        b64[o++] = tbl[(v >> 12) & 63];
        if (i + 1 < el)
            b64[o++] = tbl[(v >> 6) & 63];
        if (i + 2 < el)
            b64[o++] = tbl[v & 63];
    }
    b64[o] = '\0';
    char forged[2048];
    snprintf(forged, sizeof forged, "%.*s.%s%s", (int)o1, t, b64, t + o2);
    CU_ASSERT_EQUAL(wd_wstoken_verify(verifier, forged, now, &out), WD_ERR_DENIED);
    /* Garbage of every shape. */
    const char *junk[] = {"", "a", "a.b", "a.b.c", "a.b.c.d", "....", "%%%.%%%.%%%", NULL};
    for (int i = 0; junk[i]; i++)
        CU_ASSERT_EQUAL(wd_wstoken_verify(verifier, junk[i], now, &out), WD_ERR_DENIED);
    CU_ASSERT_EQUAL(wd_wstoken_verify(verifier, NULL, now, &out), WD_ERR_DENIED);
    /* Too long: refused unread. */
    char *big = malloc(WD_WSTOKEN_MAX + 100);
    memset(big, 'A', WD_WSTOKEN_MAX + 99);
    big[WD_WSTOKEN_MAX + 99] = '\0';
    big[10] = '.';
    big[20] = '.';
    CU_ASSERT_EQUAL(wd_wstoken_verify(verifier, big, now, &out), WD_ERR_DENIED);
    CU_ASSERT(strstr(wd_err_msg(), "longer") != NULL);
    free(big);
    free(t);
}

/* alg none and HS256 signed with the public key (algorithm confusion),
 * both built with libjwt itself. */
static void test_alg_confusion(void)
{
    time_t now = time(NULL);
    wd_wstoken_claims out;
    char grants[512];
    snprintf(grants, sizeof grants,
             "{\"iss\":\"warden-api\",\"aud\":\"warden-ws\",\"sub\":\"u\",\"srv\":\"s\","
             "\"node\":\"n\",\"perms\":[\"*\"],\"exp\":%lld}",
             (long long)now + 600);
    /* The kid of our key, read from a genuine token's header. */
    wd_wstoken_claims c = sample(now);
    char *good = issue(&c);
    jwt_t *g = NULL;
    CU_ASSERT_EQUAL_FATAL(jwt_decode(&g, good, NULL, 0), 0);
    const char *kid = jwt_get_header(g, "kid");
    CU_ASSERT_PTR_NOT_NULL_FATAL(kid);

    jwt_alg_t algs[] = {JWT_ALG_NONE, JWT_ALG_HS256, JWT_ALG_HS512};
    for (size_t i = 0; i < sizeof algs / sizeof algs[0]; i++) {
        jwt_t *j = NULL;
        CU_ASSERT_EQUAL_FATAL(jwt_new(&j), 0);
        jwt_add_grants_json(j, grants);
        jwt_add_header(j, "kid", kid);
        if (algs[i] == JWT_ALG_NONE)
            jwt_set_alg(j, JWT_ALG_NONE, NULL, 0);
        else
            jwt_set_alg(j, algs[i], (const unsigned char *)pub1, (int)strlen(pub1));
        char *tok = jwt_encode_str(j);
        CU_ASSERT_PTR_NOT_NULL_FATAL(tok);
        CU_ASSERT_EQUAL(wd_wstoken_verify(verifier, tok, now, &out), WD_ERR_DENIED);
        CU_ASSERT(strstr(wd_err_msg(), "ES256") != NULL);
        free(tok);
        jwt_free(j);
    }
    /* ES256 header, but the signature of an alg-none token (empty). */
    size_t last = strlen(good);
    while (last && good[last - 1] != '.')
        last--;
    good[last] = '\0';
    CU_ASSERT_EQUAL(wd_wstoken_verify(verifier, good, now, &out), WD_ERR_DENIED);
    jwt_free(g);
    free(good);
}

static void test_bad_keys(void)
{
    wd_wstoken_keys *k = NULL;
    const char *junk[] = {"not a pem"};
    CU_ASSERT_EQUAL(wd_wstoken_keys_from_pem(&k, NULL, junk, 1), WD_ERR_INVALID);
    CU_ASSERT_PTR_NULL(k);
    CU_ASSERT_EQUAL(wd_wstoken_keys_from_pem(&k, NULL, NULL, 0), WD_ERR_INVALID);
    CU_ASSERT_EQUAL(wd_wstoken_keys_from_pem(&k, "junk", NULL, 0), WD_ERR_INVALID);
    /* An RSA key is refused. */
    EVP_PKEY *rsa = EVP_RSA_gen(2048);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rsa);
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(b, rsa);
    char *data = NULL;
    long n = BIO_get_mem_data(b, &data);
    char *pem = strndup(data, (size_t)n);
    const char *rs[] = {pem};
    CU_ASSERT_EQUAL(wd_wstoken_keys_from_pem(&k, NULL, rs, 1), WD_ERR_INVALID);
    free(pem);
    BIO_free(b);
    EVP_PKEY_free(rsa);
    /* Files. */
    char path[600];
    snprintf(path, sizeof path, "%s", wd_h_write_tmp("pub.pem", pub1));
    CU_ASSERT_EQUAL(wd_wstoken_keys_load(&k, NULL, path), WD_OK);
    wd_wstoken_keys_destroy(&k);
    CU_ASSERT_NOT_EQUAL(wd_wstoken_keys_load(&k, NULL, "/nonexistent.pem"), WD_OK);
    wd_wstoken_keys_destroy(NULL);
}

static void test_issue_validation(void)
{
    time_t now = time(NULL);
    wd_wstoken_claims c = sample(now);
    char *t = NULL;
    c.srv[0] = '\0';
    CU_ASSERT_EQUAL(wd_wstoken_issue(issuer, &c, &t), WD_ERR_INVALID);
    c = sample(now);
    c.exp = 0;
    CU_ASSERT_EQUAL(wd_wstoken_issue(issuer, &c, &t), WD_ERR_INVALID);
    c = sample(now);
    c.nperms = WD_WSTOKEN_MAX_PERMS + 1;
    CU_ASSERT_EQUAL(wd_wstoken_issue(issuer, &c, &t), WD_ERR_INVALID);
    CU_ASSERT_PTR_NULL(t);
    /* No perms at all is a valid (read-only) token. */
    c = sample(now);
    c.nperms = 0;
    CU_ASSERT_EQUAL(wd_wstoken_issue(issuer, &c, &t), WD_OK);
    wd_wstoken_claims out;
    CU_ASSERT_EQUAL(wd_wstoken_verify(verifier, t, now, &out), WD_OK);
    CU_ASSERT_EQUAL(out.nperms, 0);
    free(t);
}

int main(void)
{
    static const wd_h_case cases[] = {
        {"roundtrip", test_roundtrip},
        {"allows_wildcards", test_allows_wildcards},
        {"expired_and_nbf", test_expired_and_nbf},
        {"wrong_aud_iss", test_wrong_aud_iss},
        {"wrong_key", test_wrong_key},
        {"tampered", test_tampered},
        {"alg_confusion", test_alg_confusion},
        {"bad_keys", test_bad_keys},
        {"issue_validation", test_issue_validation},
        {NULL, NULL},
    };
    wd_h_suite("wstoken", init, clean, cases);
    return wd_h_run();
}
