/* The agent: start-up, the server registry and request routing.
 *
 * One NATS subscription on warden.agent.<node>.> receives every request for
 * this node. Its callback (a nats.c thread) parses the subject, finds the
 * server's actor and posts the message there; it never touches server
 * state. A sync for an unknown server creates the actor first. Errors that
 * need no actor (bad subject, unknown server, garbage spec) are answered
 * right here. */
#include "agent_int.h"

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cgroup.h"
#include "js.h"
#include "log.h"
#include "nkeys.h"
#include "sandbox.h"
#include "subject.h"
#include "warden/v1/node.pb-c.h"

static void reply_error(wd_agent *ag, natsMsg *m, wd_status st, const char *msg)
{
    wd_bus_respond_status(ag->bus, m, st, msg);
}

static void count_refused(wd_agent *ag, int why)
{
    atomic_fetch_add_explicit(&ag->refused[why], 1, memory_order_relaxed);
}

wd_actor *wd_agent_find(wd_agent *ag, const char *id)
{
    wd_actor *a = NULL;
    pthread_rwlock_rdlock(&ag->reg_mu);
    for (int i = 0; i < ag->nservers; i++) {
        if (strcmp(ag->servers[i]->id, id) == 0) {
            a = wd_actor_ref(ag->servers[i]->actor);
            break;
        }
    }
    pthread_rwlock_unlock(&ag->reg_mu);
    return a;
}

void wd_agent_unregister(wd_agent *ag, const char *id)
{
    wd_server_ref *gone = NULL;
    pthread_rwlock_wrlock(&ag->reg_mu);
    for (int i = 0; i < ag->nservers; i++) {
        if (strcmp(ag->servers[i]->id, id) == 0) {
            gone = ag->servers[i];
            ag->servers[i] = ag->servers[--ag->nservers];
            break;
        }
    }
    pthread_rwlock_unlock(&ag->reg_mu);
    if (gone) {
        wd_actor_unref(&gone->actor);
        free(gone);
    }
}

int wd_agent_count(wd_agent *ag, int *running)
{
    int n, r = 0;
    pthread_rwlock_rdlock(&ag->reg_mu);
    n = ag->nservers;
    for (int i = 0; i < n; i++) {
        int s = atomic_load(&ag->servers[i]->state);
        r += s == WARDEN__V1__SERVER_STATE__SERVER_STATE_RUNNING ||
             s == WARDEN__V1__SERVER_STATE__SERVER_STATE_STARTING ||
             s == WARDEN__V1__SERVER_STATE__SERVER_STATE_STOPPING;
    }
    pthread_rwlock_unlock(&ag->reg_mu);
    if (running)
        *running = r;
    return n;
}

/* A sync for a server this node does not hold yet: validate and create. */
static void create_from_sync(wd_agent *ag, const char *server_id, natsMsg *m)
{
    Warden__V1__SyncRequest *req =
        (Warden__V1__SyncRequest *)wd_bus_decode(&warden__v1__sync_request__descriptor, m);
    if (req == NULL) {
        count_refused(ag, WD_AGENT_REFUSED_INVALID);
        reply_error(ag, m, WD_ERR_INVALID, "sync: body is not a valid warden.v1.SyncRequest");
        goto out;
    }
    if (req->spec == NULL || req->spec->id == NULL || strcmp(req->spec->id, server_id) != 0) {
        count_refused(ag, WD_AGENT_REFUSED_INVALID);
        reply_error(ag, m, WD_ERR_INVALID, "sync: spec.id must equal the server id in the subject");
        goto out;
    }
    if (!wd_uuid_valid(server_id)) {
        count_refused(ag, WD_AGENT_REFUSED_INVALID);
        reply_error(ag, m, WD_ERR_INVALID, "sync: server id must be a UUID");
        goto out;
    }
    /* The actor is created empty-handed: it validates the spec itself when
     * it handles this very request, so create and update share one path. */
    Warden__V1__ServerSpec *shell = calloc(1, sizeof *shell);
    if (shell == NULL) {
        count_refused(ag, WD_AGENT_REFUSED_ERROR);
        reply_error(ag, m, WD_ERR_NOMEM, "out of memory");
        goto out;
    }
    warden__v1__server_spec__init(shell);
    shell->id = strdup(server_id);
    wd_server_ref *ref = NULL;
    wd_status st = wd_server_create(ag, shell, &ref);
    if (st != WD_OK && st != WD_ERR_EXISTS) {
        count_refused(ag, WD_AGENT_REFUSED_ERROR);
        reply_error(ag, m, st, wd_err_msg());
        goto out;
    }
    wd_actor *a = wd_agent_find(ag, server_id);
    if (a) {
        if (wd_actor_send(a, SRV_REQUEST, m, NULL) == WD_OK) {
            m = NULL; /* the actor destroys it */
        } else {
            count_refused(ag, WD_AGENT_REFUSED_BUSY);
            reply_error(ag, m, WD_ERR_UNAVAILABLE, "server is busy; try again");
        }
        wd_actor_unref(&a);
    }
out:
    if (req)
        protobuf_c_message_free_unpacked(&req->base, NULL);
    if (m)
        natsMsg_Destroy(m);
}

/* Routes one request (see the file comment). Runs on a nats.c thread. */
static void route(wd_agent *ag, natsMsg *m)
{
    char node[64], server[64];
    const char *op = NULL;
    atomic_fetch_add_explicit(&ag->requests, 1, memory_order_relaxed);
    if (wd_subj_parse_agent(natsMsg_GetSubject(m), node, sizeof node, server, sizeof server,
                            &op) != WD_OK ||
        strcmp(node, ag->node_id) != 0) {
        count_refused(ag, WD_AGENT_REFUSED_INVALID);
        reply_error(ag, m, WD_ERR_INVALID, wd_err_msg());
        natsMsg_Destroy(m);
        return;
    }
    wd_actor *a = wd_agent_find(ag, server);
    if (a == NULL) {
        if (strcmp(op, "sync") == 0) {
            create_from_sync(ag, server, m);
            return;
        }
        char msg[160];
        snprintf(msg, sizeof msg, "server %s is not on node %s", server, ag->node_id);
        count_refused(ag, WD_AGENT_REFUSED_NOT_FOUND);
        reply_error(ag, m, WD_ERR_NOT_FOUND, msg);
        natsMsg_Destroy(m);
        return;
    }
    /* No free function: the server actor destroys the message once it has
     * replied, and on a refused send we still own it to answer. */
    wd_status st = wd_actor_send(a, SRV_REQUEST, m, NULL);
    if (st != WD_OK) {
        count_refused(ag, WD_AGENT_REFUSED_BUSY);
        reply_error(ag, m, st == WD_ERR_FULL ? WD_ERR_FULL : WD_ERR_UNAVAILABLE,
                    st == WD_ERR_FULL ? "server is busy; try again" : "server is being removed");
        natsMsg_Destroy(m);
    }
    wd_actor_unref(&a);
}

static void on_request(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *ud)
{
    wd_log_set_trace(wd_bus_header(m, WD_HDR_TRACE));
    route(ud, m);
    wd_log_set_trace(NULL);
}

/* Node id: flag/env, else data_dir/node-id, else a new UUID persisted there. */
static wd_status load_node_id(wd_agent *ag)
{
    if (ag->cfg->node_id && *ag->cfg->node_id) {
        if (!wd_subj_token_ok(ag->cfg->node_id))
            return WD_ERR(WD_ERR_INVALID, "node id '%s' may not contain '.', '*', '>' or spaces",
                          ag->cfg->node_id);
        snprintf(ag->node_id, sizeof ag->node_id, "%s", ag->cfg->node_id);
        return WD_OK;
    }
    char path[1100];
    snprintf(path, sizeof path, "%s/node-id", ag->cfg->data_dir);
    char *text = NULL;
    wd_status st = wd_read_file(path, 256, &text, NULL);
    if (st == WD_OK) {
        text[strcspn(text, "\r\n")] = '\0';
        if (!wd_subj_token_ok(text)) {
            free(text);
            return WD_ERR(WD_ERR_INVALID, "%s holds an invalid node id", path);
        }
        snprintf(ag->node_id, sizeof ag->node_id, "%s", text);
        free(text);
        return WD_OK;
    }
    if (st != WD_ERR_NOT_FOUND)
        return st;
    if (ag->cfg->join_token && *ag->cfg->join_token) {
        ag->needs_join = true; /* the panel gives us our id (wd_agent_start) */
        return WD_OK;
    }
    char id[WD_UUID_LEN + 1];
    wd_uuid_new(id);
    char line[WD_UUID_LEN + 2];
    snprintf(line, sizeof line, "%s\n", id);
    if ((st = wd_write_file_atomic(path, line, strlen(line), 0644)) != WD_OK)
        return st;
    snprintf(ag->node_id, sizeof ag->node_id, "%s", id);
    wd_info("generated node id %s (saved in %s)", id, path);
    return WD_OK;
}

static wd_status decide_capabilities(wd_agent *ag)
{
    const wd_agent_cfg *c = ag->cfg;
    ag->drop_privs = geteuid() == 0;
    ag->game_uid = -1;
    ag->game_gid = -1;
    if (ag->drop_privs) {
        struct passwd *pw = getpwnam(c->game_user ? c->game_user : "nobody");
        if (pw == NULL)
            return WD_ERR(WD_ERR_INVALID, "game user '%s' does not exist (set --game-user)",
                          c->game_user);
        ag->game_uid = (int)pw->pw_uid;
        ag->game_gid = (int)pw->pw_gid;
        if (ag->game_uid == 0)
            return WD_ERR(WD_ERR_INVALID, "game user must not be root");
    }
    char notes[256] = "";
    bool want = strcmp(c->isolation, "none") != 0;
    if (strcmp(c->isolation, "auto") != 0 && strcmp(c->isolation, "bwrap") != 0 &&
        strcmp(c->isolation, "none") != 0)
        return WD_ERR(WD_ERR_INVALID, "--isolation must be auto, bwrap or none");
    ag->isolate = want && wd_sandbox_probe(c->bwrap_path, ag->game_uid, ag->game_gid, notes,
                                           sizeof notes);
    if (want && !ag->isolate) {
        if (strcmp(c->isolation, "bwrap") == 0)
            return WD_ERR(WD_ERR_UNSUPPORTED, "%s", notes);
        wd_warn("isolation unavailable: %s", notes);
    }
    char cg[256] = "";
    ag->cgroups = wd_cgroup_probe(cg, sizeof cg) == WD_OK;
    if (!ag->cgroups)
        wd_warn("memory/pid limits cannot be enforced: %s", cg);
    snprintf(ag->cap_notes, sizeof ag->cap_notes, "%s%s%s%s",
             ag->isolate ? "" : (want ? notes : "isolation disabled by configuration"),
             (!ag->isolate && !ag->cgroups) ? "; " : "", ag->cgroups ? "" : cg,
             ag->drop_privs ? "" : (ag->isolate || !ag->cgroups ? "; agent not root: games run as the agent's user" : "agent not root: games run as the agent's user"));
    wd_info("capabilities: isolation=%s cgroups=%s game_uid=%d", ag->isolate ? "bwrap" : "none",
            ag->cgroups ? "yes" : "no", ag->game_uid);
    return WD_OK;
}

wd_status wd_agent_create(wd_agent **out, const wd_agent_cfg *cfg)
{
    wd_status st;
    wd_agent *ag = calloc(1, sizeof *ag);
    if (ag == NULL)
        return WD_ERR(WD_ERR_NOMEM, "out of memory");
    ag->cfg = cfg;
    ag->boot_ms = wd_unix_ms();
    ag->boot_mono_ms = wd_mono_ms();
    pthread_rwlock_init(&ag->reg_mu, NULL);
    gethostname(ag->hostname, sizeof ag->hostname - 1);
    snprintf(ag->node_name, sizeof ag->node_name, "%s",
             cfg->node_name && *cfg->node_name ? cfg->node_name : ag->hostname);
    /* The name the panel gave at join, unless one is set here. */
    char name_path[PATH_MAX + 16], *saved = NULL;
    snprintf(name_path, sizeof name_path, "%s/node-name", cfg->data_dir);
    if (!(cfg->node_name && *cfg->node_name) &&
        wd_read_file(name_path, 256, &saved, NULL) == WD_OK) {
        saved[strcspn(saved, "\r\n")] = '\0';
        if (*saved)
            snprintf(ag->node_name, sizeof ag->node_name, "%s", saved);
    }
    free(saved);
    char abs[PATH_MAX];
    if ((st = wd_mkdir_p(cfg->data_dir, 0755)) != WD_OK)
        goto fail;
    if (cfg->join_token && *cfg->join_token && cfg->node_id && *cfg->node_id) {
        st = WD_ERR(WD_ERR_INVALID, "give either a join token or a node id, not both");
        goto fail;
    }
    if (realpath(cfg->data_dir, abs) == NULL) {
        st = WD_ERR(WD_ERR_IO, "data dir %s: %s", cfg->data_dir, strerror(errno));
        goto fail;
    }
    if (strlen(abs) > 900) {
        st = WD_ERR(WD_ERR_INVALID, "data dir path is longer than 900 bytes: %s", abs);
        goto fail;
    }
    snprintf(ag->servers_dir, sizeof ag->servers_dir, "%.900s/servers", abs);
    snprintf(ag->volumes_dir, sizeof ag->volumes_dir, "%.900s/volumes", abs);
    snprintf(ag->run_dir, sizeof ag->run_dir, "%.900s/run", abs);
    snprintf(ag->backups_dir, sizeof ag->backups_dir, "%.900s/backups", abs);
    if ((st = wd_mkdir_p(ag->servers_dir, 0700)) != WD_OK ||
        (st = wd_mkdir_p(ag->backups_dir, 0700)) != WD_OK ||
        (st = wd_mkdir_p(ag->volumes_dir, 0711)) != WD_OK ||
        (st = wd_mkdir_p(ag->run_dir, 0700)) != WD_OK)
        goto fail;
    if (cfg->shim_path && *cfg->shim_path) {
        snprintf(ag->shim_path, sizeof ag->shim_path, "%s", cfg->shim_path);
    } else {
        char self[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        self[n > 0 ? n : 0] = '\0';
        char *slash = strrchr(self, '/');
        if (slash)
            *slash = '\0';
        snprintf(ag->shim_path, sizeof ag->shim_path, "%.900s/warden-shim", self);
    }
    if (access(ag->shim_path, X_OK) != 0) {
        st = WD_ERR(WD_ERR_NOT_FOUND, "warden-shim not found at %s (set --shim)", ag->shim_path);
        goto fail;
    }
    if ((st = load_node_id(ag)) != WD_OK || (st = decide_capabilities(ag)) != WD_OK)
        goto fail;
    *out = ag;
    return WD_OK;
fail:
    pthread_rwlock_destroy(&ag->reg_mu);
    free(ag);
    return st;
}

/* A join token is "SECRET" on an open bus, or "SECRET.SEED.JWT" when the
 * bus has credentials: a throw-away NATS user (seed and user JWT) allowed
 * only to publish the join request and read its reply (docs/bus.md). */
typedef struct {
    char secret[160];
    char seed[WD_NKEY_SEED_SIZE];
    char pub[WD_NKEY_PUB_SIZE];
    const char *jwt; /* NULL on an open bus; points into the token */
} join_token;

static wd_status parse_join_token(const char *text, join_token *t)
{
    memset(t, 0, sizeof *t);
    const char *dot = strchr(text, '.');
    size_t n = dot ? (size_t)(dot - text) : strlen(text);
    if (n == 0 || n >= sizeof t->secret)
        return WD_ERR(WD_ERR_INVALID, "the join token is malformed: copy it again from the panel");
    memcpy(t->secret, text, n);
    if (!dot)
        return WD_OK;
    const char *seed = dot + 1, *dot2 = strchr(seed, '.');
    if (!dot2 || (size_t)(dot2 - seed) != WD_NKEY_SEED_LEN)
        return WD_ERR(WD_ERR_INVALID, "the join token is malformed (NATS seed): copy it again "
                      "from the panel");
    memcpy(t->seed, seed, WD_NKEY_SEED_LEN);
    t->jwt = dot2 + 1;
    wd_nkey_type type;
    if (wd_nkey_public_from_seed(t->seed, t->pub) != WD_OK ||
        wd_nkey_type_of(t->pub, &type) != WD_OK || type != WD_NKEY_USER || !*t->jwt)
        return WD_ERR(WD_ERR_INVALID, "the join token is malformed (NATS user): copy it again "
                      "from the panel");
    return WD_OK;
}

/* Connects the bus with creds (may be NULL) and replies under inbox. */
static wd_status connect_bus(wd_agent *ag, const char *creds, const char *inbox)
{
    const wd_agent_cfg *c = ag->cfg;
    char name[160];
    snprintf(name, sizeof name, "warden-agent %s", ag->needs_join ? "(joining)" : ag->node_id);
    wd_bus_cfg bc = wd_bus_cfg_defaults();
    bc.servers = c->nats_url;
    bc.name = name;
    bc.creds_file = creds;
    bc.inbox_prefix = inbox;
    bc.user = c->nats_user;
    bc.password = c->nats_password;
    bc.tls_ca = c->nats_tls_ca;
    bc.tls_cert = c->nats_tls_cert;
    bc.tls_key = c->nats_tls_key;
    bc.send_asap = true;       /* replies and console lines: latency matters */
    bc.wait_for_server = true; /* an agent may start before NATS */
    return wd_bus_connect(&ag->bus, &bc);
}

/* Trades the join token for this node's identity (and, on a bus with
 * credentials, the node's own NATS user, kept in DATA_DIR/nats.creds),
 * retrying while NATS or the panel is not there yet (up to a minute).
 * *got_creds says whether the panel sent credentials. */
static wd_status join(wd_agent *ag, const char *secret, bool *got_creds)
{
    Warden__V1__JoinRequest req = WARDEN__V1__JOIN_REQUEST__INIT;
    Warden__V1__NodeCapabilities caps = WARDEN__V1__NODE_CAPABILITIES__INIT;
    caps.isolation = ag->isolate;
    caps.cgroups = ag->cgroups;
    caps.unprivileged = ag->drop_privs;
    caps.notes = ag->cap_notes;
    req.token = (char *)secret;
    req.hostname = ag->hostname;
    req.version = (char *)WARDEN_VERSION;
    req.capabilities = &caps;
    *got_creds = false;
    wd_status st = WD_ERR_UNAVAILABLE;
    for (int attempt = 0; attempt < 60; attempt++) {
        ProtobufCMessage *reply = NULL;
        st = wd_bus_request(ag->bus, WD_SUBJ_JOIN, &req.base, &warden__v1__join_reply__descriptor,
                            5000, NULL, &reply);
        if (st == WD_OK) {
            Warden__V1__JoinReply *jr = (Warden__V1__JoinReply *)reply;
            char path[1100];
            st = wd_status_check(jr->status);
            if (st == WD_OK && !wd_subj_token_ok(jr->node_id))
                st = WD_ERR(WD_ERR_PROTO, "the panel answered with an invalid node id");
            if (st == WD_OK) {
                snprintf(ag->node_id, sizeof ag->node_id, "%s", jr->node_id);
                if (jr->name && *jr->name && !(ag->cfg->node_name && *ag->cfg->node_name))
                    snprintf(ag->node_name, sizeof ag->node_name, "%s", jr->name);
            }
            /* Credentials before the node id: an agent that has an id
             * but lost its credentials could never connect again. */
            if (st == WD_OK && jr->nats_creds && *jr->nats_creds) {
                snprintf(path, sizeof path, "%s/nats.creds", ag->cfg->data_dir);
                st = wd_write_file_atomic(path, jr->nats_creds, strlen(jr->nats_creds), 0600);
                OPENSSL_cleanse(jr->nats_creds, strlen(jr->nats_creds));
                *got_creds = st == WD_OK;
            }
            protobuf_c_message_free_unpacked(reply, NULL);
            if (st != WD_OK)
                return WD_ERR(st, "join refused: %s", wd_err_msg());
            char line[160];
            snprintf(path, sizeof path, "%s/node-name", ag->cfg->data_dir);
            int n = snprintf(line, sizeof line, "%s\n", ag->node_name);
            if ((st = wd_write_file_atomic(path, line, (size_t)n, 0644)) != WD_OK)
                return st;
            snprintf(path, sizeof path, "%s/node-id", ag->cfg->data_dir);
            n = snprintf(line, sizeof line, "%s\n", ag->node_id);
            if ((st = wd_write_file_atomic(path, line, (size_t)n, 0644)) != WD_OK)
                return st;
            ag->needs_join = false;
            wd_info("joined the panel as node %s (%s)%s", ag->node_id, ag->node_name,
                    *got_creds ? " with its own NATS credentials" : "");
            return WD_OK;
        }
        if (attempt == 0 || attempt % 10 == 0)
            wd_warn("join: %s; retrying", wd_err_msg());
        sleep(1);
    }
    return WD_ERR(st, "could not join: %s (is warden-api running and connected to NATS? has "
                  "the token expired?)", wd_err_msg());
}

/* Joins over a connection of its own (the token's NATS user, if any),
 * then leaves it: the caller connects again as the node. */
static wd_status join_with_token(wd_agent *ag, bool *got_creds)
{
    join_token t;
    char join_creds[1100] = "", inbox[WD_SUBJ_INBOX_SIZE] = "";
    char *text = NULL;
    wd_status st = parse_join_token(ag->cfg->join_token, &t);
    if (st == WD_OK && t.jwt) {
        snprintf(join_creds, sizeof join_creds, "%s/join.creds", ag->cfg->data_dir);
        st = wd_subj_inbox_prefix(inbox, t.pub);
        if (st == WD_OK && (st = wd_nkey_creds(t.jwt, t.seed, &text)) == WD_OK) {
            st = wd_write_file_atomic(join_creds, text, strlen(text), 0600);
            OPENSSL_cleanse(text, strlen(text));
            free(text);
        }
    }
    OPENSSL_cleanse(t.seed, sizeof t.seed);
    if (st == WD_OK)
        st = connect_bus(ag, join_creds[0] ? join_creds : ag->cfg->nats_creds,
                         inbox[0] ? inbox : NULL);
    if (st == WD_OK)
        st = join(ag, t.secret, got_creds);
    OPENSSL_cleanse(t.secret, sizeof t.secret);
    if (join_creds[0])
        unlink(join_creds);
    return st;
}

wd_status wd_agent_start(wd_agent *ag)
{
    const wd_agent_cfg *c = ag->cfg;
    wd_status st;
    wd_runtime_cfg rc = wd_runtime_cfg_defaults();
    rc.threads = (int)c->threads;
    if ((st = wd_runtime_create(&ag->rt, &rc)) != WD_OK)
        return st;
    if ((st = wd_workq_create(&ag->jobs, WD_AGENT_JOB_THREADS, WD_AGENT_JOB_QUEUE)) != WD_OK)
        return st;

    bool got_creds = false; /* (on an open bus the panel sends none) */
    if (ag->needs_join && (st = join_with_token(ag, &got_creds)) != WD_OK)
        return st;
    /* As the node: its own credentials (flag, else the ones the panel gave
     * at join), replies in its own inboxes; never the join connection. */
    char creds[1100], inbox[WD_SUBJ_INBOX_SIZE];
    const char *use = c->nats_creds && *c->nats_creds ? c->nats_creds : NULL;
    snprintf(creds, sizeof creds, "%s/nats.creds", c->data_dir);
    if (!use && access(creds, F_OK) == 0)
        use = creds;
    if ((st = wd_subj_inbox_prefix(inbox, ag->node_id)) != WD_OK)
        return st;
    ag->restricted_bus = use != NULL;
    wd_bus_destroy(&ag->bus);
    if ((st = connect_bus(ag, use, inbox)) != WD_OK)
        return st;
    atomic_store(&ag->bus_ready, true); /* the metrics endpoint may read bus and node_id now */

    if ((st = wd_server_load_all(ag)) != WD_OK)
        return st;

    char subj[WD_SUBJECT_MAX];
    if ((st = wd_subj_agent_all(subj, sizeof subj, ag->node_id)) != WD_OK)
        return st;
    natsStatus s = natsConnection_Subscribe(&ag->sub_req, wd_bus_nats(ag->bus), subj, on_request, ag);
    if (s != NATS_OK)
        return wd_bus_status(s, subj);
    natsSubscription_SetPendingLimits(ag->sub_req, 100000, 256 * 1024 * 1024);
    if ((st = wd_node_start(ag)) != WD_OK)
        return st;
    wd_info("agent %s (%s) serving %s, data in %s", ag->node_id, ag->node_name, subj,
            c->data_dir);
    return WD_OK;
}

void wd_agent_stop(wd_agent *ag)
{
    if (ag->sub_req) {
        natsSubscription_Unsubscribe(ag->sub_req);
        natsSubscription_Destroy(ag->sub_req);
        ag->sub_req = NULL;
    }
    if (ag->sub_probe) {
        natsSubscription_Unsubscribe(ag->sub_probe);
        natsSubscription_Destroy(ag->sub_probe);
        ag->sub_probe = NULL;
    }
    if (ag->cfg->stop_servers_on_exit) {
        pthread_rwlock_rdlock(&ag->reg_mu);
        for (int i = 0; i < ag->nservers; i++)
            wd_actor_send(ag->servers[i]->actor, SRV_SHUTDOWN, NULL, NULL);
        pthread_rwlock_unlock(&ag->reg_mu);
        /* Give games their grace period; the actors stop them in parallel. */
        for (int t = 0; t < 600; t++) {
            int running = 0;
            wd_agent_count(ag, &running);
            if (running == 0)
                break;
            usleep(100000);
        }
    }
    /* Backups: queued ones answer "shutting down", a running create gives
     * up, a running restore finishes (half a restore helps nobody). Before
     * the runtime: jobs tell their actor when they are done. */
    atomic_store(&ag->stopping, true);
    wd_workq_destroy(&ag->jobs);
    if (ag->rt)
        wd_runtime_shutdown(ag->rt); /* drains every actor, publishes pending state */
    if (ag->bus)
        natsConnection_FlushTimeout(wd_bus_nats(ag->bus), 2000);
}

void wd_agent_destroy(wd_agent **pag)
{
    if (pag == NULL || *pag == NULL)
        return;
    wd_agent *ag = *pag;
    *pag = NULL;
    wd_agent_stop(ag);
    wd_actor_unref(&ag->node);
    pthread_rwlock_wrlock(&ag->reg_mu);
    for (int i = 0; i < ag->nservers; i++) {
        wd_actor_unref(&ag->servers[i]->actor);
        free(ag->servers[i]);
    }
    ag->nservers = 0;
    pthread_rwlock_unlock(&ag->reg_mu);
    wd_runtime_destroy(&ag->rt);
    kvStore_Destroy(ag->kv_nodes);
    kvStore_Destroy(ag->kv_servers);
    wd_bus_destroy(&ag->bus);
    pthread_rwlock_destroy(&ag->reg_mu);
    free(ag);
}

const char *wd_agent_node_id(const wd_agent *ag)
{
    return ag->node_id;
}
