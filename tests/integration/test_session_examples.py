"""End-to-end tests of the session examples (examples/counter, examples/notes-py) through the
real daemon, started with `agenthostd --manifests BUILD/examples`: sessions created, run and
destroyed over HTTP, with the daemon restarted cleanly and after `kill -9`, an agent process
killed, and a session hibernated. Oracle: docs/http.md ("Sessions"; "Runs, events and
stateless calls"), DESIGN.md §5-§6 and each example's README. Issue 5's Done-when
("agentctl create counter", three runs print 1, 2, 3, kill -9, restart, the fourth prints 4)
is checked over HTTP."""

import os
import re
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (EXAMPLES, RFC3339_MS, RUN_ID, DaemonTestCase, SSEStream,  # noqa: E402
                     agent_variant, child_pids, example, main, pid_alive, wait_until)

SESSION_ID = re.compile(r"^s_[0-9a-f]{4}[0-9a-f]{32}$")
HIBERNATE_WAIT = 8.0  # s: hibernate_after_s 1 plus the once-a-second housekeeping, with margin


def comm(pid):
    """The command name of a process, or None if it is gone."""
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return None


class SessionExamples(DaemonTestCase):
    """A daemon with --manifests BUILD/examples; every call uses the admin token."""

    start_daemon = False

    def setUp(self):
        super().setUp()
        example("counter")
        example("notes-py")
        self.d = self.new_daemon(manifests=EXAMPLES).start()

    # -- HTTP helpers ------------------------------------------------------------------------
    def call(self, method, path, body=None, headers=None, timeout=30):
        return self.d.request(method, path, body, headers=headers, token=self.d.admin_token,
                              timeout=timeout)

    def create(self, agent):
        """POST /v1/agents/AGENT/sessions; asserts the 201 of docs/http.md; returns the id."""
        # With a body: a bodiless POST (Content-Length: 0) has its own test below.
        r = self.call("POST", "/v1/agents/%s/sessions" % agent, {})
        self.assertStatus(r, 201)
        s = r.json()
        self.assertRegex(s.get("id", ""), SESSION_ID, s)
        self.assertEqual((s.get("agent"), s.get("version"), s.get("state")),
                         (agent, "1.0.0", "ready"), s)
        self.assertEqual((s.get("runs"), s.get("last_seq")), (0, 0), s)
        self.assertRegex(s.get("created_at", ""), RFC3339_MS, s)
        return s["id"]

    def session(self, sid):
        r = self.call("GET", "/v1/sessions/" + sid)
        self.assertStatus(r, 200)
        return r.json()

    def run_json(self, sid, input, status="completed"):
        """A run, waited for as JSON: asserts 200 and the status; returns the result."""
        r = self.call("POST", "/v1/sessions/%s/runs" % sid, {"input": input})
        self.assertStatus(r, 200)
        self.assertTrue((r.header("Content-Type") or "").startswith("application/json"), r)
        res = r.json()
        self.assertRegex(res.get("id", ""), RUN_ID, res)
        self.assertEqual(res.get("status"), status,
                         "POST /v1/sessions/%s/runs %.80r: %r" % (sid, input, res))
        for k in ("created_at", "started_at", "finished_at"):
            self.assertRegex(res.get(k) or "", RFC3339_MS, res)
        if status == "completed":
            self.assertIn("output", res, res)
            self.assertNotIn("error", res, res)
        else:
            self.assertNotIn("output", res, res)
            self.assertEqual(set(res.get("error") or {}), {"code", "message"}, res)
        return res

    def run_sse(self, sid, input, terminal="run.completed"):
        """A run with Accept: text/event-stream, read until the server closes the stream.
        Checks the form (run.started, run.output..., one terminal event; ids are the seqs,
        strictly increasing; one run id) and returns the events."""
        stream = SSEStream(self.d, "POST", "/v1/sessions/%s/runs" % sid, {"input": input},
                           token=self.d.admin_token, timeout=30)
        self.addCleanup(stream.close)
        if stream.status != 200:
            self.fail("SSE run answered %d: %r" % (stream.status, stream.resp.read()[:300]))
        self.assertTrue((stream.header("Content-Type") or "").startswith("text/event-stream"))
        events = stream.events()
        self.assertTrue(events, "no events in %r" % stream.raw)
        types = [ev.get("event") for ev in events]
        self.assertEqual(types[0], "run.started", types)
        self.assertEqual(types[-1], terminal, types)
        self.assertTrue(all(t == "run.output" for t in types[1:-1]), types)
        run = events[0]["data"].get("run")
        self.assertRegex(run or "", RUN_ID, events[0])
        last = 0
        for ev in events:
            data = ev["data"]
            self.assertEqual(ev.get("event"), data.get("type"), ev)
            self.assertEqual(ev.get("id"), str(data.get("seq")), ev)
            self.assertGreater(data["seq"], last, "seq must increase: %r" % events)
            last = data["seq"]
            self.assertEqual(data.get("run"), run, ev)
            self.assertRegex(data.get("time", ""), RFC3339_MS, ev)
        return events

    def event_log(self, sid):
        """The whole event log of a session: GET /v1/sessions/{id}/events read up to the
        session's last_seq (the stream stays open for live events, so it is closed then).
        Asserts seq 1..last_seq without a gap; returns the events' data."""
        last_seq = self.session(sid)["last_seq"]
        stream = SSEStream(self.d, "GET", "/v1/sessions/%s/events" % sid,
                           token=self.d.admin_token)
        try:
            self.assertEqual(stream.status, 200)
            events = []
            while last_seq and (not events or events[-1]["data"]["seq"] < last_seq):
                ev = stream.next_event()
                if ev is None:
                    break
                events.append(ev)
        finally:
            stream.close()
        self.assertEqual([ev["data"]["seq"] for ev in events], list(range(1, last_seq + 1)),
                         "the event log must hold seq 1..last_seq without gap")
        return [ev["data"] for ev in events]

    def counter_runs(self, sid, first, last):
        """Runs counter on sid, expecting outputs first..last, half as JSON, half as SSE."""
        for n in range(first, last + 1):
            if n % 2:
                self.assertEqual(self.run_json(sid, {})["output"], n)
            else:
                events = self.run_sse(sid, {})
                self.assertEqual([ev["data"].get("data") for ev in events[1:-1]],
                                 [{"count": n}], events)
                self.assertEqual(events[-1]["data"].get("output"), n, events)

    def state(self, sid):
        r = self.call("GET", "/v1/sessions/%s/state" % sid)
        self.assertStatus(r, 200)
        return r.json().get("state")

    def daemon_agents(self, name):
        """PIDs of the daemon's live agent processes with that command name."""
        return {p for p in child_pids(self.d.proc.pid) if comm(p) == name}

    def install_variant(self, name, src, changes):
        """Installs a copy of the built example src renamed NAME, agent.json merged with
        changes."""
        dest = agent_variant(src, os.path.join(self.tmp, "src", name), dict(changes, name=name))
        self.assertStatus(self.d.install(dest), 201)

    # -- counter -----------------------------------------------------------------------------
    def test_counter_counts_across_clean_restart(self):
        sid = self.create("counter")
        self.counter_runs(sid, 1, 3)
        self.assertEqual(self.state(sid), {"count": 3})
        self.d.restart()  # SIGTERM (exit status 0 asserted), then start on the same state
        s = self.session(sid)
        self.assertEqual((s["state"], s["runs"]), ("hibernated", 3), s)
        self.counter_runs(sid, 4, 5)
        log = self.event_log(sid)
        types = [e["type"] for e in log]
        self.assertIn("session.resumed", types)
        self.assertLess(types.index("session.resumed"),
                        [i for i, t in enumerate(types) if t == "run.started"][3],
                        "session.resumed comes before the 4th run starts: %r" % types)
        self.assertEqual([e["output"] for e in log if e["type"] == "run.completed"],
                         [1, 2, 3, 4, 5])
        self.assertEqual(self.state(sid), {"count": 5})

    def test_counter_counts_across_kill_9(self):
        """Issue 5, Done-when: create counter, three runs give 1, 2, 3; kill -9 the daemon,
        restart it; the fourth run gives 4."""
        sid = self.create("counter")
        self.counter_runs(sid, 1, 3)
        agents = self.daemon_agents("counter")
        self.assertEqual(len(agents), 1, "one live counter process for the session")
        before = self.event_log(sid)
        self.d.kill()  # SIGKILL
        # The agent loses its host connection and must not outlive the daemon.
        self.assertTrue(wait_until(lambda: not any(pid_alive(p) for p in agents), 5),
                        "the agent process outlived its daemon's kill -9")
        self.d.start()
        s = self.session(sid)
        self.assertEqual((s["state"], s["runs"], s["last_seq"]),
                         ("hibernated", 3, before[-1]["seq"]), s)
        self.assertEqual(self.state(sid), {"count": 3})
        self.assertEqual(self.event_log(sid), before, "every event was kept")
        self.assertEqual(self.run_json(sid, {})["output"], 4)
        self.counter_runs(sid, 5, 6)

    def test_counter_counts_across_hibernation(self):
        self.install_variant("counter-hib", example("counter"),
                             {"session": {"hibernate_after_s": 1}})
        sid = self.create("counter-hib")
        self.counter_runs(sid, 1, 2)
        wait_until(lambda: self.session(sid)["state"] == "hibernated", HIBERNATE_WAIT, 0.1)
        s = self.session(sid)
        self.assertEqual(s["state"], "hibernated",
                         "idle for %.0f s with hibernate_after_s 1: %r" % (HIBERNATE_WAIT, s))
        # The agent is told destroy and may take a moment to exit.
        wait_until(lambda: not self.daemon_agents("counter"), 3)
        self.assertEqual(self.daemon_agents("counter"), set(),
                         "a hibernated session has no process")
        self.counter_runs(sid, 3, 4)
        log = self.event_log(sid)
        types = [e["type"] for e in log]
        hib = [e for e in log if e["type"] == "session.hibernated"]
        self.assertEqual(len(hib), 1, types)
        self.assertEqual(hib[0].get("reason"), "idle", hib)
        self.assertEqual(types.count("session.resumed"), 1, types)
        self.assertLess(types.index("session.hibernated"), types.index("session.resumed"), types)
        self.assertEqual([e["output"] for e in log if e["type"] == "run.completed"], [1, 2, 3, 4])

    def test_counter_counts_across_agent_crash(self):
        sid = self.create("counter")
        self.counter_runs(sid, 1, 2)
        agents = self.daemon_agents("counter")
        self.assertEqual(len(agents), 1, "one live counter process for the session")
        os.kill(agents.pop(), 9)
        wait_until(lambda: self.session(sid)["state"] == "crashed", 5, 0.05)
        self.assertEqual(self.session(sid)["state"], "crashed")
        self.counter_runs(sid, 3, 4)
        types = [e["type"] for e in self.event_log(sid)]
        self.assertEqual(types.count("session.crashed"), 1, types)
        self.assertEqual(self.state(sid), {"count": 4})

    def test_counter_sessions_count_separately(self):
        a, b = self.create("counter"), self.create("counter")
        self.assertNotEqual(a, b)
        for want_a, want_b in ((1, 1), (2, 2), (3, 3)):
            self.assertEqual(self.run_json(a, {"any": "input"})["output"], want_a)
            if want_a < 3:
                self.assertEqual(self.run_json(b, None)["output"], want_b)
        self.assertEqual((self.state(a), self.state(b)), ({"count": 3}, {"count": 2}))

    def test_counter_bad_state_fails_the_run(self):
        sid = self.create("counter")
        self.assertEqual(self.run_json(sid, {})["output"], 1)
        r = self.call("PUT", "/v1/sessions/%s/state/count" % sid, "\"x\"",
                      headers={"Content-Type": "application/json"})
        self.assertStatus(r, 200)
        res = self.run_json(sid, {}, status="failed")
        self.assertEqual(res["error"]["code"], "bad_state", res)
        self.assertEqual(self.state(sid), {"count": "x"}, "a failed run writes nothing")
        r = self.call("PUT", "/v1/sessions/%s/state/count" % sid, "41",
                      headers={"Content-Type": "application/json"})
        self.assertStatus(r, 200)
        self.assertEqual(self.run_json(sid, {})["output"], 42)

    def test_counter_is_session_only(self):
        r = self.call("POST", "/v1/agents/counter/invoke", {"input": {}})
        self.assertError(r, 400, "bad_request")

    # -- notes-py ----------------------------------------------------------------------------
    def notes_add(self, sid, text, n):
        events = self.run_sse(sid, {"cmd": "add", "text": text})
        self.assertEqual([ev["data"].get("data") for ev in events[1:-1]],
                         [{"id": n, "text": text}], events)
        self.assertEqual(events[-1]["data"].get("output"), {"id": n}, events)

    def test_notes_add_list_search(self):
        sid = self.create("notes-py")
        texts = ["Buy milk", "Call the plumber", "Milkshake at Straße 5", "water the plants"]
        self.assertEqual(self.run_json(sid, {"cmd": "add", "text": texts[0]})["output"], {"id": 1})
        for n, text in enumerate(texts[1:], 2):
            self.notes_add(sid, text, n)
        notes = [{"id": n, "text": t} for n, t in enumerate(texts, 1)]

        events = self.run_sse(sid, {"cmd": "list"})
        self.assertEqual([ev["data"].get("data") for ev in events[1:-1]], notes, events)
        self.assertEqual(events[-1]["data"].get("output"), {"count": 4}, events)

        events = self.run_sse(sid, {"cmd": "search", "q": "MILK"})
        matches = [notes[0], notes[2]]
        self.assertEqual([ev["data"].get("data") for ev in events[1:-1]], matches, events)
        self.assertEqual(events[-1]["data"].get("output"), {"count": 2, "matches": matches})

        events = self.run_sse(sid, {"cmd": "search", "q": "STRASSE"})  # casefold: ß = ss
        self.assertEqual([ev["data"].get("data") for ev in events[1:-1]], [notes[2]], events)

        events = self.run_sse(sid, {"cmd": "search", "q": "nothing like it"})
        self.assertEqual([ev["event"] for ev in events], ["run.started", "run.completed"])
        self.assertEqual(events[-1]["data"].get("output"), {"count": 0, "matches": []})

        self.assertEqual(self.run_json(sid, {"cmd": "list"})["output"], {"count": 4})
        state = self.state(sid)
        self.assertEqual(state, dict({"next": 5}, **{"note:%d" % n: t for n, t in
                                                      enumerate(texts, 1)}))

        # A note deleted by a client is gone from list; numbers are not reused.
        self.assertStatus(self.call("DELETE", "/v1/sessions/%s/state/note:2" % sid), 204)
        self.notes_add(sid, "tenth? no, fifth", 5)
        events = self.run_sse(sid, {"cmd": "list"})
        self.assertEqual([ev["data"]["data"]["id"] for ev in events[1:-1]], [1, 3, 4, 5])

        # The notebook is in the session's state: it survives a restart of the daemon.
        self.d.restart()
        events = self.run_sse(sid, {"cmd": "search", "q": "milk"})
        self.assertEqual(events[-1]["data"].get("output"), {"count": 2, "matches": matches})

    def test_notes_orders_ids_numerically(self):
        sid = self.create("notes-py")
        for n in range(1, 12):
            self.assertEqual(self.run_json(sid, {"cmd": "add", "text": "n%d" % n})["output"],
                             {"id": n})
        events = self.run_sse(sid, {"cmd": "list"})
        self.assertEqual([ev["data"]["data"]["id"] for ev in events[1:-1]], list(range(1, 12)))

    def test_notes_bad_input_fails_the_run(self):
        sid = self.create("notes-py")
        cases = [
            (42, "object"),
            (None, "object"),
            ("list", "object"),
            ({}, "cmd"),
            ({"cmd": "drop"}, "drop"),
            ({"cmd": 1}, "cmd"),
            ({"cmd": "add"}, "text"),
            ({"cmd": "add", "text": ""}, "text"),
            ({"cmd": "add", "text": 7}, "text"),
            ({"cmd": "search"}, "q"),
            ({"cmd": "search", "q": ""}, "q"),
            ({"cmd": "list", "extra": 1}, "extra"),
        ]
        for input, needle in cases:
            shown = repr(input)[:60]
            res = self.run_json(sid, input, status="failed")
            self.assertEqual(res["error"]["code"], "invalid_input", (shown, res))
            self.assertIn(needle, res["error"]["message"], (shown, res))
        events = self.run_sse(sid, {"cmd": "nope"}, terminal="run.failed")
        self.assertEqual(len(events), 2, events)
        self.assertEqual(events[-1]["data"]["error"]["code"], "invalid_input", events)
        # The agent lives on and nothing was stored.
        self.assertEqual(self.state(sid), {})
        self.assertEqual(self.run_json(sid, {"cmd": "list"})["output"], {"count": 0})
        self.assertEqual(self.session(sid)["state"], "ready")

    def test_notes_long_text(self):
        """A note of the most characters a note may have is stored and listed whole; one more
        is invalid_input. Both runs' frames are over 64 KiB."""
        sid = self.create("notes-py")
        text = "0123456789abcdef" * 4096  # 65536 characters
        self.assertEqual(self.run_json(sid, {"cmd": "add", "text": text})["output"], {"id": 1})
        events = self.run_sse(sid, {"cmd": "list"})
        self.assertEqual([ev["data"]["data"] for ev in events[1:-1]], [{"id": 1, "text": text}])
        res = self.run_json(sid, {"cmd": "add", "text": text + "!"}, status="failed")
        self.assertEqual(res["error"]["code"], "invalid_input", res)
        self.assertIn("longer than 65536", res["error"]["message"], res)

    # -- create without a body ---------------------------------------------------------------
    def test_create_with_empty_body(self):
        """docs/http.md: the create body is optional. A POST with Content-Length: 0 (what
        Python's http.client and `curl -H 'Content-Length: 0'` send) creates one session."""
        r = self.call("POST", "/v1/agents/counter/sessions", headers={"Content-Length": "0"})
        self.assertStatus(r, 201)
        sid = r.json()["id"]
        time.sleep(0.5)  # room for a second, unwanted agent process to say ready
        self.assertStatus(self.d.request("GET", "/healthz"), 200)
        listed = [s["id"] for s in self.call("GET", "/v1/sessions").json()["sessions"]]
        self.assertEqual(listed, [sid], "one create, one session")
        self.assertEqual(self.run_json(sid, {})["output"], 1)

    # -- destroy -----------------------------------------------------------------------------
    def test_destroy_removes_session_and_state(self):
        c = self.create("counter")
        n = self.create("notes-py")
        self.counter_runs(c, 1, 2)
        self.notes_add(n, "secret plan", 1)
        for sid, agent in ((c, "counter"), (n, "notes-py")):
            self.assertTrue(self.state(sid))
            r = self.call("DELETE", "/v1/sessions/" + sid)
            self.assertStatus(r, 204)
            for method, path, body in (
                    ("GET", "/v1/sessions/" + sid, None),
                    ("GET", "/v1/sessions/%s/state" % sid, None),
                    ("GET", "/v1/sessions/%s/state/count" % sid, None),
                    ("GET", "/v1/sessions/%s/events" % sid, None),
                    ("POST", "/v1/sessions/%s/runs" % sid, {"input": {}}),
                    ("DELETE", "/v1/sessions/" + sid, None)):
                self.assertError(self.call(method, path, body), 404, "not_found")
            listed = self.call("GET", "/v1/sessions").json()["sessions"]
            self.assertNotIn(sid, [s["id"] for s in listed])
            # The rows are gone from the store (docs/http.md: KV, events, runs deleted at once).
            db = sqlite3.connect("file:%s?mode=ro" % os.path.join(self.d.state_dir,
                                                                 "agenthost.db"), uri=True)
            try:
                for table in ("sessions", "session_kv", "session_events", "session_runs"):
                    col = "id" if table == "sessions" else "session"
                    rows = db.execute("SELECT count(*) FROM %s WHERE %s = ?" % (table, col),
                                      (sid,)).fetchone()[0]
                    self.assertEqual(rows, 0, "%s rows of destroyed %s left in %s"
                                     % (rows, sid, table))
            finally:
                db.close()
            self.assertFalse(os.path.exists(os.path.join(self.d.state_dir, "logs", sid + ".log")))
        # A new session starts from nothing.
        self.assertEqual(self.run_json(self.create("counter"), {})["output"], 1)
        self.assertEqual(self.run_json(self.create("notes-py"), {"cmd": "list"})["output"],
                         {"count": 0})


if __name__ == "__main__":
    main()
