/* PostgreSQL access for warden-api: a fixed-size pool of libpq connections
 * and parameter-only query helpers that map server errors to wd_status.
 *
 * Connections are opened lazily: wd_db_create only validates the conninfo,
 * so the API can start (and answer /readyz with "not ready") while the
 * database is down; each wd_db_acquire opens a new connection while fewer
 * than cfg.size exist and no idle one is available. An idle connection is
 * checked before it is handed out: always a cheap, non-blocking look at its
 * socket (a backend killed server-side has sent its FATAL and closed), plus
 * one round trip (an empty query) when it sat idle for validate_idle_ms or
 * more; a broken one is repaired with PQreset.
 *
 * Session state is not reset on release (that would cost a round trip per
 * request): change settings only with SET LOCAL inside a transaction.
 *
 * SQL text is always a constant: values travel as $1..$n parameters in text
 * form, never spliced into the statement.
 *
 * Threads: wd_db_* pool functions are thread-safe. A PGconn obtained from
 * wd_db_acquire belongs to the calling thread until wd_db_release; the query
 * helpers take that connection and are as thread-safe as libpq itself (one
 * thread per connection). Never call them from an event-loop thread: they
 * block on the network. */
#ifndef WD_DB_H
#define WD_DB_H

#include <libpq-fe.h>
#include <stdint.h>

#include "status.h"

typedef struct wd_db wd_db;

typedef struct {
    const char *conninfo;         /* libpq connection string or URI (copied) */
    int size;                     /* max connections, default 8 */
    int acquire_timeout_ms;       /* wait for a free connection, default 5000 */
    int statement_timeout_ms;     /* server-side statement_timeout, 0 = none; default 30000 */
    int connect_timeout_s;        /* libpq connect_timeout, default 5 */
    int validate_idle_ms;         /* round-trip check after this long idle, default
                                     1000; 0 = on every acquire, -1 = never */
    const char *application_name; /* shown in pg_stat_activity, default "warden-api" */
} wd_db_cfg;

typedef struct {
    int size;                  /* configured maximum */
    int open;                  /* connections currently open (idle + in use) */
    int in_use;                /* handed out and not yet released */
    uint64_t acquires;         /* successful acquires */
    uint64_t waits;            /* acquires that had to wait for a release */
    uint64_t timeouts;         /* acquires that gave up (WD_ERR_TIMEOUT) */
    uint64_t reconnects;       /* broken connections repaired or replaced */
    uint64_t rollbacks;        /* forgotten transactions rolled back on release */
    uint64_t acquire_us_total; /* total time spent in wd_db_acquire (successes) */
} wd_db_stats;

wd_db_cfg wd_db_cfg_defaults(void);

/* Creates a pool; copies cfg. Opens no connection (see above). Fails with
 * WD_ERR_INVALID on an unparsable conninfo or out-of-range sizes. */
wd_status wd_db_create(wd_db **out, const wd_db_cfg *cfg);
/* Closes every idle connection and frees the pool; NULL-safe; nulls *p.
 * Every acquired connection must have been released first. */
void wd_db_destroy(wd_db **p);

/* Hands out a healthy connection, waiting up to acquire_timeout_ms for one
 * to be released (WD_ERR_TIMEOUT "database pool exhausted"). WD_ERR_UNAVAILABLE
 * when a new connection cannot be opened. The caller must wd_db_release it. */
wd_status wd_db_acquire(wd_db *db, PGconn **out);
/* Returns a connection to the pool. An open transaction the caller forgot is
 * rolled back (and logged); a connection in an unusable state is closed. */
void wd_db_release(wd_db *db, PGconn *c);

/* Acquire + "SELECT 1" + release: WD_OK when the database answers (/readyz). */
wd_status wd_db_ping(wd_db *db);
/* A consistent snapshot of the counters (/metrics). */
void wd_db_stats_get(wd_db *db, wd_db_stats *out);

/* Runs one statement with nparams text parameters (params[i] NULL = SQL NULL).
 * On success *out (if out is not NULL) receives the result, which the caller
 * PQclear()s; with out NULL the result is discarded. On failure *out is NULL
 * and the status carries the server's message (wd_err_msg):
 *   23505 unique_violation                    -> WD_ERR_EXISTS
 *   23503 foreign_key_violation               -> WD_ERR_NOT_FOUND
 *   22xxx data exceptions, 23502, 23514       -> WD_ERR_INVALID
 *   40001 serialization, 40P01 deadlock       -> WD_ERR_AGAIN (retry the transaction)
 *   57014 query_canceled (statement_timeout)  -> WD_ERR_TIMEOUT
 *   08xxx, 57P0x, lost connection             -> WD_ERR_UNAVAILABLE
 *   anything else                             -> WD_ERR_INTERNAL */
wd_status wd_db_exec(PGconn *c, const char *sql, int nparams, const char *const *params,
                     PGresult **out);
/* The mapping above for a result obtained some other way (pipeline mode,
 * PQexec of trusted constant scripts). r may be NULL. Records the message with
 * WD_ERR and returns it; WD_OK for PGRES_COMMAND_OK / TUPLES_OK. */
wd_status wd_db_result_status(PGconn *c, const PGresult *r);

/* Transactions. wd_db_commit returns WD_ERR_STATE (and leaves the connection
 * idle) when the transaction had already failed, because the server then
 * turns COMMIT into ROLLBACK. */
wd_status wd_db_begin(PGconn *c);
wd_status wd_db_commit(PGconn *c);
wd_status wd_db_rollback(PGconn *c);

#endif
