#!/bin/bash
# bench/qos.sh: the QoS section of the benchmark.  For an ssd volume at
# its baseline (3000 IOPS, 125 MB/s) and at a provisioned budget (6000
# IOPS, 250 MB/s), measured IOPS and MB/s against the budget (goal:
# within 5%); and the p99 latency of an unthrottled volume, alone and
# while a throttled volume on the same daemon is saturated.
#
#   bench/qos.sh [--runtime S]        (default 10; after a 2 s ramp that
#                                      hides the bucket's burst)
#
# Uses the built stratad and strata in ./build (or $STRATA_BUILD_DIR)
# and a scratch pool under /tmp; prints a table.
set -euo pipefail
export PATH="/usr/bin:$PATH"
here="$(cd "$(dirname "$0")/.." && pwd)"
build="${STRATA_BUILD_DIR:-$here/build}"
runtime=10
[ "${1:-}" = --runtime ] && runtime=$2
for c in fio python3; do command -v $c >/dev/null || { echo "bench/qos.sh: $c not found" >&2; exit 1; }; done
[ -x "$build/stratad" ] || { echo "bench/qos.sh: build strata first ($build)" >&2; exit 1; }

d="$(mktemp -d /tmp/strata-qos-bench.XXXXXX)"
pid=
cleanup () { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$d"; }
trap cleanup EXIT
echo 'volume_types: {fast: {}}' >"$d/strata.yaml"
"$build/strata" pool init --chunk-size 64K --size 8G "$d/pool" >/dev/null
"$build/stratad" -f --pool "$d/pool" --unix "$d/nbd.sock" --config "$d/strata.yaml" 2>"$d/log" &
pid=$!
S () { "$build/strata" --socket "$d/pool/admin.sock" "$@" >/dev/null; }
for i in $(seq 100); do S pool status 2>/dev/null && break; sleep 0.1; done
S volume create base --size 16G
S volume create prov --size 16G --iops 6000 --throughput 250MB
S volume create free --size 16G --type fast
for v in base prov free; do
    fio --name=fill --ioengine=nbd --uri="nbd+unix:///$v?socket=$d/nbd.sock" \
        --rw=write --bs=1M --size=1G --iodepth=8 >/dev/null 2>&1
done

# job NAME VOLUME RW BS QD -> fio JSON in $d/NAME.json
job () {
    fio --name="$1" --ioengine=nbd --uri="nbd+unix:///$2?socket=$d/nbd.sock" \
        --rw="$3" --bs="$4" --iodepth="$5" --size=1G --time_based \
        --runtime="$runtime" --ramp_time=2 --output-format=json \
        --output="$d/$1.json" >/dev/null 2>&1
}
job base-iops base randread 4k 32
job base-tput base read 1M 8
job prov-iops prov randread 4k 32
job prov-tput prov read 1M 8
job free-alone free randread 4k 1
job base-sat base randread 4k 32 & bg=$!
sleep 1
job free-busy free randread 4k 1
wait $bg

python3 - "$d" <<'PY'
import json, sys
d = sys.argv[1]
def r(name):
    t = open("%s/%s.json" % (d, name)).read()
    x = json.loads(t[t.index("{"):])["jobs"][0]
    return x["read"]
rows = [("ssd baseline, 4k randread QD32", "base-iops", "iops", 3000, "IOPS"),
        ("ssd baseline, 1M read QD8", "base-tput", "bw_bytes", 125e6, "MB/s"),
        ("ssd provisioned, 4k randread QD32", "prov-iops", "iops", 6000, "IOPS"),
        ("ssd provisioned, 1M read QD8", "prov-tput", "bw_bytes", 250e6, "MB/s")]
print("| job | budget | measured | measured / budget |")
print("| --- | ---: | ---: | ---: |")
for title, name, key, budget, unit in rows:
    v = r(name)[key]
    scale = 1e6 if unit == "MB/s" else 1
    print("| %s | %g %s | %.1f %s | %.3f |" % (title, budget / scale, unit,
                                              v / scale, unit, v / budget))
def p99(name):
    return r(name)["clat_ns"]["percentile"]["99.000000"] / 1000
a, b = p99("free-alone"), p99("free-busy")
print()
print("| unthrottled volume, 4k randread QD1 | p99 latency |")
print("| --- | ---: |")
print("| alone | %.0f us |" % a)
print("| while a throttled volume is saturated (QD32 at 3000 IOPS) | %.0f us (%.2fx) |" % (b, b / a))
PY
