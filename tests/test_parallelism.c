/*
 * tests/test_parallelism.c - px_available_parallelism(): the affinity mask,
 * the cgroup v2 cpu.max parser, and the default executor's worker count.
 * Linked with parex_static to reach the parser (px__cpu_max_parse).
 *
 * Run under `taskset -c CPU` with PX_TEST_EXPECT_CPUS=1 (the CTest test
 * test_parallelism_taskset does), it also checks that the default executor
 * then has exactly one worker.
 */
#include <errno.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <parex/executor.h>

/* lib/cpus.c, internal (reachable through the static library). */
int px__cpu_max_parse(const char *text, int *cpus);

static void cpu_max_parser_takes_quota_over_period(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		int r, cpus;
	} cases[] = {
		{ "max 100000\n", 0, 0 },       /* no cap */
		{ "max 100000", 0, 0 },
		{ "100000 100000\n", 0, 1 },
		{ "150000 100000\n", 0, 2 },    /* ceil(1.5) */
		{ "200000 100000\n", 0, 2 },
		{ "50000 100000\n", 0, 1 },     /* at least 1 */
		{ "1 100000", 0, 1 },
		{ "0 100000", 0, 1 },
		{ "800000 100000", 0, 8 },
		{ "800001 100000", 0, 9 },
		{ "  300000   100000  \n", 0, 3 },
		{ "", -EINVAL, -1 },
		{ "max", -EINVAL, -1 },
		{ "max 0", -EINVAL, -1 },
		{ "100000 0", -EINVAL, -1 },
		{ "-100000 100000", -EINVAL, -1 },
		{ "100000 -100000", -EINVAL, -1 },
		{ "abc 100000", -EINVAL, -1 },
		{ "100000 100000 7", -EINVAL, -1 },
		{ "1e5 100000", -EINVAL, -1 },
		{ "99999999999999999999999 100000", -EINVAL, -1 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int cpus = -1;
		int r = px__cpu_max_parse(cases[i].text, &cpus);
		if (r != cases[i].r || cpus != cases[i].cpus)
			fail_msg("'%s': got %d (cpus %d), want %d (cpus %d)",
				 cases[i].text, r, cpus, cases[i].r, cases[i].cpus);
	}
	int cpus = 5;
	assert_int_equal(px__cpu_max_parse(NULL, &cpus), -EINVAL);
	assert_int_equal(cpus, 5);
}

static int affinity_count(void)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	assert_int_equal(sched_getaffinity(0, sizeof(set), &set), 0);
	return CPU_COUNT(&set);
}

static void available_parallelism_follows_the_affinity_mask(void **state)
{
	(void)state;
	int n = px_available_parallelism();
	assert_true(n >= 1 && n <= affinity_count());
	/* Down to one CPU of the mask: one. */
	cpu_set_t old, one;
	assert_int_equal(sched_getaffinity(0, sizeof(old), &old), 0);
	int cpu = 0;
	while (!CPU_ISSET(cpu, &old))
		cpu++;
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	assert_int_equal(sched_setaffinity(0, sizeof(one), &one), 0);
	assert_int_equal(px_available_parallelism(), 1);
	px_executor *ex;
	assert_int_equal(px_executor_open(&ex, "thread", NULL, 0), 0);
	assert_int_equal(px_executor_workers(ex), 1);
	px_executor_destroy(ex);
	assert_int_equal(sched_setaffinity(0, sizeof(old), &old), 0);
	assert_int_equal(px_available_parallelism(), n);
}

/* Under taskset (PX_TEST_EXPECT_CPUS set): the default executor, opened
 * with no spec and a clean environment, has that many workers. */
static void default_executor_has_one_worker_per_available_cpu(void **state)
{
	(void)state;
	unsetenv("PAREX_EXECUTOR");
	unsetenv("PAREX_CONFIG");
	const char *expect = getenv("PX_TEST_EXPECT_CPUS");
	int n = px_available_parallelism();
	if (expect)
		assert_int_equal(n, atoi(expect));
	px_executor *ex;
	char err[256];
	assert_int_equal(px_executor_open(&ex, NULL, err, sizeof(err)), 0);
	assert_int_equal(px_executor_workers(ex), n);
	px_executor_stats st;
	assert_int_equal(px_executor_stats_get(ex, &st), 0);
	assert_int_equal(st.workers, (uint64_t)n);
	px_executor_destroy(ex);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(cpu_max_parser_takes_quota_over_period),
		cmocka_unit_test(available_parallelism_follows_the_affinity_mask),
		cmocka_unit_test(default_executor_has_one_worker_per_available_cpu),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
