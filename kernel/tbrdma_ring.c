// SPDX-License-Identifier: GPL-2.0
/*
 * Ring memory: the pages of a context's SQ, CQ and RQ, mapped both into the
 * kernel (vmap) and into the process (mmap). They are charged to the memory
 * cgroup (GFP_KERNEL_ACCOUNT) and, like registered memory, to the creating
 * process's pinned_vm against RLIMIT_MEMLOCK unless it has CAP_IPC_LOCK.
 * The pages live until the context is destroyed and every mapping of them
 * is gone, and stay charged as long: destroying queues that are still
 * mapped and creating new ones cannot go past the limit.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kref.h>
#include <linux/mm.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>

#include "tbrdma.h"

struct tbrdma_ring_mem {
	struct kref ref;		/* the context's, and one per mapping */
	struct mm_struct *mm;		/* whose pinned_vm is charged */
	struct page **pages;
	unsigned long npages;
};

static void tbrdma_ring_mem_release(struct kref *ref)
{
	struct tbrdma_ring_mem *rm =
		container_of(ref, struct tbrdma_ring_mem, ref);
	unsigned long i;

	for (i = 0; i < rm->npages; i++)
		if (rm->pages[i])
			__free_page(rm->pages[i]);
	tbrdma_unaccount_pinned(rm->mm, rm->npages);
	mmdrop(rm->mm);
	kvfree(rm->pages);
	kfree(rm);
}

static void tbrdma_ring_mem_put(struct tbrdma_ring_mem *rm)
{
	kref_put(&rm->ref, tbrdma_ring_mem_release);
}

int tbrdma_kring_alloc(struct tbrdma_kring *r, u32 n, u32 entry_size)
{
	size_t len = PAGE_ALIGN(TBRDMA_RING_DATA_OFFSET + (size_t)n * entry_size);
	struct tbrdma_ring_mem *rm;
	unsigned long i;
	int ret;

	rm = kzalloc(sizeof(*rm), GFP_KERNEL_ACCOUNT);
	if (!rm)
		return -ENOMEM;
	rm->npages = len >> PAGE_SHIFT;
	rm->pages = kvcalloc(rm->npages, sizeof(*rm->pages), GFP_KERNEL_ACCOUNT);
	if (!rm->pages) {
		kfree(rm);
		return -ENOMEM;
	}
	ret = tbrdma_account_pinned(current->mm, rm->npages);
	if (ret) {
		kvfree(rm->pages);
		kfree(rm);
		return ret;
	}
	rm->mm = current->mm;
	mmgrab(rm->mm);
	kref_init(&rm->ref);
	/* A size the process asked for: past its cgroup's limit, ENOMEM. */
	for (i = 0; i < rm->npages; i++) {
		rm->pages[i] = alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO |
					  __GFP_RETRY_MAYFAIL);
		if (!rm->pages[i])
			goto fail;
	}
	r->mem = vmap(rm->pages, rm->npages, VM_MAP, PAGE_KERNEL);
	if (!r->mem)
		goto fail;
	r->rm = rm;
	r->len = len;
	r->entries = n;
	r->entry_size = entry_size;
	return 0;

fail:
	tbrdma_ring_mem_put(rm);
	return -ENOMEM;
}

/* The context lets go; a mapping may keep the pages a while longer. */
void tbrdma_kring_free(struct tbrdma_kring *r)
{
	if (!r->rm)
		return;
	vunmap(r->mem);
	r->mem = NULL;
	tbrdma_ring_mem_put(r->rm);
	r->rm = NULL;
}

static void tbrdma_ring_vm_open(struct vm_area_struct *vma)
{
	struct tbrdma_ring_mem *rm = vma->vm_private_data;

	kref_get(&rm->ref);
}

static void tbrdma_ring_vm_close(struct vm_area_struct *vma)
{
	tbrdma_ring_mem_put(vma->vm_private_data);
}

static const struct vm_operations_struct tbrdma_ring_vm_ops = {
	.open = tbrdma_ring_vm_open,
	.close = tbrdma_ring_vm_close,
};

int tbrdma_kring_mmap(const struct tbrdma_kring *r, struct vm_area_struct *vma)
{
	unsigned long n = vma_pages(vma);
	int ret;

	if (!r->rm || n > r->rm->npages)
		return -EINVAL;
	/* Rings hold data, never code: not now, nor after mprotect(). */
	if (vma->vm_flags & VM_EXEC)
		return -EPERM;
	tbrdma_vm_flags_mod(vma, VM_DONTEXPAND | VM_DONTDUMP, VM_MAYEXEC);
	ret = vm_insert_pages(vma, vma->vm_start, r->rm->pages, &n);
	if (ret)
		return ret;
	vma->vm_private_data = r->rm;
	vma->vm_ops = &tbrdma_ring_vm_ops;
	kref_get(&r->rm->ref);
	return 0;
}
