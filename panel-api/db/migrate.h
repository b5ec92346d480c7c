/* Versioned schema migrations for warden-api's PostgreSQL database.
 *
 * The SQL files in panel-api/db/migrations/NNNN_name.sql are embedded into
 * the binary at build time (embed_migrations.cmake), so a deployed
 * warden-api carries exactly the schema it was built for. wd_migrate runs at
 * start-up: several API instances may start at once, so it serialises on a
 * PostgreSQL advisory lock; each missing migration runs in its own
 * transaction together with its schema_migrations row, so a failure leaves
 * the database at the last good version.
 *
 * Writing a migration: add migrations/NNNN_lower_snake.sql with the next
 * number; never edit one that has shipped. It runs inside a transaction, so it
 * must not contain BEGIN/COMMIT or statements that cannot run in one
 * (CREATE INDEX CONCURRENTLY, VACUUM).
 *
 * Thread: any, on a connection the caller owns (e.g. from wd_db_acquire). */
#ifndef WD_MIGRATE_H
#define WD_MIGRATE_H

#include <libpq-fe.h>

#include "status.h"

/* Applies every embedded migration the database lacks, in version order.
 * *applied (may be NULL) receives how many were applied (0 when up to date).
 * WD_ERR_STATE when the database already has a version newer than this
 * binary knows; the mapped database status when a migration fails. */
wd_status wd_migrate(PGconn *c, int *applied);

/* The highest migration version embedded in this binary. */
int wd_migrate_latest(void);

#endif
