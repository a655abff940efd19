#!/usr/bin/env bash
# Takes screenshots of the status page so anyone can look at it without
# running storyflow: builds the release binary, serves a temporary database
# with a slow builtin generator, creates a few stories (one run completed,
# one running, one cancelled), and photographs the dashboard, a story and a
# run with headless Chromium at desktop (1280x800) and phone (390x844)
# width, in light and dark mode.
#
#   scripts/screenshots.sh            # writes ./screenshots/*.png
#
# Needs chromium (apt-get install chromium) and curl. The PNGs are not
# committed (./screenshots is in .gitignore).
set -euo pipefail
cd "$(dirname "$0")/.."

CHROMIUM="${CHROMIUM:-$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)}"
if [ -z "$CHROMIUM" ]; then
    echo "screenshots.sh: chromium not found; install it with \`apt-get install chromium\` (or run scripts/test.sh, which does)" >&2
    exit 2
fi
command -v curl >/dev/null || { echo "screenshots.sh: curl not found; install it with \`apt-get install curl\`" >&2; exit 2; }

cargo build --release --locked --quiet
BIN="$PWD/target/release/storyflow"
OUT="$PWD/screenshots"
mkdir -p "$OUT"
TMP="$(mktemp -d)"
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$TMP"
}
trap cleanup EXIT

# --- serve a fresh database on a free port ---------------------------------
DELAY_MS=3000
RUST_LOG=info "$BIN" --db "$TMP/storyflow.db" serve --addr 127.0.0.1:0 --workers 2 \
    --builtin-delay-ms "$DELAY_MS" 2>"$TMP/server.log" &
SERVER_PID=$!
ADDR=""
for _ in $(seq 100); do
    ADDR="$(sed -n 's/.*serving http:\/\/\([0-9.:]*\).*/\1/p' "$TMP/server.log" | head -n1)"
    [ -n "$ADDR" ] && break
    sleep 0.1
done
[ -n "$ADDR" ] || { echo "screenshots.sh: storyflow did not start:" >&2; cat "$TMP/server.log" >&2; exit 1; }
BASE="http://$ADDR"
echo "storyflow at $BASE"

post() { curl -sS -X POST -H 'Content-Type: application/json' "$BASE$1" ${2:+-d "$2"}; }
get() { curl -sS "$BASE$1"; }
id_of() { grep -o '"id":"[^"]*"' | head -n1 | cut -d'"' -f4; }
status_of() { grep -o '"status":"[^"]*"' | head -n1 | cut -d'"' -f4; }
outline() { # outline N TITLE...: "## Chapter i: TITLE_i"
    local i=1; shift
    for title in "$@"; do printf '## Chapter %d: %s\n' "$i" "$title"; i=$((i + 1)); done
}

# --- the stories --------------------------------------------------------------
# Outlines as JSON strings (the titles hold no quotes or backslashes).
json_outline() { outline "$@" | sed ':a;N;$!ba;s/\n/\\n/g'; }
SALT=$(post /api/stories "{\"title\": \"The Salt Road\", \"premise\": \"A courier crosses a drowned country to deliver a letter nobody wants to receive.\", \"outline\": \"$(json_outline 3 'The Flood' 'The Ferryman' 'The Letter')\"}" | id_of)
KESTREL=$(post /api/stories "{\"title\": \"Lanterns Over Kestrel Bay\", \"premise\": \"Every autumn the lanterns of Kestrel Bay are lit for the boats that did not come back. This year one of them answers.\", \"outline\": \"$(json_outline 16 'Lamplighters' 'The Harbour Master' 'Low Tide' 'A Drowned Bell' 'Fog Warnings' 'The Night Market' 'Salt and Smoke' 'The Lighthouse Keeper' 'Storm Season' 'What the Nets Brought In' 'A Borrowed Boat' 'Kestrel Point' 'The Long Swim' 'Lanterns' 'Morning' 'Home Water')\"}" | id_of)
CARTO=$(post /api/stories '{"title": "The Cartographer'"'"'s Daughter", "premise": "She inherits a map of a city that does not exist yet, and the city starts to appear.", "chapter_count": 8}' | id_of)
post /api/stories '{"title": "Untitled winter story", "premise": "Two sisters, one frozen lake, a promise made at nine years old."}' >/dev/null

# --- the runs: one completes, one keeps running, one is cancelled ------------
SALT_RUN=$(post "/api/stories/$SALT/runs" | id_of)
KESTREL_RUN=$(post "/api/stories/$KESTREL/runs" | id_of)
CARTO_RUN=$(post "/api/stories/$CARTO/runs" | id_of)
post "/api/runs/$CARTO_RUN/cancel" >/dev/null
echo "waiting for \"The Salt Road\" to be written…"
for _ in $(seq 300); do
    [ "$(get "/api/runs/$SALT_RUN" | status_of)" = completed ] && break
    sleep 0.1
done
[ "$(get "/api/runs/$SALT_RUN" | status_of)" = completed ] || { echo "screenshots.sh: the first run did not complete" >&2; exit 1; }
# A few chapters into the long run, so its bar is part-way.
sleep "$(( DELAY_MS * 2 / 1000 ))"

# --- the pictures ----------------------------------------------------------------
# Reduced motion: the running bar's endless shimmer keeps headless Chromium's
# virtual clock from ever settling, and a bar caught mid-transition would
# disagree with the percentage printed beside it.
shoot() { # shoot NAME WIDTH HEIGHT PATH [extra chromium flags]
    local name="$1" width="$2" height="$3" path="$4"; shift 4
    "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --hide-scrollbars \
        --disable-quic --no-first-run --disable-background-networking --disable-component-update \
        --disable-sync --user-data-dir="$TMP/profile-$name" --window-size="$width,$height" \
        --force-prefers-reduced-motion --virtual-time-budget=4000 --screenshot="$OUT/$name.png" "$@" "$BASE$path" \
        >/dev/null 2>"$TMP/chromium-$name.log" || { cat "$TMP/chromium-$name.log" >&2; exit 1; }
    echo "  screenshots/$name.png"
}

echo "taking screenshots:"
shoot dashboard-1280 1280 800 /
shoot dashboard-390 390 844 /
shoot dashboard-390-full 390 2600 /
shoot run-1280 1280 800 "/#run/$KESTREL_RUN"
shoot run-390 390 844 "/#run/$KESTREL_RUN"
shoot story-1280 1280 800 "/#story/$SALT"
shoot story-390 390 844 "/#story/$SALT"
shoot dashboard-1280-dark 1280 800 / --force-dark-mode --blink-settings=preferredColorScheme=0
shoot dashboard-390-dark 390 844 / --force-dark-mode --blink-settings=preferredColorScheme=0
shoot story-1280-dark 1280 800 "/#story/$SALT" --force-dark-mode --blink-settings=preferredColorScheme=0

echo "run $KESTREL_RUN was $(get "/api/runs/$KESTREL_RUN" | grep -o '"progress":[0-9]*' | cut -d: -f2)% done at the end"
echo "done: $OUT"
