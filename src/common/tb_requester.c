// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Requester: cuts posted operations into request frames. Endpoints with
 * work are served round robin, one frame each, so a small message on one
 * endpoint waits for at most one chunk of a large transfer on another. An
 * endpoint backing off after an RNR_NAK is passed over until it may send.
 */
#include "tb_engine_priv.h"

static int tb_req_msn_room(const struct tb_elink *el)
{
	return el->msn_next - el->msn_tail < el->e->cfg.msn_window;
}

static u32 tb_req_take_msn(struct tb_elink *el, struct tb_wqe *wqe,
			   int awaiting)
{
	u32 msn = el->msn_next++;
	struct tb_msn_ent *ent = &el->msn_ring[msn & (el->e->cfg.msn_window - 1)];

	ent->wqe = wqe;
	ent->msn = msn;
	ent->awaiting = (u8)awaiting;
	if (awaiting) {
		el->rd_outstanding++;
		wqe->resp_pending++;
		if (!wqe->rd_counted) {
			wqe->rd_counted = 1;
			wqe->ep->rd_wqes++;
		}
	}
	if (!wqe->has_msn)
		wqe->first_msn = msn;
	wqe->last_msn = msn;
	wqe->has_msn = 1;
	return msn;
}

/* The header of a request frame that is about to go out. */
static void tb_req_hdr(struct tb_engine_hdr *h, const struct tb_wqe *wqe,
		       u8 op)
{
	struct tb_ep *ep = wqe->ep;

	memset(h, 0, sizeof(*h));
	h->op = op;
	h->dst_ctx = ep->remote_ctx;
	h->dst_secret = ep->remote_secret;
	h->src_ctx = ep->ctx->id;
	h->src_ep = ep->handle;
	h->rkey = wqe->sqe.rkey;
	if (ep->rnr_resume) {
		h->flags = TB_EF_RESUME;
		ep->rnr_resume = 0;
	}
}

/*
 * Where the bytes of a WRITE, SEND, MSG or DGRAM come from, or NULL; *mr
 * is their region (NULL: inline or raw memory).
 */
static const u8 *tb_req_source(struct tb_elink *el, struct tb_wqe *wqe,
			       u32 off, u32 len, struct tb_mr **mr)
{
	*mr = NULL;
	if (wqe->sqe.flags & TBRDMA_SQE_INLINE)
		return wqe->sqe.inline_data + off;
	return tb_mr_local(wqe->ep->ctx, &el->hint_local, wqe->sqe.lkey,
			   wqe->sqe.local_addr + off, len,
			   TBRDMA_ACCESS_LOCAL_READ, mr);
}

/*
 * Whether the last frame of a WRITE, SEND, MSG or DGRAM asks for the
 * target's ack at once: somebody waits for its completion, or a FLUSH
 * behind it does.
 */
static u8 tb_req_ack_flag(const struct tb_wqe *wqe)
{
	if (!(wqe->sqe.flags & (TBRDMA_SQE_SILENT | TBRDMA_SQE_DELAY_ACK)) ||
	    (wqe->next && wqe->next->sqe.opcode == TBRDMA_OP_FLUSH))
		return TB_EF_ACK_NOW;
	return 0;
}

/* The operation ends here without (more) frames, with status. */
static void tb_req_stop(struct tb_wqe *wqe, u8 status)
{
	if (wqe->status == TBRDMA_WC_SUCCESS)
		wqe->status = status;
	wqe->sent_all = 1;
}

/*
 * The next chunk of a WRITE (at its remote address) or a MSG (at its
 * offset in the message, TB_EF_LAST on the message's last); the last one
 * says whether it has an immediate.
 */
static void tb_req_write(struct tb_elink *el, struct tb_wqe *wqe)
{
	u32 left = wqe->sqe.length - wqe->sent;
	int msg = wqe->sqe.opcode == TBRDMA_OP_MSG;
	struct tb_engine_hdr h;
	struct tb_mr *mr = NULL;
	const u8 *src = NULL;
	u32 chunk = 0;
	int ext = 0;

	/* Nothing to send (a ping, an empty message): no source to look up. */
	if (left) {
		/* The whole rest is checked once, so every chunk is inside. */
		src = tb_req_source(el, wqe, wqe->sent, left, &mr);
		if (!src) {
			tb_req_stop(wqe, TBRDMA_WC_LOC_ACCESS_ERR);
			return;
		}
		chunk = tb_elink_chunk(el, src, left, mr, &ext);
	}
	tb_req_hdr(&h, wqe, msg ? TB_EOP_MSG : TB_EOP_WRITE);
	/* A MSG's remote_addr is its offset in the message (SQE_MORE). */
	h.addr = wqe->sqe.remote_addr + wqe->sent;
	h.len = chunk;
	h.msn = tb_req_take_msn(el, wqe, 0);
	wqe->sent += chunk;
	if (wqe->sent == wqe->sqe.length) {
		wqe->sent_all = 1;
		h.flags |= tb_req_ack_flag(wqe);
		if (msg && !(wqe->sqe.flags & TBRDMA_SQE_MORE))
			h.flags |= TB_EF_LAST;
		if (wqe->sqe.flags & TBRDMA_SQE_IMM) {
			h.flags |= TB_EF_IMM;
			h.imm = wqe->sqe.imm;
			h.compare = wqe->sqe.length;
		}
	}
	if (ext) {
		tb_elink_send_ext(el, &h, mr, src);
		return;
	}
	if (chunk)
		memcpy(tb_elink_payload_buf(el), src, chunk);
	tb_elink_send(el, &h, chunk);
}

static void tb_req_read(struct tb_elink *el, struct tb_wqe *wqe)
{
	u32 chunk = wqe->sqe.length - wqe->sent;
	struct tb_engine_hdr h;

	if (chunk > TB_READ_REQ_MAX)
		chunk = TB_READ_REQ_MAX;
	if (!tb_mr_local(wqe->ep->ctx, &el->hint_local, wqe->sqe.lkey,
			 wqe->sqe.local_addr + wqe->sent, chunk,
			 TBRDMA_ACCESS_LOCAL, NULL)) {
		tb_req_stop(wqe, TBRDMA_WC_LOC_ACCESS_ERR);
		return;
	}
	tb_req_hdr(&h, wqe, TB_EOP_READ_REQ);
	h.addr = wqe->sqe.remote_addr + wqe->sent;
	h.len = chunk;
	h.imm = wqe->sent;
	h.msn = tb_req_take_msn(el, wqe, 1);
	wqe->sent += chunk;
	if (wqe->sent == wqe->sqe.length)
		wqe->sent_all = 1;
	tb_elink_send(el, &h, 0);
}

static void tb_req_atomic(struct tb_elink *el, struct tb_wqe *wqe)
{
	struct tb_engine_hdr h;

	/* Its owner writes the result there (a verbs atomic's buffer). */
	if (wqe->sqe.lkey &&
	    !tb_mr_local(wqe->ep->ctx, &el->hint_local, wqe->sqe.lkey,
			 wqe->sqe.local_addr, wqe->sqe.atomic_size,
			 TBRDMA_ACCESS_LOCAL, NULL)) {
		tb_req_stop(wqe, TBRDMA_WC_LOC_ACCESS_ERR);
		return;
	}
	tb_req_hdr(&h, wqe, TB_EOP_ATOMIC);
	h.aop = wqe->sqe.atomic_op;
	h.arg = wqe->sqe.atomic_size;
	h.addr = wqe->sqe.remote_addr;
	h.imm = wqe->sqe.operand;
	h.compare = wqe->sqe.compare;
	h.msn = tb_req_take_msn(el, wqe, 1);
	wqe->sent_all = 1;
	tb_elink_send(el, &h, 0);
}

static void tb_req_send(struct tb_elink *el, struct tb_wqe *wqe)
{
	struct tb_engine_hdr h;
	struct tb_mr *mr;
	const u8 *src = tb_req_source(el, wqe, 0, wqe->sqe.length, &mr);

	if (!src) {
		tb_req_stop(wqe, TBRDMA_WC_LOC_ACCESS_ERR);
		return;
	}
	tb_req_hdr(&h, wqe, TB_EOP_SEND);
	h.am_id = wqe->sqe.am_id;
	h.imm = wqe->sqe.imm;
	h.len = wqe->sqe.length;
	h.msn = tb_req_take_msn(el, wqe, 0);
	memcpy(tb_elink_payload_buf(el), src, wqe->sqe.length);
	wqe->sent_all = 1;
	h.flags |= tb_req_ack_flag(wqe);
	tb_elink_send(el, &h, wqe->sqe.length);
}

/*
 * A datagram, from its first part: one frame gathered from every part,
 * once all are posted (until then its endpoint is off the active list).
 * The last part names the target and takes the frame's msn; the others
 * are done when it goes. Parts out of order fail, all of them, with
 * REM_INVALID and no frame.
 */
static void tb_req_dgram(struct tb_elink *el, struct tb_wqe *first)
{
	u8 *buf = tb_elink_payload_buf(el);
	struct tb_wqe *w, *last = first;
	struct tb_engine_hdr h;
	u8 status = 0;
	u32 len = 0;

	/*
	 * A datagram context posts nothing else (tb_post()), so the parts
	 * follow; the gather's bounds rely on it.
	 */
	while (last->sqe.flags & TBRDMA_SQE_MORE) {
		if (!last->next)
			return;
		if (TB_WARN_ON(last->next->sqe.opcode != TBRDMA_OP_DGRAM)) {
			status = TBRDMA_WC_REM_INVALID;
			break;
		}
		last = last->next;
	}
	for (w = first; ; w = w->next) {
		struct tb_mr *mr;
		const u8 *src;

		/* Offsets in order, each part within the frame (post checked). */
		if (!status && w->sqe.remote_addr != len)
			status = TBRDMA_WC_REM_INVALID;
		if (!status && w->sqe.length) {
			src = tb_req_source(el, w, 0, w->sqe.length, &mr);
			if (src)
				memcpy(buf + len, src, w->sqe.length);
			else
				status = TBRDMA_WC_LOC_ACCESS_ERR;
		}
		len += w->sqe.length;
		if (w == last)
			break;
	}
	/* Every part fails with it, or all but the last are done. */
	for (w = first; w != last || status; w = w->next) {
		tb_req_stop(w, status);
		if (w == last)
			return;
	}
	tb_req_hdr(&h, last, TB_EOP_DGRAM);
	h.dst_ctx = last->sqe.am_id;
	h.dst_secret = last->sqe.rkey;
	h.len = len;
	h.msn = tb_req_take_msn(el, last, 0);
	last->sent_all = 1;
	h.flags |= tb_req_ack_flag(last);
	if (last->sqe.flags & TBRDMA_SQE_IMM) {
		h.flags |= TB_EF_IMM;
		h.imm = last->sqe.imm;
	}
	tb_elink_send(el, &h, len);
}

/* A fenced operation waits for the responses of those before it. */
static int tb_req_fenced(const struct tb_ep *ep, const struct tb_wqe *wqe)
{
	const struct tb_wqe *w;

	if (!(wqe->sqe.flags & TBRDMA_SQE_FENCE) || wqe->has_msn)
		return 0;
	for (w = ep->head; w != wqe; w = w->next)
		if (w->resp_pending)
			return 1;
	return 0;
}

/*
 * Sends the next frame of ep's current operation. Returns 1 if a frame
 * went out, 0 if the operation must wait (request window, responder
 * resources or a fence) or ended without one.
 */
static int tb_req_ep(struct tb_elink *el, struct tb_ep *ep)
{
	struct tb_wqe *wqe = ep->send;
	u64 frames = el->link->tx_next;
	u8 op = wqe->sqe.opcode;

	if (!tb_req_msn_room(el) || tb_req_fenced(ep, wqe))
		return 0;
	if ((op == TBRDMA_OP_READ || op == TBRDMA_OP_ATOMIC) &&
	    (el->rd_outstanding >= el->e->cfg.rd_max ||
	     (!wqe->rd_counted && ep->ctx->rd_max &&
	      ep->rd_wqes >= ep->ctx->rd_max)))
		return 0;
	switch (op) {
	case TBRDMA_OP_WRITE:
	case TBRDMA_OP_MSG:
		tb_req_write(el, wqe);
		break;
	case TBRDMA_OP_READ:
		tb_req_read(el, wqe);
		break;
	case TBRDMA_OP_ATOMIC:
		tb_req_atomic(el, wqe);
		break;
	case TBRDMA_OP_DGRAM:
		tb_req_dgram(el, wqe);
		break;
	default:
		tb_req_send(el, wqe);
		break;
	}
	tb_wqe_update(wqe);
	tb_ep_advance_send(ep);
	return el->link->tx_next != frames;
}

int tb_req_send_one(struct tb_elink *el)
{
	struct tb_ep *ep = el->active_head;
	struct tb_ep *last = el->active_tail;

	/* Every endpoint would wait for the window: walk none of them. */
	if (!tb_req_msn_room(el))
		return 0;
	while (ep) {
		struct tb_ep *next = ep->next_active;
		int sent = tb_req_ep(el, ep);

		/* Served or blocked: to the back of the line either way. */
		if (ep->active == TB_EP_ON_ACTIVE && ep != el->active_tail) {
			tb_ep_clear_active(ep);
			tb_ep_set_active(ep);
		}
		if (sent)
			return 1;
		if (ep == last)
			break;
		ep = next;
	}
	return 0;
}
