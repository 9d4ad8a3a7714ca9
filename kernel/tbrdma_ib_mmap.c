// SPDX-License-Identifier: GPL-2.0
/*
 * Rings mapped into the process (queue pairs' and shared receive queues'):
 * pages allocated as the host's own rings' are (tbrdma_client_ring_pages),
 * inserted into the process's mapping, which holds a reference to each, so
 * they outlive the queue and the device for as long as the process maps
 * them (nothing writes them any more then). The mmap entry only names the
 * ring for mmap(); it goes with its owner (mmap_free).
 *
 * Like the host's rings and registered memory, the pages count against
 * the RLIMIT_MEMLOCK of the process that made them while any process maps
 * them. The mapping has no vm_ops that could tell when it goes (the module
 * may be gone by then, after a disassociate), and the provider unmaps a
 * ring only once its queue is destroyed. So a ring whose queue went while
 * still mapped waits on its context's list, charged, until a sweep finds
 * it unmapped: before each new ring is charged, and when the context goes.
 */
#include <linux/mm.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>

#include "tbrdma_client.h"
#include "tbrdma_ib.h"

static bool tbrdma_ib_ring_mapped(const struct tbrdma_ib_ring *r)
{
	unsigned long i;

	for (i = 0; i < r->len >> PAGE_SHIFT; i++)
		if (folio_mapped(page_folio(r->pages[i])))
			return true;
	return false;
}

/* Gives back the pages (the mappings hold their own) and the charge. */
static void tbrdma_ib_ring_release(struct tbrdma_ib_ring *r)
{
	tbrdma_client_pin_uncharge(r->mm, r->len >> PAGE_SHIFT);
	mmdrop(r->mm);
	tbrdma_client_ring_pages_free(r->pages, r->len);
	kfree(r);
}

/*
 * Releases the rings that went and are no longer mapped; all: every one.
 * The scan runs off the list, which a process that keeps many mapped
 * (a forked child) can make long.
 */
void tbrdma_ib_ring_sweep(struct tbrdma_ib_ucontext *uc, bool all)
{
	struct tbrdma_ib_ring *r, *next;
	LIST_HEAD(scan);

	/* One at a time: another must not find the list empty meanwhile. */
	mutex_lock(&uc->sweep_lock);
	spin_lock(&uc->gone_lock);
	list_splice_init(&uc->gone, &scan);
	spin_unlock(&uc->gone_lock);
	list_for_each_entry_safe(r, next, &scan, gone) {
		if (all || !tbrdma_ib_ring_mapped(r)) {
			list_del(&r->gone);
			tbrdma_ib_ring_release(r);
		}
		cond_resched();
	}
	spin_lock(&uc->gone_lock);
	list_splice(&scan, &uc->gone);
	spin_unlock(&uc->gone_lock);
	mutex_unlock(&uc->sweep_lock);
}

/* Its entry is gone: no mmap() maps it any more. */
void tbrdma_ib_mmap_free(struct rdma_user_mmap_entry *entry)
{
	struct tbrdma_ib_ring *r =
		container_of(entry, struct tbrdma_ib_ring, entry);

	vunmap(r->mem);
	r->mem = NULL;
	if (!tbrdma_ib_ring_mapped(r)) {
		tbrdma_ib_ring_release(r);
		return;
	}
	spin_lock(&r->uc->gone_lock);
	list_add_tail(&r->gone, &r->uc->gone);
	spin_unlock(&r->uc->gone_lock);
}

int tbrdma_ib_mmap(struct ib_ucontext *ibuc, struct vm_area_struct *vma)
{
	struct rdma_user_mmap_entry *entry;
	struct tbrdma_ib_ring *r;
	unsigned long n;
	int ret;

	/* Shared with the kernel; data, never code, not even after mprotect(). */
	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	if (vma->vm_flags & VM_EXEC)
		return -EPERM;
	/* The entry's size is the mapping's, or there is none. */
	entry = rdma_user_mmap_entry_get(ibuc, vma);
	if (!entry)
		return -EINVAL;
	r = container_of(entry, struct tbrdma_ib_ring, entry);
	tbrdma_vm_flags_mod(vma, VM_DONTEXPAND | VM_DONTDUMP, VM_MAYEXEC);
	n = r->len >> PAGE_SHIFT;
	ret = vm_insert_pages(vma, vma->vm_start, r->pages, &n);
	rdma_user_mmap_entry_put(entry);
	return ret;
}

struct tbrdma_ib_ring *tbrdma_ib_ring_new(struct ib_ucontext *ibuc, u32 n,
					  u32 entry_size)
{
	struct tbrdma_ib_ring *r;
	int ret;

	r = kzalloc(sizeof(*r), GFP_KERNEL_ACCOUNT);
	if (!r)
		return ERR_PTR(-ENOMEM);
	r->uc = to_tbuc(ibuc);
	r->entries = n;
	r->len = PAGE_ALIGN(TBRDMA_RING_DATA_OFFSET + (size_t)n * entry_size);
	tbrdma_ib_ring_sweep(r->uc, false);
	/* The caller's, as its regions are: the context may be inherited. */
	ret = tbrdma_client_pin_charge(current->mm, r->len >> PAGE_SHIFT);
	if (ret)
		goto out_free;
	r->pages = tbrdma_client_ring_pages(r->len, &r->mem);
	if (!r->pages) {
		tbrdma_client_pin_uncharge(current->mm, r->len >> PAGE_SHIFT);
		ret = -ENOMEM;
		goto out_free;
	}
	r->mm = current->mm;
	mmgrab(r->mm);
	ret = rdma_user_mmap_entry_insert(ibuc, &r->entry, r->len);
	if (ret) {
		vunmap(r->mem);
		tbrdma_ib_ring_release(r);
		return ERR_PTR(ret);
	}
	return r;

out_free:
	kfree(r);
	return ERR_PTR(ret);
}

void tbrdma_ib_ring_remove(struct tbrdma_ib_ring *r)
{
	if (r)
		rdma_user_mmap_entry_remove(&r->entry);
}
