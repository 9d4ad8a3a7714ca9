// SPDX-License-Identifier: GPL-2.0
/*
 * The verbs of a link's RDMA device: what the RDMA core asks of the device
 * and its one RoCE v2 port, user contexts, protection domains, memory
 * regions and completion queues (queue pairs: tbrdma_ib_qp.c, shared
 * receive queues: tbrdma_ib_srq.c).
 */
#include <linux/netdevice.h>
#include <rdma/ib_addr.h>
#include <rdma/ib_mad.h>
#include <rdma/uverbs_ioctl.h>

#include "rdma/tbrdma_ib_abi.h"
#include "tbrdma_client.h"
#include "tbrdma_ib.h"

/* GID table entries per port: the MAC's, and an address or two. */
#define TBRDMA_IB_GIDS 16
/* Queue pairs: the engine's contexts, which its users' limits bound. */
#define TBRDMA_IB_MAX_QP 65536

/* Completion queue entries: any number, as it holds none itself. */
#define TBRDMA_IB_MAX_CQE BIT(22)

/*
 * A completion queue holds nothing: the process polls the completion rings
 * of its queue pairs, and their notify calls its handler. It is counted
 * against its user's limit all the same (max_user_cqs).
 *
 * The rings' armed words are the process's to write, so they alone cannot
 * raise events: each event queues memory in the uverbs core until the
 * channel is read. armed is set by req_notify_cq, a system call, and
 * taken by the one event it allows.
 */
struct tbrdma_ib_cq {
	struct ib_cq ibcq;
	struct tbrdma_user *user;
	atomic_t armed;
};

static struct tbrdma_ib_cq *to_tbcq(struct ib_cq *ibcq)
{
	return container_of(ibcq, struct tbrdma_ib_cq, ibcq);
}

struct tbrdma_ib_mr {
	struct ib_mr ibmr;
	u64 key;
};

enum ib_port_state tbrdma_ib_port_state(struct tbrdma_ibdev *d)
{
	return netif_running(d->ndev) && netif_carrier_ok(d->ndev) ?
	       IB_PORT_ACTIVE : IB_PORT_DOWN;
}

void tbrdma_ib_port_changed(struct tbrdma_ibdev *d)
{
#ifndef TBRDMA_IB_CORE_PORT_EVENTS
	struct ib_event ev = {
		.device = &d->ibdev,
		.element.port_num = 1,
	};
	enum ib_port_state state;

	/*
	 * Queued, and flushed by unregistering, which waits for the lock.
	 * The state is read under it, so events follow one another in the
	 * order of the states they report; and only once registered, when
	 * d->ndev is set (its open may come first).
	 */
	spin_lock(&d->port_lock);
	if (d->registered) {
		state = tbrdma_ib_port_state(d);
		if (state != d->port_state) {
			d->port_state = state;
			ev.event = state == IB_PORT_ACTIVE ?
				   IB_EVENT_PORT_ACTIVE : IB_EVENT_PORT_ERR;
			ib_dispatch_event(&ev);
		}
	}
	spin_unlock(&d->port_lock);
#endif
}

static int tbrdma_ib_query_device(struct ib_device *ibdev,
				  struct ib_device_attr *attr,
				  struct ib_udata *udata)
{
	/* No private data either way (the core passes NULL at register). */
	if (udata && (udata->inlen || udata->outlen))
		return -EINVAL;
	memset(attr, 0, sizeof(*attr));
	attr->sys_image_guid = ibdev->node_guid;
	attr->page_size_cap = PAGE_SIZE;
	attr->max_pd = tbrdma_client_user_limit(TBRDMA_CHARGE_PD);
	attr->max_qp = TBRDMA_IB_MAX_QP;
	attr->max_qp_wr = tbrdma_client_max_ring();
	attr->max_send_sge = TBRDMA_IB_MAX_SEND_SGE;
	attr->max_recv_sge = TBRDMA_IB_MAX_RECV_SGE;
	attr->max_sge_rd = TBRDMA_IB_MAX_SEND_SGE;
	attr->max_cq = tbrdma_client_user_limit(TBRDMA_CHARGE_CQ);
	attr->max_cqe = TBRDMA_IB_MAX_CQE;
	attr->max_mr = TBRDMA_IB_MAX_QP;
	attr->max_mr_size = TBRDMA_XFER_MAX;
	attr->max_qp_rd_atom = TBRDMA_IB_MAX_RD_ATOMIC;
	attr->max_qp_init_rd_atom = TBRDMA_IB_MAX_RD_ATOMIC;
	attr->max_res_rd_atom = TBRDMA_IB_MAX_RD_ATOMIC * TBRDMA_IB_MAX_QP;
	attr->atomic_cap = IB_ATOMIC_HCA;
	attr->max_srq = tbrdma_client_user_limit(TBRDMA_CHARGE_SRQ);
	attr->max_srq_wr = tbrdma_client_max_ring();
	attr->max_srq_sge = TBRDMA_IB_MAX_RECV_SGE;
	attr->max_pkeys = 1;
	/* The provider's, in the process: the kernel keeps none. */
	attr->max_ah = INT_MAX;
	return 0;
}

/* The IB width and lane speed nearest below the link's rate. */
static void tbrdma_ib_port_speed(u64 mbps, struct ib_port_attr *attr)
{
	static const struct { u8 width; u32 lanes; } widths[] = {
		{ IB_WIDTH_1X, 1 }, { IB_WIDTH_2X, 2 }, { IB_WIDTH_4X, 4 },
	};
	static const struct { u16 speed; u32 mbps; } speeds[] = {
		{ IB_SPEED_SDR, 2500 }, { IB_SPEED_DDR, 5000 },
		{ IB_SPEED_QDR, 10000 }, { IB_SPEED_FDR, 14000 },
		{ IB_SPEED_EDR, 25000 }, { IB_SPEED_HDR, 50000 },
		{ IB_SPEED_NDR, 100000 },
	};
	u64 best = 0;
	int w, s;

	attr->active_width = IB_WIDTH_1X;
	attr->active_speed = IB_SPEED_SDR;
	for (w = 0; w < ARRAY_SIZE(widths); w++) {
		for (s = 0; s < ARRAY_SIZE(speeds); s++) {
			u64 rate = (u64)widths[w].lanes * speeds[s].mbps;

			if (rate > mbps || rate <= best)
				continue;
			best = rate;
			attr->active_width = widths[w].width;
			attr->active_speed = speeds[s].speed;
		}
	}
}

static int tbrdma_ib_query_port(struct ib_device *ibdev, u32 port,
				struct ib_port_attr *attr)
{
	struct tbrdma_ibdev *d = to_tbdev(ibdev);
	struct tbrdma_link_attr link;

	/* The core zeroed attr. */
	attr->state = tbrdma_ib_port_state(d);
	attr->phys_state = netif_carrier_ok(d->ndev) ?
			   IB_PORT_PHYS_STATE_LINK_UP :
			   IB_PORT_PHYS_STATE_DISABLED;
	attr->max_mtu = IB_MTU_4096;
	attr->active_mtu = iboe_get_mtu(READ_ONCE(d->ndev->mtu));
	attr->gid_tbl_len = TBRDMA_IB_GIDS;
	attr->pkey_tbl_len = 1;
	attr->max_msg_sz = TBRDMA_XFER_MAX;
	attr->max_vl_num = 1;
	if (tbrdma_client_query(d->link, &link))
		link.speed_mbps = 0;		/* going away */
	tbrdma_ib_port_speed(link.speed_mbps, attr);
	return 0;
}

static int tbrdma_ib_port_immutable(struct ib_device *ibdev, u32 port,
				    struct ib_port_immutable *immutable)
{
	immutable->core_cap_flags = RDMA_CORE_PORT_IBA_ROCE_UDP_ENCAP;
	immutable->gid_tbl_len = TBRDMA_IB_GIDS;
	immutable->pkey_tbl_len = 1;
	immutable->max_mad_size = IB_MGMT_MAD_SIZE;
	return 0;
}

static enum rdma_link_layer tbrdma_ib_link_layer(struct ib_device *ibdev,
						 u32 port)
{
	return IB_LINK_LAYER_ETHERNET;
}

static int tbrdma_ib_query_pkey(struct ib_device *ibdev, u32 port, u16 index,
				u16 *pkey)
{
	if (index)
		return -EINVAL;
	*pkey = IB_DEFAULT_PKEY_FULL;
	return 0;
}

/* Tells the provider which link it has opened, and whether a loop's. */
static int tbrdma_ib_alloc_ucontext(struct ib_ucontext *ibuc,
				    struct ib_udata *udata)
{
	struct tbrdma_ib_alloc_ucontext_resp resp = {
		.link = to_tbdev(ibuc->device)->link,
	};
	struct tbrdma_ib_ucontext *uc = to_tbuc(ibuc);
	struct tbrdma_link_attr attr;

	mutex_init(&uc->sweep_lock);
	spin_lock_init(&uc->gone_lock);
	INIT_LIST_HEAD(&uc->gone);
	if (!tbrdma_client_query(resp.link, &attr))
		resp.link_flags = attr.flags;
	return ib_copy_to_udata(udata, &resp,
				min_t(size_t, udata->outlen, sizeof(resp)));
}

/*
 * Every queue is gone, and every mapping (each holds the file) unless the
 * device was disassociated from the process, which then keeps the pages
 * uncharged.
 */
static void tbrdma_ib_dealloc_ucontext(struct ib_ucontext *ibuc)
{
	struct tbrdma_ib_ucontext *uc = to_tbuc(ibuc);

	tbrdma_ib_ring_sweep(uc, true);
}

/*
 * Having it lets the core take a device away from processes that still
 * have it open (rmmod, unplug): it destroys their objects through the
 * verbs below, which never wait on userspace, then calls this.
 */
static void tbrdma_ib_disassociate_ucontext(struct ib_ucontext *ibuc)
{
}

static int tbrdma_ib_alloc_pd(struct ib_pd *ibpd, struct ib_udata *udata)
{
	return tbrdma_client_pd_create(&to_tbpd(ibpd)->cpd);
}

static int tbrdma_ib_dealloc_pd(struct ib_pd *ibpd, struct ib_udata *udata)
{
	tbrdma_client_pd_destroy(&to_tbpd(ibpd)->cpd);
	return 0;
}

/*
 * A region's IB access as the engine's: every region is a source of the
 * queue pairs' own operations; only with LOCAL_WRITE (which the RDMA core
 * requires for REMOTE_WRITE and REMOTE_ATOMIC) is it a destination, and
 * are its pages pinned writable.
 */
static int tbrdma_ib_access(int ib, u32 *access)
{
	if (ib & ~(IB_ACCESS_LOCAL_WRITE | IB_ACCESS_REMOTE_WRITE |
		   IB_ACCESS_REMOTE_READ | IB_ACCESS_REMOTE_ATOMIC |
		   IB_ACCESS_OPTIONAL))
		return -EOPNOTSUPP;
	*access = ib & IB_ACCESS_LOCAL_WRITE ? TBRDMA_ACCESS_LOCAL :
					       TBRDMA_ACCESS_LOCAL_READ;
	*access |= tbrdma_ib_remote_access(ib);
	return 0;
}

#ifdef TBRDMA_IB_REG_USER_MR_DMAH
static struct ib_mr *tbrdma_ib_reg_user_mr(struct ib_pd *ibpd, u64 start,
					   u64 length, u64 iova, int ib_access,
					   struct ib_dmah *dmah,
					   struct ib_udata *udata)
#else
static struct ib_mr *tbrdma_ib_reg_user_mr(struct ib_pd *ibpd, u64 start,
					   u64 length, u64 iova, int ib_access,
					   struct ib_udata *udata)
#endif
{
	struct tbrdma_ib_mr *mr;
	u32 access;
	int ret;

	if (udata && udata->inlen)
		return ERR_PTR(-EINVAL);
	ret = tbrdma_ib_access(ib_access, &access);
	if (ret)
		return ERR_PTR(ret);
	mr = kzalloc(sizeof(*mr), GFP_KERNEL_ACCOUNT);
	if (!mr)
		return ERR_PTR(-ENOMEM);
	ret = tbrdma_client_reg_mr(to_tbpd(ibpd)->cpd.pd, start, length, iova,
				   access, &mr->key);
	if (ret) {
		kfree(mr);
		return ERR_PTR(ret);
	}
	/* A short-key domain's keys are 32 bits. */
	mr->ibmr.lkey = mr->key;
	mr->ibmr.rkey = mr->key;
	return &mr->ibmr;
}

static int tbrdma_ib_dereg_mr(struct ib_mr *ibmr, struct ib_udata *udata)
{
	struct tbrdma_ib_mr *mr = container_of(ibmr, struct tbrdma_ib_mr, ibmr);
	int ret;

	ret = tbrdma_client_dereg_mr(to_tbpd(ibmr->pd)->cpd.pd, mr->key);
	if (ret)
		return ret;
	kfree(mr);
	return 0;
}

#ifdef TBRDMA_IB_CREATE_CQ_ATTRS
static int tbrdma_ib_create_cq(struct ib_cq *ibcq,
			       const struct ib_cq_init_attr *attr,
			       struct uverbs_attr_bundle *attrs)
{
	struct ib_udata *udata = attrs ? &attrs->driver_udata : NULL;
#else
static int tbrdma_ib_create_cq(struct ib_cq *ibcq,
			       const struct ib_cq_init_attr *attr,
			       struct ib_udata *udata)
{
#endif
	struct tbrdma_ib_cq *cq = to_tbcq(ibcq);

	/* The process's alone: it polls its queue pairs' rings. */
	if (!udata || udata->inlen || attr->flags)
		return -EOPNOTSUPP;
	if (!attr->cqe || attr->cqe > TBRDMA_IB_MAX_CQE ||
	    attr->comp_vector >= ibcq->device->num_comp_vectors)
		return -EINVAL;
	cq->user = tbrdma_client_charge(TBRDMA_CHARGE_CQ);
	if (IS_ERR(cq->user))
		return PTR_ERR(cq->user);
	ibcq->cqe = attr->cqe;
	return 0;
}

/*
 * Before the process arms its rings (tbv_req_notify_cq()): a completion
 * that finds a ring armed finds this set too, or the process polls it.
 */
static int tbrdma_ib_req_notify_cq(struct ib_cq *ibcq,
				   enum ib_cq_notify_flags flags)
{
	atomic_set(&to_tbcq(ibcq)->armed, 1);
	smp_mb();	/* armed before the rings' words */
	return 0;
}

void tbrdma_ib_cq_event(struct ib_cq *ibcq)
{
	if (atomic_xchg(&to_tbcq(ibcq)->armed, 0) && ibcq->comp_handler)
		ibcq->comp_handler(ibcq, ibcq->cq_context);
}

/* Its queue pairs are gone (the core counts them). */
static int tbrdma_ib_destroy_cq(struct ib_cq *ibcq, struct ib_udata *udata)
{
	struct tbrdma_ib_cq *cq = to_tbcq(ibcq);

	tbrdma_client_uncharge(cq->user, TBRDMA_CHARGE_CQ);
	return 0;
}

const struct ib_device_ops tbrdma_ib_ops = {
	.owner = THIS_MODULE,
	.driver_id = RDMA_DRIVER_UNKNOWN,
	.uverbs_abi_ver = TBRDMA_IB_UVERBS_ABI,
	.uverbs_no_driver_id_binding = 1,

	.alloc_pd = tbrdma_ib_alloc_pd,
	.alloc_ucontext = tbrdma_ib_alloc_ucontext,
	.create_cq = tbrdma_ib_create_cq,
	.create_qp = tbrdma_ib_create_qp,
	.create_srq = tbrdma_ib_create_srq,
	.dealloc_pd = tbrdma_ib_dealloc_pd,
	.dealloc_ucontext = tbrdma_ib_dealloc_ucontext,
	.dereg_mr = tbrdma_ib_dereg_mr,
	.destroy_cq = tbrdma_ib_destroy_cq,
	.destroy_qp = tbrdma_ib_destroy_qp,
	.destroy_srq = tbrdma_ib_destroy_srq,
	.disassociate_ucontext = tbrdma_ib_disassociate_ucontext,
	.get_link_layer = tbrdma_ib_link_layer,
	.get_port_immutable = tbrdma_ib_port_immutable,
	.mmap = tbrdma_ib_mmap,
	.mmap_free = tbrdma_ib_mmap_free,
	.modify_qp = tbrdma_ib_modify_qp,
	.modify_srq = tbrdma_ib_modify_srq,
	.query_device = tbrdma_ib_query_device,
	.query_pkey = tbrdma_ib_query_pkey,
	.query_port = tbrdma_ib_query_port,
	.query_qp = tbrdma_ib_query_qp,
	.query_srq = tbrdma_ib_query_srq,
	.reg_user_mr = tbrdma_ib_reg_user_mr,
	.req_notify_cq = tbrdma_ib_req_notify_cq,

	INIT_RDMA_OBJ_SIZE(ib_cq, tbrdma_ib_cq, ibcq),
	INIT_RDMA_OBJ_SIZE(ib_pd, tbrdma_ib_pd, ibpd),
	INIT_RDMA_OBJ_SIZE(ib_qp, tbrdma_ib_qp, ibqp),
	INIT_RDMA_OBJ_SIZE(ib_srq, tbrdma_ib_srq, ibsrq),
	INIT_RDMA_OBJ_SIZE(ib_ucontext, tbrdma_ib_ucontext, ibuc),
};
