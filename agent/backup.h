/* Backups of one server's directory: gzip'd tar archives written and read
 * with libarchive (docs/backups.md).
 *
 * These are the blocking file operations only; the server actor (server.c)
 * decides when they may run and runs create and restore on the agent's job
 * queue. Every function here is thread-safe, keeps no state, and confines
 * itself to the directories it is given:
 *
 *   create   walks the server dir without following symlinks (they are
 *            stored as symlinks; files are opened O_NOFOLLOW and checked
 *            after opening, so a game cannot swap in a link to a file of the
 *            host), writes DIR/.<id>.tar.gz.tmp, then renames it to
 *            DIR/<id>.tar.gz and records its sha256 in DIR/<id>.sha256.
 *   restore  checks the whole archive first (paths, entry types, sizes,
 *            checksum) and changes nothing if any entry is unsafe; then
 *            extracts with libarchive's SECURE_NODOTDOT, SECURE_SYMLINKS and
 *            SECURE_NOABSOLUTEPATHS into the server dir only. */
#ifndef WD_BACKUP_H
#define WD_BACKUP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

#define WD_BACKUP_MAX_IGNORE 256   /* ignore patterns per request */
#define WD_BACKUP_MAX_PATTERN 1024 /* bytes per pattern */

/* True if id is a UUID; writes its lower-case form to out[37]. Backup ids
 * become file names, so nothing else is accepted. */
bool wd_backup_id_norm(const char *id, char out[37]);

typedef struct {
    const char *server_dir; /* the game's files (absolute, no symlinks) */
    const char *backup_dir; /* where this server's archives live */
    const char *backup_id;  /* normalized UUID */
    char *const *ignore;    /* fnmatch patterns relative to server_dir */
    size_t n_ignore;
    /* Checked between files and blocks; true aborts with WD_ERR_CLOSED.
     * May be NULL. */
    const atomic_bool *cancel, *cancel2;
} wd_backup_create_cfg;

/* Writes the archive; *size and sha256 (64 hex digits + NUL) describe the
 * .tar.gz file. WD_ERR_EXISTS if the id exists. On any failure nothing is
 * left behind. */
wd_status wd_backup_create(const wd_backup_create_cfg *cfg, uint64_t *size, char sha256[65]);

typedef struct {
    const char *server_dir;
    const char *backup_dir;
    const char *backup_id;
    bool truncate;      /* delete the server dir's contents first */
    int uid, gid;       /* owner of restored files; -1: the agent's own */
    uint64_t max_bytes; /* refuse archives that expand beyond this; 0: no limit */
} wd_backup_restore_cfg;

/* Restores an archive into server_dir. Must run on a thread that may change
 * its own working directory (it unshares CLONE_FS and enters server_dir so
 * that every archive path stays relative). *skipped counts entries of types
 * other than file, directory and symlink, which are left out. */
wd_status wd_backup_restore(const wd_backup_restore_cfg *cfg, size_t *skipped);

typedef struct {
    char id[37];
    uint64_t size;
    char sha256[65]; /* "" if unknown */
    int64_t created_unix;
} wd_backup_info;

/* The complete backups in backup_dir, oldest first. *out is the caller's
 * (free()). A missing directory is an empty list. */
wd_status wd_backup_list(const char *backup_dir, wd_backup_info **out, size_t *n);

/* True if something already holds backup id's archive name in dir (one
 * lstat: cheap enough for the server actor). A racing create is still
 * refused by wd_backup_create itself. */
bool wd_backup_exists(const char *dir, const char *id);

/* Removes one backup. WD_ERR_NOT_FOUND if there is none with that id. Does
 * not fsync dir, so that it may run on the server actor's thread. */
wd_status wd_backup_delete(const char *backup_dir, const char *backup_id);

#endif
