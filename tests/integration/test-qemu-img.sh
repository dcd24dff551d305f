#!/bin/bash
# qemu-img convert into a volume over NBD, qemu-img compare against the
# source, qemu-img info shows the right virtual size.
source "$(dirname "$0")/functions.sh"
requires qemu-img --version

make_pool
start_stratad "$pool"
strata_cli volume create disk --size 64M
u="$(uri disk)"

# A qcow2 source with data in a few places.
qemu-img create -f qcow2 "$testdir/src.qcow2" 64M >/dev/null
qemu-io -f qcow2 -c 'write -P 0x5a 0 1M' -c 'write -P 0xa5 10M 3M' \
        -c 'write -P 0x01 63M 1M' "$testdir/src.qcow2" >/dev/null

info="$(qemu-img info --output=json "$u")"
[ "$(json_get "$info" 'j["virtual-size"]')" = 67108864 ] || fail "qemu-img info: $info"

qemu-img convert -p -n -f qcow2 -O raw "$testdir/src.qcow2" "$u" >/dev/null
qemu-img compare -f qcow2 -F raw "$testdir/src.qcow2" "$u" ||
    fail "qemu-img compare after convert found a difference"

# A raw random image, converted with several coroutines and
# out-of-order writes.
head -c 64M /dev/urandom >"$testdir/rand.raw"
qemu-img convert -n -m 8 -W -f raw -O raw "$testdir/rand.raw" "$u"
qemu-img compare -f raw -F raw "$testdir/rand.raw" "$u" ||
    fail "qemu-img compare after a random convert found a difference"

# And back out of the volume.
qemu-img convert -f raw -O raw "$u" "$testdir/back.raw"
cmp "$testdir/rand.raw" "$testdir/back.raw" || fail "image read back differs"

# compare notices a real difference (the comparison can fail).
qemu-io -f raw -c 'write -P 0x77 5M 4k' "$u" >/dev/null
if qemu-img compare -q -f raw -F raw "$testdir/rand.raw" "$u"; then
    fail "qemu-img compare did not notice a changed block"
fi
stratad_alive
