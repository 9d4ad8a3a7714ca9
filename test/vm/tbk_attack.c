// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * tbk_attack: a second local user against a first one's memory, through
 * tbrdma.ko (vm/security, test/vm/security-guest.sh runs both roles).
 *
 *   tbk_attack victim INFO_FILE
 *       Registers a region, publishes {context id, address, length} in
 *       INFO_FILE (but neither its secret nor its key), and runs traffic
 *       of its own (WRITE, READ back, fetch-add, each verified) to that
 *       context until INFO_FILE.done appears, counting its rounds in
 *       INFO_FILE.progress. Then checks that the region
 *       is unchanged, its receive ring empty, and its traffic all good.
 *   tbk_attack attacker INFO_FILE
 *       Knows what the victim published and tries every way in: pings
 *       to 511 low context ids and the victim's, with guessed
 *       secrets; 2000 endpoints with guessed secrets and random keys,
 *       each trying WRITE, READ, ATOMIC and SEND; the statuses of its own
 *       second context, which it may reach, for a wrong key, bounds,
 *       rights, secret and id (all must look alike); an executable ring
 *       mapping; read-only memory registered for writing; and a receive
 *       queue of its own kept full on the same link, which must not stop
 *       the victim's traffic. Then creates INFO_FILE.done.
 *
 *   tbk_attack memcg MAX_MIB
 *       Run as root inside a memory cgroup whose memory.max is MAX_MIB
 *       (no RLIMIT_MEMLOCK applies): creating contexts with 4 MiB rings
 *       fails with ENOMEM before they pass the cgroup's limit.
 *   tbk_attack limits
 *       What one user's memory and contexts are bounded by: ring pages
 *       count against RLIMIT_MEMLOCK (set to 256 KiB here) with VmPin,
 *       queues destroyed while still mapped keep their charge (so they
 *       cannot be re-created past it) until unmapped, and contexts stop
 *       at the module's max_user_contexts with EMFILE.
 *
 * Each role prints "PASS: ..." / "FAIL: ..." lines and exits 0 only if
 * every check passed.
 */
#define _GNU_SOURCE
#include "tbk_util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#define LINK 0u			/* loop0: reaches every context of the host */
#define REGION (64u * 1024)
#define TRAFFIC_OFF (32u * 1024) /* the victim's own traffic goes here */
#define PROBE_IDS 512u
#define GUESSES 2000u
#define WAIT_MS 5000
#define HELD_SENDS 32u		/* to a receive queue of 2 */

struct info {
	uint32_t ctx_id;
	uint64_t addr;
	uint64_t len;
};

static int failures;

static void check(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void check(int ok, const char *fmt, ...)
{
	va_list ap;

	printf("%s: ", ok ? "PASS" : "FAIL");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	failures += !ok;
}

static void pattern(uint8_t *p, uint32_t len, uint8_t seed)
{
	for (uint32_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed + i * 13 + (i >> 9));
}

/* Posts n SQEs and waits for their n completions; statuses into st. */
static int run_ops(struct tbk_ctx *c, const struct tbrdma_sqe *s, unsigned int n,
		   uint8_t *st)
{
	struct tbrdma_cqe cqe;

	for (unsigned int i = 0; i < n; i++)
		if (tbk_post(c, &s[i], NULL, NULL, WAIT_MS))
			return -1;
	for (unsigned int i = 0; i < n; i++) {
		if (!tbk_cq_wait(c, &cqe, WAIT_MS))
			return -1;
		if (cqe.wr_id < n)
			st[cqe.wr_id] = cqe.status;
	}
	return 0;
}

static uint8_t run_one(struct tbk_ctx *c, const struct tbrdma_sqe *s)
{
	uint8_t st = 0xff;

	return run_ops(c, s, 1, &st) ? 0xff : st;
}

static void destroy_ep(struct tbk_ctx *c, int ep)
{
	struct tbrdma_ep_ref r = { .ctx = c->ctx, .ep = (uint32_t)ep };

	tbk_ioctl(c->fd, TBRDMA_IOC_DESTROY_EP, &r);
}

static void ping(struct tbrdma_sqe *s, int ep)
{
	tbk_sqe_rw(s, TBRDMA_OP_WRITE, (uint32_t)ep, 0, NULL, 0, 0, 0, 0);
}

/* ---- the victim ---------------------------------------------------------- */

static int victim(const char *info_path)
{
	struct tbk_ctx v, w;
	uint64_t key, lkey, adds = 0, ops = 0, bad = 0;
	char done_path[512], tmp_path[512], progress_path[512];
	uint8_t *mem, *local, want[REGION];
	struct info info;
	int fd, ret, ep, progress;
	FILE *f;

	mem = mmap(NULL, REGION, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	local = mmap(NULL, REGION, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED || local == MAP_FAILED)
		tbk_die_errno("mmap");
	pattern(mem, TRAFFIC_OFF, 42);
	memcpy(want, mem, TRAFFIC_OFF);
	fd = tbk_open();
	if ((ret = tbk_ctx_create(fd, &v, 4, 4, 16)) || (ret = tbk_ctx_create(fd, &w, 16, 16, 4)))
		tbk_die("CREATE_QUEUES: %s", strerror(-ret));
	if ((ret = tbk_reg(fd, mem, REGION, TBRDMA_ACCESS_REMOTE_READ | TBRDMA_ACCESS_REMOTE_WRITE |
			   TBRDMA_ACCESS_REMOTE_ATOMIC, &key)) ||
	    (ret = tbk_reg(fd, local, REGION, TBRDMA_ACCESS_LOCAL, &lkey)))
		tbk_die("REG_MR: %s", strerror(-ret));
	ep = tbk_ep(&w, LINK, v.ctx_id, v.secret);
	if (ep < 0)
		tbk_die("CREATE_EP: %s", strerror(-ep));

	info.ctx_id = v.ctx_id;
	info.addr = (uintptr_t)mem;
	info.len = REGION;
	snprintf(tmp_path, sizeof(tmp_path), "%s.tmp", info_path);
	snprintf(done_path, sizeof(done_path), "%s.done", info_path);
	snprintf(progress_path, sizeof(progress_path), "%s.progress", info_path);
	progress = open(progress_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (progress < 0)
		tbk_die_errno("creating %s", progress_path);
	f = fopen(tmp_path, "w");
	if (!f || fprintf(f, "%u %llu %llu\n", info.ctx_id, (unsigned long long)info.addr,
			  (unsigned long long)info.len) < 0 || fclose(f) ||
	    rename(tmp_path, info_path))
		tbk_die_errno("publishing %s", info_path);

	/* Its own traffic, verified, until the attacker is done (or 10 min). */
	for (double t0 = tbk_now(); access(done_path, F_OK) && tbk_now() - t0 < 600;) {
		struct tbrdma_sqe s[3];
		uint8_t st[3] = { 0xff, 0xff, 0xff };
		uint64_t before;

		pattern(local, 4096, (uint8_t)ops);
		tbk_sqe_rw(&s[0], TBRDMA_OP_WRITE, (uint32_t)ep, 0, local, lkey, 4096,
			   info.addr + TRAFFIC_OFF, key);
		tbk_sqe_rw(&s[1], TBRDMA_OP_READ, (uint32_t)ep, 1, local + 8192, lkey, 4096,
			   info.addr + TRAFFIC_OFF, key);
		s[1].flags = TBRDMA_SQE_FENCE;
		memcpy(&before, mem + TRAFFIC_OFF + 16384, 8);
		tbk_sqe_atomic(&s[2], (uint32_t)ep, 2, TBRDMA_ATOMIC_ADD, 8,
			       info.addr + TRAFFIC_OFF + 16384, key, 1, 0);
		if (run_ops(&w, s, 3, st) || st[0] || st[1] || st[2] ||
		    memcmp(local, local + 8192, 4096)) {
			if (bad++ < 3)
				printf("victim: operation %llu failed: %s %s %s\n",
				       (unsigned long long)ops, tbk_status_name(st[0]),
				       tbk_status_name(st[1]), tbk_status_name(st[2]));
		}
		ops += 3;
		adds++;
		if (pwrite(progress, &adds, sizeof(adds), 0) != sizeof(adds))
			tbk_die_errno("writing %s", progress_path);
	}
	{
		uint64_t counter;

		memcpy(&counter, mem + TRAFFIC_OFF + 16384, 8);
		check(ops > 0 && !bad && counter == adds,
		      "the victim's own traffic during the attack: %llu operations (WRITE, fenced "
		      "READ back, fetch-add), %llu failed, counter %llu of %llu",
		      (unsigned long long)ops, (unsigned long long)bad,
		      (unsigned long long)counter, (unsigned long long)adds);
	}
	check(!memcmp(mem, want, TRAFFIC_OFF), "the victim's region is unchanged");
	check(__atomic_load_n(&v.rqc->producer, __ATOMIC_ACQUIRE) == 0,
	      "nothing reached the victim's receive ring");
	return failures ? 1 : 0;
}

/* ---- the attacker -------------------------------------------------------- */

/* Pings context ids with guessed secrets. */
static void probe_ids(struct tbk_ctx *a, const struct info *info, uint64_t *rng)
{
	unsigned int refused = 0, other = 0;
	uint8_t victim_st = 0xff;

	for (uint32_t i = 0; i < PROBE_IDS; i++) {
		/* The low ids, and the victim's last. */
		uint32_t id = i + 1 < PROBE_IDS ? i : info->ctx_id;
		struct tbrdma_sqe s;
		int ep = tbk_ep(a, LINK, id, tbk_rand64(rng));
		uint8_t st;

		if (ep < 0) {
			other++;
			continue;
		}
		ping(&s, ep);
		st = run_one(a, &s);
		if (id == info->ctx_id)
			victim_st = st;
		if (st == TBRDMA_WC_REM_ACCESS_ERR)
			refused++;
		else
			other++;
		destroy_ep(a, ep);
	}
	check(refused == PROBE_IDS && victim_st == TBRDMA_WC_REM_ACCESS_ERR,
	      "pings with guessed secrets to context ids 0-%u and to the victim's, %u: "
	      "%u refused alike (REM_ACCESS_ERR), %u otherwise",
	      PROBE_IDS - 2, info->ctx_id, refused, other);
}

/* Endpoints with guessed secrets, each trying every operation with a guessed key. */
static void guess(struct tbk_ctx *a, const struct info *info, uint8_t *local, uint64_t lkey,
		  uint64_t *rng)
{
	unsigned int first_refused = 0, rest_flushed = 0, wrong = 0;
	int untouched = 1;

	memset(local, 0, 4096);
	for (unsigned int i = 0; i < GUESSES; i++) {
		/* The obvious guesses first, then random ones. */
		uint64_t secret = i == 0 ? 0 : i == 1 ? ~0ull : i == 2 ? info->ctx_id : tbk_rand64(rng);
		uint64_t rkey = i < 3 ? i : tbk_rand64(rng);
		uint64_t raddr = info->addr + (tbk_rand64(rng) % info->len & ~7ull);
		int ep = tbk_ep(a, LINK, info->ctx_id, secret);
		struct tbrdma_sqe s[4];
		uint8_t st[4] = { 0xff, 0xff, 0xff, 0xff };

		if (ep < 0) {
			wrong++;
			continue;
		}
		tbk_sqe_rw(&s[0], TBRDMA_OP_WRITE, (uint32_t)ep, 0, local, lkey, 1, raddr, rkey);
		tbk_sqe_rw(&s[1], TBRDMA_OP_READ, (uint32_t)ep, 1, local, lkey, 64, raddr, rkey);
		tbk_sqe_atomic(&s[2], (uint32_t)ep, 2, TBRDMA_ATOMIC_ADD, 8, raddr, rkey, 1, 0);
		tbk_sqe_rw(&s[3], TBRDMA_OP_SEND, (uint32_t)ep, 3, local, lkey, 64, 0, 0);
		/* Rotate which operation goes first. */
		if (i % 4) {
			struct tbrdma_sqe t = s[0];

			s[0] = s[i % 4];
			s[i % 4] = t;
			s[0].wr_id = 0;
			s[i % 4].wr_id = i % 4;
		}
		if (run_ops(a, s, 4, st)) {
			wrong++;
		} else {
			first_refused += st[0] == TBRDMA_WC_REM_ACCESS_ERR;
			for (int k = 1; k < 4; k++) {
				/* Already sent before the NAK came back, or flushed after. */
				if (st[k] == TBRDMA_WC_FLUSH_ERR || st[k] == TBRDMA_WC_REM_ACCESS_ERR)
					rest_flushed++;
				else
					wrong++;
			}
			wrong += st[0] != TBRDMA_WC_REM_ACCESS_ERR;
		}
		destroy_ep(a, ep);
	}
	for (int k = 0; k < 4096; k++)
		untouched &= !local[k];
	check(first_refused == GUESSES && !wrong && untouched,
	      "%u endpoints to the victim's context with guessed secrets (0, ~0, its id, random) "
	      "and keys, each trying WRITE, READ, ATOMIC and SEND: %u refused (REM_ACCESS_ERR), "
	      "%u others refused or flushed, %u otherwise; nothing read into our buffer",
	      GUESSES, first_refused, rest_flushed, wrong);
}

/*
 * Against our own second context, where we know the secret and the key:
 * a wrong key, bytes out of bounds, a missing right, a wrong secret and
 * an id that does not exist must all come back as the same status.
 */
static void uniform_refusals(struct tbk_ctx *a, uint8_t *local, uint64_t lkey, uint64_t *rng)
{
	static const char *const what[] = { "wrong key", "out of bounds", "no write right",
					    "wrong secret", "no such context" };
	uint8_t *mine = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t st[5], good = 0xff;
	struct tbrdma_sqe s;
	struct tbk_ctx b;
	uint64_t key;
	int ret, ok = 1;

	if (mine == MAP_FAILED)
		tbk_die_errno("mmap");
	pattern(mine, 4096, 9);
	if ((ret = tbk_ctx_create(a->fd, &b, 4, 4, 4)))
		tbk_die("CREATE_QUEUES: %s", strerror(-ret));
	if ((ret = tbk_reg(a->fd, mine, 4096, TBRDMA_ACCESS_REMOTE_READ, &key)))
		tbk_die("REG_MR: %s", strerror(-ret));
	for (int k = 0; k <= 5; k++) {
		uint32_t id = k == 4 ? b.ctx_id ^ 0x40000000u : b.ctx_id;
		uint64_t secret = k == 3 ? b.secret ^ 1 : b.secret;
		int ep = tbk_ep(a, LINK, id, secret);

		if (ep < 0)
			tbk_die("CREATE_EP: %s", strerror(-ep));
		if (k == 2)
			tbk_sqe_rw(&s, TBRDMA_OP_WRITE, (uint32_t)ep, 0, local, lkey, 8,
				   (uintptr_t)mine, key);
		else
			tbk_sqe_rw(&s, TBRDMA_OP_READ, (uint32_t)ep, 0, local, lkey, 8,
				   (uintptr_t)mine + (k == 1 ? 4092 : 0),
				   k == 0 ? key ^ (1ull << (tbk_rand64(rng) % 64)) : key);
		if (k < 5) {
			st[k] = run_one(a, &s);
			ok &= st[k] == TBRDMA_WC_REM_ACCESS_ERR;
		} else {
			good = run_one(a, &s);
		}
		destroy_ep(a, ep);
	}
	for (int k = 0; k < 5; k++)
		printf("    %s: %s\n", what[k], tbk_status_name(st[k]));
	check(ok && good == TBRDMA_WC_SUCCESS && !memcmp(local, mine, 8),
	      "our own context: wrong key, bounds, rights, secret and id all refused with the one "
	      "status REM_ACCESS_ERR; the right READ succeeds (%s)", tbk_status_name(good));
	tbk_dereg(a->fd, key);
	munmap(mine, 4096);
}

/* What the rings and regions may not become. */
static void hardening(struct tbk_ctx *a)
{
	uint8_t *ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	void *x;
	uint64_t key;
	int r1, r2;

	errno = 0;
	r1 = mprotect(a->sqc, a->q.sq_length, PROT_READ | PROT_WRITE | PROT_EXEC);
	check(r1 == -1 && errno == EACCES, "mprotect(PROT_EXEC) on the mapped SQ refused (%s)",
	      r1 ? strerror(errno) : "allowed");
	x = mmap(NULL, a->q.cq_length, PROT_READ | PROT_EXEC, MAP_SHARED, a->fd, (off_t)a->q.cq_offset);
	check(x == MAP_FAILED, "mmap(PROT_EXEC) of the CQ refused (%s)",
	      x == MAP_FAILED ? strerror(errno) : "allowed");
	if (x != MAP_FAILED)
		munmap(x, a->q.cq_length);

	if (ro == MAP_FAILED)
		tbk_die_errno("mmap");
	r1 = tbk_reg(a->fd, ro, 4096, TBRDMA_ACCESS_REMOTE_READ, &key);
	if (!r1)
		tbk_dereg(a->fd, key);
	r2 = tbk_reg(a->fd, ro, 4096, TBRDMA_ACCESS_REMOTE_WRITE, &key);
	if (!r2)
		tbk_dereg(a->fd, key);
	check(!r1 && r2 < 0, "read-only memory registers for remote READ (%s), not for remote WRITE (%s)",
	      strerror(-r1), r2 ? strerror(-r2) : "allowed");
	munmap(ro, 4096);
}

static uint64_t victim_rounds(const char *info_path)
{
	char path[512];
	uint64_t n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s.progress", info_path);
	f = fopen(path, "r");
	if (!f || fread(&n, sizeof(n), 1, f) != 1)
		n = 0;
	if (f)
		fclose(f);
	return n;
}

/*
 * Keeps a receive queue of our own full with SENDs on the victim's link
 * for a while: only our endpoint may wait (receiver not ready), not the
 * link, so the victim's traffic goes on; then drains it, and every SEND
 * arrives.
 */
static void fill_receive_queue(const char *info_path)
{
	struct tbk_ctx t, s;
	struct tbrdma_sqe sqe;
	struct tbrdma_cqe cqe;
	struct tbrdma_rqe rqe;
	unsigned int done = 0, good = 0, got = 0, in_order = 1;
	uint64_t before, after;
	int fd = tbk_open(), ep, ret;

	if ((ret = tbk_ctx_create(fd, &t, 4, 4, 2)) ||
	    (ret = tbk_ctx_create(fd, &s, 2 * HELD_SENDS, 2 * HELD_SENDS, 2)))
		tbk_die("CREATE_QUEUES: %s", strerror(-ret));
	ep = tbk_ep(&s, LINK, t.ctx_id, t.secret);
	if (ep < 0)
		tbk_die("CREATE_EP: %s", strerror(-ep));
	for (uint32_t i = 0; i < HELD_SENDS; i++) {
		memset(&sqe, 0, sizeof(sqe));
		sqe.opcode = TBRDMA_OP_SEND;
		sqe.flags = TBRDMA_SQE_INLINE;
		sqe.ep = (uint32_t)ep;
		sqe.wr_id = i;
		sqe.imm = i;
		sqe.length = 8;
		if ((ret = tbk_post(&s, &sqe, NULL, NULL, WAIT_MS)))
			tbk_die("post SEND: %s", strerror(-ret));
	}
	before = victim_rounds(info_path);
	for (double t0 = tbk_now(); tbk_now() - t0 < 2;)
		usleep(10000);
	after = victim_rounds(info_path);
	while (tbk_cq_take(&s, &cqe)) {
		done++;
		good += cqe.status == TBRDMA_WC_SUCCESS;
	}
	check(done <= 2 && after > before,
	      "our own receive queue (2 entries) kept full by %u SENDs for 2 s on the same link: "
	      "%u of them completed, and the victim's traffic went on (%llu rounds meanwhile)",
	      HELD_SENDS, done, (unsigned long long)(after - before));

	for (double t0 = tbk_now(); (got < HELD_SENDS || done < HELD_SENDS) &&
				    tbk_now() - t0 < 20;) {
		while (tbk_rq_take(&t, &rqe))
			in_order &= rqe.imm == got++;
		while (tbk_cq_take(&s, &cqe)) {
			done++;
			good += cqe.status == TBRDMA_WC_SUCCESS;
		}
		usleep(1000);
	}
	check(got == HELD_SENDS && in_order && good == HELD_SENDS,
	      "once drained, all %u SENDs arrived in order (%u received) and completed "
	      "successfully (%u of %u)", HELD_SENDS, got, good, done);
	tbk_ctx_unmap(&t);
	tbk_ctx_unmap(&s);
	close(fd);
}

static int destroy_queues(struct tbk_ctx *c)
{
	struct tbrdma_destroy_queues d = { .ctx = c->ctx };

	return tbk_ioctl(c->fd, TBRDMA_IOC_DESTROY_QUEUES, &d);
}

/* Ring memory against RLIMIT_MEMLOCK, and the trick of destroying it mapped. */
static void ring_memory(void)
{
	const struct rlimit rl = { 256 << 10, 256 << 10 };
	struct tbk_ctx c[8], extra;
	long per = 0, pin;
	int fd, n, ret = 0;

	if (setrlimit(RLIMIT_MEMLOCK, &rl))
		tbk_die_errno("setrlimit(RLIMIT_MEMLOCK)");
	fd = tbk_open();
	for (n = 0; n < 8 && !(ret = tbk_ctx_create(fd, &c[n], 4, 4, 16)); n++)
		per = tbk_ctx_ring_kb(&c[n]);
	pin = tbk_vmpin_kb();
	check(n > 0 && n == 256 / per && ret == -ENOMEM && pin == n * per,
	      "RLIMIT_MEMLOCK 256 KiB: %d contexts with %ld KiB of rings each, the next refused (%s), "
	      "VmPin %ld KiB", n, per, ret ? strerror(-ret) : "allowed", pin);

	for (int k = 0; k < n; k++)
		if ((ret = destroy_queues(&c[k])))
			tbk_die("DESTROY_QUEUES: %s", strerror(-ret));
	ret = tbk_ctx_create(fd, &extra, 4, 4, 16);
	pin = tbk_vmpin_kb();
	check(ret == -ENOMEM && pin == n * per,
	      "queues destroyed but still mapped keep their pages charged: creating them again is "
	      "refused (%s), VmPin %ld KiB", ret ? strerror(-ret) : "allowed", pin);
	if (!ret)
		tbk_ctx_unmap(&extra);

	for (int k = 0; k < n; k++)
		tbk_ctx_unmap(&c[k]);
	pin = tbk_vmpin_kb();
	ret = tbk_ctx_create(fd, &extra, 4, 4, 16);
	check(pin == 0 && !ret, "once unmapped they are freed (VmPin %ld KiB) and new queues fit (%s)",
	      pin, strerror(-ret));
	if (!ret)
		tbk_ctx_unmap(&extra);
	close(fd);
}

/* Contexts per user: max_user_contexts, across files. */
static void user_contexts(void)
{
	unsigned int max = 0, n = 0;
	struct tbk_ctx c;
	int fds[8], ret = 0;
	FILE *f = fopen("/sys/module/tbrdma/parameters/max_user_contexts", "r");

	if (!f || fscanf(f, "%u", &max) != 1 || !max || max > 8 * 16)
		tbk_die("max_user_contexts: unreadable or too large for this test (%u)", max);
	fclose(f);
	for (int i = 0; i < 8; i++)
		fds[i] = tbk_open();
	/* Spread over files: the limit is the user's, not the file's. */
	while (n <= max && !(ret = tbk_ctx_create(fds[n % 8], &c, 2, 2, 2))) {
		tbk_ctx_unmap(&c);
		n++;
	}
	check(n == max && ret == -EMFILE,
	      "max_user_contexts %u: %u contexts over 8 files, the next refused (%s)", max, n,
	      ret ? strerror(-ret) : "allowed");
	for (int i = 0; i < 8; i++)
		close(fds[i]);
	fds[0] = tbk_open();
	ret = tbk_ctx_create(fds[0], &c, 2, 2, 2);
	check(!ret, "with those files closed the user creates contexts again (%s)", strerror(-ret));
	if (!ret)
		tbk_ctx_unmap(&c);
	close(fds[0]);
}

/* Ring pages are charged to the memory cgroup of the process. */
static void memcg_rings(unsigned int max_mib)
{
	enum { FILES = 8, PER_FILE = 16 };
	struct tbk_ctx c;
	int fds[FILES], n = 0, ret = 0;
	long per = 0;

	for (int i = 0; i < FILES; i++)
		fds[i] = tbk_open();
	while (n < FILES * PER_FILE &&
	       !(ret = tbk_ctx_create(fds[n / PER_FILE], &c, 2, 2, 1024))) {
		per = tbk_ctx_ring_kb(&c);
		n++;
	}
	check(n > 0 && ret == -ENOMEM && n * per < (long)max_mib * 1024,
	      "in a memory cgroup of %u MiB, as root (RLIMIT_MEMLOCK does not apply): %d contexts "
	      "with %ld KiB of rings each, the next refused (%s): ring pages are charged to the cgroup",
	      max_mib, n, per, ret ? strerror(-ret) : "allowed");
	for (int i = 0; i < FILES; i++)
		close(fds[i]);
}

static int attacker(const char *info_path)
{
	uint64_t rng = (uint64_t)getpid() * 0x9e3779b97f4a7c15ull ^ (uint64_t)(tbk_now() * 1e9);
	char done_path[512];
	unsigned long long addr, len;
	struct info info;
	struct tbk_ctx a;
	uint8_t *local;
	uint64_t lkey;
	int fd, ret;
	FILE *f;

	f = fopen(info_path, "r");
	if (!f || fscanf(f, "%u %llu %llu", &info.ctx_id, &addr, &len) != 3)
		tbk_die("cannot read %s", info_path);
	fclose(f);
	info.addr = addr;
	info.len = len;
	printf("attacker: uid %u; victim context %u, region 0x%llx + %llu\n", getuid(),
	       info.ctx_id, addr, len);

	local = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (local == MAP_FAILED)
		tbk_die_errno("mmap");
	fd = tbk_open();
	if ((ret = tbk_ctx_create(fd, &a, 16, 16, 4)))
		tbk_die("CREATE_QUEUES: %s", strerror(-ret));
	if ((ret = tbk_reg(fd, local, 8192, TBRDMA_ACCESS_LOCAL, &lkey)))
		tbk_die("REG_MR: %s", strerror(-ret));

	fill_receive_queue(info_path);
	probe_ids(&a, &info, &rng);
	guess(&a, &info, local, lkey, &rng);
	uniform_refusals(&a, local + 4096, lkey, &rng);
	hardening(&a);

	snprintf(done_path, sizeof(done_path), "%s.done", info_path);
	f = fopen(done_path, "w");
	if (!f || fclose(f))
		tbk_die_errno("creating %s", done_path);
	return failures ? 1 : 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 3 && !strcmp(argv[1], "victim")) {
		tbk_prog = "tbk_attack(victim)";
		return victim(argv[2]);
	}
	if (argc == 3 && !strcmp(argv[1], "memcg")) {
		tbk_prog = "tbk_attack(memcg)";
		memcg_rings((unsigned int)atoi(argv[2]));
		return failures ? 1 : 0;
	}
	if (argc == 2 && !strcmp(argv[1], "limits")) {
		tbk_prog = "tbk_attack(limits)";
		user_contexts();
		ring_memory();	/* lowers RLIMIT_MEMLOCK for good */
		return failures ? 1 : 0;
	}
	if (argc == 3 && !strcmp(argv[1], "attacker")) {
		tbk_prog = "tbk_attack(attacker)";
		return attacker(argv[2]);
	}
	fprintf(stderr, "usage: %s victim|attacker INFO_FILE | limits | memcg MAX_MIB\n", argv[0]);
	return 2;
}
