/*
 * tests/test_procpool_help.c - threads waiting on process-pool futures take
 * the replies off the workers' rings themselves (procpool/reply.c, the
 * backend's wait_help): a waiter completes its own future while the
 * collector is stuck in a done callback; px_wait() over futures on two
 * workers returns when the one it does not watch completes; many threads
 * waiting at once with crashes, timeouts and cancels mixed in get every
 * outcome right and every done callback exactly once; destroy races
 * threads that are waiting; a done callback run by a waiting thread
 * destroys the pool; tasks handed to parked workers one at a time, with
 * crashes among them, all finish, each callback once, with nobody
 * waiting on them (the submitter claims the reply ring through the
 * wake-up, procpool/submit.c); no done callback of another thread's future
 * runs inside such a submit.
 *
 * Each case runs in a forked child under an alarm and reports through its
 * exit status (0 sound, the failing line otherwise), as in
 * test_procpool_adversarial.c.
 * Usage: test_procpool_help [CASE]
 */
#include <dlfcn.h>
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <parex/executor.h>

#include "test_util.h"

/* Tasks: return 2v+1, after spinning ns, or crash. */
enum { T_VALUE, T_SEGV, T_SPIN };

struct op {
	int32_t kind;
	int32_t pad;
	int64_t v;
	int64_t ns;
};

static int op_task(px_task *t, const void *arg, size_t len)
{
	struct op o;
	if (len != sizeof(o))
		return -EINVAL;
	memcpy(&o, arg, sizeof(o));
	if (o.kind == T_SEGV)
		test_segfault(NULL);
	if (o.ns)
		test_spin_ns(o.ns);
	int64_t r = 2 * o.v + 1;
	return px_task_return(t, &r, sizeof(r));
}

static int submit_op(px_executor *ex, int kind, int64_t v, int64_t ns,
		     int64_t timeout_ns, px_future **out)
{
	struct op o = { .kind = kind, .v = v, .ns = ns };
	px_submit_opts so = { .timeout_ns = timeout_ns };
	return px_executor_submit(ex, op_task, &o, sizeof(o),
				  timeout_ns ? &so : NULL, out);
}

/* 0 if f finished within 20 s with value 2v+1. */
static int want_value(px_future *f, int64_t v)
{
	int64_t r = -1;
	int e = px_future_get_i64(f, 20 * PX_SEC, &r);
	if (e || r != 2 * v + 1) {
		fprintf(stderr, "future: %s (%s), value %lld, want %lld\n",
			px_strerror(e),
			px_future_message(f) ? px_future_message(f) : "",
			(long long)r, (long long)(2 * v + 1));
		return -1;
	}
	return 0;
}

/* The thread a done callback ran on. */
struct where {
	pthread_t th;
	atomic_int ran;
};

static void note_thread(px_future *f, void *arg)
{
	(void)f;
	struct where *w = arg;
	w->th = pthread_self();
	atomic_fetch_add(&w->ran, 1);
}

/* A waiter completes its own future while the collector is stuck ----------- */

static atomic_int blocker_in, blocker_go;
static pthread_t main_thread;

/* Holds the thread completing the future until blocker_go: the collector,
 * since nobody waits on that future. */
static void block_cb(px_future *f, void *arg)
{
	(void)f;
	(void)arg;
	if (pthread_equal(pthread_self(), main_thread))
		return; /* ran at once (already done): the case reports it */
	atomic_store(&blocker_in, 1);
	int64_t t0 = test_now_ns();
	while (!atomic_load(&blocker_go) && test_now_ns() - t0 < 30 * PX_SEC)
		usleep(200);
}

static int case_waiter_completes_while_collector_blocked(void)
{
	main_thread = pthread_self();
	px_executor *ex = open_ex("process:workers=2");
	px_future *a;
	CASE_CHECK(submit_op(ex, T_SPIN, 1, 50 * PX_MSEC, 0, &a) == 0);
	CASE_CHECK(px_future_on_done(a, block_cb, NULL) == 0);
	for (int64_t t0 = test_now_ns(); !atomic_load(&blocker_in);) {
		CASE_CHECK(test_now_ns() - t0 < 20 * PX_SEC);
		usleep(500);
	}
	/* The collector sits in a's callback: only the waiting threads
	 * themselves can complete these. Several round trips, on both
	 * workers, one with its own callback. */
	for (int i = 0; i < 50; i++) {
		px_future *b;
		struct where wh = { .ran = 0 };
		CASE_CHECK(submit_op(ex, T_VALUE, 100 + i, i % 5 ? 0 : PX_MSEC, 0, &b) == 0);
		CASE_CHECK(px_future_on_done(b, note_thread, &wh) == 0);
		int64_t r = -1;
		CASE_CHECK(px_future_get_i64(b, 10 * PX_SEC, &r) == 0);
		CASE_CHECK(r == 2 * (100 + i) + 1);
		CASE_CHECK(atomic_load(&wh.ran) == 1);
		CASE_CHECK(pthread_equal(wh.th, main_thread));
		px_future_release(b);
	}
	/* px_wait too, over several futures on both workers. */
	px_future *fs[8];
	for (int i = 0; i < 8; i++)
		CASE_CHECK(submit_op(ex, T_VALUE, i, 0, 0, &fs[i]) == 0);
	CASE_CHECK(px_wait(fs, 8, PX_ALL_COMPLETED, 10 * PX_SEC, NULL) == 8);
	for (int i = 0; i < 8; i++) {
		CASE_CHECK(want_value(fs[i], i) == 0);
		px_future_release(fs[i]);
	}
	atomic_store(&blocker_go, 1);
	CASE_CHECK(want_value(a, 1) == 0);
	px_future_release(a);
	px_executor_destroy(ex);
	return 0;
}

/* px_wait(FIRST_COMPLETED) watching one worker, woken by the other ----------- */

static int case_wait_any_across_workers(void)
{
	px_executor *ex = open_ex("process:workers=2,cancel_grace_ms=0");
	for (int round = 0; round < 5; round++) {
		px_future *fs[2];
		/* The long one first: the waiter watches its worker. */
		CASE_CHECK(submit_op(ex, T_SPIN, 1, 3 * PX_SEC, 0, &fs[0]) == 0);
		CASE_CHECK(submit_op(ex, T_SPIN, 2, 20 * PX_MSEC, 0, &fs[1]) == 0);
		bool done[2];
		int64_t t0 = test_now_ns();
		CASE_CHECK(px_wait(fs, 2, PX_FIRST_COMPLETED, 10 * PX_SEC, done) == 1);
		CASE_CHECK(test_now_ns() - t0 < 2 * PX_SEC);
		CASE_CHECK(!done[0] && done[1]);
		CASE_CHECK(want_value(fs[1], 2) == 0);
		CASE_CHECK(px_future_cancel(fs[0], PX_CANCEL_RUNNING) == 0);
		CASE_CHECK(px_future_wait(fs[0], 10 * PX_SEC) == 0);
		CASE_CHECK(px_future_error(fs[0]) == -ECANCELED);
		px_future_release(fs[0]);
		px_future_release(fs[1]);
	}
	px_executor_destroy(ex);
	return 0;
}

/* Many waiters, crashes, timeouts and cancels ---------------------------------- */

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

enum { K_VALUE, K_CRASH, K_TIMEOUT, K_CANCEL, K_BATCH, K_KINDS };
#define BATCH 6
#define MAXF 4096

struct waiter {
	px_executor *ex;
	uint64_t seed;
	int iters;
	int id;
	/* One callback counter per future this thread submitted. */
	atomic_int fired[MAXF];
	int nf;
	int outcomes[K_KINDS];
	int bad; /* the failing line, 0 if sound */
};

static void count_cb(px_future *f, void *arg)
{
	(void)f;
	atomic_fetch_add((atomic_int *)arg, 1);
}

#define WCHECK(c)                                                              \
	do {                                                                   \
		if (!(c)) {                                                    \
			fprintf(stderr, "waiter %d: %s:%d: %s\n", w->id,       \
				__func__, __LINE__, #c);                       \
			w->bad = __LINE__;                                     \
			return NULL;                                           \
		}                                                              \
	} while (0)

/* Submits one task and registers its exactly-once callback. */
static px_future *w_submit(struct waiter *w, int kind, int64_t v, int64_t ns,
			   int64_t timeout_ns)
{
	px_future *f = NULL;
	if (w->nf >= MAXF)
		return NULL;
	if (submit_op(w->ex, kind, v, ns, timeout_ns, &f))
		return NULL;
	if (px_future_on_done(f, count_cb, &w->fired[w->nf++])) {
		px_future_release(f);
		return NULL;
	}
	return f;
}

static void *waiter_main(void *arg)
{
	struct waiter *w = arg;
	for (int it = 0; it < w->iters; it++) {
		int kind = (int)(rnd(&w->seed) % K_KINDS);
		int64_t v = (int64_t)w->id * 1000000 + it;
		int64_t r = -1;
		px_future *f;
		switch (kind) {
		case K_VALUE:
			f = w_submit(w, T_SPIN, v, (int64_t)(rnd(&w->seed) % 3) * 100000, 0);
			WCHECK(f);
			WCHECK(px_future_get_i64(f, 20 * PX_SEC, &r) == 0);
			WCHECK(r == 2 * v + 1);
			break;
		case K_CRASH:
			f = w_submit(w, T_SEGV, v, 0, 0);
			WCHECK(f);
			WCHECK(px_future_wait(f, 20 * PX_SEC) == 0);
			WCHECK(px_future_error(f) == PX_EWORKERDIED);
			break;
		case K_TIMEOUT:
			f = w_submit(w, T_SPIN, v, 2 * PX_SEC, 20 * PX_MSEC);
			WCHECK(f);
			WCHECK(px_future_wait(f, 20 * PX_SEC) == 0);
			WCHECK(px_future_error(f) == -ETIMEDOUT);
			break;
		case K_CANCEL: {
			f = w_submit(w, T_SPIN, v, 2 * PX_MSEC, 0);
			WCHECK(f);
			usleep((useconds_t)(rnd(&w->seed) % 3000));
			int c = px_future_cancel(f, PX_CANCEL_RUNNING);
			WCHECK(c == 0 || c == -EBUSY);
			WCHECK(px_future_wait(f, 20 * PX_SEC) == 0);
			if (c == 0) {
				WCHECK(px_future_error(f) == -ECANCELED);
			} else { /* -EBUSY: it had finished, with its value */
				WCHECK(px_future_get_i64(f, 0, &r) == 0);
				WCHECK(r == 2 * v + 1);
			}
			break;
		}
		default: { /* K_BATCH: several at once, px_wait in a mode */
			px_future *fs[BATCH];
			for (int i = 0; i < BATCH; i++) {
				fs[i] = w_submit(w, T_SPIN, v * 10 + i,
						 (int64_t)(rnd(&w->seed) % 4) * 50000, 0);
				WCHECK(fs[i]);
			}
			px_wait_mode mode = rnd(&w->seed) % 2 ? PX_ALL_COMPLETED
							      : PX_FIRST_COMPLETED;
			for (;;) {
				bool done[BATCH];
				int n = px_wait(fs, BATCH, mode, 20 * PX_SEC, done);
				WCHECK(n >= 1);
				if (n == BATCH)
					break;
			}
			for (int i = 0; i < BATCH; i++) {
				WCHECK(px_future_get_i64(fs[i], 0, &r) == 0);
				WCHECK(r == 2 * (v * 10 + i) + 1);
				px_future_release(fs[i]);
			}
			f = NULL;
			break;
		}
		}
		px_future_release(f);
		w->outcomes[kind]++;
	}
	return NULL;
}

static int case_many_waiters_mixed(void)
{
	enum { NT = 4 };
	px_executor *ex = open_ex("process:workers=2,cancel_grace_ms=0");
	static struct waiter ws[NT];
	pthread_t th[NT];
	int iters = (int)test_scaled(120);
	for (int i = 0; i < NT; i++) {
		memset(&ws[i], 0, sizeof(ws[i]));
		ws[i] = (struct waiter){ .ex = ex, .seed = 0x9e3779b97f4a7c15ull * (i + 1),
					 .iters = iters, .id = i };
		CASE_CHECK(pthread_create(&th[i], NULL, waiter_main, &ws[i]) == 0);
	}
	for (int i = 0; i < NT; i++)
		CASE_CHECK(pthread_join(th[i], NULL) == 0);
	int total = 0, kinds[K_KINDS] = { 0 };
	for (int i = 0; i < NT; i++) {
		CASE_CHECK(ws[i].bad == 0);
		total += ws[i].nf;
		for (int k = 0; k < K_KINDS; k++)
			kinds[k] += ws[i].outcomes[k];
	}
	/* Every callback exactly once: wait for stragglers (a callback runs
	 * just after the outcome is published), then count. */
	for (int64_t t0 = test_now_ns();;) {
		bool all = true;
		for (int i = 0; i < NT && all; i++)
			for (int j = 0; j < ws[i].nf; j++)
				if (atomic_load(&ws[i].fired[j]) != 1)
					all = false;
		if (all)
			break;
		CASE_CHECK(test_now_ns() - t0 < 10 * PX_SEC);
		usleep(1000);
	}
	for (int i = 0; i < NT; i++)
		for (int j = 0; j < ws[i].nf; j++)
			CASE_CHECK(atomic_load(&ws[i].fired[j]) == 1);
	/* Each kind came up, and the pool counted every task once. */
	for (int k = 0; k < K_KINDS; k++)
		CASE_CHECK(kinds[k] > 0 || iters < 40);
	px_executor_stats st;
	CASE_CHECK(px_executor_stats_get(ex, &st) == 0);
	CASE_CHECK(st.submitted == (uint64_t)total);
	CASE_CHECK(st.completed + st.failed + st.cancelled == (uint64_t)total);
	px_executor_destroy(ex);
	CASE_CHECK(test_no_children());
	return 0;
}

/* Destroy racing waiters ---------------------------------------------------------- */

struct dwaiter {
	px_future **fs;
	int n, first;
	int bad;
};

static void *dwaiter_main(void *arg)
{
	struct dwaiter *d = arg;
	for (int i = 0; i < d->n; i++) {
		px_future *f = d->fs[i];
		/* Short waits, again and again: the helper's deadline path
		 * and its re-entry race the shutdown. */
		int64_t t0 = test_now_ns();
		while (px_future_wait(f, 300 * 1000) == -ETIMEDOUT) {
			if (test_now_ns() - t0 > 20 * PX_SEC) {
				d->bad = __LINE__;
				return NULL;
			}
		}
		int64_t r = -1;
		if (px_future_get_i64(f, 0, &r) || r != 2 * (d->first + i) + 1) {
			d->bad = __LINE__;
			return NULL;
		}
	}
	return NULL;
}

static int case_destroy_racing_waiters(void)
{
	enum { NT = 3, PER = 12 };
	int rounds = (int)test_scaled(8);
	for (int round = 0; round < rounds; round++) {
		px_executor *ex = open_ex("process:workers=2");
		px_future *fs[NT * PER];
		for (int i = 0; i < NT * PER; i++)
			CASE_CHECK(submit_op(ex, T_SPIN, i, (int64_t)(i % 4) * 300000, 0,
					&fs[i]) == 0);
		struct dwaiter d[NT];
		pthread_t th[NT];
		for (int t = 0; t < NT; t++) {
			d[t] = (struct dwaiter){ .fs = fs + t * PER, .n = PER,
						 .first = t * PER };
			CASE_CHECK(pthread_create(&th[t], NULL, dwaiter_main, &d[t]) == 0);
		}
		usleep((useconds_t)(round * 700));
		px_executor_destroy(ex); /* waits for every task */
		for (int t = 0; t < NT; t++) {
			CASE_CHECK(pthread_join(th[t], NULL) == 0);
			CASE_CHECK(d[t].bad == 0);
		}
		for (int i = 0; i < NT * PER; i++) {
			CASE_CHECK(want_value(fs[i], i) == 0);
			px_future_release(fs[i]);
		}
		CASE_CHECK(test_no_children());
	}
	return 0;
}

/* A done callback on a waiting thread destroys the pool ---------------------------- */

struct dctx {
	px_executor *ex;
	struct where wh;
};

static void destroy_cb(px_future *f, void *arg)
{
	(void)f;
	struct dctx *c = arg;
	c->wh.th = pthread_self();
	atomic_fetch_add(&c->wh.ran, 1);
	px_executor_destroy(c->ex);
}

static int case_destroy_from_callback_on_waiter(void)
{
	int on_waiter = 0;
	main_thread = pthread_self();
	for (int round = 0; round < 6; round++) {
		struct dctx c = { .ex = open_ex("process:workers=2") };
		px_future *f, *g;
		CASE_CHECK(submit_op(c.ex, T_VALUE, 1, 0, 0, &g) == 0);
		CASE_CHECK(submit_op(c.ex, T_SPIN, 2, 20 * PX_MSEC, 0, &f) == 0);
		CASE_CHECK(px_future_on_done(f, destroy_cb, &c) == 0);
		CASE_CHECK(want_value(f, 2) == 0);
		CASE_CHECK(want_value(g, 1) == 0);
		/* The callback has run by the time a waiter that ran it
		 * returns; one the collector ran may still be running. */
		for (int64_t t0 = test_now_ns(); !atomic_load(&c.wh.ran);) {
			CASE_CHECK(test_now_ns() - t0 < 20 * PX_SEC);
			usleep(1000);
		}
		CASE_CHECK(atomic_load(&c.wh.ran) == 1);
		on_waiter += pthread_equal(c.wh.th, main_thread) != 0;
		px_future_release(f);
		px_future_release(g);
		for (int64_t t0 = test_now_ns(); !test_no_children();) {
			CASE_CHECK(test_now_ns() - t0 < 20 * PX_SEC);
			usleep(1000);
		}
	}
	/* The waiter watches f's worker for 20 ms: it, not the collector,
	 * takes the reply (all but a rare race with a nap's end). */
	CASE_CHECK(on_waiter >= 3);
	return 0;
}

/* Submits to parked workers, nobody waiting ----------------------------------- */

static void count_once(px_future *f, void *arg)
{
	(void)f;
	atomic_fetch_add((atomic_int *)arg, 1);
}

/*
 * Each task goes to a worker that has parked (a pause before each submit),
 * so each submit claims the worker's reply ring until its wake-up returns.
 * Nobody waits on the futures: each reply is taken by the submitter inside
 * px_executor_submit() or, once the claim is let go, by the collector (the
 * doorbell). A reply lost between the two never completes its future.
 * Every 10th task crashes its worker, whose death the collector handles
 * while a submit may hold the claim.
 */
static int case_idle_submits_unwaited(void)
{
	enum { N = 120 };
	px_executor *ex = open_ex("process:workers=2");
	px_future *fs[N];
	static atomic_int fired[N];
	for (int i = 0; i < N; i++) {
		usleep(300 + (useconds_t)(i % 3) * 700);
		CASE_CHECK(submit_op(ex, i % 10 == 9 ? T_SEGV : T_VALUE, i, 0, 0, &fs[i]) == 0);
		CASE_CHECK(px_future_on_done(fs[i], count_once, &fired[i]) == 0);
	}
	for (int i = 0; i < N; i++) {
		/* Polled, not waited for: wait_help would take the reply. */
		for (int64_t t0 = test_now_ns(); !px_future_is_done(fs[i]);) {
			CASE_CHECK(test_now_ns() - t0 < 20 * PX_SEC);
			usleep(200);
		}
		if (i % 10 == 9) {
			CASE_CHECK(px_future_error(fs[i]) == PX_EWORKERDIED);
		} else {
			int64_t r = -1;
			CASE_CHECK(px_future_get_i64(fs[i], 0, &r) == 0);
			CASE_CHECK(r == 2 * i + 1);
		}
	}
	/* A callback runs once its future is done, on the completing
	 * thread, which may still be in it: allow it a moment. */
	for (int64_t t0 = test_now_ns();;) {
		int all = 1;
		for (int i = 0; i < N; i++)
			CASE_CHECK(atomic_load(&fired[i]) <= 1);
		for (int i = 0; i < N && all; i++)
			all = atomic_load(&fired[i]) == 1;
		if (all)
			break;
		CASE_CHECK(test_now_ns() - t0 < 20 * PX_SEC);
		usleep(1000);
	}
	px_executor_stats st;
	CASE_CHECK(px_executor_stats_get(ex, &st) == 0);
	CASE_CHECK(st.completed == N - N / 10);
	CASE_CHECK(st.failed == N / 10);
	for (int i = 0; i < N; i++)
		px_future_release(fs[i]);
	px_executor_destroy(ex);
	CASE_CHECK(test_no_children());
	return 0;
}

/*
 * A submit that hands its task to an idle worker takes that task's reply
 * itself, and no other: a done callback of another thread's future never
 * runs inside px_executor_submit(), where nothing pins the pool (such a
 * callback that destroyed the pool hung it). The window: the submitter is
 * preempted right after it woke the worker, while the worker, streaming,
 * takes another thread's task and replies to both. syscall() below (this
 * program's, which the library's futex calls resolve to) holds the
 * submitter there: after its FUTEX_WAKE it lets thread B submit g (with a
 * callback) and sleeps 20 ms. Before the fix g's callback ran on the
 * submitter in the first round.
 */
static _Thread_local int tl_hold_after_wake;
static _Thread_local int tl_in_submit;
static atomic_int b_go, b_done, cb_in_submit, cb_ran;

static void hold_submitter(void)
{
	tl_hold_after_wake = 0;
	atomic_store(&b_go, 1);
	while (!atomic_load(&b_done))
		usleep(50);
	usleep(20000);
}

long syscall(long n, ...)
{
	static _Atomic(long (*)(long, ...)) real_fn;
	long (*real)(long, ...) = atomic_load_explicit(&real_fn, memory_order_relaxed);
	if (!real) {
		real = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
		atomic_store_explicit(&real_fn, real, memory_order_relaxed);
	}
	va_list ap;
	va_start(ap, n);
	long a[6];
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	long r = real(n, a[0], a[1], a[2], a[3], a[4], a[5]);
	if (tl_hold_after_wake && n == SYS_futex && (a[1] & 127) == FUTEX_WAKE)
		hold_submitter();
	return r;
}

static void count_in_submit(px_future *f, void *arg)
{
	(void)f;
	(void)arg;
	if (tl_in_submit)
		atomic_store(&cb_in_submit, 1);
	atomic_fetch_add(&cb_ran, 1);
}

struct b_ctx {
	px_executor *ex;
	px_future *g;
	atomic_int stop;
};

static void *b_submits(void *arg)
{
	struct b_ctx *b = arg;
	while (!atomic_load(&b->stop)) {
		if (!atomic_exchange(&b_go, 0)) {
			usleep(20);
			continue;
		}
		b->g = NULL;
		if (submit_op(b->ex, T_VALUE, 7, 0, 0, &b->g) == 0 &&
		    px_future_on_done(b->g, count_in_submit, NULL) != 0) {
			px_future_release(b->g);
			b->g = NULL;
		}
		atomic_store(&b_done, 1);
	}
	return NULL;
}

static int case_no_foreign_callback_in_submit(void)
{
	px_executor *ex = open_ex("process:workers=1,spin_us=0");
	struct b_ctx b = { .ex = ex };
	pthread_t bt;
	CASE_CHECK(pthread_create(&bt, NULL, b_submits, &b) == 0);
	int gs = 0;
	for (int round = 0; round < 20; round++) {
		px_future *t;
		/* Two replies close together: the worker streams, so a
		 * submit may add to its window while it holds f. */
		for (int k = 0; k < 2; k++) {
			CASE_CHECK(submit_op(ex, T_VALUE, k, 0, 0, &t) == 0);
			CASE_CHECK(px_future_wait(t, 10 * PX_SEC) == 0);
			px_future_release(t);
		}
		test_spin_ns(40 * 1000); /* it parks */
		atomic_store(&b_done, 0);
		px_future *f;
		tl_in_submit = 1;
		tl_hold_after_wake = 1;
		int r = submit_op(ex, T_VALUE, 3, 0, 0, &f);
		tl_in_submit = 0;
		if (tl_hold_after_wake) { /* it woke nobody: B goes now */
			tl_hold_after_wake = 0;
			atomic_store(&b_go, 1);
		}
		while (!atomic_load(&b_done))
			usleep(50);
		CASE_CHECK(r == 0);
		CASE_CHECK(!atomic_load(&cb_in_submit));
		CASE_CHECK(px_future_wait(f, 10 * PX_SEC) == 0);
		px_future_release(f);
		if (b.g) {
			gs++;
			CASE_CHECK(px_future_wait(b.g, 10 * PX_SEC) == 0);
			px_future_release(b.g);
		}
	}
	atomic_store(&b.stop, 1);
	pthread_join(bt, NULL);
	/* Each callback once, on whichever thread completed g. */
	for (int64_t t0 = test_now_ns(); atomic_load(&cb_ran) < gs;) {
		CASE_CHECK(test_now_ns() - t0 < 10 * PX_SEC);
		usleep(1000);
	}
	CASE_CHECK(atomic_load(&cb_ran) == gs);
	px_executor_destroy(ex);
	CASE_CHECK(test_no_children());
	return 0;
}

/* The runner ---------------------------------------------------------------------- */

static const struct test_case_child cases[] = {
	{ "waiter_completes_while_collector_blocked",
	  case_waiter_completes_while_collector_blocked, 120 },
	{ "wait_any_across_workers", case_wait_any_across_workers, 120 },
	{ "many_waiters_mixed", case_many_waiters_mixed, 120 },
	{ "destroy_racing_waiters", case_destroy_racing_waiters, 120 },
	{ "destroy_from_callback_on_waiter", case_destroy_from_callback_on_waiter, 120 },
	{ "idle_submits_unwaited", case_idle_submits_unwaited, 120 },
	{ "no_foreign_callback_in_submit", case_no_foreign_callback_in_submit, 120 },
};

int main(int argc, char **argv)
{
	unsetenv("PAREX_EXECUTOR");
	unsetenv("PAREX_CONFIG");
	return test_run_cases("procpool_help", cases, sizeof(cases) / sizeof(cases[0]),
			      argc, argv);
}
