#!/bin/bash
# Structured replies: they are negotiated; a structured read of a
# partly written range returns correct data chunks and/or hole chunks;
# DF returns one chunk; base:allocation block status agrees with what
# was written, with REQ_ONE too.
source "$(dirname "$0")/functions.sh"
requires nbdsh --version

make_pool
start_stratad "$pool"
strata_cli volume create vol1 --size 4M

nbdsh -c - <<PY
import os
h.add_meta_context(nbd.CONTEXT_BASE_ALLOCATION)
h.connect_uri("$(uri vol1)")
assert h.get_structured_replies_negotiated(), "structured replies not negotiated"
assert h.can_meta_context(nbd.CONTEXT_BASE_ALLOCATION), "base:allocation not negotiated"
assert h.can_df(), "DF not advertised"
K = 1024
data = os.urandom(64 * K)
h.pwrite(data, 128 * K)         # chunk 2 written; 0,1 and 3.. holes
h.flush()

# A structured read over hole, data, hole: the chunks cover the range
# exactly once and carry the right bytes.
seen = bytearray(256 * K)
covered = []
def chunk(buf, offset, status, err):
    assert status in (nbd.READ_DATA, nbd.READ_HOLE), status
    rel = offset - 64 * K
    if status == nbd.READ_DATA:
        seen[rel:rel + len(buf)] = buf
    else:
        assert buf == bytes(len(buf))
    covered.append((rel, len(buf)))
    return 0
buf = h.pread_structured(256 * K, 64 * K, chunk)
want = bytes(64 * K) + data + bytes(128 * K)
assert buf == want, "pread_structured returned wrong data"
assert bytes(seen) == want, "chunks carried wrong data"
covered.sort()
pos = 0
for rel, n in covered:
    assert rel == pos, "chunks overlap or leave a gap at %d: %r" % (pos, covered)
    pos += n
assert pos == 256 * K

# DF: the whole read comes in one chunk.
ncalls = []
def one(buf, offset, status, err):
    ncalls.append((offset, len(buf), status))
    return 0
buf = h.pread_structured(256 * K, 64 * K, one, nbd.CMD_FLAG_DF)
assert buf == want
assert len(ncalls) == 1, "DF read came in %d chunks: %r" % (len(ncalls), ncalls)

# Block status: hole (3) 0..128K, data (0) 128K..192K, hole after.
ext = []
def bs(meta, offset, entries, err):
    assert meta == nbd.CONTEXT_BASE_ALLOCATION, meta
    ext.extend(zip(entries[0::2], entries[1::2]))
    return 0
h.block_status(h.get_size(), 0, bs)
pos, merged = 0, []
for n, flags in ext:
    if merged and merged[-1][1] == flags:
        merged[-1][0] += n
    else:
        merged.append([n, flags])
    pos += n
assert pos <= h.get_size()
assert merged[0] == [128 * K, 3], merged
assert merged[1] == [64 * K, 0], merged
assert merged[2][1] == 3, merged

# REQ_ONE: exactly one extent, starting at the offset asked.
ext.clear()
h.block_status(1024 * K, 128 * K, bs, nbd.CMD_FLAG_REQ_ONE)
assert len(ext) == 1, ext
assert ext[0][1] == 0 and 0 < ext[0][0] <= 64 * K, ext

# Block status of a range in the middle of a hole reports a hole.
ext.clear()
h.block_status(4096, 3 * 1024 * K + 512, bs)
assert ext[0][1] == 3, ext
assert 0 < ext[0][0], ext
PY
stratad_alive
