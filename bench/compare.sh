#!/usr/bin/env bash
# Side-by-side benchmark of Switchyard and Crossbar.io on this machine, with the same
# load generator (target/release/switchyard-bench) and the same workloads against both.
#
#   bench/compare.sh            full run: 10 s per trial, 3 repeats (about 30 minutes)
#   bench/compare.sh --quick    3 s per trial, 1 repeat, smaller scale sizes (a few minutes)
#
# Options: --repeat N, --duration S, --keep (leave the scratch folder for inspection).
# Environment: CROSSBAR_VERSION (default 26.10.1), SWITCHYARD_BENCH_VENV (default
# $TMPDIR/switchyard-bench-venv), ports SY_WS SY_RAW CB_WS CB_RAW.
#
# Writes BENCHMARKS.md, bench/chart.png and bench/results.jsonl (every run's JSON line).
# Only one router runs at a time: Switchyard first, then Crossbar; each scale trial gets
# a freshly started router so its memory baseline is clean. All traffic stays on
# 127.0.0.0/8.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

QUICK=0
REPEAT=""
DURATION=""
KEEP=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --repeat) REPEAT="$2"; shift ;;
        --duration) DURATION="$2"; shift ;;
        --keep) KEEP=1 ;;
        -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

if [[ $QUICK == 1 ]]; then
    REPEAT=${REPEAT:-1}
    DURATION=${DURATION:-3}
else
    REPEAT=${REPEAT:-3}
    DURATION=${DURATION:-10}
fi

TMP=${TMPDIR:-/tmp}
VENV=${SWITCHYARD_BENCH_VENV:-$TMP/switchyard-bench-venv}
CROSSBAR_VERSION=${CROSSBAR_VERSION:-26.10.1}
SY_WS=${SY_WS:-18080}
SY_RAW=${SY_RAW:-18081}
CB_WS=${CB_WS:-19080}
CB_RAW=${CB_RAW:-19081}
WORK=$(mktemp -d "$TMP/switchyard-compare.XXXXXX")
RESULTS="$WORK/results.jsonl"
BENCH="$ROOT/target/release/switchyard-bench"
ROUTER_BIN="$ROOT/target/release/switchyard"
: > "$RESULTS"

log() { printf '\n== %s\n' "$*" >&2; }
# Starting, stopping and installing the two routers (shared with bench/http.sh).
source "$ROOT/bench/routers.sh"

# ---- tools ----------------------------------------------------------------------------

install_crossbar

log "cargo build --release (switchyard, switchyard-bench)"
cargo build --release --bin switchyard --bin switchyard-bench

# Every router session and every generator session is a descriptor.
ulimit -n "$(ulimit -Hn)"
FD_LIMIT=$(ulimit -n)
MAX_SESSIONS=$(( FD_LIMIT - 1000 ))

# ---- routers --------------------------------------------------------------------------

ROUTER_PID=""
NODE_PID=""
CBDIR="$WORK/crossbar/.crossbar"

cleanup() {
    [[ -n "$ROUTER_PID" && -z "$NODE_PID" ]] && stop_switchyard
    [[ -n "$NODE_PID" ]] && stop_crossbar
    if [[ $KEEP == 0 ]]; then rm -rf "$WORK"; else echo "scratch folder kept: $WORK" >&2; fi
}
trap cleanup EXIT

# ---- workloads ------------------------------------------------------------------------

FANOUT_N=(1 10 100 1000)
RPC_N=(1 4 16 64)
LATENCY_R=(1000 10000)
if [[ $QUICK == 1 ]]; then
    SCALE_N=(1000 5000)
else
    SCALE_N=(1000 5000 "$MAX_SESSIONS")
fi

# bench LABEL URL-ARGS... -- WORKLOAD-ARGS...: one trial; its JSON line goes to $RESULTS.
bench() {
    local label=$1; shift
    local rc=0
    "$BENCH" --label "$label" --router-pid "$ROUTER_PID" --duration "$DURATION" "$@" \
        >> "$RESULTS" 2> >(tee -a "$WORK/bench.log" >&2) || rc=$?
    if [[ $rc -gt 1 ]]; then
        echo "switchyard-bench exited with $rc (usage or connection error): $*" >&2
    fi
    kill -0 "$ROUTER_PID" 2>/dev/null || { echo "the router ($label, pid $ROUTER_PID) died" >&2; return 1; }
}

# The throughput and latency matrix against the router already running.
run_matrix() { # label ws-port raw-port
    local label=$1 ws="ws://127.0.0.1:$2/ws" raw="127.0.0.1:$3" rep n
    for ((rep = 1; rep <= REPEAT; rep++)); do
        log "$label: repeat $rep of $REPEAT"
        for n in "${FANOUT_N[@]}"; do bench "$label" --url "$ws" --serializer json fanout --subscribers "$n"; done
        for n in "${RPC_N[@]}"; do bench "$label" --url "$ws" --serializer json rpc --callers "$n"; done
        for n in "${LATENCY_R[@]}"; do bench "$label" --url "$ws" --serializer json latency --rate "$n" --subscribers 10; done
        # The same two headline workloads over the other transports.
        bench "$label" --url "$ws" --serializer msgpack fanout --subscribers 100
        bench "$label" --rawsocket "$raw" --serializer msgpack fanout --subscribers 100
        bench "$label" --url "$ws" --serializer msgpack rpc --callers 16
        bench "$label" --rawsocket "$raw" --serializer msgpack rpc --callers 16
    done
}

scale_args() { # sessions
    if [[ $1 -gt 10000 ]]; then echo "--procs 2 --source-ips 4"; else echo "--procs 1 --source-ips 4"; fi
}

START=$(date -u +%Y-%m-%dT%H:%M:%SZ)

# A benchmark wants a quiet machine: warn when something else is busy.
busy() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat; }
b0=$(busy); sleep 2; b1=$(busy)
OTHER=$(( (b1 - b0) / 2 ))   # percent of one core (USER_HZ = 100)
if [[ $OTHER -gt 20 ]]; then
    echo "WARNING: other processes keep ${OTHER}% of a core busy; figures will be noisy (trials are flagged)." >&2
    ps -eo pcpu,pid,args --sort=-pcpu | head -5 >&2
fi

# One router's whole measurement. The same function runs both routers, so they get the
# same workloads in the same order; only the extra scale arguments differ.
measure() { # label display-name ws-port raw-port [extra scale args...]
    local label=$1 name=$2 ws=$3 raw=$4
    shift 4
    log "$name: throughput and latency"
    "start_$label"
    run_matrix "$label" "$ws" "$raw"
    "stop_$label"

    log "$name: scale (a fresh router per trial)"
    for n in "${SCALE_N[@]}"; do
        for ((rep = 1; rep <= REPEAT; rep++)); do
            "start_$label"
            # shellcheck disable=SC2046
            bench "$label" --url "ws://127.0.0.1:$ws/ws" --serializer json scale --sessions "$n" $(scale_args "$n") "$@"
            "stop_$label"
        done
    done
}

measure switchyard Switchyard "$SY_WS" "$SY_RAW"
write_crossbar_config
# Crossbar needs longer for one event to reach every session at the largest scale.
measure crossbar Crossbar "$CB_WS" "$CB_RAW" --event-timeout 60

log "Report"
cp "$RESULTS" "$ROOT/bench/results.jsonl"
MODE=full
[[ $QUICK == 1 ]] && MODE=quick
"$VENV/bin/python" "$ROOT/bench/report.py" \
    --results "$ROOT/bench/results.jsonl" \
    --out "$ROOT/BENCHMARKS.md" \
    --chart "$ROOT/bench/chart.png" \
    --mode "$MODE" --repeat "$REPEAT" --duration "$DURATION" --started "$START" \
    --crossbar-python "$VENV/bin/python" \
    --command "bench/compare.sh $([[ $QUICK == 1 ]] && echo --quick) --repeat $REPEAT --duration $DURATION"
echo "wrote BENCHMARKS.md, bench/chart.png, bench/results.jsonl" >&2
