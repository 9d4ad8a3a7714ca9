/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Engine internals, shared by its parts:
 *   tb_engine.c     engine, links, contexts, rings, progress loop
 *   tb_mr.c         memory regions and access checks
 *   tb_ep.c         endpoints, posting, in-order completion
 *   tb_requester.c  turns posted operations into request frames
 *   tb_responder.c  executes requests and sends responses
 *   tb_recv.c       messages into posted receives
 *   tb_completer.c  takes acks and responses back to operations
 *
 * Request sequence numbers (msn) count request frames on one link
 * direction, starting at 1. The responder executes them in order and
 * advertises the last one executed (ack_msn) in every frame it sends; a
 * failed request is reported by a NAK that always precedes the ack that
 * covers it, so the initiator never mistakes a failure for a success.
 */
#ifndef TB_ENGINE_PRIV_H
#define TB_ENGINE_PRIV_H

#include "tb_engine.h"

struct tb_ep;

/* What requests from a peer may do (tb_ctx_set_remote_access()). */
#define TB_ACCESS_REMOTE (TBRDMA_ACCESS_REMOTE_READ |	\
			  TBRDMA_ACCESS_REMOTE_WRITE |	\
			  TBRDMA_ACCESS_REMOTE_ATOMIC)

/* Endpoint table slots a context starts with. */
#define TB_EP_SLOTS_MIN 64u

/*
 * One posted operation, copied from its SQE. Operations come from one
 * pool per context, shared by its endpoints; an endpoint chains its own in
 * posting order.
 */
struct tb_wqe {
	struct tbrdma_sqe sqe;
	struct tb_ep *ep;
	struct tb_wqe *next;	/* the endpoint's next, or the pool's free list */
	u64 result;		/* ATOMIC: value fetched */
	u32 sent;		/* WRITE bytes sent, READ bytes requested */
	u32 recvd;		/* READ bytes received */
	u32 first_msn;		/* the first request frame sent for it */
	u32 last_msn;		/* the latest request frame sent for it */
	u16 resp_pending;	/* READ_REQs and ATOMICs awaiting a response */
	u8 has_msn;		/* at least one request frame was sent */
	u8 sent_all;		/* no more frames to send */
	u8 acked;		/* the responder executed every frame sent */
	u8 status;		/* enum tbrdma_status */
	u8 rd_counted;		/* in its endpoint's rd_wqes */
};

/*
 * An endpoint costs this struct and a slot in its context's table; its
 * operations in flight come from the context's pool.
 */
struct tb_ep {
	u32 handle;
	u8 failed;		/* its link went down */
	u8 error;		/* a request was refused: flush the rest */
	u8 active;		/* on one of its link's lists (TB_EP_ON_*) */
	struct tb_ctx *ctx;
	struct tb_elink *el;
	u32 remote_ctx;
	u64 remote_secret;
	u32 count;		/* operations not yet completed */
	/*
	 * Receiver not ready: the operation being resent (NULL: none), when
	 * its first RNR_NAK came, the current backoff, and when the
	 * endpoint may send again (0: now). resume: its next request
	 * frame carries TB_EF_RESUME.
	 */
	struct tb_wqe *rnr_wqe;
	u64 rnr_since;
	u64 rnr_delay;
	u64 rnr_until;
	u32 rnr_count;		/* RNR_NAKs rnr_wqe drew */
	u8 rnr_resume;
	/* Datagram parts at the tail, the last with MORE (a datagram open). */
	u8 dgram_parts;
	u8 dgram_lost;		/* the open datagram lost a part: drop the rest */
	/* READs and ATOMICs started and not answered, for ctx->rd_max. */
	u32 rd_wqes;
	/*
	 * Its operations in posting order: head, the oldest not completed;
	 * send, the first with frames still to transmit (NULL: none); tail,
	 * the newest.
	 */
	struct tb_wqe *head;
	struct tb_wqe *send;
	struct tb_wqe *tail;
	struct tb_ep *next_active;
	struct tb_ep *prev_active;
	/*
	 * On its link's list of all its endpoints, for a link failure, until
	 * the link is removed (its slot may then serve another link); or,
	 * with parked_link (a datagram context's, tb_engine_unplug_link()),
	 * on the engine's list of those waiting for that link to be added
	 * again.
	 */
	struct tb_ep *link_next;
	struct tb_ep *link_prev;
	u8 on_link;
	const struct tb_link *parked_link;
};

struct tb_msn_ent {
	struct tb_wqe *wqe;	/* NULL once its operation was cancelled */
	u32 msn;
	u8 awaiting;		/* a READ or ATOMIC response is still due */
};

/* Responder state of one READ_REQ being answered. */
struct tb_rd_res {
	u8 active;
	u32 msn;
	u32 initiator_ctx;
	u32 target_ctx;
	u64 rkey;
	u64 addr;
	u32 len;
	u32 off;
	u64 op_off;		/* where this request starts in the READ */
};

struct tb_atomic_res {
	u32 msn;
	u32 initiator_ctx;
	u64 value;
};

struct tb_nak {
	u32 msn;
	u32 initiator_ctx;
	u8 op;			/* TB_EOP_NAK or TB_EOP_RNR_NAK */
	u8 status;		/* NAK */
};

/*
 * An initiator endpoint whose SEND found the receive queue full: its
 * later requests are not executed (RNR_NAK) until one comes with
 * TB_EF_RESUME. A hold is over once msn_window requests have been
 * executed after it: by then the initiator has seen its RNR_NAK (the ack
 * that let it send that far covers it), so whatever the endpoint sent
 * before that has arrived, and what it sends after starts with RESUME.
 * So at most msn_window holds stand, one per request of the window, and
 * the list has room for them and the next: making one never fails, and
 * endpoints not ready, however many, never hold the link.
 */

struct tb_rnr_hold {
	u32 src_ctx;
	u32 src_ep;
	u32 msn;		/* the request that was not ready */
};

/*
 * Refusals one initiating context drew from one target id, as a GCRA: each
 * refusal moves tat (theoretical arrival time) on by one interval; a pair
 * that runs more than a burst ahead of now is throttled. Per pair, so a
 * context whose peer died (and refuses everything it had in flight) still
 * reaches the others.
 */
#define TB_REFUSE_PAIRS 8u
#define TB_REFUSE_INTERVAL_NS (1000000000ull / 16)	/* 16 per second */
#define TB_REFUSE_BURST_NS (16 * TB_REFUSE_INTERVAL_NS)	/* 16 at once */

struct tb_refuser {
	u32 src_ctx;
	u32 dst_ctx;
	u64 tat;		/* 0: slot unused */
};

/*
 * The region a link used last, found again without the domain's lock
 * while no region or domain has gone since (tb_engine.mr_gen).
 */
struct tb_mr_hint {
	const struct tb_pd *pd;
	struct tb_mr *mr;
	u64 key;
	u64 gen;
};

/* The engine's state for one link. */
struct tb_elink {
	struct tb_engine *e;
	struct tb_link *link;
	u32 index;
	/* This link among all the slot ever held: bindings name it. */
	u64 gen;
	struct tb_mr_hint hint_local;	/* this side's buffers */
	struct tb_mr_hint hint_remote;	/* the peer's requests */

	/* Initiator. */
	u32 msn_next;		/* next request sequence number */
	u32 msn_tail;		/* oldest entry still in msn_ring */
	u32 msn_acked;		/* the peer executed everything up to this */
	struct tb_msn_ent *msn_ring;
	u32 rd_outstanding;
	/*
	 * Endpoints with frames to send, and those waiting out an RNR delay
	 * (so that a walk for a frame passes no endpoint that cannot send).
	 */
	struct tb_ep *active_head;
	struct tb_ep *active_tail;
	struct tb_ep *rnr_head;
	struct tb_ep *rnr_tail;
	struct tb_ep *eps;	/* every endpoint on the link */
	u64 rnr_wake_ns;	/* earliest rnr_until of its endpoints, 0: none */
	u8 ack_wanted;		/* a FLUSH waits: ask the peer for its ack */

	/* Responder. */
	u32 resp_done;		/* last request executed */
	/* last ack_msn sent in DATA, or in an ACK the link counted */
	u32 ack_sent;
	struct tb_nak *naks;	/* msn_window entries */
	u32 nak_head;
	u32 nak_tail;
	struct tb_atomic_res *ares;	/* rd_max entries */
	u32 ares_head;
	u32 ares_tail;
	struct tb_rd_res *rds;	/* rd_max entries */
	u32 rd_active;		/* of them sending data: none spares the scan */
	u32 rd_next;		/* round robin over rds */
	u8 resp_turn;		/* alternate read data and new requests */
	struct tb_refuser refusers[TB_REFUSE_PAIRS];
	u8 refused;		/* a refuser was ever charged: else none to look up */
	struct tb_rnr_hold *holds;	/* msn_window + 1; lapsed ones go lazily */
	u32 nholds;
	u32 hold_newest;	/* msn of the newest hold: once it lapsed, all did */
};

struct tb_mr {
	u64 key;
	u64 iova;
	u64 length;
	u8 *base;
	void *priv;
	u32 access;
	u32 tx_refs;		/* unacked frames sent from it: atomic, any link */
	u32 next_free;		/* free: the next free slot + 1, 0 at the end */
	u8 in_use;
};

struct tb_pd {
	struct tb_engine *e;
	struct tb_lock lock;		/* the table: links look keys up concurrently */
	struct tb_mr *mrs;
	u32 *index;		/* 2 * max_mr positions: slot + 1, 0 empty */
	u32 max_mr;
	u32 free;		/* first free slot + 1, 0 if none */
	u8 short_keys;		/* keys of 32 bits */
};

struct tb_srq {
	struct tb_engine *e;
	struct tb_pd *pd;	/* its receives' lkeys */
	struct tb_lock lock;	/* taking from rwq: contexts on any link */
	struct tb_qring rwq;
	u32 users;		/* contexts created with it */
	/* tb_srq_arm(), under lock: 0 when not armed. */
	u32 limit;
	void (*limit_reached)(void *arg);
	void *limit_arg;
};

/*
 * The message a context of posted receives is taking in (tb_recv.c): its
 * sender, the next offset, and whether a receive (copied when taken) is
 * being filled or the rest of the message is dropped after an error
 * completed it.
 */
enum tb_rcv_state {
	TB_RCV_IDLE,
	TB_RCV_FILLING,
	TB_RCV_DROPPING,
};

/* One buffer of a receive, copied from its entry. */
struct tb_rcv_buf {
	u64 addr;
	u64 lkey;
	u32 length;
};

struct tb_rcv {
	u64 wr_id;
	struct tb_rcv_buf buf[TBRDMA_RECV_SGE_MAX];
	u32 nbuf;
	u64 room;		/* bytes of all its buffers */
	u8 bad;			/* an entry the owner got wrong: LOC_ACCESS_ERR */
	u64 link_gen;		/* the sender: link, context, endpoint */
	u32 src_ctx;
	u32 src_ep;
	u32 off;
	u8 state;		/* enum tb_rcv_state */
};

struct tb_ctx {
	struct tb_engine *e;
	u32 id;
	u64 secret;		/* every request to it carries this */
	struct tb_ctx_config cfg;
	struct tb_pd *pd;
	u8 own_pd;		/* created with the context, freed with it */
	/* cfg.admit_bound: the peer it admits (tb_ctx_bind()). */
	u8 peer_bound;
	u8 error;		/* tb_ctx_set_error(): admits nobody */
	u32 peer_link;
	u64 peer_link_gen;
	u32 peer_ctx;
	/* tb_ctx_set_remote_access(): what no request may do here. */
	u32 remote_denied;
	/* tb_ctx_set_rd_max(): READs and ATOMICs per endpoint, 0: any. */
	u32 rd_max;
	/* cfg.dgram: the Q_Key DGRAMs must carry, once set. */
	u8 qkey_set;
	u32 qkey;
	/* Endpoint table, NULL where free; doubles up to max_ep slots. */
	struct tb_ep **eps;
	u32 ep_slots;
	u32 nr_eps;
	u32 ep_bits;
	u32 ep_gen;
	u32 ep_next;		/* where the search for a free slot starts */
	struct tb_ep *ep_spare;	/* tb_ep_prepare()'s, for the next endpoint */
	struct tb_wqe *wqes;	/* the operation pool: one per CQ entry */
	/*
	 * Its endpoints may use different links, so what they share is
	 * under lock: the pool, the count of operations in flight, and the
	 * producer side of both rings.
	 */
	struct tb_lock lock;
	struct tb_wqe *wqe_free;
	u32 outstanding;
	struct tb_qring cq;
	struct tb_qring rq;
	/* Posted receives (cfg.rwq or cfg.srq), under lock. */
	struct tb_qring rwq;
	struct tb_qring rcq;
	struct tb_srq *srq;	/* receives come from it instead of rwq */
	struct tb_rcv rcv;
};

struct tb_engine {
	struct tb_engine_config cfg;
	struct tb_elink *links;
	u32 links_end;		/* past the last link in use: loops stop here */
	struct tb_ctx **ctxs;
	u32 nr_ctx;
	u32 ctx_gen;
	/*
	 * Counts regions deregistered and domains destroyed with regions in
	 * use: atomic, as domains deregister at once; a link reads it under
	 * its own lock (tb_mr.c).
	 */
	u64 mr_gen;
	u64 link_gen;		/* the last tb_elink.gen given */
	struct tb_ep *parked;	/* datagram endpoints of unplugged links */
};

/* tb_engine.c */
struct tb_ctx *tb_ctx_lookup(struct tb_engine *e, u32 id);
/* Under ctx->lock: publishes r's new entries and wakes an armed owner. */
void tb_qring_publish(struct tb_ctx *ctx, struct tb_qring *r);
/* Under ctx->lock. */
void tb_ctx_push_cqe(struct tb_ctx *ctx, const struct tbrdma_cqe *cqe);
/* Takes ctx->lock; -EAGAIN when the receive ring is full. */
int tb_ctx_push_rqe(struct tb_ctx *ctx, u32 link_label,
		    const struct tb_engine_hdr *h, const void *data);
void tb_elink_tx(struct tb_elink *el);
/* Encodes h (with the current ack_msn) and sends payload_len bytes. */
void tb_elink_send(struct tb_elink *el, struct tb_engine_hdr *h,
		   u32 payload_len);
void *tb_elink_payload_buf(struct tb_elink *el);
/*
 * Size of the next data chunk at src with left bytes to go; *ext says
 * whether to send it from mr (a region, or NULL for other memory) with
 * tb_elink_send_ext() instead of copying it into the frame.
 */
u32 tb_elink_chunk(const struct tb_elink *el, const u8 *src, u32 left,
		   const struct tb_mr *mr, int *ext);
/* Sends h with its h->len bytes of data as an ext from mr at src. */
void tb_elink_send_ext(struct tb_elink *el, struct tb_engine_hdr *h,
		       struct tb_mr *mr, const u8 *src);
/* tb_engine_release_mr() on every link, under every link's lock. */
void tb_engine_detach_mr(struct tb_engine *e, struct tb_mr *mr);
u32 tb_log2(u32 v);

/* tb_mr.c */
/*
 * Under the lock of the link whose hint is passed (or all): finds key in
 * ctx and checks [addr, addr + len) and the access right. Returns a pointer
 * to the bytes, or NULL with *status set.
 */
u8 *tb_mr_access(struct tb_ctx *ctx, struct tb_mr_hint *hint, u64 key,
		 u64 addr, u64 len, u32 access, u8 *status);
/* The same, and *mr is the region found. */
u8 *tb_mr_access_mr(struct tb_ctx *ctx, struct tb_mr_hint *hint, u64 key,
		    u64 addr, u64 len, u32 access, u8 *status,
		    struct tb_mr **mr);
/*
 * Resolves a local buffer of an operation (lkey 0: raw address, and *mr
 * is NULL): TBRDMA_ACCESS_LOCAL_READ for one the engine reads,
 * TBRDMA_ACCESS_LOCAL for one it writes. mr may be NULL.
 */
u8 *tb_mr_local(struct tb_ctx *ctx, struct tb_mr_hint *hint, u64 lkey,
		u64 addr, u64 len, u32 access, struct tb_mr **mr);

/* tb_ep.c */
/* The operation's READ or ATOMIC no longer counts against rd_max. */
void tb_wqe_rd_release(struct tb_wqe *wqe);
/* Which of its link's lists an endpoint with work is on (ep->active). */
#define TB_EP_ON_ACTIVE 1
#define TB_EP_ON_RNR 2
/* Onto the RNR list while rnr_until is set, else the active one. */
void tb_ep_set_active(struct tb_ep *ep);
void tb_ep_clear_active(struct tb_ep *ep);
void tb_wqe_update(struct tb_wqe *wqe);
void tb_ep_complete(struct tb_ep *ep);
void tb_ep_advance_send(struct tb_ep *ep);
void tb_elink_fail_eps(struct tb_elink *el);
/*
 * The link goes: its endpoints leave its list, failed; but with park, a
 * datagram context's wait on the engine's for the link to come back.
 */
void tb_elink_drop_eps(struct tb_elink *el, int park);
/* The endpoints parked for el's link join it (it was added again). */
void tb_elink_adopt_parked(struct tb_elink *el);
/* The endpoints parked for link fail for good (it will not be back). */
void tb_engine_fail_parked(struct tb_engine *e, const struct tb_link *link);
/* A request of ep was refused: ep flushes the rest and takes no more. */
void tb_ep_set_error(struct tb_ep *ep);
/*
 * The target was not ready for wqe (its receive queue was full), so
 * neither wqe nor anything of ep after it ran. It goes again from wqe
 * after a backoff, the first frame with TB_EF_RESUME; after the engine's
 * rnr_timeout it fails instead and ep goes to error.
 */
void tb_ep_rnr(struct tb_ep *ep, struct tb_wqe *wqe, u64 now);
/* Endpoints of el whose backoff ended at now may send again. */
void tb_elink_rnr_wake(struct tb_elink *el, u64 now);

/* tb_requester.c */
/* Sends one request frame from the endpoints of el; 0 if none could go. */
int tb_req_send_one(struct tb_elink *el);

/* tb_responder.c */
int tb_resp_rx(struct tb_elink *el, const struct tb_engine_hdr *h,
	       const u8 *payload);
/* Executes one WRITE chunk: 0, or the NAK status. */
u8 tb_resp_write(struct tb_elink *el, struct tb_ctx *ctx,
		 const struct tb_engine_hdr *h, const u8 *payload);
/* Sends one NAK or ATOMIC response if any is due; returns 1 if sent. */
int tb_resp_send_urgent(struct tb_elink *el);
/* Sends one chunk of READ data if any is due; returns 1 if sent. */
int tb_resp_send_read(struct tb_elink *el);
u32 tb_resp_ack_value(const struct tb_elink *el);
void tb_resp_reset(struct tb_elink *el);

/* tb_recv.c */
/*
 * Places one MSG chunk of h into ctx's posted receive, taking the oldest
 * one at a message's first chunk. Returns 0, a NAK status for the sender,
 * or -EAGAIN when no receive (or no room for its completion) is posted.
 */
int tb_ctx_msg_rx(struct tb_ctx *ctx, struct tb_elink *el,
		  const struct tb_engine_hdr *h, const u8 *data);
/*
 * The last chunk of a WRITE with immediate: written, then completed in
 * ctx's oldest posted receive. Returns as tb_ctx_msg_rx().
 */
int tb_ctx_write_imm_rx(struct tb_ctx *ctx, struct tb_elink *el,
			const struct tb_engine_hdr *h, const u8 *data);
/*
 * A DGRAM: into the oldest receive of the datagram context it names if
 * that admits it and has one posted, else dropped.
 */
void tb_dgram_rx(struct tb_elink *el, const struct tb_engine_hdr *h,
		 const u8 *data);
/*
 * A context of posted receives reset (tb_ctx_reset()): the receive being
 * filled and those posted to its own queue are dropped, without
 * completions; one taken from a shared queue completes flushed.
 */
void tb_ctx_drop_recv(struct tb_ctx *ctx);

/* tb_completer.c */
int tb_comp_rx(struct tb_elink *el, const struct tb_engine_hdr *h,
	       const u8 *payload);
int tb_comp_ack(struct tb_elink *el, u32 ack_msn);

#endif /* TB_ENGINE_PRIV_H */
