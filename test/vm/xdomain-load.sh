#!/usr/bin/env bash
# The Thunderbolt/USB4 (XDomain) part of tbrdma.ko, in the test VM, where
# there is no Thunderbolt hardware: what can be checked without a peer.
#
#   test/vm/xdomain-load.sh            boots a VM (vm-run.sh --check-dmesg)
#                                      and runs itself inside with --guest
#
# Inside: modprobe thunderbolt; insmod tbrdma.ko loop=2; the service driver
# "tbrdma" is registered on the thunderbolt bus, the property directory is
# offered (kernel log), the module alias matches the service, /sys/class/
# tbrdma has the loop links and no tbN, tbrdma-info shows them; thunderbolt
# cannot be unloaded under tbrdma; rmmod tbrdma removes the driver; xdomain=0
# loads without it; bad XDomain parameters refuse the load; load/unload
# cycles; rmmod thunderbolt; tbrdma-info without the module. The kernel log
# must stay clean (Oops, BUG, WARNING, ...).
#
# Environment: TB_KMOD (the module; default <top builddir>/kernel/tbrdma.ko,
# rebuilt for the guest kernel if it is for another one), TB_INFO
# (tbrdma-info; default <top builddir>/src/tools/tbrdma-info, skipped if
# missing), TB_VM_DIR. Ends with "xdomain: N passed, M failed"; exit 77
# (skip) only when no VM can boot here.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)

if [ "${1:-}" = --guest ]; then
    # ---------------------------------------------------------------- guest
    ko=${TBX_KO:?}
    info=${TBX_INFO:-}
    passed=0
    failed=0
    pass() { echo "PASS: xdomain: $*"; passed=$((passed + 1)); }
    fail() { echo "FAIL: xdomain: $*"; failed=$((failed + 1)); }
    check() { local what=$1; shift; if "$@"; then pass "$what"; else fail "$what"; fi; }
    drv=/sys/bus/thunderbolt/drivers/tbrdma
    mark() { echo "xdomain-load: $*" > /dev/kmsg; }
    # Kernel log since a mark, and whether it has a pattern.
    since_mark() { dmesg | sed -n "/xdomain-load: $1\$/,\$p"; }
    log_has() { local out; out=$(since_mark "$1"); grep -q -- "$2" <<< "$out"; }
    run_info() {
        [ -n "$info" ] && [ -x "$info" ] || { echo "(tbrdma-info not built: skipped)"; return 0; }
        echo "---- tbrdma-info $*"
        "$info" "$@" | tee /tmp/info.out
        echo "----"
    }

    check "modprobe thunderbolt" modprobe thunderbolt
    check "thunderbolt bus present" test -d /sys/bus/thunderbolt/drivers

    mark "load 1"
    check "insmod tbrdma.ko loop=2" insmod "$ko" loop=2
    check "service driver registered ($drv)" test -d "$drv"
    check "XDomain on (parameter xdomain=Y)" \
        test "$(cat /sys/module/tbrdma/parameters/xdomain 2>/dev/null)" = Y
    since_mark "load 1" | grep -E 'tbrdma|thunderbolt' | sed 's/^/    dmesg: /'
    check "property directory offered (kernel log)" \
        log_has "load 1" 'Thunderbolt service "tbrdma" offered'
    check "module alias for the service" \
        bash -c "modinfo -F alias '$ko' | grep -qx 'tbsvc:ktbrdmap00000001v\*r\*'"
    check "depends on thunderbolt" \
        bash -c "modinfo -F depends '$ko' | grep -qw thunderbolt"
    check "loop links in /sys/class/tbrdma" test -d /sys/class/tbrdma/loop0 -a -d /sys/class/tbrdma/loop1
    check "no XDomain link without hardware" \
        bash -c '! ls -d /sys/class/tbrdma/tb* 2>/dev/null'
    check "driver has no device bound" \
        bash -c "! ls '$drv' | grep -q -- '-'"
    run_info
    if [ -n "$info" ] && [ -x "$info" ]; then
        check "tbrdma-info lists loop0 and loop1" \
            bash -c "grep -q '^link:.loop0' /tmp/info.out && grep -q '^link:.loop1' /tmp/info.out"
        check "tbrdma-info reads /dev/tbrdma" grep -q '^tbrdma: /dev/tbrdma, ABI' /tmp/info.out
        run_info -v -d loop1 > /dev/null
        check "tbrdma-info -d loop1" grep -q '^link:.loop1' /tmp/info.out
    fi
    check "rmmod thunderbolt refused while tbrdma uses it" bash -c '! rmmod thunderbolt 2>/dev/null'
    check "rmmod tbrdma" rmmod tbrdma
    check "service driver gone" test ! -e "$drv"
    check "class gone" test ! -e /sys/class/tbrdma

    mark "load 2"
    check "insmod xdomain=0" insmod "$ko" xdomain=0 loop=1
    check "no service driver with xdomain=0" test ! -e "$drv"
    check "xdomain=0 said so" log_has "load 2" 'XDomain links disabled'
    check "rmmod tbrdma (xdomain=0)" rmmod tbrdma

    for p in xd_rx_slots=1 xd_tx_slots=4096 xd_timeout_ms=1; do
        mark "bad $p"
        check "insmod $p refused" bash -c "! insmod '$ko' $p 2>/dev/null"
        check "$p explained in the kernel log" log_has "bad $p" "${p%%=*}="
        check "no tbrdma left after $p" test ! -e /sys/module/tbrdma
    done

    for i in 1 2 3; do
        check "load/unload cycle $i" bash -c "insmod '$ko' loop=1 && test -d '$drv' && rmmod tbrdma && test ! -e '$drv'"
    done
    check "rmmod thunderbolt" rmmod thunderbolt
    check "thunderbolt gone" test ! -e /sys/module/thunderbolt
    if [ -n "$info" ] && [ -x "$info" ]; then
        run_info
        check "tbrdma-info without the module" grep -q '^no tb links (the tbrdma module is not loaded)' /tmp/info.out
    fi
    echo "xdomain: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
fi

# ------------------------------------------------------------------- host
top=${TB_TOP_SRCDIR:-$(cd "$here/../.." && pwd)}
builddir=$(pwd)
topbuild=${TB_TOP_BUILDDIR:-$top/build}
vmdir=${TB_VM_DIR:-$top/build/vm}
work=$builddir/kt-work/xdomain   # removed by make clean with kt-work
say() { echo "xdomain-load: $*"; }

mkdir -p "$work"
if ! "$here/setup-vm.sh" "$vmdir" > "$work/setup-vm.log" 2>&1; then
    say "setup-vm.sh failed (log: $work/setup-vm.log):"
    tail -n 5 "$work/setup-vm.log"
fi
kver=$(cat "$vmdir/kernel-version" 2>/dev/null || true)
if ! command -v qemu-system-x86_64 > /dev/null; then
    say "SKIP: qemu-system-x86_64 is not installed (run test/vm/setup-vm.sh as root)"
    exit 77
fi
if [ -z "$kver" ] || [ ! -r "/boot/vmlinuz-$kver" ] || [ ! -f "$vmdir/initramfs.cpio.gz" ]; then
    say "SKIP: no guest kernel/initramfs (run test/vm/setup-vm.sh as root)"
    exit 77
fi

ko=${TB_KMOD:-$topbuild/kernel/tbrdma.ko}
vermagic() { modinfo -F vermagic "$1" 2>/dev/null | awk '{ print $1 }'; }
if [ ! -f "$ko" ] || [ "$(vermagic "$ko")" != "$kver" ]; then
    kb=/lib/modules/$kver/build
    if [ ! -f "$kb/Makefile" ]; then
        say "FAIL: no tbrdma.ko for $kver and no headers ($kb): run test/vm/setup-vm.sh as root"
        echo "xdomain: 0 passed, 1 failed"
        exit 1
    fi
    say "building tbrdma.ko for the guest kernel $kver"
    mkdir -p "$work/kmod"
    for f in "$top"/kernel/Kbuild "$top"/kernel/*.[ch]; do
        cmp -s "$f" "$work/kmod/${f##*/}" || cp "$f" "$work/kmod/"
    done
    if ! make -C "$kb" M="$work/kmod" TB_COMMON="$top/src/common" modules > "$work/kmod.log" 2>&1; then
        say "FAIL: building tbrdma.ko (log: $work/kmod.log):"
        tail -n 20 "$work/kmod.log"
        echo "xdomain: 0 passed, 1 failed"
        exit 1
    fi
    ko=$work/kmod/tbrdma.ko
fi
if ! modinfo -F alias "$ko" | grep -q '^tbsvc:'; then
    say "FAIL: $ko has no XDomain part (was it built against headers without CONFIG_USB4?)"
    echo "xdomain: 0 passed, 1 failed"
    exit 1
fi
info=${TB_INFO:-$topbuild/src/tools/tbrdma-info}
[ -x "$info" ] || info=
say "guest kernel $kver, module $ko${info:+, $info}"
# The guest reads them from $work, which it must see: the build tree is
# shared writable; /tmp, /run and /dev/shm are the VM's own.
cp "$ko" "$work/tbrdma.ko"
ko=$work/tbrdma.ko
if [ -n "$info" ]; then
    cp "$info" "$work/tbrdma-info"
    info=$work/tbrdma-info
fi
share=()
case $(realpath "$work") in
    "$(realpath "$top")"/build/*) ;;
    *) share=(--share "$work") ;;
esac

log=$work/xdomain-load.log
TB_VM_APPEND="oops=panic panic_on_warn=1 ${TB_VM_APPEND:-}" \
    "$here/vm-run.sh" --check-dmesg --timeout 300 "${share[@]}" \
    --env TBX_KO="$ko" ${info:+--env TBX_INFO="$info"} \
    -- "$here/xdomain-load.sh" --guest > "$log" 2>&1
rc=$?
cat "$log"
cp "$vmdir/last-dmesg.log" "$work/xdomain-load.dmesg" 2>/dev/null || true
if [ "$rc" -ne 0 ]; then
    grep -q '^xdomain: [0-9]* passed' "$log" || echo "xdomain: 0 passed, 1 failed (vm-run.sh exit status $rc)"
    exit 1
fi
grep -q '^xdomain: [0-9]* passed, 0 failed' "$log"
