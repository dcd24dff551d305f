#!/bin/bash
# The admin CLI's errors: bad usage exits 2; a refused operation exits 1
# with a sentence naming the problem; and a refused operation changes
# nothing.
source "$(dirname "$0")/functions.sh"
requires nbdsh --version

make_pool
start_stratad "$pool"
strata_cli volume create vol1 --size 16M
strata_cli volume create busy --size 16M

# ---- usage errors: exit 2, with a message --------------------------------
usage () {
    expect_status 2 "usage error: strata $*" strata_cli "$@"
    [ -n "$out" ] || fail "strata $*: exit 2 without a message"
}
usage
usage volume
usage volume explode
usage explode volume
grep -qi "explode" <<<"$out" || fail "unknown command message does not name it: $out"
usage volume create
usage volume create newvol                       # no --size
usage volume create --size 16M                   # no NAME
usage volume create a b --size 16M               # two names
usage volume create newvol --size                # --size without a value
usage volume create newvol --size 16M --bogus
grep -qi "bogus" <<<"$out" || fail "unknown option message does not name it: $out"
usage volume show
usage volume resize vol1                         # no --size
usage volume delete
usage pool init
expect_status 2 "strata --socket without a path" strata --socket

# ---- refusals: exit 1, with a sentence naming the problem ----------------
expect_refusal 'exist|vol1' "duplicate name" strata_cli volume create vol1 --size 16M
expect_refusal 'size' "size not a multiple of 4096" strata_cli volume create odd --size 1000
expect_refusal 'size' "size zero" strata_cli volume create zero --size 0
expect_refusal 'type|floppy' "unknown type" strata_cli volume create t1 --size 16M --type floppy
grep -q floppy <<<"$out" || fail "unknown type message does not name the type: $out"
expect_refusal 'nosuch' "show unknown volume" strata_cli volume show nosuch
expect_refusal 'nosuch' "delete unknown volume" strata_cli volume delete nosuch
expect_refusal 'nosuch' "resize unknown volume" strata_cli volume resize nosuch --size 32M
expect_refusal 'name' "invalid name" strata_cli volume create 'bad/name' --size 16M
expect_refusal 'name' "name starting with -" strata_cli volume create -- -bad --size 16M
expect_refusal 'name' "name with @" strata_cli volume create 'a@b' --size 16M
expect_refusal 'name|long' "name of 200 bytes" strata_cli volume create "$(printf 'x%.0s' $(seq 200))" --size 16M
expect_refusal 'force|shrink' "shrink without --force" strata_cli volume resize vol1 --size 8M
expect_refusal 'size' "resize to 0" strata_cli volume resize vol1 --size 0 --force
expect_refusal 'size' "resize to an odd size" strata_cli volume resize vol1 --size 5000

# A size that is not a size: the CLI cannot parse it.  Either exit code
# is defensible (typo = usage, or refused); it must not be 0 and must
# say what is wrong.
for s in abc 16Q -5M 99999999999999999999; do
    st=0; out="$(strata_cli volume create bad-size --size "$s" 2>&1)" || st=$?
    [ "$st" -eq 1 ] || [ "$st" -eq 2 ] || fail "--size $s: exit $st: $out"
    grep -qi 'size' <<<"$out" || fail "--size $s: message does not mention the size: $out"
done
# A label that is not KEY=VALUE.
st=0; out="$(strata_cli volume create lbl --size 16M --label novalue 2>&1)" || st=$?
[ "$st" -eq 1 ] || [ "$st" -eq 2 ] || fail "--label novalue: exit $st: $out"
grep -qi 'label' <<<"$out" || fail "--label novalue: message does not mention the label: $out"

# Shrinking over written data is refused even with --force.
nbdsh -u "$(uri vol1)" -c 'h.pwrite(b"d" * 4096, 12 << 20); h.flush()'
expect_refusal 'data|written|empty|allocated|mapped' "shrink over written data" \
    strata_cli volume resize vol1 --size 8M --force
# ...but shrinking to just past the data is fine.
strata_cli volume resize vol1 --size $(( (12 << 20) + 65536 )) --force

# Delete with a client attached is refused (EBUSY).
nbdsh -u "$(uri busy)" -c "
import subprocess
p = subprocess.run(['strata', '--socket', '$admin', 'volume', 'delete', 'busy'],
                   capture_output=True, text=True)
assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
msg = (p.stdout + p.stderr).lower()
assert any(w in msg for w in ('client', 'connect', 'busy', 'attached', 'in use', 'open')), msg
h.pwrite(b'x' * 4096, 0)        # still usable after the refusal
"

# No daemon on the socket: exit 1, naming the socket.
expect_refusal "$testdir/no.sock|no.sock" "no daemon" strata --socket "$testdir/no.sock" volume list

# Nothing was changed by all of the above.
list="$(strata_cli volume list --json)"
[ "$(json_get "$list" '" ".join(v["name"] for v in (j["volumes"] if isinstance(j, dict) else j))')" = "busy vol1" ] ||
    fail "refused operations changed the volume list: $list"
[ "$(json_get "$(strata_cli volume show vol1 --json)" 'j["size"]')" = $(( (12 << 20) + 65536 )) ] ||
    fail "vol1 size changed"
[ "$(nbdsh -u "$(uri vol1)" -c 'print(h.pread(4096, 12 << 20) == b"d" * 4096)')" = True ] ||
    fail "vol1 data changed"
# Arguments that are not UTF-8 cannot travel as JSON: refused by name,
# for every command that talks to the daemon.
for cmd in "volume show" "volume delete" "volume resize --size 1M" "volume create --size 1M"; do
    # shellcheck disable=SC2086
    expect_status 2 "non-UTF-8 name: $cmd" strata_cli $cmd $'\xff\xfe'
    grep -q "is not UTF-8 text" <<<"$out" || fail "non-UTF-8 name: $cmd: $out"
done
expect_status 0 "pool check" strata_cli pool check
stratad_alive
