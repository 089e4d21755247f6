/*
 * examples/channel_epoll.c - an epoll loop that completes parex futures
 * without a blocking thread: the futures are attached to a px_channel, and
 * the loop watches the channel's one file descriptor.
 *
 * It keeps a window of tasks in flight, takes finished futures in batches
 * whenever the fd is readable, checks every result, and submits more until
 * N tasks (default 100,000) are done. The backend comes from the
 * configuration, so the same binary runs on threads or on processes:
 *
 *   PAREX_EXECUTOR=thread:workers=2 build/examples/channel_epoll
 *   PAREX_EXECUTOR=process:workers=2 build/examples/channel_epoll 20000
 *
 * Exits 0 when every result arrived once and was right, 1 otherwise.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include <parex/parex.h>

#define WINDOW 4096 /* tasks in flight at most */
#define BATCH 256   /* entries taken per drain */

/* What the loop keeps per task; its address travels as the user pointer. */
struct job {
	int64_t input;
	int finished; /* times a result arrived: must end at 1 */
};

/* The task: a small hash of its input, so a wrong or swapped result shows. */
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

static int submit(px_executor *ex, px_channel *ch, struct job *j)
{
	px_future *f;
	int r = px_executor_submit(ex, task, &j->input, sizeof(j->input), NULL,
				   &f);
	if (r)
		return r;
	r = px_channel_add(ch, f, j);
	px_future_release(f); /* the channel holds its own reference */
	return r;
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 100000;
	if (n < 1) {
		fprintf(stderr, "usage: %s [N >= 1]\n", argv[0]);
		return 2;
	}
	px_executor *ex;
	char err[256];
	int r = px_executor_open(&ex, NULL, err, sizeof(err));
	if (r) {
		fprintf(stderr, "channel_epoll: %s\n", err);
		return 1;
	}
	px_channel *ch;
	if ((r = px_channel_create(&ch))) {
		fprintf(stderr, "channel_epoll: %s\n", px_strerror(r));
		return 1;
	}
	struct job *jobs = calloc((size_t)n, sizeof(*jobs));
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN };
	if (!jobs || ep < 0 ||
	    epoll_ctl(ep, EPOLL_CTL_ADD, px_channel_fd(ch), &ev)) {
		perror("channel_epoll");
		return 1;
	}

	double t0 = now_ms();
	long submitted = 0, done = 0, bad = 0, wakeups = 0, drains = 0;
	for (; submitted < n && submitted < WINDOW; submitted++) {
		jobs[submitted].input = submitted;
		if ((r = submit(ex, ch, &jobs[submitted])))
			goto fail;
	}
	px_channel_event batch[BATCH];
	while (done < n) {
		struct epoll_event got;
		int k = epoll_wait(ep, &got, 1, 10000);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			fprintf(stderr, "channel_epoll: no completion in 10 s "
				"(%ld of %ld done)\n", done, n);
			return 1;
		}
		wakeups++;
		/* Take what is ready; a full batch means there may be more. */
		do {
			k = px_channel_drain(ch, batch, BATCH);
			if (k < 0) {
				r = k;
				goto fail;
			}
			drains++;
			for (int i = 0; i < k; i++) {
				struct job *j = batch[i].user;
				int64_t y;
				if (px_future_get_i64(batch[i].future, 0, &y) ||
				    y != mix(j->input))
					bad++;
				j->finished++;
				px_future_release(batch[i].future);
			}
			done += k;
			/* Refill the window. */
			for (; submitted < n && submitted - done < WINDOW;
			     submitted++) {
				jobs[submitted].input = submitted;
				if ((r = submit(ex, ch, &jobs[submitted])))
					goto fail;
			}
		} while (k == BATCH);
	}
	double ms = now_ms() - t0;

	for (long i = 0; i < n; i++)
		if (jobs[i].finished != 1)
			bad++;
	printf("channel_epoll: %ld futures on %s (%d workers) in %.1f ms: "
	       "%ld wake-ups, %ld drains, %s\n", n, px_executor_backend(ex),
	       px_executor_workers(ex), ms, wakeups, drains,
	       bad ? "WRONG RESULTS" : "every result checked");
	close(ep);
	free(jobs);
	px_channel_close(ch);
	px_executor_destroy(ex);
	return bad ? 1 : 0;
fail:
	fprintf(stderr, "channel_epoll: %s\n", px_strerror(r));
	return 1;
}
