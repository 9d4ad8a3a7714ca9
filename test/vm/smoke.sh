#!/usr/bin/env bash
# Smoke test of the VM harness: sets the VM up (idempotent), then boots it a
# few times and checks what the kernel-module tests rely on: exit status
# passing, modprobe from the host's /lib/modules, rdma_rxe with ibverbs
# (the soft-RoCE baseline), thunderbolt, the read-only host root and the
# writable build dir. Prints one line per check and "smoke: N passed, N failed".
# Usage: test/vm/smoke.sh   (TB_VM_DIR as for vm-run.sh)
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
vmdir=${TB_VM_DIR:-$top/build/vm}
run=$here/vm-run.sh
passed=0
failed=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT

ok()  { echo "PASS: $*"; passed=$((passed + 1)); }
bad() { echo "FAIL: $*"; failed=$((failed + 1)); }

"$here/setup-vm.sh" "$vmdir" || { echo "FAIL: setup-vm.sh"; echo "smoke: 0 passed, 1 failed"; exit 1; }
kver=$(cat "$vmdir/kernel-version")

# 1. Boot time: a VM that runs 'true' (wall clock, QEMU start to exit).
start=$(date +%s.%N)
if "$run" -- true; then
    ok "boot + true in $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
else
    bad "VM could not run 'true'"
fi

# 2. The command's exit status comes back.
"$run" -- sh -c 'exit 7'
rc=$?
if [ "$rc" -eq 7 ]; then ok "exit status passed through"; else bad "exit status: got $rc, want 7"; fi

# 3. Guest kernel, its modules from the host root, rdma_rxe and thunderbolt.
# shellcheck disable=SC2016 # expanded inside the VM
if "$run" -- sh -c 'uname -r; ls /lib/modules/$(uname -r) | head;
        modprobe rdma_rxe && ls /sys/module/rdma_rxe;
        modprobe thunderbolt && ls /sys/bus/thunderbolt' | tee "$out"; then
    if head -n1 "$out" | grep -qx "$kver" && grep -qx modules.dep "$out" &&
       grep -qx initstate "$out" && grep -qx devices "$out"; then
        ok "kernel $kver, modprobe rdma_rxe, modprobe thunderbolt"
    else
        bad "unexpected output from the module check"
    fi
else
    bad "module check failed"
fi

# 4. Soft-RoCE: rxe on a dummy netdev and on both ends of a veth pair, as
# the baseline benchmarks will use it, then RC traffic rxe2 -> rxe1 over the
# veth pair (link-local GIDs; the pingpong's set-up talks to localhost).
# Nothing leaves the VM: it has no network card. ib_uverbs: no udev here.
if "$run" --modprobe rdma_rxe --modprobe ib_uverbs -- bash -ec '
        ip link add dummy0 type dummy
        ip link set dummy0 up
        rdma link add rxe0 type rxe netdev dummy0
        ip link add veth0 type veth peer name veth1
        ip link set veth0 up
        ip link set veth1 up
        rdma link add rxe1 type rxe netdev veth0
        rdma link add rxe2 type rxe netdev veth1
        rdma link show
        ibv_devices
        sleep 1   # let IPv6 give the veth ends their link-local GIDs
        ibv_rc_pingpong -d rxe1 -g 0 -n 200 > /tmp/server.log 2>&1 &
        sleep 1
        timeout 60 ibv_rc_pingpong -d rxe2 -g 0 -n 200 localhost
        wait $!
        echo "pingpong: ok"' | tee "$out"; then
    if grep -qE '^ +rxe0[[:space:]]' "$out" && grep -qE '^ +rxe2[[:space:]]' "$out" &&
       grep -qx 'pingpong: ok' "$out"; then
        ok "rdma_rxe: rxe0 (dummy0), rxe1/rxe2 (veth pair) in ibv_devices, RC pingpong rxe2 -> rxe1"
    else
        bad "rxe devices or pingpong missing from the output"
    fi
else
    bad "rxe set-up or pingpong failed"
fi

# 5. Host root read-only, build dir writable at the same path, /tmp private.
mkdir -p "$top/build"
mark=$top/build/.vm-smoke-$$
rm -f "$mark"
if "$run" -- sh -c "! touch /usr/.tbvm-ro-test 2>/dev/null && echo ok > '$mark' &&
                     touch /tmp/.tbvm-private-$$" &&
   [ "$(cat "$mark" 2>/dev/null)" = ok ] && [ ! -e "/tmp/.tbvm-private-$$" ]; then
    ok "host root read-only, $top/build writable, /tmp private"
else
    bad "file system layout inside the VM"
fi
rm -f "$mark"

echo "smoke: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
