// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * tbk_kill: a process killed with SIGKILL in the middle of transfers.
 *
 *   tbk_kill -k initiator|target [-m MIB]
 *   tbk_kill -k pinning [-m MIB]
 *
 * initiator/target: two processes A (the initiator) and B (the target)
 * register MIB MiB each and exchange addresses and keys. A keeps up to 16
 * large WRITEs and READs (1-4 MiB) in flight to B's memory, and B keeps
 * READs and WRITEs in flight to A's. Once traffic flows, the victim (A or
 * B) gets SIGKILL, at a moment it has operations outstanding if one comes
 * within 10 s (a loop cable often ends a transfer inside the DOORBELL
 * that posted it).
 * It must die promptly; the survivor then stops posting and must get a
 * completion for every operation it had outstanding (success or an error
 * such as REM_ACCESS_ERR, or FLUSH_ERR once the endpoint is in error:
 * never a hang), EP_STATE must show nothing
 * outstanding, a new WRITE to the dead peer must complete with an error,
 * and a WRITE to itself over the same link must still succeed.
 *
 * pinning: a process registers MIB MiB (pinning takes a while) and is
 * killed 0.3 s into REG_MR; it must die promptly.
 *
 * Prints "kill: PASS: ..." (exit 0) or "kill: FAIL: ..." (exit 1).
 */
#define _GNU_SOURCE
#include "tbk_util.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define INFLIGHT 16

struct shared {
	volatile int ready[2];
	volatile unsigned long posted[2], completed[2];
	volatile int peer_dead;
	volatile int reg_started, reg_done;
	char result[2][400];
};

struct info {
	uint32_t ctx_id;
	uint64_t secret, key;
	uint64_t addr, len;
};

static struct shared *sh;

static void say(int role, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(int role, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(sh->result[role], sizeof(sh->result[role]), fmt, ap);
	va_end(ap);
}

/* One side of the traffic; returns the exit status. */
static int side(int role, int wr, int rd, size_t len)
{
	const char *name = role ? "target B" : "initiator A";
	unsigned long st[TBRDMA_WC_STATUS_MAX + 1] = { 0 }, outstanding;
	struct info me, peer;
	struct tbrdma_sqe s;
	struct tbrdma_cqe cqe;
	struct tbrdma_ep_state es;
	struct tbk_ctx c;
	uint8_t *mem;
	uint64_t key;
	uint64_t seq = 0;
	double t0;
	int fd, ep, self_ep, ret;

	tbk_prog = role ? "tbk_kill(B)" : "tbk_kill(A)";
	mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		tbk_die_errno("mmap");
	memset(mem, role ? 0xbb : 0xaa, len);
	fd = tbk_open();
	if ((ret = tbk_ctx_create(fd, &c, 64, 256, 4)))
		tbk_die("CREATE_QUEUES: %s", strerror(-ret));
	if ((ret = tbk_reg(fd, mem, len, TBRDMA_ACCESS_ALL, &key)))
		tbk_die("REG_MR: %s", strerror(-ret));
	me.ctx_id = c.ctx_id;
	me.secret = c.secret;
	me.key = key;
	me.addr = (uintptr_t)mem;
	me.len = len;
	tbk_write_all(wr, &me, sizeof(me));
	if (!tbk_read_all(rd, &peer, sizeof(peer)))
		tbk_die("peer went away during set-up");
	if ((ep = tbk_ep(&c, 0, peer.ctx_id, peer.secret)) < 0 || (self_ep = tbk_ep(&c, 0, c.ctx_id, c.secret)) < 0)
		tbk_die("CREATE_EP failed");
	sh->ready[role] = 1;

	/* Traffic until told that the peer is dead. */
	while (!sh->peer_dead) {
		if (c.posted - c.completed < INFLIGHT) {
			uint32_t n = (uint32_t)((1 + (seq % 4)) << 20);
			int write = (seq + (unsigned)role) % 2 == 0;

			if (n > len / 2)
				n = (uint32_t)(len / 2);
			/* Our first half goes to the peer's second half; reads come back into our second half. */
			tbk_sqe_rw(&s, write ? TBRDMA_OP_WRITE : TBRDMA_OP_READ, (uint32_t)ep, seq,
				   write ? mem : mem + len / 2, key, n,
				   write ? peer.addr + peer.len / 2 : peer.addr, peer.key);
			ret = tbk_post(&c, &s, NULL, NULL, 1000);
			if (ret == 0) {
				seq++;
				sh->posted[role] = c.posted;
			} else if (ret != -ETIMEDOUT && ret != -EAGAIN && ret != -ENOTCONN) {
				tbk_die("post: %s", strerror(-ret));
			}
		}
		while (tbk_cq_take(&c, &cqe)) {
			st[cqe.status <= TBRDMA_WC_STATUS_MAX ? cqe.status : 0]++;
			sh->completed[role] = c.completed;
		}
		if (c.posted - c.completed >= INFLIGHT && tbk_cq_wait(&c, &cqe, 50)) {
			st[cqe.status <= TBRDMA_WC_STATUS_MAX ? cqe.status : 0]++;
			sh->completed[role] = c.completed;
		}
	}

	/* The peer was killed: everything outstanding must complete. */
	outstanding = c.posted - c.completed;
	memset(st, 0, sizeof(st));
	t0 = tbk_now();
	while (c.completed < c.posted) {
		if (!tbk_cq_wait(&c, &cqe, 1000)) {
			if (tbk_now() - t0 > 30) {
				say(role, "%s: %u of %lu operations outstanding at the kill never completed (30 s)",
				    name, c.posted - c.completed, outstanding);
				return 1;
			}
			continue;
		}
		st[cqe.status <= TBRDMA_WC_STATUS_MAX ? cqe.status : 0]++;
	}
	memset(&es, 0, sizeof(es));
	es.ctx = c.ctx;
	es.ep = (uint32_t)ep;
	if ((ret = tbk_ioctl(fd, TBRDMA_IOC_EP_STATE, &es)) || es.outstanding) {
		say(role, "%s: EP_STATE after draining: %s, %u outstanding", name,
		    ret ? strerror(-ret) : "ok", es.outstanding);
		return 1;
	}
	/* A new operation toward the dead peer ends with an error, promptly. */
	tbk_sqe_rw(&s, TBRDMA_OP_WRITE, (uint32_t)ep, 1ull << 40, mem, key, 4096, peer.addr, peer.key);
	if ((ret = tbk_post(&c, &s, NULL, NULL, 10000))) {
		say(role, "%s: posting to the dead peer: %s", name, strerror(-ret));
		return 1;
	}
	if (!tbk_cq_wait(&c, &cqe, 20000) || cqe.status == TBRDMA_WC_SUCCESS) {
		say(role, "%s: a WRITE to the dead peer %s", name,
		    cqe.status == TBRDMA_WC_SUCCESS ? "succeeded" : "never completed");
		return 1;
	}
	/* And the link still works: a WRITE to ourselves. */
	{
		uint8_t st_new = cqe.status;

		memset(mem, 0x5c, 65536);
		tbk_sqe_rw(&s, TBRDMA_OP_WRITE, (uint32_t)self_ep, 2, mem, key, 65536,
			   (uintptr_t)mem + len / 2, key);
		if ((ret = tbk_post(&c, &s, NULL, NULL, 10000)) || !tbk_cq_wait(&c, &cqe, 20000) ||
		    cqe.status || memcmp(mem, mem + len / 2, 65536)) {
			say(role, "%s: WRITE to itself after the peer died failed (%s)", name,
			    ret ? strerror(-ret) : tbk_status_name(cqe.status));
			return 1;
		}
		say(role, "%s survived: %lu operations outstanding at the kill all completed in %.2f s "
		    "(SUCCESS %lu, REM_ACCESS_ERR %lu, FLUSH_ERR %lu, LINK_DOWN %lu, other %lu); "
		    "EP_STATE 0 outstanding; a new WRITE to the dead peer: %s; "
		    "a WRITE to itself: SUCCESS",
		    name, outstanding, tbk_now() - t0, st[TBRDMA_WC_SUCCESS],
		    st[TBRDMA_WC_REM_ACCESS_ERR], st[TBRDMA_WC_FLUSH_ERR], st[TBRDMA_WC_LINK_DOWN],
		    outstanding - st[TBRDMA_WC_SUCCESS] - st[TBRDMA_WC_REM_ACCESS_ERR] -
		    st[TBRDMA_WC_FLUSH_ERR] - st[TBRDMA_WC_LINK_DOWN],
		    tbk_status_name(st_new));
	}
	tbk_ctx_unmap(&c);
	close(fd);
	return 0;
}

/* Waits up to secs for pid; 1 if it was reaped (status in *status). */
static int reap(pid_t pid, double secs, int *status)
{
	double end = tbk_now() + secs;

	while (tbk_now() < end) {
		pid_t r = waitpid(pid, status, WNOHANG);

		if (r == pid)
			return 1;
		if (r < 0)
			return 0;
		usleep(20000);
	}
	return 0;
}

static int pinning(size_t len)
{
	double t_kill, t_dead;
	int status;
	pid_t pid;

	pid = fork();
	if (pid < 0)
		tbk_die_errno("fork");
	if (!pid) {
		uint8_t *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		uint64_t key;
		int fd = tbk_open();

		if (mem == MAP_FAILED)
			tbk_die_errno("mmap");
		sh->reg_started = 1;
		/* Pinning faults every page in: this takes a while. */
		if (!tbk_reg(fd, mem, len, TBRDMA_ACCESS_ALL, &key))
			sh->reg_done = 1;
		pause();
		_exit(0);
	}
	while (!sh->reg_started)
		usleep(1000);
	usleep(300000);
	t_kill = tbk_now();
	kill(pid, SIGKILL);
	if (!reap(pid, 30, &status)) {
		printf("kill: FAIL: a process killed during REG_MR of %zu MiB did not die in 30 s\n", len >> 20);
		kill(pid, SIGKILL);
		return 1;
	}
	t_dead = tbk_now();
	printf("kill: PASS: killed 0.3 s into REG_MR of %zu MiB (%s), dead %.2f s later\n", len >> 20,
	       sh->reg_done ? "pinning had already finished" : "while pinning", t_dead - t_kill);
	return 0;
}

int main(int argc, char **argv)
{
	int a2b[2], b2a[2], opt, status, victim = -1, survivor;
	size_t len = 16u << 20;
	const char *mode = NULL;
	pid_t pid[2];
	double t, t_kill;

	tbk_prog = "tbk_kill";
	while ((opt = getopt(argc, argv, "k:m:")) != -1) {
		switch (opt) {
		case 'k': mode = optarg; break;
		case 'm': len = (size_t)atoi(optarg) << 20; break;
		default: mode = NULL; optind = argc; break;
		}
	}
	if (mode && !strcmp(mode, "initiator"))
		victim = 0;
	else if (mode && !strcmp(mode, "target"))
		victim = 1;
	else if (!mode || strcmp(mode, "pinning")) {
		fprintf(stderr, "usage: %s -k initiator|target|pinning [-m MIB]\n", argv[0]);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	sh = tbk_shared_zalloc(sizeof(*sh));
	if (victim < 0)
		return pinning(len);

	if (pipe(a2b) || pipe(b2a))
		tbk_die_errno("pipe");
	for (int r = 0; r < 2; r++) {
		pid[r] = fork();
		if (pid[r] < 0)
			tbk_die_errno("fork");
		if (!pid[r])
			_exit(r == 0 ? side(0, a2b[1], b2a[0], len) : side(1, b2a[1], a2b[0], len));
	}
	survivor = 1 - victim;

	/* Traffic must flow both ways before the kill. */
	t = tbk_now();
	while (sh->completed[0] < 8 || sh->completed[1] < 8) {
		if (tbk_now() - t > 60 || waitpid(-1, &status, WNOHANG) > 0) {
			printf("kill: FAIL: traffic did not start (completed A %lu B %lu)\n",
			       sh->completed[0], sh->completed[1]);
			kill(pid[0], SIGKILL);
			kill(pid[1], SIGKILL);
			return 1;
		}
		usleep(10000);
	}
	/*
	 * Best with operations in flight. A loop cable runs both ends in the
	 * poster's DOORBELL, so a transfer is often done when it returns, and
	 * the window is short: look without sleeping, for a while.
	 */
	t = tbk_now();
	while (sh->posted[victim] - sh->completed[victim] == 0 && tbk_now() - t < 10)
		sched_yield();
	printf("kill: traffic flowing: A %lu/%lu, B %lu/%lu completed/posted; SIGKILL to %s with %lu in flight\n",
	       sh->completed[0], sh->posted[0], sh->completed[1], sh->posted[1],
	       victim ? "target B" : "initiator A", sh->posted[victim] - sh->completed[victim]);
	t_kill = tbk_now();
	kill(pid[victim], SIGKILL);
	if (!reap(pid[victim], 30, &status)) {
		printf("kill: FAIL: the killed process did not die in 30 s (stuck in the kernel?)\n");
		kill(pid[survivor], SIGKILL);
		return 1;
	}
	printf("kill: %s dead %.2f s after SIGKILL\n", victim ? "target B" : "initiator A", tbk_now() - t_kill);
	sh->peer_dead = 1;
	if (!reap(pid[survivor], 90, &status)) {
		printf("kill: FAIL: the survivor hung (no exit 90 s after the kill)\n");
		kill(pid[survivor], SIGKILL);
		reap(pid[survivor], 10, &status);
		return 1;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		printf("kill: FAIL: %s\n", sh->result[survivor][0] ? sh->result[survivor] : "survivor failed");
		return 1;
	}
	printf("kill: PASS: %s\n", sh->result[survivor]);
	return 0;
}
