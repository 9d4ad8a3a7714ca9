// SPDX-License-Identifier: GPL-2.0
/*
 * SQ polling: while the module's poll thread is busy, a context that set
 * sq_poll in its SQ gets its SQEs taken without a doorbell.
 *
 *   tbk_sqpoll [-l LINK] [-n WRITES]
 *
 * One process, three contexts of one file: A posts WRITEs over LINK into a
 * region of target context T, following the protocol of tbrdma_abi.h
 * (producer, full barrier, sq_polled: a doorbell only when it is 0).
 * Checks: every WRITE completes and lands; a malformed SQE handed over
 * without a doorbell completes with TBRDMA_WC_REFUSED and its wr_id; a
 * context that did not set sq_poll is never polled (its SQE waits for its
 * doorbell); the poll rounds stamp sq_polled_at. Prints how many SQEs
 * needed a doorbell: that is timing (the thread stops polling when it
 * gives its CPU away), and not checked.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>

#include "tbk_util.h"

#define CHUNK 64
/*
 * A WRITE this large is more than the poster carries on a loop cable
 * (8 windows): it hands the rest to the poll thread, which gets busy.
 */
#define KICK (4u << 20)
/*
 * Fewer than an endpoint may have outstanding (its context's 64 SQ
 * entries): a doorbell never finds the endpoint full and fails EAGAIN.
 */
#define SQ_ENTRIES 64
#define IN_FLIGHT 48
#define BAD_WR_ID 0xbadbadull

static unsigned int doorbells, kicks, done;
static bool bad_seen;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail(const char *fmt, ...)
{
	va_list ap;

	printf("sqpoll: FAIL: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	exit(1);
}

static uint32_t load(const uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

/*
 * Hands one SQE over as the device library does: a doorbell only if
 * unpolled. Returns whether it rang.
 */
static bool hand_over(struct tbk_ctx *c, const struct tbrdma_sqe *s, uint32_t flags)
{
	struct tbrdma_doorbell db = { 0 };
	int ret;

	c->sq[c->sq_prod & c->sq_mask] = *s;
	c->sq_prod++;
	c->posted++;
	__atomic_store_n(&c->sqc->producer, c->sq_prod, __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (load(&c->sqc->sq_polled) == 1)
		return false;
	db.ctx = c->ctx;
	db.sq_producer = c->sq_prod;
	db.flags = flags;
	ret = tbk_ioctl(c->fd, TBRDMA_IOC_DOORBELL, &db);
	if (ret)
		fail("DOORBELL: %s", strerror(-ret));
	doorbells++;
	return true;
}

static void reap_one(struct tbk_ctx *c)
{
	struct tbrdma_cqe cqe;

	if (!tbk_cq_wait(c, &cqe, 10000))
		fail("no completion in 10 s (%u of %u outstanding)", c->posted - c->completed, c->posted);
	if (cqe.wr_id == BAD_WR_ID) {
		if (cqe.status != TBRDMA_WC_REFUSED)
			fail("the malformed SQE completed with %s, not REFUSED", tbk_status_name(cqe.status));
		bad_seen = true;
	} else if (cqe.status) {
		fail("WRITE %llu completed with %s", (unsigned long long)cqe.wr_id,
		     tbk_status_name(cqe.status));
	} else {
		done++;
	}
}

/* With nothing in flight: posts large WRITEs until the poll thread polls the SQs. */
static void until_polled(struct tbk_ctx *c, const struct tbrdma_sqe *kick)
{
	double end = tbk_now() + 10;
	struct tbrdma_cqe cqe;

	while (load(&c->sqc->sq_polled) != 1) {
		if (tbk_now() > end)
			fail("the poll thread did not poll the SQs in 10 s");
		if (tbk_post(c, kick, NULL, NULL, 10000) || !tbk_cq_wait(c, &cqe, 10000) || cqe.status)
			fail("a WRITE to wake the poll thread failed");
		kicks++;
	}
}

/* Whether a stamp is fresh by this process's CLOCK_MONOTONIC, as the device library reads it. */
static bool stamp_fresh(uint32_t stamp)
{
	struct timespec ts;
	uint64_t now;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	return tbrdma_sq_polled_fresh((uint32_t)(now >> TBRDMA_SQ_POLLED_SHIFT), stamp);
}

/*
 * Each poll round stamps sq_polled_at: seen polled, the stamp moves on
 * while the flag stays set, and a new one reads as fresh by this
 * process's clock (the same clock and units as the kernel's). Returns the
 * tries it took (the thread may stop polling, or this process lose its
 * CPU, between the two reads).
 */
static unsigned int stamp_moves(struct tbk_ctx *c, const struct tbrdma_sqe *kick)
{
	unsigned int tries;

	for (tries = 1; tries <= 100; tries++) {
		uint32_t first, stamp;
		double end;

		until_polled(c, kick);
		first = load(&c->sqc->sq_polled_at);
		for (end = tbk_now() + 1; tbk_now() < end && load(&c->sqc->sq_polled) == 1;) {
			stamp = load(&c->sqc->sq_polled_at);
			if (stamp == first)
				continue;
			if (stamp_fresh(stamp))
				return tries;
			break;
		}
	}
	fail("in 100 tries sq_polled_at never moved and read as fresh while the SQ was polled");
}

int main(int argc, char **argv)
{
	unsigned int n = 2000, i;
	struct tbk_ctx a, t, quiet;
	struct tbrdma_sqe s, kick, bad = { .opcode = 99, .wr_id = BAD_WR_ID };
	struct tbrdma_cqe cqe;
	uint64_t lkey, rkey;
	uint8_t *src, *dst;
	bool quiet_bad = false;
	unsigned int tries, stamp_tries;
	size_t len;
	uint32_t link = 0;
	int fd, ep, qep, ret, opt;
	double end;

	tbk_prog = "tbk_sqpoll";
	while ((opt = getopt(argc, argv, "l:n:")) != -1) {
		switch (opt) {
		case 'l': link = (uint32_t)atoi(optarg); break;
		case 'n': n = (unsigned int)atoi(optarg); break;
		default:
			fprintf(stderr, "usage: %s [-l LINK] [-n WRITES]\n", argv[0]);
			return 2;
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	len = (size_t)n * CHUNK > KICK ? (size_t)n * CHUNK : KICK;
	src = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	dst = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (src == MAP_FAILED || dst == MAP_FAILED)
		tbk_die_errno("mmap");
	for (i = 0; i < len; i++)
		src[i] = (uint8_t)(i * 7 + i / 251);
	fd = tbk_open();
	if ((ret = tbk_ctx_create(fd, &a, SQ_ENTRIES, 256, 4)) || (ret = tbk_ctx_create(fd, &t, 4, 4, 4)) ||
	    (ret = tbk_ctx_create(fd, &quiet, 4, 4, 4)))
		tbk_die("CREATE_QUEUES: %s", strerror(-ret));
	if ((ret = tbk_reg(fd, src, len, TBRDMA_ACCESS_LOCAL, &lkey)) ||
	    (ret = tbk_reg(fd, dst, len, TBRDMA_ACCESS_REMOTE_WRITE, &rkey)))
		tbk_die("REG_MR: %s", strerror(-ret));
	ep = tbk_ep(&a, link, t.ctx_id, t.secret);
	qep = tbk_ep(&quiet, link, t.ctx_id, t.secret);
	if (ep < 0 || qep < 0)
		tbk_die("CREATE_EP: %s", strerror(-(ep < 0 ? ep : qep)));
	a.sqc->sq_poll = 1;
	bad.ep = (uint32_t)ep;
	/* Up to n * CHUNK, the same bytes as the n WRITEs put there. */
	tbk_sqe_rw(&kick, TBRDMA_OP_WRITE, (uint32_t)ep, 0, src, lkey, KICK, (uintptr_t)dst, rkey);

	/* n WRITEs, a doorbell only when the SQ is not polled. */
	until_polled(&a, &kick);
	for (i = 0; i < n;) {
		if (a.sq_prod - load(&a.sqc->consumer) > a.sq_mask ||
		    a.posted - a.completed >= IN_FLIGHT) {
			reap_one(&a);
			continue;
		}
		tbk_sqe_rw(&s, TBRDMA_OP_WRITE, (uint32_t)ep, i + 1, src + (size_t)i * CHUNK, lkey,
			   CHUNK, (uintptr_t)dst + (size_t)i * CHUNK, rkey);
		hand_over(&a, &s, 0);
		i++;
	}
	while (a.completed < a.posted)
		reap_one(&a);
	if (done != n)
		fail("%u of %u WRITEs completed", done, n);

	/*
	 * A malformed SQE completes REFUSED either way (taken by the thread,
	 * or by an ASYNC doorbell); until one went without a doorbell, which
	 * only the poll thread can have taken.
	 */
	for (tries = 1; !quiet_bad; tries++) {
		if (tries > 100)
			fail("in 100 tries the SQ was never polled long enough to take an SQE");
		until_polled(&a, &kick);
		bad_seen = false;
		quiet_bad = !hand_over(&a, &bad, TBRDMA_DOORBELL_ASYNC);
		reap_one(&a);
		if (!bad_seen)
			fail("the malformed SQE did not complete");
	}
	if (memcmp(src, dst, (size_t)n * CHUNK))
		fail("the target region differs from what was written");

	stamp_tries = stamp_moves(&a, &kick);

	/* A context that did not ask is not polled: its SQE waits for the doorbell. */
	until_polled(&a, &kick);
	tbk_sqe_rw(&s, TBRDMA_OP_WRITE, (uint32_t)qep, 7, src, lkey, CHUNK, (uintptr_t)dst, rkey);
	quiet.sq[quiet.sq_prod & quiet.sq_mask] = s;
	__atomic_store_n(&quiet.sqc->producer, quiet.sq_prod + 1, __ATOMIC_RELEASE);
	for (end = tbk_now() + 0.2; tbk_now() < end;)
		if (load(&quiet.sqc->consumer) != quiet.sq_prod)
			fail("the kernel took an SQE of a context that did not set sq_poll");
	ret = tbk_post(&quiet, &s, NULL, NULL, 5000);
	if (ret || !tbk_cq_wait(&quiet, &cqe, 5000) || cqe.status || cqe.wr_id != 7)
		fail("the doorbell of the context without sq_poll did not post its WRITE");

	printf("sqpoll: PASS: %u WRITEs over link %u completed and landed, %u handed over with a "
	       "doorbell (%u more to wake the poll thread); a malformed SQE handed over without one "
	       "completed REFUSED (try %u); sq_polled_at moved and read fresh while polled (try %u); an SQ "
	       "without sq_poll was left alone\n",
	       n, link, doorbells, kicks, tries - 1, stamp_tries);
	return 0;
}
