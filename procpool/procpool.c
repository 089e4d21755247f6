/*
 * procpool/procpool.c - the "process" backend: a pool of forked worker
 * processes fed through per-worker single-producer/single-consumer rings in
 * anonymous shared memory. See procpool/README.md for the design; the short
 * version:
 *
 *  - One MAP_SHARED|MAP_ANONYMOUS mapping, made at creation before anything
 *    is forked, holds for each worker slot a request ring (parent -> worker),
 *    a response ring (worker -> parent), a table of task records and an area
 *    for large results and messages, plus the arena behind
 *    px_executor_alloc(). Same address in every process (fork keeps it).
 *  - A fork server (forkserver.c), forked at creation, forks every worker,
 *    first ones and replacements, and reaps them, reporting deaths over a
 *    control socket.
 *  - The parent keeps a central FIFO of futures and hands them to workers in
 *    windows of up to PP_WINDOW tasks. A future becomes RUNNING when it is
 *    handed to a worker (as in Python's ProcessPoolExecutor, whose call
 *    queue marks items running): from then on a plain cancel fails, and
 *    PX_CANCEL_RUNNING either withdraws it before the worker picks it or
 *    kills and replaces the worker.
 *  - A collector thread in the parent drains every response ring, completes
 *    futures (done callbacks run there), refills the windows, watches task
 *    timeouts and handles deaths. It spins spin_us after work, then parks on
 *    a shared futex "doorbell" that workers and the fork server ring only
 *    when it sleeps.
 *
 * Task records (one per in-flight task, indexed by seq % PP_WINDOW in the
 * worker's table) carry a state word, seq << 3 | state, that decides races
 * between the worker and the parent with one CAS each:
 *   worker:  QUEUED -> RUNNING (start), RUNNING -> DONE (finish);
 *   parent:  QUEUED -> CANCELLED (withdraw: the worker skips it),
 *            RUNNING -> KILLING (timeout or cancel: the worker is killed; if
 *            it finishes first its RUNNING -> DONE fails and it waits for the
 *            kill without reporting).
 * When a worker dies, its records tell what happened to each task it held:
 * RUNNING/KILLING/DONE-without-response is the one it died in (failed with
 * PX_EWORKERDIED, -ETIMEDOUT or cancelled), QUEUED ones never started and go
 * back to the front of the central queue, so nothing is lost and nothing runs
 * twice.
 *
 * Memory-order pairings:
 *  - rings: see ipc/ring.c (a push's release pairs with the pop's acquire),
 *    which also publishes the record word and big area written before it.
 *  - record word: the worker's acq_rel CAS to RUNNING (after storing
 *    start_ns) pairs with the collector's acquire load before it reads
 *    start_ns; the parent's CASes are acq_rel against the worker's.
 *  - doorbell: Dekker pair of the ringer's seq_cst fence (after publishing)
 *    and the collector's seq_cst fence (after setting bell_sleeping), see
 *    px__pp_bell_ring().
 *  - big area: the collector's release store of big_busy = 0 (after copying
 *    out) pairs with the worker's acquire load before it writes the area
 *    again; waiters use the same Dekker shape on big_waiters.
 *  - worker state (READY, INITFAIL, EXITING): release store by the worker,
 *    acquire load by the collector.
 *
 * Lock order: pool->lock, then the arena's lock (px__arena_*) or reg_lock;
 * the arena lock and f->lock (inside px__future_*) are leaves. No future is
 * completed (so no done callback runs) while pool->lock is held, because a
 * callback may submit to this pool or cancel one of its futures.
 */
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <parex/ring.h>

#include "executor_internal.h"
#include "procpool_internal.h"

#define PP_WINDOW 64        /* tasks in flight per worker (ring capacity) */
#define PP_REQ_SLOT 128
#define PP_REQ_INLINE 80    /* argument bytes carried in the request slot */
#define PP_RESP_SLOT 64
#define PP_RESP_INLINE 32   /* result bytes carried in the response slot */
#define PP_MSG_MAX 512
#define PP_NBIG 4           /* large-reply areas per worker, used in turn */
#define PP_PARK_MAX_NS (250 * PX_MSEC) /* the collector's longest nap */
#define PP_STREAM_NS (200 * 1000)      /* see pick_worker() */

/* Record states, low 3 bits of the record word. */
enum { R_FREE = 0, R_QUEUED, R_RUNNING, R_DONE, R_CANCELLED, R_KILLING };

/* Worker lifecycle, written by the worker into its shared slot. */
enum { WS_NONE = 0, WS_STARTING, WS_READY, WS_INITFAIL, WS_EXITING };

/* Parent-side view of a slot. */
enum { L_LIVE = 0, L_GONE, L_RETIRED };

enum { K_NONE = 0, K_TIMEOUT, K_CANCEL };

/* Response flags; bits 8-15 name the large-reply area used. */
enum { RF_SKIPPED = 1, RF_BIG = 2, RF_MSG = 4 };
#define RF_AREA_SHIFT 8

/* Request flags. */
enum { QF_TIMED = 1 };

/* f->backend_data: bit 63 started (handed to a worker at least once), bit 62
 * in a worker's window now; worker id in bits 8-39, window index below. */
#define BD_STARTED (UINT64_C(1) << 63)
#define BD_INWORKER (UINT64_C(1) << 62)
#define BD_DROP (UINT64_C(1) << 61) /* completed while central: drop it */

/* One cache line each: the worker CASes its current record while the parent
 * fills the next ones. */
struct pp_rec {
	_Atomic uint64_t word;    /* seq << 3 | R_* */
	_Atomic int64_t start_ns; /* CLOCK_MONOTONIC, set by the worker for
				     timed tasks */
} __attribute__((aligned(64)));

struct pp_req {
	uint64_t seq;
	px_task_fn fn;
	const void *arg;  /* in the arena, or NULL: the bytes are in inl */
	uint32_t arg_len;
	uint32_t flags;   /* QF_* */
	uint32_t pad[4];
	alignas(16) unsigned char inl[PP_REQ_INLINE];
};
_Static_assert(sizeof(struct pp_req) == PP_REQ_SLOT, "request slot size");

struct pp_resp {
	uint64_t seq;
	uint64_t pad0;
	int32_t err;
	uint32_t len;
	uint32_t flags;
	uint32_t pad;
	alignas(16) unsigned char inl[PP_RESP_INLINE];
};
_Static_assert(sizeof(struct pp_resp) == PP_RESP_SLOT, "response slot size");

/* Per slot, in shared memory. */
struct pp_wshared {
	alignas(64) _Atomic uint32_t state; /* WS_* */
	int32_t init_err;
	/* Large-reply area i holds a reply the collector has not copied out. */
	alignas(64) _Atomic uint32_t big_busy[PP_NBIG];
	_Atomic uint32_t big_waiters;
	_Atomic uint64_t busy_ns; /* time spent running tasks, this generation */
	alignas(64) struct pp_rec rec[PP_WINDOW];
	px_ring *req, *resp;
	/* PP_NBIG areas of big_len bytes: max_result bytes of result, then
	 * PP_MSG_MAX for a message. */
	unsigned char *big;
};

/* The doorbell, in shared memory. */
struct pp_hdr {
	alignas(64) _Atomic uint32_t bell;
	_Atomic uint32_t bell_sleeping;
	_Atomic uint32_t fs_events;
};

struct pp_entry {
	px_future *f;
	void *argmem;      /* arena block holding the argument, or NULL */
	uint64_t seq;
	int64_t timeout_ns;
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
	bool quick;         /* its last replies came close together */
	int kill_reason;    /* K_*, for kill_seq */
	uint64_t kill_seq;
	struct pp_entry ent[PP_WINDOW];
};

struct pp_pool {
	struct px_executor ex;
	pthread_mutex_t lock;
	pthread_cond_t space;    /* room in the central queue */
	pthread_cond_t state_cv; /* startup finished, shutdown finished */
	int space_waiters;

	/* Central FIFO of futures not in any worker's window. */
	px_future *qhead, *qtail;
	uint32_t qcount, qcap;
	px_future *failq; /* to fail with -ENOMEM from the collector */
	atomic_bool has_failq;

	struct pp_worker *w;
	int nw;
	int live;           /* slots with life == L_LIVE */
	uint64_t tick;
	_Atomic uint64_t timed_inflight; /* written under lock, read as a hint */
	_Atomic uint32_t attention; /* shutting, broken or stop is set */
	uint64_t arena_args; /* argument blocks held by windows */
	uint64_t respawns;
	uint64_t max_tasks;
	int64_t spin_ns;

	bool starting, shutting, closing, finished, broken, stop;
	bool free_on_exit; /* destroyed from a done callback: see pp_destroy */
	int init_err;
	bool joined;

	void *map;
	size_t map_len;
	struct pp_hdr *hdr;
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
};

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

static inline uint64_t rword(uint64_t seq, unsigned st)
{
	return seq << 3 | st;
}

static void xcount(struct pp_pool *p, int err)
{
	_Atomic uint64_t *k = err == 0 ? &p->xcounts.completed
			      : err == -ECANCELED ? &p->xcounts.cancelled
						  : &p->xcounts.failed;
	atomic_fetch_add_explicit(k, 1, memory_order_relaxed);
}

static void ring_bell_always(struct pp_pool *p)
{
	atomic_fetch_add_explicit(&p->hdr->bell, 1, memory_order_release);
	px__shfutex_wake(&p->hdr->bell, 1);
}

/* Other pools' control sockets, closed by each new fork server. --------- */

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static int *reg_fds;
static int reg_n, reg_cap;

static void reg_add(int fd)
{
	if (reg_n == reg_cap) {
		int nc = reg_cap ? reg_cap * 2 : 8;
		int *n = realloc(reg_fds, (size_t)nc * sizeof(*n));
		if (!n)
			return; /* only hides a death from one server sooner */
		reg_fds = n;
		reg_cap = nc;
	}
	reg_fds[reg_n++] = fd;
}

static void reg_del(int fd)
{
	pthread_mutex_lock(&reg_lock);
	for (int i = 0; i < reg_n; i++)
		if (reg_fds[i] == fd) {
			reg_fds[i] = reg_fds[--reg_n];
			break;
		}
	if (!reg_n) {
		free(reg_fds);
		reg_fds = NULL;
		reg_cap = 0;
	}
	pthread_mutex_unlock(&reg_lock);
}

/* The worker side ----------------------------------------------------------- */

struct wctx {
	struct pp_wshared *sh;
	uint32_t max_result;
	size_t big_len;
	struct pp_resp resp;
	unsigned big_next; /* the area the next large reply goes to */
	bool big_waited;
};

static unsigned char *big_area(struct wctx *c)
{
	return c->sh->big + (size_t)c->big_next * c->big_len;
}

/* Waits until the collector has copied out the previous large reply. */
static void big_wait(struct wctx *c)
{
	if (c->big_waited)
		return;
	struct pp_wshared *sh = c->sh;
	_Atomic uint32_t *busy = &sh->big_busy[c->big_next];
	/* Acquire: pairs with the collector's release store of 0. */
	while (atomic_load_explicit(busy, memory_order_acquire)) {
		/* seq_cst increment, then seq_cst re-load: Dekker pair with the
		 * collector's store of 0 and fence before it reads big_waiters. */
		atomic_fetch_add(&sh->big_waiters, 1);
		if (atomic_load(busy))
			px__shfutex_wait(busy, 1, -1);
		atomic_fetch_sub(&sh->big_waiters, 1);
	}
	c->big_waited = true;
}

static int w_set_result(px_task *t, const void *data, size_t len)
{
	struct wctx *c = t->backend;
	if (len <= PP_RESP_INLINE) {
		if (len)
			memcpy(c->resp.inl, data, len);
		c->resp.flags &= ~(uint32_t)RF_BIG;
	} else {
		big_wait(c);
		memmove(big_area(c), data, len);
		c->resp.flags |= RF_BIG;
	}
	c->resp.len = (uint32_t)len;
	return 0;
}

/* Storage for a result written in place (map's chunks): the reply slot or
 * this task's large-reply area, exactly where w_set_result would copy it. */
static void *w_result_buffer(px_task *t, size_t len)
{
	struct wctx *c = t->backend;
	if (len > c->max_result)
		return NULL;
	c->resp.len = (uint32_t)len;
	if (len <= PP_RESP_INLINE) {
		c->resp.flags &= ~(uint32_t)RF_BIG;
		return c->resp.inl;
	}
	big_wait(c);
	c->resp.flags |= RF_BIG;
	return big_area(c);
}

static void w_set_message(px_task *t, const char *msg)
{
	struct wctx *c = t->backend;
	if (!msg) {
		c->resp.flags &= ~(uint32_t)RF_MSG;
		return;
	}
	big_wait(c);
	snprintf((char *)big_area(c) + c->max_result, PP_MSG_MAX, "%s", msg);
	c->resp.flags |= RF_MSG;
}

static const struct px__task_ops worker_task_ops = {
	.set_result = w_set_result,
	.set_message = w_set_message,
	.result_buffer = w_result_buffer,
	/* blocking_begin/end: nothing to release in a process of its own. */
};

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * PX_SEC + ts.tv_nsec;
}

static void worker_exit(struct pp_wshared *sh, struct pp_hdr *hdr, int state,
			int code)
{
	/* Release: pairs with the collector's acquire load of the state. */
	atomic_store_explicit(&sh->state, (uint32_t)state, memory_order_release);
	px__pp_bell_ring(&hdr->bell, &hdr->bell_sleeping);
	fflush(NULL); /* the task's own output; never atexit handlers */
	_exit(code);
}

/* One request: start it (unless withdrawn), run it, reply. */
static void worker_run(struct pp_pool *p, int slot, struct wctx *c,
		       struct pp_req *rq)
{
	struct pp_wshared *sh = c->sh;
	struct pp_rec *rec = &sh->rec[rq->seq % PP_WINDOW];
	memset(&c->resp, 0, offsetof(struct pp_resp, inl));
	c->resp.seq = rq->seq;
	c->big_waited = false;
	if (rq->flags & QF_TIMED)
		atomic_store_explicit(&rec->start_ns, mono_ns(), memory_order_relaxed);
	uint64_t expect = rword(rq->seq, R_QUEUED);
	/* acq_rel: publishes start_ns to the collector (acquire of the
	 * word); pairs with the parent's withdraw CAS. */
	if (!atomic_compare_exchange_strong_explicit(&rec->word, &expect,
						     rword(rq->seq, R_RUNNING),
						     memory_order_acq_rel,
						     memory_order_acquire)) {
		c->resp.flags = RF_SKIPPED;
	} else {
		struct px_task t = {
			.ops = &worker_task_ops,
			.worker_id = slot,
			.max_result = p->ex.cfg.max_result,
			.backend = c,
		};
		const void *arg = rq->arg ? rq->arg : rq->inl;
		int err = rq->fn(&t, arg, rq->arg_len);
		if (err > 0)
			err = -err;
		c->resp.err = err;
		if (err)
			c->resp.flags &= ~(uint32_t)RF_BIG;
		expect = rword(rq->seq, R_RUNNING);
		if (!atomic_compare_exchange_strong_explicit(
			    &rec->word, &expect, rword(rq->seq, R_DONE),
			    memory_order_acq_rel, memory_order_acquire)) {
			/* KILLING: the parent gave up on this task and is
			 * killing us; reply nothing, just wait for it. */
			for (;;)
				pause();
		}
	}
	if (c->resp.flags & (RF_BIG | RF_MSG)) {
		atomic_store_explicit(&sh->big_busy[c->big_next], 1, memory_order_relaxed);
		c->resp.flags |= c->big_next << RF_AREA_SHIFT;
		c->big_next = (c->big_next + 1) % PP_NBIG;
	}
	/* The ring never fills: the parent keeps at most PP_WINDOW tasks in
	 * flight per worker, replies included. */
	while (px_ring_push(sh->resp, &c->resp, PX_FOREVER) == -EINTR)
		;
	px__pp_bell_ring(&p->hdr->bell, &p->hdr->bell_sleeping);
}

/* Entered in a fresh worker process (see forkserver.c); never returns. */
static void worker_main(void *ctx, int slot, uint64_t gen)
{
	(void)gen;
	struct pp_pool *p = ctx;
	struct pp_wshared *sh = p->w[slot].sh;
	atomic_store_explicit(&sh->state, WS_STARTING, memory_order_relaxed);
	if (p->ex.cfg.init) {
		int r = p->ex.cfg.init(slot, p->ex.cfg.init_arg);
		if (r) {
			sh->init_err = r < 0 ? r : -ECANCELED;
			worker_exit(sh, p->hdr, WS_INITFAIL, 3);
		}
	}
	atomic_store_explicit(&sh->state, WS_READY, memory_order_release);
	px__pp_bell_ring(&p->hdr->bell, &p->hdr->bell_sleeping);

	struct wctx c = { .sh = sh, .max_result = p->ex.cfg.max_result,
			  .big_len = p->big_len };
	uint64_t ran = 0;
	int64_t streak = -1; /* start of the current run of tasks */
	alignas(16) struct pp_req rq;
	for (;;) {
		int r = px_ring_try_pop(sh->req, &rq);
		if (r == -EAGAIN && streak >= 0) {
			/* Busy time per run of tasks, not per task: two clock
			 * reads per run. Single writer: a relaxed pair. */
			atomic_store_explicit(
				&sh->busy_ns,
				atomic_load_explicit(&sh->busy_ns, memory_order_relaxed) +
					(uint64_t)(mono_ns() - streak),
				memory_order_relaxed);
			streak = -1;
		}
		if (r == -EAGAIN && p->spin_ns > 0) {
			/* Spin a little first: a futex wake costs far more than a
			 * task. Yield now and then for a runnable parent. */
			int64_t until = mono_ns() + p->spin_ns;
			for (unsigned i = 1;; i++) {
				r = px_ring_try_pop(sh->req, &rq);
				if (r != -EAGAIN)
					break;
				cpu_relax();
				if ((i & 63) == 0) {
					if (mono_ns() >= until)
						break;
					if ((i & 255) == 0)
						sched_yield();
				}
			}
		}
		if (r == -EAGAIN)
			r = px_ring_pop(sh->req, &rq, PX_FOREVER);
		if (r == PX_EEOF)
			break;
		if (r)
			continue; /* -EINTR: a kick; look again */
		if (streak < 0)
			streak = mono_ns();
		worker_run(p, slot, &c, &rq);
		/* Nothing more to do: hand the core to whoever waits for this
		 * reply (the collector, the waiting thread) if they share it,
		 * rather than spin on it until the next periodic yield. */
		if (!px_ring_count(sh->req))
			sched_yield();
		if (p->max_tasks && ++ran >= p->max_tasks)
			break; /* recycled: the parent sends no more */
	}
	worker_exit(sh, p->hdr, WS_EXITING, 0);
}

/* The parent side: dispatch ----------------------------------------------- */

static void q_push_back(struct pp_pool *p, px_future *f)
{
	f->qnext = NULL;
	if (p->qtail)
		p->qtail->qnext = f;
	else
		p->qhead = f;
	p->qtail = f;
	p->qcount++;
}

static px_future *q_pop(struct pp_pool *p)
{
	px_future *f = p->qhead;
	p->qhead = f->qnext;
	if (!p->qhead)
		p->qtail = NULL;
	f->qnext = NULL;
	p->qcount--;
	return f;
}

static uint64_t w_inflight(const struct pp_worker *w)
{
	return w->next_seq - w->done_seq;
}

static uint64_t w_cap(const struct pp_pool *p, const struct pp_worker *w)
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
 * The worker that should take the next task, or NULL to keep it central.
 *
 * An idle worker always takes it (the most recently used one, so a trickle
 * of tasks keeps one worker warm and lets the others park). A busy worker
 * takes more, up to a window of PP_WINDOW, only while it is streaming: it
 * replied within the last PP_STREAM_NS, and that reply came with others or
 * within PP_STREAM_NS of the one before (so its tasks are short; after one
 * long task it gets one task at a time, like an idle worker). Tasks handed to a worker are RUNNING (see the top
 * of this file), so this keeps the thread pool's queue semantics where they
 * are visible: behind a long task, new tasks wait in the central queue,
 * PENDING (plainly cancellable, counted by `queue`), and go to whichever
 * worker frees up first; tiny tasks flow in windows, so a worker never
 * waits for the parent between two of them.
 */
static struct pp_worker *pick_worker(struct pp_pool *p, int64_t *now)
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
			*now = mono_ns(); /* read once per pump, and only here */
		if (!w->quick || *now - w->last_reply_ns > PP_STREAM_NS)
			continue;
		if (!least || n < w_inflight(least))
			least = w;
	}
	return idle ? idle : least;
}

/*
 * Hands f to w. Returns 0, or -EAGAIN when the arena has no room for the
 * argument right now (other arguments in flight will free some).
 * Lock held.
 */
static int dispatch(struct pp_pool *p, struct pp_worker *w, px_future *f)
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
	rq.flags = f->timeout_ns > 0 ? QF_TIMED : 0;
	atomic_store_explicit(&w->sh->rec[idx].word, rword(seq, R_QUEUED),
			      memory_order_relaxed); /* published by the push */
	w->ent[idx] = (struct pp_entry){ .f = f, .argmem = argmem, .seq = seq,
					 .timeout_ns = f->timeout_ns };
	f->backend_data = BD_STARTED | BD_INWORKER | (uint64_t)w->id << 8 | idx;
	int r = px_ring_try_push(w->sh->req, &rq);
	(void)r; /* cannot fail: in flight < PP_WINDOW = capacity */
	w->next_seq++;
	w->dispatched++;
	w->last_used = ++p->tick;
	if (f->timeout_ns > 0) {
		atomic_fetch_add_explicit(&p->timed_inflight, 1, memory_order_relaxed);
		/* The collector may be parked without a deadline: let it
		 * start watching this one. */
		px__pp_bell_ring(&p->hdr->bell, &p->hdr->bell_sleeping);
	}
	return 0;
}

/*
 * Moves up to max central tasks into workers' windows as the policy allows.
 * Lock held. The collector moves a bounded batch per hold, so a submitter
 * waiting for the lock gets it within a few microseconds; what it leaves
 * goes out when the replies to this batch come back.
 */
static void pump_n(struct pp_pool *p, unsigned max)
{
	int64_t now = 0;
	while (p->qhead && !p->broken && max--) {
		px_future *f = p->qhead;
		if (f->backend_data & BD_DROP) {
			/* Back from a dead worker, then cancelled with
			 * PX_CANCEL_RUNNING: the canceller completed it. */
			q_pop(p);
			px_future_release(f);
			continue;
		}
		if (f->backend_data & BD_STARTED) {
			/* Back from a dead worker: already RUNNING. */
		} else if (px_future_state_get(f) == PX_FUTURE_CANCELLED) {
			q_pop(p); /* a plain cancel while queued */
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
			q_pop(p);
			f->qnext = p->failq;
			p->failq = f;
			atomic_store_explicit(&p->has_failq, true, memory_order_relaxed);
			ring_bell_always(p);
			continue;
		}
		q_pop(p);
	}
	/* Wake blocked submitters once a quarter of the queue is free, not
	 * at every free slot: one wake then admits a batch. */
	if (p->space_waiters && p->qcount < p->qcap &&
	    p->qcount <= p->qcap - p->qcap / 4)
		pthread_cond_broadcast(&p->space);
}

static void pump(struct pp_pool *p)
{
	pump_n(p, UINT_MAX);
}

/* Submit and cancel ----------------------------------------------------------- */

static int pp_cancel(px_future *f, void *arg);

/* The pool whose collector runs on this thread (done callbacks run there). */
static __thread struct pp_pool *collector_of;

static int pp_submit(px_executor *ex, px_future *f, unsigned flags,
		     int64_t timeout_ns)
{
	struct pp_pool *p = (struct pp_pool *)ex;
	(void)timeout_ns; /* already in f->timeout_ns */
	f->backend_data = 0;
	/* Set before the future can become RUNNING (dispatch), and before the
	 * caller gets it, so any thread that cancels it sees the hook. */
	f->cancel_fn = pp_cancel;
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
		if (collector_of == p)
			break;
		p->space_waiters++;
		pthread_cond_wait(&p->space, &p->lock);
		p->space_waiters--;
	}
	q_push_back(p, f);
	pump(p);
	pthread_mutex_unlock(&p->lock);
	return 0;
}

/*
 * PX_CANCEL_RUNNING on a RUNNING future (px_future_cancel calls it, in the
 * cancelling thread). A task still waiting in a worker's window is withdrawn
 * and completed as cancelled here; a task the worker has started is marked
 * KILLING and its worker killed (through the fork server); the collector
 * completes it as cancelled when the death is reported.
 */
static int pp_cancel(px_future *f, void *arg)
{
	struct pp_pool *p = arg;
	pthread_mutex_lock(&p->lock);
	uint64_t bd = f->backend_data;
	if (!(bd & BD_INWORKER)) {
		/* Back in the central queue after its worker died (or failing
		 * for want of arena room): pump() drops it from now on. */
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
		return 0;
	}
	int r = -EBUSY;
	if (expect == rword(e->seq, R_RUNNING) &&
	    atomic_compare_exchange_strong_explicit(&rec->word, &expect,
						    rword(e->seq, R_KILLING),
						    memory_order_acq_rel,
						    memory_order_acquire)) {
		w->kill_reason = K_CANCEL;
		w->kill_seq = e->seq;
		struct px__fs_msg m = { .op = PX__FS_KILL, .slot = w->id,
					.gen = w->gen };
		send(p->sock, &m, sizeof(m), MSG_NOSIGNAL | MSG_DONTWAIT);
		r = 0;
	} else if (expect == rword(e->seq, R_KILLING)) {
		w->kill_reason = K_CANCEL; /* already dying (timeout): cancelled */
		r = 0;
	}
	pthread_mutex_unlock(&p->lock);
	return r;
}

/* The collector --------------------------------------------------------------- */

struct pp_done {
	px_future *f;
	struct pp_resp r;
	bool release_only;
};

#define BURST 32

/* Retires replies rs[0..n) of w: completes their futures. */
static void process_replies(struct pp_pool *p, struct pp_worker *w,
			    struct pp_resp *rs, int n)
{
	struct pp_done d[BURST];
	pthread_mutex_lock(&p->lock);
	for (int i = 0; i < n; i++) {
		struct pp_entry *e = &w->ent[rs[i].seq % PP_WINDOW];
		d[i].f = e->f;
		d[i].r = rs[i];
		d[i].release_only = e->cancelled;
		if (e->argmem) {
			px__arena_free(&p->arena, e->argmem);
			p->arena_args--;
		}
		if (e->timeout_ns > 0)
			atomic_fetch_sub_explicit(&p->timed_inflight, 1, memory_order_relaxed);
		e->f = NULL;
		w->done_seq++;
	}
	/* Several replies at once, or two close together: short tasks. One
	 * reply long after the last: a long task, or the first after idling;
	 * do not stack a window behind it. */
	int64_t now = mono_ns();
	w->quick = n >= 2 || now - w->last_reply_ns <= PP_STREAM_NS;
	w->last_reply_ns = now;
	pump_n(p, 2 * BURST);
	pthread_mutex_unlock(&p->lock);
	for (int i = 0; i < n; i++) {
		px_future *f = d[i].f;
		struct pp_resp *r = &d[i].r;
		unsigned area = (r->flags >> RF_AREA_SHIFT) % PP_NBIG;
		const unsigned char *big = w->sh->big + (size_t)area * p->big_len;
		if (!d[i].release_only && !(r->flags & RF_SKIPPED)) {
			int err = r->err;
			if (!err) {
				const void *src = r->flags & RF_BIG ? (const void *)big
								    : r->inl;
				/* Into the buffer map() attached to f, if any:
				 * no malloc of a large result per task. */
				void *dst = px__future_result_buffer(f, r->len);
				if (!dst)
					err = -ENOMEM;
				else if (r->len)
					memcpy(dst, src, r->len);
			}
			if (r->flags & RF_MSG)
				px__future_store_message(
					f, (const char *)big + p->ex.cfg.max_result);
			if (!px__future_complete(f, err))
				px__counts_record(&p->ccounts, err);
		}
		if (r->flags & (RF_BIG | RF_MSG)) {
			/* Release: pairs with the worker's acquire in big_wait();
			 * then the Dekker fence before reading big_waiters. */
			_Atomic uint32_t *busy = &w->sh->big_busy[area];
			atomic_store_explicit(busy, 0, memory_order_release);
			atomic_thread_fence(memory_order_seq_cst);
			if (atomic_load_explicit(&w->sh->big_waiters,
						 memory_order_relaxed))
				px__shfutex_wake(busy, 1);
		}
		px_future_release(f);
	}
}

/* Drains w's reply ring. Returns how many replies it retired. */
static int drain_worker(struct pp_pool *p, struct pp_worker *w)
{
	int total = 0;
	struct pp_resp rs[BURST];
	for (;;) {
		int n = px_ring_try_pop_burst(w->sh->resp, rs, BURST);
		if (n <= 0)
			break;
		process_replies(p, w, rs, n);
		total += n;
		if (n < BURST)
			break;
	}
	return total;
}

static void describe_status(char *buf, size_t len, int status)
{
	if (WIFSIGNALED(status)) {
		int sig = WTERMSIG(status);
		const char *d = sigdescr_np(sig);
		snprintf(buf, len, "killed by signal %d (%s)", sig, d ? d : "?");
	} else if (WIFEXITED(status)) {
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
	} else {
		snprintf(buf, len, "ended with wait status %#x", status);
	}
}

struct pp_victim {
	px_future *f;
	int err;
	char msg[200];
};

/* Resets a dead worker's shared slot for its next generation. Lock held. */
static void slot_reset(struct pp_worker *w, uint64_t *busy_dead)
{
	struct pp_wshared *sh = w->sh;
	px_ring_init(sh->req, (size_t)px_ring_memsize(PP_WINDOW, PP_REQ_SLOT, PX_RING_SPSC),
		     PP_WINDOW, PP_REQ_SLOT, PX_RING_SPSC);
	px_ring_set_spin(sh->req, 0);
	px_ring_init(sh->resp, (size_t)px_ring_memsize(PP_WINDOW, PP_RESP_SLOT, PX_RING_SPSC),
		     PP_WINDOW, PP_RESP_SLOT, PX_RING_SPSC);
	px_ring_set_spin(sh->resp, 0);
	for (int i = 0; i < PP_WINDOW; i++) {
		atomic_store_explicit(&sh->rec[i].word, 0, memory_order_relaxed);
		atomic_store_explicit(&sh->rec[i].start_ns, 0, memory_order_relaxed);
	}
	for (int i = 0; i < PP_NBIG; i++)
		atomic_store_explicit(&sh->big_busy[i], 0, memory_order_relaxed);
	atomic_store_explicit(&sh->big_waiters, 0, memory_order_relaxed);
	*busy_dead += atomic_load_explicit(&sh->busy_ns, memory_order_relaxed);
	atomic_store_explicit(&sh->busy_ns, 0, memory_order_relaxed);
	atomic_store_explicit(&sh->state, WS_NONE, memory_order_relaxed);
	sh->init_err = 0;
	w->gen++;
	w->next_seq = w->done_seq = 0;
	w->dispatched = 0;
	w->kill_reason = K_NONE;
	w->pid = 0;
}

static void fs_send(struct pp_pool *p, uint32_t op, int slot, uint64_t gen)
{
	struct px__fs_msg m = { .op = op, .slot = slot, .gen = gen };
	while (send(p->sock, &m, sizeof(m), MSG_NOSIGNAL) < 0 && errno == EINTR)
		;
}

/*
 * Reaps the fork server once it has exited (it was told to, or died). Not
 * with a blocking waitpid(): in a program that ignores SIGCHLD the kernel
 * reaps children itself, and a blocking waitpid() for one of them returns
 * only when *every* child of the process has exited, another pool's fork
 * server included, so destroying one pool would wait for the next.
 */
static void server_reap(struct pp_pool *p)
{
	if (p->fs_pid <= 0)
		return;
	for (long us = 20;; us = us < 1000 ? us * 2 : us) {
		pid_t r = waitpid(p->fs_pid, NULL, WNOHANG);
		if (r == p->fs_pid || (r < 0 && errno != EINTR))
			break; /* reaped, or by the kernel (ECHILD) */
		if (r == 0)
			usleep((useconds_t)us);
	}
	p->fs_pid = 0;
}

/* Fails every task the pool holds (central and windows): the pool is broken.
 * Lock held; victims go to *out (malloc'd array, count in *n). */
static void fail_everything(struct pp_pool *p, const char *why,
			    struct pp_victim **out, size_t *n)
{
	size_t cnt = p->qcount;
	for (int i = 0; i < p->nw; i++)
		cnt += w_inflight(&p->w[i]);
	struct pp_victim *v = calloc(cnt ? cnt : 1, sizeof(*v));
	size_t k = 0;
	for (int i = 0; i < p->nw; i++) {
		struct pp_worker *w = &p->w[i];
		for (uint64_t s = w->done_seq; s < w->next_seq; s++) {
			struct pp_entry *e = &w->ent[s % PP_WINDOW];
			if (e->argmem) {
				px__arena_free(&p->arena, e->argmem);
				p->arena_args--;
			}
			if (e->timeout_ns > 0)
				atomic_fetch_sub_explicit(&p->timed_inflight, 1, memory_order_relaxed);
			if (v) {
				v[k].f = e->f;
				v[k].err = e->cancelled ? 1 : PX_EWORKERDIED;
				snprintf(v[k].msg, sizeof(v[k].msg), "%s", why);
				k++;
			}
			e->f = NULL;
		}
		w->done_seq = w->next_seq;
		if (w->life == L_LIVE) {
			w->life = L_GONE;
			p->live--;
		}
	}
	while (p->qhead) {
		px_future *f = q_pop(p);
		if (v) {
			v[k].f = f;
			v[k].err = PX_EWORKERDIED;
			snprintf(v[k].msg, sizeof(v[k].msg), "%s", why);
			k++;
		}
	}
	p->broken = true;
	atomic_store_explicit(&p->attention, 1, memory_order_relaxed);
	atomic_store(&p->ex.shut, 1);
	pthread_cond_broadcast(&p->space);
	*out = v;
	*n = k;
}

/* Completes victims outside the lock. err 1: just drop the reference. */
static void finish_victims(struct pp_pool *p, struct pp_victim *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		px_future *f = v[i].f;
		if (v[i].err != 1) {
			if (v[i].msg[0])
				px__future_store_message(f, v[i].msg);
			if (!px__future_complete(f, v[i].err))
				px__counts_record(&p->ccounts, v[i].err);
		}
		px_future_release(f);
	}
}

/* A worker process is gone (reaped by the fork server with `status`, or
 * never forked: status -1 with forkerr). */
static void handle_death(struct pp_pool *p, struct pp_worker *w, int status,
			 int forkerr)
{
	drain_worker(p, w); /* what it finished before dying still counts */
	pthread_mutex_lock(&p->lock);
	uint32_t ws = atomic_load_explicit(&w->sh->state, memory_order_acquire);
	struct pp_victim victims[PP_WINDOW];
	size_t nv = 0;
	px_future *requeue = NULL, **rtail = &requeue, *rlast = NULL;
	size_t nre = 0;
	char why[120];
	if (forkerr)
		snprintf(why, sizeof(why), "fork failed: %s", strerror(forkerr));
	else
		describe_status(why, sizeof(why), status);
	for (uint64_t s = w->done_seq; s < w->next_seq; s++) {
		struct pp_entry *e = &w->ent[s % PP_WINDOW];
		px_future *f = e->f;
		uint64_t word = atomic_load_explicit(&w->sh->rec[s % PP_WINDOW].word,
						     memory_order_acquire);
		unsigned st = (unsigned)(word & 7);
		if (e->argmem) {
			px__arena_free(&p->arena, e->argmem);
			p->arena_args--;
		}
		if (e->timeout_ns > 0)
			atomic_fetch_sub_explicit(&p->timed_inflight, 1, memory_order_relaxed);
		e->f = NULL;
		struct pp_victim *v = &victims[nv++];
		v->f = f;
		v->msg[0] = 0;
		if (e->cancelled || st == R_CANCELLED) {
			v->err = 1;
		} else if (st == R_QUEUED || st == R_FREE) {
			/* Never started: back to the front of the queue. */
			nv--;
			f->backend_data = BD_STARTED;
			*rtail = f;
			rtail = &f->qnext;
			rlast = f;
			nre++;
		} else if (st == R_KILLING && w->kill_seq == s &&
			   w->kill_reason == K_TIMEOUT) {
			v->err = -ETIMEDOUT;
			snprintf(v->msg, sizeof(v->msg),
				 "task ran past its timeout of %lld ms; worker %d (pid %d) was killed",
				 (long long)(e->timeout_ns / PX_MSEC), w->id, (int)w->pid);
		} else if (st == R_KILLING && w->kill_seq == s &&
			   w->kill_reason == K_CANCEL) {
			v->err = -ECANCELED;
		} else if (st == R_DONE) {
			v->err = PX_EWORKERDIED;
			snprintf(v->msg, sizeof(v->msg),
				 "worker %d (pid %d) %s after finishing the task, before reporting it",
				 w->id, (int)w->pid, why);
		} else {
			v->err = PX_EWORKERDIED;
			snprintf(v->msg, sizeof(v->msg),
				 "worker %d (pid %d) %s while running the task",
				 w->id, (int)w->pid, why);
		}
	}
	if (requeue) {
		*rtail = p->qhead;
		if (!p->qhead)
			p->qtail = rlast;
		p->qhead = requeue;
		p->qcount += (uint32_t)nre;
	}
	/* Died before it was READY: its initializer failed, crashed or exited
	 * (a kill is only ever sent for a running task, so after READY). A
	 * replacement whose initializer crashes is retired like one whose
	 * initializer returns an error; respawning it would loop forever,
	 * handing it the same queued tasks each time. */
	bool initfail = ws != WS_READY && ws != WS_EXITING;
	int init_err = w->sh->init_err ? w->sh->init_err
		       : forkerr	 ? -forkerr
					 : PX_EWORKERDIED;
	slot_reset(w, &p->busy_dead);
	p->live--;
	w->life = L_GONE;
	struct pp_victim *all = NULL;
	size_t nall = 0;
	if (p->starting && initfail) {
		if (!p->init_err)
			p->init_err = init_err;
		pthread_cond_broadcast(&p->state_cv);
	} else if (initfail || forkerr) {
		w->life = L_RETIRED; /* as executor.h says: retire the slot */
	} else if (!p->closing) {
		w->life = L_LIVE;
		p->live++;
		p->respawns++;
		fs_send(p, PX__FS_SPAWN, w->id, w->gen);
	}
	if (p->live == 0 && !p->closing && !p->starting)
		fail_everything(p, initfail ? "no workers left: the worker initializer failed"
					    : "no workers left",
				&all, &nall);
	pump(p);
	pthread_mutex_unlock(&p->lock);
	finish_victims(p, victims, nv);
	if (all) {
		finish_victims(p, all, nall);
		free(all);
	}
}

/* The fork server died: every worker dies with it (PR_SET_PDEATHSIG). */
static void handle_fs_death(struct pp_pool *p)
{
	struct pp_victim *all = NULL;
	size_t n = 0;
	pthread_mutex_lock(&p->lock);
	p->fs_pid = 0;
	if (p->starting && !p->init_err)
		p->init_err = PX_EWORKERDIED;
	fail_everything(p, "the pool's fork server died", &all, &n);
	p->closing = true;
	pthread_cond_broadcast(&p->state_cv);
	pthread_mutex_unlock(&p->lock);
	if (all) {
		finish_victims(p, all, n);
		free(all);
	}
}

/* Reads the fork server's messages. */
static void handle_fs(struct pp_pool *p)
{
	for (;;) {
		struct px__fs_msg m;
		ssize_t r = recv(p->sock, &m, sizeof(m), MSG_DONTWAIT);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN)
			return;
		if (r <= 0) {
			/* Hung up: the server is gone. Reap it. */
			server_reap(p);
			handle_fs_death(p);
			return;
		}
		if (r != sizeof(m) || m.slot < 0 || m.slot >= p->nw)
			continue;
		struct pp_worker *w = &p->w[m.slot];
		if (m.gen != w->gen)
			continue;
		if (m.op == PX__FS_SPAWNED) {
			pthread_mutex_lock(&p->lock);
			w->pid = m.pid;
			pthread_mutex_unlock(&p->lock);
		} else if (m.op == PX__FS_DIED) {
			handle_death(p, w, m.status, 0);
		} else if (m.op == PX__FS_FORKFAIL) {
			handle_death(p, w, -1, m.status ? m.status : EAGAIN);
		}
	}
}

/* Kills tasks past their timeout; returns the nearest deadline (or
 * INT64_MAX). Only a worker's oldest task can be running. */
static int64_t check_timeouts(struct pp_pool *p)
{
	int64_t next = INT64_MAX;
	if (!atomic_load_explicit(&p->timed_inflight, memory_order_relaxed))
		return next;
	pthread_mutex_lock(&p->lock);
	if (!atomic_load_explicit(&p->timed_inflight, memory_order_relaxed)) {
		pthread_mutex_unlock(&p->lock);
		return next;
	}
	int64_t now = mono_ns();
	for (int i = 0; i < p->nw; i++) {
		struct pp_worker *w = &p->w[i];
		if (w->life != L_LIVE || !w_inflight(w))
			continue;
		uint64_t s = w->done_seq;
		struct pp_entry *e = &w->ent[s % PP_WINDOW];
		if (e->timeout_ns <= 0 || e->cancelled)
			continue;
		struct pp_rec *rec = &w->sh->rec[s % PP_WINDOW];
		/* Acquire: pairs with the worker's start CAS (start_ns). */
		uint64_t word = atomic_load_explicit(&rec->word, memory_order_acquire);
		if (word == rword(s, R_QUEUED)) {
			if (now + e->timeout_ns < next)
				next = now + e->timeout_ns;
			continue;
		}
		if (word != rword(s, R_RUNNING))
			continue;
		int64_t dl = atomic_load_explicit(&rec->start_ns, memory_order_relaxed) +
			     e->timeout_ns;
		if (now < dl) {
			if (dl < next)
				next = dl;
			continue;
		}
		if (atomic_compare_exchange_strong_explicit(
			    &rec->word, &word, rword(s, R_KILLING),
			    memory_order_acq_rel, memory_order_acquire)) {
			w->kill_reason = K_TIMEOUT;
			w->kill_seq = s;
			fs_send(p, PX__FS_KILL, w->id, w->gen);
		}
	}
	pthread_mutex_unlock(&p->lock);
	return next;
}

static bool any_reply(struct pp_pool *p)
{
	for (int i = 0; i < p->nw; i++)
		if (px_ring_count(p->w[i].sh->resp))
			return true;
	return false;
}

/* Startup: are all workers READY? Lock held. */
static void check_ready(struct pp_pool *p)
{
	for (int i = 0; i < p->nw; i++)
		if (atomic_load_explicit(&p->w[i].sh->state, memory_order_acquire) !=
		    WS_READY)
			return;
	p->starting = false;
	pthread_cond_broadcast(&p->state_cv);
}

/* Shutdown progress; returns true when the collector should exit. */
static bool check_shutdown(struct pp_pool *p)
{
	if (!atomic_load_explicit(&p->attention, memory_order_relaxed))
		return false; /* set under the lock, re-read under it below */
	pthread_mutex_lock(&p->lock);
	if (p->stop) {
		pthread_mutex_unlock(&p->lock);
		return true;
	}
	if (!p->shutting && !p->broken) {
		pthread_mutex_unlock(&p->lock);
		return false;
	}
	if (!p->closing) {
		if (p->qcount)
			goto busy;
		for (int i = 0; i < p->nw; i++)
			if (w_inflight(&p->w[i]))
				goto busy;
		/* Nothing left to run: let the workers drain out. */
		p->closing = true;
		for (int i = 0; i < p->nw; i++)
			px_ring_close(p->w[i].sh->req);
	}
	for (int i = 0; i < p->nw; i++)
		if (p->w[i].life == L_LIVE)
			goto busy;
	/* Every worker is reaped: stop the fork server. */
	if (p->fs_pid > 0) {
		fs_send(p, PX__FS_EXIT, 0, 0);
		server_reap(p);
	}
	p->finished = true;
	pthread_cond_broadcast(&p->state_cv);
	pthread_mutex_unlock(&p->lock);
	return true;
busy:
	pthread_mutex_unlock(&p->lock);
	return false;
}

static void fail_deferred(struct pp_pool *p)
{
	pthread_mutex_lock(&p->lock);
	px_future *f = p->failq;
	p->failq = NULL;
	atomic_store_explicit(&p->has_failq, false, memory_order_relaxed);
	pthread_mutex_unlock(&p->lock);
	while (f) {
		px_future *nx = f->qnext;
		px__future_store_message(
			f, "no room for the argument in the shared arena (raise shm_size)");
		if (!px__future_complete(f, -ENOMEM))
			px__counts_record(&p->ccounts, -ENOMEM);
		px_future_release(f);
		f = nx;
	}
}

static void pp_free(struct pp_pool *p);

static void *collector_main(void *arg)
{
	struct pp_pool *p = arg;
	pthread_setname_np(pthread_self(), "px-collector");
	collector_of = p;
	int64_t spin_until = 0;
	for (;;) {
		int got = 0;
		for (int i = 0; i < p->nw; i++)
			got += drain_worker(p, &p->w[i]);
		/* Acquire: pairs with the server's release bump after a send. */
		uint32_t ev = atomic_load_explicit(&p->hdr->fs_events, memory_order_acquire);
		if (ev != p->fs_seen) {
			p->fs_seen = ev;
			handle_fs(p);
			got++;
		}
		if (atomic_load_explicit(&p->has_failq, memory_order_relaxed))
			fail_deferred(p);
		if (p->starting) {
			pthread_mutex_lock(&p->lock);
			check_ready(p);
			pthread_mutex_unlock(&p->lock);
		}
		int64_t next = check_timeouts(p);
		if (check_shutdown(p))
			break;
		int64_t now = mono_ns();
		if (got) {
			spin_until = now + p->spin_ns;
			continue;
		}
		if (now < spin_until) {
			for (int k = 0; k < 64; k++)
				cpu_relax();
			sched_yield();
			continue;
		}
		/* Park on the doorbell. */
		uint32_t v = atomic_load_explicit(&p->hdr->bell, memory_order_acquire);
		atomic_store_explicit(&p->hdr->bell_sleeping, 1, memory_order_relaxed);
		/* Dekker: see px__pp_bell_ring(). */
		atomic_thread_fence(memory_order_seq_cst);
		if (!any_reply(p) &&
		    atomic_load_explicit(&p->hdr->fs_events, memory_order_relaxed) ==
			    p->fs_seen) {
			int64_t t = PP_PARK_MAX_NS;
			if (next != INT64_MAX && next - now < t)
				t = next - now < 0 ? 0 : next - now;
			int r = px__shfutex_wait(&p->hdr->bell, v, t);
			/* A dead server sends nothing and bumps no counter:
			 * look at the socket now and then for its hang-up
			 * (not at waitpid(), which sees nothing where the
			 * program ignores SIGCHLD). */
			if (r == -ETIMEDOUT && p->fs_pid > 0)
				handle_fs(p);
		}
		atomic_store_explicit(&p->hdr->bell_sleeping, 0, memory_order_relaxed);
	}
	pthread_mutex_lock(&p->lock);
	bool free_it = p->free_on_exit;
	pthread_mutex_unlock(&p->lock);
	if (free_it)
		pp_free(p); /* the last one to touch it, see pp_destroy() */
	return NULL;
}

/* Backend ops ---------------------------------------------------------------- */

static void pp_shutdown(px_executor *ex, bool wait, bool cancel_pending)
{
	struct pp_pool *p = (struct pp_pool *)ex;
	px_future *drop = NULL;
	pthread_mutex_lock(&p->lock);
	p->shutting = true;
	atomic_store_explicit(&p->attention, 1, memory_order_relaxed);
	if (cancel_pending) {
		/* Tasks still PENDING in the central queue; those back from a
		 * dead worker are RUNNING and run. */
		px_future **pp = &p->qhead;
		p->qtail = NULL;
		while (*pp) {
			px_future *f = *pp;
			if (!(f->backend_data & BD_STARTED)) {
				*pp = f->qnext;
				f->qnext = drop;
				drop = f;
				p->qcount--;
			} else {
				p->qtail = f;
				pp = &f->qnext;
			}
		}
	}
	pthread_cond_broadcast(&p->space);
	pthread_mutex_unlock(&p->lock);
	while (drop) {
		px_future *nx = drop->qnext;
		px__future_cancel_pending(drop);
		xcount(p, -ECANCELED);
		px_future_release(drop);
		drop = nx;
	}
	ring_bell_always(p);
	if (!wait || !p->collector_started ||
	    pthread_equal(pthread_self(), p->collector))
		return; /* a done callback cannot wait for its own thread */
	pthread_mutex_lock(&p->lock);
	while (!p->finished)
		pthread_cond_wait(&p->state_cv, &p->lock);
	bool join = !p->joined;
	p->joined = true;
	pthread_mutex_unlock(&p->lock);
	if (join)
		pthread_join(p->collector, NULL);
}

static void pp_free(struct pp_pool *p)
{
	if (p->sock >= 0) {
		reg_del(p->sock);
		close(p->sock);
	}
	if (p->map)
		munmap(p->map, p->map_len);
	px__arena_fini(&p->arena);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->space);
	pthread_cond_destroy(&p->state_cv);
	free(p->w);
	free(p);
}

static void pp_destroy(px_executor *ex)
{
	struct pp_pool *p = (struct pp_pool *)ex;
	if (collector_of == p) {
		/* From a done callback, on the collector, which cannot join
		 * itself and still has to see the workers out: it goes
		 * detached and frees the pool when it leaves. The shutdown
		 * has begun (px_executor_destroy shuts down first). */
		pthread_mutex_lock(&p->lock);
		p->free_on_exit = true;
		p->joined = true;
		pthread_mutex_unlock(&p->lock);
		pthread_detach(pthread_self());
		return;
	}
	pthread_mutex_lock(&p->lock);
	bool join = p->collector_started && !p->joined;
	p->joined = true;
	pthread_mutex_unlock(&p->lock);
	if (join)
		pthread_join(p->collector, NULL);
	pp_free(p);
}

static void pp_stats(px_executor *ex, px_executor_stats *out)
{
	struct pp_pool *p = (struct pp_pool *)ex;
	pthread_mutex_lock(&p->lock);
	uint64_t queued = p->qcount, running = 0, workers = 0;
	for (int i = 0; i < p->nw; i++) {
		struct pp_worker *w = &p->w[i];
		if (w->life == L_LIVE)
			workers++;
		uint64_t n = w_inflight(w);
		if (!n)
			continue;
		uint64_t word = atomic_load_explicit(
			&w->sh->rec[w->done_seq % PP_WINDOW].word, memory_order_acquire);
		unsigned st = (unsigned)(word & 7);
		if (st == R_RUNNING || st == R_KILLING || st == R_DONE) {
			running++;
			n--;
		}
		queued += n;
	}
	out->queued = queued;
	out->running = running;
	out->workers = workers;
	out->respawns = p->respawns;
	out->busy_ns += p->busy_dead;
	for (int i = 0; i < p->nw; i++)
		out->busy_ns += atomic_load_explicit(&p->w[i].sh->busy_ns,
						     memory_order_relaxed);
	pthread_mutex_unlock(&p->lock);
	px__counts_add(out, &p->ccounts);
	px__counts_add(out, &p->xcounts);
}

static int pp_alloc(px_executor *ex, size_t size, void **out)
{
	struct pp_pool *p = (struct pp_pool *)ex;
	void *m = px__arena_alloc(&p->arena, size);
	if (!m)
		return -ENOMEM;
	memset(m, 0, size);
	*out = m;
	return 0;
}

static void pp_free_mem(px_executor *ex, void *m)
{
	struct pp_pool *p = (struct pp_pool *)ex;
	if (px__arena_owns(&p->arena, m))
		px__arena_free(&p->arena, m);
}

static size_t align_up(size_t x, size_t a)
{
	return (x + a - 1) & ~(a - 1);
}

/* Stops everything after a failed creation: the fork server kills the
 * workers it has, the collector stops. */
static void pp_abort(struct pp_pool *p)
{
	if (p->collector_started) {
		pthread_mutex_lock(&p->lock);
		p->stop = true;
		atomic_store_explicit(&p->attention, 1, memory_order_relaxed);
		pthread_mutex_unlock(&p->lock);
		ring_bell_always(p);
		pthread_join(p->collector, NULL);
	}
	if (p->fs_pid > 0) {
		fs_send(p, PX__FS_EXIT, 0, 0);
		server_reap(p);
	}
	pp_free(p);
}

static int pp_create(px_executor **out, const struct px__config *cfg)
{
	struct pp_pool *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	px__executor_init(&p->ex, &px__process_backend, cfg);
	p->sock = -1;
	p->nw = p->ex.cfg.workers;
	p->qcap = cfg->queue ? cfg->queue : 1;
	p->max_tasks = cfg->max_tasks_per_worker;
	p->spin_ns = (int64_t)cfg->spin_us * 1000;
	/* Adaptive: submitters and the collector hold it for a few hundred
	 * nanoseconds; spinning briefly beats a futex sleep. */
	pthread_mutexattr_t ma;
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ADAPTIVE_NP);
	pthread_mutex_init(&p->lock, &ma);
	pthread_mutexattr_destroy(&ma);
	pthread_cond_init(&p->space, NULL);
	pthread_cond_init(&p->state_cv, NULL);
	px__arena_init(&p->arena, NULL, 0);
	p->w = calloc((size_t)p->nw, sizeof(*p->w));
	if (!p->w) {
		pp_free(p);
		return -ENOMEM;
	}

	/* Layout of the shared mapping. */
	size_t reqsz = (size_t)px_ring_memsize(PP_WINDOW, PP_REQ_SLOT, PX_RING_SPSC);
	size_t respsz = (size_t)px_ring_memsize(PP_WINDOW, PP_RESP_SLOT, PX_RING_SPSC);
	p->big_len = align_up((size_t)cfg->max_result + PP_MSG_MAX, 64);
	size_t per = align_up(sizeof(struct pp_wshared), 128) + align_up(reqsz, 128) +
		     align_up(respsz, 128) + PP_NBIG * p->big_len;
	size_t arena = align_up(cfg->shm_size ? cfg->shm_size : 64, 4096);
	p->map_len = align_up(sizeof(struct pp_hdr), 128) + per * (size_t)p->nw + arena;
	/* MAP_NORESERVE: pages cost memory only once touched. */
	void *map = mmap(NULL, p->map_len, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (map == MAP_FAILED) {
		int e = -errno;
		pp_free(p);
		return e == -EINVAL ? -ENOMEM : e;
	}
	p->map = map;
	unsigned char *c = map;
	p->hdr = (struct pp_hdr *)c;
	c += align_up(sizeof(struct pp_hdr), 128);
	for (int i = 0; i < p->nw; i++) {
		struct pp_worker *w = &p->w[i];
		w->id = i;
		w->sh = (struct pp_wshared *)c;
		c += align_up(sizeof(struct pp_wshared), 128);
		w->sh->req = (px_ring *)c;
		c += align_up(reqsz, 128);
		w->sh->resp = (px_ring *)c;
		c += align_up(respsz, 128);
		w->sh->big = c;
		c += PP_NBIG * p->big_len;
		slot_reset(w, &p->busy_dead);
		w->gen = 0;
	}
	px__arena_fini(&p->arena);
	px__arena_init(&p->arena, c, arena);

	struct px__fs_conf conf = {
		.nslots = p->nw,
		.parent = getpid(),
		.bell = &p->hdr->bell,
		.bell_sleeping = &p->hdr->bell_sleeping,
		.fs_events = &p->hdr->fs_events,
		.worker_main = worker_main,
		.ctx = p,
	};
	pthread_mutex_lock(&reg_lock);
	conf.close_fds = reg_fds;
	conf.nclose = reg_n;
	int r = px__fs_start(&conf, &p->fs_pid, &p->sock);
	if (!r)
		reg_add(p->sock);
	pthread_mutex_unlock(&reg_lock);
	if (r) {
		pp_free(p);
		return r;
	}
	p->starting = true;
	r = pthread_create(&p->collector, NULL, collector_main, p);
	if (r) {
		pp_abort(p);
		return -r;
	}
	p->collector_started = true;
	pthread_mutex_lock(&p->lock);
	for (int i = 0; i < p->nw; i++) {
		p->w[i].life = L_LIVE;
		p->live++;
		fs_send(p, PX__FS_SPAWN, i, p->w[i].gen);
	}
	while (p->starting && !p->init_err)
		pthread_cond_wait(&p->state_cv, &p->lock);
	r = p->init_err;
	pthread_mutex_unlock(&p->lock);
	if (r) {
		pp_abort(p);
		return r;
	}
	*out = &p->ex;
	return 0;
}

const struct px__backend_ops px__process_backend = {
	.create = pp_create,
	.submit = pp_submit,
	.shutdown = pp_shutdown,
	.destroy = pp_destroy,
	.stats = pp_stats,
	.alloc = pp_alloc,
	.free = pp_free_mem,
};
