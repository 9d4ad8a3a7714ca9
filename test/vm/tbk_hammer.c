// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * tbk_hammer: four processes hammer two links at once, with a fifth that
 * keeps getting killed.
 *
 *   tbk_hammer [-s SECONDS] [-k KILLS]
 *
 * Workers 0-3 each open /dev/tbrdma, register a region with one slot per
 * worker and one 8-byte counter per worker, and make endpoints to every
 * other worker on loop0 and loop1. Then, for SECONDS, each picks a peer
 * and a link at random and does one of:
 *   - WRITE a pattern into its own slot of the peer's region (from a
 *     region it registers for this and deregisters after, one time in
 *     four), READ it back on the same endpoint, and compare;
 *   - fetch-and-add 1 to its own counter at the peer: the value before
 *     must be the number of adds it did there;
 *   - SEND a numbered message with a pattern: the receiver checks the
 *     pattern and that messages from one sender on one link come in order.
 * Only the writer of a slot or counter touches it, so every result is
 * known. Meanwhile the parent starts a victim process that WRITEs, READs
 * and SENDs to the workers through its own endpoints, and kills it with
 * SIGKILL, KILLS times. At the end the workers stop, drain their receive
 * queues until every message sent to them has arrived, and check the
 * counters in their region against what the others did.
 *
 * Prints "hammer: PASS: ..." (exit 0) or "hammer: FAIL: ..." (exit 1).
 */
#define _GNU_SOURCE
#include "tbk_util.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define WORKERS 4
#define VICTIM WORKERS			/* its slot and counter in each region */
#define LINKS 2
/*
 * A region: slot i is written by worker i (the victim's is slot VICTIM),
 * then the owner's source and read-back buffers, then counter i, which
 * only worker i adds to.
 */
#define SLOT (64u << 10)
#define SRC ((WORKERS + 1) * SLOT)
#define BACK (SRC + SLOT)
#define COUNTERS (BACK + SLOT)
#define REGION (COUNTERS + 4096)
#define SEND_LEN 512u
#define AM_ID 3

struct shared {
	struct {
		uint32_t ctx_id;
		uint64_t secret, key, addr;
	} w[WORKERS];
	volatile int ready, stop, failed;
	/* What worker i did to worker j, for j's final checks. */
	volatile uint64_t adds[WORKERS][WORKERS];
	volatile uint64_t sends[WORKERS][WORKERS];
	volatile uint64_t ops[WORKERS];
};

static struct shared *sh;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
	va_list ap;

	printf("hammer: FAIL: %s: ", tbk_prog);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	sh->failed = 1;
}

static uint8_t pat(uint64_t seed, size_t i)
{
	uint64_t s = seed * 0x9e3779b97f4a7c15ull + i / 8;

	return (uint8_t)(tbk_rand64(&s) >> (8 * (i % 8)));
}

struct peer_msgs {
	uint64_t next[WORKERS + 1][LINKS];	/* expected sequence number */
	uint64_t got[WORKERS + 1];
};

/* Checks and takes every message waiting; returns how many. */
static int take_msgs(struct tbk_ctx *c, struct peer_msgs *m, const uint32_t *ctx_of)
{
	int n = 0;

	for (;;) {
		uint32_t prod = __atomic_load_n(&c->rqc->producer, __ATOMIC_ACQUIRE);
		const uint8_t *slot = c->rq + (size_t)(c->rq_cons & c->rq_mask) * TBRDMA_RQE_SLOT;
		const struct tbrdma_rqe *r = (const void *)slot;
		uint32_t from = WORKERS + 1, i;

		if (prod == c->rq_cons)
			return n;
		for (i = 0; i < WORKERS; i++)
			if (ctx_of[i] == r->src_ctx)
				from = i;
		if (from > WORKERS)
			from = VICTIM;	/* any incarnation of the victim */
		if (r->am_id != AM_ID || r->length != SEND_LEN || r->link >= LINKS) {
			fail("message from ctx %u: am_id %u length %u link %u", r->src_ctx, r->am_id,
			     r->length, r->link);
		} else {
			for (i = 0; i < SEND_LEN; i++)
				if (slot[sizeof(*r) + i] != pat(r->imm, i))
					break;
			if (i < SEND_LEN)
				fail("message %llx from %u: byte %u wrong", (unsigned long long)r->imm, from, i);
			if (from < WORKERS) {
				uint64_t seq = r->imm & 0xffffffffu;

				if (seq != m->next[from][r->link])
					fail("message %llu from worker %u on link %u, expected %llu",
					     (unsigned long long)seq, from, r->link,
					     (unsigned long long)m->next[from][r->link]);
				m->next[from][r->link] = seq + 1;
			}
			m->got[from]++;
		}
		c->rq_cons++;
		__atomic_store_n(&c->rqc->consumer, c->rq_cons, __ATOMIC_RELEASE);
		n++;
	}
}

struct waiter {
	struct tbk_ctx *c;
	struct peer_msgs *m;
	const uint32_t *ctx_of;
};

/* Waits for n completions, all successful for a worker; counts errors. */
static int reap(struct waiter *w, int n, struct tbrdma_cqe *last, int must_succeed)
{
	struct tbrdma_cqe cqe;
	double end = tbk_now() + 60;
	int errors = 0;

	while (n > 0) {
		if (w->m)
			take_msgs(w->c, w->m, w->ctx_of);
		if (!tbk_cq_take(w->c, &cqe)) {
			if (tbk_now() > end) {
				fail("no completion in 60 s");
				return -1;
			}
			continue;
		}
		n--;
		if (cqe.status != TBRDMA_WC_SUCCESS) {
			errors++;
			if (must_succeed)
				fail("wr %llu: %s", (unsigned long long)cqe.wr_id,
				     tbk_status_name(cqe.status));
		}
		if (last)
			*last = cqe;
	}
	return errors;
}

static int post(struct tbk_ctx *c, const struct tbrdma_sqe *s)
{
	int ret = tbk_post(c, s, NULL, NULL, 30000);

	if (ret)
		fail("post op %u: %s", s->opcode, strerror(-ret));
	return ret;
}

static void send_msg(struct tbk_ctx *c, uint32_t ep, uint64_t imm, uint8_t *buf, uint64_t key)
{
	struct tbrdma_sqe s;
	uint32_t i;

	for (i = 0; i < SEND_LEN; i++)
		buf[i] = pat(imm, i);
	tbk_sqe_rw(&s, TBRDMA_OP_SEND, ep, imm, buf, key, SEND_LEN, 0, 0);
	s.am_id = AM_ID;
	s.imm = imm;
	post(c, &s);
}

/* Our slot at the peer gets a pattern and is read back. */
static void write_read(struct waiter *w, uint32_t ep, const struct shared *info, int me,
		       int peer, uint8_t *mem, uint64_t key, uint64_t seed, uint32_t len)
{
	struct tbk_ctx *c = w->c;
	uint8_t *src = mem + SRC, *back = mem + BACK;
	uint64_t skey = key, raddr = info->w[peer].addr + (uint64_t)me * SLOT;
	struct tbrdma_sqe s;
	uint32_t i;
	int own = seed % 4 == 0;

	if (own) {
		src = mmap(NULL, SLOT, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (src == MAP_FAILED || tbk_reg(c->fd, src, SLOT, TBRDMA_ACCESS_LOCAL, &skey)) {
			fail("REG_MR of a source buffer");
			return;
		}
	}
	for (i = 0; i < len; i++)
		src[i] = pat(seed, i);
	tbk_sqe_rw(&s, TBRDMA_OP_WRITE, ep, seed, src, skey, len, raddr, info->w[peer].key);
	if (post(c, &s))
		return;
	memset(back, 0, len);
	tbk_sqe_rw(&s, TBRDMA_OP_READ, ep, seed + 1, back, key, len, raddr, info->w[peer].key);
	if (post(c, &s))
		return;
	if (reap(w, 2, NULL, me < WORKERS) == 0 && memcmp(back, src, len))
		fail("slot at worker %d read back differs (%u bytes)", peer, len);
	if (own) {
		if (tbk_dereg(c->fd, skey))
			fail("DEREG_MR of a source buffer");
		munmap(src, SLOT);
	}
}

/* A context with rq_entries receive slots and a region; returns the fd. */
static int open_region(struct tbk_ctx *c, uint8_t **mem, uint64_t *key, uint32_t rq_entries)
{
	int fd;

	*mem = mmap(NULL, REGION, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (*mem == MAP_FAILED)
		tbk_die_errno("mmap");
	fd = tbk_open();
	if (tbk_ctx_create(fd, c, 64, 256, rq_entries) ||
	    tbk_reg(fd, *mem, REGION, TBRDMA_ACCESS_ALL, key))
		tbk_die("CREATE_QUEUES or REG_MR failed");
	return fd;
}

static int worker(int me, unsigned int seconds)
{
	struct peer_msgs msgs = { 0 };
	uint64_t adds[WORKERS] = { 0 }, seq[WORKERS][LINKS] = { { 0 } };
	uint64_t rng = 1000 + me, key, n = 0;
	uint32_t ctx_of[WORKERS], ep[WORKERS][LINKS];
	struct tbrdma_cqe cqe;
	struct waiter w;
	struct tbk_ctx c;
	uint8_t *mem;
	double end;
	int fd, i, l, ret;

	fd = open_region(&c, &mem, &key, 64);
	sh->w[me].ctx_id = c.ctx_id;
	sh->w[me].secret = c.secret;
	sh->w[me].key = key;
	sh->w[me].addr = (uintptr_t)mem;
	__atomic_add_fetch(&sh->ready, 1, __ATOMIC_SEQ_CST);
	while (__atomic_load_n(&sh->ready, __ATOMIC_SEQ_CST) < WORKERS)
		usleep(1000);
	for (i = 0; i < WORKERS; i++) {
		ctx_of[i] = sh->w[i].ctx_id;
		for (l = 0; l < LINKS; l++) {
			ret = i == me ? 0 : tbk_ep(&c, l, sh->w[i].ctx_id, sh->w[i].secret);
			if (ret < 0)
				tbk_die("CREATE_EP to worker %d on link %d: %s", i, l, strerror(-ret));
			ep[i][l] = (uint32_t)ret;
		}
	}
	w.c = &c;
	w.m = &msgs;
	w.ctx_of = ctx_of;

	end = tbk_now() + seconds;
	while (tbk_now() < end && !sh->failed) {
		uint64_t r = tbk_rand64(&rng);
		int peer = (me + 1 + (int)(r % (WORKERS - 1))) % WORKERS;
		int link = (int)((r >> 8) % LINKS);
		uint32_t e = ep[peer][link];
		struct tbrdma_sqe s;

		switch ((r >> 16) % 3) {
		case 0:
			write_read(&w, e, sh, me, peer, mem, key, r >> 24,
				   1 + (uint32_t)(r >> 40) % SLOT);
			break;
		case 1:
			tbk_sqe_atomic(&s, e, n, TBRDMA_ATOMIC_ADD, 8,
				       sh->w[peer].addr + COUNTERS + 8 * me, sh->w[peer].key, 1, 0);
			if (post(&c, &s) || reap(&w, 1, &cqe, 1))
				break;
			if (cqe.result != adds[peer])
				fail("fetch-add at worker %d returned %llu, expected %llu", peer,
				     (unsigned long long)cqe.result, (unsigned long long)adds[peer]);
			adds[peer]++;
			break;
		default:
			send_msg(&c, e, (uint64_t)me << 48 | (uint64_t)(n & 0xffff) << 32 |
				 seq[peer][link]++, mem + SRC, key);
			sh->sends[me][peer]++;
			reap(&w, 1, NULL, 1);
			break;
		}
		take_msgs(&c, &msgs, ctx_of);
		n++;
	}
	for (i = 0; i < WORKERS; i++)
		sh->adds[me][i] = adds[i];
	sh->ops[me] = n;
	__atomic_add_fetch(&sh->stop, 1, __ATOMIC_SEQ_CST);
	/* Everyone is done posting: what was sent to us has been sent. */
	end = tbk_now() + 60;
	while (__atomic_load_n(&sh->stop, __ATOMIC_SEQ_CST) < WORKERS && tbk_now() < end)
		take_msgs(&c, &msgs, ctx_of);
	for (i = 0; i < WORKERS; i++) {
		while (msgs.got[i] < sh->sends[i][me] && tbk_now() < end)
			take_msgs(&c, &msgs, ctx_of);
		if (msgs.got[i] != sh->sends[i][me])
			fail("%llu messages from worker %d arrived, %llu were sent",
			     (unsigned long long)msgs.got[i], i, (unsigned long long)sh->sends[i][me]);
		if (i != me && *(volatile uint64_t *)(mem + COUNTERS + 8 * i) != sh->adds[i][me])
			fail("counter of worker %d is %llu, it added %llu", i,
			     (unsigned long long)*(volatile uint64_t *)(mem + COUNTERS + 8 * i),
			     (unsigned long long)sh->adds[i][me]);
	}
	printf("hammer: worker %d: %llu operations, %llu messages from the victim\n", me,
	       (unsigned long long)n, (unsigned long long)msgs.got[VICTIM]);
	if (tbk_dereg(fd, key))
		fail("DEREG_MR of the region");
	close(fd);
	return sh->failed;
}

/* Traffic to the workers until killed; errors are expected only after. */
static int victim(unsigned int incarnation)
{
	uint64_t rng = 77 + incarnation, key;
	uint32_t ep[WORKERS][LINKS];
	struct waiter w = { 0 };
	struct tbk_ctx c;
	uint8_t *mem;
	int i, l, ret;

	open_region(&c, &mem, &key, 4);
	for (i = 0; i < WORKERS; i++)
		for (l = 0; l < LINKS; l++) {
			ret = tbk_ep(&c, l, sh->w[i].ctx_id, sh->w[i].secret);
			if (ret < 0)
				tbk_die("CREATE_EP: %s", strerror(-ret));
			ep[i][l] = (uint32_t)ret;
		}
	w.c = &c;
	for (;;) {
		uint64_t r = tbk_rand64(&rng);
		int peer = (int)(r % WORKERS);

		if (r & 256) {
			write_read(&w, ep[peer][(r >> 9) & 1], sh, VICTIM, peer, mem, key, r >> 24,
				   1 + (uint32_t)(r >> 40) % SLOT);
		} else {
			send_msg(&c, ep[peer][(r >> 9) & 1], r & ~0xffffffffull, mem + SRC, key);
			reap(&w, 1, NULL, 0);
		}
	}
}

int main(int argc, char **argv)
{
	unsigned int seconds = 20, kills = 6, k;
	pid_t pid[WORKERS], v;
	int opt, i, status, ret = 0;

	tbk_prog = "tbk_hammer";
	while ((opt = getopt(argc, argv, "s:k:")) != -1) {
		if (opt == 's')
			seconds = (unsigned int)atoi(optarg);
		else if (opt == 'k')
			kills = (unsigned int)atoi(optarg);
		else
			return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	sh = tbk_shared_zalloc(sizeof(*sh));
	for (i = 0; i < WORKERS; i++) {
		pid[i] = fork();
		if (pid[i] < 0)
			tbk_die_errno("fork");
		if (!pid[i]) {
			static char name[16];

			snprintf(name, sizeof(name), "worker %d", i);
			tbk_prog = name;
			_exit(worker(i, seconds));
		}
	}
	while (__atomic_load_n(&sh->ready, __ATOMIC_SEQ_CST) < WORKERS)
		usleep(1000);
	for (k = 0; k < kills; k++) {
		v = fork();
		if (v < 0)
			tbk_die_errno("fork");
		if (!v) {
			tbk_prog = "victim";
			_exit(victim(k));
		}
		usleep(1000u * 1000u * seconds / (kills + 1));
		kill(v, SIGKILL);
		if (waitpid(v, &status, 0) != v || !WIFSIGNALED(status)) {
			fail("victim %u ended before it was killed (status %d)", k, status);
			ret = 1;
		}
	}
	for (i = 0; i < WORKERS; i++) {
		if (waitpid(pid[i], &status, 0) != pid[i] || !WIFEXITED(status) ||
		    WEXITSTATUS(status)) {
			printf("hammer: FAIL: worker %d ended with status %d\n", i, status);
			ret = 1;
		}
	}
	if (ret || sh->failed)
		return 1;
	printf("hammer: PASS: 4 workers over loop0 and loop1, %llu+%llu+%llu+%llu operations (WRITE and READ back, fetch-add, SEND; registrations), every result checked; %u victims killed mid-traffic\n",
	       (unsigned long long)sh->ops[0], (unsigned long long)sh->ops[1],
	       (unsigned long long)sh->ops[2], (unsigned long long)sh->ops[3], kills);
	return 0;
}
