#!/bin/bash
# Read-ahead of sequential readers never serves stale data.  A client
# reads a volume sequentially (one READ at a time, then four); between
# its READs, writes, trims and zeroes land in the range it has been
# read ahead for, from another connection and from its own; every READ
# must return what the last write completed before it was sent left
# there.  The volume's read_ahead counter must grow in every phase, so
# each really was served from read-ahead.  A forced delete in the
# middle of a stream fails the READs that follow, read ahead or not.
source "$(dirname "$0")/functions.sh"
requires_nbd_python

make_pool
start_stratad "$pool"
strata_cli volume create v --size 32M >/dev/null

"$PYTHON" - "$sock" "$admin" <<'PY' || fail "read-ahead served data that was not current"
import json, random, struct, subprocess, sys, time
import nbd

sock, admin = sys.argv[1], sys.argv[2]
MiB = 1 << 20
SIZE, BS, READ = 32 * MiB, 4096, 256 * 1024
rng = random.Random(7)
version = {}                    # 4 KiB block -> version, 0: zeroes

def connect():
    h = nbd.NBD()
    h.set_export_name("v")
    h.connect_unix(sock)
    return h

def block(b, v):
    return bytes(BS) if v == 0 else struct.pack(">QQ", b, v) * (BS // 16)

def expected(off, n):
    return b"".join(block(b, version.get(b, 0))
                    for b in range(off // BS, (off + n) // BS))

def write(h, b, v):
    h.pwrite(block(b, v), b * BS)
    version[b] = v

def check(off, data, what):
    want = expected(off, len(data))
    if data != want:
        for i in range(0, len(data), BS):
            if data[i:i + BS] != want[i:i + BS]:
                b = (off + i) // BS
                got = struct.unpack(">QQ", data[i:i + 16])
                raise SystemExit("%s: block %d (offset %d) read %r, expected "
                                 "version %d" % (what, b, off + i, got,
                                                 version.get(b, 0)))

def read_ahead_bytes():
    p = subprocess.run(["strata", "--socket", admin, "--json", "volume",
                        "status", "v"], check=True, capture_output=True,
                       text=True)
    return json.loads(p.stdout)["metrics"]["bytes"]["read_ahead"]

a, b = connect(), connect()
# Version 1 everywhere, 1 MiB at a time.
for off in range(0, SIZE, MiB):
    a.pwrite(b"".join(block(k, 1) for k in range(off // BS, (off + MiB) // BS)),
             off)
    for k in range(off // BS, (off + MiB) // BS):
        version[k] = 1
a.flush()

def phase(name, between, passes=1):
    """Stream the whole volume with A, one READ at a time, calling
    between(off) after each READ; check every READ."""
    before = read_ahead_bytes()
    for _ in range(passes):
        for off in range(0, SIZE, READ):
            check(off, a.pread(READ, off), "%s: READ at %d" % (name, off))
            # Any write voids all the volume's read-ahead: change
            # something after every fourth READ, so the READs between
            # are served from read-ahead and the next one must not be.
            if (off // READ) % 4 == 3:
                between(off)
    got = read_ahead_bytes() - before
    assert got > 0, "%s: nothing was served from read-ahead" % name
    print("%s: %d MiB served from read-ahead" % (name, got // MiB))

def connections():
    p = subprocess.run(["strata", "--socket", admin, "--json", "volume",
                        "status", "v"], check=True, capture_output=True,
                       text=True)
    return json.loads(p.stdout)["connections"]

# 0. A connection that streams, then says NBD_CMD_DISC with read-aheads
#    still waiting, is closed: none of them may keep it open.
c = connect()
before = read_ahead_bytes()
for off in range(0, 4 * MiB, READ):
    check(off, c.pread(READ, off), "stream then DISC")
assert read_ahead_bytes() > before, "stream then DISC: nothing read ahead"
c.shutdown()
del c
deadline = time.monotonic() + 10
while connections() != 2:
    assert time.monotonic() < deadline, \
        "a connection closed with NBD_CMD_DISC is still open after 10 s"
    time.sleep(0.05)

n = [2]

def ahead(off, lo=1, hi=8):
    """A random 4 KiB block within the next few READs after OFF."""
    start = off + READ * lo
    end = min(off + READ * hi, SIZE)
    if start >= end:
        return None
    return rng.randrange(start, end) // BS

# 1. Nothing else happens: everything after the first READs is served
#    from read-ahead.  (In the phases after it, something changes after
#    every fourth READ: any write voids all of a volume's read-ahead.)
phase("plain stream", lambda off: None)

# 2. Another connection writes into the range read ahead, after every
#    READ of the stream.
def other_writes(off):
    k = ahead(off)
    if k is not None:
        n[0] += 1
        write(b, k, n[0])
phase("writes from another connection", other_writes)

# 3. Now and then: the reader itself writes ahead, another connection
#    trims a whole chunk ahead or zeroes a block.
def mixed(off):
    k = ahead(off)
    if k is None:
        return
    r = (off // READ) % 12
    if r == 3:
        n[0] += 1
        write(a, k, n[0])
    elif r == 7:
        c = (k * BS) // (64 * 1024) * (64 * 1024)
        b.trim(64 * 1024, c)
        for x in range(c // BS, (c + 64 * 1024) // BS):
            version[x] = 0
    elif r == 11:
        b.zero(BS, k * BS)
        version[k] = 0
phase("own writes, trims and zeroes", mixed)

# 4. Batches of four READs in flight (so READs claim read-aheads still
#    reading); after every other batch, the other connection writes into
#    the range read ahead for the next ones.
before = read_ahead_bytes()
for off in range(0, SIZE, 4 * READ):
    batch = []
    for o in range(off, min(off + 4 * READ, SIZE), READ):
        buf = nbd.Buffer(READ)
        batch.append((o, buf, a.aio_pread(buf, o)))
    for o, buf, cookie in batch:
        while not a.aio_command_completed(cookie):
            a.poll(-1)
        check(o, buf.to_bytearray(), "4 in flight: READ at %d" % o)
    k = ahead(off, 4, 12) if (off // (4 * READ)) % 2 else None
    if k is not None:
        n[0] += 1
        write(b, k, n[0])
assert read_ahead_bytes() > before, "4 in flight: nothing read ahead"

# 5. A forced delete in the middle of a stream: the READs after it
#    fail, even those that read-ahead had covered.
for off in range(0, 8 * READ, READ):
    check(off, a.pread(READ, off), "before delete")
subprocess.run(["strata", "--socket", admin, "volume", "delete", "v",
                "--force"], check=True, capture_output=True)
for off in range(8 * READ, 12 * READ, READ):
    try:
        a.pread(READ, off)
    except nbd.Error:
        continue
    raise SystemExit("READ at %d after the volume was deleted succeeded" % off)
print("reads after delete fail")
PY
stratad_alive
expect_status 0 "pool check" strata_cli pool check
