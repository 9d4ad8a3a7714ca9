// SPDX-License-Identifier: BSD-2-Clause
/*
 * libFuzzer target: everything a peer can put on the cable.
 *
 * (a) The header decoders on the raw input, and on every frame below: no
 *     read past the frame, and whatever they accept re-encodes to the same
 *     bytes with lengths that fit the frame.
 *
 * (b) One engine with one context and one link whose phy hands out frames
 *     cut from the input. The link is brought up with a valid HELLO and a
 *     few operations are posted first, so that responses (READ_RESP,
 *     ATOMIC_RESP, NAK, ACK) can match outstanding requests. Each frame's
 *     link header is then rewritten to the values the link expects (its
 *     sequence number or now and then a later one, epochs, an ack in
 *     range) unless the input says to
 *     keep it raw, and its engine header can be pointed at the context's
 *     real regions and request numbers, so most inputs reach the
 *     responder and completer instead of dying at the link's checks. MSG
 *     chunks go to a second context, of posted receives (tb_recv.c),
 *     mostly at a message's start, and WRITEs with an immediate too;
 *     DGRAMs to a third, a datagram context, mostly with its Q_Key.
 *
 * Input: records of
 *     u16 len (little-endian, low 13 bits) | u8 flags | len frame bytes
 * flags:
 *     0x01 keep the raw link header        0x02 keep raw ack and credit
 *     0x04 rewrite the engine header       0x08 jump the clock 20 ms
 *     0x10 post one more operation, kind (flags >> 5) & 3
 *     0x80 the phy refuses the next 3 transmissions
 *     0xff (alone) the cable loses carrier
 *
 * Besides the sanitizers, the harness checks after every step that what
 * the engine sends is well-formed, that every posted operation is either
 * outstanding or completed exactly once, that the rings never overflow,
 * and at the end that memory outside what the peer may touch (read-only
 * region, guard bytes around regions, bytes of the local READ buffer
 * outside the READs) is unchanged.
 *
 * Nothing here is random: epochs, sequence numbers and keys that the
 * library draws at random are overwritten with fixed values, and the
 * clock is virtual, so every input replays exactly.
 */
#include "tb_engine_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c)                                                               \
	do {                                                                   \
		if (!(c)) {                                                    \
			fprintf(stderr, "fuzz_frame.c:%d: check failed: %s\n", \
				__LINE__, #c);                                 \
			abort();                                               \
		}                                                              \
	} while (0)

#define NOW0 (1ull << 62)		/* far ahead of the real clock */
#define LOCAL_EPOCH 0x1e0c0a1du
#define PEER_EPOCH 0x5ee55ee5u
#define LOCAL_SEQ0 0xfffffff8u		/* our sequence numbers wrap soon */
#define PEER_SEQ0 0x7ffffffcu
#define CTX_ID 0x00005a03u		/* slot 3 of 4 */
#define RCTX_ID 0x00005a01u		/* slot 1: posted receives */
#define DCTX_ID 0x00005a02u		/* slot 2: datagrams */
#define DCTX_QKEY 0x1ee7a330u
#define PEER_CTX 0x00000777u
#define PEER_SECRET 0x5ec2e75ec2e75ec2ull
#define GUARD 64
#define PAT 0xc3

/* Regions of the context, in key order. */
enum { MR_RW, MR_RO, MR_TINY, MR_SRC, MR_DST, MR_DST2, NMR };

#define RW_LEN 4096
#define RO_LEN 1024
#define TINY_LEN 8
#define SRC_LEN 8192
#define DST_LEN 12000
#define DST2_LEN 8192
/* The READs posted at setup, inside DST; the rest of DST is never written. */
#define READ1_OFF 1000
#define READ1_LEN 10000
#define READ2_OFF 11100
#define READ2_LEN 16

#define CQ_ENTRIES 16
#define RQ_ENTRIES 2
/* The posted receives, in RW of the second context's own domain. */
#define RWQ_ENTRIES 4
#define RCQ_ENTRIES 2
#define RECV1_LEN 1000

static _Alignas(64) u8 rw_area[GUARD + RW_LEN + GUARD];
static _Alignas(64) u8 ro_area[GUARD + RO_LEN + GUARD];
static _Alignas(64) u8 tiny_area[GUARD + TINY_LEN + GUARD];
static _Alignas(64) u8 src_area[SRC_LEN];
static _Alignas(64) u8 cq_mem[CQ_ENTRIES * sizeof(struct tbrdma_cqe)];
static struct tbrdma_ring_ctrl cq_ctrl, rq_ctrl;
/* A context of posted receives' rings: completions, receives, theirs. */
struct recv_rings {
	u8 cq[CQ_ENTRIES * sizeof(struct tbrdma_cqe)];
	struct tbrdma_rwqe rwq[RWQ_ENTRIES];
	_Alignas(64) u8 rcq[RCQ_ENTRIES * sizeof(struct tbrdma_cqe)];
	struct tbrdma_ring_ctrl cq_ctrl, rwq_ctrl, rcq_ctrl;
};
/* The second context's and the datagram context's; both receive into RW. */
static struct recv_rings rr, dr;

static const u64 mr_iova[NMR] = {
	0x100000, 0x200000, 0x300000, 0x400000, 0x500000, 0x600000,
};
static const u64 mr_len[NMR] = {
	RW_LEN, RO_LEN, TINY_LEN, SRC_LEN, DST_LEN, DST2_LEN,
};

struct fz {
	const u8 *in;
	size_t size;
	size_t pos;

	u8 *cur;		/* the frame rx_peek hands out, exactly sized */
	u32 cur_len;
	int have_cur;
	int input_open;		/* setup done: frames come from the input */
	int carrier_lost;
	u32 xmit_block;
	u64 jump;
	int post_kind;		/* -1, or an operation to post after progress */
	u32 post_len;

	struct tb_engine *e;
	struct tb_ctx *ctx;
	struct tb_ctx *rctx;	/* posted receives */
	u64 rctx_key;		/* its RW */
	struct tb_ctx *dctx;	/* datagrams */
	struct tb_elink *el;
	struct tb_link link;
	int ep;
	u64 keys[NMR];
	u8 *dst;		/* DST_LEN bytes, heap: ASan sees overruns */
	u8 *dst2;
	u8 *rq_mem;
	u32 posted;
	u64 now;
};

static u32 rd16(const u8 *p)
{
	return (u32)p[0] | ((u32)p[1] << 8);
}

static u32 rd32(const u8 *p)
{
	return rd16(p) | (rd16(p + 2) << 16);
}

static u64 rd64(const u8 *p)
{
	return rd32(p) | ((u64)rd32(p + 4) << 32);
}

/* The rule tb_engine_hdr_decode enforces, restated for checking it. */
static int engine_lengths_ok(const struct tb_engine_hdr *h, u32 payload_len)
{
	u32 data = payload_len - TB_ENGINE_HDR_LEN;

	switch (h->op) {
	case TB_EOP_WRITE:
	case TB_EOP_READ_RESP:
	case TB_EOP_SEND:
	case TB_EOP_MSG:
	case TB_EOP_DGRAM:
		return h->len == data;
	case TB_EOP_READ_REQ:
		return !data && h->len && h->len <= TB_READ_REQ_MAX;
	case TB_EOP_ATOMIC:
		return !data && (h->arg == 4 || h->arg == 8) &&
		       h->aop <= TBRDMA_ATOMIC_MAX;
	case TB_EOP_NAK:
		return !data && (h->arg == TBRDMA_WC_REM_ACCESS_ERR ||
				 h->arg == TBRDMA_WC_REM_INVALID);
	case TB_EOP_ATOMIC_RESP:
	case TB_EOP_ACK:
	case TB_EOP_RNR_NAK:
		return !data;
	default:
		return 0;
	}
}

static int is_request(u8 op)
{
	return op == TB_EOP_WRITE || op == TB_EOP_READ_REQ ||
	       op == TB_EOP_ATOMIC || op == TB_EOP_SEND || op == TB_EOP_MSG ||
	       op == TB_EOP_DGRAM;
}

/* Known flags only; RESUME and an endpoint only on requests. */
static int engine_shape_ok(const struct tb_engine_hdr *h)
{
	return !(h->flags & ~TB_EF_ALL) &&
	       (is_request(h->op) || (!(h->flags & TB_EF_RESUME) && !h->src_ep)) &&
	       (!(h->flags & TB_EF_IMM) || h->op == TB_EOP_WRITE ||
		h->op == TB_EOP_MSG || h->op == TB_EOP_DGRAM);
}

/*
 * (a) Decoders on len bytes at buf. Returns 1 if it is a well-formed frame
 * (with a valid engine header if it is DATA).
 */
static int check_decoders(const u8 *buf, u32 len)
{
	struct tb_link_hdr h;
	struct tb_engine_hdr eh;
	u8 re[TB_ENGINE_HDR_LEN];
	u32 sack;

	/* The engine decoder alone, on the same bytes. */
	if (!tb_engine_hdr_decode(buf, len, 0, &eh)) {
		CHECK(len >= TB_ENGINE_HDR_LEN);
		CHECK(engine_lengths_ok(&eh, len) && engine_shape_ok(&eh));
		tb_engine_hdr_encode(re, &eh);
		CHECK(!memcmp(re, buf, TB_ENGINE_HDR_LEN));
	}
	if (tb_link_hdr_decode(buf, len, &h))
		return 0;
	CHECK(len >= TB_LINK_HDR_LEN && len <= TBRDMA_FRAME_MAX);
	CHECK(TB_LINK_HDR_LEN + (u32)h.len == len);
	CHECK(h.epoch_src != 0 && !(h.flags & ~TB_LINK_F_ALL));
	/*
	 * Everything in an accepted header is meaningful: it re-encodes, a
	 * selective ack with it; that is all an ACK or HELLO carries.
	 */
	sack = (h.flags & TB_LINK_F_SACK) ? TB_LINK_SACK_LEN : 0;
	tb_link_hdr_encode(re, &h);
	CHECK(!memcmp(re, buf, TB_LINK_HDR_LEN + sack));
	if (h.type != TB_LINK_DATA) {
		CHECK((h.type == TB_LINK_ACK || (h.type == TB_LINK_HELLO && !sack)) &&
		      h.len == sack);
		return 1;
	}
	CHECK(h.len >= TB_ENGINE_HDR_LEN);
	if (tb_engine_hdr_decode(buf + TB_LINK_HDR_LEN, h.len, 0, &eh))
		return 0;
	CHECK(engine_lengths_ok(&eh, h.len) && engine_shape_ok(&eh));
	tb_engine_hdr_encode(re, &eh);
	CHECK(!memcmp(re, buf + TB_LINK_HDR_LEN, TB_ENGINE_HDR_LEN));
	return 1;
}

/* A value in [lo, lo + span), chosen by r. */
static u32 pick(u32 lo, u32 span, u32 r)
{
	return span ? lo + r % span : lo;
}

/* The link header the link expects next, fields taken from raw. */
static void rewrite_link_hdr(struct fz *f, u8 *fr, u32 len, u8 flags)
{
	const struct tb_link *l = &f->link;
	struct tb_link_hdr h;

	memset(&h, 0, sizeof(h));
	h.type = fr[3];
	if (h.type < TB_LINK_DATA || h.type > TB_LINK_HELLO)
		h.type = TB_LINK_DATA;
	h.len = (u16)(len - TB_LINK_HDR_LEN);
	h.flags = (u16)(rd16(fr + 6) & TB_LINK_F_ALL);
	if ((h.flags & TB_LINK_F_SACK) &&
	    len >= TB_LINK_HDR_LEN + TB_LINK_SACK_LEN)
		h.sack = rd32(fr + TB_LINK_HDR_LEN) |
			 (u64)rd32(fr + TB_LINK_HDR_LEN + 4) << 32;
	else
		h.flags &= (u16)~TB_LINK_F_SACK;
	h.seq = rd32(fr + 8);
	/*
	 * DATA: the next frame, or one of every 8 after a gap of up to
	 * beyond what the link keeps.
	 */
	if (h.type == TB_LINK_DATA)
		h.seq = l->rx_next +
			(h.seq % 8 == 7 ? 1 + (h.seq >> 3) % (TB_LINK_SACK_BITS + 6) : 0);
	/* ACK: a user ack up to the newest request sent, or beyond. */
	if (h.type == TB_LINK_ACK && (h.flags & TB_LINK_F_USER_ACK))
		h.user_ack = (flags & 0x02) ? h.seq :
			     pick(f->el->msn_acked,
				  f->el->msn_next - f->el->msn_acked, h.seq);
	h.ack = rd32(fr + 12);
	h.credit = rd32(fr + 16);
	if (!(flags & 0x02)) {
		h.ack = pick(l->tx_una, l->tx_next - l->tx_una + 1, h.ack);
		h.credit = pick(l->tx_una, 64, h.credit);
	}
	h.epoch_src = PEER_EPOCH;
	h.epoch_dst = l->epoch;
	tb_link_hdr_encode(fr, &h);
}

/*
 * Points an engine header at things that exist: our context, one of its
 * regions (in or just around it), the next request number for requests,
 * an outstanding one for responses, an ack_msn that was really sent.
 */
static void rewrite_engine_hdr(struct fz *f, u8 *p, u32 payload_len)
{
	struct tb_elink *el = f->el;
	u32 data = payload_len - TB_ENGINE_HDR_LEN;
	struct tb_engine_hdr h;
	u64 raw_addr;
	u32 k, span, raw_dst;

	h.op = p[0];
	if (!h.op || h.op > TB_EOP_MAX)
		h.op = 1 + h.op % TB_EOP_MAX;
	h.flags = p[1] & (is_request(h.op) ? TB_EF_ALL : TB_EF_LAST);
	if (h.op != TB_EOP_WRITE && h.op != TB_EOP_MSG && h.op != TB_EOP_DGRAM)
		h.flags &= ~TB_EF_IMM;
	h.aop = p[2];
	h.arg = p[3];
	h.dst_ctx = rd32(p + 4);
	raw_dst = h.dst_ctx;
	h.src_ctx = rd32(p + 8);
	/* A few endpoints, so that receiver-not-ready holds meet again. */
	h.src_ep = is_request(h.op) ? rd32(p + 12) % 4 : 0;
	h.dst_secret = rd64(p + 16);
	h.rkey = rd64(p + 24);
	h.addr = rd64(p + 32);
	h.len = rd32(p + 40);
	h.msn = rd32(p + 44);
	h.ack_msn = rd32(p + 48);
	h.am_id = rd32(p + 52);
	h.imm = rd64(p + 56);
	h.compare = rd64(p + 64);

	if (!(h.dst_ctx & 0x100))	/* else keep it: probably no such ctx */
		h.dst_ctx = CTX_ID;
	/* The context's secret, or (bit 0x200) whatever the input says. */
	if (!(h.dst_ctx & 0x200))
		h.dst_secret = tb_ctx_secret(f->ctx);
	k = h.rkey % NMR;
	if (!(h.rkey & 0x100))
		h.rkey = f->keys[k];
	/* Requests: inside the region, or a little outside either end. */
	raw_addr = h.addr;
	h.addr = mr_iova[k] - 16 + raw_addr % (mr_len[k] + 32);
	h.ack_msn = pick(el->msn_acked, el->msn_next - el->msn_acked, h.ack_msn);
	span = el->msn_next - el->msn_tail;
	switch (h.op) {
	case TB_EOP_WRITE:
		/* With an immediate: into RW of the posted receives' context. */
		if ((h.flags & TB_EF_IMM) && !(raw_dst & 0x100)) {
			h.dst_ctx = RCTX_ID;
			h.dst_secret = tb_ctx_secret(f->rctx);
			if (!(raw_dst & 0x400))
				h.rkey = f->rctx_key;
		}
		h.len = data;
		h.msn = el->resp_done + 1;
		break;
	case TB_EOP_SEND:
		h.len = data;
		h.msn = el->resp_done + 1;
		break;
	case TB_EOP_MSG:
		if (!(raw_dst & 0x100)) {
			h.dst_ctx = RCTX_ID;
			h.dst_secret = tb_ctx_secret(f->rctx);
		}
		/* A message's start, or an offset a chunk may have. */
		h.addr = (raw_addr & 3) ? 0 : raw_addr % (RW_LEN + 64);
		h.len = data;
		h.msn = el->resp_done + 1;
		break;
	case TB_EOP_DGRAM:
		/* To the datagram context with its key, or as the input says. */
		if (!(raw_dst & 0x100))
			h.dst_ctx = DCTX_ID;
		if (!(raw_dst & 0x200))
			h.dst_secret = DCTX_QKEY;
		h.len = data;
		h.msn = el->resp_done + 1;
		break;
	case TB_EOP_READ_REQ:
		h.len = 1 + h.len % (mr_len[k] + 16);
		h.msn = el->resp_done + 1;
		break;
	case TB_EOP_ATOMIC:
		h.arg = (h.arg & 1) ? 8 : 4;
		h.aop %= TBRDMA_ATOMIC_MAX + 1;
		if (!(h.compare & 0x100))
			h.addr &= ~(u64)(h.arg - 1);
		h.msn = el->resp_done + 1;
		break;
	case TB_EOP_READ_RESP:
		h.len = data;
		h.addr = raw_addr % (DST_LEN + 1);	/* offset in the READ */
		h.msn = pick(el->msn_tail, span, h.msn);
		break;
	case TB_EOP_NAK:
		h.arg = (h.arg & 1) ? TBRDMA_WC_REM_ACCESS_ERR :
				      TBRDMA_WC_REM_INVALID;
		h.msn = pick(el->msn_tail, span, h.msn);
		break;
	default:
		h.msn = pick(el->msn_tail, span, h.msn);
		break;
	}
	tb_engine_hdr_encode(p, &h);
}

/* Cuts the next record into f->cur. Returns 0 at the end of the input. */
static int next_record(struct fz *f)
{
	u32 len;
	u8 flags;

	if (f->size - f->pos < 3)
		return 0;
	len = rd16(f->in + f->pos) & 0x1fff;
	flags = f->in[f->pos + 2];
	f->pos += 3;
	if (flags == 0xff) {
		f->carrier_lost = 1;
		return 0;
	}
	if (len > f->size - f->pos)
		len = (u32)(f->size - f->pos);
	f->cur = malloc(len);
	CHECK(f->cur || !len);
	if (len)
		memcpy(f->cur, f->in + f->pos, len);
	f->pos += len;
	f->cur_len = len;
	f->have_cur = 1;

	check_decoders(f->cur, len);
	if (len >= TB_LINK_HDR_LEN && !(flags & 0x01))
		rewrite_link_hdr(f, f->cur, len, flags);
	if (len >= TB_FRAME_HDRS && len <= TBRDMA_FRAME_MAX && (flags & 0x04))
		rewrite_engine_hdr(f, f->cur + TB_LINK_HDR_LEN,
				   len - TB_LINK_HDR_LEN);
	if (flags & 0x08)
		f->jump += 20000000;
	if (flags & 0x10) {
		f->post_kind = (flags >> 5) & 3;
		f->post_len = len * 37u;
	}
	if (flags & 0x80)
		f->xmit_block = 3;
	return 1;
}

static int fz_rx_peek(void *phy, struct tb_phy_rx *rx)
{
	struct fz *f = phy;

	if (f->carrier_lost)
		return -ENOTCONN;
	/* A post or a clock jump asked for takes effect before what follows. */
	if (!f->have_cur && (!f->input_open || f->post_kind >= 0 || f->jump ||
			     !next_record(f)))
		return f->carrier_lost ? -ENOTCONN : 0;
	rx->frame = f->cur;
	rx->len = f->cur_len;
	rx->ext = NULL;
	rx->ext_len = 0;
	return 1;
}

static void fz_rx_release(void *phy)
{
	struct fz *f = phy;

	CHECK(f->have_cur);
	free(f->cur);
	f->cur = NULL;
	f->have_cur = 0;
}

/* Takes everything, after checking the engine sends nothing malformed. */
static int fz_xmit(void *phy, const void *frame, u32 len,
		   const struct tb_link_ext *ext)
{
	struct fz *f = phy;

	CHECK(!ext);	/* this cable carries none */
	CHECK(check_decoders(frame, len));
	if (f->xmit_block) {
		f->xmit_block--;
		return -EAGAIN;
	}
	return 0;
}

static const struct tb_phy_ops fz_phy_ops = {
	.xmit = fz_xmit,
	.rx_peek = fz_rx_peek,
	.rx_release = fz_rx_release,
};

static void post(struct fz *f, u8 op, u32 len, u64 local, u64 lkey,
		 u64 remote, u8 asize, u8 aop)
{
	struct tbrdma_sqe s;

	memset(&s, 0, sizeof(s));
	s.opcode = op;
	s.ep = (u32)f->ep;
	s.wr_id = 1000 + f->posted;
	s.length = len;
	s.local_addr = local;
	s.lkey = lkey;
	s.remote_addr = remote;
	s.rkey = 0x4242;
	s.atomic_size = asize;
	s.atomic_op = aop;
	s.operand = 0x0102030405060708ull;
	s.compare = 7;
	s.am_id = 3;
	s.imm = 0xabcdef;
	if (!tb_post(f->ctx, &s))
		f->posted++;
}

static void drain_rings(void)
{
	__atomic_store_n(&cq_ctrl.consumer, cq_ctrl.producer, __ATOMIC_RELEASE);
	__atomic_store_n(&rq_ctrl.consumer, rq_ctrl.producer, __ATOMIC_RELEASE);
	__atomic_store_n(&rr.rcq_ctrl.consumer, rr.rcq_ctrl.producer,
			 __ATOMIC_RELEASE);
	__atomic_store_n(&dr.rcq_ctrl.consumer, dr.rcq_ctrl.producer,
			 __ATOMIC_RELEASE);
}

/* The operation a record asked for, posted between progress calls. */
static void post_deferred(struct fz *f)
{
	int kind = f->post_kind;

	if (kind < 0)
		return;
	f->post_kind = -1;
	drain_rings();
	switch (kind) {
	case 0:
		post(f, TBRDMA_OP_WRITE, f->post_len % (SRC_LEN + 1),
		     mr_iova[MR_SRC], f->keys[MR_SRC], 0x9000, 0, 0);
		break;
	case 1:
		post(f, TBRDMA_OP_READ, f->post_len % (DST2_LEN + 1),
		     mr_iova[MR_DST2], f->keys[MR_DST2], 0x9000, 0, 0);
		break;
	case 2:
		post(f, TBRDMA_OP_ATOMIC, 0, 0, 0, 0x9000,
		     (f->post_len & 1) ? 8 : 4,
		     (u8)(f->post_len % (TBRDMA_ATOMIC_MAX + 1)));
		break;
	default:
		if (f->post_len & 1)
			post(f, TBRDMA_OP_FLUSH, 0, 0, 0, 0, 0, 0);
		else
			post(f, TBRDMA_OP_SEND,
			     f->post_len % (TBRDMA_SEND_MAX + 1),
			     mr_iova[MR_SRC], f->keys[MR_SRC], 0, 0, 0);
		break;
	}
}

static void check_state(struct fz *f)
{
	const struct tb_link *l = &f->link;
	const struct tb_elink *el = f->el;
	const struct tb_ctx *ctx = f->ctx;

	/* Each posted operation is outstanding or completed, once. */
	CHECK((u64)ctx->cq.head + ctx->outstanding == f->posted);
	CHECK(ctx->cq.head - cq_ctrl.consumer <= CQ_ENTRIES);
	CHECK(ctx->rq.head - rq_ctrl.consumer <= RQ_ENTRIES);
	/* Receives are taken only as posted, completed only as taken. */
	CHECK(f->rctx->rwq.head <= rr.rwq_ctrl.producer);
	CHECK(f->rctx->rcq.head - rr.rcq_ctrl.consumer <= RCQ_ENTRIES);
	CHECK(f->rctx->rcq.head + (f->rctx->rcv.state == TB_RCV_FILLING) ==
	      f->rctx->rwq.head);
	/* A datagram completes the receive it takes at once. */
	CHECK(f->dctx->rwq.head <= dr.rwq_ctrl.producer);
	CHECK(f->dctx->rcq.head - dr.rcq_ctrl.consumer <= RCQ_ENTRIES);
	CHECK(f->dctx->rcq.head == f->dctx->rwq.head);
	CHECK(l->tx_next - l->tx_una <= l->cfg.tx_window);
	CHECK(!tb_seq_after(l->tx_una, l->tx_resend) &&
	      !tb_seq_after(l->tx_resend, l->tx_next));
	CHECK(el->msn_next - el->msn_tail <= f->e->cfg.msn_window);
	CHECK(tb_seq_before(el->msn_acked, el->msn_next));
	CHECK(el->rd_outstanding <= f->e->cfg.rd_max);
	CHECK(el->nak_tail - el->nak_head <= f->e->cfg.msn_window);
	CHECK(el->ares_tail - el->ares_head <= f->e->cfg.rd_max);
}

static void fill_guarded(u8 *area, u32 len)
{
	memset(area, PAT, GUARD);
	memset(area + GUARD, 0x11, len);
	memset(area + GUARD + len, PAT, GUARD);
}

static int all_bytes(const u8 *p, size_t n, u8 v)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] != v)
			return 0;
	return 1;
}

/* Keys are random; inputs name a region by index, so they replay. */
static u64 reg(struct fz *f, int i, void *base, u32 access)
{
	u64 key;

	CHECK(!tb_mr_register(f->ctx, mr_iova[i], mr_len[i], access, base,
			      NULL, &key));
	return key;
}

/*
 * A context of posted receives on rings r, a datagram one with dgram, and
 * RW registered in a domain of its own (*key).
 */
static struct tb_ctx *recv_ctx(struct fz *f, u32 id, int dgram,
			       struct recv_rings *r, u64 *key)
{
	struct tb_ctx_config cc;
	struct tb_ctx *ctx;

	memset(&cc, 0, sizeof(cc));
	cc.id = id;
	cc.max_mr = 2;
	cc.max_ep = 1;
	cc.sq_depth = 1;
	cc.dgram = dgram;
	tb_qring_init(&cc.cq, &r->cq_ctrl, r->cq, CQ_ENTRIES,
		      sizeof(struct tbrdma_cqe));
	tb_qring_init(&cc.rwq, &r->rwq_ctrl, r->rwq, RWQ_ENTRIES,
		      sizeof(struct tbrdma_rwqe));
	tb_qring_init(&cc.rcq, &r->rcq_ctrl, r->rcq, RCQ_ENTRIES,
		      sizeof(struct tbrdma_cqe));
	CHECK(!tb_ctx_create(f->e, &cc, &ctx));
	CHECK(!tb_mr_register(ctx, mr_iova[MR_RW], RW_LEN, TBRDMA_ACCESS_ALL,
			      rw_area + GUARD, NULL, key));
	return ctx;
}

static void setup(struct fz *f)
{
	struct tb_engine_config ecfg;
	struct tb_link_config lcfg;
	struct tb_ctx_config cc;
	struct tb_link_hdr h;
	u8 hello[TB_LINK_HDR_LEN];
	u64 rkey;
	int idx;

	tb_engine_config_default(&ecfg);
	ecfg.max_links = 2;
	ecfg.max_ctx = 4;
	ecfg.msn_window = 16;
	ecfg.rd_max = 4;
	CHECK(!tb_engine_create(&f->e, &ecfg));

	tb_link_config_default(&lcfg);
	lcfg.rx_slots = 8;
	lcfg.tx_window = 16;
	lcfg.rto_min_ns = 1000000;
	lcfg.rto_max_ns = 4000000;
	lcfg.dead_ns = 50000000;
	CHECK(!tb_link_init(&f->link, &lcfg, &fz_phy_ops, f,
			    &tb_engine_link_ops, f->e));
	/* Fixed instead of random; nothing was sent yet. */
	f->link.epoch = LOCAL_EPOCH;
	f->link.tx_next = f->link.tx_una = f->link.tx_resend = LOCAL_SEQ0;
	f->link.sack_marked = LOCAL_SEQ0;
	f->link.tx_credit = LOCAL_SEQ0;
	f->link.progress_ns = f->now;
	idx = tb_engine_add_link(f->e, &f->link);
	CHECK(idx >= 0);
	f->el = &f->e->links[idx];

	memset(&cc, 0, sizeof(cc));
	cc.id = CTX_ID;
	cc.max_mr = 8;
	cc.max_ep = 2;
	cc.sq_depth = 16;
	f->rq_mem = calloc(RQ_ENTRIES, TBRDMA_RQE_SLOT);
	CHECK(f->rq_mem);
	tb_qring_init(&cc.cq, &cq_ctrl, cq_mem, CQ_ENTRIES,
		      sizeof(struct tbrdma_cqe));
	tb_qring_init(&cc.rq, &rq_ctrl, f->rq_mem, RQ_ENTRIES, TBRDMA_RQE_SLOT);
	CHECK(!tb_ctx_create(f->e, &cc, &f->ctx));

	fill_guarded(rw_area, RW_LEN);
	fill_guarded(ro_area, RO_LEN);
	fill_guarded(tiny_area, TINY_LEN);
	memset(src_area, 0x5c, sizeof(src_area));
	f->dst = malloc(DST_LEN);
	f->dst2 = malloc(DST2_LEN);
	CHECK(f->dst && f->dst2);
	memset(f->dst, PAT, DST_LEN);
	memset(f->dst2, PAT, DST2_LEN);
	f->keys[MR_RW] = reg(f, MR_RW, rw_area + GUARD, TBRDMA_ACCESS_ALL);
	f->keys[MR_RO] = reg(f, MR_RO, ro_area + GUARD,
			     TBRDMA_ACCESS_LOCAL | TBRDMA_ACCESS_REMOTE_READ);
	f->keys[MR_TINY] = reg(f, MR_TINY, tiny_area + GUARD, TBRDMA_ACCESS_ALL);
	f->keys[MR_SRC] = reg(f, MR_SRC, src_area, TBRDMA_ACCESS_LOCAL);
	f->keys[MR_DST] = reg(f, MR_DST, f->dst, TBRDMA_ACCESS_LOCAL);
	f->keys[MR_DST2] = reg(f, MR_DST2, f->dst2, TBRDMA_ACCESS_LOCAL);

	f->ep = tb_ep_create(f->ctx, (u32)idx, PEER_CTX, PEER_SECRET);
	CHECK(f->ep >= 0);

	/*
	 * The context of posted receives: a receive of RECV1_LEN bytes, one
	 * of the rest, one past RW's end.
	 */
	f->rctx = recv_ctx(f, RCTX_ID, 0, &rr, &f->rctx_key);
	rr.rwq[0] = (struct tbrdma_rwqe){ .wr_id = 1, .addr = mr_iova[MR_RW],
					  .lkey = f->rctx_key,
					  .length = RECV1_LEN };
	rr.rwq[1] = (struct tbrdma_rwqe){ .wr_id = 2,
					  .addr = mr_iova[MR_RW] + RECV1_LEN,
					  .lkey = f->rctx_key,
					  .length = RW_LEN - RECV1_LEN };
	rr.rwq[2] = (struct tbrdma_rwqe){ .wr_id = 3,
					  .addr = mr_iova[MR_RW] + RW_LEN - 8,
					  .lkey = f->rctx_key, .length = 64 };
	__atomic_store_n(&rr.rwq_ctrl.producer, 3, __ATOMIC_RELEASE);

	/*
	 * The datagram context: a receive of RECV1_LEN bytes, one past RW's
	 * end.
	 */
	f->dctx = recv_ctx(f, DCTX_ID, 1, &dr, &rkey);
	CHECK(!tb_ctx_set_qkey(f->dctx, DCTX_QKEY));
	dr.rwq[0] = (struct tbrdma_rwqe){ .wr_id = 1, .addr = mr_iova[MR_RW],
					  .lkey = rkey, .length = RECV1_LEN };
	dr.rwq[1] = (struct tbrdma_rwqe){ .wr_id = 2,
					  .addr = mr_iova[MR_RW] + RW_LEN - 8,
					  .lkey = rkey, .length = 64 };
	__atomic_store_n(&dr.rwq_ctrl.producer, 2, __ATOMIC_RELEASE);

	/* The peer's HELLO, answering ours: the link goes UP. */
	memset(&h, 0, sizeof(h));
	h.type = TB_LINK_HELLO;
	h.seq = PEER_SEQ0;
	h.credit = LOCAL_SEQ0 + 16;
	h.epoch_src = PEER_EPOCH;
	h.epoch_dst = LOCAL_EPOCH;
	tb_link_hdr_encode(hello, &h);
	f->cur = malloc(sizeof(hello));
	CHECK(f->cur);
	memcpy(f->cur, hello, sizeof(hello));
	f->cur_len = sizeof(hello);
	f->have_cur = 1;
	tb_engine_progress(f->e, f->now);
	CHECK(!f->have_cur && f->link.state == TBRDMA_LINK_UP);
	CHECK(f->link.rx_next == PEER_SEQ0);

	/* Requests in flight (msn 1..6), for responses to find. */
	post(f, TBRDMA_OP_WRITE, 100, mr_iova[MR_SRC], f->keys[MR_SRC],
	     0x8000, 0, 0);
	post(f, TBRDMA_OP_READ, READ1_LEN, mr_iova[MR_DST] + READ1_OFF,
	     f->keys[MR_DST], 0x8000, 0, 0);
	post(f, TBRDMA_OP_ATOMIC, 0, 0, 0, 0x8008, 8, TBRDMA_ATOMIC_ADD);
	post(f, TBRDMA_OP_SEND, 50, mr_iova[MR_SRC], f->keys[MR_SRC], 0, 0, 0);
	post(f, TBRDMA_OP_READ, READ2_LEN, mr_iova[MR_DST] + READ2_OFF,
	     f->keys[MR_DST], 0x8100, 0, 0);
	post(f, TBRDMA_OP_ATOMIC, 0, 0, 0, 0x8014, 4, TBRDMA_ATOMIC_CSWAP);
	CHECK(f->posted == 6 && f->el->msn_next == 7);
	check_state(f);
	f->input_open = 1;
}

static void teardown(struct fz *f)
{
	tb_ctx_destroy(f->dctx, NULL, NULL);
	tb_ctx_destroy(f->rctx, NULL, NULL);
	tb_ctx_destroy(f->ctx, NULL, NULL);
	tb_engine_remove_link(f->e, &f->link);
	tb_link_destroy(&f->link);
	tb_engine_destroy(f->e);
	free(f->cur);
	free(f->dst);
	free(f->dst2);
	free(f->rq_mem);
}

/* What the peer must not have been able to touch. */
static void check_memory(struct fz *f)
{
	CHECK(all_bytes(rw_area, GUARD, PAT));
	CHECK(all_bytes(rw_area + GUARD + RW_LEN, GUARD, PAT));
	CHECK(all_bytes(ro_area, GUARD, PAT));
	CHECK(all_bytes(ro_area + GUARD, RO_LEN, 0x11));
	CHECK(all_bytes(ro_area + GUARD + RO_LEN, GUARD, PAT));
	CHECK(all_bytes(tiny_area, GUARD, PAT));
	CHECK(all_bytes(tiny_area + GUARD + TINY_LEN, GUARD, PAT));
	CHECK(all_bytes(src_area, sizeof(src_area), 0x5c));
	CHECK(all_bytes(f->dst, READ1_OFF, PAT));
	CHECK(all_bytes(f->dst + READ1_OFF + READ1_LEN,
			READ2_OFF - READ1_OFF - READ1_LEN, PAT));
	CHECK(all_bytes(f->dst + READ2_OFF + READ2_LEN,
			DST_LEN - READ2_OFF - READ2_LEN, PAT));
}

int LLVMFuzzerTestOneInput(const u8 *data, size_t size)
{
	struct fz f;
	size_t last_pos;
	int i, stuck = 0, rounds;

	/* (a) The raw input as one frame. */
	check_decoders(data, size > 0xffffffffu ? 0xffffffffu : (u32)size);

	/* (b) The input as a stream of frames into a live engine. */
	memset(&f, 0, sizeof(f));
	f.in = data;
	f.size = size;
	f.post_kind = -1;
	f.now = NOW0;
	setup(&f);

	rounds = (int)(size / 3) + 16;
	while (rounds-- > 0 && f.link.state != TBRDMA_LINK_DOWN) {
		last_pos = f.pos;
		f.now += f.jump ? f.jump : 1000;
		f.jump = 0;
		tb_engine_progress(f.e, f.now);
		post_deferred(&f);
		check_state(&f);
		if (f.pos == last_pos && f.have_cur) {
			/* Held back (receive ring full): let the host drain. */
			drain_rings();
			if (++stuck > 4)
				break;
		} else {
			stuck = 0;
		}
		if (f.pos >= f.size && !f.have_cur)
			break;
	}
	/* Timers: resends, then the peer that went quiet takes it down. */
	for (i = 0; i < 8 && f.link.state != TBRDMA_LINK_DOWN; i++) {
		f.now += 10000000;
		drain_rings();
		tb_engine_progress(f.e, f.now);
		check_state(&f);
	}
	check_memory(&f);
#ifdef FUZZ_TRACE
	/* cc -DFUZZ_TRACE ...: what an input reached, for tuning seeds. */
	fprintf(stderr,
		"link %u rx_frames %llu rx_bad %llu | resp_done %u msn_acked %u "
		"msn_next %u | posted %u completed %u | rq %u\n",
		f.link.state, (unsigned long long)f.link.stats.rx_frames,
		(unsigned long long)f.link.stats.rx_bad, f.el->resp_done,
		f.el->msn_acked, f.el->msn_next, f.posted, f.ctx->cq.head,
		f.ctx->rq.head);
	for (u32 c = 0; c < f.ctx->cq.head && c < CQ_ENTRIES; c++) {
		const struct tbrdma_cqe *q =
			(const void *)(cq_mem + c * sizeof(*q));
		fprintf(stderr, "  cqe wr_id %llu op %u status %u len %u\n",
			(unsigned long long)q->wr_id, q->opcode, q->status,
			q->byte_len);
	}
#endif
	teardown(&f);
	return 0;
}
