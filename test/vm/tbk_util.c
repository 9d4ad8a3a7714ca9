// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* Helpers for the test/vm programs: see tbk_util.h. */
#define _GNU_SOURCE
#include "tbk_util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

const char *tbk_prog = "tbk";

static void __attribute__((noreturn)) tbk_vdie(int err, const char *fmt, va_list ap)
{
	fprintf(stderr, "%s[%d]: ", tbk_prog, (int)getpid());
	vfprintf(stderr, fmt, ap);
	if (err)
		fprintf(stderr, ": %s", strerror(err));
	fputc('\n', stderr);
	exit(1);
}

void tbk_die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tbk_vdie(0, fmt, ap);
}

void tbk_die_errno(const char *fmt, ...)
{
	int err = errno;
	va_list ap;

	va_start(ap, fmt);
	tbk_vdie(err, fmt, ap);
}

int tbk_open(void)
{
	int fd = open(TBK_DEV, O_RDWR | O_CLOEXEC);

	if (fd < 0)
		tbk_die_errno("open %s", TBK_DEV);
	return fd;
}

int tbk_ioctl(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg) < 0 ? -errno : 0;
}

int tbk_reg(int fd, const void *addr, uint64_t len, uint32_t access, uint64_t *key)
{
	struct tbrdma_reg_mr r;
	int ret;

	memset(&r, 0, sizeof(r));
	r.addr = (uintptr_t)addr;
	r.length = len;
	r.access = access;
	ret = tbk_ioctl(fd, TBRDMA_IOC_REG_MR, &r);
	if (!ret && key)
		*key = r.key;
	return ret;
}

int tbk_dereg(int fd, uint64_t key)
{
	struct tbrdma_dereg_mr d = { .key = key };

	return tbk_ioctl(fd, TBRDMA_IOC_DEREG_MR, &d);
}

static void *tbk_map(int fd, uint64_t off, uint64_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)off);

	return p == MAP_FAILED ? NULL : p;
}

int tbk_ctx_create(int fd, struct tbk_ctx *c, uint32_t sq, uint32_t cq, uint32_t rq)
{
	int ret;

	memset(c, 0, sizeof(*c));
	c->fd = fd;
	c->q.sq_entries = sq;
	c->q.cq_entries = cq;
	c->q.rq_entries = rq;
	c->q.event_fd = -1;
	ret = tbk_ioctl(fd, TBRDMA_IOC_CREATE_QUEUES, &c->q);
	if (ret)
		return ret;
	c->ctx = c->q.ctx;
	c->ctx_id = c->q.ctx_id;
	c->secret = c->q.secret;
	c->sqc = tbk_map(fd, c->q.sq_offset, c->q.sq_length);
	c->cqc = tbk_map(fd, c->q.cq_offset, c->q.cq_length);
	c->rqc = tbk_map(fd, c->q.rq_offset, c->q.rq_length);
	if (!c->sqc || !c->cqc || !c->rqc) {
		ret = -errno;
		tbk_ctx_unmap(c);
		return ret;
	}
	c->sq = (struct tbrdma_sqe *)((uint8_t *)c->sqc + TBRDMA_RING_DATA_OFFSET);
	c->cq = (struct tbrdma_cqe *)((uint8_t *)c->cqc + TBRDMA_RING_DATA_OFFSET);
	c->rq = (uint8_t *)c->rqc + TBRDMA_RING_DATA_OFFSET;
	c->sq_mask = c->q.sq_entries - 1;
	c->cq_mask = c->q.cq_entries - 1;
	c->rq_mask = c->q.rq_entries - 1;
	return 0;
}

void tbk_ctx_unmap(struct tbk_ctx *c)
{
	if (c->sqc)
		munmap(c->sqc, c->q.sq_length);
	if (c->cqc)
		munmap(c->cqc, c->q.cq_length);
	if (c->rqc)
		munmap(c->rqc, c->q.rq_length);
	c->sqc = c->cqc = c->rqc = NULL;
}

long tbk_ctx_ring_kb(const struct tbk_ctx *c)
{
	return (long)((c->q.sq_length + c->q.cq_length + c->q.rq_length) / 1024);
}

int tbk_ep(struct tbk_ctx *c, uint32_t link, uint32_t remote_ctx_id, uint64_t remote_secret)
{
	struct tbrdma_create_ep e;
	int ret;

	memset(&e, 0, sizeof(e));
	e.ctx = c->ctx;
	e.link = link;
	e.remote_ctx = remote_ctx_id;
	e.remote_secret = remote_secret;
	ret = tbk_ioctl(c->fd, TBRDMA_IOC_CREATE_EP, &e);
	return ret ? ret : (int)e.ep;
}

int tbk_rq_take(struct tbk_ctx *c, struct tbrdma_rqe *out)
{
	uint32_t prod = __atomic_load_n(&c->rqc->producer, __ATOMIC_ACQUIRE);

	if (prod == c->rq_cons)
		return 0;
	memcpy(out, c->rq + (size_t)(c->rq_cons & c->rq_mask) * TBRDMA_RQE_SLOT, sizeof(*out));
	c->rq_cons++;
	__atomic_store_n(&c->rqc->consumer, c->rq_cons, __ATOMIC_RELEASE);
	return 1;
}

int tbk_cq_take(struct tbk_ctx *c, struct tbrdma_cqe *out)
{
	uint32_t prod = __atomic_load_n(&c->cqc->producer, __ATOMIC_ACQUIRE);

	if (prod == c->cq_cons)
		return 0;
	*out = c->cq[c->cq_cons & c->cq_mask];
	c->cq_cons++;
	__atomic_store_n(&c->cqc->consumer, c->cq_cons, __ATOMIC_RELEASE);
	c->completed++;
	return 1;
}

int tbk_cq_wait(struct tbk_ctx *c, struct tbrdma_cqe *out, int timeout_ms)
{
	double end = tbk_now() + timeout_ms / 1000.0;
	int spins = 0;

	for (;;) {
		struct pollfd p = { .fd = c->fd, .events = POLLIN };

		if (tbk_cq_take(c, out))
			return 1;
		if (++spins < 200) {
			__builtin_ia32_pause();
			continue;
		}
		if (tbk_now() >= end)
			return 0;
		/* The kernel arms the rings itself; 100 ms bounds a lost wake-up. */
		poll(&p, 1, 100);
	}
}

int tbk_post(struct tbk_ctx *c, const struct tbrdma_sqe *sqe, tbk_cqe_fn fn,
	     void *arg, int timeout_ms)
{
	double end = tbk_now() + timeout_ms / 1000.0;
	struct tbrdma_doorbell db;
	struct tbrdma_cqe cqe;
	int ret;

	/* Room in the SQ: the kernel's consumer index tells. */
	while (c->sq_prod - __atomic_load_n(&c->sqc->consumer, __ATOMIC_ACQUIRE) > c->sq_mask) {
		if (tbk_now() >= end)
			return -ETIMEDOUT;
		if (tbk_cq_wait(c, &cqe, 10) && fn)
			fn(&cqe, arg);
	}
	c->sq[c->sq_prod & c->sq_mask] = *sqe;
	c->sq_prod++;
	__atomic_store_n(&c->sqc->producer, c->sq_prod, __ATOMIC_RELEASE);
	for (;;) {
		memset(&db, 0, sizeof(db));
		db.ctx = c->ctx;
		db.sq_producer = c->sq_prod;
		ret = tbk_ioctl(c->fd, TBRDMA_IOC_DOORBELL, &db);
		if (!ret) {
			/* All of ours up to sq_prod went (they were all before). */
			if (__atomic_load_n(&c->sqc->consumer, __ATOMIC_ACQUIRE) == c->sq_prod)
				break;
		} else if (ret != -EAGAIN) {
			/* Take it back: the slot is ours again. */
			c->sq_prod--;
			return ret;
		}
		if (tbk_now() >= end) {
			c->sq_prod--;
			return -ETIMEDOUT;
		}
		if (tbk_cq_wait(c, &cqe, 10) && fn)
			fn(&cqe, arg);
	}
	c->posted++;
	return 0;
}

void tbk_sqe_rw(struct tbrdma_sqe *s, uint8_t op, uint32_t ep, uint64_t wr_id,
		const void *local, uint64_t lkey, uint32_t len,
		uint64_t raddr, uint64_t rkey)
{
	memset(s, 0, sizeof(*s));
	s->opcode = op;
	s->ep = ep;
	s->wr_id = wr_id;
	s->local_addr = (uintptr_t)local;
	s->lkey = lkey;
	s->length = len;
	s->remote_addr = raddr;
	s->rkey = rkey;
}

void tbk_sqe_atomic(struct tbrdma_sqe *s, uint32_t ep, uint64_t wr_id,
		    uint8_t aop, uint8_t size, uint64_t raddr, uint64_t rkey,
		    uint64_t operand, uint64_t compare)
{
	memset(s, 0, sizeof(*s));
	s->opcode = TBRDMA_OP_ATOMIC;
	s->ep = ep;
	s->wr_id = wr_id;
	s->atomic_op = aop;
	s->atomic_size = size;
	s->remote_addr = raddr;
	s->rkey = rkey;
	s->operand = operand;
	s->compare = compare;
}

long tbk_vmpin_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kb = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmPin: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

double tbk_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

const char *tbk_status_name(unsigned int status)
{
	static const char *const names[] = {
		"SUCCESS", "LOC_ACCESS_ERR", "REM_ACCESS_ERR", "REM_INVALID",
		"LINK_DOWN", "CANCELED", "FLUSH_ERR", "RNR_RETRY_EXC_ERR",
		"REFUSED",
	};

	return status < sizeof(names) / sizeof(names[0]) ? names[status] : "?";
}

void tbk_write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			tbk_die_errno("write to pipe");
		p += n;
		len -= (size_t)n;
	}
}

int tbk_read_all(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;
	size_t done = 0;

	while (done < len) {
		ssize_t n = read(fd, p + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			tbk_die_errno("read from pipe");
		if (n == 0) {
			if (!done)
				return 0;
			tbk_die("pipe closed after %zu of %zu bytes", done, len);
		}
		done += (size_t)n;
	}
	return 1;
}

void *tbk_shared_zalloc(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		tbk_die_errno("mmap");
	memset(p, 0, len);
	return p;
}
