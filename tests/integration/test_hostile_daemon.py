"""Hostile agents through the real daemon (SANDBOX-CHECKLIST.md: "each row ... runs it
through the real daemon, and checks both the outcome for the agent and that the daemon and
every other session are unharmed"; issue 3, item 6).

Every test starts a daemon with the built examples (EXAMPLES), opens a long-lived session of
the counter example (the *companion*) with an extra key in its KV, and keeps running it from
a second thread, with GET /healthz beside every run, while the hostile agent misbehaves.
Afterwards the companion must have answered every run with the next count, its KV must be
exactly what it was plus the count, its session must be ready, /healthz must answer, and no
process of the hostile agent may be left under the daemon.

Hostile agents are made at test time from the hostile suite's probe programs (PROBES,
BUILD/tests/sandbox/probes; tests/sandbox/README.md) and two small scripts:
  hs       /bin/sh: answers hello with ready, reads the first run frame, then execs the
           probe, so the probe misbehaves while a run is active (its stdout reaches the
           session's log).
  raw.py   a Python agent speaking the protocol by hand on fd 3 (MODE in RAW_AGENT below):
           byte-at-a-time frames, malformed frames in the middle of a run, a flood of
           valid frames, never reading, and "runner", which runs a command in its sandbox
           and returns what it printed (for rows whose outcome is an errno, not an end).
The frames probe sends its malformed traffic at once, before reading hello.

Reasons are those of docs/http.md ("when the agent process ends before answering, the code
is the sandbox's end reason") and docs/protocol.md ("Protocol errors"). Calls are stateless
(process isolation) or runs of a session; a session whose agent ended must be "crashed" and
its event log must hold session.crashed with the same reason."""

import json
import os
import re
import shutil
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (EXAMPLES, PROBES, RUN_ID, DaemonTestCase, SSEStream,  # noqa: E402
                     example, main, pid_alive, wait_until)

HS = """#!/bin/sh
# hs PROBE [ARG...]: answer hello with ready, take the first run, then become PROBE.
# dash's read takes one byte at a time, so the bytes after the run frame stay on fd 3.
IFS= read -r hello <&3 || exit 1
printf '{"t":"ready"}\\n' >&3
IFS= read -r run <&3 || exit 1
exec "$@"
"""

RAW_AGENT = r'''
import json
import os
import subprocess
import sys
import time

FD = 3
MODE = sys.argv[1]
ARG = sys.argv[2] if len(sys.argv) > 2 else ""
buf = b""


def read_frame():
    global buf
    while b"\n" not in buf:
        chunk = os.read(FD, 65536)
        if not chunk:
            sys.exit(0)
        buf += chunk
    line, buf = buf.split(b"\n", 1)
    return json.loads(line)


def put(data):
    view = memoryview(data)
    while view:
        view = view[os.write(FD, view):]


def send(obj, bytewise=False):
    data = (json.dumps(obj, separators=(",", ":")) + "\n").encode()
    if not bytewise:
        put(data)
        return
    for i in range(len(data)):
        put(data[i:i + 1])
        time.sleep(0.002)


read_frame()  # hello
send({"t": "ready"}, bytewise=(MODE == "bytewise"))
if MODE == "never-read":
    time.sleep(30)  # never reads fd 3 again; the host must end us
    sys.exit(0)
while True:
    f = read_frame()
    if f.get("t") == "destroy":
        sys.exit(0)
    if f.get("t") != "run":
        continue
    rid, inp = f["run"], f.get("input")
    r = rid.encode()
    if MODE == "bytewise":
        send({"t": "event", "run": rid, "data": {"got": inp}}, bytewise=True)
        send({"t": "done", "run": rid, "output": inp}, bytewise=True)
        continue
    if MODE == "runner":
        p = subprocess.run(inp["argv"], capture_output=True, timeout=20)
        send({"t": "done", "run": rid, "output": {
            "rc": p.returncode, "out": p.stdout.decode("utf-8", "replace"),
            "err": p.stderr.decode("utf-8", "replace")}})
        continue
    if MODE == "flood-events":
        while True:
            send({"t": "event", "run": rid, "data": "x" * 4000})
    elif MODE == "invalid-json":
        put(b'{"t":"done","run":"' + r + b'","output":1,}\n')
    elif MODE == "invalid-utf8":
        put(b'{"t":"event","run":"' + r + b'","data":"\xc3\x28\xff"}\n')
    elif MODE == "long-line":
        put(b'{"t":"event","run":"' + r + b'","data":"' + b"x" * int(ARG) + b'"}\n')
    elif MODE == "truncated":
        put(b'{"t":"event","run":"' + r + b'","data":1}\n{"t":"done","run":"' + r)
        sys.exit(0)  # then EOF
    elif MODE == "unknown-run":
        send({"t": "done", "run": "r_" + "0" * 32, "output": 1})
    elif MODE == "kv-never-read":
        # 1 MiB into the KV, then asks for it 40 times and never reads an answer.
        send({"t": "kv.set", "req": 1, "key": "big", "value": "x" * ((1 << 20) - 64)})
        for req in range(2, 42):
            send({"t": "kv.get", "req": req, "key": "big"})
    time.sleep(30)  # stay, never reading: the host must end us
'''

COMPANION_RUN_GAP = 0.05  # seconds between two companion runs
HEALTHZ_MAX = 2.0         # seconds a /healthz may take while a hostile agent runs
GONE_WITHIN = 5.0         # seconds for a hostile agent's processes to be gone


def descendants(pid):
    """Every live (not zombie) process below pid, as {pid: comm}."""
    parent, comm = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                line = f.read()
        except OSError:
            continue
        fields = line[line.rfind(")") + 2:].split()
        if fields[0] == "Z":
            continue
        parent[int(entry)] = int(fields[1])
        comm[int(entry)] = line[line.find("(") + 1:line.rfind(")")]
    out, todo = {}, [pid]
    while todo:
        p = todo.pop()
        for child, pp in parent.items():
            if pp == p and child not in out:
                out[child] = comm[child]
                todo.append(child)
    return out


class Companion:
    """A counter session that keeps answering runs (and /healthz keeps answering) from a
    second thread while a hostile agent misbehaves. check() stops it and asserts that the
    daemon and this session came through unharmed."""

    MARKER = {"kept": ["across", "hostile", "agents"], "n": 42}

    def __init__(self, case):
        self.case, self.d = case, case.d
        r = case.req("POST", "/v1/agents/counter/sessions", {})
        case.assertEqual(r.status, 201, "companion session: %r" % r)
        self.sid = r.json()["id"]
        r = case.req("PUT", "/v1/sessions/%s/state/marker" % self.sid, self.MARKER)
        case.assertEqual(r.status, 200, "companion marker: %r" % r)
        self.count = 0
        self.problems = []
        self.runs = 0
        self.slowest_health = 0.0
        self._run_once()
        case.assertEqual(self.problems, [], "the companion failed before the test")
        self.pids = set(descendants(self.d.proc.pid))
        case.assertEqual(len(self.pids), 1, "one companion process: %r" % self.pids)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _run_once(self):
        try:
            r = self.case.req("POST", "/v1/sessions/%s/runs" % self.sid, {"input": None},
                              timeout=15)
            res = r.json() if r.status == 200 else None
            if not res or res.get("status") != "completed" or res.get("output") != self.count + 1:
                self.problems.append("run %d: %r" % (self.count + 1, r))
            else:
                self.count += 1
            t = time.monotonic()
            h = self.d.request("GET", "/healthz", timeout=10)
            took = time.monotonic() - t
            self.slowest_health = max(self.slowest_health, took)
            if h.status != 200:
                self.problems.append("/healthz: %r" % h)
            self.runs += 1
        except Exception as e:  # noqa: BLE001 - every failure is reported by check()
            self.problems.append("after %d runs: %r" % (self.count, e))

    def _loop(self):
        while not self._stop.is_set() and len(self.problems) < 5:
            self._run_once()
            self._stop.wait(COMPANION_RUN_GAP)

    def check(self, min_runs=2):
        """Stops the thread; asserts every run got the next count, KV intact, the session
        ready, /healthz fast, the daemon alive."""
        case = self.case
        self._stop.set()
        self._thread.join(30)
        case.assertFalse(self._thread.is_alive(), "the companion's run hangs")
        case.assertIsNone(self.d.proc.poll(), "the daemon died:\n" + self.d.log())
        case.assertEqual(self.problems, [], "the companion session was harmed")
        self._run_once()  # one more, after the hostile agent is gone
        case.assertEqual(self.problems, [], "the companion session was harmed")
        case.assertGreaterEqual(self.runs, min_runs, "the companion hardly ran")
        r = case.req("GET", "/v1/sessions/%s/state" % self.sid)
        case.assertEqual(r.status, 200, r)
        case.assertEqual(r.json(), {"state": {"count": self.count, "marker": self.MARKER}},
                         "the companion's KV")
        r = case.req("GET", "/v1/sessions/" + self.sid)
        case.assertEqual(r.status, 200, r)
        case.assertEqual(r.json().get("state"), "ready", r)
        case.assertLess(self.slowest_health, HEALTHZ_MAX,
                        "/healthz took %.2f s while the hostile agent ran" % self.slowest_health)
        case.assertEqual(case.d.request("GET", "/healthz").status, 200)


class HostileCase(DaemonTestCase):
    start_daemon = False

    def setUp(self):
        super().setUp()
        for name in ("echo", "counter"):
            example(name)
        self.d = self.new_daemon(manifests=EXAMPLES).start()
        self.token = self.d.admin_token
        m = re.search(r"cgroup memory: (\w+)", self.d.log())
        self.assertIsNotNone(m, "the daemon did not log its sandbox features:\n" + self.d.log())
        self.cgroup_memory = m.group(1) == "yes"
        self.companion = Companion(self)

    # -- HTTP -----------------------------------------------------------------
    def req(self, method, path, body=None, timeout=15, headers=None):
        return self.d.request(method, path, body, token=self.token, timeout=timeout,
                              headers=headers)

    # -- agents ---------------------------------------------------------------
    def install(self, name, entrypoint, probes=(), scripts=None, limits=None, seccomp="default"):
        """Installs agent NAME (modes session and invoke, process isolation) whose folder
        holds the named probes from PROBES and the given scripts {name: text}."""
        dest = os.path.join(self.tmp, "src", name)
        os.makedirs(dest)
        os.chmod(dest, 0o755)
        for probe in probes:
            src = os.path.join(PROBES, probe)
            if not os.access(src, os.X_OK):
                self.fail("hostile probe not built: %s" % src)
            shutil.copy2(src, dest)
        for fname, text in (scripts or {}).items():
            with open(os.path.join(dest, fname), "w") as f:
                f.write(text)
            os.chmod(os.path.join(dest, fname), 0o755)
        manifest = {"manifest_version": 1, "name": name, "version": "1.0.0",
                    "description": "hostile agent " + " ".join(entrypoint),
                    "entrypoint": list(entrypoint), "modes": ["session", "invoke"],
                    "sandbox": {"seccomp": seccomp, "network": False, "limits": limits or {}},
                    "invoke": {"isolation": "process"}}
        with open(os.path.join(dest, "agent.json"), "w") as f:
            json.dump(manifest, f, indent=2)
        r = self.d.install(dest)
        self.assertEqual(r.status, 201, "install of %s failed: %r" % (name, r))
        return name

    def probe(self, name, argv, limits=None, wrapped=True):
        """An agent made of one probe: wrapped, it runs under hs (misbehaves during a run);
        else the probe is the entrypoint itself (misbehaves before ready)."""
        entry = (["./hs"] if wrapped else []) + ["./" + argv[0]] + list(argv[1:])
        return self.install(name, entry, probes=[argv[0]],
                            scripts={"hs": HS} if wrapped else None, limits=limits)

    def raw(self, name, mode, arg=None, limits=None):
        argv = ["/usr/bin/python3", "raw.py", mode] + ([str(arg)] if arg is not None else [])
        return self.install(name, argv, probes=("net", "fs"),
                            scripts={"raw.py": RAW_AGENT}, limits=limits, seccomp="python")

    # -- calls ----------------------------------------------------------------
    def invoke(self, name, input=None, timeout=30):
        t = time.monotonic()
        r = self.req("POST", "/v1/agents/%s/invoke" % name, {"input": input}, timeout=timeout)
        return self.result(r, "invoke %s" % name), time.monotonic() - t

    def result(self, r, what):
        self.assertEqual(r.status, 200, "%s: %r" % (what, r))
        res = r.json()
        self.assertRegex(res.get("id", ""), RUN_ID, res)
        self.assertIn(res.get("status"), ("completed", "failed", "cancelled"), res)
        return res

    def session(self, name):
        r = self.req("POST", "/v1/agents/%s/sessions" % name, {}, timeout=30)
        self.assertEqual(r.status, 201, "session of %s: %r" % (name, r))
        sid = r.json()["id"]
        self.addCleanup(self._destroy, sid)
        return sid

    def _destroy(self, sid):
        if self.d.proc is not None:
            try:
                self.req("DELETE", "/v1/sessions/" + sid, timeout=5)
            except OSError:
                pass  # the test has failed already; the daemon is stopped next

    def session_run(self, sid, input=None, timeout=30):
        t = time.monotonic()
        r = self.req("POST", "/v1/sessions/%s/runs" % sid, {"input": input}, timeout=timeout)
        return self.result(r, "run in %s" % sid), time.monotonic() - t

    def logs(self, sid):
        r = self.req("GET", "/v1/sessions/%s/logs" % sid)
        self.assertEqual(r.status, 200, r)
        return r.body.decode("utf-8", "replace")

    # -- assertions -------------------------------------------------------------
    def assertEnded(self, res, code, what=""):
        """A failed run whose error.code is code and whose message says more."""
        got = (res.get("status"), (res.get("error") or {}).get("code"))
        self.assertEqual(got, ("failed", code),
                         "%s: expected status failed, error.code %s; got %r"
                         % (what, code, res))
        msg = res["error"].get("message") or ""
        self.assertTrue(msg.strip() and msg != code, "message says no more than the code: %r" % res)

    def assertSessionCrashed(self, sid, code):
        """The session is crashed and its log holds session.crashed with this reason."""
        r = self.req("GET", "/v1/sessions/" + sid)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json().get("state"), "crashed", r.json())
        s = SSEStream(self.d, "GET", "/v1/sessions/%s/events" % sid, token=self.token, timeout=5)
        try:
            self.assertEqual(s.status, 200)
            seen = []
            while True:
                try:
                    ev = s.next_event()
                except OSError:
                    ev = None
                if ev is None:
                    self.fail("no session.crashed in the event log: %r" % seen)
                seen.append(ev["data"])
                if ev.get("event") == "session.crashed":
                    err = ev["data"].get("error") or {}
                    self.assertEqual(err.get("code"), code, ev)
                    break
        finally:
            s.close()

    def assertNothingLeft(self):
        """Only the companion's process is left under the daemon."""
        companion = self.companion.pids

        def clean():
            return set(descendants(self.d.proc.pid)) <= companion
        if not wait_until(clean, GONE_WITHIN, 0.05):
            self.fail("hostile processes left under the daemon after %.0f s: %r"
                      % (GONE_WITHIN, {p: c for p, c in descendants(self.d.proc.pid).items()
                                       if p not in companion}))
        self.assertTrue(all(pid_alive(p) for p in companion), "the companion's process died")

    def hostile_both_ways(self, name, code, input=None, max_seconds=None):
        """A stateless call and a session run of agent name, each ending with code. The
        session is crashed afterwards, with that reason in its event log; then the
        companion is checked."""
        res, took = self.invoke(name, input)
        self.assertEnded(res, code, "stateless call of %s" % name)
        if max_seconds:
            self.assertLess(took, max_seconds, "the call took %.1f s" % took)
        sid = self.session(name)
        res, took = self.session_run(sid, input)
        self.assertEnded(res, code, "session run of %s" % name)
        if max_seconds:
            self.assertLess(took, max_seconds, "the run took %.1f s" % took)
        self.assertSessionCrashed(sid, code)
        self.assertNothingLeft()
        self.companion.check()
        return sid


class Resources(HostileCase):
    """Rows 1, 2, 3 and 5."""

    def test_01_fork_bomb(self):
        name = self.probe("fork-wide", ["forkbomb", "wide", "500"], {"processes": 16})
        tree = self.probe("fork-tree", ["forkbomb", "tree"], {"processes": 16})
        # Docs: an agent that ends before answering fails with its end reason; the probe
        # reports its failed fork and exits 0, its sleeping children die with it.
        for agent in (name, tree):
            res, took = self.invoke(agent)
            self.assertEnded(res, "exited", "fork bomb %s" % agent)
            self.assertRegex(res["error"]["message"], r"\bcode 0\b", res)
            self.assertLess(took, 10, "the fork bomb call took %.1f s" % took)
        sid = self.session(name)
        res, _ = self.session_run(sid)
        self.assertEnded(res, "exited", "fork bomb in a session")
        self.assertSessionCrashed(sid, "exited")
        log = self.logs(sid)
        self.assertIn("fork = -1 EAGAIN", log, "the probe's report:\n" + log[-2000:])
        forks = re.search(r"forks succeeded = (\d+)", log)
        self.assertIsNotNone(forks, log[-2000:])
        self.assertLess(int(forks.group(1)), 16, log[-2000:])
        self.assertNothingLeft()
        self.companion.check()

    def test_02_memory_bomb(self):
        name = self.probe("membomb", ["membomb", "4096"], {"memory_mb": 64})
        # Without a memory cgroup (not root) RLIMIT_AS makes mmap fail instead: exited.
        self.hostile_both_ways(name, "oom" if self.cgroup_memory else "exited", max_seconds=15)

    def test_03_cpu_spin(self):
        name = self.probe("spin", ["spin", "cpu"], {"cpu_seconds": 1, "run_timeout_s": 30})
        for _ in range(2):  # the CPU limit's reason was flaky on a busy CPU (fixed in libahsandbox)
            res, took = self.invoke(name)
            self.assertEnded(res, "cpu_limit", "CPU spin")
            self.assertLess(took, 10, "the spin call took %.1f s" % took)
        self.hostile_both_ways(name, "cpu_limit", max_seconds=10)

    def test_03_sleep_forever(self):
        name = self.probe("sleeper", ["spin", "sleep"], {"run_timeout_s": 1})
        res, took = self.invoke(name)
        self.assertEnded(res, "timeout", "sleep forever")
        self.assertTrue(0.9 <= took < 4, "timed out after %.2f s, not about 1 s" % took)
        self.hostile_both_ways(name, "timeout", max_seconds=4)

    def _flood(self, name):
        self.hostile_both_ways(name, "output_limit", max_seconds=10)
        rss = _rss_mb(self.d.proc.pid)
        self.assertLess(rss, 200, "the daemon's RSS grew to %d MiB" % rss)

    def test_05_flood_stdout(self):
        self._flood(self.probe("flood-out", ["flood", "1"], {"output_bytes": 65536}))

    def test_05_flood_stderr(self):
        self._flood(self.probe("flood-err", ["flood", "2"], {"output_bytes": 65536}))

    def test_05_stdout_stderr_are_blocking(self):
        # A flood must meet output_limit, not EAGAIN: the agent's stdout and stderr must be
        # blocking (O_NONBLOCK on the pipe's write end makes a writer faster than the
        # daemon's reads fail with EAGAIN, and the floods above end "exited" at random).
        sid = self.session(self.raw("runner-fds", "runner"))
        res, _ = self.session_run(sid, {"argv": [
            "/bin/sh", "-c", "grep -H flags /proc/$PPID/fdinfo/1 /proc/$PPID/fdinfo/2"]})
        self.assertEqual(res["status"], "completed", res)
        flags = dict(re.findall(r"fdinfo/(\d):flags:\s+(\d+)", res["output"]["out"]))
        self.assertEqual(set(flags), {"1", "2"}, res)
        got = {fd: "O_NONBLOCK" if int(v, 8) & 0o4000 else "blocking" for fd, v in flags.items()}
        self.assertEqual(got, {"1": "blocking", "2": "blocking"},
                         "the agent's stdout/stderr flags (octal) %r" % flags)
        self.companion.check()

    def test_05_flood_protocol(self):
        # Valid event frames as fast as it can: only the output cap can end it.
        self._flood(self.raw("flood-frames", "flood-events", limits={"output_bytes": 65536}))


class MalformedFrames(HostileCase):
    """Row 6: each kind of broken protocol traffic ends that agent alone with
    protocol_error; byte-at-a-time writes of valid frames work. Stateless calls use the
    frames probe (before ready), sessions raw.py (during a run)."""

    def _both(self, probe_argv, raw_mode, raw_arg=None, limits=None, input=None):
        name = self.probe("frames-" + raw_mode, ["frames"] + probe_argv, limits, wrapped=False)
        res, took = self.invoke(name, input)
        self.assertEnded(res, "protocol_error", "frames %s (stateless)" % " ".join(probe_argv))
        self.assertLess(took, 5, "the call took %.1f s (the probe stays 5 s)" % took)
        raw = self.raw("raw-" + raw_mode, raw_mode, raw_arg, limits)
        sid = self.session(raw)
        res, took = self.session_run(sid, input)
        self.assertEnded(res, "protocol_error", "raw.py %s (session run)" % raw_mode)
        self.assertLess(took, 5, "the run took %.1f s" % took)
        self.assertSessionCrashed(sid, "protocol_error")
        self.assertNothingLeft()
        self.companion.check()
        return res

    def test_06_invalid_json(self):
        res = self._both(["invalid-json"], "invalid-json")
        self.assertIn("json", res["error"]["message"].lower(), res)

    def test_06_invalid_utf8(self):
        self._both(["invalid-utf8"], "invalid-utf8")

    def test_06_line_over_the_cap(self):
        # SANDBOX-CHECKLIST row 6 and docs/protocol.md: a frame over the cap (output_bytes)
        # is a protocol error "as soon as" the line passes it. (docs/http.md's output_limit,
        # "more than output_bytes on its socket, stdout and stderr together during the
        # run", is reached by the same bytes; the checklist names protocol_error.)
        self._both(["long-line", "200000"], "long-line", 200000, {"output_bytes": 65536})

    def test_06_truncated_frame_then_eof(self):
        self._both(["truncated"], "truncated")

    def test_06_unknown_run(self):
        self._both(["unknown-run"], "unknown-run")

    def test_06_never_reads_a_big_input(self):
        # The agent says ready and never reads fd 3 again while the host has a run frame
        # of about 1.9 MB for it (under the default --max-body of 2 MiB). The checklist:
        # "never reading its input -> protocol_error for that agent only; the daemon never
        # blocks". run_timeout_s 3 bounds the wait either way.
        big = "x" * (1900 * 1024)
        name = self.probe("frames-never-read", ["frames", "never-read"], {"run_timeout_s": 3},
                          wrapped=False)
        res, _ = self.invoke(name, big)
        self.assertEnded(res, "protocol_error", "frames never-read, 1.9 MB input (stateless)")
        raw = self.raw("raw-never-read", "never-read", limits={"run_timeout_s": 3})
        sid = self.session(raw)
        res, _ = self.session_run(sid, big)
        self.assertEnded(res, "protocol_error", "raw.py never-read, 1.9 MB input (session)")
        self.assertSessionCrashed(sid, "protocol_error")
        self.assertNothingLeft()
        self.companion.check()

    def test_06_never_reads_its_kv_answers(self):
        # 40 answers of 1 MiB each pile up unread: past the host's queue cap (16 MiB).
        raw = self.raw("raw-kv-never-read", "kv-never-read", limits={"run_timeout_s": 20})
        sid = self.session(raw)
        res, took = self.session_run(sid)
        self.assertEnded(res, "protocol_error", "raw.py kv-never-read (session)")
        self.assertLess(took, 10, "the run took %.1f s" % took)
        self.assertSessionCrashed(sid, "protocol_error")
        self.assertNothingLeft()
        self.companion.check()

    def test_06_byte_at_a_time_works(self):
        name = self.raw("bytewise", "bytewise")
        res, _ = self.invoke(name, {"hello": "world"})
        self.assertEqual((res["status"], res.get("output")), ("completed", {"hello": "world"}), res)
        sid = self.session(name)
        for i in range(2):
            res, _ = self.session_run(sid, [i, "bytes"])
            self.assertEqual((res["status"], res.get("output")), ("completed", [i, "bytes"]), res)
        r = self.req("GET", "/v1/sessions/" + sid)
        self.assertEqual(r.json().get("state"), "ready", r.json())
        self.companion.check()


class Violations(HostileCase):
    """Rows 7, 12, 17 and 22: a denied syscall kills the agent: sandbox_violation."""

    def test_07_socket_af_inet(self):
        self.hostile_both_ways(self.probe("inet", ["net", "inet-tcp"]), "sandbox_violation")

    def test_12_io_uring(self):
        self.hostile_both_ways(self.probe("uring", ["try-syscall", "io_uring_setup"]),
                               "sandbox_violation")

    def test_17_ptrace(self):
        self.hostile_both_ways(self.probe("ptrace", ["try-syscall", "ptrace"]),
                               "sandbox_violation")

    def test_22_int80(self):
        self.hostile_both_ways(self.probe("int80", ["abi32", "int80-main"]), "sandbox_violation")


class Reach(HostileCase):
    """Rows 8 and 13: what the agent reaches, reported by the agent itself (raw.py runner
    runs the probe in its sandbox and returns its lines)."""

    def run_inside(self, sid, argv):
        res, _ = self.session_run(sid, {"argv": argv})
        self.assertEqual(res["status"], "completed", res)
        return res["output"]

    def test_08_connect_to_the_daemon_port(self):
        sid = self.session(self.raw("runner-net", "runner"))
        out = self.run_inside(sid, ["/agent/net", "connect-tcp", str(self.d.port)])
        # socket(AF_INET) is outside the profile: the probe dies of SIGSYS before connect.
        self.assertEqual(out["rc"], -31, "the probe was not killed by SIGSYS: %r" % out)
        self.assertNotIn("connect(127.0.0.1) = 0", out["out"], out)
        # The runner itself lives on and answers the next run.
        out = self.run_inside(sid, ["/usr/bin/true"])
        self.assertEqual(out["rc"], 0, out)
        # As the agent itself (stateless call): sandbox_violation.
        name = self.probe("connect-daemon", ["net", "connect-tcp", str(self.d.port)])
        res, _ = self.invoke(name)
        self.assertEnded(res, "sandbox_violation", "connect to the daemon's port")
        self.assertEqual(self.req("DELETE", "/v1/sessions/" + sid).status, 204)
        self.assertNothingLeft()
        self.companion.check()

    def test_13_daemon_files(self):
        sid = self.session(self.raw("runner-fs", "runner"))
        state = self.d.state_dir
        paths = [os.path.join(state, "agenthost.db"), self.d.token_path, state,
                 "/proc/%d/root%s" % (self.d.proc.pid, os.path.join(state, "agenthost.db")),
                 "/proc/%d/environ" % self.d.proc.pid]
        for p in paths:
            self.assertTrue(os.path.exists(p), "the host has %s" % p)
        got = {}
        for p in paths:
            out = self.run_inside(sid, ["/agent/fs", "read", p])
            m = re.search(r"^open\(.*\) = (.*)$", out["out"], re.M)
            got[p] = m.group(1) if m else out
        want = {p: "-1 ENOENT or -1 EACCES" for p in paths}
        self.assertEqual({p: ("-1 ENOENT or -1 EACCES" if v in ("-1 ENOENT", "-1 EACCES") else v)
                          for p, v in got.items()}, want)
        self.companion.check()


def _rss_mb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    return 0


if __name__ == "__main__":
    main()
