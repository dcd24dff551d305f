#!/bin/bash
# An ext4 file system on a volume (nbdfuse + loop mount) survives
# unmount, daemon restart and e2fsck -fn; every file's sha256 matches.
source "$(dirname "$0")/functions.sh"
fs_roundtrip ext4 256M
