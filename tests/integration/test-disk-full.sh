#!/bin/bash
# Disk full: on a 64M pool, a thin volume is written until the pool is
# full; the write that does not fit gets NBD ENOSPC and changes nothing,
# the metadata stays intact (pool check clean).  Space freed by TRIM
# and then by deleting another volume is usable again after a FLUSH
# (DESIGN invariant 2: a chunk is reused only once its freeing is
# durable), and every byte written before reads back, also after a
# restart.
source "$(dirname "$0")/functions.sh"
requires_nbd_python

make_pool --size 64M
start_stratad "$pool"
strata_cli volume create big --size 256M >/dev/null
strata_cli volume create other --size 16M >/dev/null
state="$testdir/state.json"

# full_py SCRIPT: run SCRIPT with h on volume big and helpers: mib(i)
# is the content of MiB i; fill(start) writes MiB after MiB from MiB
# START until a write fails, requires ENOSPC, and returns the first
# MiB that did not fit; check() reads every MiB recorded in the state
# file.  The state file ($state) keeps which MiB hold what across
# calls: {"mib": [indexes written], "zero": [indexes trimmed]}.
full_py ()
{
    "$PYTHON" - "$(uri big)" "$state" <<EOF || fail "check failed (see above)"
import json, nbd, os, sys
h = nbd.NBD()
h.connect_uri(sys.argv[1])
M = 1 << 20
st = json.load(open(sys.argv[2])) if os.path.exists(sys.argv[2]) else {"mib": [], "zero": []}

def mib(i):
    return bytes([(i * 37 + 11) & 0xff]) * M

def fill(start):
    i = start
    while True:
        try:
            h.pwrite(mib(i), i * M)
        except nbd.Error as e:
            assert e.errno == "ENOSPC", f"write of MiB {i} failed with {e.errno}, want ENOSPC"
            # The refused write changed nothing: still a hole.
            assert h.pread(M, i * M) == bytes(M), f"refused MiB {i} is not a hole"
            return i
        st["mib"].append(i)
        assert i < 256, "the 64M pool never filled up"
        i += 1

def check():
    for i in st["mib"]:
        want = bytes(M) if i in st["zero"] else mib(i)
        assert h.pread(M, i * M) == want, f"MiB {i} is wrong"

$1
h.shutdown()
json.dump(st, open(sys.argv[2], "w"))
EOF
}

pool_status="$testdir/status.json"

# The other volume takes 8M.
nbdsh -u "$(uri other)" -c 'h.pwrite(b"\x6f" * (8 << 20), 0); h.flush()'

echo "$t: filling the pool"
full_py '
n = fill(0)
print(f"pool full after {n} MiB")
assert 40 <= n <= 56, f"{n} MiB fitted in a 64M pool with 8M used elsewhere"
st["first_refused"] = n
h.flush()                       # what did fit is made durable
check()
'
expect_status 0 "pool check on a full pool" strata_cli pool check
strata_cli pool status --json >"$pool_status"
free="$(json_get "$(cat "$pool_status")" 'j["free"]')"
[ "$free" -lt $(( 1 << 20 )) ] || fail "pool status says $free bytes free on a full pool"
stratad_alive

echo "$t: freeing 4M by TRIM"
full_py '
h.trim(4 * M, 4 * M)            # MiB 4..7
st["zero"] += [4, 5, 6, 7]
h.flush()                       # the trim is durable: its chunks are free
n = st["first_refused"]
for i in range(n, n + 4):       # exactly 4M fit again
    h.pwrite(mib(i), i * M)
    st["mib"].append(i)
m = fill(n + 4)
assert m == n + 4, f"after freeing 4M, {m - n} MiB fitted"
st["first_refused"] = m
h.flush()
check()
'
expect_status 0 "pool check after TRIM" strata_cli pool check

echo "$t: freeing 8M by deleting a volume"
strata_cli volume delete other >/dev/null
full_py '
n = st["first_refused"]
m = fill(n)
assert m == n + 8, f"after deleting an 8M volume, {m - n} MiB fitted"
h.flush()
check()
'
expect_status 0 "pool check after volume delete" strata_cli pool check
stratad_alive

echo "$t: restart"
stop_stratad
expect_status 0 "offline pool check" strata pool check --pool "$pool"
start_stratad "$pool"
full_py 'check()'
expect_status 0 "pool check after restart" strata_cli pool check
