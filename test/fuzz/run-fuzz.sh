#!/usr/bin/env bash
# Run the frame fuzzer for TB_FUZZ_SECONDS (default 60) from a fresh corpus
# seeded with $srcdir/seeds. Any crash, leak, timeout or sanitizer report
# fails the test. Exit 77 (automake SKIP) when libFuzzer is not available.
set -uo pipefail

if [ "${TB_HAVE_LIBFUZZER:-no}" != yes ]; then
    echo "SKIP: fuzz: no libFuzzer (configure found no clang accepting -fsanitize=fuzzer)."
    echo "      Install it with: apt-get install clang libclang-rt-dev, then re-run configure."
    echo "fuzz: 0 passed, 0 failed, 1 skipped"
    exit 77
fi

secs=${TB_FUZZ_SECONDS:-60}
rm -rf corpus artifacts
mkdir -p corpus artifacts
if [ -d "${srcdir:-.}/seeds" ]; then
    cp -R "${srcdir:-.}/seeds/." corpus/
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
# libFuzzer's default error exit code is 77, which automake would count as a
# SKIP; force 1 so every finding is a failure.
./fuzz_frame -max_total_time="$secs" -max_len=4096 -error_exitcode=1 \
    -timeout_exitcode=1 -artifact_prefix=artifacts/ corpus 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}

# "Done N runs" at a normal end; after a crash, the last "#N ..." status line.
runs=$(sed -n -e 's/^Done \([0-9]*\) runs.*/\1/p' -e 's/^#\([0-9]*\)[[:space:]].*/\1/p' "$log" | tail -n1)
crashes=$(find artifacts -type f | wc -l)
if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|libFuzzer)|runtime error:' "$log"; then
    [ "$crashes" -gt 0 ] || crashes=1
fi

echo
echo "fuzz: ${runs:-0} runs, $crashes crashes (${secs}s, corpus $(find corpus -type f | wc -l) inputs)"
if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ]; then
    find artifacts -type f -printf 'fuzz: reproducer: test/fuzz/%p\n'
    echo "fuzz: 0 passed, 1 failed"
    exit 1
fi
echo "fuzz: 1 passed, 0 failed"
