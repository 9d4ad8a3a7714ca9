#!/usr/bin/env bash
# Runs one command inside a fresh QEMU VM (the kernel of setup-vm.sh, the
# host root over 9p read-only, the project tree writable) and returns its
# exit status.
# See docs/vm.md.
#
# vm-run.sh [options] -- command [args...]
#   --mem SIZE        guest memory (default 2G)
#   --smp N           guest CPUs (default 2; the machine has 2 cores)
#   --timeout SEC     kill the VM after SEC seconds (default $TB_VM_TIMEOUT or 600)
#   --modprobe 'NAME [PARAM=VALUE...]'
#                     load an in-tree module first (repeatable, in order)
#   --insmod 'FILE.ko [PARAM=VALUE...]'
#                     load our module first, after modprobing its depends
#   --share DIR       also share DIR writable at the same path (repeatable;
#                     the project tree always is)
#   --env NAME=VALUE  set a variable for the command (repeatable)
#   --device SPEC     add a QEMU device, e.g. edu (repeatable)
#   --object SPEC     add a QEMU object, e.g. a shared memory backend (repeatable)
#   --netdev SPEC     add a QEMU network backend, for a --device virtio-net-pci
#                     (repeatable; the VM has no network otherwise)
#   --iommu           q35 machine with an emulated Intel IOMMU, enabled
#                     (bus addresses of PCI devices are then IOVAs)
#   --numa            two NUMA nodes, each a socket with half the CPUs (an
#                     even --smp) and memory (--mem in M or G), with --iommu only;
#                     a --device SPEC with bus=node0 or bus=node1 sits on that
#                     node's PCIe expander bridge (others on no node)
#   --check-dmesg     fail if the kernel log shows Oops/BUG/WARNING/KASAN/GPF
#   --vm-dir DIR      VM files from setup-vm.sh (default $TB_VM_DIR or <repo>/build/vm)
#   --root DIR        the VM's read-only root instead of the host's / (a root
#                     with the same kernel's modules; the shares' mount points
#                     are made in it, so it must be writable here)
#
# The command runs in the caller's working directory with PATH,
# LD_LIBRARY_PATH and every TB_*/UCX_*/OMPI_* variable passed on. Its stdout
# and stderr both arrive on our stdout; our own messages go to stderr.
# Exit status: the command's, or
#   123  --check-dmesg found kernel problems (the command itself succeeded)
#   124  timeout
#   125  the VM did not boot, a module did not load, or the harness failed
# The guest kernel log is always left in <vm-dir>/last-dmesg.log and the
# whole serial console in <vm-dir>/last-console.log.
# Environment: TB_VM_DIR, TB_VM_TIMEOUT (as above); TB_VM_APPEND: more
# kernel arguments; TB_VM_BZIMAGE=1: boot the compressed kernel; TB_VM_KEEP=1:
# keep the per-run control directory (<vm-dir>/run.*) for a look.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)

say() { echo "vm-run: $*" >&2; }
usage() { sed -n '/^# vm-run.sh/,/^set -e/{/^set -e/d;s/^# \{0,1\}//;p}' "$0" >&2; exit 125; }
die() { say "error: $*"; exit 125; }

mem=2G
smp=2
timeout=${TB_VM_TIMEOUT:-600}
vmdir=${TB_VM_DIR:-$top/build/vm}
check_dmesg=no
modules=()
kos=()
# The whole tree (sources, scripts and build), writable: the guest's /tmp
# is its own, so a tree under the host's /tmp would be invisible otherwise.
shares=("$top")
# A build tree outside the source tree, too.
case ${TB_TOP_BUILDDIR:-$top} in "$top"|"$top"/*) ;; *) shares+=("$TB_TOP_BUILDDIR") ;; esac
envs=()
devices=()
iommu=no
numa=no
numa_opts=()
node_devices=()
root=/

while [ $# -gt 0 ]; do
    case $1 in
        --mem) mem=$2; shift 2 ;;
        --smp) smp=$2; shift 2 ;;
        --timeout) timeout=$2; shift 2 ;;
        --modprobe) modules+=("modprobe $2"); shift 2 ;;
        --insmod)
            # "FILE.ko [param=value ...]"; copied into the control share
            # below, so any host path works (the guest's /tmp is its own).
            read -r ko params <<< "$2"
            [ -f "$ko" ] || die "no such module file: $ko"
            kos+=("$ko")
            modules+=("insmod /run/tbvm/ko/${#kos[@]}/$(basename "$ko") $params")
            shift 2 ;;
        --share) shares+=("$2"); shift 2 ;;
        --env) envs+=("$2"); shift 2 ;;
        --device)
            # After the expander bridge, which must come after every
            # device QEMU places itself (it would pick the bridge's bus).
            case $2 in
                *bus=node[01]|*bus=node[01],*) node_devices+=(-device "$2") ;;
                *) devices+=(-device "$2") ;;
            esac
            shift 2 ;;
        --object) devices+=(-object "$2"); shift 2 ;;
        --netdev) devices+=(-netdev "$2"); shift 2 ;;
        --iommu) iommu=yes; shift ;;
        --numa) numa=yes; shift ;;
        --check-dmesg) check_dmesg=yes; shift ;;
        --vm-dir) vmdir=$2; shift 2 ;;
        --root) root=$(realpath "$2"); shift 2 ;;
        --) shift; break ;;
        -h|--help) usage ;;
        *) say "unknown option: $1"; usage ;;
    esac
done
[ $# -gt 0 ] || usage
case $timeout in ''|*[!0-9]*) die "--timeout needs whole seconds" ;; esac

# Setting up is idempotent and fast once done: do it here if never done, or
# if the scripts that go into the initramfs changed since.
initrd=$vmdir/initramfs.cpio.gz
if [ ! -f "$initrd" ] || [ ! -f "$vmdir/kernel-version" ] ||
   [ "$here/init.sh" -nt "$initrd" ] || [ "$here/stage2.sh" -nt "$initrd" ] ||
   [ "$here/setup-vm.sh" -nt "$initrd" ]; then
    say "VM in $vmdir missing or out of date: running setup-vm.sh"
    "$here/setup-vm.sh" "$vmdir" >&2 || die "setup-vm.sh failed"
fi
kver=$(cat "$vmdir/kernel-version")
# The uncompressed kernel boots faster (see setup-vm.sh); TB_VM_BZIMAGE=1
# boots the compressed one, as a boot loader would.
kernel=$vmdir/vmlinux
if [ -n "${TB_VM_BZIMAGE:-}" ] || [ ! -s "$kernel" ]; then
    kernel=$(realpath "$vmdir/vmlinuz")
fi
[ -r "$kernel" ] || die "kernel $kernel missing: run test/vm/setup-vm.sh"
command -v qemu-system-x86_64 >/dev/null || die "qemu missing: run test/vm/setup-vm.sh"

# One VM at a time per VM directory: the machines have 2 cores, and
# "make -j2 check" starts several VM suites at once. Later runs wait here
# (their --timeout counts from their own start). TB_VM_NO_LOCK=1 skips it.
if [ -z "${TB_VM_NO_LOCK:-}" ] && command -v flock > /dev/null; then
    exec 9> "$vmdir/vm.lock"
    if ! flock -n 9; then
        say "another VM runs from $vmdir: waiting for it"
        flock 9
    fi
fi

# The per-run control directory, shared with the guest as /run/tbvm.
ctl=$(mktemp -d "$vmdir/run.XXXXXX")
qemu_pid=
sleeper=
# shellcheck disable=SC2317 # called by the trap
cleanup() {
    if [ -n "$qemu_pid" ]; then kill "$qemu_pid" 2>/dev/null || true; fi
    if [ -n "$sleeper" ]; then kill "$sleeper" 2>/dev/null || true; fi
    if [ -n "${TB_VM_KEEP:-}" ]; then say "kept $ctl"; else rm -rf "$ctl"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

printf '%s\n' "${modules[@]+"${modules[@]}"}" > "$ctl/modules"
i=0
for ko in "${kos[@]+"${kos[@]}"}"; do
    i=$((i + 1))
    mkdir -p "$ctl/ko/$i"
    cp "$ko" "$ctl/ko/$i/"
done

hostname > "$ctl/hostname"

# Writable shares: each at the same path inside as outside.
virtfs=(-virtfs "local,path=$root,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap"
        -virtfs "local,path=$ctl,mount_tag=tbctl,security_model=none")
: > "$ctl/mounts"
i=0
for d in "${shares[@]}"; do
    mkdir -p "$d"
    d=$(realpath "$d")
    case $d in *[[:space:]]*) die "share path with spaces: $d" ;; esac
    [ "$d" != / ] || die "cannot share / writable"
    [ "$root" = / ] || mkdir -p "$root$d"
    virtfs+=(-virtfs "local,path=$d,mount_tag=work$i,security_model=none,multidevs=remap")
    echo "work$i $d" >> "$ctl/mounts"
    i=$((i + 1))
done

# The command, as a bash script run from the caller's directory.
{
    echo '#!/bin/bash'
    for v in PATH LD_LIBRARY_PATH $(compgen -e | grep -E '^(TB|UCX|OMPI)_' || true); do
        [ -n "${!v+set}" ] && printf 'export %s=%q\n' "$v" "${!v}"
    done
    for e in "${envs[@]+"${envs[@]}"}"; do
        printf 'export %s=%q\n' "${e%%=*}" "${e#*=}"
    done
    # The guest's /tmp, /run and /dev/shm are its own: from there, run in /.
    printf 'cd %q 2>/dev/null || { echo "vm-run: %q not visible in the VM, running in /" >&2; cd /; }\n' "$PWD" "$PWD"
    printf 'exec'
    printf ' %q' "$@"
    printf '\n'
} > "$ctl/cmd"

# console=ttyS0 (kernel log + markers) goes to a file; ttyS1 (the command's
# output) to our stdout. No network device at all. panic=-1 + -no-reboot:
# a panicking guest ends QEMU at once. watchdog_thresh=60: an emulated CPU
# can stall for seconds on a busy host; don't report that as a soft lockup.
# tsc=reliable: TCG's TSC is one clock for all vCPUs, but the kernel's sync
# check fails under emulation and falls back to HPET, where every
# clock_gettime() becomes an emulated MMIO read. TB_VM_APPEND adds more.
append="console=ttyS0,115200 panic=-1 rdinit=/init watchdog_thresh=60 tsc=reliable"
append+=" ${TB_VM_APPEND:-}"
machine=()
if [ "$iommu" = yes ]; then
    # Interrupt remapping needs a split irqchip, which TCG does not have.
    machine=(-machine q35 -device intel-iommu,intremap=off)
    append+=" intel_iommu=on iommu.strict=1"
fi
smp_spec=$smp
[ "$numa" = yes ] || [ ${#node_devices[@]} -eq 0 ] || die "bus=node0/node1 needs --numa"
if [ "$numa" = yes ]; then
    [ "$iommu" = yes ] || die "--numa needs --iommu (the q35 machine)"
    [ "$smp" -ge 2 ] && [ $((smp % 2)) -eq 0 ] || die "--numa needs an even --smp"
    case $mem in
        *G) mib=$((${mem%G} * 1024)) ;;
        *M) mib=${mem%M} ;;
        *) die "--numa needs --mem in M or G" ;;
    esac
    half=$((smp / 2))
    # A socket per node: CPUs sharing a cache on two nodes make the
    # kernel warn at boot.
    smp_spec="$smp,sockets=2,cores=$half,threads=1"
    # shellcheck disable=SC2054 # the commas are QEMU's
    numa_opts=(-object "memory-backend-ram,id=numa-mem0,size=$((mib / 2))M"
              -object "memory-backend-ram,id=numa-mem1,size=$((mib - mib / 2))M"
              -numa "node,nodeid=0,cpus=0-$((half - 1)),memdev=numa-mem0"
              -numa "node,nodeid=1,cpus=$half-$((smp - 1)),memdev=numa-mem1"
              -device pxb-pcie,id=numa0-bridge,bus_nr=64,numa_node=0,bus=pcie.0
              -device pcie-root-port,id=node0,bus=numa0-bridge,chassis=1,slot=0
              -device pxb-pcie,id=numa1-bridge,bus_nr=128,numa_node=1,bus=pcie.0
              -device pcie-root-port,id=node1,bus=numa1-bridge,chassis=2,slot=0)
fi
console_log=$ctl/console.log
# shellcheck disable=SC2054 # the commas are QEMU's
qemu=(qemu-system-x86_64 -accel tcg -cpu max -smp "$smp_spec" -m "$mem"
      -nodefaults -nographic -no-reboot -nic none
      -kernel "$kernel" -initrd "$initrd" -append "$append"
      -serial "file:$console_log"
      -chardev stdio,id=out,signal=off -serial chardev:out
      "${machine[@]+"${machine[@]}"}" "${devices[@]+"${devices[@]}"}"
      "${virtfs[@]}" "${numa_opts[@]+"${numa_opts[@]}"}"
      "${node_devices[@]+"${node_devices[@]}"}")

start=$(date +%s.%N)
# (9>&-: only vm-run itself holds the lock, not what it leaves behind.)
"${qemu[@]}" < /dev/null 9>&- &
qemu_pid=$!
# The time limit: a hung guest never powers off by itself.
sleep "$timeout" 9>&- &
sleeper=$!
finished=
qemu_status=0
wait -n -p finished "$qemu_pid" "$sleeper" || qemu_status=$?
timed_out=no
if [ "$finished" != "$qemu_pid" ]; then
    timed_out=yes
    kill "$qemu_pid" 2>/dev/null || true
    wait "$qemu_pid" 2>/dev/null || true
else
    kill "$sleeper" 2>/dev/null || true
fi
qemu_pid=
sleeper=
elapsed=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')

# Keep the logs of the last run where people will look for them.
cp "$console_log" "$vmdir/last-console.log" 2>/dev/null || : > "$vmdir/last-console.log"
if [ -s "$ctl/dmesg.log" ]; then
    cp "$ctl/dmesg.log" "$vmdir/last-dmesg.log"
else
    # The guest died before saving it: its console has the same messages.
    grep -v '^TBVM-' "$vmdir/last-console.log" > "$vmdir/last-dmesg.log" || true
fi

# Kernel log from our module loading on (the boot itself is rarely of interest).
show_dmesg() {
    say "guest kernel log (full log: $vmdir/last-dmesg.log):"
    awk '/tbvm: loading modules/ { on = 1 } on' "$vmdir/last-dmesg.log" > "$ctl/tail.log"
    if [ -s "$ctl/tail.log" ]; then cat "$ctl/tail.log" >&2; else cat "$vmdir/last-dmesg.log" >&2; fi
}

status=
step=
[ -f "$ctl/status" ] && read -r status step < "$ctl/status"

problems=$(grep -E 'Oops|BUG:|WARNING:|KASAN|general protection' "$vmdir/last-dmesg.log" || true)
report_problems() {
    [ -n "$problems" ] || return 0
    say "kernel problems in the guest log:"
    echo "$problems" >&2
}

if [ "$timed_out" = yes ]; then
    say "TIMEOUT: killed the VM after $timeout s (kernel $kver)"
    report_problems
    show_dmesg
    exit 124
fi
if [ -z "$status" ]; then
    if grep -q 'Kernel panic' "$vmdir/last-console.log"; then
        what="the guest kernel panicked"
    elif grep -q 'tbvm: running command' "$vmdir/last-console.log"; then
        what="the VM stopped while the command ran"
    else
        what="the VM stopped before running the command (boot failure?)"
    fi
    say "FAILED: $what (QEMU exit status $qemu_status, kernel $kver)"
    report_problems
    say "end of the serial console (all of it: $vmdir/last-console.log):"
    tail -n 60 "$vmdir/last-console.log" >&2
    exit 125
fi
if [ "$step" != command ]; then
    say "FAILED: loading modules, at $step (status $status):"
    cat "$ctl/modload.log" >&2
    report_problems
    show_dmesg
    exit 125
fi

report_problems
say "command exited with status $status (VM ran ${elapsed} s)"
if [ "$status" -ne 0 ]; then
    show_dmesg
    exit "$status"
fi
if [ -n "$problems" ] && [ "$check_dmesg" = yes ]; then
    show_dmesg
    say "FAILED: --check-dmesg: kernel problems reported above"
    exit 123
fi
exit 0
