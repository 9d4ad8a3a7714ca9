#!/usr/bin/env bash
# Prints the closing line of every suite that ran in a build tree, as
# "<dir>/<suite>: N passed, M failed" (the ucx-* suites and packages under
# their own name), or that a suite did not run. check.sh and test/distro use it.
#
#   summary.sh BUILD_DIR
set -uo pipefail

build=${1:?usage: summary.sh BUILD_DIR}
# The suites that load the UCT transport: configure leaves them out
# without the installed UCX's source (Makefile.am, test/vm/Makefile.am).
# (Without it the MPI suite runs over UCX's tcp, as mpi-tcp.)
needs_uct=(uct/run-uct ucx-gtest/run-ucx-gtest perf/run-perftest ucx-lanes/run-ucx-lanes
           load/run-load vm/run-ucx-kernel vm/run-ucx-gtest vm/run-xdomain-sim vm/run-xdomain-2vm)
have_uct=yes
grep -qE '^UCX_SRC_DIR = .' "$build/Makefile" || have_uct=no
for t in unit/run-unit uct/run-uct ucx-gtest/run-ucx-gtest fuzz/run-fuzz mpi/run-mpi \
         perf/run-perftest ucx-lanes/run-ucx-lanes load/run-load vm/run-kernel-tests \
         vm/run-ucx-kernel vm/run-ucx-gtest vm/xdomain-load vm/run-xdomain-sim \
         vm/run-xdomain-2vm vm/run-security vm/run-verbs distro/run-packages; do
    name=${t#*/}; name=${name#run-}
    case $name in ucx-*|packages) ;; *) name=${t%%/*}/$name ;; esac
    if [ "$have_uct" = no ] && [[ " ${needs_uct[*]} " == *" $t "* ]]; then
        echo "$name: SKIP (no UCX source: the UCT transport was not built)"
        continue
    fi
    log=$build/test/$t.sh.log
    if [ -f "$log" ]; then
        grep -E '^ *(unit|uct|ucx-gtest|fuzz|mpi|mpi-tcp|perftest|ucx-lanes|multirail|load|kernel|xdomain|xdomain-sim|xdomain-2vm|security|vm/verbs|packages)( test cases)?:' "$log" |
            sed -E "s|^ *|${t%%/*}/|; s|^(ucx-[a-z]+)/\1:|\1:|; s|^vm/vm/|vm/|; s|^distro/packages:|packages:|" || echo "$t: no summary line in $log"
    else
        echo "${t%%/*}: did not run (build failed? see the errors above)"
    fi
done
