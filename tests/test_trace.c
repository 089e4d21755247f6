/*
 * tests/test_trace.c - task timelines (trace=PATH, $PAREX_TRACE), on every
 * executor backend and on the I/O layer.
 *
 * Each backend is a cmocka group whose setup only sets PAREX_EXECUTOR, as
 * in test_executor.c; each test runs tasks with tracing on, destroys the
 * executor and hands the file to tests/check_trace.py (PX_CHECK_TRACE),
 * which parses it as JSON and checks that every task appears exactly once,
 * start <= end, on its worker's track, with the expected outcomes. Without
 * python3 the program skips (77).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <parex/executor.h>
#include <parex/io.h>

#include "test_util.h"

#ifndef PX_CHECK_TRACE
#error "PX_CHECK_TRACE: the path of tests/check_trace.py"
#endif
#ifndef PX_PYTHON3
#define PX_PYTHON3 "python3"
#endif

struct backend {
	const char *spec;  /* PAREX_EXECUTOR for this group */
	bool concurrent;   /* tasks run apart from the submitter */
	bool process;
};

static const struct backend *cur;
static char dir[64]; /* this test's scratch directory */

static int use_backend(void **state)
{
	cur = *state;
	setenv("PAREX_EXECUTOR", cur->spec, 1);
	unsetenv("PAREX_CONFIG");
	unsetenv("PAREX_TRACE");
	snprintf(dir, sizeof(dir), "/tmp/px-trace-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	return 0;
}

/* Removes the scratch directory and what the test left in it. */
static int clean_dir(void **state)
{
	(void)state;
	DIR *d = opendir(dir);
	struct dirent *e;
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char p[512];
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		unlink(p);
	}
	if (d)
		closedir(d);
	rmdir(dir);
	return 0;
}

static void path_in_dir(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", dir, name);
}

/* Runs argv (NULL-terminated); returns its exit status, 127 if it could
 * not be started. */
static int run(const char **argv)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	int st;
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* Runs the checker on file with extra arguments (NULL-terminated); returns
 * its exit status. */
static int check(const char *file, ...)
{
	const char *argv[24] = { PX_PYTHON3, PX_CHECK_TRACE, file };
	int n = 3;
	va_list ap;
	va_start(ap, file);
	const char *a;
	while ((a = va_arg(ap, const char *)) && n < 23)
		argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;
	return run(argv);
}

static px_executor *open_traced(const char *path)
{
	char spec[600];
	snprintf(spec, sizeof(spec), ":trace=%s", path);
	px_executor *ex = NULL;
	char err[256];
	int r = px_executor_open(&ex, spec, err, sizeof(err));
	if (r)
		fail_msg("px_executor_open(%s): %s", spec, err);
	return ex;
}

static int add_one(px_task *t, const void *arg, size_t len)
{
	int32_t v;
	if (len != sizeof(v))
		return -EINVAL;
	memcpy(&v, arg, sizeof(v));
	if (v % 7 == 3)
		return px_task_fail(t, -EDOM, "record %d fails", (int)v);
	v++;
	return px_task_return(t, &v, sizeof(v));
}

static int nap(px_task *t, const void *arg, size_t len)
{
	int64_t ns;
	if (len != sizeof(ns))
		return -EINVAL;
	memcpy(&ns, arg, sizeof(ns));
	return px_task_sleep(t, ns);
}

static int die(px_task *t, const void *arg, size_t len)
{
	(void)t;
	(void)arg;
	(void)len;
	raise(SIGKILL);
	return 0;
}

static char nstr[8][24];

static const char *num(int slot, long v)
{
	snprintf(nstr[slot], sizeof(nstr[slot]), "%ld", v);
	return nstr[slot];
}

/* Every task, plain and map chunk, appears once, with its outcome. */
static void every_task_appears_once(void **state)
{
	(void)state;
	char path[128];
	path_in_dir(path, sizeof(path), "t.json");
	px_executor *ex = open_traced(path);
	int workers = px_executor_workers(ex);
	enum { N = 150, RECS = 400 };
	px_future *fs[N];
	int failing = 0;
	for (int32_t i = 0; i < N; i++) {
		assert_int_equal(px_executor_submit(ex, add_one, &i, sizeof(i), NULL,
						    &fs[i]), 0);
		failing += i % 7 == 3;
	}
	for (int i = 0; i < N; i++) {
		assert_int_equal(px_future_wait(fs[i], -1), 0);
		px_future_release(fs[i]);
	}
	/* map: RECS records in chunks of 10, each chunk one task that
	 * succeeds (records report their own codes). */
	int32_t args[RECS], res[RECS];
	for (int i = 0; i < RECS; i++)
		args[i] = i * 7; /* none fails */
	px_map_opts mo = { .chunk = 10 };
	assert_int_equal(px_executor_map(ex, add_one, args, sizeof(int32_t), RECS,
					 res, sizeof(int32_t), &mo), 0);
	px_executor_destroy(ex);
	assert_int_equal(check(path, "--tasks", num(0, N + RECS / 10), "--errors",
			       num(1, failing), "--not-run", "0", "--crashed", "0",
			       "--max-worker", num(2, workers - 1),
			       cur->process ? "--process" : NULL, NULL), 0);
}

/* Tasks cancelled before they started appear once, on the "not run" track. */
static void cancelled_before_start_is_not_run(void **state)
{
	(void)state;
	if (!cur->concurrent)
		skip();
	char path[128], spec[300];
	path_in_dir(path, sizeof(path), "c.json");
	snprintf(spec, sizeof(spec), ":workers=1,trace=%s", path);
	px_executor *ex;
	assert_int_equal(px_executor_open(&ex, spec, NULL, 0), 0);
	enum { N = 6 };
	px_future *fs[N];
	int64_t ns = 200 * PX_MSEC;
	for (int i = 0; i < N; i++)
		assert_int_equal(px_executor_submit(ex, nap, &ns, sizeof(ns), NULL,
						    &fs[i]), 0);
	int cancelled = 0;
	for (int i = 1; i < N; i++)
		cancelled += px_future_cancel(fs[i], 0) == 0;
	/* One worker, each task 200 ms: the later ones are still queued. */
	assert_true(cancelled >= 1);
	for (int i = 0; i < N; i++) {
		assert_int_equal(px_future_wait(fs[i], -1), 0);
		px_future_release(fs[i]);
	}
	px_executor_destroy(ex);
	assert_int_equal(check(path, "--tasks", num(0, N), "--not-run",
			       num(1, cancelled), NULL), 0);
}

/* On the process backend, the task its worker died in is marked crashed;
 * the tasks after it run on the replacement. */
static void crashed_task_is_marked(void **state)
{
	(void)state;
	if (!cur->process)
		skip();
	char path[128];
	path_in_dir(path, sizeof(path), "k.json");
	px_executor *ex = open_traced(path);
	px_future *f;
	int64_t ns = 1000;
	assert_int_equal(px_executor_submit(ex, die, NULL, 0, NULL, &f), 0);
	assert_int_equal(px_future_wait(f, -1), 0);
	assert_int_equal(px_future_error(f), PX_EWORKERDIED);
	px_future_release(f);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(px_executor_submit(ex, nap, &ns, sizeof(ns), NULL,
						    &f), 0);
		assert_int_equal(px_future_wait(f, -1), 0);
		assert_int_equal(px_future_error(f), 0);
		px_future_release(f);
	}
	px_executor_destroy(ex);
	assert_int_equal(check(path, "--tasks", "6", "--crashed", "1", "--process",
			       NULL), 0);
}

/* On the process backend, a task killed for its timeout ran until the kill:
 * it appears once, on its worker's track, timed out. */
static void timed_out_task_is_marked(void **state)
{
	(void)state;
	if (!cur->process)
		skip();
	char path[128];
	path_in_dir(path, sizeof(path), "to.json");
	px_executor *ex = open_traced(path);
	px_future *f;
	int64_t ns = 10 * PX_SEC;
	px_submit_opts so = { .timeout_ns = 50 * PX_MSEC };
	assert_int_equal(px_executor_submit(ex, nap, &ns, sizeof(ns), &so, &f), 0);
	assert_int_equal(px_future_wait(f, -1), 0);
	assert_int_equal(px_future_error(f), -ETIMEDOUT);
	px_future_release(f);
	px_executor_destroy(ex);
	assert_int_equal(check(path, "--tasks", "1", "--timed-out", "1", "--not-run",
			       "0", "--process", NULL), 0);
}

/* shutdown(cancel_pending) drops the queued tasks: each appears once, on
 * the "not run" track, cancelled. */
static void shutdown_cancelled_tasks_are_not_run(void **state)
{
	(void)state;
	if (!cur->concurrent)
		skip();
	char path[128], spec[300];
	path_in_dir(path, sizeof(path), "s.json");
	snprintf(spec, sizeof(spec), ":workers=1,trace=%s", path);
	px_executor *ex;
	assert_int_equal(px_executor_open(&ex, spec, NULL, 0), 0);
	enum { N = 8 };
	px_future *fs[N];
	int64_t ns = 100 * PX_MSEC;
	for (int i = 0; i < N; i++)
		assert_int_equal(px_executor_submit(ex, nap, &ns, sizeof(ns), NULL,
						    &fs[i]), 0);
	assert_int_equal(px_executor_shutdown(ex, true, true), 0);
	int cancelled = 0;
	for (int i = 0; i < N; i++) {
		assert_int_equal(px_future_wait(fs[i], -1), 0);
		cancelled += px_future_error(fs[i]) == -ECANCELED;
		px_future_release(fs[i]);
	}
	/* One worker, 100 ms each: most were still queued. */
	assert_true(cancelled >= 1);
	px_executor_destroy(ex);
	assert_int_equal(check(path, "--tasks", num(0, N), "--not-run",
			       num(1, cancelled), "--cancelled", num(2, cancelled),
			       NULL), 0);
}

/* Tracing off (no key, PAREX_TRACE unset or empty) writes no file. */
static void tracing_off_writes_nothing(void **state)
{
	(void)state;
	char cwd[512];
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(dir), 0);
	setenv("PAREX_TRACE", "", 1);
	for (int round = 0; round < 2; round++) {
		px_executor *ex;
		assert_int_equal(px_executor_open(&ex, NULL, NULL, 0), 0);
		int32_t args[64], res[64];
		for (int i = 0; i < 64; i++)
			args[i] = i * 7;
		assert_int_equal(px_executor_map(ex, add_one, args, sizeof(int32_t),
						 64, res, sizeof(int32_t), NULL), 0);
		px_executor_destroy(ex);
		unsetenv("PAREX_TRACE");
	}
	assert_int_equal(chdir(cwd), 0);
	DIR *d = opendir(dir);
	assert_non_null(d);
	struct dirent *e;
	int files = 0;
	while ((e = readdir(d)))
		files += e->d_name[0] != '.';
	closedir(d);
	assert_int_equal(files, 0);
}

/* $PAREX_TRACE turns tracing on; a second executor on the same path writes
 * beside the first ("-2"), not over it. */
static void env_traces_and_numbers_files(void **state)
{
	(void)state;
	char path[128], second[128];
	path_in_dir(path, sizeof(path), "env.json");
	path_in_dir(second, sizeof(second), "env-2.json");
	setenv("PAREX_TRACE", path, 1);
	px_executor *a, *b;
	assert_int_equal(px_executor_open(&a, NULL, NULL, 0), 0);
	assert_int_equal(px_executor_open(&b, NULL, NULL, 0), 0);
	unsetenv("PAREX_TRACE");
	int32_t v = 1;
	px_future *f;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(px_executor_submit(a, add_one, &v, sizeof(v), NULL, &f), 0);
		assert_int_equal(px_future_wait(f, -1), 0);
		px_future_release(f);
	}
	assert_int_equal(px_executor_submit(b, add_one, &v, sizeof(v), NULL, &f), 0);
	assert_int_equal(px_future_wait(f, -1), 0);
	px_future_release(f);
	px_executor_destroy(a);
	px_executor_destroy(b);
	assert_int_equal(check(path, "--tasks", "3", NULL), 0);
	assert_int_equal(check(second, "--tasks", "1", NULL), 0);
}

/* A trace file that cannot be created fails the executor's creation with
 * the reason; a value a spec cannot carry is refused by the configuration. */
static void bad_trace_path_fails_create(void **state)
{
	(void)state;
	char path[160], spec[300];
	path_in_dir(path, sizeof(path), "no-such-dir/t.json");
	snprintf(spec, sizeof(spec), ":trace=%s", path);
	px_executor *ex = (px_executor *)&ex;
	assert_int_equal(px_executor_open(&ex, spec, NULL, 0), -ENOENT);
	assert_null(ex);
	setenv("PAREX_TRACE", path, 1);
	assert_int_equal(px_executor_open(&ex, NULL, NULL, 0), -ENOENT);
	unsetenv("PAREX_TRACE");

	px_config *cfg;
	assert_int_equal(px_config_create(&cfg), 0);
	assert_int_equal(px_config_set(cfg, "trace", "a\nb", NULL), -EINVAL);
	assert_non_null(strstr(px_config_error(cfg), "trace"));
	char big[5000];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	assert_int_equal(px_config_set(cfg, "trace", big, NULL), -EINVAL);
	assert_int_equal(px_config_set(cfg, "trace", "/tmp/x.json", NULL), 0);
	char out[256];
	px_config_format(cfg, out, sizeof(out));
	assert_non_null(strstr(out, ",trace=/tmp/x.json"));
	px_config_destroy(cfg);
}

#define BACKEND_TESTS                                                       \
	cmocka_unit_test_setup_teardown(every_task_appears_once, use_backend, \
					clean_dir),                         \
	cmocka_unit_test_setup_teardown(cancelled_before_start_is_not_run,    \
					use_backend, clean_dir),            \
	cmocka_unit_test_setup_teardown(crashed_task_is_marked, use_backend,  \
					clean_dir),                         \
	cmocka_unit_test_setup_teardown(timed_out_task_is_marked, use_backend, \
					clean_dir),                         \
	cmocka_unit_test_setup_teardown(shutdown_cancelled_tasks_are_not_run, \
					use_backend, clean_dir),            \
	cmocka_unit_test_setup_teardown(tracing_off_writes_nothing,           \
					use_backend, clean_dir),            \
	cmocka_unit_test_setup_teardown(env_traces_and_numbers_files,         \
					use_backend, clean_dir),            \
	cmocka_unit_test_setup_teardown(bad_trace_path_fails_create,          \
					use_backend, clean_dir)

static const struct backend backends[] = {
	{ "inline", false, false },
	{ "thread:workers=3", true, false },
	{ "thread:workers=2,gil=1", true, false },
	{ "process:workers=2", true, true },
};

/* The I/O layer: each operation is an async slice on the context's track. */
static void io_operations_appear_once(void **state)
{
	(void)state;
	static const struct backend none = { "thread", true, false };
	void *st = (void *)&none;
	assert_int_equal(use_backend(&st), 0);
	char path[128];
	path_in_dir(path, sizeof(path), "io.json");
	setenv("PAREX_TRACE", path, 1);
	px_io *io;
	int r = px_io_create(&io, NULL);
	unsetenv("PAREX_TRACE");
	assert_int_equal(r, 0);
	enum { N = 40 };
	px_future *fs[N];
	for (int i = 0; i < N; i++)
		assert_int_equal(i % 2 ? px_io_nop(io, &fs[i])
				       : px_io_sleep(io, (i % 5) * 100000, &fs[i]),
				 0);
	for (int i = 0; i < N; i++) {
		assert_int_equal(px_future_wait(fs[i], -1), 0);
		px_future_release(fs[i]);
	}
	px_io_destroy(io);
	assert_int_equal(check(path, "--io", "--tasks", num(0, N), "--errors", "0",
			       NULL), 0);
	clean_dir(state);
}

int main(int argc, char **argv)
{
	/* Without python3 the files cannot be checked. */
	const char *probe[] = { PX_PYTHON3, "-c", "import json", NULL };
	if (run(probe) != 0) {
		printf("[ SKIPPED  ] python3 not found\n");
		return 77;
	}
	const struct CMUnitTest tests[] = { BACKEND_TESTS };
	int fails = 0;
	for (size_t b = 0; b < sizeof(backends) / sizeof(backends[0]); b++) {
		/* An argument picks backends by prefix: `test_trace thread`. */
		if (argc > 1 && strncmp(backends[b].spec, argv[1], strlen(argv[1])))
			continue;
		void *st = (void *)&backends[b];
		struct CMUnitTest group[sizeof(tests) / sizeof(tests[0])];
		for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
			group[i] = tests[i];
			group[i].initial_state = st;
		}
		fails += _cmocka_run_group_tests(backends[b].spec, group,
						 sizeof(group) / sizeof(group[0]),
						 NULL, NULL);
	}
	if (argc <= 1 || !strcmp(argv[1], "io")) {
		const struct CMUnitTest io_tests[] = {
			cmocka_unit_test(io_operations_appear_once),
		};
		fails += cmocka_run_group_tests_name("io", io_tests, NULL, NULL);
	}
	return fails ? 1 : 0;
}
