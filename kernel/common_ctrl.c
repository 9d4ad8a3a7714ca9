// SPDX-License-Identifier: GPL-2.0
/*
 * Portable control protocol (XDomain login): src/common/tb_ctrl.c built
 * into tbrdma.ko unchanged (Kbuild cannot name objects outside the module
 * directory).
 */
#include "tb_ctrl.c"
