#!/usr/bin/env bash
# Prints the path of a tbrdma.ko that the test VM's kernel can load: the
# given one (default <top>/build/kernel/tbrdma.ko) when its vermagic is the
# VM's kernel version, else a copy built here against that kernel's headers
# (configure may have chosen other headers, or none).
#
#   kmod-for-vm.sh VM_KERNEL_VERSION WORKDIR [MODULE.ko]
#
# The copy is built in WORKDIR/kmod (log: WORKDIR/kmod.log); only changed
# source files are copied, so a second call is quick. Exit 1, with the
# reason on stderr, when neither works.
set -uo pipefail

kver=${1:?usage: kmod-for-vm.sh VM_KERNEL_VERSION WORKDIR [MODULE.ko]}
work=${2:?usage: kmod-for-vm.sh VM_KERNEL_VERSION WORKDIR [MODULE.ko]}
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
ko=${3:-$top/build/kernel/tbrdma.ko}

vermagic() { modinfo -F vermagic "$1" 2>/dev/null | awk '{ print $1 }'; }

if [ -f "$ko" ] && [ "$(vermagic "$ko")" = "$kver" ]; then
    echo "$ko"
    exit 0
fi
kb=/lib/modules/$kver/build
if [ ! -f "$kb/Makefile" ]; then
    echo "kmod-for-vm: $ko is $( [ -f "$ko" ] && echo "built for $(vermagic "$ko")" || echo missing)," \
         "and there are no headers for the VM kernel $kver ($kb): run test/vm/setup-vm.sh as root" >&2
    exit 1
fi
echo "kmod-for-vm: building tbrdma.ko for the VM kernel $kver" \
     "($ko is $( [ -f "$ko" ] && echo "for $(vermagic "$ko")" || echo missing))" >&2
mkdir -p "$work/kmod"
for f in "$top"/kernel/Kbuild "$top"/kernel/*.[ch]; do
    cmp -s "$f" "$work/kmod/${f##*/}" || cp "$f" "$work/kmod/" || exit 1
done
if ! make -C "$kb" M="$work/kmod" TB_COMMON="$top/src/common" modules > "$work/kmod.log" 2>&1; then
    echo "kmod-for-vm: building tbrdma.ko for $kver failed (log: $work/kmod.log):" >&2
    tail -n 20 "$work/kmod.log" >&2
    exit 1
fi
echo "$work/kmod/tbrdma.ko"
