/* Subject builders and parsers: the only place subjects are spelt.
 *
 *   warden.agent.<node>.server.<server>.<op>[.<subop>]   requests to agents
 *   warden.agent.<node>.>                                 an agent's subscription
 *   warden.server.<server>.{console,state,stats}          events from agents
 *   warden.node.<node>.heartbeat                          node liveness
 *   warden.discovery.hello / warden.discovery.probe       discovery
 *
 * Builders refuse tokens that would change a subject's shape (empty, '.',
 * '*', '>', whitespace), so user input can never widen a subscription or
 * address another node. Thread-safe, no allocation. */
#ifndef WD_SUBJECT_H
#define WD_SUBJECT_H

#include <stdbool.h>
#include <stddef.h>

#include "status.h"

#define WD_SUBJECT_MAX 256
#define WD_SUBJ_HELLO "warden.discovery.hello"
#define WD_SUBJ_PROBE "warden.discovery.probe"
#define WD_SUBJ_JOIN "warden.discovery.join"
#define WD_SUBJ_HEARTBEATS "warden.node.*.heartbeat"
#define WD_SUBJ_STATS_ALL "warden.server.*.stats"

/* True if tok is a valid single subject token of at most 64 bytes. */
bool wd_subj_token_ok(const char *tok);

/* warden.agent.<node>.server.<server>.<op>; op may contain dots
 * ("files.list", "console.in") but no wildcards. */
wd_status wd_subj_agent_server(char *buf, size_t n, const char *node, const char *server,
                               const char *op);
/* warden.agent.<node>.> */
wd_status wd_subj_agent_all(char *buf, size_t n, const char *node);
/* warden.server.<server>.<kind>, kind one of console/state/stats (or "*"
 * for server to watch everything of one server). */
wd_status wd_subj_server_event(char *buf, size_t n, const char *server, const char *kind);
/* warden.node.<node>.heartbeat */
wd_status wd_subj_node_heartbeat(char *buf, size_t n, const char *node);

/* The reply inbox prefix of a NATS identity (a node id, a join user's
 * public key): "_INBOX." and 24 hex digits of the SHA-256 of identity.
 * Node users may subscribe only to their own "<prefix>.>". Kept to 31
 * characters: nats.c 3.4 mishandles custom prefixes longer than 32
 * (nats-io/nats.c#884), losing replies. */
#define WD_SUBJ_INBOX_SIZE 32
wd_status wd_subj_inbox_prefix(char out[WD_SUBJ_INBOX_SIZE], const char *identity);

/* Parses a request subject of the agent's wildcard subscription. On success
 * node/server are copied out and *op points into subject (e.g.
 * "power", "console.in", "files.list"). WD_ERR_INVALID otherwise. */
wd_status wd_subj_parse_agent(const char *subject, char *node, size_t node_n, char *server,
                              size_t server_n, const char **op);

#endif
