// SPDX-License-Identifier: GPL-2.0
/*
 * XDomain links: /sys/class/tbrdma/tbN (see tbrdma_xd.h).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/sysfs.h>

#include "tbrdma_xd.h"

const char *const tbrdma_xd_state_names[] = {
	[TBRDMA_LINK_DOWN] = "down",
	[TBRDMA_LINK_CONNECTING] = "connecting",
	[TBRDMA_LINK_UP] = "up",
};

u32 tbrdma_xd_state(const struct tbrdma_xd_link *xl)
{
	return xl->attached ? xl->link.state : TBRDMA_LINK_DOWN;
}

/* Lanes that carry what this host sends. */
static u32 tbrdma_xd_tx_lanes(const struct tb_xdomain *xd)
{
#ifdef TBRDMA_LINK_WIDTH_ENUM
	/* Since 6.6 a bit set, with asymmetric (3 + 1 lane) USB4 v2 links. */
	switch (xd->link_width) {
	case TB_LINK_WIDTH_DUAL:
		return 2;
	case TB_LINK_WIDTH_ASYM_TX:
		return 3;
	default:
		return 1;
	}
#else
	return max(xd->link_width, 1u);
#endif
}

/* What this end transmits: link_speed is Gb/s per lane. */
u64 tbrdma_xd_speed_mbps(const struct tbrdma_xd_link *xl)
{
	return (u64)xl->xd->link_speed * tbrdma_xd_tx_lanes(xl->xd) * 1000;
}

/* This end of the cable: the host's UUID, which the peer's differs from. */
u64 tbrdma_xd_end_id(const struct tbrdma_xd_link *xl)
{
	u64 half[2];

	memcpy(half, &xl->local_uuid, sizeof(half));
	return (half[0] ^ half[1]) ?: 1;
}

u32 tbrdma_xd_numa(const struct tbrdma_xd_link *xl)
{
	int node = dev_to_node(xl->dma_dev);

	return node < 0 ? ~0u : node;
}

/*
 * Every user may read these: a read holds tbrdma.lock (the link stays
 * attached or not) and at most this link's lock, so no other link waits
 * for it.
 */
static ssize_t index_show(struct device *dev, struct device_attribute *attr,
			  char *buf)
{
	return sysfs_emit(buf, "%u\n", tbrdma_xd_index(to_xl(dev)));
}
static DEVICE_ATTR_RO(index);

static ssize_t state_show(struct device *dev, struct device_attribute *attr,
			  char *buf)
{
	struct tbrdma_xd_link *xl = to_xl(dev);
	u32 state = TBRDMA_LINK_DOWN;

	mutex_lock(&tbrdma.lock);
	if (xl->attached) {
		tbrdma_link_lock(xl->link.index);
		state = tbrdma_xd_state(xl);
		tbrdma_link_unlock(xl->link.index);
	}
	mutex_unlock(&tbrdma.lock);
	return sysfs_emit(buf, "%s\n", tbrdma_xd_state_names[state]);
}
static DEVICE_ATTR_RO(state);

static ssize_t login_show(struct device *dev, struct device_attribute *attr,
			  char *buf)
{
	struct tbrdma_xd_link *xl = to_xl(dev);
	u32 state, reason;

	mutex_lock(&xl->ctrl_lock);
	state = xl->ctrl.state;
	reason = xl->refused_reason;
	mutex_unlock(&xl->ctrl_lock);
	if (state == TB_CTRL_S_REFUSED)
		return sysfs_emit(buf, "refused: %s\n",
				  tb_ctrl_reason_name(reason));
	return sysfs_emit(buf, "%s\n", tb_ctrl_state_name(state));
}
static DEVICE_ATTR_RO(login);

static ssize_t identity_show(struct device *dev,
			     struct device_attribute *attr, char *buf)
{
	u64 v;

	mutex_lock(&tbrdma.lock);
	v = to_xl(dev)->identity;
	mutex_unlock(&tbrdma.lock);
	return sysfs_emit(buf, "0x%016llx\n", v);
}
static DEVICE_ATTR_RO(identity);

static ssize_t speed_mbps_show(struct device *dev,
			       struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%llu\n", tbrdma_xd_speed_mbps(to_xl(dev)));
}
static DEVICE_ATTR_RO(speed_mbps);

static ssize_t latency_ns_show(struct device *dev,
			       struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%u\n", TBRDMA_XD_LATENCY_NS);
}
static DEVICE_ATTR_RO(latency_ns);

static ssize_t link_speed_show(struct device *dev,
			       struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%u Gb/s\n", to_xl(dev)->xd->link_speed);
}
static DEVICE_ATTR_RO(link_speed);

static ssize_t link_width_show(struct device *dev,
			       struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%u\n", to_xl(dev)->xd->link_width);
}
static DEVICE_ATTR_RO(link_width);

/*
 * The peer's name for a log line. The core replaces it under xd->lock when
 * the peer announces new properties, at a time the peer chooses.
 */
const char *tbrdma_xd_peer_name(struct tb_xdomain *xd, char *buf, size_t size)
{
	mutex_lock(&xd->lock);
	strscpy(buf, xd->device_name ?: "?", size);
	mutex_unlock(&xd->lock);
	return buf;
}

static ssize_t peer_name_show(struct device *dev,
			      struct device_attribute *attr, char *buf)
{
	struct tb_xdomain *xd = to_xl(dev)->xd;
	ssize_t ret;

	mutex_lock(&xd->lock);
	ret = sysfs_emit(buf, "%s\n", xd->device_name ?: "");
	mutex_unlock(&xd->lock);
	return ret;
}
static DEVICE_ATTR_RO(peer_name);

static ssize_t peer_vendor_show(struct device *dev,
				struct device_attribute *attr, char *buf)
{
	struct tb_xdomain *xd = to_xl(dev)->xd;
	ssize_t ret;

	mutex_lock(&xd->lock);
	ret = sysfs_emit(buf, "%s\n", xd->vendor_name ?: "");
	mutex_unlock(&xd->lock);
	return ret;
}
static DEVICE_ATTR_RO(peer_vendor);

static ssize_t peer_uuid_show(struct device *dev,
			      struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%pUb\n", &to_xl(dev)->remote_uuid);
}
static DEVICE_ATTR_RO(peer_uuid);

static ssize_t local_uuid_show(struct device *dev,
			       struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%pUb\n", &to_xl(dev)->local_uuid);
}
static DEVICE_ATTR_RO(local_uuid);

static ssize_t route_show(struct device *dev, struct device_attribute *attr,
			  char *buf)
{
	return sysfs_emit(buf, "0x%llx\n", to_xl(dev)->route);
}
static DEVICE_ATTR_RO(route);

static ssize_t xdomain_show(struct device *dev, struct device_attribute *attr,
			    char *buf)
{
	return sysfs_emit(buf, "%s\n", dev_name(&to_xl(dev)->xd->dev));
}
static DEVICE_ATTR_RO(xdomain);

static ssize_t pci_addr_show(struct device *dev, struct device_attribute *attr,
			     char *buf)
{
	return sysfs_emit(buf, "%s\n", dev_name(to_xl(dev)->dma_dev));
}
static DEVICE_ATTR_RO(pci_addr);

static ssize_t numa_node_show(struct device *dev,
			      struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%d\n", dev_to_node(to_xl(dev)->dma_dev));
}
static DEVICE_ATTR_RO(numa_node);

/* The CPUs the link's poll thread may run on; empty when it has none. */
static ssize_t poll_cpus_show(struct device *dev,
			      struct device_attribute *attr, char *buf)
{
	struct task_struct *t;
	ssize_t ret;

	mutex_lock(&tbrdma.lock);	/* keeps the thread */
	t = to_xl(dev)->poller.task;
	ret = t ? sysfs_emit(buf, "%*pbl\n", cpumask_pr_args(t->cpus_ptr)) :
		  sysfs_emit(buf, "\n");
	mutex_unlock(&tbrdma.lock);
	return ret;
}
static DEVICE_ATTR_RO(poll_cpus);

static ssize_t protocol_show(struct device *dev, struct device_attribute *attr,
			     char *buf)
{
	u32 v;

	mutex_lock(&tbrdma.lock);
	v = to_xl(dev)->attached ? to_xl(dev)->version : 0;
	mutex_unlock(&tbrdma.lock);
	return sysfs_emit(buf, "%u\n", v);
}
static DEVICE_ATTR_RO(protocol);

/* "out_hopid in_hopid tx_ring rx_ring tx_slots rx_slots e2e" */
static ssize_t rings_show(struct device *dev, struct device_attribute *attr,
			  char *buf)
{
	struct tbrdma_xd_link *xl = to_xl(dev);
	ssize_t ret;

	mutex_lock(&tbrdma.lock);
	if (xl->rings_live)
		ret = sysfs_emit(buf, "%d %d %d %d %u %u %d\n", xl->out_hopid,
				 xl->in_hopid, xl->tx_ring->hop,
				 xl->rx_ring->hop, xl->tx_slots, xl->rx_slots,
				 xl->e2e);
	else
		ret = sysfs_emit(buf, "%d - - - %u %u -\n", xl->out_hopid,
				 xl->tx_slots, xl->rx_slots);
	mutex_unlock(&tbrdma.lock);
	return ret;
}
static DEVICE_ATTR_RO(rings);

static struct attribute *tbrdma_xd_attrs[] = {
	&dev_attr_index.attr,
	&dev_attr_state.attr,
	&dev_attr_login.attr,
	&dev_attr_identity.attr,
	&dev_attr_speed_mbps.attr,
	&dev_attr_latency_ns.attr,
	&dev_attr_link_speed.attr,
	&dev_attr_link_width.attr,
	&dev_attr_peer_name.attr,
	&dev_attr_peer_vendor.attr,
	&dev_attr_peer_uuid.attr,
	&dev_attr_local_uuid.attr,
	&dev_attr_route.attr,
	&dev_attr_xdomain.attr,
	&dev_attr_pci_addr.attr,
	&dev_attr_numa_node.attr,
	&dev_attr_poll_cpus.attr,
	&dev_attr_protocol.attr,
	&dev_attr_rings.attr,
	NULL,
};

static const struct attribute_group tbrdma_xd_group = {
	.attrs = tbrdma_xd_attrs,
};

/*
 * statistics/: the link's counters (as for loop cables; they restart with
 * every login and stay after the link goes down), then this connection's
 * own (for its lifetime).
 */
enum tbrdma_xd_stat_src { XD_PHY, XD_CTRL };

struct tbrdma_xd_stat_attr {
	struct device_attribute attr;
	enum tbrdma_xd_stat_src src;
	size_t offset;
};

static ssize_t tbrdma_xd_stat_show(struct device *dev,
				   struct device_attribute *attr, char *buf)
{
	const struct tbrdma_xd_stat_attr *sa =
		container_of(attr, struct tbrdma_xd_stat_attr, attr);
	struct tbrdma_xd_link *xl = to_xl(dev);
	u64 v = 0;

	switch (sa->src) {
	case XD_PHY:
		/*
		 * Counted under the link's lock (but irqs in the interrupt and
		 * setup_errors by the control work), kept while detached.
		 */
		mutex_lock(&tbrdma.lock);
		if (xl->attached)
			tbrdma_link_lock(xl->link.index);
		v = *(u64 *)((u8 *)&xl->stats + sa->offset);
		if (xl->attached)
			tbrdma_link_unlock(xl->link.index);
		mutex_unlock(&tbrdma.lock);
		break;
	case XD_CTRL:
		mutex_lock(&xl->ctrl_lock);
		v = *(u64 *)((u8 *)&xl->ctrl.stats + sa->offset);
		mutex_unlock(&xl->ctrl_lock);
		break;
	}
	return sysfs_emit(buf, "%llu\n", v);
}

#define TBRDMA_XD_STAT(_name, _src, _type, _field)			\
static struct tbrdma_xd_stat_attr tbrdma_xd_stat_##_name = {		\
	.attr = __ATTR(_name, 0444, tbrdma_xd_stat_show, NULL),		\
	.src = _src,							\
	.offset = offsetof(_type, _field),				\
}

TBRDMA_XD_STAT(tx_ext_dma, XD_PHY, struct tbrdma_xd_stats, tx_ext_dma);
TBRDMA_XD_STAT(tx_ext_copied, XD_PHY, struct tbrdma_xd_stats, tx_ext_copied);
TBRDMA_XD_STAT(rx_unpaired, XD_PHY, struct tbrdma_xd_stats, rx_unpaired);
TBRDMA_XD_STAT(rx_crc_errors, XD_PHY, struct tbrdma_xd_stats, rx_crc_errors);
TBRDMA_XD_STAT(rx_overruns, XD_PHY, struct tbrdma_xd_stats, rx_overruns);
TBRDMA_XD_STAT(tx_busy, XD_PHY, struct tbrdma_xd_stats, tx_busy);
TBRDMA_XD_STAT(irqs, XD_PHY, struct tbrdma_xd_stats, irqs);
TBRDMA_XD_STAT(logins, XD_PHY, struct tbrdma_xd_stats, logins);
TBRDMA_XD_STAT(link_downs, XD_PHY, struct tbrdma_xd_stats, link_downs);
TBRDMA_XD_STAT(setup_errors, XD_PHY, struct tbrdma_xd_stats, setup_errors);
TBRDMA_XD_STAT(ctrl_requests, XD_CTRL, struct tb_ctrl_stats, tx_requests);
TBRDMA_XD_STAT(ctrl_timeouts, XD_CTRL, struct tb_ctrl_stats, timeouts);
TBRDMA_XD_STAT(ctrl_rx_requests, XD_CTRL, struct tb_ctrl_stats, rx_requests);
TBRDMA_XD_STAT(ctrl_rx_bad, XD_CTRL, struct tb_ctrl_stats, rx_bad);
TBRDMA_XD_STAT(ctrl_rx_stale, XD_CTRL, struct tb_ctrl_stats, rx_stale);
TBRDMA_XD_STAT(ctrl_refusals, XD_CTRL, struct tb_ctrl_stats, refusals);

static struct attribute *const tbrdma_xd_own_stats[] = {
	&tbrdma_xd_stat_tx_ext_dma.attr.attr,
	&tbrdma_xd_stat_tx_ext_copied.attr.attr,
	&tbrdma_xd_stat_rx_unpaired.attr.attr,
	&tbrdma_xd_stat_rx_crc_errors.attr.attr,
	&tbrdma_xd_stat_rx_overruns.attr.attr,
	&tbrdma_xd_stat_tx_busy.attr.attr,
	&tbrdma_xd_stat_irqs.attr.attr,
	&tbrdma_xd_stat_logins.attr.attr,
	&tbrdma_xd_stat_link_downs.attr.attr,
	&tbrdma_xd_stat_setup_errors.attr.attr,
	&tbrdma_xd_stat_ctrl_requests.attr.attr,
	&tbrdma_xd_stat_ctrl_timeouts.attr.attr,
	&tbrdma_xd_stat_ctrl_rx_requests.attr.attr,
	&tbrdma_xd_stat_ctrl_rx_bad.attr.attr,
	&tbrdma_xd_stat_ctrl_rx_stale.attr.attr,
	&tbrdma_xd_stat_ctrl_refusals.attr.attr,
};

static struct attribute *
tbrdma_xd_stat_attrs[TBRDMA_LINK_NSTATS + ARRAY_SIZE(tbrdma_xd_own_stats) + 1];

static const struct attribute_group tbrdma_xd_stat_group = {
	.name = "statistics",
	.attrs = tbrdma_xd_stat_attrs,
};

const struct attribute_group *tbrdma_xd_groups[] = {
	&tbrdma_xd_group,
	&tbrdma_xd_stat_group,
	NULL,
};

void tbrdma_xd_sysfs_init(void)
{
	tbrdma_link_stat_attrs(tbrdma_xd_stat_attrs, tbrdma_xd_own_stats,
			       ARRAY_SIZE(tbrdma_xd_own_stats));
}
