#!/usr/bin/env bash
# Builds agenthost and runs the daemon on 127.0.0.1:8080 with every agent under
# examples/ installed (built into build/examples, binaries included); state (SQLite, admin token, installed agents) goes to ./var.
# Extra arguments go to agenthostd (see agenthostd --help).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
exec build/host/agenthostd --state-dir var --manifests build/examples "$@"
