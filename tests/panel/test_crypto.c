/* Tests for panel-api/crypto/: bcrypt passwords, HS256 JWTs with a keyring
 * (every libjwt trap from LIBRARIES.md: alg none, algorithm swaps, foreign
 * keys, tampering, time and audience claims, key rotation), opaque tokens,
 * TOTP against the RFC 6238 vectors, recovery codes, and the AES-256-GCM
 * secretbox (tampering of every byte, aad, rotation).
 *
 * Hostile tokens are built by hand here: base64url(header) "."
 * base64url(payload) "." signature, with OpenSSL's HMAC for signatures. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "base64.h"
#include "jwt.h"
#include "password.h"
#include "recovery.h"
#include "secretbox.h"
#include "token.h"
#include "totp.h"
#include "harness.h"
#include "util.h"

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */
/* ------------------------------------------------------------------------ */

static const char KEY_A[] = "0123456789abcdef0123456789abcdef-key-a";
static const char KEY_B[] = "fedcba9876543210fedcba9876543210-key-b";
#define NOW ((time_t)1700000000)
#define ISS "warden"
#define AUD "warden-api"

static wd_jwt_keyring *ring_a(void)
{
    wd_jwt_keyring *kr = NULL;
    CU_ASSERT_FATAL(wd_jwt_keyring_create(&kr) == WD_OK);
    CU_ASSERT_FATAL(wd_jwt_keyring_add(kr, "a", KEY_A, strlen(KEY_A)) == WD_OK);
    return kr;
}

static wd_jwt_claims claims_ok(void)
{
    wd_jwt_claims c;
    memset(&c, 0, sizeof c);
    snprintf(c.sub, sizeof c.sub, "%s", "6f1c2c9e-6a55-4f47-9d2b-2b3a4c5d6e7f");
    snprintf(c.sid, sizeof c.sid, "%s", "fam-1");
    snprintf(c.role, sizeof c.role, "%s", "admin");
    snprintf(c.scope, sizeof c.scope, "%s", "servers:read servers:write");
    snprintf(c.iss, sizeof c.iss, "%s", ISS);
    snprintf(c.aud, sizeof c.aud, "%s", AUD);
    c.iat = NOW;
    c.nbf = NOW;
    c.exp = NOW + 900;
    return c;
}

static char *b64u(const char *s)
{
    char *out = malloc(WD_BASE64_URL_LEN(strlen(s)) + 1);
    CU_ASSERT_FATAL(out != NULL);
    CU_ASSERT_FATAL(wd_base64_url_encode(s, strlen(s), out, WD_BASE64_URL_LEN(strlen(s)) + 1) ==
                    WD_OK);
    return out;
}

/* header.payload.signature; md NULL gives an empty signature. */
static char *forge(const char *header, const char *payload, const EVP_MD *md, const char *key)
{
    char *h = b64u(header), *p = b64u(payload);
    size_t cap = strlen(h) + strlen(p) + 200;
    char *tok = malloc(cap);
    CU_ASSERT_FATAL(tok != NULL);
    snprintf(tok, cap, "%s.%s.", h, p);
    if (md) {
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned int maclen = 0;
        size_t signed_len = strlen(tok) - 1;
        CU_ASSERT_FATAL(HMAC(md, key, (int)strlen(key), (unsigned char *)tok, signed_len, mac,
                             &maclen) != NULL);
        CU_ASSERT_FATAL(wd_base64_url_encode(mac, maclen, tok + strlen(tok), cap - strlen(tok)) ==
                        WD_OK);
    }
    free(h);
    free(p);
    return tok;
}

static const char *PAYLOAD_OK =
    "{\"sub\":\"u1\",\"iss\":\"warden\",\"aud\":\"warden-api\",\"exp\":1700000900,"
    "\"iat\":1700000000}";

/* Verifies token with ring a at NOW; returns the status and checks that a
 * denial is WD_ERR_DENIED with a message containing `why` (if given). */
static wd_status verify_a(const char *tok, const char *why)
{
    wd_jwt_keyring *kr = ring_a();
    wd_jwt_claims out;
    wd_status st = wd_jwt_verify(kr, tok, NOW, ISS, AUD, &out);
    if (st != WD_OK) {
        CU_ASSERT_EQUAL(st, WD_ERR_DENIED);
        CU_ASSERT_EQUAL(out.sub[0], '\0');
        if (why && !strstr(wd_err_msg(), why)) {
            fprintf(stderr, "\n  message '%s' lacks '%s'\n", wd_err_msg(), why);
            CU_FAIL("denial message");
        }
    }
    wd_jwt_keyring_destroy(&kr);
    CU_ASSERT_PTR_NULL(kr);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Passwords                                                                */
/* ------------------------------------------------------------------------ */

static void test_password_round_trip(void)
{
    char h1[WD_PASSWORD_HASH_LEN + 1], h2[WD_PASSWORD_HASH_LEN + 1];
    CU_ASSERT_EQUAL_FATAL(wd_password_hash("correct horse", 4, h1, sizeof h1), WD_OK);
    CU_ASSERT_EQUAL(strncmp(h1, "$2b$04$", 7), 0);
    CU_ASSERT_EQUAL(strlen(h1), WD_PASSWORD_HASH_LEN);
    CU_ASSERT_TRUE(wd_password_verify("correct horse", h1));
    CU_ASSERT_FALSE(wd_password_verify("correct horsf", h1));
    CU_ASSERT_FALSE(wd_password_verify("Correct horse", h1));
    CU_ASSERT_FALSE(wd_password_verify("", h1));
    CU_ASSERT_FALSE(wd_password_verify(NULL, h1));
    /* Fresh salt every time. */
    CU_ASSERT_EQUAL_FATAL(wd_password_hash("correct horse", 4, h2, sizeof h2), WD_OK);
    CU_ASSERT_NOT_EQUAL(strcmp(h1, h2), 0);
    CU_ASSERT_TRUE(wd_password_verify("correct horse", h2));
}

static void test_password_limits(void)
{
    char h[WD_PASSWORD_HASH_LEN + 1];
    char pw72[73], pw73[74];
    memset(pw72, 'p', 72);
    pw72[72] = '\0';
    memset(pw73, 'p', 73);
    pw73[73] = '\0';

    CU_ASSERT_EQUAL(wd_password_hash("", 4, h, sizeof h), WD_ERR_INVALID);
    CU_ASSERT_EQUAL(wd_password_hash(NULL, 4, h, sizeof h), WD_ERR_INVALID);
    CU_ASSERT_EQUAL(wd_password_hash(pw73, 4, h, sizeof h), WD_ERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(wd_err_msg(), "72"));
    CU_ASSERT_EQUAL(wd_password_hash("pw", 3, h, sizeof h), WD_ERR_INVALID);
    CU_ASSERT_EQUAL(wd_password_hash("pw", 16, h, sizeof h), WD_ERR_INVALID);
    CU_ASSERT_EQUAL(wd_password_hash("pw", 4, h, 60), WD_ERR_INVALID);

    /* 72 bytes is fine, and a 73rd byte must not sneak in as "the same". */
    CU_ASSERT_EQUAL_FATAL(wd_password_hash(pw72, 4, h, sizeof h), WD_OK);
    CU_ASSERT_TRUE(wd_password_verify(pw72, h));
    CU_ASSERT_FALSE(wd_password_verify(pw73, h));
}

static void test_password_malformed_and_rehash(void)
{
    char h[WD_PASSWORD_HASH_LEN + 1];
    CU_ASSERT_EQUAL_FATAL(wd_password_hash("pw", 4, h, sizeof h), WD_OK);
    CU_ASSERT_FALSE(wd_password_needs_rehash(h, 4));
    CU_ASSERT_TRUE(wd_password_needs_rehash(h, 12));
    CU_ASSERT_TRUE(wd_password_needs_rehash(h, 0));
    CU_ASSERT_TRUE(wd_password_needs_rehash("", 4));
    CU_ASSERT_TRUE(wd_password_needs_rehash(NULL, 4));
    CU_ASSERT_TRUE(wd_password_needs_rehash("$1$abc$def", 4));
    char a[sizeof h];
    memcpy(a, h, sizeof h);
    a[2] = 'a'; /* $2a$: still verifies, but should be upgraded */
    CU_ASSERT_TRUE(wd_password_verify("pw", a));
    CU_ASSERT_TRUE(wd_password_needs_rehash(a, 4));

    CU_ASSERT_FALSE(wd_password_verify("pw", NULL));
    CU_ASSERT_FALSE(wd_password_verify("pw", ""));
    CU_ASSERT_FALSE(wd_password_verify("pw", "*0"));
    CU_ASSERT_FALSE(wd_password_verify("pw", "$6$salt$abcdef"));
    char t[sizeof h];
    memcpy(t, h, sizeof h);
    t[WD_PASSWORD_HASH_LEN - 1] = '\0'; /* truncated */
    CU_ASSERT_FALSE(wd_password_verify("pw", t));
    memcpy(t, h, sizeof h);
    t[20] = '!';
    CU_ASSERT_FALSE(wd_password_verify("pw", t));
}

static void test_password_dummy(void)
{
    /* Must not crash on any input. */
    wd_password_verify_dummy(NULL, 4);
    wd_password_verify_dummy("", 4);
    wd_password_verify_dummy("x", -1);
    char pw100[101];
    memset(pw100, 'p', 100);
    pw100[100] = '\0';
    wd_password_verify_dummy(pw100, 4);
    /* And must really run bcrypt at the given cost: cost 9 is 32x cost 4. */
    int64_t t0 = wd_mono_us();
    wd_password_verify_dummy("whatever", 4);
    int64_t t1 = wd_mono_us();
    wd_password_verify_dummy("whatever", 9);
    int64_t t2 = wd_mono_us();
    CU_ASSERT_TRUE(t2 - t1 > 4 * (t1 - t0));
    CU_ASSERT_TRUE(t2 - t1 > 5000);
}

/* ------------------------------------------------------------------------ */
/* JWT                                                                      */
/* ------------------------------------------------------------------------ */

static void test_jwt_round_trip(void)
{
    wd_jwt_keyring *kr = ring_a();
    wd_jwt_claims c = claims_ok(), out;
    char *tok = NULL;
    CU_ASSERT_EQUAL_FATAL(wd_jwt_issue(kr, &c, &tok), WD_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tok);
    CU_ASSERT_EQUAL_FATAL(wd_jwt_verify(kr, tok, NOW + 10, ISS, AUD, &out), WD_OK);
    CU_ASSERT_STRING_EQUAL(out.sub, c.sub);
    CU_ASSERT_STRING_EQUAL(out.sid, "fam-1");
    CU_ASSERT_STRING_EQUAL(out.role, "admin");
    CU_ASSERT_STRING_EQUAL(out.scope, "servers:read servers:write");
    CU_ASSERT_STRING_EQUAL(out.iss, ISS);
    CU_ASSERT_STRING_EQUAL(out.aud, AUD);
    CU_ASSERT_EQUAL(out.iat, NOW);
    CU_ASSERT_EQUAL(out.nbf, NOW);
    CU_ASSERT_EQUAL(out.exp, NOW + 900);

    /* The header names the key. */
    const char *dot = strchr(tok, '.');
    uint8_t hdr[256];
    size_t n = 0;
    CU_ASSERT_EQUAL_FATAL(wd_base64_url_decode(tok, (size_t)(dot - tok), hdr, sizeof hdr - 1, &n),
                          WD_OK);
    hdr[n] = '\0';
    CU_ASSERT_PTR_NOT_NULL(strstr((char *)hdr, "\"kid\":\"a\""));
    CU_ASSERT_PTR_NOT_NULL(strstr((char *)hdr, "\"HS256\""));
    free(tok);

    /* Empty scope (API keys) and no optional claims. */
    wd_jwt_claims m;
    memset(&m, 0, sizeof m);
    snprintf(m.sub, sizeof m.sub, "u2");
    m.exp = NOW + 60;
    CU_ASSERT_EQUAL_FATAL(wd_jwt_issue(kr, &m, &tok), WD_OK);
    CU_ASSERT_EQUAL(wd_jwt_verify(kr, tok, NOW, NULL, NULL, &out), WD_OK);
    CU_ASSERT_STRING_EQUAL(out.sub, "u2");
    CU_ASSERT_STRING_EQUAL(out.scope, "");
    /* No iss/aud in the token while the caller expects them. */
    CU_ASSERT_EQUAL(wd_jwt_verify(kr, tok, NOW, ISS, NULL, &out), WD_ERR_DENIED);
    CU_ASSERT_EQUAL(wd_jwt_verify(kr, tok, NOW, NULL, AUD, &out), WD_ERR_DENIED);
    free(tok);

    /* Issue refuses incomplete claims. */
    memset(&m, 0, sizeof m);
    m.exp = NOW + 60;
    CU_ASSERT_EQUAL(wd_jwt_issue(kr, &m, &tok), WD_ERR_INVALID);
    snprintf(m.sub, sizeof m.sub, "u");
    m.exp = 0;
    CU_ASSERT_EQUAL(wd_jwt_issue(kr, &m, &tok), WD_ERR_INVALID);
    CU_ASSERT_PTR_NULL(tok);
    wd_jwt_keyring_destroy(&kr);
    wd_jwt_keyring_destroy(&kr); /* NULL-safe */
}

static void test_jwt_forged_baseline(void)
{
    /* The hand-built token is valid, so the traps below fail for the
     * reason they test, not for a forging mistake. */
    char *t =
        forge("{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"a\"}", PAYLOAD_OK, EVP_sha256(), KEY_A);
    CU_ASSERT_EQUAL(verify_a(t, NULL), WD_OK);
    free(t);
}

static void test_jwt_alg_none(void)
{
    char *t = forge("{\"alg\":\"none\",\"typ\":\"JWT\",\"kid\":\"a\"}", PAYLOAD_OK, NULL, NULL);
    CU_ASSERT_EQUAL(verify_a(t, "invalid token"), WD_ERR_DENIED);
    free(t);
    t = forge("{\"alg\":\"none\",\"typ\":\"JWT\"}", PAYLOAD_OK, NULL, NULL);
    CU_ASSERT_EQUAL(verify_a(t, "invalid token"), WD_ERR_DENIED);
    free(t);
    t = forge("{\"alg\":\"None\",\"kid\":\"a\"}", PAYLOAD_OK, NULL, NULL);
    CU_ASSERT_EQUAL(verify_a(t, "invalid token"), WD_ERR_DENIED);
    free(t);
    /* Two-part token (no signature part at all). */
    char *h = b64u("{\"alg\":\"none\"}"), *p = b64u(PAYLOAD_OK);
    char buf[1024];
    snprintf(buf, sizeof buf, "%s.%s", h, p);
    CU_ASSERT_EQUAL(verify_a(buf, "invalid token"), WD_ERR_DENIED);
    free(h);
    free(p);
}

static void test_jwt_alg_swaps(void)
{
    char *t =
        forge("{\"alg\":\"HS384\",\"typ\":\"JWT\",\"kid\":\"a\"}", PAYLOAD_OK, EVP_sha384(), KEY_A);
    CU_ASSERT_EQUAL(verify_a(t, "invalid token"), WD_ERR_DENIED);
    free(t);
    t = forge("{\"alg\":\"HS512\",\"kid\":\"a\"}", PAYLOAD_OK, EVP_sha512(), KEY_A);
    CU_ASSERT_EQUAL(verify_a(t, "invalid token"), WD_ERR_DENIED);
    free(t);
    /* RS256 header with an HMAC signature: the classic confusion attack. */
    t = forge("{\"alg\":\"RS256\",\"kid\":\"a\"}", PAYLOAD_OK, EVP_sha256(), KEY_A);
    CU_ASSERT_EQUAL(verify_a(t, "invalid token"), WD_ERR_DENIED);
    free(t);
    /* Duplicate alg keys: parsers disagree on which wins, so refuse. */
    t = forge("{\"alg\":\"HS256\",\"alg\":\"none\",\"kid\":\"a\"}", PAYLOAD_OK, EVP_sha256(),
              KEY_A);
    CU_ASSERT_EQUAL(verify_a(t, "invalid token"), WD_ERR_DENIED);
    free(t);
    t = forge("{\"alg\":\"hs256\",\"kid\":\"a\"}", PAYLOAD_OK, EVP_sha256(), KEY_A);
    CU_ASSERT_EQUAL(verify_a(t, "invalid token"), WD_ERR_DENIED);
    free(t);
    t = forge("{\"kid\":\"a\"}", PAYLOAD_OK, EVP_sha256(), KEY_A);
    CU_ASSERT_EQUAL(verify_a(t, "invalid token"), WD_ERR_DENIED);
    free(t);
    t = forge("{\"alg\":\"HS256\",\"kid\":\"a\",\"crit\":[\"exp\"]}", PAYLOAD_OK, EVP_sha256(),
              KEY_A);
    CU_ASSERT_EQUAL(verify_a(t, "invalid token"), WD_ERR_DENIED);
    free(t);
}

static void test_jwt_wrong_key_and_tamper(void)
{
    /* Signed with another secret under our kid. */
    char *t = forge("{\"alg\":\"HS256\",\"kid\":\"a\"}", PAYLOAD_OK, EVP_sha256(), KEY_B);
    CU_ASSERT_EQUAL(verify_a(t, "bad signature"), WD_ERR_DENIED);
    free(t);

    /* A real token whose payload is swapped for a more generous one. */
    wd_jwt_keyring *kr = ring_a();
    wd_jwt_claims c = claims_ok(), out;
    char *tok = NULL;
    CU_ASSERT_EQUAL_FATAL(wd_jwt_issue(kr, &c, &tok), WD_OK);
    char *d1 = strchr(tok, '.'), *d2 = strrchr(tok, '.');
    char *evil = b64u("{\"sub\":\"root\",\"iss\":\"warden\",\"aud\":\"warden-api\","
                      "\"exp\":1700000900,\"role\":\"owner\"}");
    char buf[2048];
    snprintf(buf, sizeof buf, "%.*s.%s%s", (int)(d1 - tok), tok, evil, d2);
    CU_ASSERT_EQUAL(wd_jwt_verify(kr, buf, NOW, ISS, AUD, &out), WD_ERR_DENIED);
    free(evil);

    /* Flip every character of the token in turn. */
    size_t n = strlen(tok);
    for (size_t i = 0; i < n; i++) {
        char saved = tok[i];
        tok[i] = saved == 'A' ? 'B' : 'A';
        if (tok[i] == saved)
            continue;
        if (wd_jwt_verify(kr, tok, NOW, ISS, AUD, &out) != WD_ERR_DENIED) {
            fprintf(stderr, "\n  flip at %zu accepted\n", i);
            CU_FAIL("tampered token accepted");
        }
        tok[i] = saved;
    }
    /* Signature with non-canonical trailing bits or an extra character. */
    snprintf(buf, sizeof buf, "%sA", tok);
    CU_ASSERT_EQUAL(wd_jwt_verify(kr, buf, NOW, ISS, AUD, &out), WD_ERR_DENIED);
    snprintf(buf, sizeof buf, "%.*s", (int)(n - 1), tok);
    CU_ASSERT_EQUAL(wd_jwt_verify(kr, buf, NOW, ISS, AUD, &out), WD_ERR_DENIED);
    CU_ASSERT_EQUAL(wd_jwt_verify(kr, tok, NOW, ISS, AUD, &out), WD_OK);
    free(tok);
    wd_jwt_keyring_destroy(&kr);
}

static void test_jwt_times(void)
{
    wd_jwt_keyring *kr = ring_a();
    wd_jwt_claims c = claims_ok(), out;
    char *tok = NULL;
    CU_ASSERT_EQUAL_FATAL(wd_jwt_issue(kr, &c, &tok), WD_OK);
    CU_ASSERT_EQUAL(wd_jwt_verify(kr, tok, NOW + 899, ISS, AUD, &out), WD_OK);
    CU_ASSERT_EQUAL(wd_jwt_verify(kr, tok, NOW + 900, ISS, AUD, &out), WD_ERR_DENIED);
    CU_ASSERT_PTR_NOT_NULL(strstr(wd_err_msg(), "expired"));
    CU_ASSERT_EQUAL(wd_jwt_verify(kr, tok, NOW + 100000, ISS, AUD, &out), WD_ERR_DENIED);
    CU_ASSERT_PTR_NOT_NULL(strstr(wd_err_msg(), "expired"));
    /* nbf NOW: fine 30 s early (skew), refused 31 s early. */
    CU_ASSERT_EQUAL(wd_jwt_verify(kr, tok, NOW - 30, ISS, AUD, &out), WD_OK);
    CU_ASSERT_EQUAL(wd_jwt_verify(kr, tok, NOW - 31, ISS, AUD, &out), WD_ERR_DENIED);
    CU_ASSERT_PTR_NOT_NULL(strstr(wd_err_msg(), "not valid yet"));
    free(tok);

    /* nbf far in the future. */
    c.nbf = NOW + 3600;
    c.exp = NOW + 7200;
    CU_ASSERT_EQUAL_FATAL(wd_jwt_issue(kr, &c, &tok), WD_OK);
    CU_ASSERT_EQUAL(wd_jwt_verify(kr, tok, NOW, ISS, AUD, &out), WD_ERR_DENIED);
    CU_ASSERT_PTR_NOT_NULL(strstr(wd_err_msg(), "invalid token"));
    free(tok);
    wd_jwt_keyring_destroy(&kr);

    /* Missing exp, missing sub, wrong types (validly signed). */
    const char *bad[] = {
        "{\"sub\":\"u1\",\"iss\":\"warden\",\"aud\":\"warden-api\"}",
        "{\"iss\":\"warden\",\"aud\":\"warden-api\",\"exp\":1700000900}",
        "{\"sub\":\"\",\"iss\":\"warden\",\"aud\":\"warden-api\",\"exp\":1700000900}",
        "{\"sub\":7,\"iss\":\"warden\",\"aud\":\"warden-api\",\"exp\":1700000900}",
        "{\"sub\":\"u1\",\"iss\":\"warden\",\"aud\":\"warden-api\",\"exp\":\"1700000900\"}",
        "{\"sub\":\"u1\",\"iss\":\"warden\",\"aud\":\"warden-api\",\"exp\":1.7e9}",
        ("{\"sub\":\"u1\",\"sub\":\"root\",\"iss\":\"warden\",\"aud\":\"warden-api\","
         "\"exp\":1700000900}"),
        "[1,2,3]",
        "not json",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *t = forge("{\"alg\":\"HS256\",\"kid\":\"a\"}", bad[i], EVP_sha256(), KEY_A);
        if (verify_a(t, "invalid token") != WD_ERR_DENIED) {
            fprintf(stderr, "\n  accepted payload %s\n", bad[i]);
            CU_FAIL("bad payload accepted");
        }
        free(t);
    }
}

static void test_jwt_iss_aud(void)
{
    wd_jwt_keyring *kr = ring_a();
    wd_jwt_claims c = claims_ok(), out;
    char *tok = NULL;
    CU_ASSERT_EQUAL_FATAL(wd_jwt_issue(kr, &c, &tok), WD_OK);
    CU_ASSERT_EQUAL(wd_jwt_verify(kr, tok, NOW, "evil", AUD, &out), WD_ERR_DENIED);
    CU_ASSERT_PTR_NOT_NULL(strstr(wd_err_msg(), "issuer"));
    CU_ASSERT_EQUAL(wd_jwt_verify(kr, tok, NOW, ISS, "warden-ws", &out), WD_ERR_DENIED);
    CU_ASSERT_PTR_NOT_NULL(strstr(wd_err_msg(), "audience"));
    CU_ASSERT_EQUAL(wd_jwt_verify(kr, tok, NOW, ISS, "warden-ap", &out), WD_ERR_DENIED);
    free(tok);
    wd_jwt_keyring_destroy(&kr);

    /* aud as an array (RFC 7519) works when it contains ours. */
    char *t = forge("{\"alg\":\"HS256\",\"kid\":\"a\"}",
                    "{\"sub\":\"u1\",\"iss\":\"warden\",\"aud\":[\"x\",\"warden-api\"],"
                    "\"exp\":1700000900}",
                    EVP_sha256(), KEY_A);
    CU_ASSERT_EQUAL(verify_a(t, NULL), WD_OK);
    free(t);
    t = forge("{\"alg\":\"HS256\",\"kid\":\"a\"}",
              "{\"sub\":\"u1\",\"iss\":\"warden\",\"aud\":[\"x\"],\"exp\":1700000900}",
              EVP_sha256(), KEY_A);
    CU_ASSERT_EQUAL(verify_a(t, "audience"), WD_ERR_DENIED);
    free(t);
}

static void test_jwt_kid(void)
{
    char *t = forge("{\"alg\":\"HS256\",\"kid\":\"zz\"}", PAYLOAD_OK, EVP_sha256(), KEY_A);
    CU_ASSERT_EQUAL(verify_a(t, "unknown key"), WD_ERR_DENIED);
    free(t);
    t = forge("{\"alg\":\"HS256\"}", PAYLOAD_OK, EVP_sha256(), KEY_A);
    CU_ASSERT_EQUAL(verify_a(t, "kid"), WD_ERR_DENIED);
    free(t);
    t = forge("{\"alg\":\"HS256\",\"kid\":5}", PAYLOAD_OK, EVP_sha256(), KEY_A);
    CU_ASSERT_EQUAL(verify_a(t, "kid"), WD_ERR_DENIED);
    free(t);
    t = forge("{\"alg\":\"HS256\",\"kid\":\"../a\"}", PAYLOAD_OK, EVP_sha256(), KEY_A);
    CU_ASSERT_EQUAL(verify_a(t, "kid"), WD_ERR_DENIED);
    free(t);
}

static void test_jwt_garbage(void)
{
    const char *junk[] = {
        "",         ".",           "..",
        "...",      "a.b.c",       "a.b",
        "abc",      "eyJ.eyJ.",    "====.====.====",
        "e30.e30.", "e30.e30.e30", "\xff\xfe.\x01.\x02",
    };
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++)
        CU_ASSERT_EQUAL(verify_a(junk[i], "invalid token"), WD_ERR_DENIED);
    CU_ASSERT_EQUAL(verify_a(NULL, "invalid token"), WD_ERR_DENIED);

    /* Over 4096 bytes: refused before anything is decoded. */
    char *big = malloc(WD_JWT_MAX_TOKEN + 2);
    CU_ASSERT_FATAL(big != NULL);
    memset(big, 'A', WD_JWT_MAX_TOKEN + 1);
    big[10] = '.';
    big[20] = '.';
    big[WD_JWT_MAX_TOKEN + 1] = '\0';
    CU_ASSERT_EQUAL(verify_a(big, "longer than"), WD_ERR_DENIED);
    free(big);

    /* A validly signed token that is too long is refused too. */
    char payload[5000];
    int n = snprintf(payload, sizeof payload,
                     "{\"sub\":\"u1\",\"iss\":\"warden\",\"aud\":\"warden-api\","
                     "\"exp\":1700000900,\"pad\":\"");
    memset(payload + n, 'x', 3200);
    snprintf(payload + n + 3200, sizeof payload - (size_t)n - 3200, "\"}");
    char *t = forge("{\"alg\":\"HS256\",\"kid\":\"a\"}", payload, EVP_sha256(), KEY_A);
    CU_ASSERT_TRUE(strlen(t) > WD_JWT_MAX_TOKEN);
    CU_ASSERT_EQUAL(verify_a(t, "longer than"), WD_ERR_DENIED);
    free(t);

    /* Random bytes in the right shape. */
    for (int i = 0; i < 200; i++) {
        char tok[64];
        CU_ASSERT_EQUAL_FATAL(wd_token_new(NULL, tok, sizeof tok), WD_OK);
        tok[5] = '.';
        tok[20] = '.';
        CU_ASSERT_EQUAL(verify_a(tok, NULL), WD_ERR_DENIED);
    }
}

static void test_jwt_keyring_rotation(void)
{
    wd_jwt_keyring *kr = ring_a();
    wd_jwt_claims c = claims_ok(), out;
    char *old = NULL, *fresh = NULL;
    CU_ASSERT_EQUAL_FATAL(wd_jwt_issue(kr, &c, &old), WD_OK);

    CU_ASSERT_EQUAL(wd_jwt_keyring_add(kr, "b", KEY_B, strlen(KEY_B)), WD_OK);
    CU_ASSERT_EQUAL(wd_jwt_keyring_add(kr, "b", KEY_B, strlen(KEY_B)), WD_ERR_EXISTS);
    CU_ASSERT_EQUAL(wd_jwt_keyring_set_active(kr, "nope"), WD_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL_FATAL(wd_jwt_keyring_set_active(kr, "b"), WD_OK);
    CU_ASSERT_EQUAL_FATAL(wd_jwt_issue(kr, &c, &fresh), WD_OK);

    /* Both verify while both keys are present. */
    CU_ASSERT_EQUAL(wd_jwt_verify(kr, old, NOW, ISS, AUD, &out), WD_OK);
    CU_ASSERT_EQUAL(wd_jwt_verify(kr, fresh, NOW, ISS, AUD, &out), WD_OK);
    /* The new token is signed with b: a ring with only a refuses it. */
    CU_ASSERT_EQUAL(verify_a(fresh, "unknown key"), WD_ERR_DENIED);

    CU_ASSERT_EQUAL(wd_jwt_keyring_remove(kr, "b"), WD_ERR_STATE); /* active */
    CU_ASSERT_EQUAL(wd_jwt_keyring_remove(kr, "a"), WD_OK);
    CU_ASSERT_EQUAL(wd_jwt_keyring_remove(kr, "a"), WD_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(wd_jwt_verify(kr, old, NOW, ISS, AUD, &out), WD_ERR_DENIED);
    CU_ASSERT_PTR_NOT_NULL(strstr(wd_err_msg(), "unknown key"));
    CU_ASSERT_EQUAL(wd_jwt_verify(kr, fresh, NOW, ISS, AUD, &out), WD_OK);
    free(old);
    free(fresh);

    /* Keyring rules. */
    CU_ASSERT_EQUAL(wd_jwt_keyring_add(kr, "short", "too short", 9), WD_ERR_INVALID);
    CU_ASSERT_EQUAL(wd_jwt_keyring_add(kr, "", KEY_A, strlen(KEY_A)), WD_ERR_INVALID);
    CU_ASSERT_EQUAL(wd_jwt_keyring_add(kr, "a b", KEY_A, strlen(KEY_A)), WD_ERR_INVALID);
    wd_jwt_keyring_destroy(&kr);

    /* An empty keyring cannot issue. */
    CU_ASSERT_EQUAL_FATAL(wd_jwt_keyring_create(&kr), WD_OK);
    CU_ASSERT_EQUAL(wd_jwt_issue(kr, &c, &old), WD_ERR_STATE);
    wd_jwt_keyring_destroy(&kr);
}

typedef struct {
    wd_jwt_keyring *kr;
    const char *tok;
    int ok;
} verify_job;

static void *verify_thread(void *arg)
{
    verify_job *j = arg;
    for (int i = 0; i < 200; i++) {
        wd_jwt_claims out;
        if (wd_jwt_verify(j->kr, j->tok, NOW, ISS, AUD, &out) == WD_OK)
            j->ok++;
    }
    return NULL;
}

static void test_jwt_threads(void)
{
    wd_jwt_keyring *kr = ring_a();
    wd_jwt_claims c = claims_ok();
    char *tok = NULL;
    CU_ASSERT_EQUAL_FATAL(wd_jwt_issue(kr, &c, &tok), WD_OK);
    pthread_t th[4];
    verify_job jobs[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (verify_job){kr, tok, 0};
        CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, verify_thread, &jobs[i]), 0);
    }
    /* Rotate keys while the readers run. */
    char kid[16];
    for (int i = 0; i < 50; i++) {
        snprintf(kid, sizeof kid, "k%d", i);
        CU_ASSERT_EQUAL(wd_jwt_keyring_add(kr, kid, KEY_B, strlen(KEY_B)), WD_OK);
        CU_ASSERT_EQUAL(wd_jwt_keyring_remove(kr, kid), WD_OK);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CU_ASSERT_EQUAL(jobs[i].ok, 200);
    }
    free(tok);
    wd_jwt_keyring_destroy(&kr);
}

/* ------------------------------------------------------------------------ */
/* Opaque tokens                                                            */
/* ------------------------------------------------------------------------ */

static void test_token(void)
{
    char a[80], b[80], ha[65], hb[65];
    CU_ASSERT_EQUAL_FATAL(wd_token_new("wdr_", a, sizeof a), WD_OK);
    CU_ASSERT_EQUAL_FATAL(wd_token_new("wdr_", b, sizeof b), WD_OK);
    CU_ASSERT_EQUAL(strncmp(a, "wdr_", 4), 0);
    CU_ASSERT_EQUAL(strlen(a), 4 + WD_TOKEN_BODY_LEN);
    CU_ASSERT_NOT_EQUAL(strcmp(a, b), 0);
    CU_ASSERT_EQUAL(
        strspn(a + 4, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
        WD_TOKEN_BODY_LEN);
    uint8_t raw[40];
    size_t n = 0;
    CU_ASSERT_EQUAL(wd_base64_url_decode(a + 4, WD_TOKEN_BODY_LEN, raw, sizeof raw, &n), WD_OK);
    CU_ASSERT_EQUAL(n, 32);

    CU_ASSERT_EQUAL(wd_token_new("wdr_", a, 4 + WD_TOKEN_BODY_LEN), WD_ERR_INVALID);
    CU_ASSERT_EQUAL(wd_token_new("wdr_", a, 4 + WD_TOKEN_BODY_LEN + 1), WD_OK);
    CU_ASSERT_EQUAL(wd_token_new("bad prefix", a, sizeof a), WD_ERR_INVALID);
    CU_ASSERT_EQUAL(wd_token_new("", a, sizeof a), WD_OK);
    CU_ASSERT_EQUAL(strlen(a), WD_TOKEN_BODY_LEN);

    /* SHA-256("abc") from FIPS 180-2. */
    CU_ASSERT_EQUAL_FATAL(wd_token_hash("abc", ha), WD_OK);
    CU_ASSERT_STRING_EQUAL(ha, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CU_ASSERT_EQUAL_FATAL(wd_token_hash("abd", hb), WD_OK);
    CU_ASSERT_FALSE(wd_token_equal_ct(ha, hb));
    CU_ASSERT_TRUE(wd_token_equal_ct(ha, ha));
    CU_ASSERT_TRUE(wd_token_equal_ct("", ""));
    CU_ASSERT_FALSE(wd_token_equal_ct("abc", "abcd"));
    CU_ASSERT_FALSE(wd_token_equal_ct("abcd", "abc"));
    CU_ASSERT_FALSE(wd_token_equal_ct("abc", ""));
    CU_ASSERT_FALSE(wd_token_equal_ct(NULL, "abc"));
    CU_ASSERT_FALSE(wd_token_equal_ct("abc", NULL));
}

static void test_base64_strict(void)
{
    uint8_t out[16];
    size_t n = 0;
    char enc[32];
    CU_ASSERT_EQUAL(wd_base64_std_encode("ab", 2, enc, sizeof enc), WD_OK);
    CU_ASSERT_STRING_EQUAL(enc, "YWI=");
    CU_ASSERT_EQUAL(wd_base64_url_encode("ab", 2, enc, sizeof enc), WD_OK);
    CU_ASSERT_STRING_EQUAL(enc, "YWI");
    CU_ASSERT_EQUAL(wd_base64_url_encode("\xfb\xff", 2, enc, sizeof enc), WD_OK);
    CU_ASSERT_STRING_EQUAL(enc, "-_8");
    CU_ASSERT_EQUAL(wd_base64_std_decode("YWI=", 4, out, sizeof out, &n), WD_OK);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_EQUAL(wd_base64_url_decode("YWI", 3, out, sizeof out, &n), WD_OK);
    CU_ASSERT_EQUAL(wd_base64_url_decode("YWJ", 3, out, sizeof out, &n), WD_ERR_INVALID);
    CU_ASSERT_EQUAL(wd_base64_url_decode("YWI=", 4, out, sizeof out, &n), WD_ERR_INVALID);
    CU_ASSERT_EQUAL(wd_base64_url_decode("Y", 1, out, sizeof out, &n), WD_ERR_INVALID);
    CU_ASSERT_EQUAL(wd_base64_url_decode("Y+I", 3, out, sizeof out, &n), WD_ERR_INVALID);
    CU_ASSERT_EQUAL(wd_base64_std_decode("YWI", 3, out, sizeof out, &n), WD_ERR_INVALID);
    CU_ASSERT_EQUAL(wd_base64_std_decode("Y===", 4, out, sizeof out, &n), WD_ERR_INVALID);
    CU_ASSERT_EQUAL(wd_base64_std_decode("YWJj", 4, out, 2, &n), WD_ERR_INVALID);
}

/* ------------------------------------------------------------------------ */
/* TOTP and recovery codes                                                  */
/* ------------------------------------------------------------------------ */

/* base32("12345678901234567890"): the RFC 6238 SHA-1 test secret. */
static const char RFC_SECRET[] = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

static void test_totp_rfc6238(void)
{
    static const struct {
        time_t t;
        const char *code;
    } vec[] = {
        {59, "287082"},         {1111111109, "081804"}, {1111111111, "050471"},
        {1234567890, "005924"}, {2000000000, "279037"}, {20000000000, "353130"},
    };
    for (size_t i = 0; i < sizeof vec / sizeof vec[0]; i++) {
        int64_t step = -1;
        wd_status st = wd_totp_verify(RFC_SECRET, vec[i].code, vec[i].t, 0, -1, &step);
        if (st != WD_OK)
            fprintf(stderr, "\n  T=%lld: %s\n", (long long)vec[i].t, wd_err_msg());
        CU_ASSERT_EQUAL(st, WD_OK);
        CU_ASSERT_EQUAL(step, (int64_t)vec[i].t / 30);
    }
    /* Lowercase and spaced secrets decode the same. */
    CU_ASSERT_EQUAL(
        wd_totp_verify("gezd gnbv gy3t qojq gezd gnbv gy3t qojq", "287082", 59, 0, -1, NULL),
        WD_OK);
}

static void test_totp_window_and_replay(void)
{
    int64_t step = -1;
    /* 287082 is the code for step 1 (T in 30..59). */
    CU_ASSERT_EQUAL(wd_totp_verify(RFC_SECRET, "287082", 89, 1, -1, &step), WD_OK);
    CU_ASSERT_EQUAL(step, 1);
    CU_ASSERT_EQUAL(wd_totp_verify(RFC_SECRET, "287082", 89, 0, -1, &step), WD_ERR_DENIED);
    CU_ASSERT_EQUAL(wd_totp_verify(RFC_SECRET, "287082", 0, 1, -1, &step), WD_OK);
    /* T=120 is step 4: step 1 is three steps back. */
    CU_ASSERT_EQUAL(wd_totp_verify(RFC_SECRET, "287082", 120, 2, -1, &step), WD_ERR_DENIED);
    CU_ASSERT_EQUAL(wd_totp_verify(RFC_SECRET, "287082", 120, 3, -1, &step), WD_OK);
    CU_ASSERT_EQUAL(step, 1);

    /* Replay: the same step again is refused, also within the window. */
    step = -1;
    CU_ASSERT_EQUAL_FATAL(wd_totp_verify(RFC_SECRET, "287082", 59, 1, -1, &step), WD_OK);
    CU_ASSERT_EQUAL(wd_totp_verify(RFC_SECRET, "287082", 59, 1, step, &step), WD_ERR_DENIED);
    CU_ASSERT_PTR_NOT_NULL(strstr(wd_err_msg(), "already used"));
    CU_ASSERT_EQUAL(wd_totp_verify(RFC_SECRET, "287082", 65, 1, 1, NULL), WD_ERR_DENIED);
    CU_ASSERT_EQUAL(wd_totp_verify(RFC_SECRET, "287082", 59, 1, 5, NULL), WD_ERR_DENIED);

    /* Format. */
    const char *bad[] = {"28708", "2870820", "28708a", " 287082", "", "-87082", "+87082"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CU_ASSERT_EQUAL(wd_totp_verify(RFC_SECRET, bad[i], 59, 1, -1, NULL), WD_ERR_DENIED);
    CU_ASSERT_EQUAL(wd_totp_verify(RFC_SECRET, NULL, 59, 1, -1, NULL), WD_ERR_DENIED);
    CU_ASSERT_EQUAL(wd_totp_verify(RFC_SECRET, "000000", 59, 1, -1, NULL), WD_ERR_DENIED);
    CU_ASSERT_EQUAL(wd_totp_verify("not base32!", "287082", 59, 1, -1, NULL), WD_ERR_INVALID);
    CU_ASSERT_EQUAL(wd_totp_verify("", "287082", 59, 1, -1, NULL), WD_ERR_INVALID);
    CU_ASSERT_EQUAL(wd_totp_verify(RFC_SECRET, "287082", 59, -1, -1, NULL), WD_ERR_INVALID);
    CU_ASSERT_EQUAL(wd_totp_verify(RFC_SECRET, "287082", 59, 11, -1, NULL), WD_ERR_INVALID);
}

static void test_totp_secret_and_uri(void)
{
    char s1[40], s2[40], uri[512];
    CU_ASSERT_EQUAL_FATAL(wd_totp_secret_new(s1, sizeof s1), WD_OK);
    CU_ASSERT_EQUAL_FATAL(wd_totp_secret_new(s2, sizeof s2), WD_OK);
    CU_ASSERT_EQUAL(strlen(s1), WD_TOTP_SECRET_B32_LEN);
    CU_ASSERT_EQUAL(strspn(s1, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"), WD_TOTP_SECRET_B32_LEN);
    CU_ASSERT_NOT_EQUAL(strcmp(s1, s2), 0);
    CU_ASSERT_EQUAL(wd_totp_secret_new(s1, WD_TOTP_SECRET_B32_LEN), WD_ERR_INVALID);

    CU_ASSERT_EQUAL_FATAL(
        wd_totp_uri("Warden Panel", "alice@example.com", RFC_SECRET, uri, sizeof uri), WD_OK);
    CU_ASSERT_STRING_EQUAL(uri, "otpauth://totp/Warden%20Panel:alice%40example.com?secret="
                                "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Warden%20Panel"
                                "&algorithm=SHA1&digits=6&period=30");
    CU_ASSERT_EQUAL(wd_totp_uri("a&b=c", "x:y/z?", RFC_SECRET, uri, sizeof uri), WD_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(uri, "totp/a%26b%3Dc:x%3Ay%2Fz%3F?"));
    CU_ASSERT_EQUAL(wd_totp_uri("W", "a", RFC_SECRET, uri, 40), WD_ERR_INVALID);
    CU_ASSERT_EQUAL(wd_totp_uri("", "a", RFC_SECRET, uri, sizeof uri), WD_ERR_INVALID);
    CU_ASSERT_EQUAL(wd_totp_uri("W", "a", "bad!", uri, sizeof uri), WD_ERR_INVALID);
}

static void test_recovery_codes(void)
{
    char codes[10][WD_RECOVERY_CODE_SIZE], norm[WD_RECOVERY_CODE_SIZE];
    CU_ASSERT_EQUAL_FATAL(wd_recovery_codes_new(10, codes), WD_OK);
    for (int i = 0; i < 10; i++) {
        CU_ASSERT_EQUAL(strlen(codes[i]), WD_RECOVERY_CODE_LEN);
        CU_ASSERT_EQUAL(codes[i][4], '-');
        CU_ASSERT_EQUAL(strspn(codes[i], "0123456789abcdefghjkmnpqrstvwxyz-"), 9);
        for (int j = 0; j < i; j++)
            CU_ASSERT_NOT_EQUAL(strcmp(codes[i], codes[j]), 0);
        CU_ASSERT_EQUAL(wd_recovery_code_normalize(codes[i], norm), WD_OK);
        CU_ASSERT_STRING_EQUAL(norm, codes[i]);
    }
    CU_ASSERT_EQUAL(wd_recovery_code_normalize(" AB12 CD34 ", norm), WD_OK);
    CU_ASSERT_STRING_EQUAL(norm, "ab12-cd34");
    CU_ASSERT_EQUAL(wd_recovery_code_normalize("oIl0-abcd", norm), WD_OK);
    CU_ASSERT_STRING_EQUAL(norm, "0110-abcd");
    CU_ASSERT_EQUAL(wd_recovery_code_normalize("abcd-efg", norm), WD_ERR_DENIED);
    CU_ASSERT_EQUAL(wd_recovery_code_normalize("abcd-efghj", norm), WD_ERR_DENIED);
    CU_ASSERT_EQUAL(wd_recovery_code_normalize("abcd-efgu", norm), WD_ERR_DENIED);
    CU_ASSERT_EQUAL(wd_recovery_codes_new(0, codes), WD_ERR_INVALID);

    /* Stored as token hashes. */
    char h1[65], h2[65];
    CU_ASSERT_EQUAL(wd_token_hash(codes[0], h1), WD_OK);
    CU_ASSERT_EQUAL(wd_recovery_code_normalize(codes[0], norm), WD_OK);
    CU_ASSERT_EQUAL(wd_token_hash(norm, h2), WD_OK);
    CU_ASSERT_TRUE(wd_token_equal_ct(h1, h2));
}

/* ------------------------------------------------------------------------ */
/* Secretbox                                                                */
/* ------------------------------------------------------------------------ */

static wd_secretbox *load_box(const char *spec)
{
    wd_secretbox *box = NULL;
    wd_status st = wd_secretbox_load(spec, &box);
    if (st != WD_OK)
        fprintf(stderr, "\n  load: %s\n", wd_err_msg());
    CU_ASSERT_EQUAL_FATAL(st, WD_OK);
    return box;
}

static void test_secretbox_round_trip(void)
{
    char l1[WD_SECRETBOX_KEY_LINE_MAX], spec[256];
    CU_ASSERT_EQUAL_FATAL(wd_secretbox_generate_key_line("k2026", l1, sizeof l1), WD_OK);
    CU_ASSERT_EQUAL(strncmp(l1, "k2026:", 6), 0);
    CU_ASSERT_EQUAL(strlen(l1), 6 + 44);
    snprintf(spec, sizeof spec, "# warden secretbox keys\n\n  %s  # active\n", l1);
    wd_secretbox *box = load_box(spec);
    CU_ASSERT_STRING_EQUAL(wd_secretbox_active_kid(box), "k2026");

    const char *msg = "node token 7f3a";
    char *sealed = NULL, *sealed2 = NULL;
    void *plain = NULL;
    size_t len = 0;
    CU_ASSERT_EQUAL_FATAL(wd_secretbox_seal(box, msg, strlen(msg), "nodes.token:42", &sealed),
                          WD_OK);
    CU_ASSERT_EQUAL(strncmp(sealed, "wdsb1.k2026.", 12), 0);
    CU_ASSERT_PTR_NULL(strstr(sealed, msg));
    CU_ASSERT_EQUAL_FATAL(wd_secretbox_open(box, sealed, "nodes.token:42", &plain, &len), WD_OK);
    CU_ASSERT_EQUAL(len, strlen(msg));
    CU_ASSERT_STRING_EQUAL(plain, msg);
    free(plain);
    /* Random nonce: sealing twice differs. */
    CU_ASSERT_EQUAL_FATAL(wd_secretbox_seal(box, msg, strlen(msg), "nodes.token:42", &sealed2),
                          WD_OK);
    CU_ASSERT_NOT_EQUAL(strcmp(sealed, sealed2), 0);
    free(sealed2);

    /* Wrong aad: the value was moved to another row. */
    CU_ASSERT_EQUAL(wd_secretbox_open(box, sealed, "nodes.token:43", &plain, &len), WD_ERR_DENIED);
    CU_ASSERT_PTR_NULL(plain);
    CU_ASSERT_EQUAL(wd_secretbox_open(box, sealed, NULL, &plain, &len), WD_ERR_DENIED);
    free(sealed);

    /* Empty plaintext and NULL aad (same as ""). */
    CU_ASSERT_EQUAL_FATAL(wd_secretbox_seal(box, NULL, 0, NULL, &sealed), WD_OK);
    CU_ASSERT_EQUAL(wd_secretbox_open(box, sealed, "", &plain, &len), WD_OK);
    CU_ASSERT_EQUAL(len, 0);
    free(plain);
    free(sealed);

    /* Binary data. */
    uint8_t bin[300];
    for (size_t i = 0; i < sizeof bin; i++)
        bin[i] = (uint8_t)(i * 7);
    CU_ASSERT_EQUAL_FATAL(wd_secretbox_seal(box, bin, sizeof bin, "b", &sealed), WD_OK);
    CU_ASSERT_EQUAL_FATAL(wd_secretbox_open(box, sealed, "b", &plain, &len), WD_OK);
    CU_ASSERT_EQUAL(len, sizeof bin);
    CU_ASSERT_EQUAL(memcmp(plain, bin, sizeof bin), 0);
    free(plain);
    free(sealed);
    wd_secretbox_destroy(&box);
    CU_ASSERT_PTR_NULL(box);
    wd_secretbox_destroy(&box);
}

static void test_secretbox_tamper(void)
{
    char l1[WD_SECRETBOX_KEY_LINE_MAX];
    CU_ASSERT_EQUAL_FATAL(wd_secretbox_generate_key_line("k1", l1, sizeof l1), WD_OK);
    wd_secretbox *box = load_box(l1);
    char *sealed = NULL;
    void *plain = NULL;
    size_t len = 0;
    const char *msg = "0123456789abcdef0123"; /* 20 bytes */
    CU_ASSERT_EQUAL_FATAL(wd_secretbox_seal(box, msg, strlen(msg), "row:1", &sealed), WD_OK);

    /* Decode the body and flip each bit-carrying byte in turn: nonce
     * (0..11), ciphertext (12..31) and tag (32..47). */
    const char *body = sealed + strlen("wdsb1.k1.");
    uint8_t raw[64];
    size_t rawlen = 0;
    CU_ASSERT_EQUAL_FATAL(wd_base64_url_decode(body, strlen(body), raw, sizeof raw, &rawlen),
                          WD_OK);
    CU_ASSERT_EQUAL_FATAL(rawlen, 12 + 20 + 16);
    for (size_t i = 0; i < rawlen; i++) {
        uint8_t bad[64];
        char text[200];
        memcpy(bad, raw, rawlen);
        bad[i] ^= 0x01;
        int hl = snprintf(text, sizeof text, "wdsb1.k1.");
        CU_ASSERT_EQUAL_FATAL(
            wd_base64_url_encode(bad, rawlen, text + hl, sizeof text - (size_t)hl), WD_OK);
        if (wd_secretbox_open(box, text, "row:1", &plain, &len) != WD_ERR_DENIED) {
            fprintf(stderr, "\n  flip of byte %zu accepted\n", i);
            CU_FAIL("tampered secretbox accepted");
            free(plain);
        }
    }
    /* Truncated and extended bodies. */
    char text[200];
    snprintf(text, sizeof text, "%.*s", (int)strlen(sealed) - 4, sealed);
    CU_ASSERT_EQUAL(wd_secretbox_open(box, text, "row:1", &plain, &len), WD_ERR_DENIED);
    snprintf(text, sizeof text, "%sAAAA", sealed);
    CU_ASSERT_EQUAL(wd_secretbox_open(box, text, "row:1", &plain, &len), WD_ERR_DENIED);
    /* Header: version, kid. */
    snprintf(text, sizeof text, "wdsb2.%s", sealed + 6);
    CU_ASSERT_EQUAL(wd_secretbox_open(box, text, "row:1", &plain, &len), WD_ERR_DENIED);
    snprintf(text, sizeof text, "wdsb1.k9.%s", body);
    CU_ASSERT_EQUAL(wd_secretbox_open(box, text, "row:1", &plain, &len), WD_ERR_DENIED);
    CU_ASSERT_PTR_NOT_NULL(strstr(wd_err_msg(), "unknown key"));
    /* Garbage. */
    const char *junk[] = {
        "", "wdsb1.", "wdsb1.k1", "wdsb1.k1.", "wdsb1.k1.!!!!", "wdsb1..AAAA", "plain text"};
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++)
        CU_ASSERT_EQUAL(wd_secretbox_open(box, junk[i], "row:1", &plain, &len), WD_ERR_DENIED);
    CU_ASSERT_EQUAL(wd_secretbox_open(box, NULL, "row:1", &plain, &len), WD_ERR_DENIED);
    CU_ASSERT_EQUAL(wd_secretbox_open(box, sealed, "row:1", &plain, &len), WD_OK);
    free(plain);
    free(sealed);
    wd_secretbox_destroy(&box);
}

static void test_secretbox_rotation(void)
{
    char old[WD_SECRETBOX_KEY_LINE_MAX], new[WD_SECRETBOX_KEY_LINE_MAX], spec[256];
    CU_ASSERT_EQUAL_FATAL(wd_secretbox_generate_key_line("old", old, sizeof old), WD_OK);
    CU_ASSERT_EQUAL_FATAL(wd_secretbox_generate_key_line("new", new, sizeof new), WD_OK);
    wd_secretbox *b1 = load_box(old);
    char *s_old = NULL, *s_new = NULL;
    void *plain = NULL;
    size_t len = 0;
    CU_ASSERT_EQUAL_FATAL(wd_secretbox_seal(b1, "v1", 2, "r", &s_old), WD_OK);

    snprintf(spec, sizeof spec, "%s\n%s\n", new, old);
    wd_secretbox *b2 = load_box(spec);
    CU_ASSERT_STRING_EQUAL(wd_secretbox_active_kid(b2), "new");
    CU_ASSERT_EQUAL_FATAL(wd_secretbox_seal(b2, "v2", 2, "r", &s_new), WD_OK);
    CU_ASSERT_EQUAL(strncmp(s_new, "wdsb1.new.", 10), 0);
    CU_ASSERT_EQUAL(wd_secretbox_open(b2, s_old, "r", &plain, &len), WD_OK);
    CU_ASSERT_STRING_EQUAL(plain, "v1");
    free(plain);
    CU_ASSERT_EQUAL(wd_secretbox_open(b2, s_new, "r", &plain, &len), WD_OK);
    CU_ASSERT_STRING_EQUAL(plain, "v2");
    free(plain);
    /* The old box does not know the new key. */
    CU_ASSERT_EQUAL(wd_secretbox_open(b1, s_new, "r", &plain, &len), WD_ERR_DENIED);

    /* A different key under the same kid does not open. */
    char imposter[WD_SECRETBOX_KEY_LINE_MAX];
    CU_ASSERT_EQUAL_FATAL(wd_secretbox_generate_key_line("old", imposter, sizeof imposter), WD_OK);
    wd_secretbox *b3 = load_box(imposter);
    CU_ASSERT_EQUAL(wd_secretbox_open(b3, s_old, "r", &plain, &len), WD_ERR_DENIED);

    free(s_old);
    free(s_new);
    wd_secretbox_destroy(&b1);
    wd_secretbox_destroy(&b2);
    wd_secretbox_destroy(&b3);
}

static void test_secretbox_load_errors(void)
{
    char l1[WD_SECRETBOX_KEY_LINE_MAX], spec[256];
    CU_ASSERT_EQUAL_FATAL(wd_secretbox_generate_key_line("a", l1, sizeof l1), WD_OK);
    const char *bad[] = {
        "",
        "# only a comment\n\n",
        "nokey",
        "a:",
        "a:c2hvcnQ=",                                     /* 5 bytes */
        "a:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", /* not padded right */
        "a.b:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        ":AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        wd_secretbox *box = NULL;
        CU_ASSERT_EQUAL(wd_secretbox_load(bad[i], &box), WD_ERR_INVALID);
        CU_ASSERT_PTR_NULL(box);
    }
    /* The 32-byte key line of zeros is fine, and comments do not leak. */
    wd_secretbox *box = NULL;
    CU_ASSERT_EQUAL(wd_secretbox_load("z:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", &box),
                    WD_OK);
    wd_secretbox_destroy(&box);
    snprintf(spec, sizeof spec, "%s\n%s\n", l1, l1);
    CU_ASSERT_EQUAL(wd_secretbox_load(spec, &box), WD_ERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(wd_err_msg(), "duplicate"));
    CU_ASSERT_PTR_NULL(strstr(wd_err_msg(), l1 + 2)); /* no key material */
    snprintf(spec, sizeof spec, "%s\nb:###\n", l1);
    CU_ASSERT_EQUAL(wd_secretbox_load(spec, &box), WD_ERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(wd_err_msg(), "line 2"));
    CU_ASSERT_EQUAL(wd_secretbox_generate_key_line("bad kid", l1, sizeof l1), WD_ERR_INVALID);
    CU_ASSERT_EQUAL(wd_secretbox_generate_key_line("a.b", l1, sizeof l1), WD_ERR_INVALID);
    CU_ASSERT_EQUAL(wd_secretbox_generate_key_line("a", l1, 10), WD_ERR_INVALID);
}

int main(void)
{
    static const wd_h_case password[] = {
        {"round trip (cost 4)", test_password_round_trip},
        {"72-byte and empty limits", test_password_limits},
        {"malformed hashes, rehash", test_password_malformed_and_rehash},
        {"dummy verify", test_password_dummy},
        {NULL, NULL},
    };
    static const wd_h_case jwt[] = {
        {"round trip", test_jwt_round_trip},
        {"forged baseline is valid", test_jwt_forged_baseline},
        {"alg none", test_jwt_alg_none},
        {"HS384/HS512/RS256/duplicate alg", test_jwt_alg_swaps},
        {"other key, tampering", test_jwt_wrong_key_and_tamper},
        {"exp, nbf, required claims", test_jwt_times},
        {"iss and aud", test_jwt_iss_aud},
        {"kid", test_jwt_kid},
        {"garbage and size limit", test_jwt_garbage},
        {"keyring rotation", test_jwt_keyring_rotation},
        {"concurrent verify", test_jwt_threads},
        {NULL, NULL},
    };
    static const wd_h_case token[] = {
        {"opaque tokens", test_token},
        {"strict base64", test_base64_strict},
        {NULL, NULL},
    };
    static const wd_h_case totp[] = {
        {"RFC 6238 vectors", test_totp_rfc6238},
        {"window and replay", test_totp_window_and_replay},
        {"secret and otpauth uri", test_totp_secret_and_uri},
        {"recovery codes", test_recovery_codes},
        {NULL, NULL},
    };
    static const wd_h_case secretbox[] = {
        {"round trip, aad", test_secretbox_round_trip},
        {"tamper every byte", test_secretbox_tamper},
        {"rotation", test_secretbox_rotation},
        {"key spec errors", test_secretbox_load_errors},
        {NULL, NULL},
    };
    wd_h_suite("crypto/password", NULL, NULL, password);
    wd_h_suite("crypto/jwt", NULL, NULL, jwt);
    wd_h_suite("crypto/token", NULL, NULL, token);
    wd_h_suite("crypto/totp", NULL, NULL, totp);
    wd_h_suite("crypto/secretbox", NULL, NULL, secretbox);
    return wd_h_run();
}
