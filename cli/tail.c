/* bus tail (see tail.h). A plain core-NATS subscription: it sees what is
 * published from now on, JetStream-backed subjects included. */
#include "tail.h"

#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "pbjson.h"
#include "util.h"

int wd_tail_run(const char *subject, long count)
{
    if (subject == NULL || *subject == '\0' || strlen(subject) >= 256)
        return wd_ctl_fail("bus tail: give a subject (e.g. 'warden.server.*.state' or 'warden.>')");
    for (const unsigned char *p = (const unsigned char *)subject; *p; p++)
        if (*p <= 0x20 || *p == 0x7f)
            return wd_ctl_fail("bus tail: a subject has no blanks or control characters");
    natsConnection *nc = wd_bus_nats(wd_ctl_bus);
    natsSubscription *sub = NULL;
    natsStatus s = natsConnection_SubscribeSync(&sub, nc, subject);
    if (s != NATS_OK)
        return wd_ctl_fail("bus tail %s: %s", subject, natsStatus_GetText(s));
    natsSubscription_SetPendingLimits(sub, 65536, 256 << 20);
    /* A subject our NATS user may not read is refused asynchronously: the
     * round trip of a flush brings the -ERR back first. */
    s = natsConnection_Flush(nc);
    const char *text = NULL;
    if (s == NATS_OK && natsConnection_GetLastError(nc, &text) == NATS_NOT_PERMITTED)
        s = NATS_NOT_PERMITTED;
    if (s != NATS_OK) {
        natsSubscription_Destroy(sub);
        if (s == NATS_NOT_PERMITTED)
            return wd_ctl_fail("bus tail %s: not permitted for this NATS user (ops.creds may "
                               "watch warden.> and _INBOX.>)",
                               subject);
        return wd_ctl_fail("bus tail %s: %s", subject, natsStatus_GetText(s));
    }
    if (!wd_ctl_json)
        fprintf(stderr, "wardenctl: watching %s (Ctrl-C stops)\n", subject);
    long seen = 0;
    int rc = 0;
    while (!wd_ctl_interrupted && (count == 0 || seen < count)) {
        natsMsg *m = NULL;
        s = natsSubscription_NextMsg(&m, sub, 200);
        if (s == NATS_TIMEOUT)
            continue;
        if (s == NATS_SLOW_CONSUMER) {
            fprintf(stderr, "wardenctl: too slow: messages were dropped\n");
            continue;
        }
        if (s != NATS_OK) {
            rc = wd_ctl_fail("bus tail: %s", natsStatus_GetText(s));
            break;
        }
        const char *data = natsMsg_GetData(m);
        int len = natsMsg_GetDataLength(m);
        wd_pbjson_print_msg(stdout, natsMsg_GetSubject(m), data ? data : "",
                            len > 0 ? (size_t)len : 0, wd_unix_ms(), wd_bus_header(m, WD_HDR_TRACE),
                            wd_ctl_json);
        fflush(stdout);
        natsMsg_Destroy(m);
        seen++;
    }
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    return rc;
}
