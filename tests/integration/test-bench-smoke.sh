#!/bin/bash
# The benchmark runs end to end, small: bench/run.sh against strata,
# nbdkit and two limits, with the one- and two-connection jobs, the
# nbdcopy and the map tests.  It checks that every cell the run should
# fill is filled, that the two-connection row skipped the limits, that
# the map test counted its extents, and that every server it started is
# gone and its scratch directory removed.  Speed is not checked.
source "$(dirname "$0")/functions.sh"
for cmd in fio nbdkit nbdcopy nbdinfo nbdsh qemu-nbd nbd-server; do
    command -v "$cmd" >/dev/null || skip "'$cmd' is not installed"
done
fio --enghelp 2>/dev/null | grep -qw nbd || skip "fio has no nbd engine"
make_testdir

out="$testdir/out"
mkdir "$testdir/scratch"
BENCH_DIR="$testdir/scratch" "$srcdir/bench/run.sh" \
    --reps 1 --runtime 0.5 --ramp 0.2 --size 64M --extents 2000 \
    --jobs "randread-qd1 randwrite-qd32 randwrite-qd32-2conn seqwrite-1m-qd8" \
    --servers "strata nbdkit" --limits "raw-direct nbdkit-null" \
    --out "$out" >"$testdir/bench.out" 2>"$testdir/bench.err" ||
    { tail -20 "$testdir/bench.err"; fail "bench/run.sh failed"; }

[ -s "$out/table.txt" ] && [ -s "$out/table.md" ] && [ -s "$out/results.json" ] ||
    fail "no table or results in $out"
[ -z "$(ls -A "$testdir/scratch")" ] ||
    { ls -la "$testdir/scratch"; fail "the scratch directory was left behind"; }
[ -s "$out/strata.log" ] || fail "stratad's log did not move to the results"

"$PYTHON" - "$out" <<'EOF' || fail "the results are not what the run should give"
import json, os, sys
out = sys.argv[1]
r = json.load(open(os.path.join(out, "results.json")))
hdr, rows = r["header"], r["rows"]
col = {h: i for i, h in enumerate(hdr)}
bad = []
def row(job, metric):
    for x in rows:
        if x[0] == job and x[1] == metric:
            return x
    bad.append("no row %s %s" % (job, metric))
    return None
def number(cell):
    try:
        return float(cell.rstrip("kx"))
    except ValueError:
        return None
for job in ("randread-qd1", "randwrite-qd32", "randwrite-qd32-2conn"):
    for metric in ("IOPS", "p50 us", "p99 us", "server CPU us/req",
                   "client CPU us/req"):
        x = row(job, metric)
        if x is None:
            continue
        for srv in ("strata", "nbdkit"):
            v = number(x[col[srv]])
            if v is None or v <= 0:
                bad.append("%s %s %s: %r" % (job, metric, srv, x[col[srv]]))
        if metric == "IOPS":
            if number(x[col["strata/best peer"]]) is None:
                bad.append("%s: no ratio to the best peer" % job)
            lim = [x[col[n]] for n in ("raw-direct", "nbdkit-null")]
            if job.endswith("-2conn") and lim != ["-", "-"]:
                bad.append("%s ran against the limits: %r" % (job, lim))
            if not job.endswith("-2conn") and "-" in lim:
                bad.append("%s has no limit figure: %r" % (job, lim))
x = row("seqwrite-1m-qd8", "MiB/s")
if x and number(x[col["strata"]]) in (None, 0):
    bad.append("seqwrite: no strata MiB/s")
# Every fio run left its JSON: 3 single-connection jobs x 4 + 1 x 2.
runs = [f for f in os.listdir(out) if f.endswith(".json") and f != "results.json"]
if len(runs) != 14:
    bad.append("%d fio JSON files, expected 14" % len(runs))
# Client CPU of the two-connection job is the two threads' sum: fio's
# mean per thread times two, over the IOPS of both.
j = json.load(open(os.path.join(out, "randwrite-qd32-2conn.strata.0.json")))["jobs"][0]
want = (j["usr_cpu"] + j["sys_cpu"]) / 100 * 2 * 1e6 / j["write"]["iops"]
got = r["runs"]["randwrite-qd32-2conn strata"][0]["client_us"]
if abs(got - want) > 1e-6 * want:
    bad.append("2conn client CPU %r, expected %r" % (got, want))
# fio was given the runtime and ramp asked for (a bare "0.5" would be
# 0 s to fio): 0.5 s measured, after 0.2 s of ramp.
j = json.load(open(os.path.join(out, "randread-qd1.strata.0.json")))["jobs"][0]
if not 400 <= j["read"]["runtime"] <= 1500 or j["job options"].get("ramp_time") != "200ms":
    bad.append("fio ran %r ms with ramp %r" % (j["read"]["runtime"],
                                            j["job options"].get("ramp_time")))
m = r["map"]
if m["scatter_extents"] != 2000 or m["reopen_extents"] != 2001 or not m["recovered"]:
    bad.append("map test: %r" % m)
if set(r["copies"]) != {"strata", "nbdkit", "raw-direct", "nbdkit-null"}:
    bad.append("nbdcopy ran for %r" % sorted(r["copies"]))
for b in bad:
    print("bench-smoke:", b, file=sys.stderr)
sys.exit(1 if bad else 0)
EOF

# Every server the benchmark started is stopped: none still runs with
# a socket under the test's directory.
if pgrep -af -- "$testdir/scratch" >"$testdir/left"; then
    cat "$testdir/left"
    fail "a server the benchmark started is still running"
fi
