"""End-to-end tests of the example agents (examples/echo, slow, upper-py) through the real
daemon: installed with `agenthostd --manifests BUILD/examples`, called with
POST /v1/agents/{name}/invoke as JSON and as SSE. Oracle: docs/http.md ("Runs, events and
stateless calls") and each example's README."""

import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import AgentDaemonTestCase, example, main, parse_sse  # noqa: E402


class ExampleAgents(AgentDaemonTestCase):
    """A daemon started with --manifests BUILD/examples; calls with the admin token."""

    # -- echo -------------------------------------------------------------------------------
    def test_echo_json_returns_its_input(self):
        for value in ["hello big world", {"a": 1, "b": [1, 2, {"c": None}]}, [1, "two", 3.5],
                      42, True, None, "", "héllo wörld ☃"]:
            res = self.assertRunResult(self.invoke("echo", {"input": value}), "completed")
            self.assertEqual(res["output"], value, res)
        # No Accept header above (JSON is the default); the explicit one gives the same.
        r = self.invoke("echo", {"input": "explicit"}, headers={"Accept": "application/json"})
        self.assertEqual(self.assertRunResult(r, "completed")["output"], "explicit")

    def test_echo_sse_streams_one_event_per_word(self):
        s = self.stream("echo", {"input": "hello big world"})
        events = s.events()
        run = self.assertEventStream(events, "run.completed")
        self.assertEqual([ev["data"].get("data") for ev in events[1:-1]],
                         [{"word": "hello"}, {"word": "big"}, {"word": "world"}], events)
        self.assertEqual(events[-1]["data"].get("output"), "hello big world", events[-1])
        self.assertNotIn("error", events[-1]["data"], events[-1])
        # The stream closed by itself after run.completed (events() returned): nothing more.
        self.assertIsNone(s.next_event())
        # The same call's result, as JSON, has the same shape of output.
        res = self.assertRunResult(self.invoke("echo", {"input": "hello big world"}), "completed")
        self.assertNotEqual(res["id"], run, "every call has its own run ID")

    def test_echo_sse_non_string_input_has_no_word_events(self):
        events = self.stream("echo", {"input": {"a": 1}}).events()
        self.assertEventStream(events, "run.completed")
        self.assertEqual([ev["event"] for ev in events], ["run.started", "run.completed"], events)
        self.assertEqual(events[-1]["data"].get("output"), {"a": 1})

    def test_issue_curl_line(self):
        """Issue 4, Done when: the exact curl line prints the three words as separate events,
        then run.completed."""
        line = ("curl -N -H 'Accept: text/event-stream' -H \"Authorization: Bearer $T\" "
                "-d '{\"input\":\"hello big world\"}' 127.0.0.1:%d/v1/agents/echo/invoke" % self.d.port)
        env = dict(os.environ, T=self.token)
        p = subprocess.run(["/bin/sh", "-c", line], env=env, capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 0, "curl failed: %r" % p.stderr[-500:])
        events = parse_sse(p.stdout.decode("utf-8"))
        self.assertEventStream(events, "run.completed")
        outputs = [ev for ev in events if ev["event"] == "run.output"]
        self.assertEqual([ev["data"]["data"] for ev in outputs],
                         [{"word": "hello"}, {"word": "big"}, {"word": "world"}], p.stdout)
        self.assertEqual(events[-1]["event"], "run.completed", p.stdout)
        self.assertEqual(events[-1]["data"]["output"], "hello big world")

    # -- upper-py ---------------------------------------------------------------------------
    def test_upper_py_upper_cases(self):
        res = self.assertRunResult(self.invoke("upper-py", {"input": "hello World"}), "completed")
        self.assertEqual(res["output"], "HELLO WORLD", res)
        events = self.stream("upper-py", {"input": "abc"}).events()
        self.assertEventStream(events, "run.completed")
        self.assertEqual(events[-1]["data"].get("output"), "ABC")

    def test_upper_py_refuses_a_non_string_with_its_own_code(self):
        # An agent's own failure keeps the agent's code (docs/http.md, Run results).
        res = self.assertRunResult(self.invoke("upper-py", {"input": 42}), "failed")
        self.assertEqual(res["error"]["code"], "invalid_input", res)
        events = self.stream("upper-py", {"input": [1]}).events()
        self.assertEventStream(events, "run.failed")
        self.assertEqual(events[-1]["data"].get("error", {}).get("code"), "invalid_input", events)

    # -- slow -------------------------------------------------------------------------------
    def test_slow_streams_counters_as_they_happen(self):
        s = self.stream("slow", {"input": {"seconds": 0.8}})
        events = s.events()
        self.assertEventStream(events, "run.completed")
        outputs = [ev for ev in events if ev["event"] == "run.output"]
        self.assertEqual([ev["data"]["data"] for ev in outputs], [{"n": i} for i in range(1, 9)], events)
        self.assertEqual(events[-1]["data"]["output"], {"n": 8})
        # Streamed as produced, not buffered to the end: the first counter arrives well
        # before the last (the agent emits one every 100 ms).
        spread = outputs[-1]["at"] - outputs[0]["at"]
        self.assertGreater(spread, 0.4, "counters arrived together (%.3f s apart): buffered" % spread)

    def test_slow_json_and_invalid_input(self):
        res = self.assertRunResult(self.invoke("slow", {"input": {"seconds": 0.3}}), "completed")
        self.assertEqual(res["output"], {"n": 3}, res)
        res = self.assertRunResult(self.invoke("slow", {"input": {"seconds": -1}}), "failed")
        self.assertEqual(res["error"]["code"], "invalid_input", res)

    def test_slow_honours_run_timeout(self):
        name = self.install_variant(example("slow"), "slow-t1",
                                    {"sandbox": {"limits": {"run_timeout_s": 1}}})
        t = time.monotonic()
        res = self.assertRunResult(self.invoke(name, {"input": {"seconds": 5}}), "failed")
        took = time.monotonic() - t
        self.assertEqual(res["error"]["code"], "timeout", res)
        self.assertIn("1 s", res["error"]["message"], res)
        self.assertTrue(0.9 <= took < 3.0, "the call took %.2f s, expected about 1 s" % took)

        # Over SSE: counters, then run.failed with the timeout, then the stream closes.
        events = self.stream(name, {"input": {"seconds": 5}}).events()
        self.assertEventStream(events, "run.failed")
        self.assertGreaterEqual(len(events), 4, "some counters before the timeout: %r" % events)
        self.assertEqual(events[-1]["data"].get("error", {}).get("code"), "timeout", events[-1])


if __name__ == "__main__":
    main()
