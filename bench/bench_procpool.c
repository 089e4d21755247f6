/*
 * bench/bench_procpool.c - parex's process pool against process-pool peers.
 *
 * Run: build-dir/bench/bench_procpool [--rounds N] [--tasks N] [--map N]
 *      [--pingpong N] [--py-submit N] [--py-map1 N] [--py-map256 N]
 *      [--py-pingpong N] [--no-python] [--sporadic N] [--no-sporadic]
 *      [--parts abcd] [--help]
 * --parts runs only the parts named (letters below; default all), e.g.
 * --parts c for the ping-pong alone.
 *
 * Every pool has 2 worker processes (parex's thread pool, 2 threads, is
 * shown for reference). The task is "return x + 1" on an int64.
 *   (a) submit: --tasks tasks, each with its own future (parex), or one
 *       record each (the naive fork+pipe pool: one write() per record to a
 *       worker's pipe, one read() per result), or ProcessPoolExecutor.submit;
 *       submit all, then wait for all and check the sum; tasks/s.
 *   (b) map: --map records through px_executor_map (default chunking, and
 *       chunk 256) and px_executor_map_stream (default chunks and bound:
 *       records from a source callback, results summed by the sink), a
 *       fork+pipe pool that batches up to 256 records per
 *       write() and reads results in bulk, and ProcessPoolExecutor.map with
 *       chunksize 1 and 256; records/s.
 *   (c) ping-pong: submit one task, wait for its result, --pingpong times;
 *       p50 and p99. The pipe peer is one round trip over a pair of pipes
 *       to a worker process.
 *   (d) sporadic (idle wake): sleep a gap (200 us, 1 ms, 5 ms), then one
 *       round trip as in (c), --sporadic times per gap, so that every
 *       request finds the workers parked; alternating with a pipe round
 *       trip to a forked process blocked in read() after the same gap, and
 *       ProcessPoolExecutor(2) at the same gaps (in its own process); p50
 *       and p99 per gap. Two diagnostics come with it, in the same
 *       alternation: a bare futex hand-off (a forked process asleep on a
 *       futex word in a shared page, woken with FUTEX_WAKE, answering the
 *       same way: what the process pool's two sleeps cost without its
 *       code), and where a parex sample's time goes (its task returns the
 *       worker's clock at its start, the same CLOCK_MONOTONIC: until
 *       px_executor_submit() returns, until the task starts, from the
 *       task's start until the caller has the result), p50 each.
 * Python runs bench_procpool_py.py (its own sizes, --py-*), skipped with a
 * line when python3 was not found at configure time or the script fails.
 * Rounds interleave the peers (parex process, parex thread, naive pipe,
 * batched pipe, python, then again) so the shared machine's noise hits them
 * alike; the tables show medians over rounds and parex/peer ratios, and the
 * issue's targets: submit >= 3x the naive pipe pool and >= 150x Python's
 * submit; map >= the batched pipe pool; map_stream >= 0.8x map; ping-pong
 * p50 <= 1/4 of the pipe round trip; idle wake p50 and p99 <= the pipe
 * round trip at the same gap. The map rows show the spread (min and max
 * over the rounds) next to the median. Each round's figures are also
 * printed as "RESULT measure peer value unit" lines (bench/bench_util.h)
 * for bench/run_all.sh.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <parex/executor.h>
#include <parex/future.h>

#include "bench_util.h"

#define WORKERS 2
#define BATCH 256
#define MAXR 64

static int opt_rounds = 5;
static size_t opt_tasks = 200000;
static size_t opt_map = 2000000;
static size_t opt_pingpong = 20000;
static size_t opt_py_submit = 20000;
static size_t opt_py_map1 = 20000;
static size_t opt_py_map256 = 200000;
static size_t opt_py_pingpong = 2000;
static int opt_python = 1;
static size_t opt_sporadic = 200; /* (d): round trips per gap; 0: none */
static const char *opt_parts = "abcd";

static bool part(char c)
{
	return strchr(opt_parts, c) != NULL;
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *what, const char *detail)
{
	fprintf(stderr, "bench_procpool: %s: %s\n", what, detail);
	exit(1);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		die("malloc", strerror(errno));
	return p;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(const double *v, int n)
{
	double s[MAXR];
	if (n <= 0)
		return 0;
	memcpy(s, v, (size_t)n * sizeof(*s));
	qsort(s, (size_t)n, sizeof(*s), cmp_double);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* Results: one series per (peer, measurement). */
struct series {
	const char *name;
	double v[MAXR];
	int n;
};

static void add(struct series *s, double v)
{
	if (s->n < MAXR)
		s->v[s->n++] = v;
}

static void pingpong_stats(int64_t *lat, size_t n, struct series *p50,
			   struct series *p99)
{
	qsort(lat, n, sizeof(*lat), cmp_i64);
	add(p50, (double)lat[n / 2] / 1000.0);
	size_t i = (size_t)(0.99 * (double)n);
	add(p99, (double)lat[i < n ? i : n - 1] / 1000.0);
}

/* parex ------------------------------------------------------------------- */

static int inc_task(px_task *t, const void *arg, size_t len)
{
	int64_t v;
	(void)len;
	memcpy(&v, arg, sizeof(v));
	v++;
	return px_task_return(t, &v, sizeof(v));
}

/* (d)'s task: returns the worker's clock at its start (see run_sporadic). */
static int stamp_task(px_task *t, const void *arg, size_t len)
{
	(void)arg;
	(void)len;
	int64_t v = now_ns();
	return px_task_return(t, &v, sizeof(v));
}

static px_executor *open_pool(const char *spec)
{
	px_executor *ex;
	char err[256] = "";
	int r = px_executor_open(&ex, spec, err, sizeof(err));
	if (r)
		die(spec, err[0] ? err : px_strerror(r));
	return ex;
}

static double px_submit(px_executor *ex, size_t n, px_future **fs)
{
	int64_t t0 = now_ns();
	for (size_t i = 0; i < n; i++) {
		int64_t v = (int64_t)i;
		int r = px_executor_submit(ex, inc_task, &v, sizeof(v), NULL, &fs[i]);
		if (r)
			die("px_executor_submit", px_strerror(r));
	}
	int64_t sum = 0;
	for (size_t i = 0; i < n; i++) {
		int64_t v;
		int r = px_future_get_i64(fs[i], PX_FOREVER, &v);
		if (r)
			die("px_future_get_i64", px_strerror(r));
		sum += v;
		px_future_release(fs[i]);
	}
	int64_t t1 = now_ns();
	if (sum != (int64_t)n * ((int64_t)n + 1) / 2)
		die("parex submit", "wrong sum");
	return (double)n / ((double)(t1 - t0) / 1e9);
}

static double px_map(px_executor *ex, size_t n, size_t chunk, int64_t *in,
		     int64_t *out)
{
	px_map_opts o = { .chunk = chunk };
	int64_t t0 = now_ns();
	int r = px_executor_map(ex, inc_task, in, sizeof(*in), n, out,
				sizeof(*out), &o);
	int64_t t1 = now_ns();
	if (r)
		die("px_executor_map", px_strerror(r));
	for (size_t i = 0; i < n; i++)
		if (out[i] != in[i] + 1)
			die("parex map", "wrong result");
	return (double)n / ((double)(t1 - t0) / 1e9);
}

/* map_stream: the source counts 0..n-1, the sink sums the results. */
struct stream_io {
	int64_t next, n, sum;
};

static int64_t stream_source(void *recs, size_t max, void *arg)
{
	struct stream_io *s = arg;
	int64_t *out = recs;
	size_t k = 0;
	for (; k < max && s->next < s->n; k++)
		out[k] = s->next++;
	return (int64_t)k;
}

static int stream_sink(size_t first, size_t count, const void *results,
		       const int *codes, void *arg)
{
	struct stream_io *s = arg;
	const int64_t *res = results;
	(void)first;
	for (size_t i = 0; i < count; i++) {
		if (codes[i])
			return codes[i];
		s->sum += res[i];
	}
	return 0;
}

static double px_map_stream(px_executor *ex, size_t n)
{
	struct stream_io s = { 0, (int64_t)n, 0 };
	int64_t t0 = now_ns();
	int r = px_executor_map_stream(ex, inc_task, sizeof(int64_t),
				       stream_source, sizeof(int64_t),
				       stream_sink, &s, NULL);
	int64_t t1 = now_ns();
	if (r)
		die("px_executor_map_stream", px_strerror(r));
	if (s.sum != (int64_t)n * ((int64_t)n + 1) / 2)
		die("parex map_stream", "wrong sum");
	return (double)n / ((double)(t1 - t0) / 1e9);
}

static void px_pingpong(px_executor *ex, size_t n, int64_t *lat)
{
	for (size_t i = 0; i < n; i++) {
		int64_t in = (int64_t)i, out = -1, t0 = now_ns();
		px_future *f;
		int r = px_executor_submit(ex, inc_task, &in, sizeof(in), NULL, &f);
		if (r)
			die("px_executor_submit", px_strerror(r));
		r = px_future_get_i64(f, PX_FOREVER, &out);
		px_future_release(f);
		lat[i] = now_ns() - t0;
		if (r || out != in + 1)
			die("parex ping-pong", "wrong result");
	}
}

/* fork+pipe pools ------------------------------------------------------------ */

/*
 * WORKERS processes, each with a request pipe and a response pipe. A
 * worker reads what is there (up to BATCH records), adds one to each and
 * writes them back in one write(); in naive mode it reads and writes one
 * record per call. The parent writes requests from the calling thread and
 * a collector thread reads responses, so neither side's pipe fills up.
 */
struct pipepool {
	int batched;
	pid_t pid[WORKERS];
	int req[WORKERS];  /* parent writes */
	int resp[WORKERS]; /* parent reads */
};

/* The pipe pools' task, called through a pointer per record as a pool that
 * runs user functions must (not inlined into a vectorised loop). */
static int64_t pipe_inc(int64_t v)
{
	return v + 1;
}

static int64_t (*volatile pipe_task)(int64_t) = pipe_inc;

static void pipe_worker(int rfd, int wfd, int batched)
{
	int64_t buf[BATCH];
	for (;;) {
		ssize_t r = read(rfd, buf, batched ? sizeof(buf) : sizeof(buf[0]));
		if (r <= 0)
			_exit(0);
		size_t k = (size_t)r / sizeof(buf[0]);
		int64_t (*fn)(int64_t) = pipe_task;
		for (size_t i = 0; i < k; i++)
			buf[i] = fn(buf[i]);
		if (write(wfd, buf, (size_t)r) != r)
			_exit(1);
	}
}

static void pipepool_start(struct pipepool *pp, int batched)
{
	pp->batched = batched;
	fflush(NULL);
	for (int w = 0; w < WORKERS; w++) {
		int a[2], b[2];
		if (pipe(a) || pipe(b))
			die("pipe", strerror(errno));
		pid_t p = fork();
		if (p < 0)
			die("fork", strerror(errno));
		if (p == 0) {
			/* Keep only this worker's two ends: an inherited
			 * write end of another pool would hide its EOF. */
			for (int fd = 3; fd < 1024; fd++)
				if (fd != a[0] && fd != b[1])
					close(fd);
			pipe_worker(a[0], b[1], batched);
		}
		close(a[0]);
		close(b[1]);
		pp->pid[w] = p;
		pp->req[w] = a[1];
		pp->resp[w] = b[0];
	}
}

static void pipepool_stop(struct pipepool *pp)
{
	for (int w = 0; w < WORKERS; w++) {
		close(pp->req[w]);
		close(pp->resp[w]);
		waitpid(pp->pid[w], NULL, 0);
	}
}

struct collect {
	struct pipepool *pp;
	size_t want;
	int64_t sum;
};

static void *pipe_collector(void *arg)
{
	struct collect *c = arg;
	size_t got = 0;
	int64_t buf[BATCH];
	struct pollfd pf[WORKERS];
	for (int w = 0; w < WORKERS; w++)
		pf[w] = (struct pollfd){ .fd = c->pp->resp[w], .events = POLLIN };
	while (got < c->want) {
		if (poll(pf, WORKERS, -1) < 0 && errno != EINTR)
			die("poll", strerror(errno));
		for (int w = 0; w < WORKERS; w++) {
			if (!(pf[w].revents & POLLIN))
				continue;
			ssize_t r = read(pf[w].fd, buf,
					 c->pp->batched ? sizeof(buf) : sizeof(buf[0]));
			if (r <= 0)
				die("pipe pool", "worker hung up");
			for (size_t i = 0; i < (size_t)r / sizeof(buf[0]); i++)
				c->sum += buf[i];
			got += (size_t)r / sizeof(buf[0]);
		}
	}
	return NULL;
}

static double pipepool_run(struct pipepool *pp, size_t n)
{
	struct collect c = { .pp = pp, .want = n };
	pthread_t th;
	int64_t t0 = now_ns();
	pthread_create(&th, NULL, pipe_collector, &c);
	int64_t buf[BATCH];
	size_t per = pp->batched ? BATCH : 1;
	int w = 0;
	for (size_t i = 0; i < n; i += per) {
		size_t k = n - i < per ? n - i : per;
		for (size_t j = 0; j < k; j++)
			buf[j] = (int64_t)(i + j);
		ssize_t len = (ssize_t)(k * sizeof(buf[0]));
		if (write(pp->req[w], buf, (size_t)len) != len)
			die("pipe pool", "short write");
		w = (w + 1) % WORKERS;
	}
	pthread_join(th, NULL);
	int64_t t1 = now_ns();
	if (c.sum != (int64_t)n * ((int64_t)n + 1) / 2)
		die("pipe pool", "wrong sum");
	return (double)n / ((double)(t1 - t0) / 1e9);
}

static void pipe_pingpong(struct pipepool *pp, size_t n, int64_t *lat)
{
	for (size_t i = 0; i < n; i++) {
		int64_t v = (int64_t)i, t0 = now_ns();
		if (write(pp->req[0], &v, sizeof(v)) != sizeof(v) ||
		    read(pp->resp[0], &v, sizeof(v)) != sizeof(v))
			die("pipe ping-pong", strerror(errno));
		lat[i] = now_ns() - t0;
		if (v != (int64_t)i + 1)
			die("pipe ping-pong", "wrong result");
	}
}

/* Python ---------------------------------------------------------------------- */

#if defined(PX_BENCH_PYTHON) && defined(PX_BENCH_PY_SCRIPT)
static int py_round(double out[5])
{
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "'%s' '%s' %zu %zu %zu %zu", PX_BENCH_PYTHON,
		 PX_BENCH_PY_SCRIPT, opt_py_submit, opt_py_map1, opt_py_map256,
		 opt_py_pingpong);
	fflush(stdout);
	FILE *p = popen(cmd, "r");
	if (!p)
		return -1;
	int n = fscanf(p, "%lf %lf %lf %lf %lf", &out[0], &out[1], &out[2],
		       &out[3], &out[4]);
	int st = pclose(p);
	return n == 5 && st == 0 ? 0 : -1;
}
#endif

/* (d) sporadic ------------------------------------------------------------------ */

enum { SP_PAREX, SP_PIPE, SP_PYTHON, SP_PEERS };
static const char *const sp_name[SP_PEERS] = { "parex", "pipe", "python" };
/* per peer and gap: p50 and p99 (us) per round */
static struct series sp50[SP_PEERS][PX_BENCH_NGAPS], sp99[SP_PEERS][PX_BENCH_NGAPS];

static void sp_add(int peer, int g, double p50, double p99)
{
	char m[64];
	add(&sp50[peer][g], p50);
	add(&sp99[peer][g], p99);
	snprintf(m, sizeof(m), "pp.idle_wake_%dus_p50", px_bench_gap_us(g));
	px_bench_result(m, sp_name[peer], p50, "us");
	snprintf(m, sizeof(m), "pp.idle_wake_%dus_p99", px_bench_gap_us(g));
	px_bench_result(m, sp_name[peer], p99, "us");
}

#if defined(PX_BENCH_PYTHON) && defined(PX_BENCH_PY_SCRIPT)
/* The script's sporadic mode prints "GAP_US P50_US P99_US" per gap. */
static int py_sporadic(void)
{
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "'%s' '%s' sporadic %zu %d %d %d", PX_BENCH_PYTHON,
		 PX_BENCH_PY_SCRIPT, opt_sporadic, px_bench_gap_us(0),
		 px_bench_gap_us(1), px_bench_gap_us(2));
	fflush(stdout);
	FILE *p = popen(cmd, "r");
	if (!p)
		return -1;
	int got = 0;
	for (int g = 0; g < PX_BENCH_NGAPS; g++) {
		int gap;
		double a, b;
		if (fscanf(p, "%d %lf %lf", &gap, &a, &b) != 3 || gap != px_bench_gap_us(g))
			break;
		sp_add(SP_PYTHON, g, a, b);
		got++;
	}
	int st = pclose(p);
	return got == PX_BENCH_NGAPS && st == 0 ? 0 : -1;
}
#endif

/*
 * (d)'s futex peer: a forked process that sleeps on `req` (FUTEX_WAIT on a
 * MAP_SHARED page, as a parked worker does on its slot), answers v + 1 and
 * wakes the caller asleep on `rep`: the process pool's two sleeps and two
 * wakes without its code around them. Started before any thread, like the
 * echo process.
 */
struct fx_echo {
	_Atomic uint32_t req, rep, stop;
	_Atomic int64_t v;
	pid_t pid;
};

static void fx_sleep(_Atomic uint32_t *w, uint32_t old)
{
	/* Acquire: pairs with the other side's release bump. */
	while (atomic_load_explicit(w, memory_order_acquire) == old)
		syscall(SYS_futex, w, FUTEX_WAIT, old, NULL, NULL, 0);
}

static void fx_bump(_Atomic uint32_t *w)
{
	/* Release: publishes v before the bump the sleeper looks at. */
	atomic_fetch_add_explicit(w, 1, memory_order_release);
	syscall(SYS_futex, w, FUTEX_WAKE, 1, NULL, NULL, 0);
}

static struct fx_echo *fx_echo_start(void)
{
	struct fx_echo *e = mmap(NULL, sizeof(*e), PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (e == MAP_FAILED)
		die("mmap", strerror(errno));
	fflush(NULL);
	e->pid = fork();
	if (e->pid < 0)
		die("fork", strerror(errno));
	if (e->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		/* Keep no pipe end of the other peers: each would hide
		 * that pipe's EOF from its reader. */
		for (int fd = 3; fd < 1024; fd++)
			close(fd);
		uint32_t seen = 0;
		for (;;) {
			fx_sleep(&e->req, seen);
			seen = atomic_load_explicit(&e->req, memory_order_acquire);
			if (atomic_load_explicit(&e->stop, memory_order_relaxed))
				_exit(0);
			atomic_store_explicit(&e->v,
					      atomic_load_explicit(&e->v, memory_order_relaxed) + 1,
					      memory_order_relaxed);
			fx_bump(&e->rep);
		}
	}
	return e;
}

static int64_t fx_echo_rtt(struct fx_echo *e, int64_t v)
{
	int64_t t0 = now_ns();
	uint32_t r = atomic_load_explicit(&e->rep, memory_order_relaxed);
	atomic_store_explicit(&e->v, v, memory_order_relaxed);
	fx_bump(&e->req);
	fx_sleep(&e->rep, r);
	int64_t t1 = now_ns();
	return atomic_load_explicit(&e->v, memory_order_relaxed) == v + 1 ? t1 - t0 : -1;
}

static void fx_echo_stop(struct fx_echo *e)
{
	atomic_store_explicit(&e->stop, 1, memory_order_relaxed);
	fx_bump(&e->req);
	waitpid(e->pid, NULL, 0);
	munmap(e, sizeof(*e));
}

/* Per gap, medians over rounds: the futex peer's p50 and p99, and the p50s
 * of a parex sample's three spans (see the top comment). */
enum { SPL_SUBMIT, SPL_START, SPL_BACK, SPL_N };
static struct series fx50[PX_BENCH_NGAPS], fx99[PX_BENCH_NGAPS],
	split50[SPL_N][PX_BENCH_NGAPS];

/* One parex sample of (d): its duration, and its spans in span[0..2]. */
static int64_t px_sporadic_one(px_executor *ex, int64_t span[SPL_N])
{
	int64_t start = -1, t0 = now_ns();
	px_future *f;
	int r = px_executor_submit(ex, stamp_task, NULL, 0, NULL, &f);
	if (r)
		die("px_executor_submit", px_strerror(r));
	int64_t t1 = now_ns();
	r = px_future_get_i64(f, PX_FOREVER, &start);
	px_future_release(f);
	int64_t t2 = now_ns();
	if (r || start < t0 || start > t2)
		die("parex idle wake", "no result, or a start outside the round trip");
	span[SPL_SUBMIT] = t1 - t0;
	span[SPL_START] = start - t0;
	span[SPL_BACK] = t2 - start;
	return t2 - t0;
}

/* One round of (d): per gap, parex round trips after the gap, alternating
 * with pipe round trips and futex hand-offs after the same gap. */
static void run_sporadic(px_executor *ex, struct px_bench_echo *echo, struct fx_echo *fx,
			 int64_t *lat_px, int64_t *lat_pipe, int64_t *lat_fx,
			 int64_t *span[SPL_N])
{
	for (int g = 0; g < PX_BENCH_NGAPS; g++) {
		int gap = px_bench_gap_us(g);
		for (size_t i = 0; i < opt_sporadic; i++) {
			int64_t sp[SPL_N];
			px_bench_sleep_us(gap);
			lat_px[i] = px_sporadic_one(ex, sp);
			for (int k = 0; k < SPL_N; k++)
				span[k][i] = sp[k];
			px_bench_sleep_us(gap);
			lat_pipe[i] = px_bench_echo_rtt(echo, (int64_t)i);
			if (lat_pipe[i] < 0)
				die("pipe round trip", "failed");
			px_bench_sleep_us(gap);
			lat_fx[i] = fx_echo_rtt(fx, (int64_t)i);
			if (lat_fx[i] < 0)
				die("futex hand-off", "wrong answer");
		}
		add(&fx50[g], (double)px_bench_quantile(lat_fx, opt_sporadic, 0.5) / 1e3);
		add(&fx99[g], (double)px_bench_quantile(lat_fx, opt_sporadic, 0.99) / 1e3);
		for (int k = 0; k < SPL_N; k++)
			add(&split50[k][g],
			    (double)px_bench_quantile(span[k], opt_sporadic, 0.5) / 1e3);
		sp_add(SP_PAREX, g, (double)px_bench_quantile(lat_px, opt_sporadic, 0.5) / 1e3,
		       (double)px_bench_quantile(lat_px, opt_sporadic, 0.99) / 1e3);
		sp_add(SP_PIPE, g, (double)px_bench_quantile(lat_pipe, opt_sporadic, 0.5) / 1e3,
		       (double)px_bench_quantile(lat_pipe, opt_sporadic, 0.99) / 1e3);
	}
}

/* RESULT line for series s when this round (r) added to it. */
static void emit(int r, const char *measure, const char *peer, const struct series *s,
		 const char *unit, double scale)
{
	if (s->n == r + 1)
		px_bench_result(measure, peer, s->v[r] / scale, unit);
}

/* Driver ------------------------------------------------------------------------ */

static size_t parse_count(const char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (!*s || *end || v == 0)
		die("bad count", s);
	return (size_t)v;
}

static void parse_args(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			printf("usage: bench_procpool [--rounds N] [--tasks N] [--map N] "
			       "[--pingpong N]\n"
			       "       [--py-submit N] [--py-map1 N] [--py-map256 N] "
			       "[--py-pingpong N]\n"
			       "       [--no-python] [--sporadic N] [--no-sporadic] "
			       "[--parts LETTERS]\n"
			       "parts: a submit, b map, c ping-pong, d sporadic (idle "
			       "wake); default abcd\n");
			exit(0);
		}
		if (!strcmp(a, "--no-python")) {
			opt_python = 0;
			continue;
		}
		if (!strcmp(a, "--no-sporadic")) {
			opt_sporadic = 0;
			continue;
		}
		if (!v)
			die("missing value for", a);
		i++;
		if (!strcmp(a, "--rounds")) {
			opt_rounds = (int)parse_count(v);
			if (opt_rounds > MAXR)
				opt_rounds = MAXR;
		} else if (!strcmp(a, "--tasks")) {
			opt_tasks = parse_count(v);
		} else if (!strcmp(a, "--map")) {
			opt_map = parse_count(v);
		} else if (!strcmp(a, "--pingpong")) {
			opt_pingpong = parse_count(v);
		} else if (!strcmp(a, "--py-submit")) {
			opt_py_submit = parse_count(v);
		} else if (!strcmp(a, "--py-map1")) {
			opt_py_map1 = parse_count(v);
		} else if (!strcmp(a, "--py-map256")) {
			opt_py_map256 = parse_count(v);
		} else if (!strcmp(a, "--py-pingpong")) {
			opt_py_pingpong = parse_count(v);
		} else if (!strcmp(a, "--parts")) {
			if (!*v || strspn(v, "abcd") != strlen(v))
				die("--parts: letters among abcd", v);
			opt_parts = v;
		} else if (!strcmp(a, "--sporadic")) {
			opt_sporadic = parse_count(v);
			if (opt_sporadic > 100000)
				die("--sporadic: at most 100000", v);
		} else {
			die("unknown option", a);
		}
	}
}

static void row(const struct series *s, const char *unit, double scale)
{
	if (!s->n) {
		printf("  %-40s %12s\n", s->name, "skipped");
		return;
	}
	printf("  %-40s %12.3f %s\n", s->name, median(s->v, s->n) / scale, unit);
}

/* A row with the spread: median, then min and max over the rounds. */
static void row_spread(const struct series *s, const char *unit, double scale)
{
	if (!s->n) {
		row(s, unit, scale);
		return;
	}
	double lo = s->v[0], hi = s->v[0];
	for (int i = 1; i < s->n; i++) {
		lo = s->v[i] < lo ? s->v[i] : lo;
		hi = s->v[i] > hi ? s->v[i] : hi;
	}
	printf("  %-40s %12.3f %s (%.3f..%.3f)\n", s->name,
	       median(s->v, s->n) / scale, unit, lo / scale, hi / scale);
}

static void ratio(const char *what, double num, double den, double target,
		  const char *cmp)
{
	if (num <= 0 || den <= 0) {
		printf("  %-52s %8s\n", what, "n/a");
		return;
	}
	double r = num / den;
	bool ok = !strcmp(cmp, ">=") ? r >= target : r <= target;
	printf("  %-52s %8.2fx   (target %s %gx: %s)\n", what, r, cmp, target,
	       ok ? "met" : "MISSED");
}

int main(int argc, char **argv)
{
	parse_args(argc, argv);
	if (!part('d'))
		opt_sporadic = 0;
	signal(SIGPIPE, SIG_IGN);

	/* Pipe pools first: their workers are forked before any thread. */
	struct pipepool naive, batched;
	pipepool_start(&naive, 0);
	pipepool_start(&batched, 1);
	struct px_bench_echo echo = { .pid = -1, .req = -1, .resp = -1 };
	if (opt_sporadic && px_bench_echo_start(&echo) != 0)
		die("fork", strerror(errno));
	struct fx_echo *fx = opt_sporadic ? fx_echo_start() : NULL;
	px_executor *proc = open_pool("process:workers=2");
	px_executor *thr = open_pool("thread:workers=2");

	size_t nmax = opt_tasks > opt_map ? opt_tasks : opt_map;
	px_future **fs = xmalloc(opt_tasks * sizeof(*fs));
	int64_t *in = xmalloc(nmax * sizeof(*in));
	int64_t *out = xmalloc(nmax * sizeof(*out));
	int64_t *lat = xmalloc((opt_pingpong > opt_py_pingpong ? opt_pingpong
							       : opt_py_pingpong) *
			       sizeof(*lat));
	for (size_t i = 0; i < nmax; i++)
		in[i] = (int64_t)i;
	int64_t *lat_sp = xmalloc(opt_sporadic * sizeof(*lat_sp));
	int64_t *lat_pipe = xmalloc(opt_sporadic * sizeof(*lat_pipe));
	int64_t *lat_fx = xmalloc(opt_sporadic * sizeof(*lat_fx));
	int64_t *span[SPL_N];
	for (int k = 0; k < SPL_N; k++)
		span[k] = xmalloc(opt_sporadic * sizeof(*span[k]));

	struct series s_px = { "parex process: submit" },
		      s_pt = { "parex thread (reference): submit" },
		      s_naive = { "naive fork+pipe pool (1 record/syscall)" },
		      s_pys = { "python ProcessPoolExecutor(2).submit" },
		      m_px = { "parex process: map (default chunks)" },
		      m_px256 = { "parex process: map (chunk 256)" },
		      m_pt = { "parex thread (reference): map" },
		      m_pxs = { "parex process: map_stream" },
		      m_pts = { "parex thread (reference): map_stream" },
		      m_batch = { "fork+pipe pool, 256 records/write" },
		      m_py1 = { "python map chunksize=1" },
		      m_py256 = { "python map chunksize=256" },
		      p_px50 = { "parex process" }, p_px99 = { "parex process" },
		      p_pt50 = { "parex thread (reference)" },
		      p_pt99 = { "parex thread (reference)" },
		      p_pipe50 = { "pipe round trip (fork+pipe)" },
		      p_pipe99 = { "pipe round trip (fork+pipe)" },
		      p_py50 = { "python ProcessPoolExecutor(2)" },
		      p_py99 = { "python ProcessPoolExecutor(2)" };

	/* Warm-up: start every worker, fault in the memory. */
	px_submit(proc, opt_tasks < 20000 ? opt_tasks : 20000, fs);
	px_submit(thr, opt_tasks < 20000 ? opt_tasks : 20000, fs);
	pipepool_run(&naive, 10000);
	pipepool_run(&batched, 100000);

	int py = 0;
#if defined(PX_BENCH_PYTHON) && defined(PX_BENCH_PY_SCRIPT)
	py = opt_python;
#endif
	if (!py)
		printf("python: skipped (%s)\n", opt_python ? "python3 not found at configure time"
							    : "--no-python");
	printf("bench_procpool: %d workers each, %d interleaved rounds, medians\n",
	       WORKERS, opt_rounds);
	for (int r = 0; r < opt_rounds; r++) {
		if (part('a'))
			add(&s_px, px_submit(proc, opt_tasks, fs));
		if (part('b')) {
			add(&m_px, px_map(proc, opt_map, 0, in, out));
			add(&m_pxs, px_map_stream(proc, opt_map));
			add(&m_px256, px_map(proc, opt_map, 256, in, out));
		}
		if (part('c')) {
			px_pingpong(proc, opt_pingpong, lat);
			pingpong_stats(lat, opt_pingpong, &p_px50, &p_px99);
		}

		if (part('a'))
			add(&s_pt, px_submit(thr, opt_tasks, fs));
		if (part('b')) {
			add(&m_pt, px_map(thr, opt_map, 0, in, out));
			add(&m_pts, px_map_stream(thr, opt_map));
		}
		if (part('c')) {
			px_pingpong(thr, opt_pingpong, lat);
			pingpong_stats(lat, opt_pingpong, &p_pt50, &p_pt99);
		}

		if (part('a'))
			add(&s_naive, pipepool_run(&naive, opt_tasks));
		if (part('b'))
			add(&m_batch, pipepool_run(&batched, opt_map));
		if (part('c')) {
			pipe_pingpong(&naive, opt_pingpong, lat);
			pingpong_stats(lat, opt_pingpong, &p_pipe50, &p_pipe99);
		}

#if defined(PX_BENCH_PYTHON) && defined(PX_BENCH_PY_SCRIPT)
		if (py && (part('a') || part('b') || part('c'))) {
			double v[5];
			if (py_round(v)) {
				printf("python: skipped: the script failed\n");
				py = 0;
			} else {
				add(&s_pys, v[0]);
				add(&m_py1, v[1]);
				add(&m_py256, v[2]);
				add(&p_py50, v[3]);
				add(&p_py99, v[4]);
			}
		}
#endif
		if (opt_sporadic) {
			run_sporadic(proc, &echo, fx, lat_sp, lat_pipe, lat_fx, span);
#if defined(PX_BENCH_PYTHON) && defined(PX_BENCH_PY_SCRIPT)
			if (py && py_sporadic()) {
				printf("python: sporadic mode skipped: the script failed\n");
				py = 0;
			}
#endif
		}
		emit(r, "pp.submit", "parex", &s_px, "M/s", 1e6);
		emit(r, "pp.submit", "parex_thread", &s_pt, "M/s", 1e6);
		emit(r, "pp.submit", "naive_pipe", &s_naive, "M/s", 1e6);
		emit(r, "pp.submit", "python", &s_pys, "M/s", 1e6);
		emit(r, "pp.map", "parex", &m_px, "M/s", 1e6);
		emit(r, "pp.map", "parex_chunk256", &m_px256, "M/s", 1e6);
		emit(r, "pp.map", "parex_thread", &m_pt, "M/s", 1e6);
		emit(r, "pp.map", "batched_pipe", &m_batch, "M/s", 1e6);
		emit(r, "pp.map_stream", "parex", &m_pxs, "M/s", 1e6);
		emit(r, "pp.map_stream", "parex_array_map", &m_px, "M/s", 1e6);
		emit(r, "pp.map", "python_chunk1", &m_py1, "M/s", 1e6);
		emit(r, "pp.map", "python_chunk256", &m_py256, "M/s", 1e6);
		emit(r, "pp.pingpong_p50", "parex", &p_px50, "us", 1);
		emit(r, "pp.pingpong_p99", "parex", &p_px99, "us", 1);
		emit(r, "pp.pingpong_p50", "parex_thread", &p_pt50, "us", 1);
		emit(r, "pp.pingpong_p99", "parex_thread", &p_pt99, "us", 1);
		emit(r, "pp.pingpong_p50", "pipe", &p_pipe50, "us", 1);
		emit(r, "pp.pingpong_p99", "pipe", &p_pipe99, "us", 1);
		emit(r, "pp.pingpong_p50", "python", &p_py50, "us", 1);
		emit(r, "pp.pingpong_p99", "python", &p_py99, "us", 1);
		fprintf(stderr, "round %d/%d done\n", r + 1, opt_rounds);
	}

	printf("\n(a) submit, a future per task: %zu tasks (python %zu)\n", opt_tasks,
	       opt_py_submit);
	row(&s_px, "M tasks/s", 1e6);
	row(&s_pt, "M tasks/s", 1e6);
	row(&s_naive, "M tasks/s", 1e6);
	row(&s_pys, "M tasks/s", 1e6);
	printf("\n(b) map: %zu records (python %zu with chunksize 1, %zu with 256)\n",
	       opt_map, opt_py_map1, opt_py_map256);
	row_spread(&m_px, "M records/s", 1e6);
	row_spread(&m_pxs, "M records/s", 1e6);
	row_spread(&m_px256, "M records/s", 1e6);
	row_spread(&m_pt, "M records/s", 1e6);
	row_spread(&m_pts, "M records/s", 1e6);
	row(&m_batch, "M records/s", 1e6);
	row(&m_py1, "M records/s", 1e6);
	row(&m_py256, "M records/s", 1e6);
	printf("\n(c) ping-pong: %zu round trips (python %zu)        p50 us       p99 us\n",
	       opt_pingpong, opt_py_pingpong);
	struct series *pp[][2] = { { &p_px50, &p_px99 }, { &p_pt50, &p_pt99 },
				   { &p_pipe50, &p_pipe99 }, { &p_py50, &p_py99 } };
	for (size_t i = 0; i < sizeof(pp) / sizeof(pp[0]); i++) {
		if (!pp[i][0]->n)
			printf("  %-40s %12s\n", pp[i][0]->name, "skipped");
		else
			printf("  %-40s %12.2f %12.2f\n", pp[i][0]->name,
			       median(pp[i][0]->v, pp[i][0]->n),
			       median(pp[i][1]->v, pp[i][1]->n));
	}

	if (opt_sporadic) {
		printf("\n(d) idle wake: one round trip after each gap, %zu per gap (python the "
		       "same, in its process)\n", opt_sporadic);
		printf("  %-40s %12s %12s %12s\n", "", "gap us", "p50 us", "p99 us");
		for (int g = 0; g < PX_BENCH_NGAPS; g++)
			for (int k = 0; k < SP_PEERS; k++) {
				if (!sp50[k][g].n)
					continue;
				printf("  %-40s %12d %12.2f %12.2f\n", sp_name[k],
				       px_bench_gap_us(g), median(sp50[k][g].v, sp50[k][g].n),
				       median(sp99[k][g].v, sp99[k][g].n));
			}
		printf("  diagnostics (not peers: no target)\n");
		for (int g = 0; g < PX_BENCH_NGAPS; g++)
			printf("  %-40s %12d %12.2f %12.2f\n", "bare futex hand-off",
			       px_bench_gap_us(g), median(fx50[g].v, fx50[g].n),
			       median(fx99[g].v, fx99[g].n));
		printf("  parex p50 split (us)       gap us    submit returns   task starts"
		       "   task -> result\n");
		for (int g = 0; g < PX_BENCH_NGAPS; g++)
			printf("  %-26s %6d %17.2f %13.2f %16.2f\n", "", px_bench_gap_us(g),
			       median(split50[SPL_SUBMIT][g].v, split50[SPL_SUBMIT][g].n),
			       median(split50[SPL_START][g].v, split50[SPL_START][g].n),
			       median(split50[SPL_BACK][g].v, split50[SPL_BACK][g].n));
	}

	printf("\nratios (medians of one interleaved run)\n");
	double px_s = median(s_px.v, s_px.n);
	ratio("submit: parex process / naive fork+pipe pool", px_s,
	      median(s_naive.v, s_naive.n), 3, ">=");
	ratio("submit: parex process / python submit", px_s,
	      s_pys.n ? median(s_pys.v, s_pys.n) : 0, 150, ">=");
	double px_m = median(m_px.v, m_px.n);
	ratio("map: parex process / batched fork+pipe pool", px_m,
	      median(m_batch.v, m_batch.n), 1, ">=");
	ratio("map: parex process / python map chunksize=256", px_m,
	      m_py256.n ? median(m_py256.v, m_py256.n) : 0, 1, ">=");
	ratio("map_stream / map: parex process", median(m_pxs.v, m_pxs.n), px_m,
	      0.8, ">=");
	ratio("map_stream / map: parex thread", median(m_pts.v, m_pts.n),
	      median(m_pt.v, m_pt.n), 0.8, ">=");
	ratio("ping-pong p50: parex process / pipe round trip",
	      median(p_px50.v, p_px50.n), median(p_pipe50.v, p_pipe50.n), 0.25,
	      "<=");

	for (int g = 0; opt_sporadic && g < PX_BENCH_NGAPS; g++) {
		char what[96];
		snprintf(what, sizeof(what), "idle wake %d us p50: parex / pipe round trip",
			 px_bench_gap_us(g));
		ratio(what, median(sp50[SP_PAREX][g].v, sp50[SP_PAREX][g].n),
		      median(sp50[SP_PIPE][g].v, sp50[SP_PIPE][g].n), 1, "<=");
		snprintf(what, sizeof(what), "idle wake %d us p99: parex / pipe round trip",
			 px_bench_gap_us(g));
		ratio(what, median(sp99[SP_PAREX][g].v, sp99[SP_PAREX][g].n),
		      median(sp99[SP_PIPE][g].v, sp99[SP_PIPE][g].n), 1, "<=");
	}

	px_executor_destroy(proc);
	px_executor_destroy(thr);
	pipepool_stop(&naive);
	pipepool_stop(&batched);
	if (opt_sporadic) {
		px_bench_echo_stop(&echo);
		fx_echo_stop(fx);
	}
	free(lat_sp);
	free(lat_pipe);
	free(lat_fx);
	for (int k = 0; k < SPL_N; k++)
		free(span[k]);
	free(fs);
	free(in);
	free(out);
	free(lat);
	return 0;
}
