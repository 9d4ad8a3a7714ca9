#!/usr/bin/env bash
# vm/xdomain-2vm: two VMs as two hosts, each with its own kernel, tbsim.ko
# (pair=0 or 1: one simulated host, an edu device as its controller) and
# tbrdma.ko, joined by a cable made of shared memory (QEMU's ivshmem-plain
# over one file in /dev/shm) and by a virtual network for the out-of-band
# channel of ucx_perftest. Host 0 runs throughout; host 1 boots, is powered
# off mid-transfer, and boots again. test/vm/xdomain-2vm-guest.sh does the
# checks: login, ucx_perftest across, tbrdma unloaded under open endpoints,
# a module of another protocol version refused, power-off and reboot.
# Exit 77 (skip) only when no VM can boot here.
set -uo pipefail

suite=xdomain-2vm
# shellcheck source-path=SCRIPTDIR source=tbsim/sim-setup.sh
. "$(dirname "$0")/tbsim/sim-setup.sh"
rm -rf "$work/sync" "$work/out" "$work"/host*.log
mkdir -p "$work/sync" "$work/out"

# Both VMs at once, one vCPU each (the machine has 2 cores): hold the VM
# lock that other VM suites wait on, and run them without it.
exec 9> "$vmdir/vm.lock"
flock -n 9 || { echo "xdomain-2vm: another VM runs from $vmdir: waiting for it" >&2; flock 9; }
cable=$(mktemp /dev/shm/tbsim-cable.XXXXXX)
trap 'rm -f "$cable"' EXIT
truncate -s 4M "$cable"
# UDP ports for the network: each VM sends to the other's.
free_udp() {
    local p
    while :; do
        p=$((20000 + RANDOM % 30000))
        ss -Huan "( sport = :$p )" | grep -q . || { echo $p; return; }
    done
}
port=("$(free_udp)" "$(free_udp)")

# vm SIDE PHASE: one boot of host SIDE, its output in host<SIDE>-<PHASE>.log.
vm() {
    local side=$1 phase=$2
    TB_VM_NO_LOCK=1 "$here/vm-run.sh" --smp 1 --mem 1536M \
        --timeout "${TB_VM_TIMEOUT:-3000}" --check-dmesg --device edu \
        --object "memory-backend-file,id=cable,size=4M,mem-path=$cable,share=on" \
        --device ivshmem-plain,memdev=cable \
        --netdev "socket,id=net0,udp=127.0.0.1:${port[1 - side]},localaddr=127.0.0.1:${port[side]}" \
        --device "virtio-net-pci,netdev=net0,mac=52:54:00:77:00:0$side" \
        --share "$work" --insmod "$sim_ko pair=$side" \
        -- "$here/xdomain-2vm-guest.sh" "$side" "$phase" "$top" "$build" "$work" "$ko" "$ko_next" \
        > "$work/host$side-$phase.log" 2>&1
    echo "xdomain-2vm: host $side boot $phase: VM exit status $?" >> "$work/host$side-$phase.log"
    # (the guest marks it too, unless it died first: the other stops waiting)
    : > "$work/sync/host$side-ended-$phase"
}

start=$(date +%s)
vm 0 1 &
host0=$!
vm 1 1
vm 1 2
wait "$host0"
for log in "$work"/host0-1.log "$work"/host1-1.log "$work"/host1-2.log; do
    echo "======== ${log##*/}"
    cat "$log"
done
passed=$(cat "$work"/host*.log | grep -c '^PASS: ')
failed=$(cat "$work"/host*.log | grep -c '^FAIL: ')
# A VM that failed (dmesg problems, timeout, no boot) fails the suite too,
# and so does a side that did not get to its end.
bad=$(cat "$work"/host*.log | grep -cE 'VM exit status [1-9]')
for side in 0 1; do
    [ -e "$work/sync/host$side-done" ] || { echo "xdomain-2vm: host $side did not finish"; bad=$((bad + 1)); }
done
echo "run-xdomain-2vm: the VMs ran for $(($(date +%s) - start)) s"
echo "xdomain-2vm: $((passed)) passed, $((failed + bad)) failed"
[ $((failed + bad)) = 0 ]
