// SPDX-License-Identifier: GPL-2.0
/*
 * The links userspace sees, by index: the loop cables, then the XDomain
 * connections (tbrdma_xdomain.h). Everything here runs under tbrdma.lock.
 */
#include <linux/string.h>

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
