#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds aurum and runs every test: unit, fuzz (short), privileged integration tests that load
# the real BPF programs, and the scripted suites (kernel matrix, testbed, operate, s3).
# Needs root. Installs its own Debian dependencies. Extra arguments go to ctest
# (e.g. scripts/test.sh -L unit, or -R Sched).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
aurum_as_root "$@"

aurum_apt "${AURUM_BUILD_DEPS[@]}" "${AURUM_TEST_DEPS[@]}"
aurum_build
# Privileged tests run one at a time (RUN_SERIAL); the rest two at a time.
exec ctest --test-dir "${AURUM_BUILD_DIR:-build}" --output-on-failure -j 2 "$@"
