"""pyprobe.py MODE: the Python agent's view of the hostile rows — opening network sockets,
forking until refused, reading secrets — printing the same "WHAT = RESULT" lines as the C
probes, so the python seccomp profile is tested the way a CPython agent would trip it."""
import errno
import os
import socket
import sys
import time


def report(what, func):
    try:
        value = func()
    except OSError as err:
        name = errno.errorcode.get(err.errno, str(err.errno))
        print(f"{what} = -1 {name}", flush=True)
        return None
    shown = value.fileno() if hasattr(value, "fileno") else value
    print(f"{what} = {shown}", flush=True)
    return value


def fork_bomb(limit):
    children = []
    while len(children) < limit:
        try:
            pid = os.fork()
        except OSError as err:
            print(f"os.fork = -1 {errno.errorcode[err.errno]}", flush=True)
            break
        if pid == 0:
            time.sleep(60)
            os._exit(0)
        children.append(pid)
    print(f"forks succeeded = {len(children)}", flush=True)


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode == "inet":
        report("socket(AF_INET,SOCK_STREAM)", lambda: socket.socket(socket.AF_INET))
    elif mode == "inet6":
        report("socket(AF_INET6,SOCK_DGRAM)",
               lambda: socket.socket(socket.AF_INET6, socket.SOCK_DGRAM))
    elif mode == "unix":
        report("socket(AF_UNIX,SOCK_STREAM)", lambda: socket.socket(socket.AF_UNIX))
    elif mode == "forkbomb":
        fork_bomb(int(sys.argv[2]) if len(sys.argv) > 2 else 4096)
    elif mode == "secret":
        report(f"open({sys.argv[2]})", lambda: os.open(sys.argv[2], os.O_RDONLY))
    elif mode == "work":
        # Ordinary CPython work the profile must allow: imports, threads, subprocess-free I/O.
        import json, threading, tempfile
        t = threading.Thread(target=lambda: None)
        t.start()
        t.join()
        with tempfile.NamedTemporaryFile(dir=os.environ.get("TMPDIR", "/scratch")) as f:
            f.write(json.dumps({"ok": True}).encode())
        print("python work = ok", flush=True)
    else:
        print("usage: pyprobe.py inet|inet6|unix|forkbomb [N]|secret PATH|work",
              file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
