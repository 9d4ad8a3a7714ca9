// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Responder: executes requests from the peer in order and answers them.
 * Every request is checked against the target context's secret (or the
 * peer it is bound to), that it is not in error, and its regions before
 * a byte moves; a failure is answered with a NAK, the same
 * REM_ACCESS_ERR for whatever did not match. A sender that draws refusals
 * from one target faster than TB_REFUSE_INTERVAL_NS is throttled: its
 * requests to that target are refused unseen until it slows down. A SEND
 * to a full receive queue is answered with RNR_NAK, and so is every later
 * request of its endpoint until the endpoint resends (TB_EF_RESUME): the
 * link and every other endpoint go on; so is a MSG's first chunk that
 * finds no posted receive (tb_recv.c). A DGRAM gets neither: it is
 * taken in or dropped (tb_recv.c). Responses never wait for the
 * receive path: their queues are sized by the limits the initiator keeps
 * (msn_window requests, rd_max READ/ATOMIC), and a peer that breaks those
 * limits breaks the link.
 */
#include "tb_engine_priv.h"

u32 tb_resp_ack_value(const struct tb_elink *el)
{
	/* Never ack past a request whose NAK has not gone out yet. */
	if (el->nak_head != el->nak_tail)
		return el->naks[el->nak_head & (el->e->cfg.msn_window - 1)].msn - 1;
	return el->resp_done;
}

void tb_resp_reset(struct tb_elink *el)
{
	u32 i;

	el->nak_head = el->nak_tail;
	el->ares_head = el->ares_tail;
	for (i = 0; el->rds && i < el->e->cfg.rd_max; i++)
		el->rds[i].active = 0;
	el->rd_active = 0;
	el->nholds = 0;
}

/* Queues a NAK (with status) or an RNR_NAK for request h. */
static int tb_resp_nak(struct tb_elink *el, const struct tb_engine_hdr *h,
		       u8 op, u8 status)
{
	struct tb_nak *n;

	if (el->nak_tail - el->nak_head >= el->e->cfg.msn_window)
		return -EPROTO;
	n = &el->naks[el->nak_tail++ & (el->e->cfg.msn_window - 1)];
	n->msn = h->msn;
	n->initiator_ctx = h->src_ctx;
	n->op = op;
	n->status = status;
	return 0;
}

/* A hold still stands until msn_window requests ran after it. */
static int tb_resp_hold_lapsed(const struct tb_elink *el, u32 msn)
{
	return el->resp_done - msn >= el->e->cfg.msn_window;
}

static void tb_resp_hold_drop(struct tb_elink *el, struct tb_rnr_hold *hold)
{
	*hold = el->holds[--el->nholds];
}

/* h's endpoint's standing hold, if any; drops the lapsed ones it passes. */
static struct tb_rnr_hold *tb_resp_hold(struct tb_elink *el,
					const struct tb_engine_hdr *h)
{
	u32 i = 0;

	if (el->nholds && tb_resp_hold_lapsed(el, el->hold_newest))
		el->nholds = 0;
	while (i < el->nholds) {
		struct tb_rnr_hold *hold = &el->holds[i];

		if (tb_resp_hold_lapsed(el, hold->msn)) {
			tb_resp_hold_drop(el, hold);
			continue;
		}
		if (hold->src_ctx == h->src_ctx && hold->src_ep == h->src_ep)
			return hold;
		i++;
	}
	return NULL;
}

/*
 * Holds h's endpoint from h on. Right after tb_resp_hold() found none for
 * it, which left only standing holds: at most msn_window.
 */
static struct tb_rnr_hold *tb_resp_new_hold(struct tb_elink *el,
					    const struct tb_engine_hdr *h)
{
	struct tb_rnr_hold *hold = &el->holds[el->nholds++];

	hold->src_ctx = h->src_ctx;
	hold->src_ep = h->src_ep;
	hold->msn = h->msn;
	el->hold_newest = h->msn;
	return hold;
}

static u64 tb_resp_atomic_exec(u8 *p, const struct tb_engine_hdr *h)
{
	if (h->arg == 4) {
		u32 *p32 = (u32 *)p;
		u32 v = (u32)h->imm;

		switch (h->aop) {
		case TBRDMA_ATOMIC_ADD:
			return tb_atomic_fetch_add32(p32, v);
		case TBRDMA_ATOMIC_AND:
			return tb_atomic_fetch_and32(p32, v);
		case TBRDMA_ATOMIC_OR:
			return tb_atomic_fetch_or32(p32, v);
		case TBRDMA_ATOMIC_XOR:
			return tb_atomic_fetch_xor32(p32, v);
		case TBRDMA_ATOMIC_SWAP:
			return tb_atomic_swap32(p32, v);
		default:
			return tb_atomic_cswap32(p32, (u32)h->compare, v);
		}
	}
	switch (h->aop) {
	case TBRDMA_ATOMIC_ADD:
		return tb_atomic_fetch_add64((u64 *)p, h->imm);
	case TBRDMA_ATOMIC_AND:
		return tb_atomic_fetch_and64((u64 *)p, h->imm);
	case TBRDMA_ATOMIC_OR:
		return tb_atomic_fetch_or64((u64 *)p, h->imm);
	case TBRDMA_ATOMIC_XOR:
		return tb_atomic_fetch_xor64((u64 *)p, h->imm);
	case TBRDMA_ATOMIC_SWAP:
		return tb_atomic_swap64((u64 *)p, h->imm);
	default:
		return tb_atomic_cswap64((u64 *)p, h->compare, h->imm);
	}
}

static struct tb_rd_res *tb_resp_free_rd(struct tb_elink *el)
{
	u32 i;

	for (i = 0; i < el->e->cfg.rd_max; i++)
		if (!el->rds[i].active)
			return &el->rds[i];
	return NULL;
}

static struct tb_refuser *tb_resp_refuser(struct tb_elink *el,
					  const struct tb_engine_hdr *h)
{
	u32 i;

	for (i = 0; el->refused && i < TB_REFUSE_PAIRS; i++) {
		struct tb_refuser *r = &el->refusers[i];

		if (r->tat && r->src_ctx == h->src_ctx &&
		    r->dst_ctx == h->dst_ctx)
			return r;
	}
	return NULL;
}

/*
 * Charges one refusal to the request's pair. Without a slot of its own it
 * takes the one whose pair drew least (the earliest tat).
 */
static void tb_resp_charge(struct tb_elink *el, const struct tb_engine_hdr *h,
			   u64 now)
{
	struct tb_refuser *r = tb_resp_refuser(el, h);
	u32 i;

	if (!r) {
		r = &el->refusers[0];
		for (i = 1; i < TB_REFUSE_PAIRS; i++)
			if (el->refusers[i].tat < r->tat)
				r = &el->refusers[i];
		r->src_ctx = h->src_ctx;
		r->dst_ctx = h->dst_ctx;
		r->tat = 0;
	}
	r->tat = (r->tat > now ? r->tat : now) + TB_REFUSE_INTERVAL_NS;
	el->refused = 1;
}

/* A context bound to one peer (a queue pair) admits that peer alone. */
static int tb_resp_bound_ok(const struct tb_elink *el,
			    const struct tb_ctx *ctx, u32 src_ctx)
{
	return !ctx->cfg.admit_bound ||
	       (ctx->peer_bound && ctx->peer_link == el->index &&
		ctx->peer_link_gen == el->gen && ctx->peer_ctx == src_ctx);
}

/*
 * The context a request may reach: the right id, and the right secret or,
 * for a context bound to its peer, that peer on that link.
 */
static struct tb_ctx *tb_resp_target(struct tb_elink *el,
				     const struct tb_engine_hdr *h)
{
	struct tb_ctx *ctx = tb_ctx_lookup(el->e, h->dst_ctx);

	/* A datagram context takes DGRAMs alone (tb_dgram_rx()). */
	if (!ctx || READ_ONCE(ctx->error) || ctx->cfg.dgram ||
	    !tb_resp_bound_ok(el, ctx, h->src_ctx))
		return NULL;
	return ctx->cfg.admit_bound || ctx->secret == h->dst_secret ? ctx : NULL;
}

/*
 * A SEND into the receive ring, or a MSG or a WRITE with immediate into a
 * posted receive, whichever the context takes: 0, a NAK status, or
 * -EAGAIN when it is not ready.
 */
static int tb_resp_deliver(struct tb_elink *el, struct tb_ctx *ctx,
			   const struct tb_engine_hdr *h, const u8 *payload)
{
	int posted = h->op != TB_EOP_SEND;

	if (posted != !!ctx->rcq.ctrl)
		return TBRDMA_WC_REM_INVALID;
	if (h->op == TB_EOP_MSG)
		return tb_ctx_msg_rx(ctx, el, h, payload);
	if (h->op == TB_EOP_WRITE)
		return tb_ctx_write_imm_rx(ctx, el, h, payload);
	return tb_ctx_push_rqe(ctx, el->link->label, h, payload);
}

u8 tb_resp_write(struct tb_elink *el, struct tb_ctx *ctx,
		 const struct tb_engine_hdr *h, const u8 *payload)
{
	u8 status = 0;
	u8 *p;

	/* Zero bytes touch no region: a ping, if the context allows WRITEs. */
	if (!h->len)
		return READ_ONCE(ctx->remote_denied) & TBRDMA_ACCESS_REMOTE_WRITE ?
		       TBRDMA_WC_REM_ACCESS_ERR : 0;
	p = tb_mr_access(ctx, &el->hint_remote, h->rkey, h->addr, h->len,
			 TBRDMA_ACCESS_REMOTE_WRITE, &status);
	if (p)
		memcpy(p, payload, h->len);
	return status;
}

/*
 * Executes one WRITE, READ_REQ or ATOMIC; returns the NAK status, 0 on
 * success.
 */
static u8 tb_resp_exec(struct tb_elink *el, struct tb_ctx *ctx,
		       const struct tb_engine_hdr *h, const u8 *payload)
{
	struct tb_atomic_res *ar;
	struct tb_rd_res *rd;
	u8 status = 0;
	u8 *p;

	switch (h->op) {
	case TB_EOP_WRITE:
		return tb_resp_write(el, ctx, h, payload);
	case TB_EOP_READ_REQ:
		if (!tb_mr_access(ctx, &el->hint_remote, h->rkey, h->addr,
				  h->len, TBRDMA_ACCESS_REMOTE_READ, &status))
			return status;
		rd = tb_resp_free_rd(el);
		if (!rd)
			return TBRDMA_WC_REM_INVALID;
		rd->active = 1;
		el->rd_active++;
		rd->msn = h->msn;
		rd->initiator_ctx = h->src_ctx;
		rd->target_ctx = h->dst_ctx;
		rd->rkey = h->rkey;
		rd->addr = h->addr;
		rd->len = h->len;
		rd->off = 0;
		rd->op_off = h->imm;
		return 0;
	default: /* TB_EOP_ATOMIC */
		if (h->addr & (h->arg - 1))
			return TBRDMA_WC_REM_INVALID;
		if (el->ares_tail - el->ares_head >= el->e->cfg.rd_max)
			return TBRDMA_WC_REM_INVALID;
		p = tb_mr_access(ctx, &el->hint_remote, h->rkey, h->addr,
				 h->arg, TBRDMA_ACCESS_REMOTE_ATOMIC, &status);
		if (!p)
			return status;
		ar = &el->ares[el->ares_tail++ % el->e->cfg.rd_max];
		ar->msn = h->msn;
		ar->initiator_ctx = h->src_ctx;
		ar->value = tb_resp_atomic_exec(p, h);
		return 0;
	}
}

int tb_resp_rx(struct tb_elink *el, const struct tb_engine_hdr *h,
	       const u8 *payload)
{
	struct tb_refuser *r = tb_resp_refuser(el, h);
	int deliver = h->op == TB_EOP_SEND || h->op == TB_EOP_MSG ||
		      (h->op == TB_EOP_WRITE && (h->flags & TB_EF_IMM));
	struct tb_rnr_hold *hold;
	struct tb_ctx *ctx = NULL;
	int throttled = 0;
	int ret = 0;
	u64 now = 0;
	u8 status;

	if (h->msn != el->resp_done + 1)
		return -EPROTO;
	/* Never refused, never held: taken in or dropped, then acked. */
	if (h->op == TB_EOP_DGRAM) {
		tb_dgram_rx(el, h, payload);
		el->resp_done = h->msn;
		return 0;
	}
	/* Only a pair refused before pays for the clock. */
	if (r) {
		now = tb_now_ns();
		throttled = r->tat > now + TB_REFUSE_BURST_NS;
	}
	if (!throttled)
		ctx = tb_resp_target(el, h);
	if (!ctx) {
		status = TBRDMA_WC_REM_ACCESS_ERR;
	} else {
		hold = tb_resp_hold(el, h);
		if (hold && (h->flags & TB_EF_RESUME)) {
			tb_resp_hold_drop(el, hold);
			hold = NULL;
		}
		/* Another link may fill the ring: only delivering tells. */
		if (!hold && deliver) {
			ret = tb_resp_deliver(el, ctx, h, payload);
			if (ret == -EAGAIN)
				hold = tb_resp_new_hold(el, h);
		}
		if (hold) {
			if (tb_resp_nak(el, h, TB_EOP_RNR_NAK, 0))
				return -EPROTO;
			el->link->stats.rx_rnr++;
			el->resp_done = h->msn;
			return 0;
		}
		status = deliver ? (u8)ret : tb_resp_exec(el, ctx, h, payload);
	}
	if (status && tb_resp_nak(el, h, TB_EOP_NAK, status))
		return -EPROTO;
	if (status == TBRDMA_WC_REM_ACCESS_ERR) {
		el->link->stats.rx_refused++;
		if (throttled)
			el->link->stats.rx_throttled++;
		else
			tb_resp_charge(el, h, now ? now : tb_now_ns());
	}
	el->resp_done = h->msn;
	return 0;
}

int tb_resp_send_urgent(struct tb_elink *el)
{
	struct tb_engine_hdr h;

	memset(&h, 0, sizeof(h));
	if (el->nak_head != el->nak_tail) {
		struct tb_nak *n =
			&el->naks[el->nak_head++ & (el->e->cfg.msn_window - 1)];

		h.op = n->op;
		h.dst_ctx = n->initiator_ctx;
		h.msn = n->msn;
		h.arg = n->status;
		tb_elink_send(el, &h, 0);
		return 1;
	}
	if (el->ares_head != el->ares_tail) {
		struct tb_atomic_res *ar =
			&el->ares[el->ares_head++ % el->e->cfg.rd_max];

		h.op = TB_EOP_ATOMIC_RESP;
		h.dst_ctx = ar->initiator_ctx;
		h.msn = ar->msn;
		h.imm = ar->value;
		tb_elink_send(el, &h, 0);
		return 1;
	}
	return 0;
}

static struct tb_rd_res *tb_resp_next_rd(struct tb_elink *el)
{
	u32 i, n = el->e->cfg.rd_max, k = el->rd_next;

	for (i = 0; el->rd_active && i < n; i++) {
		struct tb_rd_res *rd = &el->rds[k];

		if (++k == n)
			k = 0;
		if (rd->active) {
			el->rd_next = k;
			return rd;
		}
	}
	return NULL;
}

static void tb_resp_rd_done(struct tb_elink *el, struct tb_rd_res *rd)
{
	rd->active = 0;
	el->rd_active--;
}

int tb_resp_send_read(struct tb_elink *el)
{
	struct tb_rd_res *rd = tb_resp_next_rd(el);
	struct tb_engine_hdr h;
	struct tb_mr *mr = NULL;
	struct tb_ctx *ctx;
	u32 chunk = 0;
	u8 status = TBRDMA_WC_REM_ACCESS_ERR;
	u8 *src = NULL;
	int ext = 0;

	if (!rd)
		return 0;
	/*
	 * The region may have gone since the request was checked, the
	 * context failed, or been reset and bound to another peer.
	 */
	ctx = tb_ctx_lookup(el->e, rd->target_ctx);
	if (ctx && !READ_ONCE(ctx->error) &&
	    tb_resp_bound_ok(el, ctx, rd->initiator_ctx))
		src = tb_mr_access_mr(ctx, &el->hint_remote, rd->rkey,
				      rd->addr + rd->off, rd->len - rd->off,
				      TBRDMA_ACCESS_REMOTE_READ, &status, &mr);
	if (src)
		chunk = tb_elink_chunk(el, src, rd->len - rd->off, mr, &ext);
	memset(&h, 0, sizeof(h));
	h.dst_ctx = rd->initiator_ctx;
	h.src_ctx = rd->target_ctx;
	h.msn = rd->msn;
	if (!src) {
		h.op = TB_EOP_NAK;
		h.arg = status;
		tb_resp_rd_done(el, rd);
		tb_elink_send(el, &h, 0);
		return 1;
	}
	h.op = TB_EOP_READ_RESP;
	h.addr = rd->op_off + rd->off;
	h.len = chunk;
	rd->off += chunk;
	if (rd->off == rd->len) {
		h.flags = TB_EF_LAST;
		tb_resp_rd_done(el, rd);
	}
	if (ext) {
		tb_elink_send_ext(el, &h, mr, src);
		return 1;
	}
	memcpy(tb_elink_payload_buf(el), src, chunk);
	tb_elink_send(el, &h, chunk);
	return 1;
}
