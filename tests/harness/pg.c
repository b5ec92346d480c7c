/* Throwaway PostgreSQL for integration tests (see pg.h).
 *
 * The postmaster is exec'd directly (no pg_ctl daemonising) so the harness
 * tracks its pid and kills its process group if a test aborts. As root the
 * server runs through `setpriv`, which changes uid and then execs, so the pid
 * wd_h_spawn returns is the postmaster itself and our SIGINT reaches it;
 * `runuser` would stay in between as a supervising parent. initdb is a
 * one-shot command, so `runuser` is fine there. */
#include "pg.h"

#include <errno.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static const char *bindir(void)
{
    const char *d = getenv("WARDEN_PG_BINDIR");
    return d && *d ? d : "/usr/lib/postgresql/15/bin";
}

static void dump_log(const wd_h_pg *pg)
{
    FILE *f = fopen(pg->log, "r");
    if (f == NULL)
        return;
    char line[512];
    fprintf(stderr, "---- %s ----\n", pg->log);
    while (fgets(line, sizeof line, f))
        fputs(line, stderr);
    fclose(f);
}

static void cleanup(void *arg)
{
    wd_h_pg_stop(arg);
}

/* Chowns path to the postgres user when we are root; no-op otherwise. */
static bool give_to_postgres(const char *path)
{
    if (geteuid() != 0)
        return true;
    struct passwd *pw = getpwnam("postgres");
    if (pw == NULL) {
        fprintf(stderr, "pg: running as root but there is no 'postgres' user\n");
        return false;
    }
    if (chown(path, pw->pw_uid, pw->pw_gid) != 0) {
        fprintf(stderr, "pg: chown %s: %s\n", path, strerror(errno));
        return false;
    }
    return true;
}

static bool run_initdb(wd_h_pg *pg)
{
    char initdb[600];
    snprintf(initdb, sizeof initdb, "%s/initdb", bindir());
    const char *base[] = {initdb,     "-D", pg->data, "-A",         "trust",     "-U",
                          "postgres", "-E", "UTF8",   "--locale=C", "--no-sync", NULL};
    const char *argv[20];
    int n = 0;
    if (geteuid() == 0) {
        argv[n++] = "runuser";
        argv[n++] = "-u";
        argv[n++] = "postgres";
        argv[n++] = "--";
    }
    for (int i = 0; base[i]; i++)
        argv[n++] = base[i];
    argv[n] = NULL;
    pid_t pid = wd_h_spawn(argv, NULL, pg->log);
    if (pid < 0)
        return false;
    int st = wd_h_wait_exit(pid, 60000);
    if (st == -1) {
        wd_h_stop(pid, SIGKILL, 1000);
        fprintf(stderr, "pg: initdb timed out\n");
        return false;
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "pg: initdb failed (status %d)\n", st);
        return false;
    }
    return true;
}

static bool spawn_postgres(wd_h_pg *pg)
{
    char bin[600], port[16];
    snprintf(bin, sizeof bin, "%s/postgres", bindir());
    snprintf(port, sizeof port, "%d", pg->port);
    const char *base[] = {bin,
                          "-D",
                          pg->data,
                          "-p",
                          port,
                          "-k",
                          pg->dir,
                          "-c",
                          "listen_addresses=127.0.0.1",
                          "-c",
                          "fsync=off",
                          "-c",
                          "synchronous_commit=off",
                          "-c",
                          "full_page_writes=off",
                          NULL};
    const char *argv[24];
    int n = 0;
    if (geteuid() == 0) {
        argv[n++] = "setpriv";
        argv[n++] = "--reuid=postgres";
        argv[n++] = "--regid=postgres";
        argv[n++] = "--init-groups";
        argv[n++] = "--";
    }
    for (int i = 0; base[i]; i++)
        argv[n++] = base[i];
    argv[n] = NULL;
    pg->pid = wd_h_spawn(argv, NULL, pg->log);
    return pg->pid > 0;
}

static bool wait_ready(wd_h_pg *pg, const char *admin)
{
    for (int t = 0; t < 30000; t += 20) {
        if (PQping(admin) == PQPING_OK)
            return true;
        int st = wd_h_wait_exit(pg->pid, 0);
        if (st != -1) {
            fprintf(stderr, "pg: postgres exited during startup (status %d)\n", st);
            pg->pid = 0;
            return false;
        }
        usleep(20000);
    }
    fprintf(stderr, "pg: postgres did not accept connections within 30 s\n");
    return false;
}

static bool create_db(const char *admin)
{
    PGconn *c = PQconnectdb(admin);
    bool ok = false;
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "pg: connect: %s", PQerrorMessage(c));
        goto out;
    }
    PGresult *r = PQexec(c, "CREATE DATABASE warden");
    ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        fprintf(stderr, "pg: CREATE DATABASE: %s", PQresultErrorMessage(r));
    PQclear(r);
out:
    PQfinish(c);
    return ok;
}

bool wd_h_pg_start(wd_h_pg *pg)
{
    bool fresh = pg->port == 0;
    if (fresh) {
        const char *d = wd_h_tmpdir("pg");
        if (d == NULL)
            return false;
        snprintf(pg->dir, sizeof pg->dir, "%s", d);
        snprintf(pg->data, sizeof pg->data, "%s/data", d);
        snprintf(pg->log, sizeof pg->log, "%s/postgres.log", d);
        pg->port = wd_h_free_port();
        snprintf(pg->conninfo, sizeof pg->conninfo,
                 "host=127.0.0.1 port=%d dbname=warden user=postgres", pg->port);
        if (!give_to_postgres(pg->dir) || !run_initdb(pg)) {
            dump_log(pg);
            return false;
        }
    }
    if (!pg->cleanup_registered) {
        wd_h_at_cleanup(cleanup, pg);
        pg->cleanup_registered = true;
    }
    char admin[256];
    snprintf(admin, sizeof admin,
             "host=127.0.0.1 port=%d dbname=postgres user=postgres connect_timeout=2", pg->port);
    if (!spawn_postgres(pg) || !wait_ready(pg, admin) || (fresh && !create_db(admin))) {
        dump_log(pg);
        wd_h_pg_stop(pg);
        return false;
    }
    return true;
}

void wd_h_pg_stop(wd_h_pg *pg)
{
    if (pg->pid <= 0)
        return;
    /* SIGINT is PostgreSQL's fast shutdown: abort sessions, checkpoint, exit.
     * wd_h_stop falls back to SIGKILL on the whole process group. */
    wd_h_stop(pg->pid, SIGINT, 15000);
    pg->pid = 0;
    char pidfile[700];
    snprintf(pidfile, sizeof pidfile, "%s/postmaster.pid", pg->data);
    if (!WD_H_WAIT(access(pidfile, F_OK) != 0, 10000)) {
        /* Only after a SIGKILL: the file is stale; remove it so a restart works. */
        unlink(pidfile);
    }
}
