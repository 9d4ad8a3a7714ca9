// SPDX-License-Identifier: GPL-2.0
/*
 * Registered memory, DMA-mapped for the controllers that send from it.
 *
 * A "DMA device" is a controller whose phy sends ext buffers (the data
 * chunks of WRITEs and READ responses) straight from registered pages:
 * the NHI of a Thunderbolt/USB4 host controller, or the loop cables' own.
 * A page of a region is mapped for a device the first time a frame is sent
 * from it through that device, and stays mapped until the region or the
 * device goes: a controller reaches only the pages sent through it, not
 * every region of every process, and nothing is mapped per frame. A phy
 * looks up the bus address of a chunk and syncs just those bytes for the
 * device (free on coherent x86, a bounce-buffer copy under swiotlb).
 *
 * Locks: dma.lock (a mutex; nothing takes tbrdma.lock while holding it)
 * guards the device table and the list of regions. umr->map[id] is set up
 * and torn down only while no link of device id can see the region:
 * before the region is registered with the engine or after it is gone
 * from it, or while the device has no link up. Its pages are mapped by
 * phys under their link's lock; two links of one device may send from one
 * page at once, so the first mapping of a page is made under dma.map_lock.
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
	unsigned long npages;
	dma_addr_t page[];		/* DMA_MAPPING_ERROR: not mapped yet */
};

static struct {
	struct mutex lock;		/* devs[], umrs, counters */
	spinlock_t map_lock;		/* a page's first mapping */
	struct {
		struct device *dev;	/* referenced; NULL: free slot */
		u32 users;
	} devs[TBRDMA_DMA_DEVS];
	struct list_head umrs;		/* every registered region */
	atomic64_t pages_mapped;
	atomic64_t map_failures;	/* left unmapped: that chunk is copied */
} dma = {
	.lock = __MUTEX_INITIALIZER(dma.lock),
	.map_lock = __SPIN_LOCK_UNLOCKED(dma.map_lock),
	.umrs = LIST_HEAD_INIT(dma.umrs),
};

static void tbrdma_dma_free(struct device *dev, struct tbrdma_dma_map *m)
{
	unsigned long i;

	for (i = 0; i < m->npages; i++) {
		if (m->page[i] != DMA_MAPPING_ERROR)
			dma_unmap_page(dev, m->page[i], PAGE_SIZE,
				       DMA_TO_DEVICE);
		if (!(i % 1024))
			cond_resched();
	}
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

/* umr's table for device id; without memory for it the device copies. */
static void tbrdma_dma_prepare(struct tbrdma_umr *umr, int id)
{
	struct tbrdma_dma_map *m;
	unsigned long i;

	m = kvmalloc(struct_size(m, page, umr->npages), GFP_KERNEL_ACCOUNT);
	if (!m) {
		atomic64_inc(&dma.map_failures);
		return;
	}
	m->npages = umr->npages;
	for (i = 0; i < m->npages; i++)
		m->page[i] = DMA_MAPPING_ERROR;
	WRITE_ONCE(umr->map[id], m);
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
		tbrdma_dma_prepare(umr, id);
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
			tbrdma_dma_prepare(umr, id);
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
	struct tbrdma_dma_map *m;
	struct device *dev;
	unsigned long off;
	dma_addr_t *page, a;

	if (id < 0 || id >= TBRDMA_DMA_DEVS || !umr)
		return -ENOENT;
	dev = dma.devs[id].dev;
	m = READ_ONCE(umr->map[id]);
	if (!m)
		return -ENOENT;
	off = (const u8 *)data - (const u8 *)umr->vaddr;
	/* One page, inside the region: the engine cuts chunks that way. */
	if (WARN_ON_ONCE(off >= umr->npages << PAGE_SHIFT || !len ||
			 len > PAGE_SIZE - offset_in_page(off)))
		return -EINVAL;
	page = &m->page[off >> PAGE_SHIFT];
	a = READ_ONCE(*page);
	if (a == DMA_MAPPING_ERROR) {
		spin_lock(&dma.map_lock);
		a = *page;
		if (a == DMA_MAPPING_ERROR) {
			a = dma_map_page(dev, umr->pages[off >> PAGE_SHIFT], 0,
					 PAGE_SIZE, DMA_TO_DEVICE);
			if (dma_mapping_error(dev, a)) {
				spin_unlock(&dma.map_lock);
				atomic64_inc(&dma.map_failures);
				return -ENOENT;
			}
			WRITE_ONCE(*page, a);
			atomic64_inc(&dma.pages_mapped);
		}
		spin_unlock(&dma.map_lock);
	}
	*addr = a + offset_in_page(off);
	dma_sync_single_range_for_device(dev, a, offset_in_page(off), len,
					 DMA_TO_DEVICE);
	return 0;
}

void tbrdma_dma_show(struct seq_file *m)
{
	int id;

	mutex_lock(&dma.lock);
	seq_printf(m, "dma: pages mapped %lld, failures %lld\n",
		   (long long)atomic64_read(&dma.pages_mapped),
		   (long long)atomic64_read(&dma.map_failures));
	for (id = 0; id < TBRDMA_DMA_DEVS; id++)
		if (dma.devs[id].dev)
			seq_printf(m, "  dma device %d: %s (%u users)\n", id,
				   dev_name(dma.devs[id].dev),
				   dma.devs[id].users);
	mutex_unlock(&dma.lock);
}
