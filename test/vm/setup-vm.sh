#!/usr/bin/env bash
# Prepares the test VM (see docs/vm.md): installs what is missing (as root)
# and writes the VM directory:
#   kernel-version       e.g. 6.1.0-56-amd64 (Debian 12), 6.12.117+deb13-amd64
#   vmlinuz              symlink to /boot/vmlinuz-<version>
#   vmlinux              the same kernel uncompressed (boots in half the time)
#   initramfs.cpio.gz    busybox + our /init + the 9p/virtio modules
#   vm.env               the same facts as shell variables (TB_VM_*)
#
# Usage: test/vm/setup-vm.sh [VMDIR]   (default $TB_VM_DIR, else <repo>/build/vm)
#
# The kernel is the running distribution's own: the linux-image-<release>
# that its linux-image-amd64 depends on, or an older release of the same
# series when apt has no headers package for that one yet (the module is
# built against the headers, so both must be the same release).
# TB_VM_KVER=<release> pins it.
# Safe to run again: it installs only what is missing and rebuilds the
# initramfs (under a second).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
vmdir=${1:-${TB_VM_DIR:-$top/build/vm}}

say() { echo "setup-vm: $*" >&2; }
die() { say "error: $*"; exit 1; }

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed'
}

apt_updated=no
apt_update() {
    [ "$apt_updated" = yes ] && return 0
    # Others may be running apt on the same machine: wait for the lock.
    apt-get -o DPkg::Lock::Timeout=600 update -q >&2
    apt_updated=yes
}

# Installs the named packages that are not installed yet.
need() {
    local missing=() p
    for p in "$@"; do installed "$p" || missing+=("$p"); done
    [ "${#missing[@]}" -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        die "missing packages: ${missing[*]} (run this script as root, or: apt-get install ${missing[*]})"
    fi
    say "installing: ${missing[*]}"
    apt_update
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 \
        install -y -q --no-install-recommends "${missing[@]}" >&2
}

# The newest release of the distribution's kernel that apt has both an
# image and headers for: the one linux-image-amd64 depends on, else an
# older one of the same major.minor and flavour (headers can lag behind).
newest_kernel() {
    local dep mm k
    dep=$(apt-cache depends linux-image-amd64 2>/dev/null |
          sed -n 's/^ *Depends: linux-image-\(.*-amd64\)$/\1/p' | head -n1)
    [ -n "$dep" ] || return 1
    mm=$(echo "$dep" | cut -d. -f1,2)
    # Same flavour: a digit before "-amd64" (not -rt-amd64, -cloud-amd64).
    for k in $dep $(apt-cache search --names-only "^linux-image-${mm/./\\.}\\..*[0-9]-amd64\$" |
                    sed -n 's/^linux-image-\([^ ]*\) .*/\1/p' | sort -rV); do
        if apt-cache policy "linux-headers-$k" |
                sed -n 's/^ *Candidate: *//p' | grep -qv '(none)'; then
            echo "$k"
            return 0
        fi
    done
    return 1
}

# --- 1. packages --------------------------------------------------------------
# qemu-system-x86: the VM; busybox-static: the initramfs' userland;
# cpio: packs it; kmod: modprobe/depmod on the host and (same files) in the VM;
# xz-utils, zstd: unpack the kernel and compressed modules; iproute2: ip and rdma (rxe set-up) inside the VM; rdma-core, ibverbs-*:
# soft-RoCE user space (ibv_devices) for the baseline runs; perftest: the
# verbs benchmarks vm/verbs runs over tb and bench-vm over both.
need qemu-system-x86 busybox-static cpio kmod iproute2 xz-utils zstd \
     rdma-core ibverbs-utils libibverbs1 ibverbs-providers perftest

kver=${TB_VM_KVER:-}
if [ -z "$kver" ]; then
    kver=$(newest_kernel || true)
    if [ -z "$kver" ] && [ "$(id -u)" -eq 0 ]; then
        apt_update   # a fresh machine may have no package lists yet
        kver=$(newest_kernel || true)
    fi
    if [ -z "$kver" ]; then
        # No apt data (offline?): fall back to the newest kernel already here.
        kver=$(find /boot -maxdepth 1 -name 'vmlinuz-*-amd64' -printf '%f\n' |
               sed 's/^vmlinuz-//' | sort -V | tail -n1)
    fi
    [ -n "$kver" ] || die "no linux-image-*-amd64 with headers available from apt"
fi
case $kver in *-amd64) ;; *) die "unexpected kernel release '$kver'";; esac

# The image is only used as files (/boot and /lib/modules): the host never
# boots it. Its package also runs depmod, which modprobe in the VM relies on.
need "linux-image-$kver" "linux-headers-$kver"

kernel=/boot/vmlinuz-$kver
moddir=/lib/modules/$kver
[ -r "$kernel" ] || die "$kernel not readable"
[ -f "$moddir/modules.dep.bin" ] || depmod "$kver" ||
    die "no module index in $moddir"

# --- 2. initramfs -------------------------------------------------------------
mkdir -p "$vmdir"
stage=$(mktemp -d "$vmdir/initramfs.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,dev,proc,sys,newroot,modules}
cp /bin/busybox "$stage/bin/busybox"
cp "$here/init.sh" "$stage/init"
cp "$here/stage2.sh" "$stage/stage2.sh"
chmod 755 "$stage/init" "$stage/stage2.sh"

# What mounting the host over 9p needs. modprobe resolves the dependencies
# (netfs, fscache, virtio_ring, ...) and says which are built in, so this
# follows Debian's config without hard-coding it. Order: dependencies first.
: > "$stage/modules/order"
for m in virtio_pci 9pnet_virtio 9p; do
    modprobe -S "$kver" --show-depends "$m"
done | awk '$1 == "insmod" && !seen[$2]++ { print $2 }' |
while read -r ko; do
    base=$(basename "$ko")
    case $ko in
        *.ko)     cp "$ko" "$stage/modules/$base" ;;
        # busybox insmod cannot read compressed modules: unpack them.
        *.ko.xz)  base=${base%.xz};  xz -dc "$ko" > "$stage/modules/$base" ;;
        *.ko.zst) base=${base%.zst}; zstd -qdc "$ko" > "$stage/modules/$base" ;;
        *.ko.gz)  base=${base%.gz};  gzip -dc "$ko" > "$stage/modules/$base" ;;
        *) die "unexpected module file $ko" ;;
    esac
    echo "$base" >> "$stage/modules/order"
done
[ -s "$stage/modules/order" ] || say "note: 9p and virtio are all built in"

(cd "$stage" && find . -mindepth 1 -print0 | LC_ALL=C sort -z |
    cpio --null -o -H newc --quiet --reproducible) | gzip -9n > "$stage.cpio.gz"
mv -f "$stage.cpio.gz" "$vmdir/initramfs.cpio.gz"

# --- 3. uncompressed kernel ---------------------------------------------------
# Under TCG the guest spends ~3 s unpacking the xz-compressed bzImage at every
# boot. The ELF inside boots directly through its PVH entry point (Debian
# sets CONFIG_PVH), which QEMU supports: unpack it once here. Side effects:
# no KASLR and 4-level paging, both like most real machines.
extract_vmlinux() {
    local off
    # Try each xz header in the file until one unpacks to an ELF.
    while IFS=: read -r off _; do
        # xz stops at the end of its stream, so tail may die of SIGPIPE:
        # judge by the result, not by the pipeline's status.
        tail -c +"$((off + 1))" "$kernel" | xz -dc --single-stream > "$1" 2>/dev/null || true
        [ "$(head -c 4 "$1" | od -An -tx1 | tr -d ' ')" = 7f454c46 ] && return 0
    done < <(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$kernel")
    rm -f "$1"
    return 1
}
if [ ! -s "$vmdir/vmlinux" ] || [ "$kernel" -nt "$vmdir/vmlinux" ] ||
   [ "$(cat "$vmdir/kernel-version" 2>/dev/null)" != "$kver" ]; then
    if extract_vmlinux "$vmdir/vmlinux.$$"; then
        mv -f "$vmdir/vmlinux.$$" "$vmdir/vmlinux"
    else
        # vm-run.sh then boots the bzImage: slower, same result.
        rm -f "$vmdir/vmlinux"
        say "note: could not unpack $kernel; the VM boots the compressed image"
    fi
fi

echo "$kver" > "$vmdir/kernel-version"
ln -sfn "$kernel" "$vmdir/vmlinuz"
cat > "$vmdir/vm.env" <<EOF
# Written by test/vm/setup-vm.sh; source it from shell scripts.
TB_VM_KVER=$kver
TB_VM_KERNEL=$kernel
TB_VM_INITRD=$vmdir/initramfs.cpio.gz
TB_VM_KBUILD=$moddir/build
EOF

say "initramfs modules: $(tr '\n' ' ' < "$stage/modules/order")"
say "VM directory: $vmdir"
echo "kernel: $kver"
