/* The node registry: the API's side of discovery and liveness.
 *
 * One actor owns it. NATS callbacks (a queue group, so several API
 * instances share the work) only decode and post:
 *   warden.discovery.join        one-time join token -> the node's identity
 *   warden.node.*.heartbeat      last_seen_at, online, version
 * and a timer every second marks nodes offline after 15 s of silence, so the
 * picture of the fleet is true within a heartbeat or three. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actor.h"
#include "app_int.h"
#include "log.h"
#include "subject.h"
#include "token.h"
#include "util.h"
#include "warden/v1/node.pb-c.h"

#define OFFLINE_AFTER "15 seconds"

enum { F_JOIN = 1, F_HEARTBEAT, F_SWEEP };

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
                   "VALUES ('agent', 'node.join', 'node', $1, jsonb_build_object('hostname', $2))",
                   2, ap, NULL);
        wd_info("node %s (%s) joined from host %s", name, node_id,
                req->hostname ? req->hostname : "?");
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
    wd_bus_respond(api->bus, m, &rep.base);
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
    ProtobufCMessage *hb = wd_bus_decode(&warden__v1__node_heartbeat__descriptor, m);
    natsMsg_Destroy(m);
    if (hb)
        wd_actor_send(api->fleet, F_HEARTBEAT, hb, free_hb);
}

wd_status wd_fleet_start(wd_api *api)
{
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
    if (s != NATS_OK)
        return wd_bus_status(s, "fleet subscriptions");
    return WD_OK;
}

void wd_fleet_stop(wd_api *api)
{
    natsSubscription_Destroy(api->sub_join);
    natsSubscription_Destroy(api->sub_heartbeat);
    api->sub_join = api->sub_heartbeat = NULL;
    wd_actor_unref(&api->fleet);
    wd_runtime_destroy(&api->rt);
}
