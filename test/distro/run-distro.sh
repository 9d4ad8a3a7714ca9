#!/usr/bin/env bash
# Builds and tests tb on another Debian release, in a root filesystem made
# with debootstrap from Debian's archive: that release's compiler, Boost,
# hwloc, UCX, Open MPI, autotools, kernel headers, QEMU and kernel.
#
#   run-distro.sh NAME SUITE      e.g. run-distro.sh debian-13 trixie
#
# The root is kept in $TB_DISTRO_CACHE/NAME (default /var/cache/tb/distro),
# outside the clone, and made again when it is older than
# $TB_DISTRO_MAX_DAYS days (default 7) or this script's package set changed.
# The project's files are copied into it (/srv/tb) and
# test/distro/distro-guest.sh runs there under chroot: the project's own
# set-up scripts install what that release needs. Every line of its summary
# is printed as NAME/<suite>: ...; a root that cannot be made (the archive
# of a moving release may be momentarily inconsistent) turns into
# "NAME/root: SKIP (reason)" and exit 77. Exit non-zero when a suite failed.
set -uo pipefail

name=${1:?usage: run-distro.sh NAME SUITE}
suite=${2:?usage: run-distro.sh NAME SUITE}
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
cache=${TB_DISTRO_CACHE:-/var/cache/tb/distro}
root=$cache/$name
mirror=${TB_DISTRO_MIRROR:-http://deb.debian.org/debian}
max_days=${TB_DISTRO_MAX_DAYS:-7}
log=$cache/$name.log

say() { echo "$name: $*"; }
skip() { echo "$name/root: SKIP ($*)"; exit 77; }

[ "$(id -u)" = 0 ] || skip "needs root for debootstrap and chroot"
mkdir -p "$cache" || skip "cannot create $cache"
if ! command -v debootstrap > /dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q \
        --no-install-recommends debootstrap > "$log" 2>&1 || skip "cannot install debootstrap (log: $log)"
fi

# What the root starts with; the project's set-up scripts add the rest.
# A change here makes the root again.
base=(--variant=minbase "--include=ca-certificates,git" "$suite" ROOT "$mirror")
stamp="debootstrap ${base[*]}"
fresh() {
    [ -f "$root/.tb-root" ] && [ "$(cat "$root/.tb-root")" = "$stamp" ] &&
        [ -z "$(find "$root/.tb-root" -mtime +"$max_days")" ]
}

# shellcheck source-path=SCRIPTDIR source=root-lib.sh
. "$here/root-lib.sh"
trap unmount_all EXIT

start=$SECONDS
if ! fresh; then
    say "making the $suite root in $root (debootstrap)"
    tmp=$cache/.$name.new
    rm -rf "$tmp" "$root.old"
    if ! debootstrap "${base[@]/ROOT/$tmp}" > "$log" 2>&1; then
        tail -n 5 "$log" | sed "s/^/$name: /"
        rm -rf "$tmp"
        skip "debootstrap of $suite failed, the archive may be mid-update (log: $log)"
    fi
    apt_snapshot "$tmp"
    echo "$stamp" > "$tmp/.tb-root"
    [ -d "$root" ] && mv "$root" "$root.old"
    mv "$tmp" "$root" && rm -rf "$root.old"
fi
echo "$name/time: root $((SECONDS - start)) s"

# The project's files (tracked and new ones, as in the working tree), over a
# fresh copy: the release's own autotools regenerate the build system. Under
# /srv, which other users can reach (the security suite runs as nobody).
dst=$root/srv/tb
rm -rf "$dst" && mkdir -p "$dst" || skip "cannot write $dst"
(cd "$top" && git ls-files -z --cached --others --exclude-standard | xargs -0 tar -c --no-recursion) | tar -x -C "$dst" ||
    skip "cannot copy the project into $dst"

mount_system "$root" || skip "cannot mount /proc, /sys and /dev in $root"
# The guest's summary lines become NAME/<suite>: ...; everything else
# goes to the log next to the root.
chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
    TB_FUZZ_SECONDS="${TB_FUZZ_SECONDS:-20}" TBK_FUZZ_SECONDS="${TBK_FUZZ_SECONDS:-30}" \
    TB_PKG_SUITE="$suite" \
    bash /srv/tb/test/distro/distro-guest.sh > "$cache/$name.out" 2>&1
rc=$?
grep -E '^TB-SUMMARY ' "$cache/$name.out" | sed "s|^TB-SUMMARY |$name/|"
# A failure shows what each failed test said, with the lines around it,
# from the suites' logs in the root (the CI record holds only what is
# printed here).
if [ "$rc" != 0 ]; then
    failed_re='^(FAIL|ERROR):|^kernel problems'
    for f in "$dst"/build/test/*/*.log; do
        [ "${f##*/}" = test-suite.log ] && continue
        grep -qE "$failed_re" "$f" || continue
        echo "$name: ================ ${f#"$dst"/}"
        grep -E -B8 -A4 "$failed_re" "$f" | head -n 100 | sed "s/^/$name: /"
    done
    tail -n 10 "$cache/$name.out" | sed "s/^/$name: /"
fi
echo "$name/time: total $((SECONDS - start)) s (output: $cache/$name.out)"
exit "$rc"
