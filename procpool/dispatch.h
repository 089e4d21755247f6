/*
 * procpool/dispatch.h - moving tasks from the central queue into workers'
 * windows: which worker takes the next task (pick_worker), handing one
 * over (dispatch) and the loop over the queue (pump_n). Private: never
 * installed.
 *
 * Both the submitting threads (submit.c, after queueing a task) and the
 * collector (collector.c, after retiring replies or a death) pump, on their
 * hot paths; the functions are static inline here so that each of them
 * keeps its own inlined copy instead of calling across files.
 * Every function here runs with pool->lock held.
 */
#ifndef PX_PROCPOOL_DISPATCH_H
#define PX_PROCPOOL_DISPATCH_H

#include <limits.h>
#include <stdalign.h>
#include <string.h>

#include <parex/ring.h>

#include "pool.h"
#include "px_clock.h"

/*
 * The worker that should take the next task, or NULL to keep it central.
 *
 * An idle worker always takes it (the most recently used one, so a trickle
 * of tasks keeps one worker warm and lets the others park). A busy worker
 * takes more, up to a window of PP_WINDOW, only while it is streaming: it
 * replied within the last PP_STREAM_NS, and that reply came with others or
 * within PP_STREAM_NS of the one before (so its tasks are short; after one
 * long task it gets one task at a time, like an idle worker). Tasks handed
 * to a worker are RUNNING (see pool.h), so this keeps the thread pool's
 * queue semantics where they are visible: behind a long task, new tasks
 * wait in the central queue, PENDING (plainly cancellable, counted by
 * `queue`), and go to whichever worker frees up first; tiny tasks flow in
 * windows, so a worker never waits for the parent between two of them.
 */
static inline struct pp_worker *pick_worker(struct pp_pool *p, int64_t *now)
{
	struct pp_worker *idle = NULL, *least = NULL;
	for (int i = 0; i < p->nw; i++) {
		struct pp_worker *w = &p->w[i];
		if (w->life != L_LIVE)
			continue;
		uint64_t n = w_inflight(w);
		if (n >= w_cap(p, w))
			continue;
		if (n == 0) {
			if (!idle || w->last_used > idle->last_used)
				idle = w;
			continue;
		}
		if (idle)
			continue;
		if (!*now)
			*now = px__now_ns(); /* read once per pump, and only here */
		if (!w->quick || *now - w->last_reply_ns > PP_STREAM_NS)
			continue;
		if (!least || n < w_inflight(least))
			least = w;
	}
	return idle ? idle : least;
}

/*
 * Hands f to w without waking it: the caller wakes it
 * (px__pp_worker_wake), under the lock or after. Returns 0, or -EAGAIN
 * when the arena has no room for the argument right now (other arguments
 * in flight will free some).
 */
static inline int dispatch_nowake(struct pp_pool *p, struct pp_worker *w,
				  px_future *f)
{
	alignas(16) struct pp_req rq;
	memset(&rq, 0, offsetof(struct pp_req, inl));
	void *argmem = NULL;
	if (f->arg_len > PP_REQ_INLINE) {
		argmem = px__arena_alloc(&p->arena, f->arg_len);
		if (!argmem)
			return -EAGAIN;
		memcpy(argmem, f->arg, f->arg_len);
		p->arena_args++;
	} else if (f->arg == f->arg_inline) {
		/* A fixed-size copy: a variable one of a few bytes becomes a
		 * `rep movs`, slow to start, on the collector's hot path. */
		_Static_assert(PX__ARG_INLINE <= PP_REQ_INLINE, "inline arguments fit");
		memcpy(rq.inl, f->arg_inline, PX__ARG_INLINE);
	} else if (f->arg_len) {
		memcpy(rq.inl, f->arg, f->arg_len);
	}
	uint64_t seq = w->next_seq;
	unsigned idx = (unsigned)(seq % PP_WINDOW);
	rq.seq = seq;
	rq.fn = f->fn;
	rq.arg = argmem;
	rq.arg_len = f->arg_len;
	rq.flags = (f->timeout_ns > 0 ? QF_TIMED : 0) | (p->ex.trace ? QF_TRACE : 0);
	rq.sent_ns = px__now_ns();
	atomic_store_explicit(&w->sh->rec[idx].word, rword(seq, R_QUEUED),
			      memory_order_relaxed); /* published by the push */
	w->ent[idx] = (struct pp_entry){ .f = f, .argmem = argmem, .seq = seq,
					 .timeout_ns = f->timeout_ns,
					 .sent_ns = rq.sent_ns };
	f->backend_data = BD_STARTED | BD_INWORKER | (f->backend_data & BD_LEVEL_MASK) |
			  (uint64_t)w->id << 8 | idx;
	int r = px_ring_try_push(w->sh->req, &rq);
	(void)r; /* cannot fail: in flight < PP_WINDOW = capacity */
	w->next_seq++;
	w->dispatched++;
	w->last_used = ++p->tick;
	if (f->timeout_ns > 0) {
		atomic_fetch_add_explicit(&p->timed_inflight, 1, memory_order_relaxed);
		/* Release: a collector that sees the bump sees timed_inflight
		 * raised; dispatch_timed_bell's ring (its fence) orders it
		 * before the load of bell_sleeping (park() pairs). */
		atomic_fetch_add_explicit(&p->timed_gen, 1, memory_order_release);
	}
	return 0;
}

/* After handing over a timed task: the collector may be parked without a
 * deadline; let it start watching this one. */
static inline void dispatch_timed_bell(struct pp_pool *p, const px_future *f)
{
	if (f->timeout_ns > 0)
		px__pp_bell_ring(p->hdr);
}

/* Hands f to w and wakes w if it is parked; as dispatch_nowake(). */
static inline int dispatch(struct pp_pool *p, struct pp_worker *w, px_future *f)
{
	int r = dispatch_nowake(p, w, f);
	if (!r) {
		px__pp_worker_wake(w->sh);
		dispatch_timed_bell(p, f);
	}
	return r;
}

/*
 * Moves up to max central tasks into workers' windows as the policy allows.
 * The collector moves a bounded batch per hold, so a submitter waiting for
 * the lock gets it within a few microseconds; what it leaves goes out when
 * the replies to this batch come back.
 */
static inline void pump_n(struct pp_pool *p, unsigned max)
{
	int64_t now = 0;
	int lev;
	while ((lev = q_level(p)) >= 0 && !p->broken && max--) {
		px_future *f = p->qh[lev];
		if (f->backend_data & BD_DROP) {
			/* Back from a dead worker, then cancelled with
			 * PX_CANCEL_RUNNING: the canceller completed it. */
			q_pop(p, lev);
			pp_trace_not_run(p, f, -ECANCELED);
			px_future_release(f);
			continue;
		}
		if (f->backend_data & BD_STARTED) {
			/* Back from a dead worker: already RUNNING. */
		} else if (px_future_state_get(f) == PX_FUTURE_CANCELLED) {
			q_pop(p, lev); /* a plain cancel while queued */
			pp_trace_not_run(p, f, -ECANCELED);
			xcount(p, -ECANCELED);
			px_future_release(f);
			continue;
		}
		struct pp_worker *w = pick_worker(p, &now);
		if (!w)
			break;
		if (!(f->backend_data & BD_STARTED) && !px__future_try_start(f))
			continue; /* cancelled just now; dropped next round */
		if (dispatch(p, w, f)) {
			f->backend_data |= BD_STARTED; /* RUNNING now */
			if (p->arena_args)
				break; /* arguments in flight will free room */
			/* Nothing will free arena space: fail it, from the
			 * collector, outside the lock. */
			q_pop(p, lev);
			f->qnext = p->failq;
			p->failq = f;
			atomic_store_explicit(&p->has_failq, true, memory_order_relaxed);
			ring_bell_always(p);
			continue;
		}
		q_pop(p, lev);
		p->takes++;
	}
	/* Wake blocked submitters once a quarter of the queue is free, not
	 * at every free slot: one wake then admits a batch. */
	if (p->space_waiters && p->qcount < p->qcap &&
	    p->qcount <= p->qcap - p->qcap / 4)
		pthread_cond_broadcast(&p->space);
}

/* Moves every central task the policy allows. */
static inline void pump(struct pp_pool *p)
{
	pump_n(p, UINT_MAX);
}

#endif /* PX_PROCPOOL_DISPATCH_H */
