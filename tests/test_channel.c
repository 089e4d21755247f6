/*
 * tests/test_channel.c - the completion channel: futures from every backend
 * and from the I/O layer complete into one eventfd.
 *
 * The task tests run once per executor backend; each backend is a cmocka
 * group whose setup only sets PAREX_EXECUTOR (as tests/test_executor.c
 * does). The rest use promises, so the test decides when and in which
 * thread each future completes: ownership, readiness of the fd, closing
 * with pending futures, done callbacks that attach or close, bad arguments.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmocka.h>

#include <parex/channel.h>
#include <parex/executor.h>
#include <parex/io.h>

#include "test_util.h"

/* Helpers ------------------------------------------------------------------ */

/* Whether fd is readable within timeout_ms (0: right now). */
static bool readable(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int r;
	do
		r = poll(&p, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	assert_true(r >= 0);
	return r == 1 && (p.revents & POLLIN);
}

static px_channel *new_channel(void)
{
	px_channel *ch = NULL;
	assert_int_equal(px_channel_create(&ch), 0);
	assert_non_null(ch);
	assert_true(px_channel_fd(ch) >= 0);
	return ch;
}

static px_future *new_promise(void)
{
	px_future *f = NULL;
	assert_int_equal(px_promise_create(&f), 0);
	return f;
}

static void *tag(intptr_t i)
{
	return (void *)i;
}

/* Drains everything attached to ch through its fd, as an event loop
 * would: poll, then drain batches of `batch`. Each entry goes to
 * seen[user]; every future is checked by check() and released. */
static void loop_until_empty(px_channel *ch, size_t batch, int *seen,
			     size_t nseen, void (*check)(px_future *, intptr_t))
{
	px_channel_event *ev = calloc(batch, sizeof(*ev));
	assert_non_null(ev);
	int idle = 0;
	while (px_channel_count(ch) > 0) {
		if (!readable(px_channel_fd(ch), 10000)) {
			/* Ten seconds without a wake-up: a lost signal. */
			fail_msg("fd not readable; %zu entries outstanding",
				 px_channel_count(ch));
		}
		int k = px_channel_drain(ch, ev, batch);
		assert_true(k >= 0);
		if (k == 0)
			idle++;
		for (int i = 0; i < k; i++) {
			intptr_t u = (intptr_t)ev[i].user;
			assert_true(u >= 0 && (size_t)u < nseen);
			seen[u]++;
			assert_true(px_future_is_done(ev[i].future));
			if (check)
				check(ev[i].future, u);
			px_future_release(ev[i].future);
		}
	}
	/* Nothing attached: one more drain clears any leftover signal, and
	 * then the fd stays quiet. */
	assert_int_equal(px_channel_drain(ch, ev, batch), 0);
	assert_false(readable(px_channel_fd(ch), 0));
	free(ev);
}

/* Backends ----------------------------------------------------------------- */

struct backend {
	const char *spec; /* PAREX_EXECUTOR for this group */
	bool concurrent;  /* tasks run apart from the submitter */
};

static const struct backend *cur;

static int use_backend(void **state)
{
	cur = *state;
	setenv("PAREX_EXECUTOR", cur->spec, 1);
	unsetenv("PAREX_CONFIG");
	return 0;
}

static px_executor *open_backend(void)
{
	px_executor *ex = NULL;
	char err[256];
	int r = px_executor_open(&ex, NULL, err, sizeof(err));
	if (r)
		fail_msg("px_executor_open(%s): %s (%s)", cur->spec,
			 px_strerror(r), err);
	return ex;
}

static int triple(px_task *t, const void *arg, size_t len)
{
	int64_t v;
	if (len != sizeof(v))
		return -EINVAL;
	memcpy(&v, arg, sizeof(v));
	v *= 3;
	return px_task_return(t, &v, sizeof(v));
}

/* Odd arguments fail with -EIO and a message, even ones succeed. */
static int odd_fails(px_task *t, const void *arg, size_t len)
{
	int64_t v;
	if (len != sizeof(v))
		return -EINVAL;
	memcpy(&v, arg, sizeof(v));
	if (v & 1)
		return px_task_fail(t, -EIO, "odd %lld", (long long)v);
	return px_task_return(t, &v, sizeof(v));
}

/* A gate in executor-shared memory: tasks wait until the test opens it. */
static void check_triple(px_future *f, intptr_t u)
{
	int64_t v = -1;
	assert_int_equal(px_future_get_i64(f, 0, &v), 0);
	assert_int_equal(v, 3 * (int64_t)u);
}

/* Many tasks, attached as submitted and released at once ("submit, attach,
 * forget"): every result arrives exactly once, through the fd. */
static void tasks_complete_through_fd(void **state)
{
	(void)state;
	const size_t n = (size_t)test_scaled(20000);
	px_executor *ex = open_backend();
	px_channel *ch = new_channel();
	int *seen = calloc(n, sizeof(*seen));
	assert_non_null(seen);
	for (size_t i = 0; i < n; i++) {
		int64_t v = (int64_t)i;
		px_future *f;
		assert_int_equal(px_executor_submit(ex, triple, &v, sizeof(v),
						    NULL, &f), 0);
		assert_int_equal(px_channel_add(ch, f, tag((intptr_t)i)), 0);
		px_future_release(f);
	}
	loop_until_empty(ch, 64, seen, n, check_triple);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(seen[i], 1);
	free(seen);
	px_channel_close(ch);
	px_executor_destroy(ex);
}

/* Draining while tasks still run, with a batch of one: partial drains keep
 * the fd readable and nothing is lost or doubled. */
static void tasks_drained_one_at_a_time(void **state)
{
	(void)state;
	const size_t n = (size_t)test_scaled(3000);
	px_executor *ex = open_backend();
	px_channel *ch = new_channel();
	int *seen = calloc(n, sizeof(*seen));
	assert_non_null(seen);
	for (size_t i = 0; i < n; i++) {
		int64_t v = (int64_t)i;
		px_future *f;
		assert_int_equal(px_executor_submit(ex, triple, &v, sizeof(v),
						    NULL, &f), 0);
		assert_int_equal(px_channel_add(ch, f, tag((intptr_t)i)), 0);
		px_future_release(f);
	}
	loop_until_empty(ch, 1, seen, n, check_triple);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(seen[i], 1);
	free(seen);
	px_channel_close(ch);
	px_executor_destroy(ex);
}

static void check_odd_fails(px_future *f, intptr_t u)
{
	if (u & 1) {
		assert_int_equal(px_future_error(f), -EIO);
		char want[32];
		snprintf(want, sizeof(want), "odd %lld", (long long)u);
		assert_non_null(px_future_message(f));
		assert_string_equal(px_future_message(f), want);
	} else {
		int64_t v = -1;
		assert_int_equal(px_future_get_i64(f, 0, &v), 0);
		assert_int_equal(v, (int64_t)u);
	}
}

/* Failed tasks arrive like successful ones, with their error and message. */
static void failures_arrive_with_their_error(void **state)
{
	(void)state;
	const size_t n = 200;
	px_executor *ex = open_backend();
	px_channel *ch = new_channel();
	int seen[200] = { 0 };
	for (size_t i = 0; i < n; i++) {
		int64_t v = (int64_t)i;
		px_future *f;
		assert_int_equal(px_executor_submit(ex, odd_fails, &v, sizeof(v),
						    NULL, &f), 0);
		assert_int_equal(px_channel_add(ch, f, tag((intptr_t)i)), 0);
		px_future_release(f);
	}
	loop_until_empty(ch, 16, seen, n, check_odd_fails);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(seen[i], 1);
	px_channel_close(ch);
	px_executor_destroy(ex);
}

/* Queued tasks cancelled while attached arrive as cancelled; the tasks
 * that held the workers arrive when they finish. */
static void cancelled_tasks_arrive_cancelled(void **state)
{
	(void)state;
	if (!cur->concurrent)
		skip();
	px_executor *ex = open_backend();
	int workers = px_executor_workers(ex);
	assert_true(workers > 0 && workers <= 8);
	struct gate *g;
	assert_int_equal(px_executor_alloc(ex, sizeof(*g), (void **)&g), 0);
	atomic_init(&g->open, 0);
	atomic_init(&g->entered, 0);
	px_channel *ch = new_channel();
	px_future *blockers[8], *queued[10];
	for (int i = 0; i < workers; i++) {
		assert_int_equal(px_executor_submit(ex, wait_gate, &g, sizeof(g),
						    NULL, &blockers[i]), 0);
		assert_int_equal(px_channel_add(ch, blockers[i], tag(100 + i)), 0);
	}
	while (atomic_load(&g->entered) < workers)
		usleep(1000);
	for (int i = 0; i < 10; i++) {
		int64_t v = i;
		assert_int_equal(px_executor_submit(ex, triple, &v, sizeof(v),
						    NULL, &queued[i]), 0);
		assert_int_equal(px_channel_add(ch, queued[i], tag(i)), 0);
	}
	assert_int_equal(px_channel_count(ch), (size_t)(workers + 10));
	for (int i = 0; i < 10; i++)
		assert_int_equal(px_future_cancel(queued[i], 0), 0);
	/* The ten cancellations are ready now, the blockers are not. */
	assert_true(readable(px_channel_fd(ch), 10000));
	px_channel_event ev[32];
	int k = px_channel_drain(ch, ev, 32);
	assert_int_equal(k, 10);
	for (int i = 0; i < k; i++) {
		intptr_t u = (intptr_t)ev[i].user;
		assert_true(u >= 0 && u < 10);
		assert_ptr_equal(ev[i].future, queued[u]);
		assert_int_equal(px_future_error(ev[i].future), -ECANCELED);
		px_future_release(ev[i].future);
	}
	assert_int_equal(px_channel_count(ch), (size_t)workers);
	atomic_store(&g->open, 1);
	int got = 0;
	while (got < workers) {
		assert_true(readable(px_channel_fd(ch), 10000));
		k = px_channel_drain(ch, ev, 32);
		assert_true(k >= 0);
		for (int i = 0; i < k; i++) {
			intptr_t u = (intptr_t)ev[i].user;
			assert_true(u >= 100 && u < 100 + workers);
			assert_int_equal(px_future_error(ev[i].future), 0);
			px_future_release(ev[i].future);
		}
		got += k;
	}
	assert_int_equal(got, workers);
	assert_int_equal(px_channel_count(ch), 0);
	for (int i = 0; i < workers; i++)
		px_future_release(blockers[i]);
	for (int i = 0; i < 10; i++)
		px_future_release(queued[i]);
	px_channel_close(ch);
	px_executor_free(ex, g);
	px_executor_destroy(ex);
}

/* Closing a channel while its tasks still run: they complete later for
 * their other holders and touch no freed channel. */
static void close_while_tasks_run(void **state)
{
	(void)state;
	const size_t n = (size_t)test_scaled(2000);
	px_executor *ex = open_backend();
	px_future **fs = calloc(n, sizeof(*fs));
	assert_non_null(fs);
	for (int round = 0; round < 5; round++) {
		px_channel *ch = new_channel();
		for (size_t i = 0; i < n; i++) {
			int64_t v = (int64_t)i;
			assert_int_equal(px_executor_submit(ex, triple, &v,
							    sizeof(v), NULL,
							    &fs[i]), 0);
			assert_int_equal(px_channel_add(ch, fs[i], NULL), 0);
		}
		px_channel_close(ch); /* some finished, most still queued */
		for (size_t i = 0; i < n; i++) {
			int64_t v = -1;
			assert_int_equal(px_future_get_i64(fs[i], PX_FOREVER, &v),
					 0);
			assert_int_equal(v, 3 * (int64_t)i);
			px_future_release(fs[i]);
		}
	}
	free(fs);
	px_executor_destroy(ex);
}

#define BACKEND_TESTS                                                        \
	cmocka_unit_test(tasks_complete_through_fd),                         \
	cmocka_unit_test(tasks_drained_one_at_a_time),                       \
	cmocka_unit_test(failures_arrive_with_their_error),                  \
	cmocka_unit_test(cancelled_tasks_arrive_cancelled),                  \
	cmocka_unit_test(close_while_tasks_run)

static const struct backend backends[] = {
	{ "inline", false },
	{ "thread:workers=2", true },
	{ "thread:workers=2,gil=1", true },
	{ "process:workers=2", true },
};

/* Promises: ownership and readiness ---------------------------------------- */

static void bad_arguments(void **state)
{
	(void)state;
	px_channel *ch = new_channel();
	px_future *f = new_promise();
	px_channel_event ev[1];
	assert_int_equal(px_channel_create(NULL), -EINVAL);
	assert_int_equal(px_channel_fd(NULL), -EINVAL);
	assert_int_equal(px_channel_add(NULL, f, NULL), -EINVAL);
	assert_int_equal(px_channel_add(ch, NULL, NULL), -EINVAL);
	assert_int_equal(px_channel_drain(NULL, ev, 1), -EINVAL);
	assert_int_equal(px_channel_drain(ch, NULL, 1), -EINVAL);
	assert_int_equal(px_channel_drain(ch, NULL, 0), 0);
	assert_int_equal(px_channel_drain(ch, ev, 0), 0);
	assert_int_equal(px_channel_count(NULL), 0);
	px_channel_close(NULL);
	/* None of the failed calls attached anything. */
	assert_int_equal(px_channel_count(ch), 0);
	assert_int_equal(px_promise_set_i64(f, 1), 0);
	assert_false(readable(px_channel_fd(ch), 0));
	assert_int_equal(px_channel_drain(ch, ev, 1), 0);
	px_future_release(f);
	px_channel_close(ch);
}

/* Without a free file descriptor, create fails with eventfd's error. */
static void create_without_fds_fails(void **state)
{
	(void)state;
	struct rlimit old, low;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	int lowest = dup(0);
	assert_true(lowest >= 0);
	close(lowest);
	low = old;
	low.rlim_cur = (rlim_t)lowest; /* every new fd would be >= lowest */
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	px_channel *ch = (px_channel *)&low; /* must stay untouched */
	int r = px_channel_create(&ch);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	assert_int_equal(r, -EMFILE);
	assert_ptr_equal(ch, (px_channel *)&low);
}

/* An already finished future is ready at once; the reference the drain
 * hands out is the channel's, not the caller's. */
static void finished_future_ready_at_once(void **state)
{
	(void)state;
	px_channel *ch = new_channel();
	px_future *f = new_promise();
	assert_int_equal(px_promise_set_i64(f, 42), 0);
	int ctx;
	assert_int_equal(px_channel_add(ch, f, &ctx), 0);
	px_future_release(f); /* ours: the channel keeps its own */
	assert_int_equal(px_channel_count(ch), 1);
	assert_true(readable(px_channel_fd(ch), 0));
	px_channel_event ev[4];
	assert_int_equal(px_channel_drain(ch, ev, 4), 1);
	assert_ptr_equal(ev[0].future, f);
	assert_ptr_equal(ev[0].user, &ctx);
	int64_t v = 0;
	assert_int_equal(px_future_get_i64(ev[0].future, 0, &v), 0);
	assert_int_equal(v, 42);
	px_future_release(ev[0].future); /* the last reference */
	assert_int_equal(px_channel_count(ch), 0);
	assert_false(readable(px_channel_fd(ch), 0));
	px_channel_close(ch);
}

/* A pending future makes the fd readable only when it completes, in
 * whichever way: result, error, cancel. */
static void pending_futures_signal_on_completion(void **state)
{
	(void)state;
	px_channel *ch = new_channel();
	px_future *f[3];
	for (int i = 0; i < 3; i++) {
		f[i] = new_promise();
		assert_int_equal(px_channel_add(ch, f[i], tag(i)), 0);
	}
	px_channel_event ev[4];
	assert_false(readable(px_channel_fd(ch), 0));
	assert_int_equal(px_channel_drain(ch, ev, 4), 0);
	assert_int_equal(px_channel_count(ch), 3);

	assert_int_equal(px_promise_set_error(f[1], -ENOENT, "gone"), 0);
	assert_true(readable(px_channel_fd(ch), 0));
	assert_int_equal(px_channel_drain(ch, ev, 4), 1);
	assert_ptr_equal(ev[0].future, f[1]);
	assert_ptr_equal(ev[0].user, tag(1));
	assert_int_equal(px_future_error(ev[0].future), -ENOENT);
	assert_string_equal(px_future_message(ev[0].future), "gone");
	px_future_release(ev[0].future);
	assert_false(readable(px_channel_fd(ch), 0));

	assert_int_equal(px_future_cancel(f[2], 0), 0);
	assert_int_equal(px_promise_set_i64(f[0], 7), 0);
	assert_true(readable(px_channel_fd(ch), 0));
	assert_int_equal(px_channel_drain(ch, ev, 4), 2);
	/* Oldest completion first. */
	assert_ptr_equal(ev[0].future, f[2]);
	assert_int_equal(px_future_state_get(ev[0].future), PX_FUTURE_CANCELLED);
	assert_ptr_equal(ev[1].future, f[0]);
	assert_int_equal(px_future_error(ev[1].future), 0);
	px_future_release(ev[0].future);
	px_future_release(ev[1].future);
	assert_int_equal(px_channel_count(ch), 0);
	assert_false(readable(px_channel_fd(ch), 0));
	for (int i = 0; i < 3; i++)
		px_future_release(f[i]);
	px_channel_close(ch);
}

/* A burst of completions costs one eventfd write, not one per future. */
static void burst_signals_once(void **state)
{
	(void)state;
	enum { N = 100 };
	px_channel *ch = new_channel();
	px_future *f[N];
	for (int i = 0; i < N; i++) {
		f[i] = new_promise();
		assert_int_equal(px_channel_add(ch, f[i], tag(i)), 0);
		px_future_release(f[i]); /* the channel's reference keeps it */
	}
	for (int i = 0; i < N; i++)
		assert_int_equal(px_promise_set_i64(f[i], i), 0);
	/* Peek at the counter (white box), then put it back. */
	uint64_t cnt = 0;
	assert_int_equal(read(px_channel_fd(ch), &cnt, sizeof(cnt)),
			 (ssize_t)sizeof(cnt));
	assert_int_equal(cnt, 1);
	assert_int_equal(write(px_channel_fd(ch), &cnt, sizeof(cnt)),
			 (ssize_t)sizeof(cnt));
	px_channel_event ev[N + 1];
	assert_int_equal(px_channel_drain(ch, ev, N + 1), N);
	for (int i = 0; i < N; i++) {
		assert_ptr_equal(ev[i].user, tag(i)); /* completion order */
		int64_t v = -1;
		assert_int_equal(px_future_get_i64(ev[i].future, 0, &v), 0);
		assert_int_equal(v, i);
		px_future_release(ev[i].future);
	}
	assert_false(readable(px_channel_fd(ch), 0));
	px_channel_close(ch);
}

/* After a partial drain the fd is readable again while entries remain;
 * after a drain that returns fewer than asked it is quiet. */
static void partial_drain_stays_readable(void **state)
{
	(void)state;
	enum { N = 10 };
	px_channel *ch = new_channel();
	for (int i = 0; i < N; i++) {
		px_future *f = new_promise();
		assert_int_equal(px_channel_add(ch, f, tag(i)), 0);
		assert_int_equal(px_promise_set_i64(f, i), 0);
		px_future_release(f);
	}
	px_channel_event ev[N];
	int next = 0;
	for (int round = 0; round < 3; round++) {
		assert_true(readable(px_channel_fd(ch), 0));
		assert_int_equal(px_channel_drain(ch, ev, 3), 3);
		for (int i = 0; i < 3; i++) {
			assert_ptr_equal(ev[i].user, tag(next++));
			px_future_release(ev[i].future);
		}
		assert_int_equal(px_channel_count(ch), (size_t)(N - next));
	}
	/* A completion between partial drains joins the queue behind. */
	px_future *late = new_promise();
	assert_int_equal(px_channel_add(ch, late, tag(N)), 0);
	assert_int_equal(px_promise_set_i64(late, N), 0);
	px_future_release(late);
	assert_true(readable(px_channel_fd(ch), 0));
	assert_int_equal(px_channel_drain(ch, ev, N), 2);
	assert_ptr_equal(ev[0].user, tag(9));
	assert_ptr_equal(ev[1].user, tag(N));
	px_future_release(ev[0].future);
	px_future_release(ev[1].future);
	assert_false(readable(px_channel_fd(ch), 0));
	assert_int_equal(px_channel_count(ch), 0);
	px_channel_close(ch);
}

/* A future on two channels, and twice on one: each attachment is one
 * entry with its own reference. */
static void one_future_many_attachments(void **state)
{
	(void)state;
	px_channel *a = new_channel(), *b = new_channel();
	px_future *f = new_promise();
	assert_int_equal(px_channel_add(a, f, tag(1)), 0);
	assert_int_equal(px_channel_add(a, f, tag(2)), 0);
	assert_int_equal(px_channel_add(b, f, tag(3)), 0);
	px_future_release(f);
	assert_int_equal(px_promise_set_i64(f, 5), 0);
	px_channel_event ev[4];
	assert_int_equal(px_channel_drain(a, ev, 4), 2);
	assert_ptr_equal(ev[0].future, f);
	assert_ptr_equal(ev[1].future, f);
	assert_ptr_equal(ev[0].user, tag(1));
	assert_ptr_equal(ev[1].user, tag(2));
	px_future_release(ev[0].future);
	px_future_release(ev[1].future);
	px_channel_close(a);
	assert_true(readable(px_channel_fd(b), 0));
	assert_int_equal(px_channel_drain(b, ev, 4), 1);
	assert_ptr_equal(ev[0].user, tag(3));
	int64_t v = 0;
	assert_int_equal(px_future_get_i64(ev[0].future, 0, &v), 0);
	assert_int_equal(v, 5);
	px_future_release(ev[0].future); /* the last one: freed here */
	px_channel_close(b);
}

/* Closing with pending and with ready, undrained entries drops the
 * channel's references; futures completed afterwards touch nothing freed
 * (AddressSanitizer and ThreadSanitizer watch this). */
static void close_with_pending_and_ready(void **state)
{
	(void)state;
	px_channel *ch = new_channel();
	px_future *kept = new_promise(), *ready = new_promise();
	assert_int_equal(px_channel_add(ch, kept, NULL), 0);
	assert_int_equal(px_channel_add(ch, ready, NULL), 0);
	assert_int_equal(px_promise_set_i64(ready, 1), 0);
	px_future_release(ready); /* only the channel holds it now */
	for (int i = 0; i < 50; i++) {
		px_future *f = new_promise();
		assert_int_equal(px_channel_add(ch, f, NULL), 0);
		px_future_release(f); /* never completed: freed by close */
	}
	assert_int_equal(px_channel_count(ch), 52);
	px_channel_close(ch);
	assert_int_equal(px_promise_set_i64(kept, 9), 0);
	int64_t v = 0;
	assert_int_equal(px_future_get_i64(kept, 0, &v), 0);
	assert_int_equal(v, 9);
	px_future_release(kept);
}

struct closer {
	px_channel *ch;
	atomic_int calls;
};

static void close_in_callback(px_future *f, void *arg)
{
	(void)f;
	struct closer *c = arg;
	atomic_fetch_add(&c->calls, 1);
	px_channel_close(c->ch);
}

/* A done callback closes the channel while the future is firing: the
 * channel's own node for that future may come before or after the
 * callback on the completion list. */
static void done_callback_closes_channel(void **state)
{
	(void)state;
	for (int order = 0; order < 2; order++) {
		struct closer c = { .ch = new_channel() };
		atomic_init(&c.calls, 0);
		px_future *f = new_promise(), *other = new_promise();
		assert_int_equal(px_channel_add(c.ch, other, NULL), 0);
		if (order == 0) {
			assert_int_equal(px_future_on_done(f, close_in_callback,
							   &c), 0);
			assert_int_equal(px_channel_add(c.ch, f, NULL), 0);
		} else {
			assert_int_equal(px_channel_add(c.ch, f, NULL), 0);
			assert_int_equal(px_future_on_done(f, close_in_callback,
							   &c), 0);
		}
		assert_int_equal(px_promise_set_i64(f, 1), 0);
		assert_int_equal(atomic_load(&c.calls), 1);
		/* The channel is gone; the other future completes quietly. */
		assert_int_equal(px_promise_set_i64(other, 2), 0);
		px_future_release(f);
		px_future_release(other);
	}
}

struct attacher {
	px_channel *ch;
	px_future *also; /* pending, attached from the callback */
};

static void attach_in_callback(px_future *f, void *arg)
{
	struct attacher *a = arg;
	assert_int_equal(px_channel_add(a->ch, f, tag(1)), 0); /* finished */
	assert_int_equal(px_channel_add(a->ch, a->also, tag(2)), 0);
}

/* A done callback attaches its own (finished) future and a pending one. */
static void done_callback_attaches(void **state)
{
	(void)state;
	struct attacher a = { .ch = new_channel(), .also = new_promise() };
	px_future *f = new_promise();
	assert_int_equal(px_future_on_done(f, attach_in_callback, &a), 0);
	assert_int_equal(px_promise_set_i64(f, 1), 0);
	assert_int_equal(px_channel_count(a.ch), 2);
	px_channel_event ev[4];
	assert_int_equal(px_channel_drain(a.ch, ev, 4), 1);
	assert_ptr_equal(ev[0].future, f);
	assert_ptr_equal(ev[0].user, tag(1));
	px_future_release(ev[0].future);
	assert_int_equal(px_promise_set_i64(a.also, 2), 0);
	assert_int_equal(px_channel_drain(a.ch, ev, 4), 1);
	assert_ptr_equal(ev[0].future, a.also);
	assert_ptr_equal(ev[0].user, tag(2));
	px_future_release(ev[0].future);
	px_future_release(a.also);
	px_future_release(f);
	px_channel_close(a.ch);
}

/* Threads: producers complete, adders attach, the main thread drains ----- */

struct racer {
	px_channel *ch;
	px_future **fs;
	size_t from, to;
	atomic_int *go;
};

static void *complete_range(void *p)
{
	struct racer *r = p;
	while (!atomic_load(r->go))
		;
	for (size_t i = r->from; i < r->to; i++)
		if (px_promise_set_i64(r->fs[i], (int64_t)i) != 0)
			return (void *)1;
	return NULL;
}

static void check_identity(px_future *f, intptr_t u)
{
	int64_t v = -1;
	assert_int_equal(px_future_get_i64(f, 0, &v), 0);
	assert_int_equal(v, (int64_t)u);
}

/* Three threads complete futures while the main thread drains through the
 * fd: every entry exactly once, no wake-up lost. */
static void concurrent_completions(void **state)
{
	(void)state;
	enum { T = 3 };
	const size_t n = (size_t)test_scaled(60000);
	px_channel *ch = new_channel();
	px_future **fs = calloc(n, sizeof(*fs));
	int *seen = calloc(n, sizeof(*seen));
	assert_non_null(fs);
	assert_non_null(seen);
	for (size_t i = 0; i < n; i++) {
		fs[i] = new_promise();
		assert_int_equal(px_channel_add(ch, fs[i], tag((intptr_t)i)), 0);
	}
	atomic_int go;
	atomic_init(&go, 0);
	pthread_t th[T];
	struct racer r[T];
	for (int t = 0; t < T; t++) {
		r[t] = (struct racer){ ch, fs, n * t / T, n * (t + 1) / T, &go };
		assert_int_equal(pthread_create(&th[t], NULL, complete_range,
						&r[t]), 0);
	}
	atomic_store(&go, 1);
	loop_until_empty(ch, 37, seen, n, check_identity);
	for (int t = 0; t < T; t++) {
		void *ret;
		pthread_join(th[t], &ret);
		assert_null(ret);
	}
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(seen[i], 1);
		px_future_release(fs[i]);
	}
	free(fs);
	free(seen);
	px_channel_close(ch);
}

struct adder {
	px_channel *ch;
	size_t from, to;
	atomic_int *go;
};

/* Attaches promises from another thread and completes every other one at
 * once (some finish before, some after the attach). */
static void *add_range(void *p)
{
	struct adder *a = p;
	while (!atomic_load(a->go))
		;
	for (size_t i = a->from; i < a->to; i++) {
		px_future *f;
		if (px_promise_create(&f))
			return (void *)1;
		if (i & 1)
			px_promise_set_i64(f, (int64_t)i);
		if (px_channel_add(a->ch, f, tag((intptr_t)i)))
			return (void *)1;
		if (!(i & 1))
			px_promise_set_i64(f, (int64_t)i);
		px_future_release(f);
	}
	return NULL;
}

/* Two threads attach while the main thread drains. */
static void concurrent_adds(void **state)
{
	(void)state;
	enum { T = 2 };
	const size_t n = (size_t)test_scaled(40000);
	px_channel *ch = new_channel();
	int *seen = calloc(n, sizeof(*seen));
	assert_non_null(seen);
	atomic_int go;
	atomic_init(&go, 0);
	pthread_t th[T];
	struct adder a[T];
	for (int t = 0; t < T; t++) {
		a[t] = (struct adder){ ch, n * t / T, n * (t + 1) / T, &go };
		assert_int_equal(pthread_create(&th[t], NULL, add_range, &a[t]), 0);
	}
	atomic_store(&go, 1);
	size_t got = 0;
	px_channel_event ev[50];
	while (got < n) {
		assert_true(readable(px_channel_fd(ch), 10000));
		int k = px_channel_drain(ch, ev, 50);
		assert_true(k >= 0);
		for (int i = 0; i < k; i++) {
			intptr_t u = (intptr_t)ev[i].user;
			assert_true(u >= 0 && (size_t)u < n);
			seen[u]++;
			check_identity(ev[i].future, u);
			px_future_release(ev[i].future);
		}
		got += (size_t)k;
	}
	for (int t = 0; t < T; t++) {
		void *ret;
		pthread_join(th[t], &ret);
		assert_null(ret);
	}
	assert_int_equal(px_channel_drain(ch, ev, 50), 0);
	assert_int_equal(px_channel_count(ch), 0);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(seen[i], 1);
	free(seen);
	px_channel_close(ch);
}

struct drainer {
	px_channel *ch;
	size_t n;
	atomic_size_t *total;
	atomic_int *seen;
};

/* Drains through the fd until all n entries are taken, by anyone. */
static void *drain_some(void *p)
{
	struct drainer *d = p;
	px_channel_event ev[7];
	while (atomic_load(d->total) < d->n) {
		struct pollfd pf = { .fd = px_channel_fd(d->ch), .events = POLLIN };
		poll(&pf, 1, 10);
		int k = px_channel_drain(d->ch, ev, 7);
		if (k < 0)
			goto bad;
		for (int i = 0; i < k; i++) {
			intptr_t u = (intptr_t)ev[i].user;
			int64_t v = -1;
			if (u < 0 || (size_t)u >= d->n ||
			    px_future_get_i64(ev[i].future, 0, &v) || v != u)
				goto bad;
			atomic_fetch_add(&d->seen[u], 1);
			px_future_release(ev[i].future);
		}
		atomic_fetch_add(d->total, (size_t)k);
	}
	return NULL;
bad:
	atomic_store(d->total, SIZE_MAX); /* stops the other drainer too */
	return (void *)1;
}

/* Two threads drain while two complete: each entry goes to exactly one. */
static void concurrent_drains(void **state)
{
	(void)state;
	enum { T = 2 };
	const size_t n = (size_t)test_scaled(40000);
	px_channel *ch = new_channel();
	px_future **fs = calloc(n, sizeof(*fs));
	atomic_int *seen = calloc(n, sizeof(*seen));
	assert_non_null(fs);
	assert_non_null(seen);
	for (size_t i = 0; i < n; i++) {
		fs[i] = new_promise();
		assert_int_equal(px_channel_add(ch, fs[i], tag((intptr_t)i)), 0);
	}
	atomic_int go;
	atomic_init(&go, 0);
	atomic_size_t total;
	atomic_init(&total, 0);
	pthread_t prod[T], cons[T];
	struct racer r[T];
	struct drainer d = { ch, n, &total, seen };
	for (int t = 0; t < T; t++) {
		r[t] = (struct racer){ ch, fs, n * t / T, n * (t + 1) / T, &go };
		assert_int_equal(pthread_create(&prod[t], NULL, complete_range,
						&r[t]), 0);
		assert_int_equal(pthread_create(&cons[t], NULL, drain_some, &d), 0);
	}
	atomic_store(&go, 1);
	for (int t = 0; t < T; t++) {
		void *ret;
		pthread_join(prod[t], &ret);
		assert_null(ret);
		pthread_join(cons[t], &ret);
		assert_null(ret);
	}
	assert_int_equal(atomic_load(&total), n);
	assert_int_equal(px_channel_count(ch), 0);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(atomic_load(&seen[i]), 1);
		px_future_release(fs[i]);
	}
	free(fs);
	free(seen);
	px_channel_close(ch);
}

/* Closing while other threads complete the attached futures. */
static void close_races_completions(void **state)
{
	(void)state;
	enum { T = 2, N = 2000 };
	const int rounds = (int)test_scaled(30);
	px_future **fs = calloc(N, sizeof(*fs));
	assert_non_null(fs);
	for (int round = 0; round < rounds; round++) {
		px_channel *ch = new_channel();
		for (size_t i = 0; i < N; i++) {
			fs[i] = new_promise();
			assert_int_equal(px_channel_add(ch, fs[i], NULL), 0);
		}
		atomic_int go;
		atomic_init(&go, 0);
		pthread_t th[T];
		struct racer r[T];
		for (int t = 0; t < T; t++) {
			r[t] = (struct racer){ ch, fs, (size_t)N * t / T,
					       (size_t)N * (t + 1) / T, &go };
			assert_int_equal(pthread_create(&th[t], NULL,
							complete_range, &r[t]), 0);
		}
		atomic_store(&go, 1);
		/* Drain a little, then close mid-stream. */
		px_channel_event ev[16];
		int k = px_channel_drain(ch, ev, 16);
		assert_true(k >= 0);
		for (int i = 0; i < k; i++)
			px_future_release(ev[i].future);
		px_channel_close(ch);
		for (int t = 0; t < T; t++) {
			void *ret;
			pthread_join(th[t], &ret);
			assert_null(ret);
		}
		for (size_t i = 0; i < N; i++) {
			assert_true(px_future_is_done(fs[i]));
			px_future_release(fs[i]);
		}
	}
	free(fs);
}

/* I/O futures ------------------------------------------------------------- */

/* Sleeps and no-ops from the I/O layer, and a cancelled sleep. */
static void io_futures(void **state)
{
	(void)state;
	px_io *io = NULL;
	int r = px_io_create(&io, NULL);
	if (r)
		fail_msg("px_io_create: %s", px_strerror(r));
	px_channel *ch = new_channel();
	enum { SLEEPS = 100, NOPS = 1000 };
	int seen[SLEEPS + NOPS + 1] = { 0 };
	for (int i = 0; i < SLEEPS; i++) {
		px_future *f;
		assert_int_equal(px_io_sleep(io, (1 + i % 5) * PX_MSEC, &f), 0);
		assert_int_equal(px_channel_add(ch, f, tag(i)), 0);
		px_future_release(f);
	}
	for (int i = 0; i < NOPS; i++) {
		px_future *f;
		assert_int_equal(px_io_nop(io, &f), 0);
		assert_int_equal(px_channel_add(ch, f, tag(SLEEPS + i)), 0);
		px_future_release(f);
	}
	px_future *longsleep;
	assert_int_equal(px_io_sleep(io, 60 * PX_SEC, &longsleep), 0);
	assert_int_equal(px_channel_add(ch, longsleep, tag(SLEEPS + NOPS)), 0);
	size_t want = SLEEPS + NOPS;
	size_t got = 0;
	px_channel_event ev[64];
	while (got < want) {
		assert_true(readable(px_channel_fd(ch), 10000));
		int k = px_channel_drain(ch, ev, 64);
		assert_true(k >= 0);
		for (int i = 0; i < k; i++) {
			intptr_t u = (intptr_t)ev[i].user;
			assert_true(u >= 0 && u < SLEEPS + NOPS);
			seen[u]++;
			assert_int_equal(px_future_error(ev[i].future), 0);
			px_future_release(ev[i].future);
		}
		got += (size_t)k;
	}
	assert_int_equal(px_channel_count(ch), 1);
	assert_int_equal(px_future_cancel(longsleep, PX_CANCEL_RUNNING), 0);
	assert_true(readable(px_channel_fd(ch), 10000));
	assert_int_equal(px_channel_drain(ch, ev, 64), 1);
	assert_ptr_equal(ev[0].future, longsleep);
	assert_ptr_equal(ev[0].user, tag(SLEEPS + NOPS));
	assert_int_equal(px_future_error(ev[0].future), -ECANCELED);
	px_future_release(ev[0].future);
	px_future_release(longsleep);
	for (int i = 0; i < SLEEPS + NOPS; i++)
		assert_int_equal(seen[i], 1);
	px_channel_close(ch);
	px_io_destroy(io);
}

/* Closing with I/O still in flight, then destroying the context. */
static void io_close_in_flight(void **state)
{
	(void)state;
	px_io *io = NULL;
	assert_int_equal(px_io_create(&io, NULL), 0);
	px_channel *ch = new_channel();
	for (int i = 0; i < 100; i++) {
		px_future *f;
		assert_int_equal(px_io_sleep(io, (i % 3) * PX_MSEC, &f), 0);
		assert_int_equal(px_channel_add(ch, f, NULL), 0);
		px_future_release(f);
	}
	px_channel_close(ch);
	px_io_destroy(io); /* completes (or cancels) the rest */
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = { BACKEND_TESTS };
	const struct CMUnitTest core[] = {
		cmocka_unit_test(bad_arguments),
		cmocka_unit_test(create_without_fds_fails),
		cmocka_unit_test(finished_future_ready_at_once),
		cmocka_unit_test(pending_futures_signal_on_completion),
		cmocka_unit_test(burst_signals_once),
		cmocka_unit_test(partial_drain_stays_readable),
		cmocka_unit_test(one_future_many_attachments),
		cmocka_unit_test(close_with_pending_and_ready),
		cmocka_unit_test(done_callback_closes_channel),
		cmocka_unit_test(done_callback_attaches),
		cmocka_unit_test(concurrent_completions),
		cmocka_unit_test(concurrent_adds),
		cmocka_unit_test(concurrent_drains),
		cmocka_unit_test(close_races_completions),
		cmocka_unit_test(io_futures),
		cmocka_unit_test(io_close_in_flight),
	};
	int fails = 0;
	/* An argument picks groups by prefix: `test_channel promises`,
	 * `test_channel thread`. */
	if (argc == 1 || !strncmp("promises", argv[1], strlen(argv[1])))
		fails += cmocka_run_group_tests_name("promises", core, NULL, NULL);
	for (size_t b = 0; b < sizeof(backends) / sizeof(backends[0]); b++) {
		if (argc > 1 && strncmp(backends[b].spec, argv[1], strlen(argv[1])))
			continue;
		if (!strncmp(backends[b].spec, "process", 7)) {
			px_executor *probe;
			int r = px_executor_open(&probe, "process:workers=1", NULL, 0);
			if (r == PX_ENOBACKEND) {
				printf("[ SKIPPED  ] %s: backend not built in\n",
				       backends[b].spec);
				continue;
			}
			px_executor_destroy(probe);
		}
		void *st = (void *)&backends[b];
		struct CMUnitTest group[sizeof(tests) / sizeof(tests[0])];
		for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
			group[i] = tests[i];
			group[i].initial_state = st;
			group[i].setup_func = use_backend;
		}
		fails += _cmocka_run_group_tests(backends[b].spec, group,
						 sizeof(group) / sizeof(group[0]),
						 NULL, NULL);
	}
	return fails ? 1 : 0;
}
