#!/bin/bash
# --listen 127.0.0.1 --port N: the TCP listener serves the same volumes
# as the Unix socket (nbd://127.0.0.1:N/NAME), for qemu-img and nbdsh.
source "$(dirname "$0")/functions.sh"
requires nbdsh --version
requires qemu-img --version

make_pool
port="$(free_tcp_port)"
start_stratad "$pool" --listen 127.0.0.1 --port "$port"
strata_cli volume create vol1 --size 16M
tcp="nbd://127.0.0.1:$port/vol1"

nbdsh -u "$tcp" -c 'h.pwrite(b"\x77" * 4096, 8192); h.flush()'
[ "$(nbdsh -u "$(uri vol1)" -c 'print(h.pread(4096, 8192) == b"\x77" * 4096)')" = True ] ||
    fail "a write over TCP is not visible over the Unix socket"
[ "$(nbdinfo --size "$tcp")" = 16777216 ] || fail "nbdinfo --size over TCP"
info="$(qemu-img info --output=json "$tcp")"
[ "$(json_get "$info" 'j["virtual-size"]')" = 16777216 ] || fail "qemu-img info over TCP: $info"
nbdinfo --list "nbd://127.0.0.1:$port" | grep -q 'export="vol1"' || fail "nbdinfo --list over TCP"
# Only loopback: nothing on the wildcard address of another interface.
if ss -ltn 2>/dev/null | awk '{print $4}' | grep -qE "^(0\.0\.0\.0|\*|\[::\]):$port\$"; then
    fail "stratad listens on a wildcard address although --listen 127.0.0.1 was given"
fi
stratad_alive
