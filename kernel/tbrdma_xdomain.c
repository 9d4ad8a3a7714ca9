// SPDX-License-Identifier: GPL-2.0
/*
 * XDomain links: tb links to other hosts over Thunderbolt/USB4 cables.
 *
 * Both hosts load tbrdma. Each offers a "tbrdma" service in its XDomain
 * properties (tb_register_property_dir()), and each binds a service
 * driver to the service the *peer* offers, so one bound service is one
 * host-to-host connection (one cable; two cables to the same peer are two
 * connections) and gets a slot, tbN.
 *
 * Per connection:
 * - the control protocol (src/common/tb_ctrl.c) logs in over XDomain
 *   messages: our protocol handler answers the peer's requests at once, a
 *   work item sends ours (one at a time, tb_xdomain_request() blocks) and
 *   carries out what the protocol decides: bring the data link up or take
 *   it down;
 * - the data link: our output HopID (allocated at probe, announced in the
 *   LOGIN) and the peer's as our input HopID, one TX and one RX ring in
 *   frame mode, RX buffers posted before the paths are enabled, and a
 *   tb_link in the host's engine over them. Frames are copied into and
 *   out of DMA-coherent 4 KiB buffers; the data chunks of WRITEs and READ
 *   responses go as ext buffers instead: a second descriptor right behind
 *   the frame, pointing into the registered memory itself, which was
 *   DMA-mapped for this controller once (tbrdma_dma.c). Frames and ext
 *   buffers have PDFs of their own, so the receiver never takes one for
 *   the other, and it pairs them again by the length the frame announces;
 *   each frame may need two descriptors, so the rings have 2 per slot;
 * - the RX ring has a start_poll callback: its interrupt only wakes the
 *   poll thread, which then drains the ring with tb_ring_poll() in every
 *   round while it busy-polls, and re-enables the interrupt when it goes
 *   to sleep (tbrdma_xd_idle()). So 6.1's fixed interrupt moderation only
 *   costs latency on the first frame after an idle period;
 * - unplug, peer unload (LOGOUT), peer reload (a new LOGIN), suspend and
 *   our own unload take the link down at once: its endpoints fail, and the
 *   next login brings a fresh link up on the same slot.
 *
 * Locks: tbxd.lock (a mutex) guards the slot table. xl->ctrl_lock guards
 * the control protocol state and is never held across a Thunderbolt call
 * (the protocol handler runs in the control channel's receive path, which
 * must not wait for anything that needs that path). tbrdma.lock guards
 * the link, the ring pointers the phy uses and rings_live. The rings and
 * paths are set up and torn down by the work item only (or by remove and
 * suspend after cancelling it).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/delay.h>
#include <linux/device.h>
#include <linux/dma-mapping.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/random.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/sysfs.h>
#include <linux/thunderbolt.h>
#include <linux/uuid.h>
#include <linux/workqueue.h>

#include "tbrdma.h"
#include "tbrdma_xdomain.h"
#include "tb_ctrl.h"

static bool tbrdma_xd_enable = true;
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

static unsigned int tbrdma_xd_throttle_ns;
module_param_named(xd_throttle_ns, tbrdma_xd_throttle_ns, uint, 0444);
MODULE_PARM_DESC(xd_throttle_ns, "Ring interrupt moderation, ns, on kernels with tb_ring_throttling(); 0 keeps the driver's (default 0)");

static unsigned int tbrdma_xd_timeout_ms = 500;
module_param_named(xd_timeout_ms, tbrdma_xd_timeout_ms, uint, 0644);
MODULE_PARM_DESC(xd_timeout_ms, "Timeout of one control request to a peer, ms, 50-10000 (default 500)");

/* Our service: key, protocol id and the UUID of its property directory. */
#define TBRDMA_XD_KEY "tbrdma"
#define TBRDMA_XD_PRTCID 1
#define TBRDMA_XD_PRTCREVS 1

/* 328989dc-9a45-4a60-960f-75e2da9324cb: the property directory. */
static const uuid_t tbrdma_xd_dir_uuid =
	UUID_INIT(0x328989dc, 0x9a45, 0x4a60,
		  0x96, 0x0f, 0x75, 0xe2, 0xda, 0x93, 0x24, 0xcb);

/* 2086e9ad-9cfc-4835-896d-cc515c14c26a: our control messages. */
static const uuid_t tbrdma_xd_proto_uuid =
	UUID_INIT(0x2086e9ad, 0x9cfc, 0x4835,
		  0x89, 0x6d, 0xcc, 0x51, 0x5c, 0x14, 0xc2, 0x6a);

/*
 * A control message: the XDomain header (route, length and sequence
 * number), the protocol UUID, then tb_ctrl's words. At most 252 bytes.
 */
#define TBRDMA_XD_HDR_DW 7
#define TBRDMA_XD_PKT_DW (TBRDMA_XD_HDR_DW + TB_CTRL_MSG_MAX_DW)
#define TBRDMA_XD_LEN_MASK GENMASK(5, 0)
#define TBRDMA_XD_SN_SHIFT 27
#define TBRDMA_XD_SN_MASK GENMASK(28, 27)
static_assert(TBRDMA_XD_PKT_DW * 4 <= 252);

/*
 * Frame delimiters (PDF): one frame or ext buffer per descriptor, each
 * kind with its own pair.
 */
#define TBRDMA_XD_PDF_SOF 1
#define TBRDMA_XD_PDF_EOF 2
#define TBRDMA_XD_PDF_EXT_SOF 3
#define TBRDMA_XD_PDF_EXT_EOF 4

/* Descriptors (and buffers) of a ring for n frames, each with an ext. */
#define TBRDMA_XD_DESC(n) (2 * (n))
#define TBRDMA_XD_SLOTS_MAX 2047

/* What QUERY_LINK reports as latency: nominal one-way, not measured. */
#define TBRDMA_XD_LATENCY_NS 8000

/* xl->flags */
enum {
	TBRDMA_XD_CLOSING,	/* remove, suspend or unload in progress */
	TBRDMA_XD_LINK_FAILED,	/* the engine's link went down by itself */
};

struct tbrdma_xd_buf {
	struct ring_frame frame;
	struct tbrdma_xd_link *xl;
	void *cpu;
	dma_addr_t dma;
	struct tbrdma_umr *umr;		/* frame.buffer_phy points into it */
};

struct tbrdma_xd_stats {
	u64 rx_crc_errors;
	u64 rx_overruns;
	u64 tx_busy;		/* xmit found no free transmit buffer */
	u64 tx_ext_dma;		/* ext buffers sent from registered memory */
	u64 tx_ext_copied;	/* ext buffers copied (not mapped for us) */
	u64 rx_unpaired;	/* frames or ext buffers whose partner was lost */
	u64 irqs;		/* start_poll calls */
	u64 logins;		/* data links brought up */
	u64 link_downs;
	u64 setup_errors;	/* rings, HopIDs or paths failed */
};

/* One connection to a peer host: /sys/class/tbrdma/tbN. */
struct tbrdma_xd_link {
	struct device dev;
	bool dev_added;
	u32 slot;
	struct tb_service *svc;
	struct tb_xdomain *xd;		/* referenced */
	u64 route;
	uuid_t local_uuid;
	uuid_t remote_uuid;
	struct device *dma_dev;		/* the host controller (NHI) */
	int dma_id;			/* its id in tbrdma_dma.c, or -1 */
	unsigned long flags;

	/* Control protocol. */
	struct mutex ctrl_lock;
	struct tb_ctrl ctrl;
	struct delayed_work work;
	u32 req_sn;			/* XDomain sequence numbers */
	u32 refused_reason;		/* last refusal, for sysfs */

	/* Data path, set up and torn down by the work item. */
	int out_hopid;			/* ours, for the peer's LOGIN */
	int in_hopid;			/* the peer's, or -1 */
	struct tb_ring *tx_ring;
	struct tb_ring *rx_ring;
	bool rings_started;
	bool paths_enabled;
	bool e2e;
	u32 rx_slots;
	u32 tx_slots;
	struct tbrdma_xd_buf *rx;
	struct tbrdma_xd_buf *tx;

	/* Free transmit buffers: taken by xmit, given back on completion. */
	spinlock_t tx_lock;
	u32 *tx_free;
	u32 tx_nfree;
	bool tx_waiting;		/* xmit found none: kick on the next */

	/* Under tbrdma.lock. */
	struct tb_link link;
	bool attached;			/* link initialised and in the engine */
	bool detaching;
	bool rings_live;		/* the phy may use the rings */
	struct tbrdma_xd_buf *rx_cur;	/* polled, not yet released */
	struct tbrdma_xd_buf *rx_ext;	/* polled after it: its ext or not */
	bool rx_paired;			/* rx_peek gave rx_ext as the ext */
	u32 link_gen;			/* links brought up so far */
	u32 failed_gen;			/* link_gen of the link that failed */
	u64 identity;
	u32 version;
	struct tbrdma_xd_stats stats;

	/* The RX interrupt is enabled (the poll thread is not polling). */
	bool rx_armed;
};

static struct {
	struct mutex lock;		/* slot[] */
	struct tbrdma_xd_link *slot[TBRDMA_XD_MAX];
	struct tb_property_dir *dir;
	bool dir_registered;
	bool handler_registered;
	bool driver_registered;
	struct workqueue_struct *wq;
} tbxd;

/* A host UUID as tb_ctrl carries it: four little-endian words. */
static void tbrdma_xd_uuid_words(const uuid_t *uuid, u32 *w)
{
	const u8 *b = uuid->b;
	int i;

	for (i = 0; i < 4; i++, b += 4)
		w[i] = b[0] | (b[1] << 8) | (b[2] << 16) | ((u32)b[3] << 24);
}

static u32 tbrdma_xd_index(const struct tbrdma_xd_link *xl)
{
	return tbrdma.nloops + xl->slot;
}

/* The data path. */

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
 */
static void tbrdma_xd_fill_ext(struct tbrdma_xd_link *xl,
			       struct tbrdma_xd_buf *b,
			       const struct tb_link_ext *ext)
{
	dma_addr_t bus;

	if (!tbrdma_dma_addr(xl->dma_id, ext->dma_cookie, ext->data, ext->len,
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
	return 0;
}

/* TX completion (ring work, or tb_ring_stop() with canceled set). */
static void tbrdma_xd_tx_done(struct tb_ring *ring, struct ring_frame *frame,
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
		tbrdma_kick();
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
 * context, with the NHI's and the ring's spinlocks held): the poll thread
 * takes over until it goes idle.
 */
static void tbrdma_xd_start_poll(void *data)
{
	struct tbrdma_xd_link *xl = data;

	WRITE_ONCE(xl->rx_armed, false);
	xl->stats.irqs++;
	tbrdma_kick();
}

void tbrdma_xd_idle(void)
{
	u32 i;

	if (!tbrdma_xd_enable)
		return;
	mutex_lock(&tbrdma.lock);
	for (i = 0; i < TBRDMA_XD_MAX; i++) {
		struct tbrdma_xd_link *xl = tbxd.slot[i];

		if (!xl || !xl->rings_live)
			continue;
		if (!READ_ONCE(xl->rx_armed)) {
			/* Before unmasking: start_poll may clear it at once. */
			WRITE_ONCE(xl->rx_armed, true);
			tb_ring_poll_complete(xl->rx_ring);
		}
		/*
		 * A frame that completed while the interrupt was masked may
		 * raise none: look once more, and stay awake if there is one.
		 */
		if (!xl->rx_cur) {
			xl->rx_cur = tbrdma_xd_rx_poll(xl);
			if (xl->rx_cur)
				tbrdma_kick();
		}
	}
	mutex_unlock(&tbrdma.lock);
}

/* The engine's link callbacks. */

static int tbrdma_xd_deliver(void *user, struct tb_link *link,
			     const void *payload, u32 len, const void *ext,
			     u32 ext_len)
{
	return tb_engine_link_ops.deliver(user, link, payload, len, ext,
					  ext_len);
}

static void tbrdma_xd_ext_put(void *user, const struct tb_link_ext *ext)
{
	tb_engine_link_ops.ext_put(user, ext);
}

static void tbrdma_xd_state_changed(void *user, struct tb_link *link,
				    u32 state)
{
	struct tbrdma_xd_link *xl = link->phy;

	tb_engine_link_ops.state_changed(user, link, state);
	if (xl->detaching)
		return;
	if (state == TBRDMA_LINK_UP) {
		dev_info(&xl->dev, "link up\n");
	} else if (state == TBRDMA_LINK_DOWN) {
		dev_info(&xl->dev, "link failed, logging in again\n");
		xl->failed_gen = xl->link_gen;
		set_bit(TBRDMA_XD_LINK_FAILED, &xl->flags);
		mod_delayed_work(tbxd.wq, &xl->work, 0);
	}
}

static const struct tb_link_user_ops tbrdma_xd_link_ops = {
	.deliver = tbrdma_xd_deliver,
	.state_changed = tbrdma_xd_state_changed,
	.ext_put = tbrdma_xd_ext_put,
};

static void tbrdma_xd_free_bufs(struct tbrdma_xd_link *xl,
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

static struct tbrdma_xd_buf *tbrdma_xd_alloc_bufs(struct tbrdma_xd_link *xl,
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
 * Takes the data link down: out of the engine (its endpoints fail), then
 * paths, rings and input HopID. Work item, remove or suspend only.
 */
static void tbrdma_xd_link_down(struct tbrdma_xd_link *xl)
{
	bool was_up;

	mutex_lock(&tbrdma.lock);
	was_up = xl->attached;
	if (xl->attached) {
		xl->detaching = true;
		tb_engine_remove_link(tbrdma.engine, &xl->link);
		tb_link_destroy(&xl->link);
		xl->attached = false;
		xl->detaching = false;
		xl->stats.link_downs++;
	}
	xl->rings_live = false;
	xl->rx_cur = NULL;
	xl->rx_ext = NULL;
	xl->rx_paired = false;
	xl->identity = 0;
	mutex_unlock(&tbrdma.lock);

	/* Paths first: the rings must still be there to drain into. */
	if (xl->paths_enabled &&
	    tb_xdomain_disable_paths(xl->xd, xl->out_hopid, xl->tx_ring->hop,
				     xl->in_hopid, xl->rx_ring->hop))
		dev_warn(&xl->dev, "could not disable the DMA paths\n");
	xl->paths_enabled = false;
	if (xl->rings_started) {
		tb_ring_stop(xl->rx_ring);
		tb_ring_stop(xl->tx_ring);	/* completes every TX frame */
		xl->rings_started = false;
	}
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
		dev_info(&xl->dev, "link down\n");
}

static int tbrdma_xd_link_up(struct tbrdma_xd_link *xl,
			     const struct tb_ctrl_action *a)
{
	struct tb_nhi *nhi = xl->xd->tb->nhi;
	struct tb_link_config cfg;
	unsigned int flags = RING_FLAG_FRAME;
	int ret;
	u32 i;

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
	if (tbrdma_xd_throttle_ns) {
		tb_ring_throttling(xl->tx_ring, tbrdma_xd_throttle_ns);
		tb_ring_throttling(xl->rx_ring, tbrdma_xd_throttle_ns);
	}
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

	tb_link_config_default(&cfg);
	cfg.rx_slots = xl->rx_slots;
	cfg.tx_window = min(xl->tx_slots, a->peer.rx_slots);
	mutex_lock(&tbrdma.lock);
	ret = tb_link_init(&xl->link, &cfg, &tbrdma_xd_phy_ops, xl,
			   &tbrdma_xd_link_ops, tbrdma.engine);
	if (!ret) {
		xl->link.label = tbrdma_xd_index(xl);
		ret = tb_engine_add_link(tbrdma.engine, &xl->link);
		if (ret < 0)
			tb_link_destroy(&xl->link);
		else
			ret = 0;
	}
	if (!ret) {
		xl->attached = true;
		xl->rings_live = true;
		xl->link_gen++;
		xl->identity = a->identity;
		xl->version = a->version;
		xl->stats.logins++;
	}
	mutex_unlock(&tbrdma.lock);
	if (ret)
		return ret;
	tbrdma_kick();		/* HELLO now */
	dev_info(&xl->dev, "logged in to %s: protocol %u, HopIDs out %d in %d, rings %d/%d, %u/%u slots%s\n",
		 xl->xd->device_name ?: "peer", a->version, xl->out_hopid,
		 xl->in_hopid, xl->tx_ring->hop, xl->rx_ring->hop,
		 xl->tx_slots, xl->rx_slots, xl->e2e ? ", E2E" : "");
	return 0;
}

/* Control protocol. */

static u64 tbrdma_xd_now(void)
{
	return ktime_get_ns();
}

/* Header of a control message to the peer; n words of tb_ctrl follow. */
static void tbrdma_xd_fill_hdr(struct tbrdma_xd_link *xl, u32 *pkt, u32 n,
			       u32 sn)
{
	pkt[0] = upper_32_bits(xl->route);
	pkt[1] = lower_32_bits(xl->route);
	/* The length counts the words after route and length_sn. */
	pkt[2] = ((TBRDMA_XD_HDR_DW - 3 + n) & TBRDMA_XD_LEN_MASK) |
		 ((sn << TBRDMA_XD_SN_SHIFT) & TBRDMA_XD_SN_MASK);
	memcpy(&pkt[3], &tbrdma_xd_proto_uuid, sizeof(uuid_t));
}

/*
 * Checks a received control message and finds tb_ctrl's words in it.
 * Returns their number, or 0.
 */
static u32 tbrdma_xd_payload(const u32 *pkt, size_t size)
{
	u32 len;

	if (size % 4 || size < 4 * (TBRDMA_XD_HDR_DW + TB_CTRL_FIXED_DW) ||
	    size > 4 * TBRDMA_XD_PKT_DW)
		return 0;
	len = pkt[2] & TBRDMA_XD_LEN_MASK;
	if (len + 3 != size / 4)
		return 0;
	if (memcmp(&pkt[3], &tbrdma_xd_proto_uuid, sizeof(uuid_t)))
		return 0;
	return size / 4 - TBRDMA_XD_HDR_DW;
}

/*
 * Sends one request and waits for its response (or the timeout). Returns
 * the number of tb_ctrl words in resp, 0 when none came.
 */
static u32 tbrdma_xd_request(struct tbrdma_xd_link *xl, const u32 *req,
			     u32 n, u32 *resp)
{
	u32 pkt[TBRDMA_XD_PKT_DW], rpkt[TBRDMA_XD_PKT_DW];
	u32 rn, len;
	int ret;

	tbrdma_xd_fill_hdr(xl, pkt, n, xl->req_sn++);
	memcpy(&pkt[TBRDMA_XD_HDR_DW], req, n * 4);
	memset(rpkt, 0, sizeof(rpkt));
	ret = tb_xdomain_request(xl->xd, pkt, (TBRDMA_XD_HDR_DW + n) * 4,
				 TB_CFG_PKG_XDOMAIN_REQ, rpkt, sizeof(rpkt),
				 TB_CFG_PKG_XDOMAIN_RESP,
				 READ_ONCE(tbrdma_xd_timeout_ms));
	if (ret)
		return 0;
	/* The core copies what came, at most sizeof(rpkt): check its length. */
	len = rpkt[2] & TBRDMA_XD_LEN_MASK;
	if (len + 3 < TBRDMA_XD_HDR_DW + TB_CTRL_FIXED_DW ||
	    len + 3 > TBRDMA_XD_PKT_DW)
		return 0;
	rn = tbrdma_xd_payload(rpkt, (len + 3) * 4);
	if (rn)
		memcpy(resp, &rpkt[TBRDMA_XD_HDR_DW], rn * 4);
	return rn;
}

static void tbrdma_xd_report_refusal(struct tbrdma_xd_link *xl,
				     const struct tb_ctrl_action *a)
{
	xl->refused_reason = a->reason;
	if (a->reason == TB_CTRL_R_VERSION)
		dev_err(&xl->dev, "%s refused: %s (peer %s speaks tbrdma protocol %u-%u, this module %u-%u); load matching tbrdma versions on both hosts\n",
			a->by_peer ? "login" : "peer",
			tb_ctrl_reason_name(a->reason),
			xl->xd->device_name ?: "?", a->peer_ver_min,
			a->peer_ver_max, TB_CTRL_VERSION_MIN,
			TB_CTRL_VERSION_MAX);
	else
		dev_err(&xl->dev, "%s refused: %s (peer %s)\n",
			a->by_peer ? "login" : "peer",
			tb_ctrl_reason_name(a->reason),
			xl->xd->device_name ?: "?");
}

/* Carries out what the control protocol decided. Work item context. */
static void tbrdma_xd_actions(struct tbrdma_xd_link *xl)
{
	struct tb_ctrl_action a;
	int ret;

	for (;;) {
		mutex_lock(&xl->ctrl_lock);
		if (test_and_clear_bit(TBRDMA_XD_LINK_FAILED, &xl->flags) &&
		    READ_ONCE(xl->failed_gen) == READ_ONCE(xl->link_gen))
			tb_ctrl_link_failed(&xl->ctrl, tbrdma_xd_now());
		ret = tb_ctrl_next_action(&xl->ctrl, &a);
		mutex_unlock(&xl->ctrl_lock);
		if (!ret)
			return;
		switch (a.type) {
		case TB_CTRL_ACT_UP:
			ret = tbrdma_xd_link_up(xl, &a);
			if (ret) {
				xl->stats.setup_errors++;
				dev_err(&xl->dev, "could not bring the link up (%d)\n",
					ret);
				tbrdma_xd_link_down(xl);
				mutex_lock(&xl->ctrl_lock);
				tb_ctrl_link_failed(&xl->ctrl, tbrdma_xd_now());
				mutex_unlock(&xl->ctrl_lock);
			}
			break;
		case TB_CTRL_ACT_DOWN:
			if (xl->attached || xl->rings_started)
				dev_info(&xl->dev, "taking the link down: %s\n",
					 tb_ctrl_reason_name(a.reason));
			tbrdma_xd_link_down(xl);
			break;
		case TB_CTRL_ACT_REFUSED:
			tbrdma_xd_report_refusal(xl, &a);
			break;
		case TB_CTRL_ACT_LOGGED_OUT:
			dev_dbg(&xl->dev, "logged out\n");
			break;
		}
	}
}

/*
 * Runs the control protocol until it has nothing to send now: actions,
 * then one request at a time. Returns the protocol's next deadline.
 */
static u64 tbrdma_xd_run(struct tbrdma_xd_link *xl)
{
	u32 req[TB_CTRL_MSG_MAX_DW], resp[TB_CTRL_MSG_MAX_DW];
	u64 deadline;
	u32 n, rn;
	int ret;

	for (;;) {
		tbrdma_xd_actions(xl);
		mutex_lock(&xl->ctrl_lock);
		ret = tb_ctrl_next_request(&xl->ctrl, tbrdma_xd_now(), req, &n);
		mutex_unlock(&xl->ctrl_lock);
		if (!ret)
			break;
		rn = tbrdma_xd_request(xl, req, n, resp);
		mutex_lock(&xl->ctrl_lock);
		tb_ctrl_request_done(&xl->ctrl, tbrdma_xd_now(),
				     rn ? resp : NULL, rn);
		mutex_unlock(&xl->ctrl_lock);
	}
	mutex_lock(&xl->ctrl_lock);
	deadline = tb_ctrl_next_deadline(&xl->ctrl);
	mutex_unlock(&xl->ctrl_lock);
	return deadline;
}

static void tbrdma_xd_work(struct work_struct *work)
{
	struct tbrdma_xd_link *xl = container_of(to_delayed_work(work),
						 struct tbrdma_xd_link, work);
	u64 deadline, now;

	if (test_bit(TBRDMA_XD_CLOSING, &xl->flags))
		return;
	deadline = tbrdma_xd_run(xl);
	if (!deadline || test_bit(TBRDMA_XD_CLOSING, &xl->flags))
		return;
	now = tbrdma_xd_now();
	/* Does not delay a run someone asked for meanwhile. */
	queue_delayed_work(tbxd.wq, &xl->work, deadline > now ?
			   nsecs_to_jiffies(deadline - now) + 1 : 0);
}

/*
 * Control messages from peers, in the control channel's receive path.
 * Requests are answered here at once; responses are left to the core,
 * which hands them to the request waiting in tbrdma_xd_request().
 */
static int tbrdma_xd_handle_packet(const void *buf, size_t size, void *data)
{
	u32 resp[TBRDMA_XD_PKT_DW], sender[4], target[4];
	struct tbrdma_xd_link *xl = NULL;
	const u32 *pkt = buf;
	u32 n, rn = 0, i;
	u64 route;
	int ret;

	n = tbrdma_xd_payload(pkt, size);
	if (!n)
		return 0;
	if (tb_ctrl_is_response(&pkt[TBRDMA_XD_HDR_DW], n))
		return 0;
	route = (((u64)pkt[0] << 32) | pkt[1]) & ~BIT_ULL(63);
	/* Words 8-15 of every version: sender and target host UUIDs. */
	memcpy(sender, &pkt[TBRDMA_XD_HDR_DW + 8], sizeof(sender));
	memcpy(target, &pkt[TBRDMA_XD_HDR_DW + 12], sizeof(target));

	mutex_lock(&tbxd.lock);
	for (i = 0; i < TBRDMA_XD_MAX; i++) {
		struct tbrdma_xd_link *l = tbxd.slot[i];
		u32 r[4], t[4];

		if (!l || l->route != route)
			continue;
		tbrdma_xd_uuid_words(&l->remote_uuid, r);
		tbrdma_xd_uuid_words(&l->local_uuid, t);
		if (memcmp(r, sender, sizeof(r)) || memcmp(t, target, sizeof(t)))
			continue;
		xl = l;
		get_device(&xl->dev);
		break;
	}
	mutex_unlock(&tbxd.lock);
	if (!xl)
		return 0;	/* not (yet) bound to this peer */

	mutex_lock(&xl->ctrl_lock);
	ret = tb_ctrl_handle_request(&xl->ctrl, tbrdma_xd_now(),
				     &pkt[TBRDMA_XD_HDR_DW], n,
				     &resp[TBRDMA_XD_HDR_DW], &rn);
	/* Under the lock: tbrdma_xd_close() sets CLOSING under it. */
	if (!test_bit(TBRDMA_XD_CLOSING, &xl->flags))
		mod_delayed_work(tbxd.wq, &xl->work, 0);
	mutex_unlock(&xl->ctrl_lock);
	if (ret) {
		/* Same sequence number as the request, as XDomain does. */
		tbrdma_xd_fill_hdr(xl, resp, rn,
				   (pkt[2] & TBRDMA_XD_SN_MASK) >>
				   TBRDMA_XD_SN_SHIFT);
		tb_xdomain_response(xl->xd, resp, (TBRDMA_XD_HDR_DW + rn) * 4,
				    TB_CFG_PKG_XDOMAIN_RESP);
	}
	put_device(&xl->dev);
	return 1;
}

static struct tb_protocol_handler tbrdma_xd_handler = {
	.uuid = &tbrdma_xd_proto_uuid,
	.callback = tbrdma_xd_handle_packet,
};

/*
 * Stops the control protocol and the link: with a LOGOUT to the peer
 * (unload, suspend, shutdown) or without (unplug). Sleeps.
 */
static void tbrdma_xd_close(struct tbrdma_xd_link *xl, bool logout)
{
	mutex_lock(&xl->ctrl_lock);
	set_bit(TBRDMA_XD_CLOSING, &xl->flags);
	mutex_unlock(&xl->ctrl_lock);
	cancel_delayed_work_sync(&xl->work);
	mutex_lock(&xl->ctrl_lock);
	if (logout)
		tb_ctrl_logout(&xl->ctrl, tbrdma_xd_now());
	else
		tb_ctrl_stop(&xl->ctrl);
	mutex_unlock(&xl->ctrl_lock);
	/* LOGOUT: a few tries of at most xd_timeout_ms each. */
	while (logout) {
		u64 deadline = tbrdma_xd_run(xl);
		u64 now = tbrdma_xd_now();

		if (!deadline)
			break;
		if (deadline > now)
			msleep(DIV_ROUND_UP_ULL(deadline - now, NSEC_PER_MSEC));
	}
	tbrdma_xd_actions(xl);
	tbrdma_xd_link_down(xl);
	/* A request the handler queued meanwhile. */
	cancel_delayed_work_sync(&xl->work);
}

/* sysfs: /sys/class/tbrdma/tbN */

static struct tbrdma_xd_link *to_xl(struct device *dev)
{
	return container_of(dev, struct tbrdma_xd_link, dev);
}

static const char *const tbrdma_xd_state_names[] = {
	[TBRDMA_LINK_DOWN] = "down",
	[TBRDMA_LINK_CONNECTING] = "connecting",
	[TBRDMA_LINK_UP] = "up",
};

static u32 tbrdma_xd_state(const struct tbrdma_xd_link *xl)
{
	return xl->attached ? xl->link.state : TBRDMA_LINK_DOWN;
}

/* Lanes that carry what this host sends. */
static u32 tbrdma_xd_tx_lanes(const struct tb_xdomain *xd)
{
#ifdef TBRDMA_LINK_WIDTH_ENUM
	/* Since 6.6 a bit set, with asymmetric (3 + 1 lane) USB4 v2 links. */
	switch (xd->link_width) {
	case TB_LINK_WIDTH_DUAL:
		return 2;
	case TB_LINK_WIDTH_ASYM_TX:
		return 3;
	default:
		return 1;
	}
#else
	return max(xd->link_width, 1u);
#endif
}

/* What this end transmits: link_speed is Gb/s per lane. */
static u64 tbrdma_xd_speed_mbps(const struct tbrdma_xd_link *xl)
{
	return (u64)xl->xd->link_speed * tbrdma_xd_tx_lanes(xl->xd) * 1000;
}

/* This end of the cable: the host's UUID, which the peer's differs from. */
static u64 tbrdma_xd_end_id(const struct tbrdma_xd_link *xl)
{
	u64 half[2];

	memcpy(half, &xl->local_uuid, sizeof(half));
	return (half[0] ^ half[1]) ?: 1;
}

static u32 tbrdma_xd_numa(const struct tbrdma_xd_link *xl)
{
	int node = dev_to_node(xl->dma_dev);

	return node < 0 ? ~0u : node;
}

static ssize_t index_show(struct device *dev, struct device_attribute *attr,
			  char *buf)
{
	u32 v;

	mutex_lock(&tbrdma.lock);
	v = tbrdma_xd_index(to_xl(dev));
	mutex_unlock(&tbrdma.lock);
	return sysfs_emit(buf, "%u\n", v);
}
static DEVICE_ATTR_RO(index);

static ssize_t state_show(struct device *dev, struct device_attribute *attr,
			  char *buf)
{
	u32 state;

	mutex_lock(&tbrdma.lock);
	state = tbrdma_xd_state(to_xl(dev));
	mutex_unlock(&tbrdma.lock);
	return sysfs_emit(buf, "%s\n", tbrdma_xd_state_names[state]);
}
static DEVICE_ATTR_RO(state);

static ssize_t login_show(struct device *dev, struct device_attribute *attr,
			  char *buf)
{
	struct tbrdma_xd_link *xl = to_xl(dev);
	u32 state, reason;

	mutex_lock(&xl->ctrl_lock);
	state = xl->ctrl.state;
	reason = xl->refused_reason;
	mutex_unlock(&xl->ctrl_lock);
	if (state == TB_CTRL_S_REFUSED)
		return sysfs_emit(buf, "refused: %s\n",
				  tb_ctrl_reason_name(reason));
	return sysfs_emit(buf, "%s\n", tb_ctrl_state_name(state));
}
static DEVICE_ATTR_RO(login);

static ssize_t identity_show(struct device *dev,
			     struct device_attribute *attr, char *buf)
{
	u64 v;

	mutex_lock(&tbrdma.lock);
	v = to_xl(dev)->identity;
	mutex_unlock(&tbrdma.lock);
	return sysfs_emit(buf, "0x%016llx\n", v);
}
static DEVICE_ATTR_RO(identity);

static ssize_t speed_mbps_show(struct device *dev,
			       struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%llu\n", tbrdma_xd_speed_mbps(to_xl(dev)));
}
static DEVICE_ATTR_RO(speed_mbps);

static ssize_t latency_ns_show(struct device *dev,
			       struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%u\n", TBRDMA_XD_LATENCY_NS);
}
static DEVICE_ATTR_RO(latency_ns);

static ssize_t link_speed_show(struct device *dev,
			       struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%u Gb/s\n", to_xl(dev)->xd->link_speed);
}
static DEVICE_ATTR_RO(link_speed);

static ssize_t link_width_show(struct device *dev,
			       struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%u\n", to_xl(dev)->xd->link_width);
}
static DEVICE_ATTR_RO(link_width);

static ssize_t peer_name_show(struct device *dev,
			      struct device_attribute *attr, char *buf)
{
	struct tb_xdomain *xd = to_xl(dev)->xd;
	ssize_t ret;

	mutex_lock(&xd->lock);
	ret = sysfs_emit(buf, "%s\n", xd->device_name ?: "");
	mutex_unlock(&xd->lock);
	return ret;
}
static DEVICE_ATTR_RO(peer_name);

static ssize_t peer_vendor_show(struct device *dev,
				struct device_attribute *attr, char *buf)
{
	struct tb_xdomain *xd = to_xl(dev)->xd;
	ssize_t ret;

	mutex_lock(&xd->lock);
	ret = sysfs_emit(buf, "%s\n", xd->vendor_name ?: "");
	mutex_unlock(&xd->lock);
	return ret;
}
static DEVICE_ATTR_RO(peer_vendor);

static ssize_t peer_uuid_show(struct device *dev,
			      struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%pUb\n", &to_xl(dev)->remote_uuid);
}
static DEVICE_ATTR_RO(peer_uuid);

static ssize_t local_uuid_show(struct device *dev,
			       struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%pUb\n", &to_xl(dev)->local_uuid);
}
static DEVICE_ATTR_RO(local_uuid);

static ssize_t route_show(struct device *dev, struct device_attribute *attr,
			  char *buf)
{
	return sysfs_emit(buf, "0x%llx\n", to_xl(dev)->route);
}
static DEVICE_ATTR_RO(route);

static ssize_t xdomain_show(struct device *dev, struct device_attribute *attr,
			    char *buf)
{
	return sysfs_emit(buf, "%s\n", dev_name(&to_xl(dev)->xd->dev));
}
static DEVICE_ATTR_RO(xdomain);

static ssize_t pci_addr_show(struct device *dev, struct device_attribute *attr,
			     char *buf)
{
	return sysfs_emit(buf, "%s\n", dev_name(to_xl(dev)->dma_dev));
}
static DEVICE_ATTR_RO(pci_addr);

static ssize_t numa_node_show(struct device *dev,
			      struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%d\n", dev_to_node(to_xl(dev)->dma_dev));
}
static DEVICE_ATTR_RO(numa_node);

static ssize_t protocol_show(struct device *dev, struct device_attribute *attr,
			     char *buf)
{
	u32 v;

	mutex_lock(&tbrdma.lock);
	v = to_xl(dev)->attached ? to_xl(dev)->version : 0;
	mutex_unlock(&tbrdma.lock);
	return sysfs_emit(buf, "%u\n", v);
}
static DEVICE_ATTR_RO(protocol);

/* "out_hopid in_hopid tx_ring rx_ring tx_slots rx_slots e2e" */
static ssize_t rings_show(struct device *dev, struct device_attribute *attr,
			  char *buf)
{
	struct tbrdma_xd_link *xl = to_xl(dev);
	ssize_t ret;

	mutex_lock(&tbrdma.lock);
	if (xl->rings_live)
		ret = sysfs_emit(buf, "%d %d %d %d %u %u %d\n", xl->out_hopid,
				 xl->in_hopid, xl->tx_ring->hop,
				 xl->rx_ring->hop, xl->tx_slots, xl->rx_slots,
				 xl->e2e);
	else
		ret = sysfs_emit(buf, "%d - - - %u %u -\n", xl->out_hopid,
				 xl->tx_slots, xl->rx_slots);
	mutex_unlock(&tbrdma.lock);
	return ret;
}
static DEVICE_ATTR_RO(rings);

static struct attribute *tbrdma_xd_attrs[] = {
	&dev_attr_index.attr,
	&dev_attr_state.attr,
	&dev_attr_login.attr,
	&dev_attr_identity.attr,
	&dev_attr_speed_mbps.attr,
	&dev_attr_latency_ns.attr,
	&dev_attr_link_speed.attr,
	&dev_attr_link_width.attr,
	&dev_attr_peer_name.attr,
	&dev_attr_peer_vendor.attr,
	&dev_attr_peer_uuid.attr,
	&dev_attr_local_uuid.attr,
	&dev_attr_route.attr,
	&dev_attr_xdomain.attr,
	&dev_attr_pci_addr.attr,
	&dev_attr_numa_node.attr,
	&dev_attr_protocol.attr,
	&dev_attr_rings.attr,
	NULL,
};

static const struct attribute_group tbrdma_xd_group = {
	.attrs = tbrdma_xd_attrs,
};

/*
 * statistics/: the link's counters (as for loop cables; they restart with
 * every login), then this connection's own (for its lifetime).
 */
enum tbrdma_xd_stat_src { XD_LINK, XD_PHY, XD_CTRL };

struct tbrdma_xd_stat_attr {
	struct device_attribute attr;
	enum tbrdma_xd_stat_src src;
	size_t offset;
};

static ssize_t tbrdma_xd_stat_show(struct device *dev,
				   struct device_attribute *attr, char *buf)
{
	const struct tbrdma_xd_stat_attr *sa =
		container_of(attr, struct tbrdma_xd_stat_attr, attr);
	struct tbrdma_xd_link *xl = to_xl(dev);
	u64 v = 0;

	switch (sa->src) {
	case XD_LINK:
		mutex_lock(&tbrdma.lock);
		if (xl->attached)
			v = *(u64 *)((u8 *)&xl->link.stats + sa->offset);
		mutex_unlock(&tbrdma.lock);
		break;
	case XD_PHY:
		mutex_lock(&tbrdma.lock);
		v = *(u64 *)((u8 *)&xl->stats + sa->offset);
		mutex_unlock(&tbrdma.lock);
		break;
	case XD_CTRL:
		mutex_lock(&xl->ctrl_lock);
		v = *(u64 *)((u8 *)&xl->ctrl.stats + sa->offset);
		mutex_unlock(&xl->ctrl_lock);
		break;
	}
	return sysfs_emit(buf, "%llu\n", v);
}

#define TBRDMA_XD_STAT(_name, _src, _type, _field)			\
static struct tbrdma_xd_stat_attr tbrdma_xd_stat_##_name = {		\
	.attr = __ATTR(_name, 0444, tbrdma_xd_stat_show, NULL),		\
	.src = _src,							\
	.offset = offsetof(_type, _field),				\
}

TBRDMA_XD_STAT(tx_frames, XD_LINK, struct tb_link_stats, tx_frames);
TBRDMA_XD_STAT(tx_bytes, XD_LINK, struct tb_link_stats, tx_bytes);
TBRDMA_XD_STAT(rx_frames, XD_LINK, struct tb_link_stats, rx_frames);
TBRDMA_XD_STAT(rx_bytes, XD_LINK, struct tb_link_stats, rx_bytes);
TBRDMA_XD_STAT(tx_acks, XD_LINK, struct tb_link_stats, tx_acks);
TBRDMA_XD_STAT(retransmits, XD_LINK, struct tb_link_stats, retransmits);
TBRDMA_XD_STAT(timeouts, XD_LINK, struct tb_link_stats, timeouts);
TBRDMA_XD_STAT(rx_dup, XD_LINK, struct tb_link_stats, rx_dup);
TBRDMA_XD_STAT(rx_gap, XD_LINK, struct tb_link_stats, rx_gap);
TBRDMA_XD_STAT(rx_bad, XD_LINK, struct tb_link_stats, rx_bad);
TBRDMA_XD_STAT(rx_stalls, XD_LINK, struct tb_link_stats, rx_stalls);
TBRDMA_XD_STAT(tx_ext, XD_LINK, struct tb_link_stats, tx_ext);
TBRDMA_XD_STAT(ext_detached, XD_LINK, struct tb_link_stats, ext_detached);
TBRDMA_XD_STAT(tx_ext_dma, XD_PHY, struct tbrdma_xd_stats, tx_ext_dma);
TBRDMA_XD_STAT(tx_ext_copied, XD_PHY, struct tbrdma_xd_stats, tx_ext_copied);
TBRDMA_XD_STAT(rx_unpaired, XD_PHY, struct tbrdma_xd_stats, rx_unpaired);
TBRDMA_XD_STAT(rx_crc_errors, XD_PHY, struct tbrdma_xd_stats, rx_crc_errors);
TBRDMA_XD_STAT(rx_overruns, XD_PHY, struct tbrdma_xd_stats, rx_overruns);
TBRDMA_XD_STAT(tx_busy, XD_PHY, struct tbrdma_xd_stats, tx_busy);
TBRDMA_XD_STAT(irqs, XD_PHY, struct tbrdma_xd_stats, irqs);
TBRDMA_XD_STAT(logins, XD_PHY, struct tbrdma_xd_stats, logins);
TBRDMA_XD_STAT(link_downs, XD_PHY, struct tbrdma_xd_stats, link_downs);
TBRDMA_XD_STAT(setup_errors, XD_PHY, struct tbrdma_xd_stats, setup_errors);
TBRDMA_XD_STAT(ctrl_requests, XD_CTRL, struct tb_ctrl_stats, tx_requests);
TBRDMA_XD_STAT(ctrl_timeouts, XD_CTRL, struct tb_ctrl_stats, timeouts);
TBRDMA_XD_STAT(ctrl_rx_requests, XD_CTRL, struct tb_ctrl_stats, rx_requests);
TBRDMA_XD_STAT(ctrl_rx_bad, XD_CTRL, struct tb_ctrl_stats, rx_bad);
TBRDMA_XD_STAT(ctrl_rx_stale, XD_CTRL, struct tb_ctrl_stats, rx_stale);
TBRDMA_XD_STAT(ctrl_refusals, XD_CTRL, struct tb_ctrl_stats, refusals);

static struct attribute *tbrdma_xd_stat_attrs[] = {
	&tbrdma_xd_stat_tx_frames.attr.attr,
	&tbrdma_xd_stat_tx_bytes.attr.attr,
	&tbrdma_xd_stat_rx_frames.attr.attr,
	&tbrdma_xd_stat_rx_bytes.attr.attr,
	&tbrdma_xd_stat_tx_acks.attr.attr,
	&tbrdma_xd_stat_retransmits.attr.attr,
	&tbrdma_xd_stat_timeouts.attr.attr,
	&tbrdma_xd_stat_rx_dup.attr.attr,
	&tbrdma_xd_stat_rx_gap.attr.attr,
	&tbrdma_xd_stat_rx_bad.attr.attr,
	&tbrdma_xd_stat_rx_stalls.attr.attr,
	&tbrdma_xd_stat_tx_ext.attr.attr,
	&tbrdma_xd_stat_ext_detached.attr.attr,
	&tbrdma_xd_stat_tx_ext_dma.attr.attr,
	&tbrdma_xd_stat_tx_ext_copied.attr.attr,
	&tbrdma_xd_stat_rx_unpaired.attr.attr,
	&tbrdma_xd_stat_rx_crc_errors.attr.attr,
	&tbrdma_xd_stat_rx_overruns.attr.attr,
	&tbrdma_xd_stat_tx_busy.attr.attr,
	&tbrdma_xd_stat_irqs.attr.attr,
	&tbrdma_xd_stat_logins.attr.attr,
	&tbrdma_xd_stat_link_downs.attr.attr,
	&tbrdma_xd_stat_setup_errors.attr.attr,
	&tbrdma_xd_stat_ctrl_requests.attr.attr,
	&tbrdma_xd_stat_ctrl_timeouts.attr.attr,
	&tbrdma_xd_stat_ctrl_rx_requests.attr.attr,
	&tbrdma_xd_stat_ctrl_rx_bad.attr.attr,
	&tbrdma_xd_stat_ctrl_rx_stale.attr.attr,
	&tbrdma_xd_stat_ctrl_refusals.attr.attr,
	NULL,
};

static const struct attribute_group tbrdma_xd_stat_group = {
	.name = "statistics",
	.attrs = tbrdma_xd_stat_attrs,
};

static const struct attribute_group *tbrdma_xd_groups[] = {
	&tbrdma_xd_group,
	&tbrdma_xd_stat_group,
	NULL,
};

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

/* Service driver. */

static int tbrdma_xd_probe(struct tb_service *svc,
			   const struct tb_service_id *id)
{
	struct tb_xdomain *xd = tb_service_parent(svc);
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
	xl->dma_dev = &xd->tb->nhi->pdev->dev;
	xl->dma_id = -1;
	xl->in_hopid = -1;
	xl->out_hopid = -1;
	xl->rx_slots = tbrdma_xd_rx_slots;
	xl->tx_slots = tbrdma_xd_tx_slots;
	mutex_init(&xl->ctrl_lock);
	spin_lock_init(&xl->tx_lock);
	INIT_DELAYED_WORK(&xl->work, tbrdma_xd_work);
	device_initialize(&xl->dev);
	xl->dev.class = &tbrdma_class;
	xl->dev.parent = &svc->dev;
	xl->dev.groups = tbrdma_xd_groups;
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
	/* Visible to the handler and to userspace (under tbrdma.lock). */
	mutex_lock(&tbrdma.lock);
	tbxd.slot[slot] = xl;
	mutex_unlock(&tbrdma.lock);
	mutex_unlock(&tbxd.lock);

	tb_service_set_drvdata(svc, xl);
	mutex_lock(&xl->ctrl_lock);
	tb_ctrl_start(&xl->ctrl, tbrdma_xd_now());
	mutex_unlock(&xl->ctrl_lock);
	queue_delayed_work(tbxd.wq, &xl->work, 0);
	dev_info(&xl->dev, "peer %s (%pUb) on %s, %u Gb/s x %u, logging in\n",
		 xd->device_name ?: "?", &xl->remote_uuid, dev_name(&xd->dev),
		 xd->link_speed, xd->link_width);
	return 0;

fail:
	put_device(&xl->dev);
	return ret;
}

static void tbrdma_xd_unlist(struct tbrdma_xd_link *xl)
{
	mutex_lock(&tbxd.lock);
	mutex_lock(&tbrdma.lock);
	tbxd.slot[xl->slot] = NULL;
	mutex_unlock(&tbrdma.lock);
	mutex_unlock(&tbxd.lock);
}

static void tbrdma_xd_remove(struct tb_service *svc)
{
	struct tbrdma_xd_link *xl = tb_service_get_drvdata(svc);

	/* A peer that was unplugged cannot hear a LOGOUT. */
	tbrdma_xd_close(xl, !xl->xd->is_unplugged);
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

int tbrdma_xd_lookup(u32 slot, struct tbrdma_link_attr *attr,
		     u32 *engine_index)
{
	struct tbrdma_xd_link *xl;

	lockdep_assert_held(&tbrdma.lock);
	if (slot >= TBRDMA_XD_MAX || !tbxd.slot[slot])
		return -EINVAL;
	xl = tbxd.slot[slot];
	*engine_index = xl->attached ? xl->link.index : U32_MAX;
	attr->state = tbrdma_xd_state(xl);
	snprintf(attr->name, sizeof(attr->name), "tb%u", slot);
	attr->identity = xl->identity;
	attr->speed_mbps = tbrdma_xd_speed_mbps(xl);
	attr->latency_ns = TBRDMA_XD_LATENCY_NS;
	attr->numa_node = tbrdma_xd_numa(xl);
	strscpy(attr->pci_addr, dev_name(xl->dma_dev), sizeof(attr->pci_addr));
	attr->end_id = tbrdma_xd_end_id(xl);
	attr->rtt_ns = xl->attached ? tb_link_rtt_ns(&xl->link) : 0;
	return 0;
}

void tbrdma_xd_show(struct seq_file *m)
{
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
		if (!xl->attached)
			continue;
		seq_printf(m, "  engine link %u state %s epoch %08x peer %08x\n",
			   l->index, tbrdma_xd_state_names[l->state],
			   l->epoch, l->peer_epoch);
		seq_printf(m, "  tx next %u una %u resend %u credit %u rto_ns %llu rx next %u\n",
			   l->tx_next, l->tx_una, l->tx_resend, l->tx_credit,
			   l->rto_ns, l->rx_next);
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
	if (tbrdma_xd_timeout_ms < 50 || tbrdma_xd_timeout_ms > 10000) {
		pr_err("xd_timeout_ms=%u: must be 50-10000\n",
		       tbrdma_xd_timeout_ms);
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
	if (tbxd.handler_registered)
		tb_unregister_protocol_handler(&tbrdma_xd_handler);
	tbxd.handler_registered = false;
	if (tbxd.dir)
		tb_property_free_dir(tbxd.dir);
	tbxd.dir = NULL;
	if (tbxd.wq)
		destroy_workqueue(tbxd.wq);
	tbxd.wq = NULL;
}
