/* JetStream setup: Warden's streams and key-value buckets.
 *
 *   WARDEN_CONSOLE  warden.server.*.console   last N chunks per server, bounded age
 *   WARDEN_EVENTS   warden.server.*.state, warden.panel.events.>
 *   KV warden_nodes    node id -> NodeHeartbeat (entries expire when a node stops)
 *   KV warden_servers  server id -> node id (lets tools address a server by id)
 *
 * wd_js_ensure_* create a stream or bucket or update an existing one to the
 * given configuration; they are idempotent and safe to run from several
 * processes at once. Thread-safe. */
#ifndef WD_JS_H
#define WD_JS_H

#include <stdint.h>

#include "bus.h"

#define WD_STREAM_CONSOLE "WARDEN_CONSOLE"
#define WD_STREAM_EVENTS "WARDEN_EVENTS"
#define WD_KV_NODES "warden_nodes"
#define WD_KV_SERVERS "warden_servers"

typedef struct {
    const char *name;
    const char *const *subjects;
    int nsubjects;
    int64_t max_msgs_per_subject; /* 0: unlimited */
    int64_t max_age_s;            /* 0: unlimited */
    int64_t max_bytes;            /* 0: unlimited */
    int64_t duplicates_s;         /* de-duplication window; 0: server default */
    int replicas;                 /* 0: 1 */
} wd_stream_cfg;

wd_status wd_js_ensure_stream(wd_bus *b, const wd_stream_cfg *cfg);
/* Creates or opens a KV bucket. ttl_s 0: keys never expire. */
wd_status wd_js_ensure_kv(wd_bus *b, const char *bucket, int64_t ttl_s, int history,
                          kvStore **out);
/* The same with `replicas` copies (0: 1). */
wd_status wd_js_ensure_kv_replicas(wd_bus *b, const char *bucket, int64_t ttl_s, int history,
                                   int replicas, kvStore **out);
/* Creates Warden's streams and buckets (above) with one replica each. */
wd_status wd_js_setup_warden(wd_bus *b);
/* The same with `replicas` copies of each (3 on a 3-server cluster, so one
 * server can go without losing data); an existing stream is updated to it. */
wd_status wd_js_setup_warden_replicas(wd_bus *b, int replicas);

#endif
