#!/bin/bash
# tests/fuzz/run-fuzz.sh [--seconds N] [--jobs N]: fuzz the NBD handshake
# and request parsing (fuzz-nbd, libFuzzer) for N seconds (default 60).
#
# The target is $STRATA_FUZZ_BIN when set (a -DSTRATA_FUZZ=ON build
# passes its own); otherwise it is built with clang in
# $STRATA_BUILD_DIR/fuzz.  Exit 77 (skip) without clang or libFuzzer.
# The growing corpus lives in $STRATA_BUILD_DIR/fuzz-corpus (seeded from
# tests/fuzz/corpus and tests/fuzz/regressions); a crash, leak, UBSan
# report or hang stops the run with status 1 and leaves the input in
# $STRATA_BUILD_DIR/fuzz-artifacts/: copy it into tests/fuzz/regressions/
# (the fuzz/regressions test replays it from then on) and fix the bug.
set -euo pipefail

srcdir="${STRATA_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
builddir="${STRATA_BUILD_DIR:-$srcdir/build}"
export PATH="/usr/bin:/usr/sbin:/sbin:/bin:$PATH"
secs=60
jobs=1
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) secs=$2; shift 2 ;;
        --jobs) jobs=$2; shift 2 ;;
        *) echo "usage: $0 [--seconds N] [--jobs N]" >&2; exit 2 ;;
    esac
done

bin="${STRATA_FUZZ_BIN:-}"
if [ -z "$bin" ]; then
    command -v clang >/dev/null || { echo "$0: SKIP: no clang"; exit 77; }
    probe="$(mktemp -d /tmp/strata-fuzz-probe.XXXXXX)"
    trap 'rm -rf "$probe"' EXIT
    echo 'int LLVMFuzzerTestOneInput (const char *d, unsigned long n)
          { (void) d; (void) n; return 0; }' >"$probe/p.c"
    clang -fsanitize=fuzzer,address,undefined "$probe/p.c" -o "$probe/p" \
        >/dev/null 2>&1 ||
        { echo "$0: SKIP: clang cannot link -fsanitize=fuzzer (libclang-rt-14-dev)"; exit 77; }
    fb="$builddir/fuzz"
    echo "$0: building fuzz-nbd with clang in $fb"
    CC=clang cmake -S "$srcdir" -B "$fb" -DSTRATA_FUZZ=ON \
        -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build "$fb" --target fuzz-nbd -j "$(nproc 2>/dev/null || echo 2)" \
        >"$fb.log" 2>&1 || { tail -n 40 "$fb.log" >&2; echo "$0: build failed" >&2; exit 1; }
    bin="$fb/fuzz-nbd"
fi

work="$builddir/fuzz-corpus"
art="$builddir/fuzz-artifacts"
mkdir -p "$work" "$art"
echo "$0: fuzzing for ${secs}s with $jobs job(s); corpus $work"
# -timeout: a session that takes longer is a hang (fuzz-nbd itself
# aborts after 20 s); -rss_limit_mb: reads are at most 1 MiB here, so
# more memory than this is a leak.  Leak checking stays on: the
# daemon's per-connection memory must be freed when a session ends.
seeds=("$srcdir/tests/fuzz/corpus")
[ -d "$srcdir/tests/fuzz/regressions" ] && seeds+=("$srcdir/tests/fuzz/regressions")
# With -jobs, libFuzzer writes each job's output to fuzz-N.log in the
# current directory: run there from the build directory.
par=()
if [ "$jobs" -gt 1 ]; then par=(-jobs="$jobs" -workers="$jobs"); cd "$builddir"; fi
st=0
ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1}" \
UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
"$bin" -max_total_time="$secs" -timeout=30 -rss_limit_mb=3072 \
    -dict="$srcdir/tests/fuzz/nbd.dict" "${par[@]}" \
    -artifact_prefix="$art/" -print_final_stats=1 \
    "$work" "${seeds[@]}" ||
    st=$?
if [ "$jobs" -gt 1 ]; then tail -n 40 fuzz-*.log 2>/dev/null; rm -f fuzz-*.log; fi
if [ "$st" -ne 0 ]; then
    echo "$0: FAIL: fuzz-nbd found a problem (status $st); inputs in $art:" >&2
    ls -l "$art" >&2
    exit 1
fi
echo "$0: no crash in ${secs}s; corpus now $(ls "$work" | wc -l) inputs"
