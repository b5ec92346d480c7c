/* Encryption at rest for secrets the panel must read back (node tokens,
 * TOTP secrets, webhook secrets): AES-256-GCM with key ids.
 *
 * Keys come from an operator-managed spec (a key file or an environment
 * variable): one key per line, "KID:BASE64(32 bytes)", '#' starts a
 * comment, blank lines are ignored, and the first key is the active one.
 * Rotation: put a new line first and keep the old lines until every value
 * has been re-sealed; `warden-api keygen` prints a fresh line.
 *
 * Sealed values are text: "wdsb1.<kid>.<base64url(nonce12|ciphertext|tag16)>".
 * aad (associated data, e.g. "nodes.token:<row id>") binds a value to its
 * place: a sealed value copied to another row does not open.
 *
 * A box is immutable after loading: seal/open may run concurrently on any
 * thread. */
#ifndef WD_SECRETBOX_H
#define WD_SECRETBOX_H

#include <stddef.h>

#include "status.h"

#define WD_SECRETBOX_KEY_BYTES 32
#define WD_SECRETBOX_KID_MAX 32 /* characters of [A-Za-z0-9_-] */
#define WD_SECRETBOX_MAX_KEYS 32
#define WD_SECRETBOX_MAX_PLAIN (16u << 20)
/* "KID:" + 44 base64 characters + NUL */
#define WD_SECRETBOX_KEY_LINE_MAX (WD_SECRETBOX_KID_MAX + 1 + 44 + 1)

typedef struct wd_secretbox wd_secretbox;

/* Parses spec into a new box. WD_ERR_INVALID (with the line number, never
 * key material) for a malformed line, a duplicate kid or no key at all. */
wd_status wd_secretbox_load(const char *spec, wd_secretbox **out);
/* NULL-safe; wipes the keys and sets *box to NULL. */
void wd_secretbox_destroy(wd_secretbox **box);
/* Key id used by wd_secretbox_seal (owned by the box). */
const char *wd_secretbox_active_kid(const wd_secretbox *box);

/* Encrypts len bytes (at most WD_SECRETBOX_MAX_PLAIN) with the active key
 * and a random nonce. aad may be NULL (same as ""). *out is a heap string
 * the caller frees with free(). */
wd_status wd_secretbox_seal(const wd_secretbox *box, const void *plain, size_t len, const char *aad,
                            char **out);

/* Decrypts a sealed value. *plain is a heap buffer of *len bytes plus a
 * terminating NUL (handy for text) that the caller frees with free(),
 * after wiping it if it matters. WD_ERR_DENIED for an unknown kid, a
 * malformed value, tampering or a different aad. */
wd_status wd_secretbox_open(const wd_secretbox *box, const char *sealed, const char *aad,
                            void **plain, size_t *len);

/* A fresh "KID:BASE64" line (no newline) into out. */
wd_status wd_secretbox_generate_key_line(const char *kid, char *out, size_t outlen);

#endif
