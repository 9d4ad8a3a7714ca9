// SPDX-License-Identifier: GPL-2.0
/*
 * The netdev of a link's RDMA device. The RDMA core takes a RoCE port's
 * GIDs from the addresses of its netdev (the default GID from the MAC, the
 * IPv6 link-local address once it is up) and resolves a destination GID
 * to a MAC through the neighbour table; IFF_NOARP makes that resolution
 * immediate. No IP traffic crosses the link: what the stack sends on it
 * (neighbour and router solicitations) is dropped and counted.
 */
#include <linux/etherdevice.h>
#include <linux/netdevice.h>
#include <linux/rtnetlink.h>

#include "tbrdma_ib.h"

struct tbrdma_ib_netdev_priv {
	struct tbrdma_ibdev *d;
};

static int tbrdma_ib_netdev_up(struct net_device *ndev)
{
	struct tbrdma_ib_netdev_priv *p = netdev_priv(ndev);

	tbrdma_ib_port_changed(p->d);
	return 0;
}

static int tbrdma_ib_netdev_down(struct net_device *ndev)
{
	struct tbrdma_ib_netdev_priv *p = netdev_priv(ndev);

	tbrdma_ib_port_changed(p->d);
	return 0;
}

static netdev_tx_t tbrdma_ib_netdev_xmit(struct sk_buff *skb,
					 struct net_device *ndev)
{
	DEV_STATS_INC(ndev, tx_dropped);
	dev_kfree_skb_any(skb);
	return NETDEV_TX_OK;
}

static const struct net_device_ops tbrdma_ib_netdev_ops = {
	.ndo_open = tbrdma_ib_netdev_up,
	.ndo_stop = tbrdma_ib_netdev_down,
	.ndo_start_xmit = tbrdma_ib_netdev_xmit,
};

static void tbrdma_ib_netdev_setup(struct net_device *ndev)
{
	ether_setup(ndev);
	ndev->netdev_ops = &tbrdma_ib_netdev_ops;
	ndev->flags |= IFF_NOARP;
	ndev->priv_flags |= IFF_NO_QUEUE;
	ndev->mtu = TBRDMA_IB_NETDEV_MTU;
	ndev->min_mtu = TBRDMA_IB_NETDEV_MTU;
	ndev->max_mtu = TBRDMA_IB_NETDEV_MTU;
	/* The RDMA device is in the initial namespace: so is its netdev. */
#if defined(TBRDMA_IB_NETNS_IMMUTABLE)
	ndev->netns_immutable = true;
#elif defined(TBRDMA_IB_NETNS_LOCAL)
	ndev->netns_local = true;
#else
	ndev->features |= NETIF_F_NETNS_LOCAL;
#endif
}

struct net_device *tbrdma_ib_netdev_create(struct tbrdma_ibdev *d,
					   const char *name, const u8 *mac)
{
	struct tbrdma_ib_netdev_priv *p;
	struct net_device *ndev;
	int ret;

	ndev = alloc_netdev(sizeof(*p), name, NET_NAME_PREDICTABLE,
			    tbrdma_ib_netdev_setup);
	if (!ndev)
		return ERR_PTR(-ENOMEM);
	p = netdev_priv(ndev);
	p->d = d;
	eth_hw_addr_set(ndev, mac);
	netif_carrier_off(ndev);
	ret = register_netdev(ndev);
	if (ret) {
		free_netdev(ndev);
		return ERR_PTR(ret);
	}
	return ndev;
}

void tbrdma_ib_netdev_destroy(struct net_device *ndev)
{
	unregister_netdev(ndev);
	free_netdev(ndev);
}

int tbrdma_ib_netdev_open(struct net_device *ndev)
{
	int ret;

	rtnl_lock();
	ret = dev_open(ndev, NULL);
	rtnl_unlock();
	return ret;
}
