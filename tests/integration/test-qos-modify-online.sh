#!/bin/bash
# strata volume modify changes a volume's budget while a client stays
# connected: on one connection, reads run at the old budget, then at
# the new one, without reconnecting.
source "$(dirname "$0")/functions.sh"
requires_nbd_python

make_pool
start_stratad "$pool"
strata_cli volume create v --size 64M --iops 100

"$PYTHON" - "$sock" "$admin" <<'PY'
import subprocess, sys, time, nbd
sock, admin = sys.argv[1], sys.argv[2]
h = nbd.NBD()
h.set_export_name("v")
h.connect_unix(sock)
def rate(secs):
    end = time.monotonic() + secs
    n = 0
    while time.monotonic() < end:
        h.pread(4096, (n % 1000) * 4096)
        n += 1
    return n / secs
rate(1.2)                       # spend the burst
r1 = rate(3)
subprocess.run(["strata", "--socket", admin, "volume", "modify", "v",
                "--iops", "400"], check=True)
rate(0.3)                       # the new budget applies within 0.1 s
r2 = rate(3)
print("before %.0f IOPS, after %.0f IOPS" % (r1, r2))
if not 80 <= r1 <= 120:
    sys.exit("FAIL: %.0f IOPS at a budget of 100" % r1)
if not 320 <= r2 <= 480:
    sys.exit("FAIL: %.0f IOPS after modify to 400, same connection" % r2)
h.shutdown()
PY
strata_cli events list --volume v --type volume.modified | grep -q "400 IOPS" ||
    fail "no volume.modified event"
# Refusals name the limit.
expect_refusal "maximum of volume type 'ssd', 16000 IOPS" "too many IOPS" \
    strata_cli volume modify v --iops 20000
expect_refusal "500 IOPS per GiB" "IOPS per GiB" \
    strata_cli volume modify v --iops 5000
expect_refusal "maximum of volume type 'ssd', 1000 MB/s" "too much throughput" \
    strata_cli volume modify v --throughput 2GB
expect_refusal "unknown volume type" "unknown type" \
    strata_cli volume modify v --type nvme
expect_status 2 "modify with nothing to change" strata_cli volume modify v
stratad_alive
