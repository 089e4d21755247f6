/*
 * tests/test_util.h - helpers shared by the test programs: the clock, the
 * stress scale, a fork+alarm harness for cases that may hang or crash,
 * opening an executor or I/O context, and small tasks.
 *
 * Helpers that can fail know whether they run in a harness child
 * (test_run_in_child): there they print the reason and _exit() with
 * TEST_CHILD_SETUP_FAILED, since a cmocka failure in a child would unwind
 * into the child's copy of the runner; in the parent they fail the test.
 */
#ifndef PX_TEST_UTIL_H
#define PX_TEST_UTIL_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <parex/parex.h>

static inline int64_t test_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Threads in this process, from /proc/self/status. */
static inline int test_thread_count(void)
{
	FILE *fp = fopen("/proc/self/status", "r");
	char line[256];
	int n = -1;
	while (fp && fgets(line, sizeof(line), fp))
		if (!strncmp(line, "Threads:", 8))
			n = atoi(line + 8);
	if (fp)
		fclose(fp);
	return n;
}

/*
 * Scales a stress size by $PX_TEST_SCALE (default 1; the sanitizer runs in
 * .ci/run set it below 1, since they run 5-20x slower). Never below 1.
 */
static inline long test_scaled(long n)
{
	const char *s = getenv("PX_TEST_SCALE");
	double k = s ? atof(s) : 1.0;
	if (k <= 0)
		k = 1.0;
	long r = (long)((double)n * k);
	return r < 1 ? 1 : r;
}

/* The fork+alarm harness ---------------------------------------------------- */

/* A harness child's exit status when its setup (open_ex, io_new) failed. */
#define TEST_CHILD_SETUP_FAILED 250

/* True in a child started by test_run_in_child. */
static bool test_in_child;

/*
 * Runs fn() in a forked child under an alarm of secs seconds, so a hang or a
 * crash fails this case alone. The child reports through its exit status: 0
 * sound, anything else a failed check (print the details to stderr first).
 * Fails the calling cmocka test unless the child exited 0.
 */
static inline void test_run_in_child(const char *name, int (*fn)(void),
				     unsigned secs)
{
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* cmocka's handlers would longjmp a crashed child back into
		 * the test runner: let a crash be a crash. */
		int sigs[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT };
		for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
			signal(sigs[i], SIG_DFL);
		test_in_child = true;
		alarm(secs);
		_exit(fn());
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	if (WIFSIGNALED(st))
		fail_msg("%s: killed by signal %d (%s)%s", name, WTERMSIG(st),
			 strsignal(WTERMSIG(st)),
			 WTERMSIG(st) == SIGALRM ? ": a hang" : "");
	if (WEXITSTATUS(st))
		fail_msg("%s: failed check %d (see stderr)", name,
			 WEXITSTATUS(st));
}

/* A case of a table run by test_run_cases(): a name and a function that
 * runs in a harness child (test_run_in_child). */
struct test_case_child {
	const char *name;
	int (*fn)(void);
	unsigned secs; /* the child's alarm */
};

static inline void test_case_child_run(void **state)
{
	const struct test_case_child *c = *state;
	test_run_in_child(c->name, c->fn, c->secs);
}

/*
 * Runs the n cases of a table as the cmocka group `group`, each in its own
 * harness child; with a program argument, only the case of that name.
 * Returns cmocka's count of failed tests (main's exit status).
 */
static inline int test_run_cases(const char *group,
				 const struct test_case_child *cases, size_t n,
				 int argc, char **argv)
{
	const char *only = argc > 1 ? argv[1] : NULL;
	struct CMUnitTest *tests = calloc(n ? n : 1, sizeof(*tests));
	assert_non_null(tests);
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (only && strcmp(only, cases[i].name))
			continue;
		tests[k++] = (struct CMUnitTest){ .name = cases[i].name,
						  .test_func = test_case_child_run,
						  .initial_state = (void *)&cases[i] };
	}
	int r = _cmocka_run_group_tests(group, tests, k, NULL, NULL);
	free(tests);
	return r;
}

/* Fails a case of test_run_cases() (a harness child) with its line number
 * as the child's exit status, after printing the failed condition. */
#define CASE_CHECK(c)                                                          \
	do {                                                                   \
		if (!(c)) {                                                    \
			fprintf(stderr, "%s:%d: %s\n", __func__, __LINE__, #c);  \
			return __LINE__ % 200 + 2;                             \
		}                                                              \
	} while (0)

/* A genuine segfault, uninstrumented so no sanitizer turns it into a report
 * and an exit status. */
__attribute__((noinline, unused, no_sanitize_address, no_sanitize_thread,
	       no_sanitize_undefined)) static void test_segfault(volatile int *p)
{
	*p = 1;
}

/* No children left: every fork server and worker was reaped. */
static inline bool test_no_children(void)
{
	return waitpid(-1, NULL, WNOHANG) == -1 && errno == ECHILD;
}

/* Keeps the CPU busy for ns. */
static inline void test_spin_ns(int64_t ns)
{
	int64_t until = test_now_ns() + ns;
	while (test_now_ns() < until)
		;
}

/* Defines the cmocka test `name` that runs int name##_in_child(void) through
 * test_run_in_child with an alarm of secs seconds. */
#define TEST_IN_CHILD(name, secs)                                       \
	static void name(void **state)                                  \
	{                                                               \
		(void)state;                                            \
		test_run_in_child(#name, name##_in_child, (secs));      \
	}

/* Reports a failed setup step: exits a harness child, fails the test in the
 * parent. */
#define TEST_SETUP_FAILED(...)                                          \
	do {                                                            \
		if (test_in_child) {                                    \
			fprintf(stderr, __VA_ARGS__);                   \
			fputc('\n', stderr);                            \
			_exit(TEST_CHILD_SETUP_FAILED);                 \
		}                                                       \
		fail_msg(__VA_ARGS__);                                  \
	} while (0)

/* Executors and tasks --------------------------------------------------------- */

/* Opens an executor from spec (NULL: from the environment) or fails. */
static inline px_executor *open_ex(const char *spec)
{
	px_executor *ex = NULL;
	char err[256];
	int r = px_executor_open(&ex, spec, err, sizeof(err));
	if (r) {
		const char *env = getenv("PAREX_EXECUTOR");
		TEST_SETUP_FAILED("px_executor_open(%s) [PAREX_EXECUTOR=%s]: %s (%s)",
				  spec ? spec : "NULL", env ? env : "",
				  px_strerror(r), err);
	}
	return ex;
}

/* The future's int64 result (waits), failing the test if it failed. */
static inline int64_t get_i64(px_future *f)
{
	int64_t v = -1;
	int r = px_future_get_i64(f, PX_FOREVER, &v);
	if (r)
		fail_msg("future failed: %s (%s)", px_strerror(r),
			 px_future_message(f) ? px_future_message(f) : "");
	return v;
}

/* A task returning its argument bytes. */
static inline int echo(px_task *t, const void *arg, size_t len)
{
	return px_task_return(t, arg, len);
}

/* I/O ------------------------------------------------------------------------- */

/* Creates an I/O context with the defaults (PAREX_IO picks the backend) or
 * fails. */
static inline px_io *io_new(void)
{
	px_io *io = NULL;
	int r = px_io_create(&io, NULL);
	if (r)
		TEST_SETUP_FAILED("px_io_create: %s", px_strerror(r));
	return io;
}

/* 127.0.0.1:port. */
static inline struct sockaddr_in loopback(uint16_t port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	return sa;
}

/*
 * A gate tasks wait at: wait_gate's argument is a struct gate pointer; each
 * task counts itself in `entered`, then sleeps (a blocking section) until
 * `open` is set. For tests that need tasks held running.
 */
struct gate {
	atomic_int open;
	atomic_int entered;
};

static inline int wait_gate(px_task *t, const void *arg, size_t len)
{
	struct gate *g;
	if (len != sizeof(g))
		return -EINVAL;
	memcpy(&g, arg, sizeof(g));
	atomic_fetch_add(&g->entered, 1);
	while (!atomic_load(&g->open))
		px_task_sleep(t, 200000);
	return 0;
}

#endif /* PX_TEST_UTIL_H */
