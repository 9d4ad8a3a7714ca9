// SPDX-License-Identifier: GPL-2.0
/*
 * XDomain links: the rings and the data path (see tbrdma_xd.h). Frames
 * go out through DMA-coherent buffers, data chunks as ext descriptors
 * pointing into registered memory; the RX ring is drained by the link's
 * poll thread after its interrupt.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/dma-mapping.h>
#include <linux/slab.h>

#include "tbrdma_xd.h"

/*
 * Frame delimiters (PDF): one frame or ext buffer per descriptor, each
 * kind with its own pair.
 */
#define TBRDMA_XD_PDF_SOF 1
#define TBRDMA_XD_PDF_EOF 2
#define TBRDMA_XD_PDF_EXT_SOF 3
#define TBRDMA_XD_PDF_EXT_EOF 4

/*
 * Takes n (1 or 2) free transmit buffers, all or none: a frame never
 * waits for its ext. Returns false (and asks for a kick) if there are not
 * enough.
 */
static bool tbrdma_xd_tx_take(struct tbrdma_xd_link *xl, u32 n,
			      struct tbrdma_xd_buf **bufs)
{
	unsigned long flags;
	bool room;
	u32 i;

	spin_lock_irqsave(&xl->tx_lock, flags);
	room = xl->tx_nfree >= n;
	for (i = 0; room && i < n; i++)
		bufs[i] = &xl->tx[xl->tx_free[--xl->tx_nfree]];
	if (!room)
		xl->tx_waiting = true;
	spin_unlock_irqrestore(&xl->tx_lock, flags);
	return room;
}

/* The buffer's own memory again; a region it pointed into is let go. */
static void tbrdma_xd_tx_reset(struct tbrdma_xd_buf *b)
{
	b->frame.buffer_phy = b->dma;
	if (b->umr) {
		tbrdma_umr_put_async(b->umr, tbxd.wq);
		b->umr = NULL;
	}
}

static void tbrdma_xd_tx_put(struct tbrdma_xd_link *xl, struct tbrdma_xd_buf *b)
{
	unsigned long flags;

	tbrdma_xd_tx_reset(b);
	spin_lock_irqsave(&xl->tx_lock, flags);
	xl->tx_free[xl->tx_nfree++] = b - xl->tx;
	spin_unlock_irqrestore(&xl->tx_lock, flags);
}

/*
 * The ext descriptor: straight from the registered pages when they are
 * mapped for this controller, else from a copy in the buffer's own memory.
 * Upstream drivers only ever give the NHI dword-aligned buffers, so a chunk
 * at another byte offset is copied too, until hardware shows it need not be.
 */
static void tbrdma_xd_fill_ext(struct tbrdma_xd_link *xl,
			       struct tbrdma_xd_buf *b,
			       const struct tb_link_ext *ext)
{
	dma_addr_t bus;

	if (IS_ALIGNED((unsigned long)ext->data, 4) &&
	    !tbrdma_dma_addr(xl->dma_id, ext->dma_cookie, ext->data, ext->len,
			     &bus)) {
		/* Pinned and mapped until the controller has read it. */
		b->umr = ext->dma_cookie;
		tbrdma_umr_get(b->umr);
		b->frame.buffer_phy = bus;
		xl->stats.tx_ext_dma++;
	} else {
		memcpy(b->cpu, ext->data, ext->len);
		xl->stats.tx_ext_copied++;
	}
	b->frame.size = ext->len & 0xfff;	/* 4096 is 0 */
	b->frame.sof = TBRDMA_XD_PDF_EXT_SOF;
	b->frame.eof = TBRDMA_XD_PDF_EXT_EOF;
}

static int tbrdma_xd_xmit(void *phy, const void *frame, u32 len,
			  const struct tb_link_ext *ext)
{
	struct tbrdma_xd_link *xl = phy;
	struct tbrdma_xd_buf *bufs[2] = { NULL, NULL };
	struct tbrdma_xd_buf *b, *e;

	if (!xl->rings_live)
		return -ENOTCONN;
	if (WARN_ON_ONCE(!len || len > TBRDMA_FRAME_MAX ||
			 (ext && (!ext->len || ext->len > TB_EXT_MAX))))
		return 0;
	if (!tbrdma_xd_tx_take(xl, ext ? 2 : 1, bufs)) {
		xl->stats.tx_busy++;
		return -EAGAIN;
	}
	b = bufs[0];
	e = bufs[1];
	memcpy(b->cpu, frame, len);
	b->frame.size = len & 0xfff;		/* 4096 is 0 */
	b->frame.sof = TBRDMA_XD_PDF_SOF;
	b->frame.eof = TBRDMA_XD_PDF_EOF;
	if (e)
		tbrdma_xd_fill_ext(xl, e, ext);
	if (tb_ring_tx(xl->tx_ring, &b->frame)) {
		tbrdma_xd_tx_put(xl, b);
		if (e)
			tbrdma_xd_tx_put(xl, e);
		return -ENOTCONN;
	}
	/* The ring is stopping if this fails: the frame alone is harmless. */
	if (e && tb_ring_tx(xl->tx_ring, &e->frame)) {
		tbrdma_xd_tx_put(xl, e);
		return -ENOTCONN;
	}
	/* The answer may be in an RX ring before the caller is done. */
	tbrdma_rx_mark_xd();
	return 0;
}

/* TX completion (ring work, or tb_ring_stop() with canceled set). */
void tbrdma_xd_tx_done(struct tb_ring *ring, struct ring_frame *frame,
		       bool canceled)
{
	struct tbrdma_xd_buf *b = container_of(frame, struct tbrdma_xd_buf,
					       frame);
	struct tbrdma_xd_link *xl = b->xl;
	unsigned long flags;
	bool kick;

	tbrdma_xd_tx_reset(b);
	spin_lock_irqsave(&xl->tx_lock, flags);
	xl->tx_free[xl->tx_nfree++] = b - xl->tx;
	kick = xl->tx_waiting;
	xl->tx_waiting = false;
	spin_unlock_irqrestore(&xl->tx_lock, flags);
	if (kick && !canceled)
		tbrdma_poller_kick(&xl->poller);
}

static void tbrdma_xd_rx_repost(struct tbrdma_xd_link *xl,
				struct tbrdma_xd_buf *b)
{
	/* Fails only when the ring is stopping; the buffer stays ours. */
	tb_ring_rx(xl->rx_ring, &b->frame);
}

static u32 tbrdma_xd_rx_len(const struct tbrdma_xd_buf *b)
{
	return b->frame.size ? b->frame.size : TBRDMA_FRAME_MAX;
}

static bool tbrdma_xd_rx_is_ext(const struct tbrdma_xd_buf *b)
{
	return b->frame.eof == TBRDMA_XD_PDF_EXT_EOF;
}

/* The next received descriptor that arrived intact, or NULL. */
static struct tbrdma_xd_buf *tbrdma_xd_rx_poll(struct tbrdma_xd_link *xl)
{
	for (;;) {
		struct ring_frame *f = tb_ring_poll(xl->rx_ring);
		struct tbrdma_xd_buf *b;

		if (!f)
			return NULL;
		b = container_of(f, struct tbrdma_xd_buf, frame);
		if (!(f->flags & (RING_DESC_CRC_ERROR | RING_DESC_BUFFER_OVERRUN)))
			return b;
		if (f->flags & RING_DESC_CRC_ERROR)
			xl->stats.rx_crc_errors++;
		else
			xl->stats.rx_overruns++;
		tbrdma_xd_rx_repost(xl, b);
	}
}

/*
 * The oldest frame, with its ext buffer if it announces one. A frame whose
 * ext was lost (the next descriptor is another frame, or an ext of another
 * length) goes up alone and the link drops it; an ext with no frame before
 * it is dropped here.
 */
static int tbrdma_xd_rx_peek(void *phy, struct tb_phy_rx *rx)
{
	struct tbrdma_xd_link *xl = phy;
	u32 want;

	if (!xl->rings_live)
		return -ENOTCONN;
	for (;;) {
		if (!xl->rx_cur) {
			xl->rx_cur = tbrdma_xd_rx_poll(xl);
			if (!xl->rx_cur)
				return 0;
		}
		if (!tbrdma_xd_rx_is_ext(xl->rx_cur))
			break;
		xl->stats.rx_unpaired++;
		tbrdma_xd_rx_repost(xl, xl->rx_cur);
		xl->rx_cur = NULL;
	}
	rx->frame = xl->rx_cur->cpu;
	rx->len = tbrdma_xd_rx_len(xl->rx_cur);
	rx->ext = NULL;
	rx->ext_len = 0;
	xl->rx_paired = false;
	want = tb_link_frame_ext_len(rx->frame, rx->len);
	if (!want)
		return 1;
	if (!xl->rx_ext) {
		xl->rx_ext = tbrdma_xd_rx_poll(xl);
		if (!xl->rx_ext)
			return 0;	/* its ext is on the way */
	}
	if (tbrdma_xd_rx_is_ext(xl->rx_ext) &&
	    tbrdma_xd_rx_len(xl->rx_ext) == want) {
		rx->ext = xl->rx_ext->cpu;
		rx->ext_len = want;
		xl->rx_paired = true;
	} else {
		xl->stats.rx_unpaired++;
	}
	return 1;
}

static void tbrdma_xd_rx_release(void *phy)
{
	struct tbrdma_xd_link *xl = phy;
	struct tbrdma_xd_buf *b = xl->rx_cur;

	if (!b)
		return;
	/* What followed an unpaired frame is looked at anew. */
	xl->rx_cur = xl->rx_paired ? NULL : xl->rx_ext;
	if (xl->rx_paired && xl->rings_live)
		tbrdma_xd_rx_repost(xl, xl->rx_ext);
	xl->rx_ext = NULL;
	xl->rx_paired = false;
	if (xl->rings_live)
		tbrdma_xd_rx_repost(xl, b);
}

static const struct tb_phy_ops tbrdma_xd_phy_ops = {
	.xmit = tbrdma_xd_xmit,
	.rx_peek = tbrdma_xd_rx_peek,
	.rx_release = tbrdma_xd_rx_release,
	.ext_max = TB_EXT_MAX,
};

/*
 * RX interrupt, masked by the driver before this call (hard interrupt
 * context, with the NHI's and the ring's spinlocks held): the link's
 * poller takes over until it goes idle.
 */
static void tbrdma_xd_start_poll(void *data)
{
	struct tbrdma_xd_link *xl = data;

	WRITE_ONCE(xl->rx_armed, false);
	xl->stats.irqs++;
	tbrdma_poller_kick(&xl->poller);
}

/* The link's poller goes to sleep: under the link's lock. */
void tbrdma_xd_idle(struct tbrdma_poller *p)
{
	struct tbrdma_xd_link *xl = container_of(p, struct tbrdma_xd_link,
						 poller);
	struct tbrdma_xd_buf **next;

	if (!xl->rings_live)
		return;
	if (!READ_ONCE(xl->rx_armed)) {
		/* Before unmasking: start_poll may clear it at once. */
		WRITE_ONCE(xl->rx_armed, true);
		tb_ring_poll_complete(xl->rx_ring);
	}
	/*
	 * A descriptor that completed while the interrupt was masked may
	 * raise none: look once more, and stay awake if there is one. That
	 * includes the ext a held frame is waiting for.
	 */
	next = !xl->rx_cur ? &xl->rx_cur : !xl->rx_ext ? &xl->rx_ext : NULL;
	if (next) {
		*next = tbrdma_xd_rx_poll(xl);
		if (*next)
			tbrdma_poller_kick(p);
	}
}

/* The engine's link callbacks. */

static void tbrdma_xd_state_changed(void *user, struct tb_link *link,
				    u32 state)
{
	struct tbrdma_xd_link *xl = link->phy;

	tb_engine_link_ops.state_changed(user, link, state);
	if (xl->detaching)
		return;
	tbrdma_clients_changed(tbrdma_xd_index(xl));
	if (state == TBRDMA_LINK_UP) {
		dev_info_ratelimited(&xl->dev, "link up\n");
	} else if (state == TBRDMA_LINK_DOWN) {
		dev_info_ratelimited(&xl->dev, "link failed, logging in again\n");
		WRITE_ONCE(xl->failed_gen, xl->link_gen);
		/* The generation before the bit that says to read it. */
		smp_mb__before_atomic();
		set_bit(TBRDMA_XD_LINK_FAILED, &xl->flags);
		mod_delayed_work(tbxd.wq, &xl->work, 0);
	}
}

static const struct tb_link_user_ops tbrdma_xd_link_ops = {
	.deliver = tb_engine_deliver,
	.state_changed = tbrdma_xd_state_changed,
	.ext_put = tb_engine_ext_put,
	.user_ack = tb_engine_user_ack,
	.user_ack_sent = tb_engine_user_ack_sent,
	.user_ack_rx = tb_engine_user_ack_rx,
};

void tbrdma_xd_free_bufs(struct tbrdma_xd_link *xl,
			 struct tbrdma_xd_buf *bufs, u32 n)
{
	u32 i;

	if (!bufs)
		return;
	for (i = 0; i < n; i++)
		if (bufs[i].cpu)
			dma_free_coherent(xl->dma_dev, TBRDMA_FRAME_MAX,
					  bufs[i].cpu, bufs[i].dma);
	kvfree(bufs);
}

struct tbrdma_xd_buf *tbrdma_xd_alloc_bufs(struct tbrdma_xd_link *xl,
					   u32 n, ring_cb cb)
{
	struct tbrdma_xd_buf *bufs;
	u32 i;

	bufs = kvcalloc(n, sizeof(*bufs), GFP_KERNEL);
	if (!bufs)
		return NULL;
	for (i = 0; i < n; i++) {
		bufs[i].xl = xl;
		bufs[i].cpu = dma_alloc_coherent(xl->dma_dev, TBRDMA_FRAME_MAX,
						 &bufs[i].dma, GFP_KERNEL);
		if (!bufs[i].cpu) {
			tbrdma_xd_free_bufs(xl, bufs, n);
			return NULL;
		}
		bufs[i].frame.buffer_phy = bufs[i].dma;
		bufs[i].frame.callback = cb;
	}
	return bufs;
}

/*
 * Takes the data link down: out of the engine (its endpoints fail, but
 * for UD queue pairs', which join the link when it logs in again, or go
 * with their device), then paths, rings and input HopID. Work item,
 * remove or suspend only.
 */
void tbrdma_xd_link_down(struct tbrdma_xd_link *xl)
{
	bool was_up;

	tbrdma_lock();
	was_up = xl->attached;
	if (xl->attached) {
		xl->detaching = true;
		clear_bit(xl->link.index, tbrdma.xd_links);
		tbrdma_poller_assign(xl->link.index, NULL);
		tb_engine_unplug_link(tbrdma.engine, &xl->link);
		tb_link_destroy(&xl->link);
		xl->attached = false;
		xl->detaching = false;
		xl->stats.link_downs++;
		tbrdma_clients_changed(tbrdma_xd_index(xl));
	}
	xl->rings_live = false;
	xl->rx_cur = NULL;
	xl->rx_ext = NULL;
	xl->rx_paired = false;
	xl->identity = 0;
	tbrdma_unlock();
	tbrdma_poller_stop(&xl->poller);	/* done with the RX ring */

	/*
	 * Rings before paths, as the kernel's own service drivers do: no
	 * descriptor (an ext buffer in registered memory) is in flight when
	 * the path goes.
	 */
	if (xl->rings_started) {
		tb_ring_stop(xl->rx_ring);
		tb_ring_stop(xl->tx_ring);	/* completes every TX frame */
		xl->rings_started = false;
	}
	if (xl->paths_enabled &&
	    tb_xdomain_disable_paths(xl->xd, xl->out_hopid, xl->tx_ring->hop,
				     xl->in_hopid, xl->rx_ring->hop))
		dev_warn(&xl->dev, "could not disable the DMA paths\n");
	xl->paths_enabled = false;
	if (xl->rx_ring)
		tb_ring_free(xl->rx_ring);
	if (xl->tx_ring)
		tb_ring_free(xl->tx_ring);
	xl->rx_ring = NULL;
	xl->tx_ring = NULL;
	if (xl->in_hopid >= 0)
		tb_xdomain_release_in_hopid(xl->xd, xl->in_hopid);
	xl->in_hopid = -1;
	if (was_up)
		dev_info_ratelimited(&xl->dev, "link down\n");
}

int tbrdma_xd_link_up(struct tbrdma_xd_link *xl,
		      const struct tb_ctrl_action *a)
{
	struct tb_nhi *nhi = xl->xd->tb->nhi;
	char peer[TBRDMA_XD_NAME_LEN];
	char name[TASK_COMM_LEN];
	struct tb_link_config cfg;
	unsigned int flags = RING_FLAG_FRAME;
	int ret;
	u32 i;

	/*
	 * The control protocol hands out one UP per DOWN: a link left over
	 * would leak its HopID and rings and be attached twice.
	 */
	if (WARN_ON_ONCE(xl->attached || xl->tx_ring || xl->rx_ring ||
			 xl->in_hopid >= 0 || xl->poller.task))
		return -EBUSY;

	xl->e2e = a->caps & TB_CTRL_CAP_E2E;
	if (xl->e2e)
		flags |= RING_FLAG_E2E;

	ret = tb_xdomain_alloc_in_hopid(xl->xd, a->peer.hopid);
	if (ret != (int)a->peer.hopid) {
		if (ret >= 0)
			tb_xdomain_release_in_hopid(xl->xd, ret);
		dev_err(&xl->dev, "input HopID %u not available (%d)\n",
			a->peer.hopid, ret);
		return ret < 0 ? ret : -EBUSY;
	}
	xl->in_hopid = ret;

	/* A ring of n descriptors holds n - 1 frames. */
	xl->tx_ring = tb_ring_alloc_tx(nhi, -1, TBRDMA_XD_DESC(xl->tx_slots) + 1,
				       flags);
	if (!xl->tx_ring)
		return -ENOMEM;
	xl->rx_ring = tb_ring_alloc_rx(nhi, -1, TBRDMA_XD_DESC(xl->rx_slots) + 1,
				       flags, xl->e2e ? xl->tx_ring->hop : 0,
				       BIT(TBRDMA_XD_PDF_SOF) |
				       BIT(TBRDMA_XD_PDF_EXT_SOF),
				       BIT(TBRDMA_XD_PDF_EOF) |
				       BIT(TBRDMA_XD_PDF_EXT_EOF),
				       tbrdma_xd_start_poll, xl);
	if (!xl->rx_ring)
		return -ENOMEM;
#ifdef TBRDMA_HAVE_RING_THROTTLING
	/*
	 * These kernels leave rings unmoderated. A TX completion only
	 * recycles a descriptor: moderate it; RX as asked (0: none).
	 */
	tb_ring_throttling(xl->tx_ring,
			   tbrdma_xd_throttle_ns ?: TBRDMA_XD_TX_THROTTLE_NS);
	if (tbrdma_xd_throttle_ns)
		tb_ring_throttling(xl->rx_ring, tbrdma_xd_throttle_ns);
#endif

	xl->tx_nfree = 0;
	for (i = 0; i < TBRDMA_XD_DESC(xl->tx_slots); i++)
		xl->tx_free[xl->tx_nfree++] = i;
	xl->tx_waiting = false;
	WRITE_ONCE(xl->rx_armed, true);
	tb_ring_start(xl->tx_ring);
	tb_ring_start(xl->rx_ring);
	xl->rings_started = true;
	/* Receive buffers before the paths: nothing arrives into nothing. */
	for (i = 0; i < TBRDMA_XD_DESC(xl->rx_slots); i++) {
		ret = tb_ring_rx(xl->rx_ring, &xl->rx[i].frame);
		if (ret)
			return ret;
	}
	ret = tb_xdomain_enable_paths(xl->xd, xl->out_hopid, xl->tx_ring->hop,
				      xl->in_hopid, xl->rx_ring->hop);
	if (ret) {
		dev_err(&xl->dev, "could not enable the DMA paths (%d)\n", ret);
		return ret;
	}
	xl->paths_enabled = true;
	snprintf(name, sizeof(name), "tbrdma_%s", dev_name(&xl->dev));
	ret = tbrdma_poller_start(&xl->poller, name, dev_to_node(xl->dma_dev));
	if (ret)
		return ret;

	tb_link_config_default(&cfg);
	cfg.rx_slots = xl->rx_slots;
	cfg.tx_window = min(xl->tx_slots, a->peer.rx_slots);
	/*
	 * When no one busy-polls, a frame and its ack each wait for an RX
	 * interrupt, moderated on a 6.1 host (either may be one), and the
	 * ack its delay: below that, an idle link's round trip would time
	 * out with nothing lost.
	 */
	cfg.rto_min_ns += 2 * (u64)max_t(u32, TBRDMA_XD_MODERATION_NS,
					 tbrdma_xd_throttle_ns) +
			  cfg.ack_delay_ns;
	tbrdma_lock();
	ret = tb_link_init(&xl->link, &cfg, &tbrdma_xd_phy_ops, xl,
			   &tbrdma_xd_link_ops, tbrdma.engine);
	if (!ret) {
		xl->link.label = tbrdma_xd_index(xl);
		xl->link.fabric = tbrdma_link_fabric(xl->link.label, false);
		ret = tb_engine_add_link(tbrdma.engine, &xl->link);
		if (ret < 0)
			tb_link_destroy(&xl->link);
		else
			ret = 0;
	}
	if (!ret) {
		set_bit(xl->link.index, tbrdma.xd_links);
		tbrdma_poller_assign(xl->link.index, &xl->poller);
		xl->attached = true;
		xl->rings_live = true;
		xl->link_gen++;
		xl->identity = a->identity;
		xl->version = a->version;
		xl->stats.logins++;
	}
	tbrdma_unlock();
	if (ret)
		return ret;
	tbrdma_poller_kick(&xl->poller);	/* HELLO now */
	dev_info_ratelimited(&xl->dev,
			     "logged in to %s: protocol %u, HopIDs out %d in %d, rings %d/%d, %u/%u slots%s\n",
			     tbrdma_xd_peer_name(xl->xd, peer, sizeof(peer)),
			     a->version, xl->out_hopid, xl->in_hopid,
			     xl->tx_ring->hop, xl->rx_ring->hop, xl->tx_slots,
			     xl->rx_slots, xl->e2e ? ", E2E" : "");
	return 0;
}
