/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Link layer: turns an unreliable frame pipe (a "phy": USB4 ring pair,
 * in-kernel loop cable, or shared-memory cable) into a reliable, in-order,
 * flow-controlled one.
 *
 * - every DATA frame has a sequence number; the receiver delivers them in
 *   order, keeps up to TB_LINK_SACK_BITS frames that came after a gap
 *   until it is filled, and drops duplicates;
 * - acks are cumulative and ride on every frame; a standalone ACK is sent
 *   when nothing else carried one within ack_delay_ns, at once when the
 *   sender asks (a resent frame, or one that takes its window or credit
 *   past half) or the user does (tb_link_user_ops.deliver), and at once
 *   when a new gap is seen, with a bitmap of the frames kept behind it
 *   (selective ack);
 * - the receiver grants credits for its receive slots, so the sender never
 *   overruns it;
 * - unacked frames are kept in a window; a timeout resends the oldest one
 *   (a probe: the receiver may just be slow, its slots still full of the
 *   rest), a gap reported by the receiver resends the frames it lacks
 *   before the newest it holds (selective repeat);
 * - a receiver that cannot take a frame yet keeps the peer informed with
 *   ACKs, so a slow peer is never mistaken for a dead one;
 * - HELLO frames exchange per-incarnation epochs, so frames from a previous
 *   life of the peer are never taken for current ones;
 * - when the peer sends nothing at all for dead_ns while data is due, or the
 *   phy loses carrier, the link goes down for good and tells its user;
 * - on a phy that can (ext_max), a DATA frame may carry its data in an ext
 *   buffer the link does not copy: it keeps a reference into the user's
 *   memory until the frame is acked, and gives it back through ext_put.
 *   The user calls tb_link_detach_ext() before that memory goes away.
 *
 * The link does no locking: its user serialises calls on one link.
 */
#ifndef TB_LINK_H
#define TB_LINK_H

#include "tb_compat.h"
#include "tb_wire.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Data a frame carries by reference: bytes of the user's (registered)
 * memory the phy sends as a second buffer right behind the frame.
 */
struct tb_link_ext {
	const void *data;	/* where the CPU sees the bytes */
	u32 len;		/* 1 .. TB_EXT_MAX, within one TB_EXT_MAX block */
	void *owner;		/* the user's handle of that memory; NULL: ours */
	/* For the phy: the host's handle that finds data's bus address. */
	void *dma_cookie;
};

/* A received frame, and the ext buffer that came with it. */
struct tb_phy_rx {
	const void *frame;
	u32 len;
	const void *ext;	/* NULL: none */
	u32 ext_len;
};

/* What a cable must provide. */
struct tb_phy_ops {
	/*
	 * Puts one frame, and ext behind it if not NULL, on the cable.
	 * Returns 0 (sent, or lost by the cable), -EAGAIN when the
	 * transmitter has no free descriptors now, or -ENOTCONN when the
	 * cable is gone.
	 */
	int (*xmit)(void *phy, const void *frame, u32 len,
		    const struct tb_link_ext *ext);
	/*
	 * Looks at the oldest received frame without consuming it. Returns
	 * 1 and fills *rx, 0 if there is none, or -ENOTCONN.
	 */
	int (*rx_peek)(void *phy, struct tb_phy_rx *rx);
	/* Consumes the frame rx_peek returned; its slot is free again. */
	void (*rx_release)(void *phy);
	/* Largest ext buffer the cable carries; 0: none, copy everything. */
	u32 ext_max;
};

struct tb_link;

/* From deliver(): the frame's ack should go without waiting for DATA. */
#define TB_DELIVER_ACK_NOW 1

/* What the link's user (the engine) provides. */
struct tb_link_user_ops {
	/*
	 * An in-order DATA payload (engine header + data). Returns 0 when
	 * consumed, TB_DELIVER_ACK_NOW when consumed and the peer waits for
	 * its ack, or -EAGAIN to keep it and be called again later with the
	 * same payload (the receive slot stays busy, which throttles the peer
	 * through credits).
	 */
	int (*deliver)(void *user, struct tb_link *link, const void *payload,
		       u32 len, const void *ext, u32 ext_len);
	/* The link went UP, or DOWN for good. */
	void (*state_changed)(void *user, struct tb_link *link, u32 state);
	/* The link no longer refers to ext->owner's memory. */
	void (*ext_put)(void *user, const struct tb_link_ext *ext);
	/*
	 * The user's own ack (the engine's ack_msn) for a standalone ACK to
	 * carry. Asked only while the peer has acked every DATA frame we
	 * sent, so none of ours can reach the peer after the ACK and be
	 * taken with an older word. NULL: ACKs carry none, and
	 * user_ack_sent is never called.
	 */
	u32 (*user_ack)(void *user, struct tb_link *link);
	/*
	 * That word went out on an ACK acking DATA frames no frame of ours
	 * acked before: the peer resends one of them until it hears an ack
	 * as new, and from now on every ACK of ours carries a word at least
	 * as new, or goes while a DATA frame that does is unacked (and so
	 * is resent until the peer has it). So the peer hears that word or
	 * a newer one without the user sending it again.
	 */
	void (*user_ack_sent)(void *user, struct tb_link *link, u32 word);
	/* The peer's user ack, from an ACK: maybe old, maybe repeated. NULL: ignored. */
	void (*user_ack_rx)(void *user, struct tb_link *link, u32 word);
};

struct tb_link_config {
	u32 rx_slots;		/* receive descriptors of this end */
	u32 tx_window;		/* unacked frames kept: rounded down to 2^n */
	u64 rto_init_ns;	/* retransmission timeout before an RTT sample */
	u64 rto_min_ns;		/* floor of the one derived from the RTT */
	u64 rto_max_ns;		/* cap of that and of the exponential backoff */
	u64 dead_ns;		/* no progress for this long: link down */
	u64 hello_ns;		/* HELLO period while connecting */
	/*
	 * A delivered frame's ack may wait this long for a DATA frame to
	 * carry it: at most half of rto_min_ns, so the peer does not resend
	 * meanwhile.
	 */
	u64 ack_delay_ns;
};

void tb_link_config_default(struct tb_link_config *cfg);

struct tb_link_stats {
	u64 tx_frames;
	u64 tx_bytes;
	u64 rx_frames;
	u64 rx_bytes;
	u64 tx_acks;
	u64 retransmits;
	u64 timeouts;
	u64 rx_dup;
	u64 rx_gap;
	u64 rx_bad;
	u64 rx_stalls;
	u64 tx_ext;		/* DATA frames sent with an ext buffer */
	u64 ext_detached;	/* ext buffers copied because their memory went */
	u64 rx_refused;		/* requests answered REM_ACCESS_ERR */
	u64 rx_throttled;	/* of those, refused unseen: sender throttled */
	u64 rx_rnr;		/* requests answered RNR_NAK (receiver not ready) */
	u64 rx_dgram_dropped;	/* DGRAMs no datagram context took in */
};

struct tb_link_slot {
	u64 sent_ns;
	u32 len;
	u8 has_ext;
	u8 resent;		/* sent more than once: no round-trip sample */
	u8 sacked;		/* the receiver holds it behind a gap */
	u8 lost;		/* a selective ack showed it missing: resend */
	u8 *frame;		/* TBRDMA_FRAME_MAX bytes, then ext_max bytes */
	struct tb_link_ext ext;
};

/* A received frame kept until the frames before it arrive. */
struct tb_link_kept {
	u8 *frame;		/* TBRDMA_FRAME_MAX bytes, then ext_max bytes */
	u32 seq;
	u32 len;
	u32 ext_len;		/* 0: none */
	u8 present;
};

struct tb_link {
	const struct tb_phy_ops *phy_ops;
	void *phy;
	const struct tb_link_user_ops *user_ops;
	void *user;
	struct tb_link_config cfg;
	u32 index;		/* the engine's link number */
	u32 label;		/* the host's name for it, reported in rqe.link */
	/* Datagram contexts of this fabric take the DGRAMs arriving here. */
	u32 fabric;
	u32 state;		/* enum tbrdma_link_state */

	u32 epoch;		/* ours, random, never 0 */
	u32 peer_epoch;		/* 0 until the peer's HELLO is seen */
	u64 last_hello_ns;

	/* Transmit side. */
	u32 tx_next;		/* sequence number of the next new frame */
	u32 tx_una;		/* oldest unacked frame */
	u32 tx_credit;		/* peer accepts sequence numbers before this */
	u32 tx_resend;		/* next frame to send again (go-back-N) */
	u32 gap_acked;		/* ack value of the last GAP we acted on */
	u32 sack_marked;	/* frames before it were marked lost already */
	u32 nlost;		/* slots marked lost */
	u64 rto_ns;
	u64 progress_ns;	/* link start, or last time the peer acked anything new */
	u64 peer_seen_ns;	/* last valid frame from the peer */
	u64 stall_ack_ns;	/* last keep-alive ACK sent while stalled */
	u64 now_ns;		/* latest clock given: DATA frames are stamped with it */
	u64 srtt_ns;		/* smoothed round trip of DATA frames, 0: none yet */
	u64 rttvar_ns;		/* and its mean deviation */
	u64 min_rtt_ns;		/* and the least sample, 0: none yet */
	struct tb_link_slot *window;	/* tx_window slots */
	u8 *frames;

	/* Receive side. */
	u32 rx_next;		/* next expected sequence number */
	/*
	 * Frames that came after a gap, at seq % ooo_slots: ooo_count of
	 * them, the newest ooo_high; ooo_dropped: one came beyond them.
	 */
	struct tb_link_kept *ooo;
	u8 *ooo_frames;
	u32 ooo_slots;
	u32 ooo_count;
	u32 ooo_high;
	u8 ooo_dropped;
	u32 rx_gap_sent;	/* rx_next when we last sent a GAP ack */
	int ack_pending;	/* the peer should hear our rx_next/credit */
	u64 ack_due_ns;		/* ack_pending: a standalone ACK goes then */
	u32 credit_sent;	/* last credit we advertised */
	u32 ack_sent;		/* newest ack a DATA or ACK frame of ours carried */

	struct tb_link_stats stats;
};

/* Allocates the window; the link starts CONNECTING. */
int tb_link_init(struct tb_link *link, const struct tb_link_config *cfg,
		 const struct tb_phy_ops *phy_ops, void *phy,
		 const struct tb_link_user_ops *user_ops, void *user);
void tb_link_destroy(struct tb_link *link);

/*
 * Receives and delivers frames, resends on timeout, sends HELLO and ACK
 * frames as needed. Returns the number of frames handled.
 */
int tb_link_progress(struct tb_link *link, u64 now_ns);

/*
 * Moves the link's clock on to now_ns (it never goes back): DATA frames
 * committed from now on are stamped with it. tb_link_progress() does this
 * too; a user that sends outside it calls this first.
 */
void tb_link_clock(struct tb_link *link, u64 now_ns);

/*
 * A frame kept after a gap is next in order and waits for the user to take
 * it (the phy's ring may be empty meanwhile).
 */
int tb_link_rx_held(const struct tb_link *link);
/*
 * The most frames one tb_link_progress() receives: one that received as
 * many stopped before the phy's ring was empty.
 */
u32 tb_link_rx_budget(const struct tb_link *link);

/* Whether the ack owed to the peer must go now, DATA frame or not. */
int tb_link_ack_due(const struct tb_link *link);
/* Sends a standalone ACK if one is due. */
void tb_link_flush_ack(struct tb_link *link);
/*
 * Whether that ACK, due now, takes the user's ack to the peer for sure
 * (tb_link_user_ops.user_ack_sent).
 */
int tb_link_ack_takes_user_ack(const struct tb_link *link);

/* Room for a new DATA frame: window slot, peer credit and link UP. */
int tb_link_can_send(const struct tb_link *link);

/*
 * Buffer for the next DATA frame's link payload (TB_LINK_HDR_LEN bytes
 * into a window slot; room for TBRDMA_FRAME_MAX - TB_LINK_HDR_LEN bytes).
 * Only valid when tb_link_can_send().
 */
void *tb_link_tx_buf(struct tb_link *link);

/* Sends the frame built in tb_link_tx_buf() with payload_len bytes. */
void tb_link_tx_commit(struct tb_link *link, u32 payload_len);

/*
 * The same, with ext behind it (phy_ops->ext_max != 0). The link holds
 * ext->owner until the frame is acked, the link fails, or the user
 * detaches it, and then calls user_ops->ext_put.
 */
void tb_link_tx_commit_ext(struct tb_link *link, u32 payload_len,
			   const struct tb_link_ext *ext);

/*
 * The memory of owner is going away: every unacked frame still referring
 * to it gets a copy of its bytes (ext_put is called for each). Returns the
 * number of frames copied.
 */
u32 tb_link_detach_ext(struct tb_link *link, const void *owner);

/* Takes the link down for good (carrier lost, protocol error, close). */
void tb_link_fail(struct tb_link *link);

/*
 * Least round trip of a DATA frame to its ack since the link came up: what
 * the cable and the peer's polling take without a queue; 0 before a sample.
 */
u32 tb_link_rtt_ns(const struct tb_link *link);

/* Earliest time tb_link_progress() has timer work to do, 0 if none. */
u64 tb_link_next_deadline(const struct tb_link *link);

#ifdef __cplusplus
}
#endif

#endif /* TB_LINK_H */
