// SPDX-License-Identifier: GPL-2.0
/*
 * Rings mapped into the process (queue pairs' and shared receive queues'):
 * physically contiguous pages mapped with rdma_user_mmap_io(), so the RDMA
 * core takes them from the process when the device goes (disassociate).
 * Their pages are freed once their owner removed the mmap entry and the
 * last mapping is gone (mmap_free).
 */
#include <linux/mm.h>
#include <linux/slab.h>

#include "tbrdma_client.h"
#include "tbrdma_ib.h"

void tbrdma_ib_mmap_free(struct rdma_user_mmap_entry *entry)
{
	struct tbrdma_ib_ring *r = container_of(entry, struct tbrdma_ib_ring,
						entry);

	free_pages_exact(r->mem, r->len);
	kfree(r);
}

int tbrdma_ib_mmap(struct ib_ucontext *ibuc, struct vm_area_struct *vma)
{
	struct rdma_user_mmap_entry *entry;
	struct tbrdma_ib_ring *r;
	int ret;

	/* Rings hold data, never code: not now, nor after mprotect(). */
	if (vma->vm_flags & VM_EXEC)
		return -EPERM;
	tbrdma_ib_vm_flags_clear(vma, VM_MAYEXEC);
	entry = rdma_user_mmap_entry_get(ibuc, vma);
	if (!entry)
		return -EINVAL;
	r = container_of(entry, struct tbrdma_ib_ring, entry);
	ret = rdma_user_mmap_io(ibuc, vma, PHYS_PFN(virt_to_phys(r->mem)),
				r->len, vma->vm_page_prot, entry);
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
	/* A size the process asked for: past its cgroup's limit, ENOMEM. */
	r->mem = alloc_pages_exact(r->len, GFP_KERNEL_ACCOUNT | __GFP_ZERO |
				   __GFP_RETRY_MAYFAIL);
	if (!r->mem) {
		kfree(r);
		return ERR_PTR(-ENOMEM);
	}
	ret = rdma_user_mmap_entry_insert(ibuc, &r->entry, r->len);
	if (ret) {
		free_pages_exact(r->mem, r->len);
		kfree(r);
		return ERR_PTR(ret);
	}
	return r;
}

void tbrdma_ib_ring_remove(struct tbrdma_ib_ring *r)
{
	if (r)
		rdma_user_mmap_entry_remove(&r->entry);
}
