#!/bin/bash
# Two volumes with small IOPS budgets, driven by fio at once, are each
# held near their budget and neither starves the other; a large request
# counts one operation per op_size; a throughput budget holds too.
# Budgets are small (500 IOPS, 20 MB/s) so that the machine is never
# the limit, and the tolerance (±20% over 10 s, after a 2 s ramp that
# hides the burst) is wide enough for a noisy 2-core machine.
source "$(dirname "$0")/functions.sh"
requires fio --version
fio --enghelp 2>/dev/null | grep -qw nbd || skip "fio has no nbd engine"

make_pool
start_stratad "$pool"
strata_cli volume create a --size 256M --iops 500
strata_cli volume create b --size 256M --iops 500
strata_cli volume create big --size 256M --iops 400        # 1M reads: 4 ops
strata_cli volume create tput --size 256M --throughput 20MB

cat >"$testdir/job.fio" <<FIO
[global]
ioengine=nbd
direct=1
time_based=1
runtime=10
ramp_time=2
size=256M
[a]
uri=$(uri a)
rw=randread
bs=4k
iodepth=16
[b]
uri=$(uri b)
rw=randwrite
bs=4k
iodepth=16
[big]
uri=$(uri big)
rw=randread
bs=1M
iodepth=4
[tput]
uri=$(uri tput)
rw=read
bs=1M
iodepth=4
FIO
fio --output-format=json --output="$testdir/out.json" "$testdir/job.fio" \
    >"$testdir/fio.log" 2>&1 || { cat "$testdir/fio.log"; fail "fio failed"; }
"$PYTHON" - "$testdir/out.json" <<'PY'
import json, sys
text = open(sys.argv[1]).read()
j = json.loads(text[text.index("{"):])
res = {}
for job in j["jobs"]:
    rw = job["read"] if job["read"]["io_bytes"] else job["write"]
    res[job["jobname"]] = (rw["iops"], rw["bw_bytes"])
    print("%-5s %8.1f IOPS %8.2f MB/s" % (job["jobname"], rw["iops"],
                                          rw["bw_bytes"] / 1e6))
def near(name, got, want):
    lo, hi = want * 0.8, want * 1.2
    if not lo <= got <= hi:
        sys.exit("FAIL: %s: %.1f, budget %.1f (allowed %.1f..%.1f)"
                 % (name, got, want, lo, hi))
near("a IOPS", res["a"][0], 500)
near("b IOPS", res["b"][0], 500)
near("big IOPS (1 MiB = 4 ops of 256K at 400 ops/s)", res["big"][0], 100)
near("tput bytes/s", res["tput"][1], 20e6)
PY
# The daemon counted the waits.
st="$(strata_cli volume status a --json)"
[ "$(json_get "$st" 'j["metrics"]["throttled_requests"] > 1000')" = true ] ||
    fail "volume a: throttled requests not counted: $st"
stratad_alive
