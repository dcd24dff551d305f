#!/bin/bash
# Snapshot policies, on the clock of stratad --debug-clock-file: an
# hourly policy takes auto-YYYYMMDD-HHMM snapshots as the clock passes
# each hour (with the policy's tags, created at the scheduled time,
# holding the volume as it was then), keeps only the newest keep-count,
# never removes a snapshot taken by hand, takes one snapshot (not one
# per missed hour) after a jump, and survives a restart; keep-age
# removes the policy's snapshots older than the age at every pass;
# policy show/list/clear, and a cleared policy takes nothing more.
source "$(dirname "$0")/functions.sh"
requires nbdsh --version

make_testdir
clock="$testdir/clock"
H=3600
# 2090-01-01 00:30:00 UTC: later than any real clock, so the manual
# snapshot (real time) sorts before the policy ones.
T0=3786913800
echo "$T0" >"$clock"
make_pool
start_stratad "$pool" --debug-clock-file "$clock"
strata_cli volume create vol --size 4M >/dev/null
# A second volume whose policy shows that the runner has made passes.
strata_cli volume create witness --size 1M >/dev/null

# set_clock T: move the daemon's clock to T.
set_clock () { echo "$1" >"$clock.tmp" && mv "$clock.tmp" "$clock"; }
# auto_name T: the name a policy gives the snapshot it takes at T.
auto_name () { date -u -d "@$1" +auto-%Y%m%d-%H%M; }
# snaps VOLUME: its snapshots as "name:policy:created:tags" lines, in
# the order snapshot list gives (oldest first).
snaps () {
    strata_cli snapshot list "$1" --json | "$PYTHON" -c '
import json, sys
for s in json.load(sys.stdin)["snapshots"]:
    tags = ",".join("%s=%s" % kv for kv in sorted(s["tags"].items()))
    print("%s:%s:%d:%s" % (s["name"], "p" if s["policy"] else "m", s["created"], tags))'
}
# policy_snaps VOLUME: the names of its policy snapshots, one line.
policy_snaps () { snaps "$1" | awk -F: '$2 == "p" { printf "%s%s", sep, $1; sep = " " }'; }
# expect_policy_snaps VOLUME NAMES...: wait (bounded: the runner looks
# about once a second) until the policy snapshots of VOLUME are exactly
# NAMES, oldest first.
expect_policy_snaps () {
    local v=$1 want i; shift
    want="$*"
    for (( i = 0; i < 50; i++ )); do
        [ "$(policy_snaps "$v")" = "$want" ] && return 0
        sleep 0.1
    done
    fail "policy snapshots of $v at $(date -u -d "@$(cat "$clock")" +%FT%TZ): '$(policy_snaps "$v")', expected '$want'"
}
# mark N: write byte N over the first 64K of vol.
mark () { nbdsh -u "$(uri vol)" -c "h.pwrite(bytes([$1]) * 65536, 0); h.flush()"; }
# holds SNAP N: SNAP (of vol) starts with 64K of byte N.
holds () {
    nbdsh -u "$(uri "vol@$1")" -c "assert h.pread(65536, 0) == bytes([$2]) * 65536" ||
        fail "vol@$1 does not hold the volume as it was when it was taken (byte $2)"
}

# ---- keep-count -------------------------------------------------------

strata_cli snapshot create vol manual --tag by=hand >/dev/null
strata_cli snapshot policy set vol --schedule "0 * * * *" --keep-count 3 --tag by=policy --tag tier=hourly >/dev/null
strata_cli snapshot policy set witness --schedule "0 * * * *" >/dev/null
p="$(strata_cli snapshot policy show vol --json)"
[ "$(json_get "$p" '[j["volume"], j["policy"]["schedule"], j["policy"]["keep_count"], j["policy"]["keep_age"], j["policy"]["tags"], j["policy"]["next_run"]]')" = \
  "[\"vol\", \"0 * * * *\", 3, 0, {\"by\": \"policy\", \"tier\": \"hourly\"}, $(( T0 + H / 2 ))]" ] ||
    fail "policy show vol: $p"
strata_cli snapshot policy show vol | grep -q "0 \* \* \* \*" || fail "policy show (text) lacks the schedule"
pl="$(strata_cli snapshot policy list --json)"
[ "$(json_get "$pl" 'sorted(x["volume"] for x in j["policies"])')" = '["vol", "witness"]' ] ||
    fail "policy list: $pl"

# Hour by hour, 01:00 to 05:00; the volume changes before each hour.
declare -a names
for k in 1 2 3 4 5; do
    when=$(( T0 + H / 2 + (k - 1) * H ))
    mark "$k"
    set_clock "$when"
    names+=("$(auto_name "$when")")
    if [ "$k" -le 3 ]; then keep=("${names[@]}"); else keep=("${names[@]: -3}"); fi
    expect_policy_snaps vol "${keep[@]}"
    holds "${names[-1]}" "$k"
    # The witness's policy has no limits: it keeps them all.
    expect_policy_snaps witness "${names[@]}"
done
[ "${names[0]}" = auto-20900101-0100 ] || fail "first policy snapshot is named ${names[0]}"
# Each carries the policy's tags and its scheduled time; the manual one
# is still there, first (oldest), with its own tag.
s="$(snaps vol)"
want="manual:m:$(json_get "$(strata_cli snapshot show vol@manual --json)" 'j["created"]'):by=hand"
for k in 3 4 5; do
    want+=$'\n'"${names[k-1]}:p:$(( T0 + H / 2 + (k - 1) * H )):by=policy,tier=hourly"
done
[ "$s" = "$want" ] || fail "snapshots of vol:
$s
expected:
$want"
holds auto-20900101-0300 3
holds auto-20900101-0400 4

# A jump of five and a half hours takes one snapshot, for the latest
# missed hour (10:00), not one for each.  (A runner that took more than
# one snapshot for an hour would show in the exact lists from here on.)
mark 9
set_clock $(( T0 + 10 * H ))
names+=("auto-20900101-1000")
expect_policy_snaps witness "${names[@]}"
expect_policy_snaps vol "${names[@]: -3}"
holds auto-20900101-1000 9
[ "$(snaps vol | wc -l)" -eq 4 ] || fail "snapshots of vol after the jump: $(snaps vol)"

# A restart keeps the policy and its snapshots; it goes on from there.
stop_stratad
start_stratad "$pool" --debug-clock-file "$clock"
[ "$(json_get "$(strata_cli snapshot policy show vol --json)" 'j["policy"]["keep_count"]')" = 3 ] ||
    fail "the policy of vol is gone after a restart"
expect_policy_snaps vol "${names[@]: -3}"
set_clock $(( T0 + 10 * H + H / 2 ))
names+=("auto-20900101-1100")
expect_policy_snaps vol "${names[@]: -3}"
expect_status 0 "snapshot show vol@manual after retention" strata_cli snapshot show vol@manual

# ---- keep-age ---------------------------------------------------------

# At 11:00 the policy snapshots are 05:00, 10:00 and 11:00.  With
# keep-age 2h and no count, the 05:00 one (6h old) goes at once.
strata_cli snapshot policy set vol --schedule "0 * * * *" --keep-age 2h >/dev/null
[ "$(json_get "$(strata_cli snapshot policy show vol --json)" '[j["policy"]["keep_count"], j["policy"]["keep_age"], j["policy"]["tags"]]')" = '[0, 7200, {}]' ] ||
    fail "policy show vol after keep-age: $(strata_cli snapshot policy show vol --json)"
expect_policy_snaps vol auto-20900101-1000 auto-20900101-1100
# 12:00: the 10:00 one is exactly 2h old, not older: kept.
set_clock $(( T0 + 11 * H + H / 2 ))
expect_policy_snaps vol auto-20900101-1000 auto-20900101-1100 auto-20900101-1200
# The new policy has no tags.
[ "$(json_get "$(strata_cli snapshot show vol@auto-20900101-1200 --json)" 'j["tags"]')" = '{}' ] ||
    fail "a snapshot of the changed policy has tags: $(strata_cli snapshot show vol@auto-20900101-1200 --json)"
# 12:30: no new snapshot, but the 10:00 one is now older than 2h.
set_clock $(( T0 + 12 * H ))
expect_policy_snaps vol auto-20900101-1100 auto-20900101-1200
expect_status 0 "snapshot show vol@manual after keep-age" strata_cli snapshot show vol@manual

# ---- clear ------------------------------------------------------------

strata_cli snapshot policy clear vol >/dev/null
[ "$(json_get "$(strata_cli snapshot policy show vol --json)" 'j["policy"]')" = null ] ||
    fail "policy show after clear: $(strata_cli snapshot policy show vol --json)"
[ "$(json_get "$(strata_cli snapshot policy list --json)" '[x["volume"] for x in j["policies"]]')" = '["witness"]' ] ||
    fail "policy list after clear: $(strata_cli snapshot policy list --json)"
# Two more hours (the witness shows that the runner went through both;
# a pass looks at every policy): nothing new on vol, and what the
# policy took stays.
set_clock $(( T0 + 12 * H + H / 2 ))
wait_for 5 "the witness's 13:00 snapshot" strata_cli snapshot show witness@auto-20900101-1300
set_clock $(( T0 + 13 * H + H / 2 ))
wait_for 5 "the witness's 14:00 snapshot" strata_cli snapshot show witness@auto-20900101-1400
expect_policy_snaps vol auto-20900101-1100 auto-20900101-1200
[ "$(snaps vol | wc -l)" -eq 3 ] || fail "snapshots of vol after clear: $(snaps vol)"

expect_refusal "no such|not exist" "a policy on a missing volume" \
    strata_cli snapshot policy set nothere --schedule "0 * * * *"
expect_status 0 "pool check" strata_cli pool check
stratad_alive
