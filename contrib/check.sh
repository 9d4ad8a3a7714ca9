#!/usr/bin/env bash
# Same set-up as quickstart.sh, then every test (make check). This is what
# CI runs (.ci/run). TB_FUZZ_SECONDS sets the fuzzing time (default 60).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

# The kernel-module tests (test/vm) boot Debian's 6.1 kernel in QEMU: install
# it and its headers first, so that configure finds them and builds tbrdma.ko.
test/vm/setup-vm.sh ||
    echo "check: WARNING: test/vm/setup-vm.sh failed: the VM tests will fail or be skipped" >&2

contrib/setup.sh

# Drop the logs of the previous run, so a suite that cannot even be built
# is not reported with old results.
rm -f build/test/*/*.log build/test/*/*.trs

# -k: run the fuzz suite even if the unit suite failed, so one run shows all.
status=0
make -k -C build -j2 check || status=$?

# The unit tests again, built with AddressSanitizer and UBSan (the engine,
# the device library and the tests; UCX itself is not instrumented).
# TB_CHECK_SANITIZERS=0 skips this.
asan_status=0
if [ "${TB_CHECK_SANITIZERS:-1}" = 1 ]; then
    rm -f build-asan/test/unit/*.log build-asan/test/unit/*.trs
    mkdir -p build-asan
    if [ ! -f build-asan/Makefile ] || [ configure -nt build-asan/Makefile ]; then
        (cd build-asan && ../configure --enable-sanitizers --without-kernel-headers >configure.out) ||
            asan_status=$?
    fi
    for d in src/common src/lib test/unit; do
        [ "$asan_status" -eq 0 ] || break
        make -C "build-asan/$d" -j2 >/dev/null || asan_status=$?
    done
    [ "$asan_status" -eq 0 ] && { make -C build-asan/test/unit check || asan_status=$?; }
    [ "$asan_status" -eq 0 ] || status=$asan_status
fi

if [ "$status" -ne 0 ]; then
    # Show the logs of failed suites here, so CI output alone explains it.
    find build build-asan -name test-suite.log 2>/dev/null | while read -r f; do
        grep -q '^# FAIL: *0$' "$f" && grep -q '^# ERROR: *0$' "$f" && continue
        echo "================ $f"
        cat "$f"
    done
fi

echo "================ summary"
for t in unit/run-unit uct/run-uct ucx-gtest/run-ucx-gtest fuzz/run-fuzz mpi/run-mpi \
         perf/run-perftest ucx-lanes/run-ucx-lanes load/run-load vm/run-kernel-tests \
         vm/run-ucx-kernel vm/run-ucx-gtest vm/xdomain-load vm/run-xdomain-sim \
         vm/run-xdomain-2vm vm/run-security; do
    log=build/test/$t.sh.log
    if [ -f "$log" ]; then
        # "<dir>/<suite>: ...", and the ucx-* suites under their own name.
        grep -E '^ *(unit|uct|ucx-gtest|fuzz|mpi|perftest|ucx-lanes|multirail|load|kernel|xdomain|xdomain-sim|xdomain-2vm|security)( test cases)?:' "$log" |
            sed -E "s|^ *|${t%%/*}/|; s|^(ucx-[a-z]+)/\1:|\1:|" || echo "$t: no summary line in $log"
    else
        echo "${t%%/*}: did not run (build failed? see the errors above)"
    fi
done
if [ "${TB_CHECK_SANITIZERS:-1}" = 1 ]; then
    log=build-asan/test/unit/run-unit.sh.log
    if [ -f "$log" ]; then
        grep -E '^unit( test cases)?:' "$log" | sed 's/^unit/unit (asan+ubsan)/'
    else
        echo "unit (asan+ubsan): did not run (build failed? see the errors above)"
    fi
fi
echo "check: $([ "$status" -eq 0 ] && echo PASSED || echo "FAILED (make exit status $status)")"
exit "$status"
