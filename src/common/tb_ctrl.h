/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Control protocol: the per-peer login that precedes a Thunderbolt/USB4
 * data link, carried in XDomain messages. Portable: no kernel, no clock,
 * no allocation. Its host feeds it received messages, the completion of
 * its own requests and the time; it answers with messages to send and
 * with actions (bring a link up with these parameters, take it down,
 * report a refusal).
 *
 * The transport it is built for has these properties, and the protocol
 * is shaped by them:
 * - a message is at most 252 bytes including the 28-byte XDomain header,
 *   and is carried as u32 words (each is byte-swapped on the way), so
 *   every field here is a u32 and a message is at most TB_CTRL_MSG_MAX_DW
 *   words;
 * - a request gets a response, but responses are matched to requests by
 *   route and protocol UUID only: a late response to an earlier request
 *   is taken for the current one. So only one request per peer is ever in
 *   flight, every response echoes the request's sequence number and the
 *   requester's session, and a response that does not match is ignored
 *   (the request counts as lost);
 * - messages can be lost (both requests and responses), duplicated by
 *   retries, and arrive late.
 *
 * Identity. Each side has a boot nonce (random, per instance: module load
 * or peer probe) and a session number (from 1, renewed every time its
 * data link goes down and it logs in again). Every message carries the
 * sender's (boot, session) and what the sender knows of the target's. A
 * message from the peer's current boot with an older session is stale and
 * ignored; a newer session or another boot means the peer logged in anew
 * (restarted, or lost its link): a link that is up is taken down first.
 * Boots have no order, so a message that outlives a reboot of its sender
 * looks like one more restart; the cost is one extra re-login, which
 * converges. (On Thunderbolt such a message would have to be delayed by
 * a module reload; the peer's service, and with it our instance, is
 * normally re-created by then anyway.)
 *
 * Login (symmetric). Each side sends LOGIN requests, with exponential
 * backoff, until the peer accepts one (and, at the same backoff, until
 * the peer's own LOGIN arrives: a peer that lost track of us hears of us
 * again); each side accepts the peer's LOGIN. A LOGIN carries the
 * protocol versions the sender speaks, its capabilities, its ring sizes
 * and initial credits and the HopID of its transmit path (the receiver
 * allocates it as its input HopID). The link comes up once our LOGIN was
 * accepted by the same peer session whose LOGIN we accepted (a response
 * to any LOGIN of our current session counts). Versions: the highest
 * both speak; if there is none the LOGIN is refused with
 * TB_CTRL_ST_VERSION and both hosts report it (TB_CTRL_ACT_REFUSED
 * carries both ranges) and stop sending until the peer logs in anew.
 *
 * Logout. On unload a side sends LOGOUT (a few tries) and takes its link
 * down; the peer takes its link down and waits for a new LOGIN, sending
 * one of its own only every retry_max_ns (a LOGOUT can be a late copy
 * from a previous boot of the peer, and a peer that is in fact still up
 * must hear of us). Unplug and suspend stop without messages
 * (tb_ctrl_stop()).
 *
 * Wire layout (u32 words). Words 0-15 keep their meaning in every
 * version, so that any two versions can at least refuse each other:
 *
 *    0 magic TB_CTRL_MAGIC     1 ver_min    2 ver_max     3 type
 *    4 ndw (words in the message)           5 seq         6 status
 *    7 flags (0 in versions 1 to 3)
 *    8-11  sender UUID         12-15 target UUID (host UUIDs, each as
 *          four little-endian words of its 16 bytes)
 *   16-17 sender boot (lo, hi) 18 sender session
 *   19-20 target boot (lo, hi) 21 target session (0: unknown)
 *   LOGIN: 22 caps 23 rx_slots 24 tx_slots 25 frame_max 26 credits
 *          27 hopid
 *   LOGIN_RESP: 22 caps 23 resp_flags (TB_CTRL_RESP_*)
 *   LOGOUT, LOGOUT_RESP: header only
 *
 * A sender whose ver_min is above TB_CTRL_LAYOUT_MAX may use another
 * layout after word 15; a sender whose ver_max is above it may append
 * words, which are ignored.
 *
 * Calls on one struct tb_ctrl must be serialised by the host.
 */
#ifndef TB_CTRL_H
#define TB_CTRL_H

#include "tb_compat.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TB_CTRL_MAGIC 0x74624331u	/* "tbC1" */
/*
 * Protocol versions this build speaks (a test build of the kernel module
 * defines others, to see two versions refuse each other). A version names
 * the data link's frames too, so hosts whose frames differ refuse each
 * other at login: 2 carries wire version 4 (context secrets, 64-bit keys,
 * receiver not ready), 3 wire version 5 (selective acks), 4 wire version
 * 6 (delayed acks), 5 wire version 7 (messages into posted receives), 6
 * wire version 8 (datagrams), 7 wire version 9 (the engine's ack in the
 * link's ACK). The message layout is the same in all.
 */
#ifndef TB_CTRL_VERSION_MIN
#define TB_CTRL_VERSION_MIN 7u
#define TB_CTRL_VERSION_MAX 7u
#endif
/* Highest version whose message layout this code can parse. */
#define TB_CTRL_LAYOUT_MAX 7u

/* (252 - 28) / 4: what fits after the XDomain header and protocol UUID. */
#define TB_CTRL_MSG_MAX_DW 56u
#define TB_CTRL_FIXED_DW 16u	/* words 0-15, frozen */
#define TB_CTRL_HDR_DW 22u
#define TB_CTRL_LOGIN_DW (TB_CTRL_HDR_DW + 6u)
#define TB_CTRL_LOGIN_RESP_DW (TB_CTRL_HDR_DW + 2u)

/* Limits a LOGIN's parameters must respect. */
#define TB_CTRL_SLOTS_MIN 2u
#define TB_CTRL_SLOTS_MAX 4096u
#define TB_CTRL_FRAME_MAX 4096u	/* one ring descriptor */
#define TB_CTRL_HOPID_MIN 1u
#define TB_CTRL_HOPID_MAX 2047u	/* 11-bit HopIDs */

enum tb_ctrl_type {
	TB_CTRL_LOGIN = 1,
	TB_CTRL_LOGIN_RESP = 2,
	TB_CTRL_LOGOUT = 3,
	TB_CTRL_LOGOUT_RESP = 4,
};

/* Status of a response. */
enum tb_ctrl_status {
	TB_CTRL_ST_OK = 0,
	TB_CTRL_ST_VERSION = 1,		/* no protocol version in common */
	TB_CTRL_ST_PARAMS = 2,		/* parameters out of range */
	TB_CTRL_ST_NOT_READY = 3,	/* not started, or going away */
	TB_CTRL_ST_MAX = TB_CTRL_ST_NOT_READY,
};

/* Capabilities (LOGIN and LOGIN_RESP). Unknown bits are ignored. */
#define TB_CTRL_CAP_E2E 0x1u	/* wants end-to-end flow control */

/*
 * LOGIN_RESP flags. UP: the responder's link with the requester's
 * session is up. A requester that does not hold the responder's LOGIN
 * then (a late message made it drop it) logs in with a new session, which
 * makes the responder log in anew too.
 */
#define TB_CTRL_RESP_UP 0x1u
#define TB_CTRL_RESP_ALL TB_CTRL_RESP_UP

/* What one side offers for the data link. */
struct tb_ctrl_params {
	u32 caps;
	u32 rx_slots;		/* receive descriptors posted */
	u32 tx_slots;		/* transmit descriptors */
	u32 frame_max;		/* TB_CTRL_FRAME_MAX */
	u32 credits;		/* initial credits granted, <= rx_slots */
	u32 hopid;		/* HopID of the sender's transmit path */
};

/* A decoded message. */
struct tb_ctrl_msg {
	u32 ver_min;
	u32 ver_max;
	u32 type;
	u32 ndw;
	u32 seq;
	u32 status;
	u32 sender_uuid[4];
	u32 target_uuid[4];
	u64 sender_boot;
	u32 sender_session;
	u64 target_boot;
	u32 target_session;
	struct tb_ctrl_params params;	/* LOGIN; LOGIN_RESP: caps only */
	u32 resp_flags;			/* LOGIN_RESP */
};

/*
 * Checks and decodes a message of ndw words. Returns 0 for a valid
 * message; -EPROTONOSUPPORT when only words 0-15 could be decoded (the
 * sender's layout is newer than TB_CTRL_LAYOUT_MAX: refuse it); -EINVAL
 * when it is malformed (drop it).
 */
int tb_ctrl_decode(const u32 *buf, u32 ndw, struct tb_ctrl_msg *msg);
/* Encodes msg (ndw is set from its type); returns the words written. */
u32 tb_ctrl_encode(struct tb_ctrl_msg *msg, u32 *buf);
/* Is it a response type? Only the frozen words are looked at. */
int tb_ctrl_is_response(const u32 *buf, u32 ndw);

enum tb_ctrl_state {
	TB_CTRL_S_IDLE = 0,	/* not started, stopped, or logged out */
	TB_CTRL_S_LOGIN,	/* logging in */
	TB_CTRL_S_UP,		/* link up */
	TB_CTRL_S_WAIT,		/* the peer logged out: LOGIN only slowly */
	TB_CTRL_S_REFUSED,	/* incompatible: wait for a new peer LOGIN */
	TB_CTRL_S_LOGOUT,	/* sending LOGOUT */
};

const char *tb_ctrl_state_name(u32 state);

enum tb_ctrl_action_type {
	TB_CTRL_ACT_UP = 1,	/* bring the data link up (params below) */
	TB_CTRL_ACT_DOWN,	/* take it down; endpoints fail */
	TB_CTRL_ACT_REFUSED,	/* the peer is incompatible (report it) */
	TB_CTRL_ACT_LOGGED_OUT,	/* logout finished (or gave up) */
};

/* Why a link goes down, or why a peer was refused. */
enum tb_ctrl_reason {
	TB_CTRL_R_NONE = 0,
	TB_CTRL_R_PEER_RESTART,		/* the peer's boot changed */
	TB_CTRL_R_PEER_RELOGIN,		/* the peer logged in anew */
	TB_CTRL_R_PEER_LOGOUT,		/* the peer logged out */
	TB_CTRL_R_LINK_FAILED,		/* our data link failed */
	TB_CTRL_R_LOGOUT,		/* we log out */
	TB_CTRL_R_STOP,			/* stopped (unplug, suspend) */
	TB_CTRL_R_VERSION,		/* no common version */
	TB_CTRL_R_PARAMS,		/* parameters out of range */
};

const char *tb_ctrl_reason_name(u32 reason);

struct tb_ctrl_action {
	u32 type;		/* enum tb_ctrl_action_type */
	u32 reason;		/* enum tb_ctrl_reason */
	/* UP: */
	u32 version;		/* negotiated */
	u32 caps;		/* both sides' caps */
	struct tb_ctrl_params peer;
	u64 identity;		/* the same value at both ends */
	/* REFUSED (and UP): */
	u32 peer_ver_min;
	u32 peer_ver_max;
	/* REFUSED: whether the peer refused us (1) or we refused it (0). */
	u32 by_peer;
};

struct tb_ctrl_config {
	u32 local_uuid[4];
	u32 peer_uuid[4];
	u64 boot;		/* random, non-zero, new for each instance */
	u32 ver_min;		/* TB_CTRL_VERSION_MIN */
	u32 ver_max;		/* TB_CTRL_VERSION_MAX */
	struct tb_ctrl_params local;
	u64 retry_min_ns;	/* first retry delay after a lost request */
	u64 retry_max_ns;	/* cap of the exponential backoff */
	u32 logout_tries;	/* LOGOUT requests before giving up */
};

/* Defaults: versions, 100 ms .. 5 s backoff, 3 logout tries. */
void tb_ctrl_config_default(struct tb_ctrl_config *cfg);

struct tb_ctrl_stats {
	u64 tx_requests;
	u64 tx_responses;
	u64 rx_requests;
	u64 rx_responses;	/* accepted */
	u64 timeouts;		/* requests without a (matching) response */
	u64 rx_bad;		/* malformed, or not for us */
	u64 rx_stale;		/* old session, or unmatched response */
	u64 rx_dup;		/* repeated LOGIN of the current session */
	u64 logins;		/* times the link came up */
	u64 refusals;
};

struct tb_ctrl {
	struct tb_ctrl_config cfg;
	u32 state;		/* enum tb_ctrl_state */
	u32 session;		/* ours, from 1 */

	/*
	 * The newest peer (boot, session) seen in a valid message, and
	 * whether that session logged out (a late LOGIN of it is stale).
	 */
	int seen;
	u64 seen_boot;
	u32 seen_session;
	int seen_closed;

	/* The peer's LOGIN we accepted (its session and parameters). */
	int peer_known;
	u64 peer_boot;
	u32 peer_session;
	u32 peer_ver_min;
	u32 peer_ver_max;
	struct tb_ctrl_params peer;

	/* Our current LOGIN was accepted by this peer session. */
	int acked;
	u64 acked_boot;
	u32 acked_session;
	u32 acked_caps;

	/* A refusal was reported for this peer session. */
	int refused;
	u64 refused_boot;
	u32 refused_session;

	/* The one request in flight. */
	int inflight;
	u32 inflight_type;
	u32 seq;		/* of the last request sent */
	u32 tries;		/* lost requests in a row */
	u64 next_send_ns;	/* 0: now */
	u64 backoff_ns;

	/* Negotiated when up. */
	u32 version;
	u64 identity;

	/*
	 * What the host is owed, kept as state rather than queued, so that
	 * no number of peer messages between two tb_ctrl_next_action() calls
	 * can lose one or repeat one: a DOWN for the link the host holds
	 * once it is no longer the current one, the newest refusal, a
	 * finished logout, then an UP for the current link.
	 */
	u32 link_gen;		/* counts the UPs decided */
	struct tb_ctrl_action up;	/* the current link's, while S_UP */
	int host_up;		/* the host holds an UP without its DOWN */
	u32 host_gen;		/* link_gen of the UP the host holds */
	u32 down_reason;	/* why that link is no longer current */
	int refusal_due;
	struct tb_ctrl_action refusal;
	int logged_out_due;

	struct tb_ctrl_stats stats;
};

/* -EINVAL if cfg is unusable (boot 0, versions, local parameters). */
int tb_ctrl_init(struct tb_ctrl *c, const struct tb_ctrl_config *cfg);

/* Are these parameters acceptable in a LOGIN? */
int tb_ctrl_params_valid(const struct tb_ctrl_params *p);

/* Starts logging in (from IDLE): a new session, LOGIN at once. */
void tb_ctrl_start(struct tb_ctrl *c, u64 now_ns);

/*
 * The next request to send, if one is due and none is in flight: writes
 * it to buf (TB_CTRL_MSG_MAX_DW words), sets *ndw and returns 1; returns
 * 0 otherwise. The host must then report its end with
 * tb_ctrl_request_done(), exactly once.
 */
int tb_ctrl_next_request(struct tb_ctrl *c, u64 now_ns, u32 *buf, u32 *ndw);

/*
 * The request in flight ended: resp/ndw is the response, or NULL when
 * none came (timeout, send error).
 */
void tb_ctrl_request_done(struct tb_ctrl *c, u64 now_ns, const u32 *resp,
			  u32 ndw);

/*
 * A request from the peer. Returns 1 and writes the response to send to
 * resp (TB_CTRL_MSG_MAX_DW words, *resp_ndw set), or 0 when the request
 * is dropped without a response (malformed, not for us, stale, or a
 * response type).
 */
int tb_ctrl_handle_request(struct tb_ctrl *c, u64 now_ns, const u32 *req,
			   u32 ndw, u32 *resp, u32 *resp_ndw);

/* Our data link went down by itself (or could not be brought up). */
void tb_ctrl_link_failed(struct tb_ctrl *c, u64 now_ns);

/* Logs out: link down, LOGOUT to the peer, then LOGGED_OUT. */
void tb_ctrl_logout(struct tb_ctrl *c, u64 now_ns);

/* Stops at once, without messages (unplug, suspend): link down, IDLE. */
void tb_ctrl_stop(struct tb_ctrl *c);

/*
 * The next thing the host must do, in the order DOWN, REFUSED,
 * LOGGED_OUT, UP; returns 1, or 0 when there is none. An UP is never
 * handed out while the host holds one without its DOWN.
 */
int tb_ctrl_next_action(struct tb_ctrl *c, struct tb_ctrl_action *act);

/*
 * When tb_ctrl_next_request() will have something to send: 0 if nothing
 * is scheduled (or a request is in flight), else a time in ns.
 */
u64 tb_ctrl_next_deadline(const struct tb_ctrl *c);

#ifdef __cplusplus
}
#endif

#endif /* TB_CTRL_H */
