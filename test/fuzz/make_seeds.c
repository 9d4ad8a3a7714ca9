// SPDX-License-Identifier: BSD-2-Clause
/*
 * Writes the seed inputs of fuzz_frame into a directory (default: seeds).
 * Not built by make; run by hand after changing the harness's input format:
 *
 *   cc -I include/uapi -I src/common test/fuzz/make_seeds.c src/common/tb_wire.c \
 *      -o /tmp/make_seeds && /tmp/make_seeds test/fuzz/seeds
 *
 * Records are "u16 len | u8 flags | frame" as fuzz_frame.c reads them; the
 * constants below must match that file.
 */
#include "tb_wire.h"

#include <stdio.h>
#include <string.h>

#define LOCAL_EPOCH 0x1e0c0a1du
#define PEER_EPOCH 0x5ee55ee5u
#define LOCAL_SEQ0 0xfffffff8u
#define PEER_SEQ0 0x7ffffffcu
#define CTX_ID 0x00005a03u
#define KEY(i) ((u64)(i))	/* the harness maps a small key to region i */

#define F_RAW_LINK 0x01
#define F_REWRITE_ENGINE 0x04
#define F_JUMP 0x08

static unsigned char buf[65536];
static size_t used;

static void record(u8 flags, const u8 *frame, u32 len)
{
	buf[used++] = (u8)len;
	buf[used++] = (u8)(len >> 8);
	buf[used++] = flags;
	memcpy(buf + used, frame, len);
	used += len;
}

/*
 * A DATA frame: with F_RAW_LINK its link header is what the harness's link
 * expects as the peer's frame number n (seq, epochs, acking all 6 setup
 * requests); otherwise the harness rewrites it anyway.
 */
static void data_record(u8 flags, u32 n, const struct tb_engine_hdr *eh,
			u32 payload, u8 fill)
{
	u8 f[TBRDMA_FRAME_MAX];
	struct tb_link_hdr h;

	memset(&h, 0, sizeof(h));
	h.type = TB_LINK_DATA;
	h.len = (u16)(TB_ENGINE_HDR_LEN + payload);
	h.seq = PEER_SEQ0 + n;
	h.ack = LOCAL_SEQ0 + 6;
	h.credit = LOCAL_SEQ0 + 6 + 16;
	h.epoch_src = PEER_EPOCH;
	h.epoch_dst = LOCAL_EPOCH;
	tb_link_hdr_encode(f, &h);
	tb_engine_hdr_encode(f + TB_LINK_HDR_LEN, eh);
	memset(f + TB_FRAME_HDRS, fill, payload);
	record(flags, f, TB_FRAME_HDRS + payload);
}

/*
 * An ACK as the peer would send it: frames ack + 1 + i it keeps in sack
 * (0: no selective ack); with user_ack, the engine's ack_msn too.
 */
static void ack_record(u32 ack, u64 sack, u32 user_ack)
{
	u8 f[TB_LINK_HDR_LEN + TB_LINK_SACK_LEN];
	struct tb_link_hdr h;

	memset(&h, 0, sizeof(h));
	h.type = TB_LINK_ACK;
	if (sack) {
		h.flags = TB_LINK_F_GAP | TB_LINK_F_SACK;
		h.len = TB_LINK_SACK_LEN;
	}
	if (user_ack) {
		h.flags |= TB_LINK_F_USER_ACK;
		h.user_ack = user_ack;
	}
	h.ack = ack;
	h.credit = ack + 16;
	h.epoch_src = PEER_EPOCH;
	h.epoch_dst = LOCAL_EPOCH;
	h.sack = sack;
	tb_link_hdr_encode(f, &h);
	record(F_RAW_LINK, f, TB_LINK_HDR_LEN + h.len);
}

static struct tb_engine_hdr ehdr(u8 op, u32 len, u32 msn)
{
	struct tb_engine_hdr h;

	memset(&h, 0, sizeof(h));
	h.op = op;
	h.len = len;
	h.msn = msn;
	h.dst_ctx = CTX_ID;
	return h;
}

static int save(const char *dir, const char *name)
{
	char path[512];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fp = fopen(path, "wb");
	if (!fp || fwrite(buf, 1, used, fp) != used || fclose(fp)) {
		perror(path);
		return 1;
	}
	used = 0;
	return 0;
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "seeds";
	struct tb_engine_hdr h;
	int err = 0;
	u8 junk[40];

	/* Requests, raw and exact: WRITE to the rw region, READ of the
	 * read-only one, ATOMIC on the tiny one, two SENDs. */
	h = ehdr(TB_EOP_WRITE, 64, 1);
	h.rkey = KEY(0);
	h.addr = 0x100000 + 8;
	data_record(F_RAW_LINK, 0, &h, 64, 0xab);
	h = ehdr(TB_EOP_READ_REQ, 100, 2);
	h.rkey = KEY(1);
	h.addr = 0x200000;
	data_record(F_RAW_LINK, 1, &h, 0, 0);
	h = ehdr(TB_EOP_ATOMIC, 0, 3);
	h.rkey = KEY(2);
	h.addr = 0x300000;
	h.arg = 8;
	h.aop = TBRDMA_ATOMIC_CSWAP;
	data_record(F_RAW_LINK, 2, &h, 0, 0);
	h = ehdr(TB_EOP_SEND, 30, 4);
	data_record(F_RAW_LINK, 3, &h, 30, 0x11);
	err |= save(dir, "requests_raw");

	/* Responses to the setup requests (msn 1..6: WRITE, READ 10000,
	 * ATOMIC, SEND, READ 16, ATOMIC), engine header rewritten: msn is
	 * msn_tail (1) + raw msn, ack_msn is msn_acked + raw ack_msn. */
	h = ehdr(TB_EOP_READ_RESP, TB_PAYLOAD_MAX, 1);
	h.addr = 0;
	data_record(F_REWRITE_ENGINE, 0, &h, TB_PAYLOAD_MAX, 0x21);
	h.addr = TB_PAYLOAD_MAX;
	data_record(F_REWRITE_ENGINE, 1, &h, TB_PAYLOAD_MAX, 0x22);
	h = ehdr(TB_EOP_READ_RESP, 10000 - 2 * TB_PAYLOAD_MAX, 1);
	h.addr = 2 * TB_PAYLOAD_MAX;
	h.flags = TB_EF_LAST;
	data_record(F_REWRITE_ENGINE, 2, &h, 10000 - 2 * TB_PAYLOAD_MAX, 0x23);
	h = ehdr(TB_EOP_ATOMIC_RESP, 0, 2);
	h.imm = 0x1234;
	data_record(F_REWRITE_ENGINE, 3, &h, 0, 0);
	h = ehdr(TB_EOP_RNR_NAK, 0, 4);
	data_record(F_REWRITE_ENGINE, 4, &h, 0, 0);
	h = ehdr(TB_EOP_NAK, 0, 4);
	h.arg = TBRDMA_WC_REM_ACCESS_ERR;
	data_record(F_REWRITE_ENGINE, 5, &h, 0, 0);
	h = ehdr(TB_EOP_ACK, 0, 0);
	h.ack_msn = 6;
	data_record(F_REWRITE_ENGINE, 6, &h, 0, 0);
	err |= save(dir, "responses");

	/* Requests through the rewriter: SENDs past the 2-entry receive
	 * ring (the third not ready, then resent with RESUME), READ_REQ and
	 * ATOMIC, then timers. */
	for (int i = 0; i < 3; i++) {
		h = ehdr(TB_EOP_SEND, 200, 0);
		data_record(F_REWRITE_ENGINE, (u32)i, &h, 200, (u8)i);
	}
	h = ehdr(TB_EOP_SEND, 200, 0);
	h.flags = TB_EF_RESUME;
	data_record(F_REWRITE_ENGINE, 3, &h, 200, 3);
	h = ehdr(TB_EOP_READ_REQ, 5000, 0);
	data_record(F_REWRITE_ENGINE, 4, &h, 0, 0);
	h = ehdr(TB_EOP_ATOMIC, 0, 0);
	h.rkey = 2;
	h.addr = 16;
	data_record(F_REWRITE_ENGINE, 5, &h, 0, 0);
	h = ehdr(TB_EOP_WRITE, 10, 0);
	h.rkey = 1;		/* the read-only region: NAK */
	data_record(F_REWRITE_ENGINE | F_JUMP, 6, &h, 10, 0x99);
	err |= save(dir, "requests");

	/* Junk, a truncated header, more operations posted. */
	memset(junk, 0x62, sizeof(junk));
	record(0x01, junk, sizeof(junk));
	record(0x00, junk, 20);
	record(0x10 | 0x20, junk, 3);		/* post a READ */
	record(0x10 | 0x40 | 0x80, junk, 1);	/* post an ATOMIC, xmit busy */
	record(0x10 | 0x60, junk, 2);		/* post a SEND */
	record(F_JUMP, junk, 0);
	err |= save(dir, "junk_and_posts");

	/*
	 * Frames after a gap, kept until it is filled, and a selective ack
	 * of our setup frames showing the third missing.
	 */
	h = ehdr(TB_EOP_SEND, 16, 2);
	data_record(F_RAW_LINK, 1, &h, 16, 0x32);
	h = ehdr(TB_EOP_WRITE, 64, 3);
	h.rkey = KEY(0);
	h.addr = 0x100000 + 128;
	data_record(F_RAW_LINK, 2, &h, 64, 0x33);
	h = ehdr(TB_EOP_SEND, 16, 1);
	data_record(F_RAW_LINK, 0, &h, 16, 0x31);
	ack_record(LOCAL_SEQ0 + 2, 0x3, 0);
	err |= save(dir, "out_of_order");

	/*
	 * ACKs carrying the engine's ack of our setup requests: part of
	 * them, all of them, then one never sent (a protocol error).
	 */
	ack_record(LOCAL_SEQ0 + 6, 0, 3);
	ack_record(LOCAL_SEQ0 + 6, 0, 6);
	ack_record(LOCAL_SEQ0 + 6, 0, 7);
	err |= save(dir, "user_ack");

	/*
	 * Messages into the posted receives (the rewriter sends MSG to that
	 * context; an address with low bits set is a message's start): one
	 * in two chunks filling the first receive, one in the second, one
	 * into the receive past its region's end, one with none left, and
	 * a WRITE with immediate.
	 */
	h = ehdr(TB_EOP_MSG, 600, 0);
	h.addr = 1;
	data_record(F_REWRITE_ENGINE, 0, &h, 600, 0x41);
	h = ehdr(TB_EOP_MSG, 400, 0);
	h.addr = 600;
	h.flags = TB_EF_LAST;
	data_record(F_REWRITE_ENGINE, 1, &h, 400, 0x42);
	h = ehdr(TB_EOP_MSG, 3000, 0);
	h.addr = 1;
	h.flags = TB_EF_LAST;
	data_record(F_REWRITE_ENGINE, 2, &h, 3000, 0x43);
	h = ehdr(TB_EOP_MSG, 100, 0);
	h.addr = 1;
	h.flags = TB_EF_LAST;
	data_record(F_REWRITE_ENGINE, 3, &h, 100, 0x44);
	h = ehdr(TB_EOP_MSG, 10, 0);
	h.addr = 1;
	h.flags = TB_EF_LAST;
	data_record(F_REWRITE_ENGINE | F_JUMP, 4, &h, 10, 0x45);
	/* A WRITE with immediate into that context's RW region (key 0). */
	h = ehdr(TB_EOP_WRITE, 100, 0);
	h.addr = 64;
	h.flags = TB_EF_IMM;
	h.imm = 0x99;
	h.compare = 100;
	data_record(F_REWRITE_ENGINE, 5, &h, 100, 0x46);
	err |= save(dir, "messages");

	/*
	 * Datagrams (the rewriter sends them to the datagram context, and
	 * with its key, unless dst_ctx has 0x100 or 0x200 set): one into the
	 * first receive, one into the receive past its region's end, one
	 * with none left, and one with a wrong key.
	 */
	h = ehdr(TB_EOP_DGRAM, 900, 0);
	h.dst_ctx = 0;
	h.flags = TB_EF_IMM;
	h.imm = 0x55;
	data_record(F_REWRITE_ENGINE, 0, &h, 900, 0x51);
	h.len = 40;
	h.flags = 0;
	data_record(F_REWRITE_ENGINE, 1, &h, 40, 0x52);
	h.len = 20;
	data_record(F_REWRITE_ENGINE, 2, &h, 20, 0x53);
	h = ehdr(TB_EOP_DGRAM, 20, 0);
	h.dst_ctx = 0x200;
	h.dst_secret = 1;
	data_record(F_REWRITE_ENGINE, 3, &h, 20, 0x54);
	err |= save(dir, "datagrams");

	/* A request executed, then the cable loses carrier. */
	h = ehdr(TB_EOP_WRITE, 8, 0);
	data_record(F_REWRITE_ENGINE, 0, &h, 8, 0x77);
	record(0xff, junk, 0);
	err |= save(dir, "carrier_loss");
	return err;
}
