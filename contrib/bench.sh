#!/usr/bin/env bash
# bench.sh -- compare tb with UCX's own transports on this machine, in one
# run: latency, bandwidth and message rate from ucx_perftest pairs (server and
# client on this machine, through contrib/tbrun), as one table, then the
# ratios of tb to each other transport. `make bench` runs it. First, the
# engine's own cost per operation against its budget (tb-engine-bench).
#
# The tb numbers come from the software link (soft0): a shared-memory
# emulation of the Thunderbolt DMA rings. They measure tb's software path
# against UCX's; they are not Thunderbolt/USB4 hardware numbers.
#
# Environment:
#   TB_BENCH_TRANSPORTS  "tl:dev ..." (default "tb:soft0 posix:memory cma:memory tcp:lo")
#   TB_BENCH_REF         transport the ratios are taken for (default tb)
#   TB_BENCH_SCALE       iteration multiplier (default 1; 0.1 for a quick look)
#   TB_BENCH_REPEAT      runs per measurement, the median is shown (default 3)
#   TB_BENCH_TIMEOUT     seconds allowed per pair (default 60)
#   TB_BENCH_CSV         also write "metric,transport,value" lines to this file
#   TB_BENCH_KEEP        "yes": keep the ucx_perftest outputs (path printed)
#   TB_ENGINE_BENCH      the engine-cost program (default: build/src/tools/tb-engine-bench)
#   TB_BENCH_LOSS        fault rate of the lossy tb rows (default 0.01: 1% of
#                        frames lost, 1% duplicated, 1% reordered; 0: none)
#   TB_UCT_LIB           passed on to contrib/tbrun
#
# Exit status: 0 if every measurement of the reference transport worked.
set -uo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source-path=SCRIPTDIR source=../test/perf/perftest-lib.sh
. "$top/test/perf/perftest-lib.sh"

transports=${TB_BENCH_TRANSPORTS:-tb:soft0 posix:memory cma:memory tcp:lo}
ref=${TB_BENCH_REF:-tb}
scale=${TB_BENCH_SCALE:-1}
repeat=${TB_BENCH_REPEAT:-3}
csv=${TB_BENCH_CSV:-}

PT_TBRUN=$top/contrib/tbrun
PT_TIMEOUT=${TB_BENCH_TIMEOUT:-60}
# tb's software device: UCX uses it only when asked (auto is the kernel's).
export UCX_TB_DEVICE=${UCX_TB_DEVICE:-soft}
PT_WORKDIR=$(mktemp -d "${TMPDIR:-/tmp}/tb-bench.XXXXXX")
finish()
{
    pt_cleanup
    if [ "${TB_BENCH_KEEP:-no}" = yes ]; then
        echo "bench: ucx_perftest outputs kept in $PT_WORKDIR"
    else
        rm -rf "$PT_WORKDIR"
    fi
}
trap finish EXIT

command -v ucx_perftest > /dev/null || { echo "bench: ucx_perftest not found (apt-get install ucx-utils)"; exit 1; }
[ -n "$csv" ] && : > "$csv"
ref_fail=0

iters() { awk -v n="$1" -v s="$scale" 'BEGIN { n = int(n * s); print (n < 10 ? 10 : n) }'; }

# ---------------------------------------------------------------------------
# Metrics: key|label|unit
metrics=(
    "uct_am_lat|UCT am_lat 8 B|us"
    "uct_put_lat|UCT put_lat 8 B|us"
    "ucp_tag_lat|UCP tag_lat 8 B|us"
    "uct_put_bw_64k|UCT put_bw 64 KiB|MB/s"
    "uct_put_bw_1m|UCT put_bw 1 MiB|MB/s"
    "ucp_tag_bw_64k|UCP tag_bw 64 KiB|MB/s"
    "ucp_tag_bw_1m|UCP tag_bw 1 MiB|MB/s"
    "uct_am_mr|UCT am_bw 8 B|msg/s"
    "uct_put_mr|UCT put_bw 8 B|msg/s"
    "ucp_tag_mr|UCP tag_bw 8 B|msg/s"
)

# First layout of the list whose capability (<op>_<layout>) the device
# advertises for messages of SIZE bytes; empty if none.
pick_layout()  # CAPS OP SIZE LAYOUT...
{
    local caps=$1 op=$2 size=$3 l limit
    shift 3
    for l in "$@"; do
        limit=$(pt_cap_limit "$caps" "${op}_$l")
        if [ -n "$limit" ] && [ "$limit" -ge "$size" ]; then
            echo "$l"
            return
        fi
    done
}

# measure KEY TL DEV CAPS: prints "VALUE NOTE", "n/a WHY" or "fail WHY".
measure()
{
    local key=$1 tl=$2 dev=$3 caps=$4 layout field ucp_env
    local -a args
    case $key in
        uct_am_lat)
            layout=$(pick_layout "$caps" am 8 short)
            args=(-t am_lat -x "$tl" -d "$dev" -D short -s 8 -n "$(iters 20000)")
            field=2 ;;
        uct_put_lat|uct_put_lat_avg)
            layout=$(pick_layout "$caps" put 8 short bcopy zcopy)
            args=(-t put_lat -x "$tl" -d "$dev" -D "$layout" -s 8 -n "$(iters 20000)")
            # The median, or the mean over all round trips (which is
            # where recovery from loss shows).
            field=2
            [ "$key" = uct_put_lat_avg ] && field=4 ;;
        uct_put_bw_64k|uct_put_bw_1m)
            local size=65536 n=4000
            [ "$key" = uct_put_bw_1m ] && size=1048576 n=400
            layout=$(pick_layout "$caps" put "$size" zcopy bcopy)
            args=(-t put_bw -x "$tl" -d "$dev" -D "$layout" -s "$size" -n "$(iters $n)")
            field=6 ;;
        uct_am_mr)
            layout=$(pick_layout "$caps" am 8 short)
            args=(-t am_bw -x "$tl" -d "$dev" -D short -s 8 -n "$(iters 200000)")
            field=8 ;;
        uct_put_mr)
            layout=$(pick_layout "$caps" put 8 short bcopy zcopy)
            args=(-t put_bw -x "$tl" -d "$dev" -D "$layout" -s 8 -n "$(iters 200000)")
            field=8 ;;
        ucp_*)
            # UCP needs active messages on the transport (cma has none).
            layout=$(pick_layout "$caps" am 64 bcopy short)
            [ -n "$layout" ] && layout=ucp
            case $key in
                ucp_tag_lat)    args=(-t tag_lat -s 8 -n "$(iters 20000)"); field=2 ;;
                ucp_tag_bw_64k) args=(-t tag_bw -s 65536 -n "$(iters 4000)"); field=6 ;;
                ucp_tag_bw_1m)  args=(-t tag_bw -s 1048576 -n "$(iters 400)"); field=6 ;;
                ucp_tag_mr)     args=(-t tag_bw -s 8 -n "$(iters 200000)"); field=8 ;;
            esac ;;
    esac
    if [ -z "$layout" ]; then
        echo "n/a not supported by $tl/$dev"
        return
    fi
    args+=(-w "$(( ${args[-1]} / 10 ))")
    ucp_env=
    [ "$layout" = ucp ] && ucp_env=$(pt_ucp_env "$tl,self" "$dev" "$caps")
    # The median of $repeat runs; one failed run is retried (a benchmark
    # should survive a stray hiccup; the tests never retry).
    local -a vals=()
    local retried=0
    while [ ${#vals[@]} -lt "$repeat" ]; do
        if ! pt_run_pair "$ucp_env ${BENCH_FAULTS:-}" "${args[@]}"; then
            if [ "$retried" = 1 ]; then
                echo "fail $PT_WHY"
                return
            fi
            echo "  ($key on $tl/$dev failed once: $PT_WHY; retrying)" >&2
            retried=1
            continue
        fi
        if [ "$layout" = ucp ] &&
           ! pt_lane_on "$PT_CLIENT_OUT" "$tl"; then
            echo "fail UCP did not put a lane on $tl"
            return
        fi
        vals+=("$(pt_field "$field")")
    done
    echo "$(printf '%s\n' "${vals[@]}" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }') $layout"
}

# ---------------------------------------------------------------------------
# Machine and set-up

load=$(cut -d' ' -f1 /proc/loadavg)
cpus=$(nproc)
echo "tb benchmark: $(date -u '+%Y-%m-%d %H:%M UTC') on $(hostname), $cpus CPUs:" \
     "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
echo "UCX $(ucx_info -v | sed -n 's/^# Version //p'), library: $("$PT_TBRUN" --lib 2>&1 | head -n 1)"
echo "load average at start: $load"
if awk -v l="$load" -v c="$cpus" 'BEGIN { exit !(l > c / 2) }'; then
    echo "WARNING: the machine is busy; server and client each need a CPU, numbers will be off"
fi
echo

# The engine alone: two engines in one thread, no processes or devices.
engine_bench=${TB_ENGINE_BENCH:-$top/build/src/tools/tb-engine-bench}
if [ -x "$engine_bench" ]; then
    "$engine_bench" ${csv:+--csv "$csv"} || ref_fail=1
else
    echo "engine cost: $engine_bench not built (make -C build)"
fi
echo
echo "NOTE: tb runs here over its software link (soft0), a shared-memory emulation"
echo "      of the Thunderbolt/USB4 DMA rings inside each process. These numbers"
echo "      compare software paths on one machine; they are NOT hardware numbers."
echo

cols=()
declare -A value note caps_of
for td in $transports; do
    tl=${td%%:*} dev=${td#*:}
    caps=$(pt_caps "$tl" "$dev")
    if [ -z "$caps" ]; then
        why="not listed by ucx_info -d"
        [ "$tl" = tb ] && ! "$PT_TBRUN" --lib > /dev/null 2>&1 && why="libuct_tb.so.0 not built"
        echo "skipping $tl/$dev: $why"
        [ "$tl" = "$ref" ] && ref_fail=1
        continue
    fi
    cols+=("$tl/$dev")
    caps_of[$tl/$dev]=$caps
    echo -n "measuring $tl/$dev:"
    for m in "${metrics[@]}"; do
        key=${m%%|*}
        read -r v rest <<< "$(measure "$key" "$tl" "$dev" "$caps")"
        value[$key,$tl/$dev]=$v
        note[$key,$tl/$dev]=$rest
        case $v in
            fail) echo; echo "  $key: FAILED: $rest"; [ "$tl" = "$ref" ] && ref_fail=1 ;;
            n/a) echo -n " -" ;;
            *) echo -n " ."
               [ -n "$csv" ] && echo "$key,$tl/$dev,$v" >> "$csv" ;;
        esac
    done
    echo
done
[ ${#cols[@]} -gt 0 ] || { echo "bench: nothing could be measured"; exit 1; }

# tb on a lossy software link: the soft cable's fault model each way, the
# lossless figures beside them (the link resends what a selective ack shows
# missing, and probes after a timeout that follows the round trip:
# docs/engine.md).
loss=${TB_BENCH_LOSS:-0.01}
declare -A faulty
loss_keys=(uct_put_lat_avg uct_put_bw_1m)
if [ -n "${caps_of[tb/soft0]:-}" ] && [ "$loss" != 0 ]; then
    echo -n "measuring tb/soft0 without and with $loss loss, duplication and reordering:"
    for key in "${loss_keys[@]}"; do
        for faults in 0 "$loss"; do
            read -r v rest <<< "$(BENCH_FAULTS="UCX_TB_SOFT_LOSS=$faults UCX_TB_SOFT_DUP=$faults UCX_TB_SOFT_REORDER=$faults" \
                                  measure "$key" tb soft0 "${caps_of[tb/soft0]}")"
            faulty[$key,$faults]=$v
            case $v in
                fail) echo; echo "  $key with faults $faults: FAILED: $rest"; ref_fail=1 ;;
                *) echo -n " ."
                   [ -n "$csv" ] && echo "${key}_faults_$faults,tb/soft0,$v" >> "$csv" ;;
            esac
        done
    done
    echo
fi

# ---------------------------------------------------------------------------
# Tables

fmt()  # VALUE UNIT
{
    case $1 in
        n/a|'') echo "-" ;;
        fail) echo "FAIL" ;;
        *) case $2 in
               us) awk -v v="$1" 'BEGIN { printf "%.2f", v }' ;;
               MB/s) awk -v v="$1" 'BEGIN { printf "%.0f", v }' ;;
               msg/s) awk -v v="$1" 'BEGIN { printf "%.0f", v }' ;;
           esac ;;
    esac
}

# Layout letter after UCT numbers: s(hort), b(copy), z(copy).
mark()
{
    case $1 in short) echo s ;; bcopy) echo b ;; zcopy) echo z ;; *) echo " " ;; esac
}

echo
printf '%-22s %-6s' "metric" "unit"
for c in "${cols[@]}"; do printf ' %15s' "$c"; done
echo
for m in "${metrics[@]}"; do
    IFS='|' read -r key label unit <<< "$m"
    printf '%-22s %-6s' "$label" "$unit"
    for c in "${cols[@]}"; do
        printf ' %14s%s' "$(fmt "${value[$key,$c]:-}" "$unit")" "$(mark "${note[$key,$c]:-}")"
    done
    echo
done
echo "each value is the median of $repeat runs"
echo "latency: one way (round trip / 2), median of the last 2048 round trips"
echo "bandwidth: overall MB/s (1 MB = 2^20 bytes); rate: overall messages/s"
echo "UCT layouts: s = short, b = bcopy, z = zcopy; - = not supported by the transport"
echo "(cma has no active messages: no am_bw, and UCP cannot run on cma alone)."

ref_col=
for c in "${cols[@]}"; do [ "${c%%/*}" = "$ref" ] && ref_col=$c; done
if [ -n "$ref_col" ] && [ ${#cols[@]} -gt 1 ]; then
    echo
    echo "ratios $ref_col / other (latency: above 1 means $ref slower; bandwidth and rate: above 1 means $ref faster)"
    printf '%-22s %-6s' "metric" ""
    for c in "${cols[@]}"; do [ "$c" = "$ref_col" ] || printf ' %15s' "/ $c"; done
    echo
    for m in "${metrics[@]}"; do
        IFS='|' read -r key label unit <<< "$m"
        printf '%-22s %-6s' "$label" ""
        r=${value[$key,$ref_col]:-}
        for c in "${cols[@]}"; do
            [ "$c" = "$ref_col" ] && continue
            o=${value[$key,$c]:-}
            if [[ $r =~ ^[0-9.e+-]+$ && $o =~ ^[0-9.e+-]+$ ]] && awk -v o="$o" 'BEGIN { exit !(o > 0) }'; then
                printf ' %15s' "$(awk -v r="$r" -v o="$o" 'BEGIN { printf "%.2f", r / o }')"
            else
                printf ' %15s' "-"
            fi
        done
        echo
    done
fi

if [ ${#faulty[@]} -gt 0 ]; then
    echo
    printf '%-22s %-13s %12s %12s %8s\n' "tb/soft0 under faults" unit lossless "$loss faults" ratio
    for key in "${loss_keys[@]}"; do
        label="UCT put_lat 8 B, mean" unit=us
        [ "$key" = uct_put_bw_1m ] && label="UCT put_bw 1 MiB" unit=MB/s
        a=${faulty[$key,0]} b=${faulty[$key,$loss]}
        r=-
        if [[ $a =~ ^[0-9.]+$ && $b =~ ^[0-9.]+$ ]]; then
            r=$(awk -v a="$a" -v b="$b" 'BEGIN { if (a > 0) printf "%.2f", b / a; else print "-" }')
        fi
        printf '%-22s %-13s %12s %12s %8s\n' "$label" "$unit" "$a" "$b" "$r"
    done
    echo "(ratio: lossy / lossless; goal: latency <= 2, bandwidth >= 0.8)"
fi

echo
echo "NOTE: tb numbers are from the software link (shared-memory emulation), not hardware."
[ "$ref_fail" -eq 0 ]
