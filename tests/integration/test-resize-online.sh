#!/bin/bash
# Growing a volume online: a connected client keeps working, and a
# reconnecting client sees the new size and can use the new space (which
# reads as zero); the old data is untouched.  Shrinking (with --force, of
# an unwritten tail) makes the cut range unreachable.
source "$(dirname "$0")/functions.sh"
requires nbdsh --version
requires_nbd_python

make_pool
start_stratad "$pool"
strata_cli volume create vol1 --size 16M

"$PYTHON" - "$(uri vol1)" "$admin" <<'PY'
import subprocess, sys, nbd
uri, admin = sys.argv[1], sys.argv[2]
M = 1 << 20
def strata(*a):
    subprocess.run(["strata", "--socket", admin] + list(a), check=True)
h = nbd.NBD()
h.connect_uri(uri)
assert h.get_size() == 16 * M
h.pwrite(b"\x01" * M, 15 * M)
strata("volume", "resize", "vol1", "--size", "64M")
# The old connection keeps working on the old range.
h.pwrite(b"\x02" * M, 0)
assert h.pread(M, 15 * M) == b"\x01" * M
h.flush()
# A new connection sees 64M and the new space reads as zero.
h2 = nbd.NBD()
h2.connect_uri(uri)
assert h2.get_size() == 64 * M, h2.get_size()
assert h2.pread(48 * M, 16 * M) == bytes(48 * M), "grown space is not zero"
h2.pwrite(b"\x03" * M, 63 * M)
assert h2.pread(M, 63 * M) == b"\x03" * M
assert h2.pread(M, 15 * M) == b"\x01" * M
assert h2.pread(M, 0) == b"\x02" * M
h2.shutdown()
h.shutdown()
PY

strata_cli volume resize vol1 --size 32M --force 2>/dev/null &&
    fail "shrink over data written at 63M succeeded"
nbdsh -u "$(uri vol1)" -c 'h.trim(1 << 20, 63 << 20); h.flush()'
strata_cli volume resize vol1 --size 32M --force
[ "$(nbdinfo --size "$(uri vol1)")" = 33554432 ] || fail "size after shrink"
nbdsh -u "$(uri vol1)" -c '
h.set_strict_mode(0)
try:
    h.pread(4096, 40 << 20)
    assert False, "read past the new end succeeded"
except nbd.Error as e:
    assert e.errno == "EINVAL", e.errno
assert h.pread(1 << 20, 15 << 20) == b"\x01" * (1 << 20)'
# Grow again: the range that was cut off reads as zero, not old data.
strata_cli volume resize vol1 --size 64M
nbdsh -u "$(uri vol1)" -c 'assert h.pread(32 << 20, 32 << 20) == bytes(32 << 20), "old data came back"'
expect_status 0 "pool check" strata_cli pool check
stratad_alive
