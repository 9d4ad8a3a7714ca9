#!/usr/bin/env bash
# vm/verbs: tbrdma_ib.ko's RDMA devices in one VM, over two loop cables and
# one cable of the simulated Thunderbolt core (test/vm/tbsim), each end a
# QEMU edu device. test/vm/verbs-guest.sh does the checks; this counts its
# PASS:/FAIL:/SKIP: lines, plus the VM itself (it fails on a kernel Oops,
# BUG or WARNING), and ends with "vm/verbs: N passed, M failed, K
# skipped". Where tbsim does not build for the VM's kernel, the XDomain
# checks are skipped and say so. Exit 77 (skip) only when no VM can boot
# here.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=${TB_TOP_SRCDIR:-$(cd "$here/../.." && pwd)}
build=${TB_TOP_BUILDDIR:-$top/build}
vmdir=${TB_VM_DIR:-$top/build/vm}
bindir=$(pwd)
work=$build/test/vm/verbs-work
closing() { echo "vm/verbs: $1 passed, $2 failed, $3 skipped"; }
[ -f "$vmdir/kernel-version" ] || "$here/setup-vm.sh" "$vmdir" >&2 ||
    { echo "run-verbs: no VM can boot here"; exit 77; }
kver=$(cat "$vmdir/kernel-version")
mkdir -p "$work"
if [ ! -x "$bindir/tbv_uverbs" ]; then
    echo "run-verbs: $bindir/tbv_uverbs was not built (make check builds it)"
    closing 0 1 0
    exit 1
fi
# tbrdma.ko that binds to tbsim, or without tbsim the one for the VM's
# kernel; tbrdma_ib.ko is built beside it.
sim_ko=-
if mods=$("$here/tbsim/build-tbsim.sh" "$kver" "$work"); then
    { read -r sim_ko; read -r ko; } <<< "$mods"
elif ko=$("$here/kmod-for-vm.sh" "$kver" "$work" "$build/kernel/tbrdma.ko"); then
    echo "run-verbs: tbsim does not build for $kver: the XDomain checks are skipped"
else
    closing 0 1 0
    exit 1
fi
log=$work/verbs.out
# slub_debug=U: live slab objects keep their allocation stacks, for the
# leak check at the end.
TB_VM_APPEND="slub_debug=U,kmalloc-*,kernfs_node_cache ${TB_VM_APPEND:-}" \
"$here/vm-run.sh" --timeout "${TB_VM_TIMEOUT:-1200}" --check-dmesg \
    --device edu --device edu --share "$work" \
    -- "$here/verbs-guest.sh" "$build" "$sim_ko" "$ko" "$bindir" > "$log" 2>&1
rc=$?
cat "$log"
[ $rc -eq 125 ] && ! command -v qemu-system-x86_64 > /dev/null && exit 77
passed=$(grep -c '^PASS: ' "$log")
failed=$(grep -c '^FAIL: ' "$log")
skipped=$(grep -c '^SKIP: ' "$log")
case $rc in
    0) echo "PASS: the VM: no kernel problems"; passed=$((passed + 1)) ;;
    1) echo "PASS: the VM: no kernel problems (the guest's failures are above)"; passed=$((passed + 1)) ;;
    123) echo "FAIL: the VM: kernel problems in its log"; failed=$((failed + 1)) ;;
    124) echo "FAIL: the VM: time limit"; failed=$((failed + 1)) ;;
    *) echo "FAIL: the VM: exit status $rc"; failed=$((failed + 1)) ;;
esac
closing "$passed" "$failed" "$skipped"
[ "$failed" -eq 0 ]
