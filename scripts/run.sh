#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Starts the agent on this host with good defaults: every service's golden signals on
# http://0.0.0.0:9890/metrics. Needs root. Installs its build dependencies and builds if needed.
# Extra arguments go to the agent (see build/aurum --help), e.g.
#   scripts/run.sh --config.file deploy/aurum.example.yaml --log.level debug
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
aurum_as_root "$@"

aurum_apt "${AURUM_BUILD_DEPS[@]}"
aurum_build >/dev/null
exec "${AURUM_BUILD_DIR:-build}/aurum" "$@"
