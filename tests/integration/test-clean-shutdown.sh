#!/bin/bash
# SIGTERM is a clean shutdown: stratad exits 0 within a bound (also with
# a client attached), removes nothing it should keep, and on restart the
# pool opens without journal recovery, with the data and volumes intact.
# A second stratad on the same pool is refused while the first runs.
source "$(dirname "$0")/functions.sh"
requires nbdsh --version

make_pool
start_stratad "$pool"
strata_cli volume create vol1 --size 16M --label k=v
nbdsh -u "$(uri vol1)" -c 'h.pwrite(b"\x99" * (1 << 20), 0)'   # no flush

# A second daemon on the same pool is refused, and says why.
st=0
out="$(timeout 30 stratad --foreground --pool "$pool" --unix "$testdir/other.sock" \
        --admin-socket "$testdir/other-admin.sock" 2>&1)" || st=$?
[ "$st" -ne 0 ] && [ "$st" -ne 124 ] || fail "a second stratad on the same pool started (status $st): $out"
grep -qiE 'pool|lock|busy|in use|running' <<<"$out" || fail "second stratad's message: $out"
stratad_alive

# SIGTERM with a client attached and idle.
"$PYTHON" -c '
import nbd, sys, time
h = nbd.NBD(); h.connect_uri(sys.argv[1])
time.sleep(60)' "$(uri vol1)" &
idle=$!
cleanup_fn stop_pid "$idle"
attached () { [ "$(json_get "$(strata_cli volume show vol1 --json)" 'j["connections"]')" = 1 ]; }
wait_for 30 "the idle client to attach" attached
stop_stratad
stop_pid "$idle" || true

start_stratad "$pool"
st="$(strata_cli pool status --json)"
[ "$(json_get "$st" 'j["recovered"]')" = false ] || fail "journal recovery after a clean stop: $st"
show="$(strata_cli volume show vol1 --json)"
[ "$(json_get "$show" 'j["labels"]')" = '{"k": "v"}' ] || fail "labels after restart: $show"
[ "$(nbdsh -u "$(uri vol1)" -c 'print(h.pread(1 << 20, 0) == b"\x99" * (1 << 20))')" = True ] ||
    fail "unflushed data written before a clean stop is lost"
expect_status 0 "pool check" strata_cli pool check
stop_stratad
