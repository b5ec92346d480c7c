/* NATS identities for the fleet (nats-server's operator/JWT mode).
 *
 * `warden-api nats init` creates the whole chain once: an operator, the
 * system account, the WARDEN account with a separate signing key, and
 * .creds for warden-api and for ops tooling, plus auth.conf for
 * nats-server to include. From then on nats-server needs no change when a
 * node joins: warden-api holds only the account's signing key and mints
 *
 *   - for each join token, a throw-away "join" user that may publish to
 *     warden.discovery.join and receive its replies, nothing else, and
 *     that expires with the token; its JWT and seed travel inside the
 *     token the operator copies to the new host;
 *   - for each node that joins, the node's own user, whose permissions
 *     confine it to its own subjects (see docs/bus.md, "Credentials"); the
 *     JoinReply carries its .creds and the agent keeps them.
 *
 * Without a signing key (development, tests of other parts) the bus is
 * open: join tokens are bare secrets and JoinReply carries no credentials.
 * All functions are thread-safe; a loaded wd_natsauth is immutable. */
#ifndef WD_NATSAUTH_H
#define WD_NATSAUTH_H

#include <stdint.h>
#include <stdio.h>

#include "status.h"

typedef struct wd_natsauth wd_natsauth;

/* Loads the account's public key and the signing key's seed file (one
 * "SA..." line; the file must not be readable by group or others).
 * WD_ERR_INVALID with a message saying what to fix. */
wd_status wd_natsauth_load(const char *account_pub, const char *signing_key_file,
                           wd_natsauth **out);
/* NULL-safe; wipes the seed. */
void wd_natsauth_free(wd_natsauth **na);

/* The full join token for the bare secret: "secret.JOINSEED.JOINJWT", the
 * join user expiring at expires (Unix seconds). *out is heap memory. */
wd_status wd_natsauth_join_token(const wd_natsauth *na, const char *secret, int64_t expires,
                                 char **out);

/* The .creds text of node_id's own NATS user (heap; wipe and free). */
wd_status wd_natsauth_node_creds(const wd_natsauth *na, const char *node_id, char **out);

/* Creates operator, accounts, keys, creds and auth.conf in dir (created
 * 0700 if missing). WD_ERR_EXISTS when dir already holds auth.conf: an
 * existing chain is never overwritten. Writes a summary of the files and
 * the settings warden-api needs to report (may be NULL). */
wd_status wd_natsauth_init(const char *dir, FILE *report);

#endif
