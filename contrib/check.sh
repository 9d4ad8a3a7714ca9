#!/usr/bin/env bash
# Same set-up as quickstart.sh, then every test (make check), then the same
# on the other Debian releases (test/distro). This is what CI runs
# (.ci/run). TB_FUZZ_SECONDS sets the fuzzing time (default 60);
# TB_CHECK_DISTROS the other releases, NAME:SUITE each (default
# "debian-13:trixie debian-unstable:unstable"; empty: none).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
# This machine's release names its summary lines, e.g. debian-12/unit/...
# shellcheck source=/dev/null
here=$(. /etc/os-release && echo "$ID-${VERSION_ID:-unstable}")
# How long each part took, for the summary.
times=()
part_start=$SECONDS
part_done() { times+=("time: $1 $((SECONDS - part_start)) s"); part_start=$SECONDS; }

# The kernel-module tests (test/vm) boot this release's kernel in QEMU:
# install it and its headers first, so that configure finds them and builds
# tbrdma.ko.
test/vm/setup-vm.sh ||
    echo "check: WARNING: test/vm/setup-vm.sh failed: the VM tests will fail or be skipped" >&2

contrib/setup.sh
part_done "set-up and build"

# Drop the logs of the previous run, so a suite that cannot even be built
# is not reported with old results.
rm -f build/test/*/*.log build/test/*/*.trs

# -k: run the fuzz suite even if the unit suite failed, so one run shows all.
status=0
make -k -C build -j2 check || status=$?
part_done "make check"

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
    for d in src/common src/lib test/common test/unit; do
        [ "$asan_status" -eq 0 ] || break
        make -C "build-asan/$d" -j2 >/dev/null || asan_status=$?
    done
    [ "$asan_status" -eq 0 ] && { make -C build-asan/test/unit check || asan_status=$?; }
    [ "$asan_status" -eq 0 ] || status=$asan_status
    part_done "unit (asan+ubsan)"
fi

# The other releases, one after another (each boots its own kernel in a
# VM): their lines are kept for the summary. A root that cannot be made
# is a skip (exit 77), not a failure.
distro_lines=()
for d in ${TB_CHECK_DISTROS-debian-13:trixie debian-unstable:unstable}; do
    rc=0
    out=$(test/distro/run-distro.sh "${d%%:*}" "${d#*:}") || rc=$?
    echo "$out"
    mapfile -t -O "${#distro_lines[@]}" distro_lines < <(grep -E "^${d%%:*}/" <<< "$out")
    case $rc in 0|77) ;; *) status=$rc ;; esac
    part_done "${d%%:*}"
done

if [ "$status" -ne 0 ]; then
    # Show the logs of failed suites here, so CI output alone explains it.
    find build build-asan -name test-suite.log 2>/dev/null | while read -r f; do
        grep -q '^# FAIL: *0$' "$f" && grep -q '^# ERROR: *0$' "$f" && continue
        echo "================ $f"
        cat "$f"
    done
fi

echo "================ summary"
contrib/summary.sh build | sed "s|^|$here/|"
if [ "${TB_CHECK_SANITIZERS:-1}" = 1 ]; then
    log=build-asan/test/unit/run-unit.sh.log
    if [ -f "$log" ]; then
        grep -E '^unit( test cases)?:' "$log" | sed 's/^unit/unit (asan+ubsan)/'
    else
        echo "unit (asan+ubsan): did not run (build failed? see the errors above)"
    fi | sed "s|^|$here/|"
fi
printf '%s\n' "${distro_lines[@]}" "${times[@]}"
if [ "$status" -ne 0 ]; then
    # Last, where a shortened CI log still shows it: what each failed suite
    # said about its failure.
    grep -lE '^:test-result: (FAIL|ERROR)' build/test/*/*.trs build-asan/test/unit/*.trs 2>/dev/null |
        while read -r trs; do
            log=${trs%.trs}.log
            echo "failed: $log"
            grep -E 'FAILED|[1-9][0-9]* failed|[Ee]rror|timed out|[Tt]imeout|Oops|BUG|WARNING' "$log" |
                tail -n 20 | sed 's/^/  /'
        done
fi
echo "check: $([ "$status" -eq 0 ] && echo PASSED || echo "FAILED (make exit status $status)")"
exit "$status"
