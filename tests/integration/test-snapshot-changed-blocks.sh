#!/bin/bash
# Changed-block tracking for incremental backup: the NBD meta context
# strata:changed:SNAP marks exactly the 64 KiB chunks written, trimmed
# or zeroed since SNAP (value 1; 0 elsewhere), for a volume, between two
# snapshots, and for a clone against the snapshot it came from; what it
# marks unchanged reads the same in both; it agrees with `strata
# snapshot diff --json`, with base:allocation negotiated alongside, and
# with qemu-img map's x-dirty-bitmap (changed = "data": false).
source "$(dirname "$0")/functions.sh"
requires_nbd_python
requires nbdinfo --version

K=1024
M=$(( 1024 * K ))
make_pool
start_stratad "$pool"
strata_cli volume create vol --size 16M >/dev/null

# Data before the first snapshot: 0x11 over the first 256K, at 8M and
# at 15M.
nbdsh -u "$(uri vol)" -c "
h.pwrite(b'\x11' * (256 * $K), 0)
h.pwrite(b'\x11' * (128 * $K), 8 * $M)
h.pwrite(b'\x11' * (64 * $K), 15 * $M)
h.flush()"
strata_cli snapshot create vol s1 >/dev/null

# Changes after s1, and the chunks they touch (R1).
nbdsh -u "$(uri vol)" -c "
h.pwrite(b'\x22' * (4 * $K), 1 * $M)                    # one chunk
h.pwrite(b'\x22' * $K, 3 * $M + 64 * $K - 512)          # across a chunk boundary
h.pwrite(b'\x22' * (200 * $K), 5 * $M + 10 * $K)        # four chunks, unaligned
h.trim(64 * $K, 64 * $K)                                # trim over data
h.zero(64 * $K, 8 * $M + 64 * $K)                       # zeroes over data
h.pwrite(b'\x22' * (4 * $K), 16 * $M - 4 * $K)          # the last chunk
h.flush()"
R1="$(( 64 * K )):$(( 64 * K ))
$(( 1 * M )):$(( 64 * K ))
$(( 3 * M )):$(( 128 * K ))
$(( 5 * M )):$(( 256 * K ))
$(( 8 * M + 64 * K )):$(( 64 * K ))
$(( 16 * M - 64 * K )):$(( 64 * K ))"

# changed_map URI CONTEXT: the context's map as "offset:length" lines of
# the runs with value 1, merged; the map must cover the export exactly,
# with values 0 and 1 only.
changed_map () {
    nbdinfo --map="$2" --json "$1" | "$PYTHON" -c '
import json, sys
size = int(sys.argv[1])
end, out = 0, []
for e in json.load(sys.stdin):
    assert e["offset"] == end, "map has a gap or overlap at %d" % end
    assert e["type"] in (0, 1), "map has value %r at %d" % (e["type"], end)
    end = e["offset"] + e["length"]
    if e["type"] == 1:
        if out and out[-1][0] + out[-1][1] == e["offset"]:
            out[-1][1] += e["length"]
        else:
            out.append([e["offset"], e["length"]])
assert end == size, "map ends at %d, not at the export size %d" % (end, size)
for o in out:
    print("%d:%d" % tuple(o))' "$(nbdinfo --size "$1")" || fail "nbdinfo --map=$2 $1 failed or is malformed"
}
# expect_changed URI CONTEXT WANT: the changed runs must be WANT.
expect_changed () {
    local got
    got="$(changed_map "$1" "$2")"
    [ "$got" = "$3" ] || fail "nbdinfo --map=$2 $1:
$got
expected:
$3"
}
# diff_ranges FROM TO: strata snapshot diff --json as "offset:length"
# lines, after checking its other fields.
diff_ranges () {
    local j
    j="$(strata_cli snapshot diff "$1" "$2" --json)" || fail "strata snapshot diff $1 $2 failed"
    json_get "$j" '("\n".join("%d:%d" % (r["offset"], r["length"]) for r in j["ranges"])
        if j["chunk_size"] == 65536 and j["size"] == 16777216 and
           j["changed_bytes"] == sum(r["length"] for r in j["ranges"]) and
           j["from"] == "'"$1"'" and j["to"] == "'"$2"'"
        else "bad header: %s" % {k: v for k, v in j.items() if k != "ranges"})'
}
expect_diff () {
    local got
    got="$(diff_ranges "$1" "$2")"
    [ "$got" = "$3" ] || fail "strata snapshot diff $1 $2 --json:
$got
expected:
$3"
}
# same_where_unchanged A B WANT: exports A and B read the same in every
# chunk outside the ranges WANT and differently in every chunk inside
# (each change in this test makes the data different).
same_where_unchanged () {
    "$PYTHON" - "$(uri "$1")" "$(uri "$2")" "$3" <<'PY' || fail "$1 and $2: data and changed map disagree"
import sys, nbd
def read(u):
    h = nbd.NBD()
    h.connect_uri(u)
    d = h.pread(h.get_size(), 0)
    h.shutdown()
    return d
a, b = read(sys.argv[1]), read(sys.argv[2])
C = 65536
changed = set()
for line in sys.argv[3].split():
    off, n = map(int, line.split(":"))
    changed.update(range(off // C, (off + n) // C))
for c in range(len(a) // C):
    same = a[c * C:(c + 1) * C] == b[c * C:(c + 1) * C]
    if c in changed and same:
        sys.exit("chunk at %d is marked changed but reads the same" % (c * C))
    if c not in changed and not same:
        sys.exit("chunk at %d is marked unchanged but differs" % (c * C))
PY
}

# The volume against s1.
nbdinfo --json "$(uri vol)" | grep -q '"strata:changed:s1"' ||
    fail "nbdinfo does not list the context strata:changed:s1 for vol: $(nbdinfo "$(uri vol)")"
expect_changed "$(uri vol)" strata:changed:s1 "$R1"
expect_changed "$(uri vol)" strata:changed:vol@s1 "$R1"
expect_diff vol@s1 vol "$R1"
same_where_unchanged vol@s1 vol "$R1"

# A second snapshot, then more changes (R2), one of them in a chunk
# already in R1.
strata_cli snapshot create vol s2 >/dev/null
nbdsh -u "$(uri vol)" -c "
h.pwrite(b'\x33' * (64 * $K), 2 * $M)
h.pwrite(b'\x33' * (4 * $K), 5 * $M + 128 * $K)
h.trim(128 * $K, 128 * $K)
h.flush()"
R2="$(( 128 * K )):$(( 128 * K ))
$(( 2 * M )):$(( 64 * K ))
$(( 5 * M + 128 * K )):$(( 64 * K ))"
R12="$(( 64 * K )):$(( 192 * K ))
$(( 1 * M )):$(( 64 * K ))
$(( 2 * M )):$(( 64 * K ))
$(( 3 * M )):$(( 128 * K ))
$(( 5 * M )):$(( 256 * K ))
$(( 8 * M + 64 * K )):$(( 64 * K ))
$(( 16 * M - 64 * K )):$(( 64 * K ))"
# Between two snapshots: the export is the newer one.
expect_changed "$(uri vol@s2)" strata:changed:s1 "$R1"
expect_changed "$(uri vol@s2)" strata:changed:vol@s1 "$R1"
expect_diff vol@s1 vol@s2 "$R1"
expect_changed "$(uri vol)" strata:changed:s2 "$R2"
expect_diff vol@s2 vol "$R2"
expect_changed "$(uri vol)" strata:changed:s1 "$R12"
expect_diff vol@s1 vol "$R12"
same_where_unchanged vol@s2 vol "$R2"
same_where_unchanged vol@s1 vol@s2 "$R1"
# No snapshot, no context.
if nbdinfo --map=strata:changed:nosuch "$(uri vol)" >/dev/null 2>&1; then
    fail "nbdinfo --map=strata:changed:nosuch succeeded"
fi

# A clone against the snapshot it came from.
strata_cli volume create clone --from-snapshot vol@s1 >/dev/null
expect_changed "$(uri clone)" strata:changed:vol@s1 ""
nbdsh -u "$(uri clone)" -c "h.pwrite(b'\x44' * (4 * $K), 7 * $M + 4 * $K); h.flush()"
expect_changed "$(uri clone)" strata:changed:vol@s1 "$(( 7 * M )):$(( 64 * K ))"

# Both contexts on one connection, as a backup tool would ask: each
# block status reply answers both, and strata:changed is still R12.
"$PYTHON" - "$(uri vol)" "$R12" <<'PY' || fail "block status with base:allocation and strata:changed:s1 together"
import sys, nbd
h = nbd.NBD()
h.add_meta_context(nbd.CONTEXT_BASE_ALLOCATION)
h.add_meta_context("strata:changed:s1")
h.connect_uri(sys.argv[1])
assert h.can_meta_context(nbd.CONTEXT_BASE_ALLOCATION), "base:allocation not negotiated"
assert h.can_meta_context("strata:changed:s1"), "strata:changed:s1 not negotiated"
size = h.get_size()
runs = {"base:allocation": [], "strata:changed:s1": []}
pos = 0
while pos < size:
    got = {}
    def cb(meta, offset, entries, err):
        assert offset == pos, (offset, pos)
        got[meta] = [(entries[i], entries[i + 1]) for i in range(0, len(entries), 2)]
        return 0
    h.block_status(size - pos, pos, cb)
    assert set(got) == set(runs), "contexts in the reply: %r" % list(got)
    # The shorter answer bounds the next request.
    adv = min(sum(n for n, _ in got[m]) for m in got)
    for m in got:
        left = adv
        for n, f in got[m]:
            if left == 0:
                break
            take = min(n, left)
            runs[m].append((pos + adv - left, take, f))
            left -= take
    pos += adv
changed, last = [], None
for off, n, f in runs["strata:changed:s1"]:
    if f == 1:
        if changed and changed[-1][0] + changed[-1][1] == off:
            changed[-1][1] += n
        else:
            changed.append([off, n])
got = "\n".join("%d:%d" % tuple(c) for c in changed)
assert got == sys.argv[2], "strata:changed:s1 with base:allocation:\n%s" % got
# base:allocation still says where data is: 0..64K (0x11, kept) is data.
assert runs["base:allocation"][0][2] & 1 == 0, runs["base:allocation"][:3]
PY

# qemu, if it is here: x-dirty-bitmap reports the changed areas as
# "data": false, the rest as data.
if qemu-img --version >/dev/null 2>&1; then
    qemu-img map --output=json --image-opts \
        "driver=nbd,server.type=unix,server.path=$sock,export=vol,x-dirty-bitmap=strata:changed:s1" \
        >"$testdir/qmap.json" || fail "qemu-img map with x-dirty-bitmap=strata:changed:s1 failed"
    got="$("$PYTHON" -c '
import json, sys
out = []
for e in json.load(open(sys.argv[1])):
    if not e["data"]:
        if out and out[-1][0] + out[-1][1] == e["start"]:
            out[-1][1] += e["length"]
        else:
            out.append([e["start"], e["length"]])
print("\n".join("%d:%d" % tuple(o) for o in out))' "$testdir/qmap.json")"
    [ "$got" = "$R12" ] || fail "qemu-img map x-dirty-bitmap=strata:changed:s1:
$got
expected:
$R12"
else
    echo "$t: no qemu-img; the x-dirty-bitmap check is skipped"
fi
expect_status 0 "pool check" strata_cli pool check
stratad_alive
