#!/usr/bin/env bash
# The Advanced Profile figures, side by side on this machine, trials interleaved so a
# noisy moment hurts every side alike:
#   - RPC, 16 callers, WebSocket/JSON, 100 B: Switchyard against nexus (the Go router,
#     target/nexusd, built by bench/build-nexus.sh), calls per router CPU-second;
#   - a shared registration with 4 round-robin callees against 1 callee (Switchyard);
#   - joins per router CPU-second with and without a subscriber to the session meta
#     events (wamp.session.on_join, and on_join with on_leave);
#   - a quiet realm's publish→event latency (1,000/s, 10 subscribers) alone, and beside
#     a realm flooded by 8 sessions publishing as fast as the router answers, held to
#     1,000 publications per second per session by its [limits].
#
#   bench/advanced.sh [--repeat N] [--duration S] [--parts rpc,joins,tenants]
#       (default: all parts, 3 trials of 10 s; with --parts, the other parts' earlier
#       results in the results file are kept)
#
# Writes bench/advanced-results.jsonl and the "advanced" section of BENCHMARKS.md.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
REPEAT=3
DURATION=10
PARTS=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --repeat) REPEAT="$2"; shift 2 ;;
        --duration) DURATION="$2"; shift 2 ;;
        --parts) PARTS="$2"; shift 2 ;;
        *) echo "usage: bench/advanced.sh [--repeat N] [--duration S] [--parts rpc,joins,tenants]" >&2; exit 2 ;;
    esac
done
part() { [[ -z "$PARTS" || ",$PARTS," == *",$1,"* ]]; }
BENCH="$ROOT/target/release/switchyard-bench"
ROUTER="$ROOT/target/release/switchyard"
NEXUS="$ROOT/target/nexusd"
OUT="$ROOT/bench/advanced-results.jsonl"
for b in "$BENCH" "$ROUTER"; do
    [[ -x "$b" ]] || { echo "build first: cargo build --release --bin switchyard --bin switchyard-bench" >&2; exit 2; }
done
[[ -x "$NEXUS" ]] || { echo "build nexusd first: bench/build-nexus.sh" >&2; exit 2; }
WS=${ADV_WS:-18280}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/switchyard-advanced.XXXXXX")
PID=""
stop() { if [[ -n "$PID" ]]; then kill -TERM "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi; PID=""; }
trap 'stop; rm -rf "$WORK"' EXIT
# Earlier results of the parts not run now are kept.
if [[ -z "$PARTS" ]]; then
    : > "$OUT"
else
    touch "$OUT"
    python3 - "$OUT" "$PARTS" <<'KEEP'
import json, sys
path, parts = sys.argv[1], sys.argv[2].split(",")
labels = {"rpc": ("rpc",), "joins": ("joins",), "tenants": ("quiet", "flood")}
drop = tuple(p for part in parts for p in labels.get(part, ()))
kept = [l for l in open(path) if l.strip() and not json.loads(l)["label"].split(":", 1)[1].startswith(drop)]
open(path, "w").writelines(kept)
KEEP
fi

wait_port() {
    for _ in $(seq 100); do
        ss -ltnH "sport = :$WS" | grep -q . && return 0
        sleep 0.1
    done
    echo "nothing listens on $WS" >&2
    return 1
}

# The two-realm configuration of the tenants trial: `flood` held by [limits], `quiet` not.
cat > "$WORK/tenants.toml" <<EOF
[transport]
listen = "127.0.0.1:$WS"
rawsocket = "off"

[[realms]]
name = "quiet"
anonymous = "guest"
[[realms.roles]]
name = "guest"
[[realms.roles.permissions]]
uri = ""
match = "prefix"
allow = { call = true, register = true, publish = true, subscribe = true }

[[realms]]
name = "flood"
anonymous = "guest"
[[realms.roles]]
name = "guest"
[[realms.roles.permissions]]
uri = ""
match = "prefix"
allow = { call = true, register = true, publish = true, subscribe = true }
[realms.limits]
publications_per_second = 1000
EOF

cat > "$WORK/nexus.json" <<EOF
{
  "websocket": {"address": "127.0.0.1:$WS", "keep_alive": 0, "enable_compression": false, "allow_origins": ["*"]},
  "rawsocket": {"tcp_address": ""},
  "router": {"realms": [{"uri": "realm1", "anonymous_auth": true, "allow_disclose": true}], "debug": false}
}
EOF

start_switchyard() { # [config]
    if [[ $# -gt 0 ]]; then
        "$ROUTER" serve --config "$1" > /dev/null 2>&1 &
    else
        "$ROUTER" serve --listen "127.0.0.1:$WS" --rawsocket off > /dev/null 2>&1 &
    fi
    PID=$!
    wait_port
}

start_nexus() {
    (cd "$WORK" && exec "$NEXUS" -c "$WORK/nexus.json") > /dev/null 2>&1 &
    PID=$!
    wait_port
}

# One trial: label, how to start, workload arguments.
trial() {
    local label=$1 start=$2
    shift 2
    $start
    "$BENCH" --label "$label" --router-pid "$PID" --duration "$DURATION" "$@" 2>> "$WORK/bench.log" >> "$OUT" || true
    stop
}

URL="ws://127.0.0.1:$WS/ws"
NEXUS_URL="ws://127.0.0.1:$WS/"
for i in $(seq "$REPEAT"); do
    echo "== trial $i/$REPEAT" >&2
    if part rpc; then
        trial "switchyard:rpc" start_switchyard --url "$URL" --serializer json rpc --callers 16
        trial "nexus:rpc" start_nexus --url "$NEXUS_URL" --serializer json rpc --callers 16
        trial "switchyard:rpc-roundrobin4" start_switchyard --url "$URL" --serializer json rpc --callers 16 --callees 4 --invoke roundrobin
    fi
    if part joins; then
        trial "switchyard:joins" start_switchyard --url "$URL" --serializer json joins --concurrency 8
        trial "switchyard:joins-watched" start_switchyard --url "$URL" --serializer json joins --concurrency 8 --watchers 1
        trial "switchyard:joins-watched-leaves" start_switchyard --url "$URL" --serializer json joins --concurrency 8 --watchers 1 --leaves
    fi
    part tenants || continue
    # The quiet realm alone, then beside the flood (the flood runs a little longer
    # than the latency run it surrounds).
    start_switchyard "$WORK/tenants.toml"
    "$BENCH" --url "$URL" --label "switchyard:quiet-alone" --router-pid "$PID" --duration "$DURATION" --realm quiet \
        latency --rate 1000 --subscribers 10 2>> "$WORK/bench.log" >> "$OUT" || true
    "$BENCH" --url "$URL" --label "switchyard:flood" --router-pid "$PID" --duration "$((DURATION + 2))" --realm flood \
        flood --sessions 8 2>> "$WORK/bench.log" >> "$OUT" &
    FLOOD=$!
    sleep 1
    "$BENCH" --url "$URL" --label "switchyard:quiet-beside-flood" --router-pid "$PID" --duration "$DURATION" --realm quiet \
        latency --rate 1000 --subscribers 10 2>> "$WORK/bench.log" >> "$OUT" || true
    wait "$FLOOD" || true
    stop
done

SECTION=$(python3 - "$OUT" "$REPEAT" "$DURATION" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
repeat, duration = sys.argv[2], sys.argv[3]
by = {}
for r in rows:
    by.setdefault(r["label"], []).append(r)
def med(label, key):
    xs = [r.get(key) for r in by.get(label, [])]
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else float("nan")
def n(label):
    return len(by.get(label, []))
def bad(label):
    return sum(1 for r in by.get(label, []) if not r.get("ok", True))
sy, nx = med("switchyard:rpc", "calls_per_router_cpu_s"), med("nexus:rpc", "calls_per_router_cpu_s")
rr = med("switchyard:rpc-roundrobin4", "calls_per_router_cpu_s")
j, jw = med("switchyard:joins", "joins_per_router_cpu_s"), med("switchyard:joins-watched", "joins_per_router_cpu_s")
qa, qf = med("switchyard:quiet-alone", "latency_p99_us"), med("switchyard:quiet-beside-flood", "latency_p99_us")
qa50, qf50 = med("switchyard:quiet-alone", "latency_p50_us"), med("switchyard:quiet-beside-flood", "latency_p50_us")
fl = med("switchyard:flood", "publications_sent_per_s")
print(f"`bench/advanced.sh` (last run: `--repeat {repeat} --duration {duration}`); medians of the interleaved trials counted in the last column; raw results in `bench/advanced-results.jsonl`.")
print()
print("| measurement | figure (median) | against | ratio | trials (failed) |")
print("|---|---|---|---|---|")
print(f"| RPC, 16 callers, ws/json 100 B: calls per router CPU-second | Switchyard {sy:,.0f} | nexus v3.2.2 {nx:,.0f} | {sy/nx:.2f}× | {n('switchyard:rpc')} ({bad('switchyard:rpc')}) / {n('nexus:rpc')} ({bad('nexus:rpc')}) |")
print(f"| the same with 4 callees sharing the registration (roundrobin) | {rr:,.0f} | 1 callee {sy:,.0f} | {rr/sy:.3f} | {n('switchyard:rpc-roundrobin4')} ({bad('switchyard:rpc-roundrobin4')}) |")
print(f"| joins per router CPU-second, 8 joining loops, a subscriber to wamp.session.on_join | {jw:,.0f} | no subscriber {j:,.0f} | {jw/j:.3f} | {n('switchyard:joins-watched')} ({bad('switchyard:joins-watched')}) |")
jl = med("switchyard:joins-watched-leaves", "joins_per_router_cpu_s")
print(f"| the same, the subscriber following on_leave too (2 events per join) | {jl:,.0f} | no subscriber {j:,.0f} | {jl/j:.3f} | {n('switchyard:joins-watched-leaves')} ({bad('switchyard:joins-watched-leaves')}) |")
print(f"| quiet realm, 1,000 events/s to 10 subscribers: p99 latency beside a flooded realm ({fl:,.0f} publications/s offered, 1,000/s/session admitted) | {qf:,.0f} µs (p50 {qf50:,.0f}) | alone {qa:,.0f} µs (p50 {qa50:,.0f}) | {qf/qa:.2f} | {n('switchyard:quiet-beside-flood')} ({bad('switchyard:quiet-beside-flood')}) |")
EOF
)
echo "$SECTION"
python3 "$ROOT/bench/sections.py" put "$ROOT/BENCHMARKS.md" advanced <<EOF
## Advanced Profile: RPC against nexus, shared registrations, meta events, tenants (bench/advanced.sh)

$(date -u +%Y-%m-%d), on this machine ($(nproc) cores).

$SECTION
EOF
