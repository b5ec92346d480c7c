#!/usr/bin/env bash
# check_install.sh BUILD_DIR VERSION
# Installs BUILD_DIR into a temporary prefix and checks the layout, verifies
# the systemd units (when systemd-analyze is there), builds the Debian
# packages with cpack into a temporary directory and checks their contents
# and dependencies with dpkg-deb. Temporary directories are removed.
set -euo pipefail
BUILD=$(cd "${1:?usage: check_install.sh BUILD_DIR VERSION}" && pwd)
VERSION=${2:?usage: check_install.sh BUILD_DIR VERSION}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/warden-install.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

fails=0
ok()   { echo "ok   $*"; }
fail() { echo "FAIL $*" >&2; fails=$((fails + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else fail "$what"; fi; }

BINS=(warden-api warden-ws warden-agent warden-shim wardenctl warden-nats-certs)
UNITS=(warden-api.service warden-ws.service warden-agent.service)
EXAMPLES=(warden-api.env.example warden-ws.env.example warden-agent.env.example)
HAVE_WEB=0
[ -f "$BUILD/web/index.html" ] && HAVE_WEB=1

# 1. cmake --install into a temporary prefix.
P="$TMP/prefix"
if ! cmake --install "$BUILD" --prefix "$P" >"$TMP/install.log" 2>&1; then
  cat "$TMP/install.log" >&2
  fail "cmake --install"
  exit 1
fi
ok "cmake --install --prefix $P"
for b in "${BINS[@]}"; do
  check "bin/$b is an executable file" test -f "$P/bin/$b" -a -x "$P/bin/$b"
done
if [ "$HAVE_WEB" = 1 ]; then
  check "share/warden/web/index.html" test -s "$P/share/warden/web/index.html"
else
  echo "skip share/warden/web: the build has no web panel ($BUILD/web)"
fi
n=$(find "$P/share/warden/templates" -name '*.json' 2>/dev/null | wc -l)
check "share/warden/templates has the templates ($n)" test "$n" -ge 1
check "templates/freeciv.json" test -s "$P/share/warden/templates/freeciv.json"
for e in "${EXAMPLES[@]}"; do
  check "share/doc/warden/examples/$e" test -s "$P/share/doc/warden/examples/$e"
done
check "share/doc/warden/install.md" test -s "$P/share/doc/warden/install.md"
check "lib/sysusers.d/warden.conf" grep -q '^u warden ' "$P/lib/sysusers.d/warden.conf"
for u in "${UNITS[@]}"; do
  f="$P/lib/systemd/system/$u"
  check "lib/systemd/system/$u" test -s "$f"
  check "$u: no unconfigured @VARIABLES@" bash -c "! grep -q '@[A-Z_]*@' '$f'"
  exe=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$f")
  check "$u: ExecStart=$exe is the installed binary" test "${exe%/*}" = "$P/bin" -a -x "$exe"
done
check "warden-agent.service keeps KillMode=process" \
  grep -qx 'KillMode=process' "$P/lib/systemd/system/warden-agent.service"
for u in warden-api.service warden-ws.service; do
  for k in User=warden NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes \
           CapabilityBoundingSet=; do
    check "$u: $k" grep -qx "$k" "$P/lib/systemd/system/$u"
  done
done
check "warden-api.service: StateDirectory=warden-api" \
  grep -qx 'StateDirectory=warden-api' "$P/lib/systemd/system/warden-api.service"
check "warden-api.service serves the installed web panel" \
  grep -qx "Environment=WARDEN_WEB_DIR=$P/share/warden/web" "$P/lib/systemd/system/warden-api.service"

# 2. systemd-analyze verify (parses the units; ExecStart= must be executable).
if command -v systemd-analyze >/dev/null 2>&1; then
  units=()
  for u in "${UNITS[@]}"; do units+=("$P/lib/systemd/system/$u"); done
  if out=$(systemd-analyze verify --man=no "${units[@]}" 2>&1) &&
     ! grep -q 'warden-' <<<"$out"; then
    ok "systemd-analyze verify"
  else
    echo "$out" >&2
    fail "systemd-analyze verify"
  fi
else
  echo "skip systemd-analyze verify: systemd-analyze is not installed"
fi

# 3. cpack -G DEB into a temporary directory.
if ! command -v cpack >/dev/null 2>&1 || ! command -v dpkg-deb >/dev/null 2>&1; then
  echo "skip packages: cpack or dpkg-deb is missing"
else
  D="$TMP/packages"
  if (cd "$BUILD" && cpack -G DEB -B "$D" --config "$BUILD/CPackConfig.cmake") \
       >"$TMP/cpack.log" 2>&1; then
    ok "cpack -G DEB"
  else
    cat "$TMP/cpack.log" >&2
    fail "cpack -G DEB"
  fi
  # deb_has PACKAGE PATH...: the package exists and contains each path.
  deb_has() {
    local pkg=$1 deb; shift
    deb=$(ls "$D"/"$pkg"_"$VERSION"_*.deb 2>/dev/null | head -n 1) || true
    if [ -z "$deb" ]; then fail "$pkg: no ${pkg}_${VERSION}_*.deb in $(ls "$D")"; return; fi
    dpkg-deb -c "$deb" | awk '{print $NF}' | sed 's|^\./|/|' >"$TMP/$pkg.list"
    for f in "$@"; do
      check "$pkg contains $f" grep -qx -- "$f" "$TMP/$pkg.list"
    done
  }
  # deb_field PACKAGE FIELD REGEX
  deb_field() {
    local deb
    deb=$(ls "$D"/"$1"_"$VERSION"_*.deb 2>/dev/null | head -n 1) || true
    [ -n "$deb" ] || return 1
    local v  # not a pipe into grep -q: under pipefail its early exit fails dpkg-deb (SIGPIPE)
    v=$(dpkg-deb -f "$deb" "$2") || return 1
    grep -Eq -- "$3" <<<"$v"
  }
  deb_not_has() {  # deb_not_has PACKAGE PATH: the package does not contain PATH
    ! grep -qx -- "$2" "$TMP/$1.list" 2>/dev/null
  }
  web=()
  [ "$HAVE_WEB" = 1 ] && web=(/usr/share/warden/web/index.html)
  deb_has warden-panel /usr/bin/warden-api /usr/bin/warden-ws /usr/bin/warden-nats-certs \
    /usr/lib/systemd/system/warden-api.service /usr/lib/systemd/system/warden-ws.service \
    /usr/lib/sysusers.d/warden.conf /usr/share/warden/templates/freeciv.json \
    /usr/share/doc/warden/examples/warden-api.env.example \
    /usr/share/doc/warden/examples/warden-ws.env.example "${web[@]}"
  deb_has warden-agent /usr/bin/warden-agent /usr/bin/warden-shim \
    /usr/lib/systemd/system/warden-agent.service \
    /usr/share/doc/warden/examples/warden-agent.env.example
  deb_has warden-cli /usr/bin/wardenctl /usr/share/doc/warden/install.md \
    /usr/share/bash-completion/completions/wardenctl
  # One owner per file: panel and agent must install side by side.
  for f in /usr/bin/wardenctl /usr/bin/warden-agent; do
    check "warden-panel does not ship $f" deb_not_has warden-panel "$f"
  done
  for f in /usr/bin/wardenctl /usr/bin/warden-api; do
    check "warden-agent does not ship $f" deb_not_has warden-agent "$f"
  done
  dup=$(cat "$TMP"/warden-*.list 2>/dev/null | grep -v "/$" | sort | uniq -d) || true
  check "no file is in two packages${dup:+: $dup}" test -z "$dup"

  check "warden-panel Depends on warden-cli" deb_field warden-panel Depends "warden-cli \(= $VERSION\)"
  check "warden-panel Depends: shared libraries (shlibdeps)" \
    deb_field warden-panel Depends 'libmicrohttpd[0-9]+.*libnats'
  check "warden-panel Depends on libwebsockets (warden-ws)" \
    deb_field warden-panel Depends 'libwebsockets[0-9]+'
  check "warden-agent Depends on warden-cli, bubblewrap" \
    deb_field warden-agent Depends "warden-cli \(= $VERSION\).*bubblewrap"
  check "warden-agent Depends: libnats (shlibdeps)" deb_field warden-agent Depends 'libnats'
  check "warden-cli Depends: libcurl (shlibdeps)" deb_field warden-cli Depends 'libcurl'
  for p in warden-panel warden-agent warden-cli; do
    check "$p has a Maintainer" deb_field "$p" Maintainer '.+'
    check "$p has a Description" deb_field "$p" Description '.+'
  done
  panel=$(ls "$D"/warden-panel_"$VERSION"_*.deb 2>/dev/null | head -n 1) || true
  if [ -n "$panel" ]; then
    check "warden-panel has a postinst (creates the warden user)" \
      bash -c "dpkg-deb -I '$panel' postinst | grep -q systemd-sysusers"
  fi
fi

if [ "$fails" -gt 0 ]; then
  echo "check_install: $fails check(s) failed" >&2
  exit 1
fi
echo "check_install: all checks passed"
