/*
 * tests/test_threadpool.c - what only the thread backend does: GIL
 * emulation, parking (idle workers use no CPU), worker threads and their
 * names, shutdown from inside a task.
 */
#include <dirent.h>
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

struct conc {
	atomic_int inside;
	atomic_int max_inside;
};

static void enter(struct conc *c)
{
	int now = atomic_fetch_add(&c->inside, 1) + 1;
	int m = atomic_load(&c->max_inside);
	while (now > m && !atomic_compare_exchange_weak(&c->max_inside, &m, now))
		;
}

/* Computes (no blocking call) for a while, counting who else computes. */
static int compute(px_task *t, const void *arg, size_t len)
{
	(void)t;
	(void)len;
	struct conc *c = *(struct conc *const *)arg;
	enter(c);
	volatile uint64_t x = 0;
	for (int i = 0; i < 3000000; i++)
		x += (uint64_t)i * i;
	atomic_fetch_sub(&c->inside, 1);
	return 0;
}

/* Blocks in a parex sleep, counting who else is inside the sleep. */
static int block(px_task *t, const void *arg, size_t len)
{
	(void)len;
	struct conc *c = *(struct conc *const *)arg;
	px_task_blocking_begin(t);
	enter(c);
	usleep(200000); /* long enough for the other worker to get in too */
	atomic_fetch_sub(&c->inside, 1);
	px_task_blocking_end(t);
	return 0;
}

static void run_all(px_executor *ex, px_task_fn fn, struct conc *c, int n)
{
	px_future *fs[16];
	for (int i = 0; i < n; i++)
		assert_int_equal(px_executor_submit(ex, fn, &c, sizeof(c), NULL, &fs[i]), 0);
	assert_int_equal(px_wait(fs, (size_t)n, PX_ALL_COMPLETED, PX_FOREVER, NULL), n);
	for (int i = 0; i < n; i++) {
		assert_int_equal(px_future_error(fs[i]), 0);
		px_future_release(fs[i]);
	}
}

static void gil_serialises_compute(void **state)
{
	(void)state;
	struct conc c = { 0 };
	px_executor *ex = open_ex("thread:workers=4,gil=1");
	run_all(ex, compute, &c, 8);
	assert_int_equal(atomic_load(&c.max_inside), 1);
	px_executor_destroy(ex);
}

static void gil_released_while_blocking(void **state)
{
	(void)state;
	struct conc c = { 0 };
	px_executor *ex = open_ex("thread:workers=2,gil=1");
	run_all(ex, block, &c, 2);
	/* Both were inside their blocking sections at once: the GIL was
	 * released around them, as CPython releases it around I/O. */
	assert_int_equal(atomic_load(&c.max_inside), 2);
	px_executor_destroy(ex);
}

static void without_gil_compute_overlaps(void **state)
{
	(void)state;
	struct conc c = { 0 };
	px_executor *ex = open_ex("thread:workers=2");
	/* Blocking tasks overlap without the GIL too (no CPU needed). */
	run_all(ex, block, &c, 2);
	assert_int_equal(atomic_load(&c.max_inside), 2);
	px_executor_destroy(ex);
}

/* A task that waits on a future releases the GIL while it waits. */
struct relay {
	px_future *promise;
	atomic_int started;
};

static int wait_promise(px_task *t, const void *arg, size_t len)
{
	(void)t;
	(void)len;
	struct relay *r = *(struct relay *const *)arg;
	atomic_store(&r->started, 1);
	return px_future_wait(r->promise, PX_FOREVER);
}

static int complete_promise(px_task *t, const void *arg, size_t len)
{
	(void)t;
	(void)len;
	struct relay *r = *(struct relay *const *)arg;
	while (!atomic_load(&r->started))
		px_task_sleep(t, 100000);
	return px_promise_set_i64(r->promise, 1);
}

static void gil_released_in_future_wait(void **state)
{
	(void)state;
	struct relay r = { 0 };
	assert_int_equal(px_promise_create(&r.promise), 0);
	struct relay *rp = &r;
	px_executor *ex = open_ex("thread:workers=2,gil=1");
	px_future *a, *b;
	assert_int_equal(px_executor_submit(ex, wait_promise, &rp, sizeof(rp), NULL, &a), 0);
	assert_int_equal(px_executor_submit(ex, complete_promise, &rp, sizeof(rp), NULL, &b), 0);
	/* Would deadlock if the waiting task kept the GIL. */
	assert_int_equal(px_future_wait(a, 10 * PX_SEC), 0);
	assert_int_equal(px_future_error(a), 0);
	assert_int_equal(px_future_wait(b, 10 * PX_SEC), 0);
	px_future_release(a);
	px_future_release(b);
	px_future_release(r.promise);
	px_executor_destroy(ex);
}

/* CPU ticks (utime+stime) of this process's threads named px-worker-*. */
static long worker_ticks(int *nworkers)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	long ticks = 0;
	*nworkers = 0;
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char path[300], buf[512];
		snprintf(path, sizeof(path), "/proc/self/task/%s/stat", e->d_name);
		FILE *fp = fopen(path, "r");
		if (!fp)
			continue;
		size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
		fclose(fp);
		buf[n] = 0;
		char *open = strchr(buf, '('), *close = strrchr(buf, ')');
		if (!open || !close || strncmp(open + 1, "px-worker-", 10))
			continue;
		(*nworkers)++;
		/* Fields after the name: state(3) ... utime(14) stime(15). */
		char *p = close + 2;
		long utime = 0, stime = 0;
		for (int field = 3; field <= 15 && p; field++) {
			if (field == 14)
				utime = atol(p);
			if (field == 15)
				stime = atol(p);
			p = strchr(p, ' ');
			if (p)
				p++;
		}
		ticks += utime + stime;
	}
	if (d)
		closedir(d);
	return ticks;
}

static int noop(px_task *t, const void *arg, size_t len)
{
	(void)t;
	(void)arg;
	(void)len;
	return 0;
}

static void idle_workers_park(void **state)
{
	(void)state;
	px_executor *ex = open_ex("thread:workers=2,spin_us=50");
	px_future *f;
	for (int i = 0; i < 100; i++) {
		assert_int_equal(px_executor_submit(ex, noop, NULL, 0, NULL, &f), 0);
		assert_int_equal(px_future_wait(f, PX_FOREVER), 0);
		px_future_release(f);
	}
	usleep(100000); /* past the spin: both park */
	int n;
	long before = worker_ticks(&n);
	assert_int_equal(n, 2); /* the workers are named threads */
	usleep(500000);
	long after = worker_ticks(&n);
	/* Parked on futexes: not one clock tick (10 ms) in half a second. */
	assert_int_equal(after - before, 0);
	/* And they still wake for work. */
	assert_int_equal(px_executor_submit(ex, noop, NULL, 0, NULL, &f), 0);
	assert_int_equal(px_future_wait(f, 10 * PX_SEC), 0);
	px_future_release(f);
	px_executor_destroy(ex);
	assert_int_equal(worker_ticks(&n), 0);
	assert_int_equal(n, 0); /* destroy joined them */
}

static px_executor *self_ex;

static int shutdown_self(px_task *t, const void *arg, size_t len)
{
	(void)t;
	(void)arg;
	(void)len;
	/* From inside its own task a waiting shutdown cannot wait for
	 * itself; it must not deadlock. */
	return px_executor_shutdown(self_ex, true, false);
}

static void shutdown_from_task(void **state)
{
	(void)state;
	self_ex = open_ex("thread:workers=2");
	px_future *f;
	assert_int_equal(px_executor_submit(self_ex, shutdown_self, NULL, 0, NULL, &f), 0);
	assert_int_equal(px_future_wait(f, 10 * PX_SEC), 0);
	assert_int_equal(px_future_error(f), 0);
	px_future_release(f);
	assert_int_equal(px_executor_submit(self_ex, noop, NULL, 0, NULL, &f), PX_ESHUTDOWN);
	px_executor_destroy(self_ex);
}

/* Many submitting threads against a small queue: blocking submits wake. */
struct flood {
	px_executor *ex;
	int n;
	atomic_int ok;
};

static void *flood_thread(void *arg)
{
	struct flood *fl = arg;
	for (int i = 0; i < fl->n; i++) {
		px_future *f;
		if (px_executor_submit(fl->ex, noop, NULL, 0, NULL, &f) == 0) {
			if (px_future_wait(f, PX_FOREVER) == 0)
				atomic_fetch_add(&fl->ok, 1);
			px_future_release(f);
		}
	}
	return NULL;
}

static void small_queue_many_submitters(void **state)
{
	(void)state;
	struct flood fl = { .ex = open_ex("thread:workers=2,queue=3"),
			    .n = (int)test_scaled(20000) };
	pthread_t th[6];
	for (int i = 0; i < 6; i++)
		pthread_create(&th[i], NULL, flood_thread, &fl);
	for (int i = 0; i < 6; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(atomic_load(&fl.ok), 6 * fl.n);
	px_executor_destroy(fl.ex);
}

int main(void)
{
	unsetenv("PAREX_EXECUTOR");
	unsetenv("PAREX_CONFIG");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(gil_serialises_compute),
		cmocka_unit_test(gil_released_while_blocking),
		cmocka_unit_test(without_gil_compute_overlaps),
		cmocka_unit_test(gil_released_in_future_wait),
		cmocka_unit_test(idle_workers_park),
		cmocka_unit_test(shutdown_from_task),
		cmocka_unit_test(small_queue_many_submitters),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
