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
#include "tbrdma_client.h"
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
	/* Its domain's table of max_mr regions counts as a verbs domain's. */
	fl->user = tbrdma_client_charge(TBRDMA_CHARGE_PD);
	if (IS_ERR(fl->user)) {
		ret = PTR_ERR(fl->user);
		kfree(fl);
		return ret;
	}
	mutex_init(&fl->lock);
	init_waitqueue_head(&fl->wq);
	mutex_lock(&tbrdma.lock);
	ret = tb_pd_create(tbrdma.engine, tbrdma_max_mr, &fl->pd);
	mutex_unlock(&tbrdma.lock);
	if (ret) {
		tbrdma_client_uncharge(fl->user, TBRDMA_CHARGE_PD);
		kfree(fl);
		return ret;
	}
	file->private_data = fl;
	/* Seeking fails with ESPIPE: no .llseek is needed (6.12 has no no_llseek). */
	return nonseekable_open(inode, file);
}

/*
 * Under fl->lock (or tbrdma.lock): the context of handle h, or NULL. The
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

	/* No poller takes their SQEs any more (sq_lock before link locks). */
	for (i = 0; i < TBRDMA_FILE_CTX_MAX; i++)
		if (fl->ctxs[i])
			tbrdma_sq_del(fl->ctxs[i]);
	tbrdma_lock();
	for (i = 0; i < TBRDMA_FILE_CTX_MAX; i++) {
		gone[i] = fl->ctxs[i];
		fl->ctxs[i] = NULL;
		if (gone[i])
			tb_ctx_destroy(gone[i]->ctx, NULL, NULL);
	}
	tb_pd_destroy(fl->pd, tbrdma_mr_collect, &mrs);
	fl->pd = NULL;
	tbrdma_unlock();
	tbrdma_mr_free_list(&mrs);
	tbrdma_client_uncharge(fl->user, TBRDMA_CHARGE_PD);
	for (i = 0; i < TBRDMA_FILE_CTX_MAX; i++)
		if (gone[i])
			tbrdma_kctx_put(gone[i]);
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
	mutex_lock(&tbrdma.lock);
	q.num_links = tbrdma_num_links();
	/* The host's free contexts, or this file's if fewer. */
	for (i = 0, file_free = TBRDMA_FILE_CTX_MAX; i < TBRDMA_FILE_CTX_MAX; i++)
		if (fl->ctxs[i])
			file_free--;
	q.contexts_free = min(file_free, tb_engine_ctx_free(tbrdma.engine));
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
	u32 index, engine_index;
	int ret;

	if (copy_from_user(&a, uarg, sizeof(a)))
		return -EFAULT;
	index = a.index;
	memset(&a, 0, sizeof(a));
	a.index = index;
	mutex_lock(&tbrdma.lock);
	ret = tbrdma_link_lookup(index, &a, &engine_index);
	mutex_unlock(&tbrdma.lock);
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
	ret = tbrdma_mr_reg(fl->pd, r.addr, r.length, r.addr, r.access,
			    &r.key);
	if (ret)
		return ret;
	if (copy_to_user(uarg, &r, sizeof(r))) {
		tbrdma_mr_dereg(fl->pd, r.key);
		return -EFAULT;
	}
	return 0;
}

static long tbrdma_ioc_dereg_mr(struct tbrdma_file *fl, void __user *uarg)
{
	struct tbrdma_dereg_mr d;

	if (copy_from_user(&d, uarg, sizeof(d)))
		return -EFAULT;
	return tbrdma_mr_dereg(fl->pd, d.key);
}

/*
 * The context of handle h with its lock held, or NULL. Its file's lock is
 * let go: other contexts of the file go on meanwhile, and destroying this
 * one waits for the holder.
 */
static struct tbrdma_kctx *tbrdma_kctx_lock(struct tbrdma_file *fl, u32 h)
{
	struct tbrdma_kctx *kc;

	mutex_lock(&fl->lock);
	kc = tbrdma_kctx_get(fl, h);
	if (kc) {
		refcount_inc(&kc->ref);
		mutex_lock(&kc->lock);
	}
	mutex_unlock(&fl->lock);
	return kc;
}

/* The context of tbrdma_kctx_lock() let go, and its reference. */
static void tbrdma_kctx_unlock_put(struct tbrdma_kctx *kc)
{
	tbrdma_kctx_unlock(kc);
	tbrdma_kctx_put(kc);
}

/*
 * Under kc->lock: tb_ep_create() under the lock of the link it sends on,
 * its allocations made before.
 */
static int tbrdma_ep_create(struct tbrdma_kctx *kc,
			    const struct tbrdma_create_ep *c)
{
	u32 engine_index;
	int ret;

	mutex_lock(&tbrdma.lock);	/* the link stays */
	if (tbrdma_link_lookup(c->link, NULL, &engine_index)) {
		mutex_unlock(&tbrdma.lock);
		return -EINVAL;
	}
	/*
	 * Over a loop, the context of the higher id sends from end B, so
	 * that two processes talking to each other post under different
	 * ends' locks: on one end, each waited for the other's receive pass
	 * to let go of it.
	 */
	if (tbrdma_link_is_loop(c->link) && c->remote_ctx < tb_ctx_id(kc->ctx))
		engine_index = tbrdma_link_far_index(c->link);
	if (engine_index == U32_MAX) {
		ret = -ENOTCONN;	/* a link between logins or plugs */
	} else {
		/* Under tbrdma.lock, which no link's data path takes. */
		ret = tb_ep_prepare(kc->ctx);
		if (!ret) {
			tbrdma_link_lock(engine_index);
			ret = tb_ep_create(kc->ctx, engine_index,
					   c->remote_ctx, c->remote_secret);
			tbrdma_link_unlock(engine_index);
		}
	}
	mutex_unlock(&tbrdma.lock);
	return ret;
}

/*
 * Under kc->lock: an endpoint call (tb_ep_destroy(), ...) under the lock
 * of the endpoint's link, after what the polled SQ holds.
 */
static int tbrdma_ep_call(struct tbrdma_kctx *kc, u32 ep,
			  int (*fn)(struct tb_ctx *ctx, u32 ep, void *arg),
			  void *arg)
{
	int link, ret;

	tbrdma_sq_flush(kc);
	link = tb_ep_link(kc->ctx, ep);
	if (link < 0)
		return link;
	tbrdma_link_lock(link);
	ret = fn(kc->ctx, ep, arg);
	tbrdma_link_unlock(link);
	return ret;
}

static int tbrdma_ep_destroy(struct tb_ctx *ctx, u32 ep, void *arg)
{
	return tb_ep_destroy(ctx, ep);
}

static long tbrdma_ioc_create_ep(struct tbrdma_file *fl, void __user *uarg)
{
	struct tbrdma_create_ep c;
	struct tbrdma_kctx *kc;
	u32 ctx_id;
	int ret;

	if (copy_from_user(&c, uarg, sizeof(c)))
		return -EFAULT;
	kc = tbrdma_kctx_lock(fl, c.ctx);
	if (!kc)
		return -EINVAL;
	ctx_id = tb_ctx_id(kc->ctx);
	ret = tbrdma_ep_create(kc, &c);
	tbrdma_kctx_unlock_put(kc);
	if (ret < 0)
		return ret;
	c.ep = ret;
	/* Outside the locks: a fault takes mmap_lock, which mmap() holds. */
	if (!copy_to_user(uarg, &c, sizeof(c)))
		return 0;
	/* No one can know the endpoint: it goes, unless the context did. */
	kc = tbrdma_kctx_lock(fl, c.ctx);
	if (kc) {
		if (tb_ctx_id(kc->ctx) == ctx_id)
			tbrdma_ep_call(kc, c.ep, tbrdma_ep_destroy, NULL);
		tbrdma_kctx_unlock_put(kc);
	}
	return -EFAULT;
}

static int tbrdma_ep_cancel(struct tb_ctx *ctx, u32 ep, void *arg)
{
	return tb_ep_cancel(ctx, ep);
}

/* DESTROY_EP and CANCEL_EP. */
static long tbrdma_ioc_ep_ref(struct tbrdma_file *fl, void __user *uarg,
			      int (*fn)(struct tb_ctx *ctx, u32 ep, void *arg))
{
	struct tbrdma_ep_ref r;
	struct tbrdma_kctx *kc;
	int ret;

	if (copy_from_user(&r, uarg, sizeof(r)))
		return -EFAULT;
	kc = tbrdma_kctx_lock(fl, r.ctx);
	if (!kc)
		return -EINVAL;
	ret = tbrdma_ep_call(kc, r.ep, fn, NULL);
	tbrdma_kctx_unlock_put(kc);
	return ret;
}

static int tbrdma_ep_state(struct tb_ctx *ctx, u32 ep, void *outstanding)
{
	return tb_ep_state(ctx, ep, outstanding);
}

static long tbrdma_ioc_ep_state(struct tbrdma_file *fl, void __user *uarg)
{
	struct tbrdma_ep_state s;
	struct tbrdma_kctx *kc;
	u32 outstanding = 0;
	int ret;

	if (copy_from_user(&s, uarg, sizeof(s)))
		return -EFAULT;
	kc = tbrdma_kctx_lock(fl, s.ctx);
	if (!kc)
		return -EINVAL;
	ret = tbrdma_ep_call(kc, s.ep, tbrdma_ep_state, &outstanding);
	tbrdma_kctx_unlock_put(kc);
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
 * The engine published into an armed CQ or RQ of this context (under the
 * context's engine spinlock, so nothing here may sleep): signal its
 * eventfd and wake poll() on the file, one for both rings.
 */
static void tbrdma_notify(void *arg, int recv)
{
	struct tbrdma_kctx *kc = arg;

	if (kc->event)
		tbrdma_eventfd_signal(kc->event);
	wake_up_interruptible_poll(&kc->fl->wq, EPOLLIN | EPOLLRDNORM);
}

static struct tbrdma_kctx *tbrdma_kctx_alloc(struct tbrdma_file *fl,
					     const struct tbrdma_create_queues *q)
{
	struct tbrdma_kctx *kc;
	int ret;

	kc = tbrdma_kctx_new();
	if (IS_ERR(kc))
		return kc;
	kc->fl = fl;
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
	tbrdma_kctx_init_sq(kc);
	return kc;

fail:
	tbrdma_kctx_put(kc);
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
	kc = tbrdma_kctx_get(fl, h);
	if (expect && kc != expect)
		kc = NULL;
	if (kc) {
		/* An ioctl on it is done: the next cannot find it. */
		mutex_lock(&kc->lock);
		tbrdma_sq_del(kc);
		tbrdma_lock();
		tb_ctx_destroy(kc->ctx, NULL, NULL);
		kc->ctx = NULL;
		fl->ctxs[array_index_nospec(h, TBRDMA_FILE_CTX_MAX)] = NULL;
		tbrdma_unlock();
		mutex_unlock(&kc->lock);
	}
	mutex_unlock(&fl->lock);
	if (!kc)
		return -EINVAL;
	tbrdma_kctx_put(kc);
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
	mutex_lock(&tbrdma.lock);	/* creating needs no link's lock */
	for (h = 0; h < TBRDMA_FILE_CTX_MAX && fl->ctxs[h]; h++)
		;
	if (h == TBRDMA_FILE_CTX_MAX)
		ret = -ENOSPC;
	else
		ret = tb_ctx_create(tbrdma.engine, &cfg, &kc->ctx);
	if (!ret) {
		/* Ours until the answer is written: DESTROY_QUEUES may race. */
		refcount_inc(&kc->ref);
		fl->ctxs[h] = kc;
		tbrdma_sq_add(kc);
		q.ctx_id = tb_ctx_id(kc->ctx);
		q.secret = tb_ctx_secret(kc->ctx);
	}
	mutex_unlock(&tbrdma.lock);
	mutex_unlock(&fl->lock);
	if (ret) {
		tbrdma_kctx_put(kc);
		return ret;
	}

	q.ctx = h;
	q.sq_offset = ((u64)h << TBRDMA_MMAP_CTX_SHIFT) | TBRDMA_MMAP_SQ;
	q.sq_length = kc->sq.len;
	q.cq_offset = ((u64)h << TBRDMA_MMAP_CTX_SHIFT) | TBRDMA_MMAP_CQ;
	q.cq_length = kc->cq.len;
	q.rq_offset = ((u64)h << TBRDMA_MMAP_CTX_SHIFT) | TBRDMA_MMAP_RQ;
	q.rq_length = kc->rq.len;
	ret = 0;
	if (copy_to_user(uarg, &q, sizeof(q))) {
		tbrdma_kctx_destroy(fl, h, kc);
		ret = -EFAULT;
	}
	tbrdma_kctx_put(kc);
	return ret;
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

/*
 * Posts the SQEs from the kernel's consumer index up to sq_producer, in
 * order, and stops at the first one refused (with TBRDMA_DOORBELL_ASYNC,
 * at a full queue only). Returns how many went.
 */
static long tbrdma_ioc_doorbell(struct tbrdma_file *fl, void __user *uarg)
{
	struct tbrdma_doorbell db;
	struct tbrdma_kctx *kc;
	u32 posted;
	int ret = 0;

	if (copy_from_user(&db, uarg, sizeof(db)))
		return -EFAULT;
	if (db.flags & ~(u32)TBRDMA_DOORBELL_ASYNC)
		return -EINVAL;
	kc = tbrdma_kctx_lock(fl, db.ctx);
	if (!kc)
		return -EINVAL;
	posted = tbrdma_kctx_doorbell(kc, db.sq_producer,
				      db.flags & TBRDMA_DOORBELL_ASYNC, &ret);
	tbrdma_kctx_unlock_put(kc);
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
		return tbrdma_ioc_ep_ref(fl, uarg, tbrdma_ep_destroy);
	case TBRDMA_IOC_CANCEL_EP:
		return tbrdma_ioc_ep_ref(fl, uarg, tbrdma_ep_cancel);
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

/* Under fl->lock: EPOLLIN if a CQ or RQ of the file holds entries. */
static __poll_t tbrdma_file_ready(struct tbrdma_file *fl)
{
	struct tbrdma_kctx *kc;
	__poll_t mask = EPOLLERR;	/* no context: nothing will come */
	u32 i;

	for (i = 0; i < TBRDMA_FILE_CTX_MAX; i++) {
		kc = fl->ctxs[i];
		if (!kc)
			continue;
		if (tbrdma_ring_has_entries(&kc->cq) ||
		    tbrdma_ring_has_entries(&kc->rq))
			return EPOLLIN | EPOLLRDNORM;
		mask = 0;
	}
	return mask;
}

/*
 * Readable when the CQ or the RQ of any context of the file holds
 * entries. Otherwise every such ring is armed, so the engine's next entry
 * wakes us (the process need not arm them itself), and looked at again:
 * the full barrier pairs with the engine's between publishing and reading
 * armed, so either we see its entry or it sees armed.
 */
static __poll_t tbrdma_poll(struct file *file, poll_table *wait)
{
	struct tbrdma_file *fl = file->private_data;
	struct tbrdma_kctx *kc;
	__poll_t mask;
	u32 i;

	poll_wait(file, &fl->wq, wait);
	mutex_lock(&fl->lock);
	mask = tbrdma_file_ready(fl);
	if (!mask) {
		for (i = 0; i < TBRDMA_FILE_CTX_MAX; i++) {
			kc = fl->ctxs[i];
			if (!kc)
				continue;
			WRITE_ONCE(((struct tbrdma_ring_ctrl *)kc->cq.mem)->armed, 1);
			WRITE_ONCE(((struct tbrdma_ring_ctrl *)kc->rq.mem)->armed, 1);
		}
		smp_mb();	/* armed stored before the producers are read */
		mask = tbrdma_file_ready(fl);
	}
	mutex_unlock(&fl->lock);
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
