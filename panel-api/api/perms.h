/* Permission strings: the one list of what a subuser (or an API key scope)
 * may be granted on a server, and the matching rules.
 *
 *   control.console  control.start  control.stop  control.restart  ...
 *
 * A grant may be exact ("file.read"), a group wildcard ("file.*") or "*".
 * Admin is a role, not a permission: admins pass every check. Pure
 * functions on static data; thread-safe. docs/api.md lists the strings. */
#ifndef WD_PERMS_H
#define WD_PERMS_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    const char *name;
    const char *description;
} wd_perm_info;

/* Every known permission, NULL-terminated. */
const wd_perm_info *wd_perm_all(void);
/* True for a known permission, a known group wildcard ("backup.*") or "*". */
bool wd_perm_valid(const char *grant);
/* True if one of the grants covers needed. */
bool wd_perm_granted(const char *const *grants, size_t n, const char *needed);

#endif
