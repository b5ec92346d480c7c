/* Two-factor authentication: RFC 6238 TOTP (SHA-1, 6 digits, 30 s steps,
 * the parameters every authenticator app supports) through liboath.
 *
 * Secrets are 20 random bytes shown to users as unpadded base32. A code is
 * accepted once: the caller stores the matched time step and passes it back
 * as last_used_step, and any step at or before it is refused as a replay.
 * All functions are thread-safe (liboath is initialised once). */
#ifndef WD_TOTP_H
#define WD_TOTP_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "status.h"

#define WD_TOTP_SECRET_BYTES 20
#define WD_TOTP_SECRET_B32_LEN 32 /* base32 of 20 bytes, no padding */
#define WD_TOTP_DIGITS 6
#define WD_TOTP_STEP 30
#define WD_TOTP_WINDOW_DEFAULT 1
#define WD_TOTP_WINDOW_MAX 10

/* A fresh secret as unpadded uppercase base32 into b32 (len >= 33). */
wd_status wd_totp_secret_new(char *b32, size_t len);

/* "otpauth://totp/<issuer>:<account>?secret=..&issuer=..&algorithm=SHA1&
 * digits=6&period=30" with issuer and account percent-encoded, for a QR
 * code. WD_ERR_INVALID for empty issuer/account or a short buffer. */
wd_status wd_totp_uri(const char *issuer, const char *account, const char *b32, char *out,
                      size_t len);

/* Checks a 6-digit code for time now, accepting `window` steps either side
 * (0..WD_TOTP_WINDOW_MAX). A step <= last_used_step never matches (pass -1
 * when no code was used yet). On success *matched_step (may be NULL) is the
 * step to store as the new last_used_step. WD_ERR_DENIED for a wrong,
 * malformed or replayed code; WD_ERR_INVALID for a bad secret or window. */
wd_status wd_totp_verify(const char *b32, const char *code, time_t now, int window,
                         int64_t last_used_step, int64_t *matched_step);

#endif
