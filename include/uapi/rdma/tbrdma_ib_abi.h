/* SPDX-License-Identifier: ((GPL-2.0 WITH Linux-syscall-note) OR BSD-2-Clause) */
/*
 * tbrdma_ib user/kernel ABI: the private data of uverbs commands between
 * the libibverbs provider (libtbrdma) and tbrdma_ib.ko, and the ids of the
 * driver's uverbs methods, which the kernel reports together as the
 * device's uverbs ABI version. Fixed-width types, sizes a
 * multiple of 8, reserved fields zero; one-line comments inside structs
 * (rdma-core's make_abi_structs.py reads them).
 *
 * A queue pair is a context of tbrdma's engine (rdma/tbrdma_abi.h) with
 * four rings in the layout of that header, each mapped from the uverbs
 * file at the offset CREATE_QP answers:
 * - sq: struct tbrdma_sqe, produced by the process (ep is ignored: all go
 *   to the peer queue pair); the kernel takes them on the doorbell
 *   (TBRDMA_IB_METHOD_QP_DOORBELL or its file), or, while its pollers
 *   run, by itself (sq_poll, sq_polled);
 * - cq: struct tbrdma_cqe, the completions of the sq's SQEs;
 * - rwq: struct tbrdma_rwqe, the posted receives, produced by the process,
 *   an entry per scatter entry (TBRDMA_RWQE_MORE);
 * - rcq: struct tbrdma_cqe, the completions of those receives.
 * For a completion event on a completion queue the process asks the kernel
 * for one (REQ_NOTIFY_CQ), then arms the cq and rcq rings of the queue
 * pairs using it (armed = 1): a completion in an armed ring raises the
 * event asked for, once. Armed rings alone raise none (ABI 6).
 */
#ifndef TBRDMA_IB_ABI_H
#define TBRDMA_IB_ABI_H

#include <linux/types.h>
#include <rdma/ib_user_ioctl_cmds.h>

#define TBRDMA_IB_UVERBS_ABI 6

/*
 * Methods of the uverbs QP object, in the driver's namespace: the
 * doorbell, whose one attribute is the queue pair's handle; and the same
 * doorbell as a file of its own, whose number (a __u32) it answers, opened
 * close-on-exec, rung with TBRDMA_IOC_QP_DOORBELL (rdma/tbrdma_abi.h). That
 * ioctl answers EINVAL outside RTS and ERR, and EIO once the queue pair is
 * destroyed or its device gone.
 */
enum tbrdma_ib_qp_methods {
	TBRDMA_IB_METHOD_QP_DOORBELL = (1U << UVERBS_ID_NS_SHIFT),
	TBRDMA_IB_METHOD_QP_DOORBELL_FD,
};

enum tbrdma_ib_qp_doorbell_attrs {
	TBRDMA_IB_ATTR_DOORBELL_QP = (1U << UVERBS_ID_NS_SHIFT),
};

enum tbrdma_ib_qp_doorbell_fd_attrs {
	TBRDMA_IB_ATTR_DOORBELL_FD_QP = (1U << UVERBS_ID_NS_SHIFT),
	TBRDMA_IB_ATTR_DOORBELL_FD_FD,
};

/* The response to ibv_open_device()'s GET_CONTEXT. */
struct tbrdma_ib_alloc_ucontext_resp {
	__u32 link;		/* tbrdma.ko's link index (QUERY_LINK) */
	__u32 link_flags;	/* enum tbrdma_link_flags of the link */
};

/* The response to CREATE_QP: where the rings are and their sizes. */
struct tbrdma_ib_create_qp_resp {
	__aligned_u64 sq_offset;
	__aligned_u64 cq_offset;
	__aligned_u64 rwq_offset;
	__aligned_u64 rcq_offset;
	__u32 sq_length;	/* bytes to map: control block and entries */
	__u32 cq_length;
	__u32 rwq_length;
	__u32 rcq_length;
	__u32 sq_entries;	/* a power of two, as are the others */
	__u32 cq_entries;
	__u32 rwq_entries;
	__u32 rcq_entries;
};

/*
 * The response to CREATE_SRQ: its ring of posted receives (struct
 * tbrdma_rwqe), which the queue pairs created on it have instead of rwq
 * (their rwq_length is 0).
 */
struct tbrdma_ib_create_srq_resp {
	__aligned_u64 rwq_offset;
	__u32 rwq_length;
	__u32 rwq_entries;
};

#endif /* TBRDMA_IB_ABI_H */
