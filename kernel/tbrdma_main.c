// SPDX-License-Identifier: GPL-2.0
/*
 * tbrdma: RDMA over Thunderbolt/USB4 -- module set-up and the poll thread.
 *
 * The host has one RDMA engine (src/common). Every link and every open
 * file of /dev/tbrdma lives in it; each link runs under its own lock, in
 * the process that posts and in a kernel thread that polls busily while
 * traffic flows and sleeps when the links are idle, until a frame, a
 * doorbell or a link timer wakes it. So WRITE, READ and ATOMIC on a
 * process's memory complete while that process sleeps. See
 * docs/kernel.md.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/debugfs.h>
#include <linux/kthread.h>
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

static unsigned int tbrdma_poll_us = 50;
module_param_named(poll_us, tbrdma_poll_us, uint, 0644);
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

unsigned int tbrdma_max_ring = 4096;
module_param_named(max_ring_entries, tbrdma_max_ring, uint, 0444);
MODULE_PARM_DESC(max_ring_entries, "Largest SQ, CQ or RQ ring, entries, rounded up to a power of two, 2-65536 (default 4096)");

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
	if (tbrdma_poll_us > 100000) {
		pr_err("poll_us=%u: must be 0-100000\n", tbrdma_poll_us);
		return -EINVAL;
	}
	if (!tbrdma_max_mr || tbrdma_max_mr > (1u << 20) ||
	    !tbrdma_max_ep || tbrdma_max_ep > (1u << 16) ||
	    tbrdma_max_contexts < 2 || tbrdma_max_contexts > (1u << 16) ||
	    !tbrdma_max_user_contexts ||
	    tbrdma_max_user_contexts > (1u << 16) ||
	    tbrdma_max_ring < 2 || tbrdma_max_ring > (1u << 16) ||
	    !tbrdma_mr_max_mb || tbrdma_mr_max_mb > (1u << 20)) {
		pr_err("max_mr, max_ep, max_contexts, max_user_contexts, max_ring_entries or mr_max_mb out of range\n");
		return -EINVAL;
	}
	tbrdma_max_mr = roundup_pow_of_two(tbrdma_max_mr);
	tbrdma_max_ep = roundup_pow_of_two(tbrdma_max_ep);
	tbrdma_max_contexts = roundup_pow_of_two(tbrdma_max_contexts);
	tbrdma_max_ring = roundup_pow_of_two(tbrdma_max_ring);
	tbrdma_mr_max_bytes = (unsigned long)tbrdma_mr_max_mb << 20;
	return 0;
}

void tbrdma_kick(void)
{
	/*
	 * The poll thread clears the flag before each round it runs, so it
	 * needs no wake-up from itself; but an interrupt (start_poll) can
	 * land on its CPU while it is between its last look and its sleep.
	 */
	if (!atomic_xchg(&tbrdma.kicked, 1) &&
	    !(in_task() && current == tbrdma.poll_thread))
		wake_up(&tbrdma.poll_wq);
}

/*
 * A link's deadline, set while the poll thread is not looking at that
 * link: noted for the thread's next look at the time (tbrdma_set_timer()),
 * and a wake-up if it comes before the one the thread sleeps until.
 * Either the thread finds the note after publishing timer_at, or this
 * reads the new timer_at: the two full barriers pair.
 */
static void tbrdma_note_deadline(u64 d)
{
	s64 old;

	if (!d)
		return;
	old = atomic64_read(&tbrdma.deadline_noted);
	while ((u64)old > d &&
	       !atomic64_try_cmpxchg(&tbrdma.deadline_noted, &old, (s64)d))
		;
	smp_mb();	/* the note before timer_at is read */
	if (d < READ_ONCE(tbrdma.timer_at) && current != tbrdma.poll_thread)
		tbrdma_kick();
}

/*
 * The poll thread: deadline (0: none) is what it found on the links;
 * publishes the one it will sleep until, with the notes folded in.
 */
static u64 tbrdma_set_timer(u64 deadline)
{
	u64 noted;

	WRITE_ONCE(tbrdma.timer_at, deadline ?: U64_MAX);
	smp_mb();	/* timer_at before the notes are read */
	noted = atomic64_xchg(&tbrdma.deadline_noted, -1);
	if (noted != U64_MAX && (!deadline || noted < deadline)) {
		deadline = noted;
		WRITE_ONCE(tbrdma.timer_at, deadline);
	}
	return deadline;
}

void tbrdma_lock(void)
{
	u32 i;

	mutex_lock(&tbrdma.lock);
	for (i = 0; i < tbrdma.nlinks; i++)
		mutex_lock_nest_lock(&tbrdma.link_lock[i], &tbrdma.lock);
}

void tbrdma_unlock(void)
{
	u32 i;

	if (tbrdma.engine)
		tbrdma_note_deadline(tb_engine_next_deadline(tbrdma.engine));
	for (i = tbrdma.nlinks; i-- > 0;)
		mutex_unlock(&tbrdma.link_lock[i]);
	mutex_unlock(&tbrdma.lock);
	tbrdma_rx_now();
}

void tbrdma_link_lock(u32 i)
{
	mutex_lock(&tbrdma.link_lock[i]);
}

void tbrdma_link_unlock(u32 i)
{
	tbrdma_note_deadline(tb_engine_link_deadline(tbrdma.engine, i));
	mutex_unlock(&tbrdma.link_lock[i]);
}

void tbrdma_rx_mark(u32 i)
{
	set_bit(i, tbrdma.rx_pending);
}

void tbrdma_rx_mark_xd(void)
{
	u32 i;

	/* A link going meanwhile leaves a mark that runs nothing. */
	for_each_set_bit(i, tbrdma.xd_links, tbrdma.nlinks)
		if (!test_bit(i, tbrdma.rx_pending))
			tbrdma_rx_mark(i);
}

/*
 * Passes of tbrdma_rx_now() before the poll thread takes over: each moves
 * up to a window of frames per link (64 by default, 256 KiB), so a caller
 * carries about 2 MiB for others at most, like NAPI's budget.
 */
#define TBRDMA_RX_NOW_PASSES 8

/*
 * What the caller's transmissions started runs on at once: a frame on a
 * loop cable is received at the other end, as the core polling a DMA
 * ring would; after a frame went out on an XDomain link, every XDomain RX
 * ring is polled, as a socket's busy polling does, so that an answer
 * already there needs no interrupt and no poll thread. Pass after pass while a
 * pass receives more, each link under its own lock; what is left goes to
 * the poll thread.
 */
void tbrdma_rx_now(void)
{
	bool waiting = false;
	u32 pass, i;

	for (pass = 0; pass < TBRDMA_RX_NOW_PASSES; pass++) {
		u64 now = ktime_get_ns();

		if (bitmap_empty(tbrdma.rx_pending, tbrdma.nlinks))
			break;
		for_each_set_bit(i, tbrdma.rx_pending, tbrdma.nlinks) {
			struct tb_link *link;

			if (!test_and_clear_bit(i, tbrdma.rx_pending))
				continue;
			tbrdma_link_lock(i);
			/* A window's worth: the ring may hold more. */
			if (tb_engine_progress_link(tbrdma.engine, i, now))
				tbrdma_rx_mark(i);
			/* The engine cannot take a frame yet (a full RQ). */
			link = tb_engine_link(tbrdma.engine, i);
			waiting |= link && tb_link_rx_held(link);
			tbrdma_link_unlock(i);
		}
		cond_resched();
	}
	/*
	 * Frames the engine cannot take yet, or more than this caller should
	 * carry: the poll thread keeps at them. An XDomain ring left with
	 * frames raises its interrupt.
	 */
	if (waiting || !bitmap_empty(tbrdma.rx_pending, tbrdma.nlinks))
		tbrdma_kick();
}

/*
 * One round: every link receives, executes, completes, retransmits and
 * transmits, and the polled SQs are taken. Returns the engine's next timer
 * deadline (0: none, 1: at once) and whether the round found work.
 */
static u64 tbrdma_round(bool *busy)
{
	bool kicked = atomic_xchg(&tbrdma.kicked, 0);
	u64 deadline = 0, now, d;
	int handled;
	u32 i;

	mutex_lock(&tbrdma.lock);
	tbrdma_sq_polling(true);
	handled = tbrdma_sq_poll();
	now = ktime_get_ns();
	for (i = 0; i < tbrdma.nlinks; i++) {
		mutex_lock(&tbrdma.link_lock[i]);
		handled += tb_engine_progress_link(tbrdma.engine, i, now);
		d = tb_engine_link_deadline(tbrdma.engine, i);
		mutex_unlock(&tbrdma.link_lock[i]);
		if (d && (!deadline || d < deadline))
			deadline = d;
	}
	mutex_unlock(&tbrdma.lock);
	tbrdma_rx_now();
	deadline = tbrdma_set_timer(deadline);
	*busy = handled > 0 || kicked;
	WRITE_ONCE(tbrdma.rounds, tbrdma.rounds + 1);
	if (*busy)
		WRITE_ONCE(tbrdma.busy_rounds, tbrdma.busy_rounds + 1);
	return deadline;
}

/* Turns SQ polling off; true if the last look took SQEs. */
static bool tbrdma_sq_stop(void)
{
	u32 taken;

	mutex_lock(&tbrdma.lock);
	taken = tbrdma_sq_polling(false);
	mutex_unlock(&tbrdma.lock);
	tbrdma_rx_now();
	return taken;
}

static int tbrdma_poll_fn(void *unused)
{
	u64 busy_until = 0;

	while (!kthread_should_stop()) {
		u64 now, deadline;
		ktime_t timeout;
		bool busy;

		deadline = tbrdma_round(&busy);
		now = ktime_get_ns();
		if (busy)
			busy_until = now + (u64)READ_ONCE(tbrdma_poll_us) *
					   NSEC_PER_USEC;
		if ((deadline && deadline <= now) || now < busy_until) {
			/*
			 * Polling: a frame may be due any moment. While the
			 * CPU is away, SQ polling is off: an SQE would wait
			 * for this thread's next turn rather than a doorbell.
			 */
			if (need_resched())
				tbrdma_sq_stop();
			cond_resched();
			continue;
		}
		/* Processes ring the doorbell again, after a last look. */
		if (tbrdma_sq_stop())
			continue;
		tbrdma_xd_idle();	/* XDomain RX interrupts back on */
		/* What the last look and the rings' polls set on the way. */
		deadline = tbrdma_set_timer(deadline);
		now = ktime_get_ns();
		if (deadline && deadline <= now)
			continue;
		timeout = deadline ? ns_to_ktime(deadline - now) : KTIME_MAX;
		WRITE_ONCE(tbrdma.sleeps, tbrdma.sleeps + 1);
		wait_event_interruptible_hrtimeout(tbrdma.poll_wq,
						   atomic_read(&tbrdma.kicked) ||
						   kthread_should_stop(),
						   timeout);
	}
	return 0;
}

static int tbrdma_status_show(struct seq_file *m, void *unused)
{
	u32 i;

	tbrdma_lock();
	seq_printf(m, "loops %u\npoll_us %u\nrounds %llu\nbusy_rounds %llu\nsleeps %llu\nsq_polled %llu\n",
		   tbrdma.nloops, READ_ONCE(tbrdma_poll_us),
		   READ_ONCE(tbrdma.rounds), READ_ONCE(tbrdma.busy_rounds),
		   READ_ONCE(tbrdma.sleeps), tbrdma.sq_polled);
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
	if (tbrdma.poll_thread) {
		kthread_stop(tbrdma.poll_thread);
		tbrdma.poll_thread = NULL;
	}
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
	kfree(tbrdma.link_lock);
	tbrdma.link_lock = NULL;
	tbrdma.nlinks = 0;
}

static int __init tbrdma_init(void)
{
	struct tb_engine_config cfg;
	struct task_struct *t;
	int ret;
	u32 i;

	ret = tbrdma_check_params();
	if (ret)
		return ret;
	mutex_init(&tbrdma.lock);
	INIT_LIST_HEAD(&tbrdma.sqs);
	init_waitqueue_head(&tbrdma.poll_wq);
	atomic_set(&tbrdma.kicked, 0);

	ret = tbrdma_loop_class_register(tbrdma_nloops);
	if (ret)
		return ret;
	tb_engine_config_default(&cfg);
	cfg.max_links = max(2 * tbrdma_nloops + tbrdma_xd_max_links(), 1u);
	cfg.max_ctx = tbrdma_max_contexts;
	cfg.ext_min = tbrdma_ext_min;
	cfg.rnr_timeout_ns = (u64)tbrdma_rnr_timeout_ms * NSEC_PER_MSEC;
	tbrdma.link_lock = kcalloc(cfg.max_links, sizeof(*tbrdma.link_lock),
				   GFP_KERNEL);
	tbrdma.rx_pending = bitmap_zalloc(cfg.max_links, GFP_KERNEL);
	tbrdma.xd_links = bitmap_zalloc(cfg.max_links, GFP_KERNEL);
	if (!tbrdma.link_lock || !tbrdma.rx_pending || !tbrdma.xd_links) {
		ret = -ENOMEM;
		goto fail;
	}
	for (i = 0; i < cfg.max_links; i++)
		mutex_init(&tbrdma.link_lock[i]);
	tbrdma.nlinks = cfg.max_links;
	tbrdma.timer_at = U64_MAX;
	atomic64_set(&tbrdma.deadline_noted, -1);
	ret = tb_engine_create(&tbrdma.engine, &cfg);
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
	t = kthread_run(tbrdma_poll_fn, NULL, "tbrdma_poll");
	if (IS_ERR(t)) {
		ret = PTR_ERR(t);
		goto fail;
	}
	tbrdma.poll_thread = t;
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
