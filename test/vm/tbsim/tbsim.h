/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tbsim: a simulated Thunderbolt/USB4 core for tests (never installed).
 *
 * It exports the part of the service API of <linux/thunderbolt.h> that
 * tbrdma.ko calls, with the same prototypes, over simulated hardware: two
 * hosts, each with a host controller (NHI) that is a real PCI device of the
 * VM (QEMU's edu or pci-testdev) for DMA mapping, joined by one or two
 * cables. Both hosts live in this kernel, or (pair=0 or 1) this kernel is
 * one of them and the other is another VM, at the far end of a cable made
 * of shared memory (QEMU's ivshmem). Every cable end is an XDomain on its
 * host, and the services each host offers appear on the other end as
 * tb_service devices on the "thunderbolt" bus.
 *
 * Files: tbsim_main.c (module, PCI devices, knobs), tbsim_bus.c (bus,
 * domains, XDomains, services, property directories), tbsim_msg.c
 * (XDomain messages), tbsim_ring.c (rings, HopIDs, paths, interrupts),
 * tbsim_wire.c (the DMA engine and the cable's wire model), tbsim_shm.c
 * (the shared-memory cable to another VM).
 */
#ifndef TBSIM_H
#define TBSIM_H

#include <linux/bitfield.h>
#include <linux/hrtimer.h>
#include <linux/idr.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/spinlock.h>
#include <linux/thunderbolt.h>
#include <linux/workqueue.h>

#define TBSIM_HOSTS 2
#define TBSIM_CABLES_MAX 2
/* Rings per controller; ring 0 is the control channel's. */
#define TBSIM_HOP_COUNT 12
#define TBSIM_FIRST_RING 1
/* Input and output HopIDs of a DMA path (8 is the first, as on USB4). */
#define TBSIM_MIN_HOPID 8
#define TBSIM_MAX_HOPID 15
/* What one control packet may carry (256 bytes less its CRC). */
#define TBSIM_MSG_MAX 252
/* The control channel's packet buffer, which a response is copied from. */
#define TBSIM_MSG_BUF 256
#define TBSIM_FRAME_MAX 4096
/* Services a host offers at most (each a property directory). */
#define TBSIM_OFFERS_MAX 4

struct tbsim_knobs {
	unsigned int gbps;		/* wire rate per direction */
	unsigned int latency_ns;	/* one way */
	unsigned int moderation_ns;	/* the rings' default, as 6.1 has it */
	unsigned int loss_ppm;
	unsigned int corrupt_ppm;
	unsigned int rx_limit;		/* RX buffers the consumer keeps, 0: all */
	unsigned int wire_depth;	/* frames on the wire per direction */
};

extern struct tbsim_knobs tbsim_knobs;

/* What one direction of a cable counts. */
struct tbsim_wire_stats {
	u64 frames;		/* delivered into an RX buffer */
	u64 bytes;
	u64 lost;		/* dropped by the loss knob */
	u64 corrupted;		/* delivered with a CRC error */
	u64 no_buffer;		/* no RX descriptor posted: dropped */
	u64 bad_pdf;		/* SOF/EOF not in the RX ring's masks */
	u64 no_path;		/* no path or ring for the HopID */
	u64 dma_faults;		/* an address the IOMMU does not map */
	u64 unaligned;		/* a TX buffer not on a dword: not sent */
	u64 by_poster;		/* moved in the poster's context */
};

/* A frame on the wire. */
struct tbsim_frame {
	struct list_head list;
	u64 arrive;			/* ns */
	int hopid;
	u32 len;
	u8 sof, eof;
	bool corrupt;
	u8 data[];
};

/* A service a host offers: what the peer reads of its directory. */
struct tbsim_offer {
	char key[TB_PROPERTY_KEY_SIZE + 1];
	u32 prtcid, prtcvers, prtcrevs, prtcstns;
};

/* One direction of a cable: frames in flight, by arrival time. */
struct tbsim_wire {
	spinlock_t lock;		/* frames to free_at */
	struct list_head frames;
	u32 count;
	bool draining;			/* one delivers at a time, in order */
	bool drain_again;		/* frames came while it did */
	u64 free_at;			/* ns: when the wire is idle again */
	struct hrtimer timer;		/* the next arrival */
	struct work_struct deliver;
	struct tbsim_cable *cable;
	int from;			/* sending host */
	struct tbsim_wire_stats stats;
};

struct tbsim_cable {
	int index;
	bool plugged;			/* under tbsim.lock */
	u64 route[TBSIM_HOSTS];		/* each host's route to the other */
	struct tbsim_xd *end[TBSIM_HOSTS];	/* under tbsim.lock */
	struct tbsim_wire wire[TBSIM_HOSTS];	/* wire[h]: from host h */
};

/* A cable end: the XDomain a host sees for its peer. */
struct tbsim_xd {
	struct tb_xdomain xd;
	struct tbsim_host *host;
	struct tbsim_cable *cable;
	uuid_t remote_uuid;
	/* Paths, under host->nhi.lock: HopID -> ring and ring -> HopID. */
	int rx_ring_of[TBSIM_MAX_HOPID + 1];	/* in HopID -> RX ring, -1 */
	int out_hopid_of[TBSIM_HOP_COUNT];	/* TX ring -> out HopID, 0 */
	struct list_head services;	/* under tbsim.lock */
	int next_service_id;
};

struct tbsim_host {
	int index;
	uuid_t uuid;
	char name[16];
	struct pci_dev *pdev;
	struct tb_nhi nhi;
	struct tbsim_ring *tx[TBSIM_HOP_COUNT];	/* under nhi.lock */
	struct tbsim_ring *rx[TBSIM_HOP_COUNT];
	struct work_struct tx_work;	/* the TX DMA engine */
	struct workqueue_struct *ctl_wq;	/* control packets, in order */
	spinlock_t req_lock;
	struct list_head requests;	/* waiting for a response */
	bool registered;
	struct tb tb;			/* last: it ends in a flexible array */
};

/* A ring and what the simulated hardware keeps of it. */
struct tbsim_ring {
	struct tb_ring ring;
	struct tbsim_host *host;
	int hw;				/* next descriptor the engine handles */
	bool irq_masked;
	bool irq_pending;		/* irq_timer armed; under ring.lock */
	unsigned int moderation_ns;	/* minimum gap between interrupts */
	ktime_t last_irq;
	struct hrtimer irq_timer;
	u64 irqs;
};

struct tbsim_desc {
	u64 phys;
	u32 meta;			/* size:12 eof:4 sof:4 flags:12 */
	u32 time;
};

#define TBSIM_DESC_SIZE GENMASK(11, 0)
#define TBSIM_DESC_EOF GENMASK(15, 12)
#define TBSIM_DESC_SOF GENMASK(19, 16)
#define TBSIM_DESC_FLAGS GENMASK(31, 20)

extern struct tbsim {
	struct mutex topology;	/* plug, unplug and discovery, one at a time */
	struct mutex lock;	/* cables' ends and plug state, services */
	struct tbsim_host *host[TBSIM_HOSTS];
	struct tbsim_cable cable[TBSIM_CABLES_MAX];
	int ncables;
	/* This kernel's host when the other is another VM, else -1. */
	int pair;
	struct workqueue_struct *wq;
} tbsim;

static inline struct tbsim_xd *to_sxd(struct tb_xdomain *xd)
{
	return container_of(xd, struct tbsim_xd, xd);
}

static inline struct tbsim_ring *to_sring(struct tb_ring *ring)
{
	return container_of(ring, struct tbsim_ring, ring);
}

/* Bus, domains, XDomains, services. */
int tbsim_bus_init(void);
void tbsim_bus_exit(void);
int tbsim_host_register(struct tbsim_host *h);
void tbsim_host_unregister(struct tbsim_host *h);
int tbsim_plug(struct tbsim_cable *c);
void tbsim_unplug(struct tbsim_cable *c);
int tbsim_local_offers(struct tbsim_offer *o, int max);
void tbsim_discover_soon(void);

/* Rings. */
void tbsim_ring_complete(struct tbsim_ring *sr);
struct tbsim_xd *tbsim_tx_path(struct tbsim_host *h, int ring, int *hopid);

/* XDomain messages. */
void tbsim_ctl_arrive(struct tbsim_host *to, struct tbsim_cable *c,
		      enum tb_cfg_pkg_type type, const void *buf, size_t size);

/* DMA engine and wire. */
void tbsim_receive(struct tbsim_wire *w, struct tbsim_frame *f);
void tbsim_wire_init(struct tbsim_wire *w, struct tbsim_cable *c, int from);
void tbsim_wire_flush(struct tbsim_wire *w);
void tbsim_tx_work(struct work_struct *work);
void tbsim_kick_tx(struct tbsim_host *h);
void tbsim_tx_posted(struct tb_ring *ring);

/* The shared-memory cable (pair mode). */
extern struct pci_driver tbsim_shm_driver;
int tbsim_shm_start(struct tbsim_host *h, struct tbsim_cable *c);
void tbsim_shm_stop(void);
bool tbsim_shm_send(const struct tbsim_frame *f);
bool tbsim_shm_send_ctl(enum tb_cfg_pkg_type type, const void *buf, size_t size);
int tbsim_shm_peer_offers(struct tbsim_offer *o, int max);
void tbsim_shm_publish(void);
bool tbsim_shm_peer(uuid_t *uuid, char *name, size_t size);
void tbsim_shm_set_plugged(bool plugged);

#endif
