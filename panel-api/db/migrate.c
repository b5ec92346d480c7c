/* Embedded schema migrations (see migrate.h).
 *
 * The migration bodies are trusted constant text compiled into the binary and
 * may hold several statements, so they go through PQexec (simple query
 * protocol); everything else uses parameters. The advisory lock is
 * session-level and released on every exit path (a lost connection releases
 * it on the server anyway). */
#include "migrate.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"
#include "migrations_table.h"
#include "util.h"

/* "warden" in ASCII: one lock id for the schema across every instance. */
#define MIGRATE_LOCK_KEY "131260414715246"

int wd_migrate_latest(void)
{
    int latest = 0;
    for (size_t i = 0; i < wd_migrations_count; i++)
        if (wd_migrations[i].version > latest)
            latest = wd_migrations[i].version;
    return latest;
}

static wd_status apply_one(PGconn *c, const wd_migration *m)
{
    wd_status st = wd_db_begin(c);
    if (st != WD_OK)
        return st;
    PGresult *r = PQexec(c, m->sql);
    st = wd_db_result_status(c, r);
    PQclear(r);
    if (st == WD_OK) {
        char version[16];
        snprintf(version, sizeof version, "%d", m->version);
        const char *params[] = {version, m->name};
        st = wd_db_exec(c, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", 2,
                        params, NULL);
    }
    if (st == WD_OK)
        st = wd_db_commit(c);
    if (st != WD_OK) {
        char msg[600];
        snprintf(msg, sizeof msg, "%s", wd_err_msg());
        wd_db_rollback(c);
        return WD_ERR(st, "migration %04d_%s failed: %s", m->version, m->name, msg);
    }
    wd_info("applied database migration %04d_%s", m->version, m->name);
    return WD_OK;
}

static bool is_applied(PGresult *r, int version)
{
    for (int i = 0; i < PQntuples(r); i++) {
        long v;
        if (wd_parse_long(PQgetvalue(r, i, 0), 0, 1000000000L, &v) && v == version)
            return true;
    }
    return false;
}

wd_status wd_migrate(PGconn *c, int *applied)
{
    if (applied)
        *applied = 0;
    /* Guard the embedded table's order: the build sorts by file name. */
    for (size_t i = 1; i < wd_migrations_count; i++)
        if (wd_migrations[i].version <= wd_migrations[i - 1].version)
            return WD_ERR(WD_ERR_INTERNAL, "embedded migrations out of order at %d",
                          wd_migrations[i].version);

    const char *key[] = {MIGRATE_LOCK_KEY};
    wd_status st = wd_db_exec(c, "SELECT pg_advisory_lock($1::bigint)", 1, key, NULL);
    if (st != WD_OK)
        return st;

    PGresult *r = NULL;
    int n = 0;
    st = wd_db_exec(c,
                    "CREATE TABLE IF NOT EXISTS schema_migrations ("
                    " version int PRIMARY KEY,"
                    " name text NOT NULL,"
                    " applied_at timestamptz NOT NULL DEFAULT now())",
                    0, NULL, NULL);
    if (st != WD_OK)
        goto out;
    st = wd_db_exec(c, "SELECT version FROM schema_migrations ORDER BY version", 0, NULL, &r);
    if (st != WD_OK)
        goto out;

    int latest = wd_migrate_latest();
    int have = 0;
    for (int i = 0; i < PQntuples(r); i++) {
        long v;
        if (wd_parse_long(PQgetvalue(r, i, 0), 0, 2147483647L, &v) && v > have)
            have = (int)v;
    }
    if (have > latest) {
        st = WD_ERR(WD_ERR_STATE,
                    "database schema version %d is newer than this warden-api (knows up to %d): "
                    "upgrade warden-api",
                    have, latest);
        goto out;
    }
    for (size_t i = 0; i < wd_migrations_count; i++) {
        if (is_applied(r, wd_migrations[i].version))
            continue;
        st = apply_one(c, &wd_migrations[i]);
        if (st != WD_OK)
            goto out;
        n++;
    }
out:
    PQclear(r);
    if (PQstatus(c) == CONNECTION_OK) {
        /* Keep the first error: the unlock result matters only on success,
         * and a failed unlock must not overwrite the message being returned. */
        char msg[600];
        snprintf(msg, sizeof msg, "%s", wd_err_msg());
        wd_status ust = wd_db_exec(c, "SELECT pg_advisory_unlock($1::bigint)", 1, key, NULL);
        if (st == WD_OK)
            st = ust;
        else if (ust != WD_OK)
            WD_ERR(st, "%s", msg);
    }
    if (applied)
        *applied = n;
    return st;
}
