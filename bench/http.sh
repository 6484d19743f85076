#!/usr/bin/env bash
# HTTP publications per router CPU-second: Switchyard's HTTP bridge (POST /publish)
# against Crossbar's HTTP Bridge publisher service, on this machine, in one run.
#
#   bench/http.sh [--repeat N] [--duration S] [--connections C] [--payload B]
#       (default: 3 trials of 10 s per router, 16 keep-alive connections, 100 B)
#
# Both routers get the same requests from the same generator (target/release/
# switchyard-bench http-publish): `{"topic": T, "args": ["x" * B]}` POSTed on C
# keep-alive connections, each a closed loop, with one WAMP subscriber (WebSocket,
# JSON) counting the events, so only delivered publications count. Switchyard runs
# with no configuration (the embedded realm1, anonymous); Crossbar with bench/routers.sh's
# realm1 and a publisher at /publish for the anonymous role. Trials alternate between
# the routers, each started fresh, so a noisy moment hurts both alike. The router's CPU
# is read from /proc (Crossbar: its router worker, which serves the web transport).
#
# Writes bench/http-results.jsonl and the "http" section of BENCHMARKS.md.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
REPEAT=3
DURATION=10
CONNECTIONS=16
PAYLOAD=100
while [[ $# -gt 0 ]]; do
    case "$1" in
        --repeat) REPEAT="$2"; shift 2 ;;
        --duration) DURATION="$2"; shift 2 ;;
        --connections) CONNECTIONS="$2"; shift 2 ;;
        --payload) PAYLOAD="$2"; shift 2 ;;
        -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

TMP=${TMPDIR:-/tmp}
VENV=${SWITCHYARD_BENCH_VENV:-$TMP/switchyard-bench-venv}
CROSSBAR_VERSION=${CROSSBAR_VERSION:-26.10.1}
SY_WS=${SY_WS:-18380}
SY_RAW=${SY_RAW:-18381}
CB_WS=${CB_WS:-19380}
CB_RAW=${CB_RAW:-19381}
WORK=$(mktemp -d "$TMP/switchyard-http.XXXXXX")
CBDIR="$WORK/crossbar/.crossbar"
BENCH="$ROOT/target/release/switchyard-bench"
ROUTER_BIN="$ROOT/target/release/switchyard"
OUT="$ROOT/bench/http-results.jsonl"
ROUTER_PID=""
NODE_PID=""

log() { printf '\n== %s\n' "$*" >&2; }
source "$ROOT/bench/routers.sh"

cleanup() {
    [[ -n "$ROUTER_PID" && -z "$NODE_PID" ]] && stop_switchyard
    [[ -n "$NODE_PID" ]] && stop_crossbar
    rm -rf "$WORK"
}
trap cleanup EXIT

install_crossbar
log "cargo build --release (switchyard, switchyard-bench)"
cargo build --release --bin switchyard --bin switchyard-bench
write_crossbar_config '"publish": {"type": "publisher", "realm": "realm1", "role": "anonymous"}'
mkdir -p "$WORK/crossbar"
: > "$OUT"
START=$(date -u +%Y-%m-%dT%H:%M:%SZ)

trial() { # label ws-port
    "$BENCH" --label "$1" --router-pid "$ROUTER_PID" --duration "$DURATION" --url "ws://127.0.0.1:$2/ws" \
        http-publish --connections "$CONNECTIONS" --payload "$PAYLOAD" --http-url "http://127.0.0.1:$2/publish" \
        >> "$OUT" || echo "trial $1 failed (see its JSON line)" >&2
    kill -0 "$ROUTER_PID" 2>/dev/null || { echo "the router ($1) died" >&2; return 1; }
}

for ((rep = 1; rep <= REPEAT; rep++)); do
    log "trial $rep of $REPEAT: Switchyard"
    start_switchyard
    trial switchyard "$SY_WS"
    stop_switchyard
    log "trial $rep of $REPEAT: Crossbar"
    start_crossbar
    trial crossbar "$CB_WS"
    stop_crossbar
done

log "Report"
python3 "$ROOT/bench/http_report.py" --results "$OUT" --started "$START" \
    --command "bench/http.sh --repeat $REPEAT --duration $DURATION --connections $CONNECTIONS --payload $PAYLOAD" \
    --crossbar "$CROSSBAR_VERSION" | python3 "$ROOT/bench/sections.py" put "$ROOT/BENCHMARKS.md" http
echo "wrote bench/http-results.jsonl and the http section of BENCHMARKS.md" >&2
