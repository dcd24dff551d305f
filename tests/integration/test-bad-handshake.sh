#!/bin/bash
# Malformed handshakes (raw bytes over the Unix socket: wrong magic,
# truncated options, huge option lengths, unknown options, an option
# before the client flags, unknown exports...) get the right option
# error or a closed connection, while another client stays connected
# and keeps working and the daemon stays up.  See bad_input.py.
source "$(dirname "$0")/functions.sh"
requires_nbd_python

make_pool
start_stratad "$pool"
strata_cli volume create vol1 --size 128M
"$PYTHON" "$srcdir/tests/integration/bad_input.py" handshake "$sock" vol1 "$stratad_pid" ||
    fail "see the failed cases above"
stratad_alive
# The daemon still serves new clients normally.
nbdinfo "$(uri vol1)" >/dev/null || fail "nbdinfo after the bad handshakes"
