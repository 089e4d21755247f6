/*
 * tests/test_deadlines.c - timeouts too large to add to the clock mean "no
 * deadline", everywhere: a wait of INT64_MAX - 1 ns must block like
 * PX_FOREVER, never wrap around into "time out now" or "done now".
 *
 * Each test starts the huge-timeout call in a thread, checks that it is
 * still blocked after 50 ms, then makes its condition true (or cancels it)
 * and checks what the call returned. Covered: futures (px_future_wait,
 * px_wait in every mode, the as-completed iterator), px_executor_map, a
 * blocking thread-pool submit into a full queue, a process-pool task with
 * that per-task timeout, the ipc/ waits (ring,
 * queue, semaphore, event, barrier, condition, lock) and both I/O backends
 * (sleep, read with a timeout).
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <parex/executor.h>
#include <parex/io.h>
#include <parex/queue.h>
#include <parex/ring.h>
#include <parex/sync.h>

#include "test_util.h"

/* Too large to add to the monotonic clock, but not PX_FOREVER. */
#define HUGE_NS (INT64_MAX - 1)

/* How long a blocked call must still be blocked to count as waiting. */
#define STILL_NS (50 * 1000 * 1000)

/* A blocking call run in its own thread. */
struct waiter {
	pthread_t th;
	int (*call)(void *ctx);
	void *ctx;
	_Atomic int done;
	int ret;
};

static void *waiter_main(void *p)
{
	struct waiter *w = p;
	w->ret = w->call(w->ctx);
	atomic_store(&w->done, 1);
	return NULL;
}

static void waiter_start(struct waiter *w, int (*call)(void *), void *ctx)
{
	memset(w, 0, sizeof(*w));
	w->call = call;
	w->ctx = ctx;
	assert_int_equal(pthread_create(&w->th, NULL, waiter_main, w), 0);
}

/* Asserts the call has not returned after STILL_NS. */
static void assert_still_waiting(struct waiter *w)
{
	struct timespec ts = { 0, STILL_NS };
	nanosleep(&ts, NULL);
	if (atomic_load(&w->done))
		fail_msg("a wait of INT64_MAX - 1 ns returned after 50 ms: %d (%s)",
			 w->ret, px_strerror(w->ret));
}

/* Joins the thread; the call's return value. */
static int waiter_join(struct waiter *w)
{
	assert_int_equal(pthread_join(w->th, NULL), 0);
	return w->ret;
}

/* Futures ------------------------------------------------------------------ */

static int call_future_wait(void *ctx)
{
	return px_future_wait(ctx, HUGE_NS);
}

static void future_wait_with_huge_timeout_waits(void **state)
{
	(void)state;
	px_future *f;
	assert_int_equal(px_promise_create(&f), 0);
	struct waiter w;
	waiter_start(&w, call_future_wait, f);
	assert_still_waiting(&w);
	assert_int_equal(px_promise_set_i64(f, 7), 0);
	assert_int_equal(waiter_join(&w), 0);
	int64_t v = 0;
	assert_int_equal(px_future_get_i64(f, 0, &v), 0);
	assert_int_equal(v, 7);
	px_future_release(f);
}

struct wait_ctx {
	px_future *fs[2];
	px_wait_mode mode;
	bool done[2];
};

static int call_wait(void *ctx)
{
	struct wait_ctx *c = ctx;
	return px_wait(c->fs, 2, c->mode, HUGE_NS, c->done);
}

/* px_wait in mode: blocks, then returns once finish() made it hold. */
static void wait_mode_case(px_wait_mode mode)
{
	struct wait_ctx c = { .mode = mode };
	assert_int_equal(px_promise_create(&c.fs[0]), 0);
	assert_int_equal(px_promise_create(&c.fs[1]), 0);
	struct waiter w;
	waiter_start(&w, call_wait, &c);
	assert_still_waiting(&w);
	int want;
	if (mode == PX_ALL_COMPLETED) {
		assert_int_equal(px_promise_set_i64(c.fs[0], 1), 0);
		assert_int_equal(px_promise_set_i64(c.fs[1], 2), 0);
		want = 2;
	} else if (mode == PX_FIRST_EXCEPTION) {
		assert_int_equal(px_promise_set_error(c.fs[1], -EIO, NULL), 0);
		want = 1;
	} else {
		assert_int_equal(px_promise_set_i64(c.fs[0], 1), 0);
		want = 1;
	}
	assert_int_equal(waiter_join(&w), want);
	assert_true(c.done[mode == PX_FIRST_EXCEPTION ? 1 : 0]);
	/* Finish the other one for the release. */
	px_promise_set_cancelled(c.fs[0]);
	px_promise_set_cancelled(c.fs[1]);
	px_future_release(c.fs[0]);
	px_future_release(c.fs[1]);
}

static void wait_all_with_huge_timeout_waits(void **state)
{
	(void)state;
	wait_mode_case(PX_ALL_COMPLETED);
}

static void wait_first_completed_with_huge_timeout_waits(void **state)
{
	(void)state;
	wait_mode_case(PX_FIRST_COMPLETED);
}

static void wait_first_exception_with_huge_timeout_waits(void **state)
{
	(void)state;
	wait_mode_case(PX_FIRST_EXCEPTION);
}

struct ac_ctx {
	px_as_completed *it;
	px_future *got;
};

static int call_as_completed(void *ctx)
{
	struct ac_ctx *c = ctx;
	return px_as_completed_next(c->it, HUGE_NS, &c->got);
}

static void as_completed_with_huge_timeout_waits(void **state)
{
	(void)state;
	px_future *f;
	assert_int_equal(px_promise_create(&f), 0);
	struct ac_ctx c = { 0 };
	assert_int_equal(px_as_completed_open(&c.it, &f, 1), 0);
	struct waiter w;
	waiter_start(&w, call_as_completed, &c);
	assert_still_waiting(&w);
	assert_int_equal(px_promise_set_i64(f, 3), 0);
	assert_int_equal(waiter_join(&w), 0);
	assert_ptr_equal(c.got, f);
	assert_int_equal(px_as_completed_next(c.it, HUGE_NS, &c.got), PX_EEOF);
	px_as_completed_close(c.it);
	px_future_release(f);
}

/* Executors ---------------------------------------------------------------- */

static int square(px_task *t, const void *arg, size_t len)
{
	(void)len;
	int64_t x;
	memcpy(&x, arg, sizeof(x));
	int64_t y = x * x;
	return px_task_return(t, &y, sizeof(y));
}

static void map_with_huge_timeout_completes(void **state)
{
	(void)state;
	px_executor *ex = open_ex("thread:workers=2");
	enum { N = 64 };
	int64_t args[N], res[N];
	for (int i = 0; i < N; i++)
		args[i] = i;
	px_map_opts o = { .chunk = 4, .timeout_ns = HUGE_NS };
	assert_int_equal(px_executor_map(ex, square, args, sizeof(args[0]), N,
					 res, sizeof(res[0]), &o), 0);
	for (int i = 0; i < N; i++)
		assert_int_equal(res[i], (int64_t)i * i);
	px_executor_destroy(ex);
}

/* A pool of one worker kept busy by a task that waits for `release`. */
struct busy {
	_Atomic int started;
	_Atomic int release;
	_Atomic int ran;
};

static int hold_task(px_task *t, const void *arg, size_t len)
{
	(void)t;
	(void)len;
	struct busy *b;
	memcpy(&b, arg, sizeof(b));
	atomic_store(&b->started, 1);
	/* Plain sleeps, not px_task_sleep: the worker must not run other
	 * tasks meanwhile (its block hook would). */
	while (!atomic_load(&b->release))
		usleep(1000);
	return 0;
}

static int count_task(px_task *t, const void *arg, size_t len)
{
	(void)t;
	(void)len;
	struct busy *b;
	memcpy(&b, arg, sizeof(b));
	atomic_fetch_add(&b->ran, 1);
	return 0;
}

struct submit_ctx {
	px_executor *ex;
	struct busy *b;
	px_future *f;
};

static int call_blocking_submit(void *ctx)
{
	struct submit_ctx *c = ctx;
	px_submit_opts o = { .timeout_ns = HUGE_NS };
	return px_executor_submit(c->ex, count_task, &c->b, sizeof(c->b), &o,
				  &c->f);
}

static void blocking_submit_into_full_queue_waits(void **state)
{
	(void)state;
	px_executor *ex = open_ex("thread:workers=1,queue=4,block=1");
	struct busy b = { 0 };
	struct busy *bp = &b;
	px_future *hold;
	assert_int_equal(px_executor_submit(ex, hold_task, &bp, sizeof(bp),
					    NULL, &hold), 0);
	while (!atomic_load(&b.started))
		usleep(1000);
	/* Fill the queue behind the busy worker. */
	px_future *fill[64];
	int nfill = 0;
	px_submit_opts nowait = { .flags = PX_SUBMIT_NOWAIT };
	for (;;) {
		assert_true(nfill < 64);
		int r = px_executor_submit(ex, count_task, &bp, sizeof(bp),
					   &nowait, &fill[nfill]);
		if (r == -EAGAIN)
			break;
		assert_int_equal(r, 0);
		nfill++;
	}
	assert_true(nfill > 0);
	struct submit_ctx c = { .ex = ex, .b = &b };
	struct waiter w;
	waiter_start(&w, call_blocking_submit, &c);
	assert_still_waiting(&w);
	atomic_store(&b.release, 1);
	assert_int_equal(waiter_join(&w), 0);
	assert_int_equal(px_future_wait(c.f, 10 * PX_SEC), 0);
	assert_int_equal(px_future_error(c.f), 0);
	for (int i = 0; i < nfill; i++) {
		assert_int_equal(px_future_wait(fill[i], 10 * PX_SEC), 0);
		px_future_release(fill[i]);
	}
	assert_int_equal(atomic_load(&b.ran), nfill + 1);
	px_future_release(c.f);
	px_future_release(hold);
	px_executor_destroy(ex);
}

static int nap_task(px_task *t, const void *arg, size_t len)
{
	(void)arg;
	(void)len;
	px_task_sleep(t, 200 * PX_MSEC);
	int64_t v = 5;
	return px_task_return(t, &v, sizeof(v));
}

/* A per-task timeout of INT64_MAX - 1 is none: the process pool must not
 * kill the task as timed out. */
static void process_task_with_huge_timeout_runs(void **state)
{
	(void)state;
	px_executor *ex = open_ex("process:workers=1");
	px_submit_opts o = { .timeout_ns = HUGE_NS };
	px_future *f;
	assert_int_equal(px_executor_submit(ex, nap_task, NULL, 0, &o, &f), 0);
	assert_int_equal(px_future_wait(f, STILL_NS), -ETIMEDOUT);
	int64_t v = 0;
	int r = px_future_get_i64(f, 10 * PX_SEC, &v);
	if (r)
		fail_msg("task failed: %s (%s)", px_strerror(r),
			 px_future_message(f) ? px_future_message(f) : "");
	assert_int_equal(v, 5);
	px_future_release(f);
	px_executor_destroy(ex);
}

/* ipc/ --------------------------------------------------------------------- */

static px_ring *ring_new(uint32_t cap, void **mem)
{
	ssize_t need = px_ring_memsize(cap, sizeof(uint64_t), 0);
	assert_true(need > 0);
	*mem = aligned_alloc(PX_RING_ALIGN, ((size_t)need + 63) & ~(size_t)63);
	assert_non_null(*mem);
	assert_int_equal(px_ring_init(*mem, (size_t)need, cap, sizeof(uint64_t), 0), 0);
	return *mem; /* the ring lives at the start of its memory */
}

struct ring_ctx {
	px_ring *r;
	uint64_t item;
};

static int call_ring_pop(void *ctx)
{
	struct ring_ctx *c = ctx;
	return px_ring_pop(c->r, &c->item, HUGE_NS);
}

static int call_ring_push(void *ctx)
{
	struct ring_ctx *c = ctx;
	return px_ring_push(c->r, &c->item, HUGE_NS);
}

static void ring_pop_and_push_with_huge_timeout_wait(void **state)
{
	(void)state;
	void *mem;
	px_ring *r = ring_new(2, &mem);
	px_ring_set_spin(r, 0);
	/* Pop from an empty ring. */
	struct ring_ctx c = { .r = r };
	struct waiter w;
	waiter_start(&w, call_ring_pop, &c);
	assert_still_waiting(&w);
	uint64_t v = 41;
	assert_int_equal(px_ring_try_push(r, &v), 0);
	assert_int_equal(waiter_join(&w), 0);
	assert_int_equal(c.item, 41);
	/* Push into a full one. */
	assert_int_equal(px_ring_try_push(r, &v), 0);
	assert_int_equal(px_ring_try_push(r, &v), 0);
	c.item = 42;
	waiter_start(&w, call_ring_push, &c);
	assert_still_waiting(&w);
	assert_int_equal(px_ring_try_pop(r, &v), 0);
	assert_int_equal(waiter_join(&w), 0);
	assert_int_equal(px_ring_try_pop(r, &v), 0);
	assert_int_equal(v, 41);
	assert_int_equal(px_ring_try_pop(r, &v), 0);
	assert_int_equal(v, 42);
	free(mem);
}

struct queue_ctx {
	px_queue *q;
	char buf[4096];
	size_t len;
};

static int call_queue_get(void *ctx)
{
	struct queue_ctx *c = ctx;
	ssize_t n = px_queue_get(c->q, c->buf, sizeof(c->buf), HUGE_NS);
	return n < 0 ? (int)n : (int)(c->len = (size_t)n, 0);
}

static int call_queue_put(void *ctx)
{
	struct queue_ctx *c = ctx;
	return px_queue_put(c->q, c->buf, c->len, HUGE_NS);
}

static void queue_get_and_put_with_huge_timeout_wait(void **state)
{
	(void)state;
	px_queue_config cfg = { .capacity = 1, .max_msg = 4096 };
	ssize_t need = px_queue_memsize(&cfg);
	assert_true(need > 0);
	void *mem = aligned_alloc(PX_RING_ALIGN, ((size_t)need + 63) & ~(size_t)63);
	assert_non_null(mem);
	assert_int_equal(px_queue_init(mem, (size_t)need, &cfg), 0);
	px_queue *q = mem; /* the queue lives at the start of its memory */
	px_queue_set_spin(q, 0);
	/* Get from an empty queue. */
	struct queue_ctx *c = calloc(1, sizeof(*c));
	assert_non_null(c);
	c->q = q;
	struct waiter w;
	waiter_start(&w, call_queue_get, c);
	assert_still_waiting(&w);
	assert_int_equal(px_queue_put(q, "hello", 5, 0), 0);
	assert_int_equal(waiter_join(&w), 0);
	assert_int_equal(c->len, 5);
	assert_memory_equal(c->buf, "hello", 5);
	/* Put into a full one (capacity 1). */
	assert_int_equal(px_queue_put(q, "first", 5, 0), 0);
	memcpy(c->buf, "second", 6);
	c->len = 6;
	waiter_start(&w, call_queue_put, c);
	assert_still_waiting(&w);
	char buf[4096];
	assert_int_equal(px_queue_get(q, buf, sizeof(buf), 0), 5);
	assert_int_equal(waiter_join(&w), 0);
	assert_int_equal(px_queue_get(q, buf, sizeof(buf), 0), 6);
	assert_memory_equal(buf, "second", 6);
	free(c);
	free(mem);
}

static int call_sem_wait(void *ctx)
{
	return px_sem_wait(ctx, HUGE_NS);
}

static void sem_wait_with_huge_timeout_waits(void **state)
{
	(void)state;
	px_sem s;
	assert_int_equal(px_sem_init(&s, 0), 0);
	struct waiter w;
	waiter_start(&w, call_sem_wait, &s);
	assert_still_waiting(&w);
	assert_int_equal(px_sem_post(&s, 1), 0);
	assert_int_equal(waiter_join(&w), 0);
	assert_int_equal(px_sem_value(&s), 0);
}

static int call_event_wait(void *ctx)
{
	return px_event_wait(ctx, HUGE_NS);
}

static void event_wait_with_huge_timeout_waits(void **state)
{
	(void)state;
	px_event e;
	assert_int_equal(px_event_init(&e, false), 0);
	struct waiter w;
	waiter_start(&w, call_event_wait, &e);
	assert_still_waiting(&w);
	assert_int_equal(px_event_set(&e), 0);
	assert_int_equal(waiter_join(&w), 0);
}

static int call_barrier_wait(void *ctx)
{
	return px_barrier_wait(ctx, HUGE_NS);
}

static void barrier_wait_with_huge_timeout_waits(void **state)
{
	(void)state;
	px_barrier b;
	assert_int_equal(px_barrier_init(&b, 2), 0);
	struct waiter w;
	waiter_start(&w, call_barrier_wait, &b);
	assert_still_waiting(&w);
	/* The second party arrives: exactly one of the two is the serial. */
	int mine = px_barrier_wait(&b, HUGE_NS);
	int theirs = waiter_join(&w);
	assert_true(mine == 0 || mine == PX_BARRIER_SERIAL);
	assert_true(theirs == 0 || theirs == PX_BARRIER_SERIAL);
	assert_int_not_equal(mine, theirs);
}

struct cond_ctx {
	px_lock l;
	px_cond c;
	int flag;
};

static int call_cond_wait(void *ctx)
{
	struct cond_ctx *c = ctx;
	int r = px_lock_lock(&c->l, PX_FOREVER);
	if (r)
		return r;
	while (!c->flag && r == 0)
		r = px_cond_wait(&c->c, &c->l, HUGE_NS);
	px_lock_unlock(&c->l);
	return r;
}

static void cond_wait_with_huge_timeout_waits(void **state)
{
	(void)state;
	struct cond_ctx *c = calloc(1, sizeof(*c));
	assert_non_null(c);
	assert_int_equal(px_lock_init(&c->l), 0);
	assert_int_equal(px_cond_init(&c->c), 0);
	struct waiter w;
	waiter_start(&w, call_cond_wait, c);
	assert_still_waiting(&w);
	assert_int_equal(px_lock_lock(&c->l, PX_FOREVER), 0);
	c->flag = 1;
	assert_int_equal(px_cond_notify_all(&c->c), 0);
	assert_int_equal(px_lock_unlock(&c->l), 0);
	assert_int_equal(waiter_join(&w), 0);
	assert_int_equal(px_cond_destroy(&c->c), 0);
	assert_int_equal(px_lock_destroy(&c->l), 0);
	free(c);
}

static int call_lock(void *ctx)
{
	int r = px_lock_lock(ctx, HUGE_NS);
	if (r == 0)
		r = px_lock_unlock(ctx);
	return r;
}

static void lock_with_huge_timeout_waits(void **state)
{
	(void)state;
	px_lock l;
	assert_int_equal(px_lock_init(&l), 0);
	assert_int_equal(px_lock_lock(&l, PX_FOREVER), 0);
	struct waiter w;
	waiter_start(&w, call_lock, &l);
	assert_still_waiting(&w);
	assert_int_equal(px_lock_unlock(&l), 0);
	assert_int_equal(waiter_join(&w), 0);
	assert_int_equal(px_lock_destroy(&l), 0);
}

/* io/ ---------------------------------------------------------------------- */

/* A context on backend b; skips the test where b is unavailable. */
static px_io *io_on(px_io_backend b)
{
	if (b == PX_IO_URING && px_io_uring_probe()) {
		printf("io_uring unavailable here (%s): skipped\n",
		       px_strerror(px_io_uring_probe()));
		skip();
	}
	px_io_config cfg = { .backend = b };
	px_io *io = NULL;
	int r = px_io_create(&io, &cfg);
	if (r)
		fail_msg("px_io_create(%d): %s", (int)b, px_strerror(r));
	assert_int_equal(px_io_backend_get(io), b);
	return io;
}

/* A sleep that never ends: still pending after 50 ms, then cancelled (not
 * completed with success). */
static void io_sleep_case(px_io_backend b)
{
	px_io *io = io_on(b);
	px_future *f;
	assert_int_equal(px_io_sleep(io, HUGE_NS, &f), 0);
	assert_int_equal(px_future_wait(f, STILL_NS), -ETIMEDOUT);
	assert_int_equal(px_future_cancel(f, PX_CANCEL_RUNNING), 0);
	assert_int_equal(px_future_wait(f, 10 * PX_SEC), 0);
	assert_int_equal(px_future_state_get(f), PX_FUTURE_CANCELLED);
	px_future_release(f);
	/* One left running: destroy cancels it. */
	assert_int_equal(px_io_sleep(io, HUGE_NS, &f), 0);
	px_io_destroy(io);
	assert_int_equal(px_future_state_get(f), PX_FUTURE_CANCELLED);
	px_future_release(f);
}

static void io_sleep_with_huge_time_waits_threads(void **state)
{
	(void)state;
	io_sleep_case(PX_IO_THREADS);
}

static void io_sleep_with_huge_time_waits_uring(void **state)
{
	(void)state;
	io_sleep_case(PX_IO_URING);
}

/* A read with a huge deadline: pending after 50 ms, then reads. */
static void io_read_case(px_io_backend b)
{
	px_io *io = io_on(b);
	int p[2];
	assert_int_equal(pipe(p), 0);
	char buf[16];
	px_io_opts o = { .timeout_ns = HUGE_NS };
	px_future *f;
	assert_int_equal(px_io_read(io, p[0], buf, sizeof(buf), PX_IO_CUR, &o, &f), 0);
	assert_int_equal(px_future_wait(f, STILL_NS), -ETIMEDOUT);
	assert_int_equal(write(p[1], "abc", 3), 3);
	int64_t n = -1;
	assert_int_equal(px_future_get_i64(f, 10 * PX_SEC, &n), 0);
	assert_int_equal(n, 3);
	assert_memory_equal(buf, "abc", 3);
	px_future_release(f);
	px_io_destroy(io);
	close(p[0]);
	close(p[1]);
}

static void io_read_with_huge_timeout_waits_threads(void **state)
{
	(void)state;
	io_read_case(PX_IO_THREADS);
}

static void io_read_with_huge_timeout_waits_uring(void **state)
{
	(void)state;
	io_read_case(PX_IO_URING);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(future_wait_with_huge_timeout_waits),
		cmocka_unit_test(wait_all_with_huge_timeout_waits),
		cmocka_unit_test(wait_first_completed_with_huge_timeout_waits),
		cmocka_unit_test(wait_first_exception_with_huge_timeout_waits),
		cmocka_unit_test(as_completed_with_huge_timeout_waits),
		cmocka_unit_test(map_with_huge_timeout_completes),
		cmocka_unit_test(blocking_submit_into_full_queue_waits),
		cmocka_unit_test(process_task_with_huge_timeout_runs),
		cmocka_unit_test(ring_pop_and_push_with_huge_timeout_wait),
		cmocka_unit_test(queue_get_and_put_with_huge_timeout_wait),
		cmocka_unit_test(sem_wait_with_huge_timeout_waits),
		cmocka_unit_test(event_wait_with_huge_timeout_waits),
		cmocka_unit_test(barrier_wait_with_huge_timeout_waits),
		cmocka_unit_test(cond_wait_with_huge_timeout_waits),
		cmocka_unit_test(lock_with_huge_timeout_waits),
		cmocka_unit_test(io_sleep_with_huge_time_waits_threads),
		cmocka_unit_test(io_sleep_with_huge_time_waits_uring),
		cmocka_unit_test(io_read_with_huge_timeout_waits_threads),
		cmocka_unit_test(io_read_with_huge_timeout_waits_uring),
	};
	if (getenv("PX_TEST_FILTER"))
		cmocka_set_test_filter(getenv("PX_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
