/* The wire protocol between warden-agent and warden-shim.
 *
 * Each game server runs under its own tiny supervisor process, warden-shim,
 * so that games survive an agent restart (upgrade, crash, kill -9). The shim
 * owns the game's pseudo-terminal, splits its output into numbered lines kept
 * in a bounded ring, remembers the exit status, and serves ONE agent
 * connection at a time on a unix stream socket RUNDIR/shim.sock (mode 0600).
 *
 * Frames, both directions: an 8-byte header then the payload.
 *   u8  type      (wd_shim_frame_type)
 *   u8  flags     (0)
 *   u16 reserved  (0)
 *   u32 length    payload bytes, little-endian, <= WD_SHIM_MAX_FRAME
 * All integers in payloads are little-endian.
 *
 * Shim -> agent
 *   HELLO  u32 version, u32 shim_pid, u32 child_pid, u64 started_unix_ms,
 *          u64 oldest_seq (first line still in the ring), u64 next_seq,
 *          u8 exited (1 if the game already exited; EXIT follows)
 *          Sent once, right after accept.
 *   LINES  u64 first_seq, u32 count, u32 dropped (lines lost just before
 *          first_seq because the ring overflowed before this client read
 *          them), then count x { u32 len, u8 line_flags, len bytes }.
 *          line_flags: bit0 CUT (the line hit max_line and continues in the
 *          next line), bit1 PARTIAL (no newline yet; flushed because the
 *          game went quiet). Lines carry no '\n'; a trailing '\r' is removed.
 *   EXIT   i32 exit_code (-1 if signalled), i32 signal (0 if exited),
 *          u64 time_unix_ms. Sent when the game's process tree is gone (and
 *          on HELLO if it already was), after every LINES it produced.
 *
 * Agent -> shim
 *   ATTACH u64 from_seq: start sending lines from this sequence number
 *          (clamped to the ring; a gap is reported as LINES.dropped);
 *          WD_SHIM_SEQ_NEW means only lines produced from now on. Nothing is
 *          sent but HELLO until ATTACH arrives.
 *   INPUT  raw bytes written to the pty (the agent appends the '\n').
 *   SIGNAL i32 signo, u8 scope: 0 = the game process only (graceful
 *          signals; SIGINT also reaches the game's descendants, as a
 *          terminal's Ctrl-C would), 1 = every process of the game's tree
 *          (and its cgroup).
 *   EXIT_ACK  the agent has recorded EXIT: the shim removes its socket and
 *          pid file and exits 0.
 *   RESIZE u16 rows, u16 cols of the pty.
 *
 * The first line produced has sequence number 1. Sequence numbers are
 * consecutive; they never restart within one shim's life. */
#ifndef WD_SHIM_PROTO_H
#define WD_SHIM_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define WD_SHIM_PROTO_VERSION 1u
#define WD_SHIM_HDR 8u
#define WD_SHIM_MAX_FRAME (1024u * 1024u)
#define WD_SHIM_SEQ_NEW UINT64_MAX

#define WD_SHIM_LINE_CUT 0x01u
#define WD_SHIM_LINE_PARTIAL 0x02u

typedef enum {
    WD_SHIM_HELLO = 1,
    WD_SHIM_LINES = 2,
    WD_SHIM_EXIT = 3,
    WD_SHIM_ATTACH = 10,
    WD_SHIM_INPUT = 11,
    WD_SHIM_SIGNAL = 12,
    WD_SHIM_EXIT_ACK = 13,
    WD_SHIM_RESIZE = 14,
} wd_shim_frame_type;

/* Little-endian helpers, usable on unaligned buffers. */
static inline void wd_put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline void wd_put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline void wd_put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint16_t wd_get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t wd_get_u32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}
static inline uint64_t wd_get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

#endif
