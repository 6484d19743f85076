#!/usr/bin/env bash
# The hostile-client scenarios of `switchyard-bench hostile` against one router binary,
# each against a freshly started router (memory an allocator kept from an earlier run
# would hide the cost of the next), with the router's log summarized.
#
#   bench/hostile.sh LABEL ROUTER_BIN [SCENARIO...]     default: every scenario
#
# Environment passes through to the router (e.g. GLIBC_TUNABLES=..., LD_PRELOAD=...).
# Appends one JSON object per run to bench/hostile-results.jsonl (with `label`,
# `router_log_warn`, `router_log_error`, `router_alive`), and prints a summary line per run.
# The router listens on 127.0.0.1:8080 (WebSocket) and :8081 (RawSocket), the generator's
# defaults; the generator is target/release/switchyard-bench.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[[ $# -ge 2 ]] || { echo "usage: bench/hostile.sh LABEL ROUTER_BIN [SCENARIO...]" >&2; exit 2; }
LABEL=$1
BIN=$2
shift 2
SCENARIOS=("$@")
[[ ${#SCENARIOS[@]} -gt 0 ]] || SCENARIOS=(ping-before-hello partial-frame partial-frames-48 ws-partial-frames-48
    unread-results idle-connections slow-headers burst)
BENCH="$ROOT/target/release/switchyard-bench"
OUT="$ROOT/bench/hostile-results.jsonl"
[[ -x "$BENCH" ]] || { echo "build the generator first: cargo build --release --bin switchyard-bench" >&2; exit 2; }
ulimit -n "$(ulimit -Hn)"   # idle-connections and slow-headers open 2000 connections

for scenario in "${SCENARIOS[@]}"; do
    log=$(mktemp "${TMPDIR:-/tmp}/switchyard-hostile.XXXXXX")
    "$BIN" serve --listen 127.0.0.1:8080 --rawsocket 127.0.0.1:8081 > /dev/null 2> "$log" &
    pid=$!
    for _ in $(seq 50); do
        ss -ltnH "sport = :8081" | grep -q . && break
        sleep 0.1
    done
    sleep 0.5
    args=(--router-pid "$pid" --label "$LABEL" --serializer msgpack --rawsocket 127.0.0.1:8081)
    # The WebSocket scenarios and the WebSocket caller go through --url (the default).
    case "$scenario" in
        ws-*|idle-connections|slow-headers) args=(--router-pid "$pid" --label "$LABEL" --serializer msgpack) ;;
    esac
    extra=()
    [[ $scenario == burst ]] && extra=(--settle 5,30)
    json=$("$BENCH" "${args[@]}" hostile --scenario "$scenario" "${extra[@]}" 2> /dev/null || true)
    alive=$(kill -0 "$pid" 2> /dev/null && echo true || echo false)
    kill -TERM "$pid" 2> /dev/null || true
    wait "$pid" 2> /dev/null || true
    warn=$(grep -c "WARN" "$log" || true)
    error=$(grep -c "ERROR" "$log" || true)
    rm -f "$log"
    if [[ -z "$json" ]]; then
        echo "$scenario: the generator produced nothing" >&2
        continue
    fi
    line=$(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); r.update(router_alive=sys.argv[2]=="true", router_log_warn=int(sys.argv[3]), router_log_error=int(sys.argv[4])); print(json.dumps(r, sort_keys=True))' \
        "$json" "$alive" "$warn" "$error")
    echo "$line" >> "$OUT"
    python3 "$ROOT/bench/hostile_summary.py" "$line"
done
