// SPDX-License-Identifier: GPL-2.0
/*
 * The verbs of a link's RDMA device: what the RDMA core asks of the device
 * and its one RoCE v2 port, user contexts and protection domains.
 */
#include <linux/netdevice.h>
#include <rdma/ib_addr.h>
#include <rdma/ib_mad.h>

#include "rdma/tbrdma_ib_abi.h"
#include "tbrdma_client.h"
#include "tbrdma_ib.h"

/* GID table entries per port: the MAC's, and an address or two. */
#define TBRDMA_IB_GIDS 16
/* Protection domains per device: what any user who opens it may take. */
#define TBRDMA_IB_MAX_PD 4096
#define TBRDMA_IB_MAX_MSG BIT(31)

struct tbrdma_ib_ucontext {
	struct ib_ucontext ibuc;
};

struct tbrdma_ib_pd {
	struct ib_pd ibpd;
};

enum ib_port_state tbrdma_ib_port_state(struct tbrdma_ibdev *d)
{
	return netif_running(d->ndev) && netif_carrier_ok(d->ndev) ?
	       IB_PORT_ACTIVE : IB_PORT_DOWN;
}

void tbrdma_ib_port_changed(struct tbrdma_ibdev *d)
{
#ifndef TBRDMA_IB_CORE_PORT_EVENTS
	enum ib_port_state state = tbrdma_ib_port_state(d);
	struct ib_event ev = {
		.device = &d->ibdev,
		.element.port_num = 1,
	};

	ev.event = state == IB_PORT_ACTIVE ? IB_EVENT_PORT_ACTIVE :
					     IB_EVENT_PORT_ERR;
	/* Queued, and flushed by unregistering, which waits for the lock. */
	spin_lock(&d->port_lock);
	if (d->registered && state != d->port_state) {
		d->port_state = state;
		ib_dispatch_event(&ev);
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
	attr->max_pkeys = 1;
	attr->max_pd = TBRDMA_IB_MAX_PD;
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
	attr->max_msg_sz = TBRDMA_IB_MAX_MSG;
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

/* Tells the provider which link it has opened. */
static int tbrdma_ib_alloc_ucontext(struct ib_ucontext *ibuc,
				    struct ib_udata *udata)
{
	struct tbrdma_ib_alloc_ucontext_resp resp = {
		.link = to_tbdev(ibuc->device)->link,
	};

	return ib_copy_to_udata(udata, &resp,
				min_t(size_t, udata->outlen, sizeof(resp)));
}

/* The core frees it; it holds nothing of its own. */
static void tbrdma_ib_dealloc_ucontext(struct ib_ucontext *ibuc)
{
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
	struct tbrdma_ibdev *d = to_tbdev(ibpd->device);

	if (atomic_inc_return(&d->pds) > TBRDMA_IB_MAX_PD) {
		atomic_dec(&d->pds);
		return -ENOMEM;
	}
	return 0;
}

static int tbrdma_ib_dealloc_pd(struct ib_pd *ibpd, struct ib_udata *udata)
{
	atomic_dec(&to_tbdev(ibpd->device)->pds);
	return 0;
}

const struct ib_device_ops tbrdma_ib_ops = {
	.owner = THIS_MODULE,
	.driver_id = RDMA_DRIVER_UNKNOWN,
	.uverbs_abi_ver = TBRDMA_IB_UVERBS_ABI,
	.uverbs_no_driver_id_binding = 1,

	.alloc_pd = tbrdma_ib_alloc_pd,
	.alloc_ucontext = tbrdma_ib_alloc_ucontext,
	.dealloc_pd = tbrdma_ib_dealloc_pd,
	.dealloc_ucontext = tbrdma_ib_dealloc_ucontext,
	.disassociate_ucontext = tbrdma_ib_disassociate_ucontext,
	.get_link_layer = tbrdma_ib_link_layer,
	.get_port_immutable = tbrdma_ib_port_immutable,
	.query_device = tbrdma_ib_query_device,
	.query_pkey = tbrdma_ib_query_pkey,
	.query_port = tbrdma_ib_query_port,

	INIT_RDMA_OBJ_SIZE(ib_pd, tbrdma_ib_pd, ibpd),
	INIT_RDMA_OBJ_SIZE(ib_ucontext, tbrdma_ib_ucontext, ibuc),
};
