#!/bin/busybox sh
# shellcheck shell=dash
# Stage 1 of the test VM: /init of the initramfs, PID 1, busybox only.
# Mounts the host's root (read-only) and the writable shares over 9p,
# then switch_root into the host root and runs stage2.sh there (as PID 1,
# so that the kernel's own module requests use the host's /sbin/modprobe).
# Protocol with test/vm/vm-run.sh: see docs/vm.md.

/bin/busybox --install -s /bin
export PATH=/bin

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1

# Nothing useful can happen without the host: say why and power off.
# (vm-run.sh sees no status file and reports a boot failure.)
fail() {
    echo "TBVM-FAIL: $*"
    poweroff -f
    echo o > /proc/sysrq-trigger
    sleep 5
}

while read -r m; do
    insmod "/modules/$m" || fail "insmod $m"
done < /modules/order

# msize: bigger 9p messages mean far fewer round trips for large reads.
# cache=loose on the read-only root: nothing changes it while the VM runs
# that the VM must see, and binaries/libraries load much faster.
# cache=mmap on writable shares: no stale data, but mmap(MAP_SHARED) works.
opts=trans=virtio,version=9p2000.L,msize=262144
mount -t 9p -o "$opts,ro,cache=loose" hostroot /newroot || fail "mount hostroot"

r=/newroot
mount -t proc proc $r/proc
mount -t sysfs sysfs $r/sys
mount -t devtmpfs devtmpfs $r/dev
mkdir -p $r/dev/pts $r/dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts $r/dev/pts
mount -t tmpfs -o mode=1777 tmpfs $r/dev/shm
mount -t tmpfs -o mode=1777 tmpfs $r/tmp
mount -t tmpfs -o mode=755 tmpfs $r/run
mkdir -p $r/run/tbvm
mount -t 9p -o "$opts,cache=mmap" tbctl $r/run/tbvm || fail "mount tbctl"

# Writable shares, each at its host path: "TAG PATH" per line.
while read -r tag path; do
    [ -n "$tag" ] || continue
    mkdir -p "$r$path" 2>/dev/null   # needed under /tmp, exists elsewhere
    mount -t 9p -o "$opts,cache=mmap" "$tag" "$r$path" || fail "mount $tag on $path"
done < $r/run/tbvm/mounts

cp /stage2.sh $r/run/tbvm-stage2.sh
umount /proc /sys
# shellcheck disable=SC2093 # exec only returns if switch_root fails
exec switch_root $r /bin/sh /run/tbvm-stage2.sh
fail "switch_root"
