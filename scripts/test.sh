#!/usr/bin/env bash
# Builds agenthost and runs every test (unit, sandbox, integration) through ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh

# Preflight: every sandboxed agent loads a seccomp filter. On kernel 6.18 a burst of
# thousands of agents ending at once can deadlock the kernel's BPF JIT allocator
# (bpf_prog_pack_free, see docs/sandbox.md) until the machine reboots; after that every
# seccomp load blocks forever in the kernel. Say so, and run the tests that start no
# agent, rather than hang until CI's time runs out.
build/sandbox/ahsandbox -- /bin/true </dev/null >/dev/null 2>&1 &
probe=$!
exclude=()
for _ in $(seq 1 40); do
  kill -0 "$probe" 2>/dev/null || break
  sleep 0.5
done
if kill -0 "$probe" 2>/dev/null; then
  stack=$(cat /proc/*/stack 2>/dev/null | grep -c bpf_prog_pack || true)
  echo "test.sh: a sandboxed /bin/true did not start within 20 s: this kernel cannot load" >&2
  echo "test.sh: seccomp filters now ($stack kernel stacks in bpf_prog_pack_*, see" >&2
  echo "test.sh: docs/sandbox.md 'Kernel'); reboot the machine to run the agent tests." >&2
  echo "test.sh: running only the tests that start no agent." >&2
  exclude=(-E '^(sandbox\.|unit\.sandbox\.|unit\.host\.registry|unit\.sdk\.install|integration\.|soak\.)')
fi

ctest --test-dir build --output-on-failure --timeout 600 -j2 "${exclude[@]}" "$@"
