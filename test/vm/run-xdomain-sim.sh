#!/usr/bin/env bash
# vm/xdomain-sim: tbrdma's XDomain links over the simulated Thunderbolt
# core (test/vm/tbsim) in one VM: two simulated hosts, each with a QEMU edu
# device as its controller, behind QEMU's emulated IOMMU, so a bus address
# is never a physical address. test/vm/xdomain-sim-guest.sh does the
# checks. Exit 77 (skip) only when no VM can boot here.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=${TB_TOP_SRCDIR:-$(cd "$here/../.." && pwd)}
build=${TB_TOP_BUILDDIR:-$top/build}
vmdir=${TB_VM_DIR:-$top/build/vm}
[ -f "$vmdir/kernel-version" ] || "$here/setup-vm.sh" "$vmdir" >&2 ||
    { echo "xdomain-sim: no VM can boot here"; exit 77; }
kver=$(cat "$vmdir/kernel-version")
work=$build/test/vm/xdomain-sim-work
mods=$("$here/tbsim/build-tbsim.sh" "$kver" "$work") ||
    { echo "xdomain-sim: 0 passed, 1 failed (could not build the modules)"; exit 1; }
{ read -r sim_ko; read -r ko; } <<< "$mods"
"$here/vm-run.sh" --timeout "${TB_VM_TIMEOUT:-3000}" --check-dmesg --iommu \
    --device edu --device edu --share "$work" \
    -- "$here/xdomain-sim-guest.sh" "$top" "$build" "$sim_ko" "$ko"
