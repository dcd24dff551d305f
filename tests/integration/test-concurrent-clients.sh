#!/bin/bash
# Many connections at once, on several volumes, each writing and reading
# its own pattern with requests in flight; nothing mixes up.
source "$(dirname "$0")/functions.sh"
requires_nbd_python

make_pool
start_stratad "$pool"
for v in a b c; do strata_cli volume create "$v" --size 32M; done

"$PYTHON" - "$sock" <<'PY'
import os, sys, threading, nbd
sock = sys.argv[1]
errors = []
def worker(vol, idx):
    try:
        h = nbd.NBD()
        h.set_export_name(vol)
        h.connect_unix(sock)
        base = idx * (4 << 20)
        bufs = {}
        for i in range(64):
            data = os.urandom(65536)
            off = base + i * 65536
            h.aio_pwrite(nbd.Buffer.from_bytearray(bytearray(data)), off)
            bufs[off] = data
        while h.aio_in_flight() > 0:
            h.poll(-1)
        h.flush()
        for off, data in bufs.items():
            if h.pread(65536, off) != data:
                errors.append("%s conn %d: mismatch at %d" % (vol, idx, off))
                break
        h.shutdown()
    except Exception as e:
        errors.append("%s conn %d: %r" % (vol, idx, e))
ts = [threading.Thread(target=worker, args=(v, i)) for v in "abc" for i in range(8)]
for t in ts: t.start()
for t in ts: t.join(120)
if any(t.is_alive() for t in ts):
    sys.exit("FAIL: a client hung")
if errors:
    sys.exit("FAIL: " + "; ".join(errors[:10]))
print("24 connections ok")
PY
stratad_alive
