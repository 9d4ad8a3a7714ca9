#!/usr/bin/env bash
# Runs inside the VM (test/vm/run-xdomain-sim.sh boots it with two edu
# devices): tbsim.ko with two cables between its two simulated hosts, then
# the unchanged tbrdma.ko over them, so tb0/tb1 are the two ends of cable 0
# and tb2/tb3 of cable 1. Checks login, tbrdma-info, the device-library
# and UCT suites, ucx_perftest and Open MPI across the cable, UCP striping
# over both cables, frame loss, corruption and RX starvation, unplug
# mid-transfer and replug, unload, and what is left after it (slab
# objects, vmalloc areas, pinned pages).
# Ends with "xdomain-sim: N passed, M failed".
set -uo pipefail

top=$1 build=$2 sim_ko=$3 ko=$4
info=$build/src/tools/tbrdma-info
export TB_DEVICE=kernel TB_TEST_DEVICE=kernel UCX_TB_DEVICE=kernel
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export TB_PERF_TIMEOUT=120 TB_PERF_ITERS=100 TB_MPI_TIMEOUT=600
# ucx_perftest's server takes the client's UCT device: UCP tests only, the
# client on host 0's end (tb0), the server on host 1's (tb1).
export TB_PERF_DEV=tb0 TB_PERF_SERVER_DEV=tb1
passed=0 failed=0
pass() { echo "PASS: xdomain-sim: $*"; passed=$((passed + 1)); }
fail() { echo "FAIL: xdomain-sim: $*"; failed=$((failed + 1)); }
check() { local what=$1; shift; if "$@"; then pass "$what"; else fail "$what"; fi; }
not_grep() { ! grep -q "$@"; }
# The PIDs of the kernel threads named $1.
kthread_pids() { grep -lx "$1" /proc/[0-9]*/comm 2>/dev/null | cut -d/ -f3; }
finish() { echo "xdomain-sim: $passed passed, $failed failed"; exit $((failed > 0)); }
sim=/sys/kernel/debug/tbsim
param() { echo "$2" > "/sys/module/tbsim/parameters/$1"; }
stat() { cat "/sys/class/tbrdma/$1/statistics/$2" 2>/dev/null || echo 0; }
state() { cat "/sys/class/tbrdma/$1/state" 2>/dev/null; }
# links_up SECONDS LINKS...: every link up within the time.
links_up() {
    local t=$1 l ok
    shift
    for _ in $(seq $((t * 4))); do
        ok=1
        for l in "$@"; do [ "$(state "$l")" = up ] || ok=; done
        [ -n "$ok" ] && return 0
        sleep 0.25
    done
    return 1
}
# The two ends of one cable, by the XDomain each link is bound to.
cable_of() { basename "$(cat "/sys/class/tbrdma/$1/xdomain" 2>/dev/null)" | sed 's/^[0-9]*-//'; }
# ends_of H: host H's ends of both cables (its XDomains are H-<route>).
ends_of() {
    local l out=
    for l in tb0 tb1 tb2 tb3; do
        case $(cat "/sys/class/tbrdma/$l/xdomain" 2>/dev/null) in "$1"-*) out+=${out:+,}$l ;; esac
    done
    echo "$out"
}
counters() {
    local l
    for l in tb0 tb1 tb2 tb3; do
        printf '  %s:' "$l"
        for c in tx_frames tx_ext tx_ext_dma tx_ext_copied retransmits rx_crc_errors rx_unpaired logins ctrl_requests ctrl_timeouts irqs; do
            printf ' %s=%s' "$c" "$(stat "$l" "$c")"
        done
        echo
    done
    cat "$sim"/cable*/stats | sed 's/^/  wire: /'
}

# shellcheck source=leak-lib.sh
. "$(dirname "$0")/leak-lib.sh"
mount -t debugfs none /sys/kernel/debug 2>/dev/null
# Before anything is loaded: for the leak checks at the end.
leaks=$build/test/vm/xdomain-sim-work/leaks
mkdir -p "$leaks"
settle
module_addrs > "$leaks/base.rawaddr"
read -r pin_a0 pin_r0 <<< "$(pins)"
check "insmod tbsim.ko cables=2" insmod "$sim_ko" cables=2
check "thunderbolt bus with 2 domains" test -e /sys/bus/thunderbolt/devices/domain1
check "insmod tbrdma.ko loop=0" insmod "$ko" loop=0
[ -c /dev/tbrdma ] || finish
module_ranges tbrdma tbsim > "$leaks/ranges"
check "tb0-tb3 log in and come up" links_up 60 tb0 tb1 tb2 tb3
check "tb0 and tb1 are the ends of one cable" test "$(cable_of tb0)" = "$(cable_of tb1)"
check "tb0 and tb2 are on two cables" test "$(cable_of tb0)" != "$(cable_of tb2)"
"$info" | tee /tmp/info.out | grep -E '^link|peer:|speed:|rings:|state:'
check "tbrdma-info: tb0's peer, UUID and speed" \
    grep -qE 'peer:.*tbsim-host1 \([0-9a-f-]{36}\)' /tmp/info.out
check "tbrdma-info: 40000 Mb/s (20 Gb/s x 2 lanes)" grep -q '40000 Mb/s' /tmp/info.out

echo "== poll threads: one per link, on its controller's NUMA node"
# The VM has two NUMA nodes, a host's controller on each.
nodes=
for l in tb0 tb1 tb2 tb3; do
    node=$(cat "/sys/class/tbrdma/$l/numa_node")
    nodes+=" $node"
    want=$(cat "/sys/devices/system/node/node$node/cpulist" 2>/dev/null)
    pids=$(kthread_pids "tbrdma_$l")
    got=$(awk '$1 == "Cpus_allowed_list:" {print $2}' "/proc/$pids/status" 2>/dev/null)
    check "$l: one poll thread (pid $pids) on node $node's CPUs $want (allowed: $got)" \
        test "$(wc -w <<< "$pids")" -eq 1 -a -n "$want" -a "$got" = "$want" \
        -a "$(cat "/sys/class/tbrdma/$l/poll_cpus")" = "$want"
done
check "the controllers are on NUMA nodes 0 and 1 (tb0-tb3:$nodes)" \
    test -n "$(grep -E '(^| )0( |$)' <<< "$nodes")" -a -n "$(grep -E '(^| )1( |$)' <<< "$nodes")"
check "the host's poll thread for the other links (tbrdma_poll)" \
    test "$(kthread_pids tbrdma_poll | wc -w)" -eq 1
check "tbrdma-info: each link's poll thread" \
    test "$(grep -c 'poll thread:.*CPUs [0-9]' /tmp/info.out)" -eq 4
dmesg | grep -E 'tbrdma|tbsim' | tail -12 | sed 's/^/  dmesg: /'

echo "== ucx_perftest across cable 0 (client tb0, server tb1)"
(cd "$build/test/perf" && "$top/test/perf/run-perftest.sh") |
    tee /tmp/perf.out | grep -E '^(FAIL|perftest:)' | sed 's/^/  [sim] /'
check "ucx_perftest over tb0/tb1" grep -q '^perftest: [1-9][0-9]* passed, 0 failed' /tmp/perf.out
check "ext descriptors sent by DMA from registered pages" test "$(stat tb0 tx_ext_dma)" -gt 0
check "frames were DMA'd by the simulated controllers" grep -q 'host0->host1 frames [1-9]' "$sim"/cable0/stats

echo "== the device-library and UCT suites across cable 0"
# Link 0 is tb0: the device library's processes reach each other through
# the cable and back; the UCT tests' nodes open tb0, their peers tb1.
frames=$(stat tb0 tx_frames)
export TB_TEST_ENDS=tb0,tb1 TB_UCT_LIB=$build/src/uct/tb/.libs/libuct_tb.so.0 TB_UCT_TIMEOUT=1500
(cd "$build/test/unit" && "$top/test/unit/run-unit.sh") > /tmp/unit.out 2>&1
(cd "$build/test/uct" && "$top/test/uct/run-uct.sh") > /tmp/uct.out 2>&1
grep -hE '^(unit|uct)( test cases)?:|: (fatal )?error:' /tmp/unit.out /tmp/uct.out | head -20 | sed 's/^/  [sim] /'
check "device-library suite over tb0" grep -q '^unit: [1-9][0-9]* passed, 0 failed' /tmp/unit.out
check "UCT API suite over tb0/tb1" grep -q '^uct: [1-9][0-9]* passed, 0 failed' /tmp/uct.out
check "their traffic crossed the cable (tb0 tx_frames $frames -> $(stat tb0 tx_frames))" \
    test "$(stat tb0 tx_frames)" -gt $((frames + 1000))
unset TB_TEST_ENDS

echo "== Open MPI at 2 ranks across cable 0, the wire model off"
# Every rank opens both ends; UCP pairs each with the other end. With no
# rate and no latency, frames move in the context that posts them (as
# make bench-vm runs the cable), concurrently from both ranks.
gbps=$(cat /sys/module/tbsim/parameters/gbps) latency=$(cat /sys/module/tbsim/parameters/latency_ns)
param gbps 0
param latency_ns 0
(cd "$build/test/mpi" && UCX_NET_DEVICES=tb0,tb1 TB_MPI_NP=2 TB_MPI_ARGS="--max-size 1048576" \
    "$top/test/mpi/run-mpi.sh") |
    tee /tmp/mpi.out | grep -E '^(np=|mpi:)' | sed 's/^/  [sim] /'
param gbps "$gbps"
param latency_ns "$latency"
check "MPI np 2 over tb0/tb1" grep -q '^mpi: [1-9][0-9]* passed, 0 failed' /tmp/mpi.out
check "frames moved in the posting context" grep -q 'host0->host1 .* by_poster [1-9]' "$sim"/cable0/stats

echo "== multi-rail: UCP stripes 4 MiB over both cables"
mr=$(mktemp -d)
(
    PT_TBRUN=$top/contrib/tbrun PT_WORKDIR=$mr PT_TIMEOUT=300
    # shellcheck source=../perf/perftest-lib.sh
    . "$top/test/perf/perftest-lib.sh"
    trap pt_cleanup EXIT
    PT_SERVER_ENV="UCX_NET_DEVICES=$(ends_of 1)"
    pt_run_pair "UCX_TLS=tb,self UCX_NET_DEVICES=$(ends_of 0) UCX_MAX_RNDV_RAILS=2 UCX_LOG_LEVEL=info" \
        -t tag_bw -s 4194304 -n 10 || { echo "multi-rail: $PT_WHY"; exit 1; }
    grep -hE 'ep_cfg\[[0-9]+\]:' "$PT_CLIENT_OUT" | head -2
    lanes=$(grep -hE 'ep_cfg\[[0-9]+\]:' "$PT_CLIENT_OUT" | grep -oE 'tb/tb[0-3]' | sort -u | tr '\n' ' ')
    c0=$(cable_of tb0) n=0
    for l in $lanes; do [ "$(cable_of "${l#tb/}")" = "$c0" ] && n=$((n | 1)) || n=$((n | 2)); done
    [ "$n" = 3 ] || { echo "multi-rail: lanes $lanes are not on both cables"; exit 1; }
) && pass "UCP uses both cables for one transfer" || fail "UCP uses both cables for one transfer"
rm -rf "$mr"

echo "== faults: 1% loss, 0.5% corruption, RX rings of 6 buffers"
before=$(( $(stat tb0 retransmits) + $(stat tb1 retransmits) ))
param loss_ppm 10000
param corrupt_ppm 5000
param rx_limit 6
(cd "$build/test/perf" && TB_PERF_ONLY='tag_bw|tag_lat|ucp_put_bw|ucp_get|ucp_add|ucp_am_bw' \
    "$top/test/perf/run-perftest.sh") |
    tee /tmp/perf-faults.out | grep -E '^(FAIL|perftest:)' | sed 's/^/  [sim] /'
check "perftest with faults: every operation, correct data" \
    grep -q '^perftest: [1-9][0-9]* passed, 0 failed' /tmp/perf-faults.out
after=$(( $(stat tb0 retransmits) + $(stat tb1 retransmits) ))
check "the link retransmitted ($before -> $after)" test "$after" -gt "$before"
check "corrupted frames were caught (CRC)" test $(( $(stat tb0 rx_crc_errors) + $(stat tb1 rx_crc_errors) )) -gt 0
check "RX starvation dropped frames" grep -qE 'no_buffer [1-9]' "$sim"/cable0/stats
param loss_ppm 0
param corrupt_ppm 0
param rx_limit 0
counters

echo "== unplug cable 0 mid-transfer, then replug"
# The initiator (client) must fail promptly; ucx_perftest's server, the
# passive target, only waits (as it would on a second host), so it is
# killed once the client is gone.
unplug=$build/test/vm/xdomain-sim-work/unplug
rm -rf "$unplug"
mkdir -p "$unplug"
(cd "$unplug" && PT_TBRUN=$top/contrib/tbrun PT_WORKDIR=$unplug PT_TIMEOUT=120 \
    PT_SERVER_ENV=UCX_NET_DEVICES=tb1 bash -c ". '$top/test/perf/perftest-lib.sh'; \
      pt_run_pair 'UCX_TLS=tb,self UCX_NET_DEVICES=tb0' -t ucp_put_bw -s 65536 -n 100000000") \
    > "$unplug/run.out" 2>&1 &
bg=$!
sleep 8
frames=$(stat tb0 tx_frames)
sleep 1
check "traffic flows before the unplug" test "$(stat tb0 tx_frames)" -gt "$frames"
start=$(date +%s%N)
echo 0 > "$sim"/cable0/plugged
for _ in $(seq 100); do pgrep -f 'ucx_perftest 127.0.0.1' > /dev/null || break; sleep 0.1; done
ms=$(( ($(date +%s%N) - start) / 1000000 ))
pkill -f ucx_perftest
wait "$bg"
grep -m1 'failed:' "$unplug/pair1.client.out" | sed 's/^/  client: /'
check "the initiator's endpoint failed after the unplug" grep -q 'failed: Endpoint timeout' "$unplug/pair1.client.out"
check "within 5 s ($ms ms)" test "$ms" -lt 5000
check "tb0 and tb1 gone with the cable" bash -c '! test -e /sys/class/tbrdma/tb0 && ! test -e /sys/class/tbrdma/tb1'
# The link goes down in a work item after the device is gone.
threads_gone() {
    for _ in $(seq 40); do
        [ -z "$(kthread_pids tbrdma_tb0)$(kthread_pids tbrdma_tb1)" ] && return 0
        sleep 0.25
    done
    return 1
}
check "their poll threads stopped" threads_gone
check "cable 1 still up" links_up 5 tb2 tb3
echo 1 > "$sim"/cable0/plugged
check "replug: the links log in again" links_up 60 tb0 tb1
check "replug: their poll threads run again" \
    test "$(kthread_pids tbrdma_tb0 | wc -w)" -eq 1 -a "$(kthread_pids tbrdma_tb1 | wc -w)" -eq 1
(cd "$build/test/perf" && TB_PERF_ONLY='tag_lat|ucp_put_bw' "$top/test/perf/run-perftest.sh") |
    tee /tmp/perf-replug.out |
    grep -E '^(FAIL|perftest:)' | sed 's/^/  [sim] /'
check "new endpoints work after the replug" grep -q '^perftest: [1-9][0-9]* passed, 0 failed' /tmp/perf-replug.out

# Unloading races the peers' LOGINs and LOGOUTs: the core calls the
# protocol handler without a lock that unregistering it waits for (tbsim
# does the same). Unload at random points of the login, 20 times.
reloads=0
for _ in $(seq 20); do
    rmmod tbrdma && insmod "$ko" loop=0 || break
    # Each load's code, for the leak check at the end.
    module_ranges tbrdma >> "$leaks/ranges"
    reloads=$((reloads + 1))
    sleep "0.$((RANDOM % 30))"
done
check "rmmod and insmod at random points of the login, 20 times ($reloads)" test "$reloads" = 20
check "after that, tb0-tb3 log in and come up" links_up 60 tb0 tb1 tb2 tb3

counters
check "the controllers were only given mapped, dword-aligned buffers" \
    not_grep -E '(dma_faults|unaligned) [1-9]' "$sim"/cable*/stats
check "rmmod tbrdma" rmmod tbrdma
check "rmmod tbsim" rmmod tbsim

echo "== leaks, with both modules gone"
settle
module_addrs > "$leaks/end.rawaddr"
leaked_addrs "$leaks/base.rawaddr" "$leaks/end.rawaddr" "$leaks/ranges" > "$leaks/leaked.rawaddr"
leak_records "$leaks/leaked.rawaddr" > "$leaks/records"
if [ -s "$leaks/records" ]; then
    head -60 "$leaks/records"
    echo "  open files in /sys, and the processes left:"
    find /proc/[0-9]*/fd -lname '/sys/*' -printf '  %p -> %l\n' 2>/dev/null | head -20
    ps -eo pid,ppid,etimes,args | grep -v '\[' | head -40
fi
if [ -d /sys/kernel/debug/slab ]; then
    check "slab: no live object allocated with either module's code on its stack" \
        test ! -s "$leaks/records"
else
    fail "slab: no allocation stacks to check (the VM boots with slub_debug=U)"
fi
# (an area whose caller's module is gone names it by a bare address)
check "vmalloc: no area of either module left" \
    test -z "$(awk '/\[(tbrdma|tbsim)\]/ || $3 ~ /^0x[0-9a-f]+$/' /proc/vmallocinfo)"
read -r pin_a pin_r <<< "$(pins)"
echo "  pinned pages: $((pin_a - pin_a0)) pinned and $((pin_r - pin_r0)) unpinned during the suite"
check "every page pinned during the suite was unpinned" \
    test $((pin_a - pin_r)) = $((pin_a0 - pin_r0)) -a $((pin_a - pin_a0)) -gt 0
finish
