/*
 * lib/map.c - px_executor_map() and px_executor_map_stream() on top of
 * submit: records grouped into chunk tasks, a bounded window of chunks in
 * flight, results collected in input order into recycled buffers.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "executor_internal.h"

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

PX_API px_task_fn px__map_chunk_task(void)
{
	return chunk_task;
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

/* Submits one chunk of cnt records at recs, with a recycled result buffer
 * when m keeps them. */
static int map_submit_recs(struct map_run *m, const unsigned char *recs,
			   size_t cnt, bool nowait, px_future **out)
{
	struct chunk_hdr h = { m->fn, (uint32_t)cnt, (uint32_t)m->arg_size,
			       (uint32_t)m->result_size, 0 };
	px_submit_opts so = { .flags = nowait ? PX_SUBMIT_NOWAIT : 0 };
	void *buf = NULL;
	if (m->spare)
		buf = m->nspare ? m->spare[--m->nspare] : malloc(m->buf_len);
	int r = px__submit_parts(m->ex, chunk_task, &h, sizeof(h), recs,
			     cnt * m->arg_size, buf, (uint32_t)m->buf_len, &so,
			     out);
	if (r && buf)
		spare_put(m, buf);
	return r;
}

static int map_submit(struct map_run *m, size_t c, bool nowait)
{
	return map_submit_recs(m, m->args + c * m->chunk * m->arg_size,
			       chunk_len(m, c), nowait, &m->fs[c]);
}

/* Takes a collected chunk's result buffer back for the next chunk, if it
 * succeeded with a full chunk's output (so the buffer holds at least
 * buf_len bytes). The task is done with f's result: its completion
 * (release) happened before our wait returned (acquire), and only map holds
 * the future now. */
static void map_recycle(struct map_run *m, px_future *f, int ferr, size_t rlen)
{
	if (m->spare && !ferr && rlen == m->buf_len && f->result != f->res_inline) {
		spare_put(m, f->result);
		f->result = f->res_inline;
		f->result_len = 0;
	}
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
	map_recycle(m, m->fs[c], ferr, rlen);
	px_future_release(m->fs[c]);
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

/* map_stream --------------------------------------------------------------
 *
 * map()'s chunks, chunk_task and recycled result buffers, over a ring of
 * the chunks in flight instead of an array of all of them: records are read
 * from the source into a staging buffer of one chunk, submitted, and handed
 * to the sink straight from the collected chunk's result. Memory is the
 * ring, the staging buffer and the chunks in flight, whatever the count.
 */

struct stream_chunk {
	px_future *f;
	size_t count;
};

struct stream_run {
	/* ex, fn, sizes, chunk (the largest), spares, deadline, first_err */
	struct map_run m;
	px_map_source_fn source;
	px_map_sink_fn sink;
	void *arg;
	struct stream_chunk *ring;
	size_t ring_cap, head, nin; /* slots; oldest in flight; in flight */
	size_t max_in_flight;
	size_t in_flight;           /* records read, not delivered (staged too) */
	size_t delivered;           /* records delivered: the next one's index */
	size_t nsub;                /* chunks submitted */
	bool fixed_chunk;
	unsigned char *stage;       /* records read, not yet submitted */
	size_t staged;
	bool source_done;
	int source_err, sink_err;
	int *codes;                 /* one chunk's codes, for the sink */
	unsigned char *zeros;       /* one chunk of zero results */
};

/* The size the next chunk is filled to. Without a fixed chunk the first
 * ones are small, so that a short stream still spreads over the workers,
 * and double every `workers` chunks up to the largest. */
static size_t stream_goal(const struct stream_run *s)
{
	size_t cap = s->m.chunk;
	if (s->fixed_chunk)
		return cap;
	size_t k = s->nsub / (size_t)px_executor_workers(s->m.ex);
	return k < 32 && ((size_t)1 << k) < cap ? (size_t)1 << k : cap;
}

/* Reads from the source until the next chunk is full, the source ends or
 * fails, or the in-flight bound is reached. Returns whether the staged
 * records make a chunk to submit now. */
static bool stream_fill(struct stream_run *s)
{
	size_t goal = stream_goal(s);
	size_t room = s->max_in_flight - s->in_flight;
	size_t want = goal < s->staged + room ? goal : s->staged + room;
	while (!s->source_done && s->staged < want) {
		size_t max = want - s->staged;
		int64_t got = s->source(s->stage + s->staged * s->m.arg_size,
					max, s->arg);
		if (got < 0 || (uint64_t)got > max) {
			s->source_err = got < 0 && got >= INT_MIN ? (int)got : -EINVAL;
			s->source_done = true;
		} else if (got == 0) {
			s->source_done = true;
		} else {
			s->staged += (size_t)got;
			s->in_flight += (size_t)got;
		}
	}
	return s->staged && (s->staged == goal || s->source_done);
}

static int stream_submit(struct stream_run *s, bool nowait)
{
	size_t slot = (s->head + s->nin) % s->ring_cap;
	int r = map_submit_recs(&s->m, s->stage, s->staged, nowait,
				&s->ring[slot].f);
	if (r)
		return r;
	s->ring[slot].count = s->staged;
	s->nin++;
	s->nsub++;
	s->staged = 0;
	return 0;
}

/* Hands count records to the sink; a stop is kept in sink_err. */
static void stream_deliver(struct stream_run *s, size_t count,
			   const void *results)
{
	if (!s->sink_err) {
		int e = s->sink(s->delivered, count, results, s->codes, s->arg);
		if (e)
			s->sink_err = e > 0 ? -e : e;
	}
	s->delivered += count;
	s->in_flight -= count;
}

/* Waits for the oldest chunk in flight and delivers it. 0, -ETIMEDOUT, or
 * the sink's stop. */
static int stream_collect(struct stream_run *s)
{
	struct map_run *m = &s->m;
	struct stream_chunk *c = &s->ring[s->head];
	int w = px_future_wait(c->f, px__deadline_left(m->deadline));
	if (w)
		return w;
	size_t cnt = c->count, rsz = m->result_size;
	int ferr = px_future_error(c->f);
	size_t rlen = 0;
	const unsigned char *res = ferr ? NULL : px_future_result(c->f, &rlen);
	if (!ferr && rlen != cnt * m->stride)
		ferr = -EPROTO;
	for (size_t i = 0; i < cnt; i++) {
		int32_t code = ferr;
		if (!ferr)
			memcpy(&code, res + cnt * rsz + i * sizeof(code),
			       sizeof(code));
		s->codes[i] = code;
		if (code && !m->first_err)
			m->first_err = code;
	}
	stream_deliver(s, cnt, ferr ? s->zeros : res);
	map_recycle(m, c->f, ferr, rlen);
	px_future_release(c->f);
	c->f = NULL;
	s->head = (s->head + 1) % s->ring_cap;
	s->nin--;
	return s->sink_err;
}

/* map_pump's loop over the ring: fill and submit while the ring and the
 * in-flight bound allow, collect the oldest, until the source is done and
 * everything delivered. Returns 0, -ETIMEDOUT or the sink's stop; a
 * submit's error lands in *submit_err. */
static int stream_pump(struct stream_run *s, int *submit_err)
{
	bool timed = s->m.deadline != PX__NO_DEADLINE;
	for (;;) {
		if (timed && px__deadline_passed(s->m.deadline))
			return -ETIMEDOUT;
		/* The deadline is checked per chunk submitted too: on the
		 * inline backend a chunk runs in its submit, so the waits never
		 * time out. */
		while (s->nin < s->ring_cap && !*submit_err &&
		       !(timed && px__deadline_passed(s->m.deadline)) &&
		       stream_fill(s)) {
			int r = stream_submit(s, timed);
			if (r == -EAGAIN)
				break;
			if (r)
				*submit_err = r;
		}
		if (s->nin) {
			int r = stream_collect(s);
			if (r)
				return r;
		} else if (*submit_err || (s->source_done && !s->staged)) {
			return 0;
		} else if (px__deadline_passed(s->m.deadline)) {
			return -ETIMEDOUT;
		} else {
			/* Full of other work, none of ours in flight. */
			struct timespec ts = { 0, 200000 };
			nanosleep(&ts, NULL);
		}
	}
}

/* Delivers the records that will not run with code err: those in flight
 * (cancelled if not started) and those staged. */
static void stream_fail_rest(struct stream_run *s, int err)
{
	for (size_t i = 0; i < s->m.chunk; i++)
		s->codes[i] = err;
	for (; s->nin; s->nin--, s->head = (s->head + 1) % s->ring_cap) {
		struct stream_chunk *c = &s->ring[s->head];
		px_future_cancel(c->f, 0);
		px_future_release(c->f);
		c->f = NULL;
		stream_deliver(s, c->count, s->zeros);
	}
	if (s->staged)
		stream_deliver(s, s->staged, s->zeros);
	s->staged = 0;
}

static void stream_free(struct stream_run *s)
{
	free(s->ring);
	free(s->stage);
	free(s->codes);
	free(s->zeros);
	while (s->m.nspare)
		free(s->m.spare[--s->m.nspare]);
	free(s->m.spare);
}

/* Sizes the chunks, the in-flight bound and the ring, and allocates. */
static int stream_setup(struct stream_run *s, const px_map_stream_opts *opts)
{
	struct map_run *m = &s->m;
	px_map_opts mo = { .chunk = opts && opts->chunk ? opts->chunk : SIZE_MAX };
	int r = map_chunk_size(m->ex, SIZE_MAX, m->arg_size, m->result_size,
			       &mo, &m->chunk);
	if (r)
		return r;
	s->fixed_chunk = opts && opts->chunk;
	size_t min_chunks = 2 * (size_t)px_executor_workers(m->ex) + 2;
	size_t maxin = opts ? opts->max_in_flight : 0;
	if (maxin == 0) {
		/* As map() keeps ahead: MAP_AHEAD_BYTES of chunks, at least
		 * two per worker. */
		size_t ahead = MAP_AHEAD_BYTES / (sizeof(struct chunk_hdr) +
						  m->chunk * (m->arg_size + m->stride));
		if (ahead < min_chunks)
			ahead = min_chunks;
		maxin = ahead * m->chunk;
	} else if (!s->fixed_chunk && m->chunk > maxin / min_chunks) {
		/* A tight bound: chunks small enough that several fit. */
		m->chunk = maxin / min_chunks ? maxin / min_chunks : 1;
	}
	if (m->chunk > maxin)
		m->chunk = maxin;
	s->max_in_flight = maxin;
	size_t ring = maxin / m->chunk + 1;
	if (ring < min_chunks)
		ring = min_chunks;
	if (ring > maxin)
		ring = maxin;
	if (ring > 65536)
		ring = 65536;
	s->ring_cap = ring;
	m->buf_len = m->chunk * m->stride;
	if (m->buf_len > PX__RES_INLINE) {
		/* Recycled as in map_ahead(); without the array, chunks get
		 * their own. */
		m->spare_cap = ring + 1;
		m->spare = malloc(m->spare_cap * sizeof(*m->spare));
	}
	s->ring = calloc(ring, sizeof(*s->ring));
	s->stage = malloc(m->chunk * m->arg_size + 1);
	s->codes = malloc(m->chunk * sizeof(*s->codes));
	s->zeros = calloc(m->chunk * m->result_size + 1, 1);
	if (!s->ring || !s->stage || !s->codes || !s->zeros)
		return -ENOMEM;
	return 0;
}

PX_API int px_executor_map_stream(px_executor *ex, px_task_fn fn,
				  size_t arg_size, px_map_source_fn source,
				  size_t result_size, px_map_sink_fn sink,
				  void *arg, const px_map_stream_opts *opts)
{
	if (!ex || !fn || !source || !sink)
		return -EINVAL;
	struct stream_run s = {
		.m = { .ex = ex, .fn = fn, .arg_size = arg_size,
		       .result_size = result_size,
		       .stride = sizeof(int32_t) + result_size,
		       .deadline = px__deadline_after(
			       opts && opts->timeout_ns > 0 ? opts->timeout_ns : -1) },
		.source = source, .sink = sink, .arg = arg,
	};
	int r = stream_setup(&s, opts);
	if (r) {
		stream_free(&s);
		return r;
	}
	int submit_err = 0;
	r = stream_pump(&s, &submit_err);
	if (r == -ETIMEDOUT)
		stream_fail_rest(&s, r);
	else if (!r && submit_err)
		stream_fail_rest(&s, submit_err);
	else if (r) /* the sink stopped: cancel, deliver nothing more */
		stream_fail_rest(&s, r);
	stream_free(&s);
	if (s.sink_err)
		return s.sink_err;
	if (r)
		return r;
	if (submit_err)
		return submit_err;
	return s.source_err ? s.source_err : s.m.first_err;
}
