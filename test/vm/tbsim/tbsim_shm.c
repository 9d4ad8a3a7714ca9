// SPDX-License-Identifier: GPL-2.0
/*
 * The shared-memory cable between two VMs (pair=0 or pair=1): each VM's
 * tbsim is one host, and both map one host file as BAR 2 of QEMU's
 * ivshmem-plain device. The memory holds a slot per side (written by that
 * side only: liveness, its end plugged or not, its UUID and name, the
 * services it offers) and a queue per direction of frames and XDomain
 * packets (one producer, one consumer, no interrupts: a thread polls).
 *
 * The cable is up while both sides are loaded, both ends plugged and the
 * peer's heartbeat moves. A peer that reloads or reboots comes back with
 * another boot number: its old XDomain goes and a new one comes, as after a
 * replug. Whoever links up drops what its peer queued before, so nothing
 * of an old link reaches a new one. The peer is another kernel and is not
 * trusted any more than a cable is: every length and HopID is checked.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/delay.h>
#include <linux/io.h>
#include <linux/kthread.h>
#include <linux/random.h>
#include <linux/slab.h>

#include "tbsim.h"

#define TBSIM_SHM_MAGIC 0x7462736d	/* "tbsm" */
#define TBSIM_SHM_QLEN 128
/*
 * A peer whose heartbeat stops this long is gone (its VM died); long
 * enough for a VM the host starves for a while under emulation.
 */
#define TBSIM_SHM_DEAD_MS 3000
/* The poller: every 10-20 us while packets come, every 0.5-1 ms after. */
#define TBSIM_SHM_BUSY_US 20
#define TBSIM_SHM_IDLE_US 1000
#define TBSIM_SHM_QUIET_MS 10
#define TBSIM_SHM_BATCH 32

enum tbsim_shm_kind {
	TBSIM_SHM_FRAME = 1,
	TBSIM_SHM_CTL,
};

struct tbsim_shm_msg {
	u32 kind;
	u32 len;
	u32 ctl_type;
	u16 hopid;
	u8 sof, eof;
	u8 corrupt;
	u8 pad[7];
	u8 data[TBSIM_FRAME_MAX];
};

struct tbsim_shm_slot {
	u32 magic;
	u32 boot;		/* random, odd, while loaded; 0 once unloaded */
	u32 heartbeat;
	u32 plugged;		/* this side's end of the cable is in */
	u32 offers_seq;		/* odd while the offers change */
	u32 noffers;
	u8 uuid[16];
	char name[16];
	struct tbsim_offer offers[TBSIM_OFFERS_MAX];
};

struct tbsim_shm_queue {
	u32 head;		/* the producer's */
	u8 pad0[60];
	u32 tail;		/* the consumer's */
	u8 pad1[60];
	struct tbsim_shm_msg msg[TBSIM_SHM_QLEN];
};

struct tbsim_shm_layout {
	struct tbsim_shm_slot slot[TBSIM_HOSTS];
	struct tbsim_shm_queue queue[TBSIM_HOSTS];	/* [s]: from side s */
};

static struct {
	struct tbsim_shm_layout *mem;
	struct tbsim_host *host;
	struct tbsim_cable *cable;
	struct task_struct *poller;
	struct work_struct link_work;
	spinlock_t tx_lock;		/* our queue's producer end */
	bool plugged;			/* our end (the debugfs knob) */
	u32 linked_boot;		/* the peer boot linked to, 0: none */
	bool resync;			/* the poller drops what is queued */
	/* The poller's own. */
	u32 peer_heartbeat;
	unsigned long peer_seen;	/* jiffies of its last heartbeat */
	u32 peer_offers_seq;
	struct tbsim_frame *rx;
} shm;

static struct tbsim_shm_slot *tbsim_shm_mine(void)
{
	return &shm.mem->slot[tbsim.pair];
}

static struct tbsim_shm_slot *tbsim_shm_theirs(void)
{
	return &shm.mem->slot[!tbsim.pair];
}

static bool tbsim_shm_put(u32 kind, u32 ctl_type, const struct tbsim_frame *f,
			  const void *data, u32 len)
{
	struct tbsim_shm_queue *q = &shm.mem->queue[tbsim.pair];
	struct tbsim_shm_msg *m;
	unsigned long flags;
	bool ok = false;
	u32 head;

	spin_lock_irqsave(&shm.tx_lock, flags);
	head = READ_ONCE(q->head);
	/* The consumer's reads of a slot before we reuse it. */
	if (head - smp_load_acquire(&q->tail) < TBSIM_SHM_QLEN) {
		m = &q->msg[head % TBSIM_SHM_QLEN];
		m->kind = kind;
		m->ctl_type = ctl_type;
		m->len = len;
		m->hopid = f ? f->hopid : 0;
		m->sof = f ? f->sof : 0;
		m->eof = f ? f->eof : 0;
		m->corrupt = f ? f->corrupt : 0;
		memcpy(m->data, data, len);
		/* The message before the consumer sees it. */
		smp_store_release(&q->head, head + 1);
		ok = true;
	}
	spin_unlock_irqrestore(&shm.tx_lock, flags);
	return ok;
}

/* False when the queue is full: the wire keeps the frame and tries again. */
bool tbsim_shm_send(const struct tbsim_frame *f)
{
	return tbsim_shm_put(TBSIM_SHM_FRAME, 0, f, f->data, f->len);
}

bool tbsim_shm_send_ctl(enum tb_cfg_pkg_type type, const void *buf,
			size_t size)
{
	return tbsim_shm_put(TBSIM_SHM_CTL, type, NULL, buf, size);
}

/* The peer's UUID and name, for its XDomain; false if it is gone. */
bool tbsim_shm_peer(uuid_t *uuid, char *name, size_t size)
{
	struct tbsim_shm_slot *s = tbsim_shm_theirs();

	if (!READ_ONCE(s->boot))
		return false;
	import_uuid(uuid, s->uuid);
	memcpy(name, s->name, min(size, sizeof(s->name)));
	name[size - 1] = 0;
	return true;
}

/* What the peer offers, a consistent copy. Under tbsim.lock. */
int tbsim_shm_peer_offers(struct tbsim_offer *o, int max)
{
	struct tbsim_shm_slot *s = tbsim_shm_theirs();
	int tries, i, n;

	for (tries = 0; tries < 1000; tries++) {
		/* seq before the offers (and after, below) */
		u32 seq = smp_load_acquire(&s->offers_seq);

		if (seq & 1) {
			cpu_relax();
			continue;
		}
		n = min3(READ_ONCE(s->noffers), (u32)max, (u32)TBSIM_OFFERS_MAX);
		memcpy(o, s->offers, n * sizeof(*o));
		smp_rmb();	/* the copy before the second look at seq */
		if (READ_ONCE(s->offers_seq) != seq)
			continue;
		for (i = 0; i < n; i++)
			o[i].key[sizeof(o[i].key) - 1] = 0;
		return n;
	}
	return 0;
}

/* Our offers into our slot, after a directory came or went. */
void tbsim_shm_publish(void)
{
	struct tbsim_shm_slot *s = tbsim_shm_mine();
	struct tbsim_offer o[TBSIM_OFFERS_MAX];
	int n;

	mutex_lock(&tbsim.lock);
	n = tbsim_local_offers(o, ARRAY_SIZE(o));
	WRITE_ONCE(s->offers_seq, s->offers_seq + 1);
	smp_wmb();	/* odd before the offers change */
	memcpy(s->offers, o, n * sizeof(*o));
	WRITE_ONCE(s->noffers, n);
	/* The offers before the even seq that says they are whole. */
	smp_store_release(&s->offers_seq, s->offers_seq + 1);
	mutex_unlock(&tbsim.lock);
}

/* The peer boot the cable should be linked to, 0: none. */
static u32 tbsim_shm_wanted(void)
{
	struct tbsim_shm_slot *s = tbsim_shm_theirs();
	u32 boot = READ_ONCE(s->boot);

	if (!READ_ONCE(shm.plugged) || READ_ONCE(s->magic) != TBSIM_SHM_MAGIC ||
	    !boot || !READ_ONCE(s->plugged) ||
	    time_after(jiffies, READ_ONCE(shm.peer_seen) +
		       msecs_to_jiffies(TBSIM_SHM_DEAD_MS)))
		return 0;
	return boot;
}

/* Unplugs from a peer that went, plugs into one that came. */
static void tbsim_shm_link(struct work_struct *work)
{
	u32 want = tbsim_shm_wanted();

	if (shm.linked_boot && shm.linked_boot != want) {
		pr_info("host %d: %s\n", !tbsim.pair,
			!READ_ONCE(shm.plugged) ? "cable unplugged here" :
			!READ_ONCE(tbsim_shm_theirs()->plugged) ?
			"cable unplugged there" :
			READ_ONCE(tbsim_shm_theirs()->boot) == shm.linked_boot ?
			"silent (its VM stopped)" : "gone or restarted");
		WRITE_ONCE(shm.linked_boot, 0);
		tbsim_unplug(shm.cable);
	}
	if (want && !shm.linked_boot) {
		/*
		 * Nothing the peer queued before now belongs to this link:
		 * the poller, the tail's only writer, drops it.
		 */
		WRITE_ONCE(shm.resync, true);
		WRITE_ONCE(shm.linked_boot, want);
		if (tbsim_plug(shm.cable))
			WRITE_ONCE(shm.linked_boot, 0);	/* the poller retries */
	}
}

void tbsim_shm_set_plugged(bool plugged)
{
	WRITE_ONCE(shm.plugged, plugged);
	WRITE_ONCE(tbsim_shm_mine()->plugged, plugged);
	queue_work(tbsim.wq, &shm.link_work);
	flush_work(&shm.link_work);
}

/* One packet from the peer, to our host. */
static void tbsim_shm_take(const struct tbsim_shm_msg *m)
{
	struct tbsim_frame *f = shm.rx;
	u32 len = READ_ONCE(m->len);

	if (len > TBSIM_FRAME_MAX)
		return;
	switch (READ_ONCE(m->kind)) {
	case TBSIM_SHM_FRAME:
		f->hopid = READ_ONCE(m->hopid);
		/* PDF codes are 4 bits on the wire. */
		f->sof = READ_ONCE(m->sof) & 0xf;
		f->eof = READ_ONCE(m->eof) & 0xf;
		f->corrupt = READ_ONCE(m->corrupt);
		f->len = len;
		if (!len || f->hopid > TBSIM_MAX_HOPID)
			return;
		memcpy(f->data, m->data, len);
		tbsim_receive(&shm.cable->wire[!tbsim.pair], f);
		break;
	case TBSIM_SHM_CTL:
		/* (tbsim_ctl_arrive checks size and type) */
		memcpy(f->data, m->data, min_t(u32, len, TBSIM_MSG_BUF));
		mutex_lock(&tbsim.lock);
		tbsim_ctl_arrive(shm.host, shm.cable, READ_ONCE(m->ctl_type),
				 f->data, len);
		mutex_unlock(&tbsim.lock);
		break;
	}
}

/* Up to a batch from the peer's queue; false if it was empty. */
static bool tbsim_shm_rx(void)
{
	struct tbsim_shm_queue *q = &shm.mem->queue[!tbsim.pair];
	/* The peer's messages up to head are written once we see it. */
	u32 tail = READ_ONCE(q->tail), head = smp_load_acquire(&q->head);
	int n;

	if (READ_ONCE(shm.resync)) {
		WRITE_ONCE(shm.resync, false);
		/* All the slots up to head are free again. */
		smp_store_release(&q->tail, head);
		return false;
	}
	if (head == tail)
		return false;
	if (head - tail > TBSIM_SHM_QLEN) {
		/* Nonsense from the peer: skip it all. */
		smp_store_release(&q->tail, head);
		return true;
	}
	for (n = 0; n < TBSIM_SHM_BATCH && tail != head; n++, tail++) {
		/* Unlinked: the peer's packets have no XDomain to go to. */
		if (READ_ONCE(shm.linked_boot))
			tbsim_shm_take(&q->msg[tail % TBSIM_SHM_QLEN]);
		/* Done with the slot before the producer may reuse it. */
		smp_store_release(&q->tail, tail + 1);
	}
	return true;
}

/* Our heartbeat; the peer's liveness and offers. */
static void tbsim_shm_watch(void)
{
	struct tbsim_shm_slot *mine = tbsim_shm_mine(), *s = tbsim_shm_theirs();
	u32 hb = READ_ONCE(s->heartbeat), seq = READ_ONCE(s->offers_seq);

	WRITE_ONCE(mine->heartbeat, mine->heartbeat + 1);
	if (hb != shm.peer_heartbeat) {
		shm.peer_heartbeat = hb;
		WRITE_ONCE(shm.peer_seen, jiffies);
	}
	if (tbsim_shm_wanted() != READ_ONCE(shm.linked_boot))
		queue_work(tbsim.wq, &shm.link_work);
	if (seq != shm.peer_offers_seq) {
		shm.peer_offers_seq = seq;
		tbsim_discover_soon();
	}
}

static int tbsim_shm_poll(void *arg)
{
	unsigned long busy_until = jiffies;

	while (!kthread_should_stop()) {
		if (tbsim_shm_rx())
			busy_until = jiffies +
				     msecs_to_jiffies(TBSIM_SHM_QUIET_MS);
		tbsim_shm_watch();
		if (time_before(jiffies, busy_until))
			usleep_range(TBSIM_SHM_BUSY_US / 2, TBSIM_SHM_BUSY_US);
		else
			usleep_range(TBSIM_SHM_IDLE_US / 2, TBSIM_SHM_IDLE_US);
	}
	return 0;
}

/* Our host, at our end of cable c, is in: the peer may link up. */
int tbsim_shm_start(struct tbsim_host *h, struct tbsim_cable *c)
{
	struct tbsim_shm_slot *s;

	if (!shm.mem) {
		pr_err("pair=%d needs the shared-memory cable: QEMU -device ivshmem-plain\n",
		       tbsim.pair);
		return -ENODEV;
	}
	shm.rx = kmalloc(struct_size(shm.rx, data, TBSIM_FRAME_MAX),
			 GFP_KERNEL);
	if (!shm.rx)
		return -ENOMEM;
	shm.host = h;
	shm.cable = c;
	spin_lock_init(&shm.tx_lock);
	INIT_WORK(&shm.link_work, tbsim_shm_link);
	shm.peer_seen = jiffies;
	shm.plugged = true;
	s = tbsim_shm_mine();
	memset(s, 0, sizeof(*s));
	export_uuid(s->uuid, &h->uuid);
	strscpy(s->name, h->name, sizeof(s->name));
	s->plugged = 1;
	s->magic = TBSIM_SHM_MAGIC;
	tbsim_shm_publish();
	/* The slot whole before the peer sees us loaded. */
	smp_store_release(&s->boot, get_random_u32() | 1);
	shm.poller = kthread_run(tbsim_shm_poll, NULL, "tbsim_shm");
	if (IS_ERR(shm.poller)) {
		int ret = PTR_ERR(shm.poller);

		shm.poller = NULL;
		WRITE_ONCE(s->boot, 0);
		kfree(shm.rx);
		return ret;
	}
	return 0;
}

/* Gone, for the peer: then the cable cannot come back up. */
void tbsim_shm_stop(void)
{
	if (!shm.poller)
		return;
	WRITE_ONCE(tbsim_shm_mine()->boot, 0);
	WRITE_ONCE(tbsim_shm_mine()->plugged, 0);
	kthread_stop(shm.poller);
	shm.poller = NULL;
	cancel_work_sync(&shm.link_work);
	kfree(shm.rx);
}

/* The ivshmem device: BAR 2 is the shared memory. */

static int tbsim_shm_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	resource_size_t len = pci_resource_len(pdev, 2);
	int ret;

	if (shm.mem)
		return -ENODEV;		/* one cable */
	if (len < sizeof(*shm.mem)) {
		dev_err(&pdev->dev, "shared memory of %pa bytes: needs %zu\n",
			&len, sizeof(*shm.mem));
		return -ENOSPC;
	}
	ret = pcim_enable_device(pdev);
	if (ret)
		return ret;
	shm.mem = devm_memremap(&pdev->dev, pci_resource_start(pdev, 2),
				sizeof(*shm.mem), MEMREMAP_WB);
	if (IS_ERR(shm.mem)) {
		ret = PTR_ERR(shm.mem);
		shm.mem = NULL;
		return ret;
	}
	dev_info(&pdev->dev, "shared-memory cable, this VM is host %d\n",
		 tbsim.pair);
	return 0;
}

static void tbsim_shm_remove(struct pci_dev *pdev)
{
	shm.mem = NULL;
}

static const struct pci_device_id tbsim_shm_ids[] = {
	{ PCI_DEVICE(0x1af4, 0x1110) },		/* QEMU ivshmem */
	{ }
};

struct pci_driver tbsim_shm_driver = {
	.name = "tbsim_shm",
	.id_table = tbsim_shm_ids,
	.probe = tbsim_shm_probe,
	.remove = tbsim_shm_remove,
};
