// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * tbk_memlock: REG_MR against RLIMIT_MEMLOCK.
 *
 *   tbk_memlock          as a user without CAP_IPC_LOCK (e.g. under
 *                        setpriv --reuid=nobody, with ulimit -l 256):
 *                        regions up to the limit register, the next one
 *                        fails with ENOMEM (EPERM accepted), the limit is
 *                        per process across files, pages are counted
 *                        whole, and close() releases everything
 *   tbk_memlock -c       with CAP_IPC_LOCK: registering past the limit works
 *
 * Prints "memlock: PASS: ..." (exit 0) or "memlock: FAIL: ..." (exit 1).
 */
#define _GNU_SOURCE
#include "tbk_util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#define CHUNK (16u << 10)

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail(const char *fmt, ...)
{
	va_list ap;

	printf("memlock: FAIL: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf(" (VmPin %ld kB)\n", tbk_vmpin_kb());
	exit(1);
}

/* WRITE from one region of fd into another, through a context of fd. */
static void transfer(int fd, uint8_t *src, uint64_t skey, uint8_t *dst, uint64_t dkey, uint32_t len)
{
	struct tbrdma_sqe s;
	struct tbrdma_cqe cqe;
	struct tbk_ctx c;
	int ep, ret;

	if ((ret = tbk_ctx_create(fd, &c, 4, 4, 2)))
		fail("CREATE_QUEUES: %s", strerror(-ret));
	if ((ep = tbk_ep(&c, 0, c.ctx_id, c.secret)) < 0)
		fail("CREATE_EP: %s", strerror(-ep));
	memset(src, 0xa5, len);
	memset(dst, 0, len);
	tbk_sqe_rw(&s, TBRDMA_OP_WRITE, (uint32_t)ep, 9, src, skey, len, (uintptr_t)dst, dkey);
	if ((ret = tbk_post(&c, &s, NULL, NULL, 10000)))
		fail("post: %s", strerror(-ret));
	if (!tbk_cq_wait(&c, &cqe, 20000) || cqe.status)
		fail("WRITE between two regions registered under the limit did not complete well");
	if (memcmp(src, dst, len))
		fail("WRITE between two regions: data differs");
	/* Its rings were charged too, until destroyed and unmapped. */
	tbk_ctx_unmap(&c);
	if ((ret = tbk_ioctl(fd, TBRDMA_IOC_DESTROY_QUEUES,
			     &(struct tbrdma_destroy_queues){ .ctx = c.ctx })))
		fail("DESTROY_QUEUES: %s", strerror(-ret));
}

int main(int argc, char **argv)
{
	int capable_mode = argc > 1 && !strcmp(argv[1], "-c");
	struct rlimit rl;
	uint64_t keys[4096], key;
	unsigned int n = 0, max;
	long limit_kb, pin;
	uint8_t *buf;
	size_t buflen;
	int fd, fd2, ret, first_err;

	tbk_prog = "tbk_memlock";
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (getrlimit(RLIMIT_MEMLOCK, &rl))
		tbk_die_errno("getrlimit");
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (64u << 20) || rl.rlim_cur < 2 * CHUNK)
		fail("run with a small RLIMIT_MEMLOCK (ulimit -l 256), not %llu bytes",
		     (unsigned long long)rl.rlim_cur);
	limit_kb = (long)(rl.rlim_cur / 1024);
	max = (unsigned int)(rl.rlim_cur / CHUNK);
	buflen = (size_t)(max + 8) * CHUNK;
	buf = mmap(NULL, buflen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED)
		tbk_die_errno("mmap");
	memset(buf, 1, buflen);
	if ((pin = tbk_vmpin_kb()) != 0)
		fail("VmPin is %ld kB before anything was registered", pin);

	fd = tbk_open();
	if (capable_mode) {
		/* CAP_IPC_LOCK: the limit does not apply (as for RDMA drivers). */
		ret = tbk_reg(fd, buf, buflen, TBRDMA_ACCESS_ALL, &key);
		if (ret)
			fail("with CAP_IPC_LOCK, %zu kB past a %ld kB limit: %s", buflen / 1024,
			     limit_kb, strerror(-ret));
		if (tbk_vmpin_kb() != (long)(buflen / 1024))
			fail("VmPin does not count the %zu kB region", buflen / 1024);
		close(fd);
		if ((pin = tbk_vmpin_kb()) != 0)
			fail("VmPin %ld kB after close", pin);
		printf("memlock: PASS: with CAP_IPC_LOCK a %zu kB region registers past RLIMIT_MEMLOCK %ld kB "
		       "(VmPin counted it), and close released it\n", buflen / 1024, limit_kb);
		return 0;
	}

	/* Up to the limit, in 16 kB regions, then one more. */
	for (;;) {
		ret = tbk_reg(fd, buf + (size_t)n * CHUNK, CHUNK, TBRDMA_ACCESS_ALL, &keys[n]);
		if (ret)
			break;
		if (++n > max)
			fail("region %u registered: %u kB is past the limit of %ld kB", n,
			     n * CHUNK / 1024, limit_kb);
	}
	if (ret != -ENOMEM && ret != -EPERM)
		fail("REG_MR past the limit failed with %s, expected ENOMEM or EPERM", strerror(-ret));
	first_err = -ret;
	if (n != max)
		fail("only %u regions of %u kB registered under a limit of %ld kB", n, CHUNK / 1024, limit_kb);
	if ((pin = tbk_vmpin_kb()) != limit_kb)
		fail("VmPin %ld kB with the limit of %ld kB registered", pin, limit_kb);
	printf("memlock: %u regions of %u kB registered (VmPin %ld kB = RLIMIT_MEMLOCK), the next failed: %s\n",
	       n, CHUNK / 1024, pin, strerror(-ret));

	/* The limit is the process's, not the file's. */
	fd2 = tbk_open();
	ret = tbk_reg(fd2, buf + (size_t)max * CHUNK, 4096, TBRDMA_ACCESS_ALL, &key);
	if (ret != -ENOMEM && ret != -EPERM)
		fail("a second file registered past the process's limit (%s)", ret ? strerror(-ret) : "success");

	/* Whole pages count: 2 bytes across a page boundary are 2 pages. */
	if ((ret = tbk_dereg(fd, keys[--n])))
		fail("DEREG_MR: %s", strerror(-ret));
	if ((pin = tbk_vmpin_kb()) != limit_kb - CHUNK / 1024)
		fail("VmPin %ld kB after DEREG_MR of %u kB", pin, CHUNK / 1024);
	ret = tbk_reg(fd2, buf + (size_t)max * CHUNK + 4095, 2, TBRDMA_ACCESS_ALL, &key);
	if (ret)
		fail("2-byte region with room for it: %s", strerror(-ret));
	if ((pin = tbk_vmpin_kb()) != limit_kb - CHUNK / 1024 + 8)
		fail("2 bytes across a page boundary count %ld kB, expected 8 kB",
		     pin - (limit_kb - CHUNK / 1024));
	/* A region as big as the limit does not fit on top. */
	ret = tbk_reg(fd2, buf, rl.rlim_cur, TBRDMA_ACCESS_ALL, &key);
	if (ret != -ENOMEM && ret != -EPERM)
		fail("a region of the whole limit on top of others: %s", ret ? strerror(-ret) : "success");
	if ((pin = tbk_vmpin_kb()) != limit_kb - CHUNK / 1024 + 8)
		fail("a refused REG_MR left VmPin at %ld kB", pin);

	/* What was registered before works, given room for the context's rings. */
	for (int k = 0; k < 2; k++)
		if ((ret = tbk_dereg(fd, keys[--n])))
			fail("DEREG_MR: %s", strerror(-ret));
	transfer(fd, buf, keys[0], buf + CHUNK, keys[1], CHUNK);
	if ((pin = tbk_vmpin_kb()) != limit_kb - 3 * CHUNK / 1024 + 8)
		fail("VmPin %ld kB after a context came and went", pin);

	/* close() releases everything, with no DEREG_MR. */
	close(fd2);
	if ((pin = tbk_vmpin_kb()) != limit_kb - 3 * CHUNK / 1024)
		fail("closing the second file left VmPin at %ld kB", pin);
	close(fd);
	if ((pin = tbk_vmpin_kb()) != 0)
		fail("closing the file with %u regions registered left VmPin at %ld kB", n, pin);

	/* And the whole limit is available again. */
	fd = tbk_open();
	if ((ret = tbk_reg(fd, buf, rl.rlim_cur, TBRDMA_ACCESS_ALL, &key)))
		fail("after close, a region of the whole limit: %s", strerror(-ret));
	close(fd);
	printf("memlock: PASS: uid %d without CAP_IPC_LOCK, RLIMIT_MEMLOCK %ld kB: %u x %u kB registered, "
	       "the next one refused with %s, the limit holds across files and counts whole pages, "
	       "registered regions still move data, close() with no DEREG_MR brings VmPin back to 0\n",
	       (int)getuid(), limit_kb, max, CHUNK / 1024, strerrorname_np(first_err));
	return 0;
}
