#!/usr/bin/env bash
# vm/security: one VM with tbrdma.ko (loop=2) in which a second local user
# attacks a first one's memory (test/vm/security-guest.sh, tbk_attack.c).
# Counts the guest's PASS:/FAIL: lines, plus the VM itself (it fails on a
# kernel Oops, BUG or WARNING), and ends with "security: N passed, M
# failed". Exit 77 (skip) only when no VM can be booted here.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=${TB_TOP_SRCDIR:-$(cd "$here/../.." && pwd)}
build=${TB_TOP_BUILDDIR:-$top/build}
ko=$build/kernel/tbrdma.ko
bindir=$(pwd)
if [ ! -f "$ko" ] || [ ! -x "$bindir/tbk_attack" ]; then
    echo "security: $ko or $bindir/tbk_attack was not built"
    echo "security: 0 passed, 1 failed"
    exit 1
fi
log=$bindir/security.out
"$here/vm-run.sh" --timeout "${TB_VM_TIMEOUT:-1200}" --check-dmesg \
    --insmod "$ko loop=2 max_user_contexts=12" -- "$here/security-guest.sh" "$bindir" > "$log" 2>&1
rc=$?
cat "$log"
[ $rc -eq 125 ] && ! command -v qemu-system-x86_64 > /dev/null && exit 77
passed=$(grep -c '^PASS: ' "$log")
failed=$(grep -c '^FAIL: ' "$log")
case $rc in
    0) echo "PASS: the VM: no kernel problems"; passed=$((passed + 1)) ;;
    123) echo "FAIL: the VM: kernel problems in its log"; failed=$((failed + 1)) ;;
    124) echo "FAIL: the VM: time limit"; failed=$((failed + 1)) ;;
    *) echo "FAIL: the VM: exit status $rc"; failed=$((failed + 1)) ;;
esac
echo "security: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
