// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Messages into posted receives, as a verbs queue pair takes SENDs: the
 * owner of a context posts receives (struct tbrdma_rwqe) to its rwq ring,
 * or to a shared receive queue that several contexts take from in turn;
 * a MSG's first chunk takes the oldest, each chunk lands at its offset in
 * its buffers (a receive of several is a run of entries flagged
 * TBRDMA_RWQE_MORE, laid end to end), and the last completes it in the
 * rcq ring. The rings are the owner's and untrusted: an entry is copied
 * once, when it is taken, and its buffers are checked against the
 * context's regions for each chunk.
 *
 * A context takes in one message at a time, from the sender (link,
 * context, endpoint) whose first chunk took the receive: the chunks of
 * one sender's message come in order, but another's may come between
 * them, and those are refused unless they start a message, which ends the
 * unfinished one with REM_INVALID (a queue pair has one peer, so this is
 * a sender that stopped half-way). An error (too long, a buffer not the
 * owner's) completes the receive at once, and the rest of that message
 * is dropped. A WRITE with immediate takes the oldest receive once its
 * last chunk is written, and completes it with its length and no data;
 * one refused (the target's key or bounds) leaves the receive posted.
 * A DGRAM, one frame, fills and completes a receive at once, or is
 * dropped.
 */
#include "tb_engine_priv.h"

/*
 * Under ctx->lock: completes the receive taken with status, for h (the
 * chunk that ends it: a MSG's or a WRITE's last, a DGRAM, or a stand-in).
 */
static void tb_recv_complete(struct tb_ctx *ctx, const struct tb_engine_hdr *h,
			     u8 status)
{
	struct tb_qring *r = &ctx->rcq;
	struct tbrdma_cqe cqe;

	memset(&cqe, 0, sizeof(cqe));
	cqe.wr_id = ctx->rcv.wr_id;
	cqe.ep = h->src_ctx;
	cqe.byte_len = ctx->rcv.off;
	cqe.status = status;
	cqe.opcode = h->op == TB_EOP_WRITE ? TBRDMA_OP_WRITE :
		     h->op == TB_EOP_DGRAM ? TBRDMA_OP_DGRAM : TBRDMA_OP_MSG;
	if (h->flags & TB_EF_IMM) {
		cqe.flags = TBRDMA_CQE_IMM;
		cqe.result = h->imm;
	}
	memcpy(r->entries + (size_t)(r->head & r->mask) * r->entry_size, &cqe,
	       sizeof(cqe));
	r->head++;
	ctx->rcv.state = TB_RCV_IDLE;
	tb_qring_publish(ctx, r);
}

/* Under ctx->lock: a message still coming in is cut short. */
static void tb_recv_cut(struct tb_ctx *ctx)
{
	struct tb_engine_hdr cut = { .op = TB_EOP_MSG };

	if (ctx->rcv.state == TB_RCV_FILLING)
		tb_recv_complete(ctx, &cut, TBRDMA_WC_REM_INVALID);
	ctx->rcv.state = TB_RCV_IDLE;
}

/* The ring receives come from: the context's, or its shared queue's. */
static struct tb_qring *tb_recv_ring(struct tb_ctx *ctx)
{
	return ctx->srq ? &ctx->srq->rwq : &ctx->rwq;
}

/* Under ctx->lock: contexts on other links take from a shared queue. */
static void tb_recv_lock(struct tb_ctx *ctx)
{
	if (ctx->srq)
		tb_lock(&ctx->srq->lock);
}

static void tb_recv_unlock(struct tb_ctx *ctx)
{
	if (ctx->srq)
		tb_unlock(&ctx->srq->lock);
}

/*
 * Under tb_recv_lock(): whether a receive is posted and its completion
 * will find room (one message is received at a time, so a free entry now
 * is one at its end).
 */
static int tb_recv_ready(struct tb_ctx *ctx)
{
	struct tb_qring *w = tb_recv_ring(ctx), *c = &ctx->rcq;

	/* Acquire: the owner wrote the entry before it moved producer. */
	if (smp_load_acquire(&w->ctrl->producer) == w->head)
		return 0;
	/* Acquire: the owner is done with the completions it consumed. */
	return c->head - smp_load_acquire(&c->ctrl->consumer) <= c->mask;
}

/*
 * Under the shared queue's lock, after a receive was taken: its limit
 * reached when fewer than it are left. Receives are runs of entries, as
 * tb_recv_take() cuts them (at most TBRDMA_RECV_SGE_MAX); the entries
 * left bound their count both ways, and only between the bounds are they
 * counted, up to the limit. The owner's indices bound nothing, the ring's
 * size does.
 */
static void tb_srq_check_limit(struct tb_srq *q)
{
	const struct tb_qring *w = &q->rwq;
	const struct tbrdma_rwqe *e;
	u32 n, at, run = 0, left = 0;

	if (!q->limit)
		return;
	/* Acquire: as tb_recv_ready() reads it. */
	n = smp_load_acquire(&w->ctrl->producer) - w->head;
	if (n > w->mask + 1)
		n = w->mask + 1;
	if ((u64)n >= (u64)q->limit * TBRDMA_RECV_SGE_MAX)
		return;
	for (at = w->head; at != w->head + n && left < q->limit; at++) {
		e = (const void *)(w->entries +
				   (size_t)(at & w->mask) * w->entry_size);
		if (!(READ_ONCE(e->flags) & TBRDMA_RWQE_MORE) ||
		    ++run == TBRDMA_RECV_SGE_MAX) {
			left++;
			run = 0;
		}
	}
	if (left < q->limit) {
		q->limit = 0;
		q->limit_reached(q->limit_arg);
	}
}

/*
 * Under tb_recv_lock(), when ready: takes the oldest posted receive, its
 * run of entries. A run the owner got wrong (longer than
 * TBRDMA_RECV_SGE_MAX, not all published, unknown flags) fails when a
 * message comes into it; what is left of it is taken as a receive of its
 * own.
 */
static void tb_recv_take(struct tb_ctx *ctx)
{
	struct tb_qring *w = tb_recv_ring(ctx);
	struct tb_rcv *r = &ctx->rcv;
	/* Acquire: as tb_recv_ready() reads it. */
	u32 end = smp_load_acquire(&w->ctrl->producer);
	struct tbrdma_rwqe e;

	r->nbuf = 0;
	r->room = 0;
	r->bad = 0;
	do {
		memcpy(&e, w->entries + (size_t)(w->head & w->mask) * w->entry_size,
		       sizeof(e));
		w->head++;
		if (!r->nbuf)
			r->wr_id = e.wr_id;
		r->buf[r->nbuf].addr = e.addr;
		r->buf[r->nbuf].lkey = e.lkey;
		r->buf[r->nbuf].length = e.length;
		r->nbuf++;
		r->room += e.length;
		if (e.flags & ~TBRDMA_RWQE_MORE)
			r->bad = 1;
	} while ((e.flags & TBRDMA_RWQE_MORE) &&
		 r->nbuf < TBRDMA_RECV_SGE_MAX && w->head != end);
	if (e.flags & TBRDMA_RWQE_MORE)
		r->bad = 1;
	/* Release: the owner may write the entries again once it sees this. */
	smp_store_release(&w->ctrl->consumer, w->head);
	r->off = 0;
	r->state = TB_RCV_FILLING;
	if (ctx->srq)
		tb_srq_check_limit(ctx->srq);
}

/* The receive taken is filled by the sender of h, over el. */
static void tb_recv_from(struct tb_rcv *r, const struct tb_elink *el,
			 const struct tb_engine_hdr *h)
{
	r->link_gen = el->gen;
	r->src_ctx = h->src_ctx;
	r->src_ep = h->src_ep;
}

/* Whether h comes from the sender of the message being taken in. */
static int tb_recv_same_sender(const struct tb_rcv *r, const struct tb_elink *el,
			       const struct tb_engine_hdr *h)
{
	return r->state != TB_RCV_IDLE && r->link_gen == el->gen &&
	       r->src_ctx == h->src_ctx && r->src_ep == h->src_ep &&
	       r->off == h->addr;
}

/* Under ctx->lock: places h's bytes; 0 or the receive's error status. */
static u8 tb_recv_place(struct tb_ctx *ctx, struct tb_elink *el,
			const struct tb_engine_hdr *h, const u8 *data)
{
	struct tb_rcv *r = &ctx->rcv;
	u64 at = r->off;	/* into the buffers, laid end to end */
	u32 left = h->len, i, n;
	u8 *dst;

	if (r->bad)
		return TBRDMA_WC_LOC_ACCESS_ERR;
	if (h->len > r->room - r->off)
		return TBRDMA_WC_LOC_LEN_ERR;
	for (i = 0; left && i < r->nbuf; i++) {
		const struct tb_rcv_buf *b = &r->buf[i];

		if (at >= b->length) {
			at -= b->length;
			continue;
		}
		n = b->length - at < left ? (u32)(b->length - at) : left;
		dst = tb_mr_local(ctx, &el->hint_remote, b->lkey, b->addr + at,
				  n, TBRDMA_ACCESS_LOCAL, NULL);
		if (!dst)
			return TBRDMA_WC_LOC_ACCESS_ERR;
		memcpy(dst, data, n);
		data += n;
		left -= n;
		at = 0;
	}
	return 0;
}

int tb_ctx_msg_rx(struct tb_ctx *ctx, struct tb_elink *el,
		  const struct tb_engine_hdr *h, const u8 *data)
{
	struct tb_rcv *r = &ctx->rcv;
	u8 status, nak = 0;
	int ready;

	tb_lock(&ctx->lock);
	if (!h->addr) {
		tb_recv_cut(ctx);
		tb_recv_lock(ctx);
		ready = tb_recv_ready(ctx);
		if (ready)
			tb_recv_take(ctx);
		tb_recv_unlock(ctx);
		if (!ready) {
			tb_unlock(&ctx->lock);
			return -EAGAIN;
		}
		tb_recv_from(r, el, h);
	} else if (!tb_recv_same_sender(r, el, h)) {
		tb_unlock(&ctx->lock);
		return TBRDMA_WC_REM_INVALID;	/* not the chunk that follows */
	}
	if (r->state == TB_RCV_FILLING) {
		status = tb_recv_place(ctx, el, h, data);
		if (status) {
			/* Done with an error now; the sender hears of it. */
			tb_recv_complete(ctx, h, status);
			r->state = TB_RCV_DROPPING;
			nak = TBRDMA_WC_REM_INVALID;
		}
	}
	r->off += h->len;
	if (h->flags & TB_EF_LAST) {
		if (r->state == TB_RCV_FILLING)
			tb_recv_complete(ctx, h, 0);
		r->state = TB_RCV_IDLE;
	}
	tb_unlock(&ctx->lock);
	return nak;
}

int tb_ctx_write_imm_rx(struct tb_ctx *ctx, struct tb_elink *el,
			const struct tb_engine_hdr *h, const u8 *data)
{
	u8 status;

	tb_lock(&ctx->lock);
	tb_recv_cut(ctx);
	/*
	 * A receive first: without one the WRITE is resent, all of it. A
	 * WRITE refused leaves the receive alone.
	 */
	tb_recv_lock(ctx);
	if (!tb_recv_ready(ctx)) {
		tb_recv_unlock(ctx);
		tb_unlock(&ctx->lock);
		return -EAGAIN;
	}
	status = tb_resp_write(el, ctx, h, data);
	if (!status)
		tb_recv_take(ctx);
	tb_recv_unlock(ctx);
	if (!status) {
		ctx->rcv.off = (u32)h->compare;
		tb_recv_complete(ctx, h, 0);
	}
	tb_unlock(&ctx->lock);
	return status;
}

/* Whether ctx takes the DGRAM h, which arrived over el. */
static int tb_dgram_admits(const struct tb_ctx *ctx, const struct tb_elink *el,
			   const struct tb_engine_hdr *h)
{
	return ctx && ctx->cfg.dgram && !READ_ONCE(ctx->error) &&
	       ctx->qkey_set && h->dst_secret == ctx->qkey &&
	       el->link->fabric == ctx->cfg.fabric;
}

void tb_dgram_rx(struct tb_elink *el, const struct tb_engine_hdr *h,
		 const u8 *data)
{
	struct tb_ctx *ctx = tb_ctx_lookup(el->e, h->dst_ctx);
	int ready = 0;
	u8 status;

	if (tb_dgram_admits(ctx, el, h)) {
		tb_lock(&ctx->lock);
		tb_recv_lock(ctx);
		ready = tb_recv_ready(ctx);
		if (ready)
			tb_recv_take(ctx);
		tb_recv_unlock(ctx);
		if (ready) {
			status = tb_recv_place(ctx, el, h, data);
			ctx->rcv.off = h->len;
			tb_recv_complete(ctx, h, status);
		}
		tb_unlock(&ctx->lock);
	}
	if (!ready)
		el->link->stats.rx_dgram_dropped++;
}

void tb_ctx_drop_recv(struct tb_ctx *ctx)
{
	struct tb_engine_hdr flush = { .op = TB_EOP_MSG };

	tb_lock(&ctx->lock);
	/* A shared queue's receive comes back to its owner, flushed. */
	if (ctx->srq && ctx->rcv.state == TB_RCV_FILLING)
		tb_recv_complete(ctx, &flush, TBRDMA_WC_FLUSH_ERR);
	ctx->rcv.state = TB_RCV_IDLE;
	if (!ctx->srq) {
		struct tb_qring *w = &ctx->rwq;

		/* Acquire: as tb_recv_take() reads it. */
		w->head = smp_load_acquire(&w->ctrl->producer);
		/* Release: the owner may write the entries again. */
		smp_store_release(&w->ctrl->consumer, w->head);
	}
	tb_unlock(&ctx->lock);
}

u32 tb_ctx_flush_recv(struct tb_ctx *ctx)
{
	struct tb_engine_hdr flush = { .op = TB_EOP_MSG };
	u32 left, n;

	tb_lock(&ctx->lock);
	if (ctx->rcv.state == TB_RCV_FILLING)
		tb_recv_complete(ctx, &flush, TBRDMA_WC_FLUSH_ERR);
	ctx->rcv.state = TB_RCV_IDLE;
	/* A shared queue's receives stay for the other contexts. */
	if (ctx->srq) {
		tb_unlock(&ctx->lock);
		return 0;
	}
	/*
	 * A ring of completions at most, however the owner moves the
	 * indices meanwhile.
	 */
	for (n = 0; n <= ctx->rcq.mask && tb_recv_ready(ctx); n++) {
		tb_recv_take(ctx);
		tb_recv_complete(ctx, &flush, TBRDMA_WC_FLUSH_ERR);
	}
	/* Acquire: as tb_recv_ready() reads it. */
	left = smp_load_acquire(&ctx->rwq.ctrl->producer) - ctx->rwq.head;
	tb_unlock(&ctx->lock);
	return left;
}
