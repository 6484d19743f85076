#!/usr/bin/env bash
# Before and after a change to the durable store: the durable part of bench/replay.sh
# (8 publishers over RawSocket/MessagePack, 1,000 acknowledgements outstanding each,
# 100 B, on 1 topic and on 1,000 topics) with two router binaries, the same generator,
# trials interleaved (which goes first alternates), a freshly created database per trial.
#
#   bench/durable-ab.sh OLD_ROUTER [NEW_ROUTER] [--pairs N] [--duration S]
#
# NEW_ROUTER defaults to target/release/switchyard; build OLD_ROUTER from the commit
# before the change (e.g. `git worktree add`, or check the old sources out, build, copy
# the binary aside). Appends one JSON line per trial (label `durable:old:topicsN` or
# `durable:new:topicsN`) to bench/durable-ab-results.jsonl ($DURABLE_AB_OUT) and prints
# the medians. PostgreSQL at $PGHOST:$PGPORT as $PGUSER (127.0.0.1:5432, postgres).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
usage="usage: bench/durable-ab.sh OLD_ROUTER [NEW_ROUTER] [--pairs N] [--duration S]"
OLD=""
NEW="$ROOT/target/release/switchyard"
PAIRS=3
DURATION=10
positional=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --pairs) PAIRS="$2"; shift 2 ;;
        --duration) DURATION="$2"; shift 2 ;;
        -*) echo "$usage" >&2; exit 2 ;;
        *) positional+=("$1"); shift ;;
    esac
done
[[ ${#positional[@]} -ge 1 ]] || { echo "$usage" >&2; exit 2; }
OLD=${positional[0]}
[[ ${#positional[@]} -ge 2 ]] && NEW=${positional[1]}
BENCH="$ROOT/target/release/switchyard-bench"
for f in "$OLD" "$NEW" "$BENCH"; do
    [[ -x "$f" ]] || { echo "missing $f" >&2; exit 2; }
done
PGHOST=${PGHOST:-127.0.0.1}
PGPORT=${PGPORT:-5432}
PGUSER=${PGUSER:-postgres}
DB=${DURABLE_AB_DB:-sy_durable_ab}
export SWITCHYARD_DATABASE_URL="postgres://$PGUSER@$PGHOST:$PGPORT/$DB"
OUT=${DURABLE_AB_OUT:-$ROOT/bench/durable-ab-results.jsonl}
WS_PORT=18390
RAW_PORT=18391
RUN_ID=$(date -u +%Y-%m-%dT%H:%M:%SZ)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/switchyard-durable-ab.XXXXXX")
PID=""
stop() { [[ -n "$PID" ]] && kill -TERM "$PID" 2> /dev/null && wait "$PID" 2> /dev/null; PID=""; }
trap 'stop; rm -rf "$TMP"; dropdb -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" --if-exists "$DB" 2> /dev/null || true' EXIT

for i in $(seq "$PAIRS"); do
    for topics in 1 1000; do
        order="old new"
        (( i % 2 == 0 )) && order="new old"
        for which in $order; do
            router=$NEW
            [[ $which == old ]] && router=$OLD
            dropdb -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" --if-exists "$DB" 2> /dev/null
            createdb -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" "$DB"
            "$router" serve --config "$ROOT/bench/replay/durable.toml" --listen "127.0.0.1:$WS_PORT" \
                --rawsocket "127.0.0.1:$RAW_PORT" > /dev/null 2> "$TMP/router.log" &
            PID=$!
            for _ in $(seq 100); do
                curl -sf "http://127.0.0.1:$WS_PORT/metrics" 2> /dev/null \
                    | grep -q 'switchyard_replay_durable_online{realm="realm1"} 1' && break
                sleep 0.1
            done
            "$BENCH" --router-pid "$PID" --label "durable:$which:topics$topics" --url "ws://127.0.0.1:$WS_PORT/ws" \
                --serializer msgpack --rawsocket "127.0.0.1:$RAW_PORT" --duration "$DURATION" \
                durable --publishers 8 --window 1000 --topics "$topics" --payload 100 \
                > "$TMP/bench.out" 2> "$TMP/bench.err" || true
            grep '^{' "$TMP/bench.out" | python3 -c 'import json,sys
for l in sys.stdin:
    r = json.loads(l); r["ab_run"] = sys.argv[1]; print(json.dumps(r, sort_keys=True))' "$RUN_ID" >> "$OUT"
            echo "$which, $topics topic(s): $(grep -m1 acknowledged "$TMP/bench.err" | sed 's/^ *//')" >&2
            stop
        done
    done
done

python3 - "$OUT" "$RUN_ID" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
rows = [r for r in rows if r.get("ab_run") == sys.argv[2]]
for topics in (1, 1000):
    med = {}
    for which in ("old", "new"):
        rs = [r for r in rows if r["label"] == f"durable:{which}:topics{topics}"]
        if rs:
            med[which] = (statistics.median(r["acked_per_s"] for r in rs), statistics.median(r["events_per_router_cpu_s"] for r in rs))
    if len(med) == 2:
        (a, ac), (b, bc) = med["old"], med["new"]
        print(f"{topics} topic(s): acknowledged/s old {a:,.0f} new {b:,.0f} ({b / a - 1:+.1%}); "
              f"router µs per publication old {1e6 / ac:.2f} new {1e6 / bc:.2f}")
EOF
