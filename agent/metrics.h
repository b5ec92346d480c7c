/* warden-agent's own HTTP endpoint: GET /healthz and GET /metrics
 * (Prometheus text format 0.0.4) for monitoring the agent itself.
 *
 * Off unless --metrics-listen is set: the agent usually runs on a game host
 * where ports belong to games. The endpoint binds to the one address given
 * (never all interfaces by default), answers from libmicrohttpd's single
 * internal thread, and only reads the agent: the registry under its read
 * lock, counters and states through atomics. See docs/operations.md. */
#ifndef WD_AGENT_METRICS_H
#define WD_AGENT_METRICS_H

#include "agent.h"
#include "status.h"

typedef struct {
    const char *listen;    /* "ADDR:PORT" or "[V6ADDR]:PORT"; port 0 picks a free one */
    const char *port_file; /* NULL: none; else the bound port is written here */
} wd_agent_metrics_cfg;

typedef struct wd_agent_metrics wd_agent_metrics;

/* Parses "ADDR:PORT" into host (NUL-terminated) and port. False if the
 * address is empty, too long, or the port is not 0..65535. */
bool wd_agent_metrics_parse_listen(const char *s, char *host, size_t n, int *port);

/* Starts serving for ag, which must outlive the endpoint (stop it before
 * wd_agent_destroy). May be called before wd_agent_start: /healthz answers
 * 503 "starting" until the agent's NATS connection exists. cfg is not
 * kept. Lifecycle functions are called from the agent's main thread. */
wd_status wd_agent_metrics_start(wd_agent_metrics **out, wd_agent *ag,
                                 const wd_agent_metrics_cfg *cfg);
/* The bound TCP port. */
int wd_agent_metrics_port(const wd_agent_metrics *m);
/* Stops the listener and waits for its thread; NULL-safe, nulls *m. */
void wd_agent_metrics_stop(wd_agent_metrics **m);

#endif
