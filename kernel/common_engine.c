// SPDX-License-Identifier: GPL-2.0
/*
 * Portable engine, engine core and progress loop: src/common/tb_engine.c built into tbrdma.ko
 * unchanged (Kbuild cannot name objects outside the module directory).
 */
#include "tb_engine.c"
