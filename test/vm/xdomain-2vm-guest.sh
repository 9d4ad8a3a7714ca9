#!/usr/bin/env bash
# Runs inside one of the two VMs of vm/xdomain-2vm (test/vm/run-xdomain-2vm.sh):
# tbsim.ko is loaded as host SIDE (0 or 1) of a cable made of shared
# memory, and this script loads tbrdma.ko and plays its part; the two VMs
# meet at marker files in WORK/sync and talk over a virtual network
# (10.77.0.1 and .2) for ucx_perftest's out-of-band channel. Host 1 runs in
# two boots (PHASE 1 and 2), host 0 through both.
#
#   xdomain-2vm-guest.sh SIDE PHASE TOP BUILD WORK TBRDMA_KO TBRDMA_V2_KO
#
# Prints "PASS: ..."/"FAIL: ..." lines; the host side counts them.
set -uo pipefail

side=$1 phase=$2 top=$3 build=$4 work=$5 ko=$6 ko_next=$7
# The protocol version of this tree, and the one ko_next speaks instead.
cur=$("$top/test/vm/tbsim/ctrl-version.sh" "$top") || exit 1
next=$((cur + 1))
sync=$work/sync
out=$work/out	# ucx_perftest's output, $me-{client,server}-NAME.out
info=$build/src/tools/tbrdma-info
me=host$side
peer_ip=10.77.0.$((2 - side))
port=13000	# one per server, so that none waits for the last one's
export TB_DEVICE=kernel UCX_TB_DEVICE=kernel UCX_TLS=tb UCX_NET_DEVICES=tb0
pass() { echo "PASS: $me: $*"; }
fail() { echo "FAIL: $me: $*"; }
check() { local what=$1; shift; if "$@"; then pass "$what"; else fail "$what"; fi; }
state() { cat /sys/class/tbrdma/tb0/state 2>/dev/null; }
stat() { cat "/sys/class/tbrdma/tb0/statistics/$1" 2>/dev/null || echo 0; }
up_within() {  # SECONDS
    for _ in $(seq $(($1 * 4))); do [ "$(state)" = up ] && return 0; sleep 0.25; done
    return 1
}
mark() { touch "$sync/$1"; }
# await NAME [SECONDS]: the other VM's marker (default: 20 minutes), unless
# that VM's script (in its boot peer_boot) ended first.
peer_boot=1
await() {
    for _ in $(seq $((${2:-1200} * 4))); do
        [ -e "$sync/$1" ] && return 0
        [ -e "$sync/host$((1 - side))-ended-$peer_boot" ] && break
        sleep 0.25
    done
    fail "waited in vain for the other VM's '$1'"
    return 1
}
now() { date +%s.%N; }
# flowing SECONDS: tb0 sends frames steadily (a transfer runs) within the time.
flowing() {
    local a b
    for _ in $(seq "$1"); do
        a=$(stat tx_frames)
        sleep 1
        b=$(stat tx_frames)
        [ $((b - a)) -gt 50 ] && return 0
    done
    return 1
}
in_dmesg() { dmesg | grep -qE "$1"; }
load_tbrdma() {
    local dep
    for dep in $(modinfo -F depends "$1" | tr ',' ' '); do
        grep -q "^$dep " /proc/modules || modprobe "$dep" || return
    done
    insmod "$1" loop=0
}
perf() { timeout -k 5 "${PERF_TIMEOUT:-300}" "$top/contrib/tbrun" ucx_perftest "$@"; }
# serve NAME: a ucx_perftest server, and the marker (its port) once it
# listens.
serve() {
    port=$((port + 1))
    perf -p $port > "$out/$me-server-$1.out" 2>&1 &
    server=$!
    for _ in $(seq 80); do
        ss -Htln "( sport = :$port )" | grep -q . && break
        sleep 0.25
    done
    echo $port > "$sync/.$1" && mv "$sync/.$1" "$sync/$1"
}
# wait_server: the server's exit status; it is killed if the other VM ends.
wait_server() {
    while kill -0 "$server" 2>/dev/null; do
        if [ -e "$sync/host$((1 - side))-ended-$peer_boot" ]; then
            pkill -9 -x ucx_perftest
            break
        fi
        sleep 0.5
    done
    wait "$server"
}
# client NAME ARGS...: after the other VM's server NAME is up.
client() {
    local name=$1
    shift
    await "$name" || return 1
    perf "$peer_ip" -p "$(cat "$sync/$name")" "$@" > "$out/$me-client-$name.out" 2>&1
}
# round TAG: the perftest set, host 0 serving, host 1 the client.
round() {
    local t spec
    for spec in "tag_lat 8" "tag_bw 65536" "ucp_put_bw 65536" "ucp_get 65536"; do
        read -r t size <<< "$spec"
        if [ "$side" = 0 ]; then
            serve "$1-$t"
            wait_server
            check "$1: ucx_perftest $t server" test $? = 0
        else
            client "$1-$t" -t "$t" -s "$size" -n 200
            check "$1: ucx_perftest $t -s $size across the cable" test $? = 0
            tail -n 1 "$out/$me-client-$1-$t.out" | sed "s/^/  $t: /"
        fi
    done
}
# survive WHAT NAME: the client here runs a long transfer until the other
# VM does WHAT and marks NAME; UCP must report the endpoint failed within
# 10 s of that. With error handling (-e), as an application that outlives
# its peer asks for; an endpoint with nothing in flight (a rendezvous
# sender waiting for its receiver) learns of the loss from UCP's
# keepalive, every second here, which the transport's endpoint check
# answers from the link. (ucx_perftest itself then waits forever.)
survive() {
    local log=$out/$me-client-$2-srv.out t0 t1
    UCX_KEEPALIVE_INTERVAL=1s client "$2-srv" -e -t tag_bw -s 65536 -n 100000000 &
    local cl=$!
    if ! flowing 120; then
        fail "the transfer before the $1 never got going"
        tail -n 5 "$log" | sed 's/^/  /'
    fi
    mark "$2-running"
    await "$2" || return
    t0=$(now)
    for _ in $(seq 120); do grep -q 'error handler called' "$log" && break; sleep 0.25; done
    # UCX's log lines begin with [seconds.microseconds], this VM's clock.
    t1=$(grep -m1 'error handler called' "$log" | sed -n 's/^\[\([0-9.]*\)\].*/\1/p')
    pkill -9 -x ucx_perftest
    wait "$cl"
    if [ -z "$t1" ]; then
        fail "no endpoint error within 30 s of the other side's $1"
        tail -n 5 "$log" | sed 's/^/  /'
        return
    fi
    grep -m1 'error handler called' "$log" | sed 's/^/  /'
    echo "  the endpoint failed $(awk "BEGIN { printf \"%.2f\", $t1 - $t0 }") s after the $1 was seen"
    check "UCP reports the endpoint failed, within 10 s of the $1's marker" \
        awk "BEGIN { exit !($t1 - $t0 < 10) }"
}
# Open MPI over both VMs, 2 ranks each, launched through tb_vmsh.
mpi_2vm() {
    local dir=$out/mpi
    mkdir -p "$dir"
    printf '#!/bin/sh\nexec mpirun --host 10.77.0.1:2,10.77.0.2:2 --mca plm_rsh_agent %s --mca oob_tcp_if_include eth0 -x UCX_NET_DEVICES -x UCX_TB_DEVICE "$@"\n' \
        "$vmsh" > "$dir/mpirun-2vm"
    chmod +x "$dir/mpirun-2vm"
    (cd "$dir" && TB_MPI_NP=4 TB_MPI_TLS=all TB_MPI_EXPECT=tb MPIRUN=$dir/mpirun-2vm \
        TB_MPI_TEST=$build/test/mpi/tb_mpi_test TB_MPI_ARGS="--max-size 262144" \
        TB_MPI_TIMEOUT=1200 TB_EXPECT_UCT=yes "$top/test/mpi/run-mpi.sh") > "$dir/run.out" 2>&1
    grep -E '^(np=|mpi:|  UCX lanes|    )' "$dir/run.out" | head -20
    check "Open MPI np 4 over both VMs, data verified" \
        grep -q '^mpi: [1-9][0-9]* passed, 0 failed' "$dir/run.out"
    check "ranks on one VM talk over shared memory, across over tb" \
        grep -qE 'ep_cfg.*(posix|sysv|cma)/' "$dir/run-mpi-np4.out"
}
counters() {
    local c
    printf '  tb0:'
    for c in tx_frames tx_ext tx_ext_dma retransmits rx_crc_errors logins ctrl_requests ctrl_timeouts irqs; do
        printf ' %s=%s' "$c" "$(stat $c)"
    done
    echo
    sed 's/^/  wire: /' /sys/kernel/debug/tbsim/cable0/stats
}

# meet PHASE: both VMs up in this phase.
meet() {
    mark "$me-$1-up"
    await "host$((1 - side))-$1-up" || exit 1
}
login() {
    check "tb0 logs in over the shared-memory cable" up_within 120
    "$info" > /tmp/info.out 2>&1
    grep -E 'peer:|speed:|state:' /tmp/info.out | sed 's/^/  /'
    check "tbrdma-info: the peer is tbsim-host$((1 - side))" \
        grep -qE "peer:.*tbsim-host$((1 - side)) \([0-9a-f-]{36}\)" /tmp/info.out
}

trap 'mark "$me-ended-$phase"' EXIT
mount -t debugfs none /sys/kernel/debug 2>/dev/null
echo "tbhost$side" > /proc/sys/kernel/hostname
modprobe virtio_net && ip link set eth0 up &&
    ip addr add "10.77.0.$((side + 1))/24" dev eth0 ||
    { fail "no network"; exit 1; }
check "insmod tbrdma.ko" load_tbrdma "$ko"
vmsh=$build/test/vm/tb_vmsh
# (its output not on ours: the VM powers off once our output ends)
"$vmsh" serve 12222 > "$out/$me-$phase-vmsh.log" 2>&1 < /dev/null &
login
meet "$phase"

if [ "$phase" = 1 ]; then
    echo "== ucx_perftest between the VMs"
    round first
    echo "== Open MPI: 4 ranks, 2 per VM, UCX_TLS=all"
    if [ "$side" = 0 ]; then
        mpi_2vm
        mark mpi-done
    else
        await mpi-done
    fi
    echo "== tbrdma reloaded on host 0 while host 1 has endpoints open"
    if [ "$side" = 0 ]; then
        serve reload-srv
        await reload-running
        pkill -9 -x ucx_perftest
        wait "$server"
        check "rmmod tbrdma" rmmod tbrdma
        mark reload
        echo "== tbrdma speaking protocol version $next on host 0"
        check "insmod tbrdma.ko (version $next)" load_tbrdma "$ko_next"
        mark next
        await next-refused
        check "version $next refused too" in_dmesg "refused: .*speaks tbrdma protocol $cur-$cur, this module $next-$next"
        check "rmmod tbrdma (version $next)" rmmod tbrdma
        check "insmod tbrdma.ko (version $cur) again" load_tbrdma "$ko"
        mark cur
    else
        survive "unload" reload
        await next
        refusal="refused: .*speaks tbrdma protocol $next-$next, this module $cur-$cur"
        for _ in $(seq 80); do in_dmesg "$refusal" && break; sleep 0.25; done
        dmesg | grep -E 'refused' | tail -2 | sed 's/^/  dmesg: /'
        check "a peer speaking version $next is refused, with the versions" in_dmesg "$refusal"
        check "and the link stays down" test "$(state)" != up
        mark next-refused
        await cur
    fi
    check "the link logs in again" up_within 120
    round again
    echo "== host 1 powers off while host 0 has endpoints open"
    if [ "$side" = 1 ]; then
        serve poweroff-srv
        await poweroff-running
        counters
        mark poweroff
        exit 0	# the VM powers off, its server still running
    fi
    survive "power-off" poweroff
    peer_boot=2
    echo "== host 1 boots again"
    login
    meet 2
fi
round reboot
counters
if [ "$side" = 0 ]; then
    check "frames and DMA ext descriptors counted" \
        test "$(stat tx_frames)" -gt 0 -a "$(stat tx_ext_dma)" -gt 0
    dmesg | grep -E 'tbsim|tbrdma' | grep -vE 'taint|verification' | sed 's/^/  dmesg: /'
fi
check "rmmod tbrdma" rmmod tbrdma
mark "$me-done"
await "host$((1 - side))-done"
exit 0
