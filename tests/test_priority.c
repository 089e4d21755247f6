/*
 * tests/test_priority.c - per-submit priorities (PX_SUBMIT_HIGH/LOW) on the
 * thread and process pools: a high task overtakes a queue of 10,000 low
 * ones, no level starves behind a flood of higher ones, and bad flags fail.
 */
#include <errno.h>
#include <stdatomic.h>

#include "test_util.h"

/* Shared with the tasks: plain memory on threads, the arena on processes. */
struct prio_gate {
	atomic_int open;
	atomic_int gated;  /* gate tasks waiting */
	atomic_long order; /* next start position */
	atomic_long order_on[2]; /* next start position on worker 0, 1 */
};

struct arg {
	struct prio_gate *g;
};

/* Holds a worker until the gate opens (at most 60 s). */
static int gate_task(px_task *t, const void *a, size_t len)
{
	(void)t;
	(void)len;
	struct prio_gate *g = ((const struct arg *)a)->g;
	atomic_fetch_add(&g->gated, 1);
	int64_t end = test_now_ns() + 60 * (int64_t)1000000000;
	while (!atomic_load(&g->open) && test_now_ns() < end)
		usleep(200);
	return 0;
}

/* Returns its start position. */
static int ordered_task(px_task *t, const void *a, size_t len)
{
	(void)len;
	struct prio_gate *g = ((const struct arg *)a)->g;
	int64_t v = atomic_fetch_add(&g->order, 1);
	return px_task_return(t, &v, sizeof(v));
}

/* Returns its start position on its worker (high 32 bits) and in the pool
 * (low 32 bits). */
static int worker_ordered_task(px_task *t, const void *a, size_t len)
{
	(void)len;
	struct prio_gate *g = ((const struct arg *)a)->g;
	int id = px_task_worker_id(t);
	if (id < 0 || id > 1)
		return -EINVAL;
	int64_t on = atomic_fetch_add(&g->order_on[id], 1);
	int64_t v = on << 32 | atomic_fetch_add(&g->order, 1);
	return px_task_return(t, &v, sizeof(v));
}

/* Opens spec, fills its `workers` workers with gate tasks and waits until
 * every one of them holds a worker. */
static px_executor *gated_pool(const char *spec, int workers, struct prio_gate **gp,
			       px_future **gates)
{
	px_executor *ex = open_ex(spec);
	struct prio_gate *g;
	assert_int_equal(px_executor_alloc(ex, sizeof(*g), (void **)&g), 0);
	struct arg a = { g };
	for (int i = 0; i < workers; i++)
		assert_int_equal(px_executor_submit(ex, gate_task, &a, sizeof(a),
						    NULL, &gates[i]), 0);
	int64_t end = test_now_ns() + 30 * (int64_t)1000000000;
	while (atomic_load(&g->gated) < workers) {
		assert_true(test_now_ns() < end);
		usleep(200);
	}
	*gp = g;
	return ex;
}

static void release_all(px_future **fs, long n)
{
	for (long i = 0; i < n; i++)
		px_future_release(fs[i]);
}

/* 10,000 low tasks queued, then one high: the high one is the first task
 * its worker starts once the workers free up. Every task runs exactly once.
 * (Its position in the whole pool depends on scheduling: on a loaded
 * machine the other worker may run a hundred low tasks before this one's
 * worker gets a CPU, so that is not what is asserted.) */
static void overtake_case(const char *spec)
{
	enum { WORKERS = 2, LOW = 10000 };
	px_future *gates[WORKERS];
	struct prio_gate *g;
	px_executor *ex = gated_pool(spec, WORKERS, &g, gates);
	struct arg a = { g };
	px_future **low = calloc(LOW, sizeof(*low));
	assert_non_null(low);
	px_submit_opts lo = { .flags = PX_SUBMIT_LOW };
	px_submit_opts hi = { .flags = PX_SUBMIT_HIGH };
	for (int i = 0; i < LOW; i++)
		assert_int_equal(px_executor_submit(ex, worker_ordered_task, &a,
						    sizeof(a), &lo, &low[i]), 0);
	px_future *high;
	assert_int_equal(px_executor_submit(ex, worker_ordered_task, &a, sizeof(a),
					    &hi, &high), 0);
	atomic_store(&g->open, 1);
	int64_t hv = get_i64(high), hpos = hv & 0xffffffff;
	/* Ahead of every low task queued before it on its worker. */
	assert_int_equal(hv >> 32, 0);
	char *seen = calloc(LOW + 1, 1);
	assert_non_null(seen);
	assert_true(hpos >= 0 && hpos <= LOW);
	seen[hpos] = 1;
	for (int i = 0; i < LOW; i++) {
		int64_t pos = get_i64(low[i]) & 0xffffffff;
		assert_true(pos >= 0 && pos <= LOW);
		assert_int_equal(seen[pos], 0);
		seen[pos] = 1;
	}
	free(seen);
	assert_int_equal(px_wait(gates, WORKERS, PX_ALL_COMPLETED, PX_FOREVER, NULL),
			 WORKERS);
	release_all(gates, WORKERS);
	release_all(low, LOW);
	px_future_release(high);
	free(low);
	px_executor_free(ex, g);
	px_executor_destroy(ex);
}

static void high_overtakes_10000_low_thread(void **state)
{
	(void)state;
	overtake_case("thread:workers=2");
}

static void high_overtakes_10000_low_process(void **state)
{
	(void)state;
	overtake_case("process:workers=2");
}

/*
 * One worker, a flood of 2,000 high tasks queued after 50 normal and 50 low
 * ones: the first low and the first normal task start well before the
 * flood is through (every 8th take starts from the bottom).
 */
static void starve_case(const char *spec)
{
	enum { HIGH = 2000, OTHER = 50 };
	px_future *gate1[1];
	struct prio_gate *g;
	px_executor *ex = gated_pool(spec, 1, &g, gate1);
	struct arg a = { g };
	px_future *hf[HIGH], *nf[OTHER], *lf[OTHER];
	px_submit_opts lo = { .flags = PX_SUBMIT_LOW };
	px_submit_opts hi = { .flags = PX_SUBMIT_HIGH };
	for (int i = 0; i < OTHER; i++) {
		assert_int_equal(px_executor_submit(ex, ordered_task, &a, sizeof(a),
						    &lo, &lf[i]), 0);
		assert_int_equal(px_executor_submit(ex, ordered_task, &a, sizeof(a),
						    NULL, &nf[i]), 0);
	}
	for (int i = 0; i < HIGH; i++)
		assert_int_equal(px_executor_submit(ex, ordered_task, &a, sizeof(a),
						    &hi, &hf[i]), 0);
	atomic_store(&g->open, 1);
	int64_t first_low = INT64_MAX, first_normal = INT64_MAX, first_high = INT64_MAX;
	for (int i = 0; i < OTHER; i++) {
		int64_t l = get_i64(lf[i]), n = get_i64(nf[i]);
		first_low = l < first_low ? l : first_low;
		first_normal = n < first_normal ? n : first_normal;
	}
	for (int i = 0; i < HIGH; i++) {
		int64_t h = get_i64(hf[i]);
		first_high = h < first_high ? h : first_high;
	}
	/* High goes first; the others are not left until the end. */
	assert_int_equal(first_high, 0);
	assert_true(first_low < HIGH / 4);
	assert_true(first_normal < HIGH / 4);
	assert_int_equal(px_future_wait(gate1[0], PX_FOREVER), 0);
	release_all(gate1, 1);
	release_all(hf, HIGH);
	release_all(nf, OTHER);
	release_all(lf, OTHER);
	px_executor_free(ex, g);
	px_executor_destroy(ex);
}

static void no_level_starves_thread(void **state)
{
	(void)state;
	starve_case("thread:workers=1");
}

static void no_level_starves_process(void **state)
{
	(void)state;
	starve_case("process:workers=1");
}

/* Both levels at once is an error; inline takes either and runs at once. */
static void bad_priority_flags_fail(void **state)
{
	(void)state;
	const char *specs[] = { "inline", "thread:workers=1", "process:workers=1" };
	for (int s = 0; s < 3; s++) {
		px_executor *ex = open_ex(specs[s]);
		px_future *f = (px_future *)&f;
		int64_t x = 5;
		px_submit_opts both = { .flags = PX_SUBMIT_HIGH | PX_SUBMIT_LOW };
		assert_int_equal(px_executor_submit(ex, echo, &x, sizeof(x), &both, &f),
				 -EINVAL);
		assert_null(f);
		px_submit_opts unknown = { .flags = 1u << 7 };
		assert_int_equal(px_executor_submit(ex, echo, &x, sizeof(x), &unknown, &f),
				 -EINVAL);
		px_submit_opts hi = { .flags = PX_SUBMIT_HIGH | PX_SUBMIT_NOWAIT };
		assert_int_equal(px_executor_submit(ex, echo, &x, sizeof(x), &hi, &f), 0);
		assert_int_equal(get_i64(f), 5);
		px_future_release(f);
		px_executor_destroy(ex);
	}
}

/* A full level fails a non-blocking submit, as the normal queue does. */
static void full_level_fails_nowait(void **state)
{
	(void)state;
	px_future *gate1[1];
	struct prio_gate *g;
	px_executor *ex = gated_pool("thread:workers=1,queue=4", 1, &g, gate1);
	struct arg a = { g };
	px_future *fs[4], *f;
	px_submit_opts lo = { .flags = PX_SUBMIT_LOW | PX_SUBMIT_NOWAIT };
	for (int i = 0; i < 4; i++)
		assert_int_equal(px_executor_submit(ex, ordered_task, &a, sizeof(a),
						    &lo, &fs[i]), 0);
	assert_int_equal(px_executor_submit(ex, ordered_task, &a, sizeof(a), &lo, &f),
			 -EAGAIN);
	atomic_store(&g->open, 1);
	for (int i = 0; i < 4; i++)
		get_i64(fs[i]);
	assert_int_equal(px_future_wait(gate1[0], PX_FOREVER), 0);
	release_all(gate1, 1);
	release_all(fs, 4);
	px_executor_free(ex, g);
	/* Outcomes are counted just after the future completes. */
	assert_int_equal(px_executor_shutdown(ex, true, false), 0);
	px_executor_stats st;
	assert_int_equal(px_executor_stats_get(ex, &st), 0);
	assert_int_equal(st.submitted, 5);
	assert_int_equal(st.completed, 5);
	px_executor_destroy(ex);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(high_overtakes_10000_low_thread),
		cmocka_unit_test(high_overtakes_10000_low_process),
		cmocka_unit_test(no_level_starves_thread),
		cmocka_unit_test(no_level_starves_process),
		cmocka_unit_test(bad_priority_flags_fail),
		cmocka_unit_test(full_level_fails_nowait),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
