/*
 * examples/channel_libuv.c - a libuv loop that completes parex futures: a
 * uv_poll_t watches the px_channel's file descriptor, and its callback
 * takes the finished futures in batches.
 *
 * Like channel_epoll.c it keeps a window of tasks in flight, checks every
 * result and submits more until N tasks (default 100,000) are done; a
 * uv_timer fails the run if no completion arrives for 10 s. The backend
 * comes from the configuration:
 *
 *   PAREX_EXECUTOR=thread:workers=2 build/examples/channel_libuv
 *   PAREX_EXECUTOR=process:workers=2 build/examples/channel_libuv 20000
 *
 * Built when libuv (Debian: libuv1-dev) is found. Exits 0 when every result
 * arrived once and was right, 1 otherwise.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include <parex/parex.h>

#define WINDOW 4096 /* tasks in flight at most */
#define BATCH 256   /* entries taken per drain */

struct job {
	int64_t input;
	int finished; /* times a result arrived: must end at 1 */
};

/* Everything the loop's callbacks share, reached through handle->data. */
struct app {
	px_executor *ex;
	px_channel *ch;
	struct job *jobs;
	long n, submitted, done, bad, wakeups, drains;
	int error;
	uv_poll_t poll;
	uv_timer_t watchdog;
};

static int64_t mix(int64_t x)
{
	uint64_t v = (uint64_t)x * 0x9E3779B97F4A7C15u;
	return (int64_t)(v ^ (v >> 29));
}

static int task(px_task *t, const void *arg, size_t len)
{
	int64_t x;
	if (len != sizeof(x))
		return -EINVAL;
	memcpy(&x, arg, sizeof(x));
	int64_t y = mix(x);
	return px_task_return(t, &y, sizeof(y));
}

/* Submits until the window is full or all N are out. */
static int refill(struct app *a)
{
	for (; a->submitted < a->n && a->submitted - a->done < WINDOW;
	     a->submitted++) {
		struct job *j = &a->jobs[a->submitted];
		j->input = a->submitted;
		px_future *f;
		int r = px_executor_submit(a->ex, task, &j->input,
					   sizeof(j->input), NULL, &f);
		if (r)
			return r;
		r = px_channel_add(a->ch, f, j);
		px_future_release(f);
		if (r)
			return r;
	}
	return 0;
}

static void stop(struct app *a)
{
	uv_poll_stop(&a->poll);
	uv_timer_stop(&a->watchdog);
	uv_close((uv_handle_t *)&a->poll, NULL);
	uv_close((uv_handle_t *)&a->watchdog, NULL);
}

static void on_readable(uv_poll_t *h, int status, int events)
{
	struct app *a = h->data;
	(void)events;
	if (status < 0) {
		fprintf(stderr, "channel_libuv: poll: %s\n", uv_strerror(status));
		a->error = 1;
		stop(a);
		return;
	}
	a->wakeups++;
	px_channel_event batch[BATCH];
	int k;
	do {
		k = px_channel_drain(a->ch, batch, BATCH);
		if (k < 0) {
			a->error = 1;
			break;
		}
		a->drains++;
		for (int i = 0; i < k; i++) {
			struct job *j = batch[i].user;
			int64_t y;
			if (px_future_get_i64(batch[i].future, 0, &y) ||
			    y != mix(j->input))
				a->bad++;
			j->finished++;
			px_future_release(batch[i].future);
		}
		a->done += k;
		int r = refill(a);
		if (r) {
			fprintf(stderr, "channel_libuv: %s\n", px_strerror(r));
			a->error = 1;
			break;
		}
	} while (k == BATCH);
	uv_timer_again(&a->watchdog);
	if (a->error || a->done == a->n)
		stop(a);
}

static void on_watchdog(uv_timer_t *t)
{
	struct app *a = t->data;
	fprintf(stderr, "channel_libuv: no completion in 10 s (%ld of %ld done)\n",
		a->done, a->n);
	a->error = 1;
	stop(a);
}

int main(int argc, char **argv)
{
	struct app a = { .n = argc > 1 ? atol(argv[1]) : 100000 };
	if (a.n < 1) {
		fprintf(stderr, "usage: %s [N >= 1]\n", argv[0]);
		return 2;
	}
	char err[256];
	int r = px_executor_open(&a.ex, NULL, err, sizeof(err));
	if (r) {
		fprintf(stderr, "channel_libuv: %s\n", err);
		return 1;
	}
	if ((r = px_channel_create(&a.ch))) {
		fprintf(stderr, "channel_libuv: %s\n", px_strerror(r));
		return 1;
	}
	a.jobs = calloc((size_t)a.n, sizeof(*a.jobs));
	if (!a.jobs)
		return 1;

	uv_loop_t *loop = uv_default_loop();
	uv_poll_init(loop, &a.poll, px_channel_fd(a.ch));
	uv_timer_init(loop, &a.watchdog);
	a.poll.data = &a;
	a.watchdog.data = &a;
	uv_poll_start(&a.poll, UV_READABLE, on_readable);
	uv_timer_start(&a.watchdog, on_watchdog, 10000, 10000);

	uint64_t t0 = uv_hrtime();
	if ((r = refill(&a))) {
		fprintf(stderr, "channel_libuv: %s\n", px_strerror(r));
		return 1;
	}
	uv_run(loop, UV_RUN_DEFAULT);
	double ms = (double)(uv_hrtime() - t0) / 1e6;

	for (long i = 0; i < a.n; i++)
		if (a.jobs[i].finished != 1)
			a.bad++;
	printf("channel_libuv: %ld futures on %s (%d workers) in %.1f ms: "
	       "%ld wake-ups, %ld drains, %s\n", a.n, px_executor_backend(a.ex),
	       px_executor_workers(a.ex), ms, a.wakeups, a.drains,
	       a.bad || a.error ? "FAILED" : "every result checked");
	uv_loop_close(loop);
	free(a.jobs);
	px_channel_close(a.ch);
	px_executor_destroy(a.ex);
	return a.bad || a.error ? 1 : 0;
}
