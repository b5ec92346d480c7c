/* Fan-out: one NATS subscription (warden.server.<id>.*) per watched
 * server, shared by every connection watching it; and the nats.c callbacks
 * that turn bus messages into frames for the loop (see gateway_int.h). */
#include "gateway_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "subject.h"
#include "warden/v1/events.pb-c.h"

/* ------------------------------------------------------------------------ */
/* Watch table (loop thread)                                                */
/* ------------------------------------------------------------------------ */

static unsigned hash(const char *s)
{
    unsigned h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h % WATCH_BUCKETS;
}

watch *wd_fanout_find(wd_gw *gw, const char *server)
{
    for (watch *w = gw->buckets[hash(server)]; w; w = w->next)
        if (strcmp(w->server, server) == 0)
            return w;
    return NULL;
}

static void on_server_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure);

wd_status wd_fanout_acquire(wd_gw *gw, const char *server, watch **out)
{
    watch *w = wd_fanout_find(gw, server);
    if (w) {
        w->refs++;
        *out = w;
        return WD_OK;
    }
    char subj[WD_SUBJECT_MAX];
    wd_status st = wd_subj_server_event(subj, sizeof subj, server, "*");
    if (st != WD_OK)
        return st;
    if (!(w = calloc(1, sizeof *w)))
        return WD_ERR(WD_ERR_NOMEM, "out of memory");
    snprintf(w->server, sizeof w->server, "%s", server);
    natsStatus s =
        natsConnection_Subscribe(&w->sub, wd_bus_nats(gw->cfg.bus), subj, on_server_msg, gw);
    if (s != NATS_OK) {
        free(w);
        return wd_bus_status(s, "subscribe");
    }
    /* Console bursts are absorbed here, not in the loop: nats.c drops (and
     * counts as slow consumer) beyond these limits. */
    natsSubscription_SetPendingLimits(w->sub, 65536, 256 * 1024 * 1024);
    w->refs = 1;
    unsigned b = hash(server);
    w->next = gw->buckets[b];
    gw->buckets[b] = w;
    gw->nwatches++;
    wd_debug("subscribed: server=%s subscriptions=%zu", server, gw->nwatches);
    *out = w;
    return WD_OK;
}

void wd_fanout_release(wd_gw *gw, watch *w)
{
    if (--w->refs > 0)
        return;
    for (watch **pp = &gw->buckets[hash(w->server)]; *pp; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    gw->nwatches--;
    natsSubscription_Unsubscribe(w->sub);
    natsSubscription_Destroy(w->sub);
    wd_ws_frame_unref(w->last_stats);
    wd_ws_frame_unref(w->last_status);
    wd_debug("unsubscribed: server=%s subscriptions=%zu", w->server, gw->nwatches);
    free(w);
}

void wd_fanout_add_conn(watch *w, conn *c)
{
    c->wprev = NULL;
    c->wnext = w->conns;
    if (w->conns)
        w->conns->wprev = c;
    w->conns = c;
}

void wd_fanout_remove_conn(watch *w, conn *c)
{
    if (c->wprev)
        c->wprev->wnext = c->wnext;
    else
        w->conns = c->wnext;
    if (c->wnext)
        c->wnext->wprev = c->wprev;
    c->wnext = c->wprev = NULL;
}

/* ------------------------------------------------------------------------ */
/* nats.c callbacks: decode, build, post                                    */
/* ------------------------------------------------------------------------ */

static void on_server_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    wd_gw *gw = closure;
    atomic_fetch_add(&gw->bus_in, 1);
    /* warden.server.<id>.<kind>: the id comes from the subject, so nothing
     * here depends on the watch (which the loop may have freed). */
    const char *subj = natsMsg_GetSubject(msg);
    const char *prefix = "warden.server.";
    size_t pl = strlen(prefix);
    const char *id = subj + pl, *dot = strncmp(subj, prefix, pl) == 0 ? strchr(id, '.') : NULL;
    wd_ws_frame *f = NULL;
    if (!dot || (size_t)(dot - id) >= ID_MAX)
        goto out;
    const char *kind = dot + 1;
    const uint8_t *data = (const uint8_t *)natsMsg_GetData(msg);
    size_t len = (size_t)natsMsg_GetDataLength(msg);
    if (strcmp(kind, "console") == 0) {
        Warden__V1__ConsoleChunk *c = warden__v1__console_chunk__unpack(NULL, len, data);
        if (c)
            f = wd_ws_event_console(c, 0);
        warden__v1__console_chunk__free_unpacked(c, NULL);
    } else if (strcmp(kind, "state") == 0) {
        Warden__V1__ServerStateEvent *e = warden__v1__server_state_event__unpack(NULL, len, data);
        if (e)
            f = wd_ws_event_status(e);
        warden__v1__server_state_event__free_unpacked(e, NULL);
    } else if (strcmp(kind, "stats") == 0) {
        Warden__V1__ServerStats *s = warden__v1__server_stats__unpack(NULL, len, data);
        if (s)
            f = wd_ws_event_stats(s);
        warden__v1__server_stats__free_unpacked(s, NULL);
    }
    if (!f)
        goto out;
    inbox_item *it = calloc(1, sizeof *it);
    if (!it) {
        wd_ws_frame_unref(f);
        goto out;
    }
    it->kind = IN_FRAME;
    memcpy(it->server, id, (size_t)(dot - id));
    it->server[dot - id] = '\0';
    it->f = f;
    wd_gw_post(gw, it);
out:
    natsMsg_Destroy(msg);
}

void wd_fanout_on_panel_event(natsConnection *nc, natsSubscription *sub, natsMsg *msg,
                              void *closure)
{
    wd_gw *gw = closure;
    atomic_fetch_add(&gw->bus_in, 1);
    Warden__V1__PanelEvent *e = warden__v1__panel_event__unpack(
        NULL, (size_t)natsMsg_GetDataLength(msg), (const uint8_t *)natsMsg_GetData(msg));
    if (!e)
        goto out;
    if ((e->kind == WARDEN__V1__PANEL_EVENT__KIND__SESSION_REVOKED ||
         e->kind == WARDEN__V1__PANEL_EVENT__KIND__SUBUSER_REMOVED) &&
        e->subject_id && e->subject_id[0] && strlen(e->subject_id) < ID_MAX) {
        inbox_item *it = calloc(1, sizeof *it);
        if (it) {
            it->kind = IN_REVOKE;
            it->revoke_kind = e->kind;
            snprintf(it->user, sizeof it->user, "%s", e->subject_id);
            for (size_t i = 0; i < e->n_details; i++) {
                const char *k = e->details[i]->key, *v = e->details[i]->value;
                if (!k || !v || strlen(v) >= ID_MAX)
                    continue;
                if (strcmp(k, "sid") == 0)
                    snprintf(it->sid, sizeof it->sid, "%s", v);
                else if (strcmp(k, "server_id") == 0)
                    snprintf(it->server, sizeof it->server, "%s", v);
            }
            wd_gw_post(gw, it);
        }
    }
    warden__v1__panel_event__free_unpacked(e, NULL);
out:
    natsMsg_Destroy(msg);
}
