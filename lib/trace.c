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

void px__trace_task(struct px__trace *t, int64_t submit_ns, uint64_t task,
		    int worker, int pid, int64_t start_ns, int64_t end_ns,
		    int outcome, unsigned flags)
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

/* Microseconds since t0, as Chrome's `ts`/`dur` (fractions keep ns). */
static void put_us(FILE *fp, int64_t ns)
{
	if (ns < 0) {
		fputc('-', fp);
		ns = -ns;
	}
	fprintf(fp, "%lld.%03lld", (long long)(ns / 1000), (long long)(ns % 1000));
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
static void put_args(FILE *fp, const struct px__trace *t, int64_t start,
		     const struct px__trace_event *ev)
{
	fprintf(fp, ",\"args\":{\"task\":%llu,\"worker\":%d,\"outcome\":\"%s\","
		"\"error\":%d", (unsigned long long)ev->task, ev->worker,
		outcome_name(ev), (int)ev->outcome);
	if (ev->pid)
		fprintf(fp, ",\"pid\":%d", (int)ev->pid);
	if (ev->submit_ns) {
		fputs(",\"submit_us\":", fp);
		put_us(fp, ev->submit_ns - t->t0);
		fputs(",\"queued_us\":", fp);
		put_us(fp, start - ev->submit_ns);
	}
	fputs("}}", fp);
}

/*
 * One task: a complete ("X") event on its worker's track, or, for a trace
 * of overlapping operations, an async begin/end pair ("b"/"e", id = task
 * number), which Perfetto stacks in rows instead of mis-nesting them.
 */
static void put_event(FILE *fp, const struct px__trace *t, int pid,
		      const struct px__trace_event *ev)
{
	int64_t start = ev->flags & PX__TRACE_NOT_RUN ? ev->end_ns : ev->start_ns;
	const char *crashed = ev->flags & PX__TRACE_CRASHED ? " (crashed)" : "";
	unsigned long long id = (unsigned long long)ev->task;
	if (t->async) {
		fprintf(fp, ",\n{\"name\":\"op %llu\",\"cat\":\"io\",\"ph\":\"b\","
			"\"id\":%llu,\"pid\":%d,\"tid\":%d,\"ts\":", id, id, pid,
			ev->worker + 1);
		put_us(fp, start - t->t0);
		put_args(fp, t, start, ev);
		fprintf(fp, ",\n{\"name\":\"op %llu\",\"cat\":\"io\",\"ph\":\"e\","
			"\"id\":%llu,\"pid\":%d,\"tid\":%d,\"ts\":", id, id, pid,
			ev->worker + 1);
		put_us(fp, ev->end_ns - t->t0);
		fputs("}", fp);
		return;
	}
	fprintf(fp, ",\n{\"name\":\"task %llu%s\",\"cat\":\"task\",\"ph\":\"X\","
		"\"pid\":%d,\"tid\":%d,\"ts\":", id, crashed, pid, ev->worker + 1);
	put_us(fp, start - t->t0);
	fputs(",\"dur\":", fp);
	put_us(fp, ev->end_ns - start);
	put_args(fp, t, start, ev);
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
		char name[48];
		if (w < 0)
			snprintf(name, sizeof(name), "not run");
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
