#!/usr/bin/env bash
# Inside the benchmark VM, after bench-vm-guest.sh's UCX table: perftest
# over tb's RDMA devices (tbrdma_ib.ko, loop0 to loop1, through the
# provider of the build tree) next to perftest over soft-RoCE (rxe0, to
# itself), with the ratios. Each value the median of TB_BENCH_REPEAT runs,
# the two taken in turn; latency is perftest's typical (median) one, in
# us; bandwidth its average, in MB/s.
#
#   bench-verbs-guest.sh TOP_SRCDIR
# Prints "bench-csv: metric,transport,value" lines as bench-vm-guest.sh
# does (transports tb/loop0 and rxe/rxe0); exit 1 if tb's runs failed.
set -uo pipefail

top=${1:?usage: bench-verbs-guest.sh TOP_SRCDIR}
repeat=${TB_BENCH_REPEAT:-3}
scale=${TB_BENCH_SCALE:-1}
timeout=${TB_BENCH_TIMEOUT:-120}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
iters() { awk -v n="$1" -v s="$scale" 'BEGIN { n = int(n * s); print (n < 10 ? 10 : n) }'; }

# The GID index of rxe0's IPv4 address (bench-vm-guest.sh gave dummy0
# 10.77.0.1): RoCE v2 over UDP/IPv4, as soft-RoCE is used.
rxe_gid=
for g in /sys/class/infiniband/rxe0/ports/1/gids/*; do
    [ "$(cat "$g" 2>/dev/null)" = 0000:0000:0000:0000:0000:ffff:0a4d:0001 ] && rxe_gid=${g##*/} && break
done
# column|server device|client device|GID index|environment
columns=(
    "tb/loop0|tbrdma_loop1|tbrdma_loop0|0|RDMAV_DRIVERS=$top/build/src/verbs/libtbrdma"
    "rxe/rxe0|rxe0|rxe0|${rxe_gid:-1}|"
)
# key|label|unit|tool|size|iterations|column of the result row
metrics=(
    "ib_write_lat_8|ib_write_lat 8 B|us|ib_write_lat|8|10000|5"
    "ib_send_lat_8|ib_send_lat 8 B|us|ib_send_lat|8|10000|5"
    "ib_read_lat_8|ib_read_lat 8 B|us|ib_read_lat|8|10000|5"
    "ib_write_bw_64K|ib_write_bw 64 KiB|MB/s|ib_write_bw|65536|2000|4"
    "ib_write_bw_1M|ib_write_bw 1 MiB|MB/s|ib_write_bw|1048576|200|4"
)

# run COLUMN METRIC: one server/client pair; prints the value or fails.
run() {
    local sdev cdev gid env tool size n field port=$((18900 + RANDOM % 1000))
    IFS='|' read -r _ sdev cdev gid env <<< "$1"
    IFS='|' read -r _ _ _ tool size n field <<< "$2"
    local args=(-x "$gid" -p "$port" -s "$size" -n "$(iters "$n")")
    # shellcheck disable=SC2086 # env is NAME=VALUE or nothing
    env $env taskset -c 1 timeout "$timeout" "$tool" -d "$sdev" "${args[@]}" > "$work/server" 2>&1 &
    local server=$!
    sleep 1
    # shellcheck disable=SC2086
    env $env taskset -c 0 timeout "$timeout" "$tool" -d "$cdev" "${args[@]}" 127.0.0.1 > "$work/client" 2>&1
    local rc=$?
    wait $server || rc=1
    [ $rc -eq 0 ] || { sed 's/^/    /' "$work/client" | tail -n 3 >&2; return 1; }
    awk -v s="$size" -v f="$field" '$1 == s && $2 ~ /^[0-9]+$/ { print $f; exit }' "$work/client"
}

declare -A runs val
status=0
echo
echo "perftest over tb's RDMA devices and over soft-RoCE (RC, one VM; the ratios alone mean something)"
for m in "${metrics[@]}"; do
    IFS='|' read -r key _ <<< "$m"
    for _ in $(seq 1 "$repeat"); do
        for c in "${columns[@]}"; do
            col=${c%%|*}
            [ "${val[$key,$col]:-}" = FAIL ] && continue
            if v=$(run "$c" "$m") && [ -n "$v" ]; then
                runs[$key,$col]="${runs[$key,$col]:-} $v"
                echo "  $col $key: $v"
            else
                val[$key,$col]=FAIL
                echo "  $col $key: FAILED"
                [ "$col" = tb/loop0 ] && status=1
            fi
        done
    done
    for c in "${columns[@]}"; do
        col=${c%%|*}
        [ "${val[$key,$col]:-}" = FAIL ] || [ -z "${runs[$key,$col]:-}" ] && continue
        # shellcheck disable=SC2086 # the runs are a list of words
        val[$key,$col]=$(printf '%s\n' ${runs[$key,$col]} | sort -g |
                         awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
    done
done

echo
printf '%-20s %-5s %12s %12s %14s\n' metric unit tb/loop0 rxe/rxe0 "tb / rxe"
for m in "${metrics[@]}"; do
    IFS='|' read -r key label unit _ <<< "$m"
    t=${val[$key,tb/loop0]:--} r=${val[$key,rxe/rxe0]:--} ratio=-
    if [[ $t =~ ^[0-9] && $r =~ ^[0-9] ]]; then
        ratio=$(awk -v t="$t" -v r="$r" 'BEGIN { if (r > 0) printf "%.2f", t / r; else print "-" }')
    fi
    printf '%-20s %-5s %12s %12s %14s\n' "$label" "$unit" "$t" "$r" "$ratio"
done
echo "latency: perftest's typical (us), > 1 means tb slower; bandwidth: average MB/s, > 1 means tb faster;"
echo "each the median of $repeat runs, the devices taken in turn; server on vCPU 1, client on vCPU 0"
for m in "${metrics[@]}"; do
    IFS='|' read -r key _ <<< "$m"
    for c in "${columns[@]}"; do
        col=${c%%|*}
        [[ ${val[$key,$col]:-} =~ ^[0-9] ]] && echo "bench-csv: $key,$col,${val[$key,$col]}"
    done
done
exit $status
