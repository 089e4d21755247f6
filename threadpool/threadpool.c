/*
 * threadpool/threadpool.c - the "thread" backend's pool-level operations:
 * create (and starting workers), submit (tp_push, the blocking wait for
 * space), shutdown (closing the queues, cancelling what is queued, joining),
 * destroy, resize, stats, and the px__thread_backend ops table. The worker
 * thread itself is in worker.c; the structs, the memory-order pairings, the
 * resize protocol and the lock order are described at the top of pool.h
 * ("the top" below).
 *
 * Lock order: tp->shut_mu is taken only by shutdown/destroy/resize, never by
 * a worker, and no other lock is held with it.
 */
#include <stdlib.h>
#include <string.h>

#include "pool.h"

/* Queue ------------------------------------------------------------------ */

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

/* Pops one task from any level (shutdown's cancel). */
static px_future *tp_pop_any(struct thread_pool *tp)
{
	px_future *f;
	for (int i = 0; i < P_LEVELS; i++)
		if (tp_pop_batch(tp, &tp->q[i], &f, 1))
			return f;
	return NULL;
}

static uint64_t tp_depth(struct thread_pool *tp)
{
	return q_depth(&tp->q[P_HIGH]) + q_depth(&tp->q[P_NORMAL]) +
	       q_depth(&tp->q[P_LOW]);
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

/* Backend ops -------------------------------------------------------------- */

void px__tp_free(struct thread_pool *tp)
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
	int r = -pthread_create(&w->thread, NULL, px__tp_worker_main, w);
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
	/* Helping: see help.c for why not with the GIL. */
	tp->help = cfg->help && !cfg->gil;
	if (nomem || !tp->workers || !tp->parked || (cfg->gil && !tp->gil)) {
		px__tp_free(tp);
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
		px__tp_free(tp);
		return r;
	}
	tp->init_exit = true; /* from now on: see worker_init */
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
			if (f && tp_claim(tp, f))
				px__future_cancel_queued(&tp->shut_counts, f);
			else if (f)
				px_future_release(f); /* a waiter ran it */
			else
				px__cpu_relax();
		}
	}
	wake_all(tp);
	/* One caller joins, without the mutex: a task may call shutdown too
	 * meanwhile (and must not wait for itself). Other waiting callers
	 * sleep until the join is done. No resize starts a worker once the
	 * queues are closed, so the set of threads to join is fixed. A
	 * worker lent to a waiter (help.c) exits once given back, so the
	 * join also waits for the task that waiter runs; a task a waiter
	 * runs counts as in a worker here. */
	bool in_worker = px__tp_on_worker(tp) || px__tp_in_help(tp);
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
	if (px__tp_on_worker(tp)) {
		/* From a task or a done callback on one of our workers: they
		 * cannot be joined from here, so they go detached and the last
		 * one out frees the pool (see worker_exit). */
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
	px__tp_free(tp);
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
	.wait_help = px__tp_wait_help,
};
