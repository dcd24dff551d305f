#!/bin/bash
# Clients that flood the handshake with options and never read the
# replies cost bounded memory and do not stall other clients; a
# handshake gets at most 16 export lists.
source "$(dirname "$0")/functions.sh"
requires_nbd_python
requires nbdinfo --version

make_pool
start_stratad "$pool"
long="$(printf 'v%.0s' $(seq 100))"
for i in $(seq 100); do
    strata_cli volume create "$long$i" --size 1M >/dev/null
done
rss () { awk '/^VmRSS/ { print $2 }' "/proc/$stratad_pid/status"; }
before=$(rss)

"$PYTHON" - "$sock" "$testdir/flooding" <<'PY' &
import socket, struct, sys, time
IHAVEOPT = 0x49484156454F5054
OPT_LIST = 3
flood = []
for _ in range(4):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[1])
    s.recv(18)                                  # greeting
    s.sendall(struct.pack(">I", 3))             # fixed newstyle, no zeroes
    opt = struct.pack(">QII", IHAVEOPT, OPT_LIST, 0)
    s.setblocking(False)
    sent = 0
    data = opt * 5000
    deadline = time.time() + 10
    while sent < len(data) and time.time() < deadline:
        try:
            sent += s.send(data[sent:])
        except BlockingIOError:
            time.sleep(0.01)
    assert sent == len(data), "sent only %d of %d bytes" % (sent, len(data))
    flood.append(s)
open(sys.argv[2], "w").close()                  # the flood is in
time.sleep(30)                                  # hold them open, unread
PY
flooder=$!
cleanup_fn kill "$flooder"

wait_for 30 "the flooding clients to send their options" test -e "$testdir/flooding"

# Meanwhile another client is served, and memory stays bounded.
for i in 1 2 3; do
    timeout 20 nbdinfo --size "$(uri "${long}7")" >/dev/null ||
        fail "another client was not served while the handshake was flooded"
done
after=$(rss)
[ $(( after - before )) -lt $(( 200 * 1024 )) ] ||
    fail "RSS grew from ${before}K to ${after}K under the flood"
stratad_alive

# A client that reads its replies gets 16 lists, then a refusal.
"$PYTHON" - "$sock" <<'PY'
import socket, struct, sys
IHAVEOPT = 0x49484156454F5054
REPLY_MAGIC = 0x3e889045565a9
OPT_LIST, REP_ACK, REP_SERVER = 3, 1, 2
ERR_POLICY = (1 << 31) + 2
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rb")
f.read(18)
s.sendall(struct.pack(">I", 3))
def exact(n):
    b = f.read(n)
    assert len(b) == n, "connection closed"
    return b
for i in range(17):
    s.sendall(struct.pack(">QII", IHAVEOPT, OPT_LIST, 0))
    names = 0
    while True:
        magic, opt, rep, ln = struct.unpack(">QIII", exact(20))
        assert magic == REPLY_MAGIC and opt == OPT_LIST, (magic, opt)
        exact(ln)
        if rep == REP_SERVER:
            names += 1
            continue
        break
    if i < 16:
        assert rep == REP_ACK and names == 100, (i, rep, names)
    else:
        assert rep == ERR_POLICY, "list %d: reply %#x, expected ERR_POLICY" % (i + 1, rep)
print("16 lists answered, the 17th refused")
PY
stratad_alive
