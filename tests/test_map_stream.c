/*
 * tests/test_map_stream.c - px_executor_map_stream on every backend: input
 * order, per-record codes, the in-flight bound, a failing source, a sink
 * that stops, the deadline, and memory that stays flat however many
 * records pass.
 */
#include <errno.h>
#include <stdatomic.h>

#include "test_util.h"

#ifdef __SANITIZE_ADDRESS__
/* See test_as_completed_growing.c: keeps the quarantine out of the RSS. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "quarantine_size_mb=4";
}
#endif

static const char *const specs[] = { "inline", "thread:workers=2",
				      "process:workers=2" };
#define NSPECS (sizeof(specs) / sizeof(specs[0]))

/* Opens specs[i], or NULL when that backend is not built in. */
static px_executor *open_spec(size_t i)
{
	px_executor *ex;
	int r = px_executor_open(&ex, specs[i], NULL, 0);
	if (r == PX_ENOBACKEND)
		return NULL;
	assert_int_equal(r, 0);
	return ex;
}

static long rss_bytes(void)
{
	FILE *fp = fopen("/proc/self/statm", "r");
	long size = 0, res = 0;
	if (!fp)
		return -1;
	if (fscanf(fp, "%ld %ld", &size, &res) != 2)
		res = -1;
	fclose(fp);
	return res < 0 ? -1 : res * sysconf(_SC_PAGESIZE);
}

/* x -> x*x; fails with -EDOM for x % 7 == 3 when asked to. */
static int square_or_fail(px_task *t, const void *arg, size_t len)
{
	int64_t x;
	if (len != sizeof(x))
		return -EINVAL;
	memcpy(&x, arg, sizeof(x));
	if (x < 0 && (-x) % 7 == 3)
		return -EDOM;
	x = x < 0 ? -x : x;
	int64_t y = x * x;
	return px_task_return(t, &y, sizeof(y));
}

/* A source of 0..n-1 (negated with `neg`), failing with `fail_with` after
 * fail_after records, or handing back more than asked with `overfill`; a
 * sink that checks order and results, and may stop at stop_at. */
struct run {
	int64_t n, next;
	bool neg;
	int64_t fail_after;
	int fail_with;
	bool overfill;
	size_t delivered, calls_after_stop;
	int64_t stop_at;
	int bad;
	size_t max_seen_in_flight;
	int64_t sum;
	size_t failed_codes;
	int codes_seen;
	int64_t rss10;
	bool stopped;
	size_t bound; /* checked: read - delivered */
};

static int64_t source(void *recs, size_t max, void *arg)
{
	struct run *r = arg;
	if (r->fail_after >= 0 && r->next >= r->fail_after)
		return r->fail_with;
	if (r->overfill && r->next > 0)
		return (int64_t)max + 1;
	int64_t *out = recs;
	size_t k = 0;
	while (k < max && r->next < r->n) {
		if (r->fail_after >= 0 && r->next >= r->fail_after)
			break;
		out[k++] = r->neg ? -r->next : r->next;
		r->next++;
	}
	size_t in_flight = (size_t)r->next - r->delivered;
	if (in_flight > r->max_seen_in_flight)
		r->max_seen_in_flight = in_flight;
	return (int64_t)k;
}

static int sink(size_t first, size_t count, const void *results,
		const int *codes, void *arg)
{
	struct run *r = arg;
	if (r->stopped)
		r->calls_after_stop++;
	if (first != r->delivered)
		r->bad++;
	const unsigned char *res = results;
	for (size_t i = 0; i < count; i++) {
		int64_t x = (int64_t)(first + i), y;
		memcpy(&y, res + i * sizeof(y), sizeof(y));
		int want = r->neg && x % 7 == 3 ? -EDOM : 0;
		if (codes[i] == 0 && y != x * x)
			r->bad++;
		if (codes[i] && y != 0)
			r->bad++;
		if (codes[i] == -ETIMEDOUT || codes[i] == -ECANCELED) {
			r->failed_codes++;
			r->codes_seen = codes[i];
		} else if (codes[i] != want) {
			r->bad++;
		}
		if (codes[i] == 0)
			r->sum += y;
	}
	r->delivered += count;
	if (r->n >= 10 && r->delivered >= (size_t)r->n / 10 && r->rss10 < 0)
		r->rss10 = rss_bytes();
	if (r->stop_at >= 0 && (int64_t)r->delivered >= r->stop_at && !r->stopped) {
		r->stopped = true;
		return -ECANCELED;
	}
	return 0;
}

static struct run run_init(int64_t n)
{
	struct run r = { .n = n, .fail_after = -1, .stop_at = -1, .rss10 = -1 };
	return r;
}

static int64_t sum_squares(int64_t n)
{
	int64_t s = 0;
	for (int64_t x = 0; x < n; x++)
		s += x * x;
	return s;
}

static void bad_arguments(void **state)
{
	(void)state;
	px_executor *ex = open_ex("inline");
	struct run r = run_init(10);
	assert_int_equal(px_executor_map_stream(NULL, square_or_fail, 8, source,
						8, sink, &r, NULL), -EINVAL);
	assert_int_equal(px_executor_map_stream(ex, NULL, 8, source, 8, sink,
						&r, NULL), -EINVAL);
	assert_int_equal(px_executor_map_stream(ex, square_or_fail, 8, NULL, 8,
						sink, &r, NULL), -EINVAL);
	assert_int_equal(px_executor_map_stream(ex, square_or_fail, 8, source,
						8, NULL, &r, NULL), -EINVAL);
	/* One record larger than max_arg. */
	assert_int_equal(px_executor_map_stream(ex, square_or_fail, 1 << 20,
						source, 8, sink, &r, NULL),
			 -EMSGSIZE);
	assert_int_equal(r.next, 0);
	/* An empty source: nothing delivered, success. */
	r = run_init(0);
	assert_int_equal(px_executor_map_stream(ex, square_or_fail, 8, source,
						8, sink, &r, NULL), 0);
	assert_int_equal(r.delivered, 0);
	/* A source handing back more than asked: what it gave before is
	 * delivered, then -EINVAL. */
	r = run_init(100);
	r.overfill = true;
	px_map_stream_opts o = { .chunk = 4 };
	assert_int_equal(px_executor_map_stream(ex, square_or_fail, 8, source,
						8, sink, &r, &o), -EINVAL);
	assert_int_equal(r.delivered, (size_t)r.next);
	assert_true(r.next > 0);
	assert_int_equal(r.bad, 0);
	px_executor_destroy(ex);
}

/* Every record in order, default and explicit chunks, every backend. */
static void in_order_every_backend(void **state)
{
	(void)state;
	int64_t n = test_scaled(100000);
	static const size_t chunks[] = { 0, 1, 7, 1000 };
	for (size_t b = 0; b < NSPECS; b++) {
		px_executor *ex = open_spec(b);
		if (!ex)
			continue;
		for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
			int64_t cnt = chunks[c] == 1 ? n / 20 + 1 : n;
			struct run r = run_init(cnt);
			px_map_stream_opts o = { .chunk = chunks[c] };
			assert_int_equal(px_executor_map_stream(ex, square_or_fail, 8,
								source, 8, sink,
								&r, &o), 0);
			assert_int_equal(r.delivered, (size_t)cnt);
			assert_int_equal(r.bad, 0);
			assert_int_equal(r.sum, sum_squares(cnt));
		}
		px_executor_destroy(ex);
	}
}

/* Failed records: their codes in order, the first one returned. */
static void record_failures_in_order(void **state)
{
	(void)state;
	for (size_t b = 0; b < NSPECS; b++) {
		px_executor *ex = open_spec(b);
		if (!ex)
			continue;
		struct run r = run_init(test_scaled(20000));
		r.neg = true;
		assert_int_equal(px_executor_map_stream(ex, square_or_fail, 8,
							source, 8, sink, &r, NULL),
				 -EDOM);
		assert_int_equal(r.delivered, (size_t)r.n);
		assert_int_equal(r.bad, 0);
		px_executor_destroy(ex);
	}
}

/* The bound holds: never more records read than delivered + max. */
static void in_flight_bound(void **state)
{
	(void)state;
	static const size_t bounds[] = { 1, 10, 100, 5000 };
	for (size_t b = 0; b < NSPECS; b++) {
		px_executor *ex = open_spec(b);
		if (!ex)
			continue;
		for (size_t k = 0; k < sizeof(bounds) / sizeof(bounds[0]); k++) {
			struct run r = run_init(test_scaled(20000));
			px_map_stream_opts o = { .max_in_flight = bounds[k] };
			assert_int_equal(px_executor_map_stream(ex, square_or_fail, 8,
								source, 8, sink,
								&r, &o), 0);
			assert_int_equal(r.delivered, (size_t)r.n);
			assert_int_equal(r.bad, 0);
			assert_true(r.max_seen_in_flight <= bounds[k]);
			assert_true(r.max_seen_in_flight >= 1);
		}
		/* A fixed chunk larger than the bound is cut to it. */
		struct run r = run_init(1000);
		px_map_stream_opts o = { .chunk = 500, .max_in_flight = 30 };
		assert_int_equal(px_executor_map_stream(ex, square_or_fail, 8,
							source, 8, sink, &r, &o), 0);
		assert_true(r.max_seen_in_flight <= 30);
		assert_int_equal(r.delivered, 1000);
		px_executor_destroy(ex);
	}
}

/* The source fails: what it gave before is delivered, then its error. */
static void source_error_stops_cleanly(void **state)
{
	(void)state;
	for (size_t b = 0; b < NSPECS; b++) {
		px_executor *ex = open_spec(b);
		if (!ex)
			continue;
		struct run r = run_init(100000);
		r.fail_after = 1234;
		r.fail_with = -EIO;
		assert_int_equal(px_executor_map_stream(ex, square_or_fail, 8,
							source, 8, sink, &r, NULL),
				 -EIO);
		assert_int_equal(r.delivered, 1234);
		assert_int_equal(r.bad, 0);
		assert_int_equal(r.sum, sum_squares(1234));
		/* The executor is fine afterwards. */
		r = run_init(100);
		assert_int_equal(px_executor_map_stream(ex, square_or_fail, 8,
							source, 8, sink, &r, NULL), 0);
		assert_int_equal(r.delivered, 100);
		px_executor_destroy(ex);
	}
}

/* The sink stops: no call after, no more records read past the bound. */
static void sink_stop(void **state)
{
	(void)state;
	for (size_t b = 0; b < NSPECS; b++) {
		px_executor *ex = open_spec(b);
		if (!ex)
			continue;
		struct run r = run_init(1000000);
		r.stop_at = 500;
		px_map_stream_opts o = { .chunk = 10, .max_in_flight = 200 };
		assert_int_equal(px_executor_map_stream(ex, square_or_fail, 8,
							source, 8, sink, &r, &o),
				 -ECANCELED);
		assert_int_equal(r.calls_after_stop, 0);
		assert_true(r.delivered >= 500 && r.delivered < 510);
		assert_true(r.next <= (int64_t)r.delivered + 200);
		assert_int_equal(r.bad, 0);
		px_executor_destroy(ex);
	}
}

/* Deadline, concurrent backends: tasks wait on a gate that stays shut. */
struct gate_run {
	struct gate *g;
	int64_t n, next;
	size_t delivered;
	int bad;
	size_t timed_out;
};

static int64_t gate_source(void *recs, size_t max, void *arg)
{
	struct gate_run *r = arg;
	size_t k = 0;
	for (; k < max && r->next < r->n; k++, r->next++)
		memcpy((char *)recs + k * sizeof(r->g), &r->g, sizeof(r->g));
	return (int64_t)k;
}

static int gate_sink(size_t first, size_t count, const void *results,
		     const int *codes, void *arg)
{
	(void)results;
	struct gate_run *r = arg;
	if (first != r->delivered)
		r->bad++;
	for (size_t i = 0; i < count; i++) {
		if (codes[i] == -ETIMEDOUT)
			r->timed_out++;
		else
			r->bad++;
	}
	r->delivered += count;
	return 0;
}

static void deadline_every_backend(void **state)
{
	(void)state;
	for (size_t b = 1; b < NSPECS; b++) {
		px_executor *ex = open_spec(b);
		if (!ex)
			continue;
		struct gate_run r = { .n = 1000 };
		assert_int_equal(px_executor_alloc(ex, sizeof(*r.g), (void **)&r.g), 0);
		px_map_stream_opts o = { .chunk = 1, .max_in_flight = 50,
					 .timeout_ns = 50 * PX_MSEC };
		assert_int_equal(px_executor_map_stream(ex, wait_gate, sizeof(r.g),
							gate_source, 0, gate_sink,
							&r, &o), -ETIMEDOUT);
		/* Every record read was delivered, timed out. */
		assert_int_equal(r.bad, 0);
		assert_int_equal(r.delivered, (size_t)r.next);
		assert_int_equal(r.timed_out, (size_t)r.next);
		assert_true(r.next <= 50);
		atomic_store(&r.g->open, 1);
		px_executor_shutdown(ex, true, false);
		px_executor_stats st;
		px_executor_stats_get(ex, &st);
		/* Each record either ran (entered the gate) or was cancelled
		 * before it started, and most never started. */
		int entered = atomic_load(&r.g->entered);
		assert_int_equal(st.cancelled + (uint64_t)entered, (uint64_t)r.next);
		assert_true(entered < r.next);
		px_executor_free(ex, r.g);
		px_executor_destroy(ex);
	}
}

/* Inline: each chunk runs in its submit; the deadline still stops it. */
static int slow_square(px_task *t, const void *arg, size_t len)
{
	px_task_sleep(t, 2 * PX_MSEC);
	return square_or_fail(t, arg, len);
}

static void deadline_inline(void **state)
{
	(void)state;
	px_executor *ex = open_ex("inline");
	struct run r = run_init(100000);
	px_map_stream_opts o = { .chunk = 1, .timeout_ns = 20 * PX_MSEC };
	assert_int_equal(px_executor_map_stream(ex, slow_square, 8, source, 8,
						sink, &r, &o), -ETIMEDOUT);
	assert_true(r.next < 100000);
	assert_int_equal(r.delivered, (size_t)r.next);
	assert_int_equal(r.bad, 0);
	px_executor_destroy(ex);
}

/*
 * Millions of records through a stream: memory at the end is what it was
 * at 10%. Keeping every record's argument and result (16 bytes) would grow
 * it by 14 MB per million; the bound is half of that, at most 32 MB.
 */
static void flat_memory(void **state)
{
	(void)state;
	int64_t n = test_scaled(4000000);
	if (n < 1000000)
		n = 1000000;
	for (size_t b = 1; b < NSPECS; b++) {
		px_executor *ex = open_spec(b);
		if (!ex)
			continue;
		struct run r = run_init(n);
		assert_int_equal(px_executor_map_stream(ex, square_or_fail, 8,
							source, 8, sink, &r, NULL), 0);
		long rss100 = rss_bytes();
		assert_int_equal(r.delivered, (size_t)n);
		assert_int_equal(r.bad, 0);
		px_executor_destroy(ex);
		if (r.rss10 < 0 || rss100 < 0)
			skip();
		long bound = (long)((double)n * 0.9 * 16 / 2);
		if (bound > 32L << 20)
			bound = 32L << 20;
		printf("map_stream %s, %lld records: RSS %ld KiB at 10%%, %ld KiB at "
		       "100%% (bound +%ld KiB)\n", specs[b], (long long)n,
		       r.rss10 >> 10, rss100 >> 10, bound >> 10);
		assert_true(rss100 - r.rss10 <= bound);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(bad_arguments),
		cmocka_unit_test(in_order_every_backend),
		cmocka_unit_test(record_failures_in_order),
		cmocka_unit_test(in_flight_bound),
		cmocka_unit_test(source_error_stops_cleanly),
		cmocka_unit_test(sink_stop),
		cmocka_unit_test(deadline_every_backend),
		cmocka_unit_test(deadline_inline),
		cmocka_unit_test(flat_memory),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
