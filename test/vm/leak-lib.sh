# shellcheck shell=bash
# Sourced by the guest scripts of the VM suites: what their leak checks
# measure.

# Pages pinned with FOLL_PIN host-wide: "acquired released". stat_refresh
# folds the per-CPU counter deltas first, so the numbers are exact.
pins() {
    echo 1 > /proc/sys/vm/stat_refresh 2>/dev/null
    awk '/^nr_foll_pin_acquired/ { a = $2 } /^nr_foll_pin_released/ { r = $2 }
         END { print a + 0, r + 0 }' /proc/vmstat
}

# With slub_debug=U every live slab object records its allocation stack;
# code of a module no longer loaded shows there as a bare address in
# module space. The distinct ones, one per line.
module_addrs() {
    cat /sys/kernel/debug/slab/*/alloc_traces 2>/dev/null |
        grep -oE '0xffffffff[c-f][0-9a-f]{7}' | sort -u
}
