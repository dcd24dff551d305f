# tests/integration/kernel-guest.sh -- sourced by tests that need the
# real kernel NBD client.
# shellcheck shell=bash
#
# This machine has no nbd module, so such tests boot a small guest
# under qemu (TCG, no KVM needed): a Debian cloud kernel unpacked from
# its package, and an initramfs holding busybox, nbd.ko with the virtio
# modules it needs, nbd-client, mke2fs and e2fsck with their libraries,
# and the guest's test script.  qemu's user-mode network lets the guest
# reach the host's loopback at 10.0.2.2, where the test's stratad
# listens; nothing else is reachable.  The guest runs busybox sh, which
# prefers its own applets: call the copied programs by /usr/sbin path.
#
# The kernel package is fetched once with apt-get download and kept in
# $builddir/kernel-guest; the initramfs is rebuilt per test (it is small).

# guest_prepare: make $guest_kernel and $guest_modules ready, or skip.
guest_prepare ()
{
    local cache="$builddir/kernel-guest" pkg deb
    requires qemu-system-x86_64 --version
    [ -x /bin/busybox ] || skip "busybox-static is not installed"
    requires cpio --version
    requires nbd-client --help
    mkdir -p "$cache"
    if [ ! -d "$cache/root/boot" ]; then
        pkg="$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
               awk '/Depends: linux-image-[0-9]/ { print $2; exit }')"
        [ -n "$pkg" ] || skip "no linux-image-cloud-amd64 in the apt lists"
        (cd "$cache" && apt-get download "$pkg" >/dev/null 2>&1) ||
            skip "apt-get download $pkg failed"
        deb="$(ls "$cache"/linux-image-*.deb | head -n 1)"
        rm -rf "$cache/root.tmp"
        dpkg-deb -x "$deb" "$cache/root.tmp"
        mv "$cache/root.tmp" "$cache/root"
        rm -f "$deb"
    fi
    guest_kernel="$(ls "$cache"/root/boot/vmlinuz-* | head -n 1)"
    guest_modules="$(ls -d "$cache"/root/lib/modules/* | head -n 1)/kernel"
    [ -f "$guest_modules/drivers/block/nbd.ko" ] ||
        skip "the guest kernel has no nbd.ko"
}

# _guest_copy_binary ROOT BINARY: copy BINARY and the libraries it
# links into the initramfs tree ROOT.
_guest_copy_binary ()
{
    local root=$1 bin=$2 lib
    mkdir -p "$root/usr/sbin"
    cp -L "$bin" "$root/usr/sbin/"
    for lib in $(ldd "$bin" | awk '/=> \// { print $3 } /^\t\/lib/ { print $1 }'); do
        mkdir -p "$root$(dirname "$lib")"
        cp -Ln "$lib" "$root$lib"
    done
}

# guest_run SCRIPT SECONDS: boot the guest, run the shell script SCRIPT
# (a file) inside it as root, power off.  The guest's console is in
# $guest_log; the test reads its results from there.  Fails the test if
# the guest does not finish within SECONDS.
guest_run ()
{
    local script=$1 secs=$2 root="$testdir/initramfs" m st=0
    rm -rf "$root"
    mkdir -p "$root"/{bin,dev,proc,sys,mnt,tmp,lib/modules,etc}
    cp /bin/busybox "$root/bin/busybox"
    for m in drivers/virtio/virtio_ring.ko drivers/virtio/virtio.ko \
             drivers/virtio/virtio_pci_legacy_dev.ko \
             drivers/virtio/virtio_pci_modern_dev.ko \
             drivers/virtio/virtio_pci.ko net/core/failover.ko \
             drivers/net/net_failover.ko drivers/net/virtio_net.ko \
             drivers/block/nbd.ko; do
        [ -f "$guest_modules/$m" ] && cp "$guest_modules/$m" "$root/lib/modules/"
        echo "$(basename "$m")" >>"$root/lib/modules/order"
    done
    _guest_copy_binary "$root" "$(command -v nbd-client)"
    _guest_copy_binary "$root" /sbin/mke2fs
    _guest_copy_binary "$root" /sbin/e2fsck
    cp "$script" "$root/test.sh"
    cat >"$root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/usr/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /lib/modules/order); do
    [ -f /lib/modules/$m ] && insmod /lib/modules/$m
done
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2
echo GUEST-START
if sh -e /test.sh; then echo GUEST-OK; else echo "GUEST-FAILED status $?"; fi
sync
poweroff -f
INIT
    chmod +x "$root/init"
    (cd "$root" && find . | cpio -o -H newc 2>/dev/null | gzip -1) >"$testdir/initramfs.gz"
    guest_log="$testdir/guest.log"
    timeout "$secs" qemu-system-x86_64 -machine q35,accel=tcg -cpu max -m 768 \
        -smp 1 -no-reboot -display none -monitor none \
        -serial "file:$guest_log" \
        -kernel "$guest_kernel" -initrd "$testdir/initramfs.gz" \
        -append "console=ttyS0 panic=-1 quiet loglevel=3" \
        -nic user,model=virtio-net-pci </dev/null || st=$?
    if [ "$st" -eq 124 ]; then
        tail -n 40 "$guest_log" >&2
        fail "the guest did not finish within ${secs}s"
    fi
    grep -q GUEST-START "$guest_log" || { tail -n 40 "$guest_log" >&2; fail "the guest did not boot"; }
}
