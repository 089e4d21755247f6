/*
 * tests/test_future.c - the future state machine through the promise API:
 * completion exactly once, waits and timeouts, cancel races, callbacks,
 * px_wait modes, as-completed, reference counts, bad input.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <parex/future.h>

#include "test_util.h"

static void result_and_state(void **state)
{
	(void)state;
	px_future *f;
	assert_int_equal(px_promise_create(&f), 0);
	assert_int_equal(px_future_state_get(f), PX_FUTURE_PENDING);
	assert_false(px_future_is_done(f));
	assert_int_equal(px_future_error(f), -EAGAIN);
	assert_null(px_future_result(f, NULL));
	assert_int_equal(px_future_wait(f, 0), -ETIMEDOUT);
	assert_int_equal(px_promise_start(f), 0);
	assert_int_equal(px_future_state_get(f), PX_FUTURE_RUNNING);
	const char big[100] = "a result longer than the inline buffer";
	assert_int_equal(px_promise_set_result(f, big, sizeof(big)), 0);
	assert_int_equal(px_future_state_get(f), PX_FUTURE_DONE);
	assert_int_equal(px_future_wait(f, PX_FOREVER), 0);
	size_t len;
	const char *r = px_future_result(f, &len);
	assert_int_equal(len, sizeof(big));
	assert_memory_equal(r, big, sizeof(big));
	assert_int_equal(px_future_error(f), 0);
	/* Exactly once: every later completion is refused. */
	assert_int_equal(px_promise_set_i64(f, 5), -EALREADY);
	assert_int_equal(px_promise_set_error(f, -EIO, "late"), -EALREADY);
	assert_int_equal(px_promise_set_cancelled(f), -EALREADY);
	assert_int_equal(px_future_cancel(f, 0), -EBUSY);
	assert_memory_equal(px_future_result(f, NULL), big, sizeof(big));
	px_future_release(f);
}

static void error_with_message(void **state)
{
	(void)state;
	px_future *f;
	assert_int_equal(px_promise_create(&f), 0);
	assert_int_equal(px_promise_set_error(f, EPIPE, "peer went away"), 0);
	assert_int_equal(px_future_error(f), -EPIPE); /* positive is negated */
	assert_string_equal(px_future_message(f), "peer went away");
	size_t len = 99;
	assert_null(px_future_result(f, &len));
	assert_int_equal(len, 0);
	int64_t v;
	assert_int_equal(px_future_get_i64(f, 0, &v), -EPIPE);
	px_future_release(f);

	assert_int_equal(px_promise_create(&f), 0);
	assert_int_equal(px_promise_set_error(f, 0, NULL), 0);
	assert_int_equal(px_future_error(f), -EIO); /* 0 is not an error code */
	assert_null(px_future_message(f));
	px_future_release(f);
}

static void i64_results(void **state)
{
	(void)state;
	px_future *f;
	int64_t v = 0;
	assert_int_equal(px_promise_create(&f), 0);
	assert_int_equal(px_future_get_i64(f, 1000000, &v), -ETIMEDOUT);
	assert_int_equal(px_promise_set_i64(f, -42), 0);
	assert_int_equal(px_future_get_i64(f, PX_FOREVER, &v), 0);
	assert_int_equal(v, -42);
	px_future_release(f);

	assert_int_equal(px_promise_create(&f), 0);
	assert_int_equal(px_promise_set_result(f, "abc", 3), 0);
	assert_int_equal(px_future_get_i64(f, 0, &v), -EMSGSIZE);
	px_future_release(f);
}

static void cancel_semantics(void **state)
{
	(void)state;
	px_future *f;
	assert_int_equal(px_promise_create(&f), 0);
	assert_int_equal(px_future_cancel(f, 0), 0);
	assert_int_equal(px_future_cancel(f, 0), 0); /* idempotent */
	assert_int_equal(px_future_state_get(f), PX_FUTURE_CANCELLED);
	assert_int_equal(px_future_error(f), -ECANCELED);
	assert_int_equal(px_promise_start(f), -ECANCELED);
	assert_int_equal(px_promise_set_i64(f, 1), -EALREADY);
	assert_int_equal(px_future_wait(f, PX_FOREVER), 0);
	px_future_release(f);

	/* Running: plain cancel fails, as in Python. */
	assert_int_equal(px_promise_create(&f), 0);
	assert_int_equal(px_promise_start(f), 0);
	assert_int_equal(px_future_cancel(f, 0), -EBUSY);
	/* No producer hook: PX_CANCEL_RUNNING cannot stop it either. */
	assert_int_equal(px_future_cancel(f, PX_CANCEL_RUNNING), -EBUSY);
	assert_int_equal(px_future_cancel(f, 0x80), -EINVAL);
	assert_int_equal(px_promise_set_i64(f, 1), 0);
	px_future_release(f);
}

static int hook_calls;

static int stop_hook(px_future *f, void *arg)
{
	hook_calls++;
	assert_ptr_equal(arg, &hook_calls);
	return px_promise_set_cancelled(f);
}

static void cancel_running_hook(void **state)
{
	(void)state;
	px_future *f;
	hook_calls = 0;
	assert_int_equal(px_promise_create(&f), 0);
	px_promise_on_cancel(f, stop_hook, &hook_calls);
	assert_int_equal(px_promise_start(f), 0);
	assert_int_equal(px_future_cancel(f, PX_CANCEL_RUNNING), 0);
	assert_int_equal(hook_calls, 1);
	assert_int_equal(px_future_state_get(f), PX_FUTURE_CANCELLED);
	/* Already cancelled: the hook is not called again. */
	assert_int_equal(px_future_cancel(f, PX_CANCEL_RUNNING), 0);
	assert_int_equal(hook_calls, 1);
	px_future_release(f);
}

struct racer {
	px_future *f;
	int result;
};

static void *cancel_thread(void *arg)
{
	struct racer *r = arg;
	r->result = px_future_cancel(r->f, 0);
	return NULL;
}

/* Cancel against start: exactly one wins, every time. */
static void cancel_start_race(void **state)
{
	(void)state;
	for (int i = 0; i < 2000; i++) {
		struct racer r;
		assert_int_equal(px_promise_create(&r.f), 0);
		pthread_t th;
		pthread_create(&th, NULL, cancel_thread, &r);
		int s = px_promise_start(r.f);
		pthread_join(th, NULL);
		if (s == 0) {
			assert_int_equal(r.result, -EBUSY);
			assert_int_equal(px_promise_set_i64(r.f, i), 0);
			assert_int_equal(px_future_state_get(r.f), PX_FUTURE_DONE);
		} else {
			assert_int_equal(s, -ECANCELED);
			assert_int_equal(r.result, 0);
			assert_int_equal(px_future_state_get(r.f), PX_FUTURE_CANCELLED);
		}
		px_future_release(r.f);
	}
}

struct cb_log {
	int order[8];
	int n;
	pthread_t thread[8];
};

static void log_cb(px_future *f, void *arg)
{
	struct cb_log *log = arg;
	(void)f;
	log->thread[log->n] = pthread_self();
	log->order[log->n] = log->n;
	log->n++;
}

static void cb_second(px_future *f, void *arg)
{
	(void)f;
	struct cb_log *log = arg;
	log->order[log->n++] = 100;
}

static void *complete_later(void *arg)
{
	usleep(20000);
	px_promise_set_i64(arg, 7);
	return NULL;
}

static void count_cb(px_future *f, void *arg)
{
	(void)f;
	++*(int *)arg;
}

static void callbacks(void **state)
{
	(void)state;
	struct cb_log log = { 0 };
	px_future *f;
	assert_int_equal(px_promise_create(&f), 0);
	assert_int_equal(px_future_on_done(NULL, log_cb, &log), -EINVAL);
	assert_int_equal(px_future_on_done(f, NULL, &log), -EINVAL);
	assert_int_equal(px_future_on_done(f, log_cb, &log), 0);
	assert_int_equal(px_future_on_done(f, cb_second, &log), 0);
	assert_int_equal(log.n, 0);
	pthread_t th;
	pthread_create(&th, NULL, complete_later, f);
	pthread_join(th, NULL);
	/* Ran once each, in order, in the completing thread. */
	assert_int_equal(log.n, 2);
	assert_int_equal(log.order[0], 0);
	assert_int_equal(log.order[1], 100);
	assert_true(pthread_equal(log.thread[0], th));
	/* Added after completion: runs at once, here. */
	assert_int_equal(px_future_on_done(f, log_cb, &log), 0);
	assert_int_equal(log.n, 3);
	assert_true(pthread_equal(log.thread[2], pthread_self()));
	px_future_release(f);
}

/*
 * The completion list: registrations removed from its head, middle and tail
 * (and the only node) leave the callbacks in order, each run once, and a
 * callback added after a removal goes last.
 */
static void callback_list_edits(void **state)
{
	(void)state;
	struct cb_log log = { 0 };
	px_future *f;
	px_as_completed *a0, *a1, *a2;
	assert_int_equal(px_promise_create(&f), 0);
	assert_int_equal(px_as_completed_open(&a0, &f, 1), 0);
	assert_int_equal(px_future_on_done(f, log_cb, &log), 0);
	px_as_completed_close(a0); /* the head, with a node after it */
	assert_int_equal(px_as_completed_open(&a1, &f, 1), 0);
	assert_int_equal(px_future_on_done(f, log_cb, &log), 0);
	assert_int_equal(px_as_completed_open(&a2, &f, 1), 0);
	px_as_completed_close(a2); /* the tail */
	assert_int_equal(px_future_on_done(f, log_cb, &log), 0);
	px_as_completed_close(a1); /* the middle */
	assert_int_equal(px_future_on_done(f, cb_second, &log), 0);
	assert_int_equal(log.n, 0);
	assert_int_equal(px_promise_set_i64(f, 1), 0);
	assert_int_equal(log.n, 4);
	assert_int_equal(log.order[0], 0);
	assert_int_equal(log.order[1], 1);
	assert_int_equal(log.order[2], 2);
	assert_int_equal(log.order[3], 100);
	px_future_release(f);

	/* The only node removed, then a callback: it is the list. */
	struct cb_log log2 = { 0 };
	assert_int_equal(px_promise_create(&f), 0);
	assert_int_equal(px_as_completed_open(&a0, &f, 1), 0);
	px_as_completed_close(a0);
	assert_int_equal(px_future_on_done(f, log_cb, &log2), 0);
	assert_int_equal(px_promise_set_i64(f, 1), 0);
	assert_int_equal(log2.n, 1);
	px_future_release(f);

	/* Many callbacks (past a thread's spare nodes), fired and dropped:
	 * every one runs once on completion, none after a drop. */
	static int hits;
	hits = 0;
	for (int round = 0; round < 3; round++) {
		px_future *g[3];
		for (int i = 0; i < 3; i++) {
			assert_int_equal(px_promise_create(&g[i]), 0);
			for (int k = 0; k < 100; k++)
				assert_int_equal(px_future_on_done(g[i], count_cb,
								   &hits), 0);
		}
		assert_int_equal(px_promise_set_i64(g[0], 1), 0);
		assert_int_equal(px_promise_set_error(g[1], EIO, "x"), 0);
		px_future_release(g[2]); /* never completed: dropped unrun */
		px_future_release(g[0]);
		px_future_release(g[1]);
	}
	assert_int_equal(hits, 3 * 200);
}

static void release_in_cb(px_future *f, void *arg)
{
	(void)arg;
	px_future_release(f);
}

static void refcounts(void **state)
{
	(void)state;
	px_future *f;
	assert_int_equal(px_promise_create(&f), 0);
	assert_ptr_equal(px_future_retain(f), f);
	px_future_release(f);
	/* A callback may drop the last reference of its future. */
	assert_int_equal(px_future_on_done(f, release_in_cb, NULL), 0);
	assert_int_equal(px_promise_set_i64(f, 1), 0);
	px_future_release(NULL);
	assert_null(px_future_retain(NULL));

	/* A pending future with callbacks can be dropped (never completed). */
	struct cb_log log = { 0 };
	assert_int_equal(px_promise_create(&f), 0);
	assert_int_equal(px_future_on_done(f, log_cb, &log), 0);
	px_future_release(f);
	assert_int_equal(log.n, 0);
}

static void wait_timeout(void **state)
{
	(void)state;
	px_future *f;
	assert_int_equal(px_promise_create(&f), 0);
	int64_t t0 = test_now_ns();
	assert_int_equal(px_future_wait(f, 30 * PX_MSEC), -ETIMEDOUT);
	assert_true(test_now_ns() - t0 >= 30 * PX_MSEC);
	assert_int_equal(px_future_wait(NULL, 0), -EINVAL);
	pthread_t th;
	pthread_create(&th, NULL, complete_later, f);
	assert_int_equal(px_future_wait(f, PX_FOREVER), 0);
	pthread_join(th, NULL);
	px_future_release(f);
}

struct delayed {
	px_future *f;
	int64_t delay_ns;
	int err; /* 0: result */
};

static void *complete_delayed(void *arg)
{
	struct delayed *d = arg;
	struct timespec ts = { d->delay_ns / PX_SEC, d->delay_ns % PX_SEC };
	nanosleep(&ts, NULL);
	if (d->err)
		px_promise_set_error(d->f, d->err, NULL);
	else
		px_promise_set_i64(d->f, 1);
	return NULL;
}

static void wait_modes(void **state)
{
	(void)state;
	enum { N = 4 };
	px_future *fs[N];
	bool done[N];
	for (int i = 0; i < N; i++)
		assert_int_equal(px_promise_create(&fs[i]), 0);

	assert_int_equal(px_wait(NULL, 1, PX_ALL_COMPLETED, 0, NULL), -EINVAL);
	assert_int_equal(px_wait(fs, N, (px_wait_mode)9, 0, NULL), -EINVAL);
	px_future *with_null[2] = { fs[0], NULL };
	assert_int_equal(px_wait(with_null, 2, PX_FIRST_COMPLETED, 0, NULL), -EINVAL);
	assert_int_equal(px_wait(fs, 0, PX_ALL_COMPLETED, 0, NULL), 0);

	/* Nothing done: every mode times out and reports none done. */
	assert_int_equal(px_wait(fs, N, PX_FIRST_COMPLETED, 10 * PX_MSEC, done),
			 -ETIMEDOUT);
	for (int i = 0; i < N; i++)
		assert_false(done[i]);
	assert_int_equal(px_wait(fs, N, PX_ALL_COMPLETED, 0, done), -ETIMEDOUT);

	/* FIRST_COMPLETED wakes when fs[2] finishes. */
	struct delayed d2 = { fs[2], 20 * PX_MSEC, 0 };
	pthread_t th;
	pthread_create(&th, NULL, complete_delayed, &d2);
	assert_int_equal(px_wait(fs, N, PX_FIRST_COMPLETED, PX_FOREVER, done), 1);
	pthread_join(th, NULL);
	assert_true(done[2]);
	assert_false(done[0] || done[1] || done[3]);

	/* FIRST_EXCEPTION: a success is not enough, a failure is. */
	px_promise_set_i64(fs[0], 0);
	assert_int_equal(px_wait(fs, N, PX_FIRST_EXCEPTION, 10 * PX_MSEC, done),
			 -ETIMEDOUT);
	struct delayed d3 = { fs[3], 20 * PX_MSEC, -EIO };
	pthread_create(&th, NULL, complete_delayed, &d3);
	assert_int_equal(px_wait(fs, N, PX_FIRST_EXCEPTION, PX_FOREVER, done), 3);
	pthread_join(th, NULL);
	assert_true(done[3]);
	assert_false(done[1]);

	/* ALL_COMPLETED: a cancelled future counts as completed. */
	assert_int_equal(px_future_cancel(fs[1], 0), 0);
	assert_int_equal(px_wait(fs, N, PX_ALL_COMPLETED, PX_FOREVER, done), N);
	for (int i = 0; i < N; i++)
		assert_true(done[i]);
	/* The same future twice is allowed. */
	px_future *twice[2] = { fs[0], fs[0] };
	assert_int_equal(px_wait(twice, 2, PX_FIRST_COMPLETED, 0, NULL), 2);
	for (int i = 0; i < N; i++)
		px_future_release(fs[i]);
}

static void first_exception_all_ok(void **state)
{
	(void)state;
	px_future *fs[3];
	for (int i = 0; i < 3; i++)
		assert_int_equal(px_promise_create(&fs[i]), 0);
	px_promise_set_i64(fs[0], 1);
	px_promise_set_i64(fs[1], 1);
	struct delayed d = { fs[2], 10 * PX_MSEC, 0 };
	pthread_t th;
	pthread_create(&th, NULL, complete_delayed, &d);
	/* No failure at all: returns once every one is done. */
	assert_int_equal(px_wait(fs, 3, PX_FIRST_EXCEPTION, PX_FOREVER, NULL), 3);
	pthread_join(th, NULL);
	for (int i = 0; i < 3; i++)
		px_future_release(fs[i]);
}

static void as_completed(void **state)
{
	(void)state;
	enum { N = 5 };
	px_future *fs[N];
	for (int i = 0; i < N; i++)
		assert_int_equal(px_promise_create(&fs[i]), 0);
	px_as_completed *it;
	assert_int_equal(px_as_completed_open(NULL, fs, N), -EINVAL);
	px_promise_set_i64(fs[3], 3); /* done before the iterator opens */
	assert_int_equal(px_as_completed_open(&it, fs, N), 0);
	px_future *got;
	assert_int_equal(px_as_completed_next(it, 0, &got), 0);
	assert_ptr_equal(got, fs[3]);
	assert_int_equal(px_as_completed_next(it, 5 * PX_MSEC, &got), -ETIMEDOUT);

	px_promise_set_i64(fs[1], 1);
	px_promise_set_i64(fs[4], 4);
	assert_int_equal(px_as_completed_next(it, 0, &got), 0);
	assert_ptr_equal(got, fs[1]);
	assert_int_equal(px_as_completed_next(it, 0, &got), 0);
	assert_ptr_equal(got, fs[4]);

	struct delayed d = { fs[0], 10 * PX_MSEC, -EIO };
	pthread_t th;
	pthread_create(&th, NULL, complete_delayed, &d);
	assert_int_equal(px_as_completed_next(it, PX_FOREVER, &got), 0);
	assert_ptr_equal(got, fs[0]);
	pthread_join(th, NULL);
	px_future_cancel(fs[2], 0);
	assert_int_equal(px_as_completed_next(it, PX_FOREVER, &got), 0);
	assert_ptr_equal(got, fs[2]);
	assert_int_equal(px_as_completed_next(it, PX_FOREVER, &got), PX_EEOF);
	/* The iterator holds references: our release does not free them. */
	for (int i = 0; i < N; i++)
		px_future_release(fs[i]);
	assert_int_equal(px_future_error(got), -ECANCELED);
	px_as_completed_close(it);
	px_as_completed_close(NULL);
}

/* Closing an iterator while producers complete its futures concurrently. */
static void *complete_all(void *arg)
{
	px_future **fs = arg;
	for (int i = 0; i < 64; i++)
		px_promise_set_i64(fs[i], i);
	return NULL;
}

static void as_completed_close_race(void **state)
{
	(void)state;
	for (int round = 0; round < 200; round++) {
		px_future *fs[64];
		for (int i = 0; i < 64; i++)
			assert_int_equal(px_promise_create(&fs[i]), 0);
		px_as_completed *it;
		assert_int_equal(px_as_completed_open(&it, fs, 64), 0);
		pthread_t th;
		pthread_create(&th, NULL, complete_all, fs);
		px_future *got;
		if (round % 2)
			(void)px_as_completed_next(it, PX_MSEC, &got);
		px_as_completed_close(it);
		pthread_join(th, NULL);
		for (int i = 0; i < 64; i++)
			px_future_release(fs[i]);
	}
}

/* Many threads waiting on one future all wake. */
static void *waiter(void *arg)
{
	return (void *)(intptr_t)px_future_wait(arg, PX_FOREVER);
}

static void many_waiters(void **state)
{
	(void)state;
	px_future *f;
	assert_int_equal(px_promise_create(&f), 0);
	pthread_t th[8];
	for (int i = 0; i < 8; i++)
		pthread_create(&th[i], NULL, waiter, f);
	usleep(50000); /* let them park on the futex */
	px_promise_set_i64(f, 1);
	for (int i = 0; i < 8; i++) {
		void *r;
		pthread_join(th[i], &r);
		assert_int_equal((intptr_t)r, 0);
	}
	px_future_release(f);
}

/* 100,000 pending futures cost only memory: no thread, no fd per future. */
static void many_pending(void **state)
{
	(void)state;
	enum { N = 100000 };
	px_future **fs = malloc(N * sizeof(*fs));
	assert_non_null(fs);
	int threads_before = test_thread_count();
	for (int i = 0; i < N; i++)
		assert_int_equal(px_promise_create(&fs[i]), 0);
	assert_int_equal(test_thread_count(), threads_before);
	for (int i = 0; i < N; i++)
		px_promise_set_i64(fs[i], i);
	assert_int_equal(px_wait(fs, N, PX_ALL_COMPLETED, 0, NULL), N);
	for (int i = 0; i < N; i++)
		px_future_release(fs[i]);
	free(fs);
}

static void bad_input(void **state)
{
	(void)state;
	assert_int_equal(px_promise_create(NULL), -EINVAL);
	assert_int_equal(px_promise_start(NULL), -EINVAL);
	assert_int_equal(px_promise_set_result(NULL, "x", 1), -EINVAL);
	assert_int_equal(px_promise_set_error(NULL, -EIO, NULL), -EINVAL);
	assert_int_equal(px_promise_set_cancelled(NULL), -EINVAL);
	assert_int_equal(px_future_cancel(NULL, 0), -EINVAL);
	assert_int_equal(px_future_error(NULL), -EINVAL);
	assert_null(px_future_message(NULL));
	assert_false(px_future_is_done(NULL));
	px_future *f;
	assert_int_equal(px_promise_create(&f), 0);
	assert_int_equal(px_promise_set_result(f, NULL, 4), -EINVAL);
	assert_int_equal(px_future_get_i64(f, 0, NULL), -EINVAL);
	assert_int_equal(px_promise_set_result(f, NULL, 0), 0); /* empty result */
	size_t len = 1;
	assert_null(px_future_result(f, &len));
	assert_int_equal(len, 0);
	assert_int_equal(px_future_error(f), 0);
	px_future_release(f);
	assert_string_equal(px_strerror(PX_EWORKERDIED),
			    "worker process died while running the task");
	assert_string_equal(px_strerror(-ETIMEDOUT), "Connection timed out");
	assert_string_equal(px_strerror(-123456), "unknown error");
	assert_string_equal(px_strerror(0), "success");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(result_and_state),
		cmocka_unit_test(error_with_message),
		cmocka_unit_test(i64_results),
		cmocka_unit_test(cancel_semantics),
		cmocka_unit_test(cancel_running_hook),
		cmocka_unit_test(cancel_start_race),
		cmocka_unit_test(callbacks),
		cmocka_unit_test(callback_list_edits),
		cmocka_unit_test(refcounts),
		cmocka_unit_test(wait_timeout),
		cmocka_unit_test(wait_modes),
		cmocka_unit_test(first_exception_all_ok),
		cmocka_unit_test(as_completed),
		cmocka_unit_test(as_completed_close_race),
		cmocka_unit_test(many_waiters),
		cmocka_unit_test(many_pending),
		cmocka_unit_test(bad_input),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
