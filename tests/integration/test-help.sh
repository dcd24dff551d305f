#!/bin/bash
# --help of stratad and strata mentions every long option the program
# has (its getopt table), and the man page (POD OPTIONS) documents each
# of them; --version prints the version.
source "$(dirname "$0")/functions.sh"
requires command -v podchecker

check_prog () {
    local prog=$1 pod=$2 src=$3 help opts o
    help="$("$prog" --help)" || fail "$prog --help exited $?"
    [ -f "$pod" ] || fail "$pod (the man page source) does not exist"
    podchecker "$pod" >/dev/null 2>&1 || { podchecker "$pod"; fail "podchecker $pod"; }
    # Long options from the C sources: { "name", ...argument...
    opts="$(cat $src | grep -oE '\{ *"[a-z][a-z0-9-]+", *(no_argument|required_argument|optional_argument)' |
            sed -E 's/\{ *"([^"]+)".*/\1/' | sort -u)"
    [ -n "$opts" ] || fail "found no long options in $src"
    for o in $opts; do
        grep -q -- "--$o\b" <<<"$help" || fail "$prog --help does not mention --$o"
        grep -q -- "--$o\b" "$pod" || fail "$pod does not document --$o"
    done
    # Every option in the POD is real.
    for o in $(grep -oE '^=item B<--[a-z0-9-]+' "$pod" | sed 's/^=item B<--//' | sort -u); do
        grep -qx -- "$o" <<<"$opts" || grep -q -- "--$o\b" <<<"$help" ||
            fail "$pod documents --$o, which $prog does not have"
    done
    "$prog" --version | grep -q "$(sed -nE 's/^project\(strata VERSION ([0-9.]+).*/\1/p' "$srcdir/CMakeLists.txt")" ||
        fail "$prog --version does not print the project version"
}

check_prog stratad "$srcdir/server/stratad.pod" "$srcdir/server/main.c"
# The CLI's options live in its dispatch table: { "name", "ARG", "help" }.
help="$(strata --help)"
for o in $(grep -ohE '\{ *"[a-z][a-z0-9-]+", *("[^a-z"][^"]*"|NULL), *"' "$srcdir"/tools/*.c |
           sed -E 's/\{ *"([^"]+)".*/\1/' | sort -u); do
    grep -q -- "--$o\b" <<<"$help" || fail "strata --help does not mention --$o"
    [ -f "$srcdir/tools/strata.pod" ] || fail "tools/strata.pod does not exist"
    grep -q -- "--$o\b" "$srcdir/tools/strata.pod" || fail "tools/strata.pod does not document --$o"
done
# Every command of the synopsis is in --help.
while read -r line; do
    cmd="$(awk '{print $2, $3}' <<<"$line")"
    case "$cmd" in --*|"") continue ;; esac
    grep -qF "$cmd" <<<"$help" || fail "strata --help lacks '$cmd'"
done <"$srcdir/tools/strata-synopsis.txt"
strata --version | grep -q "$(sed -nE 's/^project\(strata VERSION ([0-9.]+).*/\1/p' "$srcdir/CMakeLists.txt")" ||
    fail "strata --version does not print the project version"
