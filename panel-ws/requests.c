/* Bus requests on the worker pool: console input, power, console
 * history, last state. Outcomes go back to the loop (see gateway_int.h). */
#include "gateway_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "js.h"
#include "log.h"
#include "subject.h"
#include "util.h"

/* ------------------------------------------------------------------------ */
/* Workers: bus requests                                                    */
/* ------------------------------------------------------------------------ */

static void job_error(job *j, wd_status st, const char *fallback)
{
    atomic_fetch_add(&j->gw->jobs_failed, 1);
    const char *msg = wd_err_msg();
    if (st == WD_ERR_NO_RESPONDERS)
        msg = "the server's node does not answer: is its agent running?";
    else if (!msg || !msg[0])
        msg = fallback;
    wd_gw_post_frame(j->gw, j->conn_id, wd_ws_event_error(wd_ws_error_code(st), msg, j->cause));
}

static void job_request(job *j, const char *op, const ProtobufCMessage *req,
                        const ProtobufCMessageDescriptor *desc)
{
    char subj[WD_SUBJECT_MAX], trace[33];
    ProtobufCMessage *reply = NULL;
    wd_status st = wd_subj_agent_server(subj, sizeof subj, j->node, j->server, op);
    if (st == WD_OK) {
        wd_trace_new(trace);
        wd_hdrs h = {.trace = trace, .actor = j->actor};
        st = wd_bus_request(j->gw->cfg.bus, subj, req, desc, j->gw->cfg.request_timeout_ms, &h,
                            &reply);
        /* The Status is field 1 of every reply: read it through an Ack view. */
        if (st == WD_OK)
            st = wd_status_check(((Warden__V1__Ack *)reply)->status);
        wd_info("bus request: op=%s server=%s actor=%s trace=%s status=%s", op, j->server, j->actor,
                trace, wd_status_str(st));
    }
    if (reply)
        protobuf_c_message_free_unpacked(reply, NULL);
    if (st != WD_OK)
        job_error(j, st, wd_status_str(st));
}

/* Console history: the last history_lines lines of WARDEN_CONSOLE for the
 * server, read with an ordered consumer up to the stream's last chunk. */
static void job_history(job *j)
{
    wd_gw *gw = j->gw;
    char subj[WD_SUBJECT_MAX];
    natsMsg *last = NULL, *m = NULL;
    natsSubscription *sub = NULL;
    Warden__V1__ConsoleChunk **chunks = NULL;
    size_t n = 0, cap = 0, lines = 0;
    wd_status st = wd_subj_server_event(subj, sizeof subj, j->server, "console");
    inbox_item *it = calloc(1, sizeof *it);
    if (!it)
        goto fail;
    if (st != WD_OK)
        goto fail;
    jsCtx *js = wd_bus_js(gw->cfg.bus);
    jsErrCode jerr = 0;
    natsStatus s = js_GetLastMsg(&last, js, WD_STREAM_CONSOLE, subj, NULL, &jerr);
    if (s == NATS_OK) {
        uint64_t last_seq = natsMsg_GetSequence(last);
        jsSubOptions so;
        jsSubOptions_Init(&so);
        so.Stream = WD_STREAM_CONSOLE;
        so.Ordered = true;
        if ((s = js_SubscribeSync(&sub, js, subj, NULL, &so, &jerr)) != NATS_OK) {
            st = wd_bus_status(s, "console history");
            goto fail;
        }
        for (;;) {
            if ((s = natsSubscription_NextMsg(&m, sub, 2000)) != NATS_OK) {
                st = wd_bus_status(s, "console history");
                goto fail;
            }
            jsMsgMetaData *meta = NULL;
            uint64_t seq = 0;
            if (natsMsg_GetMetaData(&meta, m) == NATS_OK) {
                seq = meta->Sequence.Stream;
                jsMsgMetaData_Destroy(meta);
            }
            Warden__V1__ConsoleChunk *c = warden__v1__console_chunk__unpack(
                NULL, (size_t)natsMsg_GetDataLength(m), (const uint8_t *)natsMsg_GetData(m));
            natsMsg_Destroy(m);
            m = NULL;
            if (c) {
                if (n == cap) {
                    size_t ncap = cap ? cap * 2 : 64;
                    void *v = realloc(chunks, ncap * sizeof *chunks);
                    if (!v) {
                        warden__v1__console_chunk__free_unpacked(c, NULL);
                        st = WD_ERR(WD_ERR_NOMEM, "out of memory");
                        goto fail;
                    }
                    chunks = v;
                    cap = ncap;
                }
                chunks[n++] = c;
                lines += c->n_lines;
                /* Keep a window of just enough chunks. */
                while (n > 1 && lines - chunks[0]->n_lines >= (size_t)gw->cfg.history_lines) {
                    lines -= chunks[0]->n_lines;
                    warden__v1__console_chunk__free_unpacked(chunks[0], NULL);
                    memmove(chunks, chunks + 1, (n - 1) * sizeof *chunks);
                    n--;
                }
            }
            if (seq == 0 || seq >= last_seq)
                break;
        }
    } else if (s != NATS_NOT_FOUND) {
        st = wd_bus_status(s, "console history");
        goto fail;
    }
    /* Frames, the first chunk cut to the line budget. */
    if (n && !(it->hist = calloc(n, sizeof *it->hist)))
        goto fail;
    for (size_t i = 0; i < n; i++) {
        uint64_t min_seq = 0;
        const Warden__V1__ConsoleChunk *c = chunks[i];
        if (i == 0 && lines > (size_t)gw->cfg.history_lines && c->first_seq)
            min_seq = c->first_seq + (lines - (size_t)gw->cfg.history_lines);
        wd_ws_frame *f = wd_ws_event_console(c, min_seq);
        if (f)
            it->hist[it->nhist++] = f;
        if (c->first_seq && c->n_lines && c->first_seq + c->n_lines - 1 > it->hist_last_seq)
            it->hist_last_seq = c->first_seq + c->n_lines - 1;
    }
    it->kind = IN_HISTORY;
    it->conn_id = j->conn_id;
    wd_gw_post(gw, it);
    it = NULL;
    goto out;
fail:
    if (st == WD_OK)
        st = WD_ERR(WD_ERR_NOMEM, "out of memory");
    job_error(j, st, "console history unavailable");
    /* Release the connection's parked live output all the same. */
    if (it) {
        for (size_t i = 0; i < it->nhist; i++)
            wd_ws_frame_unref(it->hist[i]);
        free(it->hist);
        memset(it, 0, sizeof *it);
        it->kind = IN_HISTORY;
        it->conn_id = j->conn_id;
        wd_gw_post(gw, it);
        it = NULL;
    }
out:
    free(it);
    natsMsg_Destroy(m);
    natsMsg_Destroy(last);
    if (sub) {
        natsSubscription_Unsubscribe(sub);
        natsSubscription_Destroy(sub);
    }
    for (size_t i = 0; i < n; i++)
        warden__v1__console_chunk__free_unpacked(chunks[i], NULL);
    free(chunks);
}

/* The server's last known state, from WARDEN_EVENTS. Silent when none. */
static void job_state(job *j)
{
    char subj[WD_SUBJECT_MAX];
    natsMsg *m = NULL;
    jsErrCode jerr = 0;
    if (wd_subj_server_event(subj, sizeof subj, j->server, "state") != WD_OK)
        return;
    if (js_GetLastMsg(&m, wd_bus_js(j->gw->cfg.bus), WD_STREAM_EVENTS, subj, NULL, &jerr) !=
        NATS_OK)
        return;
    Warden__V1__ServerStateEvent *e = warden__v1__server_state_event__unpack(
        NULL, (size_t)natsMsg_GetDataLength(m), (const uint8_t *)natsMsg_GetData(m));
    if (e)
        wd_gw_post_frame(j->gw, j->conn_id, wd_ws_event_status(e));
    warden__v1__server_state_event__free_unpacked(e, NULL);
    natsMsg_Destroy(m);
}

static void run_job(void *arg)
{
    job *j = arg;
    switch (j->kind) {
    case JOB_CONSOLE: {
        Warden__V1__ConsoleInput in = WARDEN__V1__CONSOLE_INPUT__INIT;
        in.line = j->line;
        job_request(j, "console.in", &in.base, &warden__v1__ack__descriptor);
        break;
    }
    case JOB_POWER: {
        Warden__V1__PowerRequest req = WARDEN__V1__POWER_REQUEST__INIT;
        req.action = (Warden__V1__PowerRequest__Action)j->action;
        job_request(j, "power", &req.base, &warden__v1__power_reply__descriptor);
        break;
    }
    case JOB_HISTORY:
        job_history(j);
        break;
    case JOB_STATE:
        job_state(j);
        break;
    }
    if (j->kind == JOB_CONSOLE || j->kind == JOB_POWER) {
        inbox_item *it = calloc(1, sizeof *it);
        if (it) {
            it->kind = IN_JOB_DONE;
            it->conn_id = j->conn_id;
            wd_gw_post(j->gw, it);
        }
    }
    free(j->line);
    free(j);
}

wd_status wd_requests_submit(wd_gw *gw, conn *c, job_kind kind, int action, const char *line,
                             const char *cause)
{
    bool counted = kind == JOB_CONSOLE || kind == JOB_POWER;
    /* One hung agent must not let a single socket hold every worker. */
    if (counted && c->inflight >= INFLIGHT_MAX)
        return WD_ERR(WD_ERR_FULL, "%d requests already waiting for the agent", INFLIGHT_MAX);
    job *j = calloc(1, sizeof *j);
    if (!j)
        return WD_ERR(WD_ERR_NOMEM, "out of memory");
    j->gw = gw;
    j->kind = kind;
    j->conn_id = c->id;
    j->action = action;
    j->cause = cause;
    snprintf(j->server, sizeof j->server, "%s", c->claims.srv);
    snprintf(j->node, sizeof j->node, "%s", c->claims.node);
    snprintf(j->actor, sizeof j->actor, "%s", c->claims.sub);
    if (line && !(j->line = strdup(line))) {
        free(j);
        return WD_ERR(WD_ERR_NOMEM, "out of memory");
    }
    wd_status st = wd_workq_post(gw->workq, run_job, j);
    if (st != WD_OK) {
        free(j->line);
        free(j);
    } else if (counted) {
        c->inflight++;
    }
    return st;
}
