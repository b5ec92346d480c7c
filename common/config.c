/* Table-driven settings parser (see config.h). */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static wd_status set_value(wd_cfg_opt *o, const char *val, const char *source)
{
    switch (o->type) {
    case WD_CFG_STR: {
        char **t = o->target;
        char *copy = val ? strdup(val) : NULL;
        if (val && copy == NULL)
            return WD_ERR(WD_ERR_NOMEM, "out of memory");
        free(*t);
        *t = copy;
        return WD_OK;
    }
    case WD_CFG_INT: {
        char *end = NULL;
        errno = 0;
        long v = strtol(val, &end, 10);
        if (errno != 0 || end == val || *end != '\0')
            return WD_ERR(WD_ERR_INVALID, "%s --%s: '%s' is not an integer", source, o->flag, val);
        if (v < o->min || v > o->max)
            return WD_ERR(WD_ERR_INVALID, "%s --%s: %ld is outside %ld..%ld", source, o->flag, v,
                          o->min, o->max);
        *(long *)o->target = v;
        return WD_OK;
    }
    case WD_CFG_BOOL: {
        bool v;
        if (strcmp(val, "1") == 0 || strcmp(val, "true") == 0 || strcmp(val, "yes") == 0 ||
            strcmp(val, "on") == 0)
            v = true;
        else if (strcmp(val, "0") == 0 || strcmp(val, "false") == 0 || strcmp(val, "no") == 0 ||
                 strcmp(val, "off") == 0)
            v = false;
        else
            return WD_ERR(WD_ERR_INVALID, "%s --%s: '%s' is not a boolean (true/false)", source,
                          o->flag, val);
        *(bool *)o->target = v;
        return WD_OK;
    }
    }
    return WD_ERR(WD_ERR_INTERNAL, "bad option type");
}

static wd_cfg_opt *find_flag(wd_cfg_opt *opts, size_t n, const char *name, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(opts[i].flag) == len && strncmp(opts[i].flag, name, len) == 0)
            return &opts[i];
    return NULL;
}

void wd_config_usage(const wd_cfg_opt *opts, size_t n, const char *prog, const char *summary,
                     FILE *out)
{
    fprintf(out, "usage: %s [options]\n%s\n\noptions:\n", prog, summary);
    for (size_t i = 0; i < n; i++) {
        const wd_cfg_opt *o = &opts[i];
        const char *arg = o->type == WD_CFG_BOOL ? "" : o->type == WD_CFG_INT ? " N" : " VALUE";
        fprintf(out, "  --%s%s\n      %s", o->flag, arg, o->help);
        if (o->def)
            fprintf(out, " (default: %s)", o->def);
        if (o->env)
            fprintf(out, " [env %s]", o->env);
        fputc('\n', out);
    }
    fprintf(out, "  --help\n      print this help\n");
}

wd_status wd_config_parse(wd_cfg_opt *opts, size_t n, const char *prog, const char *summary,
                          int argc, char **argv, int *rest_argc, char ***rest_argv)
{
    wd_status st;
    for (size_t i = 0; i < n; i++) {
        if (opts[i].def && (st = set_value(&opts[i], opts[i].def, "default")) != WD_OK)
            return st;
        if (opts[i].def == NULL && opts[i].type == WD_CFG_STR)
            *(char **)opts[i].target = NULL;
    }
    for (size_t i = 0; i < n; i++) {
        const char *v = opts[i].env ? getenv(opts[i].env) : NULL;
        if (v && *v) {
            char src[96];
            snprintf(src, sizeof src, "environment %s for", opts[i].env);
            if ((st = set_value(&opts[i], v, src)) != WD_OK)
                return st;
        }
    }
    int nrest = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            for (i++; i < argc; i++)
                argv[1 + nrest++] = argv[i];
            break;
        }
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
            argv[1 + nrest++] = argv[i];
            continue;
        }
        const char *name = a + 2;
        if (strcmp(name, "help") == 0) {
            wd_config_usage(opts, n, prog, summary, stdout);
            return WD_ERR_CLOSED;
        }
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        wd_cfg_opt *o = find_flag(opts, n, name, len);
        if (o == NULL && strncmp(name, "no-", 3) == 0 && eq == NULL) {
            o = find_flag(opts, n, name + 3, len - 3);
            if (o && o->type == WD_CFG_BOOL) {
                *(bool *)o->target = false;
                continue;
            }
            o = NULL;
        }
        if (o == NULL)
            return WD_ERR(WD_ERR_INVALID, "unknown option --%.*s (see --help)", (int)len, name);
        const char *val;
        if (eq)
            val = eq + 1;
        else if (o->type == WD_CFG_BOOL)
            val = "true";
        else if (i + 1 < argc)
            val = argv[++i];
        else
            return WD_ERR(WD_ERR_INVALID, "option --%s needs a value", o->flag);
        if ((st = set_value(o, val, "option")) != WD_OK)
            return st;
    }
    if (rest_argc)
        *rest_argc = nrest;
    if (rest_argv)
        *rest_argv = argv + 1;
    if (rest_argc == NULL && nrest > 0)
        return WD_ERR(WD_ERR_INVALID, "unexpected argument '%s' (see --help)", argv[1]);
    return WD_OK;
}

void wd_config_free(wd_cfg_opt *opts, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (opts[i].type == WD_CFG_STR) {
            char **t = opts[i].target;
            free(*t);
            *t = NULL;
        }
    }
}
