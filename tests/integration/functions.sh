# tests/integration/functions.sh -- sourced by every integration test.
# shellcheck shell=bash
#
# The harness: run the built stratad on a private pool and Unix socket,
# talk to it with real clients, and clean up however the test exits.
#
# Conventions (STYLE B.9):
#  - exit 77 means a prerequisite is missing (ctest reports "Skipped");
#  - every wait polls a condition with a bound, nothing sleeps and hopes;
#  - servers listen on Unix sockets or 127.0.0.1 only;
#  - every resource a test makes (daemon, mount, loop device, nbdfuse,
#    temporary directory) is registered with cleanup_fn as soon as it
#    exists, so it is released even when the test fails half-way.
#
# Variables set here: $srcdir (the repository), $builddir, $testdir
# (this test's scratch directory, see make_pool), and after
# start_stratad: $sock (NBD Unix socket), $admin (admin socket),
# $stratad_pid, $stratad_log.
set -euo pipefail

srcdir="${STRATA_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
builddir="${STRATA_BUILD_DIR:-$srcdir/build}"
# The build tree first (our stratad and strata), then /usr/bin: nbdsh
# needs the system python3, which has the nbd module, not a pyenv shim.
export PATH="$builddir:/usr/bin:/usr/sbin:/sbin:/bin:$PATH"
export STRATA_SOURCE_DIR="$srcdir" STRATA_BUILD_DIR="$builddir"
# Python helpers next to the tests.
export PYTHONPATH="$srcdir/tests/integration${PYTHONPATH:+:$PYTHONPATH}"
# Python helpers are run with the system interpreter (python3-libnbd).
PYTHON=/usr/bin/python3
t="$(basename "$0" .sh)"

# ---- cleanup -----------------------------------------------------------

# cleanup_fn CMD [ARGS...]: run CMD when the test exits, however it
# exits.  Cleanups run in reverse order of registration.
_cleanups=()
cleanup_fn () { _cleanups+=("$(printf '%q ' "$@")"); }
_test_failed=0
_late_fail=0                    # a cleanup found a problem (sanitizer)
_run_cleanups ()
{
    local status=$? i
    set +e
    trap - EXIT INT TERM
    if [ "$status" -ne 0 ] && [ "$status" -ne 77 ]; then _test_failed=1; fi
    for (( i=${#_cleanups[@]}-1; i>=0; i-- )); do eval "${_cleanups[i]}"; done
    if [ "$status" -eq 0 ] && [ "$_late_fail" = 1 ]; then status=1; fi
    if [ "$status" -ne 0 ] && [ "$status" -ne 77 ]; then
        echo "$t: FAIL (exit $status)" >&2
    fi
    exit "$status"
}
trap _run_cleanups EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# fail MESSAGE...: print "TEST: FAIL: MESSAGE" and exit 1.
fail () { echo "$t: FAIL: $*" >&2; exit 1; }

# skip MESSAGE...: exit 77 with a reason.
skip () { echo "$t: SKIP: $*"; exit 77; }

# requires CMD [ARGS...]: skip the test (exit 77) unless CMD works.
requires ()
{
    "$@" </dev/null >/dev/null 2>&1 || skip "'$*' does not work here"
}

# requires_root: skip unless running as root.
requires_root ()
{
    [ "$(id -u)" -eq 0 ] || skip "needs root"
}

# requires_nbd_python: skip unless the system python has libnbd.
requires_nbd_python ()
{
    requires "$PYTHON" -c 'import nbd'
}

# ---- waiting with a bound ----------------------------------------------

# wait_for SECONDS DESCRIPTION CMD [ARGS...]: poll CMD every 0.1 s until
# it succeeds; fail the test naming DESCRIPTION after SECONDS.
wait_for ()
{
    local secs=$1 what=$2 i n; shift 2
    n=$(( secs * 10 ))
    for (( i = 0; i < n; i++ )); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    fail "timed out after ${secs}s waiting for $what"
}

# pid_alive PID: true if PID is running (not a zombie, not reaped).
pid_alive ()
{
    local state
    [ -r "/proc/$1/stat" ] || return 1
    state="$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" ||
        return 1
    [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# pid_gone PID: the opposite, for wait_for.
pid_gone () { ! pid_alive "$1"; }

# stop_pid PID [SECONDS]: SIGTERM, wait up to SECONDS (default 10),
# then SIGKILL.  Returns the process's exit status if it was our child.
stop_pid ()
{
    local pid=$1 secs=${2:-10} i
    if pid_alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        for (( i = 0; i < secs * 10; i++ )); do
            pid_alive "$pid" || break
            sleep 0.1
        done
        if pid_alive "$pid"; then
            echo "$t: pid $pid did not stop on SIGTERM in ${secs}s; SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    wait "$pid" 2>/dev/null
}

# ---- pools and the daemon ----------------------------------------------

_pdeath=
if setpriv --pdeathsig KILL true >/dev/null 2>&1; then
    _pdeath="setpriv --pdeathsig KILL"
fi

# make_testdir: a fresh scratch directory under /tmp, removed at exit.
# Sets $testdir (only the first call makes one).
make_testdir ()
{
    if [ -z "${testdir:-}" ]; then
        testdir="$(mktemp -d /tmp/strata-test.XXXXXX)"
        cleanup_fn rm -rf "$testdir"
    fi
}

# make_pool [ARGS...]: create an empty pool in the scratch directory
# with chunk size 64K and set $pool to its path.  ARGS go to `strata
# pool init`.  Call it directly, not in $(...), so $testdir and the
# cleanup stick.
make_pool ()
{
    local p n=0
    make_testdir
    while [ -e "$testdir/pool$n" ]; do n=$(( n + 1 )); done
    p="$testdir/pool$n"
    strata pool init --chunk-size 64K "$@" "$p" >/dev/null ||
        fail "strata pool init $p failed"
    pool="$p"
}

# _stratad_log_check LOG: fail if a sanitizer or stratad itself reported
# a bug in LOG.
_stratad_log_check ()
{
    local log=$1
    [ -f "$log" ] || return 0
    if grep -qE 'ERROR: (Address|Leak|Thread|Undefined)Sanitizer|runtime error:|SUMMARY: .*Sanitizer' "$log"; then
        echo "$t: sanitizer report in $log:" >&2
        cat "$log" >&2
        return 1
    fi
    return 0
}

# _stratad_cleanup PID LOG: at exit, stop the daemon if still running
# and show its log if the test failed.
_stratad_cleanup ()
{
    local pid=$1 log=$2
    stop_pid "$pid" 10
    if ! _stratad_log_check "$log"; then
        echo "$t: FAIL: sanitizer errors in stratad" >&2
        _late_fail=1
    fi
}

# _show_log_on_failure LOG: registered once per log.
_show_log_on_failure ()
{
    local log=$1
    if [ "$_test_failed" = 1 ] && [ -s "$log" ]; then
        echo "---- $log (last 60 lines) ----" >&2
        tail -n 60 "$log" >&2
        echo "---- end of $log ----" >&2
    fi
}

# start_stratad POOL [ARGS...]: run the daemon on a private Unix socket
# next to POOL, wait (bounded) until both the NBD socket and the admin
# socket answer, and stop it when the test exits.  Sets $sock, $admin,
# $stratad_pid, $stratad_log.  Pass --admin-socket in ARGS to override
# the default POOL/admin.sock.  The daemon's stderr goes to $stratad_log
# (shown if the test fails).
start_stratad ()
{
    local pool=$1 i a; shift
    local dir
    dir="$(dirname "$pool")"
    sock="$dir/nbd.sock"
    admin="$pool/admin.sock"
    for (( i = 1; i <= $#; i++ )); do
        a="${!i}"
        if [ "$a" = --admin-socket ]; then
            i=$(( i + 1 )); admin="${!i}"
        elif [[ "$a" == --admin-socket=* ]]; then
            admin="${a#--admin-socket=}"
        fi
    done
    _nlog=$(( ${_nlog:-0} + 1 ))
    stratad_log="$dir/stratad.$_nlog.log"
    # With a parent-death signal, a daemon does not outlive a test that
    # was itself killed with -9 (when no cleanup can run).
    $_pdeath stratad --foreground --pool "$pool" --unix "$sock" "$@" \
            </dev/null >>"$stratad_log" 2>&1 &
    stratad_pid=$!
    cleanup_fn _stratad_cleanup "$stratad_pid" "$stratad_log"
    cleanup_fn _show_log_on_failure "$stratad_log"
    for (( i = 0; i < 300; i++ )); do
        if nbdinfo --list "nbd+unix:///?socket=$sock" >/dev/null 2>&1 &&
           strata --socket "$admin" pool status >/dev/null 2>&1; then
            return 0
        fi
        if ! pid_alive "$stratad_pid"; then
            local st=0
            wait "$stratad_pid" || st=$?
            cat "$stratad_log" >&2
            fail "stratad exited early (status $st)"
        fi
        sleep 0.1
    done
    cat "$stratad_log" >&2
    fail "stratad did not answer on $sock and $admin within 30s"
}

# stop_stratad: SIGTERM, wait (bounded) and check it exited with 0.
stop_stratad ()
{
    local st=0 i
    kill -TERM "$stratad_pid" 2>/dev/null || fail "stratad (pid $stratad_pid) is not running"
    for (( i = 0; i < 300; i++ )); do
        pid_alive "$stratad_pid" || break
        sleep 0.1
    done
    if pid_alive "$stratad_pid"; then
        kill -KILL "$stratad_pid"
        wait "$stratad_pid" 2>/dev/null || true
        fail "stratad did not exit within 30s of SIGTERM"
    fi
    wait "$stratad_pid" || st=$?
    _stratad_log_check "$stratad_log" || fail "sanitizer errors in stratad"
    [ "$st" -eq 0 ] || { tail -n 30 "$stratad_log" >&2;
                         fail "stratad exited with status $st after SIGTERM"; }
}

# kill9_stratad: kill -9 the daemon and reap it.
kill9_stratad ()
{
    kill -KILL "$stratad_pid" 2>/dev/null || fail "stratad (pid $stratad_pid) is not running"
    wait "$stratad_pid" 2>/dev/null || true
}

# stratad_alive: fail the test unless the daemon is still running.
stratad_alive ()
{
    pid_alive "$stratad_pid" || {
        local st=0
        wait "$stratad_pid" || st=$?
        tail -n 40 "$stratad_log" >&2
        fail "stratad died (status $st)"
    }
}

# strata_cli ARGS...: the admin CLI on this test's admin socket.
strata_cli () { strata --socket "$admin" "$@"; }

# uri VOLUME: the NBD URI of VOLUME on this test's Unix socket.
uri () { echo "nbd+unix:///$1?socket=$sock"; }

# expect_status N DESCRIPTION CMD [ARGS...]: run CMD, require exit status
# N; its stdout and stderr are kept in $out (combined).
expect_status ()
{
    local want=$1 what=$2 st=0; shift 2
    out="$("$@" 2>&1)" || st=$?
    if [ "$st" -ne "$want" ]; then
        echo "$t: command: $*" >&2
        echo "$t: output: $out" >&2
        fail "$what: exit status $st, expected $want"
    fi
}

# expect_refusal PATTERN DESCRIPTION CMD [ARGS...]: CMD must exit 1 with
# a message matching the extended regexp PATTERN (case-insensitive).
expect_refusal ()
{
    local pat=$1 what=$2; shift 2
    expect_status 1 "$what" "$@"
    if ! grep -qiE -- "$pat" <<<"$out"; then
        echo "$t: command: $*" >&2
        echo "$t: output: $out" >&2
        fail "$what: message does not match /$pat/"
    fi
}

# json_get JSON PYEXPR: evaluate PYEXPR with `j` bound to the parsed
# JSON and print the result (fails the test if JSON does not parse).
json_get ()
{
    "$PYTHON" -c '
import json, sys
j = json.loads(sys.argv[1])
r = eval(sys.argv[2])
print(json.dumps(r, sort_keys=True) if isinstance(r, (dict, list, bool)) or r is None else r)
' "$1" "$2" || fail "bad JSON or expression $2 on: $1"
}

# free_tcp_port: print a free TCP port on 127.0.0.1.
free_tcp_port ()
{
    "$PYTHON" -c '
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
'
}


# ---- nbdfuse and file systems ------------------------------------------

# nbdfuse_start DIR URI [OPTIONS...]: present URI as the file DIR/nbd
# with nbdfuse (OPTIONS, e.g. -r, go to nbdfuse), wait (bounded) until
# it is there; unmounted at exit.  Sets $nbdfuse_pid.
nbdfuse_start ()
{
    local dir=$1 u=$2
    shift 2
    mkdir -p "$dir"
    rm -f "$dir.pid"
    nbdfuse -P "$dir.pid" "$@" "$dir" "$u" </dev/null &
    nbdfuse_pid=$!
    cleanup_fn nbdfuse_stop "$dir" "$nbdfuse_pid"
    wait_for 30 "nbdfuse on $dir" test -s "$dir.pid"
    [ -f "$dir/nbd" ] || fail "nbdfuse: $dir/nbd does not exist"
}

# nbdfuse_stop DIR PID: unmount DIR and wait (bounded) for nbdfuse.
nbdfuse_stop ()
{
    local dir=$1 pid=$2 i
    if grep -qs " $dir fuse" /proc/mounts; then
        fusermount3 -u "$dir" || fusermount3 -uz "$dir"
    fi
    for (( i = 0; i < 100; i++ )); do
        pid_alive "$pid" || break
        sleep 0.1
    done
    pid_alive "$pid" && kill "$pid"
    wait "$pid" 2>/dev/null || true
}

# mount_loop FILE DIR [MOUNT-OPTIONS]: mount the file system in FILE
# on DIR through a loop device; unmounted (and the loop device
# detached) at exit.
mount_loop ()
{
    local file=$1 dir=$2 opts=${3:-}
    mkdir -p "$dir"
    mount -o "loop${opts:+,$opts}" "$file" "$dir"
    cleanup_fn umount_loop "$dir" "$file"
}

# umount_loop DIR FILE: unmount DIR if mounted, detach FILE's loop
# devices.
umount_loop ()
{
    local dir=$1 file=$2 dev
    if mountpoint -q "$dir"; then
        umount "$dir" || umount -l "$dir"
    fi
    for dev in $(losetup -j "$file" -O NAME -n 2>/dev/null); do
        losetup -d "$dev" 2>/dev/null || true
    done
}

# fs_roundtrip FSTYPE SIZE: the body of test-fs-*.sh.  mkfs FSTYPE on a
# volume through nbdfuse, mount it (loop), write files, record their
# sha256, unmount, stop and restart stratad, check the file system is
# clean (read-only fsck), mount again and verify every file.
fs_roundtrip ()
{
    local fstype=$1 size=$2 mkfs fsck
    case "$fstype" in
        ext4) mkfs=(mkfs.ext4 -q -F); fsck=(e2fsck -fn) ;;
        xfs)  mkfs=(mkfs.xfs -q -f);  fsck=(xfs_repair -n) ;;
        *) fail "fs_roundtrip: unknown file system $fstype" ;;
    esac
    requires_root
    [ -c /dev/fuse ] || skip "no /dev/fuse"
    requires nbdfuse --version
    requires fusermount3 --version
    requires losetup --version
    requires "${mkfs[0]}" -V
    requires "${fsck[0]}" -V
    grep -qw "$fstype" /proc/filesystems || modprobe "$fstype" 2>/dev/null ||
        skip "the kernel has no $fstype"
    losetup -f >/dev/null 2>&1 || skip "no free loop device"

    make_pool
    start_stratad "$pool"
    strata_cli volume create fs --size "$size"
    local fuse="$testdir/fuse" mnt="$testdir/mnt"

    nbdfuse_start "$fuse" "$(uri fs)"
    "${mkfs[@]}" "$fuse/nbd" || fail "${mkfs[*]} failed"
    mount_loop "$fuse/nbd" "$mnt"
    # Files of several sizes, a directory tree, a sparse file, a file
    # overwritten in the middle, and a deleted file.
    mkdir -p "$mnt/a/b/c"
    head -c 10M /dev/urandom >"$mnt/big"
    head -c 4097 /dev/urandom >"$mnt/a/odd"
    for i in $(seq 1 50); do head -c $(( i * 1000 )) /dev/urandom >"$mnt/a/b/c/f$i"; done
    truncate -s 50M "$mnt/sparse"
    head -c 1M /dev/urandom | dd of="$mnt/sparse" bs=1M seek=20 conv=notrunc status=none
    head -c 5M /dev/urandom >"$mnt/over"
    head -c 64K /dev/urandom | dd of="$mnt/over" bs=4K seek=100 conv=notrunc status=none
    head -c 3M /dev/urandom >"$mnt/gone"
    sync
    rm "$mnt/gone"
    (cd "$mnt" && find . -type f ! -name lost+found -print0 | sort -z |
         xargs -0 sha256sum) >"$testdir/sums"
    [ "$(wc -l <"$testdir/sums")" -eq 54 ] || fail "expected 54 files, got $(wc -l <"$testdir/sums")"
    umount_loop "$mnt" "$fuse/nbd"
    nbdfuse_stop "$fuse" "$nbdfuse_pid"

    stop_stratad
    start_stratad "$pool"

    nbdfuse_start "$fuse" "$(uri fs)"
    "${fsck[@]}" "$fuse/nbd" >"$testdir/fsck.out" 2>&1 ||
        { cat "$testdir/fsck.out"; fail "${fsck[*]} found problems after restart"; }
    mount_loop "$fuse/nbd" "$mnt"
    (cd "$mnt" && sha256sum --quiet -c "$testdir/sums") ||
        fail "files differ after unmount and restart"
    [ ! -e "$mnt/gone" ] || fail "deleted file is back"
    # Write more, unmount, and check again on the same daemon.
    head -c 2M /dev/urandom >"$mnt/later"
    (cd "$mnt" && sha256sum later) >>"$testdir/sums"
    umount_loop "$mnt" "$fuse/nbd"
    "${fsck[@]}" "$fuse/nbd" >"$testdir/fsck.out" 2>&1 ||
        { cat "$testdir/fsck.out"; fail "${fsck[*]} found problems after more writes"; }
    mount_loop "$fuse/nbd" "$mnt" ro
    (cd "$mnt" && sha256sum --quiet -c "$testdir/sums") || fail "files differ at the end"
    umount_loop "$mnt" "$fuse/nbd"
    nbdfuse_stop "$fuse" "$nbdfuse_pid"
    expect_status 0 "pool check" strata_cli pool check
    stratad_alive
}

# _fs_sums DIR: the sha256 of every regular file under DIR, by name.
_fs_sums () { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum); }

# _thaw DIR: thaw the file system on DIR if it is frozen.
_thaw () { fsfreeze -u "$1" 2>/dev/null || true; }

# snapshot_fs FSTYPE SIZE BIGGER: the body of test-snapshot-fs.sh (ext4) and
# test-snapshot-xfs.sh.  On a mounted FSTYPE volume of SIZE: write files
# (state A), freeze the file system, take snapshot s1, thaw; change and
# delete files (state B), sync, take snapshot s2 without freezing (a
# crash-consistent one, its journal or log still to be replayed); change
# more (state C).  Then s1, exported read-only, mounts read-only and holds
# state A while the volume holds state C; and a volume restored from s2
# at BIGGER replays its journal, checks clean, grows to fill BIGGER and
# holds state B, while s2 itself stays as it was.
snapshot_fs ()
{
    local fstype=$1 size=$2 bigger=$3 mkfs fsck grow snapopts
    case "$fstype" in
        ext4) mkfs=(mkfs.ext4 -q -F); fsck=(e2fsck -fn); grow=resize2fs
              # A snapshot's journal cannot be replayed on a read-only
              # device; s1 was frozen, so it has nothing to replay.
              snapopts=ro,noload ;;
        # XFS refuses two mounted file systems with one UUID.
        xfs)  mkfs=(mkfs.xfs -q -f); fsck=(xfs_repair -n); grow=xfs_growfs
              snapopts=ro,norecovery,nouuid ;;
        *) fail "snapshot_fs: unknown file system $fstype" ;;
    esac
    requires_root
    [ -c /dev/fuse ] || skip "no /dev/fuse"
    requires nbdfuse --version
    requires nbdcopy --version
    requires fusermount3 --version
    requires losetup --version
    requires fsfreeze --version
    requires "${mkfs[0]}" -V
    requires "${fsck[0]}" -V
    command -v "$grow" >/dev/null || skip "no $grow"
    grep -qw "$fstype" /proc/filesystems || modprobe "$fstype" 2>/dev/null ||
        skip "the kernel has no $fstype"
    losetup -f >/dev/null 2>&1 || skip "no free loop device"

    make_pool
    start_stratad "$pool"
    strata_cli volume create fs --size "$size" >/dev/null
    local fuse="$testdir/fuse" mnt="$testdir/mnt" st=0 n
    local sfuse="$testdir/sfuse" smnt="$testdir/smnt"
    local rfuse="$testdir/rfuse" rmnt="$testdir/rmnt"

    nbdfuse_start "$fuse" "$(uri fs)"
    "${mkfs[@]}" "$fuse/nbd" || fail "${mkfs[*]} failed"
    mount_loop "$fuse/nbd" "$mnt"
    # Never leave a frozen file system behind (unmounting it would hang).
    cleanup_fn _thaw "$mnt"

    # State A: a tree, large and small files, a file to be overwritten
    # in the middle, files to be deleted.
    mkdir -p "$mnt/a/b/c" "$mnt/doomed"
    head -c 8M /dev/urandom >"$mnt/big"
    head -c 4097 /dev/urandom >"$mnt/a/odd"
    for n in $(seq 1 30); do head -c $(( n * 1000 )) /dev/urandom >"$mnt/a/b/c/f$n"; done
    head -c 4M /dev/urandom >"$mnt/over"
    head -c 3M /dev/urandom >"$mnt/gone"
    for n in 1 2 3; do head -c 100K /dev/urandom >"$mnt/doomed/d$n"; done
    sync
    _fs_sums "$mnt" >"$testdir/sums.A"
    [ "$(wc -l <"$testdir/sums.A")" -eq 37 ] ||
        fail "state A: expected 37 files, got $(wc -l <"$testdir/sums.A")"

    fsfreeze -f "$mnt" || fail "fsfreeze -f $mnt failed"
    strata_cli snapshot create fs s1 --tag state=A >/dev/null || st=$?
    fsfreeze -u "$mnt" || fail "fsfreeze -u $mnt failed"
    [ "$st" -eq 0 ] || fail "strata snapshot create fs s1 failed (status $st)"

    # State B.
    head -c 64K /dev/urandom | dd of="$mnt/over" bs=4K seek=100 conv=notrunc status=none
    rm "$mnt/gone"
    rm -r "$mnt/doomed"
    head -c 1M /dev/urandom >>"$mnt/a/odd"
    head -c 2M /dev/urandom >"$mnt/new"
    sync
    _fs_sums "$mnt" >"$testdir/sums.B"
    strata_cli snapshot create fs s2 --tag state=B >/dev/null ||
        fail "strata snapshot create fs s2 failed"
    # State C.
    rm "$mnt/big"
    head -c 1M /dev/urandom >"$mnt/a/b/c/f1"
    head -c 3M /dev/urandom >"$mnt/later"
    sync
    _fs_sums "$mnt" >"$testdir/sums.C"
    # The states differ where the test expects them to.
    if cmp -s "$testdir/sums.A" "$testdir/sums.B" || cmp -s "$testdir/sums.B" "$testdir/sums.C"; then
        fail "the states A, B and C are not different"
    fi
    nbdcopy "$(uri fs@s2)" - | sha256sum >"$testdir/s2.sha" || fail "nbdcopy of fs@s2 failed"

    # s1, exported read-only, holds state A exactly, while the volume
    # is still mounted and holds state C.
    nbdfuse_start "$sfuse" "$(uri fs@s1)" -r
    if ! mount_loop "$sfuse/nbd" "$smnt" "$snapopts" || ! mountpoint -q "$smnt"; then
        fail "snapshot fs@s1 does not mount with -o $snapopts"
    fi
    _fs_sums "$smnt" >"$testdir/sums.s1"
    diff -u "$testdir/sums.A" "$testdir/sums.s1" >&2 ||
        fail "snapshot fs@s1 does not hold the files as they were when it was taken"
    umount_loop "$smnt" "$sfuse/nbd"
    nbdfuse_stop "$sfuse" "$nbdfuse_pid"
    _fs_sums "$mnt" >"$testdir/sums.live"
    diff -u "$testdir/sums.C" "$testdir/sums.live" >&2 ||
        fail "the volume does not hold its latest files"
    umount_loop "$mnt" "$fuse/nbd"
    "${fsck[@]}" "$fuse/nbd" >"$testdir/fsck.out" 2>&1 ||
        { cat "$testdir/fsck.out"; fail "${fsck[*]} on the volume found problems"; }
    nbdfuse_stop "$fuse" "$nbdfuse_pid"

    # Restore s2 into a larger volume.
    strata_cli volume create restored --from-snapshot fs@s2 --size "$bigger" >/dev/null ||
        fail "strata volume create restored --from-snapshot fs@s2 --size $bigger failed"
    local want_size have
    want_size="$(json_get "$(strata_cli volume show restored --json)" 'j["size"]')"
    [ "$want_size" -gt "$(json_get "$(strata_cli volume show fs --json)" 'j["size"]')" ] ||
        fail "restored volume is $want_size bytes, not $bigger"
    nbdfuse_start "$rfuse" "$(uri restored)"
    [ "$(stat -c %s "$rfuse/nbd")" -eq "$want_size" ] ||
        fail "restored volume exports $(stat -c %s "$rfuse/nbd") bytes, not $want_size"
    # e2fsck and resize2fs write through a loop device: on the nbdfuse
    # file they would write less than a sector.
    local dev
    dev="$(losetup -f --show "$rfuse/nbd")" || fail "losetup $rfuse/nbd failed"
    mkdir -p "$rmnt"
    cleanup_fn umount_loop "$rmnt" "$rfuse/nbd"
    case "$fstype" in
        ext4)
            # Replay the journal (s2 was taken mounted); then a full
            # check must find nothing to repair (below).
            st=0; e2fsck -E journal_only -y "$dev" >"$testdir/fsck.out" 2>&1 || st=$?
            [ "$st" -le 1 ] || { cat "$testdir/fsck.out"; fail "e2fsck journal replay on the restored volume: status $st"; }
            # Of an unclean file system, e2fsck may fix only the free
            # block and inode totals in the superblock, which ext4 does
            # not keep up to date (it sums the group counts on mount).
            st=0; e2fsck -fy "$dev" >"$testdir/fsck.out" 2>&1 || st=$?
            if [ "$st" -gt 1 ] ||
               ! awk '/\? yes$/ && prev !~ /^Free (blocks|inodes) count wrong \([0-9]+, counted=[0-9]+\)\.$/ { bad = 1 }
                      NF { prev = $0 } END { exit bad }' "$testdir/fsck.out"; then
                cat "$testdir/fsck.out"
                fail "e2fsck -fy on the restored volume found problems (status $st)"
            fi
            resize2fs "$dev" >"$testdir/grow.out" 2>&1 ||
                { cat "$testdir/grow.out"; fail "resize2fs on the restored volume failed"; }
            e2fsck -fn "$dev" >"$testdir/fsck.out" 2>&1 ||
                { cat "$testdir/fsck.out"; fail "e2fsck -fn after resize2fs found problems"; }
            mount "$dev" "$rmnt" || fail "the volume restored from fs@s2 does not mount"
            ;;
        xfs)
            # Mounting replays the log; grow it mounted.
            mount "$dev" "$rmnt" || fail "the volume restored from fs@s2 does not mount"
            xfs_growfs "$rmnt" >"$testdir/grow.out" 2>&1 ||
                { cat "$testdir/grow.out"; fail "xfs_growfs on the restored volume failed"; }
            ;;
    esac
    # It fills (nearly) the larger volume: more than the old size.
    have="$(( $(stat -f -c '%b * %S' "$rmnt") ))"
    [ "$have" -gt "$(json_get "$(strata_cli volume show fs --json)" 'j["size"]')" ] ||
        fail "the restored file system is $have bytes after growing, the volume $want_size"
    _fs_sums "$rmnt" >"$testdir/sums.restored"
    diff -u "$testdir/sums.B" "$testdir/sums.restored" >&2 ||
        fail "the restored volume does not hold the files of snapshot fs@s2"
    # The restored volume is writable and independent of s2.
    head -c 5M /dev/urandom >"$rmnt/after-restore"
    rm "$rmnt/new"
    sync
    umount "$rmnt"
    "${fsck[@]}" "$dev" >"$testdir/fsck.out" 2>&1 ||
        { cat "$testdir/fsck.out"; fail "${fsck[*]} on the restored, grown volume found problems"; }
    umount_loop "$rmnt" "$rfuse/nbd"
    nbdfuse_stop "$rfuse" "$nbdfuse_pid"
    nbdcopy "$(uri fs@s2)" - | sha256sum | cmp -s - "$testdir/s2.sha" ||
        fail "snapshot fs@s2 changed when the volume restored from it was written"
    expect_status 0 "pool check" strata_cli pool check
    stratad_alive
}
