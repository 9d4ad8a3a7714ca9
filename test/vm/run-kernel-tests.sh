#!/usr/bin/env bash
# The kernel-module test suite (make check in test/vm): each test boots a
# fresh QEMU VM with test/vm/vm-run.sh --check-dmesg, loads tbrdma.ko
# (loop=2) inside, runs test/vm/kernel-tests-guest.sh TEST and ends with
# rmmod tbrdma, which must succeed. A test passes when the guest script
# passes and the guest's kernel log has no Oops, BUG, WARNING, KASAN-style
# report, general protection fault, hung task, lockup, RCU stall, slab or
# list corruption.
#
#   load      20 x (insmod loop=2, two-process WRITE+READ, rmmod); leaks:
#             vmalloc areas, pinned pages, slab objects by allocation stack
#             (slub_debug=U), SUnreclaim
#   onesided  put/get/atomics to a target process that sleeps
#   fuzz      ioctl/mmap/doorbell fuzzer, root and nobody at once, seeded
#   limits    RLIMIT_MEMLOCK without CAP_IPC_LOCK, and with it
#   kill      SIGKILL of the initiator, then of the target, mid-transfer;
#             SIGKILL while pinning
#   hammer    four processes, two links, every operation checked, with
#             registrations and a fifth process killed again and again;
#             red zones and poisoning on, leaks checked after rmmod
#
# Environment: TBK_TESTS (default "load onesided fuzz limits kill hammer"),
# TBK_FUZZ_SECONDS (default 60), TBK_FUZZ_SEED (default: from the clock,
# printed), TBK_LOAD_CYCLES (default 20), TB_KMOD (the module; default
# <top builddir>/kernel/tbrdma.ko), TB_VM_DIR (see vm-run.sh).
# Logs: <builddir>/kt-work/<test>.log and <test>.dmesg.
# Ends with "kernel: N passed, M failed". Exit 77 (skip) only when no VM can
# be booted here: QEMU or the guest kernel missing after setup-vm.sh.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=${TB_TOP_SRCDIR:-$(cd "$here/../.." && pwd)}
builddir=$(pwd)
topbuild=${TB_TOP_BUILDDIR:-$top/build}
vmrun=$here/vm-run.sh
vmdir=${TB_VM_DIR:-$top/build/vm}
work=$builddir/kt-work
tests=${TBK_TESTS:-load onesided fuzz limits kill hammer}
fuzz_seconds=${TBK_FUZZ_SECONDS:-60}
fuzz_seed=${TBK_FUZZ_SEED:-$(( $(date +%s%N) % 1000000007 ))}
passed=0
failed=0

say() { echo "kernel-tests: $*"; }

# --- can a VM boot here? --------------------------------------------------------
# setup-vm.sh is idempotent; as root it installs what is missing.
if ! "$here/setup-vm.sh" "$vmdir" > "$builddir/setup-vm.log" 2>&1; then
    say "setup-vm.sh failed (log: $builddir/setup-vm.log):"
    tail -n 5 "$builddir/setup-vm.log"
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

# --- the module, built for the guest's kernel -------------------------------------
mkdir -p "$work"
if ! ko=$("$here/kmod-for-vm.sh" "$kver" "$work" "${TB_KMOD:-$topbuild/kernel/tbrdma.ko}"); then
    say "FAIL: no tbrdma.ko for the guest kernel $kver (see above)"
    echo "kernel: 0 passed, 1 failed"
    exit 1
fi
# The guest reads everything from $work, which it must see: the build tree
# is shared writable; anything under /tmp, /run or /dev/shm is the VM's own.
cp "$ko" "$work/tbrdma.ko"
share=()
case $(realpath "$work") in
    "$(realpath "$top")"/build/*) ;;
    *) share=(--share "$builddir") ;;
esac
for p in tbk_traffic tbk_onesided tbk_fuzz tbk_memlock tbk_kill tbk_hammer; do
    if [ ! -x "$builddir/$p" ]; then
        say "FAIL: $builddir/$p was not built (make check builds it)"
        echo "kernel: 0 passed, 1 failed"
        exit 1
    fi
done
say "guest kernel $kver, module $ko, $(nproc) host CPUs"

# Kernel log lines that fail a test besides vm-run.sh's own (Oops, BUG:,
# WARNING:, KASAN, general protection): hung tasks, lockups, RCU stalls,
# SLUB debug reports, list and page corruption, UBSAN, refcount errors.
extra_problems='INFO: task .* blocked|soft lockup|hard LOCKUP|rcu: INFO|rcu_.*detected stall|^[^a-z]*BUG [a-zA-Z0-9_-]+ \(|Poison overwritten|Redzone|Object padding|list_(add|del) corruption|Bad page|page dumped because|UBSAN|refcount_t:|Unable to handle|kernel BUG'

# Boot arguments for all tests: a kernel oops or warning ends the VM at once
# (with the report on its console) instead of leaving a hung guest until the
# time limit; a task blocked for a minute is reported and does the same.
base_append="oops=panic panic_on_warn=1 softlockup_panic=1 hung_task_panic=1 sysctl.kernel.hung_task_timeout_secs=60"

run_test() {  # run_test NAME TIMEOUT EXTRA_APPEND
    local name=$1 timeout=$2 append="$base_append ${3:-}" start rc log=$work/$1.log problems
    echo "================ kernel test: $name"
    rm -f "$work/$name.dmesg"
    start=$(date +%s)
    TB_VM_APPEND="$append ${TB_VM_APPEND:-}" "$vmrun" --check-dmesg --timeout "$timeout" "${share[@]}" \
        --env TBK_BIN="$builddir" --env TBK_KO="$work/tbrdma.ko" --env TBK_WORK="$work" \
        --env TBK_FUZZ_SECONDS="$fuzz_seconds" --env TBK_FUZZ_SEED="$fuzz_seed" \
        ${TBK_LOAD_CYCLES:+--env TBK_LOAD_CYCLES="$TBK_LOAD_CYCLES"} \
        -- "$here/kernel-tests-guest.sh" "$name" > "$log" 2>&1
    rc=$?
    cat "$log"
    # The guest saved its kernel log there (vm-run.sh's last-dmesg.log may
    # already belong to another suite's VM under make -j2).
    problems=$(grep -E "$extra_problems" "$work/$name.dmesg" 2>/dev/null | head -20 || true)
    if [ "$rc" -eq 0 ] && [ -n "$problems" ]; then
        echo "kernel problems in the guest log ($work/$name.dmesg):"
        echo "$problems"
        rc=123
    fi
    if [ "$rc" -eq 0 ] && ! grep -q "^PASS: $name:" "$log"; then
        echo "no PASS line from the guest"
        rc=1
    fi
    if [ "$rc" -eq 0 ]; then
        echo "PASS: kernel-$name ($(( $(date +%s) - start )) s)"
        passed=$((passed + 1))
    else
        case $rc in
            123) why="kernel log problems" ;;
            124) why="time limit of $timeout s" ;;
            125) why="VM or module loading failed, or the guest kernel panicked" ;;
            *) why="exit status $rc" ;;
        esac
        echo "FAIL: kernel-$name ($why; $(( $(date +%s) - start )) s; log $log, kernel log $work/$name.dmesg)"
        failed=$((failed + 1))
    fi
}

for t in $tests; do
    case $t in
        # slub_debug=U: every kmalloc and kernfs object records its
        # allocation stack, for the exact leak check after rmmod.
        load) run_test load 600 "slub_debug=U,kmalloc-*,kernfs_node_cache" ;;
        onesided) run_test onesided 300 ;;
        # Red zones and poisoning on kmalloc caches catch overruns and
        # use-after-free that would otherwise go unnoticed.
        fuzz) run_test fuzz $((fuzz_seconds + 300)) "slub_debug=FZP,kmalloc-*" ;;
        limits) run_test limits 300 ;;
        kill) run_test kill 400 ;;
        hammer) run_test hammer 400 "slub_debug=FZPU,kmalloc-*" ;;
        *) say "unknown test $t"; failed=$((failed + 1)) ;;
    esac
done

echo "kernel: $passed passed, $failed failed (fuzz seed $fuzz_seed; reproduce with TBK_FUZZ_SEED=$fuzz_seed)"
[ "$failed" -eq 0 ]
