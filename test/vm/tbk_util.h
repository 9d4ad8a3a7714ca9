/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Small helpers for the kernel-module test programs of test/vm: the raw
 * /dev/tbrdma ABI (include/uapi/rdma/tbrdma_abi.h), no device library, so the
 * tests see exactly what the module does.
 */
#ifndef TBK_UTIL_H
#define TBK_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "rdma/tbrdma_abi.h"

#define TBK_DEV "/dev/tbrdma"

/* Prints "prog: message" (and strerror(errno) for tbk_die_errno) and exits 1. */
void tbk_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void tbk_die_errno(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
extern const char *tbk_prog;

/* One context of an open file with its three rings mapped. */
struct tbk_ctx {
	int fd;
	uint32_t ctx;			/* handle in the file */
	uint32_t ctx_id;		/* id on the links */
	uint64_t secret;		/* what requests to it carry */
	struct tbrdma_create_queues q;
	struct tbrdma_ring_ctrl *sqc, *cqc, *rqc;
	struct tbrdma_sqe *sq;
	struct tbrdma_cqe *cq;
	uint8_t *rq;
	uint32_t sq_mask, cq_mask, rq_mask;
	uint32_t sq_prod;		/* next SQE slot we write */
	uint32_t cq_cons;		/* next CQE we read */
	uint32_t rq_cons;
	uint32_t posted, completed;
};

int tbk_open(void);			/* dies on failure */
/* ioctl that returns -errno instead of -1. */
int tbk_ioctl(int fd, unsigned long cmd, void *arg);

/* REG_MR; returns 0 or -errno. */
int tbk_reg(int fd, const void *addr, uint64_t len, uint32_t access, uint64_t *key);
int tbk_dereg(int fd, uint64_t key);

/* CREATE_QUEUES + mmap of the rings; returns 0 or -errno. */
int tbk_ctx_create(int fd, struct tbk_ctx *c, uint32_t sq, uint32_t cq, uint32_t rq);
/* Unmaps the rings (the context lives on until DESTROY_QUEUES or close). */
void tbk_ctx_unmap(struct tbk_ctx *c);
/* kB of ring pages, which count in VmPin until destroyed and unmapped. */
long tbk_ctx_ring_kb(const struct tbk_ctx *c);
/* CREATE_EP; returns the endpoint handle or -errno. */
int tbk_ep(struct tbk_ctx *c, uint32_t link, uint32_t remote_ctx_id, uint64_t remote_secret);

/*
 * Writes one SQE into the SQ and rings the doorbell. While the SQ or the
 * engine is full (EAGAIN) it consumes completions into *drained (may be
 * NULL: they are dropped, but counted) for up to timeout_ms.
 * Returns 0 or -errno.
 */
typedef void (*tbk_cqe_fn)(const struct tbrdma_cqe *cqe, void *arg);
int tbk_post(struct tbk_ctx *c, const struct tbrdma_sqe *sqe, tbk_cqe_fn fn,
	     void *arg, int timeout_ms);

/* Takes the oldest received message's header if there is one (1), else 0. */
int tbk_rq_take(struct tbk_ctx *c, struct tbrdma_rqe *out);

/*
 * Takes one CQE if there is one (1), else 0. Never blocks.
 */
int tbk_cq_take(struct tbk_ctx *c, struct tbrdma_cqe *out);
/*
 * Waits up to timeout_ms for one CQE (spins briefly, then poll()).
 * Returns 1 with *out, 0 on timeout.
 */
int tbk_cq_wait(struct tbk_ctx *c, struct tbrdma_cqe *out, int timeout_ms);

/* Simple SQE builders (ep, wr_id set by the caller as needed). */
void tbk_sqe_rw(struct tbrdma_sqe *s, uint8_t op, uint32_t ep, uint64_t wr_id,
		const void *local, uint64_t lkey, uint32_t len,
		uint64_t raddr, uint64_t rkey);
void tbk_sqe_atomic(struct tbrdma_sqe *s, uint32_t ep, uint64_t wr_id,
		    uint8_t aop, uint8_t size, uint64_t raddr, uint64_t rkey,
		    uint64_t operand, uint64_t compare);

/* Zeroed memory that forked children share with their parent; dies on failure. */
void *tbk_shared_zalloc(size_t len);

/* "VmPin" of /proc/self/status in kB, or -1. */
long tbk_vmpin_kb(void);
/* Monotonic seconds. */
double tbk_now(void);
const char *tbk_status_name(unsigned int status);

/* splitmix64: the reproducible generator of the fuzzer. */
static inline uint64_t tbk_rand64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Writes/reads a whole buffer on a pipe; die on failure. */
void tbk_write_all(int fd, const void *buf, size_t len);
/* Returns 0 at EOF before anything was read, 1 when complete; dies otherwise. */
int tbk_read_all(int fd, void *buf, size_t len);

#endif /* TBK_UTIL_H */
