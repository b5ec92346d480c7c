/* Gateway test fixture (see ws_fixture.h). */
#include "ws_fixture.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "util.h"

wd_wstoken_keys *wd_gx_issuer;
char wd_gx_pub_path[600];

bool wd_gx_keys(void)
{
    char *priv = NULL, *pub = NULL;
    if (wd_wstoken_keygen(&priv, &pub) != WD_OK)
        return false;
    bool ok = wd_wstoken_keys_from_pem(&wd_gx_issuer, priv, NULL, 0) == WD_OK;
    snprintf(wd_gx_pub_path, sizeof wd_gx_pub_path, "%s", wd_h_write_tmp("ws-pub.pem", pub));
    free(priv);
    free(pub);
    return ok;
}

bool wd_gx_start(wd_gx *g, wd_fx *fx, const char *const *extra)
{
    memset(g, 0, sizeof *g);
    const char *d = wd_h_tmpdir("ws");
    char port_file[600], pf[620], nats[120], key[620];
    snprintf(port_file, sizeof port_file, "%s/port", d);
    snprintf(g->log, sizeof g->log, "%s/ws.log", d);
    snprintf(pf, sizeof pf, "--port-file=%s", port_file);
    snprintf(nats, sizeof nats, "--nats-url=%s", fx->nats.url);
    snprintf(key, sizeof key, "--token-pubkey=%s", wd_gx_pub_path);
    const char *argv[32] = {
        wd_h_bin("panel-ws/warden-ws"), "--listen=127.0.0.1:0", pf, nats, key, "--log-level=debug"};
    int n = 6;
    for (int i = 0; extra && extra[i] && n < 31; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    g->pid = wd_h_spawn(argv, NULL, g->log);
    if (g->pid < 0 || (g->port = wd_h_read_port_file(port_file, 10000)) <= 0 ||
        !wd_h_wait_port(g->port, 5000))
        return false;
    /* Ready once connected to NATS (/healthz says 200). */
    return WD_H_WAIT(wd_h_http(g->port, "GET", "/healthz", NULL, NULL, NULL, NULL) == 200, 10000);
}

bool wd_gx_stop(wd_gx *g)
{
    if (g->pid <= 0)
        return true;
    int status = wd_h_stop(g->pid, SIGTERM, 10000);
    g->pid = 0;
    bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    char *text = NULL;
    size_t len = 0;
    if (wd_read_file(g->log, 64 << 20, &text, &len) == WD_OK) {
        if (memmem(text, len, "Sanitizer", 9) || memmem(text, len, "runtime error:", 14)) {
            fprintf(stderr, "sanitizer report in %s\n", g->log);
            ok = false;
        }
        free(text);
    }
    if (!ok)
        fprintf(stderr, "warden-ws did not exit cleanly (status %d); see %s\n", status, g->log);
    return ok;
}

char *wd_gx_token(wd_fx *fx, const char *server, const char *user, const char *sid,
                  const char *const *perms, int ttl_s)
{
    wd_wstoken_claims c;
    memset(&c, 0, sizeof c);
    time_t now = time(NULL);
    snprintf(c.sub, sizeof c.sub, "%s", user);
    snprintf(c.sid, sizeof c.sid, "%s", sid ? sid : "");
    snprintf(c.srv, sizeof c.srv, "%s", server);
    snprintf(c.node, sizeof c.node, "%s", fx->node_id);
    for (int i = 0; perms && perms[i] && i < WD_WSTOKEN_MAX_PERMS; i++)
        snprintf(c.perms[c.nperms++], WD_WSTOKEN_PERM_MAX, "%s", perms[i]);
    c.iat = ttl_s > 0 ? now : now + ttl_s - 60;
    c.exp = now + ttl_s;
    char *t = NULL;
    if (wd_wstoken_issue(wd_gx_issuer, &c, &t) != WD_OK)
        return NULL;
    return t;
}

wsc *wd_gx_client(wd_gx *g, const char *token)
{
    wsc *c = wsc_connect(g->port, NULL, NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL(c);
    if (!c)
        return NULL;
    wsc_send_event(c, "auth", token);
    if (!wsc_wait(c, "auth success", NULL, 5000)) {
        CU_FAIL("no auth success");
        wsc_free(c);
        return NULL;
    }
    return c;
}

long wd_gx_metric(wd_gx *g, const char *name)
{
    char *body = NULL;
    long v = -1;
    if (wd_h_http(g->port, "GET", "/metrics", NULL, NULL, NULL, &body) != 200) {
        free(body);
        return -1;
    }
    size_t nl = strlen(name);
    for (char *p = body; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, name, nl) == 0 && p[nl] == ' ') {
            v = strtol(p + nl + 1, NULL, 10);
            break;
        }
    }
    free(body);
    return v;
}
