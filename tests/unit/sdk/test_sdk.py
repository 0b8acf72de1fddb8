"""test_sdk.py: drives the Python SDK (through py_test_agent.py and the agent of
docs/sdk-python.md) and the upper-py example (as assembled in the build tree) through a
fake host on a socketpair: hello -> ready, runs, the KV mapping, cancel, hang-ups, size
caps and host protocol errors.

Usage: /usr/bin/python3 test_sdk.py --examples BUILD/examples --agent py_test_agent.py
       --doc docs/sdk-python.md
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SDK_DIR = os.path.normpath(os.path.join(HERE, "..", "..", "..", "sdk", "python"))
PYTHON = "/usr/bin/python3"
TIMEOUT = 5.0
ARGS = None


class FakeHost:
    """The host's end of one agent process: frames in and out, and a fake KV store."""

    def __init__(self, argv, cwd=None, pythonpath=None, fd_env=None, env=None):
        self.sock, child = socket.socketpair()
        env = dict(env or {}, PATH="/usr/bin:/bin", AGENTHOST_FD=fd_env or str(child.fileno()))
        if pythonpath:
            env["PYTHONPATH"] = pythonpath
        self.started = time.monotonic()
        self.proc = subprocess.Popen(argv, cwd=cwd, env=env, pass_fds=[child.fileno()])
        child.close()
        self.sock.settimeout(TIMEOUT)
        self.buffer = b""
        self.kv = {}
        self.logs = []

    def write(self, data):
        self.sock.sendall(data)

    def send(self, frame):
        self.write(json.dumps(frame).encode() + b"\n")

    def hello(self, mode="session", config=None, max_frame=None):
        frame = {"t": "hello", "protocol": 1, "agent": "test", "version": "1.0.0",
                 "mode": mode, "session": "s_1" if mode == "session" else None,
                 "resumed": False, "config": config or {}}
        if max_frame:
            frame["max_frame_bytes"] = max_frame
        self.send(frame)

    def start(self, mode="session", **kw):
        self.hello(mode, **kw)
        ready = self.next()
        assert ready == {"t": "ready"}, ready
        return time.monotonic() - self.started

    def run(self, run_id, input):
        self.send({"t": "run", "run": run_id, "input": input})

    def next(self):
        """The next frame, or None once the agent closed its end."""
        while b"\n" not in self.buffer:
            data = self.sock.recv(65536)
            if not data:
                assert self.buffer == b"", "agent hung up inside a frame"
                return None
            self.buffer += data
        line, self.buffer = self.buffer.split(b"\n", 1)
        frame = json.loads(line.decode("utf-8"))
        assert isinstance(frame.get("t"), str), frame
        return frame

    def expect(self, t):
        frame = self.next()
        assert frame is not None and frame["t"] == t, "expected %s, got %r" % (t, frame)
        return frame

    def serve_kv(self, frame):
        t, key, req = frame["t"], frame.get("key"), frame["req"]
        assert isinstance(req, int) and req >= 1
        result = {"t": "kv.result", "req": req, "ok": True}
        if key == "refuse":
            result = {"t": "kv.result", "req": req, "ok": False,
                      "error": {"code": "too_large", "message": "value over 1 MiB"}}
        elif t == "kv.get":
            if key in self.kv:
                result["value"] = self.kv[key]
        elif t == "kv.set":
            self.kv[key] = frame["value"]
        elif t == "kv.del":
            result["value"] = self.kv.pop(key, KeyError) is not KeyError
        elif t == "kv.list":
            result["value"] = sorted(k for k in self.kv if k.startswith(frame["prefix"]))
        self.send(result)

    def until_end(self, run_id):
        """Serves KV and keeps logs until run_id ends; returns (end frame, event data)."""
        events = []
        while True:
            frame = self.next()
            assert frame is not None, "agent hung up during run %s" % run_id
            t = frame["t"]
            if t.startswith("kv."):
                self.serve_kv(frame)
            elif t == "log":
                self.logs.append((frame["level"], frame["msg"]))
            elif t == "event":
                assert frame["run"] == run_id
                events.append(frame["data"])
            elif t in ("done", "error"):
                assert frame["run"] == run_id
                return frame, events

    def wait(self, timeout=TIMEOUT):
        return self.proc.wait(timeout)

    def close(self):
        self.sock.close()

    def finish(self):
        self.close()
        if self.proc.poll() is None:
            try:
                self.proc.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def test_agent():
    return FakeHost([PYTHON, "-B", ARGS.agent], pythonpath=SDK_DIR)


class UpperPy(unittest.TestCase):
    def test_upper(self):
        folder = os.path.join(ARGS.examples, "upper-py")
        host = FakeHost([PYTHON, "agent.py"], cwd=folder)
        try:
            took = host.start(mode="invoke")
            sys.stderr.write("upper-py: spawn to ready in %.1f ms\n" % (took * 1000))
            host.run("r_1", "hello, wörld")
            end, events = host.until_end("r_1")
            self.assertEqual(end, {"t": "done", "run": "r_1", "output": "HELLO, WÖRLD"})
            self.assertEqual(events, [])
            host.run("r_2", 42)
            end, _ = host.until_end("r_2")
            self.assertEqual((end["t"], end["code"]), ("error", "invalid_input"))
            host.send({"t": "destroy"})
            self.assertEqual(host.wait(), 0)
        finally:
            host.finish()


class DocExample(unittest.TestCase):
    """The agent of docs/sdk-python.md, as written there."""

    def test_notes(self):
        import re
        import tempfile

        with open(ARGS.doc, encoding="utf-8") as f:
            program = re.search(r"```python\n(.*?)```", f.read(), re.S).group(1)
        with tempfile.TemporaryDirectory() as folder:
            with open(os.path.join(folder, "agent.py"), "w", encoding="utf-8") as f:
                f.write(program)
            host = FakeHost([PYTHON, "-B", "agent.py"], cwd=folder, pythonpath=SDK_DIR)
            try:
                host.start(config={"GREETING": "ok"})
                for n, note in enumerate(["a", {"b": 1}], 1):
                    host.run("r_%d" % n, note)
                    end, events = host.until_end("r_%d" % n)
                    self.assertEqual(end["output"], {"message": "ok", "count": n})
                self.assertEqual(events, [{"note": "a"}, {"note": {"b": 1}}])
                self.assertEqual(host.kv, {"notes": ["a", {"b": 1}]})
                host.send({"t": "destroy"})
                self.assertEqual(host.wait(), 0)
            finally:
                host.finish()


class PythonSDK(unittest.TestCase):
    def setUp(self):
        self.host = test_agent()

    def tearDown(self):
        self.host.finish()

    def test_return_value_is_output(self):
        host = self.host
        host.start()
        host.run("r_1", [1, "two"])
        end, events = host.until_end("r_1")
        self.assertEqual(end, {"t": "done", "run": "r_1", "output": [1, "two"]})
        self.assertEqual(events, [{"got": [1, "two"]}])
        # A cancel of an ended run and an unknown frame are ignored.
        host.write(b'{"t":"cancel","run":"r_1"}\n{"t":"future"}\r\n')
        host.run("r_2", None)
        end, _ = host.until_end("r_2")
        self.assertEqual(end["output"], None)
        host.send({"t": "destroy"})
        self.assertEqual(host.wait(), 0)

    def test_kv_round_trip(self):
        host = self.host
        host.start()
        host.run("r_1", {"op": "kv"})
        end, _ = host.until_end("r_1")
        self.assertEqual(end["t"], "done")
        self.assertEqual(end["output"], {
            "get_b": {"x": [1]}, "get_ab": None, "get_missing": "default",
            "missing_raises": True, "contains_a": True, "list_all": ["a", "ab", "b"],
            "list_a": ["a", "ab"], "len": 3, "del_again_raises": True,
            "delete_missing": False, "refused": ["too_large", "value over 1 MiB"],
            "empty_key_raises": True})
        self.assertEqual(host.kv, {"b": {"x": [1]}, "ab": None})

    def test_cancel_during_kv(self):
        host = self.host
        host.start()
        host.run("r_1", {"op": "kv_cancel"})
        get = host.expect("kv.get")
        host.send({"t": "cancel", "run": "r_1"})
        host.send({"t": "kv.result", "req": get["req"], "ok": True})
        end, _ = host.until_end("r_1")
        self.assertEqual((end["t"], end["code"]), ("error", "cancelled"))
        self.assertEqual(host.logs, [("info", "cancelled=True cancels=1")])

    def test_polling_run_sees_cancel(self):
        host = self.host
        host.start()
        host.run("r_1", {"op": "spin"})
        host.expect("event")
        sent = time.monotonic()
        host.send({"t": "cancel", "run": "r_1"})
        end, _ = host.until_end("r_1")
        self.assertEqual((end["t"], end["code"]), ("error", "cancelled"))
        self.assertLess(time.monotonic() - sent, 0.2)

    def test_frames_over_64k(self):
        """A run input and a kv.result longer than the SDK's read size (65536) arrive whole;
        the agent does not take the part it has read for a hang-up."""
        host = self.host
        host.start()
        host.kv["big"] = "v" * (900 << 10)
        host.run("r_1", {"op": "long", "text": "x" * 70000})
        end, _ = host.until_end("r_1")
        self.assertEqual(end["output"], {"input_len": 70000, "value_len": 900 << 10,
                                         "value_ok": True})
        host.run("r_2", "y" * 70000)
        end, events = host.until_end("r_2")
        self.assertEqual((end["output"], events), ("y" * 70000, [{"got": "y" * 70000}]))
        host.send({"t": "destroy"})
        self.assertEqual(host.wait(), 0)

    def test_cancel_in_the_same_read_as_its_run(self):
        """run and cancel in one send: the agent reads both at once; the run must see the
        cancel from its start and end as cancelled at once, the cancel hook called once."""
        host = self.host
        host.start()
        sent = time.monotonic()
        host.write(b'{"t":"run","run":"r_1","input":{"op":"spin_count"}}\n'
                   b'{"t":"cancel","run":"r_1"}\n')
        end, _ = host.until_end("r_1")
        self.assertEqual((end["t"], end["code"]), ("error", "cancelled"))
        self.assertLess(time.monotonic() - sent, 0.2)
        self.assertEqual(host.logs, [("info", "cancels=1")])
        # The next run is not cancelled.
        host.run("r_2", None)
        end, _ = host.until_end("r_2")
        self.assertEqual(end["t"], "done")

    def test_run_endings(self):
        host = self.host
        host.start()
        host.run("r_1", {"op": "raise"})
        end, _ = host.until_end("r_1")
        self.assertEqual(end, {"t": "error", "run": "r_1", "code": "agent_error",
                               "message": "ValueError: bad input"})
        host.run("r_2", {"op": "fail"})
        end, _ = host.until_end("r_2")
        self.assertEqual((end["code"], end["message"]), ("custom", "it failed"))
        host.run("r_3", {"op": "log"})
        end, _ = host.until_end("r_3")
        self.assertEqual(end["output"], None)
        self.assertEqual(host.logs, [("warn", "n=42")])
        host.run("r_4", {"op": "nan"})
        end, _ = host.until_end("r_4")
        self.assertEqual(end["output"], "refused")

    def test_invoke_has_no_kv_and_cap_is_kept(self):
        host = self.host
        host.start(mode="invoke", max_frame=200)
        host.run("r_1", {"op": "nokv"})
        end, _ = host.until_end("r_1")
        self.assertEqual(end["output"], "no_kv")
        host.run("r_2", {"op": "big"})
        end, events = host.until_end("r_2")
        self.assertEqual(events, [])
        self.assertIn("over the host's cap of 200 bytes", end["output"])

    def test_create_failure(self):
        host = self.host
        host.hello(config={"FAIL_CREATE": "1"})
        self.assertIsNone(host.next())
        self.assertEqual(host.wait(), 1)

    def test_hang_up_during_run(self):
        host = self.host
        host.start()
        host.run("r_1", {"op": "spin"})
        host.expect("event")
        host.close()
        self.assertEqual(host.wait(), 0)


class HostProtocolErrors(unittest.TestCase):
    HELLO = (b'{"t":"hello","protocol":1,"agent":"a","version":"1","mode":"session",'
             b'"session":"s","resumed":false,"config":{}}\n')

    def expect_exit_1(self, data, close=False):
        host = test_agent()
        try:
            host.write(data)
            if close:
                host.sock.shutdown(socket.SHUT_WR)
            self.assertEqual(host.wait(), 1)
        finally:
            host.finish()

    def test_garbage(self):
        self.expect_exit_1(b"garbage\n")

    def test_run_before_hello(self):
        self.expect_exit_1(b'{"t":"run","run":"r","input":1}\n')

    def test_stray_kv_result(self):
        self.expect_exit_1(self.HELLO + b'{"t":"kv.result","req":1,"ok":true}\n')

    def test_second_hello(self):
        self.expect_exit_1(self.HELLO + self.HELLO)

    def test_wrong_protocol(self):
        self.expect_exit_1(self.HELLO.replace(b'"protocol":1', b'"protocol":2'))

    def test_truncated_frame(self):
        self.expect_exit_1(self.HELLO + b'{"t":"run"', close=True)

    def test_no_host_connection(self):
        host = FakeHost([PYTHON, "-B", ARGS.agent], pythonpath=SDK_DIR, fd_env="99")
        try:
            self.assertEqual(host.wait(), 1)
        finally:
            host.finish()


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", required=True, help="BUILD/examples")
    parser.add_argument("--agent", required=True, help="py_test_agent.py")
    parser.add_argument("--doc", required=True, help="docs/sdk-python.md")
    ARGS, rest = parser.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
