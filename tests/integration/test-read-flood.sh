#!/bin/bash
# Clients that ask for large reads and never collect the replies are
# held to --max-buffer-memory (a connection with nothing in flight may
# still start one request), and a client that reads its replies keeps
# being served meanwhile.
source "$(dirname "$0")/functions.sh"
requires_nbd_python

make_pool
start_stratad "$pool" --threads 2 --max-buffer-memory 128M
strata_cli volume create big --size 1G >/dev/null
rss () { awk '/^VmRSS/ { print $2 }' "/proc/$stratad_pid/status"; }
before=$(rss)

"$PYTHON" - "$sock" "$testdir/flooding" <<'PY' &
import socket, struct, sys, time
IHAVEOPT, REPLY_MAGIC = 0x49484156454F5054, 0x3e889045565a9
OPT_GO, REP_ACK = 7, 1
conns = []
for i in range(6):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[1])
    f = s.makefile("rb")
    f.read(18)
    s.sendall(struct.pack(">I", 3))
    name = b"big"
    data = struct.pack(">I", len(name)) + name + struct.pack(">H", 0)
    s.sendall(struct.pack(">QII", IHAVEOPT, OPT_GO, len(data)) + data)
    while True:
        magic, opt, rep, ln = struct.unpack(">QIII", f.read(20))
        f.read(ln)
        if rep == REP_ACK:
            break
        assert rep < (1 << 31), "OPT_GO refused"
    for k in range(4):     # 4 x 64 MiB READ, never read back
        s.sendall(struct.pack(">IHHQQI", 0x25609513, 0, 0, k, k << 26, 64 << 20))
    conns.append((s, f))
open(sys.argv[2], "w").close()      # every request is sent
time.sleep(60)
PY
flooder=$!
cleanup_fn kill "$flooder"

wait_for 30 "the flooding clients to send their reads" test -e "$testdir/flooding"

# A client that reads its replies is served throughout.
nbdsh -u "$(uri big)" -c '
import time
for i in range(40):
    h.pwrite(bytes([i]) * 4096, i * 4096)
    assert h.pread(4096, i * 4096) == bytes([i]) * 4096
    time.sleep(0.05)
'
after=$(rss)
growth=$(( (after - before) / 1024 ))
# 6 connections x one 64M request each, the 128M budget, and slack.
echo "RSS grew by ${growth}M"
[ "$growth" -lt $(( 6 * 64 + 128 + 100 )) ] ||
    fail "RSS grew by ${growth}M with a 128M buffer budget"
stratad_alive
