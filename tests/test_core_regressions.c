/*
 * tests/test_core_regressions.c - behaviours of the core that once broke,
 * each pinned by one case: a queue of one holds one task, shutdown from a
 * task during shutdown(wait), the GIL kept across nested blocking sections,
 * tasks popped in a batch not held hostage by a blocked worker, the future
 * cache not leaking from exiting threads, racing promise completions, a
 * cancel hook published by px_promise_start, as_completed seeing what
 * px_future_wait saw, an iterator closed from a callback, map's deadline
 * over a blocked submit, px_wait's count, and destroy from a worker's done
 * callback.
 *
 * Each case runs in a forked child under an alarm (test_run_in_child; 10 s
 * for most) and reports through its exit status: 0 sound, 1 wrong
 * behaviour, 2 or TEST_CHILD_SETUP_FAILED a failed setup; SIGALRM is a
 * hang. Any status but 0 fails the case.
 */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <parex/executor.h>

#include "test_util.h"

/* A task shuts its pool down while the main thread is in shutdown(wait):
 * neither deadlocks. */
static atomic_int main_in_shutdown;
static int shutdown_task(px_task *t, const void *a, size_t l)
{
	(void)a; (void)l;
	while (!atomic_load(&main_in_shutdown))
		usleep(1000);
	px_task_sleep(t, 50 * 1000000); /* main now holds shut_mu, joining */
	px_executor_shutdown(t ? *(px_executor **)a : NULL, false, false);
	return 0;
}
static int shutdown_from_task_during_shutdown_wait_returns_in_child(void)
{
	px_executor *ex = open_ex("thread:workers=2");
	px_future *f;
	if (px_executor_submit(ex, shutdown_task, &ex, sizeof(ex), NULL, &f))
		return 2;
	usleep(10000);
	atomic_store(&main_in_shutdown, 1);
	px_executor_shutdown(ex, true, false);
	px_future_release(f);
	px_executor_destroy(ex);
	return 0;
}

/* Nested blocking sections under gil=1 give the token back: no two tasks
 * compute at once afterwards. */
static atomic_int inside, overlap;
static int nested_task(px_task *t, const void *a, size_t l)
{
	(void)a; (void)l;
	px_task_blocking_begin(t);
	px_task_sleep(t, 100000); /* nested blocking section */
	px_task_blocking_end(t);
	/* Now computing: must hold the GIL. */
	for (int k = 0; k < 20; k++) {
		if (atomic_fetch_add(&inside, 1) != 0)
			atomic_store(&overlap, 1);
		volatile uint64_t x = 0;
		for (int i = 0; i < 20000; i++)
			x += (uint64_t)i;
		atomic_fetch_sub(&inside, 1);
	}
	return 0;
}
static int gil_kept_after_nested_blocking_sections_in_child(void)
{
	px_executor *ex = open_ex("thread:workers=2,gil=1");
	px_future *fs[40];
	for (int i = 0; i < 40; i++)
		if (px_executor_submit(ex, nested_task, NULL, 0, NULL, &fs[i]))
			return 2;
	for (int i = 0; i < 40; i++) {
		px_future_wait(fs[i], PX_FOREVER);
		px_future_release(fs[i]);
	}
	px_executor_destroy(ex);
	if (atomic_load(&overlap))
		fprintf(stderr, "two tasks computed at once under gil=1\n");
	return atomic_load(&overlap) ? 1 : 0;
}

/* A task waits on a task queued right after it: a batch pop must not hold
 * the second hostage in the same worker while the other worker idles. */
static int waiter_task(px_task *t, const void *a, size_t l)
{
	(void)t; (void)l;
	px_future *p = *(px_future *const *)a;
	px_future_wait(p, PX_FOREVER);
	return 0;
}
static int setter_task(px_task *t, const void *a, size_t l)
{
	(void)t; (void)l;
	px_promise_set_i64(*(px_future *const *)a, 1);
	return 0;
}
static int gate_task(px_task *t, const void *a, size_t l)
{
	(void)t; (void)l;
	px_future_wait(*(px_future *const *)a, PX_FOREVER);
	return 0;
}
static int batch_pop_holds_no_task_hostage_in_child(void)
{
	px_executor *ex = open_ex("thread:workers=2");
	enum { PAIRS = 200 };
	px_future *gate, *ps[PAIRS], *fs[2 * PAIRS + 2];
	px_promise_create(&gate);
	/* Both workers blocked on the gate, so the queue fills up first and
	 * the workers then pop in batches. */
	px_executor_submit(ex, gate_task, &gate, sizeof(gate), NULL, &fs[0]);
	px_executor_submit(ex, gate_task, &gate, sizeof(gate), NULL, &fs[1]);
	usleep(20000);
	for (int i = 0; i < PAIRS; i++) {
		px_promise_create(&ps[i]);
		px_executor_submit(ex, waiter_task, &ps[i], sizeof(ps[i]), NULL,
				   &fs[2 + 2 * i]);
		px_executor_submit(ex, setter_task, &ps[i], sizeof(ps[i]), NULL,
				   &fs[3 + 2 * i]);
	}
	px_promise_set_i64(gate, 0);
	for (int i = 0; i < 2 * PAIRS + 2; i++) {
		px_future_wait(fs[i], PX_FOREVER);
		px_future_release(fs[i]);
	}
	px_executor_destroy(ex);
	return 0;
}

/* Threads that only allocate futures hand their cached batch back when they
 * exit: the heap stays bounded over many such threads. */
static void *alloc_one(void *p)
{
	px_promise_create((px_future **)p);
	return NULL;
}
static void *alloc_release_many(void *p)
{
	(void)p;
	px_future *fs[256];
	for (int i = 0; i < 256; i++)
		px_promise_create(&fs[i]);
	for (int i = 0; i < 256; i++)
		px_future_release(fs[i]);
	return NULL;
}
static int future_cache_does_not_leak_from_exiting_threads_in_child(void)
{
	size_t before = 0;
	for (int round = 0; round < 400; round++) {
		pthread_t th;
		px_future *f = NULL;
		pthread_create(&th, NULL, alloc_release_many, NULL);
		pthread_join(th, NULL); /* its exit spills 256 to the global list */
		pthread_create(&th, NULL, alloc_one, &f);
		pthread_join(th, NULL); /* pulls that batch, takes 1, exits */
		px_future_release(f);
		if (round == 20)
			before = mallinfo2().uordblks;
	}
	size_t after = mallinfo2().uordblks;
	fprintf(stderr, "heap in use grew by %zu bytes over 380 rounds\n",
		after - before);
	return after - before > (4u << 20) ? 1 : 0;
}

/* Two concurrent completions of one promise: exactly one wins, and the
 * loser's copy neither lands in nor frees the winner's published result. */
static px_future *race_f;
static pthread_barrier_t bar;
static atomic_int wins[2];
static void *setter(void *p)
{
	int id = (int)(intptr_t)p;
	unsigned char buf[64];
	memset(buf, 'a' + id, sizeof(buf));
	for (;;) {
		pthread_barrier_wait(&bar);
		if (!race_f)
			return NULL;
		if (px_promise_set_result(race_f, buf, sizeof(buf)) == 0)
			atomic_store(&wins[id], 1);
		pthread_barrier_wait(&bar);
	}
}
static int racing_promise_sets_keep_the_winners_result_in_child(void)
{
	int bad = 0;
	pthread_barrier_init(&bar, NULL, 3);
	pthread_t a, b;
	pthread_create(&a, NULL, setter, (void *)0);
	pthread_create(&b, NULL, setter, (void *)1);
	for (int i = 0; i < 5000 && !bad; i++) {
		px_promise_create(&race_f);
		atomic_store(&wins[0], 0);
		atomic_store(&wins[1], 0);
		pthread_barrier_wait(&bar);
		pthread_barrier_wait(&bar);
		size_t len;
		const unsigned char *r = px_future_result(race_f, &len);
		int w = atomic_load(&wins[0]) ? 0 : 1;
		if (atomic_load(&wins[0]) + atomic_load(&wins[1]) != 1 || !r ||
		    len != 64 || r[0] != 'a' + w || r[63] != 'a' + w) {
			fprintf(stderr, "round %d: winner %c, result %c..%c\n", i,
				'a' + w, r ? r[0] : '?', r ? r[63] : '?');
			bad = 1;
		}
		px_future_release(race_f);
	}
	race_f = NULL;
	pthread_barrier_wait(&bar);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	return bad;
}

/* A cancel hook set before px_promise_start is seen by a canceller that saw
 * RUNNING (the start publishes it: no race under TSan). */
static int stop_fn(px_future *f, void *arg)
{
	(void)arg;
	return px_promise_set_cancelled(f);
}
static px_future *cf;
static void *canceller(void *p)
{
	(void)p;
	while (px_future_state_get(cf) != PX_FUTURE_RUNNING)
		;
	return (void *)(intptr_t)px_future_cancel(cf, PX_CANCEL_RUNNING);
}
static int cancel_hook_is_published_by_start_in_child(void)
{
	for (int i = 0; i < 200; i++) {
		px_promise_create(&cf);
		pthread_t th;
		pthread_create(&th, NULL, canceller, NULL);
		usleep(100);
		px_promise_on_cancel(cf, stop_fn, NULL);
		px_promise_start(cf);
		void *r;
		pthread_join(th, &r);
		if ((intptr_t)r != 0)
			return 1;
		px_future_release(cf);
	}
	return 0;
}

/* Once px_future_wait saw f done, px_as_completed_next(0) yields it, even
 * while f's earlier done callbacks still run. */
static void slow_cb(px_future *f, void *arg)
{
	(void)f; (void)arg;
	usleep(50000);
}
static void *complete_later(void *p)
{
	usleep(10000);
	px_promise_set_i64(p, 7);
	return NULL;
}
static int as_completed_yields_what_wait_saw_done_in_child(void)
{
	px_future *f;
	px_promise_create(&f);
	px_future_on_done(f, slow_cb, NULL);
	px_as_completed *it;
	px_as_completed_open(&it, &f, 1);
	pthread_t th;
	pthread_create(&th, NULL, complete_later, f);
	px_future_wait(f, PX_FOREVER);
	px_future *out = NULL;
	int r = px_as_completed_next(it, 0, &out);
	pthread_join(th, NULL);
	px_as_completed_close(it);
	px_future_release(f);
	if (r)
		fprintf(stderr, "next(0) after a visible completion: %d\n", r);
	return r ? 1 : 0;
}

/* A done callback may close an iterator over its own future. */
static px_as_completed *cb_it;
static void close_cb(px_future *f, void *arg)
{
	(void)f; (void)arg;
	px_as_completed_close(cb_it);
}
static int iterator_closed_from_its_futures_callback_in_child(void)
{
	px_future *f;
	px_promise_create(&f);
	px_future_on_done(f, close_cb, NULL);
	px_as_completed_open(&cb_it, &f, 1);
	px_promise_set_i64(f, 1);
	px_future_release(f);
	return 0;
}

/* map's timeout also bounds a submit blocked on a full queue. */
static atomic_int ran;
static int slow_rec(px_task *t, const void *a, size_t l)
{
	(void)a; (void)l;
	atomic_fetch_add(&ran, 1);
	px_task_sleep(t, 50 * 1000000);
	return 0;
}
static int map_timeout_bounds_a_blocked_submit_in_child(void)
{
	px_executor *ex = open_ex("thread:workers=1,queue=2");
	int args[10] = { 0 }, errs[10];
	px_map_opts o = { .chunk = 1, .timeout_ns = 20 * 1000000,
			  .errors = errs };
	int r = px_executor_map(ex, slow_rec, args, sizeof(int), 10, NULL, 0, &o);
	px_executor_destroy(ex);
	fprintf(stderr, "map returned %d after %d of 10 records ran\n", r,
		atomic_load(&ran));
	return atomic_load(&ran) > 4 ? 1 : 0;
}

/* px_wait's count agrees with done[] while futures complete meanwhile. */
static px_future *wf[64];
static atomic_int wgo;
static void *completer(void *p)
{
	(void)p;
	while (!atomic_load(&wgo))
		;
	for (int i = 0; i < 64; i++)
		px_promise_set_i64(wf[i], i);
	return NULL;
}
static int wait_count_matches_done_flags_in_child(void)
{
	int bad = 0;
	for (int round = 0; round < 3000 && !bad; round++) {
		for (int i = 0; i < 64; i++)
			px_promise_create(&wf[i]);
		atomic_store(&wgo, 0);
		pthread_t th;
		pthread_create(&th, NULL, completer, NULL);
		atomic_store(&wgo, 1);
		bool done[64];
		int r = px_wait(wf, 64, PX_FIRST_COMPLETED, PX_FOREVER, done);
		int cnt = 0;
		for (int i = 0; i < 64; i++)
			cnt += done[i];
		if (r != cnt) {
			fprintf(stderr, "px_wait returned %d, done[] has %d\n", r, cnt);
			bad = 1;
		}
		pthread_join(th, NULL);
		for (int i = 0; i < 64; i++)
			px_future_release(wf[i]);
	}
	return bad;
}

/* queue=1 with a busy worker takes one task: a producer must not take the
 * slot its predecessor just published (and overwrite that task). */
static atomic_int q1ran;
static int count_task(px_task *t, const void *a, size_t l)
{
	(void)t; (void)a; (void)l;
	atomic_fetch_add(&q1ran, 1);
	return 0;
}
static int queue_of_one_keeps_every_task_in_child(void)
{
	px_executor *ex = open_ex("thread:workers=1,queue=1");
	px_future *g, *fs[100];
	px_promise_create(&g);
	px_future *gf;
	px_executor_submit(ex, gate_task, &g, sizeof(g), NULL, &gf);
	usleep(20000); /* the worker is inside gate_task */
	int accepted = 0;
	px_submit_opts nowait = { .flags = PX_SUBMIT_NOWAIT };
	for (int i = 0; i < 100; i++)
		if (px_executor_submit(ex, count_task, NULL, 0, &nowait, &fs[accepted]) == 0)
			accepted++;
	fprintf(stderr, "queue=1 with a busy worker accepted %d of 100\n", accepted);
	return accepted > 1 ? 1 : 0;
}

/* The last future's done callback may destroy the executor from a worker:
 * destroy then skips joining that worker without freeing the pool under
 * it. */
static void destroy_cb(px_future *f, void *arg)
{
	(void)f;
	px_executor_destroy(arg);
}
static int destroy_from_a_workers_done_callback_in_child(void)
{
	px_executor *ex = open_ex("thread:workers=2");
	px_future *g, *gf, *f;
	px_promise_create(&g);
	px_executor_submit(ex, gate_task, &g, sizeof(g), NULL, &gf);
	px_executor_submit(ex, count_task, NULL, 0, NULL, &f);
	px_future_wait(f, PX_FOREVER);
	px_future_on_done(gf, destroy_cb, ex); /* runs in the worker */
	px_promise_set_i64(g, 0);
	px_future_wait(gf, PX_FOREVER);
	usleep(100000);
	return 0;
}

/* The cases, each in a forked child ------------------------------------------- */

TEST_IN_CHILD(shutdown_from_task_during_shutdown_wait_returns, 10)
TEST_IN_CHILD(gil_kept_after_nested_blocking_sections, 10)
TEST_IN_CHILD(batch_pop_holds_no_task_hostage, 10)
TEST_IN_CHILD(future_cache_does_not_leak_from_exiting_threads, 10)
TEST_IN_CHILD(racing_promise_sets_keep_the_winners_result, 10)
TEST_IN_CHILD(cancel_hook_is_published_by_start, 10)
TEST_IN_CHILD(as_completed_yields_what_wait_saw_done, 10)
TEST_IN_CHILD(iterator_closed_from_its_futures_callback, 10)
TEST_IN_CHILD(map_timeout_bounds_a_blocked_submit, 10)
/* 3000 rounds of thread creation take seconds under TSan on a loaded
 * machine: a longer alarm, which still only catches a hang. */
TEST_IN_CHILD(wait_count_matches_done_flags, 60)
TEST_IN_CHILD(queue_of_one_keeps_every_task, 10)
TEST_IN_CHILD(destroy_from_a_workers_done_callback, 10)

int main(void)
{
	unsetenv("PAREX_EXECUTOR");
	unsetenv("PAREX_CONFIG");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(shutdown_from_task_during_shutdown_wait_returns),
		cmocka_unit_test(gil_kept_after_nested_blocking_sections),
		cmocka_unit_test(batch_pop_holds_no_task_hostage),
		cmocka_unit_test(future_cache_does_not_leak_from_exiting_threads),
		cmocka_unit_test(racing_promise_sets_keep_the_winners_result),
		cmocka_unit_test(cancel_hook_is_published_by_start),
		cmocka_unit_test(as_completed_yields_what_wait_saw_done),
		cmocka_unit_test(iterator_closed_from_its_futures_callback),
		cmocka_unit_test(map_timeout_bounds_a_blocked_submit),
		cmocka_unit_test(wait_count_matches_done_flags),
		cmocka_unit_test(queue_of_one_keeps_every_task),
		cmocka_unit_test(destroy_from_a_workers_done_callback),
	};
	if (getenv("PX_TEST_FILTER"))
		cmocka_set_test_filter(getenv("PX_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
