#!/bin/bash
# tests/fuzz/replay.sh: every regression input (tests/fuzz/regressions/,
# crashes the fuzzer once found) and every seed (tests/fuzz/corpus/) is
# fed, as a client's whole byte stream, to `stratad -s` on a pool with
# the volumes fuzz-nbd.c makes; stratad must end the session by itself
# within a bound, exit 0, and report no sanitizer error.  In a
# -DSTRATA_FUZZ=ON build the inputs are also run through fuzz-nbd
# itself (in process, with the shared chunks that exercise CoW).
source "$(dirname "$0")/../integration/functions.sh"

inputs=()
for f in "$srcdir"/tests/fuzz/regressions/* "$srcdir"/tests/fuzz/corpus/*; do
    [ -f "$f" ] && inputs+=("$f")
done
[ ${#inputs[@]} -gt 0 ] || fail "no inputs in tests/fuzz/corpus"

make_pool --size 256M
start_stratad "$pool"
for v in a b z; do strata_cli volume create "$v" --size 1M >/dev/null; done
nbdsh -u "$(uri a)" -c 'h.pwrite(b"A" * (1 << 20), 0); h.flush()'
nbdsh -u "$(uri b)" -c 'h.pwrite(b"B" * (1 << 20), 0); h.flush()'
strata_cli snapshot create a s >/dev/null
stop_stratad

n=0
for f in "${inputs[@]}"; do
    log="$testdir/replay.log"
    st=0
    timeout -s KILL 60 stratad -s --pool "$pool" <"$f" >/dev/null 2>"$log" || st=$?
    if [ "$st" -ne 0 ] || ! _stratad_log_check "$log"; then
        tail -n 40 "$log" >&2
        fail "stratad -s on $(basename "$f"): exit status $st"
    fi
    n=$(( n + 1 ))
done
expect_status 0 "pool check after the replays" strata pool check --pool "$pool"
echo "$t: $n inputs replayed through stratad -s"

fz="$builddir/fuzz-nbd"
if [ -x "$fz" ]; then
    "$fz" -runs=1 "${inputs[@]}" >"$testdir/fuzz.log" 2>&1 ||
        { tail -n 40 "$testdir/fuzz.log" >&2; fail "fuzz-nbd failed on a regression input"; }
    echo "$t: and through $fz"
fi
