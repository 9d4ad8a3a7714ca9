// SPDX-License-Identifier: GPL-2.0
/*
 * /dev/tbrdma: the ABI of rdma/tbrdma_abi.h. Each open file is a protection
 * domain with up to TBRDMA_FILE_CTX_MAX contexts (TBRDMA_IOC_CREATE_QUEUES),
 * each with its submission, completion and receive rings mapped into the
 * process and optionally an eventfd that the engine signals.
 *
 * Nothing userspace writes is trusted: every ioctl argument is copied in
 * and checked field by field (reserved fields must be zero, output-only
 * fields are ignored); ring indices read from the mapped control blocks
 * are bounded before use, and each SQE is copied out of the shared ring
 * before it is checked, so the process cannot change it in between.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/eventfd.h>
#include <linux/fs.h>
#include <linux/log2.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/nospec.h>
#include <linux/poll.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "tbrdma.h"
#include "tbrdma_xdomain.h"

/* eventfd_signal() lost its count in 6.8; Kbuild asks the headers. */
static void tbrdma_eventfd_signal(struct eventfd_ctx *ev)
{
#ifdef TBRDMA_EVENTFD_SIGNAL_NO_COUNT
	eventfd_signal(ev);
#else
	eventfd_signal(ev, 1);
#endif
}

static int tbrdma_open(struct inode *inode, struct file *file)
{
	struct tbrdma_file *fl;
	int ret;

	fl = kzalloc(sizeof(*fl), GFP_KERNEL_ACCOUNT);
	if (!fl)
		return -ENOMEM;
	mutex_init(&fl->lock);
	init_waitqueue_head(&fl->wq);
	tbrdma_lock();
	ret = tb_pd_create(tbrdma.engine, tbrdma_max_mr, &fl->pd);
	tbrdma_unlock();
	if (ret) {
		kfree(fl);
		return ret;
	}
	file->private_data = fl;
	/* Seeking fails with ESPIPE: no .llseek is needed (6.12 has no no_llseek). */
	return nonseekable_open(inode, file);
}

/*
 * Contexts per user (max_user_contexts), so that one user cannot take every
 * context of the host; CAP_SYS_RESOURCE lifts it, as it lifts rlimits.
 */
struct tbrdma_user {
	struct list_head node;
	kuid_t uid;
	unsigned int contexts;
};

static LIST_HEAD(tbrdma_users);
static DEFINE_MUTEX(tbrdma_users_lock);

/* Counts a new context of the caller's user: -EMFILE past the limit. */
static struct tbrdma_user *tbrdma_user_charge(void)
{
	kuid_t uid = current_uid();
	struct tbrdma_user *u;

	mutex_lock(&tbrdma_users_lock);
	list_for_each_entry(u, &tbrdma_users, node)
		if (uid_eq(u->uid, uid))
			goto found;
	u = kzalloc(sizeof(*u), GFP_KERNEL_ACCOUNT);
	if (!u) {
		u = ERR_PTR(-ENOMEM);
		goto out;
	}
	u->uid = uid;
	list_add(&u->node, &tbrdma_users);
found:
	/* A new entry has none yet, and the limit is at least 1. */
	if (u->contexts >= tbrdma_max_user_contexts &&
	    !capable(CAP_SYS_RESOURCE))
		u = ERR_PTR(-EMFILE);
	else
		u->contexts++;
out:
	mutex_unlock(&tbrdma_users_lock);
	return u;
}

static void tbrdma_user_uncharge(struct tbrdma_user *u)
{
	mutex_lock(&tbrdma_users_lock);
	if (!--u->contexts) {
		list_del(&u->node);
		kfree(u);
	}
	mutex_unlock(&tbrdma_users_lock);
}

/*
 * Frees a context that is out of the engine and out of its file. Pages of
 * its rings that the process still maps stay allocated, and charged, until
 * it unmaps them; nothing writes them anymore.
 */
static void tbrdma_kctx_free(struct tbrdma_kctx *kc)
{
	if (kc->event)
		eventfd_ctx_put(kc->event);
	tbrdma_kring_free(&kc->sq);
	tbrdma_kring_free(&kc->cq);
	tbrdma_kring_free(&kc->rq);
	if (kc->user)
		tbrdma_user_uncharge(kc->user);
	kfree(kc);
}

/*
 * Under tbrdma.lock (or fl->lock): the context of handle h, or NULL. The
 * handle comes from userspace, so it is clamped under speculation too.
 */
static struct tbrdma_kctx *tbrdma_kctx_get(struct tbrdma_file *fl, u32 h)
{
	if (h >= TBRDMA_FILE_CTX_MAX)
		return NULL;
	return fl->ctxs[array_index_nospec(h, TBRDMA_FILE_CTX_MAX)];
}

/*
 * Last reference to the file: no ioctl, poll or mapping is left. The
 * contexts' operations end without completions, peers' requests for them
 * are refused (TBRDMA_WC_REM_ACCESS_ERR), then the regions are unpinned.
 */
static int tbrdma_release(struct inode *inode, struct file *file)
{
	struct tbrdma_file *fl = file->private_data;
	struct tbrdma_kctx *gone[TBRDMA_FILE_CTX_MAX];
	LIST_HEAD(mrs);
	u32 i;

	tbrdma_lock();
	for (i = 0; i < TBRDMA_FILE_CTX_MAX; i++) {
		gone[i] = fl->ctxs[i];
		fl->ctxs[i] = NULL;
		if (gone[i]) {
			tbrdma_sq_del(gone[i]);
			tb_ctx_destroy(gone[i]->ctx, NULL, NULL);
		}
	}
	tb_pd_destroy(fl->pd, tbrdma_mr_collect, &mrs);
	fl->pd = NULL;
	tbrdma_unlock();
	tbrdma_mr_free_list(&mrs);
	for (i = 0; i < TBRDMA_FILE_CTX_MAX; i++)
		if (gone[i])
			tbrdma_kctx_free(gone[i]);
	mutex_destroy(&fl->lock);
	kfree(fl);
	return 0;
}

static long tbrdma_ioc_query(struct tbrdma_file *fl, void __user *uarg)
{
	struct tbrdma_query q;
	u32 i, file_free;

	memset(&q, 0, sizeof(q));
	q.abi_version = TBRDMA_ABI_VERSION;
	q.max_contexts = TBRDMA_FILE_CTX_MAX;
	tbrdma_lock();
	q.num_links = tbrdma_num_links();
	/* The host's free contexts, or this file's if fewer. */
	for (i = 0, file_free = TBRDMA_FILE_CTX_MAX; i < TBRDMA_FILE_CTX_MAX; i++)
		if (fl->ctxs[i])
			file_free--;
	q.contexts_free = min(file_free, tb_engine_ctx_free(tbrdma.engine));
	tbrdma_unlock();
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
	u32 index, engine_index;
	int ret;

	if (copy_from_user(&a, uarg, sizeof(a)))
		return -EFAULT;
	index = a.index;
	memset(&a, 0, sizeof(a));
	a.index = index;
	tbrdma_lock();
	ret = tbrdma_link_lookup(index, &a, &engine_index);
	tbrdma_unlock();
	if (ret)
		return ret;
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
	return tbrdma_mr_dereg(fl, d.key);
}

static long tbrdma_ioc_create_ep(struct tbrdma_file *fl, void __user *uarg)
{
	struct tbrdma_create_ep c;
	struct tbrdma_kctx *kc;
	u32 ctx_id = 0, engine_index;
	int ret;

	if (copy_from_user(&c, uarg, sizeof(c)))
		return -EFAULT;
	tbrdma_lock();
	kc = tbrdma_kctx_get(fl, c.ctx);
	if (!kc || tbrdma_link_lookup(c.link, NULL, &engine_index)) {
		ret = -EINVAL;
	} else if (engine_index == U32_MAX) {
		ret = -ENOTCONN;	/* an XDomain link between logins */
	} else {
		ctx_id = tb_ctx_id(kc->ctx);
		ret = tb_ep_create(kc->ctx, engine_index, c.remote_ctx,
				   c.remote_secret);
	}
	tbrdma_unlock();
	if (ret < 0)
		return ret;
	c.ep = ret;
	if (copy_to_user(uarg, &c, sizeof(c))) {
		/* Unless another thread replaced the context meanwhile. */
		tbrdma_lock();
		kc = tbrdma_kctx_get(fl, c.ctx);
		if (kc && tb_ctx_id(kc->ctx) == ctx_id)
			tb_ep_destroy(kc->ctx, c.ep);
		tbrdma_unlock();
		return -EFAULT;
	}
	return 0;
}

/* DESTROY_EP and CANCEL_EP. */
static long tbrdma_ioc_ep_ref(struct tbrdma_file *fl, void __user *uarg,
			      int (*fn)(struct tb_ctx *ctx, u32 ep))
{
	struct tbrdma_ep_ref r;
	struct tbrdma_kctx *kc;
	int ret;

	if (copy_from_user(&r, uarg, sizeof(r)))
		return -EFAULT;
	tbrdma_lock();
	kc = tbrdma_kctx_get(fl, r.ctx);
	if (kc)
		tbrdma_sq_flush(kc);
	ret = kc ? fn(kc->ctx, r.ep) : -EINVAL;
	tbrdma_unlock();
	return ret;
}

static long tbrdma_ioc_ep_state(struct tbrdma_file *fl, void __user *uarg)
{
	struct tbrdma_ep_state s;
	struct tbrdma_kctx *kc;
	u32 outstanding = 0;
	int ret;

	if (copy_from_user(&s, uarg, sizeof(s)))
		return -EFAULT;
	tbrdma_lock();
	kc = tbrdma_kctx_get(fl, s.ctx);
	if (kc)
		tbrdma_sq_flush(kc);
	ret = kc ? tb_ep_state(kc->ctx, s.ep, &outstanding) : -EINVAL;
	tbrdma_unlock();
	if (ret < 0)
		return ret;
	s.link_state = ret;
	s.outstanding = outstanding;
	return copy_to_user(uarg, &s, sizeof(s)) ? -EFAULT : 0;
}

static int tbrdma_ring_size(u32 *n)
{
	if (*n < 1 || *n > tbrdma_max_ring)
		return -EINVAL;
	*n = roundup_pow_of_two(max(*n, 2u));
	return 0;
}

/*
 * The engine published into an armed CQ or RQ of this context (under
 * tbrdma.lock): signal its eventfd and wake poll() on the file.
 */
static void tbrdma_notify(void *arg)
{
	struct tbrdma_kctx *kc = arg;

	if (kc->event)
		tbrdma_eventfd_signal(kc->event);
	wake_up_interruptible_poll(&kc->fl->wq, EPOLLIN | EPOLLRDNORM);
}

static struct tbrdma_kctx *tbrdma_kctx_alloc(struct tbrdma_file *fl,
					     const struct tbrdma_create_queues *q)
{
	struct tbrdma_ring_ctrl *sqc;
	struct tbrdma_kctx *kc;
	int ret;

	kc = kzalloc(sizeof(*kc), GFP_KERNEL_ACCOUNT);
	if (!kc)
		return ERR_PTR(-ENOMEM);
	kc->fl = fl;
	kc->user = tbrdma_user_charge();
	if (IS_ERR(kc->user)) {
		ret = PTR_ERR(kc->user);
		kc->user = NULL;
		goto fail;
	}
	if (q->event_fd != -1) {
		kc->event = eventfd_ctx_fdget(q->event_fd);
		if (IS_ERR(kc->event)) {
			ret = PTR_ERR(kc->event);
			kc->event = NULL;
			goto fail;
		}
	}
	ret = tbrdma_kring_alloc(&kc->sq, q->sq_entries,
				 sizeof(struct tbrdma_sqe));
	if (!ret)
		ret = tbrdma_kring_alloc(&kc->cq, q->cq_entries,
					 sizeof(struct tbrdma_cqe));
	if (!ret)
		ret = tbrdma_kring_alloc(&kc->rq, q->rq_entries,
					 TBRDMA_RQE_SLOT);
	if (ret)
		goto fail;
	sqc = kc->sq.mem;
	sqc->entries = q->sq_entries;
	sqc->entry_size = sizeof(struct tbrdma_sqe);
	return kc;

fail:
	tbrdma_kctx_free(kc);
	return ERR_PTR(ret);
}

/*
 * Takes context h out of the engine and out of the file, and frees it.
 * DESTROY_QUEUES, and CREATE_QUEUES when its answer cannot be written
 * (then only if h is still the context it made: expect).
 */
static int tbrdma_kctx_destroy(struct tbrdma_file *fl, u32 h,
			       struct tbrdma_kctx *expect)
{
	struct tbrdma_kctx *kc;

	mutex_lock(&fl->lock);
	tbrdma_lock();
	kc = tbrdma_kctx_get(fl, h);
	if (expect && kc != expect)
		kc = NULL;
	if (kc) {
		tbrdma_sq_del(kc);
		tb_ctx_destroy(kc->ctx, NULL, NULL);
		fl->ctxs[array_index_nospec(h, TBRDMA_FILE_CTX_MAX)] = NULL;
	}
	tbrdma_unlock();
	mutex_unlock(&fl->lock);
	if (!kc)
		return -EINVAL;
	tbrdma_kctx_free(kc);
	return 0;
}

static long tbrdma_ioc_create_queues(struct tbrdma_file *fl,
				     void __user *uarg)
{
	struct tbrdma_create_queues q;
	struct tb_ctx_config cfg;
	struct tbrdma_kctx *kc;
	u32 h;
	int ret;

	if (copy_from_user(&q, uarg, sizeof(q)))
		return -EFAULT;
	if (q.event_fd < -1)
		return -EINVAL;
	if (tbrdma_ring_size(&q.sq_entries) || tbrdma_ring_size(&q.cq_entries) ||
	    tbrdma_ring_size(&q.rq_entries))
		return -EINVAL;
	kc = tbrdma_kctx_alloc(fl, &q);
	if (IS_ERR(kc))
		return PTR_ERR(kc);

	memset(&cfg, 0, sizeof(cfg));
	cfg.pd = fl->pd;
	cfg.max_ep = tbrdma_max_ep;
	cfg.sq_depth = q.sq_entries;
	tb_qring_init(&cfg.cq, kc->cq.mem,
		      (u8 *)kc->cq.mem + TBRDMA_RING_DATA_OFFSET, q.cq_entries,
		      sizeof(struct tbrdma_cqe));
	tb_qring_init(&cfg.rq, kc->rq.mem,
		      (u8 *)kc->rq.mem + TBRDMA_RING_DATA_OFFSET, q.rq_entries,
		      TBRDMA_RQE_SLOT);
	/* Local buffers always go through a registered region. */
	cfg.allow_raw_local = 0;
	cfg.notify = tbrdma_notify;
	cfg.notify_arg = kc;

	mutex_lock(&fl->lock);
	tbrdma_lock();
	for (h = 0; h < TBRDMA_FILE_CTX_MAX && fl->ctxs[h]; h++)
		;
	if (h == TBRDMA_FILE_CTX_MAX)
		ret = -ENOSPC;
	else
		ret = tb_ctx_create(tbrdma.engine, &cfg, &kc->ctx);
	if (!ret) {
		fl->ctxs[h] = kc;
		tbrdma_sq_add(kc);
		q.ctx_id = tb_ctx_id(kc->ctx);
		q.secret = tb_ctx_secret(kc->ctx);
	}
	tbrdma_unlock();
	mutex_unlock(&fl->lock);
	if (ret) {
		tbrdma_kctx_free(kc);
		return ret;
	}

	q.ctx = h;
	q.sq_offset = ((u64)h << TBRDMA_MMAP_CTX_SHIFT) | TBRDMA_MMAP_SQ;
	q.sq_length = kc->sq.len;
	q.cq_offset = ((u64)h << TBRDMA_MMAP_CTX_SHIFT) | TBRDMA_MMAP_CQ;
	q.cq_length = kc->cq.len;
	q.rq_offset = ((u64)h << TBRDMA_MMAP_CTX_SHIFT) | TBRDMA_MMAP_RQ;
	q.rq_length = kc->rq.len;
	if (copy_to_user(uarg, &q, sizeof(q))) {
		tbrdma_kctx_destroy(fl, h, kc);
		return -EFAULT;
	}
	return 0;
}

static long tbrdma_ioc_destroy_queues(struct tbrdma_file *fl,
				      void __user *uarg)
{
	struct tbrdma_destroy_queues d;

	if (copy_from_user(&d, uarg, sizeof(d)))
		return -EFAULT;
	if (d.reserved)
		return -EINVAL;
	return tbrdma_kctx_destroy(fl, d.ctx, NULL);
}

/* SQEs posted per hold of the engine lock: other users get in between. */
#define TBRDMA_DOORBELL_BATCH 64

/*
 * Posts the SQEs from the kernel's consumer index up to sq_producer, in
 * order, and stops at the first one refused (with TBRDMA_DOORBELL_ASYNC,
 * at a full queue only). Returns how many went. The file's lock keeps the
 * context alive while the engine lock is let go between batches.
 */
static long tbrdma_ioc_doorbell(struct tbrdma_file *fl, void __user *uarg)
{
	struct tbrdma_doorbell db;
	struct tbrdma_kctx *kc;
	u32 taken, posted = 0;
	int ret = 0;

	if (copy_from_user(&db, uarg, sizeof(db)))
		return -EFAULT;
	if (db.flags & ~(u32)TBRDMA_DOORBELL_ASYNC)
		return -EINVAL;
	mutex_lock(&fl->lock);
	tbrdma_lock();
	kc = tbrdma_kctx_get(fl, db.ctx);
	if (!kc) {
		ret = -EINVAL;
		goto out;
	}
	for (;;) {
		taken = tbrdma_sq_take(kc, db.sq_producer, TBRDMA_DOORBELL_BATCH,
				       db.flags & TBRDMA_DOORBELL_ASYNC, &ret);
		posted += taken;
		if (ret || taken < TBRDMA_DOORBELL_BATCH ||
		    kc->sq_head == db.sq_producer)
			break;
		tbrdma_unlock();
		cond_resched();
		tbrdma_lock();
	}
out:
	tbrdma_unlock();
	mutex_unlock(&fl->lock);
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
		return tbrdma_ioc_ep_ref(fl, uarg, tb_ep_destroy);
	case TBRDMA_IOC_CANCEL_EP:
		return tbrdma_ioc_ep_ref(fl, uarg, tb_ep_cancel);
	case TBRDMA_IOC_EP_STATE:
		return tbrdma_ioc_ep_state(fl, uarg);
	case TBRDMA_IOC_CREATE_QUEUES:
		return tbrdma_ioc_create_queues(fl, uarg);
	case TBRDMA_IOC_DESTROY_QUEUES:
		return tbrdma_ioc_destroy_queues(fl, uarg);
	case TBRDMA_IOC_DOORBELL:
		return tbrdma_ioc_doorbell(fl, uarg);
	default:
		return -ENOTTY;
	}
}

static bool tbrdma_ring_has_entries(const struct tbrdma_kring *r)
{
	const struct tbrdma_ring_ctrl *c = r->mem;

	return READ_ONCE(c->producer) != READ_ONCE(c->consumer);
}

/*
 * Readable when the CQ or the RQ of any context of the file holds
 * entries. Otherwise every such ring is armed, under the engine lock, so
 * the engine's next entry wakes us: the process need not arm them itself.
 */
static __poll_t tbrdma_poll(struct file *file, poll_table *wait)
{
	struct tbrdma_file *fl = file->private_data;
	struct tbrdma_kctx *kc;
	__poll_t mask = EPOLLERR;
	u32 i;

	poll_wait(file, &fl->wq, wait);
	tbrdma_lock();
	for (i = 0; i < TBRDMA_FILE_CTX_MAX; i++) {
		kc = fl->ctxs[i];
		if (!kc)
			continue;
		if (tbrdma_ring_has_entries(&kc->cq) ||
		    tbrdma_ring_has_entries(&kc->rq)) {
			mask = EPOLLIN | EPOLLRDNORM;
			break;
		}
		mask = 0;
	}
	if (!mask) {
		for (i = 0; i < TBRDMA_FILE_CTX_MAX; i++) {
			kc = fl->ctxs[i];
			if (!kc)
				continue;
			WRITE_ONCE(((struct tbrdma_ring_ctrl *)kc->cq.mem)->armed, 1);
			WRITE_ONCE(((struct tbrdma_ring_ctrl *)kc->rq.mem)->armed, 1);
		}
	}
	tbrdma_unlock();
	return mask;
}

/*
 * One ring per region, at the offsets CREATE_QUEUES returned (context
 * handle above TBRDMA_MMAP_CTX_SHIFT, ring below), shared mappings only.
 */
static int tbrdma_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct tbrdma_file *fl = file->private_data;
	unsigned long h = vma->vm_pgoff >> (TBRDMA_MMAP_CTX_SHIFT - PAGE_SHIFT);
	u64 ring = (u64)(vma->vm_pgoff &
			 ((1ul << (TBRDMA_MMAP_CTX_SHIFT - PAGE_SHIFT)) - 1))
		   << PAGE_SHIFT;
	struct tbrdma_kctx *kc;
	struct tbrdma_kring *r;
	int ret = -EINVAL;

	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	mutex_lock(&fl->lock);
	kc = h < TBRDMA_FILE_CTX_MAX ? tbrdma_kctx_get(fl, h) : NULL;
	if (!kc)
		goto out;
	if (ring == TBRDMA_MMAP_SQ)
		r = &kc->sq;
	else if (ring == TBRDMA_MMAP_CQ)
		r = &kc->cq;
	else if (ring == TBRDMA_MMAP_RQ)
		r = &kc->rq;
	else
		goto out;
	ret = tbrdma_kring_mmap(r, vma);
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
