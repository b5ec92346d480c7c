/* Runs the real wardenctl binary for the CLI suites: environment, shell-
 * quoted arguments, optional standard input; collects the exit code and
 * both outputs. */
#ifndef WD_CTL_RUN_H
#define WD_CTL_RUN_H

typedef struct {
    int code; /* exit code, -1 if it did not exit normally */
    char out[65536];
    char err[16384];
} wd_ctl_result;

/* `env timeout 60 wardenctl args <input >out 2>err` through the shell: env
 * is "K=V ..." (may be ""), args is shell-quoted, input may be NULL. The
 * result is static (overwritten by the next call). A non-zero exit is
 * echoed to stderr to make failures readable. */
wd_ctl_result *wd_ctl_run(const char *env, const char *args, const char *input);

#endif
