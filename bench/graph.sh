#!/usr/bin/env bash
# What the permission-graph authorizer costs, on PostgreSQL: revocation latency under
# load, the graph realm against a static-roles realm on the hot paths, decisions with
# nothing cached, and token joins. Builds nothing: expects target/release/switchyard and
# target/release/switchyard-bench (cargo build --release --bins).
#
#   bench/graph.sh [--repeat N] [--duration S] [--revoke-runs N] [--no-report]
#
# 1. Recreates database $GRAPH_DB (default sy_bench) on $PGHOST:$PGPORT as $PGUSER
#    (default 127.0.0.1:5432, postgres), applies the schema (switchyard migrate), and
#    writes the A/B fixture: 120 users with read on container ab_obj, with tokens.
# 2. A/B, as bench/ab.sh: fan-out to 100 subscribers (WebSocket/JSON and
#    RawSocket/MessagePack) and RPC with 16 callers, N trials of S seconds per realm,
#    alternating between realm `static` (anonymous, static role) and realm `workbench`
#    (token users with read on the object; the controller publishes, the dispatcher is
#    the callee) of one router configuration, bench/graph/router.toml; a fresh router
#    per trial; which realm goes first alternates too.
# 3. `revoke` (1000 users, 5000 subscriptions, 1000 events/s, 200 changes), --revoke-runs
#    times, a fresh router each.
# 4. `graph-cold` once: SUBSCRIBE with the object not cached, token joins/s.
# 5. bench/graph_report.py: the `graph` section of BENCHMARKS.md from this run's lines
#    (with bench/graph-notes.md, if present: a profile made by hand with
#    bench/graph_callgrind.sh).
#
# Every run's JSON line, with `label`, `graph_run` and the router log's WARN/ERROR
# counts, is appended to bench/graph-results.jsonl. The router listens on
# 127.0.0.1:$GRAPH_WS and :$GRAPH_RAW (default 18280, 18281).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPEAT=5
DURATION=10
REVOKE_RUNS=3
REPORT=1
while [[ $# -gt 0 ]]; do
    case "$1" in
        --repeat) REPEAT="$2"; shift 2 ;;
        --duration) DURATION="$2"; shift 2 ;;
        --revoke-runs) REVOKE_RUNS="$2"; shift 2 ;;
        --no-report) REPORT=0; shift ;;
        *) echo "usage: bench/graph.sh [--repeat N] [--duration S] [--revoke-runs N] [--no-report]" >&2; exit 2 ;;
    esac
done
ROUTER="$ROOT/target/release/switchyard"
BENCH="$ROOT/target/release/switchyard-bench"
CONFIG="$ROOT/bench/graph/router.toml"
OUT=${GRAPH_OUT:-$ROOT/bench/graph-results.jsonl}
PGHOST=${PGHOST:-127.0.0.1}
PGPORT=${PGPORT:-5432}
PGUSER=${PGUSER:-postgres}
DB=${GRAPH_DB:-sy_bench}
export SWITCHYARD_DATABASE_URL="postgres://$PGUSER@$PGHOST:$PGPORT/$DB"
WS_PORT=${GRAPH_WS:-18280}
RAW_PORT=${GRAPH_RAW:-18281}
WS_URL="ws://127.0.0.1:$WS_PORT/ws"
RUN_ID=$(date -u +%Y-%m-%dT%H:%M:%SZ)
for f in "$ROUTER" "$BENCH"; do
    [[ -x "$f" ]] || { echo "missing $f: cargo build --release --bins" >&2; exit 2; }
done
for tool in createdb dropdb curl python3 ss; do
    command -v "$tool" > /dev/null || { echo "bench/graph.sh needs $tool" >&2; exit 2; }
done
ulimit -n "$(ulimit -Hn)"   # 1000 sessions on each side

echo "== database $SWITCHYARD_DATABASE_URL" >&2
dropdb -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" --if-exists "$DB"
createdb -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" "$DB"
"$ROUTER" migrate --database-url "$SWITCHYARD_DATABASE_URL" > /dev/null
TMP=$(mktemp -d "${TMPDIR:-/tmp}/switchyard-graph.XXXXXX")
TOKENS="$TMP/tokens"
"$BENCH" graph-fixture --database-url "$SWITCHYARD_DATABASE_URL" --object ab_obj --users 120 --tokens-out "$TOKENS"

PID=""
LOG="$TMP/router.log"
stop() { [[ -n "$PID" ]] && kill -TERM "$PID" 2> /dev/null && wait "$PID" 2> /dev/null; PID=""; }
trap 'stop; rm -rf "$TMP"' EXIT

# A fresh router on bench/graph/router.toml, once both ports listen and the graph
# realm follows the database.
start() {
    "$ROUTER" serve --config "$CONFIG" --listen "127.0.0.1:$WS_PORT" --rawsocket "127.0.0.1:$RAW_PORT" > /dev/null 2> "$LOG" &
    PID=$!
    for _ in $(seq 100); do
        if curl -sf "http://127.0.0.1:$WS_PORT/metrics" 2> /dev/null | grep -q 'switchyard_graph_online{realm="workbench"} 1' \
            && ss -ltnH "sport = :$RAW_PORT" | grep -q .; then
            return 0
        fi
        sleep 0.1
    done
    echo "the router did not come up (or the graph realm not online); its log:" >&2
    cat "$LOG" >&2
    exit 1
}

# Appends one generator result with its label, this run's id and the router's log.
record() { # label json
    [[ -n "$2" ]] || { echo "$1: the generator produced nothing" >&2; return; }
    local warn error
    warn=$(grep -c "WARN" "$LOG" || true)
    error=$(grep -c "ERROR" "$LOG" || true)
    python3 -c 'import json,sys; r=json.loads(sys.argv[1]); r.update(label=sys.argv[2], graph_run=sys.argv[3], router_log_warn=int(sys.argv[4]), router_log_error=int(sys.argv[5])); print(json.dumps(r, sort_keys=True))' \
        "$2" "$1" "$RUN_ID" "$warn" "$error" >> "$OUT"
}

# One trial: a fresh router, one generator run against it.
trial() { # label generator-args...
    local label=$1
    shift
    start
    local json
    json=$("$BENCH" --router-pid "$PID" --label "$label" "$@" 2> "$TMP/bench.err" | tail -n 1 || true)
    sed -n '1,3p' "$TMP/bench.err" | sed "s/^/    /" >&2
    stop
    record "$label" "$json"
}

STATIC=(--realm static)
GRAPH_PUB=(--realm workbench --tokens "$TOKENS" --service controller-1:controller-1-bench)
GRAPH_RPC=(--realm workbench --tokens "$TOKENS" --service dispatcher-1:dispatcher-1-bench)
WORKLOADS=(
    "fanout-ws-json|PUB|--url $WS_URL --serializer json fanout --subscribers 100 --topic containers.ab_obj.logs"
    "rpc-ws-json|RPC|--url $WS_URL --serializer json rpc --callers 16 --procedure containers.ab_obj.inspect"
    "fanout-raw-msgpack|PUB|--url $WS_URL --rawsocket 127.0.0.1:$RAW_PORT --serializer msgpack fanout --subscribers 100 --topic containers.ab_obj.logs"
)
for w in "${WORKLOADS[@]}"; do
    IFS='|' read -r name kind rest <<< "$w"
    read -r -a args <<< "$rest"
    if [[ $kind == PUB ]]; then graph=("${GRAPH_PUB[@]}"); else graph=("${GRAPH_RPC[@]}"); fi
    for i in $(seq "$REPEAT"); do
        echo "== $name trial $i/$REPEAT" >&2
        if (( i % 2 )); then
            trial "static:$name" "${STATIC[@]}" --duration "$DURATION" "${args[@]}"
            trial "graph:$name" "${graph[@]}" --duration "$DURATION" "${args[@]}"
        else
            trial "graph:$name" "${graph[@]}" --duration "$DURATION" "${args[@]}"
            trial "static:$name" "${STATIC[@]}" --duration "$DURATION" "${args[@]}"
        fi
    done
done

for i in $(seq "$REVOKE_RUNS"); do
    echo "== revoke run $i/$REVOKE_RUNS" >&2
    trial "graph:revoke" --url "$WS_URL" --realm workbench --service controller-1:controller-1-bench \
        revoke --database-url "$SWITCHYARD_DATABASE_URL" --users 1000 --subscriptions-per-user 5 --rate 1000 --changes 200 --spacing-ms 30
done

echo "== graph-cold" >&2
trial "graph:cold" --url "$WS_URL" --realm workbench --service controller-1:controller-1-bench \
    graph-cold --database-url "$SWITCHYARD_DATABASE_URL" --users 50 --objects 100 --joins 5000 --concurrency 64

if [[ $REPORT == 1 ]]; then
    # A profile made by hand (bench/graph_callgrind.sh) goes into the section too.
    notes=()
    [[ -f "$ROOT/bench/graph-notes.md" ]] && notes=(--notes "$ROOT/bench/graph-notes.md")
    python3 "$ROOT/bench/graph_report.py" --results "$OUT" --run "$RUN_ID" --out "$ROOT/BENCHMARKS.md" \
        --command "bench/graph.sh --repeat $REPEAT --duration $DURATION --revoke-runs $REVOKE_RUNS" "${notes[@]}"
fi
