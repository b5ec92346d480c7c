/* Throwaway PostgreSQL cluster for integration tests.
 *
 * wd_h_pg_start runs initdb into a fresh temp dir (as the `postgres` user when
 * the test runs as root, since initdb and postgres refuse root), starts the
 * postmaster directly through wd_h_spawn on a reserved loopback port with its
 * unix socket in the temp dir, waits until it accepts connections and creates
 * the database "warden". The postmaster is tracked by the harness, and a
 * cleanup is registered so a failing test still shuts it down (fast shutdown)
 * before the temp dir is removed.
 *
 * Not thread-safe: call from the test's main thread. The wd_h_pg must stay
 * valid until the process exits (use a static), because the harness cleanup
 * keeps a pointer to it. */
#ifndef WD_HARNESS_PG_H
#define WD_HARNESS_PG_H

#include <stdbool.h>
#include <sys/types.h>

typedef struct {
    pid_t pid;          /* postmaster pid, 0 when stopped */
    int port;           /* reserved loopback port */
    char dir[512];      /* temp dir: data/ inside, socket and log here */
    char data[600];     /* data directory */
    char log[600];      /* server log (initdb and postgres) */
    char conninfo[256]; /* "host=127.0.0.1 port=N dbname=warden user=postgres" */
    bool cleanup_registered;
} wd_h_pg;

/* Starts a fresh cluster. On false, an explanation went to stderr and any
 * process started has been stopped. pg must be zero-initialised the first
 * time; calling again after wd_h_pg_stop restarts the same cluster (same dir,
 * same port, data kept). */
bool wd_h_pg_start(wd_h_pg *pg);
/* Fast shutdown (SIGINT), waits for postmaster.pid to disappear. Idempotent. */
void wd_h_pg_stop(wd_h_pg *pg);

#endif
