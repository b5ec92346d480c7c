/* Password hashing for panel users: bcrypt ("$2b$") through libxcrypt.
 *
 * bcrypt only looks at the first 72 bytes of a password, so longer
 * passwords are refused outright instead of silently truncated (two
 * passwords sharing 72 bytes would otherwise be the same password).
 * Hashing takes ~250 ms at cost 12: call these from worker threads, never
 * from an event loop. All functions are thread-safe and keep no state. */
#ifndef WD_PASSWORD_H
#define WD_PASSWORD_H

#include <stdbool.h>
#include <stddef.h>

#include "status.h"

#define WD_PASSWORD_MAX_BYTES 72
#define WD_PASSWORD_COST_MIN 4
#define WD_PASSWORD_COST_MAX 15
#define WD_PASSWORD_COST_DEFAULT 12
#define WD_PASSWORD_HASH_LEN 60 /* "$2b$12$" + 53 characters */

/* Hashes pw with a fresh random salt into out (outlen >= 61). cost 0 means
 * WD_PASSWORD_COST_DEFAULT; otherwise 4..15. WD_ERR_INVALID for an empty
 * password, one longer than 72 bytes, a bad cost or a short buffer. */
wd_status wd_password_hash(const char *pw, int cost, char *out, size_t outlen);

/* True when pw matches the stored bcrypt hash ($2a$, $2b$ or $2y$). The
 * comparison is constant-time. False for malformed hashes and for empty or
 * over-long passwords (after spending the same bcrypt time). */
bool wd_password_verify(const char *pw, const char *hash);

/* Burns the time of one verification at `cost` (0 = default) without any
 * account: call it when the user name is unknown, so response times do not
 * reveal which accounts exist. */
void wd_password_verify_dummy(const char *pw, int cost);

/* True when hash should be replaced on the next successful login: not
 * "$2b$", malformed, or made with a cost other than `cost` (0 = default). */
bool wd_password_needs_rehash(const char *hash, int cost);

#endif
