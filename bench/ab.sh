#!/usr/bin/env bash
# Two builds of Switchyard side by side on the hot paths, for a change that touches the
# path of a publish or a call: same load generator, same workloads, trials alternating
# between the two routers so that a noisy moment hurts both alike.
#
#   bench/ab.sh BEFORE_BIN AFTER_BIN              3 trials of 10 s per workload and router
#   bench/ab.sh --repeat 5 --duration 5 A B
#
# Workloads: fan-out to 100 subscribers and RPC with 16 callers over WebSocket/JSON, and
# fan-out to 100 over RawSocket/MessagePack. Prints, per workload, the median of each
# router's figure per router CPU-second and the ratio after/before; every trial's JSON
# line goes to bench/ab-results.jsonl. The generator is target/release/switchyard-bench.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPEAT=3
DURATION=10
while [[ $# -gt 2 ]]; do
    case "$1" in
        --repeat) REPEAT="$2"; shift 2 ;;
        --duration) DURATION="$2"; shift 2 ;;
        *) echo "usage: bench/ab.sh [--repeat N] [--duration S] BEFORE_BIN AFTER_BIN" >&2; exit 2 ;;
    esac
done
[[ $# -eq 2 ]] || { echo "usage: bench/ab.sh [--repeat N] [--duration S] BEFORE_BIN AFTER_BIN" >&2; exit 2; }
BEFORE=$1
AFTER=$2
BENCH="$ROOT/target/release/switchyard-bench"
OUT="$ROOT/bench/ab-results.jsonl"
WS_PORT=${AB_WS:-18180}
RAW_PORT=${AB_RAW:-18181}
[[ -x "$BENCH" ]] || { echo "build the generator first: cargo build --release --bin switchyard-bench" >&2; exit 2; }
: > "$OUT"

PID=""
stop() { [[ -n "$PID" ]] && kill -TERM "$PID" 2>/dev/null && wait "$PID" 2>/dev/null; PID=""; }
trap stop EXIT

# One trial: start `bin`, run one workload against it, stop it.
trial() { # label bin workload-args...
    local label=$1 bin=$2
    shift 2
    "$bin" serve --listen "127.0.0.1:$WS_PORT" --rawsocket "127.0.0.1:$RAW_PORT" > /dev/null 2>&1 &
    PID=$!
    for _ in $(seq 50); do
        ss -ltnH "sport = :$WS_PORT" | grep -q . && ss -ltnH "sport = :$RAW_PORT" | grep -q . && break
        sleep 0.1
    done
    "$BENCH" --label "$label" --router-pid "$PID" --duration "$DURATION" "$@" 2> /dev/null >> "$OUT" || true
    stop
}

WORKLOADS=(
    "fanout-ws-json|--url ws://127.0.0.1:$WS_PORT/ws --serializer json fanout --subscribers 100"
    "rpc-ws-json|--url ws://127.0.0.1:$WS_PORT/ws --serializer json rpc --callers 16"
    "fanout-raw-msgpack|--rawsocket 127.0.0.1:$RAW_PORT --serializer msgpack fanout --subscribers 100"
)
for w in "${WORKLOADS[@]}"; do
    name=${w%%|*}
    read -r -a args <<< "${w#*|}"
    for i in $(seq "$REPEAT"); do
        echo "== $name trial $i/$REPEAT" >&2
        trial "before:$name" "$BEFORE" "${args[@]}"
        trial "after:$name" "$AFTER" "${args[@]}"
    done
done

TABLE=$(python3 - "$OUT" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def figure(r):
    return r.get("events_per_router_cpu_s") or r.get("calls_per_router_cpu_s")
by = {}
for r in rows:
    side, name = r["label"].split(":", 1)
    by.setdefault(name, {}).setdefault(side, []).append(r)
print("| workload | before per router CPU-s (median) | after | after/before | trials | failed or lossy trials |")
print("|---|---|---|---|---|---|")
for name, sides in by.items():
    med = {s: statistics.median(figure(r) for r in rs) for s, rs in sides.items()}
    bad = sum(1 for rs in sides.values() for r in rs if not r.get("ok") or r.get("loss", 0))
    n = min(len(rs) for rs in sides.values())
    ratio = med["after"] / med["before"]
    print(f"| {name} | {med['before']:,.0f} | {med['after']:,.0f} | {ratio:.3f} | {n} | {bad} |")
EOF
)
echo "$TABLE"
# The comparison also goes into BENCHMARKS.md, where compare.sh keeps it.
python3 "$ROOT/bench/sections.py" put "$ROOT/BENCHMARKS.md" ab <<EOF
## Before and after a change to the hot paths (bench/ab.sh)

\`bench/ab.sh --repeat $REPEAT --duration $DURATION $BEFORE $AFTER\`, $(date -u +%Y-%m-%d). Trials alternate
between the two routers; figures per router CPU-second, medians; raw results in
\`bench/ab-results.jsonl\`.

$TABLE
EOF
