// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Completer: takes what the responder sends back (ack_msn, NAK, RNR_NAK,
 * READ data, ATOMIC results) to the operations waiting for it. Everything from the
 * wire is checked against what is really outstanding; anything else is a
 * protocol error that takes the link down rather than touching memory.
 */
#include "tb_engine_priv.h"

static struct tb_msn_ent *tb_comp_ent(struct tb_elink *el, u32 msn)
{
	struct tb_msn_ent *ent;

	/* Only requests sent and not yet retired can be answered. */
	if (!tb_seq_before(msn, el->msn_next) ||
	    tb_seq_before(msn, el->msn_tail))
		return NULL;
	ent = &el->msn_ring[msn & (el->e->cfg.msn_window - 1)];
	return ent->msn == msn ? ent : NULL;
}

static void tb_comp_retire(struct tb_elink *el)
{
	while (el->msn_tail != el->msn_next &&
	       !tb_seq_after(el->msn_tail, el->msn_acked)) {
		struct tb_msn_ent *ent =
			&el->msn_ring[el->msn_tail & (el->e->cfg.msn_window - 1)];

		if (ent->awaiting)
			break;
		ent->wqe = NULL;
		el->msn_tail++;
	}
}

static void tb_comp_settle(struct tb_wqe *wqe)
{
	struct tb_ep *ep = wqe->ep;

	tb_wqe_update(wqe);
	tb_ep_advance_send(ep);
}

int tb_comp_ack(struct tb_elink *el, u32 ack_msn)
{
	u32 m;

	if (!tb_seq_before(ack_msn, el->msn_next))
		return -EPROTO;		/* acks a request never sent */
	if (!tb_seq_after(ack_msn, el->msn_acked))
		return 0;
	for (m = el->msn_acked + 1; m != ack_msn + 1; m++) {
		struct tb_msn_ent *ent =
			&el->msn_ring[m & (el->e->cfg.msn_window - 1)];

		el->msn_acked = m;
		if (ent->msn == m && ent->wqe && ent->wqe->last_msn == m)
			tb_comp_settle(ent->wqe);
	}
	tb_comp_retire(el);
	return 0;
}

/* A response for an awaited request arrived: release what it held. */
static void tb_comp_answered(struct tb_elink *el, struct tb_msn_ent *ent)
{
	struct tb_wqe *wqe = ent->wqe;

	ent->awaiting = 0;
	el->rd_outstanding--;
	if (wqe && !--wqe->resp_pending && wqe->sent_all)
		tb_wqe_rd_release(wqe);
}

static int tb_comp_nak(struct tb_elink *el, const struct tb_engine_hdr *h)
{
	struct tb_msn_ent *ent = tb_comp_ent(el, h->msn);
	struct tb_wqe *wqe;
	struct tb_ep *ep;

	/* A NAK always comes before the ack that covers its request. */
	if (!ent || (!ent->awaiting && !tb_seq_after(h->msn, el->msn_acked)))
		return -EPROTO;
	wqe = ent->wqe;
	if (ent->awaiting)
		tb_comp_answered(el, ent);
	if (!wqe)
		return 0;	/* its operation was cancelled */
	ep = wqe->ep;		/* settling may complete and free wqe */
	if (wqe->status == TBRDMA_WC_SUCCESS)
		wqe->status = h->arg;
	wqe->sent_all = 1;	/* send no more of a failed operation */
	tb_comp_settle(wqe);
	tb_ep_set_error(ep);
	tb_comp_retire(el);
	return 0;
}

static int tb_comp_rnr(struct tb_elink *el, const struct tb_engine_hdr *h)
{
	struct tb_msn_ent *ent = tb_comp_ent(el, h->msn);
	struct tb_wqe *wqe;

	/* Like a NAK, it always comes before the ack that covers it. */
	if (!ent || (!ent->awaiting && !tb_seq_after(h->msn, el->msn_acked)))
		return -EPROTO;
	wqe = ent->wqe;
	if (ent->awaiting)
		tb_comp_answered(el, ent);
	/* Requests after the first of an endpoint's were forgotten. */
	if (wqe)
		tb_ep_rnr(wqe->ep, wqe, el->link->now_ns);
	tb_comp_retire(el);
	return 0;
}

static int tb_comp_read_resp(struct tb_elink *el,
			     const struct tb_engine_hdr *h, const u8 *payload)
{
	struct tb_msn_ent *ent = tb_comp_ent(el, h->msn);
	struct tb_wqe *wqe;
	u8 *dst;

	if (!ent || !ent->awaiting ||
	    (ent->wqe && ent->wqe->sqe.opcode != TBRDMA_OP_READ))
		return -EPROTO;
	wqe = ent->wqe;
	if (wqe) {
		if (h->addr > wqe->sqe.length ||
		    h->len > wqe->sqe.length - h->addr)
			return -EPROTO;
		dst = tb_mr_local(wqe->ep->ctx, &el->hint_local,
				  wqe->sqe.lkey, wqe->sqe.local_addr + h->addr,
				  h->len, TBRDMA_ACCESS_LOCAL, NULL);
		if (dst) {
			memcpy(dst, payload, h->len);
			wqe->recvd += h->len;
		} else if (wqe->status == TBRDMA_WC_SUCCESS) {
			wqe->status = TBRDMA_WC_LOC_ACCESS_ERR;
		}
	}
	if (h->flags & TB_EF_LAST) {
		tb_comp_answered(el, ent);
		if (wqe)
			tb_comp_settle(wqe);
		tb_comp_retire(el);
	}
	return 0;
}

static int tb_comp_atomic_resp(struct tb_elink *el,
			       const struct tb_engine_hdr *h)
{
	struct tb_msn_ent *ent = tb_comp_ent(el, h->msn);
	struct tb_wqe *wqe;

	if (!ent || !ent->awaiting ||
	    (ent->wqe && ent->wqe->sqe.opcode != TBRDMA_OP_ATOMIC))
		return -EPROTO;
	wqe = ent->wqe;
	tb_comp_answered(el, ent);
	if (wqe) {
		wqe->result = wqe->sqe.atomic_size == 4 ? (u32)h->imm : h->imm;
		tb_comp_settle(wqe);
	}
	tb_comp_retire(el);
	return 0;
}

int tb_comp_rx(struct tb_elink *el, const struct tb_engine_hdr *h,
	       const u8 *payload)
{
	switch (h->op) {
	case TB_EOP_NAK:
		return tb_comp_nak(el, h);
	case TB_EOP_RNR_NAK:
		return tb_comp_rnr(el, h);
	case TB_EOP_READ_RESP:
		return tb_comp_read_resp(el, h, payload);
	case TB_EOP_ATOMIC_RESP:
		return tb_comp_atomic_resp(el, h);
	default: /* TB_EOP_ACK: only its ack_msn matters */
		return 0;
	}
}
