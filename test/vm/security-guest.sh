#!/bin/bash
# vm/security, inside the VM (run-security.sh loads tbrdma.ko loop=2 first):
# a first local user (daemon) registers memory and runs traffic of its own
# while a second one (nobody) tries every way into it (tbk_attack), then
# the module must unload. Prints PASS:/FAIL: lines; exit 0 only if all
# passed.
#
#   security-guest.sh BINDIR     (BINDIR holds tbk_attack)
set -uo pipefail

bin=${1:?usage: security-guest.sh BINDIR}
failed=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; failed=1; }

echo "mode of /dev/tbrdma: $(stat -c %a /dev/tbrdma)"

work=$(mktemp -d /tmp/security.XXXXXX)
chmod 1777 "$work"
info=$work/victim
as_user() {  # as_user USER GROUP CMD...
    local user=$1 group=$2
    shift 2
    setpriv --reuid="$user" --regid="$group" --clear-groups --inh-caps=-all "$@"
}

as_user daemon daemon timeout -s KILL 900 "$bin/tbk_attack" victim "$info" > "$work/victim.log" 2>&1 &
victim=$!
for _ in $(seq 600); do
    [ -s "$info" ] || ! kill -0 "$victim" 2>/dev/null && break
    sleep 0.1
done
if [ -s "$info" ]; then
    as_user nobody nogroup timeout -s KILL 600 "$bin/tbk_attack" attacker "$info" 2>&1
    rc=$?
    [ $rc -eq 0 ] || echo "attacker: exit status $rc"
    # And what bounds the attacker's memory and contexts.
    as_user nobody nogroup timeout -s KILL 300 "$bin/tbk_attack" limits 2>&1 ||
        echo "limits: exit status $?"
    # The victim stops once the attacker is done, whatever happened to it.
    touch "$info.done"
else
    fail "the victim did not publish its region"
fi
wait "$victim"
rc=$?
sed 's/^\(PASS\|FAIL\): /\1: [victim] /' "$work/victim.log"
[ $rc -eq 0 ] || echo "victim: exit status $rc"

# Ring pages are charged to the memory cgroup: as root, with no
# RLIMIT_MEMLOCK to stop it, a cgroup's memory.max still does.
cg=/sys/fs/cgroup
mount -t cgroup2 none "$cg" 2>/dev/null
if echo +memory > "$cg/cgroup.subtree_control" && mkdir -p "$cg/tbk" &&
    echo $((32 << 20)) > "$cg/tbk/memory.max"; then
    (echo "$BASHPID" > "$cg/tbk/cgroup.procs" && exec "$bin/tbk_attack" memcg 32) 2>&1 ||
        echo "memcg: exit status $?"
    rmdir "$cg/tbk"
else
    fail "no memory cgroup to run the ring charge check in"
fi

if rmmod tbrdma; then
    pass "rmmod tbrdma after the attack"
else
    fail "rmmod tbrdma after the attack"
fi
exit $failed
