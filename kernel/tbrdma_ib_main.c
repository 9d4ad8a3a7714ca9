// SPDX-License-Identifier: GPL-2.0
/*
 * tbrdma_ib.ko: an RDMA device for every link of tbrdma.ko (loopN becomes
 * tbrdma_loopN, tbN tbrdma_tbN), added and removed with the link's device
 * through tbrdma.ko's client interface, its port following the link's
 * state through the carrier of its netdev. See docs/verbs.md.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/rcupdate.h>
#include <linux/slab.h>
#include <net/addrconf.h>
#include <rdma/ib_cache.h>

#include "tbrdma_client.h"
#include "tbrdma_ib.h"

/*
 * By link index. Set and cleared by add and remove (which the client
 * interface serialises), read under RCU where links change state.
 */
static struct tbrdma_ibdev __rcu *tbrdma_ib_devs[TBRDMA_CLIENT_MAX_LINKS];

/* Runs the state works; flushed before the module goes. */
static struct workqueue_struct *tbrdma_ib_wq;

static void tbrdma_ib_state_work(struct work_struct *work)
{
	struct tbrdma_ibdev *d = container_of(work, struct tbrdma_ibdev,
					      state_work);
	struct tbrdma_link_attr attr;
	bool up;

	up = !tbrdma_client_query(d->link, &attr) &&
	     attr.state == TBRDMA_LINK_UP;
	if (up == netif_carrier_ok(d->ndev))
		return;
	if (up)
		netif_carrier_on(d->ndev);
	else
		netif_carrier_off(d->ndev);
	tbrdma_ib_port_changed(d);
}

/*
 * A MAC of this end of the link, locally administered: from the end's id
 * (the host's UUID for XDomain links, the cable's for loops) and the link
 * index, so links of one host and the two ends of a cable differ.
 */
static void tbrdma_ib_mac(const struct tbrdma_link_attr *attr, u32 index,
			  u8 *mac)
{
	u64 h = (attr->end_id ?: attr->identity) +
		(index + 1) * 0x9e3779b97f4a7c15ull;

	/* splitmix64's finaliser: every input bit moves the five bytes. */
	h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
	h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
	h ^= h >> 31;
	mac[0] = 0x02;
	memcpy(mac + 1, &h, ETH_ALEN - 1);
}

u32 tbrdma_ib_gid_link(const union ib_gid *gid)
{
	const struct ib_gid_attr *attr;
	struct tbrdma_ibdev *d;
	u32 i, link = U32_MAX;

	/* Removing a device waits for this before its GID table goes. */
	rcu_read_lock();
	for (i = 0; i < TBRDMA_CLIENT_MAX_LINKS && link == U32_MAX; i++) {
		d = rcu_dereference(tbrdma_ib_devs[i]);
		if (!d)
			continue;
		attr = rdma_find_gid_by_port(&d->ibdev, gid,
					     IB_GID_TYPE_ROCE_UDP_ENCAP, 1,
					     NULL);
		if (IS_ERR(attr))
			continue;
		link = d->link;
		rdma_put_gid_attr(attr);
	}
	rcu_read_unlock();
	return link;
}

static void tbrdma_ib_add(struct tbrdma_client *c, u32 index,
			  struct device *dev)
{
	char name[IFNAMSIZ];
	struct tbrdma_link_attr attr;
	struct tbrdma_ibdev *d;
	u8 mac[ETH_ALEN];
	int ret;

	if (index >= TBRDMA_CLIENT_MAX_LINKS || tbrdma_client_query(index, &attr))
		return;
	ret = snprintf(name, sizeof(name), "tbrdma_%s", attr.name);
	if (ret >= sizeof(name))
		return;
	ret = -ENOMEM;
	d = ib_alloc_device(tbrdma_ibdev, ibdev);
	if (!d)
		goto fail;
	d->link = index;
	spin_lock_init(&d->port_lock);
	d->port_state = IB_PORT_DOWN;
	INIT_WORK(&d->state_work, tbrdma_ib_state_work);
	tbrdma_ib_mac(&attr, index, mac);
	d->ndev = tbrdma_ib_netdev_create(d, name, mac);
	if (IS_ERR(d->ndev)) {
		ret = PTR_ERR(d->ndev);
		goto fail_dealloc;
	}

	d->ibdev.node_type = RDMA_NODE_IB_CA;
	d->ibdev.phys_port_cnt = 1;
	d->ibdev.num_comp_vectors = 1;
	d->ibdev.dev.parent = dev;
	/* The doorbell of a queue pair's mapped send queue (tbrdma_ib_qp.c). */
	d->ibdev.driver_def = tbrdma_ib_uapi_defs;
	/* Off by default: how a process asks for a completion event. */
	d->ibdev.uverbs_cmd_mask |= BIT_ULL(IB_USER_VERBS_CMD_REQ_NOTIFY_CQ);
	addrconf_addr_eui48((u8 *)&d->ibdev.node_guid, mac);
	snprintf(d->ibdev.node_desc, sizeof(d->ibdev.node_desc),
		 "tbrdma %s", attr.name);
	ib_set_device_ops(&d->ibdev, &tbrdma_ib_ops);
	ret = ib_device_set_netdev(&d->ibdev, d->ndev, 1);
	if (!ret)
		ret = ib_register_device(&d->ibdev, name, NULL);
	if (ret)
		goto fail_netdev;
	spin_lock(&d->port_lock);
	d->registered = true;
	spin_unlock(&d->port_lock);
	rcu_assign_pointer(tbrdma_ib_devs[index], d);
	queue_work(tbrdma_ib_wq, &d->state_work);
	ret = tbrdma_ib_netdev_open(d->ndev);
	if (ret)
		dev_warn(&d->ibdev.dev, "netdev %s stays down (%d)\n", name,
			 ret);
	return;

fail_netdev:
	ib_device_set_netdev(&d->ibdev, NULL, 1);
	tbrdma_ib_netdev_destroy(d->ndev);
fail_dealloc:
	ib_dealloc_device(&d->ibdev);
fail:
	pr_err("no RDMA device for %s (%d)\n", attr.name, ret);
}

static void tbrdma_ib_remove(struct tbrdma_client *c, u32 index)
{
	struct tbrdma_ibdev *d;

	if (index >= TBRDMA_CLIENT_MAX_LINKS)
		return;
	d = rcu_dereference_protected(tbrdma_ib_devs[index], true);
	if (!d)
		return;
	RCU_INIT_POINTER(tbrdma_ib_devs[index], NULL);
	synchronize_rcu();		/* changed() queues it no more */
	cancel_work_sync(&d->state_work);
	spin_lock(&d->port_lock);
	d->registered = false;		/* no port event from here on */
	spin_unlock(&d->port_lock);
	/* Takes it from the processes using it, drops its netdev. */
	ib_unregister_device(&d->ibdev);
	tbrdma_ib_netdev_destroy(d->ndev);
	ib_dealloc_device(&d->ibdev);
}

static void tbrdma_ib_changed(struct tbrdma_client *c, u32 index)
{
	struct tbrdma_ibdev *d;

	if (index >= TBRDMA_CLIENT_MAX_LINKS)
		return;
	d = rcu_dereference(tbrdma_ib_devs[index]);
	if (d)
		queue_work(tbrdma_ib_wq, &d->state_work);
}

static struct tbrdma_client tbrdma_ib_client = {
	.add = tbrdma_ib_add,
	.remove = tbrdma_ib_remove,
	.changed = tbrdma_ib_changed,
};

static int __init tbrdma_ib_init(void)
{
	tbrdma_ib_wq = alloc_workqueue("tbrdma_ib", WQ_UNBOUND, 0);
	if (!tbrdma_ib_wq)
		return -ENOMEM;
	tbrdma_client_register(&tbrdma_ib_client);
	return 0;
}

static void __exit tbrdma_ib_exit(void)
{
	tbrdma_client_unregister(&tbrdma_ib_client);
	destroy_workqueue(tbrdma_ib_wq);
}

module_init(tbrdma_ib_init);
module_exit(tbrdma_ib_exit);

MODULE_DESCRIPTION("RDMA devices (verbs) on tbrdma's Thunderbolt/USB4 links");
MODULE_AUTHOR("The tb project");
MODULE_LICENSE("GPL");
