"""Sessions across daemon restarts (kill -9 and clean) and expiry, through the real daemon.
Oracle: DESIGN.md §6 ("daemon restart (clean or kill -9): every session, its KV and its log
are still there, hibernated; every acknowledged KV write and event is kept"; "expire: a
session idle for expire_after_s is destroyed as if by DELETE") and host/session.h (at
start-up the previous daemon's sessions become hibernated, their unfinished runs failed).

The helpers and the test agent are test_sessions.py's (SessionCase, AGENT_PY)."""

import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_sessions as ts  # noqa: E402
from harness import SSEStream, main, wait_until  # noqa: E402

WRITERS = 20
WRITE_FOR_S = 2.0   # seconds of writing before the kill
KEYS_PER_RUN = 3


class Writer(threading.Thread):
    """Runs {"op": "set", "emit": true} in one session over SSE, one run after another,
    until stopped or the daemon goes away. Records what the daemon acknowledged: every
    event it streamed (seq -> event) and every key whose write the agent reported after
    its kv.set was answered (an acknowledged, committed write)."""

    def __init__(self, daemon, token, sid, stop):
        super().__init__(daemon=True)
        self.d, self.token, self.sid, self.stop = daemon, token, sid, stop
        self.seen = {}      # seq -> event data
        self.acked = {}     # key -> value
        self.completed = 0  # runs whose run.completed arrived
        self.ended_by = None

    def run(self):
        n = 0
        try:
            while not self.stop.is_set():
                kv = [["w%d_%d" % (n, j), {"run": n, "j": j, "pad": "x" * 64}]
                      for j in range(KEYS_PER_RUN)]
                s = SSEStream(self.d, "POST", "/v1/sessions/%s/runs" % self.sid,
                              {"input": {"op": "set", "kv": kv, "emit": True}}, token=self.token,
                              timeout=10)
                try:
                    if s.status != 200:
                        self.ended_by = "HTTP %d" % s.status
                        return
                    while True:
                        ev = s.next_event()
                        if ev is None:
                            break
                        data = ev["data"]
                        self.seen[data["seq"]] = data
                        if data["type"] == "run.output":
                            self.acked[data["data"]["acked"]] = data["data"]["value"]
                        elif data["type"] == "run.completed":
                            self.completed += 1
                finally:
                    s.close()
                n += 1
            self.ended_by = "stopped"
        except Exception as e:  # noqa: BLE001 - the daemon was killed under us
            self.ended_by = "%s: %s" % (type(e).__name__, e)


class RestartTests(ts.SessionCase):

    def test_kill9_while_20_sessions_write_kv(self):
        agent = self.py_agent("writer-py")
        sids = [self.create(agent)["id"] for _ in range(WRITERS)]
        self.assertAgentsAlive(WRITERS)
        stop = threading.Event()
        writers = [Writer(self.d, self.token, sid, stop) for sid in sids]
        for w in writers:
            w.start()
        time.sleep(WRITE_FOR_S)
        self.d.kill()  # SIGKILL while they write
        stop.set()
        for w in writers:
            w.join(15)
            self.assertFalse(w.is_alive(), "a writer hangs after the daemon was killed")
        acked = sum(len(w.acked) for w in writers)
        self.assertGreaterEqual(acked, WRITERS, "too few writes before the kill to test anything: "
                                "%s" % [(len(w.acked), w.ended_by) for w in writers])
        busy = sum(1 for w in writers if w.ended_by != "stopped")
        self.assertGreater(busy, 0, "the kill hit no run in flight: %s" % [w.ended_by for w in writers])
        sys.stderr.write("kill -9 after %.1f s: %d acknowledged writes, %d streamed events, %d "
                         "completed runs, %d runs cut\n" % (WRITE_FOR_S, acked,
                                                           sum(len(w.seen) for w in writers),
                                                           sum(w.completed for w in writers), busy))

        self.d.start()
        for w in writers:
            sid = w.sid
            with self.subTest(session=sid):
                got = self.get(sid)
                self.assertEqual(got["state"], "hibernated", got)
                state = self.kv(sid)
                lost = {k: v for k, v in w.acked.items() if state.get(k) != v}
                self.assertEqual(lost, {}, "acknowledged writes lost or changed (%d of %d)"
                                 % (len(lost), len(w.acked)))
                last = got["last_seq"]
                events = self.log(sid)  # 1..last_seq, no gap, no duplicate, then idle
                by_seq = {e["seq"]: e for e in events}
                self.assertGreaterEqual(last, max(w.seen or [0]), "events streamed before the "
                                        "kill are beyond last_seq")
                changed = {seq: (ev, by_seq.get(seq)) for seq, ev in w.seen.items()
                           if by_seq.get(seq) != ev}
                self.assertEqual(changed, {}, "streamed events lost or changed: seq -> (seen, kept)")
                # Every run in the log is finished now: the ones the kill interrupted failed.
                for rid in {e["run"] for e in events if "run" in e}:
                    rec = self.run_record(sid, rid)
                    self.assertIn(rec["status"], ("completed", "failed"), rec)
                    ended = [e for e in events if e.get("run") == rid and e["type"] in ts.TERMINAL]
                    if not ended:
                        self.assertEqual(rec["status"], "failed", rec)
                        self.assertEqual(rec["error"]["code"], "killed", rec)
        # A run after the restart works: respawned (resumed), with every acknowledged key.
        for w in writers:
            with self.subTest(run_after_restart=w.sid):
                before = self.get(w.sid)["last_seq"]
                out = self.run_ok(w.sid, {"op": "state"})
                self.assertIs(out["resumed"], True, out)
                for k, v in w.acked.items():
                    self.assertEqual(out["state"].get(k), v, "agent does not see acknowledged %s" % k)
                after = self.log(w.sid, after=before)
                self.assertEqual(self.types(after), ["session.resumed", "run.started", "run.completed"])

    def test_clean_restart_keeps_sessions_kv_and_log(self):
        agent = self.py_agent("keep-py")
        a = self.create(agent)["id"]
        b = self.create("echo")["id"]
        self.run_ok(a, {"op": "set", "kv": [["x", 1], ["y", [1, "two"]]]})
        self.assertStatus(self.req("PUT", "/v1/sessions/%s/state/z" % b, '{"n": null}'), 200)
        self.run_ok(b, "some words here")
        logs = {s: self.log(s) for s in (a, b)}
        before = {s: self.get(s) for s in (a, b)}

        self.d.restart()  # SIGTERM (exit 0 asserted), start again
        for s in (a, b):
            got = self.get(s)
            self.assertEqual(got["state"], "hibernated", got)
            for k in ("runs", "last_seq", "created_at", "agent", "version"):
                self.assertEqual(got[k], before[s][k], k)
            self.assertEqual(self.log(s), logs[s], "the log changed across a clean restart")
        self.assertEqual(self.kv(a), {"x": 1, "y": [1, "two"]})
        self.assertEqual(self.kv(b), {"z": {"n": None}})
        out = self.run_ok(a, {"op": "state"})
        self.assertIs(out["resumed"], True, out)
        self.assertEqual(out["state"], {"x": 1, "y": [1, "two"]})
        self.assertEqual(self.run_ok(b, "again"), "again")
        listed = self.assertStatus(self.req("GET", "/v1/sessions"), 200).json()["sessions"]
        self.assertEqual(sorted(x["id"] for x in listed), sorted([a, b]))

    def test_expiry_destroys_an_idle_session(self):
        # expire_after_s 2; expiry is checked every 10 s (session.c), so within ~13 s.
        agent = self.py_agent("expire-py", session={"hibernate_after_s": 1, "expire_after_s": 2})
        keep = self.py_agent("noexpire-py", session={"hibernate_after_s": 1, "expire_after_s": 3600})
        sid = self.create(agent)["id"]
        other = self.create(keep)["id"]
        rid = self.run_async(sid, {"op": "set", "kv": [["k", "v"]]})
        self.wait_run(sid, rid)
        self.run_ok(other, {"op": "set", "kv": [["k", "v"]]})
        t0 = time.monotonic()
        gone = wait_until(lambda: self.req("GET", "/v1/sessions/" + sid).status == 404, 15.0, 0.2)
        if not gone:
            self.fail("session with expire_after_s 2 still there after 15 s: %r" % self.get(sid))
        self.assertGreaterEqual(time.monotonic() - t0, 1.5, "expired before expire_after_s")
        # As if by DELETE: every route 404s, the rows are gone, no process.
        self.assertGone(sid, rid)
        self.assertEqual(self.db_rows(sid), {"sessions": 0, "session_kv": 0, "session_events": 0,
                                             "session_runs": 0})
        self.assertAgentsAlive(0)
        # The other one only hibernated.
        self.assertEqual(self.state_of(other), "hibernated")
        self.assertEqual(self.kv(other), {"k": "v"})

    # Shared with SessionTests (defined there on the test class, not on SessionCase).
    assertGone = ts.SessionTests.assertGone
    db_rows = ts.SessionTests.db_rows


if __name__ == "__main__":
    main()
