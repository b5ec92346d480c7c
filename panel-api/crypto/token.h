/* Opaque bearer tokens: refresh tokens, API keys, invitation and reset
 * links. A token is a short prefix naming its kind (e.g. "wdr_", "wdk_")
 * followed by base64url of 32 random bytes (256 bits). Only the SHA-256 of
 * a token is stored; lookups hash the presented token and compare hashes.
 *
 * All functions are thread-safe and keep no state; the caller owns every
 * buffer. */
#ifndef WD_TOKEN_H
#define WD_TOKEN_H

#include <stdbool.h>
#include <stddef.h>

#include "status.h"

#define WD_TOKEN_RANDOM_BYTES 32
#define WD_TOKEN_BODY_LEN 43 /* base64url of 32 bytes, no padding */
#define WD_TOKEN_PREFIX_MAX 16
#define WD_TOKEN_HASH_HEX_LEN 64

/* out = prefix + base64url(32 random bytes). prefix may be "" or NULL, at
 * most WD_TOKEN_PREFIX_MAX characters of [A-Za-z0-9_-]. outlen must hold
 * strlen(prefix) + 43 + 1. WD_ERR_INVALID on a bad prefix or a short buffer,
 * WD_ERR_INTERNAL if the system random generator fails. */
wd_status wd_token_new(const char *prefix, char *out, size_t outlen);

/* SHA-256 of the token text as 64 lowercase hex digits + NUL. */
wd_status wd_token_hash(const char *token, char hex[WD_TOKEN_HASH_HEX_LEN + 1]);

/* True when the strings are equal. The time taken depends only on the
 * length of a, never on where the strings differ (pass the secret known to
 * the server, e.g. the stored hash, as a). NULL never equals anything. */
bool wd_token_equal_ct(const char *a, const char *b);

#endif
