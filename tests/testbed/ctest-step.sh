#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# One step of the testbed's ctest fixture (tests.cmake): up | system | plan | down.
#   up      scripts/demo.sh up (agent = $2, the build's aurum), then e2e.py load
#   system  e2e.py check-system   (the plan's system works end to end, ground truth from outside)
#   plan    e2e.py check-plan     (every row of the plan's table has a live series in aurum)
#   down    scripts/demo.sh down, then e2e.py check-down (nothing left running)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
step=${1:?usage: ctest-step.sh up|system|plan|down [agent binary]}

if [[ $(id -u) -ne 0 ]]; then
  if [[ ${CI:-} == true ]]; then echo "testbed: must run as root under CI=true" >&2; exit 1; fi
  echo "testbed: skipped, needs root (PostgreSQL/RabbitMQ users, BPF for the agent)"; exit 77
fi

case $step in
  up)
    # The agent of the build under test; do not build another tree from inside a test.
    [[ -n ${2:-} ]] && export AURUM_BIN=$2
    export AURUM_BUILD=0
    state=$("$HERE/state-dir.sh")
    t0=$SECONDS
    if [[ ${CI:-} != true ]] && "$REPO/scripts/demo.sh" running; then
      # Someone's testbed runs (scripts/demo.sh up, tests/operate's e2e): use it as it is and leave
      # it running; the checks compare this run's own orders by id. Under CI the test owns it.
      echo "testbed: already running; using it and leaving it up (the down step will not check it)"
      export AURUM_TESTBED_OWNER=0
      rm -f "$state/ctest-owner"
    else
      # RabbitMQ from an empty data directory: it then starts in ~4 s, where a restart on existing
      # data spent 10-30 s in "Upgrading Mnesia schema" on this loaded machine. The rest of the
      # state stays (the checks compare the ids of this run's orders, not totals).
      "$REPO/scripts/demo.sh" down
      rm -rf -- "$state/rabbitmq/mnesia"
      export AURUM_TESTBED_OWNER=1
    fi
    up_ok=1
    "$REPO/scripts/demo.sh" up >/dev/null || up_ok=0
    # Resolved again: on a fresh machine user postgres only exists after the install in `up`.
    state=$("$HERE/state-dir.sh")
    if [[ $AURUM_TESTBED_OWNER == 1 ]]; then mkdir -p "$state"; touch "$state/ctest-owner"; fi
    if [[ $up_ok == 0 ]]; then
      for f in "$state"/log/*.log; do echo "---- $f"; tail -n 15 "$f" || true; done
      exit 1
    fi
    echo "testbed: up in $((SECONDS - t0))s"
    exec /usr/bin/python3 "$HERE/e2e.py" load ;;
  system) exec /usr/bin/python3 "$HERE/e2e.py" check-system ;;
  plan) exec /usr/bin/python3 "$HERE/e2e.py" check-plan ;;
  down)
    state=$("$HERE/state-dir.sh")
    if [[ ! -f $state/ctest-owner && ${CI:-} != true ]]; then
      echo "testbed: not started by this test run; left running for its owner"
      exit 0
    fi
    t0=$SECONDS
    "$REPO/scripts/demo.sh" down
    rm -f "$state/ctest-owner"
    echo "testbed: down in $((SECONDS - t0))s"
    exec /usr/bin/python3 "$HERE/e2e.py" check-down ;;
  *) echo "unknown step $step" >&2; exit 2 ;;
esac
