#!/usr/bin/env bash
# One VM with tbrdma.ko (loop=2): the UCX-level suites on the kernel device
# (test/vm/ucx-kernel-guest.sh). make check runs it; exit 77 (skip) only
# when no VM can be booted here at all.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=${TB_TOP_SRCDIR:-$(cd "$here/../.." && pwd)}
build=${TB_BUILDDIR:-$top/build}
ko=$build/kernel/tbrdma.ko
[ -f "$ko" ] || { echo "ucx-kernel: $ko was not built (kernel headers missing?)"; exit 1; }
"$here/vm-run.sh" --timeout "${TB_VM_TIMEOUT:-3000}" --check-dmesg \
    --insmod "$ko loop=2" -- "$here/ucx-kernel-guest.sh" "$top" "$build"
