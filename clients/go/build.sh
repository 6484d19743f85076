#!/usr/bin/env bash
# Builds the dispatcher, and with --test also vets it and runs its tests (the unit
# test and the end-to-end test against the real router): the Go step of scripts/test.
#
#   clients/go/build.sh [-o OUT]      # default OUT: target/dispatcher
#   clients/go/build.sh --test
#
# It needs the nexus client (github.com/gammazero/nexus/v3 v3.2.2), found either way:
#
# 1. GOPATH mode, offline (CI): a git checkout of nexus in $NEXUS_SRC (default
#    /work/.mirror/gammazero+nexus/repo when it exists) and its dependencies from
#    Debian's packages under /usr/share/gocode:
#      apt-get install golang-go golang-github-gorilla-websocket-dev \
#          golang-github-ugorji-go-codec-dev golang-golang-x-crypto-dev
#    nexus is extracted at its tag with `git archive` into a temporary GOPATH, where
#    the module's /v3 import paths resolve as directories (bench/build-nexus.sh does
#    the same for nexusd).
# 2. Module mode: go.mod, resolved with `go mod tidy` (network or a module cache), in a
#    temporary copy so that the repository is not written to.
#
# When neither can be had, --test says so and skips (exit 0); a build fails.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TAG=v3.2.2
GOCODE=/usr/share/gocode
DEBIAN_DEPS=(github.com/gorilla/websocket github.com/ugorji/go/codec golang.org/x/crypto)

test=false
out=""
while [ $# -gt 0 ]; do
    case "$1" in
        --test) test=true ;;
        -o) out=$2; shift ;;
        *) echo "usage: clients/go/build.sh [-o OUT] | --test" >&2; exit 2 ;;
    esac
    shift
done

if ! command -v go >/dev/null; then
    if $test; then echo "SKIPPED: the dispatcher's tests: no Go toolchain (apt-get install golang-go)"; exit 0; fi
    echo "clients/go: 'go' is missing (apt-get install golang-go)" >&2
    exit 1
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/dispatcher-build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
# The tests build into the temporary folder; a build for use goes to target/.
if [ -z "$out" ]; then
    if $test; then out="$WORK/dispatcher"; else out="$ROOT/target/dispatcher"; fi
fi
# The end-to-end test runs the router built by cargo (it may run in a copy of the sources).
export SWITCHYARD_BIN=${SWITCHYARD_BIN:-$ROOT/target/debug/switchyard}
# Without HOME (some CI runners) Go has no default build cache.
[ -n "$(go env GOCACHE 2>/dev/null)" ] || export GOCACHE="$WORK/cache"

# Why each way is unavailable, for the skip message.
why=()

gopath_mode() {
    local src=${NEXUS_SRC:-}
    if [ -z "$src" ] && [ -d /work/.mirror/gammazero+nexus/repo ]; then src=/work/.mirror/gammazero+nexus/repo; fi
    if [ -z "$src" ]; then why+=("GOPATH mode: no nexus checkout (set NEXUS_SRC)"); return 1; fi
    if [ ! -d "$src" ]; then why+=("GOPATH mode: NEXUS_SRC=$src is not a directory"); return 1; fi
    if ! git -C "$src" rev-parse --verify --quiet "$TAG^{commit}" >/dev/null; then
        why+=("GOPATH mode: $src has no tag $TAG"); return 1
    fi
    local missing=()
    for dep in "${DEBIAN_DEPS[@]}"; do [ -d "$GOCODE/src/$dep" ] || missing+=("$dep"); done
    if [ ${#missing[@]} -gt 0 ]; then
        why+=("GOPATH mode: ${missing[*]} missing from $GOCODE (see the apt-get line in clients/go/build.sh)"); return 1
    fi
    local dest="$WORK/gopath/src/github.com/gammazero/nexus/v3"
    mkdir -p "$dest"
    git -C "$src" archive "$TAG" | tar -x -C "$dest"
    export GO111MODULE=off GOPATH="$WORK/gopath:$GOCODE"
    SRC_DIR=$HERE
    echo "clients/go: GOPATH mode, nexus $TAG from $src"
}

module_mode() {
    mkdir -p "$WORK/src"
    cp "$HERE"/*.go "$HERE"/go.mod "$WORK/src/"
    [ -f "$HERE/go.sum" ] && cp "$HERE/go.sum" "$WORK/src/"
    local log
    if ! log=$(cd "$WORK/src" && GO111MODULE=on timeout 120 go mod tidy 2>&1); then
        why+=("module mode: go mod tidy failed: $(echo "$log" | tail -1)"); return 1
    fi
    export GO111MODULE=on
    SRC_DIR="$WORK/src"
    echo "clients/go: module mode"
}

if ! gopath_mode && ! module_mode; then
    if $test; then
        echo "SKIPPED: the dispatcher's tests: the nexus client cannot be resolved:"
        printf '  %s\n' "${why[@]}"
        exit 0
    fi
    echo "clients/go: cannot resolve the nexus client:" >&2
    printf '  %s\n' "${why[@]}" >&2
    exit 1
fi

cd "$SRC_DIR"
mkdir -p "$(dirname "$out")"
go build -o "$out" .
echo "clients/go: built $out"
if $test; then
    go vet .
    DISPATCHER_BIN=$out go test -count=1 .
fi
