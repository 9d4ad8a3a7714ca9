#!/usr/bin/env bash
# The main job over the software link, on a built tree (quickstart.sh runs
# it after the set-up): the device library's own demo, ucx_perftest over tb
# (UCT put latency, UCP tag latency and bandwidth) between two processes,
# and an MPI job over tb (pml and osc ucx) that verifies its data.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
build=${TB_BUILD:-$top/build}
export TB_UCT_LIB=${TB_UCT_LIB:-$build/src/uct/tb/.libs/libuct_tb.so.0}
# Its own fabric, so this never meets another run on the same machine.
export UCX_TB_SOFT_FABRIC=${UCX_TB_SOFT_FABRIC:-main$$}
export TB_SOFT_FABRIC=$UCX_TB_SOFT_FABRIC
# UCX uses the software link only when asked (auto means the kernel module).
export UCX_TB_DEVICE=${UCX_TB_DEVICE:-soft}
# Open MPI refuses root unless told; CI and quickstart run as root.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

PT_TBRUN=$top/contrib/tbrun
PT_WORKDIR=$(mktemp -d)
PT_TIMEOUT=120
# shellcheck source=../test/perf/perftest-lib.sh
. "$top/test/perf/perftest-lib.sh"
trap 'pt_cleanup; rm -rf "$PT_WORKDIR"' EXIT

echo "== 1. tb-demo: two processes, put/get/atomics/send over the software link"
"$build/src/tools/tb-demo"

echo
echo "== 2. ucx_perftest over tb ($UCX_TB_SOFT_FABRIC), two processes"
perf() {  # perf LABEL ENV ARGS...
    local label=$1 env=$2
    shift 2
    if ! pt_run_pair "$env" "$@"; then
        echo "$label: FAILED: $PT_WHY"
        return 1
    fi
    IFS=, read -r _ lat50 _ _ _ bw _ mr <<<"$PT_CSV"
    printf '%-34s latency %8s us   bandwidth %9s MB/s   rate %10s msg/s\n' \
        "$label" "$lat50" "$bw" "$mr"
}
perf "UCT put_lat 8 B (tb/$UCX_TB_SOFT_FABRIC)" "" -t put_lat -x tb -d "$UCX_TB_SOFT_FABRIC" -s 8 -n 20000
perf "UCP tag_lat 8 B (UCX_TLS=tb,self)" "UCX_TLS=tb,self" -t tag_lat -s 8 -n 20000
perf "UCP tag_bw 1 MiB (UCX_TLS=tb,self)" "UCX_TLS=tb,self" -t tag_bw -s 1048576 -n 500

echo
echo "== 3. mpirun -np 2 over tb: point-to-point, collectives, one-sided, data verified"
make -s -C "$build/test/mpi" tb_mpi_test
"$top/contrib/tbrun" mpirun --oversubscribe -np 2 --mca pml ucx --mca osc ucx \
    -x UCX_TLS=tb,self -x UCX_TB_SOFT_FABRIC "$build/test/mpi/tb_mpi_test" --max-size 8388608
