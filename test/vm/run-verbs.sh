#!/usr/bin/env bash
# vm/verbs: tbrdma_ib.ko's RDMA devices in one VM, over two loop cables and
# one cable of the simulated Thunderbolt core (test/vm/tbsim), each end a
# QEMU edu device. test/vm/verbs-guest.sh does the checks; this counts its
# PASS:/FAIL: lines, plus the VM itself (it fails on a kernel Oops, BUG or
# WARNING), and ends with "vm/verbs: N passed, M failed". Exit 77 (skip)
# only when no VM can boot here.
set -uo pipefail

suite=verbs
# shellcheck source-path=SCRIPTDIR source=tbsim/sim-setup.sh
. "$(dirname "$0")/tbsim/sim-setup.sh"
bindir=$(pwd)
if [ ! -x "$bindir/tbv_uverbs" ]; then
    echo "run-verbs: $bindir/tbv_uverbs was not built (make check builds it)"
    echo "vm/verbs: 0 passed, 1 failed"
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
case $rc in
    0) echo "PASS: the VM: no kernel problems"; passed=$((passed + 1)) ;;
    1) echo "PASS: the VM: no kernel problems (the guest's failures are above)"; passed=$((passed + 1)) ;;
    123) echo "FAIL: the VM: kernel problems in its log"; failed=$((failed + 1)) ;;
    124) echo "FAIL: the VM: time limit"; failed=$((failed + 1)) ;;
    *) echo "FAIL: the VM: exit status $rc"; failed=$((failed + 1)) ;;
esac
echo "vm/verbs: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
