#!/bin/bash
# bench/run.sh: strata side by side with nbdkit, qemu-nbd and nbd-server,
# on the same file system, with identical fio jobs, in one run.
#
#   bench/run.sh [--reps N] [--runtime S] [--size SIZE]
#                [--servers "strata nbdkit ..."] [--limits "raw-direct ..."]
#                [--jobs "randread-qd32 ..."] [--extents N] [--out DIR]
#
# Builds strata into ./build (or $STRATA_BUILD_DIR) when it is not
# built yet, then runs bench/bench.py (see its opening comment for what
# is measured and how).  Needs root for dropping caches between jobs.
set -euo pipefail
export PATH="/usr/bin:$PATH"
here="$(cd "$(dirname "$0")/.." && pwd)"
build="${STRATA_BUILD_DIR:-$here/build}"
case "${1:-}" in -h|--help) exec /usr/bin/python3 "$here/bench/bench.py" --help ;; esac
for cmd in fio nbdsh nbdinfo nbdcopy nbdkit qemu-nbd nbd-server cmake; do
    command -v "$cmd" >/dev/null || { echo "bench/run.sh: '$cmd' not found (tools/setup.sh installs it)" >&2; exit 1; }
done
if [ ! -x "$build/stratad" ] || [ ! -x "$build/strata" ]; then
    cmake -S "$here" -B "$build" >/dev/null
    cmake --build "$build" -j"$(nproc)" --target stratad strata >/dev/null
fi
export STRATA_BUILD_DIR="$build"
exec /usr/bin/python3 "$here/bench/bench.py" "$@"
