// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* Userspace side of tb_compat.h. */
#include "tb_compat.h"

#include <sys/random.h>
#include <time.h>

void *tb_zalloc(size_t size)
{
	return calloc(1, size);
}

void tb_free(void *p)
{
	free(p);
}

/* getrandom() never fails for 8 bytes or less once the pool is ready. */
static void tb_random_fill(void *buf, size_t len)
{
	while (getrandom(buf, len, 0) != (ssize_t)len)
		;
}

u32 tb_random_u32(void)
{
	u32 v;

	tb_random_fill(&v, sizeof(v));
	return v;
}

u64 tb_random_u64(void)
{
	u64 v;

	tb_random_fill(&v, sizeof(v));
	return v;
}

u64 tb_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (u64)ts.tv_sec * 1000000000ull + (u64)ts.tv_nsec;
}
