/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Link internals shared by its parts:
 *   tb_link.c     set-up, transmission, resends and timers
 *   tb_link_rx.c  acks from the peer, delivery, frames kept after a gap
 */
#ifndef TB_LINK_PRIV_H
#define TB_LINK_PRIV_H

#include "tb_link.h"

static inline struct tb_link_slot *
tb_link_slot(const struct tb_link *link, u32 seq)
{
	return &link->window[seq & (link->cfg.tx_window - 1)];
}

static inline struct tb_link_kept *
tb_link_kept(const struct tb_link *link, u32 seq)
{
	return &link->ooo[seq & (link->ooo_slots - 1)];
}

/* Time since then, 0 if then is in the future (clocks of two callers). */
static inline u64 tb_link_since(u64 now, u64 then)
{
	return now > then ? now - then : 0;
}

/* tb_link.c */
/* The retransmission timeout while nothing is being resent. */
u64 tb_link_rto_base(const struct tb_link *link);
/* Frames [from, to) were acked, or will never be sent again. */
void tb_link_release(struct tb_link *link, u32 from, u32 to);
void tb_link_set_up(struct tb_link *link, u64 now);
/*
 * Sends a frame without data (an ACK says which frames after a gap it
 * holds). Losing it costs at most a resend by the peer (the user's ack
 * it carried comes with the resend's ACK), so -EAGAIN is harmless too.
 */
void tb_link_send_ctrl(struct tb_link *link, u8 type, u16 flags);

/* tb_link_rx.c */
/* Makes the ack owed to the peer, if any, due now. */
void tb_link_ack_now(struct tb_link *link);

/* The selective ack: bit i set, frame rx_next + 1 + i is kept. */
u64 tb_link_sack_map(const struct tb_link *link);
/*
 * Receives and delivers what the phy holds, up to rx_slots frames.
 * Returns how many it handled; the link may be DOWN after it.
 */
int tb_link_receive(struct tb_link *link, u64 now);

#endif /* TB_LINK_PRIV_H */
