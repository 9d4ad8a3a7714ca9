// SPDX-License-Identifier: GPL-2.0
/*
 * Submission rings: the SQEs of a context are taken by its doorbell
 * (TBRDMA_IOC_DOORBELL) or, while any poller is busy, by the pollers
 * themselves from every SQ whose process asked for it (sq_poll), as
 * io_uring's SQ polling does: a process posting while traffic flows needs
 * no system call. One poller at a time looks at the SQs; sq_polled tells
 * the process whether any will look again. The protocol on sq_polled is
 * in tbrdma_abi.h.
 */

#include "tbrdma.h"

/* SQEs taken from one SQ per poll round: the other SQs get their turn. */
#define TBRDMA_SQ_POLL_BATCH 64

/* Looks of tbrdma_sq_unlocked() at most. */
#define TBRDMA_SQ_UNLOCKED_LOOKS 4

static struct tbrdma_ring_ctrl *tbrdma_sq_ctrl(const struct tbrdma_kctx *kc)
{
	return kc->sq.mem;
}

/*
 * Posts one SQE under the lock of its endpoint's link, which the caller
 * holds from one SQE to the next on the same link (*held, -1: none). An
 * endpoint moves to another link (a UD queue pair's, to the fresh link of
 * its loop or XDomain connection: tb_engine_unplug_link()) only under
 * every link's lock, so the link it names once its lock is held is its
 * link.
 */
static int tbrdma_sq_post(struct tbrdma_kctx *kc,
			  const struct tbrdma_sqe *sqe, int *held,
			  struct tbrdma_poller *by)
{
	int link;

	for (;;) {
		link = tb_ep_link(kc->ctx, sqe->ep);
		if (link < 0)
			return link;
		if (link == *held)
			break;
		if (*held >= 0)
			tbrdma_link_unlock(*held);
		tbrdma_link_lock(link);
		*held = link;
		/* A poller posting on another's rail: the answer is its. */
		tbrdma_link_kick_other(link, by);
	}
	return tb_post(kc->ctx, sqe);
}

u32 tbrdma_sq_take(struct tbrdma_kctx *kc, u32 producer, u32 max,
		   bool async, struct tbrdma_poller *by, int *err)
{
	const struct tbrdma_sqe *ring = (const void *)((const u8 *)kc->sq.mem +
						       TBRDMA_RING_DATA_OFFSET);
	u32 n = producer - kc->sq_head, taken = 0;
	struct tbrdma_sqe sqe;
	int ret = 0, held = -1, note;

	lockdep_assert_held(&kc->lock);
	if (n > kc->sq.entries) {
		*err = -EINVAL;
		return 0;
	}
	n = min(n, max);
	while (taken < n) {
		/* Copy first: the process may rewrite the slot meanwhile. */
		memcpy(&sqe, &ring[kc->sq_head & (kc->sq.entries - 1)],
		       sizeof(sqe));
		if (!kc->fl)
			sqe.ep = kc->qp_ep;
		ret = tbrdma_sq_post(kc, &sqe, &held, by);
		if (ret && ret != -EAGAIN && async)
			ret = tb_post_refused(kc->ctx, &sqe);
		if (ret)
			break;
		kc->sq_head++;
		taken++;
	}
	/*
	 * A process's post: its receive pass may take the ack at once, so the
	 * frame's deadline is noted after it (tbrdma_kctx_unlock()).
	 */
	/* Read once: tbrdma_kctx_unlock() takes it without kc->lock. */
	note = READ_ONCE(kc->deadline_link);
	if (held >= 0 && !by && (!note || note == held + 1)) {
		mutex_unlock(&tbrdma.link_lock[held]);
		WRITE_ONCE(kc->deadline_link, held + 1);
	} else if (held >= 0) {
		tbrdma_link_unlock(held);
	}
	if (taken) {
		/* Release: the slots before it are free, their copies done. */
		smp_store_release(&tbrdma_sq_ctrl(kc)->consumer, kc->sq_head);
	}
	*err = ret;
	return taken;
}

/* What a polled SQ holds now: its producer index, read once (acquire). */
static u32 tbrdma_sq_take_polled(struct tbrdma_kctx *kc, u32 max,
				 struct tbrdma_poller *by)
{
	struct tbrdma_ring_ctrl *ctrl = tbrdma_sq_ctrl(kc);
	int err;

	/*
	 * A queue pair's SQEs wait for RTS, as its doorbell does, and in
	 * ERR are taken to complete with FLUSH_ERR.
	 */
	if (READ_ONCE(ctrl->sq_poll) != 1 ||
	    (!kc->fl && !kc->qp_ready && !kc->qp_error))
		return 0;
	/* Acquire: the SQEs before producer are written. */
	return tbrdma_sq_take(kc, smp_load_acquire(&ctrl->producer), max,
			      true, by, &err);
}

u32 tbrdma_sq_flush(struct tbrdma_kctx *kc)
{
	return tbrdma_sq_take_polled(kc, kc->sq.entries, NULL);
}

void tbrdma_sq_add(struct tbrdma_kctx *kc)
{
	mutex_lock(&tbrdma.sq_lock);
	WRITE_ONCE(tbrdma_sq_ctrl(kc)->sq_polled, tbrdma.sq_pollers > 0);
	list_add_tail(&kc->sq_node, &tbrdma.sqs);
	mutex_unlock(&tbrdma.sq_lock);
}

void tbrdma_sq_del(struct tbrdma_kctx *kc)
{
	mutex_lock(&tbrdma.sq_lock);
	list_del(&kc->sq_node);
	mutex_unlock(&tbrdma.sq_lock);
}

/* Up to max SQEs from every polled SQ, by poller p, under sq_lock. */
static u32 tbrdma_sq_pass(struct tbrdma_poller *p, u32 max)
{
	u32 at = ktime_get_ns() >> TBRDMA_SQ_POLLED_SHIFT;
	struct tbrdma_kctx *kc;
	u32 taken = 0;

	lockdep_assert_held(&tbrdma.sq_lock);
	list_for_each_entry(kc, &tbrdma.sqs, sq_node) {
		WRITE_ONCE(tbrdma_sq_ctrl(kc)->sq_polled_at, at);
		/* Busy in an ioctl: its holder looks (tbrdma_sq_unlocked()). */
		if (!mutex_trylock(&kc->lock))
			continue;
		taken += tbrdma_sq_take_polled(kc, max, p);
		mutex_unlock(&kc->lock);
		/* A last pass takes every SQ whole (max U32_MAX). */
		cond_resched();
	}
	tbrdma.sq_polled += taken;
	return taken;
}

static void tbrdma_sq_set_polled(bool on)
{
	struct tbrdma_kctx *kc;

	list_for_each_entry(kc, &tbrdma.sqs, sq_node)
		WRITE_ONCE(tbrdma_sq_ctrl(kc)->sq_polled, on);
}

u32 tbrdma_sq_poll(struct tbrdma_poller *p)
{
	u32 taken;

	/* Another poller is looking: this one goes on with its links. */
	if (!mutex_trylock(&tbrdma.sq_lock))
		return 0;
	if (!p->sq_polling) {
		p->sq_polling = true;
		if (!tbrdma.sq_pollers++)
			tbrdma_sq_set_polled(true);
	}
	taken = tbrdma_sq_pass(p, TBRDMA_SQ_POLL_BATCH);
	mutex_unlock(&tbrdma.sq_lock);
	return taken;
}

void tbrdma_sq_unlocked(struct tbrdma_kctx *kc)
{
	struct tbrdma_ring_ctrl *ctrl = tbrdma_sq_ctrl(kc);
	u32 taken = 1, seen = 0, producer, round;

	/*
	 * Each hold of the lock, this one's included, may have made a
	 * stopping poller pass kc by: look again after each. Done when all
	 * is taken, or a flush took nothing (a full queue) and nothing new
	 * came since. A look finds no poller polling, so a stop during a
	 * later hold needs a poller that started and stopped since (it
	 * starts only with its CPU to itself, and polls poll_us first unless
	 * another task comes to want that CPU): a few looks cover it, and
	 * what a stop after the last leaves waits for the next poller or
	 * doorbell (the process rings it at its next post or poll that finds
	 * no poller polling, tbrdma_abi.h). The bound keeps
	 * a process that moves its producer on and on from holding the
	 * caller here (and a destroyer waiting on it).
	 */
	for (round = 0; round < TBRDMA_SQ_UNLOCKED_LOOKS; round++) {
		/*
		 * Pairs with tbrdma_sq_poll_stop(), which stores sq_polled =
		 * 0, issues a full barrier and tries the lock: either it finds
		 * the lock free and takes the SQEs, or this sees sq_polled = 0.
		 */
		smp_mb();
		producer = READ_ONCE(ctrl->producer);
		if (READ_ONCE(ctrl->sq_polled) || READ_ONCE(ctrl->sq_poll) != 1 ||
		    producer == READ_ONCE(ctrl->consumer) ||
		    (!taken && producer == seen))
			return;
		seen = producer;
		mutex_lock(&kc->lock);
		/* Destroyed since the caller let go (its reference stays). */
		if (!kc->ctx) {
			mutex_unlock(&kc->lock);
			return;
		}
		taken = tbrdma_sq_flush(kc);
		mutex_unlock(&kc->lock);
		cond_resched();
	}
}

u32 tbrdma_sq_poll_stop(struct tbrdma_poller *p)
{
	u32 taken = 0;

	if (!p->sq_polling)
		return 0;
	mutex_lock(&tbrdma.sq_lock);
	p->sq_polling = false;
	if (!--tbrdma.sq_pollers) {
		tbrdma_sq_set_polled(false);
		/*
		 * Pairs with the process's barrier between its producer
		 * store and its sq_polled load: either it rings the doorbell
		 * or the last pass below sees its SQEs, all of them: no
		 * poller looks again.
		 */
		smp_mb();
		taken = tbrdma_sq_pass(p, U32_MAX);
	}
	mutex_unlock(&tbrdma.sq_lock);
	return taken;
}
