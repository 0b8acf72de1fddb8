"""Harness for the integration tests: starts the real agenthostd on a free loopback port
with a fresh state folder, talks HTTP to it, runs the real agentctl, and always cleans up.

Standard library only; run with /usr/bin/python3. Binary paths come from the environment
(ctest sets them): AGENTHOSTD, AGENTCTL, FIXTURES (the tests/fixtures folder).
docs/http.md is the oracle the tests check the daemon against.
"""

import atexit
import http.client
import json
import os
import re
import select
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.path.dirname(os.path.dirname(HERE))

AGENTHOSTD = os.environ.get("AGENTHOSTD", os.path.join(SOURCE_ROOT, "build", "host", "agenthostd"))
AGENTCTL = os.environ.get("AGENTCTL", os.path.join(SOURCE_ROOT, "build", "host", "ctl", "agentctl"))
FIXTURES = os.environ.get("FIXTURES", os.path.join(SOURCE_ROOT, "tests", "fixtures"))
AGENT_FIXTURES = os.path.join(FIXTURES, "agents")

STARTUP_TIMEOUT = 10.0   # seconds until /healthz must answer
STOP_TIMEOUT = 5.0       # seconds after SIGTERM before SIGKILL
HTTP_TIMEOUT = 10.0      # per request
CTL_TIMEOUT = 15.0       # per agentctl run
TEST_TIMEOUT = 60        # whole test (setUp + test + tearDown), enforced with SIGALRM

RFC3339_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")

_live_daemons = set()


def _kill_leftovers():
    # Last resort if a test run is interrupted: no daemon outlives the test process.
    for d in list(_live_daemons):
        try:
            d.proc.kill()
            d.proc.wait(timeout=5)
        except Exception:
            pass


atexit.register(_kill_leftovers)


def fixture(name):
    """Absolute path of a fixture agent folder under tests/fixtures/agents/."""
    path = os.path.join(AGENT_FIXTURES, name)
    if not os.path.isfile(os.path.join(path, "agent.json")):
        raise FileNotFoundError("fixture agent missing: " + path)
    return path


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rmtree_force(path):
    """Removes a tree even when the daemon made parts of it read-only."""
    def onerror(func, p, _exc):
        try:
            os.chmod(os.path.dirname(p), 0o700)
            if os.path.isdir(p) and not os.path.islink(p):
                os.chmod(p, 0o700)
            func(p)
        except FileNotFoundError:
            pass
    if os.path.lexists(path):
        shutil.rmtree(path, onerror=onerror)


def tree_snapshot(root, ignore=()):
    """Every path under root (relative), except names in ignore at the top level.
    Used to prove a failed operation left nothing behind."""
    out = set()
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        if rel == ".":
            dirnames[:] = [d for d in dirnames if d not in ignore]
            filenames = [f for f in filenames if f not in ignore]
        for name in dirnames + filenames:
            out.add(os.path.normpath(os.path.join(rel, name)))
    return out


class Response:
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (name, value)
        self.body = body        # bytes

    def header(self, name):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None

    def json(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise AssertionError("body is not JSON (%s): %r" % (e, self.body[:500]))

    def __repr__(self):
        return "<HTTP %d %r>" % (self.status, self.body[:300])


class CtlResult:
    def __init__(self, argv, code, out, err):
        self.argv, self.code, self.out, self.err = argv, code, out, err

    def json(self):
        try:
            return json.loads(self.out)
        except ValueError as e:
            raise AssertionError("agentctl %s printed no JSON (%s): %r" % (self.argv, e, self.out[:500]))

    def __repr__(self):
        return "<agentctl %s exit=%d out=%r err=%r>" % (" ".join(self.argv), self.code, self.out[:400], self.err[:400])


class Daemon:
    """One agenthostd process with its own state folder (kept across restart())."""

    def __init__(self, workdir, manifests=None, extra_args=(), state_dir=None):
        self.workdir = workdir
        self.state_dir = state_dir or os.path.join(workdir, "state")
        self.manifests = manifests
        self.extra_args = list(extra_args)
        self.proc = None
        self.port = None
        self.log_path = None
        self.starts = 0

    # -- process control ------------------------------------------------------
    def argv(self, port):
        argv = [AGENTHOSTD, "--listen", "127.0.0.1:%d" % port, "--state-dir", self.state_dir]
        if self.manifests:
            argv += ["--manifests", self.manifests]
        return argv + self.extra_args

    def start(self):
        assert self.proc is None, "daemon already running"
        if not os.access(AGENTHOSTD, os.X_OK):
            raise AssertionError("agenthostd not found or not executable: %s" % AGENTHOSTD)
        self.starts += 1
        self.port = free_port()
        self.log_path = os.path.join(self.workdir, "agenthostd.%d.log" % self.starts)
        log = open(self.log_path, "wb")
        try:
            self.proc = subprocess.Popen(self.argv(self.port), stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        finally:
            log.close()
        _live_daemons.add(self)
        self._wait_healthy()
        return self

    def _wait_healthy(self):
        deadline = time.monotonic() + STARTUP_TIMEOUT
        last = None
        while time.monotonic() < deadline:
            code = self.proc.poll()
            if code is not None:
                self._forget()
                raise AssertionError("agenthostd exited with %d during start-up:\n%s" % (code, self.log()))
            try:
                r = self.request("GET", "/healthz", timeout=1.0)
                if r.status == 200:
                    return
                last = r
            except OSError as e:
                last = e
            time.sleep(0.02)
        self.kill()
        raise AssertionError("agenthostd did not answer GET /healthz within %.0f s (last: %r):\n%s"
                             % (STARTUP_TIMEOUT, last, self.log()))

    def stop(self, expect_code=0):
        """SIGTERM, wait up to STOP_TIMEOUT, then SIGKILL. Returns the exit status and
        fails the test if it is not expect_code (None: anything)."""
        if self.proc is None:
            return None
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
            self._forget()
            raise AssertionError("agenthostd ignored SIGTERM for %.0f s (killed):\n%s" % (STOP_TIMEOUT, self.log()))
        self._forget()
        if expect_code is not None and code != expect_code:
            raise AssertionError("agenthostd exited with %d on SIGTERM, expected %d:\n%s" % (code, expect_code, self.log()))
        return code

    def kill(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=5)
            self._forget()

    def restart(self):
        self.stop()
        return self.start()

    def _forget(self):
        _live_daemons.discard(self)
        self.proc = None

    def log(self, limit=6000):
        try:
            with open(self.log_path, "rb") as f:
                data = f.read()
        except (OSError, TypeError):
            return "(no log)"
        text = data.decode("utf-8", "replace")
        return text if len(text) <= limit else "...\n" + text[-limit:]

    # -- state folder ---------------------------------------------------------
    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    @property
    def token_path(self):
        return os.path.join(self.state_dir, "admin.token")

    @property
    def admin_token(self):
        with open(self.token_path) as f:
            return f.read().strip()

    def agent_dir(self, name, version=None):
        p = os.path.join(self.state_dir, "agents", name)
        return os.path.join(p, version) if version else p

    # -- HTTP -----------------------------------------------------------------
    def request(self, method, path, body=None, headers=None, token=None, timeout=HTTP_TIMEOUT):
        """One request on a fresh connection. body: bytes, str, or anything else (sent as
        JSON with Content-Type application/json). token: a bearer token, or None."""
        hdrs = {}
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            hdrs["Content-Type"] = "application/json"
        if isinstance(body, str):
            body = body.encode("utf-8")
        if token is not None:
            hdrs["Authorization"] = "Bearer " + token
        hdrs.update(headers or {})
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=hdrs)
            r = conn.getresponse()
            return Response(r.status, r.reason, r.getheaders(), r.read())
        finally:
            conn.close()

    def admin(self, method, path, body=None, headers=None):
        return self.request(method, path, body=body, headers=headers, token=self.admin_token)

    def install(self, path):
        return self.admin("POST", "/v1/agents", {"path": path})

    def raw_exchange(self, head, body_chunks, timeout=HTTP_TIMEOUT):
        """Sends a raw request head, then body chunks, stopping as soon as the server
        answers (it may answer and close before the body is all sent, e.g. 413). Returns
        (status, headers dict lower-cased, body bytes, bytes of body sent)."""
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        sent = 0
        try:
            sock.sendall(head)
            sock.setblocking(False)
            deadline = time.monotonic() + timeout
            stopped = False
            for chunk in body_chunks:
                view = memoryview(chunk)
                while view and not stopped:
                    if time.monotonic() > deadline:
                        raise AssertionError("server neither read the body nor answered within %.0f s" % timeout)
                    readable, writable, _ = select.select([sock], [sock], [], 1.0)
                    if readable:
                        stopped = True  # the server answered (or closed) early
                    elif writable:
                        try:
                            n = sock.send(view)
                        except (BrokenPipeError, ConnectionResetError):
                            stopped = True
                            break
                        view = view[n:]
                        sent += n
                if stopped:
                    break
            sock.setblocking(True)
            sock.settimeout(max(0.5, deadline - time.monotonic()))
            data = b""
            try:
                while not _complete_response(data):
                    part = sock.recv(65536)
                    if not part:
                        break
                    data += part
            except (ConnectionResetError, socket.timeout):
                pass
        finally:
            sock.close()
        status, headers, body = _parse_response(data)
        return status, headers, body, sent


def _complete_response(data):
    if b"\r\n\r\n" not in data:
        return False
    head, rest = data.split(b"\r\n\r\n", 1)
    m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    return m is not None and len(rest) >= int(m.group(1))


def _parse_response(data):
    if b"\r\n\r\n" not in data:
        raise AssertionError("no complete HTTP response received: %r" % data[:300])
    head, rest = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    m = re.match(r"HTTP/1\.[01] (\d{3})", lines[0])
    if not m:
        raise AssertionError("bad status line: %r" % lines[0])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    if "content-length" in headers:
        rest = rest[:int(headers["content-length"])]
    return int(m.group(1)), headers, rest


class _TestTimeout(Exception):
    pass


def _on_alarm(_signum, _frame):
    raise _TestTimeout("test exceeded %d s" % TEST_TIMEOUT)


class DaemonTestCase(unittest.TestCase):
    """Each test gets a temp folder and (unless start_daemon is False) a running daemon in
    self.d. Everything is stopped and removed even when the test fails; a daemon that
    does not exit 0 on SIGTERM fails the test."""

    start_daemon = True
    daemon_args = ()

    def setUp(self):
        signal.signal(signal.SIGALRM, _on_alarm)
        signal.alarm(TEST_TIMEOUT)
        self.addCleanup(signal.alarm, 0)
        self.tmp = tempfile.mkdtemp(prefix="ahinteg-")
        # As root, agents and install commands run as nobody, which must be able to walk
        # down to STATE/agents (docs/sandbox.md): traversable, not listable.
        os.chmod(self.tmp, 0o711)
        self.addCleanup(rmtree_force, self.tmp)
        self.d = None
        if self.start_daemon:
            self.d = self.new_daemon(extra_args=self.daemon_args).start()

    def new_daemon(self, **kw):
        """A daemon in its own subfolder of self.tmp (not started). Stopped at cleanup,
        where a nonzero exit on SIGTERM fails the test."""
        sub = tempfile.mkdtemp(prefix="d", dir=self.tmp)
        os.chmod(sub, 0o711)
        d = Daemon(sub, **kw)
        self.addCleanup(d.stop)
        return d

    def copy_fixture(self, name, dest_name=None):
        """A private copy of a fixture agent folder that the test may modify."""
        dest = os.path.join(self.tmp, "src", dest_name or name)
        shutil.copytree(fixture(name), dest, symlinks=True)
        return dest

    def write_agent(self, folder_name, manifest, files=None):
        """Writes an agent folder in the temp folder from a manifest dict (or raw str)."""
        dest = os.path.join(self.tmp, "src", folder_name)
        os.makedirs(dest)
        with open(os.path.join(dest, "agent.json"), "w") as f:
            f.write(manifest if isinstance(manifest, str) else json.dumps(manifest, indent=2))
        for rel, content in (files or {"run.sh": "#!/bin/sh\nexec cat\n"}).items():
            p = os.path.join(dest, rel)
            with open(p, "w") as f:
                f.write(content)
            os.chmod(p, 0o755)
        return dest

    # -- agentctl -------------------------------------------------------------
    def ctl(self, *args, daemon=None, token=None, url=None, state_dir=True, cwd=None,
            timeout=CTL_TIMEOUT, env=None):
        """Runs agentctl with --url and --state-dir of the daemon (so the admin token is
        read from STATE/admin.token) unless told otherwise. Returns a CtlResult."""
        if not os.access(AGENTCTL, os.X_OK):
            raise AssertionError("agentctl not found or not executable: %s" % AGENTCTL)
        d = daemon or self.d
        argv = [AGENTCTL]
        if url is not False:
            argv += ["--url", url or d.url]
        if state_dir is True and d is not None:
            argv += ["--state-dir", d.state_dir]
        elif isinstance(state_dir, str):
            argv += ["--state-dir", state_dir]
        if token:
            argv += ["--token", token]
        argv += list(args)
        e = {k: v for k, v in os.environ.items() if not k.startswith("AGENTHOST_")}
        e.update(env or {})
        try:
            p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout,
                               cwd=cwd or self.tmp, env=e)
        except subprocess.TimeoutExpired:
            raise AssertionError("agentctl %s did not finish within %.0f s" % (argv[1:], timeout))
        return CtlResult(argv[1:], p.returncode, p.stdout.decode("utf-8", "replace"),
                         p.stderr.decode("utf-8", "replace"))

    def assertCtlOk(self, res):
        self.assertEqual(res.code, 0, "agentctl failed: %r" % res)
        return res

    def assertCtlError(self, res, code, *needles):
        """Exit status code, nothing important on stdout, exactly one line on stderr
        mentioning every needle (case-insensitive)."""
        self.assertEqual(res.code, code, "wrong exit status: %r" % res)
        lines = [l for l in res.err.splitlines() if l.strip()]
        self.assertEqual(len(lines), 1, "error must be one line on stderr: %r" % res)
        for n in needles:
            self.assertIn(n.lower(), lines[0].lower(), "stderr does not mention %r: %r" % (n, res))
        return lines[0]

    # -- HTTP assertions ------------------------------------------------------
    def assertStatus(self, r, status):
        self.assertEqual(r.status, status, "expected HTTP %d, got %r" % (status, r))
        return r

    def assertError(self, r, status, code, *needles):
        """Status, JSON body exactly {"error": {"code": code, "message": non-empty}},
        and the message mentions every needle (case-insensitive). Returns the message."""
        self.assertEqual(r.status, status, "expected HTTP %d %s, got %r" % (status, code, r))
        body = r.json()
        self.assertIsInstance(body, dict, r)
        self.assertEqual(set(body), {"error"}, "error body must have only 'error': %r" % r)
        err = body["error"]
        self.assertIsInstance(err, dict, r)
        self.assertEqual(set(err) - {"details"}, {"code", "message"}, "error object keys: %r" % r)
        self.assertEqual(err["code"], code, r)
        self.assertIsInstance(err["message"], str, r)
        self.assertTrue(err["message"].strip(), "empty error message: %r" % r)
        for n in needles:
            self.assertIn(n.lower(), err["message"].lower(), "message does not mention %r: %r" % (n, r))
        ctype = r.header("Content-Type") or ""
        self.assertTrue(ctype.startswith("application/json"), "error Content-Type %r: %r" % (ctype, r))
        return err["message"]

    def assertNoTrace(self, d, before, name):
        """A failed install left nothing: not listed, no folder, no new file in STATE."""
        r = self.assertStatus(d.admin("GET", "/v1/agents"), 200)
        self.assertNotIn(name, [a["name"] for a in r.json()["agents"]])
        self.assertStatus(d.admin("GET", "/v1/agents/" + name), 404)
        self.assertFalse(os.path.lexists(d.agent_dir(name)), "left behind: " + d.agent_dir(name))
        after = state_snapshot(d)
        self.assertEqual(after - before, set(), "files left behind in the state folder")


def state_snapshot(d):
    """The state folder's paths, minus the SQLite files and logs that change anyway."""
    skip = set()
    for f in os.listdir(d.state_dir):
        if re.search(r"\.(db|sqlite|sqlite3)(-wal|-shm|-journal)?$", f) or f.endswith(".log") or f.endswith(".lock") or f.endswith(".pid"):
            skip.add(f)
    return tree_snapshot(d.state_dir, ignore=skip)


def metric(text, name, labels=None):
    """Value of one Prometheus sample in text (0.0 when absent)."""
    want = labels or {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)", line)
        if not m or m.group(1) != name:
            continue
        got = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        if got == want:
            return float(m.group(4))
    return 0.0


def main():
    unittest.main(verbosity=2)


# -- helpers for the agent-running tests (invoke, examples) ----------------------------------
# Folders that ctest passes: EXAMPLES (BUILD/examples, the installable example agents) and
# PROBES (BUILD/tests/sandbox/probes, the hostile suite's probe programs).
EXAMPLES = os.environ.get("EXAMPLES", os.path.join(SOURCE_ROOT, "build", "examples"))
PROBES = os.environ.get("PROBES", os.path.join(SOURCE_ROOT, "build", "tests", "sandbox", "probes"))


def example(name):
    """Absolute path of a built example agent folder (BUILD/examples/NAME)."""
    path = os.path.join(EXAMPLES, name)
    if not os.path.isfile(os.path.join(path, "agent.json")):
        raise AssertionError("built example agent missing (build first): " + path)
    return path


def wait_until(predicate, timeout, interval=0.02):
    """Calls predicate until it returns a true value or timeout seconds pass; returns the
    last value (false on timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def parse_sse(text):
    """Parses an event stream (str) into [{"id", "event", "data" (parsed JSON)}] in order.
    Fails on a field other than id/event/data or data that is not JSON."""
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        if not block.strip():
            continue
        ev = {}
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            if value.startswith(" "):
                value = value[1:]
            if name not in ("id", "event", "data"):
                raise AssertionError("unexpected SSE field %r in %r" % (name, block))
            ev[name] = ev[name] + "\n" + value if name == "data" and name in ev else value
        if "data" in ev:
            try:
                ev["data"] = json.loads(ev["data"])
            except ValueError as e:
                raise AssertionError("SSE data is not JSON (%s): %r" % (e, ev["data"]))
        events.append(ev)
    return events


class SSEStream:
    """A streaming request (Accept: text/event-stream) read event by event as they arrive.
    status/headers are those of the response; next_event() returns the next event dict
    (id, event, data parsed, at = monotonic arrival time) or None at the end of the stream."""

    def __init__(self, daemon, method, path, body=None, token=None, headers=None,
                 timeout=HTTP_TIMEOUT):
        hdrs = {"Accept": "text/event-stream"}
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            hdrs["Content-Type"] = "application/json"
        if isinstance(body, str):
            body = body.encode("utf-8")
        if token is not None:
            hdrs["Authorization"] = "Bearer " + token
        hdrs.update(headers or {})
        self.started = time.monotonic()
        self.conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=timeout)
        self.conn.request(method, path, body=body, headers=hdrs)
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.headers = self.resp.getheaders()
        self.raw = b""

    def header(self, name):
        return self.resp.getheader(name)

    def next_event(self):
        block = b""
        while True:
            line = self.resp.readline()
            if not line:
                if block.strip():
                    raise AssertionError("stream ended inside an event: %r" % block)
                return None
            self.raw += line
            if line in (b"\n", b"\r\n"):
                if block.strip():
                    evs = parse_sse(block.decode("utf-8"))
                    if evs:
                        evs[0]["at"] = time.monotonic()
                        return evs[0]
                block = b""
                continue
            block += line

    def events(self, limit=10000):
        """Every remaining event until the server closes the stream."""
        out = []
        while len(out) < limit:
            ev = self.next_event()
            if ev is None:
                break
            out.append(ev)
        return out

    def close(self):
        """Closes the connection at once (the client going away)."""
        try:
            if self.conn.sock is not None:
                self.conn.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.resp.close()
        self.conn.close()


def daemon_metrics(d):
    """GET /metrics as text (asserting 200)."""
    r = d.request("GET", "/metrics")
    if r.status != 200:
        raise AssertionError("GET /metrics answered %r" % r)
    return r.body.decode("utf-8")


def child_pids(pid):
    """Live (not zombie) processes whose parent is pid: the daemon's agent processes."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                stat_line = f.read()
        except OSError:
            continue
        # comm may hold spaces and parentheses: the fields after the last ')' are fixed.
        fields = stat_line[stat_line.rfind(")") + 2:].split()
        if len(fields) >= 2 and fields[0] != "Z" and int(fields[1]) == pid:
            out.append(int(entry))
    return out


def pid_alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat_line = f.read()
    except OSError:
        return False
    return stat_line[stat_line.rfind(")") + 2:].split()[0] != "Z"


def merge_json(base, changes):
    """base updated with changes, recursively for objects (a None value removes the key)."""
    out = dict(base)
    for k, v in changes.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge_json(out[k], v)
        else:
            out[k] = v
    return out


def agent_variant(src, dest, changes, files=()):
    """Copies the agent folder src to dest (which must not exist), rewrites its agent.json
    merged with changes (see merge_json), and copies each path in files into it. Returns
    dest. For variants of the built examples: an agent folder cannot hold a symlink to the
    build output, so variants are made at test time."""
    shutil.copytree(src, dest, symlinks=False)
    os.chmod(dest, 0o755)
    with open(os.path.join(dest, "agent.json")) as f:
        manifest = json.load(f)
    with open(os.path.join(dest, "agent.json"), "w") as f:
        json.dump(merge_json(manifest, changes), f, indent=2)
    for path in files:
        shutil.copy2(path, dest)
    return dest


RUN_ID = re.compile(r"^r_[0-9a-f]{32}$")
RUN_RESULT_KEYS = {"id", "status", "created_at", "started_at", "finished_at"}


class AgentDaemonTestCase(DaemonTestCase):
    """A daemon started with --manifests EXAMPLES (echo, slow, upper-py installed), called
    with the admin token (self.token), and the run-result and event-stream checks of
    docs/http.md ("Runs, events and stateless calls")."""

    start_daemon = False

    def setUp(self):
        super().setUp()
        for name in ("echo", "slow", "upper-py"):
            example(name)  # fails early, naming the folder, when the examples are not built
        self.d = self.new_daemon(manifests=EXAMPLES).start()
        self.token = self.d.admin_token

    def invoke(self, name, body, query="", token=True, headers=None, timeout=30):
        """POST /v1/agents/NAME/invoke; token True = the admin token."""
        return self.d.request("POST", "/v1/agents/%s/invoke%s" % (name, query), body,
                              token=self.token if token is True else token, headers=headers,
                              timeout=timeout)

    def stream(self, name, body, query="", timeout=30):
        """An SSE call (asserted 200, text/event-stream), closed at cleanup."""
        s = SSEStream(self.d, "POST", "/v1/agents/%s/invoke%s" % (name, query), body,
                      token=self.token, timeout=timeout)
        self.addCleanup(s.close)
        if s.status != 200:
            self.fail("SSE call answered %d: %r" % (s.status, s.resp.read()[:300]))
        ctype = s.header("Content-Type") or ""
        self.assertTrue(ctype.startswith("text/event-stream"), "Content-Type %r" % ctype)
        return s

    def install_variant(self, src, name, changes=None, files=()):
        """Installs a copy of the agent folder src renamed NAME with its agent.json merged
        with changes (agent_variant). Returns NAME."""
        dest = agent_variant(src, os.path.join(self.tmp, "src", name),
                             merge_json({"name": name}, changes or {}), files)
        r = self.d.install(dest)
        self.assertEqual(r.status, 201, "install of %s failed: %r" % (name, r))
        return name

    def assertRunResult(self, r, status):
        """200, application/json, the run result of docs/http.md with this status.
        Returns the result object."""
        self.assertStatus(r, 200)
        ctype = r.header("Content-Type") or ""
        self.assertTrue(ctype.startswith("application/json"), "Content-Type %r: %r" % (ctype, r))
        res = r.json()
        self.assertIsInstance(res, dict, r)
        self.assertTrue(RUN_RESULT_KEYS <= set(res),
                        "result lacks %s: %r" % (RUN_RESULT_KEYS - set(res), res))
        self.assertRegex(res["id"], RUN_ID)
        self.assertEqual(res["status"], status, res)
        for k in ("created_at", "started_at", "finished_at"):
            self.assertRegex(res[k], RFC3339_MS, res)
        self.assertLessEqual(res["created_at"], res["started_at"], res)
        self.assertLessEqual(res["started_at"], res["finished_at"], res)
        if status == "completed":
            self.assertIn("output", res, "a completed run has output (maybe null): %r" % res)
            self.assertNotIn("error", res, res)
        else:
            self.assertIn("error", res, res)
            self.assertNotIn("output", res, res)
            err = res["error"]
            self.assertIsInstance(err, dict, res)
            self.assertEqual(set(err), {"code", "message"}, res)
            self.assertTrue(isinstance(err["message"], str) and err["message"].strip(), res)
        return res

    def assertEventStream(self, events, terminal):
        """The SSE form of docs/http.md: id lines 1..N, event == data.type, data.seq == id,
        one run ID throughout, RFC 3339 times, run.started first, run.output in between,
        exactly one terminal event, last. Returns the run ID."""
        self.assertTrue(events, "no events")
        run = events[0]["data"].get("run")
        self.assertRegex(run or "", RUN_ID, events[0])
        for i, ev in enumerate(events, 1):
            self.assertEqual(ev.get("id"), str(i), "id: lines must count 1..N: %r" % events)
            data = ev["data"]
            self.assertEqual(ev.get("event"), data.get("type"), ev)
            self.assertEqual(data.get("seq"), i, ev)
            self.assertEqual(data.get("run"), run, ev)
            self.assertRegex(data.get("time", ""), RFC3339_MS, ev)
        types = [ev["event"] for ev in events]
        self.assertEqual(types[0], "run.started", types)
        self.assertEqual(types[-1], terminal, types)
        self.assertTrue(all(t == "run.output" for t in types[1:-1]), types)
        if terminal == "run.completed":
            self.assertIn("output", events[-1]["data"], events[-1])
        else:
            err = events[-1]["data"].get("error")
            self.assertIsInstance(err, dict, events[-1])
            self.assertEqual(set(err), {"code", "message"}, events[-1])
        return run
