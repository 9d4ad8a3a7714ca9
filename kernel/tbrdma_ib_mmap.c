// SPDX-License-Identifier: GPL-2.0
/*
 * Rings mapped into the process (queue pairs' and shared receive queues'):
 * pages allocated as the host's own rings' are (tbrdma_client_ring_pages),
 * inserted into the process's mapping, which holds a reference to each, so
 * they outlive the queue and the device for as long as the process maps
 * them (nothing writes them any more then). The mmap entry only names the
 * ring for mmap(); it goes with its owner, and the pages' allocation with
 * it (mmap_free).
 */
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>

#include "tbrdma_client.h"
#include "tbrdma_ib.h"

static void tbrdma_ib_ring_free(struct tbrdma_ib_ring *r)
{
	vunmap(r->mem);
	tbrdma_client_ring_pages_free(r->pages, r->len);
	kfree(r);
}

void tbrdma_ib_mmap_free(struct rdma_user_mmap_entry *entry)
{
	tbrdma_ib_ring_free(container_of(entry, struct tbrdma_ib_ring, entry));
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
	r->entries = n;
	r->len = PAGE_ALIGN(TBRDMA_RING_DATA_OFFSET + (size_t)n * entry_size);
	r->pages = tbrdma_client_ring_pages(r->len, &r->mem);
	if (!r->pages) {
		kfree(r);
		return ERR_PTR(-ENOMEM);
	}
	ret = rdma_user_mmap_entry_insert(ibuc, &r->entry, r->len);
	if (ret) {
		tbrdma_ib_ring_free(r);
		return ERR_PTR(ret);
	}
	return r;
}

void tbrdma_ib_ring_remove(struct tbrdma_ib_ring *r)
{
	if (r)
		rdma_user_mmap_entry_remove(&r->entry);
}
