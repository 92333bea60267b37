#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# One offline check of deploy/, dashboards/ and alerting/ (ctest label `operate`; see tests.cmake).
#   check.sh <rules|rule-tests|prometheus|alertmanager|kubernetes|chart|dashboards|alerting|systemd|docker> [aurum binary]
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
check=${1:?check name}
AURUM_BIN=${2:-$ROOT/build/aurum}
SCRATCH=$(mktemp -d /tmp/aurum-operate.XXXXXX)
trap 'rm -rf "$SCRATCH"' EXIT
cd "$ROOT"

case $check in
  rules)        # syntax and PromQL of every rule file
    promtool check rules alerting/rules/*.yml ;;
  rule-tests)   # every alert fires on one input and stays silent on another
    promtool test rules alerting/tests/*.test.yml ;;
  alerting)     # severity, annotations, runbooks, a firing and a silent test per alert, known metrics
    node "$HERE/check-alerting.mjs" ;;
  prometheus)   # both Prometheus configs, with the rule files they load
    ln -s "$ROOT/alerting/rules" "$SCRATCH/rules"
    node "$HERE/check-prometheus.mjs" "$SCRATCH"
    promtool check config "$SCRATCH/prometheus.yml"
    promtool check config "$SCRATCH/prometheus-kubernetes.yml"
    # the configs the end-to-end test derives from these files stay valid too
    mkdir "$SCRATCH/e2e"
    node "$HERE/e2e.mjs" configs 19190 19193 19194 9890 "$SCRATCH/e2e"
    promtool check config "$SCRATCH/e2e/prometheus.yml" >/dev/null
    amtool check-config "$SCRATCH/e2e/alertmanager.yml" >/dev/null
    echo "ok   e2e configs derived from deploy/ are valid" ;;
  alertmanager) # syntax, and where each severity the alerts use is routed
    amtool check-config deploy/alertmanager/alertmanager.yml
    for sev in $(grep -ho 'severity: [a-z]*' alerting/rules/*.yml | awk '{print $2}' | sort -u); do
      receiver=$(amtool config routes test --config.file=deploy/alertmanager/alertmanager.yml \
                 "severity=$sev" alertname=Test 2>/dev/null)
      want=$([[ $sev == critical ]] && echo page || echo ticket)
      [[ $receiver == "$want" ]] || { echo "FAIL severity=$sev routed to '$receiver', want '$want'" >&2; exit 1; }
      echo "ok   severity=$sev -> $receiver"
    done ;;
  kubernetes)   # manifests against the Kubernetes / Prometheus Operator schemas
    node "$HERE/check-kubernetes.mjs" ;;
  chart)        # the chart's templates with default values == the manifests
    node "$HERE/check-chart.mjs" ;;
  dashboards)   # lint, plan coverage, and promtool parses every panel expression
    node "$HERE/check-dashboards.mjs" "$SCRATCH/dashboard-expressions.yml"
    promtool check rules "$SCRATCH/dashboard-expressions.yml" ;;
  systemd)      # the unit verifies and its exposure score stays low; ExecStart points at a stand-in
    sed "s|/usr/local/bin/aurum|$(command -v true)|" deploy/systemd/aurum.service >"$SCRATCH/aurum.service"
    systemd-analyze verify "$SCRATCH/aurum.service"
    # 3.1 today ("OK"); fail if hardening is lost (above 4.0)
    systemd-analyze security --offline=yes --threshold=40 "$SCRATCH/aurum.service" | tail -1 ;;
  docker)       # compose file schema and paths, Dockerfile packages and COPY sources, runtime libs
    "$HERE/check-docker.sh" "$AURUM_BIN" ;;
  *) echo "unknown check $check" >&2; exit 2 ;;
esac
