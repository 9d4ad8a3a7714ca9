// SPDX-License-Identifier: GPL-2.0
/*
 * Portable engine, memory regions: src/common/tb_mr.c built into tbrdma.ko
 * unchanged (Kbuild cannot name objects outside the module directory).
 */
#include "tb_mr.c"
