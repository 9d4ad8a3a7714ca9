// SPDX-License-Identifier: GPL-2.0
/*
 * Portable engine, link protocol: src/common/tb_link.c built into tbrdma.ko
 * unchanged (Kbuild cannot name objects outside the module directory).
 */
#include "tb_link.c"
