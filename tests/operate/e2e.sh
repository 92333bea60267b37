#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End-to-end test of issue 7 (ctest operate.e2e, label e2e; root). About 12 minutes:
#   1. the testbed up (scripts/demo.sh, with the agent, without its own Prometheus); a Prometheus
#      and an Alertmanager of our own, configured from deploy/ (only addresses, scrape/eval interval
#      5 s and Alertmanager's group timings changed), loading alerting/rules; a webhook receiver;
#   2. normal load plus a few real conditions the panels need (a process under a cgroup memory
#      limit, failed SQL queries, refused connections, a lossy link between two network namespaces for retransmits);
#   3. every dashboard expression, dashboard variable and recording rule must return data: each
#      one that does not is named with its file and panel (the sweep step of e2e.mjs);
#   4. the load asks the APIs for 50 % errors: AurumHTTP5xxRatioHigh must reach the webhook on the
#      "page" receiver (severity critical), then resolve once the load is normal again.
# Environment: AURUM_E2E_WARMUP (s, default 75: the config rule group is evaluated every minute), AURUM_E2E_KEEP=1 (leave everything running).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
AURUM_BIN=${1:-$ROOT/build/aurum}
PY=/usr/bin/python3
log() { printf '[e2e %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

if [[ $(id -u) -ne 0 ]]; then
  [[ ${CI:-} == true ]] && { log "FAIL: needs root under CI"; exit 1; }
  log "skip: needs root (the agent loads BPF; the testbed runs PostgreSQL and RabbitMQ)"; exit 77
fi
# shellcheck source=../testbed/ports.env
source "$ROOT/tests/testbed/ports.env"
PROM_PORT=19190 AM_PORT=19193 HOOK_PORT=19194
WORK=$(mktemp -d /tmp/aurum-e2e.XXXXXX)
PIDS=() started_testbed=0 srvns=aurum-e2e-s$$ clins=aurum-e2e-c$$ cg=""
for p in $PROM_PORT $AM_PORT $HOOK_PORT; do
  ! ss -Htln "sport = :$p" | grep -q . || { log "FAIL: port $p is in use"; exit 1; }
done

cleanup() {
  [[ ${AURUM_E2E_KEEP:-0} == 1 ]] && { log "kept running (work dir $WORK)"; return; }
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  ip netns del "$srvns" 2>/dev/null || true
  ip netns del "$clins" 2>/dev/null || true
  [[ -n $cg ]] && rmdir "$cg" 2>/dev/null || true
  [[ $started_testbed == 1 ]] && "$ROOT/scripts/demo.sh" down >&2 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 143' TERM INT   # so that a ctest timeout or ^C still cleans up

bg() { "$@" >>"$WORK/$(basename "$1").log" 2>&1 & PIDS+=($!); }
wait_http() { # what url seconds
  local deadline=$((SECONDS + $3))
  until curl -fs -m 2 -o /dev/null "$2"; do
    ((SECONDS < deadline)) || { log "FAIL: $1 not ready at $2 after $3 s"; return 1; }
    sleep 1
  done
}

# 1. The testbed with the agent; our own Prometheus, Alertmanager and webhook receiver.
if ss -Htln "sport = :$TESTBED_SHOP_API_PORT" | grep -q .; then
  # Someone's testbed (scripts/demo.sh up, the testbed tests): use it and leave it running.
  log "testbed already up: using it (not stopping it afterwards)"
else
  log "scripts/demo.sh up (agent $AURUM_BIN)"
  started_testbed=1
  AURUM_BIN=$AURUM_BIN AURUM_DEMO_NO_PROMETHEUS=1 "$ROOT/scripts/demo.sh" up >&2
fi
if ! ss -Htln "sport = :$TESTBED_AURUM_PORT" | grep -q .; then
  # A testbed started without the agent (AURUM_DEMO_NO_AGENT=1): run ours for the duration.
  log "no agent on :$TESTBED_AURUM_PORT: starting $AURUM_BIN"
  bg "$AURUM_BIN" --config.file "$ROOT/tests/testbed/aurum.yaml" \
    --web.listen-address "127.0.0.1:$TESTBED_AURUM_PORT"
fi
if ! wait_http aurum "http://127.0.0.1:$TESTBED_AURUM_PORT/healthz" 90; then
  for f in "$WORK/aurum.log" "$ROOT/tests/testbed/.state/log/aurum.log"; do
    [[ -s $f ]] && { log "last lines of $f:"; tail -15 "$f" >&2; }
  done
  exit 1
fi
node "$HERE/e2e.mjs" configs $PROM_PORT $AM_PORT $HOOK_PORT "$TESTBED_AURUM_PORT" "$WORK"
bg node "$HERE/e2e-webhook.mjs" $HOOK_PORT "$WORK/webhook.jsonl"
bg prometheus-alertmanager --config.file "$WORK/alertmanager.yml" --storage.path "$WORK/am" \
  --web.listen-address "127.0.0.1:$AM_PORT" --cluster.listen-address=
bg prometheus --config.file "$WORK/prometheus.yml" --storage.tsdb.path "$WORK/prom" \
  --web.listen-address "127.0.0.1:$PROM_PORT"
wait_http prometheus "http://127.0.0.1:$PROM_PORT/-/ready" 60
wait_http alertmanager "http://127.0.0.1:$AM_PORT/-/ready" 60

# 2. Normal load, and the conditions that some panels show only when they happen.
log "normal load (2 % errors, some poison messages, slow consumer)"
bg $PY "$ROOT/tests/testbed/loadgen.py" --rate 20 --duration $((${AURUM_E2E_WARMUP:-75} + 60)) \
  --error-share 0.02 --poison-share 0.05 --slow-ms 200
# A process under a memory limit (aurum_memory_limit_bytes exists only where a limit is set, and
# only when every process of the service has one: hence a service name of its own).
env OTEL_SERVICE_NAME=aurum-e2e-memory-limited sleep 1800 & sleeper=$!; PIDS+=($sleeper)
if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then
  cg=/sys/fs/cgroup/aurum-e2e-$$; mkdir "$cg"; echo 268435456 >"$cg/memory.max"
else
  cg=/sys/fs/cgroup/memory/aurum-e2e-$$; mkdir "$cg"; echo 268435456 >"$cg/memory.limit_in_bytes"
fi
echo "$sleeper" >"$cg/cgroup.procs"
# Failed queries (the PostgreSQL panels split queries by SQLSTATE class): division by zero, class 22.
for _ in 1 2 3; do
  psql -X -q -h 127.0.0.1 -p "$TESTBED_SHOP_DB_PORT" -U shop shop -c 'SELECT 1/0' >/dev/null 2>&1 || true
done
# Refused connections (failed connects, resets).
for _ in 1 2 3 4 5; do curl -s -m 2 -o /dev/null "http://127.0.0.1:1/" || true; done
# Retransmits: a server and a client in two network namespaces of our own, joined by a veth pair;
# the client's namespace drops 10 % of the server's segments (nftables: netem is not in every
# kernel), so the server retransmits. Nothing touches the host's network or firewall.
ip netns add "$srvns"; ip netns add "$clins"
ip -n "$srvns" link add ae2e-s type veth peer name ae2e-c netns "$clins"
ip -n "$srvns" addr add 10.213.7.1/30 dev ae2e-s; ip -n "$srvns" link set ae2e-s up
ip -n "$clins" addr add 10.213.7.2/30 dev ae2e-c; ip -n "$clins" link set ae2e-c up
ip netns exec "$clins" nft -f - <<'NFT'
table inet aurum_e2e_loss {
  chain in {
    type filter hook input priority 0;
    tcp sport 18099 numgen random mod 10 == 0 drop
  }
}
NFT
mkdir -p "$WORK/www"; head -c 4000000 /dev/urandom >"$WORK/www/blob"
bg ip netns exec "$srvns" $PY -m http.server 18099 --bind 10.213.7.1 --directory "$WORK/www"
sleep 2
for _ in 1 2 3; do ip netns exec "$clins" curl -s -m 30 -o /dev/null "http://10.213.7.1:18099/blob" || true; done

log "waiting ${AURUM_E2E_WARMUP:-75} s for the rate windows to fill"
sleep "${AURUM_E2E_WARMUP:-75}"

# 3. Every expression returns data.
fail=0
log "querying every dashboard, variable and recording-rule expression"
node "$HERE/e2e.mjs" sweep "http://127.0.0.1:$PROM_PORT" || fail=1

# 4. The 5xx alert reaches the webhook and resolves.
if ! curl -fs "http://127.0.0.1:$PROM_PORT/api/v1/query?query=aurum:http_server_requests:rate5m" | grep -q '"service_name"'; then
  log "FAIL: no HTTP server request rates (aurum:http_server_requests:rate5m is empty): the 5xx alert cannot fire"
  exit 1
fi
log "error load: the APIs answer 500 half of the time"
bg $PY "$ROOT/tests/testbed/loadgen.py" --rate 6 --duration 360 --error-share 0.5 --slow-ms 0
errload=${PIDS[-1]}
if node "$HERE/e2e.mjs" wait-alert "$WORK/webhook.jsonl" AurumHTTP5xxRatioHigh firing 360 /page; then
  kill "$errload" 2>/dev/null || true
  log "normal load again: waiting for the alert to resolve"
  bg $PY "$ROOT/tests/testbed/loadgen.py" --rate 40 --duration 600 --error-share 0
  node "$HERE/e2e.mjs" wait-alert "$WORK/webhook.jsonl" AurumHTTP5xxRatioHigh resolved 600 /page || fail=1
else
  fail=1
  { curl -s "http://127.0.0.1:$PROM_PORT/api/v1/query?query=aurum:http_server_5xx:ratio_rate5m"; echo; } >&2 || true
fi
((fail == 0)) && log "PASS" || log "FAIL (work dir $WORK is removed on exit; AURUM_E2E_KEEP=1 keeps it)"
exit $fail
