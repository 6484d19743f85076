#!/usr/bin/env bash
# Builds nexusd, the Go WAMP router gammazero/nexus, at a tag (default v3.2.2) into
# target/nexusd, for the side-by-side RPC comparison (bench/compare.sh --nexus).
#
#   bench/build-nexus.sh [NEXUS_SRC]
#
# Offline, in GOPATH mode, with Debian's Go toolchain and libraries:
#   apt-get install golang-go golang-github-gorilla-websocket-dev \
#       golang-github-ugorji-go-codec-dev golang-golang-x-crypto-dev
# NEXUS_SRC is a git checkout of github.com/gammazero/nexus (default: clone it).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TAG=${NEXUS_TAG:-v3.2.2}
SRC=${1:-}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/nexus-build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
if [[ -z "$SRC" ]]; then
    git clone --quiet https://github.com/gammazero/nexus "$WORK/clone"
    SRC="$WORK/clone"
fi
# GOPATH mode resolves the module's /v3 import paths as directories.
DEST="$WORK/gopath/src/github.com/gammazero/nexus/v3"
mkdir -p "$DEST"
git -C "$SRC" archive "$TAG" | tar -x -C "$DEST"
export GO111MODULE=off GOPATH="$WORK/gopath:/usr/share/gocode" GOCACHE="$WORK/cache"
mkdir -p "$ROOT/target"
(cd "$DEST/nexusd" && go build -o "$ROOT/target/nexusd" .)
echo "built $ROOT/target/nexusd from nexus $TAG" >&2
