/* SPDX-License-Identifier: GPL-2.0 */
/*
 * XDomain links: tb links to other hosts over Thunderbolt/USB4 cables.
 * Shared by tbrdma_xdomain.c (parameters, the service driver, lookups
 * for /dev/tbrdma), tbrdma_xd_data.c (rings and the data path),
 * tbrdma_xd_ctrl.c (the control protocol over XDomain messages) and
 * tbrdma_xd_sysfs.c (/sys/class/tbrdma/tbN).
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
 * - the link has a poll context of its own (tbrdma_poll.c), a kernel
 *   thread started at login on the controller's NUMA node; the RX ring
 *   has a start_poll callback: its interrupt only wakes that poller, which
 *   then drains the ring with tb_ring_poll() in every round while it
 *   busy-polls, and re-enables the interrupt when it goes to sleep
 *   (tbrdma_xd_idle()). So 6.1's fixed interrupt moderation only
 *   costs latency on the first frame after an idle period. Whoever
 *   transmitted on an XDomain link also polls its RX ring once done
 *   (tbrdma_rx_now()), as socket busy polling does;
 * - unplug, peer unload (LOGOUT), peer reload (a new LOGIN), suspend and
 *   our own unload take the link down at once: its endpoints fail, and the
 *   next login brings a fresh link up on the same slot.
 *
 * Locks: the slot table changes under tbxd.lock (a mutex), tbrdma_lock()
 * and tbxd.slot_lock (the protocol handler's), so any of them keeps it.
 * xl->ctrl_lock guards the control protocol state and is never held
 * across a Thunderbolt call (the protocol handler runs in the control
 * channel's receive path, which must not wait for anything that needs
 * that path). The link's lock
 * (tbrdma_link_lock()) guards the link and the ring pointers the phy uses;
 * attached and rings_live change under tbrdma_lock(), which holds every
 * link's lock. The rings and paths are set up and torn down by the work
 * item only (or by remove and suspend after cancelling it).
 */
#ifndef TBRDMA_XD_H
#define TBRDMA_XD_H

#include <linux/device.h>
#include <linux/mutex.h>
#include <linux/spinlock.h>
#include <linux/thunderbolt.h>
#include <linux/uuid.h>
#include <linux/workqueue.h>

#include "tbrdma.h"
#include "tbrdma_xdomain.h"
#include "tb_ctrl.h"

/* Descriptors (and buffers) of a ring for n frames, each with an ext. */
#define TBRDMA_XD_DESC(n) (2 * (n))
#define TBRDMA_XD_SLOTS_MAX 2047

/* What QUERY_LINK reports as latency: nominal one-way, not measured. */
#define TBRDMA_XD_LATENCY_NS 8000
/* The interrupt moderation Linux 6.1 gives every ring. */
#define TBRDMA_XD_MODERATION_NS 128000
/*
 * TX interrupt moderation where rings have none by default (kernels with
 * tb_ring_throttling()): 6.1's.
 */
#define TBRDMA_XD_TX_THROTTLE_NS TBRDMA_XD_MODERATION_NS

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
	struct work_struct close_work;	/* after an unplug */
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

	/*
	 * Under the link's lock; attached, detaching and rings_live change
	 * under tbrdma_lock() only.
	 */
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

	/* The RX interrupt is enabled (the poller is not polling). */
	bool rx_armed;
	/* Runs the link while it is up, on the controller's NUMA node. */
	struct tbrdma_poller poller;
};

struct tbrdma_xd_table {
	struct mutex lock;		/* slot[] */
	/*
	 * slot[] also changes under this one, innermost, which alone keeps
	 * the protocol handler's lookups: a probe registering clients under
	 * lock (an RDMA device, say) holds up no peer's control packets.
	 */
	spinlock_t slot_lock;
	struct tbrdma_xd_link *slot[TBRDMA_XD_MAX];
	struct tb_property_dir *dir;
	bool dir_registered;
	bool handler_registered;
	bool driver_registered;
	struct workqueue_struct *wq;
	/*
	 * Protocol handler calls in flight: the core calls the handler
	 * without a lock that unregistering it waits for, so unloading
	 * waits for them here.
	 */
	atomic_t handler_calls;
	wait_queue_head_t handler_wq;
};

extern struct tbrdma_xd_table tbxd;

/* Module parameters (tbrdma_xdomain.c). */
extern bool tbrdma_xd_enable;
extern unsigned int tbrdma_xd_throttle_ns;
extern unsigned int tbrdma_xd_timeout_ms;

static inline struct tbrdma_xd_link *to_xl(struct device *dev)
{
	return container_of(dev, struct tbrdma_xd_link, dev);
}

static inline u32 tbrdma_xd_index(const struct tbrdma_xd_link *xl)
{
	return tbrdma.nloops + xl->slot;
}

/* tbrdma_xd_data.c */
struct tbrdma_xd_buf *tbrdma_xd_alloc_bufs(struct tbrdma_xd_link *xl,
					   u32 n, ring_cb cb);
void tbrdma_xd_free_bufs(struct tbrdma_xd_link *xl,
			 struct tbrdma_xd_buf *bufs, u32 n);
void tbrdma_xd_tx_done(struct tb_ring *ring, struct ring_frame *frame,
		       bool canceled);
/* xl->poller's idle: the RX interrupt back on. */
void tbrdma_xd_idle(struct tbrdma_poller *p);
int tbrdma_xd_link_up(struct tbrdma_xd_link *xl,
		      const struct tb_ctrl_action *a);
void tbrdma_xd_link_down(struct tbrdma_xd_link *xl);

/* tbrdma_xd_ctrl.c */
extern struct tb_protocol_handler tbrdma_xd_handler;
void tbrdma_xd_uuid_words(const uuid_t *uuid, u32 *w);
u64 tbrdma_xd_now(void);
void tbrdma_xd_work(struct work_struct *work);
void tbrdma_xd_close(struct tbrdma_xd_link *xl, bool logout);

/* tbrdma_xd_sysfs.c */
extern const struct attribute_group *tbrdma_xd_groups[];
/* Fills the statistics group's attributes; before any link is added. */
void tbrdma_xd_sysfs_init(void);
extern const char *const tbrdma_xd_state_names[];
u32 tbrdma_xd_state(const struct tbrdma_xd_link *xl);
u64 tbrdma_xd_speed_mbps(const struct tbrdma_xd_link *xl);
#define TBRDMA_XD_NAME_LEN 64	/* of a peer's name in a log line */
const char *tbrdma_xd_peer_name(struct tb_xdomain *xd, char *buf, size_t size);
u64 tbrdma_xd_end_id(const struct tbrdma_xd_link *xl);
u32 tbrdma_xd_numa(const struct tbrdma_xd_link *xl);

#endif /* TBRDMA_XD_H */
