#!/usr/bin/env bash
# Runs inside the VM (test/vm/run-ucx-kernel.sh boots it with tbrdma.ko
# loop=2): the device-library and UCT suites, ucx_perftest over loop0,
# multi-rail over loop0 + loop1, and Open MPI at 2 and 4 ranks, all through
# the kernel device. Each suite prints its own "<name>: N passed, M failed".
set -uo pipefail

top=$1 build=$2
export TB_DEVICE=kernel TB_TEST_DEVICE=kernel UCX_TB_DEVICE=kernel
export TB_TOP_SRCDIR=$top TB_UCT_LIB=$build/src/uct/tb/.libs/libuct_tb.so.0
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# TCG is tens of times slower than the host: generous limits, fewer rounds.
export TB_UCT_TIMEOUT=1500 TB_PERF_TIMEOUT=300 TB_PERF_ITERS=200 TB_MPI_TIMEOUT=1200
status=0
step() {  # step NAME DIR CMD...
    local name=$1 dir=$2
    shift 2
    echo "== $name"
    (cd "$dir" && "$@") || { echo "== $name: FAILED"; status=1; }
}

[ -c /dev/tbrdma ] || { echo "no /dev/tbrdma: tbrdma.ko is not loaded"; exit 1; }
step "device library (unit) on the kernel device" "$build/test/unit" "$top/test/unit/run-unit.sh"
step "UCT API suite on loop0" "$build/test/uct" "$top/test/uct/run-uct.sh"
step "ucx_perftest on loop0" "$build/test/perf" env TB_PERF_DEV=loop0 "$top/test/perf/run-perftest.sh"

echo "== multi-rail: UCP rendezvous striped over loop0 and loop1"
mr=$(mktemp -d)
(
    PT_TBRUN=$top/contrib/tbrun PT_WORKDIR=$mr PT_TIMEOUT=300
    # shellcheck source=../perf/perftest-lib.sh
    . "$top/test/perf/perftest-lib.sh"
    trap pt_cleanup EXIT
    pt_run_pair "UCX_TLS=tb,self UCX_NET_DEVICES=loop0,loop1 UCX_MAX_RNDV_RAILS=2 UCX_LOG_LEVEL=info" \
        -t tag_bw -s 4194304 -n 20 || { echo "multi-rail: tag_bw failed: $PT_WHY"; exit 1; }
    # UCP names the lanes of each endpoint configuration: both links must carry rendezvous.
    lanes=$(grep -hE 'ep_cfg\[[0-9]+\]:' "$PT_CLIENT_OUT" "$PT_SERVER_OUT" | grep -E 'rma_bw|rndv|tag' | head -4)
    echo "$lanes"
    grep -q 'tb/loop0' <<<"$lanes" && grep -q 'tb/loop1' <<<"$lanes" ||
        { echo "multi-rail: UCP did not use both loop0 and loop1"; exit 1; }
    IFS=, read -r _ _ _ _ _ bw _ _ <<<"$PT_CSV"
    echo "multi-rail: tag_bw 4 MiB over loop0+loop1: $bw MB/s"
) && echo "multirail: 1 passed, 0 failed" || { echo "multirail: 0 passed, 1 failed"; status=1; }
rm -rf "$mr"

step "Open MPI over tb (kernel loop links)" "$build/test/mpi" \
    env TB_MPI_ARGS="--max-size 4194304" "$top/test/mpi/run-mpi.sh"
exit $status
