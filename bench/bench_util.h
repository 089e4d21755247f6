/*
 * bench/bench_util.h - what the benchmarks share: the machine-readable
 * result lines bench/run_all.sh reads, and the sporadic (idle-wake) mode's
 * gaps, sleeps and fork+pipe peer.
 *
 * Result lines. Next to its human tables, a benchmark prints one line per
 * measure, peer and round:
 *
 *     RESULT <measure> <peer> <value> <unit>
 *
 * measure and peer are words without spaces (measure: "bench.what", e.g.
 * "tp.tiny_tasks"), value a number, unit a word ("tasks/s", "us", ...).
 * Lines of one measure and peer come in round order, so round k of parex
 * and round k of its peer ran side by side; bench/summarize.py takes the
 * median, min and max over rounds and the ratios of its target table.
 *
 * Sporadic mode. A request after a pause finds the workers parked: the
 * wake-up is the slowest path a request pays. The mode sleeps a gap
 * (px_bench_gap_us(i): 200 us, 1 ms, 5 ms), then times one request, and
 * alternates with the same request over a pipe to a forked process
 * blocked in read() (px_bench_echo_*), so both pay the same gaps in the
 * same run.
 */
#ifndef PX_BENCH_UTIL_H
#define PX_BENCH_UTIL_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PX_BENCH_NGAPS 3

/* The i-th sporadic gap in microseconds (0 <= i < PX_BENCH_NGAPS). */
static inline int px_bench_gap_us(int i)
{
	static const int gaps[PX_BENCH_NGAPS] = {200, 1000, 5000};

	return gaps[i];
}

static inline int64_t px_bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Sleeps us microseconds (in the kernel: the CPU is free meanwhile). */
static inline void px_bench_sleep_us(int us)
{
	struct timespec ts = {us / 1000000, (long)(us % 1000000) * 1000};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* One machine-readable result line (see the top of this file). */
static inline void px_bench_result(const char *measure, const char *peer,
				   double value, const char *unit)
{
	printf("RESULT %s %s %.6g %s\n", measure, peer, value, unit);
}

static inline int px_bench_cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* Sorts v[0..n) and returns its q-quantile (nearest rank); n > 0. */
static inline int64_t px_bench_quantile(int64_t *v, size_t n, double q)
{
	size_t i = (size_t)(q * (double)n);

	qsort(v, n, sizeof *v, px_bench_cmp_i64);
	return v[i < n ? i : n - 1];
}

/* The fork+pipe peer: a process that answers each int64 v with v + 1. */
struct px_bench_echo {
	pid_t pid;
	int req;  /* the parent writes requests */
	int resp; /* the parent reads answers */
};

/*
 * Forks the echo process. Call it before the program starts threads (the
 * child only reads, writes and exits, but a fork from one thread of many
 * is best avoided). Returns 0, or -1 with errno set.
 */
static inline int px_bench_echo_start(struct px_bench_echo *e)
{
	int a[2], b[2];

	if (pipe(a))
		return -1;
	if (pipe(b)) {
		close(a[0]);
		close(a[1]);
		return -1;
	}
	fflush(NULL);
	e->pid = fork();
	if (e->pid < 0)
		return -1;
	if (e->pid == 0) {
		int64_t v;

		/* Keep only its two ends: an inherited write end of another
		 * pipe would hide that pipe's EOF from its reader. */
		for (int fd = 3; fd < 1024; fd++)
			if (fd != a[0] && fd != b[1])
				close(fd);
		while (read(a[0], &v, sizeof v) == (ssize_t)sizeof v) {
			v++;
			if (write(b[1], &v, sizeof v) != (ssize_t)sizeof v)
				_exit(1);
		}
		_exit(0);
	}
	close(a[0]);
	close(b[1]);
	e->req = a[1];
	e->resp = b[0];
	return 0;
}

/* One round trip; returns its duration in ns, or -1 on a wrong answer or a
 * failed read or write. */
static inline int64_t px_bench_echo_rtt(struct px_bench_echo *e, int64_t v)
{
	int64_t out = -1, t0 = px_bench_now_ns();

	if (write(e->req, &v, sizeof v) != (ssize_t)sizeof v ||
	    read(e->resp, &out, sizeof out) != (ssize_t)sizeof out)
		return -1;
	int64_t t1 = px_bench_now_ns();
	return out == v + 1 ? t1 - t0 : -1;
}

/* Closes the pipes (the process sees EOF and exits) and reaps it. */
static inline void px_bench_echo_stop(struct px_bench_echo *e)
{
	close(e->req);
	close(e->resp);
	waitpid(e->pid, NULL, 0);
}

#endif
