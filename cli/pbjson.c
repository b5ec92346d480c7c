/* Protobuf → JSON by descriptor walking, and the subject → type table
 * (see pbjson.h). */
#include "pbjson.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base64.h"
#include "js.h"
#include "subject.h"
#include "warden/v1/backup.pb-c.h"
#include "warden/v1/console.pb-c.h"
#include "warden/v1/events.pb-c.h"
#include "warden/v1/files.pb-c.h"
#include "warden/v1/node.pb-c.h"
#include "warden/v1/server.pb-c.h"

/* Our messages nest three levels deep at most; protobuf-c itself bounds
 * the depth of what it unpacks. This is the printer's own guard. */
#define MAX_DEPTH 32
/* How much of an undecodable payload is shown. */
#define RAW_PREFIX 48
/* ... and of one that is readable text. */
#define RAW_TEXT 200

/* Length of the valid UTF-8 sequence at p (at most n bytes), 0 if none:
 * overlong forms, surrogates and values above U+10FFFF are invalid. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    size_t len;
    unsigned min, cp;
    if (c < 0x80)
        return 1;
    if ((c & 0xe0) == 0xc0)
        len = 2, min = 0x80, cp = c & 0x1f;
    else if ((c & 0xf0) == 0xe0)
        len = 3, min = 0x800, cp = c & 0x0f;
    else if ((c & 0xf8) == 0xf0)
        len = 4, min = 0x10000, cp = c & 0x07;
    else
        return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

void wd_pbjson_str(FILE *f, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    fputc('"', f);
    for (size_t i = 0; i < len;) {
        unsigned c = p[i];
        if (c == '"' || c == '\\') {
            fputc('\\', f);
            fputc((int)c, f);
            i++;
        } else if (c == '\n') {
            fputs("\\n", f);
            i++;
        } else if (c == '\t') {
            fputs("\\t", f);
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            fprintf(f, "\\u%04x", c);
            i++;
        } else {
            size_t k = utf8_seq(p + i, len - i);
            if (k == 0) {
                fputs("\\ufffd", f);
                i++;
            } else {
                fwrite(p + i, 1, k, f);
                i += k;
            }
        }
    }
    fputc('"', f);
}

static void print_base64(FILE *f, const uint8_t *data, size_t len)
{
    size_t cap = WD_BASE64_STD_LEN(len) + 1;
    char *out = malloc(cap);
    if (out == NULL || wd_base64_std_encode(data, len, out, cap) != WD_OK)
        fputs("\"\"", f);
    else
        fprintf(f, "\"%s\"", out);
    free(out);
}

static void print_double(FILE *f, double v)
{
    if (isnan(v))
        fputs("\"NaN\"", f);
    else if (isinf(v))
        fputs(v > 0 ? "\"Infinity\"" : "\"-Infinity\"", f);
    else {
        /* The fewest digits (15 to 17) that read back as v: %.15g alone
         * loses precision, and rounds DBL_MAX up to 1.79769313486232e+308,
         * beyond any double, which JSON readers refuse (jansson: "real
         * number overflow") or read as infinity. */
        char buf[32];
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(buf, sizeof buf, "%.*g", prec, v);
            if (strtod(buf, NULL) == v)
                break;
        }
        fputs(buf, f);
    }
}

static void print_message(FILE *f, const ProtobufCMessage *m, int depth);

/* One value of field fd stored at p (an element, not the array). */
static void print_value(FILE *f, const ProtobufCFieldDescriptor *fd, const void *p, int depth)
{
    switch (fd->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        fprintf(f, "%d", (int)*(const int32_t *)p);
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        fprintf(f, "%u", (unsigned)*(const uint32_t *)p);
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        fprintf(f, "%lld", (long long)*(const int64_t *)p);
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        fprintf(f, "%llu", (unsigned long long)*(const uint64_t *)p);
        break;
    case PROTOBUF_C_TYPE_FLOAT:
        print_double(f, *(const float *)p);
        break;
    case PROTOBUF_C_TYPE_DOUBLE:
        print_double(f, *(const double *)p);
        break;
    case PROTOBUF_C_TYPE_BOOL:
        fputs(*(const protobuf_c_boolean *)p ? "true" : "false", f);
        break;
    case PROTOBUF_C_TYPE_ENUM: {
        int v = *(const int *)p;
        const ProtobufCEnumValue *ev =
            fd->descriptor ? protobuf_c_enum_descriptor_get_value(fd->descriptor, v) : NULL;
        if (ev)
            fprintf(f, "\"%s\"", ev->name);
        else
            fprintf(f, "%d", v);
        break;
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        wd_pbjson_str(f, s, s ? strlen(s) : 0);
        break;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = p;
        print_base64(f, b->data, b->len);
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)p;
        if (sub == NULL)
            fputs("null", f);
        else if (depth >= MAX_DEPTH)
            fputs("\"(nested too deep)\"", f);
        else
            print_message(f, sub, depth + 1);
        break;
    }
    default:
        fputs("null", f);
    }
}

static size_t value_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return 4;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return 8;
    case PROTOBUF_C_TYPE_FLOAT:
        return sizeof(float);
    case PROTOBUF_C_TYPE_DOUBLE:
        return sizeof(double);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_ENUM:
        return sizeof(int);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    default:
        return 0;
    }
}

/* True if a proto3 singular value is at its default (then it is left out). */
static bool is_default(const ProtobufCFieldDescriptor *fd, const void *p)
{
    switch (fd->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        return s == NULL || *s == '\0';
    }
    case PROTOBUF_C_TYPE_BYTES:
        return ((const ProtobufCBinaryData *)p)->len == 0;
    case PROTOBUF_C_TYPE_MESSAGE:
        return *(ProtobufCMessage *const *)p == NULL;
    case PROTOBUF_C_TYPE_FLOAT:
        return *(const float *)p == 0.0f && !signbit(*(const float *)p);
    case PROTOBUF_C_TYPE_DOUBLE:
        return *(const double *)p == 0.0 && !signbit(*(const double *)p);
    default: {
        size_t n = value_size(fd->type);
        const unsigned char *b = p;
        for (size_t i = 0; i < n; i++)
            if (b[i])
                return false;
        return true;
    }
    }
}

/* A map field: protobuf-c represents map<K,V> as a repeated XxxEntry
 * message with fields key = 1 and value = 2. */
static bool is_map(const ProtobufCFieldDescriptor *fd)
{
    if (fd->type != PROTOBUF_C_TYPE_MESSAGE || fd->label != PROTOBUF_C_LABEL_REPEATED ||
        fd->descriptor == NULL)
        return false;
    const ProtobufCMessageDescriptor *d = fd->descriptor;
    size_t nl = strlen(d->name);
    return d->n_fields == 2 && nl > 5 && strcmp(d->name + nl - 5, "Entry") == 0 &&
           strcmp(d->fields[0].name, "key") == 0 && d->fields[0].id == 1 &&
           strcmp(d->fields[1].name, "value") == 0 && d->fields[1].id == 2;
}

static void print_map(FILE *f, const ProtobufCFieldDescriptor *fd, ProtobufCMessage *const *ents,
                      size_t n, int depth)
{
    const ProtobufCMessageDescriptor *d = fd->descriptor;
    const ProtobufCFieldDescriptor *kf = &d->fields[0], *vf = &d->fields[1];
    bool first = true;
    fputc('{', f);
    for (size_t i = 0; i < n; i++) {
        const char *e = (const char *)ents[i];
        if (e == NULL)
            continue;
        if (!first)
            fputc(',', f);
        first = false;
        /* JSON keys are strings: a numeric or boolean key is quoted. */
        if (kf->type == PROTOBUF_C_TYPE_STRING) {
            print_value(f, kf, e + kf->offset, depth);
        } else {
            fputc('"', f);
            print_value(f, kf, e + kf->offset, depth);
            fputc('"', f);
        }
        fputc(':', f);
        print_value(f, vf, e + vf->offset, depth);
    }
    fputc('}', f);
}

static void print_message(FILE *f, const ProtobufCMessage *m, int depth)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    const char *base = (const char *)m;
    bool first = true;
    fputc('{', f);
    for (unsigned i = 0; d && i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *fd = &d->fields[i];
        const void *p = base + fd->offset;
        if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + fd->quantifier_offset);
            if (n == 0)
                continue;
            fprintf(f, "%s\"%s\":", first ? "" : ",", fd->name);
            first = false;
            const char *arr = *(char *const *)p;
            if (is_map(fd)) {
                print_map(f, fd, (ProtobufCMessage *const *)arr, n, depth);
                continue;
            }
            size_t sz = value_size(fd->type);
            fputc('[', f);
            for (size_t k = 0; k < n; k++) {
                if (k)
                    fputc(',', f);
                print_value(f, fd, arr + k * sz, depth);
            }
            fputc(']', f);
            continue;
        }
        if (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            if (*(const uint32_t *)(base + fd->quantifier_offset) != fd->id)
                continue;
        } else if (fd->label == PROTOBUF_C_LABEL_OPTIONAL && fd->quantifier_offset &&
                   fd->type != PROTOBUF_C_TYPE_STRING && fd->type != PROTOBUF_C_TYPE_MESSAGE) {
            if (!*(const protobuf_c_boolean *)(base + fd->quantifier_offset))
                continue;
        } else if (is_default(fd, p)) {
            continue;
        }
        fprintf(f, "%s\"%s\":", first ? "" : ",", fd->name);
        first = false;
        print_value(f, fd, p, depth);
    }
    if (m->n_unknown_fields)
        fprintf(f, "%s\"_unknown_fields\":%u", first ? "" : ",", m->n_unknown_fields);
    fputc('}', f);
}

void wd_pbjson_message(FILE *f, const ProtobufCMessage *m)
{
    if (m == NULL)
        fputs("null", f);
    else
        print_message(f, m, 0);
}

/* ---- subjects -------------------------------------------------------- */

const ProtobufCMessageDescriptor *const wd_pbjson_known_types[] = {
    &warden__v1__console_chunk__descriptor,
    &warden__v1__server_state_event__descriptor,
    &warden__v1__server_stats__descriptor,
    &warden__v1__node_heartbeat__descriptor,
    &warden__v1__discovery_hello__descriptor,
    &warden__v1__discovery_probe__descriptor,
    &warden__v1__join_request__descriptor,
    &warden__v1__panel_event__descriptor,
    &warden__v1__sync_request__descriptor,
    &warden__v1__install_request__descriptor,
    &warden__v1__power_request__descriptor,
    &warden__v1__console_input__descriptor,
    &warden__v1__info_request__descriptor,
    &warden__v1__delete_request__descriptor,
    &warden__v1__file_list_request__descriptor,
    &warden__v1__file_read_request__descriptor,
    &warden__v1__file_write_request__descriptor,
    &warden__v1__file_rename_request__descriptor,
    &warden__v1__file_delete_request__descriptor,
    &warden__v1__file_mkdir_request__descriptor,
    &warden__v1__file_archive_request__descriptor,
    &warden__v1__file_extract_request__descriptor,
    &warden__v1__backup_create_request__descriptor,
    &warden__v1__backup_restore_request__descriptor,
    &warden__v1__backup_delete_request__descriptor,
    &warden__v1__backup_list_request__descriptor,
    NULL};

/* Requests to agents, by the op after warden.agent.<node>.server.<server>. */
static const struct {
    const char *op;
    const ProtobufCMessageDescriptor *desc;
} agent_ops[] = {
    {"sync", &warden__v1__sync_request__descriptor},
    {"install", &warden__v1__install_request__descriptor},
    {"power", &warden__v1__power_request__descriptor},
    {"console.in", &warden__v1__console_input__descriptor},
    {"info", &warden__v1__info_request__descriptor},
    {"delete", &warden__v1__delete_request__descriptor},
    {"files.list", &warden__v1__file_list_request__descriptor},
    {"files.read", &warden__v1__file_read_request__descriptor},
    {"files.write", &warden__v1__file_write_request__descriptor},
    {"files.rename", &warden__v1__file_rename_request__descriptor},
    {"files.delete", &warden__v1__file_delete_request__descriptor},
    {"files.mkdir", &warden__v1__file_mkdir_request__descriptor},
    {"files.archive", &warden__v1__file_archive_request__descriptor},
    {"files.extract", &warden__v1__file_extract_request__descriptor},
    {"backup.create", &warden__v1__backup_create_request__descriptor},
    {"backup.restore", &warden__v1__backup_restore_request__descriptor},
    {"backup.delete", &warden__v1__backup_delete_request__descriptor},
    {"backup.list", &warden__v1__backup_list_request__descriptor},
};

/* Splits subject into at most max tokens (pointers into buf). */
static int split(const char *subject, char *buf, size_t n, char **tok, int max)
{
    if (snprintf(buf, n, "%s", subject) >= (int)n)
        return 0;
    int k = 0;
    for (char *p = buf; k < max;) {
        tok[k++] = p;
        char *dot = strchr(p, '.');
        if (dot == NULL)
            return k;
        *dot = '\0';
        p = dot + 1;
    }
    return max + 1; /* more tokens than we look at */
}

/* Subjects are spelt in bus/subject.h (and the KV bucket names in
 * bus/js.h); this only reads them back. */
const ProtobufCMessageDescriptor *wd_pbjson_subject_type(const char *subject)
{
    char buf[WD_SUBJECT_MAX], *t[5];
    if (subject == NULL)
        return NULL;
    if (strcmp(subject, WD_SUBJ_HELLO) == 0)
        return &warden__v1__discovery_hello__descriptor;
    if (strcmp(subject, WD_SUBJ_PROBE) == 0)
        return &warden__v1__discovery_probe__descriptor;
    if (strcmp(subject, WD_SUBJ_JOIN) == 0)
        return &warden__v1__join_request__descriptor;
    if (strncmp(subject, "warden.agent.", strlen("warden.agent.")) == 0) {
        /* warden.agent.<node>.server.<server>.<op>: typed by the op. */
        char node[65], server[65];
        const char *op = NULL;
        if (wd_subj_parse_agent(subject, node, sizeof node, server, sizeof server, &op) != WD_OK)
            return NULL;
        for (size_t i = 0; i < sizeof agent_ops / sizeof agent_ops[0]; i++)
            if (strcmp(op, agent_ops[i].op) == 0)
                return agent_ops[i].desc;
        return NULL;
    }
    int n = split(subject, buf, sizeof buf, t, 4);
    if (n < 2 || strcmp(t[0], "warden") != 0) {
        /* The node registry's KV entries ($KV.<bucket>.<key>) are heartbeats too. */
        if (n == 3 && strcmp(t[0], "$KV") == 0 && strcmp(t[1], WD_KV_NODES) == 0)
            return &warden__v1__node_heartbeat__descriptor;
        return NULL;
    }
    if (strcmp(t[1], "server") == 0 && n == 4) {
        if (strcmp(t[3], "console") == 0)
            return &warden__v1__console_chunk__descriptor;
        if (strcmp(t[3], "state") == 0)
            return &warden__v1__server_state_event__descriptor;
        if (strcmp(t[3], "stats") == 0)
            return &warden__v1__server_stats__descriptor;
        return NULL;
    }
    if (strcmp(t[1], "node") == 0 && n == 4 && strcmp(t[3], "heartbeat") == 0)
        return &warden__v1__node_heartbeat__descriptor;
    if (strcmp(t[1], "panel") == 0 && n >= 3 && strcmp(t[2], "events") == 0)
        return &warden__v1__panel_event__descriptor;
    return NULL;
}

/* ---- one line per message --------------------------------------------- */

/* Secrets that cross the bus in requests are not for a terminal: the join
 * token, and the values of variables the template marks secret. The
 * message is ours (just unpacked) and is freed by protobuf-c's default
 * allocator, so a redacted string is a malloc'ed one. */
static void redact_str(char **s)
{
    if (*s == NULL || **s == '\0')
        return; /* may be protobuf_c_empty_string: never freed */
    char *r = strdup("(redacted)");
    if (r == NULL)
        return;
    free(*s);
    *s = r;
}

static void redact(ProtobufCMessage *m)
{
    if (m->descriptor == &warden__v1__join_request__descriptor) {
        redact_str(&((Warden__V1__JoinRequest *)m)->token);
        return;
    }
    if (m->descriptor != &warden__v1__sync_request__descriptor)
        return;
    Warden__V1__ServerSpec *spec = ((Warden__V1__SyncRequest *)m)->spec;
    if (spec == NULL)
        return;
    for (size_t i = 0; i < spec->n_variables; i++) {
        Warden__V1__ServerSpec__VariablesEntry *e = spec->variables[i];
        if (e == NULL || e->key == NULL)
            continue;
        bool secret = spec->template_ == NULL; /* unknown: assume the worst */
        for (size_t k = 0; spec->template_ && k < spec->template_->n_variables; k++) {
            const Warden__V1__TemplateVariable *v = spec->template_->variables[k];
            if (v && v->name && strcmp(v->name, e->key) == 0)
                secret = v->secret;
        }
        if (secret)
            redact_str(&e->value);
    }
}

static void print_time(FILE *f, int64_t ms)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    char buf[32];
    gmtime_r(&s, &tm);
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(f, "%s.%03dZ", buf, (int)(ms % 1000));
}

/* True if data is text a human can read (UTF-8 without control
 * characters other than newline and tab): JSON replies of JetStream, the
 * node ids in the server registry. */
static bool is_text(const unsigned char *p, size_t len)
{
    for (size_t i = 0; i < len;) {
        if ((p[i] < 0x20 && p[i] != '\n' && p[i] != '\t') || p[i] == 0x7f)
            return false;
        size_t k = utf8_seq(p + i, len - i);
        if (k == 0)
            return false;
        i += k;
    }
    return len > 0;
}

static void print_raw(FILE *f, const void *data, size_t len)
{
    size_t show = len < RAW_PREFIX ? len : RAW_PREFIX;
    fprintf(f, "{\"size\":%zu,\"base64\":", len);
    print_base64(f, data, show);
    if (show < len)
        fputs(",\"truncated\":true", f);
    if (is_text(data, len)) {
        /* Cut at a character boundary, at most RAW_TEXT bytes. */
        size_t cut = 0;
        while (cut < len && cut < RAW_TEXT)
            cut += utf8_seq((const unsigned char *)data + cut, len - cut);
        fputs(",\"text\":", f);
        wd_pbjson_str(f, data, cut);
    }
    fputc('}', f);
}

/* The short type name: "warden.v1.ServerStateEvent" → "ServerStateEvent". */
static const char *short_name(const ProtobufCMessageDescriptor *d)
{
    const char *dot = strrchr(d->name, '.');
    return dot ? dot + 1 : d->name;
}

bool wd_pbjson_print_msg(FILE *f, const char *subject, const void *data, size_t len,
                         int64_t time_unix_ms, const char *trace, bool json)
{
    const ProtobufCMessageDescriptor *d = wd_pbjson_subject_type(subject);
    ProtobufCMessage *m = d ? protobuf_c_message_unpack(d, NULL, len, data) : NULL;
    if (m)
        redact(m);
    if (json) {
        fputs("{\"time\":\"", f);
        print_time(f, time_unix_ms);
        fputs("\",\"subject\":", f);
        wd_pbjson_str(f, subject, strlen(subject));
        fprintf(f, ",\"type\":");
        if (m)
            fprintf(f, "\"%s\"", d->name);
        else
            fputs("null", f);
        fprintf(f, ",\"size\":%zu", len);
        if (trace) {
            fputs(",\"trace\":", f);
            wd_pbjson_str(f, trace, strlen(trace));
        }
        if (m) {
            fputs(",\"message\":", f);
            wd_pbjson_message(f, m);
        } else {
            fputs(",\"raw\":", f);
            print_raw(f, data, len);
        }
        fputs("}\n", f);
    } else {
        print_time(f, time_unix_ms);
        fputc(' ', f);
        /* Subjects come from the server and cannot hold blanks or control
         * characters; escape anyway rather than trust it. */
        for (const unsigned char *p = (const unsigned char *)subject; *p; p++)
            fputc(*p > 0x20 && *p < 0x7f ? *p : '?', f);
        if (m) {
            fprintf(f, " %s ", short_name(d));
            wd_pbjson_message(f, m);
        } else {
            fputs(d ? " undecodable " : " raw ", f);
            print_raw(f, data, len);
        }
        fputc('\n', f);
    }
    if (m)
        protobuf_c_message_free_unpacked(m, NULL);
    return m != NULL;
}
