#!/bin/bash
# The NBD export list (OPT_LIST, raw and through nbdinfo) is exactly the
# volume list of the admin CLI, with the same sizes, as volumes come and
# go.
source "$(dirname "$0")/functions.sh"
requires nbdinfo --version
requires_nbd_python

make_pool
start_stratad "$pool"

compare () {
    "$PYTHON" - "$sock" "$admin" <<'PY'
import json, subprocess, sys
from strata_test import Raw, strata_json, volume_names
sock, admin = sys.argv[1], sys.argv[2]
cli = strata_json(admin, "volume", "list")
vols = cli["volumes"] if isinstance(cli, dict) else cli
want = {v["name"]: v["size"] for v in vols}
out = subprocess.run(["nbdinfo", "--list", "--json", "nbd+unix:///?socket=" + sock],
                     capture_output=True, text=True, check=True).stdout
got = {e["export-name"]: e["export-size"] for e in json.loads(out)["exports"]}
if got != want:
    sys.exit("FAIL: nbdinfo --list %r != strata volume list %r" % (got, want))
r = Raw(sock)
r.start()
names = r.list()
if sorted(names) != sorted(want) or len(names) != len(set(names)):
    sys.exit("FAIL: OPT_LIST %r != strata volume list %r" % (names, sorted(want)))
PY
}
compare
for i in 1 2 3 4 5; do strata_cli volume create "v$i" --size "${i}M"; done
strata_cli volume create "name.with-dots_and-dashes" --size 4M
compare
strata_cli volume delete v3
strata_cli volume resize v2 --size 64M
compare
