#!/bin/bash
# Alarms raise and clear events: a volume's own rule on IOPS (strata
# alarm set) and a volume type's rule on throttling (config file), each
# raised under load and cleared once the load stops.
source "$(dirname "$0")/functions.sh"
requires fio --version
fio --enghelp 2>/dev/null | grep -qw nbd || skip "fio has no nbd engine"

make_pool
cat >"$testdir/strata.yaml" <<YAML
volume_types:
  small: {iops: 200, alarm_throttled: 50}
YAML
start_stratad "$pool" --config "$testdir/strata.yaml"
strata_cli volume create fast --size 64M --iops 400
strata_cli volume create slow --size 64M --type small
strata_cli alarm set fast --metric iops --above 200 --clear-below 50 --for 2
expect_refusal "unknown alarm metric" "bad metric" \
    strata_cli alarm set fast --metric speed --above 1
expect_refusal "never stay raised" "clear above threshold" \
    strata_cli alarm set fast --metric iops --above 10 --clear-below 20

list="$(strata_cli alarm list --json)"
[ "$(json_get "$list" 'sorted((a["volume"], a["metric"], a["source"]) for a in j["alarms"])')" = \
  '[["fast", "iops", "volume"], ["slow", "throttled", "type"]]' ] || fail "alarm list: $list"

fio --ioengine=nbd --rw=randread --bs=4k --iodepth=8 --time_based --runtime=5 \
    --size=64M --name=fast --uri="$(uri fast)" --name=slow --uri="$(uri slow)" \
    >"$testdir/fio.log" 2>&1 || { cat "$testdir/fio.log"; fail "fio failed"; }
raised () { strata_cli events list --type alarm.raised --volume "$1" | grep -q "$2"; }
cleared () { strata_cli events list --type alarm.cleared --volume "$1" | grep -q "$2"; }
raised fast iops || fail "no alarm.raised for fast iops: $(strata_cli events list)"
raised slow throttled || fail "no alarm.raised for slow throttled: $(strata_cli events list)"
wait_for 15 "alarm on fast to clear" cleared fast iops
wait_for 15 "alarm on slow to clear" cleared slow throttled
# Exactly one raise and one clear each: hysteresis, no flapping.
n="$(strata_cli events list --type alarm --json)"
[ "$(json_get "$n" 'len([e for e in j["events"] if e["type"] in ("alarm.raised", "alarm.cleared")])')" = 4 ] ||
    fail "expected 2 raises and 2 clears: $n"
strata_cli alarm clear fast --metric iops
[ "$(json_get "$(strata_cli alarm list fast --json)" 'len(j["alarms"])')" = 0 ] ||
    fail "alarm clear left a rule"
stratad_alive
