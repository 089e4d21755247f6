/*
 * bench/bench_io.c - parex io against plain liburing, blocking threads and
 * sequential code, on the three I/O-bound workloads of issue 5.
 *
 * Run: build-dir/bench/bench_io [--reps N] [--parts abc] [--dir DIR]
 *      [--reads N] [--quick]
 *
 *   (a) 10,000 concurrent 20 ms sleeps: parex io (px_io_sleep in one batch,
 *       px_wait on all; and once more waiting on the last one first, see
 *       a_parex_last) against io_uring timeouts written directly with
 *       liburing; the parex thread pool (16 workers, a sleeping task each)
 *       runs once, on 1,600 sleeps, because 10,000 would take 12.5 s.
 *   (b) 200 request/response exchanges with a loopback server that answers
 *       20 ms after the request (px_io_responder on its own context in this
 *       process): parex io (px_io_request, all at once, from one thread),
 *       liburing (the same connect/send/recv/close state machine written
 *       directly), the parex thread pool with 16 workers doing blocking
 *       calls, and one exchange after another (sequential, 2 reps only:
 *       4 s each).
 *   (c) random 4 KiB reads at queue depth 32 from a 256 MiB file in the
 *       page cache (created in --dir, default /tmp, unlinked at once, so it
 *       never outlives the run): parex io (each completion's done callback
 *       starts the next read), parex io waiting on each batch of 32 from
 *       the main thread (px_wait), liburing (refill per completion), and
 *       pread() on 1 and 2 threads.
 *
 * Variants run interleaved, rep after rep, so noise on this shared machine
 * hits them alike; the tables show medians and the ratio to liburing, and
 * the last lines compare with the targets (parex within 1.15x of
 * liburing on (b) and (c) with callbacks, 1.3x on (c) with px_wait per
 * batch, 1.2x on (a) with a plain px_wait; issue 11 item 4), with each
 * ratio's spread: the lowest and highest of the per-rep ratios (rep i of
 * parex over rep i of liburing, run back to back). Each rep's times are also printed
 * as "RESULT measure peer ms ms" lines (bench/bench_util.h) for
 * bench/run_all.sh.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <parex/executor.h>
#include <parex/future.h>
#include <parex/io.h>

#include "netutil.h"

#include "bench_util.h"

#define MAXREPS 64

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(const double *v, int n)
{
	double s[MAXREPS];
	memcpy(s, v, (size_t)n * sizeof(*s));
	qsort(s, (size_t)n, sizeof(*s), cmp_double);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "bench_io: %s: %s\n", what, px_strerror(err));
	exit(1);
}

/* A variant: a name, a function returning elapsed ms (< 0: failed), and
 * its results. */
struct variant {
	const char *name;
	double (*run)(void);
	int reps;  /* 0: every rep */
	double ms[MAXREPS];
	int n;
};

static void run_interleaved(struct variant *v, int nv, int reps)
{
	for (int r = 0; r < reps; r++) {
		for (int i = 0; i < nv; i++) {
			if (v[i].reps && r >= v[i].reps)
				continue;
			double ms = v[i].run();
			if (ms < 0) {
				fprintf(stderr, "bench_io: %s failed\n", v[i].name);
				exit(1);
			}
			v[i].ms[v[i].n++] = ms;
		}
		fprintf(stderr, "\r  rep %d/%d", r + 1, reps);
	}
	fprintf(stderr, "\r              \r");
}

/* RESULT lines for every rep of every variant; peer[i] names v[i]. */
static void emit(const char *measure, const struct variant *v, int nv,
		 const char *const *peer)
{
	for (int i = 0; i < nv; i++)
		for (int k = 0; k < v[i].n; k++)
			px_bench_result(measure, peer[i], v[i].ms[k], "ms");
}

/* Prints a table: median ms, a rate (per unit: units/op count), ratio to
 * the reference variant (index ref). Returns the first variant's ratio. */
static double print_table(const char *title, struct variant *v, int nv, int ref,
			  double units, const char *unit_name)
{
	printf("\n%s\n", title);
	printf("  %-36s %10s %14s %10s %5s\n", "variant", "median ms",
	       unit_name, "vs uring", "reps");
	double refm = median(v[ref].ms, v[ref].n);
	double first = 0;
	for (int i = 0; i < nv; i++) {
		double m = median(v[i].ms, v[i].n);
		double ratio = m / refm;
		if (i == 0)
			first = ratio;
		printf("  %-36s %10.1f %14.0f %9.2fx %5d\n", v[i].name, m,
		       units / (m / 1000.0), ratio, v[i].n);
	}
	return first;
}

/* The lowest and highest ratio of a's rep i to b's rep i (b runs right
 * after or before a in the same rep). */
static void rep_ratios(const struct variant *a, const struct variant *b,
		       double *lo, double *hi)
{
	int n = a->n < b->n ? a->n : b->n;
	*lo = *hi = 0;
	for (int i = 0; i < n; i++) {
		double r = a->ms[i] / b->ms[i];
		if (i == 0 || r < *lo)
			*lo = r;
		if (i == 0 || r > *hi)
			*hi = r;
	}
}

static px_executor *pool16(void)
{
	static px_executor *ex;
	if (!ex) {
		char err[256];
		int r = px_executor_open(&ex, "thread:workers=16,gil=0", err,
					 sizeof(err));
		if (r) {
			fprintf(stderr, "bench_io: thread pool: %s\n", err);
			exit(1);
		}
	}
	return ex;
}

/* (a) 10,000 sleeps ---------------------------------------------------------- */

#define A_N 10000
#define A_NS (20 * 1000000LL)
#define A_POOL_N 1600

static px_io *io_main;

static double a_parex(void)
{
	static px_future *fs[A_N];
	int64_t t0 = now_ns();
	px_io_batch_begin(io_main);
	for (int i = 0; i < A_N; i++)
		if (px_io_sleep(io_main, A_NS, &fs[i]))
			return -1;
	px_io_batch_end(io_main);
	if (px_wait(fs, A_N, PX_ALL_COMPLETED, PX_FOREVER, NULL) != A_N)
		return -1;
	double ms = (double)(now_ns() - t0) / 1e6;
	for (int i = 0; i < A_N; i++) {
		if (px_future_error(fs[i]))
			return -1;
		px_future_release(fs[i]);
	}
	return ms;
}

/*
 * The same, but waiting on the last sleep before px_wait(). px_wait's
 * ALL_COMPLETED now waits on the last future first itself, so this row
 * should match the one above; it stays as the control that shows a plain
 * px_wait pays nothing for the order it waits in.
 */
static double a_parex_last(void)
{
	static px_future *fs[A_N];
	int64_t t0 = now_ns();
	px_io_batch_begin(io_main);
	for (int i = 0; i < A_N; i++)
		if (px_io_sleep(io_main, A_NS, &fs[i]))
			return -1;
	px_io_batch_end(io_main);
	px_future_wait(fs[A_N - 1], PX_FOREVER);
	if (px_wait(fs, A_N, PX_ALL_COMPLETED, PX_FOREVER, NULL) != A_N)
		return -1;
	double ms = (double)(now_ns() - t0) / 1e6;
	for (int i = 0; i < A_N; i++) {
		if (px_future_error(fs[i]))
			return -1;
		px_future_release(fs[i]);
	}
	return ms;
}

static struct io_uring lring;

static double a_uring(void)
{
	static struct __kernel_timespec ts = { 0, A_NS };
	int64_t t0 = now_ns();
	for (int i = 0; i < A_N; i++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&lring);
		if (!sqe) {
			io_uring_submit(&lring);
			sqe = io_uring_get_sqe(&lring);
		}
		io_uring_prep_timeout(sqe, &ts, 0, 0);
		sqe->user_data = (uint64_t)i;
	}
	io_uring_submit(&lring);
	int done = 0;
	while (done < A_N) {
		struct io_uring_cqe *cqe;
		if (io_uring_wait_cqe(&lring, &cqe))
			return -1;
		unsigned head, n = 0;
		io_uring_for_each_cqe(&lring, head, cqe) {
			if (cqe->res != -ETIME)
				return -1;
			n++;
		}
		io_uring_cq_advance(&lring, n);
		done += (int)n;
	}
	return (double)(now_ns() - t0) / 1e6;
}

static int task_sleep(px_task *t, const void *arg, size_t len)
{
	(void)arg;
	(void)len;
	return px_task_sleep(t, A_NS);
}

static double a_pool(void)
{
	static px_future *fs[A_POOL_N];
	px_executor *ex = pool16();
	int64_t t0 = now_ns();
	for (int i = 0; i < A_POOL_N; i++)
		if (px_executor_submit(ex, task_sleep, NULL, 0, NULL, &fs[i]))
			return -1;
	if (px_wait(fs, A_POOL_N, PX_ALL_COMPLETED, PX_FOREVER, NULL) != A_POOL_N)
		return -1;
	double ms = (double)(now_ns() - t0) / 1e6;
	for (int i = 0; i < A_POOL_N; i++)
		px_future_release(fs[i]);
	return ms;
}

/* (b) request/response ---------------------------------------------------------- */

#define B_N 200
static const char B_REQ[] = "GET /slow HTTP/1.0\r\nHost: loopback\r\n\r\n";
static const char B_REPLY[] =
	"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n"
	"\r\nhello world\n";
static struct sockaddr_in b_addr;
static char b_bufs[B_N][256];

static bool b_check(const char *buf, int64_t n)
{
	return n == (int64_t)sizeof(B_REPLY) - 1 && !memcmp(buf, B_REPLY, (size_t)n);
}

static double b_parex(void)
{
	static px_future *fs[B_N];
	int64_t t0 = now_ns();
	px_io_batch_begin(io_main);
	for (int i = 0; i < B_N; i++)
		if (px_io_request(io_main, (struct sockaddr *)&b_addr, sizeof(b_addr),
				  B_REQ, sizeof(B_REQ) - 1, b_bufs[i],
				  sizeof(b_bufs[i]), NULL, &fs[i]))
			return -1;
	px_io_batch_end(io_main);
	if (px_wait(fs, B_N, PX_ALL_COMPLETED, PX_FOREVER, NULL) != B_N)
		return -1;
	double ms = (double)(now_ns() - t0) / 1e6;
	for (int i = 0; i < B_N; i++) {
		int64_t n;
		if (px_future_get_i64(fs[i], 0, &n) || !b_check(b_bufs[i], n))
			return -1;
		px_future_release(fs[i]);
	}
	return ms;
}

enum { ST_CONNECT, ST_SEND, ST_RECV };
struct lconn {
	int fd, stage;
	size_t sent, got;
};

static double b_uring(void)
{
	static struct lconn c[B_N];
	int64_t t0 = now_ns();
	for (int i = 0; i < B_N; i++) {
		c[i] = (struct lconn){ socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0),
				       ST_CONNECT, 0, 0 };
		struct io_uring_sqe *sqe = io_uring_get_sqe(&lring);
		io_uring_prep_connect(sqe, c[i].fd, (struct sockaddr *)&b_addr,
				      sizeof(b_addr));
		sqe->user_data = (uint64_t)i;
	}
	io_uring_submit(&lring);
	int done = 0;
	bool ok = true;
	while (done < B_N) {
		struct io_uring_cqe *cqe;
		if (io_uring_wait_cqe(&lring, &cqe))
			return -1;
		unsigned head, n = 0;
		io_uring_for_each_cqe(&lring, head, cqe) {
			n++;
			struct lconn *k = &c[cqe->user_data];
			int res = cqe->res;
			struct io_uring_sqe *sqe = NULL;
			if (res < 0) {
				ok = false;
				close(k->fd);
				done++;
				continue;
			}
			if (k->stage == ST_SEND)
				k->sent += (size_t)res;
			else if (k->stage == ST_RECV) {
				if (res == 0) {
					close(k->fd);
					ok = ok && b_check(b_bufs[k - c], (int64_t)k->got);
					done++;
					continue;
				}
				k->got += (size_t)res;
			}
			sqe = io_uring_get_sqe(&lring);
			if (k->stage == ST_CONNECT ||
			    (k->stage == ST_SEND && k->sent < sizeof(B_REQ) - 1)) {
				k->stage = ST_SEND;
				io_uring_prep_send(sqe, k->fd, B_REQ + k->sent,
						   sizeof(B_REQ) - 1 - k->sent,
						   MSG_NOSIGNAL);
			} else {
				k->stage = ST_RECV;
				io_uring_prep_recv(sqe, k->fd, b_bufs[k - c] + k->got,
						   sizeof(b_bufs[0]) - k->got, 0);
			}
			sqe->user_data = (uint64_t)(k - c);
		}
		io_uring_cq_advance(&lring, n);
		io_uring_submit(&lring);
	}
	return ok ? (double)(now_ns() - t0) / 1e6 : -1;
}

/* One blocking exchange; returns reply bytes or -errno. */
static int64_t b_blocking(char *buf, size_t cap)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int64_t r = 0;
	if (connect(fd, (struct sockaddr *)&b_addr, sizeof(b_addr)) ||
	    send(fd, B_REQ, sizeof(B_REQ) - 1, MSG_NOSIGNAL) !=
		    (ssize_t)sizeof(B_REQ) - 1) {
		r = -errno;
	} else {
		ssize_t n;
		while ((n = recv(fd, buf + r, cap - (size_t)r, 0)) > 0)
			r += n;
		if (n < 0)
			r = -errno;
	}
	close(fd);
	return r;
}

static int task_exchange(px_task *t, const void *arg, size_t len)
{
	(void)len;
	int i = *(const int *)arg;
	px_task_blocking_begin(t);
	int64_t n = b_blocking(b_bufs[i], sizeof(b_bufs[i]));
	px_task_blocking_end(t);
	if (n < 0)
		return (int)n;
	return px_task_return(t, &n, sizeof(n));
}

static double b_pool(void)
{
	static px_future *fs[B_N];
	px_executor *ex = pool16();
	int64_t t0 = now_ns();
	for (int i = 0; i < B_N; i++)
		if (px_executor_submit(ex, task_exchange, &i, sizeof(i), NULL, &fs[i]))
			return -1;
	if (px_wait(fs, B_N, PX_ALL_COMPLETED, PX_FOREVER, NULL) != B_N)
		return -1;
	double ms = (double)(now_ns() - t0) / 1e6;
	for (int i = 0; i < B_N; i++) {
		int64_t n;
		if (px_future_get_i64(fs[i], 0, &n) || !b_check(b_bufs[i], n))
			return -1;
		px_future_release(fs[i]);
	}
	return ms;
}

static double b_sequential(void)
{
	int64_t t0 = now_ns();
	for (int i = 0; i < B_N; i++)
		if (!b_check(b_bufs[i], b_blocking(b_bufs[i], sizeof(b_bufs[i]))))
			return -1;
	return (double)(now_ns() - t0) / 1e6;
}

/* (c) random reads ------------------------------------------------------------ */

#define C_FILE (256u << 20)
#define C_BS 4096
#define C_QD 32

static int c_fd;
static int c_n = 200000;
static uint64_t *c_off;
static char (*c_buf)[C_BS]; /* C_QD buffers, page aligned */

struct c_state {
	_Atomic int issued, done, errors;
	px_future *finished;
};
static struct c_state cs;

static void c_cb(px_future *f, void *arg)
{
	int slot = (int)(intptr_t)arg;
	if (px_future_error(f))
		atomic_fetch_add_explicit(&cs.errors, 1, memory_order_relaxed);
	px_future_release(f);
	int i = atomic_fetch_add_explicit(&cs.issued, 1, memory_order_relaxed);
	if (i < c_n) {
		px_future *nf;
		if (px_io_read(io_main, c_fd, c_buf[slot], C_BS, (int64_t)c_off[i],
			       NULL, &nf) ||
		    px_future_on_done(nf, c_cb, arg))
			atomic_fetch_add_explicit(&cs.errors, 1,
						  memory_order_relaxed);
	}
	if (atomic_fetch_add_explicit(&cs.done, 1, memory_order_acq_rel) + 1 == c_n)
		px_promise_set_i64(cs.finished, 0);
}

static double c_parex(void)
{
	atomic_store(&cs.issued, C_QD);
	atomic_store(&cs.done, 0);
	atomic_store(&cs.errors, 0);
	px_promise_create(&cs.finished);
	int64_t t0 = now_ns();
	px_io_batch_begin(io_main);
	for (int s = 0; s < C_QD; s++) {
		px_future *f;
		if (px_io_read(io_main, c_fd, c_buf[s], C_BS, (int64_t)c_off[s], NULL,
			       &f) ||
		    px_future_on_done(f, c_cb, (void *)(intptr_t)s))
			return -1;
	}
	px_io_batch_end(io_main);
	px_future_wait(cs.finished, PX_FOREVER);
	double ms = (double)(now_ns() - t0) / 1e6;
	px_future_release(cs.finished);
	return atomic_load(&cs.errors) ? -1 : ms;
}

static double c_parex_wait(void)
{
	px_future *fs[C_QD];
	int64_t t0 = now_ns();
	for (int i = 0; i < c_n; i += C_QD) {
		int k = c_n - i < C_QD ? c_n - i : C_QD;
		px_io_batch_begin(io_main);
		for (int s = 0; s < k; s++)
			if (px_io_read(io_main, c_fd, c_buf[s], C_BS,
				       (int64_t)c_off[i + s], NULL, &fs[s]))
				return -1;
		px_io_batch_end(io_main);
		if (px_wait(fs, (size_t)k, PX_ALL_COMPLETED, PX_FOREVER, NULL) != k)
			return -1;
		for (int s = 0; s < k; s++) {
			if (px_future_error(fs[s]))
				return -1;
			px_future_release(fs[s]);
		}
	}
	return (double)(now_ns() - t0) / 1e6;
}

static double c_uring(void)
{
	int64_t t0 = now_ns();
	int issued = 0, done = 0;
	for (int s = 0; s < C_QD; s++, issued++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&lring);
		io_uring_prep_read(sqe, c_fd, c_buf[s], C_BS, c_off[issued]);
		sqe->user_data = (uint64_t)s;
	}
	io_uring_submit(&lring);
	while (done < c_n) {
		struct io_uring_cqe *cqe;
		if (io_uring_wait_cqe(&lring, &cqe))
			return -1;
		unsigned head, n = 0;
		io_uring_for_each_cqe(&lring, head, cqe) {
			n++;
			if (cqe->res != C_BS)
				return -1;
			if (issued < c_n) {
				struct io_uring_sqe *sqe = io_uring_get_sqe(&lring);
				io_uring_prep_read(sqe, c_fd, c_buf[cqe->user_data],
						   C_BS, c_off[issued++]);
				sqe->user_data = cqe->user_data;
			}
		}
		io_uring_cq_advance(&lring, n);
		done += (int)n;
		io_uring_submit(&lring);
	}
	return (double)(now_ns() - t0) / 1e6;
}

struct c_range {
	int from, to;
	int bad;
};

static void *c_pread_thread(void *p)
{
	struct c_range *r = p;
	char buf[C_BS] __attribute__((aligned(4096)));
	for (int i = r->from; i < r->to; i++)
		if (pread(c_fd, buf, C_BS, (off_t)c_off[i]) != C_BS)
			r->bad++;
	return NULL;
}

static double c_pread(int threads)
{
	pthread_t th[2];
	struct c_range r[2];
	int64_t t0 = now_ns();
	for (int t = 0; t < threads; t++) {
		r[t] = (struct c_range){ c_n * t / threads, c_n * (t + 1) / threads, 0 };
		pthread_create(&th[t], NULL, c_pread_thread, &r[t]);
	}
	int bad = 0;
	for (int t = 0; t < threads; t++) {
		pthread_join(th[t], NULL);
		bad += r[t].bad;
	}
	return bad ? -1 : (double)(now_ns() - t0) / 1e6;
}

static double c_pread1(void)
{
	return c_pread(1);
}

static double c_pread2(void)
{
	return c_pread(2);
}

static void c_setup(const char *dir)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/bench_io_XXXXXX", dir);
	c_fd = mkstemp(path);
	if (c_fd < 0)
		die("mkstemp", -errno);
	/* Unlinked at once: the file goes away with the process, whatever
	 * happens to it. */
	unlink(path);
	char *chunk = malloc(1 << 20);
	for (size_t i = 0; i < (1 << 20); i++)
		chunk[i] = (char)(i * 131);
	for (unsigned i = 0; i < C_FILE >> 20; i++)
		if (write(c_fd, chunk, 1 << 20) != 1 << 20)
			die("write", -errno);
	free(chunk);
	/* Read it all once, so every page is cached. */
	char *buf = malloc(1 << 20);
	for (unsigned i = 0; i < C_FILE >> 20; i++)
		if (pread(c_fd, buf, 1 << 20, (off_t)i << 20) != 1 << 20)
			die("pread", -errno);
	free(buf);
	c_off = malloc((size_t)c_n * sizeof(*c_off));
	uint64_t x = 88172645463325252ull;
	for (int i = 0; i < c_n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		c_off[i] = (x % (C_FILE / C_BS)) * C_BS;
	}
	c_buf = aligned_alloc(4096, C_QD * C_BS);
}

/* main ---------------------------------------------------------------------- */

int main(int argc, char **argv)
{
	int reps = 7;
	const char *parts = "abc", *dir = "/tmp";
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--reps") && i + 1 < argc)
			reps = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--parts") && i + 1 < argc)
			parts = argv[++i];
		else if (!strcmp(argv[i], "--dir") && i + 1 < argc)
			dir = argv[++i];
		else if (!strcmp(argv[i], "--reads") && i + 1 < argc)
			c_n = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--quick"))
			reps = 3, c_n = 50000;
		else {
			fprintf(stderr,
				"usage: bench_io [--reps N] [--parts abc] [--dir DIR] "
				"[--reads N] [--quick]\n");
			return 2;
		}
	}
	if (reps < 1 || reps > MAXREPS || c_n < C_QD) {
		fprintf(stderr, "bench_io: bad --reps or --reads\n");
		return 2;
	}
	px_io_config cfg = { .backend = PX_IO_URING };
	int r = px_io_create(&io_main, &cfg);
	if (r)
		die("px_io_create (io_uring)", r);
	struct io_uring_params p = { .flags = IORING_SETUP_CQSIZE,
				     .cq_entries = 16384 };
	r = io_uring_queue_init_params(4096, &lring, &p);
	if (r)
		die("io_uring_queue_init", r);
	printf("bench_io: parex io (%s backend) vs liburing, threads, "
	       "sequential; %d interleaved reps, medians\n",
	       px_io_backend_name(io_main), reps);

	double ra = 0, rb = 0, rc = 0, rcw = 0;
	double ra_lo = 0, ra_hi = 0, rc_lo = 0, rc_hi = 0, rcw_lo = 0, rcw_hi = 0;
	if (strchr(parts, 'a')) {
		struct variant v[] = {
			{ "parex io: 10,000 px_io_sleep", a_parex, 0, { 0 }, 0 },
			{ "liburing: 10,000 timeouts", a_uring, 0, { 0 }, 0 },
			{ "parex io: wait last, then px_wait", a_parex_last, 0,
			  { 0 }, 0 },
			{ "thread pool (16): 1,600 sleeps", a_pool, 1, { 0 }, 0 },
		};
		run_interleaved(v, 4, reps);
		emit("io.sleeps_10k", v, 4,
		     (const char *const[]){ "parex", "liburing", "parex_wait_last",
					    "pool16_1600" });
		ra = print_table("(a) 10,000 sleeps of 20 ms, all at once", v, 3,
				 1, A_N, "sleeps/s");
		rep_ratios(&v[0], &v[1], &ra_lo, &ra_hi);
		double pm = median(v[3].ms, v[3].n);
		printf("  %-36s %10.1f %14.0f   (1,600 sleeps, once; 10,000 "
		       "would take ~%.0f ms)\n",
		       v[3].name, pm, A_POOL_N / (pm / 1000.0),
		       pm * A_N / A_POOL_N);
	}
	if (strchr(parts, 'b')) {
		px_io *srv_io;
		int ls;
		uint16_t port;
		if ((r = px_io_create(&srv_io, &cfg)))
			die("server context", r);
		if ((r = px_io_tcp_listen(NULL, 0, 4096, &ls, &port)))
			die("listen", r);
		px_io_responder_config rc_cfg = {
			.reply = B_REPLY, .reply_len = sizeof(B_REPLY) - 1,
			.delay_ns = 20 * PX_MSEC, .request_end = "\r\n\r\n"
		};
		px_io_responder *srv;
		if ((r = px_io_responder_start(&srv, srv_io, ls, &rc_cfg)))
			die("responder", r);
		b_addr = (struct sockaddr_in){ .sin_family = AF_INET,
					       .sin_port = htons(port) };
		inet_pton(AF_INET, "127.0.0.1", &b_addr.sin_addr);
		struct variant v[] = {
			{ "parex io: px_io_request x200", b_parex, 0, { 0 }, 0 },
			{ "liburing: state machine x200", b_uring, 0, { 0 }, 0 },
			{ "thread pool (16): blocking x200", b_pool, 0, { 0 }, 0 },
			{ "sequential: blocking x200", b_sequential, 2, { 0 }, 0 },
		};
		run_interleaved(v, 4, reps);
		emit("io.exchanges_200", v, 4,
		     (const char *const[]){ "parex", "liburing", "pool16", "sequential" });
		rb = print_table("(b) 200 exchanges, server answers after 20 ms", v,
				 4, 1, B_N, "exchanges/s");
		px_io_responder_stats st;
		px_io_responder_stats_get(srv, &st);
		printf("  server: %llu replies, at most %llu connections open at "
		       "once\n",
		       (unsigned long long)st.replied, (unsigned long long)st.peak);
		px_io_responder_stop(srv);
		close(ls);
		px_io_destroy(srv_io);
	}
	if (strchr(parts, 'c')) {
		c_setup(dir);
		struct variant v[] = {
			{ "parex io: callbacks refill, QD32", c_parex, 0, { 0 }, 0 },
			{ "parex io: px_wait per batch of 32", c_parex_wait, 0, { 0 }, 0 },
			{ "liburing: refill per CQE, QD32", c_uring, 0, { 0 }, 0 },
			{ "pread, 1 thread", c_pread1, 0, { 0 }, 0 },
			{ "pread, 2 threads", c_pread2, 0, { 0 }, 0 },
		};
		run_interleaved(v, 5, reps);
		emit("io.reads_qd32", v, 5,
		     (const char *const[]){ "parex_callbacks", "parex_wait32", "liburing",
					    "pread1", "pread2" });
		char title[128];
		snprintf(title, sizeof(title),
			 "(c) %d random 4 KiB reads, 256 MiB cached file", c_n);
		rc = print_table(title, v, 5, 2, c_n, "IO/s");
		rcw = median(v[1].ms, v[1].n) / median(v[2].ms, v[2].n);
		rep_ratios(&v[0], &v[2], &rc_lo, &rc_hi);
		rep_ratios(&v[1], &v[2], &rcw_lo, &rcw_hi);
		close(c_fd);
	}

	printf("\ntargets (parex io / liburing, medians of this run):\n");
	if (ra)
		printf("  (a) px_wait(ALL)      %.2fx  (per rep %.2f..%.2f)  "
		       "(target <= 1.20x)  %s\n",
		       ra, ra_lo, ra_hi, ra <= 1.20 ? "met" : "MISSED");
	if (rb)
		printf("  (b) %.2fx  (target <= 1.15x)  %s\n", rb,
		       rb <= 1.15 ? "met" : "MISSED");
	if (rc)
		printf("  (c) callbacks refill  %.2fx  (per rep %.2f..%.2f)  "
		       "(target <= 1.15x)  %s\n",
		       rc, rc_lo, rc_hi, rc <= 1.15 ? "met" : "MISSED");
	if (rcw)
		printf("  (c) px_wait per 32    %.2fx  (per rep %.2f..%.2f)  "
		       "(target <= 1.30x)  %s\n",
		       rcw, rcw_lo, rcw_hi, rcw <= 1.30 ? "met" : "MISSED");
	io_uring_queue_exit(&lring);
	px_io_destroy(io_main);
	return 0;
}
