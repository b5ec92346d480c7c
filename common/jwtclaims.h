/* The checks every JWT we verify goes through (access tokens, gateway
 * tokens), done the same strict way: the compact form's shape, the header
 * (read by us before any key or libjwt is involved), and the claims.
 * Pure functions; thread-safe. */
#ifndef WD_JWTCLAIMS_H
#define WD_JWTCLAIMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* Longest token any verifier here reads; longer ones are refused unread. */
#define WD_JWT_TOKEN_MAX 4096

/* Decodes one base64url part (header or payload, s[0..len)) of a token no
 * longer than WD_JWT_TOKEN_MAX into a JSON object, duplicate keys refused.
 * NULL when it is not base64url, not JSON, or not an object. */
json_t *wd_jwt_part(const char *s, size_t len);

/* Finds the two dots of "header.payload.signature" in token[0..len):
 * false unless there are exactly two. */
bool wd_jwt_split(const char *token, size_t len, const char **dot1, const char **dot2);
/* NULL when the decoded header says alg (exactly), typ "JWT" or none, and
 * no "crit"; else why not, as "invalid token: ..." text. */
const char *wd_jwt_header_problem(json_t *header, const char *alg);

/* Copies string claim name into dst (cap bytes). Absent: dst "" and true
 * unless required. False when present but not a string, too long, holding
 * a NUL, or (required) empty. */
bool wd_claim_str(json_t *payload, const char *name, char *dst, size_t cap, bool required);
/* A NumericDate claim (Unix seconds > 0) into *dst; absent: 0 and true. */
bool wd_claim_time(json_t *payload, const char *name, int64_t *dst);
/* aud may be a string or an array of strings (RFC 7519 section 4.1.3). */
bool wd_claim_aud_matches(json_t *aud, const char *want);

#endif
