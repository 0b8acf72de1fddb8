#!/bin/sh
# run.sh: the invoke benchmark, side by side in one run. Builds agenthostd, the echo example,
# the load client and the bare-lws ceiling; starts the ceiling and a daemon (temporary state
# dir, free loopback ports, --log-level warn) with two copies of echo, "echo-worker"
# (isolation worker, 2 workers) and "echo-process" (isolation process); then measures
# calls/s and p50/p99 of POST .../invoke for each server at 1 and 32 keep-alive clients, and
# prints the Markdown table (with the ratio to the ceiling and the targets) that goes into
# the "Stateless calls" section of docs/benchmarks.md. Servers run on core 0 (agents
# inherit it), the client on core 1, when there are 2+ cores and taskset.
#
# usage: tests/bench/invoke/run.sh [BUILD_DIR]     (default: build-bench-invoke, made if missing)
# env:   SECONDS_PER_CELL (5), CALLS_PER_CELL (100000), WARMUP_SECONDS (1), ROUNDS (3),
#        CLIENTS ("1 32"). The defaults take about 2 minutes plus the build.
set -eu
top=$(cd "$(dirname "$0")/../../.." && pwd)
build=${1:-$top/build-bench-invoke}
secs=${SECONDS_PER_CELL:-5}
rounds=${ROUNDS:-3}
calls=${CALLS_PER_CELL:-100000}
warm=${WARMUP_SECONDS:-1}
clients=${CLIENTS:-1 32}
input='{"input": "hello big world"}'
expect='"status":"completed"'

if [ ! -f "$build/CMakeCache.txt" ]; then
	cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$build" --target agenthostd example_echo invoke_load invoke_ceiling -j2 >/dev/null
bin=$build/tests/bench/invoke
load=$bin/invoke_load

tmp=$(mktemp -d /tmp/invoke-bench.XXXXXX)
chmod 0711 "$tmp" # as root, agents run as nobody and must pass through to STATE/agents
dpid= cpid=
cleanup() {
	for p in $dpid $cpid; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true; done
	chmod -R u+rwX "$tmp" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
	srv="taskset -c 0" cli="taskset -c 1"
	pinning="server (and its agents) on core 0, client on core 1 (taskset)"
else
	srv= cli=
	pinning="not pinned ($(nproc) cores or no taskset)"
fi

# Two copies of the echo agent, renamed, with their isolation.
mkdir "$tmp/manifests" "$tmp/state"
chmod 0711 "$tmp/state"
for iso in process worker; do
	cp -r "$build/examples/echo" "$tmp/manifests/echo-$iso"
done
/usr/bin/python3 - "$tmp/manifests" <<'EOF'
import json, sys
for iso, inv in (("process", {"isolation": "process"}),
                 ("worker", {"isolation": "worker", "workers": 2})):
    path = "%s/echo-%s/agent.json" % (sys.argv[1], iso)
    with open(path) as f:
        m = json.load(f)
    m["name"] = "echo-" + iso
    m["invoke"] = inv
    with open(path, "w") as f:
        json.dump(m, f, indent=2)
EOF

wait_http() { # URL [curl args]: up to 10 s for a 200
	url=$1
	shift
	for _ in $(seq 100); do
		code=$(curl -s -o /dev/null -w '%{http_code}' "$@" "$url" || true)
		[ "$code" = 200 ] && return 0
		sleep 0.1
	done
	echo "run.sh: $url did not answer 200 (last: $code)" >&2
	return 1
}

dport=$("$load" --free-port)
$srv "$build/host/agenthostd" --listen "127.0.0.1:$dport" --state-dir "$tmp/state" \
	--manifests "$tmp/manifests" --log-level warn 2>"$tmp/daemon.log" &
dpid=$!
wait_http "http://127.0.0.1:$dport/healthz"
token=$(cat "$tmp/state/admin.token")

cport=$("$load" --free-port)
$srv "$bin/invoke_ceiling" "$cport" 2>"$tmp/ceiling.log" &
cpid=$!
wait_http "http://127.0.0.1:$cport/" -d "$input"

# One call each, to check the answers and compare their sizes.
sizes=
for target in ceiling:$cport:/v1/agents/echo/invoke worker:$dport:/v1/agents/echo-worker/invoke \
	process:$dport:/v1/agents/echo-process/invoke; do
	name=${target%%:*} rest=${target#*:}
	out=$(curl -s -w ' %{http_code} %{size_download}' -H "Authorization: Bearer $token" \
		-H 'Content-Type: application/json' -d "$input" "http://127.0.0.1:${rest%%:*}${rest#*:}")
	case "$out" in
	*'"status":"completed"'*' 200 '*) sizes="$sizes $name=${out##* }B" ;;
	*) echo "run.sh: $name did not complete a call: $out" >&2; cat "$tmp/daemon.log" >&2; exit 1 ;;
	esac
done

# CPU ticks (user + system) of a server: the process, its reaped children (process
# isolation's agents) and its live children (the workers).
cpu_ticks() {
	t=$(awk '{print $14 + $15 + $16 + $17}' "/proc/$1/stat")
	for k in $(pgrep -P "$1" || true); do
		t=$((t + $(awk '{print $14 + $15}' "/proc/$k/stat" 2>/dev/null || echo 0)))
	done
	echo "$t"
}
hz=$(getconf CLK_TCK)

results=$tmp/results
: >"$results"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
timeout_s=$((secs + warm + 30)) # the client's own drain limit is 15 s per phase
round=1
while [ "$round" -le "$rounds" ]; do
	for c in $clients; do
		for target in ceiling:$cport:/v1/agents/echo/invoke \
			worker:$dport:/v1/agents/echo-worker/invoke \
			process:$dport:/v1/agents/echo-process/invoke; do
			name=${target%%:*} rest=${target#*:}
			spid=$dpid
			[ "$name" = ceiling ] && spid=$cpid
			t0=$(cpu_ticks "$spid")
			line=$(timeout "$timeout_s" $cli "$load" -p "${rest%%:*}" -u "${rest#*:}" \
				-t "$token" -b "$input" -c "$c" -d "$secs" -n "$calls" -w "$warm" \
				-e "$expect") ||
				line="good=0 rate=0 timeouts=1 statuses=client-killed-after-${timeout_s}s"
			line="$line cpu_ticks=$(($(cpu_ticks "$spid") - t0))"
			echo "$name $c $line" >>"$results"
			echo "# round $round: $name clients=$c $line" >&2
		done
	done
	round=$((round + 1))
done

load_end=$(cut -d' ' -f1-3 /proc/loadavg)
kill "$cpid" && wait "$cpid" 2>/dev/null || true
cpid=
warnings=$(grep -c . "$tmp/daemon.log" || true)

echo "Run of $(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) cores, kernel $(uname -r), as $(id -un);" \
	"$(if commit=$(git -C "$top" rev-parse --short HEAD 2>/dev/null); then
		printf 'commit %s' "$commit"
		git -C "$top" diff --quiet HEAD -- host sandbox protocol sdk examples ||
			printf ' + uncommitted changes in the daemon sources'
	else printf 'sources at %s (not a git checkout)' "$top"; fi);" \
	"load average (1, 5, 15 min) $load_start at the start, $load_end at the end."
echo "Each cell: ${warm} s warm-up, then ${secs} s or ${calls} calls, whichever first;" \
	"$rounds rounds, the cells interleaved round by round; figures are the median of the" \
	"rounds (calls/s range in brackets). Keep-alive HTTP/1.1, body \`$input\`, JSON answers" \
	"(${sizes# }); $pinning. Server CPU per call: user + system CPU of the server and its" \
	"agents (live workers, reaped processes) over the cell, divided by its answers (warm-up" \
	"included): less sensitive to the machine's noise than calls/s."
echo
awk -v hz="$hz" '
function field(line, key,    i, n, kv) {
	n = split(line, kv, " ")
	for (i = 1; i <= n; i++) if (index(kv[i], key "=") == 1) return substr(kv[i], length(key) + 2)
	return ""
}
function median(list,    a, n, i, j, t) { # list: values joined by spaces
	n = split(list, a, " ")
	for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) {
		t = a[j]; a[j] = a[j - 1]; a[j - 1] = t
	}
	return n % 2 ? a[(n + 1) / 2] + 0 : (a[n / 2] + a[n / 2 + 1]) / 2
}
function lo(list,    a, n, i, m) { n = split(list, a, " "); m = a[1] + 0
	for (i = 2; i <= n; i++) if (a[i] + 0 < m) m = a[i] + 0; return m }
function hi(list,    a, n, i, m) { n = split(list, a, " "); m = a[1] + 0
	for (i = 2; i <= n; i++) if (a[i] + 0 > m) m = a[i] + 0; return m }
function fmt_us(us) { us += 0; return us >= 1000 ? sprintf("%.2f ms", us / 1000) : sprintf("%.0f µs", us) }
{
	k = $1 SUBSEP $2
	if (!(k in seen)) { seen[k] = 1; order[++nk] = k; srv[nk] = $1; cl[nk] = $2 }
	rate[k] = rate[k] " " field($0, "rate"); p50[k] = p50[k] " " field($0, "p50_us")
	p99[k] = p99[k] " " field($0, "p99_us"); good[k] += field($0, "good")
	non200[k] += field($0, "non200"); badbody[k] += field($0, "bad_body")
	errors[k] += field($0, "errors"); timeouts[k] += field($0, "timeouts")
	st = field($0, "statuses"); if (st != "-" && st != "") statuses[k] = statuses[k] " " st
	ticks[k] += field($0, "cpu_ticks"); answers[k] += field($0, "answers")
}
END {
	label["ceiling"] = "ceiling (bare lws)"; label["worker"] = "agenthost worker"
	label["process"] = "agenthost process"
	for (i = 1; i <= nk; i++) med[order[i]] = median(rate[order[i]])
	print "| server | clients | calls/s | p50 | p99 | × ceiling | server CPU per call | calls | not completed |"
	print "|---|---:|---:|---:|---:|---:|---:|---:|---|"
	top = 0
	for (i = 1; i <= nk; i++) {
		k = order[i]; c = cl[i]; ck = "ceiling" SUBSEP c
		if (c + 0 > top) top = c + 0
		bad = non200[k] + badbody[k] + errors[k] + timeouts[k]
		notes = bad == 0 ? "0" : sprintf("%d (non-200 %d [%s], bad body %d, errors %d, timeouts %d)",
			bad, non200[k], statuses[k], badbody[k], errors[k], timeouts[k])
		cpu = answers[k] > 0 ? ticks[k] * 1e6 / hz / answers[k] : 0
		printf("| %s | %s | %.0f [%.0f–%.0f] | %s | %s | %.2f | %s | %d | %s |\n", label[srv[i]],
			c, med[k], lo(rate[k]), hi(rate[k]), fmt_us(median(p50[k])), fmt_us(median(p99[k])),
			(med[ck] > 0 ? med[k] / med[ck] : 0), fmt_us(cpu), good[k], notes)
	}
	print ""
	print "Targets (a closed loop: throughput is judged at the highest client count):"
	w = med["worker" SUBSEP top]; p = med["process" SUBSEP top]; cc = med["ceiling" SUBSEP top]
	printf("- `worker` ≥ 0.5× the ceiling'\''s calls/s: %.0f / %.0f = %.2f× at %d clients: **%s**\n",
		w, cc, (cc > 0 ? w / cc : 0), top, ((cc > 0 && w >= 0.5 * cc) ? "met" : "not met"))
	printf("- `process` ≥ 1,000 calls/s: %.0f at %d clients: **%s**\n", p, top,
		(p >= 1000 ? "met" : "not met"))
}' "$results"
echo
echo "Daemon log lines at warn or above during the run: $warnings"
if [ "$warnings" -gt 0 ]; then
	head -5 "$tmp/daemon.log" | cut -c1-240 | sed 's/^/    /'
fi
