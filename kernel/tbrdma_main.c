// SPDX-License-Identifier: GPL-2.0
/*
 * tbrdma: RDMA over Thunderbolt/USB4 -- module set-up.
 *
 * The host has one RDMA engine (src/common). Every link and every open
 * file of /dev/tbrdma lives in it; each link runs under its own lock, in
 * the process that posts and in its poll context (tbrdma_poll.c), a
 * kernel thread that polls busily while traffic flows and sleeps when its
 * links are idle. So WRITE, READ and ATOMIC on a process's memory complete
 * while that process sleeps. See docs/kernel.md.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/debugfs.h>
#include <linux/log2.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/seq_file.h>

#include "tbrdma.h"
#include "tbrdma_xdomain.h"

struct tbrdma_dev tbrdma;

static unsigned int tbrdma_nloops;
module_param_named(loop, tbrdma_nloops, uint, 0444);
MODULE_PARM_DESC(loop, "In-kernel loop cables (links loop0.., both ends in this host), 0-16 (default 0)");

unsigned int tbrdma_loop_slots = 64;
module_param_named(loop_slots, tbrdma_loop_slots, uint, 0444);
MODULE_PARM_DESC(loop_slots, "Receive slots of 4096 bytes at each end of a loop cable, 2-1024 (default 64)");

int tbrdma_param_set_range(const char *val, const struct kernel_param *kp,
			   unsigned int min, unsigned int max)
{
	int err = param_set_uint_minmax(val, kp, min, max);

	/* What sysfs passes ends in the newline echo wrote. */
	if (err)
		pr_err("%s=%.*s: must be %u-%u\n", kp->name,
		       (int)min_t(size_t, strcspn(val, "\n"), 16), val, min, max);
	return err;
}

static int tbrdma_poll_us_set(const char *val, const struct kernel_param *kp)
{
	return tbrdma_param_set_range(val, kp, 0, 100000);
}

static const struct kernel_param_ops tbrdma_poll_us_ops = {
	.set = tbrdma_poll_us_set,
	.get = param_get_uint,
};

unsigned int tbrdma_poll_us = 50;
module_param_cb(poll_us, &tbrdma_poll_us_ops, &tbrdma_poll_us, 0644);
__MODULE_PARM_TYPE(poll_us, "uint");
MODULE_PARM_DESC(poll_us, "Busy-poll the links this long after the last activity before sleeping, microseconds, 0-100000 (default 50)");

unsigned int tbrdma_max_mr = 4096;
module_param_named(max_mr, tbrdma_max_mr, uint, 0444);
MODULE_PARM_DESC(max_mr, "Memory regions per open file, rounded up to a power of two, 1-1048576 (default 4096)");

unsigned int tbrdma_max_ep = 16384;
module_param_named(max_ep, tbrdma_max_ep, uint, 0444);
MODULE_PARM_DESC(max_ep, "Endpoints per context, rounded up to a power of two, 1-65536 (default 16384); each costs memory only while it exists");

static unsigned int tbrdma_max_contexts = 256;
module_param_named(max_contexts, tbrdma_max_contexts, uint, 0444);
MODULE_PARM_DESC(max_contexts, "Contexts (files with queues) in the host, rounded up to a power of two, 2-65536 (default 256)");

unsigned int tbrdma_max_user_contexts = 64;
module_param_named(max_user_contexts, tbrdma_max_user_contexts, uint, 0444);
MODULE_PARM_DESC(max_user_contexts, "Contexts one user may have in the host (any with CAP_SYS_RESOURCE), 1-65536 (default 64)");
unsigned int tbrdma_max_user_pds = 1024;
module_param_named(max_user_pds, tbrdma_max_user_pds, uint, 0444);
MODULE_PARM_DESC(max_user_pds, "Protection domains (verbs domains and open /dev/tbrdma files) one user may have in the host (any with CAP_SYS_RESOURCE), 1-65536 (default 1024)");
unsigned int tbrdma_max_user_cqs = 4096;
module_param_named(max_user_cqs, tbrdma_max_user_cqs, uint, 0444);
MODULE_PARM_DESC(max_user_cqs, "Verbs completion queues one user may have in the host (any with CAP_SYS_RESOURCE), 1-65536 (default 4096)");
unsigned int tbrdma_max_user_srqs = 64;
module_param_named(max_user_srqs, tbrdma_max_user_srqs, uint, 0444);
MODULE_PARM_DESC(max_user_srqs, "Verbs shared receive queues one user may have in the host (any with CAP_SYS_RESOURCE), 1-65536 (default 64)");

/* perftest's UD tests post up to 16000 receives (mlx5 offers 32768). */
unsigned int tbrdma_max_ring = 16384;
module_param_named(max_ring_entries, tbrdma_max_ring, uint, 0444);
MODULE_PARM_DESC(max_ring_entries, "Largest SQ, CQ or RQ ring, entries, rounded up to a power of two, 2-65536 (default 16384)");

static unsigned int tbrdma_mr_max_mb = 16384;
module_param_named(mr_max_mb, tbrdma_mr_max_mb, uint, 0444);
MODULE_PARM_DESC(mr_max_mb, "Largest memory region, MiB, 1-1048576 (default 16384)");

static unsigned int tbrdma_rnr_timeout_ms = TB_RNR_TIMEOUT_NS / 1000000;
module_param_named(rnr_timeout_ms, tbrdma_rnr_timeout_ms, uint, 0444);
MODULE_PARM_DESC(rnr_timeout_ms, "A SEND to a full receive queue is resent this long, then fails, ms, 1-3600000 (default 30000)");

static unsigned int tbrdma_ext_min = TB_EXT_MIN;
module_param_named(ext_min, tbrdma_ext_min, uint, 0444);
MODULE_PARM_DESC(ext_min, "Data chunks of at least this many bytes go from registered memory as a second descriptor instead of being copied into the frame, on links that can; 0 copies always (default 1024)");

unsigned long tbrdma_mr_max_bytes;

static int tbrdma_check_params(void)
{
	if (tbrdma_nloops > TBRDMA_MAX_LOOPS) {
		pr_err("loop=%u: at most %u loop cables\n", tbrdma_nloops,
		       TBRDMA_MAX_LOOPS);
		return -EINVAL;
	}
	if (tbrdma_ext_min > TB_EXT_MAX) {
		pr_err("ext_min=%u: must be 0-%u\n", tbrdma_ext_min, TB_EXT_MAX);
		return -EINVAL;
	}
	if (tbrdma_loop_slots < 2 || tbrdma_loop_slots > 1024) {
		pr_err("loop_slots=%u: must be 2-1024\n", tbrdma_loop_slots);
		return -EINVAL;
	}
	if (!tbrdma_rnr_timeout_ms || tbrdma_rnr_timeout_ms > 3600000) {
		pr_err("rnr_timeout_ms=%u: must be 1-3600000\n",
		       tbrdma_rnr_timeout_ms);
		return -EINVAL;
	}
	if (!tbrdma_max_mr || tbrdma_max_mr > (1u << 20) ||
	    !tbrdma_max_ep || tbrdma_max_ep > (1u << 16) ||
	    tbrdma_max_contexts < 2 || tbrdma_max_contexts > (1u << 16) ||
	    !tbrdma_max_user_contexts ||
	    tbrdma_max_user_contexts > (1u << 16) ||
	    !tbrdma_max_user_pds || tbrdma_max_user_pds > (1u << 16) ||
	    !tbrdma_max_user_cqs || tbrdma_max_user_cqs > (1u << 16) ||
	    !tbrdma_max_user_srqs || tbrdma_max_user_srqs > (1u << 16) ||
	    tbrdma_max_ring < 2 || tbrdma_max_ring > (1u << 16) ||
	    !tbrdma_mr_max_mb || tbrdma_mr_max_mb > (1u << 20)) {
		pr_err("max_mr, max_ep, max_contexts, max_user_contexts, max_user_pds, max_user_cqs, max_user_srqs, max_ring_entries or mr_max_mb out of range\n");
		return -EINVAL;
	}
	tbrdma_max_mr = roundup_pow_of_two(tbrdma_max_mr);
	tbrdma_max_ep = roundup_pow_of_two(tbrdma_max_ep);
	tbrdma_max_contexts = roundup_pow_of_two(tbrdma_max_contexts);
	tbrdma_max_ring = roundup_pow_of_two(tbrdma_max_ring);
	tbrdma_mr_max_bytes = (unsigned long)tbrdma_mr_max_mb << 20;
	return 0;
}

static int tbrdma_status_show(struct seq_file *m, void *unused)
{
	u32 i;

	tbrdma_lock();
	seq_printf(m, "loops %u\npoll_us %u\nsq_polled %llu\n",
		   tbrdma.nloops, READ_ONCE(tbrdma_poll_us),
		   READ_ONCE(tbrdma.sq_polled));
	tbrdma_poller_show(m, &tbrdma.poller);
	for (i = 0; i < tbrdma.nloops; i++)
		tbrdma_loop_show(m, tbrdma.loops[i]);
	tbrdma_xd_show(m);
	tbrdma_unlock();
	tbrdma_dma_show(m);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(tbrdma_status);

/* Undoes whatever tbrdma_init() got done; nothing can use the device. */
static void tbrdma_teardown(void)
{
	u32 i;

	tbrdma_xd_exit();	/* logs out of peers, their links go */
	debugfs_remove_recursive(tbrdma.debugfs);
	tbrdma.debugfs = NULL;
	tbrdma_poller_stop(&tbrdma.poller);
	for (i = 0; i < tbrdma.nloops; i++) {
		tbrdma_loop_destroy(tbrdma.loops[i]);
		tbrdma.loops[i] = NULL;
	}
	tbrdma.nloops = 0;
	tb_engine_destroy(tbrdma.engine);
	tbrdma.engine = NULL;
	tbrdma_loop_class_unregister();
	bitmap_free(tbrdma.rx_pending);
	tbrdma.rx_pending = NULL;
	bitmap_free(tbrdma.xd_links);
	tbrdma.xd_links = NULL;
	kfree(tbrdma.rx_marker);
	tbrdma.rx_marker = NULL;
	kfree(tbrdma.link_poller);
	tbrdma.link_poller = NULL;
	kfree(tbrdma.link_lock);
	tbrdma.link_lock = NULL;
	tbrdma.nlinks = 0;
}

static int __init tbrdma_init(void)
{
	struct tb_engine_config cfg;
	struct tb_link_config link_cfg;
	int ret;
	u32 i;

	ret = tbrdma_check_params();
	if (ret)
		return ret;
	mutex_init(&tbrdma.lock);
	mutex_init(&tbrdma.sq_lock);
	INIT_LIST_HEAD(&tbrdma.sqs);
	tbrdma_poller_init(&tbrdma.poller, NULL);

	ret = tbrdma_loop_class_register(tbrdma_nloops);
	if (ret)
		return ret;
	tb_engine_config_default(&cfg);
	cfg.max_links = max(2 * tbrdma_nloops + tbrdma_xd_max_links(), 1u);
	cfg.max_ctx = tbrdma_max_contexts;
	cfg.ext_min = tbrdma_ext_min;
	cfg.rnr_timeout_ns = (u64)tbrdma_rnr_timeout_ms * NSEC_PER_MSEC;
	/* Loop cables keep the default resend timeouts (tbrdma_loop.c). */
	tb_link_config_default(&link_cfg);
	tbrdma.rx_mark_hold_ns = link_cfg.rto_min_ns / 2;
	tbrdma.link_lock = kcalloc(cfg.max_links, sizeof(*tbrdma.link_lock),
				   GFP_KERNEL);
	tbrdma.rx_pending = bitmap_zalloc(cfg.max_links, GFP_KERNEL);
	tbrdma.xd_links = bitmap_zalloc(cfg.max_links, GFP_KERNEL);
	tbrdma.rx_marker = kcalloc(cfg.max_links, sizeof(*tbrdma.rx_marker),
				   GFP_KERNEL);
	tbrdma.link_poller = kcalloc(cfg.max_links,
				     sizeof(*tbrdma.link_poller), GFP_KERNEL);
	if (!tbrdma.link_lock || !tbrdma.rx_pending || !tbrdma.xd_links ||
	    !tbrdma.rx_marker || !tbrdma.link_poller) {
		ret = -ENOMEM;
		goto fail;
	}
	for (i = 0; i < cfg.max_links; i++)
		mutex_init(&tbrdma.link_lock[i]);
	tbrdma.nlinks = cfg.max_links;
	ret = tb_engine_create(&tbrdma.engine, &cfg);
	if (ret)
		goto fail;
	ret = tbrdma_poller_start(&tbrdma.poller, "tbrdma_poll", NUMA_NO_NODE);
	if (ret)
		goto fail;
	for (i = 0; i < tbrdma_nloops; i++) {
		ret = tbrdma_loop_create(i, &tbrdma.loops[i]);
		if (ret)
			goto fail;
		tbrdma.nloops = i + 1;
		ret = tbrdma_loop_register(tbrdma.loops[i], NULL);
		if (ret)
			goto fail;
	}
	tbrdma.debugfs = debugfs_create_dir(KBUILD_MODNAME, NULL);
	debugfs_create_file("status", 0400, tbrdma.debugfs, NULL,
			    &tbrdma_status_fops);
	ret = tbrdma_xd_init();		/* Thunderbolt service, peers */
	if (ret)
		goto fail;
	/* Last: once the device exists, files can be opened. */
	ret = tbrdma_cdev_register();
	if (ret)
		goto fail;
	pr_info("/dev/tbrdma ready, ABI %u, %u loop link(s)\n",
		TBRDMA_ABI_VERSION, tbrdma.nloops);
	return 0;

fail:
	tbrdma_teardown();
	return ret;
}

static void __exit tbrdma_exit(void)
{
	/* The device first: the module is only unloaded with no file open. */
	tbrdma_cdev_unregister();
	tbrdma_teardown();
}

module_init(tbrdma_init);
module_exit(tbrdma_exit);

MODULE_DESCRIPTION("RDMA over Thunderbolt/USB4 host-to-host links (tb)");
MODULE_AUTHOR("The tb project");
MODULE_LICENSE("GPL");
