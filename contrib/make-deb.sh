#!/usr/bin/env bash
# "make deb": the Debian packages of tb for the release this runs on,
#
#   tbrdma-dkms   the module's sources for DKMS, dkms.conf, examples of a
#                 udev rule and of module options
#   tb-ucx        libuct_tb in UCX's module directory, tbrun, tbrdma-info,
#                 tb-demo, docs (needs the installed UCX's source)
#   tbrdma-ibverbs-provider
#                 the libibverbs provider (needs the rdma-core source of
#                 contrib/get-rdma-core-source.sh)
#
#   contrib/make-deb.sh [OUTDIR]     (default: build/deb)
#
# Builds with dpkg-buildpackage in a copy of the source (OUTDIR/tb-VERSION),
# installing the build dependencies, fakeroot and lintian first when they
# are missing (as root). Without the UCX source of contrib/get-ucx-source.sh
# tb-ucx is left out (build profile pkg.tb.nouct), without the rdma-core
# source the provider (pkg.tb.noverbs). Prints the paths of the packages
# and lintian's findings.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
out=$(mkdir -p "${1:-$top/build/deb}" && cd "${1:-$top/build/deb}" && pwd)
version=$(sed -n 's/^AC_INIT(\[tb\], *\[\([^]]*\)\].*/\1/p' "$top/configure.ac")
[ -n "$version" ] || { echo "make-deb: no version in configure.ac" >&2; exit 1; }
say() { echo "make-deb: $*" >&2; }

without=()
export TB_UCX_SRC=$top/build-deps/ucx-src TB_UCX_CONFIG_H=$top/build-deps/ucx-config.h
if [ ! -f "$TB_UCX_SRC/src/uct/base/uct_iface.h" ] || [ ! -f "$TB_UCX_CONFIG_H" ]; then
    say "no UCX source in $top/build-deps (contrib/get-ucx-source.sh): no tb-ucx"
    without+=(pkg.tb.nouct)
fi
export TB_RDMA_CORE_SRC=$top/build-deps/rdma-core-src
if [ ! -f "$TB_RDMA_CORE_SRC/libibverbs/driver.h" ]; then
    say "no rdma-core source in $top/build-deps (contrib/get-rdma-core-source.sh): no provider"
    without+=(pkg.tb.noverbs)
fi
profiles=()
[ ${#without[@]} -eq 0 ] || profiles=("--build-profiles=$(IFS=,; echo "${without[*]}")")

# The source, without builds or generated files, and the changelog that
# names this version.
src=$out/tb-$version
rm -rf "$src" "$out"/*.deb "$out"/*.buildinfo "$out"/*.changes
mkdir -p "$src"
tar -C "$top" -c --exclude=./.git --exclude='./build*' --exclude=./autom4te.cache \
    --exclude=./configure --exclude='*/Makefile.in' --exclude=./Makefile.in \
    --exclude=./aclocal.m4 --exclude=./config --exclude='./kernel/common_*.c' . | tar -x -C "$src"
cat > "$src/debian/changelog" <<CHANGELOG
tb ($version) unstable; urgency=medium

  * Built from the project's tree by contrib/make-deb.sh.

 -- tb developers <maintainers@tb-rdma.org>  $(date -R)
CHANGELOG

# The build dependencies (dpkg-checkbuilddeps fails while some are unmet)
# and the tools, installed when missing if we are root.
unmet=$(cd "$src" && dpkg-checkbuilddeps "${profiles[@]/--build-profiles=/-P}" 2>&1) || true
deps=$(sed -n 's/.*[Uu]nmet build dependencies: //p' <<< "$unmet" | sed -E 's/\([^)]*\)//g; s/ \| [^ ]*//g')
for tool in fakeroot lintian; do
    command -v "$tool" > /dev/null || deps+=" $tool"
done
if [ -n "${deps// /}" ]; then
    [ "$(id -u)" = 0 ] || { say "missing: $deps (apt-get install them, or run as root)"; exit 1; }
    say "installing:$deps"
    # shellcheck disable=SC2086  # a list of package names
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q \
        --no-install-recommends $deps >&2
fi
(cd "$src" && dpkg-buildpackage -b -uc -us "${profiles[@]}") > "$out/build.log" 2>&1 || {
    tail -n 30 "$out/build.log" >&2
    say "dpkg-buildpackage failed (log: $out/build.log)"
    exit 1
}
ls "$out"/*.deb
lintian --tag-display-limit 0 "$out"/*.deb | sed 's/^/lintian: /' || true
