#!/usr/bin/env bash
# Runs inside the VM (test/vm/run-verbs.sh boots it with two edu devices):
# tbsim.ko with one cable between its two simulated hosts, tbrdma.ko with
# two loop cables, then tbrdma_ib.ko, so the links loop0, loop1, tb0 and
# tb1 are RDMA devices tbrdma_<link> (without tbsim, SIM_KO "-": the
# loops alone, and the XDomain checks say SKIP). Checks what the RDMA core and
# userspace see of them: sysfs, GIDs, the netdevs, port state following
# the carrier and the netdev, the uverbs commands (tbv_uverbs), unplug
# and replug of the cable, rmmod with a process holding a device, reload,
# and what is left after unloading (slab objects).
# Prints PASS:/FAIL:/SKIP: lines; exit 0 only if none failed.
#
#   verbs-guest.sh BUILD SIM_KO KO BINDIR
#     (KO's directory also holds tbrdma_ib.ko; BINDIR holds tbv_uverbs)
set -uo pipefail

build=$1 sim_ko=$2 ko=$3 bin=$4
ib_ko=$(dirname "$ko")/tbrdma_ib.ko
provider=$build/src/verbs/libtbrdma
failed=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; failed=1; }
check() { local what=$1; shift; if "$@"; then pass "$what"; else fail "$what"; return 1; fi; }
finish() { exit $failed; }
sim=/sys/kernel/debug/tbsim
links="loop0 loop1"
[ "$sim_ko" = - ] || links+=" tb0 tb1"
nlinks=$(wc -w <<< "$links")
skip() { echo "SKIP: $* (no tbsim for this kernel)"; }
ibsys=/sys/class/infiniband

# wait_for SECONDS CMD...: until CMD succeeds, polled four times a second.
wait_for() {
    local t=$1
    shift
    for _ in $(seq $((t * 4))); do "$@" && return 0; sleep 0.25; done
    return 1
}
# links_up LINKS...: every link is up.
links_up() {
    local l
    for l; do [ "$(cat "/sys/class/tbrdma/$l/state" 2>/dev/null)" = up ] || return 1; done
}
# ports_are STATE LINKS...: the port of every link's device is in STATE.
ports_are() {
    local s=$1 l
    shift
    for l; do [ "$(cat "$ibsys/tbrdma_$l/ports/1/state" 2>/dev/null)" = "$s" ] || return 1; done
}
# gone LINKS...: no RDMA device and no netdev of any of them.
gone() {
    local l
    for l; do [ ! -e "$ibsys/tbrdma_$l" ] && [ ! -e "/sys/class/net/tbrdma_$l" ] || return 1; done
}
# The default GID of a MAC: fe80::, then the MAC as a modified EUI-64.
eui64_gid() {
    local m
    IFS=: read -ra m <<< "$1"
    printf 'fe80:0000:0000:0000:%02x%s:%sff:fe%s:%s%s\n' $((0x${m[0]} ^ 2)) "${m[1]}" "${m[2]}" \
        "${m[3]}" "${m[4]}" "${m[5]}"
}
uverbs_of() {  # the uverbs character device of tbrdma_$1
    local u
    for u in /sys/class/infiniband_verbs/uverbs*; do
        [ "$(cat "$u/ibdev")" = "tbrdma_$1" ] && { echo "/dev/infiniband/${u##*/}"; return; }
    done
}
# hold LINK NAME: a process with a context and a PD on LINK's device,
# started in the background; its PID in held_pid once it holds them.
hold() {
    rm -f "/tmp/$2" "/tmp/$2.go"
    "$bin/tbv_uverbs" hold "$(uverbs_of "$1")" "/tmp/$2" > "/tmp/$2.out" 2>&1 &
    held_pid=$!
    wait_for 20 test -e "/tmp/$2"
}
# released NAME: the holder, told to go on, saw EIO and ended well.
released() {
    touch "/tmp/$1.go"
    wait "$held_pid"
    local rc=$?
    sed 's/^/  /' "/tmp/$1.out"
    [ "$rc" -eq 0 ]
}

# shellcheck source=leak-lib.sh
. "$(dirname "$0")/leak-lib.sh"
mount -t debugfs none /sys/kernel/debug 2>/dev/null
leaks=$build/test/vm/verbs-work/leaks
mkdir -p "$leaks"
check "modprobe ib_uverbs" modprobe ib_uverbs
# Without tbsim, tbrdma.ko binds to the kernel's Thunderbolt core: loaded
# before the leak check's first look, as it stays loaded (the objects its
# init made are not the modules' under test).
[ "$sim_ko" = - ] && check "modprobe thunderbolt" modprobe thunderbolt
settle
module_addrs > "$leaks/base.rawaddr"
if [ "$sim_ko" = - ]; then
    skip "insmod tbsim.ko cables=1"
else
    check "insmod tbsim.ko cables=1" insmod "$sim_ko" cables=1
fi
check "insmod tbrdma.ko loop=2 max_user_pds=8 max_user_cqs=8 max_user_srqs=4" \
    insmod "$ko" loop=2 max_user_pds=8 max_user_cqs=8 max_user_srqs=4 || finish
# shellcheck disable=SC2086 # a list of links
check "links up: $links" wait_for 60 links_up $links
check "insmod tbrdma_ib.ko" insmod "$ib_ko" || finish
# shellcheck disable=SC2046
module_ranges tbrdma tbrdma_ib $([ "$sim_ko" = - ] || echo tbsim) > "$leaks/ranges"

echo "== devices, ports, GIDs, netdevs"
macs=
for l in $links; do
    d=$ibsys/tbrdma_$l
    check "tbrdma_$l: registered" test -d "$d"
    check "tbrdma_$l: its device is the link's" \
        test "$(realpath "$d/device")" = "$(realpath "/sys/class/tbrdma/$l")"
    check "tbrdma_$l: port active" wait_for 10 ports_are "4: ACTIVE" "$l"
    check "tbrdma_$l: physical state LinkUp" test "$(cat "$d/ports/1/phys_state")" = "5: LinkUp"
    check "tbrdma_$l: link layer Ethernet" test "$(cat "$d/ports/1/link_layer")" = Ethernet
    echo "  tbrdma_$l: rate $(cat "$d/ports/1/rate"), node GUID $(cat "$d/node_guid")"
    mac=$(cat "/sys/class/net/tbrdma_$l/address")
    macs+="$mac "
    check "tbrdma_$l: GID 0 is the netdev's MAC ($mac) as RoCE v2" \
        test "$(cat "$d/ports/1/gids/0")" = "$(eui64_gid "$mac")" -a \
        "$(cat "$d/ports/1/gid_attrs/types/0")" = "RoCE v2" -a \
        "$(cat "$d/ports/1/gid_attrs/ndevs/0")" = "tbrdma_$l"
    flags=$(ip -o link show "tbrdma_$l")
    check "tbrdma_$l: netdev up, without ARP" grep -q 'NOARP.*UP\|UP.*NOARP' <<< "$flags"
    check "tbrdma_$l: the context names link $(cat "/sys/class/tbrdma/$l/index")" \
        "$bin/tbv_uverbs" check "$(uverbs_of "$l")" "$(cat "/sys/class/tbrdma/$l/index")"
done
check "$nlinks different MACs" test "$(tr ' ' '\n' <<< "$macs" | sort -u | grep -c .)" -eq "$nlinks"
rdma link show | sed 's/^/  /'
check "rdma link: tbrdma_loop0 active on its netdev" \
    bash -c "rdma link show | grep -q '^link tbrdma_loop0/1 state ACTIVE .*netdev tbrdma_loop0'"
check "rdma dev: $nlinks devices" test "$(rdma dev show | grep -c '^[0-9]*: tbrdma_')" -eq "$nlinks"

echo "== libibverbs with the provider (RDMAV_DRIVERS=$provider)"
export RDMAV_DRIVERS=$provider
ibv_devices | sed 's/^/  /'
for l in $links; do
    guid=$(tr -d : < "$ibsys/tbrdma_$l/node_guid")
    check "ibv_devices: tbrdma_$l with its GUID" bash -c "ibv_devices | grep -qE '^\s+tbrdma_$l\s+$guid\$'"
done
ibv_devinfo -v -d tbrdma_loop0 > /tmp/devinfo.out 2>&1
sed 's/^/  /' /tmp/devinfo.out
check "ibv_devinfo -v: port active, Ethernet, MTU 2048 (a UD datagram and its GRH in a frame)" \
    bash -c "grep -q 'state:.*PORT_ACTIVE' /tmp/devinfo.out && grep -q 'link_layer:.*Ethernet' /tmp/devinfo.out &&
             grep -q 'active_mtu:.*2048' /tmp/devinfo.out"
gid0=$(python3 -c 'import ipaddress, sys; print(ipaddress.ip_address(sys.argv[1]))' \
    "$(cat "$ibsys/tbrdma_loop0/ports/1/gids/0")")
check "ibv_devinfo -v: GID 0 is the MAC's ($gid0), RoCE v2" \
    grep -qE "GID\[ *0\]:\s+$gid0, RoCE v2" /tmp/devinfo.out
# Renamed (as rdma-core's udev rules do to devices with a GUID), a device
# is still the provider's; and a device of another driver is not.
rdma dev set tbrdma_loop1 name tbx_renamed
check "renamed tbrdma_loop1 still listed" bash -c "ibv_devices | grep -q '^\s*tbx_renamed\s'"
check "renamed tbrdma_loop1 opens" bash -c "ibv_devinfo -d tbx_renamed | grep -q 'state:.*PORT_ACTIVE'"
rdma dev set tbx_renamed name tbrdma_loop1
if modprobe rdma_rxe && ip link add tbv_dummy type dummy && ip link set tbv_dummy up &&
    rdma link add tbv_rxe type rxe netdev tbv_dummy; then
    ibv_devinfo -d tbv_rxe > /tmp/rxe.out 2>&1
    check "soft-RoCE's device opens beside them" grep -q 'hca_id:.*tbv_rxe' /tmp/rxe.out || sed 's/^/  /' /tmp/rxe.out
    check "the provider does not take soft-RoCE's device" bash -c "! ibv_devices 2>&1 | grep -q 'Driver tbrdma'"
    rdma link delete tbv_rxe
    ip link delete tbv_dummy
    rmmod rdma_rxe
else
    fail "a soft-RoCE device beside them"
fi

echo "== queue pairs: libibverbs' examples between loop0 and loop1, data checked"
# pingpong TOOL SERVER_DEV CLIENT_DEV ARGS...: both ends of TOOL (one of
# libibverbs' ibv_*_pingpong), the client's output.
pingpong() {
    local tool=$1 sdev=$2 cdev=$3 port=$((18515 + RANDOM % 1000)); shift 3
    timeout 60 $tool -d "$sdev" -g 0 -p $port -c "$@" > /tmp/pp-server.out 2>&1 &
    local server=$!
    sleep 0.5
    timeout 60 $tool -d "$cdev" -g 0 -p $port -c "$@" 127.0.0.1 > /tmp/pp-client.out 2>&1
    local rc=$? src=0
    wait $server || src=1
    [ $rc -eq 0 ] || rc=1
    # ibv_srq_pingpong posts up to one send per queue pair past -n: the
    # side that finishes first destroys its queue pairs, and such a send of
    # the other's still in flight is refused (our peer answers at once where
    # a lost one times out) before that side polled its last receives.
    # Only that is a success: the other side done, this one failing so.
    if [ "$tool" = ibv_srq_pingpong ] && [ $((rc + src)) -eq 1 ] &&
        grep -qs 'iters in' /tmp/pp-server.out /tmp/pp-client.out &&
        [ "$(grep -hs 'Failed' /tmp/pp-server.out /tmp/pp-client.out)" = \
          "Failed status remote access error (10) for wr_id 2" ]; then
        echo "  a send past -n refused, the other side done"
        rc=0 src=0
    fi
    [ $((rc + src)) -eq 0 ] || sed 's/^/  /' /tmp/pp-server.out /tmp/pp-client.out
    grep -h 'bytes in' /tmp/pp-client.out | sed 's/^/  /'
    return $((rc + src))
}
check "ibv_rc_pingpong loop1 <- loop0, 4 KiB x 500" pingpong ibv_rc_pingpong tbrdma_loop1 tbrdma_loop0 -n 500
check "ibv_rc_pingpong loop0 <- loop0, 64 B x 1000" pingpong ibv_rc_pingpong tbrdma_loop0 tbrdma_loop0 -s 64 -n 1000
check "ibv_rc_pingpong loop0 <- loop1, 1 MiB x 20, MTU 4096" \
    pingpong ibv_rc_pingpong tbrdma_loop0 tbrdma_loop1 -s 1048576 -n 20 -m 4096
check "ibv_rc_pingpong with completion events" pingpong ibv_rc_pingpong tbrdma_loop1 tbrdma_loop0 -n 200 -e
check "ibv_srq_pingpong loop1 <- loop0: 16 queue pairs on a shared receive queue" \
    pingpong ibv_srq_pingpong tbrdma_loop1 tbrdma_loop0 -n 200 -q 16 -r 64
check "ibv_ud_pingpong loop1 <- loop0, 2048 B x 500" pingpong ibv_ud_pingpong tbrdma_loop1 tbrdma_loop0 -n 500
check "ibv_ud_pingpong loop0 <- loop0, 64 B x 1000" pingpong ibv_ud_pingpong tbrdma_loop0 tbrdma_loop0 -s 64 -n 1000
check "ibv_ud_pingpong with completion events" pingpong ibv_ud_pingpong tbrdma_loop0 tbrdma_loop1 -n 200 -e
if [ "$sim_ko" = - ]; then
    skip "ibv_rc_pingpong and ibv_ud_pingpong over the simulated cable"
else
    check "ibv_rc_pingpong tb1 <- tb0, over the simulated cable" pingpong ibv_rc_pingpong tbrdma_tb1 tbrdma_tb0 -n 200
    check "ibv_ud_pingpong tb1 <- tb0, over the simulated cable" pingpong ibv_ud_pingpong tbrdma_tb1 tbrdma_tb0 -n 200
    # A datagram reaches its own fabric alone: the loops', or one cable's.
    # The client on tb1 sends first; it arrives at tb0 (counted there if
    # dropped), for a queue pair on loop0, which never answers.
    dropped=$(cat /sys/class/tbrdma/tb0/statistics/rx_dgram_dropped)
    timeout 60 ibv_ud_pingpong -d tbrdma_loop0 -g 0 -p 18514 -n 5 > /tmp/pp-server.out 2>&1 &
    sleep 0.5
    timeout 8 ibv_ud_pingpong -d tbrdma_tb1 -g 0 -p 18514 -n 5 127.0.0.1 > /tmp/pp-client.out 2>&1
    check "ibv_ud_pingpong from tb1 to loop0's queue pair: nothing arrives (another fabric)" \
        test $? -eq 124 -a "$(cat /sys/class/tbrdma/tb0/statistics/rx_dgram_dropped)" -gt "$dropped"
    kill %% 2> /dev/null
    wait
    # On a cable's device, its own GID is out of reach: the cable does not
    # bring anything back (it would reach the peer host's queue pair).
    refused() { ! pingpong "$@" > /dev/null 2>&1 && grep -q "$reason" /tmp/pp-server.out /tmp/pp-client.out; }
    reason='Failed to modify QP to RTR'
    check "ibv_rc_pingpong tb0 <- tb0 refused at RTR" refused ibv_rc_pingpong tbrdma_tb0 tbrdma_tb0 -n 5
    reason='Failed to create AH'
    check "ibv_ud_pingpong tb0 <- tb0: no address handle to its own GID" \
        refused ibv_ud_pingpong tbrdma_tb0 tbrdma_tb0 -n 5
fi

echo "== perftest between loop0 and loop1: RC, every size to 8 MiB; UD, to the MTU"
# perftest TOOL ARGS...: server on loop1, client on loop0; shows the
# client's table, and for -a runs checks that it reached 8 MiB (UD: 2048,
# the port's MTU).
perftest() {
    local tool=$1 port=$((18600 + RANDOM % 1000)); shift
    timeout 300 "$tool" -d tbrdma_loop1 -x 0 -p $port "$@" > /tmp/pt-server.out 2>&1 &
    local server=$!
    sleep 0.7
    timeout 300 "$tool" -d tbrdma_loop0 -x 0 -p $port "$@" 127.0.0.1 > /tmp/pt-client.out 2>&1
    local rc=$?
    wait $server || rc=1
    if [ $rc -ne 0 ]; then
        sed 's/^/  /' /tmp/pt-server.out /tmp/pt-client.out
        return $rc
    fi
    # A table row per size: bytes, iterations, then the figures.
    awk '$1 ~ /^[0-9]+$/ && $2 ~ /^[0-9]+$/ { print "  " $0 }' /tmp/pt-client.out
    local top=8388608
    [[ " $* " != *" -c UD "* ]] || top=2048
    [[ " $* " != *" -a "* ]] || grep -qE "^ *$top " /tmp/pt-client.out
}
for t in ib_write_lat ib_read_lat ib_send_lat; do
    check "$t -a --report_gbits" perftest $t -a -n 100 --report_gbits
done
for t in ib_write_bw ib_read_bw ib_send_bw; do
    check "$t -a --report_gbits" perftest $t -a -n 20 --report_gbits
done
check "ib_send_lat -c UD -a --report_gbits" perftest ib_send_lat -c UD -a -n 100 --report_gbits
check "ib_send_bw -c UD -a --report_gbits" perftest ib_send_bw -c UD -a -n 20 --report_gbits
# Its UD latency test posts a receive per iteration, up to 16000.
check "ib_send_lat -c UD -n 16000 (16000 receives posted)" perftest ib_send_lat -c UD -s 64 -n 16000
check "ib_atomic_lat (fetch-and-add)" perftest ib_atomic_lat -n 200
check "ib_atomic_bw (compare-and-swap) --report_gbits" perftest ib_atomic_bw -A CMP_AND_SWAP -n 200 --report_gbits

echo "== applications' patterns: NCCL's IB plugin, a peer killed mid-transfer"
check "NCCL's pattern between loop0 and loop1" "$bin/tbv_pattern" nccl tbrdma_loop0 tbrdma_loop1
check "a peer on loop1 killed mid-transfer" "$bin/tbv_pattern" kill tbrdma_loop0 tbrdma_loop1

echo "== what queue pairs and regions allow: access flags, read-only memory, RESET, CQ events, doorbell files, ERR from INIT"
for t in access readonly reset scatter srq-limit srq-reset cq-events doorbell-file; do
    check "tbv_semantics $t loop0 loop1" "$bin/tbv_semantics" $t tbrdma_loop0 tbrdma_loop1
done
check "tbv_semantics init-err loop0" "$bin/tbv_semantics" init-err tbrdma_loop0
echo "== UD queue pairs across a link going down and coming back"
check "tbv_ud replug loop0 loop1" "$bin/tbv_ud" replug tbrdma_loop0 tbrdma_loop1 /sys/class/tbrdma/loop0/carrier
if [ "$sim_ko" = - ]; then
    skip "UD queue pairs across an XDomain link failing and logging in again"
else
    check "tbv_ud relogin tb0 tb1 (every frame lost, then none)" \
        "$bin/tbv_ud" relogin tbrdma_tb0 tbrdma_tb1 /sys/module/tbsim/parameters/loss_ppm
    echo 0 > /sys/module/tbsim/parameters/loss_ppm  # if it died losing every frame
fi
# What one user may hold (max_user_pds=8, max_user_cqs=8, max_user_srqs=4
# at insmod; an open /dev/tbrdma is a domain): one user's cannot starve
# another's; CAP_SYS_RESOURCE lifts the limits.
as_user() {
    local user=$1 group=$2
    shift 2
    setpriv --reuid="$user" --regid="$group" --clear-groups --inh-caps=-all "$@"
}
chmod o+rw /dev/infiniband/uverbs*
for q in pd:8 cq:8 srq:4 file:8; do
    kind=${q%:*} n=${q#*:}
    rm -f /tmp/quota-held
    # Not through as_user: $! must be the holder itself, which setpriv becomes.
    setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all \
        "$bin/tbv_quota" limit "$kind" tbrdma_loop0 "$n" /tmp/quota-held > /tmp/quota-nobody.out 2>&1 &
    holder=$!
    if check "nobody holds its $kind quota" wait_for 20 test -e /tmp/quota-held; then
        as_user daemon daemon "$bin/tbv_quota" limit "$kind" tbrdma_loop1 "$n" |
            sed 's/^\(PASS\|FAIL\): /\1: daemon, meanwhile: /'
    fi
    kill "$holder" 2> /dev/null
    wait "$holder" 2> /dev/null
    check "nobody's $kind holder is gone" bash -c '! pgrep -x tbv_quota'
    sed 's/^\(PASS\|FAIL\): /\1: nobody: /' /tmp/quota-nobody.out
    check "root (CAP_SYS_RESOURCE) takes more than $n of $kind" \
        "$bin/tbv_quota" lifted "$kind" tbrdma_loop0 $((n + 4))
done
# Without CAP_IPC_LOCK, rings count against RLIMIT_MEMLOCK as regions do.
check "nobody's rings against RLIMIT_MEMLOCK" as_user nobody nogroup "$bin/tbv_quota" memlock tbrdma_loop0
chmod o-rw /dev/infiniband/uverbs*
check "the largest queue pair and SRQ the device offers" "$bin/tbv_quota" largest tbrdma_loop0

echo "== UCX's verbs transports between loop0 and loop1: rc_verbs and ud_verbs (UCT), UCP, Open MPI"
# A ucx_perftest built with MPI (Debian 13's and later) runs under MPI's
# runtime unless given -P 0; one without has no -P.
no_mpi=()
[[ $(ucx_perftest -h 2>&1) == *'-P <0|1>'* ]] && no_mpi=(-P 0)
# perftest_pair SENV SOPTS CENV COPTS ARGS...: ucx_perftest's server and
# client, each with its environment (VAR=VALUE words) and options, ARGS
# the test's; the client's result.
perftest_pair() {
    local port=$((13400 + RANDOM % 1000)) senv=$1 sopts=$2 cenv=$3 copts=$4
    shift 4
    # shellcheck disable=SC2086 # lists of words
    env $senv timeout 120 ucx_perftest "${no_mpi[@]}" $sopts -p $port > /tmp/uct-server.out 2>&1 &
    local server=$!
    sleep 1
    # shellcheck disable=SC2086
    env $cenv timeout 120 ucx_perftest 127.0.0.1 "${no_mpi[@]}" $copts -p $port "$@" \
        > /tmp/uct-client.out 2>&1
    local rc=$?
    wait $server || rc=1
    [ $rc -eq 0 ] || sed 's/^/  /' /tmp/uct-server.out /tmp/uct-client.out
    grep -h 'Final:' /tmp/uct-client.out | sed 's/^/  /'
    return $rc
}
# uct TL ARGS...: a UCT test over transport TL, server on loop1.
uct() {
    local tl=$1
    shift
    perftest_pair "" "-x $tl -d tbrdma_loop1:1" "" "-x $tl -d tbrdma_loop0:1" "$@"
}
# ucp TLS ARGS...: a UCP test with UCX_TLS=TLS, server on loop1.
ucp() {
    local tls=$1
    shift
    perftest_pair "UCX_TLS=$tls UCX_NET_DEVICES=tbrdma_loop1:1" "" \
        "UCX_TLS=$tls UCX_NET_DEVICES=tbrdma_loop0:1" "" "$@"
}
# Some distributions build UCX without its verbs transports (Debian
# unstable's 1.23.0~rc1: no "ib" among its UCT modules).
uct_modules=$(ucx_info -b | sed -n 's/^#define uct_MODULES *//p')
if [[ $uct_modules != *:ib* ]]; then
    echo "SKIP: UCX's rc_verbs and ud_verbs: this UCX has no verbs transports (UCT modules $uct_modules)"
else
    check "ucx_perftest rc_verbs put_lat 8 B" uct rc_verbs -t put_lat -s 8 -n 2000
    check "ucx_perftest rc_verbs am_lat 8 B" uct rc_verbs -t am_lat -s 8 -n 2000
    check "ucx_perftest rc_verbs put_bw 1 MiB zcopy" uct rc_verbs -t put_bw -s 1048576 -D zcopy -n 100
    check "ucx_perftest rc_verbs am_bw 4000 B zcopy (a header and the data: two scatter entries)" \
        uct rc_verbs -t am_bw -s 4000 -D zcopy -n 2000
    check "ucx_perftest rc_verbs am_bw 1000 B bcopy" uct rc_verbs -t am_bw -s 1000 -D bcopy -n 2000
    check "ucx_perftest rc_verbs add_lat (atomics)" uct rc_verbs -t add_lat -n 2000
    check "ucx_perftest ud_verbs am_lat 8 B" uct ud_verbs -t am_lat -s 8 -n 2000
    check "ucx_perftest ud_verbs am_bw 1000 B bcopy" uct ud_verbs -t am_bw -s 1000 -D bcopy -n 5000
    check "ucx_perftest ud_verbs am_bw 1800 B zcopy" uct ud_verbs -t am_bw -s 1800 -D zcopy -n 5000
    check "ucx_perftest UCP tag_lat 8 B over rc_verbs,ud_verbs" ucp rc_verbs,ud_verbs -t tag_lat -s 8 -n 2000
    check "ucx_perftest UCP tag_bw 1 MiB over rc_verbs,ud_verbs" ucp rc_verbs,ud_verbs -t tag_bw -s 1048576 -n 50
    check "ucx_perftest UCP tag_bw 64 KiB over ud_verbs alone" ucp ud_verbs -t tag_bw -s 65536 -n 100
    # Open MPI's pml ucx, data verified, lanes on rc_verbs (UCX's log).
    mpi_dir=$build/test/vm/verbs-work/mpi
    mkdir -p "$mpi_dir"
    (cd "$mpi_dir" && UCX_NET_DEVICES=tbrdma_loop0:1 TB_MPI_NP=2 TB_MPI_TLS=rc_verbs,ud_verbs,self \
        TB_MPI_EXPECT=rc_verbs TB_UCT_LIB=none TB_MPI_TEST=$build/test/mpi/tb_mpi_test \
        TB_MPI_ARGS="--max-size 262144" "$(dirname "$0")/../mpi/run-mpi.sh") > "$mpi_dir/run.out" 2>&1
    grep -E '^(np=|mpi:|  UCX lanes|    )' "$mpi_dir/run.out" | head -12 | sed 's/^/  /'
    check "Open MPI np 2 over rc_verbs and ud_verbs on tbrdma_loop0, data verified" \
        grep -q '^mpi: [1-9][0-9]* passed, 0 failed' "$mpi_dir/run.out"
fi
unset RDMAV_DRIVERS

echo "== port state follows the link and the netdev"
echo 0 > /sys/class/tbrdma/loop0/carrier
check "loop0 unplugged: port down" wait_for 10 ports_are "1: DOWN" loop0
check "loop0 unplugged: physical state Disabled" test "$(cat $ibsys/tbrdma_loop0/ports/1/phys_state)" = "3: Disabled"
check "loop0 unplugged: loop1 stays active" ports_are "4: ACTIVE" loop1
echo 1 > /sys/class/tbrdma/loop0/carrier
check "loop0 plugged: port active" wait_for 10 ports_are "4: ACTIVE" loop0
ip link set tbrdma_loop1 down
check "netdev down: port down" wait_for 10 ports_are "1: DOWN" loop1
ip link set tbrdma_loop1 up
check "netdev up: port active" wait_for 10 ports_are "4: ACTIVE" loop1

echo "== unplug and replug the cable, a process holding tbrdma_tb0"
if [ "$sim_ko" = - ]; then
    skip "unplug and replug of an XDomain cable with a device held"
else
    check "a process holds tbrdma_tb0" hold tb0 tb0-holder
    echo 0 > "$sim"/cable0/plugged
    check "unplugged: tbrdma_tb0 and tbrdma_tb1 gone, with their netdevs" wait_for 10 gone tb0 tb1
    check "unplugged: the holder was let go" released tb0-holder
    check "unplugged: the loops stay" test -e "$ibsys/tbrdma_loop0" -a -e "$ibsys/tbrdma_loop1"
    echo 1 > "$sim"/cable0/plugged
    check "replugged: the links log in again" wait_for 60 links_up tb0 tb1
    check "replugged: tbrdma_tb0 and tbrdma_tb1 active again" wait_for 10 ports_are "4: ACTIVE" tb0 tb1
    check "replugged: uverbs on tbrdma_tb1" "$bin/tbv_uverbs" check "$(uverbs_of tb1)" "$(cat /sys/class/tbrdma/tb1/index)"
fi

echo "== unload with a process holding a device, reload"
check "rmmod tbrdma is refused while tbrdma_ib uses it" bash -c '! rmmod tbrdma 2> /dev/null'
check "a process holds tbrdma_loop0" hold loop0 loop0-holder
# And two with queue pairs, their rings mapped, writing to each other.
RDMAV_DRIVERS=$provider timeout 60 ib_write_bw -d tbrdma_loop1 -x 0 -p 18555 -D 8 > /tmp/bw-server.out 2>&1 &
bw_server=$!
sleep 0.7
RDMAV_DRIVERS=$provider timeout 60 ib_write_bw -d tbrdma_loop0 -x 0 -p 18555 -D 8 127.0.0.1 > /tmp/bw-client.out 2>&1 &
bw_client=$!
sleep 3
check "rmmod tbrdma_ib with the device held and ib_write_bw running" timeout 60 rmmod tbrdma_ib
check "the holder was let go" released loop0-holder
check "ib_write_bw's processes ended (the device taken from them)" \
    wait_for 30 bash -c "! kill -0 $bw_client 2> /dev/null && ! kill -0 $bw_server 2> /dev/null"
wait $bw_client $bw_server
sed 's/^/  /' /tmp/bw-client.out | tail -n 4
# shellcheck disable=SC2086
check "no RDMA device or netdev left" gone $links
for i in 1 2 3; do
    insmod "$ib_ko" || { fail "insmod tbrdma_ib.ko again ($i)"; break; }
    module_ranges tbrdma_ib >> "$leaks/ranges"
    # shellcheck disable=SC2086
    wait_for 10 ports_are "4: ACTIVE" $links ||
        { fail "reload $i: ports active"; break; }
    "$bin/tbv_uverbs" check "$(uverbs_of loop1)" 1 > /dev/null || { fail "reload $i: uverbs"; break; }
    rmmod tbrdma_ib || { fail "rmmod tbrdma_ib ($i)"; break; }
    [ "$i" = 3 ] && pass "insmod, use, rmmod tbrdma_ib x 3"
done

check "rmmod tbrdma" rmmod tbrdma
[ "$sim_ko" = - ] || check "rmmod tbsim" rmmod tbsim

echo "== leaks, with the modules gone"
settle
module_addrs > "$leaks/end.rawaddr"
leaked_addrs "$leaks/base.rawaddr" "$leaks/end.rawaddr" "$leaks/ranges" > "$leaks/leaked.rawaddr"
leak_records "$leaks/leaked.rawaddr" > "$leaks/records"
[ -s "$leaks/records" ] && head -40 "$leaks/records"
check "no slab object allocated by the modules left" test ! -s "$leaks/records"
finish
