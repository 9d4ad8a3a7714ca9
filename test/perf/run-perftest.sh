#!/usr/bin/env bash
# Runs ucx_perftest server/client pairs on this machine over one transport,
# through contrib/tbrun: every UCT-level test the transport's capabilities
# allow (ucx_info -d), with each data layout (short, bcopy, zcopy), and the
# UCP-level tests with UCX_TLS. Small iteration counts: this checks that the
# operations work, contrib/bench.sh measures. One line per pair (PASS, FAIL
# or SKIP) and a final "perftest: N passed, M failed".
#
# Environment:
#   TB_PERF_TL       UCT transport (default tb)
#   TB_PERF_DEV      its device (default soft0)
#   TB_PERF_SERVER_DEV  the server's device, when it differs (the other end
#                    of a cable whose both ends are on this host): UCP tests
#                    only, since ucx_perftest's server takes the client's -d
#   TB_PERF_TLS      UCX_TLS for the UCP tests (default "<TB_PERF_TL>,self";
#                    "none" skips the UCP tests)
#   TB_PERF_EXPECT   transport that must appear in the UCP lanes
#                    (default TB_PERF_TL)
#   TB_PERF_LEVELS   "uct ucp" (default), or one of them
#   TB_PERF_ONLY     run only the tests whose label matches this extended
#                    regular expression (e.g. "ucp_add|put_bw")
#   TB_PERF_ITERS    iterations per test (default 1000; bandwidth tests
#                    with large messages use a tenth)
#   TB_PERF_TIMEOUT  seconds allowed per pair (default 60)
#   TB_PERF_STRICT   "yes": an operation the transport does not advertise is
#                    a failure instead of a skip (default: yes for tb, which
#                    advertises every one of them, no for other transports)
#   TB_UCT_LIB       passed on to contrib/tbrun ("none": no tb library)
#   TB_EXPECT_UCT    "yes": a missing libuct_tb.so.0 is a failure (set by
#                    make when the transport is built), else a skip (77)
#
# Output of every pair is kept in ./perftest-out/.
#
# UCP lanes are checked like test/mpi/run-mpi.sh does: with
# UCX_LOG_LEVEL=info, UCX 1.13 logs "ucp_worker.c:NNNN UCX  INFO  ep_cfg[N]:
# tag(tl/dev ...) rma(...)" for each endpoint configuration; both the server
# and the client must show "<TB_PERF_EXPECT>/" there. The atomics-only tests
# run with UCX_LOG_LEVEL=debug, see lanes_ok().
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=${TB_TOP_SRCDIR:-$(cd "$here/../.." && pwd)}
# shellcheck source-path=SCRIPTDIR source=perftest-lib.sh
. "$here/perftest-lib.sh"

tl=${TB_PERF_TL:-tb}
dev=${TB_PERF_DEV:-soft0}
tls=${TB_PERF_TLS:-$tl,self}
expect=${TB_PERF_EXPECT:-$tl}
levels=${TB_PERF_LEVELS:-uct ucp}
iters=${TB_PERF_ITERS:-1000}
strict=${TB_PERF_STRICT:-$([ "$tl" = tb ] && echo yes || echo no)}
only=${TB_PERF_ONLY:-}

PT_TBRUN=$top/contrib/tbrun
PT_TIMEOUT=${TB_PERF_TIMEOUT:-60}
if [ -n "${TB_PERF_SERVER_DEV:-}" ]; then
    PT_SERVER_ENV="UCX_NET_DEVICES=$TB_PERF_SERVER_DEV"
    levels=ucp
fi
PT_WORKDIR=$PWD/perftest-out
rm -rf "$PT_WORKDIR"
mkdir -p "$PT_WORKDIR"
trap pt_cleanup EXIT

# The software device unless another is asked for (UCX's auto is the kernel).
export UCX_TB_DEVICE=${UCX_TB_DEVICE:-soft}

passed=0 failed=0 skipped=0
summary() { echo "perftest: $passed passed, $failed failed"; }

if [ "${TB_UCX_PERFTEST:-}" = no ] || ! command -v ucx_perftest > /dev/null; then
    echo "run-perftest: SKIP: ucx_perftest not found (apt-get install ucx-utils)"
    exit 77
fi

if [ "$tl" = tb ] || [[ ",$tls," == *,tb,* ]]; then
    if ! "$PT_TBRUN" --lib > /dev/null 2>&1; then
        if [ "${TB_EXPECT_UCT:-no}" = yes ]; then
            "$PT_TBRUN" --lib
            echo "run-perftest: the tb transport should have been built but libuct_tb.so.0 is missing"
            failed=1; summary; exit 1
        fi
        echo "run-perftest: SKIP: libuct_tb.so.0 not built (UCX source missing? see contrib/get-ucx-source.sh)"
        echo "run-perftest: to try it over UCX's own transports: TB_UCT_LIB=none TB_PERF_TL=posix TB_PERF_DEV=memory $0"
        exit 77
    fi
fi

echo "run-perftest: UCT $tl/$dev, UCP UCX_TLS=$tls (lanes on '$expect'), library: $("$PT_TBRUN" --lib 2>&1)"

# Is the test LABEL selected by TB_PERF_ONLY?
selected()
{
    [ -z "$only" ] || [[ $1 =~ $only ]]
}

result()  # VERDICT LABEL DETAIL
{
    printf '%-4s  %-34s %s\n' "$1" "$2" "$3"
    case $1 in
        PASS) passed=$((passed + 1)) ;;
        FAIL) failed=$((failed + 1)) ;;
        SKIP) skipped=$((skipped + 1)) ;;
    esac
}

# An operation the device does not advertise: skipped, or failed if strict.
unsupported()  # LABEL CAPABILITY
{
    if [ "$strict" = yes ]; then
        result FAIL "$1" "$2 not advertised by $tl/$dev (TB_PERF_STRICT=yes)"
    else
        result SKIP "$1" "$2 not advertised by $tl/$dev"
    fi
}

# One-line summary of a result: latency for latency tests, else bandwidth
# and message rate.
numbers()  # TEST
{
    case $1 in
        *lat*|fadd|swap|cswap|ucp_fadd|ucp_swap|ucp_cswap)
            echo "lat $(pt_field 2) us (median), $(pt_field 3) us (average)" ;;
        *)
            echo "bw $(pt_field 6) MB/s, $(pt_field 8) msg/s" ;;
    esac
}

# ---------------------------------------------------------------------------
# UCT level: ucx_perftest -t TEST -x TL -d DEV [-D LAYOUT] -s SIZE

uct_tests=(
    # test    layout capability  size
    "am_lat   short  am_short    8"
    "am_lat   bcopy  am_bcopy    64"
    "am_lat   zcopy  am_zcopy    64"
    "put_lat  short  put_short   8"
    "put_lat  bcopy  put_bcopy   64"
    "put_lat  zcopy  put_zcopy   64"
    "get      bcopy  get_bcopy   64"
    "get      zcopy  get_zcopy   65536"
    "add_lat  -      atomic_add  8"
    "fadd     -      atomic_fadd 8"
    "swap     -      atomic_swap 8"
    "cswap    -      atomic_cswap 8"
    "add_mr   -      atomic_add  8"
    "am_bw    short  am_short    8"
    "am_bw    bcopy  am_bcopy    4096"
    "am_bw    zcopy  am_zcopy    4096"
    "put_bw   short  put_short   8"
    "put_bw   bcopy  put_bcopy   4096"
    "put_bw   zcopy  put_zcopy   65536"
    "put_bw   zcopy  put_zcopy   1048576"
)

run_uct()
{
    local caps line test layout cap size limit label n
    caps=$(pt_caps "$tl" "$dev")
    if [ -z "$caps" ]; then
        result FAIL "uct $tl/$dev" "not listed by 'contrib/tbrun ucx_info -d'"
        return
    fi
    for line in "${uct_tests[@]}"; do
        read -r test layout cap size <<< "$line"
        if [ "$layout" != - ]; then
            label="uct $test -D $layout, $size B"
        else
            label="uct $test, $size B"
        fi
        selected "$label" || continue
        local -a dargs=()
        [ "$layout" != - ] && dargs=(-D "$layout")
        if [[ $cap == atomic_* ]]; then
            if ! pt_cap_has "$caps" "$cap" "64 bit"; then
                unsupported "$label" "$cap (64 bit)"
                continue
            fi
        else
            limit=$(pt_cap_limit "$caps" "$cap")
            if [ -z "$limit" ]; then
                unsupported "$label" "$cap"
                continue
            fi
            if [ "$limit" -lt "$size" ]; then
                size=$limit
                label="${label%,*}, $size B"
            fi
        fi
        n=$iters
        [ "$size" -ge 65536 ] && n=$(( (iters + 9) / 10 ))
        if pt_run_pair "" -t "$test" -x "$tl" -d "$dev" "${dargs[@]}" -s "$size" -n "$n" -w $((n / 10)); then
            result PASS "$label" "$(numbers "$test")"
        else
            result FAIL "$label" "$PT_WHY"
        fi
    done
}

# ---------------------------------------------------------------------------
# UCP level: UCX_TLS chooses the transports; the lanes must be on $expect.

ucp_tests=(
    # test        size
    "tag_lat      8"
    "tag_lat      1048576"
    "tag_bw       8"
    "tag_bw       1048576"
    "tag_sync_lat 8"
    "stream_lat   8"
    "stream_bw    65536"
    "ucp_put_lat  8"
    "ucp_put_bw   65536"
    "ucp_get      8"
    "ucp_get      1048576"
    "ucp_add      8"
    "ucp_fadd     8"
    "ucp_swap     8"
    "ucp_cswap    8"
    "ucp_am_lat   8"
    "ucp_am_bw    65536"
)

# Both sides must have logged a lane on the expected transport.
lanes_ok()
{
    local f
    for f in "$PT_SERVER_OUT" "$PT_CLIENT_OUT"; do
        pt_lane_on "$f" "$expect" || return 1
    done
}

lanes_of()
{
    pt_lane_lines "$PT_CLIENT_OUT" |
        sed -E 's/.*ep_cfg\[[0-9]+\]: //; s/.*UCX +INFO +[a-z_0-9]+ [a-z-]+ cfg#[0-9]+ +//; s/.*(lane\[[0-9]+\]:) +[0-9]+:([^ ]+) .* -> [^ ]+ (.*)$/\1 \2 \3/' |
        sort -u | paste -sd '|'
}

run_ucp()
{
    local line test size n label envspec
    local caps
    caps=$(pt_caps "$tl" "$dev")
    for line in "${ucp_tests[@]}"; do
        read -r test size <<< "$line"
        label="ucp $test, $size B"
        selected "$label" || continue
        case $test in
            ucp_add|ucp_fadd|ucp_swap|ucp_cswap)
                envspec=$(UCX_LOG_LEVEL=${UCX_LOG_LEVEL:-debug} pt_ucp_env "$tls" "$dev" "$caps") ;;
            *)
                envspec=$(pt_ucp_env "$tls" "$dev" "$caps") ;;
        esac
        n=$iters
        [ "$size" -ge 65536 ] && n=$(( (iters + 9) / 10 ))
        if ! pt_run_pair "$envspec" -t "$test" -s "$size" -n "$n" -w $((n / 10)); then
            result FAIL "$label" "$PT_WHY"
        elif ! lanes_ok; then
            result FAIL "$label" "no lane on '$expect/' (lanes: $(lanes_of))"
        else
            result PASS "$label" "$(numbers "$test") [$(lanes_of)]"
        fi
    done
}

start=$(date +%s)
for level in $levels; do
    case $level in
        uct) run_uct ;;
        ucp) [ "$tls" = none ] || run_ucp ;;
        *) echo "run-perftest: unknown level '$level' in TB_PERF_LEVELS"; failed=$((failed + 1)) ;;
    esac
done

echo
echo "skipped: $skipped (not advertised by $tl/$dev); time: $(( $(date +%s) - start )) s"
summary
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
