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

void px__executor_init(px_executor *ex, const struct px__backend_ops *ops,
		       const struct px__config *cfg)
{
	ex->ops = ops;
	ex->cfg = *cfg;
	if (ex->cfg.workers <= 0)
		ex->cfg.workers = px_available_parallelism();
	atomic_init(&ex->shut, 0);
	atomic_init(&ex->submitted, 0);
}

PX_API int px_executor_create(px_executor **out, const px_config *cfg)
{
	if (!out || !cfg)
		return -EINVAL;
	*out = NULL;
	/* config.c lets only registered names into cfg->c.backend. */
	const struct px__backend *b = px__backend_find(cfg->c.backend);
	if (!b || px__config_check(&cfg->c, b, NULL, 0))
		return -EINVAL;
	return b->ops->create(out, &cfg->c);
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
		if (r) {
			char why[128];
			const struct px__backend *b = px__backend_find(cfg->c.backend);
			if (r != -EINVAL || !b ||
			    !px__config_check(&cfg->c, b, why, sizeof(why)))
				snprintf(why, sizeof(why), "%s", px_strerror(r));
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

/*
 * Cooperative cancel of an in-process task. f->backend_data, unused by the
 * inline and thread backends, is its word: 0 while it runs, COOP_REQ once a
 * PX_CANCEL_RUNNING cancel was accepted, COOP_DONE once the task returned.
 * The two CAS/exchange on it decide the race between a late cancel and the
 * task's end (acq_rel both ways): a cancel that returned 0 always makes the
 * future end cancelled.
 */
#define COOP_REQ 1u
#define COOP_DONE 2u

static int coop_cancel(px_future *f, void *arg)
{
	(void)arg;
	uint64_t old = 0;
	if (__atomic_compare_exchange_n(&f->backend_data, &old, COOP_REQ, false,
					__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		return 0;
	return old == COOP_REQ ? 0 : -EBUSY;
}

int px__task_coop_finish(px_future *f, int err)
{
	if (f->cancel_fn != coop_cancel)
		return err; /* not a task of ours (a promise, another backend) */
	uint64_t old = __atomic_exchange_n(&f->backend_data, COOP_DONE,
					   __ATOMIC_ACQ_REL);
	return old == COOP_REQ ? -ECANCELED : err;
}

PX_API bool px_task_cancelled(const px_task *t)
{
	if (!t)
		return false;
	if (t->ops && t->ops->cancelled)
		return t->ops->cancelled(t);
	if (!t->f || t->f->cancel_fn != coop_cancel)
		return false;
	/* Acquire: pairs with coop_cancel's CAS. */
	return __atomic_load_n(&t->f->backend_data, __ATOMIC_ACQUIRE) == COOP_REQ;
}

/*
 * px_executor_submit() with the argument given in two parts, a then b,
 * copied straight into the future: map() builds a chunk's argument (header,
 * then records) there without staging it first. res_buf, if not NULL, is a
 * malloc'd buffer of res_cap bytes attached to the future for its result
 * (see px__future_result_buffer()); on failure the caller keeps it.
 */
static int submit_parts(px_executor *ex, px_task_fn fn, const void *a,
			size_t alen, const void *b, size_t blen, void *res_buf,
			uint32_t res_cap, const px_submit_opts *opts,
			px_future **out)
{
	size_t arg_len = alen + blen;
	*out = NULL;
	if (arg_len > ex->cfg.max_arg)
		return -EMSGSIZE;
	if (atomic_load_explicit(&ex->shut, memory_order_relaxed))
		return PX_ESHUTDOWN;
	unsigned flags = opts ? opts->flags : 0;
	if (flags & ~(unsigned)(PX_SUBMIT_NOWAIT | PX_SUBMIT_HIGH | PX_SUBMIT_LOW))
		return -EINVAL;
	if ((flags & PX_SUBMIT_HIGH) && (flags & PX_SUBMIT_LOW))
		return -EINVAL;
	if (!ex->cfg.block)
		flags |= PX_SUBMIT_NOWAIT;
	int64_t timeout = opts ? opts->timeout_ns : 0;
	if (timeout == 0)
		timeout = ex->cfg.task_timeout_ms * PX_MSEC;
	/* A timeout too large to add to the clock is none, as everywhere. */
	if (px__timeout_unbounded(timeout))
		timeout = 0;

	px_future *f = px__future_new();
	if (!f)
		return -ENOMEM;
	int r = px__future_store_arg(f, a, alen, b, blen);
	if (r) {
		px_future_release(f);
		return r;
	}
	f->fn = fn;
	f->ex = ex;
	f->timeout_ns = timeout;
	/* PX_CANCEL_RUNNING on an in-process task: a request the task sees
	 * through px_task_cancelled() (a backend that runs tasks elsewhere
	 * installs its own hook and uses backend_data its own way). */
	f->backend_data = 0;
	f->cancel_fn = coop_cancel;
	f->cancel_arg = NULL;
	if (res_buf) {
		f->result = res_buf;
		f->result_len = res_cap;
	}
	/* One reference for the caller, one for the task. */
	atomic_store_explicit(&f->refs, 2, memory_order_relaxed);
	r = ex->ops->submit(ex, f, flags, timeout);
	if (r) {
		f->result = f->res_inline; /* res_buf stays the caller's */
		f->result_len = 0;
		atomic_store_explicit(&f->refs, 1, memory_order_relaxed);
		px_future_release(f);
		return r;
	}
	if (!ex->ops->counts_submitted)
		atomic_fetch_add_explicit(&ex->submitted, 1, memory_order_relaxed);
	*out = f;
	return 0;
}

PX_API int px_executor_submit(px_executor *ex, px_task_fn fn, const void *arg,
			      size_t arg_len, const px_submit_opts *opts,
			      px_future **out)
{
	if (!ex || !fn || !out || (!arg && arg_len))
		return -EINVAL;
	return submit_parts(ex, fn, arg, arg_len, NULL, 0, NULL, 0, opts, out);
}

/* map ---------------------------------------------------------------------
 *
 * Records are grouped into chunk tasks. A chunk's argument is a header, then
 * its records; its result is the records' results, result_size bytes each,
 * then an int32 code per record: laid out so that map() copies the results
 * out with one memcpy. Inside the chunk each record runs with a px_task whose
 * result slot points into that output, so px_task_return works as in a plain
 * task and writes the record's result in place.
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
};

/* px_task_return() writes through t->res_slot itself; this is only reached
 * if a caller goes through the ops directly. */
static int rec_set_result(px_task *t, const void *data, size_t len)
{
	memcpy(t->res_slot, data, len);
	t->res_len = len;
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

static bool rec_cancelled(const px_task *t)
{
	return px_task_cancelled(((const struct rec_task *)t)->outer);
}

static const struct px__task_ops rec_ops = {
	.set_result = rec_set_result,
	.set_message = rec_set_message,
	.blocking_begin = rec_blocking_begin,
	.blocking_end = rec_blocking_end,
	.cancelled = rec_cancelled,
};

static int chunk_task(px_task *t, const void *arg, size_t len)
{
	struct chunk_hdr h;
	if (len < sizeof(h))
		return -EINVAL;
	memcpy(&h, arg, sizeof(h));
	const unsigned char *recs = (const unsigned char *)arg + sizeof(h);
	size_t rsz = h.result_size;
	size_t out_len = (size_t)h.count * (rsz + sizeof(int32_t));
	/* Write the output where it will stay (the future's result, or the
	 * worker's shared reply area) when the backend offers that; else
	 * build it here and hand it over with px_task_return(). */
	unsigned char *own = NULL;
	unsigned char *out = t->ops->result_buffer
		? t->ops->result_buffer(t, out_len) : NULL;
	if (!out) {
		own = out = malloc(out_len ? out_len : 1);
		if (!out)
			return -ENOMEM;
	}
	unsigned char *codes = out + (size_t)h.count * rsz;
	/* One px_task for every record: the user's fn sees it only through
	 * px_task_*, which leave it as it was but for res_len. */
	struct rec_task r = {
		.t = { .ops = &rec_ops, .worker_id = t->worker_id,
		       .max_result = h.result_size },
		.outer = t,
	};
	for (uint32_t i = 0; i < h.count; i++) {
		unsigned char *slot = out + (size_t)i * rsz;
		r.t.res_slot = slot;
		r.t.res_len = 0;
		int32_t code = h.fn(&r.t, recs + (size_t)i * h.arg_size, h.arg_size);
		if (code > 0)
			code = -code;
		if (r.t.res_len < rsz) /* short or no result: zero padded */
			memset(slot + r.t.res_len, 0, rsz - r.t.res_len);
		memcpy(codes + (size_t)i * sizeof(code), &code, sizeof(code));
	}
	if (!own)
		return 0;
	int e = px_task_return(t, own, out_len);
	free(own);
	return e;
}

/*
 * How many bytes of chunks (argument and result) map() keeps submitted ahead
 * of the one it collects. Enough to keep every worker fed; bounded so that a
 * big map does not hold its whole input twice in chunk arguments (and the
 * process backend's arena), and so that the chunk buffers malloc hands out
 * are the ones just freed, not fresh pages.
 */
#define MAP_AHEAD_BYTES (1u << 20)

/* One map() call's state. */
struct map_run {
	px_executor *ex;
	px_task_fn fn;
	const unsigned char *args;
	size_t arg_size, n, result_size, stride, chunk, nchunks;
	unsigned char *results;
	px_future **fs;
	/* Chunk result buffers (buf_len bytes: a full chunk's output) taken
	 * back from collected futures, attached to the next ones submitted. */
	void **spare;
	size_t nspare, spare_cap, buf_len;
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

static void spare_put(struct map_run *m, void *buf)
{
	if (m->nspare < m->spare_cap)
		m->spare[m->nspare++] = buf;
	else
		free(buf);
}

static int map_submit(struct map_run *m, size_t c, bool nowait)
{
	size_t cnt = chunk_len(m, c);
	struct chunk_hdr h = { m->fn, (uint32_t)cnt, (uint32_t)m->arg_size,
			       (uint32_t)m->result_size, 0 };
	px_submit_opts so = { .flags = nowait ? PX_SUBMIT_NOWAIT : 0 };
	void *buf = NULL;
	if (m->spare)
		buf = m->nspare ? m->spare[--m->nspare] : malloc(m->buf_len);
	int r = submit_parts(m->ex, chunk_task, &h, sizeof(h),
			     m->args + c * m->chunk * m->arg_size,
			     cnt * m->arg_size, buf, (uint32_t)m->buf_len, &so,
			     &m->fs[c]);
	if (r && buf)
		spare_put(m, buf);
	return r;
}

/* Waits for chunk c, copies its records out and drops its future. 0 or
 * -ETIMEDOUT. */
static int map_collect(struct map_run *m, size_t c)
{
	size_t first = c * m->chunk, cnt = chunk_len(m, c);
	size_t rsz = m->result_size;
	int w = px_future_wait(m->fs[c], px__deadline_left(m->deadline));
	if (w)
		return w;
	int ferr = px_future_error(m->fs[c]);
	size_t rlen = 0;
	const unsigned char *res = ferr ? NULL : px_future_result(m->fs[c], &rlen);
	if (!ferr && rlen != cnt * m->stride)
		ferr = -EPROTO;
	if (m->results) {
		unsigned char *dst = m->results + first * rsz;
		if (!ferr)
			memcpy(dst, res, cnt * rsz);
		else
			memset(dst, 0, cnt * rsz);
	}
	int *errors = m->opts ? m->opts->errors : NULL;
	if (ferr) {
		if (errors)
			for (size_t i = 0; i < cnt; i++)
				errors[first + i] = ferr;
		if (!m->first_err)
			m->first_err = ferr;
	} else {
		const unsigned char *codes = res + cnt * rsz;
		for (size_t i = 0; i < cnt; i++) {
			int32_t code;
			memcpy(&code, codes + i * sizeof(code), sizeof(code));
			if (errors)
				errors[first + i] = code;
			if (code && !m->first_err)
				m->first_err = code;
		}
	}
	px_future *f = m->fs[c];
	if (m->spare && !ferr && rlen == m->buf_len && f->result != f->res_inline) {
		/* Take the buffer back for the next chunk (it holds at least
		 * buf_len bytes). The task is done with f's result: its
		 * completion (release) happened before our wait returned
		 * (acquire), and only map holds the future now. */
		spare_put(m, f->result);
		f->result = f->res_inline;
		f->result_len = 0;
	}
	px_future_release(f);
	m->fs[c] = NULL;
	m->done_recs += cnt;
	if (m->opts && m->opts->progress)
		m->opts->progress(m->done_recs, m->n, m->opts->progress_arg);
	return 0;
}

/*
 * Records per chunk: opts->chunk, or a few chunks per worker, within what
 * max_arg and max_result allow. -EMSGSIZE when not even one record fits.
 */
static int map_chunk_size(const px_executor *ex, size_t n, size_t arg_size,
			  size_t result_size, const px_map_opts *opts,
			  size_t *out)
{
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
		chunk = n / ((size_t)px_executor_workers(ex) * 4);
		if (chunk < 1)
			chunk = 1;
	}
	if (chunk > fit)
		chunk = fit;
	if (chunk > UINT32_MAX)
		chunk = UINT32_MAX;
	*out = chunk;
	return 0;
}

/*
 * How many chunks m keeps submitted ahead of the one it collects; sets up
 * the recycled result buffers when results are large enough to need them.
 */
static size_t map_ahead(struct map_run *m)
{
	size_t ahead = MAP_AHEAD_BYTES / (sizeof(struct chunk_hdr) +
					  m->chunk * (m->arg_size + m->stride));
	if (ahead < 2 * (size_t)px_executor_workers(m->ex) + 2)
		ahead = 2 * (size_t)px_executor_workers(m->ex) + 2;
	m->buf_len = m->chunk * m->stride;
	if (m->buf_len > PX__RES_INLINE) {
		/* Results of that size would be malloc'd per chunk, and
		 * freeing them lets malloc trim its heap, so that the next
		 * ones fault in fresh pages: recycle them instead. Without
		 * the array, chunks simply get their own (fewer spares are
		 * no error). */
		m->spare_cap = (ahead < m->nchunks ? ahead : m->nchunks) + 1;
		m->spare = malloc(m->spare_cap * sizeof(*m->spare));
	}
	return ahead;
}

/*
 * Submits up to `ahead` chunks ahead while the queue takes them, and
 * collects in input order. With a deadline, submits never block (a full
 * queue is waited out by collecting, so the deadline holds); without one
 * they block as configured, and a full non-blocking queue is waited out the
 * same way. Returns 0 or -ETIMEDOUT; a submit's error lands in *submit_err.
 * *sub and *col: chunks submitted and collected.
 */
static int map_pump(struct map_run *m, size_t ahead, size_t *sub, size_t *col,
		    int *submit_err)
{
	bool timed = m->deadline != PX__NO_DEADLINE;
	int r = 0;
	while (*col < m->nchunks && !r) {
		while (*sub < m->nchunks && *sub - *col < ahead && !*submit_err) {
			int s = map_submit(m, *sub, timed);
			if (s == -EAGAIN)
				break;
			if (s)
				*submit_err = s;
			else
				(*sub)++;
		}
		if (*col < *sub) {
			r = map_collect(m, *col);
			if (!r)
				(*col)++;
		} else if (*submit_err) {
			break;
		} else if (px__deadline_passed(m->deadline)) {
			r = -ETIMEDOUT;
		} else {
			/* Full of other work, none of ours in flight. */
			struct timespec ts = { 0, 200000 };
			nanosleep(&ts, NULL);
		}
	}
	return r;
}

/* Cancels and drops what map_pump left in flight, fills the errors of the
 * records that did not run, frees m's buffers. Returns map()'s result. */
static int map_finish(struct map_run *m, size_t sub, size_t col, int r,
		      int submit_err)
{
	if (r) {
		/* Out of time: cancel what has not started. */
		for (size_t c = col; c < sub; c++)
			px_future_cancel(m->fs[c], 0);
		set_errors(m, col * m->chunk, r);
	} else if (submit_err) {
		set_errors(m, sub * m->chunk, submit_err);
		r = submit_err;
	}
	for (size_t c = col; c < sub; c++)
		px_future_release(m->fs[c]);
	free(m->fs);
	while (m->nspare)
		free(m->spare[--m->nspare]);
	free(m->spare);
	return r ? r : m->first_err;
}

PX_API int px_executor_map(px_executor *ex, px_task_fn fn, const void *args,
			   size_t arg_size, size_t n, void *results,
			   size_t result_size, const px_map_opts *opts)
{
	if (!ex || !fn || (!args && n && arg_size) || (!results && result_size))
		return -EINVAL;
	if (n == 0)
		return 0;
	size_t chunk;
	int r = map_chunk_size(ex, n, arg_size, result_size, opts, &chunk);
	if (r)
		return r;
	struct map_run m = {
		.ex = ex, .fn = fn, .args = args, .arg_size = arg_size, .n = n,
		.results = results, .result_size = result_size,
		.stride = sizeof(int32_t) + result_size, .chunk = chunk,
		.nchunks = (n + chunk - 1) / chunk, .opts = opts,
		.deadline = px__deadline_after(opts && opts->timeout_ns > 0
						 ? opts->timeout_ns : -1),
	};
	m.fs = calloc(m.nchunks, sizeof(*m.fs));
	if (!m.fs)
		return -ENOMEM;
	size_t ahead = map_ahead(&m);
	size_t sub = 0, col = 0;
	int submit_err = 0;
	r = map_pump(&m, ahead, &sub, &col, &submit_err);
	return map_finish(&m, sub, col, r, submit_err);
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
	return ex ? ex->cfg.backend : NULL;
}

PX_API int px_executor_workers(const px_executor *ex)
{
	/* Atomic: px_executor_resize() may change it meanwhile. */
	return ex ? __atomic_load_n(&ex->cfg.workers, __ATOMIC_RELAXED) : -EINVAL;
}

PX_API int px_executor_resize(px_executor *ex, int workers)
{
	if (!ex || workers < 1 || workers > 4096)
		return -EINVAL;
	if (!ex->ops->resize)
		return -ENOTSUP;
	if (atomic_load_explicit(&ex->shut, memory_order_relaxed))
		return PX_ESHUTDOWN;
	return ex->ops->resize(ex, workers);
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
