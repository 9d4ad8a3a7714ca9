#!/usr/bin/env bash
# Runs every tb test of UCX's own UCT suite (the binary build-ucx-gtest.sh
# makes) with the tb transport preloaded, on the device UCX_TB_DEVICE names
# (default: the software device). Tests UCX itself skips for tb's
# capabilities are counted as skipped; none is left out by name. Ends with
# "ucx-gtest: N passed, M failed, K skipped".
#
# Environment:
#   TB_UCT_LIB        the module (default: the build tree's libuct_tb.so.0)
#   TB_GTEST_BIN      the binary (default ./ucx_gtest)
#   TB_GTEST_TIMEOUT  seconds for the whole run (default 1800)
#   TB_GTEST_FILTER   gtest filter (default tb/*)
# Extra arguments go to the binary. Its full output is kept in
# ./ucx-gtest.out.
set -uo pipefail

# Run from build/test/ucx-gtest, where make check runs it.
lib=${TB_UCT_LIB:-$PWD/../../src/uct/tb/.libs/libuct_tb.so.0}
bin=${TB_GTEST_BIN:-./ucx_gtest}
out=$PWD/ucx-gtest.out
summary() { echo "ucx-gtest: $1 passed, $2 failed, $3 skipped"; }

for f in "$lib" "$bin"; do
    if [ ! -f "$f" ]; then
        echo "run-ucx-gtest: $f is missing (build the transport and the suite first)"
        summary 0 1 0
        exit 1
    fi
done

export UCX_TB_DEVICE=${UCX_TB_DEVICE:-soft}
export UCX_TB_SOFT_FABRIC=${UCX_TB_SOFT_FABRIC:-gtest$$}
# A failure prints a backtrace and goes on, instead of waiting for a debugger.
export UCX_HANDLE_ERRORS=bt
echo "run-ucx-gtest: $bin on the $UCX_TB_DEVICE device, module $lib"

start=$(date +%s)
LD_PRELOAD=$lib${LD_PRELOAD:+:$LD_PRELOAD} timeout -k 10 "${TB_GTEST_TIMEOUT:-1800}" \
    "$bin" --gtest_filter="${TB_GTEST_FILTER:-tb/*}" "$@" > "$out" 2>&1
rc=$?
echo "run-ucx-gtest: ran in $(( $(date +%s) - start )) s (exit status $rc)"

# gtest's own account: one "[ RUN ]" per test, then "[ OK ]" or
# "[ FAILED ]" with its time; UCX's skips are OK tests that say SKIP.
ran=$(grep -c '^\[ RUN      \]' "$out")
ok=$(grep -c '^\[       OK \]' "$out")
skipped=$(grep -c '^\[     SKIP \]' "$out")
failed_list=$(grep -E '^\[  FAILED  \] .* \([0-9]+ ms\)$' "$out")
failed=$(grep -c . <<<"$failed_list")
[ -n "$failed_list" ] && { echo "run-ucx-gtest: failed:"; echo "$failed_list"; }
if [ "$ran" -eq 0 ] || [ $((ok + failed)) -ne "$ran" ] ||
   ! grep -q '^\[==========\] .* ran\.' "$out"; then
    # Crashed, hung or aborted before its report: the last test is the suspect.
    echo "run-ucx-gtest: no complete report; the end of the output:"
    tail -n 40 "$out"
    summary $((ok - skipped)) $((failed + 1)) "$skipped"
    exit 1
fi
summary $((ok - skipped)) "$failed" "$skipped"
[ "$failed" -eq 0 ] && [ "$rc" -eq 0 ]
