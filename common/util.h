/* Small helpers used across components: clocks, ids, files. Thread-safe. */
#ifndef WD_UTIL_H
#define WD_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

#define WD_UUID_LEN 36 /* text form, without the terminating NUL */

/* Milliseconds / microseconds on the monotonic clock. */
int64_t wd_mono_ms(void);
int64_t wd_mono_us(void);
/* Wall-clock milliseconds since the epoch. */
int64_t wd_unix_ms(void);

/* A fresh random UUID in lower-case text form into out[WD_UUID_LEN + 1]. */
void wd_uuid_new(char out[WD_UUID_LEN + 1]);
/* True if s is a UUID in text form (any case). */
bool wd_uuid_valid(const char *s);
/* A fresh random 128-bit trace id as 32 hex digits into out[33]. */
void wd_trace_new(char out[33]);

/* mkdir -p with the given mode for created directories. */
wd_status wd_mkdir_p(const char *path, unsigned mode);
/* Reads a whole file (at most max bytes) into a NUL-terminated heap buffer
 * the caller frees. */
wd_status wd_read_file(const char *path, size_t max, char **out, size_t *len);
/* Writes a file atomically: temp file in the same directory, fsync, rename. */
wd_status wd_write_file_atomic(const char *path, const void *data, size_t len, unsigned mode);
/* rm -rf that never follows symlinks and never leaves the given tree. */
wd_status wd_remove_tree(const char *path);

/* Lower-case hex of n bytes into out (2n + 1 bytes, NUL-terminated). */
void wd_hex(const unsigned char *in, size_t n, char *out);
/* Parses a decimal integer within [min, max]; false on any junk. */
bool wd_parse_long(const char *s, long min, long max, long *out);
/* Parses "host:port" or "[v6]:port" (port 0..65535) into host (may come
 * out empty for ":port": the caller decides what that means) and port.
 * False on a missing or bad port or a host longer than n - 1. */
bool wd_parse_hostport(const char *s, char *host, size_t n, int *port);

#endif
