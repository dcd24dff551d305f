#!/bin/bash
# A second daemon is refused a Unix socket a live daemon serves, and
# takes over the socket file a killed daemon left behind at once, even
# right after kill -9 (while the kernel may still be tearing the old
# socket down).
source "$(dirname "$0")/functions.sh"
requires nbdinfo --version

make_pool
first="$pool"
start_stratad "$first"
make_pool
second="$pool"

# Live: refused, with a message that names the socket; the first keeps
# serving.
expect_refusal "another server is listening there" "second daemon on a live socket" \
    stratad --foreground --pool "$second" --unix "$sock" \
            --admin-socket "$testdir/second-admin.sock"
nbdinfo --list "nbd+unix:///?socket=$sock" >/dev/null || fail "the first daemon stopped serving"

# Killed: the socket file stays behind; a new daemon on another pool
# replaces it straight away.  Repeated, since the race is short.
for i in 1 2 3 4 5; do
    kill9_stratad
    [ -S "$sock" ] || fail "kill -9 removed the socket file (round $i)"
    start_stratad "$first"
done
stratad_alive
