#!/usr/bin/env bash
# Prepare a Debian 12 machine and build tb in build/. Safe to run again:
# every step is skipped when its result is already there.
#   TB_CONFIGURE_FLAGS="--enable-sanitizers" contrib/setup.sh
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

# 1. Debian packages: toolchain, autotools with autoconf-archive, UCX (+
#    ucx_info), Boost.Test, hwloc, Open MPI (for the MPI job and tests),
#    clang + compiler-rt (libFuzzer), dpkg-dev (dpkg-source, for the UCX
#    source package), libibverbs-dev and python3 (the libibverbs provider,
#    built with rdma-core's own header script).
pkgs=(build-essential autoconf autoconf-archive automake libtool pkg-config libboost-test-dev
      libhwloc-dev hwloc libucx-dev ucx-utils libopenmpi-dev openmpi-bin
      clang libclang-rt-dev dpkg-dev libibverbs-dev python3)
missing=()
for p in "${pkgs[@]}"; do
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" = installed ] ||
        missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "setup: missing Debian packages: ${missing[*]}" >&2
        echo "setup: install them as root, then run this again:" >&2
        echo "    apt-get update && apt-get install -y --no-install-recommends ${missing[*]}" >&2
        exit 1
    fi
    echo "setup: installing ${missing[*]}"
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi

# 2. UCX internal headers + config.h of the installed UCX: the UCT transport
#    is built against them. TB_UCX_SOURCE=optional builds the rest without
#    it when they cannot be had (test/distro: an archive without the source).
if ! contrib/get-ucx-source.sh; then
    echo "setup: could not fetch the source of the installed UCX (see above); the tb" >&2
    echo "setup: transport needs it: run as root once, or give configure --with-ucx-src" >&2
    [ "${TB_UCX_SOURCE:-required}" = optional ] || exit 1
    echo "setup: TB_UCX_SOURCE=optional: building without the UCT transport" >&2
    TB_CONFIGURE_FLAGS="${TB_CONFIGURE_FLAGS:-} --without-ucx-src"
fi

# 2b. libibverbs' private headers, from the rdma-core source with the
#    installed library's private ABI: the libibverbs provider is built
#    against them. TB_RDMA_CORE_SOURCE=optional builds the rest without it.
if ! contrib/get-rdma-core-source.sh; then
    echo "setup: could not fetch an rdma-core source for the installed libibverbs (see above);" >&2
    echo "setup: the libibverbs provider needs it, or give configure --with-rdma-core-src" >&2
    [ "${TB_RDMA_CORE_SOURCE:-required}" = optional ] || exit 1
    echo "setup: TB_RDMA_CORE_SOURCE=optional: building without the libibverbs provider" >&2
    TB_CONFIGURE_FLAGS="${TB_CONFIGURE_FLAGS:-} --without-rdma-core-src"
fi

# 3. Regenerate configure when configure.ac, a Makefile.am or m4/ changed.
if [ ! -x configure ] || [ -n "$(find . \( -path ./build -o -path ./build-deps -o -path ./.git \) -prune -o \
        \( -name configure.ac -o -name Makefile.am -o -path './m4/*.m4' \) -newer configure -print -quit)" ]; then
    ./autogen.sh
fi

# 4. Configure out of tree in build/ when never done, when configure changed
#    or when TB_CONFIGURE_FLAGS differ from the last run.
flags=${TB_CONFIGURE_FLAGS:-}
mkdir -p build
if [ ! -f build/Makefile ] || [ configure -nt build/Makefile ] ||
   [ "$(cat build/.tb-configure-flags 2>/dev/null)" != "$flags" ]; then
    # shellcheck disable=SC2086  # flags are meant to be split into words
    (cd build && ../configure $flags)
    printf '%s\n' "$flags" > build/.tb-configure-flags
fi

# 5. Build (2 jobs: the reference machines have 2 cores).
make -C build -j2
