"""Bad requests and hostile agent folders against the real daemon: every one answers the
documented status and error body (docs/http.md), leaves nothing behind, and the daemon
goes on serving."""

import http.client
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import DaemonTestCase, fixture, main, state_snapshot  # noqa: E402

TEN_MB = 10 * 1024 * 1024


class BadRequestBodies(DaemonTestCase):

    def post_raw(self, body, ctype="application/json"):
        return self.d.admin("POST", "/v1/agents", body, headers={"Content-Type": ctype})

    def test_malformed_json_is_400_with_line_and_column(self):
        msg = self.assertError(self.post_raw('{"path": "/x",\n  oops}'), 400, "bad_request")
        self.assertRegex(msg.lower(), r"line\D{0,3}2", "message must name the line: %r" % msg)
        self.assertRegex(msg.lower(), r"col", "message must name the column: %r" % msg)

    def test_truncated_and_empty_bodies_are_400(self):
        self.assertError(self.post_raw('{"path": '), 400, "bad_request")
        self.assertError(self.post_raw(''), 400, "bad_request")

    def test_body_not_an_object_is_400(self):
        for body in ('[]', '"path"', '42', 'null'):
            self.assertError(self.post_raw(body), 400, "bad_request")

    def test_missing_path_is_400(self):
        self.assertError(self.d.admin("POST", "/v1/agents", {}), 400, "bad_request", "path")
        # a misspelt key: 400 naming either the missing "path" or the stray "pth"
        msg = self.assertError(self.d.admin("POST", "/v1/agents", {"pth": fixture("minimal")}), 400, "bad_request")
        self.assertTrue("path" in msg or "pth" in msg, msg)
        self.assertEqual(self.d.admin("GET", "/v1/agents").json(), {"agents": []})

    def test_path_of_wrong_type_is_400(self):
        for v in (42, None, ["/tmp"], {"p": 1}, True):
            self.assertError(self.d.admin("POST", "/v1/agents", {"path": v}), 400, "bad_request", "path")

    def test_curl_default_content_type_is_accepted(self):
        # curl -d sends application/x-www-form-urlencoded; docs/http.md accepts it
        r = self.post_raw('{"path": "%s"}' % fixture("minimal"), "application/x-www-form-urlencoded")
        self.assertStatus(r, 201)
        r = self.post_raw('{"path": "%s"}' % fixture("install-ok"), "text/plain")
        self.assertStatus(r, 201)

    def test_unsupported_content_type_is_415(self):
        for ctype in ("application/xml", "multipart/form-data; boundary=x", "image/png"):
            r = self.post_raw('{"path": "%s"}' % fixture("minimal"), ctype)
            self.assertError(r, 415, "unsupported_media_type")
        self.assertStatus(self.d.admin("GET", "/v1/agents/fx-minimal"), 404)


class BadManifests(DaemonTestCase):

    def rejected(self, path, status, code, *needles, name=None):
        before = state_snapshot(self.d)
        msg = self.assertError(self.d.install(path), status, code, *needles)
        if name:
            self.assertNoTrace(self.d, before, name)
        else:
            self.assertEqual(state_snapshot(self.d) - before, set())
        self.assertStatus(self.d.request("GET", "/healthz"), 200)
        return msg

    def test_unknown_manifest_field_is_422_naming_it(self):
        self.rejected(fixture("bad-unknown-field"), 422, "invalid_input", "entrypiont_typo",
                      name="fx-bad-unknown")

    def test_unknown_nested_field_is_422_naming_it(self):
        p = self.write_agent("nested", {"manifest_version": 1, "name": "fx-nested", "version": "1.0.0",
                                        "description": "typo in sandbox", "entrypoint": ["./run.sh"],
                                        "sandbox": {"netwrok": False}})
        self.rejected(p, 422, "invalid_input", "sandbox.netwrok", name="fx-nested")

    def test_wrong_type_is_422_naming_the_field(self):
        self.rejected(fixture("bad-type"), 422, "invalid_input", "entrypoint", name="fx-bad-type")

    def test_message_names_the_file(self):
        msg = self.rejected(fixture("bad-type"), 422, "invalid_input")
        self.assertIn("agent.json", msg)

    def test_missing_required_field_is_422(self):
        p = self.write_agent("noversion", {"manifest_version": 1, "name": "fx-nover",
                                           "description": "no version", "entrypoint": ["./run.sh"]})
        self.rejected(p, 422, "invalid_input", "version", name="fx-nover")

    def test_manifest_not_json_is_422(self):
        p = self.write_agent("notjson", "{ this is not json")
        self.rejected(p, 422, "invalid_input", "agent.json")

    def test_entrypoint_with_dotdot_is_422(self):
        self.rejected(fixture("bad-entrypoint-dotdot"), 422, "invalid_input", "entrypoint",
                      name="fx-bad-dotdot")

    def test_missing_folder_is_422(self):
        missing = os.path.join(self.tmp, "no", "such", "agent")
        self.rejected(missing, 422, "invalid_input", missing)

    def test_folder_without_agent_json_is_422(self):
        empty = os.path.join(self.tmp, "empty")
        os.makedirs(empty)
        self.rejected(empty, 422, "invalid_input", "agent.json")

    def test_regular_file_not_agent_json_is_422(self):
        self.rejected(os.path.join(fixture("minimal"), "run.sh"), 422, "invalid_input")

    def test_relative_path_is_refused(self):
        before = state_snapshot(self.d)
        r = self.d.install("tests/fixtures/agents/minimal")
        # docs/http.md: "it must be absolute"; the status is not named, 400 or 422 both fit
        self.assertIn(r.status, (400, 422), r)
        self.assertError(r, r.status, "bad_request" if r.status == 400 else "invalid_input", "absolute")
        self.assertNoTrace(self.d, before, "fx-minimal")

    def test_duplicate_install_is_409(self):
        self.assertStatus(self.d.install(fixture("minimal")), 201)
        before = state_snapshot(self.d)
        self.assertError(self.d.install(fixture("minimal")), 409, "conflict", "fx-minimal", "1.0.0")
        self.assertEqual(state_snapshot(self.d) - before, set())
        a = self.d.admin("GET", "/v1/agents").json()["agents"]
        self.assertEqual([(x["name"], x["versions"]) for x in a], [("fx-minimal", ["1.0.0"])])
        self.assertTrue(os.path.isfile(os.path.join(self.d.agent_dir("fx-minimal", "1.0.0"), "run.sh")),
                        "the conflicting install damaged the installed copy")


class SymlinkEscape(DaemonTestCase):

    def test_file_symlink_to_outside_is_422(self):
        src = self.copy_fixture("symlink-escape")
        os.symlink("/etc/passwd", os.path.join(src, "leak"))
        before = state_snapshot(self.d)
        self.assertError(self.d.install(src), 422, "invalid_input", "leak")
        self.assertNoTrace(self.d, before, "fx-symlink")

    def test_relative_symlink_climbing_out_is_422(self):
        src = self.copy_fixture("symlink-escape")
        secret = os.path.join(self.tmp, "secret.txt")
        with open(secret, "w") as f:
            f.write("not yours\n")
        os.makedirs(os.path.join(src, "lib"))
        os.symlink("../../../secret.txt", os.path.join(src, "lib", "data"))
        before = state_snapshot(self.d)
        self.assertError(self.d.install(src), 422, "invalid_input", "data")
        self.assertNoTrace(self.d, before, "fx-symlink")

    def test_folder_symlink_to_outside_is_422(self):
        src = self.copy_fixture("symlink-escape")
        os.symlink("/etc", os.path.join(src, "etc"))
        before = state_snapshot(self.d)
        self.assertError(self.d.install(src), 422, "invalid_input", "etc")
        self.assertNoTrace(self.d, before, "fx-symlink")

    def test_agent_json_symlink_to_outside_is_422(self):
        src = self.copy_fixture("symlink-escape")
        outside = os.path.join(self.tmp, "outside-agent.json")
        os.rename(os.path.join(src, "agent.json"), outside)
        os.symlink(outside, os.path.join(src, "agent.json"))
        before = state_snapshot(self.d)
        self.assertError(self.d.install(src), 422, "invalid_input", "agent.json")
        self.assertNoTrace(self.d, before, "fx-symlink")

    def test_symlink_inside_the_folder_is_fine(self):
        # docs/http.md refuses only a symlink "that points outside" the folder
        src = self.copy_fixture("symlink-escape")
        os.symlink("run.sh", os.path.join(src, "alias.sh"))
        self.assertStatus(self.d.install(src), 201)
        copy = self.d.agent_dir("fx-symlink", "1.0.0")
        self.assertTrue(os.path.isfile(os.path.join(copy, "alias.sh")))
        self.assertTrue(os.path.realpath(os.path.join(copy, "alias.sh")).startswith(
            os.path.realpath(copy) + os.sep), "alias.sh in the copy resolves outside it")


class Routing(DaemonTestCase):

    def test_unknown_routes_are_404(self):
        for path in ("/nope", "/v1/nope", "/v1/agents/fx-minimal/nope/deeper", "/v2/agents"):
            self.assertError(self.d.admin("GET", path), 404, "not_found")

    def test_wrong_method_is_405_with_allow(self):
        cases = [("DELETE", "/v1/agents", {"GET", "POST"}),
                 ("PUT", "/v1/agents", {"GET", "POST"}),
                 ("POST", "/v1/agents/fx-minimal", {"GET", "DELETE"}),
                 ("PUT", "/v1/tokens", {"GET", "POST"}),
                 ("GET", "/v1/tokens/t_x", {"DELETE"}),
                 ("POST", "/healthz", {"GET"}),
                 ("DELETE", "/metrics", {"GET"})]
        for method, path, allowed in cases:
            r = self.d.admin(method, path)
            self.assertError(r, 405, "method_not_allowed")
            allow = r.header("Allow")
            self.assertIsNotNone(allow, "405 without Allow: %s %s" % (method, path))
            got = {m.strip().upper() for m in allow.split(",") if m.strip()}
            self.assertTrue(allowed <= got, "%s %s: Allow %r lacks %s" % (method, path, allow, allowed - got))
            self.assertNotIn(method, got, "%s %s: Allow %r lists the refused method" % (method, path, allow))


class Connections(DaemonTestCase):

    def test_keep_alive_serves_several_requests_and_errors(self):
        import http.client
        import json
        conn = http.client.HTTPConnection("127.0.0.1", self.d.port, timeout=10)
        self.addCleanup(conn.close)
        auth = {"Authorization": "Bearer " + self.d.admin_token}
        steps = [("GET", "/v1/agents", None, 200), ("GET", "/v1/agents/nope", None, 404),
                 ("POST", "/v1/agents", json.dumps({"path": fixture("minimal")}), 201),
                 ("POST", "/v1/agents", "{bad", 400), ("GET", "/v1/agents/fx-minimal", None, 200),
                 ("GET", "/healthz", None, 200)]
        for method, path, body, status in steps:
            hdrs = dict(auth)
            if body is not None:
                hdrs["Content-Type"] = "application/json"
            conn.request(method, path, body=body, headers=hdrs)
            r = conn.getresponse()
            data = r.read()
            self.assertEqual(r.status, status, "%s %s on a kept-alive connection: %r" % (method, path, data))
            self.assertFalse(r.will_close and (method, path) != steps[-1][:2],
                             "the daemon closed the connection after %s %s" % (method, path))

    def test_decoded_paths_are_authorized_as_the_route_they_reach(self):
        # docs/http.md: paths are percent-decoded and normalized before routing, so
        # /v1/agents/..%2ftokens is /v1/tokens and is authorized as /v1/tokens.
        client = self.assertStatus(self.d.admin("POST", "/v1/tokens", {"name": "c"}), 201).json()["token"]
        for path in ("/v1/agents/..%2ftokens", "/v1/agents/..%2Ftokens", "/v1/agents/x/../../tokens"):
            with self.subTest(path=path):
                self.assertError(self.d.request("GET", path, token=client), 403, "forbidden")
                self.assertError(self.d.request("GET", path), 401, "unauthorized")
                r = self.assertStatus(self.d.admin("GET", path), 200)
                self.assertIn("tokens", r.json())

    def test_nul_and_odd_bytes_in_the_path_do_not_kill_the_daemon(self):
        # libwebsockets may refuse some of these while parsing the request line and just
        # close the connection; that is acceptable. Dying is not, and any HTTP answer must
        # be a 4xx with the JSON error body.
        self.assertStatus(self.d.install(fixture("minimal")), 201)
        for path in ("/v1/agents/fx-minimal%00x", "/nope%00", "/healthz%00", "/v1/agents/%ff%fe",
                     "/v1/agents/%", "/v1/agents/%zz", "/v1/agents/" + "a" * 3000):
            label = path if len(path) < 60 else path[:40] + "...(%d bytes)" % len(path)
            try:
                r = self.d.admin("GET", path)
            except (http.client.RemoteDisconnected, ConnectionResetError) as e:
                r = e
            try:
                alive = self.d.request("GET", "/healthz", timeout=5).status == 200
            except OSError:
                alive = False
            if not alive:
                try:
                    code = self.d.proc.wait(timeout=2)
                except Exception:
                    code = None
                log = self.d.log()
                if code is not None:
                    self.d._forget()
                self.fail("GET %s killed the daemon (exit status %s):\n%s" % (label, code, log))
            if isinstance(r, Exception):
                continue
            self.assertTrue(400 <= r.status < 500, "GET %s: %r" % (label, r))
            if (r.header("content-type") or "").startswith("text/html"):
                # libwebsockets refuses some malformed URIs itself, with its own page,
                # before the daemon sees the request (docs/http.md, "Paths").
                continue
            self.assertError(r, r.status, r.json()["error"]["code"])
        self.assertStatus(self.d.admin("GET", "/v1/agents/fx-minimal"), 200)


class BodyLimits(DaemonTestCase):

    def head(self, extra):
        return ("POST /v1/agents HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
                "Content-Type: application/json\r\n%s\r\n" % (self.d.admin_token, extra)).encode()

    def check_error(self, status, headers, body, want_status, want_code):
        self.assertEqual(status, want_status, body)
        err = json.loads(body.decode())
        self.assertEqual(set(err), {"error"}, err)
        self.assertEqual(set(err["error"]), {"code", "message"}, err)
        self.assertEqual(err["error"]["code"], want_code, err)
        self.assertTrue(err["error"]["message"], err)
        self.assertTrue(headers.get("content-type", "").startswith("application/json"), headers)

    def check_413(self, status, headers, body):
        self.check_error(status, headers, body, 413, "too_large")

    def body_10mb(self):
        # valid JSON, so only the size can be the reason
        pad = b" " * (TEN_MB - 64)
        return b'{"path": "' + fixture("minimal").encode() + b'"' + pad + b"}"

    def test_10mb_body_with_content_length_is_413(self):
        body = self.body_10mb()
        status, headers, rbody, sent = self.d.raw_exchange(
            self.head("Content-Length: %d\r\n" % len(body)),
            (body[i:i + 65536] for i in range(0, len(body), 65536)))
        self.check_413(status, headers, rbody)
        self.assertStatus(self.d.request("GET", "/healthz"), 200)
        self.assertEqual(self.d.admin("GET", "/v1/agents").json(), {"agents": []})

    def test_oversized_content_length_is_413_before_the_body(self):
        # docs/http.md: "a larger Content-Length is refused with 413 at once, from the headers"
        try:
            status, headers, rbody, _ = self.d.raw_exchange(
                self.head("Content-Length: %d\r\n" % TEN_MB), [], timeout=5)
        except AssertionError as e:
            self.fail("no answer within 5 s to a request announcing a 10 MB body (none of it "
                      "sent); docs/http.md: refused with 413 at once, from the headers (%s)" % e)
        self.check_413(status, headers, rbody)
        self.assertStatus(self.d.request("GET", "/healthz"), 200)

    def test_chunked_body_is_411_at_once(self):
        # docs/http.md: Transfer-Encoding: chunked is answered 411 length_required at once
        try:  # the head alone, no chunk sent
            status, headers, rbody, _ = self.d.raw_exchange(
                self.head("Transfer-Encoding: chunked\r\n"), [], timeout=5)
        except AssertionError as e:
            self.fail("no answer within 5 s to a chunked request: %s" % e)
        self.check_error(status, headers, rbody, 411, "length_required")
        # and a chunked body sent in full changes nothing
        body = self.body_10mb()

        def chunks():
            for i in range(0, len(body), 65536):
                part = body[i:i + 65536]
                yield b"%x\r\n" % len(part) + part + b"\r\n"
            yield b"0\r\n\r\n"
        status, headers, rbody, _ = self.d.raw_exchange(self.head("Transfer-Encoding: chunked\r\n"), chunks())
        self.check_error(status, headers, rbody, 411, "length_required")
        self.assertStatus(self.d.request("GET", "/healthz"), 200)
        self.assertEqual(self.d.admin("GET", "/v1/agents").json(), {"agents": []})

    def test_body_under_default_limit_is_accepted(self):
        # 1 MiB of padding is under the 2 MiB default
        body = b'{"path": "' + fixture("minimal").encode() + b'"' + b" " * (1024 * 1024) + b"}"
        r = self.d.admin("POST", "/v1/agents", body, headers={"Content-Type": "application/json"})
        self.assertStatus(r, 201)


class MaxBodyOption(DaemonTestCase):
    daemon_args = ("--max-body", "4096")

    def test_max_body_option_sets_the_limit(self):
        small = '{"path": "%s"}' % fixture("minimal")
        big = '{"path": "%s"%s}' % (fixture("install-ok"), " " * 5000)
        self.assertError(self.d.admin("POST", "/v1/agents", big, headers={"Content-Type": "application/json"}),
                         413, "too_large")
        self.assertStatus(self.d.admin("POST", "/v1/agents", small, headers={"Content-Type": "application/json"}), 201)


if __name__ == "__main__":
    main()
