#!/usr/bin/env bash
# Runs tb_mpi_test under mpirun with Open MPI's pml ucx and osc ucx, through
# contrib/tbrun, for 2 and 4 ranks, and checks from UCX's own log that the
# requested transport carried the traffic. Ends with one summary line
# "<name>: N passed, M failed" (checks summed over all runs; a run that crashes,
# times out or used the wrong transport counts as one failure).
#
# Environment:
#   TB_MPI_TLS      UCX_TLS of the ranks (default "tb,self")
#   TB_MPI_EXPECT   transport that must appear in the ranks' UCX lanes
#                   (default: the first entry of TB_MPI_TLS other than self)
#   TB_MPI_NP       rank counts to run (default "2 4")
#   TB_MPI_ARGS     extra tb_mpi_test arguments, e.g. "--max-size 1m"
#   TB_MPI_TIMEOUT  seconds allowed per mpirun (default 600)
#   TB_MPI_TEST     the tb_mpi_test binary (default ./tb_mpi_test, else
#                   build/test/mpi/tb_mpi_test of the source tree)
#   MPIRUN          mpirun to use (default mpirun; "no": configure found
#                   none, skip)
#   TB_MPICXX       configure's mpicxx ("no": tb_mpi_test not built, skip)
#   TB_UCT_LIB      passed on to contrib/tbrun ("none": no tb library)
#   TB_EXPECT_UCT   "yes": a missing libuct_tb.so.0 is a failure (set by make
#                   when the transport is built); otherwise the runs that
#                   need tb are skipped (exit status 77)
#   TB_MPI_NAME     name of the closing line (default "mpi"; make uses
#                   "mpi-tcp" where the transport is not built and the
#                   suite runs over UCX's tcp through tbrun)
#
# Full mpirun output of each run is kept in ./run-mpi-np<N>.out.
#
# How the transport check works: with UCX_LOG_LEVEL=info every UCP worker
# logs one line per endpoint configuration, naming transport/device of each
# lane, e.g.
#   [..] [host:pid :0]   ucp_worker.c:1763 UCX  INFO    ep_cfg[1]: tag(tcp/lo); rma(tcp/lo) ...
#   [..] [host:pid:0]    ucp_worker.c:1903 UCX  INFO    ucp_context_0 intra-node cfg#1 tag(tcp/lo)
# (UCX 1.13, and 1.18 and later). Each rank must log at least one such line
# with "<expected transport>/".
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=${TB_TOP_SRCDIR:-$(cd "$here/../.." && pwd)}
tbrun=$top/contrib/tbrun

tls=${TB_MPI_TLS:-tb,self}
expect=${TB_MPI_EXPECT:-}
if [ -z "$expect" ]; then
    IFS=, read -r -a tl_list <<< "$tls"
    for t in "${tl_list[@]}"; do
        case $t in self|'') ;; *) expect=$t; break ;; esac
    done
fi
nps=${TB_MPI_NP:-2 4}
args=${TB_MPI_ARGS:-}
limit=${TB_MPI_TIMEOUT:-600}
mpirun=${MPIRUN:-mpirun}

name=${TB_MPI_NAME:-mpi}
summary() { echo "$name: $1 passed, $2 failed"; }

if [ "${TB_MPICXX:-}" = no ] || [ "$mpirun" = no ]; then
    echo "run-mpi: SKIP: configure found no $([ "$mpirun" = no ] && echo mpirun || echo mpicxx) (apt-get install libopenmpi-dev openmpi-bin)"
    exit 77
fi
test_bin=${TB_MPI_TEST:-}
if [ -z "$test_bin" ]; then
    for c in ./tb_mpi_test "$top/build/test/mpi/tb_mpi_test"; do
        [ -x "$c" ] && { test_bin=$c; break; }
    done
fi
if [ -z "$test_bin" ] || [ ! -x "$test_bin" ]; then
    echo "run-mpi: tb_mpi_test not found (build it: make -C build check, or make -C build/test/mpi tb_mpi_test)"
    summary 0 1
    exit 1
fi
command -v "$mpirun" > /dev/null || { echo "run-mpi: $mpirun not found (apt-get install openmpi-bin)"; summary 0 1; exit 1; }

# The tb library: without it, runs over tb cannot work.
if [[ ",$tls," == *,tb,* ]] && ! "$tbrun" --lib > /dev/null 2>&1; then
    if [ "${TB_EXPECT_UCT:-no}" = yes ]; then
        "$tbrun" --lib
        echo "run-mpi: the tb transport should have been built but libuct_tb.so.0 is missing"
        summary 0 1
        exit 1
    fi
    echo "run-mpi: SKIP: libuct_tb.so.0 not built (UCX source missing? see contrib/get-ucx-source.sh)"
    echo "run-mpi: to try the script over UCX's own transports: TB_UCT_LIB=none TB_MPI_TLS=tcp,self $0"
    exit 77
fi

# The software device unless another is asked for (UCX's auto is the kernel).
[[ ",$tls," == *,tb,* ]] && export UCX_TB_DEVICE=${UCX_TB_DEVICE:-soft}

if [ "$(id -u)" = 0 ]; then
    # CI runs as root; Open MPI refuses that unless told twice.
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi

echo "run-mpi: UCX_TLS=$tls, expecting lanes on '$expect', ranks: $nps, library: $("$tbrun" --lib 2>&1)"

# The transport must be registered at all (ucx_info -d lists it).
devices=$("$tbrun" ucx_info -d 2>&1)
if ! grep -Eq "^# +Transport: +$expect\$" <<< "$devices"; then
    echo "run-mpi: FAIL: transport '$expect' is not listed by 'contrib/tbrun ucx_info -d'"
    summary 0 1
    exit 1
fi

total_pass=0
total_fail=0
for np in $nps; do
    out=run-mpi-np$np.out
    echo
    echo "==== np=$np: mpirun -np $np --mca pml ucx --mca osc ucx -x UCX_TLS=$tls $test_bin $args"
    start=$(date +%s%N)
    # shellcheck disable=SC2086  # $args is a list of words
    timeout -k 15 "$limit" "$tbrun" "$mpirun" --oversubscribe -np "$np" \
        --mca pml ucx --mca osc ucx \
        -x UCX_TLS="$tls" -x UCX_LOG_LEVEL="${UCX_LOG_LEVEL:-info}" \
        "$test_bin" $args > "$out" 2>&1 < /dev/null
    rc=$?
    secs=$(awk -v a="$start" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')

    # The program's own report (indented, so only our total starts "mpi:").
    grep -E '^(tb_mpi_test:|[A-Za-z0-9_/ ]+ +[0-9]+ passed, [0-9]+ failed  \(|total time|rank [0-9]+: )' "$out" | sed 's/^/  /'
    line=$(grep -E '^mpi: [0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
    pass=0 fail=0
    if [ -n "$line" ]; then
        pass=$(echo "$line" | sed -E 's/^mpi: ([0-9]+) passed, ([0-9]+) failed.*/\1/')
        fail=$(echo "$line" | sed -E 's/^mpi: ([0-9]+) passed, ([0-9]+) failed.*/\2/')
        echo "  $line"
    fi

    # Lanes chosen by UCP: one line per endpoint configuration per worker.
    lanes=$(grep -E 'UCX +INFO +(ep_cfg\[[0-9]+\]:| *[a-z_0-9]+ [a-z-]+ cfg#[0-9]+ )' "$out" || true)
    echo "  UCX lanes seen (distinct):"
    echo "$lanes" | sed -E 's/.*UCX +INFO +(ep_cfg\[[0-9]+\]: | *[a-z_0-9]+ [a-z-]+ cfg#[0-9]+ )//' |
        sort | uniq -c | sed 's/^/    /'
    # Ranks (host:pid) with at least one lane on the expected transport.
    ranks_on=$(echo "$lanes" | grep -E "[( ]$expect/" | sed -nE 's/^\[[^]]*\] \[([^ :]+:[0-9]+) *:.*/\1/p' | sort -u | wc -l)
    if echo "$lanes" | grep -q 'rma_am(\|amo_am('; then
        echo "  note: some RMA/atomics are emulated over active messages (rma_am/amo_am)"
    fi
    errs=$(grep -cE 'UCX +(ERROR|WARN)' "$out")
    if [ "$errs" -gt 0 ]; then
        echo "  UCX errors/warnings in the log ($errs, first 5):"
        grep -E 'UCX +(ERROR|WARN)' "$out" | head -n 5 | sed 's/^/    /'
    fi

    verdict=PASS reason=
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        verdict=FAIL reason="timed out after $limit s"
    elif [ -z "$line" ]; then
        verdict=FAIL reason="no summary from tb_mpi_test (exit status $rc); see $out"
        tail -n 30 "$out" | sed 's/^/    | /'
    elif [ "$fail" -ne 0 ] || [ "$rc" -ne 0 ]; then
        verdict=FAIL reason="$fail checks failed, exit status $rc"
    fi
    if [ "$ranks_on" -lt "$np" ]; then
        verdict=FAIL reason="${reason:+$reason; }only $ranks_on of $np ranks logged a lane on '$expect/'"
        [ -z "$lanes" ] && reason="$reason (no 'ep_cfg' lines: is UCX_LOG_LEVEL at least info?)"
    fi
    total_pass=$((total_pass + pass))
    if [ "$verdict" = PASS ]; then
        total_fail=$((total_fail + fail))
        echo "np=$np: PASS ($ranks_on of $np ranks on $expect, $secs s)"
    else
        total_fail=$((total_fail + (fail > 0 ? fail : 1)))
        echo "np=$np: FAIL: $reason ($secs s)"
    fi
done

echo
summary "$total_pass" "$total_fail"
[ "$total_fail" -eq 0 ]
