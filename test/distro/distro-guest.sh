#!/usr/bin/env bash
# Runs under chroot in a root made by test/distro/run-distro.sh, with the
# project in /srv/tb: the project's own set-up for this release
# (contrib/setup.sh with warnings as errors, test/vm/setup-vm.sh for its
# kernel), then make check, one suite after another (never two VMs at
# once). Summary lines start with "TB-SUMMARY " for run-distro.sh.
set -uo pipefail

cd "$(dirname "$0")/../.." || exit 1
summary() { echo "TB-SUMMARY $*"; }
t0=$SECONDS

# This release's kernel and its headers first, so that configure finds
# them and builds tbrdma.ko for it (as check.sh does on the host).
if ! test/vm/setup-vm.sh > setup-vm.log 2>&1; then
    tail -n 5 setup-vm.log
    summary "vm: 0 passed, 1 failed (test/vm/setup-vm.sh: see setup-vm.log)"
fi
summary "time: VM set-up $((SECONDS - t0)) s"

# The source of this release's UCX may not be in the archive: then the
# UCT transport and the suites that load it are left out, and say why.
t1=$SECONDS
if ! TB_UCX_SOURCE=optional TB_CONFIGURE_FLAGS=--enable-werror contrib/setup.sh; then
    summary "build: 0 passed, 1 failed (contrib/setup.sh with --enable-werror)"
    exit 1
fi
ucx_ver=$(dpkg-query -W -f='${source:Version}' libucx-dev)
summary "build: 1 passed, 0 failed (gcc $(gcc -dumpfullversion), UCX $ucx_ver, kernel headers $(sed -n 's/^KERNEL_HEADERS = //p' build/Makefile))"
summary "time: build $((SECONDS - t1)) s"

t2=$SECONDS
status=0
make -k -C build check || status=$?
contrib/summary.sh build | sed 's/^/TB-SUMMARY /'
grep -qE '^UCX_SRC_DIR = .' build/Makefile ||
    summary "uct-transport: SKIP (the archive has no source of UCX $ucx_ver: apt-get source ucx=$ucx_ver failed)"
summary "time: make check $((SECONDS - t2)) s"
exit "$status"
