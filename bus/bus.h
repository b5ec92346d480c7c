/* The NATS connection and typed protobuf messaging.
 *
 * wd_bus wraps one natsConnection: a server list, client name, TLS and
 * credentials, reconnecting forever with capped exponential back-off, and a
 * connection-state callback. Messages are protobuf bodies; metadata travels
 * in headers:
 *   Warden-Trace  trace id, propagated from a request to its reply and to
 *                 the events it causes
 *   Warden-Actor  the user or service that caused it
 *   Nats-Msg-Id   JetStream de-duplication
 * Requests distinguish a timeout (WD_ERR_TIMEOUT) from nobody listening
 * (WD_ERR_NO_RESPONDERS, immediate).
 *
 * Thread-safety: every function may be called from any thread. nats.c runs
 * subscription callbacks on its own threads: they should decode and post to
 * an actor, nothing more. */
#ifndef WD_BUS_H
#define WD_BUS_H

#include <nats/nats.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>

#include "status.h"
#include "warden/v1/common.pb-c.h"

#define WD_HDR_TRACE "Warden-Trace"
#define WD_HDR_ACTOR "Warden-Actor"
#define WD_HDR_MSG_ID "Nats-Msg-Id"

typedef struct wd_bus wd_bus;

typedef enum {
    WD_BUS_CONNECTED,
    WD_BUS_DISCONNECTED,
    WD_BUS_RECONNECTED,
    WD_BUS_CLOSED
} wd_bus_event;

typedef struct {
    const char *servers;     /* comma-separated URLs; default nats://127.0.0.1:4222 */
    const char *name;        /* client name shown by the server */
    const char *creds_file;  /* NATS user JWT + NKey seed (.creds) */
    const char *user, *password, *token;
    /* Replies to this client's requests arrive under PREFIX.<id>. instead
     * of _INBOX.<id>.: a node's NATS user may subscribe only to its own
     * inboxes, _INBOX.<node id> (see docs/bus.md, "Credentials"). */
    const char *inbox_prefix;
    const char *tls_ca, *tls_cert, *tls_key;
    bool tls;                /* require TLS even without certificates */
    bool send_asap;          /* flush every publish at once (latency-critical) */
    /* Deliver every subscription's messages from nats.c's shared pool of
     * threads instead of one thread per subscription: for processes with
     * many subscriptions (the gateway: one per watched server). */
    bool shared_delivery;
    bool wait_for_server;    /* keep retrying the first connect in the background */
    int connect_timeout_ms;  /* default 2000 */
    int reconnect_min_ms;    /* back-off floor, default 250 */
    int reconnect_max_ms;    /* back-off cap, default 5000 */
    void (*on_event)(wd_bus_event ev, void *ud); /* on a nats.c thread */
    void *ud;
} wd_bus_cfg;

typedef struct {
    const char *trace;  /* NULL: none */
    const char *actor;
    const char *msg_id;
} wd_hdrs;

wd_bus_cfg wd_bus_cfg_defaults(void);
wd_status wd_bus_connect(wd_bus **out, const wd_bus_cfg *cfg);
/* Drains nothing: closes and frees. NULL-safe; nulls *b. */
void wd_bus_destroy(wd_bus **b);
natsConnection *wd_bus_nats(wd_bus *b);
jsCtx *wd_bus_js(wd_bus *b);
bool wd_bus_connected(wd_bus *b);

/* Maps a nats.c status to ours, recording the nats error text. */
wd_status wd_bus_status(natsStatus s, const char *what);

/* Encodes msg and publishes it with headers h (may be NULL). */
wd_status wd_bus_publish(wd_bus *b, const char *subject, const ProtobufCMessage *msg,
                         const wd_hdrs *h);
/* Publishes *m (subject, data, headers, usually a Nats-Msg-Id) into a
 * JetStream stream without waiting: live subscribers get it at once, and
 * the stream's acknowledgement is checked in the background. A message
 * the stream did not store (an error, or no acknowledgement within 2 s: a
 * stream electing a new leader after a NATS server died drops plain
 * publishes silently) is sent again with the same headers, backing off
 * from a quarter second to 2 s, for about a minute; give it a Nats-Msg-Id so that a copy that
 * was stored after all is dropped by the stream. On success *m is taken
 * (set to NULL); on failure it stays the caller's. Order: resent messages
 * arrive after later ones. */
wd_status wd_bus_publish_stored(wd_bus *b, natsMsg **m);

/* Sends req, waits up to timeout_ms, decodes the reply as reply_desc into
 * *reply (free with protobuf_c_message_free_unpacked(*reply, NULL)). A reply
 * that does not decode is WD_ERR_PROTO. */
wd_status wd_bus_request(wd_bus *b, const char *subject, const ProtobufCMessage *req,
                         const ProtobufCMessageDescriptor *reply_desc, int timeout_ms,
                         const wd_hdrs *h, ProtobufCMessage **reply);
/* Replies to req with msg, copying req's trace header. No-op without a
 * reply subject. */
wd_status wd_bus_respond(wd_bus *b, natsMsg *req, const ProtobufCMessage *msg);

/* Replies to req with an Ack carrying st and message. Every reply type has
 * its Status in field 1, so this answers any request with just a status
 * (an error, or an OK with nothing else to say); see docs/bus.md. */
wd_status wd_bus_respond_status(wd_bus *b, natsMsg *req, wd_status st, const char *message);

/* Decodes a message body; NULL (WD_ERR_PROTO recorded) on garbage. */
ProtobufCMessage *wd_bus_decode(const ProtobufCMessageDescriptor *desc, natsMsg *m);
/* A header value of m, or NULL. Valid while m lives. */
const char *wd_bus_header(natsMsg *m, const char *key);

/* Status values for replies: the one mapping between wd_status and the
 * bus's StatusCode, both ways. */
Warden__V1__StatusCode wd_status_to_code(wd_status st);
wd_status wd_status_from_code(Warden__V1__StatusCode c);
/* Fills a stack Status (message not copied: keep it alive while packing). */
void wd_status_fill(Warden__V1__Status *out, wd_status st, const char *message);
/* Turns a reply's status into a wd_status; records its message. A missing
 * status counts as OK. */
wd_status wd_status_check(const Warden__V1__Status *s);

#endif
