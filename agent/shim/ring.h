/* The shim's console log: the game's pseudo-terminal output split into
 * numbered lines and kept in a ring bounded by bytes.
 *
 * Bytes from the pty master go in through wd_ring_feed(). A '\n' ends a line
 * and the '\r's before it are removed (the pty's ONLCR turns a game's "\r\n"
 * into "\r\r\n"). A line longer than max_line is cut into pieces flagged
 * WD_SHIM_LINE_CUT; nothing is lost. Bytes of a line without
 * its newline wait in a small pending buffer until the supervisor decides the
 * game went quiet and calls wd_ring_flush_partial(), which stores them as a
 * line flagged WD_SHIM_LINE_PARTIAL (so prompts such as "> " show up).
 *
 * Every stored line gets the next sequence number, starting at 1. Each line
 * is charged its length plus WD_RING_LINE_COST bookkeeping bytes against the
 * byte budget; when a new line does not fit, the oldest lines are evicted.
 *
 * Single-threaded: owned and used by the shim's event loop only. */
#ifndef WD_SHIM_RING_H
#define WD_SHIM_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

/* Bytes charged per line on top of its text (the index entry). */
#define WD_RING_LINE_COST 8u
/* Largest max_line the ring accepts (a line must fit a LINES frame). */
#define WD_RING_MAX_LINE (1024u * 1024u - 64u)

typedef struct wd_ring wd_ring;

/* Creates a ring holding at most max_bytes (lines + bookkeeping) whose lines
 * are at most max_line bytes. max_bytes must be >= 2 * (max_line + 2 +
 * WD_RING_LINE_COST) so a cut line always fits. */
wd_status wd_ring_create(wd_ring **out, size_t max_bytes, size_t max_line);
/* NULL-safe; nulls *r. */
void wd_ring_destroy(wd_ring **r);

/* Splits len bytes of terminal output into lines and stores every complete
 * (or cut) line. */
void wd_ring_feed(wd_ring *r, const uint8_t *data, size_t len);
/* True when bytes of an unterminated line wait that a flush would store. */
bool wd_ring_partial_pending(const wd_ring *r);
/* Stores the waiting unterminated line flagged PARTIAL. Unless `final`,
 * trailing '\r's are held back (their '\n' is probably on its way); with
 * `final` (the game is gone) they are dropped like at a line end. */
void wd_ring_flush_partial(wd_ring *r, bool final);

/* Sequence number of the oldest line still held (== next when empty). */
uint64_t wd_ring_oldest(const wd_ring *r);
/* Sequence number the next stored line will get. */
uint64_t wd_ring_next(const wd_ring *r);
/* Line `seq` (oldest <= seq < next): its length and flags, and when dst is
 * not NULL its bytes copied into dst (room for *len bytes). */
void wd_ring_line(const wd_ring *r, uint64_t seq, uint32_t *len, uint8_t *flags, uint8_t *dst);

#endif
