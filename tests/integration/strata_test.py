"""strata_test.py: helpers for the Python parts of the integration tests.

Run with the system python3 (it has the nbd module from python3-libnbd);
functions.sh puts this directory on PYTHONPATH.

Raw NBD protocol helpers speak the fixed-newstyle handshake by hand so a
test can send what libnbd would never send (bad magic, truncated
options, unknown commands).  Numbers are from the NBD protocol spec
(doc/proto.md in NetworkBlockDevice/nbd).
"""

import json
import os
import socket
import struct
import subprocess
import sys
import time

NBDMAGIC = 0x4E42444D41474943
IHAVEOPT = 0x49484156454F5054
REPLY_MAGIC = 0x3E889045565A9
REQUEST_MAGIC = 0x25609513
SIMPLE_REPLY_MAGIC = 0x67446698
STRUCTURED_REPLY_MAGIC = 0x668E33EF

FLAG_FIXED_NEWSTYLE = 1
FLAG_NO_ZEROES = 2

OPT_EXPORT_NAME = 1
OPT_ABORT = 2
OPT_LIST = 3
OPT_STARTTLS = 5
OPT_INFO = 6
OPT_GO = 7
OPT_STRUCTURED_REPLY = 8
OPT_LIST_META_CONTEXT = 9
OPT_SET_META_CONTEXT = 10

REP_ACK = 1
REP_SERVER = 2
REP_INFO = 3
REP_META_CONTEXT = 4
REP_ERR = 1 << 31
REP_ERR_UNSUP = REP_ERR | 1
REP_ERR_POLICY = REP_ERR | 2
REP_ERR_INVALID = REP_ERR | 3
REP_ERR_PLATFORM = REP_ERR | 4
REP_ERR_TLS_REQD = REP_ERR | 5
REP_ERR_UNKNOWN = REP_ERR | 6
REP_ERR_SHUTDOWN = REP_ERR | 7
REP_ERR_BLOCK_SIZE_REQD = REP_ERR | 8
REP_ERR_TOO_BIG = REP_ERR | 9

INFO_EXPORT = 0
INFO_BLOCK_SIZE = 3

CMD_READ = 0
CMD_WRITE = 1
CMD_DISC = 2
CMD_FLUSH = 3
CMD_TRIM = 4
CMD_CACHE = 5
CMD_WRITE_ZEROES = 6
CMD_BLOCK_STATUS = 7

NBD_EPERM = 1
NBD_EIO = 5
NBD_ENOMEM = 12
NBD_EINVAL = 22
NBD_ENOSPC = 28
NBD_EOVERFLOW = 75
NBD_ENOTSUP = 95
NBD_ESHUTDOWN = 108

TIMEOUT = 10.0


class Closed(Exception):
    """The server closed the connection."""


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


class Raw:
    """One raw connection to the server's Unix socket."""

    def __init__(self, path, timeout=TIMEOUT):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(path)

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass

    def send(self, data):
        self.s.sendall(data)

    def recv_exact(self, n):
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while got < n:
            try:
                k = self.s.recv_into(view[got:], n - got)
            except ConnectionResetError:
                raise Closed()
            if k == 0:
                raise Closed()
            got += k
        return bytes(buf)

    def expect_closed(self, what, timeout=TIMEOUT):
        """The server must close the connection within TIMEOUT seconds
        (any bytes it sends first, e.g. an error reply, are ignored)."""
        self.s.settimeout(timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = self.s.recv(65536)
            except ConnectionResetError:
                return
            except socket.timeout:
                break
            if not chunk:
                return
        fail("%s: server did not close the connection within %.0fs"
             % (what, timeout))

    # -- handshake -------------------------------------------------------

    def greeting(self):
        """Read the server's fixed-newstyle greeting; return its flags."""
        magic, opt, flags = struct.unpack(">QQH", self.recv_exact(18))
        if magic != NBDMAGIC or opt != IHAVEOPT:
            fail("bad greeting %x %x" % (magic, opt))
        if not flags & FLAG_FIXED_NEWSTYLE:
            fail("server is not fixed-newstyle (flags %#x)" % flags)
        return flags

    def client_flags(self, flags=FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES):
        self.send(struct.pack(">I", flags))

    def start(self):
        self.greeting()
        self.client_flags()

    def option(self, opt, data=b"", length=None, magic=IHAVEOPT):
        if length is None:
            length = len(data)
        self.send(struct.pack(">QII", magic, opt, length) + data)

    def reply(self):
        """Read one option reply: (opt, type, data)."""
        magic, opt, rtype, length = struct.unpack(">QIII", self.recv_exact(20))
        if magic != REPLY_MAGIC:
            fail("bad option reply magic %#x" % magic)
        if length > 64 * 1024 * 1024:
            fail("option reply length %d is absurd" % length)
        return opt, rtype, self.recv_exact(length)

    def replies_until_final(self):
        """Read replies up to and including the final one (ACK or error)."""
        out = []
        while True:
            r = self.reply()
            out.append(r)
            if r[1] == REP_ACK or r[1] & REP_ERR:
                return out

    def go(self, name, opt=OPT_GO):
        """OPT_GO (or OPT_INFO) for NAME.  Returns (size, flags) on ACK, or
        the error reply type."""
        n = name.encode()
        self.option(opt, struct.pack(">I", len(n)) + n + struct.pack(">H", 0))
        size = tflags = None
        for _opt, rtype, data in self.replies_until_final():
            if rtype == REP_INFO and len(data) >= 2:
                (itype,) = struct.unpack(">H", data[:2])
                if itype == INFO_EXPORT:
                    size, tflags = struct.unpack(">QH", data[2:12])
            elif rtype & REP_ERR:
                return rtype
        return size, tflags

    def list(self):
        self.option(OPT_LIST)
        names = []
        for _opt, rtype, data in self.replies_until_final():
            if rtype == REP_SERVER:
                (n,) = struct.unpack(">I", data[:4])
                names.append(data[4:4 + n].decode())
            elif rtype & REP_ERR:
                fail("OPT_LIST got error %#x" % rtype)
        return names

    # -- transmission (simple replies: no OPT_STRUCTURED_REPLY) ---------

    def request(self, cmd, offset, length, handle, flags=0, data=b""):
        self.send(struct.pack(">IHHQQI", REQUEST_MAGIC, flags, cmd, handle,
                              offset, length) + data)

    def simple_reply(self, read_len=0):
        """Read a simple reply: (error, handle, data).  Data is read only
        when the error is 0 and READ_LEN > 0."""
        magic, err, handle = struct.unpack(">IIQ", self.recv_exact(16))
        if magic != SIMPLE_REPLY_MAGIC:
            fail("expected a simple reply, got magic %#x" % magic)
        data = b""
        if err == 0 and read_len:
            data = self.recv_exact(read_len)
        return err, handle, data


def connect_raw(sock_path, export):
    """A raw connection in transmission phase on EXPORT (simple replies)."""
    r = Raw(sock_path)
    r.start()
    res = r.go(export)
    if isinstance(res, int):
        fail("OPT_GO %s failed: %#x" % (export, res))
    return r, res[0], res[1]


def nbd_handle(uri, **kw):
    import nbd
    h = nbd.NBD()
    for k, v in kw.items():
        getattr(h, "set_" + k)(v)
    h.connect_uri(uri)
    return h


def nbd_errno(fn, *args, **kw):
    """Call FN; return None on success, or the errno name of the
    nbd.Error it raised."""
    import nbd
    try:
        fn(*args, **kw)
    except nbd.Error as e:
        return e.errno or "(none: %s)" % e.string
    return None


def strata_json(admin, *args):
    """Run `strata --socket ADMIN ARGS... --json` and parse its output."""
    p = subprocess.run(["strata", "--socket", admin] + list(args) + ["--json"],
                       capture_output=True, text=True)
    if p.returncode != 0:
        fail("strata %s --json exited %d: %s%s" %
             (" ".join(args), p.returncode, p.stdout, p.stderr))
    try:
        return json.loads(p.stdout)
    except ValueError as e:
        fail("strata %s --json printed invalid JSON (%s): %r" %
             (" ".join(args), e, p.stdout))


def volume_names(listing):
    """Names from `strata volume list --json` (the result object
    {"volumes": [...]}, or a bare list)."""
    vols = listing["volumes"] if isinstance(listing, dict) else listing
    return [v["name"] for v in vols]
