#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The least-privilege claim, tested (root; ctest label `privileged`): the DaemonSet, the Helm
# values, the compose file and the systemd unit grant the same capabilities, and the agent loads
# and attaches every program (`aurum --check`) holding only those; without CAP_BPF it must not.
# Capabilities this sandbox itself lacks (CAP_SYS_RESOURCE in some containers) are left out of the
# run and reported: a subset that works means the full set works.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
AURUM_BIN=${1:-$ROOT/build/aurum}
log() { printf '%s\n' "$*" >&2; }
if [[ $(id -u) -ne 0 ]]; then
  [[ ${CI:-} == true ]] && { log "FAIL: needs root under CI"; exit 1; }
  log "skip: needs root"; exit 77
fi
[[ -x $AURUM_BIN ]] || { log "FAIL: no agent binary at $AURUM_BIN"; exit 1; }

norm() { tr ' ,[]"' '\n' | sed -n 's/^\(CAP_\)\{0,1\}\([A-Z_]\{3,\}\)$/\2/p' | sort -u | paste -sd' '; }
unit=$(grep '^CapabilityBoundingSet=' "$ROOT/deploy/systemd/aurum.service" | cut -d= -f2 | norm)
ambient=$(grep '^AmbientCapabilities=' "$ROOT/deploy/systemd/aurum.service" | cut -d= -f2 | norm)
ds=$(grep -A1 'drop: \["ALL"\]' "$ROOT/deploy/kubernetes/daemonset.yaml" | grep 'add:' | norm)
values=$(grep -A1 'drop: \["ALL"\]' "$ROOT/deploy/helm/aurum/values.yaml" | grep 'add:' | norm)
compose=$(grep 'cap_add:' "$ROOT/deploy/docker-compose.yml" | cut -d: -f2 | norm)
fail=0
for what in "ambient:$ambient" "daemonset:$ds" "helm values:$values" "compose:$compose"; do
  if [[ ${what#*:} == "$unit" ]]; then log "ok   ${what%%:*} grants the unit's set: $unit"
  else log "FAIL ${what%%:*} grants '${what#*:}', the systemd unit '$unit'"; fail=1; fi
done

bnd=$(capsh --decode="$(awk '/^CapBnd/ {print $2}' /proc/self/status)" 2>/dev/null | cut -d= -f2 | tr 'a-z' 'A-Z' | tr ',' '\n')
run=() skipped=()
for c in $unit; do
  if grep -qx "CAP_$c" <<<"$bnd"; then run+=("+${c,,}"); else skipped+=("$c"); fi
done
((${#skipped[@]})) && log "note: this sandbox cannot grant ${skipped[*]}; running without it"
set_=$(IFS=,; echo "${run[*]}")
full=$(timeout 120 "$AURUM_BIN" --check 2>/dev/null | grep '^hook=' || true)
if out=$(timeout 120 setpriv --bounding-set="-all,$set_" --no-new-privs "$AURUM_BIN" --check 2>&1); then
  log "ok   aurum --check attaches with only: ${set_//+/}"
  # Optional hooks may fail quietly: the same hooks, same variants, as with every capability.
  if [[ $(grep '^hook=' <<<"$out") == "$full" && -n $full ]]; then
    log "ok   the same $(wc -l <<<"$full") hooks and variants as with all capabilities"
  else
    log "FAIL hooks differ from a run with all capabilities:"; diff <(echo "$full") <(grep '^hook=' <<<"$out") >&2 || true; fail=1
  fi
else
  log "FAIL aurum --check with only ${set_//+/}:"; log "$out"; fail=1
fi
without_bpf=$(IFS=,; echo "${run[*]}" | sed 's/+bpf,\{0,1\}//; s/,$//')
if timeout 120 setpriv --bounding-set="-all,$without_bpf" --no-new-privs "$AURUM_BIN" --check >/dev/null 2>&1; then
  log "FAIL aurum --check succeeded without CAP_BPF: the check cannot tell a missing capability"; fail=1
else
  log "ok   without CAP_BPF aurum --check fails, as it should"
fi
exit $fail
