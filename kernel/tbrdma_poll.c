// SPDX-License-Identifier: GPL-2.0
/*
 * Who runs the links: the caller that transmitted, at once (tbrdma_rx_now()),
 * and a poll context per rail. Each XDomain link has a kernel thread of its
 * own on its controller's NUMA node; one more, tbrdma.poller, runs the loop
 * cables and any link without one. A poller busy-polls its links while
 * traffic flows, taking polled SQs on the way, and sleeps when they are
 * idle until an interrupt, a kick or one of its links' deadlines wakes it.
 * See docs/kernel.md.
 */
#include <linux/hrtimer.h>
#include <linux/kthread.h>
#include <linux/sched/stat.h>
#include <linux/seq_file.h>
#include <linux/topology.h>

#include "tbrdma.h"

/* Timer slack of a poll thread's sleep: see tbrdma_poll_sleep(). */
#define TBRDMA_POLL_SLACK_NS 2000

static struct tbrdma_poller *tbrdma_poller_of(u32 i)
{
	return READ_ONCE(tbrdma.link_poller[i]) ?: &tbrdma.poller;
}

void tbrdma_poller_kick(struct tbrdma_poller *p)
{
	/*
	 * A poller clears the flag before each round it runs, so it needs no
	 * wake-up from itself; but an interrupt (start_poll) can land on its
	 * CPU while it is between its last look and its sleep.
	 */
	if (!atomic_xchg(&p->kicked, 1) &&
	    !(in_task() && current == READ_ONCE(p->task)))
		wake_up(&p->wq);
}

void tbrdma_link_kick_other(u32 i, struct tbrdma_poller *by)
{
	struct tbrdma_poller *p = tbrdma_poller_of(i);

	lockdep_assert_held(&tbrdma.link_lock[i]);
	if (by && p != by)
		tbrdma_poller_kick(p);
}

/*
 * A link's deadline, set while its poller is not looking at that link:
 * noted for the poller's next look at the time (tbrdma_set_timer()), and a
 * wake-up if it comes before the one the poller sleeps until. Either the
 * poller finds the note after publishing timer_at, or this reads the new
 * timer_at: the two full barriers pair.
 */
static void tbrdma_note_deadline(struct tbrdma_poller *p, u64 d)
{
	s64 old;

	if (!d)
		return;
	old = atomic64_read(&p->deadline_noted);
	while ((u64)old > d &&
	       !atomic64_try_cmpxchg(&p->deadline_noted, &old, (s64)d))
		;
	smp_mb();	/* the note before timer_at is read */
	if (d < READ_ONCE(p->timer_at) && current != READ_ONCE(p->task) &&
	    !atomic_xchg(&p->rearm, 1))
		wake_up(&p->wq);
}

/*
 * The poller's own thread: deadline (0: none) is what it found on its
 * links; publishes the one it will sleep until, with the notes folded in.
 */
static u64 tbrdma_set_timer(struct tbrdma_poller *p, u64 deadline)
{
	u64 noted;

	WRITE_ONCE(p->timer_at, deadline ?: U64_MAX);
	smp_mb();	/* timer_at before the notes are read */
	noted = atomic64_xchg(&p->deadline_noted, -1);
	if (noted != U64_MAX && (!deadline || noted < deadline)) {
		deadline = noted;
		WRITE_ONCE(p->timer_at, deadline);
	}
	return deadline;
}

void tbrdma_lock(void)
{
	u32 i;

	mutex_lock(&tbrdma.lock);
	for (i = 0; i < tbrdma.nlinks; i++)
		mutex_lock_nest_lock(&tbrdma.link_lock[i], &tbrdma.lock);
}

void tbrdma_unlock(void)
{
	u32 i;

	for (i = tbrdma.nlinks; i-- > 0;) {
		if (tbrdma.engine)
			tbrdma_note_deadline(tbrdma_poller_of(i),
					     tb_engine_link_deadline(tbrdma.engine, i));
		mutex_unlock(&tbrdma.link_lock[i]);
	}
	mutex_unlock(&tbrdma.lock);
	tbrdma_rx_now();
}

void tbrdma_link_lock(u32 i)
{
	mutex_lock(&tbrdma.link_lock[i]);
}

void tbrdma_link_unlock(u32 i)
{
	tbrdma_note_deadline(tbrdma_poller_of(i),
			     tb_engine_link_deadline(tbrdma.engine, i));
	mutex_unlock(&tbrdma.link_lock[i]);
}

void tbrdma_rx_mark(u32 i)
{
	struct tbrdma_rx_marker *m = &tbrdma.rx_marker[i];

	/*
	 * The marker runs the link in its next passes, alone for the hold
	 * (tbrdma_rx_skip()): whoever reads an older marker skips a mark
	 * that the newer one runs, or clears and runs it itself.
	 */
	if (in_task()) {
		WRITE_ONCE(m->at, ktime_get_ns());
		/* Release: a reader of this marker reads this time. */
		smp_store_release(&m->task, current);
	} else {
		WRITE_ONCE(m->task, NULL);
	}
	/* The frame, counted in its ring, before the bit that says so. */
	smp_mb__before_atomic();
	set_bit(i, tbrdma.rx_pending);
}

void tbrdma_rx_mark_xd(void)
{
	u32 i;

	/* A link going meanwhile leaves a mark that runs nothing. */
	for_each_set_bit(i, tbrdma.xd_links, tbrdma.nlinks)
		if (!test_bit(i, tbrdma.rx_pending))
			tbrdma_rx_mark(i);
}

/*
 * Passes of tbrdma_rx_now() before the pollers take over: each moves up to
 * a window of frames per link (64 by default, 256 KiB), so a caller
 * carries about 2 MiB at most, like NAPI's budget.
 */
#define TBRDMA_RX_NOW_PASSES 8

/*
 * A poller runs only its own links' marks: another rail's ring is its own
 * poller's to poll, on its CPUs. A process (self NULL) runs every
 * XDomain link's mark (it only says a ring may hold an answer) and the
 * loop ends' marks that its own transmissions set, that no task holds, or
 * that another task set longer ago than the hold: another's newer ones
 * are that task's to run, and taking them would keep both in their
 * system calls, each waiting on the other's locks.
 */
static bool tbrdma_rx_skip(const struct tbrdma_poller *self, u32 i, u64 now)
{
	const struct tbrdma_rx_marker *m = &tbrdma.rx_marker[i];
	struct task_struct *marker;

	if (self)
		return tbrdma_poller_of(i) != self;
	if (test_bit(i, tbrdma.xd_links))
		return false;
	/* Acquire: pairs with tbrdma_rx_mark(), for this marker's time. */
	marker = smp_load_acquire(&m->task);
	/* Signed: a mark set after now is new. */
	return marker && marker != current &&
	       (s64)(now - READ_ONCE(m->at)) < (s64)tbrdma.rx_mark_hold_ns;
}

static void tbrdma_rx_run(struct tbrdma_poller *self)
{
	u32 pass, i;
	u64 now;

	for (pass = 0; pass < TBRDMA_RX_NOW_PASSES; pass++) {
		bool ran = false;

		now = ktime_get_ns();

		for_each_set_bit(i, tbrdma.rx_pending, tbrdma.nlinks) {
			struct tb_link *link;
			int handled;

			if (tbrdma_rx_skip(self, i, now) ||
			    !test_and_clear_bit(i, tbrdma.rx_pending))
				continue;
			ran = true;
			tbrdma_link_lock(i);
			/*
			 * The clock read before the lock would shorten the
			 * round trip of an ack that came in meanwhile: the
			 * link keeps its least one.
			 */
			handled = tb_engine_progress_link(tbrdma.engine, i,
							  ktime_get_ns());
			link = tb_engine_link(tbrdma.engine, i);
			/* It stopped at its budget: the ring may hold more. */
			if (link && handled >= tb_link_rx_budget(link))
				tbrdma_rx_mark(i);
			/* The engine cannot take a frame yet (a full RQ). */
			if (link && tb_link_rx_held(link))
				tbrdma_poller_kick(tbrdma_poller_of(i));
			tbrdma_link_unlock(i);
		}
		if (!ran)
			break;
		cond_resched();
	}
	/*
	 * More than this caller should carry, or another poller's (a
	 * process leaves another task's new marks to it): the pollers keep at
	 * it (kicked under the link's lock, which keeps its poller). Another
	 * rail's mark left by a poller only says that its ring may hold an
	 * answer: a frame there raises that ring's interrupt unless its
	 * poller is polling anyway. A loop end's mark is a frame.
	 */
	now = ktime_get_ns();
	for_each_set_bit(i, tbrdma.rx_pending, tbrdma.nlinks) {
		if (tbrdma_rx_skip(self, i, now) &&
		    (!self || test_bit(i, tbrdma.xd_links)))
			continue;
		/* The host's poller is never freed: no lock needed. */
		if (!READ_ONCE(tbrdma.link_poller[i])) {
			tbrdma_poller_kick(&tbrdma.poller);
			continue;
		}
		mutex_lock(&tbrdma.link_lock[i]);
		tbrdma_poller_kick(tbrdma_poller_of(i));
		mutex_unlock(&tbrdma.link_lock[i]);
	}
}

/*
 * What the caller's transmissions started runs on at once: a frame on a
 * loop cable is received at the other end, as the core polling a DMA
 * ring would; after a frame went out on an XDomain link, every XDomain RX
 * ring is polled, as a socket's busy polling does, so that an answer
 * already there needs no interrupt and no poller. Pass after pass while a
 * pass runs a link, each under its own lock; what is left goes to the
 * links' pollers.
 */
void tbrdma_rx_now(void)
{
	tbrdma_rx_run(NULL);
}

/*
 * One round of p: its links receive, execute, complete, retransmit and
 * transmit, and the polled SQs are taken. Returns the next deadline of its
 * links (0: none, 1: at once) and whether the round found work.
 */
static u64 tbrdma_round(struct tbrdma_poller *p, bool *busy)
{
	bool kicked = atomic_xchg(&p->kicked, 0);
	u64 deadline = 0, d;
	int handled;
	u32 i;

	atomic_set(&p->rearm, 0);	/* the round sets the timer anew */

	/* Taking the SQs over only with its CPU to itself: see below. */
	handled = p->sq_polling || single_task_running() ?
		  tbrdma_sq_poll(p) : 0;
	for (i = 0; i < tbrdma.nlinks; i++) {
		if (tbrdma_poller_of(i) != p)
			continue;
		mutex_lock(&tbrdma.link_lock[i]);
		d = 0;
		if (tbrdma_poller_of(i) == p) {
			/* The clock under the lock: see tbrdma_rx_run(). */
			handled += tb_engine_progress_link(tbrdma.engine, i,
							   ktime_get_ns());
			d = tb_engine_link_deadline(tbrdma.engine, i);
		}
		mutex_unlock(&tbrdma.link_lock[i]);
		if (d && (!deadline || d < deadline))
			deadline = d;
	}
	tbrdma_rx_run(p);
	deadline = tbrdma_set_timer(p, deadline);
	*busy = handled > 0 || kicked;
	WRITE_ONCE(p->rounds, p->rounds + 1);
	if (*busy)
		WRITE_ONCE(p->busy_rounds, p->busy_rounds + 1);
	return deadline;
}

/* Turns p's SQ polling off; true if the last look took SQEs. */
static bool tbrdma_sq_stop(struct tbrdma_poller *p)
{
	u32 taken = tbrdma_sq_poll_stop(p);

	tbrdma_rx_run(p);
	return taken;
}

/* p's links' interrupts back on, each under its lock. */
static void tbrdma_poller_idle(struct tbrdma_poller *p)
{
	u32 i;

	if (!p->idle)
		return;
	for (i = 0; i < tbrdma.nlinks; i++) {
		if (tbrdma_poller_of(i) != p)
			continue;
		tbrdma_link_lock(i);
		if (tbrdma_poller_of(i) == p)
			p->idle(p);
		tbrdma_link_unlock(i);
	}
}

/*
 * Sleeps until kicked, re-armed or stopped, or for timeout. Its deadlines
 * are resends and delayed acks tens of microseconds apart: a kernel
 * thread's default timer slack (50 us) would let an ack miss the resend
 * it is there to prevent.
 */
static void tbrdma_poll_sleep(struct tbrdma_poller *p, ktime_t timeout)
{
	DEFINE_WAIT(wait);

	prepare_to_wait(&p->wq, &wait, TASK_INTERRUPTIBLE);
	if (!atomic_read(&p->kicked) && !atomic_read(&p->rearm) &&
	    !kthread_should_stop())
		schedule_hrtimeout_range(&timeout, TBRDMA_POLL_SLACK_NS,
					 HRTIMER_MODE_REL);
	finish_wait(&p->wq, &wait);
}

static int tbrdma_poll_fn(void *arg)
{
	struct tbrdma_poller *p = arg;
	u64 busy_until = 0;

	while (!kthread_should_stop()) {
		u64 now, deadline;
		ktime_t timeout;
		bool busy;

		/* Kicked rounds may follow one another without a sleep. */
		cond_resched();
		deadline = tbrdma_round(p, &busy);
		now = ktime_get_ns();
		if (busy)
			busy_until = now + (u64)READ_ONCE(tbrdma_poll_us) *
					   NSEC_PER_USEC;
		/*
		 * Busy-polling a CPU that another task waits for takes it
		 * from that task, often the process whose frames are
		 * polled for: then sleep on the interrupts and the kicks,
		 * as halt polling does.
		 */
		if (!single_task_running())
			busy_until = 0;
		if ((deadline && deadline <= now) || now < busy_until) {
			/*
			 * Polling: a frame may be due any moment. While the
			 * CPU is away, its SQ polling is off: an SQE would
			 * wait for this thread's next turn, not a doorbell.
			 */
			if (need_resched())
				tbrdma_sq_stop(p);
			continue;
		}
		/* Processes ring the doorbell again, after a last look. */
		if (tbrdma_sq_stop(p))
			continue;
		tbrdma_poller_idle(p);
		/* What the last look and the rings' polls set on the way. */
		deadline = tbrdma_set_timer(p, deadline);
		now = ktime_get_ns();
		if (deadline && deadline <= now)
			continue;
		timeout = deadline ? ns_to_ktime(deadline - now) : KTIME_MAX;
		WRITE_ONCE(p->sleeps, p->sleeps + 1);
		tbrdma_poll_sleep(p, timeout);
	}
	tbrdma_sq_stop(p);
	return 0;
}

void tbrdma_poller_init(struct tbrdma_poller *p,
			void (*idle)(struct tbrdma_poller *p))
{
	init_waitqueue_head(&p->wq);
	atomic_set(&p->kicked, 0);
	atomic_set(&p->rearm, 0);
	p->timer_at = U64_MAX;
	atomic64_set(&p->deadline_noted, -1);
	p->idle = idle;
}

int tbrdma_poller_start(struct tbrdma_poller *p, const char *name, int node)
{
	struct task_struct *t;

	t = kthread_create_on_node(tbrdma_poll_fn, p, node, "%s", name);
	if (IS_ERR(t))
		return PTR_ERR(t);
	/* Near the controller; an administrator may move it (taskset). */
	if (node != NUMA_NO_NODE &&
	    cpumask_intersects(cpumask_of_node(node), cpu_online_mask))
		set_cpus_allowed_ptr(t, cpumask_of_node(node));
	tbrdma_lock();		/* for tbrdma_poller_show() */
	WRITE_ONCE(p->task, t);
	tbrdma_unlock();
	wake_up_process(t);
	return 0;
}

void tbrdma_poller_stop(struct tbrdma_poller *p)
{
	struct task_struct *t;

	tbrdma_lock();
	t = p->task;
	WRITE_ONCE(p->task, NULL);
	tbrdma_unlock();
	if (t)
		kthread_stop(t);
}

void tbrdma_poller_assign(u32 i, struct tbrdma_poller *p)
{
	lockdep_assert_held(&tbrdma.lock);
	lockdep_assert_held(&tbrdma.link_lock[i]);
	WRITE_ONCE(tbrdma.link_poller[i], p);
}

void tbrdma_poller_show(struct seq_file *m, const struct tbrdma_poller *p)
{
	lockdep_assert_held(&tbrdma.lock);
	if (!p->task)
		return;
	seq_printf(m, "poller %s pid %d cpus %*pbl rounds %llu busy_rounds %llu sleeps %llu\n",
		   p->task->comm, task_pid_nr(p->task),
		   cpumask_pr_args(p->task->cpus_ptr), READ_ONCE(p->rounds),
		   READ_ONCE(p->busy_rounds), READ_ONCE(p->sleeps));
}
