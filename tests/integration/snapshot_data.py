#!/usr/bin/python3
"""snapshot_data.py: volume contents and snapshots that can be verified
after the daemon is killed with -9 (test-snapshot-kill9.sh).

    snapshot_data.py fill  STATE SOCKET ADMIN VOLUME --count N
    snapshot_data.py loop  STATE SOCKET ADMIN VOLUME --count N --pid PID
                           [--secs T] [--progress FILE]
    snapshot_data.py create STATE SOCKET ADMIN VOLUME NAME
    snapshot_data.py mark  STATE SOCKET ADMIN VOLUME deleting|deleted NAME...
    snapshot_data.py check STATE SOCKET ADMIN VOLUME [--all] [--quick]

STATE is a JSON file, one per volume, rewritten durably (fsync, rename)
at every step, so that it is true whenever the daemon is killed.

The volume is a sequence of 4 KiB blocks.  Iteration i writes N distinct
blocks, chosen at random, each with image(volume, block, i): a header
(magic, volume, block, iteration) and bytes derived from the three, so a
block that is stale, torn, misplaced or from another volume is
recognised.  Blocks never written read as zeroes.  The writer records
iteration i as issued before it sends a write, and as flushed once its
flush returned; only the one iteration after the last flushed one can
be uncertain.

A snapshot is recorded, before it is asked for, with the last flushed
iteration (it must hold exactly the volume as of that iteration) and the
state "creating"; "there" once `strata snapshot create` succeeded.
Before a delete it becomes "deleting"; once the delete succeeded it is
dropped and its name is remembered as gone.

check lists the volume's snapshots and requires: every "there"
snapshot listed, no gone or unknown one listed; every listed snapshot
holds its content exactly (read in full the first time, and always
with --all; --quick reads nothing); the volume holds the last flushed
iteration's state, each block of an uncertain iteration either its old
or its new image.  It then records what it found: the uncertain
iteration's blocks as they landed, "creating"/"deleting" snapshots as
there or gone.

loop alternates: an iteration of N blocks, then a snapshot named
c<iteration>, until the server goes away (PID, the daemon, is gone:
exit 0) or a request fails while it is still running (exit 1) or
--secs pass.  It writes the number of snapshots it took to --progress.
"""

import argparse
import hashlib
import json
import os
import random
import struct
import subprocess
import sys
import time
import zlib

BS = 4096
MAGIC = b"STRASNAP"
HDR = struct.Struct(">8sIQQ")
ZERO = bytes(BS)
STEP = 8 << 20                          # bytes per read request


def fail(msg):
    print("snapshot_data: FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def vol_id(volume):
    return zlib.crc32(volume.encode())


def image(volume, block, it):
    hdr = HDR.pack(MAGIC, vol_id(volume), block, it)
    seed = hashlib.blake2b(b"%s:%d:%d" % (volume.encode(), block, it),
                           digest_size=64).digest()
    return hdr + (seed * (BS // len(seed)))[:BS - len(hdr)]


def describe(volume, b, blk):
    """What a block that is not what it should be is."""
    if blk == ZERO:
        return "zeroes"
    magic, vid, blkno, it = HDR.unpack_from(blk)
    if magic != MAGIC:
        return "garbage"
    if vid != vol_id(volume):
        return "a block of another volume (block %d, iteration %d)" % (blkno, it)
    if blkno != b:
        return "block %d of iteration %d (misplaced)" % (blkno, it)
    if blk != image(volume, b, it):
        return "a torn image of iteration %d" % it
    return "iteration %d" % it


# ---- state -------------------------------------------------------------

def load(path):
    with open(path) as f:
        return json.load(f)


def save(path, st):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(st, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dfd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def load_or_new(args, h):
    if os.path.exists(args.state):
        return load(args.state)
    size = h.get_size()
    return {"volume": args.volume, "blocks": size // BS, "iters": [],
            "issued": 0, "flushed": 0, "snaps": {}, "gone": []}


def gens_at(st, upto):
    """The iteration of each block's image (0: zeroes) after iteration
    UPTO, which must be certain."""
    g = [0] * st["blocks"]
    for it, blocks in st["iters"]:
        if it > upto:
            break
        for b in blocks:
            g[b] = it
    return g


def connect(sock, export):
    import nbd
    h = nbd.NBD()
    h.set_export_name(export)
    h.connect_unix(sock)
    return h


def uri_export(volume, snap=None):
    return volume if snap is None else "%s@%s" % (volume, snap)


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        # Gone, or reaped between the open and the read (ESRCH).
        return False
    return state not in ("Z", "X")


def strata(admin, *a):
    return subprocess.run(["strata", "--socket", admin] + list(a),
                          capture_output=True, text=True)


# ---- writing -----------------------------------------------------------

def iteration(args, st, h):
    """Write one iteration of args.count blocks and flush it."""
    import nbd
    it = st["issued"] + 1
    rng = random.Random("%s:%d" % (st["volume"], it))
    blocks = sorted(rng.sample(range(st["blocks"]), args.count))
    st["issued"] = it
    st["iters"].append([it, blocks])
    save(args.state, st)
    order = list(blocks)
    rng.shuffle(order)
    cookies = []
    for b in order:
        buf = nbd.Buffer.from_bytearray(bytearray(image(st["volume"], b, it)))
        cookies.append(h.aio_pwrite(buf, b * BS))
        while h.aio_in_flight() >= 64:
            h.poll(-1)
    while h.aio_in_flight() > 0:
        h.poll(-1)
    for c in cookies:
        # Raises if the write failed.
        if not h.aio_command_completed(c):
            raise nbd.Error("write %d did not complete" % c, 0)
    h.flush()
    st["flushed"] = it
    save(args.state, st)
    return it


def take(args, st, name, pid=None):
    """Ask for snapshot NAME; True if it was taken, False if the daemon
    went away."""
    st["snaps"][name] = {"i": st["flushed"], "st": "creating",
                         "verified": False}
    save(args.state, st)
    p = strata(args.admin, "snapshot", "create", st["volume"], name)
    if p.returncode == 0:
        st["snaps"][name]["st"] = "there"
        save(args.state, st)
        return True
    if pid is not None:
        time.sleep(0.3)
        if not alive(pid):
            return False
    fail("strata snapshot create %s %s: status %d: %s"
         % (st["volume"], name, p.returncode, p.stderr.strip()))


def do_fill(args):
    h = connect(args.sock, args.volume)
    st = load_or_new(args, h)
    iteration(args, st, h)
    h.shutdown()


def do_create(args):
    st = load(args.state)
    if len(args.name) != 1:
        fail("create takes one NAME")
    take(args, st, args.name[0])


def do_mark(args):
    st = load(args.state)
    what, names = args.name[0], args.name[1:]
    if what not in ("deleting", "deleted") or not names:
        fail("mark deleting|deleted NAME...")
    for name in names:
        if name not in st["snaps"]:
            fail("no snapshot %s recorded" % name)
        if what == "deleting":
            st["snaps"][name]["st"] = "deleting"
        else:
            del st["snaps"][name]
            st["gone"].append(name)
    save(args.state, st)


def do_loop(args):
    import nbd
    h = connect(args.sock, args.volume)
    st = load_or_new(args, h)
    deadline = time.monotonic() + args.secs
    taken = 0
    try:
        while time.monotonic() < deadline:
            it = iteration(args, st, h)
            if not take(args, st, "c%d" % it, args.pid):
                break
            taken += 1
            if args.progress:
                with open(args.progress + ".tmp", "w") as f:
                    f.write("%d\n" % taken)
                os.replace(args.progress + ".tmp", args.progress)
    except nbd.Error as e:
        if alive(args.pid):
            time.sleep(0.3)
        if alive(args.pid):
            fail("a request failed while the daemon runs: %s" % e)
    print("snapshot_data: loop on %s: %d snapshots, %d iterations"
          % (args.volume, taken, st["flushed"]))


# ---- checking ----------------------------------------------------------

def read_all(h, size):
    out = bytearray()
    for off in range(0, size, STEP):
        out += h.pread(min(STEP, size - off), off)
    return bytes(out)


def verify(st, what, data, must, later=None):
    """DATA must hold image(it) of each block with MUST[b] (0: zeroes),
    or with LATER's iteration for a block in it.  Returns the iteration
    seen in each block."""
    vol = st["volume"]
    bad = []
    seen = list(must)
    later_it, later_blocks = later if later else (None, ())
    later_set = set(later_blocks)
    for b in range(st["blocks"]):
        blk = data[b * BS:(b + 1) * BS]
        want = image(vol, b, must[b]) if must[b] else ZERO
        if blk == want:
            continue
        if b in later_set and blk == image(vol, b, later_it):
            seen[b] = later_it
            continue
        bad.append("block %d holds %s, expected %s" % (
            b, describe(vol, b, blk),
            "iteration %d" % must[b] if must[b] else "zeroes"))
    if bad:
        for m in bad[:10]:
            print("snapshot_data: %s: %s" % (what, m), file=sys.stderr)
        fail("%s: %d of %d blocks are wrong" % (what, len(bad), st["blocks"]))
    return seen


def do_check(args):
    st = load(args.state)
    vol = st["volume"]
    p = strata(args.admin, "snapshot", "list", vol, "--json")
    if p.returncode != 0:
        fail("strata snapshot list %s: %s" % (vol, p.stderr.strip()))
    listed = {}
    for s in json.loads(p.stdout)["snapshots"]:
        if s["volume"] != vol:
            fail("snapshot list %s shows %s" % (vol, s["full_name"]))
        listed[s["name"]] = s
    for name in listed:
        if name in st["gone"]:
            fail("snapshot %s@%s was deleted (or never taken) but is listed"
                 % (vol, name))
        if name not in st["snaps"]:
            fail("snapshot %s@%s is listed but was never asked for"
                 % (vol, name))
    for name, s in st["snaps"].items():
        if s["st"] == "there" and name not in listed:
            fail("snapshot %s@%s was taken (acknowledged) but is not listed"
                 % (vol, name))

    # The volume.
    if not args.quick:
        if st["issued"] > st["flushed"] + 1:
            fail("state: issued %d, flushed %d" % (st["issued"], st["flushed"]))
        must = gens_at(st, st["flushed"])
        later = None
        if st["issued"] == st["flushed"] + 1:
            later = tuple(st["iters"][-1])
        h = connect(args.sock, vol)
        if h.get_size() != st["blocks"] * BS:
            fail("volume %s has size %d, not %d" % (vol, h.get_size(),
                                                     st["blocks"] * BS))
        seen = verify(st, "volume %s" % vol,
                      read_all(h, st["blocks"] * BS), must, later)
        h.shutdown()
        if later:
            it = later[0]
            st["iters"][-1] = [it, [b for b in later[1] if seen[b] == it]]
            st["flushed"] = it
    elif st["issued"] != st["flushed"]:
        fail("--quick, but iteration %d is uncertain" % st["issued"])

    # The snapshots.
    verified = 0
    for name in list(st["snaps"]):
        s = st["snaps"][name]
        if name not in listed:
            # It was being taken or deleted: it is not there, and must not
            # come back.
            del st["snaps"][name]
            st["gone"].append(name)
            continue
        info = listed[name]
        if info["size"] != st["blocks"] * BS:
            fail("snapshot %s@%s has size %d, not %d"
                 % (vol, name, info["size"], st["blocks"] * BS))
        if not args.quick and (args.all or s["st"] != "there" or
                               not s["verified"]):
            h = connect(args.sock, uri_export(vol, name))
            if not h.is_read_only():
                fail("snapshot %s@%s is exported writable" % (vol, name))
            verify(st, "snapshot %s@%s (iteration %d)" % (vol, name, s["i"]),
                   read_all(h, st["blocks"] * BS), gens_at(st, s["i"]))
            h.shutdown()
            s["verified"] = True
            verified += 1
        s["st"] = "there"
    save(args.state, st)
    print("snapshot_data: %s: iteration %d, %d snapshots (%d read in full)"
          % (vol, st["flushed"], len(st["snaps"]), verified))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["fill", "loop", "create", "mark", "check"])
    p.add_argument("state")
    p.add_argument("sock")
    p.add_argument("admin")
    p.add_argument("volume")
    p.add_argument("name", nargs="*")
    p.add_argument("--count", type=int, default=16)
    p.add_argument("--pid", type=int)
    p.add_argument("--secs", type=float, default=60)
    p.add_argument("--progress")
    p.add_argument("--all", action="store_true")
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    if args.mode in ("create", "mark") and not args.name:
        p.error("%s needs a snapshot NAME" % args.mode)
    if args.mode == "loop" and args.pid is None:
        p.error("loop needs --pid")
    {"fill": do_fill, "loop": do_loop, "create": do_create, "mark": do_mark,
     "check": do_check}[args.mode](args)


if __name__ == "__main__":
    main()
