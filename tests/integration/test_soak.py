"""Hardening (issue 7, item 5): the soak. Mixed traffic for SOAK_SECONDS (60 in CI,
integration.soak_short; 600 under the "soak" label, soak.long): session creates (echo,
counter, and an echo that hibernates after 1 s idle), runs over plain HTTP, SSE and
WebSocket, event-log reads, KV writes/reads/deletes, stateless calls (JSON and SSE),
hibernations and resumes, destroys. Every answer is checked as it comes; none may fail.

Leak check: the daemon's VmRSS and open fd count are measured (1) before any traffic,
(2) after a warm-up of WARMUP_S of the same traffic, with everything destroyed and the
daemon idle for IDLE_S, and (3) the same way after the soak. The soak must end within
+4 MiB RSS and +5 fds of (2). The baseline is (2), not (1): the first traffic fills caches
that stay by design and do not grow with traffic (SQLite's page cache, default 2000 KiB;
the catalog of agents; libwebsockets' per-thread buffers; malloc's arenas). The slack:
4 MiB is about twice SQLite's page-cache bound (the cache may not be full after the
warm-up) plus allocator fragmentation; 5 fds covers connections the clients just closed
that the daemon has not yet seen close, and descriptors opened lazily once (a second
SQLite handle, /dev/kmsg for seccomp audit records). A leak of one fd or a few hundred
bytes per session, run or connection would pass these bounds many times over in a soak
of thousands of them. And the daemon log has no level=error line.

Oracle: issue 7 item 5, DESIGN.md §5-§6, docs/http.md, docs/websocket.md."""

import asyncio
import http.client
import json
import os
import random
import re
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_sessions as ts  # noqa: E402
from harness import SSEStream, agent_variant, daemon_metrics, example, main, metric  # noqa: E402

try:
    import websockets
    import websockets.exceptions
except ImportError:  # a missing client is a failure, not a skip
    raise SystemExit("python3-websockets is missing: apt-get install python3-websockets "
                     "(and run the tests with /usr/bin/python3)")

SOAK_S = float(os.environ.get("SOAK_SECONDS", "60"))
WARMUP_S = float(os.environ.get("SOAK_WARMUP_SECONDS", "8"))
IDLE_S = 3.0
WORKERS = 4
POOL_MAX = 24
RSS_SLACK_KB = 4 * 1024
FD_SLACK = 5
AGENTS = ("echo", "counter", "echo-hib")
# action: weight
MIX = {"create": 8, "destroy": 6, "run_http": 16, "run_sse": 12, "run_ws": 12, "events": 8,
       "kv": 10, "invoke": 8, "invoke_sse": 4, "hibernated": 4}


def vm_rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


class Traffic:
    """The mixed traffic: WORKERS threads drawing actions from MIX on a shared pool of
    sessions (each session used by one worker at a time)."""

    def __init__(self, case):
        self.case, self.d, self.token = case, case.d, case.token
        self.pool = []          # [sid, agent, last_used, parked_until] not in use
        self.lock = threading.Lock()
        self.counts = {k: 0 for k in MIX}
        self.extra = {"resumed": 0, "hibernated_seen": 0, "events_read": 0, "sessions_created": 0}
        self.failures = []

    def fail(self, what):
        with self.lock:
            if len(self.failures) < 50:
                self.failures.append(what)

    # -- sessions -----------------------------------------------------------------------------
    def take(self, want=None):
        """A session from the pool (want: a filter; by default any that is not parked)."""
        now = time.monotonic()
        with self.lock:
            cands = [i for i, s in enumerate(self.pool)
                     if (want(s) if want else s[3] <= now)]
            if not cands:
                return None
            return self.pool.pop(random.choice(cands))

    def give(self, s):
        """Back to the pool. Half of the hibernating sessions are parked for 2.5 s, long
        enough to hibernate (hibernate_after_s 1, checked every second)."""
        s[2] = time.monotonic()
        if s[1] == "echo-hib" and random.random() < 0.5:
            s[3] = s[2] + 2.5
        with self.lock:
            self.pool.append(s)

    def req(self, method, path, body=None, headers=None, timeout=30):
        return self.d.request(method, path, body, token=self.token, headers=headers, timeout=timeout)

    def create(self):
        agent = random.choice(AGENTS)
        r = self.req("POST", "/v1/agents/%s/sessions" % agent, {})
        if r.status != 201:
            return self.fail("create %s: %r" % (agent, r))
        with self.lock:
            self.extra["sessions_created"] += 1
        self.give([r.json()["id"], agent, 0, 0])

    def destroy(self, s):
        r = self.req("DELETE", "/v1/sessions/" + s[0])
        if r.status != 204:
            self.fail("destroy %s: %r" % (s[0], r))

    def check_output(self, s, text, out):
        if s[1] == "counter":
            if not isinstance(out, int) or out < 1:
                self.fail("counter %s answered %r" % (s[0], out))
        elif out != text:
            self.fail("echo %s answered %r for %r" % (s[0], out, text))

    # -- actions ------------------------------------------------------------------------------
    def act(self, action):
        if action == "create":
            with self.lock:
                full = len(self.pool) >= POOL_MAX
            if full:
                s = self.take()
                if s:
                    self.destroy(s)
            return self.create()
        if action in ("invoke", "invoke_sse"):
            return self.invoke(action == "invoke_sse")
        if action == "hibernated":
            s = self.take(lambda s: s[1] == "echo-hib" and time.monotonic() - s[2] > 2.5)
            if s is not None:
                s[3] = 0
            if s is None:
                return
            try:
                st = self.req("GET", "/v1/sessions/" + s[0])
                if st.status != 200:
                    return self.fail("get %s: %r" % (s[0], st))
                if st.json()["state"] == "hibernated":
                    with self.lock:
                        self.extra["hibernated_seen"] += 1
                return self.run_http(s, expect_resume=st.json()["state"] == "hibernated")
            finally:
                self.give(s)
        s = self.take()
        if s is None:
            return self.create()
        if action == "destroy":
            with self.lock:
                few = len(self.pool) < 4
            if few:
                return self.give(s)
            return self.destroy(s)
        try:
            getattr(self, action)(s)
        finally:
            self.give(s)

    def run_http(self, s, expect_resume=False):
        text = "soak %d words here" % random.randrange(10 ** 6)
        before = None
        if expect_resume:
            before = self.req("GET", "/v1/sessions/" + s[0]).json().get("last_seq", 0)
        r = self.req("POST", "/v1/sessions/%s/runs" % s[0], {"input": text})
        if r.status != 200 or r.json().get("status") != "completed":
            return self.fail("run %s (%s): %r" % (s[0], s[1], r))
        self.check_output(s, text, r.json()["output"])
        if expect_resume:
            ev = self.read_events(s, before, limit=1)
            if not ev or ev[0]["type"] != "session.resumed":
                return self.fail("a hibernated session's run did not resume first: %r" % ev)
            with self.lock:
                self.extra["resumed"] += 1

    def run_sse(self, s):
        text = "sse %d" % random.randrange(10 ** 6)
        st = SSEStream(self.d, "POST", "/v1/sessions/%s/runs" % s[0], {"input": text},
                       token=self.token, timeout=30)
        try:
            if st.status != 200:
                return self.fail("SSE run %s: HTTP %d" % (s[0], st.status))
            evs = st.events()
        finally:
            st.close()
        if not evs or evs[-1]["event"] != "run.completed":
            return self.fail("SSE run %s ended %r" % (s[0], evs[-1:] if evs else evs))
        self.check_output(s, text, evs[-1]["data"]["output"])

    def run_ws(self, s):
        text = "ws %d" % random.randrange(10 ** 6)
        try:
            out = asyncio.run(asyncio.wait_for(self.ws_run(s[0], text), 30))
        except Exception as e:  # noqa: BLE001 - reported
            return self.fail("WS run %s: %s: %s" % (s[0], type(e).__name__, e))
        self.check_output(s, text, out)

    async def ws_run(self, sid, text):
        url = "ws://127.0.0.1:%d/v1/sessions/%s/ws?access_token=%s" % (self.d.port, sid, self.token)
        async with websockets.connect(url, subprotocols=["agenthost.v1"], open_timeout=10,
                                      close_timeout=3, ping_interval=None, max_size=None) as ws:
            ref = "ref-%d" % random.randrange(10 ** 9)
            await ws.send(json.dumps({"type": "run", "input": text, "ref": ref}))
            run = None
            while True:
                msg = json.loads(await ws.recv())
                if msg.get("type") == "error":
                    raise AssertionError("error message %r" % msg)
                if msg.get("type") == "run.started" and msg.get("ref") == ref:
                    run = msg["run"]
                if run and msg.get("run") == run and msg["type"] in ts.TERMINAL:
                    if msg["type"] != "run.completed":
                        raise AssertionError("run ended %r" % msg)
                    return msg["output"]

    def read_events(self, s, after, limit=None):
        """Events after `after` up to the session's last_seq, checked contiguous."""
        r = self.req("GET", "/v1/sessions/" + s[0])
        if r.status != 200:
            self.fail("get %s: %r" % (s[0], r))
            return []
        last = r.json()["last_seq"]
        if last <= after:
            return []
        st = SSEStream(self.d, "GET", "/v1/sessions/%s/events?after=%d" % (s[0], after),
                       token=self.token, timeout=15)
        out = []
        try:
            while True:
                ev = st.next_event()
                if ev is None:
                    self.fail("events of %s ended at %d before %d" % (s[0], after + len(out), last))
                    return out
                out.append(ev["data"])
                if ev["data"]["seq"] >= last or (limit and len(out) >= limit):
                    break
        finally:
            st.close()
        seqs = [e["seq"] for e in out]
        if seqs != list(range(after + 1, after + 1 + len(out))):
            self.fail("events of %s after %d: seqs %s" % (s[0], after, seqs[:20]))
        with self.lock:
            self.extra["events_read"] += len(out)
        return out

    def events(self, s):
        r = self.req("GET", "/v1/sessions/" + s[0])
        last = r.json()["last_seq"] if r.status == 200 else 0
        self.read_events(s, max(0, last - random.randrange(1, 12)))

    def kv(self, s):
        key = "k%d" % random.randrange(8)
        value = {"n": random.randrange(10 ** 6), "pad": "v" * random.randrange(2000)}
        base = "/v1/sessions/%s/state/%s" % (s[0], key)
        r = self.req("PUT", base, value)
        if r.status != 200:
            return self.fail("PUT %s: %r" % (base, r))
        r = self.req("GET", base)
        if r.status != 200 or r.json() != {"key": key, "value": value}:
            return self.fail("GET %s: %r" % (base, r))
        if random.random() < 0.5:
            r = self.req("DELETE", base)
            if r.status != 204:
                return self.fail("DELETE %s: %r" % (base, r))

    def invoke(self, sse):
        text = "call %d" % random.randrange(10 ** 6)
        if sse:
            st = SSEStream(self.d, "POST", "/v1/agents/echo/invoke", {"input": text},
                           token=self.token, timeout=30)
            try:
                evs = st.events() if st.status == 200 else []
            finally:
                st.close()
            if not evs or evs[-1]["event"] != "run.completed" or evs[-1]["data"]["output"] != text:
                self.fail("SSE invoke: HTTP %d %r" % (st.status, evs[-1:]))
            return
        r = self.req("POST", "/v1/agents/echo/invoke", {"input": text})
        if r.status != 200 or r.json().get("output") != text:
            self.fail("invoke: %r" % r)

    # -- driving ------------------------------------------------------------------------------
    def worker(self, until):
        actions, weights = zip(*MIX.items())
        while time.monotonic() < until:
            action = random.choices(actions, weights)[0]
            try:
                self.act(action)
            except Exception as e:  # noqa: BLE001 - every error is a failure of the soak
                self.fail("%s: %s: %s" % (action, type(e).__name__, e))
            with self.lock:
                self.counts[action] += 1

    def run_for(self, seconds):
        until = time.monotonic() + seconds
        threads = [threading.Thread(target=self.worker, args=(until,), daemon=True)
                   for _ in range(WORKERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(seconds + 60)
            if t.is_alive():
                raise AssertionError("a soak worker hangs")

    def destroy_all(self):
        with self.lock:
            pool, self.pool = self.pool, []
        for s in pool:
            self.destroy(s)


class Soak(ts.SessionCase):

    def setUp(self):
        super().setUp()
        signal.alarm(int(SOAK_S + WARMUP_S + 120))

    def settle(self):
        """Everything destroyed: wait until no agent process and no WebSocket is left, then
        IDLE_S more. Returns (VmRSS KiB, fds)."""
        pid = self.d.proc.pid
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            m = daemon_metrics(self.d)
            if metric(m, "agenthost_agent_processes") == 0 and metric(m, "agenthost_ws_connections") == 0:
                break
            time.sleep(0.1)
        else:
            self.fail("agents or WebSockets still open 15 s after everything was destroyed: %s"
                      % [l for l in daemon_metrics(self.d).splitlines()
                         if "agent_processes" in l or "ws_connections" in l])
        listed = self.req("GET", "/v1/sessions?all=true").json()["sessions"]
        self.assertEqual(listed, [], "sessions left after destroying everything")
        time.sleep(IDLE_S)
        return vm_rss_kb(pid), fd_count(pid)

    def test_mixed_traffic_leaves_no_leak(self):
        src = agent_variant(example("echo"), os.path.join(self.tmp, "src", "echo-hib"),
                            {"name": "echo-hib", "session": {"hibernate_after_s": 1}})
        self.assertStatus(self.d.install(src), 201)
        cold = self.settle()

        warm = Traffic(self)
        warm.run_for(WARMUP_S)
        warm.destroy_all()
        self.assertEqual(warm.failures, [], "failures during the warm-up")
        base = self.settle()

        t0 = time.monotonic()
        traffic = Traffic(self)
        traffic.run_for(SOAK_S)
        took = time.monotonic() - t0
        traffic.destroy_all()
        end = self.settle()

        with open(self.d.log_path, errors="replace") as f:
            errors = [line for line in f if "level=error" in line]
        sys.stderr.write(
            "soak: %.0f s of mixed traffic (%d workers): %s; %s\n"
            "  daemon VmRSS / fds: cold %d KiB / %d, after warm-up (%.0f s) %d KiB / %d, after the "
            "soak %d KiB / %d (%+d KiB, %+d fds; allowed +%d KiB, +%d)\n"
            % (took, WORKERS, json.dumps(traffic.counts), json.dumps(traffic.extra), cold[0], cold[1],
               WARMUP_S, base[0], base[1], end[0], end[1], end[0] - base[0], end[1] - base[1],
               RSS_SLACK_KB, FD_SLACK))
        self.assertEqual(traffic.failures, [], "requests failed during the soak")
        for action, n in traffic.counts.items():
            self.assertGreater(n, 0, "the soak never did %s" % action)
        for what in ("resumed", "hibernated_seen"):
            self.assertGreater(traffic.extra[what], 0, "the soak saw no %s session" % what)
        self.assertLessEqual(end[0] - base[0], RSS_SLACK_KB, "the daemon's RSS grew: a leak")
        self.assertLessEqual(end[1] - base[1], FD_SLACK, "the daemon holds more fds: a leak")
        self.assertEqual(errors, [], "the daemon logged errors")


if __name__ == "__main__":
    main()
