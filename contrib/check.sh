#!/usr/bin/env bash
# Same set-up as quickstart.sh, then every test (make check). This is what
# CI runs (.ci/run). TB_FUZZ_SECONDS sets the fuzzing time (default 60).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

contrib/setup.sh

# Drop the logs of the previous run, so a suite that cannot even be built
# is not reported with old results.
rm -f build/test/*/*.log build/test/*/*.trs

# -k: run the fuzz suite even if the unit suite failed, so one run shows all.
status=0
make -k -C build -j2 check || status=$?

if [ "$status" -ne 0 ]; then
    # Show the logs of failed suites here, so CI output alone explains it.
    find build -name test-suite.log | while read -r f; do
        grep -q '^# FAIL: *0$' "$f" && grep -q '^# ERROR: *0$' "$f" && continue
        echo "================ $f"
        cat "$f"
    done
fi

echo "================ summary"
for t in unit/run-unit fuzz/run-fuzz mpi/run-mpi perf/run-perftest load/run-load; do
    log=build/test/$t.sh.log
    if [ -f "$log" ]; then
        grep -E '^(unit|fuzz|mpi|perftest|load)( test cases)?:' "$log" || echo "$t: no summary line in $log"
    else
        echo "${t%%/*}: did not run (build failed? see the errors above)"
    fi
done
echo "check: $([ "$status" -eq 0 ] && echo PASSED || echo "FAILED (make exit status $status)")"
exit "$status"
