// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * tbk_traffic: WRITE + READ between two processes over a loop link of
 * tbrdma.ko, with the pinned-page accounting (VmPin: registered regions and
 * rings) checked at every step.
 *
 *   tbk_traffic [-l LINK] [-n ROUNDS]
 *
 * The parent is the initiator; a forked child is the target. The target
 * opens /dev/tbrdma, registers a buffer for remote read and write, creates
 * its queues and sends {ctx_id, secret, addr, key} through a pipe, then blocks on
 * the pipe. The initiator writes patterns of several sizes into it and
 * reads them back into a second buffer, ROUNDS times. At the end both
 * sides check their memory, deregister, unmap and close, and VmPin must be
 * back to where it started. Prints one "traffic: ..." line; exit 0 = pass.
 */
#define _GNU_SOURCE
#include "tbk_util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define TGT_LEN (1u << 20)

struct tgt_info {
	uint32_t ctx_id;
	uint64_t secret, key;
	uint64_t addr;
};

struct ini_done {
	uint32_t rounds;
	uint32_t last_len;
	uint32_t last_seed;
	uint32_t pad;
};

static const uint32_t sizes[] = { 1, 64, 4095, 4096, 65539, TGT_LEN };
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))

static void fill(uint8_t *p, uint32_t len, uint32_t seed)
{
	uint64_t s = seed;
	uint32_t i;

	for (i = 0; i < len; i++) {
		if (!(i & 7))
			s = tbk_rand64(&s) ^ i;
		p[i] = (uint8_t)(s >> ((i & 7) * 8));
	}
}

static void *alloc_buf(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		tbk_die_errno("mmap %zu", len);
	memset(p, 0, len);
	return p;
}

static void expect_pin(const char *who, const char *when, long want_kb)
{
	long kb = tbk_vmpin_kb();

	if (kb != want_kb)
		tbk_die("%s: VmPin %s is %ld kB, expected %ld kB", who, when, kb, want_kb);
}

static int target(int wr, int rd)
{
	struct tgt_info info;
	struct ini_done done;
	struct tbk_ctx c;
	uint8_t *buf, *want;
	long pin0 = tbk_vmpin_kb();
	int fd, ret;

	tbk_prog = "tbk_traffic(target)";
	buf = alloc_buf(TGT_LEN);
	fd = tbk_open();
	ret = tbk_ctx_create(fd, &c, 16, 16, 4);
	if (ret)
		tbk_die("CREATE_QUEUES: %s", strerror(-ret));
	ret = tbk_reg(fd, buf, TGT_LEN,
		      TBRDMA_ACCESS_REMOTE_READ | TBRDMA_ACCESS_REMOTE_WRITE, &info.key);
	if (ret)
		tbk_die("REG_MR: %s", strerror(-ret));
	expect_pin("target", "after REG_MR", pin0 + tbk_ctx_ring_kb(&c) + TGT_LEN / 1024);
	info.ctx_id = c.ctx_id;
	info.secret = c.secret;
	info.addr = (uintptr_t)buf;
	tbk_write_all(wr, &info, sizeof(info));
	/* Asleep in read() while the initiator works on our memory. */
	if (!tbk_read_all(rd, &done, sizeof(done)))
		tbk_die("initiator went away");
	want = alloc_buf(TGT_LEN);
	fill(want, done.last_len, done.last_seed);
	if (memcmp(buf, want, done.last_len))
		tbk_die("target memory does not hold the last WRITE (%u bytes)", done.last_len);
	tbk_ctx_unmap(&c);
	close(fd);
	expect_pin("target", "after close", pin0);
	return 0;
}

int main(int argc, char **argv)
{
	int t2i[2], i2t[2], opt, fd, ep, ret, status;
	uint32_t link = 0, rounds = 3, r, k;
	uint64_t skey, dkey;
	struct tgt_info info;
	struct ini_done done;
	struct tbrdma_sqe sqe;
	struct tbrdma_cqe cqe;
	struct tbk_ctx c;
	uint8_t *src, *dst;
	long pin0, pin_reg;
	pid_t pid;

	tbk_prog = "tbk_traffic";
	while ((opt = getopt(argc, argv, "l:n:")) != -1) {
		switch (opt) {
		case 'l': link = (uint32_t)atoi(optarg); break;
		case 'n': rounds = (uint32_t)atoi(optarg); break;
		default:
			fprintf(stderr, "usage: %s [-l LINK] [-n ROUNDS]\n", argv[0]);
			return 2;
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (pipe(t2i) || pipe(i2t))
		tbk_die_errno("pipe");
	pid = fork();
	if (pid < 0)
		tbk_die_errno("fork");
	if (!pid) {
		close(t2i[0]);
		close(i2t[1]);
		_exit(target(t2i[1], i2t[0]));
	}
	close(t2i[1]);
	close(i2t[0]);

	pin0 = tbk_vmpin_kb();
	src = alloc_buf(TGT_LEN);
	dst = alloc_buf(TGT_LEN);
	fd = tbk_open();
	ret = tbk_ctx_create(fd, &c, 32, 64, 4);
	if (ret)
		tbk_die("CREATE_QUEUES: %s", strerror(-ret));
	if ((ret = tbk_reg(fd, src, TGT_LEN, TBRDMA_ACCESS_LOCAL, &skey)) ||
	    (ret = tbk_reg(fd, dst, TGT_LEN, TBRDMA_ACCESS_LOCAL, &dkey)))
		tbk_die("REG_MR: %s", strerror(-ret));
	pin_reg = tbk_vmpin_kb();
	expect_pin("initiator", "after REG_MR", pin0 + tbk_ctx_ring_kb(&c) + 2 * TGT_LEN / 1024);
	if (!tbk_read_all(t2i[0], &info, sizeof(info)))
		tbk_die("target failed before publishing its region");
	ep = tbk_ep(&c, link, info.ctx_id, info.secret);
	if (ep < 0)
		tbk_die("CREATE_EP link %u ctx %u: %s", link, info.ctx_id, strerror(-ep));

	memset(&done, 0, sizeof(done));
	for (r = 0; r < rounds; r++) {
		for (k = 0; k < NSIZES; k++) {
			uint32_t len = sizes[k], seed = r * 100 + k + 1;

			fill(src, len, seed);
			memset(dst, 0xee, len);
			tbk_sqe_rw(&sqe, TBRDMA_OP_WRITE, (uint32_t)ep, 1, src, skey, len,
				   info.addr, info.key);
			if ((ret = tbk_post(&c, &sqe, NULL, NULL, 30000)))
				tbk_die("post WRITE %u: %s", len, strerror(-ret));
			tbk_sqe_rw(&sqe, TBRDMA_OP_READ, (uint32_t)ep, 2, dst, dkey, len,
				   info.addr, info.key);
			if ((ret = tbk_post(&c, &sqe, NULL, NULL, 30000)))
				tbk_die("post READ %u: %s", len, strerror(-ret));
			for (int n = 1; n <= 2; n++) {
				if (!tbk_cq_wait(&c, &cqe, 30000))
					tbk_die("no completion for op %d of %u bytes in 30 s", n, len);
				if (cqe.status != TBRDMA_WC_SUCCESS || cqe.wr_id != (uint64_t)n)
					tbk_die("completion %d of %u bytes: wr_id %llu status %s",
						n, len, (unsigned long long)cqe.wr_id,
						tbk_status_name(cqe.status));
			}
			if (memcmp(src, dst, len))
				tbk_die("READ back of %u bytes differs from what was written", len);
			done.last_len = len;
			done.last_seed = seed;
		}
	}
	done.rounds = rounds;
	tbk_write_all(i2t[1], &done, sizeof(done));

	if ((ret = tbk_dereg(fd, skey)))
		tbk_die("DEREG_MR: %s", strerror(-ret));
	expect_pin("initiator", "after one DEREG_MR", pin0 + tbk_ctx_ring_kb(&c) + TGT_LEN / 1024);
	/* dst stays registered: close must release it. */
	tbk_ctx_unmap(&c);
	close(fd);
	expect_pin("initiator", "after close", pin0);
	if (waitpid(pid, &status, 0) != pid)
		tbk_die_errno("waitpid");
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		tbk_die("target failed (status 0x%x)", status);
	printf("traffic: ok: %u rounds x %zu sizes (1 B .. 1 MiB) WRITE+READ over link %u; "
	       "VmPin initiator %ld -> %ld -> %ld kB, target back to %ld kB\n",
	       rounds, NSIZES, link, pin0, pin_reg, tbk_vmpin_kb(), pin0);
	return 0;
}
