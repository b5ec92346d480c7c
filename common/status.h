/* Warden's one status enum, shared by every component.
 *
 * Functions return a wd_status; results come back through out-parameters.
 * WD_ERR() records a human-readable message for the calling thread next to
 * the status, with the file and line where it was raised, so the code that
 * finally reports the error (a CLI message, a protobuf reply, a log line)
 * can say what happened and where. All functions are thread-safe; the last
 * error message is thread-local. */
#ifndef WD_STATUS_H
#define WD_STATUS_H

#include <stddef.h>

/* X(name, text). The numeric values are stable: they appear in logs. */
#define WD_STATUS_TABLE(X)                                                    \
    X(WD_OK, "ok")                                                            \
    X(WD_ERR_NOMEM, "out of memory")                                          \
    X(WD_ERR_INVALID, "invalid argument")                                     \
    X(WD_ERR_PROTO, "malformed message")                                      \
    X(WD_ERR_TIMEOUT, "timed out")                                            \
    X(WD_ERR_NO_RESPONDERS, "no responders")                                  \
    X(WD_ERR_NOT_FOUND, "not found")                                          \
    X(WD_ERR_EXISTS, "already exists")                                        \
    X(WD_ERR_STATE, "not allowed in the current state")                       \
    X(WD_ERR_DENIED, "permission denied")                                     \
    X(WD_ERR_IO, "i/o error")                                                 \
    X(WD_ERR_BUS, "bus error")                                                \
    X(WD_ERR_CLOSED, "closed")                                                \
    X(WD_ERR_FULL, "queue full")                                              \
    X(WD_ERR_AGAIN, "would block")                                            \
    X(WD_ERR_UNAVAILABLE, "unavailable")                                      \
    X(WD_ERR_UNSUPPORTED, "not supported")                                    \
    X(WD_ERR_INTERNAL, "internal error")

typedef enum {
#define WD_STATUS_ENUM(name, text) name,
    WD_STATUS_TABLE(WD_STATUS_ENUM)
#undef WD_STATUS_ENUM
    WD_STATUS_COUNT
} wd_status;

/* Static text for a status; never NULL. */
const char *wd_status_str(wd_status st);

/* Records `st` with a formatted message as this thread's last error and
 * returns `st` unchanged, so `return WD_ERR(WD_ERR_INVALID, "bad %s", x);`
 * reads naturally. */
wd_status wd_err_set(wd_status st, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#define WD_ERR(st, ...) wd_err_set((st), __FILE__, __LINE__, __VA_ARGS__)

/* This thread's last error message ("" when none). Valid until the next
 * WD_ERR on this thread. */
const char *wd_err_msg(void);
/* "file:line" of this thread's last error ("" when none). */
const char *wd_err_where(void);
/* Forgets this thread's last error. */
void wd_err_clear(void);

#endif
