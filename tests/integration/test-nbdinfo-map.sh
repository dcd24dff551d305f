#!/bin/bash
# nbdinfo --map: a new volume is one hole; written chunks become data;
# a trimmed chunk becomes a hole again and reads as zero.
source "$(dirname "$0")/functions.sh"
requires nbdinfo --version
requires nbdsh --version

make_pool
start_stratad "$pool"
strata_cli volume create vol1 --size 4M
u="$(uri vol1)"

# map JSON -> "offset:length:type" lines, adjacent entries of one type
# merged (type 3 = hole+zero, 0 = data).  It must cover the volume.
map () {
    nbdinfo --map --json "$u" | "$PYTHON" -c '
import json, sys
out = []
end = 0
for e in json.load(sys.stdin):
    assert e["offset"] == end, "map has a gap or overlap at %d" % end
    end = e["offset"] + e["length"]
    if out and out[-1][2] == e["type"]:
        out[-1][1] += e["length"]
    else:
        out.append([e["offset"], e["length"], e["type"]])
for o in out:
    print("%d:%d:%d" % tuple(o))'
}

[ "$(map)" = "0:4194304:3" ] || fail "new volume is not one hole: $(map)"

# Write 64K at 1M and 128K at 2M (chunk-aligned), flush.
nbdsh -u "$u" -c '
h.pwrite(b"\xab" * 65536, 1048576)
h.pwrite(b"\xcd" * 131072, 2097152)
h.flush()'
want="0:1048576:3
1048576:65536:0
1114112:983040:3
2097152:131072:0
2228224:1966080:3"
[ "$(map)" = "$want" ] || fail "map after writes:
$(map)
expected:
$want"

# --totals: 192K data.
tot="$(nbdinfo --map --totals --json "$u")"
[ "$(json_get "$tot" '[e["size"] for e in j if e["type"] == 0][0]')" = 196608 ] ||
    fail "--totals data size: $tot"

# Trim the first 64K of the 128K extent: it must become a hole and read
# as zero; the rest stays data.
nbdsh -u "$u" -c '
h.trim(65536, 2097152)
h.flush()
assert h.pread(65536, 2097152) == bytes(65536), "trimmed range not zero"
assert h.pread(65536, 2097152 + 65536) == b"\xcd" * 65536'
want="0:1048576:3
1048576:65536:0
1114112:1048576:3
2162688:65536:0
2228224:1966080:3"
[ "$(map)" = "$want" ] || fail "map after trim:
$(map)
expected:
$want"
stratad_alive
