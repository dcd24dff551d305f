#!/bin/bash
# stratad --metrics-listen serves Prometheus text that promtool accepts,
# and its counters match what fio did; the CLI shows the same numbers.
source "$(dirname "$0")/functions.sh"
requires fio --version
requires promtool --version
fio --enghelp 2>/dev/null | grep -qw nbd || skip "fio has no nbd engine"

port="$(free_tcp_port)"
make_pool
start_stratad "$pool" --metrics-listen "127.0.0.1:$port"
strata_cli volume create m --size 64M
strata_cli volume create idle --size 64M --type hdd

scrape () {
    "$PYTHON" -c 'import sys, urllib.request
sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())' \
        "http://127.0.0.1:$port/metrics"
}
# 16 MiB in 64 KiB writes (256), then read back (256 reads).
fio --name=w --ioengine=nbd --uri="$(uri m)" --rw=write --bs=64k --size=16M \
    --iodepth=8 >"$testdir/fio.log" 2>&1 || { cat "$testdir/fio.log"; fail "fio write"; }
fio --name=r --ioengine=nbd --uri="$(uri m)" --rw=read --bs=64k --size=16M \
    --iodepth=8 >>"$testdir/fio.log" 2>&1 || { cat "$testdir/fio.log"; fail "fio read"; }

scrape >"$testdir/metrics.txt"
promtool check metrics <"$testdir/metrics.txt" ||
    fail "promtool check metrics refused the text"
val () { awk -v k="$1" '$1 == k { print $2 }' "$testdir/metrics.txt"; }
check () {
    [ "$(val "$1")" = "$2" ] || { grep "$(cut -d'{' -f1 <<<"$1")" "$testdir/metrics.txt" >&2
                                  fail "$1 is '$(val "$1")', expected $2"; }
}
check 'strata_volume_requests_total{volume="m",type="ssd",op="write"}' 256
check 'strata_volume_requests_total{volume="m",type="ssd",op="read"}' 256
check 'strata_volume_bytes_total{volume="m",type="ssd",op="write"}' 16777216
check 'strata_volume_bytes_total{volume="m",type="ssd",op="read"}' 16777216
check 'strata_volume_latency_seconds_count{volume="m",type="ssd",op="read"}' 256
check 'strata_volume_errors_total{volume="m",type="ssd"}' 0
check 'strata_volume_in_flight_requests{volume="m",type="ssd"}' 0
check 'strata_volume_requests_total{volume="idle",type="hdd",op="read"}' 0
check 'strata_volume_budget_iops{volume="m",type="ssd"}' 3000
check 'strata_volume_budget_bytes_per_second{volume="idle",type="hdd"}' 50000000
check 'strata_pool_used_bytes{tier="hot"}' 16777216
check 'strata_pool_price_per_gigabyte_month{tier="hot"}' 0.08
grep -q '^strata_volume_latency_seconds{volume="m",type="ssd",op="read",quantile="0.99"} ' \
    "$testdir/metrics.txt" || fail "no p99 read latency"
# The CLI reads the same counters.
m="$(strata_cli metrics volume m --json)"
[ "$(json_get "$m" 'j["requests"]["write"]')" = 256 ] || fail "metrics volume: $m"
[ "$(json_get "$m" 'j["bytes"]["read"]')" = 16777216 ] || fail "metrics volume: $m"
strata_cli volume status m | grep -q "256 read, 256 write" || fail "volume status"
expect_status 0 "metrics --watch" strata_cli metrics volume m --watch --interval 0.2 --count 2
[ "$(grep -c IOPS <<<"$out")" -ge 1 ] || fail "--watch printed no header: $out"
# Off by default: a second daemon without the option has no HTTP port.
stratad --dump-config --pool "$pool" | grep -qx 'metrics_listen=' ||
    fail "metrics are on by default"
stratad_alive
