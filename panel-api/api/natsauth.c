/* NATS identities for the fleet (see natsauth.h). The permission lists
 * here are the security side of the bus contract in docs/bus.md: change
 * them together. */
#include <stdio.h>

#include "natsauth.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "natsjwt.h"
#include "nkeys.h"
#include "subject.h"
#include "util.h"

struct wd_natsauth {
    char account[WD_NKEY_PUB_SIZE];
    char seed[WD_NKEY_SEED_SIZE];
};

wd_status wd_natsauth_load(const char *account_pub, const char *signing_key_file,
                           wd_natsauth **out)
{
    wd_nkey_type t;
    char *text = NULL;
    struct stat sb;
    *out = NULL;
    if (!account_pub || wd_nkey_type_of(account_pub, &t) != WD_OK || t != WD_NKEY_ACCOUNT ||
        strlen(account_pub) != WD_NKEY_PUB_LEN)
        return WD_ERR(WD_ERR_INVALID, "--nats-account must be the WARDEN account's public key "
                      "(A..., see api.env written by `warden-api nats init`)");
    if (!signing_key_file || stat(signing_key_file, &sb) != 0)
        return WD_ERR(WD_ERR_INVALID, "--nats-signing-key %s: %s",
                      signing_key_file ? signing_key_file : "(unset)",
                      signing_key_file ? strerror(errno) : "required with --nats-account");
    if (sb.st_mode & 077)
        return WD_ERR(WD_ERR_INVALID, "--nats-signing-key %s is readable by others: chmod 600 it",
                      signing_key_file);
    wd_status st = wd_read_file(signing_key_file, 4096, &text, NULL);
    if (st != WD_OK)
        return st;
    text[strcspn(text, " \t\r\n")] = '\0';
    struct wd_natsauth *na = calloc(1, sizeof *na);
    if (!na) {
        OPENSSL_cleanse(text, strlen(text));
        free(text);
        return WD_ERR(WD_ERR_NOMEM, "natsauth: out of memory");
    }
    if (wd_nkey_type_of(text, &t) != WD_OK || t != WD_NKEY_ACCOUNT ||
        strlen(text) != WD_NKEY_SEED_LEN || text[0] != 'S') {
        st = WD_ERR(WD_ERR_INVALID, "--nats-signing-key %s does not hold an account seed (SA...)",
                    signing_key_file);
    } else {
        memcpy(na->seed, text, WD_NKEY_SEED_SIZE);
        memcpy(na->account, account_pub, WD_NKEY_PUB_SIZE);
    }
    OPENSSL_cleanse(text, strlen(text));
    free(text);
    if (st != WD_OK) {
        free(na);
        return st;
    }
    *out = na;
    return WD_OK;
}

void wd_natsauth_free(wd_natsauth **na)
{
    if (!na || !*na)
        return;
    OPENSSL_cleanse(*na, sizeof **na);
    free(*na);
    *na = NULL;
}

/* Mints a fresh user under the signing key; *jwt heap, seed filled. */
static wd_status mint_user(const wd_natsauth *na, const wd_natsjwt_user_spec *spec,
                           char seed[WD_NKEY_SEED_SIZE], char pub[WD_NKEY_PUB_SIZE], char **jwt)
{
    wd_status st = wd_nkey_generate(WD_NKEY_USER, seed, pub);
    if (st == WD_OK)
        st = wd_natsjwt_user_ex(na->seed, na->account, pub, spec, jwt);
    if (st != WD_OK)
        OPENSSL_cleanse(seed, WD_NKEY_SEED_SIZE);
    return st;
}

wd_status wd_natsauth_join_token(const wd_natsauth *na, const char *secret, int64_t expires,
                                 char **out)
{
    char seed[WD_NKEY_SEED_SIZE], pub[WD_NKEY_PUB_SIZE], inbox[WD_SUBJECT_MAX];
    char *jwt = NULL;
    *out = NULL;
    if (!secret || !*secret || strchr(secret, '.'))
        return WD_ERR(WD_ERR_INVALID, "natsauth: bad join secret");
    /* The agent's inbox prefix while joining derives from its join user. */
    char prefix[WD_SUBJ_INBOX_SIZE];
    wd_status st = wd_nkey_generate(WD_NKEY_USER, seed, pub);
    if (st == WD_OK)
        st = wd_subj_inbox_prefix(prefix, pub);
    if (st != WD_OK)
        return st;
    snprintf(inbox, sizeof inbox, "%s.>", prefix);
    const char *pubs[] = {WD_SUBJ_JOIN}, *subs[] = {inbox};
    wd_natsjwt_user_spec spec = {.name = "join",
                                 .pub_allow = pubs,
                                 .n_pub = 1,
                                 .sub_allow = subs,
                                 .n_sub = 1,
                                 .expires = expires};
    st = wd_natsjwt_user_ex(na->seed, na->account, pub, &spec, &jwt);
    if (st == WD_OK && asprintf(out, "%s.%s.%s", secret, seed, jwt) < 0) {
        *out = NULL;
        st = WD_ERR(WD_ERR_NOMEM, "natsauth: out of memory");
    }
    OPENSSL_cleanse(seed, sizeof seed);
    free(jwt);
    return st;
}

/* The node user's permissions. A node may receive only its own requests
 * and replies, and publish its heartbeats, hello, its KV entry and the
 * event subjects of servers (the subject names no node, so "its own
 * servers" cannot be expressed; the panel only trusts state for a server
 * from the node the server is on). Replies to requests go through
 * allow_responses, never a publish grant on others' inboxes. */
#define NODE_SUBJECTS 12
static wd_status node_spec(const char *node, char buf[NODE_SUBJECTS][WD_SUBJECT_MAX],
                           const char *pubs[NODE_SUBJECTS], size_t *npub,
                           const char *subs[NODE_SUBJECTS], size_t *nsub)
{
    char prefix[WD_SUBJ_INBOX_SIZE];
    if (!wd_subj_token_ok(node) || wd_subj_inbox_prefix(prefix, node) != WD_OK)
        return WD_ERR(WD_ERR_INVALID, "natsauth: bad node id");
    int i = 0;
    size_t p = 0, s = 0;
#define PUB(...) (snprintf(buf[i], WD_SUBJECT_MAX, __VA_ARGS__), pubs[p++] = buf[i++])
#define SUB(...) (snprintf(buf[i], WD_SUBJECT_MAX, __VA_ARGS__), subs[s++] = buf[i++])
    PUB("%s", WD_SUBJ_HELLO);
    PUB("warden.node.%s.>", node);
    PUB("warden.server.*.console");
    PUB("warden.server.*.state");
    PUB("warden.server.*.stats");
    PUB("$KV.warden_nodes.%s", node);
    PUB("$KV.warden_servers.*");
    PUB("$JS.API.INFO");
    PUB("$JS.API.STREAM.INFO.*");
    SUB("warden.agent.%s.>", node);
    SUB("%s", WD_SUBJ_PROBE);
    SUB("%s.>", prefix);
#undef PUB
#undef SUB
    *npub = p;
    *nsub = s;
    return WD_OK;
}

wd_status wd_natsauth_node_creds(const wd_natsauth *na, const char *node_id, char **out)
{
    char buf[NODE_SUBJECTS][WD_SUBJECT_MAX], seed[WD_NKEY_SEED_SIZE], pub[WD_NKEY_PUB_SIZE];
    const char *pubs[NODE_SUBJECTS], *subs[NODE_SUBJECTS];
    size_t npub = 0, nsub = 0;
    char *jwt = NULL, name[96];
    *out = NULL;
    wd_status st = node_spec(node_id, buf, pubs, &npub, subs, &nsub);
    if (st != WD_OK)
        return st;
    snprintf(name, sizeof name, "node-%s", node_id);
    wd_natsjwt_user_spec spec = {.name = name,
                                 .pub_allow = pubs,
                                 .n_pub = npub,
                                 .sub_allow = subs,
                                 .n_sub = nsub,
                                 .allow_responses = true};
    if ((st = mint_user(na, &spec, seed, pub, &jwt)) != WD_OK)
        return st;
    st = wd_nkey_creds(jwt, seed, out);
    OPENSSL_cleanse(seed, sizeof seed);
    free(jwt);
    return st;
}

/* ---- nats init ------------------------------------------------------ */

static wd_status put(const char *dir, const char *name, const char *text, unsigned mode,
                     FILE *report, const char *what)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
        return WD_ERR(WD_ERR_INVALID, "nats init: path too long");
    wd_status st = wd_write_file_atomic(path, text, strlen(text), mode);
    if (st == WD_OK && report && what)
        fprintf(report, "  %-14s %s\n", name, what);
    return st;
}

/* Writes dir/name: a user with the given grants, signed by the signing key. */
static wd_status put_creds(const wd_natsauth *na, const char *dir, const char *name,
                           const char *user, const char *const *pubs, size_t npub,
                           const char *const *subs, size_t nsub, FILE *report, const char *what)
{
    char seed[WD_NKEY_SEED_SIZE], pub[WD_NKEY_PUB_SIZE];
    char *jwt = NULL, *creds = NULL;
    wd_natsjwt_user_spec spec = {
        .name = user, .pub_allow = pubs, .n_pub = npub, .sub_allow = subs, .n_sub = nsub};
    wd_status st = mint_user(na, &spec, seed, pub, &jwt);
    if (st == WD_OK)
        st = wd_nkey_creds(jwt, seed, &creds);
    if (st == WD_OK)
        st = put(dir, name, creds, 0600, report, what);
    OPENSSL_cleanse(seed, sizeof seed);
    if (creds)
        OPENSSL_cleanse(creds, strlen(creds));
    free(creds);
    free(jwt);
    return st;
}

wd_status wd_natsauth_init(const char *dir, FILE *report)
{
    char op_seed[WD_NKEY_SEED_SIZE], op_pub[WD_NKEY_PUB_SIZE];
    char sys_seed[WD_NKEY_SEED_SIZE], sys_pub[WD_NKEY_PUB_SIZE];
    char acc_seed[WD_NKEY_SEED_SIZE], acc_pub[WD_NKEY_PUB_SIZE];
    char sk_seed[WD_NKEY_SEED_SIZE], sk_pub[WD_NKEY_PUB_SIZE];
    char *op_jwt = NULL, *sys_jwt = NULL, *acc_jwt = NULL, *text = NULL;
    char abs[PATH_MAX], path[PATH_MAX + 32];
    struct wd_natsauth na;
    wd_status st;

    if (!dir || !*dir)
        return WD_ERR(WD_ERR_INVALID, "nats init needs --dir");
    if ((st = wd_mkdir_p(dir, 0700)) != WD_OK)
        return st;
    if (!realpath(dir, abs))
        return WD_ERR(WD_ERR_IO, "nats init: %s: %s", dir, strerror(errno));
    snprintf(path, sizeof path, "%s/auth.conf", abs);
    if (access(path, F_OK) == 0)
        return WD_ERR(WD_ERR_EXISTS, "%s exists: this directory already holds a NATS operator "
                      "(remove it to start over; every node must then join again)", path);
    if ((st = wd_nkey_generate(WD_NKEY_OPERATOR, op_seed, op_pub)) != WD_OK ||
        (st = wd_nkey_generate(WD_NKEY_ACCOUNT, sys_seed, sys_pub)) != WD_OK ||
        (st = wd_nkey_generate(WD_NKEY_ACCOUNT, acc_seed, acc_pub)) != WD_OK ||
        (st = wd_nkey_generate(WD_NKEY_ACCOUNT, sk_seed, sk_pub)) != WD_OK)
        goto out;
    const char *signing[] = {sk_pub};
    if ((st = wd_natsjwt_operator(op_seed, "warden", sys_pub, &op_jwt)) != WD_OK ||
        (st = wd_natsjwt_system_account(op_seed, sys_pub, &sys_jwt)) != WD_OK ||
        (st = wd_natsjwt_account(op_seed, acc_pub, "WARDEN", signing, 1, &acc_jwt)) != WD_OK)
        goto out;
    memcpy(na.account, acc_pub, sizeof na.account);
    memcpy(na.seed, sk_seed, sizeof na.seed);

    if (report)
        fprintf(report, "NATS operator, accounts and credentials in %s:\n", abs);
    char line[WD_NKEY_SEED_SIZE + 2];
    snprintf(line, sizeof line, "%s\n", op_seed);
    if ((st = put(abs, "operator.seed", line, 0600, report,
                  "operator key: signs accounts; keep it offline")) != WD_OK)
        goto out;
    snprintf(line, sizeof line, "%s\n", acc_seed);
    if ((st = put(abs, "account.seed", line, 0600, report,
                  "WARDEN account identity key; keep it offline")) != WD_OK)
        goto out;
    snprintf(line, sizeof line, "%s\n", sk_seed);
    if ((st = put(abs, "signing.seed", line, 0600, report,
                  "account signing key: warden-api mints node users with it")) != WD_OK)
        goto out;
    if ((st = put(abs, "operator.jwt", op_jwt, 0644, NULL, NULL)) != WD_OK)
        goto out;

    static const char *const ALL[] = {">"};
    if ((st = put_creds(&na, abs, "api.creds", "warden-api", ALL, 1, ALL, 1, report,
                        "warden-api's NATS user")) != WD_OK)
        goto out;
    /* Ops tooling (wardenctl's bus mode): drives agents and JetStream and
     * watches everything, but cannot speak as an agent. */
    static const char *const OPS_PUB[] = {"warden.agent.>", WD_SUBJ_PROBE, "$JS.API.>"};
    static const char *const OPS_SUB[] = {"warden.>", "_INBOX.>"};
    if ((st = put_creds(&na, abs, "ops.creds", "ops", OPS_PUB, 3, OPS_SUB, 2, report,
                        "ops tooling (wardenctl --nats-creds)")) != WD_OK)
        goto out;

    /* The gateway (warden-ws): watches servers' events and panel events,
     * sends console lines and power actions to agents, reads console and
     * state history from JetStream; replies only into its own inbox
     * prefix (wd_subj_inbox_prefix("warden-ws")), so it cannot read the
     * replies others get (a joining node's credentials, say). */
    char ws_inbox[WD_SUBJ_INBOX_SIZE + 2];
    if ((st = wd_subj_inbox_prefix(ws_inbox, "warden-ws")) != WD_OK)
        goto out;
    strcat(ws_inbox, ".>");
    const char *ws_pub[] = {"warden.agent.*.server.*.power",
                            "warden.agent.*.server.*.console.in",
                            "$JS.API.INFO",
                            "$JS.API.STREAM.NAMES",
                            "$JS.API.STREAM.INFO.WARDEN_CONSOLE",
                            "$JS.API.STREAM.MSG.GET.WARDEN_CONSOLE",
                            "$JS.API.STREAM.MSG.GET.WARDEN_EVENTS",
                            "$JS.API.CONSUMER.CREATE.WARDEN_CONSOLE",
                            "$JS.API.CONSUMER.CREATE.WARDEN_CONSOLE.>",
                            "$JS.API.CONSUMER.INFO.WARDEN_CONSOLE.>",
                            "$JS.API.CONSUMER.DELETE.WARDEN_CONSOLE.>",
                            "$JS.ACK.WARDEN_CONSOLE.>",
                            "$JS.FC.WARDEN_CONSOLE.>"};
    const char *ws_sub[] = {"warden.server.>", "warden.panel.events.>", ws_inbox};
    if ((st = put_creds(&na, abs, "ws.creds", "warden-ws", ws_pub,
                        sizeof ws_pub / sizeof ws_pub[0], ws_sub, 3, report,
                        "warden-ws's NATS user (every gateway instance)")) != WD_OK)
        goto out;

    if (asprintf(&text,
                 "WARDEN_NATS_CREDS=%s/api.creds\n"
                 "WARDEN_NATS_ACCOUNT=%s\n"
                 "WARDEN_NATS_SIGNING_KEY=%s/signing.seed\n",
                 abs, acc_pub, abs) < 0) {
        text = NULL;
        st = WD_ERR(WD_ERR_NOMEM, "nats init: out of memory");
        goto out;
    }
    if ((st = put(abs, "api.env", text, 0600, report, "warden-api's settings (source it)")) !=
        WD_OK)
        goto out;
    free(text);
    /* Written last: its presence marks a complete chain. */
    if (asprintf(&text,
                 "# Warden's NATS trust chain, from `warden-api nats init`.\n"
                 "# Paste it into nats-server's config, or include it from there\n"
                 "# (include paths are relative to the including file).\n"
                 "operator: \"%s/operator.jwt\"\n"
                 "system_account: %s\n"
                 "resolver: MEMORY\n"
                 "resolver_preload: {\n"
                 "  # SYS\n  %s: \"%s\"\n"
                 "  # WARDEN\n  %s: \"%s\"\n"
                 "}\n",
                 abs, sys_pub, sys_pub, sys_jwt, acc_pub, acc_jwt) < 0) {
        text = NULL;
        st = WD_ERR(WD_ERR_NOMEM, "nats init: out of memory");
        goto out;
    }
    st = put(abs, "auth.conf", text, 0644, report, "include this from nats-server's config");
out:
    OPENSSL_cleanse(op_seed, sizeof op_seed);
    OPENSSL_cleanse(sys_seed, sizeof sys_seed);
    OPENSSL_cleanse(acc_seed, sizeof acc_seed);
    OPENSSL_cleanse(sk_seed, sizeof sk_seed);
    OPENSSL_cleanse(&na, sizeof na);
    free(op_jwt);
    free(sys_jwt);
    free(acc_jwt);
    free(text);
    return st;
}
