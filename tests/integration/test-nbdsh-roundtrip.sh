#!/bin/bash
# Data round trips through nbdsh: what is written reads back, unwritten
# areas read as zero, FUA writes, flush, trim and write-zeroes (with and
# without NO_HOLE, partial chunks and unaligned edges) do what they say.
source "$(dirname "$0")/functions.sh"
requires nbdsh --version

make_pool
start_stratad "$pool"
strata_cli volume create vol1 --size 16M

nbdsh -u "$(uri vol1)" -c - <<'PY'
import os
M = 1 << 20
size = h.get_size()
assert size == 16 * M, size

# Unwritten areas read as zero, small and large, aligned or not.
assert h.pread(4096, 0) == bytes(4096)
assert h.pread(3 * M, 5 * M + 512) == bytes(3 * M)
assert h.pread(512, size - 512) == bytes(512)

# Round trips at several sizes and alignments, including across chunks.
shadow = bytearray(size)
def w(buf, off, flags=0):
    h.pwrite(buf, off, flags)
    shadow[off:off + len(buf)] = buf
def check(off, n):
    got = h.pread(n, off)
    if got != bytes(shadow[off:off + n]):
        bad = next(i for i in range(n) if got[i] != shadow[off + i])
        raise AssertionError("mismatch at %d (+%d)" % (off + bad, bad))

w(os.urandom(4096), 0)
w(os.urandom(65536), 65536)                 # exactly one chunk
w(os.urandom(199680), 1000 * 512)           # crosses chunks, 512-aligned
w(os.urandom(2 * M), 3 * M + 4096)          # several chunks, unaligned to chunk
w(os.urandom(8192), size - 8192)            # the last bytes
w(os.urandom(4096), 8 * M, nbd.CMD_FLAG_FUA)
for off, n in [(0, 8192), (65536 - 4096, 65536 + 8192), (1000 * 512, 199680),
               (3 * M, 3 * M), (size - 65536, 65536), (8 * M, 4096)]:
    check(off, n)

# Overwrite part of a written chunk: the rest of the chunk is kept.
w(b"\x11" * 4096, 65536 + 8192)
check(65536, 65536)
h.flush()
check(0, size)

# Trim: trimmed whole chunks read as zero; a partly trimmed chunk reads
# either its old data or zero in the trimmed part, never anything else,
# and the untrimmed part is kept.
h.trim(65536, 65536)
shadow[65536:131072] = bytes(65536)
check(65536, 65536)
old = bytes(shadow[3 * M + 4096: 3 * M + 4096 + 4096])
h.trim(4096, 3 * M + 4096)
got = h.pread(4096, 3 * M + 4096)
assert got in (old, bytes(4096)), "partly trimmed range has other data"
shadow[3 * M + 4096: 3 * M + 8192] = got
check(3 * M, 3 * M)

# Write zeroes, with and without NO_HOLE, whole and partial chunks:
# always reads back as zero and leaves the neighbours alone.
h.zero(65536 * 2, 3 * M + 65536)                    # whole chunks
shadow[3 * M + 65536: 3 * M + 3 * 65536] = bytes(131072)
h.zero(1024, 1000 * 512 + 512, nbd.CMD_FLAG_NO_HOLE)  # partial
shadow[1000 * 512 + 512: 1000 * 512 + 1536] = bytes(1024)
h.zero(4096, size - 4096, nbd.CMD_FLAG_FUA)
shadow[size - 4096:] = bytes(4096)
if h.can_fast_zero():
    try:
        h.zero(65536, 4 * M + 65536 * 4, nbd.CMD_FLAG_FAST_ZERO)
        shadow[4 * M + 65536 * 4: 4 * M + 65536 * 5] = bytes(65536)
    except nbd.Error as e:
        assert e.errno == "ENOTSUP", e.errno
check(0, size)

# FUA on trim and flush again; reconnecting shows the same data.
h.trim(65536, 10 * M, nbd.CMD_FLAG_FUA)
h.flush()
h.shutdown()
h2 = nbd.NBD()
h2.connect_uri(h.get_uri())
got = h2.pread(size, 0)
assert got == bytes(shadow), "data differs after reconnecting"
PY
stratad_alive
