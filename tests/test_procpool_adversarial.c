/*
 * tests/test_procpool_adversarial.c - the process pool under hostile
 * conditions: an initializer that crashes in a replacement, a program that
 * ignores SIGCHLD, a fork server killed from outside, done callbacks that
 * submit into a full queue, cancels and timeouts racing completion and
 * crashes, a timed task dispatched as the collector parks, many submitters
 * on tiny queues, recycling under crashes, tasks
 * that fork, exit or close every descriptor, two pools at once, a pool in a
 * child of a pool's parent, the arena running dry and frees of pointers the
 * pool never gave out.
 *
 * Each case runs in a forked child under a 60 s alarm and reports through
 * its exit status (0 sound, the failing line otherwise, SIGALRM a hang), so
 * one hang cannot stall the others and cmocka asserts stay in the parent.
 * Usage: test_procpool_adversarial [CASE]
 */
#include <dlfcn.h>
#include <errno.h>
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
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <parex/executor.h>

#include "test_util.h"

/* Tasks ------------------------------------------------------------------ */

enum { T_VALUE, T_SEGV, T_SPIN, T_SPIN_SEGV, T_EXIT0, T_FORK, T_CLOSEFDS,
       T_BLOCKALL, T_PPID };

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
	switch (o.kind) {
	case T_SEGV:
		test_segfault(NULL);
		break;
	case T_SPIN:
		test_spin_ns(o.ns);
		break;
	case T_SPIN_SEGV:
		test_spin_ns(o.ns);
		test_segfault(NULL);
		break;
	case T_EXIT0:
		_exit(0);
	case T_FORK: {
		pid_t c = fork();
		if (c < 0)
			return -errno;
		if (c == 0)
			_exit(7);
		int st;
		if (waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st) != 7)
			return -ECHILD;
		break;
	}
	case T_CLOSEFDS:
		for (int fd = 0; fd < 1024; fd++)
			close(fd);
		break;
	case T_BLOCKALL: {
		sigset_t all;
		sigfillset(&all);
		sigprocmask(SIG_BLOCK, &all, NULL);
		test_spin_ns(o.ns);
		break;
	}
	case T_PPID:
		o.v = getppid();
		break;
	}
	int64_t r = 2 * o.v + 1;
	return px_task_return(t, &r, sizeof(r));
}

static int submit_op(px_executor *ex, int kind, int64_t v, int64_t ns,
		     const px_submit_opts *opts, px_future **out)
{
	struct op o = { .kind = kind, .v = v, .ns = ns };
	return px_executor_submit(ex, op_task, &o, sizeof(o), opts, out);
}

/* 0 if f finished in time with value 2v+1. */
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

/* Initializer ------------------------------------------------------------- */

static atomic_int *init_calls; /* shared mapping made before the pool */

static int init_crash_after_first(int id, void *arg)
{
	(void)id;
	(void)arg;
	if (atomic_fetch_add(init_calls, 1) >= *(int *)arg)
		test_segfault(NULL);
	return 0;
}

/* A replacement whose initializer crashes retires its slot, like one whose
 * initializer returns an error; it used to be respawned forever, and the
 * tasks it was handed went back to the queue each time, pending forever. */
static int case_init_crash_in_replacement(void)
{
	init_calls = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
			  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CASE_CHECK(init_calls != MAP_FAILED);
	static int first = 1;
	px_config *cfg;
	CASE_CHECK(px_config_create(&cfg) == 0);
	CASE_CHECK(px_config_apply(cfg, "process:workers=1", NULL) == 0);
	px_config_set_initializer(cfg, init_crash_after_first, &first);
	px_executor *ex;
	CASE_CHECK(px_executor_create(&ex, cfg) == 0);
	px_config_destroy(cfg);
	px_future *a, *b;
	CASE_CHECK(submit_op(ex, T_SEGV, 0, 0, NULL, &a) == 0);
	CASE_CHECK(px_future_wait(a, 20 * PX_SEC) == 0);
	CASE_CHECK(px_future_error(a) == PX_EWORKERDIED);
	int r = submit_op(ex, T_VALUE, 1, 0, NULL, &b);
	CASE_CHECK(r == 0 || r == PX_ESHUTDOWN);
	if (r == 0) {
		CASE_CHECK(px_future_wait(b, 20 * PX_SEC) == 0);
		CASE_CHECK(px_future_error(b) == PX_EWORKERDIED);
		px_future_release(b);
	}
	px_future_release(a);
	CASE_CHECK(submit_op(ex, T_VALUE, 1, 0, NULL, &b) == PX_ESHUTDOWN);
	px_executor_stats st;
	px_executor_stats_get(ex, &st);
	CASE_CHECK(st.workers == 0);
	px_executor_destroy(ex);
	CASE_CHECK(atomic_load(init_calls) == 2);
	CASE_CHECK(test_no_children());
	return 0;
}

/* SIGCHLD and the fork server ------------------------------------------------ */

/* A program that ignores SIGCHLD (children reaped automatically) still gets
 * crash reports, and destroying one pool does not wait for another pool's
 * fork server. */
static int case_sigchld_ignored(void)
{
	signal(SIGCHLD, SIG_IGN);
	px_executor *a = open_ex("process:workers=1");
	px_executor *b = open_ex("process:workers=1");
	px_future *f;
	CASE_CHECK(submit_op(a, T_SEGV, 0, 0, NULL, &f) == 0);
	CASE_CHECK(px_future_wait(f, 20 * PX_SEC) == 0);
	CASE_CHECK(px_future_error(f) == PX_EWORKERDIED);
	px_future_release(f);
	CASE_CHECK(submit_op(a, T_VALUE, 3, 0, NULL, &f) == 0);
	CASE_CHECK(want_value(f, 3) == 0);
	px_future_release(f);
	px_executor_destroy(a); /* b's server still runs */
	CASE_CHECK(submit_op(b, T_VALUE, 4, 0, NULL, &f) == 0);
	CASE_CHECK(want_value(f, 4) == 0);
	px_future_release(f);
	px_executor_destroy(b);
	return 0;
}

/* The fork server killed from outside: what the pool holds fails, later
 * submits are refused, destroy returns. */
static int case_forkserver_killed(bool ignore_sigchld)
{
	if (ignore_sigchld)
		signal(SIGCHLD, SIG_IGN);
	px_executor *ex = open_ex("process:workers=2");
	px_future *f;
	CASE_CHECK(submit_op(ex, T_PPID, 0, 0, NULL, &f) == 0);
	int64_t v;
	CASE_CHECK(px_future_get_i64(f, 20 * PX_SEC, &v) == 0);
	px_future_release(f);
	pid_t server = (pid_t)((v - 1) / 2);
	CASE_CHECK(submit_op(ex, T_SPIN, 0, 30 * PX_SEC, NULL, &f) == 0);
	CASE_CHECK(kill(server, SIGKILL) == 0);
	CASE_CHECK(px_future_wait(f, 20 * PX_SEC) == 0);
	CASE_CHECK(px_future_error(f) == PX_EWORKERDIED);
	px_future_release(f);
	CASE_CHECK(submit_op(ex, T_VALUE, 0, 0, NULL, &f) == PX_ESHUTDOWN);
	px_executor_destroy(ex);
	if (!ignore_sigchld)
		CASE_CHECK(test_no_children());
	return 0;
}

static int case_forkserver_killed_plain(void)
{
	return case_forkserver_killed(false);
}

static int case_forkserver_killed_sigign(void)
{
	return case_forkserver_killed(true);
}

/* Done callbacks that submit ------------------------------------------------- */

struct cb_ctx {
	px_executor *ex;
	px_future *got[4];
	int rc[4];
	atomic_int done;
};

static void submit_more(px_future *f, void *arg)
{
	(void)f;
	struct cb_ctx *c = arg;
	for (int i = 0; i < 4; i++)
		c->rc[i] = submit_op(c->ex, T_VALUE, 10 + i, 0, NULL, &c->got[i]);
	atomic_store(&c->done, 1);
}

/* A done callback runs on the collector, the one thread that frees queue
 * room: a blocking submit there into a full queue must not wait for it. */
static int case_callback_submits_into_full_queue(void)
{
	px_executor *ex = open_ex("process:workers=1,queue=1,block=1");
	struct cb_ctx c = { .ex = ex };
	px_future *a, *b;
	CASE_CHECK(submit_op(ex, T_SPIN, 0, 20 * PX_MSEC, NULL, &a) == 0);
	CASE_CHECK(submit_op(ex, T_SPIN, 1, 200 * PX_MSEC, NULL, &b) == 0);
	CASE_CHECK(px_future_on_done(a, submit_more, &c) == 0);
	CASE_CHECK(want_value(a, 0) == 0);
	CASE_CHECK(want_value(b, 1) == 0);
	for (int64_t t0 = test_now_ns(); !atomic_load(&c.done);) {
		CASE_CHECK(test_now_ns() - t0 < 20 * PX_SEC);
		usleep(1000);
	}
	for (int i = 0; i < 4; i++) {
		CASE_CHECK(c.rc[i] == 0);
		CASE_CHECK(want_value(c.got[i], 10 + i) == 0);
		px_future_release(c.got[i]);
	}
	px_future_release(a);
	px_future_release(b);
	px_executor_destroy(ex);
	return 0;
}

static void destroy_pool(px_future *f, void *arg)
{
	(void)f;
	px_executor_destroy(arg);
}

/* The last future's done callback destroys the pool, as it may on the
 * thread pool: the collector it runs on cannot join itself, so it frees
 * the pool when it leaves, once the workers and the server are gone. */
static int case_destroy_from_done_callback(void)
{
	for (int round = 0; round < 5; round++) {
		px_executor *ex = open_ex("process:workers=2");
		px_future *f, *g;
		CASE_CHECK(submit_op(ex, T_VALUE, 1, 0, NULL, &g) == 0);
		CASE_CHECK(submit_op(ex, T_SPIN, 2, 20 * PX_MSEC, NULL, &f) == 0);
		CASE_CHECK(px_future_on_done(f, destroy_pool, ex) == 0);
		CASE_CHECK(want_value(f, 2) == 0);
		CASE_CHECK(want_value(g, 1) == 0);
		px_future_release(f);
		px_future_release(g);
		int64_t t0 = test_now_ns();
		while (!test_no_children()) {
			CASE_CHECK(test_now_ns() - t0 < 20 * PX_SEC);
			usleep(1000);
		}
	}
	return 0;
}

/* Races: cancel and timeout against completion and crashes -------------------- */

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* outcome: 0 value, 1 cancelled, 2 died, 3 timed out */
static int race_run(const char *spec, int kind, bool timed, int *counts)
{
	px_executor *ex = open_ex(spec);
	long n = test_scaled(400);
	uint64_t seed = 0x9e3779b97f4a7c15u;
	for (long i = 0; i < n; i++) {
		px_submit_opts o = { .timeout_ns = timed ? 300 * 1000 : PX_FOREVER };
		int64_t ns = (int64_t)(rnd(&seed) % 600) * 1000;
		px_future *f;
		CASE_CHECK(submit_op(ex, kind, i, ns, &o, &f) == 0);
		if (!timed) {
			test_spin_ns((int64_t)(rnd(&seed) % 700) * 1000);
			int r = px_future_cancel(f, PX_CANCEL_RUNNING);
			CASE_CHECK(r == 0 || r == -EBUSY);
		}
		CASE_CHECK(px_future_wait(f, 20 * PX_SEC) == 0);
		int e = px_future_error(f);
		if (e == 0) {
			CASE_CHECK(want_value(f, i) == 0);
			counts[0]++;
		} else if (e == -ECANCELED) {
			CASE_CHECK(px_future_state_get(f) == PX_FUTURE_CANCELLED);
			counts[1]++;
		} else if (e == PX_EWORKERDIED) {
			counts[2]++;
		} else {
			CASE_CHECK(timed && e == -ETIMEDOUT);
			counts[3]++;
		}
		px_future_release(f);
	}
	px_executor_shutdown(ex, true, false);
	px_executor_stats st;
	px_executor_stats_get(ex, &st);
	CASE_CHECK(st.submitted == (uint64_t)n);
	CASE_CHECK(st.completed == (uint64_t)counts[0]);
	CASE_CHECK(st.cancelled == (uint64_t)counts[1]);
	CASE_CHECK(st.failed == (uint64_t)(counts[2] + counts[3]));
	CASE_CHECK(st.queued == 0 && st.running == 0 && st.workers == 0);
	px_executor_destroy(ex);
	CASE_CHECK(test_no_children());
	return 0;
}

static int case_cancel_running_vs_completion(void)
{
	int c[4] = { 0 };
	int r = race_run("process:workers=2", T_SPIN, false, c);
	CASE_CHECK(c[2] == 0 && c[3] == 0);
	return r;
}

static int case_cancel_running_vs_crash(void)
{
	int c[4] = { 0 };
	int r = race_run("process:workers=2", T_SPIN_SEGV, false, c);
	CASE_CHECK(c[0] == 0 && c[3] == 0);
	return r;
}

static int case_timeout_vs_completion(void)
{
	int c[4] = { 0 };
	int r = race_run("process:workers=2", T_SPIN, true, c);
	CASE_CHECK(c[1] == 0 && c[2] == 0);
	return r;
}

/*
 * A timeout too large to add to the clock means "no deadline", never "kill
 * at once": per task (INT64_MAX - 1 and INT64_MAX ns) and as the pool's
 * default (the largest task_timeout_ms the configuration accepts). Each
 * task runs ~100 ms and succeeds, and no worker is killed for it.
 */
static int case_huge_task_timeout_means_no_deadline(void)
{
	px_executor *ex = open_ex("process:workers=1,task_timeout_ms=31536000000");
	const int64_t timeouts[] = { INT64_MAX - 1, INT64_MAX, 0 /* pool default */ };
	for (int i = 0; i < 3; i++) {
		px_submit_opts o = { .timeout_ns = timeouts[i] };
		px_future *f;
		CASE_CHECK(submit_op(ex, T_SPIN, 10 + i, 100 * PX_MSEC, &o, &f) == 0);
		CASE_CHECK(want_value(f, 10 + i) == 0);
		px_future_release(f);
	}
	px_executor_stats st;
	CASE_CHECK(px_executor_stats_get(ex, &st) == 0);
	CASE_CHECK(st.respawns == 0);
	px_executor_destroy(ex);
	CASE_CHECK(test_no_children());
	return 0;
}

/*
 * A timed task dispatched while the collector is on its way to park (its
 * deadlines computed, its doorbell not yet marked as slept on) is watched
 * at once, not after the collector's longest nap (PP_PARK_MAX_NS, 250 ms).
 * The window is a few instructions wide; clock_gettime() below (this
 * program's, which the library's calls resolve to) holds the collector in
 * it: the first clock read of the collector once armed is the one of an
 * idle round just before park(), after a nap ended with nothing to do.
 * Before the fix every round's 1 ms timeout fired some 250 ms late.
 */
static atomic_int clock_armed, clock_held, clock_released;

typedef int (*clock_fn)(clockid_t, struct timespec *);

int clock_gettime(clockid_t c, struct timespec *ts)
{
	/* Atomic: every thread may look it up at once (same answer). */
	static _Atomic(clock_fn) real_fn;
	clock_fn real = atomic_load_explicit(&real_fn, memory_order_relaxed);
	if (!real) {
		real = (clock_fn)dlsym(RTLD_NEXT, "clock_gettime");
		atomic_store_explicit(&real_fn, real, memory_order_relaxed);
	}
	if (atomic_load_explicit(&clock_armed, memory_order_relaxed)) {
		char name[16] = "";
		prctl(PR_GET_NAME, name);
		if (!strcmp(name, "px-collector") && atomic_exchange(&clock_armed, 0)) {
			atomic_store(&clock_held, 1);
			struct timespec t0, t;
			real(CLOCK_MONOTONIC, &t0);
			do
				real(CLOCK_MONOTONIC, &t);
			while (!atomic_load(&clock_released) &&
			       (t.tv_sec - t0.tv_sec) * PX_SEC + t.tv_nsec - t0.tv_nsec <
				       2 * PX_SEC);
		}
	}
	return real(c, ts);
}

static int case_timed_task_while_collector_parks(void)
{
	px_executor *ex = open_ex("process:workers=1");
	px_submit_opts o = { .timeout_ns = 1 * PX_MSEC };
	for (int i = 0; i < 3; i++) {
		/* Quiet: the replacement worker is up, the collector asleep. */
		px_future *q;
		CASE_CHECK(submit_op(ex, T_VALUE, i, 0, NULL, &q) == 0);
		CASE_CHECK(want_value(q, i) == 0);
		px_future_release(q);
		struct timespec pause = { 0, 5 * PX_MSEC };
		nanosleep(&pause, NULL);
		atomic_store(&clock_released, 0);
		atomic_store(&clock_held, 0);
		atomic_store(&clock_armed, 1);
		int64_t until = test_now_ns() + 2 * PX_SEC;
		while (!atomic_load(&clock_held) && test_now_ns() < until)
			nanosleep(&(struct timespec){ 0, 100000 }, NULL);
		CASE_CHECK(atomic_load(&clock_held));
		px_future *f;
		int64_t t0 = test_now_ns();
		CASE_CHECK(submit_op(ex, T_SPIN, 0, 10 * PX_SEC, &o, &f) == 0);
		atomic_store(&clock_released, 1);
		CASE_CHECK(px_future_wait(f, 5 * PX_SEC) == 0);
		int64_t took = test_now_ns() - t0;
		CASE_CHECK(px_future_error(f) == -ETIMEDOUT);
		px_future_release(f);
		if (took > 150 * PX_MSEC) {
			fprintf(stderr, "round %d: a 1 ms timeout fired after %.1f ms\n",
				i, (double)took / PX_MSEC);
			CASE_CHECK(took <= 150 * PX_MSEC);
		}
	}
	px_executor_destroy(ex);
	CASE_CHECK(test_no_children());
	return 0;
}

/* Many submitters on tiny queues ------------------------------------------------ */

struct sub_ctx {
	px_executor *ex;
	int id, n;
	bool nowait;
	int64_t sum;
	int err;
};

static void *submitter(void *arg)
{
	struct sub_ctx *s = arg;
	px_future *win[8] = { 0 };
	for (int i = 0; i < s->n + 8; i++) {
		px_future **slot = &win[i % 8];
		if (*slot) {
			int64_t v;
			if (px_future_get_i64(*slot, 20 * PX_SEC, &v))
				s->err = 1;
			s->sum += v;
			px_future_release(*slot);
			*slot = NULL;
		}
		if (i >= s->n)
			continue;
		int64_t v = (int64_t)s->id * 1000000 + i;
		px_submit_opts o = { .flags = s->nowait ? PX_SUBMIT_NOWAIT : 0 };
		int r;
		while ((r = submit_op(s->ex, T_VALUE, v, 0, &o, slot)) == -EAGAIN)
			sched_yield();
		if (r)
			s->err = 2;
	}
	return NULL;
}

static int case_many_submitters_tiny_queues(void)
{
	for (int q = 1; q <= 3; q++) {
		for (int blk = 0; blk <= 1; blk++) {
			char spec[96];
			snprintf(spec, sizeof(spec), "process:workers=2,queue=%d,block=%d",
				 q, blk);
			px_executor *ex = open_ex(spec);
			enum { NT = 4 };
			struct sub_ctx s[NT];
			pthread_t th[NT];
			int n = (int)test_scaled(3000);
			int64_t expect = 0;
			for (int k = 0; k < NT; k++) {
				s[k] = (struct sub_ctx){ .ex = ex, .id = k, .n = n,
							 .nowait = !blk && (k & 1) };
				for (int i = 0; i < n; i++)
					expect += 2 * ((int64_t)k * 1000000 + i) + 1;
				CASE_CHECK(pthread_create(&th[k], NULL, submitter, &s[k]) == 0);
			}
			int64_t sum = 0;
			for (int k = 0; k < NT; k++) {
				pthread_join(th[k], NULL);
				CASE_CHECK(s[k].err == 0);
				sum += s[k].sum;
			}
			CASE_CHECK(sum == expect);
			px_executor_shutdown(ex, true, false);
			px_executor_stats st;
			px_executor_stats_get(ex, &st);
			CASE_CHECK(st.completed == (uint64_t)n * NT);
			px_executor_destroy(ex);
		}
	}
	return 0;
}

/* Recycling under crashes --------------------------------------------------------- */

static int case_recycle_each_task_with_crashes(void)
{
	px_executor *ex = open_ex("process:workers=2,max_tasks_per_worker=1");
	int n = (int)test_scaled(300);
	if (n < 20)
		n = 20;
	px_future **fs = calloc((size_t)n, sizeof(*fs));
	int crashes = 0;
	for (int i = 0; i < n; i++) {
		bool crash = i % 7 == 3;
		crashes += crash;
		CASE_CHECK(submit_op(ex, crash ? T_SEGV : T_VALUE, i, 0, NULL, &fs[i]) == 0);
	}
	for (int i = 0; i < n; i++) {
		if (i % 7 == 3) {
			CASE_CHECK(px_future_wait(fs[i], 20 * PX_SEC) == 0);
			CASE_CHECK(px_future_error(fs[i]) == PX_EWORKERDIED);
		} else {
			CASE_CHECK(want_value(fs[i], i) == 0);
		}
		px_future_release(fs[i]);
	}
	free(fs);
	px_executor_shutdown(ex, true, false);
	px_executor_stats st;
	px_executor_stats_get(ex, &st);
	CASE_CHECK(st.completed == (uint64_t)(n - crashes));
	CASE_CHECK(st.failed == (uint64_t)crashes);
	/* Each task ends its worker, by recycling or crash; every end but the
	 * last two (one per slot, at shutdown) is replaced. */
	CASE_CHECK(st.respawns >= (uint64_t)n - 2);
	px_executor_destroy(ex);
	CASE_CHECK(test_no_children());
	return 0;
}

/* Tasks that misbehave ----------------------------------------------------------- */

static int case_tasks_fork_exit_closefds_blocksignals(void)
{
	px_executor *ex = open_ex("process:workers=2");
	px_future *f;
	CASE_CHECK(submit_op(ex, T_FORK, 5, 0, NULL, &f) == 0);
	CASE_CHECK(want_value(f, 5) == 0);
	px_future_release(f);
	CASE_CHECK(submit_op(ex, T_CLOSEFDS, 6, 0, NULL, &f) == 0);
	CASE_CHECK(want_value(f, 6) == 0);
	px_future_release(f);
	/* The worker that closed everything still serves. */
	for (int i = 0; i < 20; i++) {
		CASE_CHECK(submit_op(ex, T_VALUE, i, 0, NULL, &f) == 0);
		CASE_CHECK(want_value(f, i) == 0);
		px_future_release(f);
	}
	CASE_CHECK(submit_op(ex, T_EXIT0, 0, 0, NULL, &f) == 0);
	CASE_CHECK(px_future_wait(f, 20 * PX_SEC) == 0);
	CASE_CHECK(px_future_error(f) == PX_EWORKERDIED);
	CASE_CHECK(px_future_message(f) && strstr(px_future_message(f), "exited with status 0"));
	px_future_release(f);
	px_submit_opts o = { .timeout_ns = 50 * PX_MSEC };
	CASE_CHECK(submit_op(ex, T_BLOCKALL, 0, 30 * PX_SEC, &o, &f) == 0);
	CASE_CHECK(px_future_wait(f, 20 * PX_SEC) == 0);
	CASE_CHECK(px_future_error(f) == -ETIMEDOUT);
	px_future_release(f);
	CASE_CHECK(submit_op(ex, T_VALUE, 9, 0, NULL, &f) == 0);
	CASE_CHECK(want_value(f, 9) == 0);
	px_future_release(f);
	px_executor_destroy(ex);
	CASE_CHECK(test_no_children());
	return 0;
}

/* Shutdown and destroy corner cases ---------------------------------------------- */

static int case_shutdown_nowait_cancel_windows_full(void)
{
	px_executor *ex = open_ex("process:workers=2,queue=100000");
	int n = (int)test_scaled(5000);
	px_future **fs = calloc((size_t)n, sizeof(*fs));
	for (int i = 0; i < n; i++)
		CASE_CHECK(submit_op(ex, T_VALUE, i, 0, NULL, &fs[i]) == 0);
	px_executor_shutdown(ex, false, true);
	px_future *g;
	CASE_CHECK(submit_op(ex, T_VALUE, 0, 0, NULL, &g) == PX_ESHUTDOWN);
	px_executor_destroy(ex);
	int done = 0, cancelled = 0;
	for (int i = 0; i < n; i++) {
		CASE_CHECK(px_future_is_done(fs[i]));
		if (px_future_state_get(fs[i]) == PX_FUTURE_CANCELLED) {
			cancelled++;
		} else {
			CASE_CHECK(want_value(fs[i], i) == 0);
			done++;
		}
		px_future_release(fs[i]);
	}
	free(fs);
	CASE_CHECK(done + cancelled == n);
	CASE_CHECK(test_no_children());
	return 0;
}

static int case_destroy_while_workers_die(void)
{
	for (int round = 0; round < 10; round++) {
		px_executor *ex = open_ex("process:workers=2");
		enum { N = 40 };
		px_future *fs[N];
		for (int i = 0; i < N; i++)
			CASE_CHECK(submit_op(ex, i % 3 ? T_VALUE : T_SEGV, i, 0, NULL,
					&fs[i]) == 0);
		px_executor_destroy(ex);
		for (int i = 0; i < N; i++) {
			CASE_CHECK(px_future_is_done(fs[i]));
			if (i % 3)
				CASE_CHECK(want_value(fs[i], i) == 0);
			else
				CASE_CHECK(px_future_error(fs[i]) == PX_EWORKERDIED);
			px_future_release(fs[i]);
		}
		CASE_CHECK(test_no_children());
	}
	return 0;
}

/* Several pools ------------------------------------------------------------------- */

static int use_pool(px_executor *ex, int64_t v)
{
	px_future *f;
	if (submit_op(ex, T_VALUE, v, 0, NULL, &f))
		return -1;
	int r = want_value(f, v);
	px_future_release(f);
	return r;
}

static int case_two_pools_destroyed_in_either_order(void)
{
	for (int order = 0; order < 2; order++) {
		px_executor *a = open_ex("process:workers=1");
		px_executor *b = open_ex("process:workers=2");
		CASE_CHECK(use_pool(a, 1) == 0 && use_pool(b, 2) == 0);
		px_executor_destroy(order ? b : a);
		CASE_CHECK(use_pool(order ? a : b, 3) == 0);
		px_executor_destroy(order ? a : b);
		CASE_CHECK(test_no_children());
	}
	return 0;
}

static int case_pool_in_child_of_pool_parent(void)
{
	px_executor *a = open_ex("process:workers=1");
	CASE_CHECK(use_pool(a, 1) == 0);
	fflush(NULL);
	pid_t c = fork();
	CASE_CHECK(c >= 0);
	if (c == 0) {
#ifdef __SANITIZE_THREAD__
		/* TSan cannot follow threads started in a child forked from
		 * a threaded process ("dup thread"); plain and ASan runs
		 * cover this case. */
		_exit(0);
#endif
		px_executor *b = open_ex("process:workers=2");
		int r = use_pool(b, 2);
		px_executor_destroy(b);
		_exit(r == 0 && test_no_children() ? 0 : 1);
	}
	CASE_CHECK(use_pool(a, 3) == 0);
	int st;
	CASE_CHECK(waitpid(c, &st, 0) == c);
	CASE_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	px_executor_destroy(a);
	CASE_CHECK(test_no_children());
	return 0;
}

/* The arena --------------------------------------------------------------------- */

static int case_arena_exhaustion_and_foreign_frees(void)
{
	px_executor *ex = open_ex("process:workers=1,shm_size=65536,max_arg=4096");
	px_executor *other = open_ex("process:workers=1");
	void *blocks[2048];
	int nb = 0;
	void *m;
	while (nb < 2048 && px_executor_alloc(ex, 100, &m) == 0)
		blocks[nb++] = m;
	CASE_CHECK(nb > 10 && nb < 2048);
	CASE_CHECK(px_executor_alloc(ex, 100, &m) == -ENOMEM);
	/* An argument too big for the request slot needs arena room. */
	char arg[1000] = { 0 };
	px_future *f;
	CASE_CHECK(px_executor_submit(ex, op_task, arg, sizeof(arg), NULL, &f) == 0);
	CASE_CHECK(px_future_wait(f, 20 * PX_SEC) == 0);
	CASE_CHECK(px_future_error(f) == -ENOMEM);
	px_future_release(f);
	/* Pointers it never gave out are ignored. */
	void *heap = malloc(64), *theirs;
	CASE_CHECK(px_executor_alloc(other, 64, &theirs) == 0);
	px_executor_free(ex, heap);
	px_executor_free(ex, theirs);
	px_executor_free(ex, NULL);
	px_executor_free(ex, (char *)blocks[0] + 64);
	px_executor_free(ex, (char *)blocks[1] + 8);
	free(heap);
	px_executor_free(other, theirs);
	for (int i = 0; i < nb; i++)
		px_executor_free(ex, blocks[i]);
	/* A second free of the same block is ignored too. */
	px_executor_free(ex, blocks[5]);
	/* Everything came back, in one piece: as many blocks as before, and
	 * once they are freed, one block of nearly the whole arena. */
	int again = 0;
	while (again < 2048 && px_executor_alloc(ex, 100, &m) == 0)
		blocks[again++] = m;
	CASE_CHECK(again == nb);
	for (int i = 0; i < again; i++)
		px_executor_free(ex, blocks[i]);
	void *big;
	CASE_CHECK(px_executor_alloc(ex, 60000, &big) == 0);
	px_executor_free(ex, big);
	struct op o = { .kind = T_VALUE, .v = 8 };
	CASE_CHECK(px_executor_submit(ex, op_task, &o, sizeof(o), NULL, &f) == 0);
	CASE_CHECK(want_value(f, 8) == 0);
	px_future_release(f);
	px_executor_destroy(other);
	px_executor_destroy(ex);
	return 0;
}

/* The runner ---------------------------------------------------------------------- */

static const struct test_case_child cases[] = {
	{ "init_crash_in_replacement", case_init_crash_in_replacement, 60 },
	{ "sigchld_ignored", case_sigchld_ignored, 60 },
	{ "forkserver_killed", case_forkserver_killed_plain, 60 },
	{ "forkserver_killed_sigchld_ignored", case_forkserver_killed_sigign, 60 },
	{ "callback_submits_into_full_queue", case_callback_submits_into_full_queue, 60 },
	{ "destroy_from_done_callback", case_destroy_from_done_callback, 60 },
	{ "cancel_running_vs_completion", case_cancel_running_vs_completion, 60 },
	{ "cancel_running_vs_crash", case_cancel_running_vs_crash, 60 },
	{ "timeout_vs_completion", case_timeout_vs_completion, 60 },
	{ "huge_task_timeout_means_no_deadline", case_huge_task_timeout_means_no_deadline, 60 },
	{ "timed_task_while_collector_parks", case_timed_task_while_collector_parks, 60 },
	{ "many_submitters_tiny_queues", case_many_submitters_tiny_queues, 60 },
	{ "recycle_each_task_with_crashes", case_recycle_each_task_with_crashes, 60 },
	{ "tasks_fork_exit_closefds_blocksignals",
	  case_tasks_fork_exit_closefds_blocksignals, 60 },
	{ "shutdown_nowait_cancel_windows_full", case_shutdown_nowait_cancel_windows_full, 60 },
	{ "destroy_while_workers_die", case_destroy_while_workers_die, 60 },
	{ "two_pools_destroyed_in_either_order", case_two_pools_destroyed_in_either_order, 60 },
	{ "pool_in_child_of_pool_parent", case_pool_in_child_of_pool_parent, 60 },
	{ "arena_exhaustion_and_foreign_frees", case_arena_exhaustion_and_foreign_frees, 60 },
};

int main(int argc, char **argv)
{
	unsetenv("PAREX_EXECUTOR");
	unsetenv("PAREX_CONFIG");
	return test_run_cases("procpool_adversarial", cases, sizeof(cases) / sizeof(cases[0]),
			      argc, argv);
}
