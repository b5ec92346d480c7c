/* Rate limiting for the API: token buckets per key (user, API key, IP) and
 * growing back-off after failed logins (per account and per IP).
 *
 * Both keep a bounded table (oldest entries are recycled), so an attacker
 * cycling keys costs memory once, never without bound. Thread-safe. */
#ifndef WD_LIMITER_H
#define WD_LIMITER_H

#include <stdbool.h>
#include <stdint.h>

#include "status.h"

typedef struct wd_limiter wd_limiter;

/* rate tokens per second, burst bucket size, capacity keys remembered. */
wd_status wd_limiter_create(wd_limiter **out, double rate, double burst, unsigned capacity);
void wd_limiter_destroy(wd_limiter **l);
/* Takes one token for key. False when empty: *retry_after_s says when one
 * will be there (>= 1). */
bool wd_limiter_take(wd_limiter *l, const char *key, int64_t now_ms, int *retry_after_s);

typedef struct wd_backoff wd_backoff;

/* After `free_failures` failures in a row, each further failure locks the
 * key for base_s * 2^(extra failures), up to max_s. */
wd_status wd_backoff_create(wd_backoff **out, int free_failures, int base_s, int max_s,
                            unsigned capacity);
void wd_backoff_destroy(wd_backoff **b);
/* False while key is locked out; *retry_after_s then says for how long. */
bool wd_backoff_allowed(wd_backoff *b, const char *key, int64_t now_ms, int *retry_after_s);
void wd_backoff_failure(wd_backoff *b, const char *key, int64_t now_ms);
void wd_backoff_success(wd_backoff *b, const char *key);

#endif
