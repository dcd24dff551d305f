#!/bin/bash
# Malformed requests in the transmission phase (raw: unknown commands
# and flags, requests past the end or wrapping, unaligned, zero-length,
# oversized, bad magic, a client that disconnects in the middle of a
# 1 MiB write...) get the right NBD error or a closed connection, while
# another client stays connected and keeps working.  See bad_input.py.
source "$(dirname "$0")/functions.sh"
requires_nbd_python

make_pool
start_stratad "$pool"
strata_cli volume create vol1 --size 128M
"$PYTHON" "$srcdir/tests/integration/bad_input.py" requests "$sock" vol1 "$stratad_pid" ||
    fail "see the failed cases above"
stratad_alive
expect_status 0 "pool check after bad requests" strata_cli pool check
