/* Status strings and the thread-local "last error" record. */
#include "status.h"

#include <stdarg.h>
#include <stdio.h>

static const char *const status_text[] = {
#define WD_STATUS_TEXT(name, text) text,
    WD_STATUS_TABLE(WD_STATUS_TEXT)
#undef WD_STATUS_TEXT
};

static _Thread_local char err_msg[512];
static _Thread_local char err_where[128];

const char *wd_status_str(wd_status st)
{
    if ((int)st < 0 || st >= WD_STATUS_COUNT)
        return "unknown status";
    return status_text[st];
}

wd_status wd_err_set(wd_status st, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_msg, sizeof err_msg, fmt, ap);
    va_end(ap);
    snprintf(err_where, sizeof err_where, "%s:%d", file, line);
    return st;
}

const char *wd_err_msg(void)
{
    return err_msg;
}

const char *wd_err_where(void)
{
    return err_where;
}

void wd_err_clear(void)
{
    err_msg[0] = '\0';
    err_where[0] = '\0';
}
