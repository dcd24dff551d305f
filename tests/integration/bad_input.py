#!/usr/bin/python3
"""bad_input.py: malformed NBD input, sent raw over the Unix socket
(DESIGN invariant 6: an NBD error or a closed connection, never a crash,
and nothing else is disturbed).

    bad_input.py handshake SOCKET EXPORT PID
    bad_input.py requests  SOCKET EXPORT PID

EXPORT must be a volume of at least 128 MiB.  PID is the daemon's.
Throughout, a well-behaved libnbd client ("the bystander") stays
connected to EXPORT; after every case it writes and reads back a block,
and the daemon must still be running.
"""

import os
import socket
import struct
import sys
import time

import nbd
from strata_test import *          # noqa: F401,F403  (protocol constants)

MiB = 1 << 20


class Bystander:
    def __init__(self, sock, export):
        self.h = nbd.NBD()
        self.h.set_export_name(export)
        self.h.connect_unix(sock)
        self.n = 0

    def check(self, after):
        self.n += 1
        data = os.urandom(4096)
        off = 100 * MiB + (self.n % 256) * 4096
        try:
            self.h.pwrite(data, off)
            got = self.h.pread(4096, off)
        except nbd.Error as e:
            fail("after %s: the bystander client failed: %s" % (after, e))
        if got != data:
            fail("after %s: the bystander read back different data" % after)


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        # Gone, or reaped between the open and the read (ESRCH).
        return False
    return state not in ("Z", "X")


class CaseFailed(Exception):
    pass


def fail(msg):
    raise CaseFailed(msg)


import strata_test                  # noqa: E402
strata_test.fail = fail             # protocol errors fail the case only


class Runner:
    """Runs every case even when one fails, so one run reports all the
    problems; stops at once if the daemon dies."""

    def __init__(self, sock, export, pid):
        self.sock, self.export, self.pid = sock, export, pid
        self.by = Bystander(sock, export)
        self.ncases = 0
        self.failed = []

    def case(self, name, fn):
        self.ncases += 1
        print("case: %s" % name, flush=True)
        try:
            fn()
        except CaseFailed as e:
            print("FAIL: %s: %s" % (name, e), flush=True)
            self.failed.append(name)
        except (OSError, nbd.Error) as e:
            print("FAIL: %s: unexpected %r" % (name, e), flush=True)
            self.failed.append(name)
        if not alive(self.pid):
            print("FAIL: stratad died after: %s" % name, flush=True)
            sys.exit(1)
        try:
            self.by.check(name)
        except CaseFailed as e:
            print("FAIL: %s" % e, flush=True)
            sys.exit(1)

    def raw(self):
        return Raw(self.sock)

    def go(self):
        r, size, flags = connect_raw(self.sock, self.export)
        return r, size


# ---- handshake ----------------------------------------------------------

def handshake_cases(R):
    exp = R.export

    def usable(r, what):
        """After an error reply the connection must still work: list,
        then go, then a read."""
        names = r.list()
        if exp not in names:
            fail("%s: OPT_LIST after the error does not list %s: %r"
                 % (what, exp, names))
        res = r.go(exp)
        if isinstance(res, int):
            fail("%s: OPT_GO after the error failed: %#x" % (what, res))
        r.request(CMD_READ, 0, 4096, 77)
        err, handle, _ = r.simple_reply(4096)
        if err != 0 or handle != 77:
            fail("%s: read after the error: error %d handle %d"
                 % (what, err, handle))
        r.request(CMD_DISC, 0, 0, 78)
        r.close()

    def expect_error(r, what, want=None):
        try:
            opt, rtype, data = r.reply()
        except Closed:
            fail("%s: the server closed the connection instead of "
                 "replying with an error" % what)
        if not rtype & REP_ERR:
            fail("%s: expected an error reply, got type %#x" % (what, rtype))
        if want is not None and rtype not in want:
            fail("%s: error reply %#x, expected one of %s"
                 % (what, rtype, [hex(w) for w in want]))
        return rtype

    def error_or_close(r, what):
        """Either an error reply followed by nothing bad, or a close."""
        try:
            opt, rtype, data = r.reply()
        except (Closed, socket.timeout):
            return
        if not rtype & REP_ERR:
            fail("%s: expected an error or a close, got reply type %#x"
                 % (what, rtype))

    def connect_close():
        r = R.raw()
        r.close()
    R.case("connect and close at once", connect_close)

    def half_flags():
        r = R.raw()
        r.greeting()
        r.send(b"\x00\x00")
        r.close()
    R.case("half of the client flags, then close", half_flags)

    def bad_flags():
        r = R.raw()
        r.greeting()
        r.client_flags(0x80000000 | FLAG_FIXED_NEWSTYLE)
        r.expect_closed("unknown client flags")
    R.case("unknown client flags", bad_flags)

    def option_before_flags():
        r = R.raw()
        r.greeting()
        r.option(OPT_LIST)          # 'IHAV' read as client flags
        r.expect_closed("an option sent before the client flags")
    R.case("option before the client flags", option_before_flags)

    def wrong_magic():
        r = R.raw()
        r.start()
        r.option(OPT_LIST, magic=0x1122334455667788)
        r.expect_closed("an option with the wrong magic")
    R.case("option with the wrong magic", wrong_magic)

    def truncated_eof():
        r = R.raw()
        r.start()
        r.send(struct.pack(">QII", IHAVEOPT, OPT_GO, 100) + b"\0" * 10)
        r.s.shutdown(socket.SHUT_WR)
        r.expect_closed("a truncated option followed by EOF")
    R.case("truncated option, then EOF", truncated_eof)

    def truncated_header():
        r = R.raw()
        r.start()
        r.send(struct.pack(">QI", IHAVEOPT, OPT_GO))
        r.s.shutdown(socket.SHUT_WR)
        r.expect_closed("a truncated option header followed by EOF")
    R.case("truncated option header, then EOF", truncated_header)

    def huge_go():
        r = R.raw()
        r.start()
        r.send(struct.pack(">QII", IHAVEOPT, OPT_GO, 0xFFFFFFF0) + b"\0" * 64)
        error_or_close(r, "OPT_GO with length 0xFFFFFFF0")
        r.close()
    R.case("OPT_GO with a 4 GiB option length", huge_go)

    def huge_unknown():
        r = R.raw()
        r.start()
        r.send(struct.pack(">QII", IHAVEOPT, 99, 0x7FFFFFFF))
        error_or_close(r, "unknown option with length 2 GiB")
        r.close()
    R.case("unknown option with a 2 GiB length", huge_unknown)

    def unknown_option():
        r = R.raw()
        r.start()
        r.option(99)
        expect_error(r, "unknown option 99", [REP_ERR_UNSUP])
        r.option(0x7FFFFFFF, b"some data")
        expect_error(r, "unknown option 0x7fffffff", [REP_ERR_UNSUP])
        usable(r, "unknown option")
    R.case("unknown option, then a normal handshake", unknown_option)

    def go_bad_lengths():
        r = R.raw()
        r.start()
        n = exp.encode()
        # Name length larger than the option.
        r.option(OPT_GO, struct.pack(">I", 1000) + n + struct.pack(">H", 0))
        expect_error(r, "OPT_GO with a name longer than the option",
                     [REP_ERR_INVALID])
        # Info request count larger than the option.
        r.option(OPT_GO, struct.pack(">I", len(n)) + n + struct.pack(">H", 5))
        expect_error(r, "OPT_GO with too many info requests",
                     [REP_ERR_INVALID])
        # Option shorter than its fixed part.
        r.option(OPT_GO, b"\0\0")
        expect_error(r, "OPT_GO of 2 bytes", [REP_ERR_INVALID])
        # Trailing garbage after the info requests.
        r.option(OPT_INFO, struct.pack(">I", len(n)) + n + struct.pack(">H", 0)
                 + b"xyz")
        expect_error(r, "OPT_INFO with trailing bytes", [REP_ERR_INVALID])
        usable(r, "OPT_GO with bad lengths")
    R.case("OPT_GO/OPT_INFO with inconsistent lengths", go_bad_lengths)

    def go_unknown_export():
        r = R.raw()
        r.start()
        res = r.go("no-such-volume")
        if res != REP_ERR_UNKNOWN:
            fail("OPT_GO for an unknown export: got %r, expected "
                 "NBD_REP_ERR_UNKNOWN" % (res,))
        res = r.go("bad/name@@" + "x" * 300)
        if not isinstance(res, int) or not res & REP_ERR:
            fail("OPT_GO for an invalid name succeeded")
        usable(r, "OPT_GO for an unknown export")
    R.case("OPT_GO for an unknown export", go_unknown_export)

    def export_name_unknown():
        r = R.raw()
        r.start()
        n = b"no-such-volume"
        r.option(OPT_EXPORT_NAME, n)
        r.expect_closed("OPT_EXPORT_NAME for an unknown export")
    R.case("OPT_EXPORT_NAME for an unknown export", export_name_unknown)

    def list_with_data():
        r = R.raw()
        r.start()
        r.option(OPT_LIST, b"junk")
        expect_error(r, "OPT_LIST with data", [REP_ERR_INVALID])
        r.option(OPT_STRUCTURED_REPLY, b"junk")
        expect_error(r, "OPT_STRUCTURED_REPLY with data", [REP_ERR_INVALID])
        usable(r, "OPT_LIST with data")
    R.case("OPT_LIST and OPT_STRUCTURED_REPLY with data", list_with_data)

    def starttls():
        r = R.raw()
        r.start()
        r.option(OPT_STARTTLS)
        expect_error(r, "OPT_STARTTLS without TLS configured")
        usable(r, "OPT_STARTTLS")
    R.case("OPT_STARTTLS on a server without TLS", starttls)

    def many_options():
        r = R.raw()
        r.start()
        # Pipelined: a server that caps the number of options may close.
        try:
            r.send(struct.pack(">QII", IHAVEOPT, 99, 0) * 10000)
            for _ in range(10000):
                opt, rtype, data = r.reply()
                if rtype != REP_ERR_UNSUP:
                    fail("option flood: reply type %#x" % rtype)
        except (Closed, BrokenPipeError, ConnectionResetError):
            pass
        r.close()
    R.case("10000 unknown options pipelined", many_options)

    def abort():
        r = R.raw()
        r.start()
        r.option(OPT_ABORT)
        try:
            opt, rtype, data = r.reply()
            if rtype != REP_ACK:
                fail("OPT_ABORT: reply type %#x" % rtype)
        except Closed:
            pass
        r.expect_closed("OPT_ABORT")
    R.case("OPT_ABORT", abort)

    def stall():
        # A client that sends half an option and then nothing: others
        # are served meanwhile (checked by the bystander after the case).
        r = R.raw()
        r.start()
        r.send(struct.pack(">QII", IHAVEOPT, OPT_GO, 100) + b"\0" * 10)
        R.by.check("a stalled handshake (while it is stalled)")
        r.close()
    R.case("stalled option", stall)


# ---- transmission --------------------------------------------------------

def expect_reply(r, handle, want_errs, what, read_len=0):
    """WANT_ERRS: the NBD errors allowed (0 = success), or None: any."""
    try:
        err, h, data = r.simple_reply(read_len)
    except Closed:
        fail("%s: the server closed the connection instead of replying"
             % what)
    if h != handle:
        fail("%s: reply for handle %d, expected %d" % (what, h, handle))
    if want_errs is not None and err not in want_errs:
        fail("%s: error %d, expected one of %s" % (what, err, want_errs))
    return err, data


def still_usable(r, what):
    r.request(CMD_READ, 4096, 4096, 999)
    expect_reply(r, 999, [0], "a read after " + what, 4096)


def reply_or_close(r, handle, want_errs, what, read_len=0):
    """An error reply from WANT_ERRS (then the connection must still
    work), or the connection closed; not silence."""
    try:
        err, h, data = r.simple_reply(read_len)
    except Closed:
        return None
    except socket.timeout:
        fail("%s: no reply and no close within %.0fs" % (what, TIMEOUT))
    if h != handle or err not in want_errs:
        fail("%s: reply handle %d error %d, expected handle %d and one of %s"
             % (what, h, err, handle, want_errs))
    still_usable(r, what)
    return err


def request_cases(R):
    def unknown_command():
        r, size = R.go()
        r.request(99, 0, 4096, 1)
        expect_reply(r, 1, [NBD_EINVAL], "unknown command 99")
        r.request(0xFFFF, 0, 0, 2)
        expect_reply(r, 2, [NBD_EINVAL], "unknown command 0xffff")
        still_usable(r, "unknown commands")
        r.close()
    R.case("unknown command types", unknown_command)

    def unknown_flags():
        r, size = R.go()
        r.request(CMD_READ, 0, 4096, 3, flags=0x4000)
        expect_reply(r, 3, [NBD_EINVAL], "read with unknown flag 0x4000")
        r.request(CMD_FLUSH, 0, 0, 4, flags=0x8000)
        expect_reply(r, 4, [NBD_EINVAL], "flush with unknown flag 0x8000")
        # DF without structured replies, REQ_ONE on a read: flags that
        # do not apply to the command.
        r.request(CMD_WRITE, 0, 4096, 5, flags=1 << 2, data=b"\0" * 4096)
        expect_reply(r, 5, [0, NBD_EINVAL], "write with DF")
        still_usable(r, "unknown flags")
        r.close()
    R.case("unknown command flags", unknown_flags)

    def past_end():
        r, size = R.go()
        r.request(CMD_READ, size, 4096, 10)
        expect_reply(r, 10, [NBD_EINVAL], "read past the end")
        r.request(CMD_READ, size - 4096, 8192, 11)
        expect_reply(r, 11, [NBD_EINVAL], "read across the end")
        r.request(CMD_WRITE, size - 4096, 8192, 12, data=b"\xee" * 8192)
        expect_reply(r, 12, [NBD_ENOSPC], "write across the end")
        r.request(CMD_WRITE, size, 4096, 13, data=b"\xee" * 4096)
        expect_reply(r, 13, [NBD_ENOSPC], "write past the end")
        r.request(CMD_TRIM, size - 4096, 8192, 14)
        expect_reply(r, 14, [NBD_EINVAL, NBD_ENOSPC], "trim across the end")
        r.request(CMD_WRITE_ZEROES, size, 4096, 15)
        expect_reply(r, 15, [NBD_ENOSPC, NBD_EINVAL], "zero past the end")
        r.request(CMD_CACHE, size, 4096, 16)
        expect_reply(r, 16, [NBD_EINVAL], "cache past the end")
        # 64-bit overflow of offset + length.
        r.request(CMD_READ, (1 << 64) - 4096, 8192, 17)
        expect_reply(r, 17, [NBD_EINVAL], "read where offset+length wraps")
        r.request(CMD_WRITE, (1 << 64) - 4096, 8192, 18, data=b"\xee" * 8192)
        expect_reply(r, 18, [NBD_ENOSPC, NBD_EINVAL],
                     "write where offset+length wraps")
        # The failed write across the end changed nothing before it.
        r.request(CMD_READ, size - 4096, 4096, 19)
        err, data = expect_reply(r, 19, [0], "read of the last block", 4096)
        if data == b"\xee" * 4096:
            fail("a write across the end was partly applied")
        still_usable(r, "requests past the end")
        r.close()
    R.case("requests past the end and wrapping offsets", past_end)

    def unaligned():
        r, size = R.go()
        # Below the minimum block size: an EINVAL, or done right.
        pattern = b"\x11" * 4096
        r.request(CMD_WRITE, 8192, 4096, 20, data=pattern)
        expect_reply(r, 20, [0], "aligned write")
        r.request(CMD_WRITE, 8192 + 1001, 3, 21, data=b"abc")
        err, _ = expect_reply(r, 21, [0, NBD_EINVAL], "unaligned write")
        r.request(CMD_READ, 8192, 4096, 22)
        _, data = expect_reply(r, 22, [0], "read after unaligned write", 4096)
        want = bytearray(pattern)
        if err == 0:
            want[1001:1004] = b"abc"
        if data != bytes(want):
            fail("unaligned write of 3 bytes at +1001: wrong data around it")
        r.request(CMD_READ, 8192 + 1001, 3, 23)
        err2, data = expect_reply(r, 23, [0, NBD_EINVAL], "unaligned read", 3)
        if err2 == 0 and data != bytes(want[1001:1004]):
            fail("unaligned read returned wrong data")
        still_usable(r, "unaligned requests")
        r.close()
    R.case("unaligned requests", unaligned)

    def zero_length():
        # The spec leaves the result open: any reply, but a reply, and
        # the connection goes on.
        r, size = R.go()
        r.request(CMD_READ, 0, 0, 30)
        expect_reply(r, 30, None, "zero-length read")
        r.request(CMD_WRITE, 0, 0, 31)
        expect_reply(r, 31, None, "zero-length write")
        r.request(CMD_TRIM, 0, 0, 32)
        expect_reply(r, 32, None, "zero-length trim")
        still_usable(r, "zero-length requests")
        r.close()
    R.case("zero-length requests", zero_length)

    def big_accepted():
        # 32 MiB is advertised as the maximum; 64 MiB is accepted.
        r, size = R.go()
        data = os.urandom(1024) * (64 * 1024)       # 64 MiB
        r.request(CMD_WRITE, 0, len(data), 40, data=data)
        expect_reply(r, 40, [0], "a 64 MiB write")
        r.request(CMD_READ, 0, len(data), 41)
        _, got = expect_reply(r, 41, [0], "a 64 MiB read", len(data))
        if got != data:
            fail("a 64 MiB write read back differently")
        r.close()
    R.case("64 MiB write and read", big_accepted)

    def too_big():
        r, size = R.go()
        n = 64 * MiB + 4096
        r.request(CMD_READ, 0, n, 42)
        reply_or_close(r, 42, [NBD_EINVAL, NBD_EOVERFLOW, NBD_ENOMEM],
                       "a read of 64 MiB + 4 KiB")
        r.close()
        r, size = R.go()
        try:
            r.request(CMD_WRITE, 0, n, 43, data=b"\x42" * n)
        except (BrokenPipeError, ConnectionResetError):
            r.close()
            return
        reply_or_close(r, 43, [NBD_EINVAL, NBD_EOVERFLOW, NBD_ENOMEM],
                       "a write of 64 MiB + 4 KiB")
        r.close()
        r, size = R.go()
        # A header claiming a 4 GiB write, with no data behind it.
        r.request(CMD_WRITE, 0, 0xFFFFF000, 44)
        try:
            err, h, _ = r.simple_reply()
            if err == 0:
                fail("a 4 GiB write header got success")
        except (Closed, socket.timeout):
            pass
        r.close()
    R.case("requests larger than 64 MiB", too_big)

    def bad_magic():
        r, size = R.go()
        r.send(struct.pack(">IHHQQI", 0xDEADBEEF, 0, CMD_READ, 50, 0, 4096))
        r.expect_closed("a request with the wrong magic")
    R.case("request with the wrong magic", bad_magic)

    def half_header():
        r, size = R.go()
        r.send(struct.pack(">IHH", REQUEST_MAGIC, 0, CMD_READ))
        r.close()
    R.case("half a request header, then close", half_header)

    def mid_write():
        r, size = R.go()
        r.request(CMD_WRITE, 20 * MiB, MiB, 60, data=b"\x33" * (100 * 1024))
        r.close()
    R.case("1 MiB write: header and 100 KiB, then close", mid_write)

    def header_only():
        r, size = R.go()
        r.request(CMD_WRITE, 20 * MiB, MiB, 61)
        r.close()
    R.case("1 MiB write: header only, then close", header_only)

    def mid_write_stall():
        r, size = R.go()
        r.request(CMD_WRITE, 30 * MiB, MiB, 62, data=b"\x33" * 4096)
        R.by.check("a stalled write payload (while it is stalled)")
        r.close()
    R.case("1 MiB write stalled after 4 KiB", mid_write_stall)

    def pipelined_no_read():
        r, size = R.go()
        reqs = b"".join(struct.pack(">IHHQQI", REQUEST_MAGIC, 0, CMD_READ, i,
                                    (i % 1000) * 65536, 65536)
                        for i in range(2000))
        try:
            r.send(reqs)
        except socket.timeout:
            pass                    # the server applies back-pressure
        r.close()
    R.case("2000 pipelined 64K reads, replies never read", pipelined_no_read)

    def after_disc():
        r, size = R.go()
        r.request(CMD_DISC, 0, 0, 70)
        try:
            r.request(CMD_READ, 0, 4096, 71)
        except (BrokenPipeError, ConnectionResetError):
            return
        r.expect_closed("requests after NBD_CMD_DISC")
    R.case("a read after NBD_CMD_DISC", after_disc)

    def flush_with_range():
        r, size = R.go()
        r.request(CMD_FLUSH, 4096, 4096, 80)
        expect_reply(r, 80, [0, NBD_EINVAL], "flush with offset and length")
        still_usable(r, "flush with a range")
        r.close()
    R.case("flush with offset and length", flush_with_range)

    def block_status_no_context():
        r, size = R.go()
        r.request(CMD_BLOCK_STATUS, 0, 4096, 81)
        expect_reply(r, 81, [NBD_EINVAL],
                     "block status without a negotiated meta context")
        still_usable(r, "block status without a context")
        r.close()
    R.case("block status without structured replies", block_status_no_context)


def main():
    mode, sock, export, pid = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    R = Runner(sock, export, pid)
    if mode == "handshake":
        handshake_cases(R)
    else:
        request_cases(R)
    R.by.check("all cases")
    R.by.h.shutdown()
    if R.failed:
        print("FAIL: %d of %d cases failed: %s" % (len(R.failed), R.ncases,
                                                   "; ".join(R.failed)))
        sys.exit(1)
    print("%d cases passed" % R.ncases)


if __name__ == "__main__":
    main()
