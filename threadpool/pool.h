/*
 * threadpool/pool.h - private to threadpool/: the "thread" backend's data
 * structures (struct thread_pool, its queues and workers), its constants,
 * and the queue and wake helpers that both submit (threadpool.c) and the
 * worker loop (worker.c) use, as static inline so that neither pays a call
 * across files for them. The backend is a fixed set of worker threads fed
 * by one bounded lock-free MPMC queue of futures.
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
 *
 * Helping waiters (help.c, key help): a thread that waits with no deadline
 * for a task no worker has started runs it itself, in place of a parked
 * worker it borrows through the worker's lend word; a worker and a waiter
 * race for the queued future through its qnext word (tp_claim). help.c's
 * top has the rules and the pairings.
 *
 * Files: pool.h (this: structs, constants, shared inline helpers);
 * worker.c (the worker thread: take, run, spin, park, retire, exit);
 * help.c (waiters that run their own task: ops->wait_help);
 * threadpool.c (create, submit, shutdown, destroy, resize, stats, the ops
 * table). "See the top" in those files means the comment above.
 */
#ifndef PX_THREADPOOL_POOL_H
#define PX_THREADPOOL_POOL_H

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdint.h>

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

/* A worker's lend word (help.c): whether a waiter may run a task in its
 * place while it sleeps. */
enum { LEND_NO = 0, LEND_OFFERED, LEND_TAKEN, LEND_WAITED };

struct tp_worker {
	alignas(64) struct thread_pool *tp;
	pthread_t thread;
	int id;
	bool joinable;           /* a thread to join; under shut_mu */
	_Atomic int state;       /* W_*, see the top */
	unsigned takes;          /* pops so far (PRIO_FAIR); own thread */
	unsigned spin_misses;    /* idle spins in a row that found nothing */
	_Atomic uint32_t wake;    /* futex word this worker parks on */
	_Atomic uint32_t running; /* 1 while a task runs (stats) */
	_Atomic uint32_t claimed; /* popped, not yet started (stats) */
	_Atomic uint32_t lend;    /* LEND_*, futex word; see help.c */
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

	bool help; /* cfg.help and no GIL (help.c); fixed at creation */

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

/* Defined across files (cold paths only) --------------------------------- */

/* worker.c: the thread function pthread_create starts (arg: the worker). */
void *px__tp_worker_main(void *arg);

/* worker.c: whether the calling thread is one of tp's workers. */
bool px__tp_on_worker(const struct thread_pool *tp);

/* worker.c: the calling thread's worker struct if it is one of tp's
 * workers, else NULL. */
struct tp_worker *px__tp_self(const struct thread_pool *tp);

/* help.c: ops->wait_help, see lib/executor_internal.h and the top. */
int px__tp_wait_help(px_executor *ex, px_future *f, int64_t deadline);

/* help.c: whether the calling thread is running a task of tp as a helper. */
bool px__tp_in_help(const struct thread_pool *tp);

/* help.c: a worker that woke up in park() takes itself back from any
 * waiter that borrowed it, waiting until it is given back. */
void px__tp_lend_reclaim(struct tp_worker *w);

/* threadpool.c: frees the pool (destroy, or the last worker out). */
void px__tp_free(struct thread_pool *tp);

/* Queue ------------------------------------------------------------------ */

/* The slot of position pos: a mask for power-of-two capacities (the
 * default), a division otherwise. */
static inline struct tp_slot *slot_at(const struct thread_pool *tp,
				      const struct tp_queue *q, uint64_t pos)
{
	return &q->slots[tp->mask ? pos & tp->mask : pos % tp->cap];
}

/*
 * Pops up to max tasks from q with one CAS of head: the slots pos ..
 * pos+n-1 are seen ready first, and only the CAS winner may take them.
 * Returns n (0: empty).
 */
static inline unsigned tp_pop_batch(struct thread_pool *tp,
				    struct tp_queue *q, px_future **out,
				    unsigned max)
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

/* Whether a task is queued or being queued on any level (tail claimed,
 * maybe not yet published): a worker that sees this must not park. */
static inline bool tp_nonempty(struct thread_pool *tp)
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
static inline bool tp_closed(struct thread_pool *tp)
{
	return atomic_load_explicit(&tp->q[P_NORMAL].tail, memory_order_acquire) &
	       TAIL_CLOSED;
}

/* Tasks queued on q (claimed by producers, not yet by workers). */
static inline uint64_t q_depth(struct tp_queue *q)
{
	uint64_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed) &
			~TAIL_CLOSED;
	uint64_t head = atomic_load_explicit(&q->head, memory_order_relaxed);
	return tail > head ? tail - head : 0;
}

/* Helping (help.c) -------------------------------------------------------- */

/* The claim word of a queued future when help is on (help.c): its qnext,
 * which the thread pool does not use otherwise. */
#define TP_CLAIMED ((px_future *)1)

/*
 * Whether the caller, which popped f from a queue (or is a helper about to
 * run it), may run or cancel it: exactly one of the worker and any helpers
 * gets true. The others only drop the reference they hold. Always true
 * without help. acq_rel: whatever the winner did before is visible to the
 * loser, which then drops its reference.
 */
static inline bool tp_claim(const struct thread_pool *tp, px_future *f)
{
	if (!tp->help)
		return true;
	if (__atomic_load_n(&f->qnext, __ATOMIC_ACQUIRE) == TP_CLAIMED)
		return false;
	return __atomic_exchange_n(&f->qnext, TP_CLAIMED, __ATOMIC_ACQ_REL) ==
	       NULL;
}

/* Parking -------------------------------------------------------------------- */

static inline void wake_worker(struct tp_worker *w)
{
	atomic_fetch_add_explicit(&w->wake, 1, memory_order_release);
	px__futex_wake_private(&w->wake, 1);
}

static inline int nwords(struct thread_pool *tp)
{
	return (atomic_load_explicit(&tp->nslots, memory_order_acquire) + 63) / 64;
}

/* Wakes one parked worker, if any. Called after publishing a task. */
static inline void wake_one(struct thread_pool *tp)
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

/* The depth at which blocked producers are woken. */
static inline uint64_t low_water(const struct thread_pool *tp)
{
	return tp->cap / 2;
}

static inline bool w_active(struct tp_worker *w)
{
	return atomic_load_explicit(&w->state, memory_order_acquire) == W_ACTIVE;
}

#endif /* PX_THREADPOOL_POOL_H */
