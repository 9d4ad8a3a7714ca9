#!/usr/bin/env bash
# Builds tbsim.ko and a tbrdma.ko that binds to it, for the VM kernel.
#
#   build-tbsim.sh VM_KERNEL_VERSION WORKDIR
#
# Prints three paths: WORKDIR/tbsim/tbsim.ko, WORKDIR/tbrdma-sim/tbrdma.ko
# and WORKDIR/tbrdma-next/tbrdma.ko (the same, speaking only the protocol
# version after this build's).
# The second is compiled from kernel/ unchanged; only its module version
# table differs from the hardware build's: modpost takes the CRCs of the
# Thunderbolt functions from tbsim's Module.symvers (KBUILD_EXTRA_SYMBOLS)
# instead of thunderbolt.ko's, whose genksyms CRCs cover structures private
# to drivers/thunderbolt (struct tb_switch, tb_ctl, tb_nhi_ops) that no
# module outside it can reproduce. Logs: WORKDIR/<name>.log.
set -uo pipefail

kver=${1:?usage: build-tbsim.sh VM_KERNEL_VERSION WORKDIR}
work=${2:?usage: build-tbsim.sh VM_KERNEL_VERSION WORKDIR}
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../../.." && pwd)
mkdir -p "$work" && work=$(cd "$work" && pwd) || exit 1
kb=/lib/modules/$kver/build
[ -f "$kb/Makefile" ] || { echo "build-tbsim: no headers for the VM kernel $kver ($kb): run test/vm/setup-vm.sh as root" >&2; exit 1; }

# copy_into DIR FILES...: only files that changed, so a rebuild is quick.
copy_into() {
    local dir=$1 f
    shift
    mkdir -p "$dir"
    for f in "$@"; do
        cmp -s "$f" "$dir/${f##*/}" || cp "$f" "$dir/" || return 1
    done
}
build() {  # build NAME DIR MAKE-ARGS...
    local name=$1 dir=$2
    shift 2
    if ! make -C "$kb" M="$dir" "$@" modules > "$work/$name.log" 2>&1; then
        echo "build-tbsim: building $name for $kver failed (log: $work/$name.log):" >&2
        tail -n 20 "$work/$name.log" >&2
        exit 1
    fi
}

copy_into "$work/tbsim" "$here"/Kbuild "$here"/*.[ch] || exit 1
build tbsim "$work/tbsim"
copy_into "$work/tbrdma-sim" "$top"/kernel/Kbuild "$top"/kernel/*.[ch] || exit 1
build tbrdma-sim "$work/tbrdma-sim" TB_COMMON="$top/src/common" \
    KBUILD_EXTRA_SYMBOLS="$work/tbsim/Module.symvers"

# The same module speaking only the next protocol version, as a later
# tbrdma would: what two hosts with mismatched modules do is tested with it.
next=$(( $("$top/test/vm/tbsim/ctrl-version.sh" "$top") + 1 ))
copy_into "$work/tbrdma-next" "$top"/kernel/Kbuild "$top"/kernel/*.[ch] || exit 1
build tbrdma-next "$work/tbrdma-next" TB_COMMON="$top/src/common" \
    KBUILD_EXTRA_SYMBOLS="$work/tbsim/Module.symvers" \
    KCFLAGS="-DTB_CTRL_VERSION_MIN=${next}u -DTB_CTRL_VERSION_MAX=${next}u"
echo "$work/tbsim/tbsim.ko"
echo "$work/tbrdma-sim/tbrdma.ko"
echo "$work/tbrdma-next/tbrdma.ko"
