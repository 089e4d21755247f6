/*
 * tests/test_worker_rss.c - max_worker_rss on the process pool: a worker
 * whose private resident memory passed the threshold after a task (here a
 * task that leaks 64 MiB) is replaced before its next task; the task's
 * result is kept, tasks queued behind it run once, stats count the respawn;
 * a worker below the threshold is kept.
 */
#include <errno.h>

#include "test_util.h"

#define MIB (1024 * 1024)

static int my_pid(px_task *t, const void *arg, size_t len)
{
	(void)arg;
	(void)len;
	int64_t v = getpid();
	return px_task_return(t, &v, sizeof(v));
}

/* Leaks 64 MiB it has touched, returns its pid. */
static int leak64(px_task *t, const void *arg, size_t len)
{
	(void)arg;
	(void)len;
	char *p = malloc(64 * MIB);
	if (!p)
		return -ENOMEM;
	memset(p, 0x5a, 64 * MIB);
	/* Keep it reachable from nowhere the compiler can drop. */
	__asm__ volatile("" : : "r"(p) : "memory");
	int64_t v = getpid();
	return px_task_return(t, &v, sizeof(v));
}

/* The worker's private resident memory (resident - shared, statm). */
static int private_rss(px_task *t, const void *arg, size_t len)
{
	(void)arg;
	(void)len;
	FILE *fp = fopen("/proc/self/statm", "r");
	unsigned long long size, res, shared;
	if (!fp)
		return -errno;
	int n = fscanf(fp, "%llu %llu %llu", &size, &res, &shared);
	fclose(fp);
	if (n != 3)
		return -EIO;
	int64_t v = (int64_t)(res - shared) * sysconf(_SC_PAGESIZE);
	return px_task_return(t, &v, sizeof(v));
}

static int64_t run_i64(px_executor *ex, px_task_fn fn)
{
	px_future *f;
	assert_int_equal(px_executor_submit(ex, fn, NULL, 0, NULL, &f), 0);
	int64_t v = get_i64(f);
	px_future_release(f);
	return v;
}

/* A threshold 32 MiB over an idle worker's own memory (a sanitizer's
 * runtime can take more than 32 MiB by itself), at least 32M. */
static long threshold_mib(void)
{
	px_executor *probe = open_ex("process:workers=1");
	int64_t base = run_i64(probe, private_rss);
	px_executor_destroy(probe);
	long mib = (long)(base / MIB) + 32;
	return mib < 32 ? 32 : mib;
}

static void leaking_worker_is_replaced(void **state)
{
	(void)state;
	char spec[128];
	snprintf(spec, sizeof(spec), "process:workers=1,max_worker_rss=%ldM",
		 threshold_mib());
	px_executor *ex = open_ex(spec);
	int64_t pid = run_i64(ex, my_pid);
	/* Below the threshold: the same worker, again and again. */
	for (int i = 0; i < 5; i++)
		assert_int_equal(run_i64(ex, my_pid), pid);
	/* The leak: its result arrives, and tasks queued behind it run
	 * exactly once, in a new worker. */
	px_future *leak, *after[20];
	assert_int_equal(px_executor_submit(ex, leak64, NULL, 0, NULL, &leak), 0);
	for (int64_t i = 0; i < 20; i++)
		assert_int_equal(px_executor_submit(ex, echo, &i, sizeof(i), NULL,
						    &after[i]), 0);
	assert_int_equal(get_i64(leak), pid);
	px_future_release(leak);
	for (int i = 0; i < 20; i++) {
		assert_int_equal(get_i64(after[i]), i);
		px_future_release(after[i]);
	}
	int64_t pid2 = run_i64(ex, my_pid);
	assert_int_not_equal(pid2, pid);
	px_executor_stats st;
	assert_int_equal(px_executor_stats_get(ex, &st), 0);
	assert_int_equal(st.workers, 1);
	/* Outcomes are counted just after the future completes: read them
	 * once every worker is done. */
	assert_int_equal(px_executor_shutdown(ex, true, false), 0);
	assert_int_equal(px_executor_stats_get(ex, &st), 0);
	assert_int_equal(st.respawns, 1);
	assert_int_equal(st.failed, 0);
	assert_int_equal(st.completed, 6 + 1 + 20 + 1);
	px_executor_destroy(ex);
}

/* Without the key, the leak stays in the worker: no replacement. */
static void no_threshold_keeps_the_worker(void **state)
{
	(void)state;
	px_executor *ex = open_ex("process:workers=1");
	int64_t pid = run_i64(ex, my_pid);
	assert_int_equal(run_i64(ex, leak64), pid);
	assert_int_equal(run_i64(ex, my_pid), pid);
	px_executor_stats st;
	assert_int_equal(px_executor_stats_get(ex, &st), 0);
	assert_int_equal(st.respawns, 0);
	px_executor_destroy(ex);
}

static void bad_threshold_is_rejected(void **state)
{
	(void)state;
	px_config *cfg;
	assert_int_equal(px_config_create(&cfg), 0);
	assert_int_equal(px_config_apply(cfg, "process:max_worker_rss=lots", NULL),
			 -EINVAL);
	assert_non_null(strstr(px_config_error(cfg), "max_worker_rss"));
	assert_int_equal(px_config_apply(cfg, "process:max_worker_rss=2T", NULL),
			 -EINVAL);
	assert_int_equal(px_config_apply(cfg, "process:max_worker_rss=512M", NULL), 0);
	char buf[512];
	assert_true(px_config_format(cfg, buf, sizeof(buf)) > 0);
	assert_non_null(strstr(buf, "max_worker_rss=536870912"));
	px_config_destroy(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(leaking_worker_is_replaced),
		cmocka_unit_test(no_threshold_keeps_the_worker),
		cmocka_unit_test(bad_threshold_is_rejected),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
