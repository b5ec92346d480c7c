#!/bin/sh
# Validates deploy/compose.yaml with the Compose client alone (no engine is
# contacted by `config`): Debian 12's docker-compose (v1.29) when present,
# else the Docker CLI's compose plugin. Also checks that every build target
# the compose file names is a stage of deploy/docker/Dockerfile and that the
# files it mounts exist.
set -eu
SRC=${1:?usage: compose_config.sh SOURCE_DIR}
FILE="$SRC/deploy/compose.yaml"
DOCKERFILE="$SRC/deploy/docker/Dockerfile"

if command -v docker-compose >/dev/null 2>&1; then
  compose() { docker-compose "$@"; }
elif command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then
  compose() { docker compose "$@"; }
else
  echo "compose_config: neither docker-compose nor 'docker compose' is installed" \
       "(scripts/bootstrap installs Debian's docker-compose)" >&2
  exit 1
fi

# Settings that would change the result come from the file's defaults only.
unset WARDEN_HTTP_PORT WARDEN_PG_PASSWORD WARDEN_WS_URL WARDEN_WS_ORIGINS \
      WARDEN_ADMIN_USERNAME WARDEN_ADMIN_EMAIL WARDEN_ADMIN_PASSWORD \
      WARDEN_JOIN_TOKEN WARDEN_GAME_PORTS WARDEN_NODE_NAME WARDEN_LOG_LEVEL \
      COMPOSE_FILE COMPOSE_PROFILES 2>/dev/null || true

fail=0
echo "compose_config: $FILE (default services)"
compose -f "$FILE" config -q || fail=1
echo "compose_config: $FILE (--profile observability)"
compose -f "$FILE" --profile observability config -q || fail=1

services=$(compose -f "$FILE" --profile observability config --services) || fail=1
for s in init nats postgres api ws agent nginx prometheus grafana nats-exporter; do
  echo "$services" | grep -qx "$s" || { echo "compose_config: service $s is missing" >&2; fail=1; }
done

for t in $(sed -n 's/^[[:space:]]*target:[[:space:]]*\([A-Za-z0-9_-]*\).*/\1/p' "$FILE" | sort -u); do
  grep -Eqi "^FROM[[:space:]].*[[:space:]]AS[[:space:]]+$t[[:space:]]*\$" "$DOCKERFILE" ||
    { echo "compose_config: build target $t is not a stage of $DOCKERFILE" >&2; fail=1; }
done

for f in $(sed -n 's#^[[:space:]]*-[[:space:]]*\(\./[^:]*\):.*#\1#p' "$FILE" | sort -u); do
  [ -e "$SRC/deploy/$f" ] || { echo "compose_config: mounted file deploy/$f is missing" >&2; fail=1; }
done

# Files the Dockerfile copies from the context, and shell syntax of scripts.
for f in $(sed -n 's#^COPY[[:space:]]\{1,\}\(deploy/[^[:space:]]*\).*#\1#p' "$DOCKERFILE") \
         deploy/docker/nginx.conf deploy/docker/nats.conf; do
  [ -s "$SRC/$f" ] || { echo "compose_config: $f is missing" >&2; fail=1; }
  case "$f" in *.sh) sh -n "$SRC/$f" || fail=1 ;; esac
done

[ "$fail" -eq 0 ] && echo "compose_config: ok"
exit "$fail"
