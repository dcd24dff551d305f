#!/bin/bash
# nbdinfo --list shows every volume as an export, with its size, in
# text and in JSON; a new volume shows up at once and a deleted one goes.
source "$(dirname "$0")/functions.sh"
requires nbdinfo --version

make_pool
start_stratad "$pool"
strata_cli volume create alpha --size 16M
strata_cli volume create beta --size 64M

out="$(nbdinfo --list "$(uri "")")"
grep -q 'export="alpha"' <<<"$out" || fail "alpha missing from nbdinfo --list: $out"
grep -q 'export="beta"' <<<"$out" || fail "beta missing from nbdinfo --list: $out"

json="$(nbdinfo --list --json "$(uri "")")"
[ "$(json_get "$json" 'sorted(e["export-name"] for e in j["exports"])')" = '["alpha", "beta"]' ] ||
    fail "nbdinfo --list --json exports: $json"
[ "$(json_get "$json" '[e["export-size"] for e in j["exports"] if e["export-name"] == "alpha"][0]')" = 16777216 ] ||
    fail "alpha size in --list --json: $json"
[ "$(json_get "$json" '[e["export-size"] for e in j["exports"] if e["export-name"] == "beta"][0]')" = 67108864 ] ||
    fail "beta size in --list --json: $json"

strata_cli volume create gamma --size 4M
nbdinfo --list "$(uri "")" | grep -q 'export="gamma"' || fail "new volume gamma not listed"
strata_cli volume delete alpha
if nbdinfo --list "$(uri "")" | grep -q 'export="alpha"'; then
    fail "deleted volume alpha still listed"
fi
stratad_alive
