/*
 * lib/executor_internal.h - the contract between the executor interface
 * (lib/executor.c) and its backends (lib/inline.c, threadpool/, procpool/).
 * Private: never installed.
 *
 * A backend allocates its own struct with `struct px_executor` as the first
 * member. lib/executor.c validates arguments, allocates the future (which is
 * also the task record, see future_internal.h), copies the argument bytes into
 * it, counts `submitted`, and hands it to ops->submit. The backend owns the
 * future's task reference from then on and must complete it exactly once:
 * px__task_run() runs and completes it in-process; a backend that runs it
 * elsewhere completes it with px__future_store_result()/px__future_complete(),
 * counts it with px__counts_record() and drops the reference; a queued task
 * dropped at shutdown goes through px__future_cancel_queued(). Counters
 * `completed`, `failed`, `cancelled` are kept in struct px__counts (per worker, or per completing
 * thread), so every backend counts the same way; ops->stats adds them up.
 */
#ifndef PX_EXECUTOR_INTERNAL_H
#define PX_EXECUTOR_INTERNAL_H

#include <parex/executor.h>
#include <stdatomic.h>

#include "future_internal.h"

#define PX__BACKEND_NAME_MAX 16

/* The effective configuration, after every layer is applied. */
struct px__config {
	char backend[PX__BACKEND_NAME_MAX];
	int workers;                   /* 0 = online CPUs */
	uint32_t queue;                /* submission queue capacity, tasks */
	bool block;                    /* full queue: block (1) or -EAGAIN (0) */
	uint32_t max_arg;              /* bytes */
	uint32_t max_result;           /* bytes */
	uint32_t spin_us;              /* spin this long before parking */
	bool gil;                      /* thread: CPython-style GIL emulation */
	int64_t task_timeout_ms;       /* process: 0 = none */
	uint64_t max_tasks_per_worker; /* process: recycle after N; 0 = never */
	uint64_t shm_size;             /* process: shared arena bytes */
	px_worker_init_fn init;
	void *init_arg;
};

struct px_config {
	struct px__config c;
	char err[256];
};

struct px__backend_ops {
	const char *name;
	/* The backend reports stats.submitted itself (the thread pool's tail
	 * is the count), sparing lib/executor.c an atomic add per submit. */
	bool counts_submitted;
	/* Allocates and starts a backend executor for cfg; *out is its
	 * struct px_executor (first member). Workers run on return. */
	int (*create)(px_executor **out, const struct px__config *cfg);
	/* Queues the task in f (state PENDING). flags: PX_SUBMIT_*; timeout_ns
	 * as in px_submit_opts, already defaulted. Returns 0, -EAGAIN when full
	 * and not blocking, PX_ESHUTDOWN. On failure f is untouched. */
	int (*submit)(px_executor *ex, px_future *f, unsigned flags,
		      int64_t timeout_ns);
	/* See px_executor_shutdown(); called at most once with wait=false and
	 * possibly again with wait=true. */
	void (*shutdown)(px_executor *ex, bool wait, bool cancel_pending);
	/* Frees the backend after a waited shutdown. */
	void (*destroy)(px_executor *ex);
	/* Fills every field but submitted: queued, running, workers,
	 * respawns, and the px__counts sums completed/failed/cancelled/
	 * busy_ns. */
	void (*stats)(px_executor *ex, px_executor_stats *out);
	int (*alloc)(px_executor *ex, size_t size, void **out);
	void (*free)(px_executor *ex, void *p);
};

struct px_executor {
	const struct px__backend_ops *ops;
	struct px__config cfg;
	atomic_int shut;                /* 1 once shutdown began */
	/* Written on every submit: padded off the lines workers read (by
	 * padding, not alignas, so backends may allocate with malloc). */
	char pad_before_[64];
	_Atomic uint64_t submitted;
	char pad_after_[56];
};

/*
 * What a running task sees. Each backend embeds it in its own per-worker
 * context and fills the hooks; px_task_* in lib/task.c dispatch through them.
 */
struct px__task_ops {
	/* Store a copy of the result; -EMSGSIZE past max_result. */
	int (*set_result)(px_task *t, const void *data, size_t len);
	/* Store a copy of the error message (NUL-terminated). */
	void (*set_message)(px_task *t, const char *msg);
	void (*blocking_begin)(px_task *t);
	void (*blocking_end)(px_task *t);
	/*
	 * Optional: writable storage for a result of len bytes (at most
	 * max_result), which becomes the task's result if the task then
	 * returns 0 without another set_result. Lets map's chunk task build
	 * its output in place instead of copying it over. NULL when the
	 * backend has none (the caller falls back to set_result).
	 */
	void *(*result_buffer)(px_task *t, size_t len);
};

struct px_task {
	const struct px__task_ops *ops;
	int worker_id;
	uint32_t max_result;
	px_future *f;   /* the in-process future (threads, inline); NULL in a
			   process worker */
	void *blocking; /* token of the open blocking section */
	unsigned blocking_depth; /* nested blocking_begin calls */
	void *backend;  /* free for the backend's ops */
	/* A map record's result slot: when set, px_task_return() copies the
	 * result straight there and stores its length in res_len, without
	 * the ops (lib/executor.c, chunk_task). */
	unsigned char *res_slot;
	size_t res_len;
};

/*
 * Outcome counters of one worker (or one completing thread), written only by
 * it with relaxed atomics and summed by stats, so counting costs no shared
 * cache line per task.
 */
struct px__counts {
	_Atomic uint64_t completed;
	_Atomic uint64_t failed;
	_Atomic uint64_t cancelled;
	_Atomic uint64_t busy_ns;
};

/* Adds c's counters into out's completed/failed/cancelled/busy_ns. */
void px__counts_add(px_executor_stats *out, const struct px__counts *c);

/* Counts one outcome (err 0: completed; -ECANCELED: cancelled; else failed)
 * into c, from its single writer. */
void px__counts_record(struct px__counts *c, int err);

/*
 * Storage for len bytes of f's result, for its producer to fill before
 * completing it (the in-process result_buffer op, procpool's collector).
 * Reuses the buffer f already holds when it is big enough: map() attaches a
 * recycled chunk buffer to its futures before submitting them, with its
 * capacity in result_len while pending. Otherwise res_inline or a fresh
 * malloc (freed with the future). NULL on ENOMEM or past UINT32_MAX.
 */
void *px__future_result_buffer(px_future *f, size_t len);

/* Task ops for backends that run tasks in-process on a px_future. */
extern const struct px__task_ops px__future_task_ops;

/*
 * Runs the task stored in f on the calling thread, as worker worker_id:
 * PENDING -> RUNNING (skips it and returns false if cancelled meanwhile),
 * calls fn, completes the future with the outcome, counts it into c (and,
 * if timed, its run time into c->busy_ns), and drops the task's reference.
 * Returns true if it ran. The thread pool and the inline backend use it.
 */
bool px__task_run(px_executor *ex, px_future *f, int worker_id,
		  const struct px__task_ops *ops, struct px__counts *c, bool timed);

/*
 * Initialises the common part of a backend's executor; backends call it first
 * in ops->create, before starting workers.
 */
void px__executor_init(px_executor *ex, const struct px__backend_ops *ops,
		       const struct px__config *cfg);

/*
 * Completes a queued (never started) task as cancelled if it still can be,
 * counts it into c, and drops the task's reference. For
 * shutdown(cancel_pending). c's single-writer rule applies.
 */
void px__future_cancel_queued(struct px__counts *c, px_future *f);

/* The registered backends, looked up by name; NULL if unknown. */
const struct px__backend_ops *px__backend_find(const char *name);

extern const struct px__backend_ops px__inline_backend;
extern const struct px__backend_ops px__thread_backend;
/* Defined by procpool/ once it is built in; a weak NULL until then. */
extern const struct px__backend_ops px__process_backend __attribute__((weak));

/* Plain-memory px_executor_alloc/free for the in-process backends. */
int px__heap_alloc(px_executor *ex, size_t size, void **out);
void px__heap_free(px_executor *ex, void *p);

/* Online CPUs, at least 1. */
int px__online_cpus(void);

#endif /* PX_EXECUTOR_INTERNAL_H */
