/*
 * lib/executor.c - the executor interface: argument checks, future
 * allocation, map() on top of submit(), and dispatch to the backend ops.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "executor_internal.h"

const struct px__backend_ops *px__backend_find(const char *name)
{
	if (!strcmp(name, "inline"))
		return &px__inline_backend;
	if (!strcmp(name, "thread"))
		return &px__thread_backend;
	if (!strcmp(name, "process"))
		return &px__process_backend; /* NULL while not built in */
	return NULL;
}

void px__executor_init(px_executor *ex, const struct px__backend_ops *ops,
		       const struct px__config *cfg)
{
	ex->ops = ops;
	ex->cfg = *cfg;
	if (ex->cfg.workers <= 0)
		ex->cfg.workers = px__online_cpus();
	atomic_init(&ex->shut, 0);
	atomic_init(&ex->submitted, 0);
}

PX_API int px_executor_create(px_executor **out, const px_config *cfg)
{
	if (!out || !cfg)
		return -EINVAL;
	*out = NULL;
	const struct px__backend_ops *ops = px__backend_find(cfg->c.backend);
	if (!ops)
		return strcmp(cfg->c.backend, "process") ? -EINVAL : PX_ENOBACKEND;
	if (cfg->c.gil && strcmp(cfg->c.backend, "thread"))
		return -EINVAL; /* the GIL is emulated only among threads */
	return ops->create(out, &cfg->c);
}

PX_API int px_executor_open(px_executor **out, const char *spec, char *errbuf,
			    size_t errlen)
{
	if (errbuf && errlen)
		errbuf[0] = 0;
	if (!out)
		return -EINVAL;
	*out = NULL;
	px_config *cfg;
	int r = px_config_create(&cfg);
	if (r)
		return r;
	r = px_config_load_env(cfg);
	if (!r && spec)
		r = px_config_apply(cfg, spec, "argument");
	if (!r) {
		r = px_executor_create(out, cfg);
		if (r && errbuf && errlen) {
			const char *why = r == -EINVAL && cfg->c.gil
				? "gil=1 needs the thread backend" : px_strerror(r);
			snprintf(cfg->err, sizeof(cfg->err),
				 "cannot create the '%s' executor: %s",
				 cfg->c.backend, why);
		}
	}
	if (r && errbuf && errlen)
		snprintf(errbuf, errlen, "%s", cfg->err);
	px_config_destroy(cfg);
	return r;
}

PX_API int px_executor_submit(px_executor *ex, px_task_fn fn, const void *arg,
			      size_t arg_len, const px_submit_opts *opts,
			      px_future **out)
{
	if (!ex || !fn || !out || (!arg && arg_len))
		return -EINVAL;
	*out = NULL;
	if (arg_len > ex->cfg.max_arg)
		return -EMSGSIZE;
	if (atomic_load_explicit(&ex->shut, memory_order_relaxed))
		return PX_ESHUTDOWN;
	unsigned flags = opts ? opts->flags : 0;
	if (flags & ~(unsigned)PX_SUBMIT_NOWAIT)
		return -EINVAL;
	if (!ex->cfg.block)
		flags |= PX_SUBMIT_NOWAIT;
	int64_t timeout = opts ? opts->timeout_ns : 0;
	if (timeout == 0)
		timeout = ex->cfg.task_timeout_ms * PX_MSEC;
	if (timeout < 0)
		timeout = 0;

	px_future *f = px__future_new();
	if (!f)
		return -ENOMEM;
	int r = px__future_store_arg(f, arg, arg_len);
	if (r) {
		px_future_release(f);
		return r;
	}
	f->fn = fn;
	f->ex = ex;
	f->timeout_ns = timeout;
	/* One reference for the caller, one for the task. */
	atomic_store_explicit(&f->refs, 2, memory_order_relaxed);
	r = ex->ops->submit(ex, f, flags, timeout);
	if (r) {
		atomic_store_explicit(&f->refs, 1, memory_order_relaxed);
		px_future_release(f);
		return r;
	}
	if (!ex->ops->counts_submitted)
		atomic_fetch_add_explicit(&ex->submitted, 1, memory_order_relaxed);
	*out = f;
	return 0;
}

/* map ---------------------------------------------------------------------
 *
 * Records are grouped into chunk tasks. A chunk's argument is a header, then
 * its records; its result is, per record, an int32 code then result_size
 * bytes. Inside the chunk each record runs with a px_task whose ops write
 * into that record's slot, so px_task_return works as in a plain task.
 */

struct chunk_hdr {
	px_task_fn fn;
	uint32_t count;
	uint32_t arg_size;
	uint32_t result_size;
	uint32_t pad;
};

struct rec_task {
	struct px_task t;   /* first: the ops receive &t */
	px_task *outer;
	unsigned char *slot; /* result_size bytes */
	uint32_t len;
};

static int rec_set_result(px_task *t, const void *data, size_t len)
{
	struct rec_task *r = (struct rec_task *)t;
	memcpy(r->slot, data, len);
	r->len = (uint32_t)len;
	return 0;
}

static void rec_set_message(px_task *t, const char *msg)
{
	(void)t;
	(void)msg; /* map reports codes per record; messages are dropped */
}

static void rec_blocking_begin(px_task *t)
{
	px_task_blocking_begin(((struct rec_task *)t)->outer);
}

static void rec_blocking_end(px_task *t)
{
	px_task_blocking_end(((struct rec_task *)t)->outer);
}

static const struct px__task_ops rec_ops = {
	.set_result = rec_set_result,
	.set_message = rec_set_message,
	.blocking_begin = rec_blocking_begin,
	.blocking_end = rec_blocking_end,
};

static int chunk_task(px_task *t, const void *arg, size_t len)
{
	struct chunk_hdr h;
	if (len < sizeof(h))
		return -EINVAL;
	memcpy(&h, arg, sizeof(h));
	const unsigned char *recs = (const unsigned char *)arg + sizeof(h);
	size_t stride = sizeof(int32_t) + h.result_size;
	size_t out_len = (size_t)h.count * stride;
	unsigned char *out = calloc(1, out_len ? out_len : 1);
	if (!out)
		return -ENOMEM;
	for (uint32_t i = 0; i < h.count; i++) {
		unsigned char *slot = out + i * stride;
		struct rec_task r = {
			.t = { .ops = &rec_ops, .worker_id = t->worker_id,
			       .max_result = h.result_size },
			.outer = t,
			.slot = slot + sizeof(int32_t),
		};
		int32_t code = h.fn(&r.t, recs + (size_t)i * h.arg_size, h.arg_size);
		if (code > 0)
			code = -code;
		memcpy(slot, &code, sizeof(code));
	}
	int r = px_task_return(t, out, out_len);
	free(out);
	return r;
}

/* One map() call's state. */
struct map_run {
	px_executor *ex;
	px_task_fn fn;
	const unsigned char *args;
	size_t arg_size, n, result_size, stride, chunk, nchunks;
	unsigned char *results;
	unsigned char *buf; /* one chunk's argument */
	px_future **fs;
	int64_t deadline;
	const px_map_opts *opts;
	int first_err;
	size_t done_recs;
};

static size_t chunk_len(const struct map_run *m, size_t c)
{
	size_t first = c * m->chunk;
	return m->n - first < m->chunk ? m->n - first : m->chunk;
}

static void set_errors(const struct map_run *m, size_t from, int err)
{
	if (m->opts && m->opts->errors)
		for (size_t k = from; k < m->n; k++)
			m->opts->errors[k] = err;
}

static int map_submit(struct map_run *m, size_t c, bool nowait)
{
	size_t cnt = chunk_len(m, c);
	struct chunk_hdr h = { m->fn, (uint32_t)cnt, (uint32_t)m->arg_size,
			       (uint32_t)m->result_size, 0 };
	memcpy(m->buf, &h, sizeof(h));
	if (m->arg_size)
		memcpy(m->buf + sizeof(h), m->args + c * m->chunk * m->arg_size,
		       cnt * m->arg_size);
	px_submit_opts so = { .flags = nowait ? PX_SUBMIT_NOWAIT : 0 };
	return px_executor_submit(m->ex, chunk_task, m->buf,
				  sizeof(h) + cnt * m->arg_size, &so, &m->fs[c]);
}

/* Waits for chunk c and copies its records out. 0 or -ETIMEDOUT. */
static int map_collect(struct map_run *m, size_t c)
{
	size_t first = c * m->chunk, cnt = chunk_len(m, c);
	int w = px_future_wait(m->fs[c], px__time_left(m->deadline));
	if (w)
		return w;
	int ferr = px_future_error(m->fs[c]);
	size_t rlen = 0;
	const unsigned char *res = ferr ? NULL : px_future_result(m->fs[c], &rlen);
	if (!ferr && rlen != cnt * m->stride)
		ferr = -EPROTO;
	for (size_t i = 0; i < cnt; i++) {
		int32_t code = ferr;
		if (!ferr)
			memcpy(&code, res + i * m->stride, sizeof(code));
		if (m->results) {
			unsigned char *dst = m->results + (first + i) * m->result_size;
			if (!ferr)
				memcpy(dst, res + i * m->stride + sizeof(int32_t),
				       m->result_size);
			else
				memset(dst, 0, m->result_size);
		}
		if (m->opts && m->opts->errors)
			m->opts->errors[first + i] = code;
		if (code && !m->first_err)
			m->first_err = code;
	}
	m->done_recs += cnt;
	if (m->opts && m->opts->progress)
		m->opts->progress(m->done_recs, m->n, m->opts->progress_arg);
	return 0;
}

PX_API int px_executor_map(px_executor *ex, px_task_fn fn, const void *args,
			   size_t arg_size, size_t n, void *results,
			   size_t result_size, const px_map_opts *opts)
{
	if (!ex || !fn || (!args && n && arg_size) || (!results && result_size))
		return -EINVAL;
	if (n == 0)
		return 0;
	size_t stride = sizeof(int32_t) + result_size;
	size_t max_arg = ex->cfg.max_arg, max_res = ex->cfg.max_result;
	if (sizeof(struct chunk_hdr) + arg_size > max_arg || stride > max_res ||
	    arg_size > UINT32_MAX || result_size > UINT32_MAX)
		return -EMSGSIZE;
	size_t fit = (max_arg - sizeof(struct chunk_hdr)) / (arg_size ? arg_size : 1);
	if (max_res / stride < fit)
		fit = max_res / stride;
	size_t chunk = opts ? opts->chunk : 0;
	if (chunk == 0) {
		/* A few chunks per worker balance load without a task per
		 * record. */
		chunk = n / ((size_t)ex->cfg.workers * 4);
		if (chunk < 1)
			chunk = 1;
	}
	if (chunk > fit)
		chunk = fit;
	if (chunk > UINT32_MAX)
		chunk = UINT32_MAX;
	struct map_run m = {
		.ex = ex, .fn = fn, .args = args, .arg_size = arg_size, .n = n,
		.results = results, .result_size = result_size, .stride = stride,
		.chunk = chunk, .nchunks = (n + chunk - 1) / chunk, .opts = opts,
		.deadline = px__deadline(opts && opts->timeout_ns > 0
						 ? opts->timeout_ns : -1),
	};
	m.fs = calloc(m.nchunks, sizeof(*m.fs));
	m.buf = malloc(sizeof(struct chunk_hdr) + chunk * arg_size);
	if (!m.fs || !m.buf) {
		free(m.fs);
		free(m.buf);
		return -ENOMEM;
	}

	/*
	 * Submit ahead while the queue takes it, collect in input order. With
	 * a deadline, submits never block (a full queue is waited out by
	 * collecting, so the deadline holds); without one they block as
	 * configured, and a full non-blocking queue is waited out the same
	 * way.
	 */
	bool timed = m.deadline != INT64_MAX;
	size_t sub = 0, col = 0;
	int submit_err = 0, r = 0;
	while (col < m.nchunks && !r) {
		while (sub < m.nchunks && !submit_err) {
			int s = map_submit(&m, sub, timed);
			if (s == -EAGAIN)
				break;
			if (s)
				submit_err = s;
			else
				sub++;
		}
		if (col < sub) {
			r = map_collect(&m, col);
			if (!r)
				col++;
		} else if (submit_err) {
			break;
		} else if (px__time_left(m.deadline) == 0) {
			r = -ETIMEDOUT;
		} else {
			/* Full of other work, none of ours in flight. */
			struct timespec ts = { 0, 200000 };
			nanosleep(&ts, NULL);
		}
	}
	free(m.buf);
	if (r) {
		/* Out of time: cancel what has not started. */
		for (size_t c = col; c < sub; c++)
			px_future_cancel(m.fs[c], 0);
		set_errors(&m, col * chunk, r);
	} else if (submit_err) {
		set_errors(&m, sub * chunk, submit_err);
		r = submit_err;
	}
	for (size_t c = 0; c < sub; c++)
		px_future_release(m.fs[c]);
	free(m.fs);
	return r ? r : m.first_err;
}

PX_API int px_executor_shutdown(px_executor *ex, bool wait, bool cancel_pending)
{
	if (!ex)
		return -EINVAL;
	atomic_store(&ex->shut, 1);
	ex->ops->shutdown(ex, wait, cancel_pending);
	return 0;
}

PX_API void px_executor_destroy(px_executor *ex)
{
	if (!ex)
		return;
	atomic_store(&ex->shut, 1);
	ex->ops->shutdown(ex, true, false);
	ex->ops->destroy(ex);
}

PX_API int px_executor_stats_get(px_executor *ex, px_executor_stats *out)
{
	if (!ex || !out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	ex->ops->stats(ex, out);
	if (!ex->ops->counts_submitted)
		out->submitted = atomic_load_explicit(&ex->submitted,
						      memory_order_relaxed);
	return 0;
}

PX_API const char *px_executor_backend(const px_executor *ex)
{
	return ex ? ex->ops->name : NULL;
}

PX_API int px_executor_workers(const px_executor *ex)
{
	return ex ? ex->cfg.workers : -EINVAL;
}

PX_API int px_executor_alloc(px_executor *ex, size_t size, void **out)
{
	if (!ex || !out || size == 0)
		return -EINVAL;
	*out = NULL;
	return ex->ops->alloc(ex, size, out);
}

PX_API void px_executor_free(px_executor *ex, void *p)
{
	if (ex && p)
		ex->ops->free(ex, p);
}

/* Plain-memory allocator for the in-process backends. */
int px__heap_alloc(px_executor *ex, size_t size, void **out)
{
	(void)ex;
	size_t rounded = (size + 63) & ~(size_t)63;
	if (rounded < size)
		return -ENOMEM;
	void *p = aligned_alloc(64, rounded);
	if (!p)
		return -ENOMEM;
	memset(p, 0, rounded);
	*out = p;
	return 0;
}

void px__heap_free(px_executor *ex, void *p)
{
	(void)ex;
	free(p);
}
