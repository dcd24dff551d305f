#!/bin/bash
# nbdcopy round trip: a random file copied into a volume and back out
# is identical; a sparse file's holes stay holes on the volume.
source "$(dirname "$0")/functions.sh"
requires nbdcopy --version
requires nbdinfo --version

make_pool
start_stratad "$pool"
strata_cli volume create vol1 --size 32M

# 32M: random data with a 4M hole in the middle (sparse).
head -c 14M /dev/urandom >"$testdir/in"
truncate -s 18M "$testdir/in"
head -c 14M /dev/urandom >>"$testdir/in"
[ "$(stat -c %s "$testdir/in")" = 33554432 ] || fail "test file has the wrong size"

nbdcopy "$testdir/in" "$(uri vol1)"
nbdcopy "$(uri vol1)" "$testdir/out"
cmp "$testdir/in" "$testdir/out" || fail "data copied back differs"

# Copy again with several connections and requests in flight, to a
# second volume, then compare the two volumes directly.
strata_cli volume create vol2 --size 32M
nbdcopy --connections=4 --requests=16 "$(uri vol1)" "$(uri vol2)"
nbdcopy "$(uri vol2)" "$testdir/out2"
cmp "$testdir/in" "$testdir/out2" || fail "volume-to-volume copy differs"

# nbdcopy turns zero blocks into holes or write-zeroes requests, and
# unwritten ranges cost nothing, so the hole in the middle of the input
# is a hole in vol2.
nbdinfo --map "$(uri vol2)" |
    awk '$1 < 18874368 && $1 + $2 > 14680064 && $3 == 0 { bad = 1 } END { exit bad }' ||
    { nbdinfo --map "$(uri vol2)"; fail "the zero range 14M..18M was allocated on vol2"; }
stratad_alive
