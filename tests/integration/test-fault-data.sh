#!/bin/bash
# Data I/O faults (stratad --debug-fault-file): while a rule is in the
# fault file, matching reads and writes of volume data fail, the client
# gets the NBD error of the rule (EIO, ENOSPC), the daemon keeps
# serving, short writes are completed, and data flushed before the
# fault reads back unchanged, once the fault is removed and again after
# a restart; the pool checks clean.
source "$(dirname "$0")/functions.sh"
requires_nbd_python

make_pool
faults="$testdir/faults"
start_stratad "$pool" --debug-fault-file "$faults"
strata_cli volume create v --size 32M

# fault_py SCRIPT: run SCRIPT with h connected to volume v (structured
# replies, as nbdsh does) and helpers: expect_error(errno, fn) retries
# fn until it fails with the NBD error errno (the daemon looks at the
# fault file every 100 ms, so the previous rule may still be in force
# for a moment); expect_ok(fn) retries until fn succeeds.
fault_py ()
{
    "$PYTHON" - "$(uri v)" <<EOF || fail "check failed (see above)"
import nbd, sys, time
h = nbd.NBD()
h.connect_uri(sys.argv[1])

def pat(c, n):
    return bytes([c]) * n

def expect_error(want, fn, what):
    end = time.monotonic() + 10
    got = "success"
    while True:
        try:
            fn()
        except nbd.Error as e:
            if e.errno == want:
                return
            got = e.errno   # the previous rule, until the file is seen
        assert time.monotonic() < end, f"{what}: did not fail with {want} in 10 s (last: {got})"
        time.sleep(0.05)

def expect_ok(fn, what):
    end = time.monotonic() + 10
    while True:
        try:
            return fn()
        except nbd.Error as e:
            assert time.monotonic() < end, f"{what}: still fails ({e.errno}) after 10 s"
            time.sleep(0.05)

$1
h.shutdown()
EOF
}

# Durable data: 1 MiB of 'A' at 0, flushed; a partial chunk of 'C' at
# 2M+512 (so later zeroing has an edge to do), flushed.
fault_py '
h.pwrite(pat(0x41, 1 << 20), 0)
h.pwrite(pat(0x43, 1024), (2 << 20) + 512)
h.flush()
'

echo "$t: data-write EIO"
echo 'data-write EIO' >"$faults"
fault_py '
expect_error("EIO", lambda: h.pwrite(pat(0x58, 65536), 4 << 20), "write")
expect_error("EIO", lambda: h.pwrite(pat(0x58, 4096), 512, nbd.CMD_FLAG_FUA), "FUA write")
# Page-aligned small writes are run by the loop itself, not the ring.
expect_error("EIO", lambda: h.pwrite(pat(0x58, 4096), 8192), "page overwrite")
expect_error("EIO", lambda: h.pwrite(pat(0x58, 12288), 4096, nbd.CMD_FLAG_FUA), "FUA page overwrite")
expect_error("EIO", lambda: h.zero(65536, 8 << 20, nbd.CMD_FLAG_NO_HOLE), "write zeroes")
# A trim of the partial edge of a chunk zeroes it: a data write too.
expect_error("EIO", lambda: h.trim(512, (2 << 20) + 1536), "trim edge")
# Reads are not affected, and a FLUSH still works.
assert h.pread(1 << 20, 0) == pat(0x41, 1 << 20), "flushed data changed"
h.flush()
'
stratad_alive

echo "$t: data-write ENOSPC"
echo 'data-write ENOSPC' >"$faults"
fault_py '
expect_error("ENOSPC", lambda: h.pwrite(pat(0x59, 65536), 5 << 20), "write")
expect_error("ENOSPC", lambda: h.pwrite(pat(0x59, 512), 0), "overwrite")
expect_error("ENOSPC", lambda: h.pwrite(pat(0x59, 4096), 65536), "page overwrite")
assert h.pread(1 << 20, 0) == pat(0x41, 1 << 20), "flushed data changed"
assert h.pread(4096, 1 << 20) == bytes(4096), "hole changed"
'
stratad_alive

echo "$t: data-read EIO"
echo 'data-read EIO' >"$faults"
fault_py '
expect_error("EIO", lambda: h.pread(65536, 0), "read")
# A write of a partial shared-nothing chunk needs no read: it works.
h.pwrite(pat(0x44, 65536), 12 << 20)
h.flush()
'
stratad_alive

echo "$t: data-write short"
echo 'data-write short' >"$faults"
# Every write transfers half of what it asks for; the server sends the
# rest, so whole requests still succeed.  Wait until the rule is in
# force (a rule of data-read EIO would still be there otherwise).
fault_py '
expect_ok(lambda: h.pread(4096, 0), "read after data-read EIO was replaced")
h.pwrite(pat(0x45, 3 << 20), 16 << 20)
h.pwrite(pat(0x46, 4608), (20 << 20) + 512)
# Page-aligned ones are run by the loop itself: the first half inline,
# the rest (no longer page-aligned) through the ring.
h.pwrite(pat(0x48, 4096), (17 << 20) + 4096)
h.pwrite(pat(0x49, 8192), (18 << 20) + 8192, nbd.CMD_FLAG_FUA)
h.flush()
want = bytearray(pat(0x45, 3 << 20))
want[(1 << 20) + 4096:(1 << 20) + 8192] = pat(0x48, 4096)
want[(2 << 20) + 8192:(2 << 20) + 16384] = pat(0x49, 8192)
assert h.pread(3 << 20, 16 << 20) == want, "short writes lost data"
assert h.pread(4608, (20 << 20) + 512) == pat(0x46, 4608), "short writes lost data"
'
stratad_alive

echo "$t: no faults"
rm -f "$faults"
check='
expect_ok(lambda: h.pwrite(pat(0x47, 4096), 24 << 20), "write after the faults")
h.flush()
assert h.pread(1 << 20, 0) == pat(0x41, 1 << 20), "data flushed before the faults changed"
assert h.pread(1024, (2 << 20) + 512) == pat(0x43, 1024), "partial chunk changed"
assert h.pread(65536, 12 << 20) == pat(0x44, 65536), "data written during read faults lost"
want = bytearray(pat(0x45, 3 << 20))
want[(1 << 20) + 4096:(1 << 20) + 8192] = pat(0x48, 4096)
want[(2 << 20) + 8192:(2 << 20) + 16384] = pat(0x49, 8192)
assert h.pread(3 << 20, 16 << 20) == want, "short-written data lost"
assert h.pread(4096, 24 << 20) == pat(0x47, 4096), "data written after the faults lost"
'
fault_py "$check"
# The daemon counts what each rule injected when it goes away: every
# rule must have been in force.
# (The file is looked at only when there is I/O to check: write.)
gone () {
    nbdsh -u "$(uri v)" -c 'h.pwrite(b"\0" * 512, 30 << 20)'
    grep -q "faults is gone" "$stratad_log"
}
wait_for 10 "the daemon to notice the fault file is gone" gone
for rule in 'data-write EIO' 'data-write ENOSPC' 'data-read EIO' 'data-write short'; do
    grep -q -- "--debug-fault-file: $rule: [1-9][0-9]* injected" "$stratad_log" ||
        fail "the rule '$rule' injected nothing"
done
expect_status 0 "pool check after data faults" strata_cli pool check

# Data faults never touch metadata: the daemon stops clean, and
# everything is there after a restart.
stop_stratad
expect_status 0 "offline pool check" strata pool check --pool "$pool"
start_stratad "$pool"
fault_py "$check"
expect_status 0 "pool check after restart" strata_cli pool check
