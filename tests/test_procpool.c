/*
 * tests/test_procpool.c - what only the process backend does: crash
 * isolation, timeouts, cancelling a running task, recycling, per-worker
 * initializers in replacements, respawning while the parent runs threads,
 * no orphans when the parent is SIGKILLed, shutdown with work pending, large
 * arguments and results, and a checksummed stress run. The behaviour all
 * backends share is in test_executor.c.
 *
 * Shared state between the test and its tasks lives in px_executor_alloc()
 * memory, or in an anonymous shared mapping made before the pool when an
 * initializer needs it.
 */
#include <dirent.h>
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

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1 /* sanitizers run exit hooks that may change a status */
#else
#define SANITIZED 0
#endif

static px_executor *open_pool(const char *spec)
{
	px_executor *ex = open_ex(spec);
	assert_string_equal(px_executor_backend(ex), "process");
	return ex;
}

static void assert_contains(const char *s, const char *needle)
{
	if (!s || !strstr(s, needle))
		fail_msg("message \"%s\" lacks \"%s\"", s ? s : "(null)", needle);
}

/* Tasks ------------------------------------------------------------------- */

enum { K_OK = 0, K_SEGV, K_ABORT, K_EXIT3, K_BLOCK };

struct job {
	int64_t v;
	int32_t kind;
	int32_t pad;
	void *shared; /* struct blocker * for K_BLOCK */
};

struct blocker {
	atomic_int pid;     /* the blocked worker's pid, once it runs */
	atomic_int release;
};

static int mixed(px_task *t, const void *arg, size_t len)
{
	struct job j;
	if (len != sizeof(j))
		return -EINVAL;
	memcpy(&j, arg, sizeof(j));
	switch (j.kind) {
	case K_SEGV:
		test_segfault((volatile int *)(uintptr_t)j.pad); /* NULL: pad is 0 */
		break;
	case K_ABORT:
		abort();
	case K_EXIT3:
		exit(3);
	case K_BLOCK: {
		struct blocker *b = j.shared;
		atomic_store(&b->pid, (int)getpid());
		while (!atomic_load(&b->release))
			px_task_sleep(t, 1000000);
		break;
	}
	}
	int64_t r = 2 * j.v + 1;
	return px_task_return(t, &r, sizeof(r));
}

static __attribute__((noreturn)) int sleep_forever(px_task *t, const void *arg, size_t len)
{
	(void)arg;
	(void)len;
	for (;;)
		px_task_sleep(t, 10 * PX_MSEC);
}

static int sleep_ms(px_task *t, const void *arg, size_t len)
{
	int64_t ms;
	if (len != sizeof(ms))
		return -EINVAL;
	memcpy(&ms, arg, sizeof(ms));
	px_task_sleep(t, ms * PX_MSEC);
	return px_task_return(t, &ms, sizeof(ms));
}

static int my_pid(px_task *t, const void *arg, size_t len)
{
	(void)arg;
	(void)len;
	int64_t v = (int64_t)getpid() << 32 | (uint32_t)getppid();
	return px_task_return(t, &v, sizeof(v));
}

static px_future *submit_job(px_executor *ex, int64_t v, int kind, void *shared)
{
	struct job j = { .v = v, .kind = kind, .shared = shared };
	px_future *f = NULL;
	assert_int_equal(px_executor_submit(ex, mixed, &j, sizeof(j), NULL, &f), 0);
	return f;
}

/* Crash isolation ------------------------------------------------------------ */

static void crashes_fail_only_their_task(void **state)
{
	(void)state;
	px_executor *ex = open_pool("process:workers=2");
	struct blocker *b;
	assert_int_equal(px_executor_alloc(ex, sizeof(*b), (void **)&b), 0);
	enum { N = 4000 };
	px_future **fs = calloc(N, sizeof(*fs));
	int kinds[N] = { 0 };
	kinds[700] = K_SEGV;
	kinds[1500] = K_ABORT;
	kinds[2300] = K_EXIT3;
	kinds[3100] = K_BLOCK;
	for (int i = 0; i < N; i++) {
		fs[i] = submit_job(ex, i, kinds[i], b);
		if (kinds[i] == K_BLOCK) {
			/* SIGKILL from outside while the load runs around it. */
			while (!atomic_load(&b->pid))
				usleep(200);
			assert_int_equal(kill(atomic_load(&b->pid), SIGKILL), 0);
		}
	}
	int crashes = 0;
	for (int i = 0; i < N; i++) {
		assert_int_equal(px_future_wait(fs[i], PX_FOREVER), 0);
		if (kinds[i] == K_OK) {
			assert_int_equal(get_i64(fs[i]), 2 * i + 1);
			continue;
		}
		crashes++;
		assert_int_equal(px_future_error(fs[i]), PX_EWORKERDIED);
		const char *m = px_future_message(fs[i]);
		assert_contains(m, "while running the task");
		switch (kinds[i]) {
		case K_SEGV:
			assert_contains(m, "killed by signal 11");
			break;
		case K_ABORT:
			assert_contains(m, "killed by signal 6");
			break;
		case K_EXIT3:
			/* exit() runs the sanitizers' exit hooks in the worker:
			 * a leak report may change the status or abort. */
			if (SANITIZED && !strstr(m, "exited with status"))
				assert_contains(m, "killed by signal 6");
			else
				assert_contains(m, SANITIZED ? "exited with status"
							     : "exited with status 3");
			break;
		case K_BLOCK:
			assert_contains(m, "killed by signal 9");
			break;
		}
	}
	assert_int_equal(crashes, 4);
	px_executor_shutdown(ex, true, false);
	px_executor_stats st;
	assert_int_equal(px_executor_stats_get(ex, &st), 0);
	assert_int_equal(st.submitted, N);
	assert_int_equal(st.failed, 4);
	assert_int_equal(st.completed, N - 4);
	assert_int_equal(st.cancelled, 0);
	assert_true(st.respawns >= 4);
	for (int i = 0; i < N; i++)
		px_future_release(fs[i]);
	free(fs);
	px_executor_free(ex, b);
	px_executor_destroy(ex);
}

/* Every task dies: the pool keeps replacing workers and loses nothing. */
static void every_task_crashing(void **state)
{
	(void)state;
	px_executor *ex = open_pool("process:workers=2");
	enum { N = 40 };
	px_future *fs[N];
	for (int i = 0; i < N; i++)
		fs[i] = submit_job(ex, i, i % 2 ? K_ABORT : K_OK, NULL);
	for (int i = 0; i < N; i++) {
		assert_int_equal(px_future_wait(fs[i], PX_FOREVER), 0);
		if (i % 2)
			assert_int_equal(px_future_error(fs[i]), PX_EWORKERDIED);
		else
			assert_int_equal(get_i64(fs[i]), 2 * i + 1);
		px_future_release(fs[i]);
	}
	px_executor_stats st;
	assert_int_equal(px_executor_stats_get(ex, &st), 0);
	assert_int_equal(st.workers, 2);
	/* Outcomes are counted just after completion: settle first. */
	px_executor_shutdown(ex, true, false);
	assert_int_equal(px_executor_stats_get(ex, &st), 0);
	assert_int_equal(st.failed, N / 2);
	assert_int_equal(st.completed, N / 2);
	px_executor_destroy(ex);
}

/* Timeouts ------------------------------------------------------------------ */

static void timeout_kills_and_replaces(void **state)
{
	(void)state;
	px_executor *ex = open_pool("process:workers=1,task_timeout_ms=100");
	px_future *f, *g, *h;
	/* The pool default. */
	assert_int_equal(px_executor_submit(ex, sleep_forever, NULL, 0, NULL, &f), 0);
	/* Per submit: shorter, and none at all. */
	px_submit_opts shorter = { .timeout_ns = 30 * PX_MSEC };
	assert_int_equal(px_executor_submit(ex, sleep_forever, NULL, 0, &shorter, &g), 0);
	px_submit_opts none = { .timeout_ns = PX_FOREVER };
	int64_t ms = 250;
	assert_int_equal(px_executor_submit(ex, sleep_ms, &ms, sizeof(ms), &none, &h), 0);
	assert_int_equal(px_future_wait(f, PX_FOREVER), 0);
	assert_int_equal(px_future_error(f), -ETIMEDOUT);
	assert_contains(px_future_message(f), "timeout of 100 ms");
	assert_int_equal(px_future_wait(g, PX_FOREVER), 0);
	assert_int_equal(px_future_error(g), -ETIMEDOUT);
	assert_contains(px_future_message(g), "timeout of 30 ms");
	assert_int_equal(get_i64(h), 250); /* ran past the pool default */
	px_executor_stats st;
	px_executor_stats_get(ex, &st);
	assert_int_equal(st.workers, 1);
	px_executor_shutdown(ex, true, false);
	px_executor_stats_get(ex, &st);
	assert_int_equal(st.failed, 2);
	assert_int_equal(st.completed, 1);
	assert_int_equal(st.respawns, 2);
	px_future_release(f);
	px_future_release(g);
	px_future_release(h);
	px_executor_destroy(ex);
}

/* Cancel ---------------------------------------------------------------------- */

static void cancel_running_kills_worker(void **state)
{
	(void)state;
	px_executor *ex = open_pool("process:workers=1");
	struct blocker *b;
	assert_int_equal(px_executor_alloc(ex, sizeof(*b), (void **)&b), 0);
	px_future *f = submit_job(ex, 0, K_BLOCK, b);
	while (!atomic_load(&b->pid))
		usleep(200);
	int pid = atomic_load(&b->pid);
	assert_int_equal(px_future_state_get(f), PX_FUTURE_RUNNING);
	assert_int_equal(px_future_cancel(f, 0), -EBUSY);
	assert_int_equal(px_future_cancel(f, PX_CANCEL_RUNNING), 0);
	assert_int_equal(px_future_wait(f, PX_FOREVER), 0);
	assert_int_equal(px_future_state_get(f), PX_FUTURE_CANCELLED);
	assert_int_equal(px_future_error(f), -ECANCELED);
	assert_int_equal(px_future_cancel(f, PX_CANCEL_RUNNING), 0); /* again */
	/* The replacement works, in another process. */
	px_future *g;
	assert_int_equal(px_executor_submit(ex, my_pid, NULL, 0, NULL, &g), 0);
	assert_int_not_equal((int)(get_i64(g) >> 32), pid);
	px_future *done = submit_job(ex, 20, K_OK, NULL);
	assert_int_equal(get_i64(done), 41);
	assert_int_equal(px_future_cancel(done, PX_CANCEL_RUNNING), -EBUSY);
	px_executor_shutdown(ex, true, false);
	px_executor_stats st;
	px_executor_stats_get(ex, &st);
	assert_int_equal(st.cancelled, 1);
	assert_int_equal(st.respawns, 1);
	px_future_release(f);
	px_future_release(g);
	px_future_release(done);
	px_executor_free(ex, b);
	px_executor_destroy(ex);
}

/* Recycling and initializers ------------------------------------------------------ */

static void recycling_after_n_tasks(void **state)
{
	(void)state;
	px_executor *ex = open_pool("process:workers=2,max_tasks_per_worker=10");
	enum { N = 200 };
	px_future *fs[N];
	for (int i = 0; i < N; i++)
		assert_int_equal(px_executor_submit(ex, my_pid, NULL, 0, NULL, &fs[i]), 0);
	int pids[N], npids = 0, uses[N] = { 0 };
	for (int i = 0; i < N; i++) {
		int pid = (int)(get_i64(fs[i]) >> 32);
		int k = 0;
		while (k < npids && pids[k] != pid)
			k++;
		if (k == npids)
			pids[npids++] = pid;
		uses[k]++;
		px_future_release(fs[i]);
	}
	/* No process ran more than 10 tasks, so at least 20 took part. */
	assert_true(npids >= N / 10);
	for (int k = 0; k < npids; k++)
		assert_true(uses[k] <= 10);
	px_executor_shutdown(ex, true, false);
	px_executor_stats st;
	px_executor_stats_get(ex, &st);
	assert_int_equal(st.completed, N);
	assert_true(st.respawns >= N / 10 - 2);
	px_executor_destroy(ex);
}

struct init_state {
	atomic_int calls;
	atomic_int fail_from; /* worker ids >= this fail; INT_MAX: none */
	atomic_int fail_now;  /* every later call fails */
};

static int init_value = -1; /* per process: set by the initializer */

static int init_worker(int id, void *arg)
{
	struct init_state *s = arg;
	atomic_fetch_add(&s->calls, 1);
	if (id >= atomic_load(&s->fail_from) || atomic_load(&s->fail_now))
		return -EPERM;
	init_value = 1000 + id;
	return 0;
}

static int read_init(px_task *t, const void *arg, size_t len)
{
	(void)arg;
	(void)len;
	int64_t v = init_value * 10 + px_task_worker_id(t);
	return px_task_return(t, &v, sizeof(v));
}

static struct init_state *shared_init_state(void)
{
	void *m = mmap(NULL, sizeof(struct init_state), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(m != MAP_FAILED);
	struct init_state *s = m;
	atomic_store(&s->fail_from, 1 << 30);
	return s;
}

static void initializer_runs_in_replacements(void **state)
{
	(void)state;
	struct init_state *s = shared_init_state();
	px_config *cfg;
	assert_int_equal(px_config_create(&cfg), 0);
	assert_int_equal(px_config_apply(cfg, "process:workers=2,max_tasks_per_worker=5",
					 NULL), 0);
	px_config_set_initializer(cfg, init_worker, s);
	px_executor *ex;
	assert_int_equal(px_executor_create(&ex, cfg), 0);
	assert_int_equal(atomic_load(&s->calls), 2);
	enum { N = 50 };
	px_future *fs[N];
	for (int i = 0; i < N; i++)
		assert_int_equal(px_executor_submit(ex, read_init, NULL, 0, NULL, &fs[i]), 0);
	for (int i = 0; i < N; i++) {
		int64_t v = get_i64(fs[i]);
		int id = (int)(v % 10);
		assert_true(id == 0 || id == 1);
		assert_int_equal(v / 10, 1000 + id);
		px_future_release(fs[i]);
	}
	px_executor_shutdown(ex, true, false);
	/* 50 tasks, 5 per worker: 10 workers, each initialised once, plus
	 * up to 2 replacements started before the shutdown. */
	assert_true(atomic_load(&s->calls) >= N / 5);
	assert_true(atomic_load(&s->calls) <= N / 5 + 2);
	px_executor_destroy(ex);

	/* A failing initializer fails the creation with its code. */
	atomic_store(&s->fail_from, 1);
	assert_int_equal(px_executor_create(&ex, cfg), -EPERM);
	assert_null(ex);

	/* A failing replacement retires its slot; with none left, the
	 * pool fails what it holds and refuses work. */
	atomic_store(&s->fail_from, 1 << 30);
	assert_int_equal(px_config_apply(cfg, ":workers=1,max_tasks_per_worker=1", NULL), 0);
	assert_int_equal(px_executor_create(&ex, cfg), 0);
	atomic_store(&s->fail_now, 1);
	px_future *a, *b2;
	assert_int_equal(px_executor_submit(ex, read_init, NULL, 0, NULL, &a), 0);
	assert_int_equal(px_executor_submit(ex, read_init, NULL, 0, NULL, &b2), 0);
	assert_int_equal(get_i64(a), 10000);
	assert_int_equal(px_future_wait(b2, PX_FOREVER), 0);
	assert_int_equal(px_future_error(b2), PX_EWORKERDIED);
	assert_contains(px_future_message(b2), "initializer");
	px_future *c;
	assert_int_equal(px_executor_submit(ex, read_init, NULL, 0, NULL, &c), PX_ESHUTDOWN);
	px_future_release(a);
	px_future_release(b2);
	px_executor_destroy(ex);
	px_config_destroy(cfg);
	munmap(s, sizeof(*s));
}

/* Fork safety --------------------------------------------------------------------- */

static pthread_mutex_t held = PTHREAD_MUTEX_INITIALIZER;

static int lock_held(px_task *t, const void *arg, size_t len)
{
	(void)arg;
	(void)len;
	/* Would hang forever in a child forked while `held` is locked. */
	pthread_mutex_lock(&held);
	pthread_mutex_unlock(&held);
	char *p = malloc(100); /* and so would malloc, mid-operation */
	free(p);
	int64_t v = 7;
	return px_task_return(t, &v, sizeof(v));
}

struct holder {
	atomic_int locked, stop;
};

static void *hold_lock(void *arg)
{
	struct holder *h = arg;
	pthread_mutex_lock(&held);
	atomic_store(&h->locked, 1);
	while (!atomic_load(&h->stop)) {
		void *p = malloc(64); /* keep malloc busy too */
		free(p);
	}
	pthread_mutex_unlock(&held);
	return NULL;
}

static void respawn_while_parent_runs_threads(void **state)
{
	(void)state;
	px_executor *ex = open_pool("process:workers=1");
	struct holder h = { 0 };
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, hold_lock, &h), 0);
	while (!atomic_load(&h.locked))
		usleep(100);
	/* Kill the worker; its replacement starts while `held` is locked. */
	px_future *f = submit_job(ex, 0, K_ABORT, NULL);
	assert_int_equal(px_future_wait(f, PX_FOREVER), 0);
	assert_int_equal(px_future_error(f), PX_EWORKERDIED);
	px_future *g;
	assert_int_equal(px_executor_submit(ex, lock_held, NULL, 0, NULL, &g), 0);
	assert_int_equal(get_i64(g), 7);
	atomic_store(&h.stop, 1);
	pthread_join(th, NULL);
	px_future_release(f);
	px_future_release(g);
	px_executor_destroy(ex);
}

/* No orphans --------------------------------------------------------------------- */

static bool process_gone(pid_t pid)
{
	/* Reap it if it was handed to us (we are a subreaper). */
	int st;
	if (waitpid(pid, &st, WNOHANG) == pid)
		return true;
	if (kill(pid, 0) < 0 && errno == ESRCH)
		return true;
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *fp = fopen(path, "r");
	if (!fp)
		return true;
	size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[n] = 0;
	char *rp = strrchr(buf, ')');
	return rp && (rp[2] == 'Z' || rp[2] == 'X'); /* exited, not yet reaped */
}

static void parent_sigkill_leaves_nothing(void **state)
{
	(void)state;
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		close(fds[0]);
		px_executor *ex;
		if (px_executor_open(&ex, "process:workers=2", NULL, 0))
			_exit(1);
		/* Two tasks at once, one per worker: each reports its pid
		 * and its parent, the fork server. */
		int64_t pids[3] = { 0 };
		for (int tries = 0; tries < 100 && (!pids[1] || !pids[2]); tries++) {
			px_future *a, *b;
			int64_t ms = 20;
			px_executor_submit(ex, sleep_ms, &ms, sizeof(ms), NULL, &a);
			px_executor_submit(ex, my_pid, NULL, 0, NULL, &b);
			int64_t v;
			if (px_future_get_i64(b, PX_FOREVER, &v))
				_exit(2);
			px_future_wait(a, PX_FOREVER);
			px_future_release(a);
			px_future_release(b);
			pids[0] = (uint32_t)v;
			if (!pids[1])
				pids[1] = v >> 32;
			else if (pids[1] != v >> 32)
				pids[2] = v >> 32;
		}
		if (write(fds[1], pids, sizeof(pids)) != sizeof(pids))
			_exit(3);
		for (;;)
			pause();
	}
	close(fds[1]);
	int64_t pids[3];
	assert_int_equal(read(fds[0], pids, sizeof(pids)), sizeof(pids));
	close(fds[0]);
	assert_true(pids[0] > 0 && pids[1] > 0 && pids[2] > 0);
	/* Nothing of the pool is a /dev/shm file, so nothing can be left
	 * there: every shared mapping is anonymous. */
	char path[64], line[512];
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)child);
	FILE *fp = fopen(path, "r");
	assert_non_null(fp);
	while (fgets(line, sizeof(line), fp))
		if (strstr(line, "/dev/shm/"))
			fail_msg("the pool maps a /dev/shm file: %s", line);
	fclose(fp);
	for (int i = 0; i < 3; i++)
		assert_false(process_gone((pid_t)pids[i]));

	assert_int_equal(kill(child, SIGKILL), 0);
	int st;
	assert_int_equal(waitpid(child, &st, 0), child);
	int64_t t0 = test_now_ns();
	bool gone = false;
	while (!gone && test_now_ns() - t0 < 1000 * PX_MSEC) {
		gone = true;
		for (int i = 0; i < 3; i++)
			gone = gone && process_gone((pid_t)pids[i]);
		if (!gone)
			usleep(5000);
	}
	assert_true(gone); /* fork server and both workers, within a second */
	/* Orphans handed to us as their subreaper may still be zombies:
	 * reap them all before leaving, so later tests see no children. */
	t0 = test_now_ns();
	for (int i = 0; i < 3 && test_now_ns() - t0 < 5000 * PX_MSEC;) {
		while (waitpid(-1, &st, WNOHANG) > 0)
			;
		if (kill((pid_t)pids[i], 0) < 0 && errno == ESRCH)
			i++;
		else
			usleep(1000);
	}
	prctl(PR_SET_CHILD_SUBREAPER, 0);
}

/* Shutdown --------------------------------------------------------------------- */

static void shutdown_with_work_pending(void **state)
{
	(void)state;
	px_executor *ex = open_pool("process:workers=2");
	enum { N = 300 };
	px_future *fs[N];
	for (int64_t i = 0; i < N; i++) {
		int64_t ms = 1;
		assert_int_equal(px_executor_submit(ex, sleep_ms, &ms, sizeof(ms), NULL,
						    &fs[i]), 0);
	}
	assert_int_equal(px_executor_shutdown(ex, false, true), 0);
	assert_int_equal(px_executor_shutdown(ex, true, true), 0);
	int done = 0, cancelled = 0;
	for (int i = 0; i < N; i++) {
		assert_true(px_future_is_done(fs[i]));
		if (px_future_state_get(fs[i]) == PX_FUTURE_CANCELLED) {
			cancelled++;
		} else {
			assert_int_equal(get_i64(fs[i]), 1);
			done++;
		}
		px_future_release(fs[i]);
	}
	assert_int_equal(done + cancelled, N);
	assert_true(cancelled > 0);
	px_executor_stats st;
	px_executor_stats_get(ex, &st);
	assert_int_equal(st.completed, (uint64_t)done);
	assert_int_equal(st.cancelled, (uint64_t)cancelled);
	assert_int_equal(st.workers, 0);
	px_executor_destroy(ex);
	/* The fork server was reaped, and it reaped every worker. */
	int wst;
	assert_int_equal(waitpid(-1, &wst, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
}

/* Sizes ------------------------------------------------------------------------ */

static void large_arguments_and_results(void **state)
{
	(void)state;
	px_executor *ex = open_pool("process:workers=2,max_arg=200000,max_result=200000");
	size_t sizes[] = { 0, 1, 31, 32, 33, 79, 80, 81, 1000, 65536, 200000 };
	enum { NS = sizeof(sizes) / sizeof(sizes[0]) };
	unsigned char *buf = malloc(200000);
	for (size_t i = 0; i < 200000; i++)
		buf[i] = (unsigned char)(i * 7 + 3);
	px_future *fs[NS * 4];
	for (int k = 0; k < NS * 4; k++)
		assert_int_equal(px_executor_submit(ex, echo, buf, sizes[k % NS], NULL,
						    &fs[k]), 0);
	for (int k = 0; k < NS * 4; k++) {
		assert_int_equal(px_future_wait(fs[k], PX_FOREVER), 0);
		assert_int_equal(px_future_error(fs[k]), 0);
		size_t len;
		const void *r = px_future_result(fs[k], &len);
		assert_int_equal(len, sizes[k % NS]);
		if (len)
			assert_memory_equal(r, buf, len);
		px_future_release(fs[k]);
	}
	/* The arena is bounded by shm_size. */
	void *m;
	assert_int_equal(px_executor_alloc(ex, (size_t)1 << 40, &m), -ENOMEM);
	free(buf);
	px_executor_destroy(ex);
}

/* Stress ------------------------------------------------------------------------ */

static void million_tasks_checksum(void **state)
{
	(void)state;
	px_executor *ex = open_pool("process:workers=2");
	long n = test_scaled(1000000);
	enum { WIN = 4096 };
	px_future **win = calloc(WIN, sizeof(*win));
	int64_t sum = 0, expect = 0;
	for (long i = 0; i < n + WIN; i++) {
		px_future **slot = &win[i % WIN];
		if (*slot) {
			sum += get_i64(*slot);
			px_future_release(*slot);
			*slot = NULL;
		}
		if (i < n) {
			struct job j = { .v = i };
			assert_int_equal(px_executor_submit(ex, mixed, &j, sizeof(j), NULL,
							    slot), 0);
			expect += 2 * i + 1;
		}
	}
	assert_int_equal(sum, expect);
	px_executor_shutdown(ex, true, false);
	px_executor_stats st;
	px_executor_stats_get(ex, &st);
	assert_int_equal(st.submitted, (uint64_t)n);
	assert_int_equal(st.completed, (uint64_t)n);
	assert_int_equal(st.failed, 0);
	assert_int_equal(st.respawns, 0);
	free(win);
	px_executor_destroy(ex);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(crashes_fail_only_their_task),
		cmocka_unit_test(every_task_crashing),
		cmocka_unit_test(timeout_kills_and_replaces),
		cmocka_unit_test(cancel_running_kills_worker),
		cmocka_unit_test(recycling_after_n_tasks),
		cmocka_unit_test(initializer_runs_in_replacements),
		cmocka_unit_test(respawn_while_parent_runs_threads),
		cmocka_unit_test(parent_sigkill_leaves_nothing),
		cmocka_unit_test(shutdown_with_work_pending),
		cmocka_unit_test(large_arguments_and_results),
		cmocka_unit_test(million_tasks_checksum),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
