// SPDX-License-Identifier: GPL-2.0
/*
 * Registered memory, DMA-mapped for the controllers that send from it.
 *
 * A "DMA device" is a controller whose phy sends ext buffers (the data
 * chunks of WRITEs and READ responses) straight from registered pages:
 * the NHI of a Thunderbolt/USB4 host controller, or the loop cables' own.
 * Every region is mapped for every DMA device once, when the region is
 * registered or when the device appears, never per frame; a phy then looks
 * up the bus address of a chunk and syncs just those bytes for the device
 * (free on coherent x86, a bounce-buffer copy under swiotlb).
 *
 * Locks: dma.lock (a mutex; nothing takes tbrdma.lock while holding it)
 * guards the device table and the list of regions. umr->map[id] changes
 * only while no link of device id can see the region: before the region
 * is registered with the engine or after it is gone from it, or while the
 * device has no link up. So phys read it under tbrdma.lock alone.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/dma-mapping.h>
#include <linux/mm.h>
#include <linux/seq_file.h>
#include <linux/slab.h>

#include "tbrdma.h"

/*
 * Each page mapped on its own: a frame's chunk lies in one page, and the
 * DMA API lets a driver sync part of a single mapping, not part of a
 * scatterlist's segment.
 */
struct tbrdma_dma_map {
	unsigned long mapped;		/* pages mapped so far */
	dma_addr_t page[];		/* bus address of each page */
};

static struct {
	struct mutex lock;		/* devs[], umrs, counters */
	struct {
		struct device *dev;	/* referenced; NULL: free slot */
		u32 users;
	} devs[TBRDMA_DMA_DEVS];
	struct list_head umrs;		/* every registered region */
	u64 maps;			/* region mappings made */
	u64 map_failures;		/* left unmapped: that device copies */
} dma = {
	.lock = __MUTEX_INITIALIZER(dma.lock),
	.umrs = LIST_HEAD_INIT(dma.umrs),
};

static void tbrdma_dma_free(struct device *dev, struct tbrdma_dma_map *m)
{
	while (m->mapped)
		dma_unmap_page(dev, m->page[--m->mapped], PAGE_SIZE,
			       DMA_TO_DEVICE);
	kvfree(m);
}

static void tbrdma_dma_unmap(struct tbrdma_umr *umr, int id)
{
	struct tbrdma_dma_map *m = umr->map[id];

	if (!m)
		return;
	WRITE_ONCE(umr->map[id], NULL);
	tbrdma_dma_free(dma.devs[id].dev, m);
}

/* Maps umr for device id; on failure the device copies from it instead. */
static void tbrdma_dma_map(struct tbrdma_umr *umr, int id)
{
	struct device *dev = dma.devs[id].dev;
	struct tbrdma_dma_map *m;

	m = kvzalloc(struct_size(m, page, umr->npages), GFP_KERNEL_ACCOUNT);
	if (!m)
		goto fail;
	for (; m->mapped < umr->npages; m->mapped++) {
		dma_addr_t a = dma_map_page(dev, umr->pages[m->mapped], 0,
					    PAGE_SIZE, DMA_TO_DEVICE);

		if (dma_mapping_error(dev, a)) {
			tbrdma_dma_free(dev, m);
			goto fail;
		}
		m->page[m->mapped] = a;
		cond_resched();
	}
	WRITE_ONCE(umr->map[id], m);
	dma.maps++;
	return;

fail:
	dma.map_failures++;
	dev_warn_ratelimited(dev, "could not map %lu registered pages; frames from them are copied\n",
			     umr->npages);
}

int tbrdma_dma_add_dev(struct device *dev)
{
	struct tbrdma_umr *umr;
	int id, free_id = -1;

	mutex_lock(&dma.lock);
	for (id = 0; id < TBRDMA_DMA_DEVS; id++) {
		if (dma.devs[id].dev == dev) {
			dma.devs[id].users++;
			mutex_unlock(&dma.lock);
			return id;
		}
		if (!dma.devs[id].dev && free_id < 0)
			free_id = id;
	}
	if (free_id < 0) {
		mutex_unlock(&dma.lock);
		return -ENOSPC;
	}
	id = free_id;
	dma.devs[id].dev = get_device(dev);
	dma.devs[id].users = 1;
	list_for_each_entry(umr, &dma.umrs, node)
		tbrdma_dma_map(umr, id);
	mutex_unlock(&dma.lock);
	return id;
}

void tbrdma_dma_put_dev(int id)
{
	struct tbrdma_umr *umr;

	if (id < 0 || id >= TBRDMA_DMA_DEVS)
		return;
	mutex_lock(&dma.lock);
	if (!WARN_ON_ONCE(!dma.devs[id].users) && !--dma.devs[id].users) {
		list_for_each_entry(umr, &dma.umrs, node)
			tbrdma_dma_unmap(umr, id);
		put_device(dma.devs[id].dev);
		dma.devs[id].dev = NULL;
	}
	mutex_unlock(&dma.lock);
}

void tbrdma_dma_add_umr(struct tbrdma_umr *umr)
{
	int id;

	mutex_lock(&dma.lock);
	for (id = 0; id < TBRDMA_DMA_DEVS; id++)
		if (dma.devs[id].dev)
			tbrdma_dma_map(umr, id);
	list_add_tail(&umr->node, &dma.umrs);
	mutex_unlock(&dma.lock);
}

void tbrdma_dma_remove_umr(struct tbrdma_umr *umr)
{
	int id;

	mutex_lock(&dma.lock);
	list_del_init(&umr->node);
	for (id = 0; id < TBRDMA_DMA_DEVS; id++)
		tbrdma_dma_unmap(umr, id);
	mutex_unlock(&dma.lock);
}

int tbrdma_dma_addr(int id, const void *cookie, const void *data, u32 len,
		    dma_addr_t *addr)
{
	const struct tbrdma_umr *umr = cookie;
	const struct tbrdma_dma_map *m;
	unsigned long off;

	if (id < 0 || id >= TBRDMA_DMA_DEVS || !umr)
		return -ENOENT;
	m = READ_ONCE(umr->map[id]);
	if (!m)
		return -ENOENT;
	off = (const u8 *)data - (const u8 *)umr->vaddr;
	/* One page, inside the region: the engine cuts chunks that way. */
	if (WARN_ON_ONCE(off >= umr->npages << PAGE_SHIFT || !len ||
			 len > PAGE_SIZE - offset_in_page(off)))
		return -EINVAL;
	*addr = m->page[off >> PAGE_SHIFT] + offset_in_page(off);
	dma_sync_single_range_for_device(dma.devs[id].dev,
					 m->page[off >> PAGE_SHIFT],
					 offset_in_page(off), len, DMA_TO_DEVICE);
	return 0;
}

void tbrdma_dma_show(struct seq_file *m)
{
	int id;

	mutex_lock(&dma.lock);
	seq_printf(m, "dma: region mappings %llu, failures %llu\n", dma.maps,
		   dma.map_failures);
	for (id = 0; id < TBRDMA_DMA_DEVS; id++)
		if (dma.devs[id].dev)
			seq_printf(m, "  dma device %d: %s (%u users)\n", id,
				   dev_name(dma.devs[id].dev),
				   dma.devs[id].users);
	mutex_unlock(&dma.lock);
}
