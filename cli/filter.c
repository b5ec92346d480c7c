/* Filter expressions for bulk commands (see filter.h). */
#include "filter.h"

#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"

static const struct {
    const char *name;
    wd_filter_key key;
} keys[] = {{"node", WD_FK_NODE},
            {"state", WD_FK_STATE},
            {"template", WD_FK_TEMPLATE},
            {"name", WD_FK_NAME},
            {"id", WD_FK_ID}};

wd_status wd_filter_parse(const char *expr, wd_filter *f)
{
    memset(f, 0, sizeof *f);
    if (expr == NULL)
        return WD_OK;
    const char *p = expr;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == 0) { /* "a=b,,c=d" or a trailing comma */
            p += end ? 1 : 0;
            if (!end)
                break;
            continue;
        }
        const char *eq = memchr(p, '=', len);
        if (eq == NULL)
            return WD_ERR(WD_ERR_INVALID, "filter term '%.*s' needs KEY=VALUE", (int)len, p);
        size_t klen = (size_t)(eq - p), vlen = len - klen - 1;
        if (f->n == WD_FILTER_MAX_TERMS)
            return WD_ERR(WD_ERR_INVALID, "too many filter terms (at most %d)",
                          WD_FILTER_MAX_TERMS);
        wd_filter_term *t = &f->terms[f->n];
        bool known = false;
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
            if (strlen(keys[i].name) == klen && memcmp(keys[i].name, p, klen) == 0) {
                t->key = keys[i].key;
                known = true;
            }
        }
        if (!known)
            return WD_ERR(WD_ERR_INVALID,
                          "unknown filter key '%.*s' (use node, state, template, name or id)",
                          (int)klen, p);
        if (vlen == 0)
            return WD_ERR(WD_ERR_INVALID, "filter term '%.*s' has an empty value", (int)len, p);
        if (vlen >= sizeof t->value)
            return WD_ERR(WD_ERR_INVALID, "filter value too long (at most %zu bytes)",
                          sizeof t->value - 1);
        memcpy(t->value, eq + 1, vlen);
        t->value[vlen] = '\0';
        if (t->key == WD_FK_STATE && wd_ctl_state_parse(t->value) < 0)
            return WD_ERR(WD_ERR_INVALID,
                          "unknown state '%s' (offline, installing, starting, running, "
                          "stopping, crashed, unknown)",
                          t->value);
        f->n++;
        if (!end)
            break;
        p = end + 1;
    }
    return WD_OK;
}

static bool glob(const char *pattern, const char *s)
{
    return fnmatch(pattern, s ? s : "", 0) == 0;
}

bool wd_filter_match(const wd_filter *f, const wd_filter_subject *s)
{
    for (size_t i = 0; i < f->n; i++) {
        const wd_filter_term *t = &f->terms[i];
        bool ok = false;
        switch (t->key) {
        case WD_FK_NODE:
            ok = glob(t->value, s->node);
            break;
        case WD_FK_STATE:
            ok = strcmp(t->value, s->state ? s->state : "") == 0;
            break;
        case WD_FK_TEMPLATE:
            ok = glob(t->value, s->template_id);
            break;
        case WD_FK_NAME:
            ok = glob(t->value, s->name);
            break;
        case WD_FK_ID:
            ok = glob(t->value, s->id);
            break;
        }
        if (!ok)
            return false;
    }
    return true;
}
