#!/usr/bin/env bash
# The local stack behind `make run`, in the foreground, everything on
# 127.0.0.1 and all data under ./var:
#   nats-server (JetStream)   var/nats    (TLS with a private CA in var/nats-tls;
#                                          operator mode: the trust chain from
#                                          `warden-api nats init` in var/nats-auth)
#   PostgreSQL                var/pg      (a private cluster, not the system one)
#   warden-api                var/api     (first run: creates an admin and prints
#                                          its one-time password)
#   warden-ws                 (the WebSocket gateway; verifies tokens with var/api/ws.pub)
#   warden-agent              var/agent
# Ctrl-C stops the agent (and, here, its games), the API, PostgreSQL and NATS.
#
#   WARDEN_NATS_PORT   NATS client port (default 4222)
#   WARDEN_PG_PORT     PostgreSQL port (default 5433)
#   WARDEN_API_PORT    API port (default 8080)
#   WARDEN_WS_PORT     gateway port (default 8081)
#   WARDEN_GAME_PORTS  the local node's game ports (default 30000-30099)
#   WARDEN_VAR         where everything lives (default ./var; the browser
#                      tests use a temporary one)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
BUILD=${BUILD:-build}
PORT=${WARDEN_NATS_PORT:-4222}
PG_PORT=${WARDEN_PG_PORT:-5433}
API_PORT=${WARDEN_API_PORT:-8080}
WS_PORT=${WARDEN_WS_PORT:-8081}
PG_BIN=/usr/lib/postgresql/15/bin
VAR=${WARDEN_VAR:-$ROOT/var}
GAME_PORTS=${WARDEN_GAME_PORTS:-30000-30099}
WEB_DIR="$ROOT/$BUILD/web"
mkdir -p "$VAR/nats" "$VAR/agent" "$VAR/log" "$VAR/api"
BIN="$ROOT/$BUILD"
NATS_URL="nats://127.0.0.1:$PORT"

in_use() { (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null; }
for p in "$PORT:WARDEN_NATS_PORT" "$PG_PORT:WARDEN_PG_PORT" "$API_PORT:WARDEN_API_PORT" \
         "$WS_PORT:WARDEN_WS_PORT"; do
  if in_use "${p%%:*}"; then
    echo "run: port ${p%%:*} is already in use (another 'make run'?). Stop it, or set ${p##*:}." >&2
    exit 1
  fi
done

# PostgreSQL refuses to run as root: as root, the cluster belongs to postgres.
# setpriv execs the command itself, so signals reach the postmaster.
AS_PG=()
[ "$(id -u)" -eq 0 ] && AS_PG=(setpriv --reuid=postgres --regid=postgres --init-groups --)

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo
  echo "run: stopping (games are stopped too)..."
  [ -n "${agent_pid:-}" ] && kill -TERM "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null || true
  [ -n "${ws_pid:-}" ] && kill -TERM "$ws_pid" 2>/dev/null && wait "$ws_pid" 2>/dev/null || true
  [ -n "${api_pid:-}" ] && kill -TERM "$api_pid" 2>/dev/null && wait "$api_pid" 2>/dev/null || true
  [ -n "${pg_pid:-}" ] && kill -INT "$pg_pid" 2>/dev/null && wait "$pg_pid" 2>/dev/null || true
  [ -n "${nats_pid:-}" ] && kill -INT "$nats_pid" 2>/dev/null && wait "$nats_pid" 2>/dev/null || true
  echo "run: stopped. Data stays in $VAR."
}
trap cleanup INT TERM EXIT

# NATS in operator (JWT) mode: every client needs credentials. The chain
# (operator, accounts, api.creds, ops.creds, the signing key warden-api mints
# node credentials with) is created once, in var/nats-auth.
AUTH="$VAR/nats-auth"
if [ ! -s "$AUTH/auth.conf" ]; then
  if [ -s "$VAR/agent/node-id" ]; then
    echo "run: var/ comes from a Warden without NATS credentials; remove it (rm -rf var)" \
         "and run again." >&2
    exit 1
  fi
  "$BIN/panel-api/warden-api" nats init --dir "$AUTH" >>"$VAR/log/api.log" 2>&1 ||
    { echo "run: warden-api nats init failed; see var/log/api.log" >&2; exit 1; }
fi
if [ ! -s "$AUTH/ws.creds" ]; then
  echo "run: var/nats-auth predates the WebSocket gateway; remove var (rm -rf var) and run again." >&2
  exit 1
fi
env_of() { sed -n "s/^$1=//p" "$AUTH/api.env"; }
# TLS between every component and NATS, as on a real install: a private CA
# and a certificate for 127.0.0.1 in var/nats-tls (made once). Every Warden
# program reads the CA from WARDEN_NATS_TLS_CA.
TLS="$VAR/nats-tls"
"$ROOT/deploy/tls/warden-nats-certs" "$TLS" localhost 127.0.0.1 >>"$VAR/log/nats.log" 2>&1 ||
  { echo "run: could not create the NATS TLS certificates; see var/log/nats.log" >&2; exit 1; }
export WARDEN_NATS_TLS_CA="$TLS/ca.pem"
{
  echo "listen: \"127.0.0.1:$PORT\""
  echo "jetstream: { store_dir: \"$VAR/nats\" }"
  echo "tls: { cert_file: \"$TLS/server.pem\", key_file: \"$TLS/server-key.pem\", timeout: 5 }"
  cat "$AUTH/auth.conf"
} >"$VAR/nats.conf"
echo "run: starting NATS (TLS, JetStream) on 127.0.0.1:$PORT ..."
nats-server -c "$VAR/nats.conf" >>"$VAR/log/nats.log" 2>&1 &
nats_pid=$!
for _ in $(seq 100); do
  (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break
  sleep 0.05
done

# PostgreSQL: a private cluster under var/pg, created on the first run.
if [ ! -s "$VAR/pg/data/PG_VERSION" ]; then
  echo "run: creating a PostgreSQL cluster in var/pg ..."
  mkdir -p "$VAR/pg/data" "$VAR/pg/run"
  [ "$(id -u)" -eq 0 ] && chown -R postgres:postgres "$VAR/pg"
  chmod 700 "$VAR/pg/data"
  "${AS_PG[@]}" "$PG_BIN/initdb" -D "$VAR/pg/data" -A trust -U postgres >>"$VAR/log/postgres.log" 2>&1
fi
[ "$(id -u)" -eq 0 ] && chown -R postgres:postgres "$VAR/pg"
echo "run: starting PostgreSQL on 127.0.0.1:$PG_PORT ..."
"${AS_PG[@]}" "$PG_BIN/postgres" -D "$VAR/pg/data" -p "$PG_PORT" -k "$VAR/pg/run" \
  -c listen_addresses=127.0.0.1 >>"$VAR/log/postgres.log" 2>&1 &
pg_pid=$!
for _ in $(seq 200); do
  "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres && break
  sleep 0.05
done
"$PG_BIN/psql" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -tc \
  "SELECT 1 FROM pg_database WHERE datname = 'warden'" | grep -q 1 ||
  "$PG_BIN/psql" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -c "CREATE DATABASE warden" >/dev/null
export WARDEN_DATABASE_URL="postgresql://postgres@127.0.0.1:$PG_PORT/warden"

# The API. First run: an admin with a one-time password.
ADMIN_MSG=""
if [ ! -e "$VAR/api/admin-created" ]; then
  out=$("$BIN/panel-api/warden-api" admin create --username admin --email admin@localhost \
        --data-dir "$VAR/api" --log-level warn 2>&1) || { echo "$out" >&2; exit 1; }
  touch "$VAR/api/admin-created"
  ADMIN_MSG="$out"
fi
# The shipped templates (games packaged in Debian, and the test game): new
# ones are added, ones that exist are kept as the operator left them.
"$BIN/panel-api/warden-api" template import "$ROOT"/templates/*.json --data-dir "$VAR/api" \
  --log-level warn >>"$VAR/log/api.log" 2>&1 ||
  echo "run: some templates could not be imported; see var/log/api.log" >&2
echo "run: starting warden-api on 127.0.0.1:$API_PORT ..."
"$BIN/panel-api/warden-api" --port "$API_PORT" --data-dir "$VAR/api" --nats-url "$NATS_URL" \
  --nats-creds "$(env_of WARDEN_NATS_CREDS)" --nats-account "$(env_of WARDEN_NATS_ACCOUNT)" \
  --nats-signing-key "$(env_of WARDEN_NATS_SIGNING_KEY)" \
  --ws-url "ws://127.0.0.1:$WS_PORT/ws" --web-dir "$WEB_DIR" >>"$VAR/log/api.log" 2>&1 &
api_pid=$!
for _ in $(seq 100); do
  in_use "$API_PORT" && break
  sleep 0.05
done

# The gateway: browsers' live console, stats and power buttons. It checks
# the API's gateway tokens with the public half of var/api/ws.key.
echo "run: starting warden-ws on 127.0.0.1:$WS_PORT ..."
env -u WARDEN_NATS_CREDS "$BIN/panel-ws/warden-ws" --listen "127.0.0.1:$WS_PORT" \
  --origins "http://127.0.0.1:$API_PORT,http://localhost:$API_PORT" \
  --nats-url "$NATS_URL" --nats-creds "$AUTH/ws.creds" --token-pubkey "$VAR/api/ws.pub" \
  >>"$VAR/log/ws.log" 2>&1 &
ws_pid=$!

# The local agent joins the panel as node "local" on the first run, with
# ports $GAME_PORTS on 127.0.0.1 for its game servers.
# (The token travels in the environment, not on the command line, where
# every user of the host could read it in ps.)
JOIN=""
if [ ! -s "$VAR/agent/node-id" ]; then
  out=$("$BIN/panel-api/warden-api" node create --name local --fqdn 127.0.0.1 \
        --ports "127.0.0.1:$GAME_PORTS" --data-dir "$VAR/api" --log-level warn \
        --nats-account "$(env_of WARDEN_NATS_ACCOUNT)" \
        --nats-signing-key "$(env_of WARDEN_NATS_SIGNING_KEY)" 2>&1) ||
    { echo "$out" >&2; exit 1; }
  JOIN=$(echo "$out" | sed -n 's/^join token: //p')
fi
echo "run: starting the agent (node \"local\") ..."
env -u WARDEN_NATS_CREDS WARDEN_JOIN_TOKEN="$JOIN" \
  "$BIN/agent/warden-agent" --nats-url "$NATS_URL" --data-dir "$VAR/agent" \
  --stop-servers-on-exit >>"$VAR/log/agent.log" 2>&1 &
agent_pid=$!
for _ in $(seq 100); do
  [ -s "$VAR/agent/node-id" ] && break
  sleep 0.05
done
NODE=$(cat "$VAR/agent/node-id" 2>/dev/null || echo "?")
sleep 0.5
if ! kill -0 "$agent_pid" 2>/dev/null; then
  echo "run: the agent did not start; see $VAR/log/agent.log:" >&2
  tail -n 20 "$VAR/log/agent.log" >&2
  exit 1
fi

cat <<MSG
Warden is running.
  panel    http://127.0.0.1:$API_PORT/   (the web panel: open it in a browser)
  API      http://127.0.0.1:$API_PORT/api/v1/   (log: var/log/api.log)
  gateway  ws://127.0.0.1:$WS_PORT/ws   (log: var/log/ws.log)
  NATS     $NATS_URL   (TLS, CA: var/nats-tls/ca.pem; log: var/log/nats.log)
  Postgres 127.0.0.1:$PG_PORT   (log: var/log/postgres.log)
  agent    node $NODE   (log: var/log/agent.log)
${ADMIN_MSG:+
First run: an admin account was created.
$ADMIN_MSG
}
Log in to the API:
  curl -s -X POST http://127.0.0.1:$API_PORT/api/v1/auth/login \\
       -H 'Content-Type: application/json' -d '{"username":"admin","password":"<password>"}'

Try, in another terminal (from $ROOT):
  export WARDEN_NATS_URL=$NATS_URL WARDEN_NATS_CREDS=var/nats-auth/ops.creds \\
         WARDEN_NATS_TLS_CA=var/nats-tls/ca.pem
  $BUILD/cli/wardenctl nodes
  ID=\$($BUILD/cli/wardenctl server create --node $NODE --template templates/freeciv.json --var BIND_ADDRESS=127.0.0.1)
  $BUILD/cli/wardenctl server install \$ID --wait
  $BUILD/cli/wardenctl server start \$ID --wait
  $BUILD/cli/wardenctl send \$ID "list"
  $BUILD/cli/wardenctl console \$ID        (Ctrl-C to leave; typed lines are sent)
  $BUILD/cli/wardenctl stats \$ID
  $BUILD/cli/wardenctl server stop \$ID --wait

Press Ctrl-C here to stop everything.
MSG
wait "$agent_pid"
