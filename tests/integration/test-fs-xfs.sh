#!/bin/bash
# An XFS file system on a volume (nbdfuse + loop mount) survives
# unmount, daemon restart and xfs_repair -n; every file's sha256 matches.
source "$(dirname "$0")/functions.sh"
fs_roundtrip xfs 512M
