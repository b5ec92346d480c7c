#!/usr/bin/env bash
# The local stack behind `make run`: a private nats-server (JetStream, data
# in ./var/nats) on 127.0.0.1 and one warden-agent (data in ./var/agent),
# in the foreground. Ctrl-C stops the agent (and, here, its games) and NATS.
#
#   WARDEN_NATS_PORT   NATS client port (default 4222)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
BUILD=${BUILD:-build}
PORT=${WARDEN_NATS_PORT:-4222}
VAR="$ROOT/var"
mkdir -p "$VAR/nats" "$VAR/agent" "$VAR/log"
BIN="$ROOT/$BUILD"
NATS_URL="nats://127.0.0.1:$PORT"

if (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null; then
  echo "run: port $PORT is already in use (another 'make run'?). Stop it, or set WARDEN_NATS_PORT." >&2
  exit 1
fi

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo
  echo "run: stopping (games are stopped too)..."
  [ -n "${agent_pid:-}" ] && kill -TERM "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null || true
  [ -n "${nats_pid:-}" ] && kill -INT "$nats_pid" 2>/dev/null && wait "$nats_pid" 2>/dev/null || true
  echo "run: stopped. Data stays in $VAR."
}
trap cleanup INT TERM EXIT

nats-server -a 127.0.0.1 -p "$PORT" -js -sd "$VAR/nats" >>"$VAR/log/nats.log" 2>&1 &
nats_pid=$!
for _ in $(seq 100); do
  (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break
  sleep 0.05
done

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
  NATS     $NATS_URL   (log: var/log/nats.log)
  agent    node $NODE   (log: var/log/agent.log)

Try, in another terminal (from $ROOT):
  export WARDEN_NATS_URL=$NATS_URL
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
