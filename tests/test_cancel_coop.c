/*
 * tests/test_cancel_coop.c - cooperative cancel: a running task sees
 * px_future_cancel(f, PX_CANCEL_RUNNING) through px_task_cancelled() and
 * returns; its future ends cancelled on every backend. On the process pool
 * the worker then lives on, and one that ignores the cancel is killed after
 * cancel_grace_ms.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>

#include "test_util.h"

/* Shared with the task: plain memory on threads, the arena on processes. */
struct probe {
	atomic_int started;
	atomic_int saw_cancel;
	atomic_int seen_before; /* px_task_cancelled() before the cancel */
};

/* Runs until cancelled (at most 30 s), then returns success: the future
 * must still end cancelled. */
static int until_cancelled(px_task *t, const void *arg, size_t len)
{
	struct probe *pr;
	(void)len;
	memcpy(&pr, arg, sizeof(pr));
	if (px_task_cancelled(t))
		atomic_store(&pr->seen_before, 1);
	atomic_store(&pr->started, 1);
	int64_t end = test_now_ns() + 30 * (int64_t)1000000000;
	while (!px_task_cancelled(t)) {
		if (test_now_ns() > end)
			return -ETIME;
		usleep(500);
	}
	atomic_store(&pr->saw_cancel, 1);
	int64_t v = 1;
	return px_task_return(t, &v, sizeof(v));
}

/* Ignores cancels: sleeps until the probe says stop (or 30 s). */
static int ignores_cancel(px_task *t, const void *arg, size_t len)
{
	struct probe *pr;
	(void)t;
	(void)len;
	memcpy(&pr, arg, sizeof(pr));
	atomic_store(&pr->started, 1);
	int64_t end = test_now_ns() + 30 * (int64_t)1000000000;
	while (!atomic_load(&pr->saw_cancel) && test_now_ns() < end)
		usleep(500);
	return 0;
}

static int my_pid(px_task *t, const void *arg, size_t len)
{
	(void)arg;
	(void)len;
	int64_t v = getpid();
	return px_task_return(t, &v, sizeof(v));
}

static int reports_cancelled(px_task *t, const void *arg, size_t len)
{
	(void)arg;
	(void)len;
	int64_t v = px_task_cancelled(t) ? 1 : 0;
	return px_task_return(t, &v, sizeof(v));
}

static struct probe *new_probe(px_executor *ex)
{
	struct probe *pr;
	assert_int_equal(px_executor_alloc(ex, sizeof(*pr), (void **)&pr), 0);
	return pr;
}

static void wait_started(struct probe *pr)
{
	int64_t end = test_now_ns() + 30 * (int64_t)1000000000;
	while (!atomic_load(&pr->started)) {
		assert_true(test_now_ns() < end);
		usleep(200);
	}
}

/* The task sees the cancel, returns, and the future ends cancelled. */
static void cooperative_case(const char *spec)
{
	px_executor *ex = open_ex(spec);
	struct probe *pr = new_probe(ex);
	px_future *f;
	assert_int_equal(px_executor_submit(ex, until_cancelled, &pr, sizeof(pr),
					    NULL, &f), 0);
	wait_started(pr);
	assert_int_equal(px_future_wait(f, 20 * PX_MSEC), -ETIMEDOUT);
	assert_int_equal(px_future_cancel(f, 0), -EBUSY); /* runs: plain fails */
	assert_int_equal(px_future_cancel(f, PX_CANCEL_RUNNING), 0);
	assert_int_equal(px_future_cancel(f, PX_CANCEL_RUNNING), 0); /* again */
	assert_int_equal(px_future_wait(f, PX_FOREVER), 0);
	assert_int_equal(px_future_state_get(f), PX_FUTURE_CANCELLED);
	assert_int_equal(px_future_error(f), -ECANCELED);
	assert_int_equal(atomic_load(&pr->saw_cancel), 1);
	assert_int_equal(atomic_load(&pr->seen_before), 0);
	px_future_release(f);
	/* A task that is not cancelled sees false and keeps its result. */
	assert_int_equal(px_executor_submit(ex, reports_cancelled, NULL, 0, NULL, &f), 0);
	assert_int_equal(get_i64(f), 0);
	assert_int_equal(px_future_cancel(f, PX_CANCEL_RUNNING), -EBUSY);
	assert_int_equal(px_future_state_get(f), PX_FUTURE_DONE);
	px_future_release(f);
	/* Outcomes are counted just after the future completes: read the
	 * stats once every worker is done. */
	px_executor_free(ex, pr);
	assert_int_equal(px_executor_shutdown(ex, true, false), 0);
	px_executor_stats st;
	assert_int_equal(px_executor_stats_get(ex, &st), 0);
	assert_int_equal(st.cancelled, 1);
	assert_int_equal(st.completed, 1);
	assert_int_equal(st.respawns, 0);
	px_executor_destroy(ex);
}

static void thread_task_stops_on_cancel(void **state)
{
	(void)state;
	cooperative_case("thread:workers=2");
}

static void process_task_stops_on_cancel_and_worker_lives(void **state)
{
	(void)state;
	cooperative_case("process:workers=1,cancel_grace_ms=60000");
	/* The same worker process runs the next task: nothing was killed. */
	px_executor *ex = open_ex("process:workers=1,cancel_grace_ms=60000");
	px_future *f;
	assert_int_equal(px_executor_submit(ex, my_pid, NULL, 0, NULL, &f), 0);
	int64_t pid = get_i64(f);
	px_future_release(f);
	struct probe *pr = new_probe(ex);
	assert_int_equal(px_executor_submit(ex, until_cancelled, &pr, sizeof(pr),
					    NULL, &f), 0);
	wait_started(pr);
	assert_int_equal(px_future_cancel(f, PX_CANCEL_RUNNING), 0);
	assert_int_equal(px_future_wait(f, PX_FOREVER), 0);
	assert_int_equal(px_future_error(f), -ECANCELED);
	px_future_release(f);
	assert_int_equal(px_executor_submit(ex, my_pid, NULL, 0, NULL, &f), 0);
	assert_int_equal(get_i64(f), pid);
	px_future_release(f);
	px_executor_free(ex, pr);
	px_executor_destroy(ex);
}

/* A task that ignores the cancel is killed once the grace period ends. */
static void process_ignored_cancel_kills_after_grace(void **state)
{
	(void)state;
	px_executor *ex = open_ex("process:workers=1,cancel_grace_ms=30");
	struct probe *pr = new_probe(ex);
	px_future *f;
	assert_int_equal(px_executor_submit(ex, ignores_cancel, &pr, sizeof(pr),
					    NULL, &f), 0);
	wait_started(pr);
	assert_int_equal(px_future_cancel(f, PX_CANCEL_RUNNING), 0);
	assert_int_equal(px_future_wait(f, PX_FOREVER), 0);
	assert_int_equal(px_future_state_get(f), PX_FUTURE_CANCELLED);
	px_future_release(f);
	/* The replacement works. */
	assert_int_equal(px_executor_submit(ex, reports_cancelled, NULL, 0, NULL, &f), 0);
	assert_int_equal(get_i64(f), 0);
	px_future_release(f);
	atomic_store(&pr->saw_cancel, 1);
	px_executor_free(ex, pr);
	/* Outcomes are counted just after the future completes: read the
	 * stats once every worker is done. */
	assert_int_equal(px_executor_shutdown(ex, true, false), 0);
	px_executor_stats st;
	assert_int_equal(px_executor_stats_get(ex, &st), 0);
	assert_int_equal(st.respawns, 1);
	assert_int_equal(st.cancelled, 1);
	assert_int_equal(st.completed, 1);
	px_executor_destroy(ex);
}

/* Inline: tasks run inside submit, so nothing can cancel them; the call
 * answers false and a finished future refuses the cancel. */
static void inline_task_is_never_cancelled(void **state)
{
	(void)state;
	px_executor *ex = open_ex("inline");
	px_future *f;
	assert_int_equal(px_executor_submit(ex, reports_cancelled, NULL, 0, NULL, &f), 0);
	assert_int_equal(get_i64(f), 0);
	assert_int_equal(px_future_cancel(f, PX_CANCEL_RUNNING), -EBUSY);
	px_future_release(f);
	assert_false(px_task_cancelled(NULL));
	px_executor_destroy(ex);
}

/* Map records see the cancel state of their chunk (false here). */
static int record_cancelled(px_task *t, const void *arg, size_t len)
{
	(void)arg;
	(void)len;
	int32_t v = px_task_cancelled(t) ? 1 : 2;
	return px_task_return(t, &v, sizeof(v));
}

static void map_records_see_no_cancel(void **state)
{
	(void)state;
	const char *specs[] = { "inline", "thread:workers=2", "process:workers=2" };
	for (int s = 0; s < 3; s++) {
		px_executor *ex = open_ex(specs[s]);
		int32_t in[64] = { 0 }, out[64];
		assert_int_equal(px_executor_map(ex, record_cancelled, in, sizeof(in[0]),
						 64, out, sizeof(out[0]), NULL), 0);
		for (int i = 0; i < 64; i++)
			assert_int_equal(out[i], 2);
		px_executor_destroy(ex);
	}
}

/* Cancels racing with the end of short tasks: a cancel that returned 0
 * always leaves the future cancelled, one that returned -EBUSY done. */
static int spin_briefly(px_task *t, const void *arg, size_t len)
{
	(void)len;
	int n = *(const int *)arg;
	for (volatile int i = 0; i < n; i++)
		if (px_task_cancelled(t))
			break;
	int64_t v = 7;
	return px_task_return(t, &v, sizeof(v));
}

static void cancel_race_case(const char *spec)
{
	px_executor *ex = open_ex(spec);
	int n = (int)test_scaled(2000);
	px_future **fs = calloc((size_t)n, sizeof(*fs));
	int *rc = calloc((size_t)n, sizeof(*rc));
	assert_non_null(fs);
	assert_non_null(rc);
	for (int i = 0; i < n; i++) {
		int work = (i * 7919) % 20000;
		assert_int_equal(px_executor_submit(ex, spin_briefly, &work,
						    sizeof(work), NULL, &fs[i]), 0);
		if (i >= 8) {
			int k = i - 8;
			rc[k] = px_future_cancel(fs[k], PX_CANCEL_RUNNING);
		}
	}
	for (int i = n - 8; i < n; i++)
		rc[i] = px_future_cancel(fs[i], PX_CANCEL_RUNNING);
	for (int i = 0; i < n; i++) {
		assert_int_equal(px_future_wait(fs[i], PX_FOREVER), 0);
		px_future_state s = px_future_state_get(fs[i]);
		if (rc[i] == 0) {
			assert_int_equal(s, PX_FUTURE_CANCELLED);
		} else {
			assert_int_equal(rc[i], -EBUSY);
			assert_int_equal(s, PX_FUTURE_DONE);
			assert_int_equal(get_i64(fs[i]), 7);
		}
		px_future_release(fs[i]);
	}
	free(fs);
	free(rc);
	px_executor_destroy(ex);
}

/* Returns as soon as it sees the cancel (no sleep between looks), so that
 * its reply races with the canceller's next calls. */
static int stops_at_cancel(px_task *t, const void *arg, size_t len)
{
	struct probe *pr;
	(void)len;
	memcpy(&pr, arg, sizeof(pr));
	atomic_store(&pr->started, 1);
	int64_t end = test_now_ns() + 30 * (int64_t)1000000000;
	while (!px_task_cancelled(t))
		if (test_now_ns() > end)
			return -ETIME;
	return 0;
}

/* Once PX_CANCEL_RUNNING was granted, asking again succeeds at every moment
 * until the future is done, cancelled: also after the task's reply is taken
 * off the ring and before the future completes (that window once answered
 * -EBUSY). Each round calls it back to back through the task's end. */
static void process_repeated_cancel_succeeds_until_done(void **state)
{
	(void)state;
	px_executor *ex = open_ex("process:workers=1,cancel_grace_ms=60000");
	struct probe *pr = new_probe(ex);
	long rounds = test_scaled(200);
	long calls = 0;
	for (long i = 0; i < rounds; i++) {
		atomic_store(&pr->started, 0);
		px_future *f;
		assert_int_equal(px_executor_submit(ex, stops_at_cancel, &pr, sizeof(pr),
						    NULL, &f), 0);
		wait_started(pr);
		assert_int_equal(px_future_cancel(f, PX_CANCEL_RUNNING), 0);
		while (!px_future_is_done(f)) {
			assert_int_equal(px_future_cancel(f, PX_CANCEL_RUNNING), 0);
			calls++;
		}
		assert_int_equal(px_future_cancel(f, PX_CANCEL_RUNNING), 0);
		assert_int_equal(px_future_state_get(f), PX_FUTURE_CANCELLED);
		assert_int_equal(px_future_error(f), -ECANCELED);
		px_future_release(f);
	}
	assert_true(calls > 0);
	px_executor_free(ex, pr);
	px_executor_destroy(ex);
}

static void cancel_races_with_task_end_thread(void **state)
{
	(void)state;
	cancel_race_case("thread:workers=2");
}

static void cancel_races_with_task_end_process(void **state)
{
	(void)state;
	cancel_race_case("process:workers=2");
}

static void bad_grace_is_rejected(void **state)
{
	(void)state;
	px_config *cfg;
	assert_int_equal(px_config_create(&cfg), 0);
	assert_int_equal(px_config_apply(cfg, "process:cancel_grace_ms=soon", NULL),
			 -EINVAL);
	assert_non_null(strstr(px_config_error(cfg), "cancel_grace_ms"));
	assert_int_equal(px_config_apply(cfg, "process:cancel_grace_ms=0", NULL), 0);
	px_config_destroy(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(thread_task_stops_on_cancel),
		cmocka_unit_test(process_task_stops_on_cancel_and_worker_lives),
		cmocka_unit_test(process_ignored_cancel_kills_after_grace),
		cmocka_unit_test(inline_task_is_never_cancelled),
		cmocka_unit_test(map_records_see_no_cancel),
		cmocka_unit_test(cancel_races_with_task_end_thread),
		cmocka_unit_test(cancel_races_with_task_end_process),
		cmocka_unit_test(process_repeated_cancel_succeeds_until_done),
		cmocka_unit_test(bad_grace_is_rejected),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
