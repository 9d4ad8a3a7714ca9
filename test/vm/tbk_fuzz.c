// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * tbk_fuzz: bad input for /dev/tbrdma, for a bounded time.
 *
 *   tbk_fuzz [-s SEED] [-t SECONDS] [-q]
 *
 * The main thread draws actions from a seeded generator (splitmix64; the
 * seed is printed, and the same seed gives the same sequence of actions):
 *
 *  - ioctls: every command with well-formed, mutated and random argument
 *    structs; argument pointers that are NULL, kernel addresses
 *    (0xffff888000000000, kernel text), non-canonical, unmapped, a guard
 *    page, a struct straddling into a guard page, a read-only page (the
 *    kernel's answer cannot be written back); unknown commands and known
 *    numbers with other sizes and directions;
 *  - REG_MR on unaligned, overlapping and repeated ranges, on read-only,
 *    PROT_NONE, shared-memory and unmapped memory, on the process's own
 *    rings, with huge, zero and wrapping lengths and random access bits;
 *    DEREG_MR of live, dead and random keys;
 *  - CREATE_QUEUES with random sizes and event fds, DESTROY_QUEUES,
 *    CREATE_EP / DESTROY_EP / CANCEL_EP / EP_STATE with random handles;
 *  - mmap with good and bad offsets, lengths, MAP_PRIVATE, PROT_EXEC, and
 *    mremap/mprotect/munmap of ring mappings;
 *  - DOORBELL after writing garbage (random bytes) or mutated valid SQEs
 *    (real keys and endpoints, random lengths, offsets, opcodes) into the
 *    mapped SQ, with random producer indices; garbage ring indices;
 *  - close and reopen of files, with and without their rings still mapped;
 *    fork() with everything shared, the child fuzzing on and exiting.
 *
 * Two more threads race: one registers buffers that another unmaps at the
 * same time, and one posts work on a file that another closes and reopens.
 *
 * Invariants checked on the way (a violation is a failure): no pointer
 * into the kernel or into unmapped memory is ever accepted, no region over
 * unmapped, PROT_NONE or kernel memory and no writable one over read-only
 * memory, no private, oversized or executable ring mapping and no growing
 * one, unknown commands get ENOTTY. At the end, with every file closed: VmPin is 0, and
 * a fresh file still moves data over link 0 (WRITE + READ, 64 KiB).
 * Prints "fuzz: ..." lines; exit 0 = pass.
 */
#define _GNU_SOURCE
#include "tbk_util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define NFILES 4
#define NCTX 4			/* contexts we track per file */
#define NKEYS 48
#define NEPS 8
#define NMAPS 48
#define ARENA (4u << 20)
#define SMALL (64u << 10)
#define HOLE_LEN (56u << 10)	/* 0x1000 .. 0xf000 */
#define PG 4096ul
/* Bound on what one process makes the kernel allocate (rings + endpoints). */
#define KMEM_BUDGET (96ul << 20)

static uint64_t rng;
static int quiet;
static volatile int stop;
static unsigned long violations;

static uint64_t rnd(void) { return tbk_rand64(&rng); }
static uint32_t rndn(uint32_t n) { return n ? (uint32_t)(rnd() % n) : 0; }
static int chance(uint32_t n) { return rndn(n) == 0; }

/* Memory the fuzzer plays with, each piece between PROT_NONE guard pages. */
static uint8_t *arena, *ro_mem, *none_mem, *shm_mem, *hole;
static uint8_t *arg_rw, *arg_ro, *arg_edge;	/* ioctl argument pages */

static struct {
	unsigned long iters, ioctls, mmaps, doorbells, sqes, posted, cqes, regs_ok, reopen,
		forks, race_reg, race_reg_ok, race_close, race_cqes;
	unsigned long err[140], db_err[140];
	unsigned long wc[TBRDMA_WC_STATUS_MAX + 2];
} st;

struct mapping {
	void *p;
	size_t len;
};

struct fctx {
	int live;
	uint32_t h, id;
	uint64_t secret;
	struct tbrdma_create_queues q;
	struct tbrdma_ring_ctrl *sqc, *cqc, *rqc;	/* mapped, or NULL */
	uint32_t sq_prod;
	int eps[NEPS];
	int neps;
	size_t kmem;
};

struct ffile {
	int fd;
	struct fctx c[NCTX];
	uint64_t keys[NKEYS];
	int nkeys;
	/* A forked child used it: its contexts may have been re-created. */
	int shared;
};

static struct ffile files[NFILES];
static struct mapping maps[NMAPS];
static size_t kmem_total, mapped_total;

static void violation(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void violation(const char *fmt, ...)
{
	va_list ap;

	violations++;
	if (violations > 20 && !stop)
		return;
	printf("fuzz: VIOLATION: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

static void count_err(int ret)
{
	if (ret < 0 && -ret < 140)
		st.err[-ret]++;
	else if (ret == 0)
		st.err[0]++;
}

static void *guarded(size_t len, int prot)
{
	uint8_t *p = mmap(NULL, len + 2 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		tbk_die_errno("mmap");
	if (prot != PROT_NONE && mprotect(p + PG, len, prot))
		tbk_die_errno("mprotect");
	return p + PG;
}

static void setup_memory(void)
{
	int mfd;

	arena = guarded(ARENA, PROT_READ | PROT_WRITE);
	for (size_t i = 0; i < ARENA; i += 8) {
		uint64_t v = rnd();

		memcpy(arena + i, &v, 8);
	}
	ro_mem = guarded(SMALL, PROT_READ | PROT_WRITE);
	memset(ro_mem, 0x5a, SMALL);
	mprotect(ro_mem, SMALL, PROT_READ);
	none_mem = guarded(SMALL, PROT_NONE);
	mfd = memfd_create("tbk_fuzz", MFD_CLOEXEC);
	if (mfd < 0 || ftruncate(mfd, SMALL))
		tbk_die_errno("memfd");
	shm_mem = guarded(SMALL, PROT_NONE);
	if (mmap(shm_mem, SMALL, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, mfd, 0) == MAP_FAILED)
		tbk_die_errno("mmap memfd");
	close(mfd);
	/*
	 * Unmapped for sure: below mmap_min_addr (64 KiB on Debian), where
	 * nothing can be mapped. (A hole punched with munmap() would be
	 * filled by the next mmap.)
	 */
	hole = (uint8_t *)(uintptr_t)0x1000;
	arg_rw = guarded(PG, PROT_READ | PROT_WRITE);
	arg_ro = guarded(PG, PROT_READ);
	arg_edge = guarded(PG, PROT_READ | PROT_WRITE);	/* guard follows it */
}

/* Addresses that must never be accepted as user memory. */
static uint64_t bad_addr(void)
{
	switch (rndn(9)) {
	case 0: return 0;
	case 1: return 0xffff888000000000ull + (rnd() & 0xffffff000ull);
	case 2: return 0xffffffff81000000ull + (rnd() & 0xfffff);
	case 3: return 0x0000800000000000ull + (rnd() & 0xffff);	/* non-canonical */
	case 4: return (uintptr_t)hole + (rnd() % HOLE_LEN);
	case 5: return (uintptr_t)none_mem + (rnd() % SMALL);
	case 6: return ~0ull - (rnd() & 0xfff);
	case 7: return (uintptr_t)arena - PG + (rnd() % PG);		/* guard */
	default: return 0xffffc90000000000ull + (rnd() & 0xfffffff);	/* vmalloc space */
	}
}

static uint64_t any_len(void)
{
	switch (rndn(10)) {
	case 0: return 0;
	case 1: return 1;
	case 2: return PG;
	case 3: return 1ull << 40;
	case 4: return ~0ull;
	case 5: return TBRDMA_XFER_MAX;
	case 6: return rnd();
	case 7: return 1 + rndn(3 * PG);
	default: return 1 + rndn(ARENA);
	}
}

/* --- argument pointers --------------------------------------------------- */

enum argkind { ARG_OK, ARG_NULL, ARG_KERNEL, ARG_HOLE, ARG_EDGE, ARG_RO, ARG_NKINDS };

/* Places a struct of len bytes where the kind says; returns the pointer. */
static void *place_arg(enum argkind k, const void *s, size_t len)
{
	switch (k) {
	case ARG_OK:
		memcpy(arg_rw, s, len);
		return arg_rw;
	case ARG_NULL:
		return NULL;
	case ARG_KERNEL:
		return (void *)(uintptr_t)(0xffff888000000000ull + (rnd() & 0xfff000));
	case ARG_HOLE:
		return hole + rndn(HOLE_LEN - 512);
	case ARG_EDGE: {
		/* Straddles into the guard page after arg_edge. */
		size_t in = len > 1 ? 1 + rndn((uint32_t)len - 1) : 0;

		memcpy(arg_edge + PG - in, s, in);
		return arg_edge + PG - in;
	}
	case ARG_RO:
		mprotect(arg_ro, PG, PROT_READ | PROT_WRITE);
		memcpy(arg_ro, s, len);
		mprotect(arg_ro, PG, PROT_READ);
		return arg_ro;
	default:
		return NULL;
	}
}

static int raw_ioctl(int fd, unsigned long cmd, void *arg)
{
	st.ioctls++;
	return ioctl(fd, cmd, arg) < 0 ? -errno : 0;
}

/* --- bookkeeping --------------------------------------------------------- */

static void map_drop(int i);

static int map_free_slots(void)
{
	int n = 0;

	for (int i = 0; i < NMAPS; i++)
		n += !maps[i].p;
	return n;
}

/* Unmaps random mappings until n slots are free. */
static void map_make_room(int n)
{
	while (map_free_slots() < n)
		map_drop((int)rndn(NMAPS));
}

/* Records a mapping; there is room (map_make_room before mapping). */
static void map_add(void *p, size_t len)
{
	for (int i = 0; i < NMAPS; i++)
		if (!maps[i].p) {
			maps[i].p = p;
			maps[i].len = len;
			mapped_total += len;
			return;
		}
	munmap(p, len);
}

/* Forget ring pointers into a mapping that is going away. */
static void forget_ring_ptrs(void *p, size_t len)
{
	for (int f = 0; f < NFILES; f++)
		for (int c = 0; c < NCTX; c++) {
			struct fctx *x = &files[f].c[c];

			if ((uint8_t *)x->sqc >= (uint8_t *)p && (uint8_t *)x->sqc < (uint8_t *)p + len)
				x->sqc = NULL;
			if ((uint8_t *)x->cqc >= (uint8_t *)p && (uint8_t *)x->cqc < (uint8_t *)p + len)
				x->cqc = NULL;
			if ((uint8_t *)x->rqc >= (uint8_t *)p && (uint8_t *)x->rqc < (uint8_t *)p + len)
				x->rqc = NULL;
		}
}

static void map_drop(int i)
{
	if (!maps[i].p)
		return;
	forget_ring_ptrs(maps[i].p, maps[i].len);
	munmap(maps[i].p, maps[i].len);
	mapped_total -= maps[i].len;
	maps[i].p = NULL;
}

static void ctx_forget(struct fctx *x)
{
	kmem_total -= x->kmem;
	memset(x, 0, sizeof(*x));
}

static struct ffile *pick_file(void)
{
	struct ffile *f = &files[rndn(NFILES)];

	if (f->fd < 0) {
		f->fd = open(TBK_DEV, O_RDWR | O_CLOEXEC);
		if (f->fd < 0)
			tbk_die_errno("reopen %s", TBK_DEV);
		f->shared = 0;
		st.reopen++;
	}
	return f;
}

static struct fctx *pick_ctx(struct ffile *f)
{
	int start = (int)rndn(NCTX);

	for (int i = 0; i < NCTX; i++)
		if (f->c[(start + i) % NCTX].live)
			return &f->c[(start + i) % NCTX];
	return NULL;
}

static uint64_t pick_key(struct ffile *f)
{
	if (f->nkeys && !chance(6))
		return f->keys[rndn((uint32_t)f->nkeys)];
	if (chance(2)) {
		/* A key of another file. */
		struct ffile *g = &files[rndn(NFILES)];

		if (g->nkeys)
			return g->keys[rndn((uint32_t)g->nkeys)];
	}
	return (uint32_t)rnd();
}

static void close_file(struct ffile *f)
{
	/* Sometimes leave the rings mapped: the file lives on in them. */
	if (chance(2)) {
		for (int i = 0; i < NMAPS; i++) {
			for (int c = 0; c < NCTX; c++) {
				struct fctx *x = &f->c[c];

				if (maps[i].p && ((void *)x->sqc == maps[i].p || (void *)x->cqc == maps[i].p ||
						  (void *)x->rqc == maps[i].p))
					map_drop(i);
			}
		}
	}
	close(f->fd);
	f->fd = -1;
	for (int c = 0; c < NCTX; c++)
		ctx_forget(&f->c[c]);
	f->nkeys = 0;
}

/* --- actions ------------------------------------------------------------- */

static void act_query(struct ffile *f)
{
	enum argkind k = (enum argkind)rndn(ARG_NKINDS);
	struct tbrdma_query q;
	struct tbrdma_link_attr a;
	int ret;

	memset(&q, 0, sizeof(q));
	if (chance(2)) {
		ret = raw_ioctl(f->fd, TBRDMA_IOC_QUERY, place_arg(k, &q, sizeof(q)));
	} else {
		memset(&a, 0, sizeof(a));
		a.index = chance(2) ? rndn(4) : (uint32_t)rnd();
		ret = raw_ioctl(f->fd, TBRDMA_IOC_QUERY_LINK, place_arg(k, &a, sizeof(a)));
	}
	count_err(ret);
	if (k != ARG_OK && ret == 0)
		violation("QUERY/QUERY_LINK accepted a bad argument pointer (kind %d)", k);
}

static void act_reg(struct ffile *f)
{
	struct tbrdma_reg_mr r;
	enum argkind k = chance(8) ? (enum argkind)rndn(ARG_NKINDS) : ARG_OK;
	int bad = 0, ro = 0, ret;

	memset(&r, 0, sizeof(r));
	r.access = chance(5) ? (uint32_t)rnd() & 0x3f : 1 + rndn(TBRDMA_ACCESS_ALL);
	switch (rndn(12)) {
	case 0: case 1: case 2: case 3: {
		/* Inside the arena, often unaligned, often overlapping. */
		uint64_t off = chance(2) ? rndn(ARENA) : (uint64_t)rndn(ARENA / PG) * PG;

		r.addr = (uintptr_t)arena + off;
		r.length = chance(4) ? 1 + rndn(ARENA) : 1 + rndn((uint32_t)(ARENA - off));
		/* Beyond the end: into the guard page. */
		if (off + r.length > ARENA)
			bad = 1;
		break;
	}
	case 4:
		r.addr = (uintptr_t)ro_mem + rndn(SMALL / 2);
		r.length = 1 + rndn(SMALL / 2);
		ro = 1;
		break;
	case 5:
		r.addr = (uintptr_t)shm_mem + rndn(SMALL / 2);
		r.length = 1 + rndn(SMALL / 2);
		break;
	case 6: {
		/* One of our own ring mappings. */
		struct mapping *m = &maps[rndn(NMAPS)];

		if (!m->p)
			return;
		r.addr = (uintptr_t)m->p;
		r.length = 1 + rndn((uint32_t)m->len);
		break;
	}
	case 7:
		r.addr = (uintptr_t)arena + rndn(ARENA);
		r.length = any_len();
		if (r.length == 0 || r.addr + r.length > (uintptr_t)arena + ARENA ||
		    r.addr + r.length < r.addr)
			bad = 1;
		break;
	default:
		r.addr = bad_addr();
		r.length = chance(2) ? any_len() : 1 + rndn(3 * PG);
		bad = 1;
		break;
	}
	if (chance(16))
		r.reserved = rnd();
	ret = raw_ioctl(f->fd, TBRDMA_IOC_REG_MR, place_arg(k, &r, sizeof(r)));
	count_err(ret);
	if (ret)
		return;
	if (k != ARG_OK && k != ARG_RO)
		violation("REG_MR accepted argument pointer kind %d", k);
	if (k == ARG_RO)
		violation("REG_MR succeeded although its answer could not be written back");
	if (k != ARG_OK)
		return;
	if (bad)
		violation("REG_MR accepted addr 0x%llx length 0x%llx", (unsigned long long)r.addr,
			  (unsigned long long)r.length);
	/* LOCAL_READ and REMOTE_READ alone are pinned read-only. */
	if (ro && (r.access & (TBRDMA_ACCESS_LOCAL | TBRDMA_ACCESS_REMOTE_WRITE |
			       TBRDMA_ACCESS_REMOTE_ATOMIC)))
		violation("REG_MR accepted writable access 0x%x on read-only memory", r.access);
	if (r.reserved)
		violation("REG_MR accepted a non-zero reserved field");
	memcpy(&r, arg_rw, sizeof(r));
	st.regs_ok++;
	if (f->nkeys < NKEYS)
		f->keys[f->nkeys++] = r.key;
	else if (chance(2))
		f->keys[rndn(NKEYS)] = r.key;	/* leaked to close() */
}

static void act_dereg(struct ffile *f)
{
	struct tbrdma_dereg_mr d = { 0 };
	int i = -1, ret;

	if (f->nkeys && !chance(4)) {
		i = (int)rndn((uint32_t)f->nkeys);
		d.key = f->keys[i];
	} else {
		d.key = chance(2) ? f->keys[rndn(NKEYS)] ^ (1ull << rndn(64)) : rnd();
	}
	ret = raw_ioctl(f->fd, TBRDMA_IOC_DEREG_MR, chance(10) ? place_arg((enum argkind)rndn(ARG_NKINDS), &d, sizeof(d)) : &d);
	count_err(ret);
	if (i >= 0 && (ret == 0 || ret == -ENOENT))
		f->keys[i] = f->keys[--f->nkeys];
}

static uint32_t ring_size(void)
{
	switch (rndn(8)) {
	case 0: return 0;
	case 1: return (uint32_t)rnd();
	case 2: return 1 + rndn(70000);
	case 3: return 4096;
	default: return 1 + rndn(64);
	}
}

static void *try_map(int fd, uint64_t off, size_t len, int prot, int flags)
{
	void *p;

	st.mmaps++;
	map_make_room(1);
	p = mmap(NULL, len, prot, flags, fd, (off_t)off);
	if (p == MAP_FAILED)
		return NULL;
	map_add(p, len);
	return p;
}

/*
 * The target of an endpoint: our own contexts, other files' contexts (with
 * their secret, or a near miss of it), or anything.
 */
static void pick_remote(struct tbrdma_create_ep *e)
{
	struct ffile *g = &files[rndn(NFILES)];
	struct fctx *y = g->fd >= 0 ? pick_ctx(g) : NULL;

	if (y && !chance(4)) {
		e->remote_ctx = y->id;
		e->remote_secret = chance(4) ? y->secret ^ (1ull << rndn(64)) : y->secret;
		return;
	}
	e->remote_ctx = chance(2) ? rndn(64) : (uint32_t)rnd();
	e->remote_secret = rnd();
}

static void act_create_queues(struct ffile *f)
{
	struct tbrdma_create_queues q;
	enum argkind k = chance(10) ? (enum argkind)rndn(ARG_NKINDS) : ARG_OK;
	int efd = -1, slot, ret;
	struct fctx *x;
	size_t kmem;

	for (slot = 0; slot < NCTX && f->c[slot].live; slot++)
		;
	memset(&q, 0, sizeof(q));
	q.sq_entries = ring_size();
	q.cq_entries = ring_size();
	q.rq_entries = chance(6) ? ring_size() : 1 + rndn(16);
	switch (rndn(6)) {
	case 0: q.event_fd = (int32_t)rnd(); break;
	case 1: efd = eventfd(0, EFD_CLOEXEC); q.event_fd = efd; break;
	case 2: q.event_fd = 1; break;		/* not an eventfd */
	case 3: q.event_fd = -2; break;
	default: q.event_fd = -1; break;
	}
	if (chance(16))
		q.secret = rnd();	/* an output: ignored on the way in */
	/* Keep the kernel's memory bounded: the RQ is 4 KiB per entry. */
	kmem = (size_t)(q.sq_entries % 70000) * 256 + (size_t)(q.cq_entries % 70000) * 32 +
	       (size_t)(q.rq_entries % 70000) * 4096;
	if (kmem_total + mapped_total + kmem > KMEM_BUDGET || slot == NCTX) {
		if (mapped_total > KMEM_BUDGET / 2)
			map_drop((int)rndn(NMAPS));
		if (efd >= 0)
			close(efd);
		return;
	}
	ret = raw_ioctl(f->fd, TBRDMA_IOC_CREATE_QUEUES, place_arg(k, &q, sizeof(q)));
	count_err(ret);
	if (efd >= 0)
		close(efd);	/* the context holds its own reference */
	if (ret)
		return;
	if (k != ARG_OK) {
		violation("CREATE_QUEUES succeeded with argument pointer kind %d", k);
		return;
	}
	memcpy(&q, arg_rw, sizeof(q));
	x = &f->c[slot];
	memset(x, 0, sizeof(*x));
	x->live = 1;
	x->q = q;
	x->h = q.ctx;
	x->id = q.ctx_id;
	x->secret = q.secret;
	x->kmem = q.sq_length + q.cq_length + q.rq_length;
	kmem_total += x->kmem;
	if (!chance(8)) {
		/* Room first: making room later could unmap a ring just mapped. */
		map_make_room(3);
		x->sqc = try_map(f->fd, q.sq_offset, q.sq_length, PROT_READ | PROT_WRITE, MAP_SHARED);
		x->cqc = try_map(f->fd, q.cq_offset, q.cq_length, PROT_READ | PROT_WRITE, MAP_SHARED);
		x->rqc = try_map(f->fd, q.rq_offset, q.rq_length, PROT_READ | PROT_WRITE, MAP_SHARED);
		if (!x->sqc || !x->cqc || !x->rqc)
			violation("mmap of a ring as CREATE_QUEUES returned it failed: %s", strerror(errno));
		if (x->sqc) {
			x->sq_prod = x->sqc->consumer;
			/* Most SQs are polled: the poll thread reads them too. */
			x->sqc->sq_poll = chance(4) ? (uint32_t)rnd() : 1;
		}
	}
	/* Endpoints right away, so that doorbells have something to post on. */
	for (int n = 1 + (int)rndn(2); n > 0; n--) {
		struct tbrdma_create_ep e = { .ctx = x->h, .link = rndn(2) };
		size_t cost = (size_t)x->q.sq_entries * 320;

		if (kmem_total + cost > KMEM_BUDGET || x->neps >= NEPS)
			break;
		pick_remote(&e);
		if (raw_ioctl(f->fd, TBRDMA_IOC_CREATE_EP, &e) == 0) {
			x->eps[x->neps++] = (int)e.ep;
			x->kmem += cost;
			kmem_total += cost;
		}
	}
}

static void act_destroy_queues(struct ffile *f)
{
	struct tbrdma_destroy_queues d = { 0 };
	struct fctx *x = pick_ctx(f);
	int ret;

	d.ctx = x && !chance(4) ? x->h : (chance(2) ? rndn(20) : (uint32_t)rnd());
	if (chance(20))
		d.reserved = 1;
	ret = raw_ioctl(f->fd, TBRDMA_IOC_DESTROY_QUEUES, &d);
	count_err(ret);
	if (ret == 0) {
		for (int c = 0; c < NCTX; c++)
			if (f->c[c].live && f->c[c].h == d.ctx) {
				/* The rings stay mapped (and stay ours to scribble on). */
				ctx_forget(&f->c[c]);
			}
	}
}


static void act_ep(struct ffile *f)
{
	struct fctx *x = pick_ctx(f);
	uint32_t ctx = x && !chance(8) ? x->h : rndn(20);
	int ret;

	switch (rndn(4)) {
	case 0: case 1: {
		struct tbrdma_create_ep e = { 0 };
		enum argkind k = chance(10) ? (enum argkind)rndn(ARG_NKINDS) : ARG_OK;
		size_t cost;

		e.ctx = ctx;
		e.link = chance(6) ? (uint32_t)rnd() : rndn(3);
		pick_remote(&e);
		/* Each endpoint holds sq_entries operations of ~300 bytes. */
		cost = x ? (size_t)x->q.sq_entries * 320 : 0;
		if (x && (x->neps >= NEPS || kmem_total + cost > KMEM_BUDGET))
			return;
		ret = raw_ioctl(f->fd, TBRDMA_IOC_CREATE_EP, place_arg(k, &e, sizeof(e)));
		count_err(ret);
		if (!ret && k != ARG_OK)
			violation("CREATE_EP succeeded with argument pointer kind %d", k);
		if (!ret && k == ARG_OK && x && ctx == x->h) {
			memcpy(&e, arg_rw, sizeof(e));
			x->eps[x->neps++] = (int)e.ep;
			x->kmem += cost;
			kmem_total += cost;
		}
		break;
	}
	default: {
		struct tbrdma_ep_ref r = { 0 };
		struct tbrdma_ep_state s = { 0 };
		unsigned long cmd;

		r.ctx = ctx;
		r.ep = x && x->neps && !chance(4) ? (uint32_t)x->eps[rndn((uint32_t)x->neps)] : rndn(300);
		switch (rndn(3)) {
		case 0: cmd = TBRDMA_IOC_DESTROY_EP; break;
		case 1: cmd = TBRDMA_IOC_CANCEL_EP; break;
		default: cmd = TBRDMA_IOC_EP_STATE; break;
		}
		if (cmd == TBRDMA_IOC_EP_STATE) {
			s.ctx = r.ctx;
			s.ep = r.ep;
			ret = raw_ioctl(f->fd, cmd, &s);
		} else {
			ret = raw_ioctl(f->fd, cmd, &r);
		}
		count_err(ret);
		if (!ret && cmd == TBRDMA_IOC_DESTROY_EP && x && ctx == x->h)
			for (int i = 0; i < x->neps; i++)
				if ((uint32_t)x->eps[i] == r.ep) {
					x->eps[i] = x->eps[--x->neps];
					break;
				}
		break;
	}
	}
}

/* A plausible SQE: real endpoint and keys, random everything else. */
static void mutated_sqe(struct ffile *f, struct fctx *x, struct tbrdma_sqe *s)
{
	static const uint32_t lens[] = { 0, 1, 7, 8, 64, TBRDMA_INLINE_MAX, TBRDMA_INLINE_MAX + 1,
					 TBRDMA_SEND_MAX, TBRDMA_SEND_MAX + 1, 4096, 65536,
					 1u << 20, TBRDMA_XFER_MAX, TBRDMA_XFER_MAX + 1 };

	memset(s, 0, sizeof(*s));
	/* Mostly well-formed, so the engine's data path runs: 1 in ~8 fields is wild. */
	s->opcode = chance(16) ? (uint8_t)rnd() : (uint8_t)(1 + rndn(TBRDMA_OP_MAX));
	s->flags = chance(10) ? (uint8_t)rnd() : (uint8_t)(chance(3) ? TBRDMA_SQE_SILENT : 0);
	if ((s->opcode == TBRDMA_OP_WRITE || s->opcode == TBRDMA_OP_SEND) && chance(3))
		s->flags |= TBRDMA_SQE_INLINE;
	s->atomic_op = chance(12) ? (uint8_t)rnd() : (uint8_t)rndn(TBRDMA_ATOMIC_MAX + 1);
	s->atomic_size = chance(12) ? (uint8_t)rnd() : (chance(2) ? 4 : 8);
	s->ep = x->neps && !chance(12) ? (uint32_t)x->eps[rndn((uint32_t)x->neps)] : (uint32_t)rnd();
	s->wr_id = rnd();
	s->local_addr = chance(6) ? bad_addr() : (uintptr_t)arena + rndn(ARENA);
	s->lkey = chance(8) ? 0 : pick_key(f);
	s->length = chance(3) ? (uint32_t)rnd() % (1u << 21) : lens[rndn(sizeof(lens) / sizeof(lens[0]))];
	if ((s->flags & TBRDMA_SQE_INLINE) && !chance(8))
		s->length %= TBRDMA_INLINE_MAX + 1;
	s->remote_addr = chance(6) ? bad_addr() : (uintptr_t)arena + rndn(ARENA);
	if (s->opcode == TBRDMA_OP_ATOMIC ? !chance(8) : chance(3))
		s->remote_addr &= ~7ull;
	s->rkey = pick_key(f);
	s->am_id = (uint32_t)rnd();
	s->operand = rnd();
	s->compare = rnd();
	s->imm = rnd();
	for (size_t i = 0; i < sizeof(s->inline_data); i += 8) {
		uint64_t v = rnd();

		memcpy(s->inline_data + i, &v, 8);
	}
}

static void drain(struct fctx *x)
{
	if (x->cqc) {
		uint32_t prod = __atomic_load_n(&x->cqc->producer, __ATOMIC_ACQUIRE);
		uint32_t cons = x->cqc->consumer, n = 0;
		uint32_t mask = x->q.cq_entries - 1;
		const struct tbrdma_cqe *cq = (const void *)((uint8_t *)x->cqc + TBRDMA_RING_DATA_OFFSET);

		while (cons != prod && n++ <= mask) {
			uint8_t s = cq[cons & mask].status;

			st.wc[s <= TBRDMA_WC_STATUS_MAX ? s : TBRDMA_WC_STATUS_MAX + 1]++;
			st.cqes++;
			cons++;
		}
		__atomic_store_n(&x->cqc->consumer, chance(50) ? (uint32_t)rnd() : cons, __ATOMIC_RELEASE);
	}
	if (x->rqc)
		__atomic_store_n(&x->rqc->consumer, chance(50) ? (uint32_t)rnd() :
				 __atomic_load_n(&x->rqc->producer, __ATOMIC_ACQUIRE), __ATOMIC_RELEASE);
}

static void act_doorbell(struct ffile *f)
{
	struct fctx *x = pick_ctx(f);
	struct tbrdma_doorbell db = { 0 };
	uint32_t n, i;
	void *arg;
	int ret;

	if (!x) {
		db.ctx = rndn(20);
		db.sq_producer = (uint32_t)rnd();
		count_err(raw_ioctl(f->fd, TBRDMA_IOC_DOORBELL, &db));
		return;
	}
	if (x->sqc) {
		struct tbrdma_sqe *sq = (void *)((uint8_t *)x->sqc + TBRDMA_RING_DATA_OFFSET);
		uint32_t mask = x->q.sq_entries - 1;

		x->sq_prod = __atomic_load_n(&x->sqc->consumer, __ATOMIC_ACQUIRE);
		n = 1 + rndn(x->q.sq_entries < 8 ? x->q.sq_entries : 8);
		for (i = 0; i < n; i++) {
			struct tbrdma_sqe s;

			if (chance(6)) {
				for (size_t b = 0; b < sizeof(s); b += 8) {
					uint64_t v = rnd();

					memcpy((uint8_t *)&s + b, &v, 8);
				}
			} else {
				mutated_sqe(f, x, &s);
			}
			sq[(x->sq_prod + i) & mask] = s;
		}
		st.sqes += n;
		db.sq_producer = chance(16) ? (uint32_t)rnd() : x->sq_prod + n;
		/* The poll thread may take them before the doorbell, or see garbage. */
		__atomic_store_n(&x->sqc->producer, chance(16) ? (uint32_t)rnd() : db.sq_producer,
				 __ATOMIC_RELEASE);
		if (chance(20))
			x->sqc->sq_polled = (uint32_t)rnd();
	} else {
		db.sq_producer = (uint32_t)rnd();
	}
	db.ctx = chance(16) ? rndn(20) : x->h;
	if (chance(30))
		db.flags = chance(2) ? TBRDMA_DOORBELL_ASYNC : 2;
	st.doorbells++;
	arg = chance(12) ? place_arg((enum argkind)rndn(ARG_NKINDS), &db, sizeof(db)) : &db;
	ret = raw_ioctl(f->fd, TBRDMA_IOC_DOORBELL, arg);
	count_err(ret);
	if (!ret && arg == &db)
		st.posted += db.posted;
	if (arg == &db && ret <= 0 && ret > -140)
		st.db_err[-ret]++;
	if (chance(3))
		drain(x);
}

static void act_mmap(struct ffile *f)
{
	struct fctx *x = pick_ctx(f);
	static const uint64_t rings[] = { TBRDMA_MMAP_SQ, TBRDMA_MMAP_CQ, TBRDMA_MMAP_RQ };
	uint64_t off, rlen = PG;
	size_t len;
	int prot = PROT_READ | PROT_WRITE, flags = MAP_SHARED, bad = 0;
	void *p;

	if (x) {
		int r = (int)rndn(3);

		off = ((uint64_t)x->h << TBRDMA_MMAP_CTX_SHIFT) | rings[r];
		rlen = r == 0 ? x->q.sq_length : r == 1 ? x->q.cq_length : x->q.rq_length;
	} else {
		off = ((uint64_t)rndn(20) << TBRDMA_MMAP_CTX_SHIFT) | rings[rndn(3)];
	}
	switch (rndn(8)) {
	case 0: off += PG * (1 + rndn(4)); bad = 1; break;
	case 1: off = rnd() & ~(PG - 1); break;
	case 2: flags = MAP_PRIVATE; bad = 1; break;
	case 3: prot |= PROT_EXEC; break;	/* refused whatever else */
	default: break;
	}
	switch (rndn(4)) {
	case 0: len = rlen + PG * (1 + rndn(4)); bad = 1; break;
	case 1: len = PG; break;
	default: len = rlen; break;
	}
	p = try_map(f->fd, off, len, prot, flags);
	if (p && (prot & PROT_EXEC))
		violation("mmap of a ring accepted PROT_EXEC");
	/*
	 * Without a tracked context, or after a child used the file, the
	 * offset may name a context a child made (same handle, other sizes).
	 */
	if (p && bad && x && !f->shared)
		violation("mmap accepted offset 0x%llx length %zu flags 0x%x (ring length %llu)",
			  (unsigned long long)off, len, flags, (unsigned long long)rlen);
	if (p && chance(2)) {
		void *q = mremap(p, len, len + PG, MREMAP_MAYMOVE);

		if (q != MAP_FAILED) {
			violation("mremap grew a ring mapping");
			forget_ring_ptrs(p, len);
			for (int i = 0; i < NMAPS; i++)
				if (maps[i].p == p) {
					maps[i].p = q;
					maps[i].len = len + PG;
				}
		}
	}
	if (chance(4)) {
		/* Some mapping goes: rings, or a ring of a live context. */
		int i = (int)rndn(NMAPS);

		if (maps[i].p && chance(3))
			mprotect(maps[i].p, maps[i].len, PROT_READ);
		if (maps[i].p && chance(3) &&
		    !mprotect(maps[i].p, maps[i].len, PROT_READ | PROT_EXEC))
			violation("mprotect made a ring mapping executable");
		map_drop(i);
	}
}

static unsigned long valid_cmds[] = {
	TBRDMA_IOC_QUERY, TBRDMA_IOC_QUERY_LINK, TBRDMA_IOC_REG_MR, TBRDMA_IOC_DEREG_MR,
	TBRDMA_IOC_CREATE_EP, TBRDMA_IOC_DESTROY_EP, TBRDMA_IOC_EP_STATE,
	TBRDMA_IOC_CREATE_QUEUES, TBRDMA_IOC_DOORBELL, TBRDMA_IOC_DESTROY_QUEUES,
	TBRDMA_IOC_CANCEL_EP,
};
#define NVALID (sizeof(valid_cmds) / sizeof(valid_cmds[0]))

static int is_valid_cmd(unsigned long cmd)
{
	for (size_t i = 0; i < NVALID; i++)
		if (valid_cmds[i] == cmd)
			return 1;
	return 0;
}

/* Random commands and random argument bytes. */
static void act_random_ioctl(struct ffile *f)
{
	uint8_t buf[256];
	unsigned long cmd;
	int ret, type;

	for (size_t i = 0; i < sizeof(buf); i += 8) {
		uint64_t v = rnd();

		memcpy(buf + i, &v, 8);
	}
	switch (rndn(4)) {
	case 0:
		/* A known command with random bytes: all fields garbage. */
		cmd = valid_cmds[rndn(NVALID)];
		/* Not REG_MR with random bytes: it could pin anything mapped. */
		if (cmd == TBRDMA_IOC_REG_MR || cmd == TBRDMA_IOC_CREATE_QUEUES)
			cmd = TBRDMA_IOC_EP_STATE;
		break;
	case 1:
		/* Our magic, other numbers, sizes and directions. */
		cmd = _IOC(rndn(4), TBRDMA_IOC_MAGIC, rndn(16), rndn(300));
		break;
	default:
		/*
		 * Anything, except the types the VFS itself handles before
		 * the driver sees them (FIFREEZE, FS_IOC_SETFLAGS, FIOCLEX,
		 * FICLONE, FIGETBSZ...): those act on the file system, not us.
		 */
		do {
			cmd = (unsigned long)(uint32_t)rnd();
			type = (int)_IOC_TYPE(cmd);
		} while (type == 'X' || type == 'f' || type == 'T' || type == 0x94 || type == 0);
		break;
	}
	ret = raw_ioctl(f->fd, cmd, chance(4) ? place_arg((enum argkind)rndn(ARG_NKINDS), buf, sizeof(buf)) : buf);
	count_err(ret);
	if (!is_valid_cmd(cmd) && ret != -ENOTTY)
		violation("unknown ioctl 0x%lx returned %d, not ENOTTY", cmd, ret);
	if (ret == 0 && cmd == TBRDMA_IOC_CREATE_EP) {
		/* An endpoint we do not track: it goes with its context. */
	}
}

static void action(void);

static void act_fork(void)
{
	pid_t pid;
	int status;

	st.forks++;
	for (int i = 0; i < NFILES; i++)
		files[i].shared = 1;
	pid = fork();
	if (pid < 0)
		return;
	if (!pid) {
		/* The child fuzzes on the shared files, then leaves. */
		rng ^= 0xc0ffee;
		for (int i = 0; i < 30; i++)
			action();
		if (chance(2))
			raise(SIGKILL);
		_exit(0);
	}
	if (waitpid(pid, &status, 0) == pid && WIFSIGNALED(status) && WTERMSIG(status) != SIGKILL)
		violation("forked child died of signal %d", WTERMSIG(status));
}

static void action(void)
{
	struct ffile *f = pick_file();
	uint32_t a = rndn(100);

	st.iters++;
	if (a < 8)
		act_query(f);
	else if (a < 28)
		act_reg(f);
	else if (a < 36)
		act_dereg(f);
	else if (a < 44)
		act_create_queues(f);
	else if (a < 48)
		act_destroy_queues(f);
	else if (a < 58)
		act_ep(f);
	else if (a < 80)
		act_doorbell(f);
	else if (a < 88)
		act_mmap(f);
	else if (a < 97)
		act_random_ioctl(f);
	else if (a < 99)
		close_file(f);
	else if (chance(8))
		act_fork();
	else
		act_query(f);
}

/* --- racing threads ------------------------------------------------------ */

#define RACE_LEN (256u << 10)
static _Atomic(uint8_t *) race_buf;
static _Atomic int race_fd = -1;

/* Registers buffers that racer_unmap() unmaps at the same moment. */
static void *racer_reg(void *arg)
{
	uint64_t r = (uint64_t)(uintptr_t)arg;
	int fd = tbk_open();
	uint64_t key;

	while (!stop) {
		uint8_t *p = mmap(NULL, RACE_LEN, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED)
			continue;
		if (tbk_rand64(&r) & 1)
			memset(p, 1, RACE_LEN);
		atomic_store(&race_buf, p);
		st.race_reg++;
		if (!tbk_reg(fd, p, RACE_LEN, 1 + (uint32_t)(tbk_rand64(&r) % 15), &key)) {
			st.race_reg_ok++;
			if (tbk_rand64(&r) & 1)
				tbk_dereg(fd, key);
		}
		/* Wait for the other thread to unmap it. */
		while (atomic_load(&race_buf) && !stop)
			sched_yield();
		if (!(tbk_rand64(&r) % 16)) {
			close(fd);	/* with whatever is still registered */
			fd = tbk_open();
		}
	}
	close(fd);
	return NULL;
}

static void *racer_unmap(void *arg)
{
	uint64_t r = (uint64_t)(uintptr_t)arg;

	while (!stop) {
		uint8_t *p = atomic_load(&race_buf);

		if (!p) {
			sched_yield();
			continue;
		}
		for (uint64_t spin = tbk_rand64(&r) % 20000; spin; spin--)
			__asm__ volatile("" ::: "memory");
		munmap(p, RACE_LEN);
		atomic_store(&race_buf, NULL);
	}
	return NULL;
}

/* Posts work on a file that racer_close() closes under it. */
static void *racer_post(void *arg)
{
	uint64_t r = (uint64_t)(uintptr_t)arg;
	uint8_t *buf = mmap(NULL, RACE_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct tbrdma_cqe cqe;
	struct tbrdma_sqe s;
	struct tbk_ctx c;
	uint64_t key = 0;
	int ep = -1;

	memset(&c, 0, sizeof(c));
	while (!stop) {
		int fd = atomic_load(&race_fd);

		if (fd < 0) {
			if (c.sqc)
				tbk_ctx_unmap(&c);
			fd = tbk_open();
			if (tbk_ctx_create(fd, &c, 16, 32, 4) || tbk_reg(fd, buf, RACE_LEN, TBRDMA_ACCESS_ALL, &key) ||
			    (ep = tbk_ep(&c, 0, c.ctx_id, c.secret)) < 0) {
				close(fd);
				continue;
			}
			atomic_store(&race_fd, fd);
		}
		/* Rings stay mapped even when the fd is closed under us. */
		tbk_sqe_rw(&s, (tbk_rand64(&r) & 1) ? TBRDMA_OP_WRITE : TBRDMA_OP_READ, (uint32_t)ep, 1,
			   buf, key, (uint32_t)(tbk_rand64(&r) % RACE_LEN / 2), (uintptr_t)buf + RACE_LEN / 2, key);
		c.fd = fd;
		tbk_post(&c, &s, NULL, NULL, 50);
		while (tbk_cq_take(&c, &cqe))
			st.race_cqes++;
		if (!(tbk_rand64(&r) % 8))
			tbk_reg(fd, buf + (tbk_rand64(&r) % RACE_LEN), 1 + tbk_rand64(&r) % 8192, 1, &key);
	}
	if (c.sqc)
		tbk_ctx_unmap(&c);
	return NULL;
}

static void *racer_close(void *arg)
{
	uint64_t r = (uint64_t)(uintptr_t)arg;

	while (!stop) {
		usleep((useconds_t)(tbk_rand64(&r) % 20000));
		int fd = atomic_exchange(&race_fd, -1);

		if (fd >= 0) {
			close(fd);
			st.race_close++;
		}
	}
	return NULL;
}

/* --- the end ------------------------------------------------------------- */

static int sanity(void)
{
	uint8_t *a = mmap(NULL, 128 << 10, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct tbrdma_sqe s;
	struct tbrdma_cqe cqe;
	struct tbk_ctx c;
	uint64_t key;
	int fd = tbk_open(), ep, ret;

	for (int i = 0; i < 65536; i++)
		a[i] = (uint8_t)(i * 13);
	memset(a + 65536, 0, 65536);
	if ((ret = tbk_ctx_create(fd, &c, 8, 8, 4)) || (ret = tbk_reg(fd, a, 128 << 10, TBRDMA_ACCESS_ALL, &key)))
		return printf("fuzz: sanity: set-up failed: %s\n", strerror(-ret)), -1;
	if ((ep = tbk_ep(&c, 0, c.ctx_id, c.secret)) < 0)
		return printf("fuzz: sanity: CREATE_EP: %s\n", strerror(-ep)), -1;
	/* WRITE the first half onto the second, READ it back into the first. */
	tbk_sqe_rw(&s, TBRDMA_OP_WRITE, (uint32_t)ep, 1, a, key, 65536, (uintptr_t)a + 65536, key);
	if ((ret = tbk_post(&c, &s, NULL, NULL, 10000)))
		return printf("fuzz: sanity: post: %s\n", strerror(-ret)), -1;
	if (!tbk_cq_wait(&c, &cqe, 20000) || cqe.status)
		return printf("fuzz: sanity: WRITE did not complete well\n"), -1;
	memset(a, 0, 65536);
	tbk_sqe_rw(&s, TBRDMA_OP_READ, (uint32_t)ep, 2, a, key, 65536, (uintptr_t)a + 65536, key);
	if ((ret = tbk_post(&c, &s, NULL, NULL, 10000)))
		return printf("fuzz: sanity: post: %s\n", strerror(-ret)), -1;
	if (!tbk_cq_wait(&c, &cqe, 20000) || cqe.status)
		return printf("fuzz: sanity: READ did not complete well\n"), -1;
	for (int i = 0; i < 65536; i++)
		if (a[i] != (uint8_t)(i * 13))
			return printf("fuzz: sanity: data differs at %d\n", i), -1;
	tbk_ctx_unmap(&c);
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t seed = 0;
	double seconds = 60, t0, last_print;
	pthread_t th[4];
	int opt, have_seed = 0;
	long pin;

	tbk_prog = "tbk_fuzz";
	while ((opt = getopt(argc, argv, "s:t:q")) != -1) {
		switch (opt) {
		case 's': seed = strtoull(optarg, NULL, 0); have_seed = 1; break;
		case 't': seconds = atof(optarg); break;
		case 'q': quiet = 1; break;
		default:
			fprintf(stderr, "usage: %s [-s SEED] [-t SECONDS] [-q]\n", argv[0]);
			return 2;
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!have_seed) {
		seed = (uint64_t)getpid() * 0x9e3779b97f4a7c15ull ^ (uint64_t)(tbk_now() * 1e9);
	}
	printf("fuzz: seed %llu (reproduce: %s -s %llu -t %g), uid %d\n", (unsigned long long)seed,
	       argv[0], (unsigned long long)seed, seconds, (int)getuid());
	rng = seed;
	signal(SIGPIPE, SIG_IGN);
	for (int i = 0; i < NFILES; i++)
		files[i].fd = -1;
	setup_memory();

	pthread_create(&th[0], NULL, racer_reg, (void *)(uintptr_t)(seed + 1));
	pthread_create(&th[1], NULL, racer_unmap, (void *)(uintptr_t)(seed + 2));
	pthread_create(&th[2], NULL, racer_post, (void *)(uintptr_t)(seed + 3));
	pthread_create(&th[3], NULL, racer_close, (void *)(uintptr_t)(seed + 4));

	t0 = last_print = tbk_now();
	while (tbk_now() - t0 < seconds) {
		for (int i = 0; i < 64; i++)
			action();
		if (!quiet && tbk_now() - last_print >= 10) {
			last_print = tbk_now();
			printf("fuzz: %.0f s: %lu actions, %lu ioctls, %lu violations\n",
			       last_print - t0, st.iters, st.ioctls, violations);
		}
	}
	stop = 1;
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	{
		int fd = atomic_exchange(&race_fd, -1);

		if (fd >= 0)
			close(fd);
	}
	for (int i = 0; i < NFILES; i++)
		if (files[i].fd >= 0) {
			close(files[i].fd);
			files[i].fd = -1;
		}
	for (int i = 0; i < NMAPS; i++)
		map_drop(i);

	printf("fuzz: %lu actions in %.0f s: %lu ioctls (%lu DOORBELL with %lu SQEs written, %lu accepted; "
	       "%lu mmap), %lu regions registered, %lu reopens, %lu forks; %lu completions seen",
	       st.iters, tbk_now() - t0, st.ioctls, st.doorbells, st.sqes, st.posted, st.mmaps, st.regs_ok,
	       st.reopen, st.forks, st.cqes);
	for (int i = 0; i <= TBRDMA_WC_STATUS_MAX + 1; i++)
		if (st.wc[i])
			printf(" %s=%lu", i <= TBRDMA_WC_STATUS_MAX ? tbk_status_name((unsigned)i) : "bad", st.wc[i]);
	printf("\nfuzz: racers: %lu registrations against munmap (%lu succeeded), %lu closes under "
	       "posting (%lu completions there)\n", st.race_reg, st.race_reg_ok, st.race_close, st.race_cqes);
	printf("fuzz: results:");
	for (int i = 0; i < 140; i++)
		if (st.err[i])
			printf(" %s=%lu", i ? strerrorname_np(i) ? strerrorname_np(i) : "?" : "ok", st.err[i]);
	printf("\nfuzz: DOORBELL results:");
	for (int i = 0; i < 140; i++)
		if (st.db_err[i])
			printf(" %s=%lu", i ? strerrorname_np(i) ? strerrorname_np(i) : "?" : "ok", st.db_err[i]);
	printf("\n");

	pin = tbk_vmpin_kb();
	if (pin != 0)
		violation("VmPin is %ld kB with every file closed and unmapped", pin);
	if (sanity())
		violation("the device no longer works after fuzzing");
	if (violations) {
		printf("fuzz: FAIL: %lu violations (seed %llu)\n", violations, (unsigned long long)seed);
		return 1;
	}
	printf("fuzz: PASS: seed %llu, %.0f s, no violation, VmPin 0 at the end, link 0 still moves data\n",
	       (unsigned long long)seed, seconds);
	return 0;
}
