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

u32 tb_random_u32(void)
{
	u32 v = 0;

	/* getrandom() never fails for 4 bytes once the pool is ready. */
	while (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v))
		;
	return v;
}

u64 tb_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (u64)ts.tv_sec * 1000000000ull + (u64)ts.tv_nsec;
}
