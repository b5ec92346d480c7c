#!/bin/sh
# warden-api with the NATS settings `warden-api nats init` wrote: loads
# $WARDEN_NATS_AUTH_DIR/api.env (WARDEN_NATS_CREDS, WARDEN_NATS_ACCOUNT,
# WARDEN_NATS_SIGNING_KEY) when it is there, then runs warden-api with the
# given arguments. Also the way to run subcommands in the container:
#   docker compose exec api warden-api-env node create --name ... --fqdn ... --ports ...
set -eu
AUTH_DIR=${WARDEN_NATS_AUTH_DIR:-/etc/warden/nats-auth}
if [ -r "$AUTH_DIR/api.env" ]; then
  set -a
  . "$AUTH_DIR/api.env"
  set +a
fi
exec /usr/local/bin/warden-api "$@"
