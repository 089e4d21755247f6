/*
 * bench/bench_threadpool.c - parex's thread pool against real peers.
 *
 * Run: build-dir/bench/bench_threadpool [--rounds N] [--tasks N]
 *      [--pingpong N] [--spec SPEC] [--no-python] [--no-idle] [--verbose]
 *      [--only PEER] [--parts abcd] [--wait-each] [--sporadic N]
 * --only and --parts (say --only parex --parts a) narrow a run for
 * profiling one peer on one measurement. --wait-each makes parex's (a) wait
 * on and release each future in one pass instead of px_wait() on all, then
 * releasing all.
 *
 * Every pool runs with 2 worker threads:
 *   (a) throughput: --tasks tiny tasks (one atomic increment each) are
 *       submitted, then all are waited for; reported as tasks/s;
 *   (b) round trip: submit one task, wait for its int64 result, --pingpong
 *       times; reported as p50 and p99 latency;
 *   (c) idle: after some work, the process CPU time (getrusage) used during
 *       one idle second; parked workers should use none;
 *   (d) sporadic (idle wake): sleep a gap (200 us, 1 ms, 5 ms), then one
 *       round trip as in (b), --sporadic times per gap, so that every
 *       request finds the workers parked; alternating with a round trip
 *       over a pipe to a forked process blocked in read() after the same
 *       gap, and Python's ThreadPoolExecutor(2) at the same gaps in its own
 *       process; p50 and p99 per gap. parex runs its spec as given (a
 *       waiter runs its own task in place of a parked worker, see `help`)
 *       and, as a reference, with help=0 added (parex_nohelp: the parked
 *       worker's wake itself, the path of callbacks and timed waits).
 * Peers, each built in only when found at configure time and otherwise
 * skipped with a printed line: GLib GThreadPool, libuv uv_queue_work,
 * OpenMP tasks, oneTBB task_group (bench_threadpool_tbb.cpp), and Python's
 * ThreadPoolExecutor(2) (bench_threadpool_py.py, reference only).
 * Rounds interleave the peers (parex, glib, uv, omp, tbb, python, parex, ...)
 * so that noise from the shared machine hits them alike; the table shows
 * medians over the rounds and the ratio parex/peer. Each round's figures
 * are also printed as "RESULT measure peer value unit" lines
 * (bench/bench_util.h) for bench/run_all.sh.
 *
 * Each peer uses its idiomatic fast path: GLib pushes onto an exclusive pool
 * and the last task signals a GCond; libuv queues preallocated uv_work_t and
 * runs the loop until every after_work callback ran; OpenMP creates tasks in
 * a parallel/single region and taskwaits; TBB runs a task_group in a
 * 2-thread arena. OpenMP and TBB count the waiting thread as one of their 2
 * threads (it runs tasks while it waits), as those runtimes are meant to be
 * used; in (b) that thread may run the task itself, so their round trip need
 * not cross threads.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <parex/executor.h>
#include <parex/future.h>

#ifdef PX_BENCH_HAVE_GLIB
#include <glib.h>
#endif
#ifdef PX_BENCH_HAVE_UV
#include <uv.h>
#endif
#ifdef PX_BENCH_HAVE_OMP
#include <omp.h>
#endif
#ifdef PX_BENCH_HAVE_TBB
#include "bench_threadpool_tbb.h"
#endif

#include "bench_util.h"

#define WORKERS 2

/* Options ---------------------------------------------------------------- */

static int opt_rounds = 5;
static size_t opt_tasks = 200000;
static size_t opt_pingpong = 20000;
static size_t opt_py_tasks = 20000;
static size_t opt_py_pingpong = 2000;
static const char *opt_spec = "thread:workers=2";
static int opt_python = 1;
static int opt_idle = 1;
static int opt_verbose;
static const char *opt_only;        /* run this peer only */
static const char *opt_parts = "abcd"; /* measurements to run */
static int opt_wait_each;
static size_t opt_sporadic = 200; /* (d): round trips per gap */

/* Helpers ---------------------------------------------------------------- */

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t cpu_ns(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000 +
	       ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static void die(const char *what, const char *detail)
{
	fprintf(stderr, "bench_threadpool: %s: %s\n", what, detail);
	exit(1);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n);

	if (!p)
		die("malloc", strerror(ENOMEM));
	return p;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Tasks for warming a pool up: arrays are sized for opt_tasks. */
static size_t warm_tasks(void)
{
	return opt_tasks < 10000 ? opt_tasks : 10000;
}

/* The q-quantile of sorted v[0..n), nearest rank. */
static int64_t quantile(const int64_t *v, size_t n, double q)
{
	size_t i = (size_t)(q * (double)n);

	return v[i < n ? i : n - 1];
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* One peer: hooks for the three measurements and its medians. */
struct peer {
	const char *name;
	const char *absent; /* why it is skipped, or NULL when it runs */
	/* (a): run n tiny tasks; returns elapsed ns. */
	int64_t (*throughput)(size_t n);
	/* (b): n round trips; fills lat[0..n) with ns each. */
	void (*pingpong)(size_t n, int64_t *lat);
	/* (c): a little work, then nothing; NULL if not measured. */
	void (*warm)(void);
	double *tps;   /* per round */
	double *p50us; /* per round */
	double *p99us; /* per round */
	int runs;
	double idle_ms;
	int idle_done;
};

/* The tiny task's target; every peer increments it once per task. */
static _Atomic uint64_t counter;

static void check_count(const char *peer, uint64_t want)
{
	uint64_t got = atomic_load(&counter);

	if (got != want) {
		fprintf(stderr, "bench_threadpool: %s ran %" PRIu64
			" of %" PRIu64 " tasks\n", peer, got, want);
		exit(1);
	}
}

/* parex ------------------------------------------------------------------- */

static px_executor *px_ex;
static px_future **px_fs;

/* The tiny task: the argument is a pointer to the counter. */
static int px_inc_task(px_task *t, const void *arg, size_t len)
{
	_Atomic uint64_t *c;

	(void)t;
	(void)len;
	memcpy(&c, arg, sizeof c);
	/* relaxed: only the total matters, read after the wait, which orders
	 * it (the future's completion is a release the wait acquires). */
	atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
	return 0;
}

/* The round-trip task: returns its argument plus one. */
static int px_echo_task(px_task *t, const void *arg, size_t len)
{
	int64_t v;

	(void)len;
	memcpy(&v, arg, sizeof v);
	v++;
	return px_task_return(t, &v, sizeof v);
}

static void px_setup(void)
{
	char err[256] = "";
	int r = px_executor_open(&px_ex, opt_spec, err, sizeof err);

	if (r < 0)
		die(opt_spec, err[0] ? err : px_strerror(r));
}

static int64_t px_throughput(size_t n)
{
	_Atomic uint64_t *c = &counter;
	int64_t t0, t1;
	int r;

	atomic_store(&counter, 0);
	t0 = now_ns();
	for (size_t i = 0; i < n; i++) {
		r = px_executor_submit(px_ex, px_inc_task, &c, sizeof c, NULL,
				       &px_fs[i]);
		if (r < 0)
			die("px_executor_submit", px_strerror(r));
	}
	if (opt_wait_each) {
		for (size_t i = 0; i < n; i++) {
			r = px_future_wait(px_fs[i], PX_FOREVER);
			if (r < 0)
				die("px_future_wait", px_strerror(r));
			px_future_release(px_fs[i]);
		}
	} else {
		r = px_wait(px_fs, n, PX_ALL_COMPLETED, PX_FOREVER, NULL);
		if (r != (int)n)
			die("px_wait", r < 0 ? px_strerror(r) : "short count");
		for (size_t i = 0; i < n; i++)
			px_future_release(px_fs[i]);
	}
	t1 = now_ns();
	check_count("parex", n);
	return t1 - t0;
}

static void px_pingpong_on(px_executor *ex, size_t n, int64_t *lat);

static void px_pingpong(size_t n, int64_t *lat)
{
	px_pingpong_on(px_ex, n, lat);
}

static void px_pingpong_on(px_executor *ex, size_t n, int64_t *lat)
{
	for (size_t i = 0; i < n; i++) {
		int64_t in = (int64_t)i, out = -1, t0 = now_ns();
		px_future *f;
		int r;

		r = px_executor_submit(ex, px_echo_task, &in, sizeof in,
				       NULL, &f);
		if (r < 0)
			die("px_executor_submit", px_strerror(r));
		r = px_future_wait(f, PX_FOREVER);
		if (r == 0)
			r = px_future_get_i64(f, 0, &out);
		px_future_release(f);
		lat[i] = now_ns() - t0;
		if (r < 0)
			die("px_future_get_i64", px_strerror(r));
		if (out != in + 1)
			die("parex", "wrong round-trip result");
	}
}

static void px_warm(void)
{
	px_throughput(warm_tasks());
}

/* GLib -------------------------------------------------------------------- */

#ifdef PX_BENCH_HAVE_GLIB
static GThreadPool *g_pool_a, *g_pool_b;
static GMutex g_mu;
static GCond g_cv;
static uint64_t g_target; /* tasks in this run; read by the last task */
static int g_all_done;    /* under g_mu */

/* (a): increment; the task that brings the count to the target wakes the
 * waiter. The counter's RMW orders the increments; g_mu orders the flag. */
static void g_inc_fn(gpointer data, gpointer user)
{
	(void)data;
	(void)user;
	if (atomic_fetch_add_explicit(&counter, 1, memory_order_acq_rel) + 1 ==
	    g_target) {
		g_mutex_lock(&g_mu);
		g_all_done = 1;
		g_cond_signal(&g_cv);
		g_mutex_unlock(&g_mu);
	}
}

/* (b): one item at a time, completed under its mutex and condition. */
struct g_item {
	GMutex mu;
	GCond cv;
	int done;
	int64_t in, out;
};

static void g_echo_fn(gpointer data, gpointer user)
{
	struct g_item *it = data;

	(void)user;
	g_mutex_lock(&it->mu);
	it->out = it->in + 1;
	it->done = 1;
	g_cond_signal(&it->cv);
	g_mutex_unlock(&it->mu);
}

static void glib_setup(void)
{
	GError *err = NULL;

	/* exclusive: the pool owns its 2 threads from the start, as parex's
	 * workers do; shared pools would spawn threads lazily. */
	g_pool_a = g_thread_pool_new(g_inc_fn, NULL, WORKERS, TRUE, &err);
	if (!g_pool_a)
		die("g_thread_pool_new", err->message);
	g_pool_b = g_thread_pool_new(g_echo_fn, NULL, WORKERS, TRUE, &err);
	if (!g_pool_b)
		die("g_thread_pool_new", err->message);
}

static int64_t glib_throughput(size_t n)
{
	int64_t t0, t1;

	atomic_store(&counter, 0);
	g_target = n;
	g_all_done = 0;
	t0 = now_ns();
	for (size_t i = 0; i < n; i++)
		g_thread_pool_push(g_pool_a, GINT_TO_POINTER(1), NULL);
	g_mutex_lock(&g_mu);
	while (!g_all_done)
		g_cond_wait(&g_cv, &g_mu);
	g_mutex_unlock(&g_mu);
	t1 = now_ns();
	check_count("glib", n);
	return t1 - t0;
}

static void glib_pingpong(size_t n, int64_t *lat)
{
	struct g_item it;

	g_mutex_init(&it.mu);
	g_cond_init(&it.cv);
	for (size_t i = 0; i < n; i++) {
		int64_t t0 = now_ns();

		it.done = 0;
		it.in = (int64_t)i;
		g_thread_pool_push(g_pool_b, &it, NULL);
		g_mutex_lock(&it.mu);
		while (!it.done)
			g_cond_wait(&it.cv, &it.mu);
		g_mutex_unlock(&it.mu);
		lat[i] = now_ns() - t0;
		if (it.out != (int64_t)i + 1)
			die("glib", "wrong round-trip result");
	}
	g_cond_clear(&it.cv);
	g_mutex_clear(&it.mu);
}

static void glib_warm(void)
{
	glib_throughput(warm_tasks());
}

static void glib_teardown(void)
{
	g_thread_pool_free(g_pool_a, FALSE, TRUE);
	g_thread_pool_free(g_pool_b, FALSE, TRUE);
}
#endif

/* libuv ------------------------------------------------------------------- */

#ifdef PX_BENCH_HAVE_UV
static uv_loop_t uv_lp;
static uv_work_t *uv_reqs;
static size_t uv_after; /* after_work callbacks seen; loop thread only */

static void uv_inc_work(uv_work_t *req)
{
	(void)req;
	/* relaxed: the loop reads the total after uv_run, which the pool's
	 * completion queue (mutex + async) orders. */
	atomic_fetch_add_explicit(&counter, 1, memory_order_relaxed);
}

static void uv_count_after(uv_work_t *req, int status)
{
	(void)req;
	if (status != 0)
		die("uv_queue_work", uv_strerror(status));
	uv_after++;
}

static void uv_echo_work(uv_work_t *req)
{
	int64_t *v = req->data;

	v[1] = v[0] + 1;
}

static void uv_setup(void)
{
	/* libuv's pool is process-wide and sized once, at first use, from the
	 * environment. */
	setenv("UV_THREADPOOL_SIZE", "2", 1);
	if (uv_loop_init(&uv_lp) != 0)
		die("uv_loop_init", "failed");
	uv_reqs = xmalloc(opt_tasks * sizeof *uv_reqs);
}

static int64_t uv_throughput(size_t n)
{
	int64_t t0, t1;

	atomic_store(&counter, 0);
	uv_after = 0;
	t0 = now_ns();
	for (size_t i = 0; i < n; i++) {
		int r = uv_queue_work(&uv_lp, &uv_reqs[i], uv_inc_work,
				      uv_count_after);
		if (r != 0)
			die("uv_queue_work", uv_strerror(r));
	}
	uv_run(&uv_lp, UV_RUN_DEFAULT);
	t1 = now_ns();
	if (uv_after != n)
		die("libuv", "missing after_work callbacks");
	check_count("libuv", n);
	return t1 - t0;
}

static void uv_pingpong(size_t n, int64_t *lat)
{
	uv_work_t req;
	int64_t v[2];

	req.data = v;
	for (size_t i = 0; i < n; i++) {
		int64_t t0 = now_ns();
		int r;

		v[0] = (int64_t)i;
		uv_after = 0;
		r = uv_queue_work(&uv_lp, &req, uv_echo_work, uv_count_after);
		if (r != 0)
			die("uv_queue_work", uv_strerror(r));
		uv_run(&uv_lp, UV_RUN_DEFAULT);
		lat[i] = now_ns() - t0;
		if (uv_after != 1 || v[1] != (int64_t)i + 1)
			die("libuv", "wrong round-trip result");
	}
}

static void uv_warm(void)
{
	uv_throughput(warm_tasks());
}

static void uv_teardown(void)
{
	uv_loop_close(&uv_lp);
	free(uv_reqs);
}
#endif

/* OpenMP ------------------------------------------------------------------ */

#ifdef PX_BENCH_HAVE_OMP
static int64_t omp_throughput(size_t n)
{
	int64_t t0, t1;

	atomic_store(&counter, 0);
	t0 = now_ns();
#pragma omp parallel num_threads(WORKERS)
#pragma omp single
	{
		for (size_t i = 0; i < n; i++) {
#pragma omp task
			atomic_fetch_add_explicit(&counter, 1,
						  memory_order_relaxed);
		}
#pragma omp taskwait
	}
	t1 = now_ns();
	check_count("openmp", n);
	return t1 - t0;
}

static void omp_pingpong(size_t n, int64_t *lat)
{
#pragma omp parallel num_threads(WORKERS)
#pragma omp single
	{
		for (size_t i = 0; i < n; i++) {
			int64_t in = (int64_t)i, out = -1, t0 = now_ns();

#pragma omp task shared(out) firstprivate(in)
			out = in + 1;
#pragma omp taskwait
			lat[i] = now_ns() - t0;
			if (out != (int64_t)i + 1)
				die("openmp", "wrong round-trip result");
		}
	}
}

static void omp_warm(void)
{
	omp_throughput(warm_tasks());
}
#endif

/* oneTBB (C++, in bench_threadpool_tbb.cpp) ------------------------------- */

#ifdef PX_BENCH_HAVE_TBB
static int64_t tbb_throughput(size_t n)
{
	int64_t t0, t1;

	atomic_store(&counter, 0);
	t0 = now_ns();
	px_bench_tbb_run_tasks(n, (void *)&counter);
	t1 = now_ns();
	check_count("onetbb", n);
	return t1 - t0;
}

static void tbb_pingpong(size_t n, int64_t *lat)
{
	if (px_bench_tbb_pingpong(n, lat) != 0)
		die("onetbb", "wrong round-trip result");
}

static void tbb_warm(void)
{
	tbb_throughput(warm_tasks());
}
#endif

/* Python (reference only) -------------------------------------------------- */

#if defined(PX_BENCH_PYTHON) && defined(PX_BENCH_PY_SCRIPT)
/* Runs the script once; it prints "tasks_per_s P50_US P99_US". */
static int py_round(double *tps, double *p50, double *p99)
{
	char cmd[1024];
	FILE *p;
	int n, st;

	snprintf(cmd, sizeof cmd, "'%s' '%s' %zu %zu", PX_BENCH_PYTHON,
		 PX_BENCH_PY_SCRIPT, opt_py_tasks, opt_py_pingpong);
	fflush(stdout);
	p = popen(cmd, "r");
	if (!p)
		return -1;
	n = fscanf(p, "%lf %lf %lf", tps, p50, p99);
	st = pclose(p);
	return n == 3 && st == 0 ? 0 : -1;
}
#endif

/* Driver ------------------------------------------------------------------ */

static struct peer peers[] = {
	{.name = "parex", .throughput = px_throughput,
	 .pingpong = px_pingpong, .warm = px_warm},
#ifdef PX_BENCH_HAVE_GLIB
	{.name = "glib", .throughput = glib_throughput,
	 .pingpong = glib_pingpong, .warm = glib_warm},
#else
	{.name = "glib", .absent = "glib-2.0 not found at configure time"},
#endif
#ifdef PX_BENCH_HAVE_UV
	{.name = "libuv", .throughput = uv_throughput,
	 .pingpong = uv_pingpong, .warm = uv_warm},
#else
	{.name = "libuv", .absent = "libuv not found at configure time"},
#endif
#ifdef PX_BENCH_HAVE_OMP
	{.name = "openmp", .throughput = omp_throughput,
	 .pingpong = omp_pingpong, .warm = omp_warm},
#else
	{.name = "openmp", .absent = "OpenMP (C) not found at configure time"},
#endif
#ifdef PX_BENCH_HAVE_TBB
	{.name = "onetbb", .throughput = tbb_throughput,
	 .pingpong = tbb_pingpong, .warm = tbb_warm},
#else
	{.name = "onetbb",
	 .absent = "oneTBB or a C++ compiler not found at configure time"},
#endif
#if defined(PX_BENCH_PYTHON) && defined(PX_BENCH_PY_SCRIPT)
	{.name = "python"},
#else
	{.name = "python", .absent = "python3 not found at configure time"},
#endif
};

#define NPEERS (sizeof peers / sizeof peers[0])

static int is_python(const struct peer *p)
{
	return strcmp(p->name, "python") == 0;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: bench_threadpool [--rounds N] [--tasks N] "
		"[--pingpong N] [--py-tasks N] [--py-pingpong N]\n"
		"       [--spec SPEC] [--no-python] [--no-idle] [--verbose]"
		" [--only PEER] [--parts abcd]\n"
		"       [--wait-each] [--sporadic N]\n");
	exit(2);
}

static size_t parse_count(const char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);

	if (!*s || *end || v == 0 || v > 100000000)
		usage();
	return (size_t)v;
}

static void parse_args(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--no-python")) {
			opt_python = 0;
		} else if (!strcmp(a, "--no-idle")) {
			opt_idle = 0;
		} else if (!strcmp(a, "--verbose")) {
			opt_verbose = 1;
		} else if (!strcmp(a, "--wait-each")) {
			opt_wait_each = 1;
		} else if (!v) {
			usage();
		} else if (!strcmp(a, "--rounds")) {
			opt_rounds = (int)parse_count(v), i++;
		} else if (!strcmp(a, "--tasks")) {
			opt_tasks = parse_count(v), i++;
		} else if (!strcmp(a, "--pingpong")) {
			opt_pingpong = parse_count(v), i++;
		} else if (!strcmp(a, "--py-tasks")) {
			opt_py_tasks = parse_count(v), i++;
		} else if (!strcmp(a, "--py-pingpong")) {
			opt_py_pingpong = parse_count(v), i++;
		} else if (!strcmp(a, "--spec")) {
			opt_spec = v, i++;
		} else if (!strcmp(a, "--only")) {
			opt_only = v, i++;
		} else if (!strcmp(a, "--parts")) {
			opt_parts = v, i++;
		} else if (!strcmp(a, "--sporadic")) {
			opt_sporadic = parse_count(v), i++;
		} else {
			usage();
		}
	}
	if (opt_rounds > 1000 || opt_sporadic > 100000 ||
	    strspn(opt_parts, "abcd") != strlen(opt_parts))
		usage();
	if (!strchr(opt_parts, 'c'))
		opt_idle = 0;
}

static void run_round(int round, int64_t *lat)
{
	for (size_t k = 0; k < NPEERS; k++) {
		struct peer *p = &peers[k];
		double tps, p50, p99;

		if (p->absent)
			continue;
		/* Let the previous peer's spinning threads park before this
		 * one starts, so one peer's spin tail is not charged to the
		 * next on a small machine. */
		sleep_ms(20);
		if (is_python(p)) {
#if defined(PX_BENCH_PYTHON) && defined(PX_BENCH_PY_SCRIPT)
			if (py_round(&tps, &p50, &p99) != 0) {
				printf("python: skipped: the script failed\n");
				p->absent = "the script failed";
				continue;
			}
#endif
		} else {
			tps = p50 = p99 = 0;
			if (strchr(opt_parts, 'a')) {
				int64_t ns = p->throughput(opt_tasks);

				tps = (double)opt_tasks * 1e9 / (double)ns;
				sleep_ms(20);
			}
			if (strchr(opt_parts, 'b')) {
				p->pingpong(opt_pingpong, lat);
				qsort(lat, opt_pingpong, sizeof *lat, cmp_i64);
				p50 = (double)quantile(lat, opt_pingpong, 0.50) /
				      1e3;
				p99 = (double)quantile(lat, opt_pingpong, 0.99) /
				      1e3;
			}
		}
		p->tps[p->runs] = tps;
		p->p50us[p->runs] = p50;
		p->p99us[p->runs] = p99;
		p->runs++;
		if (strchr(opt_parts, 'a'))
			px_bench_result("tp.tiny_tasks", p->name, tps,
					"tasks/s");
		if (strchr(opt_parts, 'b') || is_python(p)) {
			px_bench_result("tp.round_trip_p50", p->name, p50, "us");
			px_bench_result("tp.round_trip_p99", p->name, p99, "us");
		}
		if (opt_verbose)
			fprintf(stderr, "round %d %-7s %12.0f tasks/s  p50 %8.2f"
				" us  p99 %8.2f us\n", round, p->name, tps, p50,
				p99);
	}
}

/* (c): the process's CPU time over one idle second after p's work. */
static void run_idle(struct peer *p)
{
	int64_t c0, c1;

	p->warm();
	c0 = cpu_ns();
	sleep_ms(1000);
	c1 = cpu_ns();
	p->idle_ms = (double)(c1 - c0) / 1e6;
	p->idle_done = 1;
	px_bench_result("tp.idle_cpu", p->name, p->idle_ms, "ms");
}

/* (d) sporadic ------------------------------------------------------------ */

static void print_ratio(int width, double px, double peer);

/* parex_nohelp: the same spec with help=0, so that the waiter never runs
 * the task itself: the path a parked worker's wake takes (callbacks, timed
 * waits, a pool with an initializer). Reference only. */
enum { SP_PAREX, SP_NOHELP, SP_PIPE, SP_PYTHON, SP_PEERS };
static const char *const sp_name[SP_PEERS] = {"parex", "parex_nohelp", "pipe",
					      "python"};
static px_executor *px_ex_nohelp;
static struct px_bench_echo sp_echo;
static int sp_python; /* python takes part in (d) */
/* per peer and gap, one p50 and one p99 (us) per round */
static double *sp_p50[SP_PEERS][PX_BENCH_NGAPS];
static double *sp_p99[SP_PEERS][PX_BENCH_NGAPS];
static int sp_runs[SP_PEERS][PX_BENCH_NGAPS];

static void sp_record(int peer, int g, int64_t *lat, size_t n)
{
	char m[64];
	double p50 = (double)px_bench_quantile(lat, n, 0.50) / 1e3;
	double p99 = (double)px_bench_quantile(lat, n, 0.99) / 1e3;
	int k = sp_runs[peer][g]++;

	sp_p50[peer][g][k] = p50;
	sp_p99[peer][g][k] = p99;
	snprintf(m, sizeof m, "tp.idle_wake_%dus_p50", px_bench_gap_us(g));
	px_bench_result(m, sp_name[peer], p50, "us");
	snprintf(m, sizeof m, "tp.idle_wake_%dus_p99", px_bench_gap_us(g));
	px_bench_result(m, sp_name[peer], p99, "us");
}

#if defined(PX_BENCH_PYTHON) && defined(PX_BENCH_PY_SCRIPT)
/* Runs the script's sporadic mode; it prints "GAP_US P50_US P99_US" per
 * gap. Returns 0 when every gap was read. */
static int py_sporadic(void)
{
	char cmd[1024];
	FILE *p;
	int got = 0, st;

	snprintf(cmd, sizeof cmd, "'%s' '%s' sporadic %zu %d %d %d",
		 PX_BENCH_PYTHON, PX_BENCH_PY_SCRIPT, opt_sporadic,
		 px_bench_gap_us(0), px_bench_gap_us(1), px_bench_gap_us(2));
	fflush(stdout);
	p = popen(cmd, "r");
	if (!p)
		return -1;
	for (int g = 0; g < PX_BENCH_NGAPS; g++) {
		int gap;
		double a, b;
		char m[64];
		int k = sp_runs[SP_PYTHON][g];

		if (fscanf(p, "%d %lf %lf", &gap, &a, &b) != 3 ||
		    gap != px_bench_gap_us(g))
			break;
		sp_p50[SP_PYTHON][g][k] = a;
		sp_p99[SP_PYTHON][g][k] = b;
		sp_runs[SP_PYTHON][g]++;
		snprintf(m, sizeof m, "tp.idle_wake_%dus_p50", gap);
		px_bench_result(m, "python", a, "us");
		snprintf(m, sizeof m, "tp.idle_wake_%dus_p99", gap);
		px_bench_result(m, "python", b, "us");
		got++;
	}
	st = pclose(p);
	return got == PX_BENCH_NGAPS && st == 0 ? 0 : -1;
}
#endif

/* One round of (d): per gap, opt_sporadic parex round trips, each after
 * the gap, alternating with pipe round trips and parex help=0 round trips
 * after the same gap. */
static void run_sporadic(int64_t *lat_px, int64_t *lat_pipe, int64_t *lat_nh)
{
	for (int g = 0; g < PX_BENCH_NGAPS; g++) {
		int gap = px_bench_gap_us(g);

		for (size_t i = 0; i < opt_sporadic; i++) {
			px_bench_sleep_us(gap);
			px_pingpong(1, &lat_px[i]);
			px_bench_sleep_us(gap);
			lat_pipe[i] = px_bench_echo_rtt(&sp_echo, (int64_t)i);
			if (lat_pipe[i] < 0)
				die("pipe round trip", "failed");
			if (px_ex_nohelp) {
				px_bench_sleep_us(gap);
				px_pingpong_on(px_ex_nohelp, 1, &lat_nh[i]);
			}
		}
		sp_record(SP_PAREX, g, lat_px, opt_sporadic);
		sp_record(SP_PIPE, g, lat_pipe, opt_sporadic);
		if (px_ex_nohelp)
			sp_record(SP_NOHELP, g, lat_nh, opt_sporadic);
	}
#if defined(PX_BENCH_PYTHON) && defined(PX_BENCH_PY_SCRIPT)
	if (sp_python && py_sporadic() != 0) {
		printf("python: sporadic mode skipped: the script failed\n");
		sp_python = 0;
	}
#endif
}

static void print_sporadic(void)
{
	printf("\n(d) idle wake: one round trip after each gap, %zu per gap "
	       "(python: the same, in its process)\n", opt_sporadic);
	printf("(parex/pipe <= 1: parex wakes a parked worker at least as "
	       "fast as a pipe wakes a blocked process)\n");
	printf("(parex_nohelp: help=0, the waiter never runs the task: the "
	       "parked worker's wake itself; reference)\n");
	printf("%-12s %8s %10s %10s %12s %12s\n", "peer", "gap us", "p50 us",
	       "p99 us", "/pipe (p50)", "/pipe (p99)");
	for (int g = 0; g < PX_BENCH_NGAPS; g++) {
		double pipe50 = 0, pipe99 = 0;

		if (sp_runs[SP_PIPE][g]) {
			pipe50 = median(sp_p50[SP_PIPE][g], sp_runs[SP_PIPE][g]);
			pipe99 = median(sp_p99[SP_PIPE][g], sp_runs[SP_PIPE][g]);
		}
		for (int k = 0; k < SP_PEERS; k++) {
			double a, b;

			if (!sp_runs[k][g])
				continue;
			a = median(sp_p50[k][g], sp_runs[k][g]);
			b = median(sp_p99[k][g], sp_runs[k][g]);
			printf("%-12s %8d %10.2f %10.2f", sp_name[k],
			       px_bench_gap_us(g), a, b);
			print_ratio(12, a, pipe50);
			print_ratio(12, b, pipe99);
			printf("\n");
		}
	}
}

/* Prints a parex/peer ratio, or a dash when either side did not run. */
static void print_ratio(int width, double px, double peer)
{
	if (px > 0 && peer > 0)
		printf(" %*.3f", width, px / peer);
	else
		printf(" %*s", width, "-");
}

static void print_tables(void)
{
	const struct peer *px = &peers[0];
	double px_tps = 0, px_p50 = 0, px_p99 = 0, best_tps = 0, glib_p50 = 0;
	const char *best = "none";
	int has_a = strchr(opt_parts, 'a') != NULL;
	int has_b = strchr(opt_parts, 'b') != NULL;

	if (!px->absent && px->runs) {
		px_tps = median(peers[0].tps, px->runs);
		px_p50 = median(peers[0].p50us, px->runs);
		px_p99 = median(peers[0].p99us, px->runs);
	}

	if (has_a) {
		printf("\n(a) throughput: %zu tiny tasks (atomic increment), "
		       "submit all, then wait all (python: %zu)\n", opt_tasks,
		       opt_py_tasks);
		printf("(parex/peer > 1: parex is faster)\n");
		printf("%-8s %14s %14s %14s %10s\n", "peer", "tasks/s", "min",
		       "max", "parex/peer");
	}
	for (size_t k = 0; has_a && k < NPEERS; k++) {
		struct peer *p = &peers[k];
		double t;

		if (p->absent || !p->runs)
			continue;
		/* median() sorts, so the extremes are at the ends after. */
		t = median(p->tps, p->runs);
		printf("%-8s %14.0f %14.0f %14.0f", p->name, t, p->tps[0],
		       p->tps[p->runs - 1]);
		print_ratio(10, px_tps, t);
		printf("%s\n", is_python(p) ? "   (reference; fewer tasks)" : "");
		if (k > 0 && !is_python(p) && t > best_tps) {
			best_tps = t;
			best = p->name;
		}
	}

	if (has_b) {
		printf("\n(b) round trip: submit one task, wait its result; %zu "
		       "times (python: %zu)\n", opt_pingpong, opt_py_pingpong);
		printf("(parex/peer < 1: parex is faster; openmp and onetbb may "
		       "run the task in the waiting thread)\n");
		printf("%-8s %10s %10s %12s %12s\n", "peer", "p50 us",
		       "p99 us", "parex/peer", "parex/peer");
		printf("%-8s %10s %10s %12s %12s\n", "", "", "", "(p50)",
		       "(p99)");
	}
	for (size_t k = 0; has_b && k < NPEERS; k++) {
		struct peer *p = &peers[k];
		double a, b;

		if (p->absent || !p->runs)
			continue;
		a = median(p->p50us, p->runs);
		b = median(p->p99us, p->runs);
		printf("%-8s %10.2f %10.2f", p->name, a, b);
		print_ratio(12, px_p50, a);
		print_ratio(12, px_p99, b);
		printf("%s\n", is_python(p) ? "   (reference)" : "");
		if (!strcmp(p->name, "glib"))
			glib_p50 = a;
	}

	if (opt_idle) {
		printf("\n(c) idle: process CPU time during 1 s idle after "
		       "work (all pools alive, parked)\n");
		printf("%-8s %10s\n", "peer", "cpu ms");
		for (size_t k = 0; k < NPEERS; k++) {
			if (peers[k].idle_done)
				printf("%-8s %10.2f\n", peers[k].name,
				       peers[k].idle_ms);
		}
	}

	if (strchr(opt_parts, 'd'))
		print_sporadic();

	printf("\ntargets:\n");
	if (best_tps > 0 && px_tps > 0)
		printf("  (a) parex >= 2x best peer (%s): %.2fx  %s\n", best,
		       px_tps / best_tps,
		       px_tps >= 2 * best_tps ? "met" : "NOT met");
	if (glib_p50 > 0 && px_p50 > 0)
		printf("  (b) parex p50 <= glib p50 / 10: %.2f us vs %.2f us "
		       "(%.3f)  %s\n", px_p50, glib_p50, px_p50 / glib_p50,
		       px_p50 * 10 <= glib_p50 ? "met" : "NOT met");
	if (opt_idle && px->idle_done)
		printf("  (c) parex idle CPU: %.2f ms in 1 s  %s\n",
		       px->idle_ms, px->idle_ms < 5 ? "met (< 5 ms)" : "NOT met");
	for (int g = 0; g < PX_BENCH_NGAPS; g++) {
		int kp = sp_runs[SP_PAREX][g], kq = sp_runs[SP_PIPE][g];
		double a50, a99, q50, q99;

		if (!kp || !kq)
			continue;
		a50 = median(sp_p50[SP_PAREX][g], kp);
		a99 = median(sp_p99[SP_PAREX][g], kp);
		q50 = median(sp_p50[SP_PIPE][g], kq);
		q99 = median(sp_p99[SP_PIPE][g], kq);
		printf("  (d) gap %d us: parex/pipe p50 %.2f, p99 %.2f (<= 1)"
		       "  %s\n", px_bench_gap_us(g), a50 / q50, a99 / q99,
		       a50 <= q50 && a99 <= q99 ? "met" : "NOT met");
	}
}

int main(int argc, char **argv)
{
	int64_t *lat, *lat_sp = NULL, *lat_pipe = NULL, *lat_nh = NULL;

	parse_args(argc, argv);
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* (d)'s pipe peer is forked before any pool starts a thread. */
	if (strchr(opt_parts, 'd') && px_bench_echo_start(&sp_echo) != 0)
		die("fork", strerror(errno));
	printf("bench_threadpool: %d workers each, %d rounds interleaved "
	       "(medians), parex spec \"%s\"%s\n", WORKERS, opt_rounds,
	       opt_spec, opt_wait_each ? ", parex waits each" : "");
	for (size_t k = 0; k < NPEERS; k++) {
		if (!opt_python && is_python(&peers[k]))
			peers[k].absent = "--no-python";
		if (opt_only && strcmp(opt_only, peers[k].name) != 0 &&
		    !peers[k].absent)
			peers[k].absent = "--only";
	}
	for (size_t k = 0; k < NPEERS; k++) {
		struct peer *p = &peers[k];

		if (p->absent) {
			printf("%s: skipped: %s\n", p->name, p->absent);
			continue;
		}
		p->tps = xmalloc((size_t)opt_rounds * sizeof *p->tps);
		p->p50us = xmalloc((size_t)opt_rounds * sizeof *p->p50us);
		p->p99us = xmalloc((size_t)opt_rounds * sizeof *p->p99us);
	}

	px_fs = xmalloc(opt_tasks * sizeof *px_fs);
	lat = xmalloc(opt_pingpong * sizeof *lat);
	if (strchr(opt_parts, 'd')) {
		sp_python = !peers[NPEERS - 1].absent;
		for (int k = 0; k < SP_PEERS; k++)
			for (int g = 0; g < PX_BENCH_NGAPS; g++) {
				sp_p50[k][g] = xmalloc((size_t)opt_rounds *
						       sizeof(double));
				sp_p99[k][g] = xmalloc((size_t)opt_rounds *
						       sizeof(double));
			}
		lat_pipe = xmalloc(opt_sporadic * sizeof *lat_pipe);
		lat_sp = xmalloc(opt_sporadic * sizeof *lat_sp);
		lat_nh = xmalloc(opt_sporadic * sizeof *lat_nh);
	}
	px_setup();
	if (strchr(opt_parts, 'd') && !peers[0].absent) {
		/* The same pool without helping waiters (thread backend
		 * only: other backends have no such key and would ignore
		 * it, measuring nothing new). */
		char spec[512];
		snprintf(spec, sizeof spec, "%s%shelp=0", opt_spec,
			 strchr(opt_spec, ':') ? "," : ":");
		if (!strncmp(opt_spec, "thread", 6) &&
		    px_executor_open(&px_ex_nohelp, spec, NULL, 0) < 0)
			px_ex_nohelp = NULL;
		if (px_ex_nohelp)
			px_pingpong_on(px_ex_nohelp, 100, lat_nh);
	}
#ifdef PX_BENCH_HAVE_GLIB
	glib_setup();
#endif
#ifdef PX_BENCH_HAVE_UV
	uv_setup();
#endif
#ifdef PX_BENCH_HAVE_TBB
	if (px_bench_tbb_init(WORKERS) != 0)
		die("onetbb", "arena setup failed");
#endif

	/* Warm-up: threads started, free lists and caches filled. */
	for (size_t k = 0; k < NPEERS; k++) {
		if (!peers[k].absent && peers[k].throughput) {
			peers[k].throughput(warm_tasks());
			peers[k].pingpong(100 < opt_pingpong ? 100
							     : opt_pingpong,
					  lat);
		}
	}

	for (int r = 0; r < opt_rounds; r++) {
		run_round(r, lat);
		if (strchr(opt_parts, 'd') && !peers[0].absent)
			run_sporadic(lat_sp, lat_pipe, lat_nh);
	}

	if (opt_idle) {
		/* Let every pool's threads park before the first idle
		 * second. */
		sleep_ms(300);
		for (size_t k = 0; k < NPEERS; k++) {
			if (!peers[k].absent && peers[k].warm)
				run_idle(&peers[k]);
		}
	}

	print_tables();

	px_executor_destroy(px_ex);
	px_executor_destroy(px_ex_nohelp);
#ifdef PX_BENCH_HAVE_GLIB
	glib_teardown();
#endif
#ifdef PX_BENCH_HAVE_UV
	uv_teardown();
#endif
#ifdef PX_BENCH_HAVE_TBB
	px_bench_tbb_fini();
#endif
	free(lat);
	free(px_fs);
	if (strchr(opt_parts, 'd')) {
		px_bench_echo_stop(&sp_echo);
		free(lat_sp);
		free(lat_pipe);
		free(lat_nh);
		for (int k = 0; k < SP_PEERS; k++)
			for (int g = 0; g < PX_BENCH_NGAPS; g++) {
				free(sp_p50[k][g]);
				free(sp_p99[k][g]);
			}
	}
	for (size_t k = 0; k < NPEERS; k++) {
		free(peers[k].tps);
		free(peers[k].p50us);
		free(peers[k].p99us);
	}
	return 0;
}
