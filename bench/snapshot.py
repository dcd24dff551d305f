#!/usr/bin/python3
"""bench/snapshot.py: what snapshots cost, on a fresh strata pool.

Run it through bench/snapshot.sh, which builds strata first.  One
stratad serves a fresh pool in a scratch directory under $BENCH_DIR
(default /var/tmp, the file system bench/run.sh uses), on Unix sockets
only; it is started and stopped by pid.  Admin requests go straight to
the JSON-lines admin socket POOL/admin.sock (doc/admin-protocol.md), so
the strata CLI is needed only for 'strata pool init'.  Measured:

1. Snapshot create time: the admin round trip of snapshot.create (on an
   open connection, median of --creates taken round robin over the
   volumes), each followed by a snapshot.delete, on volumes of --small
   and --large written sequentially with 1 MiB writes (a map of one
   extent), and on volumes of the same sizes fragmented by 4 KiB writes
   to random distinct chunks, --frag-writes of them on the large one
   and proportionally fewer on the small one (one extent per chunk
   written).  Snapshots share the map, so the large/small ratio should
   be about 1.

2. The first write to a shared chunk: 4 KiB writes in random order,
   one per 64 KiB chunk (the pool's chunk size) over --cow-range of a
   volume written full, right after a snapshot (each write copies its
   chunk), then the same writes, same order, again (the chunks are now
   the volume's own); at QD1 and QD32, --cow-reps times with a new
   snapshot each time.  The offsets are a seeded shuffle replayed from
   an iolog, so both passes hit the same chunks in the same order.

3. Client latency while a large snapshot is deleted: a volume with
   --reap-extents extents (one 4 KiB write at the start of every other
   chunk, as bench.py's scattered-map test), a snapshot of it, and then
   the volume deleted (--reap-setup delete-volume) or rewritten
   (rewrite: every chunk copied, which costs --reap-extents x 64 KiB
   of disk) so that the snapshot alone holds its map.  fio 4k randread
   QD1 runs --reap-runtime seconds on a second volume; --delete-at
   seconds in, the snapshot is deleted, and pool.status is polled
   until the background reclaim is over: its map's nodes freed, then
   its chunks punched and given back.  The same run without the
   delete is the baseline.  Per-I/O latencies (fio lat log, Unix-epoch
   timestamps) in the window from the delete request to the end of the
   reclaim (or of fio, if sooner) are compared with the same window of
   the baseline.
   The reclaim is over when pool.status shows reap_pending and
   pending_chunks at 0 for --settle seconds (polled every --poll s);
   with a daemon whose pool.status lacks reap_pending, at the last
   change of map_memory, used and pending_chunks instead.
   --probe-after s after the delete, a durable admin op (volume.create
   of a 4 KiB volume) and an NBD FLUSH on the read volume are timed,
   both waiting for a pool commit; the baseline does the same.

Latencies are fio's total latency (lat_ns: submission to completion),
not clat: with the nbd engine at QD1 most of a request's time is spent
inside the submission call, so clat alone reads a few microseconds.

Printed: one table (text, and Markdown in --out); raw fio JSON, the
per-I/O latency logs of part 3 (gzip), the iolog of part 2, the
pool.status samples and results.json are kept in --out.
"""
import argparse
import gzip
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(HERE, "bench"))
from bench import drop_caches, loadavg, log, med, parse_size, run  # noqa: E402


def human(n):
    for u, m in (("T", 1 << 40), ("G", 1 << 30), ("M", 1 << 20),
                 ("K", 1 << 10)):
        if n >= m and n % m == 0:
            return "%d%s" % (n // m, u)
    return str(n)


def pct(xs, p):
    """The p-th percentile of sorted XS (nearest rank)."""
    if not xs:
        return None
    k = max(0, min(len(xs) - 1, int(round(p / 100.0 * len(xs) + 0.5)) - 1))
    return xs[k]


class AdminError(Exception):
    pass


class Admin:
    """One connection to stratad's JSON-lines admin socket."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(path)
        self.f = self.s.makefile("rwb")

    def timed(self, op, **args):
        line = (json.dumps({"op": op, "args": args}) + "\n").encode()
        t0 = time.monotonic()
        self.f.write(line)
        self.f.flush()
        reply = self.f.readline()
        dt = time.monotonic() - t0
        if not reply:
            raise AdminError("%s: the daemon closed the admin connection" % op)
        r = json.loads(reply)
        if not r.get("ok"):
            e = r.get("error", {})
            raise AdminError("%s %s: %s %s" % (op, json.dumps(args),
                                              e.get("code"), e.get("message")))
        return r["result"], dt

    def op(self, op, **args):
        return self.timed(op, **args)[0]

    def close(self):
        self.s.close()


class Bench:
    def __init__(self, a):
        self.a = a
        self.build = os.environ.get("STRATA_BUILD_DIR",
                                    os.path.join(HERE, "build"))
        base = os.environ.get("BENCH_DIR", "/var/tmp")
        self.work = tempfile.mkdtemp(prefix="strata-snapbench.", dir=base)
        self.out = a.out or os.path.join(self.work, "results")
        os.makedirs(self.out, exist_ok=True)
        self.pool = os.path.join(self.work, "pool")
        self.sock = os.path.join(self.work, "nbd.sock")
        self.conf = os.path.join(self.work, "strata.yaml")
        self.logf = os.path.join(self.out, "stratad.log")
        self.proc = None
        self.adm = None
        self.chunk = None
        self.notes = []
        self.res = {}

    # ---- the daemon ------------------------------------------------
    def start(self):
        run([os.path.join(self.build, "strata"), "pool", "init", self.pool]
            + self.a.pool_init, stdout=subprocess.DEVNULL)
        with open(self.conf, "w") as f:
            # No IOPS or throughput budget: measure the data path.
            f.write("volume_types:\n  bench: {tier: hot}\n")
        self.proc = subprocess.Popen(
            [os.path.join(self.build, "stratad"), "--foreground",
             "--pool", self.pool, "--unix", self.sock, "--config", self.conf],
            stdout=subprocess.DEVNULL, stderr=open(self.logf, "a"))
        path = os.path.join(self.pool, "admin.sock")
        for _ in range(400):
            if self.proc.poll() is not None:
                raise SystemExit("bench: stratad exited (%d); see %s"
                                 % (self.proc.returncode, self.logf))
            try:
                self.adm = Admin(path)
                st = self.adm.op("pool.status")
                break
            except (OSError, AdminError):
                self.adm = None
                time.sleep(0.025)
        else:
            raise SystemExit("bench: stratad did not come up; see " + self.logf)
        self.chunk = st["chunk_size"]
        return st

    def stop(self):
        if self.adm:
            self.adm.close()
            self.adm = None
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()           # by pid: Popen.terminate
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def alive(self):
        if self.proc.poll() is not None:
            raise SystemExit("bench: stratad exited (%d); see %s"
                             % (self.proc.returncode, self.logf))

    def status(self):
        return self.adm.op("pool.status")

    def quiet(self, hold=0.5, timeout=120):
        """Wait until the pool's counters hold still for HOLD seconds
        (background reclaim and commits done)."""
        keys = ("used", "pending_chunks", "map_memory", "reap_pending")
        t0 = last_t = time.monotonic()
        last = None
        while time.monotonic() - t0 < timeout:
            st = self.status()
            cur = tuple(st.get(k) for k in keys)
            now = time.monotonic()
            if cur != last:
                last, last_t = cur, now
            elif (now - last_t >= hold and not st.get("pending_chunks")
                  and not st.get("reap_pending")):
                return st
            time.sleep(0.02)
        self.notes.append("pool did not go quiet within %d s" % timeout)
        return self.status()

    def uri(self, export):
        return "nbd+unix:///%s?socket=%s" % (export, self.sock)

    def volume(self, name, size):
        return self.adm.op("volume.create", name=name, size=size, type="bench")

    def flush(self, vol):
        run(["nbdsh", "-u", self.uri(vol), "-c", "h.flush()"])

    # ---- fio -------------------------------------------------------
    def fio(self, name, vol, args, out=True):
        """Run one fio job on volume VOL; with OUT, keep its JSON in
        --out and return a summary."""
        self.alive()
        f = os.path.join(self.out, name + ".json")
        cmd = ["fio", "--name=" + name.replace(".", "-"), "--ioengine=nbd",
               "--uri=" + self.uri(vol)] + args
        if out:
            cmd += ["--lat_percentiles=1", "--output-format=json",
                    "--output=" + f]
        else:
            cmd += ["--output=/dev/null"]
        run(cmd)
        return summarise(f) if out else None

    def iolog(self, path, job, offsets, bs=4096):
        job = job.replace(".", "-")
        fn = job + ".0.0"
        with open(path, "w") as f:
            f.write("fio version 2 iolog\n%s add\n%s open\n" % (fn, fn))
            for o in offsets:
                f.write("%s write %d %d\n" % (fn, o, bs))
            f.write("%s close\n" % fn)
        return job

    def fill_seq(self, vol, size):
        self.fio("fill-" + vol, vol, ["--rw=write", "--bs=1m", "--iodepth=8",
                                      "--size=%d" % size], out=False)
        self.flush(vol)

    def fill_frag(self, vol, size, n, seed):
        """N 4 KiB writes, each at the start of a distinct random chunk,
        in random order: about N extents."""
        nchunks = size // self.chunk
        n = min(n, nchunks)
        offs = [c * self.chunk for c in
                random.Random(seed).sample(range(nchunks), n)]
        path = os.path.join(self.work, "frag-%s.iolog" % vol)
        job = self.iolog(path, "frag-" + vol, offs)
        self.fio(job, vol, ["--read_iolog=" + path, "--replay_no_stall=1",
                            "--iodepth=32"], out=False)
        self.flush(vol)
        os.unlink(path)

    # ---- 1. snapshot create ----------------------------------------
    def creates(self):
        a = self.a
        small, large = parse_size(a.small), parse_size(a.large)
        cases = [("seq", small, 0), ("seq", large, 0)]
        if a.frag_writes:
            cases += [("frag", small, max(1, a.frag_writes * small // large)),
                      ("frag", large, a.frag_writes)]
        out = []
        for kind, size, n in cases:
            vol = "%s-%s" % (kind, human(size))
            self.volume(vol, size)
            t0 = time.monotonic()
            if kind == "seq":
                self.fill_seq(vol, size)
            else:
                self.fill_frag(vol, size, n, a.seed)
            wt = time.monotonic() - t0
            out.append({"volume": vol, "kind": kind, "size": size,
                        "writes": n, "write_s": wt, "create_s": [],
                        "delete_s": []})
        self.quiet()
        for r in out:
            r["extents"] = self.adm.op("volume.show", name=r["volume"])[
                "extents"]
        # Round robin over the volumes, alternating the order, so that
        # the machine's noise falls on all of them alike.
        r0 = loadavg()
        for i in range(a.creates):
            for r in (out if i % 2 == 0 else out[::-1]):
                res, t = self.adm.timed("snapshot.create", volume=r["volume"],
                                        name="s%d" % i)
                r["snapshot_extents"] = res.get("extents")
                r["create_s"].append(t)
                _, t = self.adm.timed("snapshot.delete", volume=r["volume"],
                                      name="s%d" % i)
                r["delete_s"].append(t)
                self.quiet(hold=0.2)
        for r in out:
            r["load"] = r0
            ct = r["create_s"]
            log("create  %-10s %7d extent(s), written in %5.1f s: create "
                "median %.2f ms (%s) delete median %.2f ms, load %.1f"
                % (r["volume"], r["extents"], r["write_s"],
                   1e3 * statistics.median(ct),
                   " ".join("%.2f" % (1e3 * x) for x in ct),
                   1e3 * statistics.median(r["delete_s"]), r0))
        for r in out:
            self.adm.op("volume.delete", name=r["volume"])
        self.quiet()
        self.res["create"] = out

    # ---- 2. first write to a shared chunk ----------------------------
    def cow(self):
        a = self.a
        size = parse_size(a.cow_range)
        n = size // self.chunk
        self.volume("cow", size)
        self.fill_seq("cow", size)
        offs = [c * self.chunk for c in range(n)]
        random.Random(a.seed).shuffle(offs)
        path = os.path.join(self.out, "cow.iolog")
        job = self.iolog(path, "cow", offs)
        out = []
        for rep in range(a.cow_reps):
            for qd in a.cow_qd:
                snap = "qd%d-%d" % (qd, rep)
                self.quiet()
                self.adm.op("snapshot.create", volume="cow", name=snap)
                self.quiet(hold=0.2)
                r = {"qd": qd, "rep": rep, "writes": n}
                for p in ("first", "again"):
                    drop_caches()
                    used0 = self.status()["used"]
                    load = loadavg()
                    s = self.fio("cow-qd%d-%s.%d" % (qd, p, rep), "cow",
                                 ["--read_iolog=" + path,
                                  "--replay_no_stall=1",
                                  "--iodepth=%d" % qd])
                    self.flush("cow")
                    s["copied_chunks"] = (self.status()["used"] - used0) \
                        // self.chunk
                    s["load"] = load
                    r[p] = s
                    log("cow     QD%-2d %-5s rep %d: %8.0f IOPS p50 %6.0f p99 "
                        "%7.0f max %7.0f us, %d chunk(s) allocated, load %.1f"
                        % (qd, p, rep, s["iops"], s["p50"], s["p99"],
                           s["max"], s["copied_chunks"], load))
                out.append(r)
        for s in self.adm.op("snapshot.list", volume="cow")["snapshots"]:
            self.adm.op("snapshot.delete", volume="cow", name=s["name"])
        self.adm.op("volume.delete", name="cow")
        self.quiet()
        self.res["cow"] = out
        self.res["cow_iolog"] = job

    # ---- 3. latency while a large snapshot is deleted ------------------
    def big_snapshot(self, rep):
        """A volume of --reap-extents extents, snapshot; then the
        volume deleted or rewritten.  Returns the snapshot's name."""
        a = self.a
        n = a.reap_extents
        vsize = n * 2 * self.chunk      # every other chunk: none adjacent
        vol = "scatter%d" % rep
        need = n * self.chunk * (2 if a.reap_setup == "rewrite" else 1)
        free = self.status()["free"]
        if free < need:
            raise SystemExit("bench: the pool has %d bytes free, %d extents "
                             "need %d; lower --reap-extents or raise the "
                             "pool size" % (free, n, need))
        self.volume(vol, vsize)
        job = ["--rw=write:%d" % (2 * self.chunk - 4096), "--bs=4k",
               "--iodepth=32", "--size=%d" % vsize, "--io_size=%d" % (n * 4096)]
        t0 = time.monotonic()
        self.fio("scatter", vol, job, out=False)
        self.flush(vol)
        wt = time.monotonic() - t0
        self.quiet()
        self.adm.op("snapshot.create", volume=vol, name="old")
        if a.reap_setup == "rewrite":
            self.fio("rewrite", vol, job, out=False)
            self.flush(vol)
        else:
            self.adm.op("volume.delete", name=vol)
        st = self.quiet()
        snap = self.adm.op("snapshot.show", volume=vol, name="old")
        log("reap    %s@old: %d extents, %d bytes allocated (written in "
            "%.1f s), setup %s; pool map_memory %d"
            % (vol, snap["extents"], snap["allocated"], wt, a.reap_setup,
               st["map_memory"]))
        return vol, snap

    def reader_run(self, name, delete=None):
        """fio randread QD1 on 'reader' for --reap-runtime s, polling
        pool.status; with DELETE=(volume, snapshot), delete it
        --delete-at s in.  Returns the run's figures."""
        a = self.a
        prefix = os.path.join(self.work, name)
        cmd = ["fio", "--name=" + name, "--ioengine=nbd",
               "--uri=" + self.uri("reader"), "--rw=randread", "--bs=4k",
               "--iodepth=1", "--size=%d" % parse_size(a.read_size),
               "--time_based", "--runtime=%g" % a.reap_runtime,
               "--write_lat_log=" + prefix, "--log_avg_msec=0",
               "--log_unix_epoch=1", "--lat_percentiles=1",
               "--output-format=json",
               "--output=" + os.path.join(self.out, name + ".json")]
        poller = Admin(os.path.join(self.pool, "admin.sock"))
        samples = []
        stop = threading.Event()

        def poll():
            while not stop.is_set():
                st = poller.op("pool.status")
                samples.append((time.time(), st))
                stop.wait(a.poll)

        probe = {}

        def probe_admin():
            pa = Admin(os.path.join(self.pool, "admin.sock"))
            _, probe["admin_s"] = pa.timed("volume.create", name="probe-" + name,
                                           size=4096, type="bench")
            pa.close()

        def probe_flush():
            p = run(["nbdsh", "-u", self.uri("reader"), "-c",
                     "import time; t = time.monotonic(); h.flush(); "
                     "print(time.monotonic() - t)"],
                    stdout=subprocess.PIPE, text=True)
            probe["flush_s"] = float(p.stdout.split()[-1])

        def probe_commit():
            """A durable admin op and an NBD FLUSH at once, --probe-after
            s after the delete (or where it would be): both wait for a
            commit of the pool."""
            ts = [threading.Thread(target=f) for f in (probe_admin,
                                                        probe_flush)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()

        drop_caches()
        load = loadavg()
        p = subprocess.Popen(cmd)
        th = threading.Thread(target=poll, daemon=True)
        th.start()
        t_start = time.time()
        r = {"load": load, "probe": probe}
        pt = None
        if a.probe_after >= 0:
            pt = threading.Timer(a.delete_at + a.probe_after, probe_commit)
            pt.daemon = True
            pt.start()
        time.sleep(a.delete_at)
        if delete:
            vol, snap = delete
            r["delete_t"] = time.time()
            _, r["delete_s"] = self.adm.timed("snapshot.delete", volume=vol,
                                              name=snap)
        else:
            r["delete_t"] = time.time()
        if p.wait() != 0:
            raise SystemExit("bench: fio failed: " + " ".join(cmd))
        if delete:
            r.update(self.reclaim_end(samples, r["delete_t"]))
        if pt:
            pt.join()
            self.adm.op("volume.delete", name="probe-" + name)
        stop.set()
        th.join()
        poller.close()
        self.alive()
        # Keep the per-I/O total-latency log (gzip), drop the others.
        lat = []
        src = prefix + "_lat.1.log"
        with open(src) as f, gzip.open(os.path.join(
                self.out, name + "_lat.log.gz"), "wt") as g:
            for line in f:
                g.write(line)
                t, v = line.split(",")[:2]
                lat.append((int(t), int(v)))
        for k in ("lat", "clat", "slat"):
            try:
                os.unlink("%s_%s.1.log" % (prefix, k))
            except OSError:
                pass
        with open(os.path.join(self.out, name + ".pool-status.json"), "w") as f:
            json.dump([{"t": t, **st} for t, st in samples], f)
        r["first_io_t"] = lat[0][0] / 1000.0 if lat else t_start
        r["last_io_t"] = lat[-1][0] / 1000.0 if lat else time.time()
        r["lat"] = lat
        r["summary"] = summarise(os.path.join(self.out, name + ".json"))
        return r

    def reclaim_end(self, samples, t_del):
        """When the reclaim after the delete at T_DEL was over, from the
        pool.status samples (the poller keeps adding to SAMPLES; this
        waits past fio's end if need be).  Two ends: the map's nodes
        freed (reap_pending 0, or map_memory's last change) and the
        chunks given back (pending_chunks 0 as well, or the last change
        of map_memory, used and pending_chunks)."""
        a = self.a
        has_rp = any("reap_pending" in st for _, st in list(samples))

        def trailing(after, busy):
            """The time of the first sample of the trailing run of
            samples that are not BUSY (None if the last one is)."""
            end = None
            for t, st in after:
                if busy(st):
                    end = None
                elif end is None:
                    end = t
            return end

        def last_change(after, base, keys):
            last, end = tuple(base.get(k) for k in keys), t_del
            for t, st in after:
                cur = tuple(st.get(k) for k in keys)
                if cur != last:
                    end, last = t, cur
            return end

        deadline = time.time() + a.reap_timeout
        while True:
            snap = list(samples)
            before = [st for t, st in snap if t < t_del]
            after = [(t, st) for t, st in snap if t >= t_del]
            base = before[-1] if before else (after[0][1] if after else {})
            if has_rp:
                end_map = trailing(after, lambda st: st.get("reap_pending"))
                end = trailing(after, lambda st: st.get("reap_pending")
                               or st.get("pending_chunks"))
            else:
                end_map = last_change(after, base, ("map_memory",))
                end = last_change(after, base, ("map_memory", "used",
                                                "pending_chunks"))
            if (after and end is not None
                    and after[-1][0] - end >= a.settle
                    and not after[-1][1].get("pending_chunks")):
                break
            if time.time() > deadline:
                self.notes.append("reclaim not over %g s after the delete "
                                  "(--reap-timeout)" % a.reap_timeout)
                end = None
                break
            time.sleep(a.poll)
        final = after[-1][1] if after else base
        return {"reclaim_s": (end - t_del) if end is not None else None,
                "reclaim_map_s": (end_map - t_del) if end_map is not None
                else None,
                "reclaim_by": "reap_pending and pending_chunks 0" if has_rp
                else "last change of map_memory/used/pending_chunks",
                "freed_bytes": final.get("free", 0) - base.get("free", 0),
                "map_memory_freed": (base.get("map_memory", 0)
                                     - final.get("map_memory", 0)),
                "pending_max": max([st.get("pending_chunks", 0)
                                    for _, st in after] or [0]),
                "poll_samples": len(after),
                "poll_max_gap_s": max([y[0] - x[0] for x, y in
                                       zip(after, after[1:])] or [0])}

    def reap(self):
        a = self.a
        self.volume("reader", parse_size(a.read_size))
        self.fill_seq("reader", parse_size(a.read_size))
        out = []
        for rep in range(a.reap_reps):
            vol, snap = self.big_snapshot(rep)
            # The baseline and the delete run, alternating their order.
            runs = {}
            order = ["base", "delete"] if rep % 2 == 0 else ["delete", "base"]
            for kind in order:
                self.quiet(hold=1.0)
                runs[kind] = self.reader_run(
                    "reap-%s.%d" % (kind, rep),
                    (vol, snap["name"]) if kind == "delete" else None)
                self.quiet()
            d, b = runs["delete"], runs["base"]
            # The window: from the delete request to the end of the
            # reclaim (or of fio), as offsets from each run's first I/O.
            w0 = d["delete_t"] - d["first_io_t"]
            rs = d.get("reclaim_s")
            w1 = w0 + (rs if rs is not None else a.reap_runtime)
            w1 = max(min(w1, d["last_io_t"] - d["first_io_t"]), w0 + 0.001)
            r = {"rep": rep, "extents": snap["extents"],
                 "allocated": snap["allocated"], "window": [w0, w1],
                 "delete_s": d["delete_s"], "reclaim_s": rs,
                 "reclaim_map_s": d.get("reclaim_map_s"),
                 "pending_max": d.get("pending_max"),
                 "clipped": rs is None or w0 + rs > w1,
                 "reclaim_by": d["reclaim_by"],
                 "freed_bytes": d["freed_bytes"],
                 "map_memory_freed": d["map_memory_freed"],
                 "probe": {"base": b["probe"], "delete": d["probe"]},
                 "poll_max_gap_s": d["poll_max_gap_s"],
                 "load": {"base": b["load"], "delete": d["load"]}}
            for kind, x in (("base", b), ("delete", d)):
                t0 = x["first_io_t"]
                inw = sorted(v for t, v in x["lat"]
                             if w0 <= t / 1000.0 - t0 <= w1)
                r[kind] = {"window": stats(inw), "run": x["summary"]}
            out.append(r)
            log("reap    rep %d: %d extents; delete op %.2f ms; reclaim %s; "
                "window %.2f-%.2f s: base p50/p99/max %s, delete %s"
                % (rep, r["extents"], 1e3 * r["delete_s"],
                   "%.2f s" % rs if rs is not None else "not over",
                   w0, w1, fmt_lat(r["base"]["window"]),
                   fmt_lat(r["delete"]["window"])))
        self.res["reap"] = out


def stats(xs_ns):
    if not xs_ns:
        return {"n": 0, "p50": None, "p99": None, "max": None}
    return {"n": len(xs_ns), "p50": pct(xs_ns, 50) / 1000,
            "p99": pct(xs_ns, 99) / 1000, "max": xs_ns[-1] / 1000}


def fmt_lat(s):
    if not s or s.get("p50") is None:
        return "-"
    return "%.0f/%.0f/%.0f us" % (s["p50"], s["p99"], s["max"])


def summarise(path):
    with open(path) as f:
        t = f.read()
    j = json.loads(t[t.index("{"):])["jobs"][0]
    r, w = j["read"], j["write"]
    d = r if r["io_bytes"] >= w["io_bytes"] else w
    lat = d["lat_ns"] if d["lat_ns"].get("percentile") else d["clat_ns"]
    pc = lat.get("percentile", {})
    return {"iops": r["iops"] + w["iops"], "ios": d["total_ios"],
            "p50": pc.get("50.000000", 0) / 1000,
            "p99": pc.get("99.000000", 0) / 1000,
            "max": lat.get("max", 0) / 1000}


def report(a, b, elapsed):
    st0 = b.res.get("pool", {})
    head = ("%s, %s, %d cores, kernel %s; pool chunk %d KiB; run took %.0f s"
            % (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
               os.uname().nodename, os.cpu_count(), os.uname().release,
               (st0.get("chunk_size") or 0) // 1024, elapsed))
    rows = []

    cr = b.res.get("create", [])
    if cr:
        by = {(r["kind"], r["size"]): r for r in cr}
        small, large = parse_size(a.small), parse_size(a.large)
        for r in cr:
            ms = [1e3 * x for x in r["create_s"]]
            ratio = ""
            if r["size"] == large and (r["kind"], small) in by:
                ref = by[(r["kind"], small)]["create_s"]
                ratio = "%s/%s %.2fx (of the minima %.2fx)" % (
                    human(large), human(small),
                    statistics.median(r["create_s"]) / statistics.median(ref),
                    min(r["create_s"]) / min(ref))
            what = ("%s written sequentially" if r["kind"] == "seq" else
                    "%s, %d random 4k writes" % ("%s", r["writes"]))
            rows.append(["snapshot create (median of %d)" % len(ms),
                         (what % human(r["size"])) + ", %d extent(s)"
                         % r["extents"],
                         "%.2f ms (min %.2f, max %.2f); delete %.2f ms"
                         % (statistics.median(ms), min(ms), max(ms),
                            1e3 * statistics.median(r["delete_s"])),
                         ratio])

    cw = b.res.get("cow", [])
    for qd in a.cow_qd:
        rs = [r for r in cw if r["qd"] == qd]
        if not rs:
            continue
        fig = {}
        for p in ("first", "again"):
            fig[p] = {k: med([r[p][k] for r in rs])
                      for k in ("iops", "p50", "p99", "max")}
            copied = med([r[p]["copied_chunks"] for r in rs])
            label = ("first write to each shared chunk (copy)" if p == "first"
                     else "same writes again (private chunks)")
            rows.append(["4k randwrite QD%d, %d writes, 1 per chunk%s"
                         % (qd, rs[0]["writes"],
                            ", median of %d" % len(rs) if len(rs) > 1 else ""),
                         label,
                         "%.1fk IOPS, p50 %.0f us, p99 %.0f us (chunks "
                         "allocated: %d)" % (fig[p]["iops"] / 1000,
                                             fig[p]["p50"], fig[p]["p99"],
                                             copied), ""])
        f, g = fig["first"], fig["again"]
        rows.append(["", "first / again",
                     "IOPS %.2fx, p50 %.2fx, p99 %.2fx"
                     % (f["iops"] / g["iops"], f["p50"] / g["p50"],
                        f["p99"] / g["p99"]),
                     "the copy adds %.0f us to a write at p50"
                     % (f["p50"] - g["p50"]) if qd == 1 else ""])

    for r in b.res.get("reap", []):
        t = ("4k randread QD1 on another volume, snapshot of %d extents "
             "(%s) deleted %gs in" % (r["extents"], human(r["allocated"]),
                                      a.delete_at))
        w = r["window"]
        for kind, label in (("base", "baseline (no delete)"),
                            ("delete", "with the delete")):
            s = r[kind]["window"]
            rows.append([t, "%s, %.2f-%.2f s%s (%d I/Os)"
                         % (label, w[0], w[1],
                            " (to fio's end)"
                            if r["clipped"] else "", s["n"]),
                         "p50 %s us, p99 %s us, max %s us" % tuple(
                             "-" if s[k] is None else "%.0f" % s[k]
                             for k in ("p50", "p99", "max")), ""])
            t = ""
        bs, ds = r["base"]["window"], r["delete"]["window"]
        if bs["p50"] and ds["p50"]:
            rows.append(["", "delete / baseline in the window",
                         "p50 %.2fx, p99 %.2fx, max %.2fx"
                         % (ds["p50"] / bs["p50"], ds["p99"] / bs["p99"],
                            ds["max"] / bs["max"]), ""])
        for kind, label in (("base", "baseline"), ("delete", "with the delete")):
            s = r[kind]["run"]
            rows.append(["", "%s, whole %gs run" % (label, a.reap_runtime),
                         "%.1fk IOPS, p50 %.0f us, p99 %.0f us, max %.0f us"
                         % (s["iops"] / 1000, s["p50"], s["p99"], s["max"]),
                         ""])
        pb, pd = r["probe"]["base"], r["probe"]["delete"]
        if pb and pd:
            rows.append(["", "durable admin op (volume.create) %gs after the "
                         "delete, and an NBD FLUSH at once" % a.probe_after,
                         "%.1f ms and %.1f ms; baseline %.1f ms and %.1f ms"
                         % (1e3 * pd["admin_s"], 1e3 * pd["flush_s"],
                            1e3 * pb["admin_s"], 1e3 * pb["flush_s"]),
                         "both wait for a pool commit"])
        rs, rm = r["reclaim_s"], r["reclaim_map_s"]
        rows.append(["", "snapshot.delete round trip",
                     "%.1f ms" % (1e3 * r["delete_s"]), ""])
        rows.append(["", "background reclaim: map nodes freed; chunks "
                     "given back",
                     "%s (map memory -%s); %s (%d chunks pending at most, "
                     "%s freed)"
                     % ("%.2f s" % rm if rm is not None else "-",
                        human_bytes(r["map_memory_freed"]),
                        "%.2f s" % rs if rs is not None else "not over",
                        r["pending_max"] or 0,
                        human_bytes(r["freed_bytes"])),
                     "end: " + r["reclaim_by"]])

    hdr = ["test", "case", "figures", "ratio / note"]
    w = [max(len(str(x[i])) for x in rows + [hdr]) for i in range(len(hdr))]
    text = [head, ""]
    text.append("  ".join(h.ljust(w[i]) for i, h in enumerate(hdr)).rstrip())
    for x in rows:
        text.append("  ".join(str(c).ljust(w[i])
                              for i, c in enumerate(x)).rstrip())
    md = [head, "", "| " + " | ".join(hdr) + " |", "|---|---|---|---|"]
    md += ["| " + " | ".join(str(c) for c in x) + " |" for x in rows]
    notes = list(b.notes)
    if not b.res.get("has_reap_pending"):
        notes.append("pool.status does not report reap_pending (server/admin.c "
                     "op_pool_status leaves out the field blockmap_pool_info "
                     "fills); the reclaim's end is the last change of "
                     "map_memory/used/pending_chunks, polled every %g s"
                     % a.poll)
    for r in b.res.get("reap", []):
        if r["poll_max_gap_s"] > 10 * a.poll:
            notes.append("pool.status went unanswered for up to %.1f s "
                         "after the delete: the one admin thread waited with "
                         "the durable probe op (or the delete) for the pool "
                         "commit, so the reclaim's end is the first answer "
                         "after that" % r["poll_max_gap_s"])
    loads = []
    for r in b.res.get("create", []):
        loads.append(r["load"])
    for r in b.res.get("cow", []):
        loads += [r["first"]["load"], r["again"]["load"]]
    for r in b.res.get("reap", []):
        loads += list(r["load"].values())
    if loads:
        notes.append("1-min load average before the timed jobs: %.1f-%.1f"
                     % (min(loads), max(loads)))
    text += [""] + ["note: " + n for n in notes]
    md += [""] + ["- " + n for n in notes]
    print("\n".join(text))
    print("raw fio JSON, latency logs and table: " + b.out)
    with open(os.path.join(b.out, "table.txt"), "w") as f:
        f.write("\n".join(text) + "\n")
    with open(os.path.join(b.out, "table.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    res = dict(b.res)
    with open(os.path.join(b.out, "results.json"), "w") as f:
        json.dump({"head": head, "args": vars(a), "header": hdr, "rows": rows,
                   "notes": notes, "results": res}, f, indent=1)


def human_bytes(n):
    for u, m in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(n) >= m:
            return "%.1f %s" % (n / m, u)
    return "%d B" % n


def main():
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--tests", default="create cow reap",
                    help="which parts to run")
    ap.add_argument("--small", default="1G",
                    help="1. the small volume, written full")
    ap.add_argument("--large", default="16G",
                    help="1. the large volume, written full")
    ap.add_argument("--frag-writes", type=int, default=200000,
                    help="1. 4k writes to distinct random chunks of the "
                    "large volume (the small one gets the same density; "
                    "0: skip the fragmented volumes)")
    ap.add_argument("--creates", type=int, default=5,
                    help="1. snapshot creates timed per volume (round robin "
                    "over the volumes)")
    ap.add_argument("--cow-range", default="1G",
                    help="2. the range written, one 4k write per chunk")
    ap.add_argument("--cow-qd", default="1 32", help="2. queue depths")
    ap.add_argument("--cow-reps", type=int, default=3)
    ap.add_argument("--reap-extents", type=int, default=500000,
                    help="3. extents of the snapshot deleted")
    ap.add_argument("--reap-setup", choices=["delete-volume", "rewrite"],
                    default="delete-volume",
                    help="3. how the snapshot's map becomes its own")
    ap.add_argument("--reap-reps", type=int, default=1)
    ap.add_argument("--reap-runtime", type=float, default=20)
    ap.add_argument("--delete-at", type=float, default=5)
    ap.add_argument("--read-size", default="1G",
                    help="3. the volume fio reads, written full")
    ap.add_argument("--poll", type=float, default=0.02,
                    help="3. pool.status polling interval, s")
    ap.add_argument("--settle", type=float, default=1.0,
                    help="3. counters unchanged this long: reclaim over")
    ap.add_argument("--reap-timeout", type=float, default=180)
    ap.add_argument("--probe-after", type=float, default=1,
                    help="3. time a durable admin op and an NBD FLUSH this "
                    "long after the delete (-1: don't)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--pool-init", default="",
                    help="extra 'strata pool init' arguments, e.g. "
                    "'--size 60G'")
    ap.add_argument("--keep", action="store_true",
                    help="keep the scratch pool")
    ap.add_argument("--out")
    a = ap.parse_args()
    a.pool_init = a.pool_init.split()
    a.cow_qd = [int(x) for x in a.cow_qd.split()]
    tests = a.tests.split()
    b = Bench(a)
    t_start = time.monotonic()
    log("bench: scratch %s, load %.2f" % (b.work, loadavg()))
    try:
        st = b.start()
        b.res["pool"] = st
        b.res["has_reap_pending"] = "reap_pending" in st
        if not b.res["has_reap_pending"]:
            log("bench: pool.status has no reap_pending; the end of a "
                "reclaim is the last change of map_memory/used/pending_chunks")
        if "create" in tests:
            b.creates()
        if "cow" in tests:
            b.cow()
        if "reap" in tests:
            b.reap()
        for r in b.res.get("reap", []):     # the big lists stay in the logs
            for k in ("base", "delete"):
                r[k].pop("lat", None)
    finally:
        b.stop()
        if not a.keep:
            if os.path.commonpath([b.work, os.path.abspath(b.out)]) == b.work:
                shutil.rmtree(b.pool, ignore_errors=True)
            else:
                shutil.rmtree(b.work, ignore_errors=True)
    report(a, b, time.monotonic() - t_start)


if __name__ == "__main__":
    main()
