/*
 * lib/task.c - what a task can do (px_task_*), and running an in-process task
 * on a future (px__task_run), shared by the inline and thread backends.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "executor_internal.h"
#include "gil.h"
#include "trace.h"

PX_API int px_task_return(px_task *t, const void *data, size_t len)
{
	if (!t || (!data && len))
		return -EINVAL;
	if (len > t->max_result)
		return -EMSGSIZE;
	if (t->res_slot) {
		/* A map record: this runs once per record, so the usual sizes
		 * get a fixed-size copy, not a call to memcpy. */
		if (len == 8)
			memcpy(t->res_slot, data, 8);
		else if (len == 4)
			memcpy(t->res_slot, data, 4);
		else if (len)
			memcpy(t->res_slot, data, len);
		t->res_len = len;
		return 0;
	}
	return t->ops->set_result(t, data, len);
}

PX_API int px_task_fail(px_task *t, int err, const char *fmt, ...)
{
	if (err > 0)
		err = -err;
	if (err == 0)
		err = -EIO;
	if (t && fmt) {
		char msg[512];
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
		t->ops->set_message(t, msg);
	}
	return err;
}

PX_API int px_task_worker_id(const px_task *t)
{
	return t ? t->worker_id : -EINVAL;
}

PX_API void px_task_blocking_begin(px_task *t)
{
	if (t && t->ops->blocking_begin)
		t->ops->blocking_begin(t);
}

PX_API void px_task_blocking_end(px_task *t)
{
	if (t && t->ops->blocking_end)
		t->ops->blocking_end(t);
}

PX_API int px_task_sleep(px_task *t, int64_t ns)
{
	if (ns <= 0)
		return 0;
	px_task_blocking_begin(t);
	struct timespec ts = { .tv_sec = ns / PX_SEC, .tv_nsec = ns % PX_SEC };
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
	px_task_blocking_end(t);
	return 0;
}

/* Task ops over an in-process future. */

static int fut_set_result(px_task *t, const void *data, size_t len)
{
	return px__future_store_result(t->f, data, len);
}

static void fut_set_message(px_task *t, const char *msg)
{
	px__future_store_message(t->f, msg);
}

/* Blocking sections nest (px_task_sleep inside a begin/end pair): only the
 * outermost one releases and retakes the GIL. */
static void fut_blocking_begin(px_task *t)
{
	if (t->blocking_depth++ == 0)
		t->blocking = px__blocking_enter();
}

static void fut_blocking_end(px_task *t)
{
	if (t->blocking_depth == 0)
		return; /* unpaired end: ignore */
	if (--t->blocking_depth == 0) {
		px__blocking_leave(t->blocking);
		t->blocking = NULL;
	}
}

void *px__future_result_buffer(px_future *f, size_t len)
{
	if (len > UINT32_MAX)
		return NULL;
	void *p;
	if (f->result != f->res_inline && f->result_len >= len) {
		p = f->result; /* attached by map(), big enough */
	} else if (len <= PX__RES_INLINE) {
		p = f->res_inline;
	} else {
		p = malloc(len);
		if (!p)
			return NULL;
	}
	if (f->result != f->res_inline && f->result != p)
		free(f->result);
	f->result = p;
	f->result_len = (uint32_t)len;
	return p;
}

static void *fut_result_buffer(px_task *t, size_t len)
{
	if (len > t->max_result)
		return NULL;
	return px__future_result_buffer(t->f, len);
}

const struct px__task_ops px__future_task_ops = {
	.set_result = fut_set_result,
	.result_buffer = fut_result_buffer,
	.set_message = fut_set_message,
	.blocking_begin = fut_blocking_begin,
	.blocking_end = fut_blocking_end,
};

void px__counts_record(struct px__counts *c, int err)
{
	/* Single writer: a relaxed load/store pair is an increment. */
	_Atomic uint64_t *k = err == 0 ? &c->completed
			      : err == -ECANCELED ? &c->cancelled : &c->failed;
	atomic_store_explicit(k, atomic_load_explicit(k, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

void px__counts_add(px_executor_stats *out, const struct px__counts *c)
{
	out->completed += atomic_load_explicit(&c->completed, memory_order_relaxed);
	out->failed += atomic_load_explicit(&c->failed, memory_order_relaxed);
	out->cancelled += atomic_load_explicit(&c->cancelled, memory_order_relaxed);
	out->busy_ns += atomic_load_explicit(&c->busy_ns, memory_order_relaxed);
}

/* Calls f's task as worker worker_id; returns its outcome (<= 0). */
static inline int task_call(px_executor *ex, px_future *f, int worker_id,
			    const struct px__task_ops *ops)
{
	struct px_task t = {
		.ops = ops,
		.worker_id = worker_id,
		.max_result = ex->cfg.max_result,
		.f = f,
	};
	int err = f->fn(&t, f->arg, f->arg_len);
	if (t.blocking_depth) { /* unpaired blocking_begin: retake the GIL */
		t.blocking_depth = 1;
		fut_blocking_end(&t);
	}
	return err > 0 ? -err : err;
}

static inline void add_busy(struct px__counts *c, int64_t ns)
{
	atomic_store_explicit(&c->busy_ns,
			      atomic_load_explicit(&c->busy_ns, memory_order_relaxed) +
				      (uint64_t)ns,
			      memory_order_relaxed);
}

/* px__task_run when the executor traces: the same, plus the clock reads
 * and the event. Out of line, so that the untraced path pays one branch. */
static __attribute__((noinline, cold)) bool
task_run_traced(px_executor *ex, px_future *f, int worker_id,
		const struct px__task_ops *ops, struct px__counts *c, bool timed)
{
	struct px__trace *tr = ex->trace;
	if (!px__future_try_start(f)) {
		px__trace_task(tr, f->trace_submit_ns, f->trace_task, worker_id, 0,
			       0, 0, -ECANCELED, PX__TRACE_NOT_RUN);
		px__counts_record(c, -ECANCELED);
		px_future_release(f);
		return false;
	}
	int64_t t0 = px__now_ns();
	int err = task_call(ex, f, worker_id, ops);
	int64_t t1 = px__now_ns();
	/* Before the completion: f's fields are ours until then. */
	px__trace_task(tr, f->trace_submit_ns, f->trace_task, worker_id, 0, t0,
		       t1, err, 0);
	px__future_complete(f, err);
	px__counts_record(c, err);
	if (timed)
		add_busy(c, t1 - t0);
	px_future_release(f);
	return true;
}

bool px__task_run(px_executor *ex, px_future *f, int worker_id,
		  const struct px__task_ops *ops, struct px__counts *c, bool timed)
{
	/* The one branch tracing costs when it is off (ex->trace is written
	 * before the executor is handed out, read-only afterwards). */
	if (__builtin_expect(ex->trace != NULL, 0))
		return task_run_traced(ex, f, worker_id, ops, c, timed);
	if (!px__future_try_start(f)) {
		/* Cancelled while queued: the canceller completed it. */
		px__counts_record(c, -ECANCELED);
		px_future_release(f);
		return false;
	}
	struct px_task t = {
		.ops = ops,
		.worker_id = worker_id,
		.max_result = ex->cfg.max_result,
		.f = f,
	};
	int64_t t0 = timed ? px__now_ns() : 0;
	int err = f->fn(&t, f->arg, f->arg_len);
	int64_t t1 = timed ? px__now_ns() : 0;
	if (t.blocking_depth) { /* unpaired blocking_begin: retake the GIL */
		t.blocking_depth = 1;
		fut_blocking_end(&t);
	}
	if (err > 0)
		err = -err;
	err = px__task_coop_finish(f, err);
	px__future_complete(f, err);
	px__counts_record(c, err);
	if (timed)
		add_busy(c, t1 - t0);
	px_future_release(f);
	return true;
}

void px__future_cancel_queued(struct px__counts *c, px_future *f)
{
	/* Fails if the user cancelled it earlier; either way it leaves the
	 * queue cancelled and is counted here, as a worker would have. */
	if (__builtin_expect(f->ex->trace != NULL, 0))
		px__trace_task(f->ex->trace, f->trace_submit_ns, f->trace_task,
			       -1, 0, 0, 0, -ECANCELED, PX__TRACE_NOT_RUN);
	px__future_cancel_pending(f);
	px__counts_record(c, -ECANCELED);
	px_future_release(f);
}
