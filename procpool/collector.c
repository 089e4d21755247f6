/*
 * procpool/collector.c - the collector thread, one per pool, in the
 * parent: it drains the workers' response rings that no waiting thread
 * watches and completes those futures (reply.c; done callbacks run there,
 * or in the waiting thread that took the reply), refills the windows as
 * replies free room (dispatch.h; submitters also hand out tasks
 * themselves), kills tasks past their timeout, reads the fork server's
 * reports of deaths and respawns or retires the dead workers' slots, fails
 * tasks for want of arena room, and sees startup and shutdown through.
 *
 * It spins after work while the gaps between work stay within spin_ns
 * (pp_spin in shared.h), then parks on the shared doorbell (shared.h),
 * which workers, the fork server and submitters of timed tasks ring only
 * while it sleeps (and workers not for a reply a waiting thread watches
 * for); it never sleeps longer than PP_PARK_MAX_NS, so that a fork server
 * that dies without a word is noticed.
 *
 * When a worker dies, its records tell what happened to each task it held:
 * RUNNING/KILLING/DONE-without-response is the one it died in (failed with
 * PX_EWORKERDIED, -ETIMEDOUT or cancelled), QUEUED ones never started and go
 * back to the front of the central queue, so nothing is lost and nothing runs
 * twice.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <parex/ring.h>

#include "dispatch.h"
#include "forkserver.h"
#include "pool.h"
#include "px_clock.h"
#include "px_futex.h"

/* The pool whose collector runs on this thread (done callbacks run there). */
static PX__TLS struct pp_pool *collector_of;

bool px__pp_on_collector(const struct pp_pool *p)
{
	return collector_of == p;
}

/* Failing tasks in bulk ---------------------------------------------------- */

/* A task the collector completes outside the lock. */
struct pp_victim {
	px_future *f;
	int err;
	bool release_only; /* completed already (withdrawn by a cancel):
			      only drop the pool's reference */
	char msg[200];
	/* Tracing: where and when it ran; flags PX__TRACE_CRASHED or
	 * PX__TRACE_NOT_RUN. */
	int worker;
	pid_t pid;
	int64_t start_ns, end_ns;
	unsigned trace_flags;
};

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
			bool cancelled = e->cancelled;
			px_future *f = entry_retire(p, e);
			if (v) {
				v[k].f = f;
				v[k].err = PX_EWORKERDIED;
				v[k].release_only = cancelled;
				v[k].trace_flags = PX__TRACE_NOT_RUN;
				snprintf(v[k].msg, sizeof(v[k].msg), "%s", why);
				k++;
			}
		}
		w->done_seq = w->next_seq;
		if (w->life == L_LIVE || w->life == L_DRAINING) {
			w->life = L_GONE;
			p->live--;
		}
	}
	for (int lev = 0; lev < PL_LEVELS; lev++)
	while (p->qh[lev]) {
		px_future *f = q_pop(p, lev);
		if (v) {
			v[k].f = f;
			v[k].err = PX_EWORKERDIED;
			v[k].trace_flags = PX__TRACE_NOT_RUN;
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

/* Completes victims outside the lock and drops the pool's references. */
static void finish_victims(struct pp_pool *p, struct pp_victim *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		px_future *f = v[i].f;
		if (v[i].release_only)
			pp_trace_not_run(p, f, -ECANCELED);
		if (!v[i].release_only) {
			pp_trace(p, f, v[i].worker, v[i].pid, v[i].start_ns,
				 v[i].end_ns, v[i].err, v[i].trace_flags);
			if (v[i].msg[0])
				px__future_store_message(f, v[i].msg);
			if (!px__future_complete(f, v[i].err))
				px__counts_record(&p->ccounts, v[i].err);
		}
		px_future_release(f);
	}
}

/* Completes the victims of fail_everything() and frees their array. */
static void finish_all(struct pp_pool *p, struct pp_victim *all, size_t n)
{
	if (all) {
		finish_victims(p, all, n);
		free(all);
	}
}

/* Deaths ------------------------------------------------------------------- */

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

/*
 * What becomes of task s (entry e, record state st) of dead worker w: false
 * if it never started (it goes back to the central queue), else true with
 * *v filled in: the error and message it fails with, or release_only if a
 * cancel already completed it. `why` says how the worker ended.
 */
static bool classify_task(const struct pp_worker *w, uint64_t s,
			  const struct pp_entry *e, unsigned st,
			  const char *why, struct pp_victim *v)
{
	v->f = e->f;
	v->msg[0] = 0;
	v->release_only = false;
	/* For the timeline: a task that started has its start in its
	 * record (stamped before the CAS to RUNNING the caller acquired),
	 * and its end too if it finished (DONE). */
	const struct pp_rec *rec = &w->sh->rec[s % PP_WINDOW];
	v->worker = w->id;
	v->pid = atomic_load_explicit(&w->sh->pid, memory_order_relaxed);
	v->start_ns = atomic_load_explicit(&rec->start_ns, memory_order_relaxed);
	v->end_ns = st == R_DONE ? atomic_load_explicit(&rec->end_ns,
							 memory_order_relaxed)
				 : px__now_ns();
	v->trace_flags = 0;
	if (e->cancelled || st == R_CANCELLED) {
		v->release_only = true;
	} else if (st == R_QUEUED || st == R_FREE) {
		return false;
	} else if (st == R_KILLING && w->kill_seq == s &&
		   w->kill_reason == K_TIMEOUT) {
		v->err = -ETIMEDOUT;
		snprintf(v->msg, sizeof(v->msg),
			 "task ran past its timeout of %lld ms; worker %d (pid %d) was killed",
			 (long long)(e->timeout_ns / PX_MSEC), w->id, (int)w->pid);
	} else if ((st == R_KILLING || st == R_CANCELREQ) && w->kill_seq == s &&
		   w->kill_reason == K_CANCEL) {
		v->err = -ECANCELED; /* killed, or died, after a cancel */
	} else if (st == R_DONE) {
		v->err = PX_EWORKERDIED;
		v->trace_flags = PX__TRACE_CRASHED;
		snprintf(v->msg, sizeof(v->msg),
			 "worker %d (pid %d) %s after finishing the task, before reporting it",
			 w->id, (int)w->pid, why);
	} else {
		v->err = PX_EWORKERDIED;
		v->trace_flags = PX__TRACE_CRASHED;
		snprintf(v->msg, sizeof(v->msg),
			 "worker %d (pid %d) %s while running the task",
			 w->id, (int)w->pid, why);
	}
	return true;
}

/*
 * Empties dead worker w's window: tasks that never started go back to the
 * front of their level of the central queue, in order and still RUNNING
 * (BD_STARTED); the others go to victims[] (returns how many). Lock held.
 */
static size_t retire_window(struct pp_pool *p, struct pp_worker *w,
			    const char *why, struct pp_victim *victims)
{
	size_t nv = 0;
	px_future *requeue[PL_LEVELS] = { NULL }, **rtail[PL_LEVELS],
		  *rlast[PL_LEVELS] = { NULL };
	uint32_t nre[PL_LEVELS] = { 0 };
	for (int lev = 0; lev < PL_LEVELS; lev++)
		rtail[lev] = &requeue[lev];
	for (uint64_t s = w->done_seq; s < w->next_seq; s++) {
		struct pp_entry *e = &w->ent[s % PP_WINDOW];
		uint64_t word = atomic_load_explicit(&w->sh->rec[s % PP_WINDOW].word,
						     memory_order_acquire);
		if (classify_task(w, s, e, (unsigned)(word & 7), why, &victims[nv])) {
			nv++;
			entry_retire(p, e);
			continue;
		}
		px_future *f = entry_retire(p, e);
		int lev = BD_LEVEL(f->backend_data);
		f->backend_data = BD_STARTED | (f->backend_data & BD_LEVEL_MASK);
		*rtail[lev] = f;
		rtail[lev] = &f->qnext;
		rlast[lev] = f;
		nre[lev]++;
	}
	for (int lev = 0; lev < PL_LEVELS; lev++) {
		if (!requeue[lev])
			continue;
		*rtail[lev] = p->qh[lev];
		if (!p->qh[lev])
			p->qt[lev] = rlast[lev];
		p->qh[lev] = requeue[lev];
		p->qcount += nre[lev];
	}
	return nv;
}

/*
 * Decides the future of dead worker w's slot, already reset and L_GONE:
 * during startup an initializer failure fails the pool's creation; a slot
 * whose initializer failed (or whose fork did) is retired; otherwise it is
 * respawned unless the pool is closing. Lock held.
 */
static void replace_or_retire(struct pp_pool *p, struct pp_worker *w,
			      bool initfail, int init_err, int forkerr)
{
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
		px__pp_fs_send(p, PX__FS_SPAWN, w->id, w->gen);
	}
}


/* A worker process is gone (reaped by the fork server with `status`, or
 * never forked: status -1 with forkerr). */
static void handle_death(struct pp_pool *p, struct pp_worker *w, int status,
			 int forkerr)
{
	/* Its ring and window are ours alone from here: a waiting thread
	 * asleep watching the ring is woken and lets go. */
	px__pp_tok_take(w);
	px__pp_drain_held(p, w); /* what it finished before dying still counts */
	pthread_mutex_lock(&p->lock);
	uint32_t ws = atomic_load_explicit(&w->sh->state, memory_order_acquire);
	struct pp_victim victims[PP_WINDOW];
	char why[120];
	if (forkerr)
		snprintf(why, sizeof(why), "fork failed: %s", strerror(forkerr));
	else
		describe_status(why, sizeof(why), status);
	size_t nv = retire_window(p, w, why, victims);
	/* Died before it was READY: its initializer failed, crashed or exited
	 * (a kill is only ever sent for a running task, so after READY). A
	 * replacement whose initializer crashes is retired like one whose
	 * initializer returns an error; respawning it would loop forever,
	 * handing it the same queued tasks each time. */
	bool initfail = ws != WS_READY && ws != WS_EXITING;
	int init_err = w->sh->init_err ? w->sh->init_err
		       : forkerr	 ? -forkerr
					 : PX_EWORKERDIED;
	if (w->grace_dl) {
		w->grace_dl = 0;
		atomic_fetch_sub_explicit(&p->grace_pending, 1, memory_order_relaxed);
	}
	px__pp_slot_reset(w, &p->busy_dead);
	p->live--;
	bool draining = w->life == L_DRAINING;
	w->life = L_GONE;
	if (draining) {
		/* Shrunk by a resize: it ran out what it held. A grow since
		 * may want it back. */
		bool back = w->back;
		w->back = false;
		if (back && !initfail && !forkerr && !p->closing) {
			w->life = L_LIVE;
			p->live++;
			px__pp_fs_send(p, PX__FS_SPAWN, w->id, w->gen);
		} else {
			w->life = L_IDLE;
		}
	} else {
		replace_or_retire(p, w, initfail, init_err, forkerr);
	}
	struct pp_victim *all = NULL;
	size_t nall = 0;
	if (p->live == 0 && !p->closing && !p->starting)
		fail_everything(p, initfail ? "no workers left: the worker initializer failed"
					    : "no workers left",
				&all, &nall);
	pump(p);
	pthread_mutex_unlock(&p->lock);
	px__pp_tok_put(p, w, false); /* the collector looks at the ring next */
	finish_victims(p, victims, nv);
	finish_all(p, all, nall);
	/* Waiters asleep on other rings whose futures were failed. */
	if (all)
		px__pp_kick_helpers(p, NULL);
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
	finish_all(p, all, n);
	px__pp_kick_helpers(p, NULL);
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
			px__pp_server_reap(p);
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

/* Timeouts ----------------------------------------------------------------- */

/* The deadline timeout_ns after start, saturating like px__deadline_after():
 * a sum past the clock's range is no deadline, never one in the past. */
/* Kills tasks past their timeout; returns the nearest deadline (or
 * PX__NO_DEADLINE). Only a worker's oldest task can be running. */
static int64_t check_timeouts(struct pp_pool *p)
{
	int64_t next = PX__NO_DEADLINE;
	/* Before anything is looked at: park() sleeps only if no timed task
	 * was dispatched since (see timed_gen). Acquire: pairs with the
	 * dispatcher's release bump, after its raise of timed_inflight. */
	p->timed_seen = atomic_load_explicit(&p->timed_gen, memory_order_acquire);
	if (!atomic_load_explicit(&p->timed_inflight, memory_order_relaxed))
		return next;
	pthread_mutex_lock(&p->lock);
	if (!atomic_load_explicit(&p->timed_inflight, memory_order_relaxed)) {
		pthread_mutex_unlock(&p->lock);
		return next;
	}
	int64_t now = px__now_ns();
	for (int i = 0; i < p->nw; i++) {
		struct pp_worker *w = &p->w[i];
		if ((w->life != L_LIVE && w->life != L_DRAINING) || !w_inflight(w))
			continue;
		uint64_t s = w->done_seq;
		struct pp_entry *e = &w->ent[s % PP_WINDOW];
		if (e->timeout_ns <= 0 || e->cancelled)
			continue;
		struct pp_rec *rec = &w->sh->rec[s % PP_WINDOW];
		/* Acquire: pairs with the worker's start CAS (start_ns). */
		uint64_t word = atomic_load_explicit(&rec->word, memory_order_acquire);
		if (word == rword(s, R_QUEUED)) {
			/* Not started yet: it cannot end before now + timeout. */
			next = px__deadline_min(next, px__deadline_add(now, e->timeout_ns));
			continue;
		}
		if (word != rword(s, R_RUNNING))
			continue;
		int64_t dl = px__deadline_add(
			atomic_load_explicit(&rec->start_ns, memory_order_relaxed),
			e->timeout_ns);
		if (now < dl) {
			next = px__deadline_min(next, dl);
			continue;
		}
		if (atomic_compare_exchange_strong_explicit(
			    &rec->word, &word, rword(s, R_KILLING),
			    memory_order_acq_rel, memory_order_acquire)) {
			w->kill_reason = K_TIMEOUT;
			w->kill_seq = s;
			px__pp_fs_send(p, PX__FS_KILL, w->id, w->gen);
		}
	}
	pthread_mutex_unlock(&p->lock);
	return next;
}

/*
 * Kills the workers whose task was cancelled (CANCELREQ) and still runs at
 * the end of its grace period; forgets the deadline of one that returned.
 * Returns the nearest deadline left (or PX__NO_DEADLINE).
 */
static int64_t check_grace(struct pp_pool *p)
{
	int64_t next = PX__NO_DEADLINE;
	if (!atomic_load_explicit(&p->grace_pending, memory_order_relaxed))
		return next;
	pthread_mutex_lock(&p->lock);
	int64_t now = px__now_ns();
	for (int i = 0; i < p->nw; i++) {
		struct pp_worker *w = &p->w[i];
		if (!w->grace_dl)
			continue;
		uint64_t s = w->kill_seq;
		_Atomic uint64_t *word = &w->sh->rec[s % PP_WINDOW].word;
		uint64_t cur = atomic_load_explicit(word, memory_order_acquire);
		if (cur == rword(s, R_CANCELREQ) && now < w->grace_dl) {
			next = px__deadline_min(next, w->grace_dl);
			continue;
		}
		/* acq_rel: against the worker's CANCELREQ -> DONE. */
		if (cur == rword(s, R_CANCELREQ) &&
		    atomic_compare_exchange_strong_explicit(
			    word, &cur, rword(s, R_KILLING), memory_order_acq_rel,
			    memory_order_acquire))
			px__pp_fs_send(p, PX__FS_KILL, w->id, w->gen);
		w->grace_dl = 0;
		atomic_fetch_sub_explicit(&p->grace_pending, 1, memory_order_relaxed);
	}
	pthread_mutex_unlock(&p->lock);
	return next;
}

/* Startup, shutdown, deferred failures --------------------------------------- */

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

/* True while a task is queued centrally or in a window. Lock held. */
static bool any_task(const struct pp_pool *p)
{
	if (p->qcount)
		return true;
	for (int i = 0; i < p->nw; i++)
		if (w_inflight(&p->w[i]))
			return true;
	return false;
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
	if (!p->shutting && !p->broken)
		goto busy;
	if (!p->closing) {
		if (any_task(p))
			goto busy;
		/* Nothing left to run: let the workers drain out. */
		p->closing = true;
		for (int i = 0; i < p->nw; i++) {
			px_ring_close(p->w[i].sh->req);
			px__pp_worker_wake(p->w[i].sh);
		}
	}
	for (int i = 0; i < p->nw; i++)
		if (p->w[i].life == L_LIVE || p->w[i].life == L_DRAINING)
			goto busy;
	/* Every worker is reaped: stop the fork server. */
	if (p->fs_pid > 0) {
		px__pp_fs_send(p, PX__FS_EXIT, 0, 0);
		px__pp_server_reap(p);
	}
	p->finished = true;
	pthread_cond_broadcast(&p->state_cv);
	pthread_mutex_unlock(&p->lock);
	return true;
busy:
	pthread_mutex_unlock(&p->lock);
	return false;
}

/* Fails the tasks pump_n() could find no arena room for (p->failq). */
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
		pp_trace_not_run(p, f, -ENOMEM);
		if (!px__future_complete(f, -ENOMEM))
			px__counts_record(&p->ccounts, -ENOMEM);
		px_future_release(f);
		f = nx;
	}
}

/* The loop -------------------------------------------------------------------- */

/* A reply the collector should take: on a ring whose token is free (a
 * waiter holding one takes what comes, and rings for what it leaves, see
 * px__pp_tok_put()). */
static bool any_reply(struct pp_pool *p)
{
	for (int i = 0; i < p->nw; i++)
		if (!atomic_load_explicit(&p->w[i].tok, memory_order_relaxed) &&
		    px_ring_count(p->w[i].sh->resp))
			return true;
	return false;
}

/* One pass over everything the collector watches. Returns how much it
 * handled (0: nothing came in); *next gets the nearest task deadline. */
static int collect_round(struct pp_pool *p, int64_t *next)
{
	int got = 0;
	for (int i = 0; i < p->nw; i++)
		got += px__pp_drain(p, &p->w[i]);
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
	*next = px__deadline_min(check_timeouts(p), check_grace(p));
	return got;
}

/*
 * Sleeps on the doorbell until it is rung, the nearest task deadline `next`
 * passes, or PP_PARK_MAX_NS from `now`. Dekker pair with
 * px__pp_bell_ring(): bell_sleeping is set, then a seq_cst fence, then the
 * rings, the fork server's counter and timed_gen are looked at once more
 * before sleeping. timed_gen because `next` was computed before this: a
 * timed task dispatched since, whose ring found bell_sleeping still 0,
 * would otherwise go unwatched for PP_PARK_MAX_NS, its timeout late by up
 * to that much. noinline: gcc rejects (-Wtsan) an atomic_thread_fence inlined
 * into another function under -fsanitize=thread.
 */
static __attribute__((noinline)) void park(struct pp_pool *p, int64_t now, int64_t next)
{
	uint32_t v = atomic_load_explicit(&p->hdr->bell, memory_order_acquire);
	atomic_store_explicit(&p->hdr->bell_sleeping, 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_seq_cst);
	if (!any_reply(p) &&
	    atomic_load_explicit(&p->hdr->fs_events, memory_order_relaxed) ==
		    p->fs_seen &&
	    atomic_load_explicit(&p->timed_gen, memory_order_relaxed) ==
		    p->timed_seen) {
		int64_t dl = px__deadline_min(now + PP_PARK_MAX_NS, next);
		int r = px__futex_wait_shared(&p->hdr->bell, v, dl);
		/* A dead server sends nothing and bumps no counter: look at
		 * the socket now and then for its hang-up (not at waitpid(),
		 * which sees nothing where the program ignores SIGCHLD). */
		if (r == -ETIMEDOUT && p->fs_pid > 0)
			handle_fs(p);
	}
	atomic_store_explicit(&p->hdr->bell_sleeping, 0, memory_order_relaxed);
}

void *px__pp_collector_main(void *arg)
{
	struct pp_pool *p = arg;
	pthread_setname_np(pthread_self(), "px-collector");
	collector_of = p;
	/* Spin after work only as long as the gaps between work have been
	 * short (pp_spin): waiting threads take most replies themselves now,
	 * and a spin that catches nothing takes a CPU from them. */
	struct pp_spin spin;
	pp_spin_init(&spin, p->spin_ns);
	int64_t spin_until = 0, idle_since = 0;
	for (;;) {
		int64_t next;
		int got = collect_round(p, &next);
		if (check_shutdown(p))
			break;
		int64_t now = px__now_ns();
		if (got) {
			if (idle_since)
				pp_spin_learn(&spin, now - idle_since);
			idle_since = 0;
			spin_until = now + spin.budget;
			continue;
		}
		if (!idle_since)
			idle_since = now;
		if (now < spin_until) {
			for (int k = 0; k < 64; k++)
				px__cpu_relax();
			sched_yield();
			continue;
		}
		park(p, now, next);
	}
	/* Waiting threads still completing replies they retired (their
	 * callbacks may be destroying the pool): the pool stays until they
	 * are done. Acquire: pairs with their release decrement. */
	while (atomic_load_explicit(&p->cb_helpers, memory_order_acquire))
		sched_yield();
	pthread_mutex_lock(&p->lock);
	bool free_it = p->free_on_exit;
	pthread_mutex_unlock(&p->lock);
	if (free_it) {
		/* Destroyed from a done callback (here or in a waiting
		 * thread, which took its pins back, see reply.c). */
		while (atomic_load_explicit(&p->ex.helping, memory_order_acquire))
			sched_yield();
		px__pp_free(p); /* the last one to touch it, see pp_destroy() in pool.c */
	}
	return NULL;
}
