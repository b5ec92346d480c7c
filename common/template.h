/* Templates: parse, validate and render game templates.
 *
 * A template arrives as JSON in one of two shapes, detected automatically:
 *   - Warden's own format (docs/templates.md), and
 *   - a Pterodactyl egg (PTDL_v2), imported where the fields map; what does
 *     not map is listed in Template.import_notes, never silently dropped.
 * Either becomes a Warden__V1__Template (the bus form, template.proto).
 *
 * Messages built here are allocated with malloc and freed with
 * wd_template_free (protobuf_c_message_free_unpacked with the default
 * allocator), exactly like messages unpacked from the bus.
 *
 * All functions are pure (no globals) and thread-safe. Errors come back as
 * WD_ERR_INVALID with a message that names the offending field. */
#ifndef WD_TEMPLATE_H
#define WD_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>

#include "status.h"
#include "warden/v1/template.pb-c.h"

/* Upper bounds that keep a hostile template from costing much. */
#define WD_TEMPLATE_MAX_JSON (1024 * 1024)
#define WD_TEMPLATE_MAX_VARS 64
#define WD_TEMPLATE_MAX_FILES 64
#define WD_TEMPLATE_MAX_VALUE 4096

typedef struct {
    char *key;
    char *value;
} wd_kv;

/* Parses JSON text (ours or a PTDL_v2 egg) and validates the result with
 * wd_template_validate. On success *out is a new template the caller frees. */
wd_status wd_template_parse_json(const char *json, size_t len, Warden__V1__Template **out);

/* Serialises a template to Warden's JSON format (heap string, caller frees). */
wd_status wd_template_to_json(const Warden__V1__Template *t, char **out);

/* Structural checks: non-empty id/startup, variable names [A-Z_][A-Z0-9_]*,
 * unique, defaults valid for their own rules, patterns compile, config file
 * paths confined (wd_path_rel_ok), every {{VAR}} used in startup, config
 * files and environment names a declared variable or a built-in. */
wd_status wd_template_validate(const Warden__V1__Template *t);

void wd_template_free(Warden__V1__Template **t);

/* Effective variable values: each declared variable's default, overridden by
 * `given`. Every value is checked against its variable's rules; a name the
 * template does not declare is refused. *out is a heap array of
 * t->n_variables entries (same order as the template); free with wd_kv_free. */
wd_status wd_template_resolve(const Warden__V1__Template *t, const wd_kv *given, size_t n_given,
                              wd_kv **out, size_t *n_out);
void wd_kv_free(wd_kv *kv, size_t n);

/* Replaces every {{NAME}} in text with its value from vars (also accepts the
 * egg spellings {{env.NAME}} and {{server.build.env.NAME}}). An unknown name
 * is an error. *out is a heap string. */
wd_status wd_template_render(const char *text, const wd_kv *vars, size_t n, char **out);

/* Builds the argv of the startup command: the template text is first split
 * into words like a POSIX shell word list (single quotes, double quotes,
 * backslash; no expansion, no operators), then each word is rendered. A
 * variable value therefore never creates or splits words: no injection.
 * *argv is a NULL-terminated heap array; free with wd_argv_free. */
wd_status wd_template_build_argv(const char *startup, const wd_kv *vars, size_t n, char ***argv,
                                 int *argc);
void wd_argv_free(char **argv);

/* True if rel is a safe relative path: not empty, not absolute, no ".."
 * component, no empty component, no control bytes, at most 1024 bytes. */
bool wd_path_rel_ok(const char *rel);

/* Creates or replaces root/rel with data, refusing to follow a symlink in
 * any component (openat2 RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS, or a
 * component-by-component O_NOFOLLOW walk). Missing parent directories are
 * created (mode 0755). WD_ERR_DENIED for a path that would escape root. */
wd_status wd_path_write_confined(const char *root, const char *rel, const void *data, size_t len,
                                 unsigned mode);

#endif
