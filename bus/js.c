/* JetStream streams and KV buckets (see js.h). */
#include "js.h"

#include <string.h>

#include "log.h"

wd_status wd_js_ensure_stream(wd_bus *b, const wd_stream_cfg *cfg)
{
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    sc.Name = cfg->name;
    sc.Subjects = (const char **)cfg->subjects;
    sc.SubjectsLen = cfg->nsubjects;
    sc.Storage = js_FileStorage;
    sc.Retention = js_LimitsPolicy;
    sc.Discard = js_DiscardOld;
    sc.MaxMsgsPerSubject = cfg->max_msgs_per_subject > 0 ? cfg->max_msgs_per_subject : -1;
    sc.MaxAge = cfg->max_age_s > 0 ? cfg->max_age_s * (int64_t)1000000000 : 0;
    sc.MaxBytes = cfg->max_bytes > 0 ? cfg->max_bytes : -1;
    if (cfg->duplicates_s > 0)
        sc.Duplicates = cfg->duplicates_s * (int64_t)1000000000;
    sc.Replicas = cfg->replicas > 0 ? cfg->replicas : 1;

    jsErrCode jerr = 0;
    jsStreamInfo *si = NULL;
    natsStatus s = js_AddStream(&si, wd_bus_js(b), &sc, NULL, &jerr);
    if (s != NATS_OK && jerr == JSStreamNameExistErr)
        s = js_UpdateStream(&si, wd_bus_js(b), &sc, NULL, &jerr);
    jsStreamInfo_Destroy(si);
    if (s != NATS_OK) {
        const char *last = nats_GetLastError(NULL);
        return WD_ERR(WD_ERR_BUS, "JetStream stream %s: %s (%s; code %d)", cfg->name,
                      natsStatus_GetText(s), last ? last : "", (int)jerr);
    }
    return WD_OK;
}

wd_status wd_js_ensure_kv(wd_bus *b, const char *bucket, int64_t ttl_s, int history,
                          kvStore **out)
{
    return wd_js_ensure_kv_replicas(b, bucket, ttl_s, history, 1, out);
}

wd_status wd_js_ensure_kv_replicas(wd_bus *b, const char *bucket, int64_t ttl_s, int history,
                                   int replicas, kvStore **out)
{
    kvConfig kc;
    kvConfig_Init(&kc);
    kc.Bucket = bucket;
    kc.History = (uint8_t)(history > 0 ? history : 1);
    kc.TTL = ttl_s > 0 ? ttl_s * (int64_t)1000000000 : 0;
    kc.StorageType = js_FileStorage;
    kc.Replicas = replicas > 0 ? replicas : 1;
    natsStatus s = js_CreateKeyValue(out, wd_bus_js(b), &kc);
    if (s != NATS_OK) {
        /* Exists already (possibly with other settings): open it. */
        s = js_KeyValue(out, wd_bus_js(b), bucket);
    }
    if (s != NATS_OK)
        return WD_ERR(WD_ERR_BUS, "JetStream KV bucket %s: %s", bucket, natsStatus_GetText(s));
    return WD_OK;
}

wd_status wd_js_setup_warden(wd_bus *b)
{
    return wd_js_setup_warden_replicas(b, 1);
}

wd_status wd_js_setup_warden_replicas(wd_bus *b, int replicas)
{
    static const char *const console_subjects[] = {"warden.server.*.console"};
    static const char *const event_subjects[] = {"warden.server.*.state",
                                                 "warden.panel.events.>"};
    wd_stream_cfg console = {.name = WD_STREAM_CONSOLE,
                             .subjects = console_subjects,
                             .nsubjects = 1,
                             .max_msgs_per_subject = 500,
                             .max_age_s = 7 * 24 * 3600,
                             .max_bytes = 1024LL * 1024 * 1024,
                             .duplicates_s = 120,
                             .replicas = replicas};
    wd_stream_cfg events = {.name = WD_STREAM_EVENTS,
                            .subjects = event_subjects,
                            .nsubjects = 2,
                            .max_msgs_per_subject = 1000,
                            .max_age_s = 30 * 24 * 3600,
                            .max_bytes = 256LL * 1024 * 1024,
                            .duplicates_s = 120,
                            .replicas = replicas};
    wd_status st = wd_js_ensure_stream(b, &console);
    if (st == WD_OK)
        st = wd_js_ensure_stream(b, &events);
    kvStore *kv = NULL;
    if (st == WD_OK && (st = wd_js_ensure_kv_replicas(b, WD_KV_NODES, 30, 1, replicas, &kv)) == WD_OK)
        kvStore_Destroy(kv);
    kv = NULL;
    if (st == WD_OK && (st = wd_js_ensure_kv_replicas(b, WD_KV_SERVERS, 0, 1, replicas, &kv)) == WD_OK)
        kvStore_Destroy(kv);
    return st;
}
