/* The gateway token: a short-lived ES256 JWT that lets one browser open a
 * live channel to one server, with that user's permissions on it.
 *
 * warden-api issues it (GET /api/v1/servers/{id}/websocket) with the
 * private key; every warden-ws instance verifies it locally with the public
 * key, without a database round trip. Claims (docs/websocket.md):
 *
 *   header  alg "ES256", typ "JWT", kid = first 16 hex digits of the
 *           SHA-256 of the public key (DER SubjectPublicKeyInfo)
 *   iss "warden-api"  aud "warden-ws"  sub user id  sid session id
 *   srv server id     node node id     perms ["control.console", ...]
 *   iat, nbf (optional), exp
 *
 * Verification never trusts the token's header: alg must be exactly ES256
 * (checked before libjwt sees the token: libjwt 1.10.2 takes the algorithm
 * from the header and accepts algorithm confusion), the key is chosen by
 * kid from the keys we hold, the signature is checked with OpenSSL here and
 * again by libjwt, and exp/nbf/iss/aud are checked here because libjwt
 * does not.
 *
 * Thread-safety: a wd_wstoken_keys set is immutable after loading; issue
 * and verify may run on any thread at once. */
#ifndef WD_WSTOKEN_H
#define WD_WSTOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "jwtclaims.h"
#include "status.h"

#define WD_WSTOKEN_MAX WD_JWT_TOKEN_MAX /* longer tokens are refused unread */
#define WD_WSTOKEN_ISS "warden-api"
#define WD_WSTOKEN_AUD "warden-ws"
#define WD_WSTOKEN_MAX_PERMS 48
#define WD_WSTOKEN_PERM_MAX 40 /* bytes of one permission string, NUL included */
#define WD_WSTOKEN_MAX_KEYS 8
#define WD_WSTOKEN_SKEW 30 /* seconds tolerated for nbf / iat in the future */
#define WD_WSTOKEN_TTL_DEFAULT 600

/* Claims by value; strings are NUL-terminated, "" when absent. */
typedef struct {
    char sub[64];  /* user id (required) */
    char sid[64];  /* session id (may be empty: API-key access) */
    char srv[64];  /* server id (required) */
    char node[64]; /* node id the server lives on (required) */
    char iss[64];
    char aud[64];
    char perms[WD_WSTOKEN_MAX_PERMS][WD_WSTOKEN_PERM_MAX];
    size_t nperms;
    int64_t iat, nbf, exp; /* Unix seconds; 0 when absent; exp required */
} wd_wstoken_claims;

typedef struct wd_wstoken_keys wd_wstoken_keys;

/* Loads keys from PEM text. priv_pem (may be NULL for a verify-only set)
 * is an EC P-256 private key used to issue; pub_pems is a list of n EC
 * P-256 public keys accepted for verification (the private key's own
 * public half is always accepted too). Several public keys allow key
 * rotation. *out is freed with wd_wstoken_keys_destroy. */
wd_status wd_wstoken_keys_from_pem(wd_wstoken_keys **out, const char *priv_pem,
                                   const char *const *pub_pems, size_t n);
/* The same from files; pub_paths is a comma-separated list (may be NULL). */
wd_status wd_wstoken_keys_load(wd_wstoken_keys **out, const char *priv_path, const char *pub_paths);
void wd_wstoken_keys_destroy(wd_wstoken_keys **k);

/* A fresh P-256 key pair as PEM (PKCS#8 private, SubjectPublicKeyInfo
 * public); heap strings the caller frees. */
wd_status wd_wstoken_keygen(char **priv_pem, char **pub_pem);

/* Signs c with the private key. sub, srv, node and exp are required; iss and
 * aud default to WD_WSTOKEN_ISS / WD_WSTOKEN_AUD when empty. *token is a heap
 * string the caller frees. WD_ERR_STATE without a private key. */
wd_status wd_wstoken_issue(const wd_wstoken_keys *k, const wd_wstoken_claims *c, char **token);

/* Verifies token at time now: signature, alg ES256, iss "warden-api", aud
 * "warden-ws", exp, nbf, and the claims' shapes. Every rejection is
 * WD_ERR_DENIED with a message "token expired" or "invalid token: <why>";
 * *c is zeroed on failure. */
wd_status wd_wstoken_verify(const wd_wstoken_keys *k, const char *token, time_t now,
                            wd_wstoken_claims *c);

/* True if the claims grant perm: an exact grant, its group ("control.*")
 * or "*" (the same rules as the API's permission strings). */
bool wd_wstoken_allows(const wd_wstoken_claims *c, const char *perm);

#endif
