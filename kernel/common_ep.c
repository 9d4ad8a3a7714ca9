// SPDX-License-Identifier: GPL-2.0
/*
 * Portable engine, endpoints and posting: src/common/tb_ep.c built into tbrdma.ko
 * unchanged (Kbuild cannot name objects outside the module directory).
 */
#include "tb_ep.c"
