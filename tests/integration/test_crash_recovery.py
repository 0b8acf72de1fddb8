"""Hardening (issue 7, item 3): crash recovery under load. 50 counter sessions do runs (over
SSE and plain HTTP) and client KV writes while a few watchers follow event logs; the daemon
is killed with SIGKILL at a random moment, restarted on the same state folder, checked, and
the load goes on: CRASH_CYCLES times (default 5; fewer, but at least 3, when a slow machine
would pass the 3-minute budget).

After each kill:
- no agent process survives the daemon: none of the processes descended from it (listed
  just before the kill), none in an agenthost cgroup named after its pid, none whose command
  line or working folder points into the test's folder;
- after the restart, for every session: every acknowledged write is there (the counter's
  KV "count" is at least the output of every completed run a client saw; every client PUT
  answered 200 reads back), the event log read with SSE ?after=0 is 1..last_seq without
  gap or duplicate, and every event a client saw (run streams, watchers) is in it unchanged;
  counts agree with the log (completed runs <= count <= completed + runs the kill cut);
  every run in the log is finished, the ones cut by the kill failed with "killed";
- every session resumes: a run works (the next count, session.resumed first);
- sessions destroyed before the kill (an agent that writes to its log) stay destroyed: 404,
  no STATE/logs/ID.log, no database row, no path in the state folder naming them.

Oracle: DESIGN.md §6 ("daemon restart (clean or kill -9): every session, its KV and its log
are still there, hibernated; every acknowledged KV write and event is kept"), docs/http.md
(runs cut by a daemon death fail with "killed"; destroy deletes logs, KV, events), issue 7.
The agents: BUILD/examples/counter and a POSIX sh agent written here."""

import http.client
import json
import os
import random
import re
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_sessions as ts  # noqa: E402
from harness import SSEStream, main, pid_alive  # noqa: E402

SESSIONS = int(os.environ.get("CRASH_SESSIONS", "50"))
CYCLES = int(os.environ.get("CRASH_CYCLES", "5"))
MIN_CYCLES = min(3, CYCLES)
DESTROYED_PER_CYCLE = 3
WATCHED = 10                  # sessions whose event log a watcher follows live
KILL_AFTER = (1.0, 3.0)       # seconds of load before the kill, uniformly random
BUDGET_S = 180                # the whole test
ORPHAN_GRACE_S = 5.0          # agents must be gone this long after the kill

# A session agent in POSIX sh that writes a line to stderr (its session log) on every run.
CHATTY_SH = r'''#!/bin/sh
read -r hello <&3 || exit 0
printf '{"t":"ready"}\n' >&3
while read -r line <&3; do
	case "$line" in
	*'"t":"run"'*)
		run=${line#*\"run\":\"}
		run=${run%%\"*}
		echo "chatty: run $run" >&2
		printf '{"t":"done","run":"%s","output":"ok"}\n' "$run" >&3 ;;
	*'"t":"destroy"'*) exit 0 ;;
	esac
done
'''


def install_sh_agent(case, name, script, manifest_extra=None, files=()):
    """Installs a POSIX sh session agent NAME (agent.sh = script, plus copies of files)."""
    import shutil
    dest = os.path.join(case.tmp, "src", name)
    os.makedirs(dest)
    os.chmod(dest, 0o755)
    manifest = {"manifest_version": 1, "name": name, "version": "1.0.0",
                "description": "hardening test agent (sh)", "entrypoint": ["/bin/sh", "agent.sh"],
                "modes": ["session"], "sandbox": {"seccomp": "default", "network": False}}
    for k, v in (manifest_extra or {}).items():
        if isinstance(v, dict) and isinstance(manifest.get(k), dict):
            manifest[k] = dict(manifest[k], **v)
        else:
            manifest[k] = v
    with open(os.path.join(dest, "agent.json"), "w") as f:
        json.dump(manifest, f, indent=2)
    with open(os.path.join(dest, "agent.sh"), "w") as f:
        f.write(script)
    for p in files:
        shutil.copy2(p, dest)
    for root, dirs, fnames in os.walk(dest):
        for p in dirs + fnames:
            os.chmod(os.path.join(root, p), 0o755)
    r = case.d.install(dest)
    case.assertEqual(r.status, 201, "install of %s failed: %r" % (name, r))
    return name


# -- processes --------------------------------------------------------------------------------

def proc_table():
    """{pid: (ppid, starttime, state)} of every process."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                line = f.read()
        except OSError:
            continue
        fields = line[line.rfind(")") + 2:].split()
        out[int(entry)] = (int(fields[1]), int(fields[19]), fields[0])
    return out


def descendants(pid):
    """[(pid, starttime)] of every live process below pid."""
    table = proc_table()
    kids = {}
    for p, (pp, _st, _s) in table.items():
        kids.setdefault(pp, []).append(p)
    out, todo = [], list(kids.get(pid, []))
    while todo:
        p = todo.pop()
        if table[p][2] != "Z":
            out.append((p, table[p][1]))
        todo += kids.get(p, [])
    return out


def still_alive(pid, starttime):
    """The same process (not a reused pid) is alive and not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            line = f.read()
    except OSError:
        return False
    fields = line[line.rfind(")") + 2:].split()
    return fields[0] != "Z" and int(fields[19]) == starttime


def orphans_of(dead_pid, folder):
    """Live processes that belong to the dead daemon: in an agenthost cgroup named after it
    (sandbox: agenthost/PID-N), or with a command line or working folder inside folder."""
    out = []
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        pid = int(entry)
        if not pid_alive(pid):
            continue
        why = None
        try:
            with open("/proc/%d/cgroup" % pid) as f:
                if re.search(r"/agenthost/%d-\d+" % dead_pid, f.read()):
                    why = "cgroup"
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                if folder.encode() in f.read():
                    why = why or "cmdline"
            try:
                if os.readlink("/proc/%d/cwd" % pid).startswith(folder):
                    why = why or "cwd"
            except OSError:
                pass
        except OSError:
            continue
        if why:
            try:
                with open("/proc/%d/cmdline" % pid, "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
            except OSError:
                cmd = "?"
            out.append("pid %d (%s): %s" % (pid, why, cmd[:120]))
    return out


# -- load -------------------------------------------------------------------------------------

class Book:
    """What clients were told about one session, over every cycle."""

    def __init__(self, sid):
        self.sid = sid
        self.seen = {}          # seq -> event, as streamed to a client
        self.max_count = 0      # highest output of a completed run a client saw
        self.kv = {}            # key -> value of every PUT answered 200
        self.lock = threading.Lock()

    def saw(self, ev, who):
        with self.lock:
            old = self.seen.get(ev["seq"])
            if old is not None and old != ev:
                raise AssertionError("%s: two clients saw different events at seq %d: %r / %r"
                                     % (who, ev["seq"], old, ev))
            self.seen[ev["seq"]] = ev


class Writer(threading.Thread):
    """One session's client: counter runs over SSE (events recorded) and over plain HTTP,
    and client KV writes, one after another until stopped or the daemon dies."""

    def __init__(self, port, token, book, cycle, stop):
        super().__init__(daemon=True)
        self.port, self.token, self.book, self.cycle, self.stop = port, token, book, cycle, stop
        self.ops = 0
        self.ended_by = None

    def request(self, method, path, body, accept=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        hdrs = {"Authorization": "Bearer " + self.token, "Content-Type": "application/json"}
        if accept:
            hdrs["Accept"] = accept
        try:
            conn.request(method, path, body=json.dumps(body), headers=hdrs)
            return conn, conn.getresponse()
        except BaseException:
            conn.close()
            raise

    def run(self):
        sid, n = self.book.sid, 0
        try:
            while not self.stop.is_set():
                kind = n % 4
                if kind in (0, 1):  # a run streamed over SSE: every event recorded
                    conn, r = self.request("POST", "/v1/sessions/%s/runs" % sid, {"input": n},
                                           accept="text/event-stream")
                    try:
                        if r.status != 200:
                            raise AssertionError("SSE run answered %d %r" % (r.status, r.read()[:200]))
                        stream = _Lines(r)
                        while True:
                            ev = stream.next_event()
                            if ev is None:
                                break
                            self.book.saw(ev, "run stream")
                            if ev["type"] == "run.completed":
                                with self.book.lock:
                                    self.book.max_count = max(self.book.max_count, ev["output"])
                    finally:
                        conn.close()
                elif kind == 2:  # a plain run: its answer acknowledges the count
                    conn, r = self.request("POST", "/v1/sessions/%s/runs" % sid, {"input": n})
                    try:
                        body = r.read()
                    finally:
                        conn.close()
                    if r.status != 200:
                        raise AssertionError("run answered %d %r" % (r.status, body[:200]))
                    res = json.loads(body)
                    if res["status"] != "completed":
                        raise AssertionError("a counter run did not complete: %r" % res)
                    with self.book.lock:
                        self.book.max_count = max(self.book.max_count, res["output"])
                else:  # a client write
                    key = "w%d_%d" % (self.cycle, n)
                    value = {"cycle": self.cycle, "n": n, "pad": "p" * 100}
                    conn, r = self.request("PUT", "/v1/sessions/%s/state/%s" % (sid, key), value)
                    try:
                        body = r.read()
                    finally:
                        conn.close()
                    if r.status != 200:
                        raise AssertionError("PUT answered %d %r" % (r.status, body[:200]))
                    with self.book.lock:
                        self.book.kv[key] = value
                n += 1
                self.ops += 1
            self.ended_by = "stopped"
        except AssertionError as e:
            self.ended_by = "FAILED: %s" % e
        except Exception as e:  # noqa: BLE001 - the daemon was killed under us
            self.ended_by = "%s: %s" % (type(e).__name__, e)


class Watcher(threading.Thread):
    """Follows one session's events over SSE from `after`, recording each."""

    def __init__(self, port, token, book, after):
        super().__init__(daemon=True)
        self.port, self.token, self.book, self.after = port, token, book, after
        self.count = 0
        self.error = None

    def run(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("GET", "/v1/sessions/%s/events?after=%d" % (self.book.sid, self.after),
                         headers={"Authorization": "Bearer " + self.token,
                                  "Accept": "text/event-stream"})
            r = conn.getresponse()
            if r.status != 200:
                self.error = "events answered %d" % r.status
                return
            stream = _Lines(r)
            last = self.after
            while True:
                ev = stream.next_event()
                if ev is None:
                    return
                if ev["seq"] != last + 1:
                    self.error = "watcher got seq %d after %d" % (ev["seq"], last)
                last = ev["seq"]
                self.book.saw(ev, "watcher")
                self.count += 1
        except AssertionError as e:
            self.error = str(e)
        except Exception:  # noqa: BLE001 - the daemon was killed under us
            return
        finally:
            conn.close()


class _Lines:
    """Events (data, parsed) from an SSE response, ignoring comments."""

    def __init__(self, resp):
        self.resp = resp

    def next_event(self):
        data = None
        while True:
            line = self.resp.readline()
            if not line:
                return None
            line = line.rstrip(b"\r\n")
            if not line:
                if data is not None:
                    return data
                continue
            if line.startswith(b"data:"):
                data = json.loads(line[5:].strip())


class CrashRecovery(ts.SessionCase):

    daemon_args = ("--events-kept", "1000000")

    def setUp(self):
        super().setUp()
        signal.alarm(BUDGET_S + 60)

    def test_kill9_under_load_loses_nothing(self):
        t_start = time.monotonic()
        token = self.new_token("crash-client")["token"]
        chatty = install_sh_agent(self, "chatty", CHATTY_SH)
        books = []
        for _ in range(SESSIONS):
            r = self.req("POST", "/v1/agents/counter/sessions", {}, token=token, timeout=30)
            self.assertStatus(r, 201)
            books.append(Book(r.json()["id"]))
        destroyed = []
        summary = []
        interrupted_total = 0
        cycles = 0
        for cycle in range(1, CYCLES + 1):
            # A slow (shared) machine gets fewer cycles, but never fewer than MIN_CYCLES.
            if cycle > MIN_CYCLES and time.monotonic() - t_start > BUDGET_S - 60:
                break
            cycles = cycle
            # Sessions to destroy before the kill, each with runs and an agent log.
            doomed = []
            for _ in range(DESTROYED_PER_CYCLE):
                sid = self.create(chatty, token=token)["id"]
                for _ in range(2):
                    self.assertEqual(self.run_ok(sid, "x", token=token), "ok")
                doomed.append(sid)
            for sid in doomed:
                self.assertTrue(wait_for_file(self.log_file(sid)), "the chatty agent wrote no log")

            stop = threading.Event()
            port = self.d.port
            writers = [Writer(port, token, b, cycle, stop) for b in books]
            watchers = [Watcher(port, token, b, max(b.seen or [0])) for b in books[:WATCHED]]
            for t in writers + watchers:
                t.start()
            time.sleep(0.3)
            for sid in doomed:
                self.assertStatus(self.req("DELETE", "/v1/sessions/" + sid, token=token), 204)
            destroyed += doomed
            delay = random.uniform(*KILL_AFTER)
            time.sleep(delay)

            dead_pid = self.d.proc.pid
            agents = descendants(dead_pid)
            self.d.kill()  # SIGKILL while they write
            killed_at = time.monotonic()
            stop.set()
            for t in writers + watchers:
                t.join(20)
                self.assertFalse(t.is_alive(), "a client hangs after the daemon was killed")
            failed = [w.ended_by for w in writers if w.ended_by and w.ended_by.startswith("FAILED")]
            self.assertEqual(failed, [], "clients saw errors before the kill")
            bad_watch = [w.error for w in watchers if w.error]
            self.assertEqual(bad_watch, [], "watchers saw a gap or a duplicate before the kill")
            ops = sum(w.ops for w in writers)
            self.assertGreater(ops, SESSIONS, "too little load before the kill to test anything")

            # No agent outlives the daemon.
            left = []
            while time.monotonic() - killed_at < ORPHAN_GRACE_S:
                left = [p for p, st in agents if still_alive(p, st)]
                if not left:
                    break
                time.sleep(0.05)
            self.assertEqual(left, [], "agent processes of the killed daemon still alive %.1f s "
                             "later (of %d it had)" % (ORPHAN_GRACE_S, len(agents)))
            strays = orphans_of(dead_pid, self.tmp)
            self.assertEqual(strays, [], "processes of the killed daemon still alive")

            self.d.start()
            interrupted = self.check_after_restart(books, token, destroyed)
            interrupted_total += interrupted
            summary.append("cycle %d: kill -9 after %.1f s of load, %d client ops, %d agent "
                           "processes died with it, %d runs cut, %d sessions destroyed before"
                           % (cycle, 0.3 + delay, ops, len(agents), interrupted, len(doomed)))
            # Every session resumes: one run each, the next count.
            self.resume_all(books, token)

        acked_runs = sum(b.max_count for b in books)
        acked_kv = sum(len(b.kv) for b in books)
        seen = sum(len(b.seen) for b in books)
        sys.stderr.write("crash recovery: %d sessions, %d kill -9 cycles in %.0f s\n  %s\n  "
                         "checked after the last restart: %d acknowledged counter writes (runs), "
                         "%d acknowledged client KV writes, %d events seen by clients, %d runs "
                         "cut by kills, %d destroyed sessions; 0 lost\n"
                         % (SESSIONS, cycles, time.monotonic() - t_start, "\n  ".join(summary),
                            acked_runs, acked_kv, seen, interrupted_total, len(destroyed)))
        self.assertLess(time.monotonic() - t_start, BUDGET_S, "over the time budget")

    # -- checks ---------------------------------------------------------------------------------
    def log_file(self, sid):
        return os.path.join(self.d.state_dir, "logs", sid + ".log")

    def read_log(self, sid, token, last):
        """The whole event log by SSE ?after=0 up to last (no idle wait)."""
        if last == 0:
            return []
        s = SSEStream(self.d, "GET", "/v1/sessions/%s/events?after=0" % sid, token=token, timeout=15)
        try:
            self.assertEqual(s.status, 200)
            out = []
            while True:
                ev = s.next_event()
                if ev is None:
                    self.fail("%s: the log stream ended at %s before last_seq %d"
                              % (sid, out[-1]["seq"] if out else None, last))
                self.assertNotEqual(ev.get("event"), "events.truncated", ev)
                self.assertEqual(ev.get("id"), str(ev["data"]["seq"]), ev)
                self.assertEqual(ev.get("event"), ev["data"]["type"], ev)
                out.append(ev["data"])
                if ev["data"]["seq"] >= last:
                    return out
        finally:
            s.close()

    def check_session(self, book, token):
        sid = book.sid
        got = self.get(sid, token=token)
        self.assertEqual(got["state"], "hibernated", got)
        last = got["last_seq"]
        state = self.kv(sid, token=token)
        events = self.read_log(sid, token, last)
        problems = []
        seqs = [e["seq"] for e in events]
        if seqs != list(range(1, last + 1)):
            dup = sorted({s for s in seqs if seqs.count(s) > 1})
            gaps = sorted(set(range(1, last + 1)) - set(seqs))
            problems.append("seqs not 1..%d: duplicated %s, missing %s" % (last, dup[:10], gaps[:10]))
        by_seq = {e["seq"]: e for e in events}
        with book.lock:
            seen = dict(book.seen)
            max_count = book.max_count
            kv = dict(book.kv)
        changed = {s: (e, by_seq.get(s)) for s, e in seen.items() if by_seq.get(s) != e}
        if changed:
            problems.append("events seen by clients lost or changed (seq: seen, kept): %s"
                            % json.dumps(dict(list(changed.items())[:3]))[:600])
        lost = {k: v for k, v in kv.items() if state.get(k) != v}
        if lost:
            problems.append("%d of %d acknowledged client writes lost: %s"
                            % (len(lost), len(kv), sorted(lost)[:5]))
        count = state.get("count", 0)
        if count < max_count:
            problems.append("count is %s but a client saw a completed run return %d" % (count, max_count))
        completed = [e for e in events if e["type"] == "run.completed"]
        outputs = [e["output"] for e in completed]
        if outputs != sorted(set(outputs)):
            problems.append("completed counts not increasing: %s" % outputs[-10:])
        # Runs that did not complete were cut by a kill: failed, "killed" (docs/http.md).
        done = {e["run"] for e in completed}
        cut = 0
        for rid in sorted({e["run"] for e in events if "run" in e} - done):
            rec = self.run_record(sid, rid, token=token)
            if rec["status"] != "failed" or rec.get("error", {}).get("code") != "killed":
                problems.append("run %s did not complete and is %r (want failed/killed)" % (rid, rec))
            cut += 1
        if not len(completed) <= count <= len(completed) + cut:
            problems.append("count %s does not fit the log: %d completed runs, %d cut"
                            % (count, len(completed), cut))
        if problems:
            self.fail("session %s after the restart:\n  %s" % (sid, "\n  ".join(problems)))
        return cut

    def check_after_restart(self, books, token, destroyed):
        with ThreadPoolExecutor(8) as pool:
            cuts = list(pool.map(lambda b: self.check_session(b, token), books))
        listed = self.assertStatus(self.req("GET", "/v1/sessions", token=token), 200).json()["sessions"]
        self.assertEqual(sorted(s["id"] for s in listed), sorted(b.sid for b in books),
                         "the restarted daemon lists other sessions than the live ones")
        files = []
        for root, dirs, names in os.walk(self.d.state_dir):
            files += [os.path.join(root, n) for n in dirs + names]
        for sid in destroyed:
            self.assertError(self.req("GET", "/v1/sessions/" + sid, token=token), 404, "not_found")
            for suffix in (".log", ".log.old"):
                self.assertFalse(os.path.exists(self.log_file(sid)[:-4] + suffix),
                                 "destroyed session %s left %s" % (sid, suffix))
            self.assertEqual([f for f in files if sid in f], [], "paths naming a destroyed session")
            self.assertEqual(self.db_rows(sid), {"sessions": 0, "session_kv": 0, "session_events": 0,
                                                 "session_runs": 0}, "rows of destroyed " + sid)
        return sum(cuts)

    def resume_all(self, books, token):
        def one(book):
            before = self.get(book.sid, token=token)["last_seq"]
            count = self.kv(book.sid, token=token).get("count", 0)
            r = self.post_run(book.sid, "resume", token=token)
            res = self.assertRunResult(r, "completed")
            self.assertEqual(res["output"], count + 1, "the resumed session did not count on")
            with book.lock:
                book.max_count = max(book.max_count, res["output"])
            after = self.read_log(book.sid, token, self.get(book.sid, token=token)["last_seq"])
            types = [e["type"] for e in after if e["seq"] > before]
            self.assertEqual(types, ["session.resumed", "run.started", "run.output", "run.completed"],
                             book.sid)
            for e in after:
                book.saw(e, "resume check")
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(one, books))

    db_rows = ts.SessionTests.db_rows


def wait_for_file(path, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path):
            return True
        time.sleep(0.02)
    return False


if __name__ == "__main__":
    main()
