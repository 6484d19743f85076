#!/usr/bin/env bash
# Before and after a change to API token checks: `switchyard-bench graph-cold` (token
# joins, then the same tokens joining again; with a static ticket for reference) against
# two router binaries on the graph realm of bench/graph/router.toml, the same generator,
# runs interleaved (which goes first alternates), one database migrated once.
#
#   bench/token-ab.sh OLD_ROUTER [NEW_ROUTER] [--pairs N] [--joins N]
#
# NEW_ROUTER defaults to target/release/switchyard. Appends one JSON line per run (label
# `tokens:old` or `tokens:new`, with `ab_run`) to bench/token-ab-results.jsonl
# ($TOKEN_AB_OUT) and prints the medians. PostgreSQL at $PGHOST:$PGPORT as $PGUSER.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
usage="usage: bench/token-ab.sh OLD_ROUTER [NEW_ROUTER] [--pairs N] [--joins N]"
NEW="$ROOT/target/release/switchyard"
PAIRS=3
JOINS=5000
positional=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --pairs) PAIRS="$2"; shift 2 ;;
        --joins) JOINS="$2"; shift 2 ;;
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
DB=${TOKEN_AB_DB:-sy_token_ab}
export SWITCHYARD_DATABASE_URL="postgres://$PGUSER@$PGHOST:$PGPORT/$DB"
OUT=${TOKEN_AB_OUT:-$ROOT/bench/token-ab-results.jsonl}
WS_PORT=18490
RAW_PORT=18491
RUN_ID=$(date -u +%Y-%m-%dT%H:%M:%SZ)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/switchyard-token-ab.XXXXXX")
PID=""
stop() { [[ -n "$PID" ]] && kill -TERM "$PID" 2> /dev/null && wait "$PID" 2> /dev/null; PID=""; }
trap 'stop; rm -rf "$TMP"; dropdb -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" --if-exists "$DB" 2> /dev/null || true' EXIT

dropdb -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" --if-exists "$DB" 2> /dev/null
createdb -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" "$DB"
"$NEW" migrate --database-url "$SWITCHYARD_DATABASE_URL" > /dev/null

for i in $(seq "$PAIRS"); do
    order="old new"
    (( i % 2 == 0 )) && order="new old"
    for which in $order; do
        router=$NEW
        [[ $which == old ]] && router=$OLD
        "$router" serve --config "$ROOT/bench/graph/router.toml" --listen "127.0.0.1:$WS_PORT" \
            --rawsocket "127.0.0.1:$RAW_PORT" > /dev/null 2> "$TMP/router.log" &
        PID=$!
        for _ in $(seq 100); do
            curl -sf "http://127.0.0.1:$WS_PORT/metrics" 2> /dev/null | grep -q 'switchyard_graph_online{realm="workbench"} 1' && break
            sleep 0.1
        done
        "$BENCH" --router-pid "$PID" --label "tokens:$which" --url "ws://127.0.0.1:$WS_PORT/ws" --realm workbench \
            --service controller-1:controller-1-bench graph-cold --database-url "$SWITCHYARD_DATABASE_URL" \
            --users 10 --objects 10 --joins "$JOINS" --concurrency 64 > "$TMP/bench.out" 2> "$TMP/bench.err" || true
        grep '^{' "$TMP/bench.out" | python3 -c 'import json,sys
for l in sys.stdin:
    r = json.loads(l); r["ab_run"] = sys.argv[1]; print(json.dumps(r, sort_keys=True))' "$RUN_ID" >> "$OUT"
        echo "$which: $(grep -m1 'token joins' "$TMP/bench.err" | sed 's/^ *//')" >&2
        stop
    done
done

python3 - "$OUT" "$RUN_ID" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
rows = [r for r in rows if r.get("ab_run") == sys.argv[2]]
def fig(r, k):
    return (r.get("figures") or r).get(k)
for k in ("token_joins_per_s", "token_joins_per_router_cpu_s", "token_rejoins_per_s", "token_rejoins_per_router_cpu_s", "ticket_joins_per_s"):
    med = {w: statistics.median(v for r in rows if r["label"] == f"tokens:{w}" and (v := fig(r, k)) is not None) for w in ("old", "new")
           if any(r["label"] == f"tokens:{w}" and fig(r, k) is not None for r in rows)}
    if len(med) == 2:
        print(f"{k}: old {med['old']:,.0f} new {med['new']:,.0f} ({med['new'] / med['old'] - 1:+.1%})")
PY
