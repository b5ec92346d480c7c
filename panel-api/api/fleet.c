/* The node registry: the API's side of discovery and liveness.
 *
 * One actor owns it. NATS callbacks (a queue group, so several API
 * instances share the work) only decode and post:
 *   warden.discovery.join        one-time join token -> the node's identity
 *   warden.node.*.heartbeat      last_seen_at, online, version
 * and a timer every second marks nodes offline after 15 s of silence, so the
 * picture of the fleet is true within a heartbeat or three. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "actor.h"
#include "app_int.h"
#include "js.h"
#include "log.h"
#include "natsauth.h"
#include "subject.h"
#include "token.h"
#include "util.h"
#include "warden/v1/node.pb-c.h"

#define OFFLINE_AFTER "15 seconds"

enum { F_JOIN = 1, F_HEARTBEAT, F_SWEEP, F_STATE, F_HELLO };

wd_status wd_server_spec_build(wd_api *api, PGconn *c, const char *server_id,
                               Warden__V1__ServerSpec **out, char *node_id, size_t node_len);
static wd_status subscribe_events(wd_api *api);

/* ---- latest stats per server (no database row per sample) --------------- */

#define STATS_SLOTS 4096
#define STATS_PROBE 8

struct stats_cache {
    pthread_mutex_t mu;
    struct {
        char id[40];
        int64_t at_ms;
        size_t len;
        uint8_t buf[256];
    } slot[STATS_SLOTS];
};

static uint64_t hash_id(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static void stats_put(struct stats_cache *sc, const char *id, const uint8_t *data, size_t len)
{
    if (len > sizeof sc->slot[0].buf || strlen(id) >= sizeof sc->slot[0].id)
        return;
    uint64_t h = hash_id(id);
    int64_t now = wd_mono_ms();
    pthread_mutex_lock(&sc->mu);
    int victim = -1;
    for (int i = 0; i < STATS_PROBE; i++) {
        int k = (int)((h + (uint64_t)i) % STATS_SLOTS);
        if (strcmp(sc->slot[k].id, id) == 0 || sc->slot[k].id[0] == '\0') {
            victim = k;
            break;
        }
        if (victim < 0 || sc->slot[k].at_ms < sc->slot[victim].at_ms)
            victim = k;
    }
    snprintf(sc->slot[victim].id, sizeof sc->slot[victim].id, "%s", id);
    memcpy(sc->slot[victim].buf, data, len);
    sc->slot[victim].len = len;
    sc->slot[victim].at_ms = now;
    pthread_mutex_unlock(&sc->mu);
}

bool wd_fleet_latest_stats(wd_api *api, const char *server_id, uint8_t *buf, size_t cap,
                           size_t *len, int64_t *age_ms)
{
    struct stats_cache *sc = api->stats;
    if (sc == NULL || server_id == NULL)
        return false;
    uint64_t h = hash_id(server_id);
    bool found = false;
    pthread_mutex_lock(&sc->mu);
    for (int i = 0; i < STATS_PROBE && !found; i++) {
        int k = (int)((h + (uint64_t)i) % STATS_SLOTS);
        if (strcmp(sc->slot[k].id, server_id) == 0 && sc->slot[k].len <= cap) {
            memcpy(buf, sc->slot[k].buf, sc->slot[k].len);
            *len = sc->slot[k].len;
            *age_ms = wd_mono_ms() - sc->slot[k].at_ms;
            found = true;
        }
    }
    pthread_mutex_unlock(&sc->mu);
    /* Stats older than 10 s describe a server that stopped reporting. */
    return found && *age_ms < 10000;
}


typedef struct {
    wd_api *api;
} fleet;

static void handle_join(fleet *f, natsMsg *m)
{
    wd_api *api = f->api;
    Warden__V1__JoinRequest *req =
        (Warden__V1__JoinRequest *)wd_bus_decode(&warden__v1__join_request__descriptor, m);
    Warden__V1__Status status;
    Warden__V1__JoinReply rep = WARDEN__V1__JOIN_REPLY__INIT;
    char node_id[40] = "", name[128] = "";
    char *creds = NULL;
    wd_status st = WD_OK;
    PGconn *c = NULL;
    if (req == NULL || req->token == NULL || strlen(req->token) > 128) {
        st = WD_ERR(WD_ERR_INVALID, "join: malformed request");
        goto reply;
    }
    char hash[WD_TOKEN_HASH_HEX_LEN + 1];
    wd_token_hash(req->token, hash);
    if ((st = wd_db_acquire(api->db, &c)) != WD_OK)
        goto reply;
    const char *params[] = {hash, req->version ? req->version : ""};
    PGresult *res = NULL;
    /* One statement: use the token if it is live, and say which node. */
    st = wd_db_exec(c,
                    "WITH t AS (UPDATE node_join_tokens SET used_at = now() "
                    "  WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now() "
                    "  RETURNING node_id) "
                    "UPDATE nodes n SET version = $2 FROM t WHERE n.id = t.node_id "
                    "RETURNING n.id, n.name",
                    2, params, &res);
    if (st == WD_OK && PQntuples(res) == 1) {
        snprintf(node_id, sizeof node_id, "%s", PQgetvalue(res, 0, 0));
        snprintf(name, sizeof name, "%s", PQgetvalue(res, 0, 1));
        const char *ap[] = {node_id, req->hostname ? req->hostname : ""};
        wd_db_exec(c,
                   "INSERT INTO audit_log (actor_label, action, target_type, target_id, metadata) "
                   "VALUES ('agent', 'node.join', 'node', $1, "
                   "jsonb_build_object('hostname', $2::text))",
                   2, ap, NULL);
        wd_info("node %s (%s) joined from host %s", name, node_id,
                req->hostname ? req->hostname : "?");
        /* The node's own NATS user, when the bus has credentials. */
        if (api->nauth && (st = wd_natsauth_node_creds(api->nauth, node_id, &creds)) != WD_OK)
            wd_error("join of node %s: minting its NATS credentials failed: %s", node_id,
                     wd_err_msg());
    } else if (st == WD_OK) {
        st = WD_ERR(WD_ERR_DENIED, "the join token is unknown, used or expired: create a new "
                    "one in the panel");
    }
    PQclear(res);
reply:
    if (c)
        wd_db_release(api->db, c);
    wd_status_fill(&status, st, st == WD_OK ? "" : wd_err_msg());
    rep.status = &status;
    rep.node_id = node_id;
    rep.name = name;
    rep.nats_creds = creds ? creds : (char *)"";
    wd_bus_respond(api->bus, m, &rep.base);
    if (creds) {
        OPENSSL_cleanse(creds, strlen(creds));
        free(creds);
    }
    if (req)
        protobuf_c_message_free_unpacked(&req->base, NULL);
}

static void handle_heartbeat(fleet *f, Warden__V1__NodeHeartbeat *hb)
{
    if (hb->node_id == NULL || !wd_uuid_valid(hb->node_id))
        return;
    PGconn *c = NULL;
    if (wd_db_acquire(f->api->db, &c) != WD_OK)
        return;
    const char *params[] = {hb->node_id, hb->version ? hb->version : ""};
    PGresult *res = NULL;
    if (wd_db_exec(c,
                   "UPDATE nodes SET last_seen_at = now(), online = true, version = $2 "
                   "WHERE id = $1 RETURNING (xmax = 0)",
                   2, params, &res) != WD_OK)
        wd_warn("heartbeat of %s: %s", hb->node_id, wd_err_msg());
    PQclear(res);
    wd_db_release(f->api->db, c);
}

static void sweep(fleet *f)
{
    PGconn *c = NULL;
    if (wd_db_acquire(f->api->db, &c) != WD_OK)
        return;
    PGresult *res = NULL;
    if (wd_db_exec(c,
                   "UPDATE nodes SET online = false WHERE online AND "
                   "(last_seen_at IS NULL OR last_seen_at < now() - interval '" OFFLINE_AFTER "') "
                   "RETURNING id, name",
                   0, NULL, &res) == WD_OK) {
        for (int i = 0; i < PQntuples(res); i++)
            wd_warn("node %s (%s) is offline: no heartbeat for " OFFLINE_AFTER,
                    PQgetvalue(res, i, 1), PQgetvalue(res, i, 0));
    }
    PQclear(res);
    wd_db_release(f->api->db, c);
}

/* A state event from JetStream: persist, then acknowledge (so a restart of
 * the API loses nothing: unacknowledged events are delivered again). */
static void handle_state(fleet *f, natsMsg *m)
{
    static const char *const states[] = {"unknown", "offline", "installing", "starting",
                                         "running", "stopping", "crashed"};
    Warden__V1__ServerStateEvent *ev = (Warden__V1__ServerStateEvent *)wd_bus_decode(
        &warden__v1__server_state_event__descriptor, m);
    bool done = true;
    /* Only the node a server is on speaks for it: an event naming another
     * node (or none) changes nothing. NATS cannot confine a node's publish
     * grant to its own servers' subjects, so this check is the guard. */
    if (ev && wd_uuid_valid(ev->server_id) && wd_uuid_valid(ev->node_id) && ev->state >= 0 &&
        ev->state <= 6) {
        PGconn *c = NULL;
        if (wd_db_acquire(f->api->db, &c) == WD_OK) {
            const char *params[] = {ev->server_id, states[ev->state],
                                    ev->installed ? "true" : "false", ev->node_id};
            done = wd_db_exec(c,
                              "UPDATE servers SET state = $2, installed = $3::boolean "
                              "WHERE id = $1 AND node_id = $4",
                              4, params, NULL) == WD_OK;
            wd_db_release(f->api->db, c);
        } else {
            done = false;
        }
    }
    if (ev)
        protobuf_c_message_free_unpacked(&ev->base, NULL);
    if (done)
        natsMsg_Ack(m, NULL);
    else
        natsMsg_Nak(m, NULL); /* the database is away: have it again later */
}

/* An agent says hello: answer with the specs of the servers it should hold. */
static void handle_hello(fleet *f, natsMsg *m)
{
    wd_api *api = f->api;
    Warden__V1__DiscoveryHello *h =
        (Warden__V1__DiscoveryHello *)wd_bus_decode(&warden__v1__discovery_hello__descriptor, m);
    Warden__V1__Status status;
    Warden__V1__DiscoveryHelloReply rep = WARDEN__V1__DISCOVERY_HELLO_REPLY__INIT;
    Warden__V1__ServerSpec **specs = NULL;
    size_t n = 0;
    wd_status st = WD_OK;
    PGconn *c = NULL;
    PGresult *res = NULL;
    char inbox[WD_SUBJ_INBOX_SIZE + 1] = "";
    if (h && h->node_id && wd_subj_inbox_prefix(inbox, h->node_id) == WD_OK)
        strcat(inbox, "."); /* 31 characters + "." fit */
    const char *reply_to = natsMsg_GetReply(m);
    if (h == NULL || !wd_uuid_valid(h->node_id)) {
        st = WD_ERR(WD_ERR_INVALID, "hello: malformed");
    } else if (api->nauth && (!reply_to || strncmp(reply_to, inbox, strlen(inbox)) != 0)) {
        /* With NATS credentials only the node itself can read replies in
         * its inbox: a hello naming another node (whose specs hold
         * secret variables) would answer into an inbox its sender cannot
         * subscribe to; refuse it outright. */
        st = WD_ERR(WD_ERR_DENIED, "hello: the reply inbox is not the node's own");
    } else if ((st = wd_db_acquire(api->db, &c)) == WD_OK) {
        const char *params[] = {h->node_id};
        st = wd_db_exec(c, "SELECT id FROM servers WHERE node_id = $1 AND NOT suspended", 1,
                        params, &res);
        int rows = st == WD_OK ? PQntuples(res) : 0;
        specs = calloc((size_t)(rows ? rows : 1), sizeof *specs);
        for (int i = 0; specs && i < rows; i++)
            if (wd_server_spec_build(api, c, PQgetvalue(res, i, 0), &specs[n], NULL, 0) == WD_OK)
                n++;
    }
    PQclear(res);
    if (c)
        wd_db_release(api->db, c);
    wd_status_fill(&status, st, st == WD_OK ? "" : wd_err_msg());
    rep.status = &status;
    rep.servers = specs;
    rep.n_servers = n;
    wd_bus_respond(api->bus, m, &rep.base);
    for (size_t i = 0; i < n; i++)
        protobuf_c_message_free_unpacked(&specs[i]->base, NULL);
    free(specs);
    if (h)
        protobuf_c_message_free_unpacked(&h->base, NULL);
}

static void fleet_handler(wd_actor *self, void *state, wd_msg *m)
{
    fleet *f = state;
    switch (m->type) {
    case F_JOIN:
        handle_join(f, m->data);
        break;
    case F_HEARTBEAT:
        handle_heartbeat(f, m->data);
        break;
    case F_SWEEP:
        sweep(f);
        if (!f->api->js_ready)
            subscribe_events(f->api);
        break;
    case F_STATE:
        handle_state(f, m->data);
        break;
    case F_HELLO:
        handle_hello(f, m->data);
        break;
    default:
        break;
    }
}

static void free_msg(void *p)
{
    natsMsg_Destroy(p);
}

static void free_hb(void *p)
{
    protobuf_c_message_free_unpacked(p, NULL);
}

static void on_join(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *ud)
{
    wd_api *api = ud;
    if (wd_actor_send(api->fleet, F_JOIN, m, free_msg) != WD_OK)
        wd_warn("join request dropped: the node registry is busy");
}

static void on_heartbeat(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *ud)
{
    wd_api *api = ud;
    Warden__V1__NodeHeartbeat *hb = (Warden__V1__NodeHeartbeat *)wd_bus_decode(
        &warden__v1__node_heartbeat__descriptor, m);
    /* warden.node.<node>.heartbeat: the body must name the subject's node
     * (a node's NATS user may publish only under its own id). */
    char want[WD_SUBJECT_MAX];
    bool own = hb && hb->node_id &&
               wd_subj_node_heartbeat(want, sizeof want, hb->node_id) == WD_OK &&
               strcmp(want, natsMsg_GetSubject(m)) == 0;
    natsMsg_Destroy(m);
    if (own)
        wd_actor_send(api->fleet, F_HEARTBEAT, hb, free_hb);
    else if (hb)
        protobuf_c_message_free_unpacked(&hb->base, NULL);
}

static void on_state(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *ud)
{
    wd_api *api = ud;
    if (wd_actor_send(api->fleet, F_STATE, m, free_msg) != WD_OK)
        wd_warn("state event not taken now: JetStream will deliver it again");
}

static void on_hello(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *ud)
{
    wd_api *api = ud;
    wd_actor_send(api->fleet, F_HELLO, m, free_msg);
}

static void on_stats(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *ud)
{
    wd_api *api = ud;
    /* warden.server.<id>.stats: keep the packed message as it came. */
    const char *subj = natsMsg_GetSubject(m);
    const char *p = subj + strlen("warden.server.");
    const char *dot = strchr(p, '.');
    if (strncmp(subj, "warden.server.", 14) == 0 && dot && dot - p < 40) {
        char id[40];
        snprintf(id, sizeof id, "%.*s", (int)(dot - p), p);
        stats_put(api->stats, id, (const uint8_t *)natsMsg_GetData(m),
                  (size_t)natsMsg_GetDataLength(m));
    }
    natsMsg_Destroy(m);
}

/* The durable consumer of state events (and the streams it needs). Retried
 * from the sweep timer until NATS and JetStream are there. */
static wd_status subscribe_events(wd_api *api)
{
    if (!wd_bus_connected(api->bus))
        return WD_ERR(WD_ERR_UNAVAILABLE, "NATS not connected");
    wd_status st = wd_js_setup_warden_replicas(api->bus, (int)api->cfg.js_replicas);
    if (st != WD_OK)
        return st;
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = WD_STREAM_EVENTS;
    so.Config.Durable = "warden-api-state";
    so.Config.AckPolicy = js_AckExplicit;
    so.Config.DeliverPolicy = js_DeliverNew;
    so.ManualAck = true;
    so.Queue = "warden-api-state"; /* API instances share the consumer */
    jsErrCode jerr = 0;
    natsStatus s = js_Subscribe(&api->sub_state, wd_bus_js(api->bus), "warden.server.*.state",
                                on_state, api, NULL, &so, &jerr);
    if (s != NATS_OK)
        return wd_bus_status(s, "state events consumer");
    api->js_ready = true;
    return WD_OK;
}

wd_status wd_fleet_start(wd_api *api)
{
    api->stats = calloc(1, sizeof *api->stats);
    if (api->stats == NULL)
        return WD_ERR(WD_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&api->stats->mu, NULL);
    wd_runtime_cfg rc = wd_runtime_cfg_defaults();
    rc.threads = 1;
    wd_status st = wd_runtime_create(&api->rt, &rc);
    if (st != WD_OK)
        return st;
    fleet *f = calloc(1, sizeof *f);
    if (f == NULL)
        return WD_ERR(WD_ERR_NOMEM, "out of memory");
    f->api = api;
    wd_actor_cfg ac = wd_actor_cfg_defaults();
    ac.name = "node_registry";
    ac.handler = fleet_handler;
    ac.state = f;
    ac.free_state = free;
    ac.mailbox_cap = 10000;
    if ((st = wd_actor_spawn(api->rt, &ac, &api->fleet)) != WD_OK) {
        free(f);
        return st;
    }
    uint64_t timer;
    wd_actor_timer(api->fleet, 1000, 1000, F_SWEEP, &timer);
    natsStatus s = natsConnection_QueueSubscribe(&api->sub_join, wd_bus_nats(api->bus),
                                                 WD_SUBJ_JOIN, "warden-api", on_join, api);
    if (s == NATS_OK)
        s = natsConnection_QueueSubscribe(&api->sub_heartbeat, wd_bus_nats(api->bus),
                                          WD_SUBJ_HEARTBEATS, "warden-api", on_heartbeat, api);
    if (s == NATS_OK)
        s = natsConnection_QueueSubscribe(&api->sub_hello, wd_bus_nats(api->bus), WD_SUBJ_HELLO,
                                          "warden-api", on_hello, api);
    if (s == NATS_OK)
        s = natsConnection_Subscribe(&api->sub_stats, wd_bus_nats(api->bus),
                                     "warden.server.*.stats", on_stats, api);
    if (s != NATS_OK)
        return wd_bus_status(s, "fleet subscriptions");
    if (subscribe_events(api) != WD_OK)
        wd_warn("state events: %s (retrying)", wd_err_msg());
    return WD_OK;
}

void wd_fleet_stop(wd_api *api)
{
    natsSubscription *subs[] = {api->sub_join, api->sub_heartbeat, api->sub_state,
                                api->sub_stats, api->sub_hello};
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
        if (subs[i])
            natsSubscription_Unsubscribe(subs[i]);
        natsSubscription_Destroy(subs[i]);
    }
    api->sub_join = api->sub_heartbeat = api->sub_state = api->sub_stats = api->sub_hello = NULL;
    wd_runtime_destroy(&api->rt); /* drains the registry's mailbox */
    wd_actor_unref(&api->fleet);
    if (api->stats) {
        pthread_mutex_destroy(&api->stats->mu);
        free(api->stats);
        api->stats = NULL;
    }
}

