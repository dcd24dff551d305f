#!/bin/bash
# bench/snapshot.sh: the snapshot section of the benchmark.  On a fresh
# pool: snapshot.create time on small and large, sequential and
# fragmented volumes (constant time: the ratio large/small); the cost of
# the first write to a shared chunk (4k randwrite QD1 and QD32, copy vs
# in place); and client p99 latency while a snapshot of 500k extents is
# deleted, with the time the background reclaim takes.
#
#   bench/snapshot.sh [--tests "create cow reap"] [--large 16G]
#                     [--frag-writes N] [--reap-extents N] [--out DIR] ...
#
# Builds strata into ./build (or $STRATA_BUILD_DIR) when it is not
# built yet, then runs bench/snapshot.py (see its opening comment for
# what is measured and how, --help for every option).  The scratch pool
# goes under $BENCH_DIR (default /var/tmp, as bench/run.sh).  Needs root
# for dropping caches between jobs; about 5 minutes on 2 cores.
set -euo pipefail
export PATH="/usr/bin:$PATH"
here="$(cd "$(dirname "$0")/.." && pwd)"
build="${STRATA_BUILD_DIR:-$here/build}"
case "${1:-}" in -h|--help) exec /usr/bin/python3 "$here/bench/snapshot.py" --help ;; esac
for cmd in fio nbdsh cmake; do
    command -v "$cmd" >/dev/null || { echo "bench/snapshot.sh: '$cmd' not found (tools/setup.sh installs it)" >&2; exit 1; }
done
if [ ! -x "$build/stratad" ] || [ ! -x "$build/strata" ]; then
    cmake -S "$here" -B "$build" >/dev/null
    cmake --build "$build" -j"$(nproc)" --target stratad strata >/dev/null
fi
export STRATA_BUILD_DIR="$build"
exec /usr/bin/python3 "$here/bench/snapshot.py" "$@"
