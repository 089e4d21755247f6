/*
 * procpool/worker.c - the code that runs in a worker process: pop a request
 * from the slot's request ring, start it (unless the parent withdrew it),
 * run it, push the reply, ring the collector's doorbell.
 *
 * A worker touches only its own slot of the shared mapping and the doorbell
 * (shared.h), through the struct pp_wconf it was forked with; none of the
 * parent's pool structures (pool.h) exist for it. It is forked by the fork
 * server (forkserver.c), which reaps it; it ends by _exit() after setting
 * its slot's state, never by returning.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <parex/ring.h>

#include "executor_internal.h"
#include "px_clock.h"
#include "px_futex.h"
#include "shared.h"

struct wctx {
	struct pp_hdr *hdr; /* the collector's doorbell */
	struct pp_wshared *sh;
	_Atomic uint64_t *word; /* the running task's record word */
	uint64_t seq;           /* and its sequence number */
	uint32_t max_result;
	size_t big_len;
	struct pp_resp resp;
	unsigned big_next; /* the area the next large reply goes to */
	bool big_waited;
	bool bell_owed; /* the last reply's doorbell is held back */
};

static unsigned char *big_area(struct wctx *c)
{
	return c->sh->big + (size_t)c->big_next * c->big_len;
}

/* Waits until the collector has copied out the previous large reply. */
static void big_wait(struct wctx *c)
{
	if (c->big_waited)
		return;
	struct pp_wshared *sh = c->sh;
	_Atomic uint32_t *busy = &sh->big_busy[c->big_next];
	/* Acquire: pairs with the collector's release store of 0. */
	while (atomic_load_explicit(busy, memory_order_acquire)) {
		/* seq_cst increment, then seq_cst re-load: Dekker pair with the
		 * collector's store of 0 and fence before it reads big_waiters. */
		atomic_fetch_add(&sh->big_waiters, 1);
		if (atomic_load(busy))
			px__futex_wait_shared(busy, 1, PX__NO_DEADLINE);
		atomic_fetch_sub(&sh->big_waiters, 1);
	}
	c->big_waited = true;
}

static int w_set_result(px_task *t, const void *data, size_t len)
{
	struct wctx *c = t->backend;
	if (len <= PP_RESP_INLINE) {
		if (len)
			memcpy(c->resp.inl, data, len);
		c->resp.flags &= ~(uint32_t)RF_BIG;
	} else {
		big_wait(c);
		memmove(big_area(c), data, len);
		c->resp.flags |= RF_BIG;
	}
	c->resp.len = (uint32_t)len;
	return 0;
}

/* Storage for a result written in place (map's chunks): the reply slot or
 * this task's large-reply area, exactly where w_set_result would copy it. */
static void *w_result_buffer(px_task *t, size_t len)
{
	struct wctx *c = t->backend;
	if (len > c->max_result)
		return NULL;
	c->resp.len = (uint32_t)len;
	if (len <= PP_RESP_INLINE) {
		c->resp.flags &= ~(uint32_t)RF_BIG;
		return c->resp.inl;
	}
	big_wait(c);
	c->resp.flags |= RF_BIG;
	return big_area(c);
}

static void w_set_message(px_task *t, const char *msg)
{
	struct wctx *c = t->backend;
	if (!msg) {
		c->resp.flags &= ~(uint32_t)RF_MSG;
		return;
	}
	big_wait(c);
	snprintf((char *)big_area(c) + c->max_result, PP_MSG_MAX, "%s", msg);
	c->resp.flags |= RF_MSG;
}

/* px_task_cancelled(): the parent asked this task to stop (CANCELREQ), or
 * is about to kill it (KILLING). Acquire: pairs with the parent's CAS. */
static bool w_cancelled(const px_task *t)
{
	const struct wctx *c = t->backend;
	uint64_t word = atomic_load_explicit(c->word, memory_order_acquire);
	return word == rword(c->seq, R_CANCELREQ) ||
	       word == rword(c->seq, R_KILLING);
}

static const struct px__task_ops worker_task_ops = {
	.set_result = w_set_result,
	.set_message = w_set_message,
	.result_buffer = w_result_buffer,
	.cancelled = w_cancelled,
	/* blocking_begin/end: nothing to release in a process of its own. */
};

static void worker_exit(struct pp_wshared *sh, struct pp_hdr *hdr, int state,
			int code)
{
	/* Release: pairs with the collector's acquire load of the state. */
	atomic_store_explicit(&sh->state, (uint32_t)state, memory_order_release);
	px__pp_bell_ring(hdr);
	fflush(NULL); /* the task's own output; never atexit handlers */
	_exit(code);
}

/* One request: start it (unless withdrawn), run it, reply. */
static void worker_run(int slot, struct wctx *c, struct pp_req *rq)
{
	struct pp_wshared *sh = c->sh;
	struct pp_rec *rec = &sh->rec[rq->seq % PP_WINDOW];
	memset(&c->resp, 0, offsetof(struct pp_resp, inl));
	c->resp.seq = rq->seq;
	c->big_waited = false;
	if (rq->flags & (QF_TIMED | QF_TRACE))
		atomic_store_explicit(&rec->start_ns, px__now_ns(), memory_order_relaxed);
	uint64_t expect = rword(rq->seq, R_QUEUED);
	/* acq_rel: publishes start_ns to the collector (acquire of the
	 * word); pairs with the parent's withdraw CAS. */
	if (!atomic_compare_exchange_strong_explicit(&rec->word, &expect,
						     rword(rq->seq, R_RUNNING),
						     memory_order_acq_rel,
						     memory_order_acquire)) {
		c->resp.flags = RF_SKIPPED;
	} else {
		struct px_task t = {
			.ops = &worker_task_ops,
			.worker_id = slot,
			.max_result = c->max_result,
			.backend = c,
		};
		const void *arg = rq->arg ? rq->arg : rq->inl;
		c->word = &rec->word;
		c->seq = rq->seq;
		int err = rq->fn(&t, arg, rq->arg_len);
		if (err > 0)
			err = -err;
		/* Published by the R_DONE CAS below and the reply's push. */
		if (rq->flags & QF_TRACE)
			atomic_store_explicit(&rec->end_ns, px__now_ns(),
					      memory_order_relaxed);
		expect = rword(rq->seq, R_RUNNING);
		bool done = atomic_compare_exchange_strong_explicit(
			&rec->word, &expect, rword(rq->seq, R_DONE),
			memory_order_acq_rel, memory_order_acquire);
		if (!done && expect == rword(rq->seq, R_CANCELREQ)) {
			/* Cancelled within the grace period: the future ends
			 * cancelled, whatever the task returned, and this
			 * worker lives on, unless the parent's CANCELREQ ->
			 * KILLING won. */
			done = atomic_compare_exchange_strong_explicit(
				&rec->word, &expect, rword(rq->seq, R_DONE),
				memory_order_acq_rel, memory_order_acquire);
			err = -ECANCELED;
		}
		c->resp.err = err;
		if (err)
			c->resp.flags &= ~(uint32_t)RF_BIG;
		if (!done) {
			/* KILLING: the parent gave up on this task and is
			 * killing us; reply nothing, just wait for it. */
			for (;;)
				pause();
		}
	}
	if (c->resp.flags & (RF_BIG | RF_MSG)) {
		atomic_store_explicit(&sh->big_busy[c->big_next], 1, memory_order_relaxed);
		c->resp.flags |= c->big_next << RF_AREA_SHIFT;
		c->big_next = (c->big_next + 1) % PP_NBIG;
	}
	/* The ring never fills: the parent keeps at most PP_WINDOW tasks in
	 * flight per worker, replies included. */
	while (px_ring_push(sh->resp, &c->resp, PX_FOREVER) == -EINTR)
		;
	/* Nothing queued: we will idle, so hold the doorbell back a little
	 * (see the main loop). */
	c->bell_owed = px__pp_reply_bell(c->hdr, sh, !px_ring_count(sh->req));
}

/*
 * This process's private resident memory in bytes: resident minus shared
 * pages of /proc/self/statm (shared counts file and shared-memory pages,
 * such as the pool's arena, which are not this worker's to give back).
 * 0 when it cannot be read.
 */
static uint64_t private_rss(int fd)
{
	char buf[128];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	unsigned long long size, resident, shared;
	if (sscanf(buf, "%llu %llu %llu", &size, &resident, &shared) != 3 ||
	    shared > resident)
		return 0;
	return (uint64_t)(resident - shared) * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* Runs the initializer, if any, and announces the worker READY; exits the
 * process with WS_INITFAIL if the initializer fails. */
static void worker_init(const struct pp_wconf *wc, struct pp_wshared *sh,
			int slot)
{
	atomic_store_explicit(&sh->state, WS_STARTING, memory_order_relaxed);
	/* Reaches the collector with this worker's replies (ring release). */
	atomic_store_explicit(&sh->pid, (int32_t)getpid(), memory_order_relaxed);
	if (wc->init) {
		int r = wc->init(slot, wc->init_arg);
		if (r) {
			sh->init_err = r < 0 ? r : -ECANCELED;
			worker_exit(sh, wc->hdr, WS_INITFAIL, 3);
		}
	}
	atomic_store_explicit(&sh->state, WS_READY, memory_order_release);
	px__pp_bell_ring(wc->hdr);
}

/*
 * Pops the next request, sleeping on the slot's wseq until the parent
 * pushes one or closes the ring. Returns 0 or PX_EEOF. Not px_ring_pop():
 * its sleeper calls membarrier() on every sleep so that its wakers need no
 * fence, an IPI to every CPU running the parent, which on a VM stalls the
 * very thread that is taking this worker's last reply. Here the parent
 * pays a fence per hand-over instead (px__pp_worker_wake). noinline for
 * the fence (-Wtsan, as in shared.c).
 */
static __attribute__((noinline)) int worker_park(struct pp_wshared *sh,
						 struct pp_req *rq,
						 int64_t deadline)
{
	for (;;) {
		/* Acquire: pairs with the waker's release bump. */
		uint32_t v = atomic_load_explicit(&sh->wseq, memory_order_acquire);
		atomic_store_explicit(&sh->wsleep, 1, memory_order_relaxed);
		/* Dekker pair with px__pp_worker_wake(): our wsleep before this
		 * fence and the look at the ring after it; the parent's push
		 * before its fence and its load of wsleep after. */
		atomic_thread_fence(memory_order_seq_cst);
		int r = px_ring_try_pop(sh->req, rq);
		if (r == -EAGAIN) {
			px__futex_wait_shared(&sh->wseq, v, deadline);
			r = px_ring_try_pop(sh->req, rq);
		}
		if (r == -EAGAIN && px__deadline_passed(deadline))
			r = -ETIMEDOUT;
		if (r != -EAGAIN) {
			atomic_store_explicit(&sh->wsleep, 0, memory_order_relaxed);
			return r;
		}
	}
}

/* Entered in a fresh worker process (see forkserver.c); never returns. */
void px__pp_worker_main(void *ctx, int slot, uint64_t gen)
{
	(void)gen;
	const struct pp_wconf *wc = ctx;
	struct pp_wshared *sh = pp_slot(wc, slot);
	worker_init(wc, sh, slot);

	struct wctx c = { .hdr = wc->hdr, .sh = sh, .max_result = wc->max_result,
			  .big_len = wc->big_len };
	uint64_t ran = 0;
	int64_t streak = -1; /* start of the current run of tasks */
	/* Opened once: a pread per task then costs one system call. */
	int statm = wc->max_rss ? open("/proc/self/statm", O_RDONLY | O_CLOEXEC) : -1;
	alignas(16) struct pp_req rq;
	/* Spin for the next request only while requests have been coming
	 * within spin_ns of each other (pp_spin): a sporadic caller's worker
	 * parks at once instead of taking the CPU its caller runs on. */
	struct pp_spin spin;
	pp_spin_init(&spin, wc->spin_ns);
	for (;;) {
		int r = px_ring_try_pop(sh->req, &rq);
		if (r == -EAGAIN) {
			int64_t idle0 = px__now_ns();
			if (streak >= 0) {
				/* Busy time per run of tasks, not per task. Single
				 * writer: a relaxed pair. */
				atomic_store_explicit(
					&sh->busy_ns,
					atomic_load_explicit(&sh->busy_ns,
							     memory_order_relaxed) +
						(uint64_t)(idle0 - streak),
					memory_order_relaxed);
				streak = -1;
			}
			/* Spin a little first: a futex wake costs far more than
			 * a task. Yield now and then for a runnable parent. Not
			 * on the CPU the parent's waiting thread last ran on:
			 * there the spin only keeps it off the CPU. */
			int64_t until = idle0 + spin.budget;
			int cpu = sched_getcpu();
			atomic_store_explicit(&sh->wcpu, cpu, memory_order_relaxed);
			bool alone = cpu < 0 ||
				     cpu != atomic_load_explicit(&sh->hcpu,
								 memory_order_relaxed);
			for (unsigned i = 1; spin.budget > 0 && alone; i++) {
				r = px_ring_try_pop(sh->req, &rq);
				if (r != -EAGAIN)
					break;
				px__cpu_relax();
				if ((i & 63) == 0) {
					if (px__now_ns() >= until)
						break;
					if ((i & 255) == 0)
						sched_yield();
				}
			}
			if (c.bell_owed) {
				/* The last reply's doorbell, held back: a waiting
				 * thread usually takes the reply meanwhile. Ring
				 * it if not, or before the next task. */
				if (r == -EAGAIN && px_ring_count(sh->resp)) {
					r = worker_park(sh, &rq, idle0 + PP_BELL_DEFER_NS);
					if (r == -ETIMEDOUT)
						r = -EAGAIN;
				}
				if (px_ring_count(sh->resp))
					px__pp_reply_bell(wc->hdr, sh, false);
				c.bell_owed = false;
			}
			if (r == -EAGAIN) {
				r = worker_park(sh, &rq, PX__NO_DEADLINE);
				/* How long until the request was sent, not until
				 * we woke (the parent's clock is ours). */
				if (r == 0)
					pp_spin_learn(&spin, rq.sent_ns - idle0);
			} else if (r == 0) {
				pp_spin_learn(&spin, px__now_ns() - idle0);
			}
		}
		if (r == PX_EEOF)
			break;
		if (r)
			continue; /* -EINTR: a kick; look again */
		if (streak < 0)
			streak = px__now_ns();
		worker_run(slot, &c, &rq);
		/* Nothing more to do: hand the core to whoever waits for this
		 * reply (the waiting thread, the collector) if they share it,
		 * rather than spin on it until the next periodic yield. Not
		 * when about to park anyway (no spin budget): the sleep gives
		 * the core away. */
		if (spin.budget > 0 && !px_ring_count(sh->req))
			sched_yield();
		if (wc->max_tasks && ++ran >= wc->max_tasks)
			break; /* recycled: the parent sends no more */
		if (statm >= 0 && private_rss(statm) > wc->max_rss)
			break; /* recycled: tasks still queued here go back to
				  the parent's queue when it sees us exit */
	}
	if (statm >= 0)
		close(statm);
	worker_exit(sh, wc->hdr, WS_EXITING, 0);
}
