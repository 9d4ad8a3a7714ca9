// SPDX-License-Identifier: GPL-2.0
/*
 * Memory registration: the pages of a user buffer are pinned for as long
 * as the region exists (FOLL_LONGTERM: moved out of movable zones first,
 * never DAX; writable file mappings are refused from Linux 6.5 and, as for
 * ib_umem, pinned before it) and charged to the process's
 * pinned_vm against RLIMIT_MEMLOCK unless it has CAP_IPC_LOCK. They are
 * mapped contiguously into the kernel with vmap(), so the engine reaches
 * the whole region through one flat address, from any poll thread, while
 * the owning process sleeps or runs elsewhere.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/capability.h>
#include <linux/mm.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/vmalloc.h>

#include "tbrdma.h"

/* Pages pinned per call, like the array's one page of pointers. */
#define TBRDMA_PIN_BATCH (PAGE_SIZE / sizeof(struct page *))

int tbrdma_client_pin_charge(struct mm_struct *mm, unsigned long npages)
{
	unsigned long limit = rlimit(RLIMIT_MEMLOCK) >> PAGE_SHIFT;
	s64 pinned = atomic64_add_return(npages, &mm->pinned_vm);

	if ((u64)pinned > limit && !capable(CAP_IPC_LOCK)) {
		atomic64_sub(npages, &mm->pinned_vm);
		return -ENOMEM;
	}
	return 0;
}
EXPORT_SYMBOL_GPL(tbrdma_client_pin_charge);

void tbrdma_client_pin_uncharge(struct mm_struct *mm, unsigned long npages)
{
	atomic64_sub(npages, &mm->pinned_vm);
}
EXPORT_SYMBOL_GPL(tbrdma_client_pin_uncharge);

static void tbrdma_umr_free(struct tbrdma_umr *umr)
{
	tbrdma_dma_remove_umr(umr);
	if (umr->vaddr)
		vunmap(umr->vaddr);
	unpin_user_pages_dirty_lock(umr->pages, umr->npages, umr->writable);
	tbrdma_client_pin_uncharge(umr->mm, umr->npages);
	mmdrop(umr->mm);
	kvfree(umr->pages);
	kfree(umr);
}

void tbrdma_umr_get(struct tbrdma_umr *umr)
{
	refcount_inc(&umr->ref);
}

static void tbrdma_umr_put(struct tbrdma_umr *umr)
{
	if (refcount_dec_and_test(&umr->ref))
		tbrdma_umr_free(umr);
}

static void tbrdma_umr_free_work(struct work_struct *work)
{
	tbrdma_umr_free(container_of(work, struct tbrdma_umr, free_work));
}

void tbrdma_umr_put_async(struct tbrdma_umr *umr, struct workqueue_struct *wq)
{
	if (refcount_dec_and_test(&umr->ref))
		queue_work(wq, &umr->free_work);
}

/* Pins [start, start + npages pages) of the current process. */
static int tbrdma_pin(struct tbrdma_umr *umr, unsigned long start)
{
	unsigned int gup = FOLL_LONGTERM | (umr->writable ? FOLL_WRITE : 0);
	unsigned long done = 0;
	int ret;

	while (done < umr->npages) {
		int n = min_t(unsigned long, umr->npages - done,
			      TBRDMA_PIN_BATCH);

		if (fatal_signal_pending(current)) {
			ret = -EINTR;
			goto fail;
		}
		ret = pin_user_pages_fast(start + done * PAGE_SIZE, n, gup,
					  umr->pages + done);
		if (ret <= 0) {
			ret = ret ? ret : -EFAULT;
			goto fail;
		}
		done += ret;
		cond_resched();
	}
	return 0;

fail:
	unpin_user_pages(umr->pages, done);
	return ret;
}

int tbrdma_mr_reg(struct tb_pd *pd, u64 addr, u64 length, u64 iova,
		  u32 access, u64 *key)
{
	struct mm_struct *mm = current->mm;
	struct tbrdma_umr *umr;
	unsigned long start, npages;
	int ret;

	if (!length || length > tbrdma_mr_max_bytes ||
	    (access & ~(u32)TBRDMA_ACCESS_ALL) || !access)
		return -EINVAL;
	/* Written so that nothing can wrap: addr + length stays in range. */
	if (addr > U64_MAX - length || iova > U64_MAX - length ||
	    !access_ok(u64_to_user_ptr(addr), length))
		return -EFAULT;
	if (!mm)
		return -EINVAL;
	start = addr & PAGE_MASK;
	npages = (PAGE_ALIGN(addr + length) - start) >> PAGE_SHIFT;

	umr = kzalloc(sizeof(*umr), GFP_KERNEL_ACCOUNT);
	if (!umr)
		return -ENOMEM;
	umr->pages = kvcalloc(npages, sizeof(*umr->pages), GFP_KERNEL_ACCOUNT);
	if (!umr->pages) {
		kfree(umr);
		return -ENOMEM;
	}
	umr->npages = npages;
	INIT_LIST_HEAD(&umr->node);
	refcount_set(&umr->ref, 1);
	INIT_WORK(&umr->free_work, tbrdma_umr_free_work);
	/*
	 * A region the engine may write: destination of a READ (local
	 * access) or target of a remote WRITE or ATOMIC. Any other is
	 * pinned and mapped read-only (FOLL_LONGTERM unshares COW pages), so
	 * that not even an engine bug could write it.
	 */
	umr->writable = !!(access & (TBRDMA_ACCESS_LOCAL |
				     TBRDMA_ACCESS_REMOTE_WRITE |
				     TBRDMA_ACCESS_REMOTE_ATOMIC));
	umr->mm = mm;
	mmgrab(mm);
	ret = tbrdma_client_pin_charge(mm, npages);
	if (ret)
		goto fail_account;
	ret = tbrdma_pin(umr, start);
	if (ret)
		goto fail_pin;
	umr->vaddr = vmap(umr->pages, npages, VM_MAP,
			  umr->writable ? PAGE_KERNEL : PAGE_KERNEL_RO);
	if (!umr->vaddr) {
		ret = -ENOMEM;
		goto fail_map;
	}
	/* For the controllers, before the engine can send from it. */
	tbrdma_dma_add_umr(umr);

	/* The domain locks its table: no link stops for this. */
	ret = tb_pd_reg_mr(pd, iova, length, access,
			   (u8 *)umr->vaddr + offset_in_page(addr), umr, key);
	if (ret)
		goto fail_reg;
	return 0;

fail_reg:
	tbrdma_dma_remove_umr(umr);
	vunmap(umr->vaddr);
fail_map:
	unpin_user_pages(umr->pages, npages);
fail_pin:
	tbrdma_client_pin_uncharge(mm, npages);
fail_account:
	mmdrop(mm);
	kvfree(umr->pages);
	kfree(umr);
	return ret;
}

/*
 * The key goes from the domain first, so no lookup finds it; then each
 * link's lock is taken in turn: a link that found the region earlier lets
 * go of it with its lock, and its unacked frames from it get copies. No
 * link waits for another, so a process deregistering in a loop holds up
 * each link no longer than one of its rounds.
 */
int tbrdma_mr_dereg(struct tb_pd *pd, u64 key)
{
	struct tb_mr *mr = tb_pd_dereg_begin(pd, key);
	u32 i;

	if (!mr)
		return -ENOENT;
	for (i = 0; i < tbrdma.nlinks; i++) {
		tbrdma_link_lock(i);
		tb_engine_release_mr(tbrdma.engine, i, mr);
		tbrdma_link_unlock(i);
	}
	/* A transmit descriptor still in a ring holds its own ref. */
	tbrdma_umr_put(tb_pd_dereg_end(pd, mr));
	return 0;
}

void tbrdma_mr_collect(void *list, void *priv)
{
	struct tbrdma_umr *umr = priv;

	list_add_tail(&umr->free_node, list);
}

void tbrdma_mr_free_list(struct list_head *list)
{
	struct tbrdma_umr *umr, *tmp;

	list_for_each_entry_safe(umr, tmp, list, free_node) {
		list_del(&umr->free_node);
		tbrdma_umr_put(umr);
	}
}
