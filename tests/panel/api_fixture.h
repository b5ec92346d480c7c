/* Shared fixture of the warden-api suites: a throwaway PostgreSQL (and a
 * nats-server when asked), warden-api in-process with test settings (bcrypt
 * cost 4, generous rate limits, any free port), and an HTTP helper.
 * Everything is stopped at exit by the harness, even when a test fails. */
#ifndef WD_API_FIXTURE_H
#define WD_API_FIXTURE_H

#include <jansson.h>
#include <stdbool.h>

#include "app.h"
#include "harness.h"
#include "pg.h"

typedef struct {
    wd_h_pg pg;
    wd_h_nats nats;
    wd_api_cfg cfg;
    wd_api *api;
    int port;
    /* Set before start: run NATS in operator mode with the chain from
     * `warden-api nats init` (the real binary); the API gets api.creds and
     * the signing key, so joining nodes get their own credentials. */
    bool nats_auth;
    char nats_dir[512];   /* the chain's directory */
    char ops_creds[700];  /* creds for a test's own bus client */
    char env_buf[3][700]; /* api.env's values the config points at */
} wd_api_fx;

/* Starts PostgreSQL (+ nats-server when with_nats) and the API. The fixture
 * must be static (the harness keeps pointers into it). */
bool wd_api_fx_start(wd_api_fx *fx, const char *tag, bool with_nats);
void wd_api_fx_stop(wd_api_fx *fx);

/* One request with an optional bearer token; returns the status, *out the
 * parsed body (NULL when empty; caller decrefs), *headers the raw headers. */
int wd_api_fx_call(const wd_api_fx *fx, const char *method, const char *path, const char *token,
                   const char *body, json_t **out, char **headers);
/* The error code of an error body, "" when there is none. */
const char *wd_api_fx_err_code(json_t *j);

#endif
