/* NATS NKeys: Ed25519 keys in the text form nats-server and the NATS
 * clients use (operator "O...", account "A...", user "U..." public keys and
 * "S..." seeds).
 *
 * A public key is base32 (RFC 4648, upper case, no padding) of one prefix
 * byte, the 32-byte Ed25519 public key and a CRC16/XMODEM checksum stored
 * little-endian. A seed is the same over two prefix bytes (the seed prefix
 * 18<<3 combined with the key type, as in the Go nkeys library's
 * encodeSeed) and the 32-byte Ed25519 private seed. Decoding checks the
 * checksum, the prefix and the exact length, so every key has one text.
 *
 * Ed25519 comes from OpenSSL 3's EVP interface, one context per call: all
 * functions are pure and thread-safe, and the caller owns every buffer.
 * Seeds are secrets; this module wipes its own copies of them. */
#ifndef WD_NKEYS_H
#define WD_NKEYS_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

/* The prefix byte of each key type (its first base32 character). */
typedef enum {
    WD_NKEY_ACCOUNT = 0 << 3,   /* 'A' */
    WD_NKEY_OPERATOR = 14 << 3, /* 'O' */
    WD_NKEY_USER = 20 << 3,     /* 'U' */
} wd_nkey_type;

#define WD_NKEY_PREFIX_SEED (18 << 3) /* 'S' */

/* Text lengths without the NUL, and buffer sizes with it. */
#define WD_NKEY_PUB_LEN 56  /* base32 of 1 + 32 + 2 bytes */
#define WD_NKEY_SEED_LEN 58 /* base32 of 2 + 32 + 2 bytes */
#define WD_NKEY_PUB_SIZE (WD_NKEY_PUB_LEN + 1)
#define WD_NKEY_SEED_SIZE (WD_NKEY_SEED_LEN + 1)
#define WD_NKEY_SIG_BYTES 64

/* CRC16/XMODEM (poly 0x1021, init 0): the NKey checksum. */
uint16_t wd_nkey_crc16(const void *data, size_t len);

/* Base32, RFC 4648 alphabet, no padding; out gets a NUL. WD_ERR_INVALID when
 * outlen cannot hold ceil(len*8/5) characters and the NUL. */
wd_status wd_nkey_base32_encode(const void *in, size_t len, char *out, size_t outlen);
/* Strict inverse: rejects characters outside the alphabet, impossible
 * lengths and non-zero trailing bits. */
wd_status wd_nkey_base32_decode(const char *in, size_t inlen, uint8_t *out, size_t outcap,
                                size_t *outlen);

/* A fresh key pair of the given type from OpenSSL's CSPRNG. seed gets
 * WD_NKEY_SEED_SIZE bytes, pub WD_NKEY_PUB_SIZE bytes (NUL-terminated). */
wd_status wd_nkey_generate(wd_nkey_type type, char seed[WD_NKEY_SEED_SIZE],
                           char pub[WD_NKEY_PUB_SIZE]);

/* The public key of a seed, with the seed's type. WD_ERR_INVALID for a
 * malformed seed. */
wd_status wd_nkey_public_from_seed(const char *seed, char pub[WD_NKEY_PUB_SIZE]);

/* The type of a public key or seed text (seeds report the type they hold).
 * WD_ERR_INVALID when the text is not a well-formed operator, account or
 * user key. */
wd_status wd_nkey_type_of(const char *key, wd_nkey_type *type);

/* Ed25519 signature of data by the seed. */
wd_status wd_nkey_sign(const char *seed, const void *data, size_t len,
                       uint8_t sig[WD_NKEY_SIG_BYTES]);

/* WD_OK when sig is a valid signature of data by pub; WD_ERR_DENIED when it
 * is not; WD_ERR_INVALID for a malformed public key. */
wd_status wd_nkey_verify(const char *pub, const void *data, size_t len,
                         const uint8_t sig[WD_NKEY_SIG_BYTES]);

/* The standard .creds text (user JWT and user seed between the BEGIN/END
 * markers nats.c, nats.go and the nats CLI parse). It holds the seed: write
 * it with mode 0600 and wipe it before freeing. */
wd_status wd_nkey_creds(const char *user_jwt, const char *user_seed, char **out);

#endif
