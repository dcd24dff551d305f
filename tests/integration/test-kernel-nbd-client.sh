#!/bin/bash
# The real kernel NBD client (nbd-client and nbd.ko, in a qemu guest)
# attaches a volume over TCP, makes an ext4 file system on /dev/nbd0,
# writes a file and detaches; on the host the same volume, read with
# userspace clients, holds a clean file system with that file.
source "$(dirname "$0")/functions.sh"
source "$(dirname "$0")/kernel-guest.sh"
requires_nbd_python
requires nbdcopy --version
requires debugfs -V
guest_prepare

make_pool
port="$(free_tcp_port)"
start_stratad "$pool" --listen 127.0.0.1 --port "$port"
strata_cli volume create kvol --size 256M >/dev/null

cat >"$testdir/guest-test.sh" <<GUEST
/usr/sbin/nbd-client 10.0.2.2 $port /dev/nbd0 -N kvol -b 4096
echo "SIZE: \$(cat /sys/block/nbd0/size)"
/usr/sbin/mke2fs -q -t ext4 -F /dev/nbd0
mount -t ext4 /dev/nbd0 /mnt
dd if=/dev/urandom of=/mnt/data bs=64k count=128 2>/dev/null
mkdir /mnt/dir
echo hello-from-the-kernel-client >/mnt/dir/note
echo "SUM: \$(sha256sum /mnt/data | cut -d' ' -f1)"
umount /mnt
/usr/sbin/e2fsck -fn /dev/nbd0 >/dev/null
/usr/sbin/nbd-client -d /dev/nbd0
GUEST
guest_run "$testdir/guest-test.sh" 400

grep -q GUEST-OK "$guest_log" || { cat "$guest_log" >&2; fail "the guest's script failed"; }
size_sectors="$(sed -n 's/^SIZE: \([0-9]*\).*/\1/p' "$guest_log" | tr -d '\r')"
[ "$size_sectors" = $(( 256 * 2048 )) ] ||
    fail "the kernel saw $size_sectors sectors, expected $(( 256 * 2048 ))"
guest_sum="$(sed -n 's/^SUM: \([0-9a-f]*\).*/\1/p' "$guest_log" | tr -d '\r')"
[ ${#guest_sum} -eq 64 ] || { cat "$guest_log" >&2; fail "no checksum from the guest"; }

# Now on the host, through userspace clients only.
nbdcopy "$(uri kvol)" "$testdir/kvol.img"
e2fsck -fn "$testdir/kvol.img" >"$testdir/fsck.out" 2>&1 ||
    { cat "$testdir/fsck.out"; fail "e2fsck on the host found problems"; }
host_sum="$(debugfs -R 'cat /data' "$testdir/kvol.img" 2>/dev/null | sha256sum | cut -d' ' -f1)"
[ "$host_sum" = "$guest_sum" ] || fail "file checksum on the host $host_sum, in the guest $guest_sum"
note="$(debugfs -R 'cat /dir/note' "$testdir/kvol.img" 2>/dev/null)"
[ "$note" = hello-from-the-kernel-client ] || fail "note reads '$note'"
expect_status 0 "pool check" strata_cli pool check
stratad_alive
