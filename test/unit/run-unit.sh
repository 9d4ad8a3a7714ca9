#!/usr/bin/env bash
# Run the Boost.Test unit tests and end with one plain summary line
# ("unit: N passed, M failed", counted in assertions) that CI logs can grep.
# Extra arguments go to tb_unit_tests (e.g. --run_test=wire).
set -uo pipefail

out=$(mktemp)
trap 'rm -f "$out"' EXIT

# Boost writes the report to stderr; merge so both the log and we see it.
./tb_unit_tests --report_level=short --log_level=test_suite --color_output=no "$@" 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}

# Report lines look like "  412 assertions out of 412 passed".
count() { sed -n "s/^ *\([0-9]*\) $1s\{0,1\} out of [0-9]* $2\$/\1/p" "$out" | head -n1; }
cases_ok=$(count 'test case' passed); cases_bad=$(count 'test case' failed)
asserts_ok=$(count assertion passed); asserts_bad=$(count assertion failed)
cases_skip=$(count 'test case' skipped)

echo
if [ -z "$cases_ok$cases_bad" ]; then
    # No report at all: the binary crashed or aborted before reporting.
    echo "unit: no Boost.Test report (tb_unit_tests exited with status $rc)"
    echo "unit: 0 passed, 1 failed"
    exit 1
fi
echo "unit test cases: ${cases_ok:-0} passed, ${cases_bad:-0} failed, ${cases_skip:-0} skipped"
echo "unit: ${asserts_ok:-0} passed, ${asserts_bad:-0} failed"
exit "$rc"
