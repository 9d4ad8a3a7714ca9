/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What other modules (tbrdma_ib.ko) see of tbrdma.ko: its links, by the
 * index userspace uses (loopN, then tbN), as they appear, change state and
 * go. See docs/kernel.md ("Clients").
 */
#ifndef TBRDMA_CLIENT_H
#define TBRDMA_CLIENT_H

#include <linux/device.h>
#include <linux/list.h>
#include <linux/mm.h>
#include <linux/types.h>

#include "rdma/tbrdma_abi.h"

/* vma->vm_flags is changed through helpers since 6.3 (Kbuild finds out). */
static inline void tbrdma_vm_flags_mod(struct vm_area_struct *vma,
				       vm_flags_t set, vm_flags_t clear)
{
#ifdef TBRDMA_HAVE_VM_FLAGS_MOD
	vm_flags_mod(vma, set, clear);
#else
	vma->vm_flags = (vma->vm_flags | set) & ~clear;
#endif
}

/* Link indices are below this: the loops', then the XDomain slots. */
#define TBRDMA_CLIENT_MAX_LINKS 32

struct tbrdma_client {
	/*
	 * A link's device appeared, /sys/class/tbrdma/<name> (a reference is
	 * held for the call only). May sleep; no link runs meanwhile that the
	 * client could not look up.
	 */
	void (*add)(struct tbrdma_client *c, u32 index, struct device *dev);
	/* It goes once this returns: the client lets go of it. May sleep. */
	void (*remove)(struct tbrdma_client *c, u32 index);
	/*
	 * The link's state may have changed: from any context, under locks
	 * of tbrdma.ko, so it must not sleep (look the state up later).
	 */
	void (*changed)(struct tbrdma_client *c, u32 index);
	struct list_head node;
};

/*
 * Calls add for every link that exists, then for every one that comes;
 * unregister calls remove for every link there still is. Both sleep.
 */
void tbrdma_client_register(struct tbrdma_client *c);
void tbrdma_client_unregister(struct tbrdma_client *c);
/*
 * The link's attributes (as TBRDMA_IOC_QUERY_LINK): -EINVAL once it is
 * gone. Sleeps.
 */
int tbrdma_client_query(u32 index, struct tbrdma_link_attr *attr);

/*
 * Verbs objects on the host's engine (tbrdma_kctx.c). All sleep; the
 * caller serialises what it does on one object, and destroys queue pairs
 * before the domain they use.
 *
 * A protection domain of 32-bit keys; destroying it unpins its regions.
 */
struct tb_pd;
struct tb_srq;
struct tbrdma_kctx;
struct tbrdma_user;

/* Entries a client's ring may have at most (max_ring_entries). */
u32 tbrdma_client_max_ring(void);

/*
 * The pages of a ring of len bytes (a page multiple), zeroed and charged to
 * the memory cgroup, each its own allocation (the largest ring is more than
 * contiguous pages may be), and their vmap() in *mem. NULL when out of
 * memory, with nothing left allocated. Freeing the pages leaves the vmap()
 * to the caller.
 */
struct page **tbrdma_client_ring_pages(size_t len, void **mem);
void tbrdma_client_ring_pages_free(struct page **pages, size_t len);

/*
 * Charges npages to mm's pinned_vm: -ENOMEM past RLIMIT_MEMLOCK, unless
 * the caller has CAP_IPC_LOCK. Registered regions and every client's
 * rings share it.
 */
int tbrdma_client_pin_charge(struct mm_struct *mm, unsigned long npages);
void tbrdma_client_pin_uncharge(struct mm_struct *mm, unsigned long npages);

/*
 * What each user has in the host, so that one user cannot take all of it;
 * CAP_SYS_RESOURCE lifts the limits, as it lifts rlimits. Contexts and
 * domains are charged by the calls that make them; a client charges its
 * completion and shared receive queues itself.
 */
enum tbrdma_charge {
	TBRDMA_CHARGE_CONTEXT,		/* max_user_contexts */
	TBRDMA_CHARGE_PD,		/* max_user_pds */
	TBRDMA_CHARGE_CQ,		/* max_user_cqs */
	TBRDMA_CHARGE_SRQ,		/* max_user_srqs */
	TBRDMA_CHARGES
};

u32 tbrdma_client_user_limit(enum tbrdma_charge c);
/* One more c of the caller's user: -EMFILE past its limit. */
struct tbrdma_user *tbrdma_client_charge(enum tbrdma_charge c);
void tbrdma_client_uncharge(struct tbrdma_user *u, enum tbrdma_charge c);

/* A domain, counted against the user who created it: -EMFILE past it. */
struct tbrdma_client_pd {
	struct tb_pd *pd;
	struct tbrdma_user *user;
};

int tbrdma_client_pd_create(struct tbrdma_client_pd *cpd);
void tbrdma_client_pd_destroy(struct tbrdma_client_pd *cpd);
/*
 * Pins and registers length bytes at start in the calling process, which
 * requests and local addresses name at iova; lkey == rkey == *key. access
 * as in enum tbrdma_access; the pages are pinned writable only when it
 * lets the engine write them (TBRDMA_ACCESS_LOCAL, REMOTE_WRITE or
 * REMOTE_ATOMIC).
 */
int tbrdma_client_reg_mr(struct tb_pd *pd, u64 start, u64 length, u64 iova,
			 u32 access, u64 *key);
int tbrdma_client_dereg_mr(struct tb_pd *pd, u64 key);

/*
 * A ring of the client's memory, shared with the process: its control
 * block (struct tbrdma_ring_ctrl) in the first TBRDMA_RING_DATA_OFFSET
 * bytes, then entries (a power of two, at most max_ring_entries).
 */
struct tbrdma_client_ring {
	void *mem;
	u32 entries;
};

/*
 * A shared receive queue of pd: posted receives (struct tbrdma_rwqe) in
 * rwq, for the queue pairs of pd created on it. -EBUSY to destroy while
 * they exist.
 */
int tbrdma_client_srq_create(struct tb_pd *pd,
			     const struct tbrdma_client_ring *rwq,
			     struct tb_srq **srq);
int tbrdma_client_srq_destroy(struct tb_srq *srq);
/*
 * Arms its limit (0: disarms): reached(arg) runs once, from any context
 * and under a spinlock, when a queue pair took a receive and fewer than
 * limit are left posted (tb_srq_arm()). -EINVAL past its size.
 */
int tbrdma_client_srq_arm(struct tb_srq *srq, u32 limit,
			  void (*reached)(void *arg), void *arg);
/* The limit armed, 0 for none. */
u32 tbrdma_client_srq_limit(struct tb_srq *srq);

/*
 * A queue pair: SQEs in sq, their completions in cq, posted receives
 * (struct tbrdma_rwqe) in rwq, or in srq's when it is not NULL, and their
 * completions in rcq. notify(notify_arg, recv) runs, from any context and
 * under a spinlock, after entries were published in an armed rcq (recv)
 * or cq.
 */
struct tbrdma_client_qp_attr {
	struct tb_pd *pd;
	struct tb_srq *srq;
	struct tbrdma_client_ring sq, cq, rwq, rcq;
	/*
	 * A datagram queue pair (verbs UD) of link's device: its SQEs are
	 * datagrams (TBRDMA_OP_DGRAM), and it takes those that arrive from
	 * the link's peers with its Q_Key (tbrdma_client_qp_dgram()).
	 */
	bool dgram;
	u32 link;
	void (*notify)(void *arg, int recv);
	void *notify_arg;
};

/*
 * Counted against the caller's user as /dev/tbrdma's contexts are. The
 * rings must outlive it: it writes them until destroyed.
 */
struct tbrdma_kctx *
tbrdma_client_qp_create(const struct tbrdma_client_qp_attr *attr);
void tbrdma_client_qp_destroy(struct tbrdma_kctx *kc);
/* Its number, 24 bits: the engine context id peers name. */
u32 tbrdma_client_qp_num(struct tbrdma_kctx *kc);
/*
 * Connects it over link (the index of its device's link) to the queue
 * pair remote_qpn, whose device's link is peer_link when it is in this
 * host (loops need it: a loop's peer must be on a loop too). Its SQEs go
 * to the peer, whatever endpoint they name, and it admits requests from
 * the peer alone. Once: -EISCONN after. -ENOTCONN for a link that
 * is down, -EHOSTUNREACH for a loop's peer that is not on a loop or an
 * XDomain link's that is in this host but not at the cable's other end.
 */
int tbrdma_client_qp_connect(struct tbrdma_kctx *kc, u32 link, u32 peer_link,
			     u32 remote_qpn);
/*
 * A datagram queue pair takes datagrams with qkey from now on; the first
 * call also lets it send, over link (its device's). -ENOTCONN for a link
 * that is down.
 */
int tbrdma_client_qp_dgram(struct tbrdma_kctx *kc, u32 link, u32 qkey);
/*
 * What its peer's requests may do to its regions from now on
 * (TBRDMA_ACCESS_REMOTE_* of access): none from its creation on, until
 * this says.
 */
void tbrdma_client_qp_access(struct tbrdma_kctx *kc, u32 access);
/*
 * At RTS. Receiver not ready: the first backoff (past the engine's
 * longest, 10 ms, that) and the tries (0: no count), as tb_ctx_set_rnr()
 * has them; and the READs and atomics it may have waiting for an answer
 * (0: only the link bounds them), as tb_ctx_set_rd_max().
 */
int tbrdma_client_qp_set_rts(struct tbrdma_kctx *kc, u64 delay_ns, u32 tries,
			     u32 rd_max);
/*
 * To error: everything outstanding and posted later completes with
 * FLUSH_ERR, and so do the posted receives, as far as rcq has room.
 * Returns how many ring entries of posted receives are left to flush:
 * call again once the process made room or posted more (then it only
 * flushes them, under the context's lock alone).
 */
u32 tbrdma_client_qp_error(struct tbrdma_kctx *kc);
/*
 * Back to RESET: as created, but for its rings' indices (tb_ctx_reset()).
 * Its work requests (taken or still in sq) and the receives posted to it
 * end without completions, but for one taken from a shared queue, which
 * completes flushed; those already in cq and rcq stay, for the client to
 * discard. It may be connected again.
 */
void tbrdma_client_qp_reset(struct tbrdma_kctx *kc);
/* In RTS: its doorbell posts, until it goes to error or RESET. */
void tbrdma_client_qp_ready(struct tbrdma_kctx *kc);
/*
 * Posts what sq holds (its producer index, from the process): refusals
 * complete with TBRDMA_WC_REFUSED, and a full queue leaves the rest there
 * for the next doorbell. In error it flushes first (as
 * tbrdma_client_qp_error()) and what it takes completes with FLUSH_ERR.
 * -EINVAL when neither ready nor in error.
 */
int tbrdma_client_qp_doorbell(struct tbrdma_kctx *kc);
/*
 * An anonymous file whose TBRDMA_IOC_QP_DOORBELL ioctl is
 * tbrdma_client_qp_doorbell(kc): a reference to kc, not to the client,
 * so it outlives the queue pair and the client's module (then failing
 * with EIO: tbrdma_client_qp_destroy() waits for a ring in flight).
 * Opened O_RDWR | O_CLOEXEC, for the caller to install.
 */
struct file *tbrdma_client_qp_doorbell_file(struct tbrdma_kctx *kc);

#endif /* TBRDMA_CLIENT_H */
