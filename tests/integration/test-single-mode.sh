#!/bin/bash
# stratad -s/--single serves one client on stdin/stdout (inetd style):
# libnbd's connect_command drives it; data written through it is there
# for a normal daemon afterwards, and the process exits when the client
# disconnects.
source "$(dirname "$0")/functions.sh"
requires nbdsh --version

make_pool
start_stratad "$pool"
strata_cli volume create vol1 --size 8M
stop_stratad

for opt in -s --single; do
    timeout 60 nbdsh -c - <<PY || fail "nbdsh connect_command stratad $opt"
h.set_export_name("vol1")
h.connect_command(["stratad", "$opt", "--pool", "$pool"])
assert h.get_size() == 8 << 20
off = 0 if "$opt" == "-s" else 65536
h.pwrite(bytes([len("$opt")]) * 65536, off)
h.flush()
assert h.pread(65536, off) == bytes([len("$opt")]) * 65536
h.shutdown()
PY
done
wait_for 30 "the single-mode stratad to let go of the pool" strata pool check --pool "$pool"

start_stratad "$pool"
nbdsh -u "$(uri vol1)" -c '
assert h.pread(65536, 0) == bytes([2]) * 65536
assert h.pread(65536, 65536) == bytes([8]) * 65536'
stratad_alive
