// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The engine object: links, contexts, their rings, and the progress loop
 * that moves frames between links and the requester, responder and
 * completer.
 */
#include "tb_engine_priv.h"

u32 tb_log2(u32 v)
{
	u32 r = 0;

	while ((1u << r) < v)
		r++;
	return r;
}

static int tb_is_pow2(u32 v)
{
	return v && !(v & (v - 1));
}

void tb_engine_config_default(struct tb_engine_config *cfg)
{
	cfg->max_links = 64;
	cfg->max_ctx = 256;
	cfg->msn_window = 1024;
	cfg->rd_max = 16;
	cfg->ext_min = TB_EXT_MIN;
	cfg->rnr_timeout_ns = TB_RNR_TIMEOUT_NS;
}

int tb_engine_create(struct tb_engine **out, const struct tb_engine_config *cfg)
{
	struct tb_engine *e;

	if (!cfg->max_links || cfg->max_links > 4096 ||
	    !tb_is_pow2(cfg->max_ctx) || cfg->max_ctx > (1u << 16) ||
	    !tb_is_pow2(cfg->msn_window) || cfg->msn_window > (1u << 20) ||
	    !cfg->rd_max || cfg->rd_max > 1024 || cfg->ext_min > TB_EXT_MAX)
		return -EINVAL;
	e = tb_zalloc(sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->cfg = *cfg;
	e->links = tb_zalloc(sizeof(*e->links) * cfg->max_links);
	e->ctxs = tb_zalloc(sizeof(*e->ctxs) * cfg->max_ctx);
	if (!e->links || !e->ctxs) {
		tb_engine_destroy(e);
		return -ENOMEM;
	}
	e->ctx_gen = tb_random_u32();
	*out = e;
	return 0;
}

void tb_engine_destroy(struct tb_engine *e)
{
	u32 i;

	if (!e)
		return;
	/* Their contexts are gone, and with them their endpoints. */
	TB_WARN_ON(e->parked);
	for (i = 0; e->links && i < e->cfg.max_links; i++)
		if (e->links[i].link)
			tb_engine_remove_link(e, e->links[i].link);
	tb_free(e->links);
	tb_free(e->ctxs);
	tb_free(e);
}

static void tb_elink_free(struct tb_elink *el)
{
	tb_free(el->msn_ring);
	tb_free(el->naks);
	tb_free(el->holds);
	tb_free(el->ares);
	tb_free(el->rds);
	el->msn_ring = NULL;
	el->naks = NULL;
	el->holds = NULL;
	el->ares = NULL;
	el->rds = NULL;
	el->link = NULL;
}

int tb_engine_add_link(struct tb_engine *e, struct tb_link *link)
{
	struct tb_elink *el = NULL;
	u32 i;

	for (i = 0; i < e->cfg.max_links; i++) {
		if (!e->links[i].link) {
			el = &e->links[i];
			break;
		}
	}
	if (!el)
		return -ENOSPC;
	memset(el, 0, sizeof(*el));
	el->e = e;
	el->index = i;
	el->msn_ring = tb_zalloc(sizeof(*el->msn_ring) * e->cfg.msn_window);
	el->naks = tb_zalloc(sizeof(*el->naks) * e->cfg.msn_window);
	el->holds = tb_zalloc(sizeof(*el->holds) * (e->cfg.msn_window + 1));
	el->ares = tb_zalloc(sizeof(*el->ares) * e->cfg.rd_max);
	el->rds = tb_zalloc(sizeof(*el->rds) * e->cfg.rd_max);
	if (!el->msn_ring || !el->naks || !el->holds || !el->ares || !el->rds) {
		tb_elink_free(el);
		return -ENOMEM;
	}
	el->msn_next = 1;
	el->msn_tail = 1;
	el->gen = ++e->link_gen;
	el->link = link;
	link->index = i;
	if (i >= e->links_end)
		e->links_end = i + 1;
	tb_elink_adopt_parked(el);
	return (int)i;
}

static void tb_engine_detach_link(struct tb_engine *e, struct tb_link *link,
				  int park)
{
	struct tb_elink *el;

	if (link->index >= e->cfg.max_links ||
	    e->links[link->index].link != link) {
		if (!park)
			tb_engine_fail_parked(e, link);
		return;
	}
	el = &e->links[link->index];
	tb_link_fail(link);
	tb_elink_fail_eps(el);
	tb_elink_drop_eps(el, park);
	tb_elink_free(el);
	while (e->links_end && !e->links[e->links_end - 1].link)
		e->links_end--;
}

void tb_engine_remove_link(struct tb_engine *e, struct tb_link *link)
{
	tb_engine_detach_link(e, link, 0);
}

void tb_engine_unplug_link(struct tb_engine *e, struct tb_link *link)
{
	tb_engine_detach_link(e, link, 1);
}

struct tb_link *tb_engine_link(struct tb_engine *e, u32 index)
{
	return index < e->cfg.max_links ? e->links[index].link : NULL;
}

static struct tb_elink *tb_elink_of(struct tb_engine *e, struct tb_link *link)
{
	if (link->index >= e->cfg.max_links ||
	    e->links[link->index].link != link)
		return NULL;
	return &e->links[link->index];
}

/* Link callback: one in-order frame from the peer. */
int tb_engine_deliver(void *user, struct tb_link *link, const void *payload,
		      u32 len, const void *ext, u32 ext_len)
{
	struct tb_elink *el = tb_elink_of(user, link);
	struct tb_engine_hdr h;
	const u8 *data = ext ? ext : (const u8 *)payload + TB_ENGINE_HDR_LEN;
	int ret;

	if (!el)
		return 0;
	if (tb_engine_hdr_decode(payload, len, ext ? ext_len : 0, &h))
		return 0;	/* the link counts nothing: it was in order */
	switch (h.op) {
	case TB_EOP_WRITE:
	case TB_EOP_READ_REQ:
	case TB_EOP_ATOMIC:
	case TB_EOP_SEND:
	case TB_EOP_MSG:
	case TB_EOP_DGRAM:
		ret = tb_resp_rx(el, &h, data);
		break;
	default:
		ret = tb_comp_rx(el, &h, data);
		break;
	}
	if (ret == -EAGAIN)
		return ret;
	if (!ret)
		ret = tb_comp_ack(el, h.ack_msn);
	if (ret == -EPROTO)
		tb_link_fail(link);	/* the peer broke the protocol */
	return h.flags & TB_EF_ACK_NOW ? TB_DELIVER_ACK_NOW : 0;
}

static void tb_engine_state_changed(void *user, struct tb_link *link, u32 state)
{
	struct tb_elink *el = tb_elink_of(user, link);

	if (el && state == TBRDMA_LINK_DOWN)
		tb_elink_fail_eps(el);
}

/* Link callback: a frame sent from a region no longer refers to it. */
void tb_engine_ext_put(void *user, const struct tb_link_ext *ext)
{
	struct tb_mr *mr = ext->owner;

	(void)user;	/* regions know their counts */
	if (TB_WARN_ON(!tb_atomic_fetch_add32(&mr->tx_refs, (u32)-1)))
		tb_atomic_fetch_add32(&mr->tx_refs, 1);
}

u32 tb_engine_user_ack(void *user, struct tb_link *link)
{
	struct tb_elink *el = tb_elink_of(user, link);

	return el ? tb_resp_ack_value(el) : 0;
}

void tb_engine_user_ack_sent(void *user, struct tb_link *link, u32 ack_msn)
{
	struct tb_elink *el = tb_elink_of(user, link);

	if (el)
		el->ack_sent = ack_msn;
}

void tb_engine_user_ack_rx(void *user, struct tb_link *link, u32 ack_msn)
{
	struct tb_elink *el = tb_elink_of(user, link);

	if (el && tb_comp_ack(el, ack_msn) == -EPROTO)
		tb_link_fail(link);	/* the peer broke the protocol */
}

const struct tb_link_user_ops tb_engine_link_ops = {
	.deliver = tb_engine_deliver,
	.state_changed = tb_engine_state_changed,
	.ext_put = tb_engine_ext_put,
	.user_ack = tb_engine_user_ack,
	.user_ack_sent = tb_engine_user_ack_sent,
	.user_ack_rx = tb_engine_user_ack_rx,
};

void *tb_elink_payload_buf(struct tb_elink *el)
{
	return (u8 *)tb_link_tx_buf(el->link) + TB_ENGINE_HDR_LEN;
}

void tb_elink_send(struct tb_elink *el, struct tb_engine_hdr *h,
		   u32 payload_len)
{
	h->ack_msn = tb_resp_ack_value(el);
	el->ack_sent = h->ack_msn;
	tb_engine_hdr_encode(tb_link_tx_buf(el->link), h);
	tb_link_tx_commit(el->link, TB_ENGINE_HDR_LEN + payload_len);
}

u32 tb_elink_chunk(const struct tb_elink *el, const u8 *src, u32 left,
		   const struct tb_mr *mr, int *ext)
{
	u32 block = TB_EXT_MAX - (u32)((uintptr_t)src & (TB_EXT_MAX - 1));
	u32 chunk = left < block ? left : block;

	*ext = 0;
	if (mr && el->e->cfg.ext_min &&
	    el->link->phy_ops->ext_max == TB_EXT_MAX) {
		/*
		 * A small piece is cheaper copied than as a descriptor of its
		 * own; it ends at the block boundary, so what follows is
		 * aligned.
		 */
		*ext = chunk >= el->e->cfg.ext_min;
		if (*ext)
			return chunk;
		left = chunk;
	}
	return left < TB_PAYLOAD_MAX ? left : TB_PAYLOAD_MAX;
}

void tb_elink_send_ext(struct tb_elink *el, struct tb_engine_hdr *h,
		       struct tb_mr *mr, const u8 *src)
{
	struct tb_link_ext ext = {
		.data = src,
		.len = h->len,
		.owner = mr,
		.dma_cookie = mr->priv,
	};

	h->ack_msn = tb_resp_ack_value(el);
	el->ack_sent = h->ack_msn;
	tb_engine_hdr_encode(tb_link_tx_buf(el->link), h);
	tb_atomic_fetch_add32(&mr->tx_refs, 1);
	tb_link_tx_commit_ext(el->link, TB_ENGINE_HDR_LEN, &ext);
}

void tb_engine_release_mr(struct tb_engine *e, u32 index, struct tb_mr *mr)
{
	if (index < e->links_end && e->links[index].link &&
	    READ_ONCE(mr->tx_refs))
		tb_link_detach_ext(e->links[index].link, mr);
}

void tb_engine_detach_mr(struct tb_engine *e, struct tb_mr *mr)
{
	u32 i;

	for (i = 0; i < e->links_end && READ_ONCE(mr->tx_refs); i++)
		tb_engine_release_mr(e, i, mr);
}

/*
 * Fills the link: responses that unblock the peer first, then read data
 * and new requests taking turns, then a bare ACK if one is due: the
 * engine's ack waits as long as the link's, so one DATA frame may carry
 * both, and goes in the link's ACK instead when that takes it for sure;
 * one asking for the peer's ack if a FLUSH waits for it.
 */
void tb_elink_tx(struct tb_elink *el)
{
	struct tb_link *link = el->link;

	while (tb_link_can_send(link)) {
		if (tb_resp_send_urgent(el))
			continue;
		if (el->resp_turn && tb_resp_send_read(el)) {
			el->resp_turn = 0;
			continue;
		}
		if (tb_req_send_one(el)) {
			el->resp_turn = 1;
			continue;
		}
		if (tb_resp_send_read(el))
			continue;
		break;
	}
	if (tb_link_can_send(link) &&
	    (el->ack_wanted || (el->ack_sent != tb_resp_ack_value(el) &&
				(!link->ack_pending || tb_link_ack_due(link)) &&
				!tb_link_ack_takes_user_ack(link)))) {
		struct tb_engine_hdr h;

		memset(&h, 0, sizeof(h));
		h.op = TB_EOP_ACK;
		if (el->ack_wanted)
			h.flags = TB_EF_ACK_NOW;
		el->ack_wanted = 0;
		tb_elink_send(el, &h, 0);
	}
	tb_link_flush_ack(link);
}

static int tb_elink_progress(struct tb_elink *el, u64 now_ns)
{
	int handled;

	if (!el->link || el->link->state == TBRDMA_LINK_DOWN)
		return 0;
	handled = tb_link_progress(el->link, now_ns);
	if (el->rnr_wake_ns && now_ns >= el->rnr_wake_ns)
		tb_elink_rnr_wake(el, now_ns);
	if (el->link->state == TBRDMA_LINK_UP)
		tb_elink_tx(el);
	return handled;
}

int tb_engine_progress(struct tb_engine *e, u64 now_ns)
{
	int handled = 0;
	u32 i;

	for (i = 0; i < e->links_end; i++)
		handled += tb_elink_progress(&e->links[i], now_ns);
	return handled;
}

int tb_engine_progress_link(struct tb_engine *e, u32 link_index, u64 now_ns)
{
	if (link_index >= e->links_end)
		return 0;
	return tb_elink_progress(&e->links[link_index], now_ns);
}

void tb_engine_kick(struct tb_engine *e, u32 link_index)
{
	struct tb_elink *el;

	if (link_index >= e->cfg.max_links)
		return;
	el = &e->links[link_index];
	if (el->link && el->link->state == TBRDMA_LINK_UP) {
		tb_link_clock(el->link, tb_now_ns());
		tb_elink_tx(el);
	}
}

/* The earlier of two deadlines, 0 being none. */
static u64 tb_deadline_min(u64 a, u64 b)
{
	return a && (!b || a < b) ? a : b;
}

u64 tb_engine_link_deadline(struct tb_engine *e, u32 link_index)
{
	struct tb_elink *el;

	if (link_index >= e->links_end || !e->links[link_index].link)
		return 0;
	el = &e->links[link_index];
	return tb_deadline_min(tb_link_next_deadline(el->link),
			       el->rnr_wake_ns);
}

u64 tb_engine_next_deadline(struct tb_engine *e)
{
	u64 best = 0;
	u32 i;

	for (i = 0; i < e->links_end; i++)
		best = tb_deadline_min(tb_engine_link_deadline(e, i), best);
	return best;
}

void tb_qring_init(struct tb_qring *r, struct tbrdma_ring_ctrl *ctrl,
		   void *entries, u32 n, u32 entry_size)
{
	memset(ctrl, 0, sizeof(*ctrl));
	ctrl->entries = n;
	ctrl->entry_size = entry_size;
	r->ctrl = ctrl;
	r->entries = entries;
	r->mask = n - 1;
	r->entry_size = entry_size;
	r->head = 0;
}

/*
 * Publishes the new entries, then wakes the consumer if it armed the
 * ring. The consumer may arm without any lock (the kernel's rings are
 * mapped into the process): it stores armed, fences, then reads producer
 * again. The full barrier here pairs with that fence, so either we see
 * armed or the consumer sees the new producer; no wake-up is lost.
 */
void tb_qring_publish(struct tb_ctx *ctx, struct tb_qring *r)
{
	/* Release: the entries are written before the index says so. */
	smp_store_release(&r->ctrl->producer, r->head);
	tb_smp_mb();
	if (READ_ONCE(r->ctrl->armed)) {
		WRITE_ONCE(r->ctrl->armed, 0);
		if (ctx->cfg.notify)
			ctx->cfg.notify(ctx->cfg.notify_arg, r != &ctx->cq);
	}
}

void tb_ctx_push_cqe(struct tb_ctx *ctx, const struct tbrdma_cqe *cqe)
{
	struct tb_qring *r = &ctx->cq;

	memcpy(r->entries + (size_t)(r->head & r->mask) * r->entry_size, cqe,
	       sizeof(*cqe));
	r->head++;
	tb_qring_publish(ctx, r);
}

int tb_ctx_push_rqe(struct tb_ctx *ctx, u32 link_label,
		    const struct tb_engine_hdr *h, const void *data)
{
	struct tb_qring *r = &ctx->rq;
	struct tbrdma_rqe rqe;
	u8 *slot;

	tb_lock(&ctx->lock);
	/* Acquire: the process is done with the slots it released. */
	if (r->head - smp_load_acquire(&r->ctrl->consumer) > r->mask) {
		tb_unlock(&ctx->lock);
		return -EAGAIN;
	}
	slot = r->entries + (size_t)(r->head & r->mask) * r->entry_size;
	memset(&rqe, 0, sizeof(rqe));
	rqe.link = link_label;
	rqe.src_ctx = h->src_ctx;
	rqe.am_id = h->am_id;
	rqe.length = h->len;
	rqe.imm = h->imm;
	memcpy(slot, &rqe, sizeof(rqe));
	memcpy(slot + sizeof(rqe), data, h->len);
	r->head++;
	tb_qring_publish(ctx, r);
	tb_unlock(&ctx->lock);
	return 0;
}

/* Lock-free: destroying a context needs every link's lock (tb_engine.h). */
struct tb_ctx *tb_ctx_lookup(struct tb_engine *e, u32 id)
{
	/* Acquire: pairs with the release that published it whole. */
	struct tb_ctx *ctx = smp_load_acquire(&e->ctxs[id & (e->cfg.max_ctx - 1)]);

	return ctx && ctx->id == id ? ctx : NULL;
}

int tb_srq_create(struct tb_engine *e, struct tb_pd *pd,
		  const struct tb_qring *rwq, struct tb_srq **out)
{
	struct tb_srq *srq;

	if (!pd || pd->e != e || !rwq->ctrl || !tb_is_pow2(rwq->mask + 1) ||
	    rwq->entry_size < sizeof(struct tbrdma_rwqe))
		return -EINVAL;
	srq = tb_zalloc(sizeof(*srq));
	if (!srq)
		return -ENOMEM;
	srq->e = e;
	srq->pd = pd;
	srq->rwq = *rwq;
	tb_lock_init(&srq->lock);
	*out = srq;
	return 0;
}

int tb_srq_arm(struct tb_srq *srq, u32 limit, void (*reached)(void *arg),
	       void *arg)
{
	if (limit > srq->rwq.mask + 1 || (limit && !reached))
		return -EINVAL;
	tb_lock(&srq->lock);
	srq->limit = limit;
	srq->limit_reached = reached;
	srq->limit_arg = arg;
	tb_unlock(&srq->lock);
	return 0;
}

u32 tb_srq_limit(struct tb_srq *srq)
{
	u32 limit;

	tb_lock(&srq->lock);
	limit = srq->limit;
	tb_unlock(&srq->lock);
	return limit;
}

int tb_srq_destroy(struct tb_srq *srq)
{
	if (srq->users)
		return -EBUSY;
	tb_lock_destroy(&srq->lock);
	tb_free(srq);
	return 0;
}

int tb_ctx_create(struct tb_engine *e, const struct tb_ctx_config *cfg,
		  struct tb_ctx **out)
{
	u32 i, slot, id = cfg->id, cq_n = cfg->cq.mask + 1;
	int posted = cfg->rwq.ctrl || cfg->srq;
	struct tb_ctx *ctx;

	if ((!cfg->pd && (!tb_is_pow2(cfg->max_mr) || cfg->max_mr > (1u << 20))) ||
	    (cfg->pd && cfg->pd->e != e) ||
	    !tb_is_pow2(cfg->max_ep) || cfg->max_ep > (1u << 16) ||
	    !tb_is_pow2(cfg->sq_depth) || cfg->sq_depth > (1u << 16) ||
	    !cfg->cq.ctrl || !tb_is_pow2(cq_n) ||
	    cfg->cq.entry_size < sizeof(struct tbrdma_cqe) ||
	    cfg->rnr_delay_ns > TB_RNR_DELAY_MAX_NS ||
	    (cfg->dgram && (!posted || cfg->admit_bound)))
		return -EINVAL;
	/* Messages or posted receives, each with rings of the right size. */
	if (posted && (cfg->rq.ctrl || !cfg->rcq.ctrl ||
		       (cfg->srq && (cfg->rwq.ctrl || cfg->srq->e != e ||
				      cfg->srq->pd != cfg->pd)) ||
		       (!cfg->srq && (!tb_is_pow2(cfg->rwq.mask + 1) ||
				      cfg->rwq.entry_size <
				      sizeof(struct tbrdma_rwqe))) ||
		       !tb_is_pow2(cfg->rcq.mask + 1) ||
		       cfg->rcq.entry_size < sizeof(struct tbrdma_cqe)))
		return -EINVAL;
	if (!posted && (!cfg->rq.ctrl || !tb_is_pow2(cfg->rq.mask + 1) ||
			cfg->rq.entry_size < TBRDMA_RQE_SLOT))
		return -EINVAL;
	if (!id) {
		/* A generation in the high bits keeps ids from recurring. */
		for (slot = 0; slot < e->cfg.max_ctx && e->ctxs[slot]; slot++)
			;
		if (slot == e->cfg.max_ctx)
			return -ENOSPC;
		do {
			e->ctx_gen++;
			id = ((e->ctx_gen << tb_log2(e->cfg.max_ctx)) | slot) &
			     TB_CTX_ID_MASK;
		} while (!(id >> tb_log2(e->cfg.max_ctx)));
	}
	slot = id & (e->cfg.max_ctx - 1);
	if (e->ctxs[slot])
		return -EEXIST;
	ctx = tb_zalloc(sizeof(*ctx));
	if (!ctx)
		return -ENOMEM;
	ctx->e = e;
	ctx->id = id;
	do {
		ctx->secret = tb_random_u64();
	} while (!ctx->secret);
	ctx->cfg = *cfg;
	ctx->cq = cfg->cq;
	ctx->rq = cfg->rq;
	ctx->rwq = cfg->rwq;
	ctx->rcq = cfg->rcq;
	ctx->srq = cfg->srq;
	ctx->ep_bits = tb_log2(cfg->max_ep);
	ctx->pd = cfg->pd;
	if (!ctx->pd) {
		if (tb_pd_create(e, cfg->max_mr, &ctx->pd)) {
			tb_free(ctx);
			return -ENOMEM;
		}
		ctx->own_pd = 1;
	}
	ctx->ep_slots = cfg->max_ep < TB_EP_SLOTS_MIN ? cfg->max_ep :
						       TB_EP_SLOTS_MIN;
	ctx->eps = tb_zalloc(sizeof(*ctx->eps) * ctx->ep_slots);
	ctx->wqes = tb_zalloc(sizeof(*ctx->wqes) * cq_n);
	if (!ctx->eps || !ctx->wqes) {
		if (ctx->own_pd)
			tb_pd_destroy(ctx->pd, NULL, NULL);
		tb_free(ctx->eps);
		tb_free(ctx->wqes);
		tb_free(ctx);
		return -ENOMEM;
	}
	for (i = cq_n; i-- > 0;) {
		ctx->wqes[i].next = ctx->wqe_free;
		ctx->wqe_free = &ctx->wqes[i];
	}
	tb_lock_init(&ctx->lock);
	if (ctx->srq)
		ctx->srq->users++;
	/* Release: a link that finds it sees it whole. */
	smp_store_release(&e->ctxs[slot], ctx);
	WRITE_ONCE(e->nr_ctx, e->nr_ctx + 1);
	*out = ctx;
	return 0;
}

void tb_ctx_destroy(struct tb_ctx *ctx, void (*release)(void *arg, void *priv),
		    void *arg)
{
	struct tb_engine *e = ctx->e;
	u32 i;

	for (i = 0; i < ctx->ep_slots; i++)
		if (ctx->eps[i])
			tb_ep_destroy(ctx, ctx->eps[i]->handle);
	if (ctx->own_pd)
		tb_pd_destroy(ctx->pd, release, arg);
	WRITE_ONCE(e->ctxs[ctx->id & (e->cfg.max_ctx - 1)], NULL);
	WRITE_ONCE(e->nr_ctx, e->nr_ctx - 1);
	if (ctx->srq)
		ctx->srq->users--;
	tb_lock_destroy(&ctx->lock);
	tb_free(ctx->ep_spare);
	tb_free(ctx->eps);
	tb_free(ctx->wqes);
	tb_free(ctx);
}

int tb_ctx_bind(struct tb_ctx *ctx, u32 link_index, u32 remote_ctx)
{
	struct tb_engine *e = ctx->e;

	if (!ctx->cfg.admit_bound || link_index >= e->cfg.max_links)
		return -EINVAL;
	if (!e->links[link_index].link)
		return -ENOTCONN;
	ctx->peer_link = link_index;
	/* A link added to the slot later is another: it is not admitted. */
	ctx->peer_link_gen = e->links[link_index].gen;
	ctx->peer_ctx = remote_ctx;
	ctx->peer_bound = 1;
	return 0;
}

void tb_ctx_unbind(struct tb_ctx *ctx)
{
	ctx->peer_bound = 0;
}

void tb_ctx_set_remote_access(struct tb_ctx *ctx, u32 access)
{
	WRITE_ONCE(ctx->remote_denied, TB_ACCESS_REMOTE & ~access);
}

void tb_ctx_set_rd_max(struct tb_ctx *ctx, u32 n)
{
	ctx->rd_max = n;
}

void tb_ctx_reset(struct tb_ctx *ctx)
{
	u32 i;

	for (i = 0; i < ctx->ep_slots; i++)
		if (ctx->eps[i])
			tb_ep_destroy(ctx, ctx->eps[i]->handle);
	ctx->peer_bound = 0;
	ctx->qkey_set = 0;
	ctx->rd_max = 0;
	tb_ctx_set_remote_access(ctx, 0);
	WRITE_ONCE(ctx->error, 0);
	if (ctx->rcq.ctrl)
		tb_ctx_drop_recv(ctx);
}

int tb_ctx_set_qkey(struct tb_ctx *ctx, u32 qkey)
{
	if (!ctx->cfg.dgram)
		return -EINVAL;
	ctx->qkey = qkey;
	ctx->qkey_set = 1;
	return 0;
}

int tb_ctx_set_rnr(struct tb_ctx *ctx, u64 delay_ns, u32 tries)
{
	if (delay_ns > TB_RNR_DELAY_MAX_NS)
		return -EINVAL;
	ctx->cfg.rnr_delay_ns = delay_ns;
	ctx->cfg.rnr_tries = tries;
	return 0;
}

u32 tb_ctx_id(const struct tb_ctx *ctx)
{
	return ctx->id;
}

u64 tb_ctx_secret(const struct tb_ctx *ctx)
{
	return ctx->secret;
}

u32 tb_engine_ctx_free(const struct tb_engine *e)
{
	return e->cfg.max_ctx - READ_ONCE(e->nr_ctx);
}

u32 tb_ctx_outstanding(const struct tb_ctx *ctx)
{
	return READ_ONCE(ctx->outstanding);
}
