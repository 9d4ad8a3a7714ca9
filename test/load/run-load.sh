#!/usr/bin/env bash
# How the tb transport loads into Debian's UCX 1.13.1, and how it refuses:
# listed by ucx_info through contrib/tbrun, configuration shown by
# ucx_info -c, a clear UCX error when tb has no device, refusal of a build
# made for other UCX struct layouts, and no double registration.
# Ends with "load: N passed, M failed".
set -uo pipefail

top=${TB_TOP_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
lib=${TB_UCT_LIB:?TB_UCT_LIB must name libuct_tb.so.0}
skew=${TB_UCT_SKEW_LIB:-$(dirname "$lib")/libuct_tb_skew.so}
tbrun="$top/contrib/tbrun"
export UCX_TB_SOFT_FABRIC="load-$$" UCX_TB_DEVICE=soft
pass=0 fail=0

check() {  # check NAME CONDITION-EXIT-STATUS [DETAILS]
    if [ "$2" -eq 0 ]; then
        echo "PASS: $1"; pass=$((pass + 1))
    else
        echo "FAIL: $1"; [ -n "${3:-}" ] && printf '%s\n' "$3" | sed 's/^/    /'
        fail=$((fail + 1))
    fi
}

out=$(TB_UCT_LIB=$lib "$tbrun" ucx_info -d 2>&1)
grep -q "Transport: tb" <<<"$out" && grep -q "Device: $UCX_TB_SOFT_FABRIC" <<<"$out"
check "ucx_info -d through tbrun lists transport tb and its device" $? "$out"

out=$(TB_UCT_LIB=$lib "$tbrun" ucx_info -c 2>&1)
# Everything tb reads is UCX configuration, the software link's knobs too.
missing=$(for v in UCX_TB_DEVICE UCX_TB_SOFT_FABRIC UCX_TB_TX_QUEUE_LEN UCX_TB_CQ_LEN \
                   UCX_TB_RX_QUEUE_LEN UCX_TB_SEG_SIZE UCX_TB_TX_BUFS UCX_TB_MAX_MR \
                   UCX_TB_RCACHE UCX_TB_BW UCX_TB_LATENCY UCX_TB_OVERHEAD UCX_TB_SOFT_LOSS \
                   UCX_TB_SOFT_DUP UCX_TB_SOFT_REORDER UCX_TB_SOFT_DELAY_US \
                   UCX_TB_SOFT_RATE_MBPS UCX_TB_SOFT_LATENCY_NS UCX_TB_SOFT_SEED \
                   UCX_TB_SOFT_SLOTS; do
              grep -q "^$v=" <<<"$out" || echo "$v"; done)
[ -z "$missing" ]
check "ucx_info -c shows the UCX_TB_* settings" $? "missing: $missing"

out=$(UCX_TLS=tb timeout 60 ucx_info -u t -e 2>&1)
grep -q "transport 'tb' is not available" <<<"$out"
check "without the wrapper, UCX 1.13.1 does not know tb (the preload is what loads it)" $? "$out"

if [ ! -e /dev/tbrdma ]; then
    out=$(TB_UCT_LIB=$lib UCX_TB_DEVICE=kernel UCX_TLS=tb timeout 60 "$tbrun" ucx_info -u t -e 2>&1)
    grep -q "no usable transports/devices (asked tb" <<<"$out" &&
        grep -q "tb: .*/dev/tbrdma" <<<"$out"
    check "UCX_TLS=tb with no tb device fails with a clear UCX error" $? "$out"
fi

out=$(TB_UCT_LIB=$lib UCX_TLS=tb UCX_NET_DEVICES=nosuch timeout 60 "$tbrun" ucx_info -u t -e 2>&1)
grep -q "network device 'nosuch' is not available" <<<"$out" &&
    grep -q "'$UCX_TB_SOFT_FABRIC'(tb)" <<<"$out"
check "asking for a device tb does not have names the ones it has" $? "$out"

out=$(TB_UCT_LIB=$lib UCX_TLS=tb timeout 60 "$tbrun" ucx_info -u t -e 2>&1)
grep -qE "lane\[0\]: +[0-9]+:tb/" <<<"$out"
check "UCX_TLS=tb: UCP builds its lanes on tb" $? "$out"

if [ -f "$skew" ]; then
    out=$(LD_PRELOAD=$skew timeout 60 ucx_info -d 2>&1)
    grep -q "\[tb\] not loading the tb transport: it was built for another UCX" <<<"$out" &&
        ! grep -q "Component: tb" <<<"$out"
    check "a module built for other UCX struct sizes refuses to load, saying why" $? "$out"
else
    check "the layout-skewed test module was built ($skew)" 1
fi

copy=$(mktemp --suffix=.so)
cp "$lib" "$copy"
out=$(LD_PRELOAD="$lib:$copy" timeout 60 ucx_info -d 2>&1)
rm -f "$copy"
[ "$(grep -c "Component: tb" <<<"$out")" -eq 1 ]
check "two copies loaded at once register tb once" $? "$out"

echo "load: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
