#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Prints the testbed's state folder (data, logs, pids): $AURUM_TESTBED_STATE if set, else
# tests/testbed/.state, unless user postgres cannot reach it (a checkout under /root, mode 700):
# PostgreSQL refuses to run as root and must reach its data directory, so then /var/tmp/aurum-testbed.
TB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [[ -n ${AURUM_TESTBED_STATE:-} ]]; then echo "$AURUM_TESTBED_STATE"; exit 0; fi
if id postgres >/dev/null 2>&1 && ! runuser -u postgres -- test -x "$TB" 2>/dev/null; then
  echo /var/tmp/aurum-testbed
else
  echo "$TB/.state"
fi
