/*
 * threadpool/threadpool.c - the "thread" backend: a fixed set of worker
 * threads fed by one bounded lock-free MPMC queue of futures.
 *
 * The queue is Vyukov's bounded MPMC array: each slot carries a sequence
 * number that says whose turn it is. Sequence numbers are doubled (the
 * producer of position pos expects 2*pos, publishes 2*pos + 1; the consumer
 * frees the slot for position pos + cap with 2*(pos + cap)), so "published"
 * and "free for the next lap" never coincide, even with capacity 1. So
 * producers and consumers each CAS only
 * their own index, head and tail sit on separate cache lines, and capacity
 * is exactly what the configuration asked for (positions are taken modulo
 * the capacity, not masked).
 *
 * Idle workers spin for spin_us, then park, each on its own futex word, after
 * setting their bit in a `parked` bitmap. A submit that finds a bit set
 * clears it and wakes that one worker: one wake per parked worker, never a
 * thundering herd, and no system call while every worker is busy.
 *
 * Memory-order pairings:
 *  - slot->seq: the producer's release store (after writing slot->item)
 *    pairs with the consumer's acquire load; the consumer's release store
 *    (pos + cap, after reading the item) pairs with the next producer's
 *    acquire load.
 *  - parking (Dekker on tail and the parked bitmap): the producer's seq_cst
 *    CAS of tail, then a seq_cst load of the bitmap; the worker's seq_cst
 *    fetch_or of its bit, then a seq_cst load of tail. One of them sees the
 *    other: the worker stays up, or the producer wakes it. No fence is
 *    needed (on x86 the CAS is the barrier), so a submit to a busy pool
 *    costs one CAS and two plain loads.
 *  - space (a blocking submit on a full queue): the same shape on head and
 *    space_wanted: the consumer's seq_cst CAS of head, then a seq_cst load
 *    of space_wanted; the producer's seq_cst store of space_wanted, then a
 *    seq_cst load of head. A blocked producer is woken only once the queue
 *    has drained to half its capacity (and sleeps only above that), so it
 *    refills in a batch instead of waking per freed slot.
 *  - shutdown: TAIL_CLOSED, the top bit of tail, is set with one fetch_or.
 *    A producer's CAS expects tail without the bit, so once it is set no
 *    position can be claimed and the final tail is known; workers drain
 *    until head reaches it (waiting out any claimed slot whose producer has
 *    not published it yet) and then exit. Submits need no in-flight count.
 *
 * Lock order: tp->shut_mu is taken only by shutdown/destroy, never by a
 * worker, and no other lock is held with it.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "executor_internal.h"
#include "gil.h"

/* Most tasks a worker claims at once. */
#define BATCH_MAX 16

/* The top bit of tail: the queue takes no more tasks. */
#define TAIL_CLOSED (1ull << 63)

struct tp_slot {
	_Atomic uint64_t seq;
	px_future *item;
};

struct thread_pool;

struct tp_worker {
	alignas(64) struct thread_pool *tp;
	pthread_t thread;
	int id;
	bool started;
	_Atomic uint32_t wake;    /* futex word this worker parks on */
	_Atomic uint32_t running; /* 1 while a task runs (stats) */
	_Atomic uint32_t claimed; /* popped, not yet started (stats) */
	/* Tasks claimed by one pop, run in order; only this worker's thread
	 * touches them (also from the block hook, see run_claimed). */
	px_future *batch[BATCH_MAX];
	unsigned batch_next, batch_n;
	struct px__counts counts;
};

/*
 * Fields are grouped by who writes them, one group per cache line, so that
 * a submit dirties only lines the workers do not read on every task:
 * read-mostly settings, tail (producers), head (consumers), the space
 * handshake (rare), cold shutdown state.
 */
struct thread_pool {
	struct px_executor ex;
	uint32_t cap;
	uint32_t mask; /* cap - 1 when cap is a power of two, else 0 */
	int nworkers;
	int nwords; /* of the parked bitmap */
	struct tp_slot *slots;
	struct tp_worker *workers;
	_Atomic uint64_t *parked; /* own cache lines: written when parking */
	struct px__gil *gil;
	uint64_t spin_ns;
	atomic_int cancelling; /* shutdown(cancel_pending): drop claimed tasks */

	alignas(64) _Atomic uint64_t tail; /* producers; TAIL_CLOSED bit */
	alignas(64) _Atomic uint64_t head; /* consumers */
	alignas(64) _Atomic uint32_t space_seq; /* futex word for producers */
	_Atomic uint32_t space_wanted;          /* a producer sleeps or may */

	alignas(64) _Atomic uint32_t init_left; /* futex word: initialising */
	atomic_int init_err;
	pthread_mutex_t shut_mu;
	bool joining;             /* a thread has claimed the join; shut_mu */
	_Atomic uint32_t joined;  /* futex word: 1 once every worker is joined */
	_Atomic uint32_t alive;   /* workers not yet exited */
	atomic_int free_on_exit;  /* destroyed from a worker: last one frees */
	struct px__counts shut_counts; /* cancelled by shutdown; under shut_mu */
};

/* The pool whose worker the calling thread is, if any. */
static PX__TLS struct thread_pool *tls_pool;

/* Queue ------------------------------------------------------------------ */

/* The slot of position pos: a mask for power-of-two capacities (the
 * default), a division otherwise. */
static inline struct tp_slot *slot_at(const struct thread_pool *tp, uint64_t pos)
{
	return &tp->slots[tp->mask ? pos & tp->mask : pos % tp->cap];
}

/* Queues f. Returns 0, -EAGAIN when full, PX_ESHUTDOWN once closed. */
static int tp_push(struct thread_pool *tp, px_future *f)
{
	uint64_t pos = atomic_load_explicit(&tp->tail, memory_order_relaxed);
	struct tp_slot *s;
	for (;;) {
		if (pos & TAIL_CLOSED)
			return PX_ESHUTDOWN;
		s = slot_at(tp, pos);
		uint64_t seq = atomic_load_explicit(&s->seq, memory_order_acquire);
		int64_t diff = (int64_t)(seq - 2 * pos);
		if (diff == 0) {
			/* seq_cst: the parking handshake (see top). */
			if (atomic_compare_exchange_weak_explicit(
				    &tp->tail, &pos, pos + 1, memory_order_seq_cst,
				    memory_order_relaxed))
				break;
		} else if (diff < 0) {
			return -EAGAIN; /* full: the slot is a lap behind */
		} else {
			pos = atomic_load_explicit(&tp->tail, memory_order_relaxed);
		}
	}
	s->item = f;
	atomic_store_explicit(&s->seq, 2 * pos + 1, memory_order_release);
	return 0;
}

/*
 * Pops up to max tasks with one CAS of head: the slots pos .. pos+n-1 are
 * seen ready first, and only the CAS winner may take them. Returns n (0:
 * empty).
 */
static unsigned tp_pop_batch(struct thread_pool *tp, px_future **out,
			     unsigned max)
{
	uint64_t pos = atomic_load_explicit(&tp->head, memory_order_relaxed);
	unsigned n;
	for (;;) {
		n = 0;
		while (n < max) {
			uint64_t p = pos + n;
			uint64_t seq = atomic_load_explicit(&slot_at(tp, p)->seq,
							    memory_order_acquire);
			if (seq != 2 * p + 1)
				break;
			n++;
		}
		if (n == 0) {
			uint64_t seq = atomic_load_explicit(
				&slot_at(tp, pos)->seq, memory_order_acquire);
			if ((int64_t)(seq - (2 * pos + 1)) < 0)
				return 0; /* empty */
			/* Another consumer took this lap's slot: look again. */
			pos = atomic_load_explicit(&tp->head, memory_order_relaxed);
			continue;
		}
		/* seq_cst: the space handshake (see top). */
		if (atomic_compare_exchange_weak_explicit(&tp->head, &pos, pos + n,
							  memory_order_seq_cst,
							  memory_order_relaxed))
			break;
	}
	for (unsigned i = 0; i < n; i++) {
		struct tp_slot *s = slot_at(tp, pos + i);
		out[i] = s->item;
		__builtin_prefetch(out[i]);
		__builtin_prefetch((char *)out[i] + 64);
		atomic_store_explicit(&s->seq, 2 * (pos + i + tp->cap),
				      memory_order_release);
	}
	return n;
}

/*
 * How many tasks to claim at once: BATCH_MAX if at least 4 batches per
 * worker are queued, 1 if less than 4 tasks per worker. Probes two slots
 * rather than reading tail, whose line the producers are busy writing.
 */
static unsigned batch_size(struct thread_pool *tp)
{
	uint64_t head = atomic_load_explicit(&tp->head, memory_order_relaxed);
	uint64_t per = 4 * (uint64_t)tp->nworkers;
	if (per * BATCH_MAX >= tp->cap)
		return 1;
	uint64_t far = head + per * BATCH_MAX, near = head + per * 4;
	if (atomic_load_explicit(&slot_at(tp, far)->seq,
				 memory_order_relaxed) == 2 * far + 1)
		return BATCH_MAX;
	if (atomic_load_explicit(&slot_at(tp, near)->seq,
				 memory_order_relaxed) == 2 * near + 1)
		return 4;
	return 1;
}

static px_future *tp_pop(struct thread_pool *tp)
{
	px_future *f;
	return tp_pop_batch(tp, &f, 1) ? f : NULL;
}

/* Whether the slot at head is published: what an idle worker polls, since
 * the producer writes that line anyway (polling tail would pull the line
 * producers CAS away from them on every check). */
static bool tp_next_ready(struct thread_pool *tp)
{
	uint64_t pos = atomic_load_explicit(&tp->head, memory_order_relaxed);
	return atomic_load_explicit(&slot_at(tp, pos)->seq,
				    memory_order_relaxed) == 2 * pos + 1;
}

/* Whether a task is queued or being queued (tail claimed, maybe not yet
 * published): a worker that sees this must not park. */
static bool tp_nonempty(struct thread_pool *tp)
{
	uint64_t tail = atomic_load(&tp->tail); /* seq_cst: parking handshake */
	return (tail & ~TAIL_CLOSED) !=
	       atomic_load_explicit(&tp->head, memory_order_relaxed);
}

static bool tp_closed(struct thread_pool *tp)
{
	return atomic_load_explicit(&tp->tail, memory_order_acquire) & TAIL_CLOSED;
}

/* Tasks queued (claimed by producers, not yet by workers). */
static uint64_t tp_depth(struct thread_pool *tp)
{
	uint64_t tail = atomic_load_explicit(&tp->tail, memory_order_relaxed) &
			~TAIL_CLOSED;
	uint64_t head = atomic_load_explicit(&tp->head, memory_order_relaxed);
	return tail > head ? tail - head : 0;
}

/* Parking -------------------------------------------------------------------- */

static void wake_worker(struct tp_worker *w)
{
	atomic_fetch_add_explicit(&w->wake, 1, memory_order_release);
	px__futex_wake_private(&w->wake, 1);
}

/* Wakes one parked worker, if any. Called after publishing a task. */
static void wake_one(struct thread_pool *tp)
{
	for (int i = 0; i < tp->nwords; i++) {
		/* seq_cst, after the tail CAS: the parking handshake. */
		uint64_t bits = atomic_load(&tp->parked[i]);
		while (bits) {
			uint64_t bit = bits & -bits;
			uint64_t old = atomic_fetch_and(&tp->parked[i], ~bit);
			if (old & bit) {
				wake_worker(&tp->workers[i * 64 + __builtin_ctzll(bit)]);
				return;
			}
			bits = old & ~bit;
		}
	}
}

static void wake_all(struct thread_pool *tp)
{
	for (int i = 0; i < tp->nworkers; i++) {
		struct tp_worker *w = &tp->workers[i];
		atomic_fetch_and(&tp->parked[i / 64], ~(1ull << (i % 64)));
		wake_worker(w);
	}
}

/* The depth at which blocked producers are woken. */
static inline uint64_t low_water(const struct thread_pool *tp)
{
	return tp->cap / 2;
}

/* Wakes producers blocked on a full queue, once it has drained to the low
 * water mark. After a pop. */
static void wake_space(struct thread_pool *tp)
{
	/* seq_cst, after the head CAS: the space handshake. */
	if (atomic_load(&tp->space_wanted) && tp_depth(tp) <= low_water(tp) &&
	    atomic_exchange(&tp->space_wanted, 0)) {
		atomic_fetch_add(&tp->space_seq, 1);
		px__futex_wake_private(&tp->space_seq, INT_MAX);
	}
}

/* Workers ---------------------------------------------------------------- */

static void park(struct thread_pool *tp, struct tp_worker *w)
{
	uint64_t bit = 1ull << (w->id % 64);
	_Atomic uint64_t *word = &tp->parked[w->id / 64];
	uint32_t seen = atomic_load_explicit(&w->wake, memory_order_acquire);
	atomic_fetch_or(word, bit); /* seq_cst, then tp_nonempty loads tail */
	if (!tp_nonempty(tp) && !tp_closed(tp))
		px__futex_wait_private(&w->wake, seen, PX__NO_DEADLINE);
	/* Woken, or changed our mind: make sure we are not listed. */
	atomic_fetch_and(word, ~bit);
}

/* Runs one claimed task on worker w. */
static void run_one(struct tp_worker *w, px_future *f)
{
	struct thread_pool *tp = w->tp;
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

static void tp_free(struct thread_pool *tp);

static void *worker_main(void *arg)
{
	struct tp_worker *w = arg;
	struct thread_pool *tp = w->tp;
	char name[16];
	snprintf(name, sizeof(name), "px-worker-%d", w->id);
	pthread_setname_np(pthread_self(), name);
	tls_pool = tp;
	px__gil_bind_thread(tp->gil);

	if (tp->ex.cfg.init) {
		int r = tp->ex.cfg.init(w->id, tp->ex.cfg.init_arg);
		if (r) {
			int zero = 0;
			atomic_compare_exchange_strong(&tp->init_err, &zero,
						       r < 0 ? r : -ECANCELED);
		}
	}
	if (atomic_fetch_sub(&tp->init_left, 1) == 1)
		px__futex_wake_private(&tp->init_left, 1);

	/* Busy time is measured per streak of back-to-back tasks, not per
	 * task: two clock reads would cost more than a tiny task. */
	int64_t streak = -1;
	px__set_block_hook(block_hook, w);
	for (;;) {
		/* Take a few tasks at once when many are queued: one CAS and
		 * overlapped cache misses for all of them. Few queued: one, so
		 * long tasks spread over every worker. */
		unsigned n = tp_pop_batch(tp, w->batch, batch_size(tp));
		if (n) {
			wake_space(tp);
			if (streak < 0)
				streak = px__now_ns();
			w->batch_next = 0;
			w->batch_n = n;
			run_claimed(w, false);
			continue;
		}
		if (streak >= 0) {
			uint64_t busy = atomic_load_explicit(&w->counts.busy_ns,
							     memory_order_relaxed);
			atomic_store_explicit(&w->counts.busy_ns,
					      busy + (uint64_t)(px__now_ns() - streak),
					      memory_order_relaxed);
			streak = -1;
		}
		/* Idle: spin a little, since a wake costs far more. */
		bool got = false;
		if (tp->spin_ns) {
			struct px__spin spin;
			px__spin_init(&spin, (int64_t)tp->spin_ns);
			do {
				if (tp_next_ready(tp)) {
					got = true;
					break;
				}
			} while (px__spin_step(&spin));
		}
		if (got)
			continue;
		if (tp_closed(tp)) {
			/* The final tail is known: exit once every claimed
			 * position has been taken. */
			if (tp_nonempty(tp))
				continue;
			break;
		}
		park(tp, w);
	}
	px__set_block_hook(NULL, NULL);
	/* Last touch of the pool; if it was destroyed from one of its own
	 * threads, the last worker out frees it. */
	bool last = atomic_fetch_sub(&tp->alive, 1) == 1;
	if (last && atomic_load(&tp->free_on_exit))
		tp_free(tp);
	return NULL;
}

/* Backend ops -------------------------------------------------------------- */

static void tp_free(struct thread_pool *tp)
{
	px__executor_fini(&tp->ex);
	px__gil_destroy(tp->gil);
	pthread_mutex_destroy(&tp->shut_mu);
	free(tp->slots);
	free(tp->workers);
	free(tp->parked);
	free(tp);
}

static void tp_shutdown(px_executor *ex, bool wait, bool cancel_pending);

static int tp_create(px_executor **out, const struct px__config *cfg)
{
	struct thread_pool *tp = aligned_alloc(64, (sizeof(*tp) + 63) & ~(size_t)63);
	if (!tp)
		return -ENOMEM;
	memset(tp, 0, sizeof(*tp));
	px__executor_init(&tp->ex, &px__thread_backend, cfg);
	tp->cap = cfg->queue;
	tp->mask = (tp->cap & (tp->cap - 1)) == 0 ? tp->cap - 1 : 0;
	tp->nworkers = tp->ex.cfg.workers;
	tp->nwords = (tp->nworkers + 63) / 64;
	tp->spin_ns = (uint64_t)cfg->spin_us * 1000;
	pthread_mutex_init(&tp->shut_mu, NULL);
	tp->slots = calloc(tp->cap, sizeof(*tp->slots));
	tp->workers = aligned_alloc(64, sizeof(*tp->workers) * (size_t)tp->nworkers);
	size_t pbytes = ((size_t)tp->nwords * sizeof(*tp->parked) + 63) & ~(size_t)63;
	tp->parked = aligned_alloc(64, pbytes);
	if (tp->parked)
		memset(tp->parked, 0, pbytes);
	if (cfg->gil)
		tp->gil = px__gil_create();
	if (!tp->slots || !tp->workers || !tp->parked || (cfg->gil && !tp->gil)) {
		tp_free(tp);
		return -ENOMEM;
	}
	memset(tp->workers, 0, sizeof(*tp->workers) * (size_t)tp->nworkers);
	for (uint32_t i = 0; i < tp->cap; i++)
		atomic_init(&tp->slots[i].seq, 2 * (uint64_t)i);
	atomic_init(&tp->init_left, (uint32_t)tp->nworkers);
	atomic_init(&tp->alive, (uint32_t)tp->nworkers);

	int r = 0;
	for (int i = 0; i < tp->nworkers; i++) {
		struct tp_worker *w = &tp->workers[i];
		w->tp = tp;
		w->id = i;
		r = -pthread_create(&w->thread, NULL, worker_main, w);
		if (r) {
			/* The ones that never started count as initialised
			 * and as exited. */
			atomic_fetch_sub(&tp->init_left, (uint32_t)(tp->nworkers - i));
			atomic_fetch_sub(&tp->alive, (uint32_t)(tp->nworkers - i));
			break;
		}
		w->started = true;
	}
	/* Wait for every started worker's initializer. */
	for (uint32_t left; (left = atomic_load(&tp->init_left)) != 0;)
		px__futex_wait_private(&tp->init_left, left, PX__NO_DEADLINE);
	if (!r)
		r = atomic_load(&tp->init_err);
	if (r) {
		atomic_store(&tp->ex.shut, 1);
		tp_shutdown(&tp->ex, true, true);
		tp_free(tp);
		return r;
	}
	*out = &tp->ex;
	return 0;
}

static int tp_submit(px_executor *ex, px_future *f, unsigned flags,
		     int64_t timeout_ns)
{
	(void)timeout_ns; /* threads cannot be stopped: no per-task timeout */
	struct thread_pool *tp = (struct thread_pool *)ex;
	int r;
	while ((r = tp_push(tp, f)) == -EAGAIN) {
		if (flags & PX_SUBMIT_NOWAIT)
			return -EAGAIN;
		/* Full: say so, look once more, sleep until half drained.
		 * The timeout bounds the cost of any missed wake. */
		uint32_t seq = atomic_load(&tp->space_seq);
		atomic_store(&tp->space_wanted, 1);
		uint64_t tail = atomic_load_explicit(&tp->tail, memory_order_relaxed);
		uint64_t depth = (tail & ~TAIL_CLOSED) - atomic_load(&tp->head);
		if (depth > low_water(tp) && !(tail & TAIL_CLOSED)) {
			void *tok = px__blocking_enter();
			px__futex_wait_private(&tp->space_seq, seq,
					       px__deadline_after(100 * PX_MSEC));
			px__blocking_leave(tok);
		}
	}
	if (!r)
		wake_one(tp);
	return r;
}

static void tp_shutdown(px_executor *ex, bool wait, bool cancel_pending)
{
	struct thread_pool *tp = (struct thread_pool *)ex;
	pthread_mutex_lock(&tp->shut_mu);
	atomic_fetch_or(&tp->tail, TAIL_CLOSED);
	/* Let blocked submitters see the bit and leave. */
	atomic_fetch_add(&tp->space_seq, 1);
	px__futex_wake_private(&tp->space_seq, INT_MAX);
	if (cancel_pending) {
		atomic_store(&tp->cancelling, 1);
		/* Take every claimed position, waiting out unpublished ones. */
		while (tp_nonempty(tp)) {
			px_future *f = tp_pop(tp);
			if (f)
				px__future_cancel_queued(&tp->shut_counts, f);
			else
				px__cpu_relax();
		}
	}
	wake_all(tp);
	/* One caller joins, without the mutex: a task may call shutdown too
	 * meanwhile (and must not wait for itself). Other waiting callers
	 * sleep until the join is done. */
	bool in_worker = tls_pool == tp;
	bool join = wait && !in_worker && !tp->joining;
	if (join)
		tp->joining = true;
	pthread_mutex_unlock(&tp->shut_mu);
	if (join) {
		for (int i = 0; i < tp->nworkers; i++)
			if (tp->workers[i].started)
				pthread_join(tp->workers[i].thread, NULL);
		atomic_store(&tp->joined, 1);
		px__futex_wake_private(&tp->joined, INT_MAX);
	} else if (wait && !in_worker) {
		while (!atomic_load(&tp->joined))
			px__futex_wait_private(&tp->joined, 0, PX__NO_DEADLINE);
	}
}

static void tp_destroy(px_executor *ex)
{
	struct thread_pool *tp = (struct thread_pool *)ex;
	if (tls_pool == tp) {
		/* From a task or a done callback on one of our workers: they
		 * cannot be joined from here, so they go detached and the last
		 * one out frees the pool (see worker_main). */
		for (int i = 0; i < tp->nworkers; i++)
			if (tp->workers[i].started)
				pthread_detach(tp->workers[i].thread);
		atomic_store(&tp->free_on_exit, 1);
		return;
	}
	tp_free(tp);
}

static void tp_stats(px_executor *ex, px_executor_stats *out)
{
	struct thread_pool *tp = (struct thread_pool *)ex;
	out->submitted = atomic_load_explicit(&tp->tail, memory_order_relaxed) &
			 ~TAIL_CLOSED;
	out->queued = tp_depth(tp);
	out->workers = (uint64_t)tp->nworkers;
	for (int i = 0; i < tp->nworkers; i++) {
		px__counts_add(out, &tp->workers[i].counts);
		out->queued += atomic_load_explicit(&tp->workers[i].claimed,
						    memory_order_relaxed);
		out->running += atomic_load_explicit(&tp->workers[i].running,
						     memory_order_relaxed);
	}
	/* Written only under shut_mu; relaxed atomic reads need no lock. */
	px__counts_add(out, &tp->shut_counts);
}

const struct px__backend_ops px__thread_backend = {
	.counts_submitted = true, /* tail is the count */
	.create = tp_create,
	.submit = tp_submit,
	.shutdown = tp_shutdown,
	.destroy = tp_destroy,
	.stats = tp_stats,
	.alloc = px__heap_alloc,
	.free = px__heap_free,
};
