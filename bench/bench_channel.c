/*
 * bench/bench_channel.c - completions per second through a px_channel
 * (an epoll loop draining batches) against a blocking px_wait loop over
 * the same futures.
 *
 * Run: build-dir/bench/bench_channel [--n N] [--rounds R] [--window W]
 *      [--batch B] [--backend SPEC]... [--no-io] [--quick]
 *
 * For each source of futures (each --backend, default thread:workers=2 and
 * process:workers=2, plus px_io_nop from one I/O context) both variants keep
 * W futures in flight (default 4096) and finish N (default 200,000), checking
 * every result:
 *   channel  each future is attached to a channel with its slot as the user
 *            pointer and released; the loop waits in epoll_wait on the
 *            channel's fd and takes up to B entries (default 256) per drain,
 *            refilling the window as entries arrive;
 *   px_wait  futures are kept in chunks of B; the loop waits on the oldest
 *            chunk with px_wait(PX_ALL_COMPLETED), checks and releases it
 *            and submits a new chunk (the best a blocking loop can do when
 *            futures finish about in order).
 * Rounds interleave the variants (channel, px_wait, channel, ...), so noise
 * on a shared machine hits both alike; the table gives the median with min
 * and max completions/s and the ratio channel/px_wait of the medians.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include <parex/parex.h>

#define MAXROUNDS 64
#define MAXSRC 8

static long opt_n = 200000;
static int opt_rounds = 7;
static long opt_window = 4096;
static int opt_batch = 256;

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "bench_channel: %s: %s\n", what, px_strerror(err));
	exit(1);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Sorts v and returns its median; min and max are then v[0], v[n-1]. */
static double median_sort(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int64_t mix(int64_t x)
{
	uint64_t v = (uint64_t)x * 0x9E3779B97F4A7C15u;
	return (int64_t)(v ^ (v >> 29));
}

static int task(px_task *t, const void *arg, size_t len)
{
	int64_t x;
	if (len != sizeof(x))
		return -EINVAL;
	memcpy(&x, arg, sizeof(x));
	int64_t y = mix(x);
	return px_task_return(t, &y, sizeof(y));
}

/* A source of futures: an executor running `task`, or io no-ops. */
struct source {
	char name[64];
	px_executor *ex;
	px_io *io;
	double rate[2][MAXROUNDS]; /* [0] channel, [1] px_wait */
};

static px_future *start(struct source *s, int64_t i)
{
	px_future *f;
	int r = s->ex ? px_executor_submit(s->ex, task, &i, sizeof(i), NULL, &f)
		      : px_io_nop(s->io, &f);
	if (r)
		die("submit", r);
	return f;
}

/* Whether f holds the right result for input i. */
static bool check(const struct source *s, px_future *f, int64_t i)
{
	int64_t y;
	if (px_future_get_i64(f, 0, &y))
		return false;
	return s->ex ? y == mix(i) : y == 0;
}

/* The channel variant; returns completions per second. */
static double run_channel(struct source *s)
{
	px_channel *ch;
	int r = px_channel_create(&ch);
	if (r)
		die("px_channel_create", r);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN };
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, px_channel_fd(ch), &ev))
		die("epoll", -errno);
	px_channel_event *batch = calloc((size_t)opt_batch, sizeof(*batch));
	if (!batch)
		die("calloc", -ENOMEM);
	long submitted = 0, done = 0, bad = 0;
	int64_t t0 = now_ns();
	for (; submitted < opt_n && submitted < opt_window; submitted++) {
		px_future *f = start(s, submitted);
		if ((r = px_channel_add(ch, f, (void *)(intptr_t)submitted)))
			die("px_channel_add", r);
		px_future_release(f);
	}
	while (done < opt_n) {
		struct epoll_event got;
		int k = epoll_wait(ep, &got, 1, 10000);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			die("epoll_wait", k < 0 ? -errno : -ETIMEDOUT);
		do {
			k = px_channel_drain(ch, batch, (size_t)opt_batch);
			if (k < 0)
				die("px_channel_drain", k);
			for (int i = 0; i < k; i++) {
				if (!check(s, batch[i].future,
					   (intptr_t)batch[i].user))
					bad++;
				px_future_release(batch[i].future);
			}
			done += k;
			for (; submitted < opt_n && submitted - done < opt_window;
			     submitted++) {
				px_future *f = start(s, submitted);
				if ((r = px_channel_add(ch, f,
							(void *)(intptr_t)submitted)))
					die("px_channel_add", r);
				px_future_release(f);
			}
		} while (k == opt_batch);
	}
	int64_t dt = now_ns() - t0;
	if (bad)
		die("channel: wrong results", -EIO);
	close(ep);
	free(batch);
	px_channel_close(ch);
	return (double)opt_n / ((double)dt / 1e9);
}

/* The blocking variant: a ring of chunks of opt_batch futures. */
static double run_wait(struct source *s)
{
	long nchunks = (opt_window + opt_batch - 1) / opt_batch;
	px_future **ring = calloc((size_t)(nchunks * opt_batch), sizeof(*ring));
	long *first = calloc((size_t)nchunks, sizeof(*first));
	int *len = calloc((size_t)nchunks, sizeof(*len));
	if (!ring || !first || !len)
		die("calloc", -ENOMEM);
	long submitted = 0, done = 0, bad = 0;
	long head = 0, tail = 0; /* chunks: [head, tail) in flight */
	int64_t t0 = now_ns();
	while (done < opt_n) {
		while (submitted < opt_n && tail - head < nchunks) {
			long c = tail % nchunks;
			first[c] = submitted;
			len[c] = 0;
			for (; len[c] < opt_batch && submitted < opt_n;
			     submitted++)
				ring[c * opt_batch + len[c]++] = start(s, submitted);
			tail++;
		}
		long c = head % nchunks;
		px_future **fs = &ring[c * opt_batch];
		int r = px_wait(fs, (size_t)len[c], PX_ALL_COMPLETED,
				PX_FOREVER, NULL);
		if (r < 0)
			die("px_wait", r);
		for (int i = 0; i < len[c]; i++) {
			if (!check(s, fs[i], first[c] + i))
				bad++;
			px_future_release(fs[i]);
		}
		done += len[c];
		head++;
	}
	int64_t dt = now_ns() - t0;
	if (bad)
		die("px_wait: wrong results", -EIO);
	free(ring);
	free(first);
	free(len);
	return (double)opt_n / ((double)dt / 1e9);
}

int main(int argc, char **argv)
{
	const char *specs[MAXSRC];
	int nspecs = 0;
	bool io = true;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--n") && i + 1 < argc)
			opt_n = atol(argv[++i]);
		else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
			opt_rounds = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--window") && i + 1 < argc)
			opt_window = atol(argv[++i]);
		else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
			opt_batch = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--backend") && i + 1 < argc &&
			 nspecs < MAXSRC - 1)
			specs[nspecs++] = argv[++i];
		else if (!strcmp(argv[i], "--no-io"))
			io = false;
		else if (!strcmp(argv[i], "--quick")) {
			opt_n = 20000;
			opt_rounds = 3;
		} else {
			fprintf(stderr,
				"usage: bench_channel [--n N] [--rounds R] "
				"[--window W] [--batch B] [--backend SPEC]... "
				"[--no-io] [--quick]\n");
			return 2;
		}
	}
	if (opt_n < 1 || opt_rounds < 1 || opt_rounds > MAXROUNDS ||
	    opt_window < 1 || opt_batch < 1) {
		fprintf(stderr, "bench_channel: bad --n, --rounds (1..%d), "
			"--window or --batch\n", MAXROUNDS);
		return 2;
	}
	if (!nspecs) {
		specs[nspecs++] = "thread:workers=2";
		specs[nspecs++] = "process:workers=2";
	}

	struct source src[MAXSRC];
	int nsrc = 0;
	memset(src, 0, sizeof(src));
	for (int i = 0; i < nspecs; i++) {
		char err[256];
		struct source *s = &src[nsrc];
		int r = px_executor_open(&s->ex, specs[i], err, sizeof(err));
		if (r == PX_ENOBACKEND) {
			printf("%s: backend not built in, skipped\n", specs[i]);
			continue;
		}
		if (r) {
			fprintf(stderr, "bench_channel: %s: %s\n", specs[i], err);
			return 1;
		}
		snprintf(s->name, sizeof(s->name), "tasks on %s", specs[i]);
		nsrc++;
	}
	if (io) {
		struct source *s = &src[nsrc];
		int r = px_io_create(&s->io, NULL);
		if (r)
			die("px_io_create", r);
		snprintf(s->name, sizeof(s->name), "px_io_nop (%s)",
			 px_io_backend_name(s->io));
		nsrc++;
	}

	for (int round = 0; round < opt_rounds; round++) {
		for (int i = 0; i < nsrc; i++) {
			src[i].rate[0][round] = run_channel(&src[i]);
			src[i].rate[1][round] = run_wait(&src[i]);
		}
		fprintf(stderr, "\r  round %d/%d", round + 1, opt_rounds);
	}
	fprintf(stderr, "\r               \r");

	printf("bench_channel: %ld completions per run, window %ld, batch %d, "
	       "%d rounds interleaved\n", opt_n, opt_window, opt_batch,
	       opt_rounds);
	printf("%-34s %-8s %12s %12s %12s %8s\n", "futures", "variant",
	       "median/s", "min/s", "max/s", "ratio");
	for (int i = 0; i < nsrc; i++) {
		double med[2];
		for (int v = 0; v < 2; v++)
			med[v] = median_sort(src[i].rate[v], opt_rounds);
		for (int v = 0; v < 2; v++)
			printf("%-34s %-8s %12.0f %12.0f %12.0f %8s\n",
			       v ? "" : src[i].name, v ? "px_wait" : "channel",
			       med[v], src[i].rate[v][0],
			       src[i].rate[v][opt_rounds - 1], v ? "" : "");
		printf("%-34s %-8s %12s %12s %12s %7.2fx%s\n", "", "ratio", "",
		       "", "", med[0] / med[1],
		       med[0] / med[1] >= 0.5 ? "" : "  (below the 0.5x target)");
	}
	for (int i = 0; i < nsrc; i++) {
		px_executor_destroy(src[i].ex);
		px_io_destroy(src[i].io);
	}
	return 0;
}
