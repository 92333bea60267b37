#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Offline checks of deploy/docker/Dockerfile and deploy/docker-compose.yml (no Docker engine here):
# the compose file against the Compose schema (docker-compose v1 `config`), its bind-mount sources,
# the Dockerfile's COPY sources and apt packages, and (given a built agent) that the runtime stage
# installs the package of every library the binary links directly.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
AURUM_BIN=${1:-$ROOT/build/aurum}
DF=$ROOT/deploy/docker/Dockerfile
fail=0
bad() { echo "FAIL $*" >&2; fail=1; }

docker-compose -f "$ROOT/deploy/docker-compose.yml" config -q && echo "ok   docker-compose.yml matches the Compose schema"

# Bind mounts relative to deploy/ must exist in the repository.
while read -r src; do
  [[ -e $ROOT/deploy/$src ]] && echo "ok   compose mount $src" || bad "docker-compose.yml mounts $src, which does not exist"
done < <(grep -oE '^\s+- \.{1,2}/[^:]+' "$ROOT/deploy/docker-compose.yml" | sed -E 's/^\s+- //')

# COPY sources (not from another stage) exist relative to the build context (the repository root).
while read -r src; do
  [[ -e $ROOT/$src ]] && echo "ok   Dockerfile COPY $src" || bad "Dockerfile copies $src, which does not exist"
done < <(grep -E '^COPY ' "$DF" | grep -v -- '--from' | awk '{for (i = 2; i < NF; i++) print $i}')

# apt packages of each stage, as written in its `apt-get install` command.
stage_packages() { # stage index (0 build, 1 runtime)
  awk -v want="$1" '/^FROM /{n++} n-1==want' "$DF" | tr -d '\\' | tr '\n' ' ' \
    | grep -oE 'apt-get install [^&]*' | tr ' ' '\n' | grep -vE '^(apt-get|install|-.*|)$' | sort -u
}
build_pkgs=$(stage_packages 0); runtime_pkgs=$(stage_packages 1)
[[ -n $build_pkgs && -n $runtime_pkgs ]] || bad "could not read the apt packages of the Dockerfile's stages"
# One apt-cache call (each costs a second or more): a package it knows prints "<name>:" and a Candidate.
policy=$(apt-cache policy $build_pkgs $runtime_pkgs 2>/dev/null | awk '/^[^ ].*:$/ {p=substr($0, 1, length($0)-1)} /Candidate:/ && $2 != "(none)" {print p}')
for p in $build_pkgs $runtime_pkgs; do
  grep -qx "$p" <<<"$policy" || bad "Dockerfile installs $p, which Debian's index does not have"
done
[[ $fail == 0 ]] && echo "ok   $(echo $build_pkgs $runtime_pkgs | wc -w) Dockerfile packages exist in Debian's index"

# Libraries of the agent that the slim image must provide.
if [[ -x $AURUM_BIN ]]; then
  base="libc6 libstdc++6 libgcc-s1"   # in debian:12-slim already
  while read -r lib; do
    path=$(ldd "$AURUM_BIN" | awk -v l="$lib" '$1 == l {print $3}')
    [[ -n $path ]] || { bad "ldd cannot resolve $lib"; continue; }
    pkg=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null | head -1 | cut -d: -f1) || true
    [[ -n $pkg ]] || pkg=$(dpkg -S "$path" 2>/dev/null | head -1 | cut -d: -f1) || true
    if [[ " $base $(echo $runtime_pkgs) " == *" $pkg "* ]]; then echo "ok   $lib from $pkg"
    else bad "$AURUM_BIN needs $lib (package ${pkg:-unknown}), not installed by the Dockerfile's runtime stage"; fi
  done < <(readelf -d "$AURUM_BIN" | awk '/NEEDED/ {gsub(/[][]/, "", $5); print $5}')
else
  echo "note: no agent binary at $AURUM_BIN; runtime libraries not checked"
fi
exit $fail
