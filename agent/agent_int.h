/* Internals shared by the agent's modules (agent.c, node.c, server.c). Not
 * a public contract. */
#ifndef WD_AGENT_INT_H
#define WD_AGENT_INT_H

#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>

#include "actor.h"
#include "agent.h"
#include "bus.h"
#include "util.h"
#include "warden/v1/server.pb-c.h"
#include "workq.h"

#define WD_AGENT_MAX_SERVERS 4096

/* Why the router (agent.c) answered a request without an actor; the
 * metric label names are in metrics.c. */
enum {
    WD_AGENT_REFUSED_INVALID,   /* bad subject or sync body */
    WD_AGENT_REFUSED_NOT_FOUND, /* no such server on this node */
    WD_AGENT_REFUSED_BUSY,      /* actor mailbox full or actor going away */
    WD_AGENT_REFUSED_ERROR,     /* the server could not be created */
    WD_AGENT_REFUSED_COUNT
};

/* One row of the server registry. The actor owns the server's state; the
 * registry only maps ids to actors and mirrors the state for heartbeats. */
typedef struct {
    char id[WD_UUID_LEN + 1];
    wd_actor *actor;
    atomic_int state; /* Warden__V1__ServerState, written by the server actor */
} wd_server_ref;

struct wd_agent {
    const wd_agent_cfg *cfg;
    char node_id[64];
    bool needs_join; /* no identity yet: exchange the join token first */
    /* Connected with NATS credentials: the node's user may not read the
     * console stream (other servers' output), so boot skips that lookup. */
    bool restricted_bus;
    char node_name[128];
    char hostname[128];
    char servers_dir[1024]; /* persisted specs and states */
    char volumes_dir[1024]; /* game files, one directory per server */
    char run_dir[1024];     /* shim sockets and pid files */
    char backups_dir[1024]; /* <backups_dir>/<server>/<backup>.tar.gz (backup.c) */
    char shim_path[1024];
    int64_t boot_ms;
    int64_t boot_mono_ms; /* for the uptime metric (metrics.c) */

    wd_bus *bus;
    wd_runtime *rt;
    /* Set once by the node actor when JetStream is ready; read by server
     * actors, hence atomic. */
    kvStore *_Atomic kv_nodes;
    kvStore *_Atomic kv_servers;
    natsSubscription *sub_req, *sub_probe;
    wd_actor *node;
    /* Blocking backup work (create, restore) runs here, off the actors'
     * workers; jobs answer their request themselves (server.c). */
    wd_workq *jobs;
    atomic_bool stopping; /* set by wd_agent_stop: running backups give up */

    /* capabilities, decided at start */
    bool isolate;
    bool cgroups;
    bool drop_privs;
    int game_uid, game_gid;
    char cap_notes[512];

    pthread_rwlock_t reg_mu;
    wd_server_ref *servers[WD_AGENT_MAX_SERVERS];
    int nservers;

    /* Read by the metrics endpoint's thread (metrics.c), hence atomic.
     * bus_ready is set once the node's own connection exists: from then
     * on bus and node_id no longer change (join may rewrite both before). */
    atomic_bool bus_ready;
    atomic_ullong requests;                        /* received on warden.agent.<node>.> */
    atomic_ullong refused[WD_AGENT_REFUSED_COUNT]; /* answered by the router itself */
};

/* ---- server actor (server.c) ---- */
enum {
    SRV_REQUEST = 1, /* data: natsMsg* (request on warden.agent.<node>.server.<id>.<op>) */
    SRV_BOOT,        /* re-attach or reconcile after load */
    SRV_SHUTDOWN,    /* agent exiting: stop the game if configured */
};
#define WD_AGENT_JOB_THREADS 2 /* backup jobs running at once on a node */
#define WD_AGENT_JOB_QUEUE 1024

/* Creates the server actor from a spec (ownership taken) and registers it.
 * WD_ERR_EXISTS if the id is registered. */
wd_status wd_server_create(wd_agent *ag, Warden__V1__ServerSpec *spec, wd_server_ref **out);
/* Loads every persisted server and sends each SRV_BOOT. */
wd_status wd_server_load_all(wd_agent *ag);

/* ---- registry (agent.c) ---- */
/* The server actor for id with a reference the caller drops, or NULL. */
wd_actor *wd_agent_find(wd_agent *ag, const char *id);
void wd_agent_unregister(wd_agent *ag, const char *id);
int wd_agent_count(wd_agent *ag, int *running);

/* ---- node actor (node.c) ---- */
enum { NODE_HEARTBEAT = 1, NODE_HELLO, NODE_PROBE };
wd_status wd_node_start(wd_agent *ag);

#endif
