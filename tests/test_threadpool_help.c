/*
 * tests/test_threadpool_help.c - the thread pool's helping waiters (key
 * `help`, threadpool/help.c): a thread that waits with no deadline for a
 * task no worker has started runs it itself, in place of a sleeping worker.
 * Checks that it happens, exactly once per task, within the pool's worker
 * count and ids; that it does not happen where the contract says not
 * (help=0, a timed wait, an initializer, gil=1, a wait for the first of
 * several, a future with a done callback); that shutdown and destroy
 * wait for a task a waiter runs; and that a task waiting for a task of its
 * own one-worker pool finishes, with the nesting bounded.
 *
 * Pools here use spin_us=0, so that idle workers park at once and a waiter
 * finds one asleep; whether the waiter or the woken worker gets a task is a
 * race, so cases that need a helped run retry until they get one.
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

/* What a task learns about where it ran. */
struct where_arg {
	pthread_t caller; /* the thread that submits and waits */
	int64_t value;
	_Atomic int *runs; /* runs[value]++ when not NULL */
	_Atomic int *busy; /* per worker id: a task with that id is running */
	_Atomic int *overlap;
};

/* Returns value * 4 + 2 * (ran on the caller) + (id out of range or shared). */
static int where_task(px_task *t, const void *arg, size_t len)
{
	struct where_arg a;
	if (len != sizeof(a))
		return -EINVAL;
	memcpy(&a, arg, sizeof(a));
	int id = px_task_worker_id(t);
	int bad = id < 0 || id >= 64;
	if (!bad && a.busy) {
		if (atomic_exchange(&a.busy[id], 1))
			atomic_fetch_add(a.overlap, 1);
		for (volatile int i = 0; i < 2000; i++)
			;
		atomic_store(&a.busy[id], 0);
	}
	if (a.runs)
		atomic_fetch_add(&a.runs[a.value], 1);
	int64_t r = a.value * 4 + 2 * !!pthread_equal(pthread_self(), a.caller) +
		    bad;
	return px_task_return(t, &r, sizeof(r));
}

/* n round trips on ex, each after letting the workers park; returns how
 * many ran on the calling thread. Checks every result. timeout_ns: the
 * wait's (PX_FOREVER or a bound). */
static int round_trips(px_executor *ex, int n, int64_t timeout_ns)
{
	int here = 0;
	for (int i = 0; i < n; i++) {
		usleep(300);
		struct where_arg a = { .caller = pthread_self(), .value = i };
		px_future *f;
		assert_int_equal(px_executor_submit(ex, where_task, &a, sizeof(a),
						    NULL, &f), 0);
		assert_int_equal(px_future_wait(f, timeout_ns), 0);
		int64_t r;
		assert_int_equal(px_future_get_i64(f, 0, &r), 0);
		assert_int_equal(r / 4, i);
		assert_int_equal(r & 1, 0); /* id in range */
		here += (r & 2) != 0;
		px_future_release(f);
	}
	return here;
}

static void waiter_runs_its_task_in_place_of_a_sleeping_worker(void **state)
{
	(void)state;
	px_executor *ex = open_ex("thread:workers=2,spin_us=0");
	/* Some of them: the woken worker wins the others. */
	int here = round_trips(ex, 300, PX_FOREVER);
	assert_true(here > 0);
	px_executor_stats st;
	assert_int_equal(px_executor_stats_get(ex, &st), 0);
	px_executor_destroy(ex);
	/* Counted once each, with the time they took. */
	assert_int_equal(st.completed, 300);
	assert_int_equal(st.cancelled, 0);
	assert_int_equal(st.running, 0);
	assert_true(st.busy_ns > 0);
}

static int init_ok(int id, void *arg)
{
	(void)id;
	(void)arg;
	return 0;
}

/* Where the contract says no: the task always runs on a worker. */
static void no_help_where_the_contract_says_not(void **state)
{
	(void)state;
	const char *specs[] = { "thread:workers=2,spin_us=0,help=0",
				"thread:workers=2,spin_us=0,gil=1" };
	for (size_t k = 0; k < 2; k++) {
		px_executor *ex = open_ex(specs[k]);
		assert_int_equal(round_trips(ex, 200, PX_FOREVER), 0);
		px_executor_destroy(ex);
	}
	/* A timed wait must return on time: it never runs the task. */
	px_executor *ex = open_ex("thread:workers=2,spin_us=0");
	assert_int_equal(round_trips(ex, 200, 10 * (int64_t)1000000000), 0);
	px_executor_destroy(ex);
	/* An initializer: the waiter's thread never ran it. */
	px_config *cfg;
	assert_int_equal(px_config_create(&cfg), 0);
	assert_int_equal(px_config_apply(cfg, "thread:workers=2,spin_us=0", NULL), 0);
	px_config_set_initializer(cfg, init_ok, NULL);
	assert_int_equal(px_executor_create(&ex, cfg), 0);
	px_config_destroy(cfg);
	assert_int_equal(round_trips(ex, 200, PX_FOREVER), 0);
	px_executor_destroy(ex);
}

/* Many submitters and waiters: every task runs exactly once, with the
 * right result, never two at once under one worker id, never more at once
 * than the pool has workers. */
enum { STRESS_THREADS = 4 };

struct stress {
	px_executor *ex;
	int per_thread;
	atomic_int base;
	_Atomic int *runs;
	_Atomic int *busy;
	_Atomic int *overlap;
	atomic_int helped;
	atomic_int failed;
};

static void *stress_thread(void *p)
{
	struct stress *s = p;
	int base = atomic_fetch_add(&s->base, s->per_thread);
	for (int i = 0; i < s->per_thread; i++) {
		if (i % 8 == 0)
			usleep(100); /* let workers park now and then */
		struct where_arg a = { pthread_self(), base + i, s->runs, s->busy,
				       s->overlap };
		px_future *f;
		int64_t r = -1;
		if (px_executor_submit(s->ex, where_task, &a, sizeof(a), NULL, &f)) {
			atomic_fetch_add(&s->failed, 1);
			continue;
		}
		if (px_future_get_i64(f, PX_FOREVER, &r) || r / 4 != base + i ||
		    (r & 1))
			atomic_fetch_add(&s->failed, 1);
		atomic_fetch_add(&s->helped, (r & 2) != 0);
		px_future_release(f);
	}
	return NULL;
}

static void helped_tasks_run_exactly_once(void **state)
{
	(void)state;
	const char *specs[] = { "thread:workers=2,spin_us=0",
				"thread:workers=1,spin_us=0" };
	for (size_t k = 0; k < 2; k++) {
		struct stress s = { .ex = open_ex(specs[k]),
				    .per_thread = (int)test_scaled(3000) };
		int total = STRESS_THREADS * s.per_thread;
		s.runs = calloc((size_t)total, sizeof(*s.runs));
		s.busy = calloc(64, sizeof(*s.busy));
		s.overlap = calloc(1, sizeof(*s.overlap));
		assert_non_null(s.runs);
		pthread_t th[STRESS_THREADS];
		for (int i = 0; i < STRESS_THREADS; i++)
			assert_int_equal(pthread_create(&th[i], NULL, stress_thread, &s), 0);
		for (int i = 0; i < STRESS_THREADS; i++)
			pthread_join(th[i], NULL);
		assert_int_equal(atomic_load(&s.failed), 0);
		for (int v = 0; v < total; v++)
			assert_int_equal(atomic_load(&s.runs[v]), 1);
		/* One worker id, one task at a time. */
		assert_int_equal(atomic_load(s.overlap), 0);
		px_executor_stats st;
		assert_int_equal(px_executor_stats_get(s.ex, &st), 0);
		assert_int_equal(st.completed, (uint64_t)total);
		px_executor_destroy(s.ex);
		fprintf(stderr, "%s: %d of %d tasks ran in their waiter\n",
			specs[k], atomic_load(&s.helped), total);
		free(s.runs);
		free(s.busy);
		free(s.overlap);
	}
}

/* A task held in its waiter: runs until `release`, reporting whether it
 * runs on the caller. */
struct held {
	pthread_t caller;
	atomic_int started; /* 1: running on the caller; 2: elsewhere */
	atomic_int release;
	atomic_int finished;
};

static int held_task(px_task *t, const void *arg, size_t len)
{
	(void)len;
	struct held *h = *(struct held *const *)arg;
	if (!pthread_equal(pthread_self(), h->caller)) {
		atomic_store(&h->started, 2);
		return 0;
	}
	atomic_store(&h->started, 1);
	while (!atomic_load(&h->release))
		px_task_sleep(t, 1000000);
	px_task_sleep(t, 50000000); /* still running when shutdown starts */
	atomic_store(&h->finished, 1);
	return 0;
}

struct waiter {
	px_executor *ex;
	struct held *h;
	px_future *f;
	int rc;
};

static void *waiter_thread(void *p)
{
	struct waiter *w = p;
	w->h->caller = pthread_self();
	w->rc = px_executor_submit(w->ex, held_task, &w->h, sizeof(w->h), NULL,
				   &w->f);
	if (!w->rc)
		w->rc = px_future_wait(w->f, PX_FOREVER);
	return NULL;
}

/* Starts a waiter thread whose task runs in it (retrying while a woken
 * worker wins the race). Returns with the task running in the waiter. */
static void start_helped(px_executor *ex, struct held *h, struct waiter *w,
			 pthread_t *th)
{
	for (int attempt = 0;; attempt++) {
		assert_true(attempt < 1000);
		memset(h, 0, sizeof(*h));
		*w = (struct waiter){ .ex = ex, .h = h };
		usleep(500); /* workers park */
		assert_int_equal(pthread_create(th, NULL, waiter_thread, w), 0);
		while (!atomic_load(&h->started))
			usleep(100);
		if (atomic_load(&h->started) == 1)
			return;
		pthread_join(*th, NULL);
		assert_int_equal(w->rc, 0);
		px_future_release(w->f);
	}
}

/* Releases the held task from another thread a little later. */
static void *releaser(void *p)
{
	usleep(20000);
	atomic_store(&((struct held *)p)->release, 1);
	return NULL;
}

static void shutdown_waits_for_a_task_its_waiter_runs(void **state)
{
	(void)state;
	px_executor *ex = open_ex("thread:workers=2,spin_us=0");
	struct held h;
	struct waiter w;
	pthread_t th, rel;
	start_helped(ex, &h, &w, &th);
	assert_int_equal(pthread_create(&rel, NULL, releaser, &h), 0);
	assert_int_equal(px_executor_shutdown(ex, true, false), 0);
	/* The task the waiter runs finished before shutdown returned. */
	assert_int_equal(atomic_load(&h.finished), 1);
	pthread_join(rel, NULL);
	pthread_join(th, NULL);
	assert_int_equal(w.rc, 0);
	assert_int_equal(px_future_state_get(w.f), PX_FUTURE_DONE);
	px_future_release(w.f);
	px_executor_destroy(ex);
}

static void destroy_races_a_helping_waiter(void **state)
{
	(void)state;
	for (int round = 0; round < (int)test_scaled(20); round++) {
		px_executor *ex = open_ex("thread:workers=2,spin_us=0");
		struct held h;
		struct waiter w;
		pthread_t th, rel;
		start_helped(ex, &h, &w, &th);
		assert_int_equal(pthread_create(&rel, NULL, releaser, &h), 0);
		/* Frees the pool only once the waiter is done with it (a use
		 * after free here is ASan's to find). */
		px_executor_destroy(ex);
		assert_int_equal(atomic_load(&h.finished), 1);
		pthread_join(rel, NULL);
		pthread_join(th, NULL);
		assert_int_equal(w.rc, 0);
		assert_int_equal(px_future_error(w.f), 0);
		px_future_release(w.f);
	}
}

/* A task that waits for a task of its own pool, n deep: the worker (or the
 * waiter) runs the awaited one nested. */
static _Thread_local int tls_nesting;
static atomic_int max_nesting;

struct chain {
	px_executor *ex;
	int n;
};

static int chain_task(px_task *t, const void *arg, size_t len)
{
	(void)len;
	struct chain c;
	memcpy(&c, arg, sizeof(c));
	int d = ++tls_nesting;
	for (int m = atomic_load(&max_nesting); d > m;)
		if (atomic_compare_exchange_weak(&max_nesting, &m, d))
			break;
	int64_t r = 0;
	if (c.n > 0) {
		struct chain next = { c.ex, c.n - 1 };
		px_future *f;
		int e = px_executor_submit(c.ex, chain_task, &next, sizeof(next),
					   NULL, &f);
		if (!e)
			e = px_future_get_i64(f, PX_FOREVER, &r);
		if (!e)
			px_future_release(f);
		if (e) {
			tls_nesting--;
			return e;
		}
	}
	tls_nesting--;
	r++;
	return px_task_return(t, &r, sizeof(r));
}

static int task_waiting_for_a_task_of_its_own_pool_in_child(void)
{
	/* One worker: without help the second task would wait forever for
	 * a worker. The worker (or the waiter, in its place) runs each
	 * awaited task nested: 8 deep on the first. */
	px_executor *ex = open_ex("thread:workers=1");
	struct chain c = { ex, 8 };
	px_future *f;
	int64_t r = 0;
	if (px_executor_submit(ex, chain_task, &c, sizeof(c), NULL, &f) ||
	    px_future_get_i64(f, PX_FOREVER, &r) || r != 9)
		return 1;
	px_future_release(f);
	if (atomic_load(&max_nesting) != 9) {
		fprintf(stderr, "nested %d deep\n", atomic_load(&max_nesting));
		return 2;
	}
	px_executor_destroy(ex);
	/* Deeper than the bound: the worker stops nesting at 8 and waits
	 * (for good: nobody else can run the rest). The test's own wait is
	 * timed, so it never runs a task. The child exits with the pool
	 * stuck. */
	ex = open_ex("thread:workers=1");
	atomic_store(&max_nesting, 0);
	c = (struct chain){ ex, 12 };
	if (px_executor_submit(ex, chain_task, &c, sizeof(c), NULL, &f) ||
	    px_future_wait(f, 300 * (int64_t)1000000) != -ETIMEDOUT)
		return 3;
	if (atomic_load(&max_nesting) != 9) {
		fprintf(stderr, "nested %d deep\n", atomic_load(&max_nesting));
		return 4;
	}
	return 0;
}

TEST_IN_CHILD(task_waiting_for_a_task_of_its_own_pool, 60)

/* px_wait(FIRST_COMPLETED) waits for any of its futures, not for one in
 * particular: it must not run a task that waits for what the waiter does
 * once the wait returns (here the first, released after the wait). */
static int wait_flag(px_task *t, const void *arg, size_t len)
{
	(void)len;
	atomic_int *flag = *(atomic_int *const *)arg;
	while (!atomic_load(flag))
		px_task_sleep(t, 100000);
	return 0;
}

static void *set_later(void *p)
{
	usleep(2000);
	px_promise_set_i64(p, 1);
	return NULL;
}

static int first_completed_runs_nothing_in_the_waiter_in_child(void)
{
	px_executor *ex = open_ex("thread:workers=2,spin_us=0");
	for (int i = 0; i < (int)test_scaled(300); i++) {
		atomic_int flag = 0;
		atomic_int *fp = &flag;
		px_future *fs[2];
		pthread_t th;
		usleep(300); /* both workers park; the submit wakes one */
		if (px_executor_submit(ex, wait_flag, &fp, sizeof(fp), NULL, &fs[0]) ||
		    px_promise_create(&fs[1]) ||
		    pthread_create(&th, NULL, set_later, fs[1]))
			return 1;
		/* The promise ends the wait; a hang here (the harness's
		 * alarm) means the waiter ran the flag task. */
		if (px_wait(fs, 2, PX_FIRST_COMPLETED, PX_FOREVER, NULL) < 1)
			return 2;
		atomic_store(&flag, 1);
		pthread_join(th, NULL);
		if (px_wait(fs, 2, PX_ALL_COMPLETED, PX_FOREVER, NULL) != 2)
			return 3;
		px_future_release(fs[0]);
		px_future_release(fs[1]);
	}
	px_executor_destroy(ex);
	return 0;
}

TEST_IN_CHILD(first_completed_runs_nothing_in_the_waiter, 120)

/* A future with a done callback is left to the workers: the callback runs
 * where it did without helping, never in the waiter. */
static void note_thread(px_future *f, void *arg)
{
	(void)f;
	struct held *h = arg;
	if (pthread_equal(pthread_self(), h->caller))
		atomic_fetch_add(&h->started, 1);
}

static void callbacks_keep_their_task_on_a_worker(void **state)
{
	(void)state;
	px_executor *ex = open_ex("thread:workers=2,spin_us=0");
	struct held h = { .caller = pthread_self() };
	for (int i = 0; i < 300; i++) {
		usleep(300);
		struct where_arg a = { .caller = pthread_self(), .value = i };
		px_future *f;
		assert_int_equal(px_executor_submit(ex, where_task, &a, sizeof(a),
						    NULL, &f), 0);
		assert_int_equal(px_future_on_done(f, note_thread, &h), 0);
		int64_t r;
		assert_int_equal(px_future_get_i64(f, PX_FOREVER, &r), 0);
		/* Ran on a worker, or was done before the callback was
		 * added (then the callback ran here, at once: not counted
		 * apart, so only the task's own report is checked). */
		assert_int_equal(r & 2, 0);
		px_future_release(f);
	}
	px_executor_destroy(ex);
}

/* A task run by its waiter sees px_task_cancelled() like any other. */
static int until_cancelled(px_task *t, const void *arg, size_t len)
{
	(void)len;
	struct held *h = *(struct held *const *)arg;
	atomic_store(&h->started, pthread_equal(pthread_self(), h->caller) ? 1 : 2);
	while (!px_task_cancelled(t))
		px_task_sleep(t, 1000000);
	return 0;
}

struct cwaiter {
	px_executor *ex;
	struct held *h;
	px_future *f;
	int rc;
	atomic_int submitted; /* f is set */
};

static void *cancel_waiter(void *p)
{
	struct cwaiter *w = p;
	w->h->caller = pthread_self();
	w->rc = px_executor_submit(w->ex, until_cancelled, &w->h, sizeof(w->h),
				   NULL, &w->f);
	atomic_store(&w->submitted, 1);
	if (!w->rc)
		w->rc = px_future_wait(w->f, PX_FOREVER);
	return NULL;
}

static void cooperative_cancel_reaches_a_helped_task(void **state)
{
	(void)state;
	px_executor *ex = open_ex("thread:workers=2,spin_us=0");
	int helped = 0;
	for (int attempt = 0; attempt < 200 && !helped; attempt++) {
		struct held h = { 0 };
		struct cwaiter w = { ex, &h, NULL, 0, 0 };
		pthread_t th;
		usleep(500);
		assert_int_equal(pthread_create(&th, NULL, cancel_waiter, &w), 0);
		while (!atomic_load(&h.started) || !atomic_load(&w.submitted))
			usleep(100);
		helped = atomic_load(&h.started) == 1;
		assert_int_equal(px_future_cancel(w.f, PX_CANCEL_RUNNING), 0);
		pthread_join(th, NULL);
		assert_int_equal(w.rc, 0);
		assert_int_equal(px_future_state_get(w.f), PX_FUTURE_CANCELLED);
		px_future_release(w.f);
	}
	assert_true(helped);
	px_executor_destroy(ex);
}

/* Destroying the pool from a done callback is supported on every thread a
 * callback may run on. Here the callback runs inside a wait_help call that
 * uses the pool: on a waiter running the task in a borrowed worker's place
 * (the callback is added while it runs), and on a worker running an
 * awaited task nested. Destroy must not wait for its own thread's pin; the
 * help frame destroys the pool once it is done with it. */
static px_executor *dcb_ex;
static px_future *dcb_f;
static pthread_t dcb_caller;
static _Atomic int dcb_started, dcb_on_caller, dcb_added, dcb_destroyed;

static int dcb_gate_task(px_task *t, const void *arg, size_t len)
{
	(void)arg;
	(void)len;
	atomic_store(&dcb_on_caller, pthread_equal(pthread_self(), dcb_caller));
	atomic_store(&dcb_started, 1);
	while (!atomic_load(&dcb_added))
		usleep(100);
	int64_t r = 7;
	return px_task_return(t, &r, sizeof r);
}

static void dcb_destroy(px_future *f, void *arg)
{
	(void)f;
	px_executor_destroy(arg);
	atomic_store(&dcb_destroyed, 1);
}

static void *dcb_adder(void *arg)
{
	(void)arg;
	while (!atomic_load(&dcb_started))
		usleep(50);
	if (atomic_load(&dcb_on_caller))
		px_future_on_done(dcb_f, dcb_destroy, dcb_ex);
	atomic_store(&dcb_added, 1);
	return NULL;
}

static int destroy_from_a_callback_on_a_helping_waiter_in_child(void)
{
	dcb_caller = pthread_self();
	for (int i = 0; i < 2000; i++) {
		dcb_ex = open_ex("thread:workers=2,spin_us=0");
		usleep(300); /* let the workers park */
		atomic_store(&dcb_started, 0);
		atomic_store(&dcb_added, 0);
		atomic_store(&dcb_on_caller, 0);
		if (px_executor_submit(dcb_ex, dcb_gate_task, NULL, 0, NULL, &dcb_f))
			return 1;
		pthread_t th;
		pthread_create(&th, NULL, dcb_adder, NULL);
		int64_t v = 0;
		int r = px_future_get_i64(dcb_f, PX_FOREVER, &v);
		pthread_join(th, NULL);
		if (r || v != 7) {
			fprintf(stderr, "result %d, %lld\n", r, (long long)v);
			return 1;
		}
		px_future_release(dcb_f);
		if (atomic_load(&dcb_on_caller)) {
			/* The callback ran here, inside the wait: it has
			 * destroyed the pool by the time the wait returned. */
			if (!atomic_load(&dcb_destroyed)) {
				fprintf(stderr, "destroy did not return\n");
				return 1;
			}
			return 0;
		}
		px_executor_destroy(dcb_ex);
	}
	fprintf(stderr, "no helped run in 2000 tries: nothing checked\n");
	return 1;
}
TEST_IN_CHILD(destroy_from_a_callback_on_a_helping_waiter, 60)

static int dcb_outer_task(px_task *t, const void *arg, size_t len)
{
	(void)arg;
	(void)len;
	px_future *g;
	if (px_executor_submit(dcb_ex, dcb_gate_task, NULL, 0, NULL, &g))
		return -EIO;
	dcb_f = g;
	int64_t v = 0;
	int r = px_future_get_i64(g, PX_FOREVER, &v); /* runs g nested */
	px_future_release(g);
	int64_t out = r ? r : v;
	return px_task_return(t, &out, sizeof out);
}

static int destroy_from_a_callback_on_a_nested_worker_in_child(void)
{
	dcb_ex = open_ex("thread:workers=1,spin_us=0");
	atomic_store(&dcb_started, 0);
	atomic_store(&dcb_added, 0);
	atomic_store(&dcb_destroyed, 0);
	px_future *t;
	if (px_executor_submit(dcb_ex, dcb_outer_task, NULL, 0, NULL, &t))
		return 1;
	while (!atomic_load(&dcb_started))
		usleep(100);
	px_future_on_done(dcb_f, dcb_destroy, dcb_ex);
	atomic_store(&dcb_added, 1);
	int64_t v = 0;
	int r = px_future_get_i64(t, PX_FOREVER, &v);
	if (r || v != 7 || !atomic_load(&dcb_destroyed)) {
		fprintf(stderr, "outer %d, %lld, destroyed %d\n", r,
			(long long)v, atomic_load(&dcb_destroyed));
		return 1;
	}
	px_future_release(t);
	return 0;
}
TEST_IN_CHILD(destroy_from_a_callback_on_a_nested_worker, 60)

int main(void)
{
	unsetenv("PAREX_EXECUTOR");
	unsetenv("PAREX_CONFIG");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(waiter_runs_its_task_in_place_of_a_sleeping_worker),
		cmocka_unit_test(no_help_where_the_contract_says_not),
		cmocka_unit_test(helped_tasks_run_exactly_once),
		cmocka_unit_test(shutdown_waits_for_a_task_its_waiter_runs),
		cmocka_unit_test(destroy_races_a_helping_waiter),
		cmocka_unit_test(task_waiting_for_a_task_of_its_own_pool),
		cmocka_unit_test(cooperative_cancel_reaches_a_helped_task),
		cmocka_unit_test(first_completed_runs_nothing_in_the_waiter),
		cmocka_unit_test(callbacks_keep_their_task_on_a_worker),
		cmocka_unit_test(destroy_from_a_callback_on_a_helping_waiter),
		cmocka_unit_test(destroy_from_a_callback_on_a_nested_worker),
	};
	if (getenv("PX_TEST_FILTER"))
		cmocka_set_test_filter(getenv("PX_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
