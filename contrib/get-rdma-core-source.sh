#!/usr/bin/env bash
# Fetch the Debian source of the installed rdma-core into
# build-deps/rdma-core-src, for the libibverbs provider (src/verbs).
#
# Why: a provider is built against libibverbs' private headers
# (infiniband/driver.h and what it includes), which no binary package
# ships, for the private ABI of the installed library (its
# verbs_register_driver_NN). The installed version's source comes first;
# when the archive no longer has it (bookworm's 44.0), the newest source
# from Debian's other releases with the same private ABI serves: that ABI
# is what the provider binds to, and the public headers it is compiled
# with are the installed ones. Only the upstream tarball is used (the
# headers need no Debian patch). apt runs on a configuration of its own in
# build-deps/apt, from the machine's Debian archive, so the machine's apt
# set-up is left alone. Nothing here is ever committed.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
deps=$top/build-deps
src=$deps/rdma-core-src

die() { echo "get-rdma-core-source: $*" >&2; exit 1; }

ver=$(dpkg-query -W -f='${source:Version}' libibverbs-dev 2>/dev/null) ||
    die "libibverbs-dev is not installed (apt-get install libibverbs-dev)"
lib=$(dpkg -L libibverbs1 | grep -m1 '/libibverbs\.so\.1$') ||
    die "libibverbs1 has no libibverbs.so.1"
pabi=$(readelf --dyn-syms -W "$lib" | sed -nE 's/.* verbs_register_driver_([0-9]+)@.*/\1/p' | head -n1)
[ -n "$pabi" ] || die "$lib exports no verbs_register_driver_NN"
want="$ver pabi $pabi"
if [ -f "$src/libibverbs/driver.h" ] && [ "$(cat "$src/.tb-source" 2>/dev/null)" = "$want" ]; then
    echo "get-rdma-core-source: source for rdma-core $ver (private ABI $pabi) already in $src"
    exit 0
fi
command -v python3 > /dev/null || die "python3 not found (apt-get install python3): the build runs rdma-core's make_abi_structs.py"

# The machine's Debian archive, and the releases to look in: its own,
# then stable, testing and unstable.
read -r uri suite < <(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 'Created-By: Packages' |
    grep -vE -- '-(security|updates|backports|proposed-updates) *$' | sort -u | head -n1) ||
    die "no Debian archive in the apt sources"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[ -f "$keyring" ] || die "$keyring is missing (apt-get install debian-archive-keyring)"
apt=$deps/apt
mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial"
for s in $suite stable testing unstable; do
    echo "deb-src [signed-by=$keyring] $uri $s main"
done | awk '!seen[$0]++' > "$apt/sources.list"
aptopts=(-o Dir::Etc::SourceList="$apt/sources.list" -o Dir::Etc::SourceParts=/nonexistent
         -o Dir::State::Lists="$apt/lists" -o Dir::Cache="$apt/cache" -o Dir::State::Status=/dev/null)
apt-get "${aptopts[@]}" -q update > "$apt/update.log" 2>&1 ||
    die "apt-get update of $apt/sources.list failed (log: $apt/update.log)"

# The candidates: the installed version, then the others, newest first.
mapfile -t versions < <({ echo "$ver"; apt-cache "${aptopts[@]}" showsrc rdma-core |
    sed -n 's/^Version: //p' | sort -Vr; } | awk '!seen[$0]++')

# Download and unpack in a scratch dir next to the target, then move it in
# place, so an interrupted run never leaves a half-extracted tree.
tmp=$(mktemp -d "$deps/rdma-core-src.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
for v in "${versions[@]}"; do
    rm -rf "${tmp:?}"/*
    (cd "$tmp" && apt-get "${aptopts[@]}" -q source --tar-only --download-only "rdma-core=$v") \
        > "$tmp.log" 2>&1 || { echo "get-rdma-core-source: no source tarball of rdma-core $v in the archive"; continue; }
    orig=$(find "$tmp" -maxdepth 1 -name 'rdma-core_*.orig.tar.*' | head -n1)
    # The one directory the tarball holds, whatever its name.
    if [ -z "$orig" ] || ! tar -xf "$orig" -C "$tmp" ||
       ! tree=$(find "$tmp" -mindepth 1 -maxdepth 1 -type d | head -n1) ||
       [ ! -f "$tree/libibverbs/driver.h" ]; then
        echo "get-rdma-core-source: the rdma-core $v tarball has no libibverbs/driver.h"
        continue
    fi
    its=$(sed -nE 's/^set\(IBVERBS_PABI_VERSION "([0-9]+)"\)/\1/p' "$tree/CMakeLists.txt")
    if [ "$its" != "$pabi" ]; then
        echo "get-rdma-core-source: rdma-core $v has private ABI ${its:-?}, not $pabi"
        continue
    fi
    echo "$want" > "$tree/.tb-source"
    echo "rdma-core $v" > "$tree/.tb-version"
    rm -rf "$src"
    mv "$tree" "$src"
    rm -f "$tmp.log"
    echo "get-rdma-core-source: rdma-core $v source (private ABI $pabi, for the installed $ver) in $src"
    exit 0
done
die "no source of rdma-core with private ABI $pabi in the archive (tried ${versions[*]}; last log: $tmp.log)"
