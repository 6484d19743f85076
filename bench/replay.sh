#!/usr/bin/env bash
# What the replay store costs and delivers (issue 8): history to a new subscriber, the
# fan-out with the memory store on and off, sustained durable publications, and one slow
# subscriber among fast ones. Builds nothing: expects target/release/switchyard and
# target/release/switchyard-bench (cargo build --release --bins). About 15 minutes.
#
#   bench/replay.sh [--repeat N] [--duration S] [--replay-trials N] [--durable-runs N]
#                   [--slow-runs N] [--slow-duration S] [--no-report]
#
# 1. replay: 10,000 events of 100 B stored on a topic, then --replay-trials fresh
#    sessions each ask for all of them, by SUBSCRIBE.Options._replay {"last": 10000} and
#    by wamp.subscription.get_events(sub, 10000); WebSocket/JSON, WebSocket/MessagePack,
#    RawSocket/MessagePack; a fresh router (bench/replay/stored.toml) per mode and transport.
# 2. fan-out to 100 subscribers, the memory store on (the embedded default realm1, no
#    config file: every topic stored) against off (bench/replay/nostore.toml: realm1
#    without [replay]); N trials of S seconds each, WebSocket/JSON and
#    RawSocket/MessagePack, alternating (which goes first alternates too), a fresh router
#    per trial, as bench/ab.sh.
# 3. durable: 8 publishers, 1,000 acknowledgements outstanding each, on 1 topic and on
#    1,000 topics, every topic durable (bench/replay/durable.toml); --durable-runs runs of
#    S seconds each, each on a freshly created database $REPLAY_DB (default
#    sy_replay_bench) on $PGHOST:$PGPORT as $PGUSER (127.0.0.1:5432, postgres).
# 4. slow consumer: 2,000 publications/s of 100 B for --slow-duration (60) seconds to 99
#    fast subscribers, with one more reading at 10 % of the rate and without it
#    (baseline), alternating, --slow-runs of each (bench/replay/stored.toml: 200,000
#    events per topic, more than the 120,000 of a run).
# 5. bench/replay_report.py: the `replay` section of BENCHMARKS.md from this run's lines
#    (with bench/replay-notes.md, if present: profiles and diagnostic runs made by hand).
#
# Every JSON line, with `label`, `replay_run`, `waited_for_quiet_s` and the router log's
# WARN/ERROR counts, is appended to bench/replay-results.jsonl. Before each trial the
# script waits (polling every 30 s, at most 3 minutes per trial and 10 in all) while a
# cargo or rustc process runs on the machine. The router listens on 127.0.0.1:$REPLAY_WS and :$REPLAY_RAW
# (default 18380, 18381).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPEAT=5
DURATION=10
REPLAY_TRIALS=25
DURABLE_RUNS=3
SLOW_RUNS=2
SLOW_DURATION=60
REPORT=1
usage="usage: bench/replay.sh [--repeat N] [--duration S] [--replay-trials N] [--durable-runs N] [--slow-runs N] [--slow-duration S] [--no-report]"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --repeat) REPEAT="$2"; shift 2 ;;
        --duration) DURATION="$2"; shift 2 ;;
        --replay-trials) REPLAY_TRIALS="$2"; shift 2 ;;
        --durable-runs) DURABLE_RUNS="$2"; shift 2 ;;
        --slow-runs) SLOW_RUNS="$2"; shift 2 ;;
        --slow-duration) SLOW_DURATION="$2"; shift 2 ;;
        --no-report) REPORT=0; shift ;;
        *) echo "$usage" >&2; exit 2 ;;
    esac
done
ROUTER="$ROOT/target/release/switchyard"
BENCH="$ROOT/target/release/switchyard-bench"
STORED="$ROOT/bench/replay/stored.toml"
NOSTORE="$ROOT/bench/replay/nostore.toml"
DURABLE="$ROOT/bench/replay/durable.toml"
OUT=${REPLAY_OUT:-$ROOT/bench/replay-results.jsonl}
PGHOST=${PGHOST:-127.0.0.1}
PGPORT=${PGPORT:-5432}
PGUSER=${PGUSER:-postgres}
DB=${REPLAY_DB:-sy_replay_bench}
DB_URL="postgres://$PGUSER@$PGHOST:$PGPORT/$DB"
WS_PORT=${REPLAY_WS:-18380}
RAW_PORT=${REPLAY_RAW:-18381}
WS_URL="ws://127.0.0.1:$WS_PORT/ws"
RUN_ID=$(date -u +%Y-%m-%dT%H:%M:%SZ)
for f in "$ROUTER" "$BENCH"; do
    [[ -x "$f" ]] || { echo "missing $f: cargo build --release --bins" >&2; exit 2; }
done
for tool in createdb dropdb curl python3 ss pgrep; do
    command -v "$tool" > /dev/null || { echo "bench/replay.sh needs $tool" >&2; exit 2; }
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/switchyard-replay.XXXXXX")
LOG="$TMP/router.log"
PID=""
stop() { [[ -n "$PID" ]] && kill -TERM "$PID" 2> /dev/null && wait "$PID" 2> /dev/null; PID=""; }
trap 'stop; rm -rf "$TMP"' EXIT

# Waits while a compilation or test run (cargo, rustc) is on the machine: it would take
# the cores the router and the generator share. At most $REPLAY_QUIET_WAIT s per trial
# (default 180) and $REPLAY_QUIET_BUDGET s over the whole run (default 600), so that a
# machine that is never quiet delays the run by minutes, not hours; the lines then say
# `machine_not_quiet`. Sets WAITED to the seconds waited before this trial.
WAITED=0
WAITED_TOTAL=0
wait_quiet() {
    WAITED=0
    while pgrep -x 'cargo|rustc' > /dev/null && (( WAITED < ${REPLAY_QUIET_WAIT:-180} && WAITED_TOTAL < ${REPLAY_QUIET_BUDGET:-600} )); do
        (( WAITED == 0 )) && echo "   (waiting for: $(pgrep -ax 'cargo|rustc' | head -n 1 | cut -c1-100))" >&2
        sleep 30
        WAITED=$((WAITED + 30))
        WAITED_TOTAL=$((WAITED_TOTAL + 30))
    done
}

# A fresh router: `start CONFIG` (or `start -` for the embedded default realm), once
# both ports listen (and, for the durable config, the durable store is online).
start() {
    local config=()
    [[ $1 != - ]] && config=(--config "$1")
    "$ROUTER" serve "${config[@]}" --listen "127.0.0.1:$WS_PORT" --rawsocket "127.0.0.1:$RAW_PORT" > /dev/null 2> "$LOG" &
    PID=$!
    for _ in $(seq 100); do
        if ss -ltnH "sport = :$WS_PORT" | grep -q . && ss -ltnH "sport = :$RAW_PORT" | grep -q .; then
            if [[ $1 != "$DURABLE" ]] || curl -sf "http://127.0.0.1:$WS_PORT/metrics" | grep -q 'switchyard_replay_durable_online{realm="realm1"} 1'; then
                return 0
            fi
        fi
        sleep 0.1
    done
    echo "the router did not come up; its log:" >&2
    cat "$LOG" >&2
    exit 1
}

# Appends every generator line with its label, this run's id and the router's log.
record() { # label file-of-json-lines
    [[ -s "$2" ]] || { echo "$1: the generator produced nothing" >&2; return; }
    local warn error
    warn=$(grep -c "WARN" "$LOG" || true)
    error=$(grep -c "ERROR" "$LOG" || true)
    python3 - "$2" "$1" "$RUN_ID" "$warn" "$error" "$WAITED" >> "$OUT" <<'EOF'
import json, sys
path, label, run, warn, error, waited = sys.argv[1:]
for line in open(path):
    if line.startswith("{"):
        r = json.loads(line)
        r.update(label=label, replay_run=run, router_log_warn=int(warn), router_log_error=int(error), waited_for_quiet_s=int(waited))
        print(json.dumps(r, sort_keys=True))
EOF
}

# One trial: a fresh router on CONFIG, one generator run against it.
trial() { # label config generator-args...
    local label=$1 config=$2
    shift 2
    wait_quiet
    start "$config"
    "$BENCH" --router-pid "$PID" --label "$label" "$@" > "$TMP/bench.out" 2> "$TMP/bench.err" || true
    sed -n '1,4p' "$TMP/bench.err" | sed "s/^/    /" >&2
    stop
    record "$label" "$TMP/bench.out"
}

TRANSPORTS=(
    "ws-json|--url $WS_URL --serializer json"
    "ws-msgpack|--url $WS_URL --serializer msgpack"
    "raw-msgpack|--url $WS_URL --rawsocket 127.0.0.1:$RAW_PORT --serializer msgpack"
)

echo "== 1. replay: 10,000 events of 100 B, $REPLAY_TRIALS trials per mode and transport" >&2
for t in "${TRANSPORTS[@]}"; do
    IFS='|' read -r name rest <<< "$t"
    read -r -a args <<< "$rest"
    for mode in replay get-events; do
        echo "== replay $mode $name" >&2
        trial "replay:$mode:$name" "$STORED" "${args[@]}" replay --events 10000 --payload 100 --trials "$REPLAY_TRIALS" --mode "$mode"
    done
done

echo "== 2. fan-out to 100, memory store on (embedded realm1) and off, $REPEAT trials of $DURATION s" >&2
for t in "ws-json|--url $WS_URL --serializer json" "raw-msgpack|--url $WS_URL --rawsocket 127.0.0.1:$RAW_PORT --serializer msgpack"; do
    IFS='|' read -r name rest <<< "$t"
    read -r -a args <<< "$rest"
    for i in $(seq "$REPEAT"); do
        echo "== fanout $name trial $i/$REPEAT" >&2
        if (( i % 2 )); then
            trial "fanout:store:$name" - "${args[@]}" --duration "$DURATION" fanout --subscribers 100
            trial "fanout:nostore:$name" "$NOSTORE" "${args[@]}" --duration "$DURATION" fanout --subscribers 100
        else
            trial "fanout:nostore:$name" "$NOSTORE" "${args[@]}" --duration "$DURATION" fanout --subscribers 100
            trial "fanout:store:$name" - "${args[@]}" --duration "$DURATION" fanout --subscribers 100
        fi
    done
done

echo "== 3. durable: 8 publishers × 1,000 outstanding, $DURABLE_RUNS runs of $DURATION s, fresh database each" >&2
export SWITCHYARD_DATABASE_URL="$DB_URL"
for topics in 1 1000; do
    for i in $(seq "$DURABLE_RUNS"); do
        echo "== durable topics=$topics run $i/$DURABLE_RUNS ($DB_URL)" >&2
        dropdb -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" --if-exists "$DB"
        createdb -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" "$DB"
        trial "durable:topics$topics" "$DURABLE" --url "$WS_URL" --serializer msgpack --rawsocket "127.0.0.1:$RAW_PORT" \
            --duration "$DURATION" durable --publishers 8 --window 1000 --topics "$topics" --payload 100
    done
done
dropdb -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" --if-exists "$DB"

echo "== 4. slow consumer: 2,000/s for $SLOW_DURATION s to 99 fast subscribers, with and without one at 10 %" >&2
for i in $(seq "$SLOW_RUNS"); do
    for kind in $( (( i % 2 )) && echo "baseline slow" || echo "slow baseline"); do
        fraction=0.1
        [[ $kind == baseline ]] && fraction=0
        echo "== slow-consumer $kind run $i/$SLOW_RUNS" >&2
        trial "slow:$kind" "$STORED" --url "$WS_URL" --serializer json --duration "$SLOW_DURATION" --drain 10 \
            slow-consumer --fast 99 --rate 2000 --slow-fraction "$fraction" --payload 100
    done
done

if [[ $REPORT == 1 ]]; then
    # Observations made by hand (profiles, diagnostic runs) go into the section too.
    notes=()
    [[ -f "$ROOT/bench/replay-notes.md" ]] && notes=(--notes "$ROOT/bench/replay-notes.md")
    python3 "$ROOT/bench/replay_report.py" --results "$OUT" --run "$RUN_ID" --out "$ROOT/BENCHMARKS.md" "${notes[@]}" \
        --command "bench/replay.sh --repeat $REPEAT --duration $DURATION --replay-trials $REPLAY_TRIALS --durable-runs $DURABLE_RUNS --slow-runs $SLOW_RUNS --slow-duration $SLOW_DURATION"
fi
