/*
 * bench/bench_mpi.c - parex's mpi backend against a hand-written MPI
 * master/worker loop, under the same launcher.
 *
 * Run (each line is one MPI job: parex makes a program's MPI calls itself,
 * so the peers cannot share one):
 *   mpirun -n 3 build/bench/bench_mpi --peer raw --out raw.txt
 *   mpirun -n 3 python3 bench/bench_mpi_py.py --out mpi4py.txt
 *   mpirun -n 3 build/bench/bench_mpi --peer parex --compare raw.txt \
 *       --compare-mpi4py mpi4py.txt
 * Options: --tasks N (submit), --map N (records), --pingpong N; give the
 * three jobs the same sizes. --local process|thread: the serving ranks'
 * pools (default process, crash-isolated). bench_mpi_py.py is mpi4py.futures'
 * MPICommExecutor (Debian python3-mpi4py; without it, it writes no file and
 * its target is reported as not judged).
 *
 * Rank 0 submits; ranks 1..N-1 compute. The task is "return x + 1" on an
 * int64.
 *   (a) submit: --tasks tasks, each its own future (parex, workers_per_rank=1)
 *       or its own MPI message pair (raw: at most 16 in flight per worker
 *       rank, sent to whichever rank answered); tasks/s, the sum checked.
 *   (b) map: --map records through px_executor_map, or (raw) batches of 256
 *       records per message, each carrying its offset, with the results
 *       stored into a fresh array as the map stores them; records/s.
 *   (c) ping-pong: one task to a worker and its result back, --pingpong
 *       times; p50 and p99 in microseconds.
 * Each job prints `name value` lines; --compare FILE (the raw loop's) and
 * --compare-mpi4py FILE read other runs' lines and print parex/peer ratios,
 * then the targets, met or MISSED: submit >= 20x mpi4py.futures, map >=
 * 0.8x the raw loop, round trip (p50, p99) <= 2x the raw loop's.
 */
#include <errno.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <parex/executor.h>

#define RAW_WINDOW 16
#define RAW_BATCH 256
#define TAG_TASK 1
#define TAG_STOP 2

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

struct results {
	double submit_per_s, map_per_s, p50_us, p99_us;
};

static void percentiles(int64_t *lat, long n, struct results *r)
{
	qsort(lat, (size_t)n, sizeof(*lat), cmp_i64);
	r->p50_us = (double)lat[n / 2] / 1e3;
	r->p99_us = (double)lat[(n * 99) / 100] / 1e3;
}

/* ---- parex ---------------------------------------------------------------- */

static int plus_one(px_task *t, const void *arg, size_t len)
{
	int64_t x;
	if (len != sizeof(x))
		return -EINVAL;
	memcpy(&x, arg, sizeof(x));
	x++;
	return px_task_return(t, &x, sizeof(x));
}

static int run_parex(long tasks, long map_n, long pp, const char *local,
		     struct results *r)
{
	px_executor *ex;
	char err[256], spec[64];
	snprintf(spec, sizeof(spec), "mpi:workers_per_rank=1,local=%s", local);
	int e = px_executor_open(&ex, spec, err, sizeof(err));
	if (e) {
		fprintf(stderr, "bench_mpi: %s\n", err);
		return 1;
	}
	/* Ranks >= 1 never get here. */
	px_future **fs = malloc((size_t)tasks * sizeof(*fs));
	int64_t *in = malloc((size_t)map_n * sizeof(*in));
	int64_t *out = malloc((size_t)map_n * sizeof(*out));
	int64_t *lat = malloc((size_t)pp * sizeof(*lat));
	if (!fs || !in || !out || !lat)
		return 1;
	int64_t t0 = now_ns(), sum = 0;
	for (long i = 0; i < tasks; i++) {
		int64_t x = i;
		if (px_executor_submit(ex, plus_one, &x, sizeof(x), NULL, &fs[i]))
			return 1;
	}
	for (long i = 0; i < tasks; i++) {
		int64_t y;
		if (px_future_get_i64(fs[i], PX_FOREVER, &y))
			return 1;
		sum += y;
		px_future_release(fs[i]);
	}
	r->submit_per_s = (double)tasks / ((double)(now_ns() - t0) / 1e9);
	if (sum != (int64_t)tasks * (tasks + 1) / 2) {
		fprintf(stderr, "bench_mpi: parex submit: wrong sum\n");
		return 1;
	}
	for (long i = 0; i < map_n; i++)
		in[i] = i;
	t0 = now_ns();
	if (px_executor_map(ex, plus_one, in, sizeof(*in), (size_t)map_n, out,
			    sizeof(*out), NULL))
		return 1;
	r->map_per_s = (double)map_n / ((double)(now_ns() - t0) / 1e9);
	for (long i = 0; i < map_n; i++)
		if (out[i] != i + 1)
			return 1;
	for (long i = 0; i < pp; i++) {
		int64_t x = i, y;
		px_future *f;
		int64_t s = now_ns();
		if (px_executor_submit(ex, plus_one, &x, sizeof(x), NULL, &f) ||
		    px_future_get_i64(f, PX_FOREVER, &y) || y != i + 1)
			return 1;
		lat[i] = now_ns() - s;
		px_future_release(f);
	}
	percentiles(lat, pp, r);
	px_executor_destroy(ex);
	free(fs);
	free(in);
	free(out);
	free(lat);
	return 0;
}

/* ---- hand-written MPI master/worker -------------------------------------- */

static void raw_worker(void)
{
	/* [0]: the records' offset, echoed back; [1..n]: the records. */
	int64_t buf[RAW_BATCH + 1];
	for (;;) {
		MPI_Status st;
		MPI_Recv(buf, RAW_BATCH + 1, MPI_INT64_T, 0, MPI_ANY_TAG,
			 MPI_COMM_WORLD, &st);
		if (st.MPI_TAG == TAG_STOP)
			return;
		int n;
		MPI_Get_count(&st, MPI_INT64_T, &n);
		for (int i = 1; i < n; i++)
			buf[i]++;
		MPI_Send(buf, n, MPI_INT64_T, 0, TAG_TASK, MPI_COMM_WORLD);
	}
}

/* Fills buf with the next message: the offset, then up to per records
 * (in[i], or i itself when in is NULL). Returns the message's length. */
static int raw_fill(int64_t *buf, const int64_t *in, long *next, long records,
		    int per)
{
	int n = 0;
	buf[0] = *next;
	for (; n < per && *next < records; n++, (*next)++)
		buf[1 + n] = in ? in[*next] : *next;
	return n + 1;
}

/*
 * records through the workers in messages of `per` records (the last
 * shorter), at most RAW_WINDOW in flight per worker, as a hand-written map
 * would: each message carries its records' offset, and the results are
 * stored at it in out (as px_executor_map stores them), or summed when out
 * is NULL. Returns the sum of the results stored or summed.
 */
static int64_t raw_stream(long records, int per, int size, const int64_t *in,
			  int64_t *out)
{
	int64_t buf[RAW_BATCH + 1], sum = 0;
	long next = 0, sent = 0, done = 0;
	long msgs = (records + per - 1) / per;
	for (int w = 1; w < size; w++)
		for (int k = 0; k < RAW_WINDOW && sent < msgs; k++, sent++) {
			int n = raw_fill(buf, in, &next, records, per);
			MPI_Send(buf, n, MPI_INT64_T, w, TAG_TASK, MPI_COMM_WORLD);
		}
	while (done < msgs) {
		MPI_Status st;
		MPI_Recv(buf, RAW_BATCH + 1, MPI_INT64_T, MPI_ANY_SOURCE, TAG_TASK,
			 MPI_COMM_WORLD, &st);
		int n;
		MPI_Get_count(&st, MPI_INT64_T, &n);
		if (out)
			memcpy(out + buf[0], buf + 1, (size_t)(n - 1) * sizeof(*buf));
		else
			for (int i = 1; i < n; i++)
				sum += buf[i];
		done++;
		if (sent < msgs) {
			int k = raw_fill(buf, in, &next, records, per);
			MPI_Send(buf, k, MPI_INT64_T, st.MPI_SOURCE, TAG_TASK,
				 MPI_COMM_WORLD);
			sent++;
		}
	}
	if (out)
		for (long i = 0; i < records; i++)
			sum += out[i];
	return sum;
}

static int run_raw(long tasks, long map_n, long pp, struct results *r)
{
	MPI_Init(NULL, NULL);
	int rank, size;
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	if (size < 2) {
		fprintf(stderr, "bench_mpi: needs at least 2 ranks\n");
		MPI_Abort(MPI_COMM_WORLD, 1);
	}
	if (rank != 0) {
		raw_worker();
		MPI_Finalize();
		exit(0);
	}
	int64_t t0 = now_ns();
	int64_t sum = raw_stream(tasks, 1, size, NULL, NULL);
	r->submit_per_s = (double)tasks / ((double)(now_ns() - t0) / 1e9);
	if (sum != (int64_t)tasks * (tasks + 1) / 2)
		return 1;
	/* As parex's map: input filled before, results stored into a fresh
	 * array (its first touch is part of the map's time for both). */
	int64_t *in = malloc((size_t)map_n * sizeof(*in));
	int64_t *out = malloc((size_t)map_n * sizeof(*out));
	if (!in || !out)
		return 1;
	for (long i = 0; i < map_n; i++)
		in[i] = i;
	t0 = now_ns();
	raw_stream(map_n, RAW_BATCH, size, in, out);
	r->map_per_s = (double)map_n / ((double)(now_ns() - t0) / 1e9);
	for (long i = 0; i < map_n; i++)
		if (out[i] != i + 1)
			return 1;
	free(in);
	free(out);
	int64_t *lat = malloc((size_t)pp * sizeof(*lat));
	if (!lat)
		return 1;
	for (long i = 0; i < pp; i++) {
		int64_t x[2] = { 0, i }; /* offset, record (raw_worker) */
		int64_t s = now_ns();
		MPI_Send(x, 2, MPI_INT64_T, 1, TAG_TASK, MPI_COMM_WORLD);
		MPI_Recv(x, 2, MPI_INT64_T, 1, TAG_TASK, MPI_COMM_WORLD,
			 MPI_STATUS_IGNORE);
		lat[i] = now_ns() - s;
		if (x[1] != i + 1)
			return 1;
	}
	percentiles(lat, pp, r);
	free(lat);
	for (int w = 1; w < size; w++)
		MPI_Send(NULL, 0, MPI_INT64_T, w, TAG_STOP, MPI_COMM_WORLD);
	MPI_Finalize();
	return 0;
}

/* ---- main -------------------------------------------------------------------- */

static const char *const names[] = { "submit_tasks_per_s", "map_records_per_s",
				     "pingpong_p50_us", "pingpong_p99_us" };

static double *field(struct results *r, int i)
{
	double *f[] = { &r->submit_per_s, &r->map_per_s, &r->p50_us, &r->p99_us };
	return f[i];
}

/* Reads another run's `name value` lines. 1, or -1 (unreadable). A file
 * that is missing entirely (a peer that skipped) counts as 0: no results. */
static int read_results(const char *path, struct results *o)
{
	FILE *in = fopen(path, "r");
	if (!in) {
		if (errno == ENOENT) {
			printf("# %s: no results (peer skipped), its targets are "
			       "not judged\n", path);
			return 0;
		}
		fprintf(stderr, "bench_mpi: cannot read %s\n", path);
		return -1;
	}
	memset(o, 0, sizeof(*o));
	char name[64];
	double v;
	while (fscanf(in, "%63s %lf", name, &v) == 2)
		for (int i = 0; i < 4; i++)
			if (!strcmp(name, names[i]))
				*field(o, i) = v;
	fclose(in);
	return 1;
}

static double ratio(double a, double b)
{
	return b > 0 ? a / b : 0.0;
}

static void print_ratios(const char *peer, const char *path,
			 struct results *r, struct results *o)
{
	printf("# %s / %s (throughput: higher is better for %s; latency: "
	       "lower is)\n", peer, path, peer);
	for (int i = 0; i < 4; i++)
		printf("ratio_%s %.3f\n", names[i],
		       ratio(*field(r, i), *field(o, i)));
}

/* One target line: met, missed, or not judged (no peer results). */
static void target(const char *what, int have, double v, double goal,
		   int at_least)
{
	if (!have) {
		printf("target %-38s not judged (no peer results)\n", what);
		return;
	}
	int met = v > 0 && (at_least ? v >= goal : v <= goal);
	printf("target %-38s %8.3f  %s\n", what, v, met ? "met" : "MISSED");
}

int main(int argc, char **argv)
{
	long tasks = 20000, map_n = 200000, pp = 2000;
	const char *peer = "parex", *outp = NULL, *cmpp = NULL, *pyp = NULL;
	const char *local = "process";
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v) {
			fprintf(stderr, "bench_mpi: %s needs a value\n", a);
			return 2;
		}
		if (!strcmp(a, "--tasks"))
			tasks = atol(v);
		else if (!strcmp(a, "--map"))
			map_n = atol(v);
		else if (!strcmp(a, "--pingpong"))
			pp = atol(v);
		else if (!strcmp(a, "--local"))
			local = v;
		else if (!strcmp(a, "--peer"))
			peer = v;
		else if (!strcmp(a, "--out"))
			outp = v;
		else if (!strcmp(a, "--compare"))
			cmpp = v;
		else if (!strcmp(a, "--compare-mpi4py"))
			pyp = v;
		else {
			fprintf(stderr, "bench_mpi: unknown option %s\n", a);
			return 2;
		}
		i++;
	}
	if (tasks < 1 || map_n < 1 || pp < 1 ||
	    (strcmp(peer, "parex") && strcmp(peer, "raw")) ||
	    (strcmp(local, "process") && strcmp(local, "thread"))) {
		fprintf(stderr, "bench_mpi: bad sizes, --peer (parex or raw) or "
			"--local (process or thread)\n");
		return 2;
	}
	struct results r = { 0 };
	int e = !strcmp(peer, "raw") ? run_raw(tasks, map_n, pp, &r)
				     : run_parex(tasks, map_n, pp, local, &r);
	if (e) {
		fprintf(stderr, "bench_mpi: %s run failed\n", peer);
		return 1;
	}
	FILE *out = outp ? fopen(outp, "w") : NULL;
	printf("# %s%s%s: %ld tasks, %ld map records, %ld ping-pongs\n", peer,
	       strcmp(peer, "raw") ? ", local=" : "",
	       strcmp(peer, "raw") ? local : "", tasks, map_n, pp);
	for (int i = 0; i < 4; i++) {
		printf("%s %.2f\n", names[i], *field(&r, i));
		if (out)
			fprintf(out, "%s %.6f\n", names[i], *field(&r, i));
	}
	if (out)
		fclose(out);
	struct results raw, py;
	int have_raw = cmpp ? read_results(cmpp, &raw) : 0;
	int have_py = pyp ? read_results(pyp, &py) : 0;
	if (have_raw < 0 || have_py < 0)
		return 1;
	if (have_raw)
		print_ratios(peer, cmpp, &r, &raw);
	if (have_py)
		print_ratios(peer, pyp, &r, &py);
	if (!strcmp(peer, "parex") && (cmpp || pyp)) {
		printf("# targets (one session, same launcher and rank count)\n");
		target("submit >= 20x mpi4py.futures", have_py,
		       have_py ? ratio(r.submit_per_s, py.submit_per_s) : 0, 20, 1);
		target("map >= 0.8x hand-written C", have_raw,
		       have_raw ? ratio(r.map_per_s, raw.map_per_s) : 0, 0.8, 1);
		target("round trip p50 <= 2x hand-written C", have_raw,
		       have_raw ? ratio(r.p50_us, raw.p50_us) : 0, 2, 0);
		target("round trip p99 <= 2x hand-written C", have_raw,
		       have_raw ? ratio(r.p99_us, raw.p99_us) : 0, 2, 0);
	}
	return 0;
}
