#!/usr/bin/env bash
# End-to-end test of the web panel in a real browser: the whole stack as
# `make run` starts it (deploy/local/run.sh: PostgreSQL, NATS in operator
# mode, warden-api serving the panel, warden-ws, one agent), but on free
# loopback ports in a temporary directory; then Debian's Chromium, driven by
# playwright-core (tests/web/e2e.mjs), signs in and plays a game server.
# Everything it starts is stopped when it ends, pass or fail.
#
#   tests/web/e2e.sh BUILD_DIR ARTIFACT_DIR
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
BUILD_DIR=${1:?build directory}
ARTIFACTS=${2:?artifact directory}
BUILD=$(realpath --relative-to="$ROOT" "$BUILD_DIR")

[ -e "$BUILD_DIR/web/index.html" ] || { echo "e2e: no web build in $BUILD_DIR/web" >&2; exit 1; }
command -v chromium >/dev/null || { echo "e2e: chromium is missing (scripts/bootstrap installs it)" >&2; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/warden-e2e-XXXXXX")
chmod 755 "$TMP" # PostgreSQL runs as postgres and must reach its directory
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
export WARDEN_NATS_PORT=$(free_port) WARDEN_PG_PORT=$(free_port)
export WARDEN_API_PORT=$(free_port) WARDEN_WS_PORT=$(free_port)
base=$((40000 + RANDOM % 20000))
export WARDEN_GAME_PORTS="$base-$((base + 9))" WARDEN_VAR="$TMP/var"
unset WARDEN_NATS_CREDS WARDEN_JOIN_TOKEN

run_pid=
stop_stack() {
  if [ -n "$run_pid" ] && kill -0 "$run_pid" 2>/dev/null; then
    kill -TERM "$run_pid" 2>/dev/null || true
    for _ in $(seq 150); do kill -0 "$run_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$run_pid" 2>/dev/null || true
  fi
}
cleanup() {
  status=$?
  stop_stack
  if [ "$status" -ne 0 ]; then
    echo "e2e: failed; the stack's logs:" >&2
    for f in "$TMP"/var/log/*.log "$TMP/run.out"; do
      [ -e "$f" ] && { echo "--- $f" >&2; tail -n 25 "$f" >&2; }
    done
  fi
  rm -rf "$TMP"
  exit "$status"
}
trap cleanup EXIT INT TERM

BUILD="$BUILD" setsid deploy/local/run.sh >"$TMP/run.out" 2>&1 &
run_pid=$!
for _ in $(seq 600); do
  grep -q "Warden is running" "$TMP/run.out" && break
  kill -0 "$run_pid" 2>/dev/null || { echo "e2e: the stack did not start" >&2; exit 1; }
  sleep 0.2
done
grep -q "Warden is running" "$TMP/run.out" || { echo "e2e: the stack took too long" >&2; exit 1; }
PASSWORD=$(sed -n 's/^one-time password: //p' "$TMP/run.out")

mkdir -p "$ARTIFACTS"
WARDEN_NODE_MODULES="$ROOT/tools/openapi/node_modules" \
  node tests/web/e2e.mjs "http://127.0.0.1:$WARDEN_API_PORT" "$PASSWORD" "$ARTIFACTS" \
  "$ROOT/templates/testgame.json"

# Every component stops cleanly, and (sanitizer builds) reports nothing.
stop_stack
if grep -lE "ERROR: (Address|Leak)Sanitizer|runtime error:" "$TMP"/var/log/*.log; then
  echo "e2e: sanitizer reports in the logs above" >&2
  exit 1
fi
