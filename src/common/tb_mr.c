// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Memory regions. A key is (generation << index bits) | index, so a lookup
 * is one array access, and a key that outlived its region (or was guessed)
 * fails the generation compare. A slot's first generation is random; each
 * registration in it takes the next, so a key does not come back before
 * its slot has been registered 2^(32 - index bits) times.
 */
#include "tb_engine_priv.h"

int tb_pd_create(struct tb_engine *e, u32 max_mr, struct tb_pd **out)
{
	struct tb_pd *pd;

	if (!max_mr || (max_mr & (max_mr - 1)) || max_mr > (1u << 20))
		return -EINVAL;
	pd = tb_zalloc(sizeof(*pd));
	if (!pd)
		return -ENOMEM;
	pd->mrs = tb_zalloc(sizeof(*pd->mrs) * max_mr);
	if (!pd->mrs) {
		tb_free(pd);
		return -ENOMEM;
	}
	pd->e = e;
	pd->max_mr = max_mr;
	pd->mr_bits = tb_log2(max_mr);
	*out = pd;
	return 0;
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
		if (pd->mrs[i].tx_refs)
			tb_engine_detach_mr(pd->e, &pd->mrs[i]);
		if (release)
			release(arg, pd->mrs[i].priv);
	}
	tb_free(pd->mrs);
	tb_free(pd);
}

int tb_pd_reg_mr(struct tb_pd *pd, u64 iova, u64 length, u32 access,
		 void *base, void *priv, u32 *key)
{
	u32 i, gen, gen_mask;
	struct tb_mr *mr = NULL;

	if (!length || !base || (access & ~(u32)TBRDMA_ACCESS_ALL) ||
	    iova + length < iova)
		return -EINVAL;
	for (i = 0; i < pd->max_mr; i++) {
		if (!pd->mrs[i].in_use) {
			mr = &pd->mrs[i];
			break;
		}
	}
	if (!mr)
		return -ENOSPC;
	gen_mask = pd->mr_bits >= 32 ? 0 : (u32)(~0u >> pd->mr_bits);
	gen = mr->key >> pd->mr_bits;
	do {
		gen = mr->key ? (gen + 1) & gen_mask : tb_random_u32() & gen_mask;
	} while (!gen);
	mr->key = (gen << pd->mr_bits) | i;
	mr->iova = iova;
	mr->length = length;
	mr->access = access;
	mr->base = base;
	mr->priv = priv;
	mr->in_use = 1;
	*key = mr->key;
	return 0;
}

static struct tb_mr *tb_mr_find(struct tb_pd *pd, u32 key)
{
	struct tb_mr *mr = &pd->mrs[key & (pd->max_mr - 1)];

	return mr->in_use && mr->key == key ? mr : NULL;
}

int tb_pd_dereg_mr(struct tb_pd *pd, u32 key, void **priv)
{
	struct tb_mr *mr = tb_mr_find(pd, key);

	if (!mr)
		return -ENOENT;
	/* Unacked frames sent from it get copies before the memory goes. */
	if (mr->tx_refs)
		tb_engine_detach_mr(pd->e, mr);
	if (priv)
		*priv = mr->priv;
	memset(mr, 0, sizeof(*mr));
	mr->key = key;	/* its generation goes on from there */
	return 0;
}

u8 *tb_mr_access(struct tb_ctx *ctx, u32 key, u64 addr, u64 len, u32 access,
		 u8 *status)
{
	struct tb_mr *mr;

	return tb_mr_access_mr(ctx, key, addr, len, access, status, &mr);
}

u8 *tb_mr_access_mr(struct tb_ctx *ctx, u32 key, u64 addr, u64 len,
		    u32 access, u8 *status, struct tb_mr **out)
{
	struct tb_mr *mr = tb_mr_find(ctx->pd, key);
	u64 off;

	if (!mr) {
		*status = TBRDMA_WC_REM_KEY_ERR;
		return NULL;
	}
	/* Written so that no sum can wrap around. */
	if (addr < mr->iova || addr - mr->iova > mr->length ||
	    len > mr->length - (addr - mr->iova)) {
		*status = TBRDMA_WC_REM_BOUNDS_ERR;
		return NULL;
	}
	if ((mr->access & access) != access) {
		*status = TBRDMA_WC_REM_ACCESS_ERR;
		return NULL;
	}
	off = addr - mr->iova;
	*out = mr;
	return mr->base + off;
}

u8 *tb_mr_local(struct tb_ctx *ctx, u32 lkey, u64 addr, u64 len,
		struct tb_mr **mr)
{
	struct tb_mr *found = NULL;
	u8 status, *p;

	if (!lkey && ctx->cfg.allow_raw_local) {
		p = (u8 *)(uintptr_t)addr;
	} else {
		p = tb_mr_access_mr(ctx, lkey, addr, len, TBRDMA_ACCESS_LOCAL,
				    &status, &found);
	}
	if (mr)
		*mr = found;
	return p;
}

int tb_mr_register(struct tb_ctx *ctx, u64 iova, u64 length, u32 access,
		   void *base, void *priv, u32 *key)
{
	return tb_pd_reg_mr(ctx->pd, iova, length, access, base, priv, key);
}

int tb_mr_deregister(struct tb_ctx *ctx, u32 key, void **priv)
{
	return tb_pd_dereg_mr(ctx->pd, key, priv);
}
