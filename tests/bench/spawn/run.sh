#!/bin/sh
# run.sh: builds and runs the spawn benchmark and prints its table (Markdown), with the date
# and machine, ready for the "Spawn" section of docs/benchmarks.md.
# usage: tests/bench/spawn/run.sh [BUILD_DIR] [SPAWNS]
set -eu
top=$(cd "$(dirname "$0")/../../.." && pwd)
build=${1:-$top/build}
spawns=${2:-500}
cmake --build "$build" --target spawn_bench spawn_first_byte -j2 >/dev/null
bin=$build/tests/bench/spawn
echo "Run of $(date -u '+%Y-%m-%d %H:%M UTC') on $(uname -r), $(nproc) cores, as $(id -un);" \
     "$spawns spawns each, interleaved; load average before: $(cut -d' ' -f1-3 /proc/loadavg)."
echo
"$bin/spawn_bench" -n "$spawns" "$bin"
