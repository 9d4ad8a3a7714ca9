# shellcheck shell=bash
# Sourced by run-distro.sh and run-packages.sh: what both do to a Debian
# root they run things in.

# Mounts made in a root, undone in reverse order by unmount_all (which the
# sourcing script calls from its EXIT trap).
mounts=()
# shellcheck disable=SC2317  # called by the EXIT trap
unmount_all() {
    local i
    for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount -R "${mounts[i]}" 2>/dev/null; done
    mounts=()
}

# mount_system ROOT: the host's /proc, /sys and /dev in ROOT (recursive,
# and slave, so that unmounting there never propagates back here) and its
# resolver, for chroot.
mount_system() {
    local d
    for d in proc sys dev; do
        mount --rbind "/$d" "$1/$d" && mount --make-rslave "$1/$d" && mounts+=("$1/$d") ||
            return 1
    done
    cp /etc/resolv.conf "$1/etc/resolv.conf" 2>/dev/null
    return 0
}

# apt_snapshot ROOT: the archive served here is a snapshot, whose Release
# files may be past their Valid-Until date (unstable's by weeks): ROOT's
# apt does not check that date. Signatures are still checked.
apt_snapshot() {
    echo 'Acquire::Check-Valid-Until "false";' > "$1/etc/apt/apt.conf.d/90tb-snapshot"
}
