#!/bin/bash
# bench/run.sh: strata side by side with the peers a user would pick
# instead, on the same file system, with identical fio jobs, in one run.
#
#   bench/run.sh [--reps N] [--size SIZE] [--servers "strata nbdkit ..."]
#                [--jobs "randread-qd32 ..."] [--out DIR]
#
# Each server gets a file (or pool) of the same size in one directory on
# the same file system, is prefilled so reads hit written data, and is
# served on its own Unix socket.  Jobs alternate between servers, each
# repeated --reps times (median reported); caches are dropped before
# every job.  Prints one table with the ratio of strata to the best peer,
# and keeps the raw fio JSON in --out.  Servers are stopped by pid.
set -euo pipefail
export PATH="/usr/bin:$PATH"
here="$(cd "$(dirname "$0")/.." && pwd)"
build="${STRATA_BUILD_DIR:-$here/build}"
reps=3
size=2G
servers="strata nbdkit"
jobs="randread-qd1 randread-qd32 randwrite-qd32 seqwrite-1m-qd8 seqread-1m-qd8"
out=""
runtime=15

while [ $# -gt 0 ]; do
    case "$1" in
        --reps) reps=$2; shift 2 ;;
        --size) size=$2; shift 2 ;;
        --servers) servers=$2; shift 2 ;;
        --jobs) jobs=$2; shift 2 ;;
        --runtime) runtime=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench/run.sh: unknown option '$1'; try --help" >&2; exit 2 ;;
    esac
done

for cmd in fio nbdsh "$build/stratad" "$build/strata"; do
    command -v "$cmd" >/dev/null || { echo "bench/run.sh: '$cmd' not found (build first: tools/setup.sh)" >&2; exit 1; }
done

work="$(mktemp -d "${BENCH_DIR:-/var/tmp}/strata-bench.XXXXXX")"
out="${out:-$work/results}"
mkdir -p "$out"
pids=()
cleanup () {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do
        for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$p" 2>/dev/null || true
    done
    rm -rf "$work/files"
}
trap cleanup EXIT
mkdir -p "$work/files"
bytes=$(numfmt --from=iec "$size")

wait_sock () {
    local i
    for (( i = 0; i < 200; i++ )); do
        nbdinfo --size "nbd+unix:///$2?socket=$1" >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    echo "bench/run.sh: server on $1 did not come up" >&2
    exit 1
}

declare -A uri
start_server () {
    local s=$1 d="$work/files"
    case "$s" in
    strata)
        "$build/strata" pool init "$d/pool" >/dev/null
        "$build/stratad" --foreground --pool "$d/pool" --unix "$d/strata.sock" \
            --admin-socket "$d/strata-admin.sock" 2>"$work/stratad.log" &
        pids+=($!)
        for _ in $(seq 200); do [ -S "$d/strata-admin.sock" ] && break; sleep 0.05; done
        "$build/strata" --socket "$d/strata-admin.sock" volume create bench --size "$size" >/dev/null
        uri[$s]="nbd+unix:///bench?socket=$d/strata.sock"
        wait_sock "$d/strata.sock" bench ;;
    nbdkit)
        truncate -s "$size" "$d/nbdkit.img"
        nbdkit --foreground --unix "$d/nbdkit.sock" file "$d/nbdkit.img" &
        pids+=($!)
        uri[$s]="nbd+unix:///?socket=$d/nbdkit.sock"
        wait_sock "$d/nbdkit.sock" "" ;;
    nbdkit-null)
        nbdkit --foreground --unix "$d/null.sock" null "$size" &
        pids+=($!)
        uri[$s]="nbd+unix:///?socket=$d/null.sock"
        wait_sock "$d/null.sock" "" ;;
    qemu-nbd|qemu-nbd-direct)
        truncate -s "$size" "$d/$s.img"
        local extra=()
        [ "$s" = qemu-nbd-direct ] && extra=(--cache=none --aio=io_uring)
        qemu-nbd --persistent --shared=8 -f raw -k "$d/$s.sock" "${extra[@]}" "$d/$s.img" &
        pids+=($!)
        uri[$s]="nbd+unix:///?socket=$d/$s.sock"
        wait_sock "$d/$s.sock" "" ;;
    *) echo "bench/run.sh: unknown server '$s'" >&2; exit 2 ;;
    esac
}

job_args () {
    case "$1" in
    randread-qd1)    echo "--rw=randread --bs=4k --iodepth=1" ;;
    randread-qd32)   echo "--rw=randread --bs=4k --iodepth=32" ;;
    randwrite-qd32)  echo "--rw=randwrite --bs=4k --iodepth=32" ;;
    randrw-qd32)     echo "--rw=randrw --rwmixread=70 --bs=4k --iodepth=32" ;;
    seqwrite-1m-qd8) echo "--rw=write --bs=1m --iodepth=8" ;;
    seqread-1m-qd8)  echo "--rw=read --bs=1m --iodepth=8" ;;
    *) echo "bench/run.sh: unknown job '$1'" >&2; exit 2 ;;
    esac
}

drop_caches () { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; }

for s in $servers; do
    start_server "$s"
    if [ "$s" != nbdkit-null ]; then     # prefill so reads hit written data
        fio --name=prefill --ioengine=nbd --uri="${uri[$s]}" --size="$bytes" \
            --rw=write --bs=1m --iodepth=8 --output=/dev/null
        nbdsh -u "${uri[$s]}" -c 'h.flush()'
    fi
done

# fio JSON -> "iops MiB/s p50us p99us" of the dominant direction.
summarise () {
    /usr/bin/python3 - "$1" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]
d = j["read"] if j["read"]["io_bytes"] >= j["write"]["io_bytes"] else j["write"]
if j["read"]["io_bytes"] and j["write"]["io_bytes"]:
    iops = j["read"]["iops"] + j["write"]["iops"]
    bw = (j["read"]["bw_bytes"] + j["write"]["bw_bytes"]) / 2**20
else:
    iops, bw = d["iops"], d["bw_bytes"] / 2**20
p = d["clat_ns"]["percentile"]
print("%.0f %.1f %.0f %.0f" % (iops, bw, p["50.000000"] / 1000, p["99.000000"] / 1000))
PY
}

declare -A res
for job in $jobs; do
    for (( r = 1; r <= reps; r++ )); do
        for s in $servers; do
            drop_caches
            f="$out/$job.$s.$r.json"
            # shellcheck disable=SC2046
            fio --name="$job" --ioengine=nbd --uri="${uri[$s]}" --size="$bytes" \
                $(job_args "$job") --time_based --runtime="$runtime" --ramp_time=2 \
                --output-format=json --output="$f"
            res[$job.$s.$r]="$(summarise "$f")"
        done
    done
done

# Median of REPS values of column COL.
median () {
    local job=$1 s=$2 col=$3 r
    for (( r = 1; r <= reps; r++ )); do
        echo "${res[$job.$s.$r]}" | awk -v c="$col" '{ print $c }'
    done | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'
}

printf '\n%s, %s, %s cores, %s rep(s) of %ss, median\n' "$(date -u +%F)" \
    "$(uname -r)" "$(nproc)" "$reps" "$runtime"
printf '%-24s' "job (unit)"; for s in $servers; do printf ' %14s' "$s"; done
printf ' %12s\n' "strata/best"
for job in $jobs; do
    col=1; unit=IOPS
    case "$job" in seq*) col=2; unit=MiB/s ;; esac
    case "$job" in *qd1) col=3; unit="p50 us" ;; esac
    printf '%-24s' "$job ($unit)"
    best=""; mine=""
    for s in $servers; do
        v=$(median "$job" "$s" "$col")
        printf ' %14s' "$v"
        if [ "$s" = strata ]; then mine=$v
        elif [ "$s" != nbdkit-null ]; then
            if [ -z "$best" ]; then best=$v
            elif [ $col = 3 ]; then best=$(awk -v a="$best" -v b="$v" 'BEGIN{print (b<a)?b:a}')
            else best=$(awk -v a="$best" -v b="$v" 'BEGIN{print (b>a)?b:a}'); fi
        fi
    done
    if [ -n "$mine" ] && [ -n "$best" ]; then
        if [ $col = 3 ]; then ratio=$(awk -v a="$best" -v b="$mine" 'BEGIN{printf "%.2f", a/b}')
        else ratio=$(awk -v a="$mine" -v b="$best" 'BEGIN{printf "%.2f", a/b}'); fi
        printf ' %12s' "${ratio}x"
    fi
    echo
done
printf '\n%-24s' "p99 latency (us)"; for s in $servers; do printf ' %14s' "$s"; done; echo
for job in $jobs; do
    printf '%-24s' "$job"
    for s in $servers; do printf ' %14s' "$(median "$job" "$s" 4)"; done
    echo
done
echo "(latency ratio is best/strata: above 1 means strata is faster)"
echo "raw fio JSON: $out"
