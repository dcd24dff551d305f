#!/bin/bash
# tests/check-systemd.sh: every unit in systemd/ passes
# `systemd-analyze verify`.  The programs they run need not be installed
# here, so each Exec*= line is pointed at /bin/true, and Documentation=
# is dropped (the man pages are not installed either), as STYLE B.12
# describes.  Exit 77 (skip) without systemd-analyze.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v systemd-analyze >/dev/null 2>&1 || {
    echo "$0: SKIP: systemd-analyze is not installed"
    exit 77
}

tmp="$(mktemp -d /tmp/strata-check-systemd.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT

units=()
for f in systemd/*.service systemd/*.socket; do
    [ -e "$f" ] || continue
    sed -e 's|^\(Exec[A-Za-z]*=[-@+!:]*\)[^ ]*|\1/bin/true|' \
        -e '/^Documentation=/d' \
        -e '/^AssertPathExists=/d' \
        "$f" > "$tmp/$(basename "$f")"
    units+=("$tmp/$(basename "$f")")
done
# A template is verified through an instance of it.
for u in "${units[@]}"; do
    case "$u" in
        *@.service) cp "$u" "${u%@.service}@vol1.service"
                    units=("${units[@]/$u}" "${u%@.service}@vol1.service") ;;
    esac
done

status=0
for u in "${units[@]}"; do
    [ -n "$u" ] || continue
    # Units refer to each other (Service=, Requires=): look here first.
    if ! out="$(SYSTEMD_UNIT_PATH="$tmp:" systemd-analyze verify --man=no \
                "$u" 2>&1)"; then
        echo "$out"
        echo "$0: FAIL: $(basename "$u")"
        status=1
    elif [ -n "$out" ]; then
        # verify exits 0 on some warnings; treat any of ours as a failure.
        if grep -F "$(basename "$u")" <<<"$out"; then
            echo "$0: FAIL: $(basename "$u") has warnings"
            status=1
        fi
    fi
done
[ $status -eq 0 ] && echo "$0: all units verify"
exit $status
