// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Control protocol: per-peer login over XDomain messages. See tb_ctrl.h
 * for the protocol and the wire layout.
 */
#include "tb_ctrl.h"

/* Word offsets. */
enum {
	W_MAGIC = 0,
	W_VER_MIN,
	W_VER_MAX,
	W_TYPE,
	W_NDW,
	W_SEQ,
	W_STATUS,
	W_FLAGS,
	W_SENDER_UUID,		/* 4 words */
	W_TARGET_UUID = W_SENDER_UUID + 4,
	W_SENDER_BOOT = W_TARGET_UUID + 4,	/* lo, hi */
	W_SENDER_SESSION = W_SENDER_BOOT + 2,
	W_TARGET_BOOT,				/* lo, hi */
	W_TARGET_SESSION = W_TARGET_BOOT + 2,
	W_BODY,
	/* LOGIN */
	W_CAPS = W_BODY,
	W_RX_SLOTS,
	W_TX_SLOTS,
	W_FRAME_MAX,
	W_CREDITS,
	W_HOPID,
	W_LOGIN_END,
	/* LOGIN_RESP */
	W_RESP_FLAGS = W_CAPS + 1,
	W_LOGIN_RESP_END,
};

tb_static_assert(W_BODY == TB_CTRL_HDR_DW, "header words");
tb_static_assert(W_LOGIN_END == TB_CTRL_LOGIN_DW, "LOGIN words");
tb_static_assert(W_LOGIN_RESP_END == TB_CTRL_LOGIN_RESP_DW,
		 "LOGIN_RESP words");
tb_static_assert(W_TARGET_UUID + 4 == TB_CTRL_FIXED_DW, "frozen words");
tb_static_assert(TB_CTRL_LOGIN_DW <= TB_CTRL_MSG_MAX_DW, "LOGIN fits");

static u32 tb_ctrl_type_dw(u32 type)
{
	switch (type) {
	case TB_CTRL_LOGIN:
		return TB_CTRL_LOGIN_DW;
	case TB_CTRL_LOGIN_RESP:
		return TB_CTRL_LOGIN_RESP_DW;
	default:
		return TB_CTRL_HDR_DW;
	}
}

static int tb_ctrl_type_is_response(u32 type)
{
	return type == TB_CTRL_LOGIN_RESP || type == TB_CTRL_LOGOUT_RESP;
}

static u64 tb_ctrl_get64(const u32 *w)
{
	return (u64)w[0] | ((u64)w[1] << 32);
}

static void tb_ctrl_put64(u32 *w, u64 v)
{
	w[0] = (u32)v;
	w[1] = (u32)(v >> 32);
}

int tb_ctrl_decode(const u32 *buf, u32 ndw, struct tb_ctrl_msg *msg)
{
	u32 i, need;

	memset(msg, 0, sizeof(*msg));
	if (!buf || ndw < TB_CTRL_FIXED_DW || ndw > TB_CTRL_MSG_MAX_DW)
		return -EINVAL;
	if (buf[W_MAGIC] != TB_CTRL_MAGIC)
		return -EINVAL;
	msg->ver_min = buf[W_VER_MIN];
	msg->ver_max = buf[W_VER_MAX];
	msg->type = buf[W_TYPE];
	msg->ndw = buf[W_NDW];
	msg->seq = buf[W_SEQ];
	msg->status = buf[W_STATUS];
	if (!msg->ver_min || msg->ver_min > msg->ver_max)
		return -EINVAL;
	if (msg->type < TB_CTRL_LOGIN || msg->type > TB_CTRL_LOGOUT_RESP)
		return -EINVAL;
	if (msg->ndw != ndw)
		return -EINVAL;
	for (i = 0; i < 4; i++) {
		msg->sender_uuid[i] = buf[W_SENDER_UUID + i];
		msg->target_uuid[i] = buf[W_TARGET_UUID + i];
	}
	/* A layout we do not know: only the frozen words are meaningful. */
	if (msg->ver_min > TB_CTRL_LAYOUT_MAX)
		return -EPROTONOSUPPORT;

	need = tb_ctrl_type_dw(msg->type);
	if (ndw < need)
		return -EINVAL;
	/* Appended words only from a sender that speaks a later version. */
	if (ndw > need && msg->ver_max <= TB_CTRL_LAYOUT_MAX)
		return -EINVAL;
	if (msg->status > TB_CTRL_ST_MAX)
		return -EINVAL;
	if (!tb_ctrl_type_is_response(msg->type) && msg->status)
		return -EINVAL;
	if (buf[W_FLAGS])
		return -EINVAL;
	msg->sender_boot = tb_ctrl_get64(&buf[W_SENDER_BOOT]);
	msg->sender_session = buf[W_SENDER_SESSION];
	msg->target_boot = tb_ctrl_get64(&buf[W_TARGET_BOOT]);
	msg->target_session = buf[W_TARGET_SESSION];
	if (!msg->sender_boot || !msg->sender_session)
		return -EINVAL;
	/* The target is either wholly known or wholly unknown. */
	if (!msg->target_boot != !msg->target_session)
		return -EINVAL;

	switch (msg->type) {
	case TB_CTRL_LOGIN:
		msg->params.caps = buf[W_CAPS];
		msg->params.rx_slots = buf[W_RX_SLOTS];
		msg->params.tx_slots = buf[W_TX_SLOTS];
		msg->params.frame_max = buf[W_FRAME_MAX];
		msg->params.credits = buf[W_CREDITS];
		msg->params.hopid = buf[W_HOPID];
		break;
	case TB_CTRL_LOGIN_RESP:
		msg->params.caps = buf[W_CAPS];
		msg->resp_flags = buf[W_RESP_FLAGS];
		if (msg->resp_flags & ~TB_CTRL_RESP_ALL)
			return -EINVAL;
		break;
	default:
		break;
	}
	return 0;
}

u32 tb_ctrl_encode(struct tb_ctrl_msg *msg, u32 *buf)
{
	u32 i, n = tb_ctrl_type_dw(msg->type);

	memset(buf, 0, n * sizeof(*buf));
	msg->ndw = n;
	buf[W_MAGIC] = TB_CTRL_MAGIC;
	buf[W_VER_MIN] = msg->ver_min;
	buf[W_VER_MAX] = msg->ver_max;
	buf[W_TYPE] = msg->type;
	buf[W_NDW] = n;
	buf[W_SEQ] = msg->seq;
	buf[W_STATUS] = msg->status;
	for (i = 0; i < 4; i++) {
		buf[W_SENDER_UUID + i] = msg->sender_uuid[i];
		buf[W_TARGET_UUID + i] = msg->target_uuid[i];
	}
	tb_ctrl_put64(&buf[W_SENDER_BOOT], msg->sender_boot);
	buf[W_SENDER_SESSION] = msg->sender_session;
	tb_ctrl_put64(&buf[W_TARGET_BOOT], msg->target_boot);
	buf[W_TARGET_SESSION] = msg->target_session;
	switch (msg->type) {
	case TB_CTRL_LOGIN:
		buf[W_CAPS] = msg->params.caps;
		buf[W_RX_SLOTS] = msg->params.rx_slots;
		buf[W_TX_SLOTS] = msg->params.tx_slots;
		buf[W_FRAME_MAX] = msg->params.frame_max;
		buf[W_CREDITS] = msg->params.credits;
		buf[W_HOPID] = msg->params.hopid;
		break;
	case TB_CTRL_LOGIN_RESP:
		buf[W_CAPS] = msg->params.caps;
		buf[W_RESP_FLAGS] = msg->resp_flags;
		break;
	default:
		break;
	}
	return n;
}

int tb_ctrl_is_response(const u32 *buf, u32 ndw)
{
	return buf && ndw >= TB_CTRL_FIXED_DW && buf[W_MAGIC] == TB_CTRL_MAGIC &&
	       tb_ctrl_type_is_response(buf[W_TYPE]);
}

int tb_ctrl_params_valid(const struct tb_ctrl_params *p)
{
	return p->rx_slots >= TB_CTRL_SLOTS_MIN &&
	       p->rx_slots <= TB_CTRL_SLOTS_MAX &&
	       p->tx_slots >= TB_CTRL_SLOTS_MIN &&
	       p->tx_slots <= TB_CTRL_SLOTS_MAX &&
	       p->frame_max == TB_CTRL_FRAME_MAX &&
	       p->credits >= 1 && p->credits <= p->rx_slots &&
	       p->hopid >= TB_CTRL_HOPID_MIN && p->hopid <= TB_CTRL_HOPID_MAX;
}

static const char *const tb_ctrl_state_names[] = {
	[TB_CTRL_S_IDLE] = "idle",
	[TB_CTRL_S_LOGIN] = "login",
	[TB_CTRL_S_UP] = "up",
	[TB_CTRL_S_WAIT] = "wait",
	[TB_CTRL_S_REFUSED] = "refused",
	[TB_CTRL_S_LOGOUT] = "logout",
};

const char *tb_ctrl_state_name(u32 state)
{
	if (state <= TB_CTRL_S_LOGOUT)
		return tb_ctrl_state_names[state];
	return "?";
}

static const char *const tb_ctrl_reason_names[] = {
	[TB_CTRL_R_NONE] = "none",
	[TB_CTRL_R_PEER_RESTART] = "peer restarted",
	[TB_CTRL_R_PEER_RELOGIN] = "peer logged in again",
	[TB_CTRL_R_PEER_LOGOUT] = "peer logged out",
	[TB_CTRL_R_LINK_FAILED] = "link failed",
	[TB_CTRL_R_LOGOUT] = "logout",
	[TB_CTRL_R_STOP] = "stopped",
	[TB_CTRL_R_VERSION] = "no common protocol version",
	[TB_CTRL_R_PARAMS] = "link parameters out of range",
};

const char *tb_ctrl_reason_name(u32 reason)
{
	if (reason <= TB_CTRL_R_PARAMS)
		return tb_ctrl_reason_names[reason];
	return "?";
}

void tb_ctrl_config_default(struct tb_ctrl_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->ver_min = TB_CTRL_VERSION_MIN;
	cfg->ver_max = TB_CTRL_VERSION_MAX;
	cfg->local.frame_max = TB_CTRL_FRAME_MAX;
	cfg->retry_min_ns = 100ull * 1000 * 1000;
	cfg->retry_max_ns = 5000ull * 1000 * 1000;
	cfg->logout_tries = 3;
}

int tb_ctrl_init(struct tb_ctrl *c, const struct tb_ctrl_config *cfg)
{
	memset(c, 0, sizeof(*c));
	if (!cfg->boot || !cfg->ver_min || cfg->ver_min > cfg->ver_max ||
	    !tb_ctrl_params_valid(&cfg->local) || !cfg->retry_min_ns ||
	    cfg->retry_max_ns < cfg->retry_min_ns || !cfg->logout_tries)
		return -EINVAL;
	c->cfg = *cfg;
	c->state = TB_CTRL_S_IDLE;
	c->backoff_ns = cfg->retry_min_ns;
	return 0;
}

int tb_ctrl_next_action(struct tb_ctrl *c, struct tb_ctrl_action *act)
{
	memset(act, 0, sizeof(*act));
	if (c->host_up &&
	    (c->state != TB_CTRL_S_UP || c->host_gen != c->link_gen)) {
		c->host_up = 0;
		act->type = TB_CTRL_ACT_DOWN;
		act->reason = c->down_reason;
		return 1;
	}
	if (c->refusal_due) {
		c->refusal_due = 0;
		*act = c->refusal;
		return 1;
	}
	if (c->logged_out_due) {
		c->logged_out_due = 0;
		act->type = TB_CTRL_ACT_LOGGED_OUT;
		act->reason = TB_CTRL_R_LOGOUT;
		return 1;
	}
	if (!c->host_up && c->state == TB_CTRL_S_UP) {
		c->host_up = 1;
		c->host_gen = c->link_gen;
		*act = c->up;
		return 1;
	}
	return 0;
}

/* The current link (if up) goes: the host hears why, if it holds it. */
static void tb_ctrl_link_gone(struct tb_ctrl *c, u32 reason)
{
	if (c->state != TB_CTRL_S_UP)
		return;
	if (c->host_up && c->host_gen == c->link_gen)
		c->down_reason = reason;
}

static u32 tb_ctrl_common_version(u32 amin, u32 amax, u32 bmin, u32 bmax)
{
	u32 hi = amax < bmax ? amax : bmax;
	u32 lo = amin > bmin ? amin : bmin;

	return hi >= lo ? hi : 0;
}

/* Mixes a (boot, session) pair into 64 bits (splitmix64's finaliser). */
static u64 tb_ctrl_mix(u64 boot, u32 session)
{
	u64 z = boot + (u64)session * 0x9e3779b97f4a7c15ull;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Our data link is gone or never was: a new session, not yet accepted. */
static void tb_ctrl_new_session(struct tb_ctrl *c)
{
	c->session++;
	if (!c->session)
		c->session = 1;
	c->acked = 0;
}

/* Take a link that is up down, with this reason, and start anew. */
static void tb_ctrl_down(struct tb_ctrl *c, u32 reason)
{
	if (c->state != TB_CTRL_S_UP)
		return;
	tb_ctrl_link_gone(c, reason);
	tb_ctrl_new_session(c);
	c->state = TB_CTRL_S_LOGIN;
}

/* Login now (a new peer session wants us), unless a request is out. */
static void tb_ctrl_send_soon(struct tb_ctrl *c, u64 now_ns)
{
	c->next_send_ns = now_ns;
	c->backoff_ns = c->cfg.retry_min_ns;
	c->tries = 0;
}

static void tb_ctrl_try_up(struct tb_ctrl *c)
{
	struct tb_ctrl_action *a = &c->up;

	if (c->state != TB_CTRL_S_LOGIN || !c->acked || !c->peer_known)
		return;
	if (c->acked_boot != c->peer_boot ||
	    c->acked_session != c->peer_session)
		return;
	memset(a, 0, sizeof(*a));
	a->type = TB_CTRL_ACT_UP;
	a->version = tb_ctrl_common_version(c->cfg.ver_min, c->cfg.ver_max,
					    c->peer_ver_min, c->peer_ver_max);
	a->caps = c->cfg.local.caps & c->peer.caps;
	a->peer = c->peer;
	a->identity = tb_ctrl_mix(c->cfg.boot, c->session) ^
		      tb_ctrl_mix(c->peer_boot, c->peer_session);
	if (!a->identity)
		a->identity = 1;
	a->peer_ver_min = c->peer_ver_min;
	a->peer_ver_max = c->peer_ver_max;
	c->version = a->version;
	c->identity = a->identity;
	c->state = TB_CTRL_S_UP;
	c->tries = 0;
	c->backoff_ns = c->cfg.retry_min_ns;
	c->stats.logins++;
	c->link_gen++;
}

/*
 * Where (boot, session) stands against the newest peer session seen:
 * -1 older (stale), 0 the same, 1 newer, another boot, or the first.
 */
static int tb_ctrl_cmp_seen(const struct tb_ctrl *c, u64 boot, u32 session)
{
	/*
	 * Boots have no order: another boot counts as newer. A message that
	 * outlives its sender's reboot costs one re-login; ranking boots
	 * instead could leave a fresh instance ignoring the live one for
	 * good.
	 */
	if (!c->seen || boot != c->seen_boot)
		return 1;
	if (session == c->seen_session)
		return 0;
	return (s32)(session - c->seen_session) > 0 ? 1 : -1;
}

static void tb_ctrl_see(struct tb_ctrl *c, u64 boot, u32 session)
{
	c->seen = 1;
	c->seen_boot = boot;
	c->seen_session = session;
	c->seen_closed = 0;
}

static int tb_ctrl_uuid_eq(const u32 *a, const u32 *b)
{
	return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3];
}

/* Header of a message from us; the target is what we know of the peer. */
static void tb_ctrl_fill(const struct tb_ctrl *c, struct tb_ctrl_msg *m,
			 u32 type)
{
	memset(m, 0, sizeof(*m));
	m->ver_min = c->cfg.ver_min;
	m->ver_max = c->cfg.ver_max;
	m->type = type;
	memcpy(m->sender_uuid, c->cfg.local_uuid, sizeof(m->sender_uuid));
	memcpy(m->target_uuid, c->cfg.peer_uuid, sizeof(m->target_uuid));
	m->sender_boot = c->cfg.boot;
	m->sender_session = c->session ? c->session : 1;
	if (c->seen) {
		m->target_boot = c->seen_boot;
		m->target_session = c->seen_session;
	}
}

/* Reports a refusal once per peer session (0, 0: an unparsable one). */
static void tb_ctrl_refuse(struct tb_ctrl *c, u32 reason, u32 by_peer,
			   u64 boot, u32 session, u32 ver_min, u32 ver_max)
{
	struct tb_ctrl_action *a = &c->refusal;

	c->peer_known = 0;
	c->acked = 0;
	if (c->state == TB_CTRL_S_LOGIN || c->state == TB_CTRL_S_WAIT)
		c->state = TB_CTRL_S_REFUSED;
	if (c->refused && ((c->refused_boot == boot &&
			    c->refused_session == session) || !boot))
		return;
	c->refused = 1;
	c->refused_boot = boot;
	c->refused_session = session;
	c->stats.refusals++;
	memset(a, 0, sizeof(*a));
	a->type = TB_CTRL_ACT_REFUSED;
	a->reason = reason;
	a->peer_ver_min = ver_min;
	a->peer_ver_max = ver_max;
	a->by_peer = by_peer;
	c->refusal_due = 1;
}

static u32 tb_ctrl_on_login(struct tb_ctrl *c, u64 now_ns,
			    const struct tb_ctrl_msg *m, int cmp)
{
	u64 boot = m->sender_boot;
	u32 session = m->sender_session;
	u32 reason = TB_CTRL_R_NONE;

	if (c->state == TB_CTRL_S_IDLE || c->state == TB_CTRL_S_LOGOUT)
		return TB_CTRL_ST_NOT_READY;
	if (c->peer_known && boot == c->peer_boot &&
	    session == c->peer_session) {
		c->stats.rx_dup++;
		tb_ctrl_try_up(c);
		return TB_CTRL_ST_OK;
	}
	if (cmp == 0 && c->seen_closed) {
		/* A late copy from a session that logged out. */
		c->stats.rx_stale++;
		return TB_CTRL_ST_NOT_READY;
	}
	if (cmp > 0)
		tb_ctrl_see(c, boot, session);

	/* A new peer session: a link that is up belongs to an old one. */
	if (c->state == TB_CTRL_S_UP)
		reason = (c->peer_known && boot != c->peer_boot) ?
			 TB_CTRL_R_PEER_RESTART : TB_CTRL_R_PEER_RELOGIN;

	if (!tb_ctrl_common_version(c->cfg.ver_min, c->cfg.ver_max,
				    m->ver_min, m->ver_max)) {
		tb_ctrl_down(c, reason);
		tb_ctrl_refuse(c, TB_CTRL_R_VERSION, 0, boot, session,
			       m->ver_min, m->ver_max);
		c->state = TB_CTRL_S_REFUSED;
		return TB_CTRL_ST_VERSION;
	}
	if (!tb_ctrl_params_valid(&m->params)) {
		tb_ctrl_down(c, reason);
		tb_ctrl_refuse(c, TB_CTRL_R_PARAMS, 0, boot, session,
			       m->ver_min, m->ver_max);
		c->state = TB_CTRL_S_REFUSED;
		return TB_CTRL_ST_PARAMS;
	}

	if (reason)
		tb_ctrl_down(c, reason);
	/* Accepted by an older peer session: that does not count now. */
	if (c->acked && (c->acked_boot != boot || c->acked_session != session))
		c->acked = 0;
	c->peer_known = 1;
	c->peer_boot = boot;
	c->peer_session = session;
	c->peer_ver_min = m->ver_min;
	c->peer_ver_max = m->ver_max;
	c->peer = m->params;
	c->refused = 0;
	c->state = TB_CTRL_S_LOGIN;
	if (!c->acked && !c->inflight)
		tb_ctrl_send_soon(c, now_ns);
	tb_ctrl_try_up(c);
	return TB_CTRL_ST_OK;
}

static u32 tb_ctrl_on_logout(struct tb_ctrl *c, u64 now_ns,
			     const struct tb_ctrl_msg *m, int cmp)
{
	u64 boot = m->sender_boot;
	u32 session = m->sender_session;

	/*
	 * Only the session we are logging in or linked with can log out: a
	 * repeated LOGOUT, or a late one from an earlier boot, changes
	 * nothing (not even what we know as the peer's newest session).
	 */
	if (!(c->peer_known && c->peer_boot == boot &&
	      c->peer_session == session) &&
	    !(c->acked && c->acked_boot == boot && c->acked_session == session))
		return TB_CTRL_ST_OK;
	if (cmp > 0)
		tb_ctrl_see(c, boot, session);
	c->seen_closed = 1;
	tb_ctrl_down(c, TB_CTRL_R_PEER_LOGOUT);
	c->peer_known = 0;
	c->acked = 0;
	c->refused = 0;
	if (c->state == TB_CTRL_S_LOGIN || c->state == TB_CTRL_S_REFUSED) {
		/* Quiet, but not silent: see TB_CTRL_S_WAIT. */
		c->state = TB_CTRL_S_WAIT;
		c->backoff_ns = c->cfg.retry_max_ns;
		if (!c->inflight)
			c->next_send_ns = now_ns + c->backoff_ns;
	}
	return TB_CTRL_ST_OK;
}

int tb_ctrl_handle_request(struct tb_ctrl *c, u64 now_ns, const u32 *req,
			   u32 ndw, u32 *resp, u32 *resp_ndw)
{
	struct tb_ctrl_msg m, r;
	u32 status;
	int ret, cmp;

	ret = tb_ctrl_decode(req, ndw, &m);
	if (ret == -EPROTONOSUPPORT && !tb_ctrl_type_is_response(m.type) &&
	    tb_ctrl_uuid_eq(m.sender_uuid, c->cfg.peer_uuid) &&
	    tb_ctrl_uuid_eq(m.target_uuid, c->cfg.local_uuid)) {
		/*
		 * A layout we cannot read: a peer too new for us. Refuse
		 * with our versions so that it can report it too.
		 */
		c->stats.rx_requests++;
		if (m.type == TB_CTRL_LOGIN) {
			if (c->state == TB_CTRL_S_UP) {
				tb_ctrl_down(c, TB_CTRL_R_PEER_RESTART);
				c->state = TB_CTRL_S_REFUSED;
			}
			tb_ctrl_refuse(c, TB_CTRL_R_VERSION, 0, 0, 0,
				       m.ver_min, m.ver_max);
		}
		tb_ctrl_fill(c, &r, m.type + 1);
		r.seq = m.seq;
		r.status = m.type == TB_CTRL_LOGIN ? TB_CTRL_ST_VERSION :
			   TB_CTRL_ST_OK;
		r.target_boot = 0;
		r.target_session = 0;
		r.params.caps = c->cfg.local.caps;
		*resp_ndw = tb_ctrl_encode(&r, resp);
		c->stats.tx_responses++;
		return 1;
	}
	if (ret || tb_ctrl_type_is_response(m.type) ||
	    !tb_ctrl_uuid_eq(m.sender_uuid, c->cfg.peer_uuid) ||
	    !tb_ctrl_uuid_eq(m.target_uuid, c->cfg.local_uuid)) {
		c->stats.rx_bad++;
		return 0;
	}
	c->stats.rx_requests++;
	cmp = tb_ctrl_cmp_seen(c, m.sender_boot, m.sender_session);
	if (cmp < 0) {
		/* Its sender moved on; nobody waits for an answer. */
		c->stats.rx_stale++;
		return 0;
	}
	if (m.type == TB_CTRL_LOGIN)
		status = tb_ctrl_on_login(c, now_ns, &m, cmp);
	else
		status = tb_ctrl_on_logout(c, now_ns, &m, cmp);

	tb_ctrl_fill(c, &r, m.type + 1);
	r.seq = m.seq;
	r.status = status;
	r.target_boot = m.sender_boot;
	r.target_session = m.sender_session;
	r.params.caps = c->cfg.local.caps;
	if (m.type == TB_CTRL_LOGIN && c->state == TB_CTRL_S_UP &&
	    c->peer_boot == m.sender_boot &&
	    c->peer_session == m.sender_session)
		r.resp_flags = TB_CTRL_RESP_UP;
	*resp_ndw = tb_ctrl_encode(&r, resp);
	c->stats.tx_responses++;
	return 1;
}

void tb_ctrl_start(struct tb_ctrl *c, u64 now_ns)
{
	if (c->state != TB_CTRL_S_IDLE)
		return;
	tb_ctrl_new_session(c);
	c->peer_known = 0;
	c->refused = 0;
	c->state = TB_CTRL_S_LOGIN;
	tb_ctrl_send_soon(c, now_ns);
}

int tb_ctrl_next_request(struct tb_ctrl *c, u64 now_ns, u32 *buf, u32 *ndw)
{
	struct tb_ctrl_msg m;
	u32 type;

	if (c->inflight)
		return 0;
	if (c->state == TB_CTRL_S_LOGIN || c->state == TB_CTRL_S_WAIT)
		type = TB_CTRL_LOGIN;
	else if (c->state == TB_CTRL_S_LOGOUT)
		type = TB_CTRL_LOGOUT;
	else
		return 0;
	if (now_ns < c->next_send_ns)
		return 0;
	tb_ctrl_fill(c, &m, type);
	m.seq = ++c->seq;
	if (type == TB_CTRL_LOGIN)
		m.params = c->cfg.local;
	*ndw = tb_ctrl_encode(&m, buf);
	c->inflight = 1;
	c->inflight_type = type;
	c->stats.tx_requests++;
	return 1;
}

u64 tb_ctrl_next_deadline(const struct tb_ctrl *c)
{
	if (c->inflight)
		return 0;
	if (c->state == TB_CTRL_S_LOGIN || c->state == TB_CTRL_S_WAIT ||
	    c->state == TB_CTRL_S_LOGOUT)
		return c->next_send_ns ? c->next_send_ns : 1;
	return 0;
}

static void tb_ctrl_logged_out(struct tb_ctrl *c)
{
	c->state = TB_CTRL_S_IDLE;
	c->logged_out_due = 1;
}

/* The next request after the current backoff, which doubles. */
static void tb_ctrl_backoff(struct tb_ctrl *c, u64 now_ns)
{
	c->next_send_ns = now_ns + c->backoff_ns;
	c->backoff_ns *= 2;
	if (c->backoff_ns > c->cfg.retry_max_ns)
		c->backoff_ns = c->cfg.retry_max_ns;
}

/* The request got no usable answer: try again later. */
static void tb_ctrl_lost(struct tb_ctrl *c, u64 now_ns, u32 type)
{
	c->stats.timeouts++;
	c->tries++;
	if (type == TB_CTRL_LOGOUT) {
		if (c->state != TB_CTRL_S_LOGOUT)
			return;
		if (c->tries >= c->cfg.logout_tries)
			tb_ctrl_logged_out(c);
		else
			c->next_send_ns = now_ns;
		return;
	}
	tb_ctrl_backoff(c, now_ns);
}

/*
 * Is resp the answer to the request in flight? A refusal from a peer
 * whose layout we cannot read is recognised by its frozen words.
 */
static int tb_ctrl_match(struct tb_ctrl *c, const u32 *resp, u32 ndw,
			 u32 type, struct tb_ctrl_msg *m)
{
	int ret = tb_ctrl_decode(resp, ndw, m);

	if (ret == -EPROTONOSUPPORT)
		return m->type == type + 1 && (s32)(c->seq - m->seq) >= 0 &&
		       type == TB_CTRL_LOGIN &&
		       m->status == TB_CTRL_ST_VERSION &&
		       tb_ctrl_uuid_eq(m->sender_uuid, c->cfg.peer_uuid) &&
		       tb_ctrl_uuid_eq(m->target_uuid, c->cfg.local_uuid);
	if (ret) {
		c->stats.rx_bad++;
		return 0;
	}
	/*
	 * The echo of our session, except from a peer that could not read
	 * our layout (it refuses, and knows nothing about us). Any request
	 * of this session will do, not only the last one: they all say the
	 * same, so a late answer to an earlier copy is as good (and the
	 * answer to this one, when it comes, finds nobody waiting).
	 */
	if (m->type != type + 1 || (s32)(c->seq - m->seq) < 0 ||
	    !tb_ctrl_uuid_eq(m->sender_uuid, c->cfg.peer_uuid) ||
	    !tb_ctrl_uuid_eq(m->target_uuid, c->cfg.local_uuid) ||
	    ((m->target_boot != c->cfg.boot ||
	      m->target_session != c->session) &&
	     (m->target_boot || m->status != TB_CTRL_ST_VERSION)) ||
	    tb_ctrl_cmp_seen(c, m->sender_boot, m->sender_session) < 0) {
		c->stats.rx_stale++;
		return 0;
	}
	return 1;
}

void tb_ctrl_request_done(struct tb_ctrl *c, u64 now_ns, const u32 *resp,
			  u32 ndw)
{
	struct tb_ctrl_msg m;
	u32 type = c->inflight_type;

	if (!c->inflight)
		return;
	c->inflight = 0;
	if (!resp || !tb_ctrl_match(c, resp, ndw, type, &m)) {
		tb_ctrl_lost(c, now_ns, type);
		return;
	}
	c->stats.rx_responses++;
	if (m.ver_min > TB_CTRL_LAYOUT_MAX) {
		/* Refused by a peer too new for us. */
		if (c->state == TB_CTRL_S_LOGIN)
			tb_ctrl_refuse(c, TB_CTRL_R_VERSION, 1, 0, 0,
				       m.ver_min, m.ver_max);
		return;
	}
	if (tb_ctrl_cmp_seen(c, m.sender_boot, m.sender_session) > 0)
		tb_ctrl_see(c, m.sender_boot, m.sender_session);

	if (type == TB_CTRL_LOGOUT) {
		if (c->state == TB_CTRL_S_LOGOUT)
			tb_ctrl_logged_out(c);
		return;
	}
	/*
	 * LOGIN_RESP: only while still logging in this session. An answer
	 * in WAIT means the peer is back: log in.
	 */
	if (c->state == TB_CTRL_S_WAIT && m.status == TB_CTRL_ST_OK)
		c->state = TB_CTRL_S_LOGIN;
	if (c->state != TB_CTRL_S_LOGIN) {
		if (c->state == TB_CTRL_S_WAIT)
			tb_ctrl_lost(c, now_ns, type);
		return;
	}
	switch (m.status) {
	case TB_CTRL_ST_OK:
		c->acked = 1;
		c->acked_boot = m.sender_boot;
		c->acked_session = m.sender_session;
		c->acked_caps = m.params.caps;
		c->tries = 0;
		/* Its LOGIN we hold is from an older session: wait for anew. */
		if (c->peer_known && (c->peer_boot != m.sender_boot ||
				      c->peer_session != m.sender_session))
			c->peer_known = 0;
		tb_ctrl_try_up(c);
		if (c->state != TB_CTRL_S_LOGIN)
			break;
		if (m.resp_flags & TB_CTRL_RESP_UP) {
			/*
			 * The peer is up with us on a LOGIN of its that we no
			 * longer hold: start a new session, which takes its
			 * link down and makes it log in again. After a backoff:
			 * a peer that says so to every LOGIN must not keep us
			 * sending.
			 */
			tb_ctrl_new_session(c);
			tb_ctrl_backoff(c, now_ns);
			break;
		}
		/*
		 * Still no LOGIN from that session: it normally follows at
		 * once, but in case the peer lost track of us, say it again
		 * now and then (a repeat is answered as a duplicate).
		 */
		tb_ctrl_backoff(c, now_ns);
		break;
	case TB_CTRL_ST_VERSION:
		tb_ctrl_refuse(c, TB_CTRL_R_VERSION, 1, m.sender_boot,
			       m.sender_session, m.ver_min, m.ver_max);
		break;
	case TB_CTRL_ST_PARAMS:
		tb_ctrl_refuse(c, TB_CTRL_R_PARAMS, 1, m.sender_boot,
			       m.sender_session, m.ver_min, m.ver_max);
		break;
	default:
		/* Not ready: as if lost. */
		c->stats.rx_responses--;
		tb_ctrl_lost(c, now_ns, type);
		break;
	}
}

void tb_ctrl_link_failed(struct tb_ctrl *c, u64 now_ns)
{
	if (c->state != TB_CTRL_S_UP)
		return;
	tb_ctrl_down(c, TB_CTRL_R_LINK_FAILED);
	/* Not at once: a link that keeps failing must not spin. */
	tb_ctrl_backoff(c, now_ns);
}

void tb_ctrl_logout(struct tb_ctrl *c, u64 now_ns)
{
	if (c->state == TB_CTRL_S_IDLE || c->state == TB_CTRL_S_LOGOUT)
		return;
	tb_ctrl_link_gone(c, TB_CTRL_R_LOGOUT);
	c->peer_known = 0;
	c->acked = 0;
	if (!c->seen) {
		/* Nobody ever answered: nobody to tell. */
		tb_ctrl_logged_out(c);
		return;
	}
	c->state = TB_CTRL_S_LOGOUT;
	c->tries = 0;
	c->next_send_ns = now_ns;
}

void tb_ctrl_stop(struct tb_ctrl *c)
{
	tb_ctrl_link_gone(c, TB_CTRL_R_STOP);
	c->state = TB_CTRL_S_IDLE;
	c->peer_known = 0;
	c->acked = 0;
	/* A request in flight stays so until the host reports its end. */
}
