/*
 * lib/trace.c - task timelines: recording events and writing them as Chrome
 * trace-event JSON, the format Perfetto (ui.perfetto.dev) and
 * chrome://tracing open. See trace.h for who records and when.
 */
#include <errno.h>
#include <stdalign.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <parex/common.h>

#include "px_clock.h"
#include "trace.h"

/*
 * Paths already traced to by this process, so that a second executor with
 * the same path writes beside the first instead of over it.
 */
struct px__trace_path {
	struct px__trace_path *next;
	unsigned uses;
	char path[];
};
static pthread_mutex_t px__trace_paths_lock = PTHREAD_MUTEX_INITIALIZER;
static struct px__trace_path *px__trace_paths;

/* Claims `path` for one more traced object; returns how many had it
 * before (0 for the first), or -ENOMEM. */
static int claim_path(const char *path)
{
	int before = -ENOMEM;

	pthread_mutex_lock(&px__trace_paths_lock);
	struct px__trace_path *p = px__trace_paths;
	while (p && strcmp(p->path, path) != 0)
		p = p->next;
	if (!p) {
		size_t n = strlen(path) + 1;
		p = malloc(sizeof(*p) + n);
		if (p) {
			memcpy(p->path, path, n);
			p->uses = 0;
			p->next = px__trace_paths;
			px__trace_paths = p;
		}
	}
	if (p)
		before = (int)p->uses++;
	pthread_mutex_unlock(&px__trace_paths_lock);
	return before;
}

/* path with "-N" inserted before the extension of its last component. */
static char *numbered_path(const char *path, int n)
{
	const char *slash = strrchr(path, '/');
	const char *dot = strrchr(path, '.');
	if (!dot || (slash && dot < slash) || dot == (slash ? slash + 1 : path))
		dot = path + strlen(path);
	size_t len = strlen(path) + 16;
	char *out = malloc(len);
	if (out)
		snprintf(out, len, "%.*s-%d%s", (int)(dot - path), path, n, dot);
	return out;
}

int px__trace_open(struct px__trace **out, const char *path,
		   const char *label, const char *track_prefix)
{
	*out = NULL;
	if (!path || !*path)
		path = getenv("PAREX_TRACE");
	if (!path || !*path)
		return 0;

	/* Aligned, for the counters' own cache lines. */
	struct px__trace *t = aligned_alloc(alignof(struct px__trace), sizeof(*t));
	if (!t)
		return -ENOMEM;
	memset(t, 0, sizeof(*t));
	int before = claim_path(path);
	if (before < 0) {
		free(t);
		return -ENOMEM;
	}
	t->path = before == 0 ? strdup(path) : numbered_path(path, before + 1);
	t->max_events = PX__TRACE_MAX_EVENTS_DEFAULT;
	t->nchunks = (t->max_events + PX__TRACE_CHUNK - 1) / PX__TRACE_CHUNK;
	t->chunks = calloc(t->nchunks, sizeof(*t->chunks));
	t->fd = -1;
	int err = -ENOMEM;
	if (t->path && t->chunks) {
		t->fd = open(t->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		err = t->fd < 0 ? -errno : 0;
	}
	if (err) {
		free(t->path);
		free(t->chunks);
		free(t);
		return err;
	}
	snprintf(t->label, sizeof(t->label), "%s", label);
	snprintf(t->track_prefix, sizeof(t->track_prefix), "%s", track_prefix);
	t->t0 = px__now_ns();
	*out = t;
	return 0;
}

/* The chunk for event index i, allocated by whichever writer needs it
 * first; NULL when that allocation fails. */
static struct px__trace_event *chunk_for(struct px__trace *t, uint64_t i)
{
	_Atomic(struct px__trace_event *) *slot = &t->chunks[i / PX__TRACE_CHUNK];
	/* Acquire: pairs with the release CAS below, so the zeroed chunk is
	 * seen before it is written into. */
	struct px__trace_event *c = atomic_load_explicit(slot, memory_order_acquire);
	if (c)
		return c;
	struct px__trace_event *fresh = calloc(PX__TRACE_CHUNK, sizeof(*fresh));
	if (!fresh)
		return NULL;
	if (atomic_compare_exchange_strong_explicit(slot, &c, fresh,
						    memory_order_acq_rel,
						    memory_order_acquire))
		return fresh;
	free(fresh); /* another writer installed one first: use it */
	return c;
}

void px__trace_record(struct px__trace *t, const struct px__trace_event *ev)
{
	/* Relaxed: the index only has to be unique; the file is written
	 * after every writer was joined. */
	uint64_t i = atomic_fetch_add_explicit(&t->next, 1, memory_order_relaxed);
	if (i >= t->max_events)
		return; /* counted as dropped: next - max_events */
	struct px__trace_event *c = chunk_for(t, i);
	if (c)
		c[i % PX__TRACE_CHUNK] = *ev;
	/* A chunk that could not be allocated leaves zeroed events, which
	 * the writer skips (end_ns 0). */
}

PX_API void px__trace_task(struct px__trace *t, int64_t submit_ns,
			   uint64_t task, int worker, int pid, int64_t start_ns,
			   int64_t end_ns, int outcome, unsigned flags)
{
	if (flags & PX__TRACE_NOT_RUN) {
		start_ns = 0;
		worker = -1;
		if (!end_ns)
			end_ns = px__now_ns();
	}
	struct px__trace_event ev = {
		.submit_ns = submit_ns,
		.start_ns = start_ns,
		.end_ns = end_ns,
		.task = task,
		.worker = worker,
		.pid = pid,
		.outcome = outcome,
		.flags = flags,
	};
	px__trace_record(t, &ev);
}

/* JSON string contents: the label and path are ours, but escape anyway. */
static void put_json_string(FILE *fp, const char *s)
{
	fputc('"', fp);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			fprintf(fp, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(fp, "\\u%04x", ch);
		else
			fputc(ch, fp);
	}
	fputc('"', fp);
}

/*
 * An event is formatted by hand into a line buffer and written with one
 * fwrite: a trace holds up to millions of events, written in one go at the
 * end, and printf's parsing and per-call stdio overhead dominated that.
 * An event's line is well under its capacity (names and numbers are short;
 * the one string, the outcome, is ours).
 */
struct line {
	size_t n;
	char b[512];
};

static void put_s(struct line *l, const char *s)
{
	size_t len = strlen(s);
	if (len > sizeof(l->b) - l->n)
		len = sizeof(l->b) - l->n;
	memcpy(l->b + l->n, s, len);
	l->n += len;
}

static void put_c(struct line *l, char c)
{
	if (l->n < sizeof(l->b))
		l->b[l->n++] = c;
}

static void put_u64(struct line *l, uint64_t v)
{
	char b[24];
	int i = (int)sizeof(b);
	do {
		b[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (i < (int)sizeof(b))
		put_c(l, b[i++]);
}

static void put_i64(struct line *l, int64_t v)
{
	if (v < 0) {
		put_c(l, '-');
		put_u64(l, -(uint64_t)v);
	} else {
		put_u64(l, (uint64_t)v);
	}
}

/* Microseconds, as Chrome's `ts`/`dur` (three decimals keep the ns). */
static void put_us(struct line *l, int64_t ns)
{
	uint64_t u = (uint64_t)ns;
	if (ns < 0) {
		put_c(l, '-');
		u = -(uint64_t)ns;
	}
	put_u64(l, u / 1000);
	unsigned f = (unsigned)(u % 1000);
	put_c(l, '.');
	put_c(l, (char)('0' + f / 100));
	put_c(l, (char)('0' + f / 10 % 10));
	put_c(l, (char)('0' + f % 10));
}

static const char *outcome_name(const struct px__trace_event *ev)
{
	if (ev->flags & PX__TRACE_CRASHED)
		return "crashed";
	if (ev->outcome == 0)
		return "ok";
	if (ev->outcome == -ECANCELED)
		return "cancelled";
	if (ev->outcome == -ETIMEDOUT)
		return "timed out";
	return "error";
}

/* The args object of a task's event. */
static void put_args(struct line *l, const struct px__trace *t, int64_t start,
		     const struct px__trace_event *ev)
{
	put_s(l, ",\"args\":{\"task\":");
	put_u64(l, ev->task);
	put_s(l, ",\"worker\":");
	put_i64(l, ev->worker);
	put_s(l, ",\"outcome\":\"");
	put_s(l, outcome_name(ev));
	put_s(l, "\",\"error\":");
	put_i64(l, ev->outcome);
	if (ev->pid) {
		put_s(l, ",\"pid\":");
		put_i64(l, ev->pid);
	}
	if (ev->submit_ns) {
		put_s(l, ",\"submit_us\":");
		put_us(l, ev->submit_ns - t->t0);
		put_s(l, ",\"queued_us\":");
		put_us(l, start - ev->submit_ns);
	}
	put_s(l, "}}");
}

/* The common head of an event: name, category and phase, ids, "ts": */
static void put_head(struct line *l, const char *name, uint64_t num,
		     const char *suffix, const char *cat_ph, bool id, int pid,
		     int tid)
{
	put_s(l, ",\n{\"name\":\"");
	put_s(l, name);
	put_u64(l, num);
	put_s(l, suffix);
	put_s(l, cat_ph);
	if (id) {
		put_s(l, ",\"id\":");
		put_u64(l, num);
	}
	put_s(l, ",\"pid\":");
	put_i64(l, pid);
	put_s(l, ",\"tid\":");
	put_i64(l, tid);
	put_s(l, ",\"ts\":");
}

/*
 * One task: a complete ("X") event on its worker's track, or, for a trace
 * of overlapping operations, an async begin/end pair ("b"/"e", id = task
 * number), which Perfetto stacks in rows instead of mis-nesting them.
 */
static void put_event(FILE *fp, const struct px__trace *t, int pid,
		      const struct px__trace_event *ev)
{
	struct line l;
	l.n = 0;
	int64_t start = ev->flags & PX__TRACE_NOT_RUN ? ev->end_ns : ev->start_ns;
	const char *crashed = ev->flags & PX__TRACE_CRASHED ? " (crashed)" : "";
	if (t->async) {
		put_head(&l, "op ", ev->task, "", "\",\"cat\":\"io\",\"ph\":\"b\"",
			 true, pid, ev->worker + 1);
		put_us(&l, start - t->t0);
		put_args(&l, t, start, ev);
		put_head(&l, "op ", ev->task, "", "\",\"cat\":\"io\",\"ph\":\"e\"",
			 true, pid, ev->worker + 1);
		put_us(&l, ev->end_ns - t->t0);
		put_c(&l, '}');
	} else {
		put_head(&l, "task ", ev->task, crashed,
			 "\",\"cat\":\"task\",\"ph\":\"X\"", false, pid,
			 ev->worker + 1);
		put_us(&l, start - t->t0);
		put_s(&l, ",\"dur\":");
		put_us(&l, ev->end_ns - start);
		put_args(&l, t, start, ev);
	}
	fwrite(l.b, 1, l.n, fp);
}

/* Track names: one metadata event per worker index seen. */
static void put_tracks(FILE *fp, const struct px__trace *t, int pid,
		       uint64_t n)
{
	int max_worker = -1;
	for (uint64_t i = 0; i < n; i++) {
		const struct px__trace_event *c = t->chunks[i / PX__TRACE_CHUNK];
		if (c && c[i % PX__TRACE_CHUNK].end_ns &&
		    c[i % PX__TRACE_CHUNK].worker > max_worker)
			max_worker = c[i % PX__TRACE_CHUNK].worker;
	}
	for (int w = -1; w <= max_worker; w++) {
		fprintf(fp, ",\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":%d,"
			"\"tid\":%d,\"args\":{\"name\":", pid, w + 1);
		char name[96];
		if (w < 0)
			snprintf(name, sizeof(name), "not run");
		else if (t->track_name)
			t->track_name(t->track_arg, w, name, sizeof(name));
		else
			snprintf(name, sizeof(name), "%s%d", t->track_prefix, w);
		put_json_string(fp, name);
		fprintf(fp, "}},\n{\"name\":\"thread_sort_index\",\"ph\":\"M\","
			"\"pid\":%d,\"tid\":%d,\"args\":{\"sort_index\":%d}}",
			pid, w + 1, w + 1);
	}
}

static int write_file(struct px__trace *t)
{
	FILE *fp = fdopen(t->fd, "w");
	if (!fp)
		return -errno; /* px__trace_finish closes the fd */
	t->fd = -1; /* fclose closes it */
	__fsetlocking(fp, FSETLOCKING_BYCALLER); /* this thread alone writes */
	uint64_t claimed = atomic_load_explicit(&t->next, memory_order_relaxed);
	uint64_t n = claimed < t->max_events ? claimed : t->max_events;
	int pid = (int)getpid();

	fprintf(fp, "{\"displayTimeUnit\":\"ns\",\"otherData\":{\"parex\":");
	put_json_string(fp, t->label);
	fprintf(fp, ",\"events\":%llu,\"dropped\":%llu},\n\"traceEvents\":[\n"
		"{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":%d,\"tid\":0,"
		"\"args\":{\"name\":", (unsigned long long)n,
		(unsigned long long)(claimed - n), pid);
	put_json_string(fp, t->label);
	fputs("}}", fp);
	put_tracks(fp, t, pid, n);
	for (uint64_t i = 0; i < n; i++) {
		const struct px__trace_event *c = t->chunks[i / PX__TRACE_CHUNK];
		if (c && c[i % PX__TRACE_CHUNK].end_ns)
			put_event(fp, t, pid, &c[i % PX__TRACE_CHUNK]);
	}
	fputs("\n]}\n", fp);
	int err = ferror(fp) ? -EIO : 0;
	if (fclose(fp) != 0 && !err)
		err = -errno;
	return err;
}

static void trace_free(struct px__trace *t)
{
	if (t->fd >= 0)
		close(t->fd);
	for (size_t i = 0; i < t->nchunks; i++)
		free(t->chunks[i]);
	free(t->chunks);
	free(t->path);
	free(t);
}

void px__trace_discard(struct px__trace *t)
{
	if (t)
		trace_free(t);
}

int px__trace_finish(struct px__trace *t)
{
	if (!t)
		return 0;
	int err = write_file(t);
	trace_free(t);
	return err;
}
