/* The node actor: discovery and liveness.
 *
 * At start and whenever a panel publishes a probe it sends a hello request
 * (node id, capabilities, the servers it holds); a panel may answer with
 * server specs to reconcile, which are applied as syncs. Every heartbeat
 * period it measures the host (CPU, memory, disk of the data dir), publishes
 * a NodeHeartbeat and refreshes this node's entry in the warden_nodes KV
 * bucket (entries expire when heartbeats stop). It also (re)creates the
 * JetStream streams and buckets until that has worked once, so an agent that
 * started before NATS catches up by itself. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent_int.h"
#include "js.h"
#include "log.h"
#include "procstat.h"
#include "subject.h"
#include "warden/v1/node.pb-c.h"

typedef struct {
    wd_agent *ag;
    bool js_ready;
    bool said_hello;
    uint64_t cpu_busy, cpu_total;
} node_state;

static void fill_caps(wd_agent *ag, Warden__V1__NodeCapabilities *caps)
{
    warden__v1__node_capabilities__init(caps);
    caps->isolation = ag->isolate;
    caps->cgroups = ag->cgroups;
    caps->unprivileged = ag->drop_privs;
    caps->notes = ag->cap_notes;
}

static bool ensure_js(node_state *ns)
{
    if (ns->js_ready)
        return true;
    wd_agent *ag = ns->ag;
    if (!wd_bus_connected(ag->bus))
        return false;
    /* Bind to what the panel (or an earlier agent) set up: a node's NATS
     * user may look streams up but not create them. Only when they are
     * missing, on an open bus, does the agent create them itself. */
    kvStore *nodes = NULL, *servers = NULL;
    if (js_KeyValue(&nodes, wd_bus_js(ag->bus), WD_KV_NODES) != NATS_OK ||
        js_KeyValue(&servers, wd_bus_js(ag->bus), WD_KV_SERVERS) != NATS_OK) {
        kvStore_Destroy(nodes);
        nodes = NULL;
        if (wd_js_setup_warden(ag->bus) != WD_OK) {
            wd_warn("JetStream setup failed: %s (retrying; is nats-server running with -js, "
                    "and warden-api connected?)",
                    wd_err_msg());
            return false;
        }
        if (wd_js_ensure_kv(ag->bus, WD_KV_NODES, 30, 1, &nodes) != WD_OK ||
            wd_js_ensure_kv(ag->bus, WD_KV_SERVERS, 0, 1, &servers) != WD_OK) {
            wd_warn("JetStream KV setup failed: %s", wd_err_msg());
            kvStore_Destroy(nodes);
            return false;
        }
    }
    /* Re-register every server held here: the bucket may be new or may
     * have lost entries (NATS data wiped); the agent's disk is the truth. */
    pthread_rwlock_rdlock(&ag->reg_mu);
    for (int i = 0; i < ag->nservers; i++)
        kvStore_PutString(NULL, servers, ag->servers[i]->id, ag->node_id);
    pthread_rwlock_unlock(&ag->reg_mu);
    atomic_store(&ag->kv_nodes, nodes);
    atomic_store(&ag->kv_servers, servers);
    ns->js_ready = true;
    return true;
}

static void heartbeat(node_state *ns)
{
    wd_agent *ag = ns->ag;
    ensure_js(ns);
    Warden__V1__NodeHeartbeat hb = WARDEN__V1__NODE_HEARTBEAT__INIT;
    Warden__V1__NodeCapabilities caps;
    fill_caps(ag, &caps);
    hb.node_id = ag->node_id;
    hb.name = ag->node_name;
    hb.version = (char *)WARDEN_VERSION;
    uint64_t busy = 0, total = 0;
    if (wd_host_cpu(&busy, &total) == WD_OK && total > ns->cpu_total) {
        hb.cpu_percent = ns->cpu_total ? 100.0 * (double)(busy - ns->cpu_busy) /
                                             (double)(total - ns->cpu_total)
                                       : 0.0;
        ns->cpu_busy = busy;
        ns->cpu_total = total;
    }
    hb.cpu_count = (uint32_t)sysconf(_SC_NPROCESSORS_ONLN);
    wd_host_mem(&hb.memory_total_bytes, &hb.memory_used_bytes);
    wd_fs_usage(ag->volumes_dir, &hb.disk_total_bytes, &hb.disk_used_bytes);
    int running = 0;
    hb.server_count = (uint32_t)wd_agent_count(ag, &running);
    hb.running_count = (uint32_t)running;
    hb.uptime_ms = (uint64_t)(wd_unix_ms() - ag->boot_ms);
    hb.time_unix_ms = wd_unix_ms();
    hb.capabilities = &caps;

    char subj[WD_SUBJECT_MAX];
    if (wd_subj_node_heartbeat(subj, sizeof subj, ag->node_id) == WD_OK)
        wd_bus_publish(ag->bus, subj, &hb.base, NULL);
    if (ns->js_ready && ag->kv_nodes) {
        size_t len = protobuf_c_message_get_packed_size(&hb.base);
        uint8_t *buf = malloc(len ? len : 1);
        if (buf) {
            protobuf_c_message_pack(&hb.base, buf);
            natsStatus s = kvStore_Put(NULL, ag->kv_nodes, ag->node_id, buf, (int)len);
            if (s != NATS_OK)
                wd_debug("heartbeat KV put: %s", natsStatus_GetText(s));
            free(buf);
        }
    }
}

static void hello(node_state *ns)
{
    wd_agent *ag = ns->ag;
    if (!wd_bus_connected(ag->bus))
        return;
    Warden__V1__DiscoveryHello h = WARDEN__V1__DISCOVERY_HELLO__INIT;
    Warden__V1__NodeCapabilities caps;
    fill_caps(ag, &caps);
    h.node_id = ag->node_id;
    h.name = ag->node_name;
    h.version = (char *)WARDEN_VERSION;
    h.hostname = ag->hostname;
    h.capabilities = &caps;
    h.boot_unix_ms = ag->boot_ms;

    /* Summaries of the servers held here. */
    pthread_rwlock_rdlock(&ag->reg_mu);
    int n = ag->nservers;
    Warden__V1__ServerSummary *sums = calloc((size_t)(n ? n : 1), sizeof *sums);
    Warden__V1__ServerSummary **ptrs = calloc((size_t)(n ? n : 1), sizeof *ptrs);
    for (int i = 0; sums && ptrs && i < n; i++) {
        warden__v1__server_summary__init(&sums[i]);
        sums[i].id = ag->servers[i]->id;
        sums[i].state = atomic_load(&ag->servers[i]->state);
        ptrs[i] = &sums[i];
    }
    pthread_rwlock_unlock(&ag->reg_mu);
    if (sums && ptrs) {
        h.n_servers = (size_t)n;
        h.servers = ptrs;
    }

    ProtobufCMessage *reply = NULL;
    wd_status st = wd_bus_request(ag->bus, WD_SUBJ_HELLO, &h.base,
                                  &warden__v1__discovery_hello_reply__descriptor, 2000, NULL, &reply);
    free(sums);
    free(ptrs);
    if (st == WD_ERR_NO_RESPONDERS) {
        wd_info("hello: no panel is listening yet; running standalone");
        ns->said_hello = true;
        return;
    }
    if (st != WD_OK) {
        wd_warn("hello failed: %s", wd_err_msg());
        return;
    }
    ns->said_hello = true;
    Warden__V1__DiscoveryHelloReply *r = (Warden__V1__DiscoveryHelloReply *)reply;
    if (wd_status_check(r->status) != WD_OK) {
        wd_warn("panel refused hello: %s", wd_err_msg());
    } else {
        /* Reconciling specs from the panel: each becomes a sync request to
         * ourselves, the same path a panel's sync takes. */
        for (size_t i = 0; i < r->n_servers; i++) {
            Warden__V1__SyncRequest sr = WARDEN__V1__SYNC_REQUEST__INIT;
            sr.spec = r->servers[i];
            char subj[WD_SUBJECT_MAX];
            if (sr.spec->id == NULL ||
                wd_subj_agent_server(subj, sizeof subj, ag->node_id, sr.spec->id, "sync") != WD_OK)
                continue;
            ProtobufCMessage *sync_reply = NULL;
            if (wd_bus_request(ag->bus, subj, &sr.base, &warden__v1__sync_reply__descriptor, 5000,
                               NULL, &sync_reply) == WD_OK)
                protobuf_c_message_free_unpacked(sync_reply, NULL);
            else
                wd_warn("reconcile %s: %s", sr.spec->id, wd_err_msg());
        }
        wd_info("hello: panel answered with %zu server(s)", r->n_servers);
    }
    protobuf_c_message_free_unpacked(reply, NULL);
}

static void node_handler(wd_actor *self, void *state, wd_msg *m)
{
    node_state *ns = state;
    switch (m->type) {
    case NODE_HEARTBEAT:
        heartbeat(ns);
        if (!ns->said_hello)
            hello(ns);
        break;
    case NODE_HELLO:
    case NODE_PROBE:
        hello(ns);
        break;
    default:
        break;
    }
}

static void on_probe(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *ud)
{
    wd_agent *ag = ud;
    /* The body is informational only: a garbage probe still just means
     * "say hello", which is harmless and rate-limited by the mailbox. */
    if (ag->node)
        wd_actor_send_arg(ag->node, NODE_PROBE, 0);
    natsMsg_Destroy(m);
}

wd_status wd_node_start(wd_agent *ag)
{
    node_state *ns = calloc(1, sizeof *ns);
    if (ns == NULL)
        return WD_ERR(WD_ERR_NOMEM, "out of memory");
    ns->ag = ag;
    wd_actor_cfg cfg = wd_actor_cfg_defaults();
    cfg.name = "node";
    cfg.handler = node_handler;
    cfg.state = ns;
    cfg.free_state = free;
    cfg.mailbox_cap = 64;
    wd_status st = wd_actor_spawn(ag->rt, &cfg, &ag->node);
    if (st != WD_OK) {
        free(ns);
        return st;
    }
    natsStatus s = natsConnection_Subscribe(&ag->sub_probe, wd_bus_nats(ag->bus), WD_SUBJ_PROBE,
                                            on_probe, ag);
    if (s != NATS_OK)
        return wd_bus_status(s, WD_SUBJ_PROBE);
    uint64_t t;
    wd_actor_send_arg(ag->node, NODE_HEARTBEAT, 0);
    return wd_actor_timer(ag->node, ag->cfg->heartbeat_s * 1000, ag->cfg->heartbeat_s * 1000,
                          NODE_HEARTBEAT, &t);
}
