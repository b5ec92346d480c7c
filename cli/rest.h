/* wardenctl's REST mode: the same operator verbs against warden-api
 * instead of the bus (login, servers, power, send), and the bulk ones that
 * must honour the caller's permissions: `power ACTION --filter EXPR` and
 * `broadcast MESSAGE` act only on servers where GET /api/v1/servers/{id}
 * lists the needed permission (control.<action>, control.console); the
 * others are reported as skipped.
 *
 * The session (API URL, access and refresh tokens) is kept in
 * $WARDEN_SESSION or ~/.config/warden/session.json (mode 0600); an expired
 * access token is refreshed once, transparently. WARDEN_TOKEN (an API key
 * or an access token) takes precedence over the session file. */
#ifndef WD_REST_H
#define WD_REST_H

#include <stdbool.h>

/* Runs one REST command; returns the exit code (0, 1 on errors from the
 * API, 2 on usage). argv[0] is the command. */
int wd_rest_main(const char *api_url, bool json, int argc, char **argv);

#endif
