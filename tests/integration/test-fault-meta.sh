#!/bin/bash
# Metadata I/O faults (stratad --debug-fault-file): when a commit of the
# pool's journal fails (meta-sync EIO, meta-write ENOSPC), the FLUSH
# that needed it gets EIO, and from then on the pool refuses every
# change with EIO, as blockmap_pool_sync's contract says, even once the
# fault is gone; reads keep working and the daemon keeps serving.  A
# restart recovers the pool from its journal: everything flushed before
# the fault is there and the pool checks clean.  Short journal writes
# (meta-write short) are completed: nothing is lost across kill -9.
source "$(dirname "$0")/functions.sh"
requires_nbd_python

make_pool
faults="$testdir/faults"

# meta_py SCRIPT: run SCRIPT with h connected to volume v, and helpers
# pat(byte, n) and flush_until_error(): write to a fresh hole (so the
# commit has a journal record to write) and flush, again every 50 ms,
# until a FLUSH fails; it must fail with EIO.  Fresh holes come from
# 16M up, 64K apart.
meta_py ()
{
    "$PYTHON" - "$(uri v)" <<EOF || fail "check failed (see above)"
import nbd, sys, time
h = nbd.NBD()
h.connect_uri(sys.argv[1])

def pat(c, n):
    return bytes([c]) * n

def flush_until_error():
    end = time.monotonic() + 10
    off = 16 << 20
    while True:
        h.pwrite(pat(0x4e, 4096), off)
        off += 65536
        try:
            h.flush()
        except nbd.Error as e:
            assert e.errno == "EIO", f"flush failed with {e.errno}, want EIO"
            return
        assert time.monotonic() < end, "no FLUSH failed within 10 s"
        time.sleep(0.05)

def expect_eio(fn, what):
    try:
        fn()
    except nbd.Error as e:
        assert e.errno == "EIO", f"{what}: got {e.errno}, want EIO"
        return
    assert False, f"{what} succeeded on a failed pool"

$1
h.shutdown()
EOF
}

# The checks after a restart: what was flushed before the fault is
# there, the pool was recovered from its journal and checks clean, and
# it takes changes again.
check_after_restart ()
{
    local what=$1
    start_stratad "$pool"
    meta_py '
assert h.pread(1 << 20, 0) == pat(0x41, 1 << 20), "flushed data lost"
assert h.pread(65536, 4 << 20) == pat(0x42, 65536), "flushed data lost"
h.pwrite(pat(0x43, 65536), 6 << 20)
h.flush()
assert h.pread(65536, 6 << 20) == pat(0x43, 65536)
h.trim(65536, 6 << 20)
h.flush()
'
    expect_status 0 "pool check after $what and a restart" strata_cli pool check
    strata_cli volume create "after-$what" --size 1M >/dev/null ||
        fail "the pool refuses changes after $what and a restart"
    stop_stratad
    expect_status 0 "offline pool check after $what" strata pool check --pool "$pool"
}

# fail_commit RULE: with RULE in the fault file, a commit fails; then
# check the pool refuses changes, keeps serving reads, and that the
# daemon, stopped, says the pool was not closed clean.
fail_commit ()
{
    local rule=$1 st=0
    echo "$t: $rule"
    start_stratad "$pool" --debug-fault-file "$faults"
    echo "$rule" >"$faults"
    meta_py 'flush_until_error()'
    rm -f "$faults"
    # The fault is gone, but the pool stays failed until a restart.
    meta_py '
expect_eio(lambda: h.pwrite(pat(0x58, 4096), 8 << 20), "write to a hole")
expect_eio(lambda: h.trim(65536, 0), "trim")
expect_eio(lambda: h.flush(), "flush")
assert h.pread(1 << 20, 0) == pat(0x41, 1 << 20), "reads changed"
'
    expect_refusal 'EIO|input/output' "volume create on a failed pool" \
        strata_cli volume create refused --size 1M
    strata_cli pool status >/dev/null || fail "admin socket stopped answering"
    stratad_alive
    grep -q 'refusing further changes' "$stratad_log" ||
        fail "the daemon did not log why it refuses changes"
    # SIGTERM: it stops (the pool cannot be closed clean: status 1).
    kill -TERM "$stratad_pid"
    wait_for 30 "stratad to exit after SIGTERM" pid_gone "$stratad_pid"
    wait "$stratad_pid" || st=$?
    [ "$st" -eq 1 ] || fail "stratad exited with $st after a failed commit, want 1"
    check_after_restart "${rule// /-}"
}

start_stratad "$pool"
strata_cli volume create v --size 32M >/dev/null
meta_py '
h.pwrite(pat(0x41, 1 << 20), 0)
h.pwrite(pat(0x42, 65536), 4 << 20)
h.flush()
'
stop_stratad

fail_commit 'meta-sync EIO'
fail_commit 'meta-write ENOSPC'
# The data file's sync is part of the commit too.
fail_commit 'data-sync EIO'

# Short journal writes are completed: a FLUSH succeeds, and what it
# covered survives kill -9.
echo "$t: meta-write short"
echo 'meta-write short' >"$faults"
start_stratad "$pool" --debug-fault-file "$faults"
meta_py '
for i in range(20):
    h.pwrite(pat(0x50 + i, 4096), (10 << 20) + i * 65536)
    h.flush()
    time.sleep(0.01)
'
# Remove the rule; the daemon reports what it injected once it sees
# the file gone (it looks when there is I/O to check).
rm -f "$faults"
gone () {
    nbdsh -u "$(uri v)" -c 'h.pwrite(b"\1" * 4096, 30 << 20); h.flush()'
    grep -q "faults is gone" "$stratad_log"
}
wait_for 10 "the daemon to notice the fault file is gone" gone
grep -qE -- '--debug-fault-file: meta-write short: [1-9][0-9]* injected' "$stratad_log" ||
    fail "no journal write was made short"
kill9_stratad
start_stratad "$pool"
meta_py '
for i in range(20):
    assert h.pread(4096, (10 << 20) + i * 65536) == pat(0x50 + i, 4096), f"write {i} lost"
'
expect_status 0 "pool check after short journal writes" strata_cli pool check
