// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Link protocol, receiving side: the peer's acks (cumulative and
 * selective), in-order delivery, and the frames kept after a gap until it
 * is filled. See tb_link.h for the contract.
 */
#include "tb_link_priv.h"

/* The selective ack: bit i set, frame rx_next + 1 + i is kept. */
u64 tb_link_sack_map(const struct tb_link *link)
{
	u64 map = 0;
	u32 i;

	for (i = 0; i + 1 < link->ooo_slots; i++) {
		u32 seq = link->rx_next + 1 + i;

		if (tb_link_kept(link, seq)->present)
			map |= 1ull << i;
	}
	return map;
}

/* HELLO: learn the peer's epoch and first sequence number, answer. */
static void tb_link_rx_hello(struct tb_link *link, const struct tb_link_hdr *h,
			     u64 now)
{
	int learned = 0;

	if (link->peer_epoch && h->epoch_src != link->peer_epoch) {
		/* The peer restarted: everything in flight is lost. */
		tb_link_fail(link);
		return;
	}
	if (!link->peer_epoch) {
		link->peer_epoch = h->epoch_src;
		link->rx_next = h->seq;
		link->ack_sent = h->seq;
		learned = 1;
	}
	if (h->epoch_dst == link->epoch) {
		if (tb_seq_after(h->credit, link->tx_credit))
			link->tx_credit = h->credit;
		tb_link_set_up(link, now);
	}
	if (learned || !(h->flags & TB_LINK_F_HELLO_REPLY))
		tb_link_send_ctrl(link, TB_LINK_HELLO, TB_LINK_F_HELLO_REPLY);
}

/*
 * Round trip of the newest frame an ack covers, unless it was sent more
 * than once (Karn: its ack may be for either copy); smoothed as TCP does
 * for the retransmission timeout, and its least kept apart: a frame behind
 * a queue of others measures the queue, not the link.
 */
static void tb_link_rtt_sample(struct tb_link *link,
			       const struct tb_link_slot *s, u64 now)
{
	u64 rtt, dev;

	if (s->resent || !s->sent_ns || now < s->sent_ns)
		return;
	rtt = now - s->sent_ns;
	if (!link->min_rtt_ns || rtt < link->min_rtt_ns)
		link->min_rtt_ns = rtt ? rtt : 1;
	if (!link->srtt_ns) {
		link->srtt_ns = rtt ? rtt : 1;
		link->rttvar_ns = rtt / 2;
		return;
	}
	dev = rtt > link->srtt_ns ? rtt - link->srtt_ns : link->srtt_ns - rtt;
	link->rttvar_ns = (3 * link->rttvar_ns + dev) / 4;
	/* 0 means "no sample yet": a zero round trip must not read as one. */
	link->srtt_ns = (7 * link->srtt_ns + rtt) / 8 ? : 1;
}

u32 tb_link_rtt_ns(const struct tb_link *link)
{
	return link->min_rtt_ns < 0xffffffffu ? (u32)link->min_rtt_ns :
						0xffffffffu;
}

/*
 * The peer keeps the frames sack marks after ack: those it lacks before
 * the newest it keeps are lost (or overtaken), and are resent once.
 */
static void tb_link_rx_sack(struct tb_link *link, const struct tb_link_hdr *h)
{
	u32 seq, high = link->tx_una, i;
	u64 sack = h->sack;

	for (i = 0; i < TB_LINK_SACK_BITS; i++) {
		if (!((sack >> i) & 1))
			continue;
		seq = h->ack + 1 + i;
		if (!tb_seq_before(seq, link->tx_next))
			break;		/* never sent: not ours to believe */
		if (tb_seq_before(seq, link->tx_una))
			continue;
		tb_link_slot(link, seq)->sacked = 1;
		high = seq;
	}
	/* STALL: it holds frame ack too, and just cannot take it yet. */
	if ((h->flags & TB_LINK_F_STALL) && h->ack == link->tx_una &&
	    link->sack_marked == link->tx_una)
		link->sack_marked++;
	for (seq = link->sack_marked; tb_seq_before(seq, high); seq++) {
		struct tb_link_slot *s = tb_link_slot(link, seq);

		if (!s->sacked && !s->lost) {
			s->lost = 1;
			link->nlost++;
		}
	}
	if (tb_seq_after(high, link->sack_marked))
		link->sack_marked = high;
}

/* The ack and credit every DATA and ACK frame carries. */
static int tb_link_rx_ack(struct tb_link *link, const struct tb_link_hdr *h,
			  u64 now)
{
	if (tb_seq_after(h->ack, link->tx_next) ||
	    tb_seq_before(h->ack, link->tx_una - link->cfg.tx_window))
		return -EBADMSG;
	if (tb_seq_after(h->ack, link->tx_una)) {
		/* An ack held back by a resend hole says nothing of the RTT. */
		if (!tb_link_slot(link, link->tx_una)->resent)
			tb_link_rtt_sample(link, tb_link_slot(link, h->ack - 1),
					   now);
		tb_link_release(link, link->tx_una, h->ack);
		link->tx_una = h->ack;
		link->progress_ns = now;
		link->rto_ns = tb_link_rto_base(link);
		if (tb_seq_before(link->tx_resend, link->tx_una))
			link->tx_resend = link->tx_una;
		if (tb_seq_before(link->sack_marked, link->tx_una))
			link->sack_marked = link->tx_una;
	}
	if (tb_seq_after(h->credit, link->tx_credit))
		link->tx_credit = h->credit;
	if ((h->flags & TB_LINK_F_STALL) && h->ack == link->tx_una &&
	    link->tx_una != link->tx_next) {
		/*
		 * It has the oldest frame, just cannot take it yet: wait,
		 * longer than it takes to say so again.
		 */
		tb_link_slot(link, link->tx_una)->sent_ns = now;
		tb_link_slot(link, link->tx_una)->resent = 1;
		link->rto_ns = tb_link_rto_base(link);
		if (link->rto_ns < link->cfg.rto_init_ns)
			link->rto_ns = link->cfg.rto_init_ns;
	}
	if (h->flags & TB_LINK_F_SACK) {
		tb_link_rx_sack(link, h);
	} else if ((h->flags & TB_LINK_F_GAP) && h->ack != link->tx_next &&
		   h->ack != link->gap_acked) {
		/* It kept nothing after the hole: all again, once per hole. */
		link->gap_acked = h->ack;
		link->tx_resend = link->tx_una;
		link->stats.retransmits++;
	}
	return 0;
}

/*
 * A frame to ack: within ack_delay_ns, so that DATA we send meanwhile
 * carries it, or at once when asked.
 */
static void tb_link_owe_ack(struct tb_link *link, int at_once)
{
	if (!link->ack_pending)
		link->ack_due_ns = link->now_ns + link->cfg.ack_delay_ns;
	link->ack_pending = 1;
	if (at_once)
		tb_link_ack_now(link);
}

/* Hands frame rx_next to the user; -EAGAIN: it cannot take it yet. */
static int tb_link_deliver(struct tb_link *link, const u8 *frame, u32 len,
			   const void *ext, u32 ext_len)
{
	int ret = link->user_ops->deliver(link->user, link,
					  frame + TB_LINK_HDR_LEN,
					  len - TB_LINK_HDR_LEN, ext, ext_len);

	if (ret == -EAGAIN) {
		link->stats.rx_stalls++;
		return -EAGAIN;
	}
	/* Delivered, or refused as garbage: either way it is consumed. */
	link->rx_next++;
	tb_link_owe_ack(link, ret == TB_DELIVER_ACK_NOW);
	link->stats.rx_frames++;
	link->stats.rx_bytes += len + ext_len;
	return 0;
}

/* Tells the peer to resend everything from rx_next, once per hole. */
static void tb_link_send_gap(struct tb_link *link)
{
	if (link->rx_gap_sent == link->rx_next)
		return;
	link->rx_gap_sent = link->rx_next;
	tb_link_send_ctrl(link, TB_LINK_ACK, TB_LINK_F_GAP);
}

/*
 * A DATA frame after a gap: kept, if it falls within what the peer may
 * send ahead, until the gap is filled. The first after a new gap is
 * answered at once with a selective ack.
 */
static void tb_link_rx_keep(struct tb_link *link, const struct tb_phy_rx *rx,
			    u32 seq)
{
	struct tb_link_kept *k = tb_link_kept(link, seq);
	u32 ext_len = rx->ext ? rx->ext_len : 0;
	int new_gap;

	link->stats.rx_gap++;
	if (seq - link->rx_next >= link->ooo_slots ||
	    ext_len > link->phy_ops->ext_max) {
		/* Asked for again once what is kept went up, or now. */
		if (link->ooo_count)
			link->ooo_dropped = 1;
		else
			tb_link_send_gap(link);
		return;
	}
	if (k->present) {
		link->stats.rx_dup++;
		return;
	}
	memcpy(k->frame, rx->frame, rx->len);
	if (ext_len)
		memcpy(k->frame + TBRDMA_FRAME_MAX, rx->ext, ext_len);
	k->len = rx->len;
	k->ext_len = ext_len;
	k->present = 1;
	new_gap = !link->ooo_count || tb_seq_after(seq, link->ooo_high + 1);
	if (!link->ooo_count || tb_seq_after(seq, link->ooo_high))
		link->ooo_high = seq;
	link->ooo_count++;
	if (new_gap)
		tb_link_send_ctrl(link, TB_LINK_ACK, TB_LINK_F_GAP);
}

/*
 * Delivers the kept frames that are next in order. Once rx_next moved
 * (moved: it did before the call), the peer hears of the next gap, or,
 * if frames beyond the kept ones were dropped, that it must go back.
 * Returns -EAGAIN when the user cannot take the next one yet.
 */
static int tb_link_rx_drain(struct tb_link *link, int moved)
{
	while (link->ooo_count) {
		struct tb_link_kept *k = tb_link_kept(link, link->rx_next);

		/* A delivery can take the link down: nothing more goes up. */
		if (!k->present || link->state == TBRDMA_LINK_DOWN)
			break;
		if (tb_link_deliver(link, k->frame, k->len,
				    k->ext_len ? k->frame + TBRDMA_FRAME_MAX :
				    NULL, k->ext_len) == -EAGAIN)
			return -EAGAIN;
		k->present = 0;
		link->ooo_count--;
		moved = 1;
	}
	if (!moved || link->state == TBRDMA_LINK_DOWN)
		return 0;
	if (link->ooo_count) {
		tb_link_send_ctrl(link, TB_LINK_ACK, TB_LINK_F_GAP);
	} else if (link->ooo_dropped) {
		link->ooo_dropped = 0;
		tb_link_send_gap(link);
	}
	return 0;
}

/*
 * Handles one received frame. Returns 0 when it may be released, or
 * -EAGAIN when the user could not take it yet.
 */
static int tb_link_rx_frame(struct tb_link *link, const struct tb_phy_rx *rx,
			    u64 now)
{
	const u8 *frame = rx->frame;
	struct tb_link_hdr h;

	if (tb_link_hdr_decode(frame, rx->len, &h)) {
		link->stats.rx_bad++;
		return 0;
	}
	/*
	 * The ext buffer must be the one the header announces: one lost or
	 * cut short on the cable makes the frame as good as lost.
	 */
	if ((h.flags & TB_LINK_F_EXT) ?
	    !rx->ext || rx->ext_len != h.ext_len : !!rx->ext) {
		link->stats.rx_bad++;
		return 0;
	}
	if (h.type == TB_LINK_HELLO) {
		tb_link_rx_hello(link, &h, now);
		link->peer_seen_ns = now;
		return 0;
	}
	/* Frames of another incarnation of either end are not ours. */
	if (!link->peer_epoch || h.epoch_src != link->peer_epoch ||
	    h.epoch_dst != link->epoch) {
		link->stats.rx_bad++;
		return 0;
	}
	link->peer_seen_ns = now;
	tb_link_set_up(link, now);
	if (tb_link_rx_ack(link, &h, now)) {
		link->stats.rx_bad++;
		return 0;
	}
	if (h.type == TB_LINK_ACK) {
		if ((h.flags & TB_LINK_F_USER_ACK) && link->user_ops->user_ack_rx)
			link->user_ops->user_ack_rx(link->user, link,
						    h.user_ack);
		return 0;
	}

	if (tb_seq_before(h.seq, link->rx_next) ||
	    (h.seq == link->rx_next && tb_link_kept(link, h.seq)->present)) {
		link->stats.rx_dup++;
		/* The peer resent: our ack is lost or late. */
		tb_link_owe_ack(link, 1);
		return 0;
	}
	if (h.seq != link->rx_next) {
		tb_link_rx_keep(link, rx, h.seq);
		return 0;
	}
	if (tb_link_deliver(link, frame, rx->len, rx->ext,
			    rx->ext ? rx->ext_len : 0) == -EAGAIN)
		return -EAGAIN;
	if (h.flags & TB_LINK_F_ACK_NOW)
		tb_link_ack_now(link);
	if (link->ooo_count || link->ooo_dropped)
		tb_link_rx_drain(link, 1);
	return 0;
}

/*
 * The user cannot take the next frame: tell the peer, more often than its
 * retransmission timeout, that it need not resend.
 */
static void tb_link_rx_stalled(struct tb_link *link, u64 now)
{
	if (tb_link_since(now, link->stall_ack_ns) >= link->cfg.rto_init_ns / 2) {
		link->stall_ack_ns = now;
		tb_link_send_ctrl(link, TB_LINK_ACK, TB_LINK_F_STALL);
	}
}

int tb_link_rx_held(const struct tb_link *link)
{
	return link->ooo_count && tb_link_kept(link, link->rx_next)->present;
}

u32 tb_link_rx_budget(const struct tb_link *link)
{
	return link->cfg.rx_slots;
}

int tb_link_receive(struct tb_link *link, u64 now)
{
	int handled = 0;
	u32 budget;

	for (budget = tb_link_rx_budget(link); budget; budget--) {
		struct tb_phy_rx rx;
		int ret;

		/* Kept frames go first: the phy's next one comes after them. */
		if (link->ooo_count && tb_link_rx_drain(link, 0) == -EAGAIN) {
			tb_link_rx_stalled(link, now);
			break;
		}
		if (link->state == TBRDMA_LINK_DOWN)
			break;
		ret = link->phy_ops->rx_peek(link->phy, &rx);
		if (ret < 0) {
			tb_link_fail(link);
			break;
		}
		if (ret == 0)
			break;
		if (tb_link_rx_frame(link, &rx, now) == -EAGAIN) {
			tb_link_rx_stalled(link, now);
			break;
		}
		link->phy_ops->rx_release(link->phy);
		handled++;
		if (link->state == TBRDMA_LINK_DOWN)
			break;
	}
	return handled;
}
