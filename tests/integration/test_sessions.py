"""Stateful sessions through the real daemon (issue 5, item 8). Oracle: DESIGN.md §5 and §6,
docs/http.md, docs/protocol.md, host/session.h (the design paragraph) and agenthostd --help
(--max-sessions: "past it the least recently used idle one hibernates, or 503 if none is
idle").

Agents: the built examples (EXAMPLES: echo, slow) and a small Python session agent written
at test time (AGENT_PY below, with the SDK copied next to it) installed over HTTP under
several names with different "session" and "limits" settings.

test_sessions_restart.py reuses SessionCase for the daemon-restart and expiry tests."""

import json
import os
import re
import shutil
import socket
import sqlite3
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (EXAMPLES, HTTP_TIMEOUT, RFC3339_MS, RUN_ID, AgentDaemonTestCase,  # noqa: E402
                     DaemonTestCase, SSEStream, child_pids, daemon_metrics, example, main,
                     metric, wait_until)

SESSION_ID = re.compile(r"^s_[0-9a-f]{4}[0-9a-f]{32}$")
SESSION_KEYS = {"id", "agent", "version", "state", "created_at"}
EVENT_TYPES = {"run.started", "run.output", "run.completed", "run.failed", "run.cancelled",
               "session.crashed", "session.hibernated", "session.resumed"}
TERMINAL = {"run.completed", "run.failed", "run.cancelled"}

# The test agent: every run's output carries what hello said ("resumed", "session") so
# that a test sees whether its process was started again. input {"op": ...}:
#   set      {"kv": [[key, value], ...], "emit": bool}  writes the keys in order; with emit,
#            a run.output {"acked": key, "value": v} after each acknowledged write
#   state    the whole KV as the agent reads it (kv.list + kv.get)
#   set_big  {"bytes": N}  tries to store a string of N bytes; reports the KVError code
#   sleep    {"seconds": S}  sleeps, checking for a cancel every 10 ms
#   done_then_linger {"seconds": S}  ends the run, then stays busy S seconds without
#            reading the host's frames
#   emit     {"n": N}  N run.output events
#   exit     {"code": C}  os._exit(C) in the middle of the run
#   bomb     allocates (and touches) memory until the sandbox kills it
#   anything else: echoes the input
AGENT_PY = r'''
import os
import sys
import time

import agenthost_sdk


class Probe(agenthost_sdk.Agent):
    def create(self, hello):
        self.info = {"resumed": hello.get("resumed"), "session": hello.get("session")}
        self.served = 0

    def run(self, run_id, input):
        self.served += 1
        op = input.get("op") if isinstance(input, dict) else None
        out = dict(self.info, op=op, served=self.served)
        if op == "set":
            for key, value in input["kv"]:
                self.kv[key] = value
                if input.get("emit"):
                    self.emit({"acked": key, "value": value})
        elif op == "state":
            out["state"] = {k: self.kv[k] for k in self.kv.list()}
        elif op == "set_big":
            try:
                self.kv["big"] = "x" * input["bytes"]
                out["kv_error"] = None
            except agenthost_sdk.KVError as e:
                out["kv_error"] = e.code
        elif op == "sleep":
            deadline = time.monotonic() + input.get("seconds", 1)
            while time.monotonic() < deadline:
                if self.cancelled:
                    self.fail("cancelled", "cancelled by the client")
                    return None
                time.sleep(0.01)
        elif op == "done_then_linger":
            self.done(dict(out))
            time.sleep(input.get("seconds", 0.5))  # busy, not reading the host's frames
            return None
        elif op == "emit":
            for i in range(input["n"]):
                self.emit({"i": i})
        elif op == "exit":
            sys.stdout.flush()
            os._exit(input.get("code", 3))
        elif op == "bomb":
            hoard = []
            while True:
                hoard.append(b"\x01" * (8 << 20))
        else:
            out["input"] = input
        return out


if __name__ == "__main__":
    agenthost_sdk.run(Probe)
'''


class SessionCase(AgentDaemonTestCase):
    """A daemon with the examples installed (plus daemon_args), the admin token in
    self.token, and helpers for sessions, runs, state and the event log."""

    daemon_args = ()

    def setUp(self):
        DaemonTestCase.setUp(self)
        for name in ("echo", "slow", "upper-py"):
            example(name)
        self.d = self.new_daemon(manifests=EXAMPLES, extra_args=self.daemon_args).start()
        self.token = self.d.admin_token

    # -- agents ---------------------------------------------------------------
    def py_agent(self, name, session=None, limits=None):
        """Installs AGENT_PY as session agent NAME with the given "session" and
        "sandbox.limits" objects. Returns NAME."""
        dest = os.path.join(self.tmp, "src", name)
        os.makedirs(dest)
        os.chmod(dest, 0o755)
        manifest = {"manifest_version": 1, "name": name, "version": "1.0.0",
                    "description": "session test agent", "modes": ["session"],
                    "entrypoint": ["/usr/bin/python3", "agent.py"],
                    "sandbox": {"seccomp": "python", "network": False}}
        if session:
            manifest["session"] = session
        if limits:
            manifest["sandbox"]["limits"] = limits
        with open(os.path.join(dest, "agent.json"), "w") as f:
            json.dump(manifest, f, indent=2)
        with open(os.path.join(dest, "agent.py"), "w") as f:
            f.write(AGENT_PY)
        with open(os.path.join(example("upper-py"), "agenthost_sdk.py")) as f:
            sdk = f.read()
        with open(os.path.join(dest, "agenthost_sdk.py"), "w") as f:
            f.write(sdk)
        # The SDK's compiled bytecode too, when the build made it (upper-py ships it): the
        # agent's folder is read-only in the sandbox, where CPython cannot cache it.
        cache = os.path.join(example("upper-py"), "__pycache__")
        if os.path.isdir(cache):
            shutil.copytree(cache, os.path.join(dest, "__pycache__"))
            for p in os.listdir(os.path.join(dest, "__pycache__")):
                if not p.startswith("agenthost_sdk."):
                    os.remove(os.path.join(dest, "__pycache__", p))
        for root, dirs, files in os.walk(dest):
            for p in dirs:
                os.chmod(os.path.join(root, p), 0o755)
            for p in files:
                os.chmod(os.path.join(root, p), 0o644)
        r = self.d.install(dest)
        self.assertEqual(r.status, 201, "install of %s failed: %r" % (name, r))
        return name

    # -- HTTP -----------------------------------------------------------------
    def req(self, method, path, body=None, token=True, headers=None, timeout=HTTP_TIMEOUT):
        """A request with the admin token (token=True), another token, or none (None)."""
        return self.d.request(method, path, body, token=self.token if token is True else token,
                              headers=headers, timeout=timeout)

    def create(self, agent, body=None, token=True):
        """POST /v1/agents/AGENT/sessions, asserted 201 with the documented shape. The body
        is {} unless given (test_create_without_body covers the empty one)."""
        r = self.req("POST", "/v1/agents/%s/sessions" % agent, {} if body is None else body,
                     token=token, timeout=30)
        self.assertStatus(r, 201)
        s = r.json()
        self.assertTrue(SESSION_KEYS <= set(s), "create answer lacks %s: %r" % (SESSION_KEYS - set(s), s))
        self.assertRegex(s["id"], SESSION_ID)
        self.assertEqual(s["agent"], agent, s)
        self.assertEqual(s["state"], "ready", s)
        self.assertRegex(s["created_at"], RFC3339_MS, s)
        return s

    def get(self, sid, token=True):
        r = self.assertStatus(self.req("GET", "/v1/sessions/" + sid, token=token), 200)
        return r.json()

    def state_of(self, sid):
        return self.get(sid)["state"]

    def post_run(self, sid, input, query="", token=True, timeout=30):
        return self.req("POST", "/v1/sessions/%s/runs%s" % (sid, query), {"input": input},
                        token=token, timeout=timeout)

    def run_ok(self, sid, input, token=True):
        """A run that must complete; returns its output."""
        return self.assertRunResult(self.post_run(sid, input, token=token), "completed")["output"]

    def run_async(self, sid, input):
        """?wait=false: 202 {"id", ...}; returns the run ID."""
        r = self.assertStatus(self.post_run(sid, input, query="?wait=false"), 202)
        rid = r.json().get("id")
        self.assertRegex(rid or "", RUN_ID, r)
        return rid

    def run_record(self, sid, rid, token=True):
        r = self.assertStatus(self.req("GET", "/v1/sessions/%s/runs/%s" % (sid, rid), token=token), 200)
        rec = r.json()
        self.assertEqual(rec.get("id"), rid, rec)
        return rec

    def wait_run(self, sid, rid, statuses=("completed", "failed", "cancelled"), timeout=20.0):
        last = [None]

        def check():
            last[0] = self.run_record(sid, rid)
            return last[0]["status"] in statuses
        if not wait_until(check, timeout, 0.02):
            self.fail("run %s not %s within %.0f s: %r" % (rid, "/".join(statuses), timeout, last[0]))
        return last[0]

    def wait_state(self, sid, state, timeout):
        last = [None]

        def check():
            last[0] = self.state_of(sid)
            return last[0] == state
        if not wait_until(check, timeout, 0.05):
            self.fail("session %s not %s within %.1f s (state %r)" % (sid, state, timeout, last[0]))

    def kv(self, sid, token=True):
        """GET /v1/sessions/ID/state → the state object."""
        r = self.assertStatus(self.req("GET", "/v1/sessions/%s/state" % sid, token=token), 200)
        body = r.json()
        self.assertEqual(set(body), {"state"}, body)
        return body["state"]

    def agents_alive(self):
        return metric(daemon_metrics(self.d), "agenthost_agent_processes")

    def assertAgentsAlive(self, n, within=5.0):
        if not wait_until(lambda: self.agents_alive() == n, within, 0.05):
            self.fail("agenthost_agent_processes is %s, not %d, after %.1f s; daemon children %s"
                      % (self.agents_alive(), n, within, child_pids(self.d.proc.pid)))

    # -- the event log ----------------------------------------------------------
    def open_events(self, sid, query="", headers=None, token=True, timeout=10.0):
        """GET /v1/sessions/ID/events as an open SSE stream (asserted 200 text/event-stream)."""
        s = SSEStream(self.d, "GET", "/v1/sessions/%s/events%s" % (sid, query),
                      token=self.token if token is True else token, headers=headers,
                      timeout=timeout)
        self.addCleanup(s.close)
        if s.status != 200:
            self.fail("GET events%s answered %d: %r" % (query, s.status, s.resp.read()[:300]))
        ctype = s.header("Content-Type") or ""
        self.assertTrue(ctype.startswith("text/event-stream"), "Content-Type %r" % ctype)
        return s

    def read_until(self, stream, seq, what=""):
        """Events from stream until one with data.seq == seq (the stream must not end first)."""
        out = []
        while True:
            try:
                ev = stream.next_event()
            except socket.timeout:
                self.fail("%s: no event seq %d arrived (got %s)" % (what, seq, [e["data"].get("seq") for e in out]))
            if ev is None:
                self.fail("%s: the stream ended before seq %d (got %r)" % (what, seq, out))
            out.append(ev)
            s = ev["data"].get("seq") if isinstance(ev.get("data"), dict) else None
            if s is not None and s >= seq:
                return out

    def assertIdle(self, stream, seconds=0.3, what=""):
        """Nothing more arrives on stream for seconds (the stream is unusable afterwards)."""
        # http.client hands the socket to the response: reach it through the reader.
        stream.resp.fp.raw._sock.settimeout(seconds)
        try:
            ev = stream.next_event()
        except socket.timeout:
            return
        self.fail("%s: unexpected event after the last one: %r" % (what, ev))

    def assertEvents(self, events, first, last, what=""):
        """The SSE form of DESIGN §5: seqs first..last, each exactly once and in order,
        id == seq, event == data.type (a known type), RFC 3339 time."""
        seqs = [ev["data"].get("seq") for ev in events]
        self.assertEqual(seqs, list(range(first, last + 1)),
                         "%s: seqs must be %d..%d without gap or duplicate" % (what, first, last))
        for ev in events:
            data = ev["data"]
            self.assertEqual(ev.get("id"), str(data["seq"]), ev)
            self.assertEqual(ev.get("event"), data.get("type"), ev)
            self.assertIn(data.get("type"), EVENT_TYPES, ev)
            self.assertRegex(data.get("time", ""), RFC3339_MS, ev)

    def log(self, sid, after=0, token=True, idle=True):
        """The whole log after seq `after` up to the session's last_seq, checked contiguous.
        With idle, nothing may follow for 0.3 s."""
        last = self.get(sid, token=token)["last_seq"]
        stream = self.open_events(sid, "?after=%d" % after, token=token)
        events = self.read_until(stream, last, "log of " + sid) if last > after else []
        self.assertEvents(events, after + 1, last, "log of " + sid)
        if idle:
            self.assertIdle(stream, 0.3, "log of " + sid)
        stream.close()
        return [ev["data"] for ev in events]

    def types(self, events, run=None):
        return [e["type"] for e in events if run is None or e.get("run") == run]

    def new_token(self, name):
        r = self.assertStatus(self.req("POST", "/v1/tokens", {"name": name}), 201)
        return r.json()


class SessionTests(SessionCase):

    def test_lifecycle_create_runs_get_list_destroy(self):
        s = self.create("echo")
        sid = s["id"]
        self.assertEqual(s["version"], "1.0.0", s)
        runs = []
        for text in ("one", "two words", "three little words"):
            res = self.assertRunResult(self.post_run(sid, text), "completed")
            self.assertEqual(res["output"], text, res)
            runs.append(res)
        # The run records say what the answers said.
        for res in runs:
            rec = self.run_record(sid, res["id"])
            self.assertEqual(rec, res)
        got = self.get(sid)
        self.assertEqual(got["id"], sid)
        self.assertEqual(got["state"], "ready", got)
        self.assertEqual(got["runs"], 3, got)
        self.assertEqual(got["agent"], "echo", got)
        for k in ("created_at", "last_active_at"):
            self.assertRegex(got[k], RFC3339_MS, got)
        self.assertGreaterEqual(got["last_active_at"], got["created_at"], got)
        # echo: run.started, one run.output per word, run.completed.
        events = self.log(sid)
        self.assertEqual(got["last_seq"], 3 + 4 + 5, got)
        expect = []
        for res, words in zip(runs, (1, 2, 3)):
            expect += [("run.started", res["id"])] + [("run.output", res["id"])] * words + \
                [("run.completed", res["id"])]
        self.assertEqual([(e["type"], e.get("run")) for e in events], expect)
        listed = self.assertStatus(self.req("GET", "/v1/sessions"), 200).json()
        self.assertEqual([x["id"] for x in listed["sessions"]], [sid], listed)
        self.assertEqual(listed["sessions"][0]["state"], "ready", listed)

        r = self.req("DELETE", "/v1/sessions/" + sid)
        self.assertStatus(r, 204)
        self.assertEqual(r.body, b"", r)
        self.assertGone(sid, runs[0]["id"])
        listed = self.assertStatus(self.req("GET", "/v1/sessions"), 200).json()
        self.assertEqual(listed["sessions"], [], listed)
        self.assertAgentsAlive(0)

    def test_create_without_body(self):
        """DESIGN §5: the create body is optional. http.client sends "Content-Length: 0"
        for a POST without a body, as most clients do."""
        for headers in ({"Content-Length": "0"},
                        {"Content-Length": "0", "Content-Type": "application/json"}):
            r = self.req("POST", "/v1/agents/echo/sessions", None, headers=headers, timeout=30)
            self.assertStatus(r, 201)
            sid = r.json()["id"]
            time.sleep(0.5)  # time for anything else the request set off
            if self.d.proc.poll() is not None:
                self.fail("POST /v1/agents/echo/sessions with %r and no body answered 201, then "
                          "the daemon died (status %s)" % (headers, self.d.proc.poll()))
            self.assertEqual(self.run_ok(sid, "hi"), "hi")
            listed = self.assertStatus(self.req("GET", "/v1/sessions"), 200).json()["sessions"]
            self.assertEqual([x["id"] for x in listed], [sid], "one request, one session")
            self.assertStatus(self.req("DELETE", "/v1/sessions/" + sid), 204)
        # And curl's way: no Content-Length at all.
        head = ("POST /v1/agents/echo/sessions HTTP/1.1\r\nHost: x\r\n"
                "Authorization: Bearer %s\r\n\r\n" % self.token).encode()
        status, _headers, body, _sent = self.d.raw_exchange(head, [], timeout=30)
        self.assertEqual(status, 201, body[:300])
        sid = json.loads(body)["id"]
        time.sleep(0.5)
        self.assertIsNone(self.d.proc.poll(), "the daemon died")
        listed = self.assertStatus(self.req("GET", "/v1/sessions"), 200).json()["sessions"]
        self.assertEqual([x["id"] for x in listed], [sid], "one request, one session")

    def assertGone(self, sid, rid, token=True):
        """Every session route answers 404 not_found for sid."""
        base = "/v1/sessions/" + sid
        for method, path, body in (("GET", base, None), ("DELETE", base, None),
                                   ("POST", base + "/runs", {"input": 1}),
                                   ("GET", base + "/runs/" + rid, None),
                                   ("POST", base + "/runs/%s/cancel" % rid, None),
                                   ("GET", base + "/events", None),
                                   ("GET", base + "/events?after=0", None),
                                   ("GET", base + "/state", None),
                                   ("GET", base + "/state/k", None),
                                   ("PUT", base + "/state/k", "1"),
                                   ("DELETE", base + "/state/k", None)):
            with self.subTest(method=method, path=path):
                r = self.req(method, path, body, token=token)
                self.assertError(r, 404, "not_found")

    def test_runs_execute_one_at_a_time_in_order_and_queue_limit(self):
        agent = self.py_agent("queue-py", session={"max_queued_runs": 2})
        sid = self.create(agent)["id"]
        rids = [self.run_async(sid, {"op": "sleep", "seconds": 0.4, "n": i}) for i in range(3)]
        # One running, two waiting: the queue is full.
        r = self.post_run(sid, {"op": "sleep", "seconds": 0}, query="?wait=false")
        self.assertError(r, 429, "session_busy")
        r = self.post_run(sid, {"op": "sleep", "seconds": 0})
        self.assertError(r, 429, "session_busy")
        got = self.get(sid)
        self.assertEqual(got["state"], "running", got)
        recs = [self.wait_run(sid, rid) for rid in rids]
        for rec in recs:
            self.assertEqual(rec["status"], "completed", rec)
        for a, b in zip(recs, recs[1:]):
            self.assertLessEqual(a["created_at"], b["created_at"], recs)
            self.assertLessEqual(a["finished_at"], b["started_at"],
                                 "runs of one session overlapped: %r" % recs)
        # One process served them all, in order.
        self.assertEqual([rec["output"]["served"] for rec in recs], [1, 2, 3], recs)
        # The log: each run's events together, started ... completed, in submission order.
        events = self.log(sid)
        self.assertEqual([(e["type"], e["run"]) for e in events],
                         [(t, rid) for rid in rids for t in ("run.started", "run.completed")])
        # The queue has room again.
        self.assertEqual(self.run_ok(sid, {"op": "echo"})["served"], 4)

    def test_hibernate_then_resume_with_kv_intact(self):
        agent = self.py_agent("hib-py", session={"hibernate_after_s": 1, "expire_after_s": 3600})
        sid = self.create(agent)["id"]
        out = self.run_ok(sid, {"op": "set", "kv": [["a", 1], ["b", {"x": [1, 2]}]]})
        self.assertIs(out["resumed"], False, out)
        self.assertEqual(out["session"], sid, out)
        t0 = time.monotonic()
        self.wait_state(sid, "hibernated", 4.0)
        self.assertGreaterEqual(time.monotonic() - t0, 0.5, "hibernated before hibernate_after_s")
        self.assertAgentsAlive(0)
        events = self.log(sid)
        self.assertEqual(self.types(events)[-1], "session.hibernated", events)
        # A client write while hibernated, then the agent reads everything back.
        self.assertStatus(self.req("PUT", "/v1/sessions/%s/state/c" % sid, '"client"'), 200)
        out = self.run_ok(sid, {"op": "state"})
        self.assertIs(out["resumed"], True, "hello.resumed after hibernation: %r" % out)
        self.assertEqual(out["served"], 1, out)
        self.assertEqual(out["state"], {"a": 1, "b": {"x": [1, 2]}, "c": "client"}, out)
        self.assertEqual(self.kv(sid), {"a": 1, "b": {"x": [1, 2]}, "c": "client"})
        after = self.log(sid, after=len(events), idle=False)
        self.assertEqual(self.types(after)[:3], ["session.resumed", "run.started", "run.completed"], after)
        self.assertEqual(self.get(sid)["runs"], 2)
        # And it hibernates again.
        self.wait_state(sid, "hibernated", 4.0)

    def test_crash_reason_and_respawn(self):
        agent = self.py_agent("crash-py", limits={"memory_mb": 64})
        sid = self.create(agent)["id"]
        self.run_ok(sid, {"op": "set", "kv": [["kept", "yes"]]})

        res = self.assertRunResult(self.post_run(sid, {"op": "exit", "code": 3}), "failed")
        self.assertEqual(res["error"]["code"], "exited", res)
        events = self.log(sid)
        self.assertEqual(self.types(events)[-2:], ["run.failed", "session.crashed"], events)
        crashed = events[-1]
        self.assertEqual(crashed["error"]["code"], "exited", crashed)
        self.assertNotIn("run", crashed, crashed)
        self.assertAgentsAlive(0)

        # The next run respawns it, resumed, with its KV.
        out = self.run_ok(sid, {"op": "state"})
        self.assertIs(out["resumed"], True, out)
        self.assertEqual(out["served"], 1, out)
        self.assertEqual(out["state"], {"kept": "yes"}, out)

        # A memory bomb: oom, precisely.
        res = self.assertRunResult(self.post_run(sid, {"op": "bomb"}), "failed")
        self.assertEqual(res["error"]["code"], "oom", res)
        events = self.log(sid)
        self.assertEqual(self.types(events)[-1], "session.crashed", events)
        self.assertEqual(events[-1]["error"]["code"], "oom", events[-1])
        out = self.run_ok(sid, {"op": "state"})
        self.assertEqual((out["resumed"], out["state"]), (True, {"kept": "yes"}), out)
        self.assertEqual(self.state_of(sid), "ready")

    def test_crash_message_says_it_once(self):
        agent = self.py_agent("crashmsg-py")
        sid = self.create(agent)["id"]
        res = self.assertRunResult(self.post_run(sid, {"op": "exit", "code": 3}), "failed")
        self.assertEqual(res["error"]["code"], "exited", res)
        self.assertIn("code 3", res["error"]["message"], res)
        self.assertEqual(res["error"]["message"].count("code 3"), 1,
                         "the message names the exit status, once: %r" % res["error"])

    def test_five_crashes_within_60_s_fail_the_session(self):
        agent = self.py_agent("crash5-py")
        sid = self.create(agent)["id"]
        self.run_ok(sid, {"op": "set", "kv": [["kept", "yes"]]})
        # Five crashes within 60 s, 1.2 s apart: longer than a housekeeping period (1 s),
        # as crashes in real life would be.
        for i in range(5):
            if i:
                time.sleep(1.2)
            self.assertNotEqual(self.state_of(sid), "failed", "failed after %d crashes" % i)
            res = self.assertRunResult(self.post_run(sid, {"op": "exit", "code": 7}), "failed")
            self.assertEqual(res["error"]["code"], "exited", res)
        events = self.log(sid)
        self.assertEqual(self.types(events).count("session.crashed"), 5, events)
        self.assertEqual(self.state_of(sid), "failed",
                         "5 crashes within %.0f s" % (4 * 1.2 + 1))
        r = self.post_run(sid, {"op": "state"})
        self.assertError(r, 409, "conflict")
        r = self.post_run(sid, {"op": "state"}, query="?wait=false")
        self.assertError(r, 409, "conflict")
        self.assertAgentsAlive(0)
        # Its state is still readable, and it can be destroyed.
        self.assertEqual(self.kv(sid), {"kept": "yes"})
        self.assertStatus(self.req("DELETE", "/v1/sessions/" + sid), 204)

    def test_sse_resume_after_dropped_connection(self):
        sid = self.create("echo")["id"]
        for _ in range(3):
            self.run_ok(sid, "a b c d")  # 6 events each: seqs 1..18
        full = self.log(sid)
        self.assertEqual(len(full), 18)

        first = self.open_events(sid, "?after=0")
        part = self.read_until(first, 7, "first connection")
        self.assertEvents(part, 1, 7)
        first.close()  # dropped mid-stream

        # Resume with Last-Event-ID (token in ?access_token=) and with ?after=.
        by_header = self.open_events(sid, "?access_token=" + self.token, token=None,
                                     headers={"Last-Event-ID": "7"})
        by_query = self.open_events(sid, "?after=7")
        got_h = self.read_until(by_header, 18, "Last-Event-ID: 7")
        got_q = self.read_until(by_query, 18, "?after=7")
        for got in (got_h, got_q):
            self.assertEvents(got, 8, 18)
            self.assertEqual([ev["data"] for ev in got], full[7:])

        # Live events follow on both, once each.
        res = self.assertRunResult(self.post_run(sid, "live one"), "completed")
        for stream in (by_header, by_query):
            live = self.read_until(stream, 22, "live")
            self.assertEvents(live, 19, 22)
            self.assertEqual([ev["data"]["run"] for ev in live], [res["id"]] * 4)
            self.assertEqual(live[-1]["event"], "run.completed")
            self.assertIdle(stream, 0.3, "after the live run")

        # Resuming at the end waits for what comes next.
        tail = self.open_events(sid, "?after=22")
        rid = self.run_async(sid, "x")
        got = self.read_until(tail, 25, "?after=22")
        self.assertEvents(got, 23, 25)
        self.assertEqual({ev["data"]["run"] for ev in got}, {rid})

    def test_events_truncated_before_the_kept_window(self):
        # --events-kept is 1000 (the default): a log of twice that must have been trimmed.
        agent = self.py_agent("emit-py")
        sid = self.create(agent)["id"]
        self.run_ok(sid, {"op": "emit", "n": 2100})
        last = self.get(sid)["last_seq"]
        self.assertEqual(last, 2102)
        stream = self.open_events(sid, "?after=0")
        head = stream.next_event()
        self.assertIsNotNone(head)
        self.assertEqual(head.get("event"), "events.truncated",
                         "a resume from before the kept window must say so first: %r" % head)
        self.assertEqual(head["data"].get("type"), "events.truncated", head)
        rest = self.read_until(stream, last, "after events.truncated")
        first = rest[0]["data"]["seq"]
        self.assertGreater(first, 1, "nothing was trimmed; the test needs more events")
        self.assertLessEqual(first, last - 1000 + 1, "fewer than the last 1000 events kept")
        self.assertEvents(rest, first, last)
        # Inside the window: no truncation notice, exactly what follows.
        stream = self.open_events(sid, "?after=%d" % (last - 10))
        got = self.read_until(stream, last)
        self.assertEvents(got, last - 9, last)

    def test_two_tokens_cannot_see_each_others_sessions(self):
        a, b = self.new_token("client-a"), self.new_token("client-b")
        sa = self.create("echo", token=a["token"])["id"]
        sb = self.create("echo", token=b["token"])["id"]
        ra = self.assertRunResult(self.post_run(sa, "mine", token=a["token"]), "completed")["id"]
        self.assertStatus(self.req("PUT", "/v1/sessions/%s/state/k" % sa, '"a"', token=a["token"]), 200)

        # B sees nothing of A's session, whatever the route.
        self.assertGone(sa, ra, token=b["token"])
        r = self.req("GET", "/v1/sessions/%s/events?access_token=%s" % (sa, b["token"]), token=None)
        self.assertError(r, 404, "not_found")
        r = self.req("GET", "/v1/sessions/%s/events" % sa, token=None,
                     headers={"Authorization": "Bearer " + b["token"], "Last-Event-ID": "0"})
        self.assertError(r, 404, "not_found")
        # ... and none of it changed A's session.
        self.assertEqual(self.get(sa, token=a["token"])["runs"], 1)
        self.assertEqual(self.kv(sa, token=a["token"]), {"k": "a"})
        self.assertEqual(self.run_record(sa, ra, token=a["token"])["status"], "completed")

        def listing(token, query=""):
            r = self.assertStatus(self.req("GET", "/v1/sessions" + query, token=token), 200)
            return sorted(x["id"] for x in r.json()["sessions"])
        self.assertEqual(listing(a["token"]), [sa])
        self.assertEqual(listing(b["token"]), [sb])
        self.assertEqual(listing(a["token"], "?all=false"), [sa])
        self.assertEqual(listing(True), [])  # the admin's own: none
        self.assertEqual(listing(True, "?all=true"), sorted([sa, sb]))
        for t in (a, b):
            r = self.req("GET", "/v1/sessions?all=true", token=t["token"])
            self.assertError(r, 403, "forbidden")
        # An admin sees every session.
        self.assertEqual(self.get(sa)["id"], sa)
        self.assertEqual(self.kv(sb), {})
        # A's own destroy works; B's session is untouched.
        self.assertStatus(self.req("DELETE", "/v1/sessions/" + sa, token=a["token"]), 204)
        self.assertEqual(self.get(sb, token=b["token"])["state"], "ready")

    def test_destroy_removes_kv_events_runs_and_process(self):
        agent = self.py_agent("destroy-py")
        sid = self.create(agent)["id"]
        out = self.run_ok(sid, {"op": "set", "kv": [["k1", 1], ["k2", "two"]]})
        rid = self.run_async(sid, {"op": "state"})
        self.wait_run(sid, rid)
        self.assertStatus(self.req("PUT", "/v1/sessions/%s/state/k3" % sid, "[3]"), 200)
        self.assertEqual(self.kv(sid), {"k1": 1, "k2": "two", "k3": [3]})
        self.assertEqual(out["session"], sid)
        self.assertAgentsAlive(1)
        db = self.db_rows(sid)
        self.assertTrue(db["session_kv"] == 3 and db["session_events"] == 4 and db["session_runs"] == 2,
                        "the test expects rows before destroy: %r" % db)

        self.assertStatus(self.req("DELETE", "/v1/sessions/" + sid), 204)
        self.assertGone(sid, rid)
        self.assertAgentsAlive(0, within=5.0)
        self.assertEqual(child_pids(self.d.proc.pid), [], "agent processes left")
        self.assertEqual(self.db_rows(sid), {"sessions": 0, "session_kv": 0, "session_events": 0,
                                             "session_runs": 0}, "rows left after destroy")
        # A new session starts empty: no keys, no events, not even through the agent.
        sid2 = self.create(agent)["id"]
        self.assertNotEqual(sid2, sid)
        self.assertEqual(self.kv(sid2), {})
        self.assertEqual(self.get(sid2)["last_seq"], 0)
        out = self.run_ok(sid2, {"op": "state"})
        self.assertEqual(out["state"], {}, out)
        self.assertEqual([e["seq"] for e in self.log(sid2)], [1, 2])

    def test_destroy_during_a_run_answers_its_client(self):
        sid = self.create("slow")["id"]
        result = {}

        def waiter():
            try:
                result["r"] = self.post_run(sid, {"seconds": 10}, timeout=20)
            except Exception as e:  # noqa: BLE001 - reported below
                result["e"] = e
        t = threading.Thread(target=waiter, daemon=True)
        t.start()
        self.assertTrue(wait_until(lambda: self.get(sid).get("active_run"), 5.0),
                        "the run did not start")
        t0 = time.monotonic()
        self.assertStatus(self.req("DELETE", "/v1/sessions/" + sid), 204)
        t.join(5.0)
        self.assertFalse(t.is_alive(), "the waiting run client got no answer within 5 s of destroy")
        self.assertNotIn("e", result, result)
        self.assertNotEqual(result["r"].status, 200, "a destroyed session's run completed: %r" % result)
        self.assertLess(time.monotonic() - t0, 5.0)
        self.assertAgentsAlive(0, within=5.0)

    def db_rows(self, sid):
        """Rows of sid in the daemon's database, read-only beside the running daemon."""
        path = os.path.join(self.d.state_dir, "agenthost.db")
        conn = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=5)
        try:
            out = {"sessions": conn.execute("SELECT count(*) FROM sessions WHERE id = ?", (sid,)).fetchone()[0]}
            for table in ("session_kv", "session_events", "session_runs"):
                out[table] = conn.execute("SELECT count(*) FROM %s WHERE session = ?" % table,
                                          (sid,)).fetchone()[0]
            return out
        finally:
            conn.close()

    def test_cancel_running_and_queued_runs(self):
        sid = self.create("slow")["id"]
        watch = self.open_events(sid, "?after=0")
        r1 = self.run_async(sid, {"seconds": 10})
        r2 = self.run_async(sid, {"seconds": 10})
        # The agent is inside the run once it streamed something (test_cancel_as_the_run_
        # starts covers a cancel that crosses the run frame).
        got = self.read_until(watch, 2, "run.output of " + r1)
        self.assertEqual([(e["event"], e["data"]["run"]) for e in got],
                         [("run.started", r1), ("run.output", r1)])
        self.assertEqual(self.run_record(sid, r1)["status"], "running")
        self.assertEqual(self.run_record(sid, r2)["status"], "queued")

        # A queued run: removed at once, never started.
        r = self.assertStatus(self.req("POST", "/v1/sessions/%s/runs/%s/cancel" % (sid, r2)), 202)
        rec = self.run_record(sid, r2)
        self.assertEqual(rec["status"], "cancelled", rec)
        self.assertEqual(rec["error"]["code"], "cancelled", rec)
        self.assertEqual(self.get(sid)["queued_runs"], 0)

        # The running one: cancelled within about a second.
        t0 = time.monotonic()
        self.assertStatus(self.req("POST", "/v1/sessions/%s/runs/%s/cancel" % (sid, r1)), 202)
        rec = self.wait_run(sid, r1, ("cancelled", "completed", "failed"), 5.0)
        took = time.monotonic() - t0
        self.assertEqual(rec["status"], "cancelled", rec)
        self.assertEqual(rec["error"]["code"], "cancelled", rec)
        self.assertNotIn("output", rec, rec)
        self.assertLess(took, 1.0, "cancel took %.2f s" % took)
        events = self.log(sid)
        self.assertNotIn("run.started", self.types(events, r2), "a cancelled queued run started")
        self.assertEqual(self.types(events, r2), ["run.cancelled"], events)
        self.assertEqual(self.types(events, r1)[0], "run.started")
        self.assertEqual(self.types(events, r1)[-1], "run.cancelled")
        self.assertNotIn("session.crashed", self.types(events))

        # Finished runs and unknown runs cannot be cancelled; the session goes on.
        for rid in (r1, r2, "r_" + "0" * 32):
            r = self.req("POST", "/v1/sessions/%s/runs/%s/cancel" % (sid, rid))
            self.assertError(r, 404, "not_found")
        self.assertEqual(self.run_ok(sid, {"seconds": 0.2}), {"n": 2})

        # A streamed run, cancelled while it streams: ends with run.cancelled and closes.
        stream = SSEStream(self.d, "POST", "/v1/sessions/%s/runs" % sid, {"input": {"seconds": 10}},
                           token=self.token)
        self.addCleanup(stream.close)
        self.assertEqual(stream.status, 200)
        started = stream.next_event()
        self.assertEqual(started["event"], "run.started", started)
        rid = started["data"]["run"]
        self.assertEqual(stream.next_event()["event"], "run.output")
        self.assertStatus(self.req("POST", "/v1/sessions/%s/runs/%s/cancel" % (sid, rid)), 202)
        rest = stream.events()
        self.assertTrue(rest and rest[-1]["event"] == "run.cancelled", rest)
        self.assertTrue(all(ev["data"]["run"] == rid for ev in rest), rest)

    def test_cancel_as_the_run_starts(self):
        """docs/protocol.md: "cancel may come at any time"; the host sends run, then cancel.
        Here the agent reads both in one go: its previous run sent done and went on working
        for 0.5 s without reading, while the host started the next run and the client
        cancelled it. The run must still end cancelled promptly, not after the 5 s grace
        period (nor run to its end)."""
        agent = self.py_agent("cancel-py")
        sid = self.create(agent)["id"]
        first = self.run_async(sid, {"op": "done_then_linger", "seconds": 0.5})
        second = self.run_async(sid, {"op": "sleep", "seconds": 3})
        self.wait_run(sid, first, ("completed",), 5.0)
        self.wait_run(sid, second, ("running",), 2.0)
        t0 = time.monotonic()
        self.assertStatus(self.req("POST", "/v1/sessions/%s/runs/%s/cancel" % (sid, second)), 202)
        rec = self.wait_run(sid, second, timeout=10.0)
        took = time.monotonic() - t0
        self.assertEqual(rec["status"], "cancelled", rec)
        self.assertLess(took, 1.5, "a cancel sent right after the run frame took %.2f s: %r" % (took, rec))
        self.assertEqual(rec["error"]["code"], "cancelled", rec)

    def test_agent_kv_value_limit(self):
        agent = self.py_agent("big-py", limits={"memory_mb": 256})
        sid = self.create(agent)["id"]
        out = self.run_ok(sid, {"op": "set_big", "bytes": 2 << 20})
        self.assertEqual(out["kv_error"], "too_large", out)
        out = self.run_ok(sid, {"op": "set_big", "bytes": 1000})
        self.assertIsNone(out["kv_error"], out)
        self.assertEqual(self.kv(sid), {"big": "x" * 1000})

    def test_bad_inputs_on_every_session_route(self):
        sid = self.create("echo")["id"]
        rid = self.assertRunResult(self.post_run(sid, "x"), "completed")["id"]
        base = "/v1/sessions/" + sid
        unknown = "s_0000" + "0" * 32

        # Unknown agent / session / run / key: 404.
        self.assertError(self.req("POST", "/v1/agents/nope/sessions"), 404, "not_found")
        self.assertGone(unknown, rid)
        self.assertGone("not-a-session-id", rid)
        self.assertError(self.req("GET", base + "/runs/r_" + "0" * 32), 404, "not_found")
        self.assertError(self.req("GET", base + "/state/missing"), 404, "not_found")
        self.assertError(self.req("DELETE", base + "/state/missing"), 404, "not_found")

        # Malformed JSON, wrong shapes and unknown fields: 400.
        for method, path in (("POST", "/v1/agents/echo/sessions"), ("POST", base + "/runs")):
            for body in ('{"input": ', "[1]", '"text"', "{'a': 1}"):
                with self.subTest(path=path, body=body):
                    self.assertError(self.req(method, path, body), 400, "bad_request")
        self.assertError(self.req("POST", "/v1/agents/echo/sessions", {"confg": {}}), 400,
                         "bad_request", "confg")
        self.assertError(self.req("POST", "/v1/agents/echo/sessions", {"config": []}), 400,
                         "bad_request", "config")
        self.assertError(self.req("POST", "/v1/agents/echo/sessions", {"config": {"NOPE": "x"}}),
                         400, "bad_request", "NOPE")
        self.assertError(self.req("POST", base + "/runs", {"input": 1, "inptu": 2}), 400,
                         "bad_request", "inptu")
        self.assertError(self.req("POST", "/v1/agents/upper-py/sessions"), 400, "bad_request")
        for body in ("", "{", "not json", '{"a": 1, "a": 2}', "[1,]"):
            with self.subTest(put=body):
                self.assertError(self.req("PUT", base + "/state/k", body), 400, "bad_request")
        self.assertError(self.req("GET", base + "/state/" + "k" * 513), 400, "bad_request")
        for query, hdrs in (("?after=abc", None), ("?after=-1", None), ("?after=1x", None),
                            ("", {"Last-Event-ID": "seven"})):
            with self.subTest(events=query or hdrs):
                self.assertError(self.req("GET", base + "/events" + query, headers=hdrs), 400,
                                 "bad_request")

        # Values: up to 1 MiB of JSON, more is 413.
        limit = 1 << 20
        ok_value = '"' + "v" * (limit - 2) + '"'
        self.assertEqual(len(ok_value), limit)
        r = self.req("PUT", base + "/state/big", ok_value)
        self.assertStatus(r, 200)
        self.assertEqual(len(self.assertStatus(self.req("GET", base + "/state/big"), 200).json()["value"]),
                         limit - 2)
        r = self.req("PUT", base + "/state/big", '"' + "v" * (limit - 1) + '"')
        self.assertError(r, 413, "too_large")
        self.assertEqual(len(self.assertStatus(self.req("GET", base + "/state/big"), 200).json()["value"]),
                         limit - 2, "a refused PUT changed the value")
        self.assertError(self.req("PUT", base + "/state/k", "1",
                                  headers={"Content-Type": "image/png"}), 415, "unsupported_media_type")

        # Wrong methods: 405 with Allow.
        for method, path in (("PUT", "/v1/sessions"), ("DELETE", "/v1/sessions"),
                             ("POST", base), ("PUT", base), ("GET", base + "/runs"),
                             ("DELETE", base + "/runs/" + rid), ("POST", base + "/runs/" + rid),
                             ("GET", base + "/runs/%s/cancel" % rid), ("POST", base + "/events"),
                             ("POST", base + "/state"), ("DELETE", base + "/state"),
                             ("POST", base + "/state/k"), ("GET", "/v1/agents/echo/sessions")):
            with self.subTest(method=method, path=path):
                r = self.req(method, path, {} if method in ("POST", "PUT") else None)
                self.assertError(r, 405, "method_not_allowed")
                self.assertTrue(r.header("Allow"), "405 without Allow: %r" % r.headers)
                self.assertNotIn(method, [m.strip() for m in r.header("Allow").split(",")])

        # No token or a wrong one: 401, on every route, before anything else.
        routes = (("POST", "/v1/agents/echo/sessions"), ("GET", "/v1/sessions"),
                  ("GET", base), ("DELETE", base), ("POST", base + "/runs"),
                  ("GET", base + "/runs/" + rid), ("POST", base + "/runs/%s/cancel" % rid),
                  ("GET", base + "/events"), ("GET", base + "/state"),
                  ("GET", base + "/state/k"), ("PUT", base + "/state/k"),
                  ("DELETE", base + "/state/k"))
        for method, path in routes:
            for token in (None, "aht_wrong"):
                with self.subTest(method=method, path=path, token=token):
                    r = self.req(method, path, '{"input": 1}' if method in ("POST", "PUT") else None,
                                 token=token)
                    self.assertError(r, 401, "unauthorized")
        self.assertError(self.req("GET", base + "/events?access_token=aht_wrong", token=None), 401,
                         "unauthorized")
        # Nothing above touched the session.
        got = self.get(sid)
        self.assertEqual((got["state"], got["runs"]), ("ready", 1), got)
        self.assertEqual(set(self.kv(sid)), {"big"})
        listed = self.assertStatus(self.req("GET", "/v1/sessions"), 200).json()["sessions"]
        self.assertEqual([x["id"] for x in listed], [sid], "a refused create left a session")


class MaxSessionsTests(SessionCase):
    """--max-sessions 2: "past it the least recently used idle one hibernates, or 503 if
    none is idle" (agenthostd --help; DESIGN §6: limits answer 503/429, never hang)."""

    daemon_args = ("--max-sessions", "2")

    def test_lru_idle_session_hibernates_or_503(self):
        s1 = self.create("slow")["id"]
        s2 = self.create("slow")["id"]
        self.assertAgentsAlive(2)
        s3 = self.create("slow")["id"]  # s1 is the least recently used: it makes room
        self.wait_state(s1, "hibernated", 3.0)
        self.assertEqual([self.state_of(s) for s in (s2, s3)], ["ready", "ready"])
        self.assertAgentsAlive(2)
        self.assertEqual(self.types(self.log(s1)), ["session.hibernated"])
        # Use s2: now s3 is the least recently used.
        self.assertEqual(self.run_ok(s2, {"seconds": 0}), {"n": 0})
        s4 = self.create("slow")["id"]
        self.wait_state(s3, "hibernated", 3.0)
        self.assertEqual([self.state_of(s) for s in (s1, s2, s4)], ["hibernated", "ready", "ready"])
        self.assertAgentsAlive(2)

        # Both live ones busy: no room, 503 at once, nothing left behind.
        busy = [(s, self.run_async(s, {"seconds": 10})) for s in (s2, s4)]
        for s, rid in busy:
            self.wait_run(s, rid, ("running",), 5.0)
        t0 = time.monotonic()
        r = self.req("POST", "/v1/agents/slow/sessions")
        self.assertError(r, 503, "over_capacity")
        self.assertLess(time.monotonic() - t0, 2.0)
        listed = self.assertStatus(self.req("GET", "/v1/sessions"), 200).json()["sessions"]
        self.assertEqual(sorted(x["id"] for x in listed), sorted([s1, s2, s3, s4]))
        # A run of a hibernated session has no room either: 503 (session.h: session_run),
        # not a hang.
        t0 = time.monotonic()
        r = self.post_run(s1, {"seconds": 0}, timeout=10)
        self.assertLess(time.monotonic() - t0, 2.0)
        self.assertError(r, 503, "over_capacity")
        self.assertAgentsAlive(2)

        for s, rid in busy:
            self.assertStatus(self.req("POST", "/v1/sessions/%s/runs/%s/cancel" % (s, rid)), 202)
            self.wait_run(s, rid, ("cancelled",), 3.0)
        # Room again: s1 resumes, the least recently used idle one hibernates.
        self.assertEqual(self.run_ok(s1, {"seconds": 0}), {"n": 0})
        self.assertAgentsAlive(2)
        self.assertEqual(sorted(self.state_of(s) for s in (s1, s2, s3, s4)),
                         ["hibernated", "hibernated", "ready", "ready"])


if __name__ == "__main__":
    main()
