#!/bin/bash
# tests/check-includes.sh: a module is used only through its public
# header: outside MODULE/, the only include from MODULE/ allowed is
# "MODULE/MODULE.h".  common/ is shared by all and exempt.
cd "$(dirname "$0")/.." || exit 1
modules="server blockmap replica snapshot tier tools"
bad=$(for m in $modules; do [ -d "$m" ] && grep -rnoE '#include "[a-z_]+/[^"]+"' "$m"; done |
      awk -F: '{ split($1, from, "/"); inc = $3; sub(/^#include "/, "", inc);
                 sub(/"$/, "", inc); split(inc, to, "/");
                 if (to[1] != "common" && to[1] != from[1] &&
                     inc != to[1] "/" to[1] ".h") print }')
if [ -n "$bad" ]; then
    echo "$bad"
    echo "$0: include only MODULE/MODULE.h from another module"
    exit 1
fi
