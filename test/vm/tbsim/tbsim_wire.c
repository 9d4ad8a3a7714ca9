// SPDX-License-Identifier: GPL-2.0
/*
 * The DMA engine and the cable. A host's TX engine reads each posted TX
 * descriptor's buffer through the controller's bus address (the
 * IOMMU's translation when there is one, so a bus address that is not
 * mapped for the controller faults), completes the descriptor and puts
 * the frame on the wire of the cable its ring's path leads to. The wire
 * models rate and latency: a frame arrives when the wire has carried the
 * ones before it plus latency_ns; at most wire_depth frames are on it, the
 * rest wait in their TX rings (link-level flow control). On arrival the
 * frame goes to the RX ring the peer's path names for its HopID, into the
 * next posted descriptor: dropped if there is none (no E2E), if its SOF
 * or EOF is not in the ring's masks, or by the loss knob; delivered with
 * a CRC error flag and a flipped byte by the corruption knob. When the
 * peer is another VM, the arriving frame goes into the shared-memory cable
 * instead, and that VM's poller puts it into the RX ring.
 *
 * A DMA engine needs no CPU to be scheduled: the TX engine runs in the
 * context that posts the descriptor, and with the wire model off
 * (gbps=0 latency_ns=0) frames arrive in that context too. A work item
 * runs what the poster leaves: TX completions that free ring space, the
 * wire draining, a poster's budget used up. Timers deliver what the wire
 * model delays.
 */
#include <linux/highmem.h>
#include <linux/iommu.h>
#include <linux/prandom.h>
#include <linux/slab.h>

#include "tbsim.h"

/* How soon a frame the shared-memory cable had no room for tries again. */
#define TBSIM_SHM_RETRY_NS 20000

/*
 * Rounds one caller drains for others that keep posting before the work
 * item takes over, so that no poster delivers everyone's frames forever.
 */
#define TBSIM_DRAIN_ROUNDS 16

/* Bus address to physical, as the controller's DMA sees it; 0: a fault. */
static phys_addr_t tbsim_bus_to_phys(struct device *dev, dma_addr_t addr)
{
	struct iommu_domain *dom = iommu_get_domain_for_dev(dev);

	if (dom && dom->type != IOMMU_DOMAIN_IDENTITY)
		return iommu_iova_to_phys(dom, addr);
	return addr;
}

/* Copies between a bus address range and buf, page by page. */
static int tbsim_dma(struct device *dev, dma_addr_t addr, void *buf, u32 len,
		     bool to_bus)
{
	while (len) {
		u32 n = min_t(u32, len, PAGE_SIZE - offset_in_page(addr));
		phys_addr_t phys = tbsim_bus_to_phys(dev, addr);
		void *va;

		if (!phys || !pfn_valid(PHYS_PFN(phys)))
			return -EFAULT;
		va = kmap_local_page(pfn_to_page(PHYS_PFN(phys)));
		if (to_bus)
			memcpy(va + offset_in_page(phys), buf, n);
		else
			memcpy(buf, va + offset_in_page(phys), n);
		kunmap_local(va);
		addr += n;
		buf += n;
		len -= n;
	}
	return 0;
}

static bool tbsim_chance(unsigned int ppm)
{
	return ppm && get_random_u32_below(1000000) < ppm;
}

/*
 * Into the next posted RX descriptor of the ring the path names, on the
 * host w leads to.
 */
void tbsim_receive(struct tbsim_wire *w, struct tbsim_frame *f)
{
	struct tbsim_host *h = tbsim.host[!w->from];
	struct tbsim_xd *sxd;
	struct tbsim_ring *sr = NULL;
	struct tb_ring *ring;
	struct tbsim_desc *d;
	unsigned long flags;
	u32 limit, used;
	int hop;

	spin_lock_irqsave(&h->nhi.lock, flags);
	sxd = w->cable->end[h->index];
	hop = sxd ? sxd->rx_ring_of[f->hopid] : -1;
	if (hop >= 0)
		sr = h->rx[hop];
	if (!sr) {
		w->stats.no_path++;
		goto out;
	}
	ring = &sr->ring;
	spin_lock(&ring->lock);
	limit = READ_ONCE(tbsim_knobs.rx_limit);
	used = (sr->hw - ring->tail + ring->size) % ring->size;
	if (!(ring->sof_mask & BIT(f->sof)) || !(ring->eof_mask & BIT(f->eof))) {
		w->stats.bad_pdf++;
	} else if (!ring->running || sr->hw == ring->head ||
		   (limit && used >= limit)) {
		w->stats.no_buffer++;
	} else {
		d = &((struct tbsim_desc *)ring->descriptors)[sr->hw];
		if (tbsim_dma(&h->pdev->dev, d->phys, f->data, f->len, true)) {
			w->stats.dma_faults++;
		} else {
			/* On RX, 0x4 (POSTED when posting) is an overrun. */
			u32 fl = RING_DESC_COMPLETED;

			if (f->corrupt)
				fl |= RING_DESC_CRC_ERROR;
			d->meta = FIELD_PREP(TBSIM_DESC_SIZE, f->len) |
				  FIELD_PREP(TBSIM_DESC_EOF, f->eof) |
				  FIELD_PREP(TBSIM_DESC_SOF, f->sof) |
				  FIELD_PREP(TBSIM_DESC_FLAGS, fl);
			sr->hw = (sr->hw + 1) % ring->size;
			w->stats.frames++;
			w->stats.bytes += f->len;
			w->stats.corrupted += f->corrupt;
			tbsim_ring_complete(sr);
		}
	}
	spin_unlock(&ring->lock);
out:
	spin_unlock_irqrestore(&h->nhi.lock, flags);
}

/* At the far end: here, or into the shared-memory cable to the other VM. */
static bool tbsim_arrive(struct tbsim_wire *w, struct tbsim_frame *f)
{
	if (tbsim.pair >= 0)
		return tbsim_shm_send(f);
	tbsim_receive(w, f);
	return true;
}

/*
 * Frames whose time has come, in the order they went on the wire; the
 * timer for the next one. One caller at a time delivers: the others leave
 * their frames to it, and it looks again before it stops.
 */
static void tbsim_wire_drain(struct tbsim_wire *w)
{
	struct tbsim_frame *f, *n;
	unsigned long flags;
	bool was_full, again = true;
	int rounds = TBSIM_DRAIN_ROUNDS;
	u32 back;

	while (again) {
		LIST_HEAD(due);
		u64 now = ktime_get_ns();

		spin_lock_irqsave(&w->lock, flags);
		if (w->draining) {
			w->drain_again = true;
			spin_unlock_irqrestore(&w->lock, flags);
			return;
		}
		w->draining = true;
		w->drain_again = false;
		was_full = w->count >= READ_ONCE(tbsim_knobs.wire_depth);
		list_for_each_entry_safe(f, n, &w->frames, list) {
			if (f->arrive > now) {
				hrtimer_start(&w->timer, ns_to_ktime(f->arrive),
					      HRTIMER_MODE_ABS);
				break;
			}
			list_move_tail(&f->list, &due);
			w->count--;
		}
		spin_unlock_irqrestore(&w->lock, flags);
		list_for_each_entry_safe(f, n, &due, list) {
			if (!tbsim_arrive(w, f))
				break;
			list_del(&f->list);
			kfree(f);
		}
		back = list_count_nodes(&due);
		spin_lock_irqsave(&w->lock, flags);
		if (back) {
			/* No room in the shared memory yet: first in line again. */
			list_splice(&due, &w->frames);
			w->count += back;
			hrtimer_start(&w->timer,
				      ns_to_ktime(now + TBSIM_SHM_RETRY_NS),
				      HRTIMER_MODE_ABS);
			w->drain_again = false;
		}
		again = w->drain_again;
		w->draining = false;
		spin_unlock_irqrestore(&w->lock, flags);
		if (was_full)
			tbsim_kick_tx(tbsim.host[w->from]);
		if (again && !--rounds) {
			queue_work(tbsim.wq, &w->deliver);
			return;
		}
	}
}

static void tbsim_wire_deliver(struct work_struct *work)
{
	tbsim_wire_drain(container_of(work, struct tbsim_wire, deliver));
}

static enum hrtimer_restart tbsim_wire_timer(struct hrtimer *t)
{
	struct tbsim_wire *w = container_of(t, struct tbsim_wire, timer);

	queue_work(tbsim.wq, &w->deliver);
	return HRTIMER_NORESTART;
}

void tbsim_wire_init(struct tbsim_wire *w, struct tbsim_cable *c, int from)
{
	spin_lock_init(&w->lock);
	INIT_LIST_HEAD(&w->frames);
	hrtimer_init(&w->timer, CLOCK_MONOTONIC, HRTIMER_MODE_ABS);
	w->timer.function = tbsim_wire_timer;
	INIT_WORK(&w->deliver, tbsim_wire_deliver);
	w->cable = c;
	w->from = from;
}

/* Unplug: what is on the wire is lost. */
void tbsim_wire_flush(struct tbsim_wire *w)
{
	struct tbsim_frame *f, *n;
	unsigned long flags;
	LIST_HEAD(gone);

	/* The work re-arms the timer: stop both, then the timer again. */
	hrtimer_cancel(&w->timer);
	cancel_work_sync(&w->deliver);
	hrtimer_cancel(&w->timer);
	spin_lock_irqsave(&w->lock, flags);
	list_splice_init(&w->frames, &gone);
	w->count = 0;
	spin_unlock_irqrestore(&w->lock, flags);
	list_for_each_entry_safe(f, n, &gone, list)
		kfree(f);
}

/*
 * Onto the wire: stamps its arrival after the frames before it. Returns
 * true when it arrives at once (the wire model off): the caller drains the
 * wire, no timer does.
 */
static bool tbsim_wire_put(struct tbsim_wire *w, struct tbsim_frame *f)
{
	unsigned int gbps = READ_ONCE(tbsim_knobs.gbps);
	u64 now = ktime_get_ns();
	unsigned long flags;
	bool first;

	spin_lock_irqsave(&w->lock, flags);
	w->free_at = max(w->free_at, now);
	if (gbps)
		w->free_at += div_u64((u64)f->len * 8, gbps);
	f->arrive = w->free_at + READ_ONCE(tbsim_knobs.latency_ns);
	first = list_empty(&w->frames);
	list_add_tail(&f->list, &w->frames);
	w->count++;
	spin_unlock_irqrestore(&w->lock, flags);
	if (f->arrive <= now)
		return true;
	if (first)
		hrtimer_start(&w->timer, ns_to_ktime(f->arrive),
			      HRTIMER_MODE_ABS);
	return false;
}

/*
 * One descriptor of a TX ring. Returns 1 if it took one, 0 if the ring has
 * none posted or its wire is full, -ENOMEM if there was no memory for the
 * frame, nor a *reserve (a frame of TBSIM_FRAME_MAX, taken when used);
 * *due is the wire to drain when the frame arrives at once. Under
 * nhi.lock.
 */
static int tbsim_tx_one(struct tbsim_host *h, struct tbsim_ring *sr,
			struct tbsim_frame **reserve, struct tbsim_wire **due)
{
	struct tb_ring *ring = &sr->ring;
	struct tbsim_frame *f = NULL;
	struct tbsim_wire *w = NULL;
	struct tbsim_xd *sxd;
	struct tbsim_desc *d;
	int hopid, ret = 0;
	u32 meta, len;

	*due = NULL;
	spin_lock(&ring->lock);
	if (!ring->running || sr->hw == ring->head)
		goto out;
	d = &((struct tbsim_desc *)ring->descriptors)[sr->hw];
	meta = d->meta;
	sxd = tbsim_tx_path(h, ring->hop, &hopid);
	if (sxd) {
		w = &sxd->cable->wire[h->index];
		if (READ_ONCE(w->count) >= READ_ONCE(tbsim_knobs.wire_depth))
			goto out;	/* the wire drains, then kicks us */
	}
	len = FIELD_GET(TBSIM_DESC_SIZE, meta) ?: TBSIM_FRAME_MAX;
	f = kmalloc(struct_size(f, data, len), GFP_ATOMIC | __GFP_NOWARN);
	if (!f) {
		swap(f, *reserve);
		if (!f) {
			ret = -ENOMEM;
			goto out;
		}
	}
	f->hopid = hopid;
	f->len = len;
	f->sof = FIELD_GET(TBSIM_DESC_SOF, meta);
	f->eof = FIELD_GET(TBSIM_DESC_EOF, meta);
	f->corrupt = false;
	if (!IS_ALIGNED(d->phys, 4)) {
		/* Upstream never hands the NHI one: the pessimistic reading. */
		dev_err_ratelimited(&h->pdev->dev,
				    "TX ring %d: buffer at %pad is not dword-aligned\n",
				    ring->hop, &d->phys);
		if (w)
			w->stats.unaligned++;
		w = NULL;
	} else if (tbsim_dma(&h->pdev->dev, d->phys, f->data, f->len, false)) {
		dev_err_ratelimited(&h->pdev->dev,
				    "TX ring %d: DMA fault at %pad\n",
				    ring->hop, &d->phys);
		if (w)
			w->stats.dma_faults++;
		w = NULL;
	}
	d->meta = meta | FIELD_PREP(TBSIM_DESC_FLAGS, RING_DESC_COMPLETED);
	sr->hw = (sr->hw + 1) % ring->size;
	tbsim_ring_complete(sr);
	ret = 1;
	if (!w)
		goto out;	/* no path: into the void */
	if (tbsim_chance(READ_ONCE(tbsim_knobs.loss_ppm))) {
		w->stats.lost++;
		goto out;
	}
	if (tbsim_chance(READ_ONCE(tbsim_knobs.corrupt_ppm))) {
		f->corrupt = true;
		f->data[get_random_u32_below(f->len)] ^= 0x5a;
	}
	if (tbsim_wire_put(w, f))
		*due = w;
	f = NULL;
out:
	spin_unlock(&ring->lock);
	kfree(f);
	return ret;
}

/*
 * The TX engine on one ring: descriptor after descriptor until none is
 * posted, its wire is full or budget frames went. Frames that arrive at
 * once are delivered here, outside the host's lock, so that no two hosts'
 * locks are ever held together. Each frame is allocated at its size, in
 * atomic context; when that fails, the work item (not the poster) gets a
 * full-size one the way that may sleep. Returns how many it took, or
 * -ENOMEM.
 */
static int tbsim_tx_ring(struct tbsim_host *h, int hop, int budget,
			 bool poster)
{
	struct tbsim_frame *reserve = NULL;
	int n = 0, ret = 1;

	while (ret && n < budget) {
		struct tbsim_wire *due = NULL;
		unsigned long flags;

		if (ret == -ENOMEM) {
			if (!poster)
				reserve = kmalloc(struct_size(reserve, data,
							      TBSIM_FRAME_MAX),
						  GFP_KERNEL);
			if (!reserve)
				return -ENOMEM;
		}
		spin_lock_irqsave(&h->nhi.lock, flags);
		ret = h->tx[hop] ? tbsim_tx_one(h, h->tx[hop], &reserve, &due) :
				   0;
		if (due && poster)
			due->stats.by_poster++;
		spin_unlock_irqrestore(&h->nhi.lock, flags);
		if (due)
			tbsim_wire_drain(due);
		if (ret > 0)
			n++;
	}
	kfree(reserve);
	return n;
}

/* The TX engine of one host: every ring in turn, a descriptor each. */
void tbsim_tx_work(struct work_struct *work)
{
	struct tbsim_host *h = container_of(work, struct tbsim_host, tx_work);
	bool progress = true;

	while (progress) {
		int hop;

		progress = false;
		for (hop = TBSIM_FIRST_RING; hop < TBSIM_HOP_COUNT; hop++)
			progress |= tbsim_tx_ring(h, hop, 1, false) > 0;
		cond_resched();
	}
}

void tbsim_kick_tx(struct tbsim_host *h)
{
	queue_work(tbsim.wq, &h->tx_work);
}

/*
 * A frame was posted on ring: the TX engine runs it now, in the poster's
 * context (a DMA engine needs no CPU to be scheduled), for up to as many
 * frames as the ring holds; what is left goes to the work item.
 */
void tbsim_tx_posted(struct tb_ring *ring)
{
	struct tbsim_host *h = to_sring(ring)->host;
	int n = tbsim_tx_ring(h, ring->hop, ring->size, true);

	if (n < 0 || n == ring->size)
		tbsim_kick_tx(h);
}
