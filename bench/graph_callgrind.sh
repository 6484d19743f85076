#!/usr/bin/env bash
# The graph authorizer's cost per call in instructions, which the noise of a 2-core
# machine does not blur: the router of bench/graph/router.toml under
# valgrind --tool=callgrind, the rpc workload (16 callers, one call in flight each) for
# S seconds on realm `static`, then on realm `workbench`; prints the router's
# instructions per call (the whole run, start-up and joins included) and those of the
# CALL's permission check. Expects what bench/graph.sh leaves: the database with the A/B
# fixture (it writes the fixture anew) and both release binaries.
#
#   bench/graph_callgrind.sh [SECONDS]        default 20
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SECONDS_=${1:-20}
ROUTER="$ROOT/target/release/switchyard"
BENCH="$ROOT/target/release/switchyard-bench"
PGHOST=${PGHOST:-127.0.0.1}
PGPORT=${PGPORT:-5432}
PGUSER=${PGUSER:-postgres}
export SWITCHYARD_DATABASE_URL="postgres://$PGUSER@$PGHOST:$PGPORT/${GRAPH_DB:-sy_bench}"
WS_PORT=${GRAPH_WS:-18280}
command -v valgrind > /dev/null || { echo "needs valgrind" >&2; exit 2; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/switchyard-callgrind.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
"$BENCH" graph-fixture --database-url "$SWITCHYARD_DATABASE_URL" --object ab_obj --users 120 --tokens-out "$TMP/tokens" 2> /dev/null

profile() { # name generator-args...
    local name=$1
    shift
    valgrind --tool=callgrind --callgrind-out-file="$TMP/$name.out" "$ROUTER" serve --config "$ROOT/bench/graph/router.toml" \
        --listen "127.0.0.1:$WS_PORT" --rawsocket off > /dev/null 2> "$TMP/$name.log" &
    local pid=$!
    for _ in $(seq 300); do
        curl -sf "http://127.0.0.1:$WS_PORT/metrics" 2> /dev/null | grep -q 'switchyard_graph_online{realm="workbench"} 1' && break
        sleep 0.2
    done
    "$BENCH" --url "ws://127.0.0.1:$WS_PORT/ws" --duration "$SECONDS_" "$@" rpc --callers 16 \
        --procedure containers.ab_obj.inspect > "$TMP/$name.json" 2> /dev/null
    kill -TERM "$pid"
    wait "$pid" || true
    python3 - "$name" "$TMP/$name.json" "$TMP/$name.out" <<'EOF'
import json, re, subprocess, sys
name, result, out = sys.argv[1:]
calls = json.loads(open(result).read().strip().splitlines()[-1])["calls"]
text = subprocess.run(["callgrind_annotate", "--inclusive=yes", out], capture_output=True, text=True).stdout
total = int(re.search(r"([\d,]+) \([^)]*\)\s+PROGRAM TOTALS", text).group(1).replace(",", ""))
check = 0
for line in text.splitlines():
    m = re.match(r"\s*([\d,]+) \([^)]*\)\s+=> .*(Role as switchyard::auth::Permissions>::check|GraphPermissions as switchyard::auth::Permissions>::check) \((\d[\d,]*)x\)", line)
    if m:
        check = max(check, int(m.group(1).replace(",", "")))
print(f"{name}: {calls} calls, {total / calls:,.0f} router instructions per call, {check / calls:,.0f} of them in the CALL's permission check")
EOF
}
profile static --realm static
profile graph --realm workbench --tokens "$TMP/tokens" --service dispatcher-1:dispatcher-1-bench
