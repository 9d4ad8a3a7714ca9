#!/usr/bin/env bash
# Installs tbrdma.ko with DKMS, so that it is rebuilt for every new kernel.
#
#   sudo contrib/dkms-install.sh [-k KVER]   copy, dkms add, build, install
#                                            (for the running kernel, or KVER)
#   sudo contrib/dkms-install.sh --remove    dkms remove, delete the copy
#
# The DKMS source tree is /usr/src/tbrdma-<version>/ (see kernel/dkms.conf):
# kernel/* at its top, below it src/common/*.[ch] with engine-sources.mk and
# include/uapi/rdma/*.h, as in the project's tree.
# Needs dkms and the headers of the running kernel (apt-get install dkms linux-headers-$(uname -r)).
# Then: modprobe tbrdma (udev also loads it when a peer host offers the
# tbrdma service), and optionally the udev rule and the modprobe options of
# contrib/udev/ and contrib/modprobe.d/ (docs/hardware.md).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
name=tbrdma
version=$(sed -n 's/^AC_INIT(\[tb\], *\[\([^]]*\)\].*/\1/p' "$top/configure.ac")
[ -n "$version" ] || { echo "dkms-install.sh: no version in configure.ac" >&2; exit 1; }
src=/usr/src/$name-$version

[ "$(id -u)" -eq 0 ] || { echo "dkms-install.sh: run as root" >&2; exit 1; }
command -v dkms > /dev/null || { echo "dkms-install.sh: install dkms (apt-get install dkms)" >&2; exit 1; }

kargs=()
if [ "${1:-}" = -k ] && [ -n "${2:-}" ]; then
    kargs=(-k "$2")
    shift 2
fi

if [ "${1:-}" = --remove ]; then
    dkms remove "$name/$version" --all 2>/dev/null || true
    rm -rf "$src"
    echo "removed $name $version"
    exit 0
fi

dkms remove "$name/$version" --all > /dev/null 2>&1 || true
rm -rf "$src"
mkdir -p "$src/src/common" "$src/include/uapi/rdma"
cp "$top"/kernel/Kbuild "$top"/kernel/Makefile "$top"/kernel/*.c "$top"/kernel/*.h "$src/"
cp "$top"/src/common/*.c "$top"/src/common/*.h "$top"/src/common/engine-sources.mk "$src/src/common/"
cp "$top"/include/uapi/rdma/*.h "$src/include/uapi/rdma/"
sed "s/^PACKAGE_VERSION=.*/PACKAGE_VERSION=\"$version\"/" "$top/kernel/dkms.conf" > "$src/dkms.conf"
dkms add "$name/$version"
dkms build "$name/$version" "${kargs[@]}"
dkms install "$name/$version" "${kargs[@]}"
echo "installed $name $version for ${kargs[1]:-$(uname -r)}; load it with: modprobe $name"
