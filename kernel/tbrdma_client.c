// SPDX-License-Identifier: GPL-2.0
/*
 * Clients: other modules that follow tbrdma.ko's links (tbrdma_client.h).
 * The list changes under tbrdma_clients_lock, which whoever makes a link
 * device appear or go also holds (so a client sees each link added once
 * and removed once), and is read under RCU where a link changes state.
 * Lock order: tbxd.lock, tbrdma_clients_lock, tbrdma.lock (tbxd.slot_lock
 * innermost).
 */
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/rculist.h>

#include "tbrdma.h"
#include "tbrdma_client.h"
#include "tbrdma_xdomain.h"

static DEFINE_MUTEX(tbrdma_clients_mutex);
static LIST_HEAD(tbrdma_clients);

void tbrdma_clients_lock(void)
{
	mutex_lock(&tbrdma_clients_mutex);
}

void tbrdma_clients_unlock(void)
{
	mutex_unlock(&tbrdma_clients_mutex);
}

void tbrdma_clients_add(u32 index, struct device *dev)
{
	struct tbrdma_client *c;

	lockdep_assert_held(&tbrdma_clients_mutex);
	list_for_each_entry(c, &tbrdma_clients, node)
		c->add(c, index, dev);
}

void tbrdma_clients_remove(u32 index)
{
	struct tbrdma_client *c;

	lockdep_assert_held(&tbrdma_clients_mutex);
	list_for_each_entry(c, &tbrdma_clients, node)
		c->remove(c, index);
}

void tbrdma_clients_changed(u32 index)
{
	struct tbrdma_client *c;

	rcu_read_lock();
	list_for_each_entry_rcu(c, &tbrdma_clients, node)
		c->changed(c, index);
	rcu_read_unlock();
}

/* Under the clients lock: the devices of every link, held. */
static u32 tbrdma_clients_links(struct device **devs, u32 max)
{
	u32 i, n;

	mutex_lock(&tbrdma.lock);
	n = min(tbrdma_num_links(), max);
	for (i = 0; i < n; i++)
		devs[i] = get_device(tbrdma_link_device(i));
	mutex_unlock(&tbrdma.lock);
	return n;
}

void tbrdma_client_register(struct tbrdma_client *c)
{
	struct device *devs[TBRDMA_CLIENT_MAX_LINKS];
	u32 i, n;

	BUILD_BUG_ON(TBRDMA_MAX_LOOPS + TBRDMA_XD_MAX >
		     TBRDMA_CLIENT_MAX_LINKS);
	tbrdma_clients_lock();
	list_add_tail_rcu(&c->node, &tbrdma_clients);
	n = tbrdma_clients_links(devs, ARRAY_SIZE(devs));
	for (i = 0; i < n; i++) {
		if (!devs[i])
			continue;
		c->add(c, i, devs[i]);
		put_device(devs[i]);
	}
	tbrdma_clients_unlock();
}
EXPORT_SYMBOL_GPL(tbrdma_client_register);

void tbrdma_client_unregister(struct tbrdma_client *c)
{
	struct device *devs[TBRDMA_CLIENT_MAX_LINKS];
	u32 i, n;

	tbrdma_clients_lock();
	n = tbrdma_clients_links(devs, ARRAY_SIZE(devs));
	for (i = 0; i < n; i++) {
		if (!devs[i])
			continue;
		c->remove(c, i);
		put_device(devs[i]);
	}
	list_del_rcu(&c->node);
	tbrdma_clients_unlock();
	synchronize_rcu();		/* no changed() call still running */
}
EXPORT_SYMBOL_GPL(tbrdma_client_unregister);

int tbrdma_client_query(u32 index, struct tbrdma_link_attr *attr)
{
	u32 engine_index;
	int ret;

	memset(attr, 0, sizeof(*attr));
	attr->index = index;
	mutex_lock(&tbrdma.lock);
	ret = tbrdma_link_lookup(index, attr, &engine_index);
	mutex_unlock(&tbrdma.lock);
	return ret;
}
EXPORT_SYMBOL_GPL(tbrdma_client_query);
