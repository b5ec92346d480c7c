/* The permission table (see perms.h). */
#include "perms.h"

#include <string.h>

static const wd_perm_info perms[] = {
    {"websocket.connect", "open the live console/stats socket"},
    {"control.console", "send console commands"},
    {"control.start", "start the server"},
    {"control.stop", "stop the server"},
    {"control.restart", "restart the server"},
    {"control.kill", "kill the server's processes"},
    {"file.read", "list files and directories"},
    {"file.read-content", "read file contents"},
    {"file.create", "create files and directories"},
    {"file.update", "change files"},
    {"file.delete", "delete files"},
    {"file.archive", "create and extract archives"},
    {"backup.create", "create backups"},
    {"backup.read", "list backups"},
    {"backup.delete", "delete backups"},
    {"backup.download", "download backups"},
    {"backup.restore", "restore backups"},
    {"schedule.create", "create schedules"},
    {"schedule.read", "view schedules"},
    {"schedule.update", "change schedules"},
    {"schedule.delete", "delete schedules"},
    {"user.create", "add subusers"},
    {"user.read", "list subusers"},
    {"user.update", "change subusers' permissions"},
    {"user.delete", "remove subusers"},
    {"startup.read", "view startup variables"},
    {"startup.update", "change editable startup variables"},
    {"allocation.read", "view the server's addresses"},
    {"allocation.update", "change the primary address"},
    {"settings.rename", "rename the server"},
    {"settings.reinstall", "reinstall the server"},
    {"activity.read", "read the server's audit log"},
    {NULL, NULL},
};

const wd_perm_info *wd_perm_all(void)
{
    return perms;
}

static bool group_known(const char *group, size_t len)
{
    for (int i = 0; perms[i].name; i++)
        if (strncmp(perms[i].name, group, len) == 0 && perms[i].name[len] == '.')
            return true;
    return false;
}

bool wd_perm_valid(const char *grant)
{
    if (grant == NULL)
        return false;
    if (strcmp(grant, "*") == 0)
        return true;
    size_t n = strlen(grant);
    if (n > 2 && strcmp(grant + n - 2, ".*") == 0)
        return group_known(grant, n - 2);
    for (int i = 0; perms[i].name; i++)
        if (strcmp(perms[i].name, grant) == 0)
            return true;
    return false;
}

bool wd_perm_granted(const char *const *grants, size_t n, const char *needed)
{
    const char *dot = strchr(needed, '.');
    size_t glen = dot ? (size_t)(dot - needed) : strlen(needed);
    for (size_t i = 0; i < n; i++) {
        const char *g = grants[i];
        if (g == NULL)
            continue;
        if (strcmp(g, "*") == 0 || strcmp(g, needed) == 0)
            return true;
        size_t len = strlen(g);
        if (len == glen + 2 && strncmp(g, needed, glen) == 0 && strcmp(g + glen, ".*") == 0)
            return true;
    }
    return false;
}
