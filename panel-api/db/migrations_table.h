/* The embedded migrations table: generated at build time into the build tree
 * by embed_migrations.cmake from migrations/NNNN_name.sql, in version order.
 * Private to panel-api/db. */
#ifndef WD_MIGRATIONS_TABLE_H
#define WD_MIGRATIONS_TABLE_H

#include <stddef.h>

typedef struct {
    int version;
    const char *name; /* "initial" for 0001_initial.sql */
    const char *sql;
} wd_migration;

extern const wd_migration wd_migrations[];
extern const size_t wd_migrations_count;

#endif
