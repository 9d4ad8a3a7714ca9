// SPDX-License-Identifier: GPL-2.0
/*
 * The "thunderbolt" bus of the simulation: a domain device per host, an
 * XDomain device per plugged cable end, and under it a tb_service for each
 * property directory the peer offers (when both hosts live in this kernel,
 * both offer what is registered here; a peer in another VM publishes its
 * offers in the shared memory). Services appear a little after a
 * cable is plugged or a directory registered, as after the XDomain
 * discovery exchange, and go when the directory is unregistered. Unplug
 * removes the XDomain with the domain lock held, as the connection manager
 * does.
 */
#include <linux/delay.h>
#include <linux/module.h>
#include <linux/slab.h>

#include "tbsim.h"

/* Discovery: UUIDs and properties read, services enumerated. */
#define TBSIM_DISCOVERY_MS 20

struct tbsim_dir {
	struct list_head list;
	const char *key;
	struct tb_property_dir *dir;
};

struct tbsim_service {
	struct tb_service svc;
	struct list_head list;		/* on its XDomain, under tbsim.lock */
	struct list_head pending;	/* to add or delete */
	bool added;
};

static LIST_HEAD(tbsim_dirs);		/* under tbsim.lock */
static void tbsim_discover(struct work_struct *work);
static DECLARE_DELAYED_WORK(tbsim_discovery, tbsim_discover);

/* Property directories: what tbrdma builds and offers. */

struct tb_property_dir *tb_property_create_dir(const uuid_t *uuid)
{
	struct tb_property_dir *dir = kzalloc(sizeof(*dir), GFP_KERNEL);

	if (!dir)
		return NULL;
	INIT_LIST_HEAD(&dir->properties);
	if (uuid) {
		dir->uuid = kmemdup(uuid, sizeof(*uuid), GFP_KERNEL);
		if (!dir->uuid) {
			kfree(dir);
			return NULL;
		}
	}
	return dir;
}
EXPORT_SYMBOL_GPL(tb_property_create_dir);

void tb_property_free_dir(struct tb_property_dir *dir)
{
	struct tb_property *p, *n;

	if (!dir)
		return;
	list_for_each_entry_safe(p, n, &dir->properties, list) {
		list_del(&p->list);
		kfree(p);
	}
	kfree(dir->uuid);
	kfree(dir);
}
EXPORT_SYMBOL_GPL(tb_property_free_dir);

int tb_property_add_immediate(struct tb_property_dir *parent, const char *key,
			      u32 value)
{
	struct tb_property *p;

	if (!key || !*key || strlen(key) > TB_PROPERTY_KEY_SIZE)
		return -EINVAL;
	p = kzalloc(sizeof(*p), GFP_KERNEL);
	if (!p)
		return -ENOMEM;
	strscpy(p->key, key, sizeof(p->key));
	p->type = TB_PROPERTY_TYPE_VALUE;
	p->length = 1;
	p->value.immediate = value;
	list_add_tail(&p->list, &parent->properties);
	return 0;
}
EXPORT_SYMBOL_GPL(tb_property_add_immediate);

static u32 tbsim_dir_value(const struct tb_property_dir *dir, const char *key)
{
	const struct tb_property *p;

	list_for_each_entry(p, &dir->properties, list)
		if (p->type == TB_PROPERTY_TYPE_VALUE && !strcmp(p->key, key))
			return p->value.immediate;
	return 0;
}

/* What this kernel's hosts offer. Under tbsim.lock. */
int tbsim_local_offers(struct tbsim_offer *o, int max)
{
	struct tbsim_dir *d;
	int n = 0;

	list_for_each_entry(d, &tbsim_dirs, list) {
		if (n == max)
			break;
		strscpy(o[n].key, d->key, sizeof(o[n].key));
		o[n].prtcid = tbsim_dir_value(d->dir, "prtcid");
		o[n].prtcvers = tbsim_dir_value(d->dir, "prtcvers");
		o[n].prtcrevs = tbsim_dir_value(d->dir, "prtcrevs");
		o[n].prtcstns = tbsim_dir_value(d->dir, "prtcstns");
		n++;
	}
	return n;
}

/* What the peer offers. Under tbsim.lock. */
static int tbsim_peer_offers(struct tbsim_offer *o, int max)
{
	if (tbsim.pair >= 0)
		return tbsim_shm_peer_offers(o, max);
	return tbsim_local_offers(o, max);
}

void tbsim_discover_soon(void)
{
	mod_delayed_work(tbsim.wq, &tbsim_discovery,
			 msecs_to_jiffies(TBSIM_DISCOVERY_MS));
}

static void tbsim_offers_changed(void)
{
	if (tbsim.pair >= 0)
		tbsim_shm_publish();
	else
		tbsim_discover_soon();
}

int tb_register_property_dir(const char *key, struct tb_property_dir *dir)
{
	struct tbsim_dir *d, *e;
	int ret = 0;

	if (!key || strlen(key) > TB_PROPERTY_KEY_SIZE || !dir || !dir->uuid)
		return -EINVAL;
	/* (a peer reads at most TBSIM_OFFERS_MAX; tbrdma offers one) */
	d = kzalloc(sizeof(*d), GFP_KERNEL);
	if (!d)
		return -ENOMEM;
	d->key = key;
	d->dir = dir;
	mutex_lock(&tbsim.lock);
	list_for_each_entry(e, &tbsim_dirs, list)
		if (!strcmp(e->key, key))
			ret = -EEXIST;
	if (!ret)
		list_add_tail(&d->list, &tbsim_dirs);
	mutex_unlock(&tbsim.lock);
	if (ret) {
		kfree(d);
		return ret;
	}
	tbsim_offers_changed();
	return 0;
}
EXPORT_SYMBOL_GPL(tb_register_property_dir);

void tb_unregister_property_dir(const char *key, struct tb_property_dir *dir)
{
	struct tbsim_dir *d, *n;

	mutex_lock(&tbsim.lock);
	list_for_each_entry_safe(d, n, &tbsim_dirs, list) {
		if (d->dir != dir || strcmp(d->key, key))
			continue;
		list_del(&d->list);
		kfree(d);
	}
	mutex_unlock(&tbsim.lock);
	tbsim_offers_changed();
}
EXPORT_SYMBOL_GPL(tb_unregister_property_dir);

/* The bus. */

static struct tb_service_driver *to_sdrv(struct device_driver *drv)
{
	return container_of(drv, struct tb_service_driver, driver);
}

static const struct tb_service_id *tbsim_match_id(const struct tb_service *svc,
						  const struct tb_service_id *id)
{
	for (; id->match_flags; id++) {
		if ((id->match_flags & TBSVC_MATCH_PROTOCOL_KEY) &&
		    strcmp(id->protocol_key, svc->key))
			continue;
		if ((id->match_flags & TBSVC_MATCH_PROTOCOL_ID) &&
		    id->protocol_id != svc->prtcid)
			continue;
		if ((id->match_flags & TBSVC_MATCH_PROTOCOL_VERSION) &&
		    id->protocol_version != svc->prtcvers)
			continue;
		if ((id->match_flags & TBSVC_MATCH_PROTOCOL_REVISION) &&
		    id->protocol_revision != svc->prtcrevs)
			continue;
		return id;
	}
	return NULL;
}

static int tbsim_bus_match(struct device *dev, struct device_driver *drv)
{
	struct tb_service *svc = tb_to_service(dev);

	return svc && to_sdrv(drv)->id_table &&
	       tbsim_match_id(svc, to_sdrv(drv)->id_table);
}

static int tbsim_bus_probe(struct device *dev)
{
	struct tb_service *svc = tb_to_service(dev);
	struct tb_service_driver *drv = to_sdrv(dev->driver);

	return drv->probe(svc, tbsim_match_id(svc, drv->id_table));
}

static void tbsim_bus_remove(struct device *dev)
{
	struct tb_service_driver *drv = to_sdrv(dev->driver);

	if (drv->remove)
		drv->remove(tb_to_service(dev));
}

static void tbsim_bus_shutdown(struct device *dev)
{
	struct tb_service *svc = tb_to_service(dev);

	if (svc && dev->driver && to_sdrv(dev->driver)->shutdown)
		to_sdrv(dev->driver)->shutdown(svc);
}

static int tbsim_bus_uevent(struct device *dev, struct kobj_uevent_env *env)
{
	struct tb_service *svc = tb_to_service(dev);

	if (!svc)
		return 0;
	return add_uevent_var(env, "MODALIAS=tbsvc:k%sp%08Xv%08Xr%08X",
			      svc->key, svc->prtcid, svc->prtcvers,
			      svc->prtcrevs);
}

struct bus_type tb_bus_type = {
	.name = "thunderbolt",
	.match = tbsim_bus_match,
	.probe = tbsim_bus_probe,
	.remove = tbsim_bus_remove,
	.shutdown = tbsim_bus_shutdown,
	.uevent = tbsim_bus_uevent,
};
EXPORT_SYMBOL_GPL(tb_bus_type);

int tb_register_service_driver(struct tb_service_driver *drv)
{
	drv->driver.bus = &tb_bus_type;
	return driver_register(&drv->driver);
}
EXPORT_SYMBOL_GPL(tb_register_service_driver);

void tb_unregister_service_driver(struct tb_service_driver *drv)
{
	driver_unregister(&drv->driver);
}
EXPORT_SYMBOL_GPL(tb_unregister_service_driver);

/* Services. */

static void tbsim_service_release(struct device *dev)
{
	struct tbsim_service *s = container_of(tb_to_service(dev),
					       struct tbsim_service, svc);

	kfree(s->svc.key);
	kfree(s);
}

struct device_type tb_service_type = {
	.name = "thunderbolt_service",
	.release = tbsim_service_release,
};
EXPORT_SYMBOL_GPL(tb_service_type);

/* A service on sxd for what the peer offers. Under tbsim.lock. */
static struct tbsim_service *tbsim_service_new(struct tbsim_xd *sxd,
					       const struct tbsim_offer *o)
{
	struct tbsim_service *s = kzalloc(sizeof(*s), GFP_KERNEL);

	if (!s)
		return NULL;
	s->svc.key = kstrdup(o->key, GFP_KERNEL);
	if (!s->svc.key) {
		kfree(s);
		return NULL;
	}
	s->svc.id = sxd->next_service_id++;
	s->svc.prtcid = o->prtcid;
	s->svc.prtcvers = o->prtcvers;
	s->svc.prtcrevs = o->prtcrevs;
	s->svc.prtcstns = o->prtcstns;
	device_initialize(&s->svc.dev);
	s->svc.dev.bus = &tb_bus_type;
	s->svc.dev.type = &tb_service_type;
	s->svc.dev.parent = &sxd->xd.dev;
	dev_set_name(&s->svc.dev, "%s.%d", dev_name(&sxd->xd.dev), s->svc.id);
	list_add_tail(&s->list, &sxd->services);
	return s;
}

static bool tbsim_offered(const struct tbsim_offer *o, int n,
			  const struct tb_service *svc)
{
	while (n--) {
		if (!strcmp(o[n].key, svc->key) &&
		    o[n].prtcvers == svc->prtcvers)
			return true;
	}
	return false;
}

static bool tbsim_has_service(struct tbsim_xd *sxd, const char *key)
{
	struct tbsim_service *s;

	list_for_each_entry(s, &sxd->services, list)
		if (!strcmp(s->svc.key, key))
			return true;
	return false;
}

/*
 * Takes services off sxd onto del: those not among the n offers o (with
 * the same protocol version: a peer that reloads another version offers a
 * new service), or all when o is NULL.
 */
static void tbsim_services_take(struct tbsim_xd *sxd,
				const struct tbsim_offer *o, int n,
				struct list_head *del)
{
	struct tbsim_service *s, *next;

	list_for_each_entry_safe(s, next, &sxd->services, list) {
		if (o && tbsim_offered(o, n, &s->svc))
			continue;
		list_del_init(&s->list);
		list_add_tail(&s->pending, del);
	}
}

/* Deletes services (their drivers' remove runs here). No tbsim.lock. */
static void tbsim_services_delete(struct list_head *del)
{
	struct tbsim_service *s, *n;

	list_for_each_entry_safe(s, n, del, pending) {
		list_del(&s->pending);
		if (s->added)
			device_del(&s->svc.dev);
		put_device(&s->svc.dev);
	}
}

/*
 * Services follow the directories offered: new ones are added, gone ones
 * removed. Devices are added and deleted without tbsim.lock (their
 * drivers call back into the simulation), under tbsim.topology.
 */
static void tbsim_discover(struct work_struct *work)
{
	struct tbsim_offer offers[TBSIM_OFFERS_MAX];
	struct tbsim_service *s, *n;
	LIST_HEAD(add);
	LIST_HEAD(del);
	int c, h, i, noffers;

	mutex_lock(&tbsim.topology);
	mutex_lock(&tbsim.lock);
	noffers = tbsim_peer_offers(offers, ARRAY_SIZE(offers));
	for (c = 0; c < tbsim.ncables; c++) {
		for (h = 0; h < TBSIM_HOSTS; h++) {
			struct tbsim_xd *sxd = tbsim.cable[c].end[h];

			if (!sxd)
				continue;
			tbsim_services_take(sxd, offers, noffers, &del);
			for (i = 0; i < noffers; i++) {
				if (tbsim_has_service(sxd, offers[i].key))
					continue;
				s = tbsim_service_new(sxd, &offers[i]);
				if (s)
					list_add_tail(&s->pending, &add);
			}
		}
	}
	mutex_unlock(&tbsim.lock);
	tbsim_services_delete(&del);
	list_for_each_entry_safe(s, n, &add, pending) {
		list_del_init(&s->pending);
		if (!device_add(&s->svc.dev)) {
			s->added = true;
			continue;
		}
		dev_err(&s->svc.dev, "cannot add the service\n");
		mutex_lock(&tbsim.lock);
		list_del_init(&s->list);
		mutex_unlock(&tbsim.lock);
		put_device(&s->svc.dev);
	}
	mutex_unlock(&tbsim.topology);
}

/* Domains and XDomains. */

static void tbsim_domain_release(struct device *dev)
{
	/* The host owns it. */
}

static struct device_type tbsim_domain_type = {
	.name = "thunderbolt_domain",
	.release = tbsim_domain_release,
};

static void tbsim_xd_release(struct device *dev)
{
	struct tbsim_xd *sxd = to_sxd(tb_to_xdomain(dev));

	ida_destroy(&sxd->xd.in_hopids);
	ida_destroy(&sxd->xd.out_hopids);
	kfree(sxd->xd.device_name);
	kfree(sxd->xd.vendor_name);
	kfree(sxd);
}

struct device_type tb_xdomain_type = {
	.name = "thunderbolt_xdomain",
	.release = tbsim_xd_release,
};
EXPORT_SYMBOL_GPL(tb_xdomain_type);

int tbsim_host_register(struct tbsim_host *h)
{
	struct tb *tb = &h->tb;
	int ret;

	mutex_init(&tb->lock);
	tb->nhi = &h->nhi;
	tb->index = h->index;
	tb->security_level = TB_SECURITY_NONE;
	device_initialize(&tb->dev);
	tb->dev.parent = &h->pdev->dev;
	tb->dev.bus = &tb_bus_type;
	tb->dev.type = &tbsim_domain_type;
	dev_set_name(&tb->dev, "domain%d", h->index);
	ret = device_add(&tb->dev);
	if (ret) {
		put_device(&tb->dev);
		return ret;
	}
	h->registered = true;
	return 0;
}

void tbsim_host_unregister(struct tbsim_host *h)
{
	if (h->registered)
		device_unregister(&h->tb.dev);
	h->registered = false;
}

/* The link as USB4 v1 reports it: 2 lanes of 20 Gb/s. */
static void tbsim_xd_link(struct tb_xdomain *xd)
{
	xd->link_speed = 20;
#ifdef TBSIM_LINK_WIDTH_ENUM
	xd->link_width = TB_LINK_WIDTH_DUAL;
#else
	xd->link_width = 2;
#endif
	xd->link_usb4 = true;
}

static struct tbsim_xd *tbsim_xd_new(struct tbsim_cable *c, int h)
{
	struct tbsim_host *host = tbsim.host[h], *peer = tbsim.host[!h];
	struct tbsim_xd *sxd = kzalloc(sizeof(*sxd), GFP_KERNEL);
	char peer_name[sizeof(host->name)];
	struct tb_xdomain *xd;
	int i;

	if (!sxd)
		return NULL;
	if (peer) {
		uuid_copy(&sxd->remote_uuid, &peer->uuid);
		strscpy(peer_name, peer->name, sizeof(peer_name));
	} else if (!tbsim_shm_peer(&sxd->remote_uuid, peer_name,
				   sizeof(peer_name))) {
		kfree(sxd);
		return NULL;	/* the other VM is gone again */
	}
	xd = &sxd->xd;
	sxd->host = host;
	sxd->cable = c;
	INIT_LIST_HEAD(&sxd->services);
	for (i = 0; i <= TBSIM_MAX_HOPID; i++)
		sxd->rx_ring_of[i] = -1;
	xd->tb = &host->tb;
	xd->remote_uuid = &sxd->remote_uuid;
	xd->local_uuid = &host->uuid;
	xd->route = c->route[h];
	xd->vendor = 0x8086;
	xd->device = 0x1;
	xd->local_max_hopid = TBSIM_MAX_HOPID;
	xd->remote_max_hopid = TBSIM_MAX_HOPID;
	mutex_init(&xd->lock);
	xd->vendor_name = kstrdup("tbsim", GFP_KERNEL);
	xd->device_name = kstrdup(peer_name, GFP_KERNEL);
	tbsim_xd_link(xd);
	ida_init(&xd->service_ids);
	ida_init(&xd->in_hopids);
	ida_init(&xd->out_hopids);
	device_initialize(&xd->dev);
	xd->dev.parent = &host->tb.dev;
	xd->dev.bus = &tb_bus_type;
	xd->dev.type = &tb_xdomain_type;
	dev_set_name(&xd->dev, "%u-%llx", host->index, xd->route);
	if (!xd->vendor_name || !xd->device_name) {
		put_device(&xd->dev);
		return NULL;
	}
	return sxd;
}

/*
 * The cable's ends on this kernel's hosts appear (both, or the one of a
 * pair); their services follow after discovery.
 */
int tbsim_plug(struct tbsim_cable *c)
{
	struct tbsim_xd *sxd[TBSIM_HOSTS] = { };
	unsigned long flags;
	int h, ret = 0;

	mutex_lock(&tbsim.topology);
	if (c->plugged)
		goto out;
	for (h = 0; h < TBSIM_HOSTS && !ret; h++) {
		if (!tbsim.host[h])
			continue;
		sxd[h] = tbsim_xd_new(c, h);
		ret = sxd[h] ? device_add(&sxd[h]->xd.dev) : -ENOMEM;
	}
	if (ret) {
		for (h = 0; h < TBSIM_HOSTS; h++) {
			if (!sxd[h])
				continue;
			if (device_is_registered(&sxd[h]->xd.dev))
				device_del(&sxd[h]->xd.dev);
			put_device(&sxd[h]->xd.dev);
		}
		goto out;
	}
	mutex_lock(&tbsim.lock);
	for (h = 0; h < TBSIM_HOSTS; h++) {
		if (!sxd[h])
			continue;
		spin_lock_irqsave(&tbsim.host[h]->nhi.lock, flags);
		c->end[h] = sxd[h];
		spin_unlock_irqrestore(&tbsim.host[h]->nhi.lock, flags);
		pr_info("cable %d plugged: %s, peer %s\n", c->index,
			dev_name(&sxd[h]->xd.dev), sxd[h]->xd.device_name);
	}
	c->plugged = true;
	mutex_unlock(&tbsim.lock);
	tbsim_discover_soon();
out:
	mutex_unlock(&tbsim.topology);
	return ret;
}

/*
 * The ends go: what is on the wire is lost, each XDomain is marked
 * unplugged and removed with its domain's lock held, services first.
 */
void tbsim_unplug(struct tbsim_cable *c)
{
	struct tbsim_xd *sxd[TBSIM_HOSTS];
	LIST_HEAD(del);
	unsigned long flags;
	int h;

	mutex_lock(&tbsim.topology);
	if (!c->plugged)
		goto out;
	mutex_lock(&tbsim.lock);
	for (h = 0; h < TBSIM_HOSTS; h++) {
		sxd[h] = c->end[h];
		if (!sxd[h])
			continue;
		spin_lock_irqsave(&tbsim.host[h]->nhi.lock, flags);
		c->end[h] = NULL;
		spin_unlock_irqrestore(&tbsim.host[h]->nhi.lock, flags);
	}
	c->plugged = false;
	mutex_unlock(&tbsim.lock);
	for (h = 0; h < TBSIM_HOSTS; h++)
		tbsim_wire_flush(&c->wire[h]);
	for (h = 0; h < TBSIM_HOSTS; h++) {
		struct tb *tb;

		if (!sxd[h])
			continue;
		tb = sxd[h]->xd.tb;
		mutex_lock(&tb->lock);
		sxd[h]->xd.is_unplugged = true;
		mutex_lock(&tbsim.lock);
		tbsim_services_take(sxd[h], NULL, 0, &del);
		mutex_unlock(&tbsim.lock);
		tbsim_services_delete(&del);
		device_del(&sxd[h]->xd.dev);
		mutex_unlock(&tb->lock);
		put_device(&sxd[h]->xd.dev);
	}
	pr_info("cable %d unplugged\n", c->index);
out:
	mutex_unlock(&tbsim.topology);
}

int tbsim_bus_init(void)
{
	return bus_register(&tb_bus_type);
}

void tbsim_bus_exit(void)
{
	cancel_delayed_work_sync(&tbsim_discovery);
	bus_unregister(&tb_bus_type);
}
