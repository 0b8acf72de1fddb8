#!/bin/sh
# run.sh: the WebSocket benchmark, side by side in one run. Builds agenthostd, the echo
# example, the load client (ws_load), the bare-lws ceiling (ws_echo) and the pipe echo child
# (pipe_echo); installs the Node forwarder's `ws` with npm; starts the three servers:
#   ceiling  ws_echo: lws 4.1 on a foreign libev loop, one answer per message, no agent;
#   node     node/forwarder.js: Node `ws`, one pipe_echo child per connection over pipes;
#   daemon   agenthostd (--log-level warn, free loopback port, temporary state folder) with
#            a copy of examples/echo, and 1 + SESSIONS + IDLE_SESSIONS echo sessions;
# then measures, round by round with the cells interleaved, the round trip of one run
# ({"type":"run","input":"hello big world","ref":"N"} to that run's run.completed) with 1
# client and runs/s with SESSIONS clients (one connection per session, closed loop) for each
# server, then the daemon again while IDLE connections (WebSockets watching IDLE_SESSIONS
# other sessions, opened by a second ws_load) are held open. Prints the Markdown table and
# the targets of issue 6 for the "WebSocket" section of docs/benchmarks.md. Servers (and
# their children: agents, pipe_echo) run on core 0, clients on core 1, with taskset when
# there are 2+ cores.
#
# usage: tests/bench/ws/run.sh [BUILD_DIR]     (default: build-bench-ws, made if missing)
# env:   SECONDS_PER_CELL (5), WARMUP_SECONDS (1), ROUNDS (3), SESSIONS (50),
#        IDLE (10000), IDLE_SESSIONS (10). The defaults make 3 rounds of 8 cells of 6 s and
#        open 10,000 connections a round: about 3 minutes plus the build (an estimate).
set -eu
top=$(cd "$(dirname "$0")/../../.." && pwd)
here=$top/tests/bench/ws
build=${1:-$top/build-bench-ws}
secs=${SECONDS_PER_CELL:-5}
warm=${WARMUP_SECONDS:-1}
rounds=${ROUNDS:-3}
many=${SESSIONS:-50}
idle=${IDLE:-10000}
idle_sessions=${IDLE_SESSIONS:-10}
py=/usr/bin/python3

if [ ! -f "$build/CMakeCache.txt" ]; then
	cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$build" --target agenthostd example_echo ws_load ws_echo pipe_echo -j2 >/dev/null
bin=$build/tests/bench/ws
load=$bin/ws_load

# The forwarder and its `ws` (npm registry, the version of package-lock.json) live in the
# build folder: node_modules never enters the source tree.
nodedir=$build/bench-ws-node
mkdir -p "$nodedir"
for f in package.json package-lock.json forwarder.js; do
	cmp -s "$here/node/$f" "$nodedir/$f" || cp "$here/node/$f" "$nodedir/$f"
done
if [ ! -f "$nodedir/node_modules/ws/package.json" ] ||
	[ "$nodedir/package-lock.json" -nt "$nodedir/node_modules/ws/package.json" ]; then
	(cd "$nodedir" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
fi
ws_version=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$nodedir/node_modules/ws/package.json")

tmp=$(mktemp -d /tmp/ws-bench.XXXXXX)
chmod 0711 "$tmp" # as root, agents run as nobody and must pass through to STATE/agents
dpid= cpid= npid= ipid=
state_of() { # PID: its state letter (Z: ended, not yet reaped), empty if gone
	awk '{print $3}' "/proc/$1/stat" 2>/dev/null || true
}
stop() { # PID...: SIGTERM, then up to 10 s for each to end (one stuck in the kernel is left)
	for p in "$@"; do kill "$p" 2>/dev/null || true; done
	for p in "$@"; do
		for _ in $(seq 100); do
			case "$(state_of "$p")" in "" | Z) break ;; esac
			sleep 0.1
		done
		case "$(state_of "$p")" in
		"" | Z) wait "$p" 2>/dev/null || true ;;
		*) echo "run.sh: pid $p did not end within 10 s (state $(state_of "$p"))" >&2 ;;
		esac
	done
}
cleanup() {
	stop $ipid $npid $cpid $dpid
	chmod -R u+rwX "$tmp" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
	srv="taskset -c 0" cli="taskset -c 1"
	pinning="servers (and their children) on core 0, clients on core 1 (taskset)"
else
	srv= cli=
	pinning="not pinned ($(nproc) cores or no taskset)"
fi

# The echo agent, as built, with hibernation pushed past the run (its default, 300 s, could
# otherwise retire the 1-client session between its cells and put a respawn in one).
mkdir "$tmp/manifests" "$tmp/state"
chmod 0711 "$tmp/state"
cp -r "$build/examples/echo" "$tmp/manifests/echo"
$py - "$tmp/manifests/echo/agent.json" <<'EOF'
import json, sys
with open(sys.argv[1]) as f:
    m = json.load(f)
m.setdefault("session", {})["hibernate_after_s"] = 3600
with open(sys.argv[1], "w") as f:
    json.dump(m, f, indent=2)
EOF

free_port() {
	$py -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_port() { # NAME PORT LOG: up to 10 s for any HTTP answer
	for _ in $(seq 100); do
		code=$(curl -s -m 2 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$2/healthz" || true)
		[ "$code" != 000 ] && return 0
		sleep 0.1
	done
	echo "run.sh: $1 does not answer on port $2 after 10 s; its log:" >&2
	tail -5 "$3" >&2
	return 1
}

dport=$(free_port)
$srv "$build/host/agenthostd" --listen "127.0.0.1:$dport" --state-dir "$tmp/state" \
	--manifests "$tmp/manifests" --max-sessions $((many + idle_sessions + 20)) \
	--log-level warn 2>"$tmp/daemon.log" &
dpid=$!
cport=$(free_port)
$srv "$bin/ws_echo" "$cport" 2>"$tmp/ceiling.log" &
cpid=$!
nport=$(free_port)
$srv node "$nodedir/forwarder.js" "$nport" "$bin/pipe_echo" 2>"$tmp/node.log" &
npid=$!
wait_port agenthostd "$dport" "$tmp/daemon.log"
wait_port ws_echo "$cport" "$tmp/ceiling.log"
wait_port forwarder "$nport" "$tmp/node.log"
token=$(cat "$tmp/state/admin.token")

# Sessions: one for the 1-client cells, SESSIONS for the loaded ones, IDLE_SESSIONS watched
# by the idle connections (and never run). Each line of a paths file is one connection's.
new_session() {
	curl -sf -m 30 -XPOST -H "Authorization: Bearer $token" \
		"http://127.0.0.1:$dport/v1/agents/echo/sessions" |
		$py -c 'import json, sys; print("/v1/sessions/%s/ws" % json.load(sys.stdin)["id"])'
}
new_session >"$tmp/one"
: >"$tmp/many"
for _ in $(seq "$many"); do new_session >>"$tmp/many"; done
: >"$tmp/idle"
for _ in $(seq "$idle_sessions"); do new_session >>"$tmp/idle"; done
echo / >"$tmp/any"

# The daemon's loop: libev on epoll shows as an eventpoll fd (lws' poll loop has none).
daemon_epoll=$(ls -l "/proc/$dpid/fd" 2>/dev/null | grep -c 'anon_inode:\[eventpoll\]' || true)
ceiling_loop=$(sed -n 's/^ws_echo: libev backend //p' "$tmp/ceiling.log")

# CPU ticks (user + system) of a server, its reaped children and its live children.
cpu_ticks() {
	t=$(awk '{print $14 + $15 + $16 + $17}' "/proc/$1/stat")
	for k in $(pgrep -P "$1" || true); do
		t=$((t + $(awk '{print $14 + $15}' "/proc/$k/stat" 2>/dev/null || echo 0)))
	done
	echo "$t"
}

results=$tmp/results
: >"$results"
cell() { # NAME CLIENTS IDLE PORT PATHS SERVER_PID [ws_load options]
	name=$1 c=$2 held=$3 port=$4 paths=$5 spid=$6
	shift 6
	t0=$(cpu_ticks "$spid")
	line=$(timeout $((secs + warm + 60)) $cli "$load" -p "$port" -f "$paths" -t "$token" \
		-c "$c" -d "$secs" -w "$warm" "$@") ||
		line="good=0 rate=0 timeouts=1 problem=client-killed-or-failed"
	sleep 0.3 # the forwarder's children of this cell end and are reaped
	line="$line cpu_ticks=$(($(cpu_ticks "$spid") - t0))"
	echo "$name $c $held $line" >>"$results"
	echo "# round $round: $name clients=$c idle=$held $line" >&2
}

idle_log=$tmp/idle.log
: >"$idle_log"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
round=1
while [ "$round" -le "$rounds" ]; do
	for c in 1 "$many"; do
		cell ceiling "$c" 0 "$cport" "$tmp/any" "$cpid" -r -o 0
		cell node "$c" 0 "$nport" "$tmp/any" "$npid"
		if [ "$c" = 1 ]; then paths=$tmp/one; else paths=$tmp/many; fi
		cell agenthost "$c" 0 "$dport" "$paths" "$dpid"
	done
	# The idle connections: opened, held through the daemon's two cells, closed.
	t_open=$(date +%s.%N)
	$cli "$load" --idle "$idle" -p "$dport" -f "$tmp/idle" -t "$token" >"$tmp/idle.out" &
	ipid=$!
	for _ in $(seq 1200); do
		grep -q '^ready' "$tmp/idle.out" 2>/dev/null && break
		kill -0 "$ipid" 2>/dev/null || break
		sleep 0.1
	done
	ready=$(grep '^ready' "$tmp/idle.out" || echo "ready opened=0 refused=$idle")
	opened=$(echo "$ready" | sed 's/.*opened=\([0-9]*\).*/\1/')
	echo "round $round $ready open_secs=$(awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $t_open }")" >>"$idle_log"
	cell agenthost "1" "$opened" "$dport" "$tmp/one" "$dpid"
	cell agenthost "$many" "$opened" "$dport" "$tmp/many" "$dpid"
	daemon_fds=$(ls "/proc/$dpid/fd" | wc -l)
	stop "$ipid"
	ipid=
	echo "round $round $(grep '^idle' "$tmp/idle.out") daemon_fds_while_held=$daemon_fds" >>"$idle_log"
	round=$((round + 1))
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

stop $npid $cpid
npid= cpid=
warnings=$(grep -c . "$tmp/daemon.log" || true)
node_failures=$(grep -c 'child ended' "$tmp/node.log" || true)

echo "Run of $(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) cores, kernel $(uname -r), as $(id -un);" \
	"$(if commit=$(git -C "$top" rev-parse --short HEAD 2>/dev/null); then
		printf 'commit %s' "$commit"
		git -C "$top" diff --quiet HEAD -- host sandbox protocol sdk examples ||
			printf ' + uncommitted changes in the daemon sources'
	else printf 'sources at %s (not a git checkout)' "$top"; fi);" \
	"load average (1, 5, 15 min) $load_start at the start, $load_end at the end."
echo "Each cell: ${warm} s warm-up, then ${secs} s; $rounds rounds, the cells interleaved" \
	"round by round; figures are the median of the rounds (runs/s range in brackets). One run:" \
	"\`{\"type\":\"run\",\"input\":\"hello big world\",\"ref\":\"N\"}\` to that run's" \
	"run.completed. $pinning. Event loops: agenthostd libev" \
	"($daemon_epoll eventpoll fd), ws_echo libev on ${ceiling_loop:-?} (foreign loop, as the" \
	"daemon), Node $(node --version) with ws $ws_version. Server CPU per run: user + system" \
	"CPU of the server and its children (agents, pipe_echo) over the cell (warm-up included)," \
	"divided by its runs."
echo
$py - "$results" "$(getconf CLK_TCK)" "$many" <<'EOF'
import statistics, sys

rows, order = {}, []
for line in open(sys.argv[1]):
    name, clients, held, *fields = line.split()
    kv = dict(f.split("=", 1) for f in fields if "=" in f)
    key = (name, int(clients), int(held) > 0)
    if key not in rows:
        rows[key] = []
        order.append(key)
    rows[key].append((int(held), kv))
hz, many = int(sys.argv[2]), int(sys.argv[3])

def num(kv, k):
    return float(kv.get(k, 0) or 0)

def med(key, k):
    return statistics.median(num(kv, k) for _, kv in rows[key]) if key in rows else 0.0

def us(v):
    return "%.2f ms" % (v / 1000) if v >= 1000 else "%.0f µs" % v

label = {"ceiling": "bare lws echo (ceiling)", "node": "Node ws forwarder + pipe child",
         "agenthost": "agenthost session (echo)"}
print("| server | clients | idle conns | runs/s | p50 | p99 | p50 × ceiling | msgs (bytes) per run"
      " | server CPU per run | runs | failures |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
for key in order:
    name, clients, idle = key
    cells = rows[key]
    rates = [num(kv, "rate") for _, kv in cells]
    good = sum(num(kv, "good") for _, kv in cells)
    runs = sum(num(kv, "runs") for _, kv in cells)
    ticks = sum(num(kv, "cpu_ticks") for _, kv in cells)
    fails = {k: int(sum(num(kv, k) for _, kv in cells))
             for k in ("wrong", "server_errors", "disconnects", "timeouts", "refused")}
    problems = sorted({kv.get("problem", "-") for _, kv in cells} - {"-"})
    bad = sum(fails.values())
    note = "0" if not bad else "%d (%s%s)" % (bad, ", ".join(
        "%s %d" % (k.replace("_", " "), v) for k, v in fails.items() if v),
        "; first: " + problems[0][:80] if problems else "")
    ceil = med(("ceiling", clients, False), "p50_us")
    held = statistics.median(h for h, _ in cells)
    print("| %s | %d | %s | %.0f [%.0f–%.0f] | %s | %s | %s | %.0f (%.0f) | %s | %d | %s |" % (
        label[name], clients, "{:,}".format(int(held)) if idle else "0",
        statistics.median(rates), min(rates), max(rates), us(med(key, "p50_us")),
        us(med(key, "p99_us")), "%.1f" % (med(key, "p50_us") / ceil) if ceil else "—",
        med(key, "msgs_per_run"), med(key, "bytes_per_run"),
        us(ticks / hz * 1e6 / runs) if runs else "—", good, note))

ours, ceiling = med(("agenthost", 1, False), "p50_us"), med(("ceiling", 1, False), "p50_us")
rate, node = med(("agenthost", many, False), "rate"), med(("node", many, False), "rate")
idle_p50 = med(("agenthost", 1, True), "p50_us")
idle_rate = med(("agenthost", many, True), "rate")
def verdict(ok):
    return "**met**" if ok else "**not met**"
print()
print("Targets (issue 6):")
print("- our p50 ≤ 3× the bare echo's: %s / %s = %.1f×: %s" % (
    us(ours), us(ceiling), ours / ceiling if ceiling else 0, verdict(ceiling and ours <= 3 * ceiling)))
print("- our runs/s ≥ 2× the Node forwarder's (%d sessions): %.0f / %.0f = %.2f×: %s" % (
    many, rate, node, rate / node if node else 0, verdict(node and rate >= 2 * node)))
print("- p50 with the idle connections within 1.5× of the p50 without: %s / %s = %.2f×: %s"
      " (runs/s at %d sessions: %.0f with, %.0f without)" % (
          us(idle_p50), us(ours), idle_p50 / ours if ours else 0,
          verdict(ours and idle_p50 <= 1.5 * ours), many, idle_rate, rate))
EOF
echo
echo "Idle connections (ws_load --idle $idle over $idle_sessions watched sessions):"
sed 's/^/    /' "$idle_log"
echo "Daemon log lines at warn or above during the run: $warnings"
if [ "$warnings" -gt 0 ]; then
	head -5 "$tmp/daemon.log" | cut -c1-240 | sed 's/^/    /'
fi
echo "Node forwarder: children that ended with their connection open: $node_failures"
