#!/bin/bash
# A snapshot is exported read-only: nbdinfo says so, and writes, zeroes
# and trims sent to it anyway (libnbd's own checks off) fail with EPERM
# and change nothing.  It holds the volume as it was, whatever the
# volume does next; with a client attached it is not deleted without
# --force; it outlives the volume and stays readable; a clone of it is
# writable without changing it, and may be larger (zeroes after), not
# smaller.  A new volume of the old name is refused while the old
# volume's snapshots remain, and allowed (and empty) once they are gone;
# the clone keeps its data after the snapshot it came from is deleted
# and reaped.  The pool checks clean, online and offline.
source "$(dirname "$0")/functions.sh"
requires_nbd_python
requires nbdinfo --version

make_pool
start_stratad "$pool"
strata_cli volume create vol --size 8M >/dev/null

# The volume: 1M of 0x11 at 0, 64K of 0x22 at 5M (and holes elsewhere).
nbdsh -u "$(uri vol)" -c '
h.pwrite(b"\x11" * (1 << 20), 0)
h.pwrite(b"\x22" * 65536, 5 << 20)
h.flush()'
strata_cli snapshot create vol snap >/dev/null
# What the snapshot must hold, as a Python expression.
want='b"\x11" * (1 << 20) + bytes(4 << 20) + b"\x22" * 65536 + bytes((3 << 20) - 65536)'

info="$(nbdinfo --json "$(uri vol@snap)")"
[ "$(json_get "$info" 'j["exports"][0]["is_read_only"]')" = true ] ||
    fail "nbdinfo does not show vol@snap read-only: $info"
[ "$(json_get "$info" 'j["exports"][0]["export-size"]')" = 8388608 ] ||
    fail "vol@snap has the wrong size: $info"
[ "$(json_get "$(nbdinfo --json "$(uri vol)")" 'j["exports"][0]["is_read_only"]')" = false ] ||
    fail "nbdinfo shows the volume itself read-only"

# Change the volume after the snapshot.
nbdsh -u "$(uri vol)" -c '
h.pwrite(b"\x33" * 4096, 4096)
h.trim(65536, 5 << 20)
h.zero(1 << 20, 7 << 20)
h.pwrite(b"\x44" * 65536, 3 << 20)
h.flush()'

# Writes to the snapshot, sent to the server despite the read-only flag.
snapcheck () {
    "$PYTHON" - "$(uri "$1")" "$want" <<'PY'
import sys, nbd
uri, want = sys.argv[1], eval(sys.argv[2])
h = nbd.NBD()
h.set_strict_mode(0)            # send what the server said not to
h.connect_uri(uri)
assert h.is_read_only(), "the snapshot is not read-only"
def refused(what, fn, *args):
    try:
        fn(*args)
    except nbd.Error as e:
        assert e.errno == "EPERM", "%s: %s, expected EPERM" % (what, e)
        # From the server, not from libnbd's own checks.
        assert "command failed" in e.string, "%s: %s" % (what, e)
        return
    raise AssertionError("%s on the snapshot succeeded" % what)
refused("write", h.pwrite, b"\xee" * 4096, 0)
refused("write with FUA", h.pwrite, b"\xee" * 65536, 1 << 20, nbd.CMD_FLAG_FUA)
refused("write zeroes", h.zero, 65536, 5 << 20)
refused("trim", h.trim, 1 << 20, 0)
# The connection is still good, and nothing changed.
assert h.pread(len(want), 0) == want, "the snapshot does not hold the volume as it was"
h.flush()
h.shutdown()
PY
}
snapcheck vol@snap || fail "vol@snap: writes were not refused or it does not hold the old data"
nbdsh -u "$(uri vol)" -c '
want = b"\x11" * 4096 + b"\x33" * 4096 + b"\x11" * ((1 << 20) - 8192)
want += bytes(2 << 20) + b"\x44" * 65536 + bytes((5 << 20) - 65536)
assert h.pread(8 << 20, 0) == want, "the volume does not hold its new data"' ||
    fail "the volume's data is wrong after writes to its snapshot"

# Deleting a snapshot with a client attached needs --force.
nbdsh -u "$(uri vol@snap)" -c "
import subprocess
p = subprocess.run(['strata', '--socket', '$admin', 'snapshot', 'delete', 'vol@snap'],
                   capture_output=True, text=True)
assert p.returncode == 1 and 'attached' in p.stderr, p
" || fail "snapshot delete with a client attached did not refuse"

# The snapshot outlives its volume.
strata_cli volume delete vol >/dev/null || fail "volume delete vol failed"
expect_status 0 "snapshot show after the volume was deleted" strata_cli snapshot show vol@snap
snapcheck vol@snap || fail "vol@snap after deleting vol: not read-only or not the old data"
[ "$(strata_cli snapshot list --json | "$PYTHON" -c 'import json,sys; print(" ".join(s["full_name"] for s in json.load(sys.stdin)["snapshots"]))')" = vol@snap ] ||
    fail "snapshot list after deleting vol: $(strata_cli snapshot list)"

# A clone of it is writable; the snapshot stays as it was.
strata_cli volume create clone --from-snapshot vol@snap >/dev/null
[ "$(json_get "$(nbdinfo --json "$(uri clone)")" 'j["exports"][0]["is_read_only"]')" = false ] ||
    fail "the clone is exported read-only"
nbdsh -u "$(uri clone)" -c "
want = $want
assert h.pread(len(want), 0) == want, 'the clone does not start as the snapshot'
h.pwrite(b'\x55' * 8192, 0)
h.pwrite(b'\x66' * 65536, 6 << 20)
h.flush()
want = b'\x55' * 8192 + want[8192:6 << 20] + b'\x66' * 65536 + want[(6 << 20) + 65536:]
assert h.pread(len(want), 0) == want, 'the clone does not read back its writes'
" || fail "the clone of vol@snap is not a writable copy of it"
snapcheck vol@snap || fail "vol@snap changed when its clone was written"
# A clone may be larger (the rest reads as zeroes), not smaller.
strata_cli volume create big --from-snapshot vol@snap --size 12M >/dev/null
nbdsh -u "$(uri big)" -c "
want = $want
assert h.get_size() == 12 << 20, h.get_size()
assert h.pread(12 << 20, 0) == want + bytes(4 << 20), 'the larger clone is not the snapshot and zeroes'
" || fail "a larger clone of vol@snap does not read as the snapshot followed by zeroes"
expect_refusal "smaller" "a clone smaller than the snapshot" \
    strata_cli volume create small --from-snapshot vol@snap --size 4M
strata_cli volume delete big >/dev/null

# The old name stays taken while vol@snap remains.
expect_refusal "snapshot.*vol@snap|vol@snap.*remain" \
    "volume create of the name of a deleted volume with snapshots" \
    strata_cli volume create vol --size 1G
expect_refusal "snapshot.*vol@snap|vol@snap.*remain" \
    "volume create --from-snapshot of the name of a deleted volume with snapshots" \
    strata_cli volume create vol --from-snapshot vol@snap
expect_status 0 "pool check with an orphan snapshot and its clone" strata_cli pool check

# Once it is deleted (and reaped), the name is free and a new volume of
# it is empty; the clone keeps every byte.
strata_cli snapshot delete vol@snap >/dev/null
expect_status 1 "snapshot show of a deleted snapshot" strata_cli snapshot show vol@snap
strata_cli volume create vol --size 1G >/dev/null ||
    fail "volume create vol after its snapshots were deleted failed"
nbdsh -u "$(uri vol)" -c 'assert h.pread(8 << 20, 0) == bytes(8 << 20), "the new vol is not empty"' ||
    fail "the new volume vol shows data of the old one"
reaped () { [ "$(json_get "$(strata_cli pool status --json)" 'j["reap_pending"] == 0 and j["pending_chunks"] == 0')" = true ]; }
wait_for 30 "the deleted snapshot to be reaped" reaped
nbdsh -u "$(uri clone)" -c "
want = $want
want = b'\x55' * 8192 + want[8192:6 << 20] + b'\x66' * 65536 + want[(6 << 20) + 65536:]
assert h.pread(len(want), 0) == want, 'the clone lost data when its snapshot was deleted'
" || fail "the clone's data changed when vol@snap was deleted"
expect_status 0 "pool check at the end" strata_cli pool check
stop_stratad
expect_status 0 "offline pool check" strata pool check --pool "$pool"
