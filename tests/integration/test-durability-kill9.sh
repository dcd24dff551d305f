#!/bin/bash
# DESIGN invariant 1: whatever was flushed (or written with FUA)
# survives kill -9 of the daemon.  A verifiable write load
# (crash_writer.py: two connections, writes, trims and zeroes, flush on
# one connection or FUA) runs while stratad is killed with -9 at a random
# moment; after each restart every block holds its last flushed state or
# something newer, never older data or garbage, and the pool checks
# clean.  STRATA_CRASH_CYCLES cycles (default 10, what CI runs: about
# 2.5 s a cycle; any count by hand), STRATA_CRASH_SEED to repeat a run.
source "$(dirname "$0")/functions.sh"
requires_nbd_python

cycles="${STRATA_CRASH_CYCLES:-10}"
seed="${STRATA_CRASH_SEED:-$RANDOM}"
echo "$t: $cycles cycles, seed $seed (STRATA_CRASH_SEED=$seed to repeat)"
make_pool
start_stratad "$pool"
strata_cli volume create crash --size 16M
# Another volume with data, so the allocator is shared and a map mix-up
# between volumes would show.
strata_cli volume create other --size 4M
nbdsh -u "$(uri other)" -c 'h.pwrite(b"\x5a" * (4 << 20), 0); h.flush()'

state="$testdir/state"
mkdir "$state"
cw="$srcdir/tests/integration/crash_writer.py"

flushed_at_least () { [ "$(cat "$state/flushed" 2>/dev/null || echo 0)" -ge "$1" ]; }

RANDOM=$seed
for (( c = 1; c <= cycles; c++ )); do
    before="$(cat "$state/flushed" 2>/dev/null || echo 0)"
    "$PYTHON" "$cw" write "$(uri crash)" "$state" --seed "$seed" --secs 120 &
    wpid=$!
    cleanup_fn stop_pid "$wpid"
    # Let it get going (a bound, not a guess), then kill at a random
    # moment 0-1.5 s later.
    wait_for 60 "the writer to flush twice" flushed_at_least $(( before + 2 ))
    sleep "$(( RANDOM % 3 )).$(( RANDOM % 10 ))"
    # The writer stops only when the server goes away: if it already
    # stopped, a request failed while the daemon was up.
    pid_alive "$wpid" || { wait "$wpid" || true;
                           fail "cycle $c: the writer stopped before the kill (see its output)"; }
    kill9_stratad
    wait_for 30 "the writer to notice" pid_gone "$wpid"
    wait "$wpid" || fail "the writer failed (cycle $c)"

    start_stratad "$pool"
    rec="$(json_get "$(strata_cli pool status --json)" 'j["recovered"]')"
    [ "$rec" = true ] || fail "pool status after kill -9 says recovered=$rec"
    "$PYTHON" "$cw" check "$(uri crash)" "$state" --seed "$seed" || fail "cycle $c: data lost or damaged after kill -9"
    expect_status 0 "pool check after kill -9 (cycle $c)" strata_cli pool check
    [ "$(nbdsh -u "$(uri other)" -c 'print(h.pread(4 << 20, 0) == b"\x5a" * (4 << 20))')" = True ] ||
        fail "cycle $c: the other volume's data changed"
done

# Finally a clean stop, and the offline check agrees.
stop_stratad
expect_status 0 "offline pool check" strata pool check --pool "$pool"
