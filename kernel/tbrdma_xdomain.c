// SPDX-License-Identifier: GPL-2.0
/*
 * XDomain links: module parameters, the service driver that binds one
 * connection (tbN) per peer service, and the lookups /dev/tbrdma uses.
 * The whole design is described in tbrdma_xd.h.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/random.h>
#include <linux/seq_file.h>
#include <linux/slab.h>

#include "tbrdma_xd.h"

bool tbrdma_xd_enable = true;
module_param_named(xdomain, tbrdma_xd_enable, bool, 0444);
MODULE_PARM_DESC(xdomain, "Offer the tbrdma Thunderbolt/USB4 service and link to peers that offer it (default 1)");

static unsigned int tbrdma_xd_rx_slots = 256;
module_param_named(xd_rx_slots, tbrdma_xd_rx_slots, uint, 0444);
MODULE_PARM_DESC(xd_rx_slots, "Frames a peer may send ahead per XDomain link, 2-2047; the RX ring gets two 4096-byte buffers per frame (default 256)");

static unsigned int tbrdma_xd_tx_slots = 256;
module_param_named(xd_tx_slots, tbrdma_xd_tx_slots, uint, 0444);
MODULE_PARM_DESC(xd_tx_slots, "Frames kept for resending per XDomain link, 2-2047; the TX ring gets two 4096-byte buffers per frame (default 256)");

static bool tbrdma_xd_e2e;
module_param_named(xd_e2e, tbrdma_xd_e2e, bool, 0444);
MODULE_PARM_DESC(xd_e2e, "Ask for end-to-end flow control on XDomain rings; used when both hosts ask (default 0)");

unsigned int tbrdma_xd_throttle_ns;
module_param_named(xd_throttle_ns, tbrdma_xd_throttle_ns, uint, 0444);
MODULE_PARM_DESC(xd_throttle_ns, "Ring interrupt moderation, ns, on kernels with tb_ring_throttling(); 0: none on RX, 128 us on TX (default 0); above 128 us it also raises the retransmission timeout floor");

static int tbrdma_xd_timeout_ms_set(const char *val,
				    const struct kernel_param *kp)
{
	return tbrdma_param_set_range(val, kp, 50, 10000);
}

static const struct kernel_param_ops tbrdma_xd_timeout_ms_ops = {
	.set = tbrdma_xd_timeout_ms_set,
	.get = param_get_uint,
};

unsigned int tbrdma_xd_timeout_ms = 500;
module_param_cb(xd_timeout_ms, &tbrdma_xd_timeout_ms_ops,
		&tbrdma_xd_timeout_ms, 0644);
__MODULE_PARM_TYPE(xd_timeout_ms, "uint");
MODULE_PARM_DESC(xd_timeout_ms, "Timeout of one control request to a peer, ms, 50-10000 (default 500)");

/* Our service: key, protocol id and the UUID of its property directory. */
#define TBRDMA_XD_KEY "tbrdma"
#define TBRDMA_XD_PRTCID 1
#define TBRDMA_XD_PRTCREVS 1

/* 328989dc-9a45-4a60-960f-75e2da9324cb: the property directory. */
static const uuid_t tbrdma_xd_dir_uuid =
	UUID_INIT(0x328989dc, 0x9a45, 0x4a60,
		  0x96, 0x0f, 0x75, 0xe2, 0xda, 0x93, 0x24, 0xcb);

struct tbrdma_xd_table tbxd;

/* The last reference: the handler may have held one past remove. */
static void tbrdma_xd_release(struct device *dev)
{
	struct tbrdma_xd_link *xl = to_xl(dev);

	cancel_delayed_work_sync(&xl->work);	/* none can be queued now */
	tbrdma_dma_put_dev(xl->dma_id);		/* its links are down */
	tbrdma_xd_free_bufs(xl, xl->rx, TBRDMA_XD_DESC(xl->rx_slots));
	tbrdma_xd_free_bufs(xl, xl->tx, TBRDMA_XD_DESC(xl->tx_slots));
	kfree(xl->tx_free);
	if (xl->out_hopid >= 0)
		tb_xdomain_release_out_hopid(xl->xd, xl->out_hopid);
	tb_xdomain_put(xl->xd);
	mutex_destroy(&xl->ctrl_lock);
	kfree(xl);
}

/* Closes an unplugged connection and drops remove's reference. */
static void tbrdma_xd_close_work(struct work_struct *work)
{
	struct tbrdma_xd_link *xl = container_of(work, struct tbrdma_xd_link,
						 close_work);

	tbrdma_xd_close(xl, false);
	put_device(&xl->dev);
}

/* Service driver. */

static int tbrdma_xd_probe(struct tb_service *svc,
			   const struct tb_service_id *id)
{
	struct tb_xdomain *xd = tb_service_parent(svc);
	char peer[TBRDMA_XD_NAME_LEN];
	struct tbrdma_xd_link *xl;
	struct tb_ctrl_config cfg;
	int ret, slot;

	if (!xd || !xd->remote_uuid)
		return -ENODEV;
	xl = kzalloc(sizeof(*xl), GFP_KERNEL);
	if (!xl)
		return -ENOMEM;
	xl->svc = svc;
	xl->xd = tb_xdomain_get(xd);
	xl->route = xd->route;
	uuid_copy(&xl->local_uuid, xd->local_uuid);
	uuid_copy(&xl->remote_uuid, xd->remote_uuid);
	/* The host controller: the domain's parent (7.x has no nhi->pdev). */
	xl->dma_dev = xd->tb->dev.parent;
	xl->dma_id = -1;
	xl->in_hopid = -1;
	xl->out_hopid = -1;
	xl->rx_slots = tbrdma_xd_rx_slots;
	xl->tx_slots = tbrdma_xd_tx_slots;
	mutex_init(&xl->ctrl_lock);
	spin_lock_init(&xl->tx_lock);
	INIT_DELAYED_WORK(&xl->work, tbrdma_xd_work);
	INIT_WORK(&xl->close_work, tbrdma_xd_close_work);
	tbrdma_poller_init(&xl->poller, tbrdma_xd_idle);
	device_initialize(&xl->dev);
	xl->dev.class = &tbrdma_class;
	xl->dev.parent = &svc->dev;
	xl->dev.groups = tbrdma_xd_groups;
	dev_set_drvdata(&xl->dev, &xl->link);
	xl->dev.release = tbrdma_xd_release;

	/* From here on, put_device() frees everything. */
	ret = tb_xdomain_alloc_out_hopid(xd, -1);
	if (ret < 0) {
		dev_err(&svc->dev, "no output HopID for the peer (%d)\n", ret);
		goto fail;
	}
	xl->out_hopid = ret;
	ret = -ENOMEM;
	xl->tx_free = kcalloc(TBRDMA_XD_DESC(xl->tx_slots),
			      sizeof(*xl->tx_free), GFP_KERNEL);
	xl->rx = tbrdma_xd_alloc_bufs(xl, TBRDMA_XD_DESC(xl->rx_slots), NULL);
	xl->tx = tbrdma_xd_alloc_bufs(xl, TBRDMA_XD_DESC(xl->tx_slots),
				      tbrdma_xd_tx_done);
	if (!xl->tx_free || !xl->rx || !xl->tx)
		goto fail;
	/* Registered memory mapped for the controller, once for all links. */
	xl->dma_id = tbrdma_dma_add_dev(xl->dma_dev);
	if (xl->dma_id < 0)
		dev_warn(&svc->dev, "too many controllers: frames are copied\n");

	tb_ctrl_config_default(&cfg);
	tbrdma_xd_uuid_words(&xl->local_uuid, cfg.local_uuid);
	tbrdma_xd_uuid_words(&xl->remote_uuid, cfg.peer_uuid);
	do {
		cfg.boot = get_random_u64();
	} while (!cfg.boot);
	cfg.local.caps = tbrdma_xd_e2e ? TB_CTRL_CAP_E2E : 0;
	cfg.local.rx_slots = xl->rx_slots;
	cfg.local.tx_slots = xl->tx_slots;
	cfg.local.frame_max = TB_CTRL_FRAME_MAX;
	cfg.local.credits = xl->rx_slots;
	cfg.local.hopid = xl->out_hopid;
	ret = tb_ctrl_init(&xl->ctrl, &cfg);
	if (ret)
		goto fail;

	mutex_lock(&tbxd.lock);
	for (slot = 0; slot < TBRDMA_XD_MAX; slot++)
		if (!tbxd.slot[slot])
			break;
	if (slot == TBRDMA_XD_MAX) {
		mutex_unlock(&tbxd.lock);
		dev_err(&svc->dev, "more than %d XDomain links\n",
			TBRDMA_XD_MAX);
		ret = -ENOSPC;
		goto fail;
	}
	xl->slot = slot;
	ret = dev_set_name(&xl->dev, "tb%d", slot);
	if (!ret)
		ret = device_add(&xl->dev);
	if (ret) {
		mutex_unlock(&tbxd.lock);
		goto fail;
	}
	xl->dev_added = true;
	/* Visible to the handler, userspace (under tbrdma.lock), clients. */
	tbrdma_clients_lock();
	tbrdma_lock();
	spin_lock(&tbxd.slot_lock);
	tbxd.slot[slot] = xl;
	spin_unlock(&tbxd.slot_lock);
	tbrdma_unlock();
	tbrdma_clients_add(tbrdma_xd_index(xl), &xl->dev);
	tbrdma_clients_unlock();
	mutex_unlock(&tbxd.lock);

	tb_service_set_drvdata(svc, xl);
	mutex_lock(&xl->ctrl_lock);
	tb_ctrl_start(&xl->ctrl, tbrdma_xd_now());
	mutex_unlock(&xl->ctrl_lock);
	queue_delayed_work(tbxd.wq, &xl->work, 0);
	dev_info(&xl->dev, "peer %s (%pUb) on %s, %u Gb/s x %u, logging in\n",
		 tbrdma_xd_peer_name(xd, peer, sizeof(peer)), &xl->remote_uuid,
		 dev_name(&xd->dev),
		 xd->link_speed, xd->link_width);
	return 0;

fail:
	put_device(&xl->dev);
	return ret;
}

static void tbrdma_xd_unlist(struct tbrdma_xd_link *xl)
{
	mutex_lock(&tbxd.lock);
	tbrdma_clients_lock();
	tbrdma_clients_remove(tbrdma_xd_index(xl));
	tbrdma_lock();
	spin_lock(&tbxd.slot_lock);
	tbxd.slot[xl->slot] = NULL;
	spin_unlock(&tbxd.slot_lock);
	tbrdma_unlock();
	tbrdma_clients_unlock();
	mutex_unlock(&tbxd.lock);
}

static void tbrdma_xd_remove(struct tb_service *svc)
{
	struct tbrdma_xd_link *xl = tb_service_get_drvdata(svc);

	if (xl->xd->is_unplugged) {
		tbrdma_xd_unlist(xl);
		device_del(&xl->dev);
		/*
		 * The core removes an unplugged XDomain with the domain lock
		 * held, which our work item may be waiting for inside
		 * tb_xdomain_enable_paths(): waiting for the work here would
		 * deadlock, so the close runs once remove has returned. A
		 * peer that was unplugged cannot hear a LOGOUT anyway.
		 */
		mutex_lock(&xl->ctrl_lock);
		set_bit(TBRDMA_XD_CLOSING, &xl->flags);
		mutex_unlock(&xl->ctrl_lock);
		queue_work(tbxd.wq, &xl->close_work);
		return;
	}
	tbrdma_xd_close(xl, true);
	tbrdma_xd_unlist(xl);
	device_del(&xl->dev);
	put_device(&xl->dev);
}

static void tbrdma_xd_shutdown(struct tb_service *svc)
{
	struct tbrdma_xd_link *xl = tb_service_get_drvdata(svc);

	tbrdma_xd_close(xl, !xl->xd->is_unplugged);
}

static int __maybe_unused tbrdma_xd_suspend(struct device *dev)
{
	struct tbrdma_xd_link *xl = tb_service_get_drvdata(tb_to_service(dev));

	tbrdma_xd_close(xl, true);
	return 0;
}

static int __maybe_unused tbrdma_xd_resume(struct device *dev)
{
	struct tbrdma_xd_link *xl = tb_service_get_drvdata(tb_to_service(dev));

	clear_bit(TBRDMA_XD_CLOSING, &xl->flags);
	mutex_lock(&xl->ctrl_lock);
	tb_ctrl_start(&xl->ctrl, tbrdma_xd_now());
	mutex_unlock(&xl->ctrl_lock);
	queue_delayed_work(tbxd.wq, &xl->work, 0);
	return 0;
}

static const struct dev_pm_ops tbrdma_xd_pm_ops = {
	SET_SYSTEM_SLEEP_PM_OPS(tbrdma_xd_suspend, tbrdma_xd_resume)
};

static const struct tb_service_id tbrdma_xd_ids[] = {
	{ TB_SERVICE(TBRDMA_XD_KEY, TBRDMA_XD_PRTCID) },
	{ },
};
MODULE_DEVICE_TABLE(tbsvc, tbrdma_xd_ids);

static struct tb_service_driver tbrdma_xd_driver = {
	.driver = {
		.owner = THIS_MODULE,
		.name = "tbrdma",
		.pm = &tbrdma_xd_pm_ops,
	},
	.probe = tbrdma_xd_probe,
	.remove = tbrdma_xd_remove,
	.shutdown = tbrdma_xd_shutdown,
	.id_table = tbrdma_xd_ids,
};

/* Lookups for /dev/tbrdma, under tbrdma.lock. */

u32 tbrdma_xd_max_links(void)
{
	return tbrdma_xd_enable ? TBRDMA_XD_MAX : 0;
}

u32 tbrdma_xd_nslots(void)
{
	u32 i, n = 0;

	lockdep_assert_held(&tbrdma.lock);
	for (i = 0; i < TBRDMA_XD_MAX; i++)
		if (tbxd.slot[i])
			n = i + 1;
	return n;
}

u32 tbrdma_xd_engine_index(u32 slot)
{
	struct tbrdma_xd_link *xl;

	lockdep_assert_held(&tbrdma.lock);
	if (slot >= TBRDMA_XD_MAX || !tbxd.slot[slot])
		return U32_MAX;
	xl = tbxd.slot[slot];
	return xl->attached ? xl->link.index : U32_MAX;
}

int tbrdma_xd_lookup(u32 slot, struct tbrdma_link_attr *attr,
		     u32 *engine_index)
{
	struct tbrdma_xd_link *xl;

	lockdep_assert_held(&tbrdma.lock);
	if (slot >= TBRDMA_XD_MAX || !tbxd.slot[slot])
		return -EINVAL;
	xl = tbxd.slot[slot];
	*engine_index = xl->attached ? xl->link.index : U32_MAX;
	attr->state = TBRDMA_LINK_DOWN;
	snprintf(attr->name, sizeof(attr->name), "tb%u", slot);
	attr->identity = xl->identity;
	attr->speed_mbps = tbrdma_xd_speed_mbps(xl);
	attr->latency_ns = TBRDMA_XD_LATENCY_NS;
	attr->numa_node = tbrdma_xd_numa(xl);
	strscpy(attr->pci_addr, dev_name(xl->dma_dev), sizeof(attr->pci_addr));
	attr->end_id = tbrdma_xd_end_id(xl);
	if (xl->attached) {
		/* The link runs meanwhile: its state under its lock. */
		tbrdma_link_lock(xl->link.index);
		attr->state = tbrdma_xd_state(xl);
		attr->rtt_ns = tb_link_rtt_ns(&xl->link);
		tbrdma_link_unlock(xl->link.index);
	}
	return 0;
}

u64 tbrdma_xd_identity(u32 slot)
{
	lockdep_assert_held(&tbrdma.lock);
	return slot < TBRDMA_XD_MAX && tbxd.slot[slot] ?
	       tbxd.slot[slot]->identity : 0;
}

struct device *tbrdma_xd_device(u32 slot)
{
	lockdep_assert_held(&tbrdma.lock);
	return slot < TBRDMA_XD_MAX && tbxd.slot[slot] ?
	       &tbxd.slot[slot]->dev : NULL;
}

void tbrdma_xd_show(struct seq_file *m)
{
	u64 deadline;
	u32 i;

	lockdep_assert_held(&tbrdma.lock);
	for (i = 0; i < TBRDMA_XD_MAX; i++) {
		const struct tbrdma_xd_link *xl = tbxd.slot[i];
		const struct tb_link *l;

		if (!xl)
			continue;
		l = &xl->link;
		seq_printf(m, "tb%u route %llx peer %pUb login %s identity %016llx\n",
			   i, xl->route, &xl->remote_uuid,
			   tb_ctrl_state_name(READ_ONCE(xl->ctrl.state)),
			   xl->identity);
		seq_printf(m, "  rings_live %d rx_armed %d irqs %llu tx_busy %llu crc %llu overruns %llu\n",
			   xl->rings_live, READ_ONCE(xl->rx_armed),
			   xl->stats.irqs, xl->stats.tx_busy,
			   xl->stats.rx_crc_errors, xl->stats.rx_overruns);
		tbrdma_poller_show(m, &xl->poller);
		if (!xl->attached)
			continue;
		seq_printf(m, "  engine link %u state %s epoch %08x peer %08x\n",
			   l->index, tbrdma_xd_state_names[l->state],
			   l->epoch, l->peer_epoch);
		seq_printf(m, "  tx next %u una %u resend %u credit %u rto_ns %llu rx next %u\n",
			   l->tx_next, l->tx_una, l->tx_resend, l->tx_credit,
			   l->rto_ns, l->rx_next);
		deadline = tb_link_next_deadline(l);
		seq_printf(m, "  timer %lld ns from now\n",
			   deadline ? (s64)(deadline - ktime_get_ns()) : 0);
	}
}

static int tbrdma_xd_check_params(void)
{
	if (tbrdma_xd_rx_slots < TB_CTRL_SLOTS_MIN ||
	    tbrdma_xd_rx_slots > TBRDMA_XD_SLOTS_MAX ||
	    tbrdma_xd_tx_slots < TB_CTRL_SLOTS_MIN ||
	    tbrdma_xd_tx_slots > TBRDMA_XD_SLOTS_MAX) {
		pr_err("xd_rx_slots=%u xd_tx_slots=%u: must be %u-%u\n",
		       tbrdma_xd_rx_slots, tbrdma_xd_tx_slots,
		       TB_CTRL_SLOTS_MIN, TBRDMA_XD_SLOTS_MAX);
		return -EINVAL;
	}
#ifndef TBRDMA_HAVE_RING_THROTTLING
	if (tbrdma_xd_throttle_ns)
		pr_warn("xd_throttle_ns=%u ignored: this kernel has no tb_ring_throttling()\n",
			tbrdma_xd_throttle_ns);
#endif
	return 0;
}

int tbrdma_xd_init(void)
{
	int ret;

	mutex_init(&tbxd.lock);
	spin_lock_init(&tbxd.slot_lock);
	atomic_set(&tbxd.handler_calls, 0);
	init_waitqueue_head(&tbxd.handler_wq);
	tbrdma_xd_sysfs_init();
	if (!tbrdma_xd_enable) {
		pr_info("XDomain links disabled (xdomain=0)\n");
		return 0;
	}
	ret = tbrdma_xd_check_params();
	if (ret)
		return ret;
	tbxd.wq = alloc_workqueue("tbrdma_xd", WQ_UNBOUND, 0);
	if (!tbxd.wq)
		return -ENOMEM;

	ret = -ENOMEM;
	tbxd.dir = tb_property_create_dir(&tbrdma_xd_dir_uuid);
	if (!tbxd.dir)
		goto fail;
	if (tb_property_add_immediate(tbxd.dir, "prtcid", TBRDMA_XD_PRTCID) ||
	    tb_property_add_immediate(tbxd.dir, "prtcvers",
				      TB_CTRL_VERSION_MAX) ||
	    tb_property_add_immediate(tbxd.dir, "prtcrevs",
				      TBRDMA_XD_PRTCREVS) ||
	    tb_property_add_immediate(tbxd.dir, "prtcstns",
				      tbrdma_xd_e2e ? TB_CTRL_CAP_E2E : 0))
		goto fail;

	/* The handler first: a peer may answer our service at once. */
	ret = tb_register_protocol_handler(&tbrdma_xd_handler);
	if (ret)
		goto fail;
	tbxd.handler_registered = true;
	ret = tb_register_property_dir(TBRDMA_XD_KEY, tbxd.dir);
	if (ret)
		goto fail;
	tbxd.dir_registered = true;
	ret = tb_register_service_driver(&tbrdma_xd_driver);
	if (ret)
		goto fail;
	tbxd.driver_registered = true;
	pr_info("Thunderbolt service \"%s\" offered, protocol %u-%u%s\n",
		TBRDMA_XD_KEY, TB_CTRL_VERSION_MIN, TB_CTRL_VERSION_MAX,
		tbrdma_xd_e2e ? ", E2E" : "");
	return 0;

fail:
	pr_err("cannot offer the Thunderbolt service (%d)\n", ret);
	tbrdma_xd_exit();
	return ret;
}

void tbrdma_xd_exit(void)
{
	/* Each bound connection logs out and takes its link down. */
	if (tbxd.driver_registered)
		tb_unregister_service_driver(&tbrdma_xd_driver);
	tbxd.driver_registered = false;
	if (tbxd.dir_registered)
		tb_unregister_property_dir(TBRDMA_XD_KEY, tbxd.dir);
	tbxd.dir_registered = false;
	if (tbxd.handler_registered) {
		tb_unregister_protocol_handler(&tbrdma_xd_handler);
		wait_event(tbxd.handler_wq, !atomic_read(&tbxd.handler_calls));
	}
	tbxd.handler_registered = false;
	if (tbxd.dir)
		tb_property_free_dir(tbxd.dir);
	tbxd.dir = NULL;
	if (tbxd.wq)
		destroy_workqueue(tbxd.wq);
	tbxd.wq = NULL;
}
