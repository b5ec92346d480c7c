/* libFuzzer driver for cli/pbjson.c, the printer of `wardenctl bus tail`:
 * every payload it sees comes off the bus and is untrusted, and so are the
 * trace header and, for foreign subjects, the subject itself.
 *
 * Input layout:
 *   byte 0   the subject: an index into the table below (one subject for
 *            every type the subject table knows, plus untyped ones); the
 *            one value past the table takes the subject from the input
 *            (bytes after byte 1 up to a NUL), so the table's tokenizer is
 *            fuzzed too
 *   byte 1   bit 0: JSON mode (else text); bit 1: a trace header follows
 *            (bytes up to a NUL)
 *   rest     the payload
 *
 * Output goes to one memory stream opened once. Invariants checked:
 *   - exactly one line, ending in '\n';
 *   - JSON mode: the line is one JSON object (jansson parses it) whose
 *     "type" is set exactly when print_msg says the payload decoded;
 *   - text mode: what follows "<time> <subject> <word> " is one JSON object;
 *   - secrets are redacted: a JoinRequest's token and a SyncRequest's
 *     secret variables (all of them when the spec has no template) print
 *     as "(redacted)".
 * Build: clang -fsanitize=fuzzer,address,undefined (see ../CMakeLists.txt). */
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pbjson.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const subjects[] = {
    "warden.server.S.console",
    "warden.server.S.state",
    "warden.server.S.stats",
    "warden.node.N.heartbeat",
    "$KV.warden_nodes.N",
    "warden.discovery.hello",
    "warden.discovery.probe",
    "warden.discovery.join",
    "warden.panel.events.audit",
    "warden.agent.N.server.S.sync",
    "warden.agent.N.server.S.install",
    "warden.agent.N.server.S.power",
    "warden.agent.N.server.S.console.in",
    "warden.agent.N.server.S.info",
    "warden.agent.N.server.S.delete",
    "warden.agent.N.server.S.files.list",
    "warden.agent.N.server.S.files.read",
    "warden.agent.N.server.S.files.write",
    "warden.agent.N.server.S.files.rename",
    "warden.agent.N.server.S.files.delete",
    "warden.agent.N.server.S.files.mkdir",
    "warden.agent.N.server.S.files.archive",
    "warden.agent.N.server.S.files.extract",
    "warden.agent.N.server.S.backup.create",
    "warden.agent.N.server.S.backup.restore",
    "warden.agent.N.server.S.backup.delete",
    "warden.agent.N.server.S.backup.list",
    /* Untyped: printed raw. */
    "_INBOX.abc.def",
    "$JS.API.STREAM.INFO.WARDEN",
    "warden.agent.N.server.S.nope",
};
#define N_SUBJECTS (sizeof subjects / sizeof subjects[0])

/* A fixed receive time: the clock is ours, not the bus's. */
#define TIME_MS 1795650000123LL
#define OUT_CAP (16u << 20)

static FILE *out;
static char *out_buf;
static size_t out_len;

/* Says which invariant broke, with the line that broke it. */
static void fail(const char *why)
{
    fprintf(stderr, "fuzz_pbjson: %s; the line was:\n%.*s\n", why, (int)out_len, out_buf);
    abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    out_buf = malloc(OUT_CAP);
    out = out_buf ? fmemopen(out_buf, OUT_CAP, "w") : NULL;
    if (out == NULL)
        abort();
    return 0;
}

/* Takes a NUL-terminated string of at most max bytes from the input. */
static char *take_str(const uint8_t **p, size_t *left, size_t max)
{
    size_t n = 0;
    while (n < *left && n < max && (*p)[n] != 0)
        n++;
    char *s = malloc(n + 1);
    if (s == NULL)
        abort();
    memcpy(s, *p, n);
    s[n] = '\0';
    size_t used = n < *left ? n + 1 : n; /* and the NUL */
    *p += used;
    *left -= used;
    return s;
}

/* An empty secret is left as it is: it reveals nothing. */
static bool is_redacted(const json_t *v)
{
    return json_is_string(v) &&
           (strcmp(json_string_value(v), "(redacted)") == 0 || json_string_length(v) == 0);
}

/* The message object of a line, checked against the redaction rules. */
static void check_secrets(const char *type, const json_t *msg)
{
    if (type == NULL || !json_is_object(msg))
        return;
    if (strcmp(type, "JoinRequest") == 0) {
        const json_t *token = json_object_get(msg, "token");
        if (token != NULL && !is_redacted(token))
            fail("a JoinRequest token printed unredacted");
        return;
    }
    if (strcmp(type, "SyncRequest") != 0)
        return;
    const json_t *spec = json_object_get(msg, "spec");
    const json_t *vars = json_object_get(spec, "variables");
    if (vars == NULL)
        return;
    if (!json_is_object(vars))
        fail("a map printed as something else than an object");
    const json_t *tmpl = json_object_get(spec, "template");
    const json_t *tvars = json_object_get(tmpl, "variables");
    const char *key;
    const json_t *val;
    json_object_foreach((json_t *)vars, key, val)
    {
        /* As redact() decides: no template, secret; else the last template
         * variable of that name says. (Duplicate map keys all share one
         * key, hence one verdict, so jansson keeping the last is fine.)
         * Invalid UTF-8 prints as U+FFFD, so two different names can print
         * alike: a key holding U+FFFD cannot be matched from the output. */
        if (strstr(key, "\xef\xbf\xbd") != NULL)
            continue;
        bool secret = tmpl == NULL;
        size_t i;
        const json_t *tv;
        json_array_foreach(tvars, i, tv)
        {
            const json_t *name = json_object_get(tv, "name");
            const char *nm = json_is_string(name) ? json_string_value(name) : "";
            if (strcmp(nm, key) == 0)
                secret = json_is_true(json_object_get(tv, "secret"));
        }
        if (secret && !is_redacted(val))
            fail("a secret variable printed unredacted");
    }
}

static json_t *parse(const char *s, size_t len)
{
    json_error_t err;
    /* Every number as a double: a uint64 field above INT64_MAX is valid
     * JSON that jansson would otherwise refuse as "too big integer". */
    json_t *j = json_loadb(s, len, JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, &err);
    if (j == NULL || !json_is_object(j)) {
        fprintf(stderr, "fuzz_pbjson: not a JSON object (%s at %d)\n",
                j ? "not an object" : err.text, err.position);
        fail("invalid JSON");
    }
    return j;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t pick = data[0] % (N_SUBJECTS + 1);
    bool json = data[1] & 1, has_trace = data[1] & 2;
    const uint8_t *p = data + 2;
    size_t left = size - 2;
    char *own_subject = NULL, *trace = NULL;
    const char *subject;
    if (pick < N_SUBJECTS) {
        subject = subjects[pick];
    } else {
        own_subject = take_str(&p, &left, 300);
        subject = own_subject;
    }
    if (has_trace)
        trace = take_str(&p, &left, 128);

    rewind(out);
    bool decoded = wd_pbjson_print_msg(out, subject, p, left, TIME_MS, trace, json);
    fflush(out);
    long end = ftell(out);
    if (end <= 0 || ferror(out))
        abort();
    size_t len = out_len = (size_t)end;
    if (len >= OUT_CAP - 1)
        goto done; /* (cannot happen for any input libFuzzer makes) */

    /* One line. */
    const char *nl = memchr(out_buf, '\n', len);
    if (nl != out_buf + len - 1)
        fail("not exactly one line");

    const char *type = NULL;
    if (json) {
        json_t *j = parse(out_buf, len);
        const json_t *t = json_object_get(j, "type");
        if (decoded != json_is_string(t))
            fail("\"type\" disagrees with the return value");
        if (decoded) {
            type = strrchr(json_string_value(t), '.');
            type = type ? type + 1 : json_string_value(t);
            check_secrets(type, json_object_get(j, "message"));
        } else if (!json_is_object(json_object_get(j, "raw"))) {
            fail("no \"raw\" object for an undecoded payload");
        }
        json_decref(j);
    } else {
        /* "<time> <subject> <Type|raw|undecodable> {json}\n": the first
         * two fields hold no blanks (the subject's are printed as '?'). */
        const char *s = out_buf;
        char word[128] = "";
        for (int k = 0; k < 3; k++) {
            const char *sp = memchr(s, ' ', len - (size_t)(s - out_buf));
            if (sp == NULL)
                fail("a text line without its fields");
            if (k == 2 && (size_t)(sp - s) < sizeof word)
                memcpy(word, s, (size_t)(sp - s));
            s = sp + 1;
        }
        json_t *j = parse(s, len - (size_t)(s - out_buf));
        if (decoded == (strcmp(word, "raw") == 0 || strcmp(word, "undecodable") == 0))
            fail("the type word disagrees with the return value");
        if (decoded)
            check_secrets(word, j);
        json_decref(j);
    }
done:
    free(own_subject);
    free(trace);
    return 0;
}
