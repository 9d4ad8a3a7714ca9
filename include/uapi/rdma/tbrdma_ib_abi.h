/* SPDX-License-Identifier: ((GPL-2.0 WITH Linux-syscall-note) OR BSD-2-Clause) */
/*
 * tbrdma_ib user/kernel ABI: the private data of uverbs commands between
 * the libibverbs provider (libtbrdma) and tbrdma_ib.ko, which the kernel
 * reports as the device's uverbs ABI version. Fixed-width types, sizes a
 * multiple of 8, reserved fields zero.
 */
#ifndef TBRDMA_IB_ABI_H
#define TBRDMA_IB_ABI_H

#include <linux/types.h>

#define TBRDMA_IB_UVERBS_ABI 1

/* The response to ibv_open_device()'s GET_CONTEXT. */
struct tbrdma_ib_alloc_ucontext_resp {
	__u32 link;		/* tbrdma.ko's link index (QUERY_LINK) */
	__u32 reserved;
};

#endif /* TBRDMA_IB_ABI_H */
