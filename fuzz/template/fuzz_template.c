/* libFuzzer driver for common/template.c: the template parser (Warden JSON
 * and Pterodactyl eggs) plus everything the agent does with a parsed
 * template. Invariants checked on every input that parses:
 *   - it validates, and to_json -> parse_json gives the same message;
 *   - resolving the defaults, building the argv and rendering every config
 *     file and environment value never crashes (errors are fine);
 *   - values never create or split argv words: the argc is the same with
 *     SERVER_NAME full of blanks and quotes as with every value "x".
 * Build: clang -fsanitize=fuzzer,address,undefined (see CMakeLists.txt). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "template.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_round_trip(const Warden__V1__Template *t)
{
    char *json = NULL;
    if (wd_template_to_json(t, &json) != WD_OK)
        abort();
    Warden__V1__Template *back = NULL;
    if (wd_template_parse_json(json, strlen(json), &back) != WD_OK)
        abort();
    size_t la = warden__v1__template__get_packed_size(t);
    size_t lb = warden__v1__template__get_packed_size(back);
    uint8_t *a = malloc(la + 1), *b = malloc(lb + 1);
    warden__v1__template__pack(t, a);
    warden__v1__template__pack(back, b);
    if (la != lb || memcmp(a, b, la) != 0)
        abort();
    free(a);
    free(b);
    free(json);
    wd_template_free(&back);
}

static void exercise(const Warden__V1__Template *t)
{
    wd_kv *kv = NULL;
    size_t n = 0;
    if (wd_template_resolve(t, NULL, 0, &kv, &n) != WD_OK)
        return; /* e.g. a required variable without a default */
    wd_kv *all = realloc(kv, (n + 3) * sizeof *kv);
    if (all == NULL) {
        wd_kv_free(kv, n);
        return;
    }
    all[n].key = strdup("SERVER_ID");
    all[n].value = strdup("fuzz");
    all[n + 1].key = strdup("SERVER_NAME");
    all[n + 1].value = strdup("a b 'c' \"d\" $(e)");
    all[n + 2].key = strdup("SERVER_DIR");
    all[n + 2].value = strdup("/srv/fuzz");
    n += 3;
    char **argv = NULL;
    int argc = 0;
    if (wd_template_build_argv(t->startup, all, n, &argv, &argc) == WD_OK) {
        if (argc < 1 || argv[argc] != NULL)
            abort();
        wd_argv_free(argv);
        wd_kv *plain = calloc(n, sizeof *plain);
        if (plain != NULL) {
            for (size_t i = 0; i < n; i++) {
                plain[i].key = all[i].key;
                plain[i].value = (char *)"x";
            }
            int argc2 = 0;
            if (wd_template_build_argv(t->startup, plain, n, &argv, &argc2) != WD_OK ||
                argc2 != argc)
                abort();
            wd_argv_free(argv);
            free(plain);
        }
    }
    for (size_t i = 0; i < t->n_config_files; i++) {
        char *out = NULL;
        if (wd_template_render(t->config_files[i]->content, all, n, &out) == WD_OK)
            free(out);
    }
    for (size_t i = 0; i < t->n_environment; i++) {
        char *out = NULL;
        if (wd_template_render(t->environment[i]->value, all, n, &out) == WD_OK)
            free(out);
    }
    wd_kv_free(all, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Warden__V1__Template *t = NULL;
    if (wd_template_parse_json((const char *)data, size, &t) != WD_OK)
        return 0;
    if (wd_template_validate(t) != WD_OK)
        abort();
    check_round_trip(t);
    exercise(t);
    wd_template_free(&t);
    return 0;
}
