"""Hardening (issue 7, item 2): the bad-input table. One row per (route, bad input) with the
status and error code docs/http.md documents, for every route the daemon serves (the route
table in host/api.c: the routes of docs/http.md plus the admin config routes
GET/PUT /v1/agents/{name}/config, which docs/http.md does not list yet), over HTTP, the
WebSocket upgrade and WebSocket messages (docs/websocket.md).

Bad inputs: wrong method, no/wrong token, a client token on an admin route, missing, extra
and mistyped fields, wrong content type, empty body, malformed JSON, non-UTF-8, JSON nested
10,000 deep, huge numbers (1e400, 2^70), path traversal in names and keys ("../", "%2e%2e",
NUL), unknown ids, ids of another token's session, and 100 MB bodies (refused while
streaming, not buffered: the daemon's RSS stays under +50 MB).

After each part: the daemon still serves (/healthz, a run, a WebSocket ping) and no
session's record, state, event log, runs or agent log changed, nor the agents, tokens and
files of the state folder (a snapshot before and after).

Oracle: docs/http.md ("Conventions", the error table, "Paths", each route, "Limits"),
docs/websocket.md, DESIGN.md §5. A row whose answer is not the documented one is listed
with what came back; all mismatches of a part are reported together."""

import asyncio
import http.client
import json
import os
import select
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_sessions as ts  # noqa: E402
from harness import agent_variant, example, main, state_snapshot  # noqa: E402

try:
    import websockets
    import websockets.exceptions
except ImportError:  # a missing client is a failure, not a skip
    raise SystemExit("python3-websockets is missing: apt-get install python3-websockets "
                     "(and run the tests with /usr/bin/python3)")

MB = 1024 * 1024
HUGE_BODY = 100 * MB          # the table's "100 MB body"
RSS_SLACK_KB = 50 * 1024      # the daemon must not buffer it: RSS under +50 MB
DEEP = 10000                  # nesting levels
BIG_INT = str(2 ** 70)        # 1180591620717411303424
INT64_MAX = str(2 ** 63 - 1)
JSON = "application/json"
WRONG_TOKEN = "aht_" + "0" * 40
UNKNOWN_SESSION = "s_0000" + "0" * 32
UNKNOWN_RUN = "r_" + "0" * 32
CLOSED_OR_4XX = "closed-or-4xx"   # refused by libwebsockets (docs/http.md "Paths")
METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH")

# Every route (host/api.c): method, path template, who may call it, takes a JSON body.
# Templates: {sa} A's session, {ra} a finished run of it, {inv} an echo ?wait=false call,
# {tb} B's token id, {victim} an installed agent no session uses.
ROUTES = [
    ("GET", "/healthz", "open", False),
    ("GET", "/metrics", "open", False),
    ("GET", "/v1/agents", "client", False),
    ("POST", "/v1/agents", "admin", True),
    ("GET", "/v1/agents/{victim}", "client", False),
    ("DELETE", "/v1/agents/{victim}", "admin", False),
    ("GET", "/v1/agents/echo/config", "admin", False),
    ("PUT", "/v1/agents/echo/config", "admin", True),
    ("POST", "/v1/agents/echo/invoke", "client", True),
    ("GET", "/v1/agents/echo/invoke/{inv}", "client", False),
    ("POST", "/v1/agents/echo/sessions", "client", True),
    ("GET", "/v1/sessions", "client", False),
    ("GET", "/v1/sessions/{sa}", "client", False),
    ("DELETE", "/v1/sessions/{sa}", "client", False),
    ("POST", "/v1/sessions/{sa}/runs", "client", True),
    ("GET", "/v1/sessions/{sa}/runs/{ra}", "client", False),
    ("POST", "/v1/sessions/{sa}/runs/{ra}/cancel", "client", True),
    ("GET", "/v1/sessions/{sa}/events", "client", False),
    ("GET", "/v1/sessions/{sa}/ws", "client", False),
    ("GET", "/v1/sessions/{sa}/logs", "client", False),
    ("GET", "/v1/sessions/{sa}/state", "client", False),
    ("GET", "/v1/sessions/{sa}/state/k", "client", False),
    ("PUT", "/v1/sessions/{sa}/state/k", "client", True),
    ("DELETE", "/v1/sessions/{sa}/state/k", "client", False),
    ("GET", "/v1/tokens", "admin", False),
    ("POST", "/v1/tokens", "admin", True),
    ("DELETE", "/v1/tokens/{tb}", "admin", False),
]


def deep(n=DEEP):
    return "[" * n + "]" * n


class Row:
    """One table row: a request and the documented answer (status, error code)."""

    def __init__(self, what, method, path, body=None, token="A", ctype=JSON, headers=None,
                 expect=None):
        self.what, self.method, self.path = what, method, path
        self.body, self.token, self.ctype, self.headers = body, token, ctype, headers or {}
        self.expect = expect  # (status, code) or CLOSED_OR_4XX

    def __repr__(self):
        return "%s %s [%s]" % (self.method, self.path[:90], self.what)


class TableCase(ts.SessionCase):
    """A daemon with the examples; client tokens A and B with one echo session each (a run,
    a key, an agent log), an admin counter session, an installed agent no session uses
    ("victim"), a finished stateless call; snapshot() of everything a bad input must not
    change."""

    test_timeout = 150

    def setUp(self):
        super().setUp()
        signal.alarm(self.test_timeout)
        self.ta, self.tb = self.new_token("client-a"), self.new_token("client-b")
        self.A, self.B = self.ta["token"], self.tb["token"]
        self.sa = self.create("echo", token=self.A)["id"]
        self.sb = self.create("echo", token=self.B)["id"]
        self.sc = self.create("counter")["id"]
        self.ra = self.assertRunResult(self.post_run(self.sa, "a b", token=self.A), "completed")["id"]
        self.rb = self.assertRunResult(self.post_run(self.sb, "b", token=self.B), "completed")["id"]
        self.assertEqual(self.run_ok(self.sc, None), 1)
        for sid, tok in ((self.sa, self.A), (self.sb, self.B)):
            self.assertStatus(self.req("PUT", "/v1/sessions/%s/state/k" % sid, '{"v": 1}', token=tok), 200)
        r = self.assertStatus(self.req("POST", "/v1/agents/echo/invoke?wait=false", {"input": "q"},
                                       token=self.A), 202)
        self.inv = r.json()["id"]
        self.assertTrue(self.wait_invoke(self.inv), "the ?wait=false call did not finish")
        self.victim_src = agent_variant(example("echo"), os.path.join(self.tmp, "src", "victim"),
                                        {"name": "victim"})
        self.assertStatus(self.d.install(self.victim_src), 201)
        self.sessions = [(self.sa, self.A), (self.sb, self.B), (self.sc, self.token)]
        self.fill = {"sa": self.sa, "sb": self.sb, "ra": self.ra, "rb": self.rb, "inv": self.inv,
                     "tb": self.tb["id"], "victim": "victim"}

    def wait_invoke(self, iid):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            r = self.req("GET", "/v1/agents/echo/invoke/" + iid, token=self.A)
            if r.status == 200 and r.json().get("status") == "completed":
                return True
            time.sleep(0.05)
        return False

    def rss_kb(self):
        with open("/proc/%d/status" % self.d.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def watch_rss(self):
        """Starts sampling the daemon's VmRSS every 5 ms; returns (stop(), peak list)."""
        peak = [self.rss_kb()]
        done = threading.Event()

        def loop():
            while not done.is_set():
                try:
                    peak[0] = max(peak[0], self.rss_kb())
                except OSError:
                    return
                time.sleep(0.005)
        t = threading.Thread(target=loop, daemon=True)
        t.start()

        def stop():
            done.set()
            t.join(2)
            return peak[0]
        return stop

    # -- before / after ---------------------------------------------------------
    def snapshot(self):
        """Everything a refused request must leave as it was."""
        snap = {}
        for sid, tok in self.sessions:
            log = self.log(sid, token=tok, idle=False)
            snap[sid] = {
                "record": self.get(sid, token=tok),
                "state": self.kv(sid, token=tok),
                "log": log,
                "runs": {rid: self.run_record(sid, rid, token=tok)
                         for rid in sorted({e["run"] for e in log if "run" in e})},
                "agent_log": self.assertStatus(self.req("GET", "/v1/sessions/%s/logs" % sid,
                                                        token=tok), 200).body,
            }
        adm = lambda path: self.assertStatus(self.req("GET", path), 200).json()  # noqa: E731
        snap["agents"] = adm("/v1/agents")
        snap["victim"] = adm("/v1/agents/victim")
        snap["tokens"] = adm("/v1/tokens")
        snap["all_sessions"] = sorted(s["id"] for s in adm("/v1/sessions?all=true")["sessions"])
        snap["echo_config"] = adm("/v1/agents/echo/config")
        snap["files"] = sorted(state_snapshot(self.d))
        snap["logs_dir"] = sorted(os.listdir(os.path.join(self.d.state_dir, "logs")))
        return snap

    def assertUnchanged(self, before):
        after = self.snapshot()
        diffs = []
        for k in before:
            if before[k] != after.get(k):
                diffs.append("%s:\n  before %s\n  after  %s" % (k, json.dumps(before[k], default=repr)[:1500],
                                                               json.dumps(after.get(k), default=repr)[:1500]))
        if diffs:
            self.fail("the bad inputs changed the daemon's state:\n" + "\n".join(diffs))

    def assertServes(self):
        """Still serving: /healthz, a run in A's session, a new session, destroyed again."""
        self.assertIsNone(self.d.proc.poll(), "the daemon died:\n" + self.d.log())
        self.assertStatus(self.req("GET", "/healthz", token=None), 200)
        sid = self.create("echo", token=self.A)["id"]
        self.assertEqual(self.run_ok(sid, "still here", token=self.A), "still here")
        self.assertStatus(self.req("DELETE", "/v1/sessions/" + sid, token=self.A), 204)

    # -- running rows -------------------------------------------------------------
    def send(self, row, timeout=10.0):
        """Sends the row's request; returns (status, headers dict, body bytes) or None when
        the connection was closed without an answer."""
        tokens = {"A": self.A, "B": self.B, "admin": self.token, None: None}
        token = tokens.get(row.token, row.token)
        path = row.path.format(**self.fill)
        body = row.body
        hdrs = {}
        if body is not None:
            if not isinstance(body, (bytes, str)):
                body = json.dumps(body)
            if isinstance(body, str):
                body = body.encode("utf-8")
            if row.ctype:
                hdrs["Content-Type"] = row.ctype
            hdrs["Content-Length"] = str(len(body))
        if token is not None:
            hdrs["Authorization"] = "Bearer " + token
        hdrs.update(row.headers)
        conn = http.client.HTTPConnection("127.0.0.1", self.d.port, timeout=timeout)
        try:
            conn.request(row.method, path, body=body, headers=hdrs)
            r = conn.getresponse()
            headers = {k.lower(): v for k, v in r.getheaders()}
            if headers.get("content-type", "").startswith("text/event-stream"):
                # A stream (SSE) does not end: what it says in its first 0.5 s.
                r.fp.raw._sock.settimeout(0.5)
                data = b""
                try:
                    while True:
                        part = r.read1(65536)
                        if not part:
                            break
                        data += part
                except socket.timeout:
                    pass
                return r.status, headers, data
            return r.status, headers, r.read()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            return None
        finally:
            conn.close()

    def check(self, row):
        """None if the answer is the documented one, else a sentence saying what came back."""
        try:
            got = self.send(row)
        except socket.timeout:
            return "no answer within 10 s"
        if got is None:
            return None if row.expect == CLOSED_OR_4XX else "connection closed without an answer"
        status, headers, body = got
        text = body[:300].decode("utf-8", "replace")
        if row.expect == CLOSED_OR_4XX:
            if not 400 <= status < 500:
                return "HTTP %d %s" % (status, text)
            if headers.get("content-type", "").startswith("text/html"):
                return None  # libwebsockets' own refusal page
            want_status, want_code = status, None
        else:
            want_status, want_code = row.expect
        if status != want_status:
            if headers.get("content-type", "").startswith("text/event-stream"):
                return "HTTP %d, an event stream starting %r" % (status, text)
            return "HTTP %d %s" % (status, text)
        if status < 400:
            return None
        if not headers.get("content-type", "").startswith("application/json"):
            return "HTTP %d with Content-Type %r" % (status, headers.get("content-type"))
        try:
            err = json.loads(body)["error"]
            code, msg = err["code"], err["message"]
        except (ValueError, KeyError, TypeError):
            return "HTTP %d, not the JSON error body: %s" % (status, text)
        if want_code is not None and code != want_code:
            return "HTTP %d code %r (want %r): %s" % (status, code, want_code, msg)
        if not isinstance(msg, str) or not msg.strip():
            return "empty error message"
        if status == 405:
            allow = {m.strip() for m in headers.get("allow", "").split(",") if m.strip()}
            if not allow or row.method in allow:
                return "405 with Allow %r" % headers.get("allow")
        return None

    def run_table(self, rows):
        bad = []
        for row in rows:
            why = self.check(row)
            if why:
                want = row.expect if row.expect == CLOSED_OR_4XX else "%d %s" % row.expect
                bad.append("  %r\n      expected %s, got %s" % (row, want, why))
            if self.d.proc.poll() is not None:
                self.fail("the daemon died (status %s) on %r:\n%s" % (self.d.proc.poll(), row, self.d.log()))
        return bad


def http_rows(victim_path):
    """The HTTP table. victim_path: a real agent folder (so that only the row's defect can be
    the reason an install is refused)."""
    rows = []
    E = lambda status, code: (status, code)  # noqa: E731
    by_path = {}
    for method, path, access, _body in ROUTES:
        by_path.setdefault(path, (set(), access))[0].add(method)

    # A valid body for each body route: a row changes one thing about it.
    valid = {
        ("POST", "/v1/agents"): {"path": victim_path},
        ("PUT", "/v1/agents/echo/config"): {},
        ("POST", "/v1/agents/echo/invoke"): {"input": 1},
        ("POST", "/v1/agents/echo/sessions"): {},
        ("POST", "/v1/sessions/{sa}/runs"): {"input": 1},
        ("POST", "/v1/sessions/{sa}/runs/{ra}/cancel"): {},
        ("PUT", "/v1/sessions/{sa}/state/k"): 1,
        ("POST", "/v1/tokens"): {"name": "x"},
    }

    def owner(access):
        return "admin" if access == "admin" else "A"

    # Wrong method: 405 with an Allow header that does not list it.
    for path, (allowed, access) in by_path.items():
        for m in METHODS:
            if m not in allowed:
                rows.append(Row("wrong method", m, path, body={} if m in ("POST", "PUT", "PATCH") else None,
                                token=owner(access), expect=E(405, "method_not_allowed")))
    # No token, a wrong token, a client token on an admin route.
    for method, path, access, body in ROUTES:
        b = valid.get((method, path)) if body else None
        if access == "open":
            continue
        rows.append(Row("no token", method, path, body=b, token=None, expect=E(401, "unauthorized")))
        rows.append(Row("unknown token", method, path, body=b, token=WRONG_TOKEN,
                        expect=E(401, "unauthorized")))
        rows.append(Row("Basic auth", method, path, body=b, token=None,
                        headers={"Authorization": "Basic YTpi"}, expect=E(401, "unauthorized")))
        if access == "admin":
            rows.append(Row("client token on an admin route", method, path, body=b, token="A",
                            expect=E(403, "forbidden")))
    # Bodies: wrong content type, empty, malformed, not UTF-8, 10,000 deep, huge numbers.
    for (method, path), good in valid.items():
        tok = "admin" if path in ("/v1/agents", "/v1/agents/echo/config", "/v1/tokens") else "A"
        for ctype in ("application/xml", "text/html", "image/png", "multipart/form-data; boundary=x"):
            rows.append(Row("content type " + ctype, method, path, body=good, ctype=ctype, token=tok,
                            expect=E(415, "unsupported_media_type")))
        if path.endswith("/cancel"):
            continue  # cancel takes no fields: its body is not read
        bad = E(400, "bad_request")
        if not path.endswith("/sessions"):  # the create body is optional
            rows.append(Row("empty body", method, path, body=b"", token=tok, expect=bad))
        rows.append(Row("malformed JSON", method, path, body='{"x": ', token=tok, expect=bad))
        rows.append(Row("duplicate key", method, path, body='{"a": 1, "a": 2}' if path.endswith("/k")
                        else '{"input": 1, "input": 2}', token=tok, expect=bad))
        if path.endswith("/state/k"):  # any JSON value is a state value: only broken JSON is bad
            values = {"not UTF-8": b'"\xff\xfe"', "10,000 deep": deep(), "1e400": "1e400",
                      "-1e400": "-1e400", "2^70": BIG_INT, "NUL escape": '"a\\u0000b"'}
        else:
            field = {"/v1/agents": "path", "/v1/tokens": "name"}.get(path, "input")
            if path.endswith("/config"):
                field = "KEY"
            if path.endswith("/sessions"):
                field = "config"
            values = {"not UTF-8": b'{"%s": "\xff\xfe"}' % field.encode(),
                      "10,000 deep": '{"%s": %s}' % (field, deep()),
                      "1e400": '{"%s": 1e400}' % field, "-1e400": '{"%s": -1e400}' % field,
                      "2^70": '{"%s": %s}' % (field, BIG_INT),
                      "NUL escape": '{"%s": "a\\u0000b"}' % field,
                      "not an object": "[1]", "a string": '"text"'}
        for what, body in values.items():
            rows.append(Row(what, method, path, body=body, token=tok, expect=bad))
    bad = E(400, "bad_request")
    # Missing, extra and mistyped fields.
    rows += [
        Row("missing path", "POST", "/v1/agents", body={}, token="admin", expect=bad),
        Row("extra field", "POST", "/v1/agents", body={"path": victim_path, "force": True},
            token="admin", expect=bad),
        Row("path mistyped", "POST", "/v1/agents", body={"path": 5}, token="admin", expect=bad),
        Row("path mistyped", "POST", "/v1/agents", body={"path": [victim_path]}, token="admin", expect=bad),
        Row("missing name", "POST", "/v1/tokens", body={}, token="admin", expect=bad),
        Row("extra field", "POST", "/v1/tokens", body={"name": "x", "admin": True}, token="admin", expect=bad),
        Row("name mistyped", "POST", "/v1/tokens", body={"name": 5}, token="admin", expect=bad),
        Row("name too long", "POST", "/v1/tokens", body={"name": "x" * 65}, token="admin", expect=bad),
        Row("name not printable", "POST", "/v1/tokens", body={"name": "a\u0001b"}, token="admin", expect=bad),
        Row("empty name", "POST", "/v1/tokens", body={"name": ""}, token="admin", expect=bad),
        Row("extra field", "POST", "/v1/agents/echo/invoke", body={"input": 1, "inptu": 2}, expect=bad),
        Row("extra field", "POST", "/v1/sessions/{sa}/runs", body={"input": 1, "inptu": 2}, expect=bad),
        Row("extra field", "POST", "/v1/agents/echo/sessions", body={"confg": {}}, expect=bad),
        Row("config mistyped", "POST", "/v1/agents/echo/sessions", body={"config": []}, expect=bad),
        Row("config mistyped", "POST", "/v1/agents/echo/sessions", body={"config": "K=v"}, expect=bad),
        Row("undeclared config key", "POST", "/v1/agents/echo/sessions", body={"config": {"K": "v"}},
            expect=bad),
        Row("config value mistyped", "POST", "/v1/agents/echo/sessions", body={"config": {"K": 5}},
            expect=bad),
        Row("undeclared config key", "PUT", "/v1/agents/echo/config", body={"K": "v"}, token="admin",
            expect=bad),
        Row("config mistyped", "PUT", "/v1/agents/echo/config", body=[], token="admin", expect=bad),
        Row("key over 512 bytes", "GET", "/v1/sessions/{sa}/state/" + "k" * 513, expect=bad),
        Row("key over 512 bytes", "PUT", "/v1/sessions/{sa}/state/" + "k" * 513, body=1, expect=bad),
        Row("key over 512 bytes", "DELETE", "/v1/sessions/{sa}/state/" + "k" * 513, expect=bad),
    ]
    # Query parameters and headers.
    ev = "/v1/sessions/{sa}/events"
    for q in ("abc", "-1", "1e3", "0x10", "1e400", BIG_INT, str(2 ** 63), str(2 ** 64)):
        rows.append(Row("?after=" + q[:12], "GET", ev + "?after=" + q, expect=bad))
    for q in ("seven", "-1", BIG_INT):
        rows.append(Row("Last-Event-ID " + q[:12], "GET", ev, headers={"Last-Event-ID": q}, expect=bad))
    for q in ("abc", "-1", "1e3"):
        rows.append(Row("?bytes=%s (mistyped)" % q, "GET", "/v1/sessions/{sa}/logs?bytes=" + q,
                        expect=bad))
    # "at most 1 MiB": a larger count is the whole (1 MiB) tail.
    rows.append(Row("?bytes=2^70", "GET", "/v1/sessions/{sa}/logs?bytes=" + BIG_INT, expect=E(200, None)))
    rows.append(Row("?all=true with a client token", "GET", "/v1/sessions?all=true",
                    expect=E(403, "forbidden")))
    rows.append(Row("plain GET of the WebSocket route", "GET", "/v1/sessions/{sa}/ws",
                    expect=E(426, "upgrade_required")))
    # Path traversal in names, ids and keys: paths are decoded and normalized before
    # routing (docs/http.md "Paths"), so each reaches the route it names, authorized as it.
    nf = E(404, "not_found")
    rows += [
        Row("traversal in agent name", "GET", "/v1/agents/..%2f..%2fetc%2fpasswd", expect=nf),
        Row("traversal in agent name", "GET", "/v1/agents/%2e%2e%2f%2e%2e%2fetc", expect=nf),
        Row("traversal in agent name", "GET", "/v1/agents/%2e%2e", expect=nf),
        Row("traversal in agent name", "DELETE", "/v1/agents/..%2fvictim", token="admin", expect=nf),
        Row("traversal in agent name", "POST", "/v1/agents/..%2fecho/invoke", body={"input": 1}, expect=nf),
        Row("traversal in agent name", "POST", "/v1/agents/%2e%2e%2fecho/sessions", body={}, expect=nf),
        Row("traversal to an admin route", "GET", "/v1/agents/x/..%2f..%2ftokens",
            expect=E(403, "forbidden")),
        Row("traversal to an admin route", "POST", "/v1/sessions/{sa}/..%2f..%2ftokens",
            body={"name": "sneak"}, expect=E(403, "forbidden")),
        Row("NUL in agent name", "GET", "/v1/agents/echo%00", expect=CLOSED_OR_4XX),
        Row("NUL in agent name", "GET", "/v1/agents/echo%00../../etc", expect=CLOSED_OR_4XX),
        Row("agent name not UTF-8", "GET", "/v1/agents/%ff%fe", expect=bad),
        Row("agent name not UTF-8", "GET", "/v1/agents/%c3%28", expect=bad),
        Row("install path with ..", "POST", "/v1/agents", body={"path": "/tmp/../../etc"}, token="admin",
            expect=E(422, "invalid_input")),
        Row("install path with ..", "POST", "/v1/agents",
            body={"path": victim_path + "/../../../../etc"}, token="admin", expect=E(422, "invalid_input")),
        Row("relative install path", "POST", "/v1/agents", body={"path": "victim/../x"}, token="admin",
            expect=E(422, "invalid_input")),
        Row("NUL in install path", "POST", "/v1/agents", body='{"path": "%s\\u0000/../x"}' % victim_path,
            token="admin", expect=bad),
        Row("traversal in config key", "PUT", "/v1/agents/echo/config", body={"../../x": "v"},
            token="admin", expect=bad),
        Row("traversal in config key", "POST", "/v1/agents/echo/sessions",
            body={"config": {"../../x": "v"}}, expect=bad),
        Row("traversal in session id", "GET", "/v1/sessions/..%2f..%2fetc%2fpasswd/logs", expect=nf),
        Row("traversal in session id", "GET", "/v1/sessions/%2e%2e/logs", expect=nf),
        Row("traversal in session id", "GET", "/v1/sessions/..%2fadmin.token/logs", expect=nf),
        Row("traversal in session id", "GET", "/v1/sessions/{sa}%2f..%2f..%2fadmin.token/logs", expect=nf),
        Row("session id naming a state file", "GET", "/v1/sessions/admin.token/logs", expect=nf),
        Row("session id naming a state file", "GET", "/v1/sessions/agenthost.db/logs", expect=nf),
        Row("NUL in session id", "GET", "/v1/sessions/{sa}%00/logs", expect=CLOSED_OR_4XX),
        Row("traversal in run id", "GET", "/v1/sessions/{sa}/runs/..%2f..%2f..%2f{sb}", expect=nf),
        Row("traversal in key", "PUT", "/v1/sessions/{sa}/state/..%2f..%2fx", body=1,
            expect=E(405, "method_not_allowed")),
        Row("traversal in key", "PUT", "/v1/sessions/{sa}/state/%2e%2e", body=1,
            expect=E(405, "method_not_allowed")),
        Row("traversal in key to B's session", "DELETE", "/v1/sessions/{sa}/state/..%2f..%2f{sb}", expect=nf),
        Row("traversal in key to B's state", "GET", "/v1/sessions/{sa}/state/..%2f..%2f{sb}%2fstate",
            expect=nf),
        Row("traversal in key to B's key", "PUT", "/v1/sessions/{sa}/state/..%2f..%2f{sb}%2fstate%2fk",
            body=2, expect=nf),
        Row("slash in key", "GET", "/v1/sessions/{sa}/state/a%2fb", expect=nf),
        Row("NUL in key", "PUT", "/v1/sessions/{sa}/state/k%00x", body=1, expect=CLOSED_OR_4XX),
        Row("NUL in key", "GET", "/v1/sessions/{sa}/state/k%00", expect=CLOSED_OR_4XX),
        Row("traversal in token id", "DELETE", "/v1/tokens/%2e%2e", token="admin", expect=nf),
        Row("traversal in invoke id", "GET", "/v1/agents/echo/invoke/..%2f..%2f..%2fhealthz%00",
            expect=CLOSED_OR_4XX),
    ]
    # Unknown ids.
    for sid in (UNKNOWN_SESSION, "nope", "s_"):
        base = "/v1/sessions/" + sid
        for method, path, body in (("GET", base, None), ("DELETE", base, None),
                                   ("POST", base + "/runs", {"input": 1}),
                                   ("GET", base + "/runs/{ra}", None),
                                   ("POST", base + "/runs/{ra}/cancel", {}),
                                   ("GET", base + "/events", None), ("GET", base + "/logs", None),
                                   ("GET", base + "/state", None), ("GET", base + "/state/k", None),
                                   ("PUT", base + "/state/k", 1), ("DELETE", base + "/state/k", None)):
            rows.append(Row("unknown session", method, path, body=body, expect=nf))
    rows += [
        Row("unknown run", "GET", "/v1/sessions/{sa}/runs/" + UNKNOWN_RUN, expect=nf),
        Row("unknown run", "POST", "/v1/sessions/{sa}/runs/%s/cancel" % UNKNOWN_RUN, body={}, expect=nf),
        Row("finished run", "POST", "/v1/sessions/{sa}/runs/{ra}/cancel", body={}, expect=nf),
        Row("unknown key", "GET", "/v1/sessions/{sa}/state/missing", expect=nf),
        Row("unknown key", "DELETE", "/v1/sessions/{sa}/state/missing", expect=nf),
        Row("unknown agent", "GET", "/v1/agents/nope", expect=nf),
        Row("unknown agent", "DELETE", "/v1/agents/nope", token="admin", expect=nf),
        Row("unknown agent", "GET", "/v1/agents/nope/config", token="admin", expect=nf),
        Row("unknown agent", "PUT", "/v1/agents/nope/config", body={}, token="admin", expect=nf),
        Row("unknown agent", "POST", "/v1/agents/nope/invoke", body={"input": 1}, expect=nf),
        Row("unknown agent", "POST", "/v1/agents/nope/sessions", body={}, expect=nf),
        Row("unknown agent version", "GET", "/v1/agents/echo?version=9.9.9", expect=nf),
        Row("unknown call", "GET", "/v1/agents/echo/invoke/" + UNKNOWN_RUN, expect=nf),
        Row("unknown call", "GET", "/v1/agents/echo/invoke/nope", expect=nf),
        Row("call of another agent", "GET", "/v1/agents/slow/invoke/{inv}", expect=nf),
        Row("unknown token id", "DELETE", "/v1/tokens/t_nope", token="admin", expect=nf),
    ]
    # Ids of another token's session: 404 on every route, whatever the method.
    base = "/v1/sessions/{sb}"
    for method, path, body in (("GET", base, None), ("DELETE", base, None),
                               ("POST", base + "/runs", {"input": 1}),
                               ("POST", base + "/runs?wait=false", {"input": 1}),
                               ("GET", base + "/runs/{rb}", None),
                               ("POST", base + "/runs/{rb}/cancel", {}),
                               ("GET", base + "/events", None), ("GET", base + "/events?after=0", None),
                               ("GET", base + "/logs", None), ("GET", base + "/state", None),
                               ("GET", base + "/state/k", None), ("PUT", base + "/state/k", 2),
                               ("DELETE", base + "/state/k", None)):
        rows.append(Row("B's session with A's token", method, path, body=body, expect=nf))
    rows.append(Row("B's session, token in the query", "GET", base + "/events?access_token={A}",
                    token=None, expect=nf))
    rows.append(Row("B's run through A's session", "GET", "/v1/sessions/{sa}/runs/{rb}", expect=nf))
    rows.append(Row("B's run through A's session", "POST", "/v1/sessions/{sa}/runs/{rb}/cancel", body={},
                    expect=nf))
    return rows


class HttpTable(TableCase):

    def test_every_route_every_bad_input(self):
        self.fill["A"] = self.A
        before = self.snapshot()
        # A method libwebsockets does not route (CONNECT) must not hold a connection open
        # for ever: checked at the end (an incomplete request head is dropped after 10 s).
        connect = socket.create_connection(("127.0.0.1", self.d.port), timeout=20)
        self.addCleanup(connect.close)
        connect.sendall(b"CONNECT /v1/agents HTTP/1.1\r\nHost: x\r\n\r\n")
        connect_sent = time.monotonic()

        rows = http_rows(self.victim_src)
        t0 = time.monotonic()
        bad = self.run_table(rows)
        took = time.monotonic() - t0

        # ?after / Last-Event-ID = 2^63 - 1 (the largest seq there can be): nothing after it,
        # so nothing to send, and nothing was cut either (no events.truncated).
        for what, query, hdrs in (("?after=2^63-1", "?after=" + INT64_MAX, None),
                                  ("Last-Event-ID 2^63-1", "", {"Last-Event-ID": INT64_MAX})):
            s = self.open_events(self.sa, query, token=self.A, headers=hdrs)
            s.resp.fp.raw._sock.settimeout(0.5)
            try:
                ev = s.next_event()
            except socket.timeout:
                ev = None
            s.close()
            if ev is not None:
                bad.append("  GET /v1/sessions/{sa}/events [%s]\n      expected a stream with no "
                           "event (none is after 2^63-1, none was cut), got %r" % (what, ev))

        # CONNECT: answered or closed by now.
        connect.settimeout(max(0.1, 15.0 - (time.monotonic() - connect_sent)))
        try:
            got = connect.recv(200)
            if got and not got.startswith(b"HTTP/1.1 4"):
                bad.append("  CONNECT /v1/agents: answered %r" % got[:100])
        except socket.timeout:
            bad.append("  CONNECT /v1/agents HTTP/1.1 [unroutable method]\n      expected a 4xx or "
                       "the connection closed (as an incomplete request is after 10 s), got "
                       "nothing for 15 s: the connection is held open")
        sys.stderr.write("bad-input table: %d HTTP rows in %.1f s, %d not as documented\n"
                         % (len(rows) + 3, took, len(bad)))
        self.assertServes()
        self.assertUnchanged(before)
        if bad:
            self.fail("%d of %d rows did not get the documented answer:\n%s"
                      % (len(bad), len(rows) + 3, "\n".join(bad)))

    def test_every_route_is_in_the_table(self):
        """The table knows every method of every path it covers: PATCH (no route takes it)
        answers 405 with an Allow header listing exactly the table's methods, so a method
        added to or removed from host/api.c on these paths shows up here."""
        missing = []
        for path in sorted({p for _, p, _, _ in ROUTES}):
            got = self.send(Row("allow", "PATCH", path, body={}, token="admin"))
            allow = {m.strip() for m in got[1].get("allow", "").split(",") if m.strip()}
            known = {m for m, p, _, _ in ROUTES if p == path}
            if allow != known:
                missing.append("%s: Allow %s, the table knows %s" % (path, sorted(allow), sorted(known)))
        self.assertEqual(missing, [], "routes and table disagree")


class BigBodies(TableCase):
    """100 MB bodies on every body route, refused while streaming: 413 from the headers (or
    the connection closed) promptly, and the daemon's RSS never grows by 50 MB."""

    def push(self, method, path, token, total, announce=None, keep_sending=False, chunked=False):
        """Sends a request whose body is `total` bytes of a JSON string (Content-Length
        `announce`, default total; or chunked). Unless keep_sending, stops when the daemon
        answers. Returns (status or None, error code or None, bytes sent, seconds)."""
        head = "%s %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: %s\r\n" % (
            method, path, token, JSON)
        head += "Transfer-Encoding: chunked\r\n" if chunked else \
            "Content-Length: %d\r\n" % (announce if announce is not None else total)
        sock = socket.create_connection(("127.0.0.1", self.d.port), timeout=30)
        sock.sendall((head + "\r\n").encode())
        block = b'{"input": "' + b"x" * (256 * 1024 - 11)
        filler = b"x" * (256 * 1024)
        sent, answer, t0 = 0, b"", time.monotonic()
        sock.setblocking(False)
        try:
            while sent < total and time.monotonic() - t0 < 30:
                r, w, _ = select.select([sock], [sock], [], 1.0)
                if r:
                    try:
                        part = sock.recv(65536)
                    except (ConnectionResetError, BlockingIOError):
                        part = b""
                    if not part:
                        break
                    answer += part
                    if not keep_sending:
                        break
                if w:
                    data = block if sent == 0 else filler
                    data = data[:total - sent]
                    if chunked:
                        data = b"%x\r\n" % len(data) + data + b"\r\n"
                    try:
                        sent += sock.send(data)
                    except (BrokenPipeError, ConnectionResetError):
                        break
                    except BlockingIOError:
                        pass
            sock.setblocking(True)
            sock.settimeout(5)
            try:
                while b"\r\n\r\n" not in answer or len(answer) < answer.index(b"\r\n\r\n") + 4 + 20:
                    part = sock.recv(65536)
                    if not part:
                        break
                    answer += part
            except (ConnectionResetError, socket.timeout, OSError):
                pass
        finally:
            sock.close()
        took = time.monotonic() - t0
        if not answer.startswith(b"HTTP/1.1 "):
            return None, None, sent, took
        status = int(answer[9:12])
        code = None
        if b"\r\n\r\n" in answer:
            try:
                code = json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]["code"]
            except (ValueError, KeyError, TypeError):
                code = "?"
        return status, code, sent, took

    def test_100_mb_bodies_are_refused_while_streaming(self):
        before = self.snapshot()
        base_rss = self.rss_kb()
        bad, lines = [], []
        cases = [("POST", "/v1/agents", self.token), ("PUT", "/v1/agents/echo/config", self.token),
                 ("POST", "/v1/agents/echo/invoke", self.A), ("POST", "/v1/agents/echo/sessions", self.A),
                 ("POST", "/v1/sessions/%s/runs" % self.sa, self.A),
                 ("POST", "/v1/sessions/%s/runs/%s/cancel" % (self.sa, self.ra), self.A),
                 ("PUT", "/v1/sessions/%s/state/k" % self.sa, self.A), ("POST", "/v1/tokens", self.token)]
        variants = [("Content-Length 100 MB", {}), ("Content-Length 100 MB, client ignores the answer",
                                                    {"keep_sending": True}),
                    ("chunked, 100 MB", {"chunked": True})]
        for method, path, token in cases:
            for what, kw in variants:
                if kw.get("keep_sending") and path not in ("/v1/agents/echo/invoke",
                                                           "/v1/sessions/%s/runs" % self.sa):
                    continue  # ~1 s each: two routes are enough to show the drain is bounded
                stop = self.watch_rss()
                status, code, sent, took = self.push(method, path, token, HUGE_BODY, **kw)
                peak = stop()
                want = (411, "length_required") if kw.get("chunked") else (413, "too_large")
                lines.append("  %-6s %-60s %-48s -> %s %s, %5.1f MB sent, %.2f s, RSS +%d KiB"
                             % (method, path[:60], what, status, code, sent / MB, took, peak - base_rss))
                if status is not None and (status, code) != want:
                    bad.append("%s %s [%s]: expected %d %s (or the connection closed), got %s %s"
                               % (method, path, what, want[0], want[1], status, code))
                if took > 10:
                    bad.append("%s %s [%s]: took %.1f s to refuse" % (method, path, what, took))
                if peak - base_rss > RSS_SLACK_KB:
                    bad.append("%s %s [%s]: the daemon's RSS grew by %d KiB (limit %d): it buffers "
                               "the body" % (method, path, what, peak - base_rss, RSS_SLACK_KB))
                try:
                    alive = self.req("GET", "/healthz", token=None, timeout=5).status == 200
                except OSError:
                    alive = False
                if not alive:
                    self.fail("the daemon stopped serving after %s %s [%s]:\n%s"
                              % (method, path, what, self.d.log()))
        sys.stderr.write("100 MB bodies (daemon RSS before: %d KiB):\n%s\n" % (base_rss, "\n".join(lines)))
        self.assertServes()
        self.assertUnchanged(before)
        self.assertEqual(bad, [], "\n".join(lines))


class WebSocketTable(TableCase):
    """The WebSocket route: admission before the upgrade, then bad messages on an open
    connection, each answered with its documented error while the connection stays open."""

    test_timeout = 120

    def url(self, sid, token):
        u = "ws://127.0.0.1:%d/v1/sessions/%s/ws" % (self.d.port, sid)
        return u + ("?access_token=" + token if token else "")

    async def connect(self, sid, token, **kw):
        return await websockets.connect(self.url(sid, token), subprotocols=["agenthost.v1"],
                                        open_timeout=10, close_timeout=3, ping_interval=None,
                                        max_size=None, **kw)

    async def replies(self, ws, idle=0.4, limit=5.0):
        """Every message until none comes for `idle` seconds."""
        out, t0 = [], time.monotonic()
        while time.monotonic() - t0 < limit:
            try:
                raw = await asyncio.wait_for(ws.recv(), idle)
            except asyncio.TimeoutError:
                break
            out.append(json.loads(raw) if isinstance(raw, str) else raw)
        return out

    async def table(self):
        bad = []
        # Admission, from the headers, before the upgrade.
        for what, sid, token, want in (("no token", self.sa, None, 401),
                                       ("unknown token", self.sa, WRONG_TOKEN, 401),
                                       ("B's session with A's token", self.sb, self.A, 404),
                                       ("unknown session", UNKNOWN_SESSION, self.A, 404),
                                       ("traversal in session id", "..%2f..%2fhealthz", self.A, 404),
                                       ("session id not UTF-8", "s_%ff%fe", self.A, 400)):
            try:
                ws = await self.connect(sid, token)
                await ws.close()
                bad.append("upgrade [%s]: expected HTTP %d, got a WebSocket" % (what, want))
            except websockets.exceptions.InvalidStatusCode as e:
                if e.status_code != want:
                    bad.append("upgrade [%s]: expected HTTP %d, got %d" % (what, want, e.status_code))
            except (OSError, websockets.exceptions.InvalidHandshake, asyncio.TimeoutError) as e:
                bad.append("upgrade [%s]: expected HTTP %d, got %r" % (what, want, e))

        ws = await self.connect(self.sa, self.A)
        br = "bad_request"
        messages = [
            ("not JSON", "not json", br), ("empty text", "", br), ("JSON null", "null", br),
            ("JSON array", "[1]", br), ("binary frame", b"\x00\x01", br),
            ("no type", "{}", br), ("type mistyped", '{"type": 5}', br),
            ("unknown type", '{"type": "destroy"}', br),
            ("10,000 deep", '{"type": "run", "input": %s}' % deep(), br),
            ("10,000 deep, bare", deep(), br),
            ("1e400", '{"type": "run", "input": 1e400}', br),
            ("2^70", '{"type": "run", "input": %s}' % BIG_INT, br),
            ("NUL escape", '{"type": "run", "input": "a\\u0000b"}', br),
            ("duplicate key", '{"type": "ping", "type": "run"}', br),
            ("ref mistyped", '{"type": "run", "input": 1, "ref": 5}', br),
            ("resume without after", '{"type": "resume"}', br),
            ("resume after -1", '{"type": "resume", "after": -1}', br),
            ("resume after mistyped", '{"type": "resume", "after": "3"}', br),
            ("resume after 1e400", '{"type": "resume", "after": 1e400}', br),
            ("resume after 2^70", '{"type": "resume", "after": %s}' % BIG_INT, br),
            ("resume after 2.5", '{"type": "resume", "after": 2.5}', br),
            ("cancel unknown run", '{"type": "cancel", "run": "%s"}' % UNKNOWN_RUN, "not_found"),
            ("cancel B's run", '{"type": "cancel", "run": "%s"}' % self.rb, "not_found"),
            ("cancel traversal id", '{"type": "cancel", "run": "../../%s"}' % self.rb, "not_found"),
            ("cancel finished run", '{"type": "cancel", "run": "%s"}' % self.ra, "not_found"),
            ("cancel without run", '{"type": "cancel"}', "not_found"),
        ]
        for what, msg, code in messages:
            await ws.send(msg)
            got = await self.replies(ws)
            ok = len(got) == 1 and isinstance(got[0], dict) and got[0].get("type") == "error" and \
                got[0].get("error", {}).get("code") == code
            if not ok:
                bad.append("message [%s] %r: expected one error %s, got %s"
                           % (what, msg[:50], code, json.dumps(got, default=repr)[:300]))
        # resume after 2^63 - 1: nothing is after it, nothing was cut.
        await ws.send('{"type": "resume", "after": %s}' % INT64_MAX)
        got = await self.replies(ws)
        if got:
            bad.append("message [resume after 2^63-1]: expected nothing (no event is after it, "
                       "none was cut), got %s" % json.dumps(got)[:400])
        # Text that is not UTF-8 (raw frame): an error, or the connection closed with 1007.
        await ws.write_frame(True, 0x1, b'{"type": "run", "input": "\xff\xfe"}')
        try:
            got = await self.replies(ws)
            if not (len(got) == 1 and got[0].get("error", {}).get("code") == br):
                bad.append("message [text not UTF-8]: expected an error bad_request or close 1007, "
                           "got %s" % json.dumps(got, default=repr)[:300])
        except websockets.exceptions.ConnectionClosed:
            if ws.close_code != 1007:
                bad.append("message [text not UTF-8]: closed with %s, expected 1007" % ws.close_code)
            ws = await self.connect(self.sa, self.A)
        # 100 MB in one message: too_large, not buffered, the connection stays open.
        stop = self.watch_rss()
        base = self.rss_kb()
        t0 = time.monotonic()
        try:
            await asyncio.wait_for(ws.send('{"type": "run", "input": "%s"}' % ("x" * HUGE_BODY)), 60)
            got = await self.replies(ws, idle=2.0)
        except (websockets.exceptions.ConnectionClosed, asyncio.TimeoutError) as e:
            got = [repr(e)]
        peak = stop()
        sys.stderr.write("WebSocket 100 MB message: %.1f s, daemon RSS +%d KiB\n"
                         % (time.monotonic() - t0, peak - base))
        if not (len(got) == 1 and isinstance(got[0], dict) and
                got[0].get("error", {}).get("code") == "too_large"):
            bad.append("message [100 MB]: expected one error too_large, got %s" % json.dumps(got, default=repr)[:300])
        if peak - base > RSS_SLACK_KB:
            bad.append("message [100 MB]: the daemon's RSS grew by %d KiB: it buffers the message" % (peak - base))
        try:
            await ws.send('{"type": "ping"}')
            got = await self.replies(ws)
            if got != [{"type": "pong"}]:
                bad.append("after the bad messages: ping answered %s" % got)
        except websockets.exceptions.ConnectionClosed:
            bad.append("the connection was closed by the bad messages (close %s)" % ws.close_code)
        await ws.close()
        return bad

    def test_websocket_bad_upgrades_and_messages(self):
        before = self.snapshot()
        bad = asyncio.run(asyncio.wait_for(self.table(), self.test_timeout - 20))
        self.assertServes()
        self.assertUnchanged(before)
        self.assertEqual(bad, [], "WebSocket rows not as documented:\n" + "\n".join(bad))


if __name__ == "__main__":
    main()
