/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What other modules (tbrdma_ib.ko) see of tbrdma.ko: its links, by the
 * index userspace uses (loopN, then tbN), as they appear, change state and
 * go. See docs/kernel.md ("Clients").
 */
#ifndef TBRDMA_CLIENT_H
#define TBRDMA_CLIENT_H

#include <linux/device.h>
#include <linux/list.h>
#include <linux/types.h>

#include "rdma/tbrdma_abi.h"

/* Link indices are below this: the loops', then the XDomain slots. */
#define TBRDMA_CLIENT_MAX_LINKS 32

struct tbrdma_client {
	/*
	 * A link's device appeared, /sys/class/tbrdma/<name> (a reference is
	 * held for the call only). May sleep; no link runs meanwhile that the
	 * client could not look up.
	 */
	void (*add)(struct tbrdma_client *c, u32 index, struct device *dev);
	/* It goes once this returns: the client lets go of it. May sleep. */
	void (*remove)(struct tbrdma_client *c, u32 index);
	/*
	 * The link's state may have changed: from any context, under locks
	 * of tbrdma.ko, so it must not sleep (look the state up later).
	 */
	void (*changed)(struct tbrdma_client *c, u32 index);
	struct list_head node;
};

/*
 * Calls add for every link that exists, then for every one that comes;
 * unregister calls remove for every link there still is. Both sleep.
 */
void tbrdma_client_register(struct tbrdma_client *c);
void tbrdma_client_unregister(struct tbrdma_client *c);
/*
 * The link's attributes (as TBRDMA_IOC_QUERY_LINK): -EINVAL once it is
 * gone. Sleeps.
 */
int tbrdma_client_query(u32 index, struct tbrdma_link_attr *attr);

#endif /* TBRDMA_CLIENT_H */
