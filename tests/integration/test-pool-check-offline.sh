#!/bin/bash
# strata pool check --pool PATH checks a pool directly, with stratad
# stopped: clean on a healthy pool (exit 0, --json {ok: true}); refused
# (exit 1, saying why) while stratad holds the pool; exit 1 on a damaged
# pool, naming problems; pool init refuses an existing pool.
source "$(dirname "$0")/functions.sh"
requires nbdsh --version

make_pool
start_stratad "$pool"
strata_cli volume create vol1 --size 16M
nbdsh -u "$(uri vol1)" -c 'h.pwrite(b"\x10" * (2 << 20), 0); h.flush()'
expect_refusal 'stratad|busy|lock|in use|running|held' "offline check while stratad runs" \
    strata pool check --pool "$pool"
stop_stratad

expect_status 0 "offline check of a healthy pool" strata pool check --pool "$pool"
out="$(strata pool check --pool "$pool" --json)" || fail "pool check --pool --json exited $?"
[ "$(json_get "$out" 'j["ok"]')" = true ] || fail "pool check --json: $out"
[ "$(json_get "$out" 'j["problems"]')" = '[]' ] || fail "pool check --json: $out"

# init on an existing pool or a non-empty directory is refused.
expect_refusal 'exist|empty|pool' "pool init on an existing pool" strata pool init "$pool"
expect_status 1 "pool check of a directory that is not a pool" strata pool check --pool "$testdir"
# Sizes for init are parsed with units, and bad ones refused.
mkdir "$testdir/p2"
strata pool init --chunk-size 128K --size 1G "$testdir/p2/pool"
st=0; out="$(strata pool init --chunk-size 3000 "$testdir/p3" 2>&1)" || st=$?
[ "$st" -eq 1 ] || [ "$st" -eq 2 ] || fail "chunk size 3000 accepted (status $st): $out"
grep -qi chunk <<<"$out" || fail "chunk size message: $out"

# Damage: a missing data file must be found.
data="$(find "$pool" -maxdepth 1 -name '*.data' | head -1)"
if [ -n "$data" ]; then
    cp -a "$pool" "$testdir/damaged"
    : >"$testdir/damaged/$(basename "$data")"
    st=0; out="$(strata pool check --pool "$testdir/damaged" 2>&1)" || st=$?
    [ "$st" -eq 1 ] || fail "check of a pool whose data file was truncated: status $st: $out"
    [ -n "$out" ] || fail "check of a damaged pool printed nothing"
fi
