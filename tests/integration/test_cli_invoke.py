"""`agentctl invoke AGENT [JSON|-]` against the real daemon and the built example agents
(issue 4 item 6, docs/cli.md): events printed as they stream, the final output, --json as
one JSON event per line, input from the argument or stdin, exit statuses 0 (completed),
1 (the run failed, or the daemon refused), 2 (usage) and 130 (Ctrl-C, which ends the call).

EXAMPLES is BUILD/examples (ctest sets it); the daemon installs them with --manifests."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import AGENTCTL, CTL_TIMEOUT, CtlResult, DaemonTestCase, main  # noqa: E402

EXAMPLES = os.environ.get("EXAMPLES", os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "build", "examples"))
RUN_ID = re.compile(r"^r_[0-9a-f]{32}$")


def example(name):
    path = os.path.join(EXAMPLES, name)
    if not os.path.isfile(os.path.join(path, "agent.json")):
        raise AssertionError("built example agent missing (build first): " + path)
    return path


def descendants(pid):
    """Live processes below pid (its agents, and anything they started)."""
    parent = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if fields and fields[0] != "Z":
            parent[int(entry)] = int(fields[1])
    out = []
    for p in parent:
        q = parent.get(p)
        while q is not None and q != pid and q > 1:
            q = parent.get(q)
        if q == pid:
            out.append(p)
    return out


class Invoke(DaemonTestCase):
    daemon_args = ("--manifests", EXAMPLES)

    def setUp(self):
        example("echo")
        example("slow")
        super().setUp()

    def argv(self, *args):
        return [AGENTCTL, "--url", self.d.url, "--state-dir", self.d.state_dir] + list(args)

    def ctl_stdin(self, data, *args):
        """agentctl with data (bytes) on its stdin, a pipe."""
        argv = self.argv(*args)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTHOST_")}
        p = subprocess.run(argv, input=data, capture_output=True, timeout=CTL_TIMEOUT, cwd=self.tmp, env=env)
        return CtlResult(argv[1:], p.returncode, p.stdout.decode("utf-8", "replace"),
                         p.stderr.decode("utf-8", "replace"))

    def assertEchoed(self, res, text):
        self.assertCtlOk(res)
        lines = res.out.splitlines()
        self.assertEqual(len(lines), len(text.split()) + 2, res)
        self.assertEqual(lines[0].split()[0], "run.started", res)
        self.assertRegex(lines[0].split()[1], RUN_ID)
        self.assertEqual([json.loads(l) for l in lines[1:-1]], [{"word": w} for w in text.split()], res)
        self.assertEqual(lines[-1], text, res)
        self.assertEqual(res.err, "", res)

    # -- what it prints --------------------------------------------------------------
    def test_echo_prints_words_then_output(self):
        res = self.ctl("invoke", "echo", '"hello big world"')
        self.assertEchoed(res, "hello big world")
        self.assertEqual(res.out.splitlines()[1:], ['{"word":"hello"}', '{"word":"big"}', '{"word":"world"}',
                                                    "hello big world"])

    def test_events_print_as_they_arrive(self):
        # slow emits {"n": k} every 100 ms for 1.5 s: the first must be on our stdout (a
        # pipe, so agentctl must flush) long before the run ends.
        start = time.monotonic()
        p = subprocess.Popen(self.argv("invoke", "slow", '{"seconds": 1.5}'), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        try:
            arrivals = []
            for line in p.stdout:
                arrivals.append((time.monotonic() - start, line.decode().rstrip("\n")))
            code = p.wait(timeout=CTL_TIMEOUT)
            err = p.stderr.read().decode()
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stdout.close()
            p.stderr.close()
        end = time.monotonic() - start
        self.assertEqual(code, 0, (arrivals, err))
        texts = [t for _, t in arrivals]
        self.assertEqual(texts[0].split()[0], "run.started")
        self.assertEqual(texts[1], '{"n":1}')
        self.assertEqual(texts[-1], '{"n":15}', "the final output")
        self.assertGreater(end, 1.4)
        self.assertLess(arrivals[1][0], end - 0.8, "the first event came only at the end: %r" % arrivals)

    def test_json_prints_one_event_per_line(self):
        res = self.assertCtlOk(self.ctl("invoke", "echo", '"hello big world"', "--json"))
        events = [json.loads(l) for l in res.out.splitlines()]
        self.assertEqual([e["type"] for e in events],
                         ["run.started", "run.output", "run.output", "run.output", "run.completed"])
        seqs = [e["seq"] for e in events]
        self.assertEqual(seqs, sorted(set(seqs)), "seq must increase strictly: %r" % seqs)
        self.assertEqual(seqs[0], 1)
        self.assertEqual({e["run"] for e in events}, {events[0]["run"]})
        self.assertEqual([e["data"] for e in events[1:4]], [{"word": "hello"}, {"word": "big"}, {"word": "world"}])
        self.assertEqual(events[-1]["output"], "hello big world")
        self.assertEqual(res.err, "")

    def test_object_input_and_output(self):
        res = self.assertCtlOk(self.ctl("invoke", "echo", '{"b": [1, 2], "a": null}'))
        lines = res.out.splitlines()
        self.assertEqual(len(lines), 2, res)
        self.assertEqual(json.loads(lines[1]), {"b": [1, 2], "a": None})

    # -- where the input comes from ------------------------------------------------------
    def test_input_from_stdin(self):
        self.assertEchoed(self.ctl_stdin(b'"hello big world"\n', "invoke", "echo", "-"), "hello big world")
        # no argument and stdin is not a terminal: stdin too
        self.assertEchoed(self.ctl_stdin(b'"from a pipe"', "invoke", "echo"), "from a pipe")

    def test_plain_text_is_a_string(self):
        self.assertEchoed(self.ctl("invoke", "echo", "hello"), "hello")
        self.assertEchoed(self.ctl_stdin(b"hello there\n", "invoke", "echo", "-"), "hello there")

    def test_no_input_is_null(self):
        # The harness gives agentctl /dev/null as stdin: nothing to read, so null.
        res = self.assertCtlOk(self.ctl("invoke", "echo"))
        self.assertEqual(res.out.splitlines()[1:], ["null"])

    # -- failures --------------------------------------------------------------------
    def install_slow_with_timeout(self):
        src = os.path.join(self.tmp, "src", "slow-timeout")
        shutil.copytree(example("slow"), src)
        with open(os.path.join(src, "agent.json")) as f:
            manifest = json.load(f)
        manifest["name"] = "slow-timeout"
        manifest.setdefault("sandbox", {}).setdefault("limits", {})["run_timeout_s"] = 1
        with open(os.path.join(src, "agent.json"), "w") as f:
            json.dump(manifest, f)
        self.assertCtlOk(self.ctl("install", src))

    def test_failed_run_exits_1_with_the_reason(self):
        self.install_slow_with_timeout()
        res = self.ctl("invoke", "slow-timeout", '{"seconds": 5}')
        line = self.assertCtlError(res, 1, "timeout")
        self.assertIn("run failed: timeout: ", line)
        self.assertEqual(res.out.splitlines()[0].split()[0], "run.started", res)
        self.assertIn('{"n":1}', res.out.splitlines())

        res = self.ctl("invoke", "slow-timeout", '{"seconds": 5}', "--json")
        self.assertCtlError(res, 1, "timeout")
        last = json.loads(res.out.splitlines()[-1])
        self.assertEqual((last["type"], last["error"]["code"]), ("run.failed", "timeout"), res)

    def test_agent_failure_keeps_its_code(self):
        res = self.ctl("invoke", "slow", '{"seconds": -1}')
        self.assertCtlError(res, 1, "invalid_input", "seconds")

    def test_unknown_agent_exits_1_one_line(self):
        res = self.ctl("invoke", "nope", '"x"')
        self.assertCtlError(res, 1, "404", "not_found", "nope")
        self.assertEqual(res.out, "")
        res = self.ctl("invoke", "nope", '"x"', "--json")
        self.assertCtlError(res, 1, "nope")
        self.assertEqual(len(res.out.splitlines()), 1, res)
        self.assertEqual(json.loads(res.out)["error"]["code"], "not_found")

    def test_bad_json_is_a_usage_error(self):
        res = self.ctl("invoke", "echo", '{"a": [1, }')
        self.assertCtlError(res, 2, "not valid JSON", "line 1", "column 11")
        self.assertEqual(res.out, "")
        res = self.ctl_stdin(b'{"a":\n  nope}', "invoke", "echo", "-")
        self.assertCtlError(res, 2, "line 2", "column")
        self.assertCtlError(self.ctl("invoke"), 2, "missing argument AGENT")
        self.assertCtlError(self.ctl("invoke", "echo", "1", "2"), 2, "too many arguments")

    # -- Ctrl-C ----------------------------------------------------------------------
    def test_ctrl_c_closes_the_call_and_exits_130(self):
        p = subprocess.Popen(self.argv("invoke", "slow", '{"seconds": 30}'), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        try:
            self.assertTrue(p.stdout.readline().startswith(b"run.started"))
            self.assertEqual(p.stdout.readline(), b'{"n":1}\n')
            self.assertTrue(descendants(self.d.proc.pid), "no agent process while the call runs")
            sent = time.monotonic()
            p.send_signal(signal.SIGINT)
            code = p.wait(timeout=5)
            took = time.monotonic() - sent
            err = p.stderr.read().decode()
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stdout.close()
            p.stderr.close()
        self.assertEqual(code, 130, err)
        self.assertLess(took, 1.0)
        self.assertEqual(len(err.splitlines()), 1, err)
        self.assertIn("interrupted", err)
        # The daemon saw the connection close and ended the call's agent.
        deadline = time.monotonic() + 5
        while descendants(self.d.proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(descendants(self.d.proc.pid), [], "the agent outlived the call")


if __name__ == "__main__":
    main()
