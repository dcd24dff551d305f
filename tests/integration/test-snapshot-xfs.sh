#!/bin/bash
# Snapshots of a mounted XFS file system: a frozen snapshot mounts
# read-only (nbdfuse -r, loop, norecovery) and holds the files as they
# were (sha256) while the volume holds the new ones; a volume restored
# from a crash-consistent snapshot at twice the size replays its log on
# mount, xfs_growfs grows it, xfs_repair -n finds it clean.
source "$(dirname "$0")/functions.sh"
snapshot_fs xfs 512M 1G
