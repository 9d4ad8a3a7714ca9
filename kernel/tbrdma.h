/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tbrdma.ko internals: one engine per host, shared by every open file of
 * /dev/tbrdma, its links run under a lock each. See docs/kernel.md.
 */
#ifndef TBRDMA_H
#define TBRDMA_H

#include <linux/atomic.h>
#include <linux/device.h>
#include <linux/dma-mapping.h>
#include <linux/list.h>
#include <linux/miscdevice.h>
#include <linux/moduleparam.h>
#include <linux/mutex.h>
#include <linux/refcount.h>
#include <linux/rwsem.h>
#include <linux/sched.h>
#include <linux/wait.h>
#include <linux/workqueue.h>

#include "tb_engine.h"
#include "tbrdma_client.h"

#define TBRDMA_MAX_LOOPS 16

struct seq_file;
struct tbrdma_loop;

/* Module parameters (tbrdma_main.c), fixed after load unless noted. */
extern unsigned int tbrdma_loop_slots;
extern unsigned int tbrdma_max_mr;		/* per open file, power of two */
extern unsigned int tbrdma_max_ep;		/* per context, power of two */
extern unsigned int tbrdma_max_ring;		/* ring entries, power of two */
extern unsigned int tbrdma_max_user_contexts;	/* contexts per user */
extern unsigned int tbrdma_max_user_pds;	/* domains per user */
extern unsigned int tbrdma_max_user_cqs;	/* verbs CQs per user */
extern unsigned int tbrdma_max_user_srqs;	/* verbs SRQs per user */
extern unsigned long tbrdma_mr_max_bytes;	/* largest single region */

/*
 * A poll context (tbrdma_poll.c): a kernel thread that runs its links'
 * receive processing, timers and interrupt re-arming, busy-polling while
 * they are active and sleeping when they are idle until a frame, a kick
 * or a deadline wakes it. While it busy-polls it also takes the SQEs of
 * polled SQs.
 */
struct tbrdma_poller {
	struct task_struct *task;	/* NULL: not running */
	wait_queue_head_t wq;
	atomic_t kicked;		/* work arrived since its last round */
	atomic_t rearm;			/* an earlier deadline: not work */
	u64 timer_at;			/* the deadline it sleeps until */
	atomic64_t deadline_noted;	/* the earliest set since, -1: none */
	bool sq_polling;		/* counted in tbrdma.sq_pollers */
	/*
	 * Before it sleeps, under the lock of each link it runs: turns
	 * that link's interrupts back on (NULL: none to turn on).
	 */
	void (*idle)(struct tbrdma_poller *p);
	/* Counters, written by its thread only. */
	u64 rounds;
	u64 busy_rounds;		/* rounds that handled frames or kicks */
	u64 sleeps;
};

/* Who marked a link to receive, and when (tbrdma_rx_mark()). */
struct tbrdma_rx_marker {
	struct task_struct *task;	/* NULL: a mark anyone runs */
	u64 at;				/* ktime_get_ns(), with a task */
};

/* The host's one engine and everything that runs it. */
struct tbrdma_dev {
	/*
	 * The configuration: which links and contexts exist (the loops, the
	 * XDomain slots). Mutexes, as the engine allocates (GFP_KERNEL) when
	 * contexts, endpoints and links are created; it only ever runs in
	 * process context (poll threads, ioctl, sysfs).
	 */
	struct mutex lock;
	/*
	 * One per engine link index: held while the link runs (its engine
	 * state, endpoints and phy). What takes something away from links
	 * that may be using it holds lock and all of them (tbrdma_lock()),
	 * but for a region: deregistering takes them one at a time.
	 */
	struct mutex *link_lock;
	u32 nlinks;			/* the engine's max_links */
	unsigned long *rx_pending;	/* links with frames to receive now */
	/*
	 * Per link index, who set its rx_pending bit last and when: that
	 * task runs it in its next passes (tbrdma_rx_skip()).
	 */
	struct tbrdma_rx_marker *rx_marker;
	/*
	 * How long a loop end's mark is its marker's alone: half the loop
	 * cables' shortest resend timeout, so that a marker switched out
	 * after its transmission (preempted, or asleep on a lock) leaves its
	 * frames to the next pass of any process before the sender resends.
	 */
	u64 rx_mark_hold_ns;
	unsigned long *xd_links;	/* XDomain links, under tbrdma_lock() */
	/*
	 * Per link index, the poll context that runs it, NULL: poller.
	 * Changed under tbrdma_lock(), so a link's lock keeps its entry.
	 */
	struct tbrdma_poller **link_poller;
	struct tb_engine *engine;
	struct tbrdma_loop *loops[TBRDMA_MAX_LOOPS];
	u32 nloops;			/* userspace links 0..nloops-1 */

	/*
	 * Submission rings (tbrdma_sq.c), under sq_lock: taken after
	 * lock and a context's lock, never while a link's lock is held.
	 */
	struct mutex sq_lock;
	struct list_head sqs;		/* every context's SQ */
	u32 sq_pollers;			/* pollers taking SQEs of sq_poll SQs */
	u64 sq_polled;			/* SQEs they took without a doorbell */

	struct miscdevice misc;
	struct dentry *debugfs;

	/* Runs the loop cables and every link without a poller of its own. */
	struct tbrdma_poller poller;
};

extern struct tbrdma_dev tbrdma;

/*
 * The set of a runtime-writable parameter: a uint checked against its range
 * on every write (at load and through sysfs), with a log line when refused.
 */
int tbrdma_param_set_range(const char *val, const struct kernel_param *kp,
			   unsigned int min, unsigned int max);

/* Poll contexts and link locks (tbrdma_poll.c). */
extern unsigned int tbrdma_poll_us;

/*
 * tbrdma.lock and every link's lock, so no link runs: for adding and
 * removing links, destroying contexts and domains (the engine's rule),
 * and whatever reads links whole (debugfs).
 * The unlock runs what the holder's transmissions started
 * (tbrdma_rx_now()).
 */
void tbrdma_lock(void);
void tbrdma_unlock(void);
/*
 * Runs link i (an engine link index). The unlock wakes the link's poller
 * if the link now has a deadline (a retransmission, an ack owed) before
 * the one the poller sleeps until: a frame lost on a cable raises no
 * interrupt that would wake it otherwise.
 */
void tbrdma_link_lock(u32 i);
void tbrdma_link_unlock(u32 i);
/* A frame for link i waits in its receive ring (from any context). */
void tbrdma_rx_mark(u32 i);
/*
 * A frame went out on an XDomain link: every XDomain RX ring may hold an
 * answer (the peer's too, when both hosts are in this kernel).
 */
void tbrdma_rx_mark_xd(void);
/*
 * With no link lock held: receives what the caller's transmissions put
 * in receive rings (loop cables, and XDomain answers already there), pass
 * after pass, as a core polling those rings would.
 */
void tbrdma_rx_now(void);
/* Once, before anything may kick p; idle as in struct tbrdma_poller. */
void tbrdma_poller_init(struct tbrdma_poller *p,
			void (*idle)(struct tbrdma_poller *p));
/*
 * Starts p's thread on a CPU of NUMA node (NUMA_NO_NODE: anywhere), with
 * no link yet; stop waits for it to finish and is a no-op when it is not
 * running, and p may be started again. Both sleep.
 */
int tbrdma_poller_start(struct tbrdma_poller *p, const char *name, int node);
void tbrdma_poller_stop(struct tbrdma_poller *p);
/* Under tbrdma_lock(): link i is run by p (NULL: tbrdma.poller). */
void tbrdma_poller_assign(u32 i, struct tbrdma_poller *p);
/* Wakes p: a ring interrupt, a carrier change, work for its links. */
void tbrdma_poller_kick(struct tbrdma_poller *p);
/*
 * Under link i's lock, by a poller (NULL: a process, nothing to do) about
 * to transmit on it: kicks the poller running i if that is another, which
 * polls for the answer then.
 */
void tbrdma_link_kick_other(u32 i, struct tbrdma_poller *by);
/* debugfs: its thread and counters. */
void tbrdma_poller_show(struct seq_file *m, const struct tbrdma_poller *p);

struct tbrdma_ring_mem;

/* A ring mapped into the process: control block page, then entries. */
struct tbrdma_kring {
	void *mem;			/* the kernel's view, NULL until created */
	struct tbrdma_ring_mem *rm;	/* its pages (tbrdma_ring.c) */
	size_t len;			/* bytes mapped, page multiple */
	u32 entries;
	u32 entry_size;
};

/* Charged to the process; n is a power of two of at most max_ring. */
int tbrdma_kring_alloc(struct tbrdma_kring *r, u32 n, u32 entry_size);
void tbrdma_kring_free(struct tbrdma_kring *r);
/* mmap() of the ring: never executable, holds the pages while mapped. */
int tbrdma_kring_mmap(const struct tbrdma_kring *r, struct vm_area_struct *vma);

/* Contexts per open file (TBRDMA_IOC_CREATE_QUEUES). */
#define TBRDMA_FILE_CTX_MAX 16

struct tbrdma_file;
struct tbrdma_user;
struct tb_pd;

/*
 * A context: of an open file, an address on every link, with its rings; or
 * a client's queue pair (tbrdma_kctx.c), whose rings are the client's.
 */
struct tbrdma_kctx {
	struct tbrdma_file *fl;		/* NULL: a client's */
	struct tbrdma_user *user;	/* whose count of contexts it is in */
	struct tb_ctx *ctx;		/* the engine's */
	/*
	 * Serialises what posts and acts on endpoints (the engine asks it of
	 * each context): DOORBELL, the endpoint ioctls, the pollers'
	 * SQ polling (which only tries it). Taken after fl->lock.
	 */
	struct mutex lock;
	/*
	 * The file's table holds one reference, an ioctl in flight another:
	 * mutex_unlock() may still touch the mutex after a destroyer that
	 * waited on it has taken it.
	 */
	refcount_t ref;
	struct tbrdma_kring sq, cq, rq;
	u32 sq_head;			/* next SQE to take, under lock */
	/* A queue pair's one endpoint, every SQE's, -1 before it connects. */
	int qp_ep;
	bool qp_error;			/* in error (under lock) */
	bool qp_ready;			/* in RTS: its doorbell posts (under lock) */
	/*
	 * A queue pair's doorbell file holds it for reading through each
	 * ioctl, tail included; the queue pair's destruction for writing,
	 * to set qp_gone before its context and the client's rings go.
	 */
	struct rw_semaphore doorbell_sem;
	bool qp_gone;			/* under doorbell_sem */
	/* A link whose deadline tbrdma_kctx_unlock() notes, plus one; 0: none */
	int deadline_link;
	struct list_head sq_node;	/* in tbrdma.sqs, under tbrdma.sq_lock */
	struct eventfd_ctx *event;	/* signalled on armed rings, or NULL */
};

/*
 * tbrdma_kctx.c. A new context, counted against the caller's user
 * (-EMFILE past max_user_contexts), with one reference and no rings.
 */
struct tbrdma_kctx *tbrdma_kctx_new(void);
/*
 * Frees a context that is out of the engine and out of its file, at its
 * last reference. Pages of its rings that the process still maps stay
 * allocated, and charged, until it unmaps them; nothing writes them
 * anymore.
 */
void tbrdma_kctx_put(struct tbrdma_kctx *kc);
/*
 * Lets kc->lock go: a poller that stopped meanwhile may have passed its SQ
 * by (tbrdma_sq_unlocked()), and what was sent is received.
 */
void tbrdma_kctx_unlock(struct tbrdma_kctx *kc);
/* The SQ's control block says its size, as the process reads it. */
void tbrdma_kctx_init_sq(struct tbrdma_kctx *kc);
/*
 * Under kc->lock: posts the SQEs from the kernel's consumer index up to
 * producer, in batches, as tbrdma_sq_take() does. Returns how many went;
 * *err is the refusal it stopped at, or 0.
 */
u32 tbrdma_kctx_doorbell(struct tbrdma_kctx *kc, u32 producer, bool async,
			 int *err);

/*
 * Submission rings (tbrdma_sq.c). Under kc->lock, tbrdma_sq_take() posts
 * kc's SQEs from the kernel's consumer index up to producer, at most max,
 * in order, each under its endpoint's link lock, and returns how many it
 * took; a full queue stops it with the SQE left in the ring, and so does
 * another refusal unless async, where the SQE completes with
 * TBRDMA_WC_REFUSED instead. *err is the refusal it stopped at, or 0.
 * by: the poller taking them, NULL for a process.
 */
u32 tbrdma_sq_take(struct tbrdma_kctx *kc, u32 producer, u32 max,
		   bool async, struct tbrdma_poller *by, int *err);
/*
 * Under kc->lock, before an ioctl acts on kc: its polled SQ goes first.
 * Returns SQEs taken.
 */
u32 tbrdma_sq_flush(struct tbrdma_kctx *kc);
/*
 * Just after an ioctl let kc->lock go: if the pollers stopped polling
 * meanwhile, the last one may have passed kc by: its SQEs are taken here.
 */
void tbrdma_sq_unlocked(struct tbrdma_kctx *kc);
/* With no link lock held; they take sq_lock. */
void tbrdma_sq_add(struct tbrdma_kctx *kc);
void tbrdma_sq_del(struct tbrdma_kctx *kc);
/*
 * A poll round of p: unless another poller is at it, turns p's SQ polling
 * on and takes a batch from every polled SQ whose context is not busy in
 * an ioctl. Returns SQEs taken.
 */
u32 tbrdma_sq_poll(struct tbrdma_poller *p);
/*
 * p is going to sleep: turns its SQ polling off; the last poller to stop
 * takes all that the SQs hold once more. Returns what that look took.
 */
u32 tbrdma_sq_poll_stop(struct tbrdma_poller *p);

/* One open file of /dev/tbrdma: a protection domain and its contexts. */
struct tbrdma_file {
	/*
	 * A slot of ctxs[] changes only under both this lock and tbrdma.lock,
	 * so either one is enough to look a context up. Orders CREATE_QUEUES
	 * and DESTROY_QUEUES against mmap() and the ioctls that take a
	 * context's lock; taken first.
	 */
	struct mutex lock;
	struct tb_pd *pd;		/* created at open, under tbrdma.lock */
	struct tbrdma_user *user;	/* charged for pd */
	struct tbrdma_kctx *ctxs[TBRDMA_FILE_CTX_MAX];
	wait_queue_head_t wq;		/* poll(): CQ or RQ entries */
};

/* Controllers that send from registered memory (tbrdma_dma.c). */
#define TBRDMA_DMA_DEVS 8

struct tbrdma_dma_map;

/* The host's record of one region: tb_pd_reg_mr()'s priv. */
struct tbrdma_umr {
	struct list_head node;		/* every region, for DMA mapping */
	struct list_head free_node;	/* on a list to free */
	struct mm_struct *mm;		/* whose pinned_vm holds the pages */
	struct page **pages;
	unsigned long npages;
	void *vaddr;			/* vmap() of all pages */
	bool writable;			/* pinned with FOLL_WRITE */
	/*
	 * The registration's own, plus one per transmit descriptor still
	 * pointing into the pages: they stay pinned and mapped until the
	 * controller is done with them, even after deregistration.
	 */
	refcount_t ref;
	struct work_struct free_work;	/* the last put in atomic context */
	struct tbrdma_dma_map *map[TBRDMA_DMA_DEVS];
};

/* tbrdma_dma.c */
/*
 * A controller that will send from registered memory: every region gets a
 * table of its pages' bus addresses for it, filled as pages are sent.
 * Returns its id (the same for the same device, counted), or -ENOSPC.
 * Sleeps.
 */
int tbrdma_dma_add_dev(struct device *dev);
/* Its last user is gone (no link of it is up): unmaps everything. */
void tbrdma_dma_put_dev(int id);
/* A new region, before the engine knows it: its table for every device. */
void tbrdma_dma_add_umr(struct tbrdma_umr *umr);
/* A region the engine no longer knows: unmap it. */
void tbrdma_dma_remove_umr(struct tbrdma_umr *umr);
/*
 * Under a link's lock, from its phy: the bus address for device id of the len
 * bytes at data (within one page) in the region cookie (ext->dma_cookie),
 * its page mapped the first time, synced for the device. -ENOENT: it
 * cannot be mapped for it, copy instead.
 */
int tbrdma_dma_addr(int id, const void *cookie, const void *data, u32 len,
		    dma_addr_t *addr);
void tbrdma_dma_show(struct seq_file *m);

/* tbrdma_mr.c */
/*
 * Registers the length bytes at addr in the caller's memory, reached by
 * peers and SQEs at iova (addr for /dev/tbrdma's regions).
 */
int tbrdma_mr_reg(struct tb_pd *pd, u64 addr, u64 length, u64 iova,
		  u32 access, u64 *key);
int tbrdma_mr_dereg(struct tb_pd *pd, u64 key);
/*
 * A descriptor points into umr's pages / is done with them. Any context:
 * a last put frees the region from a work item on wq, which the caller
 * drains before the module goes.
 */
void tbrdma_umr_get(struct tbrdma_umr *umr);
void tbrdma_umr_put_async(struct tbrdma_umr *umr, struct workqueue_struct *wq);
/* tb_pd_destroy() release callback: queues a region on list (arg). */
void tbrdma_mr_collect(void *list, void *priv);
/* Unpins and frees what tbrdma_mr_collect() queued; may sleep. */
void tbrdma_mr_free_list(struct list_head *list);

/*
 * tbrdma_client.c: telling the clients (tbrdma_client.h). Whoever adds or
 * removes a link device holds the clients lock around making it visible
 * or invisible and the add or remove call; changed() from any context.
 */
void tbrdma_clients_lock(void);
void tbrdma_clients_unlock(void);
void tbrdma_clients_add(u32 index, struct device *dev);
void tbrdma_clients_remove(u32 index);
void tbrdma_clients_changed(u32 index);

/* tbrdma_cdev.c */
int tbrdma_cdev_register(void);
void tbrdma_cdev_unregister(void);

/* tbrdma_loop.c */
int tbrdma_loop_create(u32 index, struct tbrdma_loop **out);
int tbrdma_loop_register(struct tbrdma_loop *loop, struct device *parent);
void tbrdma_loop_destroy(struct tbrdma_loop *loop);
/*
 * Under tbrdma.lock: what QUERY_LINK and CREATE_EP need (the attributes
 * take the link's lock for its state).
 */
u32 tbrdma_loop_engine_index(const struct tbrdma_loop *loop);
u32 tbrdma_loop_far_index(const struct tbrdma_loop *loop);
/* The other end of a loop end's link, NULL for any other link. */
const struct tb_link *tbrdma_loop_far_link(const struct tb_link *link);
void tbrdma_loop_attr(const struct tbrdma_loop *loop,
		      struct tbrdma_link_attr *attr);
/* Its device, NULL until registered. */
struct device *tbrdma_loop_device(struct tbrdma_loop *loop);
/* The class, and the loops' DMA device if there are loops. */
int tbrdma_loop_class_register(u32 nloops);
void tbrdma_loop_class_unregister(void);
/* debugfs: both ends of the cable in detail, under tbrdma.lock. */
void tbrdma_loop_show(struct seq_file *m, struct tbrdma_loop *loop);

#endif /* TBRDMA_H */
