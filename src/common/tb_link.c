// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Link protocol: selective repeat over an unreliable frame pipe, with
 * receiver credits and epoch-checked bring-up. See tb_link.h for the
 * contract.
 */
#include "tb_link_priv.h"

/* Receive slots kept back from credits for ACK and HELLO frames. */
static u32 tb_link_rx_reserve(const struct tb_link *link)
{
	u32 r = link->cfg.rx_slots / 8;

	return r ? r : 1;
}

/*
 * The retransmission timeout while nothing is being resent: the smoothed
 * round trip plus four deviations (as TCP), within the configured bounds;
 * before any round trip was measured, rto_init_ns.
 */
u64 tb_link_rto_base(const struct tb_link *link)
{
	u64 rto = link->srtt_ns + 4 * link->rttvar_ns;

	if (!link->srtt_ns)
		rto = link->cfg.rto_init_ns;
	if (rto < link->cfg.rto_min_ns)
		rto = link->cfg.rto_min_ns;
	return rto < link->cfg.rto_max_ns ? rto : link->cfg.rto_max_ns;
}

void tb_link_config_default(struct tb_link_config *cfg)
{
	cfg->rx_slots = 64;
	cfg->tx_window = 64;
	cfg->rto_init_ns = 2000000ull;		/* 2 ms */
	cfg->rto_min_ns = 50000ull;		/* 50 us */
	cfg->rto_max_ns = 200000000ull;		/* 200 ms */
	cfg->dead_ns = 10000000000ull;		/* 10 s */
	cfg->hello_ns = 5000000ull;		/* 5 ms */
	cfg->ack_delay_ns = 20000ull;		/* 20 us */
}

/* The largest power of two not above v (v > 0). */
static u32 tb_pow2_floor(u32 v)
{
	while (v & (v - 1))
		v &= v - 1;
	return v;
}

/*
 * Frames kept after a gap: as many as the peer may send ahead of the
 * next expected one (its credit), at most what a selective ack can name.
 */
static u32 tb_link_ooo_slots(u32 rx_slots)
{
	u32 n = tb_pow2_floor(rx_slots);

	if (n < rx_slots)
		n *= 2;
	return n < TB_LINK_SACK_BITS ? n : TB_LINK_SACK_BITS;
}

static void tb_link_free(struct tb_link *link)
{
	tb_free(link->window);
	tb_free(link->frames);
	tb_free(link->ooo);
	tb_free(link->ooo_frames);
	link->window = NULL;
	link->frames = NULL;
	link->ooo = NULL;
	link->ooo_frames = NULL;
}

int tb_link_init(struct tb_link *link, const struct tb_link_config *cfg,
		 const struct tb_phy_ops *phy_ops, void *phy,
		 const struct tb_link_user_ops *user_ops, void *user)
{
	size_t stride = (size_t)TBRDMA_FRAME_MAX + phy_ops->ext_max;
	u32 i;

	if (!cfg->rx_slots || cfg->rx_slots < 2 || !cfg->tx_window ||
	    cfg->tx_window > (1u << 16) || cfg->rx_slots > (1u << 16) ||
	    2 * cfg->ack_delay_ns > cfg->rto_min_ns ||
	    cfg->rto_min_ns > cfg->rto_max_ns ||
	    phy_ops->ext_max > TB_EXT_MAX)
		return -EINVAL;
	memset(link, 0, sizeof(*link));
	link->cfg = *cfg;
	/*
	 * Slots are indexed by seq % tx_window: only a power of two keeps
	 * that continuous where the 32-bit sequence wraps (the XDomain
	 * window is the peer's choice).
	 */
	link->cfg.tx_window = tb_pow2_floor(cfg->tx_window);
	link->phy_ops = phy_ops;
	link->phy = phy;
	link->user_ops = user_ops;
	link->user = user;
	link->state = TBRDMA_LINK_CONNECTING;
	link->ooo_slots = tb_link_ooo_slots(cfg->rx_slots);
	link->window = tb_zalloc(sizeof(*link->window) * link->cfg.tx_window);
	link->frames = tb_zalloc(stride * link->cfg.tx_window);
	link->ooo = tb_zalloc(sizeof(*link->ooo) * link->ooo_slots);
	link->ooo_frames = tb_zalloc(stride * link->ooo_slots);
	if (!link->window || !link->frames || !link->ooo || !link->ooo_frames) {
		tb_link_free(link);
		return -ENOMEM;
	}
	for (i = 0; i < link->cfg.tx_window; i++)
		link->window[i].frame = link->frames + (size_t)i * stride;
	for (i = 0; i < link->ooo_slots; i++)
		link->ooo[i].frame = link->ooo_frames + (size_t)i * stride;
	do {
		link->epoch = tb_random_u32();
	} while (!link->epoch);
	link->tx_next = tb_random_u32();
	link->tx_una = link->tx_next;
	link->tx_resend = link->tx_next;
	link->tx_credit = link->tx_next;
	link->sack_marked = link->tx_next;
	link->rto_ns = tb_link_rto_base(link);
	link->progress_ns = tb_now_ns();
	link->peer_seen_ns = link->progress_ns;
	link->now_ns = link->progress_ns;
	return 0;
}

/* Slot s no longer refers to its ext's owner. */
static void tb_link_put_ext(struct tb_link *link, struct tb_link_slot *s)
{
	if (!s->has_ext || !s->ext.owner)
		return;
	link->user_ops->ext_put(link->user, &s->ext);
	s->ext.owner = NULL;
	s->ext.dma_cookie = NULL;
}

void tb_link_release(struct tb_link *link, u32 from, u32 to)
{
	if (!link->window)
		return;
	for (; tb_seq_before(from, to); from++) {
		struct tb_link_slot *s = tb_link_slot(link, from);

		if (s->lost) {
			s->lost = 0;
			link->nlost--;
		}
		s->sacked = 0;
		tb_link_put_ext(link, s);
		s->has_ext = 0;
	}
}

void tb_link_destroy(struct tb_link *link)
{
	tb_link_release(link, link->tx_una, link->tx_next);
	tb_link_free(link);
	link->state = TBRDMA_LINK_DOWN;
}

/* What this end tells the peer in every header it sends. */
static void tb_link_fill_hdr(struct tb_link *link, struct tb_link_hdr *h,
			     u8 type)
{
	memset(h, 0, sizeof(*h));
	h->type = type;
	h->ack = link->rx_next;
	h->credit = link->rx_next + link->cfg.rx_slots - tb_link_rx_reserve(link);
	h->epoch_src = link->epoch;
	h->epoch_dst = link->peer_epoch;
}

void tb_link_fail(struct tb_link *link)
{
	if (link->state == TBRDMA_LINK_DOWN)
		return;
	link->state = TBRDMA_LINK_DOWN;
	/* Nothing is sent again: let go of the user's memory now. */
	tb_link_release(link, link->tx_una, link->tx_next);
	link->user_ops->state_changed(link->user, link, TBRDMA_LINK_DOWN);
}

void tb_link_set_up(struct tb_link *link, u64 now)
{
	if (link->state != TBRDMA_LINK_CONNECTING)
		return;
	link->state = TBRDMA_LINK_UP;
	link->progress_ns = now;
	link->user_ops->state_changed(link->user, link, TBRDMA_LINK_UP);
}

/*
 * An ACK may carry the user's ack only while every DATA frame we sent is
 * acked: none can reach the peer after it with an older word.
 */
static int tb_link_ack_may_carry_user_ack(const struct tb_link *link)
{
	return link->user_ops->user_ack && link->tx_una == link->tx_next;
}

void tb_link_send_ctrl(struct tb_link *link, u8 type, u16 flags)
{
	u8 buf[TB_LINK_HDR_LEN + TB_LINK_SACK_LEN];
	struct tb_link_hdr h;
	int user_ack_counts = 0;
	int ret;

	tb_link_fill_hdr(link, &h, type);
	h.flags = flags;
	if (type == TB_LINK_HELLO)
		h.seq = link->tx_una;
	if (type == TB_LINK_ACK && link->ooo_count) {
		h.flags |= TB_LINK_F_SACK;
		h.len = TB_LINK_SACK_LEN;
		h.sack = tb_link_sack_map(link);
	}
	if (type == TB_LINK_ACK && tb_link_ack_may_carry_user_ack(link)) {
		h.flags |= TB_LINK_F_USER_ACK;
		h.user_ack = link->user_ops->user_ack(link->user, link);
		user_ack_counts = tb_seq_after(h.ack, link->ack_sent);
	}
	tb_link_hdr_encode(buf, &h);
	ret = link->phy_ops->xmit(link->phy, buf, TB_LINK_HDR_LEN + h.len,
				  NULL);
	if (ret == -ENOTCONN) {
		tb_link_fail(link);
		return;
	}
	if (ret == 0 && type == TB_LINK_ACK) {
		link->ack_pending = 0;
		link->credit_sent = h.credit;
		link->ack_sent = h.ack;
		link->stats.tx_acks++;
		if (user_ack_counts)
			link->user_ops->user_ack_sent(link->user, link,
						      h.user_ack);
	}
}

int tb_link_ack_due(const struct tb_link *link)
{
	return link->ack_pending && link->now_ns >= link->ack_due_ns;
}

void tb_link_ack_now(struct tb_link *link)
{
	link->ack_due_ns = 0;
}

void tb_link_flush_ack(struct tb_link *link)
{
	if (link->state == TBRDMA_LINK_UP && tb_link_ack_due(link))
		tb_link_send_ctrl(link, TB_LINK_ACK, 0);
}

int tb_link_ack_takes_user_ack(const struct tb_link *link)
{
	return tb_link_ack_due(link) && tb_link_ack_may_carry_user_ack(link) &&
	       tb_seq_after(link->rx_next, link->ack_sent);
}

/*
 * Whether the peer should ack frame seq without delay: it is sent again,
 * or it takes the frames in flight past half of what the window or the
 * peer's credit allows.
 */
static int tb_link_asks_ack(const struct tb_link *link, u32 seq,
			    const struct tb_link_slot *s)
{
	u32 room = link->tx_credit - link->tx_una;

	if (room > link->cfg.tx_window)
		room = link->cfg.tx_window;
	return s->sent_ns || 2 * (seq + 1 - link->tx_una) > room;
}

/* Puts window slot seq on the cable, with our current ack and credit. */
static int tb_link_xmit_slot(struct tb_link *link, u32 seq, u64 now)
{
	struct tb_link_slot *s = tb_link_slot(link, seq);
	struct tb_link_hdr h;
	int ret;

	tb_link_fill_hdr(link, &h, TB_LINK_DATA);
	h.seq = seq;
	h.len = (u16)(s->len - TB_LINK_HDR_LEN);
	if (s->has_ext) {
		h.flags = TB_LINK_F_EXT;
		h.ext_len = (u16)s->ext.len;
	}
	if (tb_link_asks_ack(link, seq, s))
		h.flags |= TB_LINK_F_ACK_NOW;
	tb_link_hdr_encode(s->frame, &h);
	ret = link->phy_ops->xmit(link->phy, s->frame, s->len,
				  s->has_ext ? &s->ext : NULL);
	if (ret)
		return ret;
	if (s->sent_ns) {
		link->stats.retransmits++;
		s->resent = 1;
	}
	if (s->lost) {
		s->lost = 0;
		link->nlost--;
	}
	s->sent_ns = now;
	link->ack_pending = 0;
	link->ack_sent = h.ack;
	return 0;
}

/* Resends the frames a selective ack showed lost; -EAGAIN: not all. */
static int tb_link_resend_lost(struct tb_link *link, u64 now)
{
	u32 seq;

	for (seq = link->tx_una; link->nlost && link->state == TBRDMA_LINK_UP &&
	     tb_seq_before(seq, link->tx_resend); seq++) {
		int ret;

		if (!tb_link_slot(link, seq)->lost)
			continue;
		ret = tb_link_xmit_slot(link, seq, now);
		if (ret == -EAGAIN)
			return -EAGAIN;
		if (ret) {
			tb_link_fail(link);
			return -ENOTCONN;
		}
	}
	return 0;
}

static void tb_link_resend(struct tb_link *link, u64 now)
{
	if (link->nlost && tb_link_resend_lost(link, now))
		return;
	while (link->state == TBRDMA_LINK_UP &&
	       tb_seq_before(link->tx_resend, link->tx_next)) {
		int ret = tb_link_xmit_slot(link, link->tx_resend, now);

		if (ret == -EAGAIN)
			return;
		if (ret) {
			tb_link_fail(link);
			return;
		}
		link->tx_resend++;
	}
}

/* Resends the oldest unacked frame only. */
static void tb_link_probe(struct tb_link *link, u64 now)
{
	int ret = tb_link_xmit_slot(link, link->tx_una, now);

	if (ret && ret != -EAGAIN)
		tb_link_fail(link);
}

static void tb_link_timers(struct tb_link *link, u64 now)
{
	if (link->state == TBRDMA_LINK_CONNECTING) {
		if (tb_link_since(now, link->progress_ns) > link->cfg.dead_ns) {
			tb_link_fail(link);
			return;
		}
		if (tb_link_since(now, link->last_hello_ns) >= link->cfg.hello_ns ||
		    !link->last_hello_ns) {
			link->last_hello_ns = now;
			tb_link_send_ctrl(link, TB_LINK_HELLO, 0);
		}
		return;
	}
	if (link->tx_una == link->tx_next)
		return;
	/* Data is due and the peer has said nothing at all for that long. */
	if (tb_link_since(now, link->progress_ns) > link->cfg.dead_ns &&
	    tb_link_since(now, link->peer_seen_ns) > link->cfg.dead_ns) {
		tb_link_fail(link);
		return;
	}
	if (link->tx_resend == link->tx_una)
		return;		/* already going back */
	if (tb_link_since(now, tb_link_slot(link, link->tx_una)->sent_ns) >=
	    link->rto_ns) {
		link->stats.timeouts++;
		/* What a selective ack shows missing now is resent again. */
		link->sack_marked = link->tx_una;
		tb_link_probe(link, now);
		link->rto_ns *= 2;
		if (link->rto_ns > link->cfg.rto_max_ns)
			link->rto_ns = link->cfg.rto_max_ns;
	}
}

void tb_link_clock(struct tb_link *link, u64 now_ns)
{
	if (now_ns > link->now_ns)
		link->now_ns = now_ns;
}

int tb_link_progress(struct tb_link *link, u64 now_ns)
{
	int handled;

	if (link->state == TBRDMA_LINK_DOWN)
		return 0;
	/*
	 * Hosts may call with a time read before they took their lock, so
	 * an earlier one than the last call's: the link's clock never goes
	 * back (the engine measures the receiver-not-ready timeout on it).
	 */
	tb_link_clock(link, now_ns);
	handled = tb_link_receive(link, now_ns);
	if (link->state == TBRDMA_LINK_DOWN)
		return handled;
	tb_link_timers(link, now_ns);
	tb_link_resend(link, now_ns);
	return handled;
}

int tb_link_can_send(const struct tb_link *link)
{
	return link->state == TBRDMA_LINK_UP &&
	       link->tx_next - link->tx_una < link->cfg.tx_window &&
	       tb_seq_before(link->tx_next, link->tx_credit);
}

void *tb_link_tx_buf(struct tb_link *link)
{
	return tb_link_slot(link, link->tx_next)->frame + TB_LINK_HDR_LEN;
}

static void tb_link_commit(struct tb_link *link, u32 payload_len,
			   const struct tb_link_ext *ext)
{
	struct tb_link_slot *s = tb_link_slot(link, link->tx_next);
	struct tb_link_hdr h;
	u64 now = link->now_ns;

	if (link->tx_una == link->tx_next)
		link->progress_ns = now;	/* first frame in flight */
	tb_link_fill_hdr(link, &h, TB_LINK_DATA);
	h.seq = link->tx_next;
	h.len = (u16)payload_len;
	tb_link_hdr_encode(s->frame, &h);
	s->len = TB_LINK_HDR_LEN + payload_len;
	s->sent_ns = 0;
	s->resent = 0;
	s->has_ext = !!ext;
	if (ext) {
		s->ext = *ext;
		link->stats.tx_ext++;
		link->stats.tx_bytes += ext->len;
	}
	link->tx_next++;
	link->stats.tx_frames++;
	link->stats.tx_bytes += s->len;
	/* In order behind any frames still waiting to be sent again. */
	tb_link_resend(link, now);
}

void tb_link_tx_commit(struct tb_link *link, u32 payload_len)
{
	tb_link_commit(link, payload_len, NULL);
}

void tb_link_tx_commit_ext(struct tb_link *link, u32 payload_len,
			   const struct tb_link_ext *ext)
{
	/* Callers check tb_link_can_send(); a link that cannot, holds nothing. */
	if (link->state != TBRDMA_LINK_UP || !link->phy_ops->ext_max ||
	    !ext->len || ext->len > link->phy_ops->ext_max) {
		if (ext->owner)
			link->user_ops->ext_put(link->user, ext);
		return;
	}
	tb_link_commit(link, payload_len, ext);
}

u32 tb_link_detach_ext(struct tb_link *link, const void *owner)
{
	u32 seq, n = 0;

	if (!link->window || !link->phy_ops->ext_max)
		return 0;
	for (seq = link->tx_una; tb_seq_before(seq, link->tx_next); seq++) {
		struct tb_link_slot *s = tb_link_slot(link, seq);
		u8 *copy = s->frame + TBRDMA_FRAME_MAX;

		if (!s->has_ext || s->ext.owner != owner)
			continue;
		memcpy(copy, s->ext.data, s->ext.len);
		tb_link_put_ext(link, s);
		s->ext.data = copy;
		link->stats.ext_detached++;
		n++;
	}
	return n;
}

u64 tb_link_next_deadline(const struct tb_link *link)
{
	u64 d = 0;

	if (link->state == TBRDMA_LINK_DOWN)
		return 0;
	if (link->state == TBRDMA_LINK_CONNECTING)
		return link->last_hello_ns + link->cfg.hello_ns;
	if (link->tx_resend != link->tx_next || link->nlost)
		return 1;
	if (link->tx_una != link->tx_next)
		d = tb_link_slot(link, link->tx_una)->sent_ns + link->rto_ns;
	if (link->ack_pending && (!d || link->ack_due_ns < d))
		d = link->ack_due_ns ? link->ack_due_ns : 1;
	return d;
}
