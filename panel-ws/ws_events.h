/* The gateway's outgoing JSON events (docs/websocket.md), built as ready to
 * send WebSocket frames.
 *
 * A frame is built once and shared: the same console chunk goes to every
 * browser watching the server, each send queue holding a reference. Frames
 * are built on whatever thread decoded the bus message (a nats.c callback
 * or a worker), so the lws thread only queues and writes.
 *
 * Thread-safety: building is pure; frame references are atomic, so a frame
 * may be released on any thread. */
#ifndef WD_WS_EVENTS_H
#define WD_WS_EVENTS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "status.h"
#include "warden/v1/console.pb-c.h"
#include "warden/v1/server.pb-c.h"

/* Headroom lws_write needs before the payload (LWS_PRE in 4.1). Checked
 * against libwebsockets.h in events.c. */
#define WD_WS_PRE 16

typedef enum {
    WD_WS_FRAME_OTHER = 0,
    WD_WS_FRAME_CONSOLE, /* console or install output carrying numbered lines */
    WD_WS_FRAME_STATUS,
    WD_WS_FRAME_STATS,
} wd_ws_frame_kind;

typedef struct {
    atomic_int refs;
    wd_ws_frame_kind kind;
    uint64_t seq_first, seq_last; /* numbered lines carried; 0/0 when none */
    size_t len;                   /* payload bytes at buf + WD_WS_PRE */
    unsigned char buf[];
} wd_ws_frame;

/* Serialises obj (compact) into a new frame with one reference; NULL when
 * out of memory. Does not take obj's reference. */
wd_ws_frame *wd_ws_frame_new(json_t *obj, wd_ws_frame_kind kind);
wd_ws_frame *wd_ws_frame_ref(wd_ws_frame *f);
/* Drops a reference; frees on the last. NULL-safe. */
void wd_ws_frame_unref(wd_ws_frame *f);
static inline unsigned char *wd_ws_frame_data(wd_ws_frame *f)
{
    return f->buf + WD_WS_PRE;
}

/* {"event": name, "args": [arg]} (no args when arg is NULL). */
wd_ws_frame *wd_ws_event_simple(const char *name, const char *arg);
/* {"event":"error","args":[code, message, cause]} (cause omitted if NULL). */
wd_ws_frame *wd_ws_event_error(const char *code, const char *message, const char *cause);
/* "console output" / "install output" with the chunk's lines; SYSTEM lines
 * become "console output" with "source":"system". With min_seq > 0, lines
 * numbered below min_seq are left out (NULL if none remain). */
wd_ws_frame *wd_ws_event_console(const Warden__V1__ConsoleChunk *c, uint64_t min_seq);
wd_ws_frame *wd_ws_event_status(const Warden__V1__ServerStateEvent *e);
wd_ws_frame *wd_ws_event_stats(const Warden__V1__ServerStats *s);

/* Lower-case state name: "offline", "running", ... */
const char *wd_ws_state_name(int state);
/* The one mapping from a status to an error event code. */
const char *wd_ws_error_code(wd_status st);

/* A JSON string of arbitrary bytes: invalid UTF-8 becomes U+FFFD. New
 * reference, NULL when out of memory. */
json_t *wd_ws_json_bytes(const void *data, size_t len);

#endif
