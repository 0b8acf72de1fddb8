"""Stateless calls through the real daemon: POST /v1/agents/{name}/invoke and
GET /v1/agents/{name}/invoke/{id}. Oracle: docs/http.md ("Runs, events and stateless
calls"); issue 4's Done-when (a hostile agent fails with the right reason while 50
concurrent echo calls succeed).

Agents: the built examples (EXAMPLES), variants of them made at test time (an agent folder
cannot hold a symlink to the build output), fixture agents under tests/fixtures/agents/
(invoke-*), and agents made of the hostile suite's probe programs (PROBES)."""

import http.client
import json
import os
import re
import shutil
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (PROBES, RUN_ID, AgentDaemonTestCase, child_pids, daemon_metrics,  # noqa: E402
                     example, fixture, main, metric, pid_alive, state_snapshot, wait_until)

GONE_WITHIN = 2.0  # seconds for an agent process to be gone after its client left


class InvokeCase(AgentDaemonTestCase):

    def metrics(self):
        return daemon_metrics(self.d)

    def agents_alive(self):
        return metric(self.metrics(), "agenthost_agent_processes")

    def assertNoAgentLeft(self, within=GONE_WITHIN, pids=()):
        """agenthost_agent_processes drops to 0 and every pid in pids is gone, within."""
        ok = wait_until(lambda: self.agents_alive() == 0 and not any(pid_alive(p) for p in pids),
                        within)
        if not ok:
            self.fail("agent processes still alive after %.1f s: metric %s, pids %s alive, "
                      "daemon children %s" % (within, self.agents_alive(),
                                              [p for p in pids if pid_alive(p)],
                                              child_pids(self.d.proc.pid)))

    def wait_result(self, name, run_id, timeout=15.0):
        """Polls GET /v1/agents/NAME/invoke/ID until it answers 200 (404 meanwhile)."""
        last = [None]

        def done():
            r = self.d.request("GET", "/v1/agents/%s/invoke/%s" % (name, run_id), token=self.token)
            last[0] = r
            if r.status not in (200, 404):
                self.fail("GET result answered %r" % r)
            return r.status == 200
        if not wait_until(done, timeout, 0.05):
            self.fail("no result for %s within %.0f s (last %r)" % (run_id, timeout, last[0]))
        return last[0]

    def start_call(self, name, body):
        """?wait=false: asserts 202 {"id", "status": "queued"}; returns the ID."""
        r = self.assertStatus(self.invoke(name, body, query="?wait=false"), 202)
        j = r.json()
        self.assertEqual(set(j), {"id", "status"}, r)
        self.assertEqual(j["status"], "queued", r)
        self.assertRegex(j["id"], RUN_ID)
        return j["id"]

    def py_worker(self, name, changes=None):
        """The fx-worker-py fixture with the Python SDK copied in, renamed NAME."""
        sdk = os.path.join(example("upper-py"), "agenthost_sdk.py")
        return self.install_variant(fixture("invoke-worker-py"), name, changes, files=[sdk])

    def probe_agent(self, name, argv, limits=None):
        """An invoke agent whose program is one of the hostile suite's probes: argv[0] is
        the probe's name in PROBES. Probes never speak the protocol."""
        probe = os.path.join(PROBES, argv[0])
        if not os.access(probe, os.X_OK):
            self.fail("hostile probe not built: %s" % probe)
        dest = os.path.join(self.tmp, "src", name)
        os.makedirs(dest)
        os.chmod(dest, 0o755)
        shutil.copy2(probe, dest)
        manifest = {"manifest_version": 1, "name": name, "version": "1.0.0",
                    "description": "hostile probe " + " ".join(argv),
                    "entrypoint": ["./" + argv[0]] + list(argv[1:]), "modes": ["invoke"],
                    "sandbox": {"limits": limits or {}}}
        with open(os.path.join(dest, "agent.json"), "w") as f:
            json.dump(manifest, f)
        self.assertStatus(self.d.install(dest), 201)
        return name


class Semantics(InvokeCase):
    """Answers, errors and auth of the route itself."""

    def test_wait_false_answers_202_then_the_result(self):
        run_id = self.start_call("slow", {"input": {"seconds": 1}})
        # Still running: only a finished call has a result (docs: "or 404").
        self.assertError(self.d.request("GET", "/v1/agents/slow/invoke/" + run_id, token=self.token),
                         404, "not_found")
        res = self.assertRunResult(self.wait_result("slow", run_id), "completed")
        self.assertEqual(res["id"], run_id)
        self.assertEqual(res["output"], {"n": 10}, res)
        # The result stays readable.
        again = self.assertRunResult(self.d.request("GET", "/v1/agents/slow/invoke/" + run_id,
                                                    token=self.token), "completed")
        self.assertEqual(again, res)

        # A failed call's result too.
        run_id = self.start_call("slow", {"input": {"seconds": -1}})
        res = self.assertRunResult(self.wait_result("slow", run_id), "failed")
        self.assertEqual(res["error"]["code"], "invalid_input", res)

    def test_result_of_unknown_call_is_404(self):
        for rid in ("r_" + "0" * 32, "r_nope", "x"):
            self.assertError(self.d.request("GET", "/v1/agents/echo/invoke/" + rid, token=self.token),
                             404, "not_found")

    def test_body_errors(self):
        spawns = metric(self.metrics(), "agenthost_spawns_total", {"result": "ok"})
        r = self.invoke("echo", b"{not json", headers={"Content-Type": "application/json"})
        self.assertError(r, 400, "bad_request", "line", "column")
        r = self.invoke("echo", {"input": 1, "extra": 2})
        self.assertError(r, 400, "bad_request", "extra")
        self.assertError(self.invoke("echo", [1]), 400, "bad_request")
        self.assertError(self.invoke("echo", "\"just a string\""), 400, "bad_request")
        r = self.invoke("echo", b"{}", headers={"Content-Type": "text/html"})
        self.assertError(r, 415, "unsupported_media_type")

        # 10 MB: refused with 413 from the headers, before the body is read.
        size = 10 * 1024 * 1024
        head = ("POST /v1/agents/echo/invoke HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
                "Content-Length: %d\r\n\r\n" % (self.token, size)).encode()
        chunk = b"{\"input\": \"" + b"a" * (64 * 1024 - 11)
        status, headers, body, _sent = self.d.raw_exchange(
            head, (chunk if i == 0 else b"a" * (64 * 1024) for i in range(size // (64 * 1024))),
            timeout=30)
        self.assertEqual(status, 413, (status, headers, body[:300]))
        self.assertEqual(json.loads(body)["error"]["code"], "too_large", body)

        # None of these started an agent, and the daemon still serves.
        self.assertEqual(metric(self.metrics(), "agenthost_spawns_total", {"result": "ok"}), spawns)
        res = self.assertRunResult(self.invoke("echo", {"input": "still here"}), "completed")
        self.assertEqual(res["output"], "still here")

    def test_input_may_be_left_out(self):
        res = self.assertRunResult(self.invoke("echo", {}), "completed")
        self.assertIsNone(res["output"], res)

    def test_unknown_agent_is_404(self):
        self.assertError(self.invoke("no-such-agent", {"input": 1}), 404, "not_found", "no-such-agent")
        self.assertError(self.invoke("no-such-agent", {"input": 1}, query="?wait=false"),
                         404, "not_found")

    def test_session_only_agent_is_400(self):
        self.assertStatus(self.d.install(fixture("invoke-session-only")), 201)
        self.assertError(self.invoke("fx-session-only", {"input": 1}), 400, "bad_request")
        self.assertError(self.invoke("fx-session-only", {"input": 1}, query="?wait=false"),
                         400, "bad_request")

    def test_required_config_not_set_is_422_naming_the_key(self):
        self.assertStatus(self.d.install(fixture("invoke-required-config")), 201)
        spawns = metric(self.metrics(), "agenthost_spawns_total", {"result": "ok"})
        self.assertError(self.invoke("fx-needs-config", {"input": 1}), 422, "invalid_input",
                         "FX_API_KEY")
        self.assertEqual(metric(self.metrics(), "agenthost_spawns_total", {"result": "ok"}), spawns,
                         "a refused call must not start the agent")

    def test_auth(self):
        self.assertError(self.invoke("echo", {"input": 1}, token=None), 401, "unauthorized")
        self.assertError(self.invoke("echo", {"input": 1}, token="aht_" + "0" * 64), 401,
                         "unauthorized")
        r = self.assertStatus(self.d.admin("POST", "/v1/tokens", {"name": "invoker"}), 201)
        client = r.json()["token"]
        res = self.assertRunResult(self.invoke("echo", {"input": "as a client"}, token=client),
                                   "completed")
        self.assertEqual(res["output"], "as a client")
        r = self.assertStatus(self.invoke("echo", {"input": 2}, query="?wait=false", token=client), 202)
        run_id = r.json()["id"]
        self.assertError(self.d.request("GET", "/v1/agents/echo/invoke/" + run_id), 401, "unauthorized")
        wait_until(lambda: self.d.request("GET", "/v1/agents/echo/invoke/" + run_id,
                                          token=client).status == 200, 10)
        res = self.assertRunResult(self.d.request("GET", "/v1/agents/echo/invoke/" + run_id,
                                                  token=client), "completed")
        self.assertEqual(res["output"], 2)

    def test_wrong_method_is_405(self):
        r = self.d.request("GET", "/v1/agents/echo/invoke", token=self.token)
        self.assertError(r, 405, "method_not_allowed")
        self.assertIn("POST", r.header("Allow") or "", r.headers)


    def test_results_of_the_last_1024_calls_are_kept(self):
        name = self.install_variant(example("echo"), "echo-ring",
                                    {"invoke": {"isolation": "worker", "workers": 1}})
        ids = []
        for _ in range(21):  # 1050 calls, in batches below the worker's queue limit
            ids += [self.start_call(name, {"input": len(ids) + i}) for i in range(50)]
            self.wait_result(name, ids[-1])
        for i, run_id in enumerate(ids[-1024:], len(ids) - 1024):
            r = self.d.request("GET", "/v1/agents/%s/invoke/%s" % (name, run_id), token=self.token)
            if r.status != 200 or r.json().get("output") != i:
                self.fail("call %d of the last 1024: %r" % (i, r))

    def test_spawn_failure_in_every_answer_mode(self):
        # An allow_syscalls name the kernel does not know is valid in a manifest and fails
        # when the sandbox builds its filter (docs/manifest.md): a spawn that fails. Asked
        # for as JSON, SSE and ?wait=false, in both isolations: 500 internal each time
        # (docs/http.md), and the daemon goes on serving.
        got, want = [], []
        for isolation in ("process", "worker"):
            name = self.install_variant(fixture("minimal"), "spawn-fails-any-" + isolation, {
                "sandbox": {"allow_syscalls": ["no_such_syscall_xyz"]},
                "invoke": {"isolation": isolation, "workers": 1}})
            for mode, query, headers in (("json", "", {}),
                                         ("sse", "", {"Accept": "text/event-stream"}),
                                         ("wait=false", "?wait=false", {})):
                want.append((isolation, mode, 500, "internal", "names the step", True))
                try:
                    r = self.invoke(name, {"input": 1}, query=query, headers=headers, timeout=5)
                    if r.status >= 400:
                        err = r.json().get("error", {})
                        answer = (r.status, err.get("code"), "names the step"
                                  if "seccomp" in err.get("message", "") else err.get("message"))
                    else:
                        answer = (r.status, r.body[:120], None)
                except (OSError, AssertionError) as e:
                    answer = ("no answer within 5 s", repr(e)[:80], None)
                try:
                    alive = self.d.request("GET", "/healthz", timeout=2).status == 200
                except OSError:
                    alive = False
                got.append((isolation, mode) + answer + (alive,))
                if not alive:
                    self.d.kill()  # hung: SIGTERM would not be served either
                    self.fail("the daemon stopped answering /healthz after a %s call to a %s "
                              "agent whose spawn fails:\n got %r\nwant %r" % (mode, isolation, got, want))
        self.assertEqual(got, want)

    def test_hello_and_kv_refusal_seen_by_a_raw_agent(self):
        self.assertStatus(self.d.install(fixture("invoke-raw-kv")), 201)
        res = self.assertRunResult(self.invoke("fx-raw-kv", {"input": 1}), "completed")
        hello, answers = res["output"]["hello"], res["output"]["answers"]
        # docs/protocol.md: hello in mode invoke has session null, resumed false.
        for k, v in {"t": "hello", "protocol": 1, "agent": "fx-raw-kv", "version": "1.0.0",
                     "mode": "invoke", "session": None, "resumed": False, "config": {}}.items():
            self.assertEqual(hello.get(k, "<absent>"), v, "hello.%s: %r" % (k, hello))
        # Every kv.* frame is answered with a refusal carrying the same req; docs/protocol.md
        # gives the error as {"code": "no_kv", "message"}.
        for req, answer in zip((1, 2), answers):
            self.assertEqual(answer.get("t"), "kv.result", answers)
            self.assertEqual(answer.get("req"), req, answers)
            self.assertIs(answer.get("ok"), False, answers)
            self.assertNotIn("value", answer, answers)
            self.assertEqual(answer.get("error", {}).get("code"), "no_kv", answers)
            self.assertTrue(answer["error"].get("message"), answers)

    def test_calls_leave_nothing_on_disk(self):
        # docs: a stateless call leaves nothing on disk.
        name = self.py_worker("py-disk")
        self.assertRunResult(self.invoke("echo", {"input": 0}), "completed")
        self.assertRunResult(self.invoke(name, {"input": 0}), "completed")
        before = state_snapshot(self.d)
        for i in range(3):
            self.assertRunResult(self.invoke("echo", {"input": "x %d" % i}), "completed")
            self.assertRunResult(self.invoke("upper-py", {"input": "x"}), "completed")
            self.assertRunResult(self.invoke(name, {"input": i}), "completed")
        self.assertRunResult(self.invoke(name, {"input": "exit"}), "failed")
        self.assertEqual(state_snapshot(self.d) - before, set())


class Isolation(InvokeCase):
    """process: a fresh process per call; worker: long-lived processes, one call at a time."""

    def test_process_isolation_fresh_process_per_call(self):
        name = self.py_worker("py-process", {"invoke": {"isolation": "process"}})
        spawns = metric(self.metrics(), "agenthost_spawns_total", {"result": "ok"})
        seen = set()
        for i in range(3):
            res = self.assertRunResult(self.invoke(name, {"input": i}), "completed")
            out = res["output"]
            self.assertEqual((out["count"], out["input"]), (1, i), "a process serves one call: %r" % res)
            self.assertEqual(out["mode"], "invoke", "hello.mode of a stateless call: %r" % res)
            seen.add(out["process"])
        self.assertEqual(len(seen), 3, "three calls, three processes: %r" % seen)
        self.assertEqual(metric(self.metrics(), "agenthost_spawns_total", {"result": "ok"}) - spawns, 3)
        self.assertNoAgentLeft()

    def test_worker_isolation_reuses_its_process(self):
        name = self.py_worker("py-worker")  # workers: 1
        spawns = metric(self.metrics(), "agenthost_spawns_total", {"result": "ok"})
        outs = [self.assertRunResult(self.invoke(name, {"input": i}), "completed")["output"]
                for i in range(4)]
        self.assertEqual([o["count"] for o in outs], [1, 2, 3, 4], outs)
        self.assertEqual({o["mode"] for o in outs}, {"invoke"}, outs)
        self.assertEqual(len({o["process"] for o in outs}), 1, outs)
        self.assertEqual(metric(self.metrics(), "agenthost_spawns_total", {"result": "ok"}) - spawns, 1)
        self.assertEqual(self.agents_alive(), 1, "the worker lives on between calls")

    def test_worker_crash_fails_only_its_call(self):
        name = self.py_worker("py-crash")  # workers: 1
        first = self.assertRunResult(self.invoke(name, {"input": "a"}), "completed")["output"]
        res = self.assertRunResult(self.invoke(name, {"input": "exit"}), "failed")
        self.assertEqual(res["error"]["code"], "exited", res)
        self.assertIn("3", res["error"]["message"], res)
        after = self.assertRunResult(self.invoke(name, {"input": "b"}), "completed")["output"]
        self.assertNotEqual(after["process"], first["process"], "the crashed worker was replaced")
        self.assertEqual(after["count"], 1, after)

        # With calls queued behind the crashing one: only its call fails, the queued calls
        # are served (in order) by the replacement.
        crash = self.start_call(name, {"input": "exit"})
        queued = [self.start_call(name, {"input": "q%d" % i}) for i in range(3)]
        res = self.assertRunResult(self.wait_result(name, crash), "failed")
        self.assertEqual(res["error"]["code"], "exited", res)
        outs = [self.assertRunResult(self.wait_result(name, q), "completed")["output"] for q in queued]
        self.assertEqual([o["input"] for o in outs], ["q0", "q1", "q2"], outs)
        self.assertEqual(len({o["process"] for o in outs}), 1, outs)
        self.assertNotIn(after["process"], {o["process"] for o in outs})

    def test_two_workers_serve_concurrently(self):
        name = self.install_variant(example("slow"), "slow-w2",
                                    {"invoke": {"isolation": "worker", "workers": 2}})

        def two_calls(seconds):
            results = [None, None]

            def call(i):
                results[i] = self.invoke(name, {"input": {"seconds": seconds}})
            threads = [threading.Thread(target=call, args=(i,)) for i in range(2)]
            t = time.monotonic()
            for th in threads:
                th.start()
            for th in threads:
                th.join(30)
            return time.monotonic() - t, results

        two_calls(0)  # starts the pool
        spawns = metric(self.metrics(), "agenthost_spawns_total", {"result": "ok"})
        took, results = two_calls(1)
        for r in results:
            self.assertIsNotNone(r, "a call did not return")
            self.assertEqual(self.assertRunResult(r, "completed")["output"], {"n": 10}, r)
        self.assertLess(took, 1.7, "two 1 s calls on 2 workers took %.2f s: not concurrent" % took)
        self.assertEqual(metric(self.metrics(), "agenthost_spawns_total", {"result": "ok"}), spawns,
                         "the warm workers served both calls")
        self.assertEqual(self.agents_alive(), 2)

    def test_worker_killed_from_outside(self):
        name = self.install_variant(example("slow"), "slow-kill",
                                    {"invoke": {"isolation": "worker", "workers": 1}})
        s = self.stream(name, {"input": {"seconds": 5}})
        self.assertEqual(s.next_event()["event"], "run.started")
        self.assertEqual(s.next_event()["event"], "run.output")
        pids = child_pids(self.d.proc.pid)
        self.assertEqual(len(pids), 1, "one worker process: %r" % pids)
        os.kill(pids[0], signal.SIGKILL)
        rest = s.events()
        self.assertTrue(rest, "the stream ended without a terminal event")
        self.assertEqual(rest[-1]["event"], "run.failed", rest)
        self.assertEqual(rest[-1]["data"]["error"]["code"], "killed", rest[-1])
        res = self.assertRunResult(self.invoke(name, {"input": {"seconds": 0.2}}), "completed")
        self.assertEqual(res["output"], {"n": 2})

    def test_worker_timeout_fails_the_call_and_is_replaced(self):
        name = self.install_variant(example("slow"), "slow-wt", {
            "invoke": {"isolation": "worker", "workers": 1},
            "sandbox": {"limits": {"run_timeout_s": 1}}})
        res = self.assertRunResult(self.invoke(name, {"input": {"seconds": 5}}), "failed")
        self.assertEqual(res["error"]["code"], "timeout", res)
        res = self.assertRunResult(self.invoke(name, {"input": {"seconds": 0.1}}), "completed")
        self.assertEqual(res["output"], {"n": 1})

    def test_worker_queue_is_bounded(self):
        # docs: calls wait in a queue of at most 64 per worker (then 429 too_many).
        name = self.install_variant(example("slow"), "slow-q",
                                    {"invoke": {"isolation": "worker", "workers": 1}})
        self.assertRunResult(self.invoke(name, {"input": {"seconds": 0}}), "completed")  # warm
        blocker = self.start_call(name, {"input": {"seconds": 2}})
        time.sleep(0.2)  # the idle worker has taken it
        queued = [self.start_call(name, {"input": {"seconds": 0}}) for _ in range(64)]
        self.assertError(self.invoke(name, {"input": {"seconds": 0}}, query="?wait=false"),
                         429, "too_many")
        self.assertError(self.invoke(name, {"input": {"seconds": 0}}), 429, "too_many")
        self.assertRunResult(self.wait_result(name, blocker), "completed")
        for q in queued:
            self.assertRunResult(self.wait_result(name, q), "completed")


class Ends(InvokeCase):
    """Calls whose agent ends early: client gone, limits, protocol violations; metrics."""

    def _disconnect_sse(self, name):
        s = self.stream(name, {"input": {"seconds": 10}})
        self.assertEqual(s.next_event()["event"], "run.started")
        pids = child_pids(self.d.proc.pid)
        self.assertEqual(len(pids), 1, "one agent process: %r" % pids)
        s.close()
        self.assertNoAgentLeft(pids=pids)
        return pids

    def test_client_disconnect_sse_kills_the_process(self):
        self._disconnect_sse("slow")
        res = self.assertRunResult(self.invoke("echo", {"input": "next"}), "completed")
        self.assertEqual(res["output"], "next")

    def test_client_disconnect_json_kills_the_process(self):
        body = json.dumps({"input": {"seconds": 10}}).encode()
        sock = socket.create_connection(("127.0.0.1", self.d.port), timeout=10)
        try:
            sock.sendall(("POST /v1/agents/slow/invoke HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                          "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
                          "Content-Length: %d\r\n\r\n" % (self.token, len(body))).encode() + body)
            pids = wait_until(lambda: child_pids(self.d.proc.pid), 5)
            self.assertTrue(pids, "the call started no agent process")
            time.sleep(0.3)  # running its call
        finally:
            sock.close()
        self.assertNoAgentLeft(pids=pids)
        res = self.assertRunResult(self.invoke("echo", {"input": "next"}), "completed")
        self.assertEqual(res["output"], "next")

    def test_client_disconnect_kills_the_worker(self):
        name = self.install_variant(example("slow"), "slow-gone",
                                    {"invoke": {"isolation": "worker", "workers": 1}})
        old = self._disconnect_sse(name)
        res = self.assertRunResult(self.invoke(name, {"input": {"seconds": 0.1}}), "completed")
        self.assertEqual(res["output"], {"n": 1})
        now = child_pids(self.d.proc.pid)
        self.assertEqual(len(now), 1, now)
        self.assertNotIn(now[0], old, "a new worker replaced the killed one")

    def test_output_limit(self):
        name = self.install_variant(example("echo"), "echo-cap",
                                    {"sandbox": {"limits": {"output_bytes": 1024}}})
        small = self.assertRunResult(self.invoke(name, {"input": "fits"}), "completed")
        self.assertEqual(small["output"], "fits")
        words = " ".join("word%d" % i for i in range(1000))  # ~1000 events of ~100 bytes
        res = self.assertRunResult(self.invoke(name, {"input": words}), "failed")
        self.assertEqual(res["error"]["code"], "output_limit", res)
        events = self.stream(name, {"input": words}).events()
        self.assertEventStream(events, "run.failed")
        self.assertEqual(events[-1]["data"]["error"]["code"], "output_limit", events[-1])
        self.assertNoAgentLeft()

    def test_protocol_error(self):
        self.assertStatus(self.d.install(fixture("invoke-garbage")), 201)
        t = time.monotonic()
        res = self.assertRunResult(self.invoke("fx-garbage", {"input": 1}), "failed")
        self.assertEqual(res["error"]["code"], "protocol_error", res)
        self.assertIn("invalid json", res["error"]["message"].lower(), res)
        self.assertLess(time.monotonic() - t, 4, "ended at the garbage, not at its sleep 5")
        self.assertNoAgentLeft()
        self.assertRunResult(self.invoke("echo", {"input": 1}), "completed")

    def test_metrics_move(self):
        self.assertStatus(self.d.install(fixture("invoke-garbage")), 201)
        before = self.metrics()
        self.assertRunResult(self.invoke("echo", {"input": "x"}), "completed")
        self.assertRunResult(self.invoke("fx-garbage", {"input": 1}), "failed")
        self.assertError(self.invoke("echo", {"bad": 1}), 400, "bad_request")
        self.assertNoAgentLeft()
        after = self.metrics()

        def delta(name, labels=None):
            return metric(after, name, labels) - metric(before, name, labels)
        self.assertEqual(delta("agenthost_invokes_total"), 2)
        self.assertEqual(delta("agenthost_runs_total", {"status": "completed"}), 1)
        self.assertEqual(delta("agenthost_runs_total", {"status": "failed"}), 1)
        self.assertEqual(delta("agenthost_agent_ends_total", {"reason": "protocol_error"}), 1)
        self.assertEqual(delta("agenthost_spawns_total", {"result": "ok"}), 2)
        self.assertEqual(delta("agenthost_run_duration_seconds_count"), 2)
        self.assertEqual(metric(after, "agenthost_agent_processes"), 0)

    def test_sse_of_an_agent_that_dies_before_ready(self):
        # A hostile probe never says ready: the call's stream still ends with run.failed
        # carrying the end reason, numbered from 1, and closes.
        name = self.probe_agent("hostile-ptrace-sse", ["try-syscall", "ptrace"])
        events = self.stream(name, {"input": 1}).events()
        self.assertTrue(events, "no events")
        for i, ev in enumerate(events, 1):
            self.assertEqual((ev.get("id"), ev["data"].get("seq")), (str(i), i), events)
            self.assertEqual(ev.get("event"), ev["data"].get("type"), events)
        self.assertIn([ev["event"] for ev in events], (["run.failed"], ["run.started", "run.failed"]))
        self.assertEqual(events[-1]["data"]["error"]["code"], "sandbox_violation", events)
        self.assertNoAgentLeft()

    def test_end_reason_message_says_more_than_the_code(self):
        # docs/http.md: when the agent ends before answering, the code is the end reason
        # "and `message` says more".
        name = self.probe_agent("hostile-ptrace", ["try-syscall", "ptrace"])
        res = self.assertRunResult(self.invoke(name, {"input": 1}), "failed")
        self.assertEqual(res["error"]["code"], "sandbox_violation", res)
        self.assertNotEqual(res["error"]["message"], res["error"]["code"],
                            "the message only repeats the code: %r" % res)


class DoneWhen(InvokeCase):
    """Issue 4: a hostile agent from the sandbox suite invoked through the daemon fails with
    the right reason while 50 concurrent invokes of echo in another client all succeed."""

    def test_hostile_agents_fail_while_50_echo_calls_succeed(self):
        cgroup_memory = re.search(r"cgroup memory: (\w+)", self.d.log())
        self.assertIsNotNone(cgroup_memory, "the daemon did not say at start-up whether it has "
                             "a memory cgroup:\n" + self.d.log())
        hostile = {
            # agent name: (probe argv, limits, expected code)
            "hostile-ptrace": (["try-syscall", "ptrace"], {}, "sandbox_violation"),
            "hostile-membomb": (["membomb", "4096"], {"memory_mb": 64},
                                "oom" if cgroup_memory.group(1) == "yes" else "exited"),
            "hostile-spin": (["spin", "cpu"], {"cpu_seconds": 1}, "cpu_limit"),
        }
        for name, (argv, limits, _code) in hostile.items():
            self.probe_agent(name, argv, limits)

        n = 50
        echo_results = [None] * n
        hostile_results = {}
        barrier = threading.Barrier(n + len(hostile))

        def call(name, body):
            conn = http.client.HTTPConnection("127.0.0.1", self.d.port, timeout=40)
            try:
                barrier.wait(10)
                conn.request("POST", "/v1/agents/%s/invoke" % name, body=json.dumps(body),
                             headers={"Authorization": "Bearer " + self.token,
                                      "Content-Type": "application/json"})
                r = conn.getresponse()
                return r.status, r.read()
            except Exception as e:  # reported below, with the others
                return None, repr(e)
            finally:
                conn.close()

        def echo(i):
            echo_results[i] = call("echo", {"input": "call %d of many" % i})

        def bad(name):
            hostile_results[name] = call(name, {"input": None})

        threads = [threading.Thread(target=echo, args=(i,)) for i in range(n)]
        threads += [threading.Thread(target=bad, args=(name,)) for name in hostile]
        t = time.monotonic()
        for th in threads:
            th.start()
        for th in threads:
            th.join(45)
        took = time.monotonic() - t
        self.assertFalse([th for th in threads if th.is_alive()], "calls still hanging after 45 s")

        failures = []
        for i, (status, body) in enumerate(echo_results):
            try:
                res = json.loads(body)
                if status != 200 or res.get("status") != "completed" or \
                        res.get("output") != "call %d of many" % i:
                    failures.append((i, status, body[:200]))
            except (TypeError, ValueError):
                failures.append((i, status, body[:200]))
        self.assertEqual(failures, [], "%d of %d echo calls failed" % (len(failures), n))

        for name, (argv, _limits, code) in hostile.items():
            status, body = hostile_results[name]
            self.assertEqual(status, 200, "%s: %r" % (name, body))
            res = json.loads(body)
            self.assertEqual(res.get("status"), "failed", "%s: %r" % (name, res))
            self.assertEqual(res.get("error", {}).get("code"), code, "%s (%s): %r" % (name, " ".join(argv), res))
        self.assertLess(took, 30, "the whole batch took %.1f s" % took)
        self.assertNoAgentLeft(within=5)
        self.assertEqual(self.d.request("GET", "/healthz").status, 200)


if __name__ == "__main__":
    main()
