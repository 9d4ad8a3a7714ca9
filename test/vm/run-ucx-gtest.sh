#!/usr/bin/env bash
# UCX's own UCT suite (test/ucx-gtest, built on the host by make check) on
# the kernel device: one VM with tbrdma.ko and one loop cable, every tb/*
# test on loop0. Its peer-failure test opens an interface per receiver, 257
# contexts, so the module gets room for more than its default 256. UCX's
# performance test (test_uct_perf) is left to the host run on the software
# device: under TCG it takes 13-14 minutes and measures the emulator, while
# vm/perftest runs ucx_perftest's operations on the kernel device.
# Ends with run-ucx-gtest.sh's "ucx-gtest: N passed, M failed, K skipped".
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=${TB_TOP_SRCDIR:-$(cd "$here/../.." && pwd)}
build=${TB_TOP_BUILDDIR:-$top/build}
ko=$build/kernel/tbrdma.ko
gtest=$build/test/ucx-gtest/ucx_gtest
for f in "$ko" "$gtest"; do
    [ -f "$f" ] || { echo "run-ucx-gtest: $f was not built"; echo "ucx-gtest: 0 passed, 1 failed, 0 skipped"; exit 1; }
done
cd "$build/test/ucx-gtest" || exit 1
# TCG runs tens of times slower than the host.
"$here/vm-run.sh" --mem 3G --timeout "${TB_VM_TIMEOUT:-3600}" --check-dmesg \
    --insmod "$ko loop=1 max_contexts=512" \
    --env UCX_TB_DEVICE=kernel --env TB_GTEST_TIMEOUT=3300 \
    --env TB_GTEST_FILTER='tb/*:-tb/test_uct_perf.*' \
    --env TB_UCT_LIB="$build/src/uct/tb/.libs/libuct_tb.so.0" \
    -- "$top/test/ucx-gtest/run-ucx-gtest.sh" -t 2400
