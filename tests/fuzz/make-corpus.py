#!/usr/bin/python3
# tests/fuzz/make-corpus.py: write the seed corpus (tests/fuzz/corpus/).
#
# Each seed is a whole client byte stream after the server's greeting,
# as tests/fuzz/fuzz-nbd.c feeds it: client flags, options, then
# requests with their payloads.  Valid sessions on every path the
# server has (old-style EXPORT_NAME, GO, INFO, LIST, meta contexts,
# structured replies, every command and flag, CoW of shared chunks in
# volume "b") and malformed ones (bad magics and flags, truncated and
# oversized options, requests out of range, short payloads).  The
# volumes are those fuzz-nbd.c and replay.sh create: a, b, z (1 MiB).
# Seeds named fault-* end with a fault script for fuzz-nbd.c.
#
# Run it again after changing it; the files are committed.
import os
import struct
import sys

IHAVEOPT = 0x49484156454F5054
REQ_MAGIC = 0x25609513
C_FIXED, C_NOZEROES = 1, 2
OPT_EXPORT_NAME, OPT_ABORT, OPT_LIST, OPT_STARTTLS = 1, 2, 3, 5
OPT_INFO, OPT_GO, OPT_SR, OPT_LIST_META, OPT_SET_META = 6, 7, 8, 9, 10
READ, WRITE, DISC, FLUSH, TRIM, CACHE, ZEROES, BSTATUS = range(8)
FUA, NO_HOLE, DF, REQ_ONE, FAST_ZERO = 1, 2, 4, 8, 16
INFO_NAME, INFO_DESC, INFO_BS = 1, 2, 3
CHUNK = 65536


def flags(f=C_FIXED | C_NOZEROES):
    return struct.pack(">I", f)


def opt(o, data=b"", length=None):
    return struct.pack(">QII", IHAVEOPT, o,
                       len(data) if length is None else length) + data


def info_body(name, reqs=()):
    n = name.encode()
    return (struct.pack(">I", len(n)) + n + struct.pack(">H", len(reqs))
            + b"".join(struct.pack(">H", r) for r in reqs))


def go(name, reqs=()):
    return opt(OPT_GO, info_body(name, reqs))


def meta(o, name, queries):
    n = name.encode()
    q = b"".join(struct.pack(">I", len(x)) + x.encode() for x in queries)
    return opt(o, struct.pack(">I", len(n)) + n
               + struct.pack(">I", len(queries)) + q)


cookie = 0


def req(cmd, off=0, length=0, fl=0, payload=None, magic=REQ_MAGIC):
    global cookie
    cookie += 1
    h = struct.pack(">IHHQQI", magic, fl, cmd, cookie, off, length)
    if cmd == WRITE and payload is None:
        payload = bytes([cookie & 0xff]) * length
    return h + (payload or b"")


# Fault script steps (server/fault.c: fault_script).
OK, EIO, ENOSPC, SHORT, EDQUOT = 0, 4, 5, 6, 7


def faults(*steps):
    return bytes(steps) + bytes([len(steps)]) + b"FLT!"


def session(name, *reqs, structured=False, meta_ctx=False):
    s = flags()
    if structured:
        s += opt(OPT_SR)
    if meta_ctx:
        s += meta(OPT_SET_META, name, ["base:allocation"])
    return s + go(name, (INFO_NAME, INFO_DESC, INFO_BS)) + b"".join(reqs)


seeds = {
    # Valid sessions.
    "go-read-write": session(
        "z", req(WRITE, 0, 4096), req(READ, 0, 8192), req(FLUSH),
        req(DISC)),
    "go-all-commands": session(
        "z", req(WRITE, 4096, 512, FUA), req(WRITE, CHUNK - 512, 1024),
        req(READ, 0, 2 * CHUNK), req(TRIM, 512, CHUNK), req(CACHE, 0, 4096),
        req(ZEROES, 100, 3000), req(ZEROES, CHUNK, CHUNK, NO_HOLE),
        req(ZEROES, 0, 4096, FAST_ZERO), req(FLUSH), req(DISC)),
    "structured-read-holes": session(
        "z", req(WRITE, CHUNK, 4096), req(READ, 0, 4 * CHUNK),
        req(READ, 0, 4 * CHUNK, DF), req(READ, 0, 0),
        structured=True),
    "block-status": session(
        "a", req(BSTATUS, 0, 1 << 20), req(BSTATUS, 4096, 100, REQ_ONE),
        req(TRIM, CHUNK, 3 * CHUNK), req(BSTATUS, 0, 1 << 20),
        structured=True, meta_ctx=True),
    "cow-partial": session(
        "b", req(WRITE, 100, 200), req(WRITE, CHUNK - 10, 20, FUA),
        req(WRITE, 2 * CHUNK, CHUNK), req(TRIM, 3 * CHUNK + 7, 9000),
        req(ZEROES, 5 * CHUNK + 1, 50), req(READ, 0, 6 * CHUNK),
        req(FLUSH)),
    "export-name": flags(C_FIXED) + opt(OPT_EXPORT_NAME, b"a")
    + req(READ, 0, 4096) + req(DISC),
    "list-info-abort": flags() + opt(OPT_LIST) + opt(OPT_INFO, info_body("a"))
    + opt(OPT_INFO, info_body("nosuch")) + opt(OPT_STARTTLS)
    + opt(OPT_SR) + meta(OPT_LIST_META, "a", [])
    + meta(OPT_LIST_META, "a", ["base:"]) + opt(OPT_ABORT),
    "meta-other-export": flags() + opt(OPT_SR)
    + meta(OPT_SET_META, "a", ["base:allocation", "qemu:dirty"])
    + go("z") + req(BSTATUS, 0, 4096),
    "big-write-split": session(
        "z", req(WRITE, 0, 200000), req(READ, 0, 200000, 0)),
    # Malformed.
    "bad-client-flags": flags(0xffffffff) + go("a"),
    "bad-opt-magic": flags() + struct.pack(">QII", 0x1122334455667788, 7, 0),
    "opt-too-big": flags() + opt(OPT_GO, b"", 0x7fffffff),
    "export-name-too-big": flags() + opt(OPT_EXPORT_NAME, b"", 1 << 20),
    "go-truncated-body": flags() + opt(OPT_GO, struct.pack(">I", 99) + b"a"),
    "go-bad-nreqs": flags() + opt(OPT_GO, struct.pack(">I", 1) + b"a"
                                  + struct.pack(">H", 0xffff)),
    "go-name-with-nul": flags() + go("a\0b"),
    "meta-bad-lengths": flags() + opt(OPT_SR)
    + opt(OPT_SET_META, struct.pack(">II", 1, 0xffffffff) + b"a")
    + opt(OPT_LIST_META, struct.pack(">I", 0xfffffff0) + b"x" * 8),
    "meta-without-sr": flags() + meta(OPT_SET_META, "a", ["base:allocation"]),
    "unknown-option": flags() + opt(999, b"xyz") + opt(OPT_LIST, b"data"),
    "sr-with-data": flags() + opt(OPT_SR, b"x") + go("a"),
    "bad-request-magic": session("z", req(READ, 0, 512, magic=0xdeadbeef)),
    "requests-out-of-range": session(
        "z", req(READ, 1 << 20, 1), req(READ, (1 << 64) - 512, 1024),
        req(WRITE, (1 << 20) - 100, 200), req(TRIM, 0, 0xffffffff),
        req(ZEROES, 1 << 62, 1), req(FLUSH, 1, 1), req(99, 0, 0),
        req(READ, 0, 4096, 0xffff), req(BSTATUS, 0, 4096),
        req(READ, 0, 0xffffffff), req(DISC)),
    "write-huge-length": session("z", req(WRITE, 0, 0x7fffffff, payload=b"")),
    "write-short-payload": session("z", req(WRITE, 0, 65536,
                                            payload=b"x" * 1000)),
    "write-error-payload-skipped": session(
        "z", req(WRITE, 1 << 20, 4096), req(WRITE, 0, 4096, 0x80),
        req(READ, 0, 4096)),
    "disc-then-more": session("z", req(DISC), req(READ, 0, 4096)),
    "export-name-unknown": flags() + opt(OPT_EXPORT_NAME, b"nosuch"),
    "many-options": flags() + b"".join(opt(OPT_LIST) for _ in range(200)),
    # Snapshots: a@s is a snapshot of a (read-only export), and every
    # export of a lists strata:changed:s.
    "snapshot-changed-blocks": flags() + opt(OPT_SR)
    + meta(OPT_LIST_META, "a", ["strata:"])
    + meta(OPT_SET_META, "a", ["base:allocation", "strata:changed:s",
                               "strata:changed:a@s"])
    + go("a") + req(WRITE, CHUNK + 100, 4096) + req(TRIM, 4 * CHUNK, CHUNK)
    + req(BSTATUS, 0, 1 << 20) + req(BSTATUS, 0, 1 << 20, REQ_ONE)
    + req(DISC),
    "snapshot-read-only": session(
        "a@s", req(READ, 0, 4096), req(WRITE, 0, 512), req(TRIM, 0, CHUNK),
        req(ZEROES, 0, 4096), req(FLUSH), req(READ, 0, 4096), req(DISC)),
    "snapshot-meta-bad": flags() + opt(OPT_SR)
    + meta(OPT_SET_META, "a@s", ["strata:changed:s", "strata:changed:",
                                 "strata:changed:nosuch", "strata:changed:@",
                                 "strata:changed:b@s"])
    + go("a@s") + req(BSTATUS, 0, 4096) + req(DISC),
    # Sequential READs (read-ahead), with a write and a jump in the
    # middle, then a stream left with read-aheads pending at DISC.
    "sequential-read-ahead": session(
        "a", *[req(READ, i * CHUNK, CHUNK) for i in range(6)],
        req(WRITE, 9 * CHUNK, 4096),
        *[req(READ, i * CHUNK, CHUNK) for i in range(6, 12)],
        req(READ, 0, CHUNK, DF), req(READ, CHUNK, CHUNK),
        *[req(READ, i * CHUNK, CHUNK) for i in range(2, 8)],
        req(DISC), structured=True),
    # Regression: a connection closed (bad magic) with read-aheads of
    # holes already done was freed while queued on the dirty list.
    "read-ahead-then-bad-magic": session(
        "z", *[req(READ, i * CHUNK, CHUNK) for i in range(4)],
        req(READ, 0, 4096, magic=0x12345678)),
    "sequential-read-ahead-snapshot": session(
        "a@s", *[req(READ, i * 2 * CHUNK, 2 * CHUNK) for i in range(8)]),
    # Faults (a script trailer, see fuzz-nbd.c): each byte decides the
    # fate of the session's next data read or write.
    "fault-read-eio": session(
        "a", req(READ, 0, 4096), req(READ, 0, 2 * CHUNK), req(READ, 0, 512),
        req(DISC), structured=True) + faults(EIO, OK, EIO, EIO),
    "fault-read-eio-simple": session(
        "a", req(READ, 0, 2 * CHUNK), req(READ, CHUNK, 4096), req(DISC))
    + faults(OK, EIO, EIO),
    "fault-writes": session(
        "z", req(WRITE, 0, 8192), req(WRITE, CHUNK, CHUNK),
        req(WRITE, 3 * CHUNK, 4096, FUA), req(WRITE, 5 * CHUNK - 100, 200),
        req(READ, 0, 6 * CHUNK), req(FLUSH), req(DISC))
    + faults(SHORT, ENOSPC, OK, SHORT, EDQUOT, SHORT, SHORT, EIO),
    "fault-cow": session(
        "b", req(WRITE, 100, 200), req(WRITE, 2 * CHUNK, 4096),
        req(WRITE, 4 * CHUNK + 10, 20), req(READ, 0, 5 * CHUNK), req(DISC))
    + faults(EIO, OK, OK, EIO, OK, SHORT, EIO),
    "fault-zeroes-trim": session(
        "a", req(ZEROES, 100, 3000), req(TRIM, 512, CHUNK),
        req(ZEROES, CHUNK, CHUNK, NO_HOLE), req(ZEROES, 3 * CHUNK + 1, 10),
        req(DISC)) + faults(EIO, ENOSPC, SHORT, OK, EDQUOT, EIO),
    "fault-read-ahead": session(
        "a", *[req(READ, i * CHUNK, CHUNK) for i in range(14)], req(DISC),
        structured=True)
    + faults(OK, OK, OK, EIO, OK, EIO, OK, OK, EIO, EIO, EIO, OK, EIO),
    "fault-read-ahead-then-eof": session(
        "a", *[req(READ, i * CHUNK, CHUNK) for i in range(5)])
    + faults(OK, OK, OK, OK, EIO, EIO, EIO, EIO, EIO, EIO),
}


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
    os.makedirs(out, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    print(f"{len(seeds)} seeds in {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
