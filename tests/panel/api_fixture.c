/* warden-api test fixture (see api_fixture.h). */
#include "api_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

/* Runs `warden-api nats init` into a temp dir and reads api.env. */
static bool nats_init(wd_api_fx *fx)
{
    const char *d = wd_h_tmpdir("nats-auth");
    if (d == NULL)
        return false;
    snprintf(fx->nats_dir, sizeof fx->nats_dir, "%s/chain", d);
    char dir[700], log[700], path[700];
    snprintf(dir, sizeof dir, "--dir=%s", fx->nats_dir);
    snprintf(log, sizeof log, "%s/init.log", d);
    const char *argv[] = {wd_h_bin("panel-api/warden-api"), "nats", "init", dir, NULL};
    pid_t pid = wd_h_spawn(argv, NULL, log);
    int status = pid > 0 ? wd_h_wait_exit(pid, 20000) : -1;
    if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "warden-api nats init failed; see %s\n", log);
        return false;
    }
    snprintf(fx->nats.auth_conf, sizeof fx->nats.auth_conf, "%s/auth.conf", fx->nats_dir);
    snprintf(fx->ops_creds, sizeof fx->ops_creds, "%s/ops.creds", fx->nats_dir);
    snprintf(path, sizeof path, "%s/api.env", fx->nats_dir);
    static const char *const keys[] = {"WARDEN_NATS_CREDS=", "WARDEN_NATS_ACCOUNT=",
                                       "WARDEN_NATS_SIGNING_KEY="};
    FILE *f = fopen(path, "r");
    char line[800];
    int found = 0;
    while (f && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        for (int i = 0; i < 3; i++)
            if (strncmp(line, keys[i], strlen(keys[i])) == 0) {
                snprintf(fx->env_buf[i], sizeof fx->env_buf[i], "%.600s", line + strlen(keys[i]));
                found++;
            }
    }
    if (f)
        fclose(f);
    fx->cfg.nats_creds = fx->env_buf[0];
    fx->cfg.nats_account = fx->env_buf[1];
    fx->cfg.nats_signing_key = fx->env_buf[2];
    return found == 3;
}

bool wd_api_fx_start(wd_api_fx *fx, const char *tag, bool with_nats)
{
    if (!wd_h_pg_start(&fx->pg))
        return false;
    if (with_nats && fx->nats_auth && !nats_init(fx))
        return false;
    if (with_nats && !wd_h_nats_start(&fx->nats))
        return false;
    fx->cfg.database_url = fx->pg.conninfo;
    fx->cfg.nats_url = with_nats ? fx->nats.url : NULL;
    fx->cfg.data_dir = (char *)wd_h_tmpdir(tag);
    fx->cfg.issuer = (char *)"warden-test";
    fx->cfg.access_ttl_s = 900;
    fx->cfg.refresh_ttl_s = 3600;
    fx->cfg.bcrypt_cost = 4;
    fx->cfg.workers = 4;
    fx->cfg.db_pool = 4;
    fx->cfg.api_rate = 1000;
    fx->cfg.api_burst = 1000;
    if (wd_api_create(&fx->api, &fx->cfg) != WD_OK || wd_api_start(fx->api) != WD_OK) {
        fprintf(stderr, "api: %s\n", wd_err_msg());
        return false;
    }
    fx->port = wd_api_port(fx->api);
    return true;
}

void wd_api_fx_stop(wd_api_fx *fx)
{
    wd_api_destroy(&fx->api);
    if (fx->nats.pid)
        wd_h_nats_stop(&fx->nats);
    wd_h_pg_stop(&fx->pg);
}

int wd_api_fx_call(const wd_api_fx *fx, const char *method, const char *path, const char *token,
                   const char *body, json_t **out, char **headers)
{
    char hdr[4300] = "";
    if (token)
        snprintf(hdr, sizeof hdr, "Authorization: Bearer %s\r\n", token);
    char *text = NULL;
    int st = wd_h_http(fx->port, method, path, hdr, body, headers, &text);
    if (out)
        *out = text && *text ? json_loads(text, 0, NULL) : NULL;
    free(text);
    return st;
}

const char *wd_api_fx_err_code(json_t *j)
{
    const char *s = json_string_value(json_object_get(json_object_get(j, "error"), "code"));
    return s ? s : "";
}
