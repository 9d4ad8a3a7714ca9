/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The RDMA engine: contexts, memory regions, endpoints and the operations
 * WRITE, READ, ATOMIC, SEND and FLUSH, carried over tb_link links.
 *
 * One engine serves one host instance (the kernel module, or one process
 * running the software device). Work is posted as struct tbrdma_sqe; the
 * results come back as struct tbrdma_cqe in the context's completion ring
 * and received messages as struct tbrdma_rqe in its receive ring, in the
 * layout of rdma/tbrdma_abi.h, so a process cannot tell the kernel engine from
 * an in-process one.
 *
 * Semantics:
 * - operations on one endpoint are executed remotely in posting order and
 *   complete in posting order (so fences need no wire traffic, and a FLUSH
 *   at most a bare ACK asking the peer for acks it may hold back);
 * - WRITE and SEND complete once the target executed them; READ and ATOMIC
 *   once their response arrived; every request gets either an implicit ack
 *   or a NAK with a status, and a NAK becomes an error completion;
 * - when a link goes down every operation on it completes with
 *   TBRDMA_WC_LINK_DOWN, and so does any posted to its endpoints later,
 *   but for a datagram context's, whose datagrams complete as sent and
 *   are lost until its endpoint is on a link that is up again;
 * - a NAK puts its endpoint in error: what it had not sent, and anything
 *   posted to it later, completes with TBRDMA_WC_FLUSH_ERR;
 * - a SEND to a context whose receive ring is full waits on its endpoint
 *   alone and is resent with backoff; after rnr_timeout_ns it completes
 *   with TBRDMA_WC_RNR_RETRY_EXC_ERR and the endpoint is in error;
 * - a context receives either SENDs, as messages of one frame in its
 *   receive ring, or MSGs, of any length, into the buffers its owner
 *   posted (tb_ctx_config.rwq): a MSG to a context with none posted waits
 *   as a SEND to a full ring does; one longer than the buffer completes
 *   there with TBRDMA_WC_LOC_LEN_ERR and at the sender with REM_INVALID;
 *   a SEND to a context of posted receives, or a MSG to one without,
 *   with REM_INVALID;
 * - a DGRAM is a datagram of one frame, as a verbs UD SEND: the datagram
 *   context it names takes it into its oldest posted receive when its
 *   Q_Key matches and it arrived on a link of the context's fabric, and
 *   the target drops it otherwise (no receive posted, one too short
 *   completes with LOC_LEN_ERR); either way it completes at the sender
 *   as a success once the target took it in;
 * - nothing is allocated after creation: all queues have fixed sizes and a
 *   full one makes tb_post() return -EAGAIN.
 *
 * Locking: links run concurrently, each under a lock of the host's.
 * - Link: everything that runs one link (tb_engine_progress_link(),
 *   tb_engine_kick(), tb_engine_link_deadline(), the link's own calls and
 *   callbacks) holds its lock.
 * - Context: tb_post(), tb_post_refused() and tb_ep_*() on one context are
 *   serialised; those on an endpoint also hold the lock of its link
 *   (tb_ep_link(); tb_ep_create() names the link).
 * - Engine: adding, unplugging and removing links, destroying contexts
 *   and domains and the endpoints of datagram contexts (which may wait on
 *   the engine's list, tb_engine_unplug_link()), deregistering regions
 *   with tb_pd_dereg_mr(), and calls over all links (tb_engine_progress(),
 *   tb_engine_next_deadline()) hold every link's lock; these and creating
 *   contexts and domains are serialised among themselves.
 * - Region: tb_pd_dereg_begin(), then tb_engine_release_mr() under each
 *   link's lock in turn, then tb_pd_dereg_end() deregister without
 *   stopping every link at once.
 * Registering a region needs no lock of the host's, only its domain (and
 * context) alive. What links share the engine locks itself, as leaves: a
 * context's completion and receive rings and its pool of operations, and
 * a domain's table of regions. A context's notify runs under its lock.
 */
#ifndef TB_ENGINE_H
#define TB_ENGINE_H

#include "tb_compat.h"
#include "tb_link.h"

#ifdef __cplusplus
extern "C" {
#endif

struct tb_engine;
struct tb_ctx;
/* Shared receive queue: posted receives several contexts take from. */
struct tb_srq;
/* Protection domain: a table of memory regions shared by contexts. */
struct tb_pd;
/* A memory region of a domain. */
struct tb_mr;

struct tb_engine_config {
	u32 max_links;
	u32 max_ctx;		/* power of two */
	u32 msn_window;		/* requests in flight per link, power of two */
	u32 rd_max;		/* READ/ATOMIC awaiting response per link */
	/*
	 * On links that carry ext buffers: WRITE and READ data chunks of at
	 * least this many bytes in registered memory are sent from there, not
	 * copied into the frame. 0: always copy.
	 */
	u32 ext_min;
	/*
	 * A SEND to a full receive queue is resent with backoff (from
	 * TB_RNR_DELAY_MIN_NS, doubling to TB_RNR_DELAY_MAX_NS) for this
	 * long, then fails with TBRDMA_WC_RNR_RETRY_EXC_ERR.
	 */
	u64 rnr_timeout_ns;
};

#define TB_RNR_DELAY_MIN_NS 10000ull		/* 10 us */
#define TB_RNR_DELAY_MAX_NS 10000000ull		/* 10 ms */
#define TB_RNR_TIMEOUT_NS 30000000000ull	/* 30 s */

/*
 * Default ext_min: below this a second descriptor costs more than copying
 * the bytes into the frame.
 */
#define TB_EXT_MIN 1024u

void tb_engine_config_default(struct tb_engine_config *cfg);

/* A ring in memory owned by the host, laid out as in rdma/tbrdma_abi.h. */
struct tb_qring {
	struct tbrdma_ring_ctrl *ctrl;
	u8 *entries;
	u32 mask;		/* entries - 1 */
	u32 entry_size;
	u32 head;		/* private copy of the index this side moves */
};

/* Initialises ctrl and the private fields for a ring of n entries. */
void tb_qring_init(struct tb_qring *r, struct tbrdma_ring_ctrl *ctrl,
		   void *entries, u32 n, u32 entry_size);

/* Ids the engine chooses fit in 24 bits, as verbs queue pair numbers do. */
#define TB_CTX_ID_MASK 0xffffffu

struct tb_ctx_config {
	u32 id;			/* 0: the engine chooses one */
	/* Regions are looked up here; NULL: a private one of max_mr. */
	struct tb_pd *pd;
	u32 max_mr;		/* power of two */
	u32 max_ep;		/* power of two */
	u32 sq_depth;		/* operations in flight per endpoint, pow2 */
	struct tb_qring cq;	/* entries of struct tbrdma_cqe */
	/*
	 * Where SENDs land: rq, entries of TBRDMA_RQE_SLOT bytes; or, for a
	 * context of posted receives (rq.ctrl NULL), MSGs land in the
	 * buffers of rwq (entries of struct tbrdma_rwqe, produced by the
	 * owner) or of srq, and complete in rcq (struct tbrdma_cqe).
	 */
	struct tb_qring rq;
	struct tb_qring rwq;
	struct tb_qring rcq;
	/*
	 * Posted receives taken from this shared queue instead of rwq (a
	 * verbs SRQ; rwq.ctrl NULL); their completions still go to rcq.
	 */
	struct tb_srq *srq;
	/*
	 * lkey 0 means "local address in this address space". Only for an
	 * engine running inside the process that owns the memory.
	 */
	int allow_raw_local;
	/*
	 * Admits requests from the one peer context it is bound to
	 * (tb_ctx_bind()), whatever secret they carry, and from nobody while
	 * unbound, instead of by its secret: a verbs queue pair, whose peer
	 * knows its number alone.
	 */
	int admit_bound;
	/*
	 * Receiver not ready, as a verbs queue pair has it: the first
	 * backoff (its min_rnr_timer; 0: TB_RNR_DELAY_MIN_NS), and how many
	 * times an operation is sent before it fails with
	 * RNR_RETRY_EXC_ERR (its rnr_retry + 1; 0: no count, the engine's
	 * rnr_timeout_ns alone, as rnr_retry 7).
	 */
	u64 rnr_delay_ns;
	u32 rnr_tries;
	/*
	 * A datagram context (a verbs UD queue pair): admits DGRAMs alone,
	 * those with its Q_Key (tb_ctx_set_qkey()) that arrive on links of
	 * fabric (tb_link.fabric), into posted receives; posts DGRAMs alone.
	 * Its endpoint outlives its link going down, losing the datagrams
	 * meanwhile (and tb_engine_unplug_link()).
	 */
	int dgram;
	u32 fabric;
	/*
	 * Called after new entries were published in an armed ring: recv
	 * says which, the RQ or receive CQ (true) or the send CQ.
	 */
	void (*notify)(void *arg, int recv);
	void *notify_arg;
};

int tb_engine_create(struct tb_engine **out, const struct tb_engine_config *cfg);
/* Links and contexts must have been removed. */
void tb_engine_destroy(struct tb_engine *e);

/*
 * Attaches a link created with tb_link_init(link, ..., &tb_engine_link_ops,
 * e). Returns its index (>= 0) or -ENOSPC.
 */
int tb_engine_add_link(struct tb_engine *e, struct tb_link *link);
/*
 * Fails the link's endpoints and detaches it. Of a link not attached:
 * fails the datagram endpoints waiting for it (tb_engine_unplug_link()).
 */
void tb_engine_remove_link(struct tb_engine *e, struct tb_link *link);
/*
 * Detaches the link as tb_engine_remove_link() does, but for the endpoints
 * of datagram contexts (verbs UD queue pairs), which wait for the same
 * link to be added again (a loop's cable plugged in again) and join it
 * then; until then they lose what they post (completed as sent), as a UD
 * queue pair does while its port is down. The link is removed later, or
 * added again, before it is freed.
 */
void tb_engine_unplug_link(struct tb_engine *e, struct tb_link *link);
struct tb_link *tb_engine_link(struct tb_engine *e, u32 index);
extern const struct tb_link_user_ops tb_engine_link_ops;
/*
 * Its callbacks, for a host's own tb_link_user_ops that adds to
 * state_changed.
 */
int tb_engine_deliver(void *user, struct tb_link *link, const void *payload,
		      u32 len, const void *ext, u32 ext_len);
void tb_engine_ext_put(void *user, const struct tb_link_ext *ext);
u32 tb_engine_user_ack(void *user, struct tb_link *link);
void tb_engine_user_ack_sent(void *user, struct tb_link *link, u32 ack_msn);
void tb_engine_user_ack_rx(void *user, struct tb_link *link, u32 ack_msn);

/*
 * Runs every link: receives, executes, completes, resends and transmits.
 * Returns how many frames were handled.
 */
int tb_engine_progress(struct tb_engine *e, u64 now_ns);
/* The same for one link, where its frames arrived. */
int tb_engine_progress_link(struct tb_engine *e, u32 link_index, u64 now_ns);
/* Transmits what is queued on one link (after posting). */
void tb_engine_kick(struct tb_engine *e, u32 link_index);
/* Earliest timer deadline over all links, 0 if none. */
u64 tb_engine_next_deadline(struct tb_engine *e);
/* The same for one link. */
u64 tb_engine_link_deadline(struct tb_engine *e, u32 link_index);

/* max_mr is a power of two. */
int tb_pd_create(struct tb_engine *e, u32 max_mr, struct tb_pd **out);
/*
 * Keys of 32 random bits from now on, as verbs lkeys and rkeys are,
 * instead of 64: before the domain's first region.
 */
void tb_pd_short_keys(struct tb_pd *pd);
/*
 * Calls release(arg, priv) for each region still registered, then frees
 * the domain. Contexts using it must be gone.
 */
void tb_pd_destroy(struct tb_pd *pd, void (*release)(void *arg, void *priv),
		   void *arg);
/*
 * Registers [iova, iova + length) with the given access. base is where the
 * engine reaches that memory (the same address in userspace, a kernel
 * mapping of the pinned pages in the kernel); priv is the host's.
 */
int tb_pd_reg_mr(struct tb_pd *pd, u64 iova, u64 length, u32 access,
		 void *base, void *priv, u64 *key);
/*
 * Returns 0 and the host's priv, or -ENOENT for an unknown key. Under
 * every link's lock; or in three steps, below, that stop no link.
 */
int tb_pd_dereg_mr(struct tb_pd *pd, u64 key, void **priv);
/*
 * Deregistering one link at a time. tb_pd_dereg_begin() takes key out of
 * pd under the domain's lock alone (NULL for an unknown key): no lookup
 * finds it from then on. The host then calls tb_engine_release_mr() on
 * every link index below tb_engine_config.max_links, each under that
 * link's lock: a link that found the region before has let go of it once
 * its lock is taken, and its unacked frames sent from the region get
 * copies. Last, tb_pd_dereg_end() frees the slot and returns the host's
 * priv; the memory may go. pd stays alive from the first step to the
 * last.
 */
struct tb_mr *tb_pd_dereg_begin(struct tb_pd *pd, u64 key);
void tb_engine_release_mr(struct tb_engine *e, u32 index, struct tb_mr *mr);
void *tb_pd_dereg_end(struct tb_pd *pd, struct tb_mr *mr);
/* Whether key names a region of pd now, under the domain's lock only. */
int tb_pd_has_mr(struct tb_pd *pd, u64 key);

/*
 * A shared receive queue of posted receives (entries of struct
 * tbrdma_rwqe, produced by the owner, their lkeys in pd), for contexts of
 * pd created with it; -EBUSY to destroy while they exist. A context put
 * in error leaves it alone.
 */
int tb_srq_create(struct tb_engine *e, struct tb_pd *pd,
		  const struct tb_qring *rwq, struct tb_srq **out);
int tb_srq_destroy(struct tb_srq *srq);
/*
 * Arms the queue's limit, as a verbs SRQ's srq_limit: once a context took
 * a receive and fewer than limit are left posted, reached(arg) runs, once
 * (under the queue's lock and a link's: it must not sleep), and the limit
 * is disarmed; 0 disarms. -EINVAL for a limit past the ring's size or
 * without reached.
 */
int tb_srq_arm(struct tb_srq *srq, u32 limit, void (*reached)(void *arg),
	       void *arg);
/* The limit armed, 0 for none. */
u32 tb_srq_limit(struct tb_srq *srq);

int tb_ctx_create(struct tb_engine *e, const struct tb_ctx_config *cfg,
		  struct tb_ctx **out);
/*
 * Cancels everything and frees the context; with a private domain, calls
 * release(arg, priv) for each region still in it first.
 */
void tb_ctx_destroy(struct tb_ctx *ctx, void (*release)(void *arg, void *priv),
		    void *arg);
u32 tb_ctx_id(const struct tb_ctx *ctx);
/*
 * 64 random bits that every request to the context must carry: only those
 * it was handed to reach it, whatever they know of its id.
 */
u64 tb_ctx_secret(const struct tb_ctx *ctx);
/*
 * An admit_bound context admits requests from remote_ctx over link
 * link_index from now on (that link: not one added to its slot after it
 * went), and from nobody after tb_ctx_unbind(). Under every link's lock.
 * -EINVAL for a context that admits by secret or a bad index, -ENOTCONN
 * for a slot without a link.
 */
int tb_ctx_bind(struct tb_ctx *ctx, u32 link_index, u32 remote_ctx);
void tb_ctx_unbind(struct tb_ctx *ctx);
/*
 * Sets rnr_delay_ns and rnr_tries (as in tb_ctx_config) from now on, as a
 * verbs queue pair learns them at RTR and RTS. -EINVAL for a delay past
 * TB_RNR_DELAY_MAX_NS. Under the context's serialisation and every link's
 * lock.
 */
int tb_ctx_set_rnr(struct tb_ctx *ctx, u64 delay_ns, u32 tries);
/*
 * What requests to the context may do to its regions from now on, as a
 * verbs queue pair's access flags: the TBRDMA_ACCESS_REMOTE_* bits of
 * access (all until the first call). A request for more is refused
 * (REM_ACCESS_ERR), whatever the region allows. Any time: a request
 * arriving meanwhile sees the old rights or the new.
 */
void tb_ctx_set_remote_access(struct tb_ctx *ctx, u32 access);
/*
 * READs and ATOMICs each endpoint of the context may have started and not
 * had answered, as a verbs queue pair's max_rd_atomic; 0 (as created):
 * only the link's rd_max bounds them. Under every link's lock.
 */
void tb_ctx_set_rd_max(struct tb_ctx *ctx, u32 n);
/*
 * Back to what it was when created, as a verbs queue pair moved to RESET,
 * but for its id, its rings' indices and its receiver-not-ready settings:
 * its endpoints go without completions, it admits nobody (unbound, no
 * Q_Key, no remote access), no rd_max, it is not in error, and the
 * receives posted to it and not yet completed are dropped. A receive it
 * took from a shared queue completes with TBRDMA_WC_FLUSH_ERR, so that
 * its buffer comes back. Completions already published stay; the owner
 * discards those it wants to. Under every link's lock and the context's
 * serialisation.
 */
void tb_ctx_reset(struct tb_ctx *ctx);
/*
 * A datagram context admits DGRAMs with qkey from now on (none before the
 * first call). -EINVAL for another context. Under every link's lock.
 */
int tb_ctx_set_qkey(struct tb_ctx *ctx, u32 qkey);
/*
 * The context is in error from now on, as a verbs queue pair moved to
 * ERR: everything outstanding on its endpoints completes with
 * TBRDMA_WC_FLUSH_ERR, and so does all that is posted to them later;
 * requests to it are refused; its posted receives flush. Under every
 * link's lock.
 */
void tb_ctx_set_error(struct tb_ctx *ctx);
/*
 * A context of posted receives in error: completes every receive posted
 * so far with TBRDMA_WC_FLUSH_ERR, as far as the receive completion ring
 * has room (of a shared queue: only the one it was filling). Returns how
 * many are left (call again once the owner drained the ring, and after it
 * posts more).
 */
u32 tb_ctx_flush_recv(struct tb_ctx *ctx);
/* Contexts that can still be created. */
u32 tb_engine_ctx_free(const struct tb_engine *e);

/* tb_pd_reg_mr() and tb_pd_dereg_mr() on the context's domain. */
int tb_mr_register(struct tb_ctx *ctx, u64 iova, u64 length, u32 access,
		   void *base, void *priv, u64 *key);
int tb_mr_deregister(struct tb_ctx *ctx, u64 key, void **priv);

/*
 * Endpoint to the context remote_ctx whose secret is remote_secret (both
 * from the peer, as tb_ctx_id() and tb_ctx_secret() give them there).
 * Returns the endpoint handle (>= 0) or a negative errno.
 */
int tb_ep_create(struct tb_ctx *ctx, u32 link_index, u32 remote_ctx,
		 u64 remote_secret);
/*
 * Makes what the next tb_ep_create() allocates, under the context's
 * serialisation alone, so that the link's lock is not held across an
 * allocation (which may wait for reclaim). Optional: tb_ep_create() makes
 * it itself otherwise. 0, -ENOMEM, or -ENOSPC at max_ep.
 */
int tb_ep_prepare(struct tb_ctx *ctx);
/* Completes its outstanding operations as CANCELED, then frees it. */
int tb_ep_destroy(struct tb_ctx *ctx, u32 ep);
/*
 * Index of the endpoint's link (whose lock to hold), -ENOENT if none. A
 * datagram context's endpoint changes link (tb_engine_unplug_link(), then
 * tb_engine_add_link()) under every link's lock: read again once the lock
 * is held. One waiting for its link names the slot it had, which may serve
 * another link meanwhile: posting to it sends nothing, so any link's lock
 * will do.
 */
int tb_ep_link(struct tb_ctx *ctx, u32 ep);
/* Completes every outstanding operation as CANCELED; the ep stays. */
int tb_ep_cancel(struct tb_ctx *ctx, u32 ep);
/* Link state of the endpoint's link, -ENOENT for a bad handle. */
int tb_ep_state(struct tb_ctx *ctx, u32 ep, u32 *outstanding);

/*
 * Validates and queues one operation. Returns 0, -EAGAIN when the
 * endpoint's queue or the completion ring is full, -EINVAL for a malformed
 * request, or -ENOENT for a bad endpoint. On an endpoint whose link is down
 * the operation completes at once with TBRDMA_WC_LINK_DOWN (a datagram
 * context's with success: the datagram is lost).
 */
int tb_post(struct tb_ctx *ctx, const struct tbrdma_sqe *sqe);
/*
 * Whether tb_post() accepts the SQE's form (opcode, flags, lengths,
 * alignment): a host that hands SQEs over to be posted later checks first.
 */
int tb_sqe_valid(const struct tbrdma_sqe *sqe);
/*
 * Completes an SQE that tb_post() refused with TBRDMA_WC_REFUSED (in a
 * context in error: TBRDMA_WC_FLUSH_ERR), for a host that took it from a
 * ring no caller waits on. Returns 0, or -EAGAIN
 * when the completion ring has no room.
 */
int tb_post_refused(struct tb_ctx *ctx, const struct tbrdma_sqe *sqe);

/* Operations posted and not yet completed. */
u32 tb_ctx_outstanding(const struct tb_ctx *ctx);

#ifdef __cplusplus
}
#endif

#endif /* TB_ENGINE_H */
