/* Connection pool and query helpers over libpq (see db.h).
 *
 * The pool is a LIFO stack of idle connections plus a count of open ones,
 * guarded by one mutex; waiters sleep on a condition variable signalled on
 * every release or dropped slot. Anything that talks to the server (connect,
 * PQreset, ROLLBACK) happens outside the lock: a slot is reserved under the
 * lock first, so the count can never exceed cfg.size. LIFO keeps the hot
 * connections hot and lets the rest sit idle. */
#include "db.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "util.h"

struct wd_db {
    char *conninfo;
    char *app_name;
    int size;
    int acquire_timeout_ms;
    int statement_timeout_ms;
    int connect_timeout_s;
    int validate_idle_ms;

    pthread_mutex_t mu;
    pthread_cond_t cv; /* signalled when a connection or a slot frees up */
    struct idle {
        PGconn *c;
        int64_t since_ms; /* when it was released, for validate_idle_ms */
    } * idle;             /* stack of idle connections, capacity size */
    int nidle;
    int open;   /* idle + in use + being opened */
    int in_use; /* handed out (or being opened for a caller) */
    wd_db_stats st;
};

wd_db_cfg wd_db_cfg_defaults(void)
{
    return (wd_db_cfg){
        .conninfo = "",
        .size = 8,
        .acquire_timeout_ms = 5000,
        .statement_timeout_ms = 30000,
        .connect_timeout_s = 5,
        .validate_idle_ms = 1000,
        .application_name = "warden-api",
    };
}

/* libpq messages end with a newline; copy without it for WD_ERR. */
static void trimmed(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
    size_t n = strlen(dst);
    while (n > 0 && (dst[n - 1] == '\n' || dst[n - 1] == ' '))
        dst[--n] = '\0';
}

wd_status wd_db_create(wd_db **out, const wd_db_cfg *cfg)
{
    *out = NULL;
    if (cfg == NULL || cfg->conninfo == NULL)
        return WD_ERR(WD_ERR_INVALID, "database: no conninfo");
    if (cfg->size < 1 || cfg->size > 1000)
        return WD_ERR(WD_ERR_INVALID, "database: pool size %d out of range 1..1000", cfg->size);
    if (cfg->acquire_timeout_ms < 0 || cfg->statement_timeout_ms < 0 ||
        cfg->connect_timeout_s < 0 || cfg->validate_idle_ms < -1)
        return WD_ERR(WD_ERR_INVALID, "database: negative timeout");
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(cfg->conninfo, &perr);
    if (opts == NULL) {
        char msg[256];
        trimmed(msg, sizeof msg, perr ? perr : "out of memory");
        PQfreemem(perr);
        return WD_ERR(WD_ERR_INVALID, "database: bad conninfo: %s", msg);
    }
    PQconninfoFree(opts);

    wd_status st = WD_OK;
    wd_db *db = calloc(1, sizeof *db);
    if (db == NULL)
        return WD_ERR(WD_ERR_NOMEM, "database: pool");
    db->conninfo = strdup(cfg->conninfo);
    db->app_name = strdup(cfg->application_name ? cfg->application_name : "warden-api");
    db->idle = calloc((size_t)cfg->size, sizeof *db->idle);
    if (db->conninfo == NULL || db->app_name == NULL || db->idle == NULL) {
        st = WD_ERR(WD_ERR_NOMEM, "database: pool");
        goto out;
    }
    db->size = cfg->size;
    db->acquire_timeout_ms = cfg->acquire_timeout_ms;
    db->statement_timeout_ms = cfg->statement_timeout_ms;
    db->connect_timeout_s = cfg->connect_timeout_s;
    db->validate_idle_ms = cfg->validate_idle_ms;
    db->st.size = cfg->size;

    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&db->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&db->mu, NULL);
out:
    if (st != WD_OK) {
        free(db->conninfo);
        free(db->app_name);
        free(db->idle);
        free(db);
        return st;
    }
    *out = db;
    return WD_OK;
}

void wd_db_destroy(wd_db **p)
{
    if (p == NULL || *p == NULL)
        return;
    wd_db *db = *p;
    *p = NULL;
    if (db->in_use > 0)
        wd_error("database pool destroyed with %d connections still in use", db->in_use);
    for (int i = 0; i < db->nidle; i++)
        PQfinish(db->idle[i].c);
    pthread_mutex_destroy(&db->mu);
    pthread_cond_destroy(&db->cv);
    free(db->idle);
    free(db->conninfo);
    free(db->app_name);
    free(db);
}

/* Server notices (and the FATAL a terminated backend sends while idle) go
 * to the log at debug level instead of libpq's default stderr print. */
static void on_notice(void *arg, const char *message)
{
    (void)arg;
    char msg[512];
    trimmed(msg, sizeof msg, message);
    wd_debug("database notice: %s", msg);
}

/* Opens a new connection. Our defaults come first and the caller's conninfo
 * last (expanded from "dbname"), so anything the conninfo spells out wins. */
static PGconn *connect_one(wd_db *db)
{
    char options[64] = "";
    char ctimeout[16];
    snprintf(ctimeout, sizeof ctimeout, "%d", db->connect_timeout_s);
    if (db->statement_timeout_ms > 0)
        snprintf(options, sizeof options, "-c statement_timeout=%d", db->statement_timeout_ms);
    const char *keys[] = {"fallback_application_name", "connect_timeout", "options", "dbname",
                          NULL};
    const char *vals[] = {db->app_name, ctimeout, options, db->conninfo, NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (c)
        PQsetNoticeProcessor(c, on_notice, NULL); /* survives PQreset */
    return c;
}

/* True if an idle connection can be handed out as is. A backend that was
 * terminated (pg_terminate_backend, server restart) has already sent its
 * FATAL and closed the socket, so a zero-timeout poll finds that without a
 * round trip; PQconsumeInput then notices the EOF and marks the connection
 * bad. */
static bool healthy(PGconn *c, int64_t idle_ms, int validate_idle_ms)
{
    if (PQstatus(c) != CONNECTION_OK || PQtransactionStatus(c) != PQTRANS_IDLE)
        return false;
    /* The FATAL message and the EOF behind it usually need two reads: keep
     * consuming while the socket stays readable (bounded, in case a chatty
     * server keeps sending notifications). */
    for (int i = 0; i < 8; i++) {
        struct pollfd p = {.fd = PQsocket(c), .events = POLLIN};
        if (p.fd < 0)
            return false;
        if (poll(&p, 1, 0) <= 0)
            break;
        if (!PQconsumeInput(c))
            return false;
        PGnotify *n;
        while ((n = PQnotifies(c)) != NULL)
            PQfreemem(n);
        if (PQstatus(c) != CONNECTION_OK)
            return false;
    }
    if (PQstatus(c) != CONNECTION_OK)
        return false;
    /* The socket look cannot see a backend that is still dying (its FATAL
     * or EOF not sent yet) or a silently dropped TCP path; after a while
     * idle, pay one round trip (an empty query, ~0.1 ms) to be sure. */
    if (validate_idle_ms >= 0 && idle_ms >= validate_idle_ms) {
        PGresult *r = PQexec(c, "");
        bool ok = PQresultStatus(r) == PGRES_EMPTY_QUERY;
        PQclear(r);
        if (!ok)
            return false;
    }
    return PQstatus(c) == CONNECTION_OK;
}

/* Gives back a reserved slot whose connection is gone. */
static void drop_slot(wd_db *db)
{
    pthread_mutex_lock(&db->mu);
    db->open--;
    db->in_use--;
    pthread_cond_signal(&db->cv);
    pthread_mutex_unlock(&db->mu);
}

wd_status wd_db_acquire(wd_db *db, PGconn **out)
{
    *out = NULL;
    int64_t t0 = wd_mono_us();
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += db->acquire_timeout_ms / 1000;
    deadline.tv_nsec += (long)(db->acquire_timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }

    PGconn *c = NULL;
    int64_t idle_ms = 0;
    bool waited = false;
    pthread_mutex_lock(&db->mu);
    for (;;) {
        if (db->nidle > 0) {
            db->nidle--;
            c = db->idle[db->nidle].c;
            idle_ms = wd_mono_ms() - db->idle[db->nidle].since_ms;
            break;
        }
        if (db->open < db->size) {
            db->open++; /* reserve the slot; connect outside the lock */
            break;
        }
        if (!waited) {
            waited = true;
            db->st.waits++;
        }
        int rc = pthread_cond_timedwait(&db->cv, &db->mu, &deadline);
        if (rc == ETIMEDOUT && db->nidle == 0 && db->open >= db->size) {
            db->st.timeouts++;
            int in_use = db->in_use;
            pthread_mutex_unlock(&db->mu);
            return WD_ERR(WD_ERR_TIMEOUT,
                          "database pool exhausted (%d of %d connections in use for %d ms)", in_use,
                          db->size, db->acquire_timeout_ms);
        }
    }
    db->in_use++;
    pthread_mutex_unlock(&db->mu);

    char msg[512];
    if (c == NULL) {
        c = connect_one(db);
        if (c == NULL || PQstatus(c) != CONNECTION_OK) {
            trimmed(msg, sizeof msg, c ? PQerrorMessage(c) : "out of memory");
            PQfinish(c);
            drop_slot(db);
            return WD_ERR(WD_ERR_UNAVAILABLE, "database: connect: %s", msg);
        }
    } else if (!healthy(c, idle_ms, db->validate_idle_ms)) {
        wd_warn("database connection broken (%s), reconnecting",
                PQstatus(c) == CONNECTION_OK ? "in a bad state" : "lost");
        PQreset(c);
        pthread_mutex_lock(&db->mu);
        db->st.reconnects++;
        pthread_mutex_unlock(&db->mu);
        if (PQstatus(c) != CONNECTION_OK) {
            trimmed(msg, sizeof msg, PQerrorMessage(c));
            PQfinish(c);
            drop_slot(db);
            return WD_ERR(WD_ERR_UNAVAILABLE, "database: reconnect: %s", msg);
        }
    }

    pthread_mutex_lock(&db->mu);
    db->st.acquires++;
    db->st.acquire_us_total += (uint64_t)(wd_mono_us() - t0);
    pthread_mutex_unlock(&db->mu);
    *out = c;
    return WD_OK;
}

void wd_db_release(wd_db *db, PGconn *c)
{
    if (c == NULL)
        return;
    bool keep = true;
    bool rolled_back = false;
    if (PQpipelineStatus(c) != PQ_PIPELINE_OFF) {
        keep = false; /* half-finished pipeline: no safe way back */
    } else {
        switch (PQtransactionStatus(c)) {
        case PQTRANS_IDLE:
        case PQTRANS_UNKNOWN: /* broken: the next acquire resets it */
            break;
        case PQTRANS_INTRANS:
        case PQTRANS_INERROR: {
            wd_warn("database connection released inside a transaction: rolling back");
            PGresult *r = PQexec(c, "ROLLBACK");
            keep = PQresultStatus(r) == PGRES_COMMAND_OK;
            rolled_back = keep;
            PQclear(r);
            break;
        }
        case PQTRANS_ACTIVE: /* a query still running: closing aborts it */
        default:
            wd_warn("database connection released with a query in progress: closing it");
            keep = false;
            break;
        }
    }
    if (!keep) {
        PQfinish(c);
        drop_slot(db);
        return;
    }
    pthread_mutex_lock(&db->mu);
    db->idle[db->nidle].c = c;
    db->idle[db->nidle].since_ms = wd_mono_ms();
    db->nidle++;
    db->in_use--;
    if (rolled_back)
        db->st.rollbacks++;
    pthread_cond_signal(&db->cv);
    pthread_mutex_unlock(&db->mu);
}

wd_status wd_db_ping(wd_db *db)
{
    PGconn *c = NULL;
    wd_status st = wd_db_acquire(db, &c);
    if (st != WD_OK)
        return st;
    st = wd_db_exec(c, "SELECT 1", 0, NULL, NULL);
    wd_db_release(db, c);
    return st;
}

void wd_db_stats_get(wd_db *db, wd_db_stats *out)
{
    pthread_mutex_lock(&db->mu);
    *out = db->st;
    out->size = db->size;
    out->open = db->open;
    out->in_use = db->in_use;
    pthread_mutex_unlock(&db->mu);
}

static wd_status map_sqlstate(const char *s)
{
    if (s == NULL || strlen(s) != 5)
        return WD_ERR_INTERNAL;
    if (strcmp(s, "23505") == 0)
        return WD_ERR_EXISTS;
    if (strcmp(s, "23503") == 0)
        return WD_ERR_NOT_FOUND;
    if (strncmp(s, "22", 2) == 0 || strcmp(s, "23502") == 0 || strcmp(s, "23514") == 0)
        return WD_ERR_INVALID;
    if (strcmp(s, "40001") == 0 || strcmp(s, "40P01") == 0)
        return WD_ERR_AGAIN;
    if (strcmp(s, "57014") == 0)
        return WD_ERR_TIMEOUT;
    if (strncmp(s, "08", 2) == 0 || strncmp(s, "57P0", 4) == 0)
        return WD_ERR_UNAVAILABLE;
    return WD_ERR_INTERNAL;
}

wd_status wd_db_result_status(PGconn *c, const PGresult *r)
{
    ExecStatusType es = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (es == PGRES_COMMAND_OK || es == PGRES_TUPLES_OK)
        return WD_OK;
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    char msg[512];
    const char *primary = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (primary)
        trimmed(msg, sizeof msg, primary);
    else if (es == PGRES_FATAL_ERROR || es == PGRES_NONFATAL_ERROR)
        trimmed(msg, sizeof msg, c ? PQerrorMessage(c) : "no connection");
    else
        snprintf(msg, sizeof msg, "unexpected result %s", PQresStatus(es));
    wd_status st = map_sqlstate(state);
    /* libpq's own errors (lost connection) carry no SQLSTATE. */
    if (c == NULL || PQstatus(c) != CONNECTION_OK)
        st = WD_ERR_UNAVAILABLE;
    return WD_ERR(st, "database: %s [SQLSTATE %s]", msg, state ? state : "none");
}

wd_status wd_db_exec(PGconn *c, const char *sql, int nparams, const char *const *params,
                     PGresult **out)
{
    if (out)
        *out = NULL;
    if (c == NULL || sql == NULL || nparams < 0 || (nparams > 0 && params == NULL))
        return WD_ERR(WD_ERR_INVALID, "database: bad wd_db_exec arguments");
    PGresult *r = PQexecParams(c, sql, nparams, NULL, params, NULL, NULL, 0);
    wd_status st = wd_db_result_status(c, r);
    if (st == WD_OK && out)
        *out = r;
    else
        PQclear(r);
    return st;
}

wd_status wd_db_begin(PGconn *c)
{
    if (PQtransactionStatus(c) != PQTRANS_IDLE)
        return WD_ERR(WD_ERR_STATE, "database: BEGIN inside a transaction");
    return wd_db_exec(c, "BEGIN", 0, NULL, NULL);
}

wd_status wd_db_commit(PGconn *c)
{
    PGTransactionStatusType ts = PQtransactionStatus(c);
    if (ts == PQTRANS_IDLE)
        return WD_ERR(WD_ERR_STATE, "database: COMMIT without a transaction");
    if (ts == PQTRANS_INERROR) {
        wd_db_rollback(c);
        return WD_ERR(WD_ERR_STATE, "database: transaction had failed; rolled back");
    }
    PGresult *r = NULL;
    wd_status st = wd_db_exec(c, "COMMIT", 0, NULL, &r);
    if (st == WD_OK && strcmp(PQcmdStatus(r), "ROLLBACK") == 0)
        st = WD_ERR(WD_ERR_STATE, "database: transaction had failed; rolled back");
    PQclear(r);
    return st;
}

wd_status wd_db_rollback(PGconn *c)
{
    if (PQtransactionStatus(c) == PQTRANS_IDLE)
        return WD_OK;
    return wd_db_exec(c, "ROLLBACK", 0, NULL, NULL);
}
