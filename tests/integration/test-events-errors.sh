#!/bin/bash
# I/O errors on a volume are counted in its metrics and recorded in the
# event log, one event per burst (not one per failed request); requests
# the client got wrong are counted but are not events.
source "$(dirname "$0")/functions.sh"
requires_nbd_python

make_pool
faults="$testdir/faults"
start_stratad "$pool" --debug-fault-file "$faults"
strata_cli volume create v --size 32M
echo 'data-write EIO' >"$faults"

"$PYTHON" - "$(uri v)" <<'PY'
import nbd, sys, time
h = nbd.NBD()
h.connect_uri(sys.argv[1])
failed, end = 0, time.monotonic() + 10
while failed < 20 and time.monotonic() < end:
    try:
        h.pwrite(b"x" * 4096, 0)
        time.sleep(0.05)        # the daemon reads the fault file every 100 ms
    except nbd.Error:
        failed += 1
assert failed == 20, "writes did not fail"
h.set_strict_mode(0)
try:
    h.pread(4096, 64 << 20)     # beyond the end: the client's mistake
except nbd.Error:
    pass
h.shutdown()
PY
errors="$(json_get "$(strata_cli metrics volume v --json)" 'j["errors"]')"
[ "$errors" -ge 21 ] || fail "errors counted: $errors, expected at least 21"
ev="$(strata_cli events list --volume v --type volume.error --json)"
[ "$(json_get "$ev" 'len(j["events"])')" = 1 ] || fail "expected one error event: $ev"
grep -q "Input/output error" <<<"$ev" || fail "the event does not say what failed: $ev"
stratad_alive
