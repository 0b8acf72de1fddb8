"""WebSocket sessions, GET /v1/sessions/{id}/ws (docs/websocket.md is the oracle), driven by
Debian's python3-websockets as an independent client against the real agenthostd with the
example agents (echo, slow) from BUILD/examples.

The first part holds the pieces test_websocket_load.py reuses: a daemon with the examples,
sessions over HTTP, a thin asyncio client and the event checks.
Run with /usr/bin/python3 (Debian's interpreter, where python3-websockets lives).
"""

import asyncio
import base64
import http.client
import json
import os
import re
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import RFC3339_MS, DaemonTestCase, metric  # noqa: E402

try:
    import websockets
    import websockets.exceptions
except ImportError:  # pragma: no cover - a missing client is a failure, not a skip
    raise SystemExit("python3-websockets is missing: apt-get install python3-websockets "
                     "(and run the tests with /usr/bin/python3)")

# BUILD/examples (ctest passes it): echo and slow are used here.
EXAMPLES = os.environ.get("EXAMPLES", os.path.join(harness.SOURCE_ROOT, "build", "examples"))

SUBPROTOCOL = "agenthost.v1"
QUEUE_LIMIT = 4 * 1024 * 1024        # docs/websocket.md "Slow clients"
DEFAULT_MAX_BODY = 2 * 1024 * 1024   # agenthostd --help: --max-body default
RUN_ID = re.compile(r"^r_[0-9a-f]{32}$")
EVENT_TYPES = {"run.started", "run.output", "run.completed", "run.failed", "run.cancelled",
               "session.crashed", "session.hibernated", "session.resumed"}
EVENT_KEYS = {"seq", "type", "run", "time", "data", "output", "error", "ref", "reason"}


def ws_connections(d):
    """The daemon's agenthost_ws_connections gauge (docs: /metrics)."""
    r = d.request("GET", "/metrics")
    if r.status != 200:
        raise AssertionError("GET /metrics answered %r" % r)
    return metric(r.body.decode("utf-8"), "agenthost_ws_connections")


class Client:
    """One WebSocket connection: JSON in and out, every received message kept in .got."""

    def __init__(self, ws, name="client"):
        self.ws = ws
        self.name = name
        self.got = []

    async def send(self, msg):
        await self.ws.send(msg if isinstance(msg, (str, bytes)) else json.dumps(msg))

    async def recv(self, timeout=10.0):
        """The next message, parsed; fails on a binary frame, non-JSON or a timeout."""
        try:
            raw = await asyncio.wait_for(self.ws.recv(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError("%s: no message within %.1f s (last ones: %s)"
                                 % (self.name, timeout, brief(self.got[-5:])))
        if isinstance(raw, bytes):
            raise AssertionError("%s: the server sent a binary frame: %r" % (self.name, raw[:100]))
        try:
            msg = json.loads(raw)
        except ValueError as e:
            raise AssertionError("%s: the server sent a non-JSON text frame (%s): %r"
                                 % (self.name, e, raw[:300]))
        if not isinstance(msg, dict):
            raise AssertionError("%s: a message is not a JSON object: %r" % (self.name, raw[:300]))
        self.got.append(msg)
        return msg

    async def recv_until(self, pred, timeout=10.0):
        """Messages up to and including the first one for which pred is true."""
        deadline = time.monotonic() + timeout
        out = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("%s: the awaited message did not come within %.1f s; got %s"
                                     % (self.name, timeout, brief(out[-8:])))
            msg = await self.recv(left)
            out.append(msg)
            if pred(msg):
                return out

    async def collect_idle(self, idle=0.6, timeout=15.0):
        """Every message until none arrives for idle seconds (bounded by timeout)."""
        deadline = time.monotonic() + timeout
        out = []
        while time.monotonic() < deadline:
            try:
                raw = await asyncio.wait_for(self.ws.recv(), min(idle, max(0.01, deadline - time.monotonic())))
            except asyncio.TimeoutError:
                return out
            if isinstance(raw, bytes):
                raise AssertionError("%s: the server sent a binary frame" % self.name)
            msg = json.loads(raw)
            self.got.append(msg)
            out.append(msg)
        raise AssertionError("%s: messages kept coming for %.0f s" % (self.name, timeout))

    async def ping(self, timeout=5.0):
        """Sends {"type": "ping"} and asserts that the very next message is the pong."""
        await self.send({"type": "ping"})
        msg = await self.recv(timeout)
        if msg != {"type": "pong"}:
            raise AssertionError("%s: expected {\"type\": \"pong\"} after a ping, got %r"
                                 % (self.name, msg))

    async def closed(self, timeout=10.0):
        """Waits until the server closes; returns (close code, messages received meanwhile)."""
        out = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("%s: the connection was not closed within %.1f s (got %s)"
                                     % (self.name, timeout, brief(out[-5:])))
            try:
                raw = await asyncio.wait_for(self.ws.recv(), left)
            except asyncio.TimeoutError:
                continue
            except websockets.exceptions.ConnectionClosed:
                return self.ws.close_code, out
            msg = json.loads(raw) if isinstance(raw, str) else raw
            self.got.append(msg)
            out.append(msg)

    def abort(self):
        """Kills the TCP connection at once (no close frame): a dropped network."""
        self.ws.transport.abort()

    async def close(self):
        try:
            await asyncio.wait_for(self.ws.close(), 5)
        except Exception:
            self.abort()


def brief(msgs, limit=300):
    text = json.dumps(msgs)
    return text if len(text) <= limit else text[:limit] + "..."


def seqs(msgs):
    return [m["seq"] for m in msgs if "seq" in m]


class WSTestCase(DaemonTestCase):
    """A daemon started with --manifests EXAMPLES and extra daemon_args; self.token is the
    admin token. test_timeout bounds the whole test (SIGALRM)."""

    start_daemon = False
    daemon_args = ()
    test_timeout = 60

    def setUp(self):
        super().setUp()
        signal.alarm(self.test_timeout)
        for name in ("echo", "slow"):
            if not os.path.isfile(os.path.join(EXAMPLES, name, "agent.json")):
                raise AssertionError("built example agent missing (build first): %s/%s"
                                     % (EXAMPLES, name))
        self.d = self.new_daemon(manifests=EXAMPLES, extra_args=self.daemon_args).start()
        self.token = self.d.admin_token

    # -- HTTP -----------------------------------------------------------------
    def new_session(self, agent="echo", token=None):
        """POST /v1/agents/AGENT/sessions; returns the session id. The body is {} (docs:
        the body is optional)."""
        r = self.d.request("POST", "/v1/agents/%s/sessions" % agent, {},
                           token=token or self.token, timeout=30)
        self.assertEqual(r.status, 201, "session create: %r" % r)
        sid = r.json().get("id")
        self.assertRegex(sid or "", r"^s_[0-9a-f]{36}$", r)
        return sid

    def session_info(self, sid, token=None):
        r = self.d.request("GET", "/v1/sessions/" + sid, token=token or self.token)
        self.assertEqual(r.status, 200, r)
        return r.json()

    def http_run(self, sid, run_input, token=None, timeout=30):
        r = self.d.request("POST", "/v1/sessions/%s/runs" % sid, {"input": run_input},
                           token=token or self.token, timeout=timeout)
        self.assertEqual(r.status, 200, "HTTP run: %r" % r)
        return r.json()

    def get_run(self, sid, run_id):
        r = self.d.request("GET", "/v1/sessions/%s/runs/%s" % (sid, run_id), token=self.token)
        self.assertEqual(r.status, 200, r)
        return r.json()

    # -- WebSocket ------------------------------------------------------------
    def ws_url(self, sid, token=True):
        url = "ws://127.0.0.1:%d/v1/sessions/%s/ws" % (self.d.port, sid)
        if token:
            url += "?access_token=" + (self.token if token is True else token)
        return url

    async def connect(self, sid, token=True, name="client", headers=None, subprotocols=(SUBPROTOCOL,),
                      **kw):
        """Connects with ?access_token= (token True: the admin token; False: none)."""
        opts = dict(subprotocols=list(subprotocols) if subprotocols else None,
                    extra_headers=headers, open_timeout=10, close_timeout=3,
                    ping_interval=None, max_size=None)
        opts.update(kw)
        ws = await websockets.connect(self.ws_url(sid, token), **opts)
        self._open_ws.append(ws)
        if subprotocols:
            self.assertEqual(ws.subprotocol, SUBPROTOCOL, "negotiated subprotocol")
        return Client(ws, name)

    def run_async(self, coro, timeout=None):
        """Runs coro to the end in a fresh event loop, bounded by timeout seconds. Every
        connection it opened is dropped at the end, whatever happened."""
        self._open_ws = []

        async def guarded():
            try:
                return await asyncio.wait_for(coro, timeout or self.test_timeout - 5)
            finally:
                for ws in self._open_ws:
                    if ws.transport is not None and not ws.transport.is_closing():
                        ws.transport.abort()
                await asyncio.sleep(0)

        return asyncio.run(guarded())

    async def in_thread(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    # -- checks ---------------------------------------------------------------
    def assertEvent(self, ev, type_=None, run=None):
        """One session event as docs/websocket.md describes it."""
        self.assertIsInstance(ev.get("seq"), int, ev)
        self.assertGreaterEqual(ev["seq"], 1, ev)
        self.assertIn(ev.get("type"), EVENT_TYPES, ev)
        if type_:
            self.assertEqual(ev["type"], type_, ev)
        self.assertRegex(ev.get("time", ""), RFC3339_MS, ev)
        self.assertTrue(set(ev) <= EVENT_KEYS, "unexpected keys in event %r" % ev)
        if ev["type"].startswith("run."):
            self.assertRegex(ev.get("run", ""), RUN_ID, ev)
        if run is not None:
            self.assertEqual(ev.get("run"), run, ev)
        if ev["type"] in ("run.failed", "run.cancelled"):
            err = ev.get("error")
            self.assertIsInstance(err, dict, ev)
            self.assertEqual(set(err), {"code", "message"}, ev)
        return ev

    def assertErrorMsg(self, msg, code, ref=None):
        """{"type": "error", "error": {"code", "message"}} (and "ref" when given)."""
        self.assertEqual(msg.get("type"), "error", "expected an error message, got %r" % msg)
        err = msg.get("error")
        self.assertIsInstance(err, dict, msg)
        self.assertEqual(set(err), {"code", "message"}, msg)
        self.assertEqual(err["code"], code, msg)
        self.assertIsInstance(err["message"], str, msg)
        self.assertTrue(err["message"].strip(), msg)
        allowed = {"type", "error"} | ({"ref"} if ref is not None else set())
        self.assertEqual(set(msg), allowed, msg)
        if ref is not None:
            self.assertEqual(msg.get("ref"), ref, msg)
        return err["message"]

    def assertEchoRun(self, events, text, ref=None):
        """The events of one echo run, in order: run.started (with ref), one run.output
        {"word": w} per word, run.completed with the input; seqs one apart. Returns the
        run id."""
        words = text.split()
        self.assertEqual(len(events), len(words) + 2,
                         "expected %d events, got %s" % (len(words) + 2, brief(events, 2000)))
        run = events[0].get("run")
        self.assertEvent(events[0], "run.started", run)
        if ref is not None:
            self.assertEqual(events[0].get("ref"), ref, "run.started must echo the ref: %r" % events[0])
        for ev, w in zip(events[1:-1], words):
            self.assertEvent(ev, "run.output", run)
            self.assertEqual(ev.get("data"), {"word": w}, ev)
        self.assertEvent(events[-1], "run.completed", run)
        self.assertIn("output", events[-1])
        self.assertEqual(events[-1]["output"], text, "run.completed output")
        s = seqs(events)
        self.assertEqual(s, list(range(s[0], s[0] + len(events))), "seqs must increase by 1: %s" % s)
        return run


# ==== the tests =============================================================================

def raw_upgrade(d, path, headers=None, upgrade=True):
    """A hand-written upgrade request (http.client): returns the harness Response. A refused
    upgrade is a plain HTTP answer; an accepted one would be 101."""
    hdrs = {}
    if upgrade:
        hdrs.update({"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                     "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
                     "Sec-WebSocket-Protocol": SUBPROTOCOL})
    hdrs.update(headers or {})
    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=10)
    try:
        conn.request("GET", path, headers=hdrs)
        r = conn.getresponse()
        body = r.read() if r.status != 101 else b""
        return harness.Response(r.status, r.reason, r.getheaders(), body)
    finally:
        conn.close()


class FullRunAndCancel(WSTestCase):

    def test_full_run_over_websocket(self):
        sid = self.new_session("echo")
        text = "alpha beta gamma delta"

        async def body():
            c = await self.connect(sid)
            await c.send({"type": "run", "input": text, "ref": "first-run"})
            evs = await c.recv_until(lambda m: m.get("type") == "run.completed")
            run = self.assertEchoRun(evs, text, ref="first-run")
            self.assertEqual(seqs(evs), list(range(1, 7)), "a fresh session's events start at seq 1")
            # ref only on run.started
            self.assertTrue(all("ref" not in e for e in evs[1:]), evs)
            # a second run on the same connection continues the seqs
            await c.send({"type": "run", "input": "x y", "ref": "second"})
            evs2 = await c.recv_until(lambda m: m.get("type") == "run.completed")
            run2 = self.assertEchoRun(evs2, "x y", ref="second")
            self.assertNotEqual(run, run2)
            self.assertEqual(seqs(evs2), [7, 8, 9, 10])
            # a run without ref, and a non-string input (no words: started, completed)
            await c.send({"type": "run", "input": {"k": [1, 2]}})
            evs3 = await c.recv_until(lambda m: m.get("type") == "run.completed")
            self.assertEqual([e["type"] for e in evs3], ["run.started", "run.completed"], evs3)
            self.assertNotIn("ref", evs3[0])
            self.assertEqual(evs3[1].get("output"), {"k": [1, 2]})
            await c.ping()
            await c.close()
            return run

        run = self.run_async(body())
        res = self.get_run(sid, run)
        self.assertEqual(res.get("status"), "completed", res)
        self.assertEqual(res.get("output"), text, res)
        self.assertEqual(self.session_info(sid).get("last_seq"), 12)

    def test_run_with_a_large_input(self):
        # A run message near --max-body (2 MiB) is served like any other: a 1.5 MB input
        # of 150 words streams 150 events and completes with the input.
        sid = self.new_session("echo")
        text = " ".join(["%03d" % i + "q" * 9996 for i in range(150)])

        async def body():
            c = await self.connect(sid)
            t0 = time.monotonic()
            await c.send({"type": "run", "input": text, "ref": "big"})
            evs = await c.recv_until(lambda m: m.get("type") in ("run.completed", "run.failed"),
                                     timeout=15)
            self.assertEqual(evs[-1].get("type"), "run.completed",
                             "a %d-byte input: %s" % (len(text), brief(evs[-1:])))
            self.assertEchoRun(evs, text, ref="big")
            self.assertLess(time.monotonic() - t0, 10)
            await c.close()

        self.run_async(body())

    def test_fragmented_message_is_one_message(self):
        # A message split over continuation frames is reassembled (RFC 6455 5.4).
        sid = self.new_session("echo")

        async def body():
            c = await self.connect(sid)
            whole = json.dumps({"type": "run", "input": "frag mented", "ref": "f"})
            await c.ws.send([whole[:7], whole[7:20], whole[20:]])
            evs = await c.recv_until(lambda m: m.get("type") == "run.completed")
            self.assertEchoRun(evs, "frag mented", ref="f")
            await c.close()

        self.run_async(body())

    def test_cancel_over_websocket(self):
        # slow streams {"n": i} every 100 ms for input.seconds and honours cancel.
        sid = self.new_session("slow")

        async def body():
            c = await self.connect(sid)
            await c.send({"type": "run", "input": {"seconds": 10}, "ref": "long"})
            started = await c.recv_until(lambda m: m.get("type") == "run.started")
            run = started[-1]["run"]
            self.assertEqual(started[-1].get("ref"), "long", started[-1])
            await c.recv_until(lambda m: m.get("type") == "run.output", timeout=3)
            # A queued run behind it (a WS client learns a run's id only from its
            # run.started, so this one is queued over HTTP), cancelled over WS while queued:
            # it ends cancelled at once and never starts.
            r = await self.in_thread(lambda: self.d.request(
                "POST", "/v1/sessions/%s/runs?wait=false" % sid, {"input": {"seconds": 10}},
                token=self.token))
            self.assertEqual(r.status, 202, r)
            queued = r.json()["id"]
            await c.send({"type": "cancel", "run": queued})
            evs = await c.recv_until(lambda m: m.get("type") not in ("run.output",), timeout=3)
            self.assertEvent(evs[-1], "run.cancelled", queued)
            # now the running one
            t0 = time.monotonic()
            await c.send({"type": "cancel", "run": run})
            evs = await c.recv_until(lambda m: m.get("type") != "run.output", timeout=5)
            took = time.monotonic() - t0
            self.assertEqual(evs[-1].get("type"), "run.cancelled",
                             "cancel over WS ended with %r" % evs[-1])
            self.assertEvent(evs[-1], "run.cancelled", run)
            self.assertLess(took, 1.5, "run.cancelled came %.2f s after the cancel" % took)
            for e in evs[:-1]:
                self.assertEvent(e, "run.output", run)
            # cancelling a run that is over, an unknown run, or no run: an error each, and
            # the connection stays open
            await c.send({"type": "cancel", "run": run})
            self.assertErrorMsg(await c.recv(), "not_found")
            await c.send({"type": "cancel", "run": "r_" + "0" * 32})
            self.assertErrorMsg(await c.recv(), "not_found")
            await c.send({"type": "cancel"})
            self.assertErrorMsg(await c.recv(), "not_found")
            await c.ping()
            # nothing else came: the queued run never started
            self.assertNotIn(queued, [m.get("run") for m in c.got if m.get("type") == "run.started"])
            await c.close()
            return run, queued, took

        run, queued, took = self.run_async(body())
        self.assertEqual(self.get_run(sid, run).get("status"), "cancelled")
        self.assertEqual(self.get_run(sid, queued).get("status"), "cancelled")
        sys.stderr.write("\n  cancel -> run.cancelled: %.0f ms\n" % (took * 1000))


class Resume(WSTestCase):

    def test_resume_after_forced_disconnect_no_gap_no_duplicate(self):
        sid = self.new_session("echo")
        k = 3

        async def body():
            a = await self.connect(sid, name="A")
            await a.send({"type": "run", "input": "a1 a2 a3 a4", "ref": "ra"})
            got = await a.recv_until(lambda m: m.get("seq") == k)
            self.assertEqual(seqs(got), list(range(1, k + 1)), got)
            a.abort()  # the TCP connection dies; nothing is cancelled
            # while A is away: a run over HTTP and one over another WebSocket
            res = await self.in_thread(self.http_run, sid, "h1 h2")
            self.assertEqual(res.get("status"), "completed", res)
            b = await self.connect(sid, name="B")
            await b.send({"type": "run", "input": "b1", "ref": "rb"})
            b_evs = await b.recv_until(lambda m: m.get("type") == "run.completed")
            self.assertEchoRun(b_evs, "b1", ref="rb")
            last = (await self.in_thread(self.session_info, sid))["last_seq"]
            self.assertEqual(last, 6 + 4 + 3, "events of the three runs")
            # A comes back and resumes after k
            c = await self.connect(sid, name="A'")
            await c.send({"type": "resume", "after": k})
            replay = await c.recv_until(lambda m: m.get("seq", 0) >= last)
            replay += await c.collect_idle(idle=0.5)
            got_seqs = seqs(replay)
            self.assertEqual(len(replay), len(got_seqs), "only events expected: %s" % brief(replay))
            self.assertEqual(got_seqs, list(range(k + 1, last + 1)),
                             "resume after %d must send %d..%d exactly once, in order"
                             % (k, k + 1, last))
            for ev in replay:
                self.assertEvent(ev)
            # the replayed events are the log's: the first run's tail, the HTTP run, B's run
            self.assertEqual([e["type"] for e in replay[:3]], ["run.output", "run.output", "run.completed"])
            self.assertEqual(replay[2].get("output"), "a1 a2 a3 a4")
            self.assertEchoRun(replay[3:7], "h1 h2")
            self.assertEchoRun(replay[7:10], "b1")
            self.assertEqual([{k_: v for k_, v in e.items() if k_ != "ref"} for e in b_evs],
                             [{k_: v for k_, v in e.items() if k_ != "ref"} for e in replay[7:10]],
                             "a replayed event equals the live one")
            # a second resume with the same point sends nothing again (exactly once)
            await c.send({"type": "resume", "after": k})
            await c.ping()
            # then live events follow, once each
            await b.send({"type": "run", "input": "z1 z2", "ref": "rz"})
            live = await c.recv_until(lambda m: m.get("type") == "run.completed")
            self.assertEchoRun(live, "z1 z2")
            self.assertEqual(seqs(live), list(range(last + 1, last + 5)))
            extra = await c.collect_idle(idle=0.5)
            self.assertEqual(extra, [], "nothing after the live run")
            all_seqs = seqs(c.got)
            self.assertEqual(all_seqs, list(range(k + 1, last + 5)), "A' saw each event once")
            # resume after the newest event: nothing
            await c.send({"type": "resume", "after": last + 4})
            await c.ping()
            await b.close()
            await c.close()

        self.run_async(body())
        # the dropped connection cancelled nothing: A's run completed
        info = self.session_info(sid)
        self.assertEqual(info.get("runs"), 4, info)

    def test_dropped_connection_during_a_run_cancels_nothing(self):
        sid = self.new_session("slow")

        async def body():
            a = await self.connect(sid, name="A")
            await a.send({"type": "run", "input": {"seconds": 1}, "ref": "r"})
            got = await a.recv_until(lambda m: m.get("type") == "run.output")
            run = got[0]["run"]
            k = got[-1]["seq"]
            a.abort()
            await asyncio.sleep(1.5)  # the run (1 s) ends while nobody watches
            res = await self.in_thread(self.get_run, sid, run)
            self.assertEqual(res.get("status"), "completed", res)
            self.assertEqual(res.get("output"), {"n": 10}, res)
            c = await self.connect(sid, name="A'")
            await c.send({"type": "resume", "after": k})
            last = (await self.in_thread(self.session_info, sid))["last_seq"]
            replay = await c.recv_until(lambda m: m.get("seq", 0) >= last)
            replay += await c.collect_idle(idle=0.5)
            self.assertEqual(seqs(replay), list(range(k + 1, last + 1)), brief(replay))
            self.assertEqual(replay[-1].get("type"), "run.completed")
            await c.close()

        self.run_async(body())

    def test_resume_as_first_message_while_a_run_streams_keeps_order(self):
        # docs/websocket.md: "Send resume first after connecting and every event arrives
        # once, in order." Here events are appended (slow: one per 100 ms) between the
        # connect and the client's first message, which is its resume 0.35 s later.
        sid = self.new_session("slow")

        async def body():
            a = await self.connect(sid, name="A")
            await a.send({"type": "run", "input": {"seconds": 2}, "ref": "r"})
            got = await a.recv_until(lambda m: m.get("seq") == 3)
            k = got[-1]["seq"]
            a.abort()
            await asyncio.sleep(0.4)
            c = await self.connect(sid, name="A'")
            await asyncio.sleep(0.35)
            await c.send({"type": "resume", "after": k})
            evs = await c.recv_until(lambda m: m.get("type") == "run.completed", timeout=6)
            evs += await c.collect_idle(idle=0.4)
            got_seqs = seqs(evs)
            last = (await self.in_thread(self.session_info, sid))["last_seq"]
            self.assertEqual(sorted(got_seqs), list(range(k + 1, last + 1)),
                             "every event after %d exactly once" % k)
            self.assertEqual(got_seqs, list(range(k + 1, last + 1)), "in order")
            await c.close()

        self.run_async(body())

    def test_resume_from_before_the_kept_window_says_truncated(self):
        # The log keeps the last --events-kept (default 1000) events: a run of 1200 words
        # makes 1202 events; resuming after 0 first says events.truncated.
        sid = self.new_session("echo")
        text = " ".join("w%d" % i for i in range(1200))

        async def body():
            res = await self.in_thread(self.http_run, sid, text)
            self.assertEqual(res.get("status"), "completed")
            c = await self.connect(sid)
            await c.send({"type": "resume", "after": 0})
            first = await c.recv()
            self.assertEqual(first.get("type"), "events.truncated", first)
            self.assertEqual(set(first), {"type", "after", "first_seq"}, first)
            self.assertEqual(first["after"], 0, first)
            f = first["first_seq"]
            self.assertIsInstance(f, int, first)
            self.assertTrue(1 < f <= 1202 - 1000 + 1, "first_seq %r: at least 1000 kept" % f)
            rest = await c.recv_until(lambda m: m.get("seq", 0) >= 1202)
            rest += await c.collect_idle(idle=0.5)
            self.assertEqual(seqs(rest), list(range(f, 1203)))
            self.assertEqual(rest[-1].get("output"), text)
            await c.close()

        self.run_async(body())

    def test_resume_of_a_backlog_larger_than_the_queue_limit(self):
        # A reader that is fast but was away while more than 4 MiB of events were
        # appended: resume must deliver them all (the queue limit is for clients that do
        # not read, docs/websocket.md "Slow clients"), not cut the connection.
        sid = self.new_session("echo")
        text = " ".join(["y" * 10000] * 15)  # 150 KB: ~150 KB of run.output + 150 KB output
        runs = 28                              # ~8.5 MB of events in the log

        async def body():
            for _ in range(runs):
                res = await self.in_thread(self.http_run, sid, text)
                self.assertEqual(res.get("status"), "completed")
            last = (await self.in_thread(self.session_info, sid))["last_seq"]
            self.assertEqual(last, runs * 17)
            c = await self.connect(sid)
            await c.send({"type": "resume", "after": 0})
            try:
                evs = await c.recv_until(lambda m: m.get("seq") == last, timeout=20)
            except websockets.exceptions.ConnectionClosed as e:
                self.fail("the daemon closed a reading client during a %d-event (~%.1f MB) replay "
                          "after %d events (close %s)" % (last, runs * 0.3, len(c.got), e.code))
            self.assertEqual(seqs(evs), list(range(1, last + 1)))
            await c.ping()
            await c.close()

        self.run_async(body())


class Watchers(WSTestCase):

    def test_two_watchers_see_every_event(self):
        sid = self.new_session("echo")

        async def body():
            a = await self.connect(sid, name="A")
            b = await self.connect(sid, name="B")
            await a.send({"type": "run", "input": "one two three", "ref": "from-a"})
            ea = await a.recv_until(lambda m: m.get("type") == "run.completed")
            eb = await b.recv_until(lambda m: m.get("type") == "run.completed")
            self.assertEchoRun(ea, "one two three", ref="from-a")
            self.assertEchoRun(eb, "one two three")
            strip = lambda evs: [{k: v for k, v in e.items() if k != "ref"} for e in evs]  # noqa: E731
            self.assertEqual(strip(ea), strip(eb), "both watchers get the same events")
            # a run started by B, and one over HTTP: both see them too
            await b.send({"type": "run", "input": "four", "ref": "from-b"})
            eb2 = await b.recv_until(lambda m: m.get("type") == "run.completed")
            ea2 = await a.recv_until(lambda m: m.get("type") == "run.completed")
            self.assertEchoRun(eb2, "four", ref="from-b")
            self.assertEqual(strip(ea2), strip(eb2))
            await self.in_thread(self.http_run, sid, "five six")
            ea3 = await a.recv_until(lambda m: m.get("type") == "run.completed")
            eb3 = await b.recv_until(lambda m: m.get("type") == "run.completed")
            self.assertEchoRun(ea3, "five six")
            self.assertEqual(ea3, eb3)
            for x in (a, b):
                self.assertEqual(await x.collect_idle(idle=0.4), [], "%s: nothing more" % x.name)
                self.assertEqual(seqs(x.got), list(range(1, 5 + 3 + 4 + 1)), x.name)
            # a run.started's ref goes to the connection that gave it
            self.assertNotEqual(eb[0].get("ref"), "from-a", "B got A's ref")
            self.assertNotEqual(ea2[0].get("ref"), "from-b", "A got B's ref")
            await a.close()
            await b.close()

        self.run_async(body())


class SlowReader(WSTestCase):
    test_timeout = 90

    def test_reader_that_stops_is_disconnected_others_go_on(self):
        sid = self.new_session("echo")
        text = " ".join(["z" * 10000] * 15)  # a run: ~150 KB of run.output + ~150 KB output
        runs = 40                              # ~12 MB: past the 4 MiB queue + socket buffers
        per_run = 17
        # what the stuck client is sent must exceed its queue limit plus the kernel's socket
        # buffers on both sides (tcp_wmem max 4 MiB on Debian) by a wide margin
        self.assertGreater(runs * 2 * len(text), 2.5 * QUEUE_LIMIT)

        async def body():
            fast = await self.connect(sid, name="fast", compression=None)
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(("127.0.0.1", self.d.port))
            sock.setblocking(False)
            slow = await self.connect(sid, name="slow", compression=None, sock=sock)
            slow.ws.transport.pause_reading()  # from now on it reads nothing
            self.assertEqual(await self.in_thread(ws_connections, self.d), 2)
            t_start = time.monotonic()
            took = []
            for i in range(runs):
                t0 = time.monotonic()
                await fast.send({"type": "run", "input": text, "ref": "big%d" % i})
                evs = await fast.recv_until(lambda m: m.get("type") == "run.completed", timeout=10)
                took.append(time.monotonic() - t0)
                self.assertEchoRun(evs, text, ref="big%d" % i)
            t_end = time.monotonic()
            total_time = t_end - t_start
            total = runs * per_run
            self.assertEqual(seqs(fast.got), list(range(1, total + 1)), "fast reader got all")
            self.assertLess(max(took), 10, "a run took %.1f s with a stuck reader: %s" % (max(took), took))
            # HTTP still answers at once
            t0 = time.monotonic()
            self.assertEqual((await self.in_thread(self.d.request, "GET", "/healthz")).status, 200)
            self.assertLess(time.monotonic() - t0, 1.0)
            # the stuck reader has been disconnected by now (or within 5 s), still not reading
            gone = None
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                if await self.in_thread(ws_connections, self.d) == 1:
                    gone = time.monotonic()
                    break
                await asyncio.sleep(0.1)
            self.assertIsNotNone(gone, "a client that read nothing while ~%.0f MB were produced is "
                                 "still connected 5 s later (agenthost_ws_connections = %s)"
                                 % (runs * 0.3, await self.in_thread(ws_connections, self.d)))
            # When it reads again it finds what was already in flight, a prefix without
            # gaps, then the end of the connection: a close 1001 if the daemon could still
            # write one, else the TCP connection simply ends (1006 for the client): a
            # close frame cannot get past a socket buffer its reader never empties.
            slow.ws.transport.resume_reading()
            code, got = await slow.closed(timeout=10)
            got_seqs = [m["seq"] for m in got if isinstance(m, dict) and "seq" in m]
            self.assertEqual(got_seqs, list(range(1, len(got_seqs) + 1)),
                             "what the slow client got is a prefix without gaps")
            self.assertLess(len(got_seqs), total, "the slow client was not cut off")
            self.assertIn(code, (1001, 1006), "close code for a slow client")
            # It comes back and resumes where it was cut, as often as it takes (a client
            # that reads; the backlog replay itself is test_resume_of_a_backlog_...).
            have, attempts = (got_seqs[-1] if got_seqs else 0), 0
            while have < total:
                attempts += 1
                self.assertLessEqual(attempts, 10, "resume made no progress: at %d of %d" % (have, total))
                again = await self.connect(sid, name="slow again %d" % attempts)
                await again.send({"type": "resume", "after": have})
                try:
                    await again.recv_until(lambda m: m.get("seq") == total, timeout=20)
                except websockets.exceptions.ConnectionClosed:
                    pass
                s = seqs(again.got)
                self.assertEqual(s, list(range(have + 1, have + 1 + len(s))),
                                 "resume after %d: no gap, no duplicate" % have)
                have += len(s)
                await again.close()
            await fast.close()
            sys.stderr.write("\n  slow reader: %d runs (~%.0f MB) in %.1f s, slowest run %.2f s; "
                             "cut off after %d events (close %s) %.1f s after the last run; "
                             "caught up by resume in %d connection(s)\n"
                             % (runs, runs * 0.3, total_time, max(took), len(got_seqs), code,
                                gone - t_end, attempts))

        self.run_async(body())


class BadFrames(WSTestCase):

    def test_bad_messages_get_an_error_and_the_connection_stays(self):
        sid = self.new_session("echo")

        async def body():
            c = await self.connect(sid)
            cases = [
                ("binary frame", b"\x00\x01\x02{\"type\":\"ping\"}", "bad_request"),
                ("invalid JSON", "not json", "bad_request"),
                ("truncated JSON", '{"type": "ping"', "bad_request"),
                ("unknown type", {"type": "explode"}, "bad_request"),
                ("no type", {"input": "x"}, "bad_request"),
                ("type not a string", {"type": 7}, "bad_request"),
                ("not an object", [1, 2], "bad_request"),
                ("a JSON string", '"ping"', "bad_request"),
                ("empty text", "", "bad_request"),
                ("ref not a string", {"type": "run", "input": "x", "ref": 5}, "bad_request"),
                ("resume without after", {"type": "resume"}, "bad_request"),
                ("resume after -1", {"type": "resume", "after": -1}, "bad_request"),
                ("resume after a string", {"type": "resume", "after": "3"}, "bad_request"),
                ("over --max-body (2 MiB + 1 byte)", "x" * (DEFAULT_MAX_BODY + 1), "too_large"),
                ("a 3 MB run", json.dumps({"type": "run", "input": "w " * 1500000}), "too_large"),
            ]
            for what, msg, code in cases:
                await c.send(msg)
                try:
                    reply = await c.recv(timeout=10)
                except websockets.exceptions.ConnectionClosed as e:
                    self.fail("%s: the daemon closed the connection (%s)" % (what, e))
                with self.subTest(what):
                    self.assertErrorMsg(reply, code)
                await c.ping()
            # at the limit exactly: served
            pad = DEFAULT_MAX_BODY - len(json.dumps({"type": "ping", "pad": ""}))
            await c.send(json.dumps({"type": "ping", "pad": "p" * pad}))
            self.assertEqual(await c.recv(), {"type": "pong"}, "a message of exactly --max-body bytes")
            # the session works after all that, and no run was made by the bad messages
            await c.send({"type": "run", "input": "still fine", "ref": "ok"})
            evs = await c.recv_until(lambda m: m.get("type") == "run.completed")
            self.assertEchoRun(evs, "still fine", ref="ok")
            self.assertEqual(evs[0]["seq"], 1, "a bad message made a run")
            await c.close()

        self.run_async(body())

    def test_refused_run_is_an_error_with_its_ref(self):
        # max_queued_runs is 8 (docs/manifest.md): a running run + 8 queued, the next is
        # refused with session_busy and the run's ref.
        sid = self.new_session("slow")

        async def body():
            c = await self.connect(sid)
            await c.send({"type": "run", "input": {"seconds": 10}, "ref": "r0"})
            started = await c.recv_until(lambda m: m.get("type") == "run.started")
            for i in range(1, 9):
                await c.send({"type": "run", "input": {"seconds": 10}, "ref": "r%d" % i})
            await c.send({"type": "run", "input": {"seconds": 10}, "ref": "too-many"})
            msgs = await c.recv_until(lambda m: m.get("type") == "error", timeout=5)
            self.assertErrorMsg(msgs[-1], "session_busy", ref="too-many")
            await c.ping()
            info = await self.in_thread(self.session_info, sid)
            self.assertEqual(info.get("queued_runs"), 8, info)
            # clean up quickly: destroying the session ends everything
            await c.send({"type": "cancel", "run": started[-1]["run"]})
            await c.close()

        self.run_async(body())


class Admission(WSTestCase):

    def assertRefused(self, path, status, code, headers=None):
        r = raw_upgrade(self.d, path, headers=headers)
        self.assertNotEqual(r.status, 101, "upgrade of %s was accepted" % path)
        self.assertError(r, status, code)
        self.assertIsNone(r.header("Sec-WebSocket-Accept"), r.headers)

    def test_refused_before_the_upgrade(self):
        t1 = self.assertStatus(self.d.admin("POST", "/v1/tokens", {"name": "one"}), 201).json()["token"]
        t2 = self.assertStatus(self.d.admin("POST", "/v1/tokens", {"name": "two"}), 201).json()["token"]
        mine = self.new_session("echo", token=t1)
        unknown = "s_0000" + "ab" * 16
        ws = "/v1/sessions/%s/ws"
        self.assertRefused(ws % unknown + "?access_token=" + self.token, 404, "not_found")
        self.assertRefused(ws % unknown, 404, "not_found", {"Authorization": "Bearer " + self.token})
        self.assertRefused(ws % mine + "?access_token=" + t2, 404, "not_found")
        self.assertRefused(ws % mine, 404, "not_found", {"Authorization": "Bearer " + t2})
        self.assertRefused(ws % mine, 401, "unauthorized")
        self.assertRefused(ws % mine + "?access_token=", 401, "unauthorized")
        self.assertRefused(ws % mine + "?access_token=aht_wrong", 401, "unauthorized")
        self.assertRefused(ws % mine, 401, "unauthorized", {"Authorization": "Bearer aht_wrong"})
        self.assertRefused(ws % mine, 401, "unauthorized", {"Authorization": "Bearer " + t1 + "x"})
        self.assertRefused(ws % mine + "?access_token=" + t1 + "x", 401, "unauthorized")
        self.assertEqual(ws_connections(self.d), 0, "a refused upgrade left a connection")
        # a revoked token is refused too
        tid = [t for t in self.d.admin("GET", "/v1/tokens").json()["tokens"] if t.get("name") == "one"][0]["id"]
        r = raw_upgrade(self.d, ws % mine + "?access_token=" + t1)
        self.assertEqual(r.status, 101, "the owner's upgrade: %r" % r)
        self.assertStatus(self.d.admin("DELETE", "/v1/tokens/" + tid), 204)
        self.assertRefused(ws % mine + "?access_token=" + t1, 401, "unauthorized")

    def test_refusal_is_readable_by_a_websocket_client(self):
        # The independent client must see the refusal's status (an HTTP/1.1 response).
        t1 = self.assertStatus(self.d.admin("POST", "/v1/tokens", {"name": "one"}), 201).json()["token"]
        t2 = self.assertStatus(self.d.admin("POST", "/v1/tokens", {"name": "two"}), 201).json()["token"]
        mine = self.new_session("echo", token=t1)
        unknown = "s_0000" + "ab" * 16

        async def refused(url, status, headers=None):
            try:
                ws_ = await websockets.connect(url, subprotocols=[SUBPROTOCOL], extra_headers=headers,
                                               open_timeout=10)
            except websockets.exceptions.InvalidStatusCode as e:
                self.assertEqual(e.status_code, status, url)
                return
            except websockets.exceptions.InvalidMessage as e:
                self.fail("%s: python3-websockets could not read the refusal (%s: %s); expected "
                          "HTTP %d" % (url.split("?")[0], e, e.__cause__, status))
            await ws_.close()
            self.fail("%s: upgrade accepted, expected %d" % (url, status))

        async def body():
            await refused(self.ws_url(unknown), 404)
            await refused(self.ws_url(mine, t2), 404)
            await refused(self.ws_url(mine, False), 401)
            await refused(self.ws_url(mine, "aht_wrong"), 401)
            await refused(self.ws_url(mine, False), 401, {"Authorization": "Bearer aht_wrong"})

        self.run_async(body())
        self.assertEqual(ws_connections(self.d), 0, "a refused upgrade left a connection")

    def test_token_by_query_or_header_and_owner_or_admin(self):
        t1 = self.assertStatus(self.d.admin("POST", "/v1/tokens", {"name": "one"}), 201).json()["token"]
        mine = self.new_session("echo", token=t1)

        async def use(c, word):
            await c.send({"type": "run", "input": word, "ref": word})
            evs = await c.recv_until(lambda m: m.get("type") == "run.completed")
            self.assertEchoRun(evs, word, ref=word)
            await c.close()

        async def body():
            await use(await self.connect(mine, token=t1, name="query"), "query")
            await use(await self.connect(mine, token=False, name="header",
                                         headers={"Authorization": "Bearer " + t1}), "header")
            # the admin token sees every session (docs/http.md)
            await use(await self.connect(mine, token=True, name="admin"), "admin")
            # an upgrade that names no subprotocol is served too
            await use(await self.connect(mine, token=t1, name="no subprotocol", subprotocols=()),
                      "plain")

        self.run_async(body())

    def test_plain_get_is_426(self):
        sid = self.new_session("echo")
        r = self.d.request("GET", "/v1/sessions/%s/ws" % sid, token=self.token)
        self.assertError(r, 426, "upgrade_required")
        r = self.d.request("GET", "/v1/sessions/%s/ws?access_token=%s" % (sid, self.token))
        self.assertError(r, 426, "upgrade_required")


class Destroyed(WSTestCase):

    def test_session_destroyed_while_connected(self):
        sid = self.new_session("echo")

        async def body():
            a = await self.connect(sid, name="A")
            b = await self.connect(sid, name="B")
            await a.send({"type": "run", "input": "before", "ref": "x"})
            await a.recv_until(lambda m: m.get("type") == "run.completed")
            await b.recv_until(lambda m: m.get("type") == "run.completed")
            r = await self.in_thread(lambda: self.d.request("DELETE", "/v1/sessions/" + sid,
                                                            token=self.token))
            self.assertEqual(r.status, 204, r)
            for c in (a, b):
                code, got = await c.closed(timeout=5)
                self.assertEqual(len(got), 1, "%s: exactly one error before the close: %s"
                                 % (c.name, brief(got)))
                self.assertErrorMsg(got[0], "not_found")
                self.assertEqual(code, 1001, "%s: close code" % c.name)
            # the id is gone: a new upgrade is 404
            r = raw_upgrade(self.d, "/v1/sessions/%s/ws?access_token=%s" % (sid, self.token))
            self.assertEqual(r.status, 404, r)

        self.run_async(body())
        self.assertTrue(harness.wait_until(lambda: ws_connections(self.d) == 0, 5),
                        "connections left after the session was destroyed")




if __name__ == "__main__":
    harness.main()
