#!/usr/bin/env bash
# A benchmark, not a test: keeps 64 connections busy for 30 s against the
# release binary on a fresh temporary database, with a mix of reads (45 %),
# progress reports from external workers (35 %) and writes (20 %; see
# scripts/load-test.lua), through wrk (Debian's package, installed if
# missing). Prints requests/s, latency percentiles, and the count of 5xx
# answers and of DATABASE_BUSY / "database is locked" reaching a client;
# exits non-zero if either is not zero.
#
#   bash scripts/load-test.sh
#   LOAD_CONNECTIONS=128 LOAD_DURATION=60s LOAD_THREADS=4 bash scripts/load-test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

connections="${LOAD_CONNECTIONS:-64}"
duration="${LOAD_DURATION:-30s}"
threads="${LOAD_THREADS:-2}"
runs="${LOAD_RUNS:-64}"

if ! command -v wrk >/dev/null 2>&1; then
    echo "installing wrk from Debian's packages" >&2
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk >/dev/null
fi

cargo build --release --locked --quiet
binary="$(cd "${CARGO_TARGET_DIR:-target}" && pwd)/release/storyflow"

work="$(mktemp -d)"
server=""
stop() {
    if [ -n "$server" ]; then
        kill "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap stop EXIT

# No workers: the progress reports come from outside, as from external
# workers, and nothing else writes meanwhile.
RUST_LOG=warn,storyflow::cli=info "$binary" --db "$work/load.db" serve --addr 127.0.0.1:0 \
    --workers 0 --http-max-connections "$((connections + 16))" 2> "$work/server.log" &
server=$!
base=""
for _ in $(seq 1 300); do
    base="$(grep -o 'serving http://[^ ]*' "$work/server.log" | head -n 1 | cut -d' ' -f2 || true)"
    [ -n "$base" ] && break
    kill -0 "$server" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
    sleep 0.1
done
[ -n "$base" ] || { cat "$work/server.log" >&2; echo "load-test: storyflow did not start" >&2; exit 1; }

# Stories with a run each, for the progress reports to aim at.
field() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
for i in $(seq 1 "$runs"); do
    story="$(curl -sf -H 'Content-Type: application/json' \
        -d "{\"title\": \"Load story $i\", \"chapter_count\": 1000}" "$base/api/stories" | field id)"
    run="$(curl -sf -X POST "$base/api/stories/$story/runs" | field id)"
    echo "$story $run" >> "$work/ids"
done

echo "load-test: $connections connections for $duration on $threads wrk threads against $base ($runs runs)" >&2
wrk -t "$threads" -c "$connections" -d "$duration" --timeout 10s --latency \
    -s scripts/load-test.lua "$base" -- "$work/ids" | tee "$work/wrk.log"

locked_in_log="$(grep -c 'database is locked' "$work/server.log" || true)"
curl -sf "$base/api/metrics" > "$work/metrics.json"
python3 - "$work/metrics.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
p = m["progress_updates"]
print(f"  server: {m['http_requests']} requests, {m['http_errors']} errors; progress applied {p['applied']}, "
      f"skipped {p['skipped']}; {m['sql_statements']} SQL statements")
PY
read -r _ requests rate p99 server_errors busy other socket_errors \
    <<< "$(grep '^LOADTEST ' "$work/wrk.log")"
echo "  server log lines with 'database is locked': $locked_in_log"
status=0
if [ "$server_errors" -ne 0 ] || [ "$busy" -ne 0 ] || [ "$locked_in_log" -ne 0 ]; then
    echo "load-test: FAILED: $server_errors 5xx, $busy DATABASE_BUSY answers" >&2
    status=1
fi
echo "load-test: $requests requests, $rate requests/s, p99 $p99 ms, $server_errors 5xx, $busy busy, $other other non-2xx, $socket_errors socket errors"
exit "$status"
