// SPDX-License-Identifier: GPL-2.0
/*
 * XDomain links: the control protocol (src/common/tb_ctrl.c) over XDomain
 * messages, its work item and protocol handler, and closing a connection
 * (see tbrdma_xd.h).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/delay.h>
#include <linux/slab.h>

#include "tbrdma_xd.h"

/* 2086e9ad-9cfc-4835-896d-cc515c14c26a: our control messages. */
static const uuid_t tbrdma_xd_proto_uuid =
	UUID_INIT(0x2086e9ad, 0x9cfc, 0x4835,
		  0x89, 0x6d, 0xcc, 0x51, 0x5c, 0x14, 0xc2, 0x6a);

/*
 * A control message: the XDomain header (route, length and sequence
 * number), the protocol UUID, then tb_ctrl's words. At most 252 bytes.
 */
#define TBRDMA_XD_HDR_DW 7
#define TBRDMA_XD_PKT_DW (TBRDMA_XD_HDR_DW + TB_CTRL_MSG_MAX_DW)
#define TBRDMA_XD_LEN_MASK GENMASK(5, 0)
#define TBRDMA_XD_SN_SHIFT 27
#define TBRDMA_XD_SN_MASK GENMASK(28, 27)
static_assert(TBRDMA_XD_PKT_DW * 4 <= 252);

/* A host UUID as tb_ctrl carries it: four little-endian words. */
void tbrdma_xd_uuid_words(const uuid_t *uuid, u32 *w)
{
	const u8 *b = uuid->b;
	int i;

	for (i = 0; i < 4; i++, b += 4)
		w[i] = b[0] | (b[1] << 8) | (b[2] << 16) | ((u32)b[3] << 24);
}

u64 tbrdma_xd_now(void)
{
	return ktime_get_ns();
}

/* Header of a control message to the peer; n words of tb_ctrl follow. */
static void tbrdma_xd_fill_hdr(struct tbrdma_xd_link *xl, u32 *pkt, u32 n,
			       u32 sn)
{
	pkt[0] = upper_32_bits(xl->route);
	pkt[1] = lower_32_bits(xl->route);
	/* The length counts the words after route and length_sn. */
	pkt[2] = ((TBRDMA_XD_HDR_DW - 3 + n) & TBRDMA_XD_LEN_MASK) |
		 ((sn << TBRDMA_XD_SN_SHIFT) & TBRDMA_XD_SN_MASK);
	memcpy(&pkt[3], &tbrdma_xd_proto_uuid, sizeof(uuid_t));
}

/*
 * Checks a received control message and finds tb_ctrl's words in it.
 * Returns their number, or 0.
 */
static u32 tbrdma_xd_payload(const u32 *pkt, size_t size)
{
	u32 len;

	if (size % 4 || size < 4 * (TBRDMA_XD_HDR_DW + TB_CTRL_FIXED_DW) ||
	    size > 4 * TBRDMA_XD_PKT_DW)
		return 0;
	len = pkt[2] & TBRDMA_XD_LEN_MASK;
	if (len + 3 != size / 4)
		return 0;
	if (memcmp(&pkt[3], &tbrdma_xd_proto_uuid, sizeof(uuid_t)))
		return 0;
	return size / 4 - TBRDMA_XD_HDR_DW;
}

/*
 * Sends one request and waits for its response (or the timeout). Returns
 * the number of tb_ctrl words in resp, 0 when none came.
 */
static u32 tbrdma_xd_request(struct tbrdma_xd_link *xl, const u32 *req,
			     u32 n, u32 *resp)
{
	u32 pkt[TBRDMA_XD_PKT_DW], rpkt[TBRDMA_XD_PKT_DW];
	u32 rn, len;
	int ret;

	tbrdma_xd_fill_hdr(xl, pkt, n, xl->req_sn++);
	memcpy(&pkt[TBRDMA_XD_HDR_DW], req, n * 4);
	memset(rpkt, 0, sizeof(rpkt));
	ret = tb_xdomain_request(xl->xd, pkt, (TBRDMA_XD_HDR_DW + n) * 4,
				 TB_CFG_PKG_XDOMAIN_REQ, rpkt, sizeof(rpkt),
				 TB_CFG_PKG_XDOMAIN_RESP,
				 READ_ONCE(tbrdma_xd_timeout_ms));
	if (ret)
		return 0;
	/* The core copies what came, at most sizeof(rpkt): check its length. */
	len = rpkt[2] & TBRDMA_XD_LEN_MASK;
	if (len + 3 < TBRDMA_XD_HDR_DW + TB_CTRL_FIXED_DW ||
	    len + 3 > TBRDMA_XD_PKT_DW)
		return 0;
	rn = tbrdma_xd_payload(rpkt, (len + 3) * 4);
	if (rn)
		memcpy(resp, &rpkt[TBRDMA_XD_HDR_DW], rn * 4);
	return rn;
}

static void tbrdma_xd_report_refusal(struct tbrdma_xd_link *xl,
				     const struct tb_ctrl_action *a)
{
	char name[TBRDMA_XD_NAME_LEN];

	tbrdma_xd_peer_name(xl->xd, name, sizeof(name));
	xl->refused_reason = a->reason;
	if (a->reason == TB_CTRL_R_VERSION)
		dev_err(&xl->dev, "%s refused: %s (peer %s speaks tbrdma protocol %u-%u, this module %u-%u); load matching tbrdma versions on both hosts\n",
			a->by_peer ? "login" : "peer",
			tb_ctrl_reason_name(a->reason),
			name, a->peer_ver_min,
			a->peer_ver_max, TB_CTRL_VERSION_MIN,
			TB_CTRL_VERSION_MAX);
	else
		dev_err(&xl->dev, "%s refused: %s (peer %s)\n",
			a->by_peer ? "login" : "peer",
			tb_ctrl_reason_name(a->reason), name);
}

/* Carries out what the control protocol decided. Work item context. */
static void tbrdma_xd_actions(struct tbrdma_xd_link *xl)
{
	struct tb_ctrl_action a;
	int ret;

	for (;;) {
		mutex_lock(&xl->ctrl_lock);
		if (test_and_clear_bit(TBRDMA_XD_LINK_FAILED, &xl->flags) &&
		    READ_ONCE(xl->failed_gen) == READ_ONCE(xl->link_gen))
			tb_ctrl_link_failed(&xl->ctrl, tbrdma_xd_now());
		ret = tb_ctrl_next_action(&xl->ctrl, &a);
		mutex_unlock(&xl->ctrl_lock);
		if (!ret)
			return;
		switch (a.type) {
		case TB_CTRL_ACT_UP:
			ret = tbrdma_xd_link_up(xl, &a);
			if (ret) {
				xl->stats.setup_errors++;
				dev_err(&xl->dev, "could not bring the link up (%d)\n",
					ret);
				tbrdma_xd_link_down(xl);
				mutex_lock(&xl->ctrl_lock);
				tb_ctrl_link_failed(&xl->ctrl, tbrdma_xd_now());
				mutex_unlock(&xl->ctrl_lock);
			}
			break;
		case TB_CTRL_ACT_DOWN:
			if (xl->attached || xl->rings_started)
				dev_info_ratelimited(&xl->dev,
						     "taking the link down: %s\n",
						     tb_ctrl_reason_name(a.reason));
			tbrdma_xd_link_down(xl);
			break;
		case TB_CTRL_ACT_REFUSED:
			tbrdma_xd_report_refusal(xl, &a);
			break;
		case TB_CTRL_ACT_LOGGED_OUT:
			dev_dbg(&xl->dev, "logged out\n");
			break;
		}
	}
}

/*
 * Runs the control protocol until it has nothing to send now: actions,
 * then one request at a time. Returns the protocol's next deadline.
 */
static u64 tbrdma_xd_run(struct tbrdma_xd_link *xl)
{
	u32 req[TB_CTRL_MSG_MAX_DW], resp[TB_CTRL_MSG_MAX_DW];
	u64 deadline;
	u32 n, rn;
	int ret;

	for (;;) {
		tbrdma_xd_actions(xl);
		mutex_lock(&xl->ctrl_lock);
		ret = tb_ctrl_next_request(&xl->ctrl, tbrdma_xd_now(), req, &n);
		mutex_unlock(&xl->ctrl_lock);
		if (!ret)
			break;
		rn = tbrdma_xd_request(xl, req, n, resp);
		mutex_lock(&xl->ctrl_lock);
		tb_ctrl_request_done(&xl->ctrl, tbrdma_xd_now(),
				     rn ? resp : NULL, rn);
		mutex_unlock(&xl->ctrl_lock);
	}
	mutex_lock(&xl->ctrl_lock);
	deadline = tb_ctrl_next_deadline(&xl->ctrl);
	mutex_unlock(&xl->ctrl_lock);
	return deadline;
}

void tbrdma_xd_work(struct work_struct *work)
{
	struct tbrdma_xd_link *xl = container_of(to_delayed_work(work),
						 struct tbrdma_xd_link, work);
	u64 deadline, now;

	if (test_bit(TBRDMA_XD_CLOSING, &xl->flags))
		return;
	deadline = tbrdma_xd_run(xl);
	if (!deadline || test_bit(TBRDMA_XD_CLOSING, &xl->flags))
		return;
	now = tbrdma_xd_now();
	/* Does not delay a run someone asked for meanwhile. */
	queue_delayed_work(tbxd.wq, &xl->work, deadline > now ?
			   nsecs_to_jiffies(deadline - now) + 1 : 0);
}

/*
 * Control messages from peers, in the control channel's receive path.
 * Requests are answered here at once; responses are left to the core,
 * which hands them to the request waiting in tbrdma_xd_request().
 */
static int tbrdma_xd_dispatch(const void *buf, size_t size)
{
	u32 resp[TBRDMA_XD_PKT_DW], sender[4], target[4];
	struct tbrdma_xd_link *xl = NULL;
	const u32 *pkt = buf;
	u32 n, rn = 0, i;
	u64 route;
	int ret;

	n = tbrdma_xd_payload(pkt, size);
	if (!n)
		return 0;
	if (tb_ctrl_is_response(&pkt[TBRDMA_XD_HDR_DW], n))
		return 0;
	route = (((u64)pkt[0] << 32) | pkt[1]) & ~BIT_ULL(63);
	/* Words 8-15 of every version: sender and target host UUIDs. */
	memcpy(sender, &pkt[TBRDMA_XD_HDR_DW + 8], sizeof(sender));
	memcpy(target, &pkt[TBRDMA_XD_HDR_DW + 12], sizeof(target));

	spin_lock(&tbxd.slot_lock);
	for (i = 0; i < TBRDMA_XD_MAX; i++) {
		struct tbrdma_xd_link *l = tbxd.slot[i];
		u32 r[4], t[4];

		if (!l || l->route != route)
			continue;
		tbrdma_xd_uuid_words(&l->remote_uuid, r);
		tbrdma_xd_uuid_words(&l->local_uuid, t);
		if (memcmp(r, sender, sizeof(r)) || memcmp(t, target, sizeof(t)))
			continue;
		xl = l;
		get_device(&xl->dev);
		break;
	}
	spin_unlock(&tbxd.slot_lock);
	if (!xl)
		return 0;	/* not (yet) bound to this peer */

	mutex_lock(&xl->ctrl_lock);
	ret = tb_ctrl_handle_request(&xl->ctrl, tbrdma_xd_now(),
				     &pkt[TBRDMA_XD_HDR_DW], n,
				     &resp[TBRDMA_XD_HDR_DW], &rn);
	/* Under the lock: tbrdma_xd_close() sets CLOSING under it. */
	if (!test_bit(TBRDMA_XD_CLOSING, &xl->flags))
		mod_delayed_work(tbxd.wq, &xl->work, 0);
	mutex_unlock(&xl->ctrl_lock);
	if (ret) {
		/* Same sequence number as the request, as XDomain does. */
		tbrdma_xd_fill_hdr(xl, resp, rn,
				   (pkt[2] & TBRDMA_XD_SN_MASK) >>
				   TBRDMA_XD_SN_SHIFT);
		tb_xdomain_response(xl->xd, resp, (TBRDMA_XD_HDR_DW + rn) * 4,
				    TB_CFG_PKG_XDOMAIN_RESP);
	}
	put_device(&xl->dev);
	return 1;
}

static int tbrdma_xd_handle_packet(const void *buf, size_t size, void *data)
{
	int ret;

	/* Counted, so that unloading waits (see tbxd.handler_calls). */
	atomic_inc(&tbxd.handler_calls);
	ret = tbrdma_xd_dispatch(buf, size);
	if (atomic_dec_and_test(&tbxd.handler_calls))
		wake_up(&tbxd.handler_wq);
	return ret;
}

struct tb_protocol_handler tbrdma_xd_handler = {
	.uuid = &tbrdma_xd_proto_uuid,
	.callback = tbrdma_xd_handle_packet,
};

/*
 * Stops the control protocol and the link: with a LOGOUT to the peer
 * (unload, suspend, shutdown) or without (unplug). Sleeps.
 */
void tbrdma_xd_close(struct tbrdma_xd_link *xl, bool logout)
{
	mutex_lock(&xl->ctrl_lock);
	set_bit(TBRDMA_XD_CLOSING, &xl->flags);
	mutex_unlock(&xl->ctrl_lock);
	cancel_delayed_work_sync(&xl->work);
	mutex_lock(&xl->ctrl_lock);
	if (logout)
		tb_ctrl_logout(&xl->ctrl, tbrdma_xd_now());
	else
		tb_ctrl_stop(&xl->ctrl);
	mutex_unlock(&xl->ctrl_lock);
	/* LOGOUT: a few tries of at most xd_timeout_ms each. */
	while (logout) {
		u64 deadline = tbrdma_xd_run(xl);
		u64 now = tbrdma_xd_now();

		if (!deadline)
			break;
		if (deadline > now)
			msleep(DIV_ROUND_UP_ULL(deadline - now, NSEC_PER_MSEC));
	}
	tbrdma_xd_actions(xl);
	tbrdma_xd_link_down(xl);
	/* A request the handler queued meanwhile. */
	cancel_delayed_work_sync(&xl->work);
}
