/* wardenctl shared state and bus helpers (see ctl.h). */
#include "ctl.h"

#include <stdarg.h>
#include <string.h>

#include "js.h"
#include "pbjson.h"
#include "subject.h"
#include "util.h"
#include "warden/v1/common.pb-c.h"

wd_bus *wd_ctl_bus;
bool wd_ctl_json;
int wd_ctl_timeout_ms = 5000;
/* Stored by a signal handler: only a lock-free atomic is safe there. */
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "atomic_int must be lock-free");
atomic_int wd_ctl_interrupted;

int wd_ctl_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "wardenctl: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

static const char *const state_names[] = {"unknown", "offline",  "installing", "starting",
                                          "running", "stopping", "crashed"};

const char *wd_ctl_state_str(int s)
{
    return s >= 0 && s <= 6 ? state_names[s] : "unknown";
}

int wd_ctl_state_parse(const char *name)
{
    for (int i = 0; i <= 6; i++)
        if (strcmp(name, state_names[i]) == 0)
            return i;
    return -1;
}

void wd_ctl_json_str(FILE *f, const char *s)
{
    /* One escaper for all of wardenctl's JSON: pbjson's also replaces
     * invalid UTF-8 (names and errors come from agents and games). */
    wd_pbjson_str(f, s, s ? strlen(s) : 0);
}

wd_status wd_ctl_locate(const char *id, char *node, size_t n)
{
    if (!wd_subj_token_ok(id))
        return WD_ERR(WD_ERR_INVALID, "'%s' is not a valid server id", id);
    kvStore *kv = NULL;
    natsStatus s = js_KeyValue(&kv, wd_bus_js(wd_ctl_bus), WD_KV_SERVERS);
    if (s != NATS_OK)
        return WD_ERR(WD_ERR_NOT_FOUND, "no server registry on this NATS (is an agent running?)");
    kvEntry *e = NULL;
    s = kvStore_Get(&e, kv, id);
    wd_status st = WD_OK;
    if (s == NATS_NOT_FOUND)
        st = WD_ERR(WD_ERR_NOT_FOUND, "server %s not found", id);
    else if (s != NATS_OK)
        st = wd_bus_status(s, "server registry");
    else
        snprintf(node, n, "%s", kvEntry_ValueString(e));
    kvEntry_Destroy(e);
    kvStore_Destroy(kv);
    return st;
}

wd_status wd_ctl_request(const char *id, const char *node, const char *op,
                         const ProtobufCMessage *req, const ProtobufCMessageDescriptor *desc,
                         int timeout_ms, ProtobufCMessage **reply)
{
    char nodebuf[128], subj[WD_SUBJECT_MAX], trace[33];
    wd_status st;
    if (node == NULL || *node == '\0') {
        if ((st = wd_ctl_locate(id, nodebuf, sizeof nodebuf)) != WD_OK)
            return st;
        node = nodebuf;
    }
    if ((st = wd_subj_agent_server(subj, sizeof subj, node, id, op)) != WD_OK)
        return st;
    wd_trace_new(trace);
    wd_hdrs h = {.trace = trace, .actor = "wardenctl"};
    st = wd_bus_request(wd_ctl_bus, subj, req, desc,
                        timeout_ms > 0 ? timeout_ms : wd_ctl_timeout_ms, &h, reply);
    if (st == WD_ERR_NO_RESPONDERS)
        return WD_ERR(st, "node %s does not answer: is its agent running?", node);
    return st;
}

wd_status wd_ctl_reply_status(ProtobufCMessage *reply)
{
    return wd_status_check(((Warden__V1__Ack *)reply)->status);
}
