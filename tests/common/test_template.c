/* Tests for common/template.c: the Warden JSON format, egg import, value
 * rules, rendering, argv building, confined writes, round trips and the
 * templates shipped in templates/.
 *
 * JSON in this file is written with single quotes for readability; q()
 * turns them into double quotes before parsing. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>

#include "harness.h"
#include "template.h"
#include "util.h"

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */
/* ------------------------------------------------------------------------ */

/* Single-quoted JSON to real JSON (the tests never need a literal '). */
static char *q(const char *s)
{
    char *r = strdup(s);
    for (char *p = r; *p; p++)
        if (*p == '\'')
            *p = '"';
    return r;
}

static wd_status parse_q(const char *sq, Warden__V1__Template **t)
{
    char *j = q(sq);
    wd_status st = wd_template_parse_json(j, strlen(j), t);
    free(j);
    return st;
}

static Warden__V1__Template *parse_ok(const char *sq)
{
    Warden__V1__Template *t = NULL;
    wd_status st = parse_q(sq, &t);
    if (st != WD_OK)
        fprintf(stderr, "\n  unexpected parse error: %s\n  in: %.200s\n", wd_err_msg(), sq);
    CU_ASSERT_EQUAL(st, WD_OK);
    return t;
}

/* Parsing fails with WD_ERR_INVALID and a message containing needle. */
static void parse_fails(const char *sq, const char *needle)
{
    Warden__V1__Template *t = NULL;
    wd_status st = parse_q(sq, &t);
    bool ok = st == WD_ERR_INVALID && t == NULL && strstr(wd_err_msg(), needle) != NULL;
    if (!ok)
        fprintf(stderr, "\n  expected error containing \"%s\", got %s \"%s\"\n  in: %.300s\n",
                needle, wd_status_str(st), wd_err_msg(), sq);
    CU_ASSERT(ok);
    wd_template_free(&t);
}

static bool msg_has(const char *needle)
{
    bool ok = strstr(wd_err_msg(), needle) != NULL;
    if (!ok)
        fprintf(stderr, "\n  error \"%s\" lacks \"%s\"\n", wd_err_msg(), needle);
    return ok;
}

static char *read_src(const char *rel)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", WARDEN_SOURCE_DIR, rel);
    char *buf = NULL;
    size_t len = 0;
    if (wd_read_file(path, WD_TEMPLATE_MAX_JSON, &buf, &len) != WD_OK)
        return NULL;
    return buf;
}

static Warden__V1__Template *parse_file(const char *rel)
{
    char *s = read_src(rel);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    Warden__V1__Template *t = NULL;
    wd_status st = wd_template_parse_json(s, strlen(s), &t);
    if (st != WD_OK)
        fprintf(stderr, "\n  %s: %s\n", rel, wd_err_msg());
    CU_ASSERT_EQUAL(st, WD_OK);
    free(s);
    return t;
}

static bool same_template(const Warden__V1__Template *a, const Warden__V1__Template *b)
{
    size_t la = warden__v1__template__get_packed_size(a);
    size_t lb = warden__v1__template__get_packed_size(b);
    if (la != lb)
        return false;
    uint8_t *pa = malloc(la + 1), *pb = malloc(lb + 1);
    warden__v1__template__pack(a, pa);
    warden__v1__template__pack(b, pb);
    bool eq = memcmp(pa, pb, la) == 0;
    free(pa);
    free(pb);
    return eq;
}

static const Warden__V1__TemplateVariable *var(const Warden__V1__Template *t, const char *name)
{
    for (size_t i = 0; i < t->n_variables; i++)
        if (strcmp(t->variables[i]->name, name) == 0)
            return t->variables[i];
    return NULL;
}

static bool has_note(const Warden__V1__Template *t, const char *needle)
{
    for (size_t i = 0; i < t->n_import_notes; i++)
        if (strstr(t->import_notes[i], needle) != NULL)
            return true;
    fprintf(stderr, "\n  no import note contains \"%s\"\n", needle);
    return false;
}

static const char *kv_get(const wd_kv *kv, size_t n, const char *k)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(kv[i].key, k) == 0)
            return kv[i].value;
    return NULL;
}

/* Resolves a single given value against t; returns the status. */
static wd_status resolve1(const Warden__V1__Template *t, const char *k, const char *v)
{
    wd_kv g = {(char *)k, (char *)v};
    wd_kv *out = NULL;
    size_t n = 0;
    wd_status st = wd_template_resolve(t, &g, 1, &out, &n);
    wd_kv_free(out, n);
    return st;
}

#define HEAD "{'format':'warden/v1','id':'x','startup':'/bin/true {{P}}'"
#define VARS(v) HEAD ",'variables':[" v "]}"

/* ------------------------------------------------------------------------ */
/* Parsing                                                                  */
/* ------------------------------------------------------------------------ */

static const char *FULL =
    "{'format':'warden/v1','id':'full-1','name':'Full','description':'All fields',"
    "'author':'me','startup':'/usr/bin/game --port {{PORT}} --name {{SERVER_NAME}}',"
    "'stop':{'command':'quit','grace_seconds':12},'done':'Ready','install':{'script':"
    "'mkdir -p saves\\n','interpreter':'/bin/bash'},'config_files':[{'path':'cfg/game.cfg',"
    "'content':'port={{PORT}}\\nmode={{MODE}}\\n','mode':'0600'},{'path':'b.txt','content':''}],"
    "'environment':{'GAME_HOME':'{{SERVER_DIR}}/home','LEVEL':'{{LEVEL}}'},'variables':["
    "{'name':'PORT','description':'port','type':'integer','default':'5556','required':true,"
    "'user_editable':false,'user_viewable':true,'secret':false,'min':1024,'max':65535},"
    "{'name':'MODE','type':'enum','default':'b','options':['a','b','c']},"
    "{'name':'LEVEL','type':'integer','default':7,'min':0},"
    "{'name':'DEPTH','type':'integer','default':'-3','max':10},"
    "{'name':'FLAG','type':'boolean','default':true},"
    "{'name':'PASS','type':'string','default':'','secret':true,'user_viewable':false,"
    "'max_length':16,'pattern':'^[a-z0-9]+$'}]}";

static void test_parse_minimal(void)
{
    Warden__V1__Template *t = parse_ok("{'format':'warden/v1','id':'x','startup':'/bin/true'}");
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_STRING_EQUAL(t->id, "x");
    CU_ASSERT_STRING_EQUAL(t->startup, "/bin/true");
    CU_ASSERT_STRING_EQUAL(t->source_format, "warden");
    CU_ASSERT_EQUAL(t->n_variables, 0);
    CU_ASSERT_EQUAL(t->n_import_notes, 0);
    wd_template_free(&t);
    CU_ASSERT_PTR_NULL(t);
    wd_template_free(&t); /* NULL-safe */
    wd_template_free(NULL);
}

static void test_parse_full(void)
{
    Warden__V1__Template *t = parse_ok(FULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_STRING_EQUAL(t->name, "Full");
    CU_ASSERT_STRING_EQUAL(t->description, "All fields");
    CU_ASSERT_STRING_EQUAL(t->author, "me");
    CU_ASSERT_STRING_EQUAL(t->stop_command, "quit");
    CU_ASSERT_EQUAL(t->stop_grace_seconds, 12);
    CU_ASSERT_STRING_EQUAL(t->done_pattern, "Ready");
    CU_ASSERT_STRING_EQUAL(t->install_script, "mkdir -p saves\n");
    CU_ASSERT_STRING_EQUAL(t->install_interpreter, "/bin/bash");
    CU_ASSERT_EQUAL_FATAL(t->n_config_files, 2);
    CU_ASSERT_STRING_EQUAL(t->config_files[0]->path, "cfg/game.cfg");
    CU_ASSERT_EQUAL(t->config_files[0]->mode, 0600);
    CU_ASSERT_EQUAL(t->config_files[1]->mode, 0);
    CU_ASSERT_EQUAL_FATAL(t->n_environment, 2);
    CU_ASSERT_STRING_EQUAL(t->environment[0]->key, "GAME_HOME");
    CU_ASSERT_STRING_EQUAL(t->environment[1]->value, "{{LEVEL}}");
    CU_ASSERT_EQUAL_FATAL(t->n_variables, 6);
    const Warden__V1__TemplateVariable *p = var(t, "PORT");
    CU_ASSERT_EQUAL(p->type, WARDEN__V1__VARIABLE_TYPE__VAR_INTEGER);
    CU_ASSERT_EQUAL(p->min, 1024);
    CU_ASSERT_EQUAL(p->max, 65535);
    CU_ASSERT(p->required && p->user_viewable && !p->user_editable && !p->secret);
    const Warden__V1__TemplateVariable *m = var(t, "MODE");
    CU_ASSERT_EQUAL(m->type, WARDEN__V1__VARIABLE_TYPE__VAR_ENUM);
    CU_ASSERT_EQUAL(m->n_options, 3);
    CU_ASSERT(m->user_viewable); /* default true */
    CU_ASSERT(!m->user_editable && !m->required);
    /* one bound alone leaves the other open; JSON integer/bool defaults */
    CU_ASSERT_STRING_EQUAL(var(t, "LEVEL")->default_value, "7");
    CU_ASSERT_EQUAL(var(t, "LEVEL")->min, 0);
    CU_ASSERT_EQUAL(var(t, "LEVEL")->max, INT64_MAX);
    CU_ASSERT_EQUAL(var(t, "DEPTH")->min, INT64_MIN);
    CU_ASSERT_STRING_EQUAL(var(t, "FLAG")->default_value, "true");
    const Warden__V1__TemplateVariable *pw = var(t, "PASS");
    CU_ASSERT(pw->secret && !pw->user_viewable);
    CU_ASSERT_EQUAL(pw->max_length, 16);
    CU_ASSERT_STRING_EQUAL(pw->pattern, "^[a-z0-9]+$");
    wd_template_free(&t);
}

static void test_parse_builtins(void)
{
    Warden__V1__Template *t = parse_ok(
        "{'format':'warden/v1','id':'b','startup':'/bin/echo {{SERVER_ID}} {{SERVER_NAME}} "
        "{{SERVER_DIR}}','config_files':[{'path':'a','content':'{{SERVER_DIR}}'}],"
        "'environment':{'X':'{{SERVER_NAME}}'}}");
    CU_ASSERT_PTR_NOT_NULL(t);
    wd_template_free(&t);
    /* the egg spellings name the same variable */
    t = parse_ok(VARS("{'name':'P'}") "");
    wd_template_free(&t);
    t = parse_ok("{'format':'warden/v1','id':'e','startup':'/x {{env.P}} {{server.build.env.P}}',"
                 "'variables':[{'name':'P'}]}");
    CU_ASSERT_PTR_NOT_NULL(t);
    wd_template_free(&t);
    /* a built-in may not be declared */
    parse_fails(VARS("{'name':'P'},{'name':'SERVER_ID'}"), "built-in");
}

static void test_parse_errors_structure(void)
{
    parse_fails("{", "invalid JSON");
    parse_fails("", "invalid JSON");
    parse_fails("[]", "expected a JSON object");
    parse_fails("'x'", "invalid JSON");
    parse_fails("{'id':'x','startup':'/bin/true'}", "format: required");
    parse_fails("{'format':'warden/v2','id':'x','startup':'/bin/true'}", "format: expected");
    parse_fails("{'format':1,'id':'x','startup':'/bin/true'}", "format: expected");
    parse_fails(HEAD ",'nmae':'typo','variables':[{'name':'P'}]}", "unknown field \"nmae\"");
    parse_fails("{'format':'warden/v1','startup':'/bin/true'}", "id: required");
    parse_fails("{'format':'warden/v1','id':'Free Civ','startup':'/bin/true'}", "id \"Free Civ\"");
    parse_fails("{'format':'warden/v1','id':'-x','startup':'/bin/true'}", "id");
    parse_fails("{'format':'warden/v1','id':'x'}", "startup: required");
    parse_fails("{'format':'warden/v1','id':'x','startup':5}", "startup: expected a string");
    parse_fails("{'format':'warden/v1','id':'x','startup':'   '}", "startup: empty command");
    parse_fails("{'format':'warden/v1','id':'x','startup':'/bin/echo \\u0027a'}",
                "unterminated single quote");
    parse_fails("{'format':'warden/v1','id':'x','startup':'/bin/echo \\\"a'}",
                "unterminated double quote");
    parse_fails("{'format':'warden/v1','id':'x','startup':'/bin/echo a\\\\'}",
                "trailing backslash");
    parse_fails("{'format':'warden/v1','id':'x','startup':'/bin/true','name':['n']}",
                "name: expected a string");
    parse_fails("{'format':'warden/v1','id':'x','startup':'/bin/true','done':['a','b']}",
                "done: expected a string");
    parse_fails(HEAD ",'stop':'quit','variables':[{'name':'P'}]}", "stop: expected an object");
    parse_fails(HEAD ",'stop':{'cmd':'quit'},'variables':[{'name':'P'}]}",
                "stop: unknown field \"cmd\"");
    parse_fails(HEAD ",'stop':{'command':'quit','grace_seconds':'30'},'variables':[{'name':'P'}]}",
                "stop.grace_seconds: expected an integer");
    parse_fails(HEAD ",'stop':{'command':'quit','grace_seconds':-1},'variables':[{'name':'P'}]}",
                "stop.grace_seconds: must be between 0 and 3600");
    parse_fails(HEAD ",'stop':{'command':'quit','grace_seconds':99999},'variables':[{'name':'P'}]}",
                "stop.grace_seconds");
    parse_fails(HEAD ",'stop':{'command':'say a\\nquit'},'variables':[{'name':'P'}]}",
                "stop.command: contains control characters");
    parse_fails(HEAD ",'done':'a\\rb','variables':[{'name':'P'}]}", "done: contains control");
    parse_fails(HEAD ",'install':'echo','variables':[{'name':'P'}]}",
                "install: expected an object");
    parse_fails(HEAD ",'install':{'script':'x','interpreter':'sh'},'variables':[{'name':'P'}]}",
                "install.interpreter");
    parse_fails(HEAD ",'install':{'script':1},'variables':[{'name':'P'}]}",
                "install.script: expected a string");
    parse_fails(HEAD ",'variables':{'name':'P'}}", "variables: expected an array");
    parse_fails(HEAD ",'variables':['P']}", "variables[0]: expected an object");
    parse_fails(HEAD ",'environment':['A'],'variables':[{'name':'P'}]}",
                "environment: expected an object");
    parse_fails(HEAD ",'environment':{'A':1},'variables':[{'name':'P'}]}",
                "environment.A: expected a string");
    parse_fails(HEAD ",'environment':{'1A':'x'},'variables':[{'name':'P'}]}", "environment: name");
    parse_fails(HEAD ",'environment':{'A':'x\\ny'},'variables':[{'name':'P'}]}",
                "environment.A: contains control");
    parse_fails("{'format':'warden/v1','id':'x','startup':'/bin/true','id':'y'}", "duplicate");
    parse_fails(HEAD ",'imported_from':'Not A Slug','variables':[{'name':'P'}]}", "imported_from");
    parse_fails(HEAD ",'import_notes':[1],'variables':[{'name':'P'}]}", "import_notes[0]");
}

static void test_parse_errors_variables(void)
{
    parse_fails(VARS("{'name':'P','maxlen':3}"), "variables[0]: unknown field \"maxlen\"");
    parse_fails(VARS("{'description':'no name'}"), "variables[0].name: required");
    parse_fails(VARS("{'name':'p'}"), "must match [A-Z_][A-Z0-9_]*");
    parse_fails(VARS("{'name':'1P'}"), "must match");
    parse_fails(VARS("{'name':'P-Q'}"), "must match");
    parse_fails(VARS("{'name':'P'},{'name':'P'}"), "P declared twice");
    parse_fails(VARS("{'name':'P','type':'float'}"), "variables[0].type: expected");
    parse_fails(VARS("{'name':'P','type':3}"), "variables[0].type");
    parse_fails(VARS("{'name':'P','required':'true'}"),
                "variables[0].required: expected true or false");
    parse_fails(VARS("{'name':'P','secret':1}"), "variables[0].secret");
    parse_fails(VARS("{'name':'P','default':1.5}"), "variables[0].default: expected a string");
    parse_fails(VARS("{'name':'P','default':null}"), "variables[0].default");
    parse_fails(VARS("{'name':'P','min':1}"), "variables[0].min: only integer variables");
    parse_fails(VARS("{'name':'P','type':'integer','min':'1'}"),
                "variables[0].min: expected an integer");
    parse_fails(VARS("{'name':'P','type':'integer','min':1.0}"),
                "variables[0].min: expected an integer");
    parse_fails(VARS("{'name':'P','type':'integer','min':5,'max':1}"), "min is greater than max");
    parse_fails(VARS("{'name':'P','type':'integer','max_length':3}"),
                "variables[0].max_length: only string variables");
    parse_fails(VARS("{'name':'P','max_length':5000}"), "variables[0].max_length: must be between");
    parse_fails(VARS("{'name':'P','type':'boolean','pattern':'a'}"),
                "variables[0].pattern: only string");
    parse_fails(VARS("{'name':'P','pattern':'([a-z'}"), "pattern does not compile");
    parse_fails(VARS("{'name':'P','pattern':'(a)\\\\1'}"), "back-reference");
    parse_fails(VARS("{'name':'P','type':'enum'}"), "an enum needs 1 to 64 options");
    parse_fails(VARS("{'name':'P','type':'enum','options':[]}"), "an enum needs");
    parse_fails(VARS("{'name':'P','options':['a']}"), "variables[0].options: only enum");
    parse_fails(VARS("{'name':'P','type':'enum','options':'a,b'}"), "options: expected an array");
    parse_fails(VARS("{'name':'P','type':'enum','options':['a',2]}"), "options: expected an array");
    parse_fails(VARS("{'name':'P','type':'enum','options':['a','a']}"), "listed twice");
    parse_fails(VARS("{'name':'P','type':'enum','options':['a','']}"), "options[1]");
    /* defaults must satisfy their own rules */
    parse_fails(VARS("{'name':'P','type':'integer','default':'abc'}"), "P: must be an integer");
    parse_fails(VARS("{'name':'P','type':'integer','default':'80','min':1024,'max':65535}"),
                "invalid default (P: must be between 1024 and 65535)");
    parse_fails(VARS("{'name':'P','type':'boolean','default':'yes'}"), "P: must be true, false");
    parse_fails(VARS("{'name':'P','type':'enum','default':'z','options':['a','b']}"),
                "must be one of: a, b");
    parse_fails(VARS("{'name':'P','default':'abcdef','max_length':3}"), "longer than 3 characters");
    parse_fails(VARS("{'name':'P','default':'ABC','pattern':'^[a-z]+$'}"),
                "does not match the pattern");
    parse_fails(VARS("{'name':'P','default':'a\\tb'}"), "control characters");
    /* a required variable may have no default: it must then be given */
    Warden__V1__Template *t = parse_ok(VARS("{'name':'P','required':true}"));
    wd_template_free(&t);
}

static void test_parse_errors_refs_and_files(void)
{
    parse_fails("{'format':'warden/v1','id':'x','startup':'/bin/true {{NOPE}}'}",
                "startup: unknown variable {{NOPE}}");
    /* quoting cannot hide a placeholder from validation */
    parse_fails("{'format':'warden/v1','id':'x','startup':'/bin/true \\u0027{{NO\\u0027PE}}'}",
                "startup: unknown variable {{NOPE}}");
    parse_fails(
        "{'format':'warden/v1','id':'x','startup':'/bin/true {{server.build.default.port}}'}",
        "unsupported placeholder {{server.build.default.port}}");
    parse_fails(HEAD
                ",'config_files':[{'path':'a','content':'x={{Q}}'}],'variables':[{'name':'P'}]}",
                "config_files[0].content: unknown variable {{Q}}");
    parse_fails(HEAD ",'environment':{'A':'{{Q}}'},'variables':[{'name':'P'}]}",
                "environment.A: unknown variable {{Q}}");
    static const char *const bad_paths[] = {"../x", "/etc/passwd", "a/../../x", "a//b", "a/",
                                            "",     "a\\nb",       "..",        NULL};
    for (int i = 0; bad_paths[i]; i++) {
        char buf[512];
        snprintf(buf, sizeof buf,
                 HEAD ",'config_files':[{'path':'%s','content':''}],'variables':[{'name':'P'}]}",
                 bad_paths[i]);
        parse_fails(buf, "config_files[0].path");
    }
    parse_fails(HEAD ",'config_files':[{'content':'x'}],'variables':[{'name':'P'}]}",
                "config_files[0].path: required");
    parse_fails(HEAD ",'config_files':[{'path':'a','content':''},{'path':'a','content':''}],"
                     "'variables':[{'name':'P'}]}",
                "listed twice");
    parse_fails(HEAD ",'config_files':[{'path':'a','mode':'0999'}],'variables':[{'name':'P'}]}",
                "config_files[0].mode");
    parse_fails(HEAD ",'config_files':[{'path':'a','mode':'4755'}],'variables':[{'name':'P'}]}",
                "no setuid");
    parse_fails(HEAD ",'config_files':[{'path':'a','mode':420}],'variables':[{'name':'P'}]}",
                "config_files[0].mode");
    parse_fails(HEAD ",'config_files':[{'path':'a','owner':'root'}],'variables':[{'name':'P'}]}",
                "config_files[0]: unknown field \"owner\"");
    parse_fails(HEAD ",'config_files':{'a':'b'},'variables':[{'name':'P'}]}",
                "config_files: expected an array");
}

static void test_parse_null_args(void)
{
    Warden__V1__Template *t = NULL;
    CU_ASSERT_EQUAL(wd_template_parse_json(NULL, 0, &t), WD_ERR_INVALID);
    CU_ASSERT_EQUAL(wd_template_parse_json("{}", 2, NULL), WD_ERR_INVALID);
    CU_ASSERT_EQUAL(wd_template_validate(NULL), WD_ERR_INVALID);
    char *s = NULL;
    CU_ASSERT_EQUAL(wd_template_to_json(NULL, &s), WD_ERR_INVALID);
    CU_ASSERT_EQUAL(wd_template_render(NULL, NULL, 0, &s), WD_ERR_INVALID);
    char **argv = NULL;
    int argc = 0;
    CU_ASSERT_EQUAL(wd_template_build_argv(NULL, NULL, 0, &argv, &argc), WD_ERR_INVALID);
    CU_ASSERT_FALSE(wd_path_rel_ok(NULL));
    wd_kv_free(NULL, 3);
    wd_argv_free(NULL);
}

/* validate() on messages built in code (as they arrive from the bus). */
static void test_validate_proto(void)
{
    Warden__V1__Template *t = parse_ok(FULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_EQUAL(wd_template_validate(t), WD_OK);
    Warden__V1__VariableType old = t->variables[0]->type;
    t->variables[0]->type = (Warden__V1__VariableType)9;
    CU_ASSERT_EQUAL(wd_template_validate(t), WD_ERR_INVALID);
    CU_ASSERT(msg_has("unknown type"));
    t->variables[0]->type = old;
    t->config_files[0]->mode = 04755;
    CU_ASSERT_EQUAL(wd_template_validate(t), WD_ERR_INVALID);
    t->config_files[0]->mode = 0644;
    t->stop_grace_seconds = 100000;
    CU_ASSERT_EQUAL(wd_template_validate(t), WD_ERR_INVALID);
    t->stop_grace_seconds = 0;
    CU_ASSERT_EQUAL(wd_template_validate(t), WD_OK);
    wd_template_free(&t);
}

/* ------------------------------------------------------------------------ */
/* Hostile input                                                            */
/* ------------------------------------------------------------------------ */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void test_hostile_garbage(void)
{
    static const char alphabet[] = "{}[]\":,'\\ntrufalsenul0123456789.eE+-{{}}$ \x01\xff\xc3";
    char buf[512];
    for (int i = 0; i < 3000; i++) {
        size_t len = rng() % sizeof buf;
        for (size_t k = 0; k < len; k++)
            buf[k] = (i & 1) ? (char)(rng() & 0xff) : alphabet[rng() % (sizeof alphabet - 1)];
        Warden__V1__Template *t = NULL;
        wd_status st = wd_template_parse_json(buf, len, &t);
        CU_ASSERT(st == WD_OK ? t != NULL : t == NULL);
        wd_template_free(&t);
    }
}

/* Every truncation and many byte flips of real templates: no crash, no
 * leak, and never a success that fails validation. */
static void test_hostile_mutations(void)
{
    const char *files[] = {"tests/common/fixtures/egg_relay.json", "templates/freeciv.json"};
    for (int f = 0; f < 2; f++) {
        char *src = read_src(files[f]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(src);
        size_t len = strlen(src);
        while (len > 0 && (src[len - 1] == '\n' || src[len - 1] == ' '))
            len--; /* every shorter prefix is then invalid JSON */
        for (size_t cut = 0; cut < len; cut += 3) {
            Warden__V1__Template *t = NULL;
            CU_ASSERT_NOT_EQUAL(wd_template_parse_json(src, cut, &t), WD_OK);
            wd_template_free(&t);
        }
        char *m = malloc(len);
        for (int i = 0; i < 2000; i++) {
            memcpy(m, src, len);
            for (int k = 0; k < 3; k++)
                m[rng() % len] = (char)(rng() & 0xff);
            Warden__V1__Template *t = NULL;
            if (wd_template_parse_json(m, len, &t) == WD_OK)
                CU_ASSERT_EQUAL(wd_template_validate(t), WD_OK);
            wd_template_free(&t);
        }
        free(m);
        free(src);
    }
}

static void test_hostile_limits(void)
{
    Warden__V1__Template *t = NULL;
    /* deep nesting */
    size_t n = 200000;
    char *d = malloc(2 * n + 1);
    memset(d, '[', n);
    memset(d + n, ']', n);
    d[2 * n] = '\0';
    CU_ASSERT_EQUAL(wd_template_parse_json(d, 2 * n, &t), WD_ERR_INVALID);
    memset(d, '{', 1);
    CU_ASSERT_EQUAL(wd_template_parse_json(d, 2 * n, &t), WD_ERR_INVALID);
    free(d);
    /* more than the size limit, even if valid */
    size_t big = WD_TEMPLATE_MAX_JSON + 1;
    char *b = malloc(big + 1);
    memset(b, ' ', big);
    memcpy(b, "{}", 2);
    b[big] = '\0';
    CU_ASSERT_EQUAL(wd_template_parse_json(b, big, &t), WD_ERR_INVALID);
    CU_ASSERT(msg_has("more than"));
    free(b);
    /* huge numbers */
    parse_fails(VARS("{'name':'P','type':'integer','min':123456789012345678901234567890}"),
                "invalid JSON");
    parse_fails(VARS("{'name':'P','type':'integer','min':1e400}"), "invalid JSON");
    parse_fails(HEAD ",'stop':{'grace_seconds':9223372036854775807},'variables':[{'name':'P'}]}",
                "grace_seconds");
    Warden__V1__Template *ok = parse_ok(
        VARS("{'name':'P','type':'integer','min':-9223372036854775808,'max':9223372036854775807,"
             "'default':'-9223372036854775808'}"));
    CU_ASSERT_EQUAL(resolve1(ok, "P", "9223372036854775807"), WD_OK);
    CU_ASSERT_EQUAL(resolve1(ok, "P", "9223372036854775808"), WD_ERR_INVALID);
    CU_ASSERT_EQUAL(resolve1(ok, "P", "-99999999999999999999999"), WD_ERR_INVALID);
    wd_template_free(&ok);
    /* embedded NULs: raw, escaped, and after the document */
    static const char raw[] =
        "{\"format\":\"warden/v1\",\"id\":\"x\0y\",\"startup\":\"/bin/true\"}";
    CU_ASSERT_EQUAL(wd_template_parse_json(raw, sizeof raw - 1, &t), WD_ERR_INVALID);
    static const char tail[] =
        "{\"format\":\"warden/v1\",\"id\":\"x\",\"startup\":\"/bin/true\"}\0{";
    CU_ASSERT_EQUAL(wd_template_parse_json(tail, sizeof tail - 1, &t), WD_ERR_INVALID);
    parse_fails("{'format':'warden/v1','id':'x','startup':'/bin/true\\u0000 rm'}", "invalid JSON");
    /* too many variables / files / options; overlong values */
    size_t cap = 70 * 64 + 256;
    char *s = malloc(cap);
    size_t used = (size_t)snprintf(
        s, cap, "%s", "{'format':'warden/v1','id':'x','startup':'/bin/true','variables':[");
    for (int i = 0; i < WD_TEMPLATE_MAX_VARS + 1; i++)
        used += (size_t)snprintf(s + used, cap - used, "%s{'name':'V%d'}", i ? "," : "", i);
    snprintf(s + used, cap - used, "]}");
    parse_fails(s, "variables: more than 64");
    used = (size_t)snprintf(
        s, cap, "%s", "{'format':'warden/v1','id':'x','startup':'/bin/true','config_files':[");
    for (int i = 0; i < WD_TEMPLATE_MAX_FILES + 1; i++)
        used += (size_t)snprintf(s + used, cap - used, "%s{'path':'f%d'}", i ? "," : "", i);
    snprintf(s + used, cap - used, "]}");
    parse_fails(s, "config_files: more than 64");
    used = (size_t)snprintf(s, cap, "%s",
                            "{'format':'warden/v1','id':'x','startup':'/bin/"
                            "true','variables':[{'name':'E','type':'enum','options':[");
    for (int i = 0; i < 65; i++)
        used += (size_t)snprintf(s + used, cap - used, "%s'o%d'", i ? "," : "", i);
    snprintf(s + used, cap - used, "]}]}");
    parse_fails(s, "options");
    free(s);
    size_t vl = WD_TEMPLATE_MAX_VALUE + 1;
    char *longval = malloc(vl + 200);
    int k = snprintf(longval, 200, "%s",
                     "{'format':'warden/v1','id':'x','startup':'/bin/"
                     "true','variables':[{'name':'L','default':'");
    memset(longval + k, 'a', vl);
    snprintf(longval + k + vl, 200, "'}]}");
    parse_fails(longval, "value longer than 4096 bytes");
    free(longval);
}

static void test_hostile_render_size(void)
{
    /* 2000 placeholders of a 4 KiB value would be 8 MiB: refused. */
    char *text = malloc(2000 * 5 + 1);
    for (int i = 0; i < 2000; i++)
        memcpy(text + i * 5, "{{A}}", 5);
    text[2000 * 5] = '\0';
    char *val = malloc(WD_TEMPLATE_MAX_VALUE + 1);
    memset(val, 'v', WD_TEMPLATE_MAX_VALUE);
    val[WD_TEMPLATE_MAX_VALUE] = '\0';
    wd_kv kv = {(char *)"A", val};
    char *out = NULL;
    CU_ASSERT_EQUAL(wd_template_render(text, &kv, 1, &out), WD_ERR_INVALID);
    CU_ASSERT_PTR_NULL(out);
    /* and too many words */
    char *words = malloc(3000 * 2 + 1);
    for (int i = 0; i < 3000; i++)
        memcpy(words + i * 2, "a ", 2);
    words[6000] = '\0';
    char **argv = NULL;
    int argc = 0;
    CU_ASSERT_EQUAL(wd_template_build_argv(words, NULL, 0, &argv, &argc), WD_ERR_INVALID);
    CU_ASSERT_PTR_NULL(argv);
    free(words);
    free(val);
    free(text);
}

/* ------------------------------------------------------------------------ */
/* Resolve: values against rules                                            */
/* ------------------------------------------------------------------------ */

static void test_resolve_defaults_and_overrides(void)
{
    Warden__V1__Template *t = parse_ok(FULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    wd_kv *kv = NULL;
    size_t n = 0;
    CU_ASSERT_EQUAL(wd_template_resolve(t, NULL, 0, &kv, &n), WD_OK);
    CU_ASSERT_EQUAL_FATAL(n, 6);
    for (size_t i = 0; i < n; i++) /* template order */
        CU_ASSERT_STRING_EQUAL(kv[i].key, t->variables[i]->name);
    CU_ASSERT_STRING_EQUAL(kv_get(kv, n, "PORT"), "5556");
    CU_ASSERT_STRING_EQUAL(kv_get(kv, n, "PASS"), "");
    wd_kv_free(kv, n);

    wd_kv given[] = {{(char *)"MODE", (char *)"c"}, {(char *)"PORT", (char *)"27015"}};
    CU_ASSERT_EQUAL(wd_template_resolve(t, given, 2, &kv, &n), WD_OK);
    CU_ASSERT_STRING_EQUAL(kv_get(kv, n, "PORT"), "27015");
    CU_ASSERT_STRING_EQUAL(kv_get(kv, n, "MODE"), "c");
    CU_ASSERT_STRING_EQUAL(kv_get(kv, n, "LEVEL"), "7");
    wd_kv_free(kv, n);

    CU_ASSERT_EQUAL(resolve1(t, "NOPE", "1"), WD_ERR_INVALID);
    CU_ASSERT(msg_has("unknown variable NOPE"));
    CU_ASSERT_EQUAL(resolve1(t, "SERVER_ID", "abc"), WD_ERR_INVALID); /* built-ins: agent adds */
    CU_ASSERT_EQUAL(resolve1(t, "port", "1"), WD_ERR_INVALID);
    wd_kv twice[] = {{(char *)"PORT", (char *)"2000"}, {(char *)"PORT", (char *)"3000"}};
    kv = NULL;
    CU_ASSERT_EQUAL(wd_template_resolve(t, twice, 2, &kv, &n), WD_ERR_INVALID);
    CU_ASSERT(msg_has("given twice"));
    CU_ASSERT_PTR_NULL(kv);
    wd_kv nullval = {(char *)"PORT", NULL};
    CU_ASSERT_EQUAL(wd_template_resolve(t, &nullval, 1, &kv, &n), WD_ERR_INVALID);
    wd_template_free(&t);

    /* no variables: an empty (freeable) array */
    t = parse_ok("{'format':'warden/v1','id':'x','startup':'/bin/true'}");
    CU_ASSERT_EQUAL(wd_template_resolve(t, NULL, 0, &kv, &n), WD_OK);
    CU_ASSERT_EQUAL(n, 0);
    wd_kv_free(kv, n);
    wd_template_free(&t);
}

static void test_resolve_integer(void)
{
    Warden__V1__Template *t =
        parse_ok(VARS("{'name':'P','type':'integer','default':'5556','min':1024,'max':65535}"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    static const char *const good[] = {"1024", "65535", "27015", "01024", NULL};
    static const char *const bad[] = {"abc",
                                      "1.5",
                                      " 2000",
                                      "2000 ",
                                      "+2000",
                                      "0x500",
                                      "1023",
                                      "65536",
                                      "-1",
                                      "-",
                                      "99999999999999999999",
                                      "2e3",
                                      NULL};
    for (int i = 0; good[i]; i++)
        CU_ASSERT_EQUAL(resolve1(t, "P", good[i]), WD_OK);
    for (int i = 0; bad[i]; i++) {
        wd_status st = resolve1(t, "P", bad[i]);
        if (st != WD_ERR_INVALID)
            fprintf(stderr, "\n  integer value \"%s\" was accepted\n", bad[i]);
        CU_ASSERT_EQUAL(st, WD_ERR_INVALID);
    }
    CU_ASSERT_EQUAL(resolve1(t, "P", "80"), WD_ERR_INVALID);
    CU_ASSERT(msg_has("P: must be between 1024 and 65535"));
    /* not required: empty means unset */
    CU_ASSERT_EQUAL(resolve1(t, "P", ""), WD_OK);
    wd_template_free(&t);
    t = parse_ok(VARS("{'name':'P','type':'integer','default':'0'}"));
    CU_ASSERT_EQUAL(resolve1(t, "P", "-5"), WD_OK); /* unbounded */
    CU_ASSERT_EQUAL(resolve1(t, "P", "x"), WD_ERR_INVALID);
    wd_template_free(&t);
}

static void test_resolve_string(void)
{
    Warden__V1__Template *t =
        parse_ok(VARS("{'name':'P','default':'abc','max_length':3,'pattern':'[a-zé]+'},"
                      "{'name':'ALT','default':'ab','pattern':'a|ab'},"
                      "{'name':'ANY','default':''}"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_EQUAL(resolve1(t, "P", "xyz"), WD_OK);
    CU_ASSERT_EQUAL(resolve1(t, "P", "éé"), WD_OK); /* characters, not bytes */
    CU_ASSERT_EQUAL(resolve1(t, "P", "ééé"), WD_OK);
    CU_ASSERT_EQUAL(resolve1(t, "P", "éééé"), WD_ERR_INVALID);
    CU_ASSERT(msg_has("longer than 3 characters"));
    CU_ASSERT_EQUAL(resolve1(t, "P", "ab1"), WD_ERR_INVALID); /* whole value must match */
    CU_ASSERT(msg_has("does not match the pattern"));
    CU_ASSERT_EQUAL(resolve1(t, "P", "1ab"), WD_ERR_INVALID);
    CU_ASSERT_EQUAL(resolve1(t, "ALT", "ab"), WD_OK); /* leftmost-longest */
    CU_ASSERT_EQUAL(resolve1(t, "ALT", "a"), WD_OK);
    CU_ASSERT_EQUAL(resolve1(t, "ALT", "abab"), WD_ERR_INVALID);
    /* every type: no control bytes, UTF-8 only, bounded length */
    CU_ASSERT_EQUAL(resolve1(t, "ANY", "a b; rm -rf / $(x) `y` 'z' \"w\""), WD_OK);
    CU_ASSERT_EQUAL(resolve1(t, "ANY", "line1\nsv_rcon_password x"), WD_ERR_INVALID);
    CU_ASSERT(msg_has("control characters"));
    CU_ASSERT_EQUAL(resolve1(t, "ANY", "a\rb"), WD_ERR_INVALID);
    CU_ASSERT_EQUAL(resolve1(t, "ANY", "a\x1b[31m"), WD_ERR_INVALID);
    CU_ASSERT_EQUAL(resolve1(t, "ANY", "\xff\xfe"), WD_ERR_INVALID);
    CU_ASSERT(msg_has("UTF-8"));
    CU_ASSERT_EQUAL(resolve1(t, "ANY", "\xc0\xaf"), WD_ERR_INVALID);     /* overlong '/' */
    CU_ASSERT_EQUAL(resolve1(t, "ANY", "\xed\xa0\x80"), WD_ERR_INVALID); /* surrogate */
    char *big = malloc(WD_TEMPLATE_MAX_VALUE + 2);
    memset(big, 'a', WD_TEMPLATE_MAX_VALUE + 1);
    big[WD_TEMPLATE_MAX_VALUE + 1] = '\0';
    CU_ASSERT_EQUAL(resolve1(t, "ANY", big), WD_ERR_INVALID);
    big[WD_TEMPLATE_MAX_VALUE] = '\0';
    CU_ASSERT_EQUAL(resolve1(t, "ANY", big), WD_OK);
    free(big);
    wd_template_free(&t);
}

static void test_resolve_bool_enum_required(void)
{
    Warden__V1__Template *t =
        parse_ok(VARS("{'name':'P','type':'boolean','default':'false'},"
                      "{'name':'E','type':'enum','default':'dm','options':['dm','ctf']},"
                      "{'name':'R','required':true}"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    static const char *const bools[] = {"true", "false", "1", "0", NULL};
    for (int i = 0; bools[i]; i++)
        CU_ASSERT_EQUAL(resolve1(t, "P", bools[i]), WD_ERR_INVALID); /* R still missing */
    wd_kv g[2] = {{(char *)"R", (char *)"x"}, {(char *)"P", (char *)"true"}};
    wd_kv *kv = NULL;
    size_t n = 0;
    for (int i = 0; bools[i]; i++) {
        g[1].value = (char *)bools[i];
        CU_ASSERT_EQUAL(wd_template_resolve(t, g, 2, &kv, &n), WD_OK);
        wd_kv_free(kv, n);
    }
    static const char *const nonbools[] = {"yes", "TRUE", "2", "on", NULL};
    for (int i = 0; nonbools[i]; i++) {
        g[1].value = (char *)nonbools[i];
        CU_ASSERT_EQUAL(wd_template_resolve(t, g, 2, &kv, &n), WD_ERR_INVALID);
    }
    g[1].key = (char *)"E";
    g[1].value = (char *)"ctf";
    CU_ASSERT_EQUAL(wd_template_resolve(t, g, 2, &kv, &n), WD_OK);
    CU_ASSERT_STRING_EQUAL(kv_get(kv, n, "E"), "ctf");
    wd_kv_free(kv, n);
    g[1].value = (char *)"CTF";
    CU_ASSERT_EQUAL(wd_template_resolve(t, g, 2, &kv, &n), WD_ERR_INVALID);
    CU_ASSERT(msg_has("E: must be one of: dm, ctf"));
    /* required with no default and no value */
    CU_ASSERT_EQUAL(wd_template_resolve(t, NULL, 0, &kv, &n), WD_ERR_INVALID);
    CU_ASSERT(msg_has("R: a value is required"));
    g[0].value = (char *)"";
    g[1].value = (char *)"dm";
    CU_ASSERT_EQUAL(wd_template_resolve(t, g, 2, &kv, &n), WD_ERR_INVALID);
    wd_template_free(&t);
}

static void test_resolve_secret_not_echoed(void)
{
    Warden__V1__Template *t =
        parse_ok(VARS("{'name':'P','secret':true,'user_viewable':false,'pattern':'^[a-z]+$'},"
                      "{'name':'E','type':'enum','default':'a','options':['a']}"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_EQUAL(resolve1(t, "P", "Hunter2Secret"), WD_ERR_INVALID);
    CU_ASSERT(strstr(wd_err_msg(), "Hunter2") == NULL);
    CU_ASSERT_EQUAL(resolve1(t, "E", "Hunter2Secret"), WD_ERR_INVALID);
    CU_ASSERT(strstr(wd_err_msg(), "Hunter2") == NULL);
    wd_template_free(&t);
}

/* ------------------------------------------------------------------------ */
/* Render                                                                   */
/* ------------------------------------------------------------------------ */

static char *render(const char *text, const wd_kv *kv, size_t n)
{
    char *out = NULL;
    wd_status st = wd_template_render(text, kv, n, &out);
    if (st != WD_OK) {
        CU_ASSERT_PTR_NULL(out);
        return NULL;
    }
    return out;
}

static void test_render(void)
{
    wd_kv kv[] = {
        {(char *)"A", (char *)"1"}, {(char *)"B", (char *)"{{A}}"}, {(char *)"EMPTY", (char *)""}};
    struct {
        const char *in, *out;
    } cases[] = {
        {"", ""},
        {"plain", "plain"},
        {"{{A}}", "1"},
        {"x{{A}}y{{A}}{{A}}", "x1y11"},
        {"{{B}}", "{{A}}"}, /* values are not rescanned */
        {"[{{EMPTY}}]", "[]"},
        {"{{env.A}}-{{server.build.env.A}}", "1-1"},
        {"{ {{ }} {{1}} {{ A }} {{A b}} {{-}}", "{ {{ }} {{1}} {{ A }} {{A b}} {{-}}"},
        {"{\"k\":{\"n\":{{A}}}}", "{\"k\":{\"n\":1}}"},
        {"{{{A}}}", "{1}"},
        {"{{A}", "{{A}"},
        {"$A ${A} %A%", "$A ${A} %A%"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *r = render(cases[i].in, kv, 3);
        CU_ASSERT_PTR_NOT_NULL(r);
        if (r && strcmp(r, cases[i].out) != 0)
            fprintf(stderr, "\n  render \"%s\" -> \"%s\", want \"%s\"\n", cases[i].in, r,
                    cases[i].out);
        CU_ASSERT(r && strcmp(r, cases[i].out) == 0);
        free(r);
    }
    char *out = (char *)"unchanged";
    CU_ASSERT_EQUAL(wd_template_render("a {{NOPE}}", kv, 3, &out), WD_ERR_INVALID);
    CU_ASSERT(msg_has("unknown variable {{NOPE}}"));
    CU_ASSERT_PTR_NULL(out);
    CU_ASSERT_EQUAL(wd_template_render("{{a}}", kv, 3, &out), WD_ERR_INVALID); /* case matters */
    CU_ASSERT_EQUAL(wd_template_render("{{server.build.default.port}}", kv, 3, &out),
                    WD_ERR_INVALID);
    CU_ASSERT(msg_has("unsupported placeholder"));
    CU_ASSERT_EQUAL(wd_template_render("{{config.docker.interface}}", kv, 3, &out), WD_ERR_INVALID);
    CU_ASSERT_EQUAL(wd_template_render("no vars", NULL, 0, &out), WD_OK);
    CU_ASSERT_STRING_EQUAL(out, "no vars");
    free(out);
}

/* ------------------------------------------------------------------------ */
/* argv                                                                     */
/* ------------------------------------------------------------------------ */

static void expect_argv(const char *startup, const wd_kv *kv, size_t n, const char *const want[])
{
    char **argv = NULL;
    int argc = -1;
    wd_status st = wd_template_build_argv(startup, kv, n, &argv, &argc);
    if (st != WD_OK)
        fprintf(stderr, "\n  build_argv \"%s\": %s\n", startup, wd_err_msg());
    CU_ASSERT_EQUAL_FATAL(st, WD_OK);
    int w = 0;
    while (want[w])
        w++;
    CU_ASSERT_EQUAL(argc, w);
    for (int i = 0; i < argc && i < w; i++) {
        if (strcmp(argv[i], want[i]) != 0)
            fprintf(stderr, "\n  \"%s\": argv[%d] = \"%s\", want \"%s\"\n", startup, i, argv[i],
                    want[i]);
        CU_ASSERT_STRING_EQUAL(argv[i], want[i]);
    }
    CU_ASSERT_PTR_NULL(argv[argc]);
    wd_argv_free(argv);
}

static void test_argv_splitting(void)
{
    expect_argv("/bin/game  -a\tb\nc", NULL, 0,
                (const char *const[]){"/bin/game", "-a", "b", "c", NULL});
    expect_argv("x 'a b' \"c d\" e\\ f", NULL, 0,
                (const char *const[]){"x", "a b", "c d", "e f", NULL});
    expect_argv("x \"a\\\"b\\\\c\\$d\\q\" 'it'\\''s'", NULL, 0,
                (const char *const[]){"x", "a\"b\\c$d\\q", "it's", NULL});
    expect_argv("x '' \"\" a''b", NULL, 0, (const char *const[]){"x", "", "", "ab", NULL});
    expect_argv("x a\\\nb \\\n c", NULL, 0, (const char *const[]){"x", "ab", "c", NULL});
    /* no operators, no expansion */
    expect_argv("x a;b | c && d > e $HOME `id` $(id) *", NULL, 0,
                (const char *const[]){"x", "a;b", "|", "c", "&&", "d", ">", "e", "$HOME", "`id`",
                                      "$(id)", "*", NULL});
}

static void test_argv_no_injection(void)
{
    wd_kv kv[] = {{(char *)"NAME", (char *)"a b; rm -rf /"},
                  {(char *)"Q", (char *)"' \" \\ $(reboot) `id` \t"},
                  {(char *)"EMPTY", (char *)""},
                  {(char *)"PH", (char *)"{{NAME}}"},
                  {(char *)"PORT", (char *)"27015"}};
    expect_argv("/usr/bin/game --name {{NAME}}", kv, 5,
                (const char *const[]){"/usr/bin/game", "--name", "a b; rm -rf /", NULL});
    expect_argv("/usr/bin/game {{Q}}", kv, 5,
                (const char *const[]){"/usr/bin/game", "' \" \\ $(reboot) `id` \t", NULL});
    expect_argv(
        "game --port={{PORT}} '{{NAME}}' \"x {{NAME}} y\"", kv, 5,
        (const char *const[]){"game", "--port=27015", "a b; rm -rf /", "x a b; rm -rf / y", NULL});
    /* an empty value is still one (empty) argument, never a dropped one */
    expect_argv("game --motd {{EMPTY}} --x", kv, 5,
                (const char *const[]){"game", "--motd", "", "--x", NULL});
    /* a value spelling a placeholder stays literal */
    expect_argv("game {{PH}}", kv, 5, (const char *const[]){"game", "{{NAME}}", NULL});

    char **argv = (char **)1;
    int argc = 7;
    CU_ASSERT_EQUAL(wd_template_build_argv("game {{UNKNOWN}}", kv, 5, &argv, &argc),
                    WD_ERR_INVALID);
    CU_ASSERT(msg_has("unknown variable {{UNKNOWN}}"));
    CU_ASSERT_PTR_NULL(argv);
    CU_ASSERT_EQUAL(argc, 0);
    CU_ASSERT_EQUAL(wd_template_build_argv("", kv, 5, &argv, &argc), WD_ERR_INVALID);
    CU_ASSERT_EQUAL(wd_template_build_argv(" \t\n", kv, 5, &argv, &argc), WD_ERR_INVALID);
    CU_ASSERT_EQUAL(wd_template_build_argv("game 'x", kv, 5, &argv, &argc), WD_ERR_INVALID);
    CU_ASSERT_EQUAL(wd_template_build_argv("game \"x", kv, 5, &argv, &argc), WD_ERR_INVALID);
    CU_ASSERT_EQUAL(wd_template_build_argv("game x\\", kv, 5, &argv, &argc), WD_ERR_INVALID);
}

/* The whole pipeline on a template: resolve, then argv, with the agent
 * appending the built-ins. */
static void test_argv_from_template(void)
{
    Warden__V1__Template *t = parse_ok(FULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    wd_kv given = {(char *)"PORT", (char *)"2000"};
    wd_kv *kv = NULL;
    size_t n = 0;
    CU_ASSERT_EQUAL_FATAL(wd_template_resolve(t, &given, 1, &kv, &n), WD_OK);
    wd_kv *all = calloc(n + 3, sizeof *all);
    memcpy(all, kv, n * sizeof *kv);
    all[n] = (wd_kv){(char *)"SERVER_ID", (char *)"0b7c"};
    all[n + 1] = (wd_kv){(char *)"SERVER_NAME", (char *)"My server; reboot"};
    all[n + 2] = (wd_kv){(char *)"SERVER_DIR", (char *)"/srv/x"};
    expect_argv(t->startup, all, n + 3,
                (const char *const[]){"/usr/bin/game", "--port", "2000", "--name",
                                      "My server; reboot", NULL});
    char *cfg = NULL;
    CU_ASSERT_EQUAL(wd_template_render(t->config_files[0]->content, all, n + 3, &cfg), WD_OK);
    CU_ASSERT_STRING_EQUAL(cfg, "port=2000\nmode=b\n");
    free(cfg);
    free(all);
    wd_kv_free(kv, n);
    wd_template_free(&t);
}

/* ------------------------------------------------------------------------ */
/* Paths                                                                    */
/* ------------------------------------------------------------------------ */

static void test_path_rel_ok(void)
{
    static const char *const good[] = {"a",    "a/b",     "a/b.c",  ".hidden", "a/.b/c", "...",
                                       "a..b", "x/y/z/w", "sp ace", "é",       NULL};
    static const char *const bad[] = {"",     "/",  "/a",   "..",   "../a",  "a/..", "a/../b",
                                      "a//b", "a/", "a\nb", "a\tb", "a\x7f", "\x01", NULL};
    for (int i = 0; good[i]; i++) {
        if (!wd_path_rel_ok(good[i]))
            fprintf(stderr, "\n  rel_ok refused \"%s\"\n", good[i]);
        CU_ASSERT_TRUE(wd_path_rel_ok(good[i]));
    }
    for (int i = 0; bad[i]; i++) {
        if (wd_path_rel_ok(bad[i]))
            fprintf(stderr, "\n  rel_ok accepted \"%s\"\n", bad[i]);
        CU_ASSERT_FALSE(wd_path_rel_ok(bad[i]));
    }
    char lng[1100];
    memset(lng, 'a', sizeof lng - 1);
    lng[1024] = '\0';
    CU_ASSERT_TRUE(wd_path_rel_ok(lng));
    lng[1024] = 'a';
    lng[1025] = '\0';
    CU_ASSERT_FALSE(wd_path_rel_ok(lng));
}

static char *slurp(const char *dir, const char *rel)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    char *buf = NULL;
    size_t len = 0;
    return wd_read_file(p, 1 << 20, &buf, &len) == WD_OK ? buf : NULL;
}

static bool no_temp_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return false;
    bool clean = true;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, ".wd-tmp-", 8) == 0)
            clean = false;
    closedir(d);
    return clean;
}

static void test_path_write_ok(void)
{
    const char *root = wd_h_tmpdir("tpl-write");
    CU_ASSERT_PTR_NOT_NULL_FATAL(root);
    CU_ASSERT_EQUAL(wd_path_write_confined(root, "cfg/sub/game.cfg", "a=1\n", 4, 0600), WD_OK);
    char *s = slurp(root, "cfg/sub/game.cfg");
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_STRING_EQUAL(s, "a=1\n");
    free(s);
    char p[1024];
    struct stat sb;
    snprintf(p, sizeof p, "%s/cfg/sub/game.cfg", root);
    CU_ASSERT_EQUAL(stat(p, &sb), 0);
    CU_ASSERT_EQUAL(sb.st_mode & 07777, 0600);
    snprintf(p, sizeof p, "%s/cfg/sub", root);
    CU_ASSERT_EQUAL(stat(p, &sb), 0);
    CU_ASSERT(S_ISDIR(sb.st_mode));
    /* replace: new content, mode 0 means 0644, nothing left behind */
    CU_ASSERT_EQUAL(wd_path_write_confined(root, "cfg/sub/game.cfg", "b=22\n", 5, 0), WD_OK);
    s = slurp(root, "cfg/sub/game.cfg");
    CU_ASSERT(s && strcmp(s, "b=22\n") == 0);
    free(s);
    snprintf(p, sizeof p, "%s/cfg/sub/game.cfg", root);
    CU_ASSERT_EQUAL(stat(p, &sb), 0);
    CU_ASSERT_EQUAL(sb.st_mode & 07777, 0644);
    snprintf(p, sizeof p, "%s/cfg/sub", root);
    CU_ASSERT(no_temp_files(p));
    /* empty file at the top level, "." components */
    CU_ASSERT_EQUAL(wd_path_write_confined(root, "empty", NULL, 0, 0644), WD_OK);
    CU_ASSERT_EQUAL(wd_path_write_confined(root, "./cfg/./dot.txt", "d", 1, 0644), WD_OK);
    s = slurp(root, "cfg/dot.txt");
    CU_ASSERT(s && strcmp(s, "d") == 0);
    free(s);
    CU_ASSERT_EQUAL(wd_path_write_confined(root, "x", "d", 1, 04755), WD_ERR_INVALID);
    CU_ASSERT_EQUAL(wd_path_write_confined("/nonexistent/warden", "x", "d", 1, 0644),
                    WD_ERR_NOT_FOUND);
}

/* Builds root/ and outside/ with the usual tricks:
 *   root/link      -> outside        (symlink in the middle)
 *   root/inlink    -> root/real      (even a symlink inside root is refused)
 *   root/f         -> outside/target (symlink as the final component)
 *   root/dangling  -> outside/new    (dangling final symlink)
 *   root/afile                       (a file where a directory is needed)
 *   root/adir/                       (a directory where a file is needed) */
static void make_tricks(const char *base, char *root, char *outside, size_t size)
{
    char p[1024], t[1024];
    snprintf(root, size, "%s/root", base);
    snprintf(outside, size, "%s/outside", base);
    CU_ASSERT_EQUAL(mkdir(root, 0755), 0);
    CU_ASSERT_EQUAL(mkdir(outside, 0755), 0);
    snprintf(p, sizeof p, "%s/real", root);
    CU_ASSERT_EQUAL(mkdir(p, 0755), 0);
    snprintf(p, sizeof p, "%s/adir", root);
    CU_ASSERT_EQUAL(mkdir(p, 0755), 0);
    snprintf(p, sizeof p, "%s/target", outside);
    CU_ASSERT_EQUAL(wd_write_file_atomic(p, "original", 8, 0644), WD_OK);
    snprintf(p, sizeof p, "%s/afile", root);
    CU_ASSERT_EQUAL(wd_write_file_atomic(p, "file", 4, 0644), WD_OK);
    snprintf(p, sizeof p, "%s/link", root);
    CU_ASSERT_EQUAL(symlink(outside, p), 0);
    snprintf(p, sizeof p, "%s/inlink", root);
    snprintf(t, sizeof t, "%s/real", root);
    CU_ASSERT_EQUAL(symlink(t, p), 0);
    snprintf(p, sizeof p, "%s/f", root);
    snprintf(t, sizeof t, "%s/target", outside);
    CU_ASSERT_EQUAL(symlink(t, p), 0);
    snprintf(p, sizeof p, "%s/dangling", root);
    snprintf(t, sizeof t, "%s/new", outside);
    CU_ASSERT_EQUAL(symlink(t, p), 0);
    snprintf(p, sizeof p, "%s/rel", root);
    CU_ASSERT_EQUAL(symlink("../outside", p), 0);
}

/* Runs every trick against root; returns a bitmask of failed checks (0 =
 * all refused as they should be) so it also works in a forked child. */
static unsigned run_tricks(const char *root, const char *outside)
{
    unsigned bad = 0;
    struct {
        const char *rel;
        wd_status want;
    } cases[] = {
        {"../escape", WD_ERR_DENIED},
        {"/etc/warden-test", WD_ERR_DENIED},
        {"a/../../escape", WD_ERR_DENIED},
        {"link/x", WD_ERR_DENIED},
        {"link/deeper/x", WD_ERR_DENIED},
        {"rel/x", WD_ERR_DENIED},
        {"inlink/x", WD_ERR_DENIED},
        {"real/../link/x", WD_ERR_DENIED},
        {"f", WD_ERR_DENIED},
        {"dangling", WD_ERR_DENIED},
        {"real/sub/../../f", WD_ERR_DENIED},
        {"afile/x", WD_ERR_INVALID},
        {"adir", WD_ERR_INVALID},
        {"a//b", WD_ERR_INVALID},
        {"", WD_ERR_INVALID},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        wd_status st = wd_path_write_confined(root, cases[i].rel, "pwned", 5, 0644);
        if (st != cases[i].want) {
            fprintf(stderr, "\n  write \"%s\": %s (%s), want %s\n", cases[i].rel, wd_status_str(st),
                    wd_err_msg(), wd_status_str(cases[i].want));
            bad |= 1u << i;
        }
    }
    char p[1024];
    char *s = slurp(outside, "target");
    if (s == NULL || strcmp(s, "original") != 0)
        bad |= 1u << 20;
    free(s);
    snprintf(p, sizeof p, "%s/x", outside);
    if (access(p, F_OK) == 0)
        bad |= 1u << 21;
    snprintf(p, sizeof p, "%s/new", outside);
    if (access(p, F_OK) == 0)
        bad |= 1u << 22;
    snprintf(p, sizeof p, "%s/deeper", outside);
    if (access(p, F_OK) == 0)
        bad |= 1u << 23;
    snprintf(p, sizeof p, "%s/real/x", root);
    if (access(p, F_OK) == 0)
        bad |= 1u << 24;
    if (!no_temp_files(root))
        bad |= 1u << 25;
    /* and a legitimate write still works next to the traps */
    if (wd_path_write_confined(root, "real/ok/file", "ok", 2, 0644) != WD_OK)
        bad |= 1u << 26;
    return bad;
}

static void test_path_tricks(void)
{
    const char *base = wd_h_tmpdir("tpl-tricks");
    CU_ASSERT_PTR_NOT_NULL_FATAL(base);
    char root[600], outside[600];
    make_tricks(base, root, outside, sizeof root);
    CU_ASSERT_EQUAL(run_tricks(root, outside), 0);
}

/* The same tricks with openat2 made unavailable (a seccomp filter returns
 * ENOSYS, as on kernels before 5.6): the O_NOFOLLOW component walk must
 * refuse them all too. Runs in a child so the filter stays there. */
static void test_path_tricks_without_openat2(void)
{
#if defined(__x86_64__)
    const unsigned arch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
    const unsigned arch = AUDIT_ARCH_AARCH64;
#else
    const unsigned arch = 0;
#endif
    if (arch == 0)
        return; /* no filter for this architecture: covered by test_path_tricks only */
    const char *base = wd_h_tmpdir("tpl-walk");
    CU_ASSERT_PTR_NOT_NULL_FATAL(base);
    char root[600], outside[600];
    make_tricks(base, root, outside, sizeof root);
    fflush(NULL);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        struct sock_filter f[] = {
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, arch, 1, 0),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_openat2, 0, 1),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        struct sock_fprog prog = {.len = sizeof f / sizeof f[0], .filter = f};
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
            prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
            _exit(100);
        struct open_how how = {.flags = O_RDONLY};
        errno = 0;
        if (syscall(SYS_openat2, AT_FDCWD, ".", &how, sizeof how) != -1 || errno != ENOSYS)
            _exit(101);
        unsigned bad = run_tricks(root, outside);
        if (bad != 0)
            fprintf(stderr, "\n  walk fallback: failed checks 0x%x\n", bad);
        /* creating several missing levels goes through the walk as well */
        if (wd_path_write_confined(root, "n1/n2/n3/file", "x", 1, 0644) != WD_OK)
            bad |= 1u << 27;
        _exit(bad ? 1 : 0);
    }
    int status = 0;
    CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
    CU_ASSERT(WIFEXITED(status));
    if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
        fprintf(stderr, "\n  walk child exit %d\n", WEXITSTATUS(status));
    CU_ASSERT_EQUAL(WEXITSTATUS(status), 0);
    char *s = slurp(root, "n1/n2/n3/file");
    CU_ASSERT(s && strcmp(s, "x") == 0);
    free(s);
}

/* ------------------------------------------------------------------------ */
/* Egg import                                                               */
/* ------------------------------------------------------------------------ */

static void test_egg_blockcraft(void)
{
    Warden__V1__Template *t = parse_file("tests/common/fixtures/egg_blockcraft.json");
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_STRING_EQUAL(t->source_format, "ptdl_v2");
    CU_ASSERT_STRING_EQUAL(t->id, "blockcraft-vanilla");
    CU_ASSERT_STRING_EQUAL(t->name, "Blockcraft Vanilla");
    CU_ASSERT_STRING_EQUAL(t->author, "eggs@blockcraft.example.org");
    CU_ASSERT(strncmp(t->description, "A vanilla block-building", 24) == 0);
    CU_ASSERT_STRING_EQUAL(
        t->startup, "java -Xms128M -Xmx{{SERVER_MEMORY}}M -Dterminal.jline=false "
                    "-Dterminal.ansi=true -jar {{SERVER_JARFILE}} nogui --port {{SERVER_PORT}}");
    CU_ASSERT_STRING_EQUAL(t->stop_command, "stop");
    CU_ASSERT_STRING_EQUAL(t->done_pattern, ")! For help, type ");
    CU_ASSERT_STRING_EQUAL(t->install_interpreter, "/bin/bash");
    CU_ASSERT(strchr(t->install_script, '\r') == NULL);
    CU_ASSERT(strstr(t->install_script, "curl -sSL -o \"${SERVER_JARFILE}\" \"$URL\"\n") != NULL);

    const Warden__V1__TemplateVariable *v = var(t, "SERVER_JARFILE");
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_EQUAL(v->type, WARDEN__V1__VARIABLE_TYPE__VAR_STRING);
    CU_ASSERT(v->required && v->user_viewable && v->user_editable);
    CU_ASSERT_STRING_EQUAL(v->default_value, "server.jar");
    CU_ASSERT_STRING_EQUAL(v->pattern, "^([A-Za-z0-9_0-9._-]+)(\\.jar)$");
    CU_ASSERT(strncmp(v->description, "Server Jar File: ", 17) == 0);
    v = var(t, "VANILLA_VERSION");
    CU_ASSERT_EQUAL(v->max_length, 15);
    v = var(t, "DIFFICULTY");
    CU_ASSERT_EQUAL(v->type, WARDEN__V1__VARIABLE_TYPE__VAR_ENUM);
    CU_ASSERT_EQUAL_FATAL(v->n_options, 4);
    CU_ASSERT_STRING_EQUAL(v->options[3], "hard");
    v = var(t, "ONLINE_MODE");
    CU_ASSERT_EQUAL(v->type, WARDEN__V1__VARIABLE_TYPE__VAR_BOOLEAN);
    CU_ASSERT(!v->user_editable);
    v = var(t, "MAX_PLAYERS");
    CU_ASSERT_EQUAL(v->type, WARDEN__V1__VARIABLE_TYPE__VAR_INTEGER);
    CU_ASSERT(!v->required);
    CU_ASSERT_EQUAL(v->min, 1);
    CU_ASSERT_EQUAL(v->max, 500);
    CU_ASSERT_STRING_EQUAL(v->description, "Max Players");
    v = var(t, "MOTD");
    CU_ASSERT_EQUAL(v->max_length, 59);
    /* Wings built-ins became variables */
    v = var(t, "SERVER_PORT");
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_EQUAL(v->type, WARDEN__V1__VARIABLE_TYPE__VAR_INTEGER);
    CU_ASSERT(v->required);
    CU_ASSERT_STRING_EQUAL(v->default_value, "");
    v = var(t, "SERVER_MEMORY");
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_STRING_EQUAL(v->default_value, "1024");

    CU_ASSERT(
        has_note(t, "{{server.build.default.port}} and {{SERVER_PORT}} are Pterodactyl built-ins"));
    CU_ASSERT(has_note(t, "mapped to the variable SERVER_MEMORY"));
    CU_ASSERT(has_note(t, "docker_images (Java 21, Java 17) not imported: Warden runs games from "
                          "the host under bubblewrap"));
    CU_ASSERT(has_note(
        t, "scripts.installation.container (ghcr.io/blockcraft/installers:debian) not imported"));
    CU_ASSERT(has_note(t, "config.files not imported (server.properties)"));
    CU_ASSERT(has_note(t, "features (eula, java_version, pid_limit) not imported"));
    CU_ASSERT(has_note(t, "/mnt/server"));
    CU_ASSERT(has_note(t, "variable VANILLA_VERSION: minimum length not imported"));
    for (size_t i = 0; i < t->n_import_notes; i++) /* empty lists need no note */
        CU_ASSERT(strstr(t->import_notes[i], "file_denylist") == NULL &&
                  strstr(t->import_notes[i], "config.logs") == NULL);

    /* usable: port required, everything else has a default */
    wd_kv *kv = NULL;
    size_t n = 0;
    CU_ASSERT_EQUAL(wd_template_resolve(t, NULL, 0, &kv, &n), WD_ERR_INVALID);
    CU_ASSERT(msg_has("SERVER_PORT: a value is required"));
    wd_kv g[] = {{(char *)"SERVER_PORT", (char *)"25565"},
                 {(char *)"SERVER_JARFILE", (char *)"paper-1.20.jar"}};
    CU_ASSERT_EQUAL_FATAL(wd_template_resolve(t, g, 2, &kv, &n), WD_OK);
    expect_argv(t->startup, kv, n,
                (const char *const[]){"java", "-Xms128M", "-Xmx1024M", "-Dterminal.jline=false",
                                      "-Dterminal.ansi=true", "-jar", "paper-1.20.jar", "nogui",
                                      "--port", "25565", NULL});
    wd_kv_free(kv, n);
    wd_template_free(&t);
}

static void test_egg_relay(void)
{
    Warden__V1__Template *t = parse_file("tests/common/fixtures/egg_relay.json");
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_STRING_EQUAL(t->id, "tiny-chat-relay");
    CU_ASSERT_STRING_EQUAL(t->description, "");
    CU_ASSERT_STRING_EQUAL(t->stop_command, "^C");
    CU_ASSERT_STRING_EQUAL(t->done_pattern, "relay ready");
    CU_ASSERT_STRING_EQUAL(t->install_interpreter, "/bin/sh");
    CU_ASSERT_STRING_EQUAL(t->startup, "./relay --listen {{SERVER_IP}}:{{SERVER_PORT}} --name "
                                       "\"{{RELAY_NAME}}\" --swap  --mode {{RELAY_MODE}} "
                                       "--threads={{THREADS}}");
    const Warden__V1__TemplateVariable *v = var(t, "RELAY_NAME");
    CU_ASSERT_EQUAL(v->max_length, 20);
    CU_ASSERT(v->required);
    v = var(t, "RELAY_MODE");
    CU_ASSERT_EQUAL(v->type, WARDEN__V1__VARIABLE_TYPE__VAR_ENUM);
    CU_ASSERT_EQUAL(v->n_options, 2);
    v = var(t, "THREADS");
    CU_ASSERT_EQUAL(v->type, WARDEN__V1__VARIABLE_TYPE__VAR_INTEGER);
    CU_ASSERT_EQUAL(v->min, 1);
    CU_ASSERT_EQUAL(v->max, 100);
    CU_ASSERT(!v->required);
    v = var(t, "TAG"); /* the regex holds a '|': kept whole */
    CU_ASSERT_STRING_EQUAL(v->pattern, "^(a|b)$");
    CU_ASSERT(!v->user_viewable && !v->user_editable);
    v = var(t, "BANNER");
    CU_ASSERT_STRING_EQUAL(v->pattern, "");
    v = var(t, "DEBUG");
    CU_ASSERT_EQUAL(v->type, WARDEN__V1__VARIABLE_TYPE__VAR_BOOLEAN);
    CU_ASSERT_STRING_EQUAL(var(t, "SERVER_IP")->default_value, "0.0.0.0");

    CU_ASSERT(has_note(t, "placeholder {{server.build.swap}} removed"));
    CU_ASSERT(has_note(t, "startup: shell variable references ($NAME) converted"));
    CU_ASSERT(has_note(t, "mapped to the variable SERVER_IP"));
    CU_ASSERT(has_note(t, "config.startup.done lists 2 patterns: only the first is used"));
    CU_ASSERT(has_note(t, "install entrypoint ash mapped to /bin/sh"));
    CU_ASSERT(has_note(t, "scripts.installation.container (alpine:3.19) not imported"));
    CU_ASSERT(has_note(t, "variable BANNER: rule \"regex:/^[a-z]+$/i\" not imported"));
    CU_ASSERT(has_note(t, "variable BANNER: rule \"url\" not imported"));
    CU_ASSERT(has_note(t, "file_denylist not imported"));
    CU_ASSERT(has_note(t, "docker_images (ghcr.io/relay/yolks:debian) not imported"));
    wd_template_free(&t);
}

static void test_egg_rules_and_startup(void)
{
#define EGG(startup, vars)                                                                         \
    "{'meta':{'version':'PTDL_v2'},'name':'T','startup':'" startup "','variables':[" vars "]}"
    Warden__V1__Template *t = parse_ok(EGG(
        "run {{A}} {{B}} {{C}} {{D}} {{E}} {{F}}",
        "{'env_variable':'A','default_value':7,'rules':['required','integer','max:10']},"
        "{'env_variable':'B','default_value':'x.y','rules':'numeric'},"
        "{'env_variable':'C','default_value':'abc','rules':'string|alpha_dash|size:3'},"
        "{'env_variable':'D','default_value':'7','rules':'integer|min:5'},"
        "{'env_variable':'E','default_value':'q','rules':'regex:/^(?:q)$/|in:\\\"q\\\",\\\"r\\\"'},"
        "{'env_variable':'F','default_value':null,'user_viewable':1,'rules':'nullable|string|email|"
        "digits:3'}"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    const Warden__V1__TemplateVariable *v = var(t, "A");
    CU_ASSERT_EQUAL(v->type, WARDEN__V1__VARIABLE_TYPE__VAR_INTEGER);
    CU_ASSERT_STRING_EQUAL(v->default_value, "7");
    CU_ASSERT_EQUAL(v->min, INT64_MIN);
    CU_ASSERT_EQUAL(v->max, 10);
    v = var(t, "B"); /* numeric "x.y" fails integer: relaxed to string */
    CU_ASSERT_EQUAL(v->type, WARDEN__V1__VARIABLE_TYPE__VAR_STRING);
    CU_ASSERT(has_note(t, "variable B: the egg's default fails its own rules"));
    v = var(t, "C");
    CU_ASSERT_STRING_EQUAL(v->pattern, "[A-Za-z0-9_-]*");
    CU_ASSERT_EQUAL(v->max_length, 3);
    v = var(t, "D");
    CU_ASSERT_EQUAL(v->min, 5);
    CU_ASSERT_EQUAL(v->max, INT64_MAX);
    v = var(t, "E");
    CU_ASSERT_EQUAL(v->type, WARDEN__V1__VARIABLE_TYPE__VAR_ENUM);
    CU_ASSERT_EQUAL(v->n_options, 2);
    CU_ASSERT(has_note(t, "variable E: rule \"regex:/^(?:q)$/\" not imported"));
    v = var(t, "F");
    CU_ASSERT(v->user_viewable);
    CU_ASSERT(has_note(t, "variable F: rule \"email\" not imported"));
    CU_ASSERT(has_note(t, "variable F: rule \"digits:3\" not imported"));
    wd_template_free(&t);

    /* startup rewrites: undeclared names, P_SERVER_UUID, shell syntax */
    t = parse_ok(EGG("cd x && ./srv --id {{P_SERVER_UUID}} --tz {{TZ}} > log.txt; echo $HOME", ""));
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_STRING_EQUAL(t->startup,
                           "cd x && ./srv --id {{SERVER_ID}} --tz {{TZ}} > log.txt; echo $HOME");
    CU_ASSERT_PTR_NOT_NULL(var(t, "TZ"));
    CU_ASSERT(has_note(t, "startup uses {{TZ}}, which the egg does not declare"));
    CU_ASSERT(has_note(t, "shell syntax (&& ; > $)"));
    CU_ASSERT_STRING_EQUAL(t->id, "t");
    wd_template_free(&t);

    /* ids are slugs of the name */
    t = parse_ok("{'meta':{'version':'PTDL_v2'},'name':'  Counter-Strike: Source (64 bit)!! "
                 "','startup':'./srcds'}");
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_STRING_EQUAL(t->id, "counter-strike-source-64-bit");
    wd_template_free(&t);
    t = parse_ok("{'meta':{'version':'PTDL_v2'},'name':'###','startup':'./x','mystery':1}");
    CU_ASSERT_STRING_EQUAL(t->id, "egg");
    CU_ASSERT(has_note(t, "egg field \"mystery\" not imported"));
    wd_template_free(&t);
#undef EGG
}

static void test_egg_errors(void)
{
    Warden__V1__Template *t = NULL;
    CU_ASSERT_EQUAL(parse_q("{'meta':{'version':'PTDL_v1'},'name':'x','startup':'./x'}", &t),
                    WD_ERR_UNSUPPORTED);
    CU_ASSERT(msg_has("PTDL_v2"));
    parse_fails("{'meta':{'version':'PTDL_v2'},'name':'x'}", "egg startup: required");
    parse_fails("{'meta':{'version':'PTDL_v2'},'startup':'./x'}", "egg name: required");
    parse_fails("{'meta':{'version':'PTDL_v2'},'name':5,'startup':'./x'}",
                "egg name: expected a string");
    parse_fails("{'meta':{'version':'PTDL_v2'},'name':'x','startup':'./x','variables':{}}",
                "egg variables: expected an array");
    parse_fails(
        "{'meta':{'version':'PTDL_v2'},'name':'x','startup':'./x','variables':[{'name':'a'}]}",
        "variables[0].env_variable");
    parse_fails("{'meta':{'version':'PTDL_v2'},'name':'x','startup':'./x "
                "{{lower}}','variables':[{'env_variable':'lower'}]}",
                "must match");
    parse_fails("{'meta':{'version':'PTDL_v2'},'name':'x','startup':'./"
                "x','config':{'startup':'{not json'}}",
                "config.startup: not valid JSON");
    parse_fails("{'meta':{'version':'PTDL_v2'},'name':'x','startup':'./x','config':{'stop':['a']}}",
                "config.stop: expected a string");
    parse_fails("{'meta':{'version':'PTDL_v2'},'name':'x','startup':'./"
                "x','scripts':{'installation':{'entrypoint':'sh -c'}}}",
                "entrypoint");
}

/* ------------------------------------------------------------------------ */
/* Round trips                                                              */
/* ------------------------------------------------------------------------ */

static void round_trip(Warden__V1__Template *t)
{
    char *j1 = NULL, *j2 = NULL;
    CU_ASSERT_EQUAL_FATAL(wd_template_to_json(t, &j1), WD_OK);
    Warden__V1__Template *back = NULL;
    wd_status st = wd_template_parse_json(j1, strlen(j1), &back);
    if (st != WD_OK)
        fprintf(stderr, "\n  re-parse: %s\n%s\n", wd_err_msg(), j1);
    CU_ASSERT_EQUAL_FATAL(st, WD_OK);
    CU_ASSERT(same_template(t, back));
    CU_ASSERT_EQUAL(wd_template_to_json(back, &j2), WD_OK);
    CU_ASSERT_STRING_EQUAL(j1, j2);
    free(j1);
    free(j2);
    wd_template_free(&back);
}

static void test_round_trip(void)
{
    Warden__V1__Template *t = parse_ok(FULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    round_trip(t);
    char *j = NULL;
    CU_ASSERT_EQUAL(wd_template_to_json(t, &j), WD_OK);
    CU_ASSERT(strncmp(j, "{\n  \"format\": \"warden/v1\",\n  \"id\": \"full-1\"", 40) == 0);
    CU_ASSERT(strstr(j, "\"mode\": \"0600\"") != NULL);
    free(j);
    wd_template_free(&t);
    t = parse_ok("{'format':'warden/v1','id':'x','startup':'/bin/true'}");
    round_trip(t);
    wd_template_free(&t);
    static const char *const eggs[] = {"tests/common/fixtures/egg_blockcraft.json",
                                       "tests/common/fixtures/egg_relay.json", NULL};
    for (int i = 0; eggs[i]; i++) {
        t = parse_file(eggs[i]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(t);
        round_trip(t); /* notes and origin survive as import_notes / imported_from */
        wd_template_free(&t);
    }
    /* to_json refuses what JSON cannot carry */
    t = parse_ok("{'format':'warden/v1','id':'x','startup':'/bin/true'}");
    if (t->name != protobuf_c_empty_string)
        free(t->name);
    t->name = strdup("bad \xff utf-8");
    CU_ASSERT_EQUAL(wd_template_to_json(t, &j), WD_ERR_INVALID);
    CU_ASSERT_PTR_NULL(j);
    wd_template_free(&t);
}

/* ------------------------------------------------------------------------ */
/* Shipped templates                                                        */
/* ------------------------------------------------------------------------ */

static void test_shipped_all_parse(void)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/templates", WARDEN_SOURCE_DIR);
    DIR *d = opendir(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    int count = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n < 6 || strcmp(e->d_name + n - 5, ".json") != 0)
            continue;
        char rel[600];
        snprintf(rel, sizeof rel, "templates/%s", e->d_name);
        Warden__V1__Template *t = parse_file(rel);
        CU_ASSERT_PTR_NOT_NULL(t);
        if (t != NULL) {
            CU_ASSERT(strlen(t->id) == n - 5 && strncmp(t->id, e->d_name, n - 5) == 0);
            CU_ASSERT_STRING_EQUAL(t->source_format, "warden");
            CU_ASSERT(t->done_pattern[0] != '\0' && t->stop_command[0] != '\0');
            wd_kv *kv = NULL; /* defaults alone must resolve */
            size_t nk = 0;
            CU_ASSERT_EQUAL(wd_template_resolve(t, NULL, 0, &kv, &nk), WD_OK);
            wd_kv_free(kv, nk);
            round_trip(t);
        }
        wd_template_free(&t);
        count++;
    }
    closedir(d);
    CU_ASSERT(count >= 3);
}

/* Resolves t with given values plus the agent's built-ins. */
static wd_kv *resolve_all(const Warden__V1__Template *t, const wd_kv *g, size_t ng, size_t *n)
{
    wd_kv *kv = NULL;
    size_t nk = 0;
    wd_status st = wd_template_resolve(t, g, ng, &kv, &nk);
    if (st != WD_OK)
        fprintf(stderr, "\n  resolve: %s\n", wd_err_msg());
    CU_ASSERT_EQUAL_FATAL(st, WD_OK);
    wd_kv *all = realloc(kv, (nk + 3) * sizeof *kv);
    all[nk] = (wd_kv){strdup("SERVER_ID"), strdup("6f1c")};
    all[nk + 1] = (wd_kv){strdup("SERVER_NAME"), strdup("test")};
    all[nk + 2] = (wd_kv){strdup("SERVER_DIR"), strdup("/srv/test")};
    *n = nk + 3;
    return all;
}

static char *render_file(const Warden__V1__Template *t, const char *path, const wd_kv *kv, size_t n)
{
    for (size_t i = 0; i < t->n_config_files; i++)
        if (strcmp(t->config_files[i]->path, path) == 0) {
            char *out = NULL;
            CU_ASSERT_EQUAL(wd_template_render(t->config_files[i]->content, kv, n, &out), WD_OK);
            return out;
        }
    CU_FAIL("config file missing");
    return NULL;
}

static void test_shipped_freeciv(void)
{
    Warden__V1__Template *t = parse_file("templates/freeciv.json");
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_STRING_EQUAL(t->stop_command, "quit");
    CU_ASSERT(strstr("2: Now accepting new client connections on port 5556.", t->done_pattern) !=
              NULL);
    wd_kv g[] = {{(char *)"BIND_ADDRESS", (char *)"127.0.0.1"},
                 {(char *)"SERVER_PORT", (char *)"40001"}};
    size_t n = 0;
    wd_kv *kv = resolve_all(t, g, 2, &n);
    expect_argv(t->startup, kv, n,
                (const char *const[]){"/usr/games/freeciv-server", "--port", "40001", "--bind",
                                      "127.0.0.1", "--Announce", "none", "--exit-on-end", "--saves",
                                      "saves", "--read", "warden.serv", NULL});
    char *cfg = render_file(t, "warden.serv", kv, n);
    CU_ASSERT(cfg && strstr(cfg, "\nset aifill 5\n") != NULL);
    free(cfg);
    wd_kv_free(kv, n);
    CU_ASSERT_EQUAL(resolve1(t, "BIND_ADDRESS", "127.0.0.1 --auth"), WD_ERR_INVALID);
    CU_ASSERT_EQUAL(resolve1(t, "SERVER_PORT", "80"), WD_ERR_INVALID);
    wd_template_free(&t);
}

static void test_shipped_teeworlds(void)
{
    Warden__V1__Template *t = parse_file("templates/teeworlds.json");
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_STRING_EQUAL(t->stop_command, "^C");
    wd_kv g[] = {{(char *)"BIND_ADDRESS", (char *)"127.0.0.1"},
                 {(char *)"SERVER_PORT", (char *)"40002"},
                 {(char *)"SV_NAME", (char *)"Friday night (EU)"}};
    size_t n = 0;
    wd_kv *kv = resolve_all(t, g, 3, &n);
    char *cfg = render_file(t, "server.cfg", kv, n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT(strstr(cfg, "\nsv_port 40002\n") != NULL);
    CU_ASSERT(strstr(cfg, "\nbindaddr 127.0.0.1\n") != NULL);
    CU_ASSERT(strstr(cfg, "\nsv_register 0\n") != NULL);
    CU_ASSERT(strstr(cfg, "\nsv_name \"Friday night (EU)\"\n") != NULL);
    free(cfg);
    cfg = render_file(t, "storage.cfg", kv, n);
    CU_ASSERT(cfg && strstr(cfg, "add_path $CURRENTDIR\n") != NULL);
    free(cfg);
    wd_kv_free(kv, n);
    /* a value cannot break out of the quoted config line */
    CU_ASSERT_EQUAL(resolve1(t, "SV_NAME", "x\"; sv_rcon_password \"y"), WD_ERR_INVALID);
    CU_ASSERT_EQUAL(resolve1(t, "SV_NAME", "x\nsv_register 1"), WD_ERR_INVALID);
    CU_ASSERT_EQUAL(resolve1(t, "RCON_PASSWORD", "a b"), WD_ERR_INVALID);
    CU_ASSERT_EQUAL(resolve1(t, "GAMETYPE", "ctf"), WD_OK);
    CU_ASSERT_EQUAL(resolve1(t, "GAMETYPE", "race"), WD_ERR_INVALID);
    wd_template_free(&t);
}

/* Runs argv in dir with env, feeding input on stdin; collects stdout and
 * the wait status. The child leads its own process group, which is killed
 * at the end so a spawned `sleep 1000` cannot outlive the test. */
static char *run_game(const char *dir, char **argv, const char *const env[], const char *input,
                      int *status)
{
    int in[2], out[2];
    CU_ASSERT_FATAL(pipe(in) == 0 && pipe(out) == 0);
    fflush(NULL);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        setpgid(0, 0);
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[0]);
        close(in[1]);
        close(out[0]);
        close(out[1]);
        if (chdir(dir) != 0)
            _exit(126);
        for (int i = 0; env && env[i]; i++)
            putenv((char *)env[i]);
        execv(argv[0], argv);
        _exit(127);
    }
    setpgid(pid, pid);
    close(in[0]);
    close(out[1]);
    if (input != NULL && write(in[1], input, strlen(input)) < 0)
        CU_FAIL("write to game");
    close(in[1]);

    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    bool reaped = false;
    int64_t deadline = wd_mono_ms() + 10000, quiet_until = -1;
    *status = -1;
    while (wd_mono_ms() < deadline) {
        struct pollfd pfd = {.fd = out[0], .events = POLLIN};
        if (poll(&pfd, 1, 20) > 0) {
            if (len + 4096 > cap)
                buf = realloc(buf, cap *= 2);
            ssize_t r = read(out[0], buf + len, cap - len - 1);
            if (r <= 0)
                break; /* EOF: every writer is gone */
            len += (size_t)r;
            continue;
        }
        /* Nothing to read: once the game itself has exited and the pipe
         * stayed quiet for a moment, a spawned child is all that is left. */
        if (!reaped && waitpid(pid, status, WNOHANG) == pid) {
            reaped = true;
            quiet_until = wd_mono_ms() + 100;
        }
        if (reaped && wd_mono_ms() >= quiet_until)
            break;
    }
    buf[len] = '\0';
    close(out[0]);
    kill(-pid, SIGKILL);
    if (!reaped)
        waitpid(pid, status, 0);
    return buf;
}

static void test_shipped_testgame_runs(void)
{
    Warden__V1__Template *t = parse_file("templates/testgame.json");
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_STRING_EQUAL(t->stop_command, "stop");
    CU_ASSERT_STRING_EQUAL(t->done_pattern, "Ready:");
    const char *dir = wd_h_tmpdir("tpl-game");
    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);

    /* install: the script runs in the server directory with its interpreter */
    CU_ASSERT_EQUAL_FATAL(wd_path_write_confined(dir, ".install.sh", t->install_script,
                                                 strlen(t->install_script), 0600),
                          WD_OK);
    char *inst[] = {t->install_interpreter, (char *)".install.sh", NULL};
    int status = -1;
    char *out = run_game(dir, inst, NULL, NULL, &status);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    free(out);
    char game[1024];
    snprintf(game, sizeof game, "%s/game.sh", dir);
    CU_ASSERT_EQUAL(access(game, R_OK | X_OK), 0);

    wd_kv g[] = {{(char *)"GREETING", (char *)"a b; rm -rf /"},
                 {(char *)"READY_DELAY_MS", (char *)"0"}};
    size_t n = 0;
    wd_kv *kv = resolve_all(t, g, 2, &n);
    char **argv = NULL;
    int argc = 0;
    CU_ASSERT_EQUAL_FATAL(wd_template_build_argv(t->startup, kv, n, &argv, &argc), WD_OK);
    CU_ASSERT_EQUAL(argc, 3);
    /* the environment the agent builds: every variable, then the template's */
    char *env[16] = {NULL};
    size_t ne = 0;
    for (size_t i = 0; i < n && ne < 8; i++) {
        size_t sz = strlen(kv[i].key) + strlen(kv[i].value) + 2;
        env[ne] = malloc(sz);
        snprintf(env[ne++], sz, "%s=%s", kv[i].key, kv[i].value);
    }
    for (size_t i = 0; i < t->n_environment && ne < 15; i++) {
        char *val = NULL;
        CU_ASSERT_EQUAL(wd_template_render(t->environment[i]->value, kv, n, &val), WD_OK);
        size_t sz = strlen(t->environment[i]->key) + strlen(val) + 2;
        env[ne] = malloc(sz);
        snprintf(env[ne++], sz, "%s=%s", t->environment[i]->key, val);
        free(val);
    }

    const char *const *genv = (const char *const *)env;
    out =
        run_game(dir, argv, genv,
                 "echo hello world\nfoo bar\nflood 5000\nlongline 3000\nexit x\nexit 7\n", &status);
    static const char head[] = "Test game starting\nGreeting: a b; rm -rf /\nInstance: test\n"
                               "Ready: test game listening\nhello world\nUnknown command: foo bar\n"
                               "flood line 1\n";
    CU_ASSERT(strncmp(out, head, sizeof head - 1) == 0);
    CU_ASSERT(strstr(out, "\nflood line 5000\n") != NULL);
    int lines = 0;
    for (char *p = out; (p = strchr(p, '\n')) != NULL; p++)
        lines++;
    CU_ASSERT_EQUAL(lines, 4 + 2 + 5000 + 1 + 1);
    char *x = strstr(out, "xxx");
    CU_ASSERT(x && strspn(x, "x") == 3000 && x[3000] == '\n');
    CU_ASSERT(strstr(out, "Bad exit code: x\n") != NULL);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 7);
    free(out);

    out = run_game(dir, argv, genv, "stop\n", &status);
    CU_ASSERT(strstr(out, "\nStopping\n") != NULL);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    free(out);
    out = run_game(dir, argv, genv, "crash\n", &status);
    CU_ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    free(out);
    out = run_game(dir, argv, genv, "spawn\n", &status);
    CU_ASSERT(strstr(out, "\nSpawned ") != NULL);
    CU_ASSERT(strstr(out, "Console closed\n") != NULL);
    free(out);
    out = run_game(dir, argv, genv, "", &status); /* stdin closed: exits cleanly */
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    free(out);

    for (size_t i = 0; i < ne; i++)
        free(env[i]);
    wd_argv_free(argv);
    wd_kv_free(kv, n);
    wd_template_free(&t);
}

int main(void)
{
    static const wd_h_case parse[] = {
        {"minimal", test_parse_minimal},
        {"full", test_parse_full},
        {"builtins", test_parse_builtins},
        {"errors: structure and types", test_parse_errors_structure},
        {"errors: variables", test_parse_errors_variables},
        {"errors: references and files", test_parse_errors_refs_and_files},
        {"NULL arguments", test_parse_null_args},
        {"validate built messages", test_validate_proto},
        {NULL, NULL},
    };
    static const wd_h_case hostile[] = {
        {"random garbage", test_hostile_garbage},
        {"truncations and byte flips", test_hostile_mutations},
        {"limits, nesting, numbers, NULs", test_hostile_limits},
        {"render and argv size", test_hostile_render_size},
        {NULL, NULL},
    };
    static const wd_h_case values[] = {
        {"defaults and overrides", test_resolve_defaults_and_overrides},
        {"integer", test_resolve_integer},
        {"string", test_resolve_string},
        {"boolean, enum, required", test_resolve_bool_enum_required},
        {"secrets not echoed", test_resolve_secret_not_echoed},
        {NULL, NULL},
    };
    static const wd_h_case render_argv[] = {
        {"render", test_render},
        {"argv splitting", test_argv_splitting},
        {"argv: no injection", test_argv_no_injection},
        {"argv from a template", test_argv_from_template},
        {NULL, NULL},
    };
    static const wd_h_case paths[] = {
        {"rel_ok", test_path_rel_ok},
        {"write", test_path_write_ok},
        {"tricks refused", test_path_tricks},
        {"tricks refused without openat2", test_path_tricks_without_openat2},
        {NULL, NULL},
    };
    static const wd_h_case eggs[] = {
        {"blockcraft (minecraft-like)", test_egg_blockcraft},
        {"relay (simple)", test_egg_relay},
        {"rules and startup", test_egg_rules_and_startup},
        {"errors", test_egg_errors},
        {NULL, NULL},
    };
    static const wd_h_case trips[] = {
        {"round trip", test_round_trip},
        {NULL, NULL},
    };
    static const wd_h_case shipped[] = {
        {"all templates parse", test_shipped_all_parse},
        {"freeciv", test_shipped_freeciv},
        {"teeworlds", test_shipped_teeworlds},
        {"testgame runs", test_shipped_testgame_runs},
        {NULL, NULL},
    };
    wd_h_suite("template/parse", NULL, NULL, parse);
    wd_h_suite("template/hostile", NULL, NULL, hostile);
    wd_h_suite("template/values", NULL, NULL, values);
    wd_h_suite("template/render+argv", NULL, NULL, render_argv);
    wd_h_suite("template/paths", NULL, NULL, paths);
    wd_h_suite("template/egg", NULL, NULL, eggs);
    wd_h_suite("template/round-trip", NULL, NULL, trips);
    wd_h_suite("template/shipped", NULL, NULL, shipped);
    return wd_h_run();
}
