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
 * Priorities: one such queue per level (high, normal, low). A submit CASes
 * only its level's tail. Until the first HIGH or LOW submit (prio_used,
 * stored before that submit's tail CAS) workers look at the normal queue
 * alone, so a pool that never uses priorities runs the same code as one
 * without them; parking and shutdown always look at all three. A worker
 * takes from the highest non-empty level, except that every PRIO_FAIR-th
 * take starts from the bottom (alternately low and normal first), so no
 * level waits forever behind a flood of higher ones.
 *
 * Resizing: worker structs are allocated once per id and kept until the
 * pool is freed (their counters stay in the stats). A worker's state word
 * (ACTIVE, RETIRING, EXITED) decides the race between a shrink and a grow
 * with one CAS each: shrink stores RETIRING and wakes it; the worker, at the
 * top of its loop, CASes RETIRING -> EXITED and leaves (after finishing what
 * it claimed), unless a grow CASed it back to ACTIVE first. A grow reuses
 * the lowest ids that are not ACTIVE: an EXITED one is joined and started
 * again. A leaving worker passes on any wake a submitter meant for it (it
 * may have cleared its parked bit): it wakes another if tasks are queued.
 *
 * Lock order: tp->shut_mu is taken only by shutdown/destroy/resize, never by
 * a worker, and no other lock is held with it.
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

/* Priority levels, highest first; see the top. */
enum { P_HIGH = 0, P_NORMAL = 1, P_LOW = 2, P_LEVELS = 3 };
#define PRIO_FAIR 8

/* The most workers a pool can have (the key table's bound). */
#define MAX_WORKERS 4096

/* Worker states (struct tp_worker.state). */
enum { W_ACTIVE = 0, W_RETIRING, W_EXITED };

struct tp_slot {
	_Atomic uint64_t seq;
	px_future *item;
};

struct thread_pool;

/* One level's bounded MPMC queue. */
struct tp_queue {
	struct tp_slot *slots; /* read-mostly */
	alignas(64) _Atomic uint64_t tail; /* producers; TAIL_CLOSED bit */
	alignas(64) _Atomic uint64_t head; /* consumers */
	char pad_[56];
};

struct tp_worker {
	alignas(64) struct thread_pool *tp;
	pthread_t thread;
	int id;
	bool joinable;           /* a thread to join; under shut_mu */
	_Atomic int state;       /* W_*, see the top */
	unsigned takes;          /* pops so far (PRIO_FAIR); own thread */
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
	_Atomic int nactive; /* ACTIVE workers (stats, batch sizes) */
	_Atomic int nslots;  /* worker structs allocated: ids 0..nslots-1 */
	struct tp_worker **workers; /* MAX_WORKERS pointers */
	_Atomic uint64_t *parked; /* own cache lines: written when parking */
	struct px__gil *gil;
	uint64_t spin_ns;
	atomic_int cancelling; /* shutdown(cancel_pending): drop claimed tasks */
	atomic_bool prio_used; /* a HIGH or LOW task was ever submitted */

	struct tp_queue q[P_LEVELS]; /* aligned: see struct tp_queue */
	alignas(64) _Atomic uint32_t space_seq; /* futex word for producers */
	_Atomic uint32_t space_wanted;          /* a producer sleeps or may */

	alignas(64) _Atomic uint32_t init_left; /* futex word: initialising */
	atomic_int init_err;
	bool init_exit; /* a failing initializer retires its worker (resize) */
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
static inline struct tp_slot *slot_at(const struct thread_pool *tp,
				      const struct tp_queue *q, uint64_t pos)
{
	return &q->slots[tp->mask ? pos & tp->mask : pos % tp->cap];
}

/* Queues f on q. Returns 0, -EAGAIN when full, PX_ESHUTDOWN once closed. */
static int tp_push(struct thread_pool *tp, struct tp_queue *q, px_future *f)
{
	uint64_t pos = atomic_load_explicit(&q->tail, memory_order_relaxed);
	struct tp_slot *s;
	for (;;) {
		if (pos & TAIL_CLOSED)
			return PX_ESHUTDOWN;
		s = slot_at(tp, q, pos);
		uint64_t seq = atomic_load_explicit(&s->seq, memory_order_acquire);
		int64_t diff = (int64_t)(seq - 2 * pos);
		if (diff == 0) {
			/* seq_cst: the parking handshake (see top). */
			if (atomic_compare_exchange_weak_explicit(
				    &q->tail, &pos, pos + 1, memory_order_seq_cst,
				    memory_order_relaxed))
				break;
		} else if (diff < 0) {
			return -EAGAIN; /* full: the slot is a lap behind */
		} else {
			pos = atomic_load_explicit(&q->tail, memory_order_relaxed);
		}
	}
	s->item = f;
	atomic_store_explicit(&s->seq, 2 * pos + 1, memory_order_release);
	return 0;
}

/*
 * Pops up to max tasks from q with one CAS of head: the slots pos ..
 * pos+n-1 are seen ready first, and only the CAS winner may take them.
 * Returns n (0: empty).
 */
static unsigned tp_pop_batch(struct thread_pool *tp, struct tp_queue *q,
			     px_future **out, unsigned max)
{
	uint64_t pos = atomic_load_explicit(&q->head, memory_order_relaxed);
	unsigned n;
	for (;;) {
		n = 0;
		while (n < max) {
			uint64_t p = pos + n;
			uint64_t seq = atomic_load_explicit(&slot_at(tp, q, p)->seq,
							    memory_order_acquire);
			if (seq != 2 * p + 1)
				break;
			n++;
		}
		if (n == 0) {
			uint64_t seq = atomic_load_explicit(
				&slot_at(tp, q, pos)->seq, memory_order_acquire);
			if ((int64_t)(seq - (2 * pos + 1)) < 0)
				return 0; /* empty */
			/* Another consumer took this lap's slot: look again. */
			pos = atomic_load_explicit(&q->head, memory_order_relaxed);
			continue;
		}
		/* seq_cst: the space handshake (see top). */
		if (atomic_compare_exchange_weak_explicit(&q->head, &pos, pos + n,
							  memory_order_seq_cst,
							  memory_order_relaxed))
			break;
	}
	for (unsigned i = 0; i < n; i++) {
		struct tp_slot *s = slot_at(tp, q, pos + i);
		out[i] = s->item;
		__builtin_prefetch(out[i]);
		__builtin_prefetch((char *)out[i] + 64);
		atomic_store_explicit(&s->seq, 2 * (pos + i + tp->cap),
				      memory_order_release);
	}
	return n;
}

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

/* Pops one task from any level (shutdown's cancel). */
static px_future *tp_pop_any(struct thread_pool *tp)
{
	px_future *f;
	for (int i = 0; i < P_LEVELS; i++)
		if (tp_pop_batch(tp, &tp->q[i], &f, 1))
			return f;
	return NULL;
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

/* Whether a task is queued or being queued on any level (tail claimed,
 * maybe not yet published): a worker that sees this must not park. */
static bool tp_nonempty(struct thread_pool *tp)
{
	for (int i = 0; i < P_LEVELS; i++) {
		struct tp_queue *q = &tp->q[i];
		uint64_t tail = atomic_load(&q->tail); /* seq_cst: parking */
		if ((tail & ~TAIL_CLOSED) !=
		    atomic_load_explicit(&q->head, memory_order_relaxed))
			return true;
	}
	return false;
}

/* Closed: every level's tail has the bit (they are closed together, under
 * shut_mu, normal last). */
static bool tp_closed(struct thread_pool *tp)
{
	return atomic_load_explicit(&tp->q[P_NORMAL].tail, memory_order_acquire) &
	       TAIL_CLOSED;
}

/* Tasks queued on q (claimed by producers, not yet by workers). */
static uint64_t q_depth(struct tp_queue *q)
{
	uint64_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed) &
			~TAIL_CLOSED;
	uint64_t head = atomic_load_explicit(&q->head, memory_order_relaxed);
	return tail > head ? tail - head : 0;
}

static uint64_t tp_depth(struct thread_pool *tp)
{
	return q_depth(&tp->q[P_HIGH]) + q_depth(&tp->q[P_NORMAL]) +
	       q_depth(&tp->q[P_LOW]);
}

/* Parking -------------------------------------------------------------------- */

static void wake_worker(struct tp_worker *w)
{
	atomic_fetch_add_explicit(&w->wake, 1, memory_order_release);
	px__futex_wake_private(&w->wake, 1);
}

static int nwords(struct thread_pool *tp)
{
	return (atomic_load_explicit(&tp->nslots, memory_order_acquire) + 63) / 64;
}

/* Wakes one parked worker, if any. Called after publishing a task. */
static void wake_one(struct thread_pool *tp)
{
	int nw = nwords(tp);
	for (int i = 0; i < nw; i++) {
		/* seq_cst, after the tail CAS: the parking handshake. */
		uint64_t bits = atomic_load(&tp->parked[i]);
		while (bits) {
			uint64_t bit = bits & -bits;
			uint64_t old = atomic_fetch_and(&tp->parked[i], ~bit);
			if (old & bit) {
				wake_worker(tp->workers[i * 64 + __builtin_ctzll(bit)]);
				return;
			}
			bits = old & ~bit;
		}
	}
}

static void wake_all(struct thread_pool *tp)
{
	int n = atomic_load_explicit(&tp->nslots, memory_order_acquire);
	for (int i = 0; i < n; i++) {
		struct tp_worker *w = tp->workers[i];
		atomic_fetch_and(&tp->parked[i / 64], ~(1ull << (i % 64)));
		wake_worker(w);
	}
}

/* The depth at which blocked producers are woken. */
static inline uint64_t low_water(const struct thread_pool *tp)
{
	return tp->cap / 2;
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

/* Workers ---------------------------------------------------------------- */

static bool w_active(struct tp_worker *w)
{
	return atomic_load_explicit(&w->state, memory_order_acquire) == W_ACTIVE;
}

static void park(struct thread_pool *tp, struct tp_worker *w)
{
	uint64_t bit = 1ull << (w->id % 64);
	_Atomic uint64_t *word = &tp->parked[w->id / 64];
	/* Acquire: a resize stores the state before it bumps wake. */
	uint32_t seen = atomic_load_explicit(&w->wake, memory_order_acquire);
	atomic_fetch_or(word, bit); /* seq_cst, then tp_nonempty loads tail */
	if (!tp_nonempty(tp) && !tp_closed(tp) && w_active(w))
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

/* A retiring worker leaves unless a grow took it back: true to leave. */
static bool retire_now(struct tp_worker *w)
{
	int st = W_RETIRING;
	/* acq_rel: pairs with resize's CAS RETIRING -> ACTIVE. */
	return atomic_compare_exchange_strong_explicit(&w->state, &st, W_EXITED,
						       memory_order_acq_rel,
						       memory_order_acquire);
}

static void *worker_main(void *arg)
{
	struct tp_worker *w = arg;
	struct thread_pool *tp = w->tp;
	char name[16];
	snprintf(name, sizeof(name), "px-worker-%d", w->id);
	pthread_setname_np(pthread_self(), name);
	tls_pool = tp;
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

	/* Busy time is measured per streak of back-to-back tasks, not per
	 * task: two clock reads would cost more than a tiny task. */
	int64_t streak = -1;
	px__set_block_hook(block_hook, w);
	while (!leave) {
		if (!w_active(w) && retire_now(w)) {
			leave = true;
			break;
		}
		/* Take a few tasks at once when many are queued: one CAS and
		 * overlapped cache misses for all of them. Few queued: one, so
		 * long tasks spread over every worker. */
		unsigned n = tp_take(tp, w);
		if (n) {
			wake_space(tp, &tp->q[P_NORMAL]);
			if (atomic_load_explicit(&tp->prio_used, memory_order_relaxed)) {
				wake_space(tp, &tp->q[P_HIGH]);
				wake_space(tp, &tp->q[P_LOW]);
			}
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
				if (tp_next_ready(tp) || !w_active(w)) {
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
	for (int i = 0; i < P_LEVELS; i++)
		free(tp->q[i].slots);
	if (tp->workers) {
		int n = atomic_load(&tp->nslots);
		for (int i = 0; i < n; i++)
			free(tp->workers[i]);
	}
	free(tp->workers);
	free(tp->parked);
	free(tp);
}

static void tp_shutdown(px_executor *ex, bool wait, bool cancel_pending);

/*
 * Starts worker id (a new struct past nslots, or an EXITED one, joined
 * first) and counts it in init_left and alive. shut_mu held, or creation.
 * Returns 0, -ENOMEM or pthread_create's error.
 */
static int start_worker(struct thread_pool *tp, int id)
{
	struct tp_worker *w;
	if (id < atomic_load_explicit(&tp->nslots, memory_order_relaxed)) {
		w = tp->workers[id];
		if (w->joinable) {
			pthread_join(w->thread, NULL);
			w->joinable = false;
		}
		w->batch_next = w->batch_n = 0;
		atomic_store_explicit(&w->claimed, 0, memory_order_relaxed);
	} else {
		w = aligned_alloc(64, (sizeof(*w) + 63) & ~(size_t)63);
		if (!w)
			return -ENOMEM;
		memset(w, 0, sizeof(*w));
		w->tp = tp;
		w->id = id;
		tp->workers[id] = w;
		/* Release: the pointer before the count (stats, wakes). */
		atomic_store_explicit(&tp->nslots, id + 1, memory_order_release);
	}
	atomic_store_explicit(&w->state, W_ACTIVE, memory_order_release);
	atomic_fetch_add(&tp->init_left, 1);
	atomic_fetch_add(&tp->alive, 1);
	int r = -pthread_create(&w->thread, NULL, worker_main, w);
	if (r) {
		atomic_store(&w->state, W_EXITED);
		atomic_fetch_sub(&tp->init_left, 1);
		atomic_fetch_sub(&tp->alive, 1);
		return r;
	}
	w->joinable = true;
	return 0;
}

/* Waits until every started worker has run its initializer. */
static void wait_init(struct thread_pool *tp)
{
	for (uint32_t left; (left = atomic_load(&tp->init_left)) != 0;)
		px__futex_wait_private(&tp->init_left, left, PX__NO_DEADLINE);
}

static int tp_create(px_executor **out, const struct px__config *cfg)
{
	struct thread_pool *tp = aligned_alloc(64, (sizeof(*tp) + 63) & ~(size_t)63);
	if (!tp)
		return -ENOMEM;
	memset(tp, 0, sizeof(*tp));
	px__executor_init(&tp->ex, &px__thread_backend, cfg);
	tp->cap = cfg->queue;
	tp->mask = (tp->cap & (tp->cap - 1)) == 0 ? tp->cap - 1 : 0;
	tp->spin_ns = (uint64_t)cfg->spin_us * 1000;
	pthread_mutex_init(&tp->shut_mu, NULL);
	bool nomem = false;
	for (int i = 0; i < P_LEVELS; i++) {
		tp->q[i].slots = malloc(tp->cap * sizeof(*tp->q[i].slots));
		if (!tp->q[i].slots) {
			nomem = true;
			continue;
		}
		for (uint32_t k = 0; k < tp->cap; k++) {
			atomic_init(&tp->q[i].slots[k].seq, 2 * (uint64_t)k);
			tp->q[i].slots[k].item = NULL;
		}
	}
	tp->workers = calloc(MAX_WORKERS, sizeof(*tp->workers));
	size_t pbytes = (MAX_WORKERS / 64) * sizeof(*tp->parked);
	tp->parked = aligned_alloc(64, pbytes);
	if (tp->parked)
		memset(tp->parked, 0, pbytes);
	if (cfg->gil)
		tp->gil = px__gil_create();
	if (nomem || !tp->workers || !tp->parked || (cfg->gil && !tp->gil)) {
		tp_free(tp);
		return -ENOMEM;
	}

	int n = tp->ex.cfg.workers, r = 0;
	for (int i = 0; i < n && !r; i++) {
		r = start_worker(tp, i);
		if (!r)
			atomic_fetch_add(&tp->nactive, 1);
	}
	/* Wait for every started worker's initializer. */
	wait_init(tp);
	if (!r)
		r = atomic_load(&tp->init_err);
	if (r) {
		atomic_store(&tp->ex.shut, 1);
		tp_shutdown(&tp->ex, true, true);
		tp_free(tp);
		return r;
	}
	tp->init_exit = true; /* from now on: see worker_main */
	*out = &tp->ex;
	return 0;
}

static int tp_submit(px_executor *ex, px_future *f, unsigned flags,
		     int64_t timeout_ns)
{
	(void)timeout_ns; /* threads cannot be stopped: no per-task timeout */
	struct thread_pool *tp = (struct thread_pool *)ex;
	struct tp_queue *q = &tp->q[P_NORMAL];
	if (flags & (PX_SUBMIT_HIGH | PX_SUBMIT_LOW)) {
		q = &tp->q[flags & PX_SUBMIT_HIGH ? P_HIGH : P_LOW];
		/* Before the tail CAS (seq_cst) that a parking worker's
		 * tail load may see: it then sees this too. */
		if (!atomic_load_explicit(&tp->prio_used, memory_order_relaxed))
			atomic_store(&tp->prio_used, true);
	}
	int r;
	while ((r = tp_push(tp, q, f)) == -EAGAIN) {
		if (flags & PX_SUBMIT_NOWAIT)
			return -EAGAIN;
		/* Full: say so, look once more, sleep until half drained.
		 * The timeout bounds the cost of any missed wake. */
		uint32_t seq = atomic_load(&tp->space_seq);
		atomic_store(&tp->space_wanted, 1);
		uint64_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
		uint64_t depth = (tail & ~TAIL_CLOSED) - atomic_load(&q->head);
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
	/* Normal last: tp_closed() looks at it. */
	atomic_fetch_or(&tp->q[P_HIGH].tail, TAIL_CLOSED);
	atomic_fetch_or(&tp->q[P_LOW].tail, TAIL_CLOSED);
	atomic_fetch_or(&tp->q[P_NORMAL].tail, TAIL_CLOSED);
	/* Let blocked submitters see the bit and leave. */
	atomic_fetch_add(&tp->space_seq, 1);
	px__futex_wake_private(&tp->space_seq, INT_MAX);
	if (cancel_pending) {
		atomic_store(&tp->cancelling, 1);
		/* Take every claimed position, waiting out unpublished ones. */
		while (tp_nonempty(tp)) {
			px_future *f = tp_pop_any(tp);
			if (f)
				px__future_cancel_queued(&tp->shut_counts, f);
			else
				px__cpu_relax();
		}
	}
	wake_all(tp);
	/* One caller joins, without the mutex: a task may call shutdown too
	 * meanwhile (and must not wait for itself). Other waiting callers
	 * sleep until the join is done. No resize starts a worker once the
	 * queues are closed, so the set of threads to join is fixed. */
	bool in_worker = tls_pool == tp;
	bool join = wait && !in_worker && !tp->joining;
	if (join)
		tp->joining = true;
	pthread_mutex_unlock(&tp->shut_mu);
	if (join) {
		int n = atomic_load(&tp->nslots);
		for (int i = 0; i < n; i++) {
			struct tp_worker *w = tp->workers[i];
			if (w->joinable) {
				pthread_join(w->thread, NULL);
				w->joinable = false;
			}
		}
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
		pthread_mutex_lock(&tp->shut_mu);
		int n = atomic_load(&tp->nslots);
		for (int i = 0; i < n; i++) {
			struct tp_worker *w = tp->workers[i];
			if (w->joinable) {
				pthread_detach(w->thread);
				w->joinable = false;
			}
		}
		pthread_mutex_unlock(&tp->shut_mu);
		atomic_store(&tp->free_on_exit, 1);
		return;
	}
	tp_free(tp);
}

/*
 * px_executor_resize(). Shrinks by retiring the highest-numbered ACTIVE
 * workers; grows by taking back retiring ones or starting the lowest ids
 * that are not ACTIVE, then waits for their initializers.
 */
static int tp_resize(px_executor *ex, int workers)
{
	struct thread_pool *tp = (struct thread_pool *)ex;
	pthread_mutex_lock(&tp->shut_mu);
	if (tp_closed(tp)) {
		pthread_mutex_unlock(&tp->shut_mu);
		return PX_ESHUTDOWN;
	}
	int cur = atomic_load(&tp->nactive), r = 0;
	int nslots = atomic_load(&tp->nslots);
	if (workers < cur) {
		for (int i = nslots - 1; i >= 0 && cur > workers; i--) {
			struct tp_worker *w = tp->workers[i];
			if (!w_active(w))
				continue;
			/* Release (with wake's release bump): a parking worker
			 * that sees the bump sees the state. */
			atomic_store_explicit(&w->state, W_RETIRING,
					      memory_order_release);
			wake_worker(w);
			cur--;
		}
	} else if (workers > cur) {
		atomic_store(&tp->init_err, 0);
		for (int i = 0; i < MAX_WORKERS && cur < workers; i++) {
			if (i < nslots) {
				struct tp_worker *w = tp->workers[i];
				int st = W_RETIRING;
				if (atomic_compare_exchange_strong(&w->state, &st,
								   W_ACTIVE)) {
					cur++; /* taken back before it left */
					continue;
				}
				if (st == W_ACTIVE)
					continue;
			}
			r = start_worker(tp, i);
			if (r)
				break;
			cur++;
		}
		wait_init(tp);
		int ie = atomic_load(&tp->init_err);
		if (ie) {
			/* Those whose initializer failed left (EXITED). */
			cur = 0;
			for (int i = 0; i < atomic_load(&tp->nslots); i++)
				cur += w_active(tp->workers[i]);
			if (!r)
				r = ie;
		}
	}
	atomic_store(&tp->nactive, cur);
	__atomic_store_n(&tp->ex.cfg.workers, cur, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&tp->shut_mu);
	return r;
}

static void tp_stats(px_executor *ex, px_executor_stats *out)
{
	struct thread_pool *tp = (struct thread_pool *)ex;
	out->submitted = 0;
	for (int i = 0; i < P_LEVELS; i++)
		out->submitted += atomic_load_explicit(&tp->q[i].tail,
						       memory_order_relaxed) &
				  ~TAIL_CLOSED;
	out->queued = tp_depth(tp);
	out->workers = (uint64_t)atomic_load_explicit(&tp->nactive,
						      memory_order_relaxed);
	int n = atomic_load_explicit(&tp->nslots, memory_order_acquire);
	for (int i = 0; i < n; i++) {
		struct tp_worker *w = tp->workers[i];
		px__counts_add(out, &w->counts);
		out->queued += atomic_load_explicit(&w->claimed,
						    memory_order_relaxed);
		out->running += atomic_load_explicit(&w->running,
						     memory_order_relaxed);
	}
	/* Written only under shut_mu; relaxed atomic reads need no lock. */
	px__counts_add(out, &tp->shut_counts);
}

const struct px__backend_ops px__thread_backend = {
	.counts_submitted = true, /* the tails are the count */
	.create = tp_create,
	.submit = tp_submit,
	.shutdown = tp_shutdown,
	.destroy = tp_destroy,
	.stats = tp_stats,
	.alloc = px__heap_alloc,
	.free = px__heap_free,
	.resize = tp_resize,
};
