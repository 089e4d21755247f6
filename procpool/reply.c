/*
 * procpool/reply.c - taking replies off the workers' reply rings and
 * completing their futures. One path, run by two kinds of thread:
 *
 *  - the collector (collector.c), which drains every ring nobody watches,
 *    and so completes the futures nobody waits for (done callbacks,
 *    px_as_completed, channels);
 *  - a thread waiting on a future of the pool (px__pp_wait_help, the
 *    backend's wait_help hook, see lib/executor_internal.h): it watches the
 *    ring of the worker that runs its task, spinning briefly when that
 *    worker is streaming and sleeping otherwise, and completes what
 *    arrives itself. The reply then goes worker -> waiter, two hand-offs
 *    as over a pipe, instead of worker -> collector -> waiter.
 *
 * A reply ring is SPSC: its consumer is whoever holds the worker's token
 * (pp_worker.tok), taken with a try by both, from the pop until the
 * replies are retired under the pool's lock, so that every reply is
 * retired exactly once. The collector takes it unconditionally (tok_wanted,
 * px__pp_tok_take) before it empties a dead worker's window and resets its
 * slot.
 *
 * While a waiter watches a ring it says so in the slot's helper word
 * (HELP_SPIN, or HELP_ASLEEP while it sleeps on the slot's hseq futex), and
 * the worker, after pushing a reply, wakes it if it sleeps and does not
 * ring the collector's doorbell (px__pp_reply_bell). Going to sleep, the
 * waiter stores HELP_ASLEEP, fences and looks at the ring once more; the
 * worker pushes, fences and loads the word: one of them sees the other.
 * Letting go, the waiter stores HELP_NONE, releases the token, fences and
 * looks at the ring once more, ringing the doorbell for a reply that came
 * meanwhile (px__pp_tok_put).
 *
 * A waiter in px_wait() waits for several futures but watches one ring: so
 * whoever completes futures bumps p->completions and wakes the waiters
 * asleep on other rings (px__pp_kick_helpers), Dekker pair with the
 * sleeper's store of HELP_ASLEEP and its look at the counter.
 *
 * Futures completed by a waiter run their done callbacks on the waiter's
 * thread. Such a callback may shut down or destroy the pool, as on the
 * collector. A destroy is deferred by lib until the thread has left
 * wait_help (px__help_defer_destroy). A shutdown with wait does not wait
 * there: the thread gives back its pins on the executor (ex->helping) until
 * it leaves its completions, so that another thread's destroy is not held
 * up by them, and the collector leaves only once no waiter is completing
 * anything (cb_helpers).
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>

#include <parex/ring.h>

#include "dispatch.h"
#include "pool.h"
#include "px_clock.h"
#include "px_futex.h"

/* A waiter spins for a reply at most this long, and only for the worker's
 * next reply while the worker is streaming (see px__pp_wait_help); else it
 * sleeps at once. */
#define HELP_SPIN_NS (20 * 1000)
/* A sleeping waiter looks again at least this often: its future may have
 * moved (requeued after a death), or one of the others a px_wait() waits
 * for completed just before the waiter read p->completions. */
#define HELP_NAP_NS (5 * PX_MSEC)

/* The pool whose futures this thread is completing inside wait_help, how
 * many such frames it is in, and how many of their pins on the executor it
 * gave back (see px__pp_helper_unpin). */
static PX__TLS struct pp_pool *tl_pool;
static PX__TLS int tl_depth, tl_unpinned;

bool px__pp_on_helper(const struct pp_pool *p)
{
	return tl_pool == p && tl_depth > 0;
}

void px__pp_helper_unpin(struct pp_pool *p)
{
	if (!px__pp_on_helper(p) || tl_unpinned == tl_depth)
		return;
	/* Release: as px__future_help()'s own decrement. */
	atomic_fetch_sub_explicit(&p->ex.helping, tl_depth - tl_unpinned,
				  memory_order_release);
	tl_unpinned = tl_depth;
}

/* The token ---------------------------------------------------------------- */

bool px__pp_tok_try(struct pp_worker *w)
{
	/* Acquire: pairs with the release in px__pp_tok_put(); the last
	 * holder's pops (the ring's consumer index) happen before ours. */
	uint32_t z = 0;
	return !atomic_load_explicit(&w->tok, memory_order_relaxed) &&
	       atomic_compare_exchange_strong_explicit(&w->tok, &z, 1,
						       memory_order_acquire,
						       memory_order_relaxed);
}

/* Wakes w's watcher if it sleeps on hseq. */
static void helper_wake(struct pp_wshared *sh)
{
	if (atomic_load_explicit(&sh->helper, memory_order_relaxed) == HELP_ASLEEP) {
		/* Release: pairs with the sleeper's acquire load of hseq. */
		atomic_fetch_add_explicit(&sh->hseq, 1, memory_order_release);
		px__futex_wake_shared(&sh->hseq, 1);
	}
}

void px__pp_tok_take(struct pp_worker *w)
{
	/* The watcher looks at tok_wanted before it takes the token and
	 * before each sleep; a wake that misses it (it stored HELP_ASLEEP
	 * just after we looked) is repeated. */
	atomic_store_explicit(&w->tok_wanted, 1, memory_order_seq_cst);
	for (unsigned i = 0; !px__pp_tok_try(w); i++) {
		if (i % 16 == 0)
			helper_wake(w->sh);
		sched_yield();
	}
	atomic_store_explicit(&w->tok_wanted, 0, memory_order_relaxed);
}

/*
 * noinline: gcc rejects (-Wtsan) an atomic_thread_fence inlined into
 * another function under -fsanitize=thread.
 */
__attribute__((noinline)) void px__pp_tok_put(struct pp_pool *p,
					      struct pp_worker *w, bool bell)
{
	/* Release: pairs with the next holder's acquire in px__pp_tok_try(). */
	atomic_store_explicit(&w->tok, 0, memory_order_release);
	if (!bell)
		return;
	/* Dekker pair with px__pp_reply_bell(): the helper flag was cleared
	 * (and the token released) before this fence, the worker pushed
	 * before its fence. A worker that still saw the flag skipped the
	 * doorbell, and then this load sees its reply; so does the
	 * collector's park(), which skips rings whose token is held. */
	atomic_thread_fence(memory_order_seq_cst);
	if (px_ring_count(w->sh->resp))
		ring_bell_always(p);
}

/* noinline: as px__pp_tok_put(). */
__attribute__((noinline)) void px__pp_kick_helpers(struct pp_pool *p,
						   const struct pp_worker *except)
{
	/* Dekker pair with wait_help's sleep: our completions before the
	 * bump and this fence, its HELP_ASLEEP before its fence and its look
	 * at the counter. Either it sees the bump or we see it asleep. */
	atomic_fetch_add_explicit(&p->completions, 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_seq_cst);
	int nw = atomic_load_explicit(&p->nw, memory_order_relaxed);
	for (int i = 0; i < nw; i++)
		if (&p->w[i] != except)
			helper_wake(p->w[i].sh);
}

/* One reply ---------------------------------------------------------------- */

/*
 * Hands large-reply area `area` back to its worker, waking it if it waits
 * for it. noinline: as px__pp_tok_put().
 */
static __attribute__((noinline)) void big_release(struct pp_wshared *sh,
						  unsigned area)
{
	/* Release: pairs with the worker's acquire in big_wait(); then the
	 * Dekker fence before reading big_waiters. */
	_Atomic uint32_t *busy = &sh->big_busy[area];
	atomic_store_explicit(busy, 0, memory_order_release);
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&sh->big_waiters, memory_order_relaxed))
		px__futex_wake_shared(busy, 1);
}

/*
 * Retires replies rs[0..n) of w, popped by the token's holder: takes each
 * one's future out of its window entry into d[i] (NULL for a reply whose
 * entry is gone: the pool broke meanwhile and failed it), updates w's
 * streaming state and refills the windows. Lock held.
 */
static void retire_replies(struct pp_pool *p, struct pp_worker *w,
			   const struct pp_resp *rs, int n, struct pp_done *d)
{
	int64_t sent_ns = 0; /* of the last task retired here */
	for (int i = 0; i < n; i++) {
		uint64_t seq = rs[i].seq;
		struct pp_entry *e = &w->ent[seq % PP_WINDOW];
		d[i].r = rs[i];
		d[i].f = NULL;
		/* Replies come in seq order; fail_everything() may have
		 * emptied the window (done_seq = next_seq) while these were
		 * popped. A worker's scribbles must not retire a wrong entry. */
		if (seq != w->done_seq || !e->f || e->seq != seq)
			continue;
		d[i].release_only = e->cancelled;
		if (p->ex.trace) {
			/* Before done_seq moves on: then the record may be
			 * handed to the next task. The reply's pop (acquire)
			 * ordered the worker's stores before these loads. */
			struct pp_rec *rec = &w->sh->rec[seq % PP_WINDOW];
			d[i].pid = atomic_load_explicit(&w->sh->pid,
							memory_order_relaxed);
			d[i].start_ns = atomic_load_explicit(&rec->start_ns,
							     memory_order_relaxed);
			d[i].end_ns = atomic_load_explicit(&rec->end_ns,
							   memory_order_relaxed);
		}
		sent_ns = e->sent_ns;
		d[i].f = entry_retire(p, e);
		w->done_seq++;
	}
	/* Several replies at once, or two close together: short tasks. One
	 * reply long after the last: a long task, or the first after idling;
	 * do not stack a window behind it. */
	int64_t now = px__now_ns();
	w->quick = n >= 2 || now - w->last_reply_ns <= PP_STREAM_NS;
	w->last_reply_ns = now;
	if (sent_ns)
		w->last_turn_ns = now - sent_ns;
	pump_n(p, 2 * PP_BURST);
}

/*
 * Completes d's future from its reply (result or message in the worker's
 * large-reply area), counts it (ccounts on the collector, xcounts
 * elsewhere), and hands the area back. Outside the lock; the token may be
 * released already (the area stays the worker's until big_release).
 */
static void complete_reply(struct pp_pool *p, struct pp_worker *w,
			   struct pp_done *d, bool collector)
{
	px_future *f = d->f;
	struct pp_resp *r = &d->r;
	unsigned area = (r->flags >> RF_AREA_SHIFT) % PP_NBIG;
	const unsigned char *big = w->sh->big + (size_t)area * p->big_len;
	if (f && (d->release_only || (r->flags & RF_SKIPPED)))
		pp_trace_not_run(p, f, -ECANCELED);
	if (f && !d->release_only && !(r->flags & RF_SKIPPED)) {
		int err = r->err;
		if (!err) {
			const void *src = r->flags & RF_BIG ? (const void *)big : r->inl;
			/* Into the buffer map() attached to f, if any: no
			 * malloc of a large result per task. */
			void *dst = px__future_result_buffer(f, r->len);
			if (!dst)
				err = -ENOMEM;
			else if (r->len)
				memcpy(dst, src, r->len);
		}
		if (r->flags & RF_MSG)
			px__future_store_message(f, (const char *)big + p->ex.cfg.max_result);
		pp_trace(p, f, w->id, d->pid, d->start_ns, d->end_ns, err, 0);
		if (!px__future_complete(f, err)) {
			if (collector)
				px__counts_record(&p->ccounts, err);
			else
				xcount(p, err);
		}
	}
	if (r->flags & (RF_BIG | RF_MSG))
		big_release(w->sh, area);
	if (f)
		px_future_release(f);
}

/* The collector's side -------------------------------------------------- */

/* Pops and retires up to PP_BURST replies of w into d (token held).
 * Returns how many. */
static int take_burst(struct pp_pool *p, struct pp_worker *w, struct pp_done *d)
{
	struct pp_resp rs[PP_BURST];
	int n = px_ring_try_pop_burst(w->sh->resp, rs, PP_BURST);
	if (n <= 0)
		return 0;
	pthread_mutex_lock(&p->lock);
	retire_replies(p, w, rs, n, d);
	pthread_mutex_unlock(&p->lock);
	return n;
}

/* The collector completes d[0..n), then wakes waiters asleep on other
 * rings, one of which may wait for any of these (px_wait). */
static void collector_complete(struct pp_pool *p, struct pp_worker *w,
			       struct pp_done *d, int n)
{
	for (int i = 0; i < n; i++)
		complete_reply(p, w, &d[i], true);
	px__pp_kick_helpers(p, NULL);
}

int px__pp_drain_held(struct pp_pool *p, struct pp_worker *w)
{
	int total = 0, n;
	struct pp_done d[PP_BURST];
	do {
		n = take_burst(p, w, d);
		collector_complete(p, w, d, n);
		total += n;
	} while (n == PP_BURST);
	return total;
}

int px__pp_drain(struct pp_pool *p, struct pp_worker *w)
{
	int total = 0, n;
	struct pp_done d[PP_BURST];
	do {
		/* A waiter holds it: it takes what comes, and rings the
		 * doorbell for what it leaves. */
		if (!px_ring_count(w->sh->resp) || !px__pp_tok_try(w))
			break;
		n = take_burst(p, w, d);
		/* Let go before the callbacks run: a waiter may take the ring
		 * meanwhile (and a callback that waits may help). */
		px__pp_tok_put(p, w, false); /* we look again next round */
		collector_complete(p, w, d, n);
		total += n;
	} while (n == PP_BURST);
	return total;
}

/* The waiter's side ------------------------------------------------------- */

/*
 * Sleeps on sh->hseq until the worker pushes a reply, a completion
 * elsewhere (p->completions moved from seen), the collector wanting the
 * token, or timeout_ns. noinline for the fence, as px__pp_tok_put().
 */
static __attribute__((noinline)) void helper_sleep(struct pp_pool *p,
						   struct pp_worker *w,
						   uint32_t seen,
						   int64_t timeout_ns)
{
	struct pp_wshared *sh = w->sh;
	/* Acquire: pairs with the wakers' release bumps. */
	uint32_t v = atomic_load_explicit(&sh->hseq, memory_order_acquire);
	atomic_store_explicit(&sh->helper, HELP_ASLEEP, memory_order_relaxed);
	/* Dekker pairs: with the worker's push then fence then load of
	 * sh->helper (px__pp_reply_bell), with px__pp_kick_helpers(), and
	 * with px__pp_tok_take()'s seq_cst store of tok_wanted. */
	atomic_thread_fence(memory_order_seq_cst);
	if (!px_ring_count(sh->resp) &&
	    atomic_load_explicit(&p->completions, memory_order_relaxed) == seen &&
	    !atomic_load_explicit(&w->tok_wanted, memory_order_relaxed))
		px__futex_wait_shared(&sh->hseq, v, px__deadline_after(timeout_ns));
	atomic_store_explicit(&sh->helper, HELP_SPIN, memory_order_relaxed);
}

/* Completes d[0..n) on this thread, as a helper frame of p (callbacks
 * that shut down or destroy the pool see px__pp_on_helper), then leaves
 * the pool alone: cb_helpers, raised by the caller under the lock, drops
 * last. */
static void helper_complete(struct pp_pool *p, struct pp_worker *w,
			    struct pp_done *d, int n)
{
	struct pp_pool *prev = tl_pool;
	int prev_depth = tl_depth, prev_unpinned = tl_unpinned;
	if (prev != p) {
		tl_pool = p;
		tl_depth = tl_unpinned = 0;
	}
	tl_depth++;
	for (int i = 0; i < n; i++)
		complete_reply(p, w, &d[i], false);
	px__pp_kick_helpers(p, w);
	if (tl_unpinned == tl_depth) {
		/* A callback shut the pool down and gave back our pin: take
		 * it again for px__future_help()'s decrement, before the
		 * collector may see cb_helpers at zero. */
		atomic_fetch_add_explicit(&p->ex.helping, 1, memory_order_relaxed);
		tl_unpinned--;
	}
	tl_depth--;
	if (prev != p) {
		tl_pool = prev;
		tl_depth = prev_depth;
		tl_unpinned = prev_unpinned;
	}
	/* Release: pairs with the collector's acquire before it leaves. */
	atomic_fetch_sub_explicit(&p->cb_helpers, 1, memory_order_release);
}

/* A node on the awaited future's completion list that wakes its sleeping
 * waiter: f may finish without a reply on the watched ring (a plain cancel
 * while it is queued, a failure found by the collector). */
struct wake_node {
	struct px__node node;
	struct pp_wshared *sh;
};

static void wake_fire(struct px__node *n, px_future *f)
{
	(void)f;
	struct wake_node *wn = (struct wake_node *)n;
	/* Release: pairs with helper_sleep()'s acquire load of hseq. */
	atomic_fetch_add_explicit(&wn->sh->hseq, 1, memory_order_release);
	px__futex_wake_shared(&wn->sh->hseq, INT_MAX);
	/* Last touch of the node (px__future_unlink waits for it). */
	atomic_store_explicit(&n->fired, 1, memory_order_release);
}

/* helper_sleep(), woken also when f finishes by any path. */
static void helper_sleep_on(struct pp_pool *p, struct pp_worker *w,
			    px_future *f, uint32_t seen, int64_t timeout_ns)
{
	struct wake_node wn = { .node.fire = wake_fire, .sh = w->sh };
	if (!px__future_link(f, &wn.node))
		return; /* finished meanwhile */
	helper_sleep(p, w, seen, timeout_ns);
	px__future_unlink(f, &wn.node);
}

/*
 * Retires rs[0..n) (n may be 0), popped from w's ring by this thread with
 * the token held, lets go of the ring (the helper word, then the token,
 * ringing the doorbell for a reply that came meanwhile), and completes
 * what it retired on this thread.
 */
static void watch_finish(struct pp_pool *p, struct pp_worker *w,
			 const struct pp_resp *rs, int n)
{
	struct pp_done d[PP_BURST];
	if (n > 0) {
		pthread_mutex_lock(&p->lock);
		retire_replies(p, w, rs, n, d);
		/* Under the lock, with the retirement: the collector cannot
		 * see the pool finished before it sees us completing. */
		atomic_fetch_add_explicit(&p->cb_helpers, 1, memory_order_relaxed);
		pthread_mutex_unlock(&p->lock);
	}
	atomic_store_explicit(&w->sh->helper, HELP_NONE, memory_order_relaxed);
	px__pp_tok_put(p, w, true);
	if (n > 0)
		helper_complete(p, w, d, n);
}

bool px__pp_claim(struct pp_pool *p, struct pp_worker *w)
{
	if (px__pp_on_collector(p) ||
	    atomic_load_explicit(&w->tok_wanted, memory_order_relaxed) ||
	    !px__pp_tok_try(w))
		return false;
	/* Relaxed: published to the worker by the request's push. */
	atomic_store_explicit(&w->sh->helper, HELP_SPIN, memory_order_relaxed);
	return true;
}

void px__pp_claim_finish(struct pp_pool *p, struct pp_worker *w, bool may_yield)
{
	/* One reply at most: f's (the worker was idle when it got f). A
	 * reply behind it is another thread's task, which the worker took
	 * since (streaming): its done callbacks must not run inside this
	 * px_executor_submit(), where no help frame pins the pool (a callback
	 * destroying it would hang), so it goes to the collector through the
	 * doorbell watch_finish rings. */
	struct pp_resp rs[1];
	int n = px_ring_try_pop_burst(w->sh->resp, rs, 1);
	if (n <= 0 && may_yield) {
		/* The worker woke on this CPU (where it last idled) and waits
		 * for it: yield it the CPU now rather than sleep in wait_help
		 * and be woken by its reply, one futex wake-up fewer. The
		 * ring is still claimed, so its reply rings nothing. */
		int cpu = sched_getcpu();
		if (cpu >= 0 &&
		    cpu == atomic_load_explicit(&w->sh->wcpu, memory_order_relaxed)) {
			sched_yield();
			n = px_ring_try_pop_burst(w->sh->resp, rs, 1);
		}
	}
	watch_finish(p, w, rs, n > 0 ? n : 0);
}

int px__pp_wait_help(px_executor *ex, px_future *f, int64_t deadline)
{
	struct pp_pool *p = (struct pp_pool *)ex;
	/* The collector must keep watching deaths and timeouts: a done
	 * callback waiting on it does not sleep on a ring. */
	if (px__pp_on_collector(p))
		return 0;
	struct pp_worker *w = NULL;
	bool warm = false;
	pthread_mutex_lock(&p->lock);
	uint64_t bd = f->backend_data;
	if (bd & BD_INWORKER) {
		struct pp_worker *x = &p->w[(bd >> 8) & 0xffffffffu];
		const struct pp_entry *e = &x->ent[bd & 0xff];
		if (e->f == f) {
			w = x;
			/* Spin only for the worker's next reply, and only while
			 * it streams (replied within spin_us: it spins for its
			 * requests, so it runs ours now): a spin that does not
			 * catch the reply takes a CPU from the workers. */
			warm = e->seq == w->done_seq && w->quick && p->spin_ns > 0 &&
			       px__now_ns() - w->last_reply_ns < p->spin_ns;
		}
	} else if (!p->broken) {
		/* Still in the central queue: it goes to a worker as replies
		 * free room, so watch a worker that has tasks out (and is
		 * not watched yet); its replies refill the windows. */
		for (int i = 0; i < p->nw && !w; i++) {
			struct pp_worker *x = &p->w[i];
			if ((x->life == L_LIVE || x->life == L_DRAINING) &&
			    w_inflight(x) &&
			    !atomic_load_explicit(&x->tok, memory_order_relaxed))
				w = x;
		}
	}
	pthread_mutex_unlock(&p->lock);
	if (!w || atomic_load_explicit(&w->tok_wanted, memory_order_relaxed) ||
	    !px__pp_tok_try(w))
		return 0;
	struct pp_wshared *sh = w->sh;
	/* Relaxed: a worker that misses it only rings the doorbell in vain. */
	atomic_store_explicit(&sh->helper, HELP_SPIN, memory_order_relaxed);
	/* On the worker's CPU a spin only keeps it off (shared.h). */
	int cpu = sched_getcpu();
	atomic_store_explicit(&sh->hcpu, cpu, memory_order_relaxed);
	if (cpu >= 0 && cpu == atomic_load_explicit(&sh->wcpu, memory_order_relaxed))
		warm = false;
	uint32_t seen = atomic_load_explicit(&p->completions, memory_order_relaxed);
	struct pp_resp rs[PP_BURST];
	int n = 0, ret = 1;
	int64_t spin_until = warm ? px__now_ns() + HELP_SPIN_NS : 0;
	for (bool slept = false;;) {
		n = px_ring_try_pop_burst(sh->resp, rs, PP_BURST);
		if (n > 0)
			break;
		n = 0;
		if (px_future_is_done(f) || px__deadline_passed(deadline))
			break;
		if (atomic_load_explicit(&w->tok_wanted, memory_order_relaxed)) {
			ret = 0; /* let the waiter sleep on its future */
			break;
		}
		/* After a sleep with nothing on the ring: a future completed
		 * elsewhere (px_wait looks at its others), or time to look at
		 * f again (it may have moved, requeued after a death). */
		if (slept)
			break;
		if (spin_until) {
			for (int k = 0; k < 32; k++)
				px__cpu_relax();
			if (px__now_ns() < spin_until)
				continue;
			spin_until = 0;
		}
		int64_t left = px__deadline_left(deadline);
		helper_sleep_on(p, w, f, seen,
				left < 0 || left > HELP_NAP_NS ? HELP_NAP_NS : left);
		slept = true;
	}
	watch_finish(p, w, rs, n);
	return ret;
}
