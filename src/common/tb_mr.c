// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Memory regions. A key is 64 random bits (32 in a domain of short keys,
 * for verbs) and nothing else, so knowing one key (or every key ever
 * issued) says nothing about another. Keys are
 * found through an open-addressing index of twice the domain's size,
 * probed linearly from the key's low bits; removal shifts the entries after
 * it back, so lookups never meet a tombstone.
 *
 * Links look keys up concurrently, under the domain's lock. The memory
 * found stays valid while the caller holds its link's lock: deregistering
 * takes the key out of the index, then waits for each link's lock in turn
 * (or holds them all) before the slot is freed (tb_engine.h). So does a
 * link's hint, the last region it found, while the engine's mr_gen says no
 * region went since: it moves with the key's removal, under the domain's
 * lock, and a link that saw the old value still holds its lock.
 */
#include "tb_engine_priv.h"

int tb_pd_create(struct tb_engine *e, u32 max_mr, struct tb_pd **out)
{
	struct tb_pd *pd;
	u32 i;

	if (!max_mr || (max_mr & (max_mr - 1)) || max_mr > (1u << 20))
		return -EINVAL;
	pd = tb_zalloc(sizeof(*pd));
	if (!pd)
		return -ENOMEM;
	pd->mrs = tb_zalloc(sizeof(*pd->mrs) * max_mr);
	pd->index = tb_zalloc(sizeof(*pd->index) * 2 * max_mr);
	if (!pd->mrs || !pd->index) {
		tb_free(pd->mrs);
		tb_free(pd->index);
		tb_free(pd);
		return -ENOMEM;
	}
	pd->e = e;
	tb_lock_init(&pd->lock);
	pd->max_mr = max_mr;
	/* Free slots chained through next_free, lowest first. */
	for (i = max_mr; i-- > 0;) {
		pd->mrs[i].next_free = pd->free;
		pd->free = i + 1;
	}
	*out = pd;
	return 0;
}

void tb_pd_short_keys(struct tb_pd *pd)
{
	pd->short_keys = 1;
}

void tb_pd_destroy(struct tb_pd *pd, void (*release)(void *arg, void *priv),
		   void *arg)
{
	u32 i;

	if (!pd)
		return;
	for (i = 0; i < pd->max_mr; i++) {
		if (!pd->mrs[i].in_use)
			continue;
		/*
		 * A hint names a region in use: a domain that has none is in
		 * no hint (a failed tb_ctx_create() frees its own without any
		 * link's lock).
		 */
		tb_atomic_fetch_add64(&pd->e->mr_gen, 1);
		if (pd->mrs[i].tx_refs)
			tb_engine_detach_mr(pd->e, &pd->mrs[i]);
		TB_WARN_ON(READ_ONCE(pd->mrs[i].tx_refs));
		if (release)
			release(arg, pd->mrs[i].priv);
	}
	tb_lock_destroy(&pd->lock);
	tb_free(pd->mrs);
	tb_free(pd->index);
	tb_free(pd);
}

static u32 tb_pd_home(const struct tb_pd *pd, u64 key)
{
	return (u32)key & (2 * pd->max_mr - 1);
}

/* The index position holding key, or -1. */
static s64 tb_pd_pos(const struct tb_pd *pd, u64 key)
{
	u32 mask = 2 * pd->max_mr - 1, pos = tb_pd_home(pd, key);

	/* At most half the index is used, so an empty position ends it. */
	for (; pd->index[pos]; pos = (pos + 1) & mask)
		if (pd->mrs[pd->index[pos] - 1].key == key)
			return pos;
	return -1;
}

static void tb_pd_index_add(struct tb_pd *pd, u32 slot)
{
	u32 mask = 2 * pd->max_mr - 1;
	u32 pos = tb_pd_home(pd, pd->mrs[slot].key);

	while (pd->index[pos])
		pos = (pos + 1) & mask;
	pd->index[pos] = slot + 1;
}

/* Empties pos and moves back the entries that probed past it. */
static void tb_pd_index_del(struct tb_pd *pd, u32 pos)
{
	u32 mask = 2 * pd->max_mr - 1, next = pos;

	pd->index[pos] = 0;
	for (;;) {
		u32 home;

		next = (next + 1) & mask;
		if (!pd->index[next])
			return;
		home = tb_pd_home(pd, pd->mrs[pd->index[next] - 1].key);
		/* Stays if its home lies cyclically in (pos, next]. */
		if (((next - home) & mask) < ((next - pos) & mask))
			continue;
		pd->index[pos] = pd->index[next];
		pd->index[next] = 0;
		pos = next;
	}
}

int tb_pd_reg_mr(struct tb_pd *pd, u64 iova, u64 length, u32 access,
		 void *base, void *priv, u64 *key)
{
	struct tb_mr *mr;
	u32 slot;
	u64 k;

	if (!length || !base || (access & ~(u32)TBRDMA_ACCESS_ALL) ||
	    iova + length < iova)
		return -EINVAL;
	tb_lock(&pd->lock);
	if (!pd->free) {
		tb_unlock(&pd->lock);
		return -ENOSPC;
	}
	do {
		k = tb_random_u64();
		if (pd->short_keys)
			k = (u32)k;
	} while (!k || tb_pd_pos(pd, k) >= 0);
	slot = pd->free - 1;
	mr = &pd->mrs[slot];
	pd->free = mr->next_free;
	mr->key = k;
	mr->iova = iova;
	mr->length = length;
	/* What may be written may be read. */
	mr->access = access & TBRDMA_ACCESS_LOCAL ?
		     access | TBRDMA_ACCESS_LOCAL_READ : access;
	mr->base = base;
	mr->priv = priv;
	mr->in_use = 1;
	tb_pd_index_add(pd, slot);
	tb_unlock(&pd->lock);
	*key = k;
	return 0;
}

static struct tb_mr *tb_mr_find(struct tb_pd *pd, u64 key)
{
	s64 pos = key ? tb_pd_pos(pd, key) : -1;

	return pos < 0 ? NULL : &pd->mrs[pd->index[pos] - 1];
}

int tb_pd_has_mr(struct tb_pd *pd, u64 key)
{
	int has;

	tb_lock(&pd->lock);
	has = !!tb_mr_find(pd, key);
	tb_unlock(&pd->lock);
	return has;
}

struct tb_mr *tb_pd_dereg_begin(struct tb_pd *pd, u64 key)
{
	struct tb_mr *mr;
	s64 pos;

	tb_lock(&pd->lock);
	pos = key ? tb_pd_pos(pd, key) : -1;
	if (pos < 0) {
		tb_unlock(&pd->lock);
		return NULL;
	}
	mr = &pd->mrs[pd->index[pos] - 1];
	tb_pd_index_del(pd, (u32)pos);
	/* Domains deregister at once, each under its own lock. */
	tb_atomic_fetch_add64(&pd->e->mr_gen, 1);
	tb_unlock(&pd->lock);
	return mr;
}

void *tb_pd_dereg_end(struct tb_pd *pd, struct tb_mr *mr)
{
	void *priv = mr->priv;

	TB_WARN_ON(READ_ONCE(mr->tx_refs));
	memset(mr, 0, sizeof(*mr));
	tb_lock(&pd->lock);
	mr->next_free = pd->free;
	pd->free = (u32)(mr - pd->mrs) + 1;
	tb_unlock(&pd->lock);
	return priv;
}

int tb_pd_dereg_mr(struct tb_pd *pd, u64 key, void **priv)
{
	struct tb_mr *mr = tb_pd_dereg_begin(pd, key);
	void *p;

	if (!mr)
		return -ENOENT;
	/* Unacked frames sent from it get copies before the memory goes. */
	tb_engine_detach_mr(pd->e, mr);
	p = tb_pd_dereg_end(pd, mr);
	if (priv)
		*priv = p;
	return 0;
}

u8 *tb_mr_access(struct tb_ctx *ctx, struct tb_mr_hint *hint, u64 key,
		 u64 addr, u64 len, u32 access, u8 *status)
{
	struct tb_mr *mr;

	return tb_mr_access_mr(ctx, hint, key, addr, len, access, status, &mr);
}

/* The region of key: the hint's if still good, else looked up and hinted. */
static struct tb_mr *tb_mr_hinted(struct tb_pd *pd, struct tb_mr_hint *hint,
				  u64 key)
{
	struct tb_mr *mr;
	u64 gen;

	if (hint->pd == pd && hint->key == key &&
	    hint->gen == READ_ONCE(pd->e->mr_gen))
		return hint->mr;
	tb_lock(&pd->lock);
	mr = tb_mr_find(pd, key);
	/* Before the key can go: its removal moves it under this lock. */
	gen = READ_ONCE(pd->e->mr_gen);
	tb_unlock(&pd->lock);
	/* Not a miss: a key registered later would not move mr_gen. */
	if (mr) {
		hint->pd = pd;
		hint->key = key;
		hint->gen = gen;
		hint->mr = mr;
	}
	return mr;
}

u8 *tb_mr_access_mr(struct tb_ctx *ctx, struct tb_mr_hint *hint, u64 key,
		    u64 addr, u64 len, u32 access, u8 *status,
		    struct tb_mr **out)
{
	struct tb_mr *mr = tb_mr_hinted(ctx->pd, hint, key);

	/*
	 * One status for all three, so a failure tells nothing about which.
	 * Written so that no sum can wrap around.
	 */
	if (!mr || addr < mr->iova || addr - mr->iova > mr->length ||
	    len > mr->length - (addr - mr->iova) ||
	    (mr->access & access) != access ||
	    (access & READ_ONCE(ctx->remote_denied))) {
		*status = TBRDMA_WC_REM_ACCESS_ERR;
		return NULL;
	}
	*out = mr;
	return mr->base + (addr - mr->iova);
}

u8 *tb_mr_local(struct tb_ctx *ctx, struct tb_mr_hint *hint, u64 lkey,
		u64 addr, u64 len, u32 access, struct tb_mr **mr)
{
	struct tb_mr *found = NULL;
	u8 status, *p;

	if (!lkey && ctx->cfg.allow_raw_local) {
		p = (u8 *)(uintptr_t)addr;
	} else {
		p = tb_mr_access_mr(ctx, hint, lkey, addr, len, access,
				    &status, &found);
	}
	if (mr)
		*mr = found;
	return p;
}

int tb_mr_register(struct tb_ctx *ctx, u64 iova, u64 length, u32 access,
		   void *base, void *priv, u64 *key)
{
	return tb_pd_reg_mr(ctx->pd, iova, length, access, base, priv, key);
}

int tb_mr_deregister(struct tb_ctx *ctx, u64 key, void **priv)
{
	return tb_pd_dereg_mr(ctx->pd, key, priv);
}
