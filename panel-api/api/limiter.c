/* Token buckets and login back-off (see limiter.h). Both use one shape of
 * table: open addressing over a fixed array, keyed by the FNV-1a hash of
 * the key; a probe window of 8 slots, and when all 8 are taken the least
 * recently touched one is recycled. */
#include "limiter.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define KEY_MAX 72
#define PROBE 8

typedef struct {
    char key[KEY_MAX];
    int64_t touched_ms;
    double tokens;     /* limiter */
    int failures;      /* backoff */
    int64_t locked_until_ms;
} slot;

typedef struct {
    pthread_mutex_t mu;
    slot *slots;
    unsigned cap;
} table;

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

static wd_status table_init(table *t, unsigned capacity)
{
    t->cap = capacity < PROBE ? PROBE : capacity;
    t->slots = calloc(t->cap, sizeof *t->slots);
    if (t->slots == NULL)
        return WD_ERR(WD_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&t->mu, NULL);
    return WD_OK;
}

static void table_free(table *t)
{
    free(t->slots);
    pthread_mutex_destroy(&t->mu);
}

/* The slot for key, creating (or recycling) one; *fresh says it is new.
 * t->mu held. */
static slot *lookup(table *t, const char *key, int64_t now_ms, bool create, bool *fresh)
{
    char k[KEY_MAX];
    size_t n = strlen(key);
    if (n >= KEY_MAX)
        n = KEY_MAX - 1;
    memcpy(k, key, n);
    k[n] = '\0';
    uint64_t h = fnv1a(k);
    slot *victim = NULL;
    for (unsigned i = 0; i < PROBE; i++) {
        slot *s = &t->slots[(h + i) % t->cap];
        if (s->key[0] && strcmp(s->key, k) == 0) {
            *fresh = false;
            return s;
        }
        /* Prefer an empty slot, else the least recently touched one. */
        if (victim == NULL)
            victim = s;
        else if (victim->key[0] != '\0' && (s->key[0] == '\0' || s->touched_ms < victim->touched_ms))
            victim = s;
    }
    if (!create)
        return NULL;
    memset(victim, 0, sizeof *victim);
    memcpy(victim->key, k, n + 1);
    victim->touched_ms = now_ms;
    *fresh = true;
    return victim;
}

/* ---- token buckets ---- */

struct wd_limiter {
    table t;
    double rate, burst;
};

wd_status wd_limiter_create(wd_limiter **out, double rate, double burst, unsigned capacity)
{
    if (rate <= 0 || burst < 1)
        return WD_ERR(WD_ERR_INVALID, "rate limit needs rate > 0 and burst >= 1");
    wd_limiter *l = calloc(1, sizeof *l);
    if (l == NULL)
        return WD_ERR(WD_ERR_NOMEM, "out of memory");
    l->rate = rate;
    l->burst = burst;
    wd_status st = table_init(&l->t, capacity);
    if (st != WD_OK) {
        free(l);
        return st;
    }
    *out = l;
    return WD_OK;
}

void wd_limiter_destroy(wd_limiter **pl)
{
    if (pl == NULL || *pl == NULL)
        return;
    table_free(&(*pl)->t);
    free(*pl);
    *pl = NULL;
}

bool wd_limiter_take(wd_limiter *l, const char *key, int64_t now_ms, int *retry_after_s)
{
    bool fresh, ok;
    pthread_mutex_lock(&l->t.mu);
    slot *s = lookup(&l->t, key, now_ms, true, &fresh);
    if (fresh) {
        s->tokens = l->burst;
    } else {
        s->tokens += (double)(now_ms - s->touched_ms) * l->rate / 1000.0;
        if (s->tokens > l->burst)
            s->tokens = l->burst;
    }
    s->touched_ms = now_ms;
    ok = s->tokens >= 1.0;
    if (ok)
        s->tokens -= 1.0;
    else if (retry_after_s)
        *retry_after_s = (int)ceil((1.0 - s->tokens) / l->rate) > 0
                             ? (int)ceil((1.0 - s->tokens) / l->rate)
                             : 1;
    pthread_mutex_unlock(&l->t.mu);
    return ok;
}

/* ---- login back-off ---- */

struct wd_backoff {
    table t;
    int free_failures, base_s, max_s;
};

wd_status wd_backoff_create(wd_backoff **out, int free_failures, int base_s, int max_s,
                            unsigned capacity)
{
    wd_backoff *b = calloc(1, sizeof *b);
    if (b == NULL)
        return WD_ERR(WD_ERR_NOMEM, "out of memory");
    b->free_failures = free_failures;
    b->base_s = base_s > 0 ? base_s : 1;
    b->max_s = max_s > b->base_s ? max_s : b->base_s;
    wd_status st = table_init(&b->t, capacity);
    if (st != WD_OK) {
        free(b);
        return st;
    }
    *out = b;
    return WD_OK;
}

void wd_backoff_destroy(wd_backoff **pb)
{
    if (pb == NULL || *pb == NULL)
        return;
    table_free(&(*pb)->t);
    free(*pb);
    *pb = NULL;
}

bool wd_backoff_allowed(wd_backoff *b, const char *key, int64_t now_ms, int *retry_after_s)
{
    bool fresh, ok = true;
    pthread_mutex_lock(&b->t.mu);
    slot *s = lookup(&b->t, key, now_ms, false, &fresh);
    if (s && s->locked_until_ms > now_ms) {
        ok = false;
        if (retry_after_s)
            *retry_after_s = (int)((s->locked_until_ms - now_ms + 999) / 1000);
    }
    pthread_mutex_unlock(&b->t.mu);
    return ok;
}

void wd_backoff_failure(wd_backoff *b, const char *key, int64_t now_ms)
{
    bool fresh;
    pthread_mutex_lock(&b->t.mu);
    slot *s = lookup(&b->t, key, now_ms, true, &fresh);
    s->touched_ms = now_ms;
    s->failures++;
    int extra = s->failures - b->free_failures;
    if (extra > 0) {
        int64_t lock = b->base_s;
        for (int i = 1; i < extra && lock < b->max_s; i++)
            lock *= 2;
        if (lock > b->max_s)
            lock = b->max_s;
        s->locked_until_ms = now_ms + lock * 1000;
    }
    pthread_mutex_unlock(&b->t.mu);
}

void wd_backoff_success(wd_backoff *b, const char *key)
{
    bool fresh;
    pthread_mutex_lock(&b->t.mu);
    slot *s = lookup(&b->t, key, 0, false, &fresh);
    if (s)
        memset(s, 0, sizeof *s);
    pthread_mutex_unlock(&b->t.mu);
}
