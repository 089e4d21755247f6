/*
 * threadpool/worker.c - the "thread" backend's worker thread: claiming
 * tasks by priority (tp_take), running them (run_one, run_claimed, and the
 * block hook that runs claimed tasks before a task blocks), spinning and
 * parking when idle, retiring on a shrink, and leaving once the pool is
 * closed and drained. The structs, the memory-order pairings and the
 * resize protocol are described at the top of pool.h ("the top" below).
 */
#include <sched.h>
#include <stdio.h>

#include "pool.h"

/* The pool whose worker the calling thread is, if any, and its struct. */
static PX__TLS struct thread_pool *tls_pool;
static PX__TLS struct tp_worker *tls_worker;

struct tp_worker *px__tp_self(const struct thread_pool *tp)
{
	return tls_pool == tp ? tls_worker : NULL;
}

bool px__tp_on_worker(const struct thread_pool *tp)
{
	return tls_pool == tp;
}

/* Taking ------------------------------------------------------------------ */

/*
 * How many tasks to claim at once from q: BATCH_MAX if at least 4 batches
 * per worker are queued, 1 if less than 4 tasks per worker. Probes two
 * slots rather than reading tail, whose line the producers are busy
 * writing.
 */
static unsigned batch_size(struct thread_pool *tp, struct tp_queue *q)
{
	uint64_t head = atomic_load_explicit(&q->head, memory_order_relaxed);
	uint64_t per = 4 * (uint64_t)atomic_load_explicit(&tp->nactive,
							  memory_order_relaxed);
	if (per * BATCH_MAX >= tp->cap)
		return 1;
	uint64_t far = head + per * BATCH_MAX, near = head + per * 4;
	if (atomic_load_explicit(&slot_at(tp, q, far)->seq,
				 memory_order_relaxed) == 2 * far + 1)
		return BATCH_MAX;
	if (atomic_load_explicit(&slot_at(tp, q, near)->seq,
				 memory_order_relaxed) == 2 * near + 1)
		return 4;
	return 1;
}

/* The order in which worker w looks at the levels for its next take. */
static const unsigned char take_order[3][P_LEVELS] = {
	{ P_HIGH, P_NORMAL, P_LOW }, /* usual */
	{ P_LOW, P_NORMAL, P_HIGH }, /* every PRIO_FAIR-th take */
	{ P_NORMAL, P_LOW, P_HIGH }, /* every other PRIO_FAIR-th take */
};

/*
 * Claims the next tasks for w into w->batch: from the normal queue alone
 * until priorities are used, then by level (see the top). Returns how many.
 */
static unsigned tp_take(struct thread_pool *tp, struct tp_worker *w)
{
	if (!atomic_load_explicit(&tp->prio_used, memory_order_relaxed)) {
		struct tp_queue *q = &tp->q[P_NORMAL];
		return tp_pop_batch(tp, q, w->batch, batch_size(tp, q));
	}
	unsigned t = w->takes++;
	const unsigned char *order = take_order[0];
	if (t % PRIO_FAIR == PRIO_FAIR - 1)
		order = take_order[1 + (t / PRIO_FAIR) % 2];
	for (int i = 0; i < P_LEVELS; i++) {
		struct tp_queue *q = &tp->q[order[i]];
		unsigned n = tp_pop_batch(tp, q, w->batch, batch_size(tp, q));
		if (n)
			return n;
	}
	return 0;
}

/* Whether the slot at q's head is published. */
static bool q_next_ready(const struct thread_pool *tp, struct tp_queue *q)
{
	uint64_t pos = atomic_load_explicit(&q->head, memory_order_relaxed);
	return atomic_load_explicit(&slot_at(tp, q, pos)->seq,
				    memory_order_relaxed) == 2 * pos + 1;
}

/* Whether a task is ready at the head of a queue a worker looks at: what an
 * idle worker polls, since the producer writes that line anyway (polling
 * tail would pull the line producers CAS away from them on every check). */
static bool tp_next_ready(struct thread_pool *tp)
{
	if (q_next_ready(tp, &tp->q[P_NORMAL]))
		return true;
	if (!atomic_load_explicit(&tp->prio_used, memory_order_relaxed))
		return false;
	return q_next_ready(tp, &tp->q[P_HIGH]) || q_next_ready(tp, &tp->q[P_LOW]);
}

/* Wakes producers blocked on a full queue (of any level), once it has
 * drained to the low water mark. After a pop from q. */
static void wake_space(struct thread_pool *tp, struct tp_queue *q)
{
	/* seq_cst, after the head CAS: the space handshake. */
	if (atomic_load(&tp->space_wanted) && q_depth(q) <= low_water(tp) &&
	    atomic_exchange(&tp->space_wanted, 0)) {
		atomic_fetch_add(&tp->space_seq, 1);
		px__futex_wake_private(&tp->space_seq, INT_MAX);
	}
}

/* Running and parking ------------------------------------------------------ */

static void park(struct thread_pool *tp, struct tp_worker *w)
{
	uint64_t bit = 1ull << (w->id % 64);
	_Atomic uint64_t *word = &tp->parked[w->id / 64];
	/* Acquire: a resize stores the state before it bumps wake. */
	uint32_t seen = atomic_load_explicit(&w->wake, memory_order_acquire);
	/* Parked, a waiter may run its own task in our place (help.c):
	 * offered before listed. release: our counters are its to write. */
	if (tp->help)
		atomic_store_explicit(&w->lend, LEND_OFFERED, memory_order_release);
	atomic_fetch_or(word, bit); /* seq_cst, then tp_nonempty loads tail */
	if (!tp_nonempty(tp) && !tp_closed(tp) && w_active(w))
		px__futex_wait_private(&w->wake, seen, PX__NO_DEADLINE);
	if (tp->help)
		px__tp_lend_reclaim(w); /* waits out a borrower */
	/* Woken, or changed our mind: make sure we are not listed. */
	atomic_fetch_and(word, ~bit);
}

/* Runs one claimed task on worker w. */
static void run_one(struct tp_worker *w, px_future *f)
{
	struct thread_pool *tp = w->tp;
	if (!tp_claim(tp, f)) {
		/* A waiter ran it (help.c): drop the queue's reference. */
		px_future_release(f);
		return;
	}
	if (atomic_load_explicit(&tp->cancelling, memory_order_relaxed)) {
		px__future_cancel_queued(&w->counts, f);
		return;
	}
	atomic_store_explicit(&w->running, 1, memory_order_relaxed);
	if (tp->gil)
		px__gil_acquire(tp->gil);
	px__task_run(&tp->ex, f, w->id, &px__future_task_ops, &w->counts, false);
	if (tp->gil)
		px__gil_release(tp->gil);
	atomic_store_explicit(&w->running, 0, memory_order_relaxed);
}

/*
 * Runs the worker's claimed, unstarted tasks in order. nested: called from
 * the block hook, inside a task that is about to block in a parex wait: it
 * runs the tasks claimed with it first, on this stack (at most BATCH_MAX
 * deep), since no other worker can take them and one may be what it waits
 * for. A nested task runs under the GIL the blocked one still holds.
 */
static void run_claimed(struct tp_worker *w, bool nested)
{
	while (w->batch_next < w->batch_n) {
		px_future *f = w->batch[w->batch_next++];
		atomic_store_explicit(&w->claimed, w->batch_n - w->batch_next,
				      memory_order_relaxed);
		if (!nested)
			run_one(w, f);
		else if (!tp_claim(w->tp, f))
			px_future_release(f); /* a waiter ran it */
		else if (atomic_load_explicit(&w->tp->cancelling,
					      memory_order_relaxed))
			px__future_cancel_queued(&w->counts, f);
		else
			px__task_run(&w->tp->ex, f, w->id, &px__future_task_ops,
				     &w->counts, false);
	}
}

static void block_hook(void *arg)
{
	run_claimed(arg, true);
}

/* A retiring worker leaves unless a grow took it back: true to leave. */
static bool retire_now(struct tp_worker *w)
{
	int st = W_RETIRING;
	/* acq_rel: pairs with resize's CAS RETIRING -> ACTIVE. */
	return atomic_compare_exchange_strong_explicit(&w->state, &st, W_EXITED,
						       memory_order_acq_rel,
						       memory_order_acquire);
}

/* The worker thread -------------------------------------------------------- */

/*
 * Names the thread, runs the initializer and counts this worker out of
 * init_left. Returns true if the worker must leave at once: its
 * initializer failed and it was added by resize.
 */
static bool worker_init(struct tp_worker *w)
{
	struct thread_pool *tp = w->tp;
	char name[16];
	snprintf(name, sizeof(name), "px-worker-%d", w->id);
	pthread_setname_np(pthread_self(), name);
	tls_pool = tp;
	tls_worker = w;
	px__gil_bind_thread(tp->gil);

	bool leave = false;
	if (tp->ex.cfg.init) {
		int r = tp->ex.cfg.init(w->id, tp->ex.cfg.init_arg);
		if (r) {
			int zero = 0;
			atomic_compare_exchange_strong(&tp->init_err, &zero,
						       r < 0 ? r : -ECANCELED);
			if (tp->init_exit) {
				/* A worker added by resize: it never
				 * becomes one. Its resize waits below. */
				atomic_store_explicit(&w->state, W_EXITED,
						      memory_order_release);
				leave = true;
			}
		}
	}
	if (atomic_fetch_sub(&tp->init_left, 1) == 1)
		px__futex_wake_private(&tp->init_left, 1);
	return leave;
}

/* Claims queued tasks and runs them, starting a busy streak if none is
 * under way. Returns false if nothing was queued. */
static bool take_and_run(struct thread_pool *tp, struct tp_worker *w,
			 int64_t *streak)
{
	/* Take a few tasks at once when many are queued: one CAS and
	 * overlapped cache misses for all of them. Few queued: one, so
	 * long tasks spread over every worker. */
	unsigned n = tp_take(tp, w);
	if (!n)
		return false;
	wake_space(tp, &tp->q[P_NORMAL]);
	if (atomic_load_explicit(&tp->prio_used, memory_order_relaxed)) {
		wake_space(tp, &tp->q[P_HIGH]);
		wake_space(tp, &tp->q[P_LOW]);
	}
	if (*streak < 0)
		*streak = px__now_ns();
	w->batch_next = 0;
	w->batch_n = n;
	run_claimed(w, false);
	return true;
}

/*
 * Idle: spin a little, since a wake costs far more. Returns true if a task
 * showed up or the worker stopped being ACTIVE meanwhile.
 *
 * Adaptive: each spin that ends in parking halves the next one's budget
 * (down to none after SPIN_MISSES_MAX in a row); one that finds a task, or
 * a wake that comes within the full budget after parking (worker_loop),
 * restores it. A pool fed back to back keeps spinning, but under sporadic
 * work (a task every millisecond) the spin only burns a CPU that, on a
 * small machine, the submitter waiting for the result needs: the worker
 * woken for the task often lands on that very CPU, and the waiter then
 * gets it back only when the worker parks.
 */
#define SPIN_MISSES_MAX 4
static bool spin_idle(struct thread_pool *tp, struct tp_worker *w)
{
	if (!tp->spin_ns || w->spin_misses >= SPIN_MISSES_MAX)
		return false;
	struct px__spin spin;
	px__spin_init(&spin, (int64_t)(tp->spin_ns >> w->spin_misses));
	do {
		if (tp_next_ready(tp) || !w_active(w)) {
			w->spin_misses = 0;
			return true;
		}
	} while (px__spin_step(&spin));
	w->spin_misses++;
	return false;
}

/*
 * The worker's loop: take and run, else spin, else park, until it retires
 * (returns true) or the pool is closed and drained (returns false).
 * *streak: when the current busy streak began, -1 if none.
 */
static bool worker_loop(struct tp_worker *w, int64_t *streak)
{
	struct thread_pool *tp = w->tp;
	for (;;) {
		if (!w_active(w) && retire_now(w))
			return true;
		if (take_and_run(tp, w, streak))
			continue;
		if (*streak >= 0) {
			uint64_t busy = atomic_load_explicit(&w->counts.busy_ns,
							     memory_order_relaxed);
			atomic_store_explicit(&w->counts.busy_ns,
					      busy + (uint64_t)(px__now_ns() - *streak),
					      memory_order_relaxed);
			*streak = -1;
		}
		if (spin_idle(tp, w))
			continue;
		if (tp_closed(tp)) {
			/* The final tail is known: exit once every claimed
			 * position has been taken. */
			if (tp_nonempty(tp))
				continue;
			return false;
		}
		int64_t parked_at = w->spin_misses ? px__now_ns() : 0;
		park(tp, w);
		/* Woken within the spin budget: spinning would have paid. */
		if (parked_at && px__now_ns() - parked_at < (int64_t)tp->spin_ns)
			w->spin_misses = 0;
	}
}

/* The worker's last steps. leave: it retired (or its initializer failed)
 * rather than draining a closed pool. */
static void worker_exit(struct tp_worker *w, bool leave, int64_t streak)
{
	struct thread_pool *tp = w->tp;
	if (leave) {
		if (streak >= 0)
			atomic_fetch_add_explicit(&w->counts.busy_ns,
						  (uint64_t)(px__now_ns() - streak),
						  memory_order_relaxed);
		/* A submitter may have cleared our parked bit to wake us for
		 * its task: pass the wake on (seq_cst loads of tails after
		 * our bit was cleared, see the top). */
		if (tp_nonempty(tp))
			wake_one(tp);
	}
	/* Last touch of the pool; if it was destroyed from one of its own
	 * threads, the last worker out frees it. */
	bool last = atomic_fetch_sub(&tp->alive, 1) == 1;
	if (last && atomic_load(&tp->free_on_exit)) {
		/* A shutdown from a worker does not wait for queued tasks, so
		 * a waiter may have pinned the pool for one since destroy
		 * looked (px__future_help): with the queues closed it finds
		 * nothing to borrow and leaves soon. */
		while (atomic_load_explicit(&tp->ex.helping,
					    memory_order_acquire))
			sched_yield();
		px__tp_free(tp);
	}
}

void *px__tp_worker_main(void *arg)
{
	struct tp_worker *w = arg;
	bool leave = worker_init(w);
	/* Busy time is measured per streak of back-to-back tasks, not per
	 * task: two clock reads would cost more than a tiny task. */
	int64_t streak = -1;
	px__set_block_hook(block_hook, w);
	if (!leave)
		leave = worker_loop(w, &streak);
	px__set_block_hook(NULL, NULL);
	worker_exit(w, leave, streak);
	return NULL;
}
