#!/usr/bin/python3
"""crash_writer.py: a write load whose every block can be verified after
the server is killed with -9 (DESIGN invariant 1).

    crash_writer.py write URI STATEDIR [--seed S] [--blocks N] [--secs T]
    crash_writer.py check URI STATEDIR [--seed S] [--blocks N]

The volume is N blocks of 4 KiB.  Generation g is a batch of operations
chosen deterministically from (seed, g): a set of distinct blocks, each
written with an image of (block, g), trimmed, or zeroed.  A block image
starts with a header (magic, block, generation) and continues with bytes
derived from (block, generation), so a torn, misplaced or invented block
is recognised.

The writer, for each generation g:
  1. records g in STATEDIR/issued (fsync'ed) BEFORE sending anything;
  2. sends the batch over two connections, many requests in flight;
     every third batch uses FUA on each request instead of a flush;
  3. waits until every request completed, then (non-FUA batches) sends
     FLUSH on one of the two connections only (multi-conn: it must cover
     the other connection's writes too);
  4. only then records g in STATEDIR/flushed (fsync'ed).
It stops when the server goes away (that is the point) or after --secs.

The checker reads every block and requires each to be in a state that
the history allows: the block's state as of the last flushed generation
F, or the result of any operation on it in (F, issued].  States before
F are durable and may not come back; anything else is garbage.  It then
records what it saw in STATEDIR/base, as the known state of every block
up to generation `issued`, so the next cycle continues from it.
"""

import argparse
import hashlib
import json
import os
import random
import struct
import sys
import time

BS = 4096
MAGIC = b"STRATAWR"
HDR = struct.Struct(">8sQQ")
OPS_PER_GEN = 192


def image(block, gen):
    hdr = HDR.pack(MAGIC, block, gen)
    seed = hashlib.blake2b(b"%d:%d" % (block, gen), digest_size=64).digest()
    body = (seed * (BS // len(seed) + 1))[:BS - len(hdr)]
    return hdr + body


def ops_for(seed, gen, nblocks):
    """[(block, kind)] for generation GEN; kind 'w' write, 't' trim,
    'z' write zeroes.  Blocks are distinct within a generation."""
    rng = random.Random(seed * 1000003 + gen)
    blocks = rng.sample(range(nblocks), min(OPS_PER_GEN, nblocks))
    out = []
    for b in blocks:
        r = rng.random()
        out.append((b, "w" if r < 0.8 else "t" if r < 0.9 else "z"))
    return out


def read_int(path, default=0):
    try:
        with open(path) as f:
            return int(f.read().strip() or default)
    except FileNotFoundError:
        return default


def write_durably(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dfd = os.open(os.path.dirname(path) or ".", os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def load_base(statedir, nblocks):
    try:
        with open(os.path.join(statedir, "base")) as f:
            b = json.load(f)
        assert len(b["observed"]) == nblocks
        return b["gen"], b["observed"]
    except FileNotFoundError:
        return 0, [0] * nblocks         # 0: reads as zero


def do_write(args):
    import nbd
    issued_path = os.path.join(args.statedir, "issued")
    flushed_path = os.path.join(args.statedir, "flushed")
    base_gen, _ = load_base(args.statedir, args.blocks)
    g = max(read_int(issued_path), base_gen) + 1
    hs = []
    for _ in range(2):
        h = nbd.NBD()
        h.connect_uri(args.uri)
        if h.get_size() < args.blocks * BS:
            sys.exit("volume is too small")
        if not h.can_multi_conn():
            sys.exit("server does not advertise multi-conn")
        hs.append(h)
    deadline = time.monotonic() + args.secs
    done = 0
    try:
        while time.monotonic() < deadline:
            write_durably(issued_path, "%d\n" % g)
            fua = g % 3 == 0
            flags = nbd.CMD_FLAG_FUA if fua else 0
            cookies = ([], [])
            for i, (b, kind) in enumerate(ops_for(args.seed, g, args.blocks)):
                h = hs[i % 2]
                if kind == "w":
                    c = h.aio_pwrite(
                        nbd.Buffer.from_bytearray(bytearray(image(b, g))),
                        b * BS, flags=flags)
                elif kind == "t":
                    c = h.aio_trim(BS, b * BS, flags=flags)
                else:
                    c = h.aio_zero(BS, b * BS, flags=flags)
                cookies[i % 2].append(c)
            for h, cs in zip(hs, cookies):
                while h.aio_in_flight() > 0:
                    h.poll(-1)
                for c in cs:
                    # Raises if the command failed.
                    if not h.aio_command_completed(c):
                        raise nbd.Error("command %d not complete" % c, 0)
            if not fua:
                hs[g % 2].flush()
            write_durably(flushed_path, "%d\n" % g)
            done += 1
            g += 1
    except nbd.Error as e:
        print("crash_writer: generation %d: server went away (%s); %d "
              "generations completed" % (g, e, done))
        return 0
    print("crash_writer: time is up after %d generations" % done)
    return 0


def do_check(args):
    import nbd
    issued = read_int(os.path.join(args.statedir, "issued"))
    flushed = read_int(os.path.join(args.statedir, "flushed"))
    base_gen, observed = load_base(args.statedir, args.blocks)
    if flushed > issued:
        sys.exit("FAIL: state files: flushed %d > issued %d" % (flushed, issued))
    # State as of the last flushed generation, and what may have come after.
    must = list(observed)               # gen of the image, 0 = zero
    later = [set() for _ in range(args.blocks)]
    for g in range(base_gen + 1, issued + 1):
        for b, kind in ops_for(args.seed, g, args.blocks):
            st = g if kind == "w" else 0
            if g <= flushed:
                must[b] = st
            else:
                later[b].add(st)
    h = nbd.NBD()
    h.connect_uri(args.uri)
    data = b""
    step = 4 * 1024 * 1024
    total = args.blocks * BS
    for off in range(0, total, step):
        data += h.pread(min(step, total - off), off)
    h.shutdown()
    zero = bytes(BS)
    bad = []
    seen = []
    stale = 0
    for b in range(args.blocks):
        blk = data[b * BS:(b + 1) * BS]
        allowed = {must[b]} | later[b]
        if blk == zero:
            st = 0
        else:
            magic, blkno, gen = HDR.unpack_from(blk)
            if magic != MAGIC or blkno != b or blk != image(b, gen):
                bad.append("block %d: garbage (header %r, block %d, gen %d)"
                           % (b, magic, blkno, gen))
                seen.append(must[b])
                continue
            st = gen
        if st not in allowed:
            what = "zero" if st == 0 else "generation %d" % st
            want = sorted(allowed)
            bad.append("block %d: %s, but must be one of %s (last flushed "
                       "generation %d, issued %d)" % (b, what, want, flushed,
                                                      issued))
            if st != 0 and st < must[b] or st == 0:
                stale += 1
        seen.append(st)
    if bad:
        for m in bad[:20]:
            print("FAIL: " + m, file=sys.stderr)
        sys.exit("FAIL: %d of %d blocks are wrong (%d lost flushed data)"
                 % (len(bad), args.blocks, stale))
    write_durably(os.path.join(args.statedir, "base"),
                  json.dumps({"gen": issued, "observed": seen}))
    nonzero = sum(1 for s in seen if s)
    print("crash_writer: %d blocks verified (%d with data), flushed %d, "
          "issued %d" % (args.blocks, nonzero, flushed, issued))
    return 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["write", "check"])
    p.add_argument("uri")
    p.add_argument("statedir")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--blocks", type=int, default=4096)
    p.add_argument("--secs", type=float, default=60)
    args = p.parse_args()
    return do_write(args) if args.mode == "write" else do_check(args)


if __name__ == "__main__":
    sys.exit(main())
