#!/bin/sh
# warden-agent in a container. Refuses to start before the node has joined
# and no join token is given: warden-agent would otherwise make up a node id
# of its own, keep it in the data volume, and ignore a token given later
# (in operator mode it could not connect anyway). Restarted by Docker, it
# tries again; set WARDEN_JOIN_TOKEN (docs/deploy-compose.md) and
# `docker compose up -d agent`.
set -eu
DATA_DIR=${WARDEN_DATA_DIR:-/var/lib/warden}
if [ ! -s "$DATA_DIR/node-id" ] && [ -z "${WARDEN_JOIN_TOKEN:-}" ] &&
   [ -z "${WARDEN_NODE_ID:-}" ]; then
  echo "warden-agent: this node has not joined yet and WARDEN_JOIN_TOKEN is empty." >&2
  echo "warden-agent: create the node in the panel (or warden-api-env node create) and start" \
       "this container with WARDEN_JOIN_TOKEN set." >&2
  sleep 30
  exit 78
fi
exec /usr/local/bin/warden-agent "$@"
