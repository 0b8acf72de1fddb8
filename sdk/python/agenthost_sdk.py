"""agenthost_sdk: the Python SDK for agenthost agents (standard library only, Python 3.9+).

Subclass Agent, override the hooks you need, and hand the class to run():

    import agenthost_sdk

    class Shout(agenthost_sdk.Agent):
        def run(self, run_id, input):
            self.emit({"heard": input})
            return str(input).upper()       # the run's output

    agenthost_sdk.run(Shout)

The SDK speaks the host protocol (docs/protocol.md) on the socket the host passed as
AGENTHOST_FD (default 3) and calls the hooks; docs/sdk-python.md has the whole model. It
imports only os, sys, json and select, because an agent's start-up time is part of every
stateless call it serves.
"""

import json
import os
import select
import sys

__all__ = ["Agent", "KV", "KVError", "ProtocolError", "run"]

PROTOCOL = 1

# The host's frames (hello, run inputs, KV values) are far below this; the SDK refuses a
# longer line instead of buffering without bound.
HOST_FRAME_MAX = 64 << 20

# Bytes asked of one read. A frame may be much longer (a 1 MiB KV value, a 2 MiB run input):
# it then takes several reads, and the part read so far waits in the connection's buffer.
_READ_SIZE = 1 << 16

_LEVELS = ("debug", "info", "warn", "error")


class ProtocolError(Exception):
    """The host sent something the protocol does not allow. The agent process ends."""


class KVError(Exception):
    """The host refused a key-value request: .code ("no_kv", "too_large", ...) and .message.
    "no_kv" means the agent runs in mode "invoke", which has no state."""

    def __init__(self, code, message):
        super().__init__("%s: %s" % (code, message))
        self.code = code
        self.message = message


class _Connection:
    """Frames over the host socket: one JSON object per line, each with a string "t"."""

    def __init__(self, fd):
        self.fd = fd
        self.buffer = bytearray()  # the start of a line whose "\n" has not come yet
        self.max_out = 0  # the host's cap on our frames (hello.max_frame_bytes); 0: unknown
        self.poller = select.poll()
        self.poller.register(fd, select.POLLIN)

    def send(self, frame):
        """Writes one frame. Raises ValueError for a frame that cannot be sent (not JSON,
        NaN, lone surrogates, over the host's cap) and OSError if the host is gone."""
        try:
            text = json.dumps(frame, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
            line = text.encode("utf-8")
        except (TypeError, UnicodeEncodeError) as e:
            raise ValueError("%s frame cannot be sent: %s" % (frame.get("t"), e)) from None
        if self.max_out and len(line) > self.max_out:
            raise ValueError(
                "%s frame of %d bytes is over the host's cap of %d bytes"
                % (frame.get("t"), len(line), self.max_out)
            )
        view = memoryview(line + b"\n")
        while view:
            view = view[os.write(self.fd, view):]

    def read(self, timeout_ms):
        """Waits up to timeout_ms (None: for ever) for bytes from the host. Returns None once
        the host has closed the connection, False if nothing arrived in time, otherwise the
        list of frames those bytes completed, which is empty when they were only part of a
        line (a frame longer than one read): the caller reads again, the host is still
        there."""
        if not self.poller.poll(timeout_ms):
            return False
        data = os.read(self.fd, _READ_SIZE)
        if not data:
            if self.buffer:
                raise ProtocolError("the host closed the connection inside a frame")
            return None
        end = data.rfind(b"\n")
        if end < 0:
            # Still inside a line: keep it, copying each byte once however long it gets.
            self.buffer += data
            if len(self.buffer) > HOST_FRAME_MAX:
                raise ProtocolError("a frame longer than %d bytes" % HOST_FRAME_MAX)
            return []
        lines = (bytes(self.buffer) + data[:end]).split(b"\n")
        self.buffer = bytearray(data[end + 1:])
        return [self._parse(line) for line in lines]

    @staticmethod
    def _parse(line):
        if line.endswith(b"\r"):
            line = line[:-1]
        if len(line) > HOST_FRAME_MAX:
            raise ProtocolError("a frame longer than %d bytes" % HOST_FRAME_MAX)
        try:
            frame = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise ProtocolError("a line that is not JSON: %s" % e) from None
        if not isinstance(frame, dict) or not isinstance(frame.get("t"), str):
            raise ProtocolError("a line that is not a frame: %.80r" % line)
        return frame


class KV:
    """The session's key-value state, kept by the host; a mapping-like view. Every operation
    is one request to the host, answered before it returns. Keys are non-empty strings;
    values are anything JSON can hold. Raises KVError when the host refuses, e.g. code
    "no_kv" in mode "invoke"."""

    def __init__(self, agent):
        self._agent = agent

    def _call(self, t, **fields):
        return self._agent._kv_call(t, fields)

    @staticmethod
    def _check(key):
        if not isinstance(key, str) or not key:
            raise TypeError("a KV key must be a non-empty string, not %r" % (key,))

    def get(self, key, default=None):
        """The value of key, or default if it has none."""
        self._check(key)
        answer = self._call("kv.get", key=key)
        return answer["value"] if "value" in answer else default

    def __getitem__(self, key):
        self._check(key)
        answer = self._call("kv.get", key=key)
        if "value" not in answer:
            raise KeyError(key)
        return answer["value"]

    def __contains__(self, key):
        self._check(key)
        return "value" in self._call("kv.get", key=key)

    def __setitem__(self, key, value):
        self._check(key)
        self._call("kv.set", key=key, value=value)

    def delete(self, key):
        """Removes key; returns whether it was there."""
        self._check(key)
        return self._call("kv.del", key=key).get("value", True) is not False

    def __delitem__(self, key):
        if not self.delete(key):
            raise KeyError(key)

    def list(self, prefix=""):
        """The keys that start with prefix, in byte order."""
        if not isinstance(prefix, str):
            raise TypeError("a KV prefix must be a string")
        keys = self._call("kv.list", prefix=prefix).get("value")
        if not isinstance(keys, list):
            raise ProtocolError("kv.list answered without a list of keys")
        return keys

    def keys(self):
        return self.list()

    def __iter__(self):
        return iter(self.list())

    def __len__(self):
        return len(self.list())


class Agent:
    """Base class of an agent. Override the hooks; call the other methods from them.

    Hooks, all optional, all called on the one thread the SDK runs on:
      create(self, hello)        once, before the first run; hello is the host's frame
                                 ("agent", "version", "mode", "session", "resumed",
                                 "config"). Raise to refuse to start (the process exits 1).
      run(self, run_id, input)   one run at a time. End it with self.done(output) or
                                 self.fail(code, message), or simply return: a return
                                 value becomes the output (after a cancel, the run ends
                                 as "cancelled" instead); an exception fails the run with
                                 code "agent_error".
      cancel(self, run_id)       the host asked to cancel the active run. Called from
                                 inside self.cancelled or a KV call; set a flag, return.
      destroy(self)              the process is about to end (destroy or hang-up).
    """

    # ---- hooks ----

    def create(self, hello):
        pass

    def run(self, run_id, input):
        raise NotImplementedError("this agent has no run method")

    def cancel(self, run_id):
        pass

    def destroy(self):
        pass

    # ---- calls ----

    @property
    def config(self):
        """The config values from hello (a dict of strings)."""
        return dict(self._hello.get("config") or {})

    @property
    def hello(self):
        """The host's hello frame."""
        return self._hello

    @property
    def run_id(self):
        """The active run's ID, or None between runs."""
        return self._run

    @property
    def kv(self):
        """The session's key-value state (see KV)."""
        return self._kv

    @property
    def cancelled(self):
        """Whether the host asked to cancel the active run. Reads what the host sent
        meanwhile without blocking, so a long run that checks it between steps sees a
        cancel at once. Also true once the host hung up or sent destroy, and between runs."""
        if self._run is None:
            return True
        for _ in range(16):
            if self._cancelled or self._hung_up or not self._pump(0):
                break
        self._report_cancel()
        return self._cancelled

    def emit(self, data):
        """Streams a piece of the active run's output to its clients."""
        self._send_for_run("event", data=data)

    def done(self, output=None):
        """Ends the active run successfully with output."""
        self._send_for_run("done", output=output)
        self._ended = True

    def fail(self, code="agent_error", message=""):
        """Ends the active run as failed. code is a short word ("cancelled" when the run
        honours a cancel); message is for humans."""
        self._send_for_run("error", code=str(code) or "agent_error", message=str(message))
        self._ended = True

    def log(self, level, msg):
        """Writes a line to the session's log ("debug", "info", "warn" or "error")."""
        if level not in _LEVELS:
            raise ValueError("log level must be one of %s" % ", ".join(_LEVELS))
        self._conn.send({"t": "log", "level": level, "msg": str(msg)})

    # ---- the engine (private) ----

    def _attach(self, conn):
        self._conn = conn
        self._hello = {}
        self._kv = KV(self)
        self._queue = []
        self._run = None
        self._ended = False
        self._cancelled = False
        self._cancel_to_report = False  # the cancel hook is still to be called
        self._early_cancels = set()  # IDs of queued runs the host already cancelled
        self._hung_up = False
        self._next_req = 0
        self._waiting = 0
        self._answer = None

    def _send_for_run(self, t, **fields):
        if self._run is None or self._ended:
            raise RuntimeError("%s: there is no active run" % t)
        frame = {"t": t, "run": self._run}
        frame.update(fields)
        self._conn.send(frame)

    def _note_cancel(self):
        if self._run is not None and not self._ended and not self._cancelled:
            self._cancelled = True
            self._cancel_to_report = True
            self._report_cancel()

    def _report_cancel(self):
        """Calls the cancel hook for a cancel not yet reported to it."""
        if self._cancel_to_report:
            self._cancel_to_report = False
            self.cancel(self._run)

    def _route(self, frame):
        """Handles a frame as soon as it is read: a KV answer goes to the waiting call, a
        cancel of the active run is applied, everything else waits in the queue."""
        t = frame["t"]
        if t == "kv.result":
            if frame.get("req") != self._waiting or self._answer is not None:
                raise ProtocolError("kv.result for a request nobody is waiting for")
            self._answer = frame
        elif t == "cancel":
            if frame.get("run") == self._run:
                self._note_cancel()
            elif any(q["t"] == "run" and q.get("run") == frame.get("run") for q in self._queue):
                # The run came in the same read (or while another call read) and has not
                # started: it starts cancelled.
                self._early_cancels.add(frame.get("run"))
        else:
            if t == "destroy":
                self._note_cancel()
            self._queue.append(frame)

    def _pump(self, timeout_ms):
        """Reads and routes what the host sent within timeout_ms. Returns whether bytes
        arrived (maybe only part of a frame); False if none did in time or once the host
        hung up, which self._hung_up tells apart."""
        if self._hung_up:
            return False
        frames = self._conn.read(timeout_ms)
        if frames is None:
            self._hung_up = True
            self._note_cancel()
            return False
        if frames is False:
            return False
        for frame in frames:
            self._route(frame)
        return True

    def _kv_call(self, t, fields):
        if self._waiting:
            raise RuntimeError("%s: a KV call is already waiting (from the cancel hook?)" % t)
        if self._hello.get("mode") == "invoke":
            raise KVError("no_kv", "no key-value state in mode invoke")
        self._next_req += 1
        frame = {"t": t, "req": self._next_req}
        frame.update(fields)
        self._conn.send(frame)
        self._waiting = self._next_req
        try:
            while self._answer is None:
                self._pump(None)
                if self._answer is None and self._hung_up:
                    raise ConnectionError("%s: the host closed the connection" % t)
            self._report_cancel()  # one that came with the run frame
        finally:
            self._waiting = 0
        answer, self._answer = self._answer, None
        if not answer.get("ok"):
            error = answer.get("error") or {}
            raise KVError(error.get("code", "error"), error.get("message", ""))
        return answer

    def _next_frame(self):
        while not self._queue:
            if self._hung_up:
                return None
            self._pump(None)
        return self._queue.pop(0)

    def _do_hello(self, frame):
        if frame.get("protocol") != PROTOCOL:
            raise ProtocolError("the host speaks protocol %r; this SDK speaks 1" % frame.get("protocol"))
        self._hello = frame
        if isinstance(frame.get("max_frame_bytes"), int):
            self._conn.max_out = frame["max_frame_bytes"]
        self.create(frame)
        self._conn.send({"t": "ready"})

    def _do_run(self, frame):
        self._run, self._ended, self._cancelled = frame.get("run"), False, False
        self._cancel_to_report = False
        if not isinstance(self._run, str) or not self._run:
            raise ProtocolError("a run without a run ID")
        if self._run in self._early_cancels:
            # Cancelled before it started: self.cancelled is true from the first look, and
            # the hook is called from there (or from the first KV call), as for any cancel.
            self._early_cancels.discard(self._run)
            self._cancelled = self._cancel_to_report = True
        try:
            output = self.run(self._run, frame.get("input"))
            if not self._ended and not self._hung_up:
                if self._cancelled:
                    self.fail("cancelled", "run cancelled")
                else:
                    self.done(output)
        except (ProtocolError, OSError):
            raise
        except Exception as e:  # the run's failure, not the agent's
            import traceback  # only now: it is not worth its import time at start-up

            sys.stderr.write("agent: run %s failed:\n" % self._run)
            traceback.print_exc()
            if not self._ended and not self._hung_up:
                self.fail("agent_error", "%s: %s" % (type(e).__name__, e))
        finally:
            self._run = None

    def _serve(self):
        """The loop: dispatches frames until destroy or hang-up. Returns the exit status."""
        ready = False
        try:
            while True:
                frame = self._next_frame()
                if frame is None or frame["t"] == "destroy":
                    break
                if frame["t"] == "hello":
                    if ready:
                        raise ProtocolError("a second hello")
                    self._do_hello(frame)
                    ready = True
                elif frame["t"] == "run":
                    if not ready:
                        raise ProtocolError("a run before hello")
                    self._do_run(frame)
                # A cancel of a run that already ended needs nothing; unknown frames
                # come from a newer host and are not for this SDK.
        except ProtocolError as e:
            sys.stderr.write("agent: protocol error from the host: %s\n" % e)
            return 1
        except (BrokenPipeError, ConnectionResetError):
            return 0  # the host hung up while we wrote: as clean as a hang-up while we read
        except OSError as e:
            sys.stderr.write("agent: host connection failed: %s\n" % e)
            return 1
        except Exception as e:
            sys.stderr.write("agent: %s: %s\n" % (type(e).__name__, e))
            return 1
        finally:
            if ready:
                self._destroy()
        return 0

    def _destroy(self):
        try:
            self.destroy()
        except Exception as e:
            sys.stderr.write("agent: destroy failed: %s: %s\n" % (type(e).__name__, e))


def _host_fd():
    text = os.environ.get("AGENTHOST_FD", "3")
    try:
        fd = int(text)
        os.fstat(fd)
    except (ValueError, OSError):
        sys.stderr.write(
            "agent: no host connection on fd %s (AGENTHOST_FD): this program is an agenthost "
            "agent and runs under agenthostd\n" % text
        )
        return None
    # Programs the agent starts must not inherit (and hold open) the host connection.
    os.set_inheritable(fd, False)
    return fd


def run(agent_class):
    """Runs an Agent subclass against the host until it is destroyed, then exits the
    process: status 0 after destroy or a clean hang-up, 1 on a protocol or connection
    error or a failed create."""
    fd = _host_fd()
    if fd is None:
        sys.exit(1)
    agent = agent_class()
    agent._attach(_Connection(fd))
    sys.exit(agent._serve())
