/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Wire format. A frame is at most TBRDMA_FRAME_MAX bytes:
 *
 *   link header (32 bytes) | engine header (72 bytes) | payload
 *
 * HELLO frames carry the link header alone, ACK frames that too or an
 * 8-byte selective ack (TB_LINK_F_SACK). An ACK has no sequence number: in
 * that field's place it may carry its sender's user's ack (the engine's
 * ack_msn, TB_LINK_F_USER_ACK), so a request needs no frame back but the
 * link's ACK. All fields are
 * little-endian on the wire and are encoded and decoded field by field, so
 * no struct layout or host byte order leaks onto the cable. Decoding checks
 * everything a receiver relies on and rejects the frame otherwise.
 */
#ifndef TB_WIRE_H
#define TB_WIRE_H

#include "tb_compat.h"
#include "rdma/tbrdma_abi.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TB_WIRE_MAGIC 0x7462u	/* "tb" */
#define TB_WIRE_VERSION 9u
#define TB_LINK_HDR_LEN 32u
#define TB_ENGINE_HDR_LEN 72u
#define TB_LINK_SACK_LEN 8u	/* an ACK's bitmap after the link header */
#define TB_LINK_SACK_BITS 64u
#define TB_FRAME_HDRS (TB_LINK_HDR_LEN + TB_ENGINE_HDR_LEN)
#define TB_PAYLOAD_MAX (TBRDMA_FRAME_MAX - TB_FRAME_HDRS)

tb_static_assert(TB_PAYLOAD_MAX == TBRDMA_SEND_MAX, "SEND fits one frame");

/*
 * An ext buffer: at most one page, and never across a TB_EXT_MAX boundary
 * of the sender's mapping, so it is one contiguous DMA segment.
 */
#define TB_EXT_MAX 4096u

enum tb_link_type {
	TB_LINK_DATA = 1,	/* sequenced, credited, carries an engine frame */
	TB_LINK_ACK = 2,	/* ack and credit update, maybe the user's ack */
	TB_LINK_HELLO = 3,	/* link bring-up: epochs and receive slots */
};

enum tb_link_flags {
	/*
	 * ACK: the receiver lacks frame `ack` but holds later ones: with
	 * TB_LINK_F_SACK, resend what the bitmap does not mark below the
	 * newest it marks; without, everything from `ack`.
	 */
	TB_LINK_F_GAP = 1u << 0,
	TB_LINK_F_HELLO_REPLY = 1u << 1,
	TB_LINK_F_STALL = 1u << 2,	/* ACK: holding frame `ack`, not taken yet */
	TB_LINK_F_EXT = 1u << 3,	/* DATA: an ext buffer of ext_len follows */
	TB_LINK_F_SACK = 1u << 4,	/* ACK: sack follows the header */
	TB_LINK_F_ACK_NOW = 1u << 5,	/* DATA: ack without waiting for DATA */
	/*
	 * ACK: user_ack is the sender's user's ack, sent while the peer had
	 * acked every DATA frame of the sender (tb_link_user_ops.user_ack).
	 */
	TB_LINK_F_USER_ACK = 1u << 6,
	TB_LINK_F_ALL = 0x7f,
};

struct tb_link_hdr {
	u8 type;
	u16 len;		/* bytes after the link header */
	u16 flags;
	u32 seq;		/* DATA: this frame's sequence number */
	u32 user_ack;		/* ACK: on the wire in seq's place */
	u32 ack;		/* every DATA frame before this one was received */
	u32 credit;		/* sender may send sequence numbers before this */
	u32 epoch_src;		/* sender's link incarnation */
	u32 epoch_dst;		/* receiver's incarnation as the sender knows it */
	u16 ext_len;		/* TB_LINK_F_EXT: bytes of the ext buffer */
	/* TB_LINK_F_SACK: bit i set, the receiver holds frame ack + 1 + i */
	u64 sack;
};

enum tb_engine_op {
	TB_EOP_WRITE = 1,	/* one chunk of an RDMA write */
	TB_EOP_READ_REQ = 2,	/* read up to TB_READ_REQ_MAX bytes */
	TB_EOP_READ_RESP = 3,	/* one chunk of read data */
	TB_EOP_ATOMIC = 4,
	TB_EOP_ATOMIC_RESP = 5,
	TB_EOP_SEND = 6,
	TB_EOP_ACK = 7,		/* carries ack_msn only */
	TB_EOP_NAK = 8,		/* request msn failed with status */
	/*
	 * Request msn was not executed, nor will any later request of its
	 * endpoint be until one comes with TB_EF_RESUME: the target's
	 * receive queue was full (receiver not ready). Resend from msn.
	 */
	TB_EOP_RNR_NAK = 9,
	/*
	 * One chunk of a message into the target's oldest posted receive:
	 * addr is its offset in the message, TB_EF_LAST marks the last.
	 */
	TB_EOP_MSG = 10,
	/*
	 * A datagram (TBRDMA_OP_DGRAM) to context dst_ctx, whose Q_Key is
	 * dst_secret: delivered or dropped, never answered but by the ack.
	 */
	TB_EOP_DGRAM = 11,
	TB_EOP_MAX = 11,
};

enum tb_engine_flags {
	TB_EF_LAST = 1u << 0,	/* READ_RESP, MSG: the last chunk */
	/* A request: its endpoint's first since an RNR_NAK. */
	TB_EF_RESUME = 1u << 1,
	/*
	 * The sender waits for this frame's ack (a completion or a flush):
	 * the receiver's link sends it without waiting for DATA to carry it.
	 */
	TB_EF_ACK_NOW = 1u << 2,
	/*
	 * A DGRAM, or the last chunk of a MSG or a WRITE, with an immediate
	 * (imm): a WRITE's then takes a posted receive, and compare is its
	 * length.
	 */
	TB_EF_IMM = 1u << 3,
	TB_EF_ALL = 0xf,
};

/* Largest READ_REQ; bigger reads are cut into several requests. */
#define TB_READ_REQ_MAX (64u * 1024u)

struct tb_engine_hdr {
	u8 op;
	u8 flags;
	u8 aop;			/* ATOMIC: enum tbrdma_atomic_op */
	u8 arg;			/* ATOMIC: size 4/8; NAK: enum tbrdma_status */
	u32 dst_ctx;
	u32 src_ctx;
	u32 src_ep;		/* requests: the initiator's endpoint */
	u64 dst_secret;		/* requests: the target context's secret */
	u64 rkey;
	u64 addr;		/* remote address, or READ_RESP offset */
	u32 len;		/* payload bytes; READ_REQ: bytes asked for */
	u32 msn;		/* request sequence number on this link */
	u32 ack_msn;		/* every request up to this one was executed */
	u32 am_id;
	u64 imm;		/* SEND header, ATOMIC operand, READ_REQ offset */
	u64 compare;		/* ATOMIC cswap; WRITE with TB_EF_IMM: its length */
};

/* With TB_LINK_F_SACK, writes the bitmap behind the header too. */
void tb_link_hdr_encode(void *buf, const struct tb_link_hdr *h);
/*
 * Returns 0, or -EBADMSG if the header (and with TB_LINK_F_SACK, the
 * bitmap behind it) is malformed for a frame of len.
 */
int tb_link_hdr_decode(const void *buf, u32 frame_len, struct tb_link_hdr *h);

/*
 * For phys: the length of the ext buffer a received frame announces (the
 * descriptor that should follow it), or 0 if it announces none or is
 * malformed.
 */
u32 tb_link_frame_ext_len(const void *frame, u32 frame_len);

void tb_engine_hdr_encode(void *buf, const struct tb_engine_hdr *h);
/*
 * Decodes the engine header of a DATA frame whose link payload is
 * payload_len bytes long and whose ext buffer (if any) is ext_len bytes
 * long. Returns 0 or -EBADMSG.
 */
int tb_engine_hdr_decode(const void *buf, u32 payload_len, u32 ext_len,
			 struct tb_engine_hdr *h);

#ifdef __cplusplus
}
#endif

#endif /* TB_WIRE_H */
