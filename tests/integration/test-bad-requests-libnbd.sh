#!/bin/bash
# Requests libnbd would refuse to send (set_strict_mode(0)), with
# structured replies: the server itself answers EINVAL for reads, trims
# and block status past the end and ENOSPC for writes past the end,
# and a write of more than the advertised maximum but at most 64 MiB
# is accepted.
source "$(dirname "$0")/functions.sh"
requires nbdsh --version

make_pool
start_stratad "$pool"
strata_cli volume create vol1 --size 96M

nbdsh -c - <<PY
h.add_meta_context(nbd.CONTEXT_BASE_ALLOCATION)
h.connect_uri("$(uri vol1)")
assert h.get_structured_replies_negotiated()
h.set_strict_mode(0)
size = h.get_size()
def err(fn, *args):
    try:
        fn(*args)
    except nbd.Error as e:
        return e.errno
    return None
def expect(want, what, fn, *args):
    got = err(fn, *args)
    assert got in want, "%s: got %s, expected %s" % (what, got, want)

expect(["EINVAL"], "read past the end", h.pread, 4096, size)
expect(["EINVAL"], "read across the end", h.pread, 8192, size - 4096)
expect(["ENOSPC"], "write past the end", h.pwrite, b"x" * 4096, size)
expect(["ENOSPC"], "write across the end", h.pwrite, b"x" * 8192, size - 4096)
expect(["EINVAL", "ENOSPC"], "trim past the end", h.trim, 4096, size)
expect(["ENOSPC", "EINVAL"], "zero past the end", h.zero, 4096, size)
expect(["EINVAL"], "cache past the end", h.cache, 4096, size)
expect(["EINVAL"], "block status past the end", h.block_status, 4096, size,
       lambda *a: 0)
# The connection is fine after all that.
h.pwrite(b"y" * 4096, size - 4096)
assert h.pread(4096, size - 4096) == b"y" * 4096

# Above the advertised 32 MiB, up to 64 MiB: accepted.
M = 1 << 20
assert h.get_block_size(nbd.SIZE_MAXIMUM) == 32 * M, h.get_block_size(nbd.SIZE_MAXIMUM)
big = bytes(range(256)) * (48 * M // 256)
h.pwrite(big, 4096)
assert h.pread(48 * M, 4096) == big, "48 MiB write read back differently"
h.zero(64 * M, 0)
assert h.pread(64 * M, 0) == bytes(64 * M)

# Unaligned (below the 512-byte minimum): done right, or EINVAL.
h.pwrite(b"\x22" * 4096, 80 * M)
e = err(h.pwrite, b"abc", 80 * M + 7)
assert e in (None, "EINVAL"), e
want = bytearray(b"\x22" * 4096)
if e is None:
    want[7:10] = b"abc"
assert h.pread(4096, 80 * M) == bytes(want), "unaligned write damaged its neighbours"
h.flush()
PY
stratad_alive
