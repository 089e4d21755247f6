/*
 * tests/test_executor.c - one test body for every executor backend.
 *
 * Each backend is a cmocka group whose setup only sets PAREX_EXECUTOR, and
 * every test opens its executor with px_executor_open(&ex, NULL, ...): the
 * backend is chosen through configuration alone, as a program would.
 * Shared state between the test and its tasks (gates, counters) lives in
 * px_executor_alloc() memory, so it works across processes too.
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

struct backend {
	const char *spec; /* PAREX_EXECUTOR for this group */
	bool concurrent;  /* tasks run apart from the submitter */
	bool remote;      /* mpi: no shared memory; workers, initializer fixed
			     by each rank's first open */
};

static const struct backend *cur;

static int use_backend(void **state)
{
	cur = *state;
	setenv("PAREX_EXECUTOR", cur->spec, 1);
	unsetenv("PAREX_CONFIG");
	return 0;
}

#define NEED_CONCURRENCY()                                                  \
	do {                                                                \
		if (!cur->concurrent)                                       \
			skip();                                             \
	} while (0)

#define NEED_LOCAL()                                                        \
	do {                                                                \
		if (cur->remote)                                            \
			skip();                                             \
	} while (0)

/* Tasks ------------------------------------------------------------------- */

static int double_it(px_task *t, const void *arg, size_t len)
{
	int64_t v;
	if (len != sizeof(v))
		return -EINVAL;
	memcpy(&v, arg, sizeof(v));
	v *= 2;
	return px_task_return(t, &v, sizeof(v));
}

static int fail_io(px_task *t, const void *arg, size_t len)
{
	(void)arg;
	return px_task_fail(t, -EIO, "failed on %zu bytes", len);
}

static int worker_id(px_task *t, const void *arg, size_t len)
{
	(void)arg;
	(void)len;
	int64_t id = px_task_worker_id(t);
	return px_task_return(t, &id, sizeof(id));
}

/* A gate in shared memory: tasks wait until the test opens it. */
static void wait_entered(struct gate *g, int n)
{
	while (atomic_load(&g->entered) < n)
		usleep(1000);
}

/* Tests ------------------------------------------------------------------- */

static void submit_and_result(void **state)
{
	(void)state;
	px_executor *ex = open_ex(NULL);
	px_future *fs[100];
	for (int64_t i = 0; i < 100; i++)
		assert_int_equal(px_executor_submit(ex, double_it, &i, sizeof(i),
						    NULL, &fs[i]), 0);
	for (int64_t i = 0; i < 100; i++) {
		assert_int_equal(get_i64(fs[i]), 2 * i);
		px_future_release(fs[i]);
	}
	px_executor_destroy(ex);
}

static void error_and_message(void **state)
{
	(void)state;
	px_executor *ex = open_ex(NULL);
	px_future *f;
	assert_int_equal(px_executor_submit(ex, fail_io, "abc", 3, NULL, &f), 0);
	assert_int_equal(px_future_wait(f, PX_FOREVER), 0);
	assert_int_equal(px_future_state_get(f), PX_FUTURE_DONE);
	assert_int_equal(px_future_error(f), -EIO);
	assert_string_equal(px_future_message(f), "failed on 3 bytes");
	assert_null(px_future_result(f, NULL));
	px_future_release(f);
	px_executor_destroy(ex);
}

/* Arguments are copied at submit; results are copied out of the task. */
static void by_value(void **state)
{
	(void)state;
	px_executor *ex = open_ex(NULL);
	char buf[3000];
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (char)(i * 7);
	char copy[sizeof(buf)];
	memcpy(copy, buf, sizeof(buf));
	px_future *f;
	assert_int_equal(px_executor_submit(ex, echo, buf, sizeof(buf), NULL, &f), 0);
	memset(buf, 0, sizeof(buf)); /* the task must not see this */
	assert_int_equal(px_future_wait(f, PX_FOREVER), 0);
	size_t len;
	const void *r = px_future_result(f, &len);
	assert_int_equal(len, sizeof(copy));
	assert_memory_equal(r, copy, sizeof(copy));
	px_future_release(f);

	/* Zero-length argument and result. */
	assert_int_equal(px_executor_submit(ex, echo, NULL, 0, NULL, &f), 0);
	assert_int_equal(px_future_wait(f, PX_FOREVER), 0);
	assert_int_equal(px_future_error(f), 0);
	assert_null(px_future_result(f, &len));
	assert_int_equal(len, 0);
	px_future_release(f);
	px_executor_destroy(ex);
}

static void sizes_and_bad_input(void **state)
{
	(void)state;
	px_executor *ex = open_ex(":max_arg=64,max_result=16");
	px_future *f = (px_future *)1;
	char big[65] = { 0 };
	int64_t v = 1;
	assert_int_equal(px_executor_submit(ex, echo, big, 65, NULL, &f), -EMSGSIZE);
	assert_null(f);
	assert_int_equal(px_executor_submit(NULL, echo, &v, 8, NULL, &f), -EINVAL);
	assert_int_equal(px_executor_submit(ex, NULL, &v, 8, NULL, &f), -EINVAL);
	assert_int_equal(px_executor_submit(ex, echo, &v, 8, NULL, NULL), -EINVAL);
	assert_int_equal(px_executor_submit(ex, echo, NULL, 8, NULL, &f), -EINVAL);
	px_submit_opts bad = { .flags = 0x100 };
	assert_int_equal(px_executor_submit(ex, echo, &v, 8, &bad, &f), -EINVAL);
	/* A result over max_result: px_task_return refuses, the task fails. */
	assert_int_equal(px_executor_submit(ex, echo, big, 17, NULL, &f), 0);
	assert_int_equal(px_future_wait(f, PX_FOREVER), 0);
	assert_int_equal(px_future_error(f), -EMSGSIZE);
	px_future_release(f);
	assert_int_equal(px_executor_submit(ex, echo, big, 16, NULL, &f), 0);
	assert_int_equal(px_future_wait(f, PX_FOREVER), 0);
	assert_int_equal(px_future_error(f), 0);
	px_future_release(f);
	assert_int_equal(px_executor_stats_get(ex, NULL), -EINVAL);
	assert_int_equal(px_executor_alloc(ex, 0, (void **)&f), -EINVAL);
	assert_int_equal(px_executor_shutdown(NULL, true, false), -EINVAL);
	px_executor_destroy(ex);
	px_executor_destroy(NULL);
}

static void workers_and_ids(void **state)
{
	(void)state;
	NEED_LOCAL();
	px_executor *ex = open_ex(":workers=3");
	int n = px_executor_workers(ex);
	if (cur->concurrent)
		assert_int_equal(n, 3);
	else
		assert_int_equal(n, 1);
	assert_string_equal(px_executor_backend(ex),
			    strncmp(cur->spec, "inline", 6) == 0 ? "inline"
			    : strncmp(cur->spec, "thread", 6) == 0 ? "thread"
								    : "process");
	px_future *fs[64];
	for (int i = 0; i < 64; i++)
		assert_int_equal(px_executor_submit(ex, worker_id, NULL, 0, NULL, &fs[i]), 0);
	for (int i = 0; i < 64; i++) {
		int64_t id = get_i64(fs[i]);
		assert_true(id >= 0 && id < n);
		px_future_release(fs[i]);
	}
	px_executor_destroy(ex);
}

struct rec {
	int32_t x;
	int32_t fail;
};

static int square_rec(px_task *t, const void *arg, size_t len)
{
	struct rec r;
	if (len != sizeof(r))
		return -EINVAL;
	memcpy(&r, arg, sizeof(r));
	if (r.fail)
		return -ERANGE;
	int64_t sq = (int64_t)r.x * r.x;
	return px_task_return(t, &sq, sizeof(sq));
}

struct progress {
	size_t calls, last, total;
	bool monotonic;
};

static void on_progress(size_t done, size_t total, void *arg)
{
	struct progress *p = arg;
	if (done < p->last)
		p->monotonic = false;
	p->calls++;
	p->last = done;
	p->total = total;
}

static void map_in_order(void **state)
{
	(void)state;
	px_executor *ex = open_ex(NULL);
	enum { N = 5000 };
	struct rec *in = calloc(N, sizeof(*in));
	int64_t *out = calloc(N, sizeof(*out));
	int *errs = calloc(N, sizeof(*errs));
	for (int i = 0; i < N; i++)
		in[i].x = i;
	size_t chunks[] = { 1, 7, 0, 100000 };
	for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
		struct progress p = { .monotonic = true };
		px_map_opts o = { .chunk = chunks[c], .errors = errs,
				  .progress = on_progress, .progress_arg = &p };
		memset(out, 0xff, N * sizeof(*out));
		assert_int_equal(px_executor_map(ex, square_rec, in, sizeof(*in), N,
						 out, sizeof(*out), &o), 0);
		for (int i = 0; i < N; i++) {
			assert_int_equal(out[i], (int64_t)i * i);
			assert_int_equal(errs[i], 0);
		}
		assert_true(p.monotonic);
		assert_int_equal(p.last, N);
		assert_int_equal(p.total, N);
		assert_true(p.calls >= 1);
	}
	/* Failures: per-record codes, the first by input order returned. */
	in[1234].fail = 1;
	in[4000].fail = 1;
	px_map_opts o = { .chunk = 16, .errors = errs };
	assert_int_equal(px_executor_map(ex, square_rec, in, sizeof(*in), N, out,
					 sizeof(*out), &o), -ERANGE);
	for (int i = 0; i < N; i++) {
		if (i == 1234 || i == 4000) {
			assert_int_equal(errs[i], -ERANGE);
		} else {
			assert_int_equal(errs[i], 0);
			assert_int_equal(out[i], (int64_t)i * i);
		}
	}
	/* Results too big for result_size fail those records. */
	in[1234].fail = in[4000].fail = 0;
	int32_t small[4];
	assert_int_equal(px_executor_map(ex, square_rec, in, sizeof(*in), 4, small,
					 sizeof(small[0]), NULL), -EMSGSIZE);
	/* Bad input. */
	assert_int_equal(px_executor_map(ex, NULL, in, sizeof(*in), N, out,
					 sizeof(*out), NULL), -EINVAL);
	assert_int_equal(px_executor_map(ex, square_rec, NULL, sizeof(*in), N, out,
					 sizeof(*out), NULL), -EINVAL);
	assert_int_equal(px_executor_map(ex, square_rec, in, sizeof(*in), 0, out,
					 sizeof(*out), NULL), 0);
	free(in);
	free(out);
	free(errs);
	px_executor_destroy(ex);
}

/* Record i returns i as 8 bytes, 3 bytes of it, or nothing, by i % 3; every
 * 7th record fails after returning its result. */
static int varlen_rec(px_task *t, const void *arg, size_t len)
{
	int64_t i;
	if (len != sizeof(i))
		return -EINVAL;
	memcpy(&i, arg, sizeof(i));
	int r = 0;
	if (i % 3 == 0)
		r = px_task_return(t, &i, sizeof(i));
	else if (i % 3 == 1)
		r = px_task_return(t, &i, 3);
	if (r)
		return r;
	return i % 7 == 6 ? -ERANGE : 0;
}

static void map_short_results_zero_padded(void **state)
{
	(void)state;
	px_executor *ex = open_ex(NULL);
	enum { N = 40000 };
	int64_t *in = calloc(N, sizeof(*in));
	int64_t *out = calloc(N, sizeof(*out));
	int *errs = calloc(N, sizeof(*errs));
	for (int i = 0; i < N; i++)
		in[i] = i + 0x0102030405060700;
	/* Several maps over the same pool, chunks big and small: chunk
	 * buffers are recycled, and no stale bytes may show through. */
	size_t chunks[] = { 0, 1000, 3, 0 };
	for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
		struct progress p = { .monotonic = true };
		px_map_opts o = { .chunk = chunks[c], .errors = errs,
				  .progress = on_progress, .progress_arg = &p };
		memset(out, 0xff, N * sizeof(*out));
		memset(errs, 0x55, N * sizeof(*errs));
		assert_int_equal(px_executor_map(ex, varlen_rec, in, sizeof(*in),
						 N, out, sizeof(*out), &o),
				 -ERANGE);
		size_t failed = 0;
		for (int i = 0; i < N; i++) {
			int64_t v = in[i], want = 0;
			if (v % 3 == 0)
				want = v;
			else if (v % 3 == 1)
				memcpy(&want, &v, 3);
			assert_int_equal(out[i], want);
			assert_int_equal(errs[i], v % 7 == 6 ? -ERANGE : 0);
			failed += errs[i] != 0;
		}
		assert_true(failed > 0);
		assert_true(p.monotonic);
		assert_int_equal(p.last, N);
	}
	free(in);
	free(out);
	free(errs);
	px_executor_destroy(ex);
}

static void map_timeout(void **state)
{
	(void)state;
	NEED_LOCAL();
	NEED_CONCURRENCY();
	px_executor *ex = open_ex(":workers=1");
	struct gate *g;
	assert_int_equal(px_executor_alloc(ex, sizeof(*g), (void **)&g), 0);
	struct gate *args[8];
	for (int i = 0; i < 8; i++)
		args[i] = g;
	int errs[8];
	px_map_opts o = { .chunk = 1, .timeout_ns = 50 * PX_MSEC, .errors = errs };
	assert_int_equal(px_executor_map(ex, wait_gate, args, sizeof(args[0]), 8,
					 NULL, 0, &o), -ETIMEDOUT);
	assert_int_equal(errs[7], -ETIMEDOUT);
	atomic_store(&g->open, 1);
	px_executor_shutdown(ex, true, false);
	px_executor_stats stats;
	px_executor_stats_get(ex, &stats);
	/* The records that had not started were cancelled. */
	assert_true(stats.cancelled >= 6);
	px_executor_free(ex, g);
	px_executor_destroy(ex);
}

static void cancel_queued_and_running(void **state)
{
	(void)state;
	NEED_LOCAL();
	NEED_CONCURRENCY();
	px_executor *ex = open_ex(":workers=1");
	struct gate *g;
	assert_int_equal(px_executor_alloc(ex, sizeof(*g), (void **)&g), 0);
	px_future *running, *queued;
	assert_int_equal(px_executor_submit(ex, wait_gate, &g, sizeof(g), NULL, &running), 0);
	wait_entered(g, 1);
	assert_int_equal(px_executor_submit(ex, wait_gate, &g, sizeof(g), NULL, &queued), 0);
	assert_int_equal(px_future_state_get(running), PX_FUTURE_RUNNING);
	assert_int_equal(px_future_cancel(running, 0), -EBUSY);
	assert_int_equal(px_future_cancel(queued, 0), 0);
	assert_int_equal(px_future_state_get(queued), PX_FUTURE_CANCELLED);
	assert_int_equal(px_future_error(queued), -ECANCELED);
	atomic_store(&g->open, 1);
	assert_int_equal(px_future_wait(running, PX_FOREVER), 0);
	assert_int_equal(px_future_error(running), 0);
	px_executor_shutdown(ex, true, false);
	assert_int_equal(atomic_load(&g->entered), 1); /* cancelled one never ran */
	px_executor_stats st;
	px_executor_stats_get(ex, &st);
	assert_int_equal(st.cancelled, 1);
	assert_int_equal(st.completed, 1);
	px_future_release(running);
	px_future_release(queued);
	px_executor_free(ex, g);
	px_executor_destroy(ex);
}

static void shutdown_wait_runs_pending(void **state)
{
	(void)state;
	px_executor *ex = open_ex(":workers=2");
	enum { N = 200 };
	px_future *fs[N];
	for (int64_t i = 0; i < N; i++)
		assert_int_equal(px_executor_submit(ex, double_it, &i, 8, NULL, &fs[i]), 0);
	assert_int_equal(px_executor_shutdown(ex, true, false), 0);
	for (int i = 0; i < N; i++) {
		assert_true(px_future_is_done(fs[i])); /* all ran before return */
		assert_int_equal(get_i64(fs[i]), 2 * i);
	}
	int64_t v = 1;
	px_future *f = (px_future *)1;
	assert_int_equal(px_executor_submit(ex, double_it, &v, 8, NULL, &f), PX_ESHUTDOWN);
	assert_null(f);
	assert_int_equal(px_executor_shutdown(ex, true, false), 0); /* again: fine */
	px_executor_stats st;
	px_executor_stats_get(ex, &st);
	assert_int_equal(st.submitted, N);
	assert_int_equal(st.completed, N);
	assert_int_equal(st.queued, 0);
	assert_int_equal(st.running, 0);
	px_executor_destroy(ex);
	/* Futures outlive their executor. */
	for (int i = 0; i < N; i++) {
		assert_int_equal(get_i64(fs[i]), 2 * i);
		px_future_release(fs[i]);
	}
}

static void shutdown_cancel_pending(void **state)
{
	(void)state;
	NEED_LOCAL();
	NEED_CONCURRENCY();
	px_executor *ex = open_ex(":workers=2");
	struct gate *g;
	assert_int_equal(px_executor_alloc(ex, sizeof(*g), (void **)&g), 0);
	enum { N = 50 };
	px_future *fs[N];
	for (int i = 0; i < 2; i++)
		assert_int_equal(px_executor_submit(ex, wait_gate, &g, sizeof(g), NULL, &fs[i]), 0);
	wait_entered(g, 2);
	for (int i = 2; i < N; i++)
		assert_int_equal(px_executor_submit(ex, wait_gate, &g, sizeof(g), NULL, &fs[i]), 0);
	/* Without waiting: returns while two tasks still run. */
	assert_int_equal(px_executor_shutdown(ex, false, true), 0);
	for (int i = 2; i < N; i++)
		assert_int_equal(px_future_state_get(fs[i]), PX_FUTURE_CANCELLED);
	assert_false(px_future_is_done(fs[0]));
	atomic_store(&g->open, 1);
	assert_int_equal(px_wait(fs, N, PX_ALL_COMPLETED, PX_FOREVER, NULL), N);
	assert_int_equal(px_future_error(fs[0]), 0);
	assert_int_equal(px_future_error(fs[1]), 0);
	px_executor_shutdown(ex, true, false);
	px_executor_stats st;
	px_executor_stats_get(ex, &st);
	assert_int_equal(st.cancelled, N - 2);
	assert_int_equal(st.completed, 2);
	for (int i = 0; i < N; i++)
		px_future_release(fs[i]);
	px_executor_free(ex, g);
	px_executor_destroy(ex);
}

static void backpressure(void **state)
{
	(void)state;
	NEED_LOCAL();
	NEED_CONCURRENCY();
	px_executor *ex = open_ex(":workers=2,queue=4,block=0");
	struct gate *g;
	assert_int_equal(px_executor_alloc(ex, sizeof(*g), (void **)&g), 0);
	px_future *fs[16];
	int n = 0;
	for (; n < 2; n++)
		assert_int_equal(px_executor_submit(ex, wait_gate, &g, sizeof(g), NULL, &fs[n]), 0);
	wait_entered(g, 2);
	/* Exactly `queue` more fit, then -EAGAIN. */
	for (; n < 6; n++)
		assert_int_equal(px_executor_submit(ex, wait_gate, &g, sizeof(g), NULL, &fs[n]), 0);
	px_future *f = (px_future *)1;
	assert_int_equal(px_executor_submit(ex, wait_gate, &g, sizeof(g), NULL, &f), -EAGAIN);
	assert_null(f);
	px_executor_stats st;
	px_executor_stats_get(ex, &st);
	assert_int_equal(st.queued, 4);
	assert_int_equal(st.running, 2);
	atomic_store(&g->open, 1);
	assert_int_equal(px_wait(fs, n, PX_ALL_COMPLETED, PX_FOREVER, NULL), n);
	for (int i = 0; i < n; i++)
		px_future_release(fs[i]);
	px_executor_free(ex, g);
	px_executor_destroy(ex);
}

static void *open_later(void *arg)
{
	struct gate *g = arg;
	usleep(50000);
	atomic_store(&g->open, 1);
	return NULL;
}

static void nowait_flag_blocks_otherwise(void **state)
{
	(void)state;
	NEED_LOCAL();
	NEED_CONCURRENCY();
	px_executor *ex = open_ex(":workers=1,queue=2");
	struct gate *g;
	assert_int_equal(px_executor_alloc(ex, sizeof(*g), (void **)&g), 0);
	px_future *fs[4];
	assert_int_equal(px_executor_submit(ex, wait_gate, &g, sizeof(g), NULL, &fs[0]), 0);
	wait_entered(g, 1);
	assert_int_equal(px_executor_submit(ex, wait_gate, &g, sizeof(g), NULL, &fs[1]), 0);
	assert_int_equal(px_executor_submit(ex, wait_gate, &g, sizeof(g), NULL, &fs[2]), 0);
	px_submit_opts nowait = { .flags = PX_SUBMIT_NOWAIT };
	px_future *f;
	assert_int_equal(px_executor_submit(ex, wait_gate, &g, sizeof(g), &nowait, &f), -EAGAIN);
	/* A blocking submit waits until the gate opens and room appears. */
	pthread_t opener;
	pthread_create(&opener, NULL, open_later, g);
	assert_int_equal(px_executor_submit(ex, wait_gate, &g, sizeof(g), NULL, &fs[3]), 0);
	assert_true(atomic_load(&g->open));
	pthread_join(opener, NULL);
	assert_int_equal(px_wait(fs, 4, PX_ALL_COMPLETED, PX_FOREVER, NULL), 4);
	for (int i = 0; i < 4; i++)
		px_future_release(fs[i]);
	px_executor_free(ex, g);
	px_executor_destroy(ex);
}

static void stats_count_outcomes(void **state)
{
	(void)state;
	px_executor *ex = open_ex(NULL);
	enum { N = 300 };
	px_future *fs[N];
	for (int64_t i = 0; i < N; i++)
		assert_int_equal(px_executor_submit(ex, i % 3 ? double_it : fail_io,
						    &i, 8, NULL, &fs[i]), 0);
	assert_int_equal(px_wait(fs, N, PX_ALL_COMPLETED, PX_FOREVER, NULL), N);
	px_executor_shutdown(ex, true, false);
	px_executor_stats st;
	assert_int_equal(px_executor_stats_get(ex, &st), 0);
	assert_int_equal(st.submitted, N);
	assert_int_equal(st.failed, N / 3);
	assert_int_equal(st.completed, N - N / 3);
	assert_int_equal(st.cancelled, 0);
	assert_int_equal(st.queued, 0);
	assert_int_equal(st.running, 0);
	for (int i = 0; i < N; i++)
		px_future_release(fs[i]);
	px_executor_destroy(ex);
}

/* Initializer: sets a per-worker global that tasks then read. */
static __thread int64_t init_mark; /* per worker */

static int init_ok(int id, void *arg)
{
	(void)id;
	init_mark = (int64_t)(intptr_t)arg;
	return 0;
}

static int init_fails(int id, void *arg)
{
	(void)arg;
	return id == 0 ? -ENOTRECOVERABLE : 0;
}

static int read_mark(px_task *t, const void *arg, size_t len)
{
	(void)arg;
	(void)len;
	return px_task_return(t, &init_mark, sizeof(init_mark));
}

static void initializer(void **state)
{
	(void)state;
	NEED_LOCAL();
	px_config *cfg;
	assert_int_equal(px_config_create(&cfg), 0);
	assert_int_equal(px_config_load_env(cfg), 0);
	px_config_set_initializer(cfg, init_ok, (void *)(intptr_t)4242);
	px_executor *ex;
	init_mark = 0;
	assert_int_equal(px_executor_create(&ex, cfg), 0);
	px_future *fs[16];
	for (int i = 0; i < 16; i++)
		assert_int_equal(px_executor_submit(ex, read_mark, NULL, 0, NULL, &fs[i]), 0);
	for (int i = 0; i < 16; i++) {
		assert_int_equal(get_i64(fs[i]), 4242);
		px_future_release(fs[i]);
	}
	px_executor_destroy(ex);

	px_config_set_initializer(cfg, init_fails, NULL);
	ex = (px_executor *)1;
	assert_int_equal(px_executor_create(&ex, cfg), -ENOTRECOVERABLE);
	assert_null(ex);
	px_config_destroy(cfg);
}

/* Zero-copy buffers: a task writes into executor memory the caller reads. */
struct fill_arg {
	uint32_t *buf;
	uint32_t from, to;
};

static int fill(px_task *t, const void *arg, size_t len)
{
	(void)t;
	struct fill_arg a;
	if (len != sizeof(a))
		return -EINVAL;
	memcpy(&a, arg, sizeof(a));
	for (uint32_t i = a.from; i < a.to; i++)
		a.buf[i] = i * 3 + 1;
	return 0;
}

static void shared_buffers(void **state)
{
	(void)state;
	NEED_LOCAL();
	px_executor *ex = open_ex(NULL);
	enum { N = 1 << 20 };
	uint32_t *buf;
	assert_int_equal(px_executor_alloc(ex, N * sizeof(*buf), (void **)&buf), 0);
	assert_int_equal((uintptr_t)buf % 64, 0);
	for (int i = 0; i < N; i++)
		assert_int_equal(buf[i], 0); /* zeroed */
	px_future *fs[8];
	for (uint32_t k = 0; k < 8; k++) {
		struct fill_arg a = { buf, k * (N / 8), (k + 1) * (N / 8) };
		assert_int_equal(px_executor_submit(ex, fill, &a, sizeof(a), NULL, &fs[k]), 0);
	}
	assert_int_equal(px_wait(fs, 8, PX_ALL_COMPLETED, PX_FOREVER, NULL), 8);
	for (int i = 0; i < N; i++)
		if (buf[i] != (uint32_t)i * 3 + 1)
			fail_msg("buf[%d] = %u", i, buf[i]);
	for (int k = 0; k < 8; k++)
		px_future_release(fs[k]);
	px_executor_free(ex, buf);
	px_executor_free(ex, NULL);
	px_executor_destroy(ex);
}

static void count_cb(px_future *f, void *arg)
{
	(void)f;
	atomic_fetch_add((atomic_int *)arg, 1);
}

static void done_callbacks(void **state)
{
	(void)state;
	px_executor *ex = open_ex(NULL);
	atomic_int calls = 0;
	px_future *fs[50];
	for (int64_t i = 0; i < 50; i++) {
		assert_int_equal(px_executor_submit(ex, double_it, &i, 8, NULL, &fs[i]), 0);
		assert_int_equal(px_future_on_done(fs[i], count_cb, &calls), 0);
	}
	px_executor_shutdown(ex, true, false);
	assert_int_equal(atomic_load(&calls), 50);
	for (int i = 0; i < 50; i++)
		px_future_release(fs[i]);
	px_executor_destroy(ex);
}

/* as-completed and FIRST_COMPLETED over executor futures. */
static void as_completed_tasks(void **state)
{
	(void)state;
	px_executor *ex = open_ex(NULL);
	enum { N = 40 };
	px_future *fs[N];
	for (int64_t i = 0; i < N; i++)
		assert_int_equal(px_executor_submit(ex, double_it, &i, 8, NULL, &fs[i]), 0);
	assert_true(px_wait(fs, N, PX_FIRST_COMPLETED, PX_FOREVER, NULL) >= 1);
	px_as_completed *it;
	assert_int_equal(px_as_completed_open(&it, fs, N), 0);
	int64_t sum = 0;
	px_future *f;
	int n = 0;
	while (px_as_completed_next(it, PX_FOREVER, &f) == 0) {
		sum += get_i64(f);
		n++;
	}
	assert_int_equal(n, N);
	assert_int_equal(sum, (int64_t)N * (N - 1));
	px_as_completed_close(it);
	for (int i = 0; i < N; i++)
		px_future_release(fs[i]);
	px_executor_destroy(ex);
}

/* Cancels racing with workers: each future ends exactly one way, and the
 * counts agree with what cancel reported. */
static void cancel_race(void **state)
{
	(void)state;
	px_executor *ex = open_ex(NULL);
	enum { N = 2000 };
	px_future **fs = calloc(N, sizeof(*fs));
	int cancelled = 0;
	for (int64_t i = 0; i < N; i++) {
		assert_int_equal(px_executor_submit(ex, double_it, &i, 8, NULL, &fs[i]), 0);
		if (i % 2) {
			int r = px_future_cancel(fs[i], 0);
			assert_true(r == 0 || r == -EBUSY);
			cancelled += r == 0;
		}
	}
	assert_int_equal(px_wait(fs, N, PX_ALL_COMPLETED, PX_FOREVER, NULL), N);
	int seen_cancelled = 0;
	for (int i = 0; i < N; i++) {
		if (px_future_state_get(fs[i]) == PX_FUTURE_CANCELLED) {
			assert_int_equal(px_future_error(fs[i]), -ECANCELED);
			assert_true(i % 2);
			seen_cancelled++;
		} else {
			assert_int_equal(get_i64(fs[i]), 2 * i);
		}
		px_future_release(fs[i]);
	}
	assert_int_equal(seen_cancelled, cancelled);
	px_executor_shutdown(ex, true, false);
	px_executor_stats st;
	px_executor_stats_get(ex, &st);
	assert_int_equal(st.cancelled, (uint64_t)cancelled);
	assert_int_equal(st.completed, (uint64_t)(N - cancelled));
	assert_int_equal(st.submitted, N);
	free(fs);
	px_executor_destroy(ex);
}

#define BACKEND_TESTS                                                        \
	cmocka_unit_test(submit_and_result),                                 \
	cmocka_unit_test(error_and_message),                                 \
	cmocka_unit_test(by_value),                                          \
	cmocka_unit_test(sizes_and_bad_input),                               \
	cmocka_unit_test(workers_and_ids),                                   \
	cmocka_unit_test(map_in_order),                                      \
	cmocka_unit_test(map_short_results_zero_padded),                     \
	cmocka_unit_test(map_timeout),                                       \
	cmocka_unit_test(cancel_queued_and_running),                         \
	cmocka_unit_test(shutdown_wait_runs_pending),                        \
	cmocka_unit_test(shutdown_cancel_pending),                           \
	cmocka_unit_test(backpressure),                                      \
	cmocka_unit_test(nowait_flag_blocks_otherwise),                      \
	cmocka_unit_test(stats_count_outcomes),                              \
	cmocka_unit_test(initializer),                                       \
	cmocka_unit_test(shared_buffers),                                    \
	cmocka_unit_test(done_callbacks),                                    \
	cmocka_unit_test(as_completed_tasks),                                \
	cmocka_unit_test(cancel_race)

/* The backends this body runs on; each is selected only through config. */
static const struct backend backends[] = {
	{ "inline", false },
	{ "thread:workers=2", true },
	{ "thread:workers=2,gil=1", true },
	{ "process:workers=2", true },
	/* Only when asked for (`test_executor mpi`, under mpirun): ranks >= 1
	 * serve from the first open on. */
	{ "mpi:workers_per_rank=2", true, true },
};

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = { BACKEND_TESTS };
	int fails = 0;
	for (size_t b = 0; b < sizeof(backends) / sizeof(backends[0]); b++) {
		/* An argument picks backends by prefix: `test_executor thread`. */
		if (argc > 1 && strncmp(backends[b].spec, argv[1], strlen(argv[1])))
			continue;
		if (backends[b].remote && argc < 2)
			continue;
		if (!strncmp(backends[b].spec, "process", 7)) {
			px_executor *probe;
			int r = px_executor_open(&probe, "process:workers=1", NULL, 0);
			if (r == PX_ENOBACKEND) {
				printf("[ SKIPPED  ] %s: backend not built in\n",
				       backends[b].spec);
				continue;
			}
			px_executor_destroy(probe);
		}
		void *st = (void *)&backends[b];
		struct CMUnitTest group[sizeof(tests) / sizeof(tests[0])];
		for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
			group[i] = tests[i];
			group[i].initial_state = st;
			group[i].setup_func = use_backend;
		}
		fails += _cmocka_run_group_tests(backends[b].spec, group,
						 sizeof(group) / sizeof(group[0]),
						 NULL, NULL);
	}
	return fails ? 1 : 0;
}
