#!/usr/bin/python3
"""bench/bench.py: strata side by side with the peers, in one run.

Run it through bench/run.sh, which builds strata first.  Every server
gets a same-size file (or pool) in one scratch directory on one file
system, is prefilled so reads hit written data, and serves it on its own
Unix socket; identical fio --ioengine=nbd jobs then run against each,
alternating servers, repeated --reps times (medians reported), with the
page cache dropped before every job.  The limits run the same jobs:
fio with io_uring straight on a file of the same size (O_DIRECT and
buffered) for the disk, and nbdkit null for the protocol itself.

Printed: one table of IOPS, MiB/s, p50/p99 latency and server CPU per
request for every job and server, the ratio of strata to the best peer
and to the limit; an nbdcopy of the whole export; map memory of a
sequentially written and of a scattered volume; the time to open a pool
with a large map after kill -9.  Raw fio JSON and the table (text and
Markdown) are kept in --out.

Server CPU is utime+stime (plus that of reaped children) of the server
process from /proc/PID/stat, all threads included (io_uring's io-wq
workers are threads of their process), sampled from the end of the
ramp to the end of the job, divided by the requests fio completed.
Client CPU is fio's own usr+sys (fio and libnbd share one thread)
divided by its IOPS: one connection cannot go faster than one request
per that many microseconds, whatever the server does.  The "-2conn" job
runs two fio threads, one connection each; its client CPU is theirs
summed.
"""
import argparse
import json
import os
import signal
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TICK = os.sysconf("SC_CLK_TCK")

JOBS = {
    "randread-qd1": "--rw=randread --bs=4k --iodepth=1",
    "randread-qd32": "--rw=randread --bs=4k --iodepth=32",
    "randwrite-qd32": "--rw=randwrite --bs=4k --iodepth=32",
    # The same total depth over two connections, each with its own fio
    # thread: one fio+libnbd thread tops out near the server's own rate
    # on 4k writes (see "client CPU us/req"), so this row shows what the
    # servers do when the client is not the ceiling.
    "randwrite-qd32-2conn": "--rw=randwrite --bs=4k --iodepth=16 "
                            "--numjobs=2 --group_reporting",
    "randrw-qd32": "--rw=randrw --rwmixread=70 --bs=4k --iodepth=32",
    "seqread-1m-qd8": "--rw=read --bs=1m --iodepth=8",
    "seqwrite-1m-qd8": "--rw=write --bs=1m --iodepth=8",
}
# Jobs run against the servers only: their limits are the single-
# connection rows', and the run must stay within ten minutes.
SERVERS_ONLY = {"randwrite-qd32-2conn"}
PEERS = ["nbdkit", "qemu-nbd-direct", "qemu-nbd", "nbd-server"]
LIMITS = ["raw-direct", "raw-buffered", "nbdkit-null"]
DISK_LIMITS = ["raw-direct", "raw-buffered"]


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def drop_caches():
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
    except OSError:
        pass


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def stat_fields(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except OSError:
        return None
    # fields[0] is field 3 (state): ppid is field 4, utime 14, cstime 17.
    return s[s.rindex(")") + 2:].split()


def proc_cpu(pid):
    """Seconds of CPU of PID and its descendants, all their threads,
    and the children they reaped."""
    f = stat_fields(pid)
    if f is None:
        return None
    total = sum(int(x) for x in f[11:15])
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit() and int(d) != pid:
            g = stat_fields(int(d))
            if g:
                kids.setdefault(int(g[1]), []).append((int(d), g))
    todo = [pid]
    while todo:
        for c, g in kids.get(todo.pop(), []):
            total += sum(int(x) for x in g[11:15])
            todo.append(c)
    return total / TICK


class Server:
    """One NBD server (or raw-file limit) under test."""

    def __init__(self, name, bench):
        self.name, self.b, self.pid, self.proc, self.uri = name, bench, None, None, None
        self.file, self.st = None, None

    def start(self):
        b, d, n = self.b, self.b.files, self.name
        sock = os.path.join(d, n + ".sock")
        if n.startswith("strata"):
            self.st = Strata(b, n)
            self.st.start(fresh=True)
            self.proc = self.st.proc
            self.uri = "nbd+unix:///bench?socket=" + self.st.sock
        elif n.startswith("raw-"):
            self.file = os.path.join(d, "raw.img")
            if not os.path.exists(self.file):
                with open(self.file, "wb") as f:
                    f.truncate(b.size)
            return
        else:
            img = os.path.join(d, n + ".img")
            with open(img, "wb") as f:
                f.truncate(b.size)
            self.file = img
            if n == "nbdkit":
                cmd = ["nbdkit", "--foreground", "--unix", sock, "file", img]
                self.uri = "nbd+unix:///?socket=" + sock
            elif n == "nbdkit-null":
                cmd = ["nbdkit", "--foreground", "--unix", sock, "null",
                       str(b.size)]
                self.uri = "nbd+unix:///?socket=" + sock
            elif n in ("qemu-nbd", "qemu-nbd-direct"):
                cmd = ["qemu-nbd", "--persistent", "--shared=8", "-f", "raw",
                       "-k", sock]
                if n == "qemu-nbd-direct":
                    cmd += ["--cache=none", "--aio=io_uring"]
                cmd.append(img)
                self.uri = "nbd+unix:///?socket=" + sock
            elif n == "nbd-server":
                conf = os.path.join(d, "nbd-server.conf")
                with open(conf, "w") as f:
                    f.write("[generic]\nunixsock = %s\nallowlist = false\n"
                            "[bench]\nexportname = %s\nflush = true\nfua = true\n" % (sock, img))
                pidf = os.path.join(d, "nbd-server.pid")
                # It forks into the background and one child per client;
                # its pid file names the parent, which reaps the children
                # (their CPU is counted, see proc_cpu).  OPT_INFO answers
                # size 0 (BENCHMARKING.md); libnbd's OPT_GO is right.
                run(["nbd-server", "-C", conf, "-p", pidf],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                self.uri = "nbd+unix:///bench?socket=" + sock
                for _ in range(400):
                    try:
                        with open(pidf) as f:
                            self.pid = int(f.read())
                        break
                    except (OSError, ValueError):
                        time.sleep(0.025)
                b.wait_nbd(self.uri, None)
                return
            else:
                raise SystemExit("bench: unknown server " + n)
            self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                         stderr=open(os.path.join(
                                             b.work, n + ".log"), "w"))
            b.wait_nbd(self.uri, self.proc)
        self.pid = self.proc.pid

    def fio_target(self):
        if self.name.startswith("raw-"):
            return ["--ioengine=io_uring", "--filename=" + self.file,
                    "--direct=%d" % (self.name == "raw-direct")]
        return ["--ioengine=nbd", "--uri=" + self.uri]

    def copy_source(self):
        return self.file if self.name.startswith("raw-") else self.uri

    def stop(self):
        if self.proc is None and self.pid:         # nbd-server
            try:
                os.kill(self.pid, signal.SIGTERM)
                for _ in range(100):
                    os.kill(self.pid, 0)
                    time.sleep(0.05)
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.pid = None
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


class Strata:
    """One stratad with its own pool.  "strata" is the build under test;
    "strata-buffered" the same with STRATAD_DATA_IO=buffered (no
    O_DIRECT); "strata-base" the build in --baseline-build."""

    def __init__(self, b, name):
        self.b, self.name, self.proc = b, name, None
        self.build = b.build
        self.env = dict(os.environ)
        if name == "strata-buffered":
            self.env["STRATAD_DATA_IO"] = "buffered"
        elif name == "strata-base":
            if not b.a.baseline_build:
                raise SystemExit("bench: strata-base needs --baseline-build")
            self.build = b.a.baseline_build
        elif name != "strata":
            raise SystemExit("bench: unknown server " + name)
        d = os.path.join(b.files, name)
        os.mkdir(d)
        self.pool = os.path.join(d, "pool")
        self.sock = os.path.join(d, "nbd.sock")
        self.admin = os.path.join(d, "admin.sock")
        self.conf = os.path.join(d, "strata.yaml")
        self.log = os.path.join(b.work, name + ".log")

    def cli(self, *args, json_out=False):
        cmd = [os.path.join(self.build, "strata"), "--socket", self.admin]
        if json_out:
            cmd.append("--json")
        p = run(cmd + list(args), stdout=subprocess.PIPE, text=True)
        return json.loads(p.stdout) if json_out else p.stdout

    def start(self, fresh):
        b = self.b
        if fresh:
            run([os.path.join(self.build, "strata"), "pool", "init",
                 self.pool] + b.a.pool_init, stdout=subprocess.DEVNULL)
            with open(self.conf, "w") as f:
                # A type with no IOPS or throughput budget: the benchmark
                # measures the data path, not the QoS buckets.
                f.write("volume_types:\n  bench: {tier: hot}\n")
        self.proc = subprocess.Popen(
            [os.path.join(self.build, "stratad"), "--foreground",
             "--pool", self.pool, "--unix", self.sock,
             "--admin-socket", self.admin, "--config", self.conf],
            stderr=open(self.log, "a"), env=self.env)
        if fresh:
            for _ in range(400):
                if os.path.exists(self.admin):
                    break
                time.sleep(0.025)
            self.cli("volume", "create", "bench", "--size", str(b.size),
                     "--type", "bench")
            b.wait_nbd("nbd+unix:///bench?socket=" + self.sock, self.proc)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait()


class Bench:
    def __init__(self, a):
        self.a = a
        self.size = parse_size(a.size)
        self.build = os.environ.get("STRATA_BUILD_DIR",
                                    os.path.join(HERE, "build"))
        base = os.environ.get("BENCH_DIR", "/var/tmp")
        self.work = tempfile.mkdtemp(prefix="strata-bench.", dir=base)
        self.files = os.path.join(self.work, "files")
        os.mkdir(self.files)
        self.out = a.out or os.path.join(self.work, "results")
        os.makedirs(self.out, exist_ok=True)
        self.st = None          # the Strata under test, for the map tests
        self.res = {}           # (job, server) -> [summary per rep]
        self.prefilled = set()
        self.notes = []

    def wait_nbd(self, uri, proc, list_exports=False, timeout=60):
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if proc is not None and proc.poll() is not None:
                raise SystemExit("bench: server for %s exited (%d); see %s"
                                 % (uri, proc.returncode, self.work))
            cmd = ["nbdinfo", "--list" if list_exports else "--size", uri]
            if subprocess.run(cmd, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL).returncode == 0:
                return time.monotonic() - t0
            time.sleep(0.01)
        raise SystemExit("bench: %s did not come up" % uri)

    # ---- fio -------------------------------------------------------
    def fio(self, srv, job, rep):
        a = self.a
        f = os.path.join(self.out, "%s.%s.%d.json" % (job, srv.name, rep))
        cmd = (["fio", "--name=" + job, "--size=%d" % self.size,
                # In ms: fio reads a bare "0.5" as 0 seconds.
                "--time_based", "--runtime=%dms" % round(a.runtime * 1000),
                "--ramp_time=%dms" % round(a.ramp * 1000),
                "--output-format=json",
                "--output=" + f] + JOBS[job].split() + srv.fio_target())
        drop_caches()
        load = loadavg()
        p = subprocess.Popen(cmd)
        time.sleep(a.ramp + 0.3)    # ramp plus fio's start-up
        c0 = proc_cpu(srv.pid) if srv.pid else None
        t0 = time.monotonic()
        if p.wait() != 0:
            raise SystemExit("bench: fio failed: " + " ".join(cmd))
        c1 = proc_cpu(srv.pid) if srv.pid else None
        t1 = time.monotonic()
        s = summarise(f, numjobs(job))
        s["load"] = load
        if c0 is not None and c1 is not None:
            # The window runs past fio's measured period by the time
            # fio takes to stop; scale to the measured period.
            reqs = s["iops"] * a.runtime
            frac = min(1.0, a.runtime / max(t1 - t0, 1e-9))
            s["cpu_us"] = (c1 - c0) * frac * 1e6 / reqs if reqs else None
        return s

    def prefill(self, srv):
        # Keyed by what is served: the raw limits share one file, and
        # every strata server (no file of its own) has its own URI.
        key = srv.file or srv.uri
        if srv.name == "nbdkit-null" or key in self.prefilled:
            return
        self.prefilled.add(key)
        run(["fio", "--name=prefill", "--size=%d" % self.size,
             "--rw=write", "--bs=1m", "--iodepth=8", "--output=/dev/null"]
            + srv.fio_target())
        if srv.uri:
            run(["nbdsh", "-u", srv.uri, "-c", "h.can_flush() and h.flush()"])

    def nbdcopy(self, srv, rep):
        drop_caches()
        t0 = time.monotonic()
        run(["nbdcopy", "--no-extents", srv.copy_source(), "null:"])
        return self.size / 2**20 / (time.monotonic() - t0)

    # ---- the large map ---------------------------------------------
    def map_memory(self):
        return self.st.cli("pool", "status", json_out=True)

    def scattered(self):
        """Write N 4 KiB blocks, one per chunk, in a new volume; report
        map memory per extent; kill -9 and time the reopen."""
        n = self.a.extents
        before = self.map_memory()
        chunk = before.get("chunk_size", 65536)
        vsize = n * 2 * chunk   # every other chunk: no two adjacent
        self.st.cli("volume", "create", "scatter", "--size", str(vsize),
                    "--type", "bench")
        uri = "nbd+unix:///scatter?socket=" + self.st.sock
        t0 = time.monotonic()
        run(["fio", "--name=scatter", "--ioengine=nbd", "--uri=" + uri,
             "--size=%d" % vsize, "--io_size=%d" % (n * 4096),
             "--rw=write:%d" % (2 * chunk - 4096),
             "--bs=4k", "--iodepth=32", "--output=/dev/null"])
        run(["nbdsh", "-u", uri, "-c", "h.flush()"])
        wt = time.monotonic() - t0
        after = self.map_memory()
        ext = after["extents"] - before["extents"]
        mem = after["map_memory"] - before["map_memory"]
        r = {"seq_extents": before["extents"],
             "seq_map_memory": before["map_memory"],
             "scatter_writes": n, "scatter_extents": ext,
             "scatter_map_memory": mem,
             "bytes_per_extent": mem / ext if ext else None,
             "scatter_write_s": wt,
             "journal_bytes": after.get("journal_bytes")}
        os.kill(self.st.proc.pid, signal.SIGKILL)
        self.st.proc.wait()
        t0 = time.monotonic()
        self.st.start(fresh=False)
        self.wait_nbd("nbd+unix:///?socket=" + self.st.sock,
                      self.st.proc, list_exports=True, timeout=600)
        r["reopen_s"] = time.monotonic() - t0
        st = self.map_memory()
        r["reopen_extents"] = st["extents"]
        r["recovered"] = st.get("recovered")
        return r


def parse_size(s):
    s = str(s).strip().upper().rstrip("B").rstrip("I")
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    return int(float(s[:-1]) * mult[s[-1]]) if s[-1] in mult else int(s)


def numjobs(job):
    for w in JOBS[job].split():
        if w.startswith("--numjobs="):
            return int(w.split("=", 1)[1])
    return 1


def summarise(path, nj=1):
    with open(path) as f:
        j = json.load(f)["jobs"][0]
    r, w = j["read"], j["write"]
    d = r if r["io_bytes"] >= w["io_bytes"] else w
    pct = d["clat_ns"].get("percentile", {})
    iops = r["iops"] + w["iops"]
    # fio's own CPU (the client: fio and libnbd in one thread), per
    # request: shows when the client, not the server, is the limit.
    # With --group_reporting fio gives the mean over its NJ threads.
    cpu = (j.get("usr_cpu", 0) + j.get("sys_cpu", 0)) / 100 * nj
    return {"iops": iops,
            "mibs": (r["bw_bytes"] + w["bw_bytes"]) / 2**20,
            "p50": pct.get("50.000000", 0) / 1000,
            "p99": pct.get("99.000000", 0) / 1000,
            "client_us": cpu * 1e6 / iops if iops else None}


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(v, kind):
    if v is None:
        return "-"
    if kind == "iops":
        return "%.1fk" % (v / 1000)
    if kind in ("p50", "p99"):
        return "%.0f" % v
    if kind in ("cpu_us", "client_us"):
        return "%.1f" % v
    return "%.0f" % v


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=3)
    # 1.5 s measured after 0.5 s of ramp keeps a full run under ten
    # minutes on two cores.
    ap.add_argument("--runtime", type=float, default=1.5,
                    help="seconds measured per job and server (1.5)")
    ap.add_argument("--ramp", type=float, default=0.5,
                    help="seconds run before measuring (0.5)")
    ap.add_argument("--size", default="2G")
    ap.add_argument("--servers", default=" ".join(["strata"] + PEERS))
    ap.add_argument("--limits", default=" ".join(LIMITS))
    ap.add_argument("--jobs", default=" ".join(JOBS))
    ap.add_argument("--extents", type=int, default=500000,
                    help="scattered 4K writes for the map test (0: skip)")
    ap.add_argument("--no-copy", action="store_true")
    ap.add_argument("--pool-init", default="",
                    help="extra 'strata pool init' arguments")
    ap.add_argument("--baseline-build",
                    help="a build dir of another strata, served as strata-base")
    ap.add_argument("--out")
    a = ap.parse_args()
    a.pool_init = a.pool_init.split()
    b = Bench(a)
    names = a.servers.split() + a.limits.split()
    jobs = a.jobs.split()
    servers = [Server(n, b) for n in names]
    t_start = time.monotonic()
    log("bench: scratch %s, load %.2f" % (b.work, loadavg()))
    try:
        for s in servers:
            s.start()
            b.prefill(s)
        drop_caches()
        for job in jobs:
            for rep in range(a.reps):
                order = servers if rep % 2 == 0 else servers[::-1]
                for s in order:
                    if job in SERVERS_ONLY and s.name in LIMITS:
                        continue
                    r = b.fio(s, job, rep)
                    b.res.setdefault((job, s.name), []).append(r)
                    log("%-16s %-16s rep %d: %8.0f IOPS %7.0f MiB/s p50 %5.0f "
                        "p99 %6.0f cpu/req %s load %.1f" % (
                            job, s.name, rep, r["iops"], r["mibs"], r["p50"],
                            r["p99"], fmt(r.get("cpu_us"), "cpu_us"),
                            r["load"]))
        copies = {}
        if not a.no_copy:
            for rep in range(a.reps):
                for s in servers:
                    copies.setdefault(s.name, []).append(b.nbdcopy(s, rep))
            log("nbdcopy MiB/s:", {k: ["%.0f" % x for x in v]
                                   for k, v in copies.items()})
        mapr = None
        if "strata" in names:
            b.st = [s for s in servers if s.name == "strata"][0].st
            mapr = {"seq": b.map_memory()}
            if a.extents:
                try:
                    mapr = b.scattered()
                except (subprocess.CalledProcessError, KeyError) as e:
                    log("bench: scattered-map test failed: %s" % e)
    finally:
        for s in servers:
            s.stop()
            if getattr(s, "st", None):
                s.st.stop()
        shutil.rmtree(b.files, ignore_errors=True)
    elapsed = time.monotonic() - t_start
    report(a, b, names, jobs, copies, mapr, elapsed)
    # Done: the servers' logs go with the results, and the scratch
    # directory goes (on failure it stays, named in the error).
    if os.path.realpath(b.out) != os.path.join(os.path.realpath(b.work),
                                               "results"):
        for f in os.listdir(b.work):
            if f.endswith(".log"):
                shutil.move(os.path.join(b.work, f), os.path.join(b.out, f))
        shutil.rmtree(b.work, ignore_errors=True)


def report(a, b, names, jobs, copies, mapr, elapsed):
    peers = [n for n in names if n in PEERS]
    disk = [n for n in names if n in DISK_LIMITS]
    head = ("%s, %s, %d cores, kernel %s, %d rep(s) of %gs (+%gs ramp), "
            "%s per server, medians; run took %.0f s" % (
                time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                os.uname().nodename, os.cpu_count(), os.uname().release,
                a.reps, a.runtime, a.ramp, a.size, elapsed))
    cols = names + ["strata/best peer", "strata/disk limit"]
    rows = []
    kinds = [("iops", "IOPS"), ("mibs", "MiB/s"), ("p50", "p50 us"),
             ("p99", "p99 us"), ("cpu_us", "server CPU us/req"),
             ("client_us", "client CPU us/req")]
    for job in jobs:
        for k, label in kinds:
            if job.startswith("seq") and k == "iops":
                continue
            if not job.startswith("seq") and k == "mibs":
                continue
            vals = {n: med([r.get(k) for r in b.res.get((job, n), [])])
                    for n in names}
            row = [job, label] + [fmt(vals[n], k) for n in names]
            lower = k in ("p50", "p99", "cpu_us", "client_us")
            mine = vals.get("strata")
            pv = [vals[n] for n in peers if vals[n]]
            lv = [vals[n] for n in disk if vals[n]]
            best = (min(pv) if lower else max(pv)) if pv else None
            lim = (min(lv) if lower else max(lv)) if lv else None
            for ref in (best, lim):
                if (mine and ref and k != "client_us" and
                        not (k == "cpu_us" and ref is lim)):
                    row.append("%.2fx" % (ref / mine if lower else mine / ref))
                else:
                    row.append("")
            rows.append(row)
    if copies:
        row = ["nbdcopy 2G to null:" if a.size == "2G" else "nbdcopy to null:",
               "MiB/s"]
        vals = {n: med(copies.get(n, [])) for n in names}
        row += [fmt(vals[n], "mibs") for n in names]
        pv = [vals[n] for n in peers if vals[n]]
        lv = [vals[n] for n in disk if vals[n]]
        mine = vals.get("strata")
        row.append("%.2fx" % (mine / max(pv)) if mine and pv else "")
        row.append("%.2fx" % (mine / max(lv)) if mine and lv else "")
        rows.append(row)
    hdr = ["job", "metric"] + cols
    w = [max(len(str(r[i])) for r in rows + [hdr]) for i in range(len(hdr))]
    text = [head, ""]
    text.append("  ".join(h.rjust(w[i]) if i > 1 else h.ljust(w[i])
                          for i, h in enumerate(hdr)))
    for r in rows:
        text.append("  ".join(str(c).rjust(w[i]) if i > 1 else
                              str(c).ljust(w[i]) for i, c in enumerate(r)))
    md = [head, "", "| " + " | ".join(hdr) + " |",
          "|" + "---|" * 2 + "---:|" * (len(hdr) - 2)]
    md += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    extra = []
    if mapr:
        if "scatter_writes" in mapr:
            extra.append(
                "map memory: sequential %s volume: %d extent(s), %d bytes "
                "(pool total); %d scattered 4 KiB writes: %d extents, "
                "%d bytes, %.0f bytes per extent (written in %.1f s)"
                % (a.size, mapr["seq_extents"], mapr["seq_map_memory"],
                   mapr["scatter_writes"], mapr["scatter_extents"],
                   mapr["scatter_map_memory"], mapr["bytes_per_extent"] or 0,
                   mapr["scatter_write_s"]))
            extra.append(
                "open after kill -9 with %d extents (journal %s bytes): "
                "%.2f s until nbdinfo --list answers (recovered: %s)"
                % (mapr["reopen_extents"], mapr["journal_bytes"],
                   mapr["reopen_s"], mapr["recovered"]))
        else:
            st = mapr["seq"]
            extra.append("map memory: sequential volume: %d extent(s), %d "
                         "bytes" % (st["extents"], st["map_memory"]))
    text += [""] + extra
    md += [""] + ["- " + e for e in extra]
    print("\n".join(text))
    print("raw fio JSON and table: " + b.out)
    with open(os.path.join(b.out, "table.txt"), "w") as f:
        f.write("\n".join(text) + "\n")
    with open(os.path.join(b.out, "table.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    with open(os.path.join(b.out, "results.json"), "w") as f:
        json.dump({"head": head, "rows": rows, "header": hdr,
                   "map": mapr, "copies": copies,
                   "runs": {"%s %s" % k: v for k, v in b.res.items()}},
                  f, indent=1)


if __name__ == "__main__":
    main()
