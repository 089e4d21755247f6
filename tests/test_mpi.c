/*
 * tests/test_mpi.c - the mpi backend, run under the launcher:
 *
 *   mpirun --oversubscribe -n 3 test_mpi            the executor tests
 *   mpirun -n 1 test_mpi --mismatch : -n 2 test_mpi_peer --mismatch
 *                                                   a build-id mismatch
 *   mpirun --oversubscribe -n 3 test_mpi --local-thread
 *                                                   local=thread pools
 *   mpirun --oversubscribe -n 3 test_mpi --trace FILE
 *                                                   rank 0's task timeline
 *   mpirun --oversubscribe -n 3 test_mpi --exit-inflight
 *                                                   rank 0 exits, tasks out
 *
 * (tests/test_mpi_run.sh sets the environment and checks that no process
 * outlives the job.) The backend is chosen by PAREX_EXECUTOR=mpi alone. Every
 * rank runs main() up to its first px_executor_open(); ranks >= 1 serve
 * there and exit when rank 0 exits, so only rank 0 runs the cmocka tests.
 * test_mpi_peer is this file built with PX_TEST_PEER: another program, with
 * another build-id.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_util.h"

#include <parex/executor.h>

/* Set in every local worker by the initializer; tasks report it. */
static int64_t init_seen;
static int64_t init_value = 4242;

static int worker_init(int worker_id, void *arg)
{
	(void)worker_id;
	init_seen = *(const int64_t *)arg;
	return 0;
}

static int double_it(px_task *t, const void *arg, size_t len)
{
	int64_t v;
	if (len != sizeof(v))
		return -EINVAL;
	memcpy(&v, arg, sizeof(v));
	v *= 2;
	return px_task_return(t, &v, sizeof(v));
}

/* Crashes the worker for 30, else doubles. */
static int double_or_crash(px_task *t, const void *arg, size_t len)
{
	int64_t v;
	memcpy(&v, arg, sizeof(v) <= len ? sizeof(v) : 0);
	if (v == 30)
		raise(SIGSEGV);
	return double_it(t, arg, len);
}

static int sleep_ms(px_task *t, const void *arg, size_t len)
{
	(void)t;
	int64_t ms;
	if (len != sizeof(ms))
		return -EINVAL;
	memcpy(&ms, arg, sizeof(ms));
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
	nanosleep(&ts, NULL);
	return 0;
}

static int report_init(px_task *t, const void *arg, size_t len)
{
	(void)arg;
	(void)len;
	return px_task_return(t, &init_seen, sizeof(init_seen));
}

static int report_pid(px_task *t, const void *arg, size_t len)
{
	(void)arg;
	(void)len;
	int64_t pid = getpid();
	return px_task_return(t, &pid, sizeof(pid));
}

static px_executor *open_mpi(const char *extra)
{
	char spec[128], err[256];
	snprintf(spec, sizeof(spec), "mpi%s", extra ? extra : "");
	px_executor *ex = NULL;
	int r = px_executor_open(&ex, spec, err, sizeof(err));
	if (r)
		print_error("px_executor_open(%s): %s\n", spec, err);
	assert_int_equal(r, 0);
	assert_string_equal(px_executor_backend(ex), "mpi");
	return ex;
}

static px_future *submit_i64(px_executor *ex, px_task_fn fn, int64_t v)
{
	px_future *f = NULL;
	assert_int_equal(px_executor_submit(ex, fn, &v, sizeof(v), NULL, &f), 0);
	return f;
}

/* Many tasks, all results checked; a static function named across ranks. */
static void submit_results(void **state)
{
	(void)state;
	px_executor *ex = open_mpi(NULL);
	enum { N = 500 };
	px_future *fs[N];
	for (int i = 0; i < N; i++)
		fs[i] = submit_i64(ex, double_it, i);
	for (int i = 0; i < N; i++) {
		int64_t v = -1;
		assert_int_equal(px_future_get_i64(fs[i], 30 * PX_SEC, &v), 0);
		assert_int_equal(v, 2 * i);
		px_future_release(fs[i]);
	}
	px_executor_stats st;
	assert_int_equal(px_executor_stats_get(ex, &st), 0);
	assert_int_equal(st.submitted, N);
	assert_int_equal(st.completed, N);
	assert_int_equal(st.failed, 0);
	assert_true(st.workers >= 2);
	assert_int_equal(px_executor_workers(ex), (int)st.workers);
	px_executor_destroy(ex);
}

/* Tasks reach both serving ranks: their pids come from two processes at
 * least (each rank's pool has its own workers). */
static void both_ranks_serve(void **state)
{
	(void)state;
	px_executor *ex = open_mpi(NULL);
	enum { N = 64 };
	px_future *fs[N];
	for (int i = 0; i < N; i++)
		fs[i] = submit_i64(ex, sleep_ms, 5);
	for (int i = 0; i < N; i++)
		assert_int_equal(px_future_wait(fs[i], 30 * PX_SEC), 0);
	for (int i = 0; i < N; i++)
		px_future_release(fs[i]);
	for (int i = 0; i < N; i++)
		fs[i] = submit_i64(ex, report_pid, 0);
	int64_t first = -1;
	int distinct = 1;
	for (int i = 0; i < N; i++) {
		int64_t pid;
		assert_int_equal(px_future_get_i64(fs[i], 30 * PX_SEC, &pid), 0);
		assert_int_not_equal(pid, getpid());
		if (first < 0)
			first = pid;
		else if (pid != first)
			distinct = 2;
		px_future_release(fs[i]);
	}
	assert_int_equal(distinct, 2);
	px_executor_destroy(ex);
}

/* A task that segfaults fails its own future, naming rank and host; every
 * other result of the load is right and the job goes on. */
static void crash_in_load(void **state)
{
	(void)state;
	px_executor *ex = open_mpi(NULL);
	enum { N = 60 };
	px_future *fs[N];
	for (int i = 0; i < N; i++)
		fs[i] = submit_i64(ex, double_or_crash, i);
	for (int i = 0; i < N; i++) {
		int64_t v = -1;
		int r = px_future_get_i64(fs[i], 60 * PX_SEC, &v);
		if (i == 30) {
			assert_int_equal(r, PX_EWORKERDIED);
			const char *m = px_future_message(fs[i]);
			assert_non_null(strstr(m, "rank "));
			assert_non_null(strstr(m, "signal 11"));
		} else {
			assert_int_equal(r, 0);
			assert_int_equal(v, 2 * i);
		}
		px_future_release(fs[i]);
	}
	px_future *f = submit_i64(ex, double_it, 21);
	int64_t v;
	assert_int_equal(px_future_get_i64(f, 30 * PX_SEC, &v), 0);
	assert_int_equal(v, 42);
	px_future_release(f);
	px_executor_stats st;
	assert_int_equal(px_executor_stats_get(ex, &st), 0);
	assert_int_equal(st.failed, 1);
	px_executor_destroy(ex);
}

/* map(): chunks go to the ranks with the record function translated. */
static void map_records(void **state)
{
	(void)state;
	px_executor *ex = open_mpi(NULL);
	enum { N = 5000 };
	int64_t *in = malloc(N * sizeof(*in)), *out = calloc(N, sizeof(*out));
	int *errs = calloc(N, sizeof(*errs));
	assert_non_null(in);
	assert_non_null(out);
	assert_non_null(errs);
	for (int i = 0; i < N; i++)
		in[i] = i == 77 ? 30 : i + 1000;
	px_map_opts o = { .errors = errs };
	/* Record 77 crashes: its chunk fails as a whole. */
	int r = px_executor_map(ex, double_or_crash, in, sizeof(*in), N, out,
				sizeof(*out), &o);
	assert_int_equal(r, PX_EWORKERDIED);
	int failed = 0;
	for (int i = 0; i < N; i++) {
		if (errs[i]) {
			assert_int_equal(errs[i], PX_EWORKERDIED);
			failed++;
		} else {
			assert_int_equal(out[i], 2 * in[i]);
		}
	}
	assert_true(failed >= 1 && failed < N);
	assert_int_not_equal(errs[77], 0);
	in[77] = 77;
	assert_int_equal(px_executor_map(ex, double_it, in, sizeof(*in), N, out,
					 sizeof(*out), &o), 0);
	for (int i = 0; i < N; i++) {
		assert_int_equal(errs[i], 0);
		assert_int_equal(out[i], 2 * in[i]);
	}
	free(in);
	free(out);
	free(errs);
	px_executor_destroy(ex);
}

/* PX_CANCEL_RUNNING reaches the remote pool; per-task timeouts too. */
static void cancel_and_timeout(void **state)
{
	(void)state;
	px_executor *ex = open_mpi(NULL);
	px_future *f = submit_i64(ex, sleep_ms, 20000);
	while (px_future_state_get(f) == PX_FUTURE_PENDING)
		usleep(1000);
	assert_int_equal(px_future_cancel(f, 0), -EBUSY);
	int64_t t0 = test_now_ns();
	assert_int_equal(px_future_cancel(f, PX_CANCEL_RUNNING), 0);
	assert_int_equal(px_future_wait(f, 15 * PX_SEC), 0);
	assert_int_equal(px_future_state_get(f), PX_FUTURE_CANCELLED);
	assert_true(test_now_ns() - t0 < 15 * PX_SEC);
	px_future_release(f);

	int64_t ms = 20000;
	px_submit_opts so = { .timeout_ns = 200 * PX_MSEC };
	assert_int_equal(px_executor_submit(ex, sleep_ms, &ms, sizeof(ms), &so, &f), 0);
	assert_int_equal(px_future_wait(f, 15 * PX_SEC), 0);
	assert_int_equal(px_future_error(f), -ETIMEDOUT);
	assert_non_null(strstr(px_future_message(f), "rank "));
	px_future_release(f);
	px_executor_destroy(ex);
}

/* Returns its argument with every byte complemented. */
static int complement(px_task *t, const void *arg, size_t len)
{
	unsigned char *b = malloc(len ? len : 1);
	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < len; i++)
		b[i] = (unsigned char)~((const unsigned char *)arg)[i];
	int r = px_task_return(t, b, len);
	free(b);
	return r;
}

/* Arguments and results small and large, mixed: the large ones (from 32
 * KiB) travel as messages of their own after their record, each matched
 * to its record by order; every byte comes back where it belongs. (The
 * serving ranks' pools keep their first open's limits: 64 KiB.) */
static void large_payloads(void **state)
{
	(void)state;
	px_executor *ex = open_mpi(NULL); /* max_arg, max_result: 64 KiB */
	enum { N = 48 };
	static const size_t sizes[] = { 0, 100, 32 * 1024 - 1, 32 * 1024,
					50 * 1000, 64 * 1024 };
	enum { S = sizeof(sizes) / sizeof(sizes[0]) };
	px_future *fs[N];
	unsigned char *in[N];
	for (int i = 0; i < N; i++) {
		size_t len = sizes[i % S];
		in[i] = malloc(len ? len : 1);
		assert_non_null(in[i]);
		for (size_t k = 0; k < len; k++)
			in[i][k] = (unsigned char)(i * 31 + k * 7);
		assert_int_equal(px_executor_submit(ex, complement, in[i], len,
						    NULL, &fs[i]), 0);
	}
	for (int i = N - 1; i >= 0; i--) {
		assert_int_equal(px_future_wait(fs[i], 30 * PX_SEC), 0);
		assert_int_equal(px_future_error(fs[i]), 0);
		size_t len = 0;
		const unsigned char *out = px_future_result(fs[i], &len);
		assert_int_equal(len, sizes[i % S]);
		for (size_t k = 0; k < len; k++)
			if (out[k] != (unsigned char)~in[i][k])
				fail_msg("task %d: byte %zu differs", i, k);
		px_future_release(fs[i]);
		free(in[i]);
	}
	px_executor_destroy(ex);
}

/* ---- rank 0's threads drive MPI (submit, wait_help) ----------------------- */

/* Several program threads submit and wait at once, each waiter driving
 * MPI in turn with the px-mpi thread: every result arrives exactly once,
 * to the right future. */
struct waiter_arg {
	px_executor *ex;
	int id, bad;
	int64_t sum;
};

static void *waiter(void *p)
{
	struct waiter_arg *w = p;
	enum { N = 300 };
	for (int i = 0; i < N; i++) {
		int64_t v = w->id * 100000 + i, r = -1;
		px_future *f = NULL;
		if (px_executor_submit(w->ex, double_it, &v, sizeof(v), NULL, &f) ||
		    px_future_get_i64(f, 30 * PX_SEC, &r) || r != 2 * v)
			w->bad++;
		else
			w->sum += r;
		px_future_release(f);
		if (i % 50 == 49) { /* a burst: many out, waited in reverse */
			px_future *g[16];
			for (int k = 0; k < 16; k++) {
				int64_t x = k;
				if (px_executor_submit(w->ex, double_it, &x, sizeof(x),
						       NULL, &g[k]))
					w->bad++, g[k] = NULL;
			}
			for (int k = 15; k >= 0; k--) {
				r = -1;
				if (!g[k] || px_future_get_i64(g[k], 30 * PX_SEC, &r) ||
				    r != 2 * k)
					w->bad++;
				px_future_release(g[k]);
			}
		}
	}
	return NULL;
}

static void concurrent_waiters(void **state)
{
	(void)state;
	px_executor *ex = open_mpi(NULL);
	enum { T = 4 };
	pthread_t th[T];
	struct waiter_arg a[T];
	for (int t = 0; t < T; t++) {
		a[t] = (struct waiter_arg){ .ex = ex, .id = t + 1 };
		assert_int_equal(pthread_create(&th[t], NULL, waiter, &a[t]), 0);
	}
	uint64_t tasks = 0;
	for (int t = 0; t < T; t++) {
		assert_int_equal(pthread_join(th[t], NULL), 0);
		assert_int_equal(a[t].bad, 0);
		int64_t want = 0;
		for (int i = 0; i < 300; i++)
			want += 2 * ((int64_t)(t + 1) * 100000 + i);
		assert_true(a[t].sum == want);
		tasks += 300 + 6 * 16;
	}
	px_executor_stats st;
	assert_int_equal(px_executor_stats_get(ex, &st), 0);
	assert_int_equal(st.submitted, tasks);
	assert_int_equal(st.completed, tasks);
	px_executor_destroy(ex);
}

/* Tasks nobody waits for: done callbacks count them, and half of them
 * submit a follow-up from inside the callback (which may run in any
 * thread that completes futures); the px-mpi thread alone must bring
 * every one in. */
struct chain {
	px_executor *ex;
	atomic_int done, bad, followups;
};

static void chain_done(px_future *f, void *arg)
{
	struct chain *c = arg;
	int64_t v = -1;
	if (px_future_get_i64(f, 0, &v) || v % 2)
		atomic_fetch_add(&c->bad, 1);
	if (v >= 0 && v < 1000 && v % 4 == 0) {
		int64_t x = 1000 + v;
		px_future *g;
		if (px_executor_submit(c->ex, double_it, &x, sizeof(x), NULL, &g) ||
		    px_future_on_done(g, chain_done, c))
			atomic_fetch_add(&c->bad, 1);
		else
			atomic_fetch_add(&c->followups, 1);
		px_future_release(g);
	}
	atomic_fetch_add(&c->done, 1);
}

static void callbacks_only(void **state)
{
	(void)state;
	struct chain c = { .ex = open_mpi(NULL) };
	enum { N = 100 };
	for (int i = 0; i < N; i++) {
		int64_t v = i;
		px_future *f;
		assert_int_equal(px_executor_submit(c.ex, double_it, &v, sizeof(v),
						    NULL, &f), 0);
		assert_int_equal(px_future_on_done(f, chain_done, &c), 0);
		px_future_release(f);
		if (i % 10 == 9)
			usleep(3000); /* past the naps: px-mpi's deep park */
	}
	/* N tasks, and a follow-up for each even one, as doubled values
	 * divisible by 4: i = 0, 2, 4, ... gives v = 2i, v % 4 == 0. */
	int64_t t0 = test_now_ns();
	while (atomic_load(&c.done) < N + N / 2 &&
	       test_now_ns() - t0 < 30 * PX_SEC)
		usleep(1000);
	assert_int_equal(atomic_load(&c.bad), 0);
	assert_int_equal(atomic_load(&c.followups), N / 2);
	assert_int_equal(atomic_load(&c.done), N + N / 2);
	px_executor_destroy(c.ex);
}

/* A wait that drives MPI still ends at its deadline. */
static void wait_deadline(void **state)
{
	(void)state;
	px_executor *ex = open_mpi(NULL);
	px_future *f = submit_i64(ex, sleep_ms, 400);
	int64_t t0 = test_now_ns();
	assert_int_equal(px_future_wait(f, 30 * PX_MSEC), -ETIMEDOUT);
	int64_t took = test_now_ns() - t0;
	assert_true(took >= 30 * PX_MSEC && took < 300 * PX_MSEC);
	assert_int_equal(px_future_wait(f, 30 * PX_SEC), 0);
	assert_int_equal(px_future_error(f), 0);
	px_future_release(f);
	px_executor_destroy(ex);
}

/* Shutdown with work pending: cancel_pending drops what has not started,
 * and every future finishes. */
static void shutdown_pending(void **state)
{
	(void)state;
	px_executor *ex = open_mpi(NULL);
	enum { N = 200 };
	px_future *fs[N];
	for (int i = 0; i < N; i++)
		fs[i] = submit_i64(ex, sleep_ms, 20);
	assert_int_equal(px_executor_shutdown(ex, true, true), 0);
	int done = 0, cancelled = 0;
	for (int i = 0; i < N; i++) {
		assert_true(px_future_is_done(fs[i]));
		if (px_future_state_get(fs[i]) == PX_FUTURE_CANCELLED)
			cancelled++;
		else if (px_future_error(fs[i]) == 0)
			done++;
		px_future_release(fs[i]);
	}
	assert_int_equal(done + cancelled, N);
	assert_true(cancelled > 0);
	px_executor_stats st;
	assert_int_equal(px_executor_stats_get(ex, &st), 0);
	assert_int_equal(st.completed, done);
	assert_int_equal(st.cancelled, cancelled);
	int64_t v = 1;
	px_future *f;
	assert_int_equal(px_executor_submit(ex, double_it, &v, sizeof(v), NULL, &f),
			 PX_ESHUTDOWN);
	px_executor_destroy(ex);

	/* Without cancel_pending, everything runs before shutdown returns. */
	ex = open_mpi(NULL);
	for (int i = 0; i < 40; i++)
		fs[i] = submit_i64(ex, sleep_ms, 5);
	assert_int_equal(px_executor_shutdown(ex, true, false), 0);
	for (int i = 0; i < 40; i++) {
		assert_int_equal(px_future_state_get(fs[i]), PX_FUTURE_DONE);
		assert_int_equal(px_future_error(fs[i]), 0);
		px_future_release(fs[i]);
	}
	px_executor_destroy(ex);
}

/* A full queue with block=0 answers -EAGAIN; rank 0 holds at most `queue`
 * unsent tasks plus the ranks' credit windows. */
static void bounded_queue(void **state)
{
	(void)state;
	px_executor *ex = open_mpi(":queue=4,block=0");
	enum { N = 200 };
	px_future *fs[N];
	int n = 0, again = 0;
	for (int i = 0; i < N; i++) {
		int64_t ms = 300;
		int r = px_executor_submit(ex, sleep_ms, &ms, sizeof(ms), NULL, &fs[n]);
		if (r == -EAGAIN) {
			again++;
			continue;
		}
		assert_int_equal(r, 0);
		n++;
	}
	assert_true(again > 0);
	px_executor_stats st;
	assert_int_equal(px_executor_stats_get(ex, &st), 0);
	assert_true(st.queued <= 4);
	/* Windows: 4 per worker and 8 more per serving rank (2 here). */
	assert_true((int)st.running <= 4 * (int)st.workers + 8 * 2);
	assert_int_equal(px_executor_shutdown(ex, true, true), 0);
	for (int i = 0; i < n; i++)
		px_future_release(fs[i]);
	px_executor_destroy(ex);

	/* block=1 (the default): submit waits for room instead; rank 0
	 * never holds more than `queue` unsent tasks. */
	ex = open_mpi(":queue=2");
	for (int i = 0; i < 60; i++) {
		int64_t ms = 10;
		assert_int_equal(px_executor_submit(ex, sleep_ms, &ms, sizeof(ms),
						    NULL, &fs[i]), 0);
		assert_int_equal(px_executor_stats_get(ex, &st), 0);
		assert_true(st.queued <= 2);
	}
	for (int i = 0; i < 60; i++) {
		assert_int_equal(px_future_wait(fs[i], 30 * PX_SEC), 0);
		assert_int_equal(px_future_error(fs[i]), 0);
		px_future_release(fs[i]);
	}
	px_executor_destroy(ex);
}

/* The rest of the API: as-completed, px_wait, the initializer, alloc. */
static void api_rest(void **state)
{
	(void)state;
	px_executor *ex = open_mpi(NULL);
	void *p = (void *)1;
	assert_int_equal(px_executor_alloc(ex, 64, &p), -ENOTSUP);
	assert_null(p);
	enum { N = 20 };
	px_future *fs[N];
	for (int i = 0; i < N; i++)
		fs[i] = submit_i64(ex, double_it, i);
	assert_int_equal(px_wait(fs, N, PX_ALL_COMPLETED, 30 * PX_SEC, NULL), N);
	px_as_completed *it;
	assert_int_equal(px_as_completed_open(&it, fs, N), 0);
	int64_t sum = 0;
	for (int i = 0; i < N; i++) {
		px_future *f;
		assert_int_equal(px_as_completed_next(it, 10 * PX_SEC, &f), 0);
		int64_t v;
		assert_int_equal(px_future_get_i64(f, 0, &v), 0);
		sum += v;
	}
	px_as_completed_close(it);
	assert_int_equal(sum, N * (N - 1));
	for (int i = 0; i < N; i++)
		px_future_release(fs[i]);
	px_future *f = submit_i64(ex, report_init, 0);
	int64_t v;
	assert_int_equal(px_future_get_i64(f, 30 * PX_SEC, &v), 0);
	assert_int_equal(v, init_value);
	px_future_release(f);
	px_executor_destroy(ex);
}

/* Bad values of the mpi keys fail before any MPI call, naming the key. */
static void bad_keys(void **state)
{
	(void)state;
	px_executor *ex = NULL;
	char err[256];
	assert_int_equal(px_executor_open(&ex, "mpi:local=inline", err, sizeof(err)),
			 -EINVAL);
	assert_null(ex);
	assert_non_null(strstr(err, "local"));
	assert_non_null(strstr(err, "process or thread"));
	assert_int_equal(px_executor_open(&ex, "mpi:workers_per_rank=0", err,
					  sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "workers_per_rank"));
	px_config *cfg;
	assert_int_equal(px_config_create(&cfg), 0);
	assert_int_equal(px_config_apply(cfg, "mpi:local=thread,workers_per_rank=3",
					 NULL), 0);
	char buf[512];
	assert_true(px_config_format(cfg, buf, sizeof(buf)) > 0);
	assert_non_null(strstr(buf, "mpi:"));
	assert_non_null(strstr(buf, ",local=thread,workers_per_rank=3"));
	px_config_destroy(cfg);
}

/* local=thread: the serving ranks run tasks on thread pools, in the rank
 * processes themselves (one pid per rank). */
static int local_thread(void)
{
	px_executor *ex = NULL;
	char err[256];
	if (px_executor_open(&ex, "mpi:local=thread,workers_per_rank=2", err,
			     sizeof(err))) {
		fprintf(stderr, "test_mpi: %s\n", err);
		return 1;
	}
	enum { N = 200 };
	px_future *fs[N];
	int64_t pids[2] = { 0, 0 };
	int bad = 0;
	for (int i = 0; i < N; i++) {
		int64_t v = i;
		if (px_executor_submit(ex, i % 2 ? double_it : report_pid, &v,
				       sizeof(v), NULL, &fs[i]))
			return 1;
	}
	for (int i = 0; i < N; i++) {
		int64_t v;
		if (px_future_get_i64(fs[i], 30 * PX_SEC, &v))
			bad++;
		else if (i % 2 && v != 2 * i)
			bad++;
		else if (!(i % 2)) {
			if (v == getpid())
				bad++;
			else if (!pids[0] || pids[0] == v)
				pids[0] = v;
			else if (!pids[1] || pids[1] == v)
				pids[1] = v;
			else
				bad++; /* a third pid: not the ranks' own */
		}
		px_future_release(fs[i]);
	}
	px_executor_destroy(ex);
	printf("local=thread: %d bad of %d; task pids %lld %lld\n", bad, N,
	       (long long)pids[0], (long long)pids[1]);
	return bad ? 1 : 0;
}

/*
 * --trace PATH: N tasks through a traced executor (one crashes its worker,
 * one fails), for test_mpi_run.sh to check the file rank 0 writes: every
 * task once, on a track named after the rank and host it ran on.
 */
static int traced(const char *path)
{
	char spec[512], err[256];
	snprintf(spec, sizeof(spec), "mpi:workers_per_rank=2,trace=%s", path);
	px_executor *ex = NULL;
	int r = px_executor_open(&ex, spec, err, sizeof(err));
	if (r) {
		fprintf(stderr, "test_mpi --trace: %s\n", err);
		return 1;
	}
	enum { N = 40 };
	px_future *fs[N];
	int bad = 0;
	for (int i = 0; i < N; i++) {
		int64_t v = i;
		px_task_fn fn = i == 7 ? sleep_ms : double_or_crash;
		size_t len = i == 7 ? 1 : sizeof(v); /* sleep_ms: -EINVAL */
		if (px_executor_submit(ex, fn, &v, len, NULL, &fs[i]))
			return 1;
	}
	for (int i = 0; i < N; i++) {
		int64_t v = -1;
		int e = px_future_get_i64(fs[i], 30 * PX_SEC, &v);
		int want = i == 30 ? PX_EWORKERDIED : i == 7 ? -EINVAL : 0;
		if (e != want || (!want && v != 2 * i))
			bad++;
		px_future_release(fs[i]);
	}
	px_executor_destroy(ex);
	printf("trace: %d bad of %d\n", bad, N);
	return bad ? 1 : 0;
}

/*
 * --exit-inflight: rank 0 leaves while large results (their own messages,
 * which need their receiver to complete) are on their way; the job must
 * still end, every rank with status 0 (test_mpi_run.sh times it).
 */
static int exit_inflight(void)
{
	px_executor *ex = NULL;
	char err[256];
	if (px_executor_open(&ex, "mpi:workers_per_rank=2", err, sizeof(err))) {
		fprintf(stderr, "test_mpi --exit-inflight: %s\n", err);
		return 1;
	}
	static unsigned char arg[60000];
	for (int i = 0; i < 32; i++) {
		px_future *f;
		if (px_executor_submit(ex, complement, arg, sizeof(arg), NULL, &f))
			return 1;
		if (i == 8) /* some results are surely out by now */
			px_future_wait(f, 30 * PX_SEC);
		px_future_release(f);
	}
	printf("exit-inflight: leaving with tasks out\n");
	exit(0); /* no destroy: the atexit handler releases the ranks */
}

/* Opens the executor on every rank with the initializer; ranks >= 1 serve
 * in px_executor_create() and leave the process from there. */
static px_executor *first_open(void)
{
	px_config *cfg;
	if (px_config_create(&cfg) || px_config_load_env(cfg) ||
	    px_config_apply(cfg, "mpi:workers_per_rank=2", NULL))
		return NULL;
	px_config_set_initializer(cfg, worker_init, &init_value);
	px_executor *ex = NULL;
	int r = px_executor_create(&ex, cfg);
	if (r)
		fprintf(stderr, "test_mpi: px_executor_create: %s\n", px_strerror(r));
	px_config_destroy(cfg);
	return ex;
}

int main(int argc, char **argv)
{
	setenv("PAREX_EXECUTOR", "mpi", 1);
	if (argc > 1 && !strcmp(argv[1], "--mismatch")) {
		/* Every rank must be refused: PX_EVERSION, no task sent. */
		char err[256];
		px_executor *ex = NULL;
		int r = px_executor_open(&ex, NULL, err, sizeof(err));
#ifdef PX_TEST_PEER
		const char *who = "peer";
#else
		const char *who = "main";
#endif
		printf("mismatch %s: %d %s\n", who, r, err);
		return r == PX_EVERSION && !ex ? 0 : 1;
	}
	if (argc > 1 && !strcmp(argv[1], "--local-thread"))
		return local_thread();
	if (argc > 2 && !strcmp(argv[1], "--trace"))
		return traced(argv[2]);
	if (argc > 1 && !strcmp(argv[1], "--exit-inflight"))
		return exit_inflight();
	px_executor *ex = first_open();
	if (!ex)
		return 1;
	px_executor_destroy(ex);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(submit_results),
		cmocka_unit_test(both_ranks_serve),
		cmocka_unit_test(crash_in_load),
		cmocka_unit_test(map_records),
		cmocka_unit_test(cancel_and_timeout),
		cmocka_unit_test(large_payloads),
		cmocka_unit_test(concurrent_waiters),
		cmocka_unit_test(callbacks_only),
		cmocka_unit_test(wait_deadline),
		cmocka_unit_test(shutdown_pending),
		cmocka_unit_test(bounded_queue),
		cmocka_unit_test(api_rest),
		cmocka_unit_test(bad_keys),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
