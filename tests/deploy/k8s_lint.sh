#!/bin/sh
# Checks deploy/k8s/ without a cluster and without the network:
#   1. yamllint (relaxed rules) over every YAML file of deploy/k8s;
#   2. `kubectl kustomize` renders base, overlays/small and overlays/production,
#      and overlays/site.example in a scratch copy of deploy/k8s with throwaway
#      secrets made the way docs/deploy-k8s.md says (openssl; and
#      `warden-api nats init` when WARDEN_API is given and runs);
#   3. tests/deploy/check_k8s.py on each render (selectors, resources, probes,
#      references, NATS cluster, security context, ...; its header lists
#      them), no placeholder left in the site render, and the Prometheus
#      scrape jobs against deploy/observability/prometheus.yml;
#   4. when nats-server is installed: the NATS pod's init script and
#      nats.conf, taken from the site render, pass `nats-server -t`.
# kubectl with kustomize older than v5 (kubectl < 1.27; Debian 12's
# kubernetes-client 1.20 has v2)
# cannot render these overlays (components, `labels`): then step 2 and 4 are
# replaced by check_k8s.py --raw over the raw files, with a note.
#
# usage: k8s_lint.sh SOURCE_DIR [WARDEN_API_BINARY]
set -eu
SRC=${1:?usage: k8s_lint.sh SOURCE_DIR [WARDEN_API_BINARY]}
WARDEN_API=${2:-}
K8S="$SRC/deploy/k8s"
CHECK="$SRC/tests/deploy/check_k8s.py"
PY=${PYTHON3:-python3}
fail=0
TMP=$(mktemp -d "${TMPDIR:-/tmp}/k8s_lint.XXXXXX")
trap 'rm -rf "$TMP"' EXIT INT TERM

say() { echo "k8s_lint: $*"; }
bad() { echo "k8s_lint: FAIL: $*" >&2; fail=1; }

# ---- 1. yamllint -----------------------------------------------------------
if command -v yamllint >/dev/null 2>&1; then
  say "yamllint $K8S"
  yamllint -f parsable -d '{extends: relaxed, rules: {line-length: {max: 120}, trailing-spaces: enable, key-duplicates: enable, indentation: {spaces: consistent, indent-sequences: consistent}}}' \
    "$K8S" || bad "yamllint found errors in deploy/k8s"
else
  bad "yamllint is not installed (apt-get install yamllint)"
fi

# ---- 2. which kustomize ----------------------------------------------------
render=0
if command -v kubectl >/dev/null 2>&1; then
  kver=$(kubectl version --client 2>/dev/null | sed -n 's/^Kustomize Version: v\{0,1\}\([0-9][0-9]*\).*/\1/p')
  if [ -n "$kver" ] && [ "$kver" -ge 5 ]; then
    render=1
    say "kubectl $(kubectl version --client 2>/dev/null | tr '\n' ' ')"
  else
    say "NOTE: kubectl's kustomize is ${kver:+v}${kver:-unknown (older than v5?)}; these overlays need v5 or newer" \
        "(components, labels). Checking the raw files only, not the rendered output."
  fi
else
  say "NOTE: kubectl is not installed; checking the raw files only, not the rendered output."
fi

if [ "$render" -eq 0 ]; then
  "$PY" "$CHECK" --raw "$SRC" || bad "check_k8s.py --raw"
  "$PY" "$CHECK" --scrape "$SRC" || bad "check_k8s.py --scrape"
  [ "$fail" -eq 0 ] && say "ok (raw files only)"
  exit "$fail"
fi

for o in base overlays/small overlays/production; do
  name=$(basename "$o")
  out="$TMP/$name.yaml"
  if kubectl kustomize "$K8S/$o" > "$out" 2> "$TMP/$name.err"; then
    "$PY" "$CHECK" --overlay "$name" "$out" || bad "check_k8s.py on $o"
  else
    cat "$TMP/$name.err" >&2
    bad "kubectl kustomize $o does not render"
  fi
done

# ---- the site overlay, as docs/deploy-k8s.md builds it -----------------------
say "site overlay from overlays/site.example with throwaway secrets"
mkdir -p "$TMP/tree"
cp -R "$K8S" "$TMP/tree/k8s"
rm -rf "$TMP/tree/k8s/overlays/site"
cp -R "$TMP/tree/k8s/overlays/site.example" "$TMP/tree/k8s/overlays/site"
S="$TMP/tree/k8s/overlays/site/secrets"
mkdir -p "$S/nats-tls" "$S/api-keys"
real_chain=0
if [ -n "$WARDEN_API" ] && [ -x "$WARDEN_API" ] &&
   "$WARDEN_API" nats init --dir "$S/nats" > "$TMP/nats-init.log" 2>&1; then
  real_chain=1
  say "NATS trust chain from $WARDEN_API nats init"
else
  [ -n "$WARDEN_API" ] && say "NOTE: $WARDEN_API nats init did not run; stand-in NATS files"
  mkdir -p "$S/nats"
  printf 'operator: "/somewhere/else/operator.jwt"\n' > "$S/nats/auth.conf"
  for f in operator.jwt api.creds ws.creds signing.seed; do echo "test-$f" > "$S/nats/$f"; done
  printf 'WARDEN_NATS_CREDS=/x/api.creds\nWARDEN_NATS_ACCOUNT=ATEST\nWARDEN_NATS_SIGNING_KEY=/x/signing.seed\n' > "$S/nats/api.env"
fi
certs=0
if command -v openssl >/dev/null 2>&1; then
  # The commands of docs/deploy-k8s.md ("NATS TLS"), with a short-lived CA.
  (
    cd "$S/nats-tls"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
      -subj "/CN=warden-nats-ca" -keyout ca.key -out ca.crt
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -subj "/CN=nats.warden.svc" -keyout tls.key -out tls.csr
    printf '%s\n' \
      "subjectAltName=DNS:nats,DNS:nats.warden,DNS:nats.warden.svc,DNS:nats.warden.svc.cluster.local,DNS:*.nats-headless.warden.svc,DNS:*.nats-headless.warden.svc.cluster.local" \
      "extendedKeyUsage=serverAuth" > san.ext
    openssl x509 -req -in tls.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
      -extfile san.ext -out tls.crt
    openssl verify -CAfile ca.crt tls.crt
    rm -f ca.key tls.csr san.ext ca.srl
  ) > "$TMP/openssl.log" 2>&1 && certs=1 || { cat "$TMP/openssl.log" >&2; bad "the openssl commands for the NATS certificate failed"; }
  (
    cd "$S/api-keys"
    printf 'k1:%s\n' "$(openssl rand -base64 48 | tr -d '\n' | tr '+/' '-_')" > jwt.key
    printf 's1:%s\n' "$(openssl rand -base64 32)" > secrets.key
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ws.key
    openssl pkey -in ws.key -pubout -out ws.pub
  ) > "$TMP/openssl-keys.log" 2>&1 || { cat "$TMP/openssl-keys.log" >&2; bad "the openssl commands for the API keys failed"; }
else
  say "NOTE: openssl is missing; stand-in certificate and key files"
  for f in tls.crt tls.key ca.crt; do echo "test-$f" > "$S/nats-tls/$f"; done
  for f in jwt.key secrets.key ws.key ws.pub; do echo "test-$f" > "$S/api-keys/$f"; done
fi
printf 'POSTGRES_PASSWORD=test-%s\n' "$$" > "$S/postgres.env"
printf 'game-node-1=TEST.SEED.JWT\n' > "$S/agent-join.env"
if kubectl kustomize "$TMP/tree/k8s/overlays/site" > "$TMP/site.yaml" 2> "$TMP/site.err"; then
  "$PY" "$CHECK" --overlay site --no-placeholders "$TMP/site.yaml" || bad "check_k8s.py on the site overlay"
else
  cat "$TMP/site.err" >&2
  bad "kubectl kustomize overlays/site (from site.example) does not render"
fi

# The same site with cert-manager issuing nats-server's certificate.
CM="$TMP/tree/k8s/overlays/site-cert-manager"
mkdir -p "$CM"
printf '%s\n' 'apiVersion: kustomize.config.k8s.io/v1beta1' 'kind: Kustomization' \
  'namespace: warden' 'resources: [../site]' 'components: [../../components/nats-tls-cert-manager]' > "$CM/kustomization.yaml"
if kubectl kustomize "$CM" > "$TMP/site-cm.yaml" 2> "$TMP/site-cm.err"; then
  "$PY" "$CHECK" --overlay site --no-placeholders "$TMP/site-cm.yaml" ||
    bad "check_k8s.py on the site overlay with components/nats-tls-cert-manager"
  grep -q '^kind: Certificate' "$TMP/site-cm.yaml" || bad "components/nats-tls-cert-manager renders no Certificate"
else
  cat "$TMP/site-cm.err" >&2
  bad "the site overlay with components/nats-tls-cert-manager does not render"
fi

# ---- 4. nats-server accepts the pod's configuration --------------------------
if [ -s "$TMP/site.yaml" ] && command -v nats-server >/dev/null 2>&1 && [ "$certs" -eq 1 ]; then
  N="$TMP/natspod"
  if "$PY" "$CHECK" --nats-conf "$TMP/site.yaml" "$N"; then
    auth=$(sed -n 's#^/etc/nats-auth ##p' "$N/mounts")
    tls=$(sed -n 's#^/etc/nats-tls ##p' "$N/mounts")
    cp "$S/nats-tls/tls.crt" "$S/nats-tls/tls.key" "$S/nats-tls/ca.crt" "$tls/"
    if [ "$real_chain" -eq 1 ]; then
      cp "$S/nats/auth.conf" "$S/nats/operator.jwt" "$auth/"
    else
      # No operator JWT without warden-api: check the rest of the file.
      printf '# stand-in: no warden-api to run nats init\n' > "$auth/auth.conf"
    fi
    if sh "$N/init.sh" > "$TMP/init.log" 2>&1; then
      if [ "$real_chain" -eq 1 ] && ! grep -q "^operator: \"$auth/operator.jwt\"" "$N/config/auth.conf"; then
        bad "the init container did not point auth.conf's operator at the mounted operator.jwt"
      fi
      # shellcheck disable=SC2046
      if POD_NAME=nats-0 nats-server $(cat "$N/args") -t > "$TMP/nats-t.log" 2>&1; then
        say "nats-server -t accepts the NATS pod's configuration$( [ "$real_chain" -eq 1 ] && echo ' (operator mode)')"
      else
        cat "$TMP/nats-t.log" >&2
        bad "nats-server -t refuses the NATS pod's configuration"
      fi
    else
      cat "$TMP/init.log" >&2
      bad "the NATS init container's script fails"
    fi
  else
    bad "check_k8s.py --nats-conf"
  fi
else
  say "NOTE: nats-server or openssl missing: the NATS configuration is not run through nats-server -t"
fi

"$PY" "$CHECK" --scrape "$SRC" || bad "check_k8s.py --scrape"

[ "$fail" -eq 0 ] && say "ok"
exit "$fail"
