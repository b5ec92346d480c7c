/* NATS JWTs for nats-server's decentralized (operator/JWT) authentication.
 *
 * The chain nats-server verifies itself: an operator JWT (self-signed by the
 * operator key) is configured on the server; account JWTs are signed by the
 * operator and preloaded or resolved; each agent connects with a user JWT
 * signed by its account, carrying exactly that node's publish/subscribe
 * permissions, and proves it holds the user seed by signing the server's
 * nonce (the NATS client does that from a .creds file).
 *
 * Every JWT is header.payload.signature in base64url without padding, the
 * header {"typ":"JWT","alg":"ed25519-nkey"}, the signature Ed25519 over
 * "header.payload" by the issuer's seed (nkeys.h). The claims follow the
 * Go nats-io/jwt v2 library: jti is the base32 SHA-512/256 of the claims
 * without jti, iat the issue time, iss and sub NKey public keys, and the
 * "nats" object the type-specific part with "version":2.
 *
 * All functions are thread-safe. Every returned string is heap memory the
 * caller frees with free(); on error *out is NULL. */
#ifndef WD_NATSJWT_H
#define WD_NATSJWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

/* The self-signed operator JWT for operator_seed (an "SO..." seed).
 * system_account_pub, when not NULL, names the system account. */
wd_status wd_natsjwt_operator(const char *operator_seed, const char *name,
                              const char *system_account_pub, char **out);

/* An account JWT for account_pub ("A..."), signed by operator_seed, with
 * unlimited NATS and JetStream limits and wildcard exports allowed.
 * signing_keys (n_signing, may be 0) are account public keys that may also
 * sign this account's users (see wd_natsjwt_user_by_signer). */
wd_status wd_natsjwt_account(const char *operator_seed, const char *account_pub, const char *name,
                             const char *const *signing_keys, size_t n_signing, char **out);

/* The system account's JWT (name "SYS"): the same limits without
 * JetStream, which nats-server refuses to enable there. Name the account in
 * the operator JWT and in the server's system_account setting. */
wd_status wd_natsjwt_system_account(const char *operator_seed, const char *account_pub, char **out);

/* A user JWT for user_pub ("U..."), signed by the account's own seed
 * ("SA..."), allowed to publish only to pub_allow and subscribe only to
 * sub_allow (NATS subject patterns with * and >). An empty list (n == 0)
 * allows nothing: it is written as deny ">" because NATS reads a missing
 * list as "everything". */
wd_status wd_natsjwt_user(const char *account_seed, const char *user_pub, const char *name,
                          const char *const *pub_allow, size_t n_pub, const char *const *sub_allow,
                          size_t n_sub, char **out);

/* The same, signed by one of the account's signing keys (signer_seed)
 * instead of its identity key; issuer_account is the account's public key,
 * which must list the signer in its signing_keys. */
wd_status wd_natsjwt_user_by_signer(const char *signer_seed, const char *issuer_account,
                                    const char *user_pub, const char *name,
                                    const char *const *pub_allow, size_t n_pub,
                                    const char *const *sub_allow, size_t n_sub, char **out);

/* Everything a user JWT can say, for wd_natsjwt_user_ex. */
typedef struct {
    const char *name;
    const char *const *pub_allow; /* publish allow list; n_pub == 0: nothing */
    size_t n_pub;
    const char *const *sub_allow; /* subscribe allow list; n_sub == 0: nothing */
    size_t n_sub;
    /* May publish one reply to the reply subject of each request it
     * receives, within nats-server's default window (2 minutes), on top of
     * pub_allow: how a service answers requests without a publish
     * permission on every requester's inbox. */
    bool allow_responses;
    int64_t expires; /* Unix seconds; 0 = does not expire */
} wd_natsjwt_user_spec;

/* A user JWT for user_pub from spec, signed by signer_seed: the account's
 * own seed when issuer_account is NULL, else one of the signing keys the
 * account issuer_account lists. */
wd_status wd_natsjwt_user_ex(const char *signer_seed, const char *issuer_account,
                             const char *user_pub, const wd_natsjwt_user_spec *spec, char **out);

#endif
