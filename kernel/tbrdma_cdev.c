// SPDX-License-Identifier: GPL-2.0
/*
 * /dev/tbrdma: the ABI of tbrdma_abi.h. Each open file is a protection
 * domain and, once TBRDMA_IOC_CREATE_QUEUES has run, one context with its
 * submission, completion and receive rings mapped into the process.
 *
 * Nothing userspace writes is trusted: every ioctl argument is copied in
 * and checked field by field (reserved fields must be zero, output-only
 * fields are ignored); ring indices read from the mapped control blocks
 * are bounded before use, and each SQE is copied out of the shared ring
 * before it is checked, so the process cannot change it in between.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/fs.h>
#include <linux/log2.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/poll.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/vmalloc.h>

#include "tbrdma.h"

static int tbrdma_open(struct inode *inode, struct file *file)
{
	struct tbrdma_file *fl;
	int ret;

	fl = kzalloc(sizeof(*fl), GFP_KERNEL_ACCOUNT);
	if (!fl)
		return -ENOMEM;
	mutex_init(&fl->lock);
	init_waitqueue_head(&fl->wq);
	mutex_lock(&tbrdma.lock);
	ret = tb_pd_create(tbrdma.engine, tbrdma_max_mr, &fl->pd);
	mutex_unlock(&tbrdma.lock);
	if (ret) {
		kfree(fl);
		return ret;
	}
	file->private_data = fl;
	return nonseekable_open(inode, file);
}

static void tbrdma_kring_free(struct tbrdma_kring *r)
{
	vfree(r->mem);
	r->mem = NULL;
}

/*
 * Last reference to the file: no ioctl, poll or mapping is left. The
 * context's operations end without completions, peers' requests for it
 * are answered with TBRDMA_WC_REM_NO_CTX, then the regions are unpinned.
 */
static int tbrdma_release(struct inode *inode, struct file *file)
{
	struct tbrdma_file *fl = file->private_data;
	LIST_HEAD(mrs);

	mutex_lock(&tbrdma.lock);
	if (fl->ctx)
		tb_ctx_destroy(fl->ctx, NULL, NULL);
	fl->ctx = NULL;
	tb_pd_destroy(fl->pd, tbrdma_mr_collect, &mrs);
	fl->pd = NULL;
	mutex_unlock(&tbrdma.lock);
	tbrdma_mr_free_list(&mrs);
	tbrdma_kring_free(&fl->sq);
	tbrdma_kring_free(&fl->cq);
	tbrdma_kring_free(&fl->rq);
	mutex_destroy(&fl->lock);
	kfree(fl);
	return 0;
}

static long tbrdma_ioc_query(struct tbrdma_file *fl, void __user *uarg)
{
	struct tbrdma_query q;

	memset(&q, 0, sizeof(q));
	q.abi_version = TBRDMA_ABI_VERSION;
	mutex_lock(&tbrdma.lock);
	q.ctx_id = fl->ctx ? tb_ctx_id(fl->ctx) : 0;
	q.num_links = tbrdma.nloops;
	mutex_unlock(&tbrdma.lock);
	q.max_mr = tbrdma_max_mr;
	q.max_ep = tbrdma_max_ep;
	q.max_ring_entries = tbrdma_max_ring;
	q.frame_max = TBRDMA_FRAME_MAX;
	q.inline_max = TBRDMA_INLINE_MAX;
	q.send_max = TBRDMA_SEND_MAX;
	return copy_to_user(uarg, &q, sizeof(q)) ? -EFAULT : 0;
}

static long tbrdma_ioc_query_link(void __user *uarg)
{
	struct tbrdma_link_attr a;
	u32 index;

	if (copy_from_user(&a, uarg, sizeof(a)))
		return -EFAULT;
	index = a.index;
	memset(&a, 0, sizeof(a));
	a.index = index;
	mutex_lock(&tbrdma.lock);
	if (index >= tbrdma.nloops) {
		mutex_unlock(&tbrdma.lock);
		return -EINVAL;
	}
	tbrdma_loop_attr(tbrdma.loops[index], &a);
	mutex_unlock(&tbrdma.lock);
	return copy_to_user(uarg, &a, sizeof(a)) ? -EFAULT : 0;
}

static long tbrdma_ioc_reg_mr(struct tbrdma_file *fl, void __user *uarg)
{
	struct tbrdma_reg_mr r;
	int ret;

	if (copy_from_user(&r, uarg, sizeof(r)))
		return -EFAULT;
	if (r.reserved)
		return -EINVAL;
	ret = tbrdma_mr_reg(fl, r.addr, r.length, r.access, &r.key);
	if (ret)
		return ret;
	if (copy_to_user(uarg, &r, sizeof(r))) {
		tbrdma_mr_dereg(fl, r.key);
		return -EFAULT;
	}
	return 0;
}

static long tbrdma_ioc_dereg_mr(struct tbrdma_file *fl, void __user *uarg)
{
	struct tbrdma_dereg_mr d;

	if (copy_from_user(&d, uarg, sizeof(d)))
		return -EFAULT;
	if (d.reserved)
		return -EINVAL;
	return tbrdma_mr_dereg(fl, d.key);
}

static long tbrdma_ioc_create_ep(struct tbrdma_file *fl, void __user *uarg)
{
	struct tbrdma_create_ep c;
	int ret;

	if (copy_from_user(&c, uarg, sizeof(c)))
		return -EFAULT;
	if (c.reserved)
		return -EINVAL;
	mutex_lock(&tbrdma.lock);
	if (!fl->ctx || c.link >= tbrdma.nloops)
		ret = -EINVAL;
	else
		ret = tb_ep_create(fl->ctx,
				   tbrdma_loop_engine_index(tbrdma.loops[c.link]),
				   c.remote_ctx);
	mutex_unlock(&tbrdma.lock);
	if (ret < 0)
		return ret;
	c.ep = ret;
	if (copy_to_user(uarg, &c, sizeof(c))) {
		mutex_lock(&tbrdma.lock);
		tb_ep_destroy(fl->ctx, c.ep);
		mutex_unlock(&tbrdma.lock);
		return -EFAULT;
	}
	return 0;
}

static long tbrdma_ioc_destroy_ep(struct tbrdma_file *fl, void __user *uarg)
{
	struct tbrdma_destroy_ep d;
	int ret;

	if (copy_from_user(&d, uarg, sizeof(d)))
		return -EFAULT;
	if (d.reserved)
		return -EINVAL;
	mutex_lock(&tbrdma.lock);
	ret = fl->ctx ? tb_ep_destroy(fl->ctx, d.ep) : -EINVAL;
	mutex_unlock(&tbrdma.lock);
	return ret;
}

static long tbrdma_ioc_ep_state(struct tbrdma_file *fl, void __user *uarg)
{
	struct tbrdma_ep_state s;
	u32 outstanding = 0;
	int ret;

	if (copy_from_user(&s, uarg, sizeof(s)))
		return -EFAULT;
	if (s.reserved)
		return -EINVAL;
	mutex_lock(&tbrdma.lock);
	ret = fl->ctx ? tb_ep_state(fl->ctx, s.ep, &outstanding) : -EINVAL;
	mutex_unlock(&tbrdma.lock);
	if (ret < 0)
		return ret;
	s.link_state = ret;
	s.outstanding = outstanding;
	return copy_to_user(uarg, &s, sizeof(s)) ? -EFAULT : 0;
}

/* Ring sizes are checked: n is a power of two of at most max_ring. */
static int tbrdma_kring_alloc(struct tbrdma_kring *r, u32 n, u32 entry_size)
{
	size_t len = PAGE_ALIGN(TBRDMA_RING_DATA_OFFSET + (size_t)n * entry_size);

	r->mem = vmalloc_user(len);
	if (!r->mem)
		return -ENOMEM;
	r->len = len;
	r->entries = n;
	r->entry_size = entry_size;
	return 0;
}

static int tbrdma_ring_size(u32 *n)
{
	if (*n < 1 || *n > tbrdma_max_ring)
		return -EINVAL;
	*n = roundup_pow_of_two(max(*n, 2u));
	return 0;
}

static void tbrdma_notify(void *arg)
{
	struct tbrdma_file *fl = arg;

	wake_up_interruptible_poll(&fl->wq, EPOLLIN | EPOLLRDNORM);
}

static long tbrdma_ioc_create_queues(struct tbrdma_file *fl,
				     void __user *uarg)
{
	struct tbrdma_create_queues q;
	struct tb_ctx_config cfg;
	struct tbrdma_ring_ctrl *sqc;
	struct tb_ctx *ctx;
	int ret;

	if (copy_from_user(&q, uarg, sizeof(q)))
		return -EFAULT;
	if (q.reserved)
		return -EINVAL;
	if (tbrdma_ring_size(&q.sq_entries) || tbrdma_ring_size(&q.cq_entries) ||
	    tbrdma_ring_size(&q.rq_entries))
		return -EINVAL;

	mutex_lock(&fl->lock);
	if (fl->sq.mem) {
		ret = -EEXIST;
		goto out;
	}
	ret = tbrdma_kring_alloc(&fl->sq, q.sq_entries,
				 sizeof(struct tbrdma_sqe));
	if (!ret)
		ret = tbrdma_kring_alloc(&fl->cq, q.cq_entries,
					 sizeof(struct tbrdma_cqe));
	if (!ret)
		ret = tbrdma_kring_alloc(&fl->rq, q.rq_entries, TBRDMA_RQE_SLOT);
	if (ret)
		goto fail;
	sqc = fl->sq.mem;
	sqc->entries = q.sq_entries;
	sqc->entry_size = sizeof(struct tbrdma_sqe);

	memset(&cfg, 0, sizeof(cfg));
	cfg.pd = fl->pd;
	cfg.max_ep = tbrdma_max_ep;
	cfg.sq_depth = q.sq_entries;
	tb_ring_init(&cfg.cq, fl->cq.mem,
		     (u8 *)fl->cq.mem + TBRDMA_RING_DATA_OFFSET, q.cq_entries,
		     sizeof(struct tbrdma_cqe));
	tb_ring_init(&cfg.rq, fl->rq.mem,
		     (u8 *)fl->rq.mem + TBRDMA_RING_DATA_OFFSET, q.rq_entries,
		     TBRDMA_RQE_SLOT);
	/* Local buffers always go through a registered region. */
	cfg.allow_raw_local = 0;
	cfg.notify = tbrdma_notify;
	cfg.notify_arg = fl;

	mutex_lock(&tbrdma.lock);
	ret = tb_ctx_create(tbrdma.engine, &cfg, &ctx);
	if (!ret) {
		fl->sq_head = 0;
		fl->ctx = ctx;
	}
	mutex_unlock(&tbrdma.lock);
	if (ret)
		goto fail;
	mutex_unlock(&fl->lock);

	q.sq_offset = TBRDMA_MMAP_SQ;
	q.sq_length = fl->sq.len;
	q.cq_offset = TBRDMA_MMAP_CQ;
	q.cq_length = fl->cq.len;
	q.rq_offset = TBRDMA_MMAP_RQ;
	q.rq_length = fl->rq.len;
	/* The queues stay: closing the file frees them. */
	return copy_to_user(uarg, &q, sizeof(q)) ? -EFAULT : 0;

fail:
	tbrdma_kring_free(&fl->sq);
	tbrdma_kring_free(&fl->cq);
	tbrdma_kring_free(&fl->rq);
out:
	mutex_unlock(&fl->lock);
	return ret;
}

/*
 * Posts the SQEs from the kernel's consumer index up to sq_producer, in
 * order, and stops at the first one refused. Returns how many went.
 */
static long tbrdma_ioc_doorbell(struct tbrdma_file *fl, void __user *uarg)
{
	struct tbrdma_doorbell db;
	struct tbrdma_ring_ctrl *ctrl;
	struct tbrdma_sqe sqe;
	const u8 *entries;
	u32 n, posted = 0;
	int ret = 0;

	if (copy_from_user(&db, uarg, sizeof(db)))
		return -EFAULT;
	if (db.reserved[0] || db.reserved[1])
		return -EINVAL;
	mutex_lock(&tbrdma.lock);
	if (!fl->ctx) {
		ret = -EINVAL;
		goto out;
	}
	n = db.sq_producer - fl->sq_head;
	if (n > fl->sq.entries) {
		ret = -EINVAL;
		goto out;
	}
	ctrl = fl->sq.mem;
	entries = (const u8 *)fl->sq.mem + TBRDMA_RING_DATA_OFFSET;
	while (posted < n) {
		u32 slot = fl->sq_head & (fl->sq.entries - 1);

		/* Copy first: the process may rewrite the slot meanwhile. */
		memcpy(&sqe, entries + (size_t)slot * sizeof(sqe), sizeof(sqe));
		ret = tb_post(fl->ctx, &sqe);
		if (ret)
			break;
		fl->sq_head++;
		posted++;
	}
	/* The slots before it are free once the process sees the index. */
	smp_store_release(&ctrl->consumer, fl->sq_head);
out:
	mutex_unlock(&tbrdma.lock);
	if (!posted && ret)
		return ret;
	db.posted = posted;
	return copy_to_user(uarg, &db, sizeof(db)) ? -EFAULT : 0;
}

static long tbrdma_ioctl(struct file *file, unsigned int cmd,
			 unsigned long arg)
{
	struct tbrdma_file *fl = file->private_data;
	void __user *uarg = (void __user *)arg;

	switch (cmd) {
	case TBRDMA_IOC_QUERY:
		return tbrdma_ioc_query(fl, uarg);
	case TBRDMA_IOC_QUERY_LINK:
		return tbrdma_ioc_query_link(uarg);
	case TBRDMA_IOC_REG_MR:
		return tbrdma_ioc_reg_mr(fl, uarg);
	case TBRDMA_IOC_DEREG_MR:
		return tbrdma_ioc_dereg_mr(fl, uarg);
	case TBRDMA_IOC_CREATE_EP:
		return tbrdma_ioc_create_ep(fl, uarg);
	case TBRDMA_IOC_DESTROY_EP:
		return tbrdma_ioc_destroy_ep(fl, uarg);
	case TBRDMA_IOC_EP_STATE:
		return tbrdma_ioc_ep_state(fl, uarg);
	case TBRDMA_IOC_CREATE_QUEUES:
		return tbrdma_ioc_create_queues(fl, uarg);
	case TBRDMA_IOC_DOORBELL:
		return tbrdma_ioc_doorbell(fl, uarg);
	default:
		return -ENOTTY;
	}
}

/*
 * Readable when the CQ or the RQ holds entries. Otherwise both rings are
 * armed, under the engine lock, so the engine's next entry wakes us: the
 * process need not arm them itself.
 */
static __poll_t tbrdma_poll(struct file *file, poll_table *wait)
{
	struct tbrdma_file *fl = file->private_data;
	struct tbrdma_ring_ctrl *cq, *rq;
	__poll_t mask = 0;

	poll_wait(file, &fl->wq, wait);
	mutex_lock(&tbrdma.lock);
	if (!fl->ctx) {
		mask = EPOLLERR;
		goto out;
	}
	cq = fl->cq.mem;
	rq = fl->rq.mem;
	if (READ_ONCE(cq->producer) != READ_ONCE(cq->consumer) ||
	    READ_ONCE(rq->producer) != READ_ONCE(rq->consumer)) {
		mask = EPOLLIN | EPOLLRDNORM;
		goto out;
	}
	WRITE_ONCE(cq->armed, 1);
	WRITE_ONCE(rq->armed, 1);
out:
	mutex_unlock(&tbrdma.lock);
	return mask;
}

/* One ring per region, at the offsets of the ABI, shared mappings only. */
static int tbrdma_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct tbrdma_file *fl = file->private_data;
	unsigned long size = vma->vm_end - vma->vm_start;
	struct tbrdma_kring *r;
	int ret;

	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	mutex_lock(&fl->lock);
	if (vma->vm_pgoff == TBRDMA_MMAP_SQ >> PAGE_SHIFT) {
		r = &fl->sq;
	} else if (vma->vm_pgoff == TBRDMA_MMAP_CQ >> PAGE_SHIFT) {
		r = &fl->cq;
	} else if (vma->vm_pgoff == TBRDMA_MMAP_RQ >> PAGE_SHIFT) {
		r = &fl->rq;
	} else {
		ret = -EINVAL;
		goto out;
	}
	if (!r->mem || size > r->len) {
		ret = -EINVAL;
		goto out;
	}
	ret = remap_vmalloc_range(vma, r->mem, 0);
out:
	mutex_unlock(&fl->lock);
	return ret;
}

static const struct file_operations tbrdma_fops = {
	.owner = THIS_MODULE,
	.open = tbrdma_open,
	.release = tbrdma_release,
	.unlocked_ioctl = tbrdma_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.poll = tbrdma_poll,
	.mmap = tbrdma_mmap,
	.llseek = no_llseek,
};

int tbrdma_cdev_register(void)
{
	int ret;

	tbrdma.misc.minor = MISC_DYNAMIC_MINOR;
	tbrdma.misc.name = "tbrdma";
	tbrdma.misc.fops = &tbrdma_fops;
	/* As RDMA devices: pinning is bounded by RLIMIT_MEMLOCK. */
	tbrdma.misc.mode = 0666;
	ret = misc_register(&tbrdma.misc);
	if (ret)
		tbrdma.misc.fops = NULL;
	return ret;
}

void tbrdma_cdev_unregister(void)
{
	if (tbrdma.misc.fops)
		misc_deregister(&tbrdma.misc);
	tbrdma.misc.fops = NULL;
}
