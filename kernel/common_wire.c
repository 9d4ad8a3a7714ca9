// SPDX-License-Identifier: GPL-2.0
/*
 * Portable engine, frame header encoding: src/common/tb_wire.c built into tbrdma.ko
 * unchanged (Kbuild cannot name objects outside the module directory).
 */
#include "tb_wire.c"
