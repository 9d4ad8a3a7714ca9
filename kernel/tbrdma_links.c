// SPDX-License-Identifier: GPL-2.0
/*
 * The links userspace sees, by index: the loop cables, then the XDomain
 * connections (tbrdma_xdomain.h), and the statistics both show in sysfs.
 * Lookups run under tbrdma.lock, a link's statistics are read under its
 * lock too.
 */
#include <linux/device.h>
#include <linux/string.h>
#include <linux/sysfs.h>

#include "tbrdma.h"
#include "tbrdma_xdomain.h"

u32 tbrdma_num_links(void)
{
	lockdep_assert_held(&tbrdma.lock);
	return tbrdma.nloops + tbrdma_xd_nslots();
}

int tbrdma_link_lookup(u32 index, struct tbrdma_link_attr *attr,
		       u32 *engine_index)
{
	struct tbrdma_link_attr tmp;

	lockdep_assert_held(&tbrdma.lock);
	if (!attr)
		attr = &tmp;
	if (index < tbrdma.nloops) {
		tbrdma_loop_attr(tbrdma.loops[index], attr);
		*engine_index = tbrdma_loop_engine_index(tbrdma.loops[index]);
		return 0;
	}
	return tbrdma_xd_lookup(index - tbrdma.nloops, attr, engine_index);
}

u32 tbrdma_link_engine_index(u32 index)
{
	lockdep_assert_held(&tbrdma.lock);
	if (index < tbrdma.nloops)
		return tbrdma_loop_engine_index(tbrdma.loops[index]);
	return tbrdma_xd_engine_index(index - tbrdma.nloops);
}

bool tbrdma_link_is_loop(u32 index)
{
	lockdep_assert_held(&tbrdma.lock);
	return index < tbrdma.nloops;
}

u32 tbrdma_link_far_index(u32 index)
{
	lockdep_assert_held(&tbrdma.lock);
	return index < tbrdma.nloops ?
	       tbrdma_loop_far_index(tbrdma.loops[index]) : U32_MAX;
}

bool tbrdma_link_same_cable(u32 a, u32 b)
{
	u64 id;

	lockdep_assert_held(&tbrdma.lock);
	if (a == b || a < tbrdma.nloops || b < tbrdma.nloops)
		return false;
	id = tbrdma_xd_identity(a - tbrdma.nloops);
	return id && id == tbrdma_xd_identity(b - tbrdma.nloops);
}

struct device *tbrdma_link_device(u32 index)
{
	lockdep_assert_held(&tbrdma.lock);
	if (index < tbrdma.nloops)
		return tbrdma_loop_device(tbrdma.loops[index]);
	return tbrdma_xd_device(index - tbrdma.nloops);
}

struct tbrdma_link_stat_attr {
	struct device_attribute attr;
	size_t offset;			/* in struct tb_link_stats */
};

static u64 tbrdma_link_stat(const struct tb_link *link, size_t offset)
{
	u64 v;

	tbrdma_link_lock(link->index);
	v = *(const u64 *)((const u8 *)&link->stats + offset);
	tbrdma_link_unlock(link->index);
	return v;
}

static ssize_t tbrdma_link_stat_show(struct device *dev,
				     struct device_attribute *attr, char *buf)
{
	const struct tbrdma_link_stat_attr *sa =
		container_of(attr, struct tbrdma_link_stat_attr, attr);
	const struct tb_link *link = dev_get_drvdata(dev);
	const struct tb_link *far;
	u64 v;

	/* The links stay (tbrdma.lock) and count on (their locks). */
	mutex_lock(&tbrdma.lock);
	far = tbrdma_loop_far_link(link);
	v = tbrdma_link_stat(link, sa->offset);
	if (far)	/* a loop: both ends */
		v += tbrdma_link_stat(far, sa->offset);
	mutex_unlock(&tbrdma.lock);
	return sysfs_emit(buf, "%llu\n", v);
}

#define TBRDMA_LINK_STAT(_name, _field)					\
static struct tbrdma_link_stat_attr tbrdma_link_stat_##_name = {	\
	.attr = __ATTR(_name, 0444, tbrdma_link_stat_show, NULL),	\
	.offset = offsetof(struct tb_link_stats, _field),		\
}

TBRDMA_LINK_STAT(tx_frames, tx_frames);
TBRDMA_LINK_STAT(tx_bytes, tx_bytes);
TBRDMA_LINK_STAT(rx_frames, rx_frames);
TBRDMA_LINK_STAT(rx_bytes, rx_bytes);
TBRDMA_LINK_STAT(tx_acks, tx_acks);
TBRDMA_LINK_STAT(retransmits, retransmits);
TBRDMA_LINK_STAT(timeouts, timeouts);
TBRDMA_LINK_STAT(rx_dup, rx_dup);
TBRDMA_LINK_STAT(rx_gap, rx_gap);
TBRDMA_LINK_STAT(rx_bad, rx_bad);
TBRDMA_LINK_STAT(rx_stalls, rx_stalls);
TBRDMA_LINK_STAT(tx_ext, tx_ext);
TBRDMA_LINK_STAT(ext_detached, ext_detached);
TBRDMA_LINK_STAT(rx_refused, rx_refused);
TBRDMA_LINK_STAT(rx_throttled, rx_throttled);
TBRDMA_LINK_STAT(rx_rnr, rx_rnr);
TBRDMA_LINK_STAT(rx_dgram_dropped, rx_dgram_dropped);

static struct attribute *const tbrdma_link_stats[] = {
	&tbrdma_link_stat_tx_frames.attr.attr,
	&tbrdma_link_stat_tx_bytes.attr.attr,
	&tbrdma_link_stat_rx_frames.attr.attr,
	&tbrdma_link_stat_rx_bytes.attr.attr,
	&tbrdma_link_stat_tx_acks.attr.attr,
	&tbrdma_link_stat_retransmits.attr.attr,
	&tbrdma_link_stat_timeouts.attr.attr,
	&tbrdma_link_stat_rx_dup.attr.attr,
	&tbrdma_link_stat_rx_gap.attr.attr,
	&tbrdma_link_stat_rx_bad.attr.attr,
	&tbrdma_link_stat_rx_stalls.attr.attr,
	&tbrdma_link_stat_tx_ext.attr.attr,
	&tbrdma_link_stat_ext_detached.attr.attr,
	&tbrdma_link_stat_rx_refused.attr.attr,
	&tbrdma_link_stat_rx_throttled.attr.attr,
	&tbrdma_link_stat_rx_rnr.attr.attr,
	&tbrdma_link_stat_rx_dgram_dropped.attr.attr,
};

void tbrdma_link_stat_attrs(struct attribute **attrs,
			    struct attribute *const *own, size_t n)
{
	BUILD_BUG_ON(ARRAY_SIZE(tbrdma_link_stats) != TBRDMA_LINK_NSTATS);
	memcpy(attrs, tbrdma_link_stats, sizeof(tbrdma_link_stats));
	memcpy(attrs + TBRDMA_LINK_NSTATS, own, n * sizeof(*own));
	attrs[TBRDMA_LINK_NSTATS + n] = NULL;
}
