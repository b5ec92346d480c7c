/* bcrypt via libxcrypt's reentrant crypt_rn/crypt_gensalt_rn. struct
 * crypt_data is ~32 KiB, so it lives on the heap rather than on the stack
 * of a thread-pool worker. Salts come from OpenSSL's CSPRNG. */
#include "password.h"

#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

/* A fixed, valid bcrypt salt for dummy verifications: crypt_rn accepts a
 * bare setting ("$2b$NN$" + 22 salt characters) and hashes against it. */
static const char DUMMY_SALT[] = "Wardendummysaltforbcr.";

static int norm_cost(int cost)
{
    return cost == 0 ? WD_PASSWORD_COST_DEFAULT : cost;
}

static bool cost_ok(int cost)
{
    return cost >= WD_PASSWORD_COST_MIN && cost <= WD_PASSWORD_COST_MAX;
}

/* Runs bcrypt; out receives the full hash. false on failure. */
static bool run_crypt(const char *pw, const char *setting, char out[CRYPT_OUTPUT_SIZE])
{
    struct crypt_data *cd = calloc(1, sizeof *cd);
    if (!cd)
        return false;
    char *r = crypt_rn(pw, setting, cd, (int)sizeof *cd);
    bool ok = r && r[0] != '*';
    if (ok)
        snprintf(out, CRYPT_OUTPUT_SIZE, "%s", r);
    OPENSSL_cleanse(cd, sizeof *cd);
    free(cd);
    return ok;
}

static wd_status check_pw(const char *pw)
{
    if (!pw || !*pw)
        return WD_ERR(WD_ERR_INVALID, "password must not be empty");
    size_t n = strlen(pw);
    if (n > WD_PASSWORD_MAX_BYTES)
        return WD_ERR(WD_ERR_INVALID,
                      "password is %zu bytes; at most %d are allowed because bcrypt ignores "
                      "everything after byte 72",
                      n, WD_PASSWORD_MAX_BYTES);
    return WD_OK;
}

/* True if hash looks like "$2x$NN$" + 53 characters of bcrypt's alphabet. */
static bool parse_hash(const char *hash, char *variant, int *cost)
{
    if (!hash || strlen(hash) != WD_PASSWORD_HASH_LEN)
        return false;
    if (hash[0] != '$' || hash[1] != '2' || hash[3] != '$' || hash[6] != '$')
        return false;
    if (hash[2] != 'a' && hash[2] != 'b' && hash[2] != 'y')
        return false;
    if (hash[4] < '0' || hash[4] > '9' || hash[5] < '0' || hash[5] > '9')
        return false;
    for (size_t i = 7; i < WD_PASSWORD_HASH_LEN; i++) {
        char c = hash[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '/'))
            return false;
    }
    *variant = hash[2];
    *cost = (hash[4] - '0') * 10 + (hash[5] - '0');
    return cost_ok(*cost) || (*cost > WD_PASSWORD_COST_MAX && *cost <= 31);
}

wd_status wd_password_hash(const char *pw, int cost, char *out, size_t outlen)
{
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    char result[CRYPT_OUTPUT_SIZE];
    unsigned char rnd[16];
    wd_status st = WD_OK;

    cost = norm_cost(cost);
    if (!cost_ok(cost))
        return WD_ERR(WD_ERR_INVALID, "bcrypt cost %d outside %d..%d", cost, WD_PASSWORD_COST_MIN,
                      WD_PASSWORD_COST_MAX);
    if ((st = check_pw(pw)) != WD_OK)
        return st;
    if (!out || outlen < WD_PASSWORD_HASH_LEN + 1)
        return WD_ERR(WD_ERR_INVALID, "password hash buffer too small (%zu < %d)", outlen,
                      WD_PASSWORD_HASH_LEN + 1);
    if (RAND_bytes(rnd, sizeof rnd) != 1) {
        st = WD_ERR(WD_ERR_INTERNAL, "password: RAND_bytes failed");
        goto out;
    }
    if (!crypt_gensalt_rn("$2b$", (unsigned long)cost, (const char *)rnd, (int)sizeof rnd, setting,
                          (int)sizeof setting)) {
        st = WD_ERR(WD_ERR_INTERNAL, "password: crypt_gensalt_rn failed");
        goto out;
    }
    if (!run_crypt(pw, setting, result) || strlen(result) != WD_PASSWORD_HASH_LEN) {
        st = WD_ERR(WD_ERR_INTERNAL, "password: bcrypt failed");
        goto out;
    }
    memcpy(out, result, WD_PASSWORD_HASH_LEN + 1);
out:
    OPENSSL_cleanse(rnd, sizeof rnd);
    OPENSSL_cleanse(result, sizeof result);
    return st;
}

bool wd_password_verify(const char *pw, const char *hash)
{
    char result[CRYPT_OUTPUT_SIZE];
    char variant;
    int cost;
    if (!parse_hash(hash, &variant, &cost)) {
        wd_password_verify_dummy(pw, 0);
        return false;
    }
    if (!pw || !*pw || strlen(pw) > WD_PASSWORD_MAX_BYTES) {
        /* Spend the same time as a real check at this hash's cost. */
        wd_password_verify_dummy(pw, cost <= WD_PASSWORD_COST_MAX ? cost : 0);
        return false;
    }
    bool ok = run_crypt(pw, hash, result) && strlen(result) == WD_PASSWORD_HASH_LEN &&
              CRYPTO_memcmp(result, hash, WD_PASSWORD_HASH_LEN) == 0;
    OPENSSL_cleanse(result, sizeof result);
    return ok;
}

void wd_password_verify_dummy(const char *pw, int cost)
{
    char setting[64];
    char result[CRYPT_OUTPUT_SIZE];
    char buf[WD_PASSWORD_MAX_BYTES + 1];
    cost = norm_cost(cost);
    if (!cost_ok(cost))
        cost = WD_PASSWORD_COST_DEFAULT;
    /* bcrypt's time does not depend on the password, but keep it valid. */
    snprintf(buf, sizeof buf, "%s", pw && *pw ? pw : "x");
    snprintf(setting, sizeof setting, "$2b$%02d$%s", cost, DUMMY_SALT);
    (void)run_crypt(buf, setting, result);
    OPENSSL_cleanse(buf, sizeof buf);
    OPENSSL_cleanse(result, sizeof result);
}

bool wd_password_needs_rehash(const char *hash, int cost)
{
    char variant;
    int have;
    if (!parse_hash(hash, &variant, &have))
        return true;
    return variant != 'b' || have != norm_cost(cost);
}
