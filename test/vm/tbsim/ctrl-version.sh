#!/usr/bin/env bash
# Prints the protocol version this source tree speaks (TB_CTRL_VERSION_MAX
# in src/common/tb_ctrl.h), so the tests of a mismatched peer follow it.
#   ctrl-version.sh TOP_SRCDIR
v=$(sed -n 's/^#define TB_CTRL_VERSION_MAX \([0-9]*\)u$/\1/p' "$1/src/common/tb_ctrl.h")
[ -n "$v" ] || { echo "ctrl-version.sh: no TB_CTRL_VERSION_MAX in $1/src/common/tb_ctrl.h" >&2; exit 1; }
echo "$v"
