#!/bin/bash
# nbdinfo on one volume: its size, and the flags and block sizes the
# server advertises (flush, FUA, trim, zero, multi-conn, DF, max 32M).
source "$(dirname "$0")/functions.sh"
requires nbdinfo --version

make_pool
start_stratad "$pool"
strata_cli volume create vol1 --size 100M

json="$(nbdinfo --json "$(uri vol1)")"
e='j["exports"][0]'
check () {
    local expr=$1 want=$2 got
    got="$(json_get "$json" "$expr")"
    [ "$got" = "$want" ] || fail "nbdinfo --json: $expr is $got, expected $want; output: $json"
}
check "$e[\"export-name\"]" vol1
check "$e[\"export-size\"]" 104857600
check "$e[\"is_read_only\"]" false
check "$e[\"is_rotational\"]" false
for f in can_flush can_fua can_trim can_zero can_multi_conn can_df; do
    check "$e[\"$f\"]" true
done
check "j[\"protocol\"]" newstyle-fixed
check "j[\"TLS\"]" false
# Block sizes: minimum at most 512, preferred 4096, maximum 32 MiB.
[ "$(json_get "$json" "$e[\"block_size_minimum\"] <= 512")" = true ] ||
    fail "block_size_minimum > 512: $json"
check "$e[\"block_size_preferred\"]" 4096
check "$e[\"block_size_maximum\"]" 33554432

# nbdinfo --size agrees, and a volume of type hdd is rotational.
[ "$(nbdinfo --size "$(uri vol1)")" = 104857600 ] || fail "nbdinfo --size"
strata_cli volume create spin --size 8M --type hdd
nbdinfo --is rotational "$(uri spin)" || fail "hdd volume is not advertised as rotational"
if nbdinfo --is rotational "$(uri vol1)"; then fail "ssd volume advertised as rotational"; fi

# An unknown export is refused.
if nbdinfo "$(uri nosuch)" >/dev/null 2>&1; then fail "nbdinfo on an unknown export succeeded"; fi
stratad_alive
