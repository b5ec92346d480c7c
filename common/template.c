/* Templates: parse, validate and render game templates (see template.h).
 *
 * A template is the recipe for one game: how to install it, the command
 * line that starts it, the console line that stops it and the typed
 * variables an operator may set. It reaches us as JSON, either in Warden's
 * own format or as a Pterodactyl egg, and leaves as a Warden__V1__Template
 * that the panel stores and the agent executes. The agent then calls
 * resolve (typed values), build_argv and render (startup, config files,
 * environment) and path_write_confined (config files) from here, so every
 * rule that keeps a player-supplied value from turning into code or into a
 * path outside the server directory lives in this one file.
 *
 * The design choices, and why, are written up in docs/templates.md. The
 * file reads top-down: text helpers, placeholders and word splitting,
 * value rules, validation, resolve/render/argv, confined paths, the Warden
 * JSON reader and writer, and the egg importer. */
#include "template.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <linux/openat2.h>
#include <regex.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define FORMAT_TAG "warden/v1"
#define ID_MAX 64         /* template id (slug) */
#define VAR_NAME_MAX 64   /* variable and environment names */
#define PH_ID_MAX 128     /* identifier inside {{ }} */
#define PATTERN_MAX 512   /* variable regex source */
#define LINE_MAX_LEN 1024 /* done pattern, stop command */
#define INTERP_MAX 256    /* install interpreter path */
#define PATH_REL_MAX 1024 /* config file paths */
#define RENDER_MAX (4u * 1024 * 1024)
#define ARGV_MAX 1024
#define NOTES_MAX 200
#define GRACE_MAX 3600
#define OPTIONS_MAX 64
#define RULES_MAX 64 /* rule tokens per egg variable */

/* Names every template may use without declaring them; the agent appends
 * their values to the resolved variables before rendering. */
static const char *const builtin_names[] = {"SERVER_ID", "SERVER_NAME", "SERVER_DIR", NULL};

/* ------------------------------------------------------------------------ */
/* Small text helpers                                                       */
/* ------------------------------------------------------------------------ */

static bool is_alpha(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static bool is_upper_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > VAR_NAME_MAX || is_digit((unsigned char)s[0]))
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'A' && c <= 'Z') || is_digit(c) || c == '_'))
            return false;
    }
    return true;
}

static bool is_env_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > VAR_NAME_MAX || is_digit((unsigned char)s[0]))
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(is_alpha(c) || is_digit(c) || c == '_'))
            return false;
    }
    return true;
}

static bool is_slug(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > ID_MAX || !(is_alpha((unsigned char)s[0]) || is_digit((unsigned char)s[0])))
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(is_alpha(c) || is_digit(c) || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static bool is_builtin(const char *name)
{
    for (int i = 0; builtin_names[i]; i++)
        if (strcmp(name, builtin_names[i]) == 0)
            return true;
    return false;
}

/* True if s has a control byte. Single-line fields refuse them all, so a
 * value can never add a line to a config file or a console command. */
static bool has_ctl(const char *s, bool allow_space_ctl)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (allow_space_ctl && (*p == '\t' || *p == '\n' || *p == '\r'))
            continue;
        if (*p < 0x20 || *p == 0x7f)
            return true;
    }
    return false;
}

/* Checks UTF-8 (no overlongs, no surrogates) and counts code points. */
static bool utf8_ok(const char *s, size_t *ncp)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = 0;
    while (*p) {
        unsigned c = *p;
        size_t extra;
        uint32_t cp, lo;
        if (c < 0x80) {
            p++;
            n++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            extra = 1, cp = c & 0x1f, lo = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
            extra = 2, cp = c & 0x0f, lo = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            extra = 3, cp = c & 0x07, lo = 0x10000;
        } else {
            return false;
        }
        for (size_t i = 1; i <= extra; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i] & 0x3f);
        }
        if (cp < lo || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        p += extra + 1;
        n++;
    }
    if (ncp)
        *ncp = n;
    return true;
}

/* Strict decimal int64: optional '-', digits, nothing else. */
static bool parse_i64(const char *s, int64_t *out)
{
    const char *p = s;
    if (*p == '-')
        p++;
    if (*p == '\0')
        return false;
    for (const char *q = p; *q; q++)
        if (!is_digit((unsigned char)*q))
            return false;
    errno = 0;
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return false;
    *out = (int64_t)v;
    return true;
}

/* Replaces *field (a protobuf string: heap or protobuf_c_empty_string)
 * with a heap copy of the first n bytes of s. */
static wd_status set_strn(char **field, const char *s, size_t n)
{
    char *c = strndup(s, n);
    if (c == NULL)
        return WD_ERR(WD_ERR_NOMEM, "out of memory");
    if (*field != NULL && *field != protobuf_c_empty_string)
        free(*field);
    *field = c;
    return WD_OK;
}

static wd_status set_str(char **field, const char *s)
{
    return set_strn(field, s, strlen(s));
}

/* A growable, length-limited string. */
typedef struct {
    char *p;
    size_t len, cap, max;
} sbuf;

static wd_status sb_add(sbuf *b, const char *s, size_t n)
{
    if (n > b->max - b->len)
        return WD_ERR(WD_ERR_INVALID, "text longer than %zu bytes", b->max);
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (np == NULL)
            return WD_ERR(WD_ERR_NOMEM, "out of memory");
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return WD_OK;
}

static wd_status sb_addc(sbuf *b, char c)
{
    return sb_add(b, &c, 1);
}

static wd_status sb_addf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static wd_status sb_addf(sbuf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return WD_ERR(WD_ERR_INTERNAL, "format failed");
    return sb_add(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* Hands the buffer's string to the caller ("" when nothing was added). */
static wd_status sb_take(sbuf *b, char **out)
{
    if (b->p == NULL) {
        b->p = strdup("");
        if (b->p == NULL)
            return WD_ERR(WD_ERR_NOMEM, "out of memory");
    }
    *out = b->p;
    b->p = NULL;
    b->len = b->cap = 0;
    return WD_OK;
}

/* ------------------------------------------------------------------------ */
/* Placeholders: {{NAME}}, {{env.NAME}}, {{server.build.env.NAME}}           */
/* ------------------------------------------------------------------------ */

/* One {{...}} occurrence: text[start, end) is the whole placeholder and
 * id/id_len the identifier between the braces. */
typedef struct {
    size_t start, end;
    const char *id;
    size_t id_len;
} ph;

/* Finds the next placeholder at or after text + from. Only "{{" followed by
 * an identifier ([A-Za-z_][A-Za-z0-9_.]*, at most PH_ID_MAX bytes) and
 * "}}" is a placeholder; any other braces are literal text, so config files
 * in JSON or Jinja-like syntax keep their own braces. */
static bool ph_next(const char *text, size_t from, ph *out)
{
    for (const char *p = strstr(text + from, "{{"); p != NULL; p = strstr(p + 1, "{{")) {
        const char *q = p + 2;
        if (!(is_alpha((unsigned char)*q) || *q == '_'))
            continue;
        while (is_alpha((unsigned char)*q) || is_digit((unsigned char)*q) || *q == '_' || *q == '.')
            q++;
        size_t len = (size_t)(q - (p + 2));
        if (q[0] == '}' && q[1] == '}' && len <= PH_ID_MAX) {
            out->start = (size_t)(p - text);
            out->end = (size_t)(q + 2 - text);
            out->id = p + 2;
            out->id_len = len;
            return true;
        }
    }
    return false;
}

/* The variable a placeholder refers to. Pterodactyl's {{env.X}} and
 * {{server.build.env.X}} are spellings of {{X}}; other dotted names are
 * Pterodactyl built-ins we do not have. */
static wd_status ph_name(const ph *h, char name[PH_ID_MAX + 1])
{
    const char *id = h->id;
    size_t len = h->id_len;
    static const char *const prefixes[] = {"server.build.env.", "env.", NULL};
    for (int i = 0; prefixes[i]; i++) {
        size_t pl = strlen(prefixes[i]);
        if (len > pl && strncmp(id, prefixes[i], pl) == 0) {
            id += pl;
            len -= pl;
            break;
        }
    }
    if (memchr(id, '.', len) != NULL || is_digit((unsigned char)id[0]))
        return WD_ERR(WD_ERR_INVALID, "unsupported placeholder {{%.*s}}", (int)h->id_len, h->id);
    memcpy(name, id, len);
    name[len] = '\0';
    return WD_OK;
}

static const char *kv_find(const wd_kv *vars, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (vars[i].key != NULL && strcmp(vars[i].key, name) == 0)
            return vars[i].value ? vars[i].value : "";
    return NULL;
}

wd_status wd_template_render(const char *text, const wd_kv *vars, size_t n, char **out)
{
    if (text == NULL || out == NULL || (n > 0 && vars == NULL))
        return WD_ERR(WD_ERR_INVALID, "render: NULL argument");
    *out = NULL;
    sbuf b = {.max = RENDER_MAX};
    size_t pos = 0;
    ph h;
    wd_status st = WD_OK;
    while (ph_next(text, pos, &h)) {
        char name[PH_ID_MAX + 1];
        if ((st = sb_add(&b, text + pos, h.start - pos)) != WD_OK)
            goto out;
        if ((st = ph_name(&h, name)) != WD_OK)
            goto out;
        const char *v = kv_find(vars, n, name);
        if (v == NULL) {
            st = WD_ERR(WD_ERR_INVALID, "unknown variable {{%s}}", name);
            goto out;
        }
        /* The value is copied verbatim and never rescanned, so a value
         * that itself contains "{{X}}" stays literal text. */
        if ((st = sb_add(&b, v, strlen(v))) != WD_OK)
            goto out;
        pos = h.end;
    }
    if ((st = sb_add(&b, text + pos, strlen(text + pos))) != WD_OK)
        goto out;
    st = sb_take(&b, out);
out:
    free(b.p);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Word splitting                                                           */
/* ------------------------------------------------------------------------ */

void wd_argv_free(char **argv)
{
    if (argv == NULL)
        return;
    for (char **p = argv; *p; p++)
        free(*p);
    free(argv);
}

static wd_status words_push(char ***words, int *n, sbuf *w)
{
    if (*n >= ARGV_MAX)
        return WD_ERR(WD_ERR_INVALID, "startup: more than %d words", ARGV_MAX);
    char **nw = realloc(*words, (size_t)(*n + 2) * sizeof **words);
    if (nw == NULL)
        return WD_ERR(WD_ERR_NOMEM, "out of memory");
    *words = nw;
    char *s = NULL;
    wd_status st = sb_take(w, &s);
    if (st != WD_OK)
        return st;
    nw[(*n)++] = s;
    nw[*n] = NULL;
    return WD_OK;
}

/* Splits s like a POSIX shell word list, without expansion and without
 * operators: blanks separate words; '...' is literal; "..." is literal
 * except that backslash escapes $ ` " \ and newline; a backslash outside
 * quotes escapes the next byte. Quotes only group; `;`, `|`, `$` and so on
 * are ordinary characters. *words is NULL-terminated. */
static wd_status split_words(const char *s, char ***words, int *count)
{
    *words = NULL;
    *count = 0;
    sbuf w = {.max = RENDER_MAX};
    bool in_word = false;
    wd_status st = WD_OK;
    for (const char *p = s; *p;) {
        char c = *p;
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            if (in_word && (st = words_push(words, count, &w)) != WD_OK)
                goto out;
            in_word = false;
            p++;
        } else if (c == '\'') {
            const char *e = strchr(p + 1, '\'');
            if (e == NULL) {
                st = WD_ERR(WD_ERR_INVALID, "startup: unterminated single quote");
                goto out;
            }
            if ((st = sb_add(&w, p + 1, (size_t)(e - p - 1))) != WD_OK)
                goto out;
            in_word = true;
            p = e + 1;
        } else if (c == '"') {
            p++;
            in_word = true;
            for (;;) {
                if (*p == '\0') {
                    st = WD_ERR(WD_ERR_INVALID, "startup: unterminated double quote");
                    goto out;
                }
                if (*p == '"') {
                    p++;
                    break;
                }
                if (*p == '\\' && p[1] != '\0' && strchr("$`\"\\\n", p[1]) != NULL) {
                    if (p[1] != '\n' && (st = sb_addc(&w, p[1])) != WD_OK)
                        goto out;
                    p += 2;
                    continue;
                }
                if ((st = sb_addc(&w, *p)) != WD_OK)
                    goto out;
                p++;
            }
        } else if (c == '\\') {
            if (p[1] == '\0') {
                st = WD_ERR(WD_ERR_INVALID, "startup: trailing backslash");
                goto out;
            }
            if (p[1] != '\n') {
                if ((st = sb_addc(&w, p[1])) != WD_OK)
                    goto out;
                in_word = true;
            }
            p += 2;
        } else {
            if ((st = sb_addc(&w, c)) != WD_OK)
                goto out;
            in_word = true;
            p++;
        }
    }
    if (in_word && (st = words_push(words, count, &w)) != WD_OK)
        goto out;
    if (*count == 0)
        st = WD_ERR(WD_ERR_INVALID, "startup: empty command");
out:
    free(w.p);
    if (st != WD_OK) {
        wd_argv_free(*words);
        *words = NULL;
        *count = 0;
    }
    return st;
}

wd_status wd_template_build_argv(const char *startup, const wd_kv *vars, size_t n, char ***argv,
                                 int *argc)
{
    if (startup == NULL || argv == NULL || argc == NULL || (n > 0 && vars == NULL))
        return WD_ERR(WD_ERR_INVALID, "build_argv: NULL argument");
    *argv = NULL;
    *argc = 0;
    char **words = NULL;
    int nw = 0;
    wd_status st = split_words(startup, &words, &nw);
    if (st != WD_OK)
        return st;
    /* Render word by word: a value lands inside the word that held its
     * placeholder, whatever blanks or quotes it contains. */
    for (int i = 0; i < nw; i++) {
        char *r = NULL;
        if ((st = wd_template_render(words[i], vars, n, &r)) != WD_OK)
            goto out;
        free(words[i]);
        words[i] = r;
    }
    *argv = words;
    *argc = nw;
    words = NULL;
out:
    wd_argv_free(words);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Variable values                                                          */
/* ------------------------------------------------------------------------ */

static const char *type_name(Warden__V1__VariableType t)
{
    switch (t) {
    case WARDEN__V1__VARIABLE_TYPE__VAR_STRING:
        return "string";
    case WARDEN__V1__VARIABLE_TYPE__VAR_INTEGER:
        return "integer";
    case WARDEN__V1__VARIABLE_TYPE__VAR_BOOLEAN:
        return "boolean";
    case WARDEN__V1__VARIABLE_TYPE__VAR_ENUM:
        return "enum";
    default:
        return NULL;
    }
}

static bool bounded(const Warden__V1__TemplateVariable *v)
{
    return !(v->min == 0 && v->max == 0);
}

/* [INT64_MIN, INT64_MAX] is no bound at all: store it as the canonical 0/0
 * so that writing and re-reading a template gives the same message. */
static void normalize_bounds(Warden__V1__TemplateVariable *v)
{
    if (v->min == INT64_MIN && v->max == INT64_MAX)
        v->min = v->max = 0;
}

/* Compiles pattern as a POSIX ERE and tells whether all of value matches.
 * POSIX matching is leftmost-longest, so the whole value matches exactly
 * when the first match starts at 0 and ends at the end. This avoids
 * wrapping the pattern in ^( )$, which a pattern with unbalanced
 * parentheses could subvert. */
static wd_status full_match(const char *pattern, const char *value, bool *match)
{
    regex_t re;
    int rc = regcomp(&re, pattern, REG_EXTENDED);
    if (rc != 0) {
        char msg[128];
        regerror(rc, &re, msg, sizeof msg);
        return WD_ERR(WD_ERR_INVALID, "pattern does not compile: %s", msg);
    }
    regmatch_t m;
    rc = regexec(&re, value, 1, &m, 0);
    *match = rc == 0 && m.rm_so == 0 && (size_t)m.rm_eo == strlen(value);
    regfree(&re);
    return WD_OK;
}

/* Checks one value against its variable's rules. Messages never quote the
 * value: it may be a secret. */
static wd_status check_value(const Warden__V1__TemplateVariable *v, const char *val)
{
    const char *name = v->name;
    size_t len = strlen(val), ncp = 0;
    if (len > WD_TEMPLATE_MAX_VALUE)
        return WD_ERR(WD_ERR_INVALID, "%s: value longer than %d bytes", name,
                      WD_TEMPLATE_MAX_VALUE);
    if (has_ctl(val, false))
        return WD_ERR(WD_ERR_INVALID, "%s: value contains control characters", name);
    if (!utf8_ok(val, &ncp))
        return WD_ERR(WD_ERR_INVALID, "%s: value is not valid UTF-8", name);
    if (len == 0) {
        if (v->required)
            return WD_ERR(WD_ERR_INVALID, "%s: a value is required", name);
        return WD_OK; /* empty is "not set": the type rules apply to values */
    }
    switch (v->type) {
    case WARDEN__V1__VARIABLE_TYPE__VAR_STRING:
        if (v->max_length > 0 && ncp > v->max_length)
            return WD_ERR(WD_ERR_INVALID, "%s: longer than %u characters", name, v->max_length);
        if (v->pattern != NULL && v->pattern[0] != '\0') {
            bool ok = false;
            wd_status st = full_match(v->pattern, val, &ok);
            if (st != WD_OK)
                return WD_ERR(st, "%s: pattern does not compile", name);
            if (!ok)
                return WD_ERR(WD_ERR_INVALID, "%s: does not match the pattern %s", name,
                              v->pattern);
        }
        return WD_OK;
    case WARDEN__V1__VARIABLE_TYPE__VAR_INTEGER: {
        int64_t x;
        if (!parse_i64(val, &x))
            return WD_ERR(WD_ERR_INVALID, "%s: must be an integer", name);
        if (bounded(v) && (x < v->min || x > v->max))
            return WD_ERR(WD_ERR_INVALID, "%s: must be between %" PRId64 " and %" PRId64, name,
                          v->min, v->max);
        return WD_OK;
    }
    case WARDEN__V1__VARIABLE_TYPE__VAR_BOOLEAN:
        if (strcmp(val, "true") == 0 || strcmp(val, "false") == 0 || strcmp(val, "1") == 0 ||
            strcmp(val, "0") == 0)
            return WD_OK;
        return WD_ERR(WD_ERR_INVALID, "%s: must be true, false, 1 or 0", name);
    case WARDEN__V1__VARIABLE_TYPE__VAR_ENUM: {
        for (size_t i = 0; i < v->n_options; i++)
            if (v->options[i] != NULL && strcmp(v->options[i], val) == 0)
                return WD_OK;
        char list[256] = "";
        size_t used = 0;
        for (size_t i = 0; i < v->n_options && used < sizeof list; i++) {
            int k = snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "",
                             v->options[i] ? v->options[i] : "");
            if (k < 0)
                break;
            used += (size_t)k;
        }
        return WD_ERR(WD_ERR_INVALID, "%s: must be one of: %s", name, list);
    }
    default:
        return WD_ERR(WD_ERR_INVALID, "%s: unknown variable type %d", name, (int)v->type);
    }
}

/* ------------------------------------------------------------------------ */
/* Validation                                                               */
/* ------------------------------------------------------------------------ */

static const Warden__V1__TemplateVariable *find_var(const Warden__V1__Template *t, const char *name)
{
    for (size_t i = 0; i < t->n_variables; i++)
        if (t->variables[i] != NULL && strcmp(t->variables[i]->name, name) == 0)
            return t->variables[i];
    return NULL;
}

/* Every placeholder in text names a declared variable or a built-in. */
static wd_status check_refs(const Warden__V1__Template *t, const char *text, const char *where)
{
    size_t pos = 0;
    ph h;
    while (ph_next(text, pos, &h)) {
        char name[PH_ID_MAX + 1];
        if (ph_name(&h, name) != WD_OK)
            return WD_ERR(WD_ERR_INVALID, "%s: unsupported placeholder {{%.*s}}", where,
                          (int)h.id_len, h.id);
        if (find_var(t, name) == NULL && !is_builtin(name))
            return WD_ERR(WD_ERR_INVALID, "%s: unknown variable {{%s}}", where, name);
        pos = h.end;
    }
    return WD_OK;
}

static bool has_backref(const char *pattern)
{
    for (const char *p = pattern; *p; p++) {
        if (*p == '\\') {
            if (p[1] >= '1' && p[1] <= '9')
                return true;
            if (p[1] != '\0')
                p++;
        }
    }
    return false;
}

static wd_status validate_variable(const Warden__V1__Template *t, size_t i)
{
    const Warden__V1__TemplateVariable *v = t->variables[i];
    if (v == NULL || v->name == NULL)
        return WD_ERR(WD_ERR_INVALID, "variables[%zu]: missing", i);
    const char *n = v->name;
    if (!is_upper_name(n))
        return WD_ERR(WD_ERR_INVALID,
                      "variables[%zu].name \"%.64s\": must match [A-Z_][A-Z0-9_]* (at most %d)", i,
                      n, VAR_NAME_MAX);
    if (is_builtin(n))
        return WD_ERR(WD_ERR_INVALID, "variables[%zu].name: %s is a built-in variable", i, n);
    for (size_t j = 0; j < i; j++)
        if (t->variables[j] != NULL && strcmp(t->variables[j]->name, n) == 0)
            return WD_ERR(WD_ERR_INVALID, "variables[%zu].name: %s declared twice", i, n);
    if (type_name(v->type) == NULL)
        return WD_ERR(WD_ERR_INVALID, "variable %s: unknown type %d", n, (int)v->type);
    bool is_int = v->type == WARDEN__V1__VARIABLE_TYPE__VAR_INTEGER;
    bool is_str = v->type == WARDEN__V1__VARIABLE_TYPE__VAR_STRING;
    bool is_enum = v->type == WARDEN__V1__VARIABLE_TYPE__VAR_ENUM;
    if (is_int && bounded(v) && v->min > v->max)
        return WD_ERR(WD_ERR_INVALID, "variable %s: min is greater than max", n);
    if (!is_int && bounded(v))
        return WD_ERR(WD_ERR_INVALID, "variable %s: min and max only apply to integer variables",
                      n);
    const char *pat = v->pattern ? v->pattern : "";
    if (!is_str && (v->max_length != 0 || pat[0] != '\0'))
        return WD_ERR(WD_ERR_INVALID,
                      "variable %s: max_length and pattern only apply to string variables", n);
    if (v->max_length > WD_TEMPLATE_MAX_VALUE)
        return WD_ERR(WD_ERR_INVALID, "variable %s: max_length above %d", n, WD_TEMPLATE_MAX_VALUE);
    if (pat[0] != '\0') {
        if (strlen(pat) > PATTERN_MAX || has_ctl(pat, false))
            return WD_ERR(WD_ERR_INVALID,
                          "variable %s: pattern longer than %d bytes or has control characters", n,
                          PATTERN_MAX);
        /* Back-references make POSIX matching exponential: refuse them. */
        if (has_backref(pat))
            return WD_ERR(WD_ERR_INVALID, "variable %s: pattern uses a back-reference", n);
        bool ignored;
        if (full_match(pat, "", &ignored) != WD_OK)
            return WD_ERR(WD_ERR_INVALID, "variable %s: %s", n, "pattern does not compile");
    }
    if (!is_enum && v->n_options != 0)
        return WD_ERR(WD_ERR_INVALID, "variable %s: options only apply to enum variables", n);
    if (is_enum) {
        if (v->n_options == 0 || v->n_options > OPTIONS_MAX)
            return WD_ERR(WD_ERR_INVALID, "variable %s: an enum needs 1 to %d options", n,
                          OPTIONS_MAX);
        for (size_t k = 0; k < v->n_options; k++) {
            const char *o = v->options[k];
            if (o == NULL || o[0] == '\0' || strlen(o) > WD_TEMPLATE_MAX_VALUE ||
                has_ctl(o, false) || !utf8_ok(o, NULL))
                return WD_ERR(WD_ERR_INVALID,
                              "variable %s: options[%zu] is empty or not clean text", n, k);
            for (size_t j = 0; j < k; j++)
                if (strcmp(v->options[j], o) == 0)
                    return WD_ERR(WD_ERR_INVALID, "variable %s: option \"%.64s\" listed twice", n,
                                  o);
        }
    }
    /* A required variable may have no default: then the operator must give
     * one (e.g. the port the panel allocated). Any default given must
     * satisfy the variable's own rules. */
    const char *def = v->default_value ? v->default_value : "";
    if (def[0] != '\0') {
        wd_status st = check_value(v, def);
        if (st != WD_OK) {
            char why[256];
            snprintf(why, sizeof why, "%s", wd_err_msg());
            return WD_ERR(st, "variable %s: invalid default (%s)", n, why);
        }
    }
    return WD_OK;
}

static wd_status check_line(const char *s, const char *field, size_t max)
{
    if (s == NULL)
        return WD_OK;
    if (strlen(s) > max)
        return WD_ERR(WD_ERR_INVALID, "%s: longer than %zu bytes", field, max);
    if (has_ctl(s, false))
        return WD_ERR(WD_ERR_INVALID, "%s: contains control characters (one line only)", field);
    return WD_OK;
}

wd_status wd_template_validate(const Warden__V1__Template *t)
{
    if (t == NULL)
        return WD_ERR(WD_ERR_INVALID, "template: NULL");
    wd_status st;
    if (t->id == NULL || t->id[0] == '\0')
        return WD_ERR(WD_ERR_INVALID, "id: required");
    if (!is_slug(t->id))
        return WD_ERR(
            WD_ERR_INVALID,
            "id \"%.64s\": must be letters, digits, '-' or '_' (at most %d, starting with "
            "a letter or digit)",
            t->id, ID_MAX);
    if (t->startup == NULL || t->startup[0] == '\0')
        return WD_ERR(WD_ERR_INVALID, "startup: required");
    if (has_ctl(t->startup, true))
        return WD_ERR(WD_ERR_INVALID, "startup: contains control characters");
    if ((st = check_line(t->stop_command, "stop.command", LINE_MAX_LEN)) != WD_OK)
        return st;
    if ((st = check_line(t->done_pattern, "done", LINE_MAX_LEN)) != WD_OK)
        return st;
    if ((st = check_line(t->name, "name", LINE_MAX_LEN)) != WD_OK)
        return st;
    const char *interp = t->install_interpreter ? t->install_interpreter : "";
    if (interp[0] != '\0' && (interp[0] != '/' || strlen(interp) > INTERP_MAX ||
                              has_ctl(interp, false) || strchr(interp, ' ') != NULL))
        return WD_ERR(WD_ERR_INVALID,
                      "install.interpreter: must be an absolute path such as /bin/sh");
    if (t->stop_grace_seconds > GRACE_MAX)
        return WD_ERR(WD_ERR_INVALID, "stop.grace_seconds: at most %d", GRACE_MAX);
    if (t->n_variables > WD_TEMPLATE_MAX_VARS)
        return WD_ERR(WD_ERR_INVALID, "variables: more than %d", WD_TEMPLATE_MAX_VARS);
    if (t->n_config_files > WD_TEMPLATE_MAX_FILES)
        return WD_ERR(WD_ERR_INVALID, "config_files: more than %d", WD_TEMPLATE_MAX_FILES);
    if (t->n_environment > WD_TEMPLATE_MAX_VARS)
        return WD_ERR(WD_ERR_INVALID, "environment: more than %d entries", WD_TEMPLATE_MAX_VARS);

    for (size_t i = 0; i < t->n_variables; i++)
        if ((st = validate_variable(t, i)) != WD_OK)
            return st;

    /* Startup: the word list must split, and each word's placeholders
     * must resolve (quotes can hide a placeholder from the raw text). */
    char **words = NULL;
    int nw = 0;
    if ((st = split_words(t->startup, &words, &nw)) != WD_OK)
        return st;
    for (int i = 0; i < nw && st == WD_OK; i++)
        st = check_refs(t, words[i], "startup");
    wd_argv_free(words);
    if (st != WD_OK)
        return st;

    for (size_t i = 0; i < t->n_config_files; i++) {
        const Warden__V1__ConfigFile *f = t->config_files[i];
        if (f == NULL || f->path == NULL || !wd_path_rel_ok(f->path))
            return WD_ERR(WD_ERR_INVALID,
                          "config_files[%zu].path: must be a relative path inside the server "
                          "directory (no \"..\", no leading '/')",
                          i);
        for (size_t j = 0; j < i; j++)
            if (strcmp(t->config_files[j]->path, f->path) == 0)
                return WD_ERR(WD_ERR_INVALID, "config_files[%zu].path: %s listed twice", i,
                              f->path);
        if (f->mode > 0777)
            return WD_ERR(WD_ERR_INVALID, "config_files[%zu].mode: at most 0777", i);
        char where[64];
        snprintf(where, sizeof where, "config_files[%zu].content", i);
        if ((st = check_refs(t, f->content ? f->content : "", where)) != WD_OK)
            return st;
    }
    for (size_t i = 0; i < t->n_environment; i++) {
        const Warden__V1__Template__EnvironmentEntry *e = t->environment[i];
        if (e == NULL || e->key == NULL || !is_env_name(e->key))
            return WD_ERR(WD_ERR_INVALID,
                          "environment: name \"%.64s\" must match [A-Za-z_][A-Za-z0-9_]*",
                          e && e->key ? e->key : "");
        for (size_t j = 0; j < i; j++)
            if (strcmp(t->environment[j]->key, e->key) == 0)
                return WD_ERR(WD_ERR_INVALID, "environment: %s listed twice", e->key);
        const char *val = e->value ? e->value : "";
        char where[96];
        snprintf(where, sizeof where, "environment.%s", e->key);
        if (has_ctl(val, false))
            return WD_ERR(WD_ERR_INVALID, "%s: contains control characters", where);
        if ((st = check_refs(t, val, where)) != WD_OK)
            return st;
    }
    return WD_OK;
}

void wd_template_free(Warden__V1__Template **t)
{
    if (t == NULL || *t == NULL)
        return;
    protobuf_c_message_free_unpacked(&(*t)->base, NULL);
    *t = NULL;
}

/* ------------------------------------------------------------------------ */
/* Resolve                                                                  */
/* ------------------------------------------------------------------------ */

void wd_kv_free(wd_kv *kv, size_t n)
{
    if (kv == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        free(kv[i].key);
        free(kv[i].value);
    }
    free(kv);
}

wd_status wd_template_resolve(const Warden__V1__Template *t, const wd_kv *given, size_t n_given,
                              wd_kv **out, size_t *n_out)
{
    if (t == NULL || out == NULL || n_out == NULL || (n_given > 0 && given == NULL))
        return WD_ERR(WD_ERR_INVALID, "resolve: NULL argument");
    *out = NULL;
    *n_out = 0;
    for (size_t i = 0; i < n_given; i++) {
        if (given[i].key == NULL || given[i].value == NULL)
            return WD_ERR(WD_ERR_INVALID, "resolve: given[%zu] has no name or value", i);
        if (find_var(t, given[i].key) == NULL)
            return WD_ERR(WD_ERR_INVALID, "unknown variable %.64s", given[i].key);
        for (size_t j = 0; j < i; j++)
            if (strcmp(given[j].key, given[i].key) == 0)
                return WD_ERR(WD_ERR_INVALID, "variable %s given twice", given[i].key);
    }
    wd_kv *kv = calloc(t->n_variables ? t->n_variables : 1, sizeof *kv);
    if (kv == NULL)
        return WD_ERR(WD_ERR_NOMEM, "out of memory");
    size_t filled = 0;
    wd_status st = WD_OK;
    for (size_t i = 0; i < t->n_variables; i++) {
        const Warden__V1__TemplateVariable *v = t->variables[i];
        if (v == NULL || v->name == NULL) {
            st = WD_ERR(WD_ERR_INVALID, "variables[%zu]: missing", i);
            goto out;
        }
        const char *val = kv_find(given, n_given, v->name);
        if (val == NULL)
            val = v->default_value ? v->default_value : "";
        if ((st = check_value(v, val)) != WD_OK)
            goto out;
        kv[i].key = strdup(v->name);
        kv[i].value = strdup(val);
        filled = i + 1;
        if (kv[i].key == NULL || kv[i].value == NULL) {
            st = WD_ERR(WD_ERR_NOMEM, "out of memory");
            goto out;
        }
    }
    *out = kv;
    *n_out = t->n_variables;
    kv = NULL;
out:
    wd_kv_free(kv, filled);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Confined paths                                                           */
/* ------------------------------------------------------------------------ */

bool wd_path_rel_ok(const char *rel)
{
    if (rel == NULL || rel[0] == '\0' || rel[0] == '/')
        return false;
    size_t len = strlen(rel);
    if (len > PATH_REL_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)rel[i];
        if (c < 0x20 || c == 0x7f)
            return false;
    }
    const char *p = rel;
    for (;;) {
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 0 || (n == 2 && p[0] == '.' && p[1] == '.'))
            return false;
        if (e == NULL)
            break;
        p = e + 1;
    }
    return true;
}

/* True if some '/'-separated component of rel is "..". */
static bool has_dotdot(const char *rel)
{
    for (const char *p = rel; (p = strstr(p, "..")) != NULL; p += 2)
        if ((p == rel || p[-1] == '/') && (p[2] == '\0' || p[2] == '/'))
            return true;
    return false;
}

/* Opens dir (relative to dirfd) with the kernel refusing any symlink and
 * any escape from dirfd. -1 with errno on failure (ENOSYS without openat2). */
static int openat2_dir(int dirfd, const char *path)
{
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

/* One step of the component walk: creates name under dirfd if missing and
 * opens it as a directory without following a symlink. Safe on its own:
 * names never contain '/' or "..", and O_NOFOLLOW refuses a symlink. */
static wd_status walk_step(int dirfd, const char *name, const char *rel, int *out)
{
    if (mkdirat(dirfd, name, 0755) != 0 && errno != EEXIST)
        return WD_ERR(WD_ERR_IO, "%s: mkdir %s: %s", rel, name, strerror(errno));
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        struct stat sb;
        if (fstatat(dirfd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(sb.st_mode))
            return WD_ERR(WD_ERR_DENIED, "%s: %s is a symlink", rel, name);
        if (e == ENOTDIR)
            return WD_ERR(WD_ERR_INVALID, "%s: %s is not a directory", rel, name);
        return WD_ERR(WD_ERR_IO, "%s: open %s: %s", rel, name, strerror(e));
    }
    *out = fd;
    return WD_OK;
}

/* Opens (creating as needed) the directory dir below rootfd. */
static wd_status open_parent(int rootfd, const char *dir, const char *rel, int *out)
{
    int fd = openat2_dir(rootfd, dir);
    if (fd >= 0) {
        *out = fd;
        return WD_OK;
    }
    if (errno == ELOOP || errno == EXDEV)
        return WD_ERR(WD_ERR_DENIED, "%s: a directory on the path is a symlink", rel);
    /* ENOENT (directories to create), ENOSYS (no openat2), EPERM (a seccomp
     * filter that does not know openat2), EAGAIN: walk component by
     * component, which is just as strict. */
    char *copy = strdup(dir);
    if (copy == NULL)
        return WD_ERR(WD_ERR_NOMEM, "out of memory");
    wd_status st = WD_OK;
    int cur = dup(rootfd);
    if (cur < 0) {
        st = WD_ERR(WD_ERR_IO, "dup: %s", strerror(errno));
        goto out;
    }
    char *p = copy;
    while (p != NULL) {
        char *slash = strchr(p, '/');
        if (slash != NULL)
            *slash = '\0';
        int next = -1;
        if (strcmp(p, ".") != 0) {
            if ((st = walk_step(cur, p, rel, &next)) != WD_OK)
                goto out;
            close(cur);
            cur = next;
        }
        p = slash ? slash + 1 : NULL;
    }
    *out = cur;
    cur = -1;
out:
    if (cur >= 0)
        close(cur);
    free(copy);
    return st;
}

static wd_status write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return WD_ERR(WD_ERR_IO, "write: %s", strerror(errno));
        }
        p += n;
        len -= (size_t)n;
    }
    return WD_OK;
}

wd_status wd_path_write_confined(const char *root, const char *rel, const void *data, size_t len,
                                 unsigned mode)
{
    if (root == NULL || rel == NULL || (len > 0 && data == NULL))
        return WD_ERR(WD_ERR_INVALID, "write_confined: NULL argument");
    if (!wd_path_rel_ok(rel)) {
        bool escape = rel[0] == '/' || has_dotdot(rel);
        return WD_ERR(escape ? WD_ERR_DENIED : WD_ERR_INVALID,
                      "path \"%.64s\": not a relative path inside the directory", rel);
    }
    if (mode == 0)
        mode = 0644;
    if (mode > 0777)
        return WD_ERR(WD_ERR_INVALID, "%s: mode %o has bits above 0777", rel, mode);

    wd_status st = WD_OK;
    int rootfd = -1, dirfd = -1, fd = -1;
    bool tmp_made = false;
    char tmp[64];
    char *dir = NULL;
    const char *base = rel;

    rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0) {
        st =
            WD_ERR(errno == ENOENT ? WD_ERR_NOT_FOUND : WD_ERR_IO, "%s: %s", root, strerror(errno));
        goto out;
    }
    const char *slash = strrchr(rel, '/');
    if (slash != NULL) {
        base = slash + 1;
        dir = strndup(rel, (size_t)(slash - rel));
        if (dir == NULL) {
            st = WD_ERR(WD_ERR_NOMEM, "out of memory");
            goto out;
        }
        if ((st = open_parent(rootfd, dir, rel, &dirfd)) != WD_OK)
            goto out;
    } else {
        dirfd = rootfd;
        rootfd = -1;
    }
    if (strcmp(base, ".") == 0) {
        st = WD_ERR(WD_ERR_INVALID, "%s: names a directory", rel);
        goto out;
    }

    /* The final name: a symlink there is refused outright (renaming over
     * it would be harmless, but it is a sign of tampering); directories and
     * special files are not ours to replace. */
    struct stat sb;
    if (fstatat(dirfd, base, &sb, AT_SYMLINK_NOFOLLOW) == 0) {
        if (S_ISLNK(sb.st_mode)) {
            st = WD_ERR(WD_ERR_DENIED, "%s: is a symlink", rel);
            goto out;
        }
        if (!S_ISREG(sb.st_mode)) {
            st = WD_ERR(WD_ERR_INVALID, "%s: exists and is not a regular file", rel);
            goto out;
        }
    } else if (errno != ENOENT) {
        st = WD_ERR(WD_ERR_IO, "%s: %s", rel, strerror(errno));
        goto out;
    }

    /* Write a fresh temp file next to it, then rename over: readers see the
     * old or the new content, never a torn file. O_EXCL never follows a
     * symlink planted under the temp name. */
    for (int attempt = 0; fd < 0; attempt++) {
        uint64_t r = 0;
        if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r)
            r = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20) ^ (uint64_t)attempt;
        snprintf(tmp, sizeof tmp, ".wd-tmp-%016" PRIx64, r);
        fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0 && (errno != EEXIST || attempt >= 8)) {
            st = WD_ERR(WD_ERR_IO, "%s: create temp file: %s", rel, strerror(errno));
            goto out;
        }
    }
    tmp_made = true;
    if ((st = write_all(fd, data, len)) != WD_OK)
        goto out;
    if (fchmod(fd, (mode_t)mode) != 0 || fsync(fd) != 0) {
        st = WD_ERR(WD_ERR_IO, "%s: %s", rel, strerror(errno));
        goto out;
    }
    int rc = close(fd);
    fd = -1;
    if (rc != 0) {
        st = WD_ERR(WD_ERR_IO, "%s: close: %s", rel, strerror(errno));
        goto out;
    }
    if (renameat(dirfd, tmp, dirfd, base) != 0) {
        st = WD_ERR(WD_ERR_IO, "%s: rename: %s", rel, strerror(errno));
        goto out;
    }
    tmp_made = false;
    (void)fsync(dirfd); /* best effort: the directory entry */
out:
    if (fd >= 0)
        close(fd);
    if (tmp_made)
        unlinkat(dirfd, tmp, 0);
    if (dirfd >= 0)
        close(dirfd);
    if (rootfd >= 0)
        close(rootfd);
    free(dir);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Building messages                                                        */
/* ------------------------------------------------------------------------ */

static Warden__V1__Template *tpl_new(void)
{
    Warden__V1__Template *t = malloc(sizeof *t);
    if (t != NULL)
        warden__v1__template__init(t);
    return t;
}

/* Appends a new, initialised variable to t. */
static wd_status add_var(Warden__V1__Template *t, Warden__V1__TemplateVariable **out)
{
    if (t->n_variables >= WD_TEMPLATE_MAX_VARS)
        return WD_ERR(WD_ERR_INVALID, "variables: more than %d", WD_TEMPLATE_MAX_VARS);
    Warden__V1__TemplateVariable **a =
        realloc(t->variables, (t->n_variables + 1) * sizeof *t->variables);
    if (a == NULL)
        return WD_ERR(WD_ERR_NOMEM, "out of memory");
    t->variables = a;
    Warden__V1__TemplateVariable *v = malloc(sizeof *v);
    if (v == NULL)
        return WD_ERR(WD_ERR_NOMEM, "out of memory");
    warden__v1__template_variable__init(v);
    v->user_viewable = 1;
    a[t->n_variables++] = v;
    *out = v;
    return WD_OK;
}

static wd_status add_file(Warden__V1__Template *t, Warden__V1__ConfigFile **out)
{
    if (t->n_config_files >= WD_TEMPLATE_MAX_FILES)
        return WD_ERR(WD_ERR_INVALID, "config_files: more than %d", WD_TEMPLATE_MAX_FILES);
    Warden__V1__ConfigFile **a =
        realloc(t->config_files, (t->n_config_files + 1) * sizeof *t->config_files);
    if (a == NULL)
        return WD_ERR(WD_ERR_NOMEM, "out of memory");
    t->config_files = a;
    Warden__V1__ConfigFile *f = malloc(sizeof *f);
    if (f == NULL)
        return WD_ERR(WD_ERR_NOMEM, "out of memory");
    warden__v1__config_file__init(f);
    a[t->n_config_files++] = f;
    *out = f;
    return WD_OK;
}

static wd_status add_env(Warden__V1__Template *t, const char *key, const char *value)
{
    if (t->n_environment >= WD_TEMPLATE_MAX_VARS)
        return WD_ERR(WD_ERR_INVALID, "environment: more than %d entries", WD_TEMPLATE_MAX_VARS);
    Warden__V1__Template__EnvironmentEntry **a =
        realloc(t->environment, (t->n_environment + 1) * sizeof *t->environment);
    if (a == NULL)
        return WD_ERR(WD_ERR_NOMEM, "out of memory");
    t->environment = a;
    Warden__V1__Template__EnvironmentEntry *e = malloc(sizeof *e);
    if (e == NULL)
        return WD_ERR(WD_ERR_NOMEM, "out of memory");
    warden__v1__template__environment_entry__init(e);
    a[t->n_environment++] = e;
    wd_status st = set_str(&e->key, key);
    if (st == WD_OK)
        st = set_str(&e->value, value);
    return st;
}

static wd_status push_str(char ***arr, size_t *n, const char *s, size_t max, const char *what)
{
    if (*n >= max)
        return WD_ERR(WD_ERR_INVALID, "%s: more than %zu entries", what, max);
    char **a = realloc(*arr, (*n + 1) * sizeof **arr);
    if (a == NULL)
        return WD_ERR(WD_ERR_NOMEM, "out of memory");
    *arr = a;
    char *c = strdup(s);
    if (c == NULL)
        return WD_ERR(WD_ERR_NOMEM, "out of memory");
    a[(*n)++] = c;
    return WD_OK;
}

/* Records what an import could not carry over. */
static wd_status note(Warden__V1__Template *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static wd_status note(Warden__V1__Template *t, const char *fmt, ...)
{
    if (t->n_import_notes > NOTES_MAX)
        return WD_OK;
    char buf[512];
    if (t->n_import_notes == NOTES_MAX) {
        snprintf(buf, sizeof buf, "further notes omitted (more than %d)", NOTES_MAX);
    } else {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);
    }
    return push_str(&t->import_notes, &t->n_import_notes, buf, NOTES_MAX + 1, "import_notes");
}

/* ------------------------------------------------------------------------ */
/* Warden JSON: reading                                                     */
/* ------------------------------------------------------------------------ */

#define FIELD_ERR(where, key, ...) field_err(__FILE__, __LINE__, (where), (key), __VA_ARGS__)

static wd_status field_err(const char *file, int line, const char *where, const char *key,
                           const char *what, ...) __attribute__((format(printf, 5, 6)));
static wd_status field_err(const char *file, int line, const char *where, const char *key,
                           const char *what, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, what);
    vsnprintf(msg, sizeof msg, what, ap);
    va_end(ap);
    return wd_err_set(WD_ERR_INVALID, file, line, "%s%s%.64s: %s", where, *where ? "." : "", key,
                      msg);
}

/* Refuses keys not in allowed: a typo must not pass silently. */
static wd_status check_keys(json_t *obj, const char *where, const char *const allowed[])
{
    const char *k;
    json_t *v;
    json_object_foreach (obj, k, v) {
        bool ok = false;
        for (int i = 0; allowed[i] && !ok; i++)
            ok = strcmp(k, allowed[i]) == 0;
        if (!ok)
            return WD_ERR(WD_ERR_INVALID, "%s%sunknown field \"%.64s\"", where, *where ? ": " : "",
                          k);
    }
    return WD_OK;
}

static wd_status jstr(json_t *obj, const char *key, const char *where, bool required, char **dst)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL)
        return required ? FIELD_ERR(where, key, "required") : WD_OK;
    if (!json_is_string(v))
        return FIELD_ERR(where, key, "expected a string");
    return set_str(dst, json_string_value(v));
}

static wd_status jbool(json_t *obj, const char *key, const char *where, protobuf_c_boolean *dst)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL)
        return WD_OK;
    if (!json_is_boolean(v))
        return FIELD_ERR(where, key, "expected true or false");
    *dst = json_is_true(v);
    return WD_OK;
}

static wd_status jint(json_t *obj, const char *key, const char *where, int64_t lo, int64_t hi,
                      bool *present, int64_t *dst)
{
    json_t *v = json_object_get(obj, key);
    if (present)
        *present = v != NULL;
    if (v == NULL)
        return WD_OK;
    if (!json_is_integer(v))
        return FIELD_ERR(where, key, "expected an integer");
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi)
        return FIELD_ERR(where, key, "must be between %" PRId64 " and %" PRId64, lo, hi);
    *dst = (int64_t)x;
    return WD_OK;
}

static wd_status parse_type(const char *s, Warden__V1__VariableType *out)
{
    static const struct {
        const char *name;
        Warden__V1__VariableType type;
    } types[] = {
        {"string", WARDEN__V1__VARIABLE_TYPE__VAR_STRING},
        {"integer", WARDEN__V1__VARIABLE_TYPE__VAR_INTEGER},
        {"boolean", WARDEN__V1__VARIABLE_TYPE__VAR_BOOLEAN},
        {"enum", WARDEN__V1__VARIABLE_TYPE__VAR_ENUM},
    };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strcmp(s, types[i].name) == 0) {
            *out = types[i].type;
            return WD_OK;
        }
    return WD_ERR(WD_ERR_INVALID, "unknown type");
}

static wd_status parse_variable(json_t *o, const char *where, Warden__V1__TemplateVariable *v)
{
    static const char *const keys[] = {
        "name",   "description", "type", "default",    "required", "user_editable", "user_viewable",
        "secret", "min",         "max",  "max_length", "pattern",  "options",       NULL};
    wd_status st;
    if (!json_is_object(o))
        return WD_ERR(WD_ERR_INVALID, "%s: expected an object", where);
    if ((st = check_keys(o, where, keys)) != WD_OK)
        return st;
    if ((st = jstr(o, "name", where, true, &v->name)) != WD_OK ||
        (st = jstr(o, "description", where, false, &v->description)) != WD_OK)
        return st;
    json_t *type = json_object_get(o, "type");
    if (type != NULL) {
        if (!json_is_string(type) || parse_type(json_string_value(type), &v->type) != WD_OK)
            return FIELD_ERR(where, "type",
                             "expected \"string\", \"integer\", \"boolean\" or \"enum\"");
    }
    json_t *def = json_object_get(o, "default");
    if (def != NULL) {
        /* Strings are canonical; an integer or boolean is accepted for the
         * types where it reads naturally and stored as text. */
        char num[32];
        if (json_is_string(def)) {
            st = set_str(&v->default_value, json_string_value(def));
        } else if (json_is_integer(def)) {
            snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(def));
            st = set_str(&v->default_value, num);
        } else if (json_is_boolean(def)) {
            st = set_str(&v->default_value, json_is_true(def) ? "true" : "false");
        } else {
            return FIELD_ERR(where, "default", "expected a string");
        }
        if (st != WD_OK)
            return st;
    }
    if ((st = jbool(o, "required", where, &v->required)) != WD_OK ||
        (st = jbool(o, "user_editable", where, &v->user_editable)) != WD_OK ||
        (st = jbool(o, "user_viewable", where, &v->user_viewable)) != WD_OK ||
        (st = jbool(o, "secret", where, &v->secret)) != WD_OK)
        return st;

    bool is_int = v->type == WARDEN__V1__VARIABLE_TYPE__VAR_INTEGER;
    bool is_str = v->type == WARDEN__V1__VARIABLE_TYPE__VAR_STRING;
    bool has_min = false, has_max = false;
    if ((st = jint(o, "min", where, INT64_MIN, INT64_MAX, &has_min, &v->min)) != WD_OK ||
        (st = jint(o, "max", where, INT64_MIN, INT64_MAX, &has_max, &v->max)) != WD_OK)
        return st;
    if ((has_min || has_max) && !is_int)
        return FIELD_ERR(where, has_min ? "min" : "max", "only integer variables have min and max");
    /* One bound alone leaves the other open (both 0 means unbounded). */
    if (has_min && !has_max)
        v->max = INT64_MAX;
    if (has_max && !has_min)
        v->min = INT64_MIN;
    normalize_bounds(v);

    bool has_len = false;
    int64_t ml = 0;
    if ((st = jint(o, "max_length", where, 0, WD_TEMPLATE_MAX_VALUE, &has_len, &ml)) != WD_OK)
        return st;
    if (has_len && !is_str)
        return FIELD_ERR(where, "max_length", "only string variables have max_length");
    v->max_length = (uint32_t)ml;
    json_t *pat = json_object_get(o, "pattern");
    if (pat != NULL && !is_str)
        return FIELD_ERR(where, "pattern", "only string variables have a pattern");
    if ((st = jstr(o, "pattern", where, false, &v->pattern)) != WD_OK)
        return st;

    json_t *opts = json_object_get(o, "options");
    if (opts != NULL) {
        if (v->type != WARDEN__V1__VARIABLE_TYPE__VAR_ENUM)
            return FIELD_ERR(where, "options", "only enum variables have options");
        if (!json_is_array(opts))
            return FIELD_ERR(where, "options", "expected an array of strings");
        size_t i;
        json_t *e;
        json_array_foreach (opts, i, e) {
            if (!json_is_string(e))
                return FIELD_ERR(where, "options", "expected an array of strings");
            if ((st = push_str(&v->options, &v->n_options, json_string_value(e), OPTIONS_MAX,
                               "options")) != WD_OK)
                return st;
        }
    }
    return WD_OK;
}

static wd_status parse_mode(json_t *m, const char *where, uint32_t *out)
{
    const char *s = json_is_string(m) ? json_string_value(m) : NULL;
    size_t n = s ? strlen(s) : 0;
    bool ok = n >= 3 && n <= 4 && (n == 3 || s[0] == '0');
    for (size_t i = 0; ok && i < n; i++)
        ok = s[i] >= '0' && s[i] <= '7';
    if (!ok)
        return FIELD_ERR(
            where, "mode",
            "expected an octal string such as \"0644\" (no setuid, setgid or sticky bits)");
    *out = (uint32_t)strtoul(s, NULL, 8);
    return WD_OK;
}

static wd_status parse_warden(json_t *root, Warden__V1__Template *t)
{
    static const char *const keys[] = {
        "format",      "id",        "name",          "description",  "author",
        "startup",     "stop",      "done",          "install",      "config_files",
        "environment", "variables", "imported_from", "import_notes", NULL};
    wd_status st;
    json_t *fmt = json_object_get(root, "format");
    if (fmt == NULL)
        return WD_ERR(WD_ERR_INVALID, "format: required (\"%s\")", FORMAT_TAG);
    if (!json_is_string(fmt) || strcmp(json_string_value(fmt), FORMAT_TAG) != 0)
        return WD_ERR(WD_ERR_INVALID, "format: expected \"%s\"", FORMAT_TAG);
    if ((st = check_keys(root, "", keys)) != WD_OK)
        return st;
    if ((st = jstr(root, "id", "", true, &t->id)) != WD_OK ||
        (st = jstr(root, "name", "", false, &t->name)) != WD_OK ||
        (st = jstr(root, "description", "", false, &t->description)) != WD_OK ||
        (st = jstr(root, "author", "", false, &t->author)) != WD_OK ||
        (st = jstr(root, "startup", "", true, &t->startup)) != WD_OK ||
        (st = jstr(root, "done", "", false, &t->done_pattern)) != WD_OK)
        return st;

    json_t *stop = json_object_get(root, "stop");
    if (stop != NULL) {
        static const char *const stop_keys[] = {"command", "grace_seconds", NULL};
        if (!json_is_object(stop))
            return WD_ERR(WD_ERR_INVALID,
                          "stop: expected an object {\"command\", \"grace_seconds\"}");
        int64_t g = 0;
        if ((st = check_keys(stop, "stop", stop_keys)) != WD_OK ||
            (st = jstr(stop, "command", "stop", false, &t->stop_command)) != WD_OK ||
            (st = jint(stop, "grace_seconds", "stop", 0, GRACE_MAX, NULL, &g)) != WD_OK)
            return st;
        t->stop_grace_seconds = (uint32_t)g;
    }

    json_t *inst = json_object_get(root, "install");
    if (inst != NULL) {
        static const char *const inst_keys[] = {"script", "interpreter", NULL};
        if (!json_is_object(inst))
            return WD_ERR(WD_ERR_INVALID,
                          "install: expected an object {\"script\", \"interpreter\"}");
        if ((st = check_keys(inst, "install", inst_keys)) != WD_OK ||
            (st = jstr(inst, "script", "install", false, &t->install_script)) != WD_OK ||
            (st = jstr(inst, "interpreter", "install", false, &t->install_interpreter)) != WD_OK)
            return st;
    }

    json_t *files = json_object_get(root, "config_files");
    if (files != NULL) {
        static const char *const file_keys[] = {"path", "content", "mode", NULL};
        if (!json_is_array(files))
            return WD_ERR(WD_ERR_INVALID, "config_files: expected an array");
        size_t i;
        json_t *o;
        json_array_foreach (files, i, o) {
            char where[48];
            snprintf(where, sizeof where, "config_files[%zu]", i);
            Warden__V1__ConfigFile *f = NULL;
            if (!json_is_object(o))
                return WD_ERR(WD_ERR_INVALID, "%s: expected an object", where);
            if ((st = add_file(t, &f)) != WD_OK ||
                (st = check_keys(o, where, file_keys)) != WD_OK ||
                (st = jstr(o, "path", where, true, &f->path)) != WD_OK ||
                (st = jstr(o, "content", where, false, &f->content)) != WD_OK)
                return st;
            json_t *m = json_object_get(o, "mode");
            if (m != NULL && (st = parse_mode(m, where, &f->mode)) != WD_OK)
                return st;
        }
    }

    json_t *env = json_object_get(root, "environment");
    if (env != NULL) {
        if (!json_is_object(env))
            return WD_ERR(WD_ERR_INVALID, "environment: expected an object of strings");
        const char *k;
        json_t *v;
        json_object_foreach (env, k, v) {
            if (!json_is_string(v))
                return FIELD_ERR("environment", k, "expected a string");
            if ((st = add_env(t, k, json_string_value(v))) != WD_OK)
                return st;
        }
    }

    json_t *vars = json_object_get(root, "variables");
    if (vars != NULL) {
        if (!json_is_array(vars))
            return WD_ERR(WD_ERR_INVALID, "variables: expected an array");
        size_t i;
        json_t *o;
        json_array_foreach (vars, i, o) {
            char where[48];
            snprintf(where, sizeof where, "variables[%zu]", i);
            Warden__V1__TemplateVariable *v = NULL;
            if ((st = add_var(t, &v)) != WD_OK || (st = parse_variable(o, where, v)) != WD_OK)
                return st;
        }
    }

    const char *src = "warden";
    json_t *from = json_object_get(root, "imported_from");
    if (from != NULL) {
        if (!json_is_string(from) || !is_slug(json_string_value(from)))
            return WD_ERR(WD_ERR_INVALID,
                          "imported_from: expected a format name such as \"ptdl_v2\"");
        src = json_string_value(from);
    }
    if ((st = set_str(&t->source_format, src)) != WD_OK)
        return st;
    json_t *notes = json_object_get(root, "import_notes");
    if (notes != NULL) {
        if (!json_is_array(notes))
            return WD_ERR(WD_ERR_INVALID, "import_notes: expected an array of strings");
        size_t i;
        json_t *e;
        json_array_foreach (notes, i, e) {
            if (!json_is_string(e))
                return WD_ERR(WD_ERR_INVALID, "import_notes[%zu]: expected a string", i);
            if ((st = push_str(&t->import_notes, &t->n_import_notes, json_string_value(e),
                               NOTES_MAX + 1, "import_notes")) != WD_OK)
                return st;
        }
    }
    return WD_OK;
}

/* ------------------------------------------------------------------------ */
/* Warden JSON: writing                                                     */
/* ------------------------------------------------------------------------ */

/* Adds key = v to o; v may be NULL (allocation failure or text that is not
 * UTF-8), which fails. json_object_set_new always consumes v. */
static bool jset(json_t *o, const char *key, json_t *v)
{
    return v != NULL && json_object_set_new(o, key, v) == 0;
}

static bool jset_str_nonempty(json_t *o, const char *key, const char *s)
{
    return s == NULL || s[0] == '\0' || jset(o, key, json_string(s));
}

static bool jappend(json_t *a, json_t *v)
{
    return v != NULL && json_array_append_new(a, v) == 0;
}

static json_t *variable_to_json(const Warden__V1__TemplateVariable *v)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    const char *tn = type_name(v->type);
    bool ok = jset(o, "name", json_string(v->name)) &&
              jset_str_nonempty(o, "description", v->description) &&
              jset(o, "type", json_string(tn ? tn : "string")) &&
              jset(o, "default", json_string(v->default_value ? v->default_value : "")) &&
              jset(o, "required", json_boolean(v->required)) &&
              jset(o, "user_editable", json_boolean(v->user_editable)) &&
              jset(o, "user_viewable", json_boolean(v->user_viewable)) &&
              jset(o, "secret", json_boolean(v->secret));
    if (ok && bounded(v)) {
        if (v->min != INT64_MIN)
            ok = jset(o, "min", json_integer(v->min));
        if (ok && v->max != INT64_MAX)
            ok = jset(o, "max", json_integer(v->max));
    }
    if (ok && v->max_length != 0)
        ok = jset(o, "max_length", json_integer(v->max_length));
    if (ok)
        ok = jset_str_nonempty(o, "pattern", v->pattern);
    if (ok && v->n_options > 0) {
        json_t *a = json_array();
        ok = a != NULL;
        for (size_t i = 0; ok && i < v->n_options; i++)
            ok = jappend(a, json_string(v->options[i]));
        if (ok)
            ok = jset(o, "options", a);
        else
            json_decref(a);
    }
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

wd_status wd_template_to_json(const Warden__V1__Template *t, char **out)
{
    if (t == NULL || out == NULL)
        return WD_ERR(WD_ERR_INVALID, "to_json: NULL argument");
    *out = NULL;
    json_t *root = json_object();
    bool ok = root != NULL && jset(root, "format", json_string(FORMAT_TAG)) &&
              jset(root, "id", json_string(t->id)) && jset(root, "name", json_string(t->name)) &&
              jset_str_nonempty(root, "description", t->description) &&
              jset_str_nonempty(root, "author", t->author) &&
              jset(root, "startup", json_string(t->startup));
    if (ok && ((t->stop_command && t->stop_command[0]) || t->stop_grace_seconds != 0)) {
        json_t *s = json_object();
        ok = s != NULL && jset_str_nonempty(s, "command", t->stop_command) &&
             (t->stop_grace_seconds == 0 ||
              jset(s, "grace_seconds", json_integer(t->stop_grace_seconds)));
        if (ok)
            ok = jset(root, "stop", s);
        else
            json_decref(s);
    }
    if (ok)
        ok = jset_str_nonempty(root, "done", t->done_pattern);
    if (ok && ((t->install_script && t->install_script[0]) ||
               (t->install_interpreter && t->install_interpreter[0]))) {
        json_t *s = json_object();
        ok = s != NULL && jset_str_nonempty(s, "script", t->install_script) &&
             jset_str_nonempty(s, "interpreter", t->install_interpreter);
        if (ok)
            ok = jset(root, "install", s);
        else
            json_decref(s);
    }
    if (ok && t->n_config_files > 0) {
        json_t *a = json_array();
        ok = a != NULL;
        for (size_t i = 0; ok && i < t->n_config_files; i++) {
            const Warden__V1__ConfigFile *f = t->config_files[i];
            json_t *o = json_object();
            char mode[16];
            snprintf(mode, sizeof mode, "%04o", f->mode);
            ok = o != NULL && jset(o, "path", json_string(f->path)) &&
                 jset(o, "content", json_string(f->content)) &&
                 (f->mode == 0 || jset(o, "mode", json_string(mode)));
            if (ok)
                ok = jappend(a, o);
            else
                json_decref(o);
        }
        if (ok)
            ok = jset(root, "config_files", a);
        else
            json_decref(a);
    }
    if (ok && t->n_environment > 0) {
        json_t *e = json_object();
        ok = e != NULL;
        for (size_t i = 0; ok && i < t->n_environment; i++)
            ok = jset(e, t->environment[i]->key, json_string(t->environment[i]->value));
        if (ok)
            ok = jset(root, "environment", e);
        else
            json_decref(e);
    }
    if (ok && t->n_variables > 0) {
        json_t *a = json_array();
        ok = a != NULL;
        for (size_t i = 0; ok && i < t->n_variables; i++)
            ok = jappend(a, variable_to_json(t->variables[i]));
        if (ok)
            ok = jset(root, "variables", a);
        else
            json_decref(a);
    }
    if (ok && t->source_format && t->source_format[0] && strcmp(t->source_format, "warden") != 0)
        ok = jset(root, "imported_from", json_string(t->source_format));
    if (ok && t->n_import_notes > 0) {
        json_t *a = json_array();
        ok = a != NULL;
        for (size_t i = 0; ok && i < t->n_import_notes; i++)
            ok = jappend(a, json_string(t->import_notes[i]));
        if (ok)
            ok = jset(root, "import_notes", a);
        else
            json_decref(a);
    }
    char *s = ok ? json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(root);
    if (s == NULL)
        return WD_ERR(WD_ERR_INVALID,
                      "to_json: a text field is not valid UTF-8 (or out of memory)");
    *out = s;
    return WD_OK;
}

/* ------------------------------------------------------------------------ */
/* Pterodactyl egg import                                                   */
/* ------------------------------------------------------------------------ */

/* Egg strings that are JSON documents in a string (config.startup,
 * config.files, config.logs) are sometimes exported as objects instead. */
static json_t *egg_embedded(json_t *v, const char *field, wd_status *st)
{
    *st = WD_OK;
    if (v == NULL || json_is_null(v))
        return NULL;
    if (json_is_object(v) || json_is_array(v))
        return json_incref(v);
    if (!json_is_string(v)) {
        *st = WD_ERR(WD_ERR_INVALID, "egg %s: expected a JSON string", field);
        return NULL;
    }
    json_error_t err;
    json_t *j = json_loads(json_string_value(v), JSON_REJECT_DUPLICATES, &err);
    if (j == NULL)
        *st = WD_ERR(WD_ERR_INVALID, "egg %s: not valid JSON: %s", field, err.text);
    return j;
}

/* Optional egg string: absent or null reads as "". */
static wd_status egg_str(json_t *obj, const char *key, const char *field, const char **out)
{
    json_t *v = json_object_get(obj, key);
    *out = "";
    if (v == NULL || json_is_null(v))
        return WD_OK;
    if (!json_is_string(v))
        return WD_ERR(WD_ERR_INVALID, "egg %s: expected a string", field);
    *out = json_string_value(v);
    return WD_OK;
}

static bool json_nonempty(json_t *v)
{
    if (v == NULL || json_is_null(v))
        return false;
    if (json_is_object(v))
        return json_object_size(v) > 0;
    if (json_is_array(v))
        return json_array_size(v) > 0;
    if (json_is_string(v))
        return json_string_length(v) > 0;
    return true;
}

/* Joins the keys of an object (or string items of an array) for a note. */
static void join_names(json_t *v, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    const char *k;
    json_t *e;
    size_t i;
    if (json_is_object(v)) {
        json_object_foreach (v, k, e) {
            int n = snprintf(buf + used, size - used, "%s%.48s", used ? ", " : "", k);
            if (n < 0 || (size_t)n >= size - used)
                break;
            used += (size_t)n;
        }
    } else if (json_is_array(v)) {
        json_array_foreach (v, i, e) {
            const char *s = json_is_string(e) ? json_string_value(e) : "?";
            int n = snprintf(buf + used, size - used, "%s%.48s", used ? ", " : "", s);
            if (n < 0 || (size_t)n >= size - used)
                break;
            used += (size_t)n;
        }
    }
}

static wd_status make_slug(const char *name, char **dst)
{
    char s[ID_MAX + 1];
    size_t n = 0;
    bool dash = false;
    for (const unsigned char *p = (const unsigned char *)name; *p && n < ID_MAX; p++) {
        if (is_alpha(*p) || is_digit(*p)) {
            if (dash && n > 0 && n < ID_MAX)
                s[n++] = '-';
            dash = false;
            if (n < ID_MAX)
                s[n++] = (char)((*p >= 'A' && *p <= 'Z') ? *p - 'A' + 'a' : *p);
        } else {
            dash = true;
        }
    }
    s[n] = '\0';
    return set_str(dst, n ? s : "egg");
}

/* Translates a PCRE (as written in Laravel's regex: rule) to a POSIX ERE.
 * Covers what eggs use: anchors, groups, alternation, greedy quantifiers,
 * bracket expressions and \d \w \s. Anything else (lookaround, lazy
 * quantifiers, \b, back-references) is refused so it can be noted. */
static bool pcre_to_ere(const char *src, size_t n, sbuf *out)
{
    bool in_br = false;
    size_t br_start = 0;
    for (size_t i = 0; i < n; i++) {
        char c = src[i];
        if (in_br) {
            if (c == ']' && i > br_start) {
                in_br = false;
                if (sb_addc(out, c) != WD_OK)
                    return false;
                continue;
            }
            if (c == '\\') {
                if (++i >= n)
                    return false;
                char e = src[i];
                const char *rep = NULL;
                char one[2] = {e, '\0'};
                if (e == 'd')
                    rep = "0-9";
                else if (e == 'w')
                    rep = "A-Za-z0-9_";
                else if (e == 's')
                    rep = "[:space:]";
                else if (e == '-' || e == ']' || e == '^' || is_alpha((unsigned char)e) ||
                         is_digit((unsigned char)e))
                    return false; /* position-dependent or unknown in POSIX brackets */
                else
                    rep = one;
                if (sb_add(out, rep, strlen(rep)) != WD_OK)
                    return false;
                continue;
            }
            if (sb_addc(out, c) != WD_OK)
                return false;
            continue;
        }
        if (c == '\\') {
            if (++i >= n)
                return false;
            char e = src[i];
            const char *rep = NULL;
            char esc[3] = {'\\', e, '\0'};
            char one[2] = {e, '\0'};
            switch (e) {
            case 'd':
                rep = "[0-9]";
                break;
            case 'D':
                rep = "[^0-9]";
                break;
            case 'w':
                rep = "[A-Za-z0-9_]";
                break;
            case 'W':
                rep = "[^A-Za-z0-9_]";
                break;
            case 's':
                rep = "[[:space:]]";
                break;
            case 'S':
                rep = "[^[:space:]]";
                break;
            default:
                if (is_alpha((unsigned char)e) || is_digit((unsigned char)e))
                    return false;
                rep = strchr(".[]()*+?{}|^$\\", e) ? esc : one;
            }
            if (sb_add(out, rep, strlen(rep)) != WD_OK)
                return false;
            continue;
        }
        if (c == '(' && i + 1 < n && src[i + 1] == '?')
            return false;
        if ((c == '*' || c == '+' || c == '?' || c == '}') && i + 1 < n &&
            (src[i + 1] == '?' || src[i + 1] == '+'))
            return false;
        if (c == '[') {
            in_br = true;
            if (sb_addc(out, c) != WD_OK)
                return false;
            if (i + 1 < n && src[i + 1] == '^') {
                i++;
                if (sb_addc(out, '^') != WD_OK)
                    return false;
            }
            br_start = i + 1;
            if (br_start < n && src[br_start] == ']') {
                i++;
                if (sb_addc(out, ']') != WD_OK)
                    return false;
                br_start = i + 1;
            }
            continue;
        }
        if (sb_addc(out, c) != WD_OK)
            return false;
    }
    return !in_br;
}

/* End of one Laravel rule starting at p: the next '|', except that a
 * regex:/.../ rule runs to its closing delimiter (regexes contain '|'). */
static const char *rule_end(const char *p)
{
    if (strncmp(p, "regex:", 6) == 0 && p[6] != '\0' && !is_alpha((unsigned char)p[6]) &&
        !is_digit((unsigned char)p[6]) && p[6] != '\\' && p[6] != ' ') {
        char d = p[6];
        for (const char *q = p + 7; *q; q++) {
            if (*q == '\\' && q[1] != '\0') {
                q++;
                continue;
            }
            if (*q != d)
                continue;
            const char *f = q + 1;
            while (is_alpha((unsigned char)*f))
                f++;
            if (*f == '|' || *f == '\0')
                return f;
        }
    }
    const char *bar = strchr(p, '|');
    return bar ? bar : p + strlen(p);
}

/* What the rules of one egg variable said, before the type is known. */
typedef struct {
    bool has_min, has_max;
    int64_t min, max;
    char *regex;       /* translated pattern, or NULL */
    const char *alpha; /* pattern from alpha/alpha_num/alpha_dash */
} egg_rules;

static wd_status egg_rule(Warden__V1__Template *t, Warden__V1__TemplateVariable *v, egg_rules *r,
                          const char *tok, size_t len)
{
    while (len > 0 && (*tok == ' ' || *tok == '\t'))
        tok++, len--;
    while (len > 0 && (tok[len - 1] == ' ' || tok[len - 1] == '\t'))
        len--;
    if (len == 0)
        return WD_OK;
    char rule[160];
    snprintf(rule, sizeof rule, "%.*s", (int)(len < 150 ? len : 150), tok);
    const char *name = v->name;
    const char *colon = memchr(tok, ':', len);
    size_t key_len = colon ? (size_t)(colon - tok) : len;
    const char *arg = colon ? colon + 1 : tok + len;
    size_t arg_len = colon ? len - key_len - 1 : 0;
#define RULE_IS(s) (key_len == strlen(s) && strncmp(tok, (s), key_len) == 0)
    if (RULE_IS("required")) {
        v->required = 1;
    } else if (RULE_IS("nullable") || RULE_IS("sometimes") || RULE_IS("present") ||
               RULE_IS("filled")) {
        /* Warden: an empty value of a non-required variable means "unset". */
    } else if (RULE_IS("string")) {
        if (v->type != WARDEN__V1__VARIABLE_TYPE__VAR_ENUM)
            v->type = WARDEN__V1__VARIABLE_TYPE__VAR_STRING;
    } else if (RULE_IS("integer") || RULE_IS("int")) {
        v->type = WARDEN__V1__VARIABLE_TYPE__VAR_INTEGER;
    } else if (RULE_IS("numeric")) {
        v->type = WARDEN__V1__VARIABLE_TYPE__VAR_INTEGER;
        return note(t, "variable %s: rule \"numeric\" imported as integer (no decimals)", name);
    } else if (RULE_IS("boolean") || RULE_IS("bool")) {
        v->type = WARDEN__V1__VARIABLE_TYPE__VAR_BOOLEAN;
    } else if (RULE_IS("in") && arg_len > 0) {
        v->type = WARDEN__V1__VARIABLE_TYPE__VAR_ENUM;
        const char *p = arg, *end = arg + arg_len;
        while (p <= end) {
            const char *c = memchr(p, ',', (size_t)(end - p));
            const char *e = c ? c : end;
            const char *a = p;
            size_t n = (size_t)(e - p);
            if (n >= 2 && a[0] == '"' && a[n - 1] == '"')
                a++, n -= 2;
            char opt[WD_TEMPLATE_MAX_VALUE + 1];
            snprintf(opt, sizeof opt, "%.*s",
                     (int)(n < WD_TEMPLATE_MAX_VALUE ? n : WD_TEMPLATE_MAX_VALUE), a);
            bool dup = false;
            for (size_t k = 0; k < v->n_options && !dup; k++)
                dup = strcmp(v->options[k], opt) == 0;
            if (opt[0] != '\0' && !dup) {
                wd_status st = push_str(&v->options, &v->n_options, opt, OPTIONS_MAX, "options");
                if (st != WD_OK)
                    return st;
            }
            p = e + 1;
        }
    } else if ((RULE_IS("max") || RULE_IS("min") || RULE_IS("size")) && arg_len > 0) {
        char num[32];
        int64_t x;
        snprintf(num, sizeof num, "%.*s", (int)(arg_len < 30 ? arg_len : 30), arg);
        if (!parse_i64(num, &x))
            return note(t, "variable %s: rule \"%s\" not imported (not an integer bound)", name,
                        rule);
        if (RULE_IS("max") || RULE_IS("size"))
            r->has_max = true, r->max = x;
        if (RULE_IS("min") || RULE_IS("size"))
            r->has_min = true, r->min = x;
    } else if (RULE_IS("between") && arg_len > 0) {
        char a[32] = "", b[32] = "";
        const char *comma = memchr(arg, ',', arg_len);
        int64_t lo, hi;
        if (comma != NULL) {
            snprintf(a, sizeof a, "%.*s", (int)((size_t)(comma - arg) < 30 ? comma - arg : 30),
                     arg);
            size_t bl = arg_len - (size_t)(comma - arg) - 1;
            snprintf(b, sizeof b, "%.*s", (int)(bl < 30 ? bl : 30), comma + 1);
        }
        if (comma == NULL || !parse_i64(a, &lo) || !parse_i64(b, &hi))
            return note(t, "variable %s: rule \"%s\" not imported (not an integer range)", name,
                        rule);
        r->has_min = r->has_max = true;
        r->min = lo;
        r->max = hi;
    } else if (RULE_IS("regex") && arg_len >= 2) {
        char d = arg[0];
        const char *close = NULL;
        for (const char *q = arg + arg_len - 1; q > arg; q--)
            if (*q == d) {
                close = q;
                break;
            }
        size_t flags = close ? (size_t)(arg + arg_len - close - 1) : 0;
        bool flags_ok = true;
        for (size_t k = 0; close && k < flags; k++)
            flags_ok = flags_ok && close[1 + k] == 'u'; /* /u (UTF-8) changes nothing for us */
        sbuf ere = {.max = PATTERN_MAX};
        bool ok = close != NULL && flags_ok &&
                  pcre_to_ere(arg + 1, (size_t)(close - arg - 1), &ere) && ere.p != NULL;
        bool ignored;
        if (ok && (has_backref(ere.p) || full_match(ere.p, "", &ignored) != WD_OK))
            ok = false;
        if (!ok) {
            free(ere.p);
            return note(t,
                        "variable %s: rule \"%s\" not imported (cannot translate to a POSIX "
                        "extended regex)",
                        name, rule);
        }
        free(r->regex);
        r->regex = ere.p;
    } else if (RULE_IS("alpha_dash")) {
        r->alpha = "[A-Za-z0-9_-]*";
    } else if (RULE_IS("alpha_num")) {
        r->alpha = "[A-Za-z0-9]*";
    } else if (RULE_IS("alpha")) {
        r->alpha = "[A-Za-z]*";
    } else {
        return note(t, "variable %s: rule \"%s\" not imported (no Warden equivalent)", name, rule);
    }
#undef RULE_IS
    return WD_OK;
}

/* Applies what the rules said once the type is known, then makes sure the
 * egg's default still passes; if not, the rules are relaxed (and noted)
 * rather than failing the whole import. */
static wd_status egg_apply_rules(Warden__V1__Template *t, Warden__V1__TemplateVariable *v,
                                 egg_rules *r)
{
    wd_status st = WD_OK;
    const char *name = v->name;
    switch (v->type) {
    case WARDEN__V1__VARIABLE_TYPE__VAR_INTEGER:
        if (r->has_min || r->has_max) {
            v->min = r->has_min ? r->min : INT64_MIN;
            v->max = r->has_max ? r->max : INT64_MAX;
            if (v->min == 0 && v->max == 0)
                v->max = 1; /* [0,0] would read as unbounded; keep it bounded */
            normalize_bounds(v);
            if (v->min > v->max) {
                v->min = v->max = 0;
                st =
                    note(t, "variable %s: min/max rules contradict each other; not imported", name);
            }
        }
        if (st == WD_OK && (r->regex || r->alpha))
            st = note(t, "variable %s: pattern rules not imported (only strings have a pattern)",
                      name);
        break;
    case WARDEN__V1__VARIABLE_TYPE__VAR_STRING:
        if (r->has_max) {
            int64_t m = r->max;
            if (m > WD_TEMPLATE_MAX_VALUE || m < 1) {
                st = note(
                    t, "variable %s: max length %" PRId64 " not imported (Warden allows 1 to %d)",
                    name, m, WD_TEMPLATE_MAX_VALUE);
            } else {
                v->max_length = (uint32_t)m;
            }
        }
        if (st == WD_OK && r->has_min && r->min > 0)
            st = note(t,
                      "variable %s: minimum length not imported (Warden only has max_length and "
                      "required)",
                      name);
        if (st == WD_OK && r->regex) {
            st = set_str(&v->pattern, r->regex);
            if (st == WD_OK && r->alpha)
                st =
                    note(t, "variable %s: alpha rule not imported (regex rule used instead)", name);
        } else if (st == WD_OK && r->alpha) {
            st = set_str(&v->pattern, r->alpha);
        }
        break;
    default:
        if (r->has_min || r->has_max || r->regex || r->alpha)
            st = note(t, "variable %s: size and pattern rules not imported for a %s variable", name,
                      type_name(v->type));
        break;
    }
    if (st != WD_OK)
        return st;
    const char *def = v->default_value ? v->default_value : "";
    if (def[0] != '\0' && check_value(v, def) != WD_OK) {
        char why[200];
        snprintf(why, sizeof why, "%s", wd_err_msg());
        v->type = WARDEN__V1__VARIABLE_TYPE__VAR_STRING;
        v->min = v->max = 0;
        v->max_length = 0;
        if ((st = set_str(&v->pattern, "")) != WD_OK)
            return st;
        for (size_t k = 0; k < v->n_options; k++)
            free(v->options[k]);
        free(v->options);
        v->options = NULL;
        v->n_options = 0;
        st = note(t,
                  "variable %s: the egg's default fails its own rules (%s); imported as a plain "
                  "string",
                  name, why);
        if (st == WD_OK && check_value(v, def) != WD_OK)
            st =
                WD_ERR(WD_ERR_INVALID, "egg variable %s: default is not clean one-line text", name);
    }
    return st;
}

static wd_status egg_variable(Warden__V1__Template *t, json_t *o, size_t i)
{
    char where[48];
    snprintf(where, sizeof where, "variables[%zu]", i);
    if (!json_is_object(o))
        return WD_ERR(WD_ERR_INVALID, "egg %s: expected an object", where);
    Warden__V1__TemplateVariable *v = NULL;
    wd_status st = add_var(t, &v);
    if (st != WD_OK)
        return st;
    json_t *env = json_object_get(o, "env_variable");
    if (!json_is_string(env))
        return WD_ERR(WD_ERR_INVALID, "egg %s.env_variable: expected a string", where);
    if ((st = set_str(&v->name, json_string_value(env))) != WD_OK)
        return st;
    const char *label, *desc;
    if ((st = egg_str(o, "name", where, &label)) != WD_OK ||
        (st = egg_str(o, "description", where, &desc)) != WD_OK)
        return st;
    /* Warden variables have no separate label: keep it in the description. */
    sbuf d = {.max = RENDER_MAX};
    st = sb_add(&d, label, strlen(label));
    if (st == WD_OK && label[0] && desc[0])
        st = sb_add(&d, ": ", 2);
    if (st == WD_OK)
        st = sb_add(&d, desc, strlen(desc));
    char *ds = NULL;
    if (st == WD_OK)
        st = sb_take(&d, &ds);
    free(d.p);
    if (st != WD_OK)
        return st;
    if (v->description != protobuf_c_empty_string)
        free(v->description);
    v->description = ds;

    json_t *def = json_object_get(o, "default_value");
    char num[64];
    if (json_is_string(def)) {
        st = set_str(&v->default_value, json_string_value(def));
    } else if (json_is_integer(def)) {
        snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(def));
        st = set_str(&v->default_value, num);
    } else if (json_is_real(def)) {
        snprintf(num, sizeof num, "%.17g", json_real_value(def));
        st = set_str(&v->default_value, num);
    } else if (json_is_boolean(def)) {
        st = set_str(&v->default_value, json_is_true(def) ? "1" : "0");
    } else if (def != NULL && !json_is_null(def)) {
        return WD_ERR(WD_ERR_INVALID, "egg %s.default_value: expected a string", where);
    }
    if (st != WD_OK)
        return st;
    static const char *const flags[] = {"user_viewable", "user_editable"};
    for (int k = 0; k < 2; k++) {
        json_t *f = json_object_get(o, flags[k]);
        bool on = json_is_true(f) || (json_is_integer(f) && json_integer_value(f) != 0);
        if (k == 0)
            v->user_viewable = on;
        else
            v->user_editable = on;
    }

    egg_rules r;
    memset(&r, 0, sizeof r);
    json_t *rules = json_object_get(o, "rules");
    if (json_is_string(rules)) {
        const char *p = json_string_value(rules);
        int count = 0;
        while (*p && st == WD_OK) {
            if (++count > RULES_MAX) {
                st = note(t, "variable %s: more than %d rules; the rest not imported", v->name,
                          RULES_MAX);
                break;
            }
            const char *e = rule_end(p);
            st = egg_rule(t, v, &r, p, (size_t)(e - p));
            p = *e ? e + 1 : e;
        }
    } else if (json_is_array(rules)) {
        size_t k;
        json_t *e;
        json_array_foreach (rules, k, e) {
            if (k >= RULES_MAX || st != WD_OK)
                break;
            if (json_is_string(e))
                st = egg_rule(t, v, &r, json_string_value(e), json_string_length(e));
        }
    } else if (rules != NULL && !json_is_null(rules)) {
        st = WD_ERR(WD_ERR_INVALID, "egg %s.rules: expected a string", where);
    }
    if (st == WD_OK)
        st = egg_apply_rules(t, v, &r);
    free(r.regex);
    return st;
}

/* Pterodactyl's daemon (Wings) gives every server SERVER_PORT, SERVER_IP
 * and SERVER_MEMORY; Warden has no such built-ins, so an egg that uses them
 * gets ordinary variables with the same meaning. */
typedef struct {
    const char *name;
    const char *alias; /* the {{server.build...}} spelling */
    Warden__V1__VariableType type;
    const char *def;
    bool required;
    int64_t min, max;
    const char *desc;
    const char *how; /* for the import note */
} wings_builtin;

static const wings_builtin wings[] = {
    {"SERVER_PORT", "server.build.default.port", WARDEN__V1__VARIABLE_TYPE__VAR_INTEGER, "", true,
     1, 65535, "Port the game listens on (the panel supplies the allocated port)",
     "integer 1-65535, required, no default: supply the allocated port when creating a server"},
    {"SERVER_IP", "server.build.default.ip", WARDEN__V1__VARIABLE_TYPE__VAR_STRING, "0.0.0.0",
     false, 0, 0, "Address the game binds to", "string, default 0.0.0.0"},
    {"SERVER_MEMORY", "server.build.memory", WARDEN__V1__VARIABLE_TYPE__VAR_INTEGER, "1024", true,
     64, 1048576, "Memory for the game in MiB",
     "integer MiB, default 1024; Warden's memory limit is set on the server, not here"},
};
#define N_WINGS (sizeof wings / sizeof wings[0])

static wd_status egg_declare_wings(Warden__V1__Template *t, const wings_builtin *w, unsigned *noted,
                                   unsigned bit)
{
    wd_status st = WD_OK;
    if (find_var(t, w->name) == NULL) {
        Warden__V1__TemplateVariable *v = NULL;
        if ((st = add_var(t, &v)) != WD_OK || (st = set_str(&v->name, w->name)) != WD_OK ||
            (st = set_str(&v->description, w->desc)) != WD_OK ||
            (st = set_str(&v->default_value, w->def)) != WD_OK)
            return st;
        v->type = w->type;
        v->required = w->required;
        v->min = w->min;
        v->max = w->max;
    }
    if (*noted & bit)
        return WD_OK;
    *noted |= bit;
    return note(t, "{{%s}} and {{%s}} are Pterodactyl built-ins: mapped to the variable %s (%s)",
                w->alias, w->name, w->name, w->how);
}

/* Rewrites $NAME / ${NAME} (what a shell would have expanded) into
 * {{NAME}} for declared variables and the Wings built-ins. */
static wd_status egg_dollar_vars(Warden__V1__Template *t, const char *in, sbuf *out, bool *changed)
{
    bool sq = false, dq = false;
    wd_status st = WD_OK;
    for (const char *p = in; *p && st == WD_OK;) {
        if (*p == '"' && !sq) {
            dq = !dq;
        } else if (*p == '\'' && !dq) {
            sq = !sq;
        } else if (!sq && *p == '\\' && p[1] != '\0') {
            if ((st = sb_add(out, p, 2)) != WD_OK)
                return st;
            p += 2;
            continue;
        } else if (!sq && *p == '$') {
            const char *s = p + 1;
            bool brace = *s == '{';
            if (brace)
                s++;
            const char *e = s;
            if (is_alpha((unsigned char)*e) || *e == '_')
                while (is_alpha((unsigned char)*e) || is_digit((unsigned char)*e) || *e == '_')
                    e++;
            size_t n = (size_t)(e - s);
            bool closed = !brace || *e == '}';
            if (n > 0 && n <= VAR_NAME_MAX && closed) {
                char name[VAR_NAME_MAX + 1];
                memcpy(name, s, n);
                name[n] = '\0';
                bool known = find_var(t, name) != NULL || is_builtin(name);
                for (size_t k = 0; k < N_WINGS && !known; k++)
                    known = strcmp(name, wings[k].name) == 0;
                if (known) {
                    *changed = true;
                    if ((st = sb_addf(out, "{{%s}}", name)) != WD_OK)
                        return st;
                    p = e + (brace ? 1 : 0);
                    continue;
                }
            }
        }
        st = sb_addc(out, *p);
        p++;
    }
    return st;
}

/* Lists shell syntax that a shell would have interpreted in the startup
 * line; Warden runs the words directly, so it needs a human look. */
static void shell_syntax(const char *s, char *found, size_t size)
{
    static const char *const ops[] = {"&&", "||", ";",  "|",  "&", ">",
                                      "<",  "`",  "$(", "${", "$", NULL};
    bool sq = false, dq = false;
    unsigned seen = 0;
    for (const char *p = s; *p; p++) {
        if (*p == '\\' && !sq && p[1]) {
            p++;
            continue;
        }
        if (*p == '\'' && !dq) {
            sq = !sq;
            continue;
        }
        if (*p == '"' && !sq) {
            dq = !dq;
            continue;
        }
        if (sq || (dq && *p != '$' && *p != '`'))
            continue;
        for (int i = 0; ops[i]; i++) {
            size_t n = strlen(ops[i]);
            if (strncmp(p, ops[i], n) == 0) {
                seen |= 1u << i;
                p += n - 1;
                break;
            }
        }
    }
    size_t used = 0;
    found[0] = '\0';
    for (int i = 0; ops[i]; i++) {
        if (!(seen & (1u << i)))
            continue;
        int k = snprintf(found + used, size - used, "%s%s", used ? " " : "", ops[i]);
        if (k < 0 || (size_t)k >= size - used)
            break;
        used += (size_t)k;
    }
}

static wd_status egg_startup(Warden__V1__Template *t, const char *raw)
{
    wd_status st = WD_OK;
    sbuf a = {.max = RENDER_MAX}, b = {.max = RENDER_MAX};
    unsigned noted = 0;
    bool changed = false;
    char *line = strdup(raw);
    if (line == NULL)
        return WD_ERR(WD_ERR_NOMEM, "out of memory");
    for (char *p = line; *p; p++)
        if (*p == '\r' || *p == '\n' || *p == '\t')
            *p = ' ';
    if ((st = egg_dollar_vars(t, line, &a, &changed)) != WD_OK)
        goto out;
    if (changed && (st = note(t, "startup: shell variable references ($NAME) converted to {{NAME}} "
                                 "placeholders")) != WD_OK)
        goto out;
    const char *text = a.p ? a.p : "";
    size_t pos = 0;
    ph h;
    while (ph_next(text, pos, &h)) {
        if ((st = sb_add(&b, text + pos, h.start - pos)) != WD_OK)
            goto out;
        pos = h.end;
        char id[PH_ID_MAX + 1];
        memcpy(id, h.id, h.id_len);
        id[h.id_len] = '\0';
        const char *name = id;
        if (strncmp(id, "server.build.env.", 17) == 0 && id[17])
            name = id + 17;
        else if (strncmp(id, "env.", 4) == 0 && id[4])
            name = id + 4;
        const wings_builtin *w = NULL;
        for (size_t k = 0; k < N_WINGS; k++)
            if (strcmp(name, wings[k].alias) == 0 || strcmp(name, wings[k].name) == 0)
                w = &wings[k];
        if (w != NULL) {
            if ((st = egg_declare_wings(t, w, &noted, 1u << (w - wings))) != WD_OK ||
                (st = sb_addf(&b, "{{%s}}", w->name)) != WD_OK)
                goto out;
            continue;
        }
        if (strcmp(name, "P_SERVER_UUID") == 0) {
            if ((st = sb_add(&b, "{{SERVER_ID}}", 13)) != WD_OK ||
                (st = note(t, "startup: {{P_SERVER_UUID}} mapped to the built-in {{SERVER_ID}}")) !=
                    WD_OK)
                goto out;
            continue;
        }
        if (strchr(name, '.') != NULL || is_digit((unsigned char)name[0])) {
            if ((st = note(t,
                           "startup: placeholder {{%s}} removed: a Pterodactyl built-in with no "
                           "Warden equivalent; review the command line",
                           id)) != WD_OK)
                goto out;
            continue;
        }
        if (find_var(t, name) == NULL && !is_builtin(name)) {
            Warden__V1__TemplateVariable *v = NULL;
            if (!is_upper_name(name)) {
                st = WD_ERR(WD_ERR_INVALID,
                            "egg startup: placeholder {{%s}} is not a valid variable name", name);
                goto out;
            }
            if ((st = add_var(t, &v)) != WD_OK || (st = set_str(&v->name, name)) != WD_OK ||
                (st = note(t,
                           "startup uses {{%s}}, which the egg does not declare: declared as an "
                           "empty string variable",
                           name)) != WD_OK)
                goto out;
        }
        if ((st = sb_addf(&b, "{{%s}}", name)) != WD_OK)
            goto out;
    }
    if ((st = sb_add(&b, text + pos, strlen(text + pos))) != WD_OK)
        goto out;
    char found[128];
    shell_syntax(b.p ? b.p : "", found, sizeof found);
    if (found[0] && (st = note(t,
                               "startup uses shell syntax (%s) that Warden does not interpret: "
                               "the command runs without a shell and those characters are "
                               "passed literally; review the command line",
                               found)) != WD_OK)
        goto out;
    char *s = NULL;
    if ((st = sb_take(&b, &s)) != WD_OK)
        goto out;
    if (t->startup != protobuf_c_empty_string)
        free(t->startup);
    t->startup = s;
out:
    free(line);
    free(a.p);
    free(b.p);
    return st;
}

static wd_status egg_config(Warden__V1__Template *t, json_t *cfg)
{
    wd_status st = WD_OK;
    if (cfg == NULL || json_is_null(cfg))
        return WD_OK;
    if (!json_is_object(cfg))
        return WD_ERR(WD_ERR_INVALID, "egg config: expected an object");
    const char *stop;
    if ((st = egg_str(cfg, "stop", "config.stop", &stop)) != WD_OK ||
        (st = set_str(&t->stop_command, stop)) != WD_OK)
        return st;

    json_t *startup = egg_embedded(json_object_get(cfg, "startup"), "config.startup", &st);
    if (st != WD_OK)
        return st;
    if (json_is_object(startup)) {
        json_t *done = json_object_get(startup, "done");
        const char *first = NULL;
        if (json_is_string(done)) {
            first = json_string_value(done);
        } else if (json_is_array(done) && json_array_size(done) > 0) {
            json_t *e = json_array_get(done, 0);
            first = json_is_string(e) ? json_string_value(e) : NULL;
            if (json_array_size(done) > 1)
                st = note(t, "config.startup.done lists %zu patterns: only the first is used",
                          json_array_size(done));
        }
        if (st == WD_OK && first != NULL) {
            if (strncmp(first, "regex:", 6) == 0) {
                first += 6;
                st = note(t, "config.startup.done is a regex in the egg: Warden matches its text "
                             "as a plain substring; review it");
            }
            if (st == WD_OK)
                st = set_str(&t->done_pattern, first);
        }
        if (st == WD_OK && json_nonempty(json_object_get(startup, "userInteraction")))
            st = note(t, "config.startup.userInteraction not imported: Warden has no prompts to "
                         "answer automatically");
    }
    json_decref(startup);
    if (st != WD_OK)
        return st;

    json_t *files = egg_embedded(json_object_get(cfg, "files"), "config.files", &st);
    if (st != WD_OK)
        return st;
    if (json_nonempty(files)) {
        char names[256];
        join_names(files, names, sizeof names);
        st = note(t,
                  "config.files not imported (%s): egg parsers edit the game's own files; "
                  "Warden writes whole files from config_files instead, add them by hand",
                  names);
    }
    json_decref(files);
    if (st != WD_OK)
        return st;
    json_t *logs = egg_embedded(json_object_get(cfg, "logs"), "config.logs", &st);
    if (st != WD_OK)
        return st;
    if (json_nonempty(logs))
        st = note(t, "config.logs not imported: Warden keeps the console output itself");
    json_decref(logs);
    if (st == WD_OK && json_nonempty(json_object_get(cfg, "extends")))
        st = note(t, "config.extends not imported: Warden templates do not inherit");
    return st;
}

static wd_status egg_install(Warden__V1__Template *t, json_t *scripts)
{
    wd_status st = WD_OK;
    if (scripts == NULL || json_is_null(scripts))
        return WD_OK;
    if (!json_is_object(scripts))
        return WD_ERR(WD_ERR_INVALID, "egg scripts: expected an object");
    json_t *inst = json_object_get(scripts, "installation");
    if (inst == NULL || json_is_null(inst))
        return WD_OK;
    if (!json_is_object(inst))
        return WD_ERR(WD_ERR_INVALID, "egg scripts.installation: expected an object");
    const char *script, *entry, *container;
    if ((st = egg_str(inst, "script", "scripts.installation.script", &script)) != WD_OK ||
        (st = egg_str(inst, "entrypoint", "scripts.installation.entrypoint", &entry)) != WD_OK ||
        (st = egg_str(inst, "container", "scripts.installation.container", &container)) != WD_OK)
        return st;
    /* Eggs are often exported with CRLF line ends, which sh reads as part
     * of each command. */
    sbuf b = {.max = WD_TEMPLATE_MAX_JSON};
    for (const char *p = script; *p && st == WD_OK; p++)
        if (!(p[0] == '\r' && p[1] == '\n'))
            st = sb_addc(&b, *p);
    char *s = NULL;
    if (st == WD_OK)
        st = sb_take(&b, &s);
    free(b.p);
    if (st != WD_OK)
        return st;
    if (t->install_script != protobuf_c_empty_string)
        free(t->install_script);
    t->install_script = s;
    if (s[0] != '\0' && strstr(s, "/mnt/server") != NULL &&
        (st = note(t, "install script: Pterodactyl runs it in a container with the server at "
                      "/mnt/server; Warden runs it in the server directory, review those paths")) !=
            WD_OK)
        return st;
    if (container[0] != '\0' &&
        (st = note(t,
                   "scripts.installation.container (%.128s) not imported: the install script "
                   "runs on the host under bubblewrap, with the host's tools",
                   container)) != WD_OK)
        return st;

    const char *interp = "/bin/sh";
    char path[INTERP_MAX + 1];
    if (entry[0] == '/') {
        interp = entry;
    } else if (strcmp(entry, "bash") == 0) {
        interp = "/bin/bash";
    } else if (strcmp(entry, "ash") == 0 || strcmp(entry, "dash") == 0) {
        if ((st = note(t, "install entrypoint %s mapped to /bin/sh", entry)) != WD_OK)
            return st;
    } else if (entry[0] != '\0' && strcmp(entry, "sh") != 0) {
        bool plain = strlen(entry) < 64;
        for (const char *p = entry; *p && plain; p++)
            plain = is_alpha((unsigned char)*p) || is_digit((unsigned char)*p) || *p == '.' ||
                    *p == '_' || *p == '-';
        if (!plain)
            return WD_ERR(WD_ERR_INVALID,
                          "egg scripts.installation.entrypoint: not a program name");
        snprintf(path, sizeof path, "/usr/bin/%s", entry);
        interp = path;
        if ((st = note(t, "install entrypoint %s mapped to %s", entry, path)) != WD_OK)
            return st;
    }
    return set_str(&t->install_interpreter, interp);
}

static wd_status parse_egg(json_t *root, Warden__V1__Template *t)
{
    static const char *const known[] = {
        "_comment",    "meta",     "exported_at",   "name",         "author",
        "description", "features", "docker_images", "docker_image", "file_denylist",
        "startup",     "config",   "scripts",       "variables",    NULL};
    wd_status st;
    const char *name, *desc, *author, *startup;
    if ((st = egg_str(root, "name", "name", &name)) != WD_OK ||
        (st = egg_str(root, "description", "description", &desc)) != WD_OK ||
        (st = egg_str(root, "author", "author", &author)) != WD_OK ||
        (st = egg_str(root, "startup", "startup", &startup)) != WD_OK)
        return st;
    if (name[0] == '\0')
        return WD_ERR(WD_ERR_INVALID, "egg name: required");
    if (startup[0] == '\0')
        return WD_ERR(WD_ERR_INVALID, "egg startup: required");
    if ((st = set_str(&t->name, name)) != WD_OK || (st = set_str(&t->description, desc)) != WD_OK ||
        (st = set_str(&t->author, author)) != WD_OK || (st = make_slug(name, &t->id)) != WD_OK ||
        (st = set_str(&t->source_format, "ptdl_v2")) != WD_OK)
        return st;

    json_t *vars = json_object_get(root, "variables");
    if (vars != NULL && !json_is_null(vars)) {
        if (!json_is_array(vars))
            return WD_ERR(WD_ERR_INVALID, "egg variables: expected an array");
        size_t i;
        json_t *o;
        json_array_foreach (vars, i, o)
            if ((st = egg_variable(t, o, i)) != WD_OK)
                return st;
    }
    /* After the variables: the startup rewrite needs to know them. */
    if ((st = egg_startup(t, startup)) != WD_OK)
        return st;
    if ((st = egg_config(t, json_object_get(root, "config"))) != WD_OK ||
        (st = egg_install(t, json_object_get(root, "scripts"))) != WD_OK)
        return st;

    json_t *imgs = json_object_get(root, "docker_images");
    if (!json_nonempty(imgs))
        imgs = json_object_get(root, "docker_image");
    if (json_nonempty(imgs)) {
        char names[256];
        if (json_is_string(imgs))
            snprintf(names, sizeof names, "%.200s", json_string_value(imgs));
        else
            join_names(imgs, names, sizeof names);
        if ((st = note(t,
                       "docker_images (%s) not imported: Warden runs games from the host under "
                       "bubblewrap; install the game's runtime on the host",
                       names)) != WD_OK)
            return st;
    }
    json_t *feat = json_object_get(root, "features");
    if (json_nonempty(feat)) {
        char names[256];
        join_names(feat, names, sizeof names);
        if ((st = note(t, "features (%s) not imported: Warden has no panel feature hooks",
                       names)) != WD_OK)
            return st;
    }
    if (json_nonempty(json_object_get(root, "file_denylist")) &&
        (st = note(t, "file_denylist not imported: Warden's file manager has no per-template "
                      "deny list")) != WD_OK)
        return st;
    const char *k;
    json_t *v;
    json_object_foreach (root, k, v) {
        bool ok = false;
        for (int i = 0; known[i] && !ok; i++)
            ok = strcmp(k, known[i]) == 0;
        if (!ok &&
            (st = note(t, "egg field \"%.64s\" not imported: unknown to Warden", k)) != WD_OK)
            return st;
    }
    return WD_OK;
}

/* ------------------------------------------------------------------------ */
/* Entry point                                                              */
/* ------------------------------------------------------------------------ */

wd_status wd_template_parse_json(const char *json, size_t len, Warden__V1__Template **out)
{
    if (json == NULL || out == NULL)
        return WD_ERR(WD_ERR_INVALID, "parse_json: NULL argument");
    *out = NULL;
    if (len > WD_TEMPLATE_MAX_JSON)
        return WD_ERR(WD_ERR_INVALID, "template: %zu bytes, more than the %d allowed", len,
                      WD_TEMPLATE_MAX_JSON);
    wd_status st = WD_OK;
    Warden__V1__Template *t = NULL;
    json_error_t err;
    /* Duplicate keys are refused like unknown ones: which one wins would
     * otherwise depend on the parser. \u0000 is refused by default. */
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &err);
    if (root == NULL) {
        st = WD_ERR(WD_ERR_INVALID, "template: invalid JSON at line %d column %d: %s", err.line,
                    err.column, err.text);
        goto out;
    }
    if (!json_is_object(root)) {
        st = WD_ERR(WD_ERR_INVALID, "template: expected a JSON object");
        goto out;
    }
    if ((t = tpl_new()) == NULL) {
        st = WD_ERR(WD_ERR_NOMEM, "out of memory");
        goto out;
    }
    json_t *meta = json_object_get(root, "meta");
    json_t *ver = json_is_object(meta) ? json_object_get(meta, "version") : NULL;
    if (json_is_string(ver) && strncmp(json_string_value(ver), "PTDL_", 5) == 0) {
        if (strcmp(json_string_value(ver), "PTDL_v2") != 0) {
            st = WD_ERR(WD_ERR_UNSUPPORTED,
                        "egg format %.32s is not supported: export it as PTDL_v2",
                        json_string_value(ver));
            goto out;
        }
        st = parse_egg(root, t);
    } else {
        st = parse_warden(root, t);
    }
    if (st == WD_OK)
        st = wd_template_validate(t);
    if (st == WD_OK) {
        *out = t;
        t = NULL;
    }
out:
    wd_template_free(&t);
    json_decref(root);
    return st;
}
