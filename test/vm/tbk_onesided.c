// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * tbk_onesided: true one-sided RDMA through tbrdma.ko. The target process
 * registers memory, publishes {ctx_id, secret, address, key} through a pipe and
 * then sleeps (sleep(), no call into the device at all) while another
 * process WRITEs (inline and from a region, 1 B to 64 KiB), READs, and
 * runs every ATOMIC at both widths (add, and, or, xor, swap, cswap that
 * matches and one that does not, and a chain of fetch-adds) on its memory,
 * plus a SEND into its receive ring and a FLUSH. Every operation must
 * complete, with the right fetched values, before the target wakes up.
 * After waking, the target checks its memory and its receive ring.
 *
 *   tbk_onesided [-l LINK] [-s SLEEP_SECONDS]
 *
 * Prints "onesided: PASS: ..." (exit 0) or "onesided: FAIL: ..." (exit 1).
 */
#define _GNU_SOURCE
#include "tbk_util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define REGION (128u * 1024)
#define OFF_INLINE 0u		/* inline WRITE, 100 bytes */
#define OFF_SMALL 256u		/* WRITE of 1 byte */
#define OFF_PAGE 4096u		/* WRITE of 4096 bytes, then READ back */
#define OFF_READ 8192u		/* prefilled by the target, READ by the initiator */
#define OFF_ATOMIC 16384u	/* 64-bit slots, then 32-bit slots */
#define OFF_BIG (64u * 1024)	/* WRITE of 64 KiB */
#define NSLOT 8
#define FADD_CHAIN 16

struct info {
	uint32_t ctx_id;
	uint64_t secret, key;
	uint64_t addr;
};

struct report {
	double t_first_post, t_done;
	uint32_t ops, atomics;
	char error[200];
};

static void pattern(uint8_t *p, uint32_t len, uint8_t seed)
{
	for (uint32_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed + i * 7 + (i >> 8));
}

/* Initial values of the atomic slots. */
static uint64_t init64(int i) { return 0x0123456789abcdefull * (uint64_t)(i + 1) ^ 0xf0f0f0f00f0f0f0full; }
static uint32_t init32(int i) { return 0x89abcdefu * (uint32_t)(i + 3) ^ 0x0ff0f00fu; }

/* Operand of op i at width w, and what the slot holds afterwards. */
static const uint8_t aops[NSLOT] = {
	TBRDMA_ATOMIC_ADD, TBRDMA_ATOMIC_AND, TBRDMA_ATOMIC_OR, TBRDMA_ATOMIC_XOR,
	TBRDMA_ATOMIC_SWAP, TBRDMA_ATOMIC_CSWAP, TBRDMA_ATOMIC_CSWAP, TBRDMA_ATOMIC_ADD,
};
static const char *const aop_names[NSLOT] = {
	"add", "and", "or", "xor", "swap", "cswap(match)", "cswap(miss)", "fadd-chain",
};

static uint64_t operand(int i, int w)
{
	uint64_t v = 0x5a5a00ff33cc1234ull + (uint64_t)i * 0x1111111111ull;

	return w == 4 ? (uint32_t)v : v;
}

static uint64_t compare_of(int i, int w)
{
	uint64_t init = w == 4 ? init32(i) : init64(i);

	return i == 6 ? ~init & (w == 4 ? 0xffffffffull : ~0ull) : init;
}

static uint64_t after(int i, int w)
{
	uint64_t mask = w == 4 ? 0xffffffffull : ~0ull;
	uint64_t old = w == 4 ? init32(i) : init64(i), x = operand(i, w);

	switch (i) {
	case 0: return (old + x) & mask;
	case 1: return old & x;
	case 2: return old | x;
	case 3: return old ^ x;
	case 4: return x;
	case 5: return x;		/* compare matched */
	case 6: return old;		/* compare missed */
	case 7: return (old + FADD_CHAIN * x) & mask;
	}
	return 0;
}

static int fail(struct report *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct report *r, const char *fmt, ...)
{
	va_list ap;

	if (!r->error[0]) {
		va_start(ap, fmt);
		vsnprintf(r->error, sizeof(r->error), fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* Waits for n completions with wr_ids base..base+n-1 in order. */
static int reap(struct tbk_ctx *c, struct report *r, uint64_t base, int n, uint64_t *results)
{
	struct tbrdma_cqe cqe;

	for (int i = 0; i < n; i++) {
		if (!tbk_cq_wait(c, &cqe, 20000))
			return fail(r, "no completion for wr_id %llu in 20 s",
				    (unsigned long long)(base + i));
		if (cqe.status != TBRDMA_WC_SUCCESS)
			return fail(r, "wr_id %llu completed with %s",
				    (unsigned long long)cqe.wr_id, tbk_status_name(cqe.status));
		if (cqe.wr_id != base + i)
			return fail(r, "completion out of order: wr_id %llu, expected %llu",
				    (unsigned long long)cqe.wr_id, (unsigned long long)(base + i));
		if (results)
			results[i] = cqe.result;
	}
	return 0;
}

static int initiator_ops(struct tbk_ctx *c, uint32_t link, const struct info *t,
			 uint8_t *local, uint64_t lkey, struct report *r)
{
	struct tbrdma_sqe s;
	uint64_t res[64];
	int ep, ret, n;

	ep = tbk_ep(c, link, t->ctx_id, t->secret);
	if (ep < 0)
		return fail(r, "CREATE_EP: %s", strerror(-ep));
	r->t_first_post = tbk_now();

#define POST() do { \
		if ((ret = tbk_post(c, &s, NULL, NULL, 20000))) \
			return fail(r, "post (op %u): %s", r->ops, strerror(-ret)); \
		r->ops++; \
	} while (0)

	/* Puts: inline, 1 byte, one page, 64 KiB. */
	tbk_sqe_rw(&s, TBRDMA_OP_WRITE, (uint32_t)ep, 1, NULL, 0, 100,
		   t->addr + OFF_INLINE, t->key);
	s.flags = TBRDMA_SQE_INLINE;
	pattern(s.inline_data, 100, 11);
	POST();
	pattern(local, 1, 22);
	tbk_sqe_rw(&s, TBRDMA_OP_WRITE, (uint32_t)ep, 2, local, lkey, 1,
		   t->addr + OFF_SMALL, t->key);
	POST();
	pattern(local + 4096, 4096, 33);
	tbk_sqe_rw(&s, TBRDMA_OP_WRITE, (uint32_t)ep, 3, local + 4096, lkey, 4096,
		   t->addr + OFF_PAGE, t->key);
	POST();
	pattern(local + OFF_BIG, 65536, 44);
	tbk_sqe_rw(&s, TBRDMA_OP_WRITE, (uint32_t)ep, 4, local + OFF_BIG, lkey, 65536,
		   t->addr + OFF_BIG, t->key);
	POST();
	if (reap(c, r, 1, 4, NULL))
		return -1;

	/* Gets: what the target prefilled, and a page we just wrote. */
	memset(local + 8192, 0, 8192);
	tbk_sqe_rw(&s, TBRDMA_OP_READ, (uint32_t)ep, 5, local + 8192, lkey, 4096,
		   t->addr + OFF_READ, t->key);
	POST();
	tbk_sqe_rw(&s, TBRDMA_OP_READ, (uint32_t)ep, 6, local + 12288, lkey, 4096,
		   t->addr + OFF_PAGE, t->key);
	POST();
	if (reap(c, r, 5, 2, NULL))
		return -1;
	pattern(local + 16384, 4096, 55);
	if (memcmp(local + 8192, local + 16384, 4096))
		return fail(r, "READ of the target's prefilled page returned other data");
	if (memcmp(local + 12288, local + 4096, 4096))
		return fail(r, "READ after WRITE returned other data");

	/* Atomics: every op at both widths, on their own slots. */
	for (int w = 8; w >= 4; w -= 4) {
		uint64_t base = t->addr + OFF_ATOMIC + (w == 4 ? NSLOT * 8 : 0);
		uint64_t wr = w == 8 ? 100 : 200;

		n = 0;
		for (int i = 0; i < NSLOT - 1; i++) {
			tbk_sqe_atomic(&s, (uint32_t)ep, wr + n, aops[i], (uint8_t)w,
				       base + (uint64_t)i * w, t->key, operand(i, w),
				       compare_of(i, w));
			POST();
			n++;
		}
		for (int k = 0; k < FADD_CHAIN; k++) {
			tbk_sqe_atomic(&s, (uint32_t)ep, wr + n, TBRDMA_ATOMIC_ADD, (uint8_t)w,
				       base + 7ull * w, t->key, operand(7, w), 0);
			POST();
			n++;
		}
		if (reap(c, r, wr, n, res))
			return -1;
		r->atomics += (uint32_t)n;
		for (int i = 0; i < NSLOT - 1; i++) {
			uint64_t want = w == 4 ? init32(i) : init64(i);

			if (res[i] != want)
				return fail(r, "%d-bit %s fetched 0x%llx, expected 0x%llx", w * 8,
					    aop_names[i], (unsigned long long)res[i],
					    (unsigned long long)want);
		}
		for (int k = 0; k < FADD_CHAIN; k++) {
			uint64_t mask = w == 4 ? 0xffffffffull : ~0ull;
			uint64_t want = ((w == 4 ? init32(7) : init64(7)) +
					 (uint64_t)k * operand(7, w)) & mask;

			if (res[NSLOT - 1 + k] != want)
				return fail(r, "%d-bit fetch-add %d of the chain fetched 0x%llx, expected 0x%llx",
					    w * 8, k, (unsigned long long)res[NSLOT - 1 + k],
					    (unsigned long long)want);
		}
		/* READ the slots back: the initiator's view of the result. */
		tbk_sqe_rw(&s, TBRDMA_OP_READ, (uint32_t)ep, wr + 99, local + 20480 + (w == 4 ? 64 : 0),
			   lkey, NSLOT * (uint32_t)w, base, t->key);
		POST();
		if (reap(c, r, wr + 99, 1, NULL))
			return -1;
		for (int i = 0; i < NSLOT; i++) {
			uint64_t got;

			if (w == 4) {
				uint32_t v;

				memcpy(&v, local + 20480 + 64 + i * 4, 4);
				got = v;
			} else {
				memcpy(&got, local + 20480 + i * 8, 8);
			}
			if (got != after(i, w))
				return fail(r, "%d-bit %s: slot reads 0x%llx, expected 0x%llx", w * 8,
					    aop_names[i], (unsigned long long)got,
					    (unsigned long long)after(i, w));
		}
	}

	/* A SEND into the sleeping target's receive ring, then FLUSH. */
	tbk_sqe_rw(&s, TBRDMA_OP_SEND, (uint32_t)ep, 300, NULL, 0, 32, 0, 0);
	s.flags = TBRDMA_SQE_INLINE;
	s.am_id = 7;
	s.imm = 0x1234567890abcdefull;
	pattern(s.inline_data, 32, 66);
	POST();
	tbk_sqe_rw(&s, TBRDMA_OP_FLUSH, (uint32_t)ep, 301, NULL, 0, 0, 0, 0);
	POST();
	if (reap(c, r, 300, 2, NULL))
		return -1;
	r->t_done = tbk_now();
	return 0;
#undef POST
}

static int check_target(const uint8_t *m, const struct tbk_ctx *c, char *err, size_t errlen)
{
	uint8_t want[65536];
	const struct tbrdma_rqe *rqe;

	pattern(want, 100, 11);
	if (memcmp(m + OFF_INLINE, want, 100))
		return snprintf(err, errlen, "inline WRITE not in target memory"), -1;
	pattern(want, 1, 22);
	if (m[OFF_SMALL] != want[0] || m[OFF_SMALL + 1] != 0 || m[OFF_SMALL - 1] != 0)
		return snprintf(err, errlen, "1-byte WRITE wrong or spilled"), -1;
	pattern(want, 4096, 33);
	if (memcmp(m + OFF_PAGE, want, 4096))
		return snprintf(err, errlen, "4 KiB WRITE not in target memory"), -1;
	pattern(want, 65536, 44);
	if (memcmp(m + OFF_BIG, want, 65536))
		return snprintf(err, errlen, "64 KiB WRITE not in target memory"), -1;
	pattern(want, 4096, 55);
	if (memcmp(m + OFF_READ, want, 4096))
		return snprintf(err, errlen, "READ source page changed"), -1;
	for (int w = 8; w >= 4; w -= 4)
		for (int i = 0; i < NSLOT; i++) {
			const uint8_t *p = m + OFF_ATOMIC + (w == 4 ? NSLOT * 8 : 0) + i * w;
			uint64_t got;

			if (w == 4) {
				uint32_t v;

				memcpy(&v, p, 4);
				got = v;
			} else {
				memcpy(&got, p, 8);
			}
			if (got != after(i, w))
				return snprintf(err, errlen, "target sees %d-bit %s slot 0x%llx, expected 0x%llx",
						w * 8, aop_names[i], (unsigned long long)got,
						(unsigned long long)after(i, w)), -1;
		}
	/* Untouched bytes around the atomics stay zero. */
	for (uint32_t i = OFF_ATOMIC + NSLOT * 12; i < OFF_BIG; i++)
		if (m[i])
			return snprintf(err, errlen, "byte at offset %u changed", i), -1;
	if (__atomic_load_n(&c->rqc->producer, __ATOMIC_ACQUIRE) != 1)
		return snprintf(err, errlen, "receive ring holds %u messages, expected 1",
				c->rqc->producer), -1;
	rqe = (const struct tbrdma_rqe *)c->rq;
	pattern(want, 32, 66);
	if (rqe->am_id != 7 || rqe->length != 32 || rqe->imm != 0x1234567890abcdefull ||
	    memcmp(rqe + 1, want, 32))
		return snprintf(err, errlen, "SEND arrived wrong (am_id %u, length %u)",
				rqe->am_id, rqe->length), -1;
	return 0;
}

int main(int argc, char **argv)
{
	int p2c[2], c2p[2], opt, fd, ret, status;
	uint32_t link = 0;
	uint64_t key;
	unsigned int nap = 2;
	double t_sleep, t_wake;
	struct report rep;
	struct info info;
	struct tbk_ctx c;
	char err[256] = "";
	uint8_t *mem;
	pid_t pid;

	tbk_prog = "tbk_onesided";
	while ((opt = getopt(argc, argv, "l:s:")) != -1) {
		switch (opt) {
		case 'l': link = (uint32_t)atoi(optarg); break;
		case 's': nap = (unsigned int)atoi(optarg); break;
		default:
			fprintf(stderr, "usage: %s [-l LINK] [-s SLEEP_SECONDS]\n", argv[0]);
			return 2;
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (pipe(p2c) || pipe(c2p))
		tbk_die_errno("pipe");
	pid = fork();
	if (pid < 0)
		tbk_die_errno("fork");
	if (!pid) {
		/* The initiator: set up first, then wait for the target's region. */
		uint8_t *local = mmap(NULL, REGION, PROT_READ | PROT_WRITE,
				      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		uint64_t lkey;
		char ready = 'r';

		tbk_prog = "tbk_onesided(initiator)";
		close(p2c[1]);
		close(c2p[0]);
		memset(&rep, 0, sizeof(rep));
		if (local == MAP_FAILED)
			tbk_die_errno("mmap");
		fd = tbk_open();
		if ((ret = tbk_ctx_create(fd, &c, 64, 64, 4)))
			tbk_die("CREATE_QUEUES: %s", strerror(-ret));
		if ((ret = tbk_reg(fd, local, REGION, TBRDMA_ACCESS_LOCAL, &lkey)))
			tbk_die("REG_MR: %s", strerror(-ret));
		tbk_write_all(c2p[1], &ready, 1);
		if (!tbk_read_all(p2c[0], &info, sizeof(info)))
			tbk_die("target went away");
		initiator_ops(&c, link, &info, local, lkey, &rep);
		tbk_write_all(c2p[1], &rep, sizeof(rep));
		_exit(0);
	}
	close(p2c[0]);
	close(c2p[1]);

	/* The target. */
	mem = mmap(NULL, REGION, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		tbk_die_errno("mmap");
	memset(mem, 0, REGION);
	pattern(mem + OFF_READ, 4096, 55);
	for (int i = 0; i < NSLOT; i++) {
		uint64_t v64 = init64(i);
		uint32_t v32 = init32(i);

		memcpy(mem + OFF_ATOMIC + i * 8, &v64, 8);
		memcpy(mem + OFF_ATOMIC + NSLOT * 8 + i * 4, &v32, 4);
	}
	fd = tbk_open();
	if ((ret = tbk_ctx_create(fd, &c, 4, 4, 4)))
		tbk_die("CREATE_QUEUES: %s", strerror(-ret));
	if ((ret = tbk_reg(fd, mem, REGION, TBRDMA_ACCESS_REMOTE_READ | TBRDMA_ACCESS_REMOTE_WRITE |
			   TBRDMA_ACCESS_REMOTE_ATOMIC, &key)))
		tbk_die("REG_MR: %s", strerror(-ret));
	{
		char ready;

		if (!tbk_read_all(c2p[0], &ready, 1))
			tbk_die("initiator failed during its set-up");
	}
	info.ctx_id = c.ctx_id;
	info.secret = c.secret;
	info.key = key;
	info.addr = (uintptr_t)mem;
	tbk_write_all(p2c[1], &info, sizeof(info));
	/* Asleep: no ioctl, no poll, nothing on the device until we wake. */
	t_sleep = tbk_now();
	while (tbk_now() - t_sleep < nap)
		sleep(1);
	t_wake = tbk_now();

	memset(&rep, 0, sizeof(rep));
	if (!tbk_read_all(c2p[0], &rep, sizeof(rep)))
		snprintf(rep.error, sizeof(rep.error), "initiator died without a report");
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
		snprintf(rep.error + strlen(rep.error), sizeof(rep.error) - strlen(rep.error),
			 " (initiator exit status 0x%x)", status);
	if (!rep.error[0] && rep.t_done > t_wake)
		snprintf(rep.error, sizeof(rep.error),
			 "the operations completed %.3f s after the target woke up: not shown one-sided "
			 "(host too slow? try -s with more seconds)", rep.t_done - t_wake);
	if (!rep.error[0] && check_target(mem, &c, err, sizeof(err)))
		snprintf(rep.error, sizeof(rep.error), "after waking: %s", err);
	if (rep.error[0]) {
		printf("onesided: FAIL: %s\n", rep.error);
		return 1;
	}
	printf("onesided: PASS: target asleep %.2f s with no call into the device; meanwhile "
	       "%u operations completed in %.1f ms (%.2f s before it woke): "
	       "4 WRITEs (inline 100 B, 1 B, 4 KiB, 64 KiB), 4 READs, %u ATOMICs "
	       "(add, and, or, xor, swap, cswap match/miss, 16 chained fetch-adds; 32- and 64-bit), "
	       "SEND into its RQ, FLUSH; fetched values and target memory verified after waking\n",
	       t_wake - t_sleep, rep.ops, (rep.t_done - rep.t_first_post) * 1e3,
	       t_wake - rep.t_done, rep.atomics);
	return 0;
}
