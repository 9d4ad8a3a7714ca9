#!/usr/bin/env bash
# The packages test (make check in test/distro): "make deb" for the release
# this runs on, the packages installed with apt into a fresh root of the
# same release (debootstrap, with only the kernel of the test VM, its
# headers, iproute2 and ucx-utils), DKMS building tbrdma.ko there for that
# kernel, then a VM booted on that root: modprobe tbrdma, ucx_info -d and
# one ucx_perftest over loop0, and libibverbs' tools over the installed
# provider, through the installed files only.
#
# The root is cached in $TB_PKG_CACHE (default /var/cache/tb/pkg-root) and
# every run works on an overlay of it, so each install starts fresh.
# TB_PKG_SUITE: the release's suite for debootstrap (default: this
# system's codename). Ends with "packages: N passed, M failed"; exit 77
# when no VM or root can be had here.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=${TB_TOP_SRCDIR:-$(cd "$here/../.." && pwd)}
topbuild=${TB_TOP_BUILDDIR:-$top/build}
vmdir=${TB_VM_DIR:-$topbuild/vm}
cache=${TB_PKG_CACHE:-/var/cache/tb/pkg-root}
mirror=${TB_DISTRO_MIRROR:-http://deb.debian.org/debian}
# shellcheck source=/dev/null
suite=${TB_PKG_SUITE:-$(. /etc/os-release && echo "$VERSION_CODENAME")}
work=$PWD/pkg-work
passed=0 failed=0
# shellcheck source-path=SCRIPTDIR source=root-lib.sh
. "$here/root-lib.sh"
trap unmount_all EXIT

pass() { echo "PASS: packages: $*"; passed=$((passed + 1)); }
fail() { echo "FAIL: packages: $*"; failed=$((failed + 1)); }
finish() { echo "packages: $passed passed, $failed failed"; exit $((failed > 0)); }
skip() { echo "packages: SKIP: $*"; exit 77; }

[ "$(id -u)" = 0 ] || skip "needs root (debootstrap, chroot, apt)"
"$top/test/vm/setup-vm.sh" "$vmdir" > "$work.setup-vm.log" 2>&1 ||
    skip "no test VM (test/vm/setup-vm.sh failed: $work.setup-vm.log)"
kver=$(cat "$vmdir/kernel-version")

# --- the packages --------------------------------------------------------------
rm -rf "$work"
mkdir -p "$work"
if "$top/contrib/make-deb.sh" "$work/deb" > "$work/make-deb.out" 2>&1; then
    pass "make deb: $(cd "$work/deb" && echo *.deb)"
else
    tail -n 20 "$work/make-deb.out"
    fail "make deb (log: $work/make-deb.out)"
    finish
fi
grep '^lintian: [EW]:' "$work/make-deb.out" | sed 's/^/  /'
if grep -q '^lintian: E:' "$work/make-deb.out"; then
    fail "lintian reports errors"
else
    pass "lintian: no errors"
fi
# tbrdma-dkms, and tb-ucx and the provider where there were sources to
# build them.
debs=()
for f in "$work"/deb/tbrdma-dkms_*.deb "$work"/deb/tb-ucx_*_*.deb \
         "$work"/deb/tbrdma-ibverbs-provider_*_*.deb; do
    [ -e "$f" ] && debs+=("$f")
done
# libibverbs' example programs, to try the provider with.
extra=()
[[ " ${debs[*]##*/}" == *" tbrdma-ibverbs-provider_"* ]] && extra=(ibverbs-utils)

# --- a fresh root with the VM's kernel -------------------------------------------
base=$cache/$suite-$kver
if [ ! -f "$base/.tb-root" ]; then
    # Roots of this release's earlier kernels are of no more use.
    rm -rf "$base.new" "$cache/$suite"-*
    mkdir -p "$cache"
    command -v debootstrap > /dev/null ||
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap > /dev/null 2>&1
    if ! debootstrap --variant=minbase --include=iproute2,kmod \
            "$suite" "$base.new" "$mirror" > "$work/debootstrap.log" 2>&1; then
        tail -n 5 "$work/debootstrap.log"
        rm -rf "$base.new"
        skip "debootstrap of $suite failed (log: $work/debootstrap.log)"
    fi
    # This system's apt sources: its kernel may come from the security or
    # updates suites.
    rm -f "$base.new/etc/apt/sources.list"
    cp -r /etc/apt/sources.list* "$base.new/etc/apt/" 2>/dev/null
    apt_snapshot "$base.new"
    cp /etc/resolv.conf "$base.new/etc/resolv.conf" 2>/dev/null
    if ! { chroot "$base.new" apt-get update -q &&
           chroot "$base.new" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
               --no-install-recommends "linux-image-$kver" "linux-headers-$kver" ucx-utils
         } >> "$work/debootstrap.log" 2>&1; then
        tail -n 5 "$work/debootstrap.log"
        rm -rf "$base.new"
        skip "cannot install the kernel $kver and ucx-utils in the $suite root (log: $work/debootstrap.log)"
    fi
    touch "$base.new/.tb-root"
    mv "$base.new" "$base"
fi
root=$work/root
mkdir -p "$work/upper" "$work/ovl" "$root"
# The cached root, read-only, under this run's changes.
mount_overlay() {
    mount -t overlay overlay -o "lowerdir=$base,upperdir=$work/upper,workdir=$work/ovl" "$root" &&
        mounts+=("$root")
}
mount_overlay || skip "cannot mount an overlay on $base"
mount_system "$root" || skip "cannot mount /proc, /sys and /dev in $root"
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root "$@"; }

# --- install: apt resolves the dependencies, DKMS builds for the VM's kernel -----
mkdir -p "$root/tmp/debs"
cp "${debs[@]}" "$root/tmp/debs/"
in_root apt-get update -q > "$work/apt.log" 2>&1
names=("${debs[@]##*/}")
if in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        "${names[@]/#//tmp/debs/}" "${extra[@]}" >> "$work/apt.log" 2>&1; then
    pass "apt-get install ${names[*]}"
else
    tail -n 20 "$work/apt.log"
    fail "apt-get install (log: $work/apt.log)"
    finish
fi
# The packages' postinst builds for the kernels it finds; make sure of ours.
in_root dkms autoinstall -k "$kver" >> "$work/apt.log" 2>&1
if ls "$root/lib/modules/$kver/updates/dkms/"tbrdma.ko* > /dev/null 2>&1 &&
   ls "$root/lib/modules/$kver/updates/dkms/"tbrdma_ib.ko* > /dev/null 2>&1; then
    pass "DKMS built tbrdma.ko and tbrdma_ib.ko for $kver ($(in_root dkms status tbrdma 2>/dev/null | head -n1))"
else
    tail -n 20 "$work/apt.log"
    fail "DKMS built no tbrdma.ko or tbrdma_ib.ko for $kver (log: $work/apt.log)"
    finish
fi
unmount_all

# --- boot the root: the installed module and programs only --------------------------
# The overlay again, without the host's /proc, /sys and /dev (the guest's own).
mount_overlay || skip "cannot mount the overlay on $base again"
cat > "$root/root/packages-check.sh" <<'EOF'
#!/bin/bash
# In the VM booted on the packages' root (test/distro/run-packages.sh).
export PATH=/usr/sbin:/usr/bin:/sbin:/bin UCX_TB_DEVICE=kernel
ok() { echo "PASS: packages: $1"; }
no() { echo "FAIL: packages: $1"; }
modprobe tbrdma loop=1 && ok "modprobe tbrdma (the DKMS module)" || { no "modprobe tbrdma"; exit 1; }
modprobe tbrdma_ib && test -d /sys/class/infiniband/tbrdma_loop0 &&
    ok "modprobe tbrdma_ib: the RDMA device tbrdma_loop0" || no "modprobe tbrdma_ib"
if [ -e /etc/libibverbs.d/tbrdma.driver ]; then
    modprobe ib_uverbs
    ibv_devinfo -d tbrdma_loop0 > /tmp/devinfo.out 2>&1
    grep -q 'state:.*PORT_ACTIVE' /tmp/devinfo.out &&
        ok "ibv_devinfo through the installed provider: tbrdma_loop0 active" ||
        { cat /tmp/devinfo.out; no "ibv_devinfo through the installed provider"; }
    port=18600
    for pp in ibv_rc_pingpong ibv_ud_pingpong; do
        port=$((port + 1))
        timeout 60 $pp -d tbrdma_loop0 -g 0 -c -n 100 -p $port > /tmp/pp-server.out 2>&1 &
        sleep 1
        timeout 60 $pp -d tbrdma_loop0 -g 0 -c -n 100 -p $port 127.0.0.1 > /tmp/pp-client.out 2>&1
        client=$?
        if wait $! && [ $client -eq 0 ]; then
            ok "$pp on tbrdma_loop0, data checked"
        else
            cat /tmp/pp-server.out /tmp/pp-client.out; no "$pp on tbrdma_loop0"
        fi
    done
else
    echo "SKIP: packages: tbrdma-ibverbs-provider is not installed (no rdma-core source to build it)"
fi
[ -x /usr/bin/tbrun ] || { echo "SKIP: packages: tb-ucx is not installed (no UCX source to build it)"; exit 0; }
tbrun ucx_info -d > /tmp/info.out 2>&1
grep -q 'Transport: tb' /tmp/info.out && ok "tbrun ucx_info -d lists tb ($(tbrun --lib))" ||
    { cat /tmp/info.out; no "tbrun ucx_info -d lists tb"; }
tbrun ucx_perftest -t put_lat -x tb -d loop0 -n 1000 -p 13337 > /tmp/server.out 2>&1 &
sleep 2
if timeout 120 tbrun ucx_perftest 127.0.0.1 -t put_lat -x tb -d loop0 -n 1000 -p 13337 > /tmp/client.out 2>&1; then
    ok "ucx_perftest put_lat over loop0: $(grep -m1 'Final:' /tmp/client.out | awk '{ print $3 " us" }')"
else
    cat /tmp/client.out; no "ucx_perftest put_lat over loop0"
fi
wait
rmmod tbrdma_ib && rmmod tbrdma && ok "rmmod tbrdma_ib and tbrdma" || no "rmmod tbrdma_ib and tbrdma"
EOF
chmod 755 "$root/root/packages-check.sh"
"$top/test/vm/vm-run.sh" --vm-dir "$vmdir" --root "$root" --timeout 900 --check-dmesg \
    -- /root/packages-check.sh > "$work/vm.out" 2>&1
rc=$?
grep -E '^(PASS|FAIL|SKIP): packages' "$work/vm.out"
passed=$((passed + $(grep -c '^PASS: packages' "$work/vm.out")))
failed=$((failed + $(grep -c '^FAIL: packages' "$work/vm.out")))
if [ "$rc" != 0 ]; then
    tail -n 20 "$work/vm.out"
    fail "the VM on the packages' root (exit status $rc, output: $work/vm.out)"
fi
finish
