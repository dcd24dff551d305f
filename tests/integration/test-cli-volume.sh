#!/bin/bash
# The admin CLI's happy paths: every command, size units, labels and
# label filtering, and --json output that parses, with the fields the
# admin protocol documents.
source "$(dirname "$0")/functions.sh"
requires nbdsh --version

make_pool
start_stratad "$pool"

j () { out="$(strata_cli "$@" --json)" || fail "strata $* --json exited $?: $out"; json_get "$out" 'j' >/dev/null; echo "$out"; }
jget () { json_get "$1" "$2"; }

# Units: K M G, fractions, a bare byte count, an iB suffix.
strata_cli volume create u-bytes --size 1048576
strata_cli volume create u-k --size 512K
strata_cli volume create u-m --size 64M
strata_cli volume create u-g --size 1G
strata_cli volume create u-frac --size 1.5G
strata_cli volume create u-mib --size 8MiB
for v in u-bytes:1048576 u-k:524288 u-m:67108864 u-g:1073741824 u-frac:1610612736 u-mib:8388608; do
    name=${v%%:*} want=${v#*:}
    got="$(jget "$(j volume show "$name")" 'j["size"]')"
    [ "$got" = "$want" ] || fail "volume $name: size $got, expected $want"
    [ "$(nbdinfo --size "$(uri "$name")")" = "$want" ] || fail "export $name has the wrong size"
done

# Types and labels.
types="$(j type list)"
[ "$(jget "$types" 'sorted(t["name"] for t in j["types"])[:2]')" = '["hdd", "ssd"]' ] ||
    fail "type list: $types"
for f in name iops throughput tier rotational max_iops max_throughput iops_per_gib; do
    [ "$(jget "$types" "all(\"$f\" in t for t in j[\"types\"])")" = true ] ||
        fail "type list: a type lacks $f: $types"
done
strata_cli type list | grep -q ssd || fail "type list (text) does not show ssd"

strata_cli volume create db1 --size 16M --type ssd --label app=db --label tier=gold
strata_cli volume create db2 --size 16M --type hdd --label app=db --label tier=bronze
strata_cli volume create web --size 16M --label app=web
show="$(j volume show db1)"
for f in name id size type labels allocated extents created connections; do
    [ "$(jget "$show" "\"$f\" in j")" = true ] || fail "volume show lacks $f: $show"
done
[ "$(jget "$show" 'j["labels"]')" = '{"app": "db", "tier": "gold"}' ] || fail "labels: $show"
[ "$(jget "$show" 'j["type"]')" = ssd ] || fail "type: $show"
[ "$(jget "$(j volume show db2)" 'j["type"]')" = hdd ] || fail "db2 type"
[ "$(jget "$show" 'j["allocated"]')" = 0 ] || fail "new volume has allocated space: $show"
[ "$(jget "$show" 'j["connections"]')" = 0 ] || fail "connections: $show"
now="$(date +%s)"
[ "$(jget "$show" "abs(j['created'] - $now) < 600")" = true ] || fail "created is not now: $show"
id1="$(jget "$show" 'j["id"]')"
[ "$id1" != "$(jget "$(j volume show db2)" 'j["id"]')" ] || fail "two volumes share an id"

names () { jget "$(j volume list "$@")" '" ".join(v["name"] for v in (j["volumes"] if isinstance(j, dict) else j))'; }
[ "$(names)" = "db1 db2 u-bytes u-frac u-g u-k u-m u-mib web" ] || fail "volume list (name order): $(names)"
[ "$(names --label app=db)" = "db1 db2" ] || fail "--label app=db: $(names --label app=db)"
[ "$(names --label app=db --label tier=gold)" = "db1" ] || fail "two labels: $(names --label app=db --label tier=gold)"
[ "$(names --label app=nothing)" = "" ] || fail "--label app=nothing: $(names --label app=nothing)"
[ "$(names --label tier=bronze)" = "db2" ] || fail "--label tier=bronze"
strata_cli volume list | grep -q db1 || fail "volume list (text) lacks db1"
strata_cli volume list --label app=web | grep -q web || fail "volume list --label (text)"
if strata_cli volume list --label app=web | grep -q db1; then fail "text list --label app=web shows db1"; fi
strata_cli volume show db1 | grep -q db1 || fail "volume show (text)"

# allocated and extents follow writes; connections counts clients.
nbdsh -u "$(uri db1)" -c 'h.pwrite(b"a" * 131072, 0); h.pwrite(b"b" * 65536, 1 << 20); h.flush()'
show="$(j volume show db1)"
[ "$(jget "$show" 'j["allocated"]')" = 196608 ] || fail "allocated after 192K of writes: $show"
[ "$(jget "$show" 'j["extents"]')" = 2 ] || fail "extents after two separate writes: $show"
nbdsh -u "$(uri db1)" -c "
import subprocess, json
out = subprocess.run(['strata', '--socket', '$admin', 'volume', 'show', 'db1', '--json'],
                     capture_output=True, text=True, check=True).stdout
assert json.loads(out)['connections'] == 1, out
"

# pool status and check.
st="$(j pool status)"
for f in uuid path format_version chunk_size capacity used free volumes extents map_memory journal_bytes pending_chunks recovered; do
    [ "$(jget "$st" "\"$f\" in j")" = true ] || fail "pool status lacks $f: $st"
done
[ "$(jget "$st" 'j["chunk_size"]')" = 65536 ] || fail "chunk size: $st"
[ "$(jget "$st" 'j["volumes"]')" = 9 ] || fail "volume count: $st"
[ "$(jget "$st" 'j["used"] >= 196608 and j["used"] + j["free"] == j["capacity"]')" = true ] ||
    fail "used/free/capacity: $st"
[ "$(jget "$st" 'j["recovered"]')" = false ] || fail "a fresh pool says recovered: $st"
strata_cli pool status | grep -qi "$(jget "$st" 'j["uuid"]')" || fail "pool status (text) lacks the uuid"
ck="$(j pool check)"
[ "$(jget "$ck" 'j["ok"]')" = true ] || fail "pool check: $ck"
[ "$(jget "$ck" 'j["problems"]')" = '[]' ] || fail "pool check problems: $ck"

# Resize (grow, grow by +, shrink with force) and delete.
strata_cli volume resize web --size 32M
[ "$(jget "$(j volume show web)" 'j["size"]')" = 33554432 ] || fail "resize to 32M"
strata_cli volume resize web --size +16M
[ "$(jget "$(j volume show web)" 'j["size"]')" = 50331648 ] || fail "resize by +16M"
strata_cli volume resize web --size 8M --force
[ "$(jget "$(j volume show web)" 'j["size"]')" = 8388608 ] || fail "shrink to 8M"
r="$(j volume resize web --size 12M)"
[ "$(jget "$r" 'j["size"]')" = 12582912 ] || fail "resize --json result: $r"
d="$(j volume delete web)"
[ "$(jget "$d" 'j["name"]')" = web ] || fail "delete --json result: $d"
[ "$(names --label app=web)" = "" ] || fail "web still listed after delete"
c="$(j volume create newv --size 4M)"
[ "$(jget "$c" 'j["name"]')" = newv ] || fail "create --json result: $c"

# --help and --version work.
strata --help | grep 'volume create' >/dev/null || fail "strata --help"
strata --version | grep -qE '[0-9]+\.[0-9]+' || fail "strata --version"
strata volume create --help | grep -- '--size' >/dev/null || fail "strata volume create --help"
stratad_alive
