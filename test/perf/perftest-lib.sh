# perftest-lib.sh -- helpers shared by test/perf/run-perftest.sh and
# contrib/bench.sh (sourced, not run): run one ucx_perftest server/client
# pair on this machine, parse its result, read transport capabilities.
#
# The caller sets:
#   PT_TBRUN    path of contrib/tbrun (every ucx_perftest runs through it)
#   PT_WORKDIR  directory for the output files of each pair
#   PT_TIMEOUT  seconds allowed for one pair (server and client each)

PT_SERVER_PID=
PT_SEQ=0
# A ucx_perftest built with MPI (Debian 13's and later) waits for MPI's
# launcher unless told not to (-P 0); one built without has no -P.
PT_NO_MPI=()
[[ $(ucx_perftest -h 2>&1) == *'-P <0|1>'* ]] && PT_NO_MPI=(-P 0)

# Kills a server that is still running (call from an EXIT trap).
pt_cleanup()
{
    if [ -n "$PT_SERVER_PID" ] && kill -0 "$PT_SERVER_PID" 2> /dev/null; then
        kill "$PT_SERVER_PID" 2> /dev/null
        wait "$PT_SERVER_PID" 2> /dev/null
    fi
    PT_SERVER_PID=
}

pt_port_busy()
{
    ss -Htan "( sport = :$1 )" 2> /dev/null | grep -q .
}

# A TCP port nobody uses (ucx_perftest's -p: its out-of-band channel), taken
# below the kernel's ephemeral range so that no outgoing connection (nor a
# TIME_WAIT left by one) can hold it.
pt_free_port()
{
    local lo=32768 p
    read -r lo _ < /proc/sys/net/ipv4/ip_local_port_range 2> /dev/null || true
    [ "$lo" -gt 12000 ] || lo=32768
    for _ in $(seq 1 50); do
        p=$((10000 + RANDOM % (lo - 10000)))
        pt_port_busy "$p" || break
    done
    echo "$p"
}

# Waits until the server listens on port $1 (at most 10 s); fails if the
# server process $2 exits first. Without ss(8), waits half a second.
pt_wait_listen()
{
    local port=$1 pid=$2
    if ! command -v ss > /dev/null; then
        sleep 0.5
        return 0
    fi
    for _ in $(seq 1 200); do
        pt_port_busy "$port" && return 0
        kill -0 "$pid" 2> /dev/null || return 1
        sleep 0.05
    done
    return 1
}

# pt_run_pair ENV ARGS...
#   ENV: space-separated VAR=value settings for both processes (may be "")
#   ARGS: ucx_perftest arguments (test, sizes, transport), the same on both
# Runs a server in the background and a client connecting to 127.0.0.1.
# PT_SERVER_ENV: more VAR=value settings for the server alone (the other
# end of a cable whose two ends are on this host, as UCX_NET_DEVICES).
# On success returns 0 and sets PT_CSV to the client's final result
#   iterations,lat_50%,lat_avg,lat_overall,bw_avg,bw_overall,mr_avg,mr_overall
# (latency in usec, bandwidth in MB/s, message rate in msg/s).
# On failure returns 1 and sets PT_WHY. PT_CLIENT_OUT and PT_SERVER_OUT name
# the output files either way.
pt_run_pair()
{
    local envspec=$1
    shift
    local -a envv=()
    [ -n "$envspec" ] && read -r -a envv <<< "$envspec"
    local port srv_rc cli_rc start
    local -a senvv=()
    [ -n "${PT_SERVER_ENV:-}" ] && read -r -a senvv <<< "$PT_SERVER_ENV"
    start=$(date +%s)
    PT_SEQ=$((PT_SEQ + 1))
    PT_SERVER_OUT=$PT_WORKDIR/pair$PT_SEQ.server.out
    PT_CLIENT_OUT=$PT_WORKDIR/pair$PT_SEQ.client.out
    PT_CSV=
    PT_WHY=
    # A port can still be taken between the check and bind(): try again.
    for _ in 1 2 3; do
        port=$(pt_free_port)
        echo "server: ucx_perftest $* -p $port (env: ${envspec:-none} ${PT_SERVER_ENV:-})" > "$PT_SERVER_OUT"
        timeout -k 5 "$PT_TIMEOUT" env "${envv[@]}" "${senvv[@]}" "$PT_TBRUN" ucx_perftest "${PT_NO_MPI[@]}" "$@" -p "$port" \
            >> "$PT_SERVER_OUT" 2>&1 < /dev/null &
        PT_SERVER_PID=$!
        pt_wait_listen "$port" "$PT_SERVER_PID" && break
        pt_cleanup
        grep -q 'bind() failed' "$PT_SERVER_OUT" && continue
        PT_WHY="server did not start listening (see $PT_SERVER_OUT)"
        return 1
    done
    if [ -z "$PT_SERVER_PID" ]; then
        PT_WHY="server could not bind a port (see $PT_SERVER_OUT)"
        return 1
    fi

    for _ in $(seq 1 20); do
        echo "client: ucx_perftest 127.0.0.1 $* -p $port -f -v (env: ${envspec:-none})" > "$PT_CLIENT_OUT"
        timeout -k 5 "$PT_TIMEOUT" env "${envv[@]}" "$PT_TBRUN" ucx_perftest 127.0.0.1 "${PT_NO_MPI[@]}" "$@" \
            -p "$port" -f -v >> "$PT_CLIENT_OUT" 2>&1 < /dev/null
        cli_rc=$?
        grep -q 'connect() failed' "$PT_CLIENT_OUT" || break
        kill -0 "$PT_SERVER_PID" 2> /dev/null || break
        sleep 0.25
    done

    wait "$PT_SERVER_PID"
    srv_rc=$?
    PT_SERVER_PID=

    # Final result: the last CSV line with 8 numeric fields.
    # (Fields can be "inf" when an interval was too short to measure.)
    PT_CSV=$(grep -E '^ *[0-9]+(, *([0-9.]+(e[+-]?[0-9]+)?|-?inf|-?nan)){7} *$' "$PT_CLIENT_OUT" |
        tail -n 1 | tr -d ' ')
    local errors
    errors=$(grep -hE 'UCX +ERROR|Segmentation fault|Aborted|Assertion .* failed' "$PT_CLIENT_OUT" "$PT_SERVER_OUT" | head -n 1)
    local secs=$(( $(date +%s) - start ))
    if [ "$cli_rc" -eq 124 ] || [ "$srv_rc" -eq 124 ] ||
       { [ "$secs" -ge "$PT_TIMEOUT" ] && { [ "$cli_rc" -eq 137 ] || [ "$srv_rc" -eq 137 ]; }; }; then
        PT_WHY="timed out after $PT_TIMEOUT s (client $cli_rc, server $srv_rc)"
    elif [ "$cli_rc" -eq 137 ] || [ "$srv_rc" -eq 137 ] || [ "$cli_rc" -eq 143 ] || [ "$srv_rc" -eq 143 ]; then
        PT_WHY="killed by a signal from outside after $secs s (exit status client $cli_rc, server $srv_rc)"
    elif [ "$cli_rc" -ne 0 ] || [ "$srv_rc" -ne 0 ]; then
        PT_WHY="exit status client $cli_rc, server $srv_rc${errors:+: $errors}"
    elif [ -n "$errors" ]; then
        PT_WHY="error in output: $errors"
    elif [ -z "$PT_CSV" ]; then
        PT_WHY="no result line in $PT_CLIENT_OUT"
    fi
    [ -z "$PT_WHY" ]
}

# Field N (1-based, see pt_run_pair) of PT_CSV.
pt_field()
{
    echo "$PT_CSV" | cut -d, -f"$1"
}

# pt_caps TL DEV: prints "name value" for each capability line of the
# transport/device in `tbrun ucx_info -d` (e.g. "am_bcopy <= 8256",
# "atomic_fadd 32, 64 bit"), and "type network|intra-node|..." for its
# device type. Prints nothing if TL/DEV is not listed.
pt_caps()
{
    "$PT_TBRUN" ucx_info -d 2> /dev/null | awk -v tl="$1" -v dev="$2" '
        /^# +Memory domain:/ { in_tl = 0; in_dev = 0 }
        /^# +Transport:/     { in_tl = ($3 == tl); in_dev = 0 }
        /^# +Device:/        { in_dev = in_tl && ($3 == dev) }
        in_dev && /^# +Type:/ { print "type", $3 }
        in_dev && /^# +[a-z_]+: / {
            name = $2; sub(/:$/, "", name)
            val = $0; sub(/^# +[a-z_]+: /, "", val)
            print name, val
        }'
}

# pt_cap_limit CAPS NAME: the byte limit of capability NAME ("<= 8256",
# "<= 16K", "unlimited, up to 16 iov"), at most 1 TiB; empty if not
# advertised.
pt_cap_limit()
{
    echo "$1" | awk -v n="$2" '
        $1 == n {
            if ($2 ~ /^unlimited/) { print "1099511627776"; exit }
            v = $3; sub(/,$/, "", v)
            m = 1
            if (v ~ /K$/) m = 1024
            if (v ~ /M$/) m = 1048576
            if (v ~ /G$/) m = 1073741824
            sub(/[KMG]$/, "", v)
            v = v * m
            if (v > 1099511627776) v = 1099511627776  # keep it in shell arithmetic range
            printf "%.0f\n", v
            exit
        }'
}

# pt_cap_has CAPS NAME [WORD]: is NAME advertised (and its value has WORD)?
pt_cap_has()
{
    echo "$1" | awk -v n="$2" -v w="${3:-}" '$1 == n && index($0, w) { f = 1 } END { exit !f }'
}

# pt_ucp_env TLS DEV CAPS: environment for UCP-level runs: UCX_TLS, info
# logging (for the lane check) and, for a network device, UCX_NET_DEVICES,
# so that UCP does not also stripe over other NICs (tcp: lo but not eth0).
pt_ucp_env()
{
    local e="UCX_TLS=$1 UCX_LOG_LEVEL=${UCX_LOG_LEVEL:-info}"
    if [ -z "${UCX_NET_DEVICES:-}" ] && echo "$3" | grep -q '^type network'; then
        e="$e UCX_NET_DEVICES=$2"
    fi
    echo "$e"
}

# The lines of FILE, a UCP run's log, that name its lanes: an info
# "ep_cfg[N]: tag(tb/soft0)" line (UCX 1.18: "perftest intra-node cfg#0
# tag(tb/soft0)"), or for the atomics-only tests (UCX 1.13
# prints no ep_cfg line for a worker without an AM lane) the debug line
# "wireup.c:NNNN UCX  DEBUG   ep 0x...: lane[0]:  1:tb/soft0.0 md[1] ... amo#0".
pt_lane_lines()  # FILE
{
    grep -hE 'UCX +INFO +(ep_cfg\[[0-9]+\]:| *[a-z_0-9]+ [a-z-]+ cfg#[0-9]+ )|UCX +DEBUG +ep 0x[0-9a-f]+: lane\[[0-9]+\]:' "$1"
}

# Whether FILE's lanes include one on transport TL.
pt_lane_on()  # FILE TL
{
    pt_lane_lines "$1" | grep -qE "[( ]$2/|lane\[[0-9]+\]: +[0-9]+:$2/"
}
