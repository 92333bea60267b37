#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The operate checks can fail: each mutation below breaks one thing in a scratch copy of deploy/,
# dashboards/, alerting/, docs/runbooks/ and tests/operate/, and the check that guards it must then
# fail (ctest operate.selftest). The unmutated copy must pass them all first.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SCRATCH=$(mktemp -d /tmp/aurum-operate-selftest.XXXXXX)
trap 'rm -rf "$SCRATCH"' EXIT
fail=0

copy() { # -> a fresh copy in $SCRATCH/c
  rm -rf "$SCRATCH/c"; mkdir -p "$SCRATCH/c/tests/operate" "$SCRATCH/c/docs"
  cp -r "$ROOT/deploy" "$ROOT/dashboards" "$ROOT/alerting" "$SCRATCH/c/"
  cp -r "$ROOT/docs/runbooks" "$SCRATCH/c/docs/"
  find "$HERE" -maxdepth 1 -type f -exec cp {} "$SCRATCH/c/tests/operate/" \;
  ln -s "$HERE/node_modules" "$SCRATCH/c/tests/operate/node_modules"
  local src; for src in CMakeLists.txt cmake bpf vmlinux userspace; do ln -s "$ROOT/$src" "$SCRATCH/c/$src"; done
}
run() { "$SCRATCH/c/tests/operate/check.sh" "$1" /nonexistent >"$SCRATCH/out" 2>&1; }

copy
for check in rules rule-tests alerting prometheus alertmanager kubernetes chart dashboards systemd docker; do
  if run "$check"; then echo "ok   baseline: $check passes on the copy"
  else echo "FAIL baseline: $check fails on the unmutated copy:"; cat "$SCRATCH/out"; fail=1; fi
done

# check ~~ file ~~ perl substitution ~~ what it breaks
MUTATIONS=(
  'dashboards ~~ dashboards/aurum-http.json ~~ s/"unit": "reqps"/"unit": ""/ ~~ a panel without a unit'
  'dashboards ~~ dashboards/aurum-node.json ~~ s/"uid": "\$\{datasource\}"/"uid": "some-fixed-uid"/ ~~ a panel on a fixed data source'
  'dashboards ~~ dashboards/aurum-overview.json ~~ s/\(rate\(/(rate((/ ~~ an expression that does not parse'
  'dashboards ~~ dashboards/aurum-postgresql.json ~~ s/\[\$__rate_interval\]/[5m]/ ~~ a fixed rate window'
  'dashboards ~~ dashboards/aurum-rabbitmq.json ~~ s/aurum_amqp_unacked_messages/aurum_amqp_unacked_message/g ~~ a misspelt metric'
  'dashboards ~~ dashboards/aurum-http.json ~~ s/status_code=~\\"500\\"/status_code=~\\"501\\"/g ~~ the plan row "HTTP 500" without a panel'
  'chart ~~ deploy/helm/aurum/values.yaml ~~ s/memory: 256Mi/memory: 512Mi/ ~~ chart defaults that differ from the manifests'
  'chart ~~ deploy/helm/aurum/templates/daemonset.yaml ~~ s/hostPID: true/hostPID: true\n      hostNetwork: true/ ~~ a template field the manifest lacks'
  'kubernetes ~~ deploy/kubernetes/daemonset.yaml ~~ s/containerPort: 9890/containerPort: "metrics-port"/ ~~ a manifest that breaks the schema'
  'kubernetes ~~ deploy/kubernetes/daemonset.yaml ~~ s/hostPID: true/hostPid: true/ ~~ a misspelt field the schema would ignore'
  'rule-tests ~~ alerting/rules/aurum-config.yml ~~ s/vector\(0\.05\)/vector(0.5)/ ~~ a 5xx threshold the tests do not expect'
  'rules ~~ alerting/rules/aurum-alerts.yml ~~ s/> 0\.05/>> 0.05/ ~~ an alert expression that does not parse'
  'alerting ~~ alerting/rules/aurum-alerts.yml ~~ s{docs/runbooks/aurum-down.md}{docs/runbooks/no-such-page.md} ~~ a runbook that does not exist'
  'alertmanager ~~ deploy/alertmanager/alertmanager.yml ~~ s/receiver: page/receiver: ticket/ ~~ critical alerts routed to the ticket receiver'
  'prometheus ~~ deploy/prometheus/prometheus-kubernetes.yml ~~ s/replacement: aurum/replacement: aurum-k8s/ ~~ Kubernetes targets without job="aurum"'
  'prometheus ~~ deploy/prometheus/prometheus.yml ~~ s/rule_files:/rule_filez:/ ~~ an unknown top-level key'
  'docker ~~ deploy/docker/Dockerfile ~~ s/libyaml-cpp0\.7/libyaml-cpp0.99/ ~~ a runtime package Debian does not have'
  'docker ~~ deploy/docker-compose.yml ~~ s{\.\./dashboards/provisioning/datasources}{../dashboards/provisioning/datasourcez} ~~ a compose mount of a missing path'
  'systemd ~~ deploy/systemd/aurum.service ~~ s/^(Protect|Restrict|Private|SystemCall|Capability|NoNewPriv).*\n//mg ~~ a unit without its hardening'
)
for m in "${MUTATIONS[@]}"; do
  check=${m%% ~~ *}; rest=${m#* ~~ }; file=${rest%% ~~ *}; rest=${rest#* ~~ }
  expr=${rest%% ~~ *}; what=${rest#* ~~ }
  copy
  before=$(md5sum <"$SCRATCH/c/$file")
  perl -0pi -e "$expr" "$SCRATCH/c/$file"
  if [[ $(md5sum <"$SCRATCH/c/$file") == "$before" ]]; then
    echo "FAIL mutation '$what' did not change $file (fix the selftest)"; fail=1; continue
  fi
  if run "$check"; then echo "FAIL $check did not notice $what ($file)"; fail=1
  else echo "ok   $check fails on $what"; fi
done
exit $fail
