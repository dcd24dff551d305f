#!/bin/bash
# Clients that connect and then say nothing (before the greeting is
# read, in the middle of the option haggling, or in the middle of a
# request) do not hold up anyone else, and do not stop a clean shutdown.
source "$(dirname "$0")/functions.sh"
requires_nbd_python
requires nbdsh --version

make_pool
start_stratad "$pool"
strata_cli volume create vol1 --size 16M

"$PYTHON" - "$sock" "$(uri vol1)" "$admin" "$stratad_pid" <<'PY'
import os, signal, socket, struct, subprocess, sys, time, nbd
from strata_test import Raw, connect_raw, IHAVEOPT, OPT_GO, CMD_WRITE
sock, uri, admin, pid = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
idle = []
for _ in range(20):                       # connected, never read or sent
    s = socket.socket(socket.AF_UNIX); s.connect(sock); idle.append(s)
r = Raw(sock); r.start()                  # half an option
r.send(struct.pack(">QII", IHAVEOPT, OPT_GO, 64)); idle.append(r.s)
r2, size, _ = connect_raw(sock, "vol1")   # half a write
r2.request(CMD_WRITE, 0, 1 << 20, 1, data=b"\0" * 1000); idle.append(r2.s)
t0 = time.monotonic()
for i in range(10):
    h = nbd.NBD()
    h.connect_uri(uri)
    h.pwrite(b"z" * 4096, i * 4096)
    assert h.pread(4096, i * 4096) == b"z" * 4096
    h.shutdown()
subprocess.run(["strata", "--socket", admin, "volume", "list"], check=True,
               stdout=subprocess.DEVNULL, timeout=30)
dt = time.monotonic() - t0
assert dt < 30, "10 clients took %.1fs alongside idle ones" % dt
# With the idle clients still open, SIGTERM must stop the daemon.
os.kill(pid, signal.SIGTERM)
def running():
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in "ZX"
    except (FileNotFoundError, ProcessLookupError):   # ESRCH: reaped
        return False
deadline = time.monotonic() + 30
while running() and time.monotonic() < deadline:
    time.sleep(0.1)
assert not running(), "stratad did not exit within 30s of SIGTERM with idle clients"
PY
st=0
wait "$stratad_pid" || st=$?
[ "$st" -eq 0 ] || fail "stratad exited with status $st after SIGTERM with idle clients"
