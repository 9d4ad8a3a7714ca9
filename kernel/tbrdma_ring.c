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
	size_t len;
};

struct page **tbrdma_client_ring_pages(size_t len, void **mem)
{
	unsigned long i, npages = len >> PAGE_SHIFT;
	struct page **pages;

	pages = kvcalloc(npages, sizeof(*pages), GFP_KERNEL_ACCOUNT);
	if (!pages)
		return NULL;
	/* A size the process asked for: past its cgroup's limit, ENOMEM. */
	for (i = 0; i < npages; i++) {
		pages[i] = alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO |
				      __GFP_RETRY_MAYFAIL);
		if (!pages[i])
			goto fail;
	}
	*mem = vmap(pages, npages, VM_MAP, PAGE_KERNEL);
	if (*mem)
		return pages;
fail:
	tbrdma_client_ring_pages_free(pages, len);
	return NULL;
}
EXPORT_SYMBOL_GPL(tbrdma_client_ring_pages);

void tbrdma_client_ring_pages_free(struct page **pages, size_t len)
{
	unsigned long i;

	for (i = 0; i < len >> PAGE_SHIFT; i++)
		if (pages[i])
			__free_page(pages[i]);
	kvfree(pages);
}
EXPORT_SYMBOL_GPL(tbrdma_client_ring_pages_free);

static void tbrdma_ring_mem_release(struct kref *ref)
{
	struct tbrdma_ring_mem *rm =
		container_of(ref, struct tbrdma_ring_mem, ref);

	tbrdma_client_ring_pages_free(rm->pages, rm->len);
	tbrdma_client_pin_uncharge(rm->mm, rm->len >> PAGE_SHIFT);
	mmdrop(rm->mm);
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
	int ret;

	rm = kzalloc(sizeof(*rm), GFP_KERNEL_ACCOUNT);
	if (!rm)
		return -ENOMEM;
	ret = tbrdma_client_pin_charge(current->mm, len >> PAGE_SHIFT);
	if (ret)
		goto out_free;
	rm->pages = tbrdma_client_ring_pages(len, &r->mem);
	if (!rm->pages) {
		tbrdma_client_pin_uncharge(current->mm, len >> PAGE_SHIFT);
		ret = -ENOMEM;
		goto out_free;
	}
	rm->len = len;
	rm->mm = current->mm;
	mmgrab(rm->mm);
	kref_init(&rm->ref);
	r->rm = rm;
	r->len = len;
	r->entries = n;
	r->entry_size = entry_size;
	return 0;

out_free:
	kfree(rm);
	return ret;
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

	if (!r->rm || n > (r->rm->len >> PAGE_SHIFT))
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
