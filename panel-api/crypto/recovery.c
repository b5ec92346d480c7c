/* Recovery codes: 8 symbols of 5 bits from RAND_bytes, formatted for
 * reading aloud and typing. The alphabet is Crockford's base32 in lowercase,
 * so a typed 'o', 'i' or 'l' can be read as 0, 1, 1. */
#include "recovery.h"

#include <stdint.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

static const char ALPHA[] = "0123456789abcdefghjkmnpqrstvwxyz";

wd_status wd_recovery_codes_new(size_t n, char codes[][WD_RECOVERY_CODE_SIZE])
{
    if (!codes || n == 0 || n > WD_RECOVERY_MAX)
        return WD_ERR(WD_ERR_INVALID, "recovery codes: count must be 1..%d", WD_RECOVERY_MAX);
    for (size_t i = 0; i < n; i++) {
        uint8_t raw[5];
        if (RAND_bytes(raw, sizeof raw) != 1)
            return WD_ERR(WD_ERR_INTERNAL, "recovery codes: RAND_bytes failed");
        uint64_t v = 0;
        for (size_t b = 0; b < sizeof raw; b++)
            v = v << 8 | raw[b];
        char *c = codes[i];
        for (int k = 0, o = 0; k < 8; k++) {
            if (k == 4)
                c[o++] = '-';
            c[o++] = ALPHA[(v >> (35 - 5 * k)) & 31];
        }
        c[WD_RECOVERY_CODE_LEN] = '\0';
        OPENSSL_cleanse(raw, sizeof raw);
    }
    return WD_OK;
}

wd_status wd_recovery_code_normalize(const char *in, char out[WD_RECOVERY_CODE_SIZE])
{
    char sym[8];
    int n = 0;
    if (!in || !out)
        return WD_ERR(WD_ERR_INVALID, "recovery code: NULL argument");
    for (const char *p = in; *p; p++) {
        char c = *p;
        if (c == ' ' || c == '-')
            continue;
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c == 'o')
            c = '0';
        else if (c == 'i' || c == 'l')
            c = '1';
        if (!strchr(ALPHA, c) || n == 8)
            return WD_ERR(WD_ERR_DENIED, "recovery code: not a recovery code");
        sym[n++] = c;
    }
    if (n != 8)
        return WD_ERR(WD_ERR_DENIED, "recovery code: not a recovery code");
    memcpy(out, sym, 4);
    out[4] = '-';
    memcpy(out + 5, sym + 4, 4);
    out[WD_RECOVERY_CODE_LEN] = '\0';
    return WD_OK;
}
