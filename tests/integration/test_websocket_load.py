"""Many WebSocket sessions at once (docs/websocket.md; issue 6 item 5): SESSIONS sessions of
the echo example, each driven over its own WebSocket by one asyncio loop, each doing RUNS
runs with refs, every event of every run checked. Timings are printed on stderr.

Run with /usr/bin/python3 (Debian's python3-websockets is the client).
"""

import asyncio
import concurrent.futures
import os
import resource
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_websocket import WSTestCase, brief, seqs, ws_connections  # noqa: E402

SESSIONS = 1000
RUNS = 10
CONNECT_AT_ONCE = 100   # handshakes in flight at a time
END = ("run.completed", "run.failed", "run.cancelled", "error")


def raise_nofile(want):
    """Raises this process's soft RLIMIT_NOFILE (the daemon, started after, inherits it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class ManySessions(WSTestCase):
    # Past the default --max-sessions (1024) would hibernate sessions; keep them all live.
    daemon_args = ("--max-sessions", str(SESSIONS + 100))
    test_timeout = 200

    def setUp(self):
        # each session: an agent process (2 fds in the daemon), a WebSocket on both sides,
        # plus HTTP connections while creating
        self.nofile = raise_nofile(max(4 * SESSIONS + 1024, 8192))
        if self.nofile < 3 * SESSIONS + 256:
            raise AssertionError("RLIMIT_NOFILE %d is too low for %d WebSocket sessions and its "
                                 "hard limit cannot be raised" % (self.nofile, SESSIONS))
        super().setUp()

    def test_concurrent_sessions_each_doing_runs(self):
        t0 = time.monotonic()

        def create(_):
            return self.new_session("echo")

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            ids = list(pool.map(create, range(SESSIONS)))
        self.assertEqual(len(set(ids)), SESSIONS)
        t_created = time.monotonic() - t0
        stats = {}

        async def one(i, sid, gate):
            async with gate:
                c = await self.connect(sid, name="ws%d" % i)
            latencies = []
            for j in range(RUNS):
                text = "s%d r%d %s" % (i, j, " ".join(["w%d" % k for k in range(j % 4)]))
                ref = "%d/%d" % (i, j)
                t = time.monotonic()
                await c.send({"type": "run", "input": text, "ref": ref})
                evs = await c.recv_until(lambda m: m.get("type") in END, timeout=60)
                latencies.append(time.monotonic() - t)
                self.assertEqual(evs[-1].get("type"), "run.completed", "%s run %s: %s"
                                 % (c.name, ref, brief(evs[-3:])))
                self.assertEchoRun(evs, text, ref=ref)
            n = sum(len(("s%d r%d" % (i, j)).split()) + j % 4 + 2 for j in range(RUNS))
            self.assertEqual(seqs(c.got), list(range(1, n + 1)), "%s: every event once, in order" % c.name)
            return c, latencies

        async def body():
            gate = asyncio.Semaphore(CONNECT_AT_ONCE)
            t1 = time.monotonic()
            tasks = [asyncio.create_task(one(i, sid, gate)) for i, sid in enumerate(ids)]
            done, pending = await asyncio.wait(tasks, timeout=self.test_timeout - 30 - t_created,
                                               return_when=asyncio.FIRST_EXCEPTION)
            for t in pending:
                t.cancel()
            failed = [t for t in done if t.exception() is not None]
            if failed:
                raise failed[0].exception()
            if pending:
                ok = sum(1 for t in done if t.exception() is None)
                self.fail("%d of %d sessions finished their %d runs in time" % (ok, SESSIONS, RUNS))
            stats["run_phase"] = time.monotonic() - t1
            results = [t.result() for t in tasks]
            stats["open"] = await self.in_thread(ws_connections, self.d)
            lat = sorted(x for _, ls in results for x in ls)
            stats["p50"] = lat[len(lat) // 2]
            stats["p99"] = lat[int(len(lat) * 0.99)]
            stats["max"] = lat[-1]
            for c, _ in results:
                await c.close()

        self.run_async(body(), timeout=self.test_timeout - 10 - t_created)
        self.assertEqual(stats["open"], SESSIONS, "connections open at the end of the runs")
        self.assertTrue(harness.wait_until(lambda: ws_connections(self.d) == 0, 10),
                        "connections left after every client closed")
        # every run is recorded as completed
        total_runs = sum(self.session_info(sid).get("runs", 0) for sid in ids[:50])
        self.assertEqual(total_runs, 50 * RUNS)
        sys.stderr.write(
            "\n  %d sessions created over HTTP in %.1f s; %d WebSockets x %d runs = %d runs "
            "checked in %.1f s (%.0f runs/s); run round trip p50 %.1f ms, p99 %.1f ms, max %.0f ms; "
            "RLIMIT_NOFILE %d\n"
            % (SESSIONS, t_created, SESSIONS, RUNS, SESSIONS * RUNS, stats["run_phase"],
               SESSIONS * RUNS / stats["run_phase"], stats["p50"] * 1000, stats["p99"] * 1000,
               stats["max"] * 1000, self.nofile))




if __name__ == "__main__":
    harness.main()
