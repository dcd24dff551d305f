#!/bin/bash
# systemd socket activation (LISTEN_FDS), the path the systemd unit
# uses, driven by libnbd: nbdinfo -- [ stratad ... ] lists and sizes the
# volumes, and nbdsh with connect_systemd_socket_activation reads data
# written earlier and writes data a normal daemon then sees.
source "$(dirname "$0")/functions.sh"
requires nbdinfo --version
requires nbdsh --version

make_pool
start_stratad "$pool"
strata_cli volume create vol1 --size 8M
strata_cli volume create vol2 --size 4M
nbdsh -u "$(uri vol1)" -c 'h.pwrite(b"\x61" * 65536, 0); h.flush()'
stop_stratad

bounded () { timeout 60 "$@"; }
out="$(bounded nbdinfo --list --json -- [ stratad --foreground --pool "$pool" ])" ||
    fail "nbdinfo --list -- [ stratad ] failed: $out"
[ "$(json_get "$out" 'sorted(e["export-name"] for e in j["exports"])')" = '["vol1", "vol2"]' ] ||
    fail "socket-activated export list: $out"

bounded nbdsh -c - <<PY || fail "nbdsh over socket activation"
h.set_export_name("vol1")
h.connect_systemd_socket_activation(["stratad", "--foreground", "--pool", "$pool"])
assert h.get_size() == 8 << 20, h.get_size()
assert h.pread(65536, 0) == b"\x61" * 65536, "data written earlier is not there"
h.pwrite(b"\x62" * 65536, 65536, nbd.CMD_FLAG_FUA)
h.flush()
h.shutdown()
PY
# The subprocess is gone once the handle is closed (it held the pool).
wait_for 30 "the socket-activated stratad to let go of the pool" \
    strata pool check --pool "$pool"

start_stratad "$pool"
[ "$(nbdsh -u "$(uri vol1)" -c 'print(h.pread(65536, 65536) == b"\x62" * 65536)')" = True ] ||
    fail "write made through socket activation is missing"
stratad_alive
