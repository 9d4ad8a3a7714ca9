// SPDX-License-Identifier: GPL-2.0
/*
 * Portable engine, requester: src/common/tb_requester.c built into tbrdma.ko
 * unchanged (Kbuild cannot name objects outside the module directory).
 */
#include "tb_requester.c"
