#!/usr/bin/python3
"""Shows that the hostile-agent suite fails when a protection is missing: for each mutant it
copies the committed tree (git archive HEAD) to a scratch folder, removes one protection from
the sandbox library's source, builds that ahsandbox, and runs the cases that must catch it.
A mutant "is caught" when at least one of its cases fails. Manual (not part of ctest): the
patterns follow sandbox/src as it is today, and a pattern that no longer matches is reported.

Usage: mutants.py [--keep] [MUTANT...]     (from anywhere inside the repository)"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from hostile_lib import create_user, delete_user  # noqa: E402

# name: ([(file, text to find, replacement)...], cases that must fail, run unprivileged?)
MUTANTS = {
    "badarch-kills-thread-only": (
        [("sandbox/src/seccomp.c", "SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS",
          "SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_THREAD")],
        ["22_abi32"], False),
    "no-close-fds": (
        [("sandbox/src/child.c",
          "static int step_close_fds(struct plan *plan)\n{\n\t(void)plan;\n",
          "static int step_close_fds(struct plan *plan)\n{\n\t(void)plan;\n\treturn 0;\n")],
        ["24_inherited_fds", "15_proc_tricks"], False),
    "no-setsid": (
        [("sandbox/src/child.c",
          "static int step_setsid(struct plan *plan)\n{\n\t(void)plan;\n",
          "static int step_setsid(struct plan *plan)\n{\n\t(void)plan;\n\treturn 0;\n")],
        ["25_tty_injection"], False),
    "no-pdeathsig": (
        [("sandbox/src/child.c",
          "static int step_pdeathsig(struct plan *plan)\n{\n\tint sig = 0;\n\n\t(void)plan;\n",
          "static int step_pdeathsig(struct plan *plan)\n{\n\tint sig = 0;\n\n\t(void)plan;\n"
          "\treturn 0;\n")],
        ["26_outlive_supervision"], False),
    "no-cap-drop": (
        [("sandbox/src/child.c", "\treturn sandbox__privileges_drop(plan);",
          "\treturn (void)plan, 0;")],
        ["23_threads_filter", "28_posture_outside"], False),
    "scratch-without-inode-cap": (
        [("sandbox/src/plan.c", "size=%llum,nr_inodes=%llu\",",
          "size=%llum,nr_inodes=%llu0000\",")],
        ["04_scratch_inodes"], False),
    "proc-without-subset": (
        [("sandbox/src/plan.c", 'op->data = "subset=pid";\n\top->absent = "proc/kallsyms";',
          'op->data = NULL;\n\top->absent = NULL;')],
        ["27_env_kallsyms", "15_proc_tricks"], False),
    "no-memory-cgroup-limit": (
        [("sandbox/src/cgroup.c", "\tuint64_t bytes = mb << 20;\n",
          "\tuint64_t bytes = (mb << 20) | (1ULL << 40);\n")],
        ["02_memory_bomb"], False),
    "no-process-limits": (
        [("sandbox/src/limits.c", "add(plan, RLIMIT_NPROC, l->processes, l->processes);",
          "(void)0;"),
         ("sandbox/src/cgroup.c", ': set_limit(cg->dir[i], "pids.max", limit, 1);', ": 0;")],
        ["01_fork_bomb", "29_python_agent"], False),
    "no-rlimit-nproc-unprivileged": (
        [("sandbox/src/limits.c", "add(plan, RLIMIT_NPROC, l->processes, l->processes);",
          "(void)0;")],
        ["01_fork_bomb"], True),
    "no-host-timeout": (
        [("sandbox/tools/ahsandbox.c",
          "int64_t deadline = timeout_s > 0 ? now_ms() + (int64_t)(timeout_s * 1000) : -1;",
          "int64_t deadline = timeout_s > 0 ? -1 : -1;")],
        ["03_sleep_forever"], False),
    "socket-any-family": (
        [("sandbox/profiles/default.txt", "socket a0==AF_UNIX\n", "socket\n")],
        ["07_socket_inet", "07_socket_packet_netlink", "10_vsock_alg", "11_high_bit_args",
         "08_connect_loopback"], False),
    "clone-any-flags": (
        [("sandbox/profiles/default.txt", "clone a0&0x7e020000==0\n", "clone\n")],
        ["19_namespaces_mount"], False),
    "ioctl-any-request": (
        [("sandbox/profiles/default.txt", "ioctl a1==TCGETS\n", "ioctl\n")],
        ["11_high_bit_args", "25_tty_injection"], False),
    "personality-any": (
        [("sandbox/profiles/default.txt", "personality a0==0\n", "personality\n")],
        ["20_dangerous_syscalls"], False),
}
MUTANT_USER = "ahsbx-mutants"


def sh(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, **kw)


def build_mutant(repo, name, spec, work):
    tree = os.path.join(work, name)
    os.makedirs(tree)
    archive = subprocess.Popen(["git", "-C", repo, "archive", "HEAD"], stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", tree], stdin=archive.stdout, check=True)
    archive.wait()
    for path, old, new in spec[0]:
        target = os.path.join(tree, path)
        with open(target) as f:
            text = f.read()
        if old not in text:
            return None, f"pattern not found in {path} (the source changed; update mutants.py)"
        with open(target, "w") as f:
            f.write(text.replace(old, new, 1))
    build = os.path.join(tree, "build")
    r = sh(["cmake", "-S", tree, "-B", build])
    if r.returncode == 0:
        r = sh(["cmake", "--build", build, "-j2", "--target", "ahsandbox", "sandbox_probes"])
    if r.returncode != 0:
        return None, "build failed:\n" + r.stdout[-2000:] + r.stderr[-2000:]
    return build, None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--keep", action="store_true", help="keep the mutant trees")
    parser.add_argument("mutants", nargs="*", default=list(MUTANTS))
    opts = parser.parse_args()
    repo = sh(["git", "-C", HERE, "rev-parse", "--show-toplevel"]).stdout.strip()
    work = tempfile.mkdtemp(prefix="ahsbx-mutants-", dir="/var/tmp")
    os.chmod(work, 0o755)  # the sandboxed program (nobody) mounts the probes from here
    missed = 0
    try:
        for name in opts.mutants:
            spec = MUTANTS[name]
            build, why = build_mutant(repo, name, spec, work)
            if not build:
                print(f"{name}: NOT RUN: {why}")
                missed += 1
                continue
            failing = []
            as_user = ["--as-user", MUTANT_USER] if spec[2] else []
            if spec[2] and create_user(MUTANT_USER) != 0:
                print(f"{name}: NOT RUN: no throwaway user")
                missed += 1
                continue
            for case in spec[1]:
                r = sh(["/usr/bin/python3", os.path.join(HERE, "hostile.py"), "--ahsandbox",
                        os.path.join(build, "sandbox", "ahsandbox"), "--probes",
                        os.path.join(build, "tests", "sandbox", "probes")] + as_user + [case])
                if r.returncode == 1:
                    first = next((l for l in r.stdout.splitlines() if l.startswith("FAIL")),
                                 "")
                    failing.append(f"{case} ({first[:150]})")
            if failing:
                print(f"{name}: caught by " + "; ".join(failing))
            else:
                print(f"{name}: MISSED (all of {spec[1]} passed)")
                missed += 1
    finally:
        delete_user(MUTANT_USER)
        if not opts.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
