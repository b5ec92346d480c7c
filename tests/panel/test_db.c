/* Integration tests for panel-api/db (warden::db): migrations, the
 * connection pool and error mapping, against a real throwaway PostgreSQL
 * started by tests/harness/pg.c. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db.h"
#include "harness.h"
#include "migrate.h"
#include "pg.h"
#include "util.h"

static wd_h_pg pg;             /* static: the harness cleanup keeps a pointer to it */
static PGconn *admin;          /* a connection outside any pool, for poking the server */
static int fresh_applied = -1; /* migrations applied to the empty database */

static int suite_init(void)
{
    if (!wd_h_pg_start(&pg))
        return -1;
    admin = PQconnectdb(pg.conninfo);
    return PQstatus(admin) == CONNECTION_OK ? 0 : -1;
}

/* Later suites need the cluster the first one started. */
static int need_pg(void)
{
    return admin ? 0 : -1;
}

static int suite_clean(void)
{
    PQfinish(admin);
    admin = NULL;
    wd_h_pg_stop(&pg);
    return 0;
}

static wd_db *make_pool(int size, int acquire_timeout_ms, int statement_timeout_ms)
{
    wd_db_cfg cfg = wd_db_cfg_defaults();
    cfg.conninfo = pg.conninfo;
    cfg.size = size;
    cfg.acquire_timeout_ms = acquire_timeout_ms;
    cfg.statement_timeout_ms = statement_timeout_ms;
    wd_db *db = NULL;
    CU_ASSERT_EQUAL_FATAL(wd_db_create(&db, &cfg), WD_OK);
    return db;
}

/* First column of the first row of a parameterless query on the admin
 * connection, as a long (-1 on error or NULL). */
static long admin_long(const char *sql, const char *param)
{
    const char *params[] = {param};
    PGresult *r = NULL;
    long v = -1;
    if (wd_db_exec(admin, sql, param ? 1 : 0, params, &r) == WD_OK && PQntuples(r) == 1 &&
        !PQgetisnull(r, 0, 0))
        wd_parse_long(PQgetvalue(r, 0, 0), -1, 1L << 40, &v);
    PQclear(r);
    return v;
}

/* ------------------------------------------------------------ migrations */

static void test_migrate_fresh(void)
{
    CU_ASSERT_EQUAL(admin_long("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", NULL),
                    0);
    wd_db *db = make_pool(2, 5000, 0);
    PGconn *c = NULL;
    CU_ASSERT_EQUAL_FATAL(wd_db_acquire(db, &c), WD_OK);
    int applied = -1;
    wd_status st = wd_migrate(c, &applied);
    if (st != WD_OK)
        fprintf(stderr, "migrate: %s\n", wd_err_msg());
    CU_ASSERT_EQUAL(st, WD_OK);
    CU_ASSERT(applied >= 1);
    fresh_applied = applied;
    CU_ASSERT_EQUAL(wd_migrate_latest(), 1);
    CU_ASSERT_EQUAL(admin_long("SELECT max(version) FROM schema_migrations", NULL),
                    wd_migrate_latest());
    const char *tables[] = {"users",     "recovery_codes", "refresh_families", "refresh_tokens",
                            "api_keys",  "nodes",          "node_join_tokens", "allocations",
                            "templates", "servers",        "server_variables", "subusers",
                            "audit_log", "schedules",      "schedule_tasks",   "backups"};
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++)
        CU_ASSERT_EQUAL(admin_long("SELECT count(*) FROM pg_tables WHERE schemaname = 'public' "
                                   "AND tablename = $1",
                                   tables[i]),
                        1);
    /* The advisory lock is released. */
    CU_ASSERT_EQUAL(admin_long("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'", NULL),
                    0);
    wd_db_release(db, c);
    wd_db_destroy(&db);
    CU_ASSERT_PTR_NULL(db);
}

static void test_migrate_idempotent(void)
{
    wd_db *db = make_pool(1, 5000, 0);
    PGconn *c = NULL;
    CU_ASSERT_EQUAL_FATAL(wd_db_acquire(db, &c), WD_OK);
    int applied = -1;
    CU_ASSERT_EQUAL(wd_migrate(c, &applied), WD_OK);
    CU_ASSERT_EQUAL(applied, 0);
    CU_ASSERT_EQUAL(wd_migrate(c, NULL), WD_OK);
    wd_db_release(db, c);
    wd_db_destroy(&db);
}

static void test_migrate_refuses_newer(void)
{
    CU_ASSERT_EQUAL_FATAL(wd_db_exec(admin,
                                     "INSERT INTO schema_migrations (version, name) "
                                     "VALUES (9999, 'from_the_future')",
                                     0, NULL, NULL),
                          WD_OK);
    wd_db *db = make_pool(1, 5000, 0);
    PGconn *c = NULL;
    CU_ASSERT_EQUAL_FATAL(wd_db_acquire(db, &c), WD_OK);
    int applied = -1;
    CU_ASSERT_EQUAL(wd_migrate(c, &applied), WD_ERR_STATE);
    CU_ASSERT_EQUAL(applied, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(wd_err_msg(), "database schema version 9999 is newer"));
    CU_ASSERT_PTR_NOT_NULL(strstr(wd_err_msg(), "knows up to 1"));
    CU_ASSERT_PTR_NOT_NULL(strstr(wd_err_msg(), "upgrade warden-api"));
    CU_ASSERT_EQUAL(admin_long("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'", NULL),
                    0);
    CU_ASSERT_EQUAL(
        wd_db_exec(admin, "DELETE FROM schema_migrations WHERE version = 9999", 0, NULL, NULL),
        WD_OK);
    CU_ASSERT_EQUAL(wd_migrate(c, &applied), WD_OK);
    CU_ASSERT_EQUAL(applied, 0);
    wd_db_release(db, c);
    wd_db_destroy(&db);
}

/* Several API instances starting at once: the advisory lock makes exactly
 * one of them apply the migrations. */
#define NRACERS 4
static char race_conninfo[300];
static atomic_int race_applied, race_failures;

static void *race_migrate(void *arg)
{
    (void)arg;
    PGconn *c = PQconnectdb(race_conninfo);
    int applied = 0;
    if (PQstatus(c) != CONNECTION_OK || wd_migrate(c, &applied) != WD_OK) {
        fprintf(stderr, "racer: %s %s\n", PQerrorMessage(c), wd_err_msg());
        atomic_fetch_add(&race_failures, 1);
    }
    atomic_fetch_add(&race_applied, applied);
    PQfinish(c);
    return NULL;
}

static void test_migrate_concurrent(void)
{
    CU_ASSERT_EQUAL_FATAL(wd_db_exec(admin, "CREATE DATABASE warden_race", 0, NULL, NULL), WD_OK);
    snprintf(race_conninfo, sizeof race_conninfo,
             "host=127.0.0.1 port=%d dbname=warden_race user=postgres", pg.port);
    pthread_t th[NRACERS];
    for (int i = 0; i < NRACERS; i++)
        CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, race_migrate, NULL), 0);
    for (int i = 0; i < NRACERS; i++)
        pthread_join(th[i], NULL);
    CU_ASSERT_EQUAL(atomic_load(&race_failures), 0);
    CU_ASSERT_EQUAL(atomic_load(&race_applied), fresh_applied);
}

/* ------------------------------------------------------------------ pool */

#define NTHREADS 16
#define ITERS 20
static atomic_int pool_failures;

static void *hammer(void *arg)
{
    wd_db *db = arg;
    for (int i = 0; i < ITERS; i++) {
        PGconn *c = NULL;
        if (wd_db_acquire(db, &c) != WD_OK) {
            fprintf(stderr, "acquire: %s\n", wd_err_msg());
            atomic_fetch_add(&pool_failures, 1);
            continue;
        }
        PGresult *r = NULL;
        const char *p[] = {"21"};
        if (wd_db_exec(c, "SELECT $1::int * 2, pg_sleep(0.001)", 1, p, &r) != WD_OK ||
            strcmp(PQgetvalue(r, 0, 0), "42") != 0)
            atomic_fetch_add(&pool_failures, 1);
        PQclear(r);
        wd_db_release(db, c);
    }
    return NULL;
}

static void test_pool_concurrent(void)
{
    wd_db *db = make_pool(4, 10000, 0);
    pthread_t th[NTHREADS];
    atomic_store(&pool_failures, 0);
    for (int i = 0; i < NTHREADS; i++)
        CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, hammer, db), 0);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);
    CU_ASSERT_EQUAL(atomic_load(&pool_failures), 0);
    wd_db_stats s;
    wd_db_stats_get(db, &s);
    CU_ASSERT_EQUAL(s.size, 4);
    CU_ASSERT(s.open >= 1 && s.open <= 4);
    CU_ASSERT_EQUAL(s.in_use, 0);
    CU_ASSERT_EQUAL(s.acquires, (uint64_t)NTHREADS * ITERS);
    CU_ASSERT(s.waits > 0);
    CU_ASSERT_EQUAL(s.timeouts, 0);
    CU_ASSERT(s.acquire_us_total > 0);
    /* The server saw at most 4 connections from this pool. */
    CU_ASSERT(admin_long("SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                         "'warden-api'",
                         NULL) <= 4);
    wd_db_destroy(&db);
}

static void test_pool_exhausted(void)
{
    wd_db *db = make_pool(2, 100, 0);
    PGconn *a = NULL, *b = NULL, *c = NULL;
    CU_ASSERT_EQUAL_FATAL(wd_db_acquire(db, &a), WD_OK);
    CU_ASSERT_EQUAL_FATAL(wd_db_acquire(db, &b), WD_OK);
    int64_t t0 = wd_mono_ms();
    CU_ASSERT_EQUAL(wd_db_acquire(db, &c), WD_ERR_TIMEOUT);
    int64_t took = wd_mono_ms() - t0;
    CU_ASSERT(took >= 90 && took < 1000);
    CU_ASSERT_PTR_NULL(c);
    CU_ASSERT_PTR_NOT_NULL(strstr(wd_err_msg(), "database pool exhausted"));
    wd_db_stats s;
    wd_db_stats_get(db, &s);
    CU_ASSERT_EQUAL(s.timeouts, 1);
    CU_ASSERT_EQUAL(s.in_use, 2);
    wd_db_release(db, a);
    CU_ASSERT_EQUAL(wd_db_acquire(db, &c), WD_OK);
    CU_ASSERT_PTR_EQUAL(c, a);
    wd_db_release(db, b);
    wd_db_release(db, c);
    wd_db_destroy(&db);
}

static bool backend_gone(int pid)
{
    char p[16];
    snprintf(p, sizeof p, "%d", pid);
    return admin_long("SELECT count(*) FROM pg_stat_activity WHERE pid = $1::int", p) == 0;
}

static void terminate(int pid)
{
    char p[16];
    snprintf(p, sizeof p, "%d", pid);
    const char *params[] = {p};
    CU_ASSERT_EQUAL(wd_db_exec(admin, "SELECT pg_terminate_backend($1::int)", 1, params, NULL),
                    WD_OK);
    CU_ASSERT(WD_H_WAIT(backend_gone(pid), 5000));
}

/* One pooled connection's backend pid, released again. */
static int pooled_pid(wd_db *db)
{
    PGconn *c = NULL;
    if (wd_db_acquire(db, &c) != WD_OK)
        return -1;
    int pid = PQbackendPID(c);
    wd_db_release(db, c);
    return pid;
}

static void test_pool_repairs_killed_connection(void)
{
    /* Killed while idle, found by the round-trip check (validate_idle_ms 0:
     * deterministic even while the backend is still exiting). */
    wd_db *db = NULL;
    wd_db_cfg cfg = wd_db_cfg_defaults();
    cfg.conninfo = pg.conninfo;
    cfg.size = 1;
    cfg.validate_idle_ms = 0;
    CU_ASSERT_EQUAL_FATAL(wd_db_create(&db, &cfg), WD_OK);
    int pid1 = pooled_pid(db);
    CU_ASSERT(pid1 > 0);
    terminate(pid1);
    PGconn *c = NULL;
    CU_ASSERT_EQUAL_FATAL(wd_db_acquire(db, &c), WD_OK);
    CU_ASSERT_EQUAL(wd_db_exec(c, "SELECT 1", 0, NULL, NULL), WD_OK);
    int pid2 = PQbackendPID(c);
    CU_ASSERT(pid2 > 0 && pid2 != pid1);

    /* Killed while in use: the query reports UNAVAILABLE, and the connection
     * is repaired on the next acquire. */
    terminate(pid2);
    CU_ASSERT_EQUAL(wd_db_exec(c, "SELECT 1", 0, NULL, NULL), WD_ERR_UNAVAILABLE);
    wd_db_release(db, c);
    CU_ASSERT_EQUAL_FATAL(wd_db_acquire(db, &c), WD_OK);
    CU_ASSERT_EQUAL(wd_db_exec(c, "SELECT 1", 0, NULL, NULL), WD_OK);
    CU_ASSERT_NOT_EQUAL(PQbackendPID(c), pid2);
    wd_db_release(db, c);

    wd_db_stats s;
    wd_db_stats_get(db, &s);
    CU_ASSERT_EQUAL(s.reconnects, 2);
    CU_ASSERT_EQUAL(s.open, 1);
    CU_ASSERT_EQUAL(wd_db_ping(db), WD_OK);
    wd_db_destroy(&db);

    /* Without round trips (validate_idle_ms -1), the socket check alone
     * notices a backend that has finished exiting. */
    cfg.validate_idle_ms = -1;
    CU_ASSERT_EQUAL_FATAL(wd_db_create(&db, &cfg), WD_OK);
    int pid3 = pooled_pid(db);
    terminate(pid3);
    usleep(200 * 1000); /* its exit (and the EOF) follows its pg_stat_activity exit */
    CU_ASSERT_EQUAL_FATAL(wd_db_acquire(db, &c), WD_OK);
    CU_ASSERT_EQUAL(wd_db_exec(c, "SELECT 1", 0, NULL, NULL), WD_OK);
    CU_ASSERT_NOT_EQUAL(PQbackendPID(c), pid3);
    wd_db_release(db, c);
    wd_db_stats_get(db, &s);
    CU_ASSERT_EQUAL(s.reconnects, 1);
    wd_db_destroy(&db);
}

static void test_release_rolls_back(void)
{
    wd_db *db = make_pool(1, 2000, 0);
    PGconn *c = NULL;
    CU_ASSERT_EQUAL_FATAL(wd_db_acquire(db, &c), WD_OK);
    CU_ASSERT_EQUAL(wd_db_begin(c), WD_OK);
    CU_ASSERT_EQUAL(wd_db_begin(c), WD_ERR_STATE);
    CU_ASSERT_EQUAL(wd_db_exec(c,
                               "INSERT INTO templates (slug, name, body) "
                               "VALUES ('forgotten', 'Forgotten', '{}')",
                               0, NULL, NULL),
                    WD_OK);
    wd_db_release(db, c); /* forgot to commit */

    CU_ASSERT_EQUAL_FATAL(wd_db_acquire(db, &c), WD_OK);
    CU_ASSERT_EQUAL(PQtransactionStatus(c), PQTRANS_IDLE);
    CU_ASSERT_EQUAL(admin_long("SELECT count(*) FROM templates WHERE slug = 'forgotten'", NULL), 0);

    /* A failed transaction is rolled back too. */
    CU_ASSERT_EQUAL(wd_db_begin(c), WD_OK);
    CU_ASSERT_EQUAL(wd_db_exec(c, "SELECT 1/0", 0, NULL, NULL), WD_ERR_INVALID);
    CU_ASSERT_EQUAL(PQtransactionStatus(c), PQTRANS_INERROR);
    wd_db_release(db, c);
    CU_ASSERT_EQUAL_FATAL(wd_db_acquire(db, &c), WD_OK);
    CU_ASSERT_EQUAL(PQtransactionStatus(c), PQTRANS_IDLE);

    /* COMMIT of a failed transaction is not reported as success. */
    CU_ASSERT_EQUAL(wd_db_begin(c), WD_OK);
    CU_ASSERT_EQUAL(wd_db_exec(c, "SELECT 1/0", 0, NULL, NULL), WD_ERR_INVALID);
    CU_ASSERT_EQUAL(wd_db_commit(c), WD_ERR_STATE);
    CU_ASSERT_EQUAL(PQtransactionStatus(c), PQTRANS_IDLE);
    CU_ASSERT_EQUAL(wd_db_commit(c), WD_ERR_STATE);

    /* And a committed one is kept. */
    CU_ASSERT_EQUAL(wd_db_begin(c), WD_OK);
    CU_ASSERT_EQUAL(wd_db_exec(c,
                               "INSERT INTO templates (slug, name, body) "
                               "VALUES ('kept', 'Kept', '{}')",
                               0, NULL, NULL),
                    WD_OK);
    CU_ASSERT_EQUAL(wd_db_commit(c), WD_OK);
    CU_ASSERT_EQUAL(admin_long("SELECT count(*) FROM templates WHERE slug = 'kept'", NULL), 1);
    wd_db_release(db, c);

    wd_db_stats s;
    wd_db_stats_get(db, &s);
    CU_ASSERT_EQUAL(s.rollbacks, 2);
    wd_db_destroy(&db);
}

/* ---------------------------------------------------------- error mapping */

static wd_status insert_user(PGconn *c, const char *name, const char *email, const char *role)
{
    const char *p[] = {name, email, role};
    return wd_db_exec(c,
                      "INSERT INTO users (username, email, password_hash, role) "
                      "VALUES ($1, $2, 'x', $3)",
                      3, p, NULL);
}

static void test_error_mapping(void)
{
    wd_db *db = make_pool(2, 2000, 200);
    PGconn *c = NULL;
    CU_ASSERT_EQUAL_FATAL(wd_db_acquire(db, &c), WD_OK);

    CU_ASSERT_EQUAL(insert_user(c, "alice", "alice@example.org", "admin"), WD_OK);
    CU_ASSERT_EQUAL(insert_user(c, "alice", "other@example.org", "user"), WD_ERR_EXISTS);
    CU_ASSERT_PTR_NOT_NULL(strstr(wd_err_msg(), "users_username_key"));
    CU_ASSERT_PTR_NOT_NULL(strstr(wd_err_msg(), "23505"));
    CU_ASSERT_EQUAL(insert_user(c, "bob", "alice@example.org", "user"), WD_ERR_EXISTS);
    /* check constraints: closed sets, lower-case names */
    CU_ASSERT_EQUAL(insert_user(c, "carol", "carol@example.org", "root"), WD_ERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(wd_err_msg(), "users_role_check"));
    CU_ASSERT_EQUAL(insert_user(c, "Carol", "carol@example.org", "user"), WD_ERR_INVALID);
    CU_ASSERT_EQUAL(insert_user(c, "carol", "Carol@example.org", "user"), WD_ERR_INVALID);
    /* not-null */
    CU_ASSERT_EQUAL(insert_user(c, "carol", NULL, "user"), WD_ERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(wd_err_msg(), "23502"));

    /* foreign key: a subuser of a server that does not exist */
    PGresult *r = NULL;
    CU_ASSERT_EQUAL_FATAL(wd_db_exec(c, "SELECT id FROM users WHERE username = $1", 1,
                                     (const char *const[]){"alice"}, &r),
                          WD_OK);
    CU_ASSERT_EQUAL_FATAL(PQntuples(r), 1);
    char uid[WD_UUID_LEN + 1];
    snprintf(uid, sizeof uid, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    char missing[WD_UUID_LEN + 1];
    wd_uuid_new(missing);
    const char *sp[] = {missing, uid};
    CU_ASSERT_EQUAL(
        wd_db_exec(c, "INSERT INTO subusers (server_id, user_id) VALUES ($1, $2)", 2, sp, NULL),
        WD_ERR_NOT_FOUND);

    /* invalid text for a type (22P02) and out-of-range values */
    const char *bad[] = {"not-a-uuid"};
    CU_ASSERT_EQUAL(wd_db_exec(c, "SELECT * FROM users WHERE id = $1", 1, bad, NULL),
                    WD_ERR_INVALID);
    CU_ASSERT_EQUAL(wd_db_exec(c,
                               "INSERT INTO nodes (name, fqdn, memory_mb, disk_mb) "
                               "VALUES ('n1', 'n1.example.org', 1024, 10240)",
                               0, NULL, NULL),
                    WD_OK);
    const char *ports[] = {"70000"};
    CU_ASSERT_EQUAL(wd_db_exec(c,
                               "INSERT INTO allocations (node_id, ip, port) "
                               "SELECT id, '127.0.0.1', $1 FROM nodes WHERE name = 'n1'",
                               1, ports, NULL),
                    WD_ERR_INVALID);
    const char *ips[] = {"999.1.1.1"};
    CU_ASSERT_EQUAL(wd_db_exec(c,
                               "INSERT INTO allocations (node_id, ip, port) "
                               "SELECT id, $1, 25565 FROM nodes WHERE name = 'n1'",
                               1, ips, NULL),
                    WD_ERR_INVALID);

    /* statement_timeout (200 ms here) */
    CU_ASSERT_EQUAL(wd_db_exec(c, "SELECT pg_sleep(2)", 0, NULL, NULL), WD_ERR_TIMEOUT);

    /* a syntax error is our bug, not the caller's */
    CU_ASSERT_EQUAL(wd_db_exec(c, "SELEC 1", 0, NULL, NULL), WD_ERR_INTERNAL);
    CU_ASSERT_EQUAL(wd_db_exec(c, "SELECT 1", 1, NULL, NULL), WD_ERR_INVALID);

    /* serialization failure: write skew between two serializable transactions */
    PGconn *d = NULL;
    CU_ASSERT_EQUAL_FATAL(wd_db_acquire(db, &d), WD_OK);
    const char *ser = "BEGIN ISOLATION LEVEL SERIALIZABLE";
    const char *cnt = "SELECT count(*) FROM nodes WHERE maintenance";
    CU_ASSERT_EQUAL(wd_db_exec(c, ser, 0, NULL, NULL), WD_OK);
    CU_ASSERT_EQUAL(wd_db_exec(d, ser, 0, NULL, NULL), WD_OK);
    CU_ASSERT_EQUAL(wd_db_exec(c, cnt, 0, NULL, NULL), WD_OK);
    CU_ASSERT_EQUAL(wd_db_exec(d, cnt, 0, NULL, NULL), WD_OK);
    CU_ASSERT_EQUAL(wd_db_exec(c,
                               "INSERT INTO nodes (name, fqdn, memory_mb, disk_mb, maintenance) "
                               "VALUES ('s1', 's1', 1, 1, true)",
                               0, NULL, NULL),
                    WD_OK);
    CU_ASSERT_EQUAL(wd_db_exec(d,
                               "INSERT INTO nodes (name, fqdn, memory_mb, disk_mb, maintenance) "
                               "VALUES ('s2', 's2', 1, 1, true)",
                               0, NULL, NULL),
                    WD_OK);
    CU_ASSERT_EQUAL(wd_db_commit(c), WD_OK);
    CU_ASSERT_EQUAL(wd_db_commit(d), WD_ERR_AGAIN);
    CU_ASSERT_PTR_NOT_NULL(strstr(wd_err_msg(), "40001"));
    wd_db_release(db, d);

    wd_db_release(db, c);
    wd_db_destroy(&db);
}

static void test_parameters_are_data(void)
{
    wd_db *db = make_pool(1, 2000, 0);
    PGconn *c = NULL;
    CU_ASSERT_EQUAL_FATAL(wd_db_acquire(db, &c), WD_OK);
    const char *evil_name = "'; DROP TABLE users; --";
    const char *evil_desc = "Robert'); DROP TABLE servers;-- \\ \" $1 %s %n \xc3\xa9 $$ E'\\x00'";
    const char *p[] = {evil_name, evil_desc};
    PGresult *r = NULL;
    CU_ASSERT_EQUAL_FATAL(wd_db_exec(c,
                                     "INSERT INTO templates (slug, name, description, body) "
                                     "VALUES ('evil', $1, $2, '{}') RETURNING id",
                                     2, p, &r),
                          WD_OK);
    char id[WD_UUID_LEN + 1];
    snprintf(id, sizeof id, "%s", PQgetvalue(r, 0, 0));
    CU_ASSERT(wd_uuid_valid(id));
    PQclear(r);

    const char *q[] = {id};
    CU_ASSERT_EQUAL_FATAL(
        wd_db_exec(c, "SELECT name, description FROM templates WHERE id = $1", 1, q, &r), WD_OK);
    CU_ASSERT_EQUAL_FATAL(PQntuples(r), 1);
    CU_ASSERT_STRING_EQUAL(PQgetvalue(r, 0, 0), evil_name);
    CU_ASSERT_STRING_EQUAL(PQgetvalue(r, 0, 1), evil_desc);
    PQclear(r);

    /* The classic injection in a lookup finds nothing rather than everything. */
    const char *inj[] = {"x' OR '1'='1"};
    CU_ASSERT_EQUAL(wd_db_exec(c, "SELECT * FROM users WHERE username = $1", 1, inj, &r), WD_OK);
    CU_ASSERT_EQUAL(PQntuples(r), 0);
    PQclear(r);

    CU_ASSERT_EQUAL(admin_long("SELECT count(*) FROM pg_tables WHERE schemaname = 'public' "
                               "AND tablename IN ('users', 'servers')",
                               NULL),
                    2);
    CU_ASSERT(admin_long("SELECT count(*) FROM users", NULL) >= 1);
    wd_db_release(db, c);
    wd_db_destroy(&db);
}

static void test_refresh_rotation_invariant(void)
{
    /* At most one live token per family: a double rotation loses. */
    PGresult *r = NULL;
    CU_ASSERT_EQUAL_FATAL(wd_db_exec(admin,
                                     "INSERT INTO refresh_families (user_id) "
                                     "SELECT id FROM users WHERE username = 'alice' "
                                     "RETURNING id",
                                     0, NULL, &r),
                          WD_OK);
    char fam[WD_UUID_LEN + 1];
    snprintf(fam, sizeof fam, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    const char *sql = "INSERT INTO refresh_tokens (family_id, token_hash, expires_at) "
                      "VALUES ($1, $2, now() + interval '1 day')";
    const char *t1[] = {fam, "h1"}, *t2[] = {fam, "h2"};
    CU_ASSERT_EQUAL(wd_db_exec(admin, sql, 2, t1, NULL), WD_OK);
    CU_ASSERT_EQUAL(wd_db_exec(admin, sql, 2, t2, NULL), WD_ERR_EXISTS);
    CU_ASSERT_EQUAL(wd_db_exec(admin,
                               "UPDATE refresh_tokens SET used_at = now() "
                               "WHERE token_hash = 'h1'",
                               0, NULL, NULL),
                    WD_OK);
    CU_ASSERT_EQUAL(wd_db_exec(admin, sql, 2, t2, NULL), WD_OK);
    /* Deleting the user cascades to families and tokens. */
    CU_ASSERT_EQUAL(wd_db_exec(admin, "DELETE FROM users WHERE username = 'alice'", 0, NULL, NULL),
                    WD_OK);
    CU_ASSERT_EQUAL(admin_long("SELECT count(*) FROM refresh_tokens", NULL), 0);
}

static void test_ping_and_bad_config(void)
{
    wd_db *db = make_pool(1, 2000, 0);
    CU_ASSERT_EQUAL(wd_db_ping(db), WD_OK);
    wd_db_destroy(&db);
    wd_db_destroy(&db); /* NULL-safe */

    wd_db_cfg cfg = wd_db_cfg_defaults();
    cfg.conninfo = "host=127.0.0.1 port=1 dbname=warden user=postgres connect_timeout=2";
    CU_ASSERT_EQUAL_FATAL(wd_db_create(&db, &cfg), WD_OK); /* lazy: no connection yet */
    CU_ASSERT_EQUAL(wd_db_ping(db), WD_ERR_UNAVAILABLE);
    wd_db_stats s;
    wd_db_stats_get(db, &s);
    CU_ASSERT_EQUAL(s.open, 0);
    CU_ASSERT_EQUAL(s.in_use, 0);
    wd_db_destroy(&db);

    cfg.conninfo = "this is = not a conninfo '";
    CU_ASSERT_EQUAL(wd_db_create(&db, &cfg), WD_ERR_INVALID);
    CU_ASSERT_PTR_NULL(db);
    cfg.conninfo = pg.conninfo;
    cfg.size = 0;
    CU_ASSERT_EQUAL(wd_db_create(&db, &cfg), WD_ERR_INVALID);
}

int main(void)
{
    static const wd_h_case migrate_cases[] = {
        {"applies on an empty database", test_migrate_fresh},
        {"is idempotent", test_migrate_idempotent},
        {"refuses a newer schema", test_migrate_refuses_newer},
        {"concurrent start-ups apply once", test_migrate_concurrent},
        {NULL, NULL},
    };
    static const wd_h_case pool_cases[] = {
        {"16 threads share 4 connections", test_pool_concurrent},
        {"exhaustion times out", test_pool_exhausted},
        {"a killed connection is repaired", test_pool_repairs_killed_connection},
        {"release rolls back a forgotten transaction", test_release_rolls_back},
        {"ping and bad configuration", test_ping_and_bad_config},
        {NULL, NULL},
    };
    static const wd_h_case query_cases[] = {
        {"errors map to statuses", test_error_mapping},
        {"parameters are data, never SQL", test_parameters_are_data},
        {"one live refresh token per family", test_refresh_rotation_invariant},
        {NULL, NULL},
    };
    /* One cluster for the whole file: the suites run in order and share it. */
    wd_h_suite("db: migrations", suite_init, NULL, migrate_cases);
    wd_h_suite("db: pool", need_pg, NULL, pool_cases);
    wd_h_suite("db: queries", need_pg, suite_clean, query_cases);
    return wd_h_run();
}
