/* warden-api test fixture (see api_fixture.h). */
#include "api_fixture.h"

#include <stdio.h>
#include <stdlib.h>

bool wd_api_fx_start(wd_api_fx *fx, const char *tag, bool with_nats)
{
    if (!wd_h_pg_start(&fx->pg) || (with_nats && !wd_h_nats_start(&fx->nats)))
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
