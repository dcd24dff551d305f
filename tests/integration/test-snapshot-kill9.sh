#!/bin/bash
# Snapshots are all or nothing across kill -9 of the daemon.
#  1. While a loop writes to a volume and snapshots it after each batch
#     (snapshot_data.py loop), stratad is killed with -9 at a random
#     moment, three times.
#  2. A snapshot sharing thousands of chunks (64 MiB written in
#     scattered 4 KiB writes, then partly overwritten) is deleted and
#     stratad killed with -9 at a random moment during the delete, three
#     times, and once right after the delete was acknowledged (while
#     what it held is being freed).
# After each restart the pool checks clean, every acknowledged snapshot
# is listed, a snapshot being taken or deleted is either listed or not,
# every listed one holds exactly the volume as it was when it was taken
# (every block read and compared), nothing deleted comes back, and the
# volumes hold their flushed data.  At the end, with every snapshot
# deleted and freed, the pool uses exactly what the volumes hold: a
# delete interrupted by a crash leaks nothing.  STRATA_CRASH_SEED to
# repeat a run's timings.
source "$(dirname "$0")/functions.sh"
requires_nbd_python

seed="${STRATA_CRASH_SEED:-$RANDOM}"
echo "$t: seed $seed (STRATA_CRASH_SEED=$seed to repeat)"
RANDOM=$seed
make_pool
start_stratad "$pool"
strata_cli volume create big --size 256M >/dev/null
strata_cli volume create small --size 2M >/dev/null

sd () {
    local mode=$1 vol=$2; shift 2
    "$PYTHON" "$srcdir/tests/integration/snapshot_data.py" "$mode" \
              "$testdir/$vol.json" "$sock" "$admin" "$vol" "$@"
}
# check WHAT SMALL-ARGS BIG-ARGS: both volumes and their snapshots, and
# the pool, after a restart.
check () {
    # An empty $2 or $3 is no argument.
    # shellcheck disable=SC2086
    sd check small $2 || fail "$1: volume small or its snapshots are wrong"
    # shellcheck disable=SC2086
    sd check big $3 || fail "$1: volume big or its snapshots are wrong"
    expect_status 0 "pool check ($1)" strata_cli pool check
}
progress_at_least () { [ "$(cat "$testdir/progress" 2>/dev/null || echo 0)" -ge "$1" ]; }
# random_pause MAX_MS: sleep 0 to MAX_MS milliseconds.
random_pause () { sleep "$(printf '0.%03d' $(( RANDOM % $1 )))"; }

# 64 MiB in scattered 4 KiB writes, a snapshot of it, then a quarter of
# that overwritten: the snapshot shares most of its chunks and owns
# some.
sd fill big --count 16384
sd create big base
sd fill big --count 4096
sd fill small --count 64
sd check big --quick

# ---- 1. kill -9 during a loop of snapshot create ----------------------

for c in 1 2 3; do
    rm -f "$testdir/progress"
    sd loop small --count 8 --pid "$stratad_pid" --progress "$testdir/progress" &
    lpid=$!
    cleanup_fn stop_pid "$lpid"
    wait_for 30 "the loop to take two snapshots" progress_at_least 2
    random_pause 400
    pid_alive "$lpid" || { wait "$lpid" || true;
                           fail "create cycle $c: the loop stopped before the kill"; }
    kill9_stratad
    wait_for 30 "the loop to notice" pid_gone "$lpid"
    wait "$lpid" || fail "create cycle $c: the loop failed"
    start_stratad "$pool"
    # big was not written: no need to read it all again.
    check "create cycle $c" "" --quick
done

# ---- 2. kill -9 during snapshot delete --------------------------------

# Cycles 1-3: kill at a random moment after the delete was sent; cycle
# 4: as soon as it was acknowledged, while what the snapshot alone held
# is being freed.  Each deletes big's oldest snapshot, after taking a
# new one (and writing more) if none is left.
for c in 1 2 3 4; do
    snap="$(strata_cli snapshot list big --json | "$PYTHON" -c '
import json, sys
s = json.load(sys.stdin)["snapshots"]
print(s[0]["name"] if s else "")')"
    if [ -z "$snap" ]; then
        sd fill big --count 2048
        snap="d$c"
        sd create big "$snap"
        sd fill big --count 2048
    fi
    sd mark big deleting "$snap"
    if [ "$c" -le 3 ]; then
        strata_cli snapshot delete "big@$snap" >/dev/null 2>&1 &
        dpid=$!
        # Within 10 ms (often before the delete is durable), 100 ms,
        # 700 ms (often after: what it held is being freed).
        random_pause "$(( c == 1 ? 10 : c == 2 ? 100 : 700 ))"
        kill9_stratad
        st=0; wait "$dpid" || st=$?
    else
        strata_cli snapshot delete "big@$snap" >/dev/null ||
            fail "strata snapshot delete big@$snap failed"
        st=0
        kill9_stratad
    fi
    # Acknowledged: it must be gone.
    [ "$st" -ne 0 ] || sd mark big deleted "$snap"
    start_stratad "$pool"
    if strata_cli snapshot show "big@$snap" >/dev/null 2>&1; then
        echo "$t: delete cycle $c: big@$snap survived (status $st)"
    else
        echo "$t: delete cycle $c: big@$snap is gone (status $st)"
    fi
    check "delete cycle $c" --quick ""
done

# ---- the end ----------------------------------------------------------

# Every snapshot once more, in full; then delete them all.
check "the end" --all --all
for v in small big; do
    snaps="$(strata_cli snapshot list "$v" --json | "$PYTHON" -c '
import json, sys
print(" ".join(s["name"] for s in json.load(sys.stdin)["snapshots"]))')"
    [ -n "$snaps" ] || continue
    # shellcheck disable=SC2086
    sd mark "$v" deleting $snaps
    for s in $snaps; do
        strata_cli snapshot delete "$v@$s" >/dev/null || fail "snapshot delete $v@$s failed"
    done
    # shellcheck disable=SC2086
    sd mark "$v" deleted $snaps
done
check "after deleting every snapshot" --quick --quick
# Once freed, the pool holds what the two volumes hold, no more.
settled () {
    [ "$(json_get "$(strata_cli pool status --json)" 'j["reap_pending"] == 0 and j["pending_chunks"] == 0')" = true ]
}
wait_for 30 "the deleted snapshots to be freed" settled
used="$(json_get "$(strata_cli pool status --json)" 'j["used"]')"
held="$(json_get "$(strata_cli volume list --json)" 'sum(v["allocated"] for v in (j["volumes"] if isinstance(j, dict) else j))')"
[ "$used" -eq "$held" ] ||
    fail "the pool uses $used bytes, but its volumes hold $held: $(( (used - held) / 65536 )) chunks leaked"
sd check small || fail "small is wrong at the end"
sd check big || fail "big is wrong at the end"
stop_stratad
expect_status 0 "offline pool check" strata pool check --pool "$pool"
