#!/bin/bash
# CAN_MULTI_CONN: a FLUSH on one connection makes the writes completed
# on every other connection durable.  Four connections write, a fifth
# flushes, the daemon is killed with -9, and every write is there after
# a restart.
source "$(dirname "$0")/functions.sh"
requires nbdsh --version
requires_nbd_python

make_pool
start_stratad "$pool"
strata_cli volume create vol1 --size 16M
nbdinfo --can multi-conn "$(uri vol1)" || fail "CAN_MULTI_CONN not advertised"

"$PYTHON" - "$(uri vol1)" <<'PY'
import sys, nbd
uri = sys.argv[1]
hs = [nbd.NBD() for _ in range(5)]
for h in hs:
    h.connect_uri(uri)
# Each writer writes its own pattern to its own 1M stripe, in 4K writes,
# with no FUA and no flush of its own; all complete before the flush.
for i, h in enumerate(hs[:4]):
    for j in range(256):
        h.pwrite(bytes([i + 1]) * 4096, i * (1 << 20) + j * 4096)
hs[4].flush()
print("flushed")
PY
kill9_stratad
start_stratad "$pool"
"$PYTHON" - "$(uri vol1)" <<'PY'
import sys, nbd
h = nbd.NBD()
h.connect_uri(sys.argv[1])
for i in range(4):
    got = h.pread(1 << 20, i * (1 << 20))
    if got != bytes([i + 1]) * (1 << 20):
        bad = next(k for k in range(len(got)) if got[k] != i + 1)
        sys.exit("FAIL: connection %d's writes lost after kill -9 (first bad byte at %d)"
                 % (i, i * (1 << 20) + bad))
PY
expect_status 0 "pool check after kill -9" strata_cli pool check
stratad_alive
