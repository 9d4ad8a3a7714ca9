/*
 * The libibverbs provider "tbrdma" (docs/verbs.md): what registers it with
 * libibverbs and answers its calls, through rdma-core's private interface
 * (infiniband/driver.h, C only; the rest of the provider is C++, tbv.h).
 * Matches tbrdma_ib.ko's devices and opens them; what goes through the
 * kernel's uverbs commands is here, the data path of queue pairs and
 * completion queues (mapped rings, no system call) is tbv_qp.cpp and
 * tbv_cq.cpp.
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <infiniband/cmd_ioctl.h>
#include <infiniband/driver.h>
#include <kernel-abi/tbrdma_ib_abi.h>
#include <tbv_probes.h>

#include "rdma/tbrdma_abi.h"
#include "rdma/tbrdma_ib_abi.h"
#include "tbv.h"

DECLARE_DRV_CMD(tbv_get_context, IB_USER_VERBS_CMD_GET_CONTEXT, empty,
		tbrdma_ib_alloc_ucontext_resp);
DECLARE_DRV_CMD(tbv_create_qp, IB_USER_VERBS_CMD_CREATE_QP, empty,
		tbrdma_ib_create_qp_resp);
DECLARE_DRV_CMD(tbv_create_srq, IB_USER_VERBS_CMD_CREATE_SRQ, empty,
		tbrdma_ib_create_srq_resp);

struct tbv_device {
	struct verbs_device vdev;
};

struct tbv_context {
	struct verbs_context vctx;
	uint32_t link;		/* tbrdma.ko's link index */
	uint32_t link_flags;	/* enum tbrdma_link_flags */
};

static struct tbv_context *to_tbv_ctx(struct ibv_context *ibctx)
{
	return container_of(ibctx, struct tbv_context, vctx.context);
}

static int tbv_query_device_ex(struct ibv_context *context,
			       const struct ibv_query_device_ex_input *input,
			       struct ibv_device_attr_ex *attr,
			       size_t attr_size)
{
	struct ib_uverbs_ex_query_device_resp resp;
	size_t resp_size = sizeof(resp);

	return ibv_cmd_query_device_any(context, input, attr, attr_size, &resp,
					&resp_size);
}

static int tbv_query_port(struct ibv_context *context, uint8_t port,
			  struct ibv_port_attr *attr)
{
	struct ibv_query_port cmd;

	return ibv_cmd_query_port(context, port, attr, &cmd, sizeof(cmd));
}

static struct ibv_pd *tbv_alloc_pd(struct ibv_context *context)
{
	struct ib_uverbs_alloc_pd_resp resp;
	struct ibv_alloc_pd cmd;
	struct ibv_pd *pd;
	int ret;

	pd = calloc(1, sizeof(*pd));
	if (!pd) {
		errno = ENOMEM;
		return NULL;
	}
	ret = ibv_cmd_alloc_pd(context, pd, &cmd, sizeof(cmd), &resp,
			       sizeof(resp));
	if (ret) {
		free(pd);
		errno = ret;
		return NULL;
	}
	return pd;
}

static int tbv_dealloc_pd(struct ibv_pd *pd)
{
	int ret = ibv_cmd_dealloc_pd(pd);

	if (!ret)
		free(pd);
	return ret;
}

static struct ibv_mr *tbv_reg_mr(struct ibv_pd *pd, void *addr, size_t length,
			     uint64_t hca_va, int access)
{
	struct ib_uverbs_reg_mr_resp resp;
	struct ibv_reg_mr cmd;
	struct verbs_mr *vmr;
	int ret;

	vmr = calloc(1, sizeof(*vmr));
	if (!vmr) {
		errno = ENOMEM;
		return NULL;
	}
	ret = ibv_cmd_reg_mr(pd, addr, length, hca_va, access, vmr, &cmd,
			     sizeof(cmd), &resp, sizeof(resp));
	if (ret) {
		free(vmr);
		errno = ret;
		return NULL;
	}
	return &vmr->ibv_mr;
}

static int tbv_dereg_mr(struct verbs_mr *vmr)
{
	int ret = ibv_cmd_dereg_mr(vmr);

	if (!ret)
		free(vmr);
	return ret;
}

/* A completion queue: the rings of its queue pairs (tbv_cq.cpp). */
struct tbv_cq {
	struct ibv_cq ibcq;
	struct tbv_cq_set *set;
};

static struct tbv_cq *to_tbv_cq(struct ibv_cq *ibcq)
{
	return container_of(ibcq, struct tbv_cq, ibcq);
}

static struct ibv_cq *tbv_create_cq(struct ibv_context *context, int cqe,
				    struct ibv_comp_channel *channel,
				    int comp_vector)
{
	struct ib_uverbs_create_cq_resp resp;
	struct ibv_create_cq cmd;
	struct tbv_cq *cq;
	int ret;

	cq = calloc(1, sizeof(*cq));
	if (!cq) {
		errno = ENOMEM;
		return NULL;
	}
	cq->set = tbv_cq_new();
	if (!cq->set) {
		free(cq);
		errno = ENOMEM;
		return NULL;
	}
	ret = ibv_cmd_create_cq(context, cqe, channel, comp_vector, &cq->ibcq,
				&cmd, sizeof(cmd), &resp, sizeof(resp));
	if (ret) {
		tbv_cq_free(cq->set);
		free(cq);
		errno = ret;
		return NULL;
	}
	return &cq->ibcq;
}

static int tbv_destroy_cq(struct ibv_cq *ibcq)
{
	struct tbv_cq *cq = to_tbv_cq(ibcq);
	int ret = ibv_cmd_destroy_cq(ibcq);

	if (ret)
		return ret;
	tbv_cq_free(cq->set);
	free(cq);
	return 0;
}

static int tbv_poll_cq(struct ibv_cq *ibcq, int n, struct ibv_wc *wc)
{
	return tbv_cq_poll(to_tbv_cq(ibcq)->set, n, wc);
}

/*
 * The kernel allows one event per request, which the rings cannot ask for
 * (they are this process's to write): asked first, then armed in the
 * rings, whose next completion raises it.
 */
static int tbv_req_notify_cq(struct ibv_cq *ibcq, int solicited_only)
{
	int ret = ibv_cmd_req_notify_cq(ibcq, solicited_only);

	if (ret)
		return ret;
	tbv_cq_arm(to_tbv_cq(ibcq)->set);
	return 0;
}

/* A shared receive queue: its ring (tbv_qp.cpp). */
struct tbv_srq_obj {
	struct verbs_srq vsrq;
	struct tbv_srq *ring;
};

static struct tbv_srq_obj *to_tbv_srq(struct ibv_srq *ibsrq)
{
	return container_of(ibsrq, struct tbv_srq_obj, vsrq.srq);
}

static struct ibv_srq *tbv_create_srq(struct ibv_pd *pd,
				      struct ibv_srq_init_attr *attr)
{
	struct tbv_create_srq_resp resp;
	struct ibv_create_srq cmd;
	struct tbv_srq_obj *srq;
	int ret;

	srq = calloc(1, sizeof(*srq));
	if (!srq) {
		errno = ENOMEM;
		return NULL;
	}
	ret = ibv_cmd_create_srq(pd, &srq->vsrq.srq, attr, &cmd, sizeof(cmd),
				 &resp.ibv_resp, sizeof(resp));
	if (ret) {
		free(srq);
		errno = ret;
		return NULL;
	}
	/* The command answered the kernel's sizes in attr. */
	srq->ring = tbv_srq_new(pd->context->cmd_fd, &resp.drv_payload,
				attr->attr.max_sge);
	if (!srq->ring) {
		ret = errno;
		ibv_cmd_destroy_srq(&srq->vsrq.srq);
		free(srq);
		errno = ret;
		return NULL;
	}
	return &srq->vsrq.srq;
}

static int tbv_modify_srq(struct ibv_srq *ibsrq, struct ibv_srq_attr *attr,
			  int attr_mask)
{
	struct ibv_modify_srq cmd;

	return ibv_cmd_modify_srq(ibsrq, attr, attr_mask, &cmd, sizeof(cmd));
}

static int tbv_query_srq(struct ibv_srq *ibsrq, struct ibv_srq_attr *attr)
{
	struct ibv_query_srq cmd;

	return ibv_cmd_query_srq(ibsrq, attr, &cmd, sizeof(cmd));
}

static int tbv_destroy_srq(struct ibv_srq *ibsrq)
{
	struct tbv_srq_obj *srq = to_tbv_srq(ibsrq);
	int ret = ibv_cmd_destroy_srq(ibsrq);

	if (ret)
		return ret;
	tbv_srq_free(srq->ring);
	free(srq);
	return 0;
}

static int tbv_post_srq_recv(struct ibv_srq *ibsrq, struct ibv_recv_wr *wr,
			     struct ibv_recv_wr **bad)
{
	return tbv_srq_post_recv(to_tbv_srq(ibsrq)->ring, wr, bad);
}

/* A queue pair: its rings (tbv_qp.cpp) and its doorbell file, or -1. */
struct tbv_qp {
	struct verbs_qp vqp;
	struct tbv_rings *rings;
	int doorbell_fd;
};

static struct tbv_qp *to_tbv_qp(struct ibv_qp *ibqp)
{
	return container_of(ibqp, struct tbv_qp, vqp.qp);
}

/*
 * The queue pair's doorbell file, or -1: a kernel without that method,
 * or no descriptor left, leaves the uverbs method.
 */
static int tbv_doorbell_file(struct ibv_qp *ibqp)
{
	DECLARE_COMMAND_BUFFER(cmd, UVERBS_OBJECT_QP,
			       TBRDMA_IB_METHOD_QP_DOORBELL_FD, 2);
	uint32_t fd;

	fill_attr_in_obj(cmd, TBRDMA_IB_ATTR_DOORBELL_FD_QP, ibqp->handle);
	fill_attr_out_ptr(cmd, TBRDMA_IB_ATTR_DOORBELL_FD_FD, &fd);
	return execute_ioctl(ibqp->context, cmd) ? -1 : (int)fd;
}

/*
 * Its doorbell file's ioctl, which costs a fraction of the driver's
 * uverbs method (docs/verbs.md), else that; an errno value on failure.
 */
static int tbv_doorbell(struct ibv_qp *ibqp)
{
	DECLARE_COMMAND_BUFFER(cmd, UVERBS_OBJECT_QP,
			       TBRDMA_IB_METHOD_QP_DOORBELL, 1);
	int fd = to_tbv_qp(ibqp)->doorbell_fd;

	if (fd >= 0)
		return ioctl(fd, TBRDMA_IOC_QP_DOORBELL) ? errno : 0;
	fill_attr_in_obj(cmd, TBRDMA_IB_ATTR_DOORBELL_QP, ibqp->handle);
	return execute_ioctl(ibqp->context, cmd);
}

static void tbv_to_error(struct ibv_qp *ibqp)
{
	struct ibv_qp_attr attr = { .qp_state = IBV_QPS_ERR };
	struct ibv_modify_qp cmd;

	if (ibv_cmd_modify_qp(ibqp, &attr, IBV_QP_STATE, &cmd, sizeof(cmd)))
		return;		/* the device is gone: nothing flushes */
	ibqp->state = IBV_QPS_ERR;
	tbv_rings_set_state(to_tbv_qp(ibqp)->rings, IBV_QPS_ERR);
}

static const struct tbv_qp_cmds tbv_qp_cmds = {
	.doorbell = tbv_doorbell,
	.to_error = tbv_to_error,
};

/* The longest UD payload: the port's MTU, within a frame with the GRH. */
static uint32_t tbv_ud_mtu(const struct ibv_port_attr *port)
{
	uint32_t mtu = port->active_mtu ? 128u << port->active_mtu : 0;
	uint32_t frame = TBRDMA_SEND_MAX - sizeof(struct ibv_grh);

	return mtu < frame ? mtu : frame;
}

static struct ibv_qp *tbv_create_qp(struct ibv_pd *pd,
				    struct ibv_qp_init_attr *attr)
{
	struct tbv_create_qp_resp resp;
	struct ibv_port_attr port = {};
	struct ibv_create_qp cmd;
	struct tbv_qp *qp;
	int ret;

	/* A UD queue pair's datagrams are at most the port's MTU. */
	if (attr->qp_type == IBV_QPT_UD) {
		ret = ibv_query_port(pd->context, 1, &port);
		if (ret) {
			errno = ret;
			return NULL;
		}
	}
	qp = calloc(1, sizeof(*qp));
	if (!qp) {
		errno = ENOMEM;
		return NULL;
	}
	ret = ibv_cmd_create_qp(pd, &qp->vqp.qp, attr, &cmd, sizeof(cmd),
				&resp.ibv_resp, sizeof(resp));
	if (ret) {
		free(qp);
		errno = ret;
		return NULL;
	}
	qp->doorbell_fd = tbv_doorbell_file(&qp->vqp.qp);
	/* The command answered the kernel's sizes in attr->cap. */
	qp->rings = tbv_rings_new(pd->context->cmd_fd, &resp.drv_payload,
				  &qp->vqp.qp,
				  attr->srq ? to_tbv_srq(attr->srq)->ring : NULL,
				  &attr->cap, attr->sq_sig_all,
				  tbv_ud_mtu(&port),
				  &tbv_qp_cmds);
	if (!qp->rings)
		goto fail;
	ret = tbv_cq_add(to_tbv_cq(attr->send_cq)->set, qp->rings, false);
	if (ret)
		goto fail_rings;
	ret = tbv_cq_add(to_tbv_cq(attr->recv_cq)->set, qp->rings, true);
	if (ret)
		goto fail_send_cq;
	return &qp->vqp.qp;

fail_send_cq:
	tbv_cq_remove(to_tbv_cq(attr->send_cq)->set, qp->rings);
fail_rings:
	tbv_rings_free(qp->rings);
	errno = ret;
fail:
	ret = errno;
	ibv_cmd_destroy_qp(&qp->vqp.qp);
	if (qp->doorbell_fd >= 0)
		close(qp->doorbell_fd);
	free(qp);
	errno = ret;
	return NULL;
}

static int tbv_query_qp(struct ibv_qp *ibqp, struct ibv_qp_attr *attr,
			int attr_mask, struct ibv_qp_init_attr *init_attr)
{
	struct ibv_query_qp cmd;

	return ibv_cmd_query_qp(ibqp, attr, attr_mask, init_attr, &cmd,
				sizeof(cmd));
}

static int tbv_modify_qp(struct ibv_qp *ibqp, struct ibv_qp_attr *attr,
			 int attr_mask)
{
	struct tbv_rings *rings = to_tbv_qp(ibqp)->rings;
	struct ibv_modify_qp cmd;
	int ret;

	ret = ibv_cmd_modify_qp(ibqp, attr, attr_mask, &cmd, sizeof(cmd));
	if (ret || !(attr_mask & IBV_QP_STATE))
		return ret;
	tbv_rings_set_state(rings, attr->qp_state);
	if (attr->qp_state == IBV_QPS_RESET) {
		tbv_cq_discard(to_tbv_cq(ibqp->send_cq)->set, rings);
		if (ibqp->recv_cq != ibqp->send_cq)
			tbv_cq_discard(to_tbv_cq(ibqp->recv_cq)->set, rings);
		tbv_rings_reset(rings);
	}
	return 0;
}

static int tbv_destroy_qp(struct ibv_qp *ibqp)
{
	struct tbv_qp *qp = to_tbv_qp(ibqp);
	int ret;

	ret = ibv_cmd_destroy_qp(ibqp);
	if (ret)
		return ret;
	tbv_cq_remove(to_tbv_cq(ibqp->send_cq)->set, qp->rings);
	tbv_cq_remove(to_tbv_cq(ibqp->recv_cq)->set, qp->rings);
	tbv_rings_free(qp->rings);
	if (qp->doorbell_fd >= 0)
		close(qp->doorbell_fd);
	free(qp);
	return 0;
}

static int tbv_post_send(struct ibv_qp *ibqp, struct ibv_send_wr *wr,
			 struct ibv_send_wr **bad)
{
	return tbv_rings_post_send(to_tbv_qp(ibqp)->rings, wr, bad);
}

static int tbv_post_recv(struct ibv_qp *ibqp, struct ibv_recv_wr *wr,
			 struct ibv_recv_wr **bad)
{
	return tbv_rings_post_recv(to_tbv_qp(ibqp)->rings, wr, bad);
}

/* RoCE's GRH: IPv6's version, and the next header, BTH. */
#define TBV_GRH_VERSION 6u
#define TBV_GRH_NEXT_HDR 0x1b

/*
 * Whether gid is one of the port's: a datagram to it would have to come
 * back, which a loop's does (both ends are in this host) and a cable's
 * cannot (it would reach the peer host's queue pair of that number).
 */
static bool tbv_gid_is_own(struct ibv_context *context, const union ibv_gid *gid)
{
	struct ibv_port_attr port;
	union ibv_gid own;
	int i;

	if (ibv_query_port(context, 1, &port))
		return false;
	for (i = 0; i < port.gid_tbl_len; i++)
		if (!ibv_query_gid(context, 1, i, &own) &&
		    !memcmp(&own, gid, sizeof(own)))
			return true;
	return false;
}

/*
 * Address handles are the process's own: a datagram carries the GRH the
 * handle describes, from a GID of this port to the handle's.
 */
static struct ibv_ah *tbv_create_ah(struct ibv_pd *pd, struct ibv_ah_attr *attr)
{
	struct tbv_ah *ah;
	union ibv_gid sgid;

	if (attr->port_num != 1 || !attr->is_global) {
		errno = EINVAL;	/* RoCE: a GID to go to */
		return NULL;
	}
	if (!(to_tbv_ctx(pd->context)->link_flags & TBRDMA_LINK_F_LOCAL) &&
	    tbv_gid_is_own(pd->context, &attr->grh.dgid)) {
		errno = EHOSTUNREACH;
		return NULL;
	}
	if (ibv_query_gid(pd->context, 1, attr->grh.sgid_index, &sgid))
		return NULL;
	ah = calloc(1, sizeof(*ah));
	if (!ah) {
		errno = ENOMEM;
		return NULL;
	}
	ah->grh.version_tclass_flow =
		htobe32(TBV_GRH_VERSION << 28 |
			(uint32_t)attr->grh.traffic_class << 20 |
			(attr->grh.flow_label & 0xfffff));
	ah->grh.next_hdr = TBV_GRH_NEXT_HDR;
	ah->grh.hop_limit = attr->grh.hop_limit;
	ah->grh.sgid = sgid;
	ah->grh.dgid = attr->grh.dgid;
	return &ah->ibv_ah;
}

static int tbv_destroy_ah(struct ibv_ah *ibah)
{
	free(container_of(ibah, struct tbv_ah, ibv_ah));
	return 0;
}

static void tbv_free_context(struct ibv_context *ibctx)
{
	struct tbv_context *ctx = to_tbv_ctx(ibctx);

	verbs_uninit_context(&ctx->vctx);
	free(ctx);
}

static const struct verbs_context_ops tbv_context_ops = {
	.alloc_pd = tbv_alloc_pd,
	.create_ah = tbv_create_ah,
	.create_cq = tbv_create_cq,
	.create_qp = tbv_create_qp,
	.create_srq = tbv_create_srq,
	.dealloc_pd = tbv_dealloc_pd,
	.dereg_mr = tbv_dereg_mr,
	.destroy_ah = tbv_destroy_ah,
	.destroy_cq = tbv_destroy_cq,
	.destroy_qp = tbv_destroy_qp,
	.destroy_srq = tbv_destroy_srq,
	.free_context = tbv_free_context,
	.modify_qp = tbv_modify_qp,
	.modify_srq = tbv_modify_srq,
	.poll_cq = tbv_poll_cq,
	.post_recv = tbv_post_recv,
	.post_send = tbv_post_send,
	.post_srq_recv = tbv_post_srq_recv,
	.query_device_ex = tbv_query_device_ex,
	.query_port = tbv_query_port,
	.query_qp = tbv_query_qp,
	.query_srq = tbv_query_srq,
	.reg_mr = tbv_reg_mr,
	.req_notify_cq = tbv_req_notify_cq,
};

static struct verbs_context *tbv_alloc_context(struct ibv_device *ibdev,
					       int cmd_fd, void *private_data)
{
	struct tbv_get_context_resp resp;
	struct ibv_get_context cmd;
	struct tbv_context *ctx;

	(void)private_data;
	ctx = verbs_init_and_alloc_context(ibdev, cmd_fd, ctx, vctx,
					   RDMA_DRIVER_UNKNOWN);
	if (!ctx)
		return NULL;
#ifdef TBV_GET_CONTEXT_FD_ARR
	if (ibv_cmd_get_context(&ctx->vctx, &cmd, sizeof(cmd), NULL,
				&resp.ibv_resp, sizeof(resp)))
#else
	if (ibv_cmd_get_context(&ctx->vctx, &cmd, sizeof(cmd), &resp.ibv_resp,
				sizeof(resp)))
#endif
		goto fail;
	ctx->link = resp.link;
	ctx->link_flags = resp.link_flags;
	verbs_set_ops(&ctx->vctx, &tbv_context_ops);
	return &ctx->vctx;

fail:
	verbs_uninit_context(&ctx->vctx);
	free(ctx);
	return NULL;
}

/*
 * No table entry: names change and the driver id is RDMA_DRIVER_UNKNOWN,
 * so tbv_match_device() decides. libibverbs walks the table of every
 * provider for a device with a driver id, so it must exist.
 */
static const struct verbs_match_ent tbv_match_table[] = {
	{}
};

static bool tbv_match_device(struct verbs_sysfs_dev *sysfs_dev)
{
	return tbv_sysfs_is_tbrdma(sysfs_dev->ibdev_path);
}

static struct verbs_device *tbv_alloc_device(struct verbs_sysfs_dev *sysfs_dev)
{
	struct tbv_device *dev;

	(void)sysfs_dev;
	dev = calloc(1, sizeof(*dev));
	return dev ? &dev->vdev : NULL;
}

static void tbv_uninit_device(struct verbs_device *vdev)
{
	free(container_of(vdev, struct tbv_device, vdev));
}

/* External linkage and constant: PROVIDER_DRIVER aliases it. */
const struct verbs_device_ops tbv_device_ops = {
	.name = "tbrdma",
	.match_min_abi_version = TBRDMA_IB_UVERBS_ABI,
	.match_max_abi_version = TBRDMA_IB_UVERBS_ABI,
	.match_table = tbv_match_table,
	.match_device = tbv_match_device,
	.alloc_context = tbv_alloc_context,
	.alloc_device = tbv_alloc_device,
	.uninit_device = tbv_uninit_device,
};
PROVIDER_DRIVER(tbrdma, tbv_device_ops);
