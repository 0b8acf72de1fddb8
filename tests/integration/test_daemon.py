"""The daemon's process life: start-up, --manifests, restart, clean signals, one daemon per
state folder."""

import os
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import AGENTHOSTD, DaemonTestCase, fixture, free_port, main, metric  # noqa: E402


class Signals(DaemonTestCase):

    def test_sigterm_exits_0(self):
        self.assertStatus(self.d.install(fixture("minimal")), 201)
        pid = self.d.proc.pid
        self.assertEqual(self.d.stop(expect_code=None), 0, self.d.log())
        with self.assertRaises(ProcessLookupError):
            os.kill(pid, 0)

    def test_sigint_exits_0(self):
        self.d.proc.send_signal(signal.SIGINT)
        code = self.d.proc.wait(timeout=5)
        self.d._forget()
        self.assertEqual(code, 0, self.d.log())

    def test_restart_after_sigterm_on_same_state_dir(self):
        self.d.stop()
        self.d.start()  # the state folder's lock was released
        self.assertStatus(self.d.request("GET", "/healthz"), 200)


class SignalDuringInstall(DaemonTestCase):

    def test_sigterm_during_install_exits_0_and_leaves_all_or_nothing(self):
        src = self.write_agent("slow", {
            "manifest_version": 1, "name": "fx-slow", "version": "1.0.0", "description": "slow",
            "entrypoint": ["./run.sh"],
            "install": {"command": ["/bin/sh", "-c", "sleep 1; echo done > built.txt"]}})
        import threading
        box = {}
        t = threading.Thread(target=lambda: box.update(r=self._try_install(src)), daemon=True)
        t.start()
        time.sleep(0.3)
        self.assertEqual(self.d.stop(expect_code=None), 0, self.d.log())
        t.join(10)
        self.d.start()
        r = self.d.admin("GET", "/v1/agents/fx-slow")
        if r.status == 200:
            with open(os.path.join(self.d.agent_dir("fx-slow", "1.0.0"), "built.txt")) as f:
                self.assertEqual(f.read(), "done\n")
        else:
            self.assertError(r, 404, "not_found")
            self.assertFalse(os.path.lexists(self.d.agent_dir("fx-slow")), "half an install left behind")
            self.assertStatus(self.d.install(src), 201)

    def _try_install(self, src):
        try:
            return self.d.install(src)
        except OSError as e:
            return e


class StateDirLock(DaemonTestCase):

    def test_second_daemon_on_same_state_dir_is_refused(self):
        port = free_port()
        try:
            p = subprocess.run([AGENTHOSTD, "--listen", "127.0.0.1:%d" % port, "--state-dir", self.d.state_dir],
                               stdin=subprocess.DEVNULL, capture_output=True, timeout=10, cwd=self.tmp)
        except subprocess.TimeoutExpired:
            self.fail("a second daemon on the same state folder kept running (not refused)")
        self.assertNotEqual(p.returncode, 0, "second daemon exited 0")
        err = (p.stderr + p.stdout).decode("utf-8", "replace")
        self.assertTrue(err.strip(), "second daemon refused without a message")
        low = err.lower()
        self.assertTrue(self.d.state_dir in err or "already" in low or "lock" in low or "in use" in low,
                        "message does not say why: %r" % err)
        # the first daemon is unharmed
        self.assertStatus(self.d.request("GET", "/healthz"), 200)
        self.assertStatus(self.d.admin("GET", "/v1/agents"), 200)
        with open(self.d.token_path) as f:
            self.assertEqual(f.read().strip(), self.d.admin_token)


class Restart(DaemonTestCase):

    def test_agents_persist_across_restart(self):
        self.assertStatus(self.d.install(fixture("minimal")), 201)
        self.assertStatus(self.d.install(fixture("minimal-v2")), 201)
        a = self.assertStatus(self.d.admin("GET", "/v1/agents/fx-minimal?version=1.0.0"), 200).json()
        self.d.restart()
        b = self.assertStatus(self.d.admin("GET", "/v1/agents/fx-minimal?version=1.0.0"), 200).json()
        self.assertEqual(b, a)
        cur = self.d.admin("GET", "/v1/agents/fx-minimal").json()
        self.assertEqual((cur["version"], sorted(cur["versions"])), ("2.0.0", ["1.0.0", "2.0.0"]))

    def test_sigkill_keeps_committed_installs(self):
        self.assertStatus(self.d.install(fixture("install-ok")), 201)
        self.d.kill()
        self.d.start()
        self.assertEqual([x["name"] for x in self.d.admin("GET", "/v1/agents").json()["agents"]],
                         ["fx-install-ok"])


class ManifestsDir(DaemonTestCase):
    start_daemon = False

    def manifests_dir(self, *names):
        root = os.path.join(self.tmp, "manifests")
        os.makedirs(root, exist_ok=True)
        for n in names:
            shutil.copytree(fixture(n), os.path.join(root, n))
        return root

    def listed(self, d):
        return {a["name"]: a for a in self.assertStatus(d.admin("GET", "/v1/agents"), 200).json()["agents"]}

    def test_installs_every_folder_at_startup(self):
        d = self.new_daemon(manifests=self.manifests_dir("minimal", "install-ok")).start()
        agents = self.listed(d)
        self.assertEqual(sorted(agents), ["fx-install-ok", "fx-minimal"])
        with open(os.path.join(d.agent_dir("fx-install-ok", "1.0.0"), "built.txt")) as f:
            self.assertEqual(f.read(), "built\n")
        m = d.request("GET", "/metrics").body.decode()
        self.assertEqual(metric(m, "agenthost_agents_installed"), 2, m)

    def test_restart_with_same_dir_does_not_duplicate_or_fail(self):
        d = self.new_daemon(manifests=self.manifests_dir("minimal", "install-ok")).start()
        first = self.listed(d)
        d.restart()
        again = self.listed(d)
        self.assertEqual(sorted(again), ["fx-install-ok", "fx-minimal"])
        for name in again:
            self.assertEqual(again[name]["versions"], ["1.0.0"], again[name])
            self.assertEqual(again[name]["installed_at"], first[name]["installed_at"],
                             "restart re-installed %s" % name)
        self.assertEqual(sorted(os.listdir(d.agent_dir("fx-minimal"))), ["1.0.0"])

    def test_restart_with_a_new_version_updates(self):
        root = self.manifests_dir("minimal")
        d = self.new_daemon(manifests=root).start()
        self.assertEqual(self.listed(d)["fx-minimal"]["version"], "1.0.0")
        d.stop()
        shutil.rmtree(os.path.join(root, "minimal"))
        shutil.copytree(fixture("minimal-v2"), os.path.join(root, "minimal"))
        d.start()
        a = self.listed(d)["fx-minimal"]
        self.assertEqual(a["version"], "2.0.0")
        self.assertEqual(sorted(a["versions"]), ["1.0.0", "2.0.0"])

    def test_empty_manifests_dir_is_fine(self):
        d = self.new_daemon(manifests=self.manifests_dir()).start()
        self.assertEqual(self.listed(d), {})

    def test_manifests_and_api_installs_coexist(self):
        d = self.new_daemon(manifests=self.manifests_dir("minimal")).start()
        self.assertStatus(d.install(fixture("install-ok")), 201)
        d.restart()
        self.assertEqual(sorted(self.listed(d)), ["fx-install-ok", "fx-minimal"])


class StartupErrors(DaemonTestCase):
    start_daemon = False

    def run_daemon(self, *args):
        try:
            return subprocess.run([AGENTHOSTD] + list(args), stdin=subprocess.DEVNULL, capture_output=True,
                                  timeout=10, cwd=self.tmp)
        except subprocess.TimeoutExpired:
            self.fail("agenthostd %s kept running instead of refusing" % (args,))

    def test_bad_listen_address_is_refused(self):
        p = self.run_daemon("--listen", "not-an-address", "--state-dir", os.path.join(self.tmp, "s"))
        self.assertNotEqual(p.returncode, 0)
        self.assertTrue((p.stderr + p.stdout).strip(), "refused without a message")

    def test_port_in_use_is_refused(self):
        import socket
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", 0))
            s.listen(1)
            port = s.getsockname()[1]
            start = time.monotonic()
            p = self.run_daemon("--listen", "127.0.0.1:%d" % port, "--state-dir", os.path.join(self.tmp, "s"))
        self.assertNotEqual(p.returncode, 0, "daemon started on a port already in use")
        self.assertIn(str(port), (p.stderr + p.stdout).decode("utf-8", "replace"))
        self.assertLess(time.monotonic() - start, 10)

    def test_unknown_option_is_refused(self):
        p = self.run_daemon("--no-such-option")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("no-such-option", (p.stderr + p.stdout).decode("utf-8", "replace"))


if __name__ == "__main__":
    main()
