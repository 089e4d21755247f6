/*
 * procpool/submit.c - what the submitting threads run: queueing a task in
 * the pool's central queue (px__pp_submit, the backend's submit, which also
 * hands what it can to workers' windows right away, see dispatch.h) and
 * cancelling a RUNNING task (px__pp_cancel, the hook every future of the
 * pool carries, run by whichever thread cancels it).
 */
#include <errno.h>
#include <pthread.h>
#include <sys/socket.h>

#include "dispatch.h"
#include "forkserver.h"
#include "pool.h"

/*
 * The direct hand-over: a task submitted while the central queue is empty
 * and a worker idles goes straight to that worker (as pump() would send
 * it), with the worker's reply ring claimed for this thread (px__pp_claim)
 * and the wake-up left to the caller, outside the lock.
 *
 * Why the claim: waking a parked worker, the submitter's FUTEX_WAKE often
 * returns only after the worker has run the task and replied (the worker
 * takes the CPU at once). That reply used to find nobody watching the
 * ring, so the worker held back the doorbell with a timed sleep
 * (PP_BELL_DEFER_NS) until the submitter came to wait; on the 2-vCPU VM
 * that timed sleep kept the submitter off the CPU about 7 us longer than
 * an untimed one. With the claim the worker sees a watcher, skips the
 * doorbell and parks untimed, and the submitter completes the future
 * before px_executor_submit() returns (px__pp_claim_finish). When the
 * wake-up returns first, the worker has almost always been queued on the
 * submitter's CPU (where it last idled): px__pp_claim_finish yields it the
 * CPU once, which spares the waiter's futex sleep and the worker's wake of
 * it; only if the worker's last task turned around within
 * PP_YIELD_TURN_NS, and never with PX_SUBMIT_NOWAIT, since behind a long
 * task the yield holds the submit for a scheduler slice. Only f's reply is
 * taken here, so no done callback runs inside px_executor_submit().
 *
 * Returns the worker, f handed to it and its ring claimed, or NULL: then f
 * takes the central queue. Lock held.
 */
static struct pp_worker *submit_direct(struct pp_pool *p, px_future *f)
{
	/* An argument in the request slot: the hand-over cannot fail. */
	if (p->qcount || p->broken || f->arg_len > PP_REQ_INLINE)
		return NULL;
	int64_t now = 0;
	struct pp_worker *w = pick_worker(p, &now);
	if (!w || w_inflight(w) || !px__pp_claim(p, w))
		return NULL;
	if (!px__future_try_start(f)) {
		/* Not reachable while the caller has not got f; let go. */
		atomic_store_explicit(&w->sh->helper, HELP_NONE, memory_order_relaxed);
		px__pp_tok_put(p, w, true);
		return NULL;
	}
	int r = dispatch_nowake(p, w, f);
	(void)r; /* cannot fail: no arena block */
	p->takes++;
	return w;
}

int px__pp_submit(px_executor *ex, px_future *f, unsigned flags,
		  int64_t timeout_ns)
{
	struct pp_pool *p = (struct pp_pool *)ex;
	(void)timeout_ns; /* already in f->timeout_ns */
	int lev = flags & PX_SUBMIT_HIGH ? PL_HIGH
		  : flags & PX_SUBMIT_LOW ? PL_LOW
					  : PL_NORMAL;
	f->backend_data = (uint64_t)lev << BD_LEVEL_SHIFT;
	/* Set before the future can become RUNNING (dispatch), and before the
	 * caller gets it, so any thread that cancels it sees the hook. */
	f->cancel_fn = px__pp_cancel;
	f->cancel_arg = p;
	pthread_mutex_lock(&p->lock);
	for (;;) {
		if (p->shutting || p->broken) {
			pthread_mutex_unlock(&p->lock);
			return PX_ESHUTDOWN;
		}
		if (p->qcount < p->qcap)
			break;
		if (flags & PX_SUBMIT_NOWAIT) {
			pthread_mutex_unlock(&p->lock);
			return -EAGAIN;
		}
		/* A done callback submitting: it runs on the collector, the
		 * one thread that makes room, so waiting here would wait
		 * forever. It goes over the bound instead. */
		if (px__pp_on_collector(p))
			break;
		p->space_waiters++;
		pthread_cond_wait(&p->space, &p->lock);
		p->space_waiters--;
	}
	if (lev != PL_NORMAL)
		p->prio_used = true;
	struct pp_worker *w = submit_direct(p, f);
	/* Never for a submit that must not wait, and not behind a worker
	 * whose tasks run long: see PP_YIELD_TURN_NS. */
	bool quick = w && !(flags & PX_SUBMIT_NOWAIT) && w->last_turn_ns > 0 &&
		     w->last_turn_ns < PP_YIELD_TURN_NS;
	if (!w) {
		q_push_back(p, f, lev);
		pump(p);
	}
	pthread_mutex_unlock(&p->lock);
	if (w) {
		/* f stays alive: its reply, or its worker's death (the
		 * collector waits for the token), is handled only after the
		 * claim ends. */
		bool woke = px__pp_worker_wake(w->sh);
		dispatch_timed_bell(p, f);
		px__pp_claim_finish(p, w, woke && quick);
	}
	return 0;
}

/*
 * PX_CANCEL_RUNNING on a RUNNING future (px_future_cancel calls it, in the
 * cancelling thread). A task still waiting in a worker's window is withdrawn
 * and completed as cancelled here. A task the worker has started is marked
 * CANCELREQ, which the task sees through px_task_cancelled(): if it returns
 * within cancel_grace_ms its reply completes the future as cancelled, else
 * the collector marks it KILLING and kills the worker (with no grace, at
 * once, through the fork server); the collector completes it as cancelled
 * when the death is reported.
 */
int px__pp_cancel(px_future *f, void *arg)
{
	struct pp_pool *p = arg;
	pthread_mutex_lock(&p->lock);
	uint64_t bd = f->backend_data;
	if (!(bd & BD_INWORKER)) {
		/* Back in the central queue after its worker died (or failing
		 * for want of arena room): pump_n() drops it from now on. */
		if (bd & BD_DROP) {
			pthread_mutex_unlock(&p->lock);
			return 0;
		}
		f->backend_data |= BD_DROP;
		pthread_mutex_unlock(&p->lock);
		if (px__future_complete(f, -ECANCELED))
			return -EBUSY;
		xcount(p, -ECANCELED);
		return 0;
	}
	if (bd & BD_CANCEL_ASKED) {
		/* Asked already: the task's reply, or its worker's death,
		 * completes it cancelled; its entry may be retired by now. */
		pthread_mutex_unlock(&p->lock);
		return 0;
	}
	struct pp_worker *w = &p->w[(bd >> 8) & 0xffffffffu];
	struct pp_entry *e = &w->ent[bd & 0xff];
	if (e->f != f || e->cancelled) {
		pthread_mutex_unlock(&p->lock);
		return e->f == f ? 0 : -EBUSY;
	}
	struct pp_rec *rec = &w->sh->rec[e->seq % PP_WINDOW];
	uint64_t expect = rword(e->seq, R_QUEUED);
	/* acq_rel: pairs with the worker's start CAS; one of us wins. */
	if (atomic_compare_exchange_strong_explicit(&rec->word, &expect,
						    rword(e->seq, R_CANCELLED),
						    memory_order_acq_rel,
						    memory_order_acquire)) {
		e->cancelled = true;
		pthread_mutex_unlock(&p->lock);
		if (!px__future_complete(f, -ECANCELED))
			xcount(p, -ECANCELED);
		/* A thread waiting on f may sleep on a reply ring (reply.c);
		 * on this worker's, the skip's reply comes only after the
		 * tasks ahead of it: wake it now. */
		px__pp_kick_helpers(p, NULL);
		return 0;
	}
	int r = -EBUSY;
	if (expect == rword(e->seq, R_RUNNING) && p->grace_ns > 0 &&
	    atomic_compare_exchange_strong_explicit(&rec->word, &expect,
						    rword(e->seq, R_CANCELREQ),
						    memory_order_acq_rel,
						    memory_order_acquire)) {
		/* Cooperative first: the task sees it (px_task_cancelled)
		 * and may return; the collector kills the worker if it still
		 * runs at grace_dl (check_grace). */
		w->kill_reason = K_CANCEL;
		w->kill_seq = e->seq;
		if (!w->grace_dl)
			atomic_fetch_add_explicit(&p->grace_pending, 1,
						  memory_order_relaxed);
		w->grace_dl = px__deadline_after(p->grace_ns);
		f->backend_data |= BD_CANCEL_ASKED;
		r = 0;
	} else if (expect == rword(e->seq, R_RUNNING) && p->grace_ns <= 0 &&
	    atomic_compare_exchange_strong_explicit(&rec->word, &expect,
						    rword(e->seq, R_KILLING),
						    memory_order_acq_rel,
						    memory_order_acquire)) {
		w->kill_reason = K_CANCEL;
		w->kill_seq = e->seq;
		struct px__fs_msg m = { .op = PX__FS_KILL, .slot = w->id,
					.gen = w->gen };
		send(p->sock, &m, sizeof(m), MSG_NOSIGNAL | MSG_DONTWAIT);
		f->backend_data |= BD_CANCEL_ASKED;
		r = 0;
	} else if (expect == rword(e->seq, R_KILLING)) {
		w->kill_reason = K_CANCEL; /* already dying (timeout): cancelled */
		f->backend_data |= BD_CANCEL_ASKED;
		r = 0;
	} else if (expect == rword(e->seq, R_CANCELREQ)) {
		r = 0; /* asked already */
	}
	pthread_mutex_unlock(&p->lock);
	if (r == 0 && p->grace_ns > 0)
		ring_bell_always(p); /* the collector watches the deadline */
	return r;
}
