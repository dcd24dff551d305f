#!/bin/bash
# A snapshot taken while clients write holds every write completed
# before it was asked for and none sent after it was taken: two
# connections each write a numbered sequence (write n goes to block
# n mod 512 of the connection's half of the volume, one write in flight
# per connection) while snapshots are taken one after another; each
# snapshot must hold, for each connection, exactly the state after some
# write n (a prefix: no later write without every earlier one), with
# n at least the last write completed before the request and less than
# the first write sent after the reply.
source "$(dirname "$0")/functions.sh"
requires_nbd_python

make_pool
start_stratad "$pool"
strata_cli volume create vol --size 4M >/dev/null

"$PYTHON" - "$sock" "$admin" <<'PY' || fail "a snapshot taken under writes is not a consistent cut"
import struct, subprocess, sys, threading, time
import nbd

sock, admin = sys.argv[1], sys.argv[2]
BS, N = 4096, 512               # blocks per connection's half
SNAPS = 12

def connect(export):
    h = nbd.NBD()
    h.set_export_name(export)
    h.connect_unix(sock)
    return h

stop = threading.Event()
sent = [{}, {}]                 # conn -> {n: time the write was sent}
done = [{}, {}]                 # conn -> {n: time it completed}
errors = []

def writer(c):
    try:
        h = connect("vol")
        n = 1
        while not stop.is_set():
            sent[c][n] = time.monotonic()
            h.pwrite(struct.pack(">QQ", c + 1, n) * (BS // 16),
                     (c * N + n % N) * BS)
            done[c][n] = time.monotonic()
            n += 1
        h.shutdown()
    except Exception as e:          # noqa: BLE001
        errors.append("writer %d: %r" % (c, e))

threads = [threading.Thread(target=writer, args=(c,)) for c in (0, 1)]
for t in threads:
    t.start()
try:
    while min(len(done[0]), len(done[1])) < 200:
        time.sleep(0.01)
    taken = []
    for k in range(SNAPS):
        ts = time.monotonic()
        p = subprocess.run(["strata", "--socket", admin, "snapshot", "create",
                            "vol", "s%d" % k], capture_output=True, text=True)
        tr = time.monotonic()
        if p.returncode != 0:
            errors.append("snapshot create vol s%d: %s" % (k, p.stderr.strip()))
            break
        taken.append((k, ts, tr))
        time.sleep(0.02)
finally:
    stop.set()
    for t in threads:
        t.join()
if errors:
    sys.exit("FAIL: " + "; ".join(errors))

bad = 0
for k, ts, tr in taken:
    h = connect("vol@s%d" % k)
    data = h.pread(2 * N * BS, 0)
    h.shutdown()
    for c in (0, 1):
        blocks = [data[(c * N + b) * BS:(c * N + b + 1) * BS] for b in range(N)]
        vals = []
        for b, blk in enumerate(blocks):
            if blk == bytes(BS):
                vals.append(0)
                continue
            cc, n = struct.unpack_from(">QQ", blk)
            if blk != struct.pack(">QQ", cc, n) * (BS // 16) or cc != c + 1 or n % N != b:
                print("vol@s%d: block %d of connection %d is garbage or misplaced"
                      % (k, b, c), file=sys.stderr)
                bad += 1
                break
            vals.append(n)
        else:
            top = max(vals)
            # A prefix: each block holds the last write n <= top to it.
            want = [top - (top - b) % N if top >= b and (top - (top - b) % N) > 0 else 0
                    for b in range(N)]
            if vals != want:
                print("vol@s%d: connection %d: not a prefix of its writes (newest %d)"
                      % (k, c, top), file=sys.stderr)
                bad += 1
            before = max([n for n, t in done[c].items() if t < ts] or [0])
            after = min([n for n, t in sent[c].items() if t > tr] or [1 << 62])
            if not before <= top < after:
                print("vol@s%d: connection %d: holds writes up to %d, but %d had "
                      "completed before the request and %d was sent after the "
                      "reply" % (k, c, top, before, after), file=sys.stderr)
                bad += 1
if bad:
    sys.exit("FAIL: %d problems in %d snapshots" % (bad, len(taken)))
print("%d snapshots under writes, each a consistent cut" % len(taken))
PY
expect_status 0 "pool check" strata_cli pool check
stratad_alive
