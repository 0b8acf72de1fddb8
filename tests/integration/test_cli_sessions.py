"""agentctl's session commands against the real daemon and the built examples (issue 5
item 7, issue 6 item 4; docs/cli.md): create, sessions, session, run (events streamed over
SSE, exit 0/1, Ctrl-C cancels), cancel, destroy, state, logs, config, and attach over
WebSocket: the issue's pipe (`printf '"a"\\n"b"\\n' | agentctl attach $ID`), end of input
waiting for the runs it started, Ctrl-C (cancel, then detach), refusals, a destroyed
session, and reconnecting across a daemon killed and restarted on the same port and state.

EXAMPLES is BUILD/examples (ctest sets it); the daemon installs them with --manifests. A
small Python session agent (written here, with the SDK of upper-py next to it) reads its
config and writes to its log."""

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (AGENTCTL, CTL_TIMEOUT, RUN_ID, CtlResult, DaemonTestCase, example,  # noqa: E402
                     main, wait_until)

EXAMPLES = harness.EXAMPLES
SESSION_ID = re.compile(r"^s_[0-9a-f]{4}[0-9a-f]{32}$")

# A session agent that says what config it got and writes each input to its log (stderr).
LOGGER_PY = r'''
import sys

import agenthost_sdk


class Logger(agenthost_sdk.Agent):
    def run(self, run_id, input):
        print("logged %s" % (input,), file=sys.stderr, flush=True)
        return {"greeting": self.config.get("GREETING"), "has_key": "API_KEY" in self.config}


if __name__ == "__main__":
    agenthost_sdk.run(Logger)
'''


class Attach:
    """A running `agentctl attach`: stdin is a pipe the test writes lines to; stdout and
    stderr are read by threads as they come (so nothing is lost between waits)."""

    def __init__(self, argv, env):
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env=env)
        self.out, self.err = [], []
        self.cond = threading.Condition()
        self.threads = [threading.Thread(target=self._read, args=(f, lines), daemon=True)
                        for f, lines in ((self.p.stdout, self.out), (self.p.stderr, self.err))]
        for t in self.threads:
            t.start()

    def _read(self, f, lines):
        for raw in iter(f.readline, b""):
            with self.cond:
                lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def send(self, text):
        self.p.stdin.write(text.encode())
        self.p.stdin.flush()

    def close_stdin(self):
        self.p.stdin.close()

    def wait_line(self, pred, timeout=15, stream="out"):
        """Waits until a line of stdout (or stderr) satisfies pred; returns it."""
        lines = self.out if stream == "out" else self.err
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for line in lines:
                    if pred(line):
                        return line
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("attach printed no such line within %.0f s: out=%r err=%r"
                                         % (timeout, self.out, self.err))
                self.cond.wait(left)

    def finish(self, timeout=CTL_TIMEOUT):
        """Waits for the exit; returns a CtlResult."""
        try:
            if not self.p.stdin.closed:
                self.p.stdin.close()
        except BrokenPipeError:
            pass
        try:
            code = self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("attach did not exit within %.0f s: out=%r err=%r"
                                 % (timeout, self.out, self.err))
        for t in self.threads:
            t.join(5)
        self.p.stdout.close()
        self.p.stderr.close()
        return CtlResult(self.p.args[1:], code, "".join(l + "\n" for l in self.out),
                         "".join(l + "\n" for l in self.err))

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        for f in (self.p.stdin, self.p.stdout, self.p.stderr):
            try:
                f.close()
            except (OSError, ValueError):
                pass


class CliSessions(DaemonTestCase):
    daemon_args = ("--manifests", EXAMPLES)

    def setUp(self):
        for name in ("counter", "echo", "slow", "upper-py"):
            example(name)  # fails early, naming the folder, when the examples are not built
        super().setUp()

    # -- helpers -----------------------------------------------------------------------
    def env(self):
        return {k: v for k, v in os.environ.items() if not k.startswith("AGENTHOST_")}

    def argv(self, *args):
        return [AGENTCTL, "--url", self.d.url, "--state-dir", self.d.state_dir] + list(args)

    def ctl_stdin(self, data, *args):
        """agentctl with data (bytes) on its stdin, a pipe."""
        p = subprocess.run(self.argv(*args), input=data, capture_output=True, timeout=CTL_TIMEOUT,
                           cwd=self.tmp, env=self.env())
        return CtlResult(list(args), p.returncode, p.stdout.decode("utf-8", "replace"),
                         p.stderr.decode("utf-8", "replace"))

    def create(self, agent, *more):
        res = self.assertCtlOk(self.ctl("create", agent, *more))
        self.assertEqual(res.err, "", res)
        sid = res.out[:-1]
        self.assertEqual(res.out, sid + "\n", "the ID alone on its line: %r" % res)
        self.assertRegex(sid, SESSION_ID)
        return sid

    def attach(self, *args):
        a = Attach(self.argv("attach", *args), self.env())
        self.addCleanup(a.kill)
        return a

    def run_status(self, sid, run):
        r = self.d.admin("GET", "/v1/sessions/%s/runs/%s" % (sid, run))
        self.assertEqual(r.status, 200, r)
        return r.json()["status"]

    def client_token(self, name="client"):
        return self.assertCtlOk(self.ctl("--json", "token", "create", name)).json()["token"]

    def install_logger(self):
        """LOGGER_PY as session agent "logger", with config GREETING and a secret API_KEY."""
        dest = os.path.join(self.tmp, "src", "logger")
        os.makedirs(dest)
        manifest = {"manifest_version": 1, "name": "logger", "version": "1.0.0",
                    "description": "logs its inputs", "modes": ["session"],
                    "entrypoint": ["/usr/bin/python3", "agent.py"],
                    "config": [{"name": "GREETING"}, {"name": "API_KEY", "secret": True}],
                    "sandbox": {"seccomp": "python", "network": False}}
        with open(os.path.join(dest, "agent.json"), "w") as f:
            json.dump(manifest, f)
        with open(os.path.join(dest, "agent.py"), "w") as f:
            f.write(LOGGER_PY)
        shutil.copy(os.path.join(example("upper-py"), "agenthost_sdk.py"), dest)
        for root, dirs, files in os.walk(dest):
            os.chmod(root, 0o755)
            for p in files:
                os.chmod(os.path.join(root, p), 0o644)
        self.assertCtlOk(self.ctl("install", dest))

    def restart_on_same_port(self):
        """kill -9 the daemon and start it again on the same state folder and port."""
        port = self.d.port
        self.d.kill()
        saved = harness.free_port
        harness.free_port = lambda: port
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    self.d.start()
                    break
                except AssertionError:
                    # the port may take a moment to be free again
                    if time.monotonic() > deadline:
                        raise
                    self.d._forget()
                    time.sleep(0.2)
        finally:
            harness.free_port = saved
        self.assertEqual(self.d.port, port)

    def assertRun(self, res, output):
        """A run printed by run/attach: run.started RUN, ..., then the output line."""
        self.assertCtlOk(res)
        lines = res.out.splitlines()
        self.assertEqual(lines[0].split()[0], "run.started", res)
        self.assertRegex(lines[0].split()[1], RUN_ID)
        self.assertEqual(lines[-1], output, res)
        return lines

    # -- create, run: the counter ------------------------------------------------
    def test_counter_counts_1_2_3_then_4_after_kill_9(self):
        sid = self.create("counter")
        for n in (1, 2, 3):
            lines = self.assertRun(self.ctl("run", sid, "{}"), str(n))
            self.assertEqual(lines[1:], ['{"count":%d}' % n, str(n)])
        res = self.assertCtlOk(self.ctl("state", sid, "count"))
        self.assertEqual(res.out, "3\n")
        # kill -9 of the daemon and a restart: the fourth run prints 4
        self.restart_on_same_port()
        self.assertRun(self.ctl("run", sid, "{}"), "4")

    def test_create_json_and_errors(self):
        res = self.assertCtlOk(self.ctl("--json", "create", "echo"))
        s = res.json()
        self.assertRegex(s["id"], SESSION_ID)
        self.assertEqual((s["agent"], s["state"]), ("echo", "ready"), s)
        res = self.ctl("create", "nope")
        self.assertCtlError(res, 1, "404", "not_found", "nope")
        self.assertEqual(res.out, "")
        res = self.ctl("--json", "create", "nope")
        self.assertCtlError(res, 1, "nope")
        self.assertEqual(res.json()["error"]["code"], "not_found")
        self.assertCtlError(self.ctl("create", "echo", "--config", "novalue"), 2,
                            "--config wants KEY=VALUE, not 'novalue'")
        self.assertCtlError(self.ctl("create"), 2, "missing argument AGENT")
        # upper-py is invoke-only
        self.assertCtlError(self.ctl("create", "upper-py"), 1, "400")

    # -- sessions, session -----------------------------------------------------------
    def test_sessions_and_session(self):
        self.assertEqual(self.assertCtlOk(self.ctl("sessions")).out, "no sessions\n")
        a, b = self.create("echo"), self.create("counter")
        self.assertCtlOk(self.ctl("run", b, "{}"))
        res = self.assertCtlOk(self.ctl("sessions"))
        lines = res.out.splitlines()
        self.assertEqual(lines[0].split(), ["ID", "AGENT", "VERSION", "STATE", "RUNS", "LAST", "ACTIVE"])
        rows = {l.split()[0]: l.split() for l in lines[1:]}
        self.assertEqual(set(rows), {a, b}, res)
        self.assertEqual(rows[a][1:5], ["echo", "1.0.0", "ready", "0"])
        self.assertEqual(rows[b][1:5], ["counter", "1.0.0", "ready", "1"])
        listed = self.assertCtlOk(self.ctl("--json", "sessions")).json()["sessions"]
        self.assertEqual({s["id"] for s in listed}, {a, b})

        res = self.assertCtlOk(self.ctl("session", b))
        kv = dict(l.split(":", 1) for l in res.out.splitlines())
        kv = {k: v.strip() for k, v in kv.items()}
        self.assertEqual((kv["id"], kv["agent"], kv["state"], kv["runs"], kv["last seq"]),
                         (b, "counter", "ready", "1", "3"), res)
        self.assertEqual(kv["active run"], "-")
        self.assertRegex(kv["created"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertEqual(self.assertCtlOk(self.ctl("--json", "session", b)).json()["last_seq"], 3)
        self.assertCtlError(self.ctl("session", "s_nope"), 1, "404", "s_nope")
        self.assertCtlError(self.ctl("session", "../tokens"), 1, "there is no session '../tokens'")

        # A client sees only its own; --all is for the admin.
        token = self.client_token()
        self.assertEqual(self.assertCtlOk(self.ctl("sessions", token=token, state_dir=False)).out,
                         "no sessions\n")
        self.assertCtlError(self.ctl("session", a, token=token, state_dir=False), 1, "404")
        self.assertCtlError(self.ctl("sessions", "--all", token=token, state_dir=False), 1, "403")
        c = self.assertCtlOk(self.ctl("create", "echo", token=token, state_dir=False)).out.strip()
        every = self.assertCtlOk(self.ctl("--json", "sessions", "--all")).json()["sessions"]
        self.assertEqual({s["id"] for s in every}, {a, b, c})

    # -- run ---------------------------------------------------------------------------
    def test_run_prints_events_json_and_stdin(self):
        sid = self.create("echo")
        lines = self.assertRun(self.ctl("run", sid, '"hello big world"'), "hello big world")
        self.assertEqual(lines[1:4], ['{"word":"hello"}', '{"word":"big"}', '{"word":"world"}'])
        res = self.assertCtlOk(self.ctl("--json", "run", sid, '"x y"'))
        events = [json.loads(l) for l in res.out.splitlines()]
        self.assertEqual([e["type"] for e in events],
                         ["run.started", "run.output", "run.output", "run.completed"])
        # seq counts in the session's log: the first run took 1..5
        self.assertEqual([e["seq"] for e in events], [6, 7, 8, 9])
        # input from stdin: '-', or a pipe and no argument; text is a string
        self.assertRun(self.ctl_stdin(b'"from stdin"\n', "run", sid, "-"), "from stdin")
        self.assertRun(self.ctl_stdin(b"plain words\n", "run", sid), "plain words")

    def test_run_failures(self):
        sid = self.create("slow")
        res = self.ctl("run", sid, '{"seconds": -1}')
        self.assertCtlError(res, 1, "run failed: invalid_input")
        self.assertEqual(res.out.split()[0], "run.started")
        self.assertCtlError(self.ctl("run", "s_nope", "{}"), 1, "404", "not_found")
        self.assertCtlError(self.ctl("run", sid, '{"a": [1, }'), 2, "not valid JSON", "line 1")
        self.assertCtlError(self.ctl("run", sid, "1", "2"), 2, "too many arguments")

    def test_run_ctrl_c_cancels_the_run(self):
        sid = self.create("slow")
        p = subprocess.Popen(self.argv("run", sid, '{"seconds": 30}'), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=self.env())
        try:
            started = p.stdout.readline().decode()
            self.assertTrue(started.startswith("run.started "), started)
            self.assertEqual(p.stdout.readline(), b'{"n":1}\n')
            p.send_signal(signal.SIGINT)
            code = p.wait(timeout=10)
            err = p.stderr.read().decode()
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stdout.close()
            p.stderr.close()
        run = started.split()[1]
        self.assertEqual(code, 130, err)
        self.assertEqual(err, "agentctl: interrupted: run %s is being cancelled\n" % run)
        self.assertTrue(wait_until(lambda: self.run_status(sid, run) == "cancelled", 10),
                        self.run_status(sid, run))

    # -- cancel, destroy ---------------------------------------------------------------
    def test_cancel(self):
        sid = self.create("slow")
        p = subprocess.Popen(self.argv("run", sid, '{"seconds": 30}'), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=self.env())
        try:
            run = p.stdout.readline().decode().split()[1]
            res = self.assertCtlOk(self.ctl("cancel", sid, run))
            self.assertEqual(res.out, "cancelling run %s\n" % run)
            code = p.wait(timeout=10)
            out, err = p.stdout.read().decode(), p.stderr.read().decode()
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stdout.close()
            p.stderr.close()
        self.assertEqual(code, 1, (out, err))
        self.assertIn("agentctl: run was cancelled: ", err)
        self.assertEqual(self.run_status(sid, run), "cancelled")
        # no longer queued or running: 404
        self.assertCtlError(self.ctl("cancel", sid, run), 1, "404")
        res = self.ctl("--json", "cancel", sid, "r_nope")
        self.assertCtlError(res, 1, "404")
        self.assertEqual(res.json()["error"]["code"], "not_found")
        self.assertCtlError(self.ctl("cancel", sid), 2, "missing argument RUN")

    def test_destroy(self):
        sid = self.create("counter")
        self.assertCtlOk(self.ctl("run", sid, "{}"))
        res = self.assertCtlOk(self.ctl("destroy", sid))
        self.assertEqual(res.out, "destroyed %s\n" % sid)
        self.assertCtlError(self.ctl("session", sid), 1, "404")
        self.assertCtlError(self.ctl("destroy", sid), 1, "404")
        self.assertCtlError(self.ctl("state", sid), 1, "404")
        self.assertEqual(self.assertCtlOk(self.ctl("--json", "destroy", self.create("echo"))).out, "")

    # -- state -------------------------------------------------------------------------
    def test_state_round_trip(self):
        sid = self.create("counter")
        self.assertEqual(self.assertCtlOk(self.ctl("state", sid)).out, "no state\n")
        self.assertCtlOk(self.ctl("run", sid, "{}"))
        self.assertEqual(self.assertCtlOk(self.ctl("state", sid, "count", "41")).out, "set count\n")
        self.assertRun(self.ctl("run", sid, "{}"), "42")
        # VALUE is parsed as run inputs are: JSON, else text as a string; '-' reads stdin
        self.assertCtlOk(self.ctl("state", sid, "note", "hello there"))
        self.assertCtlOk(self.ctl("state", sid, "obj", '{"a": [1, 2], "b": null}'))
        self.assertCtlOk(self.ctl_stdin(b'"piped"\n', "state", sid, "piped", "-"))
        self.assertEqual(self.ctl("state", sid, "note").out, "hello there\n")
        self.assertEqual(self.ctl("state", sid, "obj").out, '{"a":[1,2],"b":null}\n')
        self.assertEqual(self.ctl("state", sid, "piped").out, "piped\n")
        res = self.assertCtlOk(self.ctl("state", sid))
        rows = [l.split(None, 1) for l in res.out.splitlines()]
        self.assertEqual(rows[0], ["KEY", "VALUE"])
        self.assertEqual(dict(rows[1:]), {"count": "42", "note": '"hello there"',
                                          "obj": '{"a":[1,2],"b":null}', "piped": '"piped"'})
        self.assertEqual(self.assertCtlOk(self.ctl("--json", "state", sid)).json(),
                         {"state": {"count": 42, "note": "hello there",
                                    "obj": {"a": [1, 2], "b": None}, "piped": "piped"}})
        self.assertEqual(self.assertCtlOk(self.ctl("--json", "state", sid, "count")).json(),
                         {"key": "count", "value": 42})
        self.assertEqual(self.assertCtlOk(self.ctl("state", sid, "note", "--delete")).out,
                         "deleted note\n")
        self.assertCtlError(self.ctl("state", sid, "note"), 1, "404", "note")
        self.assertCtlError(self.ctl("state", sid, "note", "--delete"), 1, "404")
        self.assertCtlError(self.ctl("state", sid, "--delete"), 2, "--delete takes a KEY")
        self.assertCtlError(self.ctl("state", sid, "k", "{bad"), 2, "not valid JSON")
        self.assertCtlError(self.ctl("state", sid, "a/b"), 1, "there is no key 'a/b'")

    # -- logs, config ------------------------------------------------------------------
    def test_logs(self):
        self.install_logger()
        sid = self.create("logger")
        self.assertEqual(self.assertCtlOk(self.ctl("logs", sid)).out, "")
        self.assertCtlOk(self.ctl("run", sid, '"first"'))
        self.assertCtlOk(self.ctl("run", sid, '"second"'))
        self.assertTrue(wait_until(lambda: "second" in self.ctl("logs", sid).out, 5))
        res = self.assertCtlOk(self.ctl("logs", sid))
        self.assertEqual(res.out, "logged first\nlogged second\n")
        self.assertEqual(self.assertCtlOk(self.ctl("logs", sid, "--bytes", "7")).out, "second\n")
        self.assertCtlError(self.ctl("logs", sid, "--bytes", "x"), 2, "--bytes")
        self.assertCtlError(self.ctl("logs", "s_nope"), 1, "404")

    def test_config(self):
        self.install_logger()
        self.assertEqual(self.assertCtlOk(self.ctl("config", "logger")).out, "no config set\n")
        self.assertEqual(self.assertCtlOk(self.ctl("config", "logger", "GREETING", "hi there")).out,
                         "set GREETING\n")
        self.assertCtlOk(self.ctl("config", "logger", "API_KEY", "s3cret"))
        res = self.assertCtlOk(self.ctl("config", "logger"))
        self.assertEqual([l.split(None, 1) for l in res.out.splitlines()],
                         [["KEY", "VALUE"], ["API_KEY", "(secret)"], ["GREETING", "hi there"]])
        self.assertEqual(self.ctl("config", "logger", "GREETING").out, "hi there\n")
        self.assertEqual(self.assertCtlOk(self.ctl("--json", "config", "logger")).json(),
                         {"config": {"API_KEY": "(secret)", "GREETING": "hi there"}})
        self.assertEqual(self.assertCtlOk(self.ctl("--json", "config", "logger", "GREETING")).json(),
                         {"key": "GREETING", "value": "hi there"})
        # The agent gets them; a session's own --config overrides the operator's.
        sid = self.create("logger")
        self.assertRun(self.ctl("run", sid, "1"), '{"greeting":"hi there","has_key":true}')
        sid = self.create("logger", "--config", "GREETING=yo")
        self.assertRun(self.ctl("run", sid, "1"), '{"greeting":"yo","has_key":true}')
        self.assertCtlError(self.ctl("create", "logger", "--config", "API_KEY=x"), 1, "400", "secret")
        # delete; errors
        self.assertEqual(self.assertCtlOk(self.ctl("config", "logger", "GREETING", "--delete")).out,
                         "deleted GREETING\n")
        self.assertCtlError(self.ctl("config", "logger", "GREETING"), 1,
                            "agent logger has no value set for config GREETING")
        self.assertCtlError(self.ctl("config", "logger", "NOPE", "x"), 1, "400", "NOPE")
        self.assertCtlError(self.ctl("config", "nope"), 1, "404")
        self.assertCtlError(self.ctl("config", "logger", "--delete"), 2, "--delete takes a KEY")
        token = self.client_token()
        self.assertCtlError(self.ctl("config", "logger", token=token, state_dir=False), 1, "403")

    # -- attach ------------------------------------------------------------------------
    def test_attach_pipe_prints_two_runs_and_exits_0(self):
        # The Done-when: printf '"a"\n"b"\n' | agentctl attach $ID
        sid = self.create("echo")
        res = self.ctl_stdin(b'"a"\n"b"\n', "attach", sid)
        self.assertCtlOk(res)
        self.assertEqual(res.err, "", res)
        lines = res.out.splitlines()
        self.assertEqual(len(lines), 6, res)
        self.assertEqual([l.split()[0] for l in (lines[0], lines[3])], ["run.started"] * 2, res)
        self.assertNotEqual(lines[0], lines[3])
        self.assertEqual([lines[1], lines[2], lines[4], lines[5]], ['{"word":"a"}', "a", '{"word":"b"}', "b"])
        # The session lives on, with both runs in its log.
        s = self.assertCtlOk(self.ctl("--json", "session", sid)).json()
        self.assertEqual((s["state"], s["runs"], s["last_seq"]), ("ready", 2, 6), s)

    def test_attach_waits_for_its_runs_and_takes_text_lines(self):
        sid = self.create("slow")
        start = time.monotonic()
        res = self.ctl_stdin(b'{"seconds": 0.5}\n\n{"bad json\nplain text\n{"seconds": -1}',
                             "attach", sid, "--json")
        took = time.monotonic() - start
        self.assertEqual(res.code, 0, res)
        # the bad line is said and skipped; the blank line is skipped silently; the last
        # line needs no line end
        self.assertEqual(res.err.splitlines()[0],
                         "agentctl: attach: line 3: the input is not valid JSON: line 1, column 10: "
                         "premature end of input near '\"bad json'; skipped", res)
        self.assertEqual(len(res.err.splitlines()), 2, res)
        self.assertTrue(res.err.splitlines()[1].startswith("agentctl: run failed: invalid_input: "), res)
        events = [json.loads(l) for l in res.out.splitlines()]
        self.assertEqual([e["seq"] for e in events], list(range(1, len(events) + 1)), res)
        starts = [e for e in events if e["type"] == "run.started"]
        self.assertEqual([e.get("ref") for e in starts], ["line 1", "line 4", "line 5"], res)
        ends = [e for e in events if e["type"] in ("run.completed", "run.failed")]
        self.assertEqual([e["type"] for e in ends], ["run.completed", "run.completed", "run.failed"], res)
        self.assertEqual(ends[2]["error"]["code"], "invalid_input", ends[2])
        # a failed run is said on stderr, and is no reason to exit 1: attach detached fine
        self.assertGreater(took, 0.5, "attach left before its run ended")

    def test_attach_replays_the_log(self):
        sid = self.create("counter")
        for _ in range(2):
            self.assertCtlOk(self.ctl("run", sid, "{}"))
        res = self.assertCtlOk(self.ctl_stdin(b"", "attach", sid, "--json"))
        self.assertEqual([json.loads(l)["seq"] for l in res.out.splitlines()], [1, 2, 3, 4, 5, 6])
        res = self.assertCtlOk(self.ctl_stdin(b"", "attach", sid, "--after", "4"))
        self.assertEqual(res.out.splitlines(), ['{"count":2}', "2"])
        # --after past the end: only what is to come
        res = self.assertCtlOk(self.ctl_stdin(b"{}\n", "attach", sid, "--after", "1000"))
        self.assertEqual(res.out.splitlines()[1:], ['{"count":3}', "3"], res)
        self.assertCtlError(self.ctl_stdin(b"", "attach", sid, "--after", "-1"), 2, "--after")

    def test_attach_refused(self):
        res = self.ctl_stdin(b'"a"\n', "attach", "s_0000" + "0" * 32)
        self.assertCtlError(res, 1, "404", "not_found")
        self.assertEqual(res.out, "")
        sid = self.create("echo")
        argv = [AGENTCTL, "--url", self.d.url, "--token", "aht_wrong", "attach", sid]
        p = subprocess.run(argv, input=b'"a"\n', capture_output=True, timeout=CTL_TIMEOUT, env=self.env())
        self.assertCtlError(CtlResult(argv[1:], p.returncode, p.stdout.decode(), p.stderr.decode()),
                            1, "401", "token from --token")
        # another client's session is not there for it
        token = self.client_token()
        res = self.ctl("attach", sid, token=token, state_dir=False)
        self.assertCtlError(res, 1, "404")

    def test_attach_ctrl_c_cancels_then_detaches(self):
        sid = self.create("slow")
        a = self.attach(sid)
        a.send('{"seconds": 30}\n')
        run = a.wait_line(lambda l: l.startswith("run.started ")).split()[1]
        a.wait_line(lambda l: l == '{"n":1}')
        a.p.send_signal(signal.SIGINT)
        a.wait_line(lambda l: "run was cancelled" in l, stream="err")
        self.assertEqual(self.run_status(sid, run), "cancelled")
        # the session goes on: the next line runs
        a.send('{"seconds": 0.2}\n')
        a.wait_line(lambda l: l == '{"n":2}')
        res = a.finish()
        self.assertEqual(res.code, 0, res)
        self.assertEqual(res.err.splitlines(),
                         ["agentctl: cancelling run %s (Ctrl-C again to detach)" % run,
                          "agentctl: run was cancelled: cancelled: cancelled by the client"], res)

        # Ctrl-C twice: cancel, then detach with 130; the session is still there.
        a = self.attach(sid, "--after", "1000")
        a.send('{"seconds": 30}\n')
        run = a.wait_line(lambda l: l.startswith("run.started ")).split()[1]
        a.p.send_signal(signal.SIGINT)
        a.wait_line(lambda l: l.startswith("agentctl: cancelling run"), stream="err")
        a.p.send_signal(signal.SIGINT)
        res = a.finish()
        self.assertEqual(res.code, 130, res)
        self.assertIn("agentctl: interrupted: detached; the session and its runs go on", res.err)
        self.assertTrue(wait_until(lambda: self.run_status(sid, run) == "cancelled", 10))
        self.assertCtlOk(self.ctl("session", sid))

    def test_attach_ends_when_the_session_is_destroyed(self):
        sid = self.create("echo")
        a = self.attach(sid)
        a.send('"x"\n')
        a.wait_line(lambda l: l == "x")
        self.assertCtlOk(self.ctl("destroy", sid))
        res = a.finish()
        self.assertEqual(res.code, 1, res)
        self.assertEqual(res.err, "agentctl: not_found: session %s was destroyed\n" % sid, res)

    def test_attach_resumes_across_a_daemon_restart(self):
        sid = self.create("slow")
        a = self.attach(sid)
        a.send('{"seconds": 0.2}\n')
        a.wait_line(lambda l: l == '{"n":2}')  # slow's output: the first run is over
        # Killed and restarted between two runs: nothing repeated, nothing missed.
        self.restart_on_same_port()
        a.wait_line(lambda l: l.startswith("agentctl: reconnected"), stream="err")
        # Killed in the middle of a run: the daemon fails it at start ("killed", with no
        # event in its log); attach learns it from the run's result, then runs the next line.
        a.send('{"seconds": 30}\n')
        run = a.wait_line(lambda l: l.startswith("run.started ") and l != a.out[0]).split()[1]
        a.wait_line(lambda l: l == '{"n":1}')
        self.restart_on_same_port()
        a.send('{"seconds": 0.3}\n')
        res = a.finish(timeout=40)
        self.assertEqual(res.code, 0, res)
        self.assertEqual(self.run_status(sid, run), "failed")
        out = res.out.splitlines()
        starts = [l for l in out if l.startswith("run.started ")]
        self.assertEqual(len(starts), 3, res)
        self.assertEqual(len(set(starts)), 3, "a run printed twice: %r" % res)
        self.assertEqual(out[-4:], ['{"n":1}', '{"n":2}', '{"n":3}', '{"n":3}'], res)
        err = res.err.splitlines()
        self.assertEqual(len([l for l in err if l.startswith("agentctl: lost the connection")]), 2, res)
        self.assertEqual(len([l for l in err if l.startswith("agentctl: reconnected")]), 2, res)
        self.assertIn("agentctl: run failed: killed: the daemon stopped during the run", err)


if __name__ == "__main__":
    main()
