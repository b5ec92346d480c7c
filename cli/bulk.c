/* Bulk command plumbing shared by bus and REST mode (see bulk.h). */
#include "bulk.h"

#include <fnmatch.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

/* Known games. The first matching glob wins. testgame's `echo` is what it
 * has closest to a chat line (and what lets the tests see a broadcast).
 * A Source-engine (srcds) console splits a line into commands at ';' and
 * `say` takes its text up to a '"': "hi; quit" would run quit. So those
 * characters are refused in messages to these games. */
#define SRCDS_FORBID ";\""
#define SRCDS_WHY "a Source-engine console reads ';' as a command separator and '\"' as quoting"
const wd_bulk_say wd_bulk_say_table[] = {
    {"testgame", "echo {message}", NULL, NULL},
    {"freeciv*", "wall {message}", NULL, NULL},
    {"teeworlds*", NULL, "teeworlds has no stdin console (rcon/econ only)", NULL},
    {"*minecraft*", "say {message}", NULL, NULL},
    {"paper*", "say {message}", NULL, NULL},
    {"purpur*", "say {message}", NULL, NULL},
    {"spigot*", "say {message}", NULL, NULL},
    {"bukkit*", "say {message}", NULL, NULL},
    {"forge*", "say {message}", NULL, NULL},
    {"fabric*", "say {message}", NULL, NULL},
    {"*srcds*", "say {message}", SRCDS_WHY, SRCDS_FORBID},
    {"counter-strike*", "say {message}", SRCDS_WHY, SRCDS_FORBID},
    {"garrys-mod*", "say {message}", SRCDS_WHY, SRCDS_FORBID},
    {"team-fortress*", "say {message}", SRCDS_WHY, SRCDS_FORBID},
    {NULL, NULL, NULL, NULL}};

void wd_bulk_begin(wd_bulk *b, const char *verb, size_t total, bool json)
{
    memset(b, 0, sizeof *b);
    pthread_mutex_init(&b->mu, NULL);
    b->verb = verb;
    b->total = total;
    b->json = json;
}

void wd_bulk_report(wd_bulk *b, const char *id, const char *name, wd_bulk_result r,
                    const char *detail)
{
    const char *const words[] = {b->ok_word ? b->ok_word : "ok", "failed", "skipped"};
    pthread_mutex_lock(&b->mu);
    b->done++;
    if (r == WD_BULK_OK)
        b->ok++;
    else if (r == WD_BULK_FAILED)
        b->failed++;
    else
        b->skipped++;
    if (b->json) {
        printf("{\"id\":");
        wd_ctl_json_str(stdout, id);
        printf(",\"name\":");
        wd_ctl_json_str(stdout, name);
        printf(",\"result\":\"%s\",\"detail\":", words[r]);
        wd_ctl_json_str(stdout, detail);
        printf("}\n");
    } else {
        printf("[%zu/%zu] %s", b->done, b->total, id);
        if (name && *name)
            printf(" (%s)", name);
        printf(": %s", words[r]);
        if (detail && *detail)
            printf(r == WD_BULK_OK ? " (%s)" : ": %s", detail);
        putchar('\n');
    }
    fflush(stdout);
    pthread_mutex_unlock(&b->mu);
}

int wd_bulk_end(wd_bulk *b)
{
    if (b->json)
        printf("{\"summary\":{\"action\":\"%s\",\"selected\":%zu,\"ok\":%zu,\"failed\":%zu,"
               "\"skipped\":%zu}}\n",
               b->verb, b->total, b->ok, b->failed, b->skipped);
    else
        printf("%s: %zu %s, %zu failed, %zu skipped (%zu selected)\n", b->verb, b->ok,
               b->ok_word ? b->ok_word : "ok", b->failed, b->skipped, b->total);
    size_t left = b->total - b->done;
    if (left)
        fprintf(stderr, "wardenctl: interrupted: %zu server(s) not attempted\n", left);
    fflush(stdout);
    pthread_mutex_destroy(&b->mu);
    return b->failed || left ? 1 : 0;
}

typedef struct {
    size_t n;
    atomic_size_t next;
    void (*fn)(size_t, void *);
    void *ud;
} pool;

static void *worker(void *arg)
{
    pool *p = arg;
    for (;;) {
        size_t i = atomic_fetch_add(&p->next, 1);
        if (i >= p->n || wd_ctl_interrupted)
            return NULL;
        p->fn(i, p->ud);
    }
}

void wd_bulk_parallel(size_t n, int workers, void (*fn)(size_t i, void *ud), void *ud)
{
    pool p = {.n = n, .fn = fn, .ud = ud};
    atomic_init(&p.next, 0);
    if (workers < 1)
        workers = 1;
    if (workers > 64)
        workers = 64;
    if ((size_t)workers > n)
        workers = (int)n;
    pthread_t th[64];
    int started = 0;
    for (int i = 0; i < workers; i++)
        if (pthread_create(&th[started], NULL, worker, &p) == 0)
            started++;
    if (started == 0)
        worker(&p); /* no threads: do it here */
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
}

wd_status wd_bulk_message_ok(const char *msg)
{
    if (msg == NULL || *msg == '\0')
        return WD_ERR(WD_ERR_INVALID, "the message is empty");
    if (strlen(msg) > 1024)
        return WD_ERR(WD_ERR_INVALID, "the message is longer than 1024 bytes");
    for (const unsigned char *p = (const unsigned char *)msg; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return WD_ERR(WD_ERR_INVALID, "the message must be one line without control "
                                          "characters");
    return WD_OK;
}

wd_status wd_bulk_broadcast_line(const char *template_id, const char *fmt, const char *msg,
                                 char *out, size_t n)
{
    /* Newlines, CRs and other control characters are refused here for
     * every game (one message, one console line). */
    wd_status st = wd_bulk_message_ok(msg);
    if (st != WD_OK)
        return st;
    const wd_bulk_say *game = NULL;
    for (const wd_bulk_say *s = wd_bulk_say_table; s->template_glob && !game; s++)
        if (fnmatch(s->template_glob, template_id ? template_id : "", 0) == 0)
            game = s;
    if (fmt == NULL) {
        if (game == NULL)
            return WD_ERR(WD_ERR_UNSUPPORTED,
                          "no known broadcast command for template '%s' (give --format)",
                          template_id && *template_id ? template_id : "?");
        if (game->format == NULL)
            return WD_ERR(WD_ERR_UNSUPPORTED, "%s", game->why);
        fmt = game->format;
    }
    /* Even with --format: the separators belong to the game's console,
     * whatever the line around the message. */
    const char *bad = game && game->forbid ? strpbrk(msg, game->forbid) : NULL;
    if (bad)
        return WD_ERR(WD_ERR_UNSUPPORTED, "the message contains '%c', refused for %s: %s", *bad,
                      template_id, game->why);
    const char *ph = strstr(fmt, "{message}");
    if (ph == NULL)
        return WD_ERR(WD_ERR_INVALID, "--format must contain {message}");
    for (const unsigned char *p = (const unsigned char *)fmt; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return WD_ERR(WD_ERR_INVALID, "--format must be one line");
    int len = snprintf(out, n, "%.*s%s%s", (int)(ph - fmt), fmt, msg, ph + strlen("{message}"));
    if (len < 0 || (size_t)len >= n || len > 4096)
        return WD_ERR(WD_ERR_INVALID, "the console line would be longer than 4096 bytes");
    return WD_OK;
}

const char *wd_bulk_power_skip(const char *action, const char *state)
{
    bool start = strcmp(action, "start") == 0, stop = strcmp(action, "stop") == 0,
         kill = strcmp(action, "kill") == 0;
    if (start && (strcmp(state, "running") == 0 || strcmp(state, "starting") == 0))
        return "already running";
    if (start && strcmp(state, "installing") == 0)
        return "installing";
    if ((stop || kill) && strcmp(state, "offline") == 0)
        return "already offline";
    if (stop && strcmp(state, "stopping") == 0)
        return "already stopping";
    return NULL;
}
