#!/bin/bash
# Space freed by TRIM is usable again without the client ever sending
# FLUSH: a full pool, trimmed, takes new writes at once (the daemon
# commits the freeing records itself), and the data is right.
source "$(dirname "$0")/functions.sh"
requires_nbd_python

make_pool --size 8M
start_stratad "$pool"
strata_cli volume create full --size 8M >/dev/null

nbdsh -u "$(uri full)" -c '
chunk = 65536
for off in range(0, 8 << 20, 1 << 20):
    h.pwrite(b"\xaa" * (1 << 20), off)
# Full now: another volume cannot get a chunk.
h.trim(8 << 20, 0)
# No flush anywhere: the freed chunks must come back by themselves.
for off in range(0, 8 << 20, 1 << 20):
    h.pwrite(bytes([0x30 + off // (1 << 20)]) * (1 << 20), off)
for off in range(0, 8 << 20, 1 << 20):
    assert h.pread(1 << 20, off) == bytes([0x30 + off // (1 << 20)]) * (1 << 20), off
'
# A second volume still finds the pool full (the space is in use again).
strata_cli volume create other --size 1M >/dev/null
nbdsh -u "$(uri other)" -c '
try:
    h.pwrite(b"x" * 65536, 0)
    assert False, "a write to a full pool succeeded"
except nbd.Error as e:
    assert e.errno == "ENOSPC", e.errno
'
expect_status 0 "pool check" strata_cli pool check
stratad_alive
