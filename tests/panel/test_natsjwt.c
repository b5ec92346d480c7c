/* Tests of bus/nkeys.c, panel-api/crypto/natsjwt.c and panel-api/api/natsauth.c.
 *
 * The unit cases pin the NKey encoding to vectors computed independently
 * (Python's base64.b32encode, binascii.crc_hqx and the cryptography
 * package's Ed25519 over the seed bytes 0..31). The integration cases make
 * the real judge decide: a nats-server in operator mode is configured with
 * our operator and account JWTs, and nats.c connects with a .creds file we
 * minted; the server must accept the chain and enforce the node's
 * publish/subscribe permissions, and must refuse a user JWT signed by an
 * account it does not know. */
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nats/nats.h>

#include <jansson.h>
#include <sys/stat.h>
#include <time.h>

#include "base64.h"
#include "harness.h"
#include "natsauth.h"
#include "natsjwt.h"
#include "nkeys.h"
#include "subject.h"
#include "util.h"

/* ---- NKey encoding --------------------------------------------------- */

static void test_crc16(void)
{
    CU_ASSERT_EQUAL(wd_nkey_crc16("123456789", 9), 0x31C3);
    CU_ASSERT_EQUAL(wd_nkey_crc16("", 0), 0);
}

static void test_base32(void)
{
    static const char *const vec[][2] = {{"", ""},
                                         {"f", "MY"},
                                         {"fo", "MZXQ"},
                                         {"foo", "MZXW6"},
                                         {"foob", "MZXW6YQ"},
                                         {"fooba", "MZXW6YTB"},
                                         {"foobar", "MZXW6YTBOI"}};
    char out[32];
    uint8_t back[32];
    size_t n;
    for (size_t i = 0; i < sizeof vec / sizeof vec[0]; i++) {
        CU_ASSERT_EQUAL(wd_nkey_base32_encode(vec[i][0], strlen(vec[i][0]), out, sizeof out),
                        WD_OK);
        CU_ASSERT_STRING_EQUAL(out, vec[i][1]);
        CU_ASSERT_EQUAL(wd_nkey_base32_decode(vec[i][1], strlen(vec[i][1]), back, sizeof back, &n),
                        WD_OK);
        CU_ASSERT_EQUAL(n, strlen(vec[i][0]));
        CU_ASSERT(memcmp(back, vec[i][0], n) == 0);
    }
    CU_ASSERT_EQUAL(wd_nkey_base32_decode("MZ", 2, back, sizeof back, &n), WD_ERR_INVALID);
    CU_ASSERT_EQUAL(wd_nkey_base32_decode("my", 2, back, sizeof back, &n), WD_ERR_INVALID);
    CU_ASSERT_EQUAL(wd_nkey_base32_decode("M1", 2, back, sizeof back, &n), WD_ERR_INVALID);
    CU_ASSERT_EQUAL(wd_nkey_base32_decode("MZX", 3, back, sizeof back, &n), WD_ERR_INVALID);
    CU_ASSERT_EQUAL(wd_nkey_base32_encode("foo", 3, out, 5), WD_ERR_INVALID);
}

/* Seed bytes 0..31 of each type and their public keys. */
static const char *const VEC[][3] = {
    {"user", "SUAAAAICAMCAKBQHBAEQUCYMBUHA6EARCIJRIFIWC4MBSGQ3DQOR4H776Y",
     "UAB2CB576PHBBPQ5ODORRZ2LYCMWPZGWGCN2KDK7DXOIMZASKUY3RLKK"},
    {"account", "SAAAAAICAMCAKBQHBAEQUCYMBUHA6EARCIJRIFIWC4MBSGQ3DQOR4HYMHI",
     "AAB2CB576PHBBPQ5ODORRZ2LYCMWPZGWGCN2KDK7DXOIMZASKUY3QPZV"},
    {"operator", "SOAAAAICAMCAKBQHBAEQUCYMBUHA6EARCIJRIFIWC4MBSGQ3DQOR4H2AJA",
     "OAB2CB576PHBBPQ5ODORRZ2LYCMWPZGWGCN2KDK7DXOIMZASKUY3QZVT"},
};
static const char SIG_HEX[] = "7284d6815f05616df69a7622d93965cb1a22f7588b760895d55951f1400b0343"
                              "eb1996569bc5e7bfdbcc2f59e2e2a180402f7599a46820b4c030d14998440f0b";

static void test_known_keys(void)
{
    static const wd_nkey_type types[] = {WD_NKEY_USER, WD_NKEY_ACCOUNT, WD_NKEY_OPERATOR};
    char pub[WD_NKEY_PUB_SIZE];
    wd_nkey_type t;
    for (size_t i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL(wd_nkey_public_from_seed(VEC[i][1], pub), WD_OK);
        CU_ASSERT_STRING_EQUAL(pub, VEC[i][2]);
        CU_ASSERT_EQUAL(wd_nkey_type_of(VEC[i][1], &t), WD_OK);
        CU_ASSERT_EQUAL(t, types[i]);
        CU_ASSERT_EQUAL(wd_nkey_type_of(VEC[i][2], &t), WD_OK);
        CU_ASSERT_EQUAL(t, types[i]);
    }
    uint8_t sig[WD_NKEY_SIG_BYTES], want[WD_NKEY_SIG_BYTES];
    for (size_t i = 0; i < sizeof want; i++) {
        unsigned v = 0;
        CU_ASSERT_EQUAL(sscanf(SIG_HEX + 2 * i, "%2x", &v), 1);
        want[i] = (uint8_t)v;
    }
    CU_ASSERT_EQUAL(wd_nkey_sign(VEC[0][1], "warden", 6, sig), WD_OK);
    CU_ASSERT(memcmp(sig, want, sizeof sig) == 0);
    CU_ASSERT_EQUAL(wd_nkey_verify(VEC[0][2], "warden", 6, sig), WD_OK);
    CU_ASSERT_EQUAL(wd_nkey_verify(VEC[0][2], "wardem", 6, sig), WD_ERR_DENIED);
    /* (The three vectors share one Ed25519 key; another key must refuse.) */
    char seed[WD_NKEY_SEED_SIZE], other[WD_NKEY_PUB_SIZE];
    CU_ASSERT_EQUAL(wd_nkey_generate(WD_NKEY_USER, seed, other), WD_OK);
    CU_ASSERT_EQUAL(wd_nkey_verify(other, "warden", 6, sig), WD_ERR_DENIED);
}

static void test_malformed_keys(void)
{
    char pub[WD_NKEY_PUB_SIZE], bad[WD_NKEY_SEED_SIZE];
    wd_nkey_type t;
    uint8_t sig[WD_NKEY_SIG_BYTES] = {0};
    /* One changed character breaks the checksum. */
    snprintf(bad, sizeof bad, "%s", VEC[0][1]);
    bad[20] = bad[20] == 'A' ? 'B' : 'A';
    CU_ASSERT_EQUAL(wd_nkey_public_from_seed(bad, pub), WD_ERR_INVALID);
    snprintf(bad, sizeof bad, "%s", VEC[0][2]);
    bad[20] = bad[20] == 'A' ? 'B' : 'A';
    CU_ASSERT_EQUAL(wd_nkey_verify(bad, "x", 1, sig), WD_ERR_INVALID);
    /* A public key is not a seed and vice versa; truncation is refused. */
    CU_ASSERT_EQUAL(wd_nkey_public_from_seed(VEC[0][2], pub), WD_ERR_INVALID);
    CU_ASSERT_EQUAL(wd_nkey_verify(VEC[0][1], "x", 1, sig), WD_ERR_INVALID);
    snprintf(bad, sizeof bad, "%.*s", WD_NKEY_SEED_LEN - 1, VEC[0][1]);
    CU_ASSERT_EQUAL(wd_nkey_type_of(bad, &t), WD_ERR_INVALID);
    CU_ASSERT_EQUAL(wd_nkey_type_of("", &t), WD_ERR_INVALID);
    CU_ASSERT_EQUAL(wd_nkey_type_of(NULL, &t), WD_ERR_INVALID);
    CU_ASSERT_EQUAL(wd_nkey_generate((wd_nkey_type)(1 << 3), bad, pub), WD_ERR_INVALID);
}

static void test_generate(void)
{
    static const struct {
        wd_nkey_type t;
        char s, p;
    } kinds[] = {
        {WD_NKEY_OPERATOR, 'O', 'O'}, {WD_NKEY_ACCOUNT, 'A', 'A'}, {WD_NKEY_USER, 'U', 'U'}};
    for (size_t i = 0; i < 3; i++) {
        char seed[WD_NKEY_SEED_SIZE], pub[WD_NKEY_PUB_SIZE], pub2[WD_NKEY_PUB_SIZE];
        char seed2[WD_NKEY_SEED_SIZE], pub3[WD_NKEY_PUB_SIZE];
        uint8_t sig[WD_NKEY_SIG_BYTES];
        CU_ASSERT_EQUAL_FATAL(wd_nkey_generate(kinds[i].t, seed, pub), WD_OK);
        CU_ASSERT_EQUAL(strlen(seed), WD_NKEY_SEED_LEN);
        CU_ASSERT_EQUAL(strlen(pub), WD_NKEY_PUB_LEN);
        CU_ASSERT_EQUAL(seed[0], 'S');
        CU_ASSERT_EQUAL(seed[1], kinds[i].s);
        CU_ASSERT_EQUAL(pub[0], kinds[i].p);
        CU_ASSERT_EQUAL(wd_nkey_public_from_seed(seed, pub2), WD_OK);
        CU_ASSERT_STRING_EQUAL(pub, pub2);
        CU_ASSERT_EQUAL(wd_nkey_sign(seed, "hello", 5, sig), WD_OK);
        CU_ASSERT_EQUAL(wd_nkey_verify(pub, "hello", 5, sig), WD_OK);
        sig[0] ^= 1;
        CU_ASSERT_EQUAL(wd_nkey_verify(pub, "hello", 5, sig), WD_ERR_DENIED);
        CU_ASSERT_EQUAL(wd_nkey_generate(kinds[i].t, seed2, pub3), WD_OK);
        CU_ASSERT_STRING_NOT_EQUAL(seed, seed2);
    }
}

/* ---- JWT shape --------------------------------------------------------- */

static void test_jwt_shape(void)
{
    char *jwt = NULL, *creds = NULL;
    const char *pub[] = {"warden.server.>"}, *sub[] = {"warden.agent.n1.>"};
    CU_ASSERT_EQUAL_FATAL(wd_natsjwt_user(VEC[1][1], VEC[0][2], "n1", pub, 1, sub, 1, &jwt), WD_OK);
    /* header.payload.signature; the header is fixed. */
    CU_ASSERT(strncmp(jwt, "eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.", 47) == 0);
    const char *dot2 = strrchr(jwt, '.');
    CU_ASSERT_EQUAL_FATAL(dot2 != NULL && dot2 > jwt + 47, true);
    CU_ASSERT_EQUAL(strlen(dot2 + 1), 86); /* 64 bytes, base64url */
    /* The wrong key types are refused. */
    char *x = (char *)1;
    CU_ASSERT_EQUAL(wd_natsjwt_user(VEC[2][1], VEC[0][2], "n1", pub, 1, sub, 1, &x),
                    WD_ERR_INVALID);
    CU_ASSERT_PTR_NULL(x);
    CU_ASSERT_EQUAL(wd_natsjwt_user(VEC[1][1], VEC[1][2], "n1", pub, 1, sub, 1, &x),
                    WD_ERR_INVALID);
    CU_ASSERT_EQUAL(wd_natsjwt_account(VEC[1][1], VEC[1][2], "a", NULL, 0, &x), WD_ERR_INVALID);
    CU_ASSERT_EQUAL(wd_natsjwt_operator(VEC[1][1], "op", NULL, &x), WD_ERR_INVALID);
    CU_ASSERT_EQUAL(wd_nkey_creds(jwt, VEC[1][1], &x), WD_ERR_INVALID);

    CU_ASSERT_EQUAL_FATAL(wd_nkey_creds(jwt, VEC[0][1], &creds), WD_OK);
    char want[2048];
    snprintf(want, sizeof want,
             "-----BEGIN NATS USER JWT-----\n%s\n------END NATS USER JWT------\n\n"
             "************************* IMPORTANT *************************\n"
             "NKEY Seed printed below can be used to sign and prove identity.\n"
             "NKEYs are sensitive and should be treated as secrets.\n\n"
             "-----BEGIN USER NKEY SEED-----\n%s\n------END USER NKEY SEED------\n\n"
             "*************************************************************\n",
             jwt, VEC[0][1]);
    CU_ASSERT_STRING_EQUAL(creds, want);
    free(creds);
    free(jwt);
}

/* ---- nats-server in operator mode ------------------------------------ */

static const char *dir;
static pid_t server = -1;
static char url[64];
static char op_seed[WD_NKEY_SEED_SIZE], op_pub[WD_NKEY_PUB_SIZE];
static char acc_seed[WD_NKEY_SEED_SIZE], acc_pub[WD_NKEY_PUB_SIZE];
static char sys_seed[WD_NKEY_SEED_SIZE], sys_pub[WD_NKEY_PUB_SIZE];
/* A signing key listed in the account JWT, as the panel would hold. */
static char sk_seed[WD_NKEY_SEED_SIZE], sk_pub[WD_NKEY_PUB_SIZE];

static atomic_int sub_denied, pub_denied;

/* nats.c reports both kinds of violation with NATS_NOT_PERMITTED and no
 * subscription; the server's text (the connection's last error) says which. */
static void on_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *ud)
{
    const char *text = NULL;
    (void)sub;
    (void)ud;
    if (err != NATS_NOT_PERMITTED)
        return;
    natsConnection_GetLastError(nc, &text);
    if (text && strstr(text, "Subscription"))
        atomic_fetch_add(&sub_denied, 1);
    else if (text && strstr(text, "Publish"))
        atomic_fetch_add(&pub_denied, 1);
}

static bool write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return false;
    size_t len = strlen(text);
    bool ok = write(fd, text, len) == (ssize_t)len;
    return close(fd) == 0 && ok;
}

/* Mints a user under account_seed and writes its .creds file to
 * dir/<name>.creds; returns the path (static, one per name). */
static const char *mint_creds(const char *account_seed, const char *name, const char *const *pub,
                              size_t npub, const char *const *sub, size_t nsub, char *path,
                              size_t pathlen)
{
    char seed[WD_NKEY_SEED_SIZE], upub[WD_NKEY_PUB_SIZE];
    char *jwt = NULL, *creds = NULL;
    const char *res = NULL;
    if (wd_nkey_generate(WD_NKEY_USER, seed, upub) != WD_OK)
        goto out;
    if (wd_natsjwt_user(account_seed, upub, name, pub, npub, sub, nsub, &jwt) != WD_OK)
        goto out;
    if (wd_nkey_creds(jwt, seed, &creds) != WD_OK)
        goto out;
    snprintf(path, pathlen, "%s/%s.creds", dir, name);
    if (write_file(path, creds))
        res = path;
out:
    free(jwt);
    free(creds);
    return res;
}

static natsStatus connect_creds(const char *creds, natsConnection **nc)
{
    natsOptions *o = NULL;
    natsStatus s = natsOptions_Create(&o);
    if (s == NATS_OK)
        s = natsOptions_SetURL(o, url);
    if (s == NATS_OK)
        s = natsOptions_SetUserCredentialsFromFiles(o, creds, NULL);
    if (s == NATS_OK)
        s = natsOptions_SetErrorHandler(o, on_error, NULL);
    if (s == NATS_OK)
        s = natsOptions_SetAllowReconnect(o, false);
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(o, 10000); /* generous: sanitizers on a busy host */
    if (s == NATS_OK)
        s = natsConnection_Connect(nc, o);
    natsOptions_Destroy(o);
    return s;
}

static int server_init(void)
{
    char *op_jwt = NULL, *acc_jwt = NULL, *sys_jwt = NULL, *conf = NULL;
    char path[600], op_path[600];
    int rc = -1;
    dir = wd_h_tmpdir("natsjwt");
    if (!dir || nats_Open(-1) != NATS_OK)
        return -1;
    if (wd_nkey_generate(WD_NKEY_OPERATOR, op_seed, op_pub) != WD_OK ||
        wd_nkey_generate(WD_NKEY_ACCOUNT, acc_seed, acc_pub) != WD_OK ||
        wd_nkey_generate(WD_NKEY_ACCOUNT, sys_seed, sys_pub) != WD_OK ||
        wd_nkey_generate(WD_NKEY_ACCOUNT, sk_seed, sk_pub) != WD_OK)
        goto out;
    const char *signing[] = {sk_pub};
    if (wd_natsjwt_operator(op_seed, "warden", sys_pub, &op_jwt) != WD_OK ||
        wd_natsjwt_account(op_seed, acc_pub, "WARDEN", signing, 1, &acc_jwt) != WD_OK ||
        wd_natsjwt_system_account(op_seed, sys_pub, &sys_jwt) != WD_OK)
        goto out;
    snprintf(op_path, sizeof op_path, "%s/operator.jwt", dir);
    if (!write_file(op_path, op_jwt))
        goto out;
    int port = wd_h_free_port();
    snprintf(url, sizeof url, "nats://127.0.0.1:%d", port);
    if (asprintf(&conf,
                 "listen: \"127.0.0.1:%d\"\n"
                 "operator: \"%s\"\n"
                 "system_account: %s\n"
                 "resolver: MEMORY\n"
                 "resolver_preload: {\n  %s: \"%s\"\n  %s: \"%s\"\n}\n"
                 "jetstream: { store_dir: \"%s/js\" }\n",
                 port, op_path, sys_pub, sys_pub, sys_jwt, acc_pub, acc_jwt, dir) < 0) {
        conf = NULL;
        goto out;
    }
    snprintf(path, sizeof path, "%s/nats.conf", dir);
    if (!write_file(path, conf))
        goto out;
    char log[620];
    snprintf(log, sizeof log, "%s/nats.log", dir);
    const char *argv[] = {"nats-server", "-c", path, NULL};
    server = wd_h_spawn(argv, NULL, log);
    if (server < 0 || !wd_h_wait_port(port, 5000)) {
        fprintf(stderr, "nats-server did not start; see %s\n", log);
        goto out;
    }
    rc = 0;
out:
    free(op_jwt);
    free(acc_jwt);
    free(sys_jwt);
    free(conf);
    return rc;
}

static int server_clean(void)
{
    if (server > 0)
        wd_h_stop(server, SIGTERM, 5000);
    server = -1;
    nats_CloseAndWait(2000);
    return 0;
}

static const char *const N1_PUB[] = {"warden.server.>", "_INBOX.>"};
static const char *const N1_SUB[] = {"warden.agent.n1.>", "_INBOX.>"};
static const char *const ALL[] = {">"};

static void reply_cb(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *ud)
{
    (void)sub;
    (void)ud;
    if (natsMsg_GetReply(m))
        natsConnection_PublishString(nc, natsMsg_GetReply(m), "pong");
    natsMsg_Destroy(m);
}

static void test_node_permissions(void)
{
    char n1_path[700], ops_path[700];
    natsConnection *n1 = NULL, *ops = NULL;
    natsSubscription *own = NULL, *other = NULL, *watch = NULL, *srv = NULL, *responder = NULL;
    natsMsg *m = NULL;

    CU_ASSERT_PTR_NOT_NULL_FATAL(
        mint_creds(acc_seed, "n1", N1_PUB, 2, N1_SUB, 2, n1_path, sizeof n1_path));
    CU_ASSERT_PTR_NOT_NULL_FATAL(
        mint_creds(acc_seed, "ops", ALL, 1, ALL, 1, ops_path, sizeof ops_path));
    CU_ASSERT_EQUAL_FATAL(connect_creds(n1_path, &n1), NATS_OK);
    CU_ASSERT_EQUAL(connect_creds(ops_path, &ops), NATS_OK);
    if (!ops)
        goto out;

    /* Its own subject: delivered. */
    CU_ASSERT_EQUAL(natsConnection_SubscribeSync(&own, n1, "warden.agent.n1.>"), NATS_OK);
    CU_ASSERT_EQUAL(natsConnection_Flush(n1), NATS_OK);
    CU_ASSERT_EQUAL(natsConnection_PublishString(ops, "warden.agent.n1.x", "hello n1"), NATS_OK);
    CU_ASSERT_EQUAL(natsConnection_Flush(ops), NATS_OK);
    if (natsSubscription_NextMsg(&m, own, 3000) == NATS_OK) {
        CU_ASSERT_STRING_EQUAL(natsMsg_GetData(m), "hello n1");
        natsMsg_Destroy(m);
        m = NULL;
    } else {
        CU_FAIL("n1 did not receive on its own subject");
    }

    /* Another node's subjects: the server refuses the subscription. */
    CU_ASSERT_EQUAL(natsConnection_SubscribeSync(&other, n1, "warden.agent.n2.>"), NATS_OK);
    natsConnection_Flush(n1);
    CU_ASSERT(WD_H_WAIT(atomic_load(&sub_denied) > 0, 3000));
    natsConnection_PublishString(ops, "warden.agent.n2.y", "for n2");
    natsConnection_Flush(ops);
    if (other) {
        natsStatus s = natsSubscription_NextMsg(&m, other, 500);
        CU_ASSERT_NOT_EQUAL(s, NATS_OK);
        if (s == NATS_OK)
            natsMsg_Destroy(m);
        m = NULL;
    }

    /* Publishing to its servers' subjects is allowed ... */
    CU_ASSERT_EQUAL(natsConnection_SubscribeSync(&srv, ops, "warden.server.>"), NATS_OK);
    CU_ASSERT_EQUAL(natsConnection_SubscribeSync(&watch, ops, "warden.agent.>"), NATS_OK);
    natsConnection_Flush(ops);
    CU_ASSERT_EQUAL(natsConnection_PublishString(n1, "warden.server.s1.event", "up"), NATS_OK);
    natsConnection_Flush(n1);
    if (natsSubscription_NextMsg(&m, srv, 3000) == NATS_OK) {
        CU_ASSERT_STRING_EQUAL(natsMsg_GetSubject(m), "warden.server.s1.event");
        natsMsg_Destroy(m);
        m = NULL;
    } else {
        CU_FAIL("n1's allowed publish did not arrive");
    }
    /* ... publishing anywhere else is refused and never delivered. */
    int before = atomic_load(&pub_denied);
    CU_ASSERT_EQUAL(natsConnection_PublishString(n1, "warden.agent.n2.cmd", "forged"), NATS_OK);
    natsConnection_Flush(n1);
    CU_ASSERT(WD_H_WAIT(atomic_load(&pub_denied) > before, 3000));
    if (natsSubscription_NextMsg(&m, watch, 500) == NATS_OK) {
        CU_FAIL("a forbidden publish was delivered");
        natsMsg_Destroy(m);
        m = NULL;
    }

    /* Request/reply through _INBOX works for the node. */
    CU_ASSERT_EQUAL(natsConnection_Subscribe(&responder, ops, "warden.server.rpc", reply_cb, NULL),
                    NATS_OK);
    natsConnection_Flush(ops);
    if (natsConnection_RequestString(&m, n1, "warden.server.rpc", "ping", 3000) == NATS_OK) {
        CU_ASSERT_STRING_EQUAL(natsMsg_GetData(m), "pong");
        natsMsg_Destroy(m);
        m = NULL;
    } else {
        CU_FAIL("n1's request got no reply");
    }

    /* JetStream is enabled for the account by its JWT limits. */
    if (natsConnection_RequestString(&m, ops, "$JS.API.INFO", "", 3000) == NATS_OK) {
        CU_ASSERT_PTR_NULL(strstr(natsMsg_GetData(m), "\"error\""));
        natsMsg_Destroy(m);
        m = NULL;
    } else {
        CU_FAIL("no JetStream in the account");
    }
out:
    natsSubscription_Destroy(own);
    natsSubscription_Destroy(other);
    natsSubscription_Destroy(srv);
    natsSubscription_Destroy(watch);
    natsSubscription_Destroy(responder);
    natsConnection_Destroy(n1);
    natsConnection_Destroy(ops);
}

static void test_rejected_chains(void)
{
    char path[700];
    natsConnection *nc = NULL;
    /* A user signed by an account the operator never signed. */
    char rogue_seed[WD_NKEY_SEED_SIZE], rogue_pub[WD_NKEY_PUB_SIZE];
    CU_ASSERT_EQUAL_FATAL(wd_nkey_generate(WD_NKEY_ACCOUNT, rogue_seed, rogue_pub), WD_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(
        mint_creds(rogue_seed, "rogue", ALL, 1, ALL, 1, path, sizeof path));
    natsStatus s = connect_creds(path, &nc);
    CU_ASSERT_EQUAL(s, NATS_CONNECTION_AUTH_FAILED);
    natsConnection_Destroy(nc);
    nc = NULL;

    /* A user JWT paired with a seed that is not its subject's: the nonce
     * signature does not match. */
    char seed[WD_NKEY_SEED_SIZE], upub[WD_NKEY_PUB_SIZE];
    char other_seed[WD_NKEY_SEED_SIZE], other_pub[WD_NKEY_PUB_SIZE];
    char *jwt = NULL, *creds = NULL;
    CU_ASSERT_EQUAL_FATAL(wd_nkey_generate(WD_NKEY_USER, seed, upub), WD_OK);
    CU_ASSERT_EQUAL_FATAL(wd_nkey_generate(WD_NKEY_USER, other_seed, other_pub), WD_OK);
    CU_ASSERT_EQUAL_FATAL(wd_natsjwt_user(acc_seed, upub, "x", ALL, 1, ALL, 1, &jwt), WD_OK);
    CU_ASSERT_EQUAL_FATAL(wd_nkey_creds(jwt, other_seed, &creds), WD_OK);
    snprintf(path, sizeof path, "%s/mismatch.creds", dir);
    CU_ASSERT_FATAL(write_file(path, creds));
    s = connect_creds(path, &nc);
    CU_ASSERT_EQUAL(s, NATS_CONNECTION_AUTH_FAILED);
    natsConnection_Destroy(nc);
    nc = NULL;
    free(creds);
    creds = NULL;

    /* The genuine pair connects (the two failures above are not flukes). */
    CU_ASSERT_EQUAL(wd_nkey_creds(jwt, seed, &creds), WD_OK);
    CU_ASSERT_FATAL(write_file(path, creds));
    CU_ASSERT_EQUAL(connect_creds(path, &nc), NATS_OK);
    natsConnection_Destroy(nc);
    free(creds);
    free(jwt);
}

/* Writes creds for a user signed by signer_seed on behalf of issuer. */
static bool signer_creds(const char *signer_seed, const char *issuer, const char *name, char *path,
                         size_t pathlen)
{
    char seed[WD_NKEY_SEED_SIZE], upub[WD_NKEY_PUB_SIZE];
    char *jwt = NULL, *creds = NULL;
    const char *pub[] = {"warden.server.>"}, *sub[] = {"warden.agent.sk.>"};
    bool ok =
        wd_nkey_generate(WD_NKEY_USER, seed, upub) == WD_OK &&
        wd_natsjwt_user_by_signer(signer_seed, issuer, upub, name, pub, 1, sub, 1, &jwt) == WD_OK &&
        wd_nkey_creds(jwt, seed, &creds) == WD_OK;
    if (ok) {
        snprintf(path, pathlen, "%s/%s.creds", dir, name);
        ok = write_file(path, creds);
    }
    free(jwt);
    free(creds);
    return ok;
}

static void test_signing_key(void)
{
    char path[700];
    natsConnection *nc = NULL;
    natsSubscription *sub = NULL;
    /* Signed by the account's listed signing key: accepted, permissions hold. */
    CU_ASSERT_FATAL(signer_creds(sk_seed, acc_pub, "sk-user", path, sizeof path));
    CU_ASSERT_EQUAL_FATAL(connect_creds(path, &nc), NATS_OK);
    int before = atomic_load(&sub_denied);
    CU_ASSERT_EQUAL(natsConnection_SubscribeSync(&sub, nc, "warden.agent.other.>"), NATS_OK);
    natsConnection_Flush(nc);
    CU_ASSERT(WD_H_WAIT(atomic_load(&sub_denied) > before, 3000));
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(nc);
    nc = NULL;
    /* An account key the account JWT does not list, claiming the account: refused. */
    char rogue_seed[WD_NKEY_SEED_SIZE], rogue_pub[WD_NKEY_PUB_SIZE];
    CU_ASSERT_EQUAL_FATAL(wd_nkey_generate(WD_NKEY_ACCOUNT, rogue_seed, rogue_pub), WD_OK);
    CU_ASSERT_FATAL(signer_creds(rogue_seed, acc_pub, "rogue-signer", path, sizeof path));
    CU_ASSERT_EQUAL(connect_creds(path, &nc), NATS_CONNECTION_AUTH_FAILED);
    natsConnection_Destroy(nc);
}

/* ---- natsauth: the chain `warden-api nats init` writes, and minting ---- */

static char chain[512];
static wd_h_nats secure;

static int natsauth_init(void)
{
    const char *d = wd_h_tmpdir("natsauth");
    if (!d)
        return -1;
    snprintf(chain, sizeof chain, "%s/chain", d);
    if (wd_natsauth_init(chain, NULL) != WD_OK)
        return -1;
    snprintf(secure.auth_conf, sizeof secure.auth_conf, "%s/auth.conf", chain);
    return wd_h_nats_start(&secure) ? 0 : -1;
}

static int natsauth_clean(void)
{
    wd_h_nats_stop(&secure);
    return 0;
}

/* The settings api.env names, loaded. */
static wd_natsauth *load_chain(void)
{
    char path[700], line[800], account[128] = "", key[700] = "";
    snprintf(path, sizeof path, "%s/api.env", chain);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (strncmp(line, "WARDEN_NATS_ACCOUNT=", 20) == 0)
            snprintf(account, sizeof account, "%.100s", line + 20);
        if (strncmp(line, "WARDEN_NATS_SIGNING_KEY=", 24) == 0)
            snprintf(key, sizeof key, "%.600s", line + 24);
    }
    if (f)
        fclose(f);
    wd_natsauth *na = NULL;
    CU_ASSERT_EQUAL(wd_natsauth_load(account, key, &na), WD_OK);
    return na;
}

/* The claims of a JWT, decoded. */
static json_t *claims_of(const char *jwt)
{
    const char *p = strchr(jwt, '.'), *e = p ? strchr(p + 1, '.') : NULL;
    uint8_t buf[4096];
    size_t n = 0;
    if (!e || wd_base64_url_decode(p + 1, (size_t)(e - p - 1), buf, sizeof buf, &n) != WD_OK)
        return NULL;
    return json_loadb((const char *)buf, n, 0, NULL);
}

static void test_init_files(void)
{
    static const struct {
        const char *name;
        unsigned mode;
    } files[] = {{"operator.seed", 0600}, {"account.seed", 0600}, {"signing.seed", 0600},
                 {"api.creds", 0600},     {"ops.creds", 0600},    {"ws.creds", 0600},
                 {"api.env", 0600},
                 {"auth.conf", 0644},     {"operator.jwt", 0644}};
    char path[700];
    struct stat sb;
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", chain, files[i].name);
        CU_ASSERT(stat(path, &sb) == 0 && (sb.st_mode & 0777) == files[i].mode);
    }
    /* A second init never overwrites the chain. */
    char *before = NULL, *after = NULL;
    snprintf(path, sizeof path, "%s/signing.seed", chain);
    CU_ASSERT_EQUAL(wd_read_file(path, 4096, &before, NULL), WD_OK);
    CU_ASSERT_EQUAL(wd_natsauth_init(chain, NULL), WD_ERR_EXISTS);
    CU_ASSERT_EQUAL(wd_read_file(path, 4096, &after, NULL), WD_OK);
    CU_ASSERT(before && after && strcmp(before, after) == 0);
    free(before);
    free(after);
}

static void test_load_refuses(void)
{
    char path[700], key[700], bad[700];
    wd_natsauth *na = NULL;
    snprintf(key, sizeof key, "%s/signing.seed", chain);
    /* Not an account key; a missing file; a file others can read; not a seed. */
    CU_ASSERT_EQUAL(wd_natsauth_load(VEC[0][2], key, &na), WD_ERR_INVALID);
    CU_ASSERT_EQUAL(wd_natsauth_load("", key, &na), WD_ERR_INVALID);
    CU_ASSERT_EQUAL(wd_natsauth_load(VEC[1][2], "/nonexistent/seed", &na), WD_ERR_INVALID);
    snprintf(bad, sizeof bad, "%s/open.seed", dir ? dir : chain);
    snprintf(path, sizeof path, "%s\n", VEC[1][1]);
    CU_ASSERT_FATAL(write_file(bad, path));
    chmod(bad, 0644);
    CU_ASSERT_EQUAL(wd_natsauth_load(VEC[1][2], bad, &na), WD_ERR_INVALID);
    CU_ASSERT_PTR_NULL(na);
    CU_ASSERT_FATAL(write_file(bad, VEC[0][1])); /* a user seed */
    chmod(bad, 0600);
    CU_ASSERT_EQUAL(wd_natsauth_load(VEC[1][2], bad, &na), WD_ERR_INVALID);
    CU_ASSERT_FATAL(write_file(bad, "not a seed at all\n"));
    CU_ASSERT_EQUAL(wd_natsauth_load(VEC[1][2], bad, &na), WD_ERR_INVALID);
    CU_ASSERT_PTR_NULL(na);
}

/* Splits "secret.SEED.JWT"; writes the join user's creds to path. */
static bool join_creds(const char *token, char *pub, const char **jwt_out, const char *path)
{
    const char *d1 = strchr(token, '.');
    if (!d1 || strlen(d1 + 1) < WD_NKEY_SEED_LEN + 2 || d1[1 + WD_NKEY_SEED_LEN] != '.')
        return false;
    char seed[WD_NKEY_SEED_SIZE], *creds = NULL;
    memcpy(seed, d1 + 1, WD_NKEY_SEED_LEN);
    seed[WD_NKEY_SEED_LEN] = '\0';
    const char *jwt = d1 + 2 + WD_NKEY_SEED_LEN;
    bool ok = wd_nkey_public_from_seed(seed, pub) == WD_OK &&
              wd_nkey_creds(jwt, seed, &creds) == WD_OK && write_file(path, creds);
    free(creds);
    *jwt_out = jwt;
    return ok;
}

static void test_join_user(void)
{
    wd_natsauth *na = load_chain();
    CU_ASSERT_PTR_NOT_NULL_FATAL(na);
    char *token = NULL, *x = (char *)1, pub[WD_NKEY_PUB_SIZE], path[700], inbox[128];
    const char *jwt = NULL;
    int64_t exp = (int64_t)time(NULL) + 3600;
    CU_ASSERT_EQUAL(wd_natsauth_join_token(na, "wdj_a.b", exp, &x), WD_ERR_INVALID);
    CU_ASSERT_PTR_NULL(x);
    CU_ASSERT_EQUAL_FATAL(wd_natsauth_join_token(na, "wdj_secret", exp, &token), WD_OK);
    CU_ASSERT(strncmp(token, "wdj_secret.S", 12) == 0);
    snprintf(path, sizeof path, "%s/join.creds", chain);
    CU_ASSERT_FATAL(join_creds(token, pub, &jwt, path));

    /* Its claims: publish the join subject, read its own inbox, expire. */
    json_t *c = claims_of(jwt);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    char prefix[WD_SUBJ_INBOX_SIZE];
    CU_ASSERT_EQUAL(wd_subj_inbox_prefix(prefix, pub), WD_OK);
    CU_ASSERT_EQUAL(strlen(prefix), 31);
    snprintf(inbox, sizeof inbox, "%s.>", prefix);
    json_t *nats_claims = json_object_get(c, "nats");
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(c, "exp")), exp);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(c, "sub")), pub);
    json_t *pa = json_object_get(json_object_get(nats_claims, "pub"), "allow");
    json_t *sa = json_object_get(json_object_get(nats_claims, "sub"), "allow");
    CU_ASSERT(json_array_size(pa) == 1 &&
              strcmp(json_string_value(json_array_get(pa, 0)), "warden.discovery.join") == 0);
    CU_ASSERT(json_array_size(sa) == 1 &&
              strcmp(json_string_value(json_array_get(sa, 0)), inbox) == 0);
    json_decref(c);

    /* nats-server agrees: the join user gets in, may send a join, nothing else. */
    snprintf(url, sizeof url, "%s", secure.url);
    natsConnection *nc = NULL;
    CU_ASSERT_EQUAL_FATAL(connect_creds(path, &nc), NATS_OK);
    int before = atomic_load(&pub_denied);
    CU_ASSERT_EQUAL(natsConnection_PublishString(nc, "warden.discovery.join", "x"), NATS_OK);
    natsConnection_Flush(nc);
    usleep(200000);
    CU_ASSERT_EQUAL(atomic_load(&pub_denied), before);
    natsConnection_PublishString(nc, "warden.discovery.hello", "x");
    natsConnection_Flush(nc);
    CU_ASSERT(WD_H_WAIT(atomic_load(&pub_denied) > before, 3000));
    natsConnection_Destroy(nc);
    nc = NULL;
    free(token);
    token = NULL;

    /* An expired join user is refused at the door. */
    CU_ASSERT_EQUAL_FATAL(
        wd_natsauth_join_token(na, "wdj_old", (int64_t)time(NULL) - 60, &token), WD_OK);
    CU_ASSERT_FATAL(join_creds(token, pub, &jwt, path));
    CU_ASSERT_EQUAL(connect_creds(path, &nc), NATS_CONNECTION_AUTH_FAILED);
    natsConnection_Destroy(nc);
    free(token);
    wd_natsauth_free(&na);
}

static void test_node_user(void)
{
    wd_natsauth *na = load_chain();
    CU_ASSERT_PTR_NOT_NULL_FATAL(na);
    char *creds = (char *)1, path[700];
    CU_ASSERT_EQUAL(wd_natsauth_node_creds(na, "a.b", &creds), WD_ERR_INVALID);
    CU_ASSERT_PTR_NULL(creds);
    CU_ASSERT_EQUAL_FATAL(wd_natsauth_node_creds(na, "n7", &creds), WD_OK);
    snprintf(path, sizeof path, "%s/n7.creds", chain);
    CU_ASSERT_FATAL(write_file(path, creds));
    free(creds);

    snprintf(url, sizeof url, "%s", secure.url);
    natsConnection *node = NULL, *api = NULL;
    natsSubscription *sub = NULL, *svc = NULL;
    natsMsg *m = NULL;
    char api_creds[700];
    snprintf(api_creds, sizeof api_creds, "%s/api.creds", chain);
    CU_ASSERT_EQUAL_FATAL(connect_creds(path, &node), NATS_OK);
    CU_ASSERT_EQUAL_FATAL(connect_creds(api_creds, &api), NATS_OK);

    /* A request to the node is answered through allow_responses, though
     * the node has no publish grant on the requester's inbox. */
    CU_ASSERT_EQUAL(natsConnection_Subscribe(&svc, node, "warden.agent.n7.server.s.power",
                                             reply_cb, NULL),
                    NATS_OK);
    natsConnection_Flush(node);
    if (natsConnection_RequestString(&m, api, "warden.agent.n7.server.s.power", "go", 3000) ==
        NATS_OK) {
        CU_ASSERT_STRING_EQUAL(natsMsg_GetData(m), "pong");
        natsMsg_Destroy(m);
        m = NULL;
    } else {
        CU_FAIL("the node could not answer a request");
    }
    /* Its own heartbeats go out; another node's subjects are closed. */
    CU_ASSERT_EQUAL(natsConnection_SubscribeSync(&sub, api, "warden.node.>"), NATS_OK);
    natsConnection_Flush(api);
    natsConnection_PublishString(node, "warden.node.n7.heartbeat", "beat");
    natsConnection_PublishString(node, "warden.node.n8.heartbeat", "forged");
    natsConnection_Flush(node);
    if (natsSubscription_NextMsg(&m, sub, 3000) == NATS_OK) {
        CU_ASSERT_STRING_EQUAL(natsMsg_GetSubject(m), "warden.node.n7.heartbeat");
        natsMsg_Destroy(m);
        m = NULL;
    } else {
        CU_FAIL("the node's heartbeat did not arrive");
    }
    CU_ASSERT_NOT_EQUAL(natsSubscription_NextMsg(&m, sub, 500), NATS_OK);
    natsSubscription_Destroy(sub);
    natsSubscription_Destroy(svc);
    natsConnection_Destroy(node);
    natsConnection_Destroy(api);
    wd_natsauth_free(&na);
}

int main(void)
{
    static const wd_h_case unit[] = {{"crc16", test_crc16},
                                     {"base32", test_base32},
                                     {"known_keys", test_known_keys},
                                     {"malformed_keys", test_malformed_keys},
                                     {"generate", test_generate},
                                     {"jwt_shape", test_jwt_shape},
                                     {NULL, NULL}};
    static const wd_h_case server_cases[] = {{"node_permissions", test_node_permissions},
                                             {"rejected_chains", test_rejected_chains},
                                             {"signing_key", test_signing_key},
                                             {NULL, NULL}};
    wd_h_suite("nkeys", NULL, NULL, unit);
    static const wd_h_case natsauth_cases[] = {{"init_files", test_init_files},
                                               {"load_refuses", test_load_refuses},
                                               {"join_user", test_join_user},
                                               {"node_user", test_node_user},
                                               {NULL, NULL}};
    wd_h_suite("natsjwt_server", server_init, server_clean, server_cases);
    wd_h_suite("natsauth", natsauth_init, natsauth_clean, natsauth_cases);
    return wd_h_run();
}
