#!/bin/bash
# fio with the nbd engine: random writes then verify (crc32c), four
# jobs at once (four connections) on separate regions of one volume,
# with a mixed sequential job after; every block verifies.
source "$(dirname "$0")/functions.sh"
requires fio --version
fio --enghelp=nbd >/dev/null 2>&1 || skip "fio has no nbd engine"

make_pool
start_stratad "$pool"
strata_cli volume create vol1 --size 64M
u="$(uri vol1)"

run_fio () {
    # In the scratch directory: fio leaves *-verify.state files in the
    # current directory.
    (cd "$testdir" && fio --output="$testdir/fio.out" --output-format=terse --terse-version=3 \
        "$@") || { cat "$testdir/fio.out" >&2; fail "fio $*"; }
    # Terse v3: field 5 is the job's error number.
    awk -F';' '$5 != 0 { print "job " $3 " error " $5; bad = 1 } END { exit bad }' \
        "$testdir/fio.out" || { cat "$testdir/fio.out" >&2; fail "a fio job reported an error"; }
}

# 4 jobs x 16M, each its own region, 4k random writes with verify.
run_fio --name=randverify --ioengine=nbd --uri="$u" \
    --rw=randwrite --bs=4k --iodepth=16 --numjobs=4 \
    --size=16M --offset_increment=16M --io_size=8M \
    --verify=crc32c --do_verify=1 --verify_fatal=1 --verify_backlog=256 \
    --group_reporting=0

# Mixed block sizes, sequential, one job over the whole volume.
run_fio --name=seqverify --ioengine=nbd --uri="$u" \
    --rw=write --bsrange=4k-1m --iodepth=8 --size=64M \
    --verify=crc32c --do_verify=1 --verify_fatal=1

# Four connections writing with a FLUSH every 16 writes (fio's fsync
# on the nbd engine), mixed reads, verify at the end.
run_fio --name=flushers --ioengine=nbd --uri="$u" \
    --rw=randrw --rwmixread=30 --bs=4k --iodepth=8 --numjobs=4 \
    --size=16M --offset_increment=16M --io_size=4M --fsync=16 \
    --verify=crc32c --do_verify=1 --verify_fatal=1

# Verify-only pass in a new job (new connections): the data written by
# a 4-job run is read back and checked by 4 other connections.
run_fio --name=w --ioengine=nbd --uri="$u" --rw=randwrite --bs=64k \
    --iodepth=4 --numjobs=4 --size=16M --offset_increment=16M \
    --verify=crc32c --do_verify=0 --verify_state_save=0 \
    --randseed=1234
run_fio --name=w --ioengine=nbd --uri="$u" --rw=randwrite --bs=64k \
    --iodepth=4 --numjobs=4 --size=16M --offset_increment=16M \
    --verify=crc32c --verify_only=1 --verify_fatal=1 --verify_state_load=0 \
    --randseed=1234
stratad_alive
