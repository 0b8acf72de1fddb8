"""Hardening (issue 7, item 4): agent faults under load. 100 echo sessions run at a steady
rate (FAULT_RATE runs/s in all, 150 by default, spread over FAULT_CLIENTS client threads
with keep-alive connections) while agents of other sessions fail in a loop, each kind from
its own client:

    crash    the agent exits (code 3)                       -> run failed "exited"
    hang     it sleeps past run_timeout_s = 1                -> "timeout"
    flood    it writes past output_bytes = 64 KiB on stdout  -> "output_limit"
    seccomp  it calls ptrace (never allowed)                 -> "sandbox_violation"
    oom      it touches memory past memory_mb = 16           -> "oom" (with a memory cgroup)

A fault session that reaches 5 crashes in 60 s is failed by the daemon (409): it is
destroyed and replaced, so creates, destroys and respawns are part of the faulty load.

The echo load runs throughout an attempt of 4 pairs of 2-second windows, quiet then faulty
(the faulters inject only in the faulty ones): interleaving short windows exposes both to
the same background load of this shared machine. Expected: none of the echo runs fails,
ever; every fault ends its run with its own reason; the echo runs' p99 latency in the faulty
windows is within 2x of the quiet ones. The machine is noisy: an attempt is made up to 3
times, and the test fails only if none is within 2x. Every attempt's numbers are printed.

test_agent_output_under_the_cap_is_not_refused: an agent writing 1 MB (under output_bytes)
to stdout is not cut short (why the flood fault can end "exited": the agent's stdout is a
non-blocking pipe, so a writer faster than the daemon gets EAGAIN).

The fault agent is a POSIX sh session agent written here, with three of the hostile suite's
probes (PROBES: flood, try-syscall, membomb) copied next to it. Oracle: issue 7 item 4,
docs/http.md (end reasons), docs/manifest.md (limits)."""

import http.client
import json
import os
import re
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_sessions as ts  # noqa: E402
from harness import PROBES, main  # noqa: E402
from test_crash_recovery import install_sh_agent  # noqa: E402

SESSIONS = int(os.environ.get("FAULT_SESSIONS", "100"))
CLIENTS = int(os.environ.get("FAULT_CLIENTS", "10"))
RATE = float(os.environ.get("FAULT_RATE", "150"))       # echo runs per second, in all
WINDOWS = 4                  # quiet/faulty window pairs per attempt
WINDOW_S = float(os.environ.get("FAULT_WINDOW_S", "2"))
ATTEMPTS = 3
FAULT_PAUSE_S = 0.1          # between two faults of one kind
MIN_FAULTS = 3               # of each kind per faulty phase, or the phase proves nothing

FAULT_SH = r'''#!/bin/sh
# A session agent in POSIX sh; fd 3 is the protocol socket (docs/protocol.md). A run's
# input names what to do: "ok" answers, the others are faults.
read -r hello <&3 || exit 0
printf '{"t":"ready"}\n' >&3
while read -r line <&3; do
	case "$line" in
	*'"t":"run"'*) ;;
	*'"t":"destroy"'*) exit 0 ;;
	*) continue ;;
	esac
	run=${line#*\"run\":\"}
	run=${run%%\"*}
	case "$line" in
	*'"input":"crash"'*) exit 3 ;;
	*'"input":"hang"'*) sleep 30 ;;
	*'"input":"flood"'*) exec ./flood 1 64 ;;
	*'"input":"seccomp"'*) exec ./try-syscall ptrace ;;
	*'"input":"oom"'*) exec ./membomb 1024 ;;
	*) printf '{"t":"done","run":"%s","output":"ok"}\n' "$run" >&3 ;;
	esac
done
'''

FAULTS = ("crash", "hang", "flood", "seccomp", "oom")

# Writes 1 MB to stdout in each run and answers the exit status and stderr of the writer.
STDOUT_SH = r'''#!/bin/sh
read -r hello <&3 || exit 0
printf '{"t":"ready"}\n' >&3
while read -r line <&3; do
	case "$line" in *'"t":"run"'*) ;; *) continue ;; esac
	run=${line#*\"run\":\"}
	run=${run%%\"*}
	head -c 1000000 /dev/zero 2>/scratch/err
	rc=$?
	err=$(tr -d '\n"\\' < /scratch/err)
	printf '{"t":"done","run":"%s","output":"rc=%s %s"}\n' "$run" "$rc" "$err" >&3
done
'''


def p99(values):
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(0.99 * len(s)))]


class EchoLoad(threading.Thread):
    """Runs echo in its sessions in turn, one every `interval` seconds (no catching up after
    a stall, so a slow daemon is not hit by bursts), on one keep-alive connection. Records
    each run's latency; any run that is not a completed echo is a failure."""

    def __init__(self, port, token, sids, interval, stop, name, phase):
        super().__init__(daemon=True)
        self.port, self.token, self.sids, self.interval, self.stop = port, token, sids, interval, stop
        self.phase = phase     # [current phase name]: each sample is filed under it
        self.latencies = {}    # phase -> [seconds]
        self.failures = []
        self.label = name

    def run(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        hdrs = {"Authorization": "Bearer " + self.token, "Content-Type": "application/json"}
        n = 0
        next_at = time.monotonic()
        try:
            while not self.stop.is_set():
                now = time.monotonic()
                if next_at > now:
                    time.sleep(next_at - now)
                next_at = max(next_at + self.interval, time.monotonic() - self.interval)
                sid = self.sids[n % len(self.sids)]
                text = "%s run %d" % (self.label, n)
                n += 1
                phase = self.phase[0]
                t0 = time.monotonic()
                try:
                    conn.request("POST", "/v1/sessions/%s/runs" % sid, body=json.dumps({"input": text}),
                                 headers=hdrs)
                    r = conn.getresponse()
                    body = r.read()
                except (OSError, http.client.HTTPException) as e:
                    conn.close()
                    self.failures.append("%s: %s: %r" % (sid, text, e))
                    continue
                took = time.monotonic() - t0
                try:
                    res = json.loads(body)
                except ValueError:
                    res = None
                if r.status != 200 or not isinstance(res, dict) or res.get("status") != "completed" \
                        or res.get("output") != text:
                    self.failures.append("%s: %s: HTTP %d %r" % (sid, text, r.status, body[:200]))
                    continue
                if self.phase[0] == phase:  # a run across a phase switch counts for neither
                    self.latencies.setdefault(phase, []).append(took)
        finally:
            conn.close()


class Faulter(threading.Thread):
    """Injects one kind of fault in a loop into sessions of the fault agent, replacing a
    session the daemon failed (5 crashes in 60 s). Counts each end reason."""

    def __init__(self, case, kind, expect, stop, gate):
        super().__init__(daemon=True)
        self.case, self.kind, self.expect, self.stop, self.gate = case, kind, expect, stop, gate
        self.codes = {}
        self.messages = {}   # code -> one message, for the report
        self.replaced = 0
        self.errors = []
        self.sid = None

    def new_session(self):
        r = self.case.d.request("POST", "/v1/agents/fault/sessions", {}, token=self.case.token,
                                timeout=30)
        if r.status != 201:
            raise AssertionError("fault session create answered %r" % r)
        self.sid = r.json()["id"]

    def run(self):
        d, token = self.case.d, self.case.token
        try:
            self.new_session()
            while not self.stop.is_set():
                if not self.gate.wait(0.1):  # faults only in the faulty windows
                    continue
                r = d.request("POST", "/v1/sessions/%s/runs" % self.sid, {"input": self.kind},
                              token=token, timeout=30)
                if r.status == 409:  # failed: 5 crashes within 60 s
                    d.request("DELETE", "/v1/sessions/" + self.sid, token=token)
                    self.replaced += 1
                    self.new_session()
                    continue
                res = r.json() if r.status == 200 else {}
                if r.status != 200 or res.get("status") != "failed":
                    self.errors.append("fault %s: HTTP %d %r" % (self.kind, r.status, r.body[:200]))
                else:
                    code = res["error"]["code"]
                    self.codes[code] = self.codes.get(code, 0) + 1
                    self.messages.setdefault(code, res["error"]["message"])
                self.stop.wait(FAULT_PAUSE_S)
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.errors.append("fault %s: %s: %s" % (self.kind, type(e).__name__, e))


class AgentFaults(ts.SessionCase):

    def setUp(self):
        super().setUp()
        signal.alarm(240)

    def attempt(self, sids):
        """One measurement: WINDOWS pairs of a quiet and a faulty window of WINDOW_S seconds
        each, alternating, the echo load running throughout; the faulters inject only in
        the faulty windows. Interleaving short windows exposes both phases to the same
        background load of the (shared) machine. Returns (quiet latencies, faulty latencies,
        failures, faulters)."""
        stop, gate = threading.Event(), threading.Event()
        phase = ["warm-up"]
        per = [sids[i::CLIENTS] for i in range(CLIENTS)]
        interval = CLIENTS / RATE
        loads = [EchoLoad(self.d.port, self.token, per[i], interval, stop, "c%d" % i, phase)
                 for i in range(CLIENTS)]
        faulters = [Faulter(self, k, self.expect[k], stop, gate) for k in FAULTS]
        for t in faulters + loads:
            t.start()
        time.sleep(0.5)
        for _ in range(WINDOWS):
            phase[0] = "quiet"
            time.sleep(WINDOW_S)
            gate.set()
            phase[0] = "switch"
            time.sleep(0.3)  # the faults are going when the window starts
            phase[0] = "faulty"
            time.sleep(WINDOW_S)
            gate.clear()
            phase[0] = "switch"
            time.sleep(0.5)  # in-flight faults end (a hang ends by its 1 s timeout later)
        stop.set()
        for t in loads + faulters:
            t.join(40)
            self.assertFalse(t.is_alive(), "a client thread hangs")
        quiet = [x for t in loads for x in t.latencies.get("quiet", [])]
        faulty = [x for t in loads for x in t.latencies.get("faulty", [])]
        fails = [x for t in loads for x in t.failures]
        return quiet, faulty, fails, faulters

    def test_faulty_agents_do_not_hurt_other_sessions(self):
        cgroup_memory = re.search(r"cgroup memory: (\w+)", self.d.log())
        self.assertIsNotNone(cgroup_memory, "the daemon did not say whether it has a memory cgroup")
        self.expect = {"crash": "exited", "hang": "timeout", "flood": "output_limit",
                       "seccomp": "sandbox_violation",
                       "oom": "oom" if cgroup_memory.group(1) == "yes" else "exited"}
        probes = [os.path.join(PROBES, p) for p in ("flood", "try-syscall", "membomb")]
        for p in probes:
            self.assertTrue(os.access(p, os.X_OK), "hostile probe not built: " + p)
        install_sh_agent(self, "fault", FAULT_SH, files=probes, manifest_extra={
            "sandbox": {"limits": {"memory_mb": 16, "run_timeout_s": 1, "output_bytes": 65536}},
            "session": {"max_queued_runs": 8}})

        sids = []
        for _ in range(SESSIONS):
            r = self.req("POST", "/v1/agents/echo/sessions", {}, timeout=30)
            self.assertStatus(r, 201)
            sids.append(r.json()["id"])
        # Warm-up: every session has run once.
        for sid in sids:
            self.assertEqual(self.run_ok(sid, "warm"), "warm")

        report = []
        passed = False
        total_faults = {}
        wrong_reasons = {}   # kind -> {code: message} of runs that ended for another reason
        for attempt in range(1, ATTEMPTS + 1):
            quiet, faulty, fails, faulters = self.attempt(sids)
            self.assertEqual(fails, [], "echo runs of other sessions failed (quiet or faulty)")
            errors = [e for f in faulters for e in f.errors]
            self.assertEqual(errors, [], "fault injection went wrong")
            for f in faulters:
                for c, n in f.codes.items():
                    if c != f.expect:
                        wrong_reasons.setdefault(f.kind, {})[c] = "%d runs, e.g. %r" % (
                            n, f.messages[c])
                got = f.codes.get(f.expect, 0)
                self.assertGreaterEqual(sum(f.codes.values()), MIN_FAULTS, "fault %s injected only "
                                        "%d times in %.0f s" % (f.kind, sum(f.codes.values()),
                                                                WINDOWS * WINDOW_S))
                total_faults[f.kind] = total_faults.get(f.kind, 0) + sum(f.codes.values())
            q, fq = p99(quiet), p99(faulty)
            line = ("attempt %d: quiet p99 %.1f ms (%d runs, p50 %.1f ms), faulty p99 %.1f ms "
                    "(%d runs, p50 %.1f ms), ratio %.2f; faults (end reason: runs) %s; fault "
                    "sessions replaced %d"
                    % (attempt, q * 1000, len(quiet), sorted(quiet)[len(quiet) // 2] * 1000,
                       fq * 1000, len(faulty), sorted(faulty)[len(faulty) // 2] * 1000, fq / q,
                       {f.kind: f.codes for f in faulters}, sum(f.replaced for f in faulters)))
            report.append(line)
            sys.stderr.write(line + "\n")
            if fq <= 2 * q:
                passed = True
                break
        sys.stderr.write("agent faults: %d echo sessions at %.0f runs/s; faults injected in all: %s\n"
                         % (SESSIONS, RATE, total_faults))
        self.assertIsNone(self.d.proc.poll(), "the daemon died")
        self.assertTrue(passed, "the echo runs' p99 under faults was over 2x the quiet p99 in "
                        "every attempt:\n  " + "\n  ".join(report))
        self.assertEqual(wrong_reasons, {}, "faults ended their runs with another reason than "
                         "their own (expected %s)" % self.expect)

    def test_agent_output_under_the_cap_is_not_refused(self):
        """A run that writes 1 MB to stdout (under output_bytes, 4 MiB by default) completes:
        the agent's stdout must block like any pipe when the daemon is behind, not fail with
        EAGAIN (a program's stdout is not expected to be non-blocking; Python's print raises
        BlockingIOError on it)."""
        install_sh_agent(self, "stdout-1mb", STDOUT_SH)
        sid = self.create("stdout-1mb")["id"]
        for _ in range(3):
            out = self.run_ok(sid, "x")
            self.assertEqual(out, "rc=0 ", "the agent's `head -c 1000000 /dev/zero` (to stdout) "
                             "failed: %r" % out)

if __name__ == "__main__":
    main()
