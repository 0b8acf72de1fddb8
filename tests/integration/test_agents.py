"""Install, list, show and uninstall agents over HTTP against the real daemon
(docs/http.md: GET/POST /v1/agents, GET/DELETE /v1/agents/{name})."""

import os
import re
import stat
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import RFC3339_MS, DaemonTestCase, fixture, main, metric, state_snapshot  # noqa: E402

SUMMARY_KEYS = {"name", "version", "description", "modes", "installed_at", "versions"}
DETAIL_KEYS = SUMMARY_KEYS | {"path", "digest", "manifest"}


class InstallListShowUninstall(DaemonTestCase):

    def test_empty_registry_lists_nothing(self):
        r = self.assertStatus(self.d.admin("GET", "/v1/agents"), 200)
        self.assertEqual(r.json(), {"agents": []})
        self.assertTrue((r.header("Content-Type") or "").startswith("application/json"), r.headers)

    def test_install_answers_201_with_the_agent(self):
        r = self.assertStatus(self.d.install(fixture("minimal")), 201)
        a = r.json()
        self.assertTrue(DETAIL_KEYS <= set(a), "missing keys %s in %r" % (DETAIL_KEYS - set(a), a))
        self.assertEqual(a["name"], "fx-minimal")
        self.assertEqual(a["version"], "1.0.0")
        self.assertEqual(a["description"], "Minimal valid fixture agent")
        self.assertEqual(a["modes"], ["session", "invoke"])  # the default: both
        self.assertEqual(a["versions"], ["1.0.0"])
        self.assertRegex(a["installed_at"], RFC3339_MS)
        self.assertRegex(a["digest"], r"^[0-9a-f]{64}$")
        self.assertEqual(os.path.realpath(a["path"]),
                         os.path.realpath(self.d.agent_dir("fx-minimal", "1.0.0")))
        m = a["manifest"]
        self.assertEqual(m["name"], "fx-minimal")
        self.assertEqual(m["entrypoint"], ["./run.sh"])
        # normalized: the defaults are filled in
        for key in ("modes", "sandbox", "session", "invoke"):
            self.assertIn(key, m, "normalized manifest lacks default %r: %r" % (key, m))
        self.assertIn("limits", m["sandbox"], m)
        self.assertIn("memory_mb", m["sandbox"]["limits"], m)

    def test_list_and_show_after_install(self):
        installed = self.assertStatus(self.d.install(fixture("minimal")), 201).json()
        r = self.assertStatus(self.d.admin("GET", "/v1/agents"), 200)
        agents = r.json()["agents"]
        self.assertEqual(len(agents), 1, agents)
        a = agents[0]
        self.assertTrue(SUMMARY_KEYS <= set(a), a)
        self.assertEqual((a["name"], a["version"], a["versions"]), ("fx-minimal", "1.0.0", ["1.0.0"]))
        self.assertEqual(a["installed_at"], installed["installed_at"])

        one = self.assertStatus(self.d.admin("GET", "/v1/agents/fx-minimal"), 200).json()
        self.assertEqual(one, installed)

    def test_list_is_sorted_by_name(self):
        self.assertStatus(self.d.install(fixture("minimal")), 201)        # fx-minimal
        self.assertStatus(self.d.install(fixture("install-ok")), 201)     # fx-install-ok
        a = self.write_agent("aaa", {"manifest_version": 1, "name": "fx-aaa", "version": "0.1.0",
                                     "description": "sorts first", "entrypoint": ["./run.sh"]})
        self.assertStatus(self.d.install(a), 201)
        names = [x["name"] for x in self.d.admin("GET", "/v1/agents").json()["agents"]]
        self.assertEqual(names, ["fx-aaa", "fx-install-ok", "fx-minimal"])

    def test_listing_and_showing_never_start_the_agent(self):
        # DESIGN §2: discovery is offline. The entrypoint would leave a marker if run.
        marker = os.path.join(self.tmp, "agent-was-started")
        p = self.write_agent("offline", {"manifest_version": 1, "name": "fx-offline", "version": "1.0.0",
                                         "description": "marks its start", "entrypoint": ["./run.sh"]},
                             files={"run.sh": "#!/bin/sh\ntouch %s\nexec cat\n" % marker})
        self.assertStatus(self.d.install(p), 201)
        self.assertStatus(self.d.admin("GET", "/v1/agents"), 200)
        self.assertStatus(self.d.admin("GET", "/v1/agents/fx-offline"), 200)
        self.d.restart()
        self.assertStatus(self.d.admin("GET", "/v1/agents"), 200)
        time.sleep(0.2)
        self.assertFalse(os.path.exists(marker), "listing or installing started the agent")

    def test_install_from_agent_json_path(self):
        r = self.assertStatus(self.d.install(os.path.join(fixture("minimal"), "agent.json")), 201)
        self.assertEqual(r.json()["name"], "fx-minimal")
        self.assertTrue(os.path.isfile(os.path.join(self.d.agent_dir("fx-minimal", "1.0.0"), "run.sh")))

    def test_show_unknown_agent_is_404(self):
        self.assertError(self.d.admin("GET", "/v1/agents/nope"), 404, "not_found", "nope")

    def test_uninstall_removes_agent_and_folder(self):
        self.assertStatus(self.d.install(fixture("install-ok")), 201)
        self.assertTrue(os.path.isdir(self.d.agent_dir("fx-install-ok", "1.0.0")))
        r = self.assertStatus(self.d.admin("DELETE", "/v1/agents/fx-install-ok"), 204)
        self.assertEqual(r.body, b"")
        self.assertEqual(self.d.admin("GET", "/v1/agents").json(), {"agents": []})
        self.assertError(self.d.admin("GET", "/v1/agents/fx-install-ok"), 404, "not_found")
        self.assertFalse(os.path.lexists(self.d.agent_dir("fx-install-ok")),
                         "uninstall left %s" % self.d.agent_dir("fx-install-ok"))
        # and it can be installed again
        self.assertStatus(self.d.install(fixture("install-ok")), 201)

    def test_uninstall_unknown_is_404(self):
        self.assertError(self.d.admin("DELETE", "/v1/agents/nope"), 404, "not_found", "nope")

    def test_uninstall_force_without_sessions(self):
        self.assertStatus(self.d.install(fixture("minimal")), 201)
        self.assertStatus(self.d.admin("DELETE", "/v1/agents/fx-minimal?force=true"), 204)
        self.assertStatus(self.d.admin("GET", "/v1/agents/fx-minimal"), 404)


class Versions(DaemonTestCase):

    def test_new_version_becomes_current_and_both_are_listed(self):
        self.assertStatus(self.d.install(fixture("minimal")), 201)
        r = self.assertStatus(self.d.install(fixture("minimal-v2")), 201).json()
        self.assertEqual(r["version"], "2.0.0")
        self.assertEqual(sorted(r["versions"]), ["1.0.0", "2.0.0"])

        agents = self.d.admin("GET", "/v1/agents").json()["agents"]
        self.assertEqual(len(agents), 1, "one entry per name: %r" % agents)
        self.assertEqual(agents[0]["version"], "2.0.0")
        self.assertEqual(sorted(agents[0]["versions"]), ["1.0.0", "2.0.0"])

        cur = self.assertStatus(self.d.admin("GET", "/v1/agents/fx-minimal"), 200).json()
        self.assertEqual(cur["version"], "2.0.0")
        self.assertEqual(cur["description"], "Second version of fx-minimal")

        old = self.assertStatus(self.d.admin("GET", "/v1/agents/fx-minimal?version=1.0.0"), 200).json()
        self.assertEqual(old["version"], "1.0.0")
        self.assertEqual(old["description"], "Minimal valid fixture agent")
        self.assertEqual(os.path.realpath(old["path"]),
                         os.path.realpath(self.d.agent_dir("fx-minimal", "1.0.0")))
        for v in ("1.0.0", "2.0.0"):
            self.assertTrue(os.path.isdir(self.d.agent_dir("fx-minimal", v)), v)

    def test_unknown_version_is_404(self):
        self.assertStatus(self.d.install(fixture("minimal")), 201)
        self.assertError(self.d.admin("GET", "/v1/agents/fx-minimal?version=9.9.9"), 404, "not_found")

    def test_uninstall_removes_every_version(self):
        self.assertStatus(self.d.install(fixture("minimal")), 201)
        self.assertStatus(self.d.install(fixture("minimal-v2")), 201)
        self.assertStatus(self.d.admin("DELETE", "/v1/agents/fx-minimal"), 204)
        self.assertStatus(self.d.admin("GET", "/v1/agents/fx-minimal?version=1.0.0"), 404)
        self.assertFalse(os.path.lexists(self.d.agent_dir("fx-minimal")))


class InstalledCopy(DaemonTestCase):

    def test_copy_is_read_only_and_has_install_output(self):
        r = self.assertStatus(self.d.install(fixture("install-ok")), 201)
        copy = self.d.agent_dir("fx-install-ok", "1.0.0")
        self.assertTrue(os.path.isdir(copy), copy)
        with open(os.path.join(copy, "built.txt")) as f:
            self.assertEqual(f.read(), "built\n")
        self.assertTrue(os.path.isfile(os.path.join(copy, "agent.json")))
        self.assertTrue(os.path.isfile(os.path.join(copy, "run.sh")))
        self.assertTrue(os.stat(os.path.join(copy, "run.sh")).st_mode & stat.S_IXUSR,
                        "the entrypoint lost its execute bit in the copy")
        # the install ran in the copy, not in the source folder
        self.assertFalse(os.path.exists(os.path.join(fixture("install-ok"), "built.txt")),
                         "install.command wrote into the source folder")
        writable = []
        for dirpath, dirnames, filenames in os.walk(copy):
            for p in [dirpath] + [os.path.join(dirpath, f) for f in filenames]:
                if os.lstat(p).st_mode & 0o222:
                    writable.append("%s %o" % (p, os.lstat(p).st_mode & 0o777))
        self.assertEqual(writable, [], "installed copy must be read-only")
        self.assertEqual(os.path.realpath(r.json()["path"]), os.path.realpath(copy))

    def test_digest_depends_on_the_files(self):
        a = self.assertStatus(self.d.install(fixture("minimal")), 201).json()
        b = self.assertStatus(self.d.install(fixture("install-ok")), 201).json()
        self.assertNotEqual(a["digest"], b["digest"])


class InstallFailure(DaemonTestCase):

    def test_failing_install_command_leaves_nothing(self):
        before = state_snapshot(self.d)
        r = self.d.install(fixture("install-fail"))
        msg = self.assertError(r, 422, "invalid_input")
        self.assertIn("3", msg, "message must have the exit status: %r" % msg)
        self.assertIn("fixture-install-broke", msg, "message must have the output's tail: %r" % msg)
        self.assertNoTrace(self.d, before, "fx-install-fail")
        self.assertFalse(os.path.lexists(self.d.agent_dir("fx-install-fail")))

    def test_failed_install_keeps_other_agents(self):
        self.assertStatus(self.d.install(fixture("minimal")), 201)
        self.assertStatus(self.d.install(fixture("install-fail")), 422)
        names = [a["name"] for a in self.d.admin("GET", "/v1/agents").json()["agents"]]
        self.assertEqual(names, ["fx-minimal"])

    def test_failed_new_version_keeps_the_current_one(self):
        self.assertStatus(self.d.install(fixture("minimal")), 201)
        broken = self.write_agent("v3", {
            "manifest_version": 1, "name": "fx-minimal", "version": "3.0.0",
            "description": "broken build", "entrypoint": ["./run.sh"],
            "install": {"command": ["/bin/sh", "-c", "exit 7"]}})
        before = state_snapshot(self.d)
        self.assertError(self.d.install(broken), 422, "invalid_input", "7")
        a = self.assertStatus(self.d.admin("GET", "/v1/agents/fx-minimal"), 200).json()
        self.assertEqual((a["version"], a["versions"]), ("1.0.0", ["1.0.0"]))
        self.assertFalse(os.path.lexists(self.d.agent_dir("fx-minimal", "3.0.0")))
        self.assertEqual(state_snapshot(self.d) - before, set())


class Concurrency(DaemonTestCase):
    """Installs run off the event loop (worker threads): the daemon keeps answering, and
    racing installs of one version give exactly one winner."""

    def slow_agent(self, name, seconds):
        return self.write_agent(name, {
            "manifest_version": 1, "name": name, "version": "1.0.0", "description": "slow build",
            "entrypoint": ["./run.sh"],
            "install": {"command": ["/bin/sh", "-c", "sleep %s; echo done > built.txt" % seconds]}})

    def in_thread(self, fn, *args):
        box = {}

        def run():
            try:
                box["result"] = fn(*args)
            except BaseException as e:  # reported by the caller
                box["error"] = e
        t = threading.Thread(target=run, daemon=True)
        t.start()
        return t, box

    def test_slow_install_does_not_block_other_requests(self):
        # the install command takes 3 s; a blocked event loop would hold these >= 2.5 s
        src = self.slow_agent("fx-slow", 3)
        t, box = self.in_thread(self.d.install, src)
        time.sleep(0.5)  # the install command is running now
        self.assertTrue(t.is_alive(), "the slow install answered early: %r" % box)
        for method, path, token in (("GET", "/healthz", None), ("GET", "/metrics", None),
                                    ("GET", "/v1/agents", self.d.admin_token)):
            start = time.monotonic()
            self.assertStatus(self.d.request(method, path, token=token, timeout=10), 200)
            self.assertLess(time.monotonic() - start, 1.5, "%s %s waited for the install" % (method, path))
        t.join(15)
        self.assertFalse(t.is_alive(), "install did not answer")
        self.assertNotIn("error", box, box)
        self.assertStatus(box["result"], 201)

    def test_racing_installs_of_one_version_give_one_201_and_one_409(self):
        src = self.slow_agent("fx-race", 0.5)
        runs = [self.in_thread(self.d.install, src) for _ in range(3)]
        for t, _ in runs:
            t.join(15)
            self.assertFalse(t.is_alive())
        results = [box.get("result") or box.get("error") for _, box in runs]
        statuses = sorted(getattr(r, "status", r) for r in results)
        self.assertEqual(statuses, [201, 409, 409], results)
        for r in results:
            if r.status == 409:
                self.assertError(r, 409, "conflict")
        a = self.d.admin("GET", "/v1/agents/fx-race").json()
        self.assertEqual(a["versions"], ["1.0.0"])
        self.assertEqual(os.listdir(self.d.agent_dir("fx-race")), ["1.0.0"])

    def test_parallel_installs_of_different_agents_all_succeed(self):
        srcs = [self.slow_agent("fx-par-%d" % i, 0.3) for i in range(4)]
        runs = [self.in_thread(self.d.install, s) for s in srcs]
        for t, box in runs:
            t.join(15)
            self.assertNotIn("error", box, box)
            self.assertStatus(box["result"], 201)
        names = [a["name"] for a in self.d.admin("GET", "/v1/agents").json()["agents"]]
        self.assertEqual(names, ["fx-par-%d" % i for i in range(4)])


class Metrics(DaemonTestCase):

    def test_installs_total_counts_ok_and_failed(self):
        def scrape():
            r = self.assertStatus(self.d.request("GET", "/metrics"), 200)
            return r.body.decode()
        t0 = scrape()
        self.assertStatus(self.d.install(fixture("minimal")), 201)
        t1 = scrape()
        self.assertEqual(metric(t1, "agenthost_installs_total", {"result": "ok"}),
                         metric(t0, "agenthost_installs_total", {"result": "ok"}) + 1, t1)
        self.assertEqual(metric(t1, "agenthost_agents_installed"), 1, t1)
        self.assertEqual(metric(t1, "agenthost_agent_versions_installed"), 1, t1)
        self.assertStatus(self.d.install(fixture("minimal-v2")), 201)
        self.assertStatus(self.d.install(fixture("install-fail")), 422)
        t2 = scrape()
        self.assertEqual(metric(t2, "agenthost_installs_total", {"result": "ok"}),
                         metric(t0, "agenthost_installs_total", {"result": "ok"}) + 2, t2)
        self.assertEqual(metric(t2, "agenthost_installs_total", {"result": "failed"}),
                         metric(t0, "agenthost_installs_total", {"result": "failed"}) + 1, t2)
        self.assertEqual(metric(t2, "agenthost_agents_installed"), 1, t2)
        self.assertEqual(metric(t2, "agenthost_agent_versions_installed"), 2, t2)
        self.assertTrue(re.search(r"(?m)^# TYPE agenthost_installs_total counter$", t2), t2)

    def test_tokens_and_requests_are_counted(self):
        t0 = self.d.request("GET", "/metrics").body.decode()
        self.assertEqual(metric(t0, "agenthost_tokens"), 1, t0)  # the admin token
        self.assertStatus(self.d.admin("POST", "/v1/tokens", {"name": "m"}), 201)
        self.assertStatus(self.d.request("GET", "/v1/agents"), 401)
        self.assertStatus(self.d.request("GET", "/v1/agents"), 401)
        t1 = self.d.request("GET", "/metrics").body.decode()
        self.assertEqual(metric(t1, "agenthost_tokens"), 2, t1)
        self.assertEqual(metric(t1, "agenthost_http_requests_total", {"status": "401"}),
                         metric(t0, "agenthost_http_requests_total", {"status": "401"}) + 2, t1)
        self.assertGreaterEqual(metric(t1, "agenthost_uptime_seconds"), 0)
        self.assertIn("agenthost_uptime_seconds", t1)


if __name__ == "__main__":
    main()
