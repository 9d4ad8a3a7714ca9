// SPDX-License-Identifier: GPL-2.0
/*
 * tbsim: the module. Two simulated hosts, each taking one of the VM's
 * edu or pci-testdev PCI devices as its host controller, and 1 or 2
 * cables between them, plugged at load; or (pair=0 or 1) one host, whose
 * one cable leads to the other host in another VM (tbsim_shm.c). Knobs are
 * module parameters (writable ones take effect at once); debugfs
 * tbsim/cableN/ has "plugged" (write 0 or 1 to unplug or replug) and
 * "stats" (what the wire did).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/debugfs.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/pci.h>
#include <linux/seq_file.h>
#include <linux/slab.h>

#include "tbsim.h"

struct tbsim tbsim = {
	.topology = __MUTEX_INITIALIZER(tbsim.topology),
	.lock = __MUTEX_INITIALIZER(tbsim.lock),
	.pair = -1,
};

struct tbsim_knobs tbsim_knobs = {
	.gbps = 20,
	.latency_ns = 1000,
	.moderation_ns = 128000,
	.wire_depth = 64,
};

static int tbsim_cables = 1;
module_param_named(cables, tbsim_cables, int, 0444);
MODULE_PARM_DESC(cables, "Cables between the two hosts, 1-2 (default 1)");
module_param_named(pair, tbsim.pair, int, 0444);
MODULE_PARM_DESC(pair, "This kernel is host 0 or 1 of two VMs joined by QEMU's ivshmem-plain; -1: both hosts here (default)");
module_param_named(gbps, tbsim_knobs.gbps, uint, 0644);
MODULE_PARM_DESC(gbps, "Wire rate per cable and direction, Gb/s, 0: unlimited (default 20)");
module_param_named(latency_ns, tbsim_knobs.latency_ns, uint, 0644);
MODULE_PARM_DESC(latency_ns, "One-way wire latency, ns (default 1000)");
module_param_named(moderation_ns, tbsim_knobs.moderation_ns, uint, 0644);
MODULE_PARM_DESC(moderation_ns, "Minimum time between two interrupts of a ring allocated from now on, ns, on kernels without tb_ring_throttling() (default 128000, as Linux 6.1)");
module_param_named(loss_ppm, tbsim_knobs.loss_ppm, uint, 0644);
MODULE_PARM_DESC(loss_ppm, "Frames lost on the wire, per million (default 0)");
module_param_named(corrupt_ppm, tbsim_knobs.corrupt_ppm, uint, 0644);
MODULE_PARM_DESC(corrupt_ppm, "Frames arriving with a CRC error, per million (default 0)");
module_param_named(rx_limit, tbsim_knobs.rx_limit, uint, 0644);
MODULE_PARM_DESC(rx_limit, "RX descriptors a ring may have filled and not yet consumed; more arrivals are dropped, 0: the ring's size (default 0)");
module_param_named(wire_depth, tbsim_knobs.wire_depth, uint, 0644);
MODULE_PARM_DESC(wire_depth, "Frames on the wire per direction before TX waits (default 64)");

/* Host controllers: the VM's edu and pci-testdev devices, in probe order. */

static const struct pci_device_id tbsim_pci_ids[] = {
	{ PCI_DEVICE(0x1234, 0x11e8) },		/* QEMU edu */
	{ PCI_DEVICE(0x1b36, 0x0005) },		/* QEMU pci-testdev */
	{ }
};

static int tbsim_pci_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct tbsim_host *h;
	int i, ret;

	if (tbsim.pair >= 0)
		i = tbsim.host[tbsim.pair] ? TBSIM_HOSTS : tbsim.pair;
	else
		for (i = 0; i < TBSIM_HOSTS && tbsim.host[i]; i++)
			;
	if (i == TBSIM_HOSTS)
		return -ENODEV;		/* enough controllers */
	ret = pcim_enable_device(pdev);
	if (ret)
		return ret;
	pci_set_master(pdev);
	ret = dma_set_mask_and_coherent(&pdev->dev, DMA_BIT_MASK(64));
	if (ret)
		return ret;
	h = kzalloc(sizeof(*h), GFP_KERNEL);
	if (!h)
		return -ENOMEM;
	h->index = i;
	h->pdev = pdev;
	uuid_gen(&h->uuid);
	snprintf(h->name, sizeof(h->name), "tbsim-host%d", i);
	spin_lock_init(&h->nhi.lock);
	h->nhi.pdev = pdev;
	h->nhi.hop_count = TBSIM_HOP_COUNT;
	INIT_WORK(&h->tx_work, tbsim_tx_work);
	spin_lock_init(&h->req_lock);
	INIT_LIST_HEAD(&h->requests);
	h->ctl_wq = alloc_ordered_workqueue("tbsim_ctl%d", 0, i);
	if (!h->ctl_wq) {
		kfree(h);
		return -ENOMEM;
	}
	pci_set_drvdata(pdev, h);
	tbsim.host[i] = h;
	dev_info(&pdev->dev, "host %d controller, UUID %pUb\n", i, &h->uuid);
	return 0;
}

static void tbsim_pci_remove(struct pci_dev *pdev)
{
	struct tbsim_host *h = pci_get_drvdata(pdev);

	cancel_work_sync(&h->tx_work);
	tbsim.host[h->index] = NULL;
	destroy_workqueue(h->ctl_wq);
	kfree(h);
}

static struct pci_driver tbsim_pci_driver = {
	.name = "tbsim",
	.id_table = tbsim_pci_ids,
	.probe = tbsim_pci_probe,
	.remove = tbsim_pci_remove,
};

/* debugfs */

static struct dentry *tbsim_debugfs;

static int tbsim_plugged_get(void *data, u64 *val)
{
	struct tbsim_cable *c = data;

	*val = READ_ONCE(c->plugged);
	return 0;
}

static int tbsim_plugged_set(void *data, u64 val)
{
	struct tbsim_cable *c = data;

	if (tbsim.pair >= 0) {
		tbsim_shm_set_plugged(val);
		return 0;
	}
	if (val)
		return tbsim_plug(c);
	tbsim_unplug(c);
	return 0;
}
DEFINE_DEBUGFS_ATTRIBUTE(tbsim_plugged_fops, tbsim_plugged_get,
			 tbsim_plugged_set, "%llu\n");

static int tbsim_stats_show(struct seq_file *m, void *v)
{
	struct tbsim_cable *c = m->private;
	int h;

	for (h = 0; h < TBSIM_HOSTS; h++) {
		const struct tbsim_wire_stats *s = &c->wire[h].stats;

		seq_printf(m, "host%d->host%d frames %llu bytes %llu lost %llu corrupted %llu no_buffer %llu bad_pdf %llu no_path %llu dma_faults %llu unaligned %llu by_poster %llu\n",
			   h, !h, s->frames, s->bytes, s->lost, s->corrupted,
			   s->no_buffer, s->bad_pdf, s->no_path,
			   s->dma_faults, s->unaligned, s->by_poster);
	}
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(tbsim_stats);

static void tbsim_debugfs_init(void)
{
	int c;

	tbsim_debugfs = debugfs_create_dir("tbsim", NULL);
	for (c = 0; c < tbsim.ncables; c++) {
		struct dentry *d;
		char name[16];

		snprintf(name, sizeof(name), "cable%d", c);
		d = debugfs_create_dir(name, tbsim_debugfs);
		debugfs_create_file("plugged", 0600, d, &tbsim.cable[c],
				    &tbsim_plugged_fops);
		debugfs_create_file("stats", 0400, d, &tbsim.cable[c],
				    &tbsim_stats_fops);
	}
}

static void tbsim_teardown(void)
{
	int c, h;

	debugfs_remove_recursive(tbsim_debugfs);
	tbsim_shm_stop();
	for (c = 0; c < tbsim.ncables; c++)
		tbsim_unplug(&tbsim.cable[c]);
	for (h = 0; h < TBSIM_HOSTS; h++)
		if (tbsim.host[h]) {
			flush_workqueue(tbsim.host[h]->ctl_wq);
			tbsim_host_unregister(tbsim.host[h]);
		}
	tbsim_bus_exit();
	pci_unregister_driver(&tbsim_pci_driver);
	if (tbsim.pair >= 0)
		pci_unregister_driver(&tbsim_shm_driver);
	if (tbsim.wq)
		destroy_workqueue(tbsim.wq);
}

static int __init tbsim_init(void)
{
	int c, h, hosts = tbsim.pair >= 0 ? 1 : TBSIM_HOSTS, ret;

	if (tbsim_cables < 1 || tbsim_cables > TBSIM_CABLES_MAX) {
		pr_err("cables=%d: must be 1-%d\n", tbsim_cables,
		       TBSIM_CABLES_MAX);
		return -EINVAL;
	}
	if (tbsim.pair >= TBSIM_HOSTS || (tbsim.pair >= 0 && tbsim_cables > 1)) {
		pr_err("pair=%d: must be 0 or 1 (or -1), with one cable\n",
		       tbsim.pair);
		return -EINVAL;
	}
	tbsim.ncables = tbsim_cables;
	for (c = 0; c < tbsim.ncables; c++) {
		struct tbsim_cable *cable = &tbsim.cable[c];

		cable->index = c;
		/* Cable c joins port 2c+1 of each host. */
		for (h = 0; h < TBSIM_HOSTS; h++) {
			cable->route[h] = 2 * c + 1;
			tbsim_wire_init(&cable->wire[h], cable, h);
		}
	}
	tbsim.wq = alloc_workqueue("tbsim", WQ_UNBOUND, 0);
	if (!tbsim.wq)
		return -ENOMEM;
	ret = tbsim_bus_init();
	if (ret) {
		destroy_workqueue(tbsim.wq);
		return ret;
	}
	ret = tbsim.pair >= 0 ? pci_register_driver(&tbsim_shm_driver) : 0;
	if (!ret) {
		ret = pci_register_driver(&tbsim_pci_driver);
		if (ret && tbsim.pair >= 0)
			pci_unregister_driver(&tbsim_shm_driver);
	}
	if (ret) {
		tbsim_bus_exit();
		destroy_workqueue(tbsim.wq);
		return ret;
	}
	for (h = 0; h < TBSIM_HOSTS; h++) {
		if (tbsim.pair >= 0 && h != tbsim.pair)
			continue;
		if (!tbsim.host[h]) {
			pr_err("needs %d host controller(s): QEMU -device edu (or pci-testdev), one per host\n",
			       hosts);
			ret = -ENODEV;
			goto fail;
		}
		ret = tbsim_host_register(tbsim.host[h]);
		if (ret)
			goto fail;
	}
	for (c = 0; c < tbsim.ncables; c++) {
		if (tbsim.pair >= 0)
			ret = tbsim_shm_start(tbsim.host[tbsim.pair],
					      &tbsim.cable[c]);
		else
			ret = tbsim_plug(&tbsim.cable[c]);
		if (ret)
			goto fail;
	}
	tbsim_debugfs_init();
	pr_info("%d host(s) here, %d cable(s), %u Gb/s, %u ns, interrupts every %u ns at most\n",
		hosts, tbsim.ncables, tbsim_knobs.gbps,
		tbsim_knobs.latency_ns, tbsim_knobs.moderation_ns);
	return 0;

fail:
	tbsim_teardown();
	return ret;
}

static void __exit tbsim_exit(void)
{
	tbsim_teardown();
}

module_init(tbsim_init);
module_exit(tbsim_exit);
MODULE_DESCRIPTION("Simulated Thunderbolt/USB4 service API for tbrdma tests");
MODULE_LICENSE("GPL");
