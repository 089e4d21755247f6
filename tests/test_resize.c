/*
 * tests/test_resize.c - px_executor_resize() on the thread and process
 * pools: growing runs more tasks at once, shrinking lets running tasks
 * finish and then runs fewer, stats follow, bad counts and backends fail,
 * and resizing while several threads submit runs every task exactly once.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>

#include "test_util.h"

/* Shared with the tasks: plain memory on threads, the arena on processes. */
struct meter {
	atomic_int now;      /* tasks running */
	atomic_int peak;     /* most at once */
	atomic_int release;  /* let held tasks finish */
	atomic_int started;
};

struct marg {
	struct meter *m;
	int want;     /* hold until this many run at once (or released) */
	int64_t hold_ns;
};

/* Counts itself running, waits until `want` have run at once (the peak, so
 * that the first to leave does not strand the others) or it is released (at
 * most hold_ns), returns its worker id. */
static int metered(px_task *t, const void *arg, size_t len)
{
	(void)len;
	const struct marg *a = arg;
	struct meter *m = a->m;
	int n = atomic_fetch_add(&m->now, 1) + 1;
	atomic_fetch_add(&m->started, 1);
	for (int p = atomic_load(&m->peak); n > p;)
		if (atomic_compare_exchange_weak(&m->peak, &p, n))
			break;
	int64_t end = test_now_ns() + a->hold_ns;
	while (atomic_load(&m->peak) < a->want && !atomic_load(&m->release) &&
	       test_now_ns() < end)
		usleep(200);
	atomic_fetch_sub(&m->now, 1);
	int64_t id = px_task_worker_id(t);
	return px_task_return(t, &id, sizeof(id));
}

static uint64_t stat_workers(px_executor *ex)
{
	px_executor_stats st;
	assert_int_equal(px_executor_stats_get(ex, &st), 0);
	return st.workers;
}

/* Grows 1 -> 3 (three tasks then meet), shrinks 3 -> 1 while they run
 * (they all finish), then runs one task at a time, and grows back. */
static void grow_shrink_case(const char *spec)
{
	px_executor *ex = open_ex(spec);
	assert_int_equal(px_executor_workers(ex), 1);
	struct meter *m;
	assert_int_equal(px_executor_alloc(ex, sizeof(*m), (void **)&m), 0);
	assert_int_equal(px_executor_resize(ex, 3), 0);
	assert_int_equal(px_executor_workers(ex), 3);
	assert_int_equal(stat_workers(ex), 3);
	struct marg a = { m, 3, 60 * (int64_t)1000000000 };
	px_future *f[3];
	for (int i = 0; i < 3; i++)
		assert_int_equal(px_executor_submit(ex, metered, &a, sizeof(a), NULL,
						    &f[i]), 0);
	/* All three run at once: they wait for each other. */
	int64_t end = test_now_ns() + 60 * (int64_t)1000000000;
	while (atomic_load(&m->peak) < 3) {
		assert_true(test_now_ns() < end);
		usleep(500);
	}
	/* Shrink while they run: each one finishes with its result. */
	int threads_before = test_thread_count();
	assert_int_equal(px_executor_resize(ex, 1), 0);
	assert_int_equal(stat_workers(ex), 1);
	assert_int_equal(px_executor_workers(ex), 1);
	int ids = 0;
	for (int i = 0; i < 3; i++) {
		int64_t id = get_i64(f[i]);
		assert_true(id >= 0 && id < 3);
		ids |= 1 << id;
		px_future_release(f[i]);
	}
	assert_int_equal(ids, 7);
	/* The retired ones go away (threads: the count drops back). */
	if (!strncmp(spec, "thread", 6)) {
		int want = threads_before - 2;
		end = test_now_ns() + 60 * (int64_t)1000000000;
		while (test_thread_count() > want) {
			assert_true(test_now_ns() < end);
			usleep(1000);
		}
	}
	/* Now one at a time: four tasks that would wait for two. */
	atomic_store(&m->peak, 0);
	struct marg b = { m, 2, 100 * (int64_t)1000000 };
	px_future *g[4];
	for (int i = 0; i < 4; i++)
		assert_int_equal(px_executor_submit(ex, metered, &b, sizeof(b), NULL,
						    &g[i]), 0);
	for (int i = 0; i < 4; i++) {
		get_i64(g[i]);
		px_future_release(g[i]);
	}
	assert_int_equal(atomic_load(&m->peak), 1);
	/* Grow again, past the first size. */
	assert_int_equal(px_executor_resize(ex, 4), 0);
	assert_int_equal(stat_workers(ex), 4);
	atomic_store(&m->peak, 0);
	struct marg c = { m, 4, 60 * (int64_t)1000000000 };
	px_future *h[4];
	for (int i = 0; i < 4; i++)
		assert_int_equal(px_executor_submit(ex, metered, &c, sizeof(c), NULL,
						    &h[i]), 0);
	for (int i = 0; i < 4; i++) {
		int64_t id = get_i64(h[i]);
		assert_true(id >= 0 && id < 4);
		px_future_release(h[i]);
	}
	assert_int_equal(atomic_load(&m->peak), 4);
	px_executor_free(ex, m);
	px_executor_destroy(ex);
}

static void grow_and_shrink_thread(void **state)
{
	(void)state;
	grow_shrink_case("thread:workers=1");
}

static void grow_and_shrink_process(void **state)
{
	(void)state;
	grow_shrink_case("process:workers=1");
}

/* Shrinking and growing back at once takes back the retiring workers. */
static void shrink_then_grow_at_once(void **state)
{
	(void)state;
	const char *specs[] = { "thread:workers=4", "process:workers=4" };
	for (int s = 0; s < 2; s++) {
		px_executor *ex = open_ex(specs[s]);
		for (int i = 0; i < 20; i++) {
			assert_int_equal(px_executor_resize(ex, 1 + i % 3), 0);
			assert_int_equal(px_executor_resize(ex, 4), 0);
		}
		assert_int_equal(stat_workers(ex), 4);
		px_future *f[16];
		for (int64_t i = 0; i < 16; i++)
			assert_int_equal(px_executor_submit(ex, echo, &i, sizeof(i),
							    NULL, &f[i]), 0);
		for (int i = 0; i < 16; i++) {
			assert_int_equal(get_i64(f[i]), i);
			px_future_release(f[i]);
		}
		px_executor_destroy(ex);
	}
}

static void bad_resizes_fail(void **state)
{
	(void)state;
	assert_int_equal(px_executor_resize(NULL, 2), -EINVAL);
	px_executor *ex = open_ex("inline");
	assert_int_equal(px_executor_resize(ex, 2), -ENOTSUP);
	px_executor_destroy(ex);
	const char *specs[] = { "thread:workers=1", "process:workers=1" };
	for (int s = 0; s < 2; s++) {
		ex = open_ex(specs[s]);
		assert_int_equal(px_executor_resize(ex, 0), -EINVAL);
		assert_int_equal(px_executor_resize(ex, -3), -EINVAL);
		assert_int_equal(px_executor_resize(ex, 4097), -EINVAL);
		assert_int_equal(stat_workers(ex), 1);
		assert_int_equal(px_executor_shutdown(ex, true, false), 0);
		assert_int_equal(px_executor_resize(ex, 2), PX_ESHUTDOWN);
		px_executor_destroy(ex);
	}
	/* The process pool's slots: 4 x its start, at least 16. */
	ex = open_ex("process:workers=1");
	assert_int_equal(px_executor_resize(ex, 17), -ENOSPC);
	assert_int_equal(stat_workers(ex), 1);
	assert_int_equal(px_executor_resize(ex, 16), 0);
	assert_int_equal(stat_workers(ex), 16);
	px_executor_destroy(ex);
}

/* A grown thread worker whose initializer fails is not kept. */
static int init_fails_from_2(int id, void *arg)
{
	(void)arg;
	return id >= 2 ? -EPERM : 0;
}

static void thread_grow_reports_initializer_failure(void **state)
{
	(void)state;
	px_config *cfg;
	assert_int_equal(px_config_create(&cfg), 0);
	assert_int_equal(px_config_apply(cfg, "thread:workers=2", NULL), 0);
	px_config_set_initializer(cfg, init_fails_from_2, NULL);
	px_executor *ex;
	assert_int_equal(px_executor_create(&ex, cfg), 0);
	px_config_destroy(cfg);
	assert_int_equal(px_executor_resize(ex, 4), -EPERM);
	assert_int_equal(stat_workers(ex), 2);
	assert_int_equal(px_executor_workers(ex), 2);
	int64_t x = 3;
	px_future *f;
	assert_int_equal(px_executor_submit(ex, echo, &x, sizeof(x), NULL, &f), 0);
	assert_int_equal(get_i64(f), 3);
	px_future_release(f);
	px_executor_destroy(ex);
}

/* Resizing while several threads submit: every task runs exactly once. */
struct sarg {
	atomic_int *hits;
	int i;
};

static int hit(px_task *t, const void *arg, size_t len)
{
	(void)t;
	(void)len;
	const struct sarg *a = arg;
	atomic_fetch_add(&a->hits[a->i], 1);
	return 0;
}

struct submitter {
	px_executor *ex;
	atomic_int *hits;
	int from, n;
	px_future **fs;
};

static void *submit_range(void *p)
{
	struct submitter *s = p;
	for (int i = 0; i < s->n; i++) {
		struct sarg a = { s->hits, s->from + i };
		if (px_executor_submit(s->ex, hit, &a, sizeof(a), NULL, &s->fs[i]))
			return (void *)1;
	}
	return NULL;
}

static void resize_under_submit_case(const char *spec)
{
	enum { THREADS = 3 };
	px_executor *ex = open_ex(spec);
	int per = (int)test_scaled(4000), n = per * THREADS;
	atomic_int *hits;
	assert_int_equal(px_executor_alloc(ex, sizeof(*hits) * (size_t)n,
					   (void **)&hits), 0);
	px_future **fs = calloc((size_t)n, sizeof(*fs));
	assert_non_null(fs);
	struct submitter sub[THREADS];
	pthread_t th[THREADS];
	for (int k = 0; k < THREADS; k++) {
		sub[k] = (struct submitter){ ex, hits, k * per, per, fs + k * per };
		assert_int_equal(pthread_create(&th[k], NULL, submit_range, &sub[k]), 0);
	}
	unsigned seed = 1;
	for (int i = 0; i < 60; i++) {
		seed = seed * 1103515245 + 12345;
		assert_int_equal(px_executor_resize(ex, 1 + (int)(seed >> 16) % 4), 0);
		usleep(500);
	}
	for (int k = 0; k < THREADS; k++) {
		void *r;
		pthread_join(th[k], &r);
		assert_null(r);
	}
	assert_int_equal(px_wait(fs, (size_t)n, PX_ALL_COMPLETED, PX_FOREVER, NULL), n);
	for (int i = 0; i < n; i++) {
		assert_int_equal(px_future_error(fs[i]), 0);
		assert_int_equal(atomic_load(&hits[i]), 1);
		px_future_release(fs[i]);
	}
	free(fs);
	px_executor_free(ex, hits);
	/* Outcomes are counted just after the future completes. */
	assert_int_equal(px_executor_shutdown(ex, true, false), 0);
	px_executor_stats st;
	assert_int_equal(px_executor_stats_get(ex, &st), 0);
	assert_int_equal(st.submitted, (uint64_t)n);
	assert_int_equal(st.completed, (uint64_t)n);
	assert_int_equal(st.queued + st.running, 0);
	px_executor_destroy(ex);
}

static void resize_while_submitting_thread(void **state)
{
	(void)state;
	resize_under_submit_case("thread:workers=2");
}

static void resize_while_submitting_process(void **state)
{
	(void)state;
	resize_under_submit_case("process:workers=2");
}

/* A task may resize its own pool, shrinking it under itself. */
static int shrink_own_pool(px_task *t, const void *arg, size_t len)
{
	(void)len;
	px_executor *ex;
	memcpy(&ex, arg, sizeof(ex));
	int64_t r = px_executor_resize(ex, 1);
	return px_task_return(t, &r, sizeof(r));
}

static void task_shrinks_its_thread_pool(void **state)
{
	(void)state;
	px_executor *ex = open_ex("thread:workers=3");
	px_future *f;
	assert_int_equal(px_executor_submit(ex, shrink_own_pool, &ex, sizeof(ex),
					    NULL, &f), 0);
	assert_int_equal(get_i64(f), 0);
	px_future_release(f);
	assert_int_equal(stat_workers(ex), 1);
	int64_t x = 9;
	assert_int_equal(px_executor_submit(ex, echo, &x, sizeof(x), NULL, &f), 0);
	assert_int_equal(get_i64(f), 9);
	px_future_release(f);
	px_executor_destroy(ex);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(grow_and_shrink_thread),
		cmocka_unit_test(grow_and_shrink_process),
		cmocka_unit_test(shrink_then_grow_at_once),
		cmocka_unit_test(bad_resizes_fail),
		cmocka_unit_test(thread_grow_reports_initializer_failure),
		cmocka_unit_test(resize_while_submitting_thread),
		cmocka_unit_test(resize_while_submitting_process),
		cmocka_unit_test(task_shrinks_its_thread_pool),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
