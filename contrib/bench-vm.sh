#!/usr/bin/env bash
# bench-vm.sh -- one QEMU VM (test/vm/vm-run.sh) with tbrdma.ko loaded
# over the simulated Thunderbolt core (test/vm/tbsim, one cable, its wire
# model off: no rate limit, no wire latency, so what is measured is tb's
# own cost on the hardware path): latency and bandwidth of tb over the
# kernel device on a loop cable (loop0) and over the simulated XDomain
# link (tb0 to tb1, with 6.1's 128 us interrupt moderation, with and
# without busy polling), of UCX's rc_verbs over soft-RoCE (rdma_rxe) and
# of UCX's tcp over lo, with the ratios; and perftest over tb's RDMA
# devices (tbrdma_ib.ko) and over soft-RoCE.
# `make bench-vm` runs it. Not a test: it fails only when the VM or the
# tb measurements cannot run.
#
# Under QEMU's software emulation (TCG) only the ratios within one run mean
# something, never the absolute numbers.
#
# Environment: TB_BENCH_SCALE (iteration multiplier, default 1; 0.2 for a
# quick look), TB_BENCH_REPEAT (runs per value, median shown, default 3),
# TB_BENCH_TIMEOUT (seconds per ucx_perftest pair, default 120),
# TB_BENCH_CSV (also write "metric,transport,value" lines to this file),
# TB_BENCH_TRANSPORTS (the columns, see test/vm/bench-vm-guest.sh),
# TB_UCT_LIB (see contrib/tbrun), TB_VM_DIR.
set -uo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
vmdir=${TB_VM_DIR:-$top/build/vm}

"$top/test/vm/setup-vm.sh" "$vmdir" > /dev/null || { echo "bench-vm: test/vm/setup-vm.sh failed"; exit 1; }
kver=$(cat "$vmdir/kernel-version")
mkdir -p "$top/build/bench-vm"
mods=$("$top/test/vm/tbsim/build-tbsim.sh" "$kver" "$top/build/bench-vm") || exit 1
{ read -r sim_ko; read -r ko; } <<< "$mods"
lib=$(TB_UCT_LIB=${TB_UCT_LIB:-} "$top/contrib/tbrun" --lib) || exit 1
echo "bench-vm: host $(hostname), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg); module $ko"
start=$(date +%s)
csv=${TB_BENCH_CSV:-}
out=$(mktemp)
"$top/test/vm/vm-run.sh" --timeout "${TB_BENCH_VM_TIMEOUT:-1800}" --check-dmesg \
    --device edu --device edu --modprobe rdma_rxe --modprobe ib_uverbs \
    --insmod "$sim_ko cables=1 gbps=0 latency_ns=0" --insmod "$ko loop=2" \
    --insmod "$(dirname "$ko")/tbrdma_ib.ko" \
    --env TB_UCT_LIB="$lib" \
    ${TB_BENCH_SCALE:+--env TB_BENCH_SCALE="$TB_BENCH_SCALE"} \
    ${TB_BENCH_TIMEOUT:+--env TB_BENCH_TIMEOUT="$TB_BENCH_TIMEOUT"} \
    ${TB_BENCH_REPEAT:+--env TB_BENCH_REPEAT="$TB_BENCH_REPEAT"} \
    ${TB_BENCH_TRANSPORTS:+--env TB_BENCH_TRANSPORTS="$TB_BENCH_TRANSPORTS"} \
    -- "$top/test/vm/bench-vm-guest.sh" "$top" | tee "$out"
rc=${PIPESTATUS[0]}
[ -n "$csv" ] && tr -d '\r' < "$out" | sed -n 's/^bench-csv: //p' > "$csv"
rm -f "$out"
echo "bench-vm: VM run took $(( $(date +%s) - start )) s (exit $rc); host load average now $(cut -d' ' -f1-3 /proc/loadavg)"
exit $rc
