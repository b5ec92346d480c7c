/* Access tokens: short-lived HS256 JWTs signed with a rotating keyring.
 *
 * Every token carries its key id in the header ("kid"). Rotation: add the
 * new key, make it active (new tokens use it), and remove the old key once
 * the longest-lived token signed with it has expired; until then both
 * verify.
 *
 * Verification never trusts the token's header: the algorithm must be
 * exactly HS256 (alg "none", HS384, RS256... are refused before libjwt sees
 * the token, see docs in LIBRARIES.md on libjwt's algorithm confusion), the
 * key comes from our keyring by kid, and exp/nbf/iss/aud/sub are checked
 * here because libjwt does not.
 *
 * Thread-safety: a keyring may be used from any thread; issue/verify take a
 * read lock, add/set_active/remove a write lock. */
#ifndef WD_JWT_H
#define WD_JWT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "jwtclaims.h"
#include "status.h"

#define WD_JWT_MAX_TOKEN WD_JWT_TOKEN_MAX /* longer tokens are refused unread */
#define WD_JWT_SECRET_MIN 32
#define WD_JWT_SECRET_MAX 256
#define WD_JWT_KID_MAX 64 /* characters of [A-Za-z0-9._-] */
#define WD_JWT_MAX_KEYS 16
#define WD_JWT_NBF_SKEW 30 /* seconds of clock skew tolerated for nbf/iat */

typedef struct wd_jwt_keyring wd_jwt_keyring;

/* Token claims by value; strings are NUL-terminated and "" when absent,
 * times are Unix seconds and 0 when absent. */
typedef struct {
    char sub[64]; /* user id (required) */
    char sid[64]; /* session / refresh-token family id */
    char role[32];
    char scope[512]; /* space separated; may be empty (API keys) */
    char iss[128];
    char aud[128];
    int64_t iat;
    int64_t nbf;
    int64_t exp; /* required */
} wd_jwt_claims;

/* Creates an empty keyring; destroy with wd_jwt_keyring_destroy. */
wd_status wd_jwt_keyring_create(wd_jwt_keyring **out);
/* NULL-safe; wipes the secrets and sets *kr to NULL. */
void wd_jwt_keyring_destroy(wd_jwt_keyring **kr);
/* Copies the secret (WD_JWT_SECRET_MIN..MAX bytes) under kid. The first key
 * added becomes active. WD_ERR_EXISTS for a known kid, WD_ERR_FULL past
 * WD_JWT_MAX_KEYS, WD_ERR_INVALID for a bad kid or secret length. */
wd_status wd_jwt_keyring_add(wd_jwt_keyring *kr, const char *kid, const void *secret, size_t len);
/* New tokens are signed with kid. WD_ERR_NOT_FOUND if unknown. */
wd_status wd_jwt_keyring_set_active(wd_jwt_keyring *kr, const char *kid);
/* Forgets kid; tokens signed with it stop verifying. WD_ERR_STATE for the
 * active key, WD_ERR_NOT_FOUND if unknown. */
wd_status wd_jwt_keyring_remove(wd_jwt_keyring *kr, const char *kid);

/* Signs claims with the active key. sub and exp are required; empty strings
 * and zero times are left out of the token. *token is a heap string the
 * caller frees with free(). WD_ERR_STATE when the keyring has no key. */
wd_status wd_jwt_issue(wd_jwt_keyring *kr, const wd_jwt_claims *claims, char **token);

/* Verifies token at time now against expected_iss and expected_aud (NULL
 * skips that check; do not skip in production) and fills *claims. Every
 * rejection is WD_ERR_DENIED with a message starting "token expired" or
 * "invalid token: <reason>"; *claims is zeroed on failure. */
wd_status wd_jwt_verify(wd_jwt_keyring *kr, const char *token, time_t now, const char *expected_iss,
                        const char *expected_aud, wd_jwt_claims *claims);

#endif
