/* NATS NKeys over OpenSSL's Ed25519 (see nkeys.h for the format).
 *
 * Decoding is strict on purpose: a key with a wrong checksum, prefix or
 * length is refused rather than repaired, because key texts travel through
 * config files and join tokens where a silent change would hand out the
 * wrong identity. */
#include "nkeys.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#define RAW_BYTES 32
#define PUB_BYTES (1 + RAW_BYTES + 2)
#define SEED_BYTES (2 + RAW_BYTES + 2)

static const char B32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

uint16_t wd_nkey_crc16(const void *data, size_t len)
{
    const uint8_t *p = data;
    uint16_t crc = 0;
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)(p[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
    }
    return crc;
}

wd_status wd_nkey_base32_encode(const void *in, size_t len, char *out, size_t outlen)
{
    const uint8_t *p = in;
    size_t need = (len * 8 + 4) / 5;
    if (!out || outlen < need + 1)
        return WD_ERR(WD_ERR_INVALID, "base32: output buffer too small");
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        acc = (acc << 8) | p[i];
        bits += 8;
        while (bits >= 5) {
            out[o++] = B32[(acc >> (bits - 5)) & 31];
            bits -= 5;
        }
    }
    if (bits > 0)
        out[o++] = B32[(acc << (5 - bits)) & 31];
    out[o] = '\0';
    return WD_OK;
}

wd_status wd_nkey_base32_decode(const char *in, size_t inlen, uint8_t *out, size_t outcap,
                                size_t *outlen)
{
    /* Lengths whose trailing bits cannot form a whole byte (1, 3, 6 mod 8)
     * have no encoder that produces them. */
    size_t rem = inlen % 8;
    if (rem == 1 || rem == 3 || rem == 6)
        return WD_ERR(WD_ERR_INVALID, "base32: impossible length %zu", inlen);
    size_t n = inlen * 5 / 8;
    if (n > outcap)
        return WD_ERR(WD_ERR_INVALID, "base32: output buffer too small");
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < inlen; i++) {
        const char *pos = in[i] ? strchr(B32, in[i]) : NULL;
        if (!pos)
            return WD_ERR(WD_ERR_INVALID, "base32: bad character at %zu", i);
        acc = (acc << 5) | (uint32_t)(pos - B32);
        bits += 5;
        if (bits >= 8) {
            out[o++] = (uint8_t)(acc >> (bits - 8));
            bits -= 8;
        }
    }
    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
        return WD_ERR(WD_ERR_INVALID, "base32: non-zero trailing bits");
    *outlen = o;
    return WD_OK;
}

static bool type_ok(unsigned t)
{
    return t == WD_NKEY_ACCOUNT || t == WD_NKEY_OPERATOR || t == WD_NKEY_USER;
}

static wd_status encode_pub(wd_nkey_type type, const uint8_t raw[RAW_BYTES],
                            char pub[WD_NKEY_PUB_SIZE])
{
    uint8_t buf[PUB_BYTES];
    buf[0] = (uint8_t)type;
    memcpy(buf + 1, raw, RAW_BYTES);
    uint16_t crc = wd_nkey_crc16(buf, 1 + RAW_BYTES);
    buf[1 + RAW_BYTES] = (uint8_t)(crc & 0xff);
    buf[2 + RAW_BYTES] = (uint8_t)(crc >> 8);
    return wd_nkey_base32_encode(buf, sizeof buf, pub, WD_NKEY_PUB_SIZE);
}

static wd_status encode_seed(wd_nkey_type type, const uint8_t raw[RAW_BYTES],
                             char seed[WD_NKEY_SEED_SIZE])
{
    uint8_t buf[SEED_BYTES];
    buf[0] = (uint8_t)(WD_NKEY_PREFIX_SEED | ((unsigned)type >> 5));
    buf[1] = (uint8_t)(((unsigned)type & 31) << 3);
    memcpy(buf + 2, raw, RAW_BYTES);
    uint16_t crc = wd_nkey_crc16(buf, 2 + RAW_BYTES);
    buf[2 + RAW_BYTES] = (uint8_t)(crc & 0xff);
    buf[3 + RAW_BYTES] = (uint8_t)(crc >> 8);
    wd_status st = wd_nkey_base32_encode(buf, sizeof buf, seed, WD_NKEY_SEED_SIZE);
    OPENSSL_cleanse(buf, sizeof buf);
    return st;
}

/* Decodes a key text of the expected byte length and checks its CRC. */
static wd_status decode_checked(const char *text, size_t want, uint8_t *buf)
{
    size_t n = 0;
    if (!text)
        return WD_ERR(WD_ERR_INVALID, "nkey: missing key");
    size_t len = strnlen(text, WD_NKEY_SEED_LEN + 1);
    if (wd_nkey_base32_decode(text, len, buf, want, &n) != WD_OK || n != want)
        return WD_ERR(WD_ERR_INVALID, "nkey: malformed key text");
    uint16_t crc = (uint16_t)(buf[want - 2] | (buf[want - 1] << 8));
    if (crc != wd_nkey_crc16(buf, want - 2))
        return WD_ERR(WD_ERR_INVALID, "nkey: checksum mismatch");
    return WD_OK;
}

static wd_status decode_seed(const char *seed, wd_nkey_type *type, uint8_t raw[RAW_BYTES])
{
    uint8_t buf[SEED_BYTES];
    wd_status st = decode_checked(seed, SEED_BYTES, buf);
    if (st != WD_OK)
        goto out;
    unsigned t = ((unsigned)(buf[0] & 7) << 5) | (unsigned)(buf[1] >> 3);
    if ((buf[0] & 0xf8) != WD_NKEY_PREFIX_SEED || (buf[1] & 7) != 0 || !type_ok(t)) {
        st = WD_ERR(WD_ERR_INVALID, "nkey: not an operator, account or user seed");
        goto out;
    }
    *type = (wd_nkey_type)t;
    memcpy(raw, buf + 2, RAW_BYTES);
out:
    OPENSSL_cleanse(buf, sizeof buf);
    return st;
}

static wd_status decode_pub(const char *pub, wd_nkey_type *type, uint8_t raw[RAW_BYTES])
{
    uint8_t buf[PUB_BYTES];
    wd_status st = decode_checked(pub, PUB_BYTES, buf);
    if (st != WD_OK)
        return st;
    if (!type_ok(buf[0]))
        return WD_ERR(WD_ERR_INVALID, "nkey: not an operator, account or user public key");
    *type = (wd_nkey_type)buf[0];
    memcpy(raw, buf + 1, RAW_BYTES);
    return WD_OK;
}

static wd_status raw_public(const uint8_t raw[RAW_BYTES], uint8_t pk[RAW_BYTES])
{
    wd_status st = WD_OK;
    size_t n = RAW_BYTES;
    EVP_PKEY *key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, raw, RAW_BYTES);
    if (!key || EVP_PKEY_get_raw_public_key(key, pk, &n) != 1 || n != RAW_BYTES)
        st = WD_ERR(WD_ERR_INTERNAL, "nkey: Ed25519 public key derivation failed");
    EVP_PKEY_free(key);
    return st;
}

wd_status wd_nkey_generate(wd_nkey_type type, char seed[WD_NKEY_SEED_SIZE],
                           char pub[WD_NKEY_PUB_SIZE])
{
    uint8_t raw[RAW_BYTES], pk[RAW_BYTES];
    wd_status st;
    if (!type_ok(type) || !seed || !pub)
        return WD_ERR(WD_ERR_INVALID, "nkey: bad key type");
    if (RAND_bytes(raw, sizeof raw) != 1) {
        st = WD_ERR(WD_ERR_INTERNAL, "nkey: RAND_bytes failed");
        goto out;
    }
    if ((st = raw_public(raw, pk)) != WD_OK)
        goto out;
    if ((st = encode_seed(type, raw, seed)) != WD_OK)
        goto out;
    st = encode_pub(type, pk, pub);
out:
    OPENSSL_cleanse(raw, sizeof raw);
    return st;
}

wd_status wd_nkey_public_from_seed(const char *seed, char pub[WD_NKEY_PUB_SIZE])
{
    uint8_t raw[RAW_BYTES], pk[RAW_BYTES];
    wd_nkey_type type;
    wd_status st = decode_seed(seed, &type, raw);
    if (st == WD_OK)
        st = raw_public(raw, pk);
    if (st == WD_OK)
        st = encode_pub(type, pk, pub);
    OPENSSL_cleanse(raw, sizeof raw);
    return st;
}

wd_status wd_nkey_type_of(const char *key, wd_nkey_type *type)
{
    uint8_t raw[RAW_BYTES];
    wd_status st;
    if (key && key[0] == 'S')
        st = decode_seed(key, type, raw);
    else
        st = decode_pub(key, type, raw);
    OPENSSL_cleanse(raw, sizeof raw);
    return st;
}

wd_status wd_nkey_sign(const char *seed, const void *data, size_t len,
                       uint8_t sig[WD_NKEY_SIG_BYTES])
{
    uint8_t raw[RAW_BYTES];
    wd_nkey_type type;
    EVP_PKEY *key = NULL;
    EVP_MD_CTX *ctx = NULL;
    size_t siglen = WD_NKEY_SIG_BYTES;
    wd_status st = decode_seed(seed, &type, raw);
    if (st != WD_OK)
        goto out;
    key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, raw, RAW_BYTES);
    ctx = EVP_MD_CTX_new();
    if (!key || !ctx || EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) != 1 ||
        EVP_DigestSign(ctx, sig, &siglen, data, len) != 1 || siglen != WD_NKEY_SIG_BYTES)
        st = WD_ERR(WD_ERR_INTERNAL, "nkey: Ed25519 signing failed");
out:
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(key);
    OPENSSL_cleanse(raw, sizeof raw);
    return st;
}

wd_status wd_nkey_verify(const char *pub, const void *data, size_t len,
                         const uint8_t sig[WD_NKEY_SIG_BYTES])
{
    uint8_t raw[RAW_BYTES];
    wd_nkey_type type;
    EVP_PKEY *key = NULL;
    EVP_MD_CTX *ctx = NULL;
    wd_status st = decode_pub(pub, &type, raw);
    if (st != WD_OK)
        return st;
    key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw, RAW_BYTES);
    ctx = EVP_MD_CTX_new();
    if (!key || !ctx || EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, key) != 1) {
        st = WD_ERR(WD_ERR_INTERNAL, "nkey: Ed25519 setup failed");
        goto out;
    }
    if (EVP_DigestVerify(ctx, sig, WD_NKEY_SIG_BYTES, data, len) != 1)
        st = WD_ERR(WD_ERR_DENIED, "nkey: signature does not verify");
out:
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(key);
    return st;
}

static wd_status user_seed_ok(const char *seed)
{
    wd_nkey_type t;
    if (!seed || wd_nkey_type_of(seed, &t) != WD_OK || t != WD_NKEY_USER || seed[0] != 'S')
        return WD_ERR(WD_ERR_INVALID, "nkeys: not a user seed");
    return WD_OK;
}

wd_status wd_nkey_creds(const char *user_jwt, const char *user_seed, char **out)
{
    static const char FMT[] =
        "-----BEGIN NATS USER JWT-----\n%s\n------END NATS USER JWT------\n\n"
        "************************* IMPORTANT *************************\n"
        "NKEY Seed printed below can be used to sign and prove identity.\n"
        "NKEYs are sensitive and should be treated as secrets.\n\n"
        "-----BEGIN USER NKEY SEED-----\n%s\n------END USER NKEY SEED------\n\n"
        "*************************************************************\n";
    wd_status st;
    *out = NULL;
    if (!user_jwt || !*user_jwt || strchr(user_jwt, '\n'))
        return WD_ERR(WD_ERR_INVALID, "nkeys: bad user JWT");
    if ((st = user_seed_ok(user_seed)) != WD_OK)
        return st;
    int n = snprintf(NULL, 0, FMT, user_jwt, user_seed);
    if (n < 0)
        return WD_ERR(WD_ERR_INTERNAL, "nkeys: creds formatting failed");
    char *buf = malloc((size_t)n + 1);
    if (!buf)
        return WD_ERR(WD_ERR_NOMEM, "nkeys: out of memory");
    if (snprintf(buf, (size_t)n + 1, FMT, user_jwt, user_seed) != n) {
        free(buf);
        return WD_ERR(WD_ERR_INTERNAL, "nkeys: creds formatting failed");
    }
    *out = buf;
    return WD_OK;
}
