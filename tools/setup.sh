#!/bin/bash
# tools/setup.sh: install what strata needs, build it, and either run it
# or test it.  Debian 12 (bookworm); run as root (apt-get, and the
# file-system tests mount loop devices).
#
#   tools/setup.sh run     build, then run stratad in the foreground on
#                          ./var/pool with a 1G demo volume; Ctrl-C stops it
#   tools/setup.sh test    build, then run every test (ctest: unit and
#                          integration); exit non-zero if any fails
#   tools/setup.sh build   install packages and build only
#
# Environment:
#   STRATA_BUILD_DIR       build directory (default ./build)
#   STRATA_SANITIZE_CI     1: `test` also builds with
#                          -DSTRATA_SANITIZE=address,undefined in
#                          ./build-asan and runs every test there too;
#                          0: never.  Default: 1 when CI=true, else 0.
#   STRATA_PORT            TCP port for `run` (default 10809, 127.0.0.1)
#   STRATA_NO_APT          1: do not install packages, only check
#   CTEST_PARALLEL_LEVEL   parallel tests (default: the number of CPUs)
set -euo pipefail

cd "$(dirname "$0")/.."
top="$(pwd)"
# nbdsh and the Python test helpers need the system python3 (which has
# the nbd module), not a pyenv or venv one.
export PATH="/usr/bin:/usr/sbin:/sbin:/bin:$PATH"

build="${STRATA_BUILD_DIR:-$top/build}"
jobs="$(nproc 2>/dev/null || echo 2)"

# Build dependencies, then the clients the tests drive.  nbdfuse is in
# libnbd-bin on Debian 12.  perl provides pod2man for the man pages;
# systemd provides systemd-analyze for checking the unit files;
# qemu-system-x86, busybox-static and cpio boot the guest that runs the
# kernel's own NBD client (tests/integration/kernel-guest.sh).
# clang and libclang-rt-14-dev (libFuzzer, ASan and UBSan runtimes for
# clang) build the fuzz target of tests/fuzz/ for the ctest fuzz/short.
# libmicrohttpd-dev serves the Prometheus endpoint (server/metrics.c);
# prometheus is the only Debian 12 package with promtool, which checks
# that endpoint's text (test-metrics-prometheus.sh; 96 MB installed, and
# under systemd its postinst starts a Prometheus server on :9090).
build_pkgs=(cmake make gcc pkg-config liburing-dev libnbd-dev libjansson-dev
            libyaml-dev libcmocka-dev zlib1g-dev liblz4-dev libjemalloc-dev
            libssl-dev libaio-dev perl libmicrohttpd-dev)
test_pkgs=(libnbd-bin python3 python3-libnbd qemu-utils fio nbdkit nbd-server
           nbd-client xfsprogs e2fsprogs fuse3 util-linux mount iproute2
           systemd qemu-system-x86 busybox-static cpio clang libclang-rt-14-dev
           prometheus)

say () { echo "setup: $*" >&2; }
die () { echo "setup: error: $*" >&2; exit 1; }

installed ()
{
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# install_missing PKG...: apt-get update (once) and install only what is
# missing.
install_missing ()
{
    local missing=() p
    for p in "$@"; do installed "$p" || missing+=("$p"); done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "${STRATA_NO_APT:-0}" = 1 ]; then
        die "missing packages (STRATA_NO_APT=1): ${missing[*]}"
    fi
    [ "$(id -u)" -eq 0 ] || die "missing packages ${missing[*]}; run as root or install them"
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if [ -z "${_apt_updated:-}" ]; then
        apt-get update -qq
        _apt_updated=1
    fi
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# configure_build DIR [CMAKE-ARGS...]
configure_build ()
{
    local dir=$1; shift
    say "building in $dir"
    cmake -S "$top" -B "$dir" "$@" >/dev/null
    cmake --build "$dir" -j "$jobs"
}

do_build ()
{
    install_missing "${build_pkgs[@]}" "$@"
    configure_build "$build"
}

# ---- run -----------------------------------------------------------------

do_run ()
{
    local var="$top/var" port="${STRATA_PORT:-10809}" pid i
    do_build
    install_missing libnbd-bin
    mkdir -p "$var"
    if [ ! -e "$var/pool" ]; then
        "$build/strata" pool init "$var/pool"
    fi
    local nbdsock="$var/nbd.sock" admin="$var/pool/admin.sock"
    "$build/stratad" --foreground --pool "$var/pool" --unix "$nbdsock" \
        --listen 127.0.0.1 --port "$port" &
    pid=$!
    # Forward Ctrl-C and SIGTERM to stratad, then wait for it.
    trap 'kill -TERM "$pid" 2>/dev/null || true' INT TERM
    for (( i = 0; i < 300; i++ )); do
        "$build/strata" --socket "$admin" pool status >/dev/null 2>&1 && break
        kill -0 "$pid" 2>/dev/null || { wait "$pid" || true; die "stratad exited"; }
        sleep 0.1
    done
    "$build/strata" --socket "$admin" pool status >/dev/null 2>&1 ||
        { kill "$pid"; wait "$pid" || true; die "stratad's admin socket did not answer in 30s"; }
    if ! "$build/strata" --socket "$admin" volume show demo >/dev/null 2>&1; then
        "$build/strata" --socket "$admin" volume create demo --size 1G
    fi
    cat <<EOF

stratad is running (pid $pid) on pool $var/pool, with a 1G volume "demo".

  Admin:     $build/strata --socket $admin volume list
             (or export STRATA_SOCKET=$admin)
  Inspect:   nbdinfo 'nbd+unix:///demo?socket=$nbdsock'
             nbdinfo --list nbd://127.0.0.1:$port
  Kernel:    modprobe nbd && nbd-client 127.0.0.1 $port /dev/nbd0 -N demo -b 4096
             mkfs.ext4 /dev/nbd0 && mount /dev/nbd0 /mnt
             (detach: umount /mnt && nbd-client -d /dev/nbd0)
  QEMU:      qemu-img info nbd://127.0.0.1:$port/demo
             qemu-system-x86_64 -drive file=nbd://127.0.0.1:$port/demo,format=raw ...
  FUSE:      mkdir -p /tmp/demo && nbdfuse /tmp/demo 'nbd+unix:///demo?socket=$nbdsock' &
             ls -l /tmp/demo/nbd      (unmount: fusermount3 -u /tmp/demo)

Ctrl-C stops stratad cleanly.
EOF
    local st=0
    while kill -0 "$pid" 2>/dev/null; do
        wait "$pid" && st=0 || st=$?
    done
    trap - INT TERM
    # `wait` returns >128 when interrupted by a trapped signal; the loop
    # above waits again until stratad itself has exited.
    say "stratad exited with status $st"
    return "$st"
}

# ---- test ----------------------------------------------------------------

# run_ctest DIR: every test, independent ones in parallel.
run_ctest ()
{
    local dir=$1
    ctest --test-dir "$dir" --output-on-failure \
          -j "${CTEST_PARALLEL_LEVEL:-$jobs}" --timeout 900
}

do_test ()
{
    local sanitize="${STRATA_SANITIZE_CI:-}" st=0
    if [ -z "$sanitize" ]; then
        if [ "${CI:-}" = true ]; then sanitize=1; else sanitize=0; fi
    fi
    install_missing "${build_pkgs[@]}" "${test_pkgs[@]}"
    configure_build "$build"
    # fuse for nbdfuse (the file-system tests skip without it).
    [ -c /dev/fuse ] || modprobe fuse 2>/dev/null || true
    local t0=$SECONDS
    run_ctest "$build" || st=$?
    say "tests in $build: $(( SECONDS - t0 ))s, status $st"
    if [ "$sanitize" = 1 ]; then
        local asan="$top/build-asan"
        configure_build "$asan" -DSTRATA_SANITIZE=address,undefined \
            -DCMAKE_BUILD_TYPE=Debug
        t0=$SECONDS
        ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}" \
        UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
            run_ctest "$asan" || st=$(( st ? st : $? ))
        say "tests in $asan: $(( SECONDS - t0 ))s, status $st"
    fi
    return "$st"
}

case "${1:-}" in
    run)   do_run ;;
    test)  do_test ;;
    build) do_build ;;
    *)     echo "usage: $0 run|test|build" >&2; exit 2 ;;
esac
