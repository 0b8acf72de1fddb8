"""The hostile-agent suite's harness: running a probe inside ahsandbox and without it,
parsing its result lines and the final reason line, the checks every case shares, the scan for
surviving processes, and the throwaway unprivileged user. The cases are in hostile.py."""
import argparse
import errno
import os
import pty
import pwd
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid

SKIP = 77
SIGSYS_STATUS = 128 + signal.SIGSYS
TIMEOUT_STATUS = 124
OUTPUT_LIMIT_STATUS = 125
# No probe may run longer than this, sandboxed or not.
PROBE_WALL_LIMIT = 10.0

# What every run gets unless a case overrides it: loose enough for the probes' ordinary work,
# tight enough that a broken limit cannot hurt the machine.
BASE_LIMITS = {
    "--memory-mb": "256",
    "--cpu-seconds": "10",
    "--processes": "64",
    "--open-files": "256",
    "--file-size-mb": "64",
    "--scratch-mb": "64",
    "--timeout": "8",
    "--output-bytes": "1048576",
}

class Skip(Exception):
    """Raised by a case that cannot run here; the message says why."""


class Result:
    """One finished run: exit status, output, the parsed reason line and result lines."""

    def __init__(self, argv, rc, out, err, seconds, max_rss_kb=0):
        self.argv, self.rc, self.out, self.err = argv, rc, out, err
        self.seconds, self.max_rss_kb = seconds, max_rss_kb
        self.text = out.decode("utf-8", "replace")
        self.reason = {}
        # The agent's own stderr, without ahsandbox's final reason line. The line is looked
        # for at the end even when the agent's last line had no newline (a capped flood).
        self.agent_err = err
        body = err.rstrip(b"\n")
        at = body.rfind(b"ahsandbox: reason=")
        if at >= 0 and b"\n" not in body[at:]:
            self.agent_err = err[:at]
            for token in body[at + len(b"ahsandbox: "):].decode("utf-8", "replace").split():
                key, _, value = token.partition("=")
                self.reason[key] = value
        self.lines = []
        for line in self.text.splitlines():
            what, sep, value = line.partition(" = ")
            if sep:
                self.lines.append((what, value))

    def value(self, what):
        """The value of the first result line for WHAT, or None if the probe never got there."""
        for w, v in self.lines:
            if w == what:
                return v
        return None

    def values(self, prefix):
        return [(w, v) for w, v in self.lines if w.startswith(prefix)]

    def describe(self):
        err = self.err.decode("utf-8", "replace")
        out = self.text if len(self.text) < 3000 else self.text[:3000] + "...(cut)"
        return (f"  command: {' '.join(self.argv)}\n  exit status: {self.rc}, "
                f"{self.seconds:.2f} s\n  stdout:\n{indent(out)}\n  stderr:\n"
                f"{indent(err[-3000:])}")


def indent(text):
    return "\n".join("    " + line for line in text.splitlines()) or "    (empty)"


class Suite:
    """What every case needs: how to run a probe with and without the sandbox, the checks,
    and the temporary things to clean up."""

    def __init__(self, ahsandbox, probes, user):
        self.ahsandbox, self.probes, self.user = ahsandbox, probes, user
        self.failures = []
        self.checks = 0
        # Not under /tmp: ahsandbox refuses --path there (the sandbox owns its /tmp).
        self.tmp = tempfile.mkdtemp(prefix="ahsbx-hostile-", dir="/var/tmp")
        os.chmod(self.tmp, 0o755)
        self.cleanups = []

    # ---- running ----------------------------------------------------------------------

    def user_prefix(self):
        if not self.user:
            return []
        return ["setpriv", f"--reuid={self.user.pw_uid}", f"--regid={self.user.pw_gid}",
                "--clear-groups", "--"]

    def sandbox(self, probe, *args, limits=None, flags=(), marker=None, env=None,
                check_tree=True, agent_dir=None, **popen):
        """Runs /agent/PROBE ARGS in ahsandbox (the agent folder is the probes folder unless
        AGENT_DIR is given) and returns its Result; then checks that no process carrying
        this run's marker outlived it."""
        marker = marker or uuid.uuid4().hex
        merged = dict(BASE_LIMITS)
        merged.update(limits or {})
        argv = self.user_prefix() + [self.ahsandbox, "--agent-dir", agent_dir or self.probes]
        for key, value in merged.items():
            if value is not None:
                argv += [key, value]
        argv += list(flags) + ["--env", f"AHSBX_MARKER={marker}"]
        argv += ["--", probe if probe.startswith("/") else f"/agent/{probe}"] + list(args)
        res = run(argv, env=env, **popen)
        if check_tree:
            self.expect_no_survivors(marker, res)
        return res

    def plain(self, probe, *args, as_user=None, **popen):
        """Runs the probe without any sandbox (the baseline that shows the act works)."""
        prefix = []
        user = self.user if as_user is None else as_user
        if user:
            prefix = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}",
                      "--clear-groups", "--"]
        path = probe if probe.startswith("/") else os.path.join(self.probes, probe)
        return run(prefix + [path] + list(args), **popen)

    # ---- checks -----------------------------------------------------------------------

    def check(self, cond, message, res=None):
        self.checks += 1
        if cond:
            print(f"ok: {message}")
            return True
        detail = f"FAIL: {message}" + (f"\n{res.describe()}" if res else "")
        print(detail)
        self.failures.append(message)
        return False

    def expect_line(self, res, what, expected):
        got = res.value(what)
        return self.check(got == expected, f"{what} = {expected} (got {got})", res)

    def expect_exited(self, res, code=0):
        ok = res.reason.get("reason") == "exited" and res.reason.get("code") == str(code)
        return self.check(ok and res.rc == code,
                          f"reason=exited code={code}, status {code} (got {res.reason}, "
                          f"status {res.rc})", res)

    def expect_reason(self, res, reason, status):
        ok = res.reason.get("reason") == reason and res.rc == status
        return self.check(ok, f"reason={reason}, status {status} (got {res.reason}, "
                          f"status {res.rc})", res)

    def expect_violation(self, res, syscall):
        """A call outside the allowlist: the whole process is killed by SIGSYS, reported as
        sandbox_violation. ahsandbox names the call only "when known" (docs/sandbox.md: not
        known today); a name it does give must be the right one."""
        named = res.reason.get("syscall")
        ok = (res.reason.get("reason") == "sandbox_violation" and res.rc == SIGSYS_STATUS
              and res.reason.get("signal") == "SIGSYS" and named in (None, syscall))
        return self.check(ok, f"reason=sandbox_violation signal=SIGSYS [syscall={syscall}], "
                          f"status {SIGSYS_STATUS} (got {res.reason}, status {res.rc})", res)

    def expect_no_survivors(self, marker, res=None, grace=1.0):
        """No process whose environment carries MARKER may be left once its run is over."""
        deadline = time.monotonic() + grace
        while True:
            pids = marker_pids(marker)
            if not pids or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        if pids:
            kill_pids(pids)
        return self.check(not pids, f"no process of the run survives it (left: {pids})", res)

    # ---- helpers for cases ------------------------------------------------------------

    def path(self, name):
        return os.path.join(self.tmp, name)

    def program_uid(self):
        """The host uid the sandboxed program runs as: nobody when ahsandbox is started by
        root (sandbox.h SANDBOX_ROOT_HOST_UID), else the caller's own uid."""
        if self.user:
            return self.user.pw_uid
        return 65534 if os.geteuid() == 0 else os.geteuid()

    def owned_agent_dir(self, probes):
        """An agent folder whose files belong to the program's own host uid and are writable
        by their owner — the worst case, where only the read-only mount stops a write."""
        agent = self.path("agent")
        os.mkdir(agent)
        os.mkdir(os.path.join(agent, "dropbox"))
        for name in probes:
            shutil.copy2(os.path.join(self.probes, name), agent)
        with open(os.path.join(agent, "data.txt"), "w") as f:
            f.write("installed data\n")
        uid = self.program_uid()
        for root, dirs, files in os.walk(agent):
            for name in dirs + files + [""]:
                p = os.path.join(root, name)
                if os.geteuid() == 0:
                    os.lchown(p, uid, uid)
                os.chmod(p, 0o755 if os.path.isdir(p) or os.access(p, os.X_OK) else 0o644)
        return agent

    def can_baseline_as_root(self):
        """Baselines that need root (reading /etc/shadow, killing another user's process)
        only run when the suite itself is root and not in the unprivileged variant."""
        return os.geteuid() == 0 and not self.user

    def finish(self):
        for cleanup in reversed(self.cleanups):
            try:
                cleanup()
            except Exception as err:  # cleanup must go on past one failure
                print(f"cleanup error: {err}")
        shutil.rmtree(self.tmp, ignore_errors=True)


def run(argv, timeout=PROBE_WALL_LIMIT + 5, stdin=subprocess.DEVNULL, env=None, pass_fds=(),
        sample_rss=False, read_delay=0.0, preexec_fn=None, start_new_session=True):
    """Runs ARGV to its end in its own session (killed as a group if it overstays TIMEOUT),
    optionally sampling its peak RSS and delaying the first read of its output."""
    start = time.monotonic()
    proc = subprocess.Popen(argv, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env if env is not None else os.environ, pass_fds=pass_fds,
                            preexec_fn=preexec_fn, start_new_session=start_new_session)
    rss = {"max": 0}
    stop = threading.Event()
    if sample_rss:
        sampler = threading.Thread(target=sample_rss_loop, args=(proc.pid, rss, stop))
        sampler.start()
    if read_delay:
        time.sleep(read_delay)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        err += b"\n(hostile.py: killed after the test's own time limit)"
    stop.set()
    if sample_rss:
        sampler.join()
    return Result(argv, proc.returncode, out, err, time.monotonic() - start, rss["max"])


def sample_rss_loop(pid, rss, stop):
    while not stop.is_set():
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith(("VmRSS:", "VmHWM:")):
                        rss["max"] = max(rss["max"], int(line.split()[1]))
        except OSError:
            pass
        stop.wait(0.01)


def marker_pids(marker):
    """Host pids of every live process whose environment holds AHSBX_MARKER=MARKER."""
    needle = f"AHSBX_MARKER={marker}".encode()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                if needle in f.read().split(b"\0"):
                    found.append(int(name))
        except OSError:
            continue
    return found


def own_cgroups(pid):
    """The v1 memory and pids cgroup folders of PID that are not the test's own (the ones the
    sandbox made for the run), as host paths."""
    def read(p):
        groups = {}
        with open(f"/proc/{p}/cgroup") as f:
            for line in f:
                _, controllers, path = line.rstrip("\n").split(":", 2)
                for c in controllers.split(","):
                    groups[c] = path
        return groups

    mine, theirs = read("self"), read(pid)
    return [f"/sys/fs/cgroup/{c}{theirs[c]}" for c in ("memory", "pids")
            if c in theirs and theirs[c] != mine.get(c)]


def remove_leftover_cgroups(groups):
    """Removes the (empty) cgroup folders a run of this test left behind because its
    ahsandbox was killed, so that they cannot collide with a later run's names."""
    for group in groups:
        if os.path.isdir(group):
            try:
                os.rmdir(group)
                print(f"note: removed the leftover cgroup {group}")
            except OSError as err:
                print(f"note: could not remove the leftover cgroup {group}: {err}")


def kill_pids(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def start_victim(suite):
    """A host process the agent must not be able to touch; killed at cleanup."""
    victim = subprocess.Popen(["sleep", "30"], start_new_session=True)
    suite.cleanups.append(lambda: (victim.kill(), victim.wait()))
    return victim


# ---- the throwaway user -------------------------------------------------------------------


def create_user(name):
    """Creates the unprivileged account the .unpriv tests run as (idempotent)."""
    if os.geteuid() != 0:
        print("skip: not root, cannot create a throwaway user (the suite already runs "
              "unprivileged)")
        return SKIP
    try:
        pwd.getpwnam(name)
        return 0
    except KeyError:
        pass
    r = subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                        "/usr/sbin/nologin", name], capture_output=True, text=True)
    if r.returncode != 0:
        print(f"skip: useradd {name} failed: {r.stderr.strip()}")
        return SKIP
    return 0


def delete_user(name):
    if os.geteuid() != 0:
        return SKIP
    try:
        pwd.getpwnam(name)
    except KeyError:
        return 0
    r = subprocess.run(["userdel", name], capture_output=True, text=True)
    print(r.stderr.strip())
    return 0 if r.returncode == 0 else 1


def user_for(name):
    """The pwd entry of NAME, or a Skip saying why the unprivileged variant cannot run."""
    if os.geteuid() != 0:
        raise Skip("the suite is not root, so the plain run already is the unprivileged one")
    if not shutil.which("setpriv"):
        raise Skip("setpriv is missing")
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise Skip(f"user {name} does not exist (useradd failed or not root)")


def probe_access_check(suite):
    """The unprivileged user must reach ahsandbox and the probes through every parent folder."""
    r = subprocess.run(suite.user_prefix() + ["test", "-x", suite.ahsandbox, "-a", "-x",
                                              os.path.join(suite.probes, "env")])
    if r.returncode != 0:
        raise Skip(f"user {suite.user.pw_name} cannot execute {suite.ahsandbox} or the probes "
                   "(a parent folder is not world-searchable)")

