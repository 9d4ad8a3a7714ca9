#!/usr/bin/env bash
# Run the UCT tests with the tb module preloaded into UCX and end with one
# plain summary line ("uct: N passed, M failed", counted in assertions).
# TB_UCT_LIB: the module (default: this build's libuct_tb.so.0).
# Extra arguments go to tb_uct_tests (e.g. --run_test=rma).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
bin=./tb_uct_tests
[ -x "$bin" ] || bin=$here/tb_uct_tests
# The build tree is the binary's ../.. unless make says otherwise.
top=${abs_top_builddir:-$(cd "$(dirname "$bin")/../.." && pwd)}
lib=${TB_UCT_LIB:-$top/src/uct/tb/.libs/libuct_tb.so.0}
if [ ! -f "$lib" ]; then
    echo "uct: tb module not found at $lib (build it, or set TB_UCT_LIB)"
    echo "uct: 0 passed, 1 failed"
    exit 1
fi

out=$(mktemp)
trap 'rm -f "$out"' EXIT

# Boost writes the report to stderr; merge so both the log and we see it.
# timeout: a hang must not block the whole check run.
LD_PRELOAD=$lib${LD_PRELOAD:+:$LD_PRELOAD} timeout -k 10 ${TB_UCT_TIMEOUT:-900} \
    "$bin" --report_level=short --log_level=test_suite --color_output=no "$@" 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}

# Report lines look like "  412 assertions out of 412 passed".
count() { sed -n "s/^ *\([0-9]*\) $1s\{0,1\} out of [0-9]* $2\$/\1/p" "$out" | head -n1; }
cases_ok=$(count 'test case' passed); cases_bad=$(count 'test case' failed)
asserts_ok=$(count assertion passed); asserts_bad=$(count assertion failed)
cases_skip=$(count 'test case' skipped)

echo
if [ -z "$cases_ok$cases_bad" ]; then
    # No report at all: crashed, aborted or timed out before reporting.
    echo "uct: no Boost.Test report (tb_uct_tests exited with status $rc)"
    echo "uct: 0 passed, 1 failed"
    exit 1
fi
echo "uct test cases: ${cases_ok:-0} passed, ${cases_bad:-0} failed, ${cases_skip:-0} skipped"
echo "uct: ${asserts_ok:-0} passed, ${asserts_bad:-0} failed"
exit "$rc"
