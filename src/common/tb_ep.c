// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Endpoints: posting, and completion in posting order. An operation is
 * finished when it has nothing more to send, the responder executed every
 * frame sent for it, and every response it waits for has arrived; the
 * completion ring sees finished operations in order, so a FLUSH (which
 * at most asks the peer for its delayed ack) completes exactly when
 * everything before it did.
 */
#include "tb_engine_priv.h"

static struct tb_ep *tb_ep_find(struct tb_ctx *ctx, u32 handle)
{
	u32 i = handle & (ctx->cfg.max_ep - 1);
	struct tb_ep *ep = NULL;

	/* The handle is the user's: the table may be smaller than max_ep. */
	if (i < ctx->ep_slots)
		ep = ctx->eps[tb_index_nospec(i, ctx->ep_slots)];
	return ep && ep->handle == handle ? ep : NULL;
}

/* A free slot in the table, doubling it when full; -ENOSPC at max_ep. */
static int tb_ep_slot(struct tb_ctx *ctx)
{
	struct tb_ep **eps;
	u32 i, n;

	if (ctx->nr_eps < ctx->ep_slots) {
		for (n = 0; n < ctx->ep_slots; n++) {
			i = (ctx->ep_next + n) & (ctx->ep_slots - 1);
			if (!ctx->eps[i])
				return (int)i;
		}
	}
	if (ctx->ep_slots == ctx->cfg.max_ep)
		return -ENOSPC;
	eps = tb_zalloc(sizeof(*eps) * ctx->ep_slots * 2);
	if (!eps)
		return -ENOMEM;
	memcpy(eps, ctx->eps, sizeof(*eps) * ctx->ep_slots);
	tb_free(ctx->eps);
	ctx->eps = eps;
	ctx->ep_slots *= 2;
	return (int)(ctx->ep_slots / 2);
}

/* Onto a list of endpoints (a link's, or the engine's parked ones). */
static void tb_ep_list_add(struct tb_ep **head, struct tb_ep *ep)
{
	ep->link_prev = NULL;
	ep->link_next = *head;
	if (ep->link_next)
		ep->link_next->link_prev = ep;
	*head = ep;
}

static void tb_ep_list_del(struct tb_ep **head, struct tb_ep *ep)
{
	if (ep->link_prev)
		ep->link_prev->link_next = ep->link_next;
	else
		*head = ep->link_next;
	if (ep->link_next)
		ep->link_next->link_prev = ep->link_prev;
	ep->link_next = NULL;
	ep->link_prev = NULL;
}

int tb_ep_prepare(struct tb_ctx *ctx)
{
	int i;

	if (!ctx->ep_spare) {
		ctx->ep_spare = tb_zalloc(sizeof(*ctx->ep_spare));
		if (!ctx->ep_spare)
			return -ENOMEM;
	}
	/* A free slot, the table grown if need be; taken by tb_ep_create(). */
	i = tb_ep_slot(ctx);
	return i < 0 ? i : 0;
}

int tb_ep_create(struct tb_ctx *ctx, u32 link_index, u32 remote_ctx,
		 u64 remote_secret)
{
	struct tb_engine *e = ctx->e;
	struct tb_ep *ep;
	int i;

	if (link_index >= e->cfg.max_links || !e->links[link_index].link)
		return -ENODEV;
	/* A datagram one waits for the link, as a UD queue pair its port. */
	if (e->links[link_index].link->state == TBRDMA_LINK_DOWN &&
	    !ctx->cfg.dgram)
		return -ENOTCONN;
	i = tb_ep_prepare(ctx);
	if (i < 0)
		return i;
	/* Allocates nothing now: the slot is there. */
	i = tb_ep_slot(ctx);
	ep = ctx->ep_spare;
	ctx->ep_spare = NULL;
	ctx->ep_next = (u32)i + 1;
	ctx->nr_eps++;
	/* Handles stay positive ints: 31 bits, generation above the index. */
	ctx->ep_gen++;
	ep->handle = ((ctx->ep_gen << ctx->ep_bits) | (u32)i) & 0x7fffffffu;
	ep->ctx = ctx;
	ep->el = &e->links[link_index];
	ep->remote_ctx = remote_ctx;
	ep->remote_secret = remote_secret;
	tb_ep_list_add(&ep->el->eps, ep);
	ep->on_link = 1;
	ctx->eps[i] = ep;
	return (int)ep->handle;
}

static void tb_ep_queue_add(struct tb_ep **head, struct tb_ep **tail,
			    struct tb_ep *ep)
{
	ep->next_active = NULL;
	ep->prev_active = *tail;
	if (*tail)
		(*tail)->next_active = ep;
	else
		*head = ep;
	*tail = ep;
}

static void tb_ep_queue_del(struct tb_ep **head, struct tb_ep **tail,
			    struct tb_ep *ep)
{
	if (ep->prev_active)
		ep->prev_active->next_active = ep->next_active;
	else
		*head = ep->next_active;
	if (ep->next_active)
		ep->next_active->prev_active = ep->prev_active;
	else
		*tail = ep->prev_active;
	ep->next_active = NULL;
	ep->prev_active = NULL;
}

void tb_ep_set_active(struct tb_ep *ep)
{
	struct tb_elink *el = ep->el;

	if (ep->active)
		return;
	if (ep->rnr_until) {
		ep->active = TB_EP_ON_RNR;
		tb_ep_queue_add(&el->rnr_head, &el->rnr_tail, ep);
		if (!el->rnr_wake_ns || ep->rnr_until < el->rnr_wake_ns)
			el->rnr_wake_ns = ep->rnr_until;
	} else {
		ep->active = TB_EP_ON_ACTIVE;
		tb_ep_queue_add(&el->active_head, &el->active_tail, ep);
	}
}

void tb_ep_clear_active(struct tb_ep *ep)
{
	struct tb_elink *el = ep->el;

	if (ep->active == TB_EP_ON_RNR)
		tb_ep_queue_del(&el->rnr_head, &el->rnr_tail, ep);
	else if (ep->active)
		tb_ep_queue_del(&el->active_head, &el->active_tail, ep);
	ep->active = 0;
}

/* Marks the operation acked once the responder executed all it got. */
void tb_wqe_update(struct tb_wqe *wqe)
{
	if (wqe->sent_all && !wqe->acked &&
	    (!wqe->has_msn ||
	     !tb_seq_after(wqe->last_msn, wqe->ep->el->msn_acked)))
		wqe->acked = 1;
}

static int tb_wqe_finished(const struct tb_wqe *wqe)
{
	return wqe->sent_all && wqe->acked && !wqe->resp_pending;
}

/* Request frames of wqe that the link still remembers lead nowhere now. */
static void tb_wqe_forget_msns(struct tb_wqe *wqe)
{
	struct tb_elink *el = wqe->ep->el;
	u32 m;

	if (!wqe->has_msn || !el->msn_ring)
		return;
	m = tb_seq_before(wqe->first_msn, el->msn_tail) ? el->msn_tail :
							  wqe->first_msn;
	for (; m != el->msn_next && !tb_seq_after(m, wqe->last_msn); m++) {
		struct tb_msn_ent *ent =
			&el->msn_ring[m & (el->e->cfg.msn_window - 1)];

		if (ent->msn == m && ent->wqe == wqe)
			ent->wqe = NULL;
	}
}

void tb_wqe_rd_release(struct tb_wqe *wqe)
{
	if (wqe->rd_counted) {
		wqe->rd_counted = 0;
		wqe->ep->rd_wqes--;
	}
}

/* Back to the pool (under ctx->lock): another operation reuses it. */
static void tb_wqe_free(struct tb_ctx *ctx, struct tb_wqe *wqe)
{
	/* One that failed or was flushed may never have been answered. */
	tb_wqe_rd_release(wqe);
	tb_wqe_forget_msns(wqe);
	if (wqe->ep->rnr_wqe == wqe)
		wqe->ep->rnr_wqe = NULL;
	wqe->ep = NULL;
	wqe->next = ctx->wqe_free;
	ctx->wqe_free = wqe;
}

/* Writes completions for finished operations at the head, in order. */
void tb_ep_complete(struct tb_ep *ep)
{
	struct tb_ctx *ctx = ep->ctx;
	struct tb_wqe *wqe;

	tb_lock(&ctx->lock);
	while ((wqe = ep->head) && wqe != ep->send) {
		struct tbrdma_cqe cqe;

		if (!tb_wqe_finished(wqe))
			break;
		if (wqe->status == TBRDMA_WC_SUCCESS &&
		    wqe->sqe.opcode == TBRDMA_OP_READ &&
		    wqe->recvd != wqe->sqe.length)
			wqe->status = TBRDMA_WC_REM_INVALID;
		if (wqe->status != TBRDMA_WC_SUCCESS ||
		    !(wqe->sqe.flags & TBRDMA_SQE_SILENT)) {
			memset(&cqe, 0, sizeof(cqe));
			cqe.wr_id = wqe->sqe.wr_id;
			cqe.result = wqe->result;
			cqe.ep = ep->handle;
			cqe.byte_len = wqe->sqe.opcode == TBRDMA_OP_ATOMIC ?
				       wqe->sqe.atomic_size : wqe->sqe.length;
			cqe.status = wqe->status;
			cqe.opcode = wqe->sqe.opcode;
			tb_ctx_push_cqe(ctx, &cqe);
		}
		ep->head = wqe->next;
		if (!ep->head)
			ep->tail = NULL;
		ep->count--;
		ctx->outstanding--;
		tb_wqe_free(ctx, wqe);
	}
	tb_unlock(&ctx->lock);
}

static int tb_op_needs_frames(const struct tbrdma_sqe *sqe)
{
	switch (sqe->opcode) {
	case TBRDMA_OP_READ:
		return sqe->length != 0;
	case TBRDMA_OP_FLUSH:
		return 0;
	default:
		return 1;
	}
}

/*
 * Whether wqe starts a datagram whose last part is not posted yet (at
 * most TBRDMA_DGRAM_PARTS_MAX to look at).
 */
static int tb_dgram_open(const struct tb_wqe *wqe)
{
	if (wqe->sqe.opcode != TBRDMA_OP_DGRAM)
		return 0;
	while ((wqe->sqe.flags & TBRDMA_SQE_MORE) && wqe->next)
		wqe = wqe->next;
	return !!(wqe->sqe.flags & TBRDMA_SQE_MORE);
}

/*
 * Moves the send position past operations that need no (more) frames,
 * and drops the endpoint from its link's list when nothing is left, or
 * when what is next is a datagram that waits for its last part.
 */
void tb_ep_advance_send(struct tb_ep *ep)
{
	struct tb_wqe *wqe;

	while ((wqe = ep->send)) {
		if (!wqe->sent_all && tb_op_needs_frames(&wqe->sqe))
			break;
		wqe->sent_all = 1;
		tb_wqe_update(wqe);
		ep->send = wqe->next;
	}
	if (!ep->send || tb_dgram_open(ep->send))
		tb_ep_clear_active(ep);
	else
		tb_ep_set_active(ep);
	tb_ep_complete(ep);
}

int tb_sqe_valid(const struct tbrdma_sqe *sqe)
{
	int inl = sqe->flags & TBRDMA_SQE_INLINE;

	if (sqe->flags & ~(u32)TBRDMA_SQE_FLAGS_ALL)
		return 0;
	if ((sqe->flags & TBRDMA_SQE_IMM) && sqe->opcode != TBRDMA_OP_WRITE &&
	    sqe->opcode != TBRDMA_OP_MSG && sqe->opcode != TBRDMA_OP_DGRAM)
		return 0;
	/* A message's part: its offset in it bounded as its length is. */
	if ((sqe->flags & TBRDMA_SQE_MORE) &&
	    ((sqe->opcode != TBRDMA_OP_MSG && sqe->opcode != TBRDMA_OP_DGRAM) ||
	     (sqe->flags & TBRDMA_SQE_IMM)))
		return 0;
	if (sqe->opcode == TBRDMA_OP_MSG &&
	    (sqe->remote_addr > TBRDMA_XFER_MAX ||
	     sqe->length > TBRDMA_XFER_MAX - sqe->remote_addr))
		return 0;
	/*
	 * A datagram's parts fill one frame: the requester relies on it. Its
	 * Q_Key is 32 bits.
	 */
	if (sqe->opcode == TBRDMA_OP_DGRAM &&
	    (sqe->remote_addr > TBRDMA_SEND_MAX ||
	     sqe->length > TBRDMA_SEND_MAX - sqe->remote_addr ||
	     sqe->rkey > 0xffffffffull))
		return 0;
	switch (sqe->opcode) {
	case TBRDMA_OP_WRITE:
		return sqe->length <= (inl ? TBRDMA_INLINE_MAX : TBRDMA_XFER_MAX);
	case TBRDMA_OP_READ:
		return !inl && sqe->length <= TBRDMA_XFER_MAX;
	/*
	 * INLINE only for WRITE, SEND, MSG and DGRAM, whose length is bounded
	 * above: tb_post() copies sqe->length inline bytes when the flag is
	 * set.
	 */
	case TBRDMA_OP_ATOMIC:
		return !inl && (sqe->atomic_size == 4 || sqe->atomic_size == 8) &&
		       sqe->atomic_op <= TBRDMA_ATOMIC_MAX &&
		       !(sqe->remote_addr & (sqe->atomic_size - 1));
	case TBRDMA_OP_SEND:
	case TBRDMA_OP_DGRAM:
		return sqe->length <= (inl ? TBRDMA_INLINE_MAX : TBRDMA_SEND_MAX);
	case TBRDMA_OP_MSG:
		return sqe->length <= (inl ? TBRDMA_INLINE_MAX : TBRDMA_XFER_MAX);
	case TBRDMA_OP_FLUSH:
		return !inl;
	default:
		return 0;
	}
}

/*
 * Whether one more completion fits beside those of the operations in
 * flight (under ctx->lock).
 */
static int tb_ctx_cq_room(struct tb_ctx *ctx)
{
	struct tb_qring *cq = &ctx->cq;
	/* Acquire: the process is done with the entries it released. */
	u32 consumed = smp_load_acquire(&cq->ctrl->consumer);

	return (u64)ctx->outstanding + (u32)(cq->head - consumed) <= cq->mask;
}

int tb_post(struct tb_ctx *ctx, const struct tbrdma_sqe *sqe)
{
	struct tb_ep *ep = tb_ep_find(ctx, sqe->ep);
	struct tb_wqe *wqe;
	size_t copy;
	u32 parts;
	int dgram;
	int down;

	if (!ep)
		return -ENOENT;
	/*
	 * A datagram context's endpoint names no peer: datagrams alone, and
	 * only there (the responder's holds and resends know nothing of
	 * them). A datagram has at most TBRDMA_DGRAM_PARTS_MAX parts.
	 */
	dgram = sqe->opcode == TBRDMA_OP_DGRAM;
	if (!tb_sqe_valid(sqe) || dgram != !!ctx->cfg.dgram)
		return -EINVAL;
	parts = ep->dgram_parts + 1;
	if (parts > TBRDMA_DGRAM_PARTS_MAX ||
	    (parts == TBRDMA_DGRAM_PARTS_MAX && (sqe->flags & TBRDMA_SQE_MORE)))
		return -EINVAL;
	if (ep->count >= ctx->cfg.sq_depth)
		return -EAGAIN;
	/*
	 * Every operation in flight owns a completion slot, so the pool (one
	 * operation per slot) is never empty here.
	 */
	tb_lock(&ctx->lock);
	if (!tb_ctx_cq_room(ctx) || TB_WARN_ON(!ctx->wqe_free)) {
		tb_unlock(&ctx->lock);
		return -EAGAIN;
	}
	wqe = ctx->wqe_free;
	ctx->wqe_free = wqe->next;
	ctx->outstanding++;
	tb_unlock(&ctx->lock);
	copy = offsetof(struct tbrdma_sqe, inline_data);
	if (sqe->flags & TBRDMA_SQE_INLINE)
		copy += sqe->length;
	/* Whole struct: a memset across fields trips FORTIFY_SOURCE. */
	memset(wqe, 0, sizeof(*wqe));
	memcpy(&wqe->sqe, sqe, copy);
	wqe->ep = ep;
	if (ctx->cfg.dgram) {
		ep->dgram_parts = sqe->flags & TBRDMA_SQE_MORE ? parts : 0;
		/* A controlled Q_Key: the sender's own, which it may use. */
		if (sqe->rkey & 0x80000000u)
			wqe->sqe.rkey = ctx->qkey;
	}
	/* As on a verbs QP in error: accepted, and flushed at once. */
	down = ep->failed || ep->error || !ep->on_link ||
	       ep->el->link->state == TBRDMA_LINK_DOWN || ep->dgram_lost;
	/* The rest of a datagram that lost a part goes the same way. */
	ep->dgram_lost = down && ctx->cfg.dgram &&
			 (sqe->flags & TBRDMA_SQE_MORE);
	if (down) {
		/* Else a datagram, lost as on a UD queue pair's port down. */
		if (ep->error && !ep->failed)
			wqe->status = TBRDMA_WC_FLUSH_ERR;
		else if (ep->failed || !ctx->cfg.dgram)
			wqe->status = TBRDMA_WC_LINK_DOWN;
		wqe->sent_all = 1;
		wqe->acked = 1;
	}
	/*
	 * A FLUSH behind a WRITE, SEND or MSG that went out without asking
	 * for its ack: the ack must not wait now.
	 */
	if (!down && sqe->opcode == TBRDMA_OP_FLUSH && ep->tail &&
	    (ep->tail->sqe.opcode == TBRDMA_OP_WRITE ||
	     ep->tail->sqe.opcode == TBRDMA_OP_SEND ||
	     ep->tail->sqe.opcode == TBRDMA_OP_MSG) &&
	    (ep->tail->sqe.flags &
	     (TBRDMA_SQE_SILENT | TBRDMA_SQE_DELAY_ACK)) &&
	    ep->tail->sent_all && !ep->tail->acked)
		ep->el->ack_wanted = 1;
	if (ep->tail)
		ep->tail->next = wqe;
	else
		ep->head = wqe;
	ep->tail = wqe;
	if (!ep->send)
		ep->send = wqe;
	ep->count++;
	tb_ep_advance_send(ep);
	if (!down && ep->el->link->state == TBRDMA_LINK_UP) {
		tb_link_clock(ep->el->link, tb_now_ns());
		tb_elink_tx(ep->el);
	}
	return 0;
}

int tb_post_refused(struct tb_ctx *ctx, const struct tbrdma_sqe *sqe)
{
	struct tbrdma_cqe cqe;

	memset(&cqe, 0, sizeof(cqe));
	cqe.wr_id = sqe->wr_id;
	cqe.ep = sqe->ep;
	/* As a verbs queue pair in ERR flushes what it never executes. */
	cqe.status = READ_ONCE(ctx->error) ? TBRDMA_WC_FLUSH_ERR :
					     TBRDMA_WC_REFUSED;
	cqe.opcode = sqe->opcode;
	tb_lock(&ctx->lock);
	if (!tb_ctx_cq_room(ctx)) {
		tb_unlock(&ctx->lock);
		return -EAGAIN;
	}
	tb_ctx_push_cqe(ctx, &cqe);
	tb_unlock(&ctx->lock);
	return 0;
}

/*
 * Ends every operation of ep with status, or without any completion when
 * silent (the endpoint is going away).
 */
static void tb_ep_abort(struct tb_ep *ep, u8 status, int silent)
{
	struct tb_wqe *wqe;

	for (wqe = ep->head; wqe; wqe = wqe->next) {
		if (silent) {
			wqe->sqe.flags |= TBRDMA_SQE_SILENT;
			wqe->status = TBRDMA_WC_SUCCESS;
		} else if (wqe->status == TBRDMA_WC_SUCCESS) {
			wqe->status = status;
		}
		wqe->sent_all = 1;
		wqe->acked = 1;
		wqe->resp_pending = 0;
	}
	ep->send = NULL;
	ep->rnr_until = 0;
	/* A datagram open at its tail goes whole: its next parts too. */
	ep->dgram_lost = ep->dgram_parts != 0;
	tb_ep_clear_active(ep);
	tb_ep_complete(ep);
}

void tb_ep_set_error(struct tb_ep *ep)
{
	struct tb_wqe *wqe;

	ep->error = 1;
	/* What has frames on the wire finishes as the peer answers it. */
	for (wqe = ep->send; wqe; wqe = wqe->next) {
		if (wqe->status == TBRDMA_WC_SUCCESS)
			wqe->status = TBRDMA_WC_FLUSH_ERR;
		wqe->sent_all = 1;
		tb_wqe_update(wqe);
	}
	ep->send = NULL;
	ep->rnr_until = 0;
	tb_ep_clear_active(ep);
	tb_ep_complete(ep);
}

void tb_ep_rnr(struct tb_ep *ep, struct tb_wqe *wqe, u64 now)
{
	struct tb_elink *el = ep->el;
	struct tb_wqe *w;

	/* Nothing of it or after it ran: every frame sent goes again. */
	for (w = wqe; w; w = w->next) {
		if (!w->has_msn)
			continue;
		tb_wqe_forget_msns(w);
		w->sent = 0;
		w->recvd = 0;
		w->resp_pending = 0;
		w->has_msn = 0;
		w->sent_all = 0;
		w->acked = 0;
	}
	ep->send = wqe;
	if (ep->rnr_wqe != wqe) {
		ep->rnr_wqe = wqe;
		ep->rnr_since = now;
		ep->rnr_delay = ep->ctx->cfg.rnr_delay_ns ?: TB_RNR_DELAY_MIN_NS;
		ep->rnr_count = 1;
	} else {
		if (ep->rnr_delay < TB_RNR_DELAY_MAX_NS)
			ep->rnr_delay *= 2;
		ep->rnr_count++;
	}
	if (ep->error || now - ep->rnr_since >= el->e->cfg.rnr_timeout_ns ||
	    (ep->ctx->cfg.rnr_tries &&
	     ep->rnr_count >= ep->ctx->cfg.rnr_tries)) {
		if (wqe->status == TBRDMA_WC_SUCCESS)
			wqe->status = ep->error ? TBRDMA_WC_FLUSH_ERR :
						  TBRDMA_WC_RNR_RETRY_EXC_ERR;
		wqe->sent_all = 1;
		tb_wqe_update(wqe);
		tb_ep_set_error(ep);
		return;
	}
	ep->rnr_resume = 1;
	ep->rnr_until = now + ep->rnr_delay;
	/* Off the active list, if it was there, onto the RNR one. */
	tb_ep_clear_active(ep);
	tb_ep_set_active(ep);
}

void tb_elink_rnr_wake(struct tb_elink *el, u64 now)
{
	struct tb_ep *ep, *after;
	u64 next = 0;

	for (ep = el->rnr_head; ep; ep = after) {
		after = ep->next_active;
		if (ep->rnr_until > now) {
			if (!next || ep->rnr_until < next)
				next = ep->rnr_until;
			continue;
		}
		ep->rnr_until = 0;
		tb_ep_clear_active(ep);
		tb_ep_set_active(ep);
	}
	el->rnr_wake_ns = next;
}

void tb_ctx_set_error(struct tb_ctx *ctx)
{
	u32 i;

	WRITE_ONCE(ctx->error, 1);
	for (i = 0; i < ctx->ep_slots; i++) {
		struct tb_ep *ep = ctx->eps[i];

		if (!ep)
			continue;
		tb_ep_abort(ep, TBRDMA_WC_FLUSH_ERR, 0);
		ep->error = 1;
	}
	if (ctx->rcq.ctrl)
		tb_ctx_flush_recv(ctx);
}

int tb_ep_cancel(struct tb_ctx *ctx, u32 handle)
{
	struct tb_ep *ep = tb_ep_find(ctx, handle);

	if (!ep)
		return -ENOENT;
	tb_ep_abort(ep, TBRDMA_WC_CANCELED, 0);
	return 0;
}

int tb_ep_destroy(struct tb_ctx *ctx, u32 handle)
{
	struct tb_ep *ep = tb_ep_find(ctx, handle);

	if (!ep)
		return -ENOENT;
	tb_ep_abort(ep, TBRDMA_WC_CANCELED, 1);
	if (ep->on_link)
		tb_ep_list_del(&ep->el->eps, ep);
	else if (ep->parked_link)
		tb_ep_list_del(&ctx->e->parked, ep);
	ctx->eps[handle & (ctx->cfg.max_ep - 1)] = NULL;
	ctx->nr_eps--;
	tb_free(ep);
	return 0;
}

int tb_ep_link(struct tb_ctx *ctx, u32 handle)
{
	struct tb_ep *ep = tb_ep_find(ctx, handle);

	/* Not el->index: a removed link's slot may be being set up again. */
	return ep ? (int)(READ_ONCE(ep->el) - ctx->e->links) : -ENOENT;
}

int tb_ep_state(struct tb_ctx *ctx, u32 handle, u32 *outstanding)
{
	struct tb_ep *ep = tb_ep_find(ctx, handle);

	if (!ep)
		return -ENOENT;
	if (outstanding)
		*outstanding = ep->count;
	if (ep->failed || !ep->on_link)
		return TBRDMA_LINK_DOWN;
	return (int)ep->el->link->state;
}

/*
 * The link died: every endpoint on it fails everything it has; a datagram
 * context's loses its datagrams (they complete, as sent) and stays usable.
 */
void tb_elink_fail_eps(struct tb_elink *el)
{
	struct tb_ep *ep;

	for (ep = el->eps; ep; ep = ep->link_next) {
		if (ep->ctx->cfg.dgram) {
			tb_ep_abort(ep, TBRDMA_WC_SUCCESS, 0);
			continue;
		}
		ep->failed = 1;
		tb_ep_abort(ep, TBRDMA_WC_LINK_DOWN, 0);
	}
	tb_resp_reset(el);
	el->rd_outstanding = 0;
	el->msn_tail = el->msn_next;
}

void tb_elink_drop_eps(struct tb_elink *el, int park)
{
	struct tb_ep *ep;

	while ((ep = el->eps)) {
		tb_ep_list_del(&el->eps, ep);
		ep->on_link = 0;
		if (park && ep->ctx->cfg.dgram) {
			ep->parked_link = el->link;
			tb_ep_list_add(&el->e->parked, ep);
		} else {
			ep->failed = 1;
		}
	}
}

void tb_elink_adopt_parked(struct tb_elink *el)
{
	struct tb_ep *ep, *next;

	for (ep = el->e->parked; ep; ep = next) {
		next = ep->link_next;
		if (ep->parked_link != el->link)
			continue;
		tb_ep_list_del(&el->e->parked, ep);
		ep->parked_link = NULL;
		WRITE_ONCE(ep->el, el);	/* tb_ep_link() reads it unlocked */
		tb_ep_list_add(&el->eps, ep);
		ep->on_link = 1;
	}
}

void tb_engine_fail_parked(struct tb_engine *e, const struct tb_link *link)
{
	struct tb_ep *ep, *next;

	for (ep = e->parked; ep; ep = next) {
		next = ep->link_next;
		if (ep->parked_link != link)
			continue;
		tb_ep_list_del(&e->parked, ep);
		ep->parked_link = NULL;
		ep->failed = 1;
	}
}
