// SPDX-License-Identifier: GPL-2.0
/*
 * In-kernel loop cable: a virtual cable whose two ends are both in this
 * host. Each end is a tb_link of the host's engine, with a receive ring of
 * loop_slots frames of TBRDMA_FRAME_MAX bytes; a frame sent on one end is
 * copied into a free slot of the other end's ring, or dropped when there
 * is none, as a real receiver without end-to-end flow control would. So
 * traffic between two contexts of this host goes through the whole link
 * protocol: frames, credits, sequence numbers, acks and retransmissions.
 *
 * Userspace sees one link per cable, loopN, which is end A. An endpoint
 * sends from end A, or from end B when its remote context's id is below
 * its own (tbrdma_ep_create()); its requests are executed by the other
 * end's responder on the context named in the frame (the engine looks
 * contexts up by id, and both ends share one context table), and the
 * responses travel back.
 *
 * Like a USB4 phy, a loop carries ext buffers: the data chunks of WRITEs
 * and READ responses travel beside the frame, read from the sender's
 * registered memory. They are read the way a controller would: by bus
 * address, from the region's DMA mapping for a virtual "tbrdma-loop-dma"
 * platform device (see tbrdma_dma.c), after the sync for that device. So
 * the mapping done at registration is exercised without USB4 hardware.
 * Where bus addresses are not CPU physical ones (an IOMMU), the loop
 * reads through the CPU mapping instead.
 *
 * A frame put on a cable is received by whoever sent it, once it lets
 * the link go (tbrdma_rx_now()): the process that posted it, the poll
 * thread that resent it (the host's, tbrdma.poller, runs every loop). So
 * a loop delivers as a ring polled by a spinning core would, without
 * waking a thread per frame; the loopback netdev works this way too.
 *
 * Each end is an engine link with its own lock: a ring is filled under
 * the sending end's lock and emptied under the receiving end's, so the
 * fill count between them is atomic (one producer, one consumer). The
 * rest (attaching, carrier, debugfs) runs under tbrdma_lock().
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/device.h>
#include <linux/dma-direct.h>
#include <linux/dma-mapping.h>
#include <linux/highmem.h>
#include <linux/platform_device.h>
#include <linux/random.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/sysfs.h>

#include "tbrdma.h"
#include "tbrdma_xdomain.h"

/* What QUERY_LINK reports for a loop: nominal, it is a memcpy. */
#define TBRDMA_LOOP_SPEED_MBPS 40000
#define TBRDMA_LOOP_LATENCY_NS 1000

static bool tbrdma_loop_dma = true;
module_param_named(loop_dma, tbrdma_loop_dma, bool, 0444);
MODULE_PARM_DESC(loop_dma, "Loop cables read ext buffers by bus address from registered memory mapped for a virtual DMA device, as a controller does (default 1)");

/* A slot: a frame, then room for the ext buffer that came with it. */
#define TBRDMA_LOOP_SLOT (TBRDMA_FRAME_MAX + TB_EXT_MAX)

/* Frames travelling towards one end: that end's receive slots. */
struct tbrdma_loop_ring {
	u8 *buf;			/* slots * TBRDMA_LOOP_SLOT bytes */
	u32 *len;
	u32 *ext_len;			/* 0: no ext buffer */
	u32 slots;
	/*
	 * Slot indices below slots (loop_slots need not be a power of two):
	 * head and the counters are the sender's, tail the receiver's.
	 */
	u32 head;			/* next slot the sender fills */
	u32 tail;			/* oldest slot not yet released */
	atomic_t used;			/* slots filled and not yet released */
	u64 dropped;			/* frames that found every slot full */
	u64 ext_dma;			/* ext buffers read by bus address */
	u64 ext_cpu;			/* ext buffers read by CPU address */
};

/* The loops' DMA device, and its id in tbrdma_dma.c (-1: none). */
static struct platform_device *tbrdma_loop_pdev;
static int tbrdma_loop_dma_id = -1;

struct tbrdma_loop_end {
	struct tbrdma_loop *loop;
	struct tb_link link;
	struct tbrdma_loop_ring *rx;	/* frames for this end */
	struct tbrdma_loop_ring *tx;	/* frames for the other end */
	struct tbrdma_loop_end *peer;
	bool attached;			/* link initialised and in the engine */
};

struct tbrdma_loop {
	struct device dev;		/* /sys/class/tbrdma/loopN */
	bool dev_init;
	bool dev_added;
	bool closing;
	u32 index;			/* userspace link index, rqe.link */
	u64 identity;			/* the same at both ends */
	bool plugged;			/* carrier: both ends can exchange */
	struct tbrdma_loop_ring ring[2];	/* ring[i] feeds end[i] */
	struct tbrdma_loop_end end[2];		/* end[0] is A, userspace's */
};

/* Copies ext into dst the way the device would read it. */
static void tbrdma_loop_read_ext(struct tbrdma_loop_ring *r, u8 *dst,
				 const struct tb_link_ext *ext)
{
	struct device *dev = &tbrdma_loop_pdev->dev;
	phys_addr_t phys;
	dma_addr_t bus;
	u8 *map;

	if (tbrdma_dma_addr(tbrdma_loop_dma_id, ext->dma_cookie, ext->data,
			    ext->len, &bus)) {
		memcpy(dst, ext->data, ext->len);
		r->ext_cpu++;
		return;
	}
	phys = dma_to_phys(dev, bus);
	map = kmap_local_page(pfn_to_page(PHYS_PFN(phys)));
	memcpy(dst, map + offset_in_page(phys), ext->len);
	kunmap_local(map);
	r->ext_dma++;
}

static int tbrdma_loop_xmit(void *phy, const void *frame, u32 len,
			    const struct tb_link_ext *ext)
{
	struct tbrdma_loop_end *end = phy;
	struct tbrdma_loop_ring *r = end->tx;
	u8 *dst;
	u32 slot;

	if (!READ_ONCE(end->loop->plugged))
		return -ENOTCONN;
	if (WARN_ON_ONCE(!len || len > TBRDMA_FRAME_MAX))
		return 0;
	/* Acquire: the receiver is done with the slot it released. */
	if (atomic_read_acquire(&r->used) == r->slots) {
		r->dropped++;
		return 0;
	}
	slot = r->head;
	dst = r->buf + (size_t)slot * TBRDMA_LOOP_SLOT;
	memcpy(dst, frame, len);
	r->len[slot] = len;
	r->ext_len[slot] = 0;
	if (ext && !WARN_ON_ONCE(!ext->len || ext->len > TB_EXT_MAX)) {
		tbrdma_loop_read_ext(r, dst + TBRDMA_FRAME_MAX, ext);
		r->ext_len[slot] = ext->len;
	}
	r->head = (slot + 1) % r->slots;
	/* Release: the slot is written before the receiver counts it. */
	atomic_fetch_inc_release(&r->used);
	tbrdma_rx_mark(end->peer->link.index);
	return 0;
}

static int tbrdma_loop_rx_peek(void *phy, struct tb_phy_rx *rx)
{
	struct tbrdma_loop_end *end = phy;
	struct tbrdma_loop_ring *r = end->rx;
	u32 slot;

	if (!READ_ONCE(end->loop->plugged))
		return -ENOTCONN;
	/* Acquire: the slot is read after the sender filled it. */
	if (!atomic_read_acquire(&r->used))
		return 0;
	slot = r->tail;
	rx->frame = r->buf + (size_t)slot * TBRDMA_LOOP_SLOT;
	rx->len = r->len[slot];
	rx->ext_len = r->ext_len[slot];
	rx->ext = rx->ext_len ? (const u8 *)rx->frame + TBRDMA_FRAME_MAX : NULL;
	return 1;
}

static void tbrdma_loop_rx_release(void *phy)
{
	struct tbrdma_loop_end *end = phy;
	struct tbrdma_loop_ring *r = end->rx;

	if (atomic_read(&r->used)) {
		r->tail = (r->tail + 1) % r->slots;
		/* Release: the engine is done with the slot. */
		atomic_fetch_dec_release(&r->used);
	}
}

static const struct tb_phy_ops tbrdma_loop_phy_ops = {
	.xmit = tbrdma_loop_xmit,
	.rx_peek = tbrdma_loop_rx_peek,
	.rx_release = tbrdma_loop_rx_release,
	.ext_max = TB_EXT_MAX,
};

static char tbrdma_loop_end_name(const struct tbrdma_loop_end *end)
{
	return end == &end->loop->end[0] ? 'A' : 'B';
}

/*
 * The engine fails the link's endpoints; and as when a real cable fails,
 * the other end loses carrier too, so it fails at once rather than after
 * the link's dead timeout.
 */
static void tbrdma_loop_state_changed(void *user, struct tb_link *link,
				      u32 state)
{
	struct tbrdma_loop_end *end = link->phy;
	struct tbrdma_loop *loop = end->loop;

	tb_engine_link_ops.state_changed(user, link, state);
	if (loop->closing)
		return;
	tbrdma_clients_changed(loop->index);
	if (state == TBRDMA_LINK_DOWN) {
		pr_info("loop%u: end %c down\n", loop->index,
			tbrdma_loop_end_name(end));
		if (READ_ONCE(loop->plugged)) {
			WRITE_ONCE(loop->plugged, false);
			tbrdma_poller_kick(&tbrdma.poller);
		}
	} else if (state == TBRDMA_LINK_UP) {
		pr_debug("loop%u: end %c up\n", loop->index,
			 tbrdma_loop_end_name(end));
	}
}

static const struct tb_link_user_ops tbrdma_loop_link_ops = {
	.deliver = tb_engine_deliver,
	.state_changed = tbrdma_loop_state_changed,
	.ext_put = tb_engine_ext_put,
	.user_ack = tb_engine_user_ack,
	.user_ack_sent = tb_engine_user_ack_sent,
	.user_ack_rx = tb_engine_user_ack_rx,
};

/*
 * Takes both ends out of the engine; their endpoints fail, but for those
 * of UD queue pairs when the cable is being plugged in again (replug),
 * which join the fresh links. Under lock.
 */
static void tbrdma_loop_detach(struct tbrdma_loop *loop, bool replug)
{
	int i;

	for (i = 0; i < 2; i++) {
		struct tbrdma_loop_end *end = &loop->end[i];

		if (!end->attached) {
			/* Those waiting for it since an attach that failed. */
			if (!replug)
				tb_engine_remove_link(tbrdma.engine, &end->link);
			continue;
		}
		if (replug)
			tb_engine_unplug_link(tbrdma.engine, &end->link);
		else
			tb_engine_remove_link(tbrdma.engine, &end->link);
		tb_link_destroy(&end->link);
		end->attached = false;
		if (!loop->closing)
			tbrdma_clients_changed(loop->index);
	}
	for (i = 0; i < 2; i++) {
		loop->ring[i].head = 0;
		loop->ring[i].tail = 0;
		atomic_set(&loop->ring[i].used, 0);
	}
}

/* Fresh links at both ends, carrier on. Under lock. */
static int tbrdma_loop_attach(struct tbrdma_loop *loop)
{
	struct tb_link_config cfg;
	int i, ret;

	tb_link_config_default(&cfg);
	cfg.rx_slots = tbrdma_loop_slots;
	cfg.tx_window = tbrdma_loop_slots;
	/* The sender's own call receives: an ack held back leaves a timer. */
	cfg.ack_delay_ns = 0;
	loop->plugged = true;
	for (i = 0; i < 2; i++) {
		struct tbrdma_loop_end *end = &loop->end[i];

		ret = tb_link_init(&end->link, &cfg, &tbrdma_loop_phy_ops, end,
				   &tbrdma_loop_link_ops, tbrdma.engine);
		if (ret)
			goto fail;
		end->link.label = loop->index;
		end->link.fabric = tbrdma_link_fabric(loop->index, true);
		ret = tb_engine_add_link(tbrdma.engine, &end->link);
		if (ret < 0) {
			tb_link_destroy(&end->link);
			goto fail;
		}
		end->attached = true;
	}
	tbrdma_poller_kick(&tbrdma.poller);		/* HELLO now, not at the next timer */
	return 0;

fail:
	loop->plugged = false;
	tbrdma_loop_detach(loop, true);
	return ret;
}

static void tbrdma_loop_free(struct tbrdma_loop *loop)
{
	int i;

	for (i = 0; i < 2; i++) {
		kvfree(loop->ring[i].buf);
		kfree(loop->ring[i].len);
		kfree(loop->ring[i].ext_len);
	}
	kfree(loop);
}

int tbrdma_loop_create(u32 index, struct tbrdma_loop **out)
{
	struct tbrdma_loop *loop;
	int i, ret;

	loop = kzalloc(sizeof(*loop), GFP_KERNEL);
	if (!loop)
		return -ENOMEM;
	loop->index = index;
	do {
		loop->identity = get_random_u64();
	} while (!loop->identity);
	for (i = 0; i < 2; i++) {
		struct tbrdma_loop_ring *r = &loop->ring[i];

		r->slots = tbrdma_loop_slots;
		r->buf = kvzalloc((size_t)r->slots * TBRDMA_LOOP_SLOT,
				  GFP_KERNEL);
		r->len = kcalloc(r->slots, sizeof(*r->len), GFP_KERNEL);
		r->ext_len = kcalloc(r->slots, sizeof(*r->ext_len), GFP_KERNEL);
		if (!r->buf || !r->len || !r->ext_len) {
			tbrdma_loop_free(loop);
			return -ENOMEM;
		}
		loop->end[i].loop = loop;
		loop->end[i].rx = &loop->ring[i];
		loop->end[i].tx = &loop->ring[!i];
		loop->end[i].peer = &loop->end[!i];
	}
	tbrdma_lock();
	ret = tbrdma_loop_attach(loop);
	tbrdma_unlock();
	if (ret) {
		tbrdma_loop_free(loop);
		return ret;
	}
	*out = loop;
	return 0;
}

void tbrdma_loop_destroy(struct tbrdma_loop *loop)
{
	int i;

	if (!loop)
		return;
	/* No sysfs reader or writer once this returns. */
	if (loop->dev_added)
		device_del(&loop->dev);
	tbrdma_lock();
	loop->closing = true;
	tbrdma_loop_detach(loop, false);
	tbrdma_unlock();
	if (!loop->dev_init) {
		tbrdma_loop_free(loop);
		return;
	}
	/* The struct goes with the last device reference. */
	for (i = 0; i < 2; i++) {
		kvfree(loop->ring[i].buf);
		kfree(loop->ring[i].len);
		kfree(loop->ring[i].ext_len);
		loop->ring[i].buf = NULL;
		loop->ring[i].len = NULL;
		loop->ring[i].ext_len = NULL;
	}
	put_device(&loop->dev);
}

struct device *tbrdma_loop_device(struct tbrdma_loop *loop)
{
	return loop->dev_added ? &loop->dev : NULL;
}

u32 tbrdma_loop_engine_index(const struct tbrdma_loop *loop)
{
	return loop->end[0].attached ? loop->end[0].link.index : U32_MAX;
}

u32 tbrdma_loop_far_index(const struct tbrdma_loop *loop)
{
	return loop->end[1].attached ? loop->end[1].link.index : U32_MAX;
}

const struct tb_link *tbrdma_loop_far_link(const struct tb_link *link)
{
	const struct tbrdma_loop_end *end = link->phy;

	return link->phy_ops == &tbrdma_loop_phy_ops ? &end->peer->link : NULL;
}

static u32 tbrdma_loop_state(const struct tbrdma_loop *loop)
{
	return loop->end[0].attached ? loop->end[0].link.state :
				       TBRDMA_LINK_DOWN;
}

void tbrdma_loop_attr(const struct tbrdma_loop *loop,
		      struct tbrdma_link_attr *attr)
{
	u32 i = tbrdma_loop_engine_index(loop);

	snprintf(attr->name, sizeof(attr->name), "loop%u", loop->index);
	attr->identity = loop->identity;
	attr->speed_mbps = TBRDMA_LOOP_SPEED_MBPS;
	attr->latency_ns = TBRDMA_LOOP_LATENCY_NS;
	attr->numa_node = ~0u;
	attr->flags = TBRDMA_LINK_F_LOCAL;
	attr->state = TBRDMA_LINK_DOWN;
	if (i == U32_MAX)
		return;
	/* The link runs meanwhile: its state under its lock. */
	tbrdma_link_lock(i);
	attr->state = tbrdma_loop_state(loop);
	attr->rtt_ns = tb_link_rtt_ns(&loop->end[0].link);
	tbrdma_link_unlock(i);
}

static const char *const tbrdma_state_names[] = {
	[TBRDMA_LINK_DOWN] = "down",
	[TBRDMA_LINK_CONNECTING] = "connecting",
	[TBRDMA_LINK_UP] = "up",
};

static const char *tbrdma_state_name(u32 state)
{
	return state < ARRAY_SIZE(tbrdma_state_names) ?
	       tbrdma_state_names[state] : "?";
}

void tbrdma_loop_show(struct seq_file *m, struct tbrdma_loop *loop)
{
	int i;

	seq_printf(m, "loop%u identity %016llx carrier %d\n", loop->index,
		   loop->identity, loop->plugged);
	for (i = 0; i < 2; i++) {
		const struct tbrdma_loop_end *end = &loop->end[i];
		const struct tb_link *l = &end->link;
		const struct tbrdma_loop_ring *r = end->rx;

		seq_printf(m, "  end %c: rx ring head %u tail %u used %u/%u dropped %llu ext_dma %llu ext_cpu %llu\n",
			   tbrdma_loop_end_name(end), r->head, r->tail,
			   atomic_read(&r->used), r->slots, r->dropped, r->ext_dma,
			   r->ext_cpu);
		if (!end->attached) {
			seq_puts(m, "    detached\n");
			continue;
		}
		seq_printf(m, "    engine link %u state %s epoch %08x peer %08x\n",
			   l->index, tbrdma_state_name(l->state), l->epoch,
			   l->peer_epoch);
		seq_printf(m, "    tx next %u una %u resend %u credit %u rto_ns %llu\n",
			   l->tx_next, l->tx_una, l->tx_resend, l->tx_credit,
			   l->rto_ns);
		seq_printf(m, "    rx next %u ack_pending %d credit_sent %u\n",
			   l->rx_next, l->ack_pending, l->credit_sent);
		seq_printf(m, "    tx_frames %llu tx_bytes %llu rx_frames %llu rx_bytes %llu tx_acks %llu\n",
			   l->stats.tx_frames, l->stats.tx_bytes,
			   l->stats.rx_frames, l->stats.rx_bytes,
			   l->stats.tx_acks);
		seq_printf(m, "    retransmits %llu timeouts %llu rx_dup %llu rx_gap %llu rx_bad %llu rx_stalls %llu\n",
			   l->stats.retransmits, l->stats.timeouts,
			   l->stats.rx_dup, l->stats.rx_gap, l->stats.rx_bad,
			   l->stats.rx_stalls);
		seq_printf(m, "    tx_ext %llu ext_detached %llu\n",
			   l->stats.tx_ext, l->stats.ext_detached);
	}
}

/* sysfs: /sys/class/tbrdma/loopN, the link userspace uses (end A). */

static struct tbrdma_loop *to_loop(struct device *dev)
{
	return container_of(dev, struct tbrdma_loop, dev);
}

static ssize_t index_show(struct device *dev, struct device_attribute *attr,
			  char *buf)
{
	return sysfs_emit(buf, "%u\n", to_loop(dev)->index);
}
static DEVICE_ATTR_RO(index);

static ssize_t identity_show(struct device *dev,
			     struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "0x%016llx\n", to_loop(dev)->identity);
}
static DEVICE_ATTR_RO(identity);

/*
 * The attributes below are every user's to read: a read holds tbrdma.lock
 * (the ends stay attached or not) and at most one end's lock, so no other
 * link waits for it.
 */
static ssize_t state_show(struct device *dev, struct device_attribute *attr,
			  char *buf)
{
	struct tbrdma_loop *loop = to_loop(dev);
	u32 state = TBRDMA_LINK_DOWN;

	mutex_lock(&tbrdma.lock);
	if (loop->end[0].attached) {
		tbrdma_link_lock(loop->end[0].link.index);
		state = tbrdma_loop_state(loop);
		tbrdma_link_unlock(loop->end[0].link.index);
	}
	mutex_unlock(&tbrdma.lock);
	return sysfs_emit(buf, "%s\n", tbrdma_state_name(state));
}
static DEVICE_ATTR_RO(state);

static ssize_t speed_mbps_show(struct device *dev,
			       struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%u\n", TBRDMA_LOOP_SPEED_MBPS);
}
static DEVICE_ATTR_RO(speed_mbps);

static ssize_t latency_ns_show(struct device *dev,
			       struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%u\n", TBRDMA_LOOP_LATENCY_NS);
}
static DEVICE_ATTR_RO(latency_ns);

static ssize_t carrier_show(struct device *dev, struct device_attribute *attr,
			    char *buf)
{
	bool on;

	/* Set under tbrdma_lock(), cleared by a failing end under its own. */
	on = READ_ONCE(to_loop(dev)->plugged);
	return sysfs_emit(buf, "%d\n", on);
}

/*
 * 0 unplugs the cable: both ends fail and every operation on them ends
 * with TBRDMA_WC_LINK_DOWN (a UD queue pair's datagrams are lost instead).
 * 1 plugs it in again with fresh links; old endpoints stay failed, but for
 * UD queue pairs', and new ones work once the link is up.
 */
static ssize_t carrier_store(struct device *dev, struct device_attribute *attr,
			     const char *buf, size_t count)
{
	struct tbrdma_loop *loop = to_loop(dev);
	bool on;
	int ret;

	ret = kstrtobool(buf, &on);
	if (ret)
		return ret;
	tbrdma_lock();
	if (!on) {
		if (loop->plugged) {
			loop->plugged = false;
			tbrdma_poller_kick(&tbrdma.poller);
		}
	} else if (!loop->plugged || !loop->end[0].attached ||
		   !loop->end[1].attached ||
		   loop->end[0].link.state == TBRDMA_LINK_DOWN ||
		   loop->end[1].link.state == TBRDMA_LINK_DOWN) {
		tbrdma_loop_detach(loop, true);
		ret = tbrdma_loop_attach(loop);
	}
	tbrdma_unlock();
	return ret ? ret : count;
}
static DEVICE_ATTR_RW(carrier);

/*
 * A counter of both rings: each is the sender's, counted under the
 * sending end's lock, and read under it.
 */
static u64 tbrdma_loop_ring_sum(struct tbrdma_loop *loop, size_t offset)
{
	u64 v = 0;
	int e;

	mutex_lock(&tbrdma.lock);
	for (e = 0; e < 2; e++) {
		struct tbrdma_loop_end *end = &loop->end[e];

		if (!end->attached) {
			v += *(u64 *)((u8 *)end->tx + offset);
			continue;
		}
		tbrdma_link_lock(end->link.index);
		v += *(u64 *)((u8 *)end->tx + offset);
		tbrdma_link_unlock(end->link.index);
	}
	mutex_unlock(&tbrdma.lock);
	return v;
}

static ssize_t cable_drops_show(struct device *dev,
				struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%llu\n",
			  tbrdma_loop_ring_sum(to_loop(dev),
					       offsetof(struct tbrdma_loop_ring,
							dropped)));
}
static DEVICE_ATTR_RO(cable_drops);

static struct attribute *tbrdma_loop_attrs[] = {
	&dev_attr_index.attr,
	&dev_attr_identity.attr,
	&dev_attr_state.attr,
	&dev_attr_speed_mbps.attr,
	&dev_attr_latency_ns.attr,
	&dev_attr_carrier.attr,
	&dev_attr_cable_drops.attr,
	NULL,
};

static const struct attribute_group tbrdma_loop_group = {
	.attrs = tbrdma_loop_attrs,
};

/* Ext buffers both ends sent, read by bus address (ext_dma) or not. */
static ssize_t tbrdma_loop_ext_show(struct device *dev, char *buf, bool dma)
{
	size_t offset = dma ? offsetof(struct tbrdma_loop_ring, ext_dma) :
			      offsetof(struct tbrdma_loop_ring, ext_cpu);

	return sysfs_emit(buf, "%llu\n",
			  tbrdma_loop_ring_sum(to_loop(dev), offset));
}

static ssize_t ext_dma_show(struct device *dev, struct device_attribute *attr,
			    char *buf)
{
	return tbrdma_loop_ext_show(dev, buf, true);
}
static DEVICE_ATTR_RO(ext_dma);

static ssize_t ext_cpu_show(struct device *dev, struct device_attribute *attr,
			    char *buf)
{
	return tbrdma_loop_ext_show(dev, buf, false);
}
static DEVICE_ATTR_RO(ext_cpu);

/*
 * statistics/: the link counters of both ends added up, as endpoints send
 * from either (they restart when replugged), then the loop's own.
 */
static struct attribute *const tbrdma_loop_own_stats[] = {
	&dev_attr_ext_dma.attr,
	&dev_attr_ext_cpu.attr,
};

static struct attribute *
tbrdma_loop_stat_attrs[TBRDMA_LINK_NSTATS + ARRAY_SIZE(tbrdma_loop_own_stats) + 1];

static const struct attribute_group tbrdma_loop_stat_group = {
	.name = "statistics",
	.attrs = tbrdma_loop_stat_attrs,
};

static const struct attribute_group *tbrdma_loop_groups[] = {
	&tbrdma_loop_group,
	&tbrdma_loop_stat_group,
	NULL,
};

/* Also the class of XDomain links (tbrdma_xd_sysfs.c). */
struct class tbrdma_class = {
	.name = "tbrdma",
};

static void tbrdma_loop_release(struct device *dev)
{
	kfree(to_loop(dev));
}

int tbrdma_loop_register(struct tbrdma_loop *loop, struct device *parent)
{
	int ret;

	device_initialize(&loop->dev);
	loop->dev_init = true;
	loop->dev.class = &tbrdma_class;
	loop->dev.parent = parent;
	loop->dev.groups = tbrdma_loop_groups;
	dev_set_drvdata(&loop->dev, &loop->end[0].link);
	loop->dev.release = tbrdma_loop_release;
	ret = dev_set_name(&loop->dev, "loop%u", loop->index);
	if (!ret)
		ret = device_add(&loop->dev);
	if (!ret)
		loop->dev_added = true;
	return ret;
}

/*
 * The loops' DMA device. A loop turns bus addresses back into pages, so
 * it is used only where they are CPU physical addresses: checked once.
 */
static void tbrdma_loop_dma_init(void)
{
	struct platform_device *pdev;
	struct page *page;
	dma_addr_t bus;
	bool direct;

	if (!tbrdma_loop_dma)
		return;
	pdev = platform_device_register_simple("tbrdma-loop-dma",
					       PLATFORM_DEVID_NONE, NULL, 0);
	if (IS_ERR(pdev))
		return;
	page = alloc_page(GFP_KERNEL);
	direct = page && !dma_set_mask_and_coherent(&pdev->dev,
						    DMA_BIT_MASK(64));
	if (direct) {
		bus = dma_map_page(&pdev->dev, page, 0, PAGE_SIZE,
				   DMA_TO_DEVICE);
		direct = !dma_mapping_error(&pdev->dev, bus);
		if (direct) {
			direct = dma_to_phys(&pdev->dev, bus) ==
				 page_to_phys(page);
			dma_unmap_page(&pdev->dev, bus, PAGE_SIZE,
				       DMA_TO_DEVICE);
		}
	}
	if (page)
		__free_page(page);
	if (direct)
		tbrdma_loop_dma_id = tbrdma_dma_add_dev(&pdev->dev);
	if (tbrdma_loop_dma_id < 0) {
		pr_info("loops read registered memory by CPU address (no direct DMA mapping)\n");
		platform_device_unregister(pdev);
		return;
	}
	tbrdma_loop_pdev = pdev;
}

int tbrdma_loop_class_register(u32 nloops)
{
	int ret;

	tbrdma_link_stat_attrs(tbrdma_loop_stat_attrs, tbrdma_loop_own_stats,
			       ARRAY_SIZE(tbrdma_loop_own_stats));
	ret = class_register(&tbrdma_class);

	if (!ret && nloops)
		tbrdma_loop_dma_init();
	return ret;
}

void tbrdma_loop_class_unregister(void)
{
	if (tbrdma_loop_pdev) {
		tbrdma_dma_put_dev(tbrdma_loop_dma_id);
		tbrdma_loop_dma_id = -1;
		platform_device_unregister(tbrdma_loop_pdev);
		tbrdma_loop_pdev = NULL;
	}
	class_unregister(&tbrdma_class);
}
