"""agentctl against the real daemon: every command of issue 2, tables and --json, exit
statuses (0 ok, 1 daemon or network error, 2 usage) and one-line errors (DESIGN §7)."""

import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import DaemonTestCase, fixture, free_port, main  # noqa: E402


def agents_of(doc):
    """`agents --json` may print {"agents": [...]} (the HTTP body) or the bare list."""
    if isinstance(doc, dict):
        return doc["agents"]
    return doc


def tokens_of(doc):
    if isinstance(doc, dict):
        return doc["tokens"]
    return doc


def row_with(text, *words):
    """The first line of a table that contains every word, or None."""
    for line in text.splitlines():
        cells = line.split()
        if all(w in cells for w in words):
            return line
    return None


class DoneWhen(DaemonTestCase):
    """Issue 2's "Done when", against this test's daemon and state folder."""

    def test_install_then_curl_lists_it(self):
        self.assertCtlOk(self.ctl("install", fixture("minimal")))
        cmd = 'curl -s 127.0.0.1:%d/v1/agents -H "Authorization: Bearer $(cat %s/admin.token)"' % (
            self.d.port, self.d.state_dir)
        p = subprocess.run(["/bin/sh", "-c", cmd], capture_output=True, timeout=15)
        self.assertEqual(p.returncode, 0, p)
        import json
        doc = json.loads(p.stdout)
        self.assertEqual([(a["name"], a["version"]) for a in doc["agents"]], [("fx-minimal", "1.0.0")])

    def test_install_agents_agent_json_uninstall(self):
        self.assertCtlOk(self.ctl("install", fixture("install-ok")))
        out = self.assertCtlOk(self.ctl("agents")).out
        self.assertIsNotNone(row_with(out, "fx-install-ok", "1.0.0"), "agents table lacks the agent:\n" + out)
        one = self.assertCtlOk(self.ctl("agent", "fx-install-ok", "--json")).json()
        self.assertEqual((one["name"], one["version"]), ("fx-install-ok", "1.0.0"))
        self.assertEqual(one["manifest"]["install"]["command"], ["/bin/sh", "-c", "echo built > built.txt"])
        self.assertEqual(one, self.d.admin("GET", "/v1/agents/fx-install-ok").json())
        self.assertCtlOk(self.ctl("uninstall", "fx-install-ok"))
        self.assertEqual(self.d.admin("GET", "/v1/agents").json(), {"agents": []})
        self.assertFalse(os.path.lexists(self.d.agent_dir("fx-install-ok")))


class Agents(DaemonTestCase):

    def test_agents_table_has_header_and_rows(self):
        self.assertCtlOk(self.ctl("install", fixture("minimal")))
        self.assertCtlOk(self.ctl("install", fixture("minimal-v2")))
        self.assertCtlOk(self.ctl("install", fixture("install-ok")))
        out = self.assertCtlOk(self.ctl("agents")).out
        lines = [l for l in out.splitlines() if l.strip()]
        self.assertIn("NAME", lines[0].upper(), "first line is not a header:\n" + out)
        self.assertIn("VERSION", lines[0].upper(), out)
        self.assertEqual(len(lines), 3, "header + one row per agent name:\n" + out)
        self.assertIsNotNone(row_with(out, "fx-minimal", "2.0.0"), out)
        self.assertIsNotNone(row_with(out, "fx-install-ok", "1.0.0"), out)

    def test_agents_json_matches_the_api(self):
        self.assertCtlOk(self.ctl("install", fixture("minimal")))
        self.assertCtlOk(self.ctl("install", fixture("minimal-v2")))
        got = agents_of(self.assertCtlOk(self.ctl("--json", "agents")).json())
        self.assertEqual(got, self.d.admin("GET", "/v1/agents").json()["agents"])
        self.assertEqual(sorted(got[0]["versions"]), ["1.0.0", "2.0.0"])

    def test_agents_json_empty(self):
        got = agents_of(self.assertCtlOk(self.ctl("agents", "--json")).json())
        self.assertEqual(got, [])

    def test_agent_human_output(self):
        self.assertCtlOk(self.ctl("install", fixture("minimal")))
        out = self.assertCtlOk(self.ctl("agent", "fx-minimal")).out
        for word in ("fx-minimal", "1.0.0", "Minimal valid fixture agent"):
            self.assertIn(word, out)

    def test_agent_unknown_is_exit_1(self):
        self.assertCtlError(self.ctl("agent", "nope"), 1, "nope")
        self.assertCtlError(self.ctl("agent", "nope", "--json"), 1, "nope")

    def test_install_json_prints_the_agent(self):
        got = self.assertCtlOk(self.ctl("--json", "install", fixture("minimal"))).json()
        self.assertEqual(got, self.d.admin("GET", "/v1/agents/fx-minimal").json())

    def test_install_relative_path_and_agent_json(self):
        # agentctl makes the path absolute before sending it
        fixtures_dir = os.path.dirname(os.path.dirname(fixture("minimal")))
        res = self.ctl("install", os.path.join("agents", "minimal"), cwd=fixtures_dir)
        self.assertCtlOk(res)
        self.assertStatus(self.d.admin("GET", "/v1/agents/fx-minimal"), 200)
        res = self.ctl("install", "agent.json", cwd=fixture("install-ok"))
        self.assertCtlOk(res)
        self.assertStatus(self.d.admin("GET", "/v1/agents/fx-install-ok"), 200)

    def test_install_errors_are_one_line_exit_1(self):
        self.assertCtlOk(self.ctl("install", fixture("minimal")))
        self.assertCtlError(self.ctl("install", fixture("minimal")), 1, "fx-minimal")
        self.assertCtlError(self.ctl("install", fixture("bad-unknown-field")), 1, "entrypiont_typo")
        self.assertCtlError(self.ctl("install", fixture("install-fail")), 1, "fixture-install-broke")
        self.assertCtlError(self.ctl("install", os.path.join(self.tmp, "missing")), 1)
        names = [a["name"] for a in self.d.admin("GET", "/v1/agents").json()["agents"]]
        self.assertEqual(names, ["fx-minimal"])

    def test_uninstall_unknown_and_force(self):
        self.assertCtlError(self.ctl("uninstall", "nope"), 1, "nope")
        self.assertCtlOk(self.ctl("install", fixture("minimal")))
        self.assertCtlOk(self.ctl("uninstall", "fx-minimal", "--force"))
        self.assertStatus(self.d.admin("GET", "/v1/agents/fx-minimal"), 404)

    def test_name_with_slash_cannot_reach_another_route(self):
        # agentctl escapes the name (host/ctl/url.h) so that "../tokens/ID" names an agent,
        # not the token route: the token must survive and the command must fail.
        self.assertCtlOk(self.ctl("install", fixture("minimal")))
        t = self.d.admin("POST", "/v1/tokens", {"name": "victim"}).json()
        r = self.ctl("uninstall", "../tokens")
        self.assertEqual(r.code, 1, r)
        r = self.ctl("uninstall", "../tokens/" + t["id"])
        self.assertEqual(r.code, 1, "agentctl uninstall ../tokens/ID succeeded: %r" % r)
        self.assertStatus(self.d.request("GET", "/v1/agents", token=t["token"]), 200)
        r = self.ctl("agent", "../tokens")
        self.assertEqual(r.code, 1, r)
        self.assertNotIn("tokens", r.out)
        self.assertEqual(len(self.d.admin("GET", "/v1/tokens").json()["tokens"]), 2)
        self.assertStatus(self.d.admin("GET", "/v1/agents/fx-minimal"), 200)


class Tokens(DaemonTestCase):

    def test_token_create_list_revoke(self):
        created = self.assertCtlOk(self.ctl("--json", "token", "create", "ci-bot")).json()
        self.assertTrue(created["token"].startswith("aht_"), created)
        self.assertEqual(created["name"], "ci-bot")
        tid, secret = created["id"], created["token"]
        # the secret works
        self.assertStatus(self.d.request("GET", "/v1/agents", token=secret), 200)

        table = self.assertCtlOk(self.ctl("token", "list"))
        self.assertIsNotNone(row_with(table.out, tid, "ci-bot"), table.out)
        self.assertNotIn(secret, table.out + table.err)
        self.assertNotIn(self.d.admin_token, table.out + table.err)
        listed = tokens_of(self.assertCtlOk(self.ctl("token", "list", "--json")).json())
        self.assertIn(tid, [t["id"] for t in listed])
        self.assertNotIn(secret, repr(listed))

        self.assertCtlOk(self.ctl("token", "revoke", tid))
        self.assertError(self.d.request("GET", "/v1/agents", token=secret), 401, "unauthorized")
        self.assertCtlError(self.ctl("token", "revoke", tid), 1)

    def test_token_create_human_output_shows_the_secret(self):
        res = self.assertCtlOk(self.ctl("token", "create", "human"))
        secret = [w for w in res.out.split() if w.startswith("aht_")]
        self.assertEqual(len(secret), 1, "the secret must be printed once: %r" % res)
        self.assertStatus(self.d.request("GET", "/v1/agents", token=secret[0]), 200)

    def test_admin_token_cannot_be_revoked(self):
        listed = tokens_of(self.assertCtlOk(self.ctl("token", "list", "--json")).json())
        admin_id = [t["id"] for t in listed if t["admin"]][0]
        self.assertCtlError(self.ctl("token", "revoke", admin_id), 1)
        self.assertStatus(self.d.admin("GET", "/v1/tokens"), 200)

    def test_client_token_via_option_and_env(self):
        secret = self.d.admin("POST", "/v1/tokens", {"name": "c"}).json()["token"]
        self.assertCtlOk(self.ctl("install", fixture("minimal")))
        # --token wins over the state folder's admin token
        self.assertCtlOk(self.ctl("agents", token=secret))
        self.assertCtlError(self.ctl("install", fixture("install-ok"), token=secret), 1)
        self.assertCtlError(self.ctl("token", "list", token=secret), 1)
        # AGENTHOST_TOKEN and AGENTHOST_URL, no --url, no --state-dir
        res = self.ctl("agents", "--json", url=False, state_dir=False,
                       env={"AGENTHOST_TOKEN": secret, "AGENTHOST_URL": self.d.url})
        self.assertEqual([a["name"] for a in agents_of(self.assertCtlOk(res).json())], ["fx-minimal"])

    def test_wrong_token_is_exit_1(self):
        self.assertCtlError(self.ctl("agents", token="aht_wrong"), 1)


class StatusAndErrors(DaemonTestCase):

    def test_status(self):
        res = self.assertCtlOk(self.ctl("status"))
        self.assertIn("ok", res.out.lower())
        doc = self.assertCtlOk(self.ctl("status", "--json")).json()
        self.assertIsInstance(doc, dict)

    def test_daemon_down_is_exit_1_one_line(self):
        url = "http://127.0.0.1:%d" % free_port()
        self.assertCtlError(self.ctl("agents", url=url), 1)
        self.assertCtlError(self.ctl("status", url=url), 1)

    def test_usage_errors_are_exit_2(self):
        self.assertCtlError(self.ctl("instal", fixture("minimal")), 2, "instal")
        self.assertCtlError(self.ctl("install"), 2)
        self.assertCtlError(self.ctl("agent"), 2)
        self.assertCtlError(self.ctl("agents", "extra", "args"), 2)
        self.assertCtlError(self.ctl("agents", "--no-such-option"), 2, "no-such-option")
        self.assertCtlError(self.ctl("token", "frobnicate"), 2)
        self.assertEqual(self.ctl(url=False, state_dir=False).code, 2)
        # nothing reached the daemon
        self.assertEqual(self.d.admin("GET", "/v1/agents").json(), {"agents": []})

    def test_help(self):
        res = self.assertCtlOk(self.ctl("--help", url=False, state_dir=False))
        for cmd in ("install", "uninstall", "agents", "agent", "token", "status"):
            self.assertIn(cmd, res.out)
        for cmd in (["install"], ["uninstall"], ["agents"], ["token", "create"], ["status"]):
            res = self.assertCtlOk(self.ctl(*cmd, "--help", url=False, state_dir=False))
            self.assertIn(cmd[-1], res.out)


if __name__ == "__main__":
    main()
