#!/bin/bash
# volume delete --force while a client is attached: the volume leaves
# the namespace at once, the attached client's requests fail (or its
# connection closes), the space is freed, and a new volume of the same
# name starts empty.
source "$(dirname "$0")/functions.sh"
requires_nbd_python

make_pool
start_stratad "$pool"
strata_cli volume create vol1 --size 16M

"$PYTHON" - "$(uri vol1)" "$admin" <<'PY'
import json, subprocess, sys, nbd
uri, admin = sys.argv[1], sys.argv[2]
M = 1 << 20
def strata(*a, check=True):
    return subprocess.run(["strata", "--socket", admin] + list(a),
                          capture_output=True, text=True, check=check)
h = nbd.NBD()
h.connect_uri(uri)
h.pwrite(b"\x42" * (8 * M), 0)
h.flush()
used = json.loads(strata("pool", "status", "--json").stdout)["used"]
assert used >= 8 * M, used
p = strata("volume", "delete", "vol1", check=False)
assert p.returncode == 1, "delete with a client attached: %r" % (p,)
p = strata("volume", "delete", "vol1", "--force")
names = [v["name"] for v in json.loads(strata("volume", "list", "--json").stdout)["volumes"]]
assert "vol1" not in names, names
# The attached client's reads and writes now fail, or the connection is
# closed.  (A flush may succeed: it has nothing left to make durable.)
for fn, args in [(h.pread, (4096, 0)), (h.pwrite, (b"x" * 4096, 0))]:
    try:
        fn(*args)
        raise AssertionError("%s succeeded on a deleted volume" % fn.__name__)
    except nbd.Error as e:
        assert e.errno in ("ESHUTDOWN", "EIO", "ENOTCONN", "ECONNRESET", "EPIPE", "EINVAL", None), e
try:
    h.shutdown()
except nbd.Error:
    pass
# A new volume of the same name is empty.
strata("volume", "create", "vol1", "--size", "16M")
h2 = nbd.NBD()
h2.connect_uri(uri)
assert h2.pread(8 * M, 0) == bytes(8 * M), "the new vol1 shows the old vol1's data"
h2.shutdown()
PY
# The space comes back once the deletion is durable (pending chunks
# drain): poll with a bound.
freed () {
    local st
    st="$(strata_cli pool status --json)"
    [ "$(json_get "$st" 'j["used"] < 8 * 1048576')" = true ]
}
wait_for 30 "the deleted volume's space to be freed" freed
expect_status 0 "pool check" strata_cli pool check
stratad_alive
