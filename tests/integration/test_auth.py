"""Bearer-token auth and token management against the real daemon (docs/http.md:
Auth, /v1/tokens)."""

import os
import stat
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import RFC3339_MS, DaemonTestCase, fixture, main  # noqa: E402


class AdminTokenFile(DaemonTestCase):

    def test_admin_token_file_is_0600_and_one_line(self):
        st = os.stat(self.d.token_path)
        self.assertTrue(stat.S_ISREG(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600, "admin.token mode %o" % stat.S_IMODE(st.st_mode))
        with open(self.d.token_path) as f:
            text = f.read()
        lines = text.splitlines()
        self.assertEqual(len(lines), 1, "admin.token must be one line: %r" % text)
        self.assertGreaterEqual(len(lines[0].strip()), 16, "admin token too short to be a secret")

    def test_admin_token_survives_restart(self):
        tok = self.d.admin_token
        self.d.restart()
        self.assertEqual(self.d.admin_token, tok)
        self.assertStatus(self.d.request("GET", "/v1/agents", token=tok), 200)


class Unauthorized(DaemonTestCase):

    def test_no_header_is_401(self):
        self.assertError(self.d.request("GET", "/v1/agents"), 401, "unauthorized")
        self.assertError(self.d.request("GET", "/v1/tokens"), 401, "unauthorized")
        self.assertError(self.d.request("POST", "/v1/agents", {"path": fixture("minimal")}), 401, "unauthorized")

    def test_wrong_token_is_401(self):
        self.assertError(self.d.request("GET", "/v1/agents", token="aht_not-a-real-token"), 401, "unauthorized")
        self.assertError(self.d.request("GET", "/v1/agents", token=self.d.admin_token + "x"), 401, "unauthorized")

    def test_malformed_authorization_is_401(self):
        tok = self.d.admin_token
        for value in ("Basic " + tok, tok, "Bearer", "Bearer "):
            r = self.d.request("GET", "/v1/agents", headers={"Authorization": value})
            self.assertError(r, 401, "unauthorized")

    def test_unauthenticated_install_does_nothing(self):
        self.assertStatus(self.d.request("POST", "/v1/agents", {"path": fixture("minimal")},
                                         token="wrong"), 401)
        self.assertEqual(self.d.admin("GET", "/v1/agents").json(), {"agents": []})

    def test_healthz_and_metrics_need_no_token(self):
        r = self.assertStatus(self.d.request("GET", "/healthz"), 200)
        body = r.json()
        self.assertEqual(body.get("status"), "ok", body)
        self.assertIsInstance(body.get("version"), str, body)
        self.assertTrue(body["version"], body)
        m = self.assertStatus(self.d.request("GET", "/metrics"), 200)
        self.assertTrue((m.header("Content-Type") or "").startswith("text/plain"), m.headers)
        self.assertIn(b"agenthost_", m.body)


class ClientTokens(DaemonTestCase):

    def create_token(self, name="ci-bot"):
        r = self.assertStatus(self.d.admin("POST", "/v1/tokens", {"name": name}), 201)
        t = r.json()
        self.assertEqual(set(t), {"id", "name", "admin", "created_at", "token"}, t)
        self.assertRegex(t["id"], r"^t_")
        self.assertTrue(t["token"].startswith("aht_"), t)
        self.assertEqual(t["name"], name)
        self.assertIs(t["admin"], False)
        self.assertRegex(t["created_at"], RFC3339_MS)
        return t

    def test_client_token_can_list_and_show_agents(self):
        self.assertStatus(self.d.install(fixture("minimal")), 201)
        tok = self.create_token()["token"]
        r = self.assertStatus(self.d.request("GET", "/v1/agents", token=tok), 200)
        self.assertEqual([a["name"] for a in r.json()["agents"]], ["fx-minimal"])
        self.assertStatus(self.d.request("GET", "/v1/agents/fx-minimal", token=tok), 200)

    def test_client_token_on_admin_routes_is_403(self):
        self.assertStatus(self.d.install(fixture("minimal")), 201)
        t = self.create_token()
        tok = t["token"]
        self.assertError(self.d.request("POST", "/v1/agents", {"path": fixture("install-ok")}, token=tok),
                         403, "forbidden")
        self.assertError(self.d.request("DELETE", "/v1/agents/fx-minimal", token=tok), 403, "forbidden")
        self.assertError(self.d.request("GET", "/v1/tokens", token=tok), 403, "forbidden")
        self.assertError(self.d.request("POST", "/v1/tokens", {"name": "x"}, token=tok), 403, "forbidden")
        self.assertError(self.d.request("DELETE", "/v1/tokens/" + t["id"], token=tok), 403, "forbidden")
        # nothing changed
        names = [a["name"] for a in self.d.admin("GET", "/v1/agents").json()["agents"]]
        self.assertEqual(names, ["fx-minimal"])
        self.assertEqual(len(self.d.admin("GET", "/v1/tokens").json()["tokens"]), 2)

    def test_token_list_never_has_a_secret(self):
        t1 = self.create_token("one")
        t2 = self.create_token("two")
        r = self.assertStatus(self.d.admin("GET", "/v1/tokens"), 200)
        toks = r.json()["tokens"]
        for secret in (t1["token"], t2["token"], self.d.admin_token):
            self.assertNotIn(secret.encode(), r.body, "GET /v1/tokens leaked a secret")
        for t in toks:
            self.assertEqual(set(t), {"id", "name", "admin", "created_at"}, t)
        by_id = {t["id"]: t for t in toks}
        self.assertEqual(by_id[t1["id"]]["name"], "one")
        self.assertEqual(by_id[t2["id"]]["name"], "two")
        admins = [t for t in toks if t["admin"]]
        self.assertEqual(len(admins), 1, "exactly one admin token: %r" % toks)
        self.assertEqual(len(toks), 3, toks)

    def test_revoked_token_is_401(self):
        t = self.create_token()
        self.assertStatus(self.d.request("GET", "/v1/agents", token=t["token"]), 200)
        r = self.assertStatus(self.d.admin("DELETE", "/v1/tokens/" + t["id"]), 204)
        self.assertEqual(r.body, b"")
        self.assertError(self.d.request("GET", "/v1/agents", token=t["token"]), 401, "unauthorized")
        self.assertNotIn(t["id"], [x["id"] for x in self.d.admin("GET", "/v1/tokens").json()["tokens"]])
        self.assertError(self.d.admin("DELETE", "/v1/tokens/" + t["id"]), 404, "not_found")

    def test_revoke_unknown_token_is_404(self):
        self.assertError(self.d.admin("DELETE", "/v1/tokens/t_doesnotexist"), 404, "not_found")

    def test_admin_token_cannot_be_revoked(self):
        toks = self.d.admin("GET", "/v1/tokens").json()["tokens"]
        admin_ids = [t["id"] for t in toks if t["admin"]]
        self.assertEqual(len(admin_ids), 1, toks)
        self.assertError(self.d.admin("DELETE", "/v1/tokens/" + admin_ids[0]), 403, "forbidden")
        self.assertStatus(self.d.admin("GET", "/v1/agents"), 200)

    def test_client_tokens_survive_restart(self):
        t = self.create_token()
        self.d.restart()
        self.assertStatus(self.d.request("GET", "/v1/agents", token=t["token"]), 200)
        self.assertError(self.d.request("GET", "/v1/tokens", token=t["token"]), 403, "forbidden")

    def test_token_name_rules(self):
        self.assertError(self.d.admin("POST", "/v1/tokens", {}), 400, "bad_request", "name")
        self.assertError(self.d.admin("POST", "/v1/tokens", {"name": 5}), 400, "bad_request", "name")
        for bad in ("", "x" * 65, "tab\there"):
            r = self.d.admin("POST", "/v1/tokens", {"name": bad})
            # docs/http.md says 1-64 printable characters but not which status; 400 or 422
            self.assertIn(r.status, (400, 422), "name %r: %r" % (bad, r))
            self.assertError(r, r.status, "bad_request" if r.status == 400 else "invalid_input", "name")
        self.create_token("x" * 64)


if __name__ == "__main__":
    main()
