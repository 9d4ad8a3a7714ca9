# shellcheck shell=bash disable=SC2034,SC2154 # sourced: the caller sets suite and uses the rest
# Sourced by the runners of vm/xdomain-sim and vm/xdomain-2vm, with $suite
# set to the suite's name: finds (or sets up) the VM and builds tbsim.ko and
# the tbrdma.ko builds for its kernel into build/test/vm/<suite>-work. Sets
# here (test/vm), top, build, vmdir, work, sim_ko, ko and ko_next (see
# build-tbsim.sh). Exits 77 when no VM can boot here, 1 when a module does
# not build, each with the suite's closing line.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
top=${TB_TOP_SRCDIR:-$(cd "$here/../.." && pwd)}
build=${TB_TOP_BUILDDIR:-$top/build}
vmdir=${TB_VM_DIR:-$top/build/vm}
[ -f "$vmdir/kernel-version" ] || "$here/setup-vm.sh" "$vmdir" >&2 ||
    { echo "$suite: no VM can boot here"; exit 77; }
work=$build/test/vm/$suite-work
mods=$("$here/tbsim/build-tbsim.sh" "$(cat "$vmdir/kernel-version")" "$work") ||
    { echo "$suite: 0 passed, 1 failed (could not build the modules)"; exit 1; }
{ read -r sim_ko; read -r ko; read -r ko_next; } <<< "$mods"
