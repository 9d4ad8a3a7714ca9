// SPDX-License-Identifier: GPL-2.0
/*
 * Shared receive queues: the engine's (tb_srq_create()), whose ring of
 * posted receives the process maps and produces, as it does a queue
 * pair's own; each queue pair on one takes its receives in turn and
 * completes them in its own receive completion ring. No limit events:
 * srq_limit stays 0.
 */
#include <rdma/uverbs_ioctl.h>

#include "rdma/tbrdma_ib_abi.h"
#include "tbrdma_client.h"
#include "tbrdma_ib.h"

int tbrdma_ib_create_srq(struct ib_srq *ibsrq, struct ib_srq_init_attr *init,
			 struct ib_udata *udata)
{
	struct tbrdma_ib_srq *srq = to_tbsrq(ibsrq);
	struct tbrdma_ib_ucontext *uc =
		rdma_udata_to_drv_context(udata, struct tbrdma_ib_ucontext,
					  ibuc);
	struct tbrdma_ib_create_srq_resp resp = {};
	struct tbrdma_client_ring rwq;
	struct ib_srq_attr *a = &init->attr;
	u64 n;
	int ret;

	if (!udata || init->srq_type != IB_SRQT_BASIC)
		return -EOPNOTSUPP;
	/* An entry per scatter entry: a receive is a run of them. */
	srq->max_sge = max(a->max_sge, 1u);
	n = (u64)a->max_wr * srq->max_sge;
	if (udata->inlen || !a->max_wr || n > tbrdma_client_max_ring() ||
	    a->max_sge > TBRDMA_IB_MAX_RECV_SGE || a->srq_limit)
		return -EINVAL;
	srq->ring = tbrdma_ib_ring_new(&uc->ibuc,
				       roundup_pow_of_two(max_t(u64, n, 2)),
				       sizeof(struct tbrdma_rwqe));
	if (IS_ERR(srq->ring))
		return PTR_ERR(srq->ring);
	rwq.mem = srq->ring->mem;
	rwq.entries = srq->ring->entries;
	ret = tbrdma_client_srq_create(to_tbpd(ibsrq->pd)->cpd.pd, &rwq, &srq->srq);
	if (ret)
		goto fail;
	a->max_wr = srq->ring->entries / srq->max_sge;
	a->max_sge = srq->max_sge;
	resp.rwq_offset = rdma_user_mmap_get_offset(&srq->ring->entry);
	resp.rwq_length = srq->ring->len;
	resp.rwq_entries = srq->ring->entries;
	ret = ib_copy_to_udata(udata, &resp,
			       min_t(size_t, udata->outlen, sizeof(resp)));
	if (!ret)
		return 0;
	tbrdma_client_srq_destroy(srq->srq);
fail:
	tbrdma_ib_ring_remove(srq->ring);
	return ret;
}

/* Its queue pairs are gone (the core counts them). */
int tbrdma_ib_destroy_srq(struct ib_srq *ibsrq, struct ib_udata *udata)
{
	struct tbrdma_ib_srq *srq = to_tbsrq(ibsrq);
	int ret;

	ret = tbrdma_client_srq_destroy(srq->srq);
	if (ret)
		return ret;
	tbrdma_ib_ring_remove(srq->ring);
	return 0;
}

/* Neither resizing nor a limit event. */
int tbrdma_ib_modify_srq(struct ib_srq *ibsrq, struct ib_srq_attr *attr,
			 enum ib_srq_attr_mask mask, struct ib_udata *udata)
{
	if ((mask & IB_SRQ_MAX_WR) || ((mask & IB_SRQ_LIMIT) && attr->srq_limit))
		return -EOPNOTSUPP;
	return 0;
}

int tbrdma_ib_query_srq(struct ib_srq *ibsrq, struct ib_srq_attr *attr)
{
	struct tbrdma_ib_srq *srq = to_tbsrq(ibsrq);

	attr->max_wr = srq->ring->entries / srq->max_sge;
	attr->max_sge = srq->max_sge;
	attr->srq_limit = 0;
	return 0;
}
