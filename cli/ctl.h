/* wardenctl's shared state and bus helpers: the connection, output mode and
 * request timeout every command module uses, plus addressing a server by id
 * alone (its node comes from the warden_servers KV bucket).
 *
 * wardenctl is a short-lived single-command process: these globals are set
 * once by main() before any command runs and only read afterwards, so the
 * worker threads of bulk commands may read them without locking.
 * wd_ctl_interrupted is set by the SIGINT/SIGTERM handler and read by any
 * thread: a lock-free atomic_int, so both the handler's store and the
 * workers' loads are defined (a volatile sig_atomic_t is only for the
 * thread the signal interrupts). */
#ifndef WD_CTL_H
#define WD_CTL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "bus.h"
#include "status.h"

extern wd_bus *wd_ctl_bus;
extern bool wd_ctl_json;
extern int wd_ctl_timeout_ms;
extern atomic_int wd_ctl_interrupted;

/* Prints "wardenctl: <message>" to stderr; returns 1 (the exit code of an
 * error from Warden). */
int wd_ctl_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* "running", "offline", ... for a ServerState value ("unknown" if out of range). */
const char *wd_ctl_state_str(int state);
/* The ServerState of a name above, or -1. */
int wd_ctl_state_parse(const char *name);

/* A JSON string literal of NUL-terminated s (NULL prints ""). */
void wd_ctl_json_str(FILE *f, const char *s);

/* Copies the node holding server id into node (from the KV registry). Any
 * thread. */
wd_status wd_ctl_locate(const char *id, char *node, size_t n);

/* Request op of server id (node looked up unless node is given); the reply
 * decoded as desc into *reply (caller frees with
 * protobuf_c_message_free_unpacked). timeout_ms 0 = wd_ctl_timeout_ms.
 * Any thread. */
wd_status wd_ctl_request(const char *id, const char *node, const char *op,
                         const ProtobufCMessage *req, const ProtobufCMessageDescriptor *desc,
                         int timeout_ms, ProtobufCMessage **reply);

/* The Status of any reply (field 1 of every reply type) as a wd_status. */
wd_status wd_ctl_reply_status(ProtobufCMessage *reply);

#endif
