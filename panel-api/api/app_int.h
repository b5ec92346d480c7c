/* Internals of the API context shared by its modules (app.c, auth.c). */
#ifndef WD_APP_INT_H
#define WD_APP_INT_H

#include "actor.h"
#include "app.h"
#include "bus.h"
#include "db.h"
#include "jwt.h"
#include "limiter.h"
#include "metrics.h"

struct wd_api {
    wd_api_cfg cfg;
    wd_db *db;
    wd_bus *bus;
    wd_http *http;
    wd_jwt_keyring *keys;
    wd_limiter *api_limit;
    wd_backoff *login_user; /* failed logins per account */
    wd_backoff *login_ip;   /* failed logins per address */
    wd_metrics *metrics;
    /* fleet.c: the node registry actor and its subscriptions */
    wd_runtime *rt;
    wd_actor *fleet;
    natsSubscription *sub_join, *sub_heartbeat;
};

wd_status wd_fleet_start(wd_api *api);
void wd_fleet_stop(wd_api *api);

/* Issues an access JWT for a user and session. */
wd_status wd_api_issue_access(wd_api *api, const char *user_id, const char *role,
                              const char *sid, char **token);

#endif
