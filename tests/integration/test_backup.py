"""Online backup of a live daemon (POST /v1/backup, `agentctl backup FILE`) and restore.

Sessions of examples/counter run in a loop (each run adds one to the session's KV key
`count`) while `agentctl backup` copies the database. The copy must be one consistent
moment (SQLite integrity_check; each session's last_seq is its newest event; its count is
its number of completed runs) holding every count acknowledged before the backup was
asked for. Then the documented restore (docs/operations.md): stop the daemon, put a copy of
the state directory at the same path with the backup as agenthost.db, start it: the
agents, sessions, tokens and KV of the backup are there, what came after it is not, and the
sessions count on from the backed-up value. Oracle: docs/http.md (POST /v1/backup),
docs/operations.md ("Backup and restore")."""

import os
import shutil
import sqlite3
import stat
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import DaemonTestCase, example, main  # noqa: E402

SESSIONS = 6


class Backup(DaemonTestCase):

    def setUp(self):
        super().setUp()
        self.backups = os.path.join(self.tmp, "backups")
        os.mkdir(self.backups, 0o700)

    def call(self, method, path, body=None, token=None, timeout=30):
        return self.d.request(method, path, body, token=token or self.d.admin_token,
                              timeout=timeout)

    def create(self):
        r = self.call("POST", "/v1/agents/counter/sessions", {})
        self.assertStatus(r, 201)
        return r.json()["id"]

    def count(self, sid):
        r = self.call("GET", "/v1/sessions/%s/state/count" % sid)
        self.assertStatus(r, 200)
        return r.json()["value"]

    # -- the live backup and its restore ---------------------------------------------
    def test_backup_under_writes_restores(self):
        self.assertStatus(self.d.install(example("counter")), 201)
        sids = [self.create() for _ in range(SESSIONS)]
        before_token = self.call("POST", "/v1/tokens", {"name": "before-backup"}).json()
        acked = {sid: 0 for sid in sids}   # the newest count each session acknowledged
        errors = []
        stop = threading.Event()

        def writer(sid):
            while not stop.is_set():
                try:
                    r = self.call("POST", "/v1/sessions/%s/runs" % sid, {"input": {}})
                    res = r.json()
                    if r.status != 200 or res.get("status") != "completed":
                        errors.append("%s: %r" % (sid, r))
                        return
                    acked[sid] = res["output"]
                except Exception as e:  # noqa: BLE001 - reported below
                    errors.append("%s: %r" % (sid, e))
                    return

        threads = [threading.Thread(target=writer, args=(sid,)) for sid in sids]
        for t in threads:
            t.start()
        try:
            time.sleep(1.0)
            floor = dict(acked)   # acknowledged before the backup was asked for
            path = os.path.join(self.backups, "live.db")
            res = self.ctl("backup", path)
            during = dict(acked)
            time.sleep(0.5)        # writes go on after the backup
        finally:
            stop.set()
            for t in threads:
                t.join(30)
        self.assertEqual(errors, [], "runs failed while the backup was taken")
        self.assertCtlOk(res)
        self.assertRegex(res.out, r"^backed up to %s \(\d+ bytes in \d+ ms\)\n$"
                         % path.replace(".", r"\."))
        self.assertTrue(all(floor[s] > 0 for s in sids), "the writers did not run: %r" % floor)
        final = {sid: self.count(sid) for sid in sids}
        self.assertEqual(final, acked, "KV holds each session's last acknowledged count")
        self.assertTrue(any(final[s] > during[s] for s in sids),
                        "no write after the backup: the restore check below would prove nothing")

        # The file: 0600, one self-contained SQLite file, consistent.
        st = os.stat(path)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        self.assertEqual(sorted(os.listdir(self.backups)), ["live.db"], "nothing beside it")
        db = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
        try:
            self.assertEqual(db.execute("PRAGMA integrity_check").fetchone()[0], "ok")
            self.assertEqual(db.execute("PRAGMA journal_mode").fetchone()[0], "delete")
            backed = {}
            for sid in sids:
                last_seq, = db.execute("SELECT last_seq FROM sessions WHERE id = ?",
                                       (sid,)).fetchone()
                newest = db.execute("SELECT max(seq) FROM session_events WHERE session = ?",
                                    (sid,)).fetchone()[0]
                value = db.execute("SELECT value FROM session_kv WHERE session = ? AND key = ?",
                                   (sid, "count")).fetchone()
                completed = db.execute("SELECT count(*) FROM session_runs WHERE session = ?"
                                       " AND status = 'completed'", (sid,)).fetchone()[0]
                backed[sid] = int(value[0])
                self.assertEqual(last_seq, newest, "last_seq is the newest event (%s)" % sid)
                # The agent's KV write commits before its run is marked completed: in
                # one snapshot the count is the completed runs, or one more.
                self.assertIn(backed[sid], (completed, completed + 1),
                              "count vs completed runs in one snapshot (%s)" % sid)
                self.assertGreaterEqual(backed[sid], floor[sid],
                                        "a count acknowledged before the backup is in it")
                self.assertLessEqual(backed[sid], final[sid])
        finally:
            db.close()

        sys.stderr.write("\ncounts acknowledged before the backup %r, in it %r, at the end %r\n"
                         % (sorted(floor.values()), sorted(backed.values()),
                            sorted(final.values())))

        # A token created after the backup is not in it.
        after_token = self.call("POST", "/v1/tokens", {"name": "after-backup"}).json()

        # Restore (docs/operations.md): stop, keep the old directory aside, copy it to the
        # same path without its database files, put the backup in as agenthost.db, start.
        state = self.d.state_dir
        self.d.stop()
        old = state + ".old"
        os.rename(state, old)
        shutil.copytree(old, state, symlinks=True,
                        ignore=lambda d, names: [n for n in names if d == old
                                                 and n.startswith("agenthost.db")])
        shutil.copy2(path, os.path.join(state, "agenthost.db"))
        os.chmod(os.path.join(state, "agenthost.db"), 0o600)
        self.d.start()

        r = self.call("GET", "/v1/agents")
        self.assertStatus(r, 200)
        self.assertEqual([a["name"] for a in r.json()["agents"]], ["counter"])
        r = self.call("GET", "/v1/sessions?all=true")
        self.assertStatus(r, 200)
        self.assertEqual(sorted(s["id"] for s in r.json()["sessions"]), sorted(sids))
        for sid in sids:
            self.assertEqual(self.count(sid), backed[sid], "the restored count of %s" % sid)
            r = self.call("POST", "/v1/sessions/%s/runs" % sid, {"input": {}})
            self.assertStatus(r, 200)
            self.assertEqual(r.json().get("output"), backed[sid] + 1,
                             "the restored session counts on (%r)" % r)
        self.assertStatus(self.d.request("GET", "/v1/agents", token=before_token["token"]), 200)
        self.assertError(self.d.request("GET", "/v1/agents", token=after_token["token"]),
                         401, "unauthorized")

    # -- the route's answers (no agent needed) --------------------------------------------
    def test_route_errors_leave_nothing(self):
        target = os.path.join(self.backups, "a.db")
        r = self.assertStatus(self.call("POST", "/v1/backup", {"path": target}), 201)
        body = r.json()
        self.assertEqual(set(body), {"path", "bytes", "took_ms"}, body)
        self.assertEqual(body["path"], target)
        self.assertEqual(body["bytes"], os.path.getsize(target))
        self.assertIsInstance(body["took_ms"], int)
        with open(target, "rb") as f:
            content = f.read()

        self.assertError(self.call("POST", "/v1/backup", {"path": target}), 409, "conflict",
                         target, "exists")
        with open(target, "rb") as f:
            self.assertEqual(f.read(), content, "a backup never replaces a file")
        self.assertError(self.call("POST", "/v1/backup", {"path": self.backups}), 409,
                         "conflict", "exists")
        self.assertError(self.call("POST", "/v1/backup", {"path": "rel/a.db"}), 422,
                         "invalid_input", "absolute")
        self.assertError(self.call("POST", "/v1/backup",
                                   {"path": os.path.join(self.backups, "no/such/a.db")}),
                         422, "invalid_input", "no such file")
        self.assertError(self.call("POST", "/v1/backup", {"path": target + "/x.db"}), 422,
                         "invalid_input", "not a directory")
        self.assertError(self.call("POST", "/v1/backup", {}), 400, "bad_request", "path")
        self.assertError(self.call("POST", "/v1/backup", {"path": 7}), 400, "bad_request",
                         "path")
        self.assertError(self.call("POST", "/v1/backup", {"path": target, "x": 1}), 400,
                         "bad_request", "unknown field")
        self.assertError(self.call("POST", "/v1/backup", "[1]"), 400, "bad_request")
        self.assertError(self.call("POST", "/v1/backup", "{"), 400, "bad_request")
        # A PATH.tmp that is not ours (an interrupted backup) is refused and left alone.
        other = os.path.join(self.backups, "b.db")
        with open(other + ".tmp", "w") as f:
            f.write("not ours")
        self.assertError(self.call("POST", "/v1/backup", {"path": other}), 409, "conflict",
                         ".tmp exists")
        with open(other + ".tmp") as f:
            self.assertEqual(f.read(), "not ours")
        os.unlink(other + ".tmp")

        client = self.call("POST", "/v1/tokens", {"name": "c"}).json()["token"]
        self.assertError(self.d.request("POST", "/v1/backup", {"path": other}, token=client),
                         403, "forbidden")
        self.assertError(self.d.request("POST", "/v1/backup", {"path": other}), 401,
                         "unauthorized")
        self.assertError(self.call("GET", "/v1/backup"), 405, "method_not_allowed")
        self.assertEqual(sorted(os.listdir(self.backups)), ["a.db"], "nothing left behind")
        # The daemon still serves.
        self.assertStatus(self.call("GET", "/v1/agents"), 200)

    def test_agentctl_relative_path_and_errors(self):
        res = self.assertCtlOk(self.ctl("backup", "rel.db", cwd=self.backups))
        self.assertEqual(res.out, "backed up to %s (%d bytes in %s ms)\n"
                         % (os.path.join(self.backups, "rel.db"),
                            os.path.getsize(os.path.join(self.backups, "rel.db")),
                            res.out.split(" in ")[1].split(" ")[0]))
        self.assertCtlError(self.ctl("backup", "rel.db", cwd=self.backups), 1, "409 conflict",
                            "exists")
        res = self.assertCtlOk(self.ctl("--json", "backup", "sub.db", cwd=self.backups))
        self.assertEqual(res.json()["path"], os.path.join(self.backups, "sub.db"))
        self.assertCtlError(self.ctl("backup", "missing/x.db", cwd=self.backups), 1,
                            "422 invalid_input", "no such file")
        self.assertCtlError(self.ctl("backup"), 2, "missing argument FILE")


if __name__ == "__main__":
    main()
