/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tbrdma_ib.ko: every link of tbrdma.ko as an RDMA device of the kernel's
 * RDMA core (ib_core, uverbs), so libibverbs applications see it. A link's
 * device has one RoCE v2 port on a netdev of its own that only carries the
 * port's addresses (GIDs). See docs/verbs.md.
 */
#ifndef TBRDMA_IB_H
#define TBRDMA_IB_H

#include <linux/netdevice.h>
#include <linux/workqueue.h>
#include <rdma/ib_verbs.h>

/*
 * The netdev's MTU: a 4096-byte RoCE payload with every header the core
 * counts (iboe_get_mtu()).
 */
#define TBRDMA_IB_NETDEV_MTU 4200

/* One link's RDMA device, its netdev and the state they report. */
struct tbrdma_ibdev {
	struct ib_device ibdev;
	struct net_device *ndev;
	u32 link;			/* tbrdma.ko's userspace link index */
	atomic_t pds;			/* protection domains, up to max_pd */
	struct work_struct state_work;	/* follows the link's state */
	/*
	 * Port events go only to a registered device (the netdev closes
	 * after it is gone), and only when the port's state changed.
	 */
	spinlock_t port_lock;
	bool registered;
	enum ib_port_state port_state;	/* the last event's */
};

static inline struct tbrdma_ibdev *to_tbdev(struct ib_device *ibdev)
{
	return container_of(ibdev, struct tbrdma_ibdev, ibdev);
}

/* tbrdma_ib_netdev.c */
/* The netdev of link name with address mac, registered, carrier off. */
struct net_device *tbrdma_ib_netdev_create(struct tbrdma_ibdev *d,
					   const char *name, const u8 *mac);
void tbrdma_ib_netdev_destroy(struct net_device *ndev);
/* Up (IFF_UP), as a port that works at once; sleeps (RTNL). */
int tbrdma_ib_netdev_open(struct net_device *ndev);

/* tbrdma_ib_verbs.c */
extern const struct ib_device_ops tbrdma_ib_ops;
/* The port's state from the netdev: up and with carrier. */
enum ib_port_state tbrdma_ib_port_state(struct tbrdma_ibdev *d);
/*
 * The port's state may have changed: a port event if it did, where the
 * RDMA core does not send them itself from the netdev's state (newer
 * cores do: TBRDMA_IB_CORE_PORT_EVENTS).
 */
void tbrdma_ib_port_changed(struct tbrdma_ibdev *d);

#endif /* TBRDMA_IB_H */
