#!/usr/bin/env bash
# What UCP does with tb when it chooses transports itself (UCX_TLS=all, as
# Open MPI and UCC users run it), read from UCX's own lane log:
#   - tb loaded, no device asked for, no kernel module on this host: tb
#     offers no device, and every lane of ucx_perftest and of an MPI job is
#     shared memory;
#   - the software device asked for: ucx_info -d shows the figures tb
#     reports (its link's rate less frame headers, shared by the processes,
#     its latency and posting cost), and UCP gives tb the lanes those earn:
#     not the active-message lane (shared memory is faster), but device
#     atomics and a second rendezvous rail;
#   - the same device reported much faster (UCX_TB_BW/LATENCY/OVERHEAD):
#     tb takes the active-message lane too, so the choice follows the
#     figures.
# Ends with "ucx-lanes: N passed, M failed".
#
# Environment: TB_UCT_LIB (the module), TB_MPI_TEST (tb_mpi_test binary),
# MPIRUN, TB_MPICXX (configure's; "no" skips), TB_LANES_TIMEOUT (seconds per
# run, default 300).
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=${TB_TOP_SRCDIR:-$(cd "$here/../.." && pwd)}
# shellcheck source=../perf/perftest-lib.sh
. "$top/test/perf/perftest-lib.sh"
PT_TBRUN=$top/contrib/tbrun
PT_TIMEOUT=${TB_LANES_TIMEOUT:-300}
PT_WORKDIR=$PWD/lanes-out
rm -rf "$PT_WORKDIR"
mkdir -p "$PT_WORKDIR"
trap pt_cleanup EXIT
mpi_test=${TB_MPI_TEST:-$PWD/../mpi/tb_mpi_test}
mpirun=${MPIRUN:-mpirun}
if [ "${TB_MPICXX:-}" = no ] || [ "$mpirun" = no ] || ! command -v ucx_perftest > /dev/null; then
    echo "ucx-lanes: SKIP: needs mpicxx, mpirun and ucx_perftest (apt-get install libopenmpi-dev openmpi-bin ucx-utils)"
    exit 77
fi
[ "$(id -u)" = 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export UCX_TLS=all UCX_TB_SOFT_FABRIC=lanes$$ UCX_WARN_UNUSED_ENV_VARS=n

pass=0 fail=0
check() {  # check NAME STATUS [DETAILS]
    if [ "$2" -eq 0 ]; then
        echo "PASS: $1"; pass=$((pass + 1))
    else
        echo "FAIL: $1"; [ -n "${3:-}" ] && printf '%s\n' "$3" | sed 's/^/    /'
        fail=$((fail + 1))
    fi
}

# The lanes UCP logged for each endpoint configuration, one line each:
#   ep_cfg[0]: tag(sysv/memory cma/memory tb/soft0); rma(...); amo(...)
lanes() { grep -hoE 'ep_cfg\[[0-9]+\]: .*' "$@" | sort -u; }

# A pair of ucx_perftest processes (tag_bw, eager and rendezvous sizes).
perftest_lanes() {  # ENV...
    pt_run_pair "$* UCX_LOG_LEVEL=info" -t tag_bw -s 1048576 -n 50 ||
        { echo "ucx_perftest failed: $PT_WHY"; return 1; }
    lanes "$PT_CLIENT_OUT" "$PT_SERVER_OUT"
}

# Two MPI ranks (pml and osc ucx: tag, RMA and atomics) that verify their data.
mpi_lanes() {  # NAME ENV...
    local out=$PT_WORKDIR/mpi-$1.out
    shift
    timeout -k 10 "$PT_TIMEOUT" env "$@" UCX_LOG_LEVEL=info "$PT_TBRUN" "$mpirun" -np 2 \
        --mca pml ucx --mca osc ucx "$mpi_test" --max-size 1m --flush-gets > "$out" 2>&1 ||
        { echo "mpirun failed (see $out):"; tail -n 5 "$out"; return 1; }
    lanes "$out"
}

# -- tb loaded, no device asked for, no module here ------------------------
if [ -e /dev/tbrdma ]; then
    echo "run-ucx-lanes: /dev/tbrdma exists here: the checks without a device do not apply"
else
    out=$(UCX_TB_DEVICE=auto "$PT_TBRUN" ucx_info -d 2>&1)
    grep -q "Component: tb" <<<"$out" && ! grep -q "Transport: tb" <<<"$out"
    check "UCX_TB_DEVICE=auto without the module: tb is loaded and offers no device" $? \
        "$(grep -A4 'Component: tb' <<<"$out")"

    out=$(perftest_lanes UCX_TB_DEVICE=auto)
    rc=$?
    echo "$out"
    [ $rc -eq 0 ] && grep -qE 'sysv/|posix/|cma/' <<<"$out" && ! grep -q 'tb/' <<<"$out"
    check "ucx_perftest, UCX_TLS=all, no tb device: every lane is shared memory" $? "$out"

    out=$(mpi_lanes no-device UCX_TB_DEVICE=auto)
    rc=$?
    echo "$out"
    [ $rc -eq 0 ] && grep -qE 'sysv/|posix/|cma/' <<<"$out" && ! grep -q 'tb/' <<<"$out"
    check "MPI, UCX_TLS=all, no tb device: every lane is shared memory" $? "$out"
fi

# -- the software device asked for ------------------------------------------
export UCX_TB_DEVICE=soft
out=$("$PT_TBRUN" ucx_info -d 2>&1)
figures=$(grep -A10 "Device: $UCX_TB_SOFT_FABRIC" <<<"$out" | grep -E 'bandwidth|latency|overhead')
echo "$figures"
# 40 Gb/s, TBRDMA_SEND_MAX data bytes in every TBRDMA_FRAME_MAX-byte
# frame, in MB (2^20 B) per second per process; 1 us nominal latency; 100
# ns to post.
abi_const() { sed -nE "s/^#define $1 ([0-9]+)u$/\1/p" "$top/include/uapi/rdma/tbrdma_abi.h"; }
bw=$(awk -v d="$(abi_const TBRDMA_SEND_MAX)" -v f="$(abi_const TBRDMA_FRAME_MAX)" \
    'BEGIN { printf "%.2f", 40e9 / 8 * d / f / 1048576 }')
grep -q "bandwidth: $bw/ppn + 0.00 MB/sec" <<<"$figures" &&
    grep -q "latency: 1000 nsec" <<<"$figures" && grep -q "overhead: 100 nsec" <<<"$figures"
check "ucx_info -d shows what tb reports: $bw MB/s shared per process, 1000 ns, 100 ns" $? "$out"

out=$(perftest_lanes)
rc=$?
echo "$out"
# tag(am lane, then rendezvous rails): shared memory first, tb a rail.
[ $rc -eq 0 ] && grep -qE 'tag\((sysv|posix)/[^ )]* [^)]*tb/' <<<"$out"
check "ucx_perftest, UCX_TLS=all, software device: shared memory carries the messages, tb is a rendezvous rail" $? "$out"

out=$(mpi_lanes soft)
rc=$?
echo "$out"
[ $rc -eq 0 ] && grep -qE 'tag\((sysv|posix)/' <<<"$out" && grep -qE 'amo\(tb/' <<<"$out"
check "MPI, UCX_TLS=all, software device: shared memory for messages, tb for device atomics" $? "$out"

# -- the same device reported far faster than shared memory -----------------
fast="UCX_TB_BW=100GBs UCX_TB_LATENCY=10ns UCX_TB_OVERHEAD=1ns"
out=$(perftest_lanes $fast)
rc=$?
echo "$out"
[ $rc -eq 0 ] && grep -qE 'tag\(tb/' <<<"$out"
check "ucx_perftest with tb reported faster ($fast): tb carries the messages" $? "$out"

echo "ucx-lanes: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
