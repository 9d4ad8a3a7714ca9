#!/bin/bash
# The kernel-module tests, inside the test VM: run-kernel-tests.sh boots one
# VM per test (test/vm/vm-run.sh --check-dmesg) and runs this script in it.
#
#   kernel-tests-guest.sh load|onesided|fuzz|limits|kill|hammer
#
# Environment (set by run-kernel-tests.sh through vm-run.sh --env):
#   TBK_BIN            directory of the test programs (tbk_*)
#   TBK_KO             tbrdma.ko to load (loop=2)
#   TBK_WORK           writable directory for logs and snapshots
#   TBK_LOAD_CYCLES    load/unload cycles of the load test (default 20)
#   TBK_FUZZ_SECONDS   fuzzing time (default 60)
#   TBK_FUZZ_SEED      seed of the first fuzzer (default: from the clock)
#
# Every test loads the module itself, runs, and ends with "rmmod tbrdma",
# which must succeed. Lines "PASS: ..." / "FAIL: ..." say what was checked;
# the exit status is 0 only if everything passed.
set -uo pipefail

test=${1:?usage: kernel-tests-guest.sh load|onesided|fuzz|limits|kill|hammer}
bin=${TBK_BIN:?}
ko=${TBK_KO:?}
work=${TBK_WORK:-/tmp}
failed=0

# The kernel log for run-kernel-tests.sh's checks, whatever happens below.
trap 'dmesg > "$work/$test.dmesg" 2>&1' EXIT

pass() { echo "PASS: $test: $*"; }
fail() { echo "FAIL: $test: $*"; failed=1; }

mount -t debugfs none /sys/kernel/debug 2>/dev/null || true
# A task stuck for a minute in the kernel is reported (and a report fails
# the run: vm-run.sh --check-dmesg looks for "INFO: task" too, see
# run-kernel-tests.sh).
sysctl -qw kernel.hung_task_timeout_secs=60 2>/dev/null || true
# tbrdma.ko links against thunderbolt.ko (its XDomain part); insmod does
# not load dependencies.
modprobe thunderbolt 2>/dev/null || true

load() {
    local dep
    # What the module needs from the kernel (thunderbolt, for XDomain).
    for dep in $(modinfo -F depends "$ko" | tr ',' ' '); do
        modprobe "$dep" || { fail "modprobe $dep (needed by tbrdma)"; return 1; }
    done
    insmod "$ko" loop=2 || { fail "insmod $ko loop=2"; return 1; }
    [ -c /dev/tbrdma ] || { fail "no /dev/tbrdma after insmod"; return 1; }
    module_ranges tbrdma >> "$work/ranges"
}

unload() {
    if rmmod tbrdma; then
        [ ! -e /sys/module/tbrdma ] || fail "rmmod returned 0 but /sys/module/tbrdma is still there"
    else
        fail "rmmod tbrdma"
        return 1
    fi
}

# shellcheck source=leak-lib.sh
. "$(dirname "$0")/leak-lib.sh"

# Every page pinned since the test began is unpinned again.
check_pins() {
    local a r
    read -r a r <<< "$(pins)"
    if [ "$a" -eq "$r" ]; then
        pass "pinned pages all released ($a pinned and unpinned host-wide; nr_foll_pin_acquired == nr_foll_pin_released)"
    else
        fail "$((a - r)) pages still pinned with every test process gone (nr_foll_pin_acquired $a, released $r)"
    fi
}

link_stats() {
    local l=/sys/class/tbrdma/loop0
    [ -d $l ] || return 0
    echo "loop0: state $(cat $l/state), cable_drops $(cat $l/cable_drops), $(cd $l/statistics && for f in *; do printf '%s %s ' "$f" "$(cat "$f")"; done)"
}

# --- 1. load/unload with traffic, and leaks ----------------------------------

# Snapshot for the leak measures: slab caches (after dropping reclaimable
# dentries and inodes, which 9p and /proc churn), vmalloc areas, meminfo.
snapshot() {
    echo 1 > /proc/sys/vm/stat_refresh
    settle
    # name, objects in use, object size
    awk 'NR > 2 { print $1, $2, $4 }' /proc/slabinfo > "$work/$1.slab"
    cp /proc/vmallocinfo "$work/$1.vmalloc"
    grep -E '^(MemFree|Slab|SUnreclaim|VmallocUsed):' /proc/meminfo > "$work/$1.meminfo"
    module_addrs > "$work/$1.rawaddr"
}

vmalloc_summary() {  # areas and kB of vmalloc/vmap in use
    awk '{ n++; kb += $2 / 1024 } END { printf "%d areas, %d kB", n, kb }' "$work/$1.vmalloc"
}

test_load() {
    local cycles=${TBK_LOAD_CYCLES:-20} i w m out a0 r0 a r
    # Snapshots: before the first load, after cycle w (warm: caches sized),
    # after the middle one and after the last one.
    w=$((cycles / 5)); [ "$w" -ge 1 ] || w=1
    m=$(((w + cycles) / 2))
    snapshot base
    : > "$work/ranges"
    read -r a0 r0 <<< "$(pins)"
    for i in $(seq 1 "$cycles"); do
        load || return
        # Traffic: REG_MR, CREATE_QUEUES, CREATE_EP, WRITE + READ between
        # two processes, VmPin checked by the program at every step.
        if ! out=$("$bin/tbk_traffic" -l $((i % 2)) -n 1 2>&1); then
            fail "cycle $i: traffic: $out"
            unload
            return
        fi
        [ "$i" -eq 1 ] && echo "$out"
        if [ "$i" -eq "$cycles" ] && [ -d /sys/kernel/debug/slab ]; then
            echo "slab objects allocated with tbrdma code on the stack, live after traffic with the module loaded: $(
                cat /sys/kernel/debug/slab/*/alloc_traces | awk '/^ *[0-9]+ / { n = $1 } /\[tbrdma\]/ && n { t += n; n = 0 } END { print t + 0 }')"
        fi
        cat /sys/kernel/debug/tbrdma/status > /dev/null || fail "cycle $i: debugfs status"
        [ "$i" -eq 1 ] && link_stats
        unload || return
        case $i in "$w") snapshot warm ;; "$m") snapshot mid ;; "$cycles") snapshot end ;; esac
    done
    pass "$cycles cycles of insmod loop=2, traffic over loop0/loop1 (VmPin back to 0 in both processes each time), rmmod"

    # vmalloc and vmap areas the module made (rings, registrations, engine
    # tables) show its symbols while it is loaded, and a bare address in
    # module space once it is gone: none may be left.
    local left
    left=$(awk '/\[tbrdma\]/ || $3 ~ /^0x[0-9a-f]+$/' "$work/end.vmalloc")
    if [ -z "$left" ]; then
        pass "vmalloc: no area allocated by tbrdma left after the last rmmod (before the first load: $(vmalloc_summary base); after the last unload: $(vmalloc_summary end))"
    else
        fail "vmalloc areas left by the unloaded module:"
        echo "$left" | head -20
    fi

    read -r a r <<< "$(pins)"
    if [ "$((a - a0))" -gt 0 ] && [ "$((a - r))" -eq "$((a0 - r0))" ]; then
        pass "pinned pages: $((a - a0)) pinned and all unpinned over the $cycles cycles (nr_foll_pin_acquired - released unchanged)"
    else
        fail "pinned pages: acquired $a0 -> $a, released $r0 -> $r"
    fi

    # Slab, exact: objects allocated by the module (or with its code
    # anywhere on the allocation stack, e.g. sysfs nodes of its devices)
    # and still alive after it was unloaded.
    if [ -d /sys/kernel/debug/slab ]; then
        local records
        leaked_addrs "$work/base.rawaddr" "$work/end.rawaddr" "$work/ranges" > "$work/leaked.rawaddr"
        records=$(leak_records "$work/leaked.rawaddr")
        if [ -z "$records" ]; then
            pass "slab (slub_debug=U allocation stacks): no live object allocated with tbrdma code on its stack after the last rmmod"
        else
            fail "slab objects allocated with the unloaded module's code on their stack are still alive:"
            echo "$records" | head -80
        fi
    else
        echo "note: boot with slub_debug=U for the exact slab leak check (run-kernel-tests.sh does)"
    fi

    # Large kmalloc()s (> 8 KiB) come from the page allocator, whole pages
    # (16 KiB or more), but count in SUnreclaim: one leaked per cycle shows
    # there. (Smaller ones come from the kmalloc caches, tracked above.)
    local su_w su_m su_e
    su_w=$(awk '/^SUnreclaim/ { print $2 }' "$work/warm.meminfo")
    su_m=$(awk '/^SUnreclaim/ { print $2 }' "$work/mid.meminfo")
    su_e=$(awk '/^SUnreclaim/ { print $2 }' "$work/end.meminfo")
    if [ $((su_m - su_w)) -ge $((12 * (m - w))) ] && [ $((su_e - su_m)) -ge $((12 * (cycles - m))) ]; then
        fail "SUnreclaim grows by 12 kB or more per cycle: $su_w -> $su_m -> $su_e kB (cycles $w, $m, $cycles)"
    else
        pass "SUnreclaim (slab + large kmalloc): $su_w -> $su_m -> $su_e kB at cycles $w, $m, $cycles (no growth of 12 kB per cycle)"
    fi

    # Slab: a leak of even one object per cycle (per load, per open, per
    # registration...) shows as a cache whose objects in use grow by about
    # one per cycle in both halves of the run; noise (per-CPU slabs, RCU
    # frees, the shell's own work) does not keep growing that way.
    # Only caches with slub_debug=U are counted per object: /proc/slabinfo
    # counts the others a whole slab at a time.
    local growers
    ls /sys/kernel/debug/slab > "$work/tracked" 2>/dev/null
    growers=$(awk -v c1=$((m - w)) -v c2=$((cycles - m)) '
        FILENAME ~ /tracked/ { tracked[$1] = 1; ntracked++; next }
        FILENAME ~ /warm/ { w[$1] = $2; sz[$1] = $3 }
        FILENAME ~ /mid/  { mid[$1] = $2 }
        FILENAME ~ /end/  { e[$1] = $2 }
        END {
            for (n in e) {
                if (ntracked && !tracked[n])
                    continue
                d1 = mid[n] - w[n]; d2 = e[n] - mid[n]
                if (d1 >= c1 && d2 >= c2)
                    printf "%s +%d +%d objects (%d B each);", n, d1, d2, sz[n]
            }
        }' "$work/tracked" "$work/warm.slab" "$work/mid.slab" "$work/end.slab")
    local tot
    tot=$(awk 'FILENAME ~ /warm/ { w += $2 * $3 } FILENAME ~ /end/ { e += $2 * $3 }
               END { printf "%+d kB", (e - w) / 1024 }' "$work/warm.slab" "$work/end.slab")
    echo "slab caches that grew most from cycle $w to $cycles (objects, for information):" \
        "$(awk 'FILENAME ~ /warm/ { w[$1] = $2 } FILENAME ~ /end/ && $2 > w[$1] { print $2 - w[$1], $1 }' \
               "$work/warm.slab" "$work/end.slab" | sort -rn | head -6 | awk '{ printf "%s +%d, ", $2, $1 }')"
    if [ -z "$growers" ]; then
        pass "slab: no $( [ -s "$work/tracked" ] && echo "tracked (kmalloc-*, kernfs_node_cache) ")cache grows by >= 1 object per cycle over cycles $w..$m..$cycles (all caches together: $tot from cycle $w to $cycles)"
    else
        fail "slab caches that grow every cycle (a leak per cycle?): $growers (all caches: $tot)"
    fi
    echo "meminfo before the first load / after cycle $w / after the last unload (MemFree includes page cache, shown for information):"
    paste "$work/base.meminfo" "$work/warm.meminfo" "$work/end.meminfo" | awk '{ printf "  %-12s %8d %8d %8d kB\n", $1, $2, $5, $8 }'
}

# --- 2. one-sided --------------------------------------------------------------

test_onesided() {
    load || return
    local l
    for l in 0 1; do
        if "$bin/tbk_onesided" -l $l -s 2; then
            pass "one-sided over loop$l"
        else
            fail "one-sided over loop$l"
        fi
        # The 4 KiB and 64 KiB WRITEs and READs went as ext buffers, read
        # by the loop's DMA device from the registered pages' mapping.
        local st=/sys/class/tbrdma/loop$l/statistics dma cpu
        dma=$(cat $st/ext_dma); cpu=$(cat $st/ext_cpu)
        if [ "$dma" -gt 0 ] && [ "$cpu" -eq 0 ]; then
            pass "loop$l: $dma data chunks sent from registered memory by bus address (each page DMA-mapped at its first use), $(cat $st/tx_ext) ext frames, none copied"
        else
            fail "loop$l: ext buffers by bus address $dma, by CPU address $cpu"
        fi
        # statistics/ adds up both ends: the READs' data went back from
        # the far end, each ext frame read once per transmission.
        local ext resent
        ext=$(cat $st/tx_ext); resent=$(cat $st/retransmits)
        if [ "$ext" -le $((dma + cpu)) ] && [ $((dma + cpu)) -le $((ext + resent)) ]; then
            pass "loop$l: statistics count both ends' ext frames ($ext sent, $resent resends, $((dma + cpu)) read)"
        else
            fail "loop$l: statistics count $ext ext frames sent and $resent resends, the cable read $((dma + cpu))"
        fi
    done
    grep -E '^(dma|  dma device)' /sys/kernel/debug/tbrdma/status
    # SQ polling: the poll thread, kept busy 100 ms after activity, takes
    # SQEs without a doorbell.
    local pu=/sys/module/tbrdma/parameters/poll_us was before after out
    was=$(cat $pu)
    # Its range holds for writes at run time too.
    if (echo 100001 > $pu) 2>/dev/null || [ "$(cat $pu)" != "$was" ]; then
        fail "poll_us=100001 written at run time was taken ($(cat $pu))"
    else
        pass "poll_us=100001 refused at run time"
    fi
    echo 100000 > $pu
    before=$(awk '$1 == "sq_polled" {print $2}' /sys/kernel/debug/tbrdma/status)
    if out=$("$bin/tbk_sqpoll" -l 0); then pass "${out#sqpoll: PASS: }"; else fail "$out"; fi
    after=$(awk '$1 == "sq_polled" {print $2}' /sys/kernel/debug/tbrdma/status)
    if [ "$after" -gt "$before" ]; then
        pass "the poll thread took $((after - before)) SQEs without a doorbell (status: sq_polled)"
    else
        fail "status sq_polled went from $before to $after"
    fi
    echo "$was" > $pu
    unload
    check_pins
}

# --- 3. bad input --------------------------------------------------------------

test_fuzz() {
    local secs=${TBK_FUZZ_SECONDS:-60} seed=${TBK_FUZZ_SEED:-} p1 p2 rc1 rc2
    [ -n "$seed" ] || seed=$(( $(date +%s%N) % 1000000007 ))
    load || return
    # Two fuzzers at once, so contexts of one process are the other's
    # peers: root (no memlock limit) and nobody (the device is 0666;
    # memlock limit 64 MiB, no capabilities).
    ulimit -l unlimited
    timeout -s KILL $((secs + 120)) "$bin/tbk_fuzz" -s "$seed" -t "$secs" > "$work/fuzz-root.log" 2>&1 &
    p1=$!
    ( ulimit -l 65536
      exec timeout -s KILL $((secs + 120)) setpriv --reuid=nobody --regid=nogroup --clear-groups \
          --inh-caps=-all --bounding-set=-all "$bin/tbk_fuzz" -s $((seed + 1)) -t "$secs" -q
    ) > "$work/fuzz-nobody.log" 2>&1 &
    p2=$!
    wait $p1; rc1=$?
    wait $p2; rc2=$?
    sed 's/^/[root]   /' "$work/fuzz-root.log"
    sed 's/^/[nobody] /' "$work/fuzz-nobody.log"
    if [ $rc1 -eq 0 ]; then pass "fuzzer as root, seed $seed, $secs s"; else fail "fuzzer as root, seed $seed (exit $rc1; 137 = killed by the time limit: hung?)"; fi
    if [ $rc2 -eq 0 ]; then pass "fuzzer as nobody, seed $((seed + 1)), $secs s"; else fail "fuzzer as nobody, seed $((seed + 1)) (exit $rc2)"; fi
    link_stats
    # Nothing open any more: the link is still up and the module unloads.
    [ "$(cat /sys/class/tbrdma/loop0/state)" = up ] || fail "loop0 is $(cat /sys/class/tbrdma/loop0/state) after fuzzing"
    unload
    check_pins
}

test_limits() {
    load || return
    # Unprivileged, without CAP_IPC_LOCK, memlock limit 256 kB.
    if ( ulimit -l 256
         exec setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all \
             --bounding-set=-all "$bin/tbk_memlock" ); then
        pass "RLIMIT_MEMLOCK without CAP_IPC_LOCK"
    else
        fail "RLIMIT_MEMLOCK without CAP_IPC_LOCK"
    fi
    # Root keeps CAP_IPC_LOCK: the limit does not apply.
    if ( ulimit -l 256; exec "$bin/tbk_memlock" -c ); then
        pass "CAP_IPC_LOCK lifts the limit"
    else
        fail "CAP_IPC_LOCK lifts the limit"
    fi
    unload
    check_pins
}

test_kill() {
    local k
    load || return
    ulimit -l unlimited
    for k in initiator target; do
        if timeout -s KILL 180 "$bin/tbk_kill" -k $k -m 16; then
            pass "SIGKILL to the $k in the middle of 1-4 MiB WRITEs and READs both ways"
        else
            fail "SIGKILL to the $k (exit $?)"
        fi
    done
    if timeout -s KILL 120 "$bin/tbk_kill" -k pinning -m 768; then
        pass "SIGKILL during REG_MR of 768 MiB"
    else
        fail "SIGKILL during REG_MR (exit $?)"
    fi
    link_stats
    # rmmod right after the kills: release of the dead processes is done.
    unload
    check_pins
}

# Four processes hammer both loops while a fifth is killed again and
# again; then nothing of theirs may be left: pins, and (slub_debug=U)
# no slab object allocated by tbrdma code once it is unloaded.
test_hammer() {
    local records
    snapshot hbase
    load || return
    ulimit -l unlimited
    if timeout -s KILL 300 "$bin/tbk_hammer" -s 30 -k 6; then
        pass "four processes over loop0 and loop1, a fifth killed 6 times"
    else
        fail "hammer (exit $?)"
    fi
    link_stats
    unload || return
    check_pins
    snapshot hend
    leaked_addrs "$work/hbase.rawaddr" "$work/hend.rawaddr" "$work/ranges" > "$work/hleaked.rawaddr"
    # What module init allocated (sysfs nodes of the loops, freed as their
    # dentries go) is the load test's, over many cycles: here, what the
    # processes made.
    records=$(leak_records "$work/hleaked.rawaddr" |
              awk '/^[^ ]+: +[0-9]+ / { if (rec !~ /do_init_module/) printf "%s", rec; rec = "" }
                   { rec = rec $0 "\n" } END { if (rec !~ /do_init_module/) printf "%s", rec }')
    if [ -z "$records" ]; then
        pass "slab (slub_debug=U): no live object allocated by the processes' use of tbrdma after rmmod"
    else
        fail "slab objects allocated with the unloaded module's code on their stack are still alive:"
        echo "$records" | head -80
    fi
}

case $test in
    load) test_load ;;
    onesided) test_onesided ;;
    fuzz) test_fuzz ;;
    limits) test_limits ;;
    kill) test_kill ;;
    hammer) test_hammer ;;
    *) echo "unknown test $test"; exit 2 ;;
esac
# Whatever happened, the module must go (a failed test may have left it).
if [ -e /sys/module/tbrdma ]; then
    rmmod tbrdma || fail "final rmmod tbrdma"
fi
exit $failed
