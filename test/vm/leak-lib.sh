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

# Lets what is freed late be freed: sysfs nodes stay alive while a cached
# dentry or inode refers to them (anything that read a sysfs file), RCU
# frees after a grace period. One drop_caches only clears the referenced
# bit of a recently used dentry or inode; the next one frees it, and then
# its parent.
settle() {
    sync
    for _ in 1 2 3 4; do echo 2 > /proc/sys/vm/drop_caches; done
    sleep 1
}

# With slub_debug=U every live slab object records its allocation stack;
# code of a module no longer loaded shows there as a bare address in
# module space. The distinct ones, one per line. (So does a live module's
# init code, freed after it ran: module_ranges tells them apart.)
module_addrs() {
    cat /sys/kernel/debug/slab/*/alloc_traces 2>/dev/null |
        grep -oE '0xffffffff[c-f][0-9a-f]{7}' | sort -u
}

# module_ranges MODULE...: "start end" of each loaded module's core code,
# for leaked_addrs once the module is gone; 0x and 16 hex digits, as
# module_addrs prints them, so that they compare as strings. (Its init
# code is freed, and its range forgotten, before insmod returns: an
# object allocated there with no core function on the stack is missed.)
module_ranges() {
    local m base
    for m in "$@"; do
        base=$(awk -v m="$m" '$1 == m { print $6 }' /proc/modules)
        [ -n "$base" ] && printf '0x%016x 0x%016x\n' "$base" $((base + $(cat "/sys/module/$m/coresize")))
    done
}

# leaked_addrs BEFORE AFTER RANGES: the addresses of module_addrs' AFTER
# list, not in BEFORE, that lie in one of RANGES (module_ranges' output).
leaked_addrs() {
    comm -13 "$1" "$2" | awk -v ranges="$3" '
        BEGIN { while ((getline l < ranges) > 0) { split(l, r); lo[++n] = r[1] ""; hi[n] = r[2] "" } }
        { a = $1 ""; for (i = 1; i <= n; i++) if (a >= lo[i] && a < hi[i]) { print; next } }'
}

# leak_records ADDRS: the allocation records (cache, count, caller, stack)
# that name one of the addresses in file ADDRS. Left out: records of the
# IOMMU's IOVA cache (unmapping refills it, and it lives as long as the
# device's IOMMU domain, not the driver that unmapped), and the per-CPU
# sheaves of the slab allocator (Linux 6.18 and later), which whatever
# allocation finds its CPU's sheaf empty, or free finds it full, allocates
# for the cache.
leak_records() {
    local f
    for f in /sys/kernel/debug/slab/*/alloc_traces; do
        awk -v cache="$(basename "$(dirname "$f")")" '
            function flush() { if (hit && rec !~ /free_iova_fast|__pcs_replace_(empty|full)_main/) printf "%s", rec }
            NR == FNR { bad[$1] = 1; next }
            /^ *[0-9]+ / { flush(); rec = cache ": " $0 "\n"; hit = 0; next }
            { rec = rec $0 "\n"; for (a in bad) if (index($0, a)) hit = 1 }
            END { flush() }' "$1" "$f"
    done
}
