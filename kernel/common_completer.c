// SPDX-License-Identifier: GPL-2.0
/*
 * Portable engine, completer: src/common/tb_completer.c built into tbrdma.ko
 * unchanged (Kbuild cannot name objects outside the module directory).
 */
#include "tb_completer.c"
