#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs what the operate checks need, when missing (ctest fixture operate.setup):
#   promtool (prometheus), amtool (prometheus-alertmanager), node + npm, docker-compose (v1, only to
#   validate the compose file: no Docker engine is used), systemd-analyze, readelf, setpriv, capsh,
#   and for the end-to-end test ip, ss, nft, curl;
#   and the npm packages of tests/operate/package-lock.json into tests/operate/node_modules.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
log() { printf '[operate setup] %s\n' "$*" >&2; }

declare -A NEED=([promtool]=prometheus [amtool]=prometheus-alertmanager [node]=nodejs [npm]=npm
                 [docker-compose]=docker-compose [systemd-analyze]=systemd [readelf]=binutils
                 [setpriv]=util-linux [capsh]=libcap2-bin [curl]=curl [ip]=iproute2 [nft]=nftables [ss]=iproute2)
missing=()
for tool in "${!NEED[@]}"; do command -v "$tool" >/dev/null || missing+=("${NEED[$tool]}"); done
if ((${#missing[@]})); then
  [[ $(id -u) -eq 0 ]] || { log "missing ${missing[*]}: run as root or apt-get install them"; exit 1; }
  log "installing ${missing[*]}"
  # Debian starts a package's service on install where it can (prometheus, alertmanager): forbid it
  # for the duration so that nothing listens on 9090/9093 behind the tests' back; an existing
  # policy is left alone.
  policy=/usr/sbin/policy-rc.d created=0
  if [[ ! -e $policy ]]; then printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod +x "$policy"; created=1; fi
  trap '[[ $created == 1 ]] && rm -f "$policy"' EXIT
  apt_log=$(mktemp /tmp/aurum-operate-apt.XXXXXX)
  if ! apt-cache show "${missing[0]}" >/dev/null 2>&1; then
    apt-get update -q -o DPkg::Lock::Timeout=300 >>"$apt_log" 2>&1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    -o DPkg::Lock::Timeout=300 "${missing[@]}" >>"$apt_log" 2>&1 \
    || { tail -20 "$apt_log" >&2; log "apt-get install failed (log: $apt_log)"; exit 1; }
fi

# operate.docker looks the Dockerfile's packages up in the apt index: make sure there is one.
if ! apt-cache policy libbpf1 2>/dev/null | grep -q 'Candidate: [0-9]'; then
  [[ $(id -u) -eq 0 ]] || { log "no apt index: run apt-get update as root"; exit 1; }
  log "apt-get update (no package index yet)"
  apt-get update -q -o DPkg::Lock::Timeout=300 >/dev/null
fi

stamp=$HERE/node_modules/.installed
if [[ ! -f $stamp || $HERE/package-lock.json -nt $stamp ]]; then
  log "npm ci in tests/operate"
  (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error >&2)
  touch "$stamp"
fi
log "ready: $(promtool --version 2>&1 | head -1); $(amtool --version 2>&1 | head -1); node $(node --version)"
