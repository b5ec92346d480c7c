/* logfmt (default) or JSON lines (WARDEN_LOG_FORMAT=json) logger. A line is
 * assembled in a stack buffer and written with a single write(2), so lines
 * from different threads never interleave. */
#include "log.h"

#include <stdarg.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_level = WD_LOG_INFO;
static const char *log_comp = "warden";
static _Thread_local char log_trace[64];

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

void wd_log_set_level(wd_log_level lvl)
{
    atomic_store(&log_level, (int)lvl);
}

bool wd_log_parse_level(const char *s, wd_log_level *out)
{
    for (int i = 0; i <= WD_LOG_OFF; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (wd_log_level)i;
            return true;
        }
    }
    return false;
}

void wd_log_set_component(const char *comp)
{
    log_comp = comp;
}

void wd_log_set_trace(const char *trace)
{
    if (trace == NULL)
        log_trace[0] = '\0';
    else
        snprintf(log_trace, sizeof log_trace, "%s", trace);
}

const char *wd_log_trace(void)
{
    return log_trace[0] ? log_trace : NULL;
}

bool wd_log_enabled(wd_log_level lvl)
{
    return (int)lvl >= atomic_load(&log_level) && lvl < WD_LOG_OFF;
}

static atomic_int log_json = -1; /* -1: not decided yet (WARDEN_LOG_FORMAT) */

void wd_log_set_json(bool json)
{
    atomic_store(&log_json, json ? 1 : 0);
}

static bool json_lines(void)
{
    int v = atomic_load(&log_json);
    if (v < 0) {
        const char *f = getenv("WARDEN_LOG_FORMAT");
        v = f && strcmp(f, "json") == 0;
        atomic_store(&log_json, v);
    }
    return v == 1;
}

void wd_log_write(wd_log_level lvl, const char *fmt, ...)
{
    char line[2048];
    struct timespec ts;
    struct tm tm;
    bool json = json_lines();
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line,
                     json ? "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"%s\","
                            "\"comp\":\"%s\""
                          : "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s comp=%s",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, level_names[lvl], log_comp);
    /* Trace ids are hex or request ids (no characters to escape). */
    if (log_trace[0] != '\0' && n > 0 && (size_t)n < sizeof line)
        n += snprintf(line + n, sizeof line - (size_t)n, json ? ",\"trace\":\"%s\"" : " trace=%s",
                      log_trace);
    char msg[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof line)
        n = 0;
    /* msg="..." with quotes, backslashes and control bytes escaped, so one
     * event is always one parseable line. */
    size_t pos = (size_t)n;
    const char *open = json ? ",\"msg\":\"" : " msg=\"";
    memcpy(line + pos, open, strlen(open));
    pos += strlen(open);
    for (const char *p = msg; *p != '\0' && pos < sizeof line - 8; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\') {
            line[pos++] = '\\';
            line[pos++] = (char)c;
        } else if (c < 0x20) {
            line[pos++] = ' ';
        } else {
            line[pos++] = (char)c;
        }
    }
    line[pos++] = '"';
    if (json)
        line[pos++] = '}';
    n = (int)pos;
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}
