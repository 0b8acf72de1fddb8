"""test_install.py: installs the C SDK from the build tree into a temporary prefix, builds
the example agent of docs/sdk-c.md with pkg-config (shared and static), and runs each
against the fake host of test_sdk.py: two runs of one session count 1 and 2 in its state.

Usage: /usr/bin/python3 test_install.py --build BUILD --doc docs/sdk-c.md [--cc CC]
       [--cflags=FLAGS]
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_sdk  # noqa: E402  (the fake host)

ARGS = None


def doc_program(path):
    """The first ```c block of the doc."""
    with open(path, encoding="utf-8") as f:
        match = re.search(r"```c\n(.*?)```", f.read(), re.S)
    return match.group(1)


def pkg_config(prefix_pc, *args):
    env = dict(os.environ, PKG_CONFIG_PATH=prefix_pc)
    out = subprocess.run(["pkg-config"] + list(args), env=env, check=True,
                         capture_output=True, text=True)
    return out.stdout.split()


class InstalledSDK(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        prefix = os.path.join(cls.tmp.name, "prefix")
        subprocess.run(["cmake", "--install", os.path.join(ARGS.build, "sdk", "c"),
                        "--prefix", prefix], check=True, capture_output=True)
        pcs = [os.path.join(d, f) for d, _, fs in os.walk(prefix) for f in fs
               if f == "agentsdk.pc"]
        assert len(pcs) == 1, pcs
        cls.pc_dir = os.path.dirname(pcs[0])
        cls.source = os.path.join(cls.tmp.name, "counter.c")
        with open(cls.source, "w", encoding="utf-8") as f:
            f.write(doc_program(ARGS.doc))

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def build(self, static):
        out = os.path.join(self.tmp.name, "counter-static" if static else "counter")
        cflags = pkg_config(self.pc_dir, "--cflags", "agentsdk")
        if static:
            libdir = pkg_config(self.pc_dir, "--variable=libdir", "agentsdk")[0]
            libs = [os.path.join(libdir, "libagentsdk.a")] + pkg_config(
                self.pc_dir, "--libs", "jansson")
        else:
            libs = pkg_config(self.pc_dir, "--libs", "agentsdk")
        subprocess.run([ARGS.cc, "-Wall", "-Wextra", "-Werror", self.source, "-o", out]
                       + ARGS.cflags.split() + cflags + libs, check=True)
        return out, pkg_config(self.pc_dir, "--variable=libdir", "agentsdk")[0]

    def count_twice(self, program, libdir):
        host = test_sdk.FakeHost([program], env={"LD_LIBRARY_PATH": libdir})
        try:
            host.start()
            for n in (1, 2):
                host.run("r_%d" % n, "hi")
                end, events = host.until_end("r_%d" % n)
                self.assertEqual(end["output"], {"count": n})
                self.assertEqual(events, [{"input": "hi"}])
            self.assertEqual(host.kv, {"count": 2})
            host.send({"t": "destroy"})
            self.assertEqual(host.wait(), 0)
        finally:
            host.finish()

    def test_shared(self):
        self.count_twice(*self.build(static=False))

    def test_static(self):
        program, libdir = self.build(static=True)
        needed = subprocess.run(["ldd", program], capture_output=True, text=True).stdout
        self.assertNotIn("libagentsdk", needed)
        self.count_twice(program, libdir)

    def test_only_agent_symbols_exported(self):
        lib = os.path.join(pkg_config(self.pc_dir, "--variable=libdir", "agentsdk")[0],
                           "libagentsdk.so")
        out = subprocess.run(["nm", "-D", "--defined-only", lib], capture_output=True,
                             text=True, check=True).stdout
        names = [line.split()[-1].split("@")[0] for line in out.splitlines() if line.strip()]
        self.assertIn("agent_main", names)
        self.assertEqual([n for n in names if not n.startswith("agent_")
                          and not n.startswith("AGENTSDK")], [])


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", required=True)
    parser.add_argument("--doc", required=True)
    parser.add_argument("--cc", default="cc")
    parser.add_argument("--cflags", default="", help="extra flags, e.g. for sanitizers")
    ARGS, rest = parser.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
