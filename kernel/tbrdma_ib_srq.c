// SPDX-License-Identifier: GPL-2.0
/*
 * Shared receive queues: the engine's (tb_srq_create()), whose ring of
 * posted receives the process maps and produces, as it does a queue
 * pair's own; each queue pair on one takes its receives in turn and
 * completes them in its own receive completion ring. An armed srq_limit
 * raises IB_EVENT_SRQ_LIMIT_REACHED once, from the engine, when a receive
 * taken leaves fewer posted.
 */
#include <rdma/uverbs_ioctl.h>

#include "rdma/tbrdma_ib_abi.h"
#include "tbrdma_client.h"
#include "tbrdma_ib.h"

/* The engine's srq limit (tbrdma_client_srq_arm()), under its spinlock. */
static void tbrdma_ib_srq_limit_reached(void *arg)
{
	struct tbrdma_ib_srq *srq = arg;
	struct ib_event ev = {
		.device = srq->ibsrq.device,
		.element.srq = &srq->ibsrq,
		.event = IB_EVENT_SRQ_LIMIT_REACHED,
	};

	if (srq->ibsrq.event_handler)
		srq->ibsrq.event_handler(&ev, srq->ibsrq.srq_context);
}

/* Arms the limit (0: disarms), at most max_wr receives. */
static int tbrdma_ib_srq_arm(struct tbrdma_ib_srq *srq, u32 limit)
{
	if (limit > srq->ring->entries / srq->max_sge)
		return -EINVAL;
	return tbrdma_client_srq_arm(srq->srq, limit,
				     tbrdma_ib_srq_limit_reached, srq);
}

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
	    a->max_sge > TBRDMA_IB_MAX_RECV_SGE || a->srq_limit > a->max_wr)
		return -EINVAL;
	srq->user = tbrdma_client_charge(TBRDMA_CHARGE_SRQ);
	if (IS_ERR(srq->user))
		return PTR_ERR(srq->user);
	srq->ring = tbrdma_ib_ring_new(&uc->ibuc,
				       roundup_pow_of_two(max_t(u64, n, 2)),
				       sizeof(struct tbrdma_rwqe));
	if (IS_ERR(srq->ring)) {
		tbrdma_client_uncharge(srq->user, TBRDMA_CHARGE_SRQ);
		return PTR_ERR(srq->ring);
	}
	rwq.mem = srq->ring->mem;
	rwq.entries = srq->ring->entries;
	ret = tbrdma_client_srq_create(to_tbpd(ibsrq->pd)->cpd.pd, &rwq, &srq->srq);
	if (ret)
		goto fail;
	ret = tbrdma_ib_srq_arm(srq, a->srq_limit);
	if (ret)
		goto fail_srq;
	a->max_wr = srq->ring->entries / srq->max_sge;
	a->max_sge = srq->max_sge;
	resp.rwq_offset = rdma_user_mmap_get_offset(&srq->ring->entry);
	resp.rwq_length = srq->ring->len;
	resp.rwq_entries = srq->ring->entries;
	ret = ib_copy_to_udata(udata, &resp,
			       min_t(size_t, udata->outlen, sizeof(resp)));
	if (!ret)
		return 0;
fail_srq:
	tbrdma_client_srq_destroy(srq->srq);
fail:
	tbrdma_ib_ring_remove(srq->ring);
	tbrdma_client_uncharge(srq->user, TBRDMA_CHARGE_SRQ);
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
	tbrdma_client_uncharge(srq->user, TBRDMA_CHARGE_SRQ);
	return 0;
}

/* The limit armed or disarmed; no resizing. */
int tbrdma_ib_modify_srq(struct ib_srq *ibsrq, struct ib_srq_attr *attr,
			 enum ib_srq_attr_mask mask, struct ib_udata *udata)
{
	if (mask & IB_SRQ_MAX_WR)
		return -EOPNOTSUPP;
	if (mask & IB_SRQ_LIMIT)
		return tbrdma_ib_srq_arm(to_tbsrq(ibsrq), attr->srq_limit);
	return 0;
}

int tbrdma_ib_query_srq(struct ib_srq *ibsrq, struct ib_srq_attr *attr)
{
	struct tbrdma_ib_srq *srq = to_tbsrq(ibsrq);

	attr->max_wr = srq->ring->entries / srq->max_sge;
	attr->max_sge = srq->max_sge;
	attr->srq_limit = tbrdma_client_srq_limit(srq->srq);
	return 0;
}
