#!/bin/sh
# Stage 2 of the test VM: PID 1 inside the host's root (read-only 9p), run
# with the host's own /bin/sh. Loads the requested modules, runs the command
# with its output on the second serial port (vm-run.sh's stdout), saves the
# kernel log and the exit status into the control share, powers off.
#
# Control share /run/tbvm (a fresh host directory per run, from vm-run.sh):
#   modules     in: "modprobe NAME [PARAMS]" / "insmod PATH [PARAMS]", in order
#   cmd         in: bash script that runs the command
#   hostname    in: the host's name, which the VM takes too
#   modload.log out: output of the module loading
#   dmesg.log   out: kernel log after the command
#   status      out: "RC STEP" (STEP: command, or the module step that failed)

PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
HOME=/root
TERM=dumb
export PATH HOME TERM
ctl=/run/tbvm
out=/dev/ttyS1

kmsg() { echo "tbvm: $*" > /dev/kmsg; }

finish() {
    dmesg > $ctl/dmesg.log 2>&1
    echo "$1 $2" > $ctl/status
    sync
    # The marker goes to the console (ttyS0): vm-run.sh keeps that log.
    echo "TBVM-EXIT status=$1 step=$2"
    echo o > /proc/sysrq-trigger
    sleep 30
    exit "$1"   # PID 1 exiting panics; panic=-1 and -no-reboot end QEMU
}

# The host's name: the host's /etc/hosts (which we see) knows it.
cat $ctl/hostname > /proc/sys/kernel/hostname
ip link set lo up
# Raw: no \n -> \r\n translation, no echo, on the command's output port.
stty -F $out raw -echo 115200

# Our own modules are insmod'ed by path: load what they depend on first,
# with modprobe from the host's /lib/modules/<version>.
# $3: module parameters, split on blanks on purpose.
load() {
    case $1 in
    modprobe)
        # shellcheck disable=SC2086
        modprobe "$2" $3 ;;
    insmod)
        # (one loaded by an earlier step, as tbsim, need not be in-tree)
        for dep in $(modinfo -F depends "$2" | tr ',' ' '); do
            grep -q "^$dep " /proc/modules || modprobe "$dep" || return
        done
        # shellcheck disable=SC2086
        insmod "$2" $3 ;;
    *)
        echo "unknown module step: $1"; return 1 ;;
    esac
}

kmsg "loading modules"
while read -r how what params; do
    [ -n "$how" ] || continue
    echo "+ $how $what $params" >> $ctl/modload.log
    load "$how" "$what" "$params" >> $ctl/modload.log 2>&1 || finish $? "$how:$what"
done < $ctl/modules

kmsg "running command"
# Through a pipe, so the command's stdout is not a terminal.
{ /bin/bash $ctl/cmd; echo $? > /run/tbvm-rc; } < /dev/null 2>&1 | cat > $out
rc=$(cat /run/tbvm-rc 2>/dev/null || echo 255)
kmsg "command exited with status $rc"
finish "$rc" command
