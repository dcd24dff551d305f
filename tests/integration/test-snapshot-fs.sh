#!/bin/bash
# Snapshots of a mounted ext4 file system: a frozen snapshot mounts
# read-only (nbdfuse -r, loop, noload) and holds the files as they were
# (sha256) while the volume holds the new ones; a volume restored from
# a crash-consistent snapshot at twice the size replays its journal,
# e2fsck -f finds it clean, resize2fs grows it, the files are there.
source "$(dirname "$0")/functions.sh"
snapshot_fs ext4 128M 256M
