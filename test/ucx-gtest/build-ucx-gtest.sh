#!/usr/bin/env bash
# Builds the UCT part of UCX's own test suite (test/gtest of the UCX source
# the project fetches, build-deps/ucx-src), and its UCP peer-failure tests,
# against the installed UCX, with "tb" added to its UCT transport, memory
# domain and UCP transport lists, and prints the path of the binary.
#
#   build-ucx-gtest.sh UCX_SRC UCX_CONFIG_H OUT
#
# OUT is where the binary goes. UCX's gtest needs UCX's internal headers and
# its config.h, both of the installed version (as the transport does), so
# it links with the installed libraries (and, as UCX's own build does, with
# its IB module, whose internals the tag-offload and UCP test code use).
# Compiled: the common test code, googletest, every UCT test file but the
# IB-only ones, the perftest library UCT's performance tests call, and of
# UCP's tests the peer-failure ones (one status for the error handler and
# every later send, with am and rma lanes, bcopy and zcopy, force close).
#
# About a minute and a half on two cores; built once per check run.
set -euo pipefail

ucx_src=${1:?UCX source tree} config_h=${2:?UCX config.h} out=${3:?output path}
me=build-ucx-gtest
die() { echo "$me: $*" >&2; exit 1; }

[ -f "$ucx_src/test/gtest/uct/uct_test.h" ] || die "$ucx_src has no test/gtest (not a UCX source tree?)"
[ -f "$config_h" ] || die "$config_h missing (contrib/get-ucx-source.sh writes it)"
ucx_src=$(cd "$ucx_src" && pwd)

# UCX builds its tests with -Werror; their warnings are UCX's, not ours.
cxxflags="-O2 -g0 -std=gnu++11 -fopenmp -w"
cflags="-O2 -g0 -fopenmp -w"
ucx_modules=$(pkg-config --variable=libdir ucx)/ucx
[ -f "$ucx_modules/libuct_ib.so.0" ] || die "$ucx_modules/libuct_ib.so.0 missing (UCX's IB module)"
libs="-fopenmp $ucx_modules/libuct_ib.so.0 -Wl,-rpath,$ucx_modules -lucp -luct -lucs -lucm -lpthread -ldl -lrt"

work=$(mktemp -d "${TMPDIR:-/tmp}/tb-ucx-gtest.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp -r "$ucx_src/test/gtest" "$work/gtest"
cp -r "$ucx_src/src/tools/perf" "$work/perf"
mkdir "$work/inc"
cp "$config_h" "$work/inc/config.h"

# tb joins the transports every generic UCT test is instantiated for, and
# the memory domains of the md tests; a list that moved is an error, not a
# silent run without tb.
add_to_list() {  # FILE LAST-ENTRY-REGEX REPLACEMENT
    grep -qE "$2" "$1" || die "$1: no line matching '$2' (UCX's lists moved?)"
    sed -i -E "s/$2/$3/" "$1"
}
add_to_list "$work/gtest/uct/uct_test.h" '^( +)knem$' '\1knem, \\\n\1tb'
add_to_list "$work/gtest/uct/test_md.cc" '^( +)rdmacm \\$' '\1rdmacm, \\\n\1tb \\'
add_to_list "$work/gtest/ucp/ucp_test.h" '^( +)UCP_INSTANTIATE_TEST_CASE_TLS\(_test_case, tcp, +"tcp"\)$' \
    '\1UCP_INSTANTIATE_TEST_CASE_TLS(_test_case, tcp, "tcp") \\\n\1UCP_INSTANTIATE_TEST_CASE_TLS(_test_case, tb, "tb")'

g=gtest
srcs=$(cd "$work" && ls $g/common/*.cc $g/uct/*.cc $g/uct/*/*.cc $g/common/googletest/*.cc \
           $g/ucp/ucp_test.cc $g/ucp/ucp_datatype.cc $g/ucp/test_ucp_peer_failure.cc \
           perf/lib/*.c perf/lib/*.cc 2>/dev/null |
       grep -v -e "^$g/uct/ib/" -e "^$g/common/googletest/gtest_main.cc$")
objs=$(for s in $srcs; do echo "obj/$s.o"; done | tr '\n' ' ')

cat > "$work/Makefile" <<EOF
CPPFLAGS = -DHAVE_CONFIG_H -Iinc -I$ucx_src/src -I$g -I$g/common/googletest -I$ucx_src/test -I. \\
	-DTOP_SRCDIR=\\"$ucx_src\\"
ucx_gtest: $objs
	g++ -o \$@ \$^ $libs
obj/%.cc.o: %.cc
	@mkdir -p \$(dir \$@)
	g++ \$(CPPFLAGS) $cxxflags -c \$< -o \$@
obj/%.c.o: %.c
	@mkdir -p \$(dir \$@)
	gcc \$(CPPFLAGS) $cflags -c \$< -o \$@
EOF

start=$(date +%s)
echo "$me: building UCX's UCT tests ($(echo "$srcs" | wc -w) files) in $work" >&2
make -s -C "$work" -j"${TB_GTEST_JOBS:-2}" ucx_gtest >&2 || die "build failed"
echo "$me: built in $(( $(date +%s) - start )) s" >&2

cp "$work/ucx_gtest" "$out.tmp" && mv "$out.tmp" "$out"
echo "$out"
