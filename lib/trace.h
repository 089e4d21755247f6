/*
 * lib/trace.h - task timelines: what each executor (and the I/O layer)
 * records per task when tracing is on, and the Chrome trace-event file it
 * writes at shutdown. Private: never installed.
 *
 * Turned on by the config key `trace=PATH` or $PAREX_TRACE=PATH. Off, an
 * executor's trace pointer is NULL and a task pays one predictable branch.
 * On, a task pays two clock reads (submit, and start/end where the backend
 * did not read the clock anyway) and one atomic add on the trace's event
 * counter; events land in chunks that are allocated as they fill, up to
 * max_events (then counted as dropped).
 *
 * Writers: any thread, concurrently (the thread pool's workers, the process
 * pool's collector and its submitters, the I/O layer's reaper). The file is
 * written once, by px__trace_finish(), after every writer has stopped (the
 * executor is being freed: its workers are joined, or the last of them is
 * freeing it; the I/O context's threads are joined), so events need no
 * per-event publication: the join orders them.
 *
 * Who records what:
 *  - lib/executor.c stamps submit_ns and the task number into the future
 *    (px_future.trace_submit_ns / trace_task) when the executor traces;
 *  - lib/task.c (thread pool, inline) records start, end, worker, outcome;
 *    tasks cancelled before they started are recorded PX__TRACE_NOT_RUN;
 *  - procpool/: the worker process stamps start_ns/end_ns into the task's
 *    record in the shared mapping (only for requests flagged QF_TRACE); the
 *    collector records the event with the slot and the worker's pid, a
 *    task its worker died in as PX__TRACE_CRASHED;
 *  - io/: io.c stamps the operation's start, core.c records its completion
 *    (one track per context; the events are async slices, since many
 *    operations are in flight at once).
 */
#ifndef PX_TRACE_H
#define PX_TRACE_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <parex/common.h>

/* Flags of an event. */
#define PX__TRACE_CRASHED 1u  /* the worker died while running it */
#define PX__TRACE_NOT_RUN 2u  /* cancelled or dropped before it started */

/* One task as the timeline shows it. Times are CLOCK_MONOTONIC ns. */
struct px__trace_event {
	int64_t submit_ns;  /* 0: unknown */
	int64_t start_ns;   /* 0 with PX__TRACE_NOT_RUN */
	int64_t end_ns;
	uint64_t task;      /* submission number, from px__trace_task_id() */
	int32_t worker;     /* track: worker index (-1: no worker) */
	int32_t pid;        /* worker process (process pool), else 0 */
	int32_t outcome;    /* 0 or the future's error code */
	uint32_t flags;     /* PX__TRACE_* */
};

#define PX__TRACE_CHUNK 4096u
#define PX__TRACE_MAX_EVENTS_DEFAULT (4u << 20) /* 4 Mi events, 160 MiB */

struct px__trace {
	char *path;           /* where px__trace_finish() writes */
	int fd;               /* opened by px__trace_open(), so a bad path
				 fails the executor's creation, not its end */
	bool async;           /* overlapping operations on one track (io/):
				 written as async begin/end pairs; set
				 right after px__trace_open() */
	char label[48];       /* "thread executor", "io (io_uring)", ... */
	char track_prefix[16];/* "px-worker-", "px-proc-", "px-io-" */
	/* Optional: names worker w's track instead of track_prefix + w, for
	 * a backend whose workers live elsewhere (libparex-mpi: "rank 2
	 * (node7) slot 0"). Set before the executor's first submit, called
	 * by px__trace_finish() only. */
	void (*track_name)(void *arg, int worker, char *buf, size_t len);
	void *track_arg;
	int64_t t0;           /* timestamps are written relative to this */
	uint64_t max_events;
	size_t nchunks;
	_Atomic(struct px__trace_event *) *chunks;
	/* Each counter on its own cache line: submitters bump task_seq,
	 * workers (or the collector) bump next, and sharing a line would
	 * bounce it between them on every task. */
	alignas(64) _Atomic uint64_t next;     /* events claimed so far */
	alignas(64) _Atomic uint64_t task_seq; /* task numbers handed out */
	char pad_[56];
};

/*
 * The trace file for a new executor or I/O context: `path` when it is
 * non-empty, else $PAREX_TRACE, else none. Several traced objects in one
 * process do not overwrite each other: the first uses the path as given,
 * later ones insert "-2", "-3", ... before its extension. The file is
 * created (truncated) now and written by px__trace_finish(). Returns 0 with
 * *out NULL when tracing is off, 0 with a trace, -ENOMEM, or the negative
 * errno of creating the file (-ENOENT, -EACCES, ...).
 */
int px__trace_open(struct px__trace **out, const char *path,
		   const char *label, const char *track_prefix);

/* A number for the next task, in submission order. */
static inline uint64_t px__trace_task_id(struct px__trace *t)
{
	return atomic_fetch_add_explicit(&t->task_seq, 1,
					 memory_order_relaxed);
}

/* Records one event (copied). Thread-safe; never blocks; drops the event
 * (and counts it) past max_events or when a chunk cannot be allocated. */
void px__trace_record(struct px__trace *t, const struct px__trace_event *ev);

/*
 * Records one task from its parts: submit_ns and task as stamped at submit,
 * start_ns..end_ns on `worker` (process `pid`, 0 in-process), the outcome
 * and PX__TRACE_* flags. With PX__TRACE_NOT_RUN, start_ns is ignored (the
 * event sits at end_ns on the "not run" track) and end_ns 0 means now.
 * Exported (PAREX_PRIVATE) for backend libraries (libparex-mpi).
 */
PX_API void px__trace_task(struct px__trace *t, int64_t submit_ns,
			   uint64_t task, int worker, int pid, int64_t start_ns,
			   int64_t end_ns, int outcome, unsigned flags);

/* Frees a trace without writing it (a forked child's copy of its parent's
 * trace: the file is the parent's to write). NULL is a no-op. */
void px__trace_discard(struct px__trace *t);

/*
 * Writes the trace file (Chrome trace-event JSON: one track per worker,
 * one complete event per task) once every writer has stopped, then frees
 * the trace. NULL is a no-op. Returns 0 or a negative errno from creating
 * or writing the file (the trace is freed either way).
 */
int px__trace_finish(struct px__trace *t);

#endif /* PX_TRACE_H */
