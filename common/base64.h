/* Base64 for the crypto code (API and gateway): the URL-safe alphabet without padding
 * (RFC 4648 section 5, used in JWTs, opaque tokens and sealed secrets) and
 * the standard alphabet with padding (operator key files).
 *
 * Decoders are strict: any character outside the alphabet, misplaced
 * padding or non-zero trailing bits is refused, so each byte string has
 * exactly one accepted encoding (no signature or token malleability).
 * All functions are pure and thread-safe; the caller owns every buffer. */
#ifndef WD_BASE64_H
#define WD_BASE64_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

/* Encoded lengths, without the terminating NUL. */
#define WD_BASE64_URL_LEN(n) (((n)*4 + 2) / 3)
#define WD_BASE64_STD_LEN(n) ((((n) + 2) / 3) * 4)

/* Encodes len bytes into out (NUL-terminated). WD_ERR_INVALID when outlen
 * cannot hold the text and its NUL. */
wd_status wd_base64_url_encode(const void *in, size_t len, char *out, size_t outlen);
wd_status wd_base64_std_encode(const void *in, size_t len, char *out, size_t outlen);

/* Decodes inlen characters into out (capacity outcap) and stores the byte
 * count in *outlen. WD_ERR_INVALID for malformed text or a short buffer. */
wd_status wd_base64_url_decode(const char *in, size_t inlen, uint8_t *out, size_t outcap,
                               size_t *outlen);
wd_status wd_base64_std_decode(const char *in, size_t inlen, uint8_t *out, size_t outcap,
                               size_t *outlen);

#endif
