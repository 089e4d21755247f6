/*
 * demos/demo_race.c - the seed's exercise 2: a counter race, then its fixes.
 *
 * Run:   ./build/demos/demo_race                    (10 x 100,000, a second or two)
 *        ./build/demos/demo_race --workers 4 --iters 1000000 --csv race.csv
 *        ./build/demos/demo_race --backend process  (processes only)
 *
 * 10 threads each add 1 to a shared counter 100,000 times without a lock.
 * The increment is a read, an add and a write (done here with relaxed atomic
 * loads and stores, so it is well-defined C and ThreadSanitizer stays quiet:
 * a race *condition*, not a data race), so two workers that read the same
 * value both write value + 1 and one update is lost. The demo counts what
 * was lost, then repeats with a px_lock around the increment and with an
 * atomic add (px_counter_add), and then does all three with processes on a
 * counter in shared memory (an anonymous px_shm segment, fork()). Python's
 * `counter += 1` loses updates the same way, GIL or not.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <parex/shm.h>
#include <parex/sync.h>

#include "common.h"

static const char about[] =
	"demo_race: N workers increment one shared counter without a lock, with a\n"
	"px_lock and with an atomic; with threads and with processes on shared memory.\n"
	"Counts the lost updates and prints a verdict computed from them.\n"
	"Usage: demo_race [options]   (--backend thread|process|all)\n";

enum { SYNC_NONE, SYNC_LOCK, SYNC_ATOMIC };
static const char *const sync_name[] = { "none", "px_lock", "atomic" };

/* Lives in the shared segment: the same layout serves threads and processes. */
typedef struct race_shared {
	px_lock lock;
	px_barrier start;
	/* Racy counter: every access is a relaxed atomic load or store, so the
	 * read-add-write below can interleave but each access is whole. */
	_Atomic int64_t plain;
	int64_t locked; /* guarded by lock */
	px_counter atomic;
	_Atomic int ready; /* workers past the barrier, for the start gate */
} race_shared;

static race_shared *sh;
static int64_t opt_iters = 100000;
static int64_t opt_runs = 5;
static int cur_sync;
static int n_workers;

/* One worker's increments; returns 0 or a negative error. */
static int work(void)
{
	int r = px_barrier_wait(&sh->start, 30 * PX_SEC);
	if (r < 0)
		return r;
	/* A start gate on top of the barrier: the barrier wakes the sleepers
	 * one by one, and 100,000 increments take a C thread about 0.1 ms, so
	 * the first ones would be done before the last ones woke. Yielding
	 * until every worker is past the barrier makes them start together,
	 * as Python's slower threads do anyway. Relaxed is enough: the gate
	 * only orders the start, it publishes no data. */
	atomic_fetch_add_explicit(&sh->ready, 1, memory_order_relaxed);
	while (atomic_load_explicit(&sh->ready, memory_order_relaxed) < n_workers)
		sched_yield();
	for (int64_t i = 0; i < opt_iters; i++) {
		switch (cur_sync) {
		case SYNC_NONE: {
			/* Read, add, write: the lost-update window. */
			int64_t v = atomic_load_explicit(&sh->plain, memory_order_relaxed);
			atomic_store_explicit(&sh->plain, v + 1, memory_order_relaxed);
			break;
		}
		case SYNC_LOCK:
			r = px_lock_lock(&sh->lock, PX_FOREVER);
			if (r)
				return r;
			sh->locked++;
			px_lock_unlock(&sh->lock);
			break;
		default:
			px_counter_add(&sh->atomic, 1);
			break;
		}
	}
	return 0;
}

static void *thread_main(void *arg)
{
	(void)arg;
	return (void *)(intptr_t)work();
}

static int64_t counter_value(int sync)
{
	if (sync == SYNC_NONE)
		return atomic_load_explicit(&sh->plain, memory_order_relaxed);
	if (sync == SYNC_LOCK)
		return sh->locked;
	return px_counter_get(&sh->atomic);
}

static int reset(int n)
{
	atomic_store_explicit(&sh->plain, 0, memory_order_relaxed);
	sh->locked = 0;
	px_counter_init(&sh->atomic, 0);
	atomic_store_explicit(&sh->ready, 0, memory_order_relaxed);
	n_workers = n;
	return px_barrier_init(&sh->start, (uint32_t)n);
}

/* Runs n threads on sync; returns the wall time or a negative error. */
static double run_threads(int n, int sync)
{
	pthread_t *th = calloc((size_t)n, sizeof(*th));
	int err = reset(n);
	if (!th || err)
		return err ? err : -ENOMEM;
	cur_sync = sync;
	double t0 = demo_now();
	int started = 0;
	for (; started < n; started++)
		if ((err = pthread_create(&th[started], NULL, thread_main, NULL))) {
			err = -err;
			px_barrier_abort(&sh->start);
			break;
		}
	for (int i = 0; i < started; i++) {
		void *ret;
		pthread_join(th[i], &ret);
		if ((intptr_t)ret && !err)
			err = (int)(intptr_t)ret;
	}
	free(th);
	return err ? err : demo_now() - t0;
}

/* Runs n processes on sync; returns the wall time or a negative error. */
static double run_procs(int n, int sync)
{
	pid_t *pids = calloc((size_t)n, sizeof(*pids));
	int err = reset(n);
	if (!pids || err)
		return err ? err : -ENOMEM;
	cur_sync = sync; /* inherited by the children */
	fflush(NULL);
	double t0 = demo_now();
	int started = 0;
	for (; started < n; started++) {
		pid_t p = fork();
		if (p == 0) {
			int r = work();
			_exit(r ? 1 : 0); /* the child reports through its status */
		}
		if (p < 0) {
			err = -errno;
			px_barrier_abort(&sh->start);
			break;
		}
		pids[started] = p;
	}
	for (int i = 0; i < started; i++) {
		int st;
		while (waitpid(pids[i], &st, 0) < 0 && errno == EINTR)
			;
		if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0) && !err)
			err = -ECHILD;
	}
	free(pids);
	return err ? err : demo_now() - t0;
}

static const demo_col cols[] = {
	{ "workers_kind", 's', 0 }, { "sync", 's', 0 },    { "workers", 'i', 0 },
	{ "expected", 'i', 0 },     { "count", 'i', 0 },   { "lost", 'i', 0 },
	{ "lost_pct", 'f', 2 },     { "wall_ms", 'f', 1 }, { "ns_per_inc", 'f', 1 },
};

typedef struct result {
	double wall;
	int64_t count;
} result;

int main(int argc, char **argv)
{
	const demo_option extra[] = {
		{ "iters", "N", "increments per worker (default 100000)",
		  DEMO_OPT_INT, &opt_iters, 1, 1e9 },
		{ "runs", "R", "unlocked runs, keeping the one that lost most (default 5)",
		  DEMO_OPT_INT, &opt_runs, 1, 1000 },
	};
	demo_opts o;
	int pr = demo_parse(argc, argv, about, extra, 2, &o);
	if (pr)
		return pr > 0 ? 0 : 2;
	demo_envcfg env;
	if (demo_envcfg_get(&env))
		return 2;
	bool do_thr = true, do_proc = true;
	int n = 10;
	if (demo_pick_kinds(&o, &env, &do_thr, &do_proc))
		return 2;
	if (!o.nbackends && env.active) {
		if (!strcmp(env.backend, "inline"))
			n = 1;
		if (env.workers)
			n = env.workers;
		printf("backend from %s: %s\n", env.source, do_thr ? "threads" : "processes");
	}
	if (o.workers)
		n = o.workers;

	px_shm *seg;
	int r = px_shm_create_anon(&seg, sizeof(race_shared));
	if (r) {
		demo_err("cannot create shared memory: %s", px_strerror(r));
		return 1;
	}
	sh = px_shm_data(seg);
	if ((r = px_lock_init(&sh->lock))) {
		demo_err("px_lock_init: %s", px_strerror(r));
		return 1;
	}
	int64_t expected = (int64_t)n * opt_iters;
	printf("demo_race: %d workers x %lld increments = %lld expected, on %d CPUs\n\n",
	       n, (long long)opt_iters, (long long)expected, demo_cpus());
	fflush(stdout);

	/* Processes first, while this process is still single-threaded: a
	 * fork() copies only the calling thread, so forking before any thread
	 * exists is the safe order (and what sanitizers can follow). */
	result res[2][3];
	int lossy[2] = { 0, 0 };
	memset(res, 0, sizeof(res));
	for (int kind = 1; kind >= 0; kind--) {
		if ((kind && !do_proc) || (!kind && !do_thr))
			continue;
		for (int s = 0; s < 3; s++) {
			char label[64];
			snprintf(label, sizeof(label), "%s, sync %s",
				 kind ? "processes" : "threads", sync_name[s]);
			demo_progress(label, (size_t)(kind ? s : 3 + s), 6);
			/* The unlocked run repeats: whether workers overlap
			 * inside an increment depends on scheduling, so the
			 * table keeps the run that lost most and the verdict
			 * says in how many runs anything was lost. */
			int runs = s == SYNC_NONE ? (int)opt_runs : 1;
			for (int k = 0; k < runs; k++) {
				double w = kind ? run_procs(n, s) : run_threads(n, s);
				if (w < 0) {
					demo_progress_clear();
					demo_err("%s failed: %s", label, px_strerror((int)w));
					px_shm_close(seg);
					return 1;
				}
				int64_t c = counter_value(s);
				if (c < expected)
					lossy[kind]++;
				if (k == 0 || c < res[kind][s].count) {
					res[kind][s].wall = w;
					res[kind][s].count = c;
				}
			}
		}
	}
	demo_progress_clear();

	demo_table *t = demo_table_new(cols, (int)(sizeof(cols) / sizeof(cols[0])));
	int bad = 0;
	for (int kind = 0; kind < 2; kind++) {
		if ((kind && !do_proc) || (!kind && !do_thr))
			continue;
		const char *kn = kind ? "processes" : "threads";
		for (int s = 0; s < 3; s++) {
			result *x = &res[kind][s];
			int64_t lost = expected - x->count;
			demo_table_add(t, kn, sync_name[s], (int64_t)n, expected,
				       x->count, lost, 100.0 * (double)lost / (double)expected,
				       x->wall * 1e3, x->wall * 1e9 / (double)expected);
		}
		result *u = &res[kind][SYNC_NONE], *l = &res[kind][SYNC_LOCK],
		       *a = &res[kind][SYNC_ATOMIC];
		int64_t lost = expected - u->count;
		if (lost > 0)
			demo_verdict("%s without a lock: updates were lost in %d of %lld runs; at worst %lld of %lld (%.2f%%), the count ended at %lld: a read-add-write interleaved with another worker's, which wrote the same value",
				     kn, lossy[kind], (long long)opt_runs,
				     (long long)lost, (long long)expected,
				     100.0 * (double)lost / (double)expected,
				     (long long)u->count);
		else if (n == 1)
			demo_verdict("%s without a lock: nothing lost, as expected with a single worker (nobody to race with)",
				     kn);
		else
			demo_verdict("%s without a lock: no update was lost in %lld runs (count %lld each time): on this machine the workers (%.2f ms in all) never overlapped inside an increment; the race is still there, try --iters 10000000",
				     kn, (long long)opt_runs, (long long)u->count,
				     u->wall * 1e3);
		for (int s = SYNC_LOCK; s <= SYNC_ATOMIC; s++) {
			result *x = s == SYNC_LOCK ? l : a;
			if (x->count != expected) {
				demo_verdict("%s with %s: count %lld, expected %lld: WRONG",
					     kn, sync_name[s], (long long)x->count,
					     (long long)expected);
				bad = 1;
			}
		}
		if (l->count == expected && a->count == expected)
			demo_verdict("%s with px_lock and with an atomic add: every increment counted (%lld); the lock cost %.1f ns per increment, the atomic %.1f ns, unlocked %.1f ns",
				     kn, (long long)expected,
				     l->wall * 1e9 / (double)expected,
				     a->wall * 1e9 / (double)expected,
				     u->wall * 1e9 / (double)expected);
	}
	if (do_thr && do_proc && n > 1) {
		int64_t lt = expected - res[0][0].count, lp = expected - res[1][0].count;
		if (lt > 0 && lp > 0)
			demo_verdict("threads and processes on shared memory both lost updates (%lld vs %lld at worst) and are fixed the same way: px_lock and px_counter work across processes because they live in the shared segment",
				     (long long)lt, (long long)lp);
		else
			demo_verdict("at worst threads lost %lld and processes %lld updates on this run; px_lock and px_counter fixed both, since they live in the shared segment",
				     (long long)lt, (long long)lp);
	}
	demo_table_print(t);
	printf("\nlost = expected - count; ns_per_inc = wall time / expected increments (all workers).\n");
	demo_print_verdict();
	int rc = demo_write_outputs(&o, t) ? 1 : bad;
	if (o.plot) {
		char data[1024];
		size_t len = 0;
		for (int i = 0; i < demo_table_rows(t); i++)
			len += (size_t)snprintf(data + len, sizeof(data) - len,
						"\"%.4s %s\" %.3f\n",
						demo_table_str(t, i, "workers_kind"),
						demo_table_str(t, i, "sync"),
						demo_table_num(t, i, "lost_pct"));
		demo_plot_bars(o.plot, "demo_race: updates lost",
			       "lost, % of increments", false, data);
	}
	demo_table_free(t);
	px_shm_close(seg);
	return rc;
}
