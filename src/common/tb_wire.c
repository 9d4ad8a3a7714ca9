// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Frame header encoding: explicit little-endian, byte by byte, so that the
 * same code is right on any host and never reads past the frame.
 */
#include "tb_wire.h"

static void put8(u8 **p, u8 v)
{
	*(*p)++ = v;
}

static void put16(u8 **p, u16 v)
{
	put8(p, (u8)v);
	put8(p, (u8)(v >> 8));
}

static void put32(u8 **p, u32 v)
{
	put16(p, (u16)v);
	put16(p, (u16)(v >> 16));
}

static void put64(u8 **p, u64 v)
{
	put32(p, (u32)v);
	put32(p, (u32)(v >> 32));
}

static u8 get8(const u8 **p)
{
	return *(*p)++;
}

static u16 get16(const u8 **p)
{
	u16 lo = get8(p);

	return (u16)(lo | ((u16)get8(p) << 8));
}

static u32 get32(const u8 **p)
{
	u32 lo = get16(p);

	return lo | ((u32)get16(p) << 16);
}

static u64 get64(const u8 **p)
{
	u64 lo = get32(p);

	return lo | ((u64)get32(p) << 32);
}

void tb_link_hdr_encode(void *buf, const struct tb_link_hdr *h)
{
	u8 *p = buf;

	put16(&p, TB_WIRE_MAGIC);
	put8(&p, TB_WIRE_VERSION);
	put8(&p, h->type);
	put16(&p, h->len);
	put16(&p, h->flags);
	put32(&p, h->type == TB_LINK_ACK ? h->user_ack : h->seq);
	put32(&p, h->ack);
	put32(&p, h->credit);
	put32(&p, h->epoch_src);
	put32(&p, h->epoch_dst);
	put16(&p, h->ext_len);
	put16(&p, 0);		/* reserved */
	if (h->flags & TB_LINK_F_SACK)
		put64(&p, h->sack);
}

int tb_link_hdr_decode(const void *buf, u32 frame_len, struct tb_link_hdr *h)
{
	const u8 *p = buf;

	if (frame_len < TB_LINK_HDR_LEN || frame_len > TBRDMA_FRAME_MAX)
		return -EBADMSG;
	if (get16(&p) != TB_WIRE_MAGIC || get8(&p) != TB_WIRE_VERSION)
		return -EBADMSG;
	h->type = get8(&p);
	h->len = get16(&p);
	h->flags = get16(&p);
	h->seq = get32(&p);
	h->ack = get32(&p);
	h->credit = get32(&p);
	h->epoch_src = get32(&p);
	h->epoch_dst = get32(&p);
	h->ext_len = get16(&p);
	h->sack = 0;
	h->user_ack = 0;
	if (get16(&p) != 0)
		return -EBADMSG;
	if (h->flags & ~TB_LINK_F_ALL)
		return -EBADMSG;
	if ((u32)h->len != frame_len - TB_LINK_HDR_LEN)
		return -EBADMSG;
	/* An ext buffer follows only DATA frames, and is never empty. */
	if (h->flags & TB_LINK_F_EXT) {
		if (h->type != TB_LINK_DATA || !h->ext_len ||
		    h->ext_len > TB_EXT_MAX)
			return -EBADMSG;
	} else if (h->ext_len) {
		return -EBADMSG;
	}
	if ((h->flags & TB_LINK_F_USER_ACK) && h->type != TB_LINK_ACK)
		return -EBADMSG;
	switch (h->type) {
	case TB_LINK_DATA:
		if (h->len < TB_ENGINE_HDR_LEN || (h->flags & TB_LINK_F_SACK))
			return -EBADMSG;
		break;
	case TB_LINK_ACK:
		if (h->len != ((h->flags & TB_LINK_F_SACK) ? TB_LINK_SACK_LEN : 0))
			return -EBADMSG;
		/* Without the flag, the word is unused and must be 0. */
		if (!(h->flags & TB_LINK_F_USER_ACK) && h->seq)
			return -EBADMSG;
		h->user_ack = h->seq;
		h->seq = 0;
		if (h->flags & TB_LINK_F_SACK)
			h->sack = get64(&p);
		break;
	case TB_LINK_HELLO:
		if (h->len != 0 || (h->flags & TB_LINK_F_SACK))
			return -EBADMSG;
		break;
	default:
		return -EBADMSG;
	}
	if (h->epoch_src == 0)
		return -EBADMSG;
	return 0;
}

u32 tb_link_frame_ext_len(const void *frame, u32 frame_len)
{
	struct tb_link_hdr h;

	if (tb_link_hdr_decode(frame, frame_len, &h) ||
	    !(h.flags & TB_LINK_F_EXT))
		return 0;
	return h.ext_len;
}

void tb_engine_hdr_encode(void *buf, const struct tb_engine_hdr *h)
{
	u8 *p = buf;

	put8(&p, h->op);
	put8(&p, h->flags);
	put8(&p, h->aop);
	put8(&p, h->arg);
	put32(&p, h->dst_ctx);
	put32(&p, h->src_ctx);
	put32(&p, h->src_ep);
	put64(&p, h->dst_secret);
	put64(&p, h->rkey);
	put64(&p, h->addr);
	put32(&p, h->len);
	put32(&p, h->msn);
	put32(&p, h->ack_msn);
	put32(&p, h->am_id);
	put64(&p, h->imm);
	put64(&p, h->compare);
}

static int tb_engine_op_is_request(u8 op)
{
	return op == TB_EOP_WRITE || op == TB_EOP_READ_REQ ||
	       op == TB_EOP_ATOMIC || op == TB_EOP_SEND || op == TB_EOP_MSG ||
	       op == TB_EOP_DGRAM;
}

/* What each op may carry after the engine header. */
static int tb_engine_payload_ok(const struct tb_engine_hdr *h, u32 payload)
{
	switch (h->op) {
	case TB_EOP_WRITE:
	case TB_EOP_READ_RESP:
	case TB_EOP_SEND:
	case TB_EOP_MSG:
	case TB_EOP_DGRAM:
		return h->len == payload;
	case TB_EOP_READ_REQ:
		return payload == 0 && h->len != 0 && h->len <= TB_READ_REQ_MAX;
	case TB_EOP_ATOMIC:
		return payload == 0 && (h->arg == 4 || h->arg == 8) &&
		       h->aop <= TBRDMA_ATOMIC_MAX;
	case TB_EOP_ATOMIC_RESP:
	case TB_EOP_ACK:
	case TB_EOP_RNR_NAK:
		return payload == 0;
	case TB_EOP_NAK:
		/* Only the statuses a responder gives. */
		return payload == 0 && (h->arg == TBRDMA_WC_REM_ACCESS_ERR ||
					h->arg == TBRDMA_WC_REM_INVALID);
	default:
		return 0;
	}
}

int tb_engine_hdr_decode(const void *buf, u32 payload_len, u32 ext_len,
			 struct tb_engine_hdr *h)
{
	const u8 *p = buf;
	u32 data;

	if (payload_len < TB_ENGINE_HDR_LEN ||
	    payload_len > TBRDMA_FRAME_MAX - TB_LINK_HDR_LEN)
		return -EBADMSG;
	h->op = get8(&p);
	h->flags = get8(&p);
	h->aop = get8(&p);
	h->arg = get8(&p);
	h->dst_ctx = get32(&p);
	h->src_ctx = get32(&p);
	h->src_ep = get32(&p);
	h->dst_secret = get64(&p);
	h->rkey = get64(&p);
	h->addr = get64(&p);
	h->len = get32(&p);
	h->msn = get32(&p);
	h->ack_msn = get32(&p);
	h->am_id = get32(&p);
	h->imm = get64(&p);
	h->compare = get64(&p);
	if ((h->flags & ~TB_EF_ALL) ||
	    (h->flags & TB_EF_RESUME && !tb_engine_op_is_request(h->op)) ||
	    (h->flags & TB_EF_IMM && h->op != TB_EOP_WRITE &&
	     h->op != TB_EOP_MSG && h->op != TB_EOP_DGRAM) ||
	    (h->src_ep && !tb_engine_op_is_request(h->op)))
		return -EBADMSG;
	/* Data sits either after the header or in the ext, never in both. */
	data = payload_len - TB_ENGINE_HDR_LEN;
	if (ext_len) {
		if (data || (h->op != TB_EOP_WRITE && h->op != TB_EOP_READ_RESP &&
			     h->op != TB_EOP_MSG) || ext_len > TB_EXT_MAX)
			return -EBADMSG;
		data = ext_len;
	}
	if (!tb_engine_payload_ok(h, data))
		return -EBADMSG;
	return 0;
}
