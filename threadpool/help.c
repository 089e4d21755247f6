/*
 * threadpool/help.c - the "thread" backend's wait_help (lib/
 * executor_internal.h): a thread about to wait for a task of the pool that
 * no worker has started runs that task itself, in place of a worker that is
 * asleep, as OpenMP's taskwait and oneTBB's wait run tasks in the waiting
 * thread. The waiter would only sleep otherwise; running the task costs no
 * wake, no handoff of the future between CPUs and no context switch.
 *
 * Two rules keep the pool's contract:
 *  - Only the awaited task, never another queued one, and only when the
 *    waiter waits for that task alone (px_future_wait, px_wait(ALL)): it
 *    blocks until the task has finished either way, so running it here
 *    adds no deadlock (a task that needs something the waiter does later,
 *    or a lock it holds, deadlocks on a worker too), whereas an unrelated
 *    queued task, or one of several a px_wait(FIRST_COMPLETED) waits for,
 *    could wait for something the waiter would have done after its wait.
 *    A future with done callbacks is left to the workers too
 *    (pending_alone), so callbacks added before the wait run where they
 *    did (one added while the waiter runs the task runs in the waiter).
 *  - In place of a worker that is asleep: the waiter borrows a parked
 *    worker (its lend word, below) and runs the task as that worker (its id,
 *    its counters, its trace track) while the worker cannot wake up to run
 *    anything. So at most `workers` tasks of the pool run at once, ids stay
 *    0..workers-1 and no two running tasks share one: a pool of one worker
 *    still runs one task at a time. With no worker asleep the waiter only
 *    waits.
 *
 * A worker of the pool that waits inside a task runs the awaited task
 * itself instead, nested on its stack, as itself (as the block hook runs
 * its claimed tasks): it is already one of the pool's running tasks. So
 * does a waiter whose task, run in a borrowed worker's place, waits: as
 * that worker, which stays borrowed (a one-worker pool has no other).
 *
 * When a thread helps (documented with px_task_worker_id() and `help`):
 * help=1 (the default); no GIL emulation (the waiter holds no GIL, and the
 * emulation is bound to worker threads); no worker initializer unless the
 * waiter is one of the pool's workers (a task may count on what the
 * initializer set up in its thread); the wait has no deadline (the task
 * could outlast any timeout); fewer than HELP_DEPTH helped tasks on the
 * thread's stack on top of the one it runs as a worker (a task that waits
 * for a task that waits...), so the recursion stays bounded, past which
 * the thread only waits.
 *
 * Claiming. The queue still holds the task and a worker pops it later, so
 * the popper and the helper race for it: whoever swaps the future's qnext
 * word (unused by the thread pool otherwise) from NULL to TP_CLAIMED runs
 * it through px__task_run (which also handles a task cancelled while
 * queued); the other only drops its reference. The helper holds its own
 * (px_future_retain) for px__task_run to drop; the popper drops the queue's.
 * Without help nobody claims (tp_claim is true at once). A task a waiter
 * ran counts as queued in the stats until a worker passes it in the queue.
 *
 * Lending (struct tp_worker.lend): a worker about to park offers itself
 * (LEND_OFFERED, release: its counters are the borrower's to write now)
 * before it sets its parked bit, so a set bit means offered, lent, or awake
 * and about to unlist itself; a borrower clears its parked bit (so submits wake others) and takes
 * it with a CAS OFFERED -> TAKEN (acquire), and gives it back by setting
 * the bit again and exchanging the word to OFFERED (release), waking the
 * worker if it said it was waiting (LEND_WAITED), then waking a worker if
 * tasks came meanwhile (their submits found no parked bit to wake). A worker that wakes up takes itself
 * back with a CAS OFFERED -> NO (acquire), first waiting out a borrower.
 * So a worker's counters and its id have one user at a time. A shutdown
 * joins workers, and a borrowed worker exits only once given back: a
 * shutdown(wait) waits for the tasks waiters run, without a count of its
 * own. One called from such a task does not wait (as from a worker).
 */
#include "pool.h"

/* Most tasks nested by helping on a task that runs as a worker. */
#define HELP_DEPTH 8

/* The innermost task this thread runs by helping: its pool, and the worker
 * it runs as (borrowed, or the thread's own). */
static PX__TLS const struct thread_pool *tls_help_tp;
static PX__TLS struct tp_worker *tls_as;
static PX__TLS unsigned tls_depth; /* helped tasks on this stack */

bool px__tp_in_help(const struct thread_pool *tp)
{
	return tls_depth && tls_help_tp == tp;
}

void px__tp_lend_reclaim(struct tp_worker *w)
{
	for (;;) {
		uint32_t v = atomic_load_explicit(&w->lend, memory_order_acquire);
		if (v == LEND_OFFERED) {
			/* acquire: a borrower's writes to our counters happen
			 * before ours. */
			if (atomic_compare_exchange_weak_explicit(
				    &w->lend, &v, LEND_NO, memory_order_acquire,
				    memory_order_relaxed))
				return;
		} else if (v == LEND_TAKEN) {
			atomic_compare_exchange_weak_explicit(
				&w->lend, &v, LEND_WAITED, memory_order_relaxed,
				memory_order_relaxed);
		} else if (v == LEND_WAITED) {
			px__futex_wait_private(&w->lend, LEND_WAITED,
					       PX__NO_DEADLINE);
		} else {
			return; /* LEND_NO: never offered */
		}
	}
}

/*
 * Takes a parked worker that offered itself, or returns NULL. Clears its
 * parked bit first, as a submit's wake does, so that submits meanwhile wake
 * workers that can run their tasks rather than this one.
 */
static struct tp_worker *borrow(struct thread_pool *tp)
{
	int nw = nwords(tp);
	for (int i = 0; i < nw; i++) {
		uint64_t bits = atomic_load_explicit(&tp->parked[i],
						     memory_order_relaxed);
		while (bits) {
			uint64_t bit = bits & -bits;
			bits &= bits - 1;
			/* seq_cst: the parking handshake's side of a waker. */
			if (!(atomic_fetch_and(&tp->parked[i], ~bit) & bit))
				continue; /* a submit is waking it */
			struct tp_worker *w =
				tp->workers[i * 64 + __builtin_ctzll(bit)];
			uint32_t v = LEND_OFFERED;
			/* acquire: pairs with the offer's release (and the
			 * last borrower's give-back). */
			if (atomic_compare_exchange_strong_explicit(
				    &w->lend, &v, LEND_TAKEN,
				    memory_order_acquire, memory_order_relaxed))
				return w;
			if (v == LEND_NO)
				continue; /* awake: it unlists itself */
			/* Lent, and its borrower is giving it back (bit
			 * first): list it again and pass on any wake a
			 * submit skipped meanwhile. */
			atomic_fetch_or(&tp->parked[i], bit);
			if (tp_nonempty(tp))
				wake_one(tp);
		}
	}
	return NULL;
}

static void give_back(struct thread_pool *tp, struct tp_worker *w)
{
	/* Listed as parked again before it can take itself back, which
	 * unlists it (park). seq_cst, then the tails: a submit meanwhile
	 * found no bit and woke nobody, so its task needs a wake now. */
	atomic_fetch_or(&tp->parked[w->id / 64], 1ull << (w->id % 64));
	/* release: our writes to its counters, before it takes itself back. */
	if (atomic_exchange_explicit(&w->lend, LEND_OFFERED,
				     memory_order_release) == LEND_WAITED)
		px__futex_wake_private(&w->lend, 1);
	if (tp_nonempty(tp))
		wake_one(tp);
}

/* Claims f and runs it as worker w on this thread. Returns true if it ran
 * here (false: a worker has it). timed: count its run time into w's
 * busy_ns (a worker's own busy streak covers nested runs). */
static bool claim_and_run(struct thread_pool *tp, px_future *f,
			  struct tp_worker *w, bool timed)
{
	if (!tp_claim(tp, f))
		return false;
	/* px__task_run drops a task reference: ours, not the queue's,
	 * which its popper drops. */
	px_future_retain(f);
	if (atomic_load_explicit(&tp->cancelling, memory_order_relaxed)) {
		/* shutdown(cancel_pending) is dropping queued tasks: as a
		 * worker would, cancel it. */
		px__future_cancel_queued(&w->counts, f);
		return true;
	}
	const struct thread_pool *outer = tls_help_tp;
	struct tp_worker *outer_as = tls_as;
	uint32_t was = atomic_load_explicit(&w->running, memory_order_relaxed);
	atomic_store_explicit(&w->running, 1, memory_order_relaxed);
	tls_help_tp = tp;
	tls_as = w;
	tls_depth++;
	px__task_run(&tp->ex, f, w->id, &px__future_task_ops, &w->counts,
		     timed);
	tls_depth--;
	tls_as = outer_as;
	tls_help_tp = outer;
	atomic_store_explicit(&w->running, was, memory_order_relaxed);
	return true;
}

int px__tp_wait_help(px_executor *ex, px_future *f, int64_t deadline)
{
	struct thread_pool *tp = (struct thread_pool *)ex;
	if (!tp->help || deadline != PX__NO_DEADLINE)
		return 0;
	/* Started (or finished) already, or awaited by callbacks or by a
	 * wait for any of several futures: not ours to run. */
	if ((atomic_load_explicit(&f->state, memory_order_relaxed) &
	     PX__F_STATE_MASK) != PX_FUTURE_PENDING ||
	    !px__future_pending_alone(f))
		return 0;
	/* Depth: tasks nested on a task that runs as a worker, the worker's
	 * own (not counted in tls_depth) or a waiter's first helped one (the
	 * first counted), at most HELP_DEPTH either way. */
	struct tp_worker *self = px__tp_self(tp);
	if (self)
		return tls_depth < HELP_DEPTH &&
		       claim_and_run(tp, f, self, false);
	if (tls_help_tp == tp) {
		/* A task this thread runs in a borrowed worker's place
		 * waits: nest, as that worker (which stays borrowed; the
		 * outer task's run time covers this one's). */
		return tls_depth <= HELP_DEPTH &&
		       claim_and_run(tp, f, tls_as, false);
	}
	if (tp->ex.cfg.init || tls_depth > HELP_DEPTH)
		return 0;
	struct tp_worker *w = borrow(tp);
	if (!w)
		return 0;
	bool ran = claim_and_run(tp, f, w, true);
	give_back(tp, w);
	return ran;
}
