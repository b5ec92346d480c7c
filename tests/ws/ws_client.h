/* A small blocking WebSocket client (RFC 6455) for the gateway tests.
 *
 * Written on plain sockets rather than a library so that the tests can also
 * send what a well-behaved client never would: binary frames, oversized
 * frames, fragments, garbage. Every text message received is parsed and kept
 * in arrival order; the wait functions take the first not yet taken message
 * that matches, reading from the socket as needed (answering pings).
 * One thread per client. */
#ifndef WD_WS_CLIENT_H
#define WD_WS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

typedef struct wsc wsc;

/* Connects and upgrades at ws://127.0.0.1:port<path> (NULL: /ws) with an
 * optional Origin.
 * NULL on failure; *http_status (may be NULL) receives the handshake's HTTP
 * status (101 on success, 0 when nothing came back). */
wsc *wsc_connect(int port, const char *path, const char *origin, int *http_status);
void wsc_free(wsc *c);
/* When > 0, the receive buffer size of sockets connected from now on (a
 * small one makes a slow client quickly). */
extern int wsc_rcvbuf;

/* Frame headers (RFC 6455 section 5.2), shared with bench/bench_ws.c's
 * many-client loop. wsc_frame_head writes a client (masked) header for a
 * payload of len bytes into hdr and returns its size. wsc_frame_peek reads
 * the header at b[0..len): its size, or 0 while incomplete. */
size_t wsc_frame_head(unsigned char hdr[14], int opcode, bool fin, size_t len,
                      const unsigned char mask[4]);
size_t wsc_frame_peek(const unsigned char *b, size_t len, int *op, bool *fin, uint64_t *plen);

/* Sends one frame (masked, as clients must). opcode 1 text, 2 binary. */
bool wsc_send_frame(wsc *c, int opcode, const void *data, size_t len, bool fin);
bool wsc_send_text(wsc *c, const char *text);
/* {"event": event, "args": [arg]} (no args when arg is NULL). */
bool wsc_send_event(wsc *c, const char *event, const char *arg);

/* The first untaken message whose event is `event` and (when contains is
 * non-NULL) one of whose string args contains it; marks it taken. Borrowed
 * reference valid until wsc_free. NULL on timeout or close. */
json_t *wsc_wait(wsc *c, const char *event, const char *contains, int timeout_ms);
/* Like wsc_wait but does not take the message. */
json_t *wsc_peek(wsc *c, const char *event, const char *contains, int timeout_ms);
/* The close code the server sent (1006 when the TCP connection ended
 * without a close frame), or -1 on timeout. reason may be NULL. */
int wsc_wait_close(wsc *c, int timeout_ms, char *reason, size_t n);
bool wsc_closed(wsc *c);
/* Reads whatever arrives within ms. */
void wsc_pump(wsc *c, int ms);
/* Bytes the kernel holds for this socket, not yet read. */
size_t wsc_unread_bytes(wsc *c);
/* Number of messages received so far and the i-th one (borrowed). */
size_t wsc_count(wsc *c);
json_t *wsc_msg(wsc *c, size_t i);
/* Index of the first message (taken or not) matching, or -1. */
long wsc_index(wsc *c, const char *event, const char *contains);

#endif
