/* wardenctl runner for the CLI suites (see ctl_run.h). */
#include "ctl_run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "harness.h"
#include "util.h"

static void slurp(const char *path, char *buf, size_t n)
{
    char *text = NULL;
    buf[0] = '\0';
    if (wd_read_file(path, n - 1, &text, NULL) == WD_OK) {
        snprintf(buf, n, "%s", text);
        free(text);
    }
}

wd_ctl_result *wd_ctl_run(const char *env, const char *args, const char *input)
{
    static wd_ctl_result r;
    memset(&r, 0, sizeof r);
    const char *dir = wd_h_tmpdir("ctl");
    char outp[600], errp[600], inp[600];
    snprintf(outp, sizeof outp, "%s/out", dir);
    snprintf(errp, sizeof errp, "%s/err", dir);
    snprintf(inp, sizeof inp, "%s/in", dir);
    FILE *f = fopen(inp, "w");
    if (f) {
        if (input)
            fputs(input, f);
        fclose(f);
    }
    size_t n = strlen(env) + strlen(args) + 3 * sizeof outp + 1200;
    char *cmd = malloc(n);
    if (cmd == NULL) {
        r.code = -1;
        return &r;
    }
    snprintf(cmd, n, "%s timeout 60 %s %s <%s >%s 2>%s", env, wd_h_bin("cli/wardenctl"), args,
             inp, outp, errp);
    int st = system(cmd);
    free(cmd);
    r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    slurp(outp, r.out, sizeof r.out);
    slurp(errp, r.err, sizeof r.err);
    if (r.code != 0)
        fprintf(stderr, "[wardenctl %s] exit %d: %s%s", args, r.code, r.out, r.err);
    return &r;
}
