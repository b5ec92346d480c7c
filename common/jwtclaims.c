/* JWT claim readers (see jwtclaims.h). */
#include "jwtclaims.h"

#include <string.h>

#include "base64.h"

json_t *wd_jwt_part(const char *s, size_t len)
{
    uint8_t buf[WD_JWT_TOKEN_MAX / 4 * 3 + 3];
    size_t n = 0;
    if (len > WD_JWT_TOKEN_MAX || wd_base64_url_decode(s, len, buf, sizeof buf, &n) != WD_OK)
        return NULL;
    json_error_t err;
    json_t *v = json_loadb((const char *)buf, n, JSON_REJECT_DUPLICATES, &err);
    if (v && !json_is_object(v)) {
        json_decref(v);
        return NULL;
    }
    return v;
}

bool wd_jwt_split(const char *token, size_t len, const char **dot1, const char **dot2)
{
    const char *d1 = memchr(token, '.', len);
    const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token)) : NULL;
    if (!d1 || !d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token)))
        return false;
    *dot1 = d1;
    *dot2 = d2;
    return true;
}

const char *wd_jwt_header_problem(json_t *header, const char *alg)
{
    json_t *a = json_object_get(header, "alg"), *typ = json_object_get(header, "typ");
    if (!json_is_string(a) || strcmp(json_string_value(a), alg) != 0)
        return strcmp(alg, "ES256") == 0 ? "invalid token: algorithm must be ES256"
                                         : "invalid token: algorithm must be HS256";
    if (typ && (!json_is_string(typ) || strcmp(json_string_value(typ), "JWT") != 0))
        return "invalid token: typ is not JWT";
    if (json_object_get(header, "crit"))
        return "invalid token: unsupported critical header";
    return NULL;
}

bool wd_claim_str(json_t *payload, const char *name, char *dst, size_t cap, bool required)
{
    json_t *v = json_object_get(payload, name);
    dst[0] = '\0';
    if (!v)
        return !required;
    if (!json_is_string(v) || json_string_length(v) >= cap ||
        strlen(json_string_value(v)) != json_string_length(v))
        return false;
    memcpy(dst, json_string_value(v), json_string_length(v) + 1);
    return !required || dst[0];
}

bool wd_claim_time(json_t *payload, const char *name, int64_t *dst)
{
    json_t *v = json_object_get(payload, name);
    *dst = 0;
    if (!v)
        return true;
    if (!json_is_integer(v) || json_integer_value(v) <= 0)
        return false;
    *dst = json_integer_value(v);
    return true;
}

bool wd_claim_aud_matches(json_t *aud, const char *want)
{
    if (json_is_string(aud))
        return strcmp(json_string_value(aud), want) == 0;
    if (json_is_array(aud)) {
        size_t i;
        json_t *e;
        json_array_foreach(aud, i, e)
        {
            if (json_is_string(e) && strcmp(json_string_value(e), want) == 0)
                return true;
        }
    }
    return false;
}
