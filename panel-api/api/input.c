/* Input validation (see input.h). */
#include "input.h"

#include <string.h>

#include "util.h"

static bool printable(const char *s, bool text)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == 0x7f)
            return false;
        if (*p < 0x20 && !(text && (*p == '\n' || *p == '\t' || *p == '\r')))
            return false;
    }
    return true;
}

static bool email_ok(const char *s)
{
    const char *at = strchr(s, '@');
    if (at == NULL || at == s || strchr(at + 1, '@') || strlen(s) > 254)
        return false;
    const char *dot = strrchr(at, '.');
    if (dot == NULL || dot == at + 1 || dot[1] == '\0')
        return false;
    for (const char *p = s; *p; p++)
        if (*p == ' ' || (unsigned char)*p < 0x21)
            return false;
    return true;
}

static const char *check_one(const json_t *v, const wd_field *f)
{
    if (json_is_null(v))
        return f->nullable ? NULL : "must not be null";
    size_t max = f->max_len ? f->max_len : 256;
    switch (f->type) {
    case WD_F_STRING:
    case WD_F_TEXT:
    case WD_F_UUID:
    case WD_F_EMAIL: {
        if (!json_is_string(v))
            return "must be a string";
        const char *s = json_string_value(v);
        if (json_string_length(v) != strlen(s))
            return "must not contain NUL characters";
        if (f->type == WD_F_UUID)
            return wd_uuid_valid(s) ? NULL : "must be a UUID";
        if (strlen(s) > max)
            return "is too long";
        if (!printable(s, f->type == WD_F_TEXT))
            return "must not contain control characters";
        if (f->type == WD_F_EMAIL && !email_ok(s))
            return "must be an email address";
        if (f->required && *s == '\0')
            return "must not be empty";
        return NULL;
    }
    case WD_F_INT: {
        if (!json_is_integer(v))
            return "must be an integer";
        long long x = json_integer_value(v);
        if ((f->min || f->max) && (x < f->min || x > f->max))
            return "is out of range";
        return NULL;
    }
    case WD_F_BOOL:
        return json_is_boolean(v) ? NULL : "must be true or false";
    case WD_F_OBJECT:
        return json_is_object(v) ? NULL : "must be an object";
    case WD_F_ARRAY:
        if (!json_is_array(v))
            return "must be an array";
        return json_array_size(v) <= (f->max_len ? f->max_len : 1000) ? NULL : "has too many items";
    case WD_F_STRING_ARRAY: {
        if (!json_is_array(v))
            return "must be an array of strings";
        if (json_array_size(v) > (f->max_len ? f->max_len : 1000))
            return "has too many items";
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item)
        {
            if (!json_is_string(item) || json_string_length(item) > 256 ||
                !printable(json_string_value(item), false))
                return "must be an array of short strings";
        }
        return NULL;
    }
    }
    return "has an unknown type";
}

wd_status wd_input_check(const json_t *obj, const wd_field *spec, size_t n, json_t **details)
{
    json_t *bad = json_object();
    if (bad == NULL)
        return WD_ERR(WD_ERR_NOMEM, "out of memory");
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        const wd_field *f = NULL;
        for (size_t i = 0; i < n && f == NULL; i++)
            if (strcmp(spec[i].name, key) == 0)
                f = &spec[i];
        const char *why = f ? check_one(v, f) : "is not a known field";
        if (why)
            json_object_set_new(bad, key, json_string(why));
    }
    for (size_t i = 0; i < n; i++)
        if (spec[i].required && json_object_get(obj, spec[i].name) == NULL)
            json_object_set_new(bad, spec[i].name, json_string("is required"));
    if (json_object_size(bad) == 0) {
        json_decref(bad);
        return WD_OK;
    }
    /* Name the fields in the message too, for people reading logs. */
    char msg[256] = "invalid fields:";
    size_t used = strlen(msg);
    json_object_foreach(bad, key, v)
    {
        int w = snprintf(msg + used, sizeof msg - used, " %s", key);
        if (w < 0 || (size_t)w >= sizeof msg - used)
            break;
        used += (size_t)w;
    }
    if (details)
        *details = bad;
    else
        json_decref(bad);
    return WD_ERR(WD_ERR_INVALID, "%s", msg);
}

wd_status wd_input_page(const char *per_page, const char *page, const char *sort,
                        const char *const *allowed, wd_page *out)
{
    long v;
    out->limit = 25;
    out->page = 1;
    out->desc = false;
    snprintf(out->sort, sizeof out->sort, "%s", allowed && allowed[0] ? allowed[0] : "");
    if (per_page) {
        if (!wd_parse_long(per_page, 1, 100, &v))
            return WD_ERR(WD_ERR_INVALID, "per_page must be an integer from 1 to 100");
        out->limit = (int)v;
    }
    if (page) {
        if (!wd_parse_long(page, 1, 1000000, &v))
            return WD_ERR(WD_ERR_INVALID, "page must be an integer from 1 to 1000000");
        out->page = (int)v;
    }
    if (sort && *sort) {
        const char *field = sort[0] == '-' ? sort + 1 : sort;
        bool known = false;
        for (int i = 0; allowed && allowed[i] && !known; i++)
            known = strcmp(allowed[i], field) == 0;
        if (!known)
            return WD_ERR(WD_ERR_INVALID, "sort must be one of the listed fields, optionally "
                          "prefixed with '-'");
        snprintf(out->sort, sizeof out->sort, "%s", field);
        out->desc = sort[0] == '-';
    }
    return WD_OK;
}
