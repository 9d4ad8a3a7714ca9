// SPDX-License-Identifier: GPL-2.0
/*
 * XDomain messages over the simulated control channel, as Linux 6.1's core
 * handles them: at most 252 bytes in whole dwords; the receiving router
 * puts the receiver's route to the sender in the header; requests go, in
 * order, to the protocol handlers registered for the UUID in the header
 * (process context, one packet at a time per host) until one returns 1;
 * a response completes the first waiting request to the same route with
 * the same protocol UUID (nothing else is matched, so a second request in
 * flight to one peer can take the first one's response), and the waiting
 * request gets response_size bytes of the control channel's packet
 * buffer, whatever the response's length.
 */
#include <linux/completion.h>
#include <linux/module.h>
#include <linux/slab.h>

#include "tbsim.h"

/* Words of the XDomain header: route (2), length and sequence, UUID (4). */
#define TBSIM_XD_HDR_DW 7
#define TBSIM_XD_ROUTE_HI_CM BIT(31)

struct tbsim_packet {
	struct work_struct work;
	struct tbsim_host *to;
	struct tbsim_cable *cable;
	enum tb_cfg_pkg_type type;
	size_t size;
	u32 buf[TBSIM_MSG_BUF / 4];	/* zero beyond size */
};

struct tbsim_request {
	struct list_head list;
	struct tbsim_xd *sxd;
	const u32 *req;
	void *resp;
	size_t resp_size;
	enum tb_cfg_pkg_type resp_type;
	struct completion done;
};

static DEFINE_MUTEX(tbsim_handlers_lock);
static LIST_HEAD(tbsim_handlers);

int tb_register_protocol_handler(struct tb_protocol_handler *handler)
{
	if (!handler->uuid || !handler->callback)
		return -EINVAL;
	mutex_lock(&tbsim_handlers_lock);
	list_add_tail(&handler->list, &tbsim_handlers);
	mutex_unlock(&tbsim_handlers_lock);
	return 0;
}
EXPORT_SYMBOL_GPL(tb_register_protocol_handler);

void tb_unregister_protocol_handler(struct tb_protocol_handler *handler)
{
	mutex_lock(&tbsim_handlers_lock);
	list_del_init(&handler->list);
	mutex_unlock(&tbsim_handlers_lock);
}
EXPORT_SYMBOL_GPL(tb_unregister_protocol_handler);

static void tbsim_handle_request(struct tbsim_packet *p)
{
	struct tb_protocol_handler *handler, *next;
	int ret;

	mutex_lock(&tbsim_handlers_lock);
	list_for_each_entry_safe(handler, next, &tbsim_handlers, list) {
		if (memcmp(&p->buf[3], handler->uuid, sizeof(uuid_t)))
			continue;
		/*
		 * As the Thunderbolt core does: the handler runs without the
		 * lock, so unregistering it does not wait for this call.
		 */
		mutex_unlock(&tbsim_handlers_lock);
		ret = handler->callback(p->buf, p->size, handler->data);
		mutex_lock(&tbsim_handlers_lock);
		if (ret)
			break;
	}
	mutex_unlock(&tbsim_handlers_lock);
}

static void tbsim_handle_response(struct tbsim_packet *p)
{
	struct tbsim_host *h = p->to;
	struct tbsim_request *r;
	unsigned long flags;

	spin_lock_irqsave(&h->req_lock, flags);
	list_for_each_entry(r, &h->requests, list) {
		if (r->resp_type != p->type || r->sxd->cable != p->cable ||
		    (p->buf[0] & ~TBSIM_XD_ROUTE_HI_CM) != r->req[0] ||
		    p->buf[1] != r->req[1] ||
		    memcmp(&p->buf[3], &r->req[3], sizeof(uuid_t)))
			continue;
		memcpy(r->resp, p->buf, min_t(size_t, r->resp_size,
					      sizeof(p->buf)));
		list_del_init(&r->list);
		complete(&r->done);
		break;
	}
	spin_unlock_irqrestore(&h->req_lock, flags);
}

static void tbsim_packet_work(struct work_struct *work)
{
	struct tbsim_packet *p = container_of(work, struct tbsim_packet, work);

	if (p->type == TB_CFG_PKG_XDOMAIN_REQ)
		tbsim_handle_request(p);
	else
		tbsim_handle_response(p);
	kfree(p);
}

/*
 * A packet for host to, from its end of cable c, into its control
 * channel: the receiving router writes its route back to the sender.
 */
void tbsim_ctl_arrive(struct tbsim_host *to, struct tbsim_cable *c,
		      enum tb_cfg_pkg_type type, const void *buf, size_t size)
{
	struct tbsim_xd *end = c->end[to->index];
	struct tbsim_packet *p;

	if (!end || size % 4 || size < 4 * TBSIM_XD_HDR_DW ||
	    size > TBSIM_MSG_MAX ||
	    (type != TB_CFG_PKG_XDOMAIN_REQ && type != TB_CFG_PKG_XDOMAIN_RESP))
		return;
	p = kzalloc(sizeof(*p), GFP_KERNEL);
	if (!p)
		return;		/* lost, as a packet the router drops */
	memcpy(p->buf, buf, size);
	p->size = size;
	p->type = type;
	p->cable = c;
	p->to = to;
	p->buf[0] = upper_32_bits(end->xd.route) |
		(type == TB_CFG_PKG_XDOMAIN_RESP ? TBSIM_XD_ROUTE_HI_CM : 0);
	p->buf[1] = lower_32_bits(end->xd.route);
	INIT_WORK(&p->work, tbsim_packet_work);
	queue_work(to->ctl_wq, &p->work);
}

/* Over the cable to the peer's control channel. */
static int tbsim_send(struct tb_xdomain *xd, const void *buf, size_t size,
		      enum tb_cfg_pkg_type type)
{
	struct tbsim_xd *sxd = to_sxd(xd);
	struct tbsim_cable *c = sxd->cable;
	int peer = !sxd->host->index, ret = 0;

	if (size % 4 || size < 4 * TBSIM_XD_HDR_DW || size > TBSIM_MSG_MAX)
		return -EINVAL;
	mutex_lock(&tbsim.lock);
	if (xd->is_unplugged || c->end[sxd->host->index] != sxd)
		ret = -ENOTCONN;
	else if (tbsim.pair < 0)
		tbsim_ctl_arrive(tbsim.host[peer], c, type, buf, size);
	else if (!tbsim_shm_send_ctl(type, buf, size))
		ret = -ENOBUFS;
	mutex_unlock(&tbsim.lock);
	return ret;
}

int tb_xdomain_response(struct tb_xdomain *xd, const void *response,
			size_t size, enum tb_cfg_pkg_type type)
{
	return tbsim_send(xd, response, size, type);
}
EXPORT_SYMBOL_GPL(tb_xdomain_response);

int tb_xdomain_request(struct tb_xdomain *xd, const void *request,
		       size_t request_size, enum tb_cfg_pkg_type request_type,
		       void *response, size_t response_size,
		       enum tb_cfg_pkg_type response_type,
		       unsigned int timeout_msec)
{
	struct tbsim_xd *sxd = to_sxd(xd);
	struct tbsim_host *h = sxd->host;
	struct tbsim_request r = {
		.sxd = sxd,
		.req = request,
		.resp = response,
		.resp_size = response_size,
		.resp_type = response_type,
	};
	unsigned long flags;
	int ret;

	if (request_size < 4 * TBSIM_XD_HDR_DW)
		return -EINVAL;
	init_completion(&r.done);
	spin_lock_irqsave(&h->req_lock, flags);
	list_add_tail(&r.list, &h->requests);
	spin_unlock_irqrestore(&h->req_lock, flags);
	ret = tbsim_send(xd, request, request_size, request_type);
	if (!ret && !wait_for_completion_timeout(&r.done,
						 msecs_to_jiffies(timeout_msec)))
		ret = -ETIMEDOUT;
	spin_lock_irqsave(&h->req_lock, flags);
	list_del(&r.list);
	spin_unlock_irqrestore(&h->req_lock, flags);
	return ret;
}
EXPORT_SYMBOL_GPL(tb_xdomain_request);
