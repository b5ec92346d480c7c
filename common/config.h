/* Settings tables: one row per setting (name, type, default, bounds,
 * environment variable, flag, help). Parsing of flags and WARDEN_*
 * environment variables, and --help, all come from the table, so a setting
 * is declared exactly once.
 *
 * Precedence: default < environment < command-line flag.
 * Values are written into caller-owned storage pointed to by each row;
 * strings are heap copies owned by the table (free with wd_config_free). */
#ifndef WD_CONFIG_H
#define WD_CONFIG_H

#include <stdbool.h>
#include <stdio.h>

#include "status.h"

typedef enum { WD_CFG_STR, WD_CFG_INT, WD_CFG_BOOL } wd_cfg_type;

typedef struct {
    const char *flag; /* long flag without dashes, e.g. "nats-url" */
    const char *env;  /* e.g. "WARDEN_NATS_URL", or NULL */
    wd_cfg_type type;
    const char *def;  /* default as text, or NULL */
    long min, max;    /* bounds for WD_CFG_INT */
    void *target;     /* char ** / long * / bool * */
    const char *help;
} wd_cfg_opt;

/* The three settings of TLS to NATS, the same in every program:
 * --nats-tls-ca / --nats-tls-cert / --nats-tls-key (WARDEN_NATS_TLS_*). */
#define WD_CFG_NATS_TLS(ca, cert, key)                                                       \
    {"nats-tls-ca", "WARDEN_NATS_TLS_CA", WD_CFG_STR, NULL, 0, 0, (ca),                      \
     "CA certificate NATS servers are verified with (turns TLS on)"},                        \
        {"nats-tls-cert", "WARDEN_NATS_TLS_CERT", WD_CFG_STR, NULL, 0, 0, (cert),            \
         "client certificate for NATS TLS (when NATS verifies clients)"},                    \
        {"nats-tls-key", "WARDEN_NATS_TLS_KEY", WD_CFG_STR, NULL, 0, 0, (key),               \
         "key of that client certificate"}

/* Parses defaults, then environment, then argv (--flag value, --flag=value,
 * --no-flag for booleans). Positional arguments are returned in *rest_argc /
 * rest_argv (pointers into argv; may be NULL when none are allowed).
 * Returns WD_ERR_INVALID with a message naming the offending setting, or
 * WD_ERR_CLOSED when --help was printed. */
wd_status wd_config_parse(wd_cfg_opt *opts, size_t n, const char *prog, const char *summary,
                          int argc, char **argv, int *rest_argc, char ***rest_argv);
void wd_config_usage(const wd_cfg_opt *opts, size_t n, const char *prog, const char *summary,
                     FILE *out);
/* Frees the strings the table allocated and nulls the targets. */
void wd_config_free(wd_cfg_opt *opts, size_t n);

#endif
