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

# name: (file, text to find, replacement, cases that must fail)
MUTANTS = {
    "badarch-kills-thread-only": (
        "sandbox/src/seccomp.c",
        "SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS",
        "SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_THREAD",
        ["22_abi32"]),
    "no-close-fds": (
        "sandbox/src/child.c",
        "static int step_close_fds(struct plan *plan)\n{\n\t(void)plan;\n",
        "static int step_close_fds(struct plan *plan)\n{\n\t(void)plan;\n\treturn 0;\n",
        ["24_inherited_fds", "15_proc_tricks"]),
    "no-setsid": (
        "sandbox/src/child.c",
        "static int step_setsid(struct plan *plan)\n{\n\t(void)plan;\n",
        "static int step_setsid(struct plan *plan)\n{\n\t(void)plan;\n\treturn 0;\n",
        ["25_tty_injection"]),
    "no-pdeathsig": (
        "sandbox/src/child.c",
        "static int step_pdeathsig(struct plan *plan)\n{\n\tint sig = 0;\n\n\t(void)plan;\n",
        "static int step_pdeathsig(struct plan *plan)\n{\n\tint sig = 0;\n\n\t(void)plan;\n"
        "\treturn 0;\n",
        ["26_outlive_supervision"]),
    "scratch-without-inode-cap": (
        "sandbox/src/plan.c",
        "size=%llum,nr_inodes=%llu\",",
        "size=%llum,nr_inodes=%llu0000\",",
        ["04_scratch_inodes"]),
    "proc-without-subset": (
        "sandbox/src/plan.c",
        'op->data = "subset=pid";\n\top->absent = "proc/kallsyms";',
        'op->data = NULL;\n\top->absent = NULL;',
        ["27_env_kallsyms", "15_proc_tricks"]),
    "socket-any-family": (
        "sandbox/profiles/default.txt",
        "socket a0==AF_UNIX\n",
        "socket\n",
        ["07_socket_inet", "07_socket_packet_netlink", "10_vsock_alg", "11_high_bit_args",
         "08_connect_loopback"]),
    "clone-any-flags": (
        "sandbox/profiles/default.txt",
        "clone a0&0x7e020000==0\n",
        "clone\n",
        ["19_namespaces_mount"]),
    "ioctl-any-request": (
        "sandbox/profiles/default.txt",
        "ioctl a1==TCGETS\n",
        "ioctl\n",
        ["11_high_bit_args", "25_tty_injection"]),
    "personality-any": (
        "sandbox/profiles/default.txt",
        "personality a0==0\n",
        "personality\n",
        ["20_dangerous_syscalls"]),
}


def sh(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, **kw)


def build_mutant(repo, name, spec, work):
    path, old, new, _ = spec
    tree = os.path.join(work, name)
    os.makedirs(tree)
    archive = subprocess.Popen(["git", "-C", repo, "archive", "HEAD"], stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", tree], stdin=archive.stdout, check=True)
    archive.wait()
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
            for case in spec[3]:
                r = sh(["/usr/bin/python3", os.path.join(HERE, "hostile.py"), "--ahsandbox",
                        os.path.join(build, "sandbox", "ahsandbox"), "--probes",
                        os.path.join(build, "tests", "sandbox", "probes"), case])
                if r.returncode == 1:
                    first = next((l for l in r.stdout.splitlines() if l.startswith("FAIL")),
                                 "")
                    failing.append(f"{case} ({first[:150]})")
            if failing:
                print(f"{name}: caught by " + "; ".join(failing))
            else:
                print(f"{name}: MISSED (all of {spec[3]} passed)")
                missed += 1
    finally:
        if not opts.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
