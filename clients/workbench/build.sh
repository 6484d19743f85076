#!/usr/bin/env bash
# Builds the workbench page into dist/, the bundle the router embeds (build.rs) and
# that is committed, so that building the router needs no npm. Run it after changing
# anything under src/ or index.html, and commit dist/ with the change.
#
#   clients/workbench/build.sh           rebuild dist/
#   clients/workbench/build.sh --check   build into a temporary folder and fail if it
#                                        differs from the committed dist/ (scripts/test)
set -euo pipefail
cd "$(dirname "$0")"

npm ci --no-audit --no-fund --loglevel=error
if [ "${1:-}" = "--check" ]; then
    out=$(mktemp -d)
    trap 'rm -rf "$out"' EXIT
    npx tsc --noEmit
    npx vite build --logLevel error --outDir "$out"
    if ! diff -r "$out" dist >/dev/null; then
        echo "clients/workbench/dist is not what its sources build to:" >&2
        diff -rq "$out" dist >&2 || true
        echo "run clients/workbench/build.sh and commit dist/" >&2
        exit 1
    fi
    echo "clients/workbench/dist matches a fresh build"
else
    npm run --silent build -- --logLevel warn
    du -ab dist | sort -k2
fi
