#!/bin/sh
# run.sh: the sessions benchmark, side by side in one run (issue 5). Builds agenthostd, the
# echo and counter examples, the kvwriter agent, the client (sessions_load) and the SQLite
# peer (sessions_kv_ceiling); then, against real daemons on free loopback ports with a
# temporary state folder (--log-level warn), measures and prints as Markdown:
#   1. session create p50/p99 over HTTP (create then destroy) next to a bare
#      `bwrap --unshare-all ... /bin/true` spawn, interleaved sample by sample;
#   2. the run round trip of echo over keep-alive HTTP (1 and 32 sessions), next to
#      GET /healthz on the same daemon;
#   3. acknowledged KV writes/s from 1 and 32 kvwriter sessions, next to SQLite alone; then
#      again with a second daemon left on both cores;
#   4. + 6. live sessions ramped to 10, 1,000, 4,000 and LIVE (8,000): the daemon's RSS and
#      fds per live session, the agents' RSS/PSS, and create latency at each level;
#   5. HIBERNATED (100,000) hibernated sessions: 2,000 made through the daemon with
#      --max-sessions 64 (LRU hibernation) and run once, the rest cloned from them in SQLite
#      while the daemon is stopped, plus the LIVE echo sessions hibernated by a daemon
#      restart; then the daemon's start-up, an idle /healthz probe, and the first run of 100
#      random hibernated sessions.
# The daemons (and their agents) run on core 0, the client on core 1 (taskset), and bwrap
# and the SQLite peer on core 0 too, when there are 2+ cores.
#
# usage: tests/bench/sessions/run.sh [BUILD_DIR]  (default: build-bench-sessions, made if missing)
# env:   CREATE_SAMPLES (400), LEVELS ("10 1000 4000 8000": the last is LIVE), LEVEL_SAMPLES
#        (100), HIBERNATED (100000), SEED_SESSIONS (2000), RESUME_SAMPLES (100), RUN_SECONDS
#        (5), KV_WRITES_ONE (20000), KV_WRITES_EACH (1000), KV_ROUNDS (3), STOP_LIVE (KILL: how
#        the daemon with LIVE sessions is stopped; TERM adds a clean stop, which took 146 s at
#        8,000 live sessions). The defaults take about 7 minutes plus the build.
set -eu
top=$(cd "$(dirname "$0")/../../.." && pwd)
build=${1:-$top/build-bench-sessions}
create_samples=${CREATE_SAMPLES:-400}
levels=${LEVELS:-10 1000 4000 8000}
level_samples=${LEVEL_SAMPLES:-100}
hibernated=${HIBERNATED:-100000}
seed_sessions=${SEED_SESSIONS:-2000}
resume_samples=${RESUME_SAMPLES:-100}
run_secs=${RUN_SECONDS:-5}
kv_one=${KV_WRITES_ONE:-20000}
kv_each=${KV_WRITES_EACH:-1000}
kv_rounds=${KV_ROUNDS:-3}
stop_a=${STOP_LIVE:-KILL}
live=${levels##* }
run_input='{"input": "hello big world"}'
t_start=$(date +%s)

if [ ! -f "$build/CMakeCache.txt" ]; then
	cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$build" --target agenthostd example_echo example_counter sessions_load \
	sessions_kv_ceiling sessions_kvwriter -j2 >/dev/null
bench=$build/tests/bench/sessions
load=$bench/sessions_load

tmp=$(mktemp -d /tmp/sessions-bench.XXXXXX)
chmod 0711 "$tmp" # as root, agents run as nobody and must pass through to STATE/agents
dpid= dpid_a=
cleanup() {
	for p in $dpid $dpid_a; do kill -9 "$p" 2>/dev/null && wait "$p" 2>/dev/null || true; done
	chmod -R u+rwX "$tmp" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
	srv="taskset -c 0" cli="taskset -c 1" bwrap_cpu=0
	pinning="daemon (and its agents), bwrap and the SQLite peer on core 0, client on core 1 (taskset)"
else
	srv= cli= bwrap_cpu=-1
	pinning="not pinned ($(nproc) cores or no taskset)"
fi

# The agents: echo, kvwriter, and counter-h (counter hibernating after 1 s idle).
mkdir "$tmp/manifests" "$tmp/state"
chmod 0711 "$tmp/state"
cp -r "$build/examples/echo" "$bench/agents/kvwriter" "$tmp/manifests/"
cp -r "$build/examples/counter" "$tmp/manifests/counter-h"
/usr/bin/python3 - "$tmp/manifests/counter-h/agent.json" <<'EOF'
import json, sys
with open(sys.argv[1]) as f:
    m = json.load(f)
m["name"] = "counter-h"
m["session"] = {"hibernate_after_s": 1}
with open(sys.argv[1], "w") as f:
    json.dump(m, f, indent=2)
EOF

now_ms() { echo $(($(date +%s%N) / 1000000)); }
field() { # LINE KEY: the value of KEY=VALUE in LINE
	echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1
}
ms() { awk -v u="$1" 'BEGIN { printf(u >= 1000 ? "%.2f ms" : "%.0f µs", u >= 1000 ? u / 1000 : u) }'; }
log() { echo "# $*" >&2; }

# start_daemon MAX_SESSIONS LOG [STATE_DIR [unpinned]]: starts a daemon on a free port (on
# core 0 unless "unpinned"); sets dpid, port, token and startup_ms (from exec to the first
# 200 of /healthz).
start_daemon() {
	state=${3:-$tmp/state} pin=$srv
	[ "${4:-}" = unpinned ] && pin=
	mkdir -p "$state"
	chmod 0711 "$state"
	port=$("$load" --free-port)
	t0=$(now_ms)
	$pin "$build/host/agenthostd" --listen "127.0.0.1:$port" --state-dir "$state" \
		--manifests "$tmp/manifests" --log-level warn --max-sessions "$1" 2>>"$2" &
	dpid=$!
	for _ in $(seq 1200); do
		code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/healthz" || true)
		[ "$code" = 200 ] && break
		sleep 0.05
	done
	[ "$code" = 200 ] || { echo "run.sh: the daemon did not start (last: $code)" >&2; cat "$2" >&2; exit 1; }
	startup_ms=$(($(now_ms) - t0))
	token=$(cat "$state/admin.token")
}

# stop_daemon SIGNAL: TERM (a clean stop; waits up to 300 s, then SIGKILL) or KILL (what
# `kill -9` does: the agents die with their parent); sets stop_ms and orphans (agent
# processes left behind, adopted by init).
stop_daemon() {
	t0=$(now_ms)
	kill -"$1" "$dpid"
	i=0
	while kill -0 "$dpid" 2>/dev/null && [ $i -lt 6000 ]; do
		sleep 0.05
		i=$((i + 1))
	done
	stop_killed=no
	if kill -0 "$dpid" 2>/dev/null; then
		kill -9 "$dpid"
		stop_killed=yes
	fi
	wait "$dpid" 2>/dev/null || true
	stop_ms=$(($(now_ms) - t0))
	dpid=
	# Agents of a killed daemon die with it, but their teardown takes the kernel a while:
	# wait up to 60 s for them to go; what is left then is left behind.
	i=0
	while orphans=$(ps -eo ppid=,comm= | awk '$1 == 1 && ($2 == "echo" || $2 == "counter" ||
		$2 == "counter-h" || $2 == "kvwriter")' | wc -l) && [ "$orphans" -gt 0 ] && [ $i -lt 600 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	agents_gone_ms=$(($(now_ms) - t0))
}

L() { $cli "$load" -p "$port" -t "$token" "$@"; }
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- daemon A: create, runs, KV, live sessions
start_daemon $((live + 1000)) "$tmp/daemon-a.log"
log "daemon A up in $startup_ms ms (pid $dpid)"
create=$(L create -a echo -n "$create_samples" --bwrap-cpu "$bwrap_cpu")
log "$create"
run1=$(L loop -a echo -c 1 -b "$run_input" -w 1 -d "$run_secs")
log "$run1"
run32=$(L loop -a echo -c 32 -b "$run_input" -w 1 -d "$run_secs")
log "$run32"
health=$(L loop -u /healthz --get -e '"status":"ok"' -c 1 -w 1 -d "$run_secs")
log "$health"

kv_table=$tmp/kv
: >"$kv_table"
for round in $(seq "$kv_rounds"); do
	for s in 1 32; do
		n=$kv_one
		[ "$s" = 1 ] || n=$((kv_each * s))
		rm -f "$tmp/ceiling.db"*
		line=$($srv "$bench/sessions_kv_ceiling" "$tmp/ceiling.db" "$n" "$s")
		log "round $round: $line"
		echo "ceiling $s $line" >>"$kv_table"
	done
done
rm -f "$tmp/ceiling.db"*
L kv -a kvwriter -c 1 -W "$kv_one" -r "$kv_rounds" | sed 's/^/agenthost 1 /' >>"$kv_table"
L kv -a kvwriter -c 32 -W "$kv_each" -r "$kv_rounds" | sed 's/^/agenthost 32 /' >>"$kv_table"
# The same with a second daemon left on both cores: the client only waits during these
# cells, and the daemon and its agents ping-pong on every write.
dpid_a=$dpid port_a=$port token_a=$token
start_daemon 64 "$tmp/daemon-k.log" "$tmp/state-kv" unpinned
L kv -a kvwriter -c 1 -W "$kv_one" -r "$kv_rounds" | sed 's/^/unpinned 1 /' >>"$kv_table"
L kv -a kvwriter -c 32 -W "$kv_each" -r "$kv_rounds" | sed 's/^/unpinned 32 /' >>"$kv_table"
stop_daemon TERM
dpid=$dpid_a port=$port_a token=$token_a dpid_a=
grep -v '^ceiling' "$kv_table" | sed 's/^/# /' >&2

ramp=$(L ramp -a echo -c 32 --levels "$(echo "$levels" | tr ' ' ',')" -n "$level_samples" --pid "$dpid")
echo "$ramp" | sed 's/^/# /' >&2
stop_daemon "$stop_a"
stop_a_ms=$stop_ms stop_a_killed=$stop_killed orphans_a=$orphans gone_a_ms=$agents_gone_ms
log "daemon A stopped (SIG$stop_a) in $stop_a_ms ms (SIGKILL needed: $stop_a_killed), orphans $orphans_a"

# ---- daemon B: sessions hibernated by LRU through the daemon
start_daemon 64 "$tmp/daemon-b.log"
populate=$(L populate -a counter-h -n "$seed_sessions" -c 32 -b '{"input": {}}' -e '"output":1')
log "$populate"
sleep 3 # the last 64 hibernate once idle for 1 s (housekeeping runs every second)
live_b=$(pgrep -c -P "$dpid" || true)
hib_lru=$(sqlite3 "$tmp/state/agenthost.db" \
	"SELECT count(*) FROM session_events WHERE type = 'session.hibernated' AND body LIKE '%max_sessions%'")
hib_idle=$(sqlite3 "$tmp/state/agenthost.db" \
	"SELECT count(*) FROM session_events WHERE type = 'session.hibernated' AND body LIKE '%idle%'")
startup_b_ms=$startup_ms
stop_daemon TERM
stop_b_ms=$stop_ms
log "populate: $live_b agents live after 3 s; hibernated for max_sessions $hib_lru, idle $hib_idle"

# ---- the clones: sessions, KV, events and runs of the counter-h sessions, new ids
t0=$(now_ms)
before=$(sqlite3 "$tmp/state/agenthost.db" "SELECT count(*) FROM sessions")
need=$((hibernated - before))
[ "$need" -gt 0 ] || need=0
sqlite3 "$tmp/state/agenthost.db" <<EOF
PRAGMA foreign_keys = ON;
PRAGMA cache_size = -262144;
BEGIN;
CREATE TEMP TABLE seed AS SELECT id FROM sessions WHERE agent = 'counter-h';
CREATE TEMP TABLE map AS
  WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k
                          WHERE i < ($need / (SELECT count(*) FROM seed)) + 1)
  SELECT seed.id AS old, 's_0000' || lower(hex(randomblob(16))) AS new FROM k, seed
  LIMIT $need;
INSERT INTO sessions (id, agent, version, owner, state, config, created_at, last_active_at,
                      runs, last_seq)
  SELECT map.new, agent, version, owner, state, config, created_at, last_active_at, runs,
         last_seq FROM map JOIN sessions ON sessions.id = map.old;
INSERT INTO session_kv (session, key, value)
  SELECT map.new, key, value FROM map JOIN session_kv ON session_kv.session = map.old;
INSERT INTO session_events (session, seq, type, run, time, body)
  SELECT map.new, seq, type, run, time, body FROM map
  JOIN session_events ON session_events.session = map.old;
INSERT INTO session_runs (session, id, status, input, output, error, created_at, started_at,
                          finished_at)
  SELECT map.new, id, status, input, output, error, created_at, started_at, finished_at
  FROM map JOIN session_runs ON session_runs.session = map.old;
COMMIT;
EOF
clone_ms=$(($(now_ms) - t0))
population=$(sqlite3 "$tmp/state/agenthost.db" "SELECT agent || '=' || count(*) FROM sessions GROUP BY agent" | tr '\n' ' ')
total=$(sqlite3 "$tmp/state/agenthost.db" "SELECT count(*) FROM sessions")
sqlite3 "$tmp/state/agenthost.db" "SELECT id FROM sessions WHERE agent = 'counter-h'" >"$tmp/ids"
db_mb=$(du -sm "$tmp/state/agenthost.db" | cut -f1)
log "cloned $need sessions in $clone_ms ms: $population(total $total, $db_mb MB)"

# ---- daemon C: 100,000 hibernated sessions
start_daemon $((live + 1000)) "$tmp/daemon-c.log"
startup_c_ms=$startup_ms
rss_c0=$(awk '/^VmRSS/ {print $2}' "/proc/$dpid/status")
fds_c0=$(ls "/proc/$dpid/fd" | wc -l)
probe=$(L probe -u /healthz -d 12 --gap-ms 10)
log "$probe"
resume=$(L resume -f "$tmp/ids" -n "$resume_samples" -b '{"input": {}}' -e '"output":2' --gap-ms 100)
log "$resume"
rss_c1=$(awk '/^VmRSS/ {print $2}' "/proc/$dpid/status")
fds_c1=$(ls "/proc/$dpid/fd" | wc -l)
stop_daemon TERM
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
wall=$(($(date +%s) - t_start))
warn_a=$(grep -c . "$tmp/daemon-a.log" || true)
warn_b=$(grep -c . "$tmp/daemon-b.log" || true)
warn_c=$(grep -c . "$tmp/daemon-c.log" || true)
warn_k=$(grep -c . "$tmp/daemon-k.log" || true)

# ---- the report
echo "Run of $(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) cores, kernel $(uname -r), as $(id -un);" \
	"$(if commit=$(git -C "$top" rev-parse --short HEAD 2>/dev/null); then
		printf 'commit %s' "$commit"
		git -C "$top" diff --quiet HEAD -- host sandbox protocol sdk examples ||
			printf ' + uncommitted changes in the daemon sources'
	else printf 'sources at %s (not a git checkout)' "$top"; fi);" \
	"load average (1, 5, 15 min) $load_start at the start, $load_end at the end;" \
	"$pinning; whole run $wall s (build included)."
echo

cp50=$(field "$create" create_p50_us) cp99=$(field "$create" create_p99_us)
bp50=$(field "$create" bwrap_p50_us) bp99=$(field "$create" bwrap_p99_us)
echo "**1. Session create** ($(field "$create" create_n) samples after a 5% warm-up, interleaved:" \
	"POST /v1/agents/echo/sessions → 201, DELETE → 204, then one bwrap spawn → exit):"
echo
echo "| what | samples | p50 | p99 | p50 × bwrap |"
echo "|---|---:|---:|---:|---:|"
echo "| agenthost session create (echo) | $(field "$create" create_n) | $(ms "$cp50") | $(ms "$cp99") | $(awk -v a="$cp50" -v b="$bp50" 'BEGIN{printf("%.2f", a/b)}') |"
echo "| agenthost session destroy | $(field "$create" destroy_n) | $(ms "$(field "$create" destroy_p50_us)") | $(ms "$(field "$create" destroy_p99_us)") | |"
echo "| bwrap --unshare-all ... /bin/true | $(field "$create" bwrap_n) | $(ms "$bp50") | $(ms "$bp99") | 1.00 |"
echo
echo "Failures: $(field "$create" failures) (bwrap: $(field "$create" bwrap_failed))." \
	"Targets: create p50 < 3 ms: $(ms "$cp50"): **$([ "$cp50" -lt 3000 ] && echo met || echo not met)**;" \
	"≤ 1.5× bwrap's p50 ($(ms "$bp50")): $(awk -v a="$cp50" -v b="$bp50" 'BEGIN{printf("%.2f×: **%s**", a/b, a <= 1.5*b ? "met" : "not met")}')."
echo

echo "**2. Run round trip** (POST /v1/sessions/{id}/runs, body \`$run_input\`, JSON answer;" \
	"1 s warm-up, then $run_secs s closed loop, keep-alive, one session per connection):"
echo
echo "| what | connections | calls/s | p50 | p99 | calls | failures |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for row in "echo run:run1" "echo run (32 sessions):run32" "GET /healthz (same daemon):health"; do
	name=${row%%:*}
	eval "line=\$${row##*:}"
	echo "| $name | $(field "$line" conns) | $(field "$line" rate) | $(ms "$(field "$line" rtt_p50_us)") | $(ms "$(field "$line" rtt_p99_us)") | $(field "$line" good) | $(field "$line" failures) |"
done
echo

echo "**3. KV writes** (kvwriter: one run per session makes N \`agent_kv_set\` calls of 200-byte" \
	"values, each acknowledged after its commit; all sessions' runs start together; writes/s =" \
	"acknowledged writes ÷ (last answer − first request); $kv_rounds rounds, median [range]." \
	"Peer: SQLite alone, one upsert per transaction, same schema and settings):"
echo
echo "| writer | sessions | writes per round | writes/s | failures |"
echo "|---|---:|---:|---:|---:|"
kv_median= # writes/s of "agenthost 32" and "unpinned 32", for the target
for row in "ceiling 1:SQLite alone (sessions_kv_ceiling), core 0" \
	"ceiling 32:SQLite alone (sessions_kv_ceiling), core 0" \
	"agenthost 1:agenthost (kvwriter agents), daemon on core 0" \
	"agenthost 32:agenthost (kvwriter agents), daemon on core 0" \
	"unpinned 1:agenthost (kvwriter agents), daemon on both cores" \
	"unpinned 32:agenthost (kvwriter agents), daemon on both cores"; do
	key=${row%%:*}
	lines=$(grep "^$key " "$kv_table")
	rates=$(echo "$lines" | tr ' ' '\n' | sed -n 's/^rate=//p' | sort -n)
	n=$(echo "$rates" | wc -l)
	med=$(echo "$rates" | sed -n "$(((n + 1) / 2))p") # the middle round (the lower one if even)
	fails=$(echo "$lines" | tr ' ' '\n' | sed -n 's/^failures=//p' | awk '{s += $1} END {print s + 0}')
	echo "| ${row#*:} | ${key#* } | $(field "$lines" writes) | $med [$(echo "$rates" | head -1)–$(echo "$rates" | tail -1)] | $fails |"
	case $key in "agenthost 32" | "unpinned 32") kv_median="$kv_median $med" ;; esac
done
set -- $kv_median
echo
echo "Target ≥ 20,000 acknowledged writes/s from 32 sessions: $1 (daemon on core 0), $2 (both" \
	"cores): **$([ "$1" -ge 20000 ] || [ "$2" -ge 20000 ] && echo met || echo not met)**."
echo

echo "**4 and 6. Live sessions** (echo sessions created by 32 connections at once up to each" \
	"level and left live; then the daemon's VmRSS and /proc/PID/fd, every agent's Rss and Pss" \
	"from smaps_rollup, MemAvailable; then $level_samples sequential create+destroy samples;" \
	"--max-sessions $((live + 1000))):"
echo
echo "| live | bulk creates/s | create p50 | create p99 | daemon RSS | daemon fds | agents | agents' RSS (sum) | agents' PSS (sum) | MemAvailable drop | failures |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
base=$(echo "$ramp" | grep ' level=0 ')
rss0=$(field "$base" rss_kb) fds0=$(field "$base" fds) mem0=$(field "$base" mem_available_kb)
echo "$ramp" | grep -v ' level=0 ' | while read -r line; do
	f1=$(field "$line" failures) f2=$(echo "$line" | sed 's/.* sample //' | tr ' ' '\n' | sed -n 's/^failures=//p')
	fa=$(field "$line" first_failure_at)
	echo "| $(field "$line" live) | $(field "$line" bulk_rate) | $(ms "$(field "$line" create_p50_us)") | $(ms "$(field "$line" create_p99_us)") | $(($(field "$line" rss_kb) / 1024)) MiB | $(field "$line" fds) | $(field "$line" agents) | $(($(field "$line" agents_rss_kb) / 1024)) MiB | $(($(field "$line" agents_pss_kb) / 1024)) MiB | $(((mem0 - $(field "$line" mem_available_kb)) / 1024)) MiB | $f1 while ramping$([ "$fa" = -1 ] || echo " (first at $fa live)"), $f2 in samples |"
done
top=$(echo "$ramp" | tail -1)
n_live=$(field "$top" live)
echo
echo "Before the ramp: daemon RSS $((rss0 / 1024)) MiB, $fds0 fds. At $n_live live sessions:"
awk -v r0="$rss0" -v r1="$(field "$top" rss_kb)" -v f0="$fds0" -v f1="$(field "$top" fds)" \
	-v n="$n_live" -v ar="$(field "$top" agents_rss_kb)" -v ap="$(field "$top" agents_pss_kb)" \
	-v m0="$mem0" -v m1="$(field "$top" mem_available_kb)" 'BEGIN {
	per = (r1 - r0) / n; fper = (f1 - f0) / n
	printf("- daemon RSS per live session: (%d − %d) KiB ÷ %d = **%.1f KiB** (target < 16 KiB: **%s**)\n",
		r1, r0, n, per, per < 16 ? "met" : "not met")
	printf("- daemon fds per live session: (%d − %d) ÷ %d = **%.3f** (%.3f counting every fd;" \
		" target ≤ 2: **%s**)\n", f1, f0, n, fper, f1 / n, fper <= 2 ? "met" : "not met")
	printf("- agents (reported separately): RSS %.0f KiB each (shared pages counted in each)," \
		" PSS %.0f KiB each; the machine'\''s MemAvailable fell %.0f KiB per live session" \
		" (everything the machine lost: the agents, the kernel side of their sandboxes, other" \
		" users of the machine; not broken down)\n",
		ar / n, ap / n, (m0 - m1) / n)
}'
echo "$ramp" | grep -v ' level=0 ' | awk '
function field(line, key,    i, n, kv) {
	n = split(line, kv, " ")
	for (i = 1; i <= n; i++) if (index(kv[i], key "=") == 1) return substr(kv[i], length(key) + 2)
	return ""
}
{ p = field($0, "create_p50_us") + 0; l[NR] = field($0, "live"); v[NR] = p
  if (NR == 1 || p < lo) lo = p; if (NR == 1 || p > hi) hi = p }
END {
	s = ""
	for (i = 1; i <= NR; i++) s = s sprintf("%s%s: %.2f ms", i > 1 ? ", " : "", l[i], v[i] / 1000)
	printf("- create p50 by live sessions: %s; highest ÷ lowest = %.2f (target flat, read as ≤ 1.3 on" \
		" this noisy machine: **%s**)\n", s, hi / lo, hi <= 1.3 * lo ? "met" : "not met")
}'
echo "- the daemon was stopped with SIG$stop_a with $n_live live sessions: gone in $(awk -v m="$stop_a_ms" 'BEGIN{printf("%.1f", m/1000)}') s$([ "$stop_a" = TERM ] && echo " (SIGKILL needed: $stop_a_killed)");" \
	"all its agents were gone $(awk -v m="$gone_a_ms" 'BEGIN{printf("%.1f", m/1000)}') s after the signal;" \
	"agent processes left behind after 60 s: $orphans_a; the next daemon started in $startup_b_ms ms" \
	"(not broken down; its start-up also removes the cgroups a killed daemon leaves)."

echo

echo "**5. Hibernated sessions.** Made in three ways, all in this run: $(field "$populate" sessions)" \
	"counter-h sessions (counter with \`hibernate_after_s: 1\`) created and run once each" \
	"through HTTP by 32 connections against a daemon with --max-sessions 64, so that creating" \
	"hibernated the least recently used ($(field "$populate" rate) sessions/s;" \
	"$hib_lru hibernated for max_sessions, $hib_idle when idle; failures $(field "$populate" failures));" \
	"the $n_live echo sessions of 4, hibernated by the daemon's restart; and $need clones of" \
	"the counter-h sessions' rows (sessions, KV, events, runs, with new ids) inserted with" \
	"sqlite3 while the daemon was stopped, in $(awk -v m="$clone_ms" 'BEGIN{printf("%.1f", m/1000)}') s." \
	"Population: $population(total $total; database $db_mb MB). A daemon was then started on it:"
echo
echo "| what | samples | p50 | p99 | max | failures |"
echo "|---|---:|---:|---:|---:|---:|"
echo "| first run of a random hibernated counter-h session (respawn, KV read and write, answer) | $(field "$resume" resume_n) | $(ms "$(field "$resume" resume_p50_us)") | $(ms "$(field "$resume" resume_p99_us)") | $(ms "$(field "$resume" resume_max_us)") | $(field "$resume" failures) |"
echo "| GET /healthz, idle daemon, every 10 ms for 12 s | $(field "$probe" get_n) | $(ms "$(field "$probe" get_p50_us)") | $(ms "$(field "$probe" get_p99_us)") | $(ms "$(field "$probe" get_max_us)") | $(field "$probe" failures) |"
echo "| peer: run of a live echo session (2.) | | $(ms "$(field "$run1" rtt_p50_us)") | $(ms "$(field "$run1" rtt_p99_us)") | $(ms "$(field "$run1" rtt_max_us)") | |"
echo "| peer: session create (1.) | | $(ms "$cp50") | $(ms "$cp99") | $(ms "$(field "$create" create_max_us)") | |"
echo
echo "Every resumed run answered \`\"output\":2\` unless counted as a failure (the count kept in KV" \
	"survived hibernation). Start-up with $total sessions: $startup_c_ms ms to the first /healthz." \
	"Daemon RSS $((rss_c0 / 1024)) MiB and $fds_c0 fds after start-up, $((rss_c1 / 1024)) MiB and" \
	"$fds_c1 fds after the resumes. Samples $(field "$resume" resume_n) over about" \
	"$((resume_samples / 10 + 2)) s, 100 ms apart (seed $(field "$resume" seed))."
echo
echo "Daemon log lines at warn or above: A $warn_a, KV (both cores) $warn_k, B $warn_b, C $warn_c."
for f in daemon-a daemon-k daemon-b daemon-c; do
	if [ -s "$tmp/$f.log" ]; then
		echo "$f:"
		sed 's/^ts=[^ ]* //' "$tmp/$f.log" | cut -c1-200 | sort | uniq -c | sort -rn | head -5 | sed 's/^/    /'
	fi
done
