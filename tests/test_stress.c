/*
 * tests/test_stress.c - 1,000,000 tasks from several submitting threads:
 * every future completes exactly once, with the right result.
 *
 * The backend comes from PAREX_EXECUTOR (set per registration in
 * tests/CMakeLists.txt); the size scales with PX_TEST_SCALE.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <parex/executor.h>

#include "test_util.h"

enum { SUBMITTERS = 4, WINDOW = 4096 };

static uint64_t mix(uint64_t x)
{
	x ^= x >> 31;
	x *= 0x7fb5d329728ea185ull;
	x ^= x >> 27;
	return x;
}

static int hash_task(px_task *t, const void *arg, size_t len)
{
	uint64_t v;
	if (len != sizeof(v))
		return -EINVAL;
	memcpy(&v, arg, sizeof(v));
	v = mix(v);
	return px_task_return(t, &v, sizeof(v));
}

struct shared {
	px_executor *ex;
	long per_thread;
	_Atomic uint8_t *fired; /* per task: done callbacks seen */
	atomic_long bad;
};

struct submitter {
	struct shared *s;
	int id;
};

static void on_done(px_future *f, void *arg)
{
	(void)f;
	atomic_fetch_add((_Atomic uint8_t *)arg, 1);
}

/* Submits its share in windows, waits each window, checks every result. */
static void *submit_thread(void *arg)
{
	struct submitter *me = arg;
	struct shared *s = me->s;
	px_future **fs = malloc(WINDOW * sizeof(*fs));
	uint64_t base = (uint64_t)me->id * (uint64_t)s->per_thread;
	for (long done = 0; done < s->per_thread;) {
		long n = s->per_thread - done < WINDOW ? s->per_thread - done : WINDOW;
		for (long i = 0; i < n; i++) {
			uint64_t v = base + (uint64_t)(done + i);
			int r = px_executor_submit(s->ex, hash_task, &v, sizeof(v), NULL, &fs[i]);
			if (r || px_future_on_done(fs[i], on_done, &s->fired[v]))
				atomic_fetch_add(&s->bad, 1);
		}
		if (px_wait(fs, (size_t)n, PX_ALL_COMPLETED, PX_FOREVER, NULL) != n)
			atomic_fetch_add(&s->bad, 1);
		for (long i = 0; i < n; i++) {
			int64_t got;
			uint64_t v = base + (uint64_t)(done + i);
			if (px_future_get_i64(fs[i], 0, &got) || (uint64_t)got != mix(v))
				atomic_fetch_add(&s->bad, 1);
			px_future_release(fs[i]);
		}
		done += n;
	}
	free(fs);
	return NULL;
}

static void million_tasks(void **state)
{
	(void)state;
	long total = test_scaled(1000000);
	struct shared s = { .per_thread = total / SUBMITTERS };
	total = s.per_thread * SUBMITTERS;
	char err[256];
	int r = px_executor_open(&s.ex, NULL, err, sizeof(err));
	if (r)
		fail_msg("open: %s", err);
	s.fired = calloc((size_t)total, 1);
	pthread_t th[SUBMITTERS];
	struct submitter sub[SUBMITTERS];
	for (int i = 0; i < SUBMITTERS; i++) {
		sub[i] = (struct submitter){ &s, i };
		pthread_create(&th[i], NULL, submit_thread, &sub[i]);
	}
	for (int i = 0; i < SUBMITTERS; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(atomic_load(&s.bad), 0);
	/* Callbacks run in the completing thread just after the state is
	 * published, so a waiter can see a future done before its callback
	 * ran: count them once the pool's threads are joined. */
	px_executor_shutdown(s.ex, true, false);
	/* Exactly once: every callback fired once, none twice. */
	for (long i = 0; i < total; i++)
		if (atomic_load(&s.fired[i]) != 1)
			fail_msg("task %ld completed %d times", i, atomic_load(&s.fired[i]));
	px_executor_stats st;
	px_executor_stats_get(s.ex, &st);
	assert_int_equal(st.submitted, (uint64_t)total);
	assert_int_equal(st.completed, (uint64_t)total);
	assert_int_equal(st.failed + st.cancelled + st.queued + st.running, 0);
	px_executor_destroy(s.ex);
	free(s.fired);
}

int main(void)
{
	if (!getenv("PAREX_EXECUTOR"))
		setenv("PAREX_EXECUTOR", "thread:workers=2", 1);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(million_tasks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
