/*
 * tests/test_core_regressions.c - scenarios that once broke the core (lost
 * tasks with a queue of one, a shutdown deadlock, the GIL lost by nested
 * blocking sections, claimed tasks held hostage by a blocked worker, destroy
 * from a done callback, racing promise completions, an iterator closed from
 * a callback, map deadlines, px_wait's count). Each runs in a forked child
 * with a 10 s alarm and reports through its exit status: 0 sound, 1 wrong
 * result, SIGALRM a hang, anything else a crash.
 * Usage: test_core_regressions [NAME]
 */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <parex/executor.h>

static px_executor *open_ex(const char *spec)
{
	px_executor *ex = NULL;
	char err[256];
	if (px_executor_open(&ex, spec, err, sizeof(err))) {
		fprintf(stderr, "open %s: %s\n", spec, err);
		exit(2);
	}
	return ex;
}

/* 1: a task shuts its pool down while the main thread is in shutdown(wait). */
static atomic_int main_in_shutdown;
static int shutdown_task(px_task *t, const void *a, size_t l)
{
	(void)a; (void)l;
	while (!atomic_load(&main_in_shutdown))
		usleep(1000);
	px_task_sleep(t, 50 * 1000000); /* main now holds shut_mu, joining */
	px_executor_shutdown(t ? *(px_executor **)a : NULL, false, false);
	return 0;
}
static int bug_shutdown_deadlock(void)
{
	px_executor *ex = open_ex("thread:workers=2");
	px_future *f;
	if (px_executor_submit(ex, shutdown_task, &ex, sizeof(ex), NULL, &f))
		return 2;
	usleep(10000);
	atomic_store(&main_in_shutdown, 1);
	px_executor_shutdown(ex, true, false);
	px_future_release(f);
	px_executor_destroy(ex);
	return 0;
}

/* 2: nested blocking sections under the GIL lose the token. */
static atomic_int inside, overlap;
static int nested_task(px_task *t, const void *a, size_t l)
{
	(void)a; (void)l;
	px_task_blocking_begin(t);
	px_task_sleep(t, 100000); /* nested blocking section */
	px_task_blocking_end(t);
	/* Now computing: must hold the GIL. */
	for (int k = 0; k < 20; k++) {
		if (atomic_fetch_add(&inside, 1) != 0)
			atomic_store(&overlap, 1);
		volatile uint64_t x = 0;
		for (int i = 0; i < 20000; i++)
			x += (uint64_t)i;
		atomic_fetch_sub(&inside, 1);
	}
	return 0;
}
static int bug_gil_nested(void)
{
	px_executor *ex = open_ex("thread:workers=2,gil=1");
	px_future *fs[40];
	for (int i = 0; i < 40; i++)
		if (px_executor_submit(ex, nested_task, NULL, 0, NULL, &fs[i]))
			return 2;
	for (int i = 0; i < 40; i++) {
		px_future_wait(fs[i], PX_FOREVER);
		px_future_release(fs[i]);
	}
	px_executor_destroy(ex);
	if (atomic_load(&overlap))
		fprintf(stderr, "two tasks computed at once under gil=1\n");
	return atomic_load(&overlap) ? 1 : 0;
}

/* 3: a task waits on a task queued right after it; the batch pop holds the
 * second hostage in the same worker while the other worker idles. */
static int waiter_task(px_task *t, const void *a, size_t l)
{
	(void)t; (void)l;
	px_future *p = *(px_future *const *)a;
	px_future_wait(p, PX_FOREVER);
	return 0;
}
static int setter_task(px_task *t, const void *a, size_t l)
{
	(void)t; (void)l;
	px_promise_set_i64(*(px_future *const *)a, 1);
	return 0;
}
static int gate_task(px_task *t, const void *a, size_t l)
{
	(void)t; (void)l;
	px_future_wait(*(px_future *const *)a, PX_FOREVER);
	return 0;
}
static int bug_batch_hostage(void)
{
	px_executor *ex = open_ex("thread:workers=2");
	enum { PAIRS = 200 };
	px_future *gate, *ps[PAIRS], *fs[2 * PAIRS + 2];
	px_promise_create(&gate);
	/* Both workers blocked on the gate, so the queue fills up first and
	 * the workers then pop in batches. */
	px_executor_submit(ex, gate_task, &gate, sizeof(gate), NULL, &fs[0]);
	px_executor_submit(ex, gate_task, &gate, sizeof(gate), NULL, &fs[1]);
	usleep(20000);
	for (int i = 0; i < PAIRS; i++) {
		px_promise_create(&ps[i]);
		px_executor_submit(ex, waiter_task, &ps[i], sizeof(ps[i]), NULL,
				   &fs[2 + 2 * i]);
		px_executor_submit(ex, setter_task, &ps[i], sizeof(ps[i]), NULL,
				   &fs[3 + 2 * i]);
	}
	px_promise_set_i64(gate, 0);
	for (int i = 0; i < 2 * PAIRS + 2; i++) {
		px_future_wait(fs[i], PX_FOREVER);
		px_future_release(fs[i]);
	}
	px_executor_destroy(ex);
	return 0;
}

/* 4: threads that only allocate futures never register the cache's exit
 * hook, so the batch they pulled from the global list leaks. */
static void *alloc_one(void *p)
{
	px_promise_create((px_future **)p);
	return NULL;
}
static void *alloc_release_many(void *p)
{
	(void)p;
	px_future *fs[256];
	for (int i = 0; i < 256; i++)
		px_promise_create(&fs[i]);
	for (int i = 0; i < 256; i++)
		px_future_release(fs[i]);
	return NULL;
}
static int bug_cache_leak(void)
{
	size_t before = 0;
	for (int round = 0; round < 400; round++) {
		pthread_t th;
		px_future *f = NULL;
		pthread_create(&th, NULL, alloc_release_many, NULL);
		pthread_join(th, NULL); /* its exit spills 256 to the global list */
		pthread_create(&th, NULL, alloc_one, &f);
		pthread_join(th, NULL); /* pulls that batch, takes 1, exits */
		px_future_release(f);
		if (round == 20)
			before = mallinfo2().uordblks;
	}
	size_t after = mallinfo2().uordblks;
	fprintf(stderr, "heap in use grew by %zu bytes over 380 rounds\n",
		after - before);
	return after - before > (4u << 20) ? 1 : 0;
}

/* 5: two concurrent completions of one promise: the loser's result copy
 * lands in (or frees) the winner's published result. */
static px_future *race_f;
static pthread_barrier_t bar;
static atomic_int wins[2];
static void *setter(void *p)
{
	int id = (int)(intptr_t)p;
	unsigned char buf[64];
	memset(buf, 'a' + id, sizeof(buf));
	for (;;) {
		pthread_barrier_wait(&bar);
		if (!race_f)
			return NULL;
		if (px_promise_set_result(race_f, buf, sizeof(buf)) == 0)
			atomic_store(&wins[id], 1);
		pthread_barrier_wait(&bar);
	}
}
static int bug_double_set(void)
{
	int bad = 0;
	pthread_barrier_init(&bar, NULL, 3);
	pthread_t a, b;
	pthread_create(&a, NULL, setter, (void *)0);
	pthread_create(&b, NULL, setter, (void *)1);
	for (int i = 0; i < 5000 && !bad; i++) {
		px_promise_create(&race_f);
		atomic_store(&wins[0], 0);
		atomic_store(&wins[1], 0);
		pthread_barrier_wait(&bar);
		pthread_barrier_wait(&bar);
		size_t len;
		const unsigned char *r = px_future_result(race_f, &len);
		int w = atomic_load(&wins[0]) ? 0 : 1;
		if (atomic_load(&wins[0]) + atomic_load(&wins[1]) != 1 || !r ||
		    len != 64 || r[0] != 'a' + w || r[63] != 'a' + w) {
			fprintf(stderr, "round %d: winner %c, result %c..%c\n", i,
				'a' + w, r ? r[0] : '?', r ? r[63] : '?');
			bad = 1;
		}
		px_future_release(race_f);
	}
	race_f = NULL;
	pthread_barrier_wait(&bar);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	return bad;
}

/* 6: cancel_fn set before px_promise_start, read by a canceller that saw
 * RUNNING: the start CAS has no release, so TSan sees a race. */
static int stop_fn(px_future *f, void *arg)
{
	(void)arg;
	return px_promise_set_cancelled(f);
}
static px_future *cf;
static void *canceller(void *p)
{
	(void)p;
	while (px_future_state_get(cf) != PX_FUTURE_RUNNING)
		;
	return (void *)(intptr_t)px_future_cancel(cf, PX_CANCEL_RUNNING);
}
static int bug_cancel_fn_publish(void)
{
	for (int i = 0; i < 200; i++) {
		px_promise_create(&cf);
		pthread_t th;
		pthread_create(&th, NULL, canceller, NULL);
		usleep(100);
		px_promise_on_cancel(cf, stop_fn, NULL);
		px_promise_start(cf);
		void *r;
		pthread_join(th, &r);
		if ((intptr_t)r != 0)
			return 1;
		px_future_release(cf);
	}
	return 0;
}

/* 7: px_future_wait saw f done, but px_as_completed_next(0) does not
 * yield it until f's earlier done callbacks have run. */
static void slow_cb(px_future *f, void *arg)
{
	(void)f; (void)arg;
	usleep(50000);
}
static void *complete_later(void *p)
{
	usleep(10000);
	px_promise_set_i64(p, 7);
	return NULL;
}
static int bug_ac_visible(void)
{
	px_future *f;
	px_promise_create(&f);
	px_future_on_done(f, slow_cb, NULL);
	px_as_completed *it;
	px_as_completed_open(&it, &f, 1);
	pthread_t th;
	pthread_create(&th, NULL, complete_later, f);
	px_future_wait(f, PX_FOREVER);
	px_future *out = NULL;
	int r = px_as_completed_next(it, 0, &out);
	pthread_join(th, NULL);
	px_as_completed_close(it);
	px_future_release(f);
	if (r)
		fprintf(stderr, "next(0) after a visible completion: %d\n", r);
	return r ? 1 : 0;
}

/* 8: a done callback closes an iterator over its own future. */
static px_as_completed *cb_it;
static void close_cb(px_future *f, void *arg)
{
	(void)f; (void)arg;
	px_as_completed_close(cb_it);
}
static int bug_close_in_cb(void)
{
	px_future *f;
	px_promise_create(&f);
	px_future_on_done(f, close_cb, NULL);
	px_as_completed_open(&cb_it, &f, 1);
	px_promise_set_i64(f, 1);
	px_future_release(f);
	return 0;
}

/* 9: map's timeout does not bound a submit blocked on a full queue. */
static atomic_int ran;
static int slow_rec(px_task *t, const void *a, size_t l)
{
	(void)a; (void)l;
	atomic_fetch_add(&ran, 1);
	px_task_sleep(t, 50 * 1000000);
	return 0;
}
static int bug_map_timeout(void)
{
	px_executor *ex = open_ex("thread:workers=1,queue=2");
	int args[10] = { 0 }, errs[10];
	px_map_opts o = { .chunk = 1, .timeout_ns = 20 * 1000000,
			  .errors = errs };
	int r = px_executor_map(ex, slow_rec, args, sizeof(int), 10, NULL, 0, &o);
	px_executor_destroy(ex);
	fprintf(stderr, "map returned %d after %d of 10 records ran\n", r,
		atomic_load(&ran));
	return atomic_load(&ran) > 4 ? 1 : 0;
}

/* 10: px_wait's count and done[] come from two separate scans. */
static px_future *wf[64];
static atomic_int wgo;
static void *completer(void *p)
{
	(void)p;
	while (!atomic_load(&wgo))
		;
	for (int i = 0; i < 64; i++)
		px_promise_set_i64(wf[i], i);
	return NULL;
}
static int bug_wait_count(void)
{
	int bad = 0;
	for (int round = 0; round < 3000 && !bad; round++) {
		for (int i = 0; i < 64; i++)
			px_promise_create(&wf[i]);
		atomic_store(&wgo, 0);
		pthread_t th;
		pthread_create(&th, NULL, completer, NULL);
		atomic_store(&wgo, 1);
		bool done[64];
		int r = px_wait(wf, 64, PX_FIRST_COMPLETED, PX_FOREVER, done);
		int cnt = 0;
		for (int i = 0; i < 64; i++)
			cnt += done[i];
		if (r != cnt) {
			fprintf(stderr, "px_wait returned %d, done[] has %d\n", r, cnt);
			bad = 1;
		}
		pthread_join(th, NULL);
		for (int i = 0; i < 64; i++)
			px_future_release(wf[i]);
	}
	return bad;
}

/* 11: queue=1: a producer takes the slot its predecessor just published. */
static atomic_int q1ran;
static int count_task(px_task *t, const void *a, size_t l)
{
	(void)t; (void)a; (void)l;
	atomic_fetch_add(&q1ran, 1);
	return 0;
}
static int bug_queue1(void)
{
	px_executor *ex = open_ex("thread:workers=1,queue=1");
	px_future *g, *fs[100];
	px_promise_create(&g);
	px_future *gf;
	px_executor_submit(ex, gate_task, &g, sizeof(g), NULL, &gf);
	usleep(20000); /* the worker is inside gate_task */
	int accepted = 0;
	px_submit_opts nowait = { .flags = PX_SUBMIT_NOWAIT };
	for (int i = 0; i < 100; i++)
		if (px_executor_submit(ex, count_task, NULL, 0, &nowait, &fs[accepted]) == 0)
			accepted++;
	fprintf(stderr, "queue=1 with a busy worker accepted %d of 100\n", accepted);
	return accepted > 1 ? 1 : 0;
}

/* 12: the last future's done callback destroys the executor; it runs in
 * a worker, so destroy skips the join and frees the pool under it. */
static void destroy_cb(px_future *f, void *arg)
{
	(void)f;
	px_executor_destroy(arg);
}
static int bug_destroy_in_cb(void)
{
	px_executor *ex = open_ex("thread:workers=2");
	px_future *g, *gf, *f;
	px_promise_create(&g);
	px_executor_submit(ex, gate_task, &g, sizeof(g), NULL, &gf);
	px_executor_submit(ex, count_task, NULL, 0, NULL, &f);
	px_future_wait(f, PX_FOREVER);
	px_future_on_done(gf, destroy_cb, ex); /* runs in the worker */
	px_promise_set_i64(g, 0);
	px_future_wait(gf, PX_FOREVER);
	usleep(100000);
	return 0;
}

static const struct {
	const char *name;
	int (*fn)(void);
} cases[] = {
	{ "shutdown_deadlock", bug_shutdown_deadlock },
	{ "gil_nested", bug_gil_nested },
	{ "batch_hostage", bug_batch_hostage },
	{ "cache_leak", bug_cache_leak },
	{ "double_set", bug_double_set },
	{ "cancel_fn_publish", bug_cancel_fn_publish },
	{ "ac_visible", bug_ac_visible },
	{ "close_in_cb", bug_close_in_cb },
	{ "map_timeout", bug_map_timeout },
	{ "wait_count", bug_wait_count },
	{ "queue1_overwrite", bug_queue1 },
	{ "destroy_in_cb", bug_destroy_in_cb },
};

int main(int argc, char **argv)
{
	int fails = 0, runs = 0;
	unsetenv("PAREX_EXECUTOR");
	unsetenv("PAREX_CONFIG");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (argc > 1 && strcmp(argv[1], cases[i].name))
			continue;
		fflush(NULL);
		pid_t pid = fork();
		if (pid == 0) {
			alarm(10);
			_exit(cases[i].fn());
		}
		int st;
		waitpid(pid, &st, 0);
		const char *v = WIFEXITED(st) && WEXITSTATUS(st) == 0 ? "sound"
				: WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM ? "HANG"
				: "FAIL";
		printf("%-20s %s (status 0x%x)\n", cases[i].name, v, st);
		fails += strcmp(v, "sound") != 0;
		runs++;
	}
	printf("%d passed, %d failed\n", runs - fails, fails);
	return fails ? 1 : 0;
}
