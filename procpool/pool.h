/*
 * procpool/pool.h - the process pool's parent-side structures: what the
 * submitting threads (submit.c), the collector thread (collector.c) and
 * the pool's lifecycle (pool.c) share. Worker processes never touch these;
 * what they share with the parent is in shared.h. Private: never installed.
 *
 * The parent keeps a central FIFO of futures and hands them to workers in
 * windows of up to PP_WINDOW tasks (dispatch.h). A future becomes RUNNING
 * when it is handed to a worker (as in Python's ProcessPoolExecutor, whose
 * call queue marks items running): from then on a plain cancel fails, and
 * PX_CANCEL_RUNNING either withdraws it before the worker picks it or kills
 * and replaces the worker (submit.c, px__pp_cancel).
 *
 * Lock order: pool->lock, then the arena's lock (px__arena_*) or the
 * registry lock (pool.c); the arena lock and f->lock (inside px__future_*)
 * are leaves. No future is completed (so no done callback runs) while
 * pool->lock is held, because a callback may submit to this pool or cancel
 * one of its futures.
 */
#ifndef PX_PROCPOOL_POOL_H
#define PX_PROCPOOL_POOL_H

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "arena.h"
#include "executor_internal.h"
#include "px_futex.h"
#include "shared.h"
#include "trace.h"

#define PP_PARK_MAX_NS (250 * PX_MSEC) /* the collector's longest nap */
#define PP_STREAM_NS (200 * 1000)      /* see pick_worker() in dispatch.h */
/* A submitter that handed a task to a worker waking on its own CPU yields
 * it the CPU only if the worker's last task took less than this from
 * hand-over to retirement: behind a long task the yield would hold
 * px_executor_submit() for a scheduler slice (milliseconds on one CPU). */
#define PP_YIELD_TURN_NS (100 * 1000)

/* Parent-side view of a slot. L_DRAINING: shrunk by px_executor_resize,
 * its request ring closed, running out what it holds; L_IDLE: free for a
 * later grow. */
enum { L_LIVE = 0, L_GONE, L_RETIRED, L_DRAINING, L_IDLE };

/* Priority levels of the central queue, highest first (executor.h). */
enum { PL_HIGH = 0, PL_NORMAL = 1, PL_LOW = 2, PL_LEVELS = 3 };
#define PL_FAIR 8 /* every 8th take starts from the bottom, see q_level() */

/* Why the parent is killing a worker's task (pp_worker.kill_reason). */
enum { K_NONE = 0, K_TIMEOUT, K_CANCEL };

/* f->backend_data: bit 63 started (handed to a worker at least once), bit 62
 * in a worker's window now; worker id in bits 8-39, window index below. */
#define BD_STARTED (UINT64_C(1) << 63)
#define BD_INWORKER (UINT64_C(1) << 62)
#define BD_DROP (UINT64_C(1) << 61) /* completed while central: drop it */
/* A PX_CANCEL_RUNNING was granted while the task ran (its record went to
 * CANCELREQ or KILLING for the cancel): the future ends cancelled however
 * the race with the task's end goes, so a later cancel succeeds too, even
 * once the reply is retired or the record is DONE. Set under the lock. */
#define BD_CANCEL_ASKED (UINT64_C(1) << 58)
/* The task's priority level (PL_*), kept through dispatch and requeue. */
#define BD_LEVEL_SHIFT 59
#define BD_LEVEL_MASK (UINT64_C(3) << BD_LEVEL_SHIFT)
#define BD_LEVEL(bd) ((int)(((bd) & BD_LEVEL_MASK) >> BD_LEVEL_SHIFT))

/* One task in a worker's window, at index seq % PP_WINDOW. */
struct pp_entry {
	px_future *f;
	void *argmem;      /* arena block holding the argument, or NULL */
	uint64_t seq;
	int64_t timeout_ns;
	int64_t sent_ns;   /* when it was handed to the worker */
	bool cancelled;    /* withdrawn by a cancel; the canceller completed it */
};

struct pp_worker {
	struct pp_wshared *sh;
	int id;
	int life;          /* L_* */
	uint64_t gen;
	pid_t pid;
	uint64_t next_seq;  /* next to hand out in this generation */
	uint64_t done_seq;  /* every seq below has been retired */
	uint64_t dispatched; /* this generation, for recycling */
	uint64_t last_used;
	int64_t last_reply_ns;
	/* From hand-over to retirement of the last task retired, 0: none
	 * yet (see PP_YIELD_TURN_NS). */
	int64_t last_turn_ns;
	bool quick;         /* its last replies came close together */
	int kill_reason;    /* K_*, for kill_seq */
	uint64_t kill_seq;
	int64_t grace_dl;   /* a cooperative cancel's kill deadline; 0: none */
	bool back;          /* L_DRAINING, wanted back by a grow: forked again
			       when it exits */
	/*
	 * The reply ring's consumer token (reply.c): the ring is SPSC, so only
	 * its holder pops from it, and it holds the token from the pop until
	 * the replies are retired under the lock. The collector and waiting
	 * threads (px__pp_wait_help) take it with a try; the collector takes
	 * it for good (tok_wanted, then wakes a sleeping watcher until it lets
	 * go) before it empties a dead worker's window or resets its slot.
	 * Lock order: tok, then pool->lock.
	 */
	_Atomic uint32_t tok;
	_Atomic uint32_t tok_wanted;
	struct pp_entry ent[PP_WINDOW];
};

struct pp_pool {
	struct px_executor ex;
	pthread_mutex_t lock;
	pthread_cond_t space;    /* room in the central queue */
	pthread_cond_t state_cv; /* startup finished, shutdown finished */
	int space_waiters;

	/* Central FIFOs, one per priority level, of futures not in any
	 * worker's window; qcount counts all levels. */
	px_future *qh[PL_LEVELS], *qt[PL_LEVELS];
	uint32_t qcount, qcap;
	bool prio_used;     /* a HIGH or LOW task was ever queued */
	unsigned takes;     /* tasks taken off the central queue (PL_FAIR) */
	px_future *failq; /* to fail with -ENOMEM from the collector */
	atomic_bool has_failq;

	struct pp_worker *w; /* nwcap slots */
	/* Slots in use: 0..nw-1 (grows with px_executor_resize). Written
	 * under the lock; the collector also reads it without. */
	_Atomic int nw;
	int nwcap;          /* slots laid out in the mapping */
	int live;           /* slots with a process: L_LIVE or L_DRAINING */
	_Atomic uint32_t grace_pending; /* workers with grace_dl set: a hint */
	int64_t grace_ns;   /* cancel_grace_ms */
	uint64_t tick;
	_Atomic uint64_t timed_inflight; /* written under lock, read as a hint */
	/* Bumped (under the lock) by every dispatch of a timed task, before
	 * its px__pp_bell_ring(): the collector's park() compares it with
	 * timed_seen, the value before its last check_timeouts(), after its
	 * Dekker fence, so a task dispatched between the two is watched at
	 * once rather than after a PP_PARK_MAX_NS nap. */
	_Atomic uint32_t timed_gen;
	uint32_t timed_seen; /* the collector's */
	_Atomic uint32_t attention; /* shutting, broken or stop is set */
	uint64_t arena_args; /* argument blocks held by windows */
	uint64_t respawns;
	uint64_t max_tasks;
	int64_t spin_ns;

	bool starting, shutting, closing, finished, broken, stop;
	bool free_on_exit; /* destroyed from a done callback: see pp_destroy() */
	int init_err;
	bool joined;

	void *map;
	size_t map_len;
	struct pp_hdr *hdr;
	struct pp_wconf wconf; /* what each worker is forked with */
	struct px__arena arena;
	size_t big_len;
	uint64_t busy_dead; /* busy_ns of past generations (under lock) */
	pid_t fs_pid;
	int sock;
	pthread_t collector;
	bool collector_started;
	uint32_t fs_seen;

	struct px__counts ccounts; /* written by the collector only */
	struct px__counts xcounts; /* other threads, atomic adds */
	/* Waiting threads completing replies they retired (px__pp_wait_help),
	 * raised under the lock as they retire them: the collector does not
	 * leave (nor free the pool) while one is at it. */
	_Atomic int cb_helpers;
	/* Bumped after each batch of futures completed (or failed) by the
	 * collector, a waiter or a canceller; a watcher about to sleep looks
	 * at it (see px__pp_kick_helpers). */
	_Atomic uint32_t completions;
};

/* Counts a task completed by a thread other than the collector. */
static inline void xcount(struct pp_pool *p, int err)
{
	_Atomic uint64_t *k = err == 0 ? &p->xcounts.completed
			      : err == -ECANCELED ? &p->xcounts.cancelled
						  : &p->xcounts.failed;
	atomic_fetch_add_explicit(k, 1, memory_order_relaxed);
}

/*
 * Task timelines (lib/trace.h): one event per task, from whichever thread
 * settles it. Off (p->ex.trace NULL, fixed before the first submit), each
 * costs one predictable branch.
 */
static inline void pp_trace(struct pp_pool *p, const px_future *f, int worker,
			    pid_t pid, int64_t start_ns, int64_t end_ns, int err,
			    unsigned flags)
{
	if (__builtin_expect(p->ex.trace != NULL, 0))
		px__trace_task(p->ex.trace, f->trace_submit_ns, f->trace_task,
			       worker, (int)pid, start_ns, end_ns, err, flags);
}

/* A task that never ran (cancelled or failed before a worker started it). */
static inline void pp_trace_not_run(struct pp_pool *p, const px_future *f,
				    int err)
{
	pp_trace(p, f, -1, 0, 0, 0, err, PX__TRACE_NOT_RUN);
}

/* Wakes the collector whether or not it sleeps (shutdown, deferred
 * failures): the bump alone makes its next park return at once. */
static inline void ring_bell_always(struct pp_pool *p)
{
	atomic_fetch_add_explicit(&p->hdr->bell, 1, memory_order_release);
	px__futex_wake_shared(&p->hdr->bell, 1);
}

/* The central queue. Lock held. */
static inline void q_push_back(struct pp_pool *p, px_future *f, int lev)
{
	f->qnext = NULL;
	if (p->qt[lev])
		p->qt[lev]->qnext = f;
	else
		p->qh[lev] = f;
	p->qt[lev] = f;
	p->qcount++;
}

static inline px_future *q_pop(struct pp_pool *p, int lev)
{
	px_future *f = p->qh[lev];
	p->qh[lev] = f->qnext;
	if (!p->qh[lev])
		p->qt[lev] = NULL;
	f->qnext = NULL;
	p->qcount--;
	return f;
}

/*
 * The level the next central task comes from, or -1 when all are empty:
 * the highest non-empty one, except that every PL_FAIR-th take looks from
 * the bottom (alternately low first and normal first), so that no level
 * waits forever. Until priorities are used, the normal level alone. Lock
 * held.
 */
static inline int q_level(const struct pp_pool *p)
{
	if (!p->prio_used)
		return p->qh[PL_NORMAL] ? PL_NORMAL : -1;
	static const signed char order[3][PL_LEVELS] = {
		{ PL_HIGH, PL_NORMAL, PL_LOW },
		{ PL_LOW, PL_NORMAL, PL_HIGH },
		{ PL_NORMAL, PL_LOW, PL_HIGH },
	};
	int o = 0;
	if (p->takes % PL_FAIR == PL_FAIR - 1)
		o = 1 + (int)((p->takes / PL_FAIR) % 2);
	for (int i = 0; i < PL_LEVELS; i++)
		if (p->qh[order[o][i]])
			return order[o][i];
	return -1;
}

/* Whether w counts as one of the pool's workers (stats, resize): live, or
 * draining but wanted back. Lock held. */
static inline bool w_counted(const struct pp_worker *w)
{
	return w->life == L_LIVE || (w->life == L_DRAINING && w->back);
}

/* Tasks in w's window (handed out, not yet retired). Lock held. */
static inline uint64_t w_inflight(const struct pp_worker *w)
{
	return w->next_seq - w->done_seq;
}

/* How many tasks w's window may hold: PP_WINDOW, or fewer when w is about
 * to be recycled after max_tasks. Lock held. */
static inline uint64_t w_cap(const struct pp_pool *p, const struct pp_worker *w)
{
	uint64_t cap = PP_WINDOW;
	if (p->max_tasks) {
		uint64_t left = p->max_tasks - w->dispatched;
		if (left < cap)
			cap = left;
	}
	return cap;
}

/*
 * Retires window entry e, however its task ended (a reply, the worker's
 * death, the pool breaking): frees its argument's arena block, stops
 * counting it among the timed tasks and empties the entry. Returns its
 * future, whose reference now belongs to the caller. Lock held.
 */
static inline px_future *entry_retire(struct pp_pool *p, struct pp_entry *e)
{
	px_future *f = e->f;
	if (e->argmem) {
		px__arena_free(&p->arena, e->argmem);
		p->arena_args--;
	}
	if (e->timeout_ns > 0)
		atomic_fetch_sub_explicit(&p->timed_inflight, 1, memory_order_relaxed);
	e->f = NULL;
	return f;
}

/* reply.c: replies, for the collector and waiting threads -------------- */

#define PP_BURST 32 /* replies popped at once */

/* A retired reply, completed outside the lock. */
struct pp_done {
	px_future *f;      /* NULL: stale (its entry was failed meanwhile) */
	struct pp_resp r;
	bool release_only; /* withdrawn: the canceller completed it */
	pid_t pid;               /* tracing: the worker, and when it ran */
	int64_t start_ns, end_ns; /* the task (from its record) */
};

/* Takes w's reply-ring token if free (and nobody wants it). */
bool px__pp_tok_try(struct pp_worker *w);

/* The collector: takes w's token, waking a waiter asleep watching the
 * ring until it lets go. */
void px__pp_tok_take(struct pp_worker *w);

/* Releases w's token; with bell, rings the collector's doorbell for
 * replies left on the ring (see reply.c). */
void px__pp_tok_put(struct pp_pool *p, struct pp_worker *w, bool bell);

/* The collector: drains w's reply ring (token held), completing the
 * futures. Returns how many replies it retired. */
int px__pp_drain_held(struct pp_pool *p, struct pp_worker *w);

/* The collector: as px__pp_drain_held() if it gets the token, else 0. */
int px__pp_drain(struct pp_pool *p, struct pp_worker *w);

/* After completing futures: wakes the waiting threads asleep on reply
 * rings other than except's (NULL: all), since one of them may wait for
 * one of those futures among others (px_wait). */
void px__pp_kick_helpers(struct pp_pool *p, const struct pp_worker *except);

/*
 * A submitter handing a task to idle worker w (submit.c) claims w's reply
 * ring as a waiting thread would, before the request is pushed: takes the
 * token (a try, so allowed under the lock) and marks the ring watched, so
 * that a reply pushed while the submitter is still in the wake-up goes to
 * no doorbell (see px__pp_claim_finish). False when the token is taken or
 * wanted, or on the collector. Lock held.
 */
bool px__pp_claim(struct pp_pool *p, struct pp_worker *w);

/* Ends px__pp_claim(), after the wake-up, lock not held: takes and
 * completes f's reply if it came meanwhile, then lets go of the ring as a
 * waiting thread does (ringing the doorbell for a reply that comes just
 * then). may_yield: the wake-up woke the worker from its sleep and its
 * tasks turn around quickly (PP_YIELD_TURN_NS): if it waits for this CPU,
 * yield it the CPU once before looking. */
void px__pp_claim_finish(struct pp_pool *p, struct pp_worker *w, bool may_yield);

/* The backend's wait_help (lib/executor_internal.h), see reply.c. */
int px__pp_wait_help(px_executor *ex, px_future *f, int64_t deadline);

/* True on a thread completing p's replies inside wait_help, where done
 * callbacks may run (and so shut the pool down or destroy it). */
bool px__pp_on_helper(const struct pp_pool *p);

/* On such a thread: gives back its pins on p's executor (ex->helping),
 * which px_executor_destroy() waits for; the frames take them again as
 * they leave. */
void px__pp_helper_unpin(struct pp_pool *p);

/* submit.c: the backend's submit and the cancel hook it installs. */
int px__pp_submit(px_executor *ex, px_future *f, unsigned flags,
		  int64_t timeout_ns);
int px__pp_cancel(px_future *f, void *arg);

/* collector.c: the collector thread's body (arg: the pool). */
void *px__pp_collector_main(void *arg);

/* collector.c: true on p's collector thread, where done callbacks run. */
bool px__pp_on_collector(const struct pp_pool *p);

/* pool.c: sends op to the fork server, retrying on EINTR. */
void px__pp_fs_send(struct pp_pool *p, uint32_t op, int slot, uint64_t gen);

/* pool.c: reaps the fork server once it has exited; see there. */
void px__pp_server_reap(struct pp_pool *p);

/* pool.c: resets a dead worker's shared slot for its next generation,
 * adding its busy time to *busy_dead. Lock held. */
void px__pp_slot_reset(struct pp_worker *w, uint64_t *busy_dead);

/* pool.c: frees the pool and everything it owns (the collector and the
 * fork server are gone). */
void px__pp_free(struct pp_pool *p);

#endif /* PX_PROCPOOL_POOL_H */
