// SPDX-License-Identifier: GPL-2.0
/*
 * Rings, HopIDs and DMA paths of the simulated host controllers, with the
 * behaviour of Linux 6.1's NHI driver: descriptors in DMA-coherent memory,
 * completed in order; TX completions (and RX ones of rings without
 * start_poll) called from a work item; a ring with start_poll gets its
 * interrupt masked and start_poll called in hard-IRQ context (an hrtimer)
 * with the controller's and the ring's locks held, and is drained with
 * tb_ring_poll(). Interrupts are moderated: one per ring per
 * moderation_ns at most. A completion while the interrupt is masked raises
 * none later (the pessimistic reading of the hardware). Where the kernel
 * has tb_ring_throttling(), rings start unmoderated and it sets a ring's
 * moderation, as there; elsewhere every ring gets the moderation_ns knob
 * at allocation, as 6.1 moderates every ring the same.
 */
#include <linux/dma-mapping.h>
#include <linux/module.h>
#include <linux/slab.h>

#include "tbsim.h"

static struct tbsim_desc *tbsim_descs(struct tb_ring *ring)
{
	return (struct tbsim_desc *)ring->descriptors;
}

static bool tbsim_ring_full(const struct tb_ring *ring)
{
	return (ring->head + 1) % ring->size == ring->tail;
}

/*
 * Moves queued frames into free descriptors. Under ring->lock. Returns
 * whether it posted TX descriptors.
 */
static bool tbsim_ring_write(struct tb_ring *ring)
{
	struct tbsim_desc *d = tbsim_descs(ring);
	bool any = false;

	while (!tbsim_ring_full(ring) && !list_empty(&ring->queue)) {
		struct ring_frame *f = list_first_entry(&ring->queue,
							struct ring_frame,
							list);
		u32 meta = FIELD_PREP(TBSIM_DESC_FLAGS,
				      RING_DESC_POSTED | RING_DESC_INTERRUPT);

		list_move_tail(&f->list, &ring->in_flight);
		if (ring->is_tx)
			meta |= FIELD_PREP(TBSIM_DESC_SIZE, f->size) |
				FIELD_PREP(TBSIM_DESC_EOF, f->eof) |
				FIELD_PREP(TBSIM_DESC_SOF, f->sof);
		d[ring->head].phys = f->buffer_phy;
		d[ring->head].time = 0;
		d[ring->head].meta = meta;	/* the engine reads under ring->lock */
		ring->head = (ring->head + 1) % ring->size;
		any = true;
	}
	return any && ring->is_tx;
}

/* The oldest frame in flight, done: what the engine wrote for an RX one. */
static struct ring_frame *tbsim_ring_take(struct tb_ring *ring)
{
	u32 meta = tbsim_descs(ring)[ring->tail].meta;
	struct ring_frame *f = list_first_entry(&ring->in_flight,
						struct ring_frame, list);

	if (!ring->is_tx) {
		f->size = FIELD_GET(TBSIM_DESC_SIZE, meta);
		f->eof = FIELD_GET(TBSIM_DESC_EOF, meta);
		f->sof = FIELD_GET(TBSIM_DESC_SOF, meta);
		f->flags = FIELD_GET(TBSIM_DESC_FLAGS, meta);
	}
	ring->tail = (ring->tail + 1) % ring->size;
	return f;
}

/* The interrupt of a ring, hard-IRQ context, as the NHI's MSI-X handler. */
static enum hrtimer_restart tbsim_ring_irq(struct hrtimer *t)
{
	struct tbsim_ring *sr = container_of(t, struct tbsim_ring, irq_timer);
	struct tb_ring *ring = &sr->ring;

	spin_lock(&sr->host->nhi.lock);
	spin_lock(&ring->lock);
	sr->irq_pending = false;
	if (ring->running && !sr->irq_masked) {
		sr->last_irq = ktime_get();
		sr->irqs++;
		if (ring->start_poll) {
			sr->irq_masked = true;
			ring->start_poll(ring->poll_data);
		} else {
			schedule_work(&ring->work);
		}
	}
	spin_unlock(&ring->lock);
	spin_unlock(&sr->host->nhi.lock);
	return HRTIMER_NORESTART;
}

/*
 * The engine completed a descriptor of this ring (under ring->lock):
 * raise its interrupt, no sooner than moderation_ns after the last one.
 */
void tbsim_ring_complete(struct tbsim_ring *sr)
{
	ktime_t at;

	if (sr->irq_masked || sr->irq_pending)
		return;
	sr->irq_pending = true;
	at = ktime_add_ns(sr->last_irq, sr->moderation_ns);
	if (ktime_before(at, ktime_get()))
		at = ktime_get();
	hrtimer_start(&sr->irq_timer, at, HRTIMER_MODE_ABS_HARD);
}

/* Completions, or cancellations once the ring is stopped: process context. */
static void tbsim_ring_work(struct work_struct *work)
{
	struct tb_ring *ring = container_of(work, struct tb_ring, work);
	struct tbsim_ring *sr = to_sring(ring);
	struct ring_frame *f, *n;
	unsigned long flags;
	bool canceled;
	LIST_HEAD(done);

	spin_lock_irqsave(&ring->lock, flags);
	canceled = !ring->running;
	if (canceled) {
		list_splice_tail_init(&ring->in_flight, &done);
		list_splice_tail_init(&ring->queue, &done);
	} else {
		while (ring->tail != sr->hw)
			list_move_tail(&tbsim_ring_take(ring)->list, &done);
		if (tbsim_ring_write(ring))
			tbsim_kick_tx(sr->host);
	}
	spin_unlock_irqrestore(&ring->lock, flags);
	list_for_each_entry_safe(f, n, &done, list) {
		list_del_init(&f->list);
		if (f->callback)
			f->callback(ring, f, canceled);
	}
}

static struct tb_ring *tbsim_ring_alloc(struct tb_nhi *nhi, int hop, int size,
					bool tx, unsigned int flags,
					int e2e_tx_hop, u16 sof_mask,
					u16 eof_mask,
					void (*start_poll)(void *),
					void *poll_data)
{
	struct tbsim_host *h = container_of(nhi, struct tbsim_host, nhi);
	struct tbsim_ring **table = tx ? h->tx : h->rx;
	struct tbsim_ring *sr;
	struct tb_ring *ring;
	unsigned long irqf;

	if (size < 2 || (hop >= 0 && (hop < TBSIM_FIRST_RING ||
				      hop >= TBSIM_HOP_COUNT)))
		return NULL;
	sr = kzalloc(sizeof(*sr), GFP_KERNEL);
	if (!sr)
		return NULL;
	ring = &sr->ring;
	sr->host = h;
	spin_lock_init(&ring->lock);
	INIT_LIST_HEAD(&ring->queue);
	INIT_LIST_HEAD(&ring->in_flight);
	INIT_WORK(&ring->work, tbsim_ring_work);
	hrtimer_init(&sr->irq_timer, CLOCK_MONOTONIC, HRTIMER_MODE_ABS_HARD);
	sr->irq_timer.function = tbsim_ring_irq;
	ring->nhi = nhi;
	ring->size = size;
	ring->is_tx = tx;
	ring->flags = flags;
	ring->e2e_tx_hop = e2e_tx_hop;
	ring->sof_mask = sof_mask;
	ring->eof_mask = eof_mask;
	ring->start_poll = start_poll;
	ring->poll_data = poll_data;
#ifndef TBSIM_HAVE_RING_THROTTLING
	sr->moderation_ns = READ_ONCE(tbsim_knobs.moderation_ns);
#endif
	ring->descriptors = dma_alloc_coherent(&nhi->pdev->dev,
					       size * sizeof(struct tbsim_desc),
					       &ring->descriptors_dma,
					       GFP_KERNEL);
	if (!ring->descriptors)
		goto fail;

	spin_lock_irqsave(&nhi->lock, irqf);
	if (hop < 0)
		for (hop = TBSIM_FIRST_RING; hop < TBSIM_HOP_COUNT; hop++)
			if (!table[hop])
				break;
	if (hop >= TBSIM_HOP_COUNT || table[hop]) {
		spin_unlock_irqrestore(&nhi->lock, irqf);
		dev_warn(&nhi->pdev->dev, "no free %s ring\n",
			 tx ? "TX" : "RX");
		goto fail;
	}
	ring->hop = hop;
	table[hop] = sr;
	spin_unlock_irqrestore(&nhi->lock, irqf);
	return ring;

fail:
	if (ring->descriptors)
		dma_free_coherent(&nhi->pdev->dev,
				  size * sizeof(struct tbsim_desc),
				  ring->descriptors, ring->descriptors_dma);
	kfree(sr);
	return NULL;
}

struct tb_ring *tb_ring_alloc_tx(struct tb_nhi *nhi, int hop, int size,
				 unsigned int flags)
{
	return tbsim_ring_alloc(nhi, hop, size, true, flags, 0, 0, 0, NULL,
				NULL);
}
EXPORT_SYMBOL_GPL(tb_ring_alloc_tx);

struct tb_ring *tb_ring_alloc_rx(struct tb_nhi *nhi, int hop, int size,
				 unsigned int flags, int e2e_tx_hop,
				 u16 sof_mask, u16 eof_mask,
				 void (*start_poll)(void *), void *poll_data)
{
	return tbsim_ring_alloc(nhi, hop, size, false, flags, e2e_tx_hop,
				sof_mask, eof_mask, start_poll, poll_data);
}
EXPORT_SYMBOL_GPL(tb_ring_alloc_rx);

void tb_ring_start(struct tb_ring *ring)
{
	struct tbsim_ring *sr = to_sring(ring);

	spin_lock_irq(&ring->nhi->lock);
	spin_lock(&ring->lock);
	if (ring->running) {
		dev_WARN(&ring->nhi->pdev->dev, "ring %d already started\n",
			 ring->hop);
	} else {
		ring->head = 0;
		ring->tail = 0;
		sr->hw = 0;
		sr->irq_masked = false;
		sr->irq_pending = false;
		memset(ring->descriptors, 0,
		       ring->size * sizeof(struct tbsim_desc));
		ring->running = true;
	}
	spin_unlock(&ring->lock);
	spin_unlock_irq(&ring->nhi->lock);
}
EXPORT_SYMBOL_GPL(tb_ring_start);

/* Every frame still queued or in flight is called back as canceled. */
void tb_ring_stop(struct tb_ring *ring)
{
	struct tbsim_ring *sr = to_sring(ring);

	spin_lock_irq(&ring->nhi->lock);
	spin_lock(&ring->lock);
	if (!ring->running)
		dev_WARN(&ring->nhi->pdev->dev, "ring %d already stopped\n",
			 ring->hop);
	ring->running = false;
	ring->head = 0;
	ring->tail = 0;
	sr->hw = 0;
	spin_unlock(&ring->lock);
	spin_unlock_irq(&ring->nhi->lock);
	hrtimer_cancel(&sr->irq_timer);
	schedule_work(&ring->work);
	flush_work(&ring->work);
}
EXPORT_SYMBOL_GPL(tb_ring_stop);

#ifdef TBSIM_HAVE_RING_THROTTLING
/* The ring must be stopped; 0 turns moderation off. */
int tb_ring_throttling(struct tb_ring *ring, unsigned int interval_nsec)
{
	struct tbsim_ring *sr = to_sring(ring);
	unsigned long flags;
	int ret = 0;

	spin_lock_irqsave(&ring->lock, flags);
	if (WARN_ON_ONCE(ring->running))
		ret = -EBUSY;
	else
		sr->moderation_ns = interval_nsec;
	spin_unlock_irqrestore(&ring->lock, flags);
	return ret;
}
EXPORT_SYMBOL_GPL(tb_ring_throttling);
#endif

void tb_ring_free(struct tb_ring *ring)
{
	struct tbsim_ring *sr = to_sring(ring);
	struct tbsim_host *h = sr->host;
	unsigned long irqf;

	spin_lock_irqsave(&ring->nhi->lock, irqf);
	if (ring->running)
		dev_WARN(&ring->nhi->pdev->dev, "freeing running ring %d\n",
			 ring->hop);
	if (ring->is_tx)
		h->tx[ring->hop] = NULL;
	else
		h->rx[ring->hop] = NULL;
	spin_unlock_irqrestore(&ring->nhi->lock, irqf);
	/* The TX engine may still look at it: it takes nhi.lock first. */
	flush_work(&h->tx_work);
	hrtimer_cancel(&sr->irq_timer);
	flush_work(&ring->work);
	dma_free_coherent(&ring->nhi->pdev->dev,
			  ring->size * sizeof(struct tbsim_desc),
			  ring->descriptors, ring->descriptors_dma);
	kfree(sr);
}
EXPORT_SYMBOL_GPL(tb_ring_free);

int __tb_ring_enqueue(struct tb_ring *ring, struct ring_frame *frame)
{
	unsigned long flags;
	bool posted = false;
	int ret = 0;

	spin_lock_irqsave(&ring->lock, flags);
	if (ring->running) {
		list_add_tail(&frame->list, &ring->queue);
		posted = tbsim_ring_write(ring);
	} else {
		ret = -ESHUTDOWN;
	}
	spin_unlock_irqrestore(&ring->lock, flags);
	if (posted)
		tbsim_tx_posted(ring);
	return ret;
}
EXPORT_SYMBOL_GPL(__tb_ring_enqueue);

struct ring_frame *tb_ring_poll(struct tb_ring *ring)
{
	struct tbsim_ring *sr = to_sring(ring);
	struct ring_frame *f = NULL;
	unsigned long flags;

	spin_lock_irqsave(&ring->lock, flags);
	if (ring->running && ring->tail != sr->hw) {
		f = tbsim_ring_take(ring);
		list_del_init(&f->list);
		if (tbsim_ring_write(ring))
			tbsim_kick_tx(sr->host);
	}
	spin_unlock_irqrestore(&ring->lock, flags);
	return f;
}
EXPORT_SYMBOL_GPL(tb_ring_poll);

void tb_ring_poll_complete(struct tb_ring *ring)
{
	unsigned long flags;

	spin_lock_irqsave(&ring->nhi->lock, flags);
	spin_lock(&ring->lock);
	if (ring->start_poll)
		to_sring(ring)->irq_masked = false;
	spin_unlock(&ring->lock);
	spin_unlock_irqrestore(&ring->nhi->lock, flags);
}
EXPORT_SYMBOL_GPL(tb_ring_poll_complete);

/* HopIDs: input ones from 8 up to ours, output ones up to the peer's. */

static int tbsim_hopid_alloc(struct ida *ida, int hopid, unsigned int max)
{
	if (hopid < 0)
		hopid = TBSIM_MIN_HOPID;
	if (hopid < TBSIM_MIN_HOPID || hopid > max)
		return -EINVAL;
	return ida_alloc_range(ida, hopid, max, GFP_KERNEL);
}

int tb_xdomain_alloc_in_hopid(struct tb_xdomain *xd, int hopid)
{
	return tbsim_hopid_alloc(&xd->in_hopids, hopid, xd->local_max_hopid);
}
EXPORT_SYMBOL_GPL(tb_xdomain_alloc_in_hopid);

int tb_xdomain_alloc_out_hopid(struct tb_xdomain *xd, int hopid)
{
	return tbsim_hopid_alloc(&xd->out_hopids, hopid, xd->remote_max_hopid);
}
EXPORT_SYMBOL_GPL(tb_xdomain_alloc_out_hopid);

void tb_xdomain_release_in_hopid(struct tb_xdomain *xd, int hopid)
{
	ida_free(&xd->in_hopids, hopid);
}
EXPORT_SYMBOL_GPL(tb_xdomain_release_in_hopid);

void tb_xdomain_release_out_hopid(struct tb_xdomain *xd, int hopid)
{
	ida_free(&xd->out_hopids, hopid);
}
EXPORT_SYMBOL_GPL(tb_xdomain_release_out_hopid);

/*
 * Paths. As the software connection manager does, enabling takes the
 * domain lock, which the core also holds while it removes an unplugged
 * XDomain; disabling skips it for an unplugged XDomain.
 */
int tb_xdomain_enable_paths(struct tb_xdomain *xd, int transmit_path,
			    int transmit_ring, int receive_path,
			    int receive_ring)
{
	struct tbsim_xd *sxd = to_sxd(xd);
	struct tbsim_host *h = sxd->host;
	unsigned long flags;
	int ret = -EINVAL;

	mutex_lock(&xd->tb->lock);
	if (xd->is_unplugged) {
		ret = -ENODEV;
		goto out;
	}
	if (transmit_path < TBSIM_MIN_HOPID ||
	    transmit_path > xd->remote_max_hopid ||
	    receive_path < TBSIM_MIN_HOPID ||
	    receive_path > xd->local_max_hopid ||
	    transmit_ring < TBSIM_FIRST_RING ||
	    transmit_ring >= TBSIM_HOP_COUNT ||
	    receive_ring < TBSIM_FIRST_RING ||
	    receive_ring >= TBSIM_HOP_COUNT)
		goto out;
	spin_lock_irqsave(&h->nhi.lock, flags);
	if (h->tx[transmit_ring] && h->rx[receive_ring] &&
	    !sxd->out_hopid_of[transmit_ring] &&
	    sxd->rx_ring_of[receive_path] < 0) {
		sxd->out_hopid_of[transmit_ring] = transmit_path;
		sxd->rx_ring_of[receive_path] = receive_ring;
		ret = 0;
	}
	spin_unlock_irqrestore(&h->nhi.lock, flags);
out:
	mutex_unlock(&xd->tb->lock);
	if (!ret)
		tbsim_kick_tx(h);
	return ret;
}
EXPORT_SYMBOL_GPL(tb_xdomain_enable_paths);

int tb_xdomain_disable_paths(struct tb_xdomain *xd, int transmit_path,
			     int transmit_ring, int receive_path,
			     int receive_ring)
{
	struct tbsim_xd *sxd = to_sxd(xd);
	struct tbsim_host *h = sxd->host;
	bool locked = !xd->is_unplugged;
	unsigned long flags;
	int i;

	if (locked)
		mutex_lock(&xd->tb->lock);
	spin_lock_irqsave(&h->nhi.lock, flags);
	for (i = 0; i < TBSIM_HOP_COUNT; i++)
		if ((transmit_ring < 0 || transmit_ring == i) &&
		    (transmit_path < 0 ||
		     transmit_path == sxd->out_hopid_of[i]))
			sxd->out_hopid_of[i] = 0;
	for (i = 0; i <= TBSIM_MAX_HOPID; i++)
		if ((receive_path < 0 || receive_path == i) &&
		    (receive_ring < 0 || receive_ring == sxd->rx_ring_of[i]))
			sxd->rx_ring_of[i] = -1;
	spin_unlock_irqrestore(&h->nhi.lock, flags);
	if (locked)
		mutex_unlock(&xd->tb->lock);
	return 0;
}
EXPORT_SYMBOL_GPL(tb_xdomain_disable_paths);

/* The XDomain whose path ring takes, and its output HopID. Under nhi.lock. */
struct tbsim_xd *tbsim_tx_path(struct tbsim_host *h, int ring, int *hopid)
{
	int c;

	for (c = 0; c < tbsim.ncables; c++) {
		struct tbsim_xd *sxd = READ_ONCE(tbsim.cable[c].end[h->index]);

		if (sxd && sxd->out_hopid_of[ring]) {
			*hopid = sxd->out_hopid_of[ring];
			return sxd;
		}
	}
	return NULL;
}
