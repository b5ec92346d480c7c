/* Account security routes of the caller's own account (auth.c): TOTP
 * two-factor enrolment, confirmation and removal, and password change.
 *
 * Handlers run on the API's worker threads (they block on PostgreSQL and
 * bcrypt); ud is the wd_api context, and every route needs an authenticated
 * user ("user" permission). Each one validates its whole body first, writes
 * in one transaction, and leaves an audit row. */
#ifndef WD_ACCOUNT_H
#define WD_ACCOUNT_H

#include "http.h"

/* POST /api/v1/me/totp: a new secret (sealed at rest), not yet active. */
void wd_account_totp_enrol(wd_http_req *r, void *ud);
/* POST /api/v1/me/totp/confirm {"code"}: activates 2FA, returns recovery codes. */
void wd_account_totp_confirm(wd_http_req *r, void *ud);
/* DELETE /api/v1/me/totp {"password","code"}: turns 2FA off. */
void wd_account_totp_disable(wd_http_req *r, void *ud);
/* POST /api/v1/me/password {"current_password","new_password"}: ends every session. */
void wd_account_password_change(wd_http_req *r, void *ud);

#endif
