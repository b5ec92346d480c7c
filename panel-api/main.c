/* warden-api: settings, subcommands, run until SIGINT/SIGTERM.
 *
 *   warden-api [options]                       serve the API
 *   warden-api admin create --username U --email E [--password-stdin] [options]
 *                                              create an admin; prints a
 *                                              one-time password unless
 *                                              one is read from stdin
 *   warden-api node create --name N --fqdn F [--memory-mb M --disk-mb D]
 *              [--ports IP:LO-HI]             create a node; prints its
 *                                              one-time join token
 *   warden-api nats init --dir DIR             create the NATS operator,
 *                                              accounts and credentials
 *   warden-api template import FILE...         add templates (Warden JSON or
 *                                              eggs) whose slug is new
 * Everything else lives in the api library. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app.h"
#include "config.h"
#include "log.h"
#include "natsauth.h"
#include "util.h"

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    stop_signal = sig;
}

int main(int argc, char **argv)
{
    wd_api_cfg c = {0};
    char *log_level = NULL, *admin_user = NULL, *admin_email = NULL, *admin_password = NULL;
    bool password_stdin = false;
    char *node_name = NULL, *node_fqdn = NULL, *node_ports = NULL;
    long node_mem = 0, node_disk = 0;
    char *nats_dir = NULL;
    wd_cfg_opt opts[] = {
        {"listen", "WARDEN_API_LISTEN", WD_CFG_STR, "127.0.0.1", 0, 0, &c.listen,
         "address to listen on"},
        {"port", "WARDEN_API_PORT", WD_CFG_INT, "8080", 0, 65535, &c.port,
         "TCP port (0: any free port, logged at start)"},
        {"database-url", "WARDEN_DATABASE_URL", WD_CFG_STR, NULL, 0, 0, &c.database_url,
         "PostgreSQL connection string or URI (required)"},
        {"nats-url", "WARDEN_NATS_URL", WD_CFG_STR, "nats://127.0.0.1:4222", 0, 0, &c.nats_url,
         "NATS server URLs, comma-separated"},
        {"nats-creds", "WARDEN_NATS_CREDS", WD_CFG_STR, NULL, 0, 0, &c.nats_creds,
         "the API's NATS credentials file (api.creds from `nats init`)"},
        WD_CFG_NATS_TLS(&c.nats_tls_ca, &c.nats_tls_cert, &c.nats_tls_key),
        {"js-replicas", "WARDEN_JS_REPLICAS", WD_CFG_INT, "1", 1, 5, &c.js_replicas,
         "replicas of Warden's JetStream streams and buckets (3 on a 3-server NATS cluster)"},
        {"nats-account", "WARDEN_NATS_ACCOUNT", WD_CFG_STR, NULL, 0, 0, &c.nats_account,
         "public key of the WARDEN NATS account (mints node credentials at join)"},
        {"nats-signing-key", "WARDEN_NATS_SIGNING_KEY", WD_CFG_STR, NULL, 0, 0,
         &c.nats_signing_key, "file holding that account's signing key seed (signing.seed)"},
        {"ws-key", "WARDEN_WS_KEY", WD_CFG_STR, NULL, 0, 0, &c.ws_key_file,
         "EC P-256 key that signs gateway tokens (default DATA_DIR/ws.key, created with "
         "ws.pub, the public half warden-ws verifies with)"},
        {"ws-url", "WARDEN_WS_URL", WD_CFG_STR, "ws://127.0.0.1:8081/ws", 0, 0, &c.ws_url,
         "the gateway's public WebSocket URL, handed to browsers"},
        {"ws-token-ttl", "WARDEN_WS_TOKEN_TTL", WD_CFG_INT, "600", 30, 3600, &c.ws_token_ttl_s,
         "gateway token lifetime, seconds"},
        {"web-dir", "WARDEN_WEB_DIR", WD_CFG_STR, NULL, 0, 0, &c.web_dir,
         "the web panel's built files (web/dist), served at /"},
        {"dir", NULL, WD_CFG_STR, NULL, 0, 0, &nats_dir,
         "nats init: where to write the operator, keys, creds and auth.conf"},
        {"data-dir", "WARDEN_API_DATA_DIR", WD_CFG_STR, "/var/lib/warden-api", 0, 0,
         &c.data_dir, "where the API keeps its key files"},
        {"jwt-key-file", "WARDEN_JWT_KEY_FILE", WD_CFG_STR, NULL, 0, 0, &c.jwt_key_file,
         "token signing keys, KID:BASE64 per line, first active (default DATA_DIR/jwt.key, "
         "created if missing)"},
        {"issuer", "WARDEN_API_ISSUER", WD_CFG_STR, "warden", 0, 0, &c.issuer,
         "JWT issuer and audience"},
        {"access-ttl", "WARDEN_ACCESS_TTL", WD_CFG_INT, "900", 60, 86400, &c.access_ttl_s,
         "access token lifetime, seconds"},
        {"refresh-ttl", "WARDEN_REFRESH_TTL", WD_CFG_INT, "2592000", 300, 31536000,
         &c.refresh_ttl_s, "refresh token lifetime, seconds"},
        {"bcrypt-cost", "WARDEN_BCRYPT_COST", WD_CFG_INT, "12", 4, 15, &c.bcrypt_cost,
         "bcrypt cost for new passwords"},
        {"workers", "WARDEN_API_WORKERS", WD_CFG_INT, "16", 1, 256, &c.workers,
         "handler threads"},
        {"db-pool", "WARDEN_DB_POOL", WD_CFG_INT, "8", 1, 256, &c.db_pool,
         "database connections"},
        {"api-rate", "WARDEN_API_RATE", WD_CFG_INT, "50", 1, 100000, &c.api_rate,
         "requests per second per user or key"},
        {"api-burst", "WARDEN_API_BURST", WD_CFG_INT, "100", 1, 100000, &c.api_burst,
         "burst of requests per user or key"},
        {"username", "WARDEN_ADMIN_USERNAME", WD_CFG_STR, NULL, 0, 0, &admin_user,
         "admin create: the username (also: first-start admin from the environment)"},
        {"email", "WARDEN_ADMIN_EMAIL", WD_CFG_STR, NULL, 0, 0, &admin_email,
         "admin create: the email"},
        {"password", "WARDEN_ADMIN_PASSWORD", WD_CFG_STR, NULL, 0, 0, &admin_password,
         "first-start admin password from the environment (avoid on command lines)"},
        {"password-stdin", NULL, WD_CFG_BOOL, "false", 0, 0, &password_stdin,
         "admin create: read the password from standard input"},
        {"name", NULL, WD_CFG_STR, NULL, 0, 0, &node_name, "node create: the node's name"},
        {"fqdn", NULL, WD_CFG_STR, NULL, 0, 0, &node_fqdn, "node create: its address"},
        {"memory-mb", NULL, WD_CFG_INT, "8192", 1, 1L << 40, &node_mem,
         "node create: memory for game servers"},
        {"disk-mb", NULL, WD_CFG_INT, "100000", 1, 1L << 40, &node_disk,
         "node create: disk for game servers"},
        {"ports", NULL, WD_CFG_STR, NULL, 0, 0, &node_ports,
         "node create: allocations IP:LO-HI, e.g. 127.0.0.1:30000-30099"},
        {"log-level", "WARDEN_LOG_LEVEL", WD_CFG_STR, "info", 0, 0, &log_level,
         "debug, info, warn or error"},
    };
    size_t nopts = sizeof opts / sizeof opts[0];
    int nrest = 0;
    char **rest = NULL;
    wd_log_set_component("api");
    wd_status st = wd_config_parse(opts, nopts, "warden-api",
                                   "Warden's REST API (subcommands: admin create, node create, nats init, "
                                   "template import FILE...).",
                                   argc, argv, &nrest, &rest);
    if (st == WD_ERR_CLOSED)
        return 0;
    if (st != WD_OK) {
        fprintf(stderr, "warden-api: %s\n", wd_err_msg());
        return 2;
    }
    wd_log_level lvl;
    if (!wd_log_parse_level(log_level, &lvl)) {
        fprintf(stderr, "warden-api: --log-level must be debug, info, warn or error\n");
        return 2;
    }
    wd_log_set_level(lvl);
    bool admin_create = nrest == 2 && strcmp(rest[0], "admin") == 0 && strcmp(rest[1], "create") == 0;
    bool node_create = nrest == 2 && strcmp(rest[0], "node") == 0 && strcmp(rest[1], "create") == 0;
    bool nats_init = nrest == 2 && strcmp(rest[0], "nats") == 0 && strcmp(rest[1], "init") == 0;
    bool tpl_import =
        nrest >= 3 && strcmp(rest[0], "template") == 0 && strcmp(rest[1], "import") == 0;
    if (nrest != 0 && !admin_create && !node_create && !nats_init && !tpl_import) {
        fprintf(stderr, "warden-api: unknown command (try: warden-api --help)\n");
        return 2;
    }
    if (nats_init) {
        int rc = 0;
        if (nats_dir == NULL) {
            fprintf(stderr, "warden-api: nats init needs --dir DIR\n");
            rc = 2;
        } else if ((st = wd_natsauth_init(nats_dir, stdout)) != WD_OK) {
            fprintf(stderr, "warden-api: %s\n", wd_err_msg());
            rc = st == WD_ERR_EXISTS ? 3 : 1;
        } else {
            printf("Next: include auth.conf from nats-server's config, and start warden-api "
                   "with the settings in api.env.\n");
        }
        wd_config_free(opts, nopts);
        return rc;
    }
    if (c.database_url == NULL) {
        fprintf(stderr, "warden-api: set WARDEN_DATABASE_URL (or --database-url), e.g. "
                        "postgresql://warden@127.0.0.1/warden\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    int rc = 0;
    wd_api *api = NULL;
    if (admin_create || node_create || tpl_import) {
        free(c.nats_url); /* not needed to create rows */
        c.nats_url = NULL;
        c.port = 0;
    }
    if ((st = wd_api_create(&api, &c)) != WD_OK) {
        fprintf(stderr, "warden-api: %s\n", wd_err_msg());
        rc = 1;
        goto out;
    }
    if (admin_create) {
        if (admin_user == NULL || admin_email == NULL) {
            fprintf(stderr, "warden-api: admin create needs --username and --email\n");
            rc = 2;
            goto out;
        }
        char pwbuf[128] = "", generated[64] = "", id[40] = "";
        const char *pw = NULL;
        if (password_stdin) {
            if (fgets(pwbuf, sizeof pwbuf, stdin) == NULL || pwbuf[0] == '\n') {
                fprintf(stderr, "warden-api: no password on standard input\n");
                rc = 2;
                goto out;
            }
            pwbuf[strcspn(pwbuf, "\r\n")] = '\0';
            pw = pwbuf;
        }
        /* Migrations first: admin create may be the very first command. */
        if ((st = wd_api_start(api)) != WD_OK ||
            (st = wd_api_create_user(api, admin_user, admin_email, "admin", pw, generated,
                                     sizeof generated, id)) != WD_OK) {
            fprintf(stderr, "warden-api: %s\n", wd_err_msg());
            rc = 1;
            goto out;
        }
        printf("created admin %s (id %s)\n", admin_user, id);
        if (generated[0])
            printf("one-time password: %s\n(shown only now: log in and change it)\n",
                   generated);
        goto out;
    }
    if (tpl_import) {
        /* Each file once: templates that exist (by slug) are left alone. */
        if ((st = wd_api_start(api)) != WD_OK) {
            fprintf(stderr, "warden-api: %s\n", wd_err_msg());
            rc = 1;
            goto out;
        }
        for (int i = 2; i < nrest; i++) {
            char *text = NULL, slug[80] = "";
            size_t len = 0;
            bool created = false;
            if ((st = wd_read_file(rest[i], 4 << 20, &text, &len)) == WD_OK)
                st = wd_api_import_template(api, text, len, slug, sizeof slug, &created);
            free(text);
            if (st != WD_OK) {
                fprintf(stderr, "warden-api: %s: %s\n", rest[i], wd_err_msg());
                rc = 1;
            } else {
                printf("%s: template %s %s\n", rest[i], slug,
                       created ? "imported" : "exists already (kept)");
            }
        }
        goto out;
    }
    if (node_create) {
        if (node_name == NULL || node_fqdn == NULL) {
            fprintf(stderr, "warden-api: node create needs --name and --fqdn\n");
            rc = 2;
            goto out;
        }
        char ip[64] = "";
        int lo = 0, hi = 0;
        if (node_ports && (sscanf(node_ports, "%63[^:]:%d-%d", ip, &lo, &hi) != 3 || lo < 1 ||
                           hi > 65535 || lo > hi || hi - lo > 10000)) {
            fprintf(stderr, "warden-api: --ports looks like 127.0.0.1:30000-30099\n");
            rc = 2;
            goto out;
        }
        char id[40] = "", *token = NULL;
        if ((st = wd_api_start(api)) != WD_OK ||
            (st = wd_api_create_node(api, node_name, node_fqdn, node_mem, node_disk,
                                     node_ports ? ip : NULL, lo, hi, id, &token)) != WD_OK) {
            fprintf(stderr, "warden-api: %s\n", wd_err_msg());
            rc = 1;
            goto out;
        }
        printf("node %s (id %s)\njoin token: %s\n", node_name, id, token);
        free(token);
        goto out;
    }
    if ((st = wd_api_start(api)) != WD_OK) {
        fprintf(stderr, "warden-api: %s\n", wd_err_msg());
        rc = 1;
        goto out;
    }
    /* First start from the environment: WARDEN_ADMIN_USERNAME and
     * WARDEN_ADMIN_EMAIL (and WARDEN_ADMIN_PASSWORD, else a one-time one
     * is printed) create the first admin, only while there is none. */
    if (admin_user && admin_email) {
        char generated[64] = "", id[40] = "";
        st = wd_api_bootstrap_admin(api, admin_user, admin_email, admin_password, generated,
                                    sizeof generated, id);
        if (st == WD_OK && id[0]) {
            fprintf(stderr, "warden-api: created the first admin %s (id %s)%s%s\n", admin_user, id,
                    generated[0] ? "; one-time password: " : "", generated);
        } else if (st != WD_OK) {
            fprintf(stderr, "warden-api: first admin: %s\n", wd_err_msg());
            rc = 1;
            goto out;
        }
    }
    while (!stop_signal)
        pause();
    wd_info("signal %d: shutting down", (int)stop_signal);
out:
    wd_api_destroy(&api);
    wd_config_free(opts, nopts);
    return rc;
}
