/*
 * tests/test_core_adversarial.c - the core's concurrency corner cases, each
 * raced on purpose: waits and iterators against completion and against a
 * second thread dropping its references, done callbacks that release and
 * cancel, cancel against start and against shutdown(cancel_pending), blocked
 * submitters against shutdown, futures freed by threads that did not
 * allocate them (and that then exit), GIL waits inside tasks, map's timeout,
 * and tiny timeouts (no lost wake-up, no -ETIMEDOUT once the completion was
 * visible). Helper threads only count; cmocka assertions stay in the main
 * thread.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <parex/executor.h>

#include "test_util.h"

/* A small xorshift, so every thread draws its own interleavings. */
static uint32_t rnd(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/* Spins for about n iterations: shifts a race window without sleeping. */
static void jitter(uint32_t *s, uint32_t max)
{
	uint32_t n = max ? rnd(s) % max : 0;
	for (volatile uint32_t i = 0; i < n; i++)
		;
}

/* px_wait and as-completed against completion and a foreign release ----- */

enum { WN = 6 };

struct wait_round {
	px_future *fs[WN];
	atomic_int go;
	uint32_t seed;
	bool fail_some; /* complete some with errors (FIRST_EXCEPTION) */
};

/* Completes the round's futures in a random order, then drops the extra
 * reference it was given for each, while the main thread waits. */
static void *completer(void *arg)
{
	struct wait_round *w = arg;
	uint32_t s = w->seed;
	while (!atomic_load(&w->go))
		;
	int order[WN];
	for (int i = 0; i < WN; i++)
		order[i] = i;
	for (int i = WN - 1; i > 0; i--) {
		int j = (int)(rnd(&s) % (uint32_t)(i + 1)), t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	for (int k = 0; k < WN; k++) {
		jitter(&s, 3000);
		px_future *f = w->fs[order[k]];
		if (w->fail_some && (rnd(&s) & 3) == 0)
			px_promise_set_error(f, -EIO, "io");
		else if ((rnd(&s) & 7) == 0)
			px_future_cancel(f, 0);
		else
			px_promise_set_i64(f, order[k]);
		px_future_release(f); /* the completer's own reference */
	}
	return NULL;
}

static void wait_modes_race_completion(void **state)
{
	(void)state;
	long rounds = test_scaled(3000);
	for (long r = 0; r < rounds; r++) {
		struct wait_round w = { .seed = (uint32_t)r * 2654435761u + 1 };
		px_wait_mode mode = (px_wait_mode)(r % 3);
		w.fail_some = mode == PX_FIRST_EXCEPTION;
		for (int i = 0; i < WN; i++) {
			assert_int_equal(px_promise_create(&w.fs[i]), 0);
			px_future_retain(w.fs[i]); /* for the completer */
		}
		pthread_t th;
		assert_int_equal(pthread_create(&th, NULL, completer, &w), 0);
		atomic_store(&w.go, 1);
		bool done[WN];
		/* Alternate forever and short timeouts. */
		int64_t to = (r & 1) ? PX_FOREVER : 20000;
		int n;
		while ((n = px_wait(w.fs, WN, mode, to, done)) == -ETIMEDOUT)
			;
		assert_true(n >= 1 && n <= WN);
		int ndone = 0, nfail = 0;
		for (int i = 0; i < WN; i++) {
			if (!done[i])
				continue;
			ndone++;
			assert_true(px_future_is_done(w.fs[i]));
			if (px_future_error(w.fs[i]))
				nfail++;
		}
		assert_true(ndone >= n); /* done[] is filled after the count */
		if (mode == PX_ALL_COMPLETED)
			assert_int_equal(ndone, WN);
		if (mode == PX_FIRST_EXCEPTION)
			assert_true(nfail > 0 || ndone == WN);
		assert_int_equal(pthread_join(th, NULL), 0);
		for (int i = 0; i < WN; i++) {
			assert_true(px_future_is_done(w.fs[i]));
			px_future_release(w.fs[i]);
		}
	}
}

static void as_completed_race_completion_and_close(void **state)
{
	(void)state;
	long rounds = test_scaled(3000);
	for (long r = 0; r < rounds; r++) {
		struct wait_round w = { .seed = (uint32_t)r * 40503u + 7 };
		for (int i = 0; i < WN; i++) {
			assert_int_equal(px_promise_create(&w.fs[i]), 0);
			px_future_retain(w.fs[i]);
		}
		pthread_t th;
		assert_int_equal(pthread_create(&th, NULL, completer, &w), 0);
		atomic_store(&w.go, 1);
		px_as_completed *it;
		assert_int_equal(px_as_completed_open(&it, w.fs, WN), 0);
		/* The iterator holds its own references: ours may go now. */
		px_future *mine[WN];
		memcpy(mine, w.fs, sizeof(mine));
		int take = (int)(r % (WN + 2)); /* some rounds close early */
		bool seen[WN] = { false };
		int got = 0;
		for (int k = 0; k < take && k < WN; k++) {
			px_future *f = NULL;
			int e = px_as_completed_next(it, (k & 1) ? 5000 : PX_FOREVER,
						     &f);
			if (e == -ETIMEDOUT)
				continue;
			assert_int_equal(e, 0);
			int idx = -1;
			for (int i = 0; i < WN; i++)
				if (mine[i] == f)
					idx = i;
			assert_true(idx >= 0);
			assert_false(seen[idx]);
			seen[idx] = true;
			assert_true(px_future_is_done(f));
			got++;
		}
		if (take > WN) {
			px_future *f;
			while (got < WN) {
				assert_int_equal(px_as_completed_next(it, PX_FOREVER, &f), 0);
				got++;
			}
			assert_int_equal(px_as_completed_next(it, 0, &f), PX_EEOF);
		}
		if (r & 1)
			for (int i = 0; i < WN; i++)
				px_future_release(mine[i]);
		px_as_completed_close(it);
		assert_int_equal(pthread_join(th, NULL), 0);
		if (!(r & 1))
			for (int i = 0; i < WN; i++)
				px_future_release(mine[i]);
	}
}

/* Done callbacks that release and cancel ---------------------------------- */

struct cb_stats {
	atomic_int ran;
	atomic_int cancelled_other;
};

struct cb_arg {
	struct cb_stats *st;
	px_future *other; /* cancelled by the callback, reference owned */
};

/* Drops the reference it owns on f, and cancels (then drops) another. */
static void cb_release_cancel(px_future *f, void *arg)
{
	struct cb_arg *a = arg;
	atomic_fetch_add(&a->st->ran, 1);
	if (a->other) {
		if (px_future_cancel(a->other, 0) == 0)
			atomic_fetch_add(&a->st->cancelled_other, 1);
		px_future_release(a->other);
	}
	px_future_release(f);
	free(a);
}

static void cb_count(px_future *f, void *arg)
{
	(void)f;
	atomic_fetch_add(&((struct cb_stats *)arg)->ran, 1);
}

struct cb_round {
	px_future *f;
	atomic_int go;
	uint32_t seed;
};

static void *cb_completer(void *arg)
{
	struct cb_round *c = arg;
	uint32_t s = c->seed;
	while (!atomic_load(&c->go))
		;
	jitter(&s, 4000);
	px_promise_set_i64(c->f, 1);
	px_future_release(c->f);
	return NULL;
}

static void callbacks_release_and_cancel(void **state)
{
	(void)state;
	long rounds = test_scaled(3000);
	struct cb_stats st = { 0 };
	int expect_ran = 0, expect_cancel = 0;
	for (long r = 0; r < rounds; r++) {
		struct cb_round c = { .seed = (uint32_t)r * 69069u + 3 };
		px_future *other;
		assert_int_equal(px_promise_create(&c.f), 0);
		assert_int_equal(px_promise_create(&other), 0);
		px_future_retain(c.f); /* the completer's */
		pthread_t th;
		assert_int_equal(pthread_create(&th, NULL, cb_completer, &c), 0);
		atomic_store(&c.go, 1);
		/* Registered while the completion races: each runs once, here
		 * or in the completer. */
		for (int k = 0; k < 3; k++) {
			struct cb_arg *a = malloc(sizeof(*a));
			assert_non_null(a);
			a->st = &st;
			a->other = k == 1 ? px_future_retain(other) : NULL;
			px_future_retain(c.f); /* owned by the callback */
			assert_int_equal(px_future_on_done(c.f, cb_release_cancel, a), 0);
			assert_int_equal(px_future_on_done(c.f, cb_count, &st), 0);
			expect_ran += 2;
		}
		expect_cancel++;
		px_future_release(c.f); /* ours: the callbacks and the completer
					   hold the rest */
		assert_int_equal(pthread_join(th, NULL), 0);
		assert_int_equal(px_future_state_get(other), PX_FUTURE_CANCELLED);
		px_future_release(other);
	}
	assert_int_equal(atomic_load(&st.ran), expect_ran);
	assert_int_equal(atomic_load(&st.cancelled_other), expect_cancel);
}

/* Cancel against start and against shutdown(cancel_pending) ------------- */

static atomic_int tasks_ran;

static int count_task(px_task *t, const void *arg, size_t len)
{
	(void)t;
	(void)arg;
	(void)len;
	atomic_fetch_add(&tasks_ran, 1);
	return 0;
}

struct canceller {
	px_future **fs;
	int n;
	atomic_int *published;
	atomic_int stop;
	atomic_int cancels_ok;
	uint32_t seed;
};

static void *cancel_thread(void *arg)
{
	struct canceller *c = arg;
	uint32_t s = c->seed;
	int seen = 0;
	while (seen < c->n) {
		int pub = atomic_load(c->published);
		if (pub == seen) {
			if (atomic_load(&c->stop))
				break;
			sched_yield();
			continue;
		}
		int i = seen + (int)(rnd(&s) % (uint32_t)(pub - seen));
		int e = px_future_cancel(c->fs[i], 0);
		if (e == 0)
			atomic_fetch_add(&c->cancels_ok, 1);
		else if (e != -EBUSY)
			atomic_store(&c->cancels_ok, -1000000);
		seen = pub;
	}
	return NULL;
}

static void cancel_races_start_and_shutdown(void **state)
{
	(void)state;
	long rounds = test_scaled(40);
	for (long r = 0; r < rounds; r++) {
		px_executor *ex = open_ex(r & 1 ? "thread:workers=2,queue=64"
					       : "thread:workers=3,queue=512,spin_us=0");
		int n = 400;
		px_future **fs = calloc((size_t)n, sizeof(*fs));
		assert_non_null(fs);
		atomic_int published = 0;
		atomic_store(&tasks_ran, 0);
		struct canceller c = { .fs = fs, .n = n, .published = &published,
				       .seed = (uint32_t)r + 11 };
		pthread_t th;
		assert_int_equal(pthread_create(&th, NULL, cancel_thread, &c), 0);
		int accepted = 0;
		int stop_at = (int)(r * 37 % (uint32_t)n);
		for (int i = 0; i < n; i++) {
			if (i == stop_at)
				assert_int_equal(px_executor_shutdown(ex, false, true), 0);
			int e = px_executor_submit(ex, count_task, NULL, 0, NULL, &fs[i]);
			if (i >= stop_at) {
				assert_int_equal(e, PX_ESHUTDOWN);
				assert_null(fs[i]);
				continue;
			}
			assert_int_equal(e, 0);
			accepted++;
			atomic_store(&published, accepted);
		}
		atomic_store(&c.stop, 1);
		assert_int_equal(pthread_join(th, NULL), 0);
		assert_true(atomic_load(&c.cancels_ok) >= 0);
		px_executor_destroy(ex);
		int ndone = 0, ncancel = 0;
		for (int i = 0; i < accepted; i++) {
			px_future_state s = px_future_state_get(fs[i]);
			assert_true(s == PX_FUTURE_DONE || s == PX_FUTURE_CANCELLED);
			if (s == PX_FUTURE_DONE) {
				assert_int_equal(px_future_error(fs[i]), 0);
				ndone++;
			} else {
				assert_int_equal(px_future_error(fs[i]), -ECANCELED);
				ncancel++;
			}
			px_future_release(fs[i]);
		}
		assert_int_equal(ndone, atomic_load(&tasks_ran));
		assert_true(ncancel >= atomic_load(&c.cancels_ok));
		free(fs);
	}
}

/* Blocked submitters against shutdown(wait=false) ----------------------- */

struct submitter {
	px_executor *ex;
	px_future *fs[4096];
	int n;       /* accepted */
	int bad;     /* a submit code other than 0 / PX_ESHUTDOWN */
};

static void *submit_until_shutdown(void *arg)
{
	struct submitter *s = arg;
	for (;;) {
		px_future *f = NULL;
		int e = px_executor_submit(s->ex, count_task, NULL, 0, NULL, &f);
		if (e == PX_ESHUTDOWN) {
			if (f)
				s->bad++;
			break;
		}
		if (e != 0 || !f) {
			s->bad++;
			break;
		}
		s->fs[s->n++] = f;
		if (s->n == 4096)
			break;
	}
	return NULL;
}

static void submitters_vs_shutdown(void **state)
{
	(void)state;
	static const char *const specs[] = {
		"thread:workers=1,queue=2,block=1",
		"thread:workers=2,queue=3,block=1",
		"thread:workers=2,queue=2,block=1,spin_us=0",
		"thread:workers=3,queue=3,block=1,gil=1",
	};
	long rounds = test_scaled(40);
	for (long r = 0; r < rounds; r++) {
		px_executor *ex = open_ex(specs[r % 4]);
		bool cancel = (r / 4) & 1;
		atomic_store(&tasks_ran, 0);
		enum { NS = 4 };
		struct submitter *s = calloc(NS, sizeof(*s));
		assert_non_null(s);
		pthread_t th[NS];
		for (int i = 0; i < NS; i++) {
			s[i].ex = ex;
			assert_int_equal(pthread_create(&th[i], NULL,
							submit_until_shutdown, &s[i]), 0);
		}
		usleep((useconds_t)(200 + (r % 7) * 300));
		assert_int_equal(px_executor_shutdown(ex, false, cancel), 0);
		for (int i = 0; i < NS; i++)
			assert_int_equal(pthread_join(th[i], NULL), 0);
		/* A later submit fails the same way, with no future. */
		px_future *late = (px_future *)1;
		assert_int_equal(px_executor_submit(ex, count_task, NULL, 0, NULL, &late),
				 PX_ESHUTDOWN);
		assert_null(late);
		px_executor_destroy(ex);
		int ndone = 0, total = 0;
		for (int i = 0; i < NS; i++) {
			assert_int_equal(s[i].bad, 0);
			for (int k = 0; k < s[i].n; k++) {
				px_future *f = s[i].fs[k];
				px_future_state st = px_future_state_get(f);
				if (cancel)
					assert_true(st == PX_FUTURE_DONE ||
						    st == PX_FUTURE_CANCELLED);
				else
					assert_int_equal(st, PX_FUTURE_DONE);
				ndone += st == PX_FUTURE_DONE;
				total++;
				px_future_release(f);
			}
		}
		assert_int_equal(ndone, atomic_load(&tasks_ran));
		(void)total;
		free(s);
	}
}

/* Futures freed by other threads, across thread exit -------------------- */

enum { XN = 300 };

struct xfer {
	px_executor *ex;
	px_future *fs[XN];
	int made;
};

/* Makes futures (promises and tasks) and leaves them for another thread,
 * then exits: its cache is what the exit hook spills. */
static void *make_and_exit(void *arg)
{
	struct xfer *x = arg;
	for (int i = 0; i < XN; i++) {
		int64_t v = i;
		if (i % 3 == 0) {
			if (px_promise_create(&x->fs[i]) != 0)
				break;
			px_promise_set_i64(x->fs[i], v);
		} else if (px_executor_submit(x->ex, count_task, NULL, 0, NULL,
					      &x->fs[i]) != 0) {
			break;
		}
		x->made++;
	}
	return NULL;
}

/* Releases the futures another thread made, then exits. */
static void *release_and_exit(void *arg)
{
	struct xfer *x = arg;
	for (int i = 0; i < x->made; i++) {
		px_future_wait(x->fs[i], PX_FOREVER);
		px_future_release(x->fs[i]);
	}
	return NULL;
}

static void futures_freed_by_other_threads(void **state)
{
	(void)state;
	px_executor *ex = open_ex("thread:workers=2");
	atomic_store(&tasks_ran, 0);
	long rounds = test_scaled(60);
	int tasks = 0;
	for (long r = 0; r < rounds; r++) {
		struct xfer a = { .ex = ex }, b = { .ex = ex };
		pthread_t t1, t2;
		assert_int_equal(pthread_create(&t1, NULL, make_and_exit, &a), 0);
		assert_int_equal(pthread_create(&t2, NULL, make_and_exit, &b), 0);
		assert_int_equal(pthread_join(t1, NULL), 0);
		assert_int_equal(pthread_join(t2, NULL), 0);
		assert_int_equal(a.made, XN);
		assert_int_equal(b.made, XN);
		for (int i = 0; i < XN; i++) {
			int64_t v = -1;
			if (i % 3 == 0) {
				assert_int_equal(px_future_get_i64(a.fs[i], 0, &v), 0);
				assert_int_equal(v, i);
			}
		}
		tasks += 2 * (XN - (XN + 2) / 3);
		/* a's futures die in a third thread, b's here. */
		assert_int_equal(pthread_create(&t1, NULL, release_and_exit, &a), 0);
		for (int i = 0; i < XN; i++) {
			assert_int_equal(px_future_wait(b.fs[i], PX_FOREVER), 0);
			assert_int_equal(px_future_error(b.fs[i]), 0);
			px_future_release(b.fs[i]);
		}
		assert_int_equal(pthread_join(t1, NULL), 0);
	}
	px_executor_destroy(ex);
	assert_int_equal(atomic_load(&tasks_ran), tasks);
}

/* GIL mode: waits inside tasks ------------------------------------------- */

struct gil_ctx {
	px_executor *ex;
	atomic_int inside;
	atomic_int overlap;
};

static int leaf_task(px_task *t, const void *arg, size_t len)
{
	(void)len;
	struct gil_ctx *g = *(struct gil_ctx *const *)arg;
	if (atomic_fetch_add(&g->inside, 1) != 0)
		atomic_store(&g->overlap, 1);
	volatile uint64_t x = 0;
	for (int i = 0; i < 20000; i++)
		x += (uint64_t)i;
	atomic_fetch_sub(&g->inside, 1);
	int64_t v = 5;
	return px_task_return(t, &v, sizeof(v));
}

/* Submits leaves and waits for them in each of the three ways; between
 * waits it computes, which must again be under the GIL. */
static int parent_task(px_task *t, const void *arg, size_t len)
{
	(void)len;
	struct gil_ctx *g = *(struct gil_ctx *const *)arg;
	px_future *fs[3];
	for (int i = 0; i < 3; i++)
		if (px_executor_submit(g->ex, leaf_task, &g, sizeof(g), NULL, &fs[i]))
			return -EIO;
	int64_t sum = 0, v;
	if (px_future_get_i64(fs[0], PX_FOREVER, &v) == 0)
		sum += v;
	if (atomic_fetch_add(&g->inside, 1) != 0)
		atomic_store(&g->overlap, 1);
	atomic_fetch_sub(&g->inside, 1);
	if (px_wait(fs, 3, PX_ALL_COMPLETED, PX_FOREVER, NULL) != 3)
		sum -= 100;
	px_as_completed *it;
	if (px_as_completed_open(&it, fs, 3) == 0) {
		px_future *f;
		while (px_as_completed_next(it, PX_FOREVER, &f) == 0)
			if (f != fs[0] && px_future_get_i64(f, 0, &v) == 0)
				sum += v;
		px_as_completed_close(it);
	}
	if (atomic_fetch_add(&g->inside, 1) != 0)
		atomic_store(&g->overlap, 1);
	atomic_fetch_sub(&g->inside, 1);
	for (int i = 0; i < 3; i++)
		px_future_release(fs[i]);
	return px_task_return(t, &sum, sizeof(sum));
}

static void gil_waits_inside_tasks(void **state)
{
	(void)state;
	struct gil_ctx g = { .ex = open_ex("thread:workers=4,gil=1,queue=64") };
	struct gil_ctx *gp = &g;
	int n = (int)test_scaled(150);
	px_future **fs = calloc((size_t)n, sizeof(*fs));
	assert_non_null(fs);
	/* At most 2 parents in flight so that leaves always find a worker. */
	for (int i = 0; i < n; i++) {
		assert_int_equal(px_executor_submit(g.ex, parent_task, &gp,
						    sizeof(gp), NULL, &fs[i]), 0);
		if (i >= 1) {
			int64_t v;
			assert_int_equal(px_future_get_i64(fs[i - 1], PX_FOREVER, &v), 0);
			assert_int_equal(v, 15);
		}
	}
	int64_t v;
	assert_int_equal(px_future_get_i64(fs[n - 1], PX_FOREVER, &v), 0);
	assert_int_equal(v, 15);
	for (int i = 0; i < n; i++)
		px_future_release(fs[i]);
	free(fs);
	px_executor_destroy(g.ex);
	assert_int_equal(atomic_load(&g.overlap), 0);
}

/* map's timeout cancels what has not started ----------------------------- */

static int sleepy_rec(px_task *t, const void *arg, size_t len)
{
	(void)len;
	int32_t x;
	memcpy(&x, arg, sizeof(x));
	atomic_fetch_add(&tasks_ran, 1);
	px_task_sleep(t, 5 * 1000000);
	int64_t v = x * 2;
	return px_task_return(t, &v, sizeof(v));
}

static void map_timeout_cancels(void **state)
{
	(void)state;
	px_executor *ex = open_ex("thread:workers=1,queue=1024");
	enum { MN = 200 };
	int32_t args[MN];
	int64_t res[MN];
	int errs[MN];
	for (int i = 0; i < MN; i++) {
		args[i] = i;
		res[i] = -1; /* unfinished records may be left as they were */
	}
	atomic_store(&tasks_ran, 0);
	px_map_opts o = { .chunk = 1, .timeout_ns = 20 * 1000000, .errors = errs };
	assert_int_equal(px_executor_map(ex, sleepy_rec, args, sizeof(int32_t), MN,
					 res, sizeof(int64_t), &o),
			 -ETIMEDOUT);
	/* Started ones still finish; none of the cancelled ones may start. */
	px_executor_destroy(ex);
	int ok = 0, timed = 0;
	for (int i = 0; i < MN; i++) {
		if (errs[i] == 0) {
			assert_int_equal(res[i], 2 * i);
			ok++;
		} else {
			assert_int_equal(errs[i], -ETIMEDOUT);
			assert_true(res[i] == 0 || res[i] == -1);
			timed++;
		}
	}
	assert_true(timed > 0);
	assert_true(ok <= atomic_load(&tasks_ran));
	assert_true(atomic_load(&tasks_ran) < MN);
}

/* Tiny timeouts: no lost wake-up, no -ETIMEDOUT after a visible completion */

struct tiny {
	px_future *f;
	atomic_int go;
	atomic_int completed; /* set once set_i64 has returned */
	uint32_t seed;
};

static void *tiny_completer(void *arg)
{
	struct tiny *t = arg;
	uint32_t s = t->seed;
	while (!atomic_load(&t->go))
		;
	jitter(&s, 20000);
	px_promise_set_i64(t->f, 9);
	atomic_store(&t->completed, 1);
	return NULL;
}

/* Another sleeper on the same future, so WAITERS is shared. */
static void *tiny_waiter(void *arg)
{
	struct tiny *t = arg;
	while (px_future_wait(t->f, 3000) == -ETIMEDOUT)
		;
	return NULL;
}

static void tiny_timeouts(void **state)
{
	(void)state;
	long rounds = test_scaled(1500);
	int bad = 0;
	for (long r = 0; r < rounds; r++) {
		struct tiny t = { .seed = (uint32_t)r * 7919u + 5 };
		assert_int_equal(px_promise_create(&t.f), 0);
		px_as_completed *it;
		assert_int_equal(px_as_completed_open(&it, &t.f, 1), 0);
		pthread_t c, w;
		assert_int_equal(pthread_create(&c, NULL, tiny_completer, &t), 0);
		bool second = r % 3 == 0;
		if (second)
			assert_int_equal(pthread_create(&w, NULL, tiny_waiter, &t), 0);
		atomic_store(&t.go, 1);
		int64_t to = (int64_t)(r % 5) * 1000; /* 0 .. 4 us */
		int kind = (int)(r % 4);
		for (;;) {
			int vis = atomic_load(&t.completed);
			int e;
			px_future *out = NULL;
			bool done;
			switch (kind) {
			case 0:
				e = px_future_wait(t.f, to);
				break;
			case 1:
				e = px_wait(&t.f, 1, PX_FIRST_COMPLETED, to, &done);
				e = e < 0 ? e : 0;
				break;
			case 2:
				e = px_wait(&t.f, 1, PX_ALL_COMPLETED, to, &done);
				e = e < 0 ? e : 0;
				break;
			default:
				e = px_as_completed_next(it, to, &out);
				break;
			}
			if (e == 0)
				break;
			if (e != -ETIMEDOUT || vis)
				bad++;
			if (bad)
				break;
		}
		if (kind != 3) {
			px_future *out;
			assert_int_equal(px_as_completed_next(it, PX_FOREVER, &out), 0);
			assert_ptr_equal(out, t.f);
		}
		assert_int_equal(pthread_join(c, NULL), 0);
		if (second)
			assert_int_equal(pthread_join(w, NULL), 0);
		int64_t v;
		assert_int_equal(px_future_get_i64(t.f, 0, &v), 0);
		assert_int_equal(v, 9);
		px_as_completed_close(it);
		px_future_release(t.f);
		assert_int_equal(bad, 0);
	}
}

/* A forever wait per round: a lost wake-up hangs the test (CTest timeout). */
static void forever_waits_wake(void **state)
{
	(void)state;
	long rounds = test_scaled(1000);
	for (long r = 0; r < rounds; r++) {
		struct tiny t = { .seed = (uint32_t)r * 31u + 1 };
		assert_int_equal(px_promise_create(&t.f), 0);
		pthread_t c;
		assert_int_equal(pthread_create(&c, NULL, tiny_completer, &t), 0);
		atomic_store(&t.go, 1);
		if (r & 1) {
			assert_int_equal(px_future_wait(t.f, PX_FOREVER), 0);
		} else {
			bool done;
			assert_int_equal(px_wait(&t.f, 1, PX_FIRST_COMPLETED,
						 PX_FOREVER, &done), 1);
			assert_true(done);
		}
		assert_int_equal(pthread_join(c, NULL), 0);
		px_future_release(t.f);
	}
}

int main(void)
{
	unsetenv("PAREX_EXECUTOR");
	unsetenv("PAREX_CONFIG");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(wait_modes_race_completion),
		cmocka_unit_test(as_completed_race_completion_and_close),
		cmocka_unit_test(callbacks_release_and_cancel),
		cmocka_unit_test(cancel_races_start_and_shutdown),
		cmocka_unit_test(submitters_vs_shutdown),
		cmocka_unit_test(futures_freed_by_other_threads),
		cmocka_unit_test(gil_waits_inside_tasks),
		cmocka_unit_test(map_timeout_cancels),
		cmocka_unit_test(tiny_timeouts),
		cmocka_unit_test(forever_waits_wake),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
