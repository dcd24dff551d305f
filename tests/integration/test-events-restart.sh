#!/bin/bash
# The event log records volume lifecycle, resizes and type changes,
# filters by volume, type and time, and survives a clean restart and a
# kill -9 (events are on disk before the admin reply).
source "$(dirname "$0")/functions.sh"

make_pool
start_stratad "$pool"
strata_cli volume create e1 --size 16M
strata_cli volume resize e1 --size 32M
strata_cli volume modify e1 --type hdd
strata_cli volume create e2 --size 16M
strata_cli volume delete e2
before="$(date +%s)"

types () { json_get "$(strata_cli events list "$@" --json)" '" ".join(e["type"] for e in j["events"])'; }
[ "$(types --volume e1)" = "volume.created volume.resized volume.modified" ] ||
    fail "e1 events: $(types --volume e1)"
[ "$(types --volume e2)" = "volume.created volume.deleted" ] || fail "e2 events: $(types --volume e2)"
strata_cli events list --volume e1 --type volume.modified | grep -q "type hdd" ||
    fail "no type change in the modify event"

stop_stratad
start_stratad "$pool"
[ "$(types --volume e1)" = "volume.created volume.resized volume.modified" ] ||
    fail "events lost over a restart: $(types --volume e1)"
[ "$(types --type daemon)" = "daemon.started daemon.stopped daemon.started" ] ||
    fail "daemon events: $(types --type daemon)"

strata_cli volume create e3 --size 16M
kill9_stratad
start_stratad "$pool"
[ "$(types --volume e3)" = "volume.created" ] || fail "event lost over kill -9"
# --since: a time after the first batch leaves only the later events.
[ "$(types --since "$(( before + 1 ))" --volume e1)" = "" ] ||
    [ "$(date +%s)" -le "$(( before + 1 ))" ] || fail "--since did not filter"
[ "$(types --since 1h --volume e1 --limit 1)" = "volume.modified" ] || fail "--limit"
expect_status 2 "bad --since" strata_cli events list --since yesterday
pool_files="$(ls "$pool")"
grep -q '^events.log$' <<<"$pool_files" || fail "no events.log in the pool: $pool_files"
stratad_alive
