/* Validation of request input at the edge: JSON object fields against a
 * declared spec, and list parameters (pagination, sorting).
 *
 * Unknown fields, missing required ones, wrong types, out-of-range numbers,
 * over-long strings and control characters are all refused with
 * WD_ERR_INVALID and a details object naming each offending field, so a
 * handler validates everything before it writes anything. Pure functions;
 * thread-safe. */
#ifndef WD_INPUT_H
#define WD_INPUT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "status.h"

typedef enum {
    WD_F_STRING, /* printable text, no control characters */
    WD_F_TEXT,   /* like STRING but may contain newlines and tabs */
    WD_F_INT,
    WD_F_BOOL,
    WD_F_UUID,
    WD_F_EMAIL,
    WD_F_OBJECT,
    WD_F_ARRAY,
    WD_F_STRING_ARRAY,
} wd_field_type;

typedef struct {
    const char *name;
    wd_field_type type;
    bool required;
    size_t max_len;  /* strings (bytes) and arrays (items); 0: 256 for strings */
    long long min, max; /* integers; both 0: unbounded */
    bool nullable;   /* JSON null accepted (means "clear") */
} wd_field;

/* Checks obj against spec. On WD_ERR_INVALID, *details (if details is not
 * NULL) is a new object {"field": "reason", ...}. */
wd_status wd_input_check(const json_t *obj, const wd_field *spec, size_t n, json_t **details);

typedef struct {
    int limit;       /* 1..100, default 25 */
    int page;        /* 1-based, default 1 */
    char sort[32];   /* one of the allowed fields, default allowed[0] */
    bool desc;       /* "-field" sorts descending */
} wd_page;

/* Parses per_page / page / sort query values (each may be NULL). allowed is
 * a NULL-terminated list of sortable fields. */
wd_status wd_input_page(const char *per_page, const char *page, const char *sort,
                        const char *const *allowed, wd_page *out);

#endif
