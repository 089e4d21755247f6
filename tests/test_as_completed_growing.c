/*
 * tests/test_as_completed_growing.c - the growing as-completed set: adds
 * while iterating (from the iterating thread, another thread and done
 * callbacks), PX_AS_COMPLETED_TAKE handing each reference over, sealing,
 * and memory that stays flat while a million futures pass through.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "test_util.h"

#ifdef __SANITIZE_ADDRESS__
/* Freed blocks sit in ASan's quarantine (256 MB by default), which would
 * look like growth to the RSS check; a small one still catches reuse. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "quarantine_size_mb=4";
}
#endif

/* Resident set size in bytes, from /proc/self/statm. */
static long rss_bytes(void)
{
	FILE *fp = fopen("/proc/self/statm", "r");
	long size = 0, res = 0;
	if (!fp)
		return -1;
	if (fscanf(fp, "%ld %ld", &size, &res) != 2)
		res = -1;
	fclose(fp);
	return res < 0 ? -1 : res * sysconf(_SC_PAGESIZE);
}

static void bad_arguments(void **state)
{
	(void)state;
	px_as_completed *it = (px_as_completed *)1;
	assert_int_equal(px_as_completed_create(NULL, 0), -EINVAL);
	assert_int_equal(px_as_completed_create(&it, 1u << 7), -EINVAL);
	assert_null(it);
	assert_int_equal(px_as_completed_create(&it, PX_AS_COMPLETED_TAKE), 0);
	px_future *f;
	assert_int_equal(px_promise_create(&f), 0);
	assert_int_equal(px_as_completed_add(NULL, f), -EINVAL);
	assert_int_equal(px_as_completed_add(it, NULL), -EINVAL);
	assert_int_equal(px_as_completed_seal(NULL), -EINVAL);
	assert_int_equal(px_as_completed_next(it, 0, NULL), -EINVAL);
	assert_int_equal(px_as_completed_seal(it), 0);
	assert_int_equal(px_as_completed_add(it, f), -EPIPE);
	assert_int_equal(px_as_completed_next(it, 0, &f), PX_EEOF);
	px_as_completed_close(it);
	px_future_release(f);
}

/* Without OPEN an empty set is the end for now; adding more goes on. */
static void grows_after_end(void **state)
{
	(void)state;
	px_as_completed *it;
	assert_int_equal(px_as_completed_create(&it, PX_AS_COMPLETED_TAKE), 0);
	px_future *got;
	assert_int_equal(px_as_completed_next(it, PX_FOREVER, &got), PX_EEOF);
	px_future *a, *b;
	assert_int_equal(px_promise_create(&a), 0);
	assert_int_equal(px_promise_create(&b), 0);
	assert_int_equal(px_as_completed_add(it, a), 0);
	assert_int_equal(px_as_completed_next(it, 2 * PX_MSEC, &got), -ETIMEDOUT);
	px_promise_set_i64(b, 2);
	assert_int_equal(px_as_completed_add(it, b), 0); /* already done */
	assert_int_equal(px_as_completed_next(it, 0, &got), 0);
	assert_ptr_equal(got, b);
	px_future_release(got); /* TAKE: the set's reference, now ours */
	px_promise_set_i64(a, 1);
	assert_int_equal(px_as_completed_next(it, PX_FOREVER, &got), 0);
	assert_ptr_equal(got, a);
	px_future_release(got);
	assert_int_equal(px_as_completed_next(it, 0, &got), PX_EEOF);
	/* Our own references were never the set's. */
	assert_int_equal(get_i64(a) + get_i64(b), 3);
	px_future_release(a);
	px_future_release(b);
	px_as_completed_close(it);
}

/* Without TAKE the set keeps what it yields until closed. */
static void keeps_without_take(void **state)
{
	(void)state;
	px_as_completed *it;
	assert_int_equal(px_as_completed_create(&it, 0), 0);
	px_future *f;
	assert_int_equal(px_promise_create(&f), 0);
	assert_int_equal(px_as_completed_add(it, f), 0);
	px_promise_set_i64(f, 7);
	px_future_release(f);
	px_future *got;
	assert_int_equal(px_as_completed_next(it, PX_FOREVER, &got), 0);
	assert_ptr_equal(got, f);
	assert_int_equal(get_i64(got), 7); /* still alive: borrowed */
	assert_int_equal(px_as_completed_next(it, 0, &got), PX_EEOF);
	px_as_completed_close(it);
}

/* OPEN: another thread adds while this one iterates, then seals. */
struct feeder {
	px_as_completed *it;
	px_future **fs;
	long n;
};

static void *feed(void *arg)
{
	struct feeder *fd = arg;
	for (long i = 0; i < fd->n; i++) {
		if (px_as_completed_add(fd->it, fd->fs[i]))
			return (void *)1;
		if (i % 3 == 0)
			px_promise_set_i64(fd->fs[i], i);
	}
	for (long i = 0; i < fd->n; i++)
		if (i % 3)
			px_promise_set_i64(fd->fs[i], i);
	px_as_completed_seal(fd->it);
	return NULL;
}

static void open_set_fed_by_another_thread(void **state)
{
	(void)state;
	long n = test_scaled(20000);
	px_future **fs = calloc((size_t)n, sizeof(*fs));
	unsigned char *seen = calloc((size_t)n, 1);
	assert_non_null(fs);
	assert_non_null(seen);
	for (long i = 0; i < n; i++)
		assert_int_equal(px_promise_create(&fs[i]), 0);
	struct feeder fd = { NULL, fs, n };
	assert_int_equal(px_as_completed_create(&fd.it, PX_AS_COMPLETED_TAKE |
							PX_AS_COMPLETED_OPEN), 0);
	px_future *got;
	/* Empty and open: not the end. */
	assert_int_equal(px_as_completed_next(fd.it, 0, &got), -ETIMEDOUT);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, feed, &fd), 0);
	long count = 0;
	int r;
	while ((r = px_as_completed_next(fd.it, PX_FOREVER, &got)) == 0) {
		int64_t v = get_i64(got);
		assert_true(v >= 0 && v < n);
		assert_int_equal(seen[v], 0);
		seen[v] = 1;
		count++;
		px_future_release(got);
	}
	assert_int_equal(r, PX_EEOF);
	assert_int_equal(count, n);
	void *ret;
	assert_int_equal(pthread_join(th, &ret), 0);
	assert_null(ret);
	px_as_completed_close(fd.it);
	for (long i = 0; i < n; i++)
		px_future_release(fs[i]);
	free(fs);
	free(seen);
}

/* Adds from done callbacks: finishing fs[k] adds fs[k+1]; the last seals. */
struct chain {
	px_as_completed *it;
	px_future **fs;
	long n;
	_Atomic long next;
	atomic_int errors;
};

static void chain_cb(px_future *f, void *arg)
{
	(void)f;
	struct chain *c = arg;
	long k = atomic_fetch_add(&c->next, 1) + 1;
	int e = k < c->n ? px_as_completed_add(c->it, c->fs[k])
			 : px_as_completed_seal(c->it);
	if (e)
		atomic_fetch_add(&c->errors, 1);
}

static void *complete_in_order(void *arg)
{
	struct chain *c = arg;
	for (long i = 0; i < c->n; i++)
		px_promise_set_i64(c->fs[i], i);
	return NULL;
}

static void adds_from_done_callbacks(void **state)
{
	(void)state;
	struct chain c = { .n = test_scaled(5000) };
	c.fs = calloc((size_t)c.n, sizeof(*c.fs));
	assert_non_null(c.fs);
	atomic_init(&c.next, 0);
	atomic_init(&c.errors, 0);
	assert_int_equal(px_as_completed_create(&c.it, PX_AS_COMPLETED_TAKE |
						       PX_AS_COMPLETED_OPEN), 0);
	for (long i = 0; i < c.n; i++) {
		assert_int_equal(px_promise_create(&c.fs[i]), 0);
		/* Registered first, so it runs before the set's own node. */
		assert_int_equal(px_future_on_done(c.fs[i], chain_cb, &c), 0);
	}
	assert_int_equal(px_as_completed_add(c.it, c.fs[0]), 0);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, complete_in_order, &c), 0);
	px_future *got;
	long count = 0;
	int r;
	while ((r = px_as_completed_next(c.it, PX_FOREVER, &got)) == 0) {
		/* One completing thread, so completion order is input order. */
		assert_int_equal(get_i64(got), count);
		count++;
		px_future_release(got);
	}
	assert_int_equal(r, PX_EEOF);
	assert_int_equal(count, c.n);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(atomic_load(&c.errors), 0);
	px_as_completed_close(c.it);
	for (long i = 0; i < c.n; i++)
		px_future_release(c.fs[i]);
	free(c.fs);
}

/* A done callback ahead of the set's node is slow: the future is done, its
 * node not yet pushed. next() finds it anyway, hands the reference over,
 * and closing right away waits for the pending push instead of letting it
 * touch freed memory (ASan). */
static void slow_cb(px_future *f, void *arg)
{
	(void)f;
	(void)arg;
	struct timespec ts = { 0, 30 * 1000000 };
	nanosleep(&ts, NULL);
}

static void *set_one(void *arg)
{
	px_promise_set_i64(arg, 5);
	return NULL;
}

static void yields_before_a_slow_callback(void **state)
{
	(void)state;
	for (int round = 0; round < 2; round++) {
		px_as_completed *it;
		assert_int_equal(px_as_completed_create(&it, round ? 0 : PX_AS_COMPLETED_TAKE), 0);
		px_future *f;
		assert_int_equal(px_promise_create(&f), 0);
		assert_int_equal(px_future_on_done(f, slow_cb, NULL), 0);
		assert_int_equal(px_as_completed_add(it, f), 0);
		pthread_t th;
		assert_int_equal(pthread_create(&th, NULL, set_one, f), 0);
		while (!px_future_is_done(f))
			sched_yield();
		px_future *got = NULL;
		/* Done, so next() does not time out, even with no time. */
		assert_int_equal(px_as_completed_next(it, 0, &got), 0);
		assert_ptr_equal(got, f);
		if (round == 0)
			px_future_release(got);
		assert_int_equal(px_as_completed_next(it, 0, &got), PX_EEOF);
		px_as_completed_close(it);
		assert_int_equal(pthread_join(th, NULL), 0);
		assert_int_equal(get_i64(f), 5);
		px_future_release(f);
	}
}

/*
 * Feeds `total` tasks through a TAKE set, keeping `window` in flight: each
 * yield adds the next. Checks every value comes once. With rss, stores the
 * RSS at 10% and at the end.
 */
static void stream_through(px_executor *ex, long total, long window,
			   long *rss10, long *rss100)
{
	unsigned char *seen = calloc((size_t)total, 1);
	assert_non_null(seen);
	px_as_completed *it;
	assert_int_equal(px_as_completed_create(&it, PX_AS_COMPLETED_TAKE), 0);
	long submitted = 0, count = 0;
	while (submitted < total && submitted < window) {
		px_future *f;
		int64_t v = submitted++;
		assert_int_equal(px_executor_submit(ex, echo, &v, sizeof(v), NULL, &f), 0);
		assert_int_equal(px_as_completed_add(it, f), 0);
		px_future_release(f);
	}
	px_future *got;
	int r;
	while ((r = px_as_completed_next(it, PX_FOREVER, &got)) == 0) {
		int64_t v = -1;
		assert_int_equal(px_future_get_i64(got, 0, &v), 0);
		assert_true(v >= 0 && v < total);
		assert_int_equal(seen[v], 0);
		seen[v] = 1;
		px_future_release(got);
		count++;
		if (count == total / 10 && rss10)
			*rss10 = rss_bytes();
		if (submitted < total) {
			px_future *f;
			v = submitted++;
			assert_int_equal(px_executor_submit(ex, echo, &v, sizeof(v),
							    NULL, &f), 0);
			assert_int_equal(px_as_completed_add(it, f), 0);
			px_future_release(f);
		}
	}
	assert_int_equal(r, PX_EEOF);
	assert_int_equal(count, total);
	if (rss100)
		*rss100 = rss_bytes();
	px_as_completed_close(it);
	free(seen);
}

/* Every backend: counts and uniqueness, adds while iterating. */
static void add_while_iterating_every_backend(void **state)
{
	(void)state;
	static const char *const specs[] = { "inline", "thread:workers=2",
					     "process:workers=2" };
	for (size_t s = 0; s < sizeof(specs) / sizeof(specs[0]); s++) {
		px_executor *ex;
		int r = px_executor_open(&ex, specs[s], NULL, 0);
		if (r == PX_ENOBACKEND)
			continue;
		assert_int_equal(r, 0);
		stream_through(ex, test_scaled(20000), 64, NULL, NULL);
		px_executor_destroy(ex);
	}
}

/*
 * A million futures through one set on the thread pool, fed by add while
 * iterating: memory at the end is what it was at 10%. A leak of each future
 * (and its node) would add well over 192 bytes a future; the bound is half
 * that over the last 90%, at most 32 MB.
 */
static void million_futures_flat_memory(void **state)
{
	(void)state;
	long total = test_scaled(1000000);
	if (total < 100000)
		total = 100000;
	px_executor *ex = open_ex("thread:workers=2");
	long rss10 = -1, rss100 = -1;
	stream_through(ex, total, 512, &rss10, &rss100);
	px_executor_destroy(ex);
	if (rss10 < 0 || rss100 < 0)
		skip(); /* no /proc/self/statm */
	long bound = (long)((double)total * 0.9 * 192 / 2);
	if (bound > 32L << 20)
		bound = 32L << 20;
	printf("as-completed, %ld futures: RSS %ld KiB at 10%%, %ld KiB at "
	       "100%% (bound +%ld KiB)\n", total, rss10 >> 10, rss100 >> 10,
	       bound >> 10);
	assert_true(rss100 - rss10 <= bound);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(bad_arguments),
		cmocka_unit_test(grows_after_end),
		cmocka_unit_test(keeps_without_take),
		cmocka_unit_test(open_set_fed_by_another_thread),
		cmocka_unit_test(adds_from_done_callbacks),
		cmocka_unit_test(yields_before_a_slow_callback),
		cmocka_unit_test(add_while_iterating_every_backend),
		cmocka_unit_test(million_futures_flat_memory),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
