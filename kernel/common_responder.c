// SPDX-License-Identifier: GPL-2.0
/*
 * Portable engine, responder: src/common/tb_responder.c built into tbrdma.ko
 * unchanged (Kbuild cannot name objects outside the module directory).
 */
#include "tb_responder.c"
