/* Structured logging: one logfmt line per event on stderr.
 *
 *   ts=2026-11-25T19:52:52.123Z level=info comp=agent trace=... msg="..." k=v
 *
 * The level is checked before anything is formatted. The trace id is
 * thread-local: set it while handling a message so every line logged on its
 * behalf carries it. Thread-safe. */
#ifndef WD_LOG_H
#define WD_LOG_H

#include <stdbool.h>

typedef enum { WD_LOG_DEBUG = 0, WD_LOG_INFO, WD_LOG_WARN, WD_LOG_ERROR, WD_LOG_OFF } wd_log_level;

void wd_log_set_level(wd_log_level lvl);
/* JSON lines instead of logfmt ({"ts","level","comp","trace"?,"msg"}).
 * Default: WARDEN_LOG_FORMAT=json in the environment turns it on. */
void wd_log_set_json(bool json);
/* Parses "debug", "info", "warn", "error", "off"; returns false if unknown. */
bool wd_log_parse_level(const char *s, wd_log_level *out);
/* Sets the component name printed on every line (a static string). */
void wd_log_set_component(const char *comp);
/* Sets this thread's trace id (copied; NULL clears it). */
void wd_log_set_trace(const char *trace);
/* This thread's trace id, or NULL when none is set. */
const char *wd_log_trace(void);

bool wd_log_enabled(wd_log_level lvl);
void wd_log_write(wd_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define WD_LOG(lvl, ...)                                                      \
    do {                                                                      \
        if (wd_log_enabled(lvl))                                              \
            wd_log_write((lvl), __VA_ARGS__);                                 \
    } while (0)
#define wd_debug(...) WD_LOG(WD_LOG_DEBUG, __VA_ARGS__)
#define wd_info(...) WD_LOG(WD_LOG_INFO, __VA_ARGS__)
#define wd_warn(...) WD_LOG(WD_LOG_WARN, __VA_ARGS__)
#define wd_error(...) WD_LOG(WD_LOG_ERROR, __VA_ARGS__)

#endif
