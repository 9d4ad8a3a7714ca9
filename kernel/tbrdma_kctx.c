// SPDX-License-Identifier: GPL-2.0
/*
 * Contexts of the host's owners: those of /dev/tbrdma's files
 * (tbrdma_cdev.c) and the verbs queue pairs of clients (tbrdma_client.h),
 * each counted against its user's limit, with a submission ring taken by
 * a doorbell or by the pollers.
 *
 * A queue pair is a context that admits the one peer it is connected to
 * (admit_bound) and has one endpoint, to it, which all its SQEs go to
 * (whatever endpoint they name); a datagram one admits datagrams with its
 * Q_Key from its link's fabric, and its one endpoint, over its link,
 * sends datagrams to whom they name. Its rings are the client's memory: a
 * send queue of SQEs, a completion ring for them, and the posted
 * receives and their completions.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/cred.h>
#include <linux/eventfd.h>
#include <linux/module.h>
#include <linux/slab.h>

#include "tbrdma.h"
#include "tbrdma_client.h"
#include "tbrdma_xdomain.h"

struct tbrdma_user {
	struct list_head node;
	kuid_t uid;
	unsigned int n[TBRDMA_CHARGES];
};

static LIST_HEAD(tbrdma_users);
static DEFINE_MUTEX(tbrdma_users_lock);

u32 tbrdma_client_user_limit(enum tbrdma_charge c)
{
	switch (c) {
	case TBRDMA_CHARGE_CONTEXT:
		return tbrdma_max_user_contexts;
	case TBRDMA_CHARGE_PD:
		return tbrdma_max_user_pds;
	case TBRDMA_CHARGE_CQ:
		return tbrdma_max_user_cqs;
	default:
		return tbrdma_max_user_srqs;
	}
}
EXPORT_SYMBOL_GPL(tbrdma_client_user_limit);

struct tbrdma_user *tbrdma_client_charge(enum tbrdma_charge c)
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
	/* A new entry has none yet, and every limit is at least 1. */
	if (u->n[c] >= tbrdma_client_user_limit(c) &&
	    !capable(CAP_SYS_RESOURCE))
		u = ERR_PTR(-EMFILE);
	else
		u->n[c]++;
out:
	mutex_unlock(&tbrdma_users_lock);
	return u;
}
EXPORT_SYMBOL_GPL(tbrdma_client_charge);

void tbrdma_client_uncharge(struct tbrdma_user *u, enum tbrdma_charge c)
{
	int i;

	mutex_lock(&tbrdma_users_lock);
	u->n[c]--;
	for (i = 0; i < TBRDMA_CHARGES && !u->n[i]; i++)
		;
	if (i == TBRDMA_CHARGES) {
		list_del(&u->node);
		kfree(u);
	}
	mutex_unlock(&tbrdma_users_lock);
}
EXPORT_SYMBOL_GPL(tbrdma_client_uncharge);

struct tbrdma_kctx *tbrdma_kctx_new(void)
{
	struct tbrdma_kctx *kc;
	int ret;

	kc = kzalloc(sizeof(*kc), GFP_KERNEL_ACCOUNT);
	if (!kc)
		return ERR_PTR(-ENOMEM);
	mutex_init(&kc->lock);
	init_rwsem(&kc->doorbell_sem);
	refcount_set(&kc->ref, 1);
	kc->user = tbrdma_client_charge(TBRDMA_CHARGE_CONTEXT);
	if (IS_ERR(kc->user)) {
		ret = PTR_ERR(kc->user);
		kc->user = NULL;
		tbrdma_kctx_put(kc);
		return ERR_PTR(ret);
	}
	return kc;
}

void tbrdma_kctx_put(struct tbrdma_kctx *kc)
{
	if (!refcount_dec_and_test(&kc->ref))
		return;
	if (kc->event)
		eventfd_ctx_put(kc->event);
	tbrdma_kring_free(&kc->sq);
	tbrdma_kring_free(&kc->cq);
	tbrdma_kring_free(&kc->rq);
	if (kc->user)
		tbrdma_client_uncharge(kc->user, TBRDMA_CHARGE_CONTEXT);
	mutex_destroy(&kc->lock);
	kfree(kc);
}

void tbrdma_kctx_init_sq(struct tbrdma_kctx *kc)
{
	struct tbrdma_ring_ctrl *sqc = kc->sq.mem;

	sqc->entries = kc->sq.entries;
	sqc->entry_size = sizeof(struct tbrdma_sqe);
}

/*
 * SQEs posted per batch: what they sent is received (tbrdma_rx_now())
 * before the next, and the scheduler gets a word in between.
 */
#define TBRDMA_DOORBELL_BATCH 64

u32 tbrdma_kctx_doorbell(struct tbrdma_kctx *kc, u32 producer, bool async,
			 int *err)
{
	u32 taken, posted = 0;

	lockdep_assert_held(&kc->lock);
	for (;;) {
		taken = tbrdma_sq_take(kc, producer, TBRDMA_DOORBELL_BATCH,
				       async, NULL, err);
		posted += taken;
		if (*err || taken < TBRDMA_DOORBELL_BATCH ||
		    kc->sq_head == producer)
			return posted;
		tbrdma_rx_now();
		cond_resched();
	}
}

void tbrdma_kctx_unlock(struct tbrdma_kctx *kc)
{
	int i;

	mutex_unlock(&kc->lock);
	tbrdma_sq_unlocked(kc);
	tbrdma_rx_now();
	/* A holder of the link's lock notes its deadline when it lets go. */
	i = xchg(&kc->deadline_link, 0);
	if (i && mutex_trylock(&tbrdma.link_lock[i - 1]))
		tbrdma_link_unlock(i - 1);
}

/* Verbs queue pairs of clients. */

u32 tbrdma_client_max_ring(void)
{
	return tbrdma_max_ring;
}
EXPORT_SYMBOL_GPL(tbrdma_client_max_ring);

int tbrdma_client_pd_create(struct tbrdma_client_pd *cpd)
{
	int ret;

	cpd->user = tbrdma_client_charge(TBRDMA_CHARGE_PD);
	if (IS_ERR(cpd->user))
		return PTR_ERR(cpd->user);
	mutex_lock(&tbrdma.lock);
	ret = tb_pd_create(tbrdma.engine, tbrdma_max_mr, &cpd->pd);
	mutex_unlock(&tbrdma.lock);
	if (ret) {
		tbrdma_client_uncharge(cpd->user, TBRDMA_CHARGE_PD);
		return ret;
	}
	tb_pd_short_keys(cpd->pd);
	return 0;
}
EXPORT_SYMBOL_GPL(tbrdma_client_pd_create);

void tbrdma_client_pd_destroy(struct tbrdma_client_pd *cpd)
{
	LIST_HEAD(mrs);

	tbrdma_lock();
	tb_pd_destroy(cpd->pd, tbrdma_mr_collect, &mrs);
	tbrdma_unlock();
	tbrdma_mr_free_list(&mrs);
	tbrdma_client_uncharge(cpd->user, TBRDMA_CHARGE_PD);
}
EXPORT_SYMBOL_GPL(tbrdma_client_pd_destroy);

int tbrdma_client_reg_mr(struct tb_pd *pd, u64 start, u64 length, u64 iova,
			 u32 access, u64 *key)
{
	return tbrdma_mr_reg(pd, start, length, iova, access, key);
}
EXPORT_SYMBOL_GPL(tbrdma_client_reg_mr);

int tbrdma_client_dereg_mr(struct tb_pd *pd, u64 key)
{
	return tbrdma_mr_dereg(pd, key);
}
EXPORT_SYMBOL_GPL(tbrdma_client_dereg_mr);

static void tbrdma_client_qring(struct tb_qring *q,
				const struct tbrdma_client_ring *r, u32 size)
{
	tb_qring_init(q, r->mem, (u8 *)r->mem + TBRDMA_RING_DATA_OFFSET,
		      r->entries, size);
}

static bool tbrdma_client_ring_ok(const struct tbrdma_client_ring *r)
{
	return r->mem && is_power_of_2(r->entries) && r->entries >= 2 &&
	       r->entries <= tbrdma_max_ring;
}

int tbrdma_client_srq_create(struct tb_pd *pd,
			     const struct tbrdma_client_ring *rwq,
			     struct tb_srq **srq)
{
	struct tb_qring q;
	int ret;

	if (!tbrdma_client_ring_ok(rwq))
		return -EINVAL;
	tbrdma_client_qring(&q, rwq, sizeof(struct tbrdma_rwqe));
	mutex_lock(&tbrdma.lock);
	ret = tb_srq_create(tbrdma.engine, pd, &q, srq);
	mutex_unlock(&tbrdma.lock);
	return ret;
}
EXPORT_SYMBOL_GPL(tbrdma_client_srq_create);

int tbrdma_client_srq_destroy(struct tb_srq *srq)
{
	int ret;

	mutex_lock(&tbrdma.lock);	/* as contexts come and go */
	ret = tb_srq_destroy(srq);
	mutex_unlock(&tbrdma.lock);
	return ret;
}
EXPORT_SYMBOL_GPL(tbrdma_client_srq_destroy);

int tbrdma_client_srq_arm(struct tb_srq *srq, u32 limit,
			  void (*reached)(void *arg), void *arg)
{
	return tb_srq_arm(srq, limit, reached, arg);
}
EXPORT_SYMBOL_GPL(tbrdma_client_srq_arm);

u32 tbrdma_client_srq_limit(struct tb_srq *srq)
{
	return tb_srq_limit(srq);
}
EXPORT_SYMBOL_GPL(tbrdma_client_srq_limit);

struct tbrdma_kctx *tbrdma_client_qp_create(const struct tbrdma_client_qp_attr *a)
{
	struct tb_ctx_config cfg;
	struct tbrdma_kctx *kc;
	int ret;

	if (!tbrdma_client_ring_ok(&a->sq) || !tbrdma_client_ring_ok(&a->cq) ||
	    (!a->srq && !tbrdma_client_ring_ok(&a->rwq)) ||
	    !tbrdma_client_ring_ok(&a->rcq))
		return ERR_PTR(-EINVAL);
	kc = tbrdma_kctx_new();
	if (IS_ERR(kc))
		return kc;
	kc->qp_ep = -1;
	/* The client's memory: freeing the kring leaves it alone. */
	kc->sq.mem = a->sq.mem;
	kc->sq.entries = a->sq.entries;
	tbrdma_kctx_init_sq(kc);

	memset(&cfg, 0, sizeof(cfg));
	cfg.pd = a->pd;
	cfg.max_ep = 1;
	cfg.sq_depth = a->sq.entries;
	tbrdma_client_qring(&cfg.cq, &a->cq, sizeof(struct tbrdma_cqe));
	if (a->srq)
		cfg.srq = a->srq;
	else
		tbrdma_client_qring(&cfg.rwq, &a->rwq,
				    sizeof(struct tbrdma_rwqe));
	tbrdma_client_qring(&cfg.rcq, &a->rcq, sizeof(struct tbrdma_cqe));
	cfg.admit_bound = !a->dgram;
	cfg.dgram = a->dgram;
	cfg.notify = a->notify;
	cfg.notify_arg = a->notify_arg;
	mutex_lock(&tbrdma.lock);
	ret = a->link < tbrdma_num_links() ? 0 : -EINVAL;
	cfg.fabric = tbrdma_link_fabric(a->link, tbrdma_link_is_loop(a->link));
	if (!ret)
		ret = tb_ctx_create(tbrdma.engine, &cfg, &kc->ctx);
	if (!ret)
		tb_ctx_set_remote_access(kc->ctx, 0);
	mutex_unlock(&tbrdma.lock);
	if (ret) {
		tbrdma_kctx_put(kc);
		return ERR_PTR(ret);
	}
	tbrdma_sq_add(kc);
	return kc;
}
EXPORT_SYMBOL_GPL(tbrdma_client_qp_create);

u32 tbrdma_client_qp_num(struct tbrdma_kctx *kc)
{
	return tb_ctx_id(kc->ctx);
}
EXPORT_SYMBOL_GPL(tbrdma_client_qp_num);

void tbrdma_client_qp_destroy(struct tbrdma_kctx *kc)
{
	/* Its doorbell files' ioctls are done; the next fail. */
	down_write(&kc->doorbell_sem);
	kc->qp_gone = true;
	up_write(&kc->doorbell_sem);
	tbrdma_sq_del(kc);
	mutex_lock(&kc->lock);
	tbrdma_lock();
	tb_ctx_destroy(kc->ctx, NULL, NULL);
	tbrdma_unlock();
	kc->ctx = NULL;
	mutex_unlock(&kc->lock);
	/* A doorbell file kept open holds the context, not the user's quota. */
	tbrdma_client_uncharge(kc->user, TBRDMA_CHARGE_CONTEXT);
	kc->user = NULL;
	tbrdma_kctx_put(kc);
}
EXPORT_SYMBOL_GPL(tbrdma_client_qp_destroy);

/*
 * Under tbrdma_lock(): the engine links of a connection from link (the
 * queue pair's) to a peer queue pair on peer_link (U32_MAX: not in this
 * host). Requests to a loop's peer arrive at the far end of the peer's
 * loop; those over an XDomain link arrive on that link, from whatever the
 * peer's host calls its own: a device of this host only if it is the
 * cable's other end (a simulator's), since the cable goes nowhere else.
 */
static int tbrdma_client_qp_links(u32 link, u32 peer_link, u32 *send,
				  u32 *arrive)
{
	*send = tbrdma_link_engine_index(link);
	if (*send == U32_MAX)
		return -ENOTCONN;
	if (!tbrdma_link_is_loop(link)) {
		*arrive = *send;
		return peer_link == U32_MAX ||
		       tbrdma_link_same_cable(link, peer_link) ? 0 : -EHOSTUNREACH;
	}
	if (!tbrdma_link_is_loop(peer_link))
		return -EHOSTUNREACH;
	*arrive = tbrdma_link_far_index(peer_link);
	return *arrive == U32_MAX ? -ENOTCONN : 0;
}

int tbrdma_client_qp_connect(struct tbrdma_kctx *kc, u32 link, u32 peer_link,
			     u32 remote_qpn)
{
	u32 send, arrive;
	int ret;

	if (remote_qpn > TB_CTX_ID_MASK)
		return -EINVAL;
	mutex_lock(&kc->lock);
	ret = kc->qp_ep < 0 ? 0 : -EISCONN;	/* once */
	/* Its allocation where no link waits on it. */
	if (!ret)
		ret = tb_ep_prepare(kc->ctx);
	if (ret)
		goto out;
	tbrdma_lock();
	ret = tbrdma_client_qp_links(link, peer_link, &send, &arrive);
	if (!ret)
		ret = tb_ep_create(kc->ctx, send, remote_qpn, 0);
	if (ret >= 0) {
		kc->qp_ep = ret;
		ret = tb_ctx_bind(kc->ctx, arrive, remote_qpn);
		if (ret) {
			tb_ep_destroy(kc->ctx, kc->qp_ep);
			kc->qp_ep = -1;
		}
	}
	tbrdma_unlock();
out:
	tbrdma_kctx_unlock(kc);
	return ret;
}
EXPORT_SYMBOL_GPL(tbrdma_client_qp_connect);

int tbrdma_client_qp_dgram(struct tbrdma_kctx *kc, u32 link, u32 qkey)
{
	u32 send;
	int ret;

	mutex_lock(&kc->lock);
	/* Its endpoint's allocation where no link waits on it. */
	ret = kc->qp_ep < 0 ? tb_ep_prepare(kc->ctx) : 0;
	if (ret)
		goto out;
	tbrdma_lock();
	if (kc->qp_ep < 0) {
		/* Whatever it names, a datagram carries its destination. */
		send = tbrdma_link_engine_index(link);
		ret = send == U32_MAX ? -ENOTCONN :
					tb_ep_create(kc->ctx, send, 0, 0);
		if (ret >= 0) {
			kc->qp_ep = ret;
			ret = 0;
		}
	}
	if (!ret)
		ret = tb_ctx_set_qkey(kc->ctx, qkey);
	tbrdma_unlock();
out:
	tbrdma_kctx_unlock(kc);
	return ret;
}
EXPORT_SYMBOL_GPL(tbrdma_client_qp_dgram);

void tbrdma_client_qp_access(struct tbrdma_kctx *kc, u32 access)
{
	tb_ctx_set_remote_access(kc->ctx, access);
}
EXPORT_SYMBOL_GPL(tbrdma_client_qp_access);

int tbrdma_client_qp_set_rts(struct tbrdma_kctx *kc, u64 delay_ns, u32 tries,
			     u32 rd_max)
{
	int ret;

	mutex_lock(&kc->lock);
	tbrdma_lock();
	ret = tb_ctx_set_rnr(kc->ctx, min(delay_ns, TB_RNR_DELAY_MAX_NS), tries);
	tb_ctx_set_rd_max(kc->ctx, rd_max);
	tbrdma_unlock();
	tbrdma_kctx_unlock(kc);
	return ret;
}
EXPORT_SYMBOL_GPL(tbrdma_client_qp_set_rts);

/* Under kc->lock: see tbrdma_client_qp_error(). */
static u32 tbrdma_kctx_qp_error(struct tbrdma_kctx *kc)
{
	tbrdma_sq_flush(kc);
	/* Every link stops once; flushing what came since needs none. */
	if (!kc->qp_error) {
		tbrdma_lock();
		tb_ctx_set_error(kc->ctx);
		tbrdma_unlock();
		kc->qp_error = true;
	}
	kc->qp_ready = false;
	return tb_ctx_flush_recv(kc->ctx);
}

u32 tbrdma_client_qp_error(struct tbrdma_kctx *kc)
{
	u32 left;

	mutex_lock(&kc->lock);
	left = tbrdma_kctx_qp_error(kc);
	tbrdma_kctx_unlock(kc);
	return left;
}
EXPORT_SYMBOL_GPL(tbrdma_client_qp_error);

void tbrdma_client_qp_reset(struct tbrdma_kctx *kc)
{
	struct tbrdma_ring_ctrl *sqc = kc->sq.mem;

	mutex_lock(&kc->lock);
	tbrdma_lock();
	tb_ctx_reset(kc->ctx);
	tbrdma_unlock();
	kc->qp_ep = -1;
	kc->qp_error = false;
	kc->qp_ready = false;
	/* What was posted and not taken goes too: acquire, as taking does. */
	kc->sq_head = smp_load_acquire(&sqc->producer);
	/* Release: the process may write the slots again once it sees it. */
	smp_store_release(&sqc->consumer, kc->sq_head);
	tbrdma_kctx_unlock(kc);
}
EXPORT_SYMBOL_GPL(tbrdma_client_qp_reset);

void tbrdma_client_qp_ready(struct tbrdma_kctx *kc)
{
	mutex_lock(&kc->lock);
	kc->qp_ready = true;
	/* What was posted before RTS goes now, unless a poller takes it. */
	tbrdma_kctx_unlock(kc);
}
EXPORT_SYMBOL_GPL(tbrdma_client_qp_ready);

int tbrdma_client_qp_doorbell(struct tbrdma_kctx *kc)
{
	struct tbrdma_ring_ctrl *sqc = kc->sq.mem;
	int err = 0;

	mutex_lock(&kc->lock);
	/* In error, what it takes completes with FLUSH_ERR. */
	if (kc->qp_error)
		tbrdma_kctx_qp_error(kc);
	else if (!kc->qp_ready)
		err = -EINVAL;
	if (!err) {
		/* Acquire: the SQEs before producer are written. */
		u32 producer = smp_load_acquire(&sqc->producer);

		tbrdma_kctx_doorbell(kc, producer, true, &err);
	}
	tbrdma_kctx_unlock(kc);
	return err == -EAGAIN ? 0 : err;
}
EXPORT_SYMBOL_GPL(tbrdma_client_qp_doorbell);
