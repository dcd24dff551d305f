#!/bin/bash
# qemu-io pattern writes and reads over NBD: patterns read back, an
# unwritten area reads as zero, a wrong pattern is detected, discard and
# write -z read as zero, and aio writes with flush survive reconnects.
source "$(dirname "$0")/functions.sh"
requires qemu-io --version

make_pool
start_stratad "$pool"
strata_cli volume create vol1 --size 32M
u="$(uri vol1)"

qio () {
    local o
    o="$(qemu-io -f raw "$@" "$u" 2>&1)" || { echo "$o" >&2; return 1; }
    # qemu-io reports verification failures on stdout and still exits 0.
    if grep -qiE 'pattern verification failed|error|failed' <<<"$o"; then
        echo "$o" >&2
        return 1
    fi
}

qio -c 'write -P 0xab 0 1M' -c 'write -P 0xcd 1M 64k' -c 'write -P 0xef 5M 512' \
    -c 'write -P 0x12 7M 3M' -c 'flush' || fail "pattern writes"
qio -c 'read -P 0xab 0 1M' -c 'read -P 0xcd 1M 64k' -c 'read -P 0xef 5M 512' \
    -c 'read -P 0x12 7M 3M' -c 'read -P 0 2M 3M' -c 'read -P 0 20M 12M' ||
    fail "pattern reads"

# A wrong pattern must be detected (this test can fail).
if qio -c 'read -P 0xac 0 1M'; then fail "qemu-io accepted a wrong pattern"; fi

# Discard and write zeroes read back as zero.
qio -c 'discard 0 512k' -c 'write -z 7M 1M' -c 'flush' || fail "discard/zero"
qio -c 'read -P 0 0 512k' -c 'read -P 0xab 512k 512k' -c 'read -P 0 7M 1M' \
    -c 'read -P 0x12 8M 2M' || fail "reads after discard/zero"

# Many small aio writes, one flush, then read back in a new connection.
cmds=()
for i in $(seq 0 63); do cmds+=(-c "aio_write -P $(( i + 1 )) $(( 12 * 1048576 + i * 4096 )) 4k"); done
qio "${cmds[@]}" -c 'aio_flush' -c 'flush' || fail "aio writes"
cmds=()
for i in $(seq 0 63); do cmds+=(-c "read -P $(( i + 1 )) $(( 12 * 1048576 + i * 4096 )) 4k"); done
qio "${cmds[@]}" || fail "reads of the aio writes"
stratad_alive
