/* Two-factor recovery codes: one-time codes a user prints when enabling
 * TOTP. Each is "xxxx-xxxx" from a 32-letter lowercase alphabet without the
 * look-alikes i, l, o, u (40 random bits). Store only wd_token_hash() of the
 * normalised code and delete the row when it is used. Thread-safe. */
#ifndef WD_RECOVERY_H
#define WD_RECOVERY_H

#include <stddef.h>

#include "status.h"

#define WD_RECOVERY_CODE_LEN 9   /* "xxxx-xxxx" */
#define WD_RECOVERY_CODE_SIZE 16 /* buffer size per code */
#define WD_RECOVERY_MAX 64

/* Fills codes[0..n-1] (1 <= n <= WD_RECOVERY_MAX) with fresh codes. */
wd_status wd_recovery_codes_new(size_t n, char codes[][WD_RECOVERY_CODE_SIZE]);

/* Canonical form of what a user typed: case folded, spaces and dashes
 * dropped, then "xxxx-xxxx". WD_ERR_DENIED if it cannot be a code. Hash the
 * result with wd_token_hash(). */
wd_status wd_recovery_code_normalize(const char *in, char out[WD_RECOVERY_CODE_SIZE]);

#endif
