/* Minting NATS JWTs (see natsjwt.h). Claims are built with jansson, the
 * jti is computed over the claims without it, as nats-io/jwt does, and the
 * token is signed with nkeys.c. nats-server checks the signature, the
 * issuer's place in the chain and the "nats" type and version; it does not
 * recompute the jti, but a deterministic content hash keeps our tokens
 * interchangeable with the Go tooling's (nsc, nats CLI). */
#include "natsjwt.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "base64.h"
#include "nkeys.h"

static const char HEADER[] = "{\"typ\":\"JWT\",\"alg\":\"ed25519-nkey\"}";

static wd_status claims_hash(json_t *claims, char *jti, size_t jtilen)
{
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    char *text = json_dumps(claims, JSON_COMPACT);
    if (!text)
        return WD_ERR(WD_ERR_NOMEM, "natsjwt: claims encoding failed");
    int ok = EVP_Digest(text, strlen(text), md, &mdlen, EVP_sha512_256(), NULL);
    free(text);
    if (ok != 1)
        return WD_ERR(WD_ERR_INTERNAL, "natsjwt: SHA-512/256 failed");
    return wd_nkey_base32_encode(md, mdlen, jti, jtilen);
}

/* Takes ownership of nats. Builds the common claims, adds the jti, and
 * signs header.payload with issuer_seed. */
static wd_status mint(const char *issuer_seed, const char *sub, const char *name, int64_t exp,
                      json_t *nats, char **out)
{
    char iss[WD_NKEY_PUB_SIZE], jti[64];
    char *payload_json = NULL, *tok = NULL;
    uint8_t sig[WD_NKEY_SIG_BYTES];
    wd_status st = WD_OK;
    json_t *claims = NULL;

    *out = NULL;
    if (!nats) {
        st = WD_ERR(WD_ERR_NOMEM, "natsjwt: out of memory");
        goto out;
    }
    if ((st = wd_nkey_public_from_seed(issuer_seed, iss)) != WD_OK)
        goto out;
    claims = json_pack("{s:I, s:s, s:s, s:s}", "iat", (json_int_t)time(NULL), "iss", iss, "name",
                       name ? name : "", "sub", sub);
    if (claims && exp > 0 && json_object_set_new(claims, "exp", json_integer(exp)) != 0) {
        json_decref(claims);
        claims = NULL;
    }
    if (!claims || json_object_set(claims, "nats", nats) != 0) {
        st = WD_ERR(WD_ERR_NOMEM, "natsjwt: out of memory");
        goto out;
    }
    if ((st = claims_hash(claims, jti, sizeof jti)) != WD_OK)
        goto out;
    if (json_object_set_new(claims, "jti", json_string(jti)) != 0 ||
        !(payload_json = json_dumps(claims, JSON_COMPACT))) {
        st = WD_ERR(WD_ERR_NOMEM, "natsjwt: out of memory");
        goto out;
    }

    size_t hlen = WD_BASE64_URL_LEN(sizeof HEADER - 1);
    size_t plen = WD_BASE64_URL_LEN(strlen(payload_json));
    size_t slen = WD_BASE64_URL_LEN(sizeof sig);
    size_t cap = hlen + 1 + plen + 1 + slen + 1;
    if (!(tok = malloc(cap))) {
        st = WD_ERR(WD_ERR_NOMEM, "natsjwt: out of memory");
        goto out;
    }
    if ((st = wd_base64_url_encode(HEADER, sizeof HEADER - 1, tok, cap)) != WD_OK)
        goto out;
    tok[hlen] = '.';
    if ((st = wd_base64_url_encode(payload_json, strlen(payload_json), tok + hlen + 1,
                                   cap - hlen - 1)) != WD_OK)
        goto out;
    if ((st = wd_nkey_sign(issuer_seed, tok, hlen + 1 + plen, sig)) != WD_OK)
        goto out;
    tok[hlen + 1 + plen] = '.';
    st =
        wd_base64_url_encode(sig, sizeof sig, tok + hlen + 1 + plen + 1, cap - hlen - 1 - plen - 1);
out:
    if (st == WD_OK) {
        *out = tok;
        tok = NULL;
    }
    free(tok);
    free(payload_json);
    json_decref(claims);
    json_decref(nats);
    return st;
}

static wd_status want_type(const char *key, wd_nkey_type want, const char *what)
{
    wd_nkey_type t;
    if (wd_nkey_type_of(key, &t) != WD_OK || t != want)
        return WD_ERR(WD_ERR_INVALID, "natsjwt: %s is not a valid %s key", what,
                      want == WD_NKEY_OPERATOR  ? "operator"
                      : want == WD_NKEY_ACCOUNT ? "account"
                                                : "user");
    return WD_OK;
}

wd_status wd_natsjwt_operator(const char *operator_seed, const char *name,
                              const char *system_account_pub, char **out)
{
    char pub[WD_NKEY_PUB_SIZE];
    wd_status st;
    *out = NULL;
    if ((st = want_type(operator_seed, WD_NKEY_OPERATOR, "operator seed")) != WD_OK ||
        (st = wd_nkey_public_from_seed(operator_seed, pub)) != WD_OK)
        return st;
    if (system_account_pub &&
        (st = want_type(system_account_pub, WD_NKEY_ACCOUNT, "system account")) != WD_OK)
        return st;
    json_t *nats = json_pack("{s:s, s:i}", "type", "operator", "version", 2);
    if (nats && system_account_pub)
        json_object_set_new(nats, "system_account", json_string(system_account_pub));
    return mint(operator_seed, pub, name, 0, nats, out);
}

static json_t *string_array(const char *const *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++) {
        if (!v[i] || !*v[i] || json_array_append_new(a, json_string(v[i])) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

static wd_status account_jwt(const char *operator_seed, const char *account_pub, const char *name,
                             const char *const *signing_keys, size_t n_signing, bool jetstream,
                             char **out)
{
    wd_status st;
    *out = NULL;
    if ((st = want_type(operator_seed, WD_NKEY_OPERATOR, "operator seed")) != WD_OK ||
        (st = want_type(account_pub, WD_NKEY_ACCOUNT, "account")) != WD_OK)
        return st;
    if (n_signing > 0 && !signing_keys)
        return WD_ERR(WD_ERR_INVALID, "natsjwt: missing signing keys");
    for (size_t i = 0; i < n_signing; i++)
        if ((st = want_type(signing_keys[i], WD_NKEY_ACCOUNT, "signing key")) != WD_OK)
            return st;
    /* nats-io/jwt v2 embeds the NATS, account and JetStream limits in one
     * flat "limits" object; -1 is unlimited, and non-zero JetStream storage
     * is what enables JetStream for the account (never for the system
     * account: nats-server refuses to start). */
    json_t *limits =
        json_pack("{s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:b}", "subs", -1, "conn", -1, "leaf", -1,
                  "imports", -1, "exports", -1, "data", -1, "payload", -1, "wildcards", 1);
    if (limits && jetstream &&
        (json_object_set_new(limits, "mem_storage", json_integer(-1)) != 0 ||
         json_object_set_new(limits, "disk_storage", json_integer(-1)) != 0 ||
         json_object_set_new(limits, "streams", json_integer(-1)) != 0 ||
         json_object_set_new(limits, "consumer", json_integer(-1)) != 0)) {
        json_decref(limits);
        limits = NULL;
    }
    json_t *nats = json_pack("{s:s, s:i, s:o}", "type", "account", "version", 2, "limits", limits);
    if (nats && n_signing > 0) {
        json_t *keys = string_array(signing_keys, n_signing);
        if (!keys || json_object_set_new(nats, "signing_keys", keys) != 0) {
            json_decref(nats);
            return WD_ERR(WD_ERR_NOMEM, "natsjwt: out of memory");
        }
    }
    return mint(operator_seed, account_pub, name, 0, nats, out);
}

wd_status wd_natsjwt_account(const char *operator_seed, const char *account_pub, const char *name,
                             const char *const *signing_keys, size_t n_signing, char **out)
{
    return account_jwt(operator_seed, account_pub, name, signing_keys, n_signing, true, out);
}

wd_status wd_natsjwt_system_account(const char *operator_seed, const char *account_pub, char **out)
{
    return account_jwt(operator_seed, account_pub, "SYS", NULL, 0, false, out);
}

/* {"allow":[...]} or, for an empty list, {"deny":[">"]}. */
static json_t *perm(const char *const *allow, size_t n)
{
    if (n == 0)
        return json_pack("{s:[s]}", "deny", ">");
    json_t *a = string_array(allow, n);
    return a ? json_pack("{s:o}", "allow", a) : NULL;
}

wd_status wd_natsjwt_user_ex(const char *signer_seed, const char *issuer_account,
                             const char *user_pub, const wd_natsjwt_user_spec *spec, char **out)
{
    wd_status st;
    *out = NULL;
    if ((st = want_type(signer_seed, WD_NKEY_ACCOUNT, "account seed")) != WD_OK ||
        (st = want_type(user_pub, WD_NKEY_USER, "user")) != WD_OK)
        return st;
    if (issuer_account &&
        (st = want_type(issuer_account, WD_NKEY_ACCOUNT, "issuer account")) != WD_OK)
        return st;
    if (!spec || (spec->n_pub && !spec->pub_allow) || (spec->n_sub && !spec->sub_allow))
        return WD_ERR(WD_ERR_INVALID, "natsjwt: missing permission list");
    if (spec->expires < 0)
        return WD_ERR(WD_ERR_INVALID, "natsjwt: negative expiry");
    json_t *p = perm(spec->pub_allow, spec->n_pub), *s = perm(spec->sub_allow, spec->n_sub);
    if (!p || !s) {
        json_decref(p);
        json_decref(s);
        return WD_ERR(WD_ERR_INVALID, "natsjwt: empty or unencodable subject in permissions");
    }
    json_t *nats = json_pack("{s:s, s:i, s:o, s:o, s:i, s:i, s:i}", "type", "user", "version", 2,
                             "pub", p, "sub", s, "subs", -1, "data", -1, "payload", -1);
    if (nats && issuer_account)
        json_object_set_new(nats, "issuer_account", json_string(issuer_account));
    /* nats-io/jwt's ResponsePermission: max messages per request and a
     * time.Duration in nanoseconds; 0 takes the server's default window. */
    if (nats && spec->allow_responses)
        json_object_set_new(nats, "resp", json_pack("{s:i, s:i}", "max", 1, "ttl", 0));
    return mint(signer_seed, user_pub, spec->name, spec->expires, nats, out);
}

wd_status wd_natsjwt_user(const char *account_seed, const char *user_pub, const char *name,
                          const char *const *pub_allow, size_t n_pub, const char *const *sub_allow,
                          size_t n_sub, char **out)
{
    wd_natsjwt_user_spec spec = {.name = name,
                                 .pub_allow = pub_allow,
                                 .n_pub = n_pub,
                                 .sub_allow = sub_allow,
                                 .n_sub = n_sub};
    return wd_natsjwt_user_ex(account_seed, NULL, user_pub, &spec, out);
}

wd_status wd_natsjwt_user_by_signer(const char *signer_seed, const char *issuer_account,
                                    const char *user_pub, const char *name,
                                    const char *const *pub_allow, size_t n_pub,
                                    const char *const *sub_allow, size_t n_sub, char **out)
{
    if (!issuer_account) {
        *out = NULL;
        return WD_ERR(WD_ERR_INVALID, "natsjwt: issuer account required");
    }
    wd_natsjwt_user_spec spec = {.name = name,
                                 .pub_allow = pub_allow,
                                 .n_pub = n_pub,
                                 .sub_allow = sub_allow,
                                 .n_sub = n_sub};
    return wd_natsjwt_user_ex(signer_seed, issuer_account, user_pub, &spec, out);
}
