#!/usr/bin/env bash
# vm/xdomain-sim: tbrdma's XDomain links over the simulated Thunderbolt
# core (test/vm/tbsim) in one VM: two simulated hosts, each with a QEMU edu
# device as its controller, behind QEMU's emulated IOMMU, so a bus address
# is never a physical address; two NUMA nodes, a controller on each, for
# where each link's poll thread runs. test/vm/xdomain-sim-guest.sh does the
# checks. Exit 77 (skip) only when no VM can boot here.
set -uo pipefail

suite=xdomain-sim
# shellcheck source-path=SCRIPTDIR source=tbsim/sim-setup.sh
. "$(dirname "$0")/tbsim/sim-setup.sh"
# slub_debug=U: live slab objects keep their allocation stacks, for the
# leak check at the end.
TB_VM_APPEND="slub_debug=U,kmalloc-*,kernfs_node_cache ${TB_VM_APPEND:-}" \
"$here/vm-run.sh" --timeout "${TB_VM_TIMEOUT:-3000}" --check-dmesg --iommu --numa \
    --device edu,bus=node0 --device edu,bus=node1 --share "$work" \
    -- "$here/xdomain-sim-guest.sh" "$top" "$build" "$sim_ko" "$ko"
