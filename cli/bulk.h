/* The parts of wardenctl's bulk commands (power, backup, broadcast) that
 * bus mode and REST mode share: a bounded pool of worker threads, the
 * per-server progress lines and summary, and the console line a broadcast
 * sends to a game.
 *
 * Broadcast lines. A template has no field saying how its game broadcasts
 * a message (docs/templates.md), and a console line is a command: sending
 * the bare message to a game we know nothing about could run it ("stop",
 * "quit"). So the line comes from, in order: --format (with {message}),
 * else a small table of known templates (template id glob → format), else
 * the server is skipped, saying why. A known game may also forbid
 * characters its console treats as syntax (';' and '"' on Source-engine
 * games): a message holding one is refused for that server, --format or
 * not. See docs/wardenctl.md for the table. */
#ifndef WD_BULK_H
#define WD_BULK_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "status.h"

typedef enum { WD_BULK_OK, WD_BULK_FAILED, WD_BULK_SKIPPED } wd_bulk_result;

typedef struct {
    pthread_mutex_t mu;
    const char *verb;    /* "power start", "backup", "broadcast" */
    const char *ok_word; /* "ok" (default), "sent" ... */
    bool json;
    size_t total, done, ok, failed, skipped;
} wd_bulk;

/* Starts a report of total servers (prints nothing yet). */
void wd_bulk_begin(wd_bulk *b, const char *verb, size_t total, bool json);
/* One finished server: a progress line on stdout ("[2/5] ID (NAME): ok
 * (detail)"), or a JSON object per line with --json. Any thread. */
void wd_bulk_report(wd_bulk *b, const char *id, const char *name, wd_bulk_result r,
                    const char *detail);
/* Prints the summary line and returns the exit code: 1 if any failed or,
 * after Ctrl-C, any was not attempted. */
int wd_bulk_end(wd_bulk *b);

/* Runs fn(i, ud) for i in [0, n) on at most `workers` threads (1..64);
 * returns when all are done. */
void wd_bulk_parallel(size_t n, int workers, void (*fn)(size_t i, void *ud), void *ud);

/* Why a power action (start, stop, restart, kill) has nothing to do on a
 * server in state (offline, installing, starting, running, ...), or NULL
 * when it should be sent: the same rules in bus and REST mode. */
const char *wd_bulk_power_skip(const char *action, const char *state);

/* Checks a broadcast message: non-empty, at most 1024 bytes, no control
 * characters (it must stay one console line). */
wd_status wd_bulk_message_ok(const char *msg);

/* The console line that broadcasts msg on a server of template_id, into
 * out. fmt (NULL: use the table) must contain {message}. WD_ERR_UNSUPPORTED
 * when the template has no known broadcast command, or msg holds a
 * character the template's game forbids (the message says which and why);
 * WD_ERR_INVALID for a bad msg or fmt or a line over 4096 bytes. */
wd_status wd_bulk_broadcast_line(const char *template_id, const char *fmt, const char *msg,
                                 char *out, size_t n);

/* The known-templates table, terminated by a NULL glob; a NULL format
 * means "this game has no stdin console". For docs and completion. */
typedef struct {
    const char *template_glob;
    const char *format;
    const char *why;    /* why format is NULL, or why forbid's characters are refused */
    const char *forbid; /* characters a message may not hold on this game, or NULL */
} wd_bulk_say;
extern const wd_bulk_say wd_bulk_say_table[];

#endif
