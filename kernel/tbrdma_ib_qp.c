// SPDX-License-Identifier: GPL-2.0
/*
 * Queue pairs of a link's RDMA device: each is a context of tbrdma's engine
 * (tbrdma_client_qp_create()) whose four rings the process maps
 * (rdma/tbrdma_ib_abi.h), so it posts and polls without system calls. The
 * kernel's part is the IB state machine: RTR connects the context to its
 * peer queue pair (the destination GID names the peer's device), RTS sets
 * its retries, ERR flushes it, RESET starts it over; and the doorbell, a
 * driver method of the uverbs QP object. A UD queue pair is a datagram
 * context: RTR opens it to datagrams with its Q_Key, and each work
 * request names its destination (the provider's address handles are the
 * process's own).
 *
 * A queue pair of a shared receive queue (tbrdma_ib_srq.c) has no
 * receive ring of its own; its receive completions still go to its rcq.
 */
#include <linux/file.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <rdma/ib_cache.h>
#define UVERBS_MODULE_NAME tbrdma_ib
#include <rdma/uverbs_named_ioctl.h>

#include "rdma/tbrdma_ib_abi.h"
#include "tbrdma_client.h"
#include "tbrdma_ib.h"

static const u32 tbrdma_ib_ring_entry[TBRDMA_IB_RINGS] = {
	[TBRDMA_IB_SQ] = sizeof(struct tbrdma_sqe),
	[TBRDMA_IB_CQ] = sizeof(struct tbrdma_cqe),
	[TBRDMA_IB_RWQ] = sizeof(struct tbrdma_rwqe),
	[TBRDMA_IB_RCQ] = sizeof(struct tbrdma_cqe),
};

static struct tbrdma_ib_qp *to_tbqp(struct ib_qp *ibqp)
{
	return container_of(ibqp, struct tbrdma_ib_qp, ibqp);
}

static void tbrdma_ib_rings_remove(struct tbrdma_ib_qp *qp)
{
	int i;

	for (i = 0; i < TBRDMA_IB_RINGS; i++)
		tbrdma_ib_ring_remove(qp->ring[i]);
}

/* Runs under the engine's spinlock: the handler of the CQ that got entries. */
static void tbrdma_ib_qp_notify(void *arg, int recv)
{
	struct tbrdma_ib_qp *qp = arg;

	tbrdma_ib_cq_event(recv ? qp->ibqp.recv_cq : qp->ibqp.send_cq);
}

/*
 * A queue's size for wr entries: a power of two of at least 2 and at most
 * tbrdma.ko's max_ring_entries.
 */
static int tbrdma_ib_queue_size(u64 wr, u32 *n)
{
	if (wr > tbrdma_client_max_ring())
		return -EINVAL;
	*n = roundup_pow_of_two(max_t(u32, wr, 2));
	return 0;
}

static int tbrdma_ib_qp_check(const struct ib_qp_init_attr *init,
			      struct ib_udata *udata)
{
	const struct ib_qp_cap *cap = &init->cap;

	/* Queue pairs are the process's, with rings it maps. */
	if (!udata || (init->qp_type != IB_QPT_RC &&
		       init->qp_type != IB_QPT_UD))
		return -EOPNOTSUPP;
	if (init->create_flags)
		return -EOPNOTSUPP;
	if (cap->max_send_sge > TBRDMA_IB_MAX_SEND_SGE ||
	    cap->max_recv_sge > TBRDMA_IB_MAX_RECV_SGE ||
	    cap->max_inline_data > TBRDMA_INLINE_MAX)
		return -EINVAL;
	if (udata->inlen)
		return -EINVAL;
	return 0;
}

static int tbrdma_ib_qp_rings(struct tbrdma_ib_qp *qp, struct ib_ucontext *ibuc,
			      const u32 *entries)
{
	struct tbrdma_ib_ring *r;
	int i;

	for (i = 0; i < TBRDMA_IB_RINGS; i++) {
		if (!entries[i])
			continue;	/* receives of a shared queue */
		r = tbrdma_ib_ring_new(ibuc, entries[i],
				       tbrdma_ib_ring_entry[i]);
		if (IS_ERR(r))
			return PTR_ERR(r);
		qp->ring[i] = r;
	}
	return 0;
}

/* A ring's place in the response; none (a shared queue's QP): zeros. */
static void tbrdma_ib_ring_resp(const struct tbrdma_ib_ring *r, __u64 *offset,
				__u32 *length, __u32 *entries)
{
	if (!r)
		return;
	*offset = rdma_user_mmap_get_offset(&r->entry);
	*length = r->len;
	*entries = r->entries;
}

static void tbrdma_ib_qp_resp(const struct tbrdma_ib_qp *qp,
			      struct tbrdma_ib_create_qp_resp *resp)
{
	struct tbrdma_ib_ring *const *r = qp->ring;

	memset(resp, 0, sizeof(*resp));
	tbrdma_ib_ring_resp(r[TBRDMA_IB_SQ], &resp->sq_offset,
			    &resp->sq_length, &resp->sq_entries);
	tbrdma_ib_ring_resp(r[TBRDMA_IB_CQ], &resp->cq_offset,
			    &resp->cq_length, &resp->cq_entries);
	tbrdma_ib_ring_resp(r[TBRDMA_IB_RWQ], &resp->rwq_offset,
			    &resp->rwq_length, &resp->rwq_entries);
	tbrdma_ib_ring_resp(r[TBRDMA_IB_RCQ], &resp->rcq_offset,
			    &resp->rcq_length, &resp->rcq_entries);
}

int tbrdma_ib_create_qp(struct ib_qp *ibqp, struct ib_qp_init_attr *init,
			struct ib_udata *udata)
{
	struct tbrdma_ib_qp *qp = to_tbqp(ibqp);
	struct tbrdma_ib_ucontext *uc =
		rdma_udata_to_drv_context(udata, struct tbrdma_ib_ucontext,
					  ibuc);
	struct tbrdma_client_qp_attr a = {};
	struct tbrdma_ib_create_qp_resp resp;
	u32 entries[TBRDMA_IB_RINGS], per_wr, per_recv = 1;
	int ret;

	ret = tbrdma_ib_qp_check(init, udata);
	/*
	 * An SQE per scatter entry (the provider splits work requests), and
	 * a UD one's GRH in front.
	 */
	per_wr = max(init->cap.max_send_sge, 1u) +
		 (init->qp_type == IB_QPT_UD);
	if (!ret)
		ret = tbrdma_ib_queue_size((u64)init->cap.max_send_wr * per_wr,
					   &entries[TBRDMA_IB_SQ]);
	if (ret)
		return ret;
	if (init->srq) {
		entries[TBRDMA_IB_RWQ] = 0;
		/* It may take every receive of the shared queue. */
		entries[TBRDMA_IB_RCQ] = to_tbsrq(init->srq)->ring->entries;
	} else {
		/* An entry per scatter entry: a receive is a run of them. */
		per_recv = max(init->cap.max_recv_sge, 1u);
		ret = tbrdma_ib_queue_size((u64)init->cap.max_recv_wr * per_recv,
					   &entries[TBRDMA_IB_RWQ]);
		if (ret)
			return ret;
		entries[TBRDMA_IB_RCQ] = entries[TBRDMA_IB_RWQ];
	}
	/* A completion for each entry of its queue: neither overflows. */
	entries[TBRDMA_IB_CQ] = entries[TBRDMA_IB_SQ];
	mutex_init(&qp->lock);
	qp->state = IB_QPS_RESET;
	ret = tbrdma_ib_qp_rings(qp, &uc->ibuc, entries);
	if (ret)
		goto fail;

	a.pd = to_tbpd(ibqp->pd)->cpd.pd;
	a.sq.mem = qp->ring[TBRDMA_IB_SQ]->mem;
	a.sq.entries = entries[TBRDMA_IB_SQ];
	a.cq.mem = qp->ring[TBRDMA_IB_CQ]->mem;
	a.cq.entries = entries[TBRDMA_IB_CQ];
	if (init->srq) {
		a.srq = to_tbsrq(init->srq)->srq;
	} else {
		a.rwq.mem = qp->ring[TBRDMA_IB_RWQ]->mem;
		a.rwq.entries = entries[TBRDMA_IB_RWQ];
	}
	a.rcq.mem = qp->ring[TBRDMA_IB_RCQ]->mem;
	a.rcq.entries = entries[TBRDMA_IB_RCQ];
	a.dgram = init->qp_type == IB_QPT_UD;
	a.link = to_tbdev(ibqp->device)->link;
	a.notify = tbrdma_ib_qp_notify;
	a.notify_arg = qp;
	qp->kc = tbrdma_client_qp_create(&a);
	if (IS_ERR(qp->kc)) {
		ret = PTR_ERR(qp->kc);
		qp->kc = NULL;
		goto fail;
	}
	ibqp->qp_num = tbrdma_client_qp_num(qp->kc);

	init->cap.max_send_sge = max(init->cap.max_send_sge, 1u);
	init->cap.max_send_wr = entries[TBRDMA_IB_SQ] / per_wr;
	if (init->srq) {
		init->cap.max_recv_wr = 0;
		init->cap.max_recv_sge = to_tbsrq(init->srq)->max_sge;
	} else {
		init->cap.max_recv_wr = entries[TBRDMA_IB_RWQ] / per_recv;
		init->cap.max_recv_sge = per_recv;
	}
	init->cap.max_inline_data = TBRDMA_INLINE_MAX;
	qp->attr.cap = init->cap;
	tbrdma_ib_qp_resp(qp, &resp);
	ret = ib_copy_to_udata(udata, &resp,
			       min_t(size_t, udata->outlen, sizeof(resp)));
	if (ret)
		goto fail;
	return 0;

fail:
	if (qp->kc)
		tbrdma_client_qp_destroy(qp->kc);
	tbrdma_ib_rings_remove(qp);
	mutex_destroy(&qp->lock);
	return ret;
}

int tbrdma_ib_destroy_qp(struct ib_qp *ibqp, struct ib_udata *udata)
{
	struct tbrdma_ib_qp *qp = to_tbqp(ibqp);

	/* Nothing writes the rings after this, nor notifies. */
	tbrdma_client_qp_destroy(qp->kc);
	tbrdma_ib_rings_remove(qp);
	mutex_destroy(&qp->lock);
	return 0;
}

/*
 * IB's minimum RNR NAK timer codes (min_rnr_timer) in microseconds: code
 * 0 is the longest, 655.36 ms.
 */
static const u32 tbrdma_ib_rnr_us[32] = {
	655360, 10, 20, 30, 40, 60, 80, 120, 160, 240, 320, 480, 640, 960,
	1280, 1920, 2560, 3840, 5120, 7680, 10240, 15360, 20480, 30720,
	40960, 61440, 81920, 122880, 163840, 245760, 327680, 491520,
};

/*
 * The link the peer's device sends on, when the destination GID is one of
 * a device in this host (U32_MAX when it is not).
 */
static u32 tbrdma_ib_peer_link(const struct ib_qp_attr *attr)
{
	const struct ib_global_route *grh = rdma_ah_read_grh(&attr->ah_attr);

	return tbrdma_ib_gid_link(&grh->dgid);
}

/*
 * Under qp->lock: a UD queue pair takes datagrams with its Q_Key (the new
 * one, if mask has it) from RTR on.
 */
static int tbrdma_ib_qp_qkey(struct tbrdma_ib_qp *qp,
			     const struct ib_qp_attr *attr, int mask)
{
	u32 qkey = mask & IB_QP_QKEY ? attr->qkey : qp->attr.qkey;

	return tbrdma_client_qp_dgram(qp->kc, to_tbdev(qp->ibqp.device)->link,
				      qkey);
}

/* Under qp->lock: into RTR, connected to the destination. */
static int tbrdma_ib_qp_rtr(struct tbrdma_ib_qp *qp, struct ib_qp_attr *attr,
			    int mask)
{
	struct tbrdma_ibdev *d = to_tbdev(qp->ibqp.device);
	u32 code;

	if (qp->ibqp.qp_type == IB_QPT_UD)
		return tbrdma_ib_qp_qkey(qp, attr, mask);

	/* RoCE: a GID to go to; the core resolved it for this port. */
	if (!(rdma_ah_get_ah_flags(&attr->ah_attr) & IB_AH_GRH))
		return -EINVAL;
	if (mask & IB_QP_MIN_RNR_TIMER) {
		code = attr->min_rnr_timer & 31;
		qp->rnr_delay_ns = tbrdma_ib_rnr_us[code] * 1000ull;
	}
	return tbrdma_client_qp_connect(qp->kc, d->link,
					tbrdma_ib_peer_link(attr),
					attr->dest_qp_num);
}

/*
 * Under qp->lock: into RTS, its receiver-not-ready retries and its READs
 * and atomics in flight (max_rd_atomic; 0 counts as 1, so that a READ
 * never waits for ever) set.
 */
static int tbrdma_ib_qp_rts(struct tbrdma_ib_qp *qp, struct ib_qp_attr *attr,
			    int mask)
{
	u32 tries = 0;		/* rnr_retry 7: retry for ever */
	u32 rd = 0;		/* unset: the link's limit alone */

	if (qp->ibqp.qp_type == IB_QPT_UD)
		return mask & IB_QP_QKEY ? tbrdma_ib_qp_qkey(qp, attr, mask) : 0;
	if ((mask & IB_QP_RNR_RETRY) && attr->rnr_retry < 7)
		tries = attr->rnr_retry + 1;
	if (mask & IB_QP_MAX_QP_RD_ATOMIC)
		rd = max_t(u32, attr->max_rd_atomic, 1);
	return tbrdma_client_qp_set_rts(qp->kc, qp->rnr_delay_ns, tries, rd);
}

/*
 * Under qp->lock: back to RESET. What modify_qp set is forgotten, as the
 * engine's context forgets its peer.
 */
static void tbrdma_ib_qp_reset(struct tbrdma_ib_qp *qp)
{
	struct ib_qp_cap cap = qp->attr.cap;

	tbrdma_client_qp_reset(qp->kc);
	memset(&qp->attr, 0, sizeof(qp->attr));
	qp->attr.cap = cap;
	qp->rnr_delay_ns = 0;
}

/* What query_qp reports later, of what this modify_qp set. */
static void tbrdma_ib_qp_keep(struct tbrdma_ib_qp *qp,
			      const struct ib_qp_attr *attr, int mask)
{
	struct ib_qp_attr *a = &qp->attr;

	if (mask & IB_QP_ACCESS_FLAGS)
		a->qp_access_flags = attr->qp_access_flags;
	if (mask & IB_QP_PKEY_INDEX)
		a->pkey_index = attr->pkey_index;
	if (mask & IB_QP_PORT)
		a->port_num = attr->port_num;
	if (mask & IB_QP_QKEY)
		a->qkey = attr->qkey;
	if (mask & IB_QP_PATH_MTU)
		a->path_mtu = attr->path_mtu;
	if (mask & IB_QP_DEST_QPN)
		a->dest_qp_num = attr->dest_qp_num;
	if (mask & IB_QP_RQ_PSN)
		a->rq_psn = attr->rq_psn;
	if (mask & IB_QP_SQ_PSN)
		a->sq_psn = attr->sq_psn;
	if (mask & IB_QP_MAX_DEST_RD_ATOMIC)
		a->max_dest_rd_atomic = attr->max_dest_rd_atomic;
	if (mask & IB_QP_MAX_QP_RD_ATOMIC)
		a->max_rd_atomic = attr->max_rd_atomic;
	if (mask & IB_QP_MIN_RNR_TIMER)
		a->min_rnr_timer = attr->min_rnr_timer;
	if (mask & IB_QP_TIMEOUT)
		a->timeout = attr->timeout;
	if (mask & IB_QP_RETRY_CNT)
		a->retry_cnt = attr->retry_cnt;
	if (mask & IB_QP_RNR_RETRY)
		a->rnr_retry = attr->rnr_retry;
}

int tbrdma_ib_modify_qp(struct ib_qp *ibqp, struct ib_qp_attr *attr,
			int mask, struct ib_udata *udata)
{
	struct tbrdma_ib_qp *qp = to_tbqp(ibqp);
	enum ib_qp_state cur, next;
	int ret = 0;

	if (udata && udata->inlen)
		return -EINVAL;
	if (mask & ~IB_QP_ATTR_STANDARD_BITS)
		return -EOPNOTSUPP;
	mutex_lock(&qp->lock);
	cur = mask & IB_QP_CUR_STATE ? attr->cur_qp_state : qp->state;
	next = mask & IB_QP_STATE ? attr->qp_state : cur;
	if (cur != qp->state ||
	    !ib_modify_qp_is_ok(cur, next, ibqp->qp_type, mask) ||
	    ((mask & IB_QP_PORT) && attr->port_num != 1) ||
	    ((mask & IB_QP_PKEY_INDEX) && attr->pkey_index) ||
	    ((mask & IB_QP_PATH_MTU) && attr->path_mtu > IB_MTU_4096) ||
	    ((mask & IB_QP_MAX_QP_RD_ATOMIC) &&
	     attr->max_rd_atomic > TBRDMA_IB_MAX_RD_ATOMIC) ||
	    ((mask & IB_QP_MAX_DEST_RD_ATOMIC) &&
	     attr->max_dest_rd_atomic > TBRDMA_IB_MAX_RD_ATOMIC)) {
		ret = -EINVAL;
		goto out;
	}
	if (next == IB_QPS_SQD || next == IB_QPS_SQE) {
		ret = -EOPNOTSUPP;
		goto out;
	}
	if (cur != next && next == IB_QPS_RESET)
		tbrdma_ib_qp_reset(qp);
	else if (cur != next && next == IB_QPS_RTR)
		ret = tbrdma_ib_qp_rtr(qp, attr, mask);
	else if (cur != next && next == IB_QPS_RTS)
		ret = tbrdma_ib_qp_rts(qp, attr, mask);
	else if (next == IB_QPS_ERR)
		tbrdma_client_qp_error(qp->kc);
	else if ((next == IB_QPS_RTR || next == IB_QPS_RTS) &&
		 (mask & IB_QP_QKEY))
		ret = tbrdma_ib_qp_qkey(qp, attr, mask);	/* UD: a new key */
	if (ret)
		goto out;
	if (cur != next && next == IB_QPS_RTS)
		tbrdma_client_qp_ready(qp->kc);
	if (mask & IB_QP_ACCESS_FLAGS) {
		u32 access = tbrdma_ib_remote_access(attr->qp_access_flags);

		tbrdma_client_qp_access(qp->kc, access);
	}
	tbrdma_ib_qp_keep(qp, attr, mask);
	qp->state = next;
out:
	mutex_unlock(&qp->lock);
	return ret;
}

int tbrdma_ib_query_qp(struct ib_qp *ibqp, struct ib_qp_attr *attr, int mask,
		       struct ib_qp_init_attr *init)
{
	struct tbrdma_ib_qp *qp = to_tbqp(ibqp);

	mutex_lock(&qp->lock);
	*attr = qp->attr;
	attr->qp_state = qp->state;
	attr->cur_qp_state = qp->state;
	mutex_unlock(&qp->lock);
	attr->path_mig_state = IB_MIG_MIGRATED;
	memset(init, 0, sizeof(*init));
	init->qp_type = ibqp->qp_type;
	init->send_cq = ibqp->send_cq;
	init->recv_cq = ibqp->recv_cq;
	init->cap = attr->cap;
	init->sq_sig_type = IB_SIGNAL_REQ_WR;
	return 0;
}

/*
 * The doorbell, a driver method of the uverbs QP object
 * (TBRDMA_IB_METHOD_QP_DOORBELL): the process posts work requests into the
 * mapped sq, and calls this when no poller takes them. In ERR it flushes
 * what was posted since, receives too. An ioctl: the uverbs core's write()
 * path of a post_send() costs more (docs/verbs.md).
 */
static int
UVERBS_HANDLER(TBRDMA_IB_METHOD_QP_DOORBELL)(struct uverbs_attr_bundle *attrs)
{
	/* Mandatory, and a QP of this file: the core looked it up. */
	struct tbrdma_ib_qp *qp =
		to_tbqp(uverbs_attr_get_obj(attrs, TBRDMA_IB_ATTR_DOORBELL_QP));

	return tbrdma_client_qp_doorbell(qp->kc);
}

DECLARE_UVERBS_NAMED_METHOD(TBRDMA_IB_METHOD_QP_DOORBELL,
			    UVERBS_ATTR_IDR(TBRDMA_IB_ATTR_DOORBELL_QP,
					    UVERBS_OBJECT_QP,
					    UVERBS_ACCESS_READ,
					    UA_MANDATORY));

/*
 * The same doorbell as a file of its own (TBRDMA_IB_METHOD_QP_DOORBELL_FD),
 * whose ioctl skips the uverbs core's parsing and lookups. The number is
 * copied out before the file is installed: a failed copy leaves no file.
 */
static int
UVERBS_HANDLER(TBRDMA_IB_METHOD_QP_DOORBELL_FD)(struct uverbs_attr_bundle *attrs)
{
	struct tbrdma_ib_qp *qp =
		to_tbqp(uverbs_attr_get_obj(attrs,
					    TBRDMA_IB_ATTR_DOORBELL_FD_QP));
	struct file *file;
	u32 fd;
	int ret;

	ret = get_unused_fd_flags(O_CLOEXEC);
	if (ret < 0)
		return ret;
	fd = ret;
	file = tbrdma_client_qp_doorbell_file(qp->kc);
	if (IS_ERR(file)) {
		put_unused_fd(fd);
		return PTR_ERR(file);
	}
	ret = uverbs_copy_to(attrs, TBRDMA_IB_ATTR_DOORBELL_FD_FD, &fd,
			     sizeof(fd));
	if (ret) {
		fput(file);
		put_unused_fd(fd);
		return ret;
	}
	fd_install(fd, file);
	return 0;
}

DECLARE_UVERBS_NAMED_METHOD(TBRDMA_IB_METHOD_QP_DOORBELL_FD,
			    UVERBS_ATTR_IDR(TBRDMA_IB_ATTR_DOORBELL_FD_QP,
					    UVERBS_OBJECT_QP,
					    UVERBS_ACCESS_READ,
					    UA_MANDATORY),
			    UVERBS_ATTR_PTR_OUT(TBRDMA_IB_ATTR_DOORBELL_FD_FD,
						UVERBS_ATTR_TYPE(u32),
						UA_MANDATORY));

ADD_UVERBS_METHODS(tbrdma_ib_qp_obj_tree, UVERBS_OBJECT_QP,
		   &UVERBS_METHOD(TBRDMA_IB_METHOD_QP_DOORBELL),
		   &UVERBS_METHOD(TBRDMA_IB_METHOD_QP_DOORBELL_FD));

const struct uapi_definition tbrdma_ib_uapi_defs[] = {
	UAPI_DEF_CHAIN_OBJ_TREE(UVERBS_OBJECT_QP, &tbrdma_ib_qp_obj_tree),
	{}
};
