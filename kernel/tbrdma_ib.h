/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tbrdma_ib.ko: every link of tbrdma.ko as an RDMA device of the kernel's
 * RDMA core (ib_core, uverbs), so libibverbs applications see it. A link's
 * device has one RoCE v2 port on a netdev of its own that only carries the
 * port's addresses (GIDs). See docs/verbs.md.
 */
#ifndef TBRDMA_IB_H
#define TBRDMA_IB_H

#include <linux/mm.h>
#include <linux/mutex.h>
#include <linux/netdevice.h>
#include <linux/spinlock.h>
#include <linux/workqueue.h>
#include <rdma/ib_verbs.h>
#include <rdma/uverbs_ioctl.h>

#include "rdma/tbrdma_abi.h"
#include "tbrdma_client.h"

/*
 * The netdev's MTU: a 2048-byte RoCE payload with every header the core
 * counts (iboe_get_mtu()), so that the port's active MTU is 2048: the
 * largest whose UD datagram, its GRH in front, fits in one frame
 * (TBRDMA_SEND_MAX). RC messages are cut into frames whatever it is.
 */
#define TBRDMA_IB_NETDEV_MTU 2200

/*
 * Scatter entries per work request, each an entry of its queue (whose
 * entries, at most tbrdma.ko's max_ring_entries, bound work requests times
 * scatter entries); atomics in flight.
 */
#define TBRDMA_IB_MAX_SEND_SGE 16
#define TBRDMA_IB_MAX_RECV_SGE TBRDMA_RECV_SGE_MAX
#define TBRDMA_IB_MAX_RD_ATOMIC 16

struct tb_pd;
struct tb_srq;
struct tbrdma_kctx;

/* One link's RDMA device, its netdev and the state they report. */
struct tbrdma_ibdev {
	struct ib_device ibdev;
	struct net_device *ndev;
	u32 link;			/* tbrdma.ko's userspace link index */
	struct work_struct state_work;	/* follows the link's state */
	/*
	 * Port events go only to a registered device (the netdev closes
	 * after it is gone), and only when the port's state changed.
	 */
	spinlock_t port_lock;
	bool registered;
	enum ib_port_state port_state;	/* the last event's */
};

static inline struct tbrdma_ibdev *to_tbdev(struct ib_device *ibdev)
{
	return container_of(ibdev, struct tbrdma_ibdev, ibdev);
}

/* A process's use of the device. */
struct tbrdma_ib_ucontext {
	struct ib_ucontext ibuc;
	struct mutex sweep_lock;	/* one tbrdma_ib_ring_sweep() */
	spinlock_t gone_lock;		/* guards gone */
	struct list_head gone;		/* rings whose queue went */
};

static inline struct tbrdma_ib_ucontext *to_tbuc(struct ib_ucontext *ibuc)
{
	return container_of(ibuc, struct tbrdma_ib_ucontext, ibuc);
}

/* A protection domain: one of the engine's, with 32-bit keys. */
struct tbrdma_ib_pd {
	struct ib_pd ibpd;
	struct tbrdma_client_pd cpd;
};

static inline struct tbrdma_ib_pd *to_tbpd(struct ib_pd *ibpd)
{
	return container_of(ibpd, struct tbrdma_ib_pd, ibpd);
}

/* The rings of a queue pair, in the order of the response's fields. */
enum { TBRDMA_IB_SQ, TBRDMA_IB_CQ, TBRDMA_IB_RWQ, TBRDMA_IB_RCQ,
	TBRDMA_IB_RINGS };

/* A ring's pages, mapped into the process through its mmap entry. */
struct tbrdma_ib_ring {
	struct rdma_user_mmap_entry entry;
	struct tbrdma_ib_ucontext *uc;
	struct list_head gone;		/* in uc->gone once its queue went */
	struct mm_struct *mm;		/* charged for the pages */
	struct page **pages;		/* len / PAGE_SIZE of them */
	void *mem;			/* the pages, mapped for the kernel */
	size_t len;
	u32 entries;
};

/* A shared receive queue: the engine's, its ring mapped. */
struct tbrdma_ib_srq {
	struct ib_srq ibsrq;
	struct tb_srq *srq;
	struct tbrdma_ib_ring *ring;
	struct tbrdma_user *user;	/* charged for it (max_user_srqs) */
	u32 max_sge;		/* entries per receive, at most */
};

static inline struct tbrdma_ib_srq *to_tbsrq(struct ib_srq *ibsrq)
{
	return container_of(ibsrq, struct tbrdma_ib_srq, ibsrq);
}

struct tbrdma_ib_qp {
	struct ib_qp ibqp;
	/*
	 * Serialises modify_qp and query_qp. Neither doorbell takes it: they
	 * rely on the context's kc->lock, which comes after it.
	 */
	struct mutex lock;
	enum ib_qp_state state;
	struct tbrdma_kctx *kc;
	struct tbrdma_ib_ring *ring[TBRDMA_IB_RINGS];
	/* What query_qp reports of what modify_qp set. */
	struct ib_qp_attr attr;
	u64 rnr_delay_ns;		/* from min_rnr_timer, at RTR */
};

/* The engine's TBRDMA_ACCESS_REMOTE_* bits of IB access flags. */
static inline u32 tbrdma_ib_remote_access(int ib)
{
	return (ib & IB_ACCESS_REMOTE_WRITE ? TBRDMA_ACCESS_REMOTE_WRITE : 0) |
	       (ib & IB_ACCESS_REMOTE_READ ? TBRDMA_ACCESS_REMOTE_READ : 0) |
	       (ib & IB_ACCESS_REMOTE_ATOMIC ? TBRDMA_ACCESS_REMOTE_ATOMIC : 0);
}

/* tbrdma_ib_main.c */
/*
 * The link of the device in this host that has gid in its table (any
 * context but hard interrupts), U32_MAX for none.
 */
u32 tbrdma_ib_gid_link(const union ib_gid *gid);

/* tbrdma_ib_netdev.c */
/* The netdev of link name with address mac, registered, carrier off. */
struct net_device *tbrdma_ib_netdev_create(struct tbrdma_ibdev *d,
					   const char *name, const u8 *mac);
void tbrdma_ib_netdev_destroy(struct net_device *ndev);
/* Up (IFF_UP), as a port that works at once; sleeps (RTNL). */
int tbrdma_ib_netdev_open(struct net_device *ndev);

/* tbrdma_ib_mmap.c: rings mapped into the process. */
int tbrdma_ib_mmap(struct ib_ucontext *ibuc, struct vm_area_struct *vma);
void tbrdma_ib_mmap_free(struct rdma_user_mmap_entry *entry);
/* A ring of n entries, zeroed, its mmap entry in ibuc; ERR_PTR on failure. */
struct tbrdma_ib_ring *tbrdma_ib_ring_new(struct ib_ucontext *ibuc, u32 n,
					  u32 entry_size);
/* Its pages go with the first sweep after the last mapping; NULL: nothing. */
void tbrdma_ib_ring_remove(struct tbrdma_ib_ring *r);
/* Uncharges rings that went and are unmapped; all: every one that went. */
void tbrdma_ib_ring_sweep(struct tbrdma_ib_ucontext *uc, bool all);

/* tbrdma_ib_srq.c: shared receive queues. */
int tbrdma_ib_create_srq(struct ib_srq *ibsrq, struct ib_srq_init_attr *init,
			 struct ib_udata *udata);
int tbrdma_ib_destroy_srq(struct ib_srq *ibsrq, struct ib_udata *udata);
int tbrdma_ib_modify_srq(struct ib_srq *ibsrq, struct ib_srq_attr *attr,
			 enum ib_srq_attr_mask mask, struct ib_udata *udata);
int tbrdma_ib_query_srq(struct ib_srq *ibsrq, struct ib_srq_attr *attr);

/* tbrdma_ib_qp.c: queue pairs. */
int tbrdma_ib_create_qp(struct ib_qp *ibqp, struct ib_qp_init_attr *init,
			struct ib_udata *udata);
int tbrdma_ib_destroy_qp(struct ib_qp *ibqp, struct ib_udata *udata);
int tbrdma_ib_modify_qp(struct ib_qp *ibqp, struct ib_qp_attr *attr,
			int mask, struct ib_udata *udata);
int tbrdma_ib_query_qp(struct ib_qp *ibqp, struct ib_qp_attr *attr, int mask,
		       struct ib_qp_init_attr *init);
/* The uverbs methods of the driver: the doorbell. */
extern const struct uapi_definition tbrdma_ib_uapi_defs[];

/* tbrdma_ib_verbs.c */
extern const struct ib_device_ops tbrdma_ib_ops;
/*
 * A completion in one of the CQ's rings found it armed: the event, if the
 * process asked for one with req_notify_cq since the last.
 */
void tbrdma_ib_cq_event(struct ib_cq *ibcq);
/* The port's state from the netdev: up and with carrier. */
enum ib_port_state tbrdma_ib_port_state(struct tbrdma_ibdev *d);
/*
 * The port's state may have changed: a port event if it did, where the
 * RDMA core does not send them itself from the netdev's state (newer
 * cores do: TBRDMA_IB_CORE_PORT_EVENTS).
 */
void tbrdma_ib_port_changed(struct tbrdma_ibdev *d);

#endif /* TBRDMA_IB_H */
