#!/usr/bin/env bash
# storyflow's benchmark suite: every figure next to a bare baseline measured in
# the same run, on the same machine, on the same data, and the ratio.
# Not part of the test command. Usage:
#   bash scripts/bench.sh            # DURATION=10 CONNS=32 REPEAT=3 by default
# Needs wrk (installed from apt when missing) and python3.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
CONNS=${CONNS:-32}
REPEAT=${REPEAT:-3}

if ! command -v wrk >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get install -y -qq wrk >/dev/null
fi

cargo build --release --quiet --bin storyflow --example baseline --example bench_data
BIN=$PWD/target/release/storyflow
BASE=$PWD/target/release/examples/baseline
GEN=$PWD/target/release/examples/bench_data
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]:-}"; do [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { # URL
    for _ in $(seq 1 400); do curl -sf -o /dev/null "$1" && return 0; sleep 0.025; done
    echo "no answer from $1" >&2; return 1
}
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# wrk once: prints "REQS P99_MS".
wrk_once() { # LUA URL
    wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -s "$1" "$2" | awk '
        /Requests\/sec/ {reqs=$2}
        $1=="99%" { v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; p99=v }
        END {printf "%s %s\n", reqs, p99}'
}
# wrk REPEAT times: prints "MEDIAN_REQS MEDIAN_P99".
wrk_median() { # LUA URL
    local runs=()
    for _ in $(seq 1 "$REPEAT"); do runs+=("$(wrk_once "$1" "$2")"); done
    printf '%s\n' "${runs[@]}" | awk '{print $1}' | median | tr '\n' ' '
    printf '%s\n' "${runs[@]}" | awk '{print $2}' | median
}

echo "generating data sets in $WORK ..." >&2
"$GEN" "$WORK/reads.db" 10000 100000 0
"$GEN" "$WORK/progress.db" 2000 2000 0 active
"$GEN" "$WORK/large.db" 100000 1000000 300
cp "$WORK/reads.db" "$WORK/update.db"

cat > "$WORK/fixed.lua" <<'EOF'
request = function() return wrk.format("GET", "/health") end
EOF
cat > "$WORK/bare-run.lua" <<'EOF'
request = function()
  return wrk.format("GET", string.format("/runs/10000000-0000-4000-8000-%012d", math.random(0, 99999)))
end
EOF
cat > "$WORK/api-run.lua" <<'EOF'
request = function()
  return wrk.format("GET", string.format("/api/runs/10000000-0000-4000-8000-%012d", math.random(0, 99999)))
end
EOF
# Each wrk thread reports on its own 1,000 runs, in rising order per run.
cat > "$WORK/progress.lua" <<'EOF'
local next_thread = 0
function setup(thread) thread:set("offset", next_thread * 1000); next_thread = next_thread + 1 end
local counter = 0
request = function()
  counter = counter + 1
  local run = offset + (counter % 1000)
  local done = math.floor(counter / 1000) + 2  -- the warm-up reported 1
  if done > 1000 then done = 1000 end
  return wrk.format("POST", string.format("/api/runs/10000000-0000-4000-8000-%012d/progress", run),
    {["Content-Type"] = "application/json"}, string.format('{"chapters_done": %d}', done))
end
EOF

# --- 1. reads: bare server, bare point select, storyflow GET /api/runs/{id}
port=$(free_port)
"$BASE" serve "$WORK/reads.db" "127.0.0.1:$port" 2>/dev/null & PIDS+=($!)
wait_http "http://127.0.0.1:$port/health"
read -r fixed_rps fixed_p99 <<<"$(wrk_median "$WORK/fixed.lua" "http://127.0.0.1:$port")"
read -r bare_rps bare_p99 <<<"$(wrk_median "$WORK/bare-run.lua" "http://127.0.0.1:$port")"
kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true

port=$(free_port)
RUST_LOG=warn "$BIN" --db "$WORK/reads.db" serve --addr "127.0.0.1:$port" --workers 0 2>/dev/null & PIDS+=($!)
sf_pid=${PIDS[-1]}
wait_http "http://127.0.0.1:$port/api/health"
sleep 1
rss_idle=$(rss_kb "$sf_pid")
( peak=0; while kill -0 "$sf_pid" 2>/dev/null; do r=$(rss_kb "$sf_pid" 2>/dev/null || echo 0); [ "${r:-0}" -gt "$peak" ] && peak=$r && echo "$peak" > "$WORK/peak"; sleep 0.2; done ) &
read -r api_rps api_p99 <<<"$(wrk_median "$WORK/api-run.lua" "http://127.0.0.1:$port")"
kill "$sf_pid"; wait "$sf_pid" 2>/dev/null || true

# --- 2. progress updates: storyflow vs the bare server doing one UPDATE by
# primary key per POST (same data, same load), and a bare UPDATE loop
bare_updates=$("$BASE" update "$WORK/update.db" 5)
cp "$WORK/progress.db" "$WORK/bare-progress.db"
sed 's#/api/runs/#/runs/#' "$WORK/progress.lua" > "$WORK/bare-progress.lua"
port=$(free_port)
"$BASE" serve "$WORK/bare-progress.db" "127.0.0.1:$port" 2>/dev/null & PIDS+=($!)
wait_http "http://127.0.0.1:$port/health"
OLD_REPEAT=$REPEAT; REPEAT=1
read -r bare_progress_rps _ <<<"$(wrk_median "$WORK/bare-progress.lua" "http://127.0.0.1:$port")"
REPEAT=$OLD_REPEAT
kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true
port=$(free_port)
RUST_LOG=warn "$BIN" --db "$WORK/progress.db" serve --addr "127.0.0.1:$port" --workers 0 2>/dev/null & PIDS+=($!)
sf_pid=${PIDS[-1]}
wait_http "http://127.0.0.1:$port/api/health"
metric() { curl -s "http://127.0.0.1:$port/api/metrics" | python3 -c "import json,sys; m=json.load(sys.stdin); print(eval(sys.argv[1]))" "$1"; }
# Start every run with a first report, as a worker would: it reads the run's
# story and chapter count once (the cache's cold misses), outside the window.
python3 - "$port" <<'EOF'
import sys, urllib.request
for i in range(2000):
    req = urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}/api/runs/10000000-0000-4000-8000-{i:012d}/progress",
                                 data=b'{"chapters_done": 1}', headers={"Content-Type": "application/json"}, method="POST")
    urllib.request.urlopen(req).read()
EOF
applied0=$(metric 'm["progress_updates"]["applied"]'); sql0=$(metric 'm["sql_statements"]')
hits0=$(metric 'm["chapter_count_cache"]["hits"]'); misses0=$(metric 'm["chapter_count_cache"]["misses"]')
( while kill -0 "$sf_pid" 2>/dev/null; do r=$(rss_kb "$sf_pid" 2>/dev/null || echo 0); p=$(cat "$WORK/peak" 2>/dev/null || echo 0); [ "${r:-0}" -gt "$p" ] && echo "$r" > "$WORK/peak"; sleep 0.2; done ) &
OLD_REPEAT=$REPEAT; REPEAT=1
read -r progress_rps progress_p99 <<<"$(wrk_median "$WORK/progress.lua" "http://127.0.0.1:$port")"
REPEAT=$OLD_REPEAT
applied1=$(metric 'm["progress_updates"]["applied"]'); sql1=$(metric 'm["sql_statements"]')
# Metrics requests cost no SQL; everything in between is progress.
hits1=$(metric 'm["chapter_count_cache"]["hits"]'); misses1=$(metric 'm["chapter_count_cache"]["misses"]')
hit_rate=$(python3 -c "h=$hits1-$hits0; m=$misses1-$misses0; print(round(h / max(h + m, 1), 4))")
cache_entries=$(metric 'm["chapter_count_cache"]["entries"]')
applied=$((applied1 - applied0))
applied_rate=$(python3 -c "print(round($applied / $DURATION))")
stmts_per_update=$(python3 -c "print(round(($sql1 - $sql0) / max($applied, 1), 3))")
kill "$sf_pid"; wait "$sf_pid" 2>/dev/null || true
rss_load=$(cat "$WORK/peak")

# --- 3. the large database: sweep, health check, first answer after start
antijoin_ms=$("$BASE" antijoin "$WORK/large.db")
health_ms=$(python3 - "$BIN" "$WORK/large.db" <<'EOF'
import subprocess, sys, time
best = None
for _ in range(3):
    t = time.monotonic()
    subprocess.run([sys.argv[1], "--db", sys.argv[2], "health-check", "--json"], capture_output=True)
    d = (time.monotonic() - t) * 1000
    best = d if best is None else min(best, d)
print(round(best, 1))
EOF
)
port=$(free_port)
first_answer_ms=$(python3 - "$BIN" "$WORK/large.db" "$port" <<'EOF'
import subprocess, sys, time, urllib.request
bin, db, port = sys.argv[1:4]
start = time.monotonic()
proc = subprocess.Popen([bin, "--db", db, "serve", "--addr", f"127.0.0.1:{port}", "--workers", "0",
                         "--sweep-interval-s", "2"], stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
while True:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=1).read()
        break
    except Exception:
        time.sleep(0.001)
print(round((time.monotonic() - start) * 1000, 1))
open(sys.argv[2] + ".pid", "w").write(str(proc.pid))
EOF
)
sf_pid=$(cat "$WORK/large.db.pid"); PIDS+=("$sf_pid")
sweep_json() { curl -s "http://127.0.0.1:$port/api/health" | python3 -c 'import json,sys; s=json.load(sys.stdin)["last_sweep"]; print(s["id"] if s else 0, s["duration_ms"] if s else 0)'; }
for _ in $(seq 1 600); do read -r sweep_id first_sweep_ms <<<"$(sweep_json)"; [ "$sweep_id" -ge 1 ] && break; sleep 0.1; done
for _ in $(seq 1 600); do read -r sweep_id timer_sweep_ms <<<"$(sweep_json)"; [ "$sweep_id" -ge 3 ] && break; sleep 0.1; done
kill "$sf_pid"; wait "$sf_pid" 2>/dev/null || true

# --- 4. a 100-chapter book with the builtin generator
port=$(free_port)
RUST_LOG=warn "$BIN" --db "$WORK/book.db" serve --addr "127.0.0.1:$port" 2>/dev/null & PIDS+=($!)
sf_pid=${PIDS[-1]}
wait_http "http://127.0.0.1:$port/api/health"
book_ms=$(python3 - "$port" <<'EOF'
import json, sys, time, urllib.request
base = f"http://127.0.0.1:{sys.argv[1]}"
def call(method, path, body=None):
    req = urllib.request.Request(base + path, method=method, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"} if body is not None else {})
    return json.load(urllib.request.urlopen(req))
story = call("POST", "/api/stories", {"title": "A Hundred Chapters", "premise": "Long.", "chapter_count": 100,
                                      "outline": "".join(f"## Chapter {i}: Part {i}\n" for i in range(1, 101))})
start = time.monotonic()
run = call("POST", f"/api/stories/{story['id']}/runs")
while call("GET", f"/api/runs/{run['id']}")["status"] not in ("completed", "failed"):
    time.sleep(0.002)
print(round((time.monotonic() - start) * 1000, 1))
EOF
)
kill "$sf_pid"; wait "$sf_pid" 2>/dev/null || true

ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
echo
echo "storyflow benchmarks ($(nproc) cores; wrk -t2 -c$CONNS -d${DURATION}s, medians of $REPEAT)"
printf '%-46s %14s %14s %8s  %s\n' "figure" "storyflow" "baseline" "ratio" "target"
printf '%-46s %14s %14s %8s  %s\n' "GET /api/runs/{id} requests/s" "$api_rps" "$bare_rps" "$(ratio "$api_rps" "$bare_rps")" ">= 0.60 of bare point select"
printf '%-46s %14s %14s %8s  %s\n' "GET /api/runs/{id} p99 ms" "$api_p99" "$bare_p99" "" "< 5 ms"
printf '%-46s %14s %14s %8s  %s\n' "bare server, 200-byte JSON requests/s" "" "$fixed_rps" "" "(reference)"
printf '%-46s %14s %14s %8s  %s\n' "progress updates applied/s (32 conns)" "$applied_rate" "$bare_progress_rps" "$(ratio "$applied_rate" "$bare_progress_rps")" ">= 20000/s; baseline: bare server + UPDATE"
printf '%-46s %14s %14s %8s  %s\n' "bare UPDATE loop, no HTTP, updates/s" "" "$bare_updates" "" "(reference)"
printf '%-46s %14s %14s %8s  %s\n' "SQL statements per applied update" "$stmts_per_update" "1" "" "exactly 1"
printf '%-46s %14s %14s %8s  %s\n' "chapter-count cache hit rate (load window)" "$hit_rate" "" "" "> 0.99 (entries: $cache_entries)"
printf '%-46s %14s %14s %8s  %s\n' "timer sweep ms (100k stories, 1M runs)" "$timer_sweep_ms" "$antijoin_ms" "$(ratio "$timer_sweep_ms" "$antijoin_ms")" "<= 1.3x bare anti-join"
printf '%-46s %14s %14s %8s  %s\n' "first sweep ms (with quick_check)" "$first_sweep_ms" "$antijoin_ms" "$(ratio "$first_sweep_ms" "$antijoin_ms")" ""
printf '%-46s %14s %14s %8s  %s\n' "health-check (quick) ms, whole process" "$health_ms" "$antijoin_ms" "$(ratio "$health_ms" "$antijoin_ms")" "<= 1.3x bare anti-join"
printf '%-46s %14s %14s %8s  %s\n' "first HTTP answer after start ms (large db)" "$first_answer_ms" "" "" "< 100 ms"
printf '%-46s %14s %14s %8s  %s\n' "RSS idle MB" "$((rss_idle / 1024))" "" "" "< 30 MB"
printf '%-46s %14s %14s %8s  %s\n' "RSS under load MB" "$((rss_load / 1024))" "" "" "< 60 MB"
printf '%-46s %14s %14s %8s  %s\n' "builtin 100-chapter book ms" "$book_ms" "" "" "< 1000 ms"
