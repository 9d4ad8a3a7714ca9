#!/usr/bin/env bash
# Inside the test VM (contrib/bench-vm.sh boots it with tbsim.ko, one
# cable, tbrdma.ko loop=2, rdma_rxe and ib_uverbs): latency and bandwidth of
#   tb/loop0       the tb transport on the kernel device (UCX_TB_DEVICE=kernel),
#                  over an in-kernel loop cable
#   tb/tb0         the same over the simulated XDomain link: client on tb0,
#                  server on the cable's other end, tb1 (UCP tests only:
#                  ucx_perftest's server takes the client's UCT device)
#   rc_verbs/rxe0  UCX's RC over soft-RoCE (rdma_rxe on a dummy netdev)
#   tcp/lo         UCX's TCP over loopback
# as ucx_perftest server/client pairs (through contrib/tbrun, server and
# client pinned to different vCPUs), one table and
# the ratios of tb to the others; then perftest over tb's RDMA devices and
# soft-RoCE (bench-verbs-guest.sh). Only loopback and dummy devices: no
# traffic leaves the VM, which has no network card.
#
#   bench-vm-guest.sh TOP_SRCDIR
# Environment: TB_BENCH_SCALE (iteration multiplier, default 1),
# TB_BENCH_REPEAT (runs per measurement, the median is shown; default 3),
# TB_BENCH_TIMEOUT (seconds per pair, default 120), TB_BENCH_TRANSPORTS
# (the columns, default all: tb:loop0 tb@poll0:loop0 tb:tb0 tb@poll0:tb0
# rc_verbs:rxe0:1 tcp:lo), TB_UCT_LIB.
set -uo pipefail

top=${1:?usage: bench-vm-guest.sh TOP_SRCDIR}
# shellcheck source-path=SCRIPTDIR source=../perf/perftest-lib.sh
. "$top/test/perf/perftest-lib.sh"
PT_TIMEOUT=${TB_BENCH_TIMEOUT:-120}
PT_WORKDIR=$(mktemp -d)
# Server on vCPU 1, client on vCPU 0: when both land on one vCPU, every
# round trip waits for a time slice (about 2 ms) whatever the transport.
PT_TBRUN=$PT_WORKDIR/tbrun-pinned
cat > "$PT_TBRUN" <<EOF
#!/bin/sh
cpu=1
for a in "\$@"; do [ "\$a" = 127.0.0.1 ] && cpu=0; done
exec taskset -c \$cpu "$top/contrib/tbrun" "\$@"
EOF
chmod +x "$PT_TBRUN"
trap pt_cleanup EXIT
scale=${TB_BENCH_SCALE:-1}
repeat=${TB_BENCH_REPEAT:-3}
export UCX_TB_DEVICE=kernel UCX_WARN_UNUSED_ENV_VARS=n

iters() { awk -v n="$1" -v s="$scale" 'BEGIN { n = int(n * s); print (n < 10 ? 10 : n) }'; }

# Soft-RoCE on a dummy netdev. An IPv4 address gives rxe0 a RoCE v2 GID
# with an IPv4 address, which UCX prefers; rxe loops traffic to its own
# address back inside the driver.
ip link add dummy0 type dummy
ip addr add 10.77.0.1/24 dev dummy0
ip link set dummy0 up
rdma link add rxe0 type rxe netdev dummy0 || echo "bench-vm: rdma link add rxe0 failed"
sleep 1

echo "tb VM benchmark: guest kernel $(uname -r), $(nproc) vCPUs (QEMU TCG), UCX $(ucx_info -v | sed -n 's/^# Version //p')"
echo "NOTE: under TCG every instruction is emulated: absolute numbers mean nothing,"
echo "      only the ratios between transports measured in this one VM run do."
echo

# tb with the module's default poll_us (the poll thread busy-polls 50 us
# after activity), and with poll_us=0 (it sleeps at once; each frame wakes
# it). On 2 vCPUs with both ucx_perftest processes spinning, a
# busy-polling kernel thread competes with them for the CPUs. Over the
# XDomain link, poll_us=0 means every frame waits for the RX interrupt,
# moderated at 128 us as on Linux 6.1.
transports=${TB_BENCH_TRANSPORTS:-tb:loop0 tb@poll0:loop0 tb:tb0 tb@poll0:tb0 rc_verbs:rxe0:1 tcp:lo}
for _ in $(seq 120); do
    [ "$(cat /sys/class/tbrdma/tb0/state 2>/dev/null)" = up ] &&
        [ "$(cat /sys/class/tbrdma/tb1/state 2>/dev/null)" = up ] && break
    sleep 0.5
done
echo "simulated cable: tb0 $(cat /sys/class/tbrdma/tb0/state 2>/dev/null), tb1 $(cat /sys/class/tbrdma/tb1/state 2>/dev/null)"
poll_param=/sys/module/tbrdma/parameters/poll_us
poll_default=$(cat $poll_param 2>/dev/null || echo 50)
# key (the metric of TB_BENCH_CSV)|label|unit|test|size|iters|field|layouts
# Iterations for a second or more per run: a round trip that waits for a
# time slice (about 2 ms) then moves the typical value little.
metrics=(
    "put_lat_8|UCT put_lat 8 B|us|put_lat|8|20000|2|short bcopy zcopy"
    "am_lat_8|UCT am_lat 8 B|us|am_lat|8|20000|2|short bcopy"
    "put_bw_64K|UCT put_bw 64 KiB|MB/s|put_bw|65536|2000|6|zcopy bcopy"
    "put_bw_1M|UCT put_bw 1 MiB|MB/s|put_bw|1048576|300|6|zcopy bcopy"
    "am_bw_8|UCT am_bw 8 B|msg/s|am_bw|8|100000|8|short bcopy"
    "tag_lat_8|UCP tag_lat 8 B|us|tag_lat|8|20000|2|ucp"
    "tag_bw_1M|UCP tag_bw 1 MiB|MB/s|tag_bw|1048576|300|6|ucp"
)

declare -A val lay runs ctl cdev cpoll ccaps cserver
cols=()
status=0
for td in $transports; do
    tl=${td%%:*} dev=${td#*:} col='' poll=$poll_default
    [ "$tl" = tb@poll0 ] && tl=tb col="tb/$dev poll_us=0" poll=0
    caps=$(pt_caps "$tl" "$dev")
    if [ -z "$caps" ]; then
        echo "skipping $tl/$dev: not listed by ucx_info -d"
        continue
    fi
    col=${col:-$tl/$dev}
    cols+=("$col")
    ctl[$col]=$tl cdev[$col]=$dev cpoll[$col]=$poll ccaps[$col]=$caps
    # The XDomain link's other end, for the server.
    [ "$dev" = tb0 ] && cserver[$col]=tb1
done

# The layout of metric m on column c, or nothing when not available.
layout_for() {  # TEST SIZE LAYOUTS COL
    local test=$1 size=$2 layouts=$3 c=$4 l lim
    if [ "$layouts" = ucp ]; then
        # UCP over rc_verbs needs ud_verbs for wire-up, which does not
        # work over rxe with UCX 1.13.1 (see below): tb and tcp only.
        [ "${ctl[$c]}" != rc_verbs ] && pt_cap_has "${ccaps[$c]}" am_bcopy && echo ucp
        return 0
    fi
    # Over the XDomain link, UCP's counterpart of the UCT test (ucp_put_lat,
    # ucp_am_bw, ...): ucx_perftest's UCT server would open the client's
    # device, tb0, and both ends of this cable are in this host.
    if [ -n "${cserver[$c]:-}" ]; then
        pt_cap_has "${ccaps[$c]}" am_bcopy && echo ucp
        return 0
    fi
    for l in $layouts; do
        lim=$(pt_cap_limit "${ccaps[$c]}" "${test%_*}_$l")
        if [ -n "$lim" ] && [ "$lim" -ge "$size" ]; then echo "$l"; return 0; fi
    done
}

# Metric by metric, the transports in turn, $repeat times: the host's load
# changes over minutes (other VMs share its CPUs), so the runs that are
# compared are close in time. The median of the runs is shown.
for m in "${metrics[@]}"; do
    IFS='|' read -r key _ _ test size n field layouts <<< "$m"
    for c in "${cols[@]}"; do
        lay[$key,$c]=$(layout_for "$test" "$size" "$layouts" "$c")
        [ -n "${lay[$key,$c]}" ] || val[$key,$c]=-
    done
    for r in $(seq 1 "$repeat"); do
        for c in "${cols[@]}"; do
            layout=${lay[$key,$c]}
            [ -n "$layout" ] && [ "${val[$key,$c]:-}" != FAIL ] || continue
            tl=${ctl[$c]} dev=${cdev[$c]}
            echo "${cpoll[$c]}" > $poll_param 2>/dev/null
            PT_SERVER_ENV=${cserver[$c]:+UCX_NET_DEVICES=${cserver[$c]}}
            if [ "$layout" = ucp ]; then
                env="UCX_TLS=$tl,self UCX_NET_DEVICES=$dev"
                t=$test
                [[ $t = tag_* ]] || t=ucp_$t
                args=(-t "$t" -s "$size" -n "$(iters "$n")")
            else
                env=
                args=(-t "$test" -x "$tl" -d "$dev" -D "$layout" -s "$size" -n "$(iters "$n")")
            fi
            args+=(-w "$(( $(iters "$n") / 10 + 1 ))")
            if pt_run_pair "$env" "${args[@]}"; then
                runs[$key,$c]="${runs[$key,$c]:-} $(pt_field "$field")"
                echo "  $c $test $size B ($layout) run $r: $(pt_field "$field")"
            else
                val[$key,$c]=FAIL
                [ "$tl" = tb ] && status=1
                echo "  $c $test $size B ($layout): FAILED: $PT_WHY"
                tail -n 3 "$PT_CLIENT_OUT" | sed 's/^/    /'
            fi
        done
    done
    for c in "${cols[@]}"; do
        [ -n "${runs[$key,$c]:-}" ] && [ "${val[$key,$c]:-}" != FAIL ] || continue
        # shellcheck disable=SC2086 # the runs are a list of words
        val[$key,$c]=$(printf '%s\n' ${runs[$key,$c]} | sort -g |
                       awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
    done
done
echo "$poll_default" > $poll_param 2>/dev/null

# UD over rxe: UCX 1.13.1's ud_verbs (am_lat, one try) for the record.
PT_TIMEOUT=45
PT_SERVER_ENV=
if pt_run_pair "UCX_UD_TIMEOUT=20s" -t am_lat -x ud_verbs -d rxe0:1 -s 8 -n 200; then
    ud="ud_verbs/rxe0:1 am_lat 8 B works: $(pt_field 2) us"
else
    ud="ud_verbs/rxe0:1 does not work here: $PT_WHY"
fi

fmt() {
    case $1 in
        -|FAIL|'') echo "${1:--}" ;;
        *) case $2 in us) printf '%.1f' "$1" ;; *) printf '%.0f' "$1" ;; esac ;;
    esac
}
echo
printf '%-20s %-6s' metric unit
for c in "${cols[@]}"; do printf ' %19s' "$c"; done
echo
for m in "${metrics[@]}"; do
    IFS='|' read -r key label unit _ <<< "$m"
    printf '%-20s %-6s' "$label" "$unit"
    for c in "${cols[@]}"; do
        l=${lay[$key,$c]:-}
        printf ' %17s %1s' "$(fmt "${val[$key,$c]:-}" "$unit")" "${l:0:1}"
    done
    echo
done
echo "latency: one way, median of the run (us); bandwidth: MB/s; rate: msg/s;"
echo "each value the median of $repeat ucx_perftest runs, the transports taken in turn"
echo "layouts: s = short, b = bcopy, z = zcopy, u = UCP (UCX_TLS=<tl>,self; for a UCT test, its ucp_ counterpart); - = not available"
echo "UCP over rc_verbs needs ud_verbs for wire-up: $ud"
# For TB_BENCH_CSV (contrib/bench-vm.sh picks these lines out): metric,
# transport (the column, without rxe's port; " poll_us=0" as "@poll_us=0"),
# value, for every number measured.
for m in "${metrics[@]}"; do
    IFS='|' read -r key _ <<< "$m"
    for c in "${cols[@]}"; do
        [[ ${val[$key,$c]:-} =~ ^[0-9] ]] || continue
        t=${c%:1}
        echo "bench-csv: $key,${t/ poll_us=0/@poll_us=0},${val[$key,$c]}"
    done
done

# ratios REF: REF's value over every other column's.
ratios() {
    local ref=$1 c r o
    [ -n "${val[tag_lat_8,$ref]+x}" ] || return 0
    echo
    echo "ratios $ref / other (latency: > 1 means $ref slower; bandwidth, rate: > 1 means it is faster)"
    printf '%-20s %-6s' metric ""
    for c in "${cols[@]}"; do [ "$c" = "$ref" ] || printf ' %21s' "/ $c"; done
    echo
    for m in "${metrics[@]}"; do
        IFS='|' read -r key label _ <<< "$m"
        printf '%-20s %-6s' "$label" ""
        r=${val[$key,$ref]:-}
        for c in "${cols[@]}"; do
            [ "$c" = "$ref" ] && continue
            o=${val[$key,$c]:-}
            if [[ $r =~ ^[0-9][0-9.e+-]*$ && $o =~ ^[0-9][0-9.e+-]*$ ]] && awk -v o="$o" 'BEGIN { exit !(o > 0) }'; then
                printf ' %21s' "$(awk -v r="$r" -v o="$o" 'BEGIN { printf "%.2f", r / o }')"
            else
                printf ' %21s' -
            fi
        done
        echo
    done
}
ratios tb/loop0
ratios tb/tb0
echo
mount -t debugfs none /sys/kernel/debug 2>/dev/null
grep -E '^(sq_polled|poller) ' /sys/kernel/debug/tbrdma/status 2>/dev/null | sed 's/^/tbrdma: /'
for l in loop0 tb0 tb1; do
    echo "$l: $(cd /sys/class/tbrdma/$l/statistics 2>/dev/null && for f in retransmits timeouts rx_dup; do printf '%s %s ' "$f" "$(cat $f)"; done)"
done
sed 's/^/simulated cable: /' /sys/kernel/debug/tbsim/cable0/stats 2>/dev/null
rm -rf "$PT_WORKDIR"
"$top/test/vm/bench-verbs-guest.sh" "$top" || status=1
exit $status
