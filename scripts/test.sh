#!/usr/bin/env bash
# Builds agenthost and runs every test (unit, sandbox, integration) through ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
ctest --test-dir build --output-on-failure --timeout 600 -j2 "$@"
