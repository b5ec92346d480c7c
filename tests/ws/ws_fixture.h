/* Test fixture for warden-ws: a key pair, gateway processes on free ports
 * (each a real warden-ws binary against the agent fixture's nats-server),
 * token minting, and connected, authenticated clients. */
#ifndef WD_WS_FIXTURE_H
#define WD_WS_FIXTURE_H

#include <stdbool.h>
#include <sys/types.h>

#include "agent_fixture.h"
#include "wstoken.h"
#include "ws_client.h"

typedef struct {
    pid_t pid;
    int port;
    char log[600];
} wd_gx;

/* A fresh key pair; the public key is written to a temp file. */
bool wd_gx_keys(void);
extern wd_wstoken_keys *wd_gx_issuer;
extern char wd_gx_pub_path[600];

/* Starts warden-ws with --listen 127.0.0.1:0 and extra NULL-terminated
 * arguments; waits for its port file. */
bool wd_gx_start(wd_gx *g, wd_fx *fx, const char *const *extra);
/* SIGTERM, and true if it exited 0 with a log free of sanitizer reports. */
bool wd_gx_stop(wd_gx *g);

/* A token for user/sid on server (node from fx) with NULL-terminated
 * perms, valid ttl_s seconds from now (negative: already expired). Heap
 * string; free it. */
char *wd_gx_token(wd_fx *fx, const char *server, const char *user, const char *sid,
                  const char *const *perms, int ttl_s);

/* Connects and authenticates; NULL (with a CUnit failure) if "auth success"
 * does not come. */
wsc *wd_gx_client(wd_gx *g, const char *token);

/* A metric's value from /metrics (the line starting with name + ' '), or -1. */
long wd_gx_metric(wd_gx *g, const char *name);

#endif
